//! Model activation and the rescore thread: activating a version sets the stored call-now ranks
//! from its stage order and the active model in one step, then a `rescore` thread rescores every
//! lead in chunks (progress in [`RescoreProgress`]); another activation, or a stop, ends it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::collections::HashMap;

use rayon::prelude::*;

use leadscore_core::compact::{CompactEvent, read_message};
use leadscore_core::model::Projection;
use leadscore_core::time::Millis;
use leadscore_core::{AccountBook, CheckedModel, IdentityGraph};
use leadscore_store::{StoreError, Tx};

use crate::app::{App, check_source};
use crate::error::{ServiceError, is_transient};
use crate::models::{invalid_model, model_not_found};
use crate::scoring::{ActiveModel, Fresh, Unreadable, owner_of, record_group, record_unreadable, rescore_leads};

/// Leads per transaction when rescoring everything (bigger chunks amortise the commit; 2,000
/// keeps the parsed histories of a chunk well under 500 MB even with long histories).
pub(crate) const RESCORE_CHUNK: usize = 2000;

/// Progress of the full rescore after a model activation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RescoreProgress {
    pub version: i64,
    pub done: u64,
    pub total: u64,
    pub finished: bool,
    /// Why the rescore stopped early (the leads not reached are rescored at the next start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl App {
    /// Makes `version` active and rescores every lead in the background.
    pub fn activate(self: &Arc<Self>, version: i64) -> Result<RescoreProgress, ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        let (model, _) = check_source(&row.source).map_err(|d| invalid_model(&row.source, &d))?;
        let now = self.clock.now();
        self.store.write(|tx| {
            tx.activate_model(version, now)?;
            rank_stages(tx, &model)
        })?;
        // The model first: the watcher, seeing the new version not yet marked ranked, at worst
        // ranks again with it (writing nothing), never with the old one.
        self.set_model(ActiveModel::new(version, row.source, model));
        self.ranked_version.store(version, Ordering::SeqCst);
        Ok(self.spawn_rescore(version))
    }

    /// The progress of the latest full rescore.
    pub fn rescore_progress(&self) -> RescoreProgress {
        self.rescore.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub(crate) fn spawn_rescore(self: &Arc<Self>, version: i64) -> RescoreProgress {
        let total = self.store.read(|tx| tx.count_leads()).unwrap_or(0).max(0) as u64;
        let progress = RescoreProgress { version, done: 0, total, finished: total == 0, error: None };
        if let Ok(mut p) = self.rescore.lock() {
            *p = progress.clone();
        }
        let app = Arc::clone(self);
        self.spawn_thread("rescore", move || {
            if let Err(e) = app.rescore_all(version) {
                tracing::error!("rescore for model version {version}: {e}");
                if let Ok(mut p) = app.rescore.lock()
                    && p.version == version
                {
                    p.finished = true;
                    p.error = Some(e.to_string());
                }
            }
        });
        progress
    }

    /// Rescores every lead with model `version`; stops if another version becomes active
    /// meanwhile. When the stored messages are few enough to hold as compact events
    /// ([`PASS_EVENTS`]), one pass reads them all in storage order into compact events per lead
    /// and the accounts' traits (a sequential read: looking each lead's messages up jumps around
    /// the table); otherwise each chunk loads its own leads' histories (bounded memory). Either
    /// way the leads are scored and stored in chunks, each one transaction under the leads'
    /// locks. A lead whose stored state is already the new model's was scored since the
    /// activation (by ingest, an outcome or the scheduler, from its whole history) and keeps it.
    fn rescore_all(&self, version: i64) -> Result<(), StoreError> {
        let active = self.model();
        if active.version != version || self.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (until, stored) = self.store.read(|tx| Ok::<_, StoreError>((tx.last_seq()?, tx.count_events()?)))?;
        let mut pass = None;
        if stored <= PASS_EVENTS {
            let read = self.store.read(|tx| read_pass(tx, &active.model, &active.projection, until))?;
            if !read.unreadable.is_empty() {
                let now = self.clock.now();
                self.store.write(|tx| record_unreadable(tx, &read.unreadable, now))?;
            }
            pass = Some(read);
        }
        let mut after = String::new();
        loop {
            if self.model().version != version || self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let ids = self.store.read(|tx| tx.lead_ids_after(&after, RESCORE_CHUNK))?;
            let Some(last) = ids.last().cloned() else { break };
            after = last;
            let fresh = match pass.as_mut() {
                Some(pass) => Fresh {
                    prepared: ids.iter().map(|id| (id.clone(), pass.by_lead.remove(id).unwrap_or_default())).collect(),
                    prepared_accounts: Some(Arc::clone(&pass.accounts)),
                    ..Fresh::default()
                },
                // The new model's first scores: from every lead's whole history.
                None => Fresh::replay(&ids),
            };
            self.rescore_chunk(&active, &ids, &fresh)?;
            metrics::counter!("leadscore_rescored_leads_total", "cause" => "model").increment(ids.len() as u64);
            if let Ok(mut p) = self.rescore.lock() {
                p.done += ids.len() as u64;
            }
        }
        if let Ok(mut p) = self.rescore.lock() {
            p.finished = true;
            p.done = p.done.max(p.total);
        }
        Ok(())
    }

    /// Scores and stores one chunk of leads with `active`, in one transaction; a database outage
    /// pauses the rescore instead of ending it.
    fn rescore_chunk(&self, active: &ActiveModel, ids: &[String], fresh: &Fresh) -> Result<(), StoreError> {
        let now = self.clock.now();
        let due: Vec<(String, Millis)> = ids.iter().map(|id| (id.clone(), now)).collect();
        let mut attempt = 0u32;
        loop {
            let chunk = self.store.write(|tx| {
                tx.lock_leads(ids)?;
                // Under the leads' locks: once another version is active, its own rescore
                // scores these leads, and this one must not overwrite them.
                if self.model().version != active.version {
                    return Ok(());
                }
                rescore_leads(tx, active, &self.hooks, &due, fresh).map(|_| ())
            });
            match chunk {
                Ok(()) => return Ok(()),
                Err(e) if is_transient(&e) && attempt < 60 && !self.stopping.load(Ordering::SeqCst) => {
                    attempt += 1;
                    tracing::warn!("rescore paused: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Stored messages a full rescore reads per query.
const PASS_PAGE: usize = 20_000;

/// Most stored messages a full rescore reads in one pass into compact events (~250 bytes each
/// with `identify` traits: ~250 MB at the limit); with more, each chunk loads its own leads'
/// histories. Tests (`test-support`) take a few dozen, so that both ways are exercised.
const PASS_EVENTS: i64 = if cfg!(feature = "test-support") { 40 } else { 1_000_000 };

/// What one pass over the stored messages read.
struct Pass {
    /// Compact events by the lead they belong to.
    by_lead: HashMap<String, Vec<CompactEvent>>,
    /// Every account's traits over time (from every `group` message, whoever sent it).
    accounts: Arc<AccountBook>,
    unreadable: Vec<Unreadable>,
}

/// The stored messages up to `until`, in storage order, read into compact events for `model` by
/// the lead they belong to (an anonymous message to the lead its id's earliest link names, from
/// the link's time, as the history loader attributes them), every account's traits, and the
/// messages that could not be read.
fn read_pass(tx: &mut Tx<'_>, model: &CheckedModel, projection: &Projection, until: i64) -> Result<Pass, StoreError> {
    let mut identities = IdentityGraph::default();
    for link in tx.all_links()? {
        identities.link(&link.anonymous_id, &link.lead_id, link.at);
    }
    let mut by_lead: HashMap<String, Vec<CompactEvent>> = HashMap::new();
    let mut accounts = AccountBook::default();
    let mut unreadable = Vec::new();
    let mut after = 0;
    loop {
        let page = tx.events_page(after, until, PASS_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.0.seq;
        for (stored, _) in page.iter().filter(|(_, group)| *group) {
            if let Err(u) = record_group(&mut accounts, model, projection, stored) {
                unreadable.push(u);
            }
        }
        let read: Vec<Result<(String, CompactEvent), Unreadable>> = page
            .par_iter()
            .filter_map(|(stored, _)| {
                let (owner, linked_at) = owner_of(stored, &identities)?;
                let message = match read_message(&model.plan, stored.body.as_bytes()) {
                    Ok(message) => message,
                    Err(e) => return Some(Err(Unreadable { seq: stored.seq, reason: e.to_string() })),
                };
                if model.plan.ignores(&message) {
                    return None;
                }
                let mut compact = model.compact(&message);
                if let Some(at) = linked_at {
                    compact.visible_at = compact.at.max(at);
                }
                Some(Ok((owner.to_owned(), compact)))
            })
            .collect();
        for item in read {
            match item {
                Ok((lead, event)) => by_lead.entry(lead).or_default().push(event),
                Err(u) => unreadable.push(u),
            }
        }
    }
    Ok(Pass { by_lead, accounts: Arc::new(accounts), unreadable })
}

/// Sets every stored lead's call-now rank from `model`'s stage order.
pub(crate) fn rank_stages(tx: &mut Tx<'_>, model: &CheckedModel) -> Result<(), StoreError> {
    let (ranks, other) = model.stage_ranks();
    tx.rank_stages(&ranks, other).map(|_| ())
}
