//! The write use cases that change scores, each inside one store transaction:
//! [`record_events`] (ingest), [`rescore_lead`] (the scheduler, outcomes, model activation).
//! A lead's history is rebuilt from the store and scored with the same `leadscore_core::evaluate`
//! the batch CLI uses; stage changes go to the lead's history and, through the outbox, to
//! webhooks, in the same transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use serde_json::{Map, Value};

use leadscore_core::compact::{CompactEvent, LeadState};
use leadscore_core::engine::{AccountBook, is_ignored, round2};
use leadscore_core::model::{Projection, parse_projected};
use leadscore_core::time::{self, Millis};
use leadscore_core::{CheckedModel, Event, IdentityGraph, LeadHistory, Outcome, OutcomeKind, Score};
use leadscore_store::{
    HistoryRow, LeadHead, Link, ScoreJson, ScoreWrite, ShadowWrite, StoreError, StoredContribution, StoredEvent,
    StoredScore, Tx,
};

use crate::ingest::{Incoming, MAX_ID_BYTES};
use crate::outbox::Outboxes;
use crate::webhooks::{self, StageChange};

/// The model the server scores with.
#[derive(Debug)]
pub struct ActiveModel {
    pub version: i64,
    pub source: String,
    pub model: CheckedModel,
    /// The parts of a stored message the model can read: scoring parses only these.
    pub projection: Projection,
}

impl ActiveModel {
    pub fn new(version: i64, source: String, model: CheckedModel) -> ActiveModel {
        let projection = model.event_projection();
        ActiveModel { version, source, model, projection }
    }
}

/// What one ingest transaction did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorded {
    pub stored: usize,
    pub duplicates: usize,
    /// New messages the model's `[events] ignore` drops (stored, but they score nothing).
    pub ignored: usize,
    pub rescored: usize,
    pub changes: Vec<StageChange>,
}

/// Stores new messages and rescores every lead they affect, as of `now`, with the active model
/// and with each shadow model.
pub fn record_events(
    tx: &mut Tx<'_>,
    active: &ActiveModel,
    shadows: &[Arc<ActiveModel>],
    outboxes: &Outboxes,
    messages: &[Incoming],
    now: Millis,
) -> Result<Recorded, StoreError> {
    let inserted = tx.insert_events(messages.iter().map(|m| &m.new))?;
    let mut affected: BTreeSet<String> = BTreeSet::new();
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut anonymous: BTreeSet<String> = BTreeSet::new();
    let mut linked: BTreeSet<String> = BTreeSet::new();
    let mut fresh = Fresh::default();
    let mut anonymous_events: Vec<&Event> = Vec::new();
    let mut ignored = 0;
    for &i in &inserted {
        let event = &messages[i].event;
        if is_ignored(&active.model, event) {
            ignored += 1;
            continue;
        }
        if let Some(link) = link_of(event) {
            // A link that is new, or earlier than the one stored, changes which messages belong
            // to whom; an identify repeating a known link changes nothing.
            if tx.add_link(&link)? {
                linked.insert(link.anonymous_id.clone());
            }
            anonymous.insert(link.anonymous_id);
        }
        match event.user_id() {
            Some(user) => {
                affected.insert(user.to_owned());
                fresh.events.entry(user.to_owned()).or_default().push(event.clone());
            }
            None => {
                if let Some(anon) = event.anonymous_id() {
                    anonymous.insert(anon.to_owned());
                    anonymous_events.push(event);
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
    let mut identities = IdentityGraph::default();
    for link in tx.links_of_anonymous(&anonymous)? {
        identities.link(&link.anonymous_id, &link.lead_id, link.at);
        // A new link can bring in (or take away) an anonymous id's earlier messages: every lead
        // it names reads its whole history.
        if linked.contains(&link.anonymous_id) {
            fresh.replay.insert(link.lead_id.clone());
        }
        affected.insert(link.lead_id);
    }
    // An anonymous message belongs to the lead its id's earliest link names, from that link's time.
    for event in anonymous_events {
        let Some(anon) = event.anonymous_id() else { continue };
        if let Some((at, lead)) = identities.link_of(anon) {
            let mut event = event.clone();
            event.visible_at = event.at.max(at);
            fresh.events.entry(lead.to_owned()).or_default().push(event);
        }
    }
    let affected: Vec<String> = affected.into_iter().collect();
    tx.ensure_leads(&affected, now)?;
    let due: Vec<(String, Millis)> = affected.iter().map(|id| (id.clone(), now)).collect();
    let changes = rescore_leads(tx, active, outboxes, &due, &fresh)?;
    for shadow in shadows {
        let (due, fresh) = shadow_fresh(tx, shadow, messages, &inserted, &affected, &fresh.replay, now)?;
        rescore_shadow(tx, shadow, &due, &fresh)?;
    }
    Ok(Recorded {
        stored: inserted.len(),
        duplicates: messages.len() - inserted.len(),
        ignored,
        rescored: affected.len(),
        changes,
    })
}

/// What new messages bring a shadow model: the leads to rescore (those the active model rescores,
/// and those of messages only the active model ignores) and their new messages, attributed as
/// for the active model but through the shadow's own `[events] ignore`. Identity links are those
/// the store keeps (made by messages the active model accepted).
fn shadow_fresh(
    tx: &mut Tx<'_>,
    shadow: &ActiveModel,
    messages: &[Incoming],
    inserted: &[usize],
    affected: &[String],
    replay: &HashSet<String>,
    now: Millis,
) -> Result<(Vec<(String, Millis)>, Fresh), StoreError> {
    let accepted: Vec<&Event> =
        inserted.iter().map(|&i| &messages[i].event).filter(|e| !is_ignored(&shadow.model, e)).collect();
    let anonymous: Vec<String> = accepted
        .iter()
        .filter(|e| e.user_id().is_none())
        .filter_map(|e| e.anonymous_id().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut identities = IdentityGraph::default();
    for link in tx.links_of_anonymous(&anonymous)? {
        identities.link(&link.anonymous_id, &link.lead_id, link.at);
    }
    let mut fresh = Fresh { replay: replay.clone(), ..Fresh::default() };
    let mut leads: BTreeSet<String> = affected.iter().cloned().collect();
    for event in accepted {
        let (lead, linked_at) = match (event.user_id(), event.anonymous_id()) {
            (Some(user), _) => (user, None),
            (None, Some(anon)) => match identities.link_of(anon) {
                Some((at, lead)) => (lead, Some(at)),
                None => continue,
            },
            (None, None) => continue,
        };
        let mut event = event.clone();
        if let Some(at) = linked_at {
            event.visible_at = event.at.max(at);
        }
        leads.insert(lead.to_owned());
        fresh.events.entry(lead.to_owned()).or_default().push(event);
    }
    Ok((leads.into_iter().map(|id| (id, now)).collect(), fresh))
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

/// What `evaluate` needs about some leads, rebuilt from the store in a few queries.
pub struct Loaded {
    pub leads: Vec<(LeadHead, LeadHistory)>,
    pub accounts: AccountBook,
    /// Stored messages that could not be read back; they were left out (see [`Unreadable`]).
    pub unreadable: Vec<Unreadable>,
}

/// A stored message the engine cannot read (written by an older version, or damaged). It is left
/// out of every score, so it never breaks its lead, the scheduler, an activation or a backtest;
/// it is logged once, counted in `leadscore_unreadable_events_total`, and listed by
/// `GET /api/events/unreadable`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub seq: i64,
    pub reason: String,
}

/// Logs and counts unreadable messages the first time this process meets them.
pub fn note_unreadable(list: &[Unreadable]) -> Vec<&Unreadable> {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<i64>>> = std::sync::OnceLock::new();
    let Ok(mut seen) = SEEN.get_or_init(Default::default).lock() else { return Vec::new() };
    let mut new = Vec::new();
    for u in list {
        if seen.insert(u.seq) {
            tracing::warn!("stored event {} cannot be read and is left out of scores: {}", u.seq, u.reason);
            metrics::counter!("leadscore_unreadable_events_total").increment(1);
            new.push(u);
        }
    }
    new
}

/// Notes unreadable messages and records them for the admin list (in the caller's transaction).
pub fn record_unreadable(tx: &mut Tx<'_>, list: &[Unreadable], now: Millis) -> Result<(), StoreError> {
    note_unreadable(list);
    for u in list {
        tx.add_unreadable(u.seq, &u.reason, now)?;
    }
    Ok(())
}

/// Loads the histories of the leads `ids` (those that exist). Anonymous messages belong to the
/// lead their earliest link names, from the link's time; account traits come from every `group`
/// message of the leads' accounts that `model` does not ignore (as in the batch reader).
pub fn load_histories(
    tx: &mut Tx<'_>,
    model: &CheckedModel,
    projection: &Projection,
    ids: &[String],
) -> Result<Loaded, StoreError> {
    let rows = tx.lead_heads(ids, false)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let identities = identities_of(tx, &ids)?;
    let anonymous_ids: Vec<String> =
        ids.iter().flat_map(|id| identities.anonymous_ids_of(id)).map(str::to_owned).collect();
    let stored = tx.events_of_leads(&ids, &anonymous_ids)?;
    // Parse in parallel: JSON is most of the work. A message that cannot be read is left out.
    let parsed: Vec<Result<(String, Event), Unreadable>> = stored
        .into_par_iter()
        .filter_map(|stored| {
            let (owner, linked_at) = owner_of(&stored, &identities)?;
            let owner = owner.to_owned();
            Some(parse_event(&stored, projection).map(|mut event| {
                if let Some(at) = linked_at {
                    event.visible_at = event.at.max(at);
                }
                (owner, event)
            }))
        })
        .collect();
    let mut events: HashMap<String, Vec<Event>> = HashMap::new();
    let mut group_ids: BTreeSet<String> = BTreeSet::new();
    let mut unreadable = Vec::new();
    for item in parsed {
        let (owner, event) = match item {
            Ok(x) => x,
            Err(u) => {
                unreadable.push(u);
                continue;
            }
        };
        if event.kind() == "group"
            && let Some(group) = event.body.get("groupId").and_then(Value::as_str)
        {
            group_ids.insert(group.to_owned());
        }
        events.entry(owner).or_default().push(event);
    }
    let (accounts, mut skipped) = account_book(tx, model, projection, &group_ids.into_iter().collect::<Vec<_>>())?;
    unreadable.append(&mut skipped);
    let mut outcomes = outcomes_of(tx, &ids)?;
    let leads = rows
        .into_iter()
        .map(|row| {
            let history = LeadHistory {
                id: row.id.clone(),
                traits: base_traits(&row),
                events: events.remove(&row.id).unwrap_or_default(),
                outcomes: outcomes.remove(&row.id).unwrap_or_default(),
                ignore_applied: false,
            };
            (row, history)
        })
        .collect();
    Ok(Loaded { leads, accounts, unreadable })
}

/// Every stored lead's history, in chunks of 1,000 leads in id order, read in the caller's
/// transaction and given to `visit` (unreadable messages left out and noted): what a preview or
/// a backtest scores.
pub(crate) fn visit_histories(
    tx: &mut Tx<'_>,
    model: &CheckedModel,
    projection: &Projection,
    mut visit: impl FnMut(&Loaded),
) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let ids = tx.lead_ids_after(&after, 1000)?;
        let Some(last) = ids.last().cloned() else { return Ok(()) };
        let loaded = load_histories(tx, model, projection, &ids)?;
        note_unreadable(&loaded.unreadable);
        visit(&loaded);
        after = last;
    }
}

/// The lead a stored message belongs to: its `userId`, else the lead its anonymous id's earliest
/// link names, with the link's time (the message belongs to that lead from then on); `None` for an
/// anonymous message of an id no link names.
pub(crate) fn owner_of<'a>(
    stored: &'a StoredEvent,
    identities: &'a IdentityGraph,
) -> Option<(&'a str, Option<Millis>)> {
    match (&stored.lead_id, &stored.anonymous_id) {
        (Some(lead), _) => Some((lead.as_str(), None)),
        (None, Some(anonymous)) => identities.link_of(anonymous).map(|(at, lead)| (lead, Some(at))),
        (None, None) => None,
    }
}

/// The outcomes of these leads, by lead, in time order.
pub(crate) fn outcomes_of(tx: &mut Tx<'_>, ids: &[String]) -> Result<HashMap<String, Vec<Outcome>>, StoreError> {
    let mut outcomes: HashMap<String, Vec<Outcome>> = HashMap::new();
    for o in tx.outcomes_of_leads(ids)? {
        if let Some(kind) = OutcomeKind::parse(&o.outcome) {
            outcomes.entry(o.lead_id).or_default().push(Outcome { kind, at: o.at });
        }
    }
    Ok(outcomes)
}

/// A stored lead's base traits (from a leads file or the CRM; not those of its messages).
pub(crate) fn base_traits(head: &LeadHead) -> Map<String, Value> {
    match serde_json::from_str::<Value>(&head.traits) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The traits over time of these accounts: every `group` message for them that `model` does not
/// ignore (as in the batch reader), and the messages that could not be read.
pub fn account_book(
    tx: &mut Tx<'_>,
    model: &CheckedModel,
    projection: &Projection,
    group_ids: &[String],
) -> Result<(AccountBook, Vec<Unreadable>), StoreError> {
    let mut accounts = AccountBook::default();
    let mut unreadable = Vec::new();
    for stored in tx.group_events(group_ids)? {
        if let Err(u) = record_group(&mut accounts, model, projection, &stored) {
            unreadable.push(u);
        }
    }
    Ok((accounts, unreadable))
}

/// Adds a stored `group` message to an account book, unless `model` ignores it.
pub(crate) fn record_group(
    accounts: &mut AccountBook,
    model: &CheckedModel,
    projection: &Projection,
    stored: &StoredEvent,
) -> Result<(), Unreadable> {
    let event = parse_event(stored, projection)?;
    if !is_ignored(model, &event) {
        accounts.record_event(&event);
    }
    Ok(())
}

/// The identity links of these leads' anonymous ids, with the same rule as the batch reader
/// (`core::IdentityGraph`: the earliest link of an anonymous id wins).
pub(crate) fn identities_of(tx: &mut Tx<'_>, ids: &[String]) -> Result<IdentityGraph, StoreError> {
    let mut identities = IdentityGraph::default();
    for link in tx.links_of_leads(ids)? {
        identities.link(&link.anonymous_id, &link.lead_id, link.at);
    }
    Ok(identities)
}

/// The ids whose messages belong to `lead_id`: the anonymous ids and aliased previous ids whose
/// earliest link names it, and in turn the ids stitched to those (they go with it when it is
/// deleted).
pub fn stitched_ids(tx: &mut Tx<'_>, lead_id: &str) -> Result<Vec<String>, StoreError> {
    let mut all: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![lead_id.to_owned()];
    // Chains of aliases are short; the bound only guards against a cycle of links.
    for _ in 0..32 {
        if frontier.is_empty() {
            break;
        }
        let identities = identities_of(tx, &frontier)?;
        let next: Vec<String> = frontier
            .iter()
            .flat_map(|id| identities.anonymous_ids_of(id))
            .filter(|a| *a != lead_id && all.insert((*a).to_owned()))
            .map(str::to_owned)
            .collect();
        frontier = next;
    }
    Ok(all.into_iter().collect())
}

/// One lead's history with whole messages (for reads), or `None` if there is no such lead.
/// Unreadable messages are left out and noted.
pub fn load_history(
    tx: &mut Tx<'_>,
    model: &CheckedModel,
    lead_id: &str,
) -> Result<Option<(LeadHistory, AccountBook)>, StoreError> {
    let mut loaded = load_histories(tx, model, &Projection::everything(), &[lead_id.to_owned()])?;
    note_unreadable(&loaded.unreadable);
    Ok(loaded.leads.pop().map(|(_, history)| (history, loaded.accounts)))
}

fn parse_event(stored: &StoredEvent, projection: &Projection) -> Result<Event, Unreadable> {
    let unreadable = |reason: String| Unreadable { seq: stored.seq, reason };
    let value = parse_projected(stored.body.as_bytes(), projection).map_err(|e| unreadable(e.to_string()))?;
    Event::from_message(value).map_err(|e| unreadable(e.to_string()))
}

/// What a transaction adds to leads beyond their stored fold states.
#[derive(Debug, Default)]
pub struct Fresh {
    /// New messages per lead, attributed as the history loader attributes them (an anonymous
    /// message visible from its link's time).
    pub events: HashMap<String, Vec<Event>>,
    /// Leads whose stored state new messages alone cannot bring up to date (a new identity link,
    /// an outcome, a model activation): they are scored from their whole history.
    pub replay: HashSet<String>,
}

impl Fresh {
    /// Every one of these leads scored from its whole history.
    pub fn replay<'a>(ids: impl IntoIterator<Item = &'a String>) -> Fresh {
        Fresh { replay: ids.into_iter().cloned().collect(), ..Fresh::default() }
    }
}

/// A lead's state for scoring and the new messages that may be copies of messages it folded
/// ([`copies_of_folded`]).
type Updated<'e> = (LeadState, Vec<&'e Event>);

/// A lead's new score and its state as stored (`None`: it could not be encoded).
pub(crate) struct Scored {
    /// Without its contributions and traits: [`Scored::json`] has them.
    score: StoredScore,
    /// Its JSON columns, encoded on the scoring thread.
    json: ScoreJson,
    state: Option<Vec<u8>>,
}

/// A lead's state as stored: MessagePack of its `LeadState`.
fn encode_state(state: &LeadState) -> Option<Vec<u8>> {
    rmp_serde::to_vec(state).ok()
}

fn decode_state(bytes: &[u8]) -> Option<LeadState> {
    rmp_serde::from_slice(bytes).ok()
}

/// Rescores leads, each as of its own instant `(id, as_of)`, and stores the results with their
/// fold states; a stage change is recorded in the lead's history at that instant and queued for
/// webhooks. A lead whose stored state was made with the active model gets `fresh`'s new
/// messages applied to it (no history load, no JSON re-parse); the others (and those `fresh`
/// says to replay) are scored from their whole stored history. The caller holds the leads' locks.
/// Returns the stage changes.
pub fn rescore_leads(
    tx: &mut Tx<'_>,
    active: &ActiveModel,
    outboxes: &Outboxes,
    due: &[(String, Millis)],
    fresh: &Fresh,
) -> Result<Vec<StageChange>, StoreError> {
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let scored = score_due(tx, active, States::Lead, due, fresh)?;
    let results: Vec<(&LeadHead, Option<&Scored>)> = scored.iter().map(|(row, s)| (row, s.as_ref())).collect();
    store_scored(tx, outboxes, &results)
}

/// Rescores leads with a shadow model, as [`rescore_leads`] does with the active one, and stores
/// the results under its version: no history, webhooks or CRM marks.
pub fn rescore_shadow(
    tx: &mut Tx<'_>,
    shadow: &ActiveModel,
    due: &[(String, Millis)],
    fresh: &Fresh,
) -> Result<(), StoreError> {
    if due.is_empty() {
        return Ok(());
    }
    let scored = score_due(tx, shadow, States::Shadow, due, fresh)?;
    let mut failed = Vec::new();
    let mut writes = Vec::with_capacity(scored.len());
    for (row, result) in &scored {
        match result {
            Some(new) => writes.push(ShadowWrite {
                lead_id: &row.id,
                score: &new.score,
                json: &new.json,
                state: new.state.as_deref(),
            }),
            None => {
                tracing::error!(
                    "scoring lead `{}` with shadow model version {} failed (a bug)",
                    row.id,
                    shadow.version
                );
                metrics::counter!("leadscore_scoring_failures_total").increment(1);
                failed.push(row.id.clone());
            }
        }
    }
    tx.clear_shadow_changes(shadow.version, &failed)?;
    tx.save_shadow_scores(shadow.version, &writes)
}

/// Where a model's stored fold states are: with the lead's score (the active model), or with its
/// shadow scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum States {
    Lead,
    Shadow,
}

/// Scores the leads `due` with `model`, each as of its instant, from its stored state under that
/// model brought up to date with `fresh`'s new messages, or from its whole stored history. Takes
/// the leads' locks (the caller may hold them already).
fn score_due(
    tx: &mut Tx<'_>,
    active: &ActiveModel,
    source: States,
    due: &[(String, Millis)],
    fresh: &Fresh,
) -> Result<Vec<(LeadHead, Option<Scored>)>, StoreError> {
    let ids: Vec<String> = due.iter().map(|(id, _)| id.clone()).collect();
    tx.lock_leads(&ids)?;
    let model = &active.model;
    let candidates: Vec<String> = ids.iter().filter(|id| !fresh.replay.contains(*id)).cloned().collect();
    let mut heads: Vec<LeadHead> = tx.lead_heads(&candidates, source == States::Lead)?;
    let mut shadow_states =
        if source == States::Shadow { tx.shadow_states(active.version, &candidates)? } else { HashMap::new() };
    let stored: Vec<(LeadHead, Option<Vec<u8>>)> = heads
        .drain(..)
        .map(|mut head| {
            let state = match source {
                States::Lead => head.state.take().filter(|_| head.model_version == Some(active.version)),
                States::Shadow => shadow_states.remove(&head.id),
            };
            (head, state)
        })
        .collect();
    let as_of: HashMap<&str, Millis> = due.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    // Stored states made with this model, brought up to date with the new messages, on all
    // cores. A compacted state takes no message dated before its horizon and scores no instant
    // before it: such a lead is folded again from its whole history.
    let none: Vec<Event> = Vec::new();
    let updated: Vec<(LeadHead, Option<Updated<'_>>)> = stored
        .into_par_iter()
        .map(|(head, bytes)| {
            let at = as_of.get(head.id.as_str()).copied().unwrap_or_default();
            let state = bytes.and_then(|bytes| {
                decode_state(&bytes).and_then(|mut state| {
                    let mut suspects = Vec::new();
                    for event in fresh.events.get(&head.id).unwrap_or(&none) {
                        if let Some(compact) = CompactEvent::of_event(model, event, true) {
                            if !state.accepts(&compact) {
                                return None;
                            }
                            if state.may_repeat_folded(&compact) {
                                suspects.push(event);
                            }
                            state.apply(compact);
                        }
                    }
                    state.horizon().is_none_or(|h| h <= at).then_some((state, suspects))
                })
            });
            (head, state)
        })
        .collect();
    let mut heads: Vec<LeadHead> = Vec::with_capacity(updated.len());
    let mut states: Vec<LeadState> = Vec::with_capacity(updated.len());
    let mut suspects: Vec<(String, &Event)> = Vec::new();
    for (head, state) in updated {
        if let Some((state, events)) = state {
            suspects.extend(events.into_iter().map(|e| (head.id.clone(), e)));
            heads.push(head);
            states.push(state);
        }
    }
    let copies = copies_of_folded(tx, &suspects)?;
    if !copies.is_empty() {
        let kept: Vec<(LeadHead, LeadState)> =
            heads.into_iter().zip(states).filter(|(head, _)| !copies.contains(&head.id)).collect();
        (heads, states) = kept.into_iter().unzip();
    }
    let with_state: HashSet<&str> = heads.iter().map(|h| h.id.as_str()).collect();
    let replay: Vec<String> = ids.iter().filter(|id| !with_state.contains(id.as_str())).cloned().collect();
    let Loaded { leads: loaded, accounts: loaded_accounts, mut unreadable } =
        load_histories(tx, model, &active.projection, &replay)?;
    let group_ids: BTreeSet<String> = states.iter().flat_map(|s| s.group_ids().map(str::to_owned)).collect();
    let (state_accounts, mut skipped) =
        account_book(tx, model, &active.projection, &group_ids.into_iter().collect::<Vec<_>>())?;
    unreadable.append(&mut skipped);
    if !unreadable.is_empty() {
        let now = due.iter().map(|(_, at)| *at).max().unwrap_or_default();
        record_unreadable(tx, &unreadable, now)?;
    }
    let mut work: Vec<(LeadHead, LeadState, &AccountBook)> = Vec::with_capacity(ids.len());
    work.extend(heads.into_iter().zip(states).map(|(head, state)| (head, state, &state_accounts)));
    for (row, history) in loaded {
        let state = LeadState::of(model, &history);
        work.push((row, state, &loaded_accounts));
    }
    // Scoring is pure: all cores.
    Ok(work
        .into_par_iter()
        .map(|(row, state, accounts)| {
            let at = as_of.get(row.id.as_str()).copied().unwrap_or_default();
            let scored = score_for_store(active, state, accounts, at);
            (row, scored)
        })
        .collect())
}

/// Scores a lead's state as of `at` for storing: the stored score, with the instant of its next
/// time-driven change, and the state folded as it is kept. A lead whose scoring panics (a bug)
/// gives `None`: it keeps its last score and waits for its next event, and never takes the
/// others down with it.
pub(crate) fn score_for_store(
    active: &ActiveModel,
    mut state: LeadState,
    accounts: &AccountBook,
    at: Millis,
) -> Option<Scored> {
    let model = &active.model;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let score = state.score_at(model, accounts, at);
        let next = state.next_change(model, accounts, at, &score);
        // Stored, the state keeps the lead's recent messages one by one and folds older ones
        // together. Recent by the lead's own latest message, not the clock: a backfill of old
        // messages, sent in time order, stays on the state too.
        let latest = state.latest().map_or(at, |latest| latest.min(at));
        state.compact(model, latest - KEPT_ONE_BY_ONE);
        let mut score = stored_score(model, active.version, &score, at, next);
        let json = ScoreJson::of(&score);
        // Their JSON is all the writer needs of them (a rescore holds two groups of chunks).
        score.contributions = Vec::new();
        score.current_traits = Map::new();
        Scored { json, score, state: encode_state(&state) }
    }))
    .ok()
}

/// Stores new scores (`None`: scoring the lead failed; it keeps its last score): each with its
/// state, a history entry on a stage or grade change, a stage change queued for webhooks, and a
/// change of total, stage or grade marked for the CRM syncs.
/// Returns the stage changes.
pub(crate) fn store_scored(
    tx: &mut Tx<'_>,
    outboxes: &Outboxes,
    results: &[(&LeadHead, Option<&Scored>)],
) -> Result<Vec<StageChange>, StoreError> {
    let mut scored: Vec<(&LeadHead, &Scored)> = Vec::with_capacity(results.len());
    let mut failed: Vec<String> = Vec::new();
    for (row, result) in results {
        match result {
            Some(new) => scored.push((row, new)),
            None => {
                tracing::error!("scoring lead `{}` failed (a bug); it keeps its last score", row.id);
                metrics::counter!("leadscore_scoring_failures_total").increment(1);
                failed.push(row.id.clone());
            }
        }
    }
    tx.clear_next_changes(&failed)?;
    let mut saves = Vec::with_capacity(scored.len());
    let mut entries = Vec::new();
    let mut changes = Vec::new();
    let mut crm = Vec::new();
    for (row, new) in scored {
        let stored = &new.score;
        let at = stored.scored_at;
        let previous = row.scored.as_ref();
        let before = previous.map(|(stage, total, grade)| (stage.as_str(), round2(*total), grade.as_deref()));
        let after = (stored.stage.as_str(), round2(stored.total), stored.grade.as_deref());
        let changed = before != Some(after);
        saves.push(ScoreWrite {
            lead: row,
            score: stored,
            json: &new.json,
            updated_at: if changed { at } else { row.updated_at },
            state: new.state.as_deref(),
        });
        // The history keeps stage and grade changes (with the total then), not every new total:
        // a row per message would double the writes of ingest.
        let moved = before.is_none_or(|(stage, _, grade)| (stage, grade) != (after.0, after.2));
        if changed {
            crm.push(crate::crm::Change { lead: row.id.as_str(), at, moved, account: stored.account_id.as_deref() });
        }
        if moved {
            entries.push((
                row.id.as_str(),
                HistoryRow { at, stage: stored.stage.clone(), total: round2(stored.total), note: None },
            ));
        }
        let from = previous.map_or(leadscore_core::model::DEFAULT_STAGE, |(stage, _, _)| stage.as_str());
        if from != stored.stage {
            let change = StageChange { lead_id: row.id.clone(), from: from.to_owned(), to: stored.stage.clone(), at };
            webhooks::enqueue(tx, &outboxes.webhooks, &change, stored, &new.json)?;
            changes.push(change);
        }
    }
    tx.save_scores(&saves)?;
    tx.append_histories(&entries)?;
    outboxes.syncs.mark(tx, &crm)?;
    Ok(changes)
}

/// How far back from its latest message (or the instant it is scored, if earlier) a stored state
/// keeps a lead's messages one by one: a message dated earlier than that arriving later (an
/// SDK's offline queue) makes its lead fold its whole history again; older messages are folded
/// together ([`LeadState::compact`]).
pub const KEPT_ONE_BY_ONE: Millis = 3 * time::MS_PER_DAY;

/// The leads to which one of these new messages (each with its lead; their ids may be among those
/// the lead's stored state folded: [`LeadState::may_repeat_folded`]) comes a second time. The
/// store keeps one copy of a `messageId` per person (`userId`, else `anonymousId`), but a lead's
/// anonymous ids are other persons, and the copy counted is the earliest, which a compacted state
/// (keeping no ids of what it folded) cannot tell. Those leads are folded again from their whole
/// history.
fn copies_of_folded(tx: &mut Tx<'_>, suspects: &[(String, &Event)]) -> Result<HashSet<String>, StoreError> {
    if suspects.is_empty() {
        return Ok(HashSet::new());
    }
    let folded: Vec<String> =
        suspects.iter().map(|(lead, _)| lead.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut persons: HashMap<&str, Vec<String>> = folded.iter().map(|id| (id.as_str(), vec![id.clone()])).collect();
    let links = tx.links_of_leads(&folded)?;
    for link in &links {
        if let Some(list) = persons.get_mut(link.lead_id.as_str()) {
            list.push(link.anonymous_id.clone());
        }
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut owners: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (lead, event) in suspects {
        let (Some(others), Some(id), Some(person)) =
            (persons.get(lead.as_str()), event.message_id.as_deref(), event.user_id().or(event.anonymous_id()))
        else {
            continue;
        };
        for other in others.iter().filter(|p| p.as_str() != person) {
            pairs.push((other.as_str(), id));
            owners.entry((other.as_str(), id)).or_default().push(lead.as_str());
        }
    }
    let found = tx.stored_messages(&pairs)?;
    Ok(found
        .iter()
        .filter_map(|(p, m)| owners.get(&(p.as_str(), m.as_str())))
        .flatten()
        .map(|lead| (*lead).to_owned())
        .collect())
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
        scores: scores_by_dimension(model, score),
        total: score.total,
        stage: score.stage.clone(),
        grade: score.grade.clone(),
        probability: score.probability,
        contributions: stored_contributions(score),
        current_traits: score.traits.clone(),
        // Account ids are indexed (PostgreSQL refuses entries over ~2.7 KB); one longer than any
        // id ingest accepts can only come from an `account` trait, and is not kept.
        account_id: score.account.clone().filter(|a| a.len() <= MAX_ID_BYTES),
        next_change_at,
        stage_rank: model.stage_rank(&score.stage),
    }
}

/// `{dimension: points}`, rounded to 2 decimals.
pub fn scores_by_dimension(model: &CheckedModel, score: &Score) -> BTreeMap<String, f64> {
    model.dimensions.iter().zip(&score.dimensions).map(|(dim, value)| (dim.name.clone(), round2(*value))).collect()
}

/// The contributions as stored and shown (SPEC §6.2): points rounded to 2 decimals.
pub fn stored_contributions(score: &Score) -> Vec<StoredContribution> {
    score
        .contributions
        .iter()
        .map(|c| StoredContribution {
            rule: c.rule.clone(),
            dimension: c.dimension.clone(),
            points: round2(c.points),
            matched: c.matched as u64,
            last_matched_at: c.last_matched_at.map(time::format_timestamp),
        })
        .collect()
}
