//! `leadscore demo`: one command on a fresh machine. Generates a realistic dataset (`gen`'s story,
//! ending now), loads it into an embedded SQLite file through the server's own ingest path (the
//! same decoding, group commit and live scoring as `POST /v1/batch`), records the outcomes through
//! the API's use case, then serves the dashboard and API and prints the address and keys.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use leadscore_core::time::format_timestamp;
use leadscore_http::segment::{HeaderMap, decode};
use leadscore_learn::synth::{Config, Generator, LeadRow};
use leadscore_service::{App, LeadId, Settings, SystemClock};
use serde_json::{Value, json};

use crate::progress;
use crate::serve::{bind, init_logging, run_server};

/// The model the demo scores with (the same file as `examples/models/b2b-default.toml`).
const MODEL: &str = include_str!("../../../examples/models/b2b-default.toml");
const WRITE_KEY: &str = "demo_write_key";
const API_KEY: &str = "demo_api_key";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many leads to generate (about 50 events each)
    #[arg(long, default_value_t = 1000)]
    leads: u64,
    /// The SQLite file to create (replaced if it exists)
    #[arg(long, default_value = "leadscore-demo.db")]
    db: PathBuf,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Random seed for the generated data
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Load the data and exit instead of serving
    #[arg(long)]
    no_serve: bool,
}

/// A lead's CRM fields as the traits of an `identify` call.
fn identify(lead: &LeadRow) -> Value {
    let mut traits = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            traits.insert(k.to_owned(), v);
        }
    };
    put("email", Some(json!(lead.email)));
    put("first_name", lead.first_name.clone().map(Value::from));
    put("last_name", lead.last_name.clone().map(Value::from));
    put("title", lead.title.clone().map(Value::from));
    put("department", lead.department.clone().map(Value::from));
    put("seniority", lead.seniority.clone().map(Value::from));
    put("employees", lead.employees.map(Value::from));
    put("industry", lead.industry.clone().map(Value::from));
    put("country", lead.country.clone().map(Value::from));
    put("created_at", Some(json!(format_timestamp(lead.created_at))));
    json!({
        "type": "identify",
        "userId": lead.id,
        "traits": traits,
        "timestamp": format_timestamp(lead.created_at),
        "messageId": format!("crm-{}", lead.id),
        "context": { "library": { "name": "leadscore-demo" } },
    })
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let listen: std::net::SocketAddr =
        args.listen.parse().with_context(|| format!("--listen: `{}` is not HOST:PORT", args.listen))?;
    // Take the port first: a taken port is reported before the database is replaced and loaded.
    let bound = if args.no_serve { None } else { Some(bind(listen)?) };
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", args.db.display()));
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("cannot replace `{}`", path.display()))?;
        }
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let model_path = dir.path().join("b2b-default.toml");
    std::fs::write(&model_path, MODEL).context("cannot write the demo model")?;
    let settings = Settings {
        listen,
        ..Settings::new(
            format!("sqlite://{}", args.db.display()),
            Some(model_path),
            vec![WRITE_KEY.to_owned()],
            vec![API_KEY.to_owned()],
        )
    };
    let app = App::start(settings, Arc::new(SystemClock))?;
    let now = app.clock.now();
    let config = Config { seed: args.seed, leads: args.leads.max(1), end: now };
    let bar = progress::bar(config.leads, "loading", false);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    let mut batch: Vec<Value> = Vec::with_capacity(100);
    let mut outcomes = Vec::new();
    let mut sent = 0usize;
    let started = std::time::Instant::now();
    let mut flush = |batch: &mut Vec<Value>| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(&json!({ "batch": batch, "writeKey": WRITE_KEY }))?;
        let now = app.clock.now();
        let decoded = decode(None, &axum_headers(), &body, &app.keys, now, app.settings.max_future, None)
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        runtime.block_on(app.ingest(decoded.messages)).map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
        sent += batch.len();
        batch.clear();
        Ok(())
    };
    for record in Generator::new(config) {
        batch.push(identify(&record.lead));
        for message in &record.events {
            batch.push(serde_json::to_value(message)?);
            if batch.len() >= 100 {
                flush(&mut batch)?;
            }
        }
        if let Some(o) = record.outcome {
            let kind = leadscore_core::OutcomeKind::parse(o.kind.as_str())
                .with_context(|| format!("unknown outcome `{}`", o.kind.as_str()))?;
            outcomes.push((LeadId::parse(&record.lead.id)?, kind, o.at));
        }
        bar.inc(1);
    }
    flush(&mut batch)?;
    bar.finish_and_clear();
    let loaded = started.elapsed();
    app.record_outcomes(&outcomes)?;
    eprintln!(
        "leadscore demo: loaded {} leads, {sent} messages through ingest in {:.1} s, {} outcomes",
        config.leads,
        loaded.as_secs_f64(),
        outcomes.len()
    );
    if args.no_serve {
        app.shutdown();
        return Ok(ExitCode::SUCCESS);
    }
    let address = app.settings.listen;
    let banner = format!(
        "\nLeadscore demo is running.\n\n  Dashboard  http://{address}/   (log in with the API key)\n  API        http://{address}/api/leads   (OpenAPI: http://{address}/openapi.json)\n  API key    {API_KEY}   (Authorization: Bearer {API_KEY})\n  write key  {WRITE_KEY}   (Segment SDKs: write key; host http://{address})\n\n\
         Try:\n  curl -s -H 'Authorization: Bearer {API_KEY}' 'http://{address}/api/leads?sort=-total&limit=5'\n  \
         curl -s -u {WRITE_KEY}: http://{address}/v1/track -d '{{\"userId\":\"L0000001\",\"event\":\"Demo Requested\"}}'\n\n\
         Press Ctrl-C to stop; the data stays in {}.",
        args.db.display()
    );
    run_server(app, bound, Some(banner))
}

fn axum_headers() -> HeaderMap {
    HeaderMap::new()
}
