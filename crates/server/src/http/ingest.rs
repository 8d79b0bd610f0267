//! The Segment tracking API routes (SPEC §6.1): `/v1/batch` and the single-message paths, the
//! browser's short paths, and the settings analytics.js loads. CORS is open on these routes, as
//! browsers post from any site.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::error::ApiError;
use crate::ingest::{MAX_BATCH_BYTES, decode, type_of_path};

/// Reads the request body, refusing one over the batch limit with a 413 of our own.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BATCH_BYTES + 1).await.map_err(|_| {
        ApiError::too_large("batch_too_large", format!("the request body is over {MAX_BATCH_BYTES} bytes (500 KB)"))
    })
}

async fn accept(app: Arc<App>, implied: Option<&str>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let bytes = read_body(body).await?;
    let received_at = app.clock.now();
    let decoded = decode(implied, &headers, &bytes, &app.settings.write_keys, received_at);
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            metrics::counter!("leadscore_ingest_rejected_total", "reason" => e.code).increment(1);
            return Err(e);
        }
    };
    let n = decoded.messages.len();
    app.ingest(decoded.messages).await?;
    metrics::histogram!("leadscore_ingest_request_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("leadscore_ingest_request_events").record(n as f64);
    Ok(Json(json!({ "success": true })).into_response())
}

/// `POST /v1/batch`, `/v1/b`.
pub async fn batch(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    accept(app, None, headers, body).await
}

/// `POST /v1/{identify|track|page|screen|group|alias}` and `/v1/{i|t|p|s|g|a}`.
pub async fn single(
    State(app): State<Arc<App>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match type_of_path(&kind) {
        Some(implied) => accept(app, Some(implied), headers, body).await,
        None => Err(ApiError::not_found("unknown_path", format!("no tracking API endpoint `/v1/{kind}`"))),
    }
}

/// `GET /v1/projects/{writeKey}/settings`: what analytics.js needs to send its events here.
pub async fn settings(
    State(app): State<Arc<App>>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !app.settings.write_keys.contains(&write_key) {
        return Err(ApiError::not_found("unknown_write_key", "no project has this write key"));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    Ok(Json(json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{host}/v1"),
                "protocol": "http",
                "addBundledMetadata": false,
                "unbundledIntegrations": [],
            }
        },
        "plan": { "track": { "__default": { "enabled": true, "integrations": {} } }, "identify": { "__default": { "enabled": true } }, "group": { "__default": { "enabled": true } } },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": { "sampleRate": 0 },
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
    }))
    .into_response())
}
