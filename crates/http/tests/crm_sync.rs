//! CRM write-back to HubSpot, against the contract server (`tests/crm/hubspot_contract.py`),
//! which validates every request against HubSpot's own OpenAPI documents, with an injected clock:
//! `leadscore sync setup`'s properties, the latest total, stage and grade of every lead written
//! once per burst of changes, no batch over 100 inputs, the burst limit kept, 429 waited out, a
//! 10-minute outage losing nothing, a refused token stopping the sync visibly, the log and
//! resending from it.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/contract.rs"]
mod contract;
#[path = "common/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use contract::Contract;
use harness::{Server, T0, start_model_settings};
use leadscore_core::time::{Millis, parse_timestamp};
use leadscore_service::Clock;
use leadscore_service::crm::{Crm, Fields, Naming, Sync, When};

const TOKEN: &str = "pat-na1-test";
const CLIENT_SECRET: &str = "hubspot-app-secret";

const MODEL: &str = r#"
[model]
name = "crm-test"

[traits]
title = "string"
email = "string"
hubspot_id = "string"

[dimensions.fit]
[dimensions.engagement]

[[rules]]
name = "Executive"
dimension = "fit"
if = 'lead.title.contains("VP")'
points = 40

[[rules]]
name = "Demo requested"
dimension = "engagement"
on = 'event.type == "track" && event.event == "Demo Requested"'
points = 60

[[rules]]
name = "Pricing page"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path.startsWith("/pricing")'
points = 5

[[rules]]
name = "Careers page"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path.startsWith("/careers")'
points = -10

[[stages]]
name = "mql"
when = "total >= 50"

[[stages]]
name = "sql"
when = "total >= 80"

[grade]
fit = { A = 40, B = 10 }
engagement = { 1 = 60, 2 = 5 }
"#;

fn sync(url: &str, rate: usize, window_ms: Millis, debounce: Millis) -> Sync {
    Sync {
        name: "hubspot".into(),
        crm: Crm::HubSpot,
        url: url.to_owned(),
        token: TOKEN.into(),
        object: "contacts".into(),
        accounts: false,
        when: When::Change,
        debounce,
        rate_requests: rate,
        rate_window_ms: window_ms,
        id_trait: "hubspot_id".into(),
        email_trait: Some("email".into()),
        fields: Fields::new(Naming::Snake, "leadscore_", &BTreeMap::new()),
        first_retry: 5_000,
        retry_for: 24 * 3_600_000,
        webhook_secret: Some(CLIENT_SECRET.into()),
        outcomes: leadscore_service::crm::inbound::default_hubspot_outcomes(),
        api_version: "v60.0".into(),
    }
}

fn start(dir: &std::path::Path, sync: Sync) -> Server {
    start_model_settings(dir, MODEL, |s| s.syncs = vec![sync])
}

/// Creates the properties as `leadscore sync setup` does (through HubSpot's properties API).
fn setup(hs: &Contract, sync: &Sync) {
    let steps = leadscore_service::crm::hubspot::setup(sync, &["fit".into(), "engagement".into()]).unwrap();
    assert!(steps.iter().all(|s| s.created), "{steps:?}");
    assert_eq!(steps.len(), 9, "the group and 8 properties: {steps:?}");
    // Each run keeps the burst limit on its own; two runs back to back would not.
    std::thread::sleep(Duration::from_millis(u64::try_from(sync.rate_window_ms).unwrap()));
    let again = leadscore_service::crm::hubspot::setup(sync, &["fit".into(), "engagement".into()]).unwrap();
    assert!(again.iter().all(|s| !s.created), "a second run creates nothing: {again:?}");
    let props = &hs.state()["properties"]["contacts"];
    assert_eq!(props["leadscore_total"]["type"], "number");
    assert_eq!(props["leadscore_updated_at"]["type"], "datetime");
    assert_eq!(props["leadscore_reasons"]["fieldType"], "textarea");
    // Setup's requests count toward the burst limit the sync then keeps.
    std::thread::sleep(Duration::from_millis(u64::try_from(sync.rate_window_ms).unwrap()));
}

fn identify(user: &str, traits: Value, id: &str, at: &str) -> Value {
    json!({"type": "identify", "userId": user, "traits": traits, "messageId": id, "timestamp": at})
}

fn track(user: &str, event: &str, id: &str, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "messageId": id, "timestamp": at})
}

fn page(user: &str, path: &str, id: &str, at: &str) -> Value {
    json!({"type": "page", "userId": user, "properties": {"path": path}, "messageId": id, "timestamp": at})
}

async fn send(s: &Server, batch: Vec<Value>) {
    for chunk in batch.chunks(400) {
        let (status, body) = s.ingest("/v1/batch", json!({ "batch": chunk })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Waits until `done` holds for the contract server's state. After 5 s the server's (manual)
/// clock starts moving, 30 s per poll: a request that failed for a passing reason on a loaded
/// machine (a reset connection) is retried after its backoff, as it would be in real time,
/// instead of waiting for a clock that never moves.
async fn wait_for(s: &Server, hs: &Contract, what: &str, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    loop {
        let state = hs.state();
        if done(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: violations {}", state["violations"]);
        if started.elapsed() > Duration::from_secs(5) {
            s.clock.set(s.clock.now() + 30_000);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sync_view(s: &Server) -> Value {
    let (status, body) = s.get("/api/syncs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["syncs"][0].clone()
}

/// Whether contact `id` holds exactly what the API says of `lead`.
async fn holds_latest(s: &Server, state: &Value, contact: &str, lead: &str) -> Result<(), String> {
    let got = &state["contacts"][contact]["properties"];
    let view = s.lead(lead).await;
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 { format!("{f:.0}") } else { format!("{f}") }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (field, value) in [
        ("leadscore_total", &view["total"]),
        ("leadscore_stage", &view["stage"]),
        ("leadscore_grade", &view["grade"]),
        ("leadscore_fit", &view["scores"]["fit"]),
        ("leadscore_engagement", &view["scores"]["engagement"]),
    ] {
        if got[field].as_str() != Some(text(value).as_str()) {
            return Err(format!("{lead} / contact {contact}: {field} is {} but the lead's is {value}", got[field]));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_scores_land_on_hubspot_contacts_within_the_limits() {
    // 5 requests per 2 s: the 6 batches of 520 leads need the limiter.
    let Some(hs) = Contract::hubspot(TOKEN, 5, 2.0) else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = sync(&hs.url, 5, 2_000, 60_000);
    setup(&hs, &config);
    let s = start(dir.path(), config);
    let t0 = parse_timestamp(T0).unwrap();

    // 500 leads matched by e-mail, 20 by a stored HubSpot id; one lead without either; one whose
    // e-mail HubSpot does not have.
    let mut contacts = Vec::new();
    let mut leads = Vec::new();
    let emails: Vec<String> = (0..500).map(|i| format!("p{i}@example.com")).collect();
    let by_email: Vec<(&str, Option<&str>)> = emails.iter().map(|e| (e.as_str(), None)).collect();
    for (i, id) in hs.contacts(&by_email).into_iter().enumerate() {
        contacts.push(id);
        leads.push((
            format!("u{i}"),
            json!({"email": emails[i], "title": if i % 3 == 0 { "VP Sales" } else { "Analyst" }}),
        ));
    }
    let ids: Vec<String> = (0..20).map(|i| format!("90{i:02}")).collect();
    let by_id: Vec<(&str, Option<&str>)> = ids.iter().map(|id| ("", Some(id.as_str()))).collect();
    for (i, id) in hs.contacts(&by_id).into_iter().enumerate() {
        contacts.push(id.clone());
        leads.push((format!("h{i}"), json!({"hubspot_id": id, "title": "VP Marketing"})));
    }
    let mut batch: Vec<Value> =
        leads.iter().map(|(lead, traits)| identify(lead, traits.clone(), &format!("{lead}-i"), T0)).collect();
    batch.push(identify("nobody", json!({"title": "VP"}), "nobody-i", T0));
    batch.push(identify("stranger", json!({"email": "stranger@example.com", "title": "VP"}), "stranger-i", T0));
    // Three changes of each lead within the debounce: written once.
    for (i, (lead, _)) in leads.iter().enumerate() {
        batch.push(page(lead, "/pricing", &format!("{lead}-p"), "2026-01-09T23:00:00Z"));
        if i % 2 == 0 {
            batch.push(track(lead, "Demo Requested", &format!("{lead}-d"), "2026-01-09T23:30:00Z"));
        }
        if i % 5 == 0 {
            batch.push(page(lead, "/careers", &format!("{lead}-c"), "2026-01-09T23:40:00Z"));
        }
    }
    send(&s, batch.clone()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        hs.state()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap().contains("batch"))
            .count(),
        0,
        "nothing before the debounce"
    );
    assert_eq!(sync_view(&s).await["pending"], 522);

    s.clock.set(t0 + 60_000);
    let started = Instant::now();
    let state = wait_for(&s, &hs, "every matched lead written", 60, |st| {
        contacts.iter().all(|c| st["contacts"][c.as_str()]["properties"].get("leadscore_total").is_some())
    })
    .await;
    let took = started.elapsed();
    for (contact, (lead, _)) in contacts.iter().zip(&leads) {
        holds_latest(&s, &state, contact, lead).await.unwrap();
        assert_eq!(state["contacts"][contact.as_str()]["writes"], 1, "one write per lead for the burst");
    }
    let writes: Vec<&Value> = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/crm/v3/objects/contacts/batch/update")
        .collect();
    assert_eq!(writes.len(), 6, "521 inputs in batches of at most 100");
    assert!(state["max_inputs"].as_i64().unwrap() <= 100);
    assert!(state["max_in_window"].as_i64().unwrap() <= 5, "{}", state["requests"]);
    assert!(state["requests"].as_array().unwrap().iter().all(|r| r["status"] != 429), "{}", state["requests"]);
    assert!(took >= Duration::from_millis(1_500), "the limiter spaced 6 requests at 5 per 2 s: {took:?}");
    assert_eq!(state["violations"], json!([]), "every request as HubSpot documents it");
    let reasons = state["contacts"][contacts[0].as_str()]["properties"]["leadscore_reasons"].as_str().unwrap();
    assert_eq!(reasons, "Demo requested +60; Executive +40; Careers page -10");
    assert_eq!(
        state["contacts"][contacts[0].as_str()]["properties"]["leadscore_updated_at"],
        json!(leadscore_core::time::format_timestamp(t0))
    );

    // The log: the unmatched lead is dead with the reason; the unknown e-mail failed with
    // HubSpot's message and waits for its retry.
    let (status, log) = s.get("/api/syncs/hubspot/records?status=dead").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log["records"][0]["lead_id"], "nobody");
    assert_eq!(
        log["records"][0]["last_error"],
        "no `hubspot_id` or `email` trait: the lead cannot be matched to a hubspot record"
    );
    let (_, log) = s.get("/api/syncs/hubspot/records?status=pending").await;
    let stranger = &log["records"][0];
    assert_eq!(stranger["lead_id"], "stranger");
    assert!(stranger["attempts"].as_i64() >= Some(1), "{stranger}");
    assert!(stranger["last_error"].as_str().unwrap().starts_with("HTTP 207: Could not get some CONTACT objects"));
    let view = sync_view(&s).await;
    assert_eq!(
        (view["delivered"].as_i64(), view["pending"].as_i64(), view["dead"].as_i64()),
        (Some(520), Some(1), Some(1))
    );
    assert_eq!(view["running"], true);

    // A later change of one lead: written again with its new values, alone.
    send(&s, vec![track("u1", "Demo Requested", "u1-d2", "2026-01-10T00:00:30Z")]).await;
    s.clock.set(t0 + 120_000);
    let state =
        wait_for(&s, &hs, "u1's second write", 20, |st| st["contacts"][contacts[1].as_str()]["writes"] == 2).await;
    holds_latest(&s, &state, &contacts[1], "u1").await.unwrap();
    assert_eq!(state["contacts"][contacts[1].as_str()]["properties"]["leadscore_stage"], "mql", "5 + 60 points");

    // Resending from the log writes a lead now.
    let (status, row) = s.post("/api/syncs/hubspot/records/u2/resend", "").await;
    assert_eq!((status, &row["status"]), (StatusCode::OK, &json!("pending")), "{row}");
    wait_for(&s, &hs, "u2 resent", 20, |st| st["contacts"][contacts[2].as_str()]["writes"] == 2).await;
    let (status, body) = s.post("/api/syncs/salesforce/records/u2/resend", "").await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("sync_not_found")));
    let (status, body) = s.post("/api/syncs/hubspot/records/ghost/resend", "").await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("lead_not_found")));
    assert_eq!(hs.state()["violations"], json!([]));

    // The loop guard: the fields Leadscore writes, coming back (a re-import of a HubSpot export,
    // HubSpot's own tracking), are not traits.
    let back = json!({"email": "p3@example.com", "leadscore_total": "999", "leadscore_stage": "sql", "title": "CTO"});
    send(&s, vec![identify("u3", back, "u3-back", "2026-01-10T00:01:00Z")]).await;
    let traits = &s.lead("u3").await["traits"];
    assert_eq!(traits["title"], "CTO");
    assert!(traits.get("leadscore_total").is_none() && traits.get("leadscore_stage").is_none(), "{traits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_429_is_waited_out_and_a_refused_token_stops_the_sync() {
    let Some(hs) = Contract::hubspot(TOKEN, 50, 10.0) else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = sync(&hs.url, 50, 10_000, 0);
    setup(&hs, &config);
    let s = start(dir.path(), config);
    let t0 = parse_timestamp(T0).unwrap();
    let emails: Vec<String> = (0..150).map(|i| format!("o{i}@example.com")).collect();
    let contacts = hs.contacts(&emails.iter().map(|e| (e.as_str(), None)).collect::<Vec<_>>());
    let lead = |i: usize| format!("o{i}");

    // HubSpot is down for 10 minutes (simulated) while leads keep changing.
    hs.fail(503, None, None);
    send(&s, (0..150).map(|i| identify(&lead(i), json!({"email": emails[i]}), &format!("o{i}-i"), T0)).collect()).await;
    let mut minute = 0;
    while minute < 10 {
        minute += 1;
        let at = leadscore_core::time::format_timestamp(t0 + minute * 60_000 - 1_000);
        let changes: Vec<Value> = (0..150)
            .filter(|i| i % 10 == minute as usize % 10)
            .map(|i| page(&lead(i), "/pricing", &format!("o{i}-p{minute}"), &at))
            .collect();
        s.clock.set(t0 + minute * 60_000);
        send(&s, changes).await;
        // Every lead's write failed at least once by now (each retry is due within the minute
        // until the backoff passes it).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, log) = s.get("/api/syncs/hubspot/records?status=pending&limit=1000").await;
            let records = log["records"].as_array().unwrap();
            if records.len() == 150 && records.iter().all(|r| r["attempts"].as_i64() >= Some(1)) {
                assert!(records.iter().all(|r| r["last_error"].as_str().unwrap().starts_with("HTTP 503")));
                break;
            }
            assert!(Instant::now() < deadline, "minute {minute}: {log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(sync_view(&s).await["pending"], 150, "nothing lost, nothing given up");

    // Up again, but first it answers 429 with Retry-After: 2.
    hs.fail(429, Some(1), Some(2));
    s.clock.set(t0 + 10 * 60_000 + 3_600_000);
    let started = Instant::now();
    let state = wait_for(&s, &hs, "every lead written after the outage", 60, |st| {
        contacts.iter().all(|c| st["contacts"][c.as_str()]["properties"].get("leadscore_total").is_some())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After was kept");
    for (i, contact) in contacts.iter().enumerate() {
        holds_latest(&s, &state, contact, &lead(i)).await.unwrap();
    }
    assert_eq!(state["violations"], json!([]));
    let view = sync_view(&s).await;
    assert_eq!(view["delivered"], 150);
    assert!(view["last_error"].as_str().unwrap().starts_with("HTTP 503"), "{view}");

    // The token is revoked: the sync stops, says why, and keeps the change.
    hs.fail(401, None, None);
    send(&s, vec![track("o1", "Demo Requested", "o1-d", "2026-01-10T01:05:00Z")]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        let view = sync_view(&s).await;
        if view["running"] == false {
            break view;
        }
        assert!(Instant::now() < deadline, "the sync did not stop: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(view["stopped"].as_str().unwrap().contains("HTTP 401"), "{view}");
    assert_eq!(view["pending"], 1, "the change waits for a working token");
    let (_, metrics) = s.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("leadscore_crm_sync_up{sync=\"hubspot\"} 0"), "{metrics}");
    assert!(metrics.contains("leadscore_crm_pending_leads{sync=\"hubspot\"} 1"), "{metrics}");
    let unauthorized = hs.state()["requests"].as_array().unwrap().iter().filter(|r| r["status"] == 401).count();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let later = hs.state()["requests"].as_array().unwrap().iter().filter(|r| r["status"] == 401).count();
    assert_eq!(unauthorized, later, "no silent loop against a refused token");
    assert_eq!(unauthorized, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_leads_and_contacts_get_their_latest_scores_record_by_record() {
    let Some(sf) = Contract::salesforce(TOKEN) else { return };
    let mut fields = serde_json::Map::new();
    for (name, kind) in [
        ("Leadscore_Total__c", "number"),
        ("Leadscore_Fit__c", "number"),
        ("Leadscore_Engagement__c", "number"),
        ("Leadscore_Probability__c", "number"),
        ("Leadscore_Stage__c", "string"),
        ("Leadscore_Grade__c", "string"),
        ("Leadscore_Reasons__c", "string"),
        ("Leadscore_Updated_At__c", "datetime"),
    ] {
        fields.insert(name.into(), json!(kind));
    }
    sf.fields(json!({"Lead": fields.clone(), "Contact": fields}));
    let ids: Vec<String> =
        (0..250).map(|i| if i % 5 == 0 { format!("003{i:012}") } else { format!("00Q{i:012}") }).collect();
    sf.records(
        &ids.iter().map(|id| (id.clone(), if id.starts_with("003") { "Contact" } else { "Lead" })).collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = Sync {
        name: "salesforce".into(),
        crm: Crm::Salesforce,
        object: "Lead".into(),
        id_trait: "salesforce_id".into(),
        email_trait: None,
        fields: Fields::new(Naming::Salesforce, "Leadscore_", &BTreeMap::new()),
        rate_requests: 100,
        ..sync(&sf.url, 100, 10_000, 0)
    };
    let s = start(dir.path(), config);

    let mut batch: Vec<Value> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let lead = format!("s{i}");
        let title = if i % 2 == 0 { "VP Sales" } else { "Engineer" };
        batch.push(identify(&lead, json!({"salesforce_id": id, "title": title}), &format!("{lead}-i"), T0));
        batch.push(track(&lead, "Demo Requested", &format!("{lead}-d"), T0));
    }
    batch.push(identify("gone", json!({"salesforce_id": "00Q999999999999"}), "gone-i", T0));
    batch.push(identify("bad", json!({"salesforce_id": "00Qshort"}), "bad-i", T0));
    send(&s, batch).await;
    let state = wait_for(&s, &sf, "every record written", 60, |st| {
        ids.iter().all(|id| st["records"][id.as_str()]["fields"].get("Leadscore_Total__c").is_some())
    })
    .await;
    for (i, id) in ids.iter().enumerate() {
        let got = &state["records"][id.as_str()]["fields"];
        let view = s.lead(&format!("s{i}")).await;
        assert_eq!(got["Leadscore_Total__c"].as_f64(), view["total"].as_f64(), "{id}");
        assert_eq!(got["Leadscore_Fit__c"].as_f64(), view["scores"]["fit"].as_f64(), "{id}");
        assert_eq!(got["Leadscore_Stage__c"], view["stage"], "{id}");
        assert_eq!(got["Leadscore_Grade__c"], view["grade"], "{id}");
        assert_eq!(got["Leadscore_Probability__c"], Value::Null, "no calibration: cleared");
        assert_eq!(state["records"][id.as_str()]["writes"], 1);
    }
    assert_eq!(state["violations"], json!([]), "every request as Salesforce documents it");
    assert_eq!(state["max_records"], 200);
    let writes = state["requests"].as_array().unwrap().iter().filter(|r| r["method"] == "PATCH").count();
    assert_eq!(writes, 2, "252 records in collections of at most 200");

    // Per-record errors: each lead keeps its own error in the log and waits for its retry.
    let deadline = Instant::now() + Duration::from_secs(20);
    let errors = loop {
        let (_, log) = s.get("/api/syncs/salesforce/records?status=pending").await;
        let errors: BTreeMap<String, String> = log["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| Some((r["lead_id"].as_str()?.to_owned(), r["last_error"].as_str()?.to_owned())))
            .collect();
        if errors.len() == 2 || Instant::now() > deadline {
            break errors;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(errors["gone"], "HTTP 200: ENTITY_IS_DELETED: entity is deleted");
    assert_eq!(errors["bad"], "HTTP 200: MALFORMED_ID: malformed id 00Qshort");
    assert_eq!(sync_view(&s).await["delivered"], 250);

    // An expired session stops the sync, visibly, and keeps the change.
    sf.fail(401, None, None);
    send(&s, vec![page("s1", "/pricing", "s1-p", T0)]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sync_view(&s).await["running"] != false {
        assert!(Instant::now() < deadline, "the sync did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view = sync_view(&s).await;
    assert!(view["stopped"].as_str().unwrap().contains("INVALID_SESSION_ID: Session expired or invalid"), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_roll_up_into_hubspot_companies() {
    let Some(hs) = Contract::hubspot(TOKEN, 50, 10.0) else { return };
    let companies = Sync {
        name: "companies".into(),
        object: "companies".into(),
        accounts: true,
        id_trait: "hubspot_company_id".into(),
        email_trait: None,
        ..sync(&hs.url, 50, 10_000, 0)
    };
    let steps = leadscore_service::crm::hubspot::setup(&companies, &["fit".into(), "engagement".into()]).unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(
        names,
        [
            "property group `leadscore` of companies",
            "property `leadscore_total` (number)",
            "property `leadscore_fit` (number)",
            "property `leadscore_engagement` (number)",
            "property `leadscore_stage` (string)",
            "property `leadscore_updated_at` (datetime)",
        ]
    );
    hs.control_post("companies", json!([{"id": "5001", "domain": "acme.example"}, {"id": "5002"}]));
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), companies);

    let member = |user: &str, account: &str, traits: Value, title: &str| {
        vec![
            identify(user, json!({"title": title}), &format!("{user}-i"), T0),
            json!({"type": "group", "userId": user, "groupId": account, "traits": traits,
                   "messageId": format!("{user}-g"), "timestamp": T0}),
        ]
    };
    let mut batch = Vec::new();
    batch.extend(member("a1", "acme", json!({"name": "Acme", "hubspot_company_id": "5001"}), "VP Sales"));
    batch.extend(member("a2", "acme", json!({"name": "Acme", "hubspot_company_id": "5001"}), "Engineer"));
    batch.push(track("a2", "Demo Requested", "a2-d", T0));
    batch.extend(member("g1", "globex", json!({"name": "Globex", "hubspot_company_id": 5002}), "Analyst"));
    batch.extend(member("i1", "initech", json!({"name": "Initech"}), "VP Ops"));
    send(&s, batch).await;
    let state = wait_for(&s, &hs, "both companies written", 20, |st| {
        ["5001", "5002"].iter().all(|c| st["companies"][*c]["properties"].get("leadscore_total").is_some())
    })
    .await;
    for (company, account) in [("5001", "acme"), ("5002", "globex")] {
        let (status, view) = s.get(&format!("/api/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK);
        let got = &state["companies"][company]["properties"];
        assert_eq!(got["leadscore_total"].as_str().unwrap().parse::<f64>().unwrap(), view["total"].as_f64().unwrap());
        assert_eq!(got["leadscore_stage"], view["stage"], "{account}");
        assert!(got.get("leadscore_grade").is_none(), "accounts have no grade");
    }
    assert_eq!(state["violations"], json!([]));

    // A member's change moves its account's company.
    let before = state["companies"]["5002"]["properties"]["leadscore_total"].clone();
    send(&s, vec![track("g1", "Demo Requested", "g1-d", T0)]).await;
    let state = wait_for(&s, &hs, "globex written again", 20, |st| st["companies"]["5002"]["writes"] == 2).await;
    assert_ne!(state["companies"]["5002"]["properties"]["leadscore_total"], before);
    let (_, view) = s.get("/api/accounts/globex").await;
    assert_eq!(state["companies"]["5002"]["properties"]["leadscore_stage"], view["stage"]);

    let (_, log) = s.get("/api/syncs/companies/records?status=dead").await;
    assert_eq!(log["records"][0]["lead_id"], "initech");
    assert_eq!(
        log["records"][0]["last_error"],
        "no `hubspot_company_id` trait: the account cannot be matched to a hubspot record"
    );
}
