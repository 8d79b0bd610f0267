//! Random cases of `bench/random_case.py` (every rule kind, stages, grades, `[events] ignore`,
//! accounts; messages late, out of order, duplicated, anonymous visits stitched later) for the
//! server tests, and what they need to send them.

#![allow(dead_code, reason = "each test uses its part")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use leadscore_core::time::parse_timestamp;

/// A random case of `bench/random_case.py`.
pub struct Case {
    pub model: String,
    pub messages: Vec<Value>,
    /// `(lead, outcome, at)`.
    pub outcomes: Vec<(String, String, String)>,
    pub as_of: i64,
}

pub fn random_case(seed: u64, dir: &Path) -> Case {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = dir.join(format!("case-{seed}"));
    let run = Command::new("python3")
        .arg(root.join("bench/random_case.py"))
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(&out)
        .output()
        .expect("python3 runs bench/random_case.py (the test needs python3)");
    assert!(run.status.success(), "random_case.py --seed {seed}: {}", String::from_utf8_lossy(&run.stderr));
    let model = std::fs::read_to_string(out.join("model.toml")).unwrap();
    let messages = std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcomes = std::fs::read_to_string(out.join("outcomes.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cells = l.split(',');
            Some((cells.next()?.to_owned(), cells.next()?.to_owned(), cells.next()?.to_owned()))
        })
        .collect();
    let as_of = parse_timestamp(std::fs::read_to_string(out.join("as_of")).unwrap().trim()).unwrap();
    Case { model, messages, outcomes, as_of }
}

/// xorshift64: the same sequence for the same seed, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
