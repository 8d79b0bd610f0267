//! The write use cases that change scores, each inside one store transaction:
//! [`record_events`] (ingest), [`rescore_lead`] (the scheduler, outcomes, model activation).
//! A lead's history is rebuilt from the store and scored with the same `leadscore_core::evaluate`
//! the batch CLI uses; stage changes go to the lead's history and, through the outbox, to
//! webhooks, in the same transaction.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use leadscore_core::engine::{AccountBook, is_ignored, round2};
use leadscore_core::schedule::next_change;
use leadscore_core::time::{self, Millis};
use leadscore_core::{CheckedModel, Event, LeadHistory, Outcome, OutcomeKind, Score, evaluate};
use leadscore_store::{HistoryRow, Link, StoreError, StoredScore, Tx};

use crate::ingest::Incoming;
use crate::webhooks::{self, Webhooks};

/// The model the server scores with.
#[derive(Debug)]
pub struct ActiveModel {
    pub version: i64,
    pub source: String,
    pub model: CheckedModel,
}

/// A lead's stage moved.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub lead_id: String,
    pub from: String,
    pub to: String,
    pub at: Millis,
}

/// What one ingest transaction did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorded {
    pub stored: usize,
    pub duplicates: usize,
    pub rescored: usize,
    pub changes: Vec<StageChange>,
}

/// Stores new messages and rescores every lead they affect, as of `now`.
pub fn record_events(
    tx: &mut Tx<'_>,
    active: &ActiveModel,
    hooks: &Webhooks,
    messages: &[Incoming],
    now: Millis,
) -> Result<Recorded, StoreError> {
    let news: Vec<_> = messages.iter().map(|m| m.new.clone()).collect();
    let inserted = tx.insert_events(&news)?;
    let mut affected: BTreeSet<String> = BTreeSet::new();
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut anonymous: BTreeSet<String> = BTreeSet::new();
    for &i in &inserted {
        let event = &messages[i].event;
        if is_ignored(&active.model, event) {
            continue;
        }
        if let Some(link) = link_of(event) {
            tx.add_link(&link)?;
            anonymous.insert(link.anonymous_id);
        }
        match event.user_id() {
            Some(user) => {
                affected.insert(user.to_owned());
            }
            None => {
                if let Some(anon) = event.anonymous_id() {
                    anonymous.insert(anon.to_owned());
                }
            }
        }
        if event.kind() == "group"
            && let Some(group) = messages[i].new.group_id.clone()
        {
            groups.insert(group);
        }
    }
    for group in &groups {
        let (leads, anons) = tx.members_of(group)?;
        affected.extend(leads);
        anonymous.extend(anons);
    }
    let anonymous: Vec<String> = anonymous.into_iter().collect();
    for link in tx.links_of_anonymous(&anonymous)? {
        affected.insert(link.lead_id);
    }
    let affected: Vec<String> = affected.into_iter().collect();
    for id in &affected {
        tx.ensure_lead(id, now)?;
    }
    tx.lock_leads(&affected)?;
    let mut recorded = Recorded {
        stored: inserted.len(),
        duplicates: messages.len() - inserted.len(),
        rescored: affected.len(),
        changes: Vec::new(),
    };
    for id in &affected {
        if let Some(change) = rescore_lead(tx, active, hooks, id, now, now)? {
            recorded.changes.push(change);
        }
    }
    Ok(recorded)
}

/// The identity link a message makes: `identify` with both ids, or `alias`.
pub fn link_of(event: &Event) -> Option<Link> {
    let user = event.user_id()?;
    let anonymous = match event.kind() {
        "alias" => event.body.get("previousId").and_then(Value::as_str),
        "identify" => event.anonymous_id(),
        _ => None,
    }?;
    (!anonymous.is_empty() && anonymous != user).then(|| Link {
        anonymous_id: anonymous.to_owned(),
        lead_id: user.to_owned(),
        at: event.at,
    })
}

/// Everything `evaluate` needs about one lead, rebuilt from the store. Account traits come from
/// every `group` message of the lead's accounts that `model` does not ignore.
pub fn load_history(
    tx: &mut Tx<'_>,
    model: &CheckedModel,
    lead_id: &str,
) -> Result<Option<(LeadHistory, AccountBook)>, StoreError> {
    let Some(row) = tx.lead(lead_id)? else { return Ok(None) };
    // Anonymous ids whose earliest link is to this lead, and from when.
    let mut best: HashMap<String, (Millis, String)> = HashMap::new();
    for link in tx.links_of_lead(lead_id)? {
        let candidate = (link.at, link.lead_id);
        match best.get(&link.anonymous_id) {
            Some(existing) if *existing <= candidate => {}
            _ => {
                best.insert(link.anonymous_id, candidate);
            }
        }
    }
    let stitched: HashMap<String, Millis> =
        best.into_iter().filter(|(_, (_, lead))| lead == lead_id).map(|(anon, (at, _))| (anon, at)).collect();
    let anonymous_ids: Vec<String> = stitched.keys().cloned().collect();
    let mut events = Vec::new();
    let mut group_ids: BTreeSet<String> = BTreeSet::new();
    for stored in tx.events_of(lead_id, &anonymous_ids)? {
        let mut event = parse_event(&stored.body)?;
        if stored.lead_id.is_none()
            && let Some(linked) = stored.anonymous_id.as_ref().and_then(|a| stitched.get(a))
        {
            event.visible_at = event.at.max(*linked);
        }
        if event.kind() == "group"
            && let Some(group) = event.body.get("groupId").and_then(Value::as_str)
        {
            group_ids.insert(group.to_owned());
        }
        events.push(event);
    }
    let mut accounts = AccountBook::default();
    for stored in tx.group_events(&group_ids.into_iter().collect::<Vec<_>>())? {
        let event = parse_event(&stored.body)?;
        if !is_ignored(model, &event) {
            accounts.record_event(&event);
        }
    }
    let traits = match serde_json::from_str::<Value>(&row.traits) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let outcomes = tx
        .outcomes_of(lead_id)?
        .into_iter()
        .filter_map(|o| OutcomeKind::parse(&o.outcome).map(|kind| Outcome { kind, at: o.at }))
        .collect();
    let history = LeadHistory { id: lead_id.to_owned(), traits, events, outcomes, ignore_applied: false };
    Ok(Some((history, accounts)))
}

fn parse_event(body: &str) -> Result<Event, StoreError> {
    let value: Value = serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("stored event: {e}")))?;
    Event::from_message(value).map_err(|e| StoreError::Corrupt(format!("stored event: {e}")))
}

/// Rescores one lead as of `as_of` and stores the result; a stage change is recorded in its
/// history at `at` and queued for webhooks. Returns the change, if any.
pub fn rescore_lead(
    tx: &mut Tx<'_>,
    active: &ActiveModel,
    hooks: &Webhooks,
    lead_id: &str,
    as_of: Millis,
    at: Millis,
) -> Result<Option<StageChange>, StoreError> {
    let Some((history, accounts)) = load_history(tx, &active.model, lead_id)? else { return Ok(None) };
    let score = evaluate(&active.model, &history, &accounts, as_of);
    let next = next_change(&active.model, &history, &accounts, as_of);
    let previous = tx.lead(lead_id)?.and_then(|row| row.score);
    let stored = stored_score(&active.model, active.version, &score, as_of, next);
    let before = previous.as_ref().map(|p| (p.stage.clone(), round2(p.total), p.grade.clone()));
    let after = (stored.stage.clone(), round2(stored.total), stored.grade.clone());
    let changed = before.as_ref() != Some(&after);
    tx.save_score(lead_id, &stored, changed)?;
    if changed {
        tx.append_history(lead_id, &HistoryRow { at, stage: stored.stage.clone(), total: round2(stored.total) })?;
    }
    let from = previous.map_or_else(|| leadscore_core::model::DEFAULT_STAGE.to_owned(), |p| p.stage);
    if from == stored.stage {
        return Ok(None);
    }
    let change = StageChange { lead_id: lead_id.to_owned(), from, to: stored.stage.clone(), at };
    webhooks::enqueue(tx, hooks, &change, &stored)?;
    Ok(Some(change))
}

/// The stored form of a score.
pub fn stored_score(
    model: &CheckedModel,
    version: i64,
    score: &Score,
    as_of: Millis,
    next_change_at: Option<Millis>,
) -> StoredScore {
    StoredScore {
        scored_at: as_of,
        model_version: version,
        scores: scores_json(model, score).to_string(),
        total: score.total,
        stage: score.stage.clone(),
        grade: score.grade.clone(),
        probability: score.probability,
        contributions: contributions_json(score).to_string(),
        current_traits: Value::Object(score.traits.clone()).to_string(),
        account_id: score.account.clone(),
        next_change_at,
    }
}

/// `{dimension: points}` in model order, rounded to 2 decimals.
pub fn scores_json(model: &CheckedModel, score: &Score) -> Value {
    let mut map = Map::new();
    for (dim, value) in model.dimensions.iter().zip(&score.dimensions) {
        map.insert(dim.name.clone(), json!(round2(*value)));
    }
    Value::Object(map)
}

/// `[{rule, dimension, points, matched, last_matched_at}]` (SPEC §6.2).
pub fn contributions_json(score: &Score) -> Value {
    Value::Array(
        score
            .contributions
            .iter()
            .map(|c| {
                json!({
                    "rule": c.rule,
                    "dimension": c.dimension,
                    "points": round2(c.points),
                    "matched": c.matched,
                    "last_matched_at": c.last_matched_at.map(time::format_timestamp),
                })
            })
            .collect(),
    )
}
