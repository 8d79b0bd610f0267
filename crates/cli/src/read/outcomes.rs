//! Outcomes CSV: `lead_id,outcome,at` with outcome in converted|won|lost|disqualified.

use std::collections::HashMap;
use std::path::Path;

use leadscore_core::time::parse_timestamp;
use leadscore_core::{Outcome, OutcomeKind};

use super::{InputError, Skipped};

pub fn read_outcomes(path: &Path, skipped: &mut Skipped) -> Result<HashMap<String, Vec<Outcome>>, InputError> {
    let (mut reader, headers) = crate::read::open_csv(path, csv::Trim::All)?;
    let column = |name: &str| -> Result<usize, InputError> {
        headers.iter().position(|h| h.eq_ignore_ascii_case(name)).ok_or_else(|| {
            InputError::new(
                path,
                Some(1),
                Some(name),
                format!("missing column (expected header `lead_id,outcome,at`, found `{}`)", headers.join(",")),
            )
        })
    };
    let (id_col, outcome_col, at_col) = (column("lead_id")?, column("outcome")?, column("at")?);
    let mut outcomes: HashMap<String, Vec<Outcome>> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                skipped.handle(InputError::new(path, line, None, e.to_string()))?;
                continue;
            }
        };
        let line = record.position().map(|p| p.line());
        let id = record.get(id_col).unwrap_or("");
        let kind_text = record.get(outcome_col).unwrap_or("");
        let at_text = record.get(at_col).unwrap_or("");
        if id.is_empty() {
            skipped.handle(InputError::new(path, line, Some("lead_id"), "empty lead id"))?;
            continue;
        }
        let Some(kind) = OutcomeKind::parse(kind_text) else {
            skipped.handle(InputError::new(
                path,
                line,
                Some("outcome"),
                format!("unknown outcome `{kind_text}` (expected converted, won, lost or disqualified)"),
            ))?;
            continue;
        };
        let Some(at) = parse_timestamp(at_text) else {
            skipped.handle(InputError::new(
                path,
                line,
                Some("at"),
                format!("`{at_text}` is not an RFC 3339 timestamp"),
            ))?;
            continue;
        };
        outcomes.entry(id.to_owned()).or_default().push(Outcome { kind, at });
    }
    Ok(outcomes)
}
