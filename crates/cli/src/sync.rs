//! `leadscore sync setup`: creates the CRM fields each `[[sync]]` of a server config file writes
//! (HubSpot: the `leadscore` property group and one property per value), where missing; for
//! Salesforce it lists the custom fields to create in Setup. Run once before the server writes
//! scores, and again after a model adds a dimension.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use leadscore_service::crm::{Crm, hubspot};
use leadscore_service::settings::Config;

#[derive(clap::Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: SyncCommand,
}

#[derive(clap::Subcommand)]
enum SyncCommand {
    /// Create the fields each [[sync]] writes in the CRM (HubSpot: a `leadscore` property group
    /// and its properties), where missing; the tokens come from the environment as for `serve`
    Setup(SetupArgs),
}

#[derive(clap::Args)]
struct SetupArgs {
    /// The server's config file (its [[sync]] entries)
    #[arg(long)]
    config: PathBuf,
    /// The model whose dimensions get a field each (default: the config's [server] model)
    #[arg(long)]
    model: Option<PathBuf>,
    /// Only the sync of this name
    #[arg(long)]
    sync: Option<String>,
}

pub fn run(args: &SyncArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        SyncCommand::Setup(setup) => run_setup(setup),
    }
}

fn run_setup(args: &SetupArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let syncs = config.syncs(&|var| std::env::var(var).ok())?;
    let Some(model_path) = args.model.clone().or(config.server.model.clone()) else {
        bail!("no model: pass --model FILE (or [server] model in {})", args.config.display())
    };
    let source =
        std::fs::read_to_string(&model_path).with_context(|| format!("cannot read {}", model_path.display()))?;
    let model = match leadscore_service::app::check_source(&source) {
        Ok((model, _)) => model,
        Err(diagnostics) => {
            let name = model_path.display().to_string();
            bail!("{}", leadscore_service::app::render(&name, &source, &diagnostics))
        }
    };
    let dimensions: Vec<String> = model.dimensions.iter().map(|d| d.name.clone()).collect();
    let chosen: Vec<_> = syncs.iter().filter(|s| args.sync.as_ref().is_none_or(|n| *n == s.name)).collect();
    if chosen.is_empty() {
        match &args.sync {
            Some(name) => bail!("{}: no [[sync]] named `{name}`", args.config.display()),
            None => bail!("{}: no [[sync]] entry", args.config.display()),
        }
    }
    for sync in chosen {
        if sync.crm == Crm::Salesforce {
            // Custom fields are metadata (Setup or the Metadata API), not records the REST API
            // writes: say exactly what to create.
            println!(
                "{}: create these custom fields on Lead and Contact (Setup > Object Manager > Fields & Relationships):",
                sync.name
            );
            for p in hubspot::properties(sync, &dimensions) {
                let kind = match (p.kind, p.field_type) {
                    ("number", _) if p.label.ends_with("probability") => "Number(1, 4)",
                    ("number", _) => "Number(16, 2)",
                    ("datetime", _) => "Date/Time",
                    (_, "textarea") => "Long Text Area(1000)",
                    _ => "Text(255)",
                };
                println!("{}:   {} ({kind}), label \"{}\"", sync.name, p.name, p.label);
            }
            continue;
        }
        let steps = hubspot::setup(sync, &dimensions).map_err(|e| anyhow::anyhow!("sync `{}`: {e}", sync.name))?;
        for step in steps {
            println!("{}: {} {}", sync.name, if step.created { "created" } else { "exists " }, step.what);
        }
    }
    Ok(ExitCode::SUCCESS)
}
