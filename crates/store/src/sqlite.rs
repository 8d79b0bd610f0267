//! The embedded SQLite backend: one file, WAL journal, `synchronous = FULL` by default (a commit is
//! on disk before the server answers 200), one writer at a time (`BEGIN IMMEDIATE`), readers in parallel.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, params_from_iter};

use crate::StoreError;
use crate::sql::{Conn, Dialect, Row, Sql};

/// When a commit reaches the disk. `Full` (the default): before the commit returns, so an
/// acknowledged event survives a power loss. `Normal` (`sqlite://PATH?synchronous=normal`): the
/// write-ahead log is synced at checkpoints only; a crash of the process loses nothing, a power
/// loss can lose the last commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
}

pub struct SqliteConn {
    conn: Connection,
}

impl SqliteConn {
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<SqliteConn, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::Open { url: format!("sqlite://{}", path.display()), reason: e.to_string() })?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(backend)?;
        let sync = match synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        // secure_delete: deleted content is overwritten with zeros, in b-tree and freelist pages
        // alike, so a deleted lead cannot be read back from the file (GDPR).
        // wal_autocheckpoint: a commit copies the log into the database file only past 8,000
        // pages (32 MB); `Store::checkpoint`, run often by another thread, does it before that.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF; \
             PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON; \
             PRAGMA wal_autocheckpoint = 8000;"
        ))
        .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteConn { conn })
    }
}

/// Busy is a conflict (retried); a read-only, full, missing or failing file makes the database
/// unavailable (the caller answers 503 and retries later); anything else is a backend error.
fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseBusy | C::DatabaseLocked => StoreError::Conflict(e.to_string()),
            C::ReadOnly
            | C::DiskFull
            | C::CannotOpen
            | C::SystemIoFailure
            | C::PermissionDenied
            | C::OutOfMemory
            | C::FileLockingProtocolFailed
            | C::NoLargeFileSupport => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        },
        _ => StoreError::Backend(e.to_string()),
    }
}

/// `$n` placeholders become SQLite's explicit `?n`.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl rusqlite::ToSql for Sql {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Sql::Null => ValueRef::Null,
            Sql::Int(i) => ValueRef::Integer(*i),
            Sql::Real(r) => ValueRef::Real(*r),
            Sql::Text(s) => ValueRef::Text(s.as_bytes()),
            Sql::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn value(v: ValueRef<'_>) -> Sql {
    match v {
        ValueRef::Null => Sql::Null,
        ValueRef::Integer(i) => Sql::Int(i),
        ValueRef::Real(r) => Sql::Real(r),
        ValueRef::Text(t) => Sql::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Sql::Bytes(b.to_vec()),
    }
}

impl Conn for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Sql]) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).map_err(backend)?;
        let n = stmt.execute(params_from_iter(params.iter())).map_err(backend)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Sql]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).map_err(backend)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(params_from_iter(params.iter())).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(value(row.get_ref(i).map_err(backend)?));
            }
            out.push(values);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn dollar_placeholders_become_numbered_question_marks() {
        assert_eq!(placeholders("a = $1 AND b = $12 OR c = '$'"), "a = ?1 AND b = ?12 OR c = '$'");
    }
}
