//! CRM write-back (`[[sync]]`): the score, stage, grade and reasons of each lead written as fields
//! of its CRM record, so sales sees them where it works.
//!
//! A score change marks the lead in the sync's outbox, in the transaction that made the change
//! ([`Syncs::mark`]); the outbox keeps one row per lead, so only a lead's latest values are sent
//! however often it changed ([`leadscore_store::CrmRow`]). One sender thread per sync
//! ([`sender`]) claims due rows, reads the leads' current scores, writes them in batches within
//! the CRM's rate limit and records each lead's result. [`hubspot`] knows HubSpot's API; [`log`]
//! is what the API shows of the syncs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use leadscore_core::lead::round2;
use leadscore_core::time::{self, Millis};
use leadscore_report::words::{format_points, top_reasons};
use leadscore_store::{StoreError, StoredScore, Tx};

pub mod hubspot;
pub mod inbound;
pub mod log;
pub mod salesforce;
pub mod sender;

/// Which CRM a sync writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crm {
    HubSpot,
    Salesforce,
}

impl Crm {
    pub const ALL: [Crm; 2] = [Crm::HubSpot, Crm::Salesforce];

    pub fn as_str(self) -> &'static str {
        match self {
            Crm::HubSpot => "hubspot",
            Crm::Salesforce => "salesforce",
        }
    }

    /// Most records one request writes.
    pub fn batch_size(self) -> usize {
        match self {
            Crm::HubSpot => hubspot::MAX_INPUTS,
            Crm::Salesforce => salesforce::MAX_RECORDS,
        }
    }

    pub fn parse(text: &str) -> Option<Crm> {
        Crm::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// When a lead is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// On every change of its total (to 2 decimals), stage or grade, debounced.
    Change,
    /// Only when its stage or grade changes.
    Stage,
}

/// One lead's record in a write request.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The record id, or the e-mail when `by_email`.
    pub id: String,
    pub by_email: bool,
    pub values: Values,
}

/// What an answer to a write request means for its inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Every input was written.
    Written,
    /// The inputs these ids name were not written, with the CRM's message; the others were.
    Partly(Vec<(String, String)>),
    /// Nothing was written because of the inputs these ids name (a 4xx naming them); the others
    /// can go again at once.
    Rejected(Vec<(String, String)>),
    /// Nothing was written; retry later (5xx, a network error, a 4xx naming no input).
    Failed(String),
    /// Over the rate limit: wait this long (`Retry-After`), then send the same again.
    RateLimited { wait_ms: i64, error: String },
    /// The token was refused (401, 403): writing stops until it is fixed.
    Unauthorized(String),
}

/// A write request: method, path under the sync's URL, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

/// How default field names are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `leadscore_total`: HubSpot's internal names (lower case, `_`).
    Snake,
    /// `Leadscore_Total__c`: Salesforce custom fields.
    Salesforce,
}

/// The CRM field each value is written to; `None`: not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub total: Option<String>,
    pub stage: Option<String>,
    pub grade: Option<String>,
    pub probability: Option<String>,
    pub reasons: Option<String>,
    pub updated_at: Option<String>,
    /// Dimensions named in the configuration (the others are `<prefix><dimension>`).
    pub dimensions: BTreeMap<String, Option<String>>,
    /// The prefix of the default names (`leadscore_`, `Leadscore_`).
    pub prefix: String,
    pub naming: Naming,
}

/// `updated_at` as a Salesforce custom field's name part: `Updated_At`.
fn title_case(key: &str) -> String {
    key.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map_or_else(String::new, |c| c.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// The names of the fixed fields in `[sync.fields]`; any other key there names a dimension.
pub const FIXED_FIELDS: [&str; 6] = ["total", "stage", "grade", "probability", "reasons", "updated_at"];

impl Fields {
    /// The default names, `<prefix>total`, `<prefix>stage`, …, with `overrides` (an empty name:
    /// not written).
    pub fn new(naming: Naming, prefix: &str, overrides: &BTreeMap<String, String>) -> Fields {
        let named = |key: &str| match overrides.get(key) {
            Some(name) if name.is_empty() => None,
            Some(name) => Some(name.clone()),
            None => Some(default_name(naming, prefix, key)),
        };
        Fields {
            total: named("total"),
            stage: named("stage"),
            grade: named("grade"),
            probability: named("probability"),
            reasons: named("reasons"),
            updated_at: named("updated_at"),
            dimensions: overrides
                .iter()
                .filter(|(k, _)| !FIXED_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), (!v.is_empty()).then(|| v.clone())))
                .collect(),
            prefix: prefix.to_owned(),
            naming,
        }
    }

    /// The field a dimension's points go to: as configured, else the default name of the
    /// dimension with anything but letters, digits and `_` as `_`.
    pub fn dimension(&self, dimension: &str) -> Option<String> {
        match self.dimensions.get(dimension) {
            Some(name) => name.clone(),
            None => {
                let clean: String =
                    dimension.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                Some(default_name(self.naming, &self.prefix, &clean))
            }
        }
    }
}

/// `leadscore_total` (HubSpot) or `Leadscore_Total__c` (Salesforce).
fn default_name(naming: Naming, prefix: &str, key: &str) -> String {
    match naming {
        Naming::Snake => format!("{prefix}{}", key.to_ascii_lowercase()),
        Naming::Salesforce => format!("{prefix}{}__c", title_case(key)),
    }
}

/// A value to write, typed: each CRM renders it its own way.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Number(f64),
    Text(String),
    Time(Millis),
    /// No value (clears the field).
    Empty,
}

/// What each field of a lead's record is written, in field order.
pub type Values = BTreeMap<String, FieldValue>;

/// A configured sync, checked (see [`crate::settings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sync {
    /// Unique among the syncs: the outbox, the log and the metrics name it.
    pub name: String,
    pub crm: Crm,
    /// The API's base URL (`https://api.hubapi.com`).
    pub url: String,
    /// The bearer token (from the environment variable the configuration names).
    pub token: String,
    /// The CRM object written (`contacts`, `companies`, `Lead`).
    pub object: String,
    /// Whether it writes accounts (HubSpot `companies`: each account's rolled-up scores) rather
    /// than leads.
    pub accounts: bool,
    pub when: When,
    /// How long after a lead's first unwritten change it is written (changes in between are
    /// written together).
    pub debounce: Millis,
    /// At most this many requests …
    pub rate_requests: usize,
    /// … in any window of this length.
    pub rate_window_ms: Millis,
    /// The trait that holds a lead's CRM record id.
    pub id_trait: String,
    /// The trait that holds its e-mail, to match a record without the id (`None`: by id only).
    pub email_trait: Option<String>,
    pub fields: Fields,
    /// The wait before the first retry of a failed write, doubling after each failure.
    pub first_retry: Millis,
    /// How long a failing lead is retried before it is marked dead (until its next change).
    pub retry_for: Millis,
    /// The secret HubSpot signs its webhooks with (the app's client secret); `None`: the sync
    /// takes no webhooks.
    pub webhook_secret: Option<String>,
    /// Which CRM field values are outcomes.
    pub outcomes: Vec<inbound::OutcomeMap>,
    /// Salesforce's REST API version (`v60.0`).
    pub api_version: String,
}

impl Sync {
    /// The request that writes these inputs.
    pub fn request(&self, inputs: &[&Input]) -> Request {
        match self.crm {
            Crm::HubSpot => Request {
                method: "POST",
                path: hubspot::batch_update_path(&self.object),
                body: hubspot::batch_update_body(inputs),
            },
            Crm::Salesforce => Request {
                method: "PATCH",
                path: salesforce::collections_path(&self.api_version),
                body: salesforce::collections_body(&self.object, inputs),
            },
        }
    }

    /// What the answer to [`Sync::request`] means for `inputs`.
    pub fn interpret(&self, status: u16, retry_after: Option<&str>, text: &str, inputs: &[&Input]) -> Answer {
        match self.crm {
            Crm::HubSpot => hubspot::interpret(status, retry_after, text),
            Crm::Salesforce => salesforce::interpret(status, text, inputs),
        }
    }

    /// The values to write for a lead with this score (its traits as of scoring, its visible
    /// change at `updated_at`).
    pub fn values(&self, score: &StoredScore, updated_at: Millis) -> Values {
        let f = &self.fields;
        let mut out = self.account_values(&score.scores, score.total, &score.stage, updated_at);
        let mut put = |name: &Option<String>, value: FieldValue| {
            if let Some(name) = name {
                out.insert(name.clone(), value);
            }
        };
        put(&f.grade, score.grade.clone().map_or(FieldValue::Empty, FieldValue::Text));
        put(&f.probability, score.probability.map_or(FieldValue::Empty, |p| FieldValue::Number(round4(p))));
        put(&f.reasons, reasons(score));
        out
    }

    /// The values to write for an account (and the part of a lead's it shares): total,
    /// dimensions, stage and update time (accounts have no grade, probability or reasons).
    pub fn account_values(&self, scores: &BTreeMap<String, f64>, total: f64, stage: &str, at: Millis) -> Values {
        let f = &self.fields;
        let mut out = Values::new();
        let mut put = |name: &Option<String>, value: FieldValue| {
            if let Some(name) = name {
                out.insert(name.clone(), value);
            }
        };
        put(&f.total, FieldValue::Number(round2(total)));
        for (dimension, points) in scores {
            put(&f.dimension(dimension), FieldValue::Number(round2(*points)));
        }
        put(&f.stage, FieldValue::Text(stage.to_owned()));
        put(&f.updated_at, FieldValue::Time(at));
        out
    }

    /// The lead's CRM record id, if its traits hold one.
    pub fn record_id(&self, traits: &Map<String, Value>) -> Option<String> {
        trait_text(traits, &self.id_trait)
    }

    /// The lead's e-mail, if the sync matches by e-mail and its traits hold one.
    pub fn email(&self, traits: &Map<String, Value>) -> Option<String> {
        self.email_trait.as_deref().and_then(|t| trait_text(traits, t)).filter(|e| e.contains('@'))
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A trait as text: a non-empty string, or a number (CRM ids are often numbers).
fn trait_text(traits: &Map<String, Value>, name: &str) -> Option<String> {
    match traits.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The top reasons in words: `Demo requested +30; Careers page -10`.
fn reasons(score: &StoredScore) -> FieldValue {
    let list = top_reasons(score.contributions.iter().map(|c| (c.rule.as_str(), c.points)), crate::webhooks::REASONS);
    if list.is_empty() {
        return FieldValue::Empty;
    }
    let words: Vec<String> = list
        .iter()
        .map(|(rule, points)| {
            format!("{rule} {}{}", if *points < 0.0 { "-" } else { "+" }, format_points(points.abs()))
        })
        .collect();
    FieldValue::Text(words.join("; "))
}

impl FieldValue {
    /// As HubSpot takes every property value: text (numbers without trailing zeros, times in
    /// RFC 3339, an empty string clears the property).
    pub fn as_text(&self) -> String {
        match self {
            FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
            FieldValue::Number(n) => format!("{n}"),
            FieldValue::Text(t) => t.clone(),
            FieldValue::Time(at) => time::format_timestamp(*at),
            FieldValue::Empty => String::new(),
        }
    }
}

/// What a sender knows beyond the outbox: whether the sync is stopped (a refused token) and its
/// last error, for the log and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct SyncHealth {
    /// Why the sync stopped (the CRM refused the token); it stays stopped until the server
    /// restarts with a new token.
    pub stopped: Option<String>,
    /// The last error of any attempt.
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
}

/// One configured sync and what its sender knows.
#[derive(Debug)]
pub struct SyncRunner {
    pub sync: Sync,
    pub(crate) health: Mutex<SyncHealth>,
}

impl SyncRunner {
    pub fn health(&self) -> SyncHealth {
        match self.health.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn update_health(&self, f: impl FnOnce(&mut SyncHealth)) {
        match self.health.lock() {
            Ok(mut h) => f(&mut h),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// A lead's score change, as the syncs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub lead: &'a str,
    pub at: Millis,
    /// Whether its stage or grade moved (else only its total did).
    pub moved: bool,
    pub account: Option<&'a str>,
}

/// The configured syncs.
#[derive(Debug, Clone, Default)]
pub struct Syncs {
    pub runners: Vec<Arc<SyncRunner>>,
}

impl Syncs {
    pub fn new(syncs: Vec<Sync>) -> Syncs {
        Syncs {
            runners: syncs
                .into_iter()
                .map(|sync| Arc::new(SyncRunner { sync, health: Mutex::new(SyncHealth::default()) }))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<SyncRunner>> {
        self.runners.iter().find(|r| r.sync.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.runners.is_empty()
    }

    /// Whether a trait of this name is one of the fields the syncs write (a configured name, or
    /// any name with a sync's prefix, `leadscore_…`): such values coming back from the CRM
    /// (an import of its export, its own tracking) are Leadscore's output, not new traits.
    pub fn writes(&self, name: &str) -> bool {
        self.runners.iter().any(|r| {
            let f = &r.sync.fields;
            (!f.prefix.is_empty() && name.starts_with(&f.prefix))
                || [&f.total, &f.stage, &f.grade, &f.probability, &f.reasons, &f.updated_at]
                    .into_iter()
                    .chain(f.dimensions.values())
                    .any(|field| field.as_deref() == Some(name))
        })
    }

    /// Drops the fields the syncs write from incoming messages' traits ([`Syncs::writes`]), so a
    /// score that comes back from the CRM does not feed the score (the loop guard). Returns how
    /// many values were dropped.
    pub fn guard(&self, messages: &mut [crate::ingest::Incoming]) -> usize {
        if self.runners.is_empty() {
            return 0;
        }
        let strip = |traits: Option<&mut Value>| match traits {
            Some(Value::Object(map)) => {
                let before = map.len();
                map.retain(|k, _| !self.writes(k));
                before - map.len()
            }
            _ => 0,
        };
        let mut dropped = 0;
        for message in messages {
            let body = &mut message.event.body;
            let n = strip(body.get_mut("traits")) + strip(body.get_mut("context").and_then(|c| c.get_mut("traits")));
            if n > 0
                && let Ok(text) = serde_json::to_string(&message.event.body)
            {
                message.new.body = text;
            }
            dropped += n;
        }
        dropped
    }

    /// Marks the leads whose score changed in each sync's outbox (in the caller's transaction),
    /// or, for a sync of accounts, their accounts. `changes`: each lead, the scoring time,
    /// whether its stage or grade moved (else only its total did), and its account.
    pub fn mark(&self, tx: &mut Tx<'_>, changes: &[Change<'_>]) -> Result<(), StoreError> {
        for runner in &self.runners {
            let sync = &runner.sync;
            let mut by_time: BTreeMap<Millis, std::collections::BTreeSet<&str>> = BTreeMap::new();
            for change in changes {
                if !(change.moved || sync.when == When::Change) {
                    continue;
                }
                let key = if sync.accounts { change.account } else { Some(change.lead) };
                if let Some(key) = key {
                    by_time.entry(change.at).or_default().insert(key);
                }
            }
            for (at, keys) in by_time {
                let keys: Vec<&str> = keys.into_iter().collect();
                tx.mark_crm(&sync.name, &keys, at, at + sync.debounce)?;
            }
        }
        Ok(())
    }
}
