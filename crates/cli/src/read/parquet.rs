//! Parquet input: rows become the same JSON objects a JSON Lines or CSV file would give. For events,
//! the columns are the Segment fields; `properties`, `traits`, `context` and `integrations` may be
//! JSON strings (as SPEC §3 allows) or Parquet groups. Timestamp columns become RFC 3339 strings.
//! Row numbers (1-based) take the place of line numbers in errors.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use leadscore_core::time::format_timestamp;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use serde_json::{Map, Value};

use super::InputError;

/// Columns that hold nested JSON and may arrive as JSON text.
const JSON_COLUMNS: &[&str] = &["properties", "traits", "context", "integrations"];

/// Whether a file is Parquet: by its `PAR1` magic bytes.
pub fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"PAR1"
}

/// Rows of a Parquet file as JSON objects.
pub struct ParquetRows {
    rows: parquet::record::reader::RowIter<'static>,
    path: std::path::PathBuf,
    row: u64,
    pub total: u64,
}

pub fn open(path: &Path) -> Result<ParquetRows, InputError> {
    let error = |e: &dyn std::fmt::Display| InputError::new(path, None, None, format!("cannot read Parquet: {e}"));
    let file = File::open(path).map_err(|e| error(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| error(&e))?;
    let total = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let rows = parquet::record::reader::RowIter::from_file_into(Box::new(reader));
    Ok(ParquetRows { rows, path: path.to_owned(), row: 0, total })
}

impl Iterator for ParquetRows {
    type Item = Result<(u64, Map<String, Value>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        self.row += 1;
        Some(match row {
            Ok(row) => row_to_object(&row, &self.path, self.row).map(|object| (self.row, object)),
            Err(e) => Err(InputError::new(&self.path, Some(self.row), None, format!("cannot read Parquet row: {e}"))),
        })
    }
}

fn row_to_object(row: &Row, path: &Path, n: u64) -> Result<Map<String, Value>, InputError> {
    let mut object = Map::new();
    for (name, field) in row.get_column_iter() {
        let value = match field {
            Field::Null => continue,
            Field::TimestampMillis(ms) => Value::String(format_timestamp(*ms)),
            Field::TimestampMicros(us) => Value::String(format_timestamp(us.div_euclid(1000))),
            Field::Str(text) if JSON_COLUMNS.contains(&name.as_str()) => serde_json::from_str(text)
                .map_err(|e| InputError::new(path, Some(n), Some(name), format!("column holds invalid JSON: {e}")))?,
            other => other.to_json_value(),
        };
        object.insert(name.clone(), value);
    }
    Ok(object)
}
