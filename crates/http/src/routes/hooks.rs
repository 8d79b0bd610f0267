//! `/hooks`: webhooks the CRM calls, authenticated by their signatures rather than API keys:
//! HubSpot's contact property changes for a sync (`/hooks/hubspot/{sync}`) and the generic signed
//! outcome webhook (`/hooks/outcomes`). Both record outcomes through the outcome path.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method};

use leadscore_service::App;
use leadscore_service::crm::inbound::{InboundResult, SignedRequest};

use super::ErrorBody;
use super::blocking;
use super::ingest::read_body;
use crate::error::ApiError;
use crate::request::{Peer, client_origin};

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// HubSpot's webhook for a sync: contact and deal property changes that are outcomes
#[utoipa::path(post, path = "/hooks/hubspot/{sync}", tag = "crm",
    params(("sync" = String, Path, description = "the sync's name"),
        ("X-HubSpot-Request-Timestamp" = String, Header, description = "milliseconds since 1970; at most 5 minutes off")),
    request_body(content = Object, description = "HubSpot's webhook events (an array)"),
    responses((status = 200, body = InboundResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, description = "a deal's contacts could not be looked up in HubSpot: HubSpot retries", body = ErrorBody)),
    security(("hubspot_signature" = [])))]
pub async fn hubspot(
    State(app): State<Arc<App>>,
    Path(sync): Path<String>,
    Peer(peer): Peer,
    OriginalUri(uri): OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<InboundResult>, ApiError> {
    let bytes = read_body(body).await?;
    let origin = client_origin(&app.settings, &headers, peer);
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    // HubSpot signs the URL it called; behind a proxy that ends TLS the scheme seen here differs.
    let urls = vec![format!("{origin}{path}"), format!("https://{}{path}", origin.authority)];
    let signature = header(&headers, "x-hubspot-signature-v3");
    let timestamp = header(&headers, "x-hubspot-request-timestamp");
    let method = method.as_str().to_owned();
    blocking(move || {
        let request = SignedRequest {
            method: &method,
            urls,
            signature: signature.as_deref(),
            timestamp: timestamp.as_deref(),
            body: &bytes,
        };
        app.hubspot_webhook(&sync, &request)
    })
    .await
    .map(Json)
}

/// The generic outcome webhook (Salesforce Flow, Zapier, a script), signed like Leadscore's own
#[utoipa::path(post, path = "/hooks/outcomes", tag = "crm",
    request_body(content = Object, description = "{\"lead_id\" or \"email\", \"outcome\", \"at\"?}, or {\"outcomes\": [...]}"),
    responses((status = 200, body = InboundResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)), security(("leadscore_signature" = [])))]
pub async fn outcomes(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<InboundResult>, ApiError> {
    let bytes = read_body(body).await?;
    let signature = header(&headers, "leadscore-signature");
    blocking(move || app.outcome_webhook(signature.as_deref(), &bytes)).await.map(Json)
}
