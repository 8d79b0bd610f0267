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
    let mut command = Command::new(program);
    command.arg(sdk_dir().join(script)).args([
        "--host",
        &server.base,
        "--write-key",
        server::WRITE_KEY,
        "--api-key",
        server::API_KEY,
    ]);
    server::run_script(&format!("real SDK test {script}"), "LEADSCORE_REQUIRE_SDKS", &mut command, &server);
}

fn skip(why: &str) {
    server::skip("real SDK test", "LEADSCORE_REQUIRE_SDKS", why);
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
    let what = "browser SDK test";
    if !root.join("tests/browser/node_modules/@rudderstack/analytics-js").exists() {
        return server::skip(
            what,
            "LEADSCORE_REQUIRE_BROWSER",
            "the SDKs are not installed (npm ci --prefix tests/browser)",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("browser.db").display());
    let server = server::ServerProcess::start(&sdk_dir().join("sdk-model.toml"), &db, dir.path());
    let mut command = Command::new("node");
    command.arg(root.join("tests/browser/sdk_clients.mjs")).args([
        "--base",
        &server.base,
        "--write-key",
        server::WRITE_KEY,
        "--api-key",
        server::API_KEY,
    ]);
    server::run_script(what, "LEADSCORE_REQUIRE_BROWSER", &mut command, &server);
}
