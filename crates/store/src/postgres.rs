//! The PostgreSQL backend. Several server processes may share one database: writers serialise on
//! per-lead advisory locks taken inside the transaction (see `Tx::lock_leads`), so a lead's score
//! is always computed from every event committed before it.

use std::collections::HashMap;
use std::error::Error as StdError;

use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};

use crate::StoreError;
use crate::sql::{Conn, Dialect, Row, Sql};

pub struct PgConn {
    /// `Some` until dropped (see the `Drop` impl).
    client: Option<Client>,
    statements: HashMap<String, Statement>,
}

impl Drop for PgConn {
    /// The driver blocks on its own runtime when a client closes, which panics inside an async
    /// context (a server dropping its store at shutdown): close it on a plain thread instead.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let closer = std::thread::spawn(move || drop(client));
            let _ = closer.join();
        }
    }
}

impl PgConn {
    pub fn connect(url: &str) -> Result<PgConn, StoreError> {
        let mut config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| StoreError::Open { url: redact(url), reason: e.to_string() })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        let client = config.connect(NoTls).map_err(|e| StoreError::Open { url: redact(url), reason: e.to_string() })?;
        Ok(PgConn { client: Some(client), statements: HashMap::new() })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Serialisation failures and deadlocks are conflicts (retried); a lost connection, a server
/// shutting down or starting, a full disk or a read-only server make the database unavailable
/// (the caller answers 503 and retries later); anything else is a backend error.
fn backend(e: postgres::Error) -> StoreError {
    let code = e.code().map(SqlState::code).unwrap_or("");
    let message = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    let conflict = code == SqlState::T_R_SERIALIZATION_FAILURE.code() || code == SqlState::T_R_DEADLOCK_DETECTED.code();
    let unavailable = e.is_closed()
        || (e.as_db_error().is_none() && code.is_empty())
        || code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == SqlState::READ_ONLY_SQL_TRANSACTION.code()
        || code.starts_with("58");
    if conflict {
        StoreError::Conflict(message)
    } else if unavailable {
        StoreError::Unavailable(message)
    } else {
        StoreError::Backend(message)
    }
}

impl ToSql for Sql {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Sql::Null => Ok(IsNull::Yes),
            Sql::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Sql::Real(r) => match *ty {
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                Type::INT8 => (*r as i64).to_sql(ty, out),
                _ => r.to_sql(ty, out),
            },
            Sql::Text(s) => s.as_str().to_sql(ty, out),
            Sql::Bytes(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map_or(Sql::Null, Sql::Int)),
            Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map_or(Sql::Null, |v| Sql::Int(v.into()))),
            Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map_or(Sql::Null, |v| Sql::Int(v.into()))),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map_or(Sql::Null, Sql::Real)),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map(|v| v.map_or(Sql::Null, |v| Sql::Real(v.into()))),
            Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map_or(Sql::Null, |v| Sql::Int(v.into()))),
            Type::VOID => Ok(Sql::Null),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map_or(Sql::Null, Sql::Bytes)),
            _ => row.try_get::<_, Option<String>>(i).map(|v| v.map_or(Sql::Null, Sql::Text)),
        };
        values.push(value.map_err(backend)?);
    }
    Ok(values)
}

impl PgConn {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.client.as_mut().ok_or_else(|| StoreError::Unavailable("the connection is closed".into()))
    }

    /// A prepared statement, prepared once per connection.
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client()?.prepare(sql).map_err(backend)?;
        if self.statements.len() > 256 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Sql]) -> Result<u64, StoreError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let statement = self.statement(sql)?;
        self.client()?.execute(&statement, &params).map_err(backend)
    }

    fn query(&mut self, sql: &str, params: &[Sql]) -> Result<Vec<Row>, StoreError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let statement = self.statement(sql)?;
        self.client()?.query(&statement, &params).map_err(backend)?.iter().map(row).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client()?.batch_execute(sql).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_repeated_in_messages() {
        assert_eq!(redact("postgres://u:secret@localhost:5432/db"), "postgres://u@localhost:5432/db");
        assert_eq!(redact("postgres://localhost/db"), "postgres://localhost/db");
    }
}
