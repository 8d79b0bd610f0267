//! The scheduler thread: every 250 ms it rescores the leads whose next time-driven change
//! (a decay crossing a threshold, a window expiring, inactivity) is due, each at its own instant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use leadscore_core::time::Millis;
use leadscore_store::StoreError;

use crate::app::App;
use crate::error::is_transient;
use crate::scoring::{Fresh, rescore_leads};

impl App {
    pub(crate) fn spawn_scheduler(self: &Arc<Self>) {
        self.spawn_loop("scheduler", Duration::from_millis(250), |app| {
            let now = app.clock.now();
            if let Err(e) = app.run_due(now) {
                tracing::warn!("scheduler: {e}");
            }
        });
    }

    /// Applies every time-driven change due at or before `now`, each at its own instant, of the
    /// active model and of the shadow models. Returns how many scores were rescored.
    pub fn run_due(&self, now: Millis) -> Result<usize, StoreError> {
        let mut rescored = 0;
        loop {
            let due = self.store.read(|tx| tx.due_leads(now, 256))?;
            if due.is_empty() {
                break;
            }
            if let Some((_, earliest)) = due.first() {
                metrics::gauge!("leadscore_scheduler_lag_seconds").set((now - earliest) as f64 / 1000.0);
            }
            match self.rescore_due(&due) {
                Ok(n) => rescored += n,
                Err(e) if is_transient(&e) => return Err(e),
                Err(e) => {
                    // Something about one lead breaks the batch: go one by one and set aside the
                    // leads that fail (they are scored again at their next event), so the
                    // scheduler never stops for everyone.
                    tracing::error!("scheduler: {e}; rescoring the {} due leads one by one", due.len());
                    for lead in &due {
                        match self.rescore_due(std::slice::from_ref(lead)) {
                            Ok(n) => rescored += n,
                            Err(e) if is_transient(&e) => return Err(e),
                            Err(e) => {
                                tracing::error!("scheduler: lead `{}`: {e}; set aside until its next event", lead.0);
                                metrics::counter!("leadscore_scoring_failures_total").increment(1);
                                self.store.write(|tx| tx.clear_next_changes(std::slice::from_ref(&lead.0)))?;
                            }
                        }
                    }
                }
            }
        }
        rescored += self.run_due_shadows(now)?;
        metrics::counter!("leadscore_rescored_leads_total", "cause" => "schedule").increment(rescored as u64);
        if rescored == 0 {
            metrics::gauge!("leadscore_scheduler_lag_seconds").set(0.0);
        }
        Ok(rescored)
    }

    /// Rescores these due leads, each at its due instant, in one transaction.
    fn rescore_due(&self, due: &[(String, Millis)]) -> Result<usize, StoreError> {
        self.store.write(|tx| {
            let ids: Vec<String> = due.iter().map(|(id, _)| id.clone()).collect();
            tx.lock_leads(&ids)?;
            // Read under the leads' locks (see `App::record`).
            let active = self.model();
            // Another writer may have rescored some since they were read.
            let current: HashMap<String, Option<Millis>> =
                tx.leads_by_ids(&ids)?.into_iter().map(|r| (r.id, r.score.and_then(|s| s.next_change_at))).collect();
            let still_due: Vec<(String, Millis)> =
                due.iter().filter(|(id, at)| current.get(id) == Some(&Some(*at))).cloned().collect();
            // Time alone: the stored states, with nothing new.
            rescore_leads(tx, &active, &self.outboxes, &still_due, &Fresh::default())?;
            Ok(still_due.len())
        })
    }
}
