//! A throwaway PostgreSQL cluster for tests: `initdb` + `pg_ctl` into a temporary directory on a
//! free port, stopped and deleted on drop. Shared by the store, server and CLI test suites
//! (included with `#[path]`). `LEADSCORE_TEST_POSTGRES=postgres://…` uses an existing server
//! instead. Without PostgreSQL binaries the caller prints "skipped: …" (loudly), unless
//! `LEADSCORE_REQUIRE_POSTGRES=1` (set by `.ci/run`), which turns the skip into a failure.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct PgCluster {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    pub port: u16,
    base: String,
    as_postgres_user: bool,
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(55_432)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl PgCluster {
    /// Starts a cluster, or returns `None` after printing why PostgreSQL tests are skipped.
    pub fn start() -> Option<PgCluster> {
        if let Ok(url) = std::env::var("LEADSCORE_TEST_POSTGRES") {
            return Some(PgCluster { dir: None, bin: PathBuf::new(), port: 0, base: url, as_postgres_user: false });
        }
        let Some(bin) = find_bin() else {
            let message = "skipped: PostgreSQL tests: no initdb/pg_ctl found (apt-get install postgresql, or set \
                           LEADSCORE_TEST_POSTGRES=postgres://…)";
            assert!(std::env::var("LEADSCORE_REQUIRE_POSTGRES").is_err(), "{message}");
            eprintln!("\n*** {message} ***\n");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("leadscore-pg").tempdir().expect("temp dir");
        let as_postgres_user = is_root();
        if as_postgres_user {
            // initdb refuses to run as root.
            let status = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown for the postgres user failed");
        }
        let port = free_port();
        let data = dir.path().join("data");
        let cluster = PgCluster {
            base: format!("postgres://postgres@127.0.0.1:{port}"),
            dir: Some(dir),
            bin,
            port,
            as_postgres_user,
        };
        cluster.run("initdb", &["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"], Some(&data));
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on",
            cluster.socket_dir().display()
        );
        let log = cluster.socket_dir().join("log");
        cluster.run("pg_ctl", &["-w", "-o", &options, "-l", &log.display().to_string(), "start", "-D"], Some(&data));
        Some(cluster)
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its data.
    pub fn stop(&self) {
        if let Some(dir) = &self.dir {
            self.run("pg_ctl", &["-m", "fast", "-w", "stop", "-D"], Some(&dir.path().join("data")));
        }
    }

    /// Starts the server again after [`PgCluster::stop`], on the same port.
    pub fn start_again(&self) {
        if let Some(dir) = &self.dir {
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on",
                self.port,
                self.socket_dir().display()
            );
            let log = self.socket_dir().join("log");
            let data = dir.path().join("data");
            self.run("pg_ctl", &["-w", "-o", &options, "-l", &log.display().to_string(), "start", "-D"], Some(&data));
        }
    }

    fn socket_dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/tmp"), |d| d.path())
    }

    fn run(&self, tool: &str, args: &[&str], last: Option<&Path>) {
        let exe = self.bin.join(tool);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command.args(args);
        if let Some(path) = last {
            command.arg(path);
        }
        let out = command.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new, empty database; returns its URL.
    pub fn database(&self) -> String {
        let n = DATABASES.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        let mut client = postgres_client(&format!("{}/postgres", self.base.trim_end_matches('/')));
        client(&format!("CREATE DATABASE {name}"));
        format!("{}/{name}", self.base.trim_end_matches('/'))
    }
}

/// Runs statements on a server with psql (so crates without a PostgreSQL driver can use this).
fn postgres_client(url: &str) -> impl FnMut(&str) + use<> {
    let url = url.to_owned();
    move |sql: &str| {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url, "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let data = dir.path().join("data");
            let _ =
                std::panic::catch_unwind(|| self.run("pg_ctl", &["-m", "immediate", "-w", "stop", "-D"], Some(&data)));
        }
    }
}
