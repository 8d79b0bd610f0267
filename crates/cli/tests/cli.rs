//! The `leadscore` binary on temporary files: `check` and `score`, including bad input.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore")).args(args).output().expect("leadscore runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

const MODEL: &str = r#"
[model]
name = "cli"
[traits]
employees = "number"
[dimensions.fit]
[dimensions.engagement]
[[rules]]
name = "Big"
dimension = "fit"
if = 'lead.employees >= 100'
points = 20
[[rules]]
name = "Pricing"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path == "/pricing"'
points = 10
[[stages]]
name = "mql"
when = "total >= 30"
[grade]
fit = { A = 20 }
engagement = { 1 = 20, 2 = 10 }
"#;

const LEADS: &str = "id,employees,email\nl1,500,a@acme.com\nl2,10,b@gmail.com\nl3,,c@x.io\n";

fn events() -> String {
    [
        r#"{"type":"page","userId":"l1","properties":{"path":"/pricing"},"timestamp":"2024-05-01T00:00:00Z","messageId":"m1"}"#,
        r#"{"type":"page","userId":"l1","properties":{"path":"/pricing"},"timestamp":"2024-05-01T00:00:00Z","messageId":"m1"}"#,
        r#"{"type":"page","anonymousId":"anon","properties":{"path":"/pricing"},"timestamp":"2024-05-02T00:00:00Z","messageId":"m2"}"#,
        r#"{"type":"identify","anonymousId":"anon","userId":"l2","traits":{"employees":300},"timestamp":"2024-05-03T00:00:00Z","messageId":"m3"}"#,
        r#"{"type":"track","userId":"new-lead","event":"Signed Up","timestamp":"2024-05-03T00:00:00Z","messageId":"m4"}"#,
        "",
    ]
    .join("\n")
}

#[test]
fn check_accepts_the_example_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/models");
    for name in ["m3.toml", "saas.toml", "b2b-default.toml"] {
        let out = leadscore(&["check", s(&root.join(name))]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains("ok: model"), "{}", stdout(&out));
    }
}

#[test]
fn check_reports_errors_with_file_line_and_column_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", &MODEL.replace("dimension = \"fit\"", "dimension = \"fitt\""));
    let out = leadscore(&["check", s(&model)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("{}:10:13: error: unknown dimension `fitt` (known: fit, engagement)", s(&model))),
        "{text}"
    );

    let out = leadscore(&["check", "--format", "json", s(&model)]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(json["ok"], false);
    assert_eq!(json["diagnostics"][0]["code"], "unknown_dimension");
    assert_eq!(json["diagnostics"][0]["line"], 10);
    assert_eq!(json["diagnostics"][0]["column"], 13);
}

#[test]
fn score_writes_one_row_per_lead_with_dimensions_in_model_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(dir.path(), "events.jsonl", &events());
    let outcomes = write(dir.path(), "outcomes.csv", "lead_id,outcome,at\nl3,lost,2024-04-01T00:00:00Z\n");
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&leads),
        "--events",
        s(&events),
        "--outcomes",
        s(&outcomes),
        "--as-of",
        "2024-06-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // l1: big (20) + one pricing visit (duplicate messageId counts once) = 30 -> mql, A1.
    // l2: identify sets employees 300 (20) + the stitched anonymous visit (10) = 30 -> mql.
    // l3: nothing, but lost. new-lead: only in the events.
    assert_eq!(
        stdout(&out),
        "lead_id,fit,engagement,total,stage,grade\n\
         l1,20,10,30,mql,A2\n\
         l2,20,10,30,mql,A2\n\
         l3,0,0,0,lost,B3\n\
         new-lead,0,0,0,lead,B3\n"
    );
}

/// `leadscore score --explain` of these files as of 2024-06-01.
fn explained_scores(model: &Path, leads: &Path, events: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadscore"));
    command.args(["score", "--model", s(model), "--leads", s(leads), "--events", s(events)]);
    command.args(["--as-of", "2024-06-01T00:00:00Z", "--explain"]);
    command
}

#[test]
fn score_explains_every_rule_that_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(dir.path(), "events.jsonl", &events());
    let out = explained_scores(&model, &leads, &events).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let one = stdout(&out);
    let first: serde_json::Value = serde_json::from_str(one.lines().next().expect("a row")).expect("json");
    assert_eq!(first["lead_id"], "l1");
    assert_eq!(first["contributions"][1]["rule"], "Pricing");
    assert_eq!(first["contributions"][1]["matched"], 1);
    assert_eq!(first["contributions"][1]["last_matched_at"], "2024-05-01T00:00:00Z");
}

/// Past `LEADSCORE_MEMORY_EVENTS` events in memory, full blocks of compact events go to temporary
/// files and come back when their leads are scored: the rows are the same, stitched anonymous
/// events, duplicates and identify traits included.
#[test]
fn score_gives_the_same_rows_when_events_are_written_to_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(dir.path(), "leads.csv", LEADS);
    // Enough events for several full blocks (4,096 events) in the shards of l1 and `anon`.
    let mut lines = Vec::new();
    for i in 0..9000 {
        let day = 1 + i % 28;
        let path = if i % 3 == 0 { "/pricing" } else { "/docs" };
        lines.push(format!(
            r#"{{"type":"page","userId":"l1","properties":{{"path":"{path}"}},"timestamp":"2024-04-{day:02}T00:00:00Z","messageId":"p{}"}}"#,
            i % 8500
        ));
        lines.push(format!(
            r#"{{"type":"page","anonymousId":"anon","properties":{{"path":"{path}"}},"timestamp":"2024-04-{day:02}T01:00:00Z","messageId":"a{i}"}}"#
        ));
    }
    lines.push(events());
    let events = write(dir.path(), "events.jsonl", &lines.join("\n"));
    let run_in = |budget: &str, tmp: &Path| {
        let out = explained_scores(&model, &leads, &events)
            .env("LEADSCORE_MEMORY_EVENTS", budget)
            .env("TMPDIR", tmp)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), stderr(&out))
    };
    let run = |budget: &str| run_in(budget, dir.path());
    let (in_memory, note) = run("100000000");
    assert!(!note.contains("temporary files"), "{note}");
    let (on_disk, note) = run("0");
    assert!(note.contains("events were kept in temporary files"), "{note}");
    assert_eq!(in_memory, on_disk);
    let (rows, note) = run("2GB");
    assert!(note.contains("LEADSCORE_MEMORY_EVENTS=`2GB` is not a number of events"), "{note}");
    assert_eq!(rows, in_memory);
    // Nowhere to write: the events stay in memory, with a warning, and nothing is lost.
    let (rows, note) = run_in("0", &dir.path().join("missing"));
    assert!(note.contains("cannot write events to a temporary file"), "{note}");
    assert!(!note.contains("kept in temporary files"), "{note}");
    assert_eq!(rows, in_memory);
    // l1: 3,000 pricing pages, of which 167 repeat a messageId; l2: the anonymous visits.
    let l1: serde_json::Value = serde_json::from_str(in_memory.lines().next().expect("a row")).expect("json");
    assert_eq!(l1["lead_id"], "l1");
    assert_eq!(l1["contributions"][1]["matched"], 2834);
    let l2: serde_json::Value = serde_json::from_str(in_memory.lines().nth(1).expect("a row")).expect("json");
    assert_eq!(l2["lead_id"], "l2");
    assert_eq!(l2["contributions"][1]["matched"], 3001);
}

#[test]
fn as_of_before_every_event_scores_traits_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(dir.path(), "events.jsonl", &events());
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&leads),
        "--events",
        s(&events),
        "--as-of",
        "2024-01-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').nth(3).unwrap_or("")).collect();
    assert_eq!(rows, vec!["20", "0", "0", "0"]);
}

#[test]
fn a_bad_event_line_is_named_by_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(dir.path(), "leads.csv", LEADS);
    let bad = format!("{}{}\n{}\n", events(), r#"{"type":"page","userId":"l1","timestamp":"yesterday"}"#, "{not json");
    let events = write(dir.path(), "events.jsonl", &bad);
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&leads),
        "--events",
        s(&events),
        "--as-of",
        "2024-06-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "{}:6: field `timestamp`: `timestamp` is not an RFC 3339 timestamp: `yesterday`",
            s(&events)
        )),
        "{}",
        stderr(&out)
    );
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&leads),
        "--events",
        s(&events),
        "--as-of",
        "2024-06-01T00:00:00Z",
        "--skip-invalid",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("skipped 2 invalid lines"), "{text}");
    assert!(text.contains("(first at line 6)") && text.contains("(first at line 7)"), "{text}");
    assert_eq!(stdout(&out).lines().count(), 5, "the valid lines were still scored");
}

#[test]
fn bad_leads_and_outcomes_files_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let no_id = write(dir.path(), "noid.csv", "lead,employees\nl1,5\nl2,500\n");
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&no_id),
        "--id-column",
        "id",
        "--as-of",
        "2024-06-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("noid.csv:1: field `id`: no lead id column `id` (columns: lead, employees)"),
        "{}",
        stderr(&out)
    );
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&no_id),
        "--id-column",
        "lead",
        "--as-of",
        "2024-06-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\nl2,20,"), "{}", stdout(&out));
    // Without --id-column and without an `id` column, leads are numbered by row, and we say so.
    let out = leadscore(&["score", "--model", s(&model), "--leads", s(&no_id), "--as-of", "2024-06-01T00:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no `id` column, so leads are numbered by row"), "{}", stderr(&out));
    let rows: Vec<String> =
        stdout(&out).lines().skip(1).map(|l| l.split(',').take(2).collect::<Vec<_>>().join(",")).collect();
    assert_eq!(rows, vec!["1,0", "2,20"]);
    let lower = write(dir.path(), "lower.csv", "Lead_ID,employees\nx9,500\n");
    let out = leadscore(&["score", "--model", s(&model), "--leads", s(&lower), "--as-of", "2024-06-01T00:00:00Z"]);
    assert!(stdout(&out).contains("\nx9,20,"), "{}", stdout(&out));

    let typed = write(dir.path(), "typed.csv", "id,employees\nl1,5\nl2,many\n");
    let out = leadscore(&["score", "--model", s(&model), "--leads", s(&typed), "--as-of", "2024-06-01T00:00:00Z"]);
    assert!(stderr(&out).contains("typed.csv:3: field `employees`: `many` is not a number"), "{}", stderr(&out));

    let leads = write(dir.path(), "leads.csv", LEADS);
    let outcomes = write(dir.path(), "o.csv", "lead_id,outcome,at\nl1,bought,2024-01-01T00:00:00Z\n");
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&leads),
        "--outcomes",
        s(&outcomes),
        "--as-of",
        "2024-06-01T00:00:00Z",
    ]);
    assert!(
        stderr(&out).contains(
            "o.csv:2: field `outcome`: unknown outcome `bought` (expected converted, won, lost or disqualified)"
        ),
        "{}",
        stderr(&out)
    );
    let out = leadscore(&["score", "--model", s(&model), "--leads", s(&leads), "--as-of", "last tuesday"]);
    assert!(stderr(&out).contains("--as-of: `last tuesday` is not an RFC 3339 timestamp"), "{}", stderr(&out));
}

#[test]
fn score_refuses_a_model_with_errors_and_shows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", &MODEL.replace("points = 20", "points = \"twenty\""));
    let leads = write(dir.path(), "leads.csv", LEADS);
    let out = leadscore(&["score", "--model", s(&model), "--leads", s(&leads)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`points` must be a finite number, found string"), "{}", stderr(&out));
}

#[test]
fn out_writes_a_file_and_jsonl_is_chosen_by_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(dir.path(), "leads.csv", LEADS);
    let out_path = dir.path().join("scores.jsonl");
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&leads),
        "--as-of",
        "2024-06-01T00:00:00Z",
        "--out",
        s(&out_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let written = std::fs::read_to_string(&out_path).expect("written");
    assert!(
        written.starts_with(r#"{"lead_id":"l1","fit":20.0,"engagement":0.0,"total":20.0,"stage":"lead","grade":"A3"}"#),
        "{written}"
    );
    let first: serde_json::Value = serde_json::from_str(written.lines().next().expect("row")).expect("json");
    assert_eq!(
        first,
        serde_json::json!({"lead_id": "l1", "fit": 20.0, "engagement": 0.0, "total": 20.0, "stage": "lead", "grade": "A3"})
    );
}

#[test]
fn a_user_id_seen_only_in_ignored_messages_is_no_lead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(
        dir.path(),
        "m.toml",
        &format!(
            "{MODEL}\n[events]\nignore = 'has(event.context.userAgent) && event.context.userAgent.contains(\"bot\")'\n"
        ),
    );
    let events = write(
        dir.path(),
        "events.jsonl",
        concat!(
            r#"{"type":"page","userId":"crawler-1","properties":{"path":"/pricing"},"context":{"userAgent":"Googlebot"},"timestamp":"2024-05-01T00:00:00Z"}"#,
            "\n",
            r#"{"type":"page","userId":"l1","properties":{"path":"/pricing"},"context":{"userAgent":"Mozilla"},"timestamp":"2024-05-01T00:00:00Z"}"#,
            "\n",
        ),
    );
    let out = leadscore(&["score", "--model", s(&model), "--events", s(&events), "--as-of", "2024-06-01T00:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "lead_id,fit,engagement,total,stage,grade\nl1,0,10,10,lead,B2\n");
}

#[test]
fn score_warns_when_no_column_of_the_leads_file_is_a_trait_the_model_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let good = write(dir.path(), "leads.csv", LEADS);
    let out = leadscore(&["score", "--model", s(&model), "--leads", s(&good), "--as-of", "2024-06-01T00:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // A CRM export with other column names: the model's trait rules all score 0.
    let other = write(dir.path(), "crm.csv", "Record ID,Number of Employees,Email Address\nl1,500,a@acme.com\n");
    let out = leadscore(&[
        "score",
        "--model",
        s(&model),
        "--leads",
        s(&other),
        "--id-column",
        "Record ID",
        "--as-of",
        "2024-06-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("crm.csv: none of the traits the model reads (`employees`) is a column (columns: `Record ID`, `Number of Employees`, `Email Address`)"),
        "{err}"
    );
}

#[test]
fn check_with_a_leads_file_lists_what_is_wrong_with_their_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write(dir.path(), "m.toml", MODEL);
    let leads = write(
        dir.path(),
        "leads.csv",
        "id,email,company,title\nl1,ada@acme.com,Acme,CTO\nl2,test@gmail.com,asdf,VP\nl3,bob@globex.com,Initech,n/a\n",
    );
    let out = leadscore(&["check", s(&model), "--leads", s(&leads)]);
    assert!(out.status.success(), "flags are not errors: {}", stderr(&out));
    let text = stdout(&out);
    let file = leads.display();
    assert!(
        text.contains(&format!(
            "{file}:3: lead `l2`: `test@gmail.com` is a free mail address, not a company one (free_email, `email`)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}:4: lead `l3`: `n/a` is a placeholder, not an answer (placeholder, `title`)")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:4: lead `l3`: `globex.com` does not look like Initech's domain (domain_mismatch, `email`)"
        )),
        "{text}"
    );
    assert!(!text.contains(":2: lead `l1`"), "a clean row says nothing: {text}");
    assert!(
        text.contains(&format!(
            "{file}: 2 of 3 leads with data-quality flags (domain_mismatch 1, free_email 1, placeholder 3)"
        )),
        "{text}"
    );
    let out = leadscore(&["check", s(&model), "--leads", s(&leads), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["quality"].as_array().unwrap().len(), 5);
    assert_eq!(json["quality"][0]["line"], 3);
}
