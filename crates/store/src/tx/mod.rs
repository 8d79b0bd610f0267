//! Every statement Leadscore runs, once for both backends, one file per table (or close group of
//! tables): events.rs (messages, deduplicated per write key and `messageId`; identity links;
//! unreadable messages), leads.rs (leads and their current scores, lists, call-now ranks),
//! outcomes.rs (outcomes and stage history), models.rs (model versions), deliveries.rs (the
//! webhook outbox), crm.rs (the CRM write-back outbox, coalesced per sync and lead), shadow.rs (scores
//! under shadow models, per lead and version), sessions.rs (dashboard sessions, the readiness probe). This file: the
//! transaction, row accessors and shared helpers.

use crate::StoreError;
use crate::sql::{Conn, Dialect, Row, Sql};

mod crm;
mod deliveries;
mod events;
mod leads;
mod models;
mod outcomes;
mod sessions;
mod shadow;

pub use crm::*;
pub use deliveries::*;
pub use events::*;
pub use leads::*;
pub use models::*;
pub use outcomes::*;
pub use sessions::*;
pub use shadow::*;

/// An open transaction (see [`crate::Store::write`] and [`crate::Store::read`]).
pub struct Tx<'a> {
    pub(crate) conn: &'a mut dyn Conn,
}

/// Most parameters one statement binds (SQLite's default limit is 32766).
const MAX_PARAMS: usize = 30_000;

/// Row accessors that name the column at fault.
fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    row.get(i)
        .and_then(Sql::text)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Corrupt(format!("column {i}: expected text, got {:?}", row.get(i))))
}

fn opt_text(row: &Row, i: usize) -> Option<String> {
    row.get(i).and_then(Sql::text).map(str::to_owned)
}

fn int(row: &Row, i: usize) -> Result<i64, StoreError> {
    row.get(i)
        .and_then(Sql::int)
        .ok_or_else(|| StoreError::Corrupt(format!("column {i}: expected an integer, got {:?}", row.get(i))))
}

fn opt_int(row: &Row, i: usize) -> Option<i64> {
    row.get(i).and_then(Sql::int)
}

fn real(row: &Row, i: usize) -> Result<f64, StoreError> {
    row.get(i)
        .and_then(Sql::real)
        .ok_or_else(|| StoreError::Corrupt(format!("column {i}: expected a number, got {:?}", row.get(i))))
}

fn opt_real(row: &Row, i: usize) -> Option<f64> {
    row.get(i).and_then(Sql::real)
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

impl Tx<'_> {
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// Runs `sql`, whose `{in}` stands for a `$1, $2, …` list, once per chunk of `values` (so any
    /// number of ids fits the parameter limit) and collects the rows.
    fn query_in(&mut self, sql: &str, values: &[String]) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        for chunk in values.chunks(1000) {
            let statement = sql.replace("{in}", &placeholders(1, chunk.len()));
            let params: Vec<Sql> = chunk.iter().map(|v| Sql::from(v.as_str())).collect();
            rows.extend(self.conn.query(&statement, &params)?);
        }
        Ok(rows)
    }

    fn scalar_int(&mut self, sql: &str, params: &[Sql]) -> Result<i64, StoreError> {
        let rows = self.conn.query(sql, params)?;
        Ok(rows.first().and_then(|r| opt_int(r, 0)).unwrap_or(0))
    }
}
