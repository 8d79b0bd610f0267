//! `/api/syncs`: the CRM syncs (`[[sync]]`), each sync's outbox lead by lead, and writing a lead
//! again.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use leadscore_service::App;
use leadscore_service::crm::log::{SyncList, SyncRecordList, SyncRecordView};

use super::webhooks::DeliveryQuery;
use super::{ErrorBody, blocking};
use crate::error::ApiError;
use crate::request::ApiQuery;

/// The CRM syncs, with their health and how many leads are pending, written and dead
#[utoipa::path(get, path = "/api/syncs", tag = "syncs",
    responses((status = 200, body = SyncList)), security(("api_key" = [])))]
pub async fn list_syncs(State(app): State<Arc<App>>) -> Result<Json<SyncList>, ApiError> {
    blocking(move || app.list_syncs()).await.map(Json)
}

/// A sync's outbox, lead by lead, the latest attempted first
#[utoipa::path(get, path = "/api/syncs/{name}/records", tag = "syncs",
    params(("name" = String, Path, description = "the sync's name"), DeliveryQuery),
    responses((status = 200, body = SyncRecordList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_sync_records(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<SyncRecordList>, ApiError> {
    let (status, limit) = query.parse()?;
    blocking(move || app.list_sync_records(&name, status, limit)).await.map(Json)
}

/// Write a lead to the CRM again, now, whatever its status
#[utoipa::path(post, path = "/api/syncs/{name}/records/{id}/resend", tag = "syncs",
    params(("name" = String, Path, description = "the sync's name"), ("id" = String, Path, description = "lead id")),
    responses((status = 200, description = "the lead's outbox entry, pending and due now", body = SyncRecordView),
    (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn resend_sync_record(
    State(app): State<Arc<App>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<SyncRecordView>, ApiError> {
    blocking(move || app.resend_sync_record(&name, &id)).await.map(Json)
}
