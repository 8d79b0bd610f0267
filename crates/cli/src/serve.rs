//! `leadscore serve`: the server (SPEC §6). Flags override the environment, which overrides the
//! config file; the server refuses to start without keys. Ctrl-C or SIGTERM stops it gracefully:
//! in-flight requests finish and everything accepted is committed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use leadscore_service::{App, Flags, Settings, SystemClock};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML: [server] listen, db, model, public_url, trusted_proxies, timeouts;
    /// [ingest] max_future; [auth] write_keys, api_keys, read_keys; [[webhooks]]; see docs/server.md)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Model file; becomes a new active version if it differs from the stored active model
    #[arg(long)]
    model: Option<PathBuf>,
    /// Database: sqlite://PATH (default sqlite://leadscore.db) or postgres://…
    #[arg(long)]
    db: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080)
    #[arg(long)]
    listen: Option<String>,
    /// A write key for the Segment ingest API (repeatable; also LEADSCORE_WRITE_KEYS)
    #[arg(long = "write-key")]
    write_keys: Vec<String>,
    /// An admin API key: everything (repeatable; also LEADSCORE_API_KEYS)
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// A read key for sales: leads, accounts, outcomes, the dashboard without admin actions
    /// (repeatable; also LEADSCORE_READ_KEYS)
    #[arg(long = "read-key")]
    read_keys: Vec<String>,
    /// How browsers and SDKs reach this server, e.g. https://leads.example.com (also
    /// LEADSCORE_PUBLIC_URL): analytics.js settings and Secure cookies follow it
    #[arg(long = "public-url")]
    public_url: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let flags = Flags {
        config: args.config,
        model: args.model,
        db: args.db,
        listen: args.listen,
        public_url: args.public_url,
        write_keys: args.write_keys,
        api_keys: args.api_keys,
        read_keys: args.read_keys,
    };
    let settings = Settings::resolve(flags, |var| std::env::var(var).ok())?;
    let bound = bind(settings.listen)?;
    let app = App::start(settings, Arc::new(SystemClock))?;
    run_server(app, Some(bound), None)
}

/// Logs to stderr; `LEADSCORE_LOG` (e.g. `debug`) sets the level, default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEADSCORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Binds the listening socket (so a taken port is reported before any work is done).
pub fn bind(listen: std::net::SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    listener.set_nonblocking(true).context("cannot configure the listening socket")?;
    Ok(listener)
}

/// Binds (unless `bound` is given), prints the address, serves until Ctrl-C or SIGTERM. `banner`
/// is printed once listening.
pub fn run_server(
    app: Arc<App>,
    bound: Option<std::net::TcpListener>,
    banner: Option<String>,
) -> anyhow::Result<ExitCode> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let listen = app.settings.listen;
    let bound = match bound {
        Some(listener) => listener,
        None => bind(listen)?,
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(bound).context("cannot use the listening socket")?;
        let address = listener.local_addr().unwrap_or(listen);
        eprintln!("leadscore: listening on http://{address} (database {})", app.settings.db);
        if let Some(banner) = banner {
            println!("{banner}");
        }
        leadscore_http::serve(app, listener, shutdown_signal()).await.context("server error")?;
        eprintln!("leadscore: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!("leadscore: shutting down (finishing in-flight requests)");
}
