//! The small SQL surface both backends share: values that are portable between SQLite and
//! PostgreSQL (NULL, 64-bit integers, doubles, text, bytes), a connection that runs statements with `$n`
//! placeholders, and the dialect for the few statements that differ.

use crate::StoreError;

/// A portable SQL value. Times are epoch milliseconds (`Int`), JSON is `Text`.
#[derive(Debug, Clone, PartialEq)]
pub enum Sql {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    /// A `BLOB` (SQLite) or `BYTEA` (PostgreSQL).
    Bytes(Vec<u8>),
}

impl Sql {
    pub fn int(&self) -> Option<i64> {
        match self {
            Sql::Int(i) => Some(*i),
            Sql::Real(r) => Some(*r as i64),
            _ => None,
        }
    }

    pub fn real(&self) -> Option<f64> {
        match self {
            Sql::Real(r) => Some(*r),
            Sql::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Sql::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn into_text(self) -> Option<String> {
        match self {
            Sql::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Sql::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

impl From<i64> for Sql {
    fn from(v: i64) -> Sql {
        Sql::Int(v)
    }
}

impl From<f64> for Sql {
    fn from(v: f64) -> Sql {
        Sql::Real(v)
    }
}

impl From<&str> for Sql {
    fn from(v: &str) -> Sql {
        Sql::Text(v.to_owned())
    }
}

impl From<String> for Sql {
    fn from(v: String) -> Sql {
        Sql::Text(v)
    }
}

impl<T: Into<Sql>> From<Option<T>> for Sql {
    fn from(v: Option<T>) -> Sql {
        v.map_or(Sql::Null, Into::into)
    }
}

pub type Row = Vec<Sql>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One database connection. Statements use `$1, $2, …` placeholders on both backends.
pub trait Conn: Send {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Sql]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Sql]) -> Result<Vec<Row>, StoreError>;
    /// Runs several statements without parameters (migrations, transaction control).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
}
