//! leadscore-server: the use cases (ingest, live scoring, the time-driven scheduler, model
//! activation, webhook outbox) and the HTTP surface (Segment-compatible ingest, the read and admin
//! API, OpenAPI, metrics). Scores come from `leadscore_core::evaluate`, state from
//! `leadscore_store`; this crate decides when to score and what to record.
//!
//! Data flow: `POST /v1/batch` → [`ingest::decode`] → [`app::App::ingest`] queues the messages →
//! the writer thread group-commits queued requests in one transaction
//! ([`scoring::record_events`]: store, link identities, rescore affected leads, history, outbox)
//! → every waiting request answers 200. The scheduler rescores leads whose `next_change_at` is
//! due, at that instant.

pub mod app;
pub mod auth;
pub mod clock;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod ingest;
pub mod scoring;
pub mod settings;
pub mod webhooks;

use std::sync::Arc;

pub use app::App;
pub use clock::{Clock, ManualClock, SystemClock};
pub use settings::{Flags, Settings};

/// Serves until `shutdown` resolves, then finishes in-flight requests, commits what was
/// accepted and stops the background threads.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = http::router(Arc::clone(&app));
    let result = http::connections::serve(listener, router, app.settings.limits, shutdown).await;
    // Shut down (and drop the store's connections) off the async threads.
    let _ = tokio::task::spawn_blocking(move || {
        app.shutdown();
        drop(app);
    })
    .await;
    result
}
