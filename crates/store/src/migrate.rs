//! Schema migrations, one folder per dialect, applied in order on open and recorded in
//! `schema_migrations`. On PostgreSQL an advisory lock keeps two processes starting at once from
//! applying the same migration twice.

use crate::StoreError;
use crate::sql::{Conn, Dialect, Sql};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_hardening.sql")),
    (3, include_str!("../migrations/sqlite/0003_stage_rank.sql")),
    (4, include_str!("../migrations/sqlite/0004_person_dedupe.sql")),
    (5, include_str!("../migrations/sqlite/0005_lead_state.sql")),
    (6, include_str!("../migrations/sqlite/0006_event_indexes.sql")),
    (7, include_str!("../migrations/sqlite/0007_crm_outbox.sql")),
    (8, include_str!("../migrations/sqlite/0008_shadow_models.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_hardening.sql")),
    (3, include_str!("../migrations/postgres/0003_stage_rank.sql")),
    (4, include_str!("../migrations/postgres/0004_person_dedupe.sql")),
    (5, include_str!("../migrations/postgres/0005_lead_state.sql")),
    (6, include_str!("../migrations/postgres/0006_event_indexes.sql")),
    (7, include_str!("../migrations/postgres/0007_crm_outbox.sql")),
    (8, include_str!("../migrations/postgres/0008_shadow_models.sql")),
];

/// The advisory lock key migrations hold on PostgreSQL ("leadscor" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c65_6164_7363_6f72;

pub(crate) fn apply(conn: &mut dyn Conn) -> Result<(), StoreError> {
    apply_until(conn, i64::MAX)
}

/// Applies the migrations up to `last` (tests start from an older schema this way).
fn apply_until(conn: &mut dyn Conn, last: i64) -> Result<(), StoreError> {
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
            if applied.contains(version) || *version > last {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::sqlite::{SqliteConn, Synchronous};

    /// Copies of one message sent through two write keys before the dedupe key was the person's:
    /// the upgrade keeps the earliest event and forgets the other (and its unreadable entry).
    #[test]
    fn an_upgrade_keeps_one_copy_of_a_message_per_person() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = SqliteConn::open(&dir.path().join("old.db"), Synchronous::Normal).unwrap();
        apply_until(&mut conn, 3).unwrap();
        for (key, id, lead, anonymous, at) in [
            ("k1", "a", Some("u"), None, 5),
            ("k2", "a", Some("u"), None, 3),
            ("k1", "b", Some("u"), None, 4),
            ("k3", "a", None, Some("x"), 6),
        ] {
            conn.execute(
                "INSERT INTO events (write_key, message_id, lead_id, anonymous_id, event_type, at, received_at, body) \
                 VALUES ($1, $2, $3, $4, 'track', $5, $5, '{}')",
                &[key.into(), id.into(), Sql::from(lead), Sql::from(anonymous), Sql::Int(at)],
            )
            .unwrap();
        }
        conn.execute("INSERT INTO unreadable_events (seq, reason, found_at) VALUES (1, 'r', 0)", &[]).unwrap();
        apply(&mut conn).unwrap();
        let rows = conn.query("SELECT seq, write_key, message_id, person FROM events ORDER BY seq", &[]).unwrap();
        let rows: Vec<(i64, String, String, String)> = rows
            .into_iter()
            .map(|mut r| {
                let person = r.pop().and_then(Sql::into_text).unwrap();
                let id = r.pop().and_then(Sql::into_text).unwrap();
                let key = r.pop().and_then(Sql::into_text).unwrap();
                (r.pop().and_then(|v| v.int()).unwrap(), key, id, person)
            })
            .collect();
        let expected = [(2, "k2", "a", "u"), (3, "k1", "b", "u"), (4, "k3", "a", "x")]
            .map(|(seq, k, id, p)| (seq, k.to_owned(), id.to_owned(), p.to_owned()));
        assert_eq!(rows, expected);
        assert!(conn.query("SELECT seq FROM unreadable_events", &[]).unwrap().is_empty());
    }
}
