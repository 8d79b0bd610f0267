//! Compact events: each message read once, through the model, into what scoring needs and
//! nothing else.
//!
//! A [`Plan`] is built with the checked model: every `on` / `inactive` condition and `[events]
//! ignore` is flattened over the field paths of `event` it reads ([`FlatFields`]), so a message
//! needs no JSON tree, only those values. When a message is read ([`Plan::compact`]), the ignore
//! condition runs, and every rule whose condition reads only the event is decided there and then:
//! a [`CompactEvent`] keeps its time, id, the set of rules it matched, and, for `identify` and
//! `group`, the traits. Rules whose condition also reads the lead's traits, the account or the
//! clock (`days_since`) are decided when the lead is scored, against the traits as of that
//! instant: their candidate events keep the extracted values ([`Deferred`]).
//!
//! [`evaluate_compact`] then scores a lead from its compact events exactly as
//! [`crate::engine::evaluate_reference`] scores it from whole messages (the same per-rule
//! arithmetic, shared); property tests hold the two equal.

mod read;

pub use read::{FieldTree, ReadError, read_message};

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::Hash;

use serde_json::{Map, Value};

use crate::cel::{Activation, Binding, FlatFields, Program};
use crate::engine::{self, AccountBook, Event, LeadHistory, Outcome, Score};
use crate::model::{CheckedModel, Rule, RuleIndex, RuleKind};
use crate::time::Millis;

/// What a message's `type` means to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Track,
    Page,
    Screen,
    Identify,
    Group,
    Alias,
    Other,
}

impl Kind {
    pub fn of(text: &str) -> Kind {
        match text {
            "track" => Kind::Track,
            "page" => Kind::Page,
            "screen" => Kind::Screen,
            "identify" => Kind::Identify,
            "group" => Kind::Group,
            "alias" => Kind::Alias,
            _ => Kind::Other,
        }
    }
}

/// A set of rule indices: 128 inline, more on the heap (models rarely have more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    low: u128,
    more: Option<Box<[u64]>>,
}

impl RuleSet {
    pub fn insert(&mut self, rule: usize) {
        if rule < 128 {
            self.low |= 1 << rule;
        } else {
            let word = (rule - 128) / 64;
            let more = self.more.get_or_insert_with(|| vec![0; word + 1].into_boxed_slice());
            if more.len() <= word {
                let mut grown = more.to_vec();
                grown.resize(word + 1, 0);
                *more = grown.into_boxed_slice();
            }
            more[word] |= 1 << ((rule - 128) % 64);
        }
    }

    pub fn contains(&self, rule: usize) -> bool {
        if rule < 128 {
            self.low & (1 << rule) != 0
        } else {
            let word = (rule - 128) / 64;
            self.more.as_ref().and_then(|m| m.get(word)).is_some_and(|w| w & (1 << ((rule - 128) % 64)) != 0)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.more.as_ref().is_none_or(|m| m.iter().all(|w| *w == 0))
    }

    /// The rules in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let low = (0..128).filter(move |r| self.low & (1 << r) != 0);
        let more = self.more.iter().flat_map(|words| {
            words
                .iter()
                .enumerate()
                .flat_map(|(w, bits)| (0..64).filter(move |b| bits & (1 << b) != 0).map(move |b| 128 + w * 64 + b))
        });
        low.chain(more)
    }
}

/// How the plan decides one rule.
#[derive(Debug, Clone)]
struct RulePlan {
    /// The `on` / `inactive` condition flattened over `event` (`None` for trait rules).
    condition: Option<Program>,
    /// Decided at scoring time: the condition reads the lead, the account or the clock.
    deferred: bool,
}

/// What a model needs to read messages into compact events. Built once, with the model.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The field paths of `event` that conditions read, one slot each.
    pub fields: FlatFields,
    rules: Vec<RulePlan>,
    ignore: Option<Program>,
    /// The slot of `properties.path`, which the rule index looks at, if conditions read it.
    path_slot: Option<usize>,
    /// Whether any rule is decided at scoring time.
    any_deferred: bool,
    /// `fields` as a tree, for reading messages in one pass.
    tree: FieldTree,
}

impl Plan {
    pub fn build(rules: &[Rule], ignore: Option<&Program>) -> Plan {
        let mut fields = FlatFields::default();
        let rules: Vec<RulePlan> = rules
            .iter()
            .map(|rule| match &rule.kind {
                RuleKind::Trait { .. } => RulePlan { condition: None, deferred: false },
                kind => {
                    let condition = kind.condition();
                    let deferred = condition.reads_var(1) || condition.reads_var(2) || condition.reads_clock();
                    RulePlan { condition: Some(condition.flatten(0, &mut fields)), deferred }
                }
            })
            .collect();
        let ignore = ignore.map(|p| p.flatten(0, &mut fields));
        let path_slot = fields.paths().iter().position(|p| p == &["properties", "path"]);
        let any_deferred = rules.iter().any(|r| r.deferred);
        let tree = FieldTree::build(&fields);
        Plan { fields, rules, ignore, path_slot, any_deferred, tree }
    }
}

/// A message as read: the fields the engine itself needs, and the slots conditions read.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub kind: Cow<'a, str>,
    pub event: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub anonymous_id: Option<Cow<'a, str>>,
    pub previous_id: Option<Cow<'a, str>>,
    pub group_id: Option<Cow<'a, str>>,
    pub message_id: Option<Cow<'a, str>>,
    /// The resolved event time (SPEC §6.1).
    pub at: Millis,
    /// `traits`, when it is an object (identify and group use it).
    pub traits: Option<Map<String, Value>>,
    /// The values at [`Plan::fields`]' paths.
    pub slots: Vec<Option<Value>>,
    /// A hash of the message's content: the last tie-break of the event order, so that two
    /// different messages with the same time and id are ordered the same whatever the input order.
    pub tie: u64,
}

fn id_of(value: Option<&Value>) -> Option<Cow<'_, str>> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

impl<'a> Message<'a> {
    /// The message of an [`Event`] (whose body is the message, possibly projected).
    pub fn of_event(plan: &Plan, event: &'a Event) -> Message<'a> {
        let body = &event.body;
        let tie = content_hash(body.to_string().as_bytes());
        Message {
            kind: Cow::Borrowed(event.kind()),
            event: body.get("event").and_then(Value::as_str).map(Cow::Borrowed),
            user_id: id_of(body.get("userId")),
            anonymous_id: id_of(body.get("anonymousId")),
            previous_id: id_of(body.get("previousId")),
            group_id: id_of(body.get("groupId")),
            message_id: event.message_id.as_deref().map(Cow::Borrowed),
            at: event.at,
            traits: body.get("traits").and_then(Value::as_object).cloned(),
            slots: plan.fields.extract(body),
            tie,
        }
    }
}

/// Rules decided at scoring time, for one event: the candidates, and the values they read.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub candidates: RuleSet,
    pub slots: Box<[Option<Value>]>,
}

/// One message as the engine keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactEvent {
    pub at: Millis,
    /// From when the event belongs to its lead (later than `at` for a stitched anonymous event).
    pub visible_at: Millis,
    pub kind: Kind,
    pub message_id: Option<Box<str>>,
    pub tie: u64,
    /// The rules decided when the message was read that it matches.
    pub matched: RuleSet,
    pub deferred: Option<Box<Deferred>>,
    /// `identify` and `group` traits.
    pub traits: Option<Box<Map<String, Value>>>,
    /// A `group` message's account.
    pub group_id: Option<Box<str>>,
}

impl Plan {
    /// Whether `[events] ignore` drops this message.
    pub fn ignores(&self, message: &Message<'_>) -> bool {
        self.ignore.as_ref().is_some_and(|ignore| {
            let vars = [Binding::Flat(&message.slots)];
            ignore.matches(&Activation { vars: &vars, as_of: message.at })
        })
    }

    /// The compact event of a message (not ignored: see [`Plan::ignores`]), visible from its own
    /// time; the caller sets `visible_at` for a stitched anonymous message.
    pub fn compact(&self, index: &RuleIndex, message: Message<'_>) -> CompactEvent {
        let mut matched = RuleSet::default();
        let mut candidates = RuleSet::default();
        {
            let vars = [Binding::Flat(&message.slots), Binding::Absent, Binding::Absent];
            let activation = Activation { vars: &vars, as_of: message.at };
            let path =
                self.path_slot.and_then(|s| message.slots.get(s)).and_then(|v| v.as_ref()).and_then(Value::as_str);
            index.for_each_candidate_of(Some(&message.kind), message.event.as_deref(), path, |r| {
                let Some(plan) = self.rules.get(r) else { return };
                if plan.deferred {
                    candidates.insert(r);
                } else if plan.condition.as_ref().is_some_and(|c| c.matches(&activation)) {
                    matched.insert(r);
                }
            });
        }
        let kind = Kind::of(&message.kind);
        let deferred = (!candidates.is_empty())
            .then(|| Box::new(Deferred { candidates, slots: message.slots.into_boxed_slice() }));
        let keeps_traits = matches!(kind, Kind::Identify | Kind::Group);
        CompactEvent {
            at: message.at,
            visible_at: message.at,
            kind,
            message_id: message.message_id.map(|m| m.into_owned().into_boxed_str()),
            tie: message.tie,
            matched,
            deferred,
            traits: message.traits.filter(|_| keeps_traits).map(Box::new),
            group_id: message.group_id.filter(|_| kind == Kind::Group).map(|g| g.into_owned().into_boxed_str()),
        }
    }

    /// Whether some rule is decided at scoring time (its events keep their values).
    pub fn has_deferred_rules(&self) -> bool {
        self.any_deferred
    }
}

impl CheckedModel {
    /// The compact event of a message read for this model (see [`Plan::ignores`] first), visible
    /// from its own time.
    pub fn compact(&self, message: Message<'_>) -> CompactEvent {
        self.plan.compact(&self.index, message)
    }
}

impl CompactEvent {
    /// The compact event of an [`Event`], or `None` if the model ignores it.
    pub fn of_event(model: &CheckedModel, event: &Event, apply_ignore: bool) -> Option<CompactEvent> {
        let message = Message::of_event(&model.plan, event);
        if apply_ignore && model.plan.ignores(&message) {
            return None;
        }
        let mut compact = model.plan.compact(&model.index, message);
        compact.visible_at = event.visible_at;
        Some(compact)
    }

    fn order(&self, other: &CompactEvent) -> std::cmp::Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.message_id.cmp(&other.message_id))
            .then_with(|| self.tie.cmp(&other.tie))
    }
}

/// A lead's compact events (in time order), base traits and outcomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactHistory {
    pub id: String,
    pub traits: Map<String, Value>,
    events: Vec<CompactEvent>,
    pub outcomes: Vec<Outcome>,
    /// Whether two events share a messageId (only then does scoring deduplicate).
    duplicates: bool,
}

impl CompactHistory {
    /// The history of these events, in any order.
    pub fn new(id: String, traits: Map<String, Value>, mut events: Vec<CompactEvent>, outcomes: Vec<Outcome>) -> Self {
        events.sort_by(CompactEvent::order);
        let mut ids: HashSet<&str, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(events.len(), Default::default());
        let duplicates = !events.iter().filter_map(|e| e.message_id.as_deref()).all(|id| ids.insert(id));
        CompactHistory { id, traits, events, outcomes, duplicates }
    }

    /// The compact history of a [`LeadHistory`].
    pub fn of(model: &CheckedModel, lead: &LeadHistory) -> CompactHistory {
        let events =
            lead.events.iter().filter_map(|e| CompactEvent::of_event(model, e, !lead.ignore_applied)).collect();
        CompactHistory::new(lead.id.clone(), lead.traits.clone(), events, lead.outcomes.clone())
    }

    pub fn events(&self) -> &[CompactEvent] {
        &self.events
    }

    /// The events that exist at `as_of` (SPEC §2.2): happened and attributed by then, each
    /// messageId once (the first in time order), in time order.
    pub fn events_at(&self, as_of: Millis) -> Vec<&CompactEvent> {
        let existing = self.events.iter().take_while(|e| e.at <= as_of).filter(|e| e.visible_at <= as_of);
        if !self.duplicates {
            return existing.collect();
        }
        let mut seen: HashSet<&str> = HashSet::new();
        existing.filter(|e| e.message_id.as_deref().is_none_or(|id| seen.insert(id))).collect()
    }
}

/// The score of a lead from its compact events (SPEC §2.2): the same as
/// [`crate::engine::evaluate_reference`] on the messages they came from.
pub fn evaluate_compact(model: &CheckedModel, lead: &CompactHistory, accounts: &AccountBook, as_of: Millis) -> Score {
    let events = lead.events_at(as_of);
    let mut traits = lead.traits.clone();
    let mut group: Option<&str> = None;
    for event in &events {
        match event.kind {
            Kind::Identify => {
                if let Some(update) = &event.traits {
                    engine::merge_traits(&mut traits, update);
                }
            }
            Kind::Group => {
                if let Some(id) = &event.group_id {
                    group = Some(id);
                }
            }
            _ => {}
        }
    }
    let context = engine::LeadContext::new(&lead.id, traits, group.map(str::to_owned), accounts, as_of);
    let account_binding = context.account_binding();
    let mut matches: Vec<Vec<usize>> = vec![Vec::new(); model.rules.len()];
    for (i, event) in events.iter().enumerate() {
        for r in event.matched.iter() {
            if let Some(list) = matches.get_mut(r) {
                list.push(i);
            }
        }
        if let Some(deferred) = &event.deferred {
            let vars = [Binding::Flat(&deferred.slots), Binding::Json(&context.lead_value), account_binding];
            let activation = Activation { vars: &vars, as_of };
            for r in deferred.candidates.iter() {
                let holds =
                    model.plan.rules.get(r).and_then(|p| p.condition.as_ref()).is_some_and(|c| c.matches(&activation));
                if holds && let Some(list) = matches.get_mut(r) {
                    list.push(i);
                }
            }
        }
    }
    let times: Vec<Millis> = events.iter().map(|e| e.at).collect();
    engine::finish(model, &lead.id, &lead.outcomes, &context, &times, &matches, as_of)
}

/// A 64-bit hash of bytes, the same in every run (the tie-break of messages read from files).
pub fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6c65_6164_7363_6f72).hash_one(bytes)
}
