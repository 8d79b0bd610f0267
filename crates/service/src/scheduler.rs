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

/// Rescores `due` with `rescore` in one go; when that fails for a reason other than the database
/// being unavailable, something about one lead breaks the batch, so the leads go one by one and
/// each that still fails is set aside (`set_aside`: it is scored again at its next event). The
/// scheduler never stops for everyone. `what` names the model in the log (empty: the active one).
/// Returns how many were rescored.
pub(crate) fn rescore_batch_or_each(
    what: &str,
    due: &[(String, Millis)],
    rescore: impl Fn(&[(String, Millis)]) -> Result<usize, StoreError>,
    set_aside: impl Fn(&str) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    let e = match rescore(due) {
        Ok(n) => return Ok(n),
        Err(e) if is_transient(&e) => return Err(e),
        Err(e) => e,
    };
    tracing::error!("scheduler{what}: {e}; rescoring the {} due leads one by one", due.len());
    let mut rescored = 0;
    for lead in due {
        match rescore(std::slice::from_ref(lead)) {
            Ok(n) => rescored += n,
            Err(e) if is_transient(&e) => return Err(e),
            Err(e) => {
                tracing::error!("scheduler{what}: lead `{}`: {e}; set aside until its next event", lead.0);
                metrics::counter!("leadscore_scoring_failures_total").increment(1);
                set_aside(&lead.0)?;
            }
        }
    }
    Ok(rescored)
}

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
            rescored += rescore_batch_or_each(
                "",
                &due,
                |due| self.rescore_due(due),
                |id| self.store.write(|tx| tx.clear_next_changes(&[id.to_owned()])),
            )?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::cell::RefCell;

    use super::*;

    fn due(ids: &[&str]) -> Vec<(String, Millis)> {
        ids.iter().map(|id| ((*id).to_owned(), 0)).collect()
    }

    /// One lead that breaks its batch is set aside; the others are rescored one by one.
    #[test]
    fn a_lead_that_breaks_the_batch_is_set_aside_and_the_others_go_one_by_one() {
        let calls = RefCell::new(Vec::new());
        let aside = RefCell::new(Vec::new());
        let rescored = rescore_batch_or_each(
            "",
            &due(&["a", "b", "c"]),
            |due| {
                calls.borrow_mut().push(due.len());
                if due.iter().any(|(id, _)| id == "b") {
                    return Err(StoreError::Corrupt("lead `b`".into()));
                }
                Ok(due.len())
            },
            |id| {
                aside.borrow_mut().push(id.to_owned());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(rescored, 2);
        assert_eq!(*calls.borrow(), vec![3, 1, 1, 1]);
        assert_eq!(*aside.borrow(), vec!["b".to_owned()]);
    }

    /// An unavailable database is no lead's fault: nothing is set aside, the error goes up (the
    /// scheduler tries again on its next tick).
    #[test]
    fn an_unavailable_database_sets_nothing_aside() {
        let aside = RefCell::new(Vec::new());
        let result = rescore_batch_or_each(
            " (shadow model version 2)",
            &due(&["a", "b"]),
            |_| Err(StoreError::Unavailable("disk I/O error".into())),
            |id| {
                aside.borrow_mut().push(id.to_owned());
                Ok(())
            },
        );
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
        assert!(aside.borrow().is_empty());
    }
}
