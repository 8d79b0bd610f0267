//! How well a score ranks outcomes: ROC AUC (with a bootstrap confidence interval), log-loss and
//! conversion by quantile band. Inputs are `(score, converted)` pairs; ties are handled exactly.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// ROC AUC: the probability that a random converter scores above a random non-converter (ties
/// count half). `None` when either class is empty.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Sum of the (average, for ties) ranks of the positives: Mann-Whitney U.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i + 1;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let average_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += average_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives as f64 * negatives as f64))
}

/// Mean negative log-likelihood of probabilities (clipped to [1e-15, 1 - 1e-15]).
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

/// The items sorted by score once, for resampling: a resample is a count per item in that order,
/// and its AUC one walk over the groups of tied scores (the same AUC as sorting the resample, ties
/// grouped the same way), in O(n) instead of O(n log n).
struct Resampling {
    /// Where each item is in score order.
    position: Vec<usize>,
    /// The labels in score order.
    labels: Vec<bool>,
    /// The end of each group of equal scores in score order (a NaN equals nothing, not even
    /// itself: its group is itself).
    group_ends: Vec<usize>,
}

impl Resampling {
    fn new(scores: &[f64], labels: &[bool]) -> Resampling {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut position = vec![0; scores.len()];
        for (p, &i) in order.iter().enumerate() {
            position[i] = p;
        }
        let mut group_ends = Vec::new();
        let mut g = 0;
        while g < order.len() {
            let mut h = g + 1;
            while h < order.len() && scores[order[h]] == scores[order[g]] {
                h += 1;
            }
            group_ends.push(h);
            g = h;
        }
        Resampling { position, labels: order.iter().map(|&i| labels[i]).collect(), group_ends }
    }

    /// [`Resampling::auc_of`], counting the resample's size and positives.
    #[cfg(test)]
    fn auc(&self, counts: &[u32]) -> Option<f64> {
        let positives: u64 = counts.iter().zip(&self.labels).filter(|(_, l)| **l).map(|(&c, _)| u64::from(c)).sum();
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        self.auc_of(counts, positives, total)
    }

    /// The AUC of the resample that holds `counts[p]` copies of the item at position `p` of
    /// score order, `total` items in all of which `positives` are positive.
    fn auc_of(&self, counts: &[u32], positives: u64, total: u64) -> Option<f64> {
        let negatives = total - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let mut rank_sum = 0.0;
        let mut before = 0u64;
        let mut g = 0;
        for &h in &self.group_ends {
            let (mut size, mut positive) = (0u64, 0u64);
            for (&c, &l) in counts[g..h].iter().zip(&self.labels[g..h]) {
                size += u64::from(c);
                if l {
                    positive += u64::from(c);
                }
            }
            if size > 0 {
                let average_rank = (before + 1 + before + size) as f64 / 2.0;
                rank_sum += average_rank * positive as f64;
                before += size;
            }
            g = h;
        }
        let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
        Some(u / (positives as f64 * negatives as f64))
    }
}

/// A percentile bootstrap interval for [`roc_auc`] at confidence `level` (e.g. 0.95), from
/// `resamples` resamples drawn with a seeded generator: the same inputs give the same interval.
/// `None` when the AUC is undefined or no resample has both classes.
pub fn auc_confidence_interval(
    scores: &[f64],
    labels: &[bool],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    roc_auc(scores, labels)?;
    let n = scores.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let resampling = Resampling::new(scores, labels);
    let mut aucs = Vec::with_capacity(resamples);
    // Resamples are drawn in turn from the one generator, in batches whose AUCs are computed on
    // all cores.
    const BATCH: usize = 32;
    // Per resample: the count of each item (in score order), and how many drawn are positive.
    let mut batch: Vec<(Vec<u32>, u64)> = Vec::new();
    let mut drawn = 0;
    while drawn < resamples {
        let size = (resamples - drawn).min(BATCH);
        batch.resize_with(size, || (vec![0; n], 0));
        for (counts, positives) in &mut batch {
            counts.fill(0);
            *positives = 0;
            for _ in 0..n {
                let at = resampling.position[rng.random_range(0..n)];
                counts[at] += 1;
                *positives += u64::from(resampling.labels[at]);
            }
        }
        aucs.par_extend(
            batch.par_iter().filter_map(|(counts, positives)| resampling.auc_of(counts, *positives, n as u64)),
        );
        drawn += size;
    }
    if aucs.is_empty() {
        return None;
    }
    aucs.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| aucs[((q * (aucs.len() - 1) as f64).round() as usize).min(aucs.len() - 1)];
    Some((at(tail), at(1.0 - tail)))
}

/// One band of leads by score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Band {
    /// 1 = the highest scores.
    pub band: usize,
    pub min_score: f64,
    pub max_score: f64,
    pub leads: usize,
    pub converted: usize,
    pub conversion_rate: f64,
}

/// Leads split into `bands` equal-count bands by score, highest scores first (band 1). Leads with
/// equal scores stay in the same band, so bands can differ in size.
pub fn bands_by_score(scores: &[f64], labels: &[bool], bands: usize) -> Vec<Band> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = pairs.len();
    let mut out = Vec::new();
    let mut start = 0;
    for band in 1..=bands {
        if start >= n {
            break;
        }
        let mut end = (n * band).div_ceil(bands).max(start + 1).min(n);
        while end < n && pairs[end].0 == pairs[end - 1].0 {
            end += 1;
        }
        let slice = &pairs[start..end];
        let converted = slice.iter().filter(|p| p.1).count();
        out.push(Band {
            band: out.len() + 1,
            max_score: slice[0].0,
            min_score: slice[slice.len() - 1].0,
            leads: slice.len(),
            converted,
            conversion_rate: converted as f64 / slice.len() as f64,
        });
        start = end;
    }
    out
}

/// Cumulative gains: after contacting the top `x` share of leads by score, the share of all
/// converters reached. Points at each band boundary, starting at (0, 0).
pub fn cumulative_gains(bands: &[Band]) -> Vec<(f64, f64)> {
    let total: usize = bands.iter().map(|b| b.leads).sum();
    let converters: usize = bands.iter().map(|b| b.converted).sum();
    let mut points = vec![(0.0, 0.0)];
    let (mut leads, mut reached) = (0usize, 0usize);
    for band in bands {
        leads += band.leads;
        reached += band.converted;
        points.push((leads as f64 / total.max(1) as f64, reached as f64 / converters.max(1) as f64));
    }
    points
}

/// One bin of a reliability diagram: the mean predicted probability of its leads and the share
/// that converted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityBin {
    pub predicted: f64,
    pub observed: f64,
    pub leads: usize,
}

/// A reliability diagram: leads in `bins` equal-count bins by predicted probability, lowest first.
pub fn reliability(probabilities: &[f64], labels: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let mut pairs: Vec<(f64, bool)> = probabilities.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pairs.len();
    let bins = bins.max(1);
    (0..bins)
        .filter_map(|b| {
            let group = &pairs[b * n / bins..(b + 1) * n / bins];
            (!group.is_empty()).then(|| {
                let len = group.len() as f64;
                ReliabilityBin {
                    predicted: group.iter().map(|p| p.0).sum::<f64>() / len,
                    observed: group.iter().filter(|p| p.1).count() as f64 / len,
                    leads: group.len(),
                }
            })
        })
        .collect()
}

/// The expected calibration error of a reliability diagram: the gap between predicted and
/// observed conversion, averaged over the leads (each bin weighted by its leads).
pub fn expected_calibration_error(bins: &[ReliabilityBin]) -> f64 {
    let leads: usize = bins.iter().map(|b| b.leads).sum();
    bins.iter().map(|b| b.leads as f64 * (b.predicted - b.observed).abs()).sum::<f64>() / leads.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calibration_error_weighs_each_bin_by_its_leads() {
        // Two bins of two: predicted 0.1 (none converted) and 0.7 (both converted).
        let bins = reliability(&[0.1, 0.1, 0.7, 0.7], &[false, false, true, true], 2);
        assert_eq!(bins.len(), 2);
        assert_eq!((bins[0].predicted, bins[0].observed), (0.1, 0.0));
        assert!((expected_calibration_error(&bins) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn perfect_ranking_has_auc_one_and_reversed_zero() {
        let scores = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(roc_auc(&scores, &[false, false, true, true]), Some(1.0));
        assert_eq!(roc_auc(&scores, &[true, true, false, false]), Some(0.0));
    }

    #[test]
    fn ties_count_half() {
        assert_eq!(roc_auc(&[1.0, 1.0], &[true, false]), Some(0.5));
        // positives {2, 1}, negatives {1, 0}: pairs (2>1) (2>0) (1=1 half) (1>0) = 3.5 / 4
        assert_eq!(roc_auc(&[2.0, 1.0, 1.0, 0.0], &[true, true, false, false]), Some(0.875));
    }

    #[test]
    fn auc_needs_both_classes() {
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
    }

    #[test]
    fn log_loss_of_confident_right_answers_is_small() {
        assert!(log_loss(&[0.99, 0.01], &[true, false]) < 0.011);
        assert!((log_loss(&[0.5, 0.5], &[true, false]) - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn resampled_auc_equals_sorting_the_resample() {
        let scores: [f64; 8] = [0.1, 0.4, 0.4, 0.35, 0.8, 0.8, 0.1, 0.9];
        let labels = [false, true, false, true, true, false, false, true];
        let resampling = Resampling::new(&scores, &labels);
        for counts in [[1, 1, 1, 1, 1, 1, 1, 1], [0, 2, 1, 0, 3, 1, 0, 1], [2, 0, 0, 3, 0, 2, 1, 0]] {
            let (mut s, mut l) = (Vec::new(), Vec::new());
            for (i, &c) in counts.iter().enumerate() {
                for _ in 0..c {
                    s.push(scores[i]);
                    l.push(labels[i]);
                }
            }
            let mut in_order = [0; 8];
            for (i, &c) in counts.iter().enumerate() {
                in_order[resampling.position[i]] = c;
            }
            assert_eq!(resampling.auc(&in_order), roc_auc(&s, &l), "{counts:?}");
        }
    }

    #[test]
    fn bootstrap_interval_brackets_the_auc_and_is_reproducible() {
        let scores: Vec<f64> = (0..200).map(|i| f64::from(i % 17) + if i % 3 == 0 { 5.0 } else { 0.0 }).collect();
        let labels: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
        let auc = roc_auc(&scores, &labels).unwrap();
        let (low, high) = auc_confidence_interval(&scores, &labels, 0.95, 300, 7).unwrap();
        assert!(low <= auc && auc <= high, "{low} <= {auc} <= {high}");
        assert_eq!(auc_confidence_interval(&scores, &labels, 0.95, 300, 7), Some((low, high)));
    }

    #[test]
    fn bands_put_the_best_scores_first_and_keep_ties_together() {
        let scores = [9.0, 8.0, 7.0, 7.0, 1.0, 0.0];
        let labels = [true, true, false, true, false, false];
        let bands = bands_by_score(&scores, &labels, 3);
        assert_eq!(bands.iter().map(|b| b.leads).collect::<Vec<_>>(), vec![2, 2, 2]);
        assert_eq!(bands[0].conversion_rate, 1.0);
        let bands = bands_by_score(&[5.0, 5.0, 5.0, 1.0], &[true, false, true, false], 4);
        assert_eq!(bands[0].leads, 3, "equal scores share a band");
        let gains = cumulative_gains(&bands);
        assert_eq!(gains.last(), Some(&(1.0, 1.0)));
    }
}
