//! Writing scores: CSV (default) or JSON Lines, `lead_id`, one column per dimension in model order,
//! `total`, `stage`, `grade` (if graded), `probability` (if calibrated); with `--explain` (JSON Lines)
//! the contributions too. Numbers are rounded to 2 decimals (probabilities to 4).

use std::io::Write;

use leadscore_core::engine::round2;
use leadscore_core::time::format_timestamp;
use leadscore_core::{CheckedModel, Score};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

/// What is kept of a score for writing (no traits: rows of a million leads stay small).
pub struct Row {
    pub score: Score,
}

impl Row {
    pub fn new(mut score: Score, explain: bool) -> Row {
        score.traits = Map::new();
        if !explain {
            score.contributions = Vec::new();
        }
        Row { score }
    }
}

fn number(x: f64) -> Value {
    json!(round2(x))
}

fn probability(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

/// A JSON object whose keys are written in the given order (the column order of the CSV), not
/// sorted: `lead_id` first, `contributions` last.
struct Ordered<'a, T: Serialize>(&'a [(&'a str, T)]);

impl<T: Serialize> Serialize for Ordered<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// One contribution as written with `--explain`, fields in this order.
#[derive(Serialize)]
struct ContributionOut<'a> {
    rule: &'a str,
    dimension: &'a str,
    points: f64,
    matched: usize,
    last_matched_at: Option<String>,
}

impl<'a> From<&'a leadscore_core::Contribution> for ContributionOut<'a> {
    fn from(c: &'a leadscore_core::Contribution) -> Self {
        ContributionOut {
            rule: &c.rule,
            dimension: &c.dimension,
            points: round2(c.points),
            matched: c.matched,
            last_matched_at: c.last_matched_at.map(format_timestamp),
        }
    }
}

/// A field of a JSON Lines row.
#[derive(Serialize)]
#[serde(untagged)]
enum Cell<'a> {
    Value(Value),
    Contributions(Vec<ContributionOut<'a>>),
}

pub fn write_scores(
    out: &mut dyn Write,
    model: &CheckedModel,
    rows: &[Row],
    format: Format,
    explain: bool,
) -> std::io::Result<()> {
    let graded = model.grade.is_some();
    let calibrated = model.calibration.is_some();
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut *out);
            let mut header = vec!["lead_id".to_owned()];
            header.extend(model.dimensions.iter().map(|d| d.name.clone()));
            header.extend(["total".to_owned(), "stage".to_owned()]);
            if graded {
                header.push("grade".to_owned());
            }
            if calibrated {
                header.push("probability".to_owned());
            }
            writer.write_record(&header)?;
            let mut record = Vec::with_capacity(header.len());
            for row in rows {
                let s = &row.score;
                record.clear();
                record.push(s.lead_id.clone());
                record.extend(s.dimensions.iter().map(|&d| round2(d).to_string()));
                record.push(round2(s.total).to_string());
                record.push(s.stage.clone());
                if graded {
                    record.push(s.grade.clone().unwrap_or_default());
                }
                if calibrated {
                    record.push(s.probability.map(|p| probability(p).to_string()).unwrap_or_default());
                }
                writer.write_record(&record)?;
            }
            writer.flush()?;
        }
        Format::Jsonl => {
            for row in rows {
                let s = &row.score;
                let mut fields: Vec<(&str, Cell<'_>)> = vec![("lead_id", Cell::Value(json!(s.lead_id)))];
                for (dim, value) in model.dimensions.iter().zip(&s.dimensions) {
                    fields.push((dim.name.as_str(), Cell::Value(number(*value))));
                }
                fields.push(("total", Cell::Value(number(s.total))));
                fields.push(("stage", Cell::Value(json!(s.stage))));
                if graded {
                    fields.push(("grade", Cell::Value(json!(s.grade))));
                }
                if calibrated {
                    fields.push(("probability", Cell::Value(json!(s.probability.map(probability)))));
                }
                if explain {
                    fields
                        .push(("contributions", Cell::Contributions(s.contributions.iter().map(Into::into).collect())));
                }
                serde_json::to_writer(&mut *out, &Ordered(&fields))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}
