//! leadscore-store: where leads, events, scores, history, models and webhook deliveries live.
//!
//! One [`Store`] with two real backends, embedded SQLite (`sqlite://PATH`) and PostgreSQL
//! (`postgres://…`), behind one SQL code path ([`Tx`]): both speak the same portable subset
//! (integers, doubles, text, NULL; times as epoch milliseconds, JSON as text), and only the
//! migrations and a few statements differ per dialect. The store knows nothing about scoring: the
//! server's use cases decide what to write; this crate makes it durable and consistent.
//!
//! Blocking by design: every call runs on the caller's thread (the server uses dedicated threads
//! and `spawn_blocking`), so one transaction is one plain function.

mod migrate;
mod postgres;
pub mod sql;
mod sqlite;
mod tx;

use std::path::PathBuf;
use std::sync::Mutex;

pub use sql::Dialect;
pub use tx::*;

use sql::{Conn, Sql};

/// Whether a connection should not go back to the pool after an error (it cannot even roll back).
fn conn_broken(conn: &mut dyn Conn) -> bool {
    conn.batch("SELECT 1").is_err()
}

/// What went wrong in the store. `Conflict` is retried by [`Store::write`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open `{url}`: {reason}")]
    Open { url: String, reason: String },
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Backend(String),
    #[error("write conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

/// An error a transaction's work can end with: the store's own, or a caller's error that can
/// carry one. A use case returns its own error from inside a transaction (an unknown lead, an
/// invalid model) and the store still sees its conflicts, to run the transaction again, and its
/// outages, to reconnect.
pub trait TxError: From<StoreError> {
    /// The store's error inside, if that is what this is.
    fn store_error(&self) -> Option<&StoreError>;
}

impl TxError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Sqlite(PathBuf, sqlite::Synchronous),
    Postgres(String),
}

/// A database: a pool of connections to one SQLite file or one PostgreSQL database.
pub struct Store {
    backend: Backend,
    idle: Mutex<Vec<Box<dyn Conn>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// How many times a write transaction is retried after a conflict (deadlock, busy).
const WRITE_ATTEMPTS: usize = 8;

impl Store {
    /// Opens (creating it if needed) the database at `url` and applies pending migrations.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let backend = if let Some(rest) = url.strip_prefix("sqlite://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            }
            let mut synchronous = sqlite::Synchronous::Full;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                synchronous = match pair {
                    "synchronous=full" => sqlite::Synchronous::Full,
                    "synchronous=normal" => sqlite::Synchronous::Normal,
                    _ => {
                        return Err(StoreError::Open {
                            url: url.to_owned(),
                            reason: format!("unknown option `{pair}` (known: synchronous=full, synchronous=normal)"),
                        });
                    }
                };
            }
            Backend::Sqlite(PathBuf::from(path), synchronous)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let store = Store { backend, idle: Mutex::new(Vec::new()) };
        let mut conn = store.connect()?;
        migrate::apply(conn.as_mut())?;
        store.release(conn);
        // A full rescore that stopped half-way (a crash) may have left them dropped.
        store.write(|tx| tx.ensure_list_indexes())?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(..) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    fn connect(&self) -> Result<Box<dyn Conn>, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(path, synchronous) => Box::new(sqlite::SqliteConn::open(path, *synchronous)?),
            Backend::Postgres(url) => Box::new(postgres::PgConn::connect(url)?),
        })
    }

    /// A pooled connection, or a new one. At run time a database that cannot be reached is
    /// unavailable (503, retried), not a startup error.
    fn acquire(&self) -> Result<Box<dyn Conn>, StoreError> {
        let idle = self.idle.lock().map_err(|_| StoreError::Unavailable("connection pool poisoned".into()))?.pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.fresh(),
        }
    }

    fn fresh(&self) -> Result<Box<dyn Conn>, StoreError> {
        self.connect().map_err(|e| match e {
            StoreError::Open { url, reason } => StoreError::Unavailable(format!("cannot open `{url}`: {reason}")),
            other => other,
        })
    }

    /// Forgets every pooled connection: after an outage (a restarted PostgreSQL, an SQLite file
    /// that was read-only) they may be broken or stuck in the old state; new ones are opened as
    /// needed, so the server recovers without a restart.
    fn drain(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn release(&self, conn: Box<dyn Conn>) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 16
        {
            idle.push(conn);
        }
    }

    /// Runs `f` in a write transaction and commits it; on a conflict (a deadlock, a busy
    /// database) the whole transaction is rolled back and `f` runs again.
    pub fn write<T, E: TxError>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.transaction(true, &mut f) {
                Err(e) if attempt < WRITE_ATTEMPTS && matches!(e.store_error(), Some(StoreError::Conflict(_))) => {
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt as u64));
                }
                other => return other,
            }
        }
    }

    /// Runs `f` in a read-only transaction: one consistent snapshot.
    pub fn read<T, E: TxError>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        self.transaction(false, &mut f)
    }

    fn transaction<T, E: TxError>(&self, write: bool, f: &mut impl FnMut(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let mut conn = self.acquire()?;
        let begin = match (conn.dialect(), write) {
            (Dialect::Sqlite, true) => "BEGIN IMMEDIATE",
            (Dialect::Sqlite, false) => "BEGIN",
            (Dialect::Postgres, true) => "BEGIN",
            (Dialect::Postgres, false) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        match conn.batch(begin) {
            Ok(()) => {}
            // Busy: `write` retries.
            Err(e @ StoreError::Conflict(_)) => {
                self.release(conn);
                return Err(e.into());
            }
            Err(_) => {
                // A broken pooled connection (the others are likely broken too): a fresh one.
                self.drain();
                conn = self.fresh()?;
                if let Err(e) = conn.batch(begin) {
                    if matches!(e, StoreError::Conflict(_)) {
                        self.release(conn);
                    }
                    return Err(e.into());
                }
            }
        }
        let result = f(&mut Tx { conn: conn.as_mut() });
        let end = match &result {
            Ok(_) => conn.batch("COMMIT"),
            Err(_) => conn.batch("ROLLBACK"),
        };
        let outcome = match (result, end) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(E::from(e)),
            (Err(e), _) => Err(e),
        };
        match &outcome {
            Err(e) if matches!(e.store_error(), Some(StoreError::Unavailable(_))) => self.drain(),
            Err(_) if conn_broken(conn.as_mut()) => {}
            _ => self.release(conn),
        }
        outcome
    }

    /// Copies what SQLite's write-ahead log holds into the database file, as far as it can without
    /// waiting for readers or the writer (`PASSIVE`), so that commits do not have to. PostgreSQL:
    /// nothing to do.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        if self.dialect() != Dialect::Sqlite {
            return Ok(());
        }
        let mut conn = self.acquire()?;
        match conn.query("PRAGMA wal_checkpoint(PASSIVE)", &[]) {
            Ok(_) => {
                self.release(conn);
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.drain();
                }
                Err(e)
            }
        }
    }

    /// Makes deleted rows unrecoverable from the database files. SQLite zeroes freed content
    /// (`secure_delete`, set on every connection); this checkpoint copies every page into the main
    /// file and truncates the write-ahead log, which still held the old pages. PostgreSQL: nothing
    /// to do here; see docs/server.md for what an operator does about backups and WAL archives.
    pub fn erase_deleted(&self) -> Result<(), StoreError> {
        if self.dialect() != Dialect::Sqlite {
            return Ok(());
        }
        // Another checkpoint (the server's checkpointer) or a reader can hold it up for a moment.
        for attempt in 1..=WRITE_ATTEMPTS {
            let mut conn = self.acquire()?;
            let rows = conn.query("PRAGMA wal_checkpoint(TRUNCATE)", &[]);
            let busy = match &rows {
                Ok(rows) => rows.first().and_then(|r| r.first()).and_then(Sql::int) == Some(1),
                Err(StoreError::Conflict(_)) => true,
                Err(_) => false,
            };
            match rows {
                Ok(_) | Err(StoreError::Conflict(_)) => self.release(conn),
                // The delete itself is committed; the next checkpoint copies the zeroed pages.
                Err(StoreError::Unavailable(_)) => {
                    self.drain();
                    return Ok(());
                }
                Err(_) => return Ok(()),
            }
            if !busy {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20 * attempt as u64));
        }
        Err(StoreError::Conflict("the write-ahead log could not be truncated: readers are active".into()))
    }
}
