//! `/api/models`: model versions: list, read one, upload (checked like `leadscore check`),
//! activate (every lead is rescored), preview, run in shadow and compare.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use leadscore_service::App;
use leadscore_service::models::{Activated, ModelCreated, ModelDetail, ModelList};
use leadscore_service::preview::ModelPreview;
use leadscore_service::shadow::{ShadowComparison, ShadowStatus};

use super::{ErrorBody, blocking};
use crate::error::{ApiError, Code};
use crate::request::ApiQuery;
use crate::routes::ingest::read_body;

/// Model versions
#[utoipa::path(get, path = "/api/models", tag = "models", responses((status = 200, body = ModelList)),
    security(("api_key" = [])))]
pub async fn list_models(State(app): State<Arc<App>>) -> Result<Json<ModelList>, ApiError> {
    blocking(move || app.list_models()).await.map(Json)
}

/// One model version with its TOML source
#[utoipa::path(get, path = "/api/models/{version}", params(("version" = i64, Path, description = "model version")),
    tag = "models", responses((status = 200, body = ModelDetail), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_model(
    State(app): State<Arc<App>>,
    Path(version): Path<String>,
) -> Result<Json<ModelDetail>, ApiError> {
    let version = parse_version(&version)?;
    blocking(move || app.model_detail(version)).await.map(Json)
}

fn parse_version(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::new(Code::InvalidParameter, format!("`{text}` is not a model version number")))
}

/// A body of TOML text.
pub fn toml_text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::new(Code::InvalidBody, "the model must be UTF-8 TOML text"))
}

/// Upload a model version (TOML); it is checked like `leadscore check`
#[utoipa::path(post, path = "/api/models", request_body(content = String, content_type = "application/toml"),
    tag = "models", responses((status = 201, description = "stored (not active yet)", body = ModelCreated),
    (status = 422, description = "the model has errors; `diagnostics` lists them", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_model(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let source = toml_text(&read_body(body).await?)?;
    let created = blocking(move || app.add_model(&source)).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivateQuery {
    /// `true`: answer only when every lead is rescored.
    pub wait: Option<bool>,
}

/// Activate a model version; every lead is rescored (progress in `GET /api/models`)
#[utoipa::path(post, path = "/api/models/{version}/activate", params(("version" = i64, Path, description = "model version"), ActivateQuery),
    tag = "models", responses((status = 200, body = Activated), (status = 404, body = ErrorBody),
        (status = 422, description = "the stored model no longer checks", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn activate_model(
    State(app): State<Arc<App>>,
    Path(version): Path<String>,
    ApiQuery(query): ApiQuery<ActivateQuery>,
) -> Result<Json<Activated>, ApiError> {
    let version = parse_version(&version)?;
    let app2 = Arc::clone(&app);
    let mut progress = blocking(move || app2.activate(version)).await?;
    if query.wait == Some(true) {
        // The rescore always finishes: done, or stopped with `error` set.
        while !progress.finished {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            progress = app.rescore_progress();
            if progress.version != version {
                break;
            }
        }
    }
    Ok(Json(Activated { version, active: true, rescore: progress }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// Both models score every lead as of this instant (default now).
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
    /// `true`: also both backtests (slower: every lead is scored again before its outcome).
    #[param(value_type = Option<bool>)]
    pub backtest: Option<String>,
    /// For the backtests: how long before its outcome each lead is scored (default 1d).
    #[param(pattern = "^[0-9]+(\\.[0-9]+)?[smhdw]$", example = "1d")]
    pub gap: Option<String>,
}

/// What-if: a model version scored on every stored lead beside the active model, with the
/// rule-by-rule diff of the two files
#[utoipa::path(get, path = "/api/models/{version}/preview", tag = "models",
    params(("version" = i64, Path, description = "model version"), PreviewQuery),
    responses((status = 200, body = ModelPreview), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn preview_model(
    State(app): State<Arc<App>>,
    Path(version): Path<String>,
    ApiQuery(query): ApiQuery<PreviewQuery>,
) -> Result<Json<ModelPreview>, ApiError> {
    let version = parse_version(&version)?;
    let as_of = match query.as_of.as_deref() {
        Some(text) => super::parse_time("as_of", text)?,
        None => app.clock.now(),
    };
    let backtest = match query.backtest.as_deref() {
        None | Some("false") => None,
        Some("true") => {
            let gap_text = query.gap.unwrap_or_else(|| "1d".to_owned());
            Some(
                leadscore_core::time::Duration::parse(&gap_text)
                    .map_err(|e| ApiError::new(Code::InvalidParameter, format!("`gap`: `{gap_text}`: {e}")))?,
            )
        }
        Some(other) => {
            return Err(ApiError::new(Code::InvalidParameter, format!("`backtest`: `{other}` is not true or false")));
        }
    };
    blocking(move || app.preview_model(version, as_of, backtest)).await.map(Json)
}

/// Run a model version in shadow: it scores every message beside the active model (stored per
/// lead and version; no webhooks, history or CRM writes); the leads stored before are scored in
/// the background (`scored` of `leads`)
#[utoipa::path(post, path = "/api/models/{version}/shadow", tag = "models",
    params(("version" = i64, Path, description = "model version")),
    responses((status = 200, body = ShadowStatus), (status = 404, body = ErrorBody),
        (status = 409, description = "the version is the active model", body = ErrorBody),
        (status = 422, description = "the stored model no longer checks", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn start_shadow(
    State(app): State<Arc<App>>,
    Path(version): Path<String>,
) -> Result<Json<ShadowStatus>, ApiError> {
    let version = parse_version(&version)?;
    blocking(move || app.start_shadow(version)).await.map(Json)
}

/// Stop running a model version in shadow; its shadow scores are forgotten
#[utoipa::path(delete, path = "/api/models/{version}/shadow", tag = "models",
    params(("version" = i64, Path, description = "model version")),
    responses((status = 200, body = ShadowStatus), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn stop_shadow(
    State(app): State<Arc<App>>,
    Path(version): Path<String>,
) -> Result<Json<ShadowStatus>, ApiError> {
    let version = parse_version(&version)?;
    blocking(move || app.stop_shadow(version)).await.map(Json)
}

/// A shadow model against the active one over every stored lead: stage agreement, conversion
/// where they agree and where they do not, the stage-by-stage table and the leads that differ most
#[utoipa::path(get, path = "/api/models/{version}/compare", tag = "models",
    params(("version" = i64, Path, description = "model version")),
    responses((status = 200, body = ShadowComparison), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn compare_model(
    State(app): State<Arc<App>>,
    Path(version): Path<String>,
) -> Result<Json<ShadowComparison>, ApiError> {
    let version = parse_version(&version)?;
    blocking(move || app.compare_shadow(version)).await.map(Json)
}
