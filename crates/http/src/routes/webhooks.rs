//! `/api/webhooks/deliveries`: the webhook delivery log, and sending a delivery again.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

use leadscore_service::App;
use leadscore_service::deliveries::{DeliveryList, DeliveryStatus, DeliveryView};

use super::{ErrorBody, blocking, one_of, parse_limit};
use crate::error::{ApiError, Code};
use crate::request::ApiQuery;

fn delivery_status_schema() -> utoipa::openapi::Object {
    one_of(&DeliveryStatus::ALL.map(DeliveryStatus::as_str))
}

/// An outbox list's query (webhook deliveries, a CRM sync's records): a status and a page size.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// pending, delivered or dead.
    #[param(schema_with = delivery_status_schema)]
    pub status: Option<String>,
    /// At most this many, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

impl DeliveryQuery {
    /// The status asked for (if any) and the page size (default 100).
    pub fn parse(&self) -> Result<(Option<DeliveryStatus>, usize), ApiError> {
        let status = match self.status.as_deref() {
            None => None,
            Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidParameter,
                    format!("`status`: `{text}` is not one of pending, delivered, dead"),
                )
            })?),
        };
        Ok((status, parse_limit(self.limit.as_deref(), 100)?))
    }
}

/// The webhook delivery log, newest first
#[utoipa::path(get, path = "/api/webhooks/deliveries", params(DeliveryQuery), tag = "webhooks",
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_deliveries(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let (status, limit) = query.parse()?;
    blocking(move || app.list_deliveries(status, limit)).await.map(Json)
}

/// Send a delivery again (now), whatever its status
#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/resend", params(("id" = String, Path, description = "delivery id")),
    tag = "webhooks", responses((status = 200, description = "the delivery, pending again", body = DeliveryView),
    (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn resend_delivery(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    blocking(move || app.resend_delivery(&id)).await.map(Json)
}
