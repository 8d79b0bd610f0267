//! A lead as scoring sees it: its history ([`LeadHistory`]: traits, events, outcomes), the
//! accounts its `group` messages name ([`AccountBook`]), and what scoring gives back ([`Score`],
//! [`Contribution`], [`AccountScore`]).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::event::Event;
use crate::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OutcomeKind {
    Converted,
    Won,
    Lost,
    Disqualified,
}

impl OutcomeKind {
    pub fn parse(text: &str) -> Option<OutcomeKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "converted" => Some(OutcomeKind::Converted),
            "won" => Some(OutcomeKind::Won),
            "lost" => Some(OutcomeKind::Lost),
            "disqualified" => Some(OutcomeKind::Disqualified),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Converted => "converted",
            OutcomeKind::Won => "won",
            OutcomeKind::Lost => "lost",
            OutcomeKind::Disqualified => "disqualified",
        }
    }

    /// The stage an outcome puts a lead in.
    pub fn stage(self) -> &'static str {
        match self {
            OutcomeKind::Converted | OutcomeKind::Won => "customer",
            OutcomeKind::Lost => "lost",
            OutcomeKind::Disqualified => "disqualified",
        }
    }

    pub fn is_conversion(self) -> bool {
        matches!(self, OutcomeKind::Converted | OutcomeKind::Won)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub at: Millis,
}

/// Everything known about one lead: what `evaluate` needs besides the model and the accounts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadHistory {
    pub id: String,
    /// Base traits (e.g. from the leads file); `identify` events are merged over them.
    pub traits: Map<String, Value>,
    pub events: Vec<Event>,
    pub outcomes: Vec<Outcome>,
    /// The caller already dropped the events the model's `[events] ignore` matches (the batch
    /// reader does, as it loads them), so `evaluate` need not test them again.
    pub ignore_applied: bool,
}

/// Account (company) traits over time, from `group` messages of every lead.
///
/// Each account keeps, per trait, the values `group` messages gave it over time, so its traits
/// at any instant take one binary search per trait, however many `group` messages it received
/// (a popular account gets one from each of its leads).
#[derive(Debug, Clone, Default)]
pub struct AccountBook {
    accounts: HashMap<String, AccountHistory>,
}

#[derive(Debug, Clone, Default)]
struct AccountHistory {
    /// The time of every `group` message, ascending.
    times: Vec<Millis>,
    /// Per trait, the values messages gave it (`None`: an explicit `null`, which removes it), by
    /// time; messages at the same time in the order they were recorded.
    traits: HashMap<String, Vec<(Millis, Option<Value>)>>,
}

impl AccountBook {
    /// Records a `group` message's traits for `group_id` at `at`.
    pub fn record(&mut self, group_id: &str, at: Millis, traits: Map<String, Value>) {
        let account = match self.accounts.get_mut(group_id) {
            Some(account) => account,
            None => self.accounts.entry(group_id.to_owned()).or_default(),
        };
        let position = account.times.partition_point(|t| *t <= at);
        account.times.insert(position, at);
        for (key, value) in traits {
            let list = account.traits.entry(key).or_default();
            let position = list.partition_point(|(t, _)| *t <= at);
            list.insert(position, (at, (!value.is_null()).then_some(value)));
        }
    }

    /// Records the traits of a `group` event, if it is one.
    pub fn record_event(&mut self, event: &Event) {
        if event.kind() != "group" {
            return;
        }
        let Some(group_id) = group_id_of(&event.body) else { return };
        let traits = event.body.get("traits").and_then(Value::as_object).cloned().unwrap_or_default();
        self.record(&group_id, event.at, traits);
    }

    /// Whether no `group` message was recorded.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The account's traits as of `as_of` (later `group` traits win; `null` removes a trait),
    /// with its `id`.
    pub fn traits_at(&self, group_id: &str, as_of: Millis) -> Map<String, Value> {
        let mut traits = Map::new();
        if let Some(account) = self.accounts.get(group_id) {
            for (key, list) in &account.traits {
                let upto = list.partition_point(|(t, _)| *t <= as_of);
                if let Some((_, Some(value))) = upto.checked_sub(1).and_then(|i| list.get(i)) {
                    traits.insert(key.clone(), value.clone());
                }
            }
        }
        traits.insert("id".to_owned(), Value::String(group_id.to_owned()));
        traits
    }

    /// How many `group` messages of the account exist at `as_of`: its traits change only when
    /// this does.
    pub fn version_at(&self, group_id: &str, as_of: Millis) -> usize {
        self.accounts.get(group_id).map_or(0, |account| account.times.partition_point(|t| *t <= as_of))
    }
}

pub(crate) fn group_id_of(body: &Value) -> Option<String> {
    match body.get("groupId")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Later values win; an explicit `null` removes the trait.
pub(crate) fn merge_traits(into: &mut Map<String, Value>, update: &Map<String, Value>) {
    for (key, value) in update {
        if value.is_null() {
            into.remove(key);
        } else {
            into.insert(key.clone(), value.clone());
        }
    }
}

/// Which rule gave how many points, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub rule: String,
    pub dimension: String,
    /// Unrounded.
    pub points: f64,
    /// Trait and inactivity rules: 1 if the rule applied, else 0. Event rules: the matching
    /// events that counted (after `within`, `per_day`, `limit`). Count rules: the matching events
    /// in the window.
    pub matched: usize,
    /// The time of the latest matching event that counted (event rules), in the window (count
    /// rules) or at all (inactivity rules); `None` for trait rules.
    pub last_matched_at: Option<Millis>,
}

/// A lead's score at one instant. Numbers are unrounded; [`round2`] is for reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub lead_id: String,
    pub as_of: Millis,
    /// One per dimension, in model order, after clamping.
    pub dimensions: Vec<f64>,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    /// From the model's `[calibration]`, if it has one.
    pub probability: Option<f64>,
    /// The lead's account id as of `as_of`.
    pub account: Option<String>,
    /// The lead's traits as of `as_of` (base traits with `identify` traits merged in).
    pub traits: Map<String, Value>,
    /// Rules that matched or gave points, in model order.
    pub contributions: Vec<Contribution>,
}

/// Rounds to 2 decimals for reporting (never `-0`).
pub fn round2(x: f64) -> f64 {
    let r = (x * 100.0).round() / 100.0;
    if r == 0.0 { 0.0 } else { r }
}

/// An account's rolled-up score: each dimension the `[accounts] aggregate` of its leads'.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountScore {
    pub account_id: String,
    pub dimensions: Vec<f64>,
    pub total: f64,
    pub stage: String,
    pub leads: Vec<String>,
}
