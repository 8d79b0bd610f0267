//! What the event readers share: how a message's error is reported, and Parquet rows read as
//! JSON lines.

use std::path::Path;

use leadscore_core::engine::EventError;
use serde_json::Value;

use super::InputError;

/// Bytes of input read per parallel batch.
pub(crate) const BATCH_BYTES: usize = 8 << 20;

pub(crate) fn event_error(path: &Path, line: u64, error: EventError) -> InputError {
    let field = match &error {
        EventError::NotAnObject => None,
        EventError::MissingType | EventError::TypeNotString => Some("type"),
        EventError::BadTimestamp { field, .. } | EventError::TimeOutOfRange { field, .. } => Some(*field),
        EventError::NoTime => Some("timestamp"),
        EventError::NotAString(field) => Some(*field),
    };
    InputError::new(path, Some(line), field, error.to_string())
}

pub(crate) fn json_error(path: &Path, line: u64, error: &serde_json::Error) -> InputError {
    let message = match error.classify() {
        serde_json::error::Category::Data => "not a JSON object".to_owned(),
        _ => format!("invalid JSON at column {}: {}", error.column(), strip_position(&error.to_string())),
    };
    InputError::new(path, Some(line), None, message)
}

fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// Parquet rows turned into JSON lines (for a model that reads `event` whole, so every column).
pub(crate) struct ParquetLines(pub super::parquet::ParquetRows, pub indicatif::ProgressBar);

impl ParquetLines {
    /// Appends about `BATCH_BYTES` of messages to `buffer`, one `(line, start, end)` each; returns
    /// the rows that could not be turned into a message.
    pub(crate) fn fill(
        &mut self,
        buffer: &mut Vec<u8>,
        lines: &mut Vec<(u64, usize, usize)>,
        line_no: &mut u64,
        path: &Path,
    ) -> Result<Vec<InputError>, InputError> {
        let mut errors = Vec::new();
        while buffer.len() < BATCH_BYTES {
            let start = buffer.len();
            match self.0.next() {
                None => break,
                Some(Ok((row, object))) => {
                    self.1.inc(1);
                    *line_no = row;
                    serde_json::to_writer(&mut *buffer, &Value::Object(object))
                        .map_err(|e| InputError::new(path, Some(row), None, e.to_string()))?;
                }
                Some(Err(error)) => {
                    *line_no += 1;
                    errors.push(error);
                    continue;
                }
            }
            lines.push((*line_no, start, buffer.len()));
        }
        Ok(errors)
    }

    pub(crate) fn finish(&self) {
        self.1.finish_and_clear();
    }
}
