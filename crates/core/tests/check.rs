//! `check_model` diagnostics: golden files for invalid and suspicious models, plus exact checks of
//! the properties users rely on (file:line:col, the offending name, a hint, all errors at once).

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

use std::path::Path;

use leadscore_core::model::check_model;

fn render_all(name: &str, source: &str) -> String {
    let report = check_model(source);
    let mut out: Vec<String> = report.diagnostics.iter().map(|d| d.render(name, source)).collect();
    out.push(format!("model accepted: {}", report.model.is_some()));
    out.join("\n")
}

#[test]
fn invalid_models_get_golden_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let mut names: Vec<_> = std::fs::read_dir(&dir).expect("tests/models").map(|e| e.expect("entry").path()).collect();
    names.sort();
    assert!(names.len() >= 10, "the corpus is in tests/models");
    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_owned();
        let source = std::fs::read_to_string(&path).expect("readable");
        let rendered = render_all(&format!("tests/models/{name}"), &source);
        insta::assert_snapshot!(name.trim_end_matches(".toml"), rendered);
    }
}

#[test]
fn unknown_dimension_names_line_column_the_name_and_the_known_dimensions() {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/unknown_dimension.toml"))
            .expect("file");
    let report = check_model(&source);
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].headline("m.toml", &source),
        "m.toml:9:13: error: unknown dimension `fitt` (known: fit, engagement)"
    );
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `fit`?"));
    assert!(report.model.is_none());
}

#[test]
fn every_error_is_reported_at_once() {
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/missing_parts.toml"))
        .expect("file");
    let report = check_model(&source);
    let codes: Vec<&str> = report.errors().map(|d| d.code).collect();
    assert_eq!(codes.len(), 6, "{codes:?}");
    for code in ["missing_key", "missing_condition"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
}

#[test]
fn condition_errors_point_into_the_condition() {
    let source = "[model]\nname = \"x\"\n[dimensions.fit]\n[[rules]]\nname = \"r\"\nif = 'lead.title.matches(\"(ceo\")'\npoints = 1\n";
    let report = check_model(source);
    let error = report.errors().next().expect("an error");
    assert_eq!(error.code, "invalid_condition");
    let span = error.span.clone().expect("a span");
    assert_eq!(&source[span], "\"(ceo\"");
}

#[test]
fn warnings_do_not_reject_a_model() {
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/warnings.toml"))
        .expect("file");
    let report = check_model(&source);
    assert!(report.model.is_some());
    assert_eq!(report.errors().count(), 0);
    let codes: Vec<&str> = report.warnings().map(|d| d.code).collect();
    for code in ["undeclared_trait", "type_mismatch", "never_matches", "unreachable_stage"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    // mql is shadowed by the later sql; whale is out of range (total at most 100).
    assert_eq!(codes.iter().filter(|c| **c == "unreachable_stage").count(), 2);
    assert_eq!(codes.iter().filter(|c| **c == "never_matches").count(), 3);
}

#[test]
fn the_example_models_check_without_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/models");
    for name in ["m3.toml", "saas.toml", "b2b-default.toml"] {
        let source = std::fs::read_to_string(dir.join(name)).expect("example model");
        let report = check_model(&source);
        let rendered: Vec<String> = report.diagnostics.iter().map(|d| d.render(name, &source)).collect();
        assert!(report.model.is_some(), "{name}:\n{}", rendered.join("\n"));
        assert_eq!(report.warnings().count(), 0, "{name}:\n{}", rendered.join("\n"));
    }
}

/// "Call now" order comes from the model's own `[[stages]]` (listed lowest first): its highest
/// stage first, then each lower one, then `lead`, then anything else (outcomes).
#[test]
fn stages_rank_by_the_models_order_whatever_their_names() {
    let source = include_str!("../../http/tests/models/temperature.toml");
    let model = leadscore_core::CheckedModel::from_source(source).expect("a valid model");
    let ranks: Vec<i64> =
        ["hot", "warm", "cold", "lead", "customer", "lost", "mql"].map(|s| model.stage_rank(s)).to_vec();
    assert_eq!(ranks, [0, 1, 2, 3, 4, 4, 4]);
    let (listed, other) = model.stage_ranks();
    assert_eq!(listed, [("cold".to_owned(), 2), ("warm".to_owned(), 1), ("hot".to_owned(), 0), ("lead".to_owned(), 3)]);
    assert_eq!(other, 4);
}
