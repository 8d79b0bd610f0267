//! Boosted additive scorecards (the default learner): each column's effect is a shape function
//! over fine bins, learned by cyclic gradient boosting (one column at a time, round-robin, a small
//! learning rate, each step a split of the column's ordered bins into at most three leaves), with
//! early stopping on an inner validation split and several outer bags averaged, as EBM
//! (InterpretML's explainable boosting machine) does. Then a few pairs of columns, chosen by the
//! gain of their best quadrant split on the residual (EBM's FAST), are boosted the same way on top
//! of the columns' effects. The result is a [`Card`]: each column's bins merged where neighbouring
//! points differ little, one rule per merged segment (a pair: one rule per cell), points on the
//! 20-per-doubling scale, and the calibration of the rounded card.
//!
//! A column's missing value is its own bin and, when training has missing values, the 0-point
//! baseline of the column (so is a category never seen in training); otherwise the baseline is the
//! column's most common segment.

use rayon::prelude::*;

use super::features::{Condition, Kind, Prepared};
use super::folds::fold_ids;
use super::logistic::sigmoid;
use super::{Card, Source};

/// Booster settings.
#[derive(Debug, Clone)]
pub struct Boosting {
    pub learning_rate: f64,
    pub max_rounds: usize,
    /// The first rounds cut each column at a random place instead of the best one (as EBM's
    /// smoothing rounds): shapes start out smooth instead of chasing the first strong bins.
    pub smoothing_rounds: usize,
    /// Rounds without a better validation loss before stopping.
    pub patience: usize,
    pub bags: usize,
    /// Fine bins of a numeric column (quantiles of the training rows).
    pub max_bins: usize,
    /// A category needs this many training rows for a bin of its own (else it is pooled).
    pub min_level_rows: usize,
    /// Each leaf of a step needs this many rows.
    pub min_leaf_rows: usize,
    /// L2 on each leaf's value (in hessian units).
    pub l2: f64,
    /// The share of each bag's rows held out for early stopping.
    pub validation: f64,
    /// Pairs of columns boosted after the columns' own effects.
    pub interactions: usize,
    /// Coarse bins per column of a pair.
    pub pair_bins: usize,
    /// A pair is boosted only if its best quadrant split on the residual gains this much (a score
    /// statistic, about χ² with 3 degrees of freedom; high, as it is the best of many cuts).
    pub min_pair_gain: f64,
    /// A column takes a step only when the best split of its bins gains this much (the score
    /// statistic of the split, as `min_pair_gain`): columns without signal stay flat instead of
    /// fitting noise while the strong ones are still learning.
    pub min_step_gain: f64,
    /// Neighbouring segments whose points differ by less than this merge.
    pub merge_points: f64,
    /// A column's segment with fewer training rows merges into its closer neighbour.
    pub min_segment_rows: usize,
}

impl Default for Boosting {
    fn default() -> Self {
        Boosting {
            learning_rate: 0.05,
            max_rounds: 2000,
            smoothing_rounds: 50,
            patience: 40,
            bags: 8,
            max_bins: 256,
            min_level_rows: 10,
            min_leaf_rows: 5,
            l2: 1.0,
            validation: 0.15,
            interactions: 30,
            pair_bins: 12,
            min_pair_gain: 10.0,
            min_step_gain: 2.0,
            merge_points: 1.0,
            min_segment_rows: 20,
        }
    }
}

/// What a bin of a column stands for.
#[derive(Debug, Clone, PartialEq)]
enum Bins {
    /// Bin 0: missing; bin k ≥ 1: `cuts[k-2] <= x < cuts[k-1]` (open at the ends).
    Numeric { cuts: Vec<f64> },
    /// Bin 0: missing; bin k ≥ 1: one of `codes[k-1]` (rare categories pooled in one bin).
    Categorical { codes: Vec<Vec<u32>> },
}

/// A column cut into fine bins, with each training row's bin.
struct Binned {
    column: usize,
    bins: Bins,
    count: usize,
    /// By position in the training rows.
    of_row: Vec<u16>,
}

fn bin_numeric(values: &[Option<f64>], rows: &[usize], max_bins: usize) -> (Bins, Vec<u16>) {
    let mut present: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
    present.sort_by(f64::total_cmp);
    present.dedup();
    let cuts: Vec<f64> = if present.len() <= max_bins {
        present.iter().skip(1).copied().collect()
    } else {
        let mut all: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
        all.sort_by(f64::total_cmp);
        let mut cuts: Vec<f64> = (1..max_bins).map(|i| all[i * all.len() / max_bins]).collect();
        cuts.dedup();
        cuts.retain(|&c| c > all[0]);
        cuts
    };
    let of_row = rows
        .iter()
        .map(|&r| match values[r] {
            None => 0,
            Some(x) => (1 + cuts.partition_point(|&c| c <= x)) as u16,
        })
        .collect();
    (Bins::Numeric { cuts }, of_row)
}

fn bin_categorical(codes: &[Option<u32>], levels: usize, rows: &[usize], min_rows: usize) -> (Bins, Vec<u16>) {
    let mut counts = vec![0usize; levels];
    for &r in rows {
        if let Some(c) = codes[r] {
            counts[c as usize] += 1;
        }
    }
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut rare: Vec<u32> = Vec::new();
    let mut bin_of_code = vec![u16::MAX; levels];
    for (code, &n) in counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if n >= min_rows {
            groups.push(vec![code as u32]);
            bin_of_code[code] = groups.len() as u16;
        } else {
            rare.push(code as u32);
        }
    }
    if !rare.is_empty() {
        groups.push(rare.clone());
        for &code in &rare {
            bin_of_code[code as usize] = groups.len() as u16;
        }
    }
    let of_row = rows.iter().map(|&r| codes[r].map_or(0, |c| bin_of_code[c as usize])).collect();
    (Bins::Categorical { codes: groups }, of_row)
}

fn bin_columns(columns: &[Prepared], rows: &[usize], options: &Boosting) -> Vec<Binned> {
    columns
        .iter()
        .enumerate()
        .map(|(column, prepared)| {
            let (bins, of_row) = match &prepared.kind {
                Kind::Numeric(values) => bin_numeric(values, rows, options.max_bins),
                Kind::Categorical { levels, codes } => {
                    bin_categorical(codes, levels.len(), rows, options.min_level_rows)
                }
            };
            let count = match &bins {
                Bins::Numeric { cuts } => cuts.len() + 2,
                Bins::Categorical { codes } => codes.len() + 1,
            };
            Binned { column, bins, count, of_row }
        })
        .collect()
}

/// Gradient and hessian sums per bin, with row counts.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: usize,
}

impl Sums {
    fn plus(self, other: Sums) -> Sums {
        Sums { g: self.g + other.g, h: self.h + other.h, n: self.n + other.n }
    }

    fn minus(self, other: Sums) -> Sums {
        Sums { g: self.g - other.g, h: self.h - other.h, n: self.n - other.n }
    }
}

/// The best cut of `order` (bins in the order a split may cut) into two leaves of at least
/// `min_rows` rows each, as EBM's default one cut per step (two cuts per step fitted noise on
/// columns with many weak values, such as event counts): the cut (the first position of the
/// right leaf), each side's Newton value and the gain, or `None` when no cut gains.
fn best_split(sums: &[Sums], order: &[usize], min_rows: usize, l2: f64) -> Option<(usize, [f64; 2], f64)> {
    let total = order.iter().fold(Sums::default(), |t, &b| t.plus(sums[b]));
    let score = |s: Sums| s.g * s.g / (s.h + l2);
    let whole = score(total);
    let mut left = Sums::default();
    let mut best: Option<(f64, usize, Sums)> = None;
    for cut in 1..order.len() {
        left = left.plus(sums[order[cut - 1]]);
        let right = total.minus(left);
        if left.n < min_rows || right.n < min_rows {
            continue;
        }
        let gain = score(left) + score(right) - whole;
        if gain > 1e-12 && best.is_none_or(|(g, ..)| gain > g) {
            best = Some((gain, cut, left));
        }
    }
    let (gain, cut, left) = best?;
    let right = total.minus(left);
    Some((cut, [left.g / (left.h + l2), right.g / (right.h + l2)], gain))
}

/// A split of `order` at one random cut (the smoothing rounds: shapes start out smooth instead
/// of chasing the first strong bins), each side moved by its Newton step: the cut and the values.
fn random_split(
    sums: &[Sums],
    order: &[usize],
    min_rows: usize,
    l2: f64,
    rng: &mut super::folds::Lcg,
) -> Option<(usize, [f64; 2])> {
    let k = order.len();
    if k < 2 {
        return None;
    }
    let cut = 1 + (rng.next_value() as usize) % (k - 1);
    let side = |range: std::ops::Range<usize>| range.fold(Sums::default(), |t, p| t.plus(sums[order[p]]));
    let (left, right) = (side(0..cut), side(cut..k));
    if left.n < min_rows || right.n < min_rows {
        return None;
    }
    Some((cut, [left.g / (left.h + l2), right.g / (right.h + l2)]))
}

/// The order a step may cut a column's bins in: numeric bins in value order (missing first),
/// categories by their current gradient ratio.
fn order_of(binned: &Binned, sums: &[Sums]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..binned.count).filter(|&b| sums[b].n > 0).collect();
    if matches!(binned.bins, Bins::Categorical { .. }) {
        order.sort_by(|&a, &b| (sums[a].g / (sums[a].h + 1e-9)).total_cmp(&(sums[b].g / (sums[b].h + 1e-9))));
    }
    order
}

/// Some rows laid out for one bag's boosting: each column's bins and the labels, contiguous, and
/// each row's odds `e^score` (a step multiplies them by `e^delta` of the row's bin: no `exp` per
/// row).
struct Block {
    bins: Vec<Vec<u16>>,
    /// The labels as 1.0 / 0.0 (the gradient is `y - p`).
    targets: Vec<f64>,
    odds: Vec<f64>,
    /// Per column, the rows in each bin (they do not change while boosting).
    counts: Vec<Vec<usize>>,
    /// Each row's gradient and hessian, at the current odds when `fresh`.
    gradients: Vec<f64>,
    hessians: Vec<f64>,
    fresh: bool,
    /// Per-bin sums in [`LANES`] interleaved copies (scratch of [`Block::sums`]).
    lanes: Vec<[f64; 2]>,
}

/// Interleaved partial sums per bin in [`Block::sums`]: consecutive rows add to different copies,
/// so a run of rows in one bin is not one long chain of dependent adds.
const LANES: usize = 4;

impl Block {
    fn new(binned: &[Binned], labels: &[bool], rows: &[usize], base: f64) -> Block {
        Block::of(
            binned.iter().map(|f| rows.iter().map(|&i| f.of_row[i]).collect()).collect(),
            rows.iter().map(|&i| labels[i]).collect(),
            vec![base.exp(); rows.len()],
        )
    }

    fn of(bins: Vec<Vec<u16>>, labels: Vec<bool>, odds: Vec<f64>) -> Block {
        let counts = bins
            .iter()
            .map(|column| {
                let mut counts = vec![0usize; column.iter().map(|&b| b as usize + 1).max().unwrap_or(0)];
                for &b in column {
                    counts[b as usize] += 1;
                }
                counts
            })
            .collect();
        let targets = labels.iter().map(|&y| if y { 1.0 } else { 0.0 }).collect();
        let n = odds.len();
        Block {
            bins,
            targets,
            odds,
            counts,
            gradients: vec![0.0; n],
            hessians: vec![0.0; n],
            fresh: false,
            lanes: Vec::new(),
        }
    }

    /// Multiplies every row's odds by `factor[bin]` of its bin of column `f`.
    fn apply(&mut self, f: usize, factor: &[f64]) {
        for (odds, &bin) in self.odds.iter_mut().zip(&self.bins[f]) {
            *odds *= factor[bin as usize];
        }
        self.fresh = false;
    }

    /// The gradient sums of column `f` at the current odds.
    fn sums(&mut self, f: usize, sums: &mut [Sums]) {
        if !self.fresh {
            let rows = self.odds.iter().zip(&self.targets).zip(self.gradients.iter_mut().zip(self.hessians.iter_mut()));
            for ((&odds, &y), (gradient, hessian)) in rows {
                let r = 1.0 / (1.0 + odds);
                let p = odds * r;
                *gradient = y - p;
                *hessian = p * r;
            }
            self.fresh = true;
        }
        self.add_up(f, sums);
    }

    /// The rows' gradients and hessians summed per bin of column `f`.
    fn add_up(&mut self, f: usize, sums: &mut [Sums]) {
        self.lanes.clear();
        self.lanes.resize(sums.len() * LANES, [0.0; 2]);
        let bins = &self.bins[f];
        let lanes = &mut self.lanes;
        let chunks =
            bins.chunks_exact(LANES).zip(self.gradients.chunks_exact(LANES)).zip(self.hessians.chunks_exact(LANES));
        for ((bins, gradients), hessians) in chunks {
            for lane in 0..LANES {
                let slot = &mut lanes[bins[lane] as usize * LANES + lane];
                slot[0] += gradients[lane];
                slot[1] += hessians[lane];
            }
        }
        let done = bins.len() - bins.len() % LANES;
        for i in done..bins.len() {
            let slot = &mut lanes[bins[i] as usize * LANES + i % LANES];
            slot[0] += self.gradients[i];
            slot[1] += self.hessians[i];
        }
        for (b, s) in sums.iter_mut().enumerate() {
            let lanes = &self.lanes[b * LANES..(b + 1) * LANES];
            *s = Sums {
                g: lanes.iter().map(|l| l[0]).sum(),
                h: lanes.iter().map(|l| l[1]).sum(),
                n: self.counts[f].get(b).copied().unwrap_or(0),
            };
        }
    }

    fn log_loss(&self) -> f64 {
        let mut loss = 0.0;
        for (&odds, &y) in self.odds.iter().zip(&self.targets) {
            // -ln p = ln(1 + 1/odds), -ln(1 - p) = ln(1 + odds)
            loss += if y == 1.0 { (1.0 / odds).ln_1p() } else { odds.ln_1p() };
        }
        loss / self.odds.len().max(1) as f64
    }
}

/// Cyclic boosting of the terms (the columns of `train` and `check`, each with `sizes[t]` bins):
/// round after round, each term in turn takes the step `step(term, round, sums, delta)` writes
/// into `delta` (log-odds per bin, from the term's gradient sums), until `check`'s log-loss has
/// not improved for `patience` rounds. Returns each term's summed steps at the best round.
fn cycle(
    mut train: Block,
    mut check: Block,
    sizes: &[usize],
    options: &Boosting,
    mut step: impl FnMut(usize, usize, &[Sums], &mut [f64]),
) -> Vec<Vec<f64>> {
    let terms = sizes.len();
    let mut values: Vec<Vec<f64>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
    let mut best = (check.log_loss(), values.clone());
    let mut since_best = 0;
    let mut sums: Vec<Vec<Sums>> = sizes.iter().map(|&n| vec![Sums::default(); n]).collect();
    let (mut delta, mut factor): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    if terms > 0 {
        train.sums(0, &mut sums[0]);
    }
    for round in 0..options.max_rounds {
        for t in 0..terms {
            delta.clear();
            delta.resize(sizes[t], 0.0);
            step(t, round, &sums[t], &mut delta);
            for (value, d) in values[t].iter_mut().zip(&delta) {
                *value += d;
            }
            // A step that moved nothing leaves the odds, and the rows' gradients, as they are.
            if delta.iter().any(|&d| d != 0.0) {
                factor.clear();
                factor.extend(delta.iter().map(|d| d.exp()));
                train.apply(t, &factor);
                check.apply(t, &factor);
            }
            let next = (t + 1) % terms;
            train.sums(next, &mut sums[next]);
        }
        let loss = check.log_loss();
        if loss < best.0 - 1e-7 {
            best = (loss, values.clone());
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= options.patience {
                break;
            }
        }
    }
    best.1
}

/// One bag's boosting of the columns' shape functions on its `fit` rows, stopped early on its
/// `valid` rows (positions in the training rows). Returns each column's shape (log-odds per bin)
/// at the round with the best validation loss.
fn boost_mains(
    binned: &[Binned],
    labels: &[bool],
    base: f64,
    fit: &[usize],
    valid: &[usize],
    options: &Boosting,
    seed: u64,
) -> Vec<Vec<f64>> {
    let train = Block::new(binned, labels, fit, base);
    let check = Block::new(binned, labels, valid, base);
    let sizes: Vec<usize> = binned.iter().map(|b| b.count).collect();
    let mut rng = super::folds::Lcg::new(seed);
    cycle(train, check, &sizes, options, |f, round, sums, delta| {
        let order = order_of(&binned[f], sums);
        let best = best_split(sums, &order, options.min_leaf_rows, options.l2)
            .filter(|(_, _, gain)| *gain >= options.min_step_gain);
        let split = match best {
            Some(_) if round < options.smoothing_rounds => {
                random_split(sums, &order, options.min_leaf_rows, options.l2, &mut rng)
            }
            Some((cut, values, _)) => Some((cut, values)),
            None => None,
        };
        if let Some((cut, values)) = split {
            for (position, &b) in order.iter().enumerate() {
                delta[b] = options.learning_rate * values[usize::from(position >= cut)];
            }
        }
    })
}

/// A pair of columns on coarse bins: each column's fine bins grouped into at most `pair_bins`
/// groups of about equal rows (missing apart: rows missing either column have no pair effect).
#[derive(Debug, Clone)]
struct Pair {
    a: usize,
    b: usize,
    /// Coarse group of each fine bin (`u16::MAX`: missing).
    group_a: Vec<u16>,
    group_b: Vec<u16>,
    groups_a: usize,
    groups_b: usize,
}

/// Fine bins grouped into at most `n` groups of about equal training rows, in the order a split
/// may cut them (value order; categories by conversion rate, as counted now).
fn coarse(binned: &Binned, labels: &[bool], n: usize) -> (Vec<u16>, usize) {
    let mut rows = vec![0usize; binned.count];
    let mut positives = vec![0usize; binned.count];
    for (i, &b) in binned.of_row.iter().enumerate() {
        rows[b as usize] += 1;
        positives[b as usize] += usize::from(labels[i]);
    }
    let mut order: Vec<usize> = (1..binned.count).filter(|&b| rows[b] > 0).collect();
    if matches!(binned.bins, Bins::Categorical { .. }) {
        order.sort_by(|&x, &y| {
            let rate = |b: usize| (positives[b] as f64 + 0.5) / (rows[b] as f64 + 1.0);
            rate(x).total_cmp(&rate(y))
        });
    }
    let total: usize = order.iter().map(|&b| rows[b]).sum();
    let mut group = vec![u16::MAX; binned.count];
    let mut current = 0usize;
    let mut filled = 0usize;
    for &b in &order {
        group[b] = current as u16;
        filled += rows[b];
        if filled * n >= total * (current + 1) && current + 1 < n {
            current += 1;
        }
    }
    let used = order.iter().map(|&b| group[b] as usize + 1).max().unwrap_or(0);
    (group, used)
}

impl Pair {
    fn new(binned: &[Binned], a: usize, b: usize, labels: &[bool], n: usize) -> Pair {
        let (group_a, groups_a) = coarse(&binned[a], labels, n);
        let (group_b, groups_b) = coarse(&binned[b], labels, n);
        Pair { a, b, group_a, group_b, groups_a, groups_b }
    }

    /// The cell of training row `i`, if it has one.
    fn cell(&self, binned: &[Binned], i: usize) -> Option<usize> {
        let ga = self.group_a[binned[self.a].of_row[i] as usize];
        let gb = self.group_b[binned[self.b].of_row[i] as usize];
        (ga != u16::MAX && gb != u16::MAX).then(|| ga as usize * self.groups_b + gb as usize)
    }

    fn cells(&self) -> usize {
        self.groups_a * self.groups_b
    }

    /// The best quadrant split of the cells' sums (a cut on each column): each cell's quadrant,
    /// the quadrants' Newton values and the gain. Quadrant sums come from 2-D prefix sums, so
    /// every pair of cuts costs the same.
    fn best_quadrants(&self, sums: &[Sums], min_rows: usize, l2: f64) -> Option<(Vec<u8>, [f64; 4], f64)> {
        let (h, w) = (self.groups_a, self.groups_b);
        // prefix[(x) * (w + 1) + y]: the sums of the cells before row x and column y.
        let mut prefix = vec![Sums::default(); (h + 1) * (w + 1)];
        for x in 0..h {
            for y in 0..w {
                let s = sums[x * w + y];
                let up = prefix[x * (w + 1) + y + 1];
                let left = prefix[(x + 1) * (w + 1) + y];
                let corner = prefix[x * (w + 1) + y];
                prefix[(x + 1) * (w + 1) + y + 1] = Sums {
                    g: s.g + up.g + left.g - corner.g,
                    h: s.h + up.h + left.h - corner.h,
                    n: s.n + up.n + left.n - corner.n,
                };
            }
        }
        let at = |x: usize, y: usize| prefix[x * (w + 1) + y];
        let minus = |a: Sums, b: Sums| Sums { g: a.g - b.g, h: a.h - b.h, n: a.n - b.n };
        let plus = |a: Sums, b: Sums| Sums { g: a.g + b.g, h: a.h + b.h, n: a.n + b.n };
        let score = |s: Sums| s.g * s.g / (s.h + l2);
        let total = at(h, w);
        let mut best: Option<(f64, usize, usize, [Sums; 4])> = None;
        for ca in 1..h {
            for cb in 1..w {
                let low_low = at(ca, cb);
                let low_high = minus(at(ca, w), low_low);
                let high_low = minus(at(h, cb), low_low);
                let high_high = minus(total, plus(plus(low_low, low_high), high_low));
                let q = [low_low, low_high, high_low, high_high];
                if q.iter().any(|s| s.n < min_rows) {
                    continue;
                }
                let gain = q.iter().map(|&s| score(s)).sum::<f64>() - score(total);
                if gain > 1e-12 && best.as_ref().is_none_or(|(g, ..)| gain > *g) {
                    best = Some((gain, ca, cb, q));
                }
            }
        }
        let (gain, ca, cb, q) = best?;
        let quadrant = (0..self.cells())
            .map(|c| {
                let (x, y) = (c / w, c % w);
                (usize::from(x >= ca) * 2 + usize::from(y >= cb)) as u8
            })
            .collect();
        Some((quadrant, q.map(|s| s.g / (s.h + l2)), gain))
    }
}

/// The gradient sums of a pair's cells at `scores`.
fn pair_sums(pair: &Pair, binned: &[Binned], labels: &[bool], scores: &[f64], rows: &[usize]) -> Vec<Sums> {
    let mut sums = vec![Sums::default(); pair.cells()];
    for &i in rows {
        if let Some(c) = pair.cell(binned, i) {
            let p = sigmoid(scores[i]);
            let s = &mut sums[c];
            s.g += if labels[i] { 1.0 - p } else { -p };
            s.h += p * (1.0 - p);
            s.n += 1;
        }
    }
    sums
}

/// Rows laid out for boosting pairs: each pair's cell per row (the pair's `cells()` for a row
/// with no cell: it sums into a spare slot and its factor stays 1), as a [`Block`] of columns.
fn pair_block(pairs: &[Pair], binned: &[Binned], labels: &[bool], rows: &[usize], start: &[f64]) -> Block {
    Block::of(
        pairs
            .iter()
            .map(|pair| rows.iter().map(|&i| pair.cell(binned, i).unwrap_or(pair.cells()) as u16).collect())
            .collect(),
        rows.iter().map(|&i| labels[i]).collect(),
        rows.iter().map(|&i| start[i].exp()).collect(),
    )
}

/// One bag's boosting of the pairs' tables on top of `start` (the columns' effects).
fn boost_pairs(
    pairs: &[Pair],
    binned: &[Binned],
    labels: &[bool],
    start: &[f64],
    fit: &[usize],
    valid: &[usize],
    options: &Boosting,
) -> Vec<Vec<f64>> {
    let train = pair_block(pairs, binned, labels, fit, start);
    let check = pair_block(pairs, binned, labels, valid, start);
    // Each pair's cells, and the spare slot of rows without a cell (never moved).
    let sizes: Vec<usize> = pairs.iter().map(|p| p.cells() + 1).collect();
    let mut tables = cycle(train, check, &sizes, options, |k, _, sums, delta| {
        let cells = &sums[..pairs[k].cells()];
        if let Some((quadrant, values, _)) = pairs[k].best_quadrants(cells, options.min_leaf_rows, options.l2) {
            for (cell, &q) in quadrant.iter().enumerate() {
                delta[cell] = options.learning_rate * values[q as usize];
            }
        }
    });
    for (table, pair) in tables.iter_mut().zip(pairs) {
        table.truncate(pair.cells());
    }
    tables
}

/// The positions (in the training rows) held out for early stopping in bag `bag`.
fn bag_split(labels: &[bool], validation: f64, seed: u64, bag: usize) -> (Vec<usize>, Vec<usize>) {
    let k = (1.0 / validation.clamp(0.05, 0.5)).round().max(2.0) as usize;
    let folds = fold_ids(labels, k, seed ^ (0xb0a5_7000 + bag as u64));
    let valid: Vec<usize> = (0..labels.len()).filter(|&i| folds[i] == 0).collect();
    let fit: Vec<usize> = (0..labels.len()).filter(|&i| folds[i] != 0).collect();
    (fit, valid)
}

/// The learned effects before they become rules.
#[derive(Debug, Clone)]
struct Effects {
    base: f64,
    /// Per column, log-odds per fine bin.
    shapes: Vec<Vec<f64>>,
    pairs: Vec<Pair>,
    /// Per pair, log-odds per cell.
    tables: Vec<Vec<f64>>,
}

fn average(lists: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let n = lists.len().max(1) as f64;
    let Some(first) = lists.first() else { return Vec::new() };
    let mut out: Vec<Vec<f64>> = first.iter().map(|v| vec![0.0; v.len()]).collect();
    for list in lists {
        for (acc, v) in out.iter_mut().zip(list) {
            for (a, x) in acc.iter_mut().zip(v) {
                *a += x / n;
            }
        }
    }
    out
}

/// Learns the columns' shapes, then pairs of columns, except pairs of two event counts (`is_count`):
/// a rule counts events of one kind, so two counts cannot make one rule.
fn learn(binned: &[Binned], is_count: &[bool], labels: &[bool], options: &Boosting, seed: u64) -> Effects {
    let positives = labels.iter().filter(|&&y| y).count() as f64;
    let rate = ((positives + 0.5) / (labels.len() as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
    let base = (rate / (1.0 - rate)).ln();
    let bags: Vec<(Vec<usize>, Vec<usize>)> =
        (0..options.bags.max(1)).map(|bag| bag_split(labels, options.validation, seed, bag)).collect();
    let mains: Vec<Vec<Vec<f64>>> = bags
        .par_iter()
        .enumerate()
        .map(|(bag, (fit, valid))| boost_mains(binned, labels, base, fit, valid, options, seed ^ (0x5300 + bag as u64)))
        .collect();
    let shapes = average(&mains);
    let scores: Vec<f64> = (0..labels.len())
        .map(|i| base + binned.iter().zip(&shapes).map(|(f, s)| s[f.of_row[i] as usize]).sum::<f64>())
        .collect();
    // FAST: every pair's best quadrant split on the residual, strongest first.
    let all: Vec<usize> = (0..labels.len()).collect();
    let candidates: Vec<(usize, usize)> = (0..binned.len())
        .flat_map(|a| ((a + 1)..binned.len()).map(move |b| (a, b)))
        .filter(|&(a, b)| !(is_count[a] && is_count[b]))
        .collect();
    let mut ranked: Vec<(f64, Pair)> = if options.interactions == 0 {
        Vec::new()
    } else {
        candidates
            .par_iter()
            .filter_map(|&(a, b)| {
                let pair = Pair::new(binned, a, b, labels, options.pair_bins);
                let sums = pair_sums(&pair, binned, labels, &scores, &all);
                let min_rows = (labels.len() / 50).max(options.min_leaf_rows);
                let (_, _, gain) = pair.best_quadrants(&sums, min_rows, options.l2)?;
                (gain >= options.min_pair_gain).then_some((gain, pair))
            })
            .collect()
    };
    ranked.sort_by(|x, y| y.0.total_cmp(&x.0));
    let pairs: Vec<Pair> = ranked.into_iter().take(options.interactions).map(|(_, p)| p).collect();
    let tables = if pairs.is_empty() {
        Vec::new()
    } else {
        let per_bag: Vec<Vec<Vec<f64>>> = bags
            .par_iter()
            .map(|(fit, valid)| boost_pairs(&pairs, binned, labels, &scores, fit, valid, options))
            .collect();
        average(&per_bag)
    };
    Effects { base, shapes, pairs, tables }
}

/// A run of fine bins with one value (in points) and the training rows in it.
#[derive(Debug, Clone)]
struct Segment {
    bins: Vec<usize>,
    points: f64,
    rows: usize,
}

/// Merges neighbouring segments (in `segments`' order): first each with fewer than `min_rows`
/// training rows into the neighbour closer in points (the smallest first), so that no rule stands
/// on a handful of leads; then while two differ by less than `threshold` points, the closest pair
/// first. Values are row-weighted means.
fn merge_neighbours(mut segments: Vec<Segment>, threshold: f64, min_rows: usize) -> Vec<Segment> {
    while segments.len() > 1 {
        let Some(i) = (0..segments.len()).filter(|&i| segments[i].rows < min_rows).min_by_key(|&i| segments[i].rows)
        else {
            break;
        };
        let gap = |j: usize| (segments[i].points - segments[j].points).abs();
        let j = if i == 0 {
            1
        } else if i + 1 == segments.len() || gap(i - 1) <= gap(i + 1) {
            i - 1
        } else {
            i + 1
        };
        merge_pair(&mut segments, i.min(j));
    }
    loop {
        let closest = (1..segments.len())
            .map(|i| (i, (segments[i].points - segments[i - 1].points).abs()))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match closest {
            Some((i, gap)) if gap < threshold => merge_pair(&mut segments, i - 1),
            _ => return segments,
        }
    }
}

/// Merges segment `i + 1` into segment `i` (row-weighted points).
fn merge_pair(segments: &mut Vec<Segment>, i: usize) {
    let right = segments.remove(i + 1);
    let left = &mut segments[i];
    let rows = (left.rows + right.rows).max(1);
    left.points = (left.points * left.rows as f64 + right.points * right.rows as f64) / rows as f64;
    left.rows += right.rows;
    left.bins.extend(right.bins);
}

/// The condition a run of non-missing bins of a column stands for.
fn condition_of(binned: &Binned, bins: &[usize]) -> Option<Condition> {
    match &binned.bins {
        Bins::Numeric { cuts } => {
            let lo_bin = *bins.iter().min()?;
            let hi_bin = *bins.iter().max()?;
            let lo = (lo_bin >= 2).then(|| cuts[lo_bin - 2]);
            let hi = (hi_bin <= cuts.len()).then(|| cuts[hi_bin - 1]);
            Some(Condition::Range { column: binned.column, lo, hi })
        }
        Bins::Categorical { codes } => {
            let mut list: Vec<u32> = bins.iter().flat_map(|&b| codes[b - 1].iter().copied()).collect();
            list.sort_unstable();
            Some(Condition::Levels { column: binned.column, codes: list })
        }
    }
}

/// A pair's table in points, with neighbouring rows (and columns) merged while they differ by
/// less than a threshold in every cell: the coarse groups of each merged row and column.
struct Grid {
    values: Vec<f64>,
    rows_of_cell: Vec<usize>,
    width: usize,
    rows: Vec<Vec<usize>>,
    columns: Vec<Vec<usize>>,
}

impl Grid {
    fn new(values: Vec<f64>, rows_of_cell: Vec<usize>, height: usize, width: usize) -> Grid {
        Grid {
            values,
            rows_of_cell,
            width,
            rows: (0..height).map(|x| vec![x]).collect(),
            columns: (0..width).map(|y| vec![y]).collect(),
        }
    }

    /// The row-weighted mean of the cells of merged row `x` and merged column `y`.
    fn value(&self, x: usize, y: usize) -> f64 {
        let (mut sum, mut n) = (0.0, 0usize);
        for &a in &self.rows[x] {
            for &b in &self.columns[y] {
                let c = a * self.width + b;
                sum += self.values[c] * self.rows_of_cell[c] as f64;
                n += self.rows_of_cell[c];
            }
        }
        if n == 0 { 0.0 } else { sum / n as f64 }
    }

    fn merged(mut self, threshold: f64) -> Grid {
        loop {
            let rows_gap = (1..self.rows.len())
                .map(|x| {
                    (
                        x,
                        (0..self.columns.len())
                            .map(|y| (self.value(x, y) - self.value(x - 1, y)).abs())
                            .fold(0.0, f64::max),
                    )
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let columns_gap = (1..self.columns.len())
                .map(|y| {
                    (
                        y,
                        (0..self.rows.len())
                            .map(|x| (self.value(x, y) - self.value(x, y - 1)).abs())
                            .fold(0.0, f64::max),
                    )
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match (rows_gap, columns_gap) {
                (Some((x, gap)), other) if gap < threshold && other.is_none_or(|(_, g)| gap <= g) => {
                    let merged = self.rows.remove(x);
                    self.rows[x - 1].extend(merged);
                }
                (_, Some((y, gap))) if gap < threshold => {
                    let merged = self.columns.remove(y);
                    self.columns[y - 1].extend(merged);
                }
                _ => return self,
            }
        }
    }
}

/// Points, rounded to one decimal.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Moves each pair table's row and column means (weighted by training rows) into the two
/// columns' shapes, a few sweeps until the table is a pure interaction (as EBM purifies): the
/// pair keeps only what the columns cannot say alone, so its cells are small and most merge or
/// drop out of the written rules. Predictions do not change: a row whose value of one column is
/// missing has no cell, so the means move only into a column whose every training row with a
/// value also has one for the other.
fn purify(effects: &mut Effects, binned: &[Binned]) {
    for (pair, table) in effects.pairs.iter().zip(effects.tables.iter_mut()) {
        let mut rows = vec![0.0f64; pair.cells()];
        let (mut only_a, mut only_b) = (false, false);
        for i in 0..binned[pair.a].of_row.len() {
            match pair.cell(binned, i) {
                Some(c) => rows[c] += 1.0,
                None => {
                    let ga = pair.group_a[binned[pair.a].of_row[i] as usize];
                    let gb = pair.group_b[binned[pair.b].of_row[i] as usize];
                    only_a |= ga != u16::MAX;
                    only_b |= gb != u16::MAX;
                }
            }
        }
        let (h, w) = (pair.groups_a, pair.groups_b);
        let mut to_a = vec![0.0; h];
        let mut to_b = vec![0.0; w];
        for _ in 0..PURIFY_SWEEPS {
            for (x, moved) in to_a.iter_mut().enumerate().filter(|_| !only_a) {
                let n: f64 = (0..w).map(|y| rows[x * w + y]).sum();
                if n > 0.0 {
                    let mean = (0..w).map(|y| rows[x * w + y] * table[x * w + y]).sum::<f64>() / n;
                    (0..w).for_each(|y| table[x * w + y] -= mean);
                    *moved += mean;
                }
            }
            for (y, moved) in to_b.iter_mut().enumerate().filter(|_| !only_b) {
                let n: f64 = (0..h).map(|x| rows[x * w + y]).sum();
                if n > 0.0 {
                    let mean = (0..h).map(|x| rows[x * w + y] * table[x * w + y]).sum::<f64>() / n;
                    (0..h).for_each(|x| table[x * w + y] -= mean);
                    *moved += mean;
                }
            }
        }
        for (shape, groups, moved) in [(pair.a, &pair.group_a, &to_a), (pair.b, &pair.group_b, &to_b)] {
            for (bin, &group) in groups.iter().enumerate() {
                if group != u16::MAX {
                    effects.shapes[shape][bin] += moved[group as usize];
                }
            }
        }
    }
}

/// Sweeps of [`purify`] (each takes out the row means, then the column means).
const PURIFY_SWEEPS: usize = 8;

fn is_count(columns: &[Prepared], binned: &Binned) -> bool {
    matches!(columns[binned.column].source, Source::EventCount { .. })
}

/// The fine bins of `binned` in the coarse `groups` of a pair (never the missing bin).
fn bins_in(binned: &Binned, group_of_bin: &[u16], groups: &[usize]) -> Vec<usize> {
    (0..binned.count).filter(|&b| group_of_bin[b] != u16::MAX && groups.contains(&(group_of_bin[b] as usize))).collect()
}

/// A pair's table as rules. Two traits: one two-condition rule per merged cell. A trait and an
/// event count: a count rule can read the lead's traits, so for each merged segment of the trait
/// its points step up or down at each merged segment of the count ("department is Engineering and
/// Product Used: at least 3 in 7 days"); the lowest counts' points move into the trait's own shape
/// (`shapes`, written after), so every rule of the pair is a step.
fn pair_rules(
    pair: &Pair,
    table: &[f64],
    binned: &[Binned],
    columns: &[Prepared],
    options: &Boosting,
    scale: f64,
    shapes: &mut [Vec<f64>],
) -> Vec<(Condition, f64)> {
    let mut out = Vec::new();
    let (fa, fb) = (&binned[pair.a], &binned[pair.b]);
    let mut rows = vec![0usize; pair.cells()];
    for i in 0..fa.of_row.len() {
        if let Some(c) = pair.cell(binned, i) {
            rows[c] += 1;
        }
    }
    let grid = Grid::new(table.iter().map(|v| scale * v).collect(), rows, pair.groups_a, pair.groups_b)
        .merged(options.merge_points);
    let count_is_a = is_count(columns, fa);
    if !count_is_a && !is_count(columns, fb) {
        for (x, groups_a) in grid.rows.iter().enumerate() {
            for (y, groups_b) in grid.columns.iter().enumerate() {
                let value = round1(grid.value(x, y));
                if value.abs() < options.merge_points / 2.0 {
                    continue;
                }
                let condition_a = condition_of(fa, &bins_in(fa, &pair.group_a, groups_a));
                let condition_b = condition_of(fb, &bins_in(fb, &pair.group_b, groups_b));
                if let (Some(ca), Some(cb)) = (condition_a, condition_b) {
                    out.push((Condition::Both(Box::new(ca), Box::new(cb)), value));
                }
            }
        }
        return out;
    }
    let (traits, counts, trait_of, count_of, group_t, group_c) = if count_is_a {
        (&grid.columns, &grid.rows, pair.b, pair.a, &pair.group_b, &pair.group_a)
    } else {
        (&grid.rows, &grid.columns, pair.a, pair.b, &pair.group_a, &pair.group_b)
    };
    let (ft, fc) = (&binned[trait_of], &binned[count_of]);
    let value = |t: usize, c: usize| if count_is_a { grid.value(c, t) } else { grid.value(t, c) };
    let Bins::Numeric { cuts } = &fc.bins else { return out };
    for (t, groups) in traits.iter().enumerate() {
        let bins = bins_in(ft, group_t, groups);
        let Some(condition) = condition_of(ft, &bins) else { continue };
        let base = value(t, 0);
        for &b in &bins {
            shapes[trait_of][b] += base / scale;
        }
        // The points written so far for this segment: each step makes up what rounding left.
        let mut written = base;
        for (c, count_groups) in counts.iter().enumerate().skip(1) {
            let step = round1(value(t, c) - written);
            let lo = bins_in(fc, group_c, count_groups).into_iter().min();
            match lo {
                Some(lo) if lo >= 2 && step.abs() >= options.merge_points / 2.0 => {
                    out.push((
                        Condition::Both(
                            Box::new(condition.clone()),
                            Box::new(Condition::AtLeast { column: fc.column, n: cuts[lo - 2] }),
                        ),
                        step,
                    ));
                    written += step;
                }
                _ => {}
            }
        }
    }
    out
}

/// The effects as rules: conditions with points, and the intercept (log-odds) they leave.
fn rules_of(effects: &Effects, binned: &[Binned], columns: &[Prepared], options: &Boosting, scale: f64) -> Card {
    let mut shapes = effects.shapes.clone();
    let mut pairs = Vec::new();
    for (pair, table) in effects.pairs.iter().zip(&effects.tables) {
        pairs.extend(pair_rules(pair, table, binned, columns, options, scale, &mut shapes));
    }
    let mut conditions = Vec::new();
    let mut points = Vec::new();
    let mut intercept = effects.base;
    for (feature, shape) in binned.iter().zip(&shapes) {
        let mut rows = vec![0usize; feature.count];
        for &b in &feature.of_row {
            rows[b as usize] += 1;
        }
        let counted = is_count(columns, feature);
        // Non-missing bins in the order neighbours merge: value order, or categories by points.
        let mut order: Vec<usize> = (1..feature.count).filter(|&b| rows[b] > 0).collect();
        if matches!(feature.bins, Bins::Categorical { .. }) {
            order.sort_by(|&a, &b| shape[a].total_cmp(&shape[b]));
        }
        let segments: Vec<Segment> =
            order.iter().map(|&b| Segment { bins: vec![b], points: scale * shape[b], rows: rows[b] }).collect();
        let segments = merge_neighbours(segments, options.merge_points, options.min_segment_rows);
        // The baseline: missing when training had missing values, else the most common segment
        // (a count's first, zero, segment: counts become "at least" steps).
        let baseline = if rows[0] > 0 {
            scale * shape[0]
        } else if counted {
            segments.first().map_or(0.0, |s| s.points)
        } else {
            segments.iter().max_by_key(|s| s.rows).map_or(0.0, |s| s.points)
        };
        intercept += baseline / scale;
        if counted {
            // Steps: "at least lo" adds the change from the segment below.
            let mut previous = baseline;
            for segment in &segments {
                let lo = segment.bins.iter().min().copied().unwrap_or(1);
                let step = round1(segment.points - previous);
                previous = segment.points;
                if let (Bins::Numeric { cuts }, true) = (&feature.bins, lo >= 2 && step != 0.0) {
                    conditions.push(Condition::AtLeast { column: feature.column, n: cuts[lo - 2] });
                    points.push(step);
                }
            }
            continue;
        }
        for segment in &segments {
            let value = round1(segment.points - baseline);
            if value == 0.0 {
                continue;
            }
            if let Some(condition) = condition_of(feature, &segment.bins) {
                conditions.push(condition);
                points.push(value);
            }
        }
    }
    for (condition, value) in pairs {
        conditions.push(condition);
        points.push(value);
    }
    Card { conditions, points, intercept, slope: 1.0 / scale, lambda: 0.0 }
}

/// Refits the calibration's intercept for the rounded card on the training rows (Newton's
/// method), so that its mean probability is the training rate; the slope stays the scale's (so
/// many points double the odds). (Refitting the slope too, on the same rows, stretched the
/// points and cost held-out log-loss on three of four benchmark datasets.)
fn calibrate(card: &mut Card, columns: &[Prepared], rows: &[usize], labels: &[bool]) {
    let totals: Vec<f64> = rows.iter().map(|&r| card.total(columns, r)).collect();
    let mut a = card.intercept;
    for _ in 0..25 {
        let (mut g, mut h) = (0.0, 0.0);
        for (&t, &r) in totals.iter().zip(rows) {
            let p = sigmoid(a + card.slope * t);
            g += if labels[r] { 1.0 } else { 0.0 } - p;
            h += (p * (1.0 - p)).max(1e-12);
        }
        let step = g / h;
        a += step;
        if step.abs() < 1e-10 {
            break;
        }
    }
    if a.is_finite() {
        card.intercept = a;
    }
}

/// Learns a boosted additive card on the training `rows` (indices into the columns and
/// `all_labels`).
pub(crate) fn fit_boosted(
    columns: &[Prepared],
    rows: &[usize],
    all_labels: &[bool],
    options: &Boosting,
    points_to_double: f64,
    seed: u64,
) -> Card {
    let labels: Vec<bool> = rows.iter().map(|&r| all_labels[r]).collect();
    let binned = bin_columns(columns, rows, options);
    let count_columns: Vec<bool> = binned.iter().map(|b| is_count(columns, b)).collect();
    let mut effects = learn(&binned, &count_columns, &labels, options, seed);
    purify(&mut effects, &binned);
    let scale = points_to_double / std::f64::consts::LN_2;
    let mut card = rules_of(&effects, &binned, columns, options, scale);
    calibrate(&mut card, columns, rows, all_labels);
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Lcg;

    fn uniform(rng: &mut Lcg) -> f64 {
        rng.next_value() as f64 / (1u64 << 31) as f64
    }

    fn numeric(name: &str, values: Vec<f64>) -> Prepared {
        Prepared {
            name: name.into(),
            source: Source::Trait,
            kind: Kind::Numeric(values.into_iter().map(Some).collect()),
        }
    }

    /// Labels drawn with these log-odds.
    fn draw(logits: &[f64], rng: &mut Lcg) -> Vec<bool> {
        logits.iter().map(|&z| uniform(rng) < sigmoid(z)).collect()
    }

    /// Each column's points for a row: the sum of the points of its one-column rules that hold.
    fn column_points(card: &Card, columns: &[Prepared], column: usize, row: usize) -> f64 {
        card.conditions
            .iter()
            .zip(&card.points)
            .filter(|(c, _)| c.columns() == vec![column] && c.holds(columns, row))
            .map(|(_, p)| p)
            .sum()
    }

    fn fit(columns: &[Prepared], labels: &[bool]) -> Card {
        let rows: Vec<usize> = (0..labels.len()).collect();
        fit_boosted(columns, &rows, labels, &Boosting::default(), 20.0, 7)
    }

    #[test]
    fn an_additive_truth_is_recovered() {
        let mut rng = Lcg::new(11);
        let n = 8000;
        let x1: Vec<f64> = (0..n).map(|_| 10.0 * uniform(&mut rng)).collect();
        let x2: Vec<u32> = (0..n).map(|_| (rng.next_value() % 3) as u32).collect();
        let x3: Vec<f64> = (0..n).map(|_| uniform(&mut rng)).collect();
        // A step of 1.5 log-odds at 5, categories a/b/c at -1/0/+1; x3 is noise.
        let logits: Vec<f64> =
            (0..n).map(|i| -0.5 + if x1[i] >= 5.0 { 1.5 } else { 0.0 } + x2[i] as f64 - 1.0).collect();
        let labels = draw(&logits, &mut rng);
        let columns = vec![
            numeric("x1", x1.clone()),
            Prepared {
                name: "x2".into(),
                source: Source::Trait,
                kind: Kind::Categorical {
                    levels: vec!["a".into(), "b".into(), "c".into()],
                    codes: x2.iter().map(|&c| Some(c)).collect(),
                },
            },
            numeric("x3", x3),
        ];
        let card = fit(&columns, &labels);
        let scale = 20.0 / std::f64::consts::LN_2;
        let row_where = |f: &dyn Fn(usize) -> bool| (0..n).find(|&i| f(i)).unwrap();
        let (low, high) = (row_where(&|i| x1[i] < 3.0), row_where(&|i| x1[i] > 7.0));
        let step = column_points(&card, &columns, 0, high) - column_points(&card, &columns, 0, low);
        assert!((step - 1.5 * scale).abs() < 0.2 * 1.5 * scale, "x1 step {step} vs {}", 1.5 * scale);
        let (a, c) = (row_where(&|i| x2[i] == 0), row_where(&|i| x2[i] == 2));
        let spread = column_points(&card, &columns, 1, c) - column_points(&card, &columns, 1, a);
        assert!((spread - 2.0 * scale).abs() < 0.2 * 2.0 * scale, "x2 c − a {spread} vs {}", 2.0 * scale);
        // The noise column: fine bins leave some wiggle, but it moves scores little.
        let noise: Vec<f64> = (0..n).map(|i| column_points(&card, &columns, 2, i)).collect();
        let mean = noise.iter().sum::<f64>() / n as f64;
        let sd = (noise.iter().map(|p| (p - mean) * (p - mean)).sum::<f64>() / n as f64).sqrt();
        assert!(sd < 0.1 * 1.5 * scale, "the noise column spreads scores by {sd} points");
    }

    #[test]
    fn a_planted_interaction_is_found() {
        let mut rng = Lcg::new(12);
        let n = 8000;
        let x1: Vec<f64> = (0..n).map(|_| uniform(&mut rng)).collect();
        let x2: Vec<f64> = (0..n).map(|_| uniform(&mut rng)).collect();
        let x3: Vec<f64> = (0..n).map(|_| uniform(&mut rng)).collect();
        // Only both high together convert more.
        let logits: Vec<f64> = (0..n).map(|i| if x1[i] > 0.5 && x2[i] > 0.5 { 1.0 } else { -1.5 }).collect();
        let labels = draw(&logits, &mut rng);
        let columns = vec![numeric("x1", x1.clone()), numeric("x2", x2.clone()), numeric("x3", x3)];
        let card = fit(&columns, &labels);
        let pairs: Vec<(Vec<usize>, f64)> = card
            .conditions
            .iter()
            .zip(&card.points)
            .filter(|(c, _)| c.columns().len() == 2)
            .map(|(c, &p)| (c.columns(), p))
            .collect();
        assert!(!pairs.is_empty(), "no pair rules");
        assert!(pairs.iter().all(|(cols, _)| cols == &vec![0, 1]), "pairs on other columns: {pairs:?}");
        // The pair rules lift both-high rows above the rest beyond what the columns alone give.
        let total = |i: usize| card.total(&columns, i);
        let both: Vec<usize> = (0..n).filter(|&i| x1[i] > 0.75 && x2[i] > 0.75).collect();
        let one: Vec<usize> = (0..n).filter(|&i| x1[i] > 0.75 && x2[i] < 0.25).collect();
        let mean = |rows: &[usize]| rows.iter().map(|&i| total(i)).sum::<f64>() / rows.len() as f64;
        let gap = mean(&both) - mean(&one);
        let scale = 20.0 / std::f64::consts::LN_2;
        assert!(gap > 1.8 * scale, "both high vs one high: {gap} points");
    }

    fn count(name: &str, values: Vec<f64>) -> Prepared {
        Prepared {
            name: name.into(),
            source: Source::EventCount {
                on: format!("event.event == \"{name}\""),
                label: name.into(),
                within_days: 90,
            },
            kind: Kind::Numeric(values.into_iter().map(Some).collect()),
        }
    }

    /// A trait and an event count interact: the pair becomes steps "trait and count ≥ n" (a count
    /// rule can read the lead's traits), whose totals reproduce the interaction. Two counts that
    /// interact never pair: no rule can count two kinds of events at once.
    #[test]
    fn a_trait_and_count_pair_becomes_steps_and_two_counts_never_pair() {
        let mut rng = Lcg::new(17);
        let n = 8000;
        let region: Vec<u32> = (0..n).map(|_| (rng.next_value() % 2) as u32).collect();
        let visits: Vec<f64> = (0..n).map(|_| (rng.next_value() % 7) as f64).collect();
        let opens: Vec<f64> = (0..n).map(|_| (rng.next_value() % 7) as f64).collect();
        let clicks: Vec<f64> = (0..n).map(|_| (rng.next_value() % 7) as f64).collect();
        let logits: Vec<f64> = (0..n)
            .map(|i| {
                let north_visits = if region[i] == 0 && visits[i] >= 3.0 { 2.5 } else { -1.0 };
                let both = if opens[i] >= 4.0 && clicks[i] >= 4.0 { 1.5 } else { 0.0 };
                north_visits + both
            })
            .collect();
        let labels = draw(&logits, &mut rng);
        let columns = vec![
            Prepared {
                name: "region".into(),
                source: Source::Trait,
                kind: Kind::Categorical {
                    levels: vec!["north".into(), "south".into()],
                    codes: region.iter().map(|&c| Some(c)).collect(),
                },
            },
            count("visits", visits.clone()),
            count("opens", opens),
            count("clicks", clicks),
        ];
        let card = fit(&columns, &labels);
        let pairs: Vec<&Condition> = card.conditions.iter().filter(|c| c.columns().len() == 2).collect();
        assert!(!pairs.is_empty(), "no pair rules");
        for condition in &pairs {
            let Condition::Both(a, b) = condition else { panic!("{condition:?}") };
            assert!(matches!(**a, Condition::Levels { column: 0, .. }), "{condition:?}");
            assert!(matches!(**b, Condition::AtLeast { column: 1..=3, .. }), "{condition:?}");
        }
        assert!(pairs.iter().any(|c| c.columns() == vec![0, 1]), "no region × visits rule: {pairs:?}");
        let mean = |north: bool, high: bool| {
            let rows: Vec<usize> =
                (0..n).filter(|&i| (region[i] == 0) == north && (visits[i] >= 3.0) == high).collect();
            rows.iter().map(|&i| card.total(&columns, i)).sum::<f64>() / rows.len() as f64
        };
        // The lift of 3+ visits: 3.5 log-odds in the north (70 points), none in the south.
        let scale = 20.0 / std::f64::consts::LN_2;
        let (north, south) = (mean(true, true) - mean(true, false), mean(false, true) - mean(false, false));
        assert!(north > 2.8 * scale, "north: {north} points");
        assert!(south.abs() < 0.7 * scale, "south: {south} points");
    }

    #[test]
    fn pure_noise_gives_next_to_no_points() {
        let mut rng = Lcg::new(13);
        let n = 6000;
        let columns: Vec<Prepared> =
            (0..4).map(|k| numeric(&format!("noise{k}"), (0..n).map(|_| uniform(&mut rng)).collect())).collect();
        let labels: Vec<bool> = (0..n).map(|_| uniform(&mut rng) < 0.3).collect();
        let card = fit(&columns, &labels);
        let totals: Vec<f64> = (0..n).map(|i| card.total(&columns, i)).collect();
        let mean = totals.iter().sum::<f64>() / n as f64;
        let sd = (totals.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / n as f64).sqrt();
        // 20 points double the odds: a spread of 3 points is odds within about ±10%.
        assert!(sd < 3.0, "noise spreads totals by {sd} points ({} rules)", card.points.len());
        let p = sigmoid(card.intercept + card.slope * mean);
        assert!((p - 0.3).abs() < 0.03, "mean probability {p}");
    }

    /// Each training row's log-odds from the effects: base, shapes and its pair cells.
    fn log_odds(effects: &Effects, binned: &[Binned], i: usize) -> f64 {
        let mains: f64 = binned.iter().zip(&effects.shapes).map(|(b, shape)| shape[b.of_row[i] as usize]).sum();
        let pairs: f64 = effects
            .pairs
            .iter()
            .zip(&effects.tables)
            .filter_map(|(pair, table)| pair.cell(binned, i).map(|c| table[c]))
            .sum();
        effects.base + mains + pairs
    }

    /// Purifying moves a pair's row and column means into the columns' shapes: no prediction
    /// changes, and what the table keeps has zero mean along every row and column. A column whose
    /// rows may lack the other column's value keeps its means in the table.
    #[test]
    fn purifying_keeps_predictions_and_leaves_a_pure_interaction() {
        let mut rng = Lcg::new(13);
        let n = 6000;
        let x1: Vec<f64> = (0..n).map(|_| uniform(&mut rng)).collect();
        let x2: Vec<f64> = (0..n).map(|_| uniform(&mut rng)).collect();
        // x3 is missing on a tenth of the rows.
        let x3: Vec<Option<f64>> = (0..n).map(|i| (i % 10 != 0).then(|| uniform(&mut rng))).collect();
        let logits: Vec<f64> = (0..n)
            .map(|i| {
                let high = x1[i] > 0.5 && (x2[i] > 0.5 || x3[i].is_some_and(|v| v > 0.5));
                if high { 1.0 } else { -1.5 }
            })
            .collect();
        let labels = draw(&logits, &mut rng);
        let mut columns = vec![numeric("x1", x1), numeric("x2", x2)];
        columns.push(Prepared { name: "x3".into(), source: Source::Trait, kind: Kind::Numeric(x3) });
        let rows: Vec<usize> = (0..n).collect();
        let options = Boosting { bags: 2, ..Boosting::default() };
        let binned = bin_columns(&columns, &rows, &options);
        let learned = learn(&binned, &[false; 3], &labels, &options, 7);
        assert!(!learned.pairs.is_empty(), "no pairs learned");
        let mut pure = learned.clone();
        purify(&mut pure, &binned);
        for i in 0..n {
            let (before, after) = (log_odds(&learned, &binned, i), log_odds(&pure, &binned, i));
            assert!((before - after).abs() < 1e-9, "row {i}: {before} then {after}");
        }
        for (pair, table) in pure.pairs.iter().zip(&pure.tables) {
            let mut rows = vec![0.0; pair.cells()];
            for i in 0..n {
                if let Some(c) = pair.cell(&binned, i) {
                    rows[c] += 1.0;
                }
            }
            let w = pair.groups_b;
            let mean = |cells: &mut dyn Iterator<Item = usize>| -> f64 {
                let (mut sum, mut count) = (0.0, 0.0);
                for c in cells {
                    sum += rows[c] * table[c];
                    count += rows[c];
                }
                if count > 0.0 { sum / count } else { 0.0 }
            };
            let missing = |c: usize| columns[c].name == "x3";
            if !missing(pair.b) {
                for x in 0..pair.groups_a {
                    let m = mean(&mut (0..w).map(|y| x * w + y));
                    assert!(m.abs() < 1e-3, "pair {}×{} row {x} mean {m}", pair.a, pair.b);
                }
            }
            if !missing(pair.a) {
                for y in 0..w {
                    let m = mean(&mut (0..pair.groups_a).map(|x| x * w + y));
                    assert!(m.abs() < 1e-3, "pair {}×{} column {y} mean {m}", pair.a, pair.b);
                }
            }
        }
    }

    /// A segment of a few rows merges into the neighbour closer in points before neighbours
    /// merge by their gap: no rule stands on a handful of leads.
    #[test]
    fn small_segments_merge_into_their_closer_neighbour() {
        let segment = |bin: usize, points: f64, rows: usize| Segment { bins: vec![bin], points, rows };
        let segments = vec![segment(1, 0.0, 100), segment(2, 10.0, 5), segment(3, 12.0, 100), segment(4, 30.0, 3)];
        let merged = merge_neighbours(segments, 1.0, 20);
        let bins: Vec<Vec<usize>> = merged.iter().map(|s| s.bins.clone()).collect();
        assert_eq!(bins, vec![vec![1], vec![2, 3, 4]]);
        // Row-weighted: (12 × 100 + 10 × 5 + 30 × 3) / 108.
        assert!((merged[1].points - (1200.0 + 50.0 + 90.0) / 108.0).abs() < 1e-9);
        assert_eq!(merged[1].rows, 108);
        // Without a minimum, only the gap merges (none here is under 1 point).
        assert_eq!(merge_neighbours(vec![segment(1, 0.0, 1), segment(2, 5.0, 1)], 1.0, 0).len(), 2);
    }
}
