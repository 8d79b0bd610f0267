//! Webhooks from the real `leadscore serve` process to a receiver on loopback: a receiver that is
//! down for a while still gets every delivery, and deliveries committed before a `kill -9` are
//! sent after the restart.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "../../http/tests/common/receiver.rs"]
mod receiver;
#[path = "common/server.rs"]
mod server;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use receiver::{Receiver, signature_valid};
use server::{ServerProcess, free_port, get_json};

const SECRET: &str = "whsec_process";

const MODEL: &str = r#"
[model]
name = "hooks"
[dimensions.engagement]
[[rules]]
name = "Demo"
dimension = "engagement"
on = 'event.type == "track" && event.event == "Demo Requested"'
points = 100
[[stages]]
name = "sql"
when = "total >= 80"
"#;

fn setup(dir: &Path, hook_port: u16) -> (std::path::PathBuf, std::path::PathBuf) {
    let model = dir.join("model.toml");
    std::fs::write(&model, MODEL).unwrap();
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret = \"{SECRET}\"\nfirst_retry = \"1s\"\n"
        ),
    )
    .unwrap();
    (model, config)
}

fn demos(n: usize, prefix: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"type": "track", "userId": format!("{prefix}{i}"), "event": "Demo Requested", "messageId": format!("{prefix}-m{i}")}))
        .collect()
}

fn deliveries(server: &ServerProcess) -> Vec<Value> {
    let (status, log) = get_json(&server.base, "/api/webhooks/deliveries?limit=1000");
    assert_eq!(status, 200, "{log}");
    log["deliveries"].as_array().unwrap().clone()
}

/// Waits until the receiver has `n` distinct, correctly signed events for leads `prefix*`.
fn wait_received(receiver: &Receiver, n: usize, what: &str) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let requests = receiver.requests();
        let ids: HashSet<String> = requests
            .iter()
            .inspect(|r| assert!(signature_valid(SECRET, &r.headers["leadscore-signature"], &r.body), "bad signature"))
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        if ids.len() >= n {
            return ids;
        }
        assert!(Instant::now() < deadline, "{what}: only {} of {n} arrived", ids.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_receiver_that_was_down_gets_every_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port(); // nothing listens there yet: connection refused
    let (model, config) = setup(dir.path(), hook_port);
    let db = format!("sqlite://{}", dir.path().join("hooks.db").display());
    let server = ServerProcess::start_configured(&model, &db, dir.path(), free_port(), Some(&config));
    assert_eq!(server.batch(&demos(10, "down")), 200);
    // Failing attempts are logged and retried.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !deliveries(&server).iter().all(|d| d["attempts"].as_i64().unwrap() >= 2) {
        assert!(Instant::now() < deadline, "{:?}", deliveries(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(deliveries(&server).iter().all(|d| d["status"] == "pending" && d["last_error"].is_string()));
    let receiver = Receiver::start(hook_port);
    let ids = wait_received(&receiver, 10, "after the receiver came up");
    assert_eq!(ids.len(), 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !deliveries(&server).iter().all(|d| d["status"] == "delivered") {
        assert!(Instant::now() < deadline, "{:?}", deliveries(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The fenced block of `language` in docs/server.md.
fn doc_snippet(language: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/server.md")).unwrap();
    let start = doc.find(&format!("```{language}\n")).expect("snippet in docs/server.md") + language.len() + 4;
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_owned()
}

#[test]
fn the_documented_verification_snippets_accept_real_deliveries() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let (model, config) = setup(dir.path(), receiver.port);
    let db = format!("sqlite://{}", dir.path().join("hooks.db").display());
    let server = ServerProcess::start_configured(&model, &db, dir.path(), free_port(), Some(&config));
    assert_eq!(server.batch(&demos(1, "doc")), 200);
    wait_received(&receiver, 1, "one delivery");
    let request = receiver.requests().remove(0);
    let header = request.headers["leadscore-signature"].clone();
    std::fs::write(dir.path().join("body.json"), &request.body).unwrap();
    let python = format!(
        "{}\nimport sys\nbody = open(sys.argv[1], 'rb').read()\nprint(verify('{SECRET}', sys.argv[2], body), verify('nope', sys.argv[2], body))\n",
        doc_snippet("python")
    );
    std::fs::write(dir.path().join("verify.py"), python).unwrap();
    let out = std::process::Command::new("python3")
        .arg(dir.path().join("verify.py"))
        .arg(dir.path().join("body.json"))
        .arg(&header)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "True False", "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.path().join("verify.mjs"), doc_snippet("js")).unwrap();
    let node = format!(
        "import {{ verify }} from './verify.mjs'; import {{ readFileSync }} from 'node:fs';\n\
         const body = readFileSync(process.argv[2], 'utf8');\n\
         console.log(verify('{SECRET}', process.argv[3], body), verify('nope', process.argv[3], body));\n"
    );
    std::fs::write(dir.path().join("run.mjs"), node).unwrap();
    match std::process::Command::new("node")
        .arg(dir.path().join("run.mjs"))
        .arg(dir.path().join("body.json"))
        .arg(&header)
        .output()
    {
        Ok(out) => assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "true false",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(std::env::var("LEADSCORE_REQUIRE_SDKS").is_err(), "node: {e}");
            eprintln!("\n*** skipped: the Node.js verification snippet: node is not installed ({e}) ***\n");
        }
    }
}

#[test]
fn deliveries_committed_before_kill_9_are_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let (model, config) = setup(dir.path(), hook_port);
    let db = format!("sqlite://{}", dir.path().join("hooks.db").display());
    let port = free_port();
    let server = ServerProcess::start_configured(&model, &db, dir.path(), port, Some(&config));
    assert_eq!(server.batch(&demos(5, "killed")), 200); // committed with its outbox rows
    server.kill();
    let receiver = Receiver::start(hook_port);
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.requests().is_empty(), "nothing is sent while the server is down");
    let server = ServerProcess::start_configured(&model, &db, dir.path(), port, Some(&config));
    wait_received(&receiver, 5, "after the restart");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !deliveries(&server).iter().all(|d| d["status"] == "delivered") {
        assert!(Instant::now() < deadline, "{:?}", deliveries(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(deliveries(&server).len(), 5);
}
