//! Diagnostics about a model file: errors that reject it and warnings that do not, each with a
//! byte span into the source, a stable code and an optional hint. Rendering to `file:line:col`
//! text with a source snippet (codespan-reporting) or to JSON for tooling lives here too; writing
//! them anywhere is the caller's business.

use std::ops::Range;

use codespan_reporting::diagnostic as cr;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a model: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable snake_case identifier, e.g. `unknown_dimension`.
    pub code: &'static str,
    pub message: String,
    #[serde(skip)]
    pub span: Option<Range<usize>>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, code, message: message.into(), span, hint: None }
    }

    pub fn warning(code: &'static str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, code, message: message.into(), span, hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error: message` (1-based line and column, column counted in characters).
    pub fn headline(&self, file: &str, source: &str) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.span {
            Some(span) => {
                let (line, col) = line_col(source, span.start);
                format!("{file}:{line}:{col}: {severity}: {}", self.message)
            }
            None => format!("{file}: {severity}: {}", self.message),
        }
    }

    /// The headline followed by a source snippet with the span underlined and the hint.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = self.headline(file, source);
        out.push('\n');
        if let Some(span) = &self.span {
            let simple = SimpleFile::new(file, source);
            let severity = match self.severity {
                Severity::Error => cr::Severity::Error,
                Severity::Warning => cr::Severity::Warning,
            };
            let mut diag = cr::Diagnostic::new(severity)
                .with_code(self.code)
                .with_message(&self.message)
                .with_labels(vec![cr::Label::primary((), clamp_span(span, source))]);
            if let Some(hint) = &self.hint {
                diag = diag.with_notes(vec![format!("hint: {hint}")]);
            }
            let config = term::Config { display_style: term::DisplayStyle::Rich, ..Default::default() };
            let mut buffer = String::new();
            if term::emit_to_string(&mut buffer, &config, &simple, &diag).is_ok() {
                // codespan's first line repeats the message without the position: use ours.
                let snippet = buffer.split_once('\n').map_or("", |(_, rest)| rest);
                out.push_str(snippet);
            }
        } else if let Some(hint) = &self.hint {
            out.push_str(&format!("  = hint: {hint}\n"));
        }
        out
    }

    /// The JSON form for `leadscore check --format json`.
    pub fn to_json(&self, file: &str, source: &str) -> serde_json::Value {
        let (line, column, end_line, end_column) = match &self.span {
            Some(span) => {
                let (l, c) = line_col(source, span.start);
                let (el, ec) = line_col(source, span.end);
                (Some(l), Some(c), Some(el), Some(ec))
            }
            None => (None, None, None, None),
        };
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": file,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "hint": self.hint,
        })
    }
}

fn clamp_span(span: &Range<usize>, source: &str) -> Range<usize> {
    let end = span.end.min(source.len());
    let start = span.start.min(end);
    start..end
}

/// 1-based line and character column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The known name closest to `name` by edit distance, if it is plausibly a typo.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        let distance = edit_distance(name, candidate);
        if distance <= (name.chars().count().max(2) / 3).max(1) && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions of
/// two neighbouring characters (`modle` -> `model` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best =
                (d[(i - 1) * width + j] + 1).min(d[i * width + j - 1] + 1).min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap_or(0)), (1, 3));
        assert_eq!(line_col(src, 10), (2, 4));
    }

    #[test]
    fn closest_suggests_typos_only() {
        assert_eq!(closest("fitt", ["fit", "engagement"]), Some("fit"));
        assert_eq!(closest("engagment", ["fit", "engagement"]), Some("engagement"));
        assert_eq!(closest("budget", ["fit", "engagement"]), None);
        assert_eq!(closest("modle", ["model", "traits"]), Some("model"));
    }

    #[test]
    fn headline_names_file_line_and_column() {
        let src = "x = 1\ny = 2\n";
        let d = Diagnostic::error("unknown_key", Some(6..7), "unknown key `y`");
        assert_eq!(d.headline("m.toml", src), "m.toml:2:1: error: unknown key `y`");
        let rendered = d.with_hint("remove it").render("m.toml", src);
        assert!(rendered.starts_with("m.toml:2:1: error: unknown key `y`\n"), "{rendered}");
        assert!(rendered.contains("hint: remove it"), "{rendered}");
    }
}
