//! The routes, one file per resource: the tracking API ([`ingest`]), then the read and admin API
//! (SPEC §6.2) behind bearer API keys: [`leads`], [`accounts`], [`models`], [`backtest`],
//! [`webhooks`] (the delivery log), [`syncs`] (CRM write-back), [`events`] (unreadable messages),
//! [`hooks`] (webhooks the CRM calls, signed instead of keyed), and [`health`] (liveness,
//! readiness, metrics, the OpenAPI document). Handlers parse the request, call one use case of
//! [`leadscore_service::App`] off the async threads, and serialise its typed view.

pub mod accounts;
pub mod backtest;
pub mod events;
pub mod health;
pub mod hooks;
pub mod ingest;
pub mod leads;
pub mod models;
pub mod syncs;
pub mod webhooks;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use leadscore_core::time::{self, Millis};
use leadscore_service::ServiceError;

use crate::error::{ApiError, Code};

/// Runs a blocking use case off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal("task", &e)),
    }
}

/// An RFC 3339 parameter.
pub fn parse_time(name: &str, text: &str) -> Result<Millis, ApiError> {
    time::parse_timestamp(text).ok_or_else(|| {
        ApiError::new(
            Code::InvalidParameter,
            format!("`{name}`: `{text}` is not an RFC 3339 timestamp (e.g. 2024-05-01T00:00:00Z)"),
        )
    })
}

/// A page size: a whole number from 1 to 1000.
pub fn parse_limit(text: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match text {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                Code::InvalidParameter,
                format!("`limit`: `{text}` is not a whole number from 1 to 1000"),
            )),
        },
    }
}

/// A string that is one of `values`.
fn one_of(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// The server can write to its database.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: String,
    pub database: String,
}

/// `{"success": true}`: the events are stored durably and scored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub success: bool,
}

/// The error body every endpoint uses.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    pub message: String,
}
