//! Condition throughput: compiled CEL conditions evaluated against realistic event and lead JSON.
//! Run: `cargo bench -p leadscore-core --bench conditions`. Each iteration is one evaluation
//! (`Throughput::Elements(1)`), so criterion's "elem/s" is evaluations per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leadscore_core::cel::{Activation, Binding, Program, compile};
use leadscore_core::time::parse_timestamp;
use serde_json::json;

/// Name, condition, and whether it matches the bench data (checked before timing).
const CONDITIONS: &[(&str, &str, bool)] = &[
    ("page_and_prefix", r#"event.type == "page" && event.properties.path.startsWith("/careers")"#, true),
    ("title_regex", r#"lead.title.matches("(?i)\\b(ceo|cfo|cto|chief)\\b")"#, true),
    ("employees_range", "lead.employees >= 100 && lead.employees < 500", true),
    ("department_in", r#"lead.department in ["IT", "Finance"]"#, true),
    ("free_email", "is_free_email(lead.email)", false),
    // Shapes that do not match, or fail (and are therefore false), cost the same or less.
    ("missing_field", r#"has(event.context.userAgent) && event.context.campaign.name == "spring""#, false),
    ("days_since", "days_since(lead.created_at) > 30 && email_domain(lead.email) == lead.company_domain", true),
];

fn program(src: &str) -> Program {
    match compile(src, &["event", "lead"]) {
        Ok(program) => program,
        Err(errors) => panic!("bench condition `{src}` does not compile: {errors:?}"),
    }
}

fn conditions(c: &mut Criterion) {
    let event = json!({
        "type": "page",
        "userId": "lead-1",
        "anonymousId": "a4f1c2d0-77e1-4a55-9d0e-3b1b2a4c5d6e",
        "messageId": "m-102938",
        "timestamp": "2024-05-01T12:00:00Z",
        "properties": {
            "path": "/careers/senior-backend-engineer",
            "url": "https://example.com/careers/senior-backend-engineer",
            "title": "Senior Backend Engineer | Careers",
            "referrer": "https://www.google.com/"
        },
        "context": {
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
            "ip": "203.0.113.7",
            "locale": "de-DE",
            "page": {"path": "/careers/senior-backend-engineer", "search": ""}
        }
    });
    let lead = json!({
        "id": "lead-1",
        "email": "dana.schmidt@acme-robotics.com",
        "first_name": "Dana",
        "last_name": "Schmidt",
        "title": "Chief Technology Officer",
        "department": "Finance",
        "employees": 250,
        "industry": "Software",
        "country": "Germany",
        "budget": 50000,
        "company_domain": "acme-robotics.com",
        "created_at": "2024-02-15T00:00:00Z",
        "account": {"name": "Acme Robotics", "industry": "Software", "employees": 250}
    });
    let as_of = parse_timestamp("2024-05-01T12:00:00Z").unwrap_or(0);
    let vars = [Binding::Json(&event), Binding::Json(&lead)];
    let act = Activation { vars: &vars, as_of };

    let mut group = c.benchmark_group("conditions");
    group.throughput(Throughput::Elements(1));
    for (name, src, expected) in CONDITIONS {
        let program = program(src);
        assert_eq!(program.matches(&act), *expected, "bench condition `{src}`");
        group.bench_function(*name, |b| b.iter(|| program.matches(black_box(&act))));
    }
    group.finish();

    // The same work written by hand against serde_json, for scale: the floor set by JSON lookups.
    let mut group = c.benchmark_group("handwritten");
    group.throughput(Throughput::Elements(1));
    group.bench_function("page_and_prefix", |b| {
        b.iter(|| {
            let event = black_box(&event);
            event.get("type").and_then(|t| t.as_str()) == Some("page")
                && event
                    .get("properties")
                    .and_then(|p| p.get("path"))
                    .and_then(|p| p.as_str())
                    .is_some_and(|p| p.starts_with("/careers"))
        })
    });
    group.bench_function("employees_range", |b| {
        b.iter(|| {
            let lead = black_box(&lead);
            lead.get("employees").and_then(|e| e.as_f64()).is_some_and(|e| e >= 100.0)
                && lead.get("employees").and_then(|e| e.as_f64()).is_some_and(|e| e < 500.0)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("compile");
    group.throughput(Throughput::Elements(1));
    group.bench_function("page_and_prefix", |b| {
        b.iter(|| compile(black_box(CONDITIONS[0].1), &["event", "lead"]).is_ok())
    });
    group.finish();
}

criterion_group!(benches, conditions);
criterion_main!(benches);
