//! `leadscore check MODEL`: every error and warning at once; exit 1 on error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use leadscore_core::model::check_model;

#[derive(Args)]
pub struct CheckArgs {
    /// The model file (TOML)
    model: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let source =
        std::fs::read_to_string(&args.model).with_context(|| format!("cannot read `{}`", args.model.display()))?;
    let file = args.model.display().to_string();
    let report = check_model(&source);
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    match args.format {
        Format::Text => {
            for diagnostic in &report.diagnostics {
                eprintln!("{}", diagnostic.render(&file, &source));
            }
            match &report.model {
                Some(model) => println!(
                    "{file}: ok: model `{}`: {} dimensions, {} rules, {} stages ({warnings} warning{})",
                    model.name,
                    model.dimensions.len(),
                    model.rules.len(),
                    model.stages.len(),
                    if warnings == 1 { "" } else { "s" }
                ),
                None => eprintln!("{file}: {errors} error{}, {warnings} warning{}", plural(errors), plural(warnings)),
            }
        }
        Format::Json => {
            let diagnostics: Vec<_> = report.diagnostics.iter().map(|d| d.to_json(&file, &source)).collect();
            let json = serde_json::json!({ "file": file, "ok": report.model.is_some(), "errors": errors, "warnings": warnings, "diagnostics": diagnostics });
            println!("{json}");
        }
    }
    Ok(if report.model.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
