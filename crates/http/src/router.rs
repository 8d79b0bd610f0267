//! Every route and the layers around them: CORS on the tracking API, API keys on `/api`, JSON
//! errors for the framework's own rejections, security headers and request metrics everywhere.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use leadscore_service::App;

use crate::auth::require_role;
use crate::error::{ApiError, Code};
use crate::routes::{accounts, backtest, events, health, hooks, ingest, leads, models, syncs, webhooks};

/// Every error answer is JSON `{"code", "message"}`: errors raised outside our handlers (the
/// framework's own rejections, a failed extractor) are rewritten with a code for their status.
/// Dashboard pages (HTML) keep their HTML.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !(status.is_client_error() || status.is_server_error())
        || content_type.starts_with("application/json")
        || content_type.starts_with("text/html")
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let code = Code::for_status(status.as_u16());
    let message = match text {
        Ok(t) if !t.is_empty() && status.is_client_error() => t.to_lowercase(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    // The status stays the framework's (a status without a code of its own keeps its number).
    let mut error = ApiError { status, ..ApiError::new(code, message) };
    error.retry_after = parts.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
    let mut rewritten = error.into_response();
    for name in [header::ALLOW, header::ACCESS_CONTROL_ALLOW_ORIGIN, header::VARY] {
        if let Some(v) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, v.clone());
        }
    }
    rewritten
}

/// Security headers on every answer: no sniffing, no framing, no caching of lead data, and a
/// content security policy that allows only the dashboard's own inline styles and forms.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    response
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
    ApiError::new(Code::NotFound, "no such endpoint")
}

/// Every route.
pub fn router(app: Arc<App>) -> Router {
    health::metrics_handle();
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
        // RudderStack's JavaScript SDK (v3): its source config and its beacon transport.
        .route("/sourceConfig", get(ingest::source_config))
        .route("/sourceConfig/", get(ingest::source_config))
        .route("/beacon/v1/batch", post(ingest::beacon_batch))
        .layer(cors);
    let api = Router::new()
        .route("/api/leads", get(leads::list_leads))
        .route("/api/leads/{id}", get(leads::get_lead).delete(leads::delete_lead))
        .route("/api/leads/{id}/outcome", post(leads::post_outcome))
        .route("/api/leads/{id}/contacted", post(leads::post_contacted))
        .route("/api/accounts/{id}", get(accounts::get_account))
        .route("/api/models", get(models::list_models).post(models::post_model))
        .route("/api/models/{version}", get(models::get_model))
        .route("/api/models/{version}/activate", post(models::activate_model))
        .route("/api/models/{version}/preview", get(models::preview_model))
        .route("/api/models/{version}/shadow", post(models::start_shadow).delete(models::stop_shadow))
        .route("/api/models/{version}/compare", get(models::compare_model))
        .route("/api/backtest", post(backtest::backtest))
        .route("/api/webhooks/deliveries", get(webhooks::list_deliveries))
        .route("/api/webhooks/deliveries/{id}/resend", post(webhooks::resend_delivery))
        .route("/api/syncs", get(syncs::list_syncs))
        .route("/api/syncs/{name}/records", get(syncs::list_sync_records))
        .route("/api/syncs/{name}/records/{id}/resend", post(syncs::resend_sync_record))
        .route("/api/events/unreadable", get(events::list_unreadable))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&app), require_role));
    Router::new()
        .merge(ingest)
        .merge(api)
        .merge(crate::dashboard::routes(Arc::clone(&app)))
        .route("/hooks/hubspot/{sync}", post(hooks::hubspot))
        .route("/hooks/outcomes", post(hooks::outcomes))
        .route("/openapi.json", get(health::openapi_json))
        .route("/metrics", get(health::metrics_text))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(record_request))
        .with_state(app)
}
