//! `leadscore check MODEL [--leads FILE]`: every error and warning at once; exit 1 on error. With
//! a leads file, also what is wrong with the leads' answers (core `quality`: free or disposable
//! mail, placeholders, an e-mail domain that is not the company's), line by line.

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
    /// A leads file (CSV) whose answers to check: free or disposable mail, placeholders, an
    /// e-mail domain that is not the company's (reported, not errors)
    #[arg(long)]
    leads: Option<PathBuf>,
}

/// One data-quality flag of a leads file's row.
struct RowFlag {
    line: u64,
    lead: String,
    flag: leadscore_core::quality::QualityFlag,
}

/// The flags of every row of a leads CSV (traits as text, the id from `id`/`lead_id`/`email`).
fn leads_quality(path: &std::path::Path) -> anyhow::Result<(usize, Vec<RowFlag>)> {
    let (mut reader, headers) = crate::read::open_csv(path, csv::Trim::All)?;
    let id = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("id") || h.eq_ignore_ascii_case("lead_id"))
        .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case("email")));
    let mut rows = 0;
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| crate::read::InputError::new(path, Some(line), None, e.to_string()))?;
        rows += 1;
        let traits: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.clone(), serde_json::Value::String(v.to_owned())))
            .collect();
        let lead = id.and_then(|c| record.get(c)).unwrap_or("").to_owned();
        out.extend(leadscore_core::quality::quality_flags(&traits).into_iter().map(|flag| RowFlag {
            line,
            lead: lead.clone(),
            flag,
        }));
    }
    Ok((rows, out))
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
    let quality = args.leads.as_deref().map(leads_quality).transpose()?;
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
            if let (Some(path), Some((rows, flags))) = (&args.leads, &quality) {
                let leads_file = path.display();
                for f in flags {
                    println!(
                        "{leads_file}:{}: lead `{}`: {} ({}, `{}`)",
                        f.line, f.lead, f.flag.message, f.flag.code, f.flag.trait_name
                    );
                }
                let mut by_code: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
                for f in flags {
                    *by_code.entry(f.flag.code).or_default() += 1;
                }
                let flagged = flags.iter().map(|f| f.line).collect::<std::collections::BTreeSet<_>>().len();
                let counts: Vec<String> = by_code.iter().map(|(c, n)| format!("{c} {n}")).collect();
                println!(
                    "{leads_file}: {flagged} of {rows} lead{} with data-quality flags{}",
                    plural(*rows),
                    if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) }
                );
            }
        }
        Format::Json => {
            let diagnostics: Vec<_> = report.diagnostics.iter().map(|d| d.to_json(&file, &source)).collect();
            let mut json = serde_json::json!({ "file": file, "ok": report.model.is_some(), "errors": errors, "warnings": warnings, "diagnostics": diagnostics });
            if let Some((rows, flags)) = &quality {
                json["leads"] = serde_json::json!(rows);
                json["quality"] = flags
                    .iter()
                    .map(|f| serde_json::json!({"line": f.line, "lead": f.lead, "code": f.flag.code, "trait": f.flag.trait_name, "message": f.flag.message}))
                    .collect();
            }
            println!("{json}");
        }
    }
    Ok(if report.model.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
