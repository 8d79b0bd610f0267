//! Running the real `leadscore serve` binary in tests: a free port, a wait for `/healthz`, a small
//! HTTP client, and `kill -9` for durability tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WRITE_KEY: &str = "wk_test";
pub const API_KEY: &str = "ak_test";

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_leadscore"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How to start a server process.
#[derive(Debug, Default)]
pub struct Options<'a> {
    pub config: Option<&'a Path>,
    /// The open-file limit (`ulimit -n`).
    pub nofile: Option<u64>,
    /// Run as `nobody` when the tests run as root.
    pub unprivileged: bool,
    pub args: &'a [&'a str],
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    pub port: u16,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `leadscore serve` and waits until it answers `/healthz`.
    pub fn start(model: &Path, db: &str, log_dir: &Path) -> ServerProcess {
        Self::start_on(model, db, log_dir, free_port())
    }

    pub fn start_on(model: &Path, db: &str, log_dir: &Path, port: u16) -> ServerProcess {
        Self::start_configured(model, db, log_dir, port, None)
    }

    /// With a config file (e.g. `[[webhooks]]`) besides the flags.
    pub fn start_configured(model: &Path, db: &str, log_dir: &Path, port: u16, config: Option<&Path>) -> ServerProcess {
        Self::start_with(model, db, log_dir, port, &Options { config, ..Options::default() })
    }

    pub fn start_with(model: &Path, db: &str, log_dir: &Path, port: u16, options: &Options<'_>) -> ServerProcess {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = log_dir.join(format!("serve-{port}-{n}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        // `sh -c 'ulimit -n N; exec "$0" "$@"'` lowers the open-file limit; `setpriv` drops root
        // (file permissions then apply, as on a real deployment).
        let mut command = match (options.nofile, options.unprivileged && is_root()) {
            (None, false) => Command::new(binary()),
            (nofile, unprivileged) => {
                let mut c = Command::new(if unprivileged { "setpriv" } else { "sh" });
                if unprivileged {
                    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh"]);
                }
                let limit = nofile.map(|n| format!("ulimit -n {n}; ")).unwrap_or_default();
                c.args(["-c", &format!("{limit}exec \"$0\" \"$@\"")]).arg(binary());
                c
            }
        };
        command.arg("serve");
        for arg in options.args {
            command.arg(arg);
        }
        if let Some(config) = options.config {
            command.arg("--config").arg(config);
        }
        let child = command
            .arg("--model")
            .arg(model)
            .args([
                "--db",
                db,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--write-key",
                WRITE_KEY,
                "--api-key",
                API_KEY,
            ])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("leadscore serve starts");
        let mut server = ServerProcess { child, base: format!("http://127.0.0.1:{port}"), port, log };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}): {}", self.log());
            }
            if let Ok(mut r) = agent().get(format!("{}/healthz", self.base)).call()
                && r.status() == 200
                && r.body_mut().read_to_string().is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not start: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Posts a batch; returns the status.
    pub fn batch(&self, messages: &[Value]) -> u16 {
        post_batch(&self.base, messages)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        get_json(&self.base, path)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn post_batch(base: &str, messages: &[Value]) -> u16 {
    let body = serde_json::json!({ "batch": messages, "writeKey": WRITE_KEY }).to_string();
    match agent().post(format!("{base}/v1/batch")).header("Content-Type", "application/json").send(body.as_bytes()) {
        Ok(mut r) => {
            let _ = r.body_mut().read_to_string();
            r.status().as_u16()
        }
        Err(_) => 0,
    }
}

pub fn get_json(base: &str, path: &str) -> (u16, Value) {
    let mut r = agent()
        .get(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {API_KEY}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Every lead in the server's list (all pages).
pub fn all_leads(base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = "/api/leads?limit=1000".to_owned();
    loop {
        let (status, page) = get_json(base, &path);
        assert_eq!(status, 200, "{page}");
        out.extend(page["leads"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/leads?limit=1000&cursor={c}"),
            None => return out,
        }
    }
}

/// Runs `leadscore score` and returns its JSON Lines rows by lead id.
pub fn batch_scores(model: &Path, events: &Path, as_of: &str) -> std::collections::HashMap<String, Value> {
    let out = Command::new(binary())
        .args(["score", "--model"])
        .arg(model)
        .arg("--events")
        .arg(events)
        .args(["--as-of", as_of, "--format", "jsonl", "--explain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["lead_id"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// Says a test was skipped, loudly; fails instead when `require` (e.g. `LEADSCORE_REQUIRE_SDKS`)
/// is set, as in CI.
pub fn skip(what: &str, require: &str, why: &str) {
    let message = format!("skipped: {what}: {}", why.trim());
    assert!(std::env::var(require).is_err(), "{message}");
    eprintln!("\n*** {message} ***\n");
}

/// Runs a client script (a real SDK, a browser): exit 0 passes, 77 is a loud skip, anything else
/// fails with the script's output and the server's log.
pub fn run_script(what: &str, require: &str, command: &mut Command, server: &ServerProcess) {
    let out = match command.output() {
        Ok(out) => out,
        Err(e) => return skip(what, require, &format!("{:?} cannot run ({e})", command.get_program())),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => eprintln!("{text}"),
        Some(77) => skip(what, require, &text),
        _ => panic!("{what} failed:\n{text}\nserver log:\n{}", server.log()),
    }
}
