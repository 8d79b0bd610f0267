//! The syncs' log: each sync's health and counts, its outbox lead by lead (what was written, the
//! CRM's error text), and writing a lead again.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use leadscore_core::time;
use leadscore_store::{CrmRow, DeliveryStatus};

use super::{SyncRunner, When};
use crate::app::App;
use crate::error::{Code, ServiceError};

/// A configured sync and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncView {
    pub name: String,
    /// `hubspot`.
    pub crm: String,
    /// The records written (`contacts`).
    pub object: String,
    /// `change` or `stage`.
    pub when: String,
    /// e.g. `190/10s`.
    pub rate_limit: String,
    /// Whether it writes; `false` after the CRM refused its token (`stopped` says why).
    pub running: bool,
    pub stopped: Option<String>,
    /// The last error of any attempt, and when.
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Leads waiting to be written, written, and given up on.
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncList {
    pub syncs: Vec<SyncView>,
}

/// One lead in a sync's outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRecordView {
    pub lead_id: String,
    /// pending, delivered or dead.
    pub status: String,
    /// The first change not yet written (for a pending lead).
    pub changed_at: String,
    /// For a pending lead: when it is written next.
    pub next_attempt_at: Option<String>,
    /// Failed attempts since the last write.
    pub attempts: i64,
    pub last_attempt_at: Option<String>,
    /// The CRM's answer or the network error of the last failed attempt.
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
    /// The fields last written, with their values as sent.
    #[schema(value_type = Object)]
    pub sent: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRecordList {
    pub records: Vec<SyncRecordView>,
}

fn record_view(r: &CrmRow) -> SyncRecordView {
    SyncRecordView {
        lead_id: r.lead_id.clone(),
        status: r.status.as_str().to_owned(),
        changed_at: time::format_timestamp(r.changed_at),
        next_attempt_at: (r.status == DeliveryStatus::Pending).then(|| time::format_timestamp(r.next_attempt_at)),
        attempts: r.attempts,
        last_attempt_at: r.last_attempt_at.map(time::format_timestamp),
        last_error: r.last_error.clone(),
        sent_at: r.sent_at.map(time::format_timestamp),
        sent: r.sent.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_else(|| json!({})),
    }
}

fn window_text(ms: i64) -> String {
    if ms % 1000 == 0 { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

impl App {
    fn runner(&self, name: &str) -> Result<&SyncRunner, ServiceError> {
        self.outboxes.syncs.get(name).map(AsRef::as_ref).ok_or_else(|| {
            let known: Vec<&str> = self.outboxes.syncs.runners.iter().map(|r| r.sync.name.as_str()).collect();
            ServiceError::user(
                Code::SyncNotFound,
                if known.is_empty() {
                    format!("no sync named `{name}`: none is configured ([[sync]] in the config file)")
                } else {
                    format!("no sync named `{name}` (configured: {})", known.join(", "))
                },
            )
        })
    }

    /// Every configured sync, with its health and counts.
    pub fn list_syncs(&self) -> Result<SyncList, ServiceError> {
        let mut syncs = Vec::new();
        for runner in &self.outboxes.syncs.runners {
            let sync = &runner.sync;
            let counts = self.store.read(|tx| tx.crm_counts(&sync.name))?;
            let count = |s: DeliveryStatus| counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
            let health = runner.health();
            syncs.push(SyncView {
                name: sync.name.clone(),
                crm: sync.crm.as_str().to_owned(),
                object: sync.object.clone(),
                when: match sync.when {
                    When::Change => "change",
                    When::Stage => "stage",
                }
                .to_owned(),
                rate_limit: format!("{}/{}", sync.rate_requests, window_text(sync.rate_window_ms)),
                running: health.stopped.is_none(),
                stopped: health.stopped,
                last_error: health.last_error,
                last_error_at: health.last_error_at.map(time::format_timestamp),
                pending: count(DeliveryStatus::Pending),
                delivered: count(DeliveryStatus::Delivered),
                dead: count(DeliveryStatus::Dead),
            });
        }
        Ok(SyncList { syncs })
    }

    /// Up to `limit` leads of a sync's outbox (of one status, or all), the latest attempted first.
    pub fn list_sync_records(
        &self,
        name: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<SyncRecordList, ServiceError> {
        let runner = self.runner(name)?;
        let rows = self.store.read(|tx| tx.crm_rows(&runner.sync.name, status, limit))?;
        Ok(SyncRecordList { records: rows.iter().map(record_view).collect() })
    }

    /// Writes a lead to the CRM again, now, whatever its status (also a lead never written).
    pub fn resend_sync_record(&self, name: &str, lead_id: &str) -> Result<SyncRecordView, ServiceError> {
        let runner = self.runner(name)?;
        let sync = &runner.sync.name;
        let now = self.clock.now();
        let row = self.store.write(|tx| {
            if tx.lead_heads(&[lead_id.to_owned()], false)?.is_empty() {
                return Ok(None);
            }
            if !tx.resend_crm(sync, lead_id, now)? {
                tx.mark_crm(sync, &[lead_id], now, now)?;
            }
            tx.crm_row(sync, lead_id)
        })?;
        let row = row.ok_or_else(|| ServiceError::user(Code::LeadNotFound, format!("no lead with id `{lead_id}`")))?;
        Ok(record_view(&row))
    }
}
