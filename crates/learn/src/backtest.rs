//! The backtest report of SPEC §5, computed from one record per lead: the lead's score taken just
//! before its outcome (or at the report time for open leads), the stages it had reached by then and
//! when, and which rules had fired. Records come from `leadscore_core::evaluate`; this module only
//! counts.
//!
//! Readings of the SPEC, chosen here and documented in docs/backtest.md:
//! - An open lead (no outcome) counts as not converted, scored at `as_of`.
//! - A lead "reached" a stage if its stage was that stage **or a later one** at some point
//!   before its cutoff (funnel semantics: jumping straight to SQL also passes MQL).
//! - A rule "fired" for a lead if it gave points, or, for a zero-point rule, if it applied.

use std::collections::BTreeMap;

use leadscore_core::compact::LeadState;
use leadscore_core::model::RuleKind;
use leadscore_core::time::{Duration, MS_PER_DAY, Millis, utc_day};
use leadscore_core::{AccountBook, CheckedModel, LeadHistory, Score};
use serde::Serialize;

use crate::metrics::{Band, auc_confidence_interval, bands_by_score, cumulative_gains, roc_auc};

/// What became of a lead, as far as the backtest knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Converted,
    Lost,
    Disqualified,
    Open,
}

impl Label {
    pub fn converted(self) -> bool {
        self == Label::Converted
    }
}

/// One lead, scored at its cutoff.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRecord {
    pub lead_id: String,
    pub label: Label,
    /// When the outcome happened (`None` for open leads).
    pub outcome_at: Option<Millis>,
    pub total: f64,
    /// The stage at the cutoff (an index into the model's stages; `None` = `lead`).
    pub stage: Option<usize>,
    /// For each stage index, when the lead first reached it or a later stage (`None`: never).
    pub reached_at: Vec<Option<Millis>>,
    /// Indices of the rules that fired.
    pub fired: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    pub stage: String,
    /// Leads whose stage at the cutoff is this one.
    pub leads_at_cutoff: usize,
    pub converted_at_cutoff: usize,
    /// Leads that reached this stage (or a later one) before their cutoff.
    pub reached: usize,
    /// Share of the leads that reached it that converted.
    pub precision: Option<f64>,
    /// Share of converters that reached it before converting.
    pub recall: Option<f64>,
    /// Median days from first reaching it to converting, over converters that reached it.
    pub median_days_to_conversion: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub dimension: String,
    pub fired: usize,
    pub fired_share: f64,
    /// Conversion rate of the leads it fired for.
    pub conversion_with: Option<f64>,
    /// Conversion rate of the leads it did not fire for.
    pub conversion_without: Option<f64>,
    /// `conversion_with / conversion_without`.
    pub lift: Option<f64>,
    /// How many of the leads it fired for converted.
    pub converted_with: usize,
    /// Leads it did not fire for, and how many of them converted.
    pub not_fired: usize,
    pub converted_without: usize,
    /// 95% interval of the lift (Katz's log risk ratio; with a zero cell, 0.5 is added to each).
    pub lift_ci: Option<(f64, f64)>,
    /// The rule's points in the model.
    pub points: f64,
    /// The data contradicts the rule's sign: positive points while even the interval's top is
    /// below 1, or negative points while even its bottom is above 1.
    pub wrong_sign: bool,
    /// For a wrong sign: the points the data suggests on the scorecard scale (20 points per
    /// doubling of the conversion rate: `20 · log2(lift)`, to the nearest 5).
    pub suggested_points: Option<f64>,
}

/// Katz's 95% interval of a risk ratio `(a / n1) / (c / n2)`; with a zero cell, 0.5 is added to
/// every cell (Haldane) so that the interval stays finite.
pub fn lift_interval(a: usize, n1: usize, c: usize, n2: usize) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (b, d) = (n1 - a, n2 - c);
    let zero = a == 0 || b == 0 || c == 0 || d == 0;
    let k = if zero { 0.5 } else { 0.0 };
    let (a, b, c, d) = (a as f64 + k, b as f64 + k, c as f64 + k, d as f64 + k);
    let (n1, n2) = (a + b, c + d);
    let ratio = (a / n1) / (c / n2);
    let se = (1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2).sqrt();
    Some(((ratio.ln() - 1.96 * se).exp(), (ratio.ln() + 1.96 * se).exp()))
}

/// Whether the data contradicts a rule's sign, and the points it suggests instead.
fn sign_check(points: f64, lift: Option<f64>, ci: Option<(f64, f64)>) -> (bool, Option<f64>) {
    let Some((lo, hi)) = ci else { return (false, None) };
    let wrong = (points > 0.0 && hi < 1.0) || (points < 0.0 && lo > 1.0);
    if !wrong {
        return (false, None);
    }
    // With no conversions at all the lift is 0: the interval's top is the honest estimate.
    let basis = lift.filter(|l| *l > 0.0).unwrap_or(hi);
    let suggested = (20.0 * basis.log2() / 5.0).round() * 5.0;
    (true, Some(suggested + 0.0))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub leads: usize,
    pub converted: usize,
    pub lost: usize,
    pub disqualified: usize,
    pub open: usize,
}

/// The whole report for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    pub model: String,
    pub counts: Counts,
    pub auc: Option<f64>,
    /// 95% bootstrap interval of the AUC.
    pub auc_ci: Option<(f64, f64)>,
    pub base_rate: f64,
    pub deciles: Vec<Band>,
    /// `(share of leads contacted, share of converters reached)` by decile, from (0, 0).
    pub gains: Vec<(f64, f64)>,
    /// `lead` first, then the model's stages in order.
    pub stages: Vec<StageReport>,
    pub rules: Vec<RuleReport>,
    /// Totals of converters and of the others, for the score distribution chart.
    #[serde(skip)]
    pub totals_converted: Vec<f64>,
    #[serde(skip)]
    pub totals_other: Vec<f64>,
}

/// Names the report needs from the model.
pub struct ModelNames<'a> {
    pub model: &'a str,
    pub stages: Vec<&'a str>,
    /// `(rule, dimension)` in model order.
    pub rules: Vec<(&'a str, &'a str)>,
    /// Each rule's points, in model order.
    pub points: Vec<f64>,
}

impl<'a> ModelNames<'a> {
    pub fn of(model: &'a CheckedModel) -> ModelNames<'a> {
        ModelNames {
            model: &model.name,
            stages: model.stages.iter().map(|s| s.name.as_str()).collect(),
            rules: model.rules.iter().map(|r| (r.name.as_str(), model.dimensions[r.dimension].name.as_str())).collect(),
            points: model.rules.iter().map(|r| r.points).collect(),
        }
    }
}

fn rate(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// Builds the report. `seed` fixes the bootstrap, so the same records give the same report.
pub fn build_report(names: &ModelNames<'_>, records: &[LeadRecord], seed: u64) -> BacktestReport {
    let scores: Vec<f64> = records.iter().map(|r| r.total).collect();
    let labels: Vec<bool> = records.iter().map(|r| r.label.converted()).collect();
    let count = |label: Label| records.iter().filter(|r| r.label == label).count();
    let counts = Counts {
        leads: records.len(),
        converted: count(Label::Converted),
        lost: count(Label::Lost),
        disqualified: count(Label::Disqualified),
        open: count(Label::Open),
    };
    let converters = counts.converted;
    let deciles = bands_by_score(&scores, &labels, 10);
    let gains = cumulative_gains(&deciles);

    let mut stages = Vec::new();
    let stage_names = std::iter::once(leadscore_core::model::DEFAULT_STAGE).chain(names.stages.iter().copied());
    for (index, name) in stage_names.enumerate() {
        let at_stage = |r: &&LeadRecord| if index == 0 { r.stage.is_none() } else { r.stage == Some(index - 1) };
        let at_cutoff: Vec<&LeadRecord> = records.iter().filter(at_stage).collect();
        let reached_at = |r: &LeadRecord| {
            if index == 0 { Some(Millis::MIN) } else { r.reached_at.get(index - 1).copied().flatten() }
        };
        let reached: Vec<&LeadRecord> = records.iter().filter(|r| reached_at(r).is_some()).collect();
        let reached_converted = reached.iter().filter(|r| r.label.converted()).count();
        let days: Vec<f64> = if index == 0 {
            Vec::new()
        } else {
            reached
                .iter()
                .filter(|r| r.label.converted())
                .filter_map(|r| Some((r.outcome_at? - reached_at(r)?) as f64 / MS_PER_DAY as f64))
                .collect()
        };
        stages.push(StageReport {
            stage: name.to_owned(),
            leads_at_cutoff: at_cutoff.len(),
            converted_at_cutoff: at_cutoff.iter().filter(|r| r.label.converted()).count(),
            reached: reached.len(),
            precision: rate(reached_converted, reached.len()),
            recall: rate(reached_converted, converters),
            median_days_to_conversion: median(days),
        });
    }

    let mut fired: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for r in records {
        for &rule in &r.fired {
            let entry = fired.entry(rule).or_default();
            entry.0 += 1;
            entry.1 += usize::from(r.label.converted());
        }
    }
    let rules = names
        .rules
        .iter()
        .enumerate()
        .map(|(i, (rule, dimension))| {
            let (n, converted) = fired.get(&i).copied().unwrap_or_default();
            let with = rate(converted, n);
            let without = rate(converters - converted, records.len() - n);
            let lift = match (with, without) {
                (Some(w), Some(o)) if o > 0.0 => Some(w / o),
                _ => None,
            };
            let lift_ci = lift_interval(converted, n, converters - converted, records.len() - n);
            let points = names.points.get(i).copied().unwrap_or(0.0);
            let (wrong_sign, suggested_points) = sign_check(points, lift, lift_ci);
            RuleReport {
                rule: (*rule).to_owned(),
                dimension: (*dimension).to_owned(),
                fired: n,
                fired_share: rate(n, records.len()).unwrap_or(0.0),
                conversion_with: with,
                conversion_without: without,
                lift,
                converted_with: converted,
                not_fired: records.len() - n,
                converted_without: converters - converted,
                lift_ci,
                points,
                wrong_sign,
                suggested_points,
            }
        })
        .collect();

    BacktestReport {
        model: names.model.to_owned(),
        counts,
        auc: roc_auc(&scores, &labels),
        auc_ci: auc_confidence_interval(&scores, &labels, 0.95, 1000, seed),
        base_rate: rate(converters, records.len()).unwrap_or(0.0),
        deciles,
        gains,
        stages,
        rules,
        totals_converted: records.iter().filter(|r| r.label.converted()).map(|r| r.total).collect(),
        totals_other: records.iter().filter(|r| !r.label.converted()).map(|r| r.total).collect(),
    }
}

/// Scores one lead at its cutoff (its first outcome minus `gap`, or `as_of` for open leads) and
/// finds when it first reached each stage. The batch `backtest` and the server's both use it.
pub fn record_lead(
    model: &CheckedModel,
    lead: &LeadHistory,
    accounts: &AccountBook,
    as_of: Millis,
    gap: Duration,
) -> LeadRecord {
    record_compact_lead(model, LeadState::of(model, lead), accounts, as_of, gap)
}

/// [`record_lead`] from the lead's state: its messages were read and folded once, and each
/// checkpoint reads the state at its instant.
pub fn record_compact_lead(
    model: &CheckedModel,
    mut lead: LeadState,
    accounts: &AccountBook,
    as_of: Millis,
    gap: Duration,
) -> LeadRecord {
    let outcome = lead.outcomes().iter().min_by_key(|o| o.at);
    let (label, outcome_at, cutoff) = match outcome {
        // Strictly before the outcome, so the outcome itself cannot show.
        Some(o) => {
            let label = match o.kind {
                k if k.is_conversion() => Label::Converted,
                leadscore_core::OutcomeKind::Lost => Label::Lost,
                _ => Label::Disqualified,
            };
            (label, Some(o.at), o.at - gap.as_millis().max(1))
        }
        None => (Label::Open, None, as_of),
    };
    let score = lead.score_at(model, accounts, cutoff);
    let stage_index = |s: &Score| model.stages.iter().position(|st| st.name == s.stage);
    // Stage timeline: the score at the end of each UTC day with events, and at the cutoff (a
    // model without stages has none to find).
    let with_stages = !model.stages.is_empty();
    let mut checkpoints: Vec<Millis> = lead
        .event_times()
        .filter(|_| with_stages)
        .map(|(at, visible_at)| at.max(visible_at))
        .filter(|&t| t <= cutoff)
        .map(|t| (utc_day(t) + 1) * MS_PER_DAY - 1)
        .collect();
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let mut reached_at: Vec<Option<Millis>> = vec![None; model.stages.len()];
    for t in checkpoints.into_iter().map(|t| t.min(cutoff)).chain([cutoff]) {
        if reached_at.iter().all(Option::is_some) {
            break; // every stage reached: later checkpoints cannot change a first time
        }
        let stage = if t == cutoff { score.stage.clone() } else { lead.stage_at(model, accounts, t) };
        if let Some(index) = model.stages.iter().position(|st| st.name == stage) {
            for slot in reached_at.iter_mut().take(index + 1) {
                slot.get_or_insert(t);
            }
        }
    }
    let fired = model
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| {
            score.contributions.iter().any(|c| {
                c.rule == rule.name
                    && match &rule.kind {
                        RuleKind::Count { at_least, .. } => c.matched >= *at_least,
                        _ => c.points != 0.0 || c.matched > 0,
                    }
            })
        })
        .map(|(i, _)| i)
        .collect();
    LeadRecord {
        lead_id: lead.id().to_owned(),
        label,
        outcome_at,
        total: score.total,
        stage: stage_index(&score),
        reached_at,
        fired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, label: Label, total: f64, reached: Vec<Option<Millis>>, fired: Vec<usize>) -> LeadRecord {
        let stage = reached.iter().rposition(Option::is_some);
        LeadRecord {
            lead_id: id.into(),
            label,
            outcome_at: (label != Label::Open).then_some(10 * MS_PER_DAY),
            total,
            stage,
            reached_at: reached,
            fired,
        }
    }

    fn names() -> ModelNames<'static> {
        ModelNames {
            model: "m",
            stages: vec!["mql", "sql"],
            rules: vec![("Pricing", "engagement"), ("Careers", "engagement")],
            points: vec![10.0, -10.0],
        }
    }

    #[test]
    fn lift_intervals_match_katz_and_flag_a_rule_whose_sign_the_data_contradicts() {
        // 30 of 100 with against 10 of 100 without: RR 3, Katz 95% interval 1.551–5.803
        // (exp(ln 3 ± 1.96·sqrt(1/30 − 1/100 + 1/10 − 1/100))).
        let (lo, hi) = lift_interval(30, 100, 10, 100).unwrap();
        assert!((lo - 1.551).abs() < 0.001 && (hi - 5.803).abs() < 0.001, "{lo} {hi}");
        assert_eq!(lift_interval(3, 10, 0, 0), None, "no leads without: no interval");
        let (lo, hi) = lift_interval(0, 12, 20, 100).unwrap();
        assert!(lo > 0.0 && hi.is_finite() && hi < 3.0, "a zero cell still gives a finite interval: {lo} {hi}");
        // Negative points on a rule that converts 2.8 times as often: flagged, about +30 suggested.
        assert_eq!(sign_check(-10.0, Some(2.8), Some((1.9, 4.1))), (true, Some(30.0)));
        assert_eq!(sign_check(-10.0, Some(2.8), Some((0.7, 4.1))), (false, None), "the interval spans 1");
        assert_eq!(sign_check(15.0, Some(0.5), Some((0.3, 0.8))), (true, Some(-20.0)));
        assert_eq!(sign_check(15.0, Some(0.0), Some((0.01, 0.5))), (true, Some(-20.0)), "no conversion: the top");
    }

    #[test]
    fn report_counts_precision_recall_and_days_to_conversion() {
        let day = |d: i64| Some(d * MS_PER_DAY);
        let records = vec![
            record("a", Label::Converted, 90.0, vec![day(2), day(4)], vec![0]),
            record("b", Label::Converted, 60.0, vec![day(6), None], vec![0]),
            record("c", Label::Lost, 55.0, vec![day(1), None], vec![1]),
            record("d", Label::Open, 10.0, vec![None, None], vec![1]),
        ];
        let report = build_report(&names(), &records, 1);
        assert_eq!(report.counts, Counts { leads: 4, converted: 2, lost: 1, disqualified: 0, open: 1 });
        assert_eq!(report.auc, Some(1.0));
        assert_eq!(report.base_rate, 0.5);
        let mql = &report.stages[1];
        assert_eq!((mql.reached, mql.precision, mql.recall), (3, Some(2.0 / 3.0), Some(1.0)));
        // a reached mql on day 2 and converted on day 10 (8 days); b on day 6 (4 days).
        assert_eq!(mql.median_days_to_conversion, Some(6.0));
        let sql = &report.stages[2];
        assert_eq!((sql.reached, sql.precision, sql.recall, sql.leads_at_cutoff), (1, Some(1.0), Some(0.5), 1));
        assert_eq!(report.stages[0].leads_at_cutoff, 1, "only d is still a plain lead");
        let pricing = &report.rules[0];
        assert_eq!(
            (pricing.fired, pricing.conversion_with, pricing.conversion_without, pricing.lift),
            (2, Some(1.0), Some(0.0), None)
        );
        let careers = &report.rules[1];
        assert_eq!(
            (careers.conversion_with, careers.conversion_without, careers.lift),
            (Some(0.0), Some(1.0), Some(0.0))
        );
        assert_eq!(report.gains.last(), Some(&(1.0, 1.0)));
    }

    #[test]
    fn same_records_give_the_same_report() {
        let records: Vec<LeadRecord> = (0..50)
            .map(|i| {
                record(
                    &i.to_string(),
                    if i % 3 == 0 { Label::Converted } else { Label::Lost },
                    f64::from(i % 7),
                    vec![None, None],
                    vec![],
                )
            })
            .collect();
        assert_eq!(build_report(&names(), &records, 9), build_report(&names(), &records, 9));
    }
}
