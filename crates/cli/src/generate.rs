//! `leadscore gen`: writes a synthetic dataset (leads.csv, events.jsonl, outcomes.csv, truth.csv) to a
//! directory. The generative model lives in `leadscore_learn::synth` (pure); this file owns the flags,
//! the files and the progress bar. Leads are generated in parallel in fixed-size chunks and written in
//! id order, so memory stays bounded by one chunk and the output depends only on the flags.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use leadscore_core::time::{format_timestamp, parse_timestamp};
use leadscore_learn::synth::{Config, LeadRecord, LeadRow, generate_lead};
use rayon::prelude::*;

use crate::progress;

/// Leads generated (in parallel) before their output is written.
const CHUNK: u64 = 1_024;
const BUFFER: usize = 1 << 20;

#[derive(clap::Args)]
pub struct GenArgs {
    /// Number of leads to generate (about 50 events each on average)
    #[arg(long)]
    leads: u64,
    /// Output directory, created if missing; existing files of the same names are replaced
    #[arg(long)]
    out: PathBuf,
    /// Random seed: the same seed and flags give byte-identical files
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// End of the generated history (RFC 3339); leads are created over the 180 days before it
    #[arg(long, default_value = "2024-06-30T00:00:00Z")]
    end: String,
}

struct Output {
    path: PathBuf,
    file: BufWriter<File>,
}

impl Output {
    fn create(dir: &Path, name: &str) -> anyhow::Result<Output> {
        let path = dir.join(name);
        let file = File::create(&path).with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok(Output { path, file: BufWriter::with_capacity(BUFFER, file) })
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(bytes).with_context(|| format!("cannot write `{}`", self.path.display()))
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.file.flush().with_context(|| format!("cannot write `{}`", self.path.display()))
    }
}

/// One lead's output, serialised off the writing thread.
struct Rendered {
    lead: Vec<u8>,
    events: Vec<u8>,
    event_count: u64,
    outcome: Vec<u8>,
    truth: Vec<u8>,
}

fn csv_line(cells: &[&str]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.write_record(cells)?;
    writer.into_inner().map_err(|e| anyhow::anyhow!("cannot format a CSV line: {e}"))
}

fn render(record: &LeadRecord) -> anyhow::Result<Rendered> {
    let cells = record.lead.cells();
    let lead = csv_line(&cells.each_ref().map(String::as_str))?;
    let mut events = Vec::with_capacity(record.events.len() * 512);
    for message in &record.events {
        serde_json::to_writer(&mut events, message)?;
        events.push(b'\n');
    }
    let outcome = match &record.outcome {
        Some(o) => csv_line(&[&record.lead.id, o.kind.as_str(), &format_timestamp(o.at)])?,
        None => Vec::new(),
    };
    let t = &record.truth;
    let truth = csv_line(&[
        &record.lead.id,
        t.persona.as_str(),
        &format!("{:.4}", t.icp_fit),
        &format!("{:.4}", t.intent),
        &format!("{:.6}", t.converted_probability),
    ])?;
    Ok(Rendered { lead, events, event_count: record.events.len() as u64, outcome, truth })
}

pub fn run(args: &GenArgs) -> anyhow::Result<ExitCode> {
    if args.leads == 0 {
        bail!("--leads must be at least 1");
    }
    let end = parse_timestamp(&args.end)
        .with_context(|| format!("--end: `{}` is not an RFC 3339 timestamp (e.g. 2024-06-30T00:00:00Z)", args.end))?;
    let config = Config { seed: args.seed, leads: args.leads, end };
    let dir = &args.out;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the output directory `{}`", dir.display()))?;

    let mut leads = Output::create(dir, "leads.csv")?;
    let mut events = Output::create(dir, "events.jsonl")?;
    let mut outcomes = Output::create(dir, "outcomes.csv")?;
    let mut truth = Output::create(dir, "truth.csv")?;
    leads.write(&csv_line(&LeadRow::HEADER)?)?;
    outcomes.write(b"lead_id,outcome,at\n")?;
    truth.write(b"lead_id,persona,icp_fit,intent,converted_probability\n")?;

    let bar = progress::bar(config.leads, "generating", false);
    let (mut event_count, mut outcome_count) = (0u64, 0u64);
    let mut start = 0;
    while start < config.leads {
        let stop = (start + CHUNK).min(config.leads);
        let rendered: Vec<anyhow::Result<Rendered>> =
            (start..stop).into_par_iter().map(|index| render(&generate_lead(&config, index))).collect();
        for r in rendered {
            let r = r?;
            leads.write(&r.lead)?;
            events.write(&r.events)?;
            truth.write(&r.truth)?;
            if !r.outcome.is_empty() {
                outcomes.write(&r.outcome)?;
                outcome_count += 1;
            }
            event_count += r.event_count;
        }
        bar.set_position(stop);
        start = stop;
    }
    bar.finish_and_clear();
    for output in [leads, events, outcomes, truth] {
        output.finish()?;
    }
    eprintln!(
        "wrote {} leads, {event_count} events and {outcome_count} outcomes to `{}` (seed {}, ending {})",
        config.leads,
        dir.display(),
        config.seed,
        format_timestamp(end)
    );
    Ok(ExitCode::SUCCESS)
}
