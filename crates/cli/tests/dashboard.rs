//! The dashboard in real headless Chromium (Debian's `chromium`, driven by `playwright-core` from
//! `tests/browser/`): log in, the call-now list starts with the lead the API ranks first, its page
//! shows the API's reasons, the marketing page draws its charts. `.ci/run` installs both; without
//! them the test says "skipped: …" loudly (and fails when `LEADSCORE_REQUIRE_BROWSER=1`).
//! `LEADSCORE_SCREENSHOTS=docs/screenshots` saves the screenshots the README shows.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::process::Command;

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let what = "dashboard browser test";
    if !root.join("tests/browser/node_modules/playwright-core").exists() {
        let why = "playwright-core is not installed (npm ci --prefix tests/browser)";
        return server::skip(what, "LEADSCORE_REQUIRE_BROWSER", why);
    }
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("demo.db");
    // Realistic data through the ingest path (the same as `leadscore demo`).
    let out = Command::new(server::binary())
        .args(["demo", "--leads", "300", "--no-serve", "--db"])
        .arg(&db_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = root.join("examples/models/b2b-default.toml");
    let server = server::ServerProcess::start(&model, &format!("sqlite://{}", db_file.display()), dir.path());
    let mut command = Command::new("node");
    command.arg(root.join("tests/browser/dashboard.mjs")).args([
        "--base",
        &server.base,
        "--api-key",
        server::API_KEY,
        "--write-key",
        server::WRITE_KEY,
    ]);
    if let Ok(shots) = std::env::var("LEADSCORE_SCREENSHOTS") {
        command.args(["--screenshots", &shots]);
    }
    server::run_script(what, "LEADSCORE_REQUIRE_BROWSER", &mut command, &server);
}
