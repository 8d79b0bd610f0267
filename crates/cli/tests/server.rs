//! The real `leadscore serve` process: scores equal a batch `leadscore score` of the same events
//! (in any batch split and order), two processes sharing one PostgreSQL database stay correct,
//! and every event acknowledged with 200 survives `kill -9`.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "../../store/tests/common/pg.rs"]
mod pg;
#[path = "common/server.rs"]
mod server;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use server::{ServerProcess, all_leads, batch_scores, get_json, post_batch};

/// Generates a realistic dataset with `leadscore gen`; returns its messages in file order.
fn generate(dir: &Path, leads: u64, seed: u64, end: &str) -> Vec<Value> {
    let out = Command::new(server::binary())
        .args(["gen", "--leads", &leads.to_string(), "--seed", &seed.to_string(), "--end", end, "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_jsonl(path: &Path, messages: &[Value]) {
    let text: String = messages.iter().map(|m| format!("{m}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn close(a: &Value, b: &Value) -> bool {
    (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 0.011
}

#[test]
fn server_scores_equal_batch_scores_whatever_the_batches() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/models/b2b-default.toml");
    for seed in [3_u64, 4] {
        let dir = tempfile::tempdir().unwrap();
        let end = "2026-06-30T00:00:00Z";
        let mut messages = generate(dir.path(), 40, seed, end);
        // Any order, any split: the server must not care.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        messages.shuffle(&mut rng);
        let events = dir.path().join("shuffled.jsonl");
        write_jsonl(&events, &messages);
        let db = format!("sqlite://{}", dir.path().join("server.db").display());
        let server = ServerProcess::start(&model, &db, dir.path());
        let mut rest = &messages[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..=120).min(rest.len());
            assert_eq!(server.batch(&rest[..n]), 200, "{}", server.log());
            rest = &rest[n..];
        }
        let batch = batch_scores(&model, &events, end);
        let leads = all_leads(&server.base);
        assert_eq!(leads.len(), batch.len(), "the same leads exist");
        for (id, expected) in &batch {
            let (status, got) = get_json(&server.base, &format!("/api/leads/{id}?as_of={end}"));
            assert_eq!(status, 200, "{id}: {got}");
            let context = format!("seed {seed}, lead {id}:\nserver {got}\nbatch {expected}");
            assert!(close(&got["total"], &expected["total"]), "{context}");
            assert_eq!(got["stage"], expected["stage"], "{context}");
            assert_eq!(got["grade"], expected["grade"], "{context}");
            for dim in ["fit", "engagement"] {
                assert!(close(&got["scores"][dim], &expected[dim]), "{dim}: {context}");
            }
            let rules = |v: &Value| -> Vec<(String, i64)> {
                v["contributions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| (c["rule"].as_str().unwrap().to_owned(), c["matched"].as_i64().unwrap()))
                    .collect()
            };
            assert_eq!(rules(&got), rules(expected), "{context}");
        }
    }
}

/// A model without time-dependent rules, so a score stored at ingest equals a batch score later.
const STEADY_MODEL: &str = r#"
[model]
name = "steady"
[dimensions.fit]
[dimensions.engagement]
[[rules]]
name = "Executive"
dimension = "fit"
if = 'has(lead.title) && lead.title.contains("VP")'
points = 30
[[rules]]
name = "Any track"
dimension = "engagement"
on = 'event.type == "track"'
points = 1
[[rules]]
name = "Pricing"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path.startsWith("/pricing")'
points = 2
limit = 10
[[stages]]
name = "mql"
when = "total >= 20"
[[stages]]
name = "sql"
when = "total >= 45"
"#;

fn random_messages(seed: u64, leads: usize, n: usize) -> Vec<Value> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let user = format!("u{}", rng.random_range(0..leads));
            let at = format!("2026-03-{:02}T{:02}:00:00Z", rng.random_range(1..28), rng.random_range(0..24));
            let id = format!("s{seed}-{i}");
            match rng.random_range(0..10) {
                0 => json!({"type": "identify", "userId": user, "traits": {"title": if rng.random_bool(0.5) { "VP Sales" } else { "Analyst" }}, "timestamp": at, "messageId": id}),
                1..=4 => json!({"type": "page", "userId": user, "properties": {"path": "/pricing"}, "timestamp": at, "messageId": id}),
                _ => json!({"type": "track", "userId": user, "event": "Clicked", "timestamp": at, "messageId": id}),
            }
        })
        .collect()
}

#[test]
fn two_processes_sharing_postgres_agree_with_batch() {
    let Some(cluster) = pg::PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("steady.toml");
    std::fs::write(&model, STEADY_MODEL).unwrap();
    let db = cluster.database();
    let a = ServerProcess::start(&model, &db, dir.path());
    let b = ServerProcess::start(&model, &db, dir.path());
    let messages = random_messages(7, 12, 3000);
    // Both processes get events for the same 12 leads at the same time.
    let halves: Vec<Vec<Value>> =
        vec![messages.iter().step_by(2).cloned().collect(), messages.iter().skip(1).step_by(2).cloned().collect()];
    std::thread::scope(|scope| {
        for (half, server) in halves.iter().zip([&a, &b]) {
            scope.spawn(move || {
                for chunk in half.chunks(25) {
                    assert_eq!(server.batch(chunk), 200, "{}", server.log());
                }
            });
        }
    });
    let events = dir.path().join("all.jsonl");
    write_jsonl(&events, &messages);
    let batch = batch_scores(&model, &events, "2026-04-01T00:00:00Z");
    for server in [&a, &b] {
        let stored: HashMap<String, Value> =
            all_leads(&server.base).into_iter().map(|l| (l["id"].as_str().unwrap().to_owned(), l)).collect();
        assert_eq!(stored.len(), batch.len());
        for (id, expected) in &batch {
            let got = &stored[id];
            assert!(close(&got["total"], &expected["total"]), "{id}: stored {got} vs batch {expected}");
            assert_eq!(got["stage"], expected["stage"], "{id}");
        }
    }
}

/// Sends batches from three threads until `stop`; returns the acknowledged count per lead.
fn send_until(
    base: &str,
    stop: &Arc<AtomicBool>,
    first_id: u64,
    acknowledged: &Arc<Mutex<HashMap<String, u64>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..3)
        .map(|t| {
            let base = base.to_owned();
            let stop = Arc::clone(stop);
            let acknowledged = Arc::clone(acknowledged);
            let start = first_id + t * 1_000_000;
            std::thread::spawn(move || {
                let mut i = start;
                while !stop.load(Ordering::SeqCst) {
                    let batch: Vec<Value> = (0..20)
                        .map(|k| {
                            let user = format!("d{}", (i + k) % 50);
                            json!({"type": "track", "userId": user, "event": "Tick", "messageId": format!("k{}", i + k), "timestamp": "2026-03-01T00:00:00Z"})
                        })
                        .collect();
                    match post_batch(&base, &batch) {
                        200 => {
                            let mut acked = acknowledged.lock().unwrap();
                            for m in &batch {
                                *acked.entry(m["userId"].as_str().unwrap().to_owned()).or_default() += 1;
                            }
                        }
                        // Refused while shutting down, or the connection is gone: not acknowledged.
                        0 | 503 => std::thread::sleep(std::time::Duration::from_millis(5)),
                        other => panic!("unexpected status {other}"),
                    }
                    i += 20;
                }
            })
        })
        .collect()
}

/// Every lead's acknowledged events are stored, and its stored score counts them.
fn assert_all_stored(server: &ServerProcess, acked: &HashMap<String, u64>) {
    assert!(acked.values().sum::<u64>() > 200, "the senders got through: {acked:?}");
    let stored: HashMap<String, Value> =
        all_leads(&server.base).into_iter().map(|l| (l["id"].as_str().unwrap().to_owned(), l)).collect();
    for (lead, count) in acked {
        let (_, view) = get_json(&server.base, &format!("/api/leads/{lead}"));
        let matched =
            view["contributions"].as_array().unwrap().iter().find(|c| c["rule"] == "Any track").unwrap()["matched"]
                .as_u64()
                .unwrap();
        assert!(matched >= *count, "{lead}: {count} acknowledged, {matched} stored");
        // Stored and scored in the same transaction: the stored total counts every stored event.
        assert!(close(&stored[lead]["total"], &json!(matched as f64)), "{lead}: {} vs {matched}", stored[lead]);
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("steady.toml");
    std::fs::write(&model, STEADY_MODEL).unwrap();
    let db = format!("sqlite://{}", dir.path().join("graceful.db").display());
    let acknowledged: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut server = ServerProcess::start(&model, &db, dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let senders = send_until(&server.base, &stop, 0, &acknowledged);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    assert!(status.success(), "exit status {status}: {}", server.log());
    assert!(server.log().contains("leadscore: stopped"), "{}", server.log());
    let server = ServerProcess::start(&model, &db, dir.path());
    assert_all_stored(&server, &acknowledged.lock().unwrap());
}

#[test]
fn every_acknowledged_event_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("steady.toml");
    std::fs::write(&model, STEADY_MODEL).unwrap();
    let db = format!("sqlite://{}", dir.path().join("durable.db").display());
    let acknowledged: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut next_id = 0_u64;
    for round in 0..4 {
        let server = ServerProcess::start(&model, &db, dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let senders = send_until(&server.base, &stop, next_id, &acknowledged);
        std::thread::sleep(std::time::Duration::from_millis(700 + 300 * round));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for s in senders {
            s.join().unwrap();
        }
        next_id += 10_000_000;
    }
    let server = ServerProcess::start(&model, &db, dir.path());
    assert_all_stored(&server, &acknowledged.lock().unwrap());
}

/// POSTs to the API with the admin key; returns the status and the JSON answer.
fn post_api(base: &str, path: &str, body: &str) -> (u16, Value) {
    let mut r = server::agent()
        .post(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {}", server::API_KEY))
        .send(body.as_bytes())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A model run in shadow beside the active one scores every event as `leadscore score` with that
/// model scores the same events: the leads stored before it started (its backfill) and after.
#[test]
fn a_shadow_model_scores_as_leadscore_score_with_that_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let active = root.join("examples/models/b2b-default.toml");
    // The steady model with the active one's `[events] ignore` (identity links come from the
    // messages the active model accepts; with the same filter the batch sees the same ones).
    let b2b = std::fs::read_to_string(&active).unwrap();
    let events_section: String = b2b[b2b.find("\n[events]").unwrap()..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .collect::<Vec<_>>()
        .join("\n");
    let shadow_model = format!("{STEADY_MODEL}\n[events]\n{events_section}\n");
    let dir = tempfile::tempdir().unwrap();
    let shadow_path = dir.path().join("steady.toml");
    std::fs::write(&shadow_path, &shadow_model).unwrap();
    let end = "2026-06-30T00:00:00Z";
    let messages = generate(dir.path(), 60, 11, end);
    let events = dir.path().join("events.jsonl");
    write_jsonl(&events, &messages);
    let db = format!("sqlite://{}", dir.path().join("server.db").display());
    let server = ServerProcess::start(&active, &db, dir.path());
    let half = messages.len() / 2;
    for chunk in messages[..half].chunks(100) {
        assert_eq!(server.batch(chunk), 200, "{}", server.log());
    }
    let (status, created) = post_api(&server.base, "/api/models", &shadow_model);
    assert_eq!(status, 201, "{created}");
    let version = created["version"].as_i64().unwrap();
    let (status, body) = post_api(&server.base, &format!("/api/models/{version}/shadow"), "");
    assert_eq!(status, 200, "{body}");
    for chunk in messages[half..].chunks(100) {
        assert_eq!(server.batch(chunk), 200, "{}", server.log());
    }
    // The backfill of the leads stored before is done when the comparison has them all.
    let mut done = false;
    for _ in 0..300 {
        let (status, cmp) = server.get(&format!("/api/models/{version}/compare"));
        assert_eq!(status, 200, "{cmp}");
        if cmp["not_scored"] == 0 {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(done, "the shadow's backfill did not finish: {}", server.log());

    let batch = batch_scores(&shadow_path, &events, end);
    let leads = all_leads(&server.base);
    assert_eq!(leads.len(), batch.len(), "the same leads exist");
    for lead in &leads {
        let id = lead["id"].as_str().unwrap();
        let expected = &batch[id];
        let shadow = lead["shadows"].as_array().unwrap().iter().find(|s| s["version"] == version).unwrap();
        let context = format!("lead {id}:\nshadow {shadow}\nbatch {expected}");
        assert!(close(&shadow["total"], &expected["total"]), "{context}");
        assert_eq!(shadow["stage"], expected["stage"], "{context}");
        for dim in ["fit", "engagement"] {
            assert!(close(&shadow["scores"][dim], &expected[dim]), "{dim}: {context}");
        }
    }
}
