//! Builders shared by the core integration tests.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, reason = "test builders fail loudly")]

use leadscore_core::time::{MS_PER_DAY, Millis, format_timestamp, parse_timestamp};
use leadscore_core::{AccountBook, CheckedModel, Event, LeadHistory, Score, evaluate};
use serde_json::{Value, json};

pub fn model(source: &str) -> CheckedModel {
    CheckedModel::from_source(source).unwrap_or_else(|d| panic!("model does not check: {d:#?}\n{source}"))
}

/// Day `n` after 2024-01-01T00:00:00Z.
pub fn day(n: i64) -> Millis {
    parse_timestamp("2024-01-01T00:00:00Z").expect("valid") + n * MS_PER_DAY
}

pub fn hours(n: i64) -> Millis {
    n * 3_600_000
}

pub fn ts(ms: Millis) -> String {
    format_timestamp(ms)
}

pub fn event(body: Value) -> Event {
    Event::from_message(body).expect("valid message")
}

pub fn page(user: &str, path: &str, at: Millis) -> Event {
    event(json!({"type": "page", "userId": user, "properties": {"path": path}, "timestamp": ts(at)}))
}

pub fn track(user: &str, name: &str, properties: Value, at: Millis) -> Event {
    event(json!({"type": "track", "userId": user, "event": name, "properties": properties, "timestamp": ts(at)}))
}

pub fn identify(user: &str, traits: Value, at: Millis) -> Event {
    event(json!({"type": "identify", "userId": user, "traits": traits, "timestamp": ts(at)}))
}

pub fn lead(id: &str, traits: Value, events: Vec<Event>) -> LeadHistory {
    let traits = traits.as_object().cloned().unwrap_or_default();
    LeadHistory { id: id.to_owned(), traits, events, outcomes: vec![], ignore_applied: false }
}

pub fn score(model: &CheckedModel, lead: &LeadHistory, as_of: Millis) -> Score {
    evaluate(model, lead, &AccountBook::default(), as_of)
}

pub fn evaluate_with(model: &CheckedModel, lead: &LeadHistory, accounts: &AccountBook, as_of: Millis) -> Score {
    evaluate(model, lead, accounts, as_of)
}

pub fn points(score: &Score, rule: &str) -> f64 {
    score.contributions.iter().find(|c| c.rule == rule).map_or(0.0, |c| c.points)
}

pub fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
}
