//! The server on the open internet, driven through its router: messages with absurd times are
//! refused before anything is queued, a stored message the engine cannot read breaks nothing,
//! keys have roles, the dashboard has CSRF tokens, origin checks and security headers with
//! sessions in the database, RudderStack's browser SDK finds its endpoints, every error is JSON,
//! and a deleted lead leaves no byte in the SQLite file.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;
#[path = "../../store/tests/common/pg.rs"]
mod pg;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use harness::{MODEL, Server, T0, basic, cookie_of, csrf_of, form_post, login, page, start, start_with};
use leadscore_core::time::{MS_PER_DAY, format_timestamp, parse_timestamp};
use leadscore_service::ingest::NewEvent;

fn track(user: &str, event: &str, id: &str, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "messageId": id, "timestamp": at})
}

async fn call(s: &Server, method: &str, path: &str, key: Option<&str>, body: &str) -> (StatusCode, Value, HeaderMap) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    s.send(request.body(Body::from(body.to_owned())).unwrap()).await
}

fn at(offset_ms: i64) -> String {
    format_timestamp(parse_timestamp(T0).unwrap() + offset_ms)
}

// ---- poisoned times -----------------------------------------------------------------------------------------

/// The reported attack (a skew correction that lands past year 9999) and its relatives, sent
/// while 900 innocent requests are in flight: every poisoned one is a 400 naming the field,
/// every innocent one a 200, and every innocent lead is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_times_are_refused_while_900_innocent_requests_succeed() {
    let s = start();
    let poisons = [
        (
            "/v1/page",
            json!({"anonymousId": "a7", "originalTimestamp": "9999-12-30T00:00:00Z", "sentAt": "1970-01-01T00:00:00Z"}),
        ),
        ("/v1/page", json!({"anonymousId": "a8", "timestamp": "9999-12-30T00:00:00Z"})),
        ("/v1/track", json!({"userId": "u8", "event": "x", "timestamp": "1969-07-20T20:17:00Z"})),
        (
            "/v1/batch",
            json!({"batch": [{"type": "page", "anonymousId": "a9", "originalTimestamp": at(0)}], "sentAt": "1970-01-01T00:00:00Z"}),
        ),
        ("/v1/identify", json!({"userId": "u9", "traits": {}, "originalTimestamp": at(0), "sentAt": "yesterday"})),
    ];
    let mut tasks = Vec::new();
    for i in 0..900_usize {
        let router = s.router.clone();
        let body = if i % 3 == 0 {
            json!({"batch": [track(&format!("innocent-{i}"), "Demo Requested", &format!("m{i}"), &at(i as i64))]})
        } else {
            json!({"batch": [{"type": "page", "userId": format!("innocent-{i}"), "properties": {"path": "/pricing"},
                "messageId": format!("m{i}"), "originalTimestamp": at(i as i64), "sentAt": at(i as i64)}]})
        };
        tasks.push(tokio::spawn(send_ingest(router.clone(), "/v1/batch".to_owned(), body)));
        if i % 30 == 0 {
            let (path, poison) = &poisons[(i / 30) % poisons.len()];
            tasks.push(tokio::spawn(send_ingest(router, (*path).to_owned(), poison.clone())));
        }
    }
    let mut innocent_ok = 0;
    let mut poisoned = 0;
    for task in tasks {
        let (path, body, status, answer) = task.await.unwrap();
        let poison = body.to_string().contains("1970-01-01")
            || body.to_string().contains("9999-12-30")
            || body.to_string().contains("1969-07-20")
            || body.to_string().contains("yesterday");
        if poison {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
            assert_eq!(answer["code"], "invalid_timestamp", "{answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(
                ["timestamp", "originalTimestamp", "sentAt"].iter().any(|f| message.contains(&format!(".{f}: "))),
                "the message names the field: {message}"
            );
            poisoned += 1;
        } else {
            assert_eq!(status, StatusCode::OK, "{path} {body}: {answer}");
            innocent_ok += 1;
        }
    }
    assert_eq!((innocent_ok, poisoned), (900, 30));
    let leads = s.store(|store| store.read(|tx| tx.count_leads())).await.unwrap();
    assert_eq!(leads, 900);
    assert_eq!(s.get("/api/leads/innocent-3").await.0, StatusCode::OK);
}

async fn send_ingest(router: axum::Router, path: String, body: Value) -> (String, Value, StatusCode, Value) {
    let request = Request::post(path.as_str())
        .header(header::AUTHORIZATION, basic("wk"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (path, body, status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A request the database refuses (here an index entry over PostgreSQL's 2.7 KB limit, handed to
/// the writer as if decoding had let it through) fails alone: the requests committed in the same
/// group still succeed.
#[test]
fn one_failing_request_in_a_group_commit_fails_only_itself() {
    let Some(cluster) = pg::PgCluster::start() else { return };
    let db = cluster.database();
    let s = start_with(Some(db.clone()), MODEL);
    let now = parse_timestamp(T0).unwrap();
    let decode = |body: Value| {
        let bytes = body.to_string();
        leadscore_http::segment::decode(None, &HeaderMap::new(), bytes.as_bytes(), &s.app.keys, now, MS_PER_DAY, None)
            .unwrap()
            .messages
    };
    let mut bad = decode(json!({"batch": [track("bad", "Demo Requested", "bad-1", T0)], "writeKey": "wk"}));
    // Incompressible (PostgreSQL compresses index entries first): hex digests, 6,400 bytes.
    let noise: String = (0..100_u32)
        .map(|i| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(i.to_be_bytes()))
        })
        .collect();
    bad[0].new.lead_id = Some(noise);
    // Hold the writer inside a transaction (a lead lock held elsewhere) so the requests below queue
    // up and are committed as one group.
    let blocker = std::thread::spawn(move || {
        let sql = "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('blocker', 0)); SELECT pg_sleep(1.5); COMMIT;";
        std::process::Command::new("psql").args(["-X", "-q", &db, "-c", sql]).output().unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let results = runtime.block_on(async {
        let first = {
            let app = Arc::clone(&s.app);
            let messages = decode(json!({"batch": [track("blocker", "Demo Requested", "blk", T0)], "writeKey": "wk"}));
            tokio::spawn(async move { app.ingest(messages).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut tasks = vec![first];
        for i in 0..20 {
            let app = Arc::clone(&s.app);
            let messages =
                decode(json!({"batch": [track(&format!("ok-{i}"), "Demo Requested", &format!("ok-{i}"), T0)], "writeKey": "wk"}));
            tasks.push(tokio::spawn(async move { app.ingest(messages).await }));
        }
        let app = Arc::clone(&s.app);
        tasks.push(tokio::spawn(async move { app.ingest(bad).await }));
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    assert!(blocker.join().unwrap().status.success());
    let (bad, innocent) = results.split_last().unwrap();
    assert!(bad.is_err(), "the refused request fails");
    for (i, r) in innocent.iter().enumerate() {
        assert!(r.is_ok(), "request {i}: {r:?}");
    }
    let leads = s.app.store().read(|tx| tx.count_leads()).unwrap();
    assert_eq!(leads, 21);
    s.app.shutdown();
}

// ---- unreadable stored messages ---------------------------------------------------------------------------

fn raw(message_id: &str, lead: Option<&str>, anonymous: Option<&str>, kind: &str, body: String) -> NewEvent {
    NewEvent {
        write_key: "wk".into(),
        message_id: message_id.into(),
        lead_id: lead.map(Into::into),
        anonymous_id: anonymous.map(Into::into),
        group_id: None,
        event_type: leadscore_core::event::MessageKind::parse(kind).unwrap(),
        at: parse_timestamp(T0).unwrap(),
        received_at: parse_timestamp(T0).unwrap(),
        body,
    }
}

/// Messages written straight into the store (by an older version, or damaged) that the engine
/// cannot read: an anonymous visit later linked, an event of a known lead, a message that is not
/// even JSON. They are left out, listed, counted; the lead, the identify linking them, the
/// scheduler, an activation and a backtest all work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stored_message_breaks_nothing() {
    let s = start();
    // `victim` decays out of SQL at a known time; `bystander` too, a little later.
    let batch = json!({"batch": [
        {"type": "identify", "userId": "victim", "traits": {"title": "VP"}, "messageId": "v0", "timestamp": T0},
        track("victim", "Demo Requested", "v1", T0),
        {"type": "identify", "userId": "bystander", "traits": {"title": "VP"}, "messageId": "b0", "timestamp": T0},
        track("bystander", "Demo Requested", "b1", &at(1000)),
    ]});
    assert_eq!(s.ingest("/v1/batch", batch).await.0, StatusCode::OK);
    let unreadable_time = r#"{"type":"page","anonymousId":"a7","timestamp":"253402214400000","messageId":"p1"}"#;
    let poisoned = vec![
        raw("p1", None, Some("a7"), "page", unreadable_time.to_owned()),
        raw(
            "p2",
            Some("victim"),
            None,
            "track",
            unreadable_time.replace("p1", "p2").replace("a7\"", "a7\",\"userId\":\"victim\""),
        ),
        raw("p3", Some("victim"), None, "track", "not json at all".to_owned()),
    ];
    s.store(move |store| store.write(|tx| tx.insert_events(&poisoned).map(|_| ()))).await.unwrap();

    // The lead answers, without the unreadable messages.
    let lead = s.lead("victim").await;
    assert_eq!(lead["stage"], "sql", "{lead}");
    // The identify that links the poisoned anonymous visit succeeds (SDKs would drop its batch).
    let link = json!({"batch": [{"type": "identify", "userId": "victim", "anonymousId": "a7", "traits": {}, "messageId": "v2", "timestamp": at(2000)}]});
    assert_eq!(s.ingest("/v1/batch", link).await.0, StatusCode::OK);
    assert_eq!(s.lead("victim").await["stage"], "sql");

    // The scheduler goes on for every lead: both leave SQL when their points decay.
    let later = parse_timestamp(T0).unwrap() + 30 * MS_PER_DAY;
    s.clock.set(later);
    let app = Arc::clone(&s.app);
    let rescored = tokio::task::spawn_blocking(move || app.run_due(later)).await.unwrap().unwrap();
    assert!(rescored >= 2, "{rescored}");
    let (_, list) = s.get("/api/leads?sort=total").await;
    for lead in list["leads"].as_array().unwrap() {
        assert_ne!(lead["stage"], "sql", "{lead}");
    }

    // Activation finishes (with ?wait=true it answers), and a backtest runs.
    let (status, uploaded) = s.post("/api/models", &MODEL.replace("api-test", "api-test-2")).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let version = uploaded["version"].as_i64().unwrap();
    let path = format!("/api/models/{version}/activate?wait=true");
    let activate = s.post(&path, "");
    let (status, activated) = tokio::time::timeout(std::time::Duration::from_secs(30), activate).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{activated}");
    assert_eq!(activated["rescore"]["finished"], true);
    assert!(activated["rescore"].get("error").is_none(), "{activated}");
    let (status, report) = s.post("/api/backtest", "").await;
    assert_eq!(status, StatusCode::OK, "{report}");

    // Listed for the admin, counted in /metrics.
    let (status, listed) = s.get("/api/events/unreadable").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> =
        listed["events"].as_array().unwrap().iter().map(|e| e["message_id"].as_str().unwrap()).collect();
    for id in ["p1", "p2", "p3"] {
        assert!(ids.contains(&id), "{id} in {listed}");
    }
    let (_, metrics) = s.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("leadscore_unreadable_events_total"), "counted");
    let (status, _, _) = call(&s, "GET", "/api/events/unreadable", Some("rk"), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin list");

    // Deleting the lead takes them away.
    let (status, _, _) = call(&s, "DELETE", "/api/leads/victim", Some("ak"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = s.get("/api/events/unreadable").await;
    assert_eq!(listed["events"], json!([]), "{listed}");
}

// ---- keys and roles ------------------------------------------------------------------------------------------

/// `read` keys (sales) read leads and record outcomes; admin endpoints answer 403 to them; write
/// keys only send events; the keys given as before (`api_keys`) keep full rights.
#[tokio::test]
async fn read_keys_read_and_admin_keys_administer() {
    let s = start();
    assert_eq!(
        s.ingest("/v1/batch", json!({"batch": [track("r1", "Demo Requested", "r", T0)]})).await.0,
        StatusCode::OK
    );
    let reads = [
        ("GET", "/api/leads", ""),
        ("GET", "/api/leads/r1", ""),
        ("GET", "/api/models", ""),
        ("GET", "/api/models/1", ""),
        ("POST", "/api/leads/r1/outcome", r#"{"outcome": "won"}"#),
    ];
    for (method, path, body) in reads {
        let (status, answer, _) = call(&s, method, path, Some("rk"), body).await;
        assert_eq!(status, StatusCode::OK, "read key: {method} {path}: {answer}");
        let (status, answer, _) = call(&s, method, path, Some("wk"), body).await;
        assert_eq!((status, answer["code"].as_str()), (StatusCode::FORBIDDEN, Some("write_key_not_allowed")));
    }
    let admin = [
        ("POST", "/api/models", MODEL),
        ("POST", "/api/models/1/activate", ""),
        ("POST", "/api/backtest", ""),
        ("GET", "/api/webhooks/deliveries", ""),
        ("GET", "/api/events/unreadable", ""),
        ("DELETE", "/api/leads/r1", ""),
    ];
    for (method, path, body) in admin {
        let (status, answer, _) = call(&s, method, path, Some("rk"), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "read key: {method} {path}: {answer}");
        assert_eq!(answer["code"], "insufficient_role");
    }
    for (method, path, body) in admin {
        let (status, answer, _) = call(&s, method, path, Some("ak"), body).await;
        assert!(status.is_success(), "admin key: {method} {path}: {status} {answer}");
    }
    let (status, answer, _) = call(&s, "GET", "/api/leads", Some("nope"), "").await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_api_key")));
    // A read or admin key is no write key.
    let request = Request::post("/v1/track")
        .header(header::AUTHORIZATION, basic("rk"))
        .body(Body::from(track("x", "e", "x", T0).to_string()))
        .unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::UNAUTHORIZED);
}

// ---- JSON errors ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_is_json_with_a_stable_code() {
    let s = start();
    let cases = [
        ("GET", "/v1/batch", None, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("GET", "/no/such/page", None, StatusCode::NOT_FOUND, "not_found"),
        ("PUT", "/api/leads", Some("ak"), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("GET", "/api/leads?limit=0", Some("ak"), StatusCode::BAD_REQUEST, "invalid_parameter"),
        ("GET", "/api/leads?limit=lots", Some("ak"), StatusCode::BAD_REQUEST, "invalid_parameter"),
        ("GET", "/api/webhooks/deliveries?limit=-1", Some("ak"), StatusCode::BAD_REQUEST, "invalid_parameter"),
        ("POST", "/api/models/1/activate?wait=perhaps", Some("ak"), StatusCode::BAD_REQUEST, "invalid_parameter"),
        ("GET", "/api/leads/x?as_of=yesterday", Some("ak"), StatusCode::BAD_REQUEST, "invalid_parameter"),
        ("GET", "/api/models/abc", Some("ak"), StatusCode::BAD_REQUEST, "invalid_parameter"),
        ("POST", "/v1/frobnicate", None, StatusCode::NOT_FOUND, "unknown_path"),
    ];
    for (method, path, key, status, code) in cases {
        let (got, body, headers) = call(&s, method, path, key, "").await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{method} {path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: {body}");
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"), "{method} {path}");
    }
}

// ---- RudderStack's browser SDK and analytics.js settings ------------------------------------------------------

#[tokio::test]
async fn rudderstack_finds_its_source_config_and_beacon() {
    let s = start();
    for path in ["/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey=wk", "/sourceConfig?writeKey=wk"] {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, basic("wk"))
            .header(header::ORIGIN, "https://www.example.com")
            .body(Body::empty())
            .unwrap();
        let (status, config, headers) = s.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}: {config}");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let source = &config["source"];
        assert!(source["id"].is_string() && source["config"].is_object(), "{config}");
        assert_eq!((source["enabled"].clone(), source["destinations"].clone()), (json!(true), json!([])));
    }
    // A bad key: a JSON 401 that the browser may read (CORS headers on errors too).
    let request = Request::get("/sourceConfig/?writeKey=nope")
        .header(header::ORIGIN, "https://www.example.com")
        .body(Body::empty())
        .unwrap();
    let (status, body, headers) = s.send(request).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_write_key")));
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    // The preflight for its Basic-auth GET.
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/sourceConfig/?writeKey=wk")
        .header(header::ORIGIN, "https://www.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .unwrap();
    let (status, _, headers) = s.send(preflight).await;
    assert!(status.is_success());
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_HEADERS], "authorization");
    // The beacon: text/plain, the key only in the query.
    let body = json!({"batch": [
        {"type": "page", "anonymousId": "anon-b", "userId": "", "properties": {"path": "/pricing"}, "messageId": "b1",
         "originalTimestamp": T0, "sentAt": T0, "channel": "web"},
        {"type": "identify", "anonymousId": "anon-b", "userId": "beacon-user", "context": {"traits": {"title": "VP"}},
         "messageId": "b2", "originalTimestamp": T0, "sentAt": T0},
    ], "sentAt": T0});
    let request = Request::post("/beacon/v1/batch?writeKey=wk")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, answer, _) = s.send(request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let lead = s.lead("beacon-user").await;
    let rules: Vec<&str> =
        lead["contributions"].as_array().unwrap().iter().map(|c| c["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"Pricing page") && rules.contains(&"Executive"), "stitched: {lead}");
    let request = Request::post("/beacon/v1/batch?writeKey=nope").body(Body::from(body.to_string())).unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::UNAUTHORIZED);
}

async fn settings(s: &Server, headers: &[(&str, &str)], peer: Option<&str>) -> Value {
    let mut request = Request::get("/v1/projects/wk/settings");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    }
    let (status, body, _) = s.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["integrations"]["Segment.io"].clone()
}

/// Behind a TLS proxy, analytics.js must post over https to the public address: `public_url`
/// decides, else `X-Forwarded-Proto` from a trusted proxy; a client cannot claim it.
#[tokio::test]
async fn analytics_js_settings_follow_the_public_url_or_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let s = harness::start_settings(dir.path(), |settings| {
        settings.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    });
    let forwarded = [("host", "leads.example.com"), ("x-forwarded-proto", "https")];
    let trusted = settings(&s, &forwarded, Some("10.1.2.3:5000")).await;
    assert_eq!(
        (trusted["protocol"].as_str(), trusted["apiHost"].as_str()),
        (Some("https"), Some("leads.example.com/v1"))
    );
    let untrusted = settings(&s, &forwarded, Some("203.0.113.9:5000")).await;
    assert_eq!(untrusted["protocol"], "http", "an untrusted peer cannot claim https");
    let injected = settings(&s, &[("host", "evil.example/path?x")], None).await;
    assert!(!injected["apiHost"].as_str().unwrap().contains("evil"), "a malformed Host is not repeated: {injected}");
    s.app.shutdown();

    let dir = tempfile::tempdir().unwrap();
    let s = harness::start_settings(dir.path(), |settings| {
        settings.public_url =
            Some(leadscore_service::settings::PublicUrl::parse("https://scores.example.com").unwrap());
    });
    let public = settings(&s, &[("host", "10.0.0.5:8080")], None).await;
    assert_eq!(
        (public["protocol"].as_str(), public["apiHost"].as_str()),
        (Some("https"), Some("scores.example.com/v1"))
    );
}

// ---- readiness ----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn readiness_writes_to_the_database() {
    let s = start();
    let (status, body, _) = call(&s, "GET", "/readyz", None, "").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (status, _, _) = call(&s, "GET", "/healthz", None, "").await;
    assert_eq!(status, StatusCode::OK);
}

// ---- GDPR delete --------------------------------------------------------------------------------------------------

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// After `DELETE /api/leads/{id}`, no byte of the lead's e-mail is left in the SQLite database
/// or its write-ahead log, and messages sent under an id aliased into the lead went too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_lead_leaves_no_trace_in_the_sqlite_file() {
    let s = start();
    let email = "erase-me-7f3a9c@example.org";
    let batch = json!({"batch": [
        {"type": "page", "anonymousId": "anon-e", "properties": {"path": "/pricing", "email": email}, "messageId": "e1", "timestamp": T0},
        {"type": "track", "userId": "old-id", "event": "Demo Requested", "properties": {"by": email}, "messageId": "e2", "timestamp": T0},
        {"type": "identify", "userId": "old-id", "traits": {"email": email, "title": "VP"}, "messageId": "e3", "timestamp": T0},
        {"type": "alias", "previousId": "old-id", "userId": email, "messageId": "e4", "timestamp": at(1000)},
        {"type": "identify", "anonymousId": "anon-e", "userId": email, "traits": {"email": email, "title": "VP"}, "messageId": "e5", "timestamp": at(2000)},
        track(email, "Demo Requested", "e6", &at(3000)),
        track("bystander", "Demo Requested", "e7", &at(3000)),
    ]});
    assert_eq!(s.ingest("/v1/batch", batch).await.0, StatusCode::OK);
    assert_eq!(s.post(&format!("/api/leads/{email}/outcome"), r#"{"outcome": "lost"}"#).await.0, StatusCode::OK);
    // More traffic, so the pages holding the e-mail are rewritten and freed along the way.
    for i in 0..50 {
        let filler = json!({"batch": [track(&format!("f{i}"), "Demo Requested", &format!("f{i}"), &at(4000 + i))]});
        s.ingest("/v1/batch", filler).await;
    }
    let (status, _, _) = call(&s, "DELETE", &format!("/api/leads/{email}"), Some("ak"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/leads/old-id").await.0, StatusCode::NOT_FOUND, "the aliased previous id went too");
    assert_eq!(s.get("/api/leads/bystander").await.0, StatusCode::OK);
    let path = s.app.settings.db.strip_prefix("sqlite://").unwrap().to_owned();
    for file in [path.clone(), format!("{path}-wal")] {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!contains(&bytes, email.as_bytes()), "`{email}` is still in {file}");
        assert!(!contains(&bytes, b"old-id"), "`old-id` is still in {file}");
    }
}

// ---- dashboard sessions ---------------------------------------------------------------------------------------

/// Every dashboard POST needs the session's CSRF token and our own origin; pages carry security
/// headers; a read key's session sees and may do no admin action.
#[tokio::test]
async fn dashboard_forms_need_a_csrf_token_and_our_origin() {
    let s = start();
    s.ingest("/v1/batch", json!({"batch": [track("d1", "Demo Requested", "d1", T0)]})).await;
    let (status, headers) = login(&s, "ak").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"), "{set}");
    let cookie = cookie_of(&headers);
    let token = cookie.split_once('=').unwrap().1;
    assert_eq!(token.len(), 64, "256 bits from the OS");
    let (status, html, headers) = page(&s, &cookie, "/marketing").await;
    assert_eq!(status, StatusCode::OK);
    for (name, expected) in [
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert!(headers[name].to_str().unwrap().contains(expected), "{name}: {:?}", headers[name]);
    }
    let csrf = csrf_of(&html);
    assert!(html.contains("/marketing/backtest"), "an admin sees the backtest button");
    // Without the token, with a wrong one, or from another site: refused, nothing runs.
    assert_eq!(form_post(&s, &cookie, "/marketing/backtest", None, "").await, StatusCode::FORBIDDEN);
    assert_eq!(form_post(&s, &cookie, "/marketing/backtest", None, "csrf=guess").await, StatusCode::FORBIDDEN);
    let form = format!("csrf={csrf}");
    let cross = form_post(&s, &cookie, "/marketing/backtest", Some("https://evil.example"), &form).await;
    assert_eq!(cross, StatusCode::FORBIDDEN);
    assert!(!page(&s, &cookie, "/marketing").await.1.contains("ROC AUC"), "no backtest ran");
    let ok = form_post(&s, &cookie, "/marketing/backtest", Some("http://127.0.0.1:8080"), &form).await;
    assert_eq!(ok, StatusCode::SEE_OTHER);
    assert!(page(&s, &cookie, "/marketing").await.1.contains("ROC AUC"), "the backtest ran");
    // Without `Origin`, the `Referer` decides; behind a TLS proxy the scheme may differ.
    let referer = |value: &'static str| {
        let request = Request::post("/marketing/backtest")
            .header(header::COOKIE, &cookie)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::REFERER, value)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.clone()))
            .unwrap();
        s.send(request)
    };
    assert_eq!(referer("https://evil.example/127.0.0.1:8080").await.0, StatusCode::FORBIDDEN);
    assert_eq!(referer("http://127.0.0.1:8080/marketing").await.0, StatusCode::SEE_OTHER);
    let tls = form_post(&s, &cookie, "/marketing/backtest", Some("https://127.0.0.1:8080"), &form).await;
    assert_eq!(tls, StatusCode::SEE_OTHER);
    // A login form posted from another site is refused too.
    let request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from("api_key=ak"))
        .unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::FORBIDDEN);

    // A read key: the pages, no admin buttons, admin actions refused even with a good token.
    let (status, headers) = login(&s, "rk").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let reader = cookie_of(&headers);
    let (status, html, _) = page(&s, &reader, "/marketing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("/marketing/backtest") && !html.contains("/activate"), "no admin actions shown");
    let csrf = csrf_of(&html);
    assert_eq!(
        form_post(&s, &reader, "/marketing/models/1/activate", None, &format!("csrf={csrf}")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(page(&s, &reader, "/leads/d1").await.0, StatusCode::OK);
    // A write key cannot log in.
    assert_eq!(login(&s, "wk").await.0, StatusCode::UNAUTHORIZED);
    // Logging out ends the session everywhere.
    assert_eq!(form_post(&s, &reader, "/logout", None, &format!("csrf={csrf}")).await, StatusCode::SEE_OTHER);
    assert_eq!(page(&s, &reader, "/leads").await.0, StatusCode::SEE_OTHER, "back to the login page");
}

/// Sessions live in the database: they survive a restart (another `App` on the same file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let first = start_with(Some(db.clone()), MODEL);
    let cookie = cookie_of(&login(&first, "ak").await.1);
    assert_eq!(page(&first, &cookie, "/leads").await.0, StatusCode::OK);
    let app = Arc::clone(&first.app);
    tokio::task::spawn_blocking(move || app.shutdown()).await.unwrap();
    drop(first);
    let second = start_with(Some(db), MODEL);
    assert_eq!(page(&second, &cookie, "/leads").await.0, StatusCode::OK, "still logged in after the restart");
    assert_eq!(page(&second, "leadscore_session=forged", "/leads").await.0, StatusCode::SEE_OTHER);
}

/// Behind HTTPS (a `public_url`, or a trusted proxy's `X-Forwarded-Proto`), the cookie is `Secure`.
#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let dir = tempfile::tempdir().unwrap();
    let s = harness::start_settings(dir.path(), |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    });
    let mut request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "leads.example.com")
        .header("x-forwarded-proto", "https")
        .header(header::ORIGIN, "https://leads.example.com")
        .body(Body::from("api_key=ak"))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo("127.0.0.1:4000".parse::<SocketAddr>().unwrap()));
    let (status, _, headers) = s.send(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
}
