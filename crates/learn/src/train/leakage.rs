//! The leakage guard: columns that predict the label almost perfectly on their own are usually
//! filled in after the outcome is known (a sales rep's tags, a lead-quality verdict), and a model
//! learned from them scores well in training and not at all on new leads. Before training, each
//! column's single-column ROC AUC is measured (categories by their smoothed conversion rate,
//! numbers as they are), and the values that nearly always go with one class are found. A column
//! is leaky when its AUC reaches [`Guard::auc`], or when it reaches [`Guard::supported_auc`] and
//! its near-pure values (odds at least [`Guard::odds_ratio`] times those of the other rows, either
//! way) cover [`Guard::cover`] of the rows.

use super::features::{Kind, Prepared};
use crate::metrics::roc_auc;

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
    /// The near-pure values: `(value, rows, converted)`, most rows first.
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
            // Shrunk towards the base rate, so that a value seen twice is no proof of anything.
            let rate: Vec<f64> =
                rows.iter().zip(&converted).map(|(&n, &c)| (c as f64 + 10.0 * base) / (n as f64 + 10.0)).collect();
            let scores = codes.iter().map(|code| rate[code.map_or(missing, |c| c as usize)]).collect();
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
                let ratio = inside / outside;
                ratio >= guard.odds_ratio || ratio <= 1.0 / guard.odds_ratio
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
}
