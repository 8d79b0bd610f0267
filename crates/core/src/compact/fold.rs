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
        self.profile.iter().filter_map(|p| p.group_id.as_deref())
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
        match (plain, stitched) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        let times: Vec<&[Millis]> = (0..n)
            .map(|r| match &own[r] {
                Some(list) => list.as_slice(),
                None => self.rules.get(r).map_or(&[][..], |h| h.times.as_slice()),
            })
            .collect();
        let matched = engine::Matched { first_event: self.first_event(as_of), times: &times };
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
        let group_id = group.and_then(|p| self.profile[p].group_id.as_deref());
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
        let continuous = reads_clock || (decaying().next().is_some() && self.events.iter().any(|e| e.at <= as_of));
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
        let anchor = engine::created_at(&now.traits).or_else(|| existing.first().copied());
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
