//! `leadscore train`: reads the leads (and outcomes or a label column, and optionally events),
//! hands a table of columns to `leadscore_learn::train`, writes the learned model file, and
//! reports cross-validated quality as text, JSON or a self-contained HTML page.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use leadscore_core::time::{Duration, MS_PER_DAY, Millis};
use leadscore_core::{CheckedModel, OutcomeKind};
use leadscore_learn::metrics::bands_by_score;
use leadscore_learn::train::{Algorithm, Boosting, Column, Options, RELIABILITY_BINS, Source, Trained, Values, train};
use serde_json::{Value, json};

use crate::history::{InputFiles, Inputs};
use crate::open_leads::OpenLeads;
use crate::read::Skipped;
use crate::read::leads::IdColumn;
use crate::read::outcomes::read_outcomes;
use leadscore_report::charts as html;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AlgorithmArg {
    Boosted,
    Logistic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OpenLeadsArg {
    Censored,
    Ignore,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["outcomes", "label"])))]
pub struct TrainArgs {
    /// Leads CSV: one row per lead, a header, every column a trait
    #[arg(long)]
    pub(crate) leads: PathBuf,
    /// Events (JSON Lines or Parquet): adds behaviour features (counts of each event name and page family)
    #[arg(long)]
    pub(crate) events: Option<PathBuf>,
    /// Outcomes CSV `lead_id,outcome,at`: converted/won = 1, lost/disqualified = 0
    #[arg(long)]
    outcomes: Option<PathBuf>,
    /// A column of the leads file holding the label (1/0, true/false, yes/no, any case)
    #[arg(long)]
    label: Option<String>,
    /// Columns not to learn from (comma-separated)
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Columns the leakage guard flags that should be used anyway (comma-separated)
    #[arg(long, value_delimiter = ',')]
    allow_leaky: Vec<String>,
    /// Cell values that mean "missing" (comma-separated), e.g. `Select,Unknown`
    #[arg(long, value_delimiter = ',')]
    na_values: Vec<String>,
    /// The lead id column (default: `id` or `lead_id`, else row numbers)
    #[arg(long)]
    pub(crate) id_column: Option<String>,
    /// Cross-validation folds (stratified)
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the fold assignment
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How points are learned: `boosted` (shape functions per column and pairs, bagged) or
    /// `logistic` (binned indicators in one regularised logistic regression)
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Boosted)]
    algorithm: AlgorithmArg,
    /// With --algorithm logistic: the L2 penalty per rule weight (default: chosen by inner cross-validation)
    #[arg(long)]
    lambda: Option<f64>,
    /// At most this many learned interactions: pairs of columns (boosted, default 30) or
    /// two-condition rules (logistic, default 12); 0: none
    #[arg(long)]
    interactions: Option<usize>,
    /// Boosted: outer bags averaged (each with its own early-stopping split)
    #[arg(long, default_value_t = Boosting::default().bags)]
    bags: usize,
    /// Boosted: the learning rate of each step
    #[arg(long, default_value_t = Boosting::default().learning_rate)]
    learning_rate: f64,
    /// Boosted: the first rounds cut each column at a random place (smoother shapes)
    #[arg(long, default_value_t = Boosting::default().smoothing_rounds)]
    smoothing_rounds: usize,
    /// Boosted: fine bins of a numeric column
    #[arg(long, default_value_t = Boosting::default().max_bins)]
    max_bins: usize,
    /// Boosted: a column takes a step only when its best split gains this much (score statistic)
    #[arg(long, default_value_t = Boosting::default().min_step_gain)]
    min_step_gain: f64,
    /// Boosted: coarse bins of each column of a pair
    #[arg(long, default_value_t = Boosting::default().pair_bins)]
    pair_bins: usize,
    /// Boosted: neighbouring segments of a column whose points differ by less than this merge
    /// into one rule (larger: fewer rules)
    #[arg(long, default_value_t = Boosting::default().merge_points)]
    merge_points: f64,
    /// Boosted: a column's segment with fewer training leads merges into its closer neighbour
    /// (no rule stands on a handful of leads)
    #[arg(long, default_value_t = Boosting::default().min_segment_rows)]
    min_segment_rows: usize,
    /// With --outcomes and --events: behaviour is counted up to this long before each outcome
    #[arg(long, default_value = "1d")]
    gap: String,
    /// With --label and --events: count behaviour up to this time (RFC 3339; default now). With
    /// --outcomes: the instant open leads are seen at (default: the latest outcome or creation
    /// time in the files)
    #[arg(long)]
    pub(crate) as_of: Option<String>,
    /// With --outcomes, leads without an outcome are still open: `censored` (default) counts each
    /// as not decided by its age in the probability calibration; `ignore` leaves them out
    #[arg(long, value_enum, default_value_t = OpenLeadsArg::Censored)]
    open_leads: OpenLeadsArg,
    /// The leads file's creation time column (RFC 3339), for open leads' ages (default:
    /// `created_at`, `createdate`, `Create Date` or `Created Date` if there is one, else each
    /// lead's first event)
    #[arg(long)]
    created_column: Option<String>,
    /// Where to write the model file
    #[arg(long)]
    out: PathBuf,
    /// Also write a self-contained HTML report here
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write every training row's out-of-fold probability (CSV: row,lead_id,fold,label,probability)
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Also write the table learned from (CSV: lead_id, label, then every column the learner saw:
    /// the leads file's traits and, with --events, the behaviour counts at each lead's cutoff), to
    /// compare with other tools on the same rows (before the leakage guard and the skipped name columns)
    #[arg(long)]
    features: Option<PathBuf>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// `[model] name` (default: the output file's stem)
    #[arg(long)]
    name: Option<String>,
}

/// The labelled rows of the leads file, as columns.
pub(crate) struct Table {
    pub ids: Vec<String>,
    pub labels: Vec<bool>,
    /// The time behaviour is counted up to, per row.
    pub cutoffs: Vec<Millis>,
    /// With --outcomes: the time of the outcome that decided each row.
    pub decided_at: Vec<Millis>,
    /// Each row's creation time (the created column's value), if known.
    pub created: Vec<Option<Millis>>,
    /// With --outcomes: the leads without an outcome (still open), with their creation time.
    pub open: Vec<(String, Option<Millis>)>,
    columns: Vec<Column>,
    /// Rows read, and rows without a label or outcome (not used).
    read: usize,
    unlabelled: usize,
}

fn parse_label(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "t" | "1.0" => Some(true),
        "0" | "false" | "no" | "n" | "f" | "0.0" => Some(false),
        _ => None,
    }
}

fn read_table(args: &TrainArgs, now: Millis) -> anyhow::Result<Table> {
    let path = &args.leads;
    let file = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(crate::read::sniff_delimiter(path))
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("{file}: cannot read"))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("{file}:1: cannot read the header"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    if headers.iter().all(String::is_empty) {
        bail!("{file}: the file is empty (no header)");
    }
    let id_index =
        match &args.id_column {
            Some(name) => {
                Some(headers.iter().position(|h| h == name).with_context(|| {
                    format!("{file}:1: no lead id column `{name}` (columns: {})", headers.join(", "))
                })?)
            }
            None => headers.iter().position(|h| h == "id").or_else(|| {
                headers.iter().position(|h| h.eq_ignore_ascii_case("id") || h.eq_ignore_ascii_case("lead_id"))
            }),
        };
    let label_index = match &args.label {
        Some(label) => Some(
            headers
                .iter()
                .position(|h| h == label)
                .with_context(|| format!("{file}:1: no label column `{label}` (columns: {})", headers.join(", ")))?,
        ),
        None => None,
    };
    for excluded in &args.exclude {
        if !headers.contains(excluded) {
            eprintln!("warning: --exclude: no column `{excluded}` in {file}");
        }
    }
    let created_index = match &args.created_column {
        Some(name) => Some(headers.iter().position(|h| h == name).with_context(|| {
            format!("{file}:1: no creation time column `{name}` (columns: {})", headers.join(", "))
        })?),
        None => headers.iter().position(|h| {
            ["created_at", "createdate", "create date", "created date"].contains(&h.to_ascii_lowercase().as_str())
        }),
    };
    let feature_columns: Vec<usize> = (0..headers.len())
        .filter(|&c| Some(c) != id_index && Some(c) != label_index && Some(c) != created_index)
        .filter(|&c| !args.exclude.contains(&headers[c]))
        .filter(|&c| !headers[c].is_empty())
        .collect();
    let na: HashSet<&str> = args.na_values.iter().map(|v| v.trim()).collect();

    // With --outcomes: each lead's label and the time of the outcome that decided it.
    let outcomes = match &args.outcomes {
        Some(path) => {
            let mut skipped = Skipped::new(false);
            let outcomes = read_outcomes(path, &mut skipped)?;
            let mut decided: HashMap<String, (bool, Millis)> = HashMap::new();
            for (id, list) in outcomes {
                let converted = list
                    .iter()
                    .filter(|o| matches!(o.kind, OutcomeKind::Converted | OutcomeKind::Won))
                    .map(|o| o.at)
                    .min();
                let lost = list.iter().map(|o| o.at).min();
                if let Some(at) = converted {
                    decided.insert(id, (true, at));
                } else if let Some(at) = lost {
                    decided.insert(id, (false, at));
                }
            }
            Some(decided)
        }
        None => None,
    };
    let gap = Duration::parse(&args.gap).map_err(|e| anyhow::anyhow!("--gap: `{}`: {e}", args.gap))?.as_millis();

    let mut table = Table {
        ids: Vec::new(),
        labels: Vec::new(),
        cutoffs: Vec::new(),
        decided_at: Vec::new(),
        created: Vec::new(),
        open: Vec::new(),
        columns: Vec::new(),
        read: 0,
        unlabelled: 0,
    };
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); feature_columns.len()];
    let mut seen_ids: HashSet<String> = HashSet::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{file}: cannot read row {}", row + 2))?;
        let line = record.position().map_or(row as u64 + 2, |p| p.line());
        table.read += 1;
        let id = match id_index {
            Some(i) => record.get(i).unwrap_or("").to_owned(),
            None => (row + 1).to_string(),
        };
        if id.is_empty() {
            bail!("{file}:{line}: empty lead id");
        }
        if !seen_ids.insert(id.clone()) {
            bail!("{file}:{line}: lead `{id}` appears twice");
        }
        let created = created_index.and_then(|c| record.get(c)).and_then(leadscore_core::time::parse_timestamp);
        let (label, cutoff, decided_at) = match (label_index, &outcomes) {
            (Some(i), _) => {
                let cell = record.get(i).unwrap_or("");
                if cell.is_empty() || na.contains(cell) {
                    table.unlabelled += 1;
                    continue;
                }
                let label = parse_label(cell).with_context(|| {
                    format!(
                        "{file}:{line}: field `{}`: `{cell}` is not a label (use 1/0, true/false or yes/no)",
                        headers[i]
                    )
                })?;
                (label, now, now)
            }
            (None, Some(decided)) => match decided.get(&id) {
                Some(&(label, at)) => (label, at - gap, at),
                None => {
                    table.unlabelled += 1;
                    table.open.push((id, created));
                    continue;
                }
            },
            (None, None) => bail!("give --outcomes or --label"),
        };
        table.ids.push(id);
        table.labels.push(label);
        table.cutoffs.push(cutoff);
        table.decided_at.push(decided_at);
        table.created.push(created);
        for (k, &c) in feature_columns.iter().enumerate() {
            let cell = record.get(c).unwrap_or("");
            cells[k].push((!cell.is_empty() && !na.contains(cell)).then(|| cell.to_owned()));
        }
    }
    if table.read == 0 {
        bail!("{file}: no rows after the header");
    }
    for (k, &c) in feature_columns.iter().enumerate() {
        table.columns.push(Column {
            name: headers[c].clone(),
            source: Source::Trait,
            values: Values::Text(std::mem::take(&mut cells[k])),
        });
    }
    Ok(table)
}

/// The values `train` reads of each event (slots of [`CheckedModel::keeping`]'s plan, in this
/// order): enough to key it ([`event_key`]).
const EVENT_FIELDS: [&[&str]; 3] = [&["type"], &["event"], &["properties", "path"]];

/// What an event counts as: a track event's name, or a page view's path family (from its values
/// at [`EVENT_FIELDS`]).
fn event_key(values: &[Option<Value>]) -> Option<(String, String, String)> {
    let text = |i: usize| values.get(i).and_then(Option::as_ref).and_then(Value::as_str);
    match text(0) {
        Some("track") => {
            let name = text(1)?;
            let on = format!("event.type == \"track\" && event.event == {}", cel_string(name));
            Some((format!("track:{name}"), name.to_owned(), on))
        }
        Some("page") => {
            let path = text(2)?;
            let family = path_family(path);
            let on = if family == "/" {
                "event.type == \"page\" && event.properties.path == \"/\"".to_owned()
            } else {
                format!(
                    "event.type == \"page\" && (event.properties.path == {f} || event.properties.path.startsWith({s}))",
                    f = cel_string(&family),
                    s = cel_string(&format!("{family}/"))
                )
            };
            Some((format!("page:{family}"), format!("Page {family}"), on))
        }
        _ => None,
    }
}

/// `/blog/post-1` → `/blog`; `/` and `` → `/`.
fn path_family(path: &str) -> String {
    match path.trim_start_matches('/').split(['/', '?', '#']).next() {
        Some(first) if !first.is_empty() => format!("/{first}"),
        _ => "/".to_owned(),
    }
}

fn cel_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

const WINDOWS: [u32; 2] = [90, 7];
const MAX_EVENT_KEYS: usize = 30;

/// Behaviour columns: for each frequent event name and page family, how many such events each
/// lead had in the 90 and 7 days before its cutoff (events seen after the cutoff do not exist).
/// The events are read once into compact events that keep [`EVENT_FIELDS`], folded per lead, and
/// read at the lead's cutoff, as scoring reads a lead's state.
fn behaviour_columns(events: &Path, table: &Table) -> anyhow::Result<Vec<Column>> {
    let mut skipped = Skipped::new(true);
    let files = InputFiles { leads: None, events: Some(events), outcomes: None, id_column: IdColumn::Default };
    let model = CheckedModel::keeping(&EVENT_FIELDS);
    let mut inputs = Inputs::read(&files, &model, &mut skipped)?;
    if let Some(summary) = skipped.summary() {
        eprintln!("{summary}");
    }
    let row_of: HashMap<&str, usize> = table.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    // Per lead: key -> counts per window.
    let per_lead = inputs.map_compact("features", |state, _| {
        let &row = row_of.get(state.id())?;
        let cutoff = table.cutoffs[row];
        let mut counts: HashMap<String, (String, String, [u32; 2])> = HashMap::new();
        for (at, values) in state.kept(cutoff) {
            let Some((key, label, on)) = event_key(values) else {
                continue;
            };
            let entry = counts.entry(key).or_insert((label, on, [0, 0]));
            for (w, days) in WINDOWS.iter().enumerate() {
                if at > cutoff - i64::from(*days) * MS_PER_DAY {
                    entry.2[w] += 1;
                }
            }
        }
        Some((row, counts))
    })?;
    // Keys by how many labelled leads have them.
    let mut leads_with: BTreeMap<String, (usize, String, String)> = BTreeMap::new();
    for (_, found) in per_lead.iter() {
        if let Some((_, counts)) = found {
            for (key, (label, on, c)) in counts {
                if c[0] > 0 {
                    leads_with.entry(key.clone()).or_insert((0, label.clone(), on.clone())).0 += 1;
                }
            }
        }
    }
    let min_leads = (table.labels.len() / 100).max(5);
    let mut keys: Vec<(String, usize, String, String)> =
        leads_with.into_iter().filter(|(_, (n, _, _))| *n >= min_leads).map(|(k, (n, l, o))| (k, n, l, o)).collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    keys.truncate(MAX_EVENT_KEYS);
    let mut columns = Vec::new();
    for (key, _, label, on) in &keys {
        for (w, days) in WINDOWS.iter().enumerate() {
            let mut values = vec![Some(0.0); table.labels.len()];
            for (_, found) in per_lead.iter() {
                if let Some((row, counts)) = found
                    && let Some((_, _, c)) = counts.get(key)
                {
                    values[*row] = Some(f64::from(c[w]));
                }
            }
            columns.push(Column {
                name: format!("{label} ({days}d)"),
                source: Source::EventCount { on: on.clone(), label: label.clone(), within_days: *days },
                values: Values::Number(values),
            });
        }
    }
    Ok(columns)
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    if args.folds < 2 {
        bail!("--folds must be at least 2");
    }
    let now = crate::score::parse_as_of(args.as_of.as_deref())?;
    let mut table = read_table(args, now)?;
    let file = args.leads.display().to_string();
    if table.labels.is_empty() {
        match &args.label {
            Some(label) => bail!("{file}: no labelled rows (column `{label}` is empty on every row)"),
            None => bail!(
                "{file}: no lead has an outcome in the outcomes file: nothing to learn from (outcomes name leads by \
                 the leads file's id column{})",
                if args.id_column.is_none() { "; name it with --id-column if it is not `id`" } else { "" }
            ),
        }
    }
    let positives = table.labels.iter().filter(|&&y| y).count();
    if positives == 0 || positives == table.labels.len() {
        let class = if positives == 0 { "not converted (0)" } else { "converted (1)" };
        bail!(
            "{file}: all {} labelled rows are {class}: training needs both converted and non-converted leads",
            table.labels.len()
        );
    }
    if let Some(events) = &args.events {
        let behaviour = behaviour_columns(events, &table)?;
        eprintln!("{} behaviour columns from {}", behaviour.len(), events.display());
        table.columns.extend(behaviour);
    }
    let censor = args.outcomes.is_some() && args.open_leads == OpenLeadsArg::Censored && !table.open.is_empty();
    if table.unlabelled > 0 && !censor {
        eprintln!("note: {} of {} leads have no label or outcome and are not used", table.unlabelled, table.read);
    }
    let name = args
        .name
        .clone()
        .or_else(|| args.out.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .unwrap_or_else(|| "predicted".to_owned());
    let source = Path::new(&file).file_name().and_then(|f| f.to_str()).unwrap_or(&file).to_owned();
    let target = match &args.label {
        Some(label) => format!("label `{label}`"),
        None => "outcomes".to_owned(),
    };
    let options = Options {
        algorithm: match args.algorithm {
            AlgorithmArg::Boosted => Algorithm::Boosted,
            AlgorithmArg::Logistic => Algorithm::Logistic,
        },
        folds: args.folds,
        seed: args.seed,
        allow_leaky: args.allow_leaky.clone(),
        boosting: Boosting {
            bags: args.bags.max(1),
            learning_rate: args.learning_rate,
            smoothing_rounds: args.smoothing_rounds,
            max_bins: args.max_bins.clamp(2, 4096),
            pair_bins: args.pair_bins.clamp(2, 256),
            merge_points: args.merge_points.max(0.0),
            min_step_gain: args.min_step_gain.max(0.0),
            min_segment_rows: args.min_segment_rows,
            interactions: args.interactions.unwrap_or(Boosting::default().interactions),
            ..Boosting::default()
        },
        lambda: args.lambda,
        interactions: args.interactions.unwrap_or(Options::default().interactions),
        name,
        description: format!("scorecard learned from {source} ({target})"),
        ..Options::default()
    };
    let started = Instant::now();
    let mut trained = train(&table.columns, &table.labels, &options).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let open = if censor { crate::open_leads::calibrate(args, &table, &mut trained)? } else { None };
    match &open {
        Some(open) => eprintln!("{}", open_leads_text(open)),
        None if censor => eprintln!(
            "note: the {} open leads are not used: none has a creation time (--created-column) or an event to \
             date it by",
            table.open.len()
        ),
        None => {}
    }
    let seconds = started.elapsed().as_secs_f64();
    for warning in &trained.warnings {
        eprintln!("warning: {warning}");
    }
    if let Err(diagnostics) = CheckedModel::from_source(&trained.model) {
        let messages: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
        bail!("internal error: the learned model does not check: {}", messages.join("; "));
    }
    std::fs::write(&args.out, &trained.model).with_context(|| format!("{}: cannot write", args.out.display()))?;
    if let Some(path) = &args.predictions {
        let mut out = String::from("row,lead_id,fold,label,probability\n");
        for (i, id) in table.ids.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                i + 1,
                csv_cell(id),
                trained.cv.fold_of_row[i],
                u8::from(table.labels[i]),
                trained.cv.probabilities[i]
            );
        }
        std::fs::write(path, out).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if let Some(path) = &args.features {
        std::fs::write(path, features_csv(&table)).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report_html(&trained, &table, open.as_ref(), args, seconds))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if args.json {
        println!("{}", summary_json(&trained, &table, open.as_ref(), args, seconds));
    } else {
        print!("{}", summary_text(&trained, args, seconds));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line on what counting the open leads did.
fn open_leads_text(open: &OpenLeads) -> String {
    format!(
        "open leads: {} of {} counted as not decided by their age (as of {}); {:.1}% of leads ever convert{}; the \
         open leads' mean probability is {:.1}% ({:.1}% with the decided leads alone)",
        open.used,
        open.count,
        leadscore_core::time::format_timestamp(open.as_of),
        100.0 * open.rate,
        open.median_days.map_or(String::new(), |d| format!(", half of them within {d:.0} days")),
        100.0 * open.mean_open,
        100.0 * open.mean_open_before
    )
}

/// The labelled rows as the learner saw them (`--features`): lead id, label, one column each.
fn features_csv(table: &Table) -> String {
    let mut out = String::from("lead_id,label");
    for column in &table.columns {
        out.push(',');
        out.push_str(&csv_cell(&column.name));
    }
    out.push('\n');
    for (i, id) in table.ids.iter().enumerate() {
        out.push_str(&csv_cell(id));
        out.push_str(if table.labels[i] { ",1" } else { ",0" });
        for column in &table.columns {
            out.push(',');
            match &column.values {
                Values::Text(cells) => out.push_str(&cells[i].as_deref().map(csv_cell).unwrap_or_default()),
                Values::Number(cells) => {
                    if let Some(x) = cells[i] {
                        let _ = write!(out, "{x}");
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

fn signed(points: f64) -> String {
    if points > 0.0 { format!("+{points:.1}") } else { format!("{points:.1}") }
}

fn summary_text(trained: &Trained, args: &TrainArgs, seconds: f64) -> String {
    let mut out = String::new();
    let cv = &trained.cv;
    let _ = writeln!(
        out,
        "trained on {} leads ({} converted, {:.1}%) from {}; {} feature columns",
        trained.rows,
        trained.positives,
        100.0 * trained.positives as f64 / trained.rows.max(1) as f64,
        args.leads.display(),
        trained.columns_used.len()
    );
    let _ = writeln!(
        out,
        "{}-fold cross-validation (stratified, seed {}): ROC AUC {:.3} ± {:.3}, log-loss {:.3} ± {:.3}",
        cv.folds,
        args.seed,
        cv.auc_mean(),
        cv.auc_sd(),
        cv.log_loss_mean(),
        cv.log_loss_sd()
    );
    let _ = writeln!(
        out,
        "calibration on the held-out folds: expected calibration error {:.3} over {RELIABILITY_BINS} bins",
        cv.calibration_error()
    );
    let _ = writeln!(
        out,
        "wrote {}: {} rules; probability = 1/(1+e^-({:.4} + {:.5} × total)){}; {:.2} s",
        args.out.display(),
        trained.rules.len(),
        trained.intercept,
        trained.slope,
        if args.algorithm == AlgorithmArg::Logistic { format!("; λ = {}", trained.lambda) } else { String::new() },
        seconds
    );
    let rate = trained.positives as f64 / trained.rows.max(1) as f64;
    if !(0.1..=0.9).contains(&rate) {
        let _ = writeln!(
            out,
            "note: imbalanced classes ({:.1}% converted): rows are not re-weighted, so probabilities stay calibrated \
             to that rate; judge the model by ROC AUC and log-loss, not accuracy",
            100.0 * rate
        );
    }
    let _ = writeln!(out, "top factors (spread of points across leads):");
    for (i, factor) in trained.factors.iter().take(8).enumerate() {
        let _ = writeln!(out, "{:>2}. {}  (±{:.1} points)", i + 1, factor.name, factor.spread);
        let mut rules: Vec<usize> = factor.rules.clone();
        rules.sort_by(|&a, &b| trained.rules[b].points.total_cmp(&trained.rules[a].points));
        for &r in rules.iter().take(6) {
            let rule = &trained.rules[r];
            let _ = writeln!(
                out,
                "      {:>6}  {}  ({} leads, {:.0}% converted)",
                signed(rule.points),
                rule.name,
                rule.rows,
                100.0 * rule.converted as f64 / rule.rows.max(1) as f64
            );
        }
        if rules.len() > 6 {
            let _ = writeln!(out, "      … {} more rules", rules.len() - 6);
        }
    }
    out
}

fn summary_json(trained: &Trained, table: &Table, open: Option<&OpenLeads>, args: &TrainArgs, seconds: f64) -> Value {
    let cv = &trained.cv;
    json!({
        "model": args.out.display().to_string(),
        "rows": trained.rows,
        "positives": trained.positives,
        "unlabelled": table.unlabelled,
        "columns": trained.columns_used,
        "warnings": trained.warnings,
        "train_seconds": seconds,
        "cv": {
            "folds": cv.folds,
            "seed": args.seed,
            "auc": cv.auc,
            "auc_mean": cv.auc_mean(),
            "auc_sd": cv.auc_sd(),
            "log_loss": cv.log_loss,
            "log_loss_mean": cv.log_loss_mean(),
            "log_loss_sd": cv.log_loss_sd(),
            "expected_calibration_error": cv.calibration_error(),
            "reliability": cv.reliability.iter().map(|b| json!({
                "predicted": b.predicted, "observed": b.observed, "leads": b.leads,
            })).collect::<Vec<_>>(),
        },
        "open_leads": open.map(|o| json!({
            "open": o.count,
            "used": o.used,
            "as_of": leadscore_core::time::format_timestamp(o.as_of),
            "conversion_rate": o.rate,
            "median_days_to_convert": o.median_days,
            "mean_probability": o.mean_open,
            "mean_probability_decided_only": o.mean_open_before,
            "calibration_decided_only": {"intercept": o.before.intercept, "slope": o.before.slope},
        })),
        "calibration": {"intercept": trained.intercept, "slope": trained.slope},
        "lambda": trained.lambda,
        "leaky": trained.leaky.iter().map(|l| json!({
            "column": l.column,
            "auc": l.auc,
            "allowed": args.allow_leaky.contains(&l.column),
            "evidence": l.evidence(),
        })).collect::<Vec<_>>(),
        "factors": trained.factors.iter().map(|f| json!({
            "name": f.name,
            "spread": f.spread,
            "kind": if pair_table(trained, f).is_some() { "pair" } else { "column" },
            "shape": f.rules.iter().map(|&r| json!({
                "segment": trained.rules[r].name,
                "points": trained.rules[r].points,
                "leads": trained.rules[r].rows,
                "converted": trained.rules[r].converted,
            })).collect::<Vec<_>>(),
            "table": pair_table(trained, f).map(|(rows, columns, cells)| json!({
                "rows": rows, "columns": columns, "points": cells,
            })),
            "rules": f.rules.iter().map(|&r| trained.rules[r].name.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "rules": trained.rules.iter().map(|r| json!({
            "name": r.name,
            "condition": r.condition,
            "points": r.points,
            "rows": r.rows,
            "converted": r.converted,
        })).collect::<Vec<_>>(),
    })
}

/// (mean predicted, observed rate) of `bands` equal-count groups of rows sorted by probability.
/// A pair factor's rules as a table: its first column's segments (rows), its second column's
/// (columns), and each cell's points (`None`: no rule, 0 points). `None` for a one-column factor.
#[expect(clippy::type_complexity, reason = "rows, columns and cells of one table")]
fn pair_table(
    trained: &Trained,
    factor: &leadscore_learn::train::Factor,
) -> Option<(Vec<String>, Vec<String>, Vec<Vec<Option<f64>>>)> {
    let rules: Vec<&leadscore_learn::train::LearnedRule> = factor.rules.iter().map(|&r| &trained.rules[r]).collect();
    if rules.is_empty() || rules.iter().any(|r| r.parts.len() != 2) {
        return None;
    }
    let mut rows: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for rule in &rules {
        if !rows.contains(&rule.parts[0]) {
            rows.push(rule.parts[0].clone());
        }
        if !columns.contains(&rule.parts[1]) {
            columns.push(rule.parts[1].clone());
        }
    }
    let mut cells = vec![vec![None; columns.len()]; rows.len()];
    for rule in &rules {
        let r = rows.iter().position(|x| *x == rule.parts[0])?;
        let c = columns.iter().position(|x| *x == rule.parts[1])?;
        cells[r][c] = Some(rule.points);
    }
    Some((rows, columns, cells))
}

fn report_html(trained: &Trained, table: &Table, open: Option<&OpenLeads>, args: &TrainArgs, seconds: f64) -> String {
    let cv = &trained.cv;
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"muted\">{} leads from {} ({} converted, {:.1}%), {} feature columns; model written to {}</p>",
        trained.rows,
        html::escape(&args.leads.display().to_string()),
        trained.positives,
        100.0 * trained.positives as f64 / trained.rows.max(1) as f64,
        trained.columns_used.len(),
        html::escape(&args.out.display().to_string())
    );
    body.push_str("<h2>Cross-validated quality</h2>");
    let mut rows: Vec<Vec<String>> = cv
        .auc
        .iter()
        .zip(&cv.log_loss)
        .enumerate()
        .map(|(i, (a, l))| vec![format!("fold {}", i + 1), format!("{a:.3}"), format!("{l:.3}")])
        .collect();
    rows.push(vec![
        "mean ± sd".into(),
        format!("{:.3} ± {:.3}", cv.auc_mean(), cv.auc_sd()),
        format!("{:.3} ± {:.3}", cv.log_loss_mean(), cv.log_loss_sd()),
    ]);
    body.push_str(&html::table(&["", "ROC AUC", "log-loss"], &rows));
    let _ = write!(
        body,
        "<p class=\"muted\">{}-fold stratified cross-validation, seed {}; training took {seconds:.2} s. Probabilities are \
         out-of-fold.</p>",
        cv.folds, args.seed
    );
    let bands = bands_by_score(&cv.probabilities, &table.labels, 10);
    let bars: Vec<(String, f64)> = bands.iter().map(|b| (format!("{}", b.band), b.conversion_rate)).collect();
    body.push_str("<div class=\"grid\">");
    body.push_str(&html::bar_chart(
        "Conversion rate by decile of out-of-fold probability (1 = highest)",
        &bars,
        "decile",
        "converted",
        true,
    ));
    let converted: Vec<f64> =
        cv.probabilities.iter().zip(&table.labels).filter(|(_, y)| **y).map(|(p, _)| *p).collect();
    let not: Vec<f64> = cv.probabilities.iter().zip(&table.labels).filter(|(_, y)| !**y).map(|(p, _)| *p).collect();
    body.push_str(&html::histogram(
        "Out-of-fold probability by outcome",
        &[("converted".into(), converted), ("not converted".into(), not)],
        20,
        "probability",
    ));
    let bins = &cv.reliability;
    let top = bins.iter().map(|b| b.predicted.max(b.observed)).fold(0.0, f64::max);
    body.push_str(&html::line_chart(
        &format!(
            "Reliability: observed conversion against mean predicted probability, per tenth (expected calibration \
             error {:.3})",
            cv.calibration_error()
        ),
        &[
            ("out-of-fold".into(), bins.iter().map(|b| (b.predicted, b.observed)).collect()),
            ("perfectly calibrated".into(), vec![(0.0, 0.0), (top, top)]),
        ],
        "predicted probability",
        "converted",
    ));
    body.push_str("</div>");
    if let Some(open) = open {
        let _ = write!(body, "<h2>Open leads</h2><p>{}</p>", html::escape(&open_leads_text(open)));
        body.push_str(
            "<p class=\"muted\">The reliability diagram above is on the decided leads of the held-out folds, with \
             the calibration from decided leads alone; the model file's calibration also counts the open leads, so its \
             probabilities are those of the whole population being scored.</p>",
        );
    }
    body.push_str("<h2>Top factors</h2>");
    let factor_rows: Vec<Vec<String>> = trained
        .factors
        .iter()
        .map(|f| vec![f.name.clone(), format!("{:.1}", f.spread), f.rules.len().to_string()])
        .collect();
    body.push_str(&html::table(&["factor", "spread (points)", "rules"], &factor_rows));
    body.push_str("<h2>Learned shapes</h2>");
    body.push_str(
        "<p class=\"muted\">Each column's points by segment (other values, missing ones and categories not seen in \
         training: 0), and each learned pair as a table of points; the twelve that move scores most.</p>",
    );
    body.push_str("<div class=\"grid\">");
    for factor in trained.factors.iter().take(12) {
        match pair_table(trained, factor) {
            Some((rows, columns, cells)) => {
                let mut table_rows: Vec<Vec<String>> = Vec::new();
                for (r, row) in rows.iter().enumerate() {
                    let mut line = vec![row.clone()];
                    line.extend(cells[r].iter().map(|c| c.map_or(String::new(), signed)));
                    table_rows.push(line);
                }
                let mut header: Vec<&str> = vec![factor.name.as_str()];
                header.extend(columns.iter().map(String::as_str));
                let _ = write!(body, "<div>{}</div>", html::table(&header, &table_rows));
            }
            None => {
                let bars: Vec<(String, f64)> =
                    factor.rules.iter().map(|&r| (trained.rules[r].name.clone(), trained.rules[r].points)).collect();
                body.push_str(&html::points_chart(&format!("{}: points by segment", factor.name), &bars));
            }
        }
    }
    body.push_str("</div>");
    if !trained.leaky.is_empty() {
        body.push_str("<h2>Leaky columns</h2>");
        let rows: Vec<Vec<String>> = trained
            .leaky
            .iter()
            .map(|l| {
                let used = if args.allow_leaky.contains(&l.column) { "used (--allow-leaky)" } else { "left out" };
                vec![l.column.clone(), used.to_owned(), l.evidence()]
            })
            .collect();
        body.push_str(&html::table(&["column", "", "evidence"], &rows));
    }
    body.push_str("<h2>Rules</h2>");
    let rule_rows: Vec<Vec<String>> = trained
        .factors
        .iter()
        .flat_map(|f| f.rules.iter())
        .map(|&r| {
            let rule = &trained.rules[r];
            vec![
                rule.name.clone(),
                signed(rule.points),
                rule.rows.to_string(),
                format!("{:.1}%", 100.0 * rule.converted as f64 / rule.rows.max(1) as f64),
            ]
        })
        .collect();
    body.push_str(&html::table(&["rule", "points", "leads", "converted"], &rule_rows));
    let _ = write!(
        body,
        "<p class=\"muted\">probability = 1 / (1 + e^-({:.4} + {:.5} × total)). Missing values and categories not \
         seen in training match no rule.</p>",
        trained.intercept, trained.slope
    );
    if !trained.warnings.is_empty() {
        body.push_str("<h2>Notes</h2><ul>");
        for w in &trained.warnings {
            let _ = write!(body, "<li>{}</li>", html::escape(w));
        }
        body.push_str("</ul>");
    }
    html::page("Leadscore training report", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_in_any_case_and_other_values_do_not() {
        for yes in ["1", "true", "TRUE", "Yes", "yes", "1.0"] {
            assert_eq!(parse_label(yes), Some(true), "{yes}");
        }
        for no in ["0", "false", "False", "NO", "no", "0.0"] {
            assert_eq!(parse_label(no), Some(false), "{no}");
        }
        assert_eq!(parse_label("maybe"), None);
        assert_eq!(parse_label("2"), None);
    }

    #[test]
    fn page_paths_group_by_their_first_segment() {
        assert_eq!(path_family("/pricing/enterprise"), "/pricing");
        assert_eq!(path_family("/pricing"), "/pricing");
        assert_eq!(path_family("/blog?x=1"), "/blog");
        assert_eq!(path_family("/"), "/");
        assert_eq!(path_family(""), "/");
    }

    #[test]
    fn events_are_keyed_by_track_name_or_page_family() {
        // As `train` reads them: the values its plan keeps of each message.
        let fields = CheckedModel::keeping(&EVENT_FIELDS).plan.fields;
        let key_of = |message: Value| event_key(&fields.extract(&message));
        let (key, label, on) = key_of(json!({"type": "track", "event": "Demo \"Booked\""})).unwrap();
        assert_eq!((key.as_str(), label.as_str()), ("track:Demo \"Booked\"", "Demo \"Booked\""));
        assert_eq!(on, r#"event.type == "track" && event.event == "Demo \"Booked\"""#);
        let (key, _, on) = key_of(json!({"type": "page", "properties": {"path": "/docs/start"}})).unwrap();
        assert_eq!(key, "page:/docs");
        assert!(on.contains(r#"event.properties.path.startsWith("/docs/")"#), "{on}");
        assert!(key_of(json!({"type": "identify"})).is_none());
        assert!(key_of(json!({"type": "track"})).is_none());
    }
}
