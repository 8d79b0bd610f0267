//! What-if preview of a model version before it is activated: every stored lead scored with it
//! and with the active model as of the same instant, from the same stored messages. The view says
//! how each dimension's distribution moves, how many leads would enter or leave each stage and
//! grade (with a few of them named), which stage moves happen, the rule-by-rule diff of the two
//! model files and, on request, both backtests side by side.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use leadscore_core::engine::{evaluate, round2};
use leadscore_core::model::{ModelChange, diff_models};
use leadscore_core::time::{self, Duration, Millis};
use leadscore_core::{CheckedModel, Score};
use leadscore_learn::backtest::BacktestReport;
use leadscore_store::StoreError;

use crate::app::{App, check_source};
use crate::error::{Code, ServiceError};
use crate::models::{invalid_model, model_not_found};
use crate::scoring::visit_histories;
use crate::webhooks::name_of;

/// How many leads a stage or grade change names.
pub const SAMPLE: usize = 5;
/// Bins of a distribution.
pub const BINS: usize = 10;

/// A lead named in a preview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadRef {
    pub id: String,
    /// Its name or e-mail, if its traits have one.
    pub name: Option<String>,
}

/// One bin of a distribution, with how many leads each model puts in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bin {
    pub from: f64,
    pub to: f64,
    pub active: usize,
    pub preview: usize,
}

/// A summary of one model's values of a dimension (or the total).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

/// A dimension (or `total`) under both models; a side is `None` where its model lacks it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DimensionPreview {
    pub name: String,
    pub active: Option<Summary>,
    pub preview: Option<Summary>,
    /// Shared bins over both models' values.
    pub bins: Vec<Bin>,
}

/// A stage or grade: how many leads each model puts there, and who moves in or out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BucketPreview {
    pub name: String,
    pub active: usize,
    pub preview: usize,
    /// Leads there with the preview and not with the active model.
    pub entering: usize,
    pub leaving: usize,
    pub entering_sample: Vec<LeadRef>,
    pub leaving_sample: Vec<LeadRef>,
}

/// Leads that would move from one stage to another.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageMove {
    pub from: String,
    pub to: String,
    pub leads: usize,
}

/// Both backtests over the stored history (SPEC §5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BacktestPair {
    #[schema(value_type = Object)]
    pub active: BacktestReport,
    #[schema(value_type = Object)]
    pub preview: BacktestReport,
}

/// A model version previewed against the active one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelPreview {
    pub version: i64,
    pub name: String,
    pub active_version: i64,
    pub active_name: String,
    /// Both models scored every lead as of this instant.
    pub as_of: String,
    pub leads: usize,
    /// `total` first, then each dimension of either model.
    pub dimensions: Vec<DimensionPreview>,
    /// `lead` first, then the stages of both models in order.
    pub stages: Vec<BucketPreview>,
    /// Grades of either model (`none` for leads without one).
    pub grades: Vec<BucketPreview>,
    /// Stage moves, most leads first (leads staying put are not listed).
    pub moves: Vec<StageMove>,
    /// From the active model's file to this one's.
    #[schema(value_type = Vec<Object>)]
    pub diff: Vec<ModelChange>,
    /// With `backtest=true`.
    pub backtest: Option<BacktestPair>,
    /// The checker's warnings about this version (`leadscore check`'s headlines).
    pub warnings: Vec<String>,
}

/// One lead under both models.
struct Pair {
    id: String,
    name: Option<String>,
    active: Score,
    preview: Score,
}

fn summary(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Some(Summary {
        mean: round2(sorted.iter().sum::<f64>() / sorted.len() as f64),
        p50: round2(at(0.5)),
        p90: round2(at(0.9)),
        max: round2(at(1.0)),
    })
}

fn bins(active: &[f64], preview: &[f64]) -> Vec<Bin> {
    let all = active.iter().chain(preview);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if !lo.is_finite() {
        return Vec::new();
    }
    let width = if hi > lo { (hi - lo) / BINS as f64 } else { 1.0 };
    let index = |v: f64| (((v - lo) / width) as usize).min(BINS - 1);
    let mut out: Vec<Bin> = (0..BINS)
        .map(|i| Bin {
            from: round2(lo + width * i as f64),
            to: round2(lo + width * (i + 1) as f64),
            active: 0,
            preview: 0,
        })
        .collect();
    for v in active {
        out[index(*v)].active += 1;
    }
    for v in preview {
        out[index(*v)].preview += 1;
    }
    out
}

fn dimension_values<'a>(model: &CheckedModel, scores: impl Iterator<Item = &'a Score>, name: &str) -> Vec<f64> {
    match model.dimensions.iter().position(|d| d.name == name) {
        Some(d) => scores.map(|s| s.dimensions[d]).collect(),
        None => Vec::new(),
    }
}

fn buckets(pairs: &[Pair], names: &[String], of: impl Fn(&Score) -> String) -> Vec<BucketPreview> {
    names
        .iter()
        .map(|name| {
            let mut b = BucketPreview {
                name: name.clone(),
                active: 0,
                preview: 0,
                entering: 0,
                leaving: 0,
                entering_sample: Vec::new(),
                leaving_sample: Vec::new(),
            };
            for p in pairs {
                let (before, after) = (of(&p.active) == *name, of(&p.preview) == *name);
                b.active += usize::from(before);
                b.preview += usize::from(after);
                let named = || LeadRef { id: p.id.clone(), name: p.name.clone() };
                if after && !before {
                    b.entering += 1;
                    if b.entering_sample.len() < SAMPLE {
                        b.entering_sample.push(named());
                    }
                }
                if before && !after {
                    b.leaving += 1;
                    if b.leaving_sample.len() < SAMPLE {
                        b.leaving_sample.push(named());
                    }
                }
            }
            b
        })
        .collect()
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

impl App {
    /// Previews model `version` against the active model as of `as_of`, with both backtests (each
    /// lead scored this long before its outcome) if `backtest` is given.
    pub fn preview_model(
        &self,
        version: i64,
        as_of: Millis,
        backtest: Option<Duration>,
    ) -> Result<ModelPreview, ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        let (preview, warnings) = check_source(&row.source).map_err(|d| invalid_model(&row.source, &d))?;
        let warnings: Vec<String> = warnings.iter().map(|d| d.headline("model.toml", &row.source)).collect();
        let active = self.model();
        let model = &active.model;
        let mut projection = model.event_projection();
        projection.merge(&preview.event_projection());
        let pairs: Vec<Pair> = self.store.read(|tx| {
            let mut pairs = Vec::new();
            visit_histories(tx, model, &projection, |loaded| {
                for (head, history) in &loaded.leads {
                    let active_score = evaluate(model, history, &loaded.accounts, as_of);
                    let preview_score = evaluate(&preview, history, &loaded.accounts, as_of);
                    let name = name_of(&active_score.traits)
                        .or_else(|| active_score.traits.get("email").and_then(|e| e.as_str()).map(str::to_owned));
                    pairs.push(Pair { id: head.id.clone(), name, active: active_score, preview: preview_score });
                }
            })?;
            Ok::<_, StoreError>(pairs)
        })?;
        // Without leads there is still the diff and the warnings; a backtest needs leads.
        if pairs.is_empty() && backtest.is_some() {
            return Err(ServiceError::user(Code::NoLeads, "there are no stored leads to backtest the model on"));
        }

        let mut dimensions = vec![{
            let a: Vec<f64> = pairs.iter().map(|p| p.active.total).collect();
            let b: Vec<f64> = pairs.iter().map(|p| p.preview.total).collect();
            DimensionPreview { name: "total".into(), active: summary(&a), preview: summary(&b), bins: bins(&a, &b) }
        }];
        let mut names: Vec<String> = Vec::new();
        for d in model.dimensions.iter().chain(&preview.dimensions) {
            push_unique(&mut names, &d.name);
        }
        for name in &names {
            let a = dimension_values(model, pairs.iter().map(|p| &p.active), name);
            let b = dimension_values(&preview, pairs.iter().map(|p| &p.preview), name);
            dimensions.push(DimensionPreview {
                name: name.clone(),
                active: summary(&a),
                preview: summary(&b),
                bins: bins(&a, &b),
            });
        }

        let mut stage_names = vec![leadscore_core::model::DEFAULT_STAGE.to_owned()];
        for s in model.stages.iter().chain(&preview.stages) {
            push_unique(&mut stage_names, &s.name);
        }
        for p in &pairs {
            push_unique(&mut stage_names, &p.active.stage);
            push_unique(&mut stage_names, &p.preview.stage);
        }
        let stages = buckets(&pairs, &stage_names, |s| s.stage.clone());
        let grade_of = |s: &Score| s.grade.clone().unwrap_or_else(|| "none".to_owned());
        let mut grade_names: Vec<String> = Vec::new();
        for p in &pairs {
            push_unique(&mut grade_names, &grade_of(&p.active));
            push_unique(&mut grade_names, &grade_of(&p.preview));
        }
        grade_names.sort();
        let grades = buckets(&pairs, &grade_names, grade_of);

        let mut moved: BTreeMap<(String, String), usize> = BTreeMap::new();
        for p in pairs.iter().filter(|p| p.active.stage != p.preview.stage) {
            *moved.entry((p.active.stage.clone(), p.preview.stage.clone())).or_default() += 1;
        }
        let mut moves: Vec<StageMove> =
            moved.into_iter().map(|((from, to), leads)| StageMove { from, to, leads }).collect();
        moves.sort_by(|a, b| b.leads.cmp(&a.leads).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));

        let diff = diff_models(&active.source, &row.source).map_err(|e| ServiceError::internal("model diff", &e))?;
        let backtest = match backtest {
            Some(gap) => Some(BacktestPair {
                active: self.backtest_report(model, as_of, gap)?,
                preview: self.backtest_report(&preview, as_of, gap)?,
            }),
            None => None,
        };
        Ok(ModelPreview {
            version,
            name: preview.name.clone(),
            active_version: active.version,
            active_name: model.name.clone(),
            as_of: time::format_timestamp(as_of),
            leads: pairs.len(),
            dimensions,
            stages,
            grades,
            moves,
            diff,
            backtest,
            warnings,
        })
    }
}
