//! leadscore-http: the server's HTTP surface. Segment-compatible ingest ([`segment`] decodes,
//! [`routes::ingest`] answers), the read and admin API ([`routes`], one file per resource), the
//! OpenAPI document ([`openapi`]), metrics, and the dashboard ([`dashboard`], with its sessions
//! and pages). Every handler calls a use case of [`leadscore_service::App`] and renders its typed
//! view; this crate never opens a store transaction (it does not depend on the store).
//!
//! Data flow: `POST /v1/batch` → [`segment::decode`] → [`leadscore_service::App::ingest`] queues
//! the messages → the service's writer thread group-commits them → every waiting request answers
//! 200. [`connections`] owns the sockets: timeouts, connection limits, graceful shutdown.

pub mod auth;
pub mod connections;
pub mod dashboard;
pub mod error;
pub mod openapi;
pub mod request;
pub mod router;
pub mod routes;
pub mod segment;

use std::sync::Arc;

use leadscore_service::App;

pub use router::router;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document()
}

/// Serves until `shutdown` resolves, then finishes in-flight requests, commits what was
/// accepted and stops the background threads.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(Arc::clone(&app));
    let result = connections::serve(listener, router, app.settings.limits, shutdown).await;
    // Shut down (and drop the store's connections) off the async threads.
    let _ = tokio::task::spawn_blocking(move || {
        app.shutdown();
        drop(app);
    })
    .await;
    result
}

#[cfg(test)]
mod tests {
    /// The `[dependencies]` section of a manifest.
    fn dependencies(manifest: &str) -> Vec<&str> {
        let Some(start) = manifest.find("[dependencies]") else { return Vec::new() };
        let section = &manifest[start + "[dependencies]".len()..];
        let end = section.find("\n[").unwrap_or(section.len());
        section[..end]
            .lines()
            .filter_map(|line| line.split(['=', '.']).next())
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect()
    }

    /// The layers Cargo enforces: HTTP cannot open a store transaction (it cannot name the
    /// store), and the use cases cannot use HTTP types.
    #[test]
    fn the_http_crate_cannot_reach_the_store_and_the_service_knows_no_http() {
        let http = dependencies(include_str!("../Cargo.toml"));
        assert!(http.contains(&"leadscore-service") && http.contains(&"axum"), "{http:?}");
        assert!(!http.contains(&"leadscore-store"), "{http:?}");
        let service = dependencies(include_str!("../../service/Cargo.toml"));
        assert!(service.contains(&"leadscore-store"), "{service:?}");
        for name in ["axum", "tower", "tower-http", "hyper", "hyper-util", "http-body"] {
            assert!(!service.contains(&name), "the service depends on `{name}`");
        }
    }
}
