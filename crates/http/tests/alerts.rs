//! Slack and Teams alerts at real HTTP receivers on loopback, with an injected clock: a lead
//! reaching SQL alerts both once, with who it is, the reasons and the link; falling back and
//! crossing again within the quiet period does not alert; crossing after it does.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use harness::{MODEL, Server, T0, start_model_settings};
use leadscore_core::time::{MS_PER_DAY, format_timestamp, parse_timestamp};
use leadscore_service::alerts::{Alert, AlertKind};
use leadscore_service::settings::PublicUrl;
use receiver::Receiver;

async fn demo(s: &Server, id: &str, at: i64) {
    let batch = json!({"batch": [
        {"type": "identify", "userId": "ada", "traits": {"title": "VP Sales", "first_name": "Ada", "last_name": "Lovelace",
         "company": "Acme", "email": "ada@acme.example"}, "messageId": format!("{id}-i"), "timestamp": format_timestamp(at)},
        {"type": "track", "userId": "ada", "event": "Demo Requested", "messageId": id, "timestamp": format_timestamp(at)},
    ]});
    assert_eq!(s.ingest("/v1/batch", batch).await.0, StatusCode::OK);
}

/// Waits until the stored stage (the history's latest entry, written by ingest or the
/// scheduler) is `stage`.
async fn wait_stage(s: &Server, stage: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.lead("ada").await["history"].as_array().unwrap().last().unwrap()["stage"] != stage {
        assert!(Instant::now() < deadline, "ada never reached {stage}: {}", s.lead("ada").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_requests(r: &Receiver, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = r.requests();
        if got.len() >= n {
            return got.iter().map(|g| serde_json::from_str(&g.body).unwrap()).collect();
        }
        assert!(Instant::now() < deadline, "{} of {n} alerts arrived", got.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_alert_once_per_crossing_with_the_reasons() {
    let slack = Receiver::start(0);
    let teams = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let quiet = 30 * MS_PER_DAY;
    let alerts = vec![
        Alert { kind: AlertKind::Slack, url: slack.url(), stages: vec!["sql".into()], quiet },
        Alert { kind: AlertKind::Teams, url: teams.url(), stages: vec!["sql".into()], quiet },
    ];
    let s = start_model_settings(dir.path(), MODEL, |settings| {
        settings.alerts = alerts;
        settings.public_url = Some(PublicUrl::parse("https://leads.example.com").unwrap());
    });
    let t0 = parse_timestamp(T0).unwrap();

    demo(&s, "d1", t0).await;
    wait_stage(&s, "sql").await;
    let got = wait_requests(&slack, 1).await;
    assert_eq!(got[0]["text"], "Ada Lovelace (Acme) is now SQL");
    assert_eq!(got[0]["blocks"][2]["text"]["text"], "*Why*\n• Demo requested +60\n• Executive +40");
    assert_eq!(got[0]["blocks"][3]["elements"][0]["url"], "https://leads.example.com/leads/ada");
    assert!(!slack.requests()[0].headers.contains_key("leadscore-signature"), "alerts are not signed");
    let card = &wait_requests(&teams, 1).await[0]["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["body"][0]["text"], "Ada Lovelace (Acme) is now SQL");
    assert_eq!(card["body"][3]["text"], "- Demo requested +60\n- Executive +40");

    // Engagement decays (half-life 10 days): back to MQL after ~6 days, no alert for that.
    s.clock.set(t0 + 7 * MS_PER_DAY);
    wait_stage(&s, "mql").await;
    // A new demo request: SQL again within the quiet period; no second alert.
    demo(&s, "d2", t0 + 7 * MS_PER_DAY).await;
    wait_stage(&s, "sql").await;
    // After the quiet period: down (through MQL to lead), and up again, alerts.
    s.clock.set(t0 + 40 * MS_PER_DAY);
    wait_stage(&s, "lead").await;
    demo(&s, "d3", t0 + 40 * MS_PER_DAY).await;
    wait_stage(&s, "sql").await;
    let got = wait_requests(&slack, 2).await;
    wait_requests(&teams, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        (slack.requests().len(), teams.requests().len()),
        (2, 2),
        "one alert per crossing past the quiet period"
    );
    assert_eq!(got[1]["text"], "Ada Lovelace (Acme) is now SQL");
    let (_, log) = s.get("/api/webhooks/deliveries").await;
    assert!(log["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "delivered"), "{log}");
}
