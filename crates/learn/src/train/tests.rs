//! Known-answer tests of the whole training pipeline.

use super::*;

fn text_column(name: &str, values: Vec<String>) -> Column {
    Column {
        name: name.into(),
        source: Source::Trait,
        values: Values::Text(values.into_iter().map(|v| (!v.is_empty()).then_some(v)).collect()),
    }
}

/// A deterministic pseudo-random stream in [0, 1).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut lcg = Lcg::new(seed);
    move || lcg.next_value() as f64 / (1u64 << 31) as f64
}

#[test]
fn separable_data_gives_auc_one_and_points_for_the_separating_value() {
    let n = 400;
    let kinds: Vec<String> = (0..n).map(|i| if i % 2 == 0 { "buyer" } else { "browser" }.to_owned()).collect();
    let labels: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    // (The leakage guard would rightly leave such a column out.)
    let options = Options { guard: None, ..Options::default() };
    for algorithm in [Algorithm::Boosted, Algorithm::Logistic] {
        let options = Options { algorithm, ..options.clone() };
        let trained = train(&[text_column("kind", kinds.clone())], &labels, &options).unwrap();
        assert!((trained.cv.auc_mean() - 1.0).abs() < 1e-12, "{:?}", trained.cv.auc);
        // A value without a rule is the 0-point baseline.
        let points = |name: &str| trained.rules.iter().find(|r| r.name == name).map_or(0.0, |r| r.points);
        let gap = points("kind is buyer") - points("kind is browser");
        assert!(gap > 40.0, "{algorithm:?}: {:?}", trained.rules);
        assert!(trained.cv.log_loss_mean() < 0.1, "{algorithm:?}: {:?}", trained.cv.log_loss);
    }
    // The guard on: the column is named and left out.
    let err = train(&[text_column("kind", kinds)], &labels, &Options::default()).unwrap_err();
    assert_eq!(err, TrainError::NoFeatures);
}

#[test]
fn pure_noise_cross_validates_to_about_one_half() {
    let n = 2000;
    let mut u = uniform(7);
    let colours = ["red", "green", "blue", "grey"];
    let colour: Vec<String> = (0..n).map(|_| colours[(u() * 4.0) as usize % 4].to_owned()).collect();
    let size: Vec<String> = (0..n).map(|_| format!("{:.2}", u() * 100.0)).collect();
    let labels: Vec<bool> = (0..n).map(|_| u() < 0.3).collect();
    let trained =
        train(&[text_column("colour", colour), text_column("size", size)], &labels, &Options::default()).unwrap();
    assert!((trained.cv.auc_mean() - 0.5).abs() < 0.05, "{:?}", trained.cv.auc);
}

#[test]
fn a_planted_feature_carries_the_points() {
    let n = 3000;
    let mut u = uniform(11);
    let mut visits = Vec::new();
    let mut noise_a = Vec::new();
    let mut noise_b = Vec::new();
    let mut visit_counts = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..n {
        let v = (u() * 20.0).floor();
        visit_counts.push(v);
        visits.push(v.to_string());
        noise_a.push(["x", "y", "z"][(u() * 3.0) as usize % 3].to_owned());
        noise_b.push(format!("{:.1}", u() * 10.0));
        let p = logistic::sigmoid(-2.0 + 0.25 * v);
        labels.push(u() < p);
    }
    let trained = train(
        &[text_column("noise_a", noise_a), text_column("visits", visits), text_column("noise_b", noise_b)],
        &labels,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(trained.factors[0].name, "visits", "{:?}", trained.factors);
    let visits_spread = trained.factors[0].spread;
    for factor in &trained.factors[1..] {
        assert!(factor.spread < 0.2 * visits_spread, "{factor:?} vs {visits_spread}");
    }
    assert!(trained.cv.auc_mean() > 0.75, "{:?}", trained.cv.auc);
    // Low visits score below high visits, by about what the truth says (0.25 log-odds a visit).
    let mean = |keep: &dyn Fn(f64) -> bool| {
        let rows: Vec<usize> = (0..n).filter(|&r| keep(visit_counts[r])).collect();
        rows.iter().map(|&r| trained.fitted(r)).sum::<f64>() / rows.len() as f64
    };
    let (low, high) = (mean(&|v| v < 4.0), mean(&|v| v >= 16.0));
    let truth = |v: f64| logistic::sigmoid(-2.0 + 0.25 * v);
    assert!((low - truth(1.5)).abs() < 0.06 && (high - truth(17.5)).abs() < 0.08, "low {low}, high {high}");
}

#[test]
fn calibration_reproduces_the_fitted_probabilities() {
    let n = 600;
    let mut u = uniform(3);
    let grade: Vec<String> = (0..n).map(|_| ["a", "b", "c"][(u() * 3.0) as usize % 3].to_owned()).collect();
    let labels: Vec<bool> = grade.iter().map(|g| u() < if g == "a" { 0.7 } else { 0.2 }).collect();
    let trained = train(&[text_column("grade", grade.clone())], &labels, &Options::default()).unwrap();
    for (r, g) in grade.iter().enumerate() {
        let total: f64 =
            trained.rules.iter().filter(|rule| rule.condition.contains(&format!("\"{g}\""))).map(|r| r.points).sum();
        let p = 1.0 / (1.0 + (-(trained.intercept + trained.slope * total)).exp());
        assert!((p - trained.fitted(r)).abs() < 1e-9, "{g}");
    }
    assert!((trained.slope - std::f64::consts::LN_2 / 20.0).abs() < 1e-12);
}

#[test]
fn bad_inputs_are_errors() {
    let column = text_column("x", vec!["a".into(), "b".into()]);
    assert_eq!(train(&[], &[], &Options::default()).unwrap_err(), TrainError::NoRows);
    assert_eq!(
        train(std::slice::from_ref(&column), &[true, true], &Options::default()).unwrap_err(),
        TrainError::SingleClass("converted")
    );
}

#[test]
fn model_file_quotes_awkward_column_names() {
    let n = 200;
    // The awkward value is the rarer one, so that it has a rule of its own (the commoner value is
    // the baseline); the guard would leave so clean a column out.
    let names: Vec<String> = (0..n).map(|i| if i % 5 < 2 { "it's \"A\"" } else { "B" }.to_owned()).collect();
    let labels: Vec<bool> = (0..n).map(|i| (i % 5 < 2) != (i % 9 == 0)).collect();
    let options = Options { guard: None, ..Options::default() };
    let trained = train(&[text_column("Lead \"Source\"", names)], &labels, &options).unwrap();
    assert!(trained.model.contains(r#""Lead \"Source\"" = "string""#), "{}", trained.model);
    assert!(
        trained.model.contains(r#"if = "lead[\"Lead \\\"Source\\\"\"] == \"it's \\\"A\\\"\"""#),
        "{}",
        trained.model
    );
}

#[test]
fn the_written_model_checks_and_the_engine_reproduces_the_fitted_probabilities() {
    use leadscore_core::{AccountBook, CheckedModel, LeadHistory, evaluate};
    let n = 1500;
    let mut u = uniform(21);
    let mut time = Vec::new();
    let mut source = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let t = (u() * 1000.0).floor();
        let s = ["Google", "Direct \"Traffic\"", "it's Olark", "rare"]
            [if u() < 0.02 { 3 } else { (u() * 3.0) as usize % 3 }];
        labels.push(u() < logistic::sigmoid(-1.5 + t / 400.0 + if s == "Google" { 1.0 } else { 0.0 }));
        time.push(if i % 13 == 0 { String::new() } else { t.to_string() });
        source.push(s.to_owned());
    }
    let columns = [text_column("Total Time (s)", time.clone()), text_column("Lead Source", source.clone())];
    let trained = train(&columns, &labels, &Options::default()).unwrap();
    let model = CheckedModel::from_source(&trained.model).unwrap_or_else(|d| panic!("{d:?}\n{}", trained.model));
    let accounts = AccountBook::default();
    for r in 0..n {
        let mut traits = serde_json::Map::new();
        if !time[r].is_empty() {
            traits.insert("Total Time (s)".into(), serde_json::Value::String(time[r].clone()));
        }
        traits.insert("Lead Source".into(), serde_json::Value::String(source[r].clone()));
        let lead =
            LeadHistory { id: r.to_string(), traits, events: Vec::new(), outcomes: Vec::new(), ignore_applied: false };
        let score = evaluate(&model, &lead, &accounts, 0);
        let p = score.probability.unwrap();
        assert!((p - trained.fitted(r)).abs() < 1e-6, "row {r}: engine {p} vs trained {}", trained.fitted(r));
    }
    // A lead with nothing known, or an unseen category, scores the baseline.
    let mut traits = serde_json::Map::new();
    traits.insert("Lead Source".into(), serde_json::Value::String("Carrier pigeon".into()));
    traits.insert("Total Time (s)".into(), serde_json::Value::String("NA".into()));
    let lead = LeadHistory { id: "x".into(), traits, events: Vec::new(), outcomes: Vec::new(), ignore_applied: false };
    assert_eq!(evaluate(&model, &lead, &accounts, 0).total, 0.0);
}

#[test]
fn numeric_ids_are_skipped_only_in_a_large_sample() {
    // 300 rows numbered 1..=300: an id. The same shape in 30 rows is ordinary data.
    let labels: Vec<bool> = (0..300).map(|i| i % 3 == 0).collect();
    let numbers = |n: usize| text_column("Lead Number", (1..=n).map(|i| i.to_string()).collect());
    let kind = |n: usize| text_column("kind", (0..n).map(|i| if i % 3 == 0 { "a" } else { "b" }.to_owned()).collect());
    let options = Options { guard: None, ..Options::default() };
    let big = train(&[numbers(300), kind(300)], &labels, &options).unwrap();
    assert!(big.warnings.iter().any(|w| w.contains("`Lead Number`: looks like an id")), "{:?}", big.warnings);
    let small = train(&[numbers(30), kind(30)], &labels[..30], &options).unwrap();
    assert!(!small.warnings.iter().any(|w| w.contains("Lead Number")), "{:?}", small.warnings);
}
