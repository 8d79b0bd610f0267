//! `leadscore train --outcomes`: the leads still open, censored at their age, in the probability
//! calibration (`leadscore_learn::survival`). The learned model scores every lead as `score`
//! would: a decided lead as of its training cutoff, an open lead as of the data's end. The
//! conversion and loss curves come from every lead's creation time, outcome and age; the
//! calibration of the model file is then the one of maximum likelihood over both.

use std::collections::HashMap;

use anyhow::Context;
use leadscore_core::CheckedModel;
use leadscore_core::time::{MS_PER_DAY, Millis};
use leadscore_learn::survival::{Calibration, ConversionCurve, calibrate_censored};
use leadscore_learn::train::Trained;

use crate::history::{InputFiles, Inputs};
use crate::read::Skipped;
use crate::read::leads::IdColumn;
use crate::train::{Table, TrainArgs};

/// What counting the open leads did.
#[derive(Debug, Clone)]
pub(crate) struct OpenLeads {
    /// Open leads, and those of them with a known age (the others are left out).
    pub count: usize,
    pub used: usize,
    /// The instant the open leads are seen at.
    pub as_of: Millis,
    /// The share of all leads that ever convert, and the delay by which half the buyers have.
    pub rate: f64,
    pub median_days: Option<f64>,
    /// The calibration from the decided leads alone.
    pub before: Calibration,
    /// The mean probability of the open leads with the new calibration, and with `before`.
    pub mean_open: f64,
    pub mean_open_before: f64,
}

/// Refits `trained`'s calibration (its numbers and its model file) with the open leads censored.
/// `None` when no open lead has a known age or nothing converted.
pub(crate) fn calibrate(args: &TrainArgs, table: &Table, trained: &mut Trained) -> anyhow::Result<Option<OpenLeads>> {
    let as_of = match args.as_of.as_deref() {
        Some(text) => crate::score::parse_as_of(Some(text))?,
        None => {
            let created = table.created.iter().chain(table.open.iter().map(|(_, c)| c)).flatten();
            table.decided_at.iter().chain(created).copied().max().unwrap_or_default()
        }
    };
    let model = CheckedModel::from_source(&trained.model)
        .map_err(|_| anyhow::anyhow!("internal error: the learned model does not check"))?;
    // Every lead of the table scored as of its instant: its cutoff, or `as_of` while open.
    let mut at: HashMap<&str, Millis> =
        table.ids.iter().map(String::as_str).zip(table.cutoffs.iter().copied()).collect();
    at.extend(table.open.iter().map(|(id, _)| (id.as_str(), as_of)));
    let files = InputFiles {
        leads: Some(&args.leads),
        events: args.events.as_deref(),
        outcomes: None,
        id_column: args.id_column.clone().map_or(IdColumn::Default, IdColumn::Named),
    };
    let mut skipped = Skipped::new(true);
    let mut inputs = Inputs::read(&files, &model, &mut skipped).context("scoring the open leads")?;
    let scored: HashMap<String, (f64, Option<Millis>)> = inputs
        .map_compact("open leads", |mut state, accounts| {
            let &when = at.get(state.id())?;
            let first = state.event_times().map(|(at, _)| at).min();
            Some((state.score_at(&model, accounts, when).total, first))
        })?
        .into_iter()
        .filter_map(|(id, found)| found.map(|f| (id, f)))
        .collect();
    let days = |from: Millis, to: Millis| (to - from) as f64 / MS_PER_DAY as f64;
    let created_of = |id: &str, column: Option<Millis>| column.or_else(|| scored.get(id).and_then(|s| s.1));

    let (mut converted, mut lost, mut ages) = (Vec::new(), Vec::new(), Vec::new());
    let mut decided = Vec::with_capacity(table.ids.len());
    for (i, id) in table.ids.iter().enumerate() {
        let Some(&(total, _)) = scored.get(id) else { continue };
        decided.push((total, table.labels[i]));
        if let Some(created) = created_of(id, table.created[i]) {
            let delay = days(created, table.decided_at[i]);
            if table.labels[i] { converted.push(delay) } else { lost.push(delay) }
        }
    }
    let mut open = Vec::with_capacity(table.open.len());
    for (id, created) in &table.open {
        if let (Some(&(total, _)), Some(created)) = (scored.get(id), created_of(id, *created)) {
            let age = days(created, as_of).max(0.0);
            ages.push(age);
            open.push((total, age));
        }
    }
    let curve = ConversionCurve::estimate(&converted, &lost, &ages);
    if open.is_empty() || curve.rate() <= 0.0 {
        return Ok(None);
    }
    let before = Calibration { intercept: trained.intercept, slope: trained.slope };
    let weighted: Vec<(f64, (f64, f64))> = open.iter().map(|&(total, age)| (total, curve.still_open(age))).collect();
    let after = calibrate_censored(&decided, &weighted, before);
    let mean = |c: Calibration| open.iter().map(|&(total, _)| c.probability(total)).sum::<f64>() / open.len() as f64;
    let found = OpenLeads {
        count: table.open.len(),
        used: open.len(),
        as_of,
        rate: curve.rate(),
        median_days: curve.median_days(),
        before,
        mean_open: mean(after),
        mean_open_before: mean(before),
    };
    trained.recalibrate(
        after,
        &format!(
            "Calibrated with the {} open leads counted as not decided by their age (as of {}): {:.1}% of leads ever \
             convert.",
            found.used,
            leadscore_core::time::format_timestamp(found.as_of),
            100.0 * found.rate
        ),
    );
    Ok(Some(found))
}
