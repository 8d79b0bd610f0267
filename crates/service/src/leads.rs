//! Leads: the list (filters, sorts, cursors), one lead as of an instant ([`LeadView`]), its score
//! replayed over time, outcomes, and deletion (GDPR). Views are typed; the HTTP crate serialises
//! them and the dashboard renders them.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use leadscore_core::compact::LeadState;
use leadscore_core::engine::{events_as_of, round2};
use leadscore_core::time::{self, Millis};
use leadscore_core::{OutcomeKind, evaluate};
use leadscore_store::{HistoryRow, LeadCursor, LeadRow, OutcomeRow, StoreError, StoredContribution, Tx};

pub use leadscore_store::{LeadFilter, LeadSort};

use crate::app::App;
use crate::error::{Code, ServiceError};
use crate::ingest::MAX_ID_BYTES;
use crate::rescore::RESCORE_CHUNK;
use crate::scoring::{ActiveModel, Fresh, load_history, rescore_leads, scores_by_dimension, stored_contributions};

/// A lead's id (its Segment `userId`): not empty, at most 1,024 bytes, no NUL, as ingest accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeadId(String);

impl LeadId {
    /// An id as a lead could have it; any other text names no lead (`lead_not_found`).
    pub fn parse(text: &str) -> Result<LeadId, ServiceError> {
        if text.is_empty() || text.len() > MAX_ID_BYTES || text.contains('\0') {
            return Err(lead_not_found(text));
        }
        Ok(LeadId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LeadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// No lead with this id.
pub fn lead_not_found(id: &str) -> ServiceError {
    ServiceError::user(Code::LeadNotFound, format!("no lead with id `{id}`"))
}

/// A lead in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadSummary {
    pub id: String,
    /// Points per dimension.
    pub scores: BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    pub updated_at: String,
    /// With `include=contributions`: the stored contributions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Vec<ContributionView>>,
    /// With `include=traits`: the traits as of the stored score.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub traits: Option<Map<String, Value>>,
    /// The lead's scores under the shadow models (left out when none runs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<ShadowScoreView>,
}

/// A lead's live score under a shadow model, as stored (it scores every message the active
/// model does; see `POST /api/models/{version}/shadow`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShadowScoreView {
    pub version: i64,
    /// The model's name.
    pub model: String,
    /// Points per dimension.
    pub scores: BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// The instant it was scored as of (its time-driven changes are applied when due).
    pub scored_at: String,
    /// On one lead's view: which rule gave how many points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Vec<ContributionView>>,
}

/// The stored shadow scores of these leads under the live shadow models, by lead.
fn shadow_views(
    tx: &mut Tx<'_>,
    shadows: &[std::sync::Arc<ActiveModel>],
    ids: &[String],
    contributions: bool,
) -> Result<HashMap<String, Vec<ShadowScoreView>>, StoreError> {
    let mut views: HashMap<String, Vec<ShadowScoreView>> = HashMap::new();
    if shadows.is_empty() || ids.is_empty() {
        return Ok(views);
    }
    for s in tx.shadow_scores_of(ids)? {
        let Some(model) = shadows.iter().find(|m| m.version == s.model_version) else { continue };
        views.entry(s.lead_id).or_default().push(ShadowScoreView {
            version: s.model_version,
            model: model.model.name.clone(),
            scores: s.scores,
            total: round2(s.total),
            stage: s.stage,
            grade: s.grade,
            probability: s.probability,
            scored_at: time::format_timestamp(s.scored_at),
            contributions: contributions.then(|| s.contributions.into_iter().map(ContributionView::from).collect()),
        });
    }
    Ok(views)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadPage {
    pub leads: Vec<LeadSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A stored lead as the list shows it.
pub(crate) fn summary(row: &LeadRow) -> LeadSummary {
    let score = row.score.as_ref();
    LeadSummary {
        id: row.id.clone(),
        scores: score.map(|s| s.scores.clone()).unwrap_or_default(),
        total: round2(score.map_or(0.0, |s| s.total)),
        stage: score.map_or_else(|| leadscore_core::model::DEFAULT_STAGE.to_owned(), |s| s.stage.clone()),
        grade: score.and_then(|s| s.grade.clone()),
        updated_at: time::format_timestamp(row.updated_at),
        contributions: None,
        traits: None,
        shadows: Vec::new(),
    }
}

/// Which leads, in which order, how many, from where, with what.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub filter: LeadFilter,
    pub sort: LeadSort,
    pub limit: usize,
    /// A `next_cursor` this service returned.
    pub cursor: Option<String>,
    pub contributions: bool,
    pub traits: bool,
    /// Only this owner's leads (the value of the owner trait, `[dashboard] owner_trait`).
    pub owner: Option<String>,
}

fn encode_cursor(sort: LeadSort, row: &LeadRow) -> String {
    let key = Tx::sort_key(row, sort);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}\n{}", row.id))
}

fn decode_cursor(text: &str) -> Result<LeadCursor, ServiceError> {
    let bad = || ServiceError::user(Code::InvalidCursor, "`cursor` is not one this API returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (key, id) = text.split_once('\n').ok_or_else(bad)?;
    Ok(LeadCursor { key: key.parse().map_err(|_| bad())?, id: id.to_owned() })
}

/// One page of the list, with each lead's scores under `shadows`, in the caller's transaction.
fn list_page(
    tx: &mut Tx<'_>,
    request: &ListRequest,
    cursor: Option<&LeadCursor>,
    shadows: &[std::sync::Arc<ActiveModel>],
) -> Result<LeadPage, StoreError> {
    let mut rows = tx.list_leads(&request.filter, request.sort, request.limit + 1, cursor)?;
    let more = rows.len() > request.limit;
    rows.truncate(request.limit);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(request.sort, r)) } else { None };
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut shadow_scores = shadow_views(tx, shadows, &ids, false)?;
    let leads = rows
        .iter()
        .map(|row| {
            let mut s = summary(row);
            let stored = row.score.as_ref();
            if request.contributions {
                s.contributions = Some(
                    stored
                        .map(|x| x.contributions.iter().cloned().map(ContributionView::from).collect())
                        .unwrap_or_default(),
                );
            }
            if request.traits {
                s.traits = Some(stored.map(|x| x.current_traits.clone()).unwrap_or_default());
            }
            s.shadows = shadow_scores.remove(&row.id).unwrap_or_default();
            s
        })
        .collect();
    Ok(LeadPage { leads, next_cursor })
}

/// Sales' call list: a page of leads and each one's totals at its stage changes (for a trend).
#[derive(Debug)]
pub struct CallList {
    pub page: LeadPage,
    pub trends: HashMap<String, Vec<f64>>,
}

/// A contribution: which rule gave how many points (SPEC §2.2).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContributionView {
    // Fields in alphabetical order, as the API has always written them.
    pub dimension: String,
    pub last_matched_at: Option<String>,
    /// How many events (or 1/0 for trait and inactivity rules) counted.
    pub matched: u64,
    /// Rounded to 2 decimals.
    pub points: f64,
    pub rule: String,
}

impl From<StoredContribution> for ContributionView {
    fn from(c: StoredContribution) -> ContributionView {
        let StoredContribution { rule, dimension, points, matched, last_matched_at } = c;
        ContributionView { rule, dimension, points, matched, last_matched_at }
    }
}

/// A lead's account and its traits as of the view's instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRef {
    pub id: String,
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
}

/// A stage change in the lead's history, or a note beside them (`contacted`).
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: String,
    pub stage: String,
    pub total: f64,
    /// `contacted` (by whom, if said); absent for a stage or grade change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One lead as of an instant (SPEC §6.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadView {
    pub id: String,
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    pub account: Option<AccountRef>,
    /// Points per dimension.
    pub scores: BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    /// With a calibrated model: the probability of converting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    pub contributions: Vec<ContributionView>,
    /// The latest 50 messages, newest first, as stored.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    pub history: Vec<HistoryEntry>,
    pub as_of: String,
    pub model_version: i64,
    /// What is wrong with the lead's answers (`[{code, trait, message}]`: free or disposable
    /// mail, placeholders, an e-mail domain that is not the company's); no effect on the score.
    #[schema(value_type = Vec<Object>)]
    pub quality: Vec<leadscore_core::quality::QualityFlag>,
    /// The lead's live scores under the shadow models, as stored (left out when none runs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<ShadowScoreView>,
    /// The missing answer that could move the lead furthest (a stage, then a grade, then
    /// points), from the model's trait rules: what the next form should ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ask_next: Option<leadscore_core::profiling::AskNext>,
    /// When sales last noted contacting the lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contacted_at: Option<String>,
}

/// A contact was noted in the lead's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactRecorded {
    pub id: String,
    pub at: String,
    pub note: String,
}

/// A lead that came into a stage lately.
#[derive(Debug, Clone, Serialize)]
pub struct Entered {
    pub id: String,
    pub at: Millis,
    /// Its current traits (for its name and company).
    pub traits: Map<String, Value>,
    pub total: f64,
}

/// What the profiler needs of a score: points by rule name.
pub(crate) fn points_by_rule<'a>(contributions: impl Iterator<Item = (&'a str, f64)>) -> BTreeMap<&'a str, f64> {
    let mut points = BTreeMap::new();
    for (rule, p) in contributions {
        *points.entry(rule).or_insert(0.0) += p;
    }
    points
}

/// A lead's total and stage at one instant of its replayed history.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorePoint {
    pub at: Millis,
    pub total: f64,
    pub stage: String,
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

/// What [`App::record_outcomes`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OutcomesRecorded {
    pub recorded: usize,
    /// Ids no stored lead has; their outcomes were not recorded.
    pub unknown: Vec<String>,
}

impl App {
    /// The filter of a list request, with the owner trait named.
    fn resolve(&self, request: &ListRequest) -> ListRequest {
        let mut request = request.clone();
        request.filter.owner = request.owner.clone().map(|owner| (self.settings.owner_trait.clone(), owner));
        request
    }

    /// One page of leads.
    pub fn list_leads(&self, request: &ListRequest) -> Result<LeadPage, ServiceError> {
        let request = &self.resolve(request);
        let cursor = request.cursor.as_deref().map(decode_cursor).transpose()?;
        let shadows = self.shadows();
        Ok(self.store.read(|tx| list_page(tx, request, cursor.as_ref(), &shadows))?)
    }

    /// A page of leads with the totals of their stage changes, oldest first.
    pub fn call_list(&self, request: &ListRequest) -> Result<CallList, ServiceError> {
        let request = &self.resolve(request);
        let cursor = request.cursor.as_deref().map(decode_cursor).transpose()?;
        let shadows = self.shadows();
        Ok(self.store.read(|tx| {
            let page = list_page(tx, request, cursor.as_ref(), &shadows)?;
            let ids: Vec<String> = page.leads.iter().map(|l| l.id.clone()).collect();
            let mut trends: HashMap<String, Vec<f64>> = HashMap::new();
            for (id, h) in tx.histories_of(&ids)? {
                trends.entry(id).or_default().push(h.total);
            }
            Ok::<_, StoreError>(CallList { page, trends })
        })?)
    }

    /// One lead as of `as_of`, scored with the active model from its stored history.
    pub fn lead_view(&self, id: &LeadId, as_of: Millis) -> Result<LeadView, ServiceError> {
        Ok(self.lead_page(id, as_of, 0)?.0)
    }

    /// One lead as of `as_of` and its total and stage replayed at `points` instants from its
    /// first event to `as_of` (the score as it was then, with the current model), from one
    /// snapshot: the dashboard's lead page.
    pub fn lead_page(
        &self,
        id: &LeadId,
        as_of: Millis,
        points: usize,
    ) -> Result<(LeadView, Vec<ScorePoint>), ServiceError> {
        let active = self.model();
        let shadows = self.shadows();
        let points = if points == 0 { 0 } else { points.max(2) };
        self.store.read(|tx| {
            let (mut view, replayed) = lead_in(tx, &active, id, as_of, points)?;
            view.shadows =
                shadow_views(tx, &shadows, std::slice::from_ref(&view.id), true)?.remove(&view.id).unwrap_or_default();
            Ok((view, replayed))
        })
    }

    /// Records one lead's outcome and rescores it now; answers with its new stage, from the
    /// same transaction.
    pub fn record_outcome(&self, id: &LeadId, kind: OutcomeKind, at: Millis) -> Result<OutcomeRecorded, ServiceError> {
        let row = self.store.write(|tx| {
            // Now under the write lock: a message ingested while this waited is not newer.
            let now = self.clock.now();
            let (recorded, _) = self.record_outcomes_in(tx, &[(id.clone(), kind, at)], now)?;
            if recorded == 0 {
                return Err(lead_not_found(id.as_str()));
            }
            tx.lead(id.as_str())?.ok_or_else(|| lead_not_found(id.as_str()))
        })?;
        let s = summary(&row);
        Ok(OutcomeRecorded {
            id: s.id,
            outcome: kind.as_str().to_owned(),
            at: time::format_timestamp(at),
            stage: s.stage,
            total: s.total,
        })
    }

    /// Records outcomes `(lead, outcome, at)` and rescores those leads now, in transactions of
    /// a few thousand. Outcomes of ids no stored lead has are not recorded; they are listed.
    pub fn record_outcomes(
        &self,
        outcomes: &[(LeadId, OutcomeKind, Millis)],
    ) -> Result<OutcomesRecorded, ServiceError> {
        let mut done = OutcomesRecorded::default();
        for chunk in outcomes.chunks(RESCORE_CHUNK) {
            let (recorded, unknown) = self.store.write(|tx| self.record_outcomes_in(tx, chunk, self.clock.now()))?;
            done.recorded += recorded;
            done.unknown.extend(unknown);
        }
        Ok(done)
    }

    /// Records outcomes of existing leads and rescores them as of `now`, in the caller's
    /// transaction: how many were recorded, and the ids no stored lead has.
    fn record_outcomes_in(
        &self,
        tx: &mut Tx<'_>,
        outcomes: &[(LeadId, OutcomeKind, Millis)],
        now: Millis,
    ) -> Result<(usize, Vec<String>), StoreError> {
        let ids: Vec<String> = outcomes.iter().map(|(id, _, _)| id.to_string()).collect();
        tx.lock_leads(&ids)?;
        let existing: HashSet<String> = tx.leads_by_ids(&ids)?.into_iter().map(|r| r.id).collect();
        // Read under the leads' locks (see `App::record`).
        let active = self.model();
        let mut due = Vec::new();
        let mut unknown = Vec::new();
        for (id, kind, at) in outcomes {
            if !existing.contains(id.as_str()) {
                unknown.push(id.to_string());
                continue;
            }
            let row = OutcomeRow { lead_id: id.to_string(), outcome: kind.as_str().to_owned(), at: *at };
            tx.add_outcome(&row, now)?;
            due.push((id.to_string(), now));
        }
        due.sort();
        due.dedup();
        // An outcome is not in the stored state: these leads are scored from their history.
        let replay = Fresh::replay(due.iter().map(|(id, _)| id));
        rescore_leads(tx, &active, &self.outboxes, &due, &replay)?;
        for shadow in self.shadows().iter() {
            crate::scoring::rescore_shadow(tx, shadow, &due, &replay)?;
        }
        Ok((outcomes.len() - unknown.len(), unknown))
    }

    /// Notes in the lead's history that sales contacted it (at `at`, by `by` if given), with its
    /// stage and total then; the score does not change.
    pub fn record_contact(&self, id: &LeadId, at: Millis, by: Option<&str>) -> Result<ContactRecorded, ServiceError> {
        let note = match by.map(str::trim).filter(|b| !b.is_empty()) {
            Some(by) => format!("contacted by {}", by.chars().take(200).collect::<String>()),
            None => "contacted".to_owned(),
        };
        self.store.write(|tx| {
            tx.lock_leads(&[id.to_string()])?;
            let row = tx.lead(id.as_str())?.ok_or_else(|| lead_not_found(id.as_str()))?;
            let s = summary(&row);
            let entry = HistoryRow { at, stage: s.stage, total: s.total, note: Some(note.clone()) };
            tx.append_histories(&[(id.as_str(), entry)])?;
            Ok::<_, ServiceError>(())
        })?;
        Ok(ContactRecorded { id: id.to_string(), at: time::format_timestamp(at), note })
    }

    /// The owners of leads (values of the owner trait, lower-cased) with their number of leads,
    /// most first: the call-now list's owner filter.
    pub fn owners(&self) -> Result<Vec<(String, i64)>, ServiceError> {
        Ok(self.store.read(|tx| tx.trait_values(&self.settings.owner_trait, 100))?)
    }

    /// How many leads now in `stage` came into it at or after `since`, and the latest `limit` of
    /// them.
    pub fn entered_stage(
        &self,
        stage: &str,
        since: Millis,
        limit: usize,
    ) -> Result<(usize, Vec<Entered>), ServiceError> {
        Ok(self.store.read(|tx| {
            let mut entered = tx.entered_stage_since(stage, since)?;
            let count = entered.len();
            entered.truncate(limit);
            let ids: Vec<String> = entered.iter().map(|(id, _)| id.clone()).collect();
            let rows: HashMap<String, LeadRow> =
                tx.leads_by_ids(&ids)?.into_iter().map(|r| (r.id.clone(), r)).collect();
            Ok::<_, StoreError>(
                entered
                    .into_iter()
                    .filter_map(|(id, at)| {
                        let row = rows.get(&id)?;
                        let score = row.score.as_ref();
                        Some(Entered {
                            traits: score.map(|s| s.current_traits.clone()).unwrap_or_default(),
                            total: round2(score.map_or(0.0, |s| s.total)),
                            id,
                            at,
                        })
                    })
                    .collect(),
            )
            .map(|list| (count, list))
        })?)
    }

    /// Deletes a lead and everything about it (GDPR): its messages and those of every id stitched
    /// to it (anonymous ids, aliased previous ids), links, outcomes, history and deliveries; then
    /// makes the deleted bytes unrecoverable from the database files
    /// ([`leadscore_store::Store::erase_deleted`]).
    pub fn delete_lead(&self, id: &LeadId) -> Result<(), ServiceError> {
        let id = id.as_str();
        let existed = self.store.write(|tx| {
            tx.lock_leads(&[id.to_owned()])?;
            let stitched = crate::scoring::stitched_ids(tx, id)?;
            tx.lock_leads(&stitched)?;
            tx.delete_lead(id, &stitched)
        })?;
        if !existed {
            return Err(lead_not_found(id));
        }
        self.store.erase_deleted()?;
        Ok(())
    }
}

/// A lead as of `as_of` and, with `points` ≥ 2, its score replayed at that many instants from its
/// first event to `as_of`; both from one load of its history.
fn lead_in(
    tx: &mut Tx<'_>,
    active: &ActiveModel,
    id: &LeadId,
    as_of: Millis,
    points: usize,
) -> Result<(LeadView, Vec<ScorePoint>), ServiceError> {
    let Some((history, accounts)) = load_history(tx, &active.model, id.as_str())? else {
        return Err(lead_not_found(id.as_str()));
    };
    let score = evaluate(&active.model, &history, &accounts, as_of);
    let events: Vec<Value> =
        events_as_of(Some(&active.model), &history, as_of).into_iter().rev().take(50).map(|e| e.body.clone()).collect();
    let entries: Vec<HistoryEntry> = tx
        .history_of(id.as_str())?
        .into_iter()
        .filter(|h| h.at <= as_of)
        .map(|h| HistoryEntry { at: time::format_timestamp(h.at), stage: h.stage, total: h.total, note: h.note })
        .collect();
    let last_contacted_at = entries
        .iter()
        .rev()
        .find(|h| h.note.as_deref().is_some_and(|n| n.starts_with("contacted")))
        .map(|h| h.at.clone());
    let by_rule = points_by_rule(score.contributions.iter().map(|c| (c.rule.as_str(), c.points)));
    let profile = leadscore_core::profiling::Scored {
        traits: &score.traits,
        points: &by_rule,
        stage: &score.stage,
        grade: score.grade.as_deref(),
        has_outcome: history.outcomes.iter().any(|o| o.at <= as_of),
    };
    let ask_next = leadscore_core::profiling::ask_next(&active.model, &profile, as_of);
    let account = score.account.as_ref().map(|account_id| {
        let mut traits = accounts.traits_at(account_id, as_of);
        traits.remove("id");
        AccountRef { id: account_id.clone(), traits }
    });
    let series = match history.events.iter().map(|e| e.at.max(e.visible_at)).min() {
        Some(first) if points >= 2 => {
            let from = first.min(as_of);
            let steps = points - 1;
            let mut state = LeadState::of(&active.model, &history);
            (0..=steps)
                .map(|i| {
                    let at = from + (as_of - from) * i as i64 / steps as i64;
                    let score = state.score_at(&active.model, &accounts, at);
                    ScorePoint { at, total: round2(score.total), stage: score.stage }
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let view = LeadView {
        id: id.to_string(),
        traits: score.traits.clone(),
        account,
        scores: scores_by_dimension(&active.model, &score),
        total: round2(score.total),
        stage: score.stage.clone(),
        grade: score.grade.clone(),
        probability: score.probability.map(|p| (p * 10_000.0).round() / 10_000.0),
        contributions: stored_contributions(&score).into_iter().map(ContributionView::from).collect(),
        events,
        history: entries,
        as_of: time::format_timestamp(as_of),
        model_version: active.version,
        quality: leadscore_core::quality::quality_flags(&score.traits),
        shadows: Vec::new(),
        ask_next,
        last_contacted_at,
    };
    Ok((view, series))
}
