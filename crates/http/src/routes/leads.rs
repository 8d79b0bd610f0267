//! `/api/leads`: the list, one lead (as of a past time), its outcome, and deletion (GDPR).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use leadscore_core::OutcomeKind;
use leadscore_service::App;
use leadscore_service::leads::{
    ContactRecorded, LeadFilter, LeadId, LeadPage, LeadSort, LeadView, ListRequest, OutcomeRecorded,
};

use super::{ErrorBody, blocking, one_of, parse_limit, parse_time};
use crate::error::{ApiError, Code};
use crate::request::ApiQuery;
use crate::routes::ingest::read_body;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only leads in this stage.
    pub stage: Option<String>,
    /// Only leads with this grade.
    pub grade: Option<String>,
    /// Only leads with at least this total.
    #[param(value_type = Option<f64>)]
    pub min_total: Option<String>,
    /// Only leads of this account.
    pub account: Option<String>,
    /// Search in ids and traits.
    pub q: Option<String>,
    /// Only leads of this owner (the trait `[dashboard] owner_trait` names, default `owner`; any
    /// case).
    pub owner: Option<String>,
    /// `-total` (default), `total`, `-updated`, or `call` (the model's highest stage first, then
    /// by total).
    #[param(schema_with = sort_schema)]
    pub sort: Option<String>,
    /// Page size, 1–1000 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Where the previous page ended (`next_cursor`).
    pub cursor: Option<String>,
    /// Comma-separated extras per lead: `contributions`, `traits`.
    #[param(example = "contributions,traits")]
    pub include: Option<String>,
}

fn sort_schema() -> utoipa::openapi::Object {
    one_of(&["-total", "total", "-updated", "call"])
}

impl ListQuery {
    /// The use case's request, or which parameter is wrong.
    pub fn parse(&self) -> Result<ListRequest, ApiError> {
        let sort = match self.sort.as_deref().unwrap_or("-total") {
            "-total" => LeadSort::TotalDesc,
            "total" => LeadSort::TotalAsc,
            "-updated" => LeadSort::UpdatedDesc,
            "call" => LeadSort::CallNow,
            other => {
                return Err(ApiError::new(
                    Code::InvalidParameter,
                    format!("`sort`: `{other}` is not one of -total, total, -updated, call"),
                ));
            }
        };
        let limit = parse_limit(self.limit.as_deref(), 50)?;
        let min_total = match self.min_total.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                ApiError::new(Code::InvalidParameter, format!("`min_total`: `{text}` is not a number"))
            })?),
        };
        let empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let (mut contributions, mut traits) = (false, false);
        for part in self.include.as_deref().unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "contributions" => contributions = true,
                "traits" => traits = true,
                other => {
                    return Err(ApiError::new(
                        Code::InvalidParameter,
                        format!("`include`: `{other}` is not one of contributions, traits"),
                    ));
                }
            }
        }
        Ok(ListRequest {
            contributions,
            traits,
            filter: LeadFilter {
                stage: empty(&self.stage),
                grade: empty(&self.grade),
                min_total,
                account: empty(&self.account),
                search: empty(&self.q),
                owner: None,
            },
            owner: empty(&self.owner),
            sort,
            limit,
            cursor: empty(&self.cursor),
        })
    }
}

/// List leads
#[utoipa::path(get, path = "/api/leads", params(ListQuery), tag = "leads",
    responses((status = 200, body = LeadPage), (status = 400, description = "bad parameter", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_leads(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<LeadPage>, ApiError> {
    let request = query.parse()?;
    blocking(move || app.list_leads(&request)).await.map(Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// Score the lead as of this past instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
}

/// One lead: scores, contributions, events, history
#[utoipa::path(get, path = "/api/leads/{id}", params(("id" = String, Path, description = "lead id"), AsOfQuery),
    tag = "leads", responses((status = 200, description = "the lead", body = LeadView),
    (status = 404, description = "no such lead", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_lead(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<Json<LeadView>, ApiError> {
    let as_of = match query.as_of.as_deref() {
        Some(text) => parse_time("as_of", text)?,
        None => app.clock.now(),
    };
    blocking(move || app.lead_view(&LeadId::parse(&id)?, as_of)).await.map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OutcomeBody {
    /// converted, won, lost or disqualified.
    #[schema(example = "won")]
    pub outcome: String,
    /// When (RFC 3339); default now.
    pub at: Option<String>,
}

/// Record a lead's outcome
#[utoipa::path(post, path = "/api/leads/{id}/outcome", params(("id" = String, Path, description = "lead id")),
    request_body = OutcomeBody, tag = "leads",
    responses((status = 200, description = "the lead's new stage", body = OutcomeRecorded),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn post_outcome(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<OutcomeRecorded>, ApiError> {
    let bytes = read_body(body).await?;
    let parsed: OutcomeBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("the body must be {{\"outcome\", \"at\"}}: {e}")))?;
    let kind = OutcomeKind::parse(&parsed.outcome).ok_or_else(|| {
        ApiError::new(
            Code::InvalidOutcome,
            format!("`outcome`: `{}` is not one of converted, won, lost, disqualified", parsed.outcome),
        )
    })?;
    let at = match parsed.at.as_deref() {
        Some(text) => parse_time("at", text)?,
        None => app.clock.now(),
    };
    blocking(move || app.record_outcome(&LeadId::parse(&id)?, kind, at)).await.map(Json)
}

/// A contact noted by sales.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// When (RFC 3339); default now.
    pub at: Option<String>,
    /// Who contacted the lead (a name or e-mail), if to be said.
    pub by: Option<String>,
}

/// Note that sales contacted a lead (a `contacted` entry in its history; the score does not
/// change)
#[utoipa::path(post, path = "/api/leads/{id}/contacted", params(("id" = String, Path, description = "lead id")),
    request_body(content = ContactBody, description = "optional: an empty body means now, unnamed"), tag = "leads",
    responses((status = 200, body = ContactRecorded), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_contacted(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<ContactRecorded>, ApiError> {
    let bytes = read_body(body).await?;
    let parsed: ContactBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ContactBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(Code::InvalidJson, format!("the body must be {{\"at\", \"by\"}} or empty: {e}"))
        })?
    };
    let at = match parsed.at.as_deref() {
        Some(text) => parse_time("at", text)?,
        None => app.clock.now(),
    };
    blocking(move || app.record_contact(&LeadId::parse(&id)?, at, parsed.by.as_deref())).await.map(Json)
}

/// Delete a lead and everything about it (GDPR)
#[utoipa::path(delete, path = "/api/leads/{id}", params(("id" = String, Path, description = "lead id")), tag = "leads",
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_lead(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(move || app.delete_lead(&LeadId::parse(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
