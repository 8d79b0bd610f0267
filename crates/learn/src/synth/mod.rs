//! Synthetic B2B data with a known ground truth: leads, Segment events and outcomes for a fictional
//! vendor (Opsgrid, incident response for IT and engineering teams), for demos, tests and benchmarks.
//!
//! Pure: no I/O and no clock. [`generate_lead`] is a function of `(config, index)` alone, so leads can
//! be generated in any order or in parallel and the output for a seed never changes; [`Generator`]
//! yields them in order. Each [`LeadRecord`] carries the lead's CRM row, its events (sorted by time),
//! its outcome if one happened by the end date, and the hidden truth the generator used. Writing files
//! is the caller's business (`leadscore gen`). The generative story is documented in
//! docs/synthetic-data.md; keep the two in step.

mod behaviour;
mod catalog;
mod person;
mod sample;

use leadscore_core::time::{MS_PER_DAY, Millis, format_timestamp};
use rand::SeedableRng;
use serde::Serialize;
use serde_json::Value;

pub use person::Persona;

/// 2024-06-30T00:00:00Z: the default end of the generated history.
pub const DEFAULT_END: Millis = 1_719_705_600_000;

/// Leads are created over this many days before the end date.
pub const SPAN_DAYS: i64 = 180;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub seed: u64,
    /// Number of leads (at least 1).
    pub leads: u64,
    /// No event or outcome is later than this instant.
    pub end: Millis,
}

impl Config {
    pub fn new(seed: u64, leads: u64) -> Self {
        Config { seed, leads, end: DEFAULT_END }
    }

    /// The first instant at which a lead can be created.
    pub fn start(&self) -> Millis {
        self.end - SPAN_DAYS * MS_PER_DAY
    }

    /// Number of distinct companies leads are drawn from (several leads can share one).
    pub fn accounts(&self) -> u64 {
        (self.leads * 2 / 5).max(10)
    }
}

/// A lead as the CRM export (`leads.csv`) has it. `None` is an empty cell.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    pub id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub seniority: Option<String>,
    pub employees: Option<u32>,
    pub industry: Option<String>,
    pub country: Option<String>,
    pub created_at: Millis,
}

impl LeadRow {
    pub const HEADER: [&'static str; 11] = [
        "id",
        "email",
        "first_name",
        "last_name",
        "title",
        "department",
        "seniority",
        "employees",
        "industry",
        "country",
        "created_at",
    ];

    /// The row's cells in [`LeadRow::HEADER`] order; missing values are empty strings.
    pub fn cells(&self) -> [String; 11] {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            self.id.clone(),
            self.email.clone(),
            text(&self.first_name),
            text(&self.last_name),
            text(&self.title),
            text(&self.department),
            text(&self.seniority),
            self.employees.map(|n| n.to_string()).unwrap_or_default(),
            text(&self.industry),
            text(&self.country),
            format_timestamp(self.created_at),
        ]
    }
}

/// What became of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    Won,
    /// A conversion recorded by a CRM that says `converted` instead of `won`.
    Converted,
    Lost,
    Disqualified,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Won => "won",
            OutcomeKind::Converted => "converted",
            OutcomeKind::Lost => "lost",
            OutcomeKind::Disqualified => "disqualified",
        }
    }

    pub fn is_conversion(self) -> bool {
        matches!(self, OutcomeKind::Won | OutcomeKind::Converted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub at: Millis,
}

/// The hidden ground truth for one lead (`truth.csv`): for evaluation only, never a model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub persona: Persona,
    /// How well the lead matches the ideal customer profile, in `[0, 1]`.
    pub icp_fit: f64,
    /// Latent buying intent, in `[0, 1]`.
    pub intent: f64,
    /// The probability with which the generator decided that this lead buys.
    pub converted_probability: f64,
}

/// One Segment message. Serialises to exactly one JSON object in the shape of the Segment HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "messageId")]
    pub message_id: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub timestamp: Millis,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(rename = "anonymousId", skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "groupId", skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<Value>,
    pub context: Value,
}

fn serialize_timestamp<S: serde::Serializer>(ms: &Millis, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(*ms))
}

/// Everything generated for one lead.
#[derive(Debug, Clone)]
pub struct LeadRecord {
    pub lead: LeadRow,
    /// The lead's messages sorted by time (deliberate duplicates right after their original), followed
    /// by unrelated traffic of the same period: anonymous visitors who never identify and bot crawls.
    pub events: Vec<Message>,
    pub outcome: Option<Outcome>,
    pub truth: Truth,
}

/// The id of the lead with this index (0-based): `L0000001`, ...
pub fn lead_id(index: u64) -> String {
    format!("L{:07}", index + 1)
}

/// A deterministic random stream for `(seed, purpose, index)`.
fn stream(seed: u64, purpose: u64, index: u64) -> sample::Rng {
    let mut rng = sample::Rng::seed_from_u64(seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(index);
    rng
}

const LEAD_STREAM: u64 = 1;
const ACCOUNT_STREAM: u64 = 2;

/// Generates lead number `index` (0-based) of the dataset described by `config`.
pub fn generate_lead(config: &Config, index: u64) -> LeadRecord {
    let mut rng = stream(config.seed, LEAD_STREAM, index);
    let person = person::draw(config, index, &mut rng);
    behaviour::simulate(config, &person, &mut rng)
}

/// Yields the dataset lead by lead, in id order.
pub struct Generator {
    config: Config,
    next: u64,
}

impl Generator {
    pub fn new(config: Config) -> Self {
        Generator { config, next: 0 }
    }
}

impl Iterator for Generator {
    type Item = LeadRecord;

    fn next(&mut self) -> Option<LeadRecord> {
        if self.next >= self.config.leads {
            return None;
        }
        let record = generate_lead(&self.config, self.next);
        self.next += 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.config.leads - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests;
