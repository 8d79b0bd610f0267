//! The leakage guard: columns that predict the label almost perfectly on their own are usually
//! filled in after the outcome is known (a sales rep's tags, a lead-quality verdict), and a model
//! learned from them scores well in training and not at all on new leads. Before training, each
//! column's single-column ROC AUC is measured (a category by its smoothed conversion rate in the
//! other folds of a stratified split, so that a column of many rare values does not look
//! predictive by fitting each row's own label; numbers as they are), and the values that nearly always convert are found. A
//! column is leaky when its AUC reaches [`Guard::auc`], or when it reaches [`Guard::supported_auc`]
//! and its near-pure values (odds of converting at least [`Guard::odds_ratio`] times those of the
//! other rows) cover [`Guard::cover`] of the rows. Only values that make conversion near-certain
//! count: a value known before the outcome often rules a lead out (students, job seekers), but
//! rarely guarantees a sale, as a verdict filled in after contact does ("Closed by …").

use super::features::{Kind, Prepared};
use super::folds::fold_ids;
use crate::metrics::roc_auc;

/// Folds of the out-of-fold encoding of a category.
const ENCODING_FOLDS: usize = 5;

/// The guard's thresholds.
#[derive(Debug, Clone)]
pub struct Guard {
    pub auc: f64,
    pub supported_auc: f64,
    pub odds_ratio: f64,
    pub cover: f64,
    /// A value needs this many rows (and 1% of them) to count as near-pure.
    pub min_rows: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { auc: 0.9, supported_auc: 0.75, odds_ratio: 25.0, cover: 0.05, min_rows: 30 }
    }
}

/// A column the guard flags, with the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Leak {
    pub column: String,
    /// Its ROC AUC on its own.
    pub auc: f64,
    /// The near-pure values (nearly always converted): `(value, rows, converted)`, most rows first.
    pub pure_values: Vec<(String, usize, usize)>,
}

impl Leak {
    /// The evidence in words.
    pub fn evidence(&self) -> String {
        let mut text = format!("ROC AUC {:.3} on its own", self.auc);
        if !self.pure_values.is_empty() {
            let shown: Vec<String> = self
                .pure_values
                .iter()
                .take(3)
                .map(|(value, rows, converted)| {
                    format!(
                        "`{value}`: {converted} of {rows} converted ({:.1}%)",
                        100.0 * *converted as f64 / *rows as f64
                    )
                })
                .collect();
            text.push_str("; ");
            text.push_str(&shown.join(", "));
        }
        text
    }
}

/// The column's values as a score per row (higher: more likely converted) and, for categories,
/// each value's rows and conversions.
fn single_column(column: &Prepared, labels: &[bool]) -> (Vec<f64>, Vec<(String, usize, usize)>) {
    let positives = labels.iter().filter(|&&y| y).count() as f64;
    let base = positives / labels.len().max(1) as f64;
    match &column.kind {
        Kind::Numeric(values) => {
            let lowest = values.iter().flatten().fold(f64::INFINITY, |m, &x| m.min(x));
            let scores = values.iter().map(|v| v.unwrap_or(lowest - 1.0)).collect();
            (scores, Vec::new())
        }
        Kind::Categorical { levels, codes } => {
            // Missing is a value of its own (the last).
            let missing = levels.len();
            let mut rows = vec![0usize; levels.len() + 1];
            let mut converted = vec![0usize; levels.len() + 1];
            for (code, &y) in codes.iter().zip(labels) {
                let k = code.map_or(missing, |c| c as usize);
                rows[k] += 1;
                converted[k] += usize::from(y);
            }
            // Shrunk towards the base rate, so that a value seen twice is no proof of anything, and
            // measured on the other folds (out of fold: leaving out only the row itself would rank
            // a common value's converted rows below its other rows).
            let folds = fold_ids(labels, ENCODING_FOLDS, 0x1ea6);
            let mut in_fold = vec![[0usize; 2]; (levels.len() + 1) * ENCODING_FOLDS];
            for ((code, &y), &f) in codes.iter().zip(labels).zip(&folds) {
                let k = code.map_or(missing, |c| c as usize);
                in_fold[k * ENCODING_FOLDS + f][0] += 1;
                in_fold[k * ENCODING_FOLDS + f][1] += usize::from(y);
            }
            let scores = codes
                .iter()
                .zip(&folds)
                .map(|(code, &f)| {
                    let k = code.map_or(missing, |c| c as usize);
                    let [n, c] = in_fold[k * ENCODING_FOLDS + f];
                    ((converted[k] - c) as f64 + 10.0 * base) / ((rows[k] - n) as f64 + 10.0)
                })
                .collect();
            let mut counts: Vec<(String, usize, usize)> = levels
                .iter()
                .cloned()
                .chain(std::iter::once("(missing)".to_owned()))
                .zip(rows.iter().zip(&converted))
                .map(|(name, (&n, &c))| (name, n, c))
                .collect();
            counts.sort_by_key(|c| std::cmp::Reverse(c.1));
            (scores, counts)
        }
    }
}

/// The columns the guard flags, strongest first.
pub(crate) fn leaky_columns(columns: &[Prepared], labels: &[bool], guard: &Guard) -> Vec<Leak> {
    let n = labels.len();
    let positives = labels.iter().filter(|&&y| y).count();
    let mut leaks = Vec::new();
    for column in columns {
        let (scores, counts) = single_column(column, labels);
        let Some(auc) = roc_auc(&scores, labels) else { continue };
        let auc = auc.max(1.0 - auc);
        let min_rows = guard.min_rows.max(n / 100);
        let pure_values: Vec<(String, usize, usize)> = counts
            .into_iter()
            .filter(|&(_, rows, converted)| {
                if rows < min_rows {
                    return false;
                }
                let odds = |c: f64, r: f64| (c + 0.5) / (r - c + 0.5);
                let inside = odds(converted as f64, rows as f64);
                let outside = odds((positives - converted) as f64, (n - rows) as f64);
                inside / outside >= guard.odds_ratio
            })
            .collect();
        let covered = pure_values.iter().map(|v| v.1).sum::<usize>() as f64 / n.max(1) as f64;
        if auc >= guard.auc || (auc >= guard.supported_auc && covered >= guard.cover) {
            leaks.push(Leak { column: column.name.clone(), auc, pure_values });
        }
    }
    leaks.sort_by(|a, b| b.auc.total_cmp(&a.auc));
    leaks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Source;

    fn categorical(name: &str, values: &[&str]) -> Prepared {
        let mut levels: Vec<String> = Vec::new();
        let codes = values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    return None;
                }
                Some(match levels.iter().position(|l| l == v) {
                    Some(i) => i as u32,
                    None => {
                        levels.push((*v).to_owned());
                        (levels.len() - 1) as u32
                    }
                })
            })
            .collect();
        Prepared { name: name.into(), source: Source::Trait, kind: Kind::Categorical { levels, codes } }
    }

    #[test]
    fn a_planted_leaky_column_is_named_with_its_evidence() {
        // 1,000 leads, 30% converted. `Status` is filled in after the fact: "Closed" exactly when
        // converted, for 80% of the converted ones; "Dead" for 70% of the others; else empty.
        // `Source` carries a real but modest signal.
        let n = 1000;
        let labels: Vec<bool> = (0..n).map(|i| i % 10 < 3).collect();
        let status: Vec<&str> = (0..n)
            .map(|i| match (labels[i], i % 5) {
                (true, 0) => "",
                (true, _) => "Closed",
                (false, k) if k < 3 || i % 7 == 0 => "Dead",
                _ => "",
            })
            .collect();
        let source: Vec<&str> = (0..n)
            .map(|i| if (labels[i] && i % 3 != 0) || (!labels[i] && i % 3 == 0) { "web" } else { "ads" })
            .collect();
        let columns = vec![categorical("Status", &status), categorical("Source", &source)];
        let leaks = leaky_columns(&columns, &labels, &Guard::default());
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!(leaks[0].column, "Status");
        let evidence = leaks[0].evidence();
        assert!(evidence.contains("`Closed`: 200 of 200 converted (100.0%)"), "{evidence}");
        assert!(evidence.starts_with("ROC AUC "), "{evidence}");
    }

    /// Values known before the outcome often rule leads out: students never buy. A column whose
    /// values are many and rare, or whose strong values only ever say "no", is not leaky.
    #[test]
    fn values_that_rule_leads_out_and_many_rare_values_are_not_leakage() {
        let n = 2000;
        let labels: Vec<bool> = (0..n).map(|i| i % 10 < 3).collect();
        // 20% students who never convert; the others as the label's base rate, by a weak signal.
        let seniority: Vec<&str> = (0..n)
            .map(|i| match (labels[i], i % 10) {
                (false, 3..=6) => "student",
                (true, 0) | (false, 7) => "senior",
                _ => "junior",
            })
            .collect();
        // A job title nearly unique per lead: 1,000 titles seen twice each.
        let titles: Vec<String> = (0..n).map(|i| format!("title {}", i / 2)).collect();
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let columns = vec![categorical("seniority", &seniority), categorical("title", &titles)];
        let leaks = leaky_columns(&columns, &labels, &Guard::default());
        assert!(leaks.is_empty(), "{leaks:?}");
    }
}
