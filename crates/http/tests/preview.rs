//! What-if preview of an uploaded model version: the stage counts it predicts are the ones its
//! activation then stores, the leads entering and leaving each stage are named, the distributions
//! and the rule-by-rule diff say what changed, and both backtests come side by side on request.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use harness::{MODEL, T0, start};

fn batch() -> Value {
    let mut messages = Vec::new();
    for i in 0..30 {
        let user = format!("u{i}");
        let title = if i % 3 == 0 { "VP Sales" } else { "Engineer" };
        messages.push(
            json!({"type": "identify", "userId": user, "traits": {"title": title, "name": format!("Person {i}")},
                             "messageId": format!("{user}-i"), "timestamp": T0}),
        );
        if i % 2 == 0 {
            messages.push(json!({"type": "track", "userId": user, "event": "Demo Requested",
                                 "messageId": format!("{user}-d"), "timestamp": T0}));
        }
        for p in 0..(i % 4) {
            messages.push(json!({"type": "page", "userId": user, "properties": {"path": "/pricing"},
                                 "messageId": format!("{user}-p{p}"), "timestamp": T0}));
        }
    }
    json!({ "batch": messages })
}

async fn stage_counts(s: &harness::Server) -> BTreeMap<String, usize> {
    let (_, list) = s.get("/api/leads?limit=1000").await;
    let mut counts = BTreeMap::new();
    for lead in list["leads"].as_array().unwrap() {
        *counts.entry(lead["stage"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_predicts_what_activation_stores_and_names_who_moves() {
    let s = start();
    assert_eq!(s.ingest("/v1/batch", batch()).await.0, StatusCode::OK);
    let before = stage_counts(&s).await;
    // Lower the MQL threshold, raise pricing pages, drop the SQL stage's bar a little.
    let candidate = MODEL
        .replace("name = \"api-test\"", "name = \"api-test-2\"")
        .replace("when = \"total >= 50\"", "when = \"total >= 40\"")
        .replace("points = 5\n", "points = 12\n");
    let (status, created) = s.post("/api/models", &candidate).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let version = created["version"].as_i64().unwrap();

    let (status, preview) = s.get(&format!("/api/models/{version}/preview")).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!((preview["leads"].as_i64(), preview["active_version"].as_i64()), (Some(30), Some(1)));
    assert_eq!(preview["as_of"], T0);
    let predicted: BTreeMap<String, (usize, usize)> = preview["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                (b["active"].as_u64().unwrap() as usize, b["preview"].as_u64().unwrap() as usize),
            )
        })
        .collect();
    for (stage, n) in &before {
        assert_eq!(predicted[stage].0, *n, "the active side is what is stored now: {stage}");
    }
    let mql = preview["stages"].as_array().unwrap().iter().find(|b| b["name"] == "mql").unwrap();
    assert!(mql["entering"].as_u64().unwrap() > 0, "{mql}");
    assert!(mql["entering_sample"][0]["name"].as_str().unwrap().starts_with("Person "), "{mql}");
    assert!(preview["moves"].as_array().unwrap().iter().any(|m| m["from"] == "lead" && m["to"] == "mql"), "{preview}");
    let total = &preview["dimensions"][0];
    assert_eq!(total["name"], "total");
    assert!(total["preview"]["mean"].as_f64() > total["active"]["mean"].as_f64(), "{total}");
    let binned: u64 = total["bins"].as_array().unwrap().iter().map(|b| b["preview"].as_u64().unwrap()).sum();
    assert_eq!(binned, 30);
    let diff: Vec<String> = preview["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {} -> {}",
                c["change"].as_str().unwrap(),
                c["path"].as_str().unwrap(),
                c["before"],
                c["after"]
            )
        })
        .collect();
    assert_eq!(
        diff,
        [
            r#"changed model.name "\"api-test\"" -> "\"api-test-2\"""#,
            r#"changed rules."Pricing page".points "5" -> "12""#,
            r#"changed stages.mql.when "\"total >= 50\"" -> "\"total >= 40\"""#,
        ]
    );
    assert!(preview["backtest"].is_null(), "backtests only when asked");

    // Activation stores exactly what the preview predicted.
    let (status, body) = s.post(&format!("/api/models/{version}/activate?wait=true"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = stage_counts(&s).await;
    for (stage, (_, predicted)) in &predicted {
        assert_eq!(after.get(stage).copied().unwrap_or(0), *predicted, "{stage}: {after:?} vs {predicted:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_can_carry_both_backtests_and_names_its_errors() {
    let s = start();
    assert_eq!(s.ingest("/v1/batch", batch()).await.0, StatusCode::OK);
    let (status, body) = s.post("/api/leads/u0/outcome", r#"{"outcome": "won", "at": "2026-01-09T00:00:00Z"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, created) = s.post("/api/models", &MODEL.replace("points = 60", "points = 70")).await;
    let version = created["version"].as_i64().unwrap();
    let (status, preview) = s.get(&format!("/api/models/{version}/preview?backtest=true&gap=1h")).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["backtest"]["active"]["counts"]["leads"], 30);
    assert_eq!(preview["backtest"]["preview"]["counts"]["leads"], 30);
    let (status, body) = s.get(&format!("/api/models/{version}/preview?backtest=maybe")).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_parameter")));
    let (status, body) = s.get("/api/models/99/preview").await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("model_not_found")));
    let (status, body) = s.get(&format!("/api/models/{version}/preview?as_of=yesterday")).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_parameter")));
}
