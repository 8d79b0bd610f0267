//! The real, unmodified client SDKs against a running `leadscore serve`: Segment Python 2.4.0,
//! RudderStack Python 2.1.9 and Segment Node 3.1.0 (scripts in `tests/sdk/`). `.ci/run` installs
//! them; when one is missing locally the test says "skipped: …" loudly (and fails instead when
//! `LEADSCORE_REQUIRE_SDKS=1`, as in CI).

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk")
}

fn run_client(program: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = sdk_dir().join("sdk-model.toml");
    let db = format!("sqlite://{}", dir.path().join("sdk.db").display());
    let server = server::ServerProcess::start(&model, &db, dir.path());
    let out = match Command::new(program)
        .arg(sdk_dir().join(script))
        .args(["--host", &server.base, "--write-key", server::WRITE_KEY, "--api-key", server::API_KEY])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            skip(&format!("{program} is not installed ({e})"));
            return;
        }
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => eprintln!("{text}"),
        Some(77) => skip(&text),
        _ => panic!("{script} failed:\n{text}\nserver log:\n{}", server.log()),
    }
}

fn skip(why: &str) {
    let message = format!("skipped: real SDK test: {}", why.trim());
    assert!(std::env::var("LEADSCORE_REQUIRE_SDKS").is_err(), "{message}");
    eprintln!("\n*** {message} ***\n");
}

#[test]
fn segment_and_rudderstack_python_sdks_are_scored() {
    run_client("python3", "python_sdks.py");
}

#[test]
fn segment_node_sdk_is_scored() {
    if !sdk_dir().join("node_modules/@segment/analytics-node").exists() {
        skip("@segment/analytics-node is not installed (npm ci --prefix tests/sdk)");
        return;
    }
    run_client("node", "node_sdk.mjs");
}

/// The browser SDKs, bundled as a page ships them, in real Chromium on another origin: Segment's
/// analytics.js and RudderStack's JavaScript SDK v3 (XHR and beacon transports), pointed at the
/// server with their documented settings only (`tests/browser/sdk_clients.mjs`).
#[test]
fn browser_sdks_in_chromium_are_scored() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let skip = |why: &str| {
        let message = format!("skipped: browser SDK test: {}", why.trim());
        assert!(std::env::var("LEADSCORE_REQUIRE_BROWSER").is_err(), "{message}");
        eprintln!("\n*** {message} ***\n");
    };
    if !root.join("tests/browser/node_modules/@rudderstack/analytics-js").exists() {
        return skip("the browser SDKs are not installed (npm ci --prefix tests/browser)");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("browser.db").display());
    let server = server::ServerProcess::start(&sdk_dir().join("sdk-model.toml"), &db, dir.path());
    let out = match Command::new("node")
        .arg(root.join("tests/browser/sdk_clients.mjs"))
        .args(["--base", &server.base, "--write-key", server::WRITE_KEY, "--api-key", server::API_KEY])
        .output()
    {
        Ok(out) => out,
        Err(e) => return skip(&format!("node is not installed ({e})")),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => eprintln!("{text}"),
        Some(77) => skip(&text),
        _ => panic!("sdk_clients.mjs failed:\n{text}\nserver log:\n{}", server.log()),
    }
}
