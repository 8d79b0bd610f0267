//! Webhooks with a real HTTP receiver on loopback and an injected clock: signed deliveries,
//! retries with backoff while the receiver is down, dead after 24 hours, resend from the log, and
//! nothing for a change that was rolled back.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use harness::{MODEL, Server, T0, start_full};
use leadscore_core::time::{Millis, parse_timestamp};
use leadscore_http::segment::{HeaderMap, decode};
use leadscore_service::scoring::record_events;
use leadscore_service::webhooks::Hook;
use leadscore_store::StoreError;
use receiver::{Receiver, signature_valid};

const SECRET: &str = "whsec_test";

fn with_hook(receiver: &Receiver) -> Server {
    let hook = Hook::new(receiver.url(), SECRET);
    start_full(None, MODEL, vec![hook])
}

fn demo(user: &str, id: &str) -> Value {
    json!({"batch": [
        {"type": "identify", "userId": user, "traits": {"title": "VP", "email": format!("{user}@example.com"), "first_name": "Wanda", "last_name": "Ng"},
         "messageId": format!("{id}-i"), "timestamp": T0},
        {"type": "track", "userId": user, "event": "Demo Requested", "messageId": format!("{id}-t"), "timestamp": T0},
    ]})
}

/// Waits (the dispatcher runs every 200 ms) until `done` holds for the delivery log.
async fn wait_for(s: &Server, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, log) = s.get("/api/webhooks/deliveries").await;
        assert_eq!(status, StatusCode::OK);
        let list = log["deliveries"].as_array().unwrap().clone();
        if done(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn millis(v: &Value) -> Millis {
    parse_timestamp(v.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_and_resendable() {
    let receiver = Receiver::start(0);
    receiver.answer(500); // down
    let s = with_hook(&receiver);
    assert_eq!(s.ingest("/v1/batch", demo("w1", "a")).await.0, StatusCode::OK);
    let log = wait_for(&s, "a failed attempt", |l| l.len() == 1 && l[0]["attempts"] == 1).await;
    let first = &log[0];
    assert_eq!(first["status"], "pending");
    assert_eq!(first["last_error"], "HTTP 500");
    let wait = millis(&first["next_attempt_at"]) - millis(&first["last_attempt_at"]);
    assert!((4_000..=6_000).contains(&wait), "first retry after 5 s ± 20%: {wait}");
    assert!(receiver.requests().is_empty());

    // Up again; the retry is due once the clock reaches it.
    receiver.answer(200);
    s.clock.set(millis(&first["next_attempt_at"]));
    wait_for(&s, "delivery", |l| l[0]["status"] == "delivered").await;
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "lead.stage_changed");
    assert_eq!(
        (body["lead_id"].clone(), body["from"].clone(), body["to"].clone()),
        (json!("w1"), json!("lead"), json!("sql"))
    );
    assert_eq!(body["total"], json!(100.0));
    assert_eq!(body["scores"]["fit"], json!(40.0));
    assert_eq!(body["at"], T0);
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    // Who it is and why, for a receiver that posts it to a channel or a CRM.
    assert_eq!((body["email"].as_str(), body["name"].as_str()), (Some("w1@example.com"), Some("Wanda Ng")));
    assert_eq!(
        body["reasons"],
        json!([{"rule": "Demo requested", "points": 60.0}, {"rule": "Executive", "points": 40.0}])
    );
    assert_eq!((&body["grade"], &body["probability"]), (&Value::Null, &Value::Null), "the model has neither");
    assert_eq!(body["url"], Value::Null, "no public_url configured");
    let header = &got[0].headers["leadscore-signature"];
    assert!(signature_valid(SECRET, header, &got[0].body), "{header}");
    assert!(!signature_valid("wrong", header, &got[0].body));
    assert!(!signature_valid(SECRET, header, &got[0].body.replace("sql", "mql")));

    // Resent from the log: the same event id arrives again (receivers dedupe on it).
    let id = first["id"].as_str().unwrap();
    let (status, resent) = s.post(&format!("/api/webhooks/deliveries/{id}/resend"), "").await;
    assert_eq!((status, resent["status"].clone()), (StatusCode::OK, json!("pending")));
    wait_for(&s, "the resend", |l| l[0]["status"] == "delivered" && l[0]["attempts"] == 3).await;
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(&got[1].body).unwrap()["id"], body["id"]);
    assert_eq!(s.post("/api/webhooks/deliveries/nope/resend", "").await.0, StatusCode::NOT_FOUND);
    let (status, _) = s.get("/api/webhooks/deliveries?status=sent").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_retried_for_a_day_then_marked_dead() {
    let receiver = Receiver::start(0);
    receiver.answer(503);
    let s = with_hook(&receiver);
    s.ingest("/v1/batch", demo("w2", "b")).await;
    let start = parse_timestamp(T0).unwrap();
    let mut attempts = 0;
    loop {
        let log =
            wait_for(&s, "an attempt", |l| l[0]["attempts"].as_i64().unwrap() > attempts || l[0]["status"] == "dead")
                .await;
        let d = &log[0];
        attempts = d["attempts"].as_i64().unwrap();
        if d["status"] == "dead" {
            break;
        }
        let next = millis(&d["next_attempt_at"]);
        assert!(next - millis(&d["last_attempt_at"]) <= 3_600_000 * 12 / 10, "waits are capped at an hour");
        s.clock.set(next);
    }
    let (_, dead) = s.get("/api/webhooks/deliveries?status=dead").await;
    let d = &dead["deliveries"][0];
    assert!(millis(&d["last_attempt_at"]) - start >= 24 * 3_600_000, "retried for at least 24 hours");
    assert!(attempts >= 20, "{attempts} attempts");
    assert_eq!(d["last_error"], "HTTP 503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_change_sends_nothing() {
    let receiver = Receiver::start(0);
    let s = with_hook(&receiver);
    let mut body = demo("w3", "c");
    body["writeKey"] = json!("wk");
    let now = parse_timestamp(T0).unwrap();
    let decoded =
        decode(None, &HeaderMap::new(), body.to_string().as_bytes(), &s.app.keys, now, 86_400_000, None).unwrap();
    let app = std::sync::Arc::clone(&s.app);
    let result = tokio::task::spawn_blocking(move || {
        let active = app.model();
        app.store().write(|tx| {
            let recorded =
                record_events(tx, &active, &[], &app.outboxes, &decoded.messages, parse_timestamp(T0).unwrap())?;
            assert_eq!(recorded.changes.len(), 1, "the change and its delivery were written…");
            Err::<(), _>(StoreError::Backend("…and then the transaction failed".into()))
        })
    })
    .await
    .unwrap();
    assert!(result.is_err());
    tokio::time::sleep(Duration::from_millis(600)).await; // three dispatcher rounds
    let (_, log) = s.get("/api/webhooks/deliveries").await;
    assert_eq!(log["deliveries"], json!([]));
    assert!(receiver.requests().is_empty());
    assert_eq!(s.get("/api/leads/w3").await.0, StatusCode::NOT_FOUND);
}

/// A receiver that takes 6 s per answer delays only its own deliveries: a healthy receiver gets
/// every change within a second or two, while the slow one is still busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_delay_the_others() {
    let slow = Receiver::start(0);
    slow.slow_down(Duration::from_secs(6));
    let healthy = Receiver::start(0);
    let hooks = [&slow, &healthy].iter().map(|r| Hook::new(r.url(), SECRET)).collect();
    let s = start_full(None, MODEL, hooks);
    for (i, user) in ["s1", "s2", "s3"].iter().enumerate() {
        let started = Instant::now();
        assert_eq!(s.ingest("/v1/batch", demo(user, &format!("slow-{i}"))).await.0, StatusCode::OK);
        while !healthy.requests().iter().any(|r| r.body.contains(&format!("\"lead_id\":\"{user}\""))) {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "the healthy receiver waited for the slow one (change {i}, {:?})",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(slow.requests().len() < 3, "the slow receiver is still working through its deliveries");
}
