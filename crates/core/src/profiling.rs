//! Progressive profiling (seed 000): which missing answer would change a lead's stage or grade
//! most, so marketing knows what to ask for next on the next form. From the model's trait rules:
//! for each trait the lead has not answered (absent, empty, or a placeholder such as `n/a`), the
//! best case is that its answer makes every positive trait rule over it hold and every negative
//! one that holds now (`!has(lead.x)`) stop; the trait that would move the lead furthest (a stage,
//! then a grade, then points) is the one to ask for.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{grade_of, stage_of, total_of};
use crate::model::{CheckedModel, RuleKind};
use crate::quality::is_placeholder;
use crate::time::Millis;

/// The answer to ask a lead for next, and what it could do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AskNext {
    /// The trait to ask for.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// At most this many points more on the total.
    pub points: f64,
    /// The stage it could reach, when that is another one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The grade it could reach, when that is another one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
}

/// What the profiler needs of a scored lead.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// The lead's traits as of the score.
    pub traits: &'a Map<String, Value>,
    /// Points by rule name (the score's contributions; rules that gave nothing may be absent).
    pub points: &'a BTreeMap<&'a str, f64>,
    pub stage: &'a str,
    pub grade: Option<&'a str>,
    /// An outcome fixes the stage (`customer`, `lost`, `disqualified`): only grades can move.
    pub has_outcome: bool,
}

/// Whether the lead has not really answered `name`.
fn missing(traits: &Map<String, Value>, name: &str) -> bool {
    match traits.get(name) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty() || is_placeholder(s),
        Some(_) => false,
    }
}

/// The traits each trait rule reads (`lead.x`), by rule index.
fn traits_read(model: &CheckedModel) -> Vec<(usize, Vec<String>)> {
    model
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.kind, RuleKind::Trait { .. }))
        .map(|(i, r)| {
            let mut names: Vec<String> = r
                .kind
                .condition()
                .field_paths()
                .into_iter()
                .filter(|p| p.var == 0)
                .filter_map(|p| p.path.first().cloned())
                .filter(|first| first != "id" && first != "account")
                .collect();
            names.sort();
            names.dedup();
            (i, names)
        })
        .collect()
}

/// The missing trait whose answer could move the lead furthest, if any could give points.
pub fn ask_next(model: &CheckedModel, lead: &Scored<'_>, as_of: Millis) -> Option<AskNext> {
    // Each dimension's points before its bounds, from the rules.
    let mut raw = vec![0.0; model.dimensions.len()];
    for rule in &model.rules {
        raw[rule.dimension] += lead.points.get(rule.name.as_str()).copied().unwrap_or(0.0);
    }
    let clamp = |dims: &mut [f64]| {
        for (score, dim) in dims.iter_mut().zip(&model.dimensions) {
            if let Some(min) = dim.min {
                *score = score.max(min);
            }
            if let Some(max) = dim.max {
                *score = score.min(max);
            }
        }
    };
    let mut now = raw.clone();
    clamp(&mut now);
    let total_now = total_of(model, &now);
    let mut gains: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (r, names) in traits_read(model) {
        let rule = &model.rules[r];
        let holds = lead.points.get(rule.name.as_str()).is_some_and(|p| *p != 0.0);
        // Best case: a positive rule comes to hold, a negative one that holds stops.
        let gain = match (holds, rule.points > 0.0) {
            (false, true) => rule.points,
            (true, false) => -rule.points,
            _ => 0.0,
        };
        for name in names.iter().filter(|n| missing(lead.traits, n)) {
            gains.entry(name.clone()).or_insert_with(|| vec![0.0; model.dimensions.len()])[rule.dimension] += gain;
        }
    }
    let mut best: Option<((bool, bool, f64), AskNext)> = None;
    for (name, gain) in gains {
        let mut dims: Vec<f64> = raw.iter().zip(&gain).map(|(a, g)| a + g).collect();
        clamp(&mut dims);
        let total = total_of(model, &dims);
        let points = total - total_now;
        if points <= 1e-9 {
            continue;
        }
        let stage = (!lead.has_outcome).then(|| stage_of(model, &dims, total, as_of)).filter(|s| s != lead.stage);
        let grade = grade_of(model, &dims).filter(|g| Some(g.as_str()) != lead.grade);
        let rank = (stage.is_some(), grade.is_some(), points);
        let better = best.as_ref().is_none_or(|(b, _)| {
            (rank.0, rank.1).cmp(&(b.0, b.1)).then(rank.2.total_cmp(&b.2)) == std::cmp::Ordering::Greater
        });
        if better {
            let ask = AskNext { trait_name: name, points: crate::engine::round2(points), stage, grade };
            best = Some((rank, ask));
        }
    }
    best.map(|(_, ask)| ask)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::check_model;

    const MODEL: &str = r#"
[model]
name = "p"

[dimensions.fit]
max = 100
[dimensions.engagement]

[[rules]]
name = "Big company"
dimension = "fit"
if = 'has(lead.employees) && lead.employees >= 200'
points = 25

[[rules]]
name = "Senior"
dimension = "fit"
if = 'has(lead.title) && lead.title.contains("VP")'
points = 10

[[rules]]
name = "No phone"
dimension = "fit"
if = '!has(lead.phone)'
points = -5

[[rules]]
name = "Demo"
dimension = "engagement"
on = 'event.event == "Demo"'
points = 30

[[stages]]
name = "mql"
when = "total >= 50"

[grade]
fit = { A = 30, B = 10 }
engagement = { 1 = 30 }
"#;

    fn ask(traits: serde_json::Value, points: &[(&str, f64)], stage: &str, grade: &str) -> Option<AskNext> {
        let model = check_model(MODEL).model.unwrap();
        let traits = traits.as_object().cloned().unwrap();
        let points: BTreeMap<&str, f64> = points.iter().copied().collect();
        let lead = Scored { traits: &traits, points: &points, stage, grade: Some(grade), has_outcome: false };
        ask_next(&model, &lead, 0)
    }

    #[test]
    fn the_answer_that_moves_a_stage_comes_first() {
        // 30 engagement, fit 10 - 5: total 35. Employees could add 25 (mql at 60); a title 10.
        let got = ask(json_traits(), &[("Senior", 10.0), ("No phone", -5.0), ("Demo", 30.0)], "lead", "C1");
        let got = got.unwrap();
        assert_eq!(got.trait_name, "employees");
        assert_eq!((got.points, got.stage.as_deref(), got.grade.as_deref()), (25.0, Some("mql"), Some("A1")));
    }

    fn json_traits() -> serde_json::Value {
        serde_json::json!({ "title": "VP Sales", "employees": "n/a" })
    }

    #[test]
    fn a_negative_rule_that_stops_counts_and_answered_traits_are_not_asked() {
        // Employees answered (50: no points); the phone would take away the -5.
        let traits = serde_json::json!({ "title": "VP Sales", "employees": 50 });
        let got = ask(traits, &[("Senior", 10.0), ("No phone", -5.0)], "lead", "C2").unwrap();
        assert_eq!((got.trait_name.as_str(), got.points, got.stage), ("phone", 5.0, None));
        assert_eq!(got.grade.as_deref(), Some("B2"));
        // Everything answered: nothing to ask.
        let all = serde_json::json!({ "title": "VP", "employees": 500, "phone": "+1 555" });
        assert_eq!(ask(all, &[("Senior", 10.0), ("Big company", 25.0)], "lead", "A2"), None);
    }
}
