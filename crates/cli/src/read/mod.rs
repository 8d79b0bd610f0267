//! Reading the input files of `score` (and later `backtest`/`train`): leads CSV, events JSON Lines,
//! outcomes CSV. Every problem names the file, the line and the field; with `--skip-invalid` a bad
//! line is counted and skipped instead of stopping the run.

pub mod compact;
pub mod events;
pub mod leads;
pub mod outcomes;
pub mod parquet;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The field delimiter of a delimited text file, judged from its header line: `,` unless `;`, a
/// tab or `|` separates more fields (semicolon files come from spreadsheets in many locales, and
/// public datasets such as UCI's bank marketing data). Delimiters inside quotes do not count.
pub fn sniff_delimiter(path: &Path) -> u8 {
    use std::io::Read;
    let mut head = [0u8; 65536];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    let line = head[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(entry) = counts.iter_mut().find(|(d, _)| *d == b) {
            entry.1 += 1;
        }
    }
    // The first candidate with the most separators; `,` wins ties.
    counts.iter().fold((b',', 0), |best, &(d, c)| if c > best.1 { (d, c) } else { best }).0
}

/// Opens a delimited text file (its delimiter sniffed from the header line) and reads the header
/// names, without a byte-order mark; errors name the file.
pub fn open_csv(path: &Path, trim: csv::Trim) -> Result<(csv::Reader<std::fs::File>, Vec<String>), InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(path))
        .trim(trim)
        .from_path(path)
        .map_err(|e| InputError::new(path, None, None, format!("cannot read: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| InputError::new(path, Some(1), None, e.to_string()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    Ok((reader, headers))
}

/// A problem in an input file, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: Option<u64>,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: &Path, line: Option<u64>, field: Option<&str>, message: impl Into<String>) -> Self {
        InputError { file: file.display().to_string(), line, field: field.map(str::to_owned), message: message.into() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// What to do with a bad line: stop (the default) or count it and go on.
#[derive(Debug, Default)]
pub struct Skipped {
    pub skip_invalid: bool,
    /// reason -> (count, first error)
    reasons: BTreeMap<String, (u64, InputError)>,
}

impl Skipped {
    pub fn new(skip_invalid: bool) -> Self {
        Skipped { skip_invalid, reasons: BTreeMap::new() }
    }

    /// Stops with the error, or records it when skipping invalid lines.
    pub fn handle(&mut self, error: InputError) -> Result<(), InputError> {
        if !self.skip_invalid {
            return Err(error);
        }
        let reason = format!(
            "{}: {}{}",
            error.file,
            error.field.as_ref().map_or(String::new(), |f| format!("field `{f}`: ")),
            error.message
        );
        let entry = self.reasons.entry(reason).or_insert((0, error));
        entry.0 += 1;
        Ok(())
    }

    pub fn total(&self) -> u64 {
        self.reasons.values().map(|(n, _)| n).sum()
    }

    /// A human summary: how many lines were skipped and why, with the first line of each reason.
    pub fn summary(&self) -> Option<String> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let mut out = format!("skipped {total} invalid line{}:", if total == 1 { "" } else { "s" });
        for (reason, (count, first)) in &self.reasons {
            let at = first.line.map_or(String::new(), |l| format!(" (first at line {l})"));
            out.push_str(&format!("\n  {count} × {reason}{at}"));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_sniffed_from_the_header_outside_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, u8); 5] = [
            ("id,title,employees\n1,CEO,5\n", b','),
            ("\"age\";\"job\";\"y\"\n30;\"admin.\";\"no\"\n", b';'),
            ("id\ttitle\n1\tCEO\n", b'\t'),
            ("\"a;b\",c\n", b','),
            ("id\n1\n", b','),
        ];
        for (i, (text, expected)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.csv"));
            std::fs::write(&path, text).unwrap();
            assert_eq!(sniff_delimiter(&path), *expected, "{text:?}");
        }
    }
}
