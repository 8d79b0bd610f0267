//! `leadscore import` / `leadscore export` against a running server with HubSpot- and
//! Salesforce-shaped files: traits arrive typed, re-imports count once, CRM statuses become
//! outcomes, the export carries scores and reasons, and bad files name the line.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "../../http/tests/common/receiver.rs"]
mod receiver;
#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use server::{API_KEY, ServerProcess, WRITE_KEY, get_json};

const MODEL: &str = r#"
[model]
name = "crm"
[traits]
title = "string"
employees = "number"
[dimensions.fit]
[[rules]]
name = "Executive"
dimension = "fit"
if = 'lead.title.contains("VP") || lead.title == "CTO"'
points = 40
[[rules]]
name = "100+ employees"
dimension = "fit"
if = 'lead.employees >= 100'
points = 10
[[stages]]
name = "mql"
when = "total >= 45"
"#;

const HUBSPOT: &str = "Record ID,First Name,Last Name,Email,Job Title,Company Name,Number of Employees,Industry,Country/Region,Lifecycle Stage,Lead Status,Contact owner,Create Date
101,Jane,Doe,jane@acme.example,VP Sales,Acme,\"1,200\",Software,United States,lead,New,Bob,2024-03-15 10:22
102,Raj,Patel,raj@initech.example,Analyst,Initech,40,Finance,India,subscriber,,Bob,2024-04-01 08:00
";

const SALESFORCE: &str = "Lead ID,First Name,Last Name,Title,Company,Email,Lead Status,Industry,No. of Employees,Country,Created Date,Lead Owner
00Q5e000001AbCd,Ann,Lee,CTO,Globex,ann@globex.example,Working - Contacted,Technology,250,Germany,2024-01-02,Sam
";

fn leadscore(args: &[&str]) -> Output {
    Command::new(server::binary()).args(args).output().unwrap()
}

fn start(dir: &Path) -> ServerProcess {
    let model = dir.join("crm.toml");
    std::fs::write(&model, MODEL).unwrap();
    ServerProcess::start(&model, &format!("sqlite://{}", dir.join("crm.db").display()), dir)
}

#[test]
fn hubspot_and_salesforce_exports_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let hubspot = dir.path().join("hubspot-contacts.csv");
    std::fs::write(&hubspot, HUBSPOT).unwrap();
    let salesforce = dir.path().join("salesforce-leads.csv");
    std::fs::write(&salesforce, SALESFORCE).unwrap();
    for file in [&hubspot, &hubspot, &salesforce] {
        let out = leadscore(&[
            "import",
            "--leads",
            file.to_str().unwrap(),
            "--server",
            &server.base,
            "--write-key",
            WRITE_KEY,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (_, jane) = get_json(&server.base, "/api/leads/101");
    assert_eq!(jane["traits"]["title"], "VP Sales");
    assert_eq!(jane["traits"]["employees"], 1200, "numbers stay numbers");
    assert_eq!(jane["traits"]["company"], "Acme");
    assert_eq!(jane["traits"]["lifecycle_stage"], "lead");
    assert_eq!(jane["traits"]["owner"], "Bob");
    assert_eq!(jane["traits"]["created_at"], "2024-03-15T10:22:00Z");
    assert_eq!(jane["traits"]["hubspot_id"], jane["id"], "the record id, for [[sync]] to match the contact by");
    assert_eq!((jane["total"].clone(), jane["stage"].clone()), (json!(50.0), json!("mql")));
    assert_eq!(jane["events"].as_array().unwrap().len(), 1, "importing the same file twice counts once");
    let (_, ann) = get_json(&server.base, "/api/leads/00Q5e000001AbCd");
    assert_eq!(
        (ann["traits"]["lead_status"].clone(), ann["total"].clone()),
        (json!("Working - Contacted"), json!(50.0))
    );
    assert_eq!(ann["traits"]["salesforce_id"], "00Q5e000001AbCd");
    let (_, raj) = get_json(&server.base, "/api/leads/102");
    assert_eq!(raj["stage"], "lead");

    // Salesforce statuses as outcomes; open statuses are skipped, unknown leads reported.
    let outcomes = dir.path().join("salesforce-status.csv");
    std::fs::write(&outcomes, "Lead ID,Lead Status,Last Modified Date\n00Q5e000001AbCd,Closed - Converted,2024-05-01 12:00\n101,Working - Contacted,2024-05-02\n999,Closed - Not Converted,2024-05-03\n").unwrap();
    let out = leadscore(&[
        "import",
        "--outcomes",
        outcomes.to_str().unwrap(),
        "--server",
        &server.base,
        "--api-key",
        API_KEY,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("imported 1 outcomes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get_json(&server.base, "/api/leads/00Q5e000001AbCd").1["stage"], "customer");
    assert_eq!(get_json(&server.base, "/api/leads/101").1["stage"], "mql");

    let csv_path = dir.path().join("scores.csv");
    let out =
        leadscore(&["export", "--server", &server.base, "--api-key", API_KEY, "--out", csv_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(headers, ["lead_id", "email", "fit_score", "total", "stage", "grade", "top_reasons", "updated_at"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    let jane_row = rows.iter().find(|r| &r[0] == "101").unwrap();
    assert_eq!((&jane_row[1], &jane_row[3], &jane_row[4]), ("jane@acme.example", "50", "mql"));
    assert_eq!(&jane_row[6], "Executive (+40); 100+ employees (+10)");
    assert_eq!(&rows.iter().find(|r| r[0].starts_with("00Q")).unwrap()[4], "customer");
}

#[test]
fn bad_files_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "Email,Job Title\na@x.example,CEO\nb@x.example,CTO,extra\n").unwrap();
    let out =
        leadscore(&["import", "--leads", ragged.to_str().unwrap(), "--server", &server.base, "--write-key", WRITE_KEY]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("ragged.csv:3"), "{err}");
    assert_eq!(get_json(&server.base, "/api/leads/a@x.example").0, 404, "a bad file imports nothing");
    let no_id = dir.path().join("no-id.csv");
    std::fs::write(&no_id, "Name,Job Title\nA,CEO\n").unwrap();
    let out =
        leadscore(&["import", "--leads", no_id.to_str().unwrap(), "--server", &server.base, "--write-key", WRITE_KEY]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-id.csv:1") && err.contains("--map"), "{err}");
    let bad_status = dir.path().join("status.csv");
    std::fs::write(&bad_status, "lead_id,outcome,at\nx,won,2024-01-01T00:00:00Z\ny,maybe later,2024-01-01T00:00:00Z\n")
        .unwrap();
    let out = leadscore(&[
        "import",
        "--outcomes",
        bad_status.to_str().unwrap(),
        "--server",
        &server.base,
        "--api-key",
        API_KEY,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("status.csv:3") && err.contains("maybe later"), "{err}");
    let wrong_key = leadscore(&[
        "import",
        "--leads",
        no_id.to_str().unwrap(),
        "--map",
        "Name=id",
        "--server",
        &server.base,
        "--write-key",
        "nope",
    ]);
    assert!(
        String::from_utf8_lossy(&wrong_key.stderr).contains("invalid_write_key"),
        "{}",
        String::from_utf8_lossy(&wrong_key.stderr)
    );
}

/// A server that is busy (429) or whose database is down (503) is retried after its
/// `Retry-After`, and the import completes; a refusal that will not change (400) is not retried.
#[test]
fn import_retries_a_busy_or_unavailable_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hubspot.csv");
    std::fs::write(&file, HUBSPOT).unwrap();
    let receiver = receiver::Receiver::start(0);
    receiver.answer_next(&[503, 429]);
    let path = file.to_str().unwrap();
    let out = leadscore(&["import", "--leads", path, "--server", &receiver.base(), "--write-key", WRITE_KEY]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("answered 503; retrying in 1 s") && stderr.contains("answered 429"), "{stderr}");
    assert_eq!(receiver.attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(receiver.requests().len(), 1, "the batch arrived once");
    receiver.answer_next(&[400]);
    let out = leadscore(&["import", "--leads", path, "--server", &receiver.base(), "--write-key", WRITE_KEY]);
    assert!(!out.status.success());
    assert_eq!(receiver.attempts.load(std::sync::atomic::Ordering::SeqCst), 4, "a 400 is final");
}
