//! Webhooks (SPEC §6.4): a stage change becomes one delivery per configured URL, written to the
//! outbox in the transaction that made the change, and signed when sent:
//! `Leadscore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! Each receiver has its own dispatcher ([`dispatch_due`] for one [`Receiver`], run by its own
//! thread), so a slow or dead receiver delays only its own deliveries. A dispatcher claims due
//! deliveries (a lease: their next attempt moves a minute ahead, so a process that dies mid-send
//! leaves them to be retried), posts them outside any transaction, and records the result: delivered on a 2xx; otherwise retried with exponential
//! backoff and jitter until 24 hours have passed since the change, then marked dead. Delivery is at
//! least once; receivers dedupe on the body's `id`.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use leadscore_core::time::{self, Millis};
use leadscore_store::{DeliveryRow, DeliveryStatus, Store, StoreError, StoredScore, Tx};

use crate::scoring::StageChange;
use crate::settings::WebhookConfig;

/// The one event type sent today.
pub const STAGE_CHANGED: &str = "lead.stage_changed";

/// How long a failing delivery is retried before it is marked dead.
pub const RETRY_WINDOW_MS: Millis = 24 * 3_600_000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: Millis = 3_600_000;
/// How long a claimed delivery is left to its sender before another attempt may start.
const LEASE_MS: Millis = 60_000;
/// How long one attempt may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Deliveries sent at once to one receiver.
const PARALLEL: usize = 4;
/// Deliveries one receiver's dispatcher claims at a time.
const CLAIM: usize = 16;

/// The configured receivers.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub hooks: Vec<WebhookConfig>,
}

/// The wait before a first retry unless a webhook sets `first_retry`.
pub const DEFAULT_FIRST_RETRY_MS: Millis = 5_000;

impl Webhooks {
    pub fn new(hooks: Vec<WebhookConfig>) -> Webhooks {
        Webhooks { hooks }
    }

    /// The wait before the first retry to `url` (doubling after each failure, up to an hour).
    fn first_retry_ms(&self, url: &str) -> Millis {
        self.hooks
            .iter()
            .find(|h| h.url == url)
            .and_then(|h| h.first_retry.as_deref())
            .and_then(|t| leadscore_core::time::Duration::parse(t).ok())
            .map_or(DEFAULT_FIRST_RETRY_MS, |d| d.as_millis())
    }

    /// The secret for deliveries to `url` (the first configured hook with that URL).
    fn secret_for(&self, url: &str) -> Option<&str> {
        self.hooks.iter().find(|h| h.url == url).map(|h| h.secret.as_str())
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

/// The wait before attempt `attempts + 1`: `first · 2^(attempts−1)`, at most an hour, ±20% jitter
/// (derived from the delivery id, so retries of many deliveries spread out).
pub fn backoff(first_retry_ms: Millis, attempts: i64, id: &str) -> Millis {
    let exponent = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(0);
    let base = first_retry_ms.saturating_mul(1_i64 << exponent).min(MAX_BACKOFF_MS);
    let digest = Sha256::digest(format!("{id}:{attempts}"));
    let unit = f64::from(u16::from_be_bytes([digest[0], digest[1]])) / f64::from(u16::MAX);
    (base as f64 * (0.8 + 0.4 * unit)) as Millis
}

/// Sends the deliveries to `receiver` due at `now` and records the results; returns how many
/// were attempted.
pub fn dispatch_due(store: &Store, hooks: &Webhooks, receiver: &Receiver, now: Millis) -> Result<usize, StoreError> {
    let claimed = store.write(|tx| {
        let due = match receiver {
            Receiver::Url(url) => tx.due_deliveries(now, Some(url), &[], CLAIM)?,
            Receiver::Unconfigured(configured) => tx.due_deliveries(now, None, configured, CLAIM)?,
        };
        for d in &due {
            let mut leased = d.clone();
            leased.next_attempt_at = now + LEASE_MS;
            tx.update_delivery(&leased)?;
        }
        Ok(due)
    })?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .user_agent(concat!("leadscore/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let results: Vec<(DeliveryRow, Result<(), String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = claimed
            .chunks(claimed.len().div_ceil(PARALLEL))
            .map(|chunk| {
                let agent = agent.clone();
                scope.spawn(move || chunk.iter().map(|d| (d.clone(), send(&agent, hooks, d, now))).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let attempted = results.len();
    store.write(|tx| {
        for (delivery, result) in &results {
            let mut d = delivery.clone();
            d.attempts += 1;
            d.last_attempt_at = Some(now);
            match result {
                Ok(()) => {
                    d.status = DeliveryStatus::Delivered;
                    d.delivered_at = Some(now);
                    d.last_error = None;
                    metrics::counter!("leadscore_webhook_deliveries_total", "result" => "delivered").increment(1);
                }
                Err(error) => {
                    d.last_error = Some(error.clone());
                    if now - d.created_at >= RETRY_WINDOW_MS {
                        d.status = DeliveryStatus::Dead;
                        metrics::counter!("leadscore_webhook_deliveries_total", "result" => "dead").increment(1);
                    } else {
                        d.next_attempt_at = now + backoff(hooks.first_retry_ms(&d.url), d.attempts, &d.id);
                        metrics::counter!("leadscore_webhook_deliveries_total", "result" => "retry").increment(1);
                    }
                }
            }
            // A delivery re-sent from the log while this attempt ran keeps its new schedule.
            if tx.delivery(&d.id)?.is_some_and(|current| current.next_attempt_at == now + LEASE_MS) {
                tx.update_delivery(&d)?;
            }
        }
        Ok(())
    })?;
    Ok(attempted)
}

/// One attempt: a signed POST; `Ok` on a 2xx.
fn send(agent: &ureq::Agent, hooks: &Webhooks, delivery: &DeliveryRow, now: Millis) -> Result<(), String> {
    let secret =
        hooks.secret_for(&delivery.url).ok_or_else(|| "no webhook with this URL is configured now".to_owned())?;
    let response = agent
        .post(&delivery.url)
        .header("Content-Type", "application/json")
        .header("Leadscore-Signature", signature(secret, now, &delivery.body))
        .header("Leadscore-Delivery", &delivery.id)
        .send(delivery.body.as_bytes());
    match response {
        Ok(mut r) if r.status().is_success() => {
            let _ = r.body_mut().read_to_string();
            Ok(())
        }
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(e.to_string()),
    }
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
    use super::{MAX_BACKOFF_MS, backoff, signature};

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        let waits: Vec<i64> = (1..=14).map(|n| backoff(5_000, n, "d1")).collect();
        for (n, w) in waits.iter().enumerate() {
            let base = (5_000_i64 << n).min(MAX_BACKOFF_MS) as f64;
            assert!((*w as f64) >= base * 0.8 && (*w as f64) <= base * 1.2, "attempt {}: {w}", n + 1);
        }
        assert_ne!(backoff(5_000, 3, "a"), backoff(5_000, 3, "b"), "jitter spreads deliveries");
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"s3cret",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("s3cret", 1_700_000_000_123, "{}"),
            "t=1700000000,v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }
}
