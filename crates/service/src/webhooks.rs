//! The webhook outbox (SPEC §6.4): the configured receivers ([`Webhooks`]) and [`enqueue`], which
//! turns a stage change into one delivery per receiver, written in the transaction that made the
//! change (so a webhook is only ever sent for a committed change). [`crate::dispatcher`] sends
//! them.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use leadscore_core::time::{self, Millis};

use crate::alerts::{self, Alert, AlertFacts};
use leadscore_store::{DeliveryRow, DeliveryStatus, ScoreJson, StoreError, StoredContribution, StoredScore, Tx};

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
    /// Slack and Teams alerts, sent through the same outbox.
    pub alerts: Vec<Alert>,
    /// The server's public address (`public_url`), for the link to the lead's page in a body.
    pub public_url: Option<String>,
}

impl Webhooks {
    pub fn new(hooks: Vec<Hook>, alerts: Vec<Alert>, public_url: Option<String>) -> Webhooks {
        Webhooks { hooks, alerts, public_url }
    }

    /// Whether deliveries to `url` go to an alert (sent unsigned).
    pub(crate) fn is_alert(&self, url: &str) -> bool {
        self.alerts.iter().any(|a| a.url == url)
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
    /// One dispatcher per distinct configured URL (webhooks and alerts), and one for deliveries
    /// to other URLs.
    pub fn receivers(&self) -> Vec<Receiver> {
        let mut urls: Vec<String> =
            self.hooks.iter().map(|h| h.url.clone()).chain(self.alerts.iter().map(|a| a.url.clone())).collect();
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

/// How many reasons a webhook body, an alert and a CRM's reasons field list.
pub const REASONS: usize = 3;

/// A lead's name from its traits: `name`, else `first_name last_name` (also `firstName`,
/// `lastName`, as Segment's spec spells them).
pub fn name_of(traits: &Map<String, Value>) -> Option<String> {
    let text = |k: &str| traits.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    if let Some(name) = text("name") {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = [text("first_name").or(text("firstName")), text("last_name").or(text("lastName"))]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The link to a lead's page in the dashboard, if the server knows its public address.
pub fn lead_url(public_url: Option<&str>, lead_id: &str) -> Option<String> {
    public_url.map(|base| format!("{}/leads/{}", base.trim_end_matches('/'), leadscore_report::percent_encode(lead_id)))
}

/// Queues the deliveries for a stage change (in the caller's transaction). `json` is the score's
/// encoded form (its traits and contributions: the body's e-mail, name and reasons).
pub fn enqueue(
    tx: &mut Tx<'_>,
    hooks: &Webhooks,
    change: &StageChange,
    score: &StoredScore,
    json: &ScoreJson,
) -> Result<(), StoreError> {
    if hooks.hooks.is_empty() && hooks.alerts.is_empty() {
        return Ok(());
    }
    let traits: Map<String, Value> = serde_json::from_str(&json.current_traits).unwrap_or_default();
    let contributions: Vec<StoredContribution> = serde_json::from_str(&json.contributions).unwrap_or_default();
    let top = leadscore_report::words::top_reasons(contributions.iter().map(|c| (c.rule.as_str(), c.points)), REASONS);
    let reasons: Vec<Value> = top.iter().map(|(rule, points)| json!({"rule": rule, "points": points})).collect();
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
        "email": traits.get("email").and_then(Value::as_str),
        "name": name_of(&traits),
        "grade": score.grade,
        "probability": score.probability,
        "reasons": reasons,
        "url": lead_url(hooks.public_url.as_deref(), &change.lead_id),
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
    let facts = AlertFacts {
        change,
        score,
        name: name_of(&traits),
        email: traits.get("email").and_then(Value::as_str),
        company: alerts::company_of(&traits),
        reasons: &top,
        url: lead_url(hooks.public_url.as_deref(), &change.lead_id),
    };
    alerts::enqueue(tx, &hooks.alerts, &facts, &hex::encode(&digest[..12]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{lead_url, name_of};

    #[test]
    fn a_body_names_the_lead_and_links_its_page() {
        let traits = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(name_of(&traits(json!({"name": " Ada Lovelace "}))).as_deref(), Some("Ada Lovelace"));
        assert_eq!(name_of(&traits(json!({"firstName": "Ada", "lastName": "L"}))).as_deref(), Some("Ada L"));
        assert_eq!(name_of(&traits(json!({"first_name": "Ada"}))).as_deref(), Some("Ada"));
        assert_eq!(name_of(&traits(json!({"email": "a@x.com"}))), None);
        assert_eq!(
            lead_url(Some("https://leads.example.com"), "u/1 2").as_deref(),
            Some("https://leads.example.com/leads/u%2F1%202")
        );
        assert_eq!(lead_url(None, "u1"), None);
    }
}
