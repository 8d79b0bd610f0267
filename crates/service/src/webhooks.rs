//! The webhook outbox (SPEC §6.4): the configured receivers ([`Webhooks`]) and [`enqueue`], which
//! turns a stage change into one delivery per receiver, written in the transaction that made the
//! change (so a webhook is only ever sent for a committed change). [`crate::dispatcher`] sends
//! them.

use serde_json::json;
use sha2::{Digest, Sha256};

use leadscore_core::time::{self, Millis};
use leadscore_store::{DeliveryRow, DeliveryStatus, StoreError, StoredScore, Tx};

/// The one event type sent today.
pub const STAGE_CHANGED: &str = "lead.stage_changed";

/// The wait before a first retry unless a webhook sets `first_retry`.
pub const DEFAULT_FIRST_RETRY_MS: Millis = 5_000;

/// A receiver, as configured (`[[webhooks]]`, checked by [`crate::settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub url: String,
    pub secret: String,
    /// Which event types it gets (empty: all).
    pub events: Vec<String>,
    /// The wait before the first retry of a failed delivery, doubling after each failure.
    pub first_retry: Millis,
}

impl Hook {
    /// A receiver of every event type, with the default first retry.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Hook {
        Hook { url: url.into(), secret: secret.into(), events: Vec::new(), first_retry: DEFAULT_FIRST_RETRY_MS }
    }
}

/// A lead's stage moved.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub lead_id: String,
    pub from: String,
    pub to: String,
    pub at: Millis,
}

/// The configured receivers.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub hooks: Vec<Hook>,
}

impl Webhooks {
    pub fn new(hooks: Vec<Hook>) -> Webhooks {
        Webhooks { hooks }
    }

    /// The receiver of deliveries to `url` (the first configured hook with that URL).
    pub(crate) fn hook_for(&self, url: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.url == url)
    }
}

/// Whose deliveries a dispatcher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receiver {
    /// One configured URL.
    Url(String),
    /// Deliveries to URLs no longer configured (they fail and are retried until dead).
    Unconfigured(Vec<String>),
}

impl Webhooks {
    /// One dispatcher per distinct configured URL, and one for deliveries to other URLs.
    pub fn receivers(&self) -> Vec<Receiver> {
        let mut urls: Vec<String> = self.hooks.iter().map(|h| h.url.clone()).collect();
        urls.sort();
        urls.dedup();
        let mut out: Vec<Receiver> = urls.iter().cloned().map(Receiver::Url).collect();
        out.push(Receiver::Unconfigured(urls));
        out
    }

    fn wanting(&self, event: &str) -> impl Iterator<Item = (usize, &Hook)> {
        self.hooks.iter().enumerate().filter(move |(_, h)| h.events.is_empty() || h.events.iter().any(|e| e == event))
    }
}

/// Queues the deliveries for a stage change (in the caller's transaction).
pub fn enqueue(tx: &mut Tx<'_>, hooks: &Webhooks, change: &StageChange, score: &StoredScore) -> Result<(), StoreError> {
    if hooks.hooks.is_empty() {
        return Ok(());
    }
    let total = leadscore_core::engine::round2(score.total);
    // The id is a digest of the change, so a retried transaction queues the same event.
    let digest = Sha256::digest(format!("{}\n{}\n{}\n{}\n{total}", change.lead_id, change.from, change.to, change.at));
    let id = format!("evt_{}", hex::encode(&digest[..12]));
    let body = json!({
        "id": id,
        "type": STAGE_CHANGED,
        "lead_id": change.lead_id,
        "from": change.from,
        "to": change.to,
        "total": total,
        "scores": score.scores,
        "at": time::format_timestamp(change.at),
    })
    .to_string();
    for (index, hook) in hooks.wanting(STAGE_CHANGED) {
        tx.enqueue_delivery(&DeliveryRow {
            id: format!("{id}-{index}"),
            lead_id: change.lead_id.clone(),
            url: hook.url.clone(),
            body: body.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_at: change.at,
            next_attempt_at: change.at,
            last_attempt_at: None,
            last_error: None,
            delivered_at: None,
        })?;
    }
    Ok(())
}
