//! The scoring semantics of SPEC §2.2: one lead's score at one instant, as a pure function of
//! (checked model, the lead's traits, events and outcomes, the account book, `as_of`).
//!
//! Both the batch CLI and the server call [`evaluate`]; nothing else computes a score. Events
//! after `as_of` (or attributed to the lead only after `as_of`, see [`Event::visible_at`]) do not
//! exist; ignored events are dropped; duplicate `messageId`s count once; the result does not
//! depend on the order events are given in.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::cel::{Activation, Binding};
use crate::compact::LeadState;
use crate::model::{Aggregate, CheckedModel, DEFAULT_STAGE, RuleKind};
use crate::time::{self, Duration, Millis};

// The domain types scoring reads and writes live in their own modules; these names stay valid here.
pub use crate::event::{Event, EventError, EventTime, TimeSource, TimeText, resolve_time, resolve_time_with};
pub use crate::lead::{AccountBook, AccountScore, Contribution, LeadHistory, Outcome, OutcomeKind, Score, round2};
pub(crate) use crate::lead::{group_id_of, merge_traits};

/// The events that exist for `lead` at `as_of` (SPEC §2.2): happened, and attributed to the lead,
/// by then; not dropped by `ignore`'s `[events] ignore` (unless the history says the caller already
/// applied it); in time order (ties: messageId, then content, so input order never matters); each
/// messageId once.
pub fn events_as_of<'a>(ignore: Option<&CheckedModel>, lead: &'a LeadHistory, as_of: Millis) -> Vec<&'a Event> {
    let ignore = ignore.filter(|_| !lead.ignore_applied);
    let mut events: Vec<&Event> = lead
        .events
        .iter()
        .filter(|e| e.at <= as_of && e.visible_at <= as_of)
        .filter(|e| ignore.is_none_or(|model| !is_ignored(model, e)))
        .collect();
    events.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| a.message_id.cmp(&b.message_id))
            .then_with(|| a.body.to_string().cmp(&b.body.to_string()))
    });
    let mut seen: HashSet<&str> = HashSet::new();
    events.retain(|e| e.message_id.as_deref().is_none_or(|id| seen.insert(id)));
    events
}

/// The score of `lead` under `model` as of `as_of` (SPEC §2.2): its messages read into compact
/// events ([`crate::compact`]) and folded into a [`LeadState`], which is read at `as_of`. The
/// same as [`evaluate_reference`].
pub fn evaluate(model: &CheckedModel, lead: &LeadHistory, accounts: &AccountBook, as_of: Millis) -> Score {
    LeadState::of(model, lead).score_at(model, accounts, as_of)
}

/// The score of `lead` as SPEC §2.2 defines it, directly on whole messages: every condition
/// evaluated against each message's JSON. [`evaluate`] gives the same score from compact events;
/// this definition is kept to test it against.
pub fn evaluate_reference(model: &CheckedModel, lead: &LeadHistory, accounts: &AccountBook, as_of: Millis) -> Score {
    let events = events_as_of(Some(model), lead, as_of);

    // Traits: base, then identify traits in time order.
    let mut traits = lead.traits.clone();
    let mut group: Option<String> = None;
    for event in &events {
        match event.kind() {
            "identify" => {
                if let Some(update) = event.body.get("traits").and_then(Value::as_object) {
                    merge_traits(&mut traits, update);
                }
            }
            "group" => {
                if let Some(id) = group_id_of(&event.body) {
                    group = Some(id);
                }
            }
            _ => {}
        }
    }
    let context = LeadContext::new(&lead.id, traits, group, accounts, as_of);
    let account_binding = context.account_binding();

    // Which events each event-based rule matches (indices into `events`, ascending time).
    let mut matches: Vec<Vec<usize>> = vec![Vec::new(); model.rules.len()];
    for (i, event) in events.iter().enumerate() {
        let vars = [Binding::Json(&event.body), Binding::Json(&context.lead_value), account_binding];
        let activation = Activation { vars: &vars, as_of };
        // The definition runs every candidate's condition, exact ones too.
        model.index.for_each_candidate(&event.body, |r, _| {
            if model.rules[r].kind.condition().matches(&activation) {
                matches[r].push(i);
            }
        });
    }
    let times: Vec<Vec<Millis>> = matches.iter().map(|list| list.iter().map(|&i| events[i].at).collect()).collect();
    let times: Vec<&[Millis]> = times.iter().map(Vec::as_slice).collect();
    let matched = Matched { first_event: events.first().map(|e| e.at), times: &times, prior: &[] };
    let trait_vars = [Binding::Json(&context.lead_value), context.account_binding()];
    let mut trait_rule = |r: usize| model.rules[r].kind.condition().matches(&Activation { vars: &trait_vars, as_of });
    finish(model, &lead.id, &lead.outcomes, &context, &matched, &mut trait_rule, as_of, Detail::Full)
}

/// A lead's traits and account as of an instant, and the `lead` object conditions see.
#[derive(Debug, Clone)]
pub(crate) struct LeadContext {
    pub(crate) traits: Map<String, Value>,
    pub(crate) account_id: Option<String>,
    account: Option<Value>,
    pub(crate) lead_value: Value,
}

impl LeadContext {
    /// `traits` are the merged traits; `group` the latest `group` message's account, if any (else
    /// the `account` trait names it).
    pub(crate) fn new(
        id: &str,
        traits: Map<String, Value>,
        group: Option<String>,
        accounts: &AccountBook,
        as_of: Millis,
    ) -> LeadContext {
        let account_id = group.or_else(|| match traits.get("account") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
        let account = account_id.as_ref().map(|id| Value::Object(accounts.traits_at(id, as_of)));
        let mut lead_object = traits.clone();
        lead_object.insert("id".to_owned(), Value::String(id.to_owned()));
        match &account {
            Some(a) => lead_object.insert("account".to_owned(), a.clone()),
            None => lead_object.remove("account"),
        };
        LeadContext { traits, account_id, account, lead_value: Value::Object(lead_object) }
    }

    pub(crate) fn account_binding(&self) -> Binding<'_> {
        self.account.as_ref().map_or(Binding::Absent, Binding::Json)
    }
}

/// What [`finish`] needs besides the lead's context: the first existing event's time (the
/// inactivity anchor without `created_at`) and per rule the times of the existing events it
/// matched (ascending).
pub(crate) struct Matched<'m> {
    pub(crate) first_event: Option<Millis>,
    pub(crate) times: &'m [&'m [Millis]],
    /// Per rule, what a compacted fold state keeps of the matches before its horizon that
    /// `times` leaves out (empty: `times` holds every match).
    pub(crate) prior: &'m [Prior],
}

/// What a rule keeps of its matches before a fold state's horizon (an instant at the start of a
/// UTC day, so no day's matches are split), once they are folded together: enough to score at any
/// instant at or after the horizon. Windowed rules and rules with a `limit` keep the times they
/// can still count one by one (in `times`); the others keep a count, the latest time and the sum
/// of their decay factors at the horizon.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Prior {
    /// Matches folded in (after `per_day`): counted by an unwindowed rule without a `limit`.
    pub(crate) count: usize,
    /// The latest of them.
    pub(crate) last: Option<Millis>,
    /// `Σ decay(horizon − t)` over them (their count without a half-life).
    pub(crate) decayed: f64,
    pub(crate) horizon: Millis,
}

/// How much of a score to build: everything, or only what the stage needs (no contributions, no
/// traits; for checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    Full,
    Stage,
}

/// The rest of a score, once the events that exist at `as_of` are known.
#[expect(clippy::too_many_arguments, reason = "the parts of one score, computed by two callers")]
pub(crate) fn finish(
    model: &CheckedModel,
    id: &str,
    outcomes: &[Outcome],
    context: &LeadContext,
    matched_events: &Matched<'_>,
    trait_rule: &mut dyn FnMut(usize) -> bool,
    as_of: Millis,
    detail: Detail,
) -> Score {
    let mut dimensions = vec![0.0; model.dimensions.len()];
    let mut contributions = Vec::new();
    for (r, rule) in model.rules.iter().enumerate() {
        // Ascending, so windows are found by binary search.
        let all = matched_events.times.get(r).copied().unwrap_or_default();
        let matched_times = &all[..all.partition_point(|&t| t <= as_of)];
        let (points, matched, last) = match &rule.kind {
            RuleKind::Trait { .. } => {
                let holds = trait_rule(r);
                (if holds { rule.points } else { 0.0 }, usize::from(holds), None)
            }
            RuleKind::Event { within, per_day, limit, max_points, half_life, .. } => {
                let mut counted = window(matched_times, *within, as_of);
                let per_day_kept;
                if let Some(per_day) = per_day {
                    per_day_kept = keep_latest_per_day(counted, *per_day);
                    counted = &per_day_kept;
                }
                if let Some(limit) = limit {
                    counted = &counted[counted.len().saturating_sub(*limit)..];
                }
                // An unwindowed rule without a limit counts every match: those folded into a
                // compacted state's prior first (they are the oldest), then the rest.
                let prior = matched_events.prior.get(r).filter(|p| within.is_none() && limit.is_none() && p.count > 0);
                let mut sum = prior.map_or(0.0, |p| rule.points * p.decayed * decay(as_of - p.horizon, *half_life));
                for &t in counted {
                    sum += rule.points * decay(as_of - t, *half_life);
                }
                let n = counted.len() + prior.map_or(0, |p| p.count);
                let last = counted.last().copied().or_else(|| prior.and_then(|p| p.last));
                if let Some(cap) = max_points {
                    sum = sum.clamp(-cap, *cap);
                }
                (sum, n, last)
            }
            RuleKind::Count { at_least, within, per_day, .. } => {
                let per_day_kept;
                let counted = match per_day {
                    Some(per_day) => {
                        per_day_kept = keep_latest_per_day(matched_times, *per_day);
                        window(&per_day_kept, Some(*within), as_of)
                    }
                    None => window(matched_times, Some(*within), as_of),
                };
                let points = if counted.len() >= *at_least { rule.points } else { 0.0 };
                (points, counted.len(), counted.last().copied())
            }
            RuleKind::Inactivity { period, .. } => {
                let last = matched_times.last().copied().or_else(|| matched_events.prior.get(r).and_then(|p| p.last));
                let recent = last.is_some_and(|t| in_window(t, Some(*period), as_of));
                let anchor = created_at(&context.traits).or(matched_events.first_event);
                let applies = !recent && anchor.is_some_and(|a| a <= as_of - period.as_millis());
                (if applies { rule.points } else { 0.0 }, usize::from(applies), last)
            }
        };
        dimensions[rule.dimension] += points;
        if detail == Detail::Full && (matched > 0 || points != 0.0) {
            contributions.push(Contribution {
                rule: rule.name.clone(),
                dimension: model.dimensions[rule.dimension].name.clone(),
                points,
                matched,
                last_matched_at: last,
            });
        }
    }
    for (score, dim) in dimensions.iter_mut().zip(&model.dimensions) {
        if let Some(min) = dim.min {
            *score = score.max(min);
        }
        if let Some(max) = dim.max {
            *score = score.min(max);
        }
    }
    let total = total_of(model, &dimensions);
    let outcome = outcomes.iter().filter(|o| o.at <= as_of).max_by_key(|o| o.at);
    let stage = match outcome {
        Some(o) => o.kind.stage().to_owned(),
        None => stage_of(model, &dimensions, total, as_of),
    };
    let grade = grade_of(model, &dimensions);
    Score {
        lead_id: id.to_owned(),
        as_of,
        probability: model.calibration.map(|c| c.probability(total)),
        dimensions,
        total,
        stage,
        grade,
        account: context.account_id.clone(),
        traits: if detail == Detail::Full { context.traits.clone() } else { Map::new() },
        contributions,
    }
}

/// The grade of these dimension scores (model order, clamped); `None` without `[grade]`.
pub(crate) fn grade_of(model: &CheckedModel, dimensions: &[f64]) -> Option<String> {
    model.grade.as_ref().map(|g| {
        let letter = g.fit.iter().find(|(_, t)| dimensions[g.fit_dimension] >= *t).map_or(&g.fit_fallback, |(l, _)| l);
        let digit = g
            .engagement
            .iter()
            .find(|(_, t)| dimensions[g.engagement_dimension] >= *t)
            .map_or(&g.engagement_fallback, |(d, _)| d);
        format!("{letter}{digit}")
    })
}

/// Whether `[events] ignore` drops this message.
pub fn is_ignored(model: &CheckedModel, event: &Event) -> bool {
    model.ignore.as_ref().is_some_and(|ignore| {
        let vars = [Binding::Json(&event.body)];
        ignore.matches(&Activation { vars: &vars, as_of: event.at })
    })
}

pub(crate) fn total_of(model: &CheckedModel, dimensions: &[f64]) -> f64 {
    model.dimensions.iter().zip(dimensions).map(|(d, s)| d.weight * s).sum()
}

/// The last `[[stages]]` entry whose `when` holds, else `lead`.
pub(crate) fn stage_of(model: &CheckedModel, dimensions: &[f64], total: f64, as_of: Millis) -> String {
    let vars: Vec<Binding<'_>> =
        dimensions.iter().map(|&d| Binding::Number(d)).chain([Binding::Number(total)]).collect();
    let activation = Activation { vars: &vars, as_of };
    model
        .stages
        .iter()
        .rev()
        .find(|s| s.when.matches(&activation))
        .map_or_else(|| DEFAULT_STAGE.to_owned(), |s| s.name.clone())
}

/// Of ascending times, all at or before `as_of`, those in `(as_of − within, as_of]`.
fn window(times: &[Millis], within: Option<Duration>, as_of: Millis) -> &[Millis] {
    match within {
        Some(w) => &times[times.partition_point(|&t| t <= as_of - w.as_millis())..],
        None => times,
    }
}

/// `t` falls in `(as_of − within, as_of]` (always true without a window).
fn in_window(t: Millis, within: Option<Duration>, as_of: Millis) -> bool {
    within.is_none_or(|w| t > as_of - w.as_millis()) && t <= as_of
}

/// `points × 0.5^(age / half_life)`'s factor.
pub(crate) fn decay(age: Millis, half_life: Option<Duration>) -> f64 {
    match half_life {
        Some(h) => 0.5_f64.powf(age as f64 / h.as_millis() as f64),
        None => 1.0,
    }
}

/// Of times in ascending order, keeps at most `per_day` per UTC day: the latest ones of that day.
pub(crate) fn keep_latest_per_day(times: &[Millis], per_day: usize) -> Vec<Millis> {
    let mut kept = Vec::with_capacity(times.len());
    let mut start = 0;
    while start < times.len() {
        let day = time::utc_day(times[start]);
        let end = start + times[start..].iter().take_while(|&&t| time::utc_day(t) == day).count();
        kept.extend_from_slice(&times[end - (end - start).min(per_day)..end]);
        start = end;
    }
    kept
}

/// The `created_at` trait as an instant: an RFC 3339 string or date, or epoch seconds /
/// milliseconds as a number (values above 10^11 are taken as milliseconds). A value outside the
/// years 0000–9999 is no instant at all (as if the trait were missing).
pub(crate) fn created_at(traits: &Map<String, Value>) -> Option<Millis> {
    let at = match traits.get("created_at")? {
        Value::String(s) => time::parse_timestamp(s)?,
        Value::Number(n) => {
            let v = n.as_f64().filter(|v| v.is_finite())?;
            if v.abs() > 1e11 { v as Millis } else { (v * 1000.0) as Millis }
        }
        _ => return None,
    };
    time::is_representable(at).then_some(at)
}

/// Rolls up the scores of an account's leads (SPEC §2.2, account scores).
pub fn evaluate_account(model: &CheckedModel, account_id: &str, leads: &[&Score], as_of: Millis) -> AccountScore {
    let n = model.dimensions.len();
    let mut dimensions = vec![0.0; n];
    for (d, value) in dimensions.iter_mut().enumerate() {
        let values = leads.iter().map(|s| s.dimensions[d]);
        *value = match model.aggregate {
            Aggregate::Max => values.fold(f64::NEG_INFINITY, f64::max),
            Aggregate::Sum => values.sum(),
            Aggregate::Mean => values.sum::<f64>() / leads.len().max(1) as f64,
        };
        if !value.is_finite() {
            *value = 0.0;
        }
    }
    let total = total_of(model, &dimensions);
    AccountScore {
        account_id: account_id.to_owned(),
        stage: stage_of(model, &dimensions, total, as_of),
        dimensions,
        total,
        leads: leads.iter().map(|s| s.lead_id.clone()).collect(),
    }
}
