//! TOML text -> `ModelFile`: every key and value checked for shape (known keys, right types), with
//! spans, collecting all problems. Meaning (names, CEL, durations) is `check`'s job.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::{ModelFile, RawCalibration, RawDimension, RawGrade, RawRule, RawStage, Spanned, TraitType};
use crate::diagnostics::{Diagnostic, closest};

type Item<'a, 'i> = &'a toml::Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] =
    &["model", "traits", "dimensions", "rules", "stages", "grade", "events", "accounts", "calibration"];
const MODEL_KEYS: &[&str] = &["name", "description"];
const DIMENSION_KEYS: &[&str] = &["min", "max", "weight", "half_life"];
pub(super) const RULE_KEYS: &[&str] = &[
    "name",
    "dimension",
    "points",
    "if",
    "on",
    "inactive",
    "limit",
    "within",
    "per_day",
    "max_points",
    "half_life",
    "at_least",
    "for",
    "description",
];
const STAGE_KEYS: &[&str] = &["name", "when"];
const GRADE_KEYS: &[&str] = &["fit", "engagement"];
const EVENTS_KEYS: &[&str] = &["ignore"];
const ACCOUNTS_KEYS: &[&str] = &["aggregate"];
const CALIBRATION_KEYS: &[&str] = &["intercept", "slope"];

/// Parses the TOML and checks its shape. Returns what could be read even when there are errors,
/// so that `check` can report problems in the rest of the file too.
pub fn parse_model_file(source: &str) -> (ModelFile, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (root, errors) = DeTable::parse_recoverable(source);
    for error in &errors {
        diags.push(Diagnostic::error(
            "toml_syntax",
            error.span(),
            format!("invalid TOML: {}", error.message().trim_end_matches('\n').trim_end_matches('.')),
        ));
    }
    if !errors.is_empty() {
        return (ModelFile::default(), diags);
    }
    let mut file = ModelFile::default();
    let mut reader = Reader { diags: &mut diags };
    let root = root.get_ref();
    reader.unknown_keys(root, TOP_KEYS, "top-level section {}");

    match root.get("model").map(|v| reader.table(v, "model")) {
        Some(Some(table)) => {
            reader.unknown_keys(table, MODEL_KEYS, "key {} in [model]");
            file.name = reader.string(table, "name");
            file.description = reader.string(table, "description").map(|s| s.value);
        }
        Some(None) => {}
        None => reader.diags.push(
            Diagnostic::error("missing_model_name", Some(0..0), "the model has no `[model]` section with a `name`")
                .with_hint("start the file with `[model]` and `name = \"my-model\"`"),
        ),
    }
    if let Some(table) = root.get("traits").and_then(|v| reader.table(v, "traits")) {
        for (key, value) in sorted(table) {
            let ty = match value.get_ref().as_str() {
                Some("number") => Some(TraitType::Number),
                Some("string") => Some(TraitType::String),
                Some("bool") => Some(TraitType::Bool),
                Some("timestamp") => Some(TraitType::Timestamp),
                _ => None,
            };
            match ty {
                Some(ty) => file.traits.push((spanned_key(key), Spanned { value: ty, span: value.span() })),
                None => reader.diags.push(
                    Diagnostic::error(
                        "invalid_trait_type",
                        Some(value.span()),
                        format!("trait `{}` has an unknown type", key.get_ref()),
                    )
                    .with_hint("use \"number\", \"string\", \"bool\" or \"timestamp\""),
                ),
            }
        }
    }
    if let Some(table) = root.get("dimensions").and_then(|v| reader.table(v, "dimensions")) {
        for (key, value) in sorted(table) {
            let Some(dim) = reader.table(value, &format!("dimensions.{}", key.get_ref())) else { continue };
            reader.unknown_keys(dim, DIMENSION_KEYS, &format!("key {{}} in [dimensions.{}]", key.get_ref()));
            file.dimensions.push(RawDimension {
                name: spanned_key(key),
                min: reader.number(dim, "min"),
                max: reader.number(dim, "max"),
                weight: reader.number(dim, "weight"),
                half_life: reader.string(dim, "half_life"),
            });
        }
    }
    for (span, rule) in reader.array_of_tables(root, "rules") {
        reader.unknown_keys(rule, RULE_KEYS, "key {} in a [[rules]] entry");
        file.rules.push(RawRule {
            span,
            name: reader.string(rule, "name"),
            dimension: reader.string(rule, "dimension"),
            points: reader.number(rule, "points"),
            condition_if: reader.string(rule, "if"),
            on: reader.string(rule, "on"),
            inactive: reader.string(rule, "inactive"),
            limit: reader.integer(rule, "limit"),
            within: reader.string(rule, "within"),
            per_day: reader.integer(rule, "per_day"),
            max_points: reader.number(rule, "max_points"),
            half_life: reader.string(rule, "half_life"),
            at_least: reader.integer(rule, "at_least"),
            for_: reader.string(rule, "for"),
            description: reader.string(rule, "description").map(|s| s.value),
            keys: rule.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
        });
    }
    for (span, stage) in reader.array_of_tables(root, "stages") {
        reader.unknown_keys(stage, STAGE_KEYS, "key {} in a [[stages]] entry");
        file.stages.push(RawStage { span, name: reader.string(stage, "name"), when: reader.string(stage, "when") });
    }
    if let Some(item) = root.get("grade")
        && let Some(grade) = reader.table(item, "grade")
    {
        reader.unknown_keys(grade, GRADE_KEYS, "key {} in [grade]");
        let mut read_bands = |key: &str| -> Vec<(Spanned<String>, Spanned<f64>)> {
            let Some(bands) = grade.get(key).and_then(|v| reader.table(v, &format!("grade.{key}"))) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (band, value) in sorted(bands) {
                match number_of(value.get_ref()) {
                    Some(n) => out.push((spanned_key(band), Spanned { value: n, span: value.span() })),
                    None => reader.type_error(value, &format!("grade.{key}.{}", band.get_ref()), "a number"),
                }
            }
            out
        };
        let fit = read_bands("fit");
        let engagement = read_bands("engagement");
        file.grade = Some(RawGrade { span: item.span(), fit, engagement });
    }
    if let Some(events) = root.get("events").and_then(|v| reader.table(v, "events")) {
        reader.unknown_keys(events, EVENTS_KEYS, "key {} in [events]");
        file.ignore = reader.string(events, "ignore");
    }
    if let Some(accounts) = root.get("accounts").and_then(|v| reader.table(v, "accounts")) {
        reader.unknown_keys(accounts, ACCOUNTS_KEYS, "key {} in [accounts]");
        file.aggregate = reader.string(accounts, "aggregate");
    }
    if let Some(item) = root.get("calibration")
        && let Some(calibration) = reader.table(item, "calibration")
    {
        reader.unknown_keys(calibration, CALIBRATION_KEYS, "key {} in [calibration]");
        file.calibration = Some(RawCalibration {
            span: item.span(),
            intercept: reader.number(calibration, "intercept"),
            slope: reader.number(calibration, "slope"),
        });
    }
    (file, diags)
}

/// Table entries in source order (the TOML map is sorted by key; model order is file order).
fn sorted<'a, 'i>(table: &'a DeTable<'i>) -> Vec<(&'a toml::Spanned<std::borrow::Cow<'i, str>>, Item<'a, 'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn spanned_key(key: &toml::Spanned<std::borrow::Cow<'_, str>>) -> Spanned<String> {
    Spanned { value: key.get_ref().to_string(), span: key.span() }
}

fn number_of(value: &DeValue<'_>) -> Option<f64> {
    match value {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|i| i as f64),
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            match text.as_str() {
                "inf" | "+inf" | "-inf" | "nan" | "+nan" | "-nan" => None,
                _ => text.parse().ok(),
            }
        }
        _ => None,
    }
}

struct Reader<'d> {
    diags: &'d mut Vec<Diagnostic>,
}

impl Reader<'_> {
    fn unknown_keys(&mut self, table: &DeTable<'_>, known: &[&str], what: &str) {
        for (key, _) in sorted(table) {
            let name = key.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let mut diag = Diagnostic::error(
                "unknown_key",
                Some(key.span()),
                format!("unknown {what}", what = what.replacen("{}", &format!("`{name}`"), 1)),
            );
            diag = match closest(name, known.iter().copied()) {
                Some(suggestion) => diag.with_hint(format!("did you mean `{suggestion}`?")),
                None => diag.with_hint(format!("known: {}", known.join(", "))),
            };
            self.diags.push(diag);
        }
    }

    fn type_error(&mut self, item: Item<'_, '_>, key: &str, expected: &str) {
        self.diags.push(Diagnostic::error(
            "invalid_type",
            Some(item.span()),
            format!("`{key}` must be {expected}, found {}", item.get_ref().type_str()),
        ));
    }

    fn table<'a, 'i>(&mut self, item: Item<'a, 'i>, key: &str) -> Option<&'a DeTable<'i>> {
        let table = item.get_ref().as_table();
        if table.is_none() {
            self.type_error(item, key, "a table");
        }
        table
    }

    fn string(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<String>> {
        let item = table.get(key)?;
        match item.get_ref().as_str() {
            Some(s) => Some(Spanned { value: s.to_owned(), span: item.span() }),
            None => {
                self.type_error(item, key, "a string");
                None
            }
        }
    }

    fn number(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<f64>> {
        let item = table.get(key)?;
        match number_of(item.get_ref()) {
            Some(n) => Some(Spanned { value: n, span: item.span() }),
            None => {
                self.type_error(item, key, "a finite number");
                None
            }
        }
    }

    fn integer(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<i64>> {
        let item = table.get(key)?;
        let value = match item.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match value {
            Some(n) => Some(Spanned { value: n, span: item.span() }),
            None => {
                self.type_error(item, key, "an integer");
                None
            }
        }
    }

    fn array_of_tables<'a, 'i>(&mut self, root: &'a DeTable<'i>, key: &str) -> Vec<(Range<usize>, &'a DeTable<'i>)> {
        let Some(item) = root.get(key) else { return Vec::new() };
        let Some(array) = item.get_ref().as_array() else {
            self.type_error(item, key, &format!("an array of tables (`[[{key}]]`)"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in array.iter() {
            match entry.get_ref().as_table() {
                Some(table) => out.push((table_span(entry.span(), table), table)),
                None => self.type_error(entry, key, "a table"),
            }
        }
        out
    }
}

/// The span of an array-of-tables entry: `[[rules]]` entries report an empty span, so use the
/// range covered by their keys and values.
fn table_span(span: Range<usize>, table: &DeTable<'_>) -> Range<usize> {
    if span.start < span.end {
        return span;
    }
    let start = table.iter().map(|(k, _)| k.span().start).min();
    let end = table.iter().map(|(_, v)| v.span().end).max();
    match (start, end) {
        (Some(start), Some(end)) => start..end,
        _ => span,
    }
}
