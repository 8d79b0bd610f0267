//! Honest numbers and no silent drops: the funnel counts each step over the leads that passed the
//! one before; messages the model's `[events] ignore` drops (a headless browser's user agent,
//! as a browser test sends by default) are still acknowledged and stored, but counted in
//! `/metrics` and on the marketing page, and logged.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use harness::{MODEL, T0, login, start_model_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_messages_are_counted_not_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!(
        "{MODEL}\n[events]\nignore = 'has(event.context) && has(event.context.userAgent) && event.context.userAgent.contains(\"HeadlessChrome\")'\n"
    );
    let s = start_model_settings(dir.path(), &model, |_| {});
    let headless =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
    let batch = json!({"batch": [
        {"type": "page", "userId": "bot", "properties": {"path": "/pricing"}, "context": {"userAgent": headless},
         "messageId": "b1", "timestamp": T0},
        {"type": "page", "userId": "bot", "properties": {"path": "/pricing"}, "context": {"userAgent": headless},
         "messageId": "b2", "timestamp": T0},
        {"type": "page", "userId": "human", "properties": {"path": "/pricing"}, "messageId": "h1", "timestamp": T0},
    ]});
    let (status, _) = s.ingest("/v1/batch", batch).await;
    assert_eq!(status, StatusCode::OK, "acknowledged like any other message");
    let (status, _) = s.get("/api/leads/bot").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an ignored message makes no lead");
    assert_eq!(s.lead("human").await["total"], json!(5.0));
    assert_eq!(s.app.ignored_events(), 2);
    let (_, metrics) = s.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("leadscore_ingest_events_total{result=\"ignored\"} 2"), "{metrics}");

    let (status, headers) = login(&s, "ak").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = harness::cookie_of(&headers);
    let request = Request::get("/marketing").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
    let (status, page, _) = s.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let html = page.as_str().unwrap();
    let card = &html[html.find("id=\"ignored\"").unwrap()..];
    assert!(card[..300].contains("<div class=\"kpi\">2</div>"), "{}", &card[..300]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_counts_conversions_over_the_leads_that_passed_the_step_before() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_model_settings(dir.path(), MODEL, |_| {});
    // `sql` reaches SQL (VP + demo = 100) and wins; `direct` never reaches MQL and wins; `stuck`
    // reaches SQL and stays open.
    let batch = json!({"batch": [
        {"type": "identify", "userId": "sql", "traits": {"title": "VP"}, "messageId": "s-i", "timestamp": T0},
        {"type": "track", "userId": "sql", "event": "Demo Requested", "messageId": "s-d", "timestamp": T0},
        {"type": "identify", "userId": "stuck", "traits": {"title": "VP"}, "messageId": "t-i", "timestamp": T0},
        {"type": "track", "userId": "stuck", "event": "Demo Requested", "messageId": "t-d", "timestamp": T0},
        {"type": "page", "userId": "direct", "properties": {"path": "/pricing"}, "messageId": "d-p", "timestamp": T0},
    ]});
    assert_eq!(s.ingest("/v1/batch", batch).await.0, StatusCode::OK);
    for lead in ["sql", "direct"] {
        let (status, _) = s.post(&format!("/api/leads/{lead}/outcome"), r#"{"outcome": "won"}"#).await;
        assert_eq!(status, StatusCode::OK);
    }
    let overview = s.app.marketing_overview().unwrap();
    let steps: Vec<(String, usize, Option<String>)> =
        overview.funnel.iter().map(|f| (f.stage.clone(), f.count, f.rate.map(|r| format!("{r:.2}")))).collect();
    assert_eq!(
        steps,
        [
            ("lead".to_owned(), 3, None),
            ("mql".to_owned(), 2, Some("0.67".to_owned())),
            ("sql".to_owned(), 2, Some("1.00".to_owned())),
            // Two customers, but only one of the two SQLs converted: 50%, not 100% (2 of 2).
            ("customer".to_owned(), 2, Some("0.50".to_owned())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_shows_what_is_wrong_with_its_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_model_settings(dir.path(), MODEL, |_| {});
    let batch = json!({"batch": [
        {"type": "identify", "userId": "good", "traits": {"email": "ada@acme.com", "company": "Acme", "title": "VP"},
         "messageId": "g", "timestamp": T0},
        {"type": "identify", "userId": "bad", "traits": {"email": "test@gmail.com", "company": "asdf", "title": "VP"},
         "messageId": "b", "timestamp": T0},
    ]});
    assert_eq!(s.ingest("/v1/batch", batch).await.0, StatusCode::OK);
    assert_eq!(s.lead("good").await["quality"], json!([]));
    let bad = s.lead("bad").await;
    let flags: Vec<(String, String)> = bad["quality"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_owned(), f["trait"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        flags,
        [
            ("free_email".to_owned(), "email".to_owned()),
            ("placeholder".to_owned(), "email".to_owned()),
            ("placeholder".to_owned(), "company".to_owned()),
        ]
    );
    assert_eq!(bad["total"], json!(40.0), "flags change no score");
    let (status, headers) = login(&s, "ak").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = harness::cookie_of(&headers);
    let request = Request::get("/leads/bad").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
    let (_, page, _) = s.send(request).await;
    assert!(page.as_str().unwrap().contains("is a free mail address, not a company one"), "on the lead page");
}
