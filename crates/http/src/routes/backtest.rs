//! `/api/backtest`: a model (the body, or the active one) backtested over the stored history.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use leadscore_core::time::Duration;
use leadscore_service::App;
use leadscore_service::backtest::BacktestRun;

use super::{ErrorBody, blocking, parse_time};
use crate::error::{ApiError, Code};
use crate::request::ApiQuery;
use crate::routes::ingest::read_body;
use crate::routes::models::toml_text;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BacktestQuery {
    /// Open leads are scored as of this instant (default now).
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
    /// How long before its outcome each lead is scored (default 1d).
    #[param(pattern = "^[0-9]+(\\.[0-9]+)?[smhdw]$", example = "1d")]
    pub gap: Option<String>,
}

/// Backtest a model (the TOML body, or the active model) over stored history
#[utoipa::path(post, path = "/api/backtest", params(BacktestQuery),
    request_body(content = String, content_type = "application/toml", description = "optional model; default the active one"),
    tag = "models", responses((status = 200, description = "the backtest report (SPEC §5)", body = Object),
    (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn backtest(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<BacktestQuery>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bytes = read_body(body).await?;
    let as_of = match query.as_of.as_deref() {
        Some(text) => parse_time("as_of", text)?,
        None => app.clock.now(),
    };
    let gap_text = query.gap.unwrap_or_else(|| "1d".to_owned());
    let gap = Duration::parse(&gap_text)
        .map_err(|e| ApiError::new(Code::InvalidParameter, format!("`gap`: `{gap_text}`: {e}")))?;
    let source = toml_text(&bytes)?;
    let run: BacktestRun = blocking(move || app.backtest(&source, as_of, gap)).await?;
    // Through a JSON value, whose objects keep their keys sorted, as this answer always has.
    serde_json::to_value(run).map(Json).map_err(|e| ApiError::internal("backtest", &e))
}
