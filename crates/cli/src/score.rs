//! `leadscore score`: reads leads, events and outcomes (`history`), scores every lead as of one
//! instant in parallel, writes CSV or JSON Lines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use leadscore_core::CheckedModel;
use leadscore_core::time::{Millis, parse_timestamp};

use crate::clock;
use crate::history::{InputFiles, Inputs};
use crate::read::leads::IdColumn;
use crate::read::{InputError, Skipped};
use crate::write::{Format, Row, write_scores};

#[derive(Args)]
pub struct ScoreArgs {
    /// The model file (TOML)
    #[arg(long)]
    model: PathBuf,
    /// Leads CSV: an `id` column and one column per trait
    #[arg(long)]
    leads: Option<PathBuf>,
    /// Events, one Segment message per line (JSON Lines)
    #[arg(long)]
    events: Option<PathBuf>,
    /// Outcomes CSV: lead_id,outcome,at
    #[arg(long)]
    outcomes: Option<PathBuf>,
    /// Score as of this instant (RFC 3339); events after it do not exist. Default: now
    #[arg(long = "as-of")]
    as_of: Option<String>,
    /// Include each lead's contributions (JSON Lines)
    #[arg(long)]
    explain: bool,
    /// Output format (default: csv, or jsonl with --explain or an --out ending in .jsonl)
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Output file (default: standard output)
    #[arg(long)]
    out: Option<PathBuf>,
    /// The leads file's id column (default: `id`, else `lead_id`, else row numbers)
    #[arg(long = "id-column")]
    id_column: Option<String>,
    /// Skip invalid input lines (reported on stderr) instead of stopping at the first
    #[arg(long = "skip-invalid")]
    skip_invalid: bool,
}

/// Loads and checks a model, printing its diagnostics if it has errors.
pub fn load_model(path: &Path) -> anyhow::Result<CheckedModel> {
    let source = std::fs::read_to_string(path).with_context(|| format!("cannot read model `{}`", path.display()))?;
    match CheckedModel::from_source(&source) {
        Ok(model) => Ok(model),
        Err(diagnostics) => {
            let file = path.display().to_string();
            for d in &diagnostics {
                eprintln!("{}", d.render(&file, &source));
            }
            bail!(
                "model `{file}` has {} error{}; run `leadscore check {file}`",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            )
        }
    }
}

pub fn parse_as_of(text: Option<&str>) -> anyhow::Result<Millis> {
    match text {
        None => Ok(clock::now()),
        Some(text) => parse_timestamp(text)
            .with_context(|| format!("--as-of: `{text}` is not an RFC 3339 timestamp (e.g. 2024-05-01T00:00:00Z)")),
    }
}

pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let format = match (args.format, args.explain) {
        (Some(Format::Csv), true) => bail!("--explain writes JSON Lines: use --format jsonl (or leave --format out)"),
        (Some(format), _) => format,
        (None, true) => Format::Jsonl,
        (None, false) => match args.out.as_ref().and_then(|p| p.extension()).and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => Format::Jsonl,
            _ => Format::Csv,
        },
    };
    if args.leads.is_none() && args.events.is_none() {
        bail!("nothing to score: give --leads and/or --events");
    }
    let model = load_model(&args.model)?;
    let as_of = parse_as_of(args.as_of.as_deref())?;
    if let Some(warning) = args.leads.as_deref().and_then(|leads| no_trait_columns(&model, leads)) {
        eprintln!("{warning}");
    }
    let mut skipped = Skipped::new(args.skip_invalid);
    let rows = score_files(&model, args, as_of, &mut skipped)?;
    let _step = crate::progress::step("writing");
    match &args.out {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
            let mut out = BufWriter::new(file);
            write_scores(&mut out, &model, &rows, format, args.explain)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            match write_scores(&mut out, &model, &rows, format, args.explain) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("cannot write to standard output")?,
            }
            let _ = out.flush();
        }
    }
    if let Some(summary) = skipped.summary() {
        eprintln!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A warning when the model reads lead traits and the leads file (CSV) has none of them as a
/// column: every trait rule would score 0, silently.
fn no_trait_columns(model: &CheckedModel, leads: &Path) -> Option<String> {
    let wanted = model.lead_traits_read();
    let csv = leads.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if wanted.is_empty() || !csv {
        return None;
    }
    let (_, headers) = crate::read::open_csv(leads, csv::Trim::Headers).ok()?;
    if headers.iter().any(|h| wanted.contains(h)) {
        return None;
    }
    let list =
        |names: &mut dyn Iterator<Item = &String>| names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "warning: {}: none of the traits the model reads ({}) is a column (columns: {}); every trait rule scores 0 \
         for these leads unless their events carry the traits",
        leads.display(),
        list(&mut wanted.iter()),
        list(&mut headers.iter()),
    ))
}

fn score_files(
    model: &CheckedModel,
    args: &ScoreArgs,
    as_of: Millis,
    skipped: &mut Skipped,
) -> Result<Vec<Row>, InputError> {
    let files = InputFiles {
        leads: args.leads.as_deref(),
        events: args.events.as_deref(),
        outcomes: args.outcomes.as_deref(),
        id_column: args.id_column.clone().map_or(IdColumn::Default, IdColumn::Named),
    };
    let mut inputs = Inputs::read(&files, model, skipped)?;
    let rows = inputs
        .map_compact("scoring", |mut lead, accounts| Row::new(lead.score_at(model, accounts, as_of), args.explain))?;
    eprintln!("scored {}", inputs.summary(rows.len()));
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}
