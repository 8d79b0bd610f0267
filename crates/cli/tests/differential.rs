//! Differential test: the engine against an independent reading of SPEC §2.2.
//!
//! For each seed, `bench/random_case.py` writes a random but valid case (model, leads, events,
//! outcomes, as_of); `bench/reference_score.py` (Python, CEL by cel-python, written from the
//! specification and not from this code) and the `leadscore` binary both score it, and every row
//! must agree: the lead ids in order, each dimension and the total (within 0.011), the probability
//! (within 0.00011), the stage and the grade exactly.
//!
//! Seeds: `LEADSCORE_DIFF_SEEDS` (how many, default 30) starting at `LEADSCORE_DIFF_FIRST_SEED`
//! (default 1). A failing case is kept on disk and its directory printed with the seed, the lead
//! and both rows. Needs `python3` with `cel-python` (`pip install cel-python==0.5.0`); without it the
//! test says so loudly on stderr and returns.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SKIPPED: &str = "skipped: differential test needs python3 with cel-python (pip install cel-python)";

/// At most this many differing rows are printed per seed.
const MAX_ROWS_SHOWN: usize = 8;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn python_has_celpy() -> bool {
    Command::new("python3").args(["-c", "import celpy"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: exit {:?}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

type Table = (Vec<String>, Vec<Vec<String>>);

fn read_csv(path: &Path) -> Result<Table, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = reader.headers().map_err(|e| format!("{}: {e}", path.display()))?.iter().map(String::from).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        rows.push(record.iter().map(String::from).collect());
    }
    Ok((header, rows))
}

/// Whether two cells of column `column` agree.
fn same(column: &str, reference: &str, engine: &str) -> bool {
    let tolerance = match column {
        "lead_id" | "stage" | "grade" => return reference == engine,
        "probability" => 0.00011,
        _ => 0.011,
    };
    match (reference.parse::<f64>(), engine.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= tolerance,
        _ => reference == engine,
    }
}

fn compare(seed: u64, dir: &Path, reference: &Table, engine: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    let (ref_header, ref_rows) = reference;
    let (eng_header, eng_rows) = engine;
    if ref_header != eng_header {
        problems.push(format!(
            "seed {seed}: header differs\n  reference: {}\n  engine:    {}",
            ref_header.join(","),
            eng_header.join(",")
        ));
        return problems;
    }
    let ref_ids: Vec<&str> = ref_rows.iter().filter_map(|r| r.first().map(String::as_str)).collect();
    let eng_ids: Vec<&str> = eng_rows.iter().filter_map(|r| r.first().map(String::as_str)).collect();
    if ref_ids != eng_ids {
        let ref_only: Vec<&&str> = ref_ids.iter().filter(|id| !eng_ids.contains(id)).collect();
        let eng_only: Vec<&&str> = eng_ids.iter().filter(|id| !ref_ids.contains(id)).collect();
        problems.push(format!(
            "seed {seed}: lead ids differ ({} rows in the reference, {} in the engine); only in the reference: \
             {ref_only:?}; only in the engine: {eng_only:?}{}",
            ref_ids.len(),
            eng_ids.len(),
            if ref_only.is_empty() && eng_only.is_empty() { " (same ids, different order)" } else { "" }
        ));
    }
    let engine_by_id: BTreeMap<&str, &Vec<String>> =
        eng_rows.iter().filter_map(|r| r.first().map(|id| (id.as_str(), r))).collect();
    let mut shown = 0;
    let mut differing = 0;
    for ref_row in ref_rows {
        let Some(id) = ref_row.first() else { continue };
        let Some(eng_row) = engine_by_id.get(id.as_str()) else { continue };
        let columns: Vec<&str> = ref_header
            .iter()
            .zip(ref_row.iter().zip(eng_row.iter()))
            .filter(|(column, (a, b))| !same(column, a, b))
            .map(|(column, _)| column.as_str())
            .collect();
        if columns.is_empty() {
            continue;
        }
        differing += 1;
        if shown < MAX_ROWS_SHOWN {
            shown += 1;
            problems.push(format!(
                "seed {seed}: lead {id}: {} differ\n  columns:   {}\n  reference: {}\n  engine:    {}",
                columns.join(", "),
                ref_header.join(","),
                ref_row.join(","),
                eng_row.join(",")
            ));
        }
    }
    if differing > shown {
        problems.push(format!("seed {seed}: ... and {} more differing rows", differing - shown));
    }
    if !problems.is_empty() {
        problems.push(format!(
            "seed {seed}: case kept in {} (re-run: python3 bench/reference_score.py --model {0}/model.toml \
             --leads {0}/leads.csv --events {0}/events.jsonl --outcomes {0}/outcomes.csv --as-of $(cat {0}/as_of) \
             --format csv --out -)",
            dir.display()
        ));
    }
    problems
}

/// Generates, scores twice and compares one seed. Returns the problems found (empty: agreement).
fn check_seed(seed: u64, base: &Path) -> Vec<String> {
    let root = repo_root();
    let dir = base.join(format!("seed-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    let p = |name: &str| dir.join(name);
    let generated = run(
        Command::new("python3")
            .arg(root.join("bench/random_case.py"))
            .args(["--seed", &seed.to_string(), "--out"])
            .arg(&dir),
        "bench/random_case.py",
    );
    if let Err(e) = generated {
        return vec![format!("seed {seed}: {e}")];
    }
    let as_of = match std::fs::read_to_string(p("as_of")) {
        Ok(s) => s.trim().to_string(),
        Err(e) => return vec![format!("seed {seed}: {}: {e}", p("as_of").display())],
    };
    let inputs = |cmd: &mut Command| {
        cmd.arg("--model")
            .arg(p("model.toml"))
            .arg("--leads")
            .arg(p("leads.csv"))
            .arg("--events")
            .arg(p("events.jsonl"))
            .arg("--outcomes")
            .arg(p("outcomes.csv"))
            .args(["--as-of", &as_of, "--format", "csv", "--out"]);
    };
    let mut reference = Command::new("python3");
    reference.arg(root.join("bench/reference_score.py"));
    inputs(&mut reference);
    reference.arg(p("reference.csv"));
    let mut engine = Command::new(env!("CARGO_BIN_EXE_leadscore"));
    engine.arg("score");
    inputs(&mut engine);
    engine.arg(p("engine.csv"));
    let keep = |mut problems: Vec<String>| {
        problems.push(format!("seed {seed}: case kept in {}", dir.display()));
        problems
    };
    if let Err(e) = run(&mut reference, "bench/reference_score.py") {
        return keep(vec![format!("seed {seed}: {e}")]);
    }
    if let Err(e) = run(&mut engine, "leadscore score") {
        return keep(vec![format!("seed {seed}: {e}")]);
    }
    let tables = read_csv(&p("reference.csv")).and_then(|r| read_csv(&p("engine.csv")).map(|e| (r, e)));
    let problems = match tables {
        Ok((r, e)) => compare(seed, &dir, &r, &e),
        Err(e) => return keep(vec![format!("seed {seed}: {e}")]),
    };
    if problems.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    problems
}

#[test]
fn engine_agrees_with_the_python_reference_on_random_cases() {
    if !python_has_celpy() {
        // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
        let bar = "!".repeat(SKIPPED.len());
        let _ = writeln!(std::io::stderr().lock(), "\n{bar}\n{SKIPPED}\n{bar}\n");
        return;
    }
    let first = env_u64("LEADSCORE_DIFF_FIRST_SEED", 1);
    let count = env_u64("LEADSCORE_DIFF_SEEDS", 30);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential");
    std::fs::create_dir_all(&base).expect("create the case directory");

    let next = AtomicU64::new(first);
    let end = first + count;
    let problems: Mutex<Vec<(u64, Vec<String>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map(usize::from).unwrap_or(1).clamp(1, 4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end {
                        break;
                    }
                    let found = check_seed(seed, &base);
                    if !found.is_empty() {
                        problems.lock().expect("lock").push((seed, found));
                    }
                }
            });
        }
    });
    let mut problems = problems.into_inner().expect("lock");
    problems.sort_by_key(|(seed, _)| *seed);
    let failed: Vec<u64> = problems.iter().map(|(seed, _)| *seed).collect();
    let report: Vec<String> = problems.into_iter().flat_map(|(_, p)| p).collect();
    assert!(
        failed.is_empty(),
        "the engine and bench/reference_score.py disagree on seeds {failed:?} (of {first}..{}):\n\n{}",
        end - 1,
        report.join("\n\n")
    );
    let _ = writeln!(std::io::stderr().lock(), "differential: seeds {first}..{} agree", end - 1);
}
