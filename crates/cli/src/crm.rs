//! `leadscore import` and `leadscore export`: CRM files in and out of a running server.
//!
//! Import sends lead rows as `identify` calls through the server's own tracking API (`/v1/batch`,
//! so they are stored, deduplicated and scored exactly like SDK traffic) and outcome rows through
//! `POST /api/leads/{id}/outcome`. HubSpot contact exports and Salesforce lead exports work without
//! a mapping: their column names (`Record ID`, `Lead ID`, `Email`, `Job Title`, `Company`,
//! `Number of Employees`, `Lead Status`, `Lifecycle Stage`, …) map to Leadscore traits. Export
//! writes every lead's scores, stage, grade and top reasons as a CSV a CRM can import.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use leadscore_core::OutcomeKind;
use leadscore_core::time::format_timestamp;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use leadscore_report as scoring;
use leadscore_report::percent_encode;

use crate::read::{InputError, open_csv};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A CRM export of leads or contacts (CSV): each row becomes the lead's traits
    #[arg(long, conflicts_with = "outcomes", required_unless_present = "outcomes")]
    leads: Option<PathBuf>,
    /// Outcomes (CSV): `lead_id,outcome,at`, or a CRM export with an id and a status column
    #[arg(long)]
    outcomes: Option<PathBuf>,
    /// Column mapping overrides, `Column=trait,…` (`id` names the lead id column; for outcomes
    /// also `outcome` and `at`)
    #[arg(long, value_delimiter = ',')]
    map: Vec<String>,
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A write key (leads go through the tracking API)
    #[arg(long = "write-key", env = "LEADSCORE_WRITE_KEY")]
    write_key: Option<String>,
    /// An API key (outcomes go through the API)
    #[arg(long = "api-key", env = "LEADSCORE_API_KEY")]
    api_key: Option<String>,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An API key
    #[arg(long = "api-key", env = "LEADSCORE_API_KEY")]
    api_key: String,
    /// Only leads in this stage
    #[arg(long)]
    stage: Option<String>,
    /// Where to write the CSV (default: standard output)
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Known CRM column names (lowercase) and the trait each becomes.
const COLUMNS: &[(&str, &str)] = &[
    ("record id", "id"),
    ("contact id", "id"),
    ("lead id", "id"),
    ("id", "id"),
    ("lead_id", "id"),
    ("email", "email"),
    ("email address", "email"),
    ("first name", "first_name"),
    ("last name", "last_name"),
    ("job title", "title"),
    ("title", "title"),
    ("company", "company"),
    ("company name", "company"),
    ("number of employees", "employees"),
    ("no. of employees", "employees"),
    ("employees", "employees"),
    ("numberofemployees", "employees"),
    ("annual revenue", "annual_revenue"),
    ("industry", "industry"),
    ("department", "department"),
    ("country", "country"),
    ("country/region", "country"),
    ("state/region", "state"),
    ("city", "city"),
    ("phone", "phone"),
    ("phone number", "phone"),
    ("lead status", "lead_status"),
    ("status", "lead_status"),
    ("lifecycle stage", "lifecycle_stage"),
    ("lead source", "lead_source"),
    ("original source", "lead_source"),
    ("contact owner", "owner"),
    ("lead owner", "owner"),
    ("owner", "owner"),
    ("create date", "created_at"),
    ("created date", "created_at"),
    ("createdate", "created_at"),
    ("created_at", "created_at"),
];

/// A header's trait name: an override, a known CRM column, or the header in snake_case.
fn trait_name(header: &str, overrides: &HashMap<String, String>) -> String {
    if let Some(name) = overrides.get(&header.to_lowercase()) {
        return name.clone();
    }
    let lower = header.trim().to_lowercase();
    if let Some((_, name)) = COLUMNS.iter().find(|(column, _)| *column == lower) {
        return (*name).to_owned();
    }
    let mut out = String::new();
    for c in lower.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

fn overrides(map: &[String]) -> anyhow::Result<HashMap<String, String>> {
    map.iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            let (column, name) = m.split_once('=').with_context(|| format!("--map: `{m}` is not `Column=trait`"))?;
            Ok((column.trim().to_lowercase(), name.trim().to_owned()))
        })
        .collect()
}

/// A cell as a JSON value: numbers stay numbers (`1,200` too), CRM dates become RFC 3339.
fn cell_value(name: &str, text: &str) -> Value {
    let plain = text.replace(',', "");
    if name != "id" && name != "phone" && !plain.is_empty() && plain.parse::<f64>().is_ok_and(f64::is_finite) {
        if let Ok(i) = plain.parse::<i64>() {
            return json!(i);
        }
        if let Ok(f) = plain.parse::<f64>() {
            return json!(f);
        }
    }
    if name == "created_at"
        && let Some(t) = crm_time(text)
    {
        return json!(format_timestamp(t));
    }
    json!(text)
}

/// RFC 3339, or the `YYYY-MM-DD[ HH:MM[:SS]]` CRMs export (taken as UTC).
fn crm_time(text: &str) -> Option<i64> {
    let text = text.trim();
    leadscore_core::time::parse_timestamp(text).or_else(|| {
        let (date, time) = text.split_once(' ').unwrap_or((text, "00:00:00"));
        let time = if time.len() == 5 { format!("{time}:00") } else { time.to_owned() };
        leadscore_core::time::parse_timestamp(&format!("{date}T{time}Z"))
    })
}

/// How many times a request the server refused for now (429, 502–504, a connection error) is sent
/// again before the import gives up.
const ATTEMPTS: u32 = 10;
/// The longest wait between two attempts (a larger `Retry-After` is capped).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Sends a request built by `send` until the server accepts it: a `429`, `502`, `503` or `504` (the
/// server is busy, restarting or its database is down) or a connection error is retried after the
/// `Retry-After` the server gave (seconds), else after 1 s doubling up to a minute, at most
/// [`ATTEMPTS`] times. Returns the final status and body.
fn send_with_retry(
    url: &str,
    mut send: impl FnMut() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> anyhow::Result<(u16, String)> {
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let (retry_after, why) = match send() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.body_mut().read_to_string().unwrap_or_default();
                if !matches!(status, 429 | 502 | 503 | 504) {
                    return Ok((status, text));
                }
                (retry_after, format!("the server answered {status}"))
            }
            Err(e) if attempt < ATTEMPTS => (None, format!("cannot reach {url} ({e})")),
            Err(e) => return Err(e).with_context(|| format!("cannot reach {url}")),
        };
        if attempt == ATTEMPTS {
            bail!("{url}: {why}; gave up after {ATTEMPTS} attempts");
        }
        let pause = retry_after.unwrap_or(wait).min(MAX_WAIT);
        eprintln!("leadscore import: {why}; retrying in {} s", pause.as_secs_f64());
        std::thread::sleep(pause);
        wait = (wait * 2).min(MAX_WAIT);
    }
    bail!("{url}: gave up after {ATTEMPTS} attempts")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A CSV file read whole: its headers and `(line, record)` rows.
type Table = (Vec<String>, Vec<(u64, csv::StringRecord)>);

/// `(line, record)` for each row, with an error naming the line.
fn rows(path: &Path) -> Result<Table, InputError> {
    let (mut reader, headers) = open_csv(path, csv::Trim::All)?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line());
            InputError::new(path, line, None, e.to_string().replace("CSV error: ", ""))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        out.push((line, record));
    }
    Ok((headers, out))
}

pub fn run_import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let overrides = overrides(&args.map)?;
    match (&args.leads, &args.outcomes) {
        (Some(path), _) => import_leads(args, path, &overrides),
        (None, Some(path)) => import_outcomes(args, path, &overrides),
        (None, None) => bail!("give --leads FILE or --outcomes FILE"),
    }
}

fn import_leads(args: &ImportArgs, path: &Path, overrides: &HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let write_key =
        args.write_key.as_deref().context("--write-key (or LEADSCORE_WRITE_KEY) is needed to import leads")?;
    let (headers, records) = rows(path)?;
    let names: Vec<String> = headers.iter().map(|h| trait_name(h, overrides)).collect();
    let id_column = names.iter().position(|n| n == "id").or_else(|| names.iter().position(|n| n == "email"));
    let Some(id_column) = id_column else {
        return Err(InputError::new(
            path,
            Some(1),
            None,
            format!(
                "no lead id column: expected `Record ID`, `Lead ID`, `id` or `Email` (found {}); name one with --map COLUMN=id",
                headers.join(", ")
            ),
        )
        .into());
    };
    // The record id of a CRM export is also kept as the trait a [[sync]] matches records by.
    let crm_id_trait = match headers[id_column].trim().to_lowercase().as_str() {
        "record id" => Some("hubspot_id"),
        "lead id" | "contact id" => Some("salesforce_id"),
        _ => None,
    };
    let now = crate::clock::now();
    let mut messages = Vec::with_capacity(records.len());
    for (line, record) in &records {
        let id = record.get(id_column).unwrap_or("").trim();
        if id.is_empty() {
            return Err(InputError::new(path, Some(*line), Some(&headers[id_column]), "the lead id is empty").into());
        }
        let mut traits = Map::new();
        for (i, cell) in record.iter().enumerate() {
            let name = &names[i];
            if i == id_column || cell.is_empty() || name.is_empty() || name == "id" {
                continue;
            }
            traits.insert(name.clone(), cell_value(name, cell));
        }
        if let Some(name) = crm_id_trait {
            traits.entry(name).or_insert_with(|| json!(id));
        }
        let digest = Sha256::digest(serde_json::to_vec(&json!([id, &traits]))?);
        messages.push(json!({
            "type": "identify",
            "userId": id,
            "traits": traits,
            "timestamp": format_timestamp(now),
            // The same row imported twice counts once; a changed row is a new identify.
            "messageId": format!("import-{}", hex_prefix(&digest)),
            "context": { "library": { "name": "leadscore-import", "version": env!("CARGO_PKG_VERSION") } },
        }));
    }
    let agent = agent();
    let url = format!("{}/v1/batch", args.server.trim_end_matches('/'));
    let bar = crate::progress::bar(messages.len() as u64, "leads", false);
    for chunk in messages.chunks(100) {
        let body = json!({ "batch": chunk, "writeKey": write_key }).to_string();
        let send = || agent.post(&url).header("Content-Type", "application/json").send(body.as_bytes());
        let (status, text) = bar.suspend(|| send_with_retry(&url, send))?;
        if status != 200 {
            bail!("{url} answered {status}: {text}");
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    eprintln!("imported {} leads from {} into {}", messages.len(), path.display(), args.server);
    Ok(ExitCode::SUCCESS)
}

fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// A CRM status as an outcome: `won`/`converted`/`lost`/`disqualified`, and the usual CRM words.
fn outcome_of(text: &str) -> Option<OutcomeKind> {
    OutcomeKind::parse(text).or_else(|| {
        let t = text.trim().to_lowercase();
        Some(match t.as_str() {
            "closed - converted" | "closed won" | "customer" | "closedwon" => OutcomeKind::Won,
            "closed - not converted" | "closed lost" | "closedlost" => OutcomeKind::Lost,
            "unqualified" | "bad timing" | "junk" => OutcomeKind::Disqualified,
            _ => return None,
        })
    })
}

fn import_outcomes(args: &ImportArgs, path: &Path, overrides: &HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let api_key = args.api_key.as_deref().context("--api-key (or LEADSCORE_API_KEY) is needed to import outcomes")?;
    let (headers, records) = rows(path)?;
    let names: Vec<String> = headers
        .iter()
        .map(|h| {
            let n = trait_name(h, overrides);
            match n.as_str() {
                "lead_status" | "lifecycle_stage" if !overrides.values().any(|v| v == "outcome") => {
                    "outcome".to_owned()
                }
                _ => n,
            }
        })
        .collect();
    let column = |name: &str| names.iter().position(|n| n == name);
    let (Some(id_col), Some(outcome_col)) = (column("id").or_else(|| column("email")), column("outcome")) else {
        return Err(InputError::new(
            path,
            Some(1),
            None,
            format!(
                "expected a lead id and an outcome column (`lead_id,outcome,at`, or e.g. `Lead ID` and `Lead Status`), found {}",
                headers.join(", ")
            ),
        )
        .into());
    };
    let at_col = column("at").or_else(|| column("close_date")).or_else(|| column("last_modified_date"));
    let mut outcomes = Vec::new();
    for (line, record) in &records {
        let id = record.get(id_col).unwrap_or("").trim().to_owned();
        let status = record.get(outcome_col).unwrap_or("").trim();
        let Some(kind) = outcome_of(status) else {
            if OutcomeKind::parse(status).is_none() && status.is_empty() {
                continue;
            }
            // Open statuses (New, Working, Open, MQL, …) are not outcomes.
            if matches!(
                status.to_lowercase().as_str(),
                "new"
                    | "open"
                    | "working"
                    | "open - not contacted"
                    | "working - contacted"
                    | "nurturing"
                    | "in progress"
                    | "attempted to contact"
                    | "connected"
                    | "lead"
                    | "subscriber"
                    | "marketingqualifiedlead"
                    | "salesqualifiedlead"
                    | "opportunity"
                    | "mql"
                    | "sql"
                    | "other"
                    | "evangelist"
            ) {
                continue;
            }
            return Err(InputError::new(
                path,
                Some(*line),
                Some(&headers[outcome_col]),
                format!("`{status}` is not an outcome (converted, won, lost, disqualified, or a closed CRM status)"),
            )
            .into());
        };
        let at = match at_col.map(|c| record.get(c).unwrap_or("").trim()).filter(|t| !t.is_empty()) {
            Some(text) => Some(crm_time(text).ok_or_else(|| {
                InputError::new(
                    path,
                    Some(*line),
                    Some(&headers[at_col.unwrap_or(0)]),
                    format!("`{text}` is not a date"),
                )
            })?),
            None => None,
        };
        if id.is_empty() {
            return Err(InputError::new(path, Some(*line), Some(&headers[id_col]), "the lead id is empty").into());
        }
        outcomes.push((id, kind, at));
    }
    let agent = agent();
    let (mut recorded, mut unknown) = (0, 0);
    let bar = crate::progress::bar(outcomes.len() as u64, "outcomes", false);
    for (id, kind, at) in &outcomes {
        let url = format!("{}/api/leads/{}/outcome", args.server.trim_end_matches('/'), percent_encode(id));
        let mut body = json!({ "outcome": kind.as_str() });
        if let Some(at) = at {
            body["at"] = json!(format_timestamp(*at));
        }
        let body = body.to_string();
        let send = || {
            agent
                .post(&url)
                .header("Authorization", &format!("Bearer {api_key}"))
                .header("Content-Type", "application/json")
                .send(body.as_bytes())
        };
        let (status, text) = bar.suspend(|| send_with_retry(&url, send))?;
        match status {
            200 => recorded += 1,
            404 => unknown += 1,
            status => bail!("{url} answered {status}: {text}"),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "imported {recorded} outcomes from {}{}",
        path.display(),
        if unknown > 0 { format!("; {unknown} name leads the server does not know (skipped)") } else { String::new() }
    );
    Ok(ExitCode::SUCCESS)
}

/// The top reasons of a lead in plain words: the three contributions with the most points
/// either way, e.g. `Demo requested (+30); Pricing page (+10); Unsubscribed (−20)`.
pub fn top_reasons(contributions: &Value, n: usize) -> String {
    let pairs = contributions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["rule"].as_str()?, c["points"].as_f64()?)));
    scoring::top_reasons(pairs, n)
        .iter()
        .map(|(rule, points)| {
            let sign = if *points > 0.0 { "+" } else { "−" };
            format!("{rule} ({sign}{})", scoring::format_points(points.abs()))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn run_export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let agent = agent();
    let base = args.server.trim_end_matches('/');
    let mut leads: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/leads?limit=1000&include=contributions,traits");
        if let Some(stage) = &args.stage {
            url.push_str(&format!("&stage={}", percent_encode(stage)));
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let mut response = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", args.api_key))
            .call()
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            bail!("{url} answered {status}: {text}");
        }
        let page: Value = serde_json::from_str(&text).with_context(|| format!("{url}: not JSON"))?;
        leads.extend(page["leads"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let dimensions: Vec<String> =
        leads.first().and_then(|l| l["scores"].as_object()).map(|s| s.keys().cloned().collect()).unwrap_or_default();
    let out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(out);
    let mut header: Vec<String> = vec!["lead_id".into(), "email".into()];
    header.extend(dimensions.iter().map(|d| format!("{d}_score")));
    header.extend(["total", "stage", "grade", "top_reasons", "updated_at"].map(String::from));
    writer.write_record(&header)?;
    for lead in &leads {
        let mut row = vec![
            lead["id"].as_str().unwrap_or("").to_owned(),
            lead["traits"]["email"].as_str().unwrap_or("").to_owned(),
        ];
        row.extend(dimensions.iter().map(|d| lead["scores"][d].as_f64().map(|v| v.to_string()).unwrap_or_default()));
        row.push(lead["total"].as_f64().map(|v| v.to_string()).unwrap_or_default());
        row.push(lead["stage"].as_str().unwrap_or("").to_owned());
        row.push(lead["grade"].as_str().unwrap_or("").to_owned());
        row.push(top_reasons(&lead["contributions"], 3));
        row.push(lead["updated_at"].as_str().unwrap_or("").to_owned());
        writer.write_record(&row)?;
    }
    writer.flush()?;
    if let Some(path) = &args.out {
        eprintln!("exported {} leads to {}", leads.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubspot_and_salesforce_columns_map_to_traits() {
        let none = HashMap::new();
        for (header, name) in [
            ("Record ID", "id"),
            ("Lead ID", "id"),
            ("Job Title", "title"),
            ("Number of Employees", "employees"),
            ("No. of Employees", "employees"),
            ("Lifecycle Stage", "lifecycle_stage"),
            ("Company Name", "company"),
            ("Favourite Colour (2)", "favourite_colour_2"),
        ] {
            assert_eq!(trait_name(header, &none), name, "{header}");
        }
        let map = overrides(&["Favourite Colour (2)=colour".to_owned()]).unwrap_or_default();
        assert_eq!(trait_name("Favourite Colour (2)", &map), "colour");
    }

    #[test]
    fn cells_keep_numbers_and_crm_dates() {
        assert_eq!(cell_value("employees", "1,200"), json!(1200));
        assert_eq!(cell_value("title", "VP Sales"), json!("VP Sales"));
        assert_eq!(cell_value("phone", "0123"), json!("0123"));
        assert_eq!(cell_value("created_at", "2024-03-15 10:22"), json!("2024-03-15T10:22:00Z"));
    }

    #[test]
    fn top_reasons_are_the_largest_either_way() {
        let c = json!([{"rule": "A", "points": 5.0}, {"rule": "B", "points": -20.0}, {"rule": "C", "points": 30.0},
            {"rule": "D", "points": 0.0}, {"rule": "E", "points": 2.5}]);
        assert_eq!(top_reasons(&c, 3), "C (+30); B (−20); A (+5)");
    }

    #[test]
    fn crm_statuses_are_outcomes() {
        assert_eq!(outcome_of("Closed - Converted"), Some(OutcomeKind::Won));
        assert_eq!(outcome_of("Closed - Not Converted"), Some(OutcomeKind::Lost));
        assert_eq!(outcome_of("Unqualified"), Some(OutcomeKind::Disqualified));
        assert_eq!(outcome_of("customer"), Some(OutcomeKind::Won));
        assert_eq!(outcome_of("Working"), None);
    }
}
