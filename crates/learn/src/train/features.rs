//! From columns to binary features: numeric traits cut into quantile bins that are then merged
//! until neighbouring bins differ significantly in conversion log-odds; categorical traits grouped
//! (rare values pooled, values sorted by their shrunken conversion rate, neighbours merged the same
//! way); event counts cut into "at least n" thresholds. A missing value, or a category never seen
//! in training, activates no feature: it is the baseline of 0 points.

use std::collections::HashMap;

use super::{Column, Source, Values};

/// A column as the trainer uses it.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub name: String,
    pub source: Source,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Numeric(Vec<Option<f64>>),
    Categorical { levels: Vec<String>, codes: Vec<Option<u32>> },
}

/// When a feature is on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// `lo <= x < hi` (unbounded where `None`).
    Range { column: usize, lo: Option<f64>, hi: Option<f64> },
    /// `x >= n` for an event count.
    AtLeast { column: usize, n: f64 },
    /// The category is one of these.
    Levels { column: usize, codes: Vec<u32> },
    /// Both hold (a learned interaction).
    Both(Box<Condition>, Box<Condition>),
}

impl Condition {
    pub fn holds(&self, columns: &[Prepared], row: usize) -> bool {
        match self {
            Condition::Range { column, lo, hi } => match &columns[*column].kind {
                Kind::Numeric(values) => {
                    values[row].is_some_and(|x| lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x < hi))
                }
                Kind::Categorical { .. } => false,
            },
            Condition::AtLeast { column, n } => match &columns[*column].kind {
                Kind::Numeric(values) => values[row].is_some_and(|x| x >= *n),
                Kind::Categorical { .. } => false,
            },
            Condition::Levels { column, codes } => match &columns[*column].kind {
                Kind::Categorical { codes: values, .. } => values[row].is_some_and(|c| codes.contains(&c)),
                Kind::Numeric(_) => false,
            },
            Condition::Both(a, b) => a.holds(columns, row) && b.holds(columns, row),
        }
    }

    /// The columns the condition reads, first column first.
    pub fn columns(&self) -> Vec<usize> {
        match self {
            Condition::Range { column, .. } | Condition::AtLeast { column, .. } | Condition::Levels { column, .. } => {
                vec![*column]
            }
            Condition::Both(a, b) => {
                let mut c = a.columns();
                c.extend(b.columns());
                c
            }
        }
    }
}

/// Binning settings.
#[derive(Debug, Clone)]
pub struct Binning {
    /// Initial quantile bins of a numeric column.
    pub initial_bins: usize,
    /// A bin or category group needs at least this share of the training rows…
    pub min_share: f64,
    /// …and at least this many rows.
    pub min_rows: usize,
    /// Neighbouring bins merge while their log-odds differ by less than this many standard errors.
    pub merge_z: f64,
}

impl Default for Binning {
    fn default() -> Self {
        Binning { initial_bins: 20, min_share: 0.01, min_rows: 20, merge_z: 1.96 }
    }
}

/// Types every column (numeric when nearly every present cell is a number) and drops the ones that
/// cannot help (all missing, constant, id-like), saying why in `warnings`.
pub(crate) fn prepare(columns: &[Column], warnings: &mut Vec<String>) -> Vec<Prepared> {
    let mut prepared = Vec::new();
    for column in columns {
        let kind = match &column.values {
            Values::Number(values) => Kind::Numeric(values.clone()),
            Values::Text(values) => {
                let parsed: Vec<Option<f64>> = values
                    .iter()
                    .map(|v| v.as_deref().and_then(|t| t.trim().parse::<f64>().ok().filter(|x| x.is_finite())))
                    .collect();
                let present = values.iter().flatten().count();
                let numbers = parsed.iter().flatten().count();
                // Mostly numbers: the rest (`NA`, `n/a`, `-`) are missing values.
                if numbers > 0 && numbers as f64 >= 0.9 * present as f64 {
                    if numbers < present {
                        let mut odd: Vec<&str> = values
                            .iter()
                            .zip(&parsed)
                            .filter_map(|(v, p)| if p.is_none() { v.as_deref() } else { None })
                            .collect();
                        odd.sort_unstable();
                        odd.dedup();
                        let shown: Vec<String> = odd.iter().take(3).map(|v| format!("`{v}`")).collect();
                        warnings.push(format!(
                            "column `{}` is numeric: {} cells that are not numbers ({}{}) are treated as missing",
                            column.name,
                            present - numbers,
                            shown.join(", "),
                            if odd.len() > 3 { ", …" } else { "" }
                        ));
                    }
                    Kind::Numeric(parsed)
                } else {
                    {
                        let mut levels: Vec<String> = Vec::new();
                        let mut index: HashMap<&str, u32> = HashMap::new();
                        let mut codes = Vec::with_capacity(values.len());
                        for v in values {
                            codes.push(v.as_deref().map(|text| {
                                *index.entry(text).or_insert_with(|| {
                                    levels.push(text.to_owned());
                                    (levels.len() - 1) as u32
                                })
                            }));
                        }
                        Kind::Categorical { levels, codes }
                    }
                }
            }
        };
        let (present, distinct, integers) = match &kind {
            Kind::Numeric(values) => {
                let mut seen: Vec<f64> = values.iter().flatten().copied().collect();
                let integers = seen.iter().all(|x| x.fract() == 0.0);
                let present = seen.len();
                seen.sort_by(f64::total_cmp);
                seen.dedup();
                (present, seen.len(), integers)
            }
            Kind::Categorical { levels, codes } => (codes.iter().flatten().count(), levels.len(), false),
        };
        let missing = column_len(&kind) - present;
        if present == 0 {
            warnings.push(format!("skipping column `{}`: every value is missing", column.name));
            continue;
        }
        if distinct == 1 && missing == 0 {
            warnings.push(format!("skipping column `{}`: the same value on every row", column.name));
            continue;
        }
        // Distinct whole numbers are normal in a small sample (employee counts of 13 companies),
        // so a numeric column needs more rows than a text one before it is taken for an id.
        let id_like = match kind {
            Kind::Numeric(_) => present >= 200 && integers && distinct as f64 >= 0.95 * present as f64,
            Kind::Categorical { .. } => present >= 10 && distinct as f64 >= 0.9 * present as f64,
        };
        if matches!(column.source, Source::Trait) && is_personal(&column.name) {
            warnings.push(format!(
                "skipping column `{}`: a person's name or phone number says nothing about whether they buy \
                 (a model would only learn its noise)",
                column.name
            ));
            continue;
        }
        if id_like && matches!(column.source, Source::Trait) {
            warnings.push(format!(
                "skipping column `{}`: looks like an id ({distinct} distinct values in {present} rows)",
                column.name
            ));
            continue;
        }
        prepared.push(Prepared { name: column.name.clone(), source: column.source.clone(), kind });
    }
    prepared
}

/// A column holding a person's name or phone number (`first_name`, `Last Name`, `phone`, …): in a
/// sample of a few thousand leads, common first and last names repeat often enough to get points
/// of their own, which are noise.
fn is_personal(name: &str) -> bool {
    let key: String = name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    matches!(
        key.as_str(),
        "name"
            | "firstname"
            | "lastname"
            | "fullname"
            | "givenname"
            | "familyname"
            | "surname"
            | "contactname"
            | "leadname"
            | "phone"
            | "phonenumber"
            | "mobile"
            | "mobilephone"
            | "mobilephonenumber"
    )
}

fn column_len(kind: &Kind) -> usize {
    match kind {
        Kind::Numeric(v) => v.len(),
        Kind::Categorical { codes, .. } => codes.len(),
    }
}

/// A run of merged bins or categories with its counts.
#[derive(Debug, Clone)]
struct Group {
    members: Vec<usize>,
    rows: f64,
    positives: f64,
}

impl Group {
    fn log_odds(&self) -> f64 {
        ((self.positives + 0.5) / (self.rows - self.positives + 0.5)).ln()
    }

    fn variance(&self) -> f64 {
        1.0 / (self.positives + 0.5) + 1.0 / (self.rows - self.positives + 0.5)
    }

    fn absorb(&mut self, other: Group) {
        self.members.extend(other.members);
        self.rows += other.rows;
        self.positives += other.positives;
    }
}

/// The z with `P(Z > z) = p` for a standard normal Z (Abramowitz & Stegun 26.2.23, error < 5e-4).
fn upper_tail_z(p: f64) -> f64 {
    let p = p.clamp(1e-300, 0.5);
    let t = (-2.0 * p.ln()).sqrt();
    t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t)
}

/// Merges neighbours: first groups below `min_rows` into their closer neighbour, then the least
/// different neighbours while they differ by less than `merge_z` standard errors.
fn merge_neighbours(mut groups: Vec<Group>, min_rows: f64, merge_z: f64) -> Vec<Group> {
    while groups.len() > 1 {
        let Some((small, _)) =
            groups.iter().enumerate().filter(|(_, g)| g.rows < min_rows).min_by(|a, b| a.1.rows.total_cmp(&b.1.rows))
        else {
            break;
        };
        let target = if small == 0 {
            1
        } else if small == groups.len() - 1 {
            small - 1
        } else {
            let lo = groups[small].log_odds();
            let left = (groups[small - 1].log_odds() - lo).abs();
            let right = (groups[small + 1].log_odds() - lo).abs();
            if left <= right { small - 1 } else { small + 1 }
        };
        let (keep, gone) = if target < small { (target, small) } else { (small, target) };
        let removed = groups.remove(gone);
        groups[keep].absorb(removed);
    }
    while groups.len() > 1 {
        let (i, z) = (0..groups.len() - 1)
            .map(|i| {
                let (a, b) = (&groups[i], &groups[i + 1]);
                (i, (a.log_odds() - b.log_odds()).abs() / (a.variance() + b.variance()).sqrt())
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::INFINITY));
        if z >= merge_z {
            break;
        }
        let removed = groups.remove(i + 1);
        groups[i].absorb(removed);
    }
    groups
}

/// The main-effect features of every column, learned from the training rows.
pub(crate) fn bin_columns(columns: &[Prepared], rows: &[usize], labels: &[bool], binning: &Binning) -> Vec<Condition> {
    let mut features = Vec::new();
    let min_rows = (binning.min_share * rows.len() as f64).max(binning.min_rows as f64);
    for (c, column) in columns.iter().enumerate() {
        match &column.kind {
            Kind::Numeric(values) => {
                let mut observed: Vec<(f64, bool)> =
                    rows.iter().filter_map(|&r| values[r].map(|x| (x, labels[r]))).collect();
                let missing = rows.len() - observed.len();
                observed.sort_by(|a, b| a.0.total_cmp(&b.0));
                // Distinct values with their counts.
                let mut distinct: Vec<(f64, f64, f64)> = Vec::new();
                for &(x, y) in &observed {
                    match distinct.last_mut() {
                        Some(last) if last.0 == x => {
                            last.1 += 1.0;
                            last.2 += f64::from(u8::from(y));
                        }
                        _ => distinct.push((x, 1.0, f64::from(u8::from(y)))),
                    }
                }
                if distinct.is_empty() {
                    continue;
                }
                // Quantile bins that never split a value.
                let target = observed.len() as f64 / binning.initial_bins.max(1) as f64;
                let mut groups: Vec<Group> = Vec::new();
                let mut current = Group { members: Vec::new(), rows: 0.0, positives: 0.0 };
                for (i, &(_, n, p)) in distinct.iter().enumerate() {
                    current.members.push(i);
                    current.rows += n;
                    current.positives += p;
                    if current.rows >= target {
                        groups.push(std::mem::replace(
                            &mut current,
                            Group { members: Vec::new(), rows: 0.0, positives: 0.0 },
                        ));
                    }
                }
                if !current.members.is_empty() {
                    groups.push(current);
                }
                let groups = merge_neighbours(groups, min_rows, binning.merge_z);
                let starts: Vec<f64> =
                    groups.iter().filter_map(|g| g.members.iter().min().map(|&i| distinct[i].0)).collect();
                match column.source {
                    Source::Trait => {
                        if groups.len() == 1 && missing == 0 {
                            continue;
                        }
                        for (g, _) in groups.iter().enumerate() {
                            let lo = if g == 0 { None } else { Some(starts[g]) };
                            let hi = starts.get(g + 1).copied();
                            features.push(Condition::Range { column: c, lo, hi });
                        }
                    }
                    Source::EventCount { .. } => {
                        for &n in starts.iter().skip(1) {
                            features.push(Condition::AtLeast { column: c, n });
                        }
                    }
                }
            }
            Kind::Categorical { levels, codes } => {
                let mut counts = vec![(0.0f64, 0.0f64); levels.len()];
                let mut present = 0.0;
                let mut positives = 0.0;
                for &r in rows {
                    if let Some(code) = codes[r] {
                        counts[code as usize].0 += 1.0;
                        counts[code as usize].1 += f64::from(u8::from(labels[r]));
                        present += 1.0;
                        positives += f64::from(u8::from(labels[r]));
                    }
                }
                let missing = rows.len() as f64 - present;
                let rare_below = min_rows.min(present / 2.0).max(1.0);
                let mut groups: Vec<Group> = Vec::new();
                let mut rare = Group { members: Vec::new(), rows: 0.0, positives: 0.0 };
                for (code, &(n, p)) in counts.iter().enumerate() {
                    if n == 0.0 {
                        continue;
                    }
                    let group = Group { members: vec![code], rows: n, positives: p };
                    if n < rare_below { rare.absorb(group) } else { groups.push(group) }
                }
                if rare.rows >= rare_below {
                    groups.push(rare);
                }
                // Sort by the conversion rate shrunk toward the column's rate (empirical Bayes).
                let prior = (positives + 0.5) / (present + 1.0);
                let strength = 10.0;
                groups.sort_by(|a, b| {
                    let ra = (a.positives + strength * prior) / (a.rows + strength);
                    let rb = (b.positives + strength * prior) / (b.rows + strength);
                    ra.total_cmp(&rb)
                });
                // Neighbours in an order chosen by the data differ more than chance alone would
                // suggest: hold each of the k - 1 adjacent comparisons to a Bonferroni-corrected
                // level, so a column of noise (last names) does not come out in bands.
                let merge_z = binning.merge_z.max(upper_tail_z(0.025 / groups.len().saturating_sub(1).max(1) as f64));
                let groups = merge_neighbours(groups, rare_below, merge_z);
                if groups.len() == 1 && missing == 0.0 {
                    continue;
                }
                for group in groups {
                    let mut members: Vec<u32> = group.members.iter().map(|&m| m as u32).collect();
                    members.sort_unstable();
                    features.push(Condition::Levels { column: c, codes: members });
                }
            }
        }
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, values: &[&str]) -> Column {
        Column {
            name: name.into(),
            source: Source::Trait,
            values: Values::Text(values.iter().map(|v| (!v.is_empty()).then(|| (*v).to_owned())).collect()),
        }
    }

    #[test]
    fn upper_tail_z_matches_normal_quantiles() {
        for (p, z) in [(0.025, 1.959964), (0.005, 2.575829), (0.0005, 3.290527), (0.5, 0.0)] {
            assert!((upper_tail_z(p) - z).abs() < 1e-3, "{p}: {}", upper_tail_z(p));
        }
    }

    #[test]
    fn constant_and_id_like_columns_are_skipped_with_a_warning() {
        let ids: Vec<String> = (0..250).map(|i| format!("L{i}")).collect();
        let numbers: Vec<String> = (0..250).map(|i| (1000 + i).to_string()).collect();
        let columns = vec![
            text("id", &ids.iter().map(String::as_str).collect::<Vec<_>>()),
            text("number", &numbers.iter().map(String::as_str).collect::<Vec<_>>()),
            text("same", &["x"; 250]),
            text("kept", &(0..250).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect::<Vec<_>>()),
        ];
        let mut warnings = Vec::new();
        let prepared = prepare(&columns, &mut warnings);
        assert_eq!(prepared.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["kept"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn missing_values_and_unseen_categories_activate_no_feature() {
        // 200 rows: x numeric with some missing, c categorical; label follows x and c.
        let mut xs = Vec::new();
        let mut cs = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200 {
            xs.push(if i % 10 == 0 { String::new() } else { (i % 50).to_string() });
            cs.push(if i % 2 == 0 { "a" } else { "b" }.to_owned());
            labels.push(i % 50 >= 25 || i % 4 == 0);
        }
        let columns = vec![
            text("x", &xs.iter().map(String::as_str).collect::<Vec<_>>()),
            text("c", &cs.iter().map(String::as_str).collect::<Vec<_>>()),
        ];
        let mut warnings = Vec::new();
        let mut prepared = prepare(&columns, &mut warnings);
        let rows: Vec<usize> = (0..200).collect();
        let features = bin_columns(&prepared, &rows, &labels, &Binning::default());
        assert!(features.iter().any(|f| matches!(f, Condition::Range { column: 0, .. })));
        // A missing x (row 0) matches no x feature; every present x matches exactly one.
        let x_features: Vec<&Condition> = features.iter().filter(|f| f.columns() == [0]).collect();
        assert_eq!(x_features.iter().filter(|f| f.holds(&prepared, 0)).count(), 0);
        assert_eq!(x_features.iter().filter(|f| f.holds(&prepared, 1)).count(), 1);
        // An unseen category (a new code) matches no c feature.
        if let Kind::Categorical { levels, codes } = &mut prepared[1].kind {
            levels.push("new".into());
            codes[3] = Some(2);
        }
        assert_eq!(features.iter().filter(|f| f.columns() == [1] && f.holds(&prepared, 3)).count(), 0);
    }

    #[test]
    fn bins_merge_where_log_odds_do_not_differ() {
        // x in 0..100; the label only depends on x >= 50: the bins collapse to two.
        let xs: Vec<String> = (0..1000).map(|i| (i % 100).to_string()).collect();
        let labels: Vec<bool> = (0..1000).map(|i| (i % 100 >= 50) == (i % 7 != 0)).collect();
        let columns = vec![text("x", &xs.iter().map(String::as_str).collect::<Vec<_>>())];
        let prepared = prepare(&columns, &mut Vec::new());
        let rows: Vec<usize> = (0..1000).collect();
        let features = bin_columns(&prepared, &rows, &labels, &Binning::default());
        assert_eq!(
            features,
            vec![
                Condition::Range { column: 0, lo: None, hi: Some(50.0) },
                Condition::Range { column: 0, lo: Some(50.0), hi: None }
            ]
        );
    }
}

#[cfg(test)]
mod numeric_tests {
    use super::*;

    #[test]
    fn a_mostly_numeric_column_treats_odd_cells_as_missing() {
        let values: Vec<Option<String>> =
            (0..100).map(|i| Some(if i == 5 { "NA".to_owned() } else { (i % 10).to_string() })).collect();
        let columns = vec![Column { name: "visits".into(), source: Source::Trait, values: Values::Text(values) }];
        let mut warnings = Vec::new();
        let prepared = prepare(&columns, &mut warnings);
        match &prepared[0].kind {
            Kind::Numeric(numbers) => {
                assert_eq!(numbers[5], None);
                assert_eq!(numbers[6], Some(6.0));
            }
            Kind::Categorical { .. } => panic!("should be numeric"),
        }
        assert!(warnings[0].contains("`NA`"), "{warnings:?}");
    }
}
