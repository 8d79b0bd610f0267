//! The `leadscore` binary: glue between the command line, files and the library crates. Each
//! subcommand lives in its own module; scoring itself is `leadscore_core::evaluate`.

mod backtest;
mod check;
mod clock;
mod crm;
mod demo;
mod generate;
mod history;
mod open_leads;

mod progress;
mod read;
mod score;
mod serve;
mod sync;
mod train;
mod write;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Parsing events allocates many small JSON values on every thread; mimalloc's per-thread heaps
/// keep the allocator from serialising the parallel passes (glibc malloc took ~35% of `score`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "leadscore", version, about = "Transparent, testable lead scoring")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a model file: every error and warning, with file:line:col
    Check(check::CheckArgs),
    /// Score every lead in the input files
    Score(score::ScoreArgs),
    /// Replay history: how well the model's scores, taken before each outcome, predict conversion
    Backtest(backtest::BacktestArgs),
    /// Learn a scorecard model from leads with outcomes (or a label column)
    Train(Box<train::TrainArgs>),
    /// Write a realistic synthetic dataset (leads, events, outcomes) with a hidden ground truth
    Gen(generate::GenArgs),
    /// Run the server: Segment-compatible ingest, live scores, the API
    Serve(serve::ServeArgs),
    /// Generate realistic data, load it into an embedded database and serve it
    Demo(demo::DemoArgs),
    /// Import a CRM export (HubSpot, Salesforce or plain CSV) of leads or outcomes into a server
    Import(crm::ImportArgs),
    /// Export every lead's scores, stage, grade and top reasons as a CSV for a CRM
    Export(crm::ExportArgs),
    /// CRM write-back: `sync setup` creates the fields a server's [[sync]] entries write
    Sync(sync::SyncArgs),
}

fn main() -> ExitCode {
    // Transparent huge pages make every fresh page fault zero 2 MB: batch reading allocates and
    // frees in chunks, so they cost more system time than they save (and ~15% more memory).
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Score(args) => score::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Gen(args) => generate::run(&args),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Import(args) => crm::run_import(&args),
        Command::Export(args) => crm::run_export(&args),
        Command::Sync(args) => sync::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
