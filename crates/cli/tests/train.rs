//! `leadscore train` on small CSVs written here: the learned model checks, scores with a
//! probability column, and bad inputs fail with messages that say what is wrong.
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly on broken fixtures")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore")).args(args).output().expect("leadscore runs")
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

/// `leadscore train --leads L --outcomes O [--events E] --out M` and `more` arguments.
fn train_on(leads: &Path, outcomes: &Path, events: Option<&Path>, model: &Path, more: &[&str]) -> Output {
    let mut args = vec!["train", "--leads", leads.to_str().unwrap(), "--outcomes", outcomes.to_str().unwrap()];
    if let Some(events) = events {
        args.extend(["--events", events.to_str().unwrap()]);
    }
    args.extend(["--out", model.to_str().unwrap()]);
    args.extend(more);
    leadscore(&args)
}

/// `leadscore score --model M --leads L --events E --as-of T` and `more` arguments.
fn score_on(model: &Path, leads: &Path, events: &Path, as_of: &str, more: &[&str]) -> Output {
    let mut args = vec!["score", "--model", model.to_str().unwrap(), "--leads", leads.to_str().unwrap()];
    args.extend(["--events", events.to_str().unwrap(), "--as-of", as_of]);
    args.extend(more);
    leadscore(&args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A deterministic pseudo-random stream in [0, 1).
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Leads where visits and industry drive conversion; `yes`/`no` written by `label`.
fn leads_csv(rows: usize, label: impl Fn(bool) -> &'static str) -> String {
    let mut random = Random(7);
    let mut out = String::from("id,industry,visits,Company Size,converted\n");
    let industries = ["software", "retail", "finance", "education"];
    for i in 0..rows {
        let industry = industries[(random.next() * 4.0) as usize % 4];
        let visits = (random.next() * 12.0).floor();
        let size = (random.next() * 500.0).floor();
        let logit = -2.0 + 0.35 * visits + if industry == "software" { 1.5 } else { 0.0 };
        let converted = random.next() < 1.0 / (1.0 + (-logit).exp());
        let visits = if i % 17 == 0 { "NA".to_owned() } else { visits.to_string() };
        let _ = writeln!(out, "L{i},{industry},{visits},{size},{}", label(converted));
    }
    out
}

fn yes_no(converted: bool) -> &'static str {
    if converted { "yes" } else { "no" }
}

#[test]
fn trained_model_checks_and_scores_with_a_probability_column() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", &leads_csv(400, yes_no));
    let model = dir.path().join("model.toml");
    let report = dir.path().join("report.html");
    let predictions = dir.path().join("oof.csv");
    // The same training, with more outputs.
    let train = |more: &[&str]| {
        let mut args =
            vec!["train", "--leads", leads.to_str().unwrap(), "--label", "converted", "--na-values", "NA", "--out"];
        args.push(model.to_str().unwrap());
        args.extend_from_slice(more);
        leadscore(&args)
    };
    let output = train(&["--report", report.to_str().unwrap(), "--predictions", predictions.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("ROC AUC"), "{text}");
    assert!(text.contains("log-loss"), "{text}");
    assert!(text.contains("visits"), "{text}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg"));
    // Each column's learned shape as a chart of points by segment.
    assert!(html.contains("Learned shapes") && html.contains("visits: points by segment"), "{html}");
    let json = train(&["--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let visits = summary["factors"].as_array().unwrap().iter().find(|f| f["name"] == "visits").unwrap();
    assert_eq!(visits["kind"], "column", "{visits}");
    let shape = visits["shape"].as_array().unwrap();
    assert!(shape.len() >= 2 && shape.iter().all(|s| s["points"].is_number()), "{visits}");
    let oof = std::fs::read_to_string(&predictions).unwrap();
    assert_eq!(oof.lines().next(), Some("row,lead_id,fold,label,probability"));
    assert_eq!(oof.lines().count(), 401);

    let source = std::fs::read_to_string(&model).unwrap();
    assert!(source.contains("[calibration]"), "{source}");
    assert!(source.contains("[dimensions.predicted]"), "{source}");
    let check = leadscore(&["check", model.to_str().unwrap()]);
    assert!(check.status.success(), "{}\n{source}", stderr(&check));
    assert!(!stderr(&check).contains("error"), "{}", stderr(&check));

    // A test file without an id column, with a new category, a non-number and empty cells.
    let test = write(
        dir.path(),
        "test.csv",
        "industry,visits,Company Size\nsoftware,11,100\nretail,0,20\nspace travel,NA,\n,,\n",
    );
    let scored =
        leadscore(&["score", "--model", model.to_str().unwrap(), "--leads", test.to_str().unwrap(), "--format", "csv"]);
    assert!(scored.status.success(), "{}", stderr(&scored));
    let csv = stdout(&scored);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let p = header.iter().position(|h| *h == "probability").expect("a probability column");
    let t = header.iter().position(|h| *h == "total").unwrap();
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let probability: Vec<f64> = rows.iter().map(|r| r[p].parse().unwrap()).collect();
    assert!(probability.iter().all(|&x| x > 0.0 && x < 1.0), "{csv}");
    assert!(probability[0] > probability[1], "a software lead with many visits beats a retail lead with none: {csv}");
    // Unseen and missing values match no rule: both score the baseline of 0 points.
    assert_eq!(rows[2][t], "0", "{csv}");
    assert_eq!(rows[3][t], "0", "{csv}");
}

#[test]
fn labels_may_be_true_false_or_one_zero_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    for (name, label) in [
        ("tf.csv", (|c: bool| if c { "TRUE" } else { "FALSE" }) as fn(bool) -> &'static str),
        ("yn.csv", |c: bool| if c { "Yes" } else { "No" }),
        ("10.csv", |c: bool| if c { "1" } else { "0" }),
    ] {
        let leads = write(dir.path(), name, &leads_csv(200, label));
        let model = dir.path().join(format!("{name}.toml"));
        let output = leadscore(&[
            "train",
            "--leads",
            leads.to_str().unwrap(),
            "--label",
            "converted",
            "--out",
            model.to_str().unwrap(),
            "--json",
        ]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(json["rows"], 200);
        let auc = json["cv"]["auc_mean"].as_f64().unwrap();
        assert!(auc > 0.65, "{name}: {auc}");
        assert!(leadscore(&["check", model.to_str().unwrap()]).status.success());
    }
}

#[test]
fn outcomes_label_leads_and_leads_without_one_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let csv = leads_csv(300, yes_no);
    let mut leads = String::from("id,industry,visits,Company Size\n");
    let mut outcomes = String::from("lead_id,outcome,at\n");
    for (i, line) in csv.lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let _ = writeln!(leads, "{},{},{},{}", cells[0], cells[1], cells[2], cells[3]);
        if i % 10 == 9 {
            continue; // no outcome yet
        }
        let outcome = if cells[4] == "yes" { if i % 2 == 0 { "converted" } else { "won" } } else { "lost" };
        let _ = writeln!(outcomes, "{},{outcome},2024-05-01T00:00:00Z", cells[0]);
    }
    let leads = write(dir.path(), "leads.csv", &leads);
    let outcomes = write(dir.path(), "outcomes.csv", &outcomes);
    let model = dir.path().join("m.toml");
    let output = train_on(&leads, &outcomes, None, &model, &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["rows"], 270);
    assert_eq!(json["unlabelled"], 30);
}

#[test]
fn events_become_count_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = Random(3);
    let mut leads = String::from("id,region\n");
    let mut outcomes = String::from("lead_id,outcome,at\n");
    let mut events = String::new();
    for i in 0..300 {
        let region = if random.next() < 0.5 { "north" } else { "south" };
        let _ = writeln!(leads, "L{i},{region}");
        let pricing = (random.next() * 6.0).floor() as u32;
        for k in 0..pricing {
            let _ = writeln!(
                events,
                r#"{{"type":"page","userId":"L{i}","properties":{{"path":"/pricing/plans"}},"timestamp":"2024-04-{:02}T10:00:00Z","messageId":"p{i}-{k}"}}"#,
                10 + k
            );
        }
        let _ = writeln!(
            events,
            r#"{{"type":"track","userId":"L{i}","event":"Newsletter Opened","timestamp":"2024-04-05T10:00:00Z"}}"#
        );
        // A pricing visit after the outcome must not count.
        let _ = writeln!(
            events,
            r#"{{"type":"page","userId":"L{i}","properties":{{"path":"/pricing"}},"timestamp":"2024-06-01T10:00:00Z"}}"#
        );
        let converted = random.next() < if pricing >= 3 { 0.8 } else { 0.15 };
        let _ = writeln!(outcomes, "L{i},{},2024-05-01T00:00:00Z", if converted { "converted" } else { "lost" });
    }
    let leads = write(dir.path(), "leads.csv", &leads);
    let outcomes = write(dir.path(), "outcomes.csv", &outcomes);
    let events = write(dir.path(), "events.jsonl", &events);
    let model = dir.path().join("m.toml");
    let output = train_on(&leads, &outcomes, Some(&events), &model, &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(json["cv"]["auc_mean"].as_f64().unwrap() > 0.75, "{json}");
    let source = std::fs::read_to_string(&model).unwrap();
    assert!(source.contains("at_least = 3"), "{source}");
    assert!(source.contains("Page /pricing"), "{source}");
    let check = leadscore(&["check", model.to_str().unwrap()]);
    assert!(check.status.success(), "{}\n{source}", stderr(&check));
    let scored = score_on(&model, &leads, &events, "2024-04-30T00:00:00Z", &[]);
    assert!(scored.status.success(), "{}", stderr(&scored));
    assert!(stdout(&scored).lines().next().unwrap().contains("probability"));
}

/// A behaviour count that matters only for leads with some trait (pricing visits convert northern
/// leads, not southern ones) is learned, by either learner, as count rules whose `on` also reads
/// the trait, so that `score` applies it: scored northern leads with 3+ visits are far likelier
/// than southern ones.
/// `--features` writes the table the learner saw.
#[test]
fn a_trait_and_count_interaction_is_scored() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = Random(5);
    let mut leads = String::from("id,region\n");
    let mut outcomes = String::from("lead_id,outcome,at\n");
    let mut events = String::new();
    let mut kinds = std::collections::HashMap::new();
    for i in 0..2000 {
        let north = random.next() < 0.5;
        let _ = writeln!(leads, "L{i},{}", if north { "north" } else { "south" });
        let pricing = (random.next() * 6.0).floor() as u32;
        for k in 0..pricing {
            let _ = writeln!(
                events,
                r#"{{"type":"page","userId":"L{i}","properties":{{"path":"/pricing"}},"timestamp":"2024-04-{:02}T10:00:00Z","messageId":"p{i}-{k}"}}"#,
                10 + k
            );
        }
        let rate = match (north, pricing >= 3) {
            (true, true) => 0.85,
            (false, true) => 0.2,
            _ => 0.1,
        };
        let converted = random.next() < rate;
        let _ = writeln!(outcomes, "L{i},{},2024-05-01T00:00:00Z", if converted { "converted" } else { "lost" });
        kinds.insert(format!("L{i}"), (north, pricing));
    }
    let leads = write(dir.path(), "leads.csv", &leads);
    let outcomes = write(dir.path(), "outcomes.csv", &outcomes);
    let events = write(dir.path(), "events.jsonl", &events);
    let features = dir.path().join("features.csv");
    for algorithm in ["boosted", "logistic"] {
        let model = dir.path().join(format!("{algorithm}.toml"));
        let more = ["--features", features.to_str().unwrap(), "--algorithm", algorithm];
        let output = train_on(&leads, &outcomes, Some(&events), &model, &more);
        assert!(output.status.success(), "{}", stderr(&output));
        let source = std::fs::read_to_string(&model).unwrap();
        assert!(source.contains(r#"&& (lead["region"] == "north")"#), "{algorithm}: {source}");
        let check = leadscore(&["check", model.to_str().unwrap()]);
        assert!(check.status.success(), "{}\n{source}", stderr(&check));
        let scores = dir.path().join("scores.csv");
        let scored = score_on(&model, &leads, &events, "2024-04-30T00:00:00Z", &["--out", scores.to_str().unwrap()]);
        assert!(scored.status.success(), "{}", stderr(&scored));
        let mean = |north: bool, visits: std::ops::Range<u32>| {
            let rows: Vec<f64> = csv_maps(&scores)
                .iter()
                .filter(|r| {
                    let (n, p) = kinds[r["lead_id"].as_str()];
                    n == north && visits.contains(&p)
                })
                .map(|r| r["probability"].parse::<f64>().unwrap())
                .collect();
            rows.iter().sum::<f64>() / rows.len() as f64
        };
        let (north_high, south_high) = (mean(true, 3..6), mean(false, 3..6));
        let (north_low, south_low) = (mean(true, 0..3), mean(false, 0..3));
        assert!(
            north_high > 0.7 && south_high < 0.35,
            "{algorithm}, 3+ visits: north {north_high:.3}, south {south_high:.3}"
        );
        assert!(north_low < 0.2 && south_low < 0.2, "{algorithm}, fewer: north {north_low:.3}, south {south_low:.3}");
    }
    // The table learned from: the id, the label, the trait and the counts at each cutoff.
    let table = csv_maps(&features);
    assert_eq!(table.len(), 2000);
    let first = table.iter().find(|r| r["lead_id"] == "L0").unwrap();
    let (north, pricing) = kinds["L0"];
    assert_eq!(first["region"], if north { "north" } else { "south" });
    assert_eq!(first["Page /pricing (90d)"], pricing.to_string());
    assert!(first["label"] == "0" || first["label"] == "1");
}

#[test]
fn a_missing_label_column_names_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", &leads_csv(50, yes_no));
    let out = dir.path().join("m.toml");
    let output = leadscore(&[
        "train",
        "--leads",
        leads.to_str().unwrap(),
        "--label",
        "Converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("no label column `Converted`"), "{message}");
    assert!(message.contains("id, industry, visits, Company Size, converted"), "{message}");
    assert!(!out.exists());
}

#[test]
fn a_single_class_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", &leads_csv(50, |_| "no"));
    let out = dir.path().join("m.toml");
    let output = leadscore(&[
        "train",
        "--leads",
        leads.to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("all 50 labelled rows are not converted"), "{message}");
    assert!(message.contains("both converted and non-converted"), "{message}");
}

#[test]
fn an_empty_file_and_a_file_without_labels_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.toml");
    let empty = write(dir.path(), "empty.csv", "");
    let output = leadscore(&[
        "train",
        "--leads",
        empty.to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("empty"), "{}", stderr(&output));

    let header_only = write(dir.path(), "header.csv", "id,industry,converted\n");
    let output = leadscore(&[
        "train",
        "--leads",
        header_only.to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no rows"), "{}", stderr(&output));

    let unlabelled = write(dir.path(), "unlabelled.csv", "id,industry,converted\na,x,\nb,y,\n");
    let output = leadscore(&[
        "train",
        "--leads",
        unlabelled.to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no labelled rows"), "{}", stderr(&output));
}

#[test]
fn a_bad_label_value_names_the_line_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", "id,industry,converted\na,x,yes\nb,y,maybe\n");
    let out = dir.path().join("m.toml");
    let output = leadscore(&[
        "train",
        "--leads",
        leads.to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("leads.csv:3"), "{message}");
    assert!(message.contains("`maybe`"), "{message}");
}

#[test]
fn id_like_constant_and_personal_columns_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Prospect ID,Lead Number,First Name,channel,constant,converted\n");
    for i in 0..250 {
        let _ = writeln!(
            csv,
            "p-{i},{},{},{},same,{}",
            1000 + i,
            ["Anna", "Ben", "Chloe", "Dev"][i % 4],
            if i % 3 == 0 { "web" } else { "phone" },
            // (Web converts more, but not so cleanly that the leakage guard takes it for a leak.)
            i % 6 == 0 || i % 7 == 0
        );
    }
    let leads = write(dir.path(), "leads.csv", &csv);
    let out = dir.path().join("m.toml");
    let output = leadscore(&[
        "train",
        "--leads",
        leads.to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("skipping column `Prospect ID`"), "{message}");
    assert!(message.contains("skipping column `Lead Number`"), "{message}");
    assert!(message.contains("skipping column `constant`"), "{message}");
    assert!(message.contains("skipping column `First Name`: a person's name"), "{message}");
    let source = std::fs::read_to_string(&out).unwrap();
    assert!(!source.contains("Prospect ID") && !source.contains("Lead Number"), "{source}");
    assert!(!source.contains("First Name"), "{source}");
}

/// A semicolon-separated file with quoted headers and a yes/no label, shaped like UCI's bank
/// marketing data: train on it, then score a held-out file of the same shape.
#[test]
fn semicolon_files_train_and_score_like_comma_files() {
    let dir = tempfile::tempdir().unwrap();
    let table = |rows: std::ops::Range<usize>| {
        let mut text = String::from("\"age\";\"job\";\"balance\";\"y\"\n");
        for i in rows {
            let job = ["admin.", "retired", "student", "technician"][i % 4];
            // Retired and student clients subscribe more, and a higher balance helps.
            let yes = (job == "retired" || job == "student") ^ (i % 5 == 0) || (i % 7 == 0 && i % 3 == 0);
            let _ =
                writeln!(text, "{};\"{job}\";{};\"{}\"", 20 + i % 50, (i * 37) % 3000, if yes { "yes" } else { "no" });
        }
        text
    };
    let train = write(dir.path(), "train.csv", &table(0..600));
    let test = write(dir.path(), "test.csv", &table(600..800));
    let model = dir.path().join("m.toml");
    let out =
        leadscore(&["train", "--leads", train.to_str().unwrap(), "--label", "y", "--out", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out =
        leadscore(&["score", "--model", model.to_str().unwrap(), "--leads", test.to_str().unwrap(), "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    assert!(header.ends_with(",probability"), "{header}");
    assert_eq!(text.lines().count(), 201, "a row per test lead");
    // The learned job effect shows: retired/student rows score above admin./technician rows.
    let probabilities: Vec<f64> =
        text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    let mean = |k: usize| {
        let v: Vec<f64> =
            probabilities.iter().enumerate().filter(|(i, _)| (600 + i) % 4 == k).map(|(_, p)| *p).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean(1) > mean(0) + 0.2 && mean(2) > mean(3) + 0.2, "retired {} admin {}", mean(1), mean(0));
}

/// The leakage guard: a column shaped like X Education's `Tags` (filled in by sales after
/// contact: "Closed by Horizzon" for most converted leads, "Ringing" for many others) is named
/// with its evidence and left out, unless allowed; an honest column stays.
#[test]
fn leaky_columns_are_named_and_left_out_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = Random(3);
    let mut csv = String::from("id,Tags,Lead Source,Converted\n");
    for i in 0..2000 {
        let source = ["Google", "Direct Traffic", "Reference"][i % 3];
        let logit: f64 = -0.8 + if source == "Reference" { 1.2 } else { 0.0 };
        let converted = random.next() < 1.0 / (1.0 + (-logit).exp());
        let tag = match (converted, random.next()) {
            (true, r) if r < 0.7 => "Closed by Horizzon",
            (false, r) if r < 0.6 => "Ringing",
            _ => "",
        };
        let _ = writeln!(csv, "L{i},{tag},{source},{}", u8::from(converted));
    }
    let leads = write(dir.path(), "leads.csv", &csv);
    let out = dir.path().join("m.toml");
    let base = ["train", "--leads", leads.to_str().unwrap(), "--label", "Converted", "--out", out.to_str().unwrap()];
    let output = leadscore(&[&base[..], &["--json"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("column `Tags` looks leaky"), "{message}");
    assert!(message.contains("`Closed by Horizzon`:") && message.contains("(100.0%)"), "{message}");
    assert!(message.contains("--allow-leaky Tags keeps it"), "{message}");
    assert!(!message.contains("`Lead Source` looks leaky"), "{message}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["leaky"][0]["column"], "Tags", "{summary}");
    assert_eq!(summary["leaky"][0]["allowed"], false, "{summary}");
    let source = std::fs::read_to_string(&out).unwrap();
    assert!(!source.contains("Tags") && source.contains("Lead Source"), "{source}");
    // Allowed, it is used (and still reported).
    let output = leadscore(&[&base[..], &["--allow-leaky", "Tags"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("column `Tags` looks leaky (ROC AUC"), "{}", stderr(&output));
    assert!(std::fs::read_to_string(&out).unwrap().contains("Closed by Horizzon"));
}

/// Rows of a CSV file as maps from header to cell.
fn csv_maps(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| headers.iter().map(String::from).zip(r.unwrap().iter().map(String::from)).collect())
        .collect()
}

/// Open leads in the probabilities (issue 15): on `gen` data, the learned model's mean probability
/// for the leads still open is within 1.5 points of the truth's: the share of them that will
/// still buy, from `truth.csv` (every lead's chance of buying, less the buyers who already
/// converted). Leaving the open leads out of the calibration (the decided-only calibration,
/// reported alongside) makes it several times too high.
#[test]
fn open_leads_get_honest_probabilities_on_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gen");
    let end = "2024-07-01T00:00:00Z";
    let out = leadscore(&["gen", "--leads", "4000", "--seed", "3", "--end", end, "--out", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = |name: &str| data.join(name).to_str().unwrap().to_owned();
    let model = dir.path().join("learned.toml");
    let trained = leadscore(&[
        "train",
        "--leads",
        &file("leads.csv"),
        "--outcomes",
        &file("outcomes.csv"),
        "--events",
        &file("events.jsonl"),
        "--out",
        model.to_str().unwrap(),
        "--json",
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let json: serde_json::Value = serde_json::from_str(&stdout(&trained)).unwrap();
    let open = &json["open_leads"];
    assert!(open["used"].as_u64().unwrap() > 3000, "{open}");
    let scores = dir.path().join("scores.csv");
    let scored = leadscore(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--leads",
        &file("leads.csv"),
        "--events",
        &file("events.jsonl"),
        "--as-of",
        end,
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(scored.status.success(), "{}", stderr(&scored));

    let outcomes = csv_maps(&data.join("outcomes.csv"));
    let decided: std::collections::HashSet<&str> = outcomes.iter().map(|r| r["lead_id"].as_str()).collect();
    let converted = outcomes.iter().filter(|r| matches!(r["outcome"].as_str(), "won" | "converted")).count();
    let truth = csv_maps(&data.join("truth.csv"));
    let buyers: f64 = truth.iter().map(|r| r["converted_probability"].parse::<f64>().unwrap()).sum();
    let open_rows: Vec<_> =
        csv_maps(&scores).into_iter().filter(|r| !decided.contains(r["lead_id"].as_str())).collect();
    let n = open_rows.len() as f64;
    let truth_mean = (buyers - converted as f64) / n;
    let predicted = open_rows.iter().map(|r| r["probability"].parse::<f64>().unwrap()).sum::<f64>() / n;
    assert!(
        (predicted - truth_mean).abs() < 0.015,
        "open leads: mean probability {predicted:.4}, truth {truth_mean:.4}"
    );
    // The calibration from the decided leads alone, on the same totals.
    let before = &open["calibration_decided_only"];
    let (a, b) = (before["intercept"].as_f64().unwrap(), before["slope"].as_f64().unwrap());
    let decided_only =
        open_rows.iter().map(|r| 1.0 / (1.0 + (-(a + b * r["total"].parse::<f64>().unwrap())).exp())).sum::<f64>() / n;
    assert!(decided_only > truth_mean + 0.03, "decided leads alone: {decided_only:.4}, truth {truth_mean:.4}");
    // The model file says how it was calibrated.
    let source = std::fs::read_to_string(&model).unwrap();
    assert!(source.contains("open leads counted as not decided by their age"), "{source}");
    // Every trait a rule reads is a column of the leads file: behaviour counts are count rules,
    // never conditions on a trait that no lead has (a pair of a trait and a count was written
    // so once, and never matched when scoring).
    let header: Vec<String> =
        csv::Reader::from_path(data.join("leads.csv")).unwrap().headers().unwrap().iter().map(String::from).collect();
    let parsed: toml::Table = source.parse().unwrap();
    let traits = parsed.get("traits").and_then(|t| t.as_table()).cloned().unwrap_or_default();
    assert!(!traits.is_empty());
    for name in traits.keys() {
        assert!(header.contains(name), "the model reads trait `{name}`, not a column of leads.csv");
    }
}
