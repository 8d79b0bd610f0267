//! Leads CSV: a header, one column the lead id (`id` or `--id-column`), every other column a trait.
//! Columns declared in the model's `[traits]` get that type; the others are numbers when every
//! non-empty value in the column parses as a number, else strings. Empty cells are missing traits.

use std::collections::HashMap;
use std::path::Path;

use leadscore_core::model::TraitType;
use leadscore_core::time::{format_timestamp, parse_timestamp};
use serde_json::{Map, Number, Value};

use super::{InputError, Skipped};

/// The leads of a file, in file order. A CSV row is kept as read (its cells already checked
/// against their column types) and typed when its traits are asked for: a few hundred bytes a
/// lead rather than a JSON map's kilobyte.
#[derive(Debug, Default)]
pub struct Leads {
    pub order: Vec<String>,
    rows: HashMap<String, Row>,
    /// CSV: the columns, their types, and which is the lead id.
    columns: Vec<(String, TraitType)>,
    id_index: Option<usize>,
}

#[derive(Debug)]
enum Row {
    Csv(csv::StringRecord),
    Object(Map<String, Value>),
}

impl Leads {
    /// The lead's traits from the file (empty for a lead not in it).
    pub fn traits(&self, id: &str) -> Map<String, Value> {
        match self.rows.get(id) {
            None => Map::new(),
            Some(Row::Object(traits)) => traits.clone(),
            Some(Row::Csv(record)) => {
                let mut traits = Map::new();
                for (c, cell) in record.iter().enumerate() {
                    let cell = cell.trim();
                    if Some(c) == self.id_index || cell.is_empty() {
                        continue;
                    }
                    // Every cell was checked when the file was read.
                    if let Some((name, ty)) = self.columns.get(c)
                        && let Ok(value) = typed_value(cell, *ty)
                    {
                        traits.insert(name.clone(), value);
                    }
                }
                traits
            }
        }
    }
}

/// Which column holds the lead id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdColumn {
    /// `--id-column NAME`: that column must exist.
    Named(String),
    /// Not given: `id`, else a column named `id` or `lead_id` in any case, else row numbers
    /// (1, 2, … in file order, with a note on stderr).
    Default,
}

/// The id column to use for `headers`, or `None` for row numbers.
fn resolve_id_column(path: &Path, headers: &[String], id_column: &IdColumn) -> Result<Option<usize>, InputError> {
    match id_column {
        IdColumn::Named(name) => headers.iter().position(|h| h == name).map(Some).ok_or_else(|| {
            InputError::new(
                path,
                Some(1),
                Some(name),
                format!("no lead id column `{name}` (columns: {})", headers.join(", ")),
            )
        }),
        IdColumn::Default => {
            let found = headers.iter().position(|h| h == "id").or_else(|| {
                headers.iter().position(|h| h.eq_ignore_ascii_case("id") || h.eq_ignore_ascii_case("lead_id"))
            });
            if found.is_none() {
                eprintln!(
                    "note: {}: no `id` column, so leads are numbered by row (1, 2, …); name the id column with --id-column",
                    path.display()
                );
            }
            Ok(found)
        }
    }
}

pub fn read_leads(
    path: &Path,
    id_column: &IdColumn,
    schema: &[(String, TraitType)],
    skipped: &mut Skipped,
) -> Result<Leads, InputError> {
    if super::parquet::is_parquet(path) {
        return read_leads_parquet(path, id_column, schema, skipped);
    }
    let (mut reader, headers) = crate::read::open_csv(path, csv::Trim::Headers)?;
    let id_index = resolve_id_column(path, &headers, id_column)?;
    let id_name = id_index.map_or("id", |i| headers[i].as_str()).to_owned();
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) => rows.push(r),
            Err(e) => {
                let line = e.position().map(|p| p.line());
                skipped.handle(InputError::new(path, line, None, e.to_string()))?;
            }
        }
    }
    // Decide each column's type: declared, else number if every non-empty value is one.
    let types: Vec<TraitType> = headers
        .iter()
        .enumerate()
        .map(|(c, name)| {
            schema.iter().find(|(n, _)| n == name).map(|(_, t)| *t).unwrap_or_else(|| {
                let mut values =
                    rows.iter().filter_map(|r| r.get(c)).map(str::trim).filter(|v| !v.is_empty()).peekable();
                if values.peek().is_some() && values.all(|v| parse_number(v).is_some()) {
                    TraitType::Number
                } else {
                    TraitType::String
                }
            })
        })
        .collect();

    let mut leads =
        Leads { columns: headers.iter().cloned().zip(types.iter().copied()).collect(), id_index, ..Leads::default() };
    'rows: for (row_number, record) in rows.into_iter().enumerate() {
        let line = record.position().map(|p| p.line());
        let id = match id_index {
            Some(i) => record.get(i).unwrap_or("").trim().to_owned(),
            None => (row_number + 1).to_string(),
        };
        if id.is_empty() {
            skipped.handle(InputError::new(path, line, Some(&id_name), "empty lead id"))?;
            continue;
        }
        if leads.rows.contains_key(&id) {
            skipped.handle(InputError::new(path, line, Some(&id_name), format!("lead `{id}` appears twice")))?;
            continue;
        }
        for (c, cell) in record.iter().enumerate() {
            let cell = cell.trim();
            if Some(c) == id_index || cell.is_empty() {
                continue;
            }
            if let Err(expected) = typed_value(cell, types[c]) {
                let name = &headers[c];
                skipped.handle(InputError::new(path, line, Some(name), format!("`{cell}` is not {expected}")))?;
                continue 'rows;
            }
        }
        leads.order.push(id.clone());
        leads.rows.insert(id, Row::Csv(record));
    }
    Ok(leads)
}

/// Leads from Parquet: columns keep their Parquet types, except that text in a column `[traits]`
/// declares as number, bool or timestamp is converted as in a CSV file.
fn read_leads_parquet(
    path: &Path,
    id_column: &IdColumn,
    schema: &[(String, TraitType)],
    skipped: &mut Skipped,
) -> Result<Leads, InputError> {
    let mut leads = Leads::default();
    let mut id_name: Option<Option<String>> = None;
    'rows: for row in super::parquet::open(path)? {
        let (n, mut object) = match row {
            Ok(row) => row,
            Err(error) => {
                skipped.handle(error)?;
                continue;
            }
        };
        let column = match &id_name {
            Some(column) => column.clone(),
            None => {
                let headers: Vec<String> = object.keys().cloned().collect();
                let column = resolve_id_column(path, &headers, id_column)?.map(|i| headers[i].clone());
                id_name = Some(column.clone());
                column
            }
        };
        let id_column = column.as_deref().unwrap_or("id");
        let id = match column.as_ref().map(|c| object.remove(c)) {
            None => n.to_string(),
            Some(Some(Value::String(s))) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Some(Value::Number(n))) => n.to_string(),
            Some(_) => {
                skipped.handle(InputError::new(path, Some(n), Some(id_column), "empty or missing lead id"))?;
                continue;
            }
        };
        if leads.rows.contains_key(&id) {
            skipped.handle(InputError::new(path, Some(n), Some(id_column), format!("lead `{id}` appears twice")))?;
            continue;
        }
        let mut traits = Map::new();
        for (name, value) in object {
            let declared = schema.iter().find(|(t, _)| *t == name).map(|(_, t)| *t);
            let value = match (declared, value) {
                (Some(ty), Value::String(text)) if ty != TraitType::String => match typed_value(text.trim(), ty) {
                    Ok(v) => v,
                    Err(expected) => {
                        skipped.handle(InputError::new(
                            path,
                            Some(n),
                            Some(&name),
                            format!("`{text}` is not {expected}"),
                        ))?;
                        continue 'rows;
                    }
                },
                (_, Value::String(text)) if text.trim().is_empty() => continue,
                (_, value) => value,
            };
            traits.insert(name, value);
        }
        leads.order.push(id.clone());
        leads.rows.insert(id, Row::Object(traits));
    }
    Ok(leads)
}

fn parse_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A cell as the JSON value of its trait type, or what was expected.
fn typed_value(cell: &str, ty: TraitType) -> Result<Value, &'static str> {
    match ty {
        TraitType::String => Ok(Value::String(cell.to_owned())),
        TraitType::Number => parse_number(cell).and_then(Number::from_f64).map(Value::Number).ok_or("a number"),
        TraitType::Bool => match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err("a bool (true/false, yes/no, 1/0)"),
        },
        TraitType::Timestamp => {
            parse_timestamp(cell).map(|ms| Value::String(format_timestamp(ms))).ok_or("an RFC 3339 timestamp or a date")
        }
    }
}
