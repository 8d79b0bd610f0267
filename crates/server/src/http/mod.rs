//! The HTTP surface: routes, API-key auth, request metrics, `/openapi.json` (generated from the
//! handlers' annotations), `/metrics` and `/healthz`.

pub mod api;
pub mod connections;
pub mod ingest;
pub mod openapi;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::app::App;
use crate::auth::Role;
use crate::error::{ApiError, Code};
use crate::settings::Settings;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document()
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

/// Which role each API endpoint needs (SPEC §6.2): reading leads, accounts and models and
/// recording outcomes is `read` (sales); everything else (model uploads and activation,
/// backtests, deletes, webhooks, unreadable events) is `admin`.
pub fn needed_role(method: &Method, route: &str) -> Role {
    match (method.as_str(), route) {
        ("GET", "/api/leads" | "/api/leads/{id}" | "/api/accounts/{id}" | "/api/models" | "/api/models/{version}") => {
            Role::Read
        }
        ("POST", "/api/leads/{id}/outcome") => Role::Read,
        _ => Role::Admin,
    }
}

/// Bearer keys for `/api`, checked against the role the endpoint needs: 401 without a valid key,
/// 403 for a write key or a read key on an admin endpoint.
async fn require_role(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = token else {
        return ApiError::new(Code::MissingApiKey, "send an API key: `Authorization: Bearer <key>`").into_response();
    };
    let route = request.extensions().get::<MatchedPath>().map_or("", MatchedPath::as_str);
    let needed = needed_role(request.method(), route);
    match app.keys.role_of(&token) {
        None => ApiError::new(Code::InvalidApiKey, "the API key is not valid").into_response(),
        Some(Role::Write) => {
            ApiError::new(Code::WriteKeyNotAllowed, "this is a write key; the API needs an API key").into_response()
        }
        Some(role) if !role.allows(needed) => ApiError::new(
            Code::InsufficientRole,
            format!("this endpoint needs an `{}` key; this key is `{}`", needed.as_str(), role.as_str()),
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

/// Query parameters whose errors are JSON (`400 invalid_parameter` naming the problem), unlike
/// axum's own `Query` (a text/plain 400).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
                Err(ApiError::new(Code::InvalidParameter, format!("query: {detail}")))
            }
        }
    }
}

/// The peer's address (absent when the router is driven directly, as in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// How a client reached this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
}

impl std::fmt::Display for ClientOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// Whether `text` is a plain `host[:port]` (no path, user info or spaces): a `Host` header we may
/// repeat back to clients.
fn plain_authority(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

/// The origin clients use to reach this server: `public_url` when configured; otherwise the
/// request's `Host`, with `X-Forwarded-Proto` / `X-Forwarded-Host` believed only from trusted
/// proxies.
pub fn client_origin(settings: &Settings, headers: &HeaderMap, peer: Option<IpAddr>) -> ClientOrigin {
    if let Some(public) = &settings.public_url {
        return ClientOrigin { scheme: public.scheme.clone(), authority: public.authority.clone() };
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let trusted = peer.is_some_and(|p| settings.trusts(p));
    let scheme = match first("x-forwarded-proto") {
        Some(proto) if trusted && (proto == "https" || proto == "http") => proto,
        _ => "http".to_owned(),
    };
    let forwarded_host = if trusted { first("x-forwarded-host") } else { None };
    let authority = forwarded_host
        .or_else(|| first(header::HOST.as_str()))
        .filter(|h| plain_authority(h))
        .unwrap_or_else(|| settings.listen.to_string());
    ClientOrigin { scheme, authority }
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
    responses((status = 200, description = "ready", body = api::Ready),
        (status = 503, description = "the database cannot be written (`database_unavailable`); see Retry-After",
            body = api::ErrorBody, headers(("Retry-After" = u64, description = "seconds to wait")))),
    security(()))]
pub async fn readyz(State(app): State<Arc<App>>) -> Result<axum::Json<api::Ready>, ApiError> {
    api::blocking(move || {
        app.check_ready()?;
        Ok(axum::Json(api::Ready { status: "ready".to_owned(), database: "writable".to_owned() }))
    })
    .await
}

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
    let code = Code::for_status(status);
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
        // RudderStack's JavaScript SDK (v3): its source config and its beacon transport.
        .route("/sourceConfig", get(ingest::source_config))
        .route("/sourceConfig/", get(ingest::source_config))
        .route("/beacon/v1/batch", post(ingest::beacon_batch))
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
        .route("/api/events/unreadable", get(api::list_unreadable))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&app), require_role));
    Router::new()
        .merge(ingest)
        .merge(api)
        .merge(crate::dashboard::routes(Arc::clone(&app)))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(record_request))
        .with_state(app)
}
