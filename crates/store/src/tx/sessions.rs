//! Dashboard sessions (stored as token digests) and the readiness probe's write.

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::Sql;

/// A dashboard session. The token itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_digest: String,
    /// `read` or `admin`.
    pub role: String,
    /// Which key logged in (a digest prefix): the session ends when that key is removed.
    pub key_fingerprint: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

impl Tx<'_> {
    pub fn insert_session(&mut self, session: &SessionRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (token_digest, role, key_fingerprint, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                session.token_digest.as_str().into(),
                session.role.as_str().into(),
                session.key_fingerprint.as_str().into(),
                session.csrf.as_str().into(),
                Sql::Int(session.created_at),
                Sql::Int(session.expires_at),
            ],
        )?;
        Ok(())
    }

    /// The session with this token digest, if it has not expired at `now`.
    pub fn session(&mut self, token_digest: &str, now: Millis) -> Result<Option<SessionRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT token_digest, role, key_fingerprint, csrf, created_at, expires_at FROM sessions \
             WHERE token_digest = $1 AND expires_at > $2",
            &[token_digest.into(), Sql::Int(now)],
        )?;
        rows.first()
            .map(|r| {
                Ok(SessionRow {
                    token_digest: text(r, 0)?,
                    role: text(r, 1)?,
                    key_fingerprint: text(r, 2)?,
                    csrf: text(r, 3)?,
                    created_at: int(r, 4)?,
                    expires_at: int(r, 5)?,
                })
            })
            .transpose()
    }

    pub fn delete_session(&mut self, token_digest: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM sessions WHERE token_digest = $1", &[token_digest.into()])?;
        Ok(())
    }

    /// Removes sessions that expired before `now`.
    pub fn purge_sessions(&mut self, now: Millis) -> Result<u64, StoreError> {
        self.conn.execute("DELETE FROM sessions WHERE expires_at <= $1", &[Sql::Int(now)])
    }

    /// A real write (the readiness probe: can the database be written now?).
    pub fn touch_readiness(&mut self, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO readiness (id, checked_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            &[Sql::Int(now)],
        )?;
        Ok(())
    }
}
