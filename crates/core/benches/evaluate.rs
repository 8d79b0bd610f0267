//! `evaluate` throughput: one lead with a realistic history against the example B2B model.
//! Run: `cargo bench -p leadscore-core --bench evaluate`.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leadscore_core::time::{MS_PER_DAY, parse_timestamp};
use leadscore_core::{AccountBook, CheckedModel, Event, LeadHistory, evaluate};
use serde_json::json;

fn history(events: usize) -> LeadHistory {
    let start = parse_timestamp("2024-03-01T00:00:00Z").unwrap_or(0);
    let paths = ["/", "/pricing", "/blog/scoring-101", "/product", "/careers", "/docs/api", "/customers"];
    let names = ["Email Opened", "Email Clicked", "Content Downloaded", "Webinar Registered", "Product Used"];
    let events = (0..events)
        .map(|i| {
            let at = start + (i as i64) * MS_PER_DAY / 3;
            let body = if i % 3 == 0 {
                json!({"type": "track", "userId": "lead-1", "event": names[i % names.len()], "properties": {"campaign_type": "marketing"},
                       "context": {"userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15"}, "messageId": format!("m{i}"), "timestamp": leadscore_core::time::format_timestamp(at)})
            } else {
                json!({"type": "page", "userId": "lead-1", "properties": {"path": paths[i % paths.len()], "url": "https://example.com"},
                       "context": {"userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0"}, "messageId": format!("m{i}"), "timestamp": leadscore_core::time::format_timestamp(at)})
            };
            Event::from_message(body).unwrap_or_else(|e| panic!("bench event: {e}"))
        })
        .collect();
    let traits = json!({"email": "dana@acme-robotics.com", "title": "VP of Engineering", "department": "Engineering", "employees": 850,
                        "industry": "Software", "country": "Germany", "created_at": "2024-02-15T00:00:00Z"});
    LeadHistory {
        id: "lead-1".into(),
        traits: traits.as_object().cloned().unwrap_or_default(),
        events,
        outcomes: vec![],
        ignore_applied: false,
    }
}

fn bench(c: &mut Criterion) {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/models/b2b-default.toml"))
            .unwrap_or_default();
    let model = CheckedModel::from_source(&source).unwrap_or_else(|d| panic!("example model: {d:?}"));
    let accounts = AccountBook::default();
    let as_of = parse_timestamp("2024-07-01T00:00:00Z").unwrap_or(0);
    let mut group = c.benchmark_group("evaluate");
    for n in [50, 500] {
        let lead = history(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("b2b_default_{n}_events"), |b| {
            b.iter(|| evaluate(&model, &lead, &accounts, as_of))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
