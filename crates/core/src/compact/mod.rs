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
mod scan;

pub use read::{FieldTree, FieldValue, ReadError, read_fields, read_message, read_message_serde};
pub use scan::check_json;

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

/// A set of rule indices: 64 inline, more on the heap (models rarely have more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Whether any rule is decided at scoring time.
    any_deferred: bool,
    /// `fields` as a tree, for reading messages in one pass.
    tree: FieldTree,
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
            .map(|(rules, ignore)| {
                let any_deferred = rules.iter().any(|r| r.deferred);
                Plan { fields: fields.clone(), rules, ignore, path_slot, any_deferred, tree: tree.clone() }
            })
            .collect()
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
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub candidates: RuleSet,
    pub slots: Box<[Option<Value>]>,
}

/// A message's `messageId` as compact events keep it: a 128-bit hash (two different ids of one
/// lead collide with odds of about 2^-128 per pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Debug, Clone, PartialEq)]
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

/// What only some compact events carry.
#[derive(Debug, Clone, Default, PartialEq)]
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

impl CompactEvent {
    /// The traits of an `identify` or `group` message.
    pub fn traits(&self) -> Option<Map<String, Value>> {
        let text = self.extra.as_ref()?.traits.as_deref()?;
        serde_json::from_str(text).ok()
    }

    pub fn group_id(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|x| x.group_id.as_deref())
    }

    pub fn deferred(&self) -> Option<&Deferred> {
        self.extra.as_ref().and_then(|x| x.deferred.as_ref())
    }

    fn message_id(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|x| x.message_id.as_deref())
    }
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
            index.for_each_candidate_of(Some(&message.kind), message.event.as_deref(), path, |r| {
                let Some(plan) = self.rules.get(r) else { return };
                if plan.deferred {
                    candidates.insert(r);
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
        let deferred =
            (!candidates.is_empty()).then(|| Deferred { candidates, slots: message.slots.clone().into_boxed_slice() });
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
        let mut fields: Vec<String> = read::ENGINE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        for path in self.fields.paths() {
            if let Some(first) = path.first()
                && !fields.contains(first)
            {
                fields.push(first.clone());
            }
        }
        Some(fields)
    }

    /// Whether some rule is decided at scoring time (its events keep their values).
    pub fn has_deferred_rules(&self) -> bool {
        self.any_deferred
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

    /// The order events are kept in: by time, then id, then content. Among events of the same
    /// time, that puts two with the same id in one order whatever the input order; the order of
    /// `identify` and `group` messages, which matters to the traits, is by `messageId` text (see
    /// [`order_traits_by_id`]).
    fn order(&self, other: &CompactEvent) -> std::cmp::Ordering {
        self.at.cmp(&other.at).then_with(|| self.id.cmp(&other.id)).then_with(|| self.tie.cmp(&other.tie))
    }
}

/// Among events of the same time (sorted by [`CompactEvent::order`]), puts the `identify` and
/// `group` messages in the order of their `messageId` text, then content, in the places they
/// hold: the order SPEC §2.2 merges their traits in.
fn order_traits_by_id(events: &mut [CompactEvent]) {
    let mut start = 0;
    while start < events.len() {
        let at = events[start].at;
        let end = start + events[start..].iter().take_while(|e| e.at == at).count();
        let run = &mut events[start..end];
        let places: Vec<usize> =
            (0..run.len()).filter(|&i| matches!(run[i].kind, Kind::Identify | Kind::Group)).collect();
        if places.len() > 1 {
            let mut sorted: Vec<CompactEvent> = places.iter().map(|&i| run[i].clone()).collect();
            sorted.sort_by(|a, b| a.message_id().cmp(&b.message_id()).then_with(|| a.tie.cmp(&b.tie)));
            for (&i, event) in places.iter().zip(sorted) {
                run[i] = event;
            }
        }
        start = end;
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
        events.sort_unstable_by(CompactEvent::order);
        if events.windows(2).any(|w| w[0].at == w[1].at) {
            order_traits_by_id(&mut events);
        }
        let mut ids: HashSet<MessageKey, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(events.len(), Default::default());
        let duplicates = !events.iter().filter_map(|e| e.id).all(|id| ids.insert(id));
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
        self.existing(as_of).into_iter().map(|i| &self.events[i]).collect()
    }

    /// [`CompactHistory::events_at`] as positions in [`CompactHistory::events`].
    fn existing(&self, as_of: Millis) -> Vec<usize> {
        let existing =
            self.events.iter().enumerate().take_while(|(_, e)| e.at <= as_of).filter(|(_, e)| e.visible_at <= as_of);
        if !self.duplicates {
            return existing.map(|(i, _)| i).collect();
        }
        let mut seen: HashSet<MessageKey> = HashSet::new();
        existing.filter(|(_, e)| e.id.is_none_or(|id| seen.insert(id))).map(|(i, _)| i).collect()
    }
}

/// The score of a lead from its compact events (SPEC §2.2): the same as
/// [`crate::engine::evaluate_reference`] on the messages they came from.
pub fn evaluate_compact(model: &CheckedModel, lead: &CompactHistory, accounts: &AccountBook, as_of: Millis) -> Score {
    Scorer::new(model, lead, accounts).score_at(as_of)
}

/// Scores one lead at many instants (a backtest's checkpoints, a chart): the lead's traits, its
/// account and the trait rules' results are kept from one instant to the next while nothing they
/// depend on changed (the identify and group messages that exist, the account's `group`
/// messages); conditions on events were decided when the messages were read.
pub struct Scorer<'a> {
    model: &'a CheckedModel,
    lead: &'a CompactHistory,
    accounts: &'a AccountBook,
    cache: Option<Cached>,
    /// Per rule decided when read: the positions of the events it matched, ascending.
    matched: Vec<Vec<usize>>,
}

/// What the last instant computed that the next may reuse.
struct Cached {
    key: (Vec<usize>, Option<usize>, usize),
    context: engine::LeadContext,
    /// Per rule: whether a trait rule held (`None`: not a trait rule, or one that reads the clock).
    traits: Vec<Option<bool>>,
}

impl<'a> Scorer<'a> {
    pub fn new(model: &'a CheckedModel, lead: &'a CompactHistory, accounts: &'a AccountBook) -> Scorer<'a> {
        let mut matched: Vec<Vec<usize>> = vec![Vec::new(); model.rules.len()];
        for (i, event) in lead.events.iter().enumerate() {
            for r in event.matched.iter() {
                if let Some(list) = matched.get_mut(r) {
                    list.push(i);
                }
            }
        }
        Scorer { model, lead, accounts, cache: None, matched }
    }

    /// The lead's score at `as_of`.
    pub fn score_at(&mut self, as_of: Millis) -> Score {
        self.score(as_of, engine::Detail::Full)
    }

    /// The lead's stage at `as_of` (the score without contributions or traits: cheaper, for
    /// checkpoints).
    pub fn stage_at(&mut self, as_of: Millis) -> String {
        self.score(as_of, engine::Detail::Stage).stage
    }

    fn score(&mut self, as_of: Millis, detail: engine::Detail) -> Score {
        let (model, lead, accounts) = (self.model, self.lead, self.accounts);
        let positions = lead.existing(as_of);
        let events: Vec<&CompactEvent> = positions.iter().map(|&i| &lead.events[i]).collect();
        // What the traits and the account depend on: the identify messages that exist, the last
        // group message, and the account's group messages up to `as_of`.
        let identifies: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| e.kind == Kind::Identify).map(|(i, _)| i).collect();
        let group = events.iter().rposition(|e| e.kind == Kind::Group && e.group_id().is_some());
        let group_id = group.and_then(|g| events[g].group_id());
        let account = group_id.map(str::to_owned).or_else(|| account_trait(&lead.traits, &events, &identifies));
        let version = account.as_deref().map_or(0, |a| accounts.version_at(a, as_of));
        let key = (identifies.iter().map(|&i| positions[i]).collect(), group.map(|g| positions[g]), version);
        if self.cache.as_ref().is_some_and(|c| c.key != key) {
            self.cache = None;
        }
        let cached = self.cache.get_or_insert_with(|| {
            let mut traits = lead.traits.clone();
            for &i in &identifies {
                if let Some(update) = events[i].traits() {
                    engine::merge_traits(&mut traits, &update);
                }
            }
            let context = engine::LeadContext::new(&lead.id, traits, group_id.map(str::to_owned), accounts, as_of);
            Cached { key, context, traits: vec![None; model.rules.len()] }
        });
        let context = &cached.context;
        let account_binding = context.account_binding();
        let mut exists = vec![false; lead.events.len()];
        for &i in &positions {
            exists[i] = true;
        }
        let mut times: Vec<Vec<Millis>> = self
            .matched
            .iter()
            .map(|list| list.iter().filter(|&&i| exists[i]).map(|&i| lead.events[i].at).collect())
            .collect();
        for event in events.iter() {
            let Some(deferred) = event.deferred() else { continue };
            let vars = [Binding::Flat(&deferred.slots), Binding::Json(&context.lead_value), account_binding];
            let activation = Activation { vars: &vars, as_of };
            for r in deferred.candidates.iter() {
                let holds =
                    model.plan.rules.get(r).and_then(|p| p.condition.as_ref()).is_some_and(|c| c.matches(&activation));
                if holds && let Some(list) = times.get_mut(r) {
                    list.push(event.at);
                }
            }
        }
        let matched = engine::Matched { first_event: events.first().map(|e| e.at), times: &times };
        let trait_vars = [Binding::Json(&context.lead_value), account_binding];
        let known = &mut cached.traits;
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
        engine::finish(model, &lead.id, &lead.outcomes, context, &matched, &mut trait_rule, as_of, detail)
    }
}

/// The `account` trait after the identify messages, when no group message names the account.
fn account_trait(base: &Map<String, Value>, events: &[&CompactEvent], identifies: &[usize]) -> Option<String> {
    let mut value = base.get("account").cloned();
    for &i in identifies {
        if let Some(update) = events[i].traits().and_then(|mut t| t.remove("account")) {
            value = (!update.is_null()).then_some(update);
        }
    }
    match value? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A 64-bit hash of bytes, the same in every run (the tie-break of messages read from files).
pub fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6c65_6164_7363_6f72).hash_one(bytes)
}
