//! The learned scorecard as an ordinary model file: one `predicted` dimension, one rule per
//! feature with non-zero points (trait conditions as `if`, event counts as count rules), string
//! declarations for the trait columns it reads, and the `[calibration]` of the fit.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::features::{Condition, Kind, Prepared};
use super::{Card, CrossValidation, Options, Source};

/// One rule of the learned model.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedRule {
    pub name: String,
    /// The CEL condition (`if` for trait rules, `on` for count rules).
    pub condition: String,
    /// For count rules: `(at_least, within_days)`.
    pub count: Option<(f64, u32)>,
    pub points: f64,
    /// The columns it reads.
    pub columns: Vec<String>,
    /// A pair's rule: each column's part of the name (one part for a one-column rule).
    pub parts: Vec<String>,
    /// Training rows it holds for, and how many of them converted.
    pub rows: usize,
    pub converted: usize,
}

/// A factor: the rules of one column (or one pair of columns, for interactions) and how much
/// they move the total: the standard deviation of their summed points over the training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    pub name: String,
    pub spread: f64,
    /// Indices into the trained rules.
    pub rules: Vec<usize>,
}

pub(crate) struct Written {
    pub model: String,
    pub rules: Vec<LearnedRule>,
    pub factors: Vec<Factor>,
}

/// A number as a CEL double literal.
fn cel_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.1}") } else { format!("{x}") }
}

fn cel_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML string: a literal string when possible (CEL reads best that way), else a basic one.
pub(crate) fn toml_string(s: &str) -> String {
    if !s.contains('\'') && !s.chars().any(char::is_control) {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn basic_string(s: &str) -> String {
    let literal = toml_string(s);
    if literal.starts_with('"') {
        return literal;
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn trait_access(name: &str) -> String {
    format!("lead[{}]", cel_string(name))
}

fn list_names(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] if values.len() <= 4 => format!("{} or {last}", init.join(", ")),
        _ => format!("one of {}, … ({} values)", values[..3].join(", "), values.len()),
    }
}

/// A readable name and a CEL trait condition for a trait condition.
fn describe(condition: &Condition, columns: &[Prepared]) -> (String, String) {
    match condition {
        Condition::Range { column, lo, hi } => {
            let name = &columns[*column].name;
            let x = format!("double({})", trait_access(name));
            match (lo, hi) {
                (None, Some(h)) => (format!("{name} < {h}"), format!("{x} < {}", cel_number(*h))),
                (Some(l), None) => (format!("{name} ≥ {l}"), format!("{x} >= {}", cel_number(*l))),
                (Some(l), Some(h)) => {
                    (format!("{name} {l}–{h}"), format!("{x} >= {} && {x} < {}", cel_number(*l), cel_number(*h)))
                }
                // Every present value: `x == x` holds for numbers and fails for text.
                (None, None) => (format!("{name} is given"), format!("{x} == {x}")),
            }
        }
        Condition::Levels { column, codes } => {
            let name = &columns[*column].name;
            let levels: Vec<&str> = match &columns[*column].kind {
                Kind::Categorical { levels, .. } => codes.iter().map(|&c| levels[c as usize].as_str()).collect(),
                Kind::Numeric(_) => Vec::new(),
            };
            let access = trait_access(name);
            let cel = match levels.as_slice() {
                [one] => format!("{access} == {}", cel_string(one)),
                _ => format!("{access} in [{}]", levels.iter().map(|l| cel_string(l)).collect::<Vec<_>>().join(", ")),
            };
            (format!("{name} is {}", list_names(&levels)), cel)
        }
        Condition::AtLeast { column, n } => {
            let name = &columns[*column].name;
            (format!("{name} ≥ {n}"), format!("double({}) >= {}", trait_access(name), cel_number(*n)))
        }
        Condition::Both(a, b) => {
            let (na, ca) = describe(a, columns);
            let (nb, cb) = describe(b, columns);
            (format!("{na} and {nb}"), format!("({ca}) && ({cb})"))
        }
    }
}

/// An event count condition as a count rule.
struct CountRule<'a> {
    /// "Label: at least n in d days".
    name: String,
    on: &'a str,
    /// `(at_least, within_days)`.
    count: (f64, u32),
}

/// The count rule of an `AtLeast` condition on an event count column.
fn count_rule<'a>(condition: &Condition, columns: &'a [Prepared]) -> Option<CountRule<'a>> {
    let Condition::AtLeast { column, n } = condition else { return None };
    let Source::EventCount { on, label, within_days } = &columns[*column].source else { return None };
    Some(CountRule { name: format!("{label}: at least {n} in {within_days} days"), on, count: (*n, *within_days) })
}

pub(crate) fn write(
    card: &Card,
    columns: &[Prepared],
    labels: &[bool],
    cv: &CrossValidation,
    options: &Options,
    positives: usize,
) -> Written {
    let mut rules: Vec<LearnedRule> = Vec::new();
    let mut factor_of_rule: Vec<String> = Vec::new();
    let mut used_names: BTreeMap<String, usize> = BTreeMap::new();
    for (condition, &points) in card.conditions.iter().zip(&card.points) {
        if points == 0.0 {
            continue;
        }
        let (mut name, cel, count) = if let Some(rule) = count_rule(condition, columns) {
            (rule.name, rule.on.to_owned(), Some(rule.count))
        } else if let Condition::Both(a, b) = condition
            && let Some(rule) = count_rule(b, columns)
        {
            // A trait condition and an event count: a count rule of the events of leads with
            // the trait.
            let (trait_name, trait_cel) = describe(a, columns);
            (format!("{trait_name} and {}", rule.name), format!("({}) && ({trait_cel})", rule.on), Some(rule.count))
        } else {
            let (name, cel) = describe(condition, columns);
            (name, cel, None)
        };
        let seen = used_names.entry(name.clone()).or_insert(0);
        *seen += 1;
        if *seen > 1 {
            name = format!("{name} ({seen})");
        }
        let column_names: Vec<String> = condition.columns().iter().map(|&c| columns[c].name.clone()).collect();
        let parts = match condition {
            Condition::Both(a, b) => {
                let b_name = count_rule(b, columns).map_or_else(|| describe(b, columns).0, |rule| rule.name);
                vec![describe(a, columns).0, b_name]
            }
            _ => vec![name.clone()],
        };
        let matched: Vec<usize> = (0..labels.len()).filter(|&r| condition.holds(columns, r)).collect();
        let converted = matched.iter().filter(|&&r| labels[r]).count();
        factor_of_rule.push(column_names.join(" × "));
        rules.push(LearnedRule {
            name,
            condition: cel,
            count,
            points,
            columns: column_names,
            parts,
            rows: matched.len(),
            converted,
        });
    }

    // Factors: the spread of each column's (or column pair's) points over the training rows.
    let mut factors: Vec<Factor> = Vec::new();
    for (i, key) in factor_of_rule.iter().enumerate() {
        match factors.iter_mut().find(|f| &f.name == key) {
            Some(f) => f.rules.push(i),
            None => factors.push(Factor { name: key.clone(), spread: 0.0, rules: vec![i] }),
        }
    }
    let kept: Vec<(usize, &Condition)> =
        card.conditions.iter().enumerate().filter(|(j, _)| card.points[*j] != 0.0).collect();
    for factor in &mut factors {
        let mut sum = 0.0;
        let mut sum_sq = 0.0;
        for r in 0..labels.len() {
            let total: f64 =
                factor.rules.iter().filter(|&&i| kept[i].1.holds(columns, r)).map(|&i| card.points[kept[i].0]).sum();
            sum += total;
            sum_sq += total * total;
        }
        let n = labels.len().max(1) as f64;
        factor.spread = (sum_sq / n - (sum / n) * (sum / n)).max(0.0).sqrt();
    }
    factors.sort_by(|a, b| b.spread.total_cmp(&a.spread).then(a.name.cmp(&b.name)));

    let mut model = String::new();
    let _ =
        writeln!(model, "# Learned by `leadscore train`: a scorecard. Each rule's points are learned; missing values");
    let _ = writeln!(model, "# and categories not seen in training match no rule (0 points). probability =");
    let _ = writeln!(
        model,
        "# 1 / (1 + e^-(intercept + slope * total)); {} points double the odds.",
        options.points_to_double
    );
    let _ = writeln!(model, "[model]");
    let _ = writeln!(model, "name = {}", basic_string(&options.name));
    let rate = positives as f64 / labels.len().max(1) as f64;
    let mut description = options.description.trim().to_owned();
    if !description.is_empty() {
        description.push_str("; ");
    }
    let _ = write!(
        description,
        "{} rows, {:.1}% converted; {}-fold CV ROC AUC {:.3} ± {:.3}, log-loss {:.3}",
        labels.len(),
        100.0 * rate,
        cv.folds,
        cv.auc_mean(),
        cv.auc_sd(),
        cv.log_loss_mean()
    );
    let _ = writeln!(model, "description = {}", basic_string(&description));
    let _ = writeln!(model);
    let mut traits: Vec<&str> = Vec::new();
    for condition in card.conditions.iter().zip(&card.points).filter(|(_, p)| **p != 0.0).map(|(c, _)| c) {
        for c in condition.columns() {
            if columns[c].source == Source::Trait && !traits.contains(&columns[c].name.as_str()) {
                traits.push(&columns[c].name);
            }
        }
    }
    if !traits.is_empty() {
        let _ = writeln!(model, "# Read as text so that any cell scores; numbers are compared with double().");
        let _ = writeln!(model, "[traits]");
        for t in &traits {
            let _ = writeln!(model, "{} = \"string\"", basic_string(t));
        }
        let _ = writeln!(model);
    }
    let _ = writeln!(model, "[dimensions.predicted]");
    for rule in &rules {
        let _ = writeln!(model);
        let _ = writeln!(model, "[[rules]]");
        let _ = writeln!(model, "name = {}", basic_string(&rule.name));
        let _ = writeln!(model, "dimension = \"predicted\"");
        match rule.count {
            None => {
                let _ = writeln!(model, "if = {}", toml_string(&rule.condition));
            }
            Some((at_least, days)) => {
                let _ = writeln!(model, "on = {}", toml_string(&rule.condition));
                let _ = writeln!(model, "at_least = {}", at_least.max(1.0).round());
                let _ = writeln!(model, "within = \"{days}d\"");
            }
        }
        let _ = writeln!(model, "points = {:.1}", rule.points);
    }
    let _ = writeln!(model);
    model.push_str(&calibration_table(card.intercept, card.slope, None));
    Written { model, rules, factors }
}

/// The model file's last table, `[calibration]`, after a comment line saying how it was fitted.
pub(crate) fn calibration_table(intercept: f64, slope: f64, comment: Option<&str>) -> String {
    let mut table = String::new();
    if let Some(comment) = comment {
        let _ = writeln!(table, "# {comment}");
    }
    let _ = writeln!(table, "[calibration]");
    let _ = writeln!(table, "intercept = {intercept}");
    let _ = writeln!(table, "slope = {slope}");
    table
}
