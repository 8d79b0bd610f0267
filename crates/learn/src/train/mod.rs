//! Scorecard training (`leadscore train`): from a table of traits (and behaviour counts) with a
//! converted/not label to an ordinary model file whose rules carry learned points.
//!
//! First the [`leakage`] guard leaves out columns that predict the label almost alone (values
//! filled in after the outcome), naming them with the evidence. Then, once per cross-validation
//! fold and once on all rows, one of two learners:
//! - **boosted** (the default, [`boost`]): each column's shape function over fine bins, learned
//!   by cyclic gradient boosting with early stopping and averaged over bags, then pairs of columns
//!   chosen by their residual gain and boosted on top (as EBM does); bins merged into one rule
//!   per segment (a pair: one rule per merged cell);
//! - **logistic**: [`features`] cut numeric traits into quantile bins merged until neighbours
//!   differ, group categories, cut event counts into "at least n" thresholds; [`logistic`] fits
//!   an L2-regularised logistic regression on those indicators (IRLS, our own); [`interactions`]
//!   adds a few conjunctions chosen by a score test on the residuals, refitted.
//!
//! Either way [`scorecard`] writes the points (by default 20 points double the odds, one decimal)
//! as rules, with a calibration `p = 1 / (1 + e^-(intercept + slope × total))`. Missing values and
//! categories never seen in training score 0 points.
//!
//! Pure computation: no files, no clock. Cross-validation folds run on scoped threads.

mod boost;
mod features;
mod folds;
mod interactions;
mod leakage;
mod logistic;
mod scorecard;

pub use boost::Boosting;
pub use features::Binning;
pub use folds::{Lcg, fold_ids};
pub use leakage::{Guard, Leak};
pub use scorecard::{Factor, LearnedRule};

use features::{Condition, Prepared};
use leadscore_core::model::Calibration;
use logistic::{Fit, fit_logistic, sigmoid};

use crate::metrics::{ReliabilityBin, expected_calibration_error, log_loss, reliability, roc_auc};

/// One input column, aligned with the labels.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub source: Source,
    pub values: Values,
}

/// Where a column comes from, which decides the kind of rule it becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A trait: numeric bins become `if` range conditions, categories `==`/`in` conditions.
    Trait,
    /// How many events matched `on` (a CEL condition on `event`) in the `within_days` days before
    /// the scoring time: becomes count rules (`at_least`, `within`). `label` names it in rules.
    EventCount { on: String, label: String, within_days: u32 },
}

#[derive(Debug, Clone)]
pub enum Values {
    /// Raw cells (`None`: missing); a column is numeric when every present cell is a number.
    Text(Vec<Option<String>>),
    Number(Vec<Option<f64>>),
}

/// How the points are learned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Boosted additive shape functions per column and a few pairs (the default; [`Boosting`]).
    #[default]
    Boosted,
    /// Binned indicators in one L2-regularised logistic regression, with interaction rules.
    Logistic,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub algorithm: Algorithm,
    /// The boosted learner's settings.
    pub boosting: Boosting,
    pub folds: usize,
    pub seed: u64,
    /// L2 penalty on each rule's weight (log-odds); `None` chooses it by inner cross-validation.
    pub lambda: Option<f64>,
    /// The logistic learner: at most this many learned interaction rules (the boosted one has
    /// [`Boosting::interactions`] pairs).
    pub interactions: usize,
    /// Points that double the odds.
    pub points_to_double: f64,
    pub binning: Binning,
    /// `[model] name`.
    pub name: String,
    /// What it was trained on; the cross-validation figures are appended.
    pub description: String,
    /// The leakage guard (`None`: off).
    pub guard: Option<Guard>,
    /// Columns the guard flags that are used all the same.
    pub allow_leaky: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            algorithm: Algorithm::default(),
            boosting: Boosting::default(),
            folds: 5,
            seed: 42,
            lambda: None,
            interactions: 12,
            points_to_double: 20.0,
            binning: Binning::default(),
            name: "predicted".into(),
            description: String::new(),
            guard: Some(Guard::default()),
            allow_leaky: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("no labelled rows to learn from")]
    NoRows,
    #[error("every labelled row is {0}: training needs both converted and non-converted leads")]
    SingleClass(&'static str),
    #[error("only {positives} converted and {negatives} non-converted rows: need at least 2 of each")]
    TooFew { positives: usize, negatives: usize },
    #[error("no usable feature columns (every column was excluded, constant, id-like or leaky)")]
    NoFeatures,
    #[error("column `{0}` has {1} values for {2} labels")]
    Length(String, usize, usize),
}

/// Cross-validated quality.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidation {
    pub folds: usize,
    pub auc: Vec<f64>,
    pub log_loss: Vec<f64>,
    /// Out-of-fold probability of every row.
    pub probabilities: Vec<f64>,
    pub fold_of_row: Vec<usize>,
    /// The reliability diagram of the out-of-fold probabilities ([`RELIABILITY_BINS`] bins).
    pub reliability: Vec<ReliabilityBin>,
}

/// Equal-count bins of the cross-validation's reliability diagram.
pub const RELIABILITY_BINS: usize = 10;

impl CrossValidation {
    pub fn auc_mean(&self) -> f64 {
        mean(&self.auc)
    }
    pub fn auc_sd(&self) -> f64 {
        sd(&self.auc)
    }
    pub fn log_loss_mean(&self) -> f64 {
        mean(&self.log_loss)
    }
    pub fn log_loss_sd(&self) -> f64 {
        sd(&self.log_loss)
    }
    /// The expected calibration error of the out-of-fold probabilities.
    pub fn calibration_error(&self) -> f64 {
        expected_calibration_error(&self.reliability)
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The model file (TOML).
    pub model: String,
    pub rules: Vec<LearnedRule>,
    pub factors: Vec<Factor>,
    pub intercept: f64,
    pub slope: f64,
    pub lambda: f64,
    pub cv: CrossValidation,
    /// Training rows and converted rows.
    pub rows: usize,
    pub positives: usize,
    /// Columns used as features.
    pub columns_used: Vec<String>,
    /// Columns skipped and other notes.
    pub warnings: Vec<String>,
    /// Columns the leakage guard flagged (left out unless allowed).
    pub leaky: Vec<Leak>,
    /// The final scorecard's total for every training row (in-sample).
    pub totals: Vec<f64>,
}

impl Trained {
    /// The final scorecard's probability for training row `row` (in-sample), with the current
    /// calibration.
    pub fn fitted(&self, row: usize) -> f64 {
        sigmoid(self.intercept + self.slope * self.totals[row])
    }

    /// Replaces the calibration, its numbers and the model file's `[calibration]` (the last table
    /// [`train`] writes), with a comment line above it saying how it was fitted.
    pub fn recalibrate(&mut self, calibration: Calibration, comment: &str) {
        let end = self.model.rfind("\n[calibration]\n").map_or(self.model.len(), |at| at + 1);
        self.model.truncate(end);
        self.model.push_str(&scorecard::calibration_table(calibration.intercept, calibration.slope, Some(comment)));
        self.intercept = calibration.intercept;
        self.slope = calibration.slope;
    }
}

/// A fitted pipeline: conditions, rounded points and calibration.
#[derive(Debug, Clone)]
pub(crate) struct Card {
    pub conditions: Vec<Condition>,
    pub points: Vec<f64>,
    pub intercept: f64,
    pub slope: f64,
    pub lambda: f64,
}

impl Card {
    fn total(&self, columns: &[Prepared], row: usize) -> f64 {
        self.conditions.iter().zip(&self.points).filter(|(c, _)| c.holds(columns, row)).map(|(_, p)| p).sum()
    }

    fn probability(&self, columns: &[Prepared], row: usize) -> f64 {
        sigmoid(self.intercept + self.slope * self.total(columns, row))
    }
}

/// Trains a scorecard on `columns` (each aligned with `labels`) and cross-validates it.
pub fn train(columns: &[Column], labels: &[bool], options: &Options) -> Result<Trained, TrainError> {
    if labels.is_empty() {
        return Err(TrainError::NoRows);
    }
    for column in columns {
        let len = match &column.values {
            Values::Text(v) => v.len(),
            Values::Number(v) => v.len(),
        };
        if len != labels.len() {
            return Err(TrainError::Length(column.name.clone(), len, labels.len()));
        }
    }
    let positives = labels.iter().filter(|&&y| y).count();
    let negatives = labels.len() - positives;
    if positives == 0 {
        return Err(TrainError::SingleClass("not converted"));
    }
    if negatives == 0 {
        return Err(TrainError::SingleClass("converted"));
    }
    if positives < 2 || negatives < 2 {
        return Err(TrainError::TooFew { positives, negatives });
    }
    let mut warnings = Vec::new();
    let mut prepared = features::prepare(columns, &mut warnings);
    let leaky = match &options.guard {
        Some(guard) => leakage::leaky_columns(&prepared, labels, guard),
        None => Vec::new(),
    };
    for leak in &leaky {
        if options.allow_leaky.iter().any(|c| c == &leak.column) {
            warnings.push(format!("column `{}` looks leaky ({}); used as asked", leak.column, leak.evidence()));
        } else {
            warnings.push(format!(
                "column `{}` looks leaky: it predicts the label almost alone, as a value filled in after the outcome \
                 does ({}); left out (--allow-leaky {} keeps it)",
                leak.column,
                leak.evidence(),
                leak.column
            ));
            prepared.retain(|p| p.name != leak.column);
        }
    }
    if prepared.is_empty() {
        return Err(TrainError::NoFeatures);
    }
    let folds = options.folds.clamp(2, positives.min(negatives));
    if folds != options.folds {
        warnings.push(format!(
            "using {folds} cross-validation folds instead of {}: too few rows of one class",
            options.folds
        ));
    }
    let fold_of_row = fold_ids(labels, folds, options.seed);
    let results: Vec<(Vec<usize>, Vec<f64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..folds)
            .map(|fold| {
                let prepared = &prepared;
                let fold_of_row = &fold_of_row;
                scope.spawn(move || {
                    let train: Vec<usize> = (0..labels.len()).filter(|&r| fold_of_row[r] != fold).collect();
                    let test: Vec<usize> = (0..labels.len()).filter(|&r| fold_of_row[r] == fold).collect();
                    let card = fit_card(prepared, &train, labels, options);
                    let p: Vec<f64> = test.iter().map(|&r| card.probability(prepared, r)).collect();
                    (test, p)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| (Vec::new(), Vec::new()))).collect()
    });
    let mut probabilities = vec![0.5; labels.len()];
    let mut aucs = Vec::new();
    let mut losses = Vec::new();
    for (test, p) in &results {
        let y: Vec<bool> = test.iter().map(|&r| labels[r]).collect();
        for (&r, &pr) in test.iter().zip(p) {
            probabilities[r] = pr;
        }
        if let Some(auc) = roc_auc(p, &y) {
            aucs.push(auc);
        }
        losses.push(log_loss(p, &y));
    }
    let reliability = reliability(&probabilities, labels, RELIABILITY_BINS);
    let cv = CrossValidation { folds, auc: aucs, log_loss: losses, probabilities, fold_of_row, reliability };

    let all: Vec<usize> = (0..labels.len()).collect();
    let card = fit_card(&prepared, &all, labels, options);
    let totals: Vec<f64> = all.iter().map(|&r| card.total(&prepared, r)).collect();
    let written = scorecard::write(&card, &prepared, labels, &cv, options, positives);
    Ok(Trained {
        model: written.model,
        rules: written.rules,
        factors: written.factors,
        intercept: card.intercept,
        slope: card.slope,
        lambda: card.lambda,
        cv,
        rows: labels.len(),
        positives,
        columns_used: prepared.iter().map(|p| p.name.clone()).collect(),
        warnings,
        leaky,
        totals,
    })
}

/// The active features of each row.
fn encode(conditions: &[Condition], columns: &[Prepared], rows: &[usize]) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|&r| conditions.iter().enumerate().filter(|(_, c)| c.holds(columns, r)).map(|(j, _)| j as u32).collect())
        .collect()
}

/// Fits a regularised logistic regression, choosing λ by inner cross-validation unless given.
fn fit_with_lambda(active: &[Vec<u32>], labels: &[bool], features: usize, options: &Options) -> (Fit, f64) {
    let rows: Vec<&[u32]> = active.iter().map(Vec::as_slice).collect();
    let lambda = match options.lambda {
        Some(lambda) => lambda,
        None => choose_lambda(&rows, labels, features, options.seed),
    };
    (fit_logistic(&rows, labels, features, lambda, None), lambda)
}

/// The λ of a small grid with the lowest 3-fold log-loss (ties: the larger λ).
fn choose_lambda(rows: &[&[u32]], labels: &[bool], features: usize, seed: u64) -> f64 {
    const GRID: [f64; 5] = [30.0, 10.0, 3.0, 1.0, 0.3];
    let k = 3.min(labels.iter().filter(|&&y| y).count()).min(labels.iter().filter(|&&y| !y).count());
    if k < 2 {
        return 3.0;
    }
    let folds = fold_ids(labels, k, seed ^ 0x5eed);
    let mut losses = [0.0; GRID.len()];
    for fold in 0..k {
        let train_rows: Vec<&[u32]> = (0..rows.len()).filter(|&r| folds[r] != fold).map(|r| rows[r]).collect();
        let train_labels: Vec<bool> = (0..rows.len()).filter(|&r| folds[r] != fold).map(|r| labels[r]).collect();
        let mut start: Option<Fit> = None;
        for (g, &lambda) in GRID.iter().enumerate() {
            let fit = fit_logistic(&train_rows, &train_labels, features, lambda, start.as_ref());
            for r in (0..rows.len()).filter(|&r| folds[r] == fold) {
                let p = sigmoid(fit.logit(rows[r])).clamp(1e-15, 1.0 - 1e-15);
                losses[g] -= if labels[r] { p.ln() } else { (1.0 - p).ln() };
            }
            start = Some(fit);
        }
    }
    let mut best = 0;
    for g in 1..GRID.len() {
        if losses[g] < losses[best] - 1e-9 {
            best = g;
        }
    }
    GRID[best]
}

/// The card learned on `rows` with the chosen algorithm.
fn fit_card(columns: &[Prepared], rows: &[usize], all_labels: &[bool], options: &Options) -> Card {
    match options.algorithm {
        Algorithm::Boosted => {
            boost::fit_boosted(columns, rows, all_labels, &options.boosting, options.points_to_double, options.seed)
        }
        Algorithm::Logistic => fit_logistic_card(columns, rows, all_labels, options),
    }
}

/// The logistic pipeline on `rows`: binning, fit, interactions, refit, points.
fn fit_logistic_card(columns: &[Prepared], rows: &[usize], all_labels: &[bool], options: &Options) -> Card {
    let labels: Vec<bool> = rows.iter().map(|&r| all_labels[r]).collect();
    let mut conditions = features::bin_columns(columns, rows, all_labels, &options.binning);
    let mut active = encode(&conditions, columns, rows);
    let (mut fit, lambda) = fit_with_lambda(&active, &labels, conditions.len(), options);
    if options.interactions > 0 {
        let is_count: Vec<bool> =
            conditions.iter().map(|c| c.columns().iter().any(|&col| columns[col].source != Source::Trait)).collect();
        let min_rows = (0.02 * rows.len() as f64).max(options.binning.min_rows as f64);
        let limits = interactions::Limits { min_rows, min_z: 3.0, max_pairs: options.interactions };
        let pairs = interactions::select_pairs(&active, &labels, &fit, &conditions, &is_count, &limits);
        if !pairs.is_empty() {
            let first_new = conditions.len();
            for &(a, b) in &pairs {
                // A trait and a count: the trait's condition first (a count rule of leads with
                // the trait).
                let (a, b) = if is_count[a] { (b, a) } else { (a, b) };
                conditions.push(Condition::Both(Box::new(conditions[a].clone()), Box::new(conditions[b].clone())));
            }
            for (row, &r) in active.iter_mut().zip(rows) {
                for (k, condition) in conditions[first_new..].iter().enumerate() {
                    if condition.holds(columns, r) {
                        row.push((first_new + k) as u32);
                    }
                }
            }
            // Refit with the same λ, starting from the main effects.
            let mut start = fit.clone();
            start.weights.resize(conditions.len(), 0.0);
            let rows_active: Vec<&[u32]> = active.iter().map(Vec::as_slice).collect();
            fit = fit_logistic(&rows_active, &labels, conditions.len(), lambda, Some(&start));
        }
    }
    let scale = options.points_to_double / std::f64::consts::LN_2;
    let points: Vec<f64> = fit.weights.iter().map(|w| (w * scale * 10.0).round() / 10.0).collect();
    Card { conditions, points, intercept: fit.intercept, slope: 1.0 / scale, lambda }
}

#[cfg(test)]
mod tests;
