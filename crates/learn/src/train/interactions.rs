//! Learned interaction rules, RuleFit-style but selected by a score test: after the main-effect
//! fit, every pair of active features from two different columns, not both event counts (a count
//! rule counts one kind of event), is a candidate conjunction;
//! the candidates whose residuals `Σ (y − p)` are largest relative to their standard error
//! `√Σ p(1 − p)` (and that cover enough rows) enter the same regularised fit as extra rules.

use std::collections::HashMap;

use super::features::Condition;
use super::logistic::{Fit, sigmoid};

/// Which conjunctions qualify.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Rows it must hold for (and not hold for).
    pub min_rows: f64,
    /// The score-test statistic it must reach.
    pub min_z: f64,
    pub max_pairs: usize,
}

/// Up to `max_pairs` pairs `(a, b)` of feature indices, strongest first.
pub(crate) fn select_pairs(
    active: &[Vec<u32>],
    labels: &[bool],
    fit: &Fit,
    features: &[Condition],
    is_count: &[bool],
    limits: &Limits,
) -> Vec<(usize, usize)> {
    let Limits { min_rows, min_z, max_pairs } = *limits;
    // (Σ residual, Σ variance, rows) per pair.
    let mut sums: HashMap<(u32, u32), (f64, f64, f64)> = HashMap::new();
    for (row, &y) in active.iter().zip(labels) {
        let p = sigmoid(fit.logit(row));
        let r = f64::from(u8::from(y)) - p;
        let v = p * (1.0 - p);
        for (i, &a) in row.iter().enumerate() {
            for &b in &row[i + 1..] {
                if is_count[a as usize] && is_count[b as usize] {
                    continue;
                }
                let entry = sums.entry((a.min(b), a.max(b))).or_insert((0.0, 0.0, 0.0));
                entry.0 += r;
                entry.1 += v;
                entry.2 += 1.0;
            }
        }
    }
    let total = active.len() as f64;
    let mut candidates: Vec<((u32, u32), f64)> = sums
        .into_iter()
        .filter(|(_, (_, _, n))| *n >= min_rows && total - *n >= min_rows)
        .map(|(pair, (r, v, _))| (pair, r.abs() / (v + 1e-9).sqrt()))
        .filter(|(_, z)| *z >= min_z)
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    let mut chosen_rows: Vec<Vec<bool>> = Vec::new();
    let mut column_pairs: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for ((a, b), _) in candidates {
        if chosen.len() >= max_pairs {
            break;
        }
        let (ca, cb) = (features[a as usize].columns(), features[b as usize].columns());
        if ca.iter().any(|c| cb.contains(c)) {
            continue;
        }
        // At most one conjunction per pair of columns keeps the rules few and readable.
        if column_pairs.iter().any(|(x, y)| (x == &ca && y == &cb) || (x == &cb && y == &ca)) {
            continue;
        }
        // Skip a conjunction that holds for nearly the same rows as one already chosen (e.g. "no
        // visits" and "no time on site").
        let holds: Vec<bool> = active.iter().map(|row| row.contains(&a) && row.contains(&b)).collect();
        if chosen_rows.iter().any(|other| overlap(other, &holds) > 0.8) {
            continue;
        }
        chosen_rows.push(holds);
        column_pairs.push((ca, cb));
        chosen.push((a as usize, b as usize));
    }
    chosen
}

/// Jaccard overlap of two row sets.
fn overlap(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    both as f64 / either.max(1) as f64
}
