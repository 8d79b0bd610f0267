//! The webhook outbox: a delivery per stage change, claimed, retried and finished by the
//! dispatchers.

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::{Row, Sql};

/// Where a delivery is: waiting for its next attempt, received, or given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Dead];

    /// As stored and shown: `pending`, `delivered`, `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A webhook delivery (the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub lead_id: String,
    pub url: String,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub created_at: Millis,
    pub next_attempt_at: Millis,
    pub last_attempt_at: Option<Millis>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Millis>,
}

pub(super) const DELIVERY_COLUMNS: &str = "id, lead_id, url, body, status, attempts, created_at, next_attempt_at, \
     last_attempt_at, last_error, delivered_at";

pub(super) fn delivery_row(row: &Row) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: text(row, 0)?,
        lead_id: text(row, 1)?,
        url: text(row, 2)?,
        body: text(row, 3)?,
        status: {
            let text = text(row, 4)?;
            DeliveryStatus::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("column 4: `{text}` is not a delivery status")))?
        },
        attempts: int(row, 5)?,
        created_at: int(row, 6)?,
        next_attempt_at: int(row, 7)?,
        last_attempt_at: opt_int(row, 8),
        last_error: opt_text(row, 9),
        delivered_at: opt_int(row, 10),
    })
}

impl Tx<'_> {
    pub fn enqueue_delivery(&mut self, delivery: &DeliveryRow) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({})", placeholders(1, 11)),
            &[
                delivery.id.as_str().into(),
                delivery.lead_id.as_str().into(),
                delivery.url.as_str().into(),
                delivery.body.as_str().into(),
                delivery.status.as_str().into(),
                Sql::Int(delivery.attempts),
                Sql::Int(delivery.created_at),
                Sql::Int(delivery.next_attempt_at),
                delivery.last_attempt_at.into(),
                delivery.last_error.as_deref().into(),
                delivery.delivered_at.into(),
            ],
        )?;
        Ok(())
    }

    /// Pending deliveries due at `now` to receiver `url` (or, with `None`, to any receiver not in
    /// `except`), oldest first. On PostgreSQL rows being sent by another process are skipped
    /// (`FOR UPDATE SKIP LOCKED`).
    pub fn due_deliveries(
        &mut self,
        now: Millis,
        url: Option<&str>,
        except: &[String],
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let lock = if self.dialect() == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let mut params = vec![Sql::Int(now), Sql::Int(limit as i64)];
        let receiver = match url {
            Some(url) => {
                params.push(url.into());
                " AND url = $3".to_owned()
            }
            None if except.is_empty() => String::new(),
            None => {
                let list = placeholders(3, except.len());
                params.extend(except.iter().map(|u| Sql::from(u.as_str())));
                format!(" AND url NOT IN ({list})")
            }
        };
        let rows = self.conn.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1{receiver} \
                 ORDER BY next_attempt_at, id LIMIT $2{lock}"
            ),
            &params,
        )?;
        rows.iter().map(delivery_row).collect()
    }

    /// Records an attempt's result.
    pub fn update_delivery(&mut self, delivery: &DeliveryRow) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_attempt_at = $5, \
             last_error = $6, delivered_at = $7 WHERE id = $1",
            &[
                delivery.id.as_str().into(),
                delivery.status.as_str().into(),
                Sql::Int(delivery.attempts),
                Sql::Int(delivery.next_attempt_at),
                delivery.last_attempt_at.into(),
                delivery.last_error.as_deref().into(),
                delivery.delivered_at.into(),
            ],
        )?;
        Ok(())
    }

    /// When the latest delivery to `lead_id` whose id starts with `prefix` was queued, if any.
    pub fn latest_delivery_at(&mut self, lead_id: &str, prefix: &str) -> Result<Option<Millis>, StoreError> {
        let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let rows = self.conn.query(
            "SELECT MAX(created_at) FROM deliveries WHERE lead_id = $1 AND id LIKE $2 ESCAPE '\\'",
            &[lead_id.into(), pattern.as_str().into()],
        )?;
        Ok(rows.first().and_then(|r| opt_int(r, 0)))
    }

    pub fn delivery(&mut self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let rows =
            self.conn.query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"), &[id.into()])?;
        rows.first().map(delivery_row).transpose()
    }

    /// The delivery log, newest first.
    pub fn deliveries(&mut self, status: Option<DeliveryStatus>, limit: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = match status {
            Some(status) => self.conn.query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2"
                ),
                &[status.as_str().into(), Sql::Int(limit as i64)],
            )?,
            None => self.conn.query(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY created_at DESC, id LIMIT $1"),
                &[Sql::Int(limit as i64)],
            )?,
        };
        rows.iter().map(delivery_row).collect()
    }
}
