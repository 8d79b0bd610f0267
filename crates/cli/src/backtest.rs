//! `leadscore backtest`: replays history. Each lead with an outcome is scored just before it (the
//! outcome time minus `--gap`), open leads at `--as-of`; the report says how well those scores
//! predicted conversion (SPEC §5). Several `--model`s are compared on the same leads.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use leadscore_core::CheckedModel;
use leadscore_core::compact::share_plans;
use leadscore_core::time::{Duration, Millis, format_timestamp};
use leadscore_learn::backtest::{BacktestReport, LeadRecord, ModelNames, build_report, record_compact_lead};
use rayon::prelude::*;

use crate::history::{InputFiles, Inputs};
use crate::read::Skipped;
use crate::read::leads::IdColumn;
use crate::score::{load_model, parse_as_of};
use leadscore_report::charts as html;

#[derive(Args)]
pub struct BacktestArgs {
    /// The model(s) to backtest; give several to compare them on the same leads
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Leads CSV (or Parquet)
    #[arg(long)]
    leads: Option<PathBuf>,
    /// Events, JSON Lines (or Parquet)
    #[arg(long)]
    events: Option<PathBuf>,
    /// Outcomes CSV: lead_id,outcome,at
    #[arg(long)]
    outcomes: PathBuf,
    /// Score open leads (no outcome) as of this instant (RFC 3339). Default: now
    #[arg(long = "as-of")]
    as_of: Option<String>,
    /// Score each lead this long before its outcome
    #[arg(long, default_value = "1d")]
    gap: String,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report with charts
    #[arg(long)]
    html: Option<PathBuf>,
    /// The leads file's id column (default: `id`, else `lead_id`, else row numbers)
    #[arg(long = "id-column")]
    id_column: Option<String>,
    /// Skip invalid input lines (reported on stderr) instead of stopping at the first
    #[arg(long = "skip-invalid")]
    skip_invalid: bool,
}

pub fn run(args: &BacktestArgs) -> anyhow::Result<ExitCode> {
    let as_of = parse_as_of(args.as_of.as_deref())?;
    let gap = Duration::parse(&args.gap).with_context(|| format!("--gap: `{}`", args.gap))?;
    let mut reports = Vec::new();
    let mut skipped = Skipped::new(args.skip_invalid);
    let mut models = args.model.iter().map(|path| load_model(path)).collect::<anyhow::Result<Vec<_>>>()?;
    // The events are read once for every model: their plans share one set of slot paths.
    share_plans(&mut models);
    let files = InputFiles {
        leads: args.leads.as_deref(),
        events: args.events.as_deref(),
        outcomes: Some(&args.outcomes),
        id_column: args.id_column.clone().map_or(IdColumn::Default, IdColumn::Named),
    };
    // Each model reads the inputs its own way: its `[traits]` and `[events] ignore` shape them.
    let refs: Vec<&CheckedModel> = models.iter().collect();
    let all_inputs = Inputs::read_many(&files, &refs, &mut skipped)?;
    let mut all_records = Vec::with_capacity(models.len());
    for (model, mut inputs) in models.iter().zip(all_inputs) {
        let records = inputs
            .map_compact("backtesting", |lead, accounts| record_compact_lead(model, lead, accounts, as_of, gap))?;
        let records: Vec<LeadRecord> = records.into_iter().map(|(_, r)| r).collect();
        if records.is_empty() {
            bail!("no leads to backtest: the inputs name no lead");
        }
        all_records.push(records);
    }
    // The reports side by side: each one's bootstrap draws are serial, so one report alone
    // leaves a core idle.
    let step = crate::progress::step("reports");
    reports.par_extend(models.par_iter().zip(all_records).map(|(model, records)| {
        let names = ModelNames::of(model);
        build_report(&names, &records, 42)
    }));
    drop(step);
    if let Some(summary) = skipped.summary() {
        eprintln!("{summary}");
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "as_of": format_timestamp(as_of), "gap": gap.to_string(), "models": reports })
        );
    } else {
        print!("{}", text_report(&reports, as_of, gap));
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html_report(&reports, as_of, gap))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

fn number(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "–".to_owned(), |x| format!("{x:.decimals$}"))
}

fn auc_text(report: &BacktestReport) -> String {
    match (report.auc, report.auc_ci) {
        (Some(auc), Some((lo, hi))) => format!("{auc:.3} (95% CI {lo:.3}–{hi:.3})"),
        (Some(auc), None) => format!("{auc:.3}"),
        _ => "– (needs converted and non-converted leads)".to_owned(),
    }
}

/// Rows of cells, printed as aligned columns (first column left, the rest right).
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn decile_rows(report: &BacktestReport) -> Vec<Vec<String>> {
    report
        .deciles
        .iter()
        .map(|b| {
            vec![
                b.band.to_string(),
                format!("{:.2} – {:.2}", b.min_score, b.max_score),
                b.leads.to_string(),
                b.converted.to_string(),
                percent(Some(b.conversion_rate)),
            ]
        })
        .collect()
}

fn stage_rows(report: &BacktestReport) -> Vec<Vec<String>> {
    report
        .stages
        .iter()
        .map(|s| {
            vec![
                s.stage.clone(),
                s.leads_at_cutoff.to_string(),
                percent((s.leads_at_cutoff > 0).then(|| s.converted_at_cutoff as f64 / s.leads_at_cutoff as f64)),
                s.reached.to_string(),
                percent(s.precision),
                percent(s.recall),
                number(s.median_days_to_conversion, 1),
            ]
        })
        .collect()
}

fn rule_rows(report: &BacktestReport) -> Vec<Vec<String>> {
    report
        .rules
        .iter()
        .map(|r| {
            vec![
                r.rule.clone(),
                r.dimension.clone(),
                format!("{} ({})", r.fired, percent(Some(r.fired_share))),
                percent(r.conversion_with),
                percent(r.conversion_without),
                number(r.lift, 2),
            ]
        })
        .collect()
}

const DECILE_HEADER: [&str; 5] = ["decile", "scores", "leads", "converted", "conversion"];
const STAGE_HEADER: [&str; 7] =
    ["stage", "at cutoff", "conversion", "reached", "precision", "recall", "median days to conversion"];
const RULE_HEADER: [&str; 6] = ["rule", "dimension", "fired", "conversion with", "without", "lift"];

fn text_report(reports: &[BacktestReport], as_of: Millis, gap: Duration) -> String {
    let mut out = String::new();
    if reports.len() > 1 {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                let sql = r.stages.last();
                vec![
                    r.model.clone(),
                    auc_text(r),
                    percent(r.deciles.first().map(|d| d.conversion_rate)),
                    percent(r.gains.get(2).map(|g| g.1)),
                    sql.map_or_else(String::new, |s| {
                        format!("{}: {} / {}", s.stage, percent(s.precision), percent(s.recall))
                    }),
                ]
            })
            .collect();
        let _ = writeln!(out, "Which model would have been better, on the same leads\n");
        out.push_str(&columns(
            &["model", "ROC AUC", "top-decile conversion", "converters in top 20%", "last stage precision / recall"],
            &rows,
        ));
        out.push('\n');
    }
    for r in reports {
        let c = &r.counts;
        let _ = writeln!(
            out,
            "Backtest of `{}` on {} leads ({} converted, {} lost, {} disqualified, {} open), scored {gap} before each outcome, open leads as of {}\n",
            r.model,
            c.leads,
            c.converted,
            c.lost,
            c.disqualified,
            c.open,
            format_timestamp(as_of)
        );
        let _ = writeln!(out, "ROC AUC {}; base conversion rate {}\n", auc_text(r), percent(Some(r.base_rate)));
        let _ = writeln!(out, "Conversion by score decile (1 = highest scores)");
        out.push_str(&columns(&DECILE_HEADER, &decile_rows(r)));
        let _ = writeln!(out, "\nStages");
        out.push_str(&columns(&STAGE_HEADER, &stage_rows(r)));
        let _ = writeln!(out, "\nRules");
        out.push_str(&columns(&RULE_HEADER, &rule_rows(r)));
        out.push('\n');
    }
    out
}

fn html_report(reports: &[BacktestReport], as_of: Millis, gap: Duration) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"muted\">Each lead with an outcome is scored {gap} before it; open leads as of {}. Open leads count as not converted.</p>",
        html::escape(&format_timestamp(as_of))
    );
    let series: Vec<(String, Vec<(f64, f64)>)> = reports.iter().map(|r| (r.model.clone(), r.gains.clone())).collect();
    if reports.len() > 1 {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| vec![r.model.clone(), auc_text(r), percent(r.deciles.first().map(|d| d.conversion_rate))])
            .collect();
        body.push_str("<h2>Which model would have been better</h2>");
        body.push_str(&html::table(&["model", "ROC AUC", "top-decile conversion"], &rows));
    }
    body.push_str("<div class=\"grid\">");
    body.push_str(&html::line_chart(
        "Cumulative gains: converters reached by contacting the top-scored leads",
        &series,
        "share of leads contacted",
        "share of converters",
    ));
    body.push_str("</div>");
    for r in reports {
        let c = &r.counts;
        let _ = write!(
            body,
            "<h2>{}</h2><p>{} leads: {} converted, {} lost, {} disqualified, {} open. ROC AUC <b>{}</b>; base conversion rate {}.</p>",
            html::escape(&r.model),
            c.leads,
            c.converted,
            c.lost,
            c.disqualified,
            c.open,
            html::escape(&auc_text(r)),
            percent(Some(r.base_rate))
        );
        let bars: Vec<(String, f64)> = r.deciles.iter().map(|b| (b.band.to_string(), b.conversion_rate)).collect();
        let mut lifts: Vec<(String, f64)> = r.rules.iter().filter_map(|x| Some((x.rule.clone(), x.lift?))).collect();
        lifts.sort_by(|a, b| b.1.total_cmp(&a.1));
        body.push_str("<div class=\"grid\">");
        body.push_str(&html::bar_chart(
            "Conversion by score decile (1 = highest)",
            &bars,
            "decile",
            "conversion",
            true,
        ));
        body.push_str(&html::histogram(
            "Score distribution by outcome",
            &[
                ("converted".to_owned(), r.totals_converted.clone()),
                ("not converted".to_owned(), r.totals_other.clone()),
            ],
            20,
            "total",
        ));
        body.push_str("</div>");
        body.push_str(&html::hbar_chart(
            "Per-rule lift: conversion of leads the rule fired for ÷ conversion of the others (rules that never fired, or fired for everyone, have none)",
            &lifts,
            "lift",
            1.0,
        ));
        body.push_str("<h3>Conversion by score decile</h3>");
        body.push_str(&html::table(&DECILE_HEADER, &decile_rows(r)));
        body.push_str("<h3>Stages</h3>");
        body.push_str(&html::table(&STAGE_HEADER, &stage_rows(r)));
        body.push_str("<h3>Rules</h3>");
        body.push_str(&html::table(&RULE_HEADER, &rule_rows(r)));
    }
    let title = match reports {
        [one] => format!("Backtest: {}", one.model),
        _ => "Backtest: model comparison".to_owned(),
    };
    html::page(&title, &body)
}
