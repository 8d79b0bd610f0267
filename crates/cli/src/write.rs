//! Writing scores: CSV (default) or JSON Lines, `lead_id`, one column per dimension in model order,
//! `total`, `stage`, `grade` (if graded), `probability` (if calibrated); with `--explain` (JSON Lines)
//! the contributions too. Numbers are rounded to 2 decimals (probabilities to 4).

use std::io::Write;

use leadscore_core::engine::round2;
use leadscore_core::time::format_timestamp;
use leadscore_core::{CheckedModel, Score};
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
                let mut object = Map::new();
                object.insert("lead_id".to_owned(), json!(s.lead_id));
                for (dim, value) in model.dimensions.iter().zip(&s.dimensions) {
                    object.insert(dim.name.clone(), number(*value));
                }
                object.insert("total".to_owned(), number(s.total));
                object.insert("stage".to_owned(), json!(s.stage));
                if graded {
                    object.insert("grade".to_owned(), json!(s.grade));
                }
                if calibrated {
                    object.insert("probability".to_owned(), json!(s.probability.map(probability)));
                }
                if explain {
                    let contributions: Vec<Value> = s
                        .contributions
                        .iter()
                        .map(|c| {
                            json!({
                                "rule": c.rule,
                                "dimension": c.dimension,
                                "points": round2(c.points),
                                "matched": c.matched,
                                "last_matched_at": c.last_matched_at.map(format_timestamp),
                            })
                        })
                        .collect();
                    object.insert("contributions".to_owned(), Value::Array(contributions));
                }
                serde_json::to_writer(&mut *out, &Value::Object(object))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}
