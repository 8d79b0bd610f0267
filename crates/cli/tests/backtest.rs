//! `leadscore backtest` on hand-built leads whose report is known, and on the example data.
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly on broken fixtures")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore")).args(args).output().expect("leadscore runs")
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

const MODEL: &str = r#"
[model]
name = "pricing"
[dimensions.engagement]
[[rules]]
name = "Pricing"
on = 'event.type == "page" && event.properties.path == "/pricing"'
points = 10
[[rules]]
name = "Careers"
on = 'event.type == "page" && event.properties.path == "/careers"'
points = -10
[[stages]]
name = "mql"
when = "total >= 20"
"#;

fn page(user: &str, path: &str, day: u32) -> String {
    format!(
        r#"{{"type":"page","userId":"{user}","properties":{{"path":"{path}"}},"timestamp":"2024-05-{day:02}T12:00:00Z"}}"#
    )
}

/// a: 3 pricing visits (days 1-3), converts day 10 -> mql from day 2.
/// b: 2 pricing visits on day 9 and one on day 10, converts day 10 -> only day 9's count (gap 1d).
/// c: a careers visit, lost day 10. d: nothing, open.
fn case(dir: &Path) -> Vec<String> {
    let events = [
        page("a", "/pricing", 1),
        page("a", "/pricing", 2),
        page("a", "/pricing", 3),
        page("b", "/pricing", 8),
        page("b", "/pricing", 8),
        page("b", "/pricing", 10),
        page("c", "/careers", 2),
    ]
    .join("\n");
    let model = write(dir, "m.toml", MODEL);
    let leads = write(dir, "leads.csv", "id\na\nb\nc\nd\n");
    let events = write(dir, "events.jsonl", &events);
    let outcomes = write(
        dir,
        "o.csv",
        "lead_id,outcome,at\na,won,2024-05-10T00:00:00Z\nb,converted,2024-05-10T00:00:00Z\nc,lost,2024-05-10T00:00:00Z\n",
    );
    [model, leads, events, outcomes].iter().map(|p| p.to_str().expect("utf-8").to_owned()).collect()
}

#[test]
fn backtest_scores_each_lead_before_its_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = case(dir.path());
    let out = leadscore(&[
        "backtest",
        "--model",
        &f[0],
        "--leads",
        &f[1],
        "--events",
        &f[2],
        "--outcomes",
        &f[3],
        "--as-of",
        "2024-06-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = &json["models"][0];
    assert_eq!(
        report["counts"],
        serde_json::json!({"leads": 4, "converted": 2, "lost": 1, "disqualified": 0, "open": 1})
    );
    // Totals at the cutoffs: a 30, b 20 (the day-10 visit is after the cutoff), c -10, d 0.
    assert_eq!(report["auc"], 1.0);
    assert_eq!(report["deciles"][0]["max_score"], 30.0);
    let mql = &report["stages"][1];
    assert_eq!(mql["stage"], "mql");
    assert_eq!(
        (mql["reached"].as_u64(), mql["precision"].as_f64(), mql["recall"].as_f64()),
        (Some(2), Some(1.0), Some(1.0))
    );
    // a reached mql at the end of day 2 (7 days before converting at the start of day 10), b at
    // the end of day 8 (1 day before): median 4 days, give or take the millisecond before midnight.
    let days = mql["median_days_to_conversion"].as_f64().expect("days");
    assert!((days - 4.0).abs() < 0.001, "{days}");
    let careers = &report["rules"][1];
    assert_eq!((careers["fired"].as_u64(), careers["conversion_with"].as_f64()), (Some(1), Some(0.0)));
}

#[test]
fn backtest_compares_models_and_writes_an_html_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = case(dir.path());
    let reversed = write(
        dir.path(),
        "reversed.toml",
        &MODEL.replace("points = 10", "points = -10").replace("name = \"pricing\"", "name = \"reversed\""),
    );
    let html = dir.path().join("report.html");
    let out = leadscore(&[
        "backtest",
        "--model",
        &f[0],
        "--model",
        reversed.to_str().unwrap(),
        "--leads",
        &f[1],
        "--events",
        &f[2],
        "--outcomes",
        &f[3],
        "--as-of",
        "2024-06-01T00:00:00Z",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Which model would have been better, on the same leads"), "{text}");
    assert!(text.contains("Backtest of `pricing` on 4 leads (2 converted, 1 lost, 0 disqualified, 1 open)"), "{text}");
    assert!(text.contains("Backtest of `reversed`"), "{text}");
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("<svg") && page.contains("Cumulative gains") && page.contains("Per-rule lift"));
    assert_eq!(page.matches("<polyline").count(), 2, "one gains line per model");
}

#[test]
fn backtest_on_the_example_data_ranks_converters_first() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let p = |s: &str| root.join(s).to_str().unwrap().to_owned();
    let out = leadscore(&[
        "backtest",
        "--model",
        &p("models/b2b-default.toml"),
        "--leads",
        &p("data/leads.csv"),
        "--events",
        &p("data/events.jsonl"),
        "--outcomes",
        &p("data/outcomes.csv"),
        "--as-of",
        "2024-07-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(json["models"][0]["auc"].as_f64().expect("auc") > 0.8, "{}", json["models"][0]["auc"]);
}

#[test]
fn backtest_needs_outcomes_and_a_valid_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = case(dir.path());
    let out = leadscore(&["backtest", "--model", &f[0], "--leads", &f[1]]);
    assert_eq!(out.status.code(), Some(2), "clap rejects a missing --outcomes");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--outcomes"));
    let out = leadscore(&["backtest", "--model", &f[0], "--leads", &f[1], "--outcomes", &f[3], "--gap", "soon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gap: `soon`"), "{}", String::from_utf8_lossy(&out.stderr));
}
