//! Outcomes from the CRM: a HubSpot v3-signed webhook moves a lead to `customer`; a wrong
//! signature or an old timestamp is refused (401) and records nothing; the generic signed outcome
//! webhook records outcomes by lead id or e-mail and names what it could not match.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/contract.rs"]
mod contract;
#[path = "common/harness.rs"]
mod harness;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use harness::{MODEL, Server, T0, start_model_settings};
use leadscore_core::time::parse_timestamp;
use leadscore_service::crm::inbound::{default_hubspot_outcomes, hubspot_v3_signature};
use leadscore_service::crm::{Crm, Fields, Naming, Sync, When};
use leadscore_service::dispatcher::signature;

const SECRET: &str = "hubspot-client-secret";
const OUTCOME_SECRET: &str = "outcome-secret";

fn start(dir: &std::path::Path) -> Server {
    // Nothing listens there: the write-back fails quietly; this test is about what comes in.
    start_with_crm(dir, "http://127.0.0.1:9")
}

fn start_with_crm(dir: &std::path::Path, url: &str) -> Server {
    let sync = Sync {
        name: "hubspot".into(),
        crm: Crm::HubSpot,
        url: url.into(),
        token: "pat".into(),
        object: "contacts".into(),
        accounts: false,
        when: When::Stage,
        debounce: 3_600_000,
        rate_requests: 10,
        rate_window_ms: 10_000,
        id_trait: "hubspot_id".into(),
        email_trait: Some("email".into()),
        fields: Fields::new(Naming::Snake, "leadscore_", &BTreeMap::new()),
        first_retry: 5_000,
        retry_for: 86_400_000,
        webhook_secret: Some(SECRET.into()),
        outcomes: default_hubspot_outcomes(),
        api_version: "v60.0".into(),
    };
    start_model_settings(dir, MODEL, |s| {
        s.syncs = vec![sync];
        s.outcome_secret = Some(OUTCOME_SECRET.into());
    })
}

async fn leads(s: &Server) {
    let batch: Vec<Value> =
        [("c1", "9001", "c1@example.com"), ("c2", "9002", "c2@example.com"), ("c3", "9003", "c3@x.com")]
            .iter()
            .map(|(user, id, email)| {
                json!({"type": "identify", "userId": user, "traits": {"hubspot_id": id, "email": email, "title": "VP"},
                   "messageId": format!("{user}-i"), "timestamp": T0})
            })
            .collect();
    assert_eq!(s.ingest("/v1/batch", json!({ "batch": batch })).await.0, StatusCode::OK);
}

async fn hubspot_post(s: &Server, body: &str, timestamp: i64, sign_with: &str) -> (StatusCode, Value) {
    let url = "http://leads.example.com/hooks/hubspot/hubspot";
    let ts = timestamp.to_string();
    let request = Request::post("/hooks/hubspot/hubspot")
        .header("Host", "leads.example.com")
        .header("Content-Type", "application/json")
        .header("X-HubSpot-Request-Timestamp", &ts)
        .header("X-HubSpot-Signature-v3", hubspot_v3_signature(sign_with, "POST", url, body.as_bytes(), &ts))
        .body(Body::from(body.to_owned()))
        .unwrap();
    let (status, value, _) = s.send(request).await;
    (status, value)
}

fn deal_change(deal: i64, stage: &str, at: i64) -> Value {
    json!({"eventId": deal * 10, "subscriptionId": 2, "portalId": 62515, "appId": 7, "occurredAt": at,
           "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": deal,
           "propertyName": "dealstage", "propertyValue": stage, "changeSource": "CRM", "sourceId": "userId:1"})
}

fn change(object: i64, property: &str, value: &str, at: i64) -> Value {
    json!({"eventId": object * 10, "subscriptionId": 1, "portalId": 62515, "appId": 7, "occurredAt": at,
           "subscriptionType": "contact.propertyChange", "attemptNumber": 0, "objectId": object,
           "propertyName": property, "propertyValue": value, "changeSource": "CRM", "sourceId": "userId:1"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_hubspot_webhook_moves_a_lead_to_customer_and_a_bad_one_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    leads(&s).await;
    let now = parse_timestamp(T0).unwrap();
    s.clock.set(now + 60_000);
    let events = json!([
        change(9001, "lifecyclestage", "customer", now + 30_000),
        change(9002, "firstname", "Ann", now + 30_000),
        change(777, "lifecyclestage", "customer", now + 30_000),
        change(9003, "hs_lead_status", "unqualified", now + 30_000),
    ])
    .to_string();

    // Refused: a wrong secret, an old timestamp, no signature at all. Nothing is recorded.
    let (status, body) = hubspot_post(&s, &events, now + 60_000, "wrong-secret").await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("invalid_signature")), "{body}");
    let (status, body) = hubspot_post(&s, &events, now + 60_000 - 6 * 60_000, SECRET).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("invalid_signature")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("5 minutes"), "{body}");
    let unsigned = Request::post("/hooks/hubspot/hubspot").body(Body::from(events.clone())).unwrap();
    assert_eq!(s.send(unsigned).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.lead("c1").await["stage"], "lead");

    let (status, body) = hubspot_post(&s, &events, now + 60_000, SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"received": 4, "recorded": 2, "unknown": ["777"], "ignored": 1}));
    assert_eq!(s.lead("c1").await["stage"], "customer");
    assert_eq!(s.lead("c3").await["stage"], "disqualified");
    assert_eq!(s.lead("c2").await["stage"], "lead", "another property is no outcome");

    let (status, body) = hubspot_post(&s, "[]", now + 60_000, SECRET).await;
    assert_eq!((status, body["received"].as_i64()), (StatusCode::OK, Some(0)));
    let (status, body) = hubspot_post(&s, "{\"not\": \"a list\"}", now + 60_000, SECRET).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_body")));
    let request = Request::post("/hooks/hubspot/pipedrive").body(Body::from("[]")).unwrap();
    assert_eq!(s.send(request).await.1["code"], "sync_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_deal_is_the_outcome_of_its_contacts_found_through_hubspots_search() {
    let Some(hs) = contract::Contract::hubspot("pat", 100, 10.0) else { return };
    hs.contacts(&[("c1@example.com", Some("9001")), ("c2@example.com", Some("9002")), ("c3@x.com", Some("9003"))]);
    hs.control_post("deals", json!({"777": ["9002", "9003"], "888": []}));
    let dir = tempfile::tempdir().unwrap();
    let s = start_with_crm(dir.path(), &hs.url);
    leads(&s).await;
    let now = parse_timestamp(T0).unwrap();
    let events = json!([
        deal_change(777, "closedwon", now),
        deal_change(888, "closedlost", now),
        deal_change(999, "appointmentscheduled", now)
    ])
    .to_string();
    hs.fail(500, Some(1), None);
    let (status, body) = hubspot_post(&s, &events, now, SECRET).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("unavailable")),
        "HubSpot retries: {body}"
    );
    assert_eq!(s.lead("c2").await["stage"], "lead", "nothing recorded");
    let (status, body) = hubspot_post(&s, &events, now, SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"received": 3, "recorded": 2, "unknown": ["deal 888"], "ignored": 1}));
    assert_eq!(s.lead("c2").await["stage"], "customer");
    assert_eq!(s.lead("c3").await["stage"], "customer");
    assert_eq!(s.lead("c1").await["stage"], "lead");
    assert_eq!(hs.state()["violations"], json!([]), "the searches as HubSpot documents them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_outcome_webhook_takes_lead_ids_and_emails_signed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    leads(&s).await;
    let now = parse_timestamp(T0).unwrap();
    let post = |body: String, sign: Option<String>| {
        let mut request = Request::post("/hooks/outcomes").header("Content-Type", "application/json");
        if let Some(sign) = sign {
            request = request.header("Leadscore-Signature", sign);
        }
        s.send(request.body(Body::from(body)).unwrap())
    };
    let body = json!({"outcomes": [
        {"lead_id": "c1", "outcome": "won", "at": T0},
        {"email": "C2@Example.com", "outcome": "lost"},
        {"email": "nobody@example.com", "outcome": "won"},
        {"lead_id": "ghost", "outcome": "won"},
    ]})
    .to_string();
    let (status, answer, _) = post(body.clone(), Some(signature("wrong", now, &body))).await;
    assert_eq!((status, &answer["code"]), (StatusCode::UNAUTHORIZED, &json!("invalid_signature")));
    let (status, _, _) = post(body.clone(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.lead("c1").await["stage"], "lead", "nothing recorded");

    let (status, answer, _) = post(body.clone(), Some(signature(OUTCOME_SECRET, now, &body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["recorded"], 2);
    let mut unknown: Vec<String> = serde_json::from_value(answer["unknown"].clone()).unwrap();
    unknown.sort();
    assert_eq!(unknown, ["ghost", "nobody@example.com"]);
    assert_eq!(s.lead("c1").await["stage"], "customer");
    assert_eq!(s.lead("c2").await["stage"], "lost");

    let bad = json!({"lead_id": "c3", "outcome": "maybe"}).to_string();
    let (status, answer, _) = post(bad.clone(), Some(signature(OUTCOME_SECRET, now, &bad))).await;
    assert_eq!((status, &answer["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_body")));
    assert_eq!(answer["message"], "`outcome`: give converted, won, lost or disqualified");
    let single = json!({"lead_id": "c3", "outcome": "disqualified"}).to_string();
    let (status, answer, _) = post(single.clone(), Some(signature(OUTCOME_SECRET, now, &single))).await;
    assert_eq!((status, answer["recorded"].as_i64()), (StatusCode::OK, Some(1)));
}
