//! Webhooks (SPEC §6.4): a stage change becomes one delivery per configured URL, written to the
//! outbox in the transaction that made the change, and signed when sent:
//! `Leadscore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use leadscore_core::time::{self, Millis};
use leadscore_store::{DeliveryRow, StoreError, StoredScore, Tx};

use crate::scoring::StageChange;
use crate::settings::WebhookConfig;

/// The one event type sent today.
pub const STAGE_CHANGED: &str = "lead.stage_changed";

/// The configured receivers.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub hooks: Vec<WebhookConfig>,
}

impl Webhooks {
    fn wanting(&self, event: &str) -> impl Iterator<Item = (usize, &WebhookConfig)> {
        self.hooks.iter().enumerate().filter(move |(_, h)| h.events.is_empty() || h.events.iter().any(|e| e == event))
    }
}

/// Queues the deliveries for a stage change (in the caller's transaction).
pub fn enqueue(tx: &mut Tx<'_>, hooks: &Webhooks, change: &StageChange, score: &StoredScore) -> Result<(), StoreError> {
    if hooks.hooks.is_empty() {
        return Ok(());
    }
    let scores: Value = serde_json::from_str(&score.scores).unwrap_or(Value::Null);
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
        "scores": scores,
        "at": time::format_timestamp(change.at),
    })
    .to_string();
    for (index, hook) in hooks.wanting(STAGE_CHANGED) {
        tx.enqueue_delivery(&DeliveryRow {
            id: format!("{id}-{index}"),
            lead_id: change.lead_id.clone(),
            url: hook.url.clone(),
            body: body.clone(),
            status: "pending".to_owned(),
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

/// The `Leadscore-Signature` header value for `body` sent at `at`.
pub fn signature(secret: &str, at: Millis, body: &str) -> String {
    let t = at.div_euclid(1000);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC accepts keys of any length; this cannot happen.
        return format!("t={t},v1=");
    };
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"s3cret",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("s3cret", 1_700_000_000_123, "{}"),
            "t=1700000000,v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }
}
