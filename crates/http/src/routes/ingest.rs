//! The Segment tracking API routes (SPEC §6.1): `/v1/batch` and the single-message paths, the
//! browser's short paths, and the settings analytics.js loads. CORS is open on these routes, as
//! browsers post from any site.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use leadscore_core::event::MessageKind;
use serde_json::json;

use leadscore_service::App;
use leadscore_service::auth::{Role, fingerprint};

use crate::connections::BodyTimeout;
use crate::error::{ApiError, Code};
use crate::request::{ApiQuery, Peer, client_origin};
use crate::routes::Accepted;
use crate::segment::{MAX_BATCH_BYTES, basic_user, decode, type_of_path};

/// Reads the request body: over the batch limit is a 413 of our own, a body that does not arrive
/// within the server's `body_timeout` a 408.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BATCH_BYTES + 1).await.map_err(|e| {
        let inner = e.into_inner();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*inner);
        while let Some(error) = source {
            if error.is::<BodyTimeout>() {
                return ApiError::new(Code::RequestTimeout, "the request body did not arrive within the time allowed");
            }
            if error.is::<http_body_util::LengthLimitError>() {
                return ApiError::new(
                    Code::BatchTooLarge,
                    format!("the request body is over {MAX_BATCH_BYTES} bytes (500 KB)"),
                );
            }
            source = error.source();
        }
        ApiError::new(Code::InvalidBody, format!("the request body could not be read: {inner}"))
    })
}

async fn accept(
    app: Arc<App>,
    implied: Option<MessageKind>,
    headers: HeaderMap,
    query_key: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let bytes = read_body(body).await?;
    let received_at = app.clock.now();
    let decoded = decode(implied, &headers, &bytes, &app.keys, received_at, app.settings.max_future, query_key);
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            metrics::counter!("leadscore_ingest_rejected_total", "reason" => e.code.name()).increment(1);
            return Err(e);
        }
    };
    let n = decoded.messages.len();
    app.ingest(decoded.messages).await?;
    metrics::histogram!("leadscore_ingest_request_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("leadscore_ingest_request_events").record(n as f64);
    Ok(Json(Accepted { success: true }).into_response())
}

/// `POST /v1/batch`, `/v1/b`.
pub async fn batch(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    accept(app, None, headers, None, body).await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteKeyQuery {
    /// The write key (RudderStack's browser SDK sends it here).
    #[serde(rename = "writeKey")]
    pub write_key: Option<String>,
}

/// `POST /beacon/v1/batch?writeKey=…`: RudderStack's beacon transport (`navigator.sendBeacon`,
/// `text/plain`, the write key only in the query).
pub async fn beacon_batch(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<WriteKeyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    accept(app, None, headers, query.write_key.as_deref(), body).await
}

/// `GET /sourceConfig/?writeKey=…`: the source configuration RudderStack's JavaScript SDK (v3)
/// loads before it sends anything: an enabled source without device-mode destinations, so every
/// event comes here.
pub async fn source_config(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<WriteKeyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = basic_user(&headers).filter(|k| !k.is_empty()).or(query.write_key).ok_or_else(|| {
        ApiError::new(Code::MissingWriteKey, "no write key: send it as the Basic-auth user name or `writeKey`")
    })?;
    if !app.keys.has(&key, Role::Write) {
        return Err(ApiError::new(Code::InvalidWriteKey, "the write key is not valid"));
    }
    Ok(Json(json!({
        "isHosted": false,
        "source": {
            "id": format!("leadscore-{}", &fingerprint(&key)[..12]),
            "name": "Leadscore",
            "writeKey": key,
            "enabled": true,
            "workspaceId": "leadscore",
            "config": {},
            "destinations": [],
        }
    }))
    .into_response())
}

/// `POST /v1/{identify|track|page|screen|group|alias}` and `/v1/{i|t|p|s|g|a}`.
pub async fn single(
    State(app): State<Arc<App>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match type_of_path(&kind) {
        Some(implied) => accept(app, Some(implied), headers, None, body).await,
        None => Err(ApiError::new(Code::UnknownPath, format!("no tracking API endpoint `/v1/{kind}`"))),
    }
}

/// `GET /v1/projects/{writeKey}/settings`: what analytics.js needs to send its events here.
///
/// The address analytics.js should post to is `public_url` when configured, else this request's
/// `Host` with the scheme a trusted proxy reports (`X-Forwarded-Proto`): a page on an https site
/// must post over https.
pub async fn settings(
    State(app): State<Arc<App>>,
    Path(write_key): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !app.keys.has(&write_key, Role::Write) {
        return Err(ApiError::new(Code::UnknownWriteKey, "no project has this write key"));
    }
    let origin = client_origin(&app.settings, &headers, peer);
    Ok(Json(json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{}/v1", origin.authority),
                "protocol": origin.scheme,
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
