//! Editing a model in the dashboard: stage conditions, grade bands, a rule's points, window and
//! half-life, removing a rule and adding one from a template. Edits are made to the TOML text
//! itself (format-preserving: comments and untouched values stay as written), so the file stays
//! the source of truth; the result goes through the same check as an upload and is saved as a
//! new, inactive version, to be previewed and then activated.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use crate::app::{App, check_source, render};
use crate::error::{Code, ServiceError};
use crate::models::{ModelCreated, model_not_found};

/// A version's editable parts, as written in its file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DraftForm {
    pub name: String,
    pub dimensions: Vec<String>,
    pub stages: Vec<StageField>,
    pub grades: Vec<GradeField>,
    pub rules: Vec<RuleField>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageField {
    pub index: usize,
    pub name: String,
    pub when: String,
}

/// One band of `[grade]`: `fit.A >= 40`.
#[derive(Debug, Clone, Serialize)]
pub struct GradeField {
    /// `fit` or `engagement`.
    pub dimension: String,
    pub band: String,
    pub threshold: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleField {
    pub index: usize,
    pub name: String,
    pub dimension: String,
    /// trait, event, count or inactivity.
    pub kind: &'static str,
    pub condition: String,
    pub points: String,
    /// The window (`within`, or `for` of an inactivity rule); `None` where the kind has none.
    pub window: Option<String>,
    /// Event rules only.
    pub half_life: Option<String>,
}

/// What a dashboard form asks to change, by position in the file it was made from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub stages: BTreeMap<usize, String>,
    /// `(dimension, band) -> threshold`.
    pub grades: BTreeMap<(String, String), String>,
    pub points: BTreeMap<usize, String>,
    pub windows: BTreeMap<usize, String>,
    pub half_lives: BTreeMap<usize, String>,
    pub remove: BTreeSet<usize>,
    pub add: Option<NewRule>,
}

/// A rule added from a template.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRule {
    pub template: String,
    pub dimension: String,
    pub name: String,
    pub points: String,
}

/// A rule to start from: common signals in B2B scoring (the seeds' and HubSpot's examples).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Template {
    pub id: &'static str,
    pub label: &'static str,
    pub points: i64,
    /// The rule's keys after `name`, `dimension` and `points`, as TOML.
    #[serde(skip)]
    body: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        id: "pricing_page",
        label: "Visited the pricing page",
        points: 5,
        body: "on = 'event.type == \"page\" && has(event.properties.path) && event.properties.path.startsWith(\"/pricing\")'\nhalf_life = \"14d\"",
    },
    Template {
        id: "demo_requested",
        label: "Requested a demo",
        points: 30,
        body: "on = 'event.type == \"track\" && event.event == \"Demo Requested\"'\nlimit = 1",
    },
    Template {
        id: "emails_opened",
        label: "Opened 5+ e-mails in 30 days",
        points: 10,
        body: "on = 'event.type == \"track\" && event.event == \"Email Opened\"'\nat_least = 5\nwithin = \"30d\"",
    },
    Template {
        id: "careers_page",
        label: "Visited the careers page (a job seeker)",
        points: -10,
        body: "on = 'event.type == \"page\" && has(event.properties.path) && event.properties.path.startsWith(\"/careers\")'\nlimit = 3",
    },
    Template {
        id: "unsubscribed",
        label: "Unsubscribed",
        points: -25,
        body: "on = 'event.type == \"track\" && event.event == \"Unsubscribed\"'\nlimit = 1",
    },
    Template {
        id: "went_cold",
        label: "No visit or action for 60 days",
        points: -20,
        body: "inactive = 'event.type == \"page\" || event.type == \"track\"'\nfor = \"60d\"",
    },
    Template {
        id: "senior_title",
        label: "Senior title (VP, director, head of, C-level)",
        points: 15,
        body: "if = 'has(lead.title) && lead.title.matches(\"(?i)\\\\b(vp|vice president|director|head of|chief|ceo|cto|cfo|coo)\\\\b\")'",
    },
    Template {
        id: "free_email",
        label: "Free e-mail address on a business form",
        points: -10,
        body: "if = 'has(lead.email) && is_free_email(lead.email)'",
    },
    Template {
        id: "company_size",
        label: "Company of 200 or more employees",
        points: 10,
        body: "if = 'has(lead.employees) && lead.employees >= 200'",
    },
];

/// A mistake in a form field, named by what the user sees.
fn field_error(message: String) -> ServiceError {
    ServiceError::user(Code::Unprocessable, message)
}

fn parse_doc(source: &str) -> Result<DocumentMut, ServiceError> {
    source.parse::<DocumentMut>().map_err(|e| field_error(format!("the model file is not TOML: {e}")))
}

/// A value as written in the file, without its spacing and comments (strings without quotes).
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.value().clone(),
        other => {
            let mut bare = other.clone();
            bare.decor_mut().clear();
            bare.to_string().trim().to_owned()
        }
    }
}

fn text_of(item: Option<&Item>) -> Option<String> {
    item?.as_value().map(plain)
}

fn rules_of(doc: &DocumentMut) -> Option<&ArrayOfTables> {
    doc.get("rules").and_then(Item::as_array_of_tables)
}

fn kind_of(rule: &Table) -> &'static str {
    match (rule.contains_key("if"), rule.contains_key("inactive"), rule.contains_key("at_least")) {
        (true, _, _) => "trait",
        (_, true, _) => "inactivity",
        (_, _, true) => "count",
        _ => "event",
    }
}

/// The editable parts of a model file.
pub fn draft_form(source: &str) -> Result<DraftForm, ServiceError> {
    let doc = parse_doc(source)?;
    let name = doc.get("model").and_then(|m| text_of(m.get("name"))).unwrap_or_default();
    let dimensions: Vec<String> = doc
        .get("dimensions")
        .and_then(Item::as_table_like)
        .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default();
    let stages = doc
        .get("stages")
        .and_then(Item::as_array_of_tables)
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(index, s)| StageField {
                    index,
                    name: text_of(s.get("name")).unwrap_or_default(),
                    when: text_of(s.get("when")).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut grades = Vec::new();
    if let Some(grade) = doc.get("grade").and_then(Item::as_table_like) {
        for dimension in ["fit", "engagement"] {
            if let Some(bands) = grade.get(dimension).and_then(Item::as_table_like) {
                for (band, threshold) in bands.iter() {
                    grades.push(GradeField {
                        dimension: dimension.to_owned(),
                        band: band.to_owned(),
                        threshold: text_of(Some(threshold)).unwrap_or_default(),
                    });
                }
            }
        }
    }
    let rules = rules_of(&doc)
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(index, r)| {
                    let kind = kind_of(r);
                    let condition_key = match kind {
                        "trait" => "if",
                        "inactivity" => "inactive",
                        _ => "on",
                    };
                    let window_key = if kind == "inactivity" { "for" } else { "within" };
                    RuleField {
                        index,
                        name: text_of(r.get("name")).unwrap_or_default(),
                        dimension: text_of(r.get("dimension")).unwrap_or_default(),
                        kind,
                        condition: text_of(r.get(condition_key)).unwrap_or_default(),
                        points: text_of(r.get("points")).unwrap_or_default(),
                        window: (kind != "trait").then(|| text_of(r.get(window_key)).unwrap_or_default()),
                        half_life: (kind == "event").then(|| text_of(r.get("half_life")).unwrap_or_default()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DraftForm { name, dimensions, stages, grades, rules })
}

/// A number as TOML writes it: an integer when it is one.
fn number(field: &str, text: &str) -> Result<Value, ServiceError> {
    let trimmed = text.trim();
    let n: f64 = trimmed
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| field_error(format!("{field}: `{trimmed}` is not a number")))?;
    if n.fract() == 0.0 && n.abs() < 1e15 { Ok(Value::from(n as i64)) } else { Ok(Value::from(n)) }
}

/// `value` in place of `old`, unless `old` already says the same; with `old`'s spacing and
/// comment (`points = 10   # why` keeps `# why`).
fn replacement(old: Option<&Item>, mut value: Value) -> Option<Value> {
    match old.and_then(Item::as_value) {
        Some(old) if plain(old) == plain(&value) => None,
        Some(old) => {
            *value.decor_mut() = old.decor().clone();
            Some(value)
        }
        None => Some(value),
    }
}

/// Sets `key` of `table` to `value` (see [`replacement`]), or removes it when `value` is `None`.
fn set(table: &mut Table, key: &str, value: Option<Value>) {
    match value {
        None => {
            table.remove(key);
        }
        Some(value) => {
            if let Some(value) = replacement(table.get(key), value) {
                table[key] = Item::Value(value);
            }
        }
    }
}

/// The model file with `changes` made: untouched parts stay as written.
pub fn apply_changes(source: &str, changes: &Changes) -> Result<String, ServiceError> {
    let mut doc = parse_doc(source)?;
    if let Some(stages) = doc.get_mut("stages").and_then(Item::as_array_of_tables_mut) {
        for (&i, when) in &changes.stages {
            if let Some(stage) = stages.get_mut(i) {
                let name = text_of(stage.get("name")).unwrap_or_default();
                let when = when.trim();
                if when.is_empty() {
                    return Err(field_error(format!("stage `{name}`: the condition is empty")));
                }
                set(stage, "when", Some(Value::from(when)));
            }
        }
    }
    for ((dimension, band), threshold) in &changes.grades {
        let value = number(&format!("grade {dimension} {band}"), threshold)?;
        if let Some(bands) = doc.get_mut("grade").and_then(|g| g.get_mut(dimension.as_str()))
            && let Some(value) =
                replacement(bands.get(band.as_str()), value).filter(|_| bands.get(band.as_str()).is_some())
        {
            bands[band.as_str()] = Item::Value(value);
        }
    }
    if let Some(rules) = doc.get_mut("rules").and_then(Item::as_array_of_tables_mut) {
        for i in 0..rules.len() {
            let Some(rule) = rules.get_mut(i) else { continue };
            let name = text_of(rule.get("name")).unwrap_or_default();
            let kind = kind_of(rule);
            if let Some(points) = changes.points.get(&i) {
                set(rule, "points", Some(number(&format!("rule `{name}`: points"), points)?));
            }
            if let Some(window) = changes.windows.get(&i) {
                let key = if kind == "inactivity" { "for" } else { "within" };
                let window = window.trim();
                set(rule, key, (!window.is_empty()).then(|| Value::from(window)));
            }
            if let Some(half_life) = changes.half_lives.get(&i).filter(|_| kind == "event") {
                let half_life = half_life.trim();
                set(rule, "half_life", (!half_life.is_empty()).then(|| Value::from(half_life)));
            }
        }
        for &i in changes.remove.iter().rev() {
            if i < rules.len() {
                rules.remove(i);
            }
        }
    }
    if let Some(add) = &changes.add {
        let template = TEMPLATES
            .iter()
            .find(|t| t.id == add.template)
            .ok_or_else(|| field_error(format!("no rule template `{}`", add.template)))?;
        let name = if add.name.trim().is_empty() { template.label } else { add.name.trim() };
        let points = if add.points.trim().is_empty() { template.points.to_string() } else { add.points.clone() };
        let points = number(&format!("new rule `{name}`: points"), &points)?;
        let mut rule = Table::new();
        rule["name"] = toml_edit::value(name);
        rule["dimension"] = toml_edit::value(add.dimension.trim());
        rule["points"] = Item::Value(points);
        let body: DocumentMut = template
            .body
            .parse()
            .map_err(|e| ServiceError::Internal { what: "rule template", message: format!("{}: {e}", template.id) })?;
        for (key, item) in body.iter() {
            rule[key] = item.clone();
        }
        match doc.get_mut("rules").and_then(Item::as_array_of_tables_mut) {
            Some(rules) => rules.push(rule),
            None => {
                let mut rules = ArrayOfTables::new();
                rules.push(rule);
                doc["rules"] = Item::ArrayOfTables(rules);
            }
        }
    }
    Ok(doc.to_string())
}

/// What became of a dashboard edit.
#[derive(Debug)]
pub enum Draft {
    /// Checked and saved as a new (inactive) version.
    Saved(ModelCreated),
    /// Not saved: a field is wrong, or the edited model has errors. `source` is the text to edit
    /// further (with the user's changes, when they made a model file).
    Rejected { source: String, message: String, diagnostics: String },
}

impl App {
    /// The editable parts of model version `version`, and its source.
    pub fn draft_form(&self, version: i64) -> Result<(DraftForm, String), ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        Ok((draft_form(&row.source)?, row.source))
    }

    /// Saves `source` with `changes` made as a new version, through the same check as an upload
    /// (`leadscore check`'s diagnostics when it has errors).
    pub fn save_draft(&self, source: &str, changes: &Changes) -> Result<Draft, ServiceError> {
        let edited = match apply_changes(source, changes) {
            Ok(edited) => edited,
            Err(ServiceError::User { message, .. }) => {
                return Ok(Draft::Rejected { source: source.to_owned(), message, diagnostics: String::new() });
            }
            Err(e) => return Err(e),
        };
        if let Err(diagnostics) = check_source(&edited) {
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            return Ok(Draft::Rejected {
                message: format!(
                    "the edited model has {errors} error{}; nothing was saved",
                    if errors == 1 { "" } else { "s" }
                ),
                diagnostics: render("model.toml", &edited, &diagnostics),
                source: edited,
            });
        }
        self.add_model(&edited).map(Draft::Saved)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const MODEL: &str = r#"# Our model: keep this comment.
[model]
name = "m"

[dimensions.fit]
[dimensions.engagement]
half_life = "30d"

[[rules]]
name = "Pricing"   # the page that sells
dimension = "engagement"
on = 'event.type == "page"'
points = 5
within = "30d"

[[rules]]
name = "VP"
dimension = "fit"
if = 'has(lead.title)'
points = 10   # titles matter

[[stages]]
name = "mql"
when = "total >= 50"

[grade]
fit = { A = 40, B = 25 }
engagement = { 1 = 60, 2 = 30 }
"#;

    #[test]
    fn the_form_reads_the_file_as_written() {
        let form = draft_form(MODEL).unwrap();
        assert_eq!(form.dimensions, vec!["fit", "engagement"]);
        assert_eq!(form.stages[0].when, "total >= 50");
        assert_eq!(form.rules[0].points, "5");
        assert_eq!(form.rules[0].window.as_deref(), Some("30d"));
        assert_eq!(form.rules[0].half_life.as_deref(), Some(""));
        assert_eq!(form.rules[1].kind, "trait");
        assert_eq!(form.rules[1].points, "10", "without its comment");
        assert_eq!(form.rules[1].window, None);
        let bands: Vec<(String, String, String)> =
            form.grades.iter().map(|g| (g.dimension.clone(), g.band.clone(), g.threshold.clone())).collect();
        assert_eq!(bands[0], ("fit".into(), "A".into(), "40".into()));
        assert_eq!(bands[3], ("engagement".into(), "2".into(), "30".into()));
    }

    #[test]
    fn edits_change_only_what_they_name() {
        let mut changes = Changes::default();
        changes.stages.insert(0, "total >= 60".into());
        changes.grades.insert(("fit".into(), "A".into()), "45".into());
        changes.points.insert(0, "7.5".into());
        changes.points.insert(1, "10".into());
        changes.grades.insert(("engagement".into(), "1".into()), "60".into());
        changes.half_lives.insert(0, "7d".into());
        changes.windows.insert(0, String::new());
        let edited = apply_changes(MODEL, &changes).unwrap();
        assert!(edited.starts_with("# Our model: keep this comment."), "{edited}");
        assert!(edited.contains("name = \"Pricing\"   # the page that sells"), "{edited}");
        assert!(edited.contains("when = \"total >= 60\""), "{edited}");
        assert!(edited.contains("fit = { A = 45, B = 25 }"), "{edited}");
        assert!(edited.contains("engagement = { 1 = 60, 2 = 30 }"), "{edited}");
        assert!(edited.contains("points = 10   # titles matter"), "unchanged, as written: {edited}");
        assert!(edited.contains("points = 7.5"), "{edited}");
        assert!(edited.contains("half_life = \"7d\""), "{edited}");
        assert!(!edited.contains("within"), "an emptied window is removed: {edited}");
        let checked = leadscore_core::check_model(&edited).model.unwrap();
        assert_eq!(checked.rules[0].points, 7.5);
    }

    #[test]
    fn a_changed_value_keeps_its_comment() {
        let mut changes = Changes::default();
        changes.points.insert(1, "12".into());
        let edited = apply_changes(MODEL, &changes).unwrap();
        assert!(edited.contains("points = 12   # titles matter"), "{edited}");
    }

    #[test]
    fn rules_are_removed_and_added_from_templates() {
        let mut changes = Changes::default();
        changes.remove.insert(1);
        changes.add = Some(NewRule {
            template: "careers_page".into(),
            dimension: "engagement".into(),
            name: String::new(),
            points: "-15".into(),
        });
        let edited = apply_changes(MODEL, &changes).unwrap();
        let checked = leadscore_core::check_model(&edited).model.unwrap();
        let names: Vec<&str> = checked.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["Pricing", "Visited the careers page (a job seeker)"]);
        assert_eq!(checked.rules[1].points, -15.0);
        // Every template checks in a model with both dimensions.
        for t in TEMPLATES {
            let add =
                NewRule { template: t.id.into(), dimension: "fit".into(), name: t.id.into(), points: String::new() };
            let edited = apply_changes(MODEL, &Changes { add: Some(add), ..Changes::default() }).unwrap();
            let report = leadscore_core::check_model(&edited);
            assert!(report.model.is_some(), "template {}: {:?}", t.id, report.diagnostics);
        }
    }

    #[test]
    fn a_bad_number_names_its_field() {
        let mut changes = Changes::default();
        changes.points.insert(1, "ten".into());
        let e = apply_changes(MODEL, &changes).unwrap_err();
        assert_eq!(e.to_string(), "rule `VP`: points: `ten` is not a number");
    }
}
