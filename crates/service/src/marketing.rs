//! What marketing sees of the stored leads: current stages, the stage funnel (in the model's
//! stage order), score distributions per dimension, and conversion by current total. Numbers
//! only; the dashboard draws them.

use std::collections::{HashMap, HashSet};

use leadscore_core::OutcomeKind;
use leadscore_store::StoreError;

use crate::app::App;
use crate::error::ServiceError;

/// Leads whose scores the distributions and bands use, at most.
const SAMPLE: usize = 20_000;

/// One step of the funnel.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelStep {
    pub stage: String,
    pub count: usize,
    /// The share of the leads that reached the step before that reached this one too (`None` for
    /// the first step, or after an empty one).
    pub rate: Option<f64>,
}

/// Conversion of the leads (with an outcome) whose current total lies in `low..=high`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreBand {
    pub low: f64,
    pub high: f64,
    pub conversion: f64,
}

/// A model version in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub version: i64,
    pub name: String,
    pub created_at: leadscore_core::time::Millis,
    pub active: bool,
    /// Scored live beside the active model.
    pub shadow: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MarketingOverview {
    pub leads: u64,
    /// How many sampled leads are in each of the model's stages now, highest stage first.
    pub stage_counts: Vec<(String, usize)>,
    /// Leads with a converting outcome.
    pub customers: usize,
    /// Every lead; those that ever reached each stage, in model order; customers.
    pub funnel: Vec<FunnelStep>,
    /// Each dimension's sampled scores, in model order.
    pub distributions: Vec<(String, Vec<f64>)>,
    /// Leads with an outcome in fifths by current total, highest first.
    pub bands: Vec<ScoreBand>,
    /// Model versions, newest first.
    pub models: Vec<ModelEntry>,
    /// What to ask for next on forms (progressive profiling), most leads first.
    pub ask_next: Vec<AskTally>,
}

/// A trait that is the answer to ask for next for some open leads (sampled).
#[derive(Debug, Clone, PartialEq)]
pub struct AskTally {
    pub trait_name: String,
    /// Leads for which it is the most useful missing answer.
    pub leads: usize,
    /// Of those, how many it could move to another stage, and to another grade.
    pub stage_moves: usize,
    pub grade_moves: usize,
}

/// Tallies, over open leads, the answer each should be asked for next.
fn ask_next_tally(model: &leadscore_core::CheckedModel, leads: &[leadscore_store::LeadRow]) -> Vec<AskTally> {
    let mut tally: std::collections::BTreeMap<String, AskTally> = std::collections::BTreeMap::new();
    for row in leads {
        let Some(score) = &row.score else { continue };
        let points = crate::leads::points_by_rule(score.contributions.iter().map(|c| (c.rule.as_str(), c.points)));
        let lead = leadscore_core::profiling::Scored {
            traits: &score.current_traits,
            points: &points,
            stage: &score.stage,
            grade: score.grade.as_deref(),
            has_outcome: false,
        };
        if let Some(ask) = leadscore_core::profiling::ask_next(model, &lead, score.scored_at) {
            let entry = tally.entry(ask.trait_name.clone()).or_insert_with(|| AskTally {
                trait_name: ask.trait_name.clone(),
                leads: 0,
                stage_moves: 0,
                grade_moves: 0,
            });
            entry.leads += 1;
            entry.stage_moves += usize::from(ask.stage.is_some());
            entry.grade_moves += usize::from(ask.grade.is_some());
        }
    }
    let mut list: Vec<AskTally> = tally.into_values().collect();
    list.sort_by_key(|t| std::cmp::Reverse((t.stage_moves, t.grade_moves, t.leads)));
    list
}

impl App {
    pub fn marketing_overview(&self) -> Result<MarketingOverview, ServiceError> {
        let (lead_count, sample, outcomes, reached, models, open) = self.store.read(|tx| {
            Ok::<_, StoreError>((
                tx.count_leads()?,
                tx.score_sample(SAMPLE)?,
                tx.all_outcomes()?,
                tx.stages_reached()?,
                tx.models()?,
                tx.open_leads_sample(SAMPLE)?,
            ))
        })?;
        let active = self.model();
        let model = &active.model;
        let mut now_in: HashMap<&str, usize> = HashMap::new();
        for s in &sample {
            *now_in.entry(s.stage.as_str()).or_default() += 1;
        }
        let converted: HashSet<&str> = outcomes
            .iter()
            .filter(|o| OutcomeKind::parse(&o.outcome).is_some_and(OutcomeKind::is_conversion))
            .map(|o| o.lead_id.as_str())
            .collect();
        let stage_names: Vec<&str> = model.stages.iter().map(|s| s.name.as_str()).collect();
        let mut reached_by: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (lead, stage) in &reached {
            // Reaching a later stage means passing the earlier ones (funnel semantics).
            if let Some(i) = stage_names.iter().position(|s| s == stage) {
                for s in &stage_names[..=i] {
                    reached_by.entry(s).or_default().insert(lead.as_str());
                }
            }
        }
        // Each step's rate is over the leads that passed the step before: a customer who never
        // reached SQL (an outcome recorded straight away) counts in the customers, not in the
        // conversion from SQL, so no step can exceed 100% of the one before.
        let all = usize::try_from(lead_count).unwrap_or(0);
        let empty = HashSet::new();
        let set = |name: &str| reached_by.get(name).unwrap_or(&empty);
        let mut funnel =
            vec![FunnelStep { stage: leadscore_core::model::DEFAULT_STAGE.to_owned(), count: all, rate: None }];
        for (i, name) in stage_names.iter().enumerate() {
            let here = set(name);
            let rate = match i.checked_sub(1) {
                None => (all > 0).then(|| here.len() as f64 / all as f64),
                Some(b) => {
                    let before = set(stage_names[b]);
                    (!before.is_empty()).then(|| before.intersection(here).count() as f64 / before.len() as f64)
                }
            };
            funnel.push(FunnelStep { stage: (*name).to_owned(), count: here.len(), rate });
        }
        let customer_rate = match stage_names.last() {
            None => (all > 0).then(|| converted.len() as f64 / all as f64),
            Some(last) => {
                let before = set(last);
                (!before.is_empty())
                    .then(|| before.iter().filter(|l| converted.contains(*l)).count() as f64 / before.len() as f64)
            }
        };
        funnel.push(FunnelStep { stage: "customer".to_owned(), count: converted.len(), rate: customer_rate });
        let distributions = model
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), sample.iter().filter_map(|s| s.scores.get(&d.name).copied()).collect()))
            .collect();
        let with_outcome: HashSet<&str> = outcomes.iter().map(|o| o.lead_id.as_str()).collect();
        let mut scored: Vec<(f64, bool)> = sample
            .iter()
            .filter(|s| with_outcome.contains(s.id.as_str()))
            .map(|s| (s.total, converted.contains(s.id.as_str())))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let bands = if scored.is_empty() {
            Vec::new()
        } else {
            scored
                .chunks(scored.len().div_ceil(5))
                .map(|c| ScoreBand {
                    low: c[c.len() - 1].0,
                    high: c[0].0,
                    conversion: c.iter().filter(|x| x.1).count() as f64 / c.len() as f64,
                })
                .collect()
        };
        Ok(MarketingOverview {
            leads: u64::try_from(lead_count).unwrap_or(0),
            stage_counts: model
                .stages
                .iter()
                .rev()
                .map(|s| (s.name.clone(), now_in.get(s.name.as_str()).copied().unwrap_or(0)))
                .collect(),
            customers: converted.len(),
            funnel,
            distributions,
            bands,
            models: models
                .into_iter()
                .rev()
                .map(|m| ModelEntry {
                    version: m.version,
                    name: m.name,
                    created_at: m.created_at,
                    active: m.active,
                    shadow: m.shadow && !m.active,
                })
                .collect(),
            ask_next: ask_next_tally(model, &open),
        })
    }
}
