//! Model activation and the rescore thread: activating a version sets the stored call-now ranks
//! from its stage order and the active model in one step, then a `rescore` thread rescores every
//! lead in chunks (progress in [`RescoreProgress`]); another activation, or a stop, ends it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use leadscore_core::CheckedModel;
use leadscore_core::time::Millis;
use leadscore_store::{StoreError, Tx};

use crate::app::{App, check_source};
use crate::error::{ServiceError, is_transient};
use crate::models::{invalid_model, model_not_found};
use crate::scoring::{ActiveModel, Fresh, rescore_leads};

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

    /// Rescores every lead with model `version`, in chunks; stops if another version becomes
    /// active meanwhile.
    fn rescore_all(&self, version: i64) -> Result<(), StoreError> {
        let mut after = String::new();
        loop {
            let active = self.model();
            if active.version != version || self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let ids = self.store.read(|tx| tx.lead_ids_after(&after, RESCORE_CHUNK))?;
            let Some(last) = ids.last().cloned() else { break };
            let now = self.clock.now();
            let due: Vec<(String, Millis)> = ids.iter().map(|id| (id.clone(), now)).collect();
            // A database outage pauses the rescore instead of ending it.
            let mut attempt = 0u32;
            loop {
                let chunk = self.store.write(|tx| {
                    tx.lock_leads(&ids)?;
                    // Under the leads' locks: once another version is active, its own rescore
                    // scores these leads, and this one must not overwrite them.
                    if self.model().version != version {
                        return Ok(());
                    }
                    // The new model's first scores: from every lead's whole history.
                    rescore_leads(tx, &active, &self.hooks, &due, &Fresh::replay(&ids)).map(|_| ())
                });
                match chunk {
                    Ok(_) => break,
                    Err(e) if is_transient(&e) && attempt < 60 && !self.stopping.load(Ordering::SeqCst) => {
                        attempt += 1;
                        tracing::warn!("rescore paused: {e}; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Err(e) => return Err(e),
                }
            }
            metrics::counter!("leadscore_rescored_leads_total", "cause" => "model").increment(ids.len() as u64);
            if let Ok(mut p) = self.rescore.lock() {
                p.done += ids.len() as u64;
            }
            after = last;
        }
        if let Ok(mut p) = self.rescore.lock() {
            p.finished = true;
            p.done = p.done.max(p.total);
        }
        Ok(())
    }
}

/// Sets every stored lead's call-now rank from `model`'s stage order.
pub(crate) fn rank_stages(tx: &mut Tx<'_>, model: &CheckedModel) -> Result<(), StoreError> {
    let (ranks, other) = model.stage_ranks();
    tx.rank_stages(&ranks, other).map(|_| ())
}
