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
//! A lead's compact events are folded into a [`LeadState`] ([`fold`]), which scores the lead at
//! any instant exactly as [`crate::engine::evaluate_reference`] scores it from whole messages
//! (the same per-rule arithmetic, shared); property tests hold the two equal.

mod fold;
mod read;
mod scan;

pub use fold::LeadState;

pub(crate) use read::ENGINE_FIELDS;
pub use read::{FieldTree, FieldValue, ReadError, read_fields, read_message, read_message_serde};

use std::borrow::Cow;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cel::{Activation, Binding, FlatFields, Program};
use crate::engine::Event;
use crate::model::{CheckedModel, Rule, RuleIndex, RuleKind};
use crate::time::Millis;

/// What a message's `type` means to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// A set of rule indices: 64 inline, more on the heap (models rarely have more).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    low: u64,
    more: Option<Box<[u64]>>,
}

impl RuleSet {
    pub fn insert(&mut self, rule: usize) {
        if rule < 64 {
            self.low |= 1 << rule;
        } else {
            let word = rule / 64 - 1;
            let more = self.more.get_or_insert_with(|| vec![0; word + 1].into_boxed_slice());
            if more.len() <= word {
                let mut grown = more.to_vec();
                grown.resize(word + 1, 0);
                *more = grown.into_boxed_slice();
            }
            more[word] |= 1 << (rule % 64);
        }
    }

    pub fn contains(&self, rule: usize) -> bool {
        if rule < 64 {
            self.low & (1 << rule) != 0
        } else {
            let word = rule / 64 - 1;
            self.more.as_ref().and_then(|m| m.get(word)).is_some_and(|w| w & (1 << (rule % 64)) != 0)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.more.as_ref().is_none_or(|m| m.iter().all(|w| *w == 0))
    }

    /// The rules in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let low = Bits(self.low).map(|b| b as usize);
        let more = self.more.iter().flat_map(|words| {
            words.iter().enumerate().flat_map(|(w, &bits)| Bits(bits).map(move |b| 64 * (w + 1) + b as usize))
        });
        low.chain(more)
    }
}

/// The set bits of a word, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

/// How the plan decides one rule.
#[derive(Debug, Clone)]
struct RulePlan {
    /// The `on` / `inactive` condition flattened over `event` (`None` for trait rules).
    condition: Option<Program>,
    /// Decided at scoring time: the condition reads the lead, the account or the clock.
    deferred: bool,
    /// Rules with the same condition text share one evaluation per message (learned models
    /// repeat a condition with different windows): the index of the first such rule.
    same_as: usize,
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
    /// `fields` as a tree, for reading messages in one pass.
    tree: FieldTree,
    /// Every compact event keeps the values of its slots ([`Plan::keeping`]).
    keep: bool,
}

impl Plan {
    pub fn build(rules: &[Rule], ignore: Option<&Program>) -> Plan {
        Plan::build_all(&[(rules, ignore)]).pop().unwrap_or_default()
    }

    /// Plans for several models over one set of slot paths: a message read once with any of
    /// them ([`read_message`]) can be compacted for each model.
    pub fn build_all(models: &[(&[Rule], Option<&Program>)]) -> Vec<Plan> {
        let mut fields = FlatFields::default();
        let parts: Vec<(Vec<RulePlan>, Option<Program>)> = models
            .iter()
            .map(|(rules, ignore)| {
                let plans = rules
                    .iter()
                    .enumerate()
                    .map(|(i, rule)| match &rule.kind {
                        RuleKind::Trait { .. } => RulePlan { condition: None, deferred: false, same_as: i },
                        kind => {
                            let condition = kind.condition();
                            let deferred = condition.reads_var(1) || condition.reads_var(2) || condition.reads_clock();
                            let same_as = rules[..i]
                                .iter()
                                .position(|r| {
                                    !matches!(r.kind, RuleKind::Trait { .. })
                                        && r.kind.condition().source() == condition.source()
                                })
                                .unwrap_or(i);
                            RulePlan { condition: Some(condition.flatten(0, &mut fields)), deferred, same_as }
                        }
                    })
                    .collect();
                (plans, ignore.map(|p| p.flatten(0, &mut fields)))
            })
            .collect();
        let path_slot = fields.paths().iter().position(|p| p == &["properties", "path"]);
        let tree = FieldTree::build(&fields);
        parts
            .into_iter()
            .map(|(rules, ignore)| Plan {
                fields: fields.clone(),
                rules,
                ignore,
                path_slot,
                tree: tree.clone(),
                keep: false,
            })
            .collect()
    }

    /// A plan with no rules that keeps the values at `paths` of every message (on its compact
    /// event, as [`Deferred`] values no rule is a candidate for), for readers of events that
    /// are not scoring them: `train` counts events by name and page path
    /// ([`LeadState::kept`]).
    pub fn keeping(paths: &[&[&str]]) -> Plan {
        let mut fields = FlatFields::default();
        for path in paths {
            fields.slot(&path.iter().map(|key| (*key).to_owned()).collect::<Vec<_>>(), false);
        }
        let tree = FieldTree::build(&fields);
        Plan { fields, rules: Vec::new(), ignore: None, path_slot: None, tree, keep: true }
    }
}

/// Rebuilds the models' plans over one set of slot paths, so a message read once serves them all
/// (a backtest of several models reads the events once).
pub fn share_plans(models: &mut [CheckedModel]) {
    let plans = Plan::build_all(&models.iter().map(|m| (&m.rules[..], m.ignore.as_ref())).collect::<Vec<_>>());
    for (model, plan) in models.iter_mut().zip(plans) {
        model.plan = plan;
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deferred {
    pub candidates: RuleSet,
    pub slots: Box<[Option<Value>]>,
}

/// A message's `messageId` as compact events keep it: a 128-bit hash (two different ids of one
/// lead collide with odds of about 2^-128 per pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageKey {
    high: std::num::NonZeroU64,
    low: u64,
}

impl MessageKey {
    pub fn of(message_id: &str) -> MessageKey {
        use std::hash::BuildHasher;
        let high = foldhash::quality::FixedState::with_seed(0x6d65_7373_6167_6549).hash_one(message_id);
        let low = foldhash::quality::FixedState::with_seed(0x6b65_7920_6c6f_7721).hash_one(message_id);
        MessageKey { high: std::num::NonZeroU64::new(high).unwrap_or(std::num::NonZeroU64::MIN), low }
    }
}

/// One message as the engine keeps it: 72 bytes, and a box for what few messages carry (the
/// traits and id of `identify` and `group` messages, the values of rules decided when scored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactEvent {
    pub at: Millis,
    /// From when the event belongs to its lead (later than `at` for a stitched anonymous event).
    pub visible_at: Millis,
    pub tie: u64,
    pub id: Option<MessageKey>,
    /// The rules decided when the message was read that it matches.
    pub matched: RuleSet,
    pub kind: Kind,
    pub extra: Option<Box<Extra>>,
}

impl CompactEvent {
    /// What is left where an event was moved out of a list (allocates nothing).
    pub fn taken() -> CompactEvent {
        CompactEvent {
            at: 0,
            visible_at: 0,
            tie: 0,
            id: None,
            matched: RuleSet::default(),
            kind: Kind::Other,
            extra: None,
        }
    }
}

/// What only some compact events carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    /// `identify` and `group`: the `messageId`, which orders their traits among messages of the
    /// same instant.
    pub message_id: Option<Box<str>>,
    /// `identify` and `group` traits, as JSON text (a fraction of a parsed map's size; read when
    /// the lead is scored).
    pub traits: Option<Box<str>>,
    /// A `group` message's account.
    pub group_id: Option<Box<str>>,
    pub deferred: Option<Deferred>,
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
    pub fn compact(&self, index: &RuleIndex, message: &Message<'_>) -> CompactEvent {
        let mut matched = RuleSet::default();
        let mut candidates = RuleSet::default();
        {
            let vars = [Binding::Flat(&message.slots), Binding::Absent, Binding::Absent];
            let activation = Activation { vars: &vars, as_of: message.at };
            let path =
                self.path_slot.and_then(|s| message.slots.get(s)).and_then(|v| v.as_ref()).and_then(Value::as_str);
            // Each distinct condition is evaluated once per message: 0 not yet, 1 false, 2 true.
            let mut known = [0u8; 128];
            let mut known_more: Vec<u8> = Vec::new();
            index.for_each_candidate_of(Some(&message.kind), message.event.as_deref(), path, |r, exact| {
                let Some(plan) = self.rules.get(r) else { return };
                if plan.deferred {
                    candidates.insert(r);
                    return;
                }
                if exact {
                    matched.insert(r);
                    return;
                }
                let slot = if plan.same_as < 128 {
                    &mut known[plan.same_as]
                } else {
                    if known_more.len() < self.rules.len() {
                        known_more.resize(self.rules.len(), 0);
                    }
                    &mut known_more[plan.same_as]
                };
                if *slot == 0 {
                    let holds = self
                        .rules
                        .get(plan.same_as)
                        .and_then(|p| p.condition.as_ref())
                        .is_some_and(|c| c.matches(&activation));
                    *slot = if holds { 2 } else { 1 };
                }
                if *slot == 2 {
                    matched.insert(r);
                }
            });
        }
        let kind = Kind::of(&message.kind);
        let deferred = (!candidates.is_empty() || self.keep)
            .then(|| Deferred { candidates, slots: message.slots.clone().into_boxed_slice() });
        let keeps_traits = matches!(kind, Kind::Identify | Kind::Group);
        let extra = (keeps_traits || deferred.is_some()).then(|| {
            Box::new(Extra {
                message_id: message.message_id.as_deref().filter(|_| keeps_traits).map(Box::from),
                traits: message
                    .traits
                    .as_ref()
                    .filter(|_| keeps_traits)
                    .and_then(|t| serde_json::to_string(t).ok())
                    .map(String::into_boxed_str),
                group_id: message.group_id.as_deref().filter(|_| kind == Kind::Group).map(Box::from),
                deferred,
            })
        });
        CompactEvent {
            at: message.at,
            visible_at: message.at,
            tie: message.tie,
            id: message.message_id.as_deref().map(MessageKey::of),
            matched,
            kind,
            extra,
        }
    }

    /// The top-level fields of a message that reading it for this plan looks at (the engine's own
    /// and the first key of every slot path), or `None` if a condition reads `event` whole.
    pub fn top_level_fields(&self) -> Option<Vec<String>> {
        if self.tree.reads_whole() {
            return None;
        }
        let mut fields: Vec<String> = ENGINE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        for path in self.fields.paths() {
            if let Some(first) = path.first()
                && !fields.contains(first)
            {
                fields.push(first.clone());
            }
        }
        Some(fields)
    }
}

impl CheckedModel {
    /// The compact event of a message read for this model (see [`Plan::ignores`] first), visible
    /// from its own time.
    pub fn compact(&self, message: &Message<'_>) -> CompactEvent {
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
        let mut compact = model.plan.compact(&model.index, &message);
        compact.visible_at = event.visible_at;
        Some(compact)
    }
}

/// A 64-bit hash of bytes, the same in every run (the tie-break of messages read from files).
pub fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6c65_6164_7363_6f72).hash_one(bytes)
}
