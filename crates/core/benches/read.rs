//! Reading messages into compact events: the field-skipping scanner against serde_json, per
//! message, on Segment messages shaped like `bench/gen_bench_data.py`'s (or the first lines of
//! the file `LEADSCORE_BENCH_EVENTS` names).
//! Run: `cargo bench -p leadscore-core --bench read`.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "benches fail loudly on broken fixtures")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leadscore_core::CheckedModel;
use leadscore_core::compact::{read_message, read_message_serde};

/// Messages like the benchmark generator's: pages, tracks, identifies, groups.
fn sample() -> Vec<String> {
    if let Ok(path) = std::env::var("LEADSCORE_BENCH_EVENTS") {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        return text.lines().take(20_000).map(str::to_owned).collect();
    }
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ];
    let paths = ["/pricing", "/blog/lead-scoring-101", "/careers/engineering", "/product/integrations", "/"];
    let events = ["Email Opened", "Logged In", "Webinar Registered", "Form Submitted", "Report Created"];
    (0..5000)
        .map(|i| {
            let ts = format!("2024-0{}-{:02}T{:02}:{:02}:{:02}.{:03}Z", 1 + i % 6, 1 + i % 28, i % 24, i % 60, (i * 7) % 60, i % 1000);
            let id = format!("{:08x}-6b11-403e-a16d-{:012x}", i * 2_654_435_761_u64 as usize, i);
            match i % 20 {
                0 => format!(r#"{{"type":"identify","messageId":"{id}","timestamp":"{ts}","userId":"L-{i:06}","anonymousId":"{i:032x}","traits":{{"email":"someone{i}@example.com","title":"Sales Manager","industry":"Software","country":"IN"}},"context":{{"library":{{"name":"analytics.js","version":"next-1.64.0"}},"userAgent":"{}","ip":"182.62.155.252"}}}}"#, agents[i % 2]),
                1 => format!(r#"{{"type":"group","messageId":"{id}","timestamp":"{ts}","userId":"L-{i:06}","groupId":"acme{i}.fr","traits":{{"name":"Acme","industry":"Software","employees":65}},"context":{{"library":{{"name":"analytics.js","version":"next-1.64.0"}}}}}}"#),
                n if n % 2 == 0 => format!(r#"{{"type":"track","messageId":"{id}","timestamp":"{ts}","userId":"L-{i:06}","event":"{}","properties":{{"campaign_type":"marketing","campaign_id":"cmp-060"}},"context":{{"library":{{"name":"analytics-node","version":"6.2.0"}}}}}}"#, events[i % events.len()]),
                _ => format!(r#"{{"type":"page","messageId":"{id}","timestamp":"{ts}","name":"Lead scoring 101","properties":{{"path":"{}","url":"https://www.relecloud.com/x","referrer":""}},"context":{{"library":{{"name":"analytics.js","version":"next-1.64.0"}},"userAgent":"{}","ip":"174.115.57.245"}},"anonymousId":"{i:032x}"}}"#, paths[i % paths.len()], agents[i % agents.len()]),
            }
        })
        .collect()
}

fn model(name: &str) -> CheckedModel {
    let path = format!("{}/../../{name}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    CheckedModel::from_source(&source).unwrap_or_else(|d| panic!("{path}: {d:?}"))
}

/// How many of `lines` `parse` accepts.
fn accepted(lines: &[String], mut parse: impl FnMut(&str) -> bool) -> usize {
    lines.iter().filter(|l| parse(l)).count()
}

fn bench(c: &mut Criterion) {
    let lines = sample();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(lines.len() as u64));
    eprintln!("{} messages, {} bytes each on average", lines.len(), bytes / lines.len().max(1));
    for name in ["bench/models/peer10.toml", "examples/models/b2b-default.toml"] {
        let model = model(name);
        let short = name.rsplit('/').next().unwrap_or(name).trim_end_matches(".toml");
        group.bench_function(format!("{short}/scanner"), |b| {
            b.iter(|| accepted(&lines, |l| read_message(&model.plan, l.as_bytes()).is_ok()))
        });
        group.bench_function(format!("{short}/serde_json"), |b| {
            b.iter(|| accepted(&lines, |l| read_message_serde(&model.plan, l.as_bytes()).is_ok()))
        });
        if short == "b2b-default" {
            // Peers: general JSON parsers on the same lines (a whole document each, no model).
            // simd-json parses in place: each line is copied into a buffer first.
            let mut buffer = Vec::new();
            let mut in_place = |l: &str, parse: fn(&mut [u8]) -> bool| {
                buffer.clear();
                buffer.extend_from_slice(l.as_bytes());
                parse(&mut buffer)
            };
            group.bench_function("simd-json/tape", |b| {
                b.iter(|| accepted(&lines, |l| in_place(l, |buf| simd_json::to_tape(buf).is_ok())))
            });
            group.bench_function("simd-json/borrowed-value", |b| {
                b.iter(|| accepted(&lines, |l| in_place(l, |buf| simd_json::to_borrowed_value(buf).is_ok())))
            });
            // The fields the engine and this model read, as sonic-rs pointers (no conversion into
            // values: the least a sonic-rs reader would do).
            let mut tree = sonic_rs::PointerTree::new();
            let engine = ["type", "event", "userId", "anonymousId", "previousId", "groupId", "messageId"];
            for field in engine.into_iter().chain(["timestamp", "originalTimestamp", "sentAt", "receivedAt", "traits"])
            {
                tree.add_path([field]);
            }
            for path in model.plan.fields.paths() {
                tree.add_path(path.iter().map(String::as_str));
            }
            group.bench_function("sonic-rs/get_many", |b| {
                b.iter(|| accepted(&lines, |l| sonic_rs::get_many(l, &tree).is_ok()))
            });
            group.bench_function("sonic-rs/value", |b| {
                b.iter(|| accepted(&lines, |l| sonic_rs::from_slice::<sonic_rs::Value>(l.as_bytes()).is_ok()))
            });
            group.bench_function("serde_json/value", |b| {
                b.iter(|| accepted(&lines, |l| serde_json::from_slice::<serde_json::Value>(l.as_bytes()).is_ok()))
            });
        }
        group.bench_function(format!("{short}/scanner+compact"), |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter_map(|l| read_message(&model.plan, l.as_bytes()).ok())
                    .filter(|m| !model.plan.ignores(m))
                    .map(|m| model.compact(&m).matched.iter().count())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
