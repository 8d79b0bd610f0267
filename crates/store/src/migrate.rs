//! Schema migrations, one folder per dialect, applied in order on open and recorded in
//! `schema_migrations`. On PostgreSQL an advisory lock keeps two processes starting at once from
//! applying the same migration twice.

use crate::StoreError;
use crate::sql::{Conn, Dialect, Sql};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_hardening.sql")),
    (3, include_str!("../migrations/sqlite/0003_stage_rank.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_hardening.sql")),
    (3, include_str!("../migrations/postgres/0003_stage_rank.sql")),
];

/// The advisory lock key migrations hold on PostgreSQL ("leadscor" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c65_6164_7363_6f72;

pub(crate) fn apply(conn: &mut dyn Conn) -> Result<(), StoreError> {
    let migrations = match conn.dialect() {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    let begin = match conn.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    };
    conn.batch(begin)?;
    let result = (|| {
        if conn.dialect() == Dialect::Postgres {
            conn.query("SELECT pg_advisory_xact_lock($1)", &[Sql::Int(MIGRATION_LOCK)])?;
        }
        conn.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )?;
        let applied: Vec<i64> = conn
            .query("SELECT version FROM schema_migrations", &[])?
            .iter()
            .filter_map(|row| row.first().and_then(Sql::int))
            .collect();
        for (version, sql) in migrations {
            if applied.contains(version) {
                continue;
            }
            conn.batch(sql)?;
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[Sql::Int(*version), Sql::Int(0)],
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.batch("COMMIT"),
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}
