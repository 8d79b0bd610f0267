//! The worked examples of the source articles (SPEC §7) reproduce exactly: hand-built leads scored
//! against examples/models/{m3,saas,b2b-default}.toml, expectations computed by hand here.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

mod support;

use leadscore_core::{CheckedModel, Event};
use serde_json::json;
use support::*;

fn example(name: &str) -> CheckedModel {
    let path = format!("{}/../../examples/models/{name}", env!("CARGO_MANIFEST_DIR"));
    model(&std::fs::read_to_string(path).expect("example model"))
}

fn form(user: &str, form: &str, d: i64) -> Event {
    track(user, "Form Submitted", json!({"form": form}), day(d))
}

fn opened(user: &str, campaign_type: &str, d: i64) -> Event {
    track(user, "Email Opened", json!({"campaign_type": campaign_type}), day(d))
}

#[test]
fn m3_free_assessment_emails_newsletter_and_visits_make_an_sql() {
    let m = example("m3.toml");
    let mut events: Vec<Event> = (1..=5).map(|d| opened("a", "marketing", d)).collect();
    events.push(track("a", "Newsletter Subscribed", json!({}), day(2)));
    events.push(form("a", "free-assessment", 10));
    events.extend([20, 25, 28].map(|d| page("a", "/", day(d))));
    let s = score(&m, &lead("a", json!({}), events), day(30));
    // 80 (form) + 25 (5 marketing e-mails) + 15 (newsletter) + 10 (3 visits in 30 days) = 130
    assert_eq!(s.total, 130.0);
    assert_eq!(s.stage, "sql");
    assert_eq!(points(&s, "No website visit in 30 days"), 0.0);
}

#[test]
fn m3_newsletter_emails_and_visits_without_a_form_make_an_mql() {
    let m = example("m3.toml");
    let mut events: Vec<Event> = (1..=5).map(|d| opened("a", "marketing", d)).collect();
    events.push(track("a", "Newsletter Subscribed", json!({}), day(1)));
    events.extend([10, 12, 14].map(|d| page("a", "/blog", day(d))));
    let s = score(&m, &lead("a", json!({}), events), day(15));
    // 25 + 15 + 10 = 50: exactly the MQL threshold.
    assert_eq!((s.total, s.stage.as_str()), (50.0, "mql"));
}

#[test]
fn m3_two_visits_or_four_marketing_emails_are_not_enough() {
    let m = example("m3.toml");
    let mut events: Vec<Event> = (1..=4).map(|d| opened("a", "marketing", d)).collect();
    events.push(opened("a", "transactional", 5));
    events.extend([10, 12].map(|d| page("a", "/", day(d))));
    let s = score(&m, &lead("a", json!({}), events), day(15));
    assert_eq!((s.total, s.stage.as_str()), (0.0, "lead"));
}

#[test]
fn m3_unsubscribing_and_staying_away_lose_points() {
    let m = example("m3.toml");
    let events = vec![
        track("a", "Newsletter Subscribed", json!({}), day(0)),
        page("a", "/", day(1)),
        track("a", "Unsubscribed", json!({}), day(40)),
    ];
    let s = score(&m, &lead("a", json!({}), events), day(60));
    // +15 newsletter, -15 unsubscribed, -10 for no visit since day 1 (59 days).
    assert_eq!(points(&s, "Unsubscribed"), -15.0);
    assert_eq!(points(&s, "No website visit in 30 days"), -10.0);
    assert_eq!((s.total, s.stage.as_str()), (-10.0, "lead"));
}

#[test]
fn m3_counts_the_assessment_form_once() {
    let m = example("m3.toml");
    let events = vec![form("a", "free-consultation", 5), form("a", "free-assessment", 6), form("a", "contact", 7)];
    let s = score(&m, &lead("a", json!({}), events), day(10));
    assert_eq!((s.total, s.stage.as_str()), (80.0, "sql"));
}

fn saas_fit(title: &str, department: &str, employees: f64) -> f64 {
    let m = example("saas.toml");
    score(&m, &lead("a", json!({"title": title, "department": department, "employees": employees}), vec![]), day(0))
        .total
}

#[test]
fn saas_table_scores_role_department_and_company_size() {
    // C-level 15 + IT 15 + 500-999 employees 15
    assert_eq!(saas_fit("Chief Technology Officer", "IT", 750.0), 45.0);
    // project manager 10 + finance 10 + 100-499 employees 10
    assert_eq!(saas_fit("Senior Project Manager", "Finance", 250.0), 30.0);
    // director 10 + marketing 0 + 1000+ employees 5
    assert_eq!(saas_fit("Director of Marketing", "Marketing", 1500.0), 15.0);
    // assistant 0 (not C-level) + IT 15 + 50-99 employees 5
    assert_eq!(saas_fit("Executive Assistant to the CEO", "IT", 50.0), 20.0);
    assert_eq!(saas_fit("Analyst", "Sales", 10.0), 0.0);
}

#[test]
fn saas_employee_bands_meet_without_overlap() {
    for (employees, expected) in [
        (1.0, 0.0),
        (49.0, 0.0),
        (50.0, 5.0),
        (99.0, 5.0),
        (100.0, 10.0),
        (499.0, 10.0),
        (500.0, 15.0),
        (999.0, 15.0),
        (1000.0, 5.0),
    ] {
        assert_eq!(saas_fit("Analyst", "Sales", employees), expected, "{employees} employees");
    }
}

#[test]
fn saas_zero_point_rules_still_explain_themselves() {
    let m = example("saas.toml");
    let s = score(
        &m,
        &lead("a", json!({"title": "Marketing Assistant", "department": "Marketing", "employees": 20}), vec![]),
        day(0),
    );
    let explained: Vec<(&str, f64)> = s.contributions.iter().map(|c| (c.rule.as_str(), c.points)).collect();
    assert_eq!(explained, vec![("Role: assistant", 0.0), ("Department: marketing", 0.0), ("Employees: 1-50", 0.0)]);
}

#[test]
fn b2b_default_separates_a_buyer_from_a_job_seeker() {
    let m = example("b2b-default.toml");
    let buyer = lead(
        "buyer",
        json!({"email": "dana@acme-robotics.com", "title": "VP of Engineering", "department": "Engineering", "employees": 850, "industry": "Software", "country": "Germany"}),
        vec![page("buyer", "/pricing", day(28)), track("buyer", "Demo Requested", json!({}), day(29))],
    );
    let seeker = lead(
        "seeker",
        json!({"email": "sam@gmail.com", "title": "Student", "employees": 1}),
        (0..5).map(|d| page("seeker", "/careers/jobs", day(20 + d))).collect(),
    );
    let b = score(&m, &buyer, day(30));
    let s = score(&m, &seeker, day(30));
    assert!(b.total > s.total + 50.0, "buyer {} vs seeker {}", b.total, s.total);
    assert!(b.dimensions[0] > 40.0, "a VP at an 850-person software company fits: {:?}", b.contributions);
    assert!(s.dimensions[1] < 0.0, "careers visits take engagement away: {:?}", s.contributions);
    assert!(s.grade.as_deref().is_some_and(|g| g.starts_with('D')), "{:?}", s.grade);
}
