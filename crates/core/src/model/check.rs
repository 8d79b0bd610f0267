//! `ModelFile` -> `CheckedModel`: names resolved, rule kinds decided, CEL compiled, durations
//! parsed. Every problem becomes a diagnostic; nothing stops at the first.

use std::collections::HashMap;
use std::ops::Range;

use super::{
    Aggregate, Calibration, CheckedModel, DEFAULT_STAGE, Dimension, Grade, ModelFile, OUTCOME_STAGES, RawGrade,
    RawRule, Rule, RuleIndex, RuleKind, Spanned, Stage,
};
use crate::cel::{self, Program};
use crate::diagnostics::{Diagnostic, closest, line_col};
use crate::time::Duration;

/// Variables of an `if` condition, in slot order.
pub const TRAIT_VARS: &[&str] = &["lead", "account"];
/// Variables of an `on` / `inactive` condition, in slot order.
pub const EVENT_VARS: &[&str] = &["event", "lead", "account"];
/// Variables of `[events] ignore`.
pub const IGNORE_VARS: &[&str] = &["event"];

/// Names a dimension cannot have besides CEL's reserved words: the other variables and the
/// score columns.
const RESERVED: &[&str] = &["total", "lead", "event", "account", "lead_id", "stage", "grade", "probability"];

pub(super) fn check(source: &str, file: &ModelFile) -> (Option<CheckedModel>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let name = match &file.name {
        Some(name) if !name.value.trim().is_empty() => name.value.clone(),
        Some(name) => {
            diags.push(Diagnostic::error("missing_model_name", Some(name.span.clone()), "the model name is empty"));
            String::new()
        }
        None => {
            if !diags.iter().any(|d: &Diagnostic| d.code == "missing_model_name") && file.description.is_some() {
                diags.push(Diagnostic::error("missing_model_name", Some(0..0), "`[model]` has no `name`"));
            }
            String::new()
        }
    };

    let dimensions = check_dimensions(file, &mut diags);
    let dim_names: Vec<&str> = file.dimensions.iter().map(|d| d.name.value.as_str()).collect();

    let mut rules = Vec::new();
    let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
    for raw in &file.rules {
        if let Some(name) = &raw.name
            && let Some(first) = seen.get(name.value.as_str())
        {
            let (line, _) = line_col(source, first.start);
            diags.push(
                Diagnostic::error(
                    "duplicate_rule",
                    Some(name.span.clone()),
                    format!("duplicate rule name `{}`", name.value),
                )
                .with_hint(format!(
                    "the first rule named `{}` is on line {line}; rule names must be unique",
                    name.value
                )),
            );
        } else if let Some(name) = &raw.name {
            seen.insert(name.value.as_str(), name.span.clone());
        }
        if let Some(rule) = check_rule(source, raw, &dimensions, &dim_names, &mut diags) {
            rules.push(rule);
        }
    }

    let stage_vars: Vec<&str> = dim_names.iter().copied().chain(["total"]).collect();
    let mut stages = Vec::new();
    let mut stage_names: HashMap<&str, ()> = HashMap::new();
    for raw in &file.stages {
        let Some(name) = &raw.name else {
            diags.push(Diagnostic::error("missing_key", Some(raw.span.clone()), "a [[stages]] entry has no `name`"));
            continue;
        };
        let lower = name.value.to_ascii_lowercase();
        if lower == DEFAULT_STAGE || OUTCOME_STAGES.contains(&lower.as_str()) {
            diags.push(
                Diagnostic::error("reserved_stage", Some(name.span.clone()), format!("stage name `{}` is reserved", name.value))
                    .with_hint("`lead` is the stage below every threshold; `customer`, `lost` and `disqualified` come from outcomes"),
            );
        }
        if stage_names.insert(name.value.as_str(), ()).is_some() {
            diags.push(Diagnostic::error(
                "duplicate_stage",
                Some(name.span.clone()),
                format!("duplicate stage name `{}`", name.value),
            ));
        }
        let Some(when) = &raw.when else {
            diags.push(
                Diagnostic::error(
                    "missing_key",
                    Some(name.span.clone()),
                    format!("stage `{}` has no `when` condition", name.value),
                )
                .with_hint("e.g. `when = \"total >= 50\"`"),
            );
            continue;
        };
        if let Some(program) = compile(source, when, &stage_vars, &mut diags) {
            stages.push(Stage { name: name.value.clone(), when: program });
        }
    }

    let grade = file.grade.as_ref().and_then(|g| check_grade(g, &dim_names, &mut diags));
    let ignore = file.ignore.as_ref().and_then(|c| compile(source, c, IGNORE_VARS, &mut diags));
    let aggregate = match file.aggregate.as_ref().map(|a| (a.value.as_str(), a)) {
        None | Some(("max", _)) => Aggregate::Max,
        Some(("sum", _)) => Aggregate::Sum,
        Some(("mean", _)) => Aggregate::Mean,
        Some((other, a)) => {
            diags.push(
                Diagnostic::error("invalid_aggregate", Some(a.span.clone()), format!("unknown aggregate `{other}`"))
                    .with_hint("use \"max\", \"sum\" or \"mean\""),
            );
            Aggregate::Max
        }
    };
    let calibration = file.calibration.as_ref().and_then(|c| match (&c.intercept, &c.slope) {
        (Some(intercept), Some(slope)) => Some(Calibration { intercept: intercept.value, slope: slope.value }),
        _ => {
            diags.push(Diagnostic::error(
                "missing_key",
                Some(c.span.clone()),
                "`[calibration]` needs both `intercept` and `slope`",
            ));
            None
        }
    });

    if diags.iter().any(Diagnostic::is_error) || dimensions.len() != file.dimensions.len() {
        return (None, diags);
    }
    let index = RuleIndex::build(&rules);
    let plan = crate::compact::Plan::build(&rules, ignore.as_ref());
    let model = CheckedModel {
        name,
        description: file.description.clone(),
        traits: file.traits.iter().map(|(k, t)| (k.value.clone(), t.value)).collect(),
        dimensions,
        rules,
        stages,
        grade,
        ignore,
        aggregate,
        calibration,
        index,
        plan,
    };
    (Some(model), diags)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_dimensions(file: &ModelFile, diags: &mut Vec<Diagnostic>) -> Vec<Dimension> {
    if file.dimensions.is_empty() {
        diags.push(
            Diagnostic::error("no_dimensions", Some(0..0), "the model has no dimensions")
                .with_hint("add at least one, e.g. `[dimensions.fit]` and `[dimensions.engagement]`"),
        );
    }
    let mut out = Vec::new();
    for raw in &file.dimensions {
        let name = &raw.name;
        if !is_identifier(&name.value) || RESERVED.contains(&name.value.as_str()) || cel::is_reserved_word(&name.value)
        {
            diags.push(
                Diagnostic::error("invalid_dimension_name", Some(name.span.clone()), format!("`{}` cannot be a dimension name", name.value))
                    .with_hint("dimension names are identifiers (letters, digits, `_`) other than `total`, `lead`, `event`, `account`, the score columns (`lead_id`, `stage`, `grade`, `probability`) and CEL keywords"),
            );
            continue;
        }
        if let (Some(min), Some(max)) = (&raw.min, &raw.max)
            && min.value > max.value
        {
            diags.push(Diagnostic::error(
                "invalid_bounds",
                Some(min.span.start..max.span.end.max(min.span.end)),
                format!("dimension `{}` has `min` {} above `max` {}", name.value, min.value, max.value),
            ));
        }
        let half_life = match &raw.half_life {
            Some(h) if h.value == "none" => None,
            Some(h) => duration(h, "half_life", diags),
            None => None,
        };
        out.push(Dimension {
            name: name.value.clone(),
            min: raw.min.as_ref().map(|m| m.value),
            max: raw.max.as_ref().map(|m| m.value),
            weight: raw.weight.as_ref().map_or(1.0, |w| w.value),
            half_life,
        });
    }
    out
}

fn duration(text: &Spanned<String>, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Duration> {
    match Duration::parse(&text.value) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.push(
                Diagnostic::error("invalid_duration", Some(text.span.clone()), format!("`{key}`: {e}"))
                    .with_hint("durations are a number and a unit: s, m, h, d or w (`90d`, `12h`)"),
            );
            None
        }
    }
}

fn positive(value: &Option<Spanned<i64>>, key: &str, diags: &mut Vec<Diagnostic>) -> Option<usize> {
    let v = value.as_ref()?;
    if v.value < 1 {
        diags.push(Diagnostic::error(
            "invalid_value",
            Some(v.span.clone()),
            format!("`{key}` must be at least 1, found {}", v.value),
        ));
        return None;
    }
    usize::try_from(v.value).ok()
}

fn check_rule(
    source: &str,
    raw: &RawRule,
    dimensions: &[Dimension],
    dim_names: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let label = raw.name.as_ref().map_or_else(|| "a rule".to_owned(), |n| format!("rule `{}`", n.value));
    let Some(name) = &raw.name else {
        diags.push(
            Diagnostic::error("missing_key", Some(raw.span.clone()), "a [[rules]] entry has no `name`")
                .with_hint("every rule needs a unique `name`: it is how explanations refer to it"),
        );
        return None;
    };
    let anchor = name.span.clone();
    let dimension = match &raw.dimension {
        Some(d) => match dim_names.iter().position(|n| *n == d.value) {
            Some(i) => Some(i),
            None => {
                let mut diag = Diagnostic::error(
                    "unknown_dimension",
                    Some(d.span.clone()),
                    format!("unknown dimension `{}` (known: {})", d.value, dim_names.join(", ")),
                );
                if let Some(s) = closest(&d.value, dim_names.iter().copied()) {
                    diag = diag.with_hint(format!("did you mean `{s}`?"));
                }
                diags.push(diag);
                None
            }
        },
        None if dim_names.len() == 1 => Some(0),
        None => {
            diags.push(
                Diagnostic::error("missing_key", Some(anchor.clone()), format!("{label} has no `dimension`"))
                    .with_hint(format!("add `dimension = \"…\"` (known: {})", dim_names.join(", "))),
            );
            None
        }
    };
    let points = match &raw.points {
        Some(p) => Some(p.value),
        None => {
            if !raw.keys.iter().any(|k| k == "points") {
                diags.push(Diagnostic::error("missing_key", Some(anchor.clone()), format!("{label} has no `points`")));
            }
            None
        }
    };

    let conditions: Vec<(&str, &Spanned<String>)> =
        [("if", &raw.condition_if), ("on", &raw.on), ("inactive", &raw.inactive)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
    let (kind_key, condition) = match conditions.as_slice() {
        [] => {
            diags.push(
                Diagnostic::error("missing_condition", Some(anchor), format!("{label} has no condition"))
                    .with_hint("give `if` (trait rule), `on` (event or count rule) or `inactive` (inactivity rule)"),
            );
            return None;
        }
        [one] => *one,
        [first, second, ..] => {
            diags.push(
                Diagnostic::error("mixed_rule_kinds", Some(second.1.span.clone()), format!(
                    "{label} mixes keys of two rule kinds: `{}` and `{}`", first.0, second.0
                ))
                .with_hint("a rule is one of: trait (`if`), event or count (`on`), inactivity (`inactive` + `for`); split it into two rules"),
            );
            return None;
        }
    };
    let kind_name = match kind_key {
        "if" => "trait",
        "on" if raw.at_least.is_some() => "count",
        "on" => "event",
        _ => "inactivity",
    };
    // Keys that belong to another rule kind.
    let allowed: &[&str] = match kind_name {
        "trait" => &[],
        "event" => &["limit", "within", "per_day", "max_points", "half_life"],
        "count" => &["at_least", "within", "per_day"],
        _ => &["for"],
    };
    let options: [(&str, Option<Range<usize>>); 7] = [
        ("limit", raw.limit.as_ref().map(|v| v.span.clone())),
        ("within", raw.within.as_ref().map(|v| v.span.clone())),
        ("per_day", raw.per_day.as_ref().map(|v| v.span.clone())),
        ("max_points", raw.max_points.as_ref().map(|v| v.span.clone())),
        ("half_life", raw.half_life.as_ref().map(|v| v.span.clone())),
        ("at_least", raw.at_least.as_ref().map(|v| v.span.clone())),
        ("for", raw.for_.as_ref().map(|v| v.span.clone())),
    ];
    let mut mixed = false;
    for (key, span) in options {
        if let Some(span) = span
            && !allowed.contains(&key)
        {
            mixed = true;
            let owner = match key {
                "for" => "inactivity rules (`inactive` + `for`)",
                "at_least" => "count rules (`on` + `at_least` + `within`)",
                "within" | "per_day" => "event and count rules (`on`)",
                _ => "event rules (`on` without `at_least`)",
            };
            diags.push(
                Diagnostic::error(
                    "mixed_rule_kinds",
                    Some(span),
                    format!(
                        "{label} is a{} {kind_name} rule (`{kind_key}`) but has `{key}`, a key of {owner}",
                        if kind_name == "event" || kind_name == "inactivity" { "n" } else { "" }
                    ),
                )
                .with_hint(format!("remove `{key}` or split the rule")),
            );
        }
    }
    let vars = if kind_key == "if" { TRAIT_VARS } else { EVENT_VARS };
    let program = compile(source, condition, vars, diags);
    let kind = match kind_name {
        "trait" => program.map(|condition| RuleKind::Trait { condition }),
        "event" => {
            let limit = positive(&raw.limit, "limit", diags);
            let per_day = positive(&raw.per_day, "per_day", diags);
            let within = raw.within.as_ref().and_then(|w| duration(w, "within", diags));
            let max_points = raw.max_points.as_ref().and_then(|m| {
                if m.value < 0.0 {
                    diags.push(
                        Diagnostic::error(
                            "invalid_value",
                            Some(m.span.clone()),
                            format!("`max_points` must not be negative, found {}", m.value),
                        )
                        .with_hint(
                            "`max_points` caps the absolute value of the rule's total; the sign comes from `points`",
                        ),
                    );
                    None
                } else {
                    Some(m.value)
                }
            });
            let half_life = match &raw.half_life {
                Some(h) if h.value == "none" => None,
                Some(h) => duration(h, "half_life", diags),
                None => dimension.and_then(|d| dimensions.get(d)).and_then(|d| d.half_life),
            };
            program.map(|condition| RuleKind::Event { condition, limit, within, per_day, max_points, half_life })
        }
        "count" => {
            let at_least = positive(&raw.at_least, "at_least", diags);
            let per_day = positive(&raw.per_day, "per_day", diags);
            let within = match &raw.within {
                Some(w) => duration(w, "within", diags),
                None => {
                    diags.push(
                        Diagnostic::error(
                            "missing_key",
                            raw.at_least.as_ref().map(|a| a.span.clone()),
                            format!("{label} has `at_least` but no `within`"),
                        )
                        .with_hint("a count rule counts events in a window: add e.g. `within = \"90d\"`"),
                    );
                    None
                }
            };
            match (program, at_least, within) {
                (Some(condition), Some(at_least), Some(within)) => {
                    Some(RuleKind::Count { condition, at_least, within, per_day })
                }
                _ => None,
            }
        }
        _ => {
            let period = match &raw.for_ {
                Some(f) => duration(f, "for", diags),
                None => {
                    diags.push(
                        Diagnostic::error(
                            "missing_key",
                            Some(condition.span.clone()),
                            format!("{label} has `inactive` but no `for`"),
                        )
                        .with_hint("say how long without a matching event counts as inactive, e.g. `for = \"60d\"`"),
                    );
                    None
                }
            };
            match (program, period) {
                (Some(condition), Some(period)) => Some(RuleKind::Inactivity { condition, period }),
                _ => None,
            }
        }
    };
    if mixed {
        return None;
    }
    Some(Rule { name: name.value.clone(), dimension: dimension?, points: points?, kind: kind? })
}

fn check_grade(raw: &RawGrade, dim_names: &[&str], diags: &mut Vec<Diagnostic>) -> Option<Grade> {
    let mut ok = true;
    let mut dim = |name: &str| match dim_names.iter().position(|d| *d == name) {
        Some(i) => Some(i),
        None => {
            diags.push(Diagnostic::error(
                "unknown_dimension",
                Some(raw.span.clone()),
                format!("`[grade]` needs a dimension named `{name}` (known: {})", dim_names.join(", ")),
            ));
            None
        }
    };
    let fit_dimension = dim("fit");
    let engagement_dimension = dim("engagement");
    for (key, bands) in [("fit", &raw.fit), ("engagement", &raw.engagement)] {
        if bands.is_empty() {
            ok = false;
            diags.push(
                Diagnostic::error(
                    "missing_key",
                    Some(raw.span.clone()),
                    format!("`[grade]` has no `{key}` thresholds"),
                )
                .with_hint("e.g. `fit = { A = 40, B = 25, C = 10 }` and `engagement = { 1 = 60, 2 = 30, 3 = 10 }`"),
            );
        }
    }
    let mut letters: Vec<(String, f64)> = Vec::new();
    for (band, threshold) in &raw.fit {
        let valid = band.value.len() == 1 && band.value.chars().all(|c| c.is_ascii_uppercase() && c != 'Z');
        if !valid {
            ok = false;
            diags.push(Diagnostic::error(
                "invalid_grade",
                Some(band.span.clone()),
                format!("fit grade `{}` must be one capital letter A–Y", band.value),
            ));
        }
        letters.push((band.value.clone(), threshold.value));
    }
    let mut digits: Vec<(String, f64)> = Vec::new();
    for (band, threshold) in &raw.engagement {
        if !band.value.parse::<u8>().is_ok_and(|d| (1..9).contains(&d)) {
            ok = false;
            diags.push(Diagnostic::error(
                "invalid_grade",
                Some(band.span.clone()),
                format!("engagement grade `{}` must be a digit 1–8", band.value),
            ));
        }
        digits.push((band.value.clone(), threshold.value));
    }
    if !ok {
        return None;
    }
    let fit_fallback = letters.iter().map(|(l, _)| l.as_bytes()[0]).max().map(|b| char::from(b + 1).to_string())?;
    let engagement_fallback =
        digits.iter().filter_map(|(d, _)| d.parse::<u8>().ok()).max().map(|d| (d + 1).to_string())?;
    letters.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    digits.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Some(Grade {
        fit_dimension: fit_dimension?,
        engagement_dimension: engagement_dimension?,
        fit: letters,
        fit_fallback,
        engagement: digits,
        engagement_fallback,
    })
}

/// Compiles a condition, reporting CEL errors at their position in the model file.
pub(super) fn compile(
    source: &str,
    text: &Spanned<String>,
    vars: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<Program> {
    match cel::compile(&text.value, vars) {
        Ok(program) => Some(program),
        Err(errors) => {
            for error in errors {
                diags.push(Diagnostic::error(
                    "invalid_condition",
                    Some(condition_span(source, &text.span, &error.span)),
                    error.message,
                ));
            }
            None
        }
    }
}

/// Maps a byte range inside a condition's decoded text to the model file, accounting for the
/// string's quotes and, in basic strings, escape sequences.
pub(super) fn condition_span(source: &str, value_span: &Range<usize>, inner: &Range<usize>) -> Range<usize> {
    let Some(raw) = source.get(value_span.clone()) else { return value_span.clone() };
    let (open, literal) = if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with('\'') {
        (1, true)
    } else {
        (1, false)
    };
    let mut body_start = value_span.start + open;
    // A newline right after a multi-line opening delimiter is not part of the string.
    if open == 3 {
        if source[body_start..].starts_with("\r\n") {
            body_start += 2;
        } else if source[body_start..].starts_with('\n') {
            body_start += 1;
        }
    }
    let map = |offset: usize| -> usize {
        if literal {
            return body_start + offset;
        }
        let body = &source[body_start..value_span.end];
        let mut decoded = 0;
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if decoded >= offset {
                return body_start + i;
            }
            if c == '\\' {
                // `\n`, `\"`, `\\` … decode to one byte; `\uXXXX` and `\UXXXXXXXX` to their character.
                let digits = match chars.next().map(|(_, letter)| letter) {
                    Some('u') => 4,
                    Some('U') => 8,
                    _ => 0,
                };
                let hex: String = (0..digits).filter_map(|_| chars.next().map(|(_, d)| d)).collect();
                decoded += u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).map_or(1, char::len_utf8);
            } else {
                decoded += c.len_utf8();
            }
        }
        value_span.end
    };
    let start = map(inner.start);
    let end = map(inner.end).max(start);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_spans_map_through_quotes_and_escapes() {
        let src = r#"a = 'x.y == 1'"#;
        // decoded `x.y == 1`: `y` is at decoded offset 2, raw offset 4 + 1 (quote) + 2
        assert_eq!(condition_span(src, &(4..src.len()), &(2..3)), 7..8);
        let src = r#"a = "x\\y.z""#;
        // decoded text is `x\y.z`: `.z` starts at decoded offset 3, raw offset 4 + 1 + 4
        assert_eq!(condition_span(src, &(4..src.len()), &(3..5)), 9..11);
        let src = "a = '''\nlead.x'''";
        assert_eq!(condition_span(src, &(4..src.len()), &(0..4)), 8..12);
    }
}
