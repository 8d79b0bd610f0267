//! The read and admin API (SPEC §6.2), behind bearer API keys: leads (list, one, as of a past
//! time, outcome, delete), accounts, model versions, backtests over stored history and the
//! webhook delivery log.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use leadscore_core::compact::LeadState;
use leadscore_core::engine::{events_as_of, round2};
use leadscore_core::time::{self, Duration, Millis};
use leadscore_core::{OutcomeKind, Score, evaluate};
use leadscore_learn::backtest::{ModelNames, build_report, record_lead};
use leadscore_store::{DeliveryStatus, LeadCursor, LeadFilter, LeadRow, LeadSort, OutcomeRow, StoreError, Tx};

use crate::app::{App, ModelProblem, RescoreProgress};
use crate::error::{ApiError, Code};
use crate::http::ApiQuery;
use crate::http::ingest::read_body;
use crate::scoring::{
    account_book, contributions_json, load_histories, load_history, note_unreadable, rescore_leads, scores_json,
};

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(ApiError::internal("task", &e)))
}

fn lead_not_found(id: &str) -> ApiError {
    ApiError::new(Code::LeadNotFound, format!("no lead with id `{id}`"))
}

fn parse_time(name: &str, text: &str) -> Result<Millis, ApiError> {
    time::parse_timestamp(text).ok_or_else(|| {
        ApiError::new(
            Code::InvalidParameter,
            format!("`{name}`: `{text}` is not an RFC 3339 timestamp (e.g. 2024-05-01T00:00:00Z)"),
        )
    })
}

/// A lead in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadSummary {
    pub id: String,
    #[schema(value_type = Object)]
    pub scores: Value,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    pub updated_at: String,
    /// With `include=contributions`: the stored contributions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub contributions: Option<Value>,
    /// With `include=traits`: the traits as of the stored score.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub traits: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadPage {
    pub leads: Vec<LeadSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn summary(row: &LeadRow) -> LeadSummary {
    let score = row.score.as_ref();
    LeadSummary {
        id: row.id.clone(),
        scores: score.and_then(|s| serde_json::from_str(&s.scores).ok()).unwrap_or_else(|| json!({})),
        total: round2(score.map_or(0.0, |s| s.total)),
        stage: score.map_or_else(|| leadscore_core::model::DEFAULT_STAGE.to_owned(), |s| s.stage.clone()),
        grade: score.and_then(|s| s.grade.clone()),
        updated_at: time::format_timestamp(row.updated_at),
        contributions: None,
        traits: None,
    }
}

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
    /// `-total` (default), `total`, `-updated`, or `call` (SQL first, then by total).
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

/// A string that is one of `values`.
fn one_of(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn sort_schema() -> utoipa::openapi::Object {
    one_of(&["-total", "total", "-updated", "call"])
}

fn delivery_status_schema() -> utoipa::openapi::Object {
    one_of(&DeliveryStatus::ALL.map(DeliveryStatus::as_str))
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

fn encode_cursor(sort: LeadSort, row: &LeadRow) -> String {
    let key = Tx::sort_key(row, sort);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}\n{}", row.id))
}

fn decode_cursor(text: &str) -> Result<LeadCursor, ApiError> {
    let bad = || ApiError::new(Code::InvalidCursor, "`cursor` is not one this API returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (key, id) = text.split_once('\n').ok_or_else(bad)?;
    Ok(LeadCursor { key: key.parse().map_err(|_| bad())?, id: id.to_owned() })
}

/// The parsed list request.
pub struct ListRequest {
    pub filter: LeadFilter,
    pub sort: LeadSort,
    pub limit: usize,
    pub cursor: Option<LeadCursor>,
    pub contributions: bool,
    pub traits: bool,
}

impl ListQuery {
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
            },
            sort,
            limit,
            cursor: self.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()?,
        })
    }
}

/// One page of leads (also used by the dashboard).
pub fn list_page(tx: &mut Tx<'_>, request: &ListRequest) -> Result<LeadPage, leadscore_store::StoreError> {
    let mut rows = tx.list_leads(&request.filter, request.sort, request.limit + 1, request.cursor.as_ref())?;
    let more = rows.len() > request.limit;
    rows.truncate(request.limit);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(request.sort, r)) } else { None };
    let leads = rows
        .iter()
        .map(|row| {
            let mut s = summary(row);
            let stored = row.score.as_ref();
            if request.contributions {
                s.contributions =
                    Some(stored.and_then(|x| serde_json::from_str(&x.contributions).ok()).unwrap_or(json!([])));
            }
            if request.traits {
                s.traits = Some(stored.and_then(|x| serde_json::from_str(&x.current_traits).ok()).unwrap_or(json!({})));
            }
            s
        })
        .collect();
    Ok(LeadPage { leads, next_cursor })
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
    blocking(move || Ok(app.store.read(|tx| list_page(tx, &request))?)).await.map(Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// Score the lead as of this past instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
}

/// A contribution: which rule gave how many points (SPEC §2.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContributionView {
    pub rule: String,
    pub dimension: String,
    /// Rounded to 2 decimals.
    pub points: f64,
    /// How many events (or 1/0 for trait and inactivity rules) counted.
    pub matched: u64,
    pub last_matched_at: Option<String>,
}

/// A lead's account and its traits as of the view's instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRef {
    pub id: String,
    #[schema(value_type = Object)]
    pub traits: Value,
}

/// A stage change in the lead's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: String,
    pub stage: String,
    pub total: f64,
}

/// One lead as of an instant (SPEC §6.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadView {
    pub id: String,
    #[schema(value_type = Object)]
    pub traits: Value,
    pub account: Option<AccountRef>,
    /// Points per dimension, in model order.
    #[schema(value_type = std::collections::HashMap<String, f64>)]
    pub scores: Value,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    /// With a calibrated model: the probability of converting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[schema(value_type = Vec<ContributionView>)]
    pub contributions: Value,
    /// The latest 50 messages, newest first, as stored.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    pub history: Vec<HistoryEntry>,
    pub as_of: String,
    pub model_version: i64,
}

/// The full view of one lead as of an instant (the dashboard reads it as JSON).
pub fn lead_view(app: &App, tx: &mut Tx<'_>, id: &str, as_of: Millis) -> Result<Option<Value>, StoreError> {
    Ok(lead_view_typed(app, tx, id, as_of)?.and_then(|view| serde_json::to_value(view).ok()))
}

fn lead_view_typed(app: &App, tx: &mut Tx<'_>, id: &str, as_of: Millis) -> Result<Option<LeadView>, StoreError> {
    let active = app.model();
    let Some((history, accounts)) = load_history(tx, &active.model, id)? else { return Ok(None) };
    let score = evaluate(&active.model, &history, &accounts, as_of);
    let events: Vec<Value> =
        events_as_of(Some(&active.model), &history, as_of).into_iter().rev().take(50).map(|e| e.body.clone()).collect();
    let entries: Vec<HistoryEntry> = tx
        .history_of(id)?
        .into_iter()
        .filter(|h| h.at <= as_of)
        .map(|h| HistoryEntry { at: time::format_timestamp(h.at), stage: h.stage, total: h.total })
        .collect();
    let account = score.account.as_ref().map(|account_id| {
        let mut traits = accounts.traits_at(account_id, as_of);
        traits.remove("id");
        AccountRef { id: account_id.clone(), traits: Value::Object(traits) }
    });
    Ok(Some(LeadView {
        id: id.to_owned(),
        traits: Value::Object(score.traits.clone()),
        account,
        scores: scores_json(&active.model, &score),
        total: round2(score.total),
        stage: score.stage.clone(),
        grade: score.grade.clone(),
        probability: score.probability.map(|p| (p * 10_000.0).round() / 10_000.0),
        contributions: contributions_json(&score),
        events,
        history: entries,
        as_of: time::format_timestamp(as_of),
        model_version: active.version,
    }))
}

/// The lead's total and stage replayed at `n` instants from its first event to `to` (the score as
/// it was then, with the current model), for charts. Empty for an unknown lead.
pub fn score_series(
    app: &App,
    tx: &mut Tx<'_>,
    id: &str,
    to: Millis,
    n: usize,
) -> Result<Vec<(Millis, f64, String)>, StoreError> {
    let active = app.model();
    let Some((history, accounts)) = load_history(tx, &active.model, id)? else { return Ok(Vec::new()) };
    let Some(from) = history.events.iter().map(|e| e.at.max(e.visible_at)).min() else { return Ok(Vec::new()) };
    let from = from.min(to);
    let steps = n.max(2) - 1;
    let mut state = LeadState::of(&active.model, &history);
    Ok((0..=steps)
        .map(|i| {
            let t = from + (to - from) * i as i64 / steps as i64;
            let score = state.score_at(&active.model, &accounts, t);
            (t, round2(score.total), score.stage)
        })
        .collect())
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
    blocking(move || app.store.read(|tx| lead_view_typed(&app, tx, &id, as_of))?.ok_or_else(|| lead_not_found(&id)))
        .await
        .map(Json)
}

/// An outcome was recorded; the lead's stage follows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeRecorded {
    pub id: String,
    pub outcome: String,
    pub at: String,
    pub stage: String,
    pub total: f64,
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
    let now = app.clock.now();
    let at = match parsed.at.as_deref() {
        Some(text) => parse_time("at", text)?,
        None => now,
    };
    blocking(move || {
        let active = app.model();
        let found = app.store.write(|tx| {
            if tx.lead(&id)?.is_none() {
                return Ok(None);
            }
            tx.lock_leads(std::slice::from_ref(&id))?;
            tx.add_outcome(&OutcomeRow { lead_id: id.clone(), outcome: kind.as_str().to_owned(), at }, now)?;
            rescore_leads(tx, &active, &app.hooks, &[(id.clone(), now)])?;
            tx.lead(&id)
        })?;
        let row = found.ok_or_else(|| lead_not_found(&id))?;
        let s = summary(&row);
        Ok(OutcomeRecorded {
            id: s.id,
            outcome: kind.as_str().to_owned(),
            at: time::format_timestamp(at),
            stage: s.stage,
            total: s.total,
        })
    })
    .await
    .map(Json)
}

/// Delete a lead and everything about it (GDPR)
#[utoipa::path(delete, path = "/api/leads/{id}", params(("id" = String, Path, description = "lead id")), tag = "leads",
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_lead(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(move || if app.delete_lead(&id)? { Ok(StatusCode::NO_CONTENT) } else { Err(lead_not_found(&id)) }).await
}

/// An account's rolled-up scores (SPEC §2.2) and its leads.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    #[schema(value_type = Object)]
    pub traits: Value,
    /// How the leads' scores roll up: max, sum or mean.
    pub aggregate: String,
    #[schema(value_type = std::collections::HashMap<String, f64>)]
    pub scores: Value,
    pub total: f64,
    pub stage: String,
    pub leads: Vec<AccountLead>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLead {
    pub id: String,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
}

/// An account's rolled-up scores and its leads
#[utoipa::path(get, path = "/api/accounts/{id}", params(("id" = String, Path, description = "account (group) id")),
    tag = "accounts", responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_account(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<AccountView>, ApiError> {
    let now = app.clock.now();
    blocking(move || {
        let active = app.model();
        let (rows, (book, unreadable)) = app.store.read(|tx| {
            let book = account_book(tx, &active.model, &active.projection, std::slice::from_ref(&id))?;
            Ok((tx.leads_of_account(&id)?, book))
        })?;
        note_unreadable(&unreadable);
        if rows.is_empty() && book.is_empty() {
            return Err(ApiError::new(Code::AccountNotFound, format!("no account with id `{id}`")));
        }
        let scores: Vec<Score> = rows.iter().map(|row| score_of_row(&active.model, row, now)).collect();
        let refs: Vec<&Score> = scores.iter().collect();
        let rolled = leadscore_core::engine::evaluate_account(&active.model, &id, &refs, now);
        let mut traits = book.traits_at(&id, now);
        traits.remove("id");
        let dims: serde_json::Map<String, Value> = active
            .model
            .dimensions
            .iter()
            .zip(&rolled.dimensions)
            .map(|(d, v)| (d.name.clone(), json!(round2(*v))))
            .collect();
        Ok(AccountView {
            aggregate: format!("{:?}", active.model.aggregate).to_lowercase(),
            scores: Value::Object(dims),
            total: round2(rolled.total),
            stage: rolled.stage,
            leads: rows
                .iter()
                .map(|r| {
                    let s = summary(r);
                    AccountLead { id: s.id, total: s.total, stage: s.stage, grade: s.grade }
                })
                .collect(),
            traits: Value::Object(traits),
            id,
        })
    })
    .await
    .map(Json)
}

/// A stored lead row as a `Score` (for account roll-ups).
fn score_of_row(model: &leadscore_core::CheckedModel, row: &LeadRow, now: Millis) -> Score {
    let stored: serde_json::Map<String, Value> =
        row.score.as_ref().and_then(|s| serde_json::from_str(&s.scores).ok()).unwrap_or_default();
    Score {
        lead_id: row.id.clone(),
        as_of: now,
        dimensions: model
            .dimensions
            .iter()
            .map(|d| stored.get(&d.name).and_then(Value::as_f64).unwrap_or(0.0))
            .collect(),
        total: row.score.as_ref().map_or(0.0, |s| s.total),
        stage: row.score.as_ref().map_or_else(String::new, |s| s.stage.clone()),
        grade: None,
        probability: None,
        account: None,
        traits: serde_json::Map::new(),
        contributions: Vec::new(),
    }
}

// ---- models ------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelSummary {
    pub version: i64,
    pub name: String,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelSummary>,
    /// The full rescore after the latest activation.
    pub rescore: RescoreProgress,
}

/// Model versions
#[utoipa::path(get, path = "/api/models", tag = "models", responses((status = 200, body = ModelList)),
    security(("api_key" = [])))]
pub async fn list_models(State(app): State<Arc<App>>) -> Result<Json<ModelList>, ApiError> {
    blocking(move || {
        let rows = app.store.read(|tx| tx.models())?;
        let rescore = app.rescore.lock().map(|p| p.clone()).unwrap_or_default();
        Ok(ModelList {
            models: rows
                .into_iter()
                .map(|r| ModelSummary {
                    version: r.version,
                    name: r.name,
                    created_at: time::format_timestamp(r.created_at),
                    activated_at: r.activated_at.map(time::format_timestamp),
                    active: r.active,
                })
                .collect(),
            rescore,
        })
    })
    .await
    .map(Json)
}

/// A model version with its TOML source.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDetail {
    pub version: i64,
    pub name: String,
    pub source: String,
    pub active: bool,
    pub created_at: String,
    pub activated_at: Option<String>,
}

/// A stored (not yet active) model version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCreated {
    pub version: i64,
    pub name: String,
    pub active: bool,
    /// The checker's warnings (as `leadscore check --json`).
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<Value>,
}

/// An activated model version and the progress of its full rescore.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activated {
    pub version: i64,
    pub active: bool,
    pub rescore: RescoreProgress,
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
    blocking(move || {
        let row = app.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        Ok(ModelDetail {
            version: row.version,
            name: row.name,
            source: row.source,
            active: row.active,
            created_at: time::format_timestamp(row.created_at),
            activated_at: row.activated_at.map(time::format_timestamp),
        })
    })
    .await
    .map(Json)
}

fn parse_version(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::new(Code::InvalidParameter, format!("`{text}` is not a model version number")))
}

fn model_not_found(version: i64) -> ApiError {
    ApiError::new(Code::ModelNotFound, format!("no model version {version}"))
}

fn invalid_model(source: &str, diagnostics: &[leadscore_core::Diagnostic]) -> ApiError {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let list: Vec<Value> = diagnostics.iter().map(|d| d.to_json("model.toml", source)).collect();
    let first = diagnostics.iter().find(|d| d.is_error()).map(|d| d.headline("model.toml", source)).unwrap_or_default();
    ApiError::new(
        Code::InvalidModel,
        format!("the model has {errors} error{}: {first}", if errors == 1 { "" } else { "s" }),
    )
    .with_details("diagnostics", Value::Array(list))
}

fn model_problem(source: &str, problem: ModelProblem) -> ApiError {
    match problem {
        ModelProblem::Invalid(d) => invalid_model(source, &d),
        ModelProblem::Store(e) => e.into(),
    }
}

/// Upload a model version (TOML); it is checked like `leadscore check`
#[utoipa::path(post, path = "/api/models", request_body(content = String, content_type = "application/toml"),
    tag = "models", responses((status = 201, description = "stored (not active yet)", body = ModelCreated),
    (status = 422, description = "the model has errors; `diagnostics` lists them", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_model(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let source = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(Code::InvalidBody, "the model must be UTF-8 TOML text"))?;
    blocking(move || {
        let (version, name, warnings) = app.add_model(&source).map_err(|p| model_problem(&source, p))?;
        let warnings: Vec<Value> = warnings.iter().map(|d| d.to_json("model.toml", &source)).collect();
        Ok((StatusCode::CREATED, Json(ModelCreated { version, name, active: false, warnings })).into_response())
    })
    .await
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
    let progress = blocking(move || match app2.activate(version) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(model_not_found(version)),
        Err(problem) => Err(model_problem("", problem)),
    })
    .await?;
    let mut progress = progress;
    if query.wait == Some(true) {
        // The rescore always finishes: done, or stopped with `error` set.
        while !progress.finished {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            progress = app.rescore.lock().map(|p| p.clone()).unwrap_or_default();
            if progress.version != version {
                break;
            }
        }
    }
    Ok(Json(Activated { version, active: true, rescore: progress }))
}

// ---- backtest ------------------------------------------------------------------------------------------

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
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let as_of = match query.as_of.as_deref() {
        Some(text) => parse_time("as_of", text)?,
        None => app.clock.now(),
    };
    let gap_text = query.gap.unwrap_or_else(|| "1d".to_owned());
    let gap = Duration::parse(&gap_text)
        .map_err(|e| ApiError::new(Code::InvalidParameter, format!("`gap`: `{gap_text}`: {e}")))?;
    let source = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(Code::InvalidBody, "the model must be UTF-8 TOML text"))?;
    blocking(move || run_backtest(&app, &source, as_of, gap)).await.map(Json)
}

/// Backtests `source` (or the active model when it is blank) over the stored history and keeps
/// the report as the latest (the dashboard shows it).
pub fn run_backtest(app: &App, source: &str, as_of: Millis, gap: Duration) -> Result<Value, ApiError> {
    let active = app.model();
    let custom;
    let model = if source.trim().is_empty() {
        &active.model
    } else {
        custom = crate::app::check_source(source).map_err(|d| invalid_model(source, &d))?.0;
        &custom
    };
    let projection = model.event_projection();
    let records = app.store.read(|tx| {
        let mut records = Vec::new();
        let mut after = String::new();
        loop {
            let ids = tx.lead_ids_after(&after, 1000)?;
            let Some(last) = ids.last().cloned() else { break };
            let loaded = load_histories(tx, model, &projection, &ids)?;
            note_unreadable(&loaded.unreadable);
            records.extend(
                loaded.leads.iter().map(|(_, history)| record_lead(model, history, &loaded.accounts, as_of, gap)),
            );
            after = last;
        }
        Ok(records)
    })?;
    if records.is_empty() {
        return Err(ApiError::new(Code::NoLeads, "there are no stored leads to backtest"));
    }
    let names = ModelNames {
        model: &model.name,
        stages: model.stages.iter().map(|s| s.name.as_str()).collect(),
        rules: model.rules.iter().map(|r| (r.name.as_str(), model.dimensions[r.dimension].name.as_str())).collect(),
    };
    let built = build_report(&names, &records, 42);
    let report = json!({ "as_of": time::format_timestamp(as_of), "gap": gap.to_string(), "models": [built] });
    if let Ok(mut latest) = app.latest_backtest.lock() {
        *latest = Some((app.clock.now(), report.clone()));
    }
    Ok(report)
}

// ---- deliveries ------------------------------------------------------------------------------------------

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

/// The webhook delivery log, newest first
#[utoipa::path(get, path = "/api/webhooks/deliveries", params(DeliveryQuery), tag = "webhooks",
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_deliveries(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::new(Code::InvalidParameter, format!("`status`: `{text}` is not one of pending, delivered, dead"))
        })?),
    };
    let limit = parse_limit(query.limit.as_deref(), 100)?;
    blocking(move || {
        let rows = app.store.read(|tx| tx.deliveries(status, limit))?;
        Ok(DeliveryList { deliveries: rows.iter().map(delivery_json).collect() })
    })
    .await
    .map(Json)
}

/// A webhook delivery in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub lead_id: String,
    pub url: String,
    /// pending, delivered or dead.
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    /// For a pending delivery: when it is sent next.
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The receiver's answer or the network error of the last attempt.
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    /// What is sent (SPEC §6.4).
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

fn delivery_json(d: &leadscore_store::DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        lead_id: d.lead_id.clone(),
        url: d.url.clone(),
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        created_at: time::format_timestamp(d.created_at),
        next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| time::format_timestamp(d.next_attempt_at)),
        last_attempt_at: d.last_attempt_at.map(time::format_timestamp),
        last_error: d.last_error.clone(),
        delivered_at: d.delivered_at.map(time::format_timestamp),
        body: serde_json::from_str::<Value>(&d.body).unwrap_or_else(|_| json!({})),
    }
}

/// Send a delivery again (now), whatever its status
#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/resend", params(("id" = String, Path, description = "delivery id")),
    tag = "webhooks", responses((status = 200, description = "the delivery, pending again", body = DeliveryView),
    (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn resend_delivery(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let now = app.clock.now();
    blocking(move || {
        let updated = app.store.write(|tx| {
            let Some(mut d) = tx.delivery(&id)? else { return Ok(None) };
            d.status = DeliveryStatus::Pending;
            d.next_attempt_at = now;
            tx.update_delivery(&d)?;
            Ok(Some(d))
        })?;
        let d = updated.ok_or_else(|| ApiError::new(Code::DeliveryNotFound, format!("no delivery with id `{id}`")))?;
        Ok(delivery_json(&d))
    })
    .await
    .map(Json)
}

// ---- unreadable events ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// A stored message the engine cannot read.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadableEvent {
    pub seq: i64,
    pub message_id: String,
    pub lead_id: Option<String>,
    pub anonymous_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub received_at: String,
    pub found_at: String,
    /// Why it cannot be read.
    pub reason: String,
    /// The stored text (the first 2,000 characters); it may not be JSON.
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadableList {
    pub events: Vec<UnreadableEvent>,
}

/// Stored messages the engine cannot read (left out of every score), most recently found first
#[utoipa::path(get, path = "/api/events/unreadable", params(LimitQuery), tag = "operations",
    responses((status = 200, body = UnreadableList)), security(("api_key" = [])))]
pub async fn list_unreadable(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<UnreadableList>, ApiError> {
    let limit = parse_limit(query.limit.as_deref(), 100)?;
    blocking(move || {
        let rows = app.store.read(|tx| tx.unreadable_events(limit))?;
        let events = rows
            .into_iter()
            .map(|u| UnreadableEvent {
                seq: u.seq,
                message_id: u.message_id,
                lead_id: u.lead_id,
                anonymous_id: u.anonymous_id,
                event_type: u.event_type,
                received_at: time::format_timestamp(u.received_at),
                found_at: time::format_timestamp(u.found_at),
                reason: u.reason,
                body: u.body.chars().take(2000).collect(),
            })
            .collect();
        Ok(UnreadableList { events })
    })
    .await
    .map(Json)
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
