//! Reading the input files of `score` (and later `backtest`/`train`): leads CSV, events JSON Lines,
//! outcomes CSV. Every problem names the file, the line and the field; with `--skip-invalid` a bad
//! line is counted and skipped instead of stopping the run.

pub mod events;
pub mod leads;
pub mod outcomes;
pub mod parquet;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

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
