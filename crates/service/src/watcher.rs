//! The model watcher thread: every 2 s it picks up a model another process activated in the
//! shared database (and shadow models started or stopped there), and sets the stored call-now ranks from the active model's stage order when
//! they do not follow it yet (after an upgrade, or when the database was read-only).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use leadscore_store::StoreError;

use crate::app::{App, check_source};
use crate::rescore::rank_stages;
use crate::scoring::ActiveModel;

impl App {
    pub(crate) fn spawn_watcher(self: &Arc<Self>) {
        self.spawn_loop("model-watcher", Duration::from_secs(2), |app| {
            if let Err(e) = app.follow_active_model().and_then(|()| app.load_shadows()) {
                tracing::warn!("model watcher: {e}");
            }
            app.rank_stages_if_needed();
        });
    }

    /// Sets the stored call-now ranks from the active model's stage order, unless they already
    /// follow it; a database that cannot be written now is tried again on the next call (the
    /// failure is logged as a warning once per model version, then at debug level).
    pub(crate) fn rank_stages_if_needed(&self) {
        let active = self.model();
        if self.ranked_version.load(Ordering::SeqCst) == active.version {
            return;
        }
        match self.store.write(|tx| rank_stages(tx, &active.model)) {
            Ok(()) => self.ranked_version.store(active.version, Ordering::SeqCst),
            Err(e) if self.rank_warned.swap(active.version, Ordering::SeqCst) != active.version => {
                tracing::warn!("call-now ranks for model version {}: {e}; trying again every 2 s", active.version);
            }
            Err(e) => tracing::debug!("call-now ranks for model version {}: {e}; trying again", active.version),
        }
    }

    /// Picks up a model another process activated in the shared database.
    fn follow_active_model(&self) -> Result<(), StoreError> {
        let Some(row) = self.store.read(|tx| tx.active_model())? else { return Ok(()) };
        if row.version == self.model().version {
            return Ok(());
        }
        match check_source(&row.source) {
            Ok((model, _)) => {
                tracing::info!("model version {} was activated elsewhere; using it", row.version);
                self.set_model(ActiveModel::new(row.version, row.source, model));
            }
            Err(_) => tracing::error!("active model version {} does not check; keeping the current one", row.version),
        }
        Ok(())
    }
}
