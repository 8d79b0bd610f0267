use super::*;

fn small(seed: u64) -> Config {
    Config::new(seed, 300)
}

#[test]
fn same_seed_and_index_give_the_same_lead() {
    let config = small(7);
    let a = generate_lead(&config, 42);
    let b = generate_lead(&config, 42);
    assert_eq!(a.lead, b.lead);
    assert_eq!(a.events, b.events);
    assert_eq!(a.outcome, b.outcome);
    assert_eq!(a.truth, b.truth);
}

#[test]
fn different_seeds_give_different_leads() {
    let a: Vec<LeadRow> = Generator::new(small(1)).take(20).map(|r| r.lead).collect();
    let b: Vec<LeadRow> = Generator::new(small(2)).take(20).map(|r| r.lead).collect();
    assert_ne!(a, b);
}

#[test]
fn generator_yields_every_lead_in_id_order() {
    let ids: Vec<String> = Generator::new(Config::new(3, 25)).map(|r| r.lead.id).collect();
    assert_eq!(ids.len(), 25);
    assert_eq!(ids[0], "L0000001");
    assert_eq!(ids[24], "L0000025");
}

#[test]
fn nothing_happens_after_the_end_date_and_outcomes_follow_creation() {
    let config = small(4);
    for record in Generator::new(config) {
        assert!(record.lead.created_at >= config.start() && record.lead.created_at < config.end);
        assert!(record.events.iter().all(|m| m.timestamp <= config.end));
        if let Some(outcome) = record.outcome {
            assert!(outcome.at > record.lead.created_at && outcome.at <= config.end);
        }
    }
}

#[test]
fn lead_events_are_sorted_by_time_and_carry_the_lead_id() {
    for record in Generator::new(small(5)) {
        let own: Vec<&Message> =
            record.events.iter().filter(|m| m.user_id.as_deref() == Some(record.lead.id.as_str())).collect();
        assert!(own.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(own.iter().any(|m| m.kind == "identify"), "{} has no identify", record.lead.id);
        assert!(record.events.iter().all(|m| m.user_id.is_none() || m.user_id == Some(record.lead.id.clone())));
    }
}

#[test]
fn truth_values_are_probabilities() {
    for record in Generator::new(small(6)) {
        let t = record.truth;
        for v in [t.icp_fit, t.intent, t.converted_probability] {
            assert!((0.0..=1.0).contains(&v), "{v}");
        }
    }
}

#[test]
fn ideal_customers_convert_more_than_students() {
    let ideal = person::icp_factors(Some("Software"), Some(800), Some("Engineering"), "vp", "US");
    let poor = person::icp_factors(Some("Education"), None, None, "student", "IN");
    assert!((ideal - 1.0).abs() < 1e-9, "{ideal}");
    assert!(poor < 0.2, "{poor}");
    let buyer = person::conversion_probability(Persona::DecisionMaker, ideal, 0.5);
    let student = person::conversion_probability(Persona::Student, poor, 0.5);
    assert!(buyer > 0.5, "{buyer}");
    assert!(student < 0.001, "{student}");
}

#[test]
fn every_kind_of_noise_is_present() {
    let records: Vec<LeadRecord> = Generator::new(Config::new(8, 400)).collect();
    let all = || records.iter().flat_map(|r| r.events.iter());
    let bots = all().filter(|m| m.context["userAgent"].as_str().is_some_and(|ua| ua.contains("bot"))).count();
    assert!(bots > 0, "no bot traffic");
    let duplicates = records
        .iter()
        .map(|r| r.events.windows(2).filter(|w| w[0].message_id == w[1].message_id && w[0] == w[1]).count())
        .sum::<usize>();
    assert!(duplicates > 0, "no duplicate deliveries");
    let stitched = all().filter(|m| m.kind == "identify" && m.user_id.is_some() && m.anonymous_id.is_some()).count();
    assert!(stitched > 0, "no identify linking an anonymous id");
    assert!(all().any(|m| m.kind == "group" && m.group_id.is_some()));
    assert!(records.iter().any(|r| r.lead.employees.is_none()), "no missing cells");
    let kinds: Vec<OutcomeKind> = records.iter().filter_map(|r| r.outcome.map(|o| o.kind)).collect();
    for kind in [OutcomeKind::Won, OutcomeKind::Lost, OutcomeKind::Disqualified] {
        assert!(kinds.contains(&kind), "no {kind:?}");
    }
}

#[test]
fn about_fifty_events_per_lead_on_average() {
    let config = Config::new(9, 1_000);
    let total: usize = Generator::new(config).map(|r| r.events.len()).sum();
    let mean = total as f64 / 1_000.0;
    assert!((30.0..80.0).contains(&mean), "{mean} events per lead");
}

#[test]
fn messages_serialise_in_segment_shape() {
    let record = generate_lead(&small(10), 0);
    for message in &record.events {
        let json = serde_json::to_value(message).unwrap_or_default();
        assert!(json["type"].is_string() && json["messageId"].is_string());
        let ts = json["timestamp"].as_str().unwrap_or_default();
        assert!(ts.ends_with('Z') && leadscore_core::time::parse_timestamp(ts).is_some(), "{ts}");
        assert!(json.get("userId").is_some() || json.get("anonymousId").is_some());
    }
}
