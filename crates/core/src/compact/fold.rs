//! The engine as a fold: a lead's state, built one compact event at a time in any arrival order,
//! and read at any instant.
//!
//! [`LeadState::apply`] files an event where each rule needs it: the time in the sorted list of
//! every rule it matched when read, the traits of an `identify` or `group` message in the order
//! SPEC §2.2 merges them, the values of rules decided at scoring time. Nothing is re-derived
//! when another event arrives. [`LeadState::score_at`] reads the state at an instant: windows by
//! binary search in each rule's list, the traits and the account kept from one read to the next
//! while the messages they come from stay the same. [`LeadState::next_change`] is the next
//! instant at which the score can change by time alone (SPEC §6.3).
//!
//! An event exists at `as_of` when it happened and was attributed to the lead by then, and, if
//! another event has the same `messageId`, when it is the first of them in time order among those
//! that exist: a late duplicate with an earlier time replaces the one applied before it. The
//! state keeps what that needs (every event's time, visibility and id), so it answers exactly
//! for any instant; it serialises with serde.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CompactEvent, Deferred, Extra, Kind, MessageKey};
use crate::cel::{Activation, Binding};
use crate::engine::{self, AccountBook, LeadHistory, Outcome, Score};
use crate::model::{CheckedModel, RuleKind};
use crate::schedule::REFRESH;
use crate::time::Millis;

type ById<V> = HashMap<MessageKey, V, foldhash::fast::RandomState>;

/// What the state keeps of every event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Meta {
    at: Millis,
    visible_at: Millis,
    tie: u64,
    id: Option<MessageKey>,
    /// Another event has the same `messageId`.
    duplicated: bool,
}

impl Meta {
    fn visible(&self, as_of: Millis) -> bool {
        self.at <= as_of && self.visible_at <= as_of
    }
}

/// The events a rule matched when they were read: their times, ascending, and which they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Hits {
    times: Vec<Millis>,
    events: Vec<usize>,
    /// Some of them belong to the lead only from a later instant than their time.
    stitched: bool,
}

/// An `identify` or `group` message: what the lead's traits and account are made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    event: usize,
    kind: Kind,
    message_id: Option<Box<str>>,
    traits: Option<Box<str>>,
    group_id: Option<Box<str>>,
}

/// One lead's scoring state under one model (the rules its events matched are the model's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeadState {
    id: String,
    /// Base traits (the leads file, the CRM); `identify` traits are merged over them.
    traits: Map<String, Value>,
    outcomes: Vec<Outcome>,
    /// Every applied event, in arrival order.
    events: Vec<Meta>,
    /// The first event applied with each `messageId`.
    #[serde(with = "pairs")]
    first_of_id: ById<usize>,
    /// Every event of each `messageId` applied more than once.
    #[serde(with = "pairs")]
    duplicates: ById<Vec<usize>>,
    /// Per rule decided when read.
    rules: Vec<Hits>,
    /// Events with rules decided at scoring time, ascending by time.
    deferred: Vec<(usize, Deferred)>,
    /// `identify` and `group` messages in the order their traits merge: time, then `messageId`,
    /// then content.
    profile: Vec<Profile>,
    /// The earliest time of an event attributed to the lead when it happened.
    first_plain: Option<Millis>,
    /// Events attributed to the lead after they happened (stitched anonymous events).
    stitched: Vec<usize>,
    #[serde(skip)]
    cache: Option<Cached>,
    /// What [`LeadState::compact`] folded together: the events before its horizon.
    #[serde(default)]
    summary: Option<Box<Summary>>,
}

/// The size of a summary's filter of folded `messageId`s: with 200 folded ids about 1.6% of new
/// ids seem to be among them, with 1,000 about 40% (each then costs the server a look-up).
const FOLDED_ID_BITS: u64 = 2048;
const FOLDED_ID_WORDS: usize = (FOLDED_ID_BITS / 64) as usize;

/// The three bits of an id in a summary's filter (the key is a hash already).
fn id_bits(key: &MessageKey) -> [usize; 3] {
    let high = key.high.get();
    [high % FOLDED_ID_BITS, (high >> 32) % FOLDED_ID_BITS, key.low % FOLDED_ID_BITS].map(|b| b as usize)
}

/// The events before a horizon, folded together by [`LeadState::compact`]: what scoring at the
/// horizon or later needs of them, in a size that does not grow with their number (windowed
/// rules keep the matches their window can still reach, limited rules their last `limit`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Summary {
    /// The start of a UTC day. Every event before it is folded in here (so no UTC day's
    /// matches are split, which `per_day` needs); the state scores only instants from it on and
    /// takes no event before it.
    horizon: Millis,
    /// The earliest folded event's time (the inactivity anchor without `created_at`).
    first: Option<Millis>,
    /// The folded events' times within the longest window or period before the horizon (whole
    /// UTC days), ascending: the window ends still to come.
    recent: Vec<Millis>,
    /// The account named by the last folded `group` message.
    group_id: Option<Box<str>>,
    /// The folded events' `messageId`s as a Bloom filter ([`FOLDED_ID_BITS`] bits, 3 an id):
    /// an event whose id it does not hold is no copy of a folded one.
    ids: Vec<u64>,
    /// Per rule: what an unwindowed rule without a limit, or an inactivity rule, keeps.
    #[serde(with = "sparse")]
    prior: Vec<engine::Prior>,
    /// Per rule: the folded matches a windowed rule's window can still reach (whole UTC days),
    /// or a limited unwindowed rule's last `limit` counted ones, ascending.
    #[serde(with = "sparse")]
    tails: Vec<Vec<Millis>>,
}

/// The start of the UTC day of an instant.
fn day_start(t: Millis) -> Millis {
    t - t.rem_euclid(crate::time::MS_PER_DAY)
}

impl Summary {
    /// Folds each rule's matches among the `folded` events into what it keeps from `horizon` on.
    fn fold_rules(&mut self, model: &CheckedModel, rules: &[Hits], folded: &[bool], horizon: Millis) {
        let n = model.rules.len();
        self.prior.resize_with(n, engine::Prior::default);
        self.tails.resize_with(n, Vec::new);
        for (r, rule) in model.rules.iter().enumerate() {
            let times: Vec<Millis> = rules.get(r).map_or_else(Vec::new, |hits| {
                hits.times.iter().zip(&hits.events).filter(|&(_, &e)| folded[e]).map(|(&t, _)| t).collect()
            });
            let tail = &mut self.tails[r];
            let prior = &mut self.prior[r];
            match &rule.kind {
                RuleKind::Trait { .. } => {}
                RuleKind::Event { within: Some(w), .. } | RuleKind::Count { within: w, .. } => {
                    let from = day_start(horizon - w.as_millis());
                    tail.extend(times);
                    tail.retain(|&t| t >= from);
                }
                RuleKind::Event { within: None, limit: Some(limit), per_day, .. } => {
                    tail.extend(times);
                    if let Some(per_day) = per_day {
                        *tail = engine::keep_latest_per_day(tail, *per_day);
                    }
                    let extra = tail.len().saturating_sub(*limit);
                    tail.drain(..extra);
                }
                RuleKind::Event { within: None, limit: None, per_day, half_life, .. } => {
                    let counted = match per_day {
                        Some(per_day) => engine::keep_latest_per_day(&times, *per_day),
                        None => times,
                    };
                    if prior.count > 0 {
                        prior.decayed *= engine::decay(horizon - prior.horizon, *half_life);
                    }
                    for &t in &counted {
                        prior.decayed += engine::decay(horizon - t, *half_life);
                    }
                    prior.count += counted.len();
                    prior.last = counted.last().copied().or(prior.last);
                    if prior.count > 0 {
                        prior.horizon = horizon;
                    }
                }
                // Only the latest match matters.
                RuleKind::Inactivity { .. } => prior.last = times.last().copied().or(prior.last),
            }
        }
    }

    /// Folds what every `folded` event leaves besides its rules: its id (in the filter) and its
    /// time (the earliest, and those the longest window can still reach); the horizon moves on.
    fn fold_events(&mut self, model: &CheckedModel, events: &[Meta], folded: &[bool], horizon: Millis) {
        let folded = || events.iter().zip(folded).filter(|(_, f)| **f).map(|(m, _)| m);
        for key in folded().filter_map(|m| m.id.as_ref()) {
            if self.ids.len() != FOLDED_ID_WORDS {
                // None yet (or not this version's filter: then every bit, as it may hold anything).
                self.ids = vec![if self.ids.is_empty() { 0 } else { u64::MAX }; FOLDED_ID_WORDS];
            }
            for b in id_bits(key) {
                self.ids[b / 64] |= 1 << (b % 64);
            }
        }
        let mut times: Vec<Millis> = folded().map(|m| m.at).collect();
        times.sort_unstable();
        self.first = self.first.into_iter().chain(times.first().copied()).min();
        self.recent.extend(times);
        let longest = model
            .rules
            .iter()
            .filter_map(|rule| match &rule.kind {
                RuleKind::Event { within: Some(w), .. } | RuleKind::Count { within: w, .. } => Some(w.as_millis()),
                RuleKind::Inactivity { period, .. } => Some(period.as_millis()),
                _ => None,
            })
            .max();
        match longest {
            Some(p) => {
                let from = day_start(horizon - p);
                self.recent.retain(|&t| t >= from);
            }
            None => self.recent.clear(),
        }
        self.horizon = horizon;
    }
}

/// Which events exist at one instant.
struct Existing<'s> {
    events: &'s [Meta],
    as_of: Millis,
    /// Per duplicated `messageId`, the event of it that counts (the first, by time then content,
    /// among those that happened and were attributed by then).
    first: ById<usize>,
}

impl Existing<'_> {
    /// Whether event `e` exists: happened and attributed by then, and not a later duplicate.
    fn contains(&self, e: usize) -> bool {
        let Some(meta) = self.events.get(e) else { return false };
        meta.visible(self.as_of) && (!meta.duplicated || meta.id.is_some_and(|key| self.first.get(&key) == Some(&e)))
    }
}

/// What the last read computed that the next may reuse while the profile stays the same.
#[derive(Debug, Clone)]
struct Cached {
    /// The `identify` messages that existed, and the `group` message that named the account.
    profile: (Vec<usize>, Option<usize>),
    /// How many of the account's `group` messages existed.
    version: usize,
    context: engine::LeadContext,
    /// Per rule: whether a trait rule held (`None`: not known, or it reads the clock).
    trait_rules: Vec<Option<bool>>,
}

impl LeadState {
    /// A lead with no events yet.
    pub fn new(id: String, traits: Map<String, Value>, outcomes: Vec<Outcome>) -> LeadState {
        LeadState { id, traits, outcomes, ..LeadState::default() }
    }

    /// A lead's state after all these events (in any order; filed in time order, which is
    /// cheapest).
    pub fn with_events(
        id: String,
        traits: Map<String, Value>,
        mut events: Vec<CompactEvent>,
        outcomes: Vec<Outcome>,
    ) -> LeadState {
        // Mostly in order already (files are); equal keys are the same message.
        events.sort_unstable_by_key(|e| (e.at, e.id, e.tie));
        let mut state = LeadState::new(id, traits, outcomes);
        state.events.reserve(events.len());
        state.first_of_id.reserve(events.len());
        for event in events {
            state.apply(event);
        }
        state
    }

    /// The state of a [`LeadHistory`]: its messages read into compact events for `model`.
    pub fn of(model: &CheckedModel, lead: &LeadHistory) -> LeadState {
        let events =
            lead.events.iter().filter_map(|e| CompactEvent::of_event(model, e, !lead.ignore_applied)).collect();
        LeadState::with_events(lead.id.clone(), lead.traits.clone(), events, lead.outcomes.clone())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// How many events were applied.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The accounts (`groupId`s) of the lead's `group` messages: the accounts whose traits its
    /// score can read.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> + '_ {
        let folded = self.summary.as_ref().and_then(|s| s.group_id.as_deref());
        self.profile.iter().filter_map(|p| p.group_id.as_deref()).chain(folded)
    }

    /// The horizon of a compacted state (see [`LeadState::compact`]): it scores only instants
    /// from then on and takes no event dated before it.
    pub fn horizon(&self) -> Option<Millis> {
        self.summary.as_ref().map(|s| s.horizon)
    }

    /// The time of the latest event kept one by one (`None` when there is none).
    pub fn latest(&self) -> Option<Millis> {
        self.events.iter().map(|m| m.at).max()
    }

    /// Whether this event may be another copy (same `messageId`) of an event the state folded
    /// ([`LeadState::compact`]), which keeps no ids but a filter of them: `false` means it is
    /// not; `true` that it may be (the state cannot tell which copy counts: the earliest).
    pub fn may_repeat_folded(&self, event: &CompactEvent) -> bool {
        let (Some(summary), Some(key)) = (&self.summary, &event.id) else { return false };
        match summary.ids.len() {
            0 => false,
            FOLDED_ID_WORDS => id_bits(key).iter().all(|&b| summary.ids[b / 64] & (1 << (b % 64)) != 0),
            // Not a filter this version wrote: it may hold anything.
            _ => true,
        }
    }

    /// Whether [`LeadState::apply`] can file this event exactly: always, unless the state was
    /// compacted and the event is dated before its horizon (then the lead must be folded again
    /// from its whole history).
    pub fn accepts(&self, event: &CompactEvent) -> bool {
        self.horizon().is_none_or(|horizon| event.at >= horizon)
    }

    /// Every applied event's time and the time from which it belongs to the lead.
    pub fn event_times(&self) -> impl Iterator<Item = (Millis, Millis)> + '_ {
        self.events.iter().map(|e| (e.at, e.visible_at))
    }

    /// Files one event (of any time: late and duplicate events included).
    pub fn apply(&mut self, event: CompactEvent) {
        let index = self.events.len();
        let CompactEvent { at, visible_at, tie, id, matched, kind, extra } = event;
        let mut duplicated = false;
        if let Some(key) = id {
            match self.first_of_id.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(index);
                }
                Entry::Occupied(first) => {
                    let first = *first.get();
                    duplicated = true;
                    if let Some(meta) = self.events.get_mut(first) {
                        meta.duplicated = true;
                    }
                    self.duplicates.entry(key).or_insert_with(|| vec![first]).push(index);
                }
            }
        }
        self.events.push(Meta { at, visible_at, tie, id, duplicated });
        if visible_at > at {
            self.stitched.push(index);
        } else {
            self.first_plain = Some(self.first_plain.map_or(at, |first| first.min(at)));
        }
        for r in matched.iter() {
            if self.rules.len() <= r {
                self.rules.resize_with(r + 1, Hits::default);
            }
            let hits = &mut self.rules[r];
            hits.stitched |= visible_at > at;
            let place = hits.times.partition_point(|&t| t <= at);
            hits.times.insert(place, at);
            hits.events.insert(place, index);
        }
        if let Some(extra) = extra {
            let Extra { message_id, traits, group_id, deferred } = *extra;
            if let Some(deferred) = deferred {
                let place = self.deferred.partition_point(|(e, _)| self.events[*e].at <= at);
                self.deferred.insert(place, (index, deferred));
            }
            if matches!(kind, Kind::Identify | Kind::Group) {
                let entry = Profile { event: index, kind, message_id, traits, group_id };
                let new = (at, entry.message_id.as_deref(), tie);
                let events = &self.events;
                let place = self
                    .profile
                    .partition_point(|p| (events[p.event].at, p.message_id.as_deref(), events[p.event].tie) <= new);
                self.profile.insert(place, entry);
            }
        }
        self.cache = None;
    }

    /// Folds the events dated before `before` (rounded down to the start of its UTC day) into a
    /// summary that keeps what scoring from then on needs: per rule a count, the latest time and
    /// the decay sum, or, for windowed and limited rules, the times they can still count; the
    /// `identify` traits merged in order; the account of the last `group` message. The state's
    /// size then follows the events of the recent past, not the lead's whole history.
    ///
    /// An event that must stay one by one (it shares its `messageId` with another, its rules are
    /// decided at scoring time, or it belongs to the lead only from a later instant) stops the
    /// fold at the start of its day. Afterwards the state scores only instants from the horizon
    /// on ([`LeadState::horizon`]) and takes no event dated before it ([`LeadState::accepts`]).
    /// The sums of decay factors are kept as one number, so a score may differ from a fold of
    /// every event in the last bits of a float. Returns whether anything was folded.
    pub fn compact(&mut self, model: &CheckedModel, before: Millis) -> bool {
        let previous = self.horizon();
        if previous.is_some_and(|p| day_start(before) <= p) {
            return false;
        }
        let horizon = self.foldable_before(day_start(before));
        if previous.is_some_and(|p| horizon <= p) || !self.events.iter().any(|m| m.at < horizon) {
            return false;
        }
        let folded: Vec<bool> = self.events.iter().map(|m| m.at < horizon).collect();
        let mut summary = self.summary.take().map(|b| *b).unwrap_or_default();
        summary.fold_rules(model, &self.rules, &folded, horizon);
        summary.fold_events(model, &self.events, &folded, horizon);
        // The folded `identify` and `group` messages come first in merge order (it starts with
        // time): their traits merge over the base traits as scoring would merge them.
        let mut traits = std::mem::take(&mut self.traits);
        for entry in self.profile.iter().filter(|p| folded[p.event]) {
            match entry.kind {
                Kind::Identify => {
                    let update = entry.traits.as_deref().and_then(|t| serde_json::from_str(t).ok());
                    if let Some(update) = update {
                        engine::merge_traits(&mut traits, &update);
                    }
                }
                _ => {
                    if let Some(group) = &entry.group_id {
                        summary.group_id = Some(group.clone());
                    }
                }
            }
        }
        let kept = self.take_events(&folded);
        let mut state = LeadState::new(std::mem::take(&mut self.id), traits, std::mem::take(&mut self.outcomes));
        state.summary = Some(Box::new(summary));
        for event in kept {
            state.apply(event);
        }
        *self = state;
        true
    }

    /// `horizon`, or the start of the day of the earliest event before it that cannot be folded
    /// (it shares its `messageId`, its rules are decided at scoring time, or it belongs to the
    /// lead only from the horizon or later); once the horizon moves, another event may become
    /// one, so down to where none is left.
    fn foldable_before(&self, mut horizon: Millis) -> Millis {
        let deferred: std::collections::HashSet<usize> = self.deferred.iter().map(|(e, _)| *e).collect();
        loop {
            let blocked = self
                .events
                .iter()
                .enumerate()
                .filter(|(e, m)| m.at < horizon && (m.duplicated || m.visible_at >= horizon || deferred.contains(e)))
                .map(|(_, m)| day_start(m.at))
                .min();
            match blocked {
                Some(day) if day < horizon => horizon = day,
                _ => return horizon,
            }
        }
    }

    /// The applied events not `folded`, as compact events again (in arrival order), taking the
    /// profile and deferred entries out of the state.
    fn take_events(&mut self, folded: &[bool]) -> Vec<CompactEvent> {
        let mut matched: Vec<super::RuleSet> = vec![super::RuleSet::default(); self.events.len()];
        for (r, hits) in self.rules.iter().enumerate() {
            for &e in &hits.events {
                matched[e].insert(r);
            }
        }
        let mut extras: HashMap<usize, Extra> = HashMap::new();
        let mut kinds: HashMap<usize, Kind> = HashMap::new();
        for entry in std::mem::take(&mut self.profile) {
            kinds.insert(entry.event, entry.kind);
            let extra = extras.entry(entry.event).or_default();
            extra.message_id = entry.message_id;
            extra.traits = entry.traits;
            extra.group_id = entry.group_id;
        }
        for (e, deferred) in std::mem::take(&mut self.deferred) {
            extras.entry(e).or_default().deferred = Some(deferred);
        }
        self.events
            .iter()
            .zip(matched)
            .enumerate()
            .filter(|(e, _)| !folded[*e])
            .map(|(e, (meta, matched))| CompactEvent {
                at: meta.at,
                visible_at: meta.visible_at,
                tie: meta.tie,
                id: meta.id,
                matched,
                kind: kinds.get(&e).copied().unwrap_or(Kind::Other),
                extra: extras.remove(&e).map(Box::new),
            })
            .collect()
    }

    /// The events that exist at `as_of`: the first of each duplicated `messageId` is found once,
    /// so asking about every event costs time linear in their number however many share an id.
    fn existing(&self, as_of: Millis) -> Existing<'_> {
        let events = &self.events;
        let first = self
            .duplicates
            .iter()
            .filter_map(|(key, members)| {
                let first = members
                    .iter()
                    .copied()
                    .filter(|&e| events[e].visible(as_of))
                    .min_by_key(|&e| (events[e].at, events[e].tie, e))?;
                Some((*key, first))
            })
            .collect();
        Existing { events, as_of, first }
    }

    /// The time and kept values of every event that exists at `as_of` and carries values (all
    /// events, read with a [`super::Plan::keeping`] plan), ascending by time.
    pub fn kept(&self, as_of: Millis) -> Vec<(Millis, &[Option<Value>])> {
        let existing = self.existing(as_of);
        self.deferred
            .iter()
            .filter(|(e, _)| existing.contains(*e))
            .map(|(e, deferred)| (self.events[*e].at, &deferred.slots[..]))
            .collect()
    }

    /// The earliest time of an event that exists at `as_of`.
    fn first_event(&self, as_of: Millis) -> Option<Millis> {
        let plain = self.first_plain.filter(|&t| t <= as_of);
        let stitched = self.stitched.iter().map(|&e| self.events[e]).filter(|m| m.visible(as_of)).map(|m| m.at).min();
        let folded = self.summary.as_ref().and_then(|s| s.first);
        [plain, stitched, folded].into_iter().flatten().min()
    }

    /// The lead's score at `as_of`.
    pub fn score_at(&mut self, model: &CheckedModel, accounts: &AccountBook, as_of: Millis) -> Score {
        self.score(model, accounts, as_of, engine::Detail::Full)
    }

    /// The lead's stage at `as_of` (the score without contributions or traits: cheaper, for a
    /// backtest's checkpoints).
    pub fn stage_at(&mut self, model: &CheckedModel, accounts: &AccountBook, as_of: Millis) -> String {
        self.score(model, accounts, as_of, engine::Detail::Stage).stage
    }

    fn score(&mut self, model: &CheckedModel, accounts: &AccountBook, as_of: Millis, detail: engine::Detail) -> Score {
        let cache = self.cache.take();
        let existing = self.existing(as_of);
        let mut cached = self.context(cache, &existing, accounts, as_of);
        let context = &cached.context;
        let account_binding = context.account_binding();
        let n = model.rules.len();
        // Rules whose list must be filtered (it holds stitched events, or some events share an
        // id), or that are decided now, get a list of their own.
        let mut own: Vec<Option<Vec<Millis>>> = vec![None; n];
        let duplicates = !self.duplicates.is_empty();
        for (r, hits) in self.rules.iter().enumerate().take(n).filter(|(_, h)| duplicates || h.stitched) {
            let upto = hits.times.partition_point(|&t| t <= as_of);
            let existing = hits.times[..upto].iter().zip(&hits.events[..upto]).filter(|&(_, &e)| existing.contains(e));
            own[r] = Some(existing.map(|(&t, _)| t).collect());
        }
        for (e, deferred) in &self.deferred {
            if !existing.contains(*e) {
                continue;
            }
            let at = self.events[*e].at;
            let vars = [Binding::Flat(&deferred.slots), Binding::Json(&context.lead_value), account_binding];
            let activation = Activation { vars: &vars, as_of };
            for r in deferred.candidates.iter() {
                let holds =
                    model.plan.rules.get(r).and_then(|p| p.condition.as_ref()).is_some_and(|c| c.matches(&activation));
                if holds && let Some(list) = own.get_mut(r) {
                    list.get_or_insert_with(Vec::new).push(at);
                }
            }
        }
        // A compacted state's folded matches come first (they are older than every kept event).
        if let Some(summary) = &self.summary {
            for (r, tail) in summary.tails.iter().enumerate().take(n).filter(|(_, t)| !t.is_empty()) {
                let kept = match own[r].take() {
                    Some(list) => list,
                    None => self.rules.get(r).map_or_else(Vec::new, |h| h.times.clone()),
                };
                own[r] = Some(tail.iter().copied().chain(kept).collect());
            }
        }
        let times: Vec<&[Millis]> = (0..n)
            .map(|r| match &own[r] {
                Some(list) => list.as_slice(),
                None => self.rules.get(r).map_or(&[][..], |h| h.times.as_slice()),
            })
            .collect();
        let prior = self.summary.as_ref().map_or(&[][..], |s| s.prior.as_slice());
        let matched = engine::Matched { first_event: self.first_event(as_of), times: &times, prior };
        let trait_vars = [Binding::Json(&context.lead_value), account_binding];
        let known = &mut cached.trait_rules;
        known.resize(n, None);
        let mut trait_rule = |r: usize| {
            if let Some(holds) = known[r] {
                return holds;
            }
            let condition = model.rules[r].kind.condition();
            let holds = condition.matches(&Activation { vars: &trait_vars, as_of });
            if !condition.reads_clock() {
                known[r] = Some(holds);
            }
            holds
        };
        let score =
            engine::finish(model, &self.id, &self.outcomes, &cached.context, &matched, &mut trait_rule, as_of, detail);
        self.cache = Some(cached);
        score
    }

    /// The lead's traits and account at `as_of`: from the cache while the `identify` messages,
    /// the `group` message naming the account and the account's own messages are the same.
    fn context(&self, cache: Option<Cached>, existing: &Existing<'_>, accounts: &AccountBook, as_of: Millis) -> Cached {
        let mut identifies = Vec::new();
        let mut group = None;
        for (p, entry) in self.profile.iter().enumerate() {
            if !existing.contains(entry.event) {
                continue;
            }
            match entry.kind {
                Kind::Identify => identifies.push(p),
                _ if entry.group_id.is_some() => group = Some(p),
                _ => {}
            }
        }
        let profile = (identifies, group);
        let folded = self.summary.as_ref().and_then(|s| s.group_id.as_deref());
        let group_id = group.and_then(|p| self.profile[p].group_id.as_deref()).or(folded);
        if let Some(mut c) = cache.filter(|c| c.profile == profile) {
            let version = c.context.account_id.as_deref().map_or(0, |a| accounts.version_at(a, as_of));
            if version != c.version {
                let traits = std::mem::take(&mut c.context.traits);
                c.context = engine::LeadContext::new(&self.id, traits, group_id.map(str::to_owned), accounts, as_of);
                c.version = version;
                c.trait_rules.clear();
            }
            return c;
        }
        let mut traits = self.traits.clone();
        for &p in &profile.0 {
            let update = self.profile[p].traits.as_deref().and_then(|t| serde_json::from_str(t).ok());
            if let Some(update) = update {
                engine::merge_traits(&mut traits, &update);
            }
        }
        let context = engine::LeadContext::new(&self.id, traits, group_id.map(str::to_owned), accounts, as_of);
        let version = context.account_id.as_deref().map_or(0, |a| accounts.version_at(a, as_of));
        Cached { profile, version, context, trait_rules: Vec::new() }
    }

    /// The earliest instant after `as_of` at which the score can change without a new event, or
    /// `None` if it never will (SPEC §6.3). Discrete changes (windows, inactivity, future-dated
    /// events and outcomes) are returned exactly; a stage or grade change caused by decay or by a
    /// `days_since` condition is found to the millisecond by bisection; otherwise a decaying
    /// lead is due again after [`REFRESH`]. `now` is the score at `as_of`.
    pub fn next_change(
        &mut self,
        model: &CheckedModel,
        accounts: &AccountBook,
        as_of: Millis,
        now: &Score,
    ) -> Option<Millis> {
        let discrete = self.next_boundary(model, now, as_of);
        let reads_clock = model.rules.iter().any(|r| r.kind.condition().reads_clock())
            || model.stages.iter().any(|s| s.when.reads_clock());
        let decaying = || model.rules.iter().filter(|r| matches!(r.kind, RuleKind::Event { half_life: Some(_), .. }));
        let any_event =
            self.summary.as_ref().is_some_and(|s| s.first.is_some()) || self.events.iter().any(|e| e.at <= as_of);
        let continuous = reads_clock || (decaying().next().is_some() && any_event);
        let horizon = match (discrete, continuous) {
            (None, false) => return None,
            (Some(b), false) => return Some(b),
            (None, true) => as_of + REFRESH.as_millis(),
            (Some(b), true) => b.min(as_of + REFRESH.as_millis()),
        };
        let key = |s: &Score| (s.stage.clone(), s.grade.clone());
        let now_key = key(now);
        let mut differs = |t: Millis| key(&self.score(model, accounts, t, engine::Detail::Stage)) != now_key;
        // Between `as_of` and the horizon nothing happens discretely, so each rule's decay is
        // monotone and, when every decaying rule has the same sign, so is the total: its end
        // says whether a threshold is crossed. Rules of both signs (and clock-reading conditions)
        // get more samples.
        let mixed = reads_clock || (decaying().any(|r| r.points > 0.0) && decaying().any(|r| r.points < 0.0));
        let steps = if mixed { 2 } else { 1 };
        let mut low = as_of;
        for step in 1..=steps {
            let t = as_of + (horizon - as_of) * step / steps;
            if differs(t) {
                let mut high = t;
                while high - low > 1 {
                    let mid = low + (high - low) / 2;
                    if differs(mid) {
                        high = mid;
                    } else {
                        low = mid;
                    }
                }
                return Some(high);
            }
            low = t;
        }
        Some(horizon)
    }

    /// The earliest instant after `as_of` at which some event, window or period starts or ends.
    fn next_boundary(&self, model: &CheckedModel, now: &Score, as_of: Millis) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut consider = |t: Millis| {
            if t > as_of && next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        for event in &self.events {
            consider(event.at);
            consider(event.visible_at);
        }
        for outcome in &self.outcomes {
            consider(outcome.at);
        }
        let exists = self.existing(as_of);
        let mut existing: Vec<Millis> =
            (0..self.events.len()).filter(|&e| exists.contains(e)).map(|e| self.events[e].at).collect();
        existing.sort_unstable();
        if let Some(summary) = self.summary.as_ref().filter(|s| !s.recent.is_empty()) {
            existing.splice(0..0, summary.recent.iter().copied());
        }
        let folded = self.summary.as_ref().and_then(|s| s.first);
        let anchor = engine::created_at(&now.traits).or_else(|| folded.or_else(|| existing.first().copied()));
        for rule in &model.rules {
            let period = match &rule.kind {
                RuleKind::Event { within: Some(w), .. } | RuleKind::Count { within: w, .. } => *w,
                RuleKind::Inactivity { period, .. } => {
                    if let Some(anchor) = anchor {
                        consider(anchor.saturating_add(period.as_millis()));
                    }
                    *period
                }
                RuleKind::Event { within: None, .. } | RuleKind::Trait { .. } => continue,
            };
            // The earliest existing event whose window ends after `as_of`.
            let p = period.as_millis();
            let first = existing.partition_point(|&t| t.saturating_add(p) <= as_of);
            if let Some(&t) = existing.get(first) {
                consider(t.saturating_add(p));
            }
        }
        next
    }
}

/// A list indexed by rule as the pairs `(rule, entry)` of its entries that are not empty (most
/// rules of a model keep nothing in a summary: trait rules, rules the lead never matched).
mod sparse {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// An entry that keeps nothing (and is left out).
    pub(super) trait Blank {
        fn is_blank(&self) -> bool;
    }

    impl<T> Blank for Vec<T> {
        fn is_blank(&self) -> bool {
            self.is_empty()
        }
    }

    impl Blank for crate::engine::Prior {
        fn is_blank(&self) -> bool {
            *self == Self::default()
        }
    }

    pub(super) fn serialize<T: Serialize + Blank, S: Serializer>(list: &[T], serializer: S) -> Result<S::Ok, S::Error> {
        // Collected first: with its length known, MessagePack writes the array's length ahead
        // of it instead of buffering the entries.
        let entries: Vec<(usize, &T)> = list.iter().enumerate().filter(|(_, entry)| !entry.is_blank()).collect();
        serializer.collect_seq(entries)
    }

    pub(super) fn deserialize<'de, T: Deserialize<'de> + Default, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        let pairs: Vec<(usize, T)> = Vec::deserialize(deserializer)?;
        let mut list = Vec::new();
        for (index, entry) in pairs {
            // A rule index is below the model's rule count; a damaged state fails to decode here
            // rather than allocating without bound.
            if index > u16::MAX as usize {
                return Err(serde::de::Error::custom("a rule index out of range"));
            }
            if list.len() <= index {
                list.resize_with(index + 1, T::default);
            }
            list[index] = entry;
        }
        Ok(list)
    }
}

/// A map keyed by [`MessageKey`] as a list of pairs sorted by key (JSON objects need text keys;
/// the order makes the serialised state the same for the same state).
mod pairs {
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::MessageKey;

    pub(super) fn serialize<V: Serialize, S: Serializer, H>(
        map: &HashMap<MessageKey, V, H>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<(&MessageKey, &V)> = map.iter().collect();
        pairs.sort_unstable_by_key(|(key, _)| **key);
        serializer.collect_seq(pairs)
    }

    pub(super) fn deserialize<'de, V: Deserialize<'de>, D: Deserializer<'de>, H: BuildHasher + Default>(
        deserializer: D,
    ) -> Result<HashMap<MessageKey, V, H>, D::Error> {
        let pairs: Vec<(MessageKey, V)> = Vec::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}
