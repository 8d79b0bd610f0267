//! `leadscore gen` end to end: determinism, file formats, the noise the story promises, the signal
//! being real, and the ground-truth model ranking converters on generated data.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly on broken fixtures")]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const END: &str = "2024-06-30T00:00:00Z";
const FILES: [&str; 4] = ["leads.csv", "events.jsonl", "outcomes.csv", "truth.csv"];

fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore")).args(args).output().expect("leadscore runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn generate(dir: &Path, leads: u32, seed: u32) -> PathBuf {
    let out = dir.join(format!("gen-{leads}-{seed}"));
    let output = leadscore(&["gen", "--leads", &leads.to_string(), "--out", s(&out), "--seed", &seed.to_string()]);
    assert!(output.status.success(), "gen failed: {}", stderr(&output));
    out
}

fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("csv opens");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("csv row");
            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

fn events(dir: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .expect("events")
        .lines()
        .map(|line| (line.to_owned(), serde_json::from_str::<Value>(line).expect("every line is JSON")))
        .collect()
}

fn millis(text: &str) -> i64 {
    leadscore_core::time::parse_timestamp(text).unwrap_or_else(|| panic!("bad timestamp {text}"))
}

fn converted(dir: &Path) -> HashMap<String, i64> {
    csv_rows(&dir.join("outcomes.csv"))
        .into_iter()
        .filter(|r| r["outcome"] == "won" || r["outcome"] == "converted")
        .map(|r| (r["lead_id"].clone(), millis(&r["at"])))
        .collect()
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let a = generate(&tmp.path().join("a"), 300, 5);
    let b = generate(&tmp.path().join("b"), 300, 5);
    for file in FILES {
        let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
        assert!(!x.is_empty(), "{file} is empty");
        assert!(x == y, "{file} differs between two runs with the same seed");
    }
}

#[test]
fn different_seeds_give_different_files() {
    let tmp = tempfile::tempdir().unwrap();
    let a = generate(tmp.path(), 100, 1);
    let b = generate(tmp.path(), 100, 2);
    for file in ["leads.csv", "events.jsonl", "truth.csv"] {
        assert_ne!(std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap(), "{file}");
    }
}

#[test]
fn every_event_is_a_segment_message_and_ids_agree_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = generate(tmp.path(), 300, 3);
    let leads = csv_rows(&dir.join("leads.csv"));
    assert_eq!(leads.len(), 300);
    let header = std::fs::read_to_string(dir.join("leads.csv")).unwrap().lines().next().unwrap().to_owned();
    assert_eq!(
        header,
        "id,email,first_name,last_name,title,department,seniority,employees,industry,country,created_at"
    );
    let ids: HashSet<String> = leads.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids.len(), 300, "lead ids are unique");

    let mut seen: HashMap<String, String> = HashMap::new();
    let events = events(&dir);
    assert!(events.len() > 300 * 20, "only {} events", events.len());
    for (line, event) in &events {
        let kind = event["type"].as_str().expect("type");
        assert!(["page", "track", "identify", "group"].contains(&kind), "{kind}");
        let id = event["messageId"].as_str().expect("messageId");
        let ts = event["timestamp"].as_str().expect("timestamp");
        assert!(ts.ends_with('Z') && millis(ts) <= millis(END), "{ts}");
        assert!(event.get("userId").is_some() || event.get("anonymousId").is_some());
        if let Some(user) = event["userId"].as_str() {
            assert!(ids.contains(user), "unknown userId {user}");
        }
        match kind {
            "page" => {
                assert!(event["name"].is_string() && event["properties"]["path"].is_string(), "{line}");
                assert!(event["properties"]["url"].is_string() && event["context"]["page"]["path"].is_string());
            }
            "track" => assert!(event["event"].is_string(), "{line}"),
            "identify" => assert!(event["traits"].is_object(), "{line}"),
            _ => assert!(event["groupId"].is_string() && event["traits"]["employees"].is_number(), "{line}"),
        }
        // A repeated messageId is a duplicate delivery: the very same line.
        if let Some(previous) = seen.insert(id.to_owned(), line.clone()) {
            assert_eq!(&previous, line, "messageId {id} reused for a different message");
        }
    }

    for file in ["outcomes.csv", "truth.csv"] {
        for row in csv_rows(&dir.join(file)) {
            assert!(ids.contains(&row["lead_id"]), "{file}: unknown lead {}", row["lead_id"]);
        }
    }
    let truth = csv_rows(&dir.join("truth.csv"));
    assert_eq!(truth.len(), 300);
    for row in &truth {
        let p: f64 = row["converted_probability"].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
    let created: HashMap<&str, i64> = leads.iter().map(|r| (r["id"].as_str(), millis(&r["created_at"]))).collect();
    for row in csv_rows(&dir.join("outcomes.csv")) {
        assert!(["won", "converted", "lost", "disqualified"].contains(&row["outcome"].as_str()));
        assert!(millis(&row["at"]) > created[row["lead_id"].as_str()], "outcome before the lead existed");
    }
}

#[test]
fn duplicates_bots_and_stitched_anonymous_visitors_are_present() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = generate(tmp.path(), 300, 4);
    let events = events(&dir);

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, e) in &events {
        *counts.entry(e["messageId"].as_str().unwrap()).or_default() += 1;
    }
    assert!(counts.values().any(|&n| n > 1), "no duplicate deliveries");

    let bots: Vec<&Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["context"]["userAgent"].as_str().is_some_and(|ua| ua.contains("Googlebot")))
        .collect();
    assert!(!bots.is_empty(), "no Googlebot");
    assert!(bots.iter().all(|e| e.get("userId").is_none() && e["anonymousId"].is_string()));

    // Anonymous page views first, then an identify carrying both ids.
    let mut anonymous_only: HashSet<&str> = HashSet::new();
    let mut stitched = 0;
    for (_, e) in &events {
        let anonymous = e["anonymousId"].as_str();
        match (e["type"].as_str(), e["userId"].as_str(), anonymous) {
            (Some("page"), None, Some(a)) => {
                anonymous_only.insert(a);
            }
            (Some("identify"), Some(_), Some(a)) if anonymous_only.contains(a) => stitched += 1,
            _ => {}
        }
    }
    assert!(stitched > 30, "only {stitched} anonymous visitors identified later");
}

#[test]
fn converters_show_more_buying_signals_before_their_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = generate(tmp.path(), 1_000, 6);
    let won = converted(&dir);
    assert!(won.len() >= 15, "only {} converters", won.len());
    let mut signals: HashMap<String, usize> = HashMap::new();
    for (_, e) in events(&dir) {
        let Some(user) = e["userId"].as_str() else { continue };
        let pricing =
            e["type"] == "page" && e["properties"]["path"].as_str().is_some_and(|p| p.starts_with("/pricing"));
        let hand_raise = e["event"] == "Form Submitted"
            && ["demo-request", "free-assessment"].contains(&e["properties"]["form"].as_str().unwrap_or(""));
        let before = won.get(user).is_none_or(|&at| millis(e["timestamp"].as_str().unwrap()) <= at);
        if (pricing || hand_raise) && before {
            *signals.entry(user.to_owned()).or_default() += 1;
        }
    }
    let leads = csv_rows(&dir.join("leads.csv"));
    let mean = |converters: bool| {
        let group: Vec<&HashMap<String, String>> =
            leads.iter().filter(|r| won.contains_key(&r["id"]) == converters).collect();
        group.iter().map(|r| signals.get(&r["id"]).copied().unwrap_or(0)).sum::<usize>() as f64 / group.len() as f64
    };
    let (yes, no) = (mean(true), mean(false));
    assert!(yes > 2.0 * no, "converters {yes:.2} vs others {no:.2} pricing/demo events per lead");
}

#[test]
fn truth_model_passes_check_without_warnings() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/models/synthetic-truth.toml");
    let output = leadscore(&["check", model]);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), stderr(&output));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("0 warnings") && !text.contains("warning:"), "{text}");
}

/// ROC AUC of `scores` for the positive ids (ties count half).
fn auc(scores: &[(String, f64)], positive: &HashMap<String, i64>) -> f64 {
    let pos: Vec<f64> = scores.iter().filter(|(id, _)| positive.contains_key(id)).map(|(_, s)| *s).collect();
    let neg: Vec<f64> = scores.iter().filter(|(id, _)| !positive.contains_key(id)).map(|(_, s)| *s).collect();
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() as f64 * neg.len() as f64)
}

#[test]
fn truth_model_ranks_converters_above_non_converters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = generate(tmp.path(), 500, 11);
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/models/synthetic-truth.toml");
    let scores = dir.join("scores.csv");
    let output = leadscore(&[
        "score",
        "--model",
        model,
        "--leads",
        s(&dir.join("leads.csv")),
        "--events",
        s(&dir.join("events.jsonl")),
        "--as-of",
        END,
        "--out",
        s(&scores),
    ]);
    assert!(output.status.success(), "score failed: {}", stderr(&output));
    let rows = csv_rows(&scores);
    assert_eq!(rows.len(), 500, "one row per lead");
    let totals: Vec<(String, f64)> = rows.iter().map(|r| (r["lead_id"].clone(), r["total"].parse().unwrap())).collect();
    let won = converted(&dir);
    assert!(won.len() >= 5, "only {} converters", won.len());
    let auc = auc(&totals, &won);
    assert!(auc > 0.75, "AUC {auc:.3}");
}

#[test]
fn zero_leads_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let output = leadscore(&["gen", "--leads", "0", "--out", s(tmp.path())]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--leads must be at least 1"), "{}", stderr(&output));
}

#[test]
fn unwritable_output_directory_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("data");
    let output = leadscore(&["gen", "--leads", "5", "--out", s(&out)]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("cannot create the output directory") && err.contains("not-a-dir"), "{err}");
}

#[test]
fn bad_end_date_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let output = leadscore(&["gen", "--leads", "5", "--out", s(tmp.path()), "--end", "yesterday"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--end: `yesterday`"), "{}", stderr(&output));
}

#[test]
fn end_flag_moves_the_whole_history() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("moved");
    let output = leadscore(&["gen", "--leads", "20", "--out", s(&out), "--end", "2025-01-01T00:00:00Z"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let end = millis("2025-01-01T00:00:00Z");
    for row in csv_rows(&out.join("leads.csv")) {
        let created = millis(&row["created_at"]);
        assert!(created < end && created >= end - 180 * 86_400_000);
    }
    for (_, e) in events(&out) {
        assert!(millis(e["timestamp"].as_str().unwrap()) <= end);
    }
}
