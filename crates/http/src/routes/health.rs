//! Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use leadscore_service::App;

use super::{ErrorBody, Ready, blocking};
use crate::error::ApiError;

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let sizes = [1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".to_owned()), &sizes))
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| tracing::warn!("metrics disabled: {e}"))
                .ok()
        })
        .as_ref()
}

/// Prometheus metrics (text format)
pub async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    metrics::gauge!("leadscore_ingest_queue_events").set(app.pending_events() as f64);
    let p = app.rescore_progress();
    metrics::gauge!("leadscore_rescore_pending_leads").set(p.total.saturating_sub(p.done) as f64);
    if !app.outboxes.syncs.is_empty() {
        let app = Arc::clone(&app);
        if let Ok(Ok(list)) = tokio::task::spawn_blocking(move || app.list_syncs()).await {
            for s in list.syncs {
                metrics::gauge!("leadscore_crm_sync_up", "sync" => s.name.clone()).set(if s.running {
                    1.0
                } else {
                    0.0
                });
                metrics::gauge!("leadscore_crm_pending_leads", "sync" => s.name.clone()).set(s.pending as f64);
                metrics::gauge!("leadscore_crm_dead_leads", "sync" => s.name).set(s.dead as f64);
            }
        }
    }
    let text = metrics_handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], text).into_response()
}

/// The OpenAPI 3.1 document
pub async fn openapi_json() -> Response {
    match crate::openapi::document().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text).into_response(),
        Err(e) => ApiError::internal("openapi", &e).into_response(),
    }
}

/// Liveness
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process answers", content_type = "text/plain", body = String)),
    security(()))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database can be written now
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready", body = Ready),
        (status = 503, description = "the database cannot be written (`database_unavailable`); see Retry-After",
            body = ErrorBody, headers(("Retry-After" = u64, description = "seconds to wait")))),
    security(()))]
pub async fn readyz(State(app): State<Arc<App>>) -> Result<axum::Json<Ready>, ApiError> {
    blocking(move || Ok(app.check_ready()?)).await?;
    Ok(axum::Json(Ready { status: "ready".to_owned(), database: "writable".to_owned() }))
}
