//! The CRM write-back outbox: one row per sync and lead, coalesced. A score change marks the row
//! pending; the sender claims due rows, writes the leads' latest values and records the result.
//! A row's `version` counts the changes marked, so a result is recorded as final only if no
//! change came while it was being sent.

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::{Row, Sql};

/// One lead's place in one sync's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRow {
    /// The sync's name (`[[sync]] name`).
    pub sync: String,
    pub lead_id: String,
    /// Pending (a change not yet written), delivered (the latest values are in the CRM), or dead
    /// (given up on until the next change or a resend).
    pub status: DeliveryStatus,
    /// How many changes have been marked.
    pub version: i64,
    /// The first change not yet written.
    pub changed_at: Millis,
    pub next_attempt_at: Millis,
    /// Failed attempts since the last write.
    pub attempts: i64,
    pub last_attempt_at: Option<Millis>,
    /// The CRM's error text of the last failed attempt.
    pub last_error: Option<String>,
    pub sent_at: Option<Millis>,
    /// The values last written (a JSON object of CRM field names).
    pub sent: Option<String>,
}

const CRM_COLUMNS: &str =
    "sync, lead_id, status, version, changed_at, next_attempt_at, attempts, last_attempt_at, last_error, sent_at, sent";

fn crm_row(row: &Row) -> Result<CrmRow, StoreError> {
    Ok(CrmRow {
        sync: text(row, 0)?,
        lead_id: text(row, 1)?,
        status: {
            let text = text(row, 2)?;
            DeliveryStatus::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("column 2: `{text}` is not an outbox status")))?
        },
        version: int(row, 3)?,
        changed_at: int(row, 4)?,
        next_attempt_at: int(row, 5)?,
        attempts: int(row, 6)?,
        last_attempt_at: opt_int(row, 7),
        last_error: opt_text(row, 8),
        sent_at: opt_int(row, 9),
        sent: opt_text(row, 10),
    })
}

impl Tx<'_> {
    /// Marks these leads changed at `at` for `sync`. A lead without a pending row becomes pending,
    /// due at `due` (the debounce); a pending one keeps its schedule, so a burst of changes is
    /// sent once and a failing write keeps its backoff.
    pub fn mark_crm(&mut self, sync: &str, leads: &[&str], at: Millis, due: Millis) -> Result<(), StoreError> {
        for chunk in leads.chunks(MAX_PARAMS - 3) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("($1, ${}, 'pending', 1, $2, $3, 0)", i + 4)).collect();
            let sql = format!(
                "INSERT INTO crm_outbox (sync, lead_id, status, version, changed_at, next_attempt_at, attempts) \
                 VALUES {} ON CONFLICT (sync, lead_id) DO UPDATE SET \
                 version = crm_outbox.version + 1, \
                 changed_at = CASE WHEN crm_outbox.status = 'pending' THEN crm_outbox.changed_at ELSE excluded.changed_at END, \
                 next_attempt_at = CASE WHEN crm_outbox.status = 'pending' THEN crm_outbox.next_attempt_at \
                 ELSE excluded.next_attempt_at END, \
                 attempts = CASE WHEN crm_outbox.status = 'pending' THEN crm_outbox.attempts ELSE 0 END, \
                 status = 'pending'",
                values.join(", ")
            );
            let mut params = vec![Sql::from(sync), Sql::Int(at), Sql::Int(due)];
            params.extend(chunk.iter().map(|id| Sql::from(*id)));
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// `sync`'s pending rows due at `now`, oldest first. On PostgreSQL rows another process is
    /// sending are skipped (`FOR UPDATE SKIP LOCKED`).
    pub fn due_crm(&mut self, sync: &str, now: Millis, limit: usize) -> Result<Vec<CrmRow>, StoreError> {
        let lock = if self.dialect() == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows = self.conn.query(
            &format!(
                "SELECT {CRM_COLUMNS} FROM crm_outbox WHERE sync = $1 AND status = 'pending' AND next_attempt_at <= $2 \
                 ORDER BY next_attempt_at, lead_id LIMIT $3{lock}"
            ),
            &[sync.into(), Sql::Int(now), Sql::Int(limit as i64)],
        )?;
        rows.iter().map(crm_row).collect()
    }

    /// Moves these rows' next attempt to `until` (a sender's lease while it writes them).
    pub fn lease_crm(&mut self, sync: &str, leads: &[String], until: Millis) -> Result<(), StoreError> {
        for chunk in leads.chunks(MAX_PARAMS - 2) {
            let sql = format!(
                "UPDATE crm_outbox SET next_attempt_at = $2 WHERE sync = $1 AND lead_id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut params = vec![Sql::from(sync), Sql::Int(until)];
            params.extend(chunk.iter().map(|id| Sql::from(id.as_str())));
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// Records an attempt's result, as `row` says, if the row's version is still `claimed`.
    /// Otherwise a change came while it was sent: the row stays pending, due at `due_if_changed`,
    /// with what was sent and the error recorded (after a write, the changes left unwritten are
    /// dated from it). Returns whether the row was still `claimed`;
    /// a row that is gone (the lead was deleted) is left gone.
    pub fn finish_crm(&mut self, row: &CrmRow, claimed: i64, due_if_changed: Millis) -> Result<bool, StoreError> {
        let same = self.conn.execute(
            "UPDATE crm_outbox SET status = $4, next_attempt_at = $5, attempts = $6, last_attempt_at = $7, \
             last_error = $8, sent_at = $9, sent = $10 WHERE sync = $1 AND lead_id = $2 AND version = $3",
            &[
                row.sync.as_str().into(),
                row.lead_id.as_str().into(),
                Sql::Int(claimed),
                row.status.as_str().into(),
                Sql::Int(row.next_attempt_at),
                Sql::Int(row.attempts),
                row.last_attempt_at.into(),
                row.last_error.as_deref().into(),
                row.sent_at.into(),
                row.sent.as_deref().into(),
            ],
        )? > 0;
        if !same {
            self.conn.execute(
                "UPDATE crm_outbox SET status = 'pending', next_attempt_at = $3, last_attempt_at = $4, last_error = $5, \
                 sent_at = COALESCE($6, sent_at), sent = COALESCE($7, sent), changed_at = COALESCE($6, changed_at) \
                 WHERE sync = $1 AND lead_id = $2",
                &[
                    row.sync.as_str().into(),
                    row.lead_id.as_str().into(),
                    Sql::Int(due_if_changed),
                    row.last_attempt_at.into(),
                    row.last_error.as_deref().into(),
                    row.sent_at.into(),
                    row.sent.as_deref().into(),
                ],
            )?;
        }
        Ok(same)
    }

    /// Removes these leads' rows from `sync`'s outbox (leads that no longer exist).
    pub fn forget_crm(&mut self, sync: &str, leads: &[String]) -> Result<(), StoreError> {
        for chunk in leads.chunks(MAX_PARAMS - 1) {
            let sql =
                format!("DELETE FROM crm_outbox WHERE sync = $1 AND lead_id IN ({})", placeholders(2, chunk.len()));
            let mut params = vec![Sql::from(sync)];
            params.extend(chunk.iter().map(|id| Sql::from(id.as_str())));
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    pub fn crm_row(&mut self, sync: &str, lead_id: &str) -> Result<Option<CrmRow>, StoreError> {
        let rows = self.conn.query(
            &format!("SELECT {CRM_COLUMNS} FROM crm_outbox WHERE sync = $1 AND lead_id = $2"),
            &[sync.into(), lead_id.into()],
        )?;
        rows.first().map(crm_row).transpose()
    }

    /// `sync`'s outbox, the most recently changed first, optionally of one status.
    pub fn crm_rows(
        &mut self,
        sync: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<CrmRow>, StoreError> {
        let (filter, params) = match status {
            Some(status) => (" AND status = $3", vec![Sql::from(sync), Sql::Int(limit as i64), status.as_str().into()]),
            None => ("", vec![Sql::from(sync), Sql::Int(limit as i64)]),
        };
        let rows = self.conn.query(
            &format!(
                "SELECT {CRM_COLUMNS} FROM crm_outbox WHERE sync = $1{filter} \
                 ORDER BY COALESCE(last_attempt_at, changed_at) DESC, lead_id LIMIT $2"
            ),
            &params,
        )?;
        rows.iter().map(crm_row).collect()
    }

    /// How many of `sync`'s rows are in each status.
    pub fn crm_counts(&mut self, sync: &str) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        let rows = self
            .conn
            .query("SELECT status, COUNT(*) FROM crm_outbox WHERE sync = $1 GROUP BY status", &[sync.into()])?;
        let mut out = Vec::new();
        for row in &rows {
            if let Some(status) = DeliveryStatus::parse(&text(row, 0)?) {
                out.push((status, int(row, 1)?));
            }
        }
        Ok(out)
    }

    /// Makes a lead's row pending and due at `now`, whatever its status; `false` if it has none.
    pub fn resend_crm(&mut self, sync: &str, lead_id: &str, now: Millis) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE crm_outbox SET status = 'pending', next_attempt_at = $3, attempts = 0, version = version + 1 \
             WHERE sync = $1 AND lead_id = $2",
            &[sync.into(), lead_id.into(), Sql::Int(now)],
        )? > 0)
    }
}
