//! The real `leadscore serve` process under hostile or broken conditions: idle and half-sent
//! connections at a low open-file limit, a read-only SQLite file, a PostgreSQL server that goes
//! away and comes back, dashboard sessions shared by two processes, and `demo` on a taken port.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "../../store/tests/common/pg.rs"]
mod pg;
#[path = "common/server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use server::{Options, ServerProcess, agent, free_port};

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk/sdk-model.toml")
}

/// A message timed by its receipt (no `timestamp`).
fn track(user: &str, id: &str) -> Value {
    json!({"type": "track", "userId": user, "event": "Demo Requested", "messageId": id})
}

/// Posts a batch; returns the status and the `Retry-After` header.
fn post(base: &str, messages: &[Value]) -> (u16, Option<String>) {
    let body = json!({ "batch": messages, "writeKey": server::WRITE_KEY }).to_string();
    match agent().post(format!("{base}/v1/batch")).header("Content-Type", "application/json").send(body.as_bytes()) {
        Ok(mut r) => {
            let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let _ = r.body_mut().read_to_string();
            (r.status().as_u16(), retry)
        }
        Err(e) => panic!("POST /v1/batch: {e}"),
    }
}

/// Sends `message` until it is accepted; fails if that takes longer than `within`.
fn until_accepted(server: &ServerProcess, message: &Value, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (status, _) = post(&server.base, std::slice::from_ref(message));
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "no recovery: {status}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_status(base: &str, path: &str) -> u16 {
    agent().get(format!("{base}{path}")).call().map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Whether the server closed this connection (end of stream or reset), waiting up to `wait`.
fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // e.g. a 408 before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// 300 unauthenticated connections that send nothing, half their headers or half their body,
/// against a server allowed 256 open files: `/healthz` and ingest keep answering, and every one of
/// the 300 is closed within its timeout.
#[test]
fn idle_and_half_sent_connections_are_closed_while_healthz_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("leadscore.toml");
    std::fs::write(&config, "[server]\nheader_timeout = \"2s\"\nbody_timeout = \"2s\"\nidle_timeout = \"2s\"\n")
        .unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let options = Options { config: Some(&config), nofile: Some(256), ..Options::default() };
    let server = ServerProcess::start_with(&model(), &db, dir.path(), free_port(), &options);
    let address = format!("127.0.0.1:{}", server.port);
    let opened = Instant::now();
    let mut attackers: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(&address).unwrap();
            match i % 3 {
                0 => {}
                1 => s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1").unwrap(),
                _ => s
                    .write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"batch\":[")
                    .unwrap(),
            }
            s
        })
        .collect();
    // Meanwhile the server answers everyone else, promptly.
    for i in 0..5 {
        let started = Instant::now();
        assert_eq!(get_status(&server.base, "/healthz"), 200, "{}", server.log());
        assert!(started.elapsed() < Duration::from_secs(1), "/healthz took {:?}", started.elapsed());
        assert_eq!(post(&server.base, &[track(&format!("u{i}"), &format!("m{i}"))]).0, 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every attacking connection is closed within its 2 s timeout (plus slack).
    let deadline = opened + Duration::from_secs(5);
    let still_open: Vec<usize> = attackers
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| {
            let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
            (!closed_by_server(s, wait)).then_some(i)
        })
        .collect();
    assert!(
        still_open.is_empty(),
        "{} connections still open: {:?}",
        still_open.len(),
        &still_open[..still_open.len().min(10)]
    );
    assert_eq!(get_status(&server.base, "/healthz"), 200);
}

/// A server started on a SQLite file it may not write answers 503 + Retry-After (SDKs retry) and
/// says so at `/readyz`; once the file is writable again it recovers without a restart.
#[test]
fn a_read_only_sqlite_file_is_a_503_until_it_is_writable_again() {
    let dir = tempfile::tempdir().unwrap();
    // The server runs as `nobody` when the tests run as root, so it needs the directory.
    Command::new("chmod").arg("0777").arg(dir.path()).status().unwrap();
    let file = dir.path().join("ro.db");
    let db = format!("sqlite://{}", file.display());
    let options = Options { unprivileged: true, ..Options::default() };
    let model_file = dir.path().join("model.toml");
    std::fs::copy(model(), &model_file).unwrap();
    let first = ServerProcess::start_with(&model_file, &db, dir.path(), free_port(), &options);
    assert_eq!(post(&first.base, &[track("ro-1", "a")]).0, 200);
    first.kill();
    Command::new("chmod").arg("0444").arg(&file).status().unwrap();
    let server = ServerProcess::start_with(&model_file, &db, dir.path(), free_port(), &options);
    assert_eq!(get_status(&server.base, "/healthz"), 200, "alive");
    assert_eq!(get_status(&server.base, "/readyz"), 503, "not ready: {}", server.log());
    let (status, retry) = post(&server.base, &[track("ro-2", "b")]);
    assert_eq!(status, 503, "{}", server.log());
    assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok()), "Retry-After");
    Command::new("chmod").arg("0666").arg(&file).status().unwrap();
    until_accepted(&server, &track("ro-2", "b"), Duration::from_secs(10));
    assert_eq!(get_status(&server.base, "/readyz"), 200);
    let (status, lead) = server.get("/api/leads/ro-2");
    assert_eq!(status, 200, "{lead}");
}

/// PostgreSQL stops: ingest answers 503 + Retry-After and `/readyz` 503; it starts again on the
/// same port: the server recovers without a restart and nothing acknowledged is lost.
#[test]
fn postgres_going_away_is_a_503_and_its_return_is_noticed() {
    let Some(cluster) = pg::PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&model(), &cluster.database(), dir.path());
    assert_eq!(post(&server.base, &[track("pg-1", "a")]).0, 200);
    cluster.stop();
    let (status, retry) = post(&server.base, &[track("pg-2", "b")]);
    assert_eq!(status, 503, "{}", server.log());
    assert!(retry.is_some(), "Retry-After");
    assert_eq!(get_status(&server.base, "/readyz"), 503);
    assert_eq!(get_status(&server.base, "/healthz"), 200);
    cluster.start_again();
    until_accepted(&server, &track("pg-2", "b"), Duration::from_secs(15));
    assert_eq!(get_status(&server.base, "/readyz"), 200);
    for id in ["pg-1", "pg-2"] {
        assert_eq!(server.get(&format!("/api/leads/{id}")).0, 200, "{id}");
    }
}

/// A dashboard session made by one process works on another sharing the PostgreSQL database.
#[test]
fn dashboard_sessions_are_shared_by_two_processes_on_one_postgres() {
    let Some(cluster) = pg::PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = cluster.database();
    let a = ServerProcess::start(&model(), &db, dir.path());
    let b = ServerProcess::start(&model(), &db, dir.path());
    let no_redirects: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let response = no_redirects
        .post(format!("{}/login", a.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(format!("api_key={}", server::API_KEY).as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    for base in [&a.base, &b.base] {
        let mut r = no_redirects.get(format!("{base}/leads")).header("Cookie", &cookie).call().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{base}: {}", r.body_mut().read_to_string().unwrap_or_default());
    }
}

/// `demo` takes its port before it replaces and loads the database: a taken port fails at once.
#[test]
fn demo_on_a_taken_port_fails_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let db = dir.path().join("demo.db");
    std::fs::write(&db, b"keep me").unwrap();
    let started = Instant::now();
    let out = Command::new(server::binary())
        .args(["demo", "--leads", "2000", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(&db)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "it loaded first: {:?}", started.elapsed());
    assert_eq!(std::fs::read(&db).unwrap(), b"keep me", "the database was not replaced");
}
