//! The HTTP surface: routes, API-key auth, request metrics, `/openapi.json` (generated from the
//! handlers' annotations), `/metrics` and `/healthz`.

pub mod api;
pub mod ingest;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::app::App;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Leadscore", description = "Lead scoring: Segment-compatible ingest, scores, models, webhooks (SPEC §6)."),
    paths(
        ingest_doc::batch, ingest_doc::single, ingest_doc::settings,
        api::list_leads, api::get_lead, api::post_outcome, api::delete_lead, api::get_account,
        api::list_models, api::get_model, api::post_model, api::activate_model, api::backtest,
        api::list_deliveries, api::resend_delivery, healthz
    ),
    components(schemas(api::LeadSummary, api::LeadPage, api::ErrorBody, api::ModelSummary, api::ModelList, api::OutcomeBody)),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("an API key")).build(),
            ),
        );
        components.add_security_scheme(
            "write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("the write key as the user name, empty password (or `writeKey` in the body)"))
                    .build(),
            ),
        );
    }
}

/// OpenAPI annotations for the ingest handlers (kept here so the handlers stay plain).
mod ingest_doc {
    #![allow(dead_code, reason = "only read by the OpenAPI derive")]

    /// Send a batch of Segment messages
    #[utoipa::path(post, path = "/v1/batch", tag = "ingest",
        request_body(content = Object, description = "{\"batch\": [message, …], \"sentAt\"?, \"writeKey\"?}; JSON, \
            possibly gzip; any content type"),
        responses((status = 200, description = "{\"success\": true}: stored durably and scored"),
            (status = 400, body = super::api::ErrorBody), (status = 401, body = super::api::ErrorBody),
            (status = 413, body = super::api::ErrorBody), (status = 429, description = "busy; see Retry-After")),
        security(("write_key" = [])))]
    fn batch() {}

    /// Send one Segment message (`identify`, `track`, `page`, `screen`, `group`, `alias`, or the
    /// browser's `i t p s g a`; `b` is a batch)
    #[utoipa::path(post, path = "/v1/{type}", tag = "ingest", params(("type" = String, Path, description = "message type")),
        request_body(content = Object, description = "one Segment message"),
        responses((status = 200, description = "{\"success\": true}"), (status = 400, body = super::api::ErrorBody),
            (status = 401, body = super::api::ErrorBody), (status = 413, body = super::api::ErrorBody),
            (status = 429, description = "busy; see Retry-After")),
        security(("write_key" = [])))]
    fn single() {}

    /// The project settings analytics.js loads
    #[utoipa::path(get, path = "/v1/projects/{write_key}/settings", tag = "ingest",
        params(("write_key" = String, Path, description = "write key")),
        responses((status = 200, description = "settings pointing analytics.js at this server"),
            (status = 404, body = super::api::ErrorBody)))]
    fn settings() {}
}

/// Liveness
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Percent-encodes text for a URL path segment or query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

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

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    metrics::gauge!("leadscore_ingest_queue_events").set(app.pending_events() as f64);
    if let Ok(p) = app.rescore.lock() {
        metrics::gauge!("leadscore_rescore_pending_leads").set(p.total.saturating_sub(p.done) as f64);
    }
    let text = metrics_handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], text).into_response()
}

async fn openapi_json() -> Response {
    match openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text).into_response(),
        Err(e) => ApiError::internal("openapi", &e).into_response(),
    }
}

/// Bearer API keys for `/api`; a write key there is refused with 403.
async fn require_api_key(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    match token {
        None => {
            ApiError::unauthorized("missing_api_key", "send an API key: `Authorization: Bearer <key>`").into_response()
        }
        Some(t) if app.settings.api_keys.contains(&t) => next.run(request).await,
        Some(t) if app.settings.write_keys.contains(&t) => ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "write_key_not_allowed",
            "this is a write key; the API needs an API key",
        )
        .into_response(),
        Some(_) => ApiError::unauthorized("invalid_api_key", "the API key is not valid").into_response(),
    }
}

/// Request count and latency per route.
async fn record_request(request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("leadscore_http_request_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("leadscore_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

/// Every route.
pub fn router(app: Arc<App>) -> Router {
    metrics_handle();
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        // Named back, not `*`: browsers never let `*` cover `Authorization`.
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(86_400));
    let ingest = Router::new()
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/b", post(ingest::batch))
        .route("/v1/{kind}", post(ingest::single))
        .route("/v1/projects/{write_key}/settings", get(ingest::settings))
        .layer(cors);
    let api = Router::new()
        .route("/api/leads", get(api::list_leads))
        .route("/api/leads/{id}", get(api::get_lead).delete(api::delete_lead))
        .route("/api/leads/{id}/outcome", post(api::post_outcome))
        .route("/api/accounts/{id}", get(api::get_account))
        .route("/api/models", get(api::list_models).post(api::post_model))
        .route("/api/models/{version}", get(api::get_model))
        .route("/api/models/{version}/activate", post(api::activate_model))
        .route("/api/backtest", post(api::backtest))
        .route("/api/webhooks/deliveries", get(api::list_deliveries))
        .route("/api/webhooks/deliveries/{id}/resend", post(api::resend_delivery))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&app), require_api_key));
    Router::new()
        .merge(ingest)
        .merge(api)
        .merge(crate::dashboard::routes(Arc::clone(&app)))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::from_fn(record_request))
        .with_state(app)
}
