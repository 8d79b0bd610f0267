//! Behaviour of the scoring engine (SPEC §2.2), one rule kind and option at a time. Expected
//! values are computed by hand in each test.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

mod support;

use leadscore_core::engine::{AccountScore, evaluate_account};
use leadscore_core::{AccountBook, IdentityGraph, LeadHistory, Outcome, OutcomeKind};
use serde_json::json;
use support::*;

const TWO_DIMS: &str = r#"
[model]
name = "t"
[dimensions.fit]
[dimensions.engagement]
"#;

fn with_rules(rules: &str) -> leadscore_core::CheckedModel {
    model(&format!("{TWO_DIMS}\n{rules}"))
}

#[test]
fn trait_rule_gives_points_when_its_condition_holds() {
    let m = with_rules(
        r#"
[[rules]]
name = "IT"
dimension = "fit"
if = 'lead.department == "IT"'
points = 15
"#,
    );
    let it = lead("a", json!({"department": "IT"}), vec![]);
    let finance = lead("b", json!({"department": "Finance"}), vec![]);
    let unknown = lead("c", json!({}), vec![]);
    assert_eq!(score(&m, &it, day(0)).dimensions, vec![15.0, 0.0]);
    assert_eq!(score(&m, &finance, day(0)).dimensions, vec![0.0, 0.0]);
    // A missing trait makes the condition false, not an error.
    assert_eq!(score(&m, &unknown, day(0)).total, 0.0);
    let c = &score(&m, &it, day(0)).contributions[0];
    assert_eq!(
        (c.rule.as_str(), c.dimension.as_str(), c.points, c.matched, c.last_matched_at),
        ("IT", "fit", 15.0, 1, None)
    );
}

#[test]
fn identify_traits_merge_over_base_traits_in_time_order_up_to_as_of() {
    let m = with_rules(
        r#"
[[rules]]
name = "Director"
dimension = "fit"
if = 'lead.title == "Director"'
points = 10
"#,
    );
    let events =
        vec![identify("a", json!({"title": "Director"}), day(2)), identify("a", json!({"title": "Manager"}), day(1))];
    let l = lead("a", json!({"title": "Intern"}), events);
    assert_eq!(score(&m, &l, day(0)).total, 0.0, "base trait before any identify");
    assert_eq!(score(&m, &l, day(1)).total, 0.0, "Manager from the identify of day 1");
    assert_eq!(score(&m, &l, day(3)).total, 10.0, "the later identify wins whatever the input order");
    assert_eq!(score(&m, &l, day(3)).traits["title"], json!("Director"));
}

#[test]
fn an_explicit_null_in_identify_removes_the_trait() {
    let m = with_rules("[[rules]]\nname = \"has title\"\ndimension = \"fit\"\nif = 'has(lead.title)'\npoints = 1\n");
    let l = lead("a", json!({"title": "CEO"}), vec![identify("a", json!({"title": null}), day(1))]);
    assert_eq!(score(&m, &l, day(0)).total, 1.0);
    assert_eq!(score(&m, &l, day(2)).total, 0.0);
}

const PRICING: &str = r#"
[[rules]]
name = "Pricing"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path == "/pricing"'
points = 5
"#;

#[test]
fn event_rule_adds_points_for_every_matching_event() {
    let m = with_rules(PRICING);
    let l = lead(
        "a",
        json!({}),
        vec![page("a", "/pricing", day(1)), page("a", "/pricing", day(2)), page("a", "/blog", day(2))],
    );
    let s = score(&m, &l, day(3));
    assert_eq!(s.dimensions, vec![0.0, 10.0]);
    assert_eq!(s.contributions[0].matched, 2);
    assert_eq!(s.contributions[0].last_matched_at, Some(day(2)));
}

#[test]
fn decay_halves_points_after_one_half_life() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.engagement]
half_life = "10d"
[[rules]]
name = "Pricing"
on = 'event.type == "page"'
points = 8
"#,
    );
    let l = lead("a", json!({}), vec![page("a", "/pricing", day(0))]);
    assert_close(score(&m, &l, day(0)).total, 8.0);
    assert_close(score(&m, &l, day(10)).total, 4.0);
    assert_close(score(&m, &l, day(20)).total, 2.0);
    assert_close(score(&m, &l, day(5)).total, 8.0 * 0.5_f64.powf(0.5));
}

#[test]
fn a_rule_half_life_overrides_the_dimension_and_none_disables_decay() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.engagement]
half_life = "10d"
[[rules]]
name = "fast"
on = 'event.type == "page"'
points = 8
half_life = "5d"
[[rules]]
name = "forever"
on = 'event.type == "page"'
points = 8
half_life = "none"
"#,
    );
    let l = lead("a", json!({}), vec![page("a", "/x", day(0))]);
    let s = score(&m, &l, day(10));
    assert_close(points(&s, "fast"), 2.0);
    assert_close(points(&s, "forever"), 8.0);
}

#[test]
fn within_counts_only_events_after_the_window_start() {
    let m = with_rules(&format!("{PRICING}within = \"7d\"\n"));
    let l = lead(
        "a",
        json!({}),
        vec![page("a", "/pricing", day(0)), page("a", "/pricing", day(3)), page("a", "/pricing", day(9))],
    );
    // Window (day 3, day 10]: day 3 is exactly on the open edge and does not count.
    assert_eq!(score(&m, &l, day(10)).total, 5.0);
    assert_eq!(score(&m, &l, day(9)).total, 10.0);
}

#[test]
fn per_day_keeps_the_latest_events_of_each_utc_day() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.engagement]
half_life = "1d"
[[rules]]
name = "Pricing"
on = 'event.type == "page"'
points = 4
per_day = 1
"#,
    );
    // Two visits on day 0 (06:00 and 18:00): only the 18:00 one counts, decayed by 6 hours.
    let l = lead("a", json!({}), vec![page("a", "/p", day(0) + hours(6)), page("a", "/p", day(0) + hours(18))]);
    let s = score(&m, &l, day(1));
    assert_close(s.total, 4.0 * 0.5_f64.powf(0.25));
    assert_eq!(s.contributions[0].matched, 1);
    // The next UTC day is a new day.
    let l = lead("a", json!({}), vec![page("a", "/p", day(0) + hours(23)), page("a", "/p", day(1) + hours(1))]);
    assert_eq!(score(&m, &l, day(2)).contributions[0].matched, 2);
}

#[test]
fn limit_keeps_only_the_most_recent_matching_events() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.engagement]
half_life = "1d"
[[rules]]
name = "Careers"
on = 'event.properties.path.startsWith("/careers")'
points = -8
limit = 2
"#,
    );
    let events = (0..5).map(|d| page("a", "/careers/jobs", day(d))).collect();
    let s = score(&m, &lead("a", json!({}), events), day(4));
    // The two most recent: day 4 (age 0) and day 3 (age 1 day).
    assert_close(s.total, -8.0 - 4.0);
    assert_eq!(s.contributions[0].matched, 2);
}

#[test]
fn max_points_caps_the_absolute_value_of_a_rule() {
    let m = with_rules(
        r#"
[[rules]]
name = "Downloads"
dimension = "engagement"
on = 'event.event == "Downloaded"'
points = 10
max_points = 25
[[rules]]
name = "Careers"
dimension = "engagement"
on = 'event.type == "page"'
points = -10
max_points = 15
"#,
    );
    let events = (0..4)
        .map(|d| track("a", "Downloaded", json!({}), day(d)))
        .chain((0..3).map(|d| page("a", "/careers", day(d))))
        .collect();
    let s = score(&m, &lead("a", json!({}), events), day(5));
    assert_eq!(points(&s, "Downloads"), 25.0);
    assert_eq!(points(&s, "Careers"), -15.0);
}

#[test]
fn count_rule_gives_points_once_at_least_n_events_fall_in_the_window() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.engagement]
half_life = "1d"
[[rules]]
name = "Opened 5+"
on = 'event.event == "Email Opened"'
at_least = 5
within = "30d"
points = 25
"#,
    );
    let opens = |n: i64| (0..n).map(|d| track("a", "Email Opened", json!({}), day(d))).collect::<Vec<_>>();
    assert_eq!(score(&m, &lead("a", json!({}), opens(4)), day(10)).total, 0.0);
    // Count rules do not decay even though the dimension does.
    assert_eq!(score(&m, &lead("a", json!({}), opens(5)), day(10)).total, 25.0);
    // Day 0 leaves the window (day 0 is not after day 30 - 30d).
    let s = score(&m, &lead("a", json!({}), opens(5)), day(30));
    assert_eq!(s.total, 0.0);
    assert_eq!(s.contributions[0].matched, 4);
}

#[test]
fn count_rule_applies_per_day_before_counting() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.engagement]
[[rules]]
name = "3 visit days"
on = 'event.type == "page"'
at_least = 3
within = "30d"
per_day = 1
points = 10
"#,
    );
    let same_day: Vec<_> = (0..5).map(|h| page("a", "/", day(1) + hours(h))).collect();
    assert_eq!(score(&m, &lead("a", json!({}), same_day), day(2)).total, 0.0);
    let three_days: Vec<_> = (0..3).map(|d| page("a", "/", day(d))).collect();
    assert_eq!(score(&m, &lead("a", json!({}), three_days), day(3)).total, 10.0);
}

const COLD: &str = r#"
[[rules]]
name = "Went cold"
dimension = "engagement"
inactive = 'event.type == "page" || event.type == "track"'
for = "60d"
points = -20
"#;

#[test]
fn inactivity_rule_applies_after_the_period_without_a_matching_event() {
    let m = with_rules(COLD);
    let l = lead("a", json!({}), vec![page("a", "/", day(0)), page("a", "/", day(10))]);
    assert_eq!(score(&m, &l, day(69)).total, 0.0, "last visit 59 days ago");
    assert_eq!(score(&m, &l, day(70)).total, -20.0, "exactly 60 days without a visit");
    let s = score(&m, &l, day(100));
    assert_eq!((s.contributions[0].matched, s.contributions[0].last_matched_at), (1, Some(day(10))));
}

#[test]
fn inactivity_needs_a_lead_known_for_the_whole_period() {
    let m = with_rules(COLD);
    // Only an identify (not matching), first seen on day 50: not cold on day 100.
    let l = lead("a", json!({}), vec![identify("a", json!({}), day(50))]);
    assert_eq!(score(&m, &l, day(100)).total, 0.0);
    assert_eq!(score(&m, &l, day(110)).total, -20.0);
    // created_at takes the place of the first event.
    let l = lead("a", json!({"created_at": "2024-01-01T00:00:00Z"}), vec![]);
    assert_eq!(score(&m, &l, day(59)).total, 0.0);
    assert_eq!(score(&m, &l, day(60)).total, -20.0);
    // No events and no created_at: nothing to measure inactivity from.
    assert_eq!(score(&m, &lead("b", json!({}), vec![]), day(365)).total, 0.0);
}

#[test]
fn dimensions_are_clamped_and_weighted_into_the_total() {
    let m = model(
        r#"
[model]
name = "t"
[dimensions.fit]
max = 20
weight = 2.0
[dimensions.engagement]
min = 0
weight = 0.5
[[rules]]
name = "big"
dimension = "fit"
if = 'true'
points = 30
[[rules]]
name = "careers"
dimension = "engagement"
on = 'event.type == "page"'
points = -10
"#,
    );
    let s = score(&m, &lead("a", json!({}), vec![page("a", "/careers", day(0))]), day(1));
    assert_eq!(s.dimensions, vec![20.0, 0.0]);
    assert_eq!(s.total, 40.0);
}

const STAGED: &str = r#"
[model]
name = "t"
[dimensions.fit]
[dimensions.engagement]
[[rules]]
name = "fit"
dimension = "fit"
if = 'has(lead.fit)'
points = 0
[[stages]]
name = "mql"
when = "total >= 50"
[[stages]]
name = "sql"
when = "total >= 80 && fit >= 10"
"#;

fn with_points(fit: f64, engagement: f64) -> LeadHistory {
    let events = (0..engagement as i64).map(|i| track("a", "Point", json!({}), day(0) + i)).collect();
    lead("a", json!({"fitpoints": fit}), events)
}

#[test]
fn stage_is_the_last_stage_whose_condition_holds_else_lead() {
    let m = model(&format!(
        "{STAGED}\n[[rules]]\nname = \"f\"\ndimension = \"fit\"\nif = 'lead.fitpoints >= 10.0'\npoints = 10\n[[rules]]\nname = \"e\"\ndimension = \"engagement\"\non = 'event.event == \"Point\"'\npoints = 1\n"
    ));
    assert_eq!(score(&m, &with_points(0.0, 49.0), day(1)).stage, "lead");
    assert_eq!(score(&m, &with_points(0.0, 50.0), day(1)).stage, "mql");
    // total 85 but fit 0: sql does not hold, mql does.
    assert_eq!(score(&m, &with_points(0.0, 85.0), day(1)).stage, "mql");
    assert_eq!(score(&m, &with_points(10.0, 70.0), day(1)).stage, "sql");
}

#[test]
fn an_outcome_overrides_the_stage_from_its_time_on() {
    let m = model(STAGED);
    let mut l = lead("a", json!({}), vec![]);
    l.outcomes = vec![Outcome { kind: OutcomeKind::Won, at: day(5) }, Outcome { kind: OutcomeKind::Lost, at: day(2) }];
    assert_eq!(score(&m, &l, day(1)).stage, "lead");
    assert_eq!(score(&m, &l, day(3)).stage, "lost");
    assert_eq!(score(&m, &l, day(5)).stage, "customer");
    l.outcomes = vec![Outcome { kind: OutcomeKind::Disqualified, at: day(0) }];
    assert_eq!(score(&m, &l, day(1)).stage, "disqualified");
}

#[test]
fn grade_is_a_fit_letter_and_an_engagement_digit() {
    let m = model(&format!(
        "{STAGED}\n[[rules]]\nname = \"f\"\ndimension = \"fit\"\nif = 'true'\npoints = 30\n[[rules]]\nname = \"e\"\ndimension = \"engagement\"\non = 'event.event == \"Point\"'\npoints = 1\n[grade]\nfit = {{ A = 40, B = 25, C = 10 }}\nengagement = {{ 1 = 60, 2 = 30, 3 = 10 }}\n"
    ));
    assert_eq!(score(&m, &with_points(0.0, 0.0), day(1)).grade.as_deref(), Some("B4"));
    assert_eq!(score(&m, &with_points(0.0, 10.0), day(1)).grade.as_deref(), Some("B3"));
    assert_eq!(score(&m, &with_points(0.0, 60.0), day(1)).grade.as_deref(), Some("B1"));
    let ungraded = model(STAGED);
    assert_eq!(score(&ungraded, &with_points(0.0, 0.0), day(1)).grade, None);
}

#[test]
fn events_after_as_of_do_not_exist() {
    let m = with_rules(PRICING);
    let l = lead("a", json!({}), vec![page("a", "/pricing", day(1)), page("a", "/pricing", day(3))]);
    assert_eq!(score(&m, &l, day(2)).total, 5.0);
    assert_eq!(score(&m, &l, day(1)).total, 5.0, "an event exactly at as_of counts");
    assert_eq!(score(&m, &l, day(0)).total, 0.0);
}

#[test]
fn ignored_events_are_dropped_before_any_rule_sees_them() {
    let m = with_rules(&format!(
        "{PRICING}\n[events]\nignore = 'has(event.context.userAgent) && event.context.userAgent.matches(\"(?i)bot|crawler\")'\n"
    ));
    let mut bot = page("a", "/pricing", day(1));
    bot.body["context"] = json!({"userAgent": "Googlebot/2.1"});
    let mut human = page("a", "/pricing", day(1));
    human.body["context"] = json!({"userAgent": "Mozilla/5.0"});
    human.message_id = Some("h".into());
    assert_eq!(score(&m, &lead("a", json!({}), vec![bot, human]), day(2)).total, 5.0);
}

#[test]
fn duplicate_message_ids_count_once() {
    let m = with_rules(PRICING);
    let mut first = page("a", "/pricing", day(1));
    first.message_id = Some("m-1".into());
    let again = first.clone();
    let l = lead("a", json!({}), vec![first, again]);
    assert_eq!(score(&m, &l, day(2)).total, 5.0);
}

/// A file that repeats one message many times (a client's retry loop) still counts it once, and
/// reading the lead takes time linear in its events: the first of each id is found once per read.
#[test]
fn many_copies_of_one_message_count_once() {
    let m = with_rules(PRICING);
    let mut first = page("a", "/pricing", day(1));
    first.message_id = Some("m-1".into());
    let mut events = vec![first; 30_000];
    let mut later = page("a", "/pricing", day(1) + 1);
    later.message_id = Some("m-1".into());
    events.push(later);
    let l = lead("a", json!({}), events);
    let s = score(&m, &l, day(2));
    assert_eq!((s.total, s.contributions[0].matched), (5.0, 1));
}

#[test]
fn anonymous_visits_count_once_an_identify_links_them() {
    let m = with_rules(PRICING);
    let visit = event(
        json!({"type": "page", "anonymousId": "anon-1", "properties": {"path": "/pricing"}, "timestamp": ts(day(1)), "messageId": "v"}),
    );
    let link = event(
        json!({"type": "identify", "anonymousId": "anon-1", "userId": "a", "traits": {}, "timestamp": ts(day(3)), "messageId": "i"}),
    );
    let mut graph = IdentityGraph::default();
    graph.observe(&link);
    let attribution = graph.attribute(&visit).expect("linked");
    assert_eq!((attribution.lead_id.as_str(), attribution.from), ("a", day(3)));
    let mut stitched = visit.clone();
    stitched.visible_at = attribution.from;
    let l = lead("a", json!({}), vec![stitched, link]);
    assert_eq!(score(&m, &l, day(2)).total, 0.0, "before the identify the visit is nobody's");
    assert_eq!(score(&m, &l, day(4)).total, 5.0, "after it, the earlier visit counts");
}

#[test]
fn alias_links_the_previous_id_and_the_earliest_link_wins() {
    let mut graph = IdentityGraph::default();
    graph.observe(&event(json!({"type": "alias", "previousId": "anon-9", "userId": "b", "timestamp": ts(day(5))})));
    graph.observe(&event(json!({"type": "identify", "anonymousId": "anon-9", "userId": "c", "timestamp": ts(day(6))})));
    assert_eq!(graph.lead_of("anon-9"), Some("b"));
    let unlinked = event(json!({"type": "page", "anonymousId": "anon-x", "timestamp": ts(day(1))}));
    assert_eq!(graph.attribute(&unlinked), None);
}

#[test]
fn account_traits_are_visible_as_lead_account() {
    let m = with_rules(
        r#"
[[rules]]
name = "Enterprise account"
dimension = "fit"
if = 'lead.account.employees >= 1000'
points = 20
"#,
    );
    let group = event(
        json!({"type": "group", "userId": "a", "groupId": "acme", "traits": {"employees": 5000}, "timestamp": ts(day(1))}),
    );
    let mut book = AccountBook::default();
    book.record_event(&group);
    let l = lead("a", json!({}), vec![group]);
    assert_eq!(evaluate_with(&m, &l, &book, day(0)).total, 0.0);
    let s = evaluate_with(&m, &l, &book, day(2));
    assert_eq!((s.total, s.account.as_deref()), (20.0, Some("acme")));
    // Without a group call, the `account` trait names the account.
    let l = lead("b", json!({"account": "acme"}), vec![]);
    assert_eq!(evaluate_with(&m, &l, &book, day(2)).total, 20.0);
}

#[test]
fn account_scores_aggregate_their_leads() {
    let src = |aggregate: &str| {
        format!(
            "{STAGED}\n[accounts]\naggregate = \"{aggregate}\"\n[[rules]]\nname = \"e\"\ndimension = \"engagement\"\non = 'event.event == \"Point\"'\npoints = 1\n"
        )
    };
    let a = score(&model(&src("max")), &with_points(0.0, 30.0), day(1));
    let b = score(&model(&src("max")), &with_points(0.0, 50.0), day(1));
    let roll =
        |aggregate: &str| -> AccountScore { evaluate_account(&model(&src(aggregate)), "acme", &[&a, &b], day(1)) };
    assert_eq!(roll("max").dimensions, vec![0.0, 50.0]);
    assert_eq!(roll("max").stage, "mql");
    assert_eq!(roll("sum").total, 80.0);
    assert_eq!(roll("mean").dimensions, vec![0.0, 40.0]);
    assert_eq!(roll("mean").leads, vec!["a".to_owned(), "a".to_owned()]);
}

#[test]
fn calibration_maps_the_total_to_a_probability() {
    let m = model(
        "[model]\nname = \"t\"\n[dimensions.predicted]\n[[rules]]\nname = \"x\"\nif = 'true'\npoints = 2\n[calibration]\nintercept = -1.0\nslope = 0.5\n",
    );
    let p = score(&m, &lead("a", json!({}), vec![]), day(0)).probability.expect("calibrated");
    assert_close(p, 0.5);
}

#[test]
fn event_rules_see_the_lead_and_its_traits() {
    let m = with_rules(
        r#"
[[rules]]
name = "Demo by a manager"
dimension = "engagement"
on = 'event.event == "Demo Requested" && lead.title.contains("Manager")'
points = 30
"#,
    );
    let events = vec![track("a", "Demo Requested", json!({}), day(1))];
    assert_eq!(score(&m, &lead("a", json!({"title": "IT Manager"}), events.clone()), day(2)).total, 30.0);
    assert_eq!(score(&m, &lead("a", json!({"title": "Student"}), events), day(2)).total, 0.0);
}

#[test]
fn original_timestamp_is_corrected_by_clock_skew() {
    let e = event(json!({
        "type": "track", "userId": "a", "event": "X",
        "originalTimestamp": "2024-01-01T00:00:00Z",
        "sentAt": "2024-01-01T00:00:10Z",
        "receivedAt": "2024-01-01T01:00:10Z"
    }));
    assert_eq!(e.at, day(0) + hours(1));
    assert_eq!(e.body["timestamp"], json!("2024-01-01T01:00:00Z"));
}

#[test]
fn an_event_time_is_taken_from_timestamp_then_skew_corrected_original_timestamp() {
    use leadscore_core::engine::{EventError, TimeSource, resolve_time};
    let object = |v: serde_json::Value| v.as_object().cloned().unwrap();
    let t = resolve_time(&object(
        json!({"timestamp": "2026-01-01T00:00:00Z", "originalTimestamp": "2020-01-01T00:00:00Z"}),
    ))
    .unwrap();
    assert_eq!(t.source, TimeSource::Timestamp);
    let skewed = resolve_time(&object(json!({
        "originalTimestamp": "2026-01-01T00:00:00Z", "sentAt": "2026-01-01T00:00:10Z", "receivedAt": "2026-01-01T00:00:15Z"
    })))
    .unwrap();
    assert_eq!(skewed.source, TimeSource::SkewCorrected);
    assert_eq!(skewed.at, leadscore_core::time::parse_timestamp("2026-01-01T00:00:05Z").unwrap());
    // The reported attack: a client clock "in 1970" pushes the corrected time past year 9999.
    let poisoned = object(json!({
        "type": "page", "originalTimestamp": "9999-12-30T00:00:00Z", "sentAt": "1970-01-01T00:00:00Z",
        "receivedAt": "2026-11-26T00:00:00Z"
    }));
    let error = resolve_time(&poisoned).unwrap_err();
    assert!(matches!(error, EventError::TimeOutOfRange { field: "originalTimestamp", .. }), "{error}");
    assert!(leadscore_core::Event::from_message(serde_json::Value::Object(poisoned)).is_err());
}
