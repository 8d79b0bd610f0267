//! Parquet input: rows become the same JSON objects a JSON Lines or CSV file would give. For events,
//! the columns are the Segment fields; `properties`, `traits`, `context` and `integrations` may be
//! JSON strings (as SPEC §3 allows) or Parquet groups. Timestamp columns become RFC 3339 strings.
//! Row numbers (1-based) take the place of line numbers in errors.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use leadscore_core::compact::FieldValue;
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

/// A flat Parquet file read column by column: only the columns the model reads, each row group
/// decoded on its own (so row groups decode in parallel), each row's values handed to the engine
/// as they are (`core::compact::read_fields`: no JSON text is made of them). Files with a column
/// this does not handle (nested groups, lists, decimals, …) are read row by row ([`open`]).
pub struct Columns {
    path: std::path::PathBuf,
    columns: Vec<Column>,
    /// Per row group: the number of its first row (1-based) and how many rows it has.
    groups: Vec<(u64, usize)>,
    pub total: u64,
}

#[derive(Debug, Clone)]
struct Column {
    /// The leaf's index in the file's schema.
    leaf: usize,
    name: String,
    kind: ColumnKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Text,
    /// Text holding JSON (`properties`, `traits`, `context`, `integrations`).
    Json,
    TimestampMillis,
    TimestampMicros,
    Int32,
    Int64,
    Double,
    Bool,
}

/// One column's values in a row group (nulls have none).
enum Values {
    Bytes(Vec<parquet::data_type::ByteArray>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Double(Vec<f64>),
    Bool(Vec<bool>),
}

/// The columns of `path` named in `wanted`, or `None` if the file is not flat (read it row by
/// row).
pub fn columns(path: &Path, wanted: &[String]) -> Result<Option<Columns>, InputError> {
    use parquet::basic::{ConvertedType, Type as Physical};
    let error = |e: &dyn std::fmt::Display| InputError::new(path, None, None, format!("cannot read Parquet: {e}"));
    let file = File::open(path).map_err(|e| error(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| error(&e))?;
    let metadata = reader.metadata();
    let schema = metadata.file_metadata().schema_descr();
    let mut columns = Vec::new();
    for leaf in 0..schema.num_columns() {
        let column = schema.column(leaf);
        let [name] = column.path().parts() else { return Ok(None) };
        if column.max_rep_level() != 0 || column.max_def_level() > 1 {
            return Ok(None);
        }
        if !wanted.iter().any(|n| n == name) {
            continue;
        }
        let kind = match (column.physical_type(), column.converted_type()) {
            (Physical::BYTE_ARRAY, ConvertedType::UTF8 | ConvertedType::JSON | ConvertedType::ENUM) => {
                if JSON_COLUMNS.contains(&name.as_str()) { ColumnKind::Json } else { ColumnKind::Text }
            }
            (Physical::INT64, ConvertedType::TIMESTAMP_MILLIS) => ColumnKind::TimestampMillis,
            (Physical::INT64, ConvertedType::TIMESTAMP_MICROS) => ColumnKind::TimestampMicros,
            (Physical::INT64, ConvertedType::NONE | ConvertedType::INT_64) => ColumnKind::Int64,
            (
                Physical::INT32,
                ConvertedType::NONE | ConvertedType::INT_32 | ConvertedType::INT_16 | ConvertedType::INT_8,
            ) => ColumnKind::Int32,
            (Physical::DOUBLE, ConvertedType::NONE) => ColumnKind::Double,
            (Physical::BOOLEAN, ConvertedType::NONE) => ColumnKind::Bool,
            _ => return Ok(None),
        };
        columns.push(Column { leaf, name: name.clone(), kind });
    }
    let mut groups = Vec::with_capacity(metadata.num_row_groups());
    let mut first = 1u64;
    for g in 0..metadata.num_row_groups() {
        let rows = usize::try_from(metadata.row_group(g).num_rows()).unwrap_or(0);
        groups.push((first, rows));
        first += rows as u64;
    }
    Ok(Some(Columns { path: path.to_owned(), columns, groups, total: first - 1 }))
}

/// One row group's columns, decoded.
pub struct Group {
    first: u64,
    rows: usize,
    /// Per column: its description, each row's value position (`u32::MAX`: null) and the values.
    columns: Vec<(Column, Vec<u32>, Values)>,
}

/// A row's column that cannot be a message field: `(column, why)`.
pub type BadColumn = (String, &'static str);

impl Columns {
    pub fn row_groups(&self) -> usize {
        self.groups.len()
    }

    /// Decodes row group `g`.
    pub fn decode(&self, g: usize) -> Result<Group, InputError> {
        use parquet::column::reader::ColumnReader;
        let path = &self.path;
        let error = |e: &dyn std::fmt::Display| InputError::new(path, None, None, format!("cannot read Parquet: {e}"));
        let Some(&(first, rows)) = self.groups.get(g) else {
            return Err(error(&format!("no row group {g}")));
        };
        // A reader of its own: row groups are decoded on several threads at once.
        let file = File::open(path).map_err(|e| error(&e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| error(&e))?;
        let group = reader.get_row_group(g).map_err(|e| error(&e))?;
        let mut columns = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let mut levels: Vec<i16> = Vec::with_capacity(rows);
            let reader = group.get_column_reader(column.leaf).map_err(|e| error(&e))?;
            macro_rules! read {
                ($r:expr, $variant:ident) => {{
                    let mut values = Vec::with_capacity(rows);
                    let mut r = $r;
                    r.read_records(rows, Some(&mut levels), None, &mut values).map_err(|e| error(&e))?;
                    Values::$variant(values)
                }};
            }
            let values = match reader {
                ColumnReader::ByteArrayColumnReader(r) => read!(r, Bytes),
                ColumnReader::Int32ColumnReader(r) => read!(r, Int32),
                ColumnReader::Int64ColumnReader(r) => read!(r, Int64),
                ColumnReader::DoubleColumnReader(r) => read!(r, Double),
                ColumnReader::BoolColumnReader(r) => read!(r, Bool),
                _ => return Err(error(&format!("column `{}` is not of the type its schema gives", column.name))),
            };
            let count = match &values {
                Values::Bytes(v) => v.len(),
                Values::Int32(v) => v.len(),
                Values::Int64(v) => v.len(),
                Values::Double(v) => v.len(),
                Values::Bool(v) => v.len(),
            };
            // A required column has no levels: every row has a value.
            let positions: Vec<u32> = if levels.is_empty() {
                (0..rows as u32).collect()
            } else {
                let mut next = 0u32;
                levels
                    .iter()
                    .map(|&level| {
                        if level == 0 {
                            u32::MAX
                        } else {
                            next += 1;
                            next - 1
                        }
                    })
                    .collect()
            };
            let present = positions.iter().filter(|&&p| p != u32::MAX).count();
            if positions.len() != rows || present != count {
                return Err(error(&format!("column `{}` does not have one value per row", column.name)));
            }
            columns.push((column.clone(), positions, values));
        }
        Ok(Group { first, rows, columns })
    }
}

impl Group {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The row's number in the file (1-based).
    pub fn row_number(&self, row: usize) -> u64 {
        self.first + row as u64
    }

    /// The fields of row `row` (null columns left out, as the row reader leaves them out) and a
    /// hash of its values (the tie-break of the event order).
    pub fn fields<'g>(&'g self, row: usize, fields: &mut Vec<(&'g str, FieldValue<'g>)>) -> Result<u64, BadColumn> {
        use std::hash::{BuildHasher, Hasher};
        fields.clear();
        let mut hasher = foldhash::fast::FixedState::with_seed(0x7061_7271_7565_7421).build_hasher();
        for (column, positions, values) in &self.columns {
            let Some(&p) = positions.get(row) else { continue };
            if p == u32::MAX {
                continue;
            }
            let p = p as usize;
            hasher.write(column.name.as_bytes());
            let value = match (values, column.kind) {
                (Values::Bytes(v), kind) => {
                    let bytes = v.get(p).map_or(&[][..], |b| b.data());
                    hasher.write(bytes);
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| (column.name.clone(), "column holds text that is not UTF-8"))?;
                    if kind == ColumnKind::Json { FieldValue::Json(text) } else { FieldValue::Text(text) }
                }
                (Values::Int64(v), ColumnKind::TimestampMillis) => {
                    let x = v.get(p).copied().unwrap_or(0);
                    hasher.write_i64(x);
                    FieldValue::Instant(x)
                }
                (Values::Int64(v), ColumnKind::TimestampMicros) => {
                    let x = v.get(p).copied().unwrap_or(0);
                    hasher.write_i64(x);
                    FieldValue::Instant(x.div_euclid(1000))
                }
                (Values::Int64(v), _) => {
                    let x = v.get(p).copied().unwrap_or(0);
                    hasher.write_i64(x);
                    FieldValue::Number(x.into())
                }
                (Values::Int32(v), _) => {
                    let x = v.get(p).copied().unwrap_or(0);
                    hasher.write_i32(x);
                    FieldValue::Number(x.into())
                }
                (Values::Double(v), _) => {
                    let x = v.get(p).copied().unwrap_or(0.0);
                    hasher.write_u64(x.to_bits());
                    // As the row reader does: a number that is not finite is null.
                    serde_json::Number::from_f64(x).map_or(FieldValue::Null, FieldValue::Number)
                }
                (Values::Bool(v), _) => {
                    let x = v.get(p).copied().unwrap_or(false);
                    hasher.write_u8(u8::from(x));
                    FieldValue::Bool(x)
                }
            };
            fields.push((column.name.as_str(), value));
        }
        Ok(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly on broken fixtures")]

    use std::sync::Arc;

    use leadscore_core::CheckedModel;
    use leadscore_core::compact::{read_fields, read_message};
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    enum Data {
        Text(Vec<Option<&'static str>>),
        Long(Vec<Option<i64>>),
        Int(Vec<Option<i32>>),
        Double(Vec<Option<f64>>),
        Bool(Vec<Option<bool>>),
    }

    fn levels<T>(values: &[Option<T>]) -> Vec<i16> {
        values.iter().map(|v| i16::from(v.is_some())).collect()
    }

    /// Writes `columns` in row groups of `group_rows` rows.
    fn write(path: &Path, schema: &str, columns: &[Data], rows: usize, group_rows: usize) {
        let schema = Arc::new(parse_message_type(schema).expect("schema"));
        let file = File::create(path).expect("create");
        let mut writer =
            SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build())).expect("writer");
        for start in (0..rows).step_by(group_rows) {
            let end = (start + group_rows).min(rows);
            let mut group = writer.next_row_group().expect("row group");
            for column in columns {
                let mut col = group.next_column().expect("column").expect("more columns");
                macro_rules! put {
                    ($values:expr, $ty:ty, $conv:expr) => {{
                        let part = &$values[start..end];
                        let data: Vec<_> = part.iter().flatten().map($conv).collect();
                        col.typed::<$ty>().write_batch(&data, Some(&levels(part)), None).expect("write");
                    }};
                }
                match column {
                    Data::Text(v) => put!(v, ByteArrayType, |s: &&str| ByteArray::from(*s)),
                    Data::Long(v) => put!(v, Int64Type, |x: &i64| *x),
                    Data::Int(v) => put!(v, Int32Type, |x: &i32| *x),
                    Data::Double(v) => put!(v, DoubleType, |x: &f64| *x),
                    Data::Bool(v) => put!(v, BoolType, |x: &bool| *x),
                }
                col.close().expect("close column");
            }
            group.close().expect("close group");
        }
        writer.close().expect("close file");
    }

    const MODEL: &str = r#"
[model]
name = "columns"
[dimensions.engagement]
[[rules]]
name = "Pricing"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path == "/pricing" && has(event.context.ip)'
points = 1
[[rules]]
name = "Scored"
dimension = "engagement"
on = 'event.score > 2.5 || event.flag == true || event.sentAt.startsWith("2024")'
points = 1
"#;

    /// Every row read by columns is the message the row reader's JSON object gives, and a row
    /// the row reader rejects is rejected, naming the same column.
    #[test]
    fn columns_read_as_the_row_reader_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.parquet");
        let rows = 7;
        let data = [
            Data::Text(vec![
                Some("page"),
                Some("track"),
                Some("page"),
                Some("identify"),
                Some("page"),
                Some("page"),
                None,
            ]),
            Data::Int(vec![Some(7), None, Some(-3), Some(8), Some(9), Some(10), Some(11)]),
            Data::Text(vec![Some("a1"), Some("a2"), None, Some("a4"), Some("a5"), Some("a6"), Some("a7")]),
            Data::Long(vec![
                Some(1_714_521_600_000_000),
                Some(1_714_521_600_123_456),
                None,
                Some(5),
                Some(0),
                Some(1),
                Some(2),
            ]),
            Data::Long(vec![
                Some(1_704_067_200_000),
                None,
                Some(1_714_521_600_000),
                Some(4),
                Some(1),
                Some(2),
                Some(3),
            ]),
            Data::Text(vec![
                Some(r#"{"path": "/pricing", "x": [1, {"y": null}]}"#),
                Some(r#"{"path": "/p\u00e9"}"#),
                Some("{bad"),
                None,
                Some(""),
                Some("7"),
                Some(r#"{"path": "/pricing"}"#),
            ]),
            Data::Text(vec![
                Some(r#"{"ip": "1.2.3.4"}"#),
                Some("{}"),
                None,
                Some(r#"{"ip": null}"#),
                None,
                None,
                Some("{}"),
            ]),
            Data::Text(vec![None, None, None, Some(r#"{"title": "CEO", "gone": null}"#), None, None, None]),
            Data::Double(vec![Some(2.75), Some(f64::NAN), None, Some(1.0), Some(-0.0), Some(1e300), Some(2.5)]),
            Data::Bool(vec![Some(true), Some(false), None, Some(true), None, Some(false), Some(true)]),
            Data::Text(vec![Some("unused"), None, None, None, None, None, None]),
        ];
        write(
            &path,
            "message events { OPTIONAL BYTE_ARRAY type (UTF8); OPTIONAL INT32 userId; OPTIONAL BYTE_ARRAY messageId (UTF8);
               OPTIONAL INT64 sentAt (TIMESTAMP(MICROS,true)); OPTIONAL INT64 timestamp (TIMESTAMP(MILLIS,true));
               OPTIONAL BYTE_ARRAY properties (UTF8); OPTIONAL BYTE_ARRAY context (UTF8); OPTIONAL BYTE_ARRAY traits (UTF8);
               OPTIONAL DOUBLE score; OPTIONAL BOOLEAN flag; OPTIONAL BYTE_ARRAY other (UTF8); }",
            &data,
            rows,
            3,
        );
        let model = CheckedModel::from_source(MODEL).expect("model");
        let wanted = model.plan.top_level_fields().expect("fields");
        let reader = columns(&path, &wanted).expect("open").expect("a flat file");
        assert_eq!(reader.row_groups(), 3);
        assert_eq!(reader.total, rows as u64);
        let mut by_columns = Vec::new();
        for g in 0..reader.row_groups() {
            let group = reader.decode(g).expect("decode");
            let mut fields = Vec::new();
            for row in 0..group.rows() {
                let n = group.row_number(row);
                let read = group.fields(row, &mut fields).map_err(|(column, why)| format!("{column}: {why}")).and_then(
                    |tie| {
                        read_fields(&model.plan, &fields, tie)
                            .map(|mut m| {
                                m.tie = 0;
                                format!("{m:?}")
                            })
                            .map_err(|e| e.to_string())
                    },
                );
                by_columns.push((n, read));
            }
        }
        let mut by_rows = Vec::new();
        for row in open(&path).expect("open rows") {
            let (n, object) = match row {
                Ok(row) => row,
                Err(e) => {
                    by_rows.push((e.line.unwrap_or(0), Err(format!("{}: {}", e.field.unwrap_or_default(), e.message))));
                    continue;
                }
            };
            let text = serde_json::Value::Object(object).to_string();
            let read = read_message(&model.plan, text.as_bytes())
                .map(|mut m| {
                    m.tie = 0;
                    format!("{m:?}")
                })
                .map_err(|e| e.to_string());
            by_rows.push((n, read));
        }
        assert_eq!(by_columns.len(), rows);
        for ((n, a), (m, b)) in by_columns.iter().zip(&by_rows) {
            assert_eq!(n, m);
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "row {n}"),
                // The row reader names the column whose JSON is invalid; so does the column path.
                (Err(a), Err(b)) if b.contains("invalid JSON") => {
                    assert!(
                        a.contains("`properties` holds invalid JSON") && b.starts_with("properties:"),
                        "row {n}: {a} / {b}"
                    );
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "row {n}"),
                _ => panic!("row {n}: {a:?} vs {b:?}"),
            }
        }
        // Rows 3 (`{bad`) and 5 (empty) hold invalid JSON in `properties`.
        assert!(by_columns[2].1.is_err() && by_columns[4].1.is_err());
        // Row 2 has no time, row 7 no type: 3 rows are messages.
        assert_eq!(by_columns.iter().filter(|(_, r)| r.is_ok()).count(), 3);
    }
}
