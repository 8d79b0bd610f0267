//! The webhook dispatcher threads: one per receiver ([`Receiver`]), so a slow or dead receiver
//! delays only its own deliveries. Each claims due deliveries from the outbox (a lease: their
//! next attempt moves a minute ahead, so a process that dies mid-send leaves them to be retried),
//! posts them outside any transaction, signed
//! (`Leadscore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`), and
//! records the result: delivered on a 2xx; otherwise retried with exponential backoff and jitter
//! until 24 hours have passed since the change, then marked dead. Delivery is at least once;
//! receivers dedupe on the body's `id`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use leadscore_core::time::Millis;
use leadscore_store::{DeliveryRow, DeliveryStatus, Store, StoreError};

use crate::app::App;
use crate::webhooks::{Receiver, Webhooks};

/// How long a failing delivery is retried before it is marked dead.
pub const RETRY_WINDOW_MS: Millis = 24 * 3_600_000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: Millis = 3_600_000;
/// How long a claimed delivery is left to its sender before another attempt may start.
const LEASE_MS: Millis = 60_000;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries sent at once to one receiver.
const PARALLEL: usize = 4;
/// Deliveries one receiver's dispatcher claims at a time.
const CLAIM: usize = 16;

impl App {
    pub(crate) fn spawn_dispatchers(self: &Arc<Self>) {
        for receiver in self.outboxes.webhooks.receivers() {
            self.spawn_loop("webhooks", Duration::from_millis(200), move |app| {
                if let Err(e) = dispatch_due(&app.store, &app.outboxes.webhooks, &receiver, app.clock.now()) {
                    tracing::warn!("webhooks: {e}");
                }
            });
        }
    }
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
                        let first =
                            hooks.hook_for(&d.url).map_or(crate::webhooks::DEFAULT_FIRST_RETRY_MS, |h| h.first_retry);
                        d.next_attempt_at = now + backoff(first, d.attempts, &d.id);
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
    let request = agent.post(&delivery.url).header("Content-Type", "application/json");
    let request = match hooks.hook_for(&delivery.url) {
        Some(hook) => request
            .header("Leadscore-Signature", signature(&hook.secret, now, &delivery.body))
            .header("Leadscore-Delivery", &delivery.id),
        // Slack and Teams authenticate by the secret URL and take no other headers.
        None if hooks.is_alert(&delivery.url) => request,
        None => return Err("no webhook with this URL is configured now".to_owned()),
    };
    let response = request.send(delivery.body.as_bytes());
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
