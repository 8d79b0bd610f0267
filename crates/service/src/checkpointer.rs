//! The checkpointer thread: every 250 ms it copies SQLite's write-ahead log into the database file
//! ([`leadscore_store::Store::checkpoint`]) without waiting for anyone, so the writer's commits
//! do not pay for it (they did: about 14% of the writer's time under sustained ingest).

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

impl App {
    pub(crate) fn spawn_checkpointer(self: &Arc<Self>) {
        self.spawn_loop("checkpointer", Duration::from_millis(250), |app| {
            if let Err(e) = app.store.checkpoint() {
                tracing::debug!("checkpoint: {e}");
            }
        });
    }
}
