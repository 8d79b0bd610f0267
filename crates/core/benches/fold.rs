//! The fold: compact events applied to lead states, per event, on a 10-rule model
//! (`bench/models/peer10.toml`). The messages are those of `benches/read.rs`'s generator (or the
//! first lines of the file `LEADSCORE_BENCH_EVENTS` names), read once before timing, dealt to
//! leads of 50 events each in time order.
//! Run: `cargo bench -p leadscore-core --bench fold`.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "benches fail loudly on broken fixtures")]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use leadscore_core::compact::{CompactEvent, LeadState, read_message};
use leadscore_core::{AccountBook, CheckedModel};
use serde_json::Map;

const PER_LEAD: usize = 50;

/// The allocator of the `leadscore` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn messages() -> Vec<String> {
    if let Ok(path) = std::env::var("LEADSCORE_BENCH_EVENTS") {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        return text.lines().take(20_000).map(str::to_owned).collect();
    }
    let paths = ["/pricing", "/blog/lead-scoring-101", "/careers/engineering", "/product/integrations", "/"];
    let events = ["Email Opened", "Logged In", "Webinar Registered", "Form Submitted", "Demo Requested"];
    (0..20_000)
        .map(|i| {
            let ts = format!("2024-{:02}-{:02}T{:02}:{:02}:00Z", 1 + (i / 28 / 24) % 12, 1 + (i / 24) % 28, i % 24, i % 60);
            match i % 10 {
                0 => format!(r#"{{"type":"identify","messageId":"m{i}","timestamp":"{ts}","userId":"L","traits":{{"title":"VP Sales","employees":250}}}}"#),
                n if n % 2 == 0 => format!(r#"{{"type":"track","messageId":"m{i}","timestamp":"{ts}","userId":"L","event":"{}","properties":{{"plan":"pro"}}}}"#, events[i % events.len()]),
                _ => format!(r#"{{"type":"page","messageId":"m{i}","timestamp":"{ts}","userId":"L","properties":{{"path":"{}"}},"context":{{"userAgent":"Mozilla/5.0"}}}}"#, paths[i % paths.len()]),
            }
        })
        .collect()
}

fn model() -> CheckedModel {
    let path = format!("{}/../../bench/models/peer10.toml", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    CheckedModel::from_source(&source).unwrap_or_else(|d| panic!("{path}: {d:?}"))
}

/// The messages' compact events, dealt to leads in time order.
fn leads(model: &CheckedModel) -> Vec<Vec<CompactEvent>> {
    let mut events: Vec<CompactEvent> = messages()
        .iter()
        .filter_map(|line| read_message(&model.plan, line.as_bytes()).ok())
        .filter(|m| !model.plan.ignores(m))
        .map(|m| model.compact(&m))
        .collect();
    events.sort_by_key(|e| e.at);
    let mut leads: Vec<Vec<CompactEvent>> = vec![Vec::new(); events.len().div_ceil(PER_LEAD)];
    let n = leads.len();
    for (i, event) in events.into_iter().enumerate() {
        leads[i % n].push(event);
    }
    leads
}

/// One lead's state, its events applied one at a time.
fn fold(events: Vec<CompactEvent>) -> LeadState {
    let mut state = LeadState::new(String::new(), Map::new(), Vec::new());
    for event in events {
        state.apply(event);
    }
    state
}

fn bench(c: &mut Criterion) {
    let model = model();
    let leads = leads(&model);
    let total: usize = leads.iter().map(Vec::len).sum();
    let accounts = AccountBook::default();
    let as_of = leadscore_core::time::parse_timestamp("2025-01-01T00:00:00Z").unwrap();
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(total as u64));
    eprintln!("{total} events, {} leads", leads.len());
    group.bench_function("peer10/apply", |b| {
        b.iter_batched(
            || leads.clone(),
            |leads| leads.into_iter().map(|events| fold(events).len()).sum::<usize>(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("peer10/apply+score", |b| {
        b.iter_batched(
            || leads.clone(),
            |leads| leads.into_iter().map(|events| fold(events).score_at(&model, &accounts, as_of).total).sum::<f64>(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
