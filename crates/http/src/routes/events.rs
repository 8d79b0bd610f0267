//! `/api/events/unreadable`: stored messages the engine cannot read.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use leadscore_service::App;
use leadscore_service::unreadable::UnreadableList;

use super::{LimitQuery, blocking, parse_limit};
use crate::error::ApiError;
use crate::request::ApiQuery;

/// Stored messages the engine cannot read (left out of every score), most recently found first
#[utoipa::path(get, path = "/api/events/unreadable", params(LimitQuery), tag = "operations",
    responses((status = 200, body = UnreadableList)), security(("api_key" = [])))]
pub async fn list_unreadable(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<UnreadableList>, ApiError> {
    let limit = parse_limit(query.limit.as_deref(), 100)?;
    blocking(move || app.list_unreadable(limit)).await.map(Json)
}
