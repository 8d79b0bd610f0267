//! Lead states from input files: the leads file, the outcomes file and the events (read once
//! into compact events), folded per lead and handed to a function in parallel. `score`,
//! `backtest` and `train` differ only in what that function reads of each `LeadState`.

use std::collections::HashMap;
use std::path::Path;

use leadscore_core::compact::LeadState;
use leadscore_core::{AccountBook, CheckedModel, Outcome};
use rayon::prelude::*;

use crate::progress;
use crate::read::compact::{CompactSource, read_compact_many};
use crate::read::leads::{IdColumn, Leads, read_leads};
use crate::read::outcomes::read_outcomes;
use crate::read::{InputError, Skipped};

/// Where the inputs are.
pub struct InputFiles<'a> {
    pub leads: Option<&'a Path>,
    pub events: Option<&'a Path>,
    pub outcomes: Option<&'a Path>,
    pub id_column: IdColumn,
}

/// The inputs, read: leads and outcomes in memory; events read through a model into compact
/// events (in memory, or in blocks on disk beyond the memory budget).
pub struct Inputs {
    pub leads: Leads,
    pub outcomes: HashMap<String, Vec<Outcome>>,
    pub compact: Option<CompactSource>,
}

impl Inputs {
    /// Reads the files: the leads file typed by the model's `[traits]`, the events read through
    /// the model (its `[events] ignore` applied before identity stitching).
    pub fn read(files: &InputFiles<'_>, model: &CheckedModel, skipped: &mut Skipped) -> Result<Inputs, InputError> {
        let mut all = Inputs::read_many(files, &[model], skipped)?;
        all.pop().ok_or_else(|| InputError::new(Path::new(""), None, None, "no model"))
    }

    /// The inputs as each of several models reads them: the leads file typed by each model's
    /// `[traits]`, the events read once into each model's compact events (the models' plans
    /// must share their slot paths: `core::compact::share_plans`).
    pub fn read_many(
        files: &InputFiles<'_>,
        models: &[&CheckedModel],
        skipped: &mut Skipped,
    ) -> Result<Vec<Inputs>, InputError> {
        let mut sources: Vec<Option<CompactSource>> = match files.events {
            Some(path) => read_compact_many(path, models, skipped)?.into_iter().map(Some).collect(),
            None => models.iter().map(|_| None).collect(),
        };
        let _step = progress::step("leads file");
        let mut all = Vec::with_capacity(models.len());
        for (model, compact) in models.iter().zip(sources.drain(..)) {
            let (leads, outcomes) = Inputs::read_tables(files, Some(model), skipped)?;
            all.push(Inputs { leads, outcomes, compact });
        }
        Ok(all)
    }

    /// The leads file (typed by the model's `[traits]`, else by its values) and the outcomes.
    fn read_tables(
        files: &InputFiles<'_>,
        model: Option<&CheckedModel>,
        skipped: &mut Skipped,
    ) -> Result<(Leads, HashMap<String, Vec<Outcome>>), InputError> {
        let schema = model.map_or(&[][..], |m| &m.traits[..]);
        let leads = match files.leads {
            Some(path) => read_leads(path, &files.id_column, schema, skipped)?,
            None => Leads::default(),
        };
        let outcomes = match files.outcomes {
            Some(path) => read_outcomes(path, skipped)?,
            None => HashMap::new(),
        };
        Ok((leads, outcomes))
    }

    /// The account book from the events' `group` messages.
    pub fn accounts(&self) -> &AccountBook {
        static EMPTY: std::sync::OnceLock<AccountBook> = std::sync::OnceLock::new();
        match &self.compact {
            Some(c) => &c.accounts,
            None => EMPTY.get_or_init(AccountBook::default),
        }
    }

    /// Calls `f` on every lead's state (its compact events folded; inputs read with a model), in parallel: the
    /// leads of the leads file and every lead the events name. Results come back in the leads
    /// file's order, then other leads by id.
    pub fn map_compact<T: Send>(
        &mut self,
        label: &str,
        f: impl Fn(LeadState, &AccountBook) -> T + Sync,
    ) -> Result<Vec<(String, T)>, InputError> {
        let step = progress::step(if label == "scoring" { "scoring" } else { "per lead" });
        let path = self.compact.as_ref().map(|c| c.path.clone()).unwrap_or_default();
        let mut events = self.compact.as_mut().map(|c| std::mem::take(&mut c.leads)).unwrap_or_default();
        for id in &self.leads.order {
            events.add_lead(id);
        }
        let position: HashMap<&str, usize> =
            self.leads.order.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let bar = progress::bar(events.len() as u64, label, false);
        let accounts = self.accounts();
        let leads = &self.leads;
        let outcomes = &self.outcomes;
        let mut results: Vec<(Option<usize>, String, T)> = events
            .into_par_groups()
            .map(|group| {
                let (id, events) = group.map_err(|e| {
                    InputError::new(
                        &path,
                        None,
                        None,
                        format!("cannot read back events written to a temporary file: {e}"),
                    )
                })?;
                let traits = leads.traits(&id);
                let lead_outcomes = outcomes.get(&*id).cloned().unwrap_or_default();
                let state = LeadState::with_events(id.into(), traits, events, lead_outcomes);
                let place = position.get(state.id()).copied();
                let id = state.id().to_owned();
                let result = f(state, accounts);
                bar.inc(1);
                Ok((place, id, result))
            })
            .collect::<Result<_, InputError>>()?;
        bar.finish_and_clear();
        drop(step);
        results.par_sort_unstable_by(|(p, a, _), (q, b, _)| output_order((*p, a), (*q, b)));
        Ok(results.into_iter().map(|(_, id, result)| (id, result)).collect())
    }

    /// One line for stderr: what was read.
    pub fn summary(&self, leads: usize) -> String {
        match self.compact.as_ref().map(|c| (c.messages, c.unattributed)) {
            Some((messages, unattributed)) => {
                format!("{leads} leads, {messages} messages ({unattributed} anonymous messages never linked to a lead)")
            }
            None => format!("{leads} leads"),
        }
    }
}

/// The order of output rows: leads of the leads file in its order (by their place in it), then
/// the other leads by id.
fn output_order((p, a): (Option<usize>, &str), (q, b): (Option<usize>, &str)) -> std::cmp::Ordering {
    match (p, q) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}
