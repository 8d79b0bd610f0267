//! The model file: `ModelFile` (the TOML as written, every value with its span) is checked into a
//! `CheckedModel` (names resolved, CEL compiled, durations parsed, rules indexed). The engine only
//! ever sees a `CheckedModel`. This module owns SPEC §2 except the scoring semantics (`engine`).

mod analysis;
mod check;
mod diff;
mod index;
mod parse;
mod projection;

use std::ops::Range;

use crate::cel::Program;
use crate::diagnostics::Diagnostic;
use crate::time::Duration;

pub use diff::{ModelChange, diff_models};
pub use index::RuleIndex;
pub use parse::parse_model_file;
pub use projection::{Project, Projection, parse_projected};

/// A value as written in the model file, with its byte span.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// The type of a trait declared in `[traits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraitType {
    Number,
    String,
    Bool,
    Timestamp,
}

impl TraitType {
    pub fn name(self) -> &'static str {
        match self {
            TraitType::Number => "number",
            TraitType::String => "string",
            TraitType::Bool => "bool",
            TraitType::Timestamp => "timestamp",
        }
    }
}

/// The model file as written: structure validated, meaning not yet.
#[derive(Debug, Clone, Default)]
pub struct ModelFile {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub traits: Vec<(Spanned<String>, Spanned<TraitType>)>,
    pub dimensions: Vec<RawDimension>,
    pub rules: Vec<RawRule>,
    pub stages: Vec<RawStage>,
    pub grade: Option<RawGrade>,
    pub ignore: Option<Spanned<String>>,
    pub aggregate: Option<Spanned<String>>,
    pub calibration: Option<RawCalibration>,
}

#[derive(Debug, Clone)]
pub struct RawDimension {
    pub name: Spanned<String>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    pub weight: Option<Spanned<f64>>,
    pub half_life: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawRule {
    /// The span of the whole `[[rules]]` table (its first key to its last value).
    pub span: Range<usize>,
    pub name: Option<Spanned<String>>,
    pub dimension: Option<Spanned<String>>,
    pub points: Option<Spanned<f64>>,
    pub condition_if: Option<Spanned<String>>,
    pub on: Option<Spanned<String>>,
    pub inactive: Option<Spanned<String>>,
    pub limit: Option<Spanned<i64>>,
    pub within: Option<Spanned<String>>,
    pub per_day: Option<Spanned<i64>>,
    pub max_points: Option<Spanned<f64>>,
    pub half_life: Option<Spanned<String>>,
    pub at_least: Option<Spanned<i64>>,
    pub for_: Option<Spanned<String>>,
    pub description: Option<String>,
    /// Keys present in the table, whatever their values (to tell "missing" from "invalid").
    pub keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RawStage {
    pub span: Range<usize>,
    pub name: Option<Spanned<String>>,
    pub when: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct RawGrade {
    pub span: Range<usize>,
    pub fit: Vec<(Spanned<String>, Spanned<f64>)>,
    pub engagement: Vec<(Spanned<String>, Spanned<f64>)>,
}

/// `[calibration]`: maps a total to a probability, `1 / (1 + exp(-(intercept + slope * total)))`.
#[derive(Debug, Clone)]
pub struct RawCalibration {
    pub span: Range<usize>,
    pub intercept: Option<Spanned<f64>>,
    pub slope: Option<Spanned<f64>>,
}

/// A model that passed `check`: the only form the engine accepts.
#[derive(Debug, Clone)]
pub struct CheckedModel {
    pub name: String,
    pub description: Option<String>,
    pub traits: Vec<(String, TraitType)>,
    pub dimensions: Vec<Dimension>,
    pub rules: Vec<Rule>,
    pub stages: Vec<Stage>,
    pub grade: Option<Grade>,
    pub ignore: Option<Program>,
    pub aggregate: Aggregate,
    pub calibration: Option<Calibration>,
    pub(crate) index: RuleIndex,
    /// How messages are read into compact events for this model.
    pub plan: crate::compact::Plan,
}

#[derive(Debug, Clone)]
pub struct Dimension {
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub weight: f64,
    pub half_life: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Index into `CheckedModel::dimensions`.
    pub dimension: usize,
    pub points: f64,
    pub kind: RuleKind,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    /// `if`: holds or not for the lead's traits. Variables: `lead`, `account`.
    Trait { condition: Program },
    /// `on` without `at_least`: every matching event adds (decayed) points.
    /// Variables: `event`, `lead`, `account`.
    Event {
        condition: Program,
        limit: Option<usize>,
        within: Option<Duration>,
        per_day: Option<usize>,
        max_points: Option<f64>,
        /// Resolved: the rule's own half-life, else its dimension's; `None` means no decay.
        half_life: Option<Duration>,
    },
    /// `on` + `at_least` + `within`: points once when enough matching events fall in the window.
    Count { condition: Program, at_least: usize, within: Duration, per_day: Option<usize> },
    /// `inactive` + `for`: points when no matching event happened for `for`.
    Inactivity { condition: Program, period: Duration },
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Trait { .. } => "trait",
            RuleKind::Event { .. } => "event",
            RuleKind::Count { .. } => "count",
            RuleKind::Inactivity { .. } => "inactivity",
        }
    }

    pub fn condition(&self) -> &Program {
        match self {
            RuleKind::Trait { condition }
            | RuleKind::Event { condition, .. }
            | RuleKind::Count { condition, .. }
            | RuleKind::Inactivity { condition, .. } => condition,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// Variables: each dimension by name (in model order), then `total`.
    pub when: Program,
}

#[derive(Debug, Clone)]
pub struct Grade {
    pub fit_dimension: usize,
    pub engagement_dimension: usize,
    /// (letter, threshold), highest threshold first.
    pub fit: Vec<(String, f64)>,
    pub fit_fallback: String,
    /// (digit, threshold), highest threshold first.
    pub engagement: Vec<(String, f64)>,
    pub engagement_fallback: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Max,
    Sum,
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub intercept: f64,
    pub slope: f64,
}

impl Calibration {
    pub fn probability(&self, total: f64) -> f64 {
        1.0 / (1.0 + (-(self.intercept + self.slope * total)).exp())
    }
}

/// Stage names an outcome assigns; a `[[stages]]` entry may not use them.
pub const OUTCOME_STAGES: [&str; 3] = ["customer", "lost", "disqualified"];
/// The stage of a lead no `[[stages]]` entry holds for.
pub const DEFAULT_STAGE: &str = "lead";

/// The result of checking a model: the model if there was no error, and every diagnostic found.
#[derive(Debug)]
pub struct CheckReport {
    pub model: Option<CheckedModel>,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Parses and checks a model source: every error and warning at once.
pub fn check_model(source: &str) -> CheckReport {
    let (file, mut diagnostics) = parse_model_file(source);
    if diagnostics.iter().any(|d| d.code == "toml_syntax") {
        // Without a syntax tree, anything more would be noise.
        return CheckReport { model: None, diagnostics };
    }
    let (model, more) = check::check(source, &file);
    diagnostics.extend(more);
    let model = if diagnostics.iter().any(Diagnostic::is_error) { None } else { model };
    if let Some(model) = &model {
        diagnostics.extend(analysis::warnings(source, &file, model));
    }
    diagnostics.sort_by_key(|d| (d.severity, d.span.as_ref().map_or(0, |s| s.start)));
    CheckReport { model, diagnostics }
}

impl CheckedModel {
    /// Parses and checks a model, returning it only if it has no error.
    pub fn from_source(source: &str) -> Result<CheckedModel, Vec<Diagnostic>> {
        let report = check_model(source);
        match report.model {
            Some(model) => Ok(model),
            None => Err(report.diagnostics.into_iter().filter(Diagnostic::is_error).collect()),
        }
    }

    /// A model with no rules (one empty dimension) that reads events only to keep the values at
    /// `paths` of each ([`crate::compact::Plan::keeping`]): how `train` reads events, whose
    /// behaviour features are counts of them before a lead's cutoff.
    pub fn keeping(paths: &[&[&str]]) -> CheckedModel {
        CheckedModel {
            name: "events".to_owned(),
            description: None,
            traits: Vec::new(),
            dimensions: vec![Dimension {
                name: "events".to_owned(),
                min: None,
                max: None,
                weight: 1.0,
                half_life: None,
            }],
            rules: Vec::new(),
            stages: Vec::new(),
            grade: None,
            ignore: None,
            aggregate: Aggregate::Max,
            calibration: None,
            index: RuleIndex::build(&[]),
            plan: crate::compact::Plan::keeping(paths),
        }
    }

    /// Where a lead in `stage` comes in a "call now" list, first to last: the model's stages from
    /// the highest (`[[stages]]` are listed lowest first), then `lead` (no stage holds), then
    /// anything else (an outcome's `customer`, `lost`, `disqualified`, or a stage this model
    /// does not have).
    pub fn stage_rank(&self, stage: &str) -> i64 {
        let n = self.stages.len();
        let rank = match self.stages.iter().rposition(|s| s.name == stage) {
            Some(i) => n - 1 - i,
            None if stage == "lead" => n,
            None => n + 1,
        };
        i64::try_from(rank).unwrap_or(i64::MAX)
    }

    /// Every stage a lead can be in with its [`CheckedModel::stage_rank`], and the rank of any
    /// other.
    pub fn stage_ranks(&self) -> (Vec<(String, i64)>, i64) {
        let mut ranks: Vec<(String, i64)> =
            self.stages.iter().map(|s| (s.name.clone(), self.stage_rank(&s.name))).collect();
        if !ranks.iter().any(|(name, _)| name == "lead") {
            ranks.push(("lead".to_owned(), self.stage_rank("lead")));
        }
        (ranks, self.stage_rank(""))
    }

    pub fn dimension_index(&self, name: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d.name == name)
    }
}
