//! Model activation and the rescore thread: activating a version sets the stored call-now ranks
//! from its stage order and the active model in one step, then a `rescore` thread rescores every
//! lead in chunks (progress in [`RescoreProgress`]); another activation, or a stop, ends it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;

use leadscore_core::compact::{CompactEvent, LeadState, read_message};
use leadscore_core::model::Projection;
use leadscore_core::time::Millis;
use leadscore_core::{AccountBook, CheckedModel, IdentityGraph};
use leadscore_store::{LeadHead, StoreError, StoredEvent, Tx};

use crate::app::{App, check_source};
use crate::error::{ServiceError, is_transient};
use crate::models::{invalid_model, model_not_found};
use crate::scoring::{
    ActiveModel, Fresh, Scored, Unreadable, account_book, base_traits, identities_of, outcomes_of, owner_of,
    record_group, record_unreadable, rescore_leads, score_for_store, store_scored,
};

/// Leads per transaction when rescoring everything (bigger chunks amortise the commit; 2,000
/// keeps the parsed histories of a chunk well under 500 MB even with long histories).
pub(crate) const RESCORE_CHUNK: usize = 2000;

/// Chunks a full rescore writes in one transaction: with secondary indexes on the leads table,
/// a bigger transaction writes each index page once for more leads (SQLite, 1M lead rows: 54 s
/// in transactions of 2,000, 32 s in transactions of 20,000); the leads' locks are held for as
/// long.
const RESCORE_WRITE_CHUNKS: usize = 5;

/// Leads from which a full rescore drops the leads table's list indexes while it rewrites the
/// rows, and builds them again at the end (SQLite; see `Tx::drop_list_indexes`): meanwhile lists
/// read the table, which for fewer leads is cheap anyway. Tests (`test-support`) take a few.
const BULK_REWRITE_LEADS: i64 = if cfg!(feature = "test-support") { 3 } else { 100_000 };

/// Progress of the full rescore after a model activation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RescoreProgress {
    pub version: i64,
    pub done: u64,
    pub total: u64,
    pub finished: bool,
    /// Why the rescore stopped early (the leads not reached are rescored at the next start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl App {
    /// Makes `version` active and rescores every lead in the background.
    pub fn activate(self: &Arc<Self>, version: i64) -> Result<RescoreProgress, ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        let (model, _) = check_source(&row.source).map_err(|d| invalid_model(&row.source, &d))?;
        let now = self.clock.now();
        self.store.write(|tx| {
            tx.activate_model(version, now)?;
            rank_stages(tx, &model)
        })?;
        // The model first: the watcher, seeing the new version not yet marked ranked, at worst
        // ranks again with it (writing nothing), never with the old one.
        self.set_model(ActiveModel::new(version, row.source, model));
        // Promotion is activation: a shadow model activated is scored as the active one only.
        self.drop_shadow(version);
        self.ranked_version.store(version, Ordering::SeqCst);
        Ok(self.spawn_rescore(version))
    }

    /// The progress of the latest full rescore.
    pub fn rescore_progress(&self) -> RescoreProgress {
        self.rescore.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub(crate) fn spawn_rescore(self: &Arc<Self>, version: i64) -> RescoreProgress {
        let total = self.store.read(|tx| tx.count_leads()).unwrap_or(0).max(0) as u64;
        let progress = RescoreProgress { version, done: 0, total, finished: total == 0, error: None };
        if let Ok(mut p) = self.rescore.lock() {
            *p = progress.clone();
        }
        let app = Arc::clone(self);
        self.spawn_thread("rescore", move || {
            if let Err(e) = app.rescore_all(version) {
                tracing::error!("rescore for model version {version}: {e}");
                if let Ok(mut p) = app.rescore.lock()
                    && p.version == version
                {
                    p.finished = true;
                    p.error = Some(e.to_string());
                }
            }
        });
        progress
    }

    /// Rescores every lead with model `version`; stops if another version becomes active
    /// meanwhile. When the stored messages are few enough to hold as compact events
    /// ([`PASS_EVENTS`]), one pass reads them all in storage order into compact events per lead
    /// and the accounts' traits (a sequential read: looking each lead's messages up jumps around
    /// the table); otherwise each chunk loads its own leads' histories (bounded memory).
    ///
    /// The leads go in chunks, pipelined: a chunk is read and scored on all cores
    /// ([`App::score_ahead`], outside the write lock) while the previous one is written
    /// ([`App::write_ahead`], one transaction under the leads' locks, which writes a lead's
    /// score only if the lead is still as it was read). A lead whose stored state is already the
    /// new model's was scored since the activation (by ingest, an outcome or the scheduler, from
    /// its whole history) and keeps its state. With [`BULK_REWRITE_LEADS`] or more leads the
    /// leads table's list indexes are dropped meanwhile and built again before the rescore
    /// reports itself finished.
    fn rescore_all(&self, version: i64) -> Result<(), StoreError> {
        let active = self.model();
        if active.version != version || self.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (until, stored) = self.store.read(|tx| Ok::<_, StoreError>((tx.last_seq()?, tx.count_events()?)))?;
        let mut pass = None;
        if stored <= PASS_EVENTS {
            let expected = usize::try_from(stored).unwrap_or(0);
            let read = self.store.read(|tx| read_pass(tx, &active.model, &active.projection, until, expected))?;
            if !read.events.unreadable.is_empty() {
                let now = self.clock.now();
                self.store.write(|tx| record_unreadable(tx, &read.events.unreadable, now))?;
            }
            pass = Some(read);
        }
        // Rewriting most lead rows costs SQLite less without the list indexes, built again
        // once at the end (see `Tx::drop_list_indexes`).
        let leads = self.store.read(|tx| tx.count_leads())?;
        let bulk = leads >= BULK_REWRITE_LEADS && self.store.write(|tx| tx.drop_list_indexes())?;
        let went_through = self.rescore_chunks(&active, pass.as_mut());
        // Built again even when the rescore stopped early; failing that, at the next start.
        let rebuilt = if bulk { self.store.write(|tx| tx.ensure_list_indexes()) } else { Ok(()) };
        if went_through? {
            rebuilt?;
            if let Ok(mut p) = self.rescore.lock() {
                p.finished = true;
                p.done = p.done.max(p.total);
            }
            return Ok(());
        }
        rebuilt
    }

    /// The chunks of [`App::rescore_all`]: `false` if it stopped early (another version active,
    /// or the server stopping).
    fn rescore_chunks(&self, active: &ActiveModel, mut pass: Option<&mut Pass>) -> Result<bool, StoreError> {
        let mut after = String::new();
        let mut pending: Vec<Ahead> = Vec::new();
        loop {
            if self.model().version != active.version || self.stopping.load(Ordering::SeqCst) {
                return Ok(false);
            }
            // The next group of chunks is read and scored while the last one is written.
            let group = std::mem::take(&mut pending);
            let (next, written) = std::thread::scope(|scope| {
                let writer = (!group.is_empty()).then(|| scope.spawn(|| self.write_ahead(active, &group)));
                let next = self.score_group(active, &mut after, pass.as_deref_mut());
                let written = match writer {
                    Some(writer) => writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    None => Ok(0),
                };
                (next, written)
            });
            let written = written?;
            if written > 0 {
                metrics::counter!("leadscore_rescored_leads_total", "cause" => "model").increment(written as u64);
                if let Ok(mut p) = self.rescore.lock() {
                    p.done += written as u64;
                }
            }
            pending = next?;
            if pending.is_empty() {
                return Ok(true);
            }
        }
    }

    /// Reads and scores the next [`RESCORE_WRITE_CHUNKS`] chunks of leads after `after` (fewer
    /// at the end, none when no lead is left), moving `after` on.
    fn score_group(
        &self,
        active: &ActiveModel,
        after: &mut String,
        mut pass: Option<&mut Pass>,
    ) -> Result<Vec<Ahead>, StoreError> {
        let mut group = Vec::with_capacity(RESCORE_WRITE_CHUNKS);
        while group.len() < RESCORE_WRITE_CHUNKS && self.model().version == active.version {
            let ids = self.store.read(|tx| tx.lead_ids_after(after, RESCORE_CHUNK))?;
            let Some(last) = ids.last() else { break };
            *after = last.clone();
            group.push(self.score_ahead(active, ids, pass.as_deref_mut())?);
        }
        Ok(group)
    }

    /// Reads a chunk of leads and scores them with `active` as of now, outside the write lock:
    /// from the pass's compact events when there is a pass, else from each lead's stored history.
    fn score_ahead(
        &self,
        active: &ActiveModel,
        ids: Vec<String>,
        pass: Option<&mut Pass>,
    ) -> Result<Ahead, StoreError> {
        let model = &active.model;
        let now = self.clock.now();
        let heads = self.store.read(|tx| tx.lead_heads(&ids, false))?;
        // Scored with this model since the activation: they keep their state (written under
        // the lock, from it).
        let (kept, heads): (Vec<LeadHead>, Vec<LeadHead>) =
            heads.into_iter().partition(|head| head.model_version == Some(active.version));
        let kept = kept.into_iter().map(|head| head.id).collect();
        let ids: Vec<String> = heads.iter().map(|head| head.id.clone()).collect();
        let mut outcomes = self.store.read(|tx| outcomes_of(tx, &ids))?;
        // The pass's compact events and accounts, or this chunk's own messages read now.
        let pass_accounts = pass.as_ref().map(|pass| Arc::clone(&pass.accounts));
        let mut own = ByLead::default();
        let events = match pass {
            Some(pass) => &mut pass.events,
            None => {
                own = self.store.read(|tx| read_histories(tx, model, &ids))?;
                &mut own
            }
        };
        let work: Vec<(LeadHead, LeadState)> = heads
            .into_iter()
            .map(|head| {
                let events = events.take(&head.id);
                let outcomes = outcomes.remove(&head.id).unwrap_or_default();
                let state = LeadState::with_events(head.id.clone(), base_traits(&head), events, outcomes);
                (head, state)
            })
            .collect();
        let mut unreadable = std::mem::take(&mut own.unreadable);
        let accounts = match pass_accounts {
            Some(accounts) => accounts,
            None => {
                let group_ids: BTreeSet<String> =
                    work.iter().flat_map(|(_, state)| state.group_ids().map(str::to_owned)).collect();
                let group_ids: Vec<String> = group_ids.into_iter().collect();
                let (accounts, skipped) =
                    self.store.read(|tx| account_book(tx, model, &active.projection, &group_ids))?;
                unreadable.extend(skipped);
                Arc::new(accounts)
            }
        };
        let scored = work
            .into_par_iter()
            .map(|(head, state)| {
                let scored = score_for_store(active, state, &accounts, now);
                (head, scored)
            })
            .collect();
        Ok(Ahead { ids, scored, kept, unreadable, now })
    }

    /// Writes a chunk scored ahead, in one transaction under the leads' locks: a lead still as
    /// it was read gets its score; one that changed meanwhile (or was kept) is scored again here,
    /// as any write would. A database outage pauses the rescore instead of ending it. Returns
    /// how many leads the chunk had.
    fn write_ahead(&self, active: &ActiveModel, group: &[Ahead]) -> Result<usize, StoreError> {
        let ids: Vec<String> = group.iter().flat_map(|ahead| ahead.ids.iter().cloned()).collect();
        let mut attempt = 0u32;
        loop {
            let chunk = self.store.write(|tx| {
                tx.lock_leads(&ids)?;
                // Under the leads' locks: once another version is active, its own rescore
                // scores these leads, and this one must not overwrite them.
                if self.model().version != active.version {
                    return Ok(());
                }
                group.iter().try_for_each(|ahead| self.write_chunk(tx, active, ahead))
            });
            match chunk {
                Ok(()) => return Ok(ids.len()),
                Err(e) if is_transient(&e) && attempt < 60 && !self.stopping.load(Ordering::SeqCst) => {
                    attempt += 1;
                    tracing::warn!("rescore paused: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`App::write_ahead`]'s work for one chunk, in its transaction.
    fn write_chunk(&self, tx: &mut Tx<'_>, active: &ActiveModel, ahead: &Ahead) -> Result<(), StoreError> {
        if !ahead.unreadable.is_empty() {
            record_unreadable(tx, &ahead.unreadable, ahead.now)?;
        }
        let now: HashMap<String, LeadHead> =
            tx.lead_heads(&ahead.ids, false)?.into_iter().map(|head| (head.id.clone(), head)).collect();
        let mut same: Vec<(&LeadHead, Option<&Scored>)> = Vec::with_capacity(ahead.scored.len());
        let mut changed: HashSet<String> = HashSet::new();
        for (head, scored) in &ahead.scored {
            match now.get(&head.id) {
                Some(current) if current == head => same.push((head, scored.as_ref())),
                Some(_) => {
                    changed.insert(head.id.clone());
                }
                // Deleted meanwhile.
                None => {}
            }
        }
        store_scored(tx, &self.outboxes, &same)?;
        // As of now, not as of the read: what changed them may be newer than the read's instant
        // (as of that instant a new message would not be seen, and its traits and points lost).
        let at = self.clock.now().max(ahead.now);
        let again: Vec<(String, Millis)> = changed
            .iter()
            .chain(ahead.kept.iter().filter(|id| now.contains_key(*id)))
            .map(|id| (id.clone(), at))
            .collect();
        let fresh = Fresh { replay: changed, ..Fresh::default() };
        rescore_leads(tx, active, &self.outboxes, &again, &fresh).map(|_| ())
    }
}

/// A chunk of leads read and scored ahead of its write ([`App::score_ahead`]).
struct Ahead {
    ids: Vec<String>,
    /// Each lead as read, with its new score and state: written only if the lead is still the
    /// same under the write lock.
    scored: Vec<(LeadHead, Option<Scored>)>,
    /// Leads scored with the new model since the activation: rescored from their states.
    kept: Vec<String>,
    /// Stored messages of these leads that could not be read.
    unreadable: Vec<Unreadable>,
    /// The instant they were scored as of.
    now: Millis,
}

/// Stored messages a full rescore reads per query.
const PASS_PAGE: usize = 20_000;

/// Most stored messages a full rescore reads in one pass into compact events; with more, each
/// chunk loads its own leads' histories. The pass holds ~90 bytes a message plus `identify`
/// traits, and the server's RSS rose by ~230 bytes a message while it read (2M messages of 100k
/// leads: 582 MiB at the peak, 11.5 s; each chunk loading its own: 271 MiB, 20.4 s), so the
/// limit keeps it under 500 MB. Tests (`test-support`) take a few dozen, so that both ways are
/// exercised.
const PASS_EVENTS: i64 = if cfg!(feature = "test-support") { 40 } else { 1_500_000 };

/// What one pass over the stored messages read.
struct Pass {
    events: ByLead,
    /// Every account's traits over time (from every `group` message, whoever sent it).
    accounts: Arc<AccountBook>,
}

/// Compact events grouped by the lead they belong to, as read by [`compact_of`], and the
/// messages that could not be read. The events are one list ordered by lead (one allocation the
/// size of the messages, not a growing list per lead), each lead's found by its range.
#[derive(Default)]
struct ByLead {
    events: Vec<(u32, CompactEvent)>,
    /// Each lead's index in `events` while reading.
    leads: HashMap<String, u32>,
    /// Each lead's events in `events`, once [`ByLead::finish`]ed.
    ranges: HashMap<String, std::ops::Range<usize>>,
    unreadable: Vec<Unreadable>,
}

impl ByLead {
    fn with_capacity(events: usize) -> ByLead {
        ByLead { events: Vec::with_capacity(events), ..ByLead::default() }
    }

    /// Adds what [`compact_of`] read of some stored messages.
    fn add(&mut self, read: Vec<Result<(&str, CompactEvent), Unreadable>>) {
        for item in read {
            match item {
                Ok((lead, event)) => {
                    let index = match self.leads.get(lead) {
                        Some(index) => *index,
                        None => {
                            let index = u32::try_from(self.leads.len()).unwrap_or(u32::MAX);
                            self.leads.insert(lead.to_owned(), index);
                            index
                        }
                    };
                    self.events.push((index, event));
                }
                Err(u) => self.unreadable.push(u),
            }
        }
    }

    /// Orders the events by lead (a lead's own in any order: `LeadState::with_events` orders
    /// them) and finds each lead's range.
    fn finish(mut self) -> ByLead {
        self.events.par_sort_unstable_by_key(|(lead, _)| *lead);
        let mut starts = vec![0usize; self.leads.len() + 1];
        for (lead, _) in &self.events {
            starts[*lead as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        self.ranges = std::mem::take(&mut self.leads)
            .into_iter()
            .map(|(id, i)| (id, starts[i as usize]..starts[i as usize + 1]))
            .collect();
        self
    }

    /// Takes a lead's events out (each lead's are taken once).
    fn take(&mut self, lead: &str) -> Vec<CompactEvent> {
        let Some(range) = self.ranges.remove(lead) else { return Vec::new() };
        self.events[range].iter_mut().map(|(_, event)| std::mem::replace(event, CompactEvent::taken())).collect()
    }
}

/// The stored messages up to `until`, in storage order, read into compact events for `model` by
/// the lead they belong to (an anonymous message to the lead its id's earliest link names, from
/// the link's time, as the history loader attributes them), every account's traits, and the
/// messages that could not be read. `expected`: about how many messages there are.
fn read_pass(
    tx: &mut Tx<'_>,
    model: &CheckedModel,
    projection: &Projection,
    until: i64,
    expected: usize,
) -> Result<Pass, StoreError> {
    let mut identities = IdentityGraph::default();
    for link in tx.all_links()? {
        identities.link(&link.anonymous_id, &link.lead_id, link.at);
    }
    let mut events = ByLead::with_capacity(expected);
    let mut accounts = AccountBook::default();
    let mut after = 0;
    loop {
        let page = tx.events_page(after, until, PASS_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.0.seq;
        for (stored, _) in page.iter().filter(|(_, group)| *group) {
            if let Err(u) = record_group(&mut accounts, model, projection, stored) {
                events.unreadable.push(u);
            }
        }
        events.add(page.par_iter().filter_map(|(stored, _)| compact_of(stored, &identities, model)).collect());
    }
    Ok(Pass { events: events.finish(), accounts: Arc::new(accounts) })
}

/// A stored message read for `model` into a compact event of the lead it belongs to, as the
/// history loader attributes it (an anonymous message to the lead its id's earliest link names,
/// visible from the link's time); `None` for an anonymous message no link names or one the model
/// ignores.
fn compact_of<'a>(
    stored: &'a StoredEvent,
    identities: &'a IdentityGraph,
    model: &CheckedModel,
) -> Option<Result<(&'a str, CompactEvent), Unreadable>> {
    let (owner, linked_at) = owner_of(stored, identities)?;
    let message = match read_message(&model.plan, stored.body.as_bytes()) {
        Ok(message) => message,
        Err(e) => return Some(Err(Unreadable { seq: stored.seq, reason: e.to_string() })),
    };
    if model.plan.ignores(&message) {
        return None;
    }
    let mut compact = model.compact(&message);
    if let Some(at) = linked_at {
        compact.visible_at = compact.at.max(at);
    }
    Some(Ok((owner, compact)))
}

/// The compact events of the leads `ids`, read from their stored messages (no JSON tree; the
/// history loader's attribution), and the messages that could not be read.
fn read_histories(tx: &mut Tx<'_>, model: &CheckedModel, ids: &[String]) -> Result<ByLead, StoreError> {
    let identities = identities_of(tx, ids)?;
    let anonymous: Vec<String> = ids.iter().flat_map(|id| identities.anonymous_ids_of(id)).map(str::to_owned).collect();
    let stored = tx.events_of_leads(ids, &anonymous)?;
    let mut events = ByLead::with_capacity(stored.len());
    events.add(stored.par_iter().filter_map(|stored| compact_of(stored, &identities, model)).collect());
    Ok(events.finish())
}

/// Sets every stored lead's call-now rank from `model`'s stage order.
pub(crate) fn rank_stages(tx: &mut Tx<'_>, model: &CheckedModel) -> Result<(), StoreError> {
    let (ranks, other) = model.stage_ranks();
    tx.rank_stages(&ranks, other).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    use leadscore_core::event::MessageKind;
    use leadscore_core::time::parse_timestamp;
    use leadscore_store::NewEvent;

    use crate::ingest::Incoming;
    use crate::scoring::record_events;
    use crate::{Clock, ManualClock, Settings};

    fn model(points: u32) -> String {
        format!(
            r#"
[model]
name = "pipelined"

[dimensions.engagement]

[[rules]]
name = "Demo requested"
dimension = "engagement"
on = 'event.type == "track" && event.event == "Demo Requested"'
points = {points}
"#
        )
    }

    fn demo(user: &str, id: &str, at: &str) -> Incoming {
        let body = serde_json::json!({
            "type": "track", "userId": user, "event": "Demo Requested", "messageId": id, "timestamp": at,
        });
        let event = leadscore_core::Event::from_message(body).unwrap();
        Incoming {
            new: NewEvent {
                write_key: "wk".into(),
                message_id: id.into(),
                lead_id: Some(user.into()),
                anonymous_id: None,
                group_id: None,
                event_type: MessageKind::Track,
                at: event.at,
                received_at: event.at,
                body: serde_json::to_string(&event.body).unwrap(),
            },
            event,
        }
    }

    fn total(app: &App, id: &str) -> f64 {
        let heads = app.store.read(|tx| tx.lead_heads(&[id.to_owned()], false)).unwrap();
        heads[0].scored.as_ref().unwrap().1
    }

    /// A server at `now` (of `clock`) with leads `a` and `b` scored by a model that gives a demo
    /// request 60 points, then a model giving 10 made active without the background rescore (the
    /// tests drive its steps). Returns the new active model.
    fn activated(dir: &std::path::Path, clock: Arc<ManualClock>) -> (Arc<App>, Arc<ActiveModel>) {
        let path = dir.join("model.toml");
        std::fs::write(&path, model(60)).unwrap();
        let settings = Settings::new(
            format!("sqlite://{}", dir.join("test.db").display()),
            Some(path),
            vec!["wk".into()],
            vec!["ak".into()],
        );
        let now = clock.now();
        let app = App::start(settings, clock).unwrap();
        let first = [demo("a", "m1", "2026-01-09T10:00:00Z"), demo("b", "m2", "2026-01-09T11:00:00Z")];
        let v1 = app.model();
        app.store.write(|tx| record_events(tx, &v1, &[], &app.outboxes, &first, now)).unwrap();
        assert_eq!((total(&app, "a"), total(&app, "b")), (60.0, 60.0));

        let v2 = app.add_model(&model(10)).unwrap().version;
        app.store.write(|tx| tx.activate_model(v2, now).map(|_| ())).unwrap();
        let source = app.store.read(|tx| tx.model(v2)).unwrap().unwrap().source;
        let (checked, _) = check_source(&source).unwrap();
        app.set_model(ActiveModel::new(v2, source, checked));
        let v2 = app.model();
        (app, v2)
    }

    /// A chunk is scored ahead of its write, outside the write lock; a lead that a new message
    /// changed in between must not get the score read before it (which lacks the message).
    #[test]
    fn a_lead_changed_between_the_read_and_the_write_of_its_chunk_is_scored_again() {
        let dir = tempfile::tempdir().unwrap();
        let now = parse_timestamp("2026-01-10T00:00:00Z").unwrap();
        let (app, v2) = activated(dir.path(), Arc::new(ManualClock::new(now)));

        let ids = vec!["a".to_owned(), "b".to_owned()];
        let ahead = app.score_ahead(&v2, ids, None).unwrap();
        // Meanwhile a second demo request for `a` (ingest folds `a` from its whole history).
        app.store
            .write(|tx| record_events(tx, &v2, &[], &app.outboxes, &[demo("a", "m3", "2026-01-09T12:00:00Z")], now))
            .unwrap();
        assert_eq!(total(&app, "a"), 20.0);
        assert_eq!(app.write_ahead(&v2, &[ahead]).unwrap(), 2);
        assert_eq!(total(&app, "a"), 20.0, "the chunk's stale score of `a` was written over the newer one");
        assert_eq!(total(&app, "b"), 10.0);
    }

    /// The same when the clock moves on between the read and the write: a lead changed meanwhile
    /// by a message newer than the chunk's instant is scored as of the write, not as of the read
    /// (as of the read, the new message is not there yet: its traits or points would be lost).
    #[test]
    fn a_lead_changed_after_the_read_is_scored_as_of_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(parse_timestamp("2026-01-10T00:00:00Z").unwrap()));
        let (app, v2) = activated(dir.path(), clock.clone());

        // `a` read and scored as of `now`; then, a minute later, a demo request stamped then, and
        // `b` kept as it was.
        let ahead = app.score_ahead(&v2, vec!["a".to_owned(), "b".to_owned()], None).unwrap();
        let later = parse_timestamp("2026-01-10T00:01:00Z").unwrap();
        clock.set(later);
        app.store
            .write(|tx| record_events(tx, &v2, &[], &app.outboxes, &[demo("a", "m3", "2026-01-10T00:01:00Z")], later))
            .unwrap();
        assert_eq!(total(&app, "a"), 20.0);
        assert_eq!(app.write_ahead(&v2, &[ahead]).unwrap(), 2);
        assert_eq!(total(&app, "a"), 20.0, "`a` was scored again as of the read, before its new message");
        assert_eq!(total(&app, "b"), 10.0);
        let scored_at = app.store.read(|tx| tx.lead("a")).unwrap().unwrap().score.unwrap().scored_at;
        assert_eq!(scored_at, later);
    }
}
