//! The server driven through its router (no socket): Segment ingest in every shape real clients
//! send, the bad-input corpus, the read and admin API, and time-driven stage changes under an
//! injected clock. PostgreSQL variants run on a throwaway cluster ("skipped: …" without one).

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;
#[path = "../../store/tests/common/pg.rs"]
mod pg;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use tower::ServiceExt;

use harness::{MODEL, Server, T0, basic, cookie_of, login, page, start, start_with};
use leadscore_core::time::{MS_PER_DAY, parse_timestamp};

fn track(user: &str, event: &str, id: &str, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "messageId": id, "timestamp": at})
}

fn rules(lead: &Value) -> Vec<String> {
    lead["contributions"].as_array().unwrap().iter().map(|c| c["rule"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_batch_from_an_sdk_is_scored_before_the_call_returns() {
    let s = start();
    let (status, body) = s
        .ingest(
            "/v1/batch",
            json!({"batch": [
                {"type": "identify", "userId": "u1", "anonymousId": null, "traits": {"title": "VP Sales"},
                 "timestamp": "2026-01-09T10:00:00.123+00:00", "messageId": "m1", "integrations": {}},
                {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"employees": 500},
                 "timestamp": "2026-01-09T10:00:01Z", "messageId": "m2"},
                track("u1", "Demo Requested", "m3", "2026-01-09T12:00:00Z"),
            ], "sentAt": "2026-01-09T12:00:01Z"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let lead = s.lead("u1").await;
    assert_eq!(lead["scores"]["fit"], json!(50.0));
    assert_eq!(lead["stage"], "sql");
    assert_eq!(lead["account"]["id"], "acme");
    assert_eq!(lead["account"]["traits"]["employees"], 500);
    assert_eq!(rules(&lead), ["Executive", "Big account", "Demo requested"]);
    let history = lead["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["stage"], "sql");
    // The list shows the stored score.
    let (_, list) = s.get("/api/leads?sort=-total").await;
    assert_eq!(list["leads"][0]["id"], "u1");
    assert_eq!(list["leads"][0]["stage"], "sql");
}

#[tokio::test]
async fn every_client_shape_is_accepted() {
    let s = start();
    // RudderStack: gzip, traits only in context.traits, originalTimestamp + sentAt, form content type.
    let body = json!({"batch": [{"type": "identify", "userId": "r1", "context": {"traits": {"title": "VP Ops"}},
        "originalTimestamp": "2026-01-09T00:00:00Z", "sentAt": "2026-01-09T00:00:00Z", "messageId": "r-1",
        "channel": "server", "integrations": {"All": true}}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.to_string().as_bytes()).unwrap();
    let request = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic("wk"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::OK);
    assert_eq!(s.lead("r1").await["traits"]["title"], "VP Ops");
    // analytics.js: text/plain, key in the body, short path, Basic without the colon.
    for (path, message) in [
        ("/v1/p", json!({"anonymousId": "a1", "properties": {"path": "/pricing"}, "messageId": "b1"})),
        ("/v1/i", json!({"anonymousId": "a1", "userId": "b-user", "traits": {}, "messageId": "b2"})),
        ("/v1/t", json!({"userId": "b-user", "event": "Demo Requested", "messageId": "b3"})),
    ] {
        let mut message = message;
        message["writeKey"] = json!("wk");
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(message.to_string()))
            .unwrap();
        let (status, body, _) = s.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let lead = s.lead("b-user").await;
    assert_eq!(rules(&lead), ["Demo requested", "Pricing page"], "the anonymous pricing view is stitched");
    let no_colon = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("wk"));
    let request = Request::post("/v1/track")
        .header(header::AUTHORIZATION, no_colon)
        .body(Body::from(track("u9", "Demo Requested", "x9", T0).to_string()))
        .unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::OK);
    // The settings analytics.js loads, and the CORS preflight.
    let (status, settings, _) = s
        .send(
            Request::get("/v1/projects/wk/settings")
                .header(header::HOST, "scores.example:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["integrations"]["Segment.io"]["apiHost"], "scores.example:8080/v1");
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/v1/t")
        .header(header::ORIGIN, "https://www.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Body::empty())
        .unwrap();
    let (_, _, headers) = s.send(preflight).await;
    assert_eq!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after_and_loses_nothing() {
    let s = start();
    s.app.set_queue_limit(50);
    // Another writer holds the database: the server's writer waits, its queue fills.
    let (locked, release) = (std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
    let store = std::sync::Arc::clone(s.app.store());
    let holder = std::thread::spawn(move || {
        store
            .write(|tx| {
                tx.ensure_lead("holder", 0)?;
                let _ = locked.0.send(());
                let _ = release.1.recv();
                Ok::<_, leadscore_store::StoreError>(())
            })
            .unwrap();
    });
    locked.1.recv().unwrap();
    let batch = |first: usize| json!({"batch": (first..first + 40).map(|i| track(&format!("q{i}"), "Demo Requested", &format!("q{i}"), T0)).collect::<Vec<_>>()});
    let first = {
        let router = s.router.clone();
        let body = batch(0).to_string();
        tokio::spawn(async move {
            let request =
                Request::post("/v1/batch").header(header::AUTHORIZATION, basic("wk")).body(Body::from(body)).unwrap();
            router.oneshot(request).await.unwrap().status()
        })
    };
    while s.app.pending_events() < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let request = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic("wk"))
        .body(Body::from(batch(40).to_string()))
        .unwrap();
    let (status, body, headers) = s.send(request).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::TOO_MANY_REQUESTS, "overloaded"));
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    release.0.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(first.await.unwrap(), StatusCode::OK, "the queued request is committed");
    assert_eq!(s.lead("q0").await["total"], json!(60.0));
    assert_eq!(s.get("/api/leads/q40").await.0, StatusCode::NOT_FOUND, "the refused batch stored nothing");
    // The SDK resends after Retry-After: now it fits.
    assert_eq!(s.ingest("/v1/batch", batch(40)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_resent_batch_counts_once() {
    let s = start();
    let batch = json!({"batch": [
        json!({"type": "page", "userId": "u", "properties": {"path": "/pricing"}, "messageId": "p1", "timestamp": T0}),
        json!({"type": "page", "userId": "u", "properties": {"path": "/pricing/x"}, "messageId": "p2", "timestamp": T0}),
    ]});
    for _ in 0..3 {
        assert_eq!(s.ingest("/v1/batch", batch.clone()).await.0, StatusCode::OK);
    }
    let lead = s.lead("u").await;
    assert_eq!(lead["contributions"][0]["matched"], 2);
    assert_eq!(lead["total"], json!(10.0));
}

#[tokio::test]
async fn bad_input_gets_a_stable_4xx_and_loses_nothing_accepted() {
    let s = start();
    assert_eq!(
        s.ingest("/v1/batch", json!({"batch": [track("keep", "Demo Requested", "k1", T0)]})).await.0,
        StatusCode::OK
    );
    let raw = |body: Vec<u8>, auth: Option<String>, encoding: Option<&str>| {
        let mut r = Request::post("/v1/batch");
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        if let Some(e) = encoding {
            r = r.header(header::CONTENT_ENCODING, e);
        }
        r.body(Body::from(body)).unwrap()
    };
    let big_message =
        json!({"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"x": "a".repeat(40_000)}}]});
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (raw(b"{\"batch\": [".to_vec(), Some(basic("wk")), None), 400, "invalid_json"),
        (raw(b"[1,2]".to_vec(), Some(basic("wk")), None), 400, "invalid_body"),
        (raw(br#"{"batch": "x"}"#.to_vec(), Some(basic("wk")), None), 400, "invalid_batch"),
        (
            raw(br#"{"batch": [{"type": "frob", "userId": "u"}]}"#.to_vec(), Some(basic("wk")), None),
            400,
            "unknown_type",
        ),
        (raw(br#"{"batch": [{"type": "track", "event": "e"}]}"#.to_vec(), Some(basic("wk")), None), 400, "missing_id"),
        (
            raw(br#"{"batch": [{"type": "track", "userId": 5, "event": 5}]}"#.to_vec(), Some(basic("wk")), None),
            400,
            "invalid_message",
        ),
        (
            raw(
                br#"{"batch": [{"type": "track", "userId": "u", "event": "e", "timestamp": "soon"}]}"#.to_vec(),
                Some(basic("wk")),
                None,
            ),
            400,
            "invalid_timestamp",
        ),
        (
            raw(
                br#"{"batch": [{"type": "track", "userId": "u", "event": "e", "timestamp": 17}]}"#.to_vec(),
                Some(basic("wk")),
                None,
            ),
            400,
            "invalid_timestamp",
        ),
        (raw(big_message.to_string().into_bytes(), Some(basic("wk")), None), 413, "message_too_large"),
        (raw(vec![b' '; 600_000], Some(basic("wk")), None), 413, "batch_too_large"),
        (raw(b"\x1f\x8b\x08garbage".to_vec(), Some(basic("wk")), Some("gzip")), 400, "invalid_gzip"),
        (raw(b"{}".to_vec(), Some(basic("wk")), Some("br")), 415, "unsupported_encoding"),
        (raw(br#"{"batch": []}"#.to_vec(), None, None), 401, "missing_write_key"),
        (raw(br#"{"batch": []}"#.to_vec(), Some(basic("nope")), None), 401, "invalid_write_key"),
        (raw(br#"{"batch": []}"#.to_vec(), Some("Basic !!!".into()), None), 401, "missing_write_key"),
    ];
    for (request, status, code) in cases {
        let (got, body, _) = s.send(request).await;
        assert_eq!((got.as_u16(), body["code"].as_str().unwrap_or("")), (status, code), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A batch with one bad message is refused whole: nothing of it is stored.
    let mixed = json!({"batch": [track("half", "Demo Requested", "h1", T0), {"type": "track", "userId": "half"}]});
    assert_eq!(s.ingest("/v1/batch", mixed).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/api/leads/half").await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.lead("keep").await["total"], json!(60.0), "what was accepted is still there");
    assert_eq!(s.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_api_needs_an_api_key_and_names_unknown_leads() {
    let s = start();
    let (status, body, _) = s.send(Request::get("/api/leads").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::UNAUTHORIZED, "missing_api_key"));
    let with = |key: &str| {
        Request::get("/api/leads").header(header::AUTHORIZATION, format!("Bearer {key}")).body(Body::empty()).unwrap()
    };
    let (status, body, _) = s.send(with("wk")).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::FORBIDDEN, "write_key_not_allowed"));
    let (status, body, _) = s.send(with("guess")).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    let (status, body) = s.get("/api/leads/ghost").await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "lead_not_found"));
    for bad in [
        "/api/leads?sort=name",
        "/api/leads?limit=0",
        "/api/leads?min_total=x",
        "/api/leads?cursor=%%%",
        "/api/leads/u?as_of=monday",
    ] {
        let (status, body) = s.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn lists_page_with_cursors_and_filter() {
    let s = start();
    let batch: Vec<Value> = (0..25)
        .map(|i| json!({"type": "page", "userId": format!("p{i:02}"), "properties": {"path": "/pricing"}, "messageId": format!("m{i}"), "timestamp": T0}))
        .chain([track("p07", "Demo Requested", "d7", T0)])
        .collect();
    assert_eq!(s.ingest("/v1/batch", json!({"batch": batch})).await.0, StatusCode::OK);
    let mut seen = Vec::new();
    let mut url = "/api/leads?limit=10".to_owned();
    loop {
        let (status, page) = s.get(&url).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(page["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/api/leads?limit=10&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[0], "p07", "highest total first");
    let (_, mql) = s.get("/api/leads?stage=mql").await;
    assert_eq!(mql["leads"].as_array().unwrap().len(), 1);
    let (_, some) = s.get("/api/leads?min_total=6").await;
    assert_eq!(some["leads"][0]["id"], "p07");
}

#[tokio::test]
async fn as_of_shows_the_past_and_outcomes_move_the_stage() {
    let s = start();
    s.ingest("/v1/batch", json!({"batch": [
        track("u", "Demo Requested", "a", "2026-01-05T00:00:00Z"),
        {"type": "page", "userId": "u", "properties": {"path": "/pricing"}, "messageId": "b", "timestamp": "2026-01-08T00:00:00Z"},
    ]}))
    .await;
    let (_, past) = s.get("/api/leads/u?as_of=2026-01-06T00:00:00Z").await;
    assert_eq!(rules(&past), ["Demo requested"]);
    assert_eq!(past["events"].as_array().unwrap().len(), 1);
    let (_, before) = s.get("/api/leads/u?as_of=2026-01-01T00:00:00Z").await;
    assert_eq!((before["total"].clone(), before["stage"].clone()), (json!(0.0), json!("lead")));
    let (status, body) = s.post("/api/leads/u/outcome", r#"{"outcome": "won", "at": "2026-01-09T00:00:00Z"}"#).await;
    assert_eq!((status, body["stage"].clone()), (StatusCode::OK, json!("customer")), "{body}");
    let lead = s.lead("u").await;
    assert_eq!(lead["stage"], "customer");
    assert_eq!(lead["history"].as_array().unwrap().last().unwrap()["stage"], "customer");
    let (status, body) = s.post("/api/leads/u/outcome", r#"{"outcome": "maybe"}"#).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_outcome"));
    let (status, _) = s.post("/api/leads/nobody/outcome", r#"{"outcome": "won"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn delete_removes_everything(s: &Server) {
    s.ingest("/v1/batch", json!({"batch": [
        {"type": "page", "anonymousId": "anon-x", "properties": {"path": "/pricing"}, "messageId": "x1", "timestamp": T0},
        {"type": "identify", "anonymousId": "anon-x", "userId": "gone", "traits": {"title": "VP"}, "messageId": "x2", "timestamp": T0},
        track("gone", "Demo Requested", "x3", T0),
        track("stays", "Demo Requested", "x4", T0),
    ]}))
    .await;
    s.post("/api/leads/gone/outcome", r#"{"outcome": "lost"}"#).await;
    let request =
        Request::delete("/api/leads/gone").header(header::AUTHORIZATION, "Bearer ak").body(Body::empty()).unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/leads/gone").await.0, StatusCode::NOT_FOUND);
    let left = s
        .store(|store| {
            store.read(|tx| {
                Ok::<_, leadscore_store::StoreError>((
                    tx.rows_naming_lead("gone")?,
                    tx.events_of_leads(&["gone".to_owned()], &["anon-x".to_owned()])?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(left, (0, vec![]), "no row of the lead is left, nor its stitched anonymous visits");
    assert_eq!(s.lead("stays").await["total"], json!(60.0));
    let request =
        Request::delete("/api/leads/gone").header(header::AUTHORIZATION, "Bearer ak").body(Body::empty()).unwrap();
    assert_eq!(s.send(request).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_lead_removes_all_its_rows_on_sqlite() {
    delete_removes_everything(&start()).await;
}

#[test]
fn deleting_a_lead_removes_all_its_rows_on_postgres() {
    on_postgres(delete_removes_everything);
}

/// Runs `check` against a server on a fresh PostgreSQL database (`pg` says "skipped" loudly
/// where there is none). The PostgreSQL driver runs its own runtime: the server starts outside
/// the check's.
fn on_postgres(check: impl AsyncFnOnce(&Server)) {
    let Some(cluster) = pg::PgCluster::start() else { return };
    let s = start_with(Some(cluster.database()), MODEL);
    tokio::runtime::Runtime::new().unwrap().block_on(check(&s));
    s.app.shutdown();
}

#[tokio::test]
async fn model_versions_are_checked_activated_and_rescore_everyone() {
    let s = start();
    s.ingest("/v1/batch", json!({"batch": [track("u", "Demo Requested", "a", T0)]})).await;
    let (status, body) = s.post("/api/models", "[model]\nname = \"x\"\n[dimensions.fit]\n[[rules]]\nname = \"r\"\ndimension = \"fitt\"\nif = 'true'\npoints = 1\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_model");
    let diagnostic = &body["diagnostics"][0];
    assert!(diagnostic["message"].as_str().unwrap().contains("fitt"), "{body}");
    assert_eq!(diagnostic["line"], 6, "{body}");
    let doubled = MODEL.replace("points = 60", "points = 120").replace("name = \"api-test\"", "name = \"api-test-2\"");
    let (status, body) = s.post("/api/models", &doubled).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let version = body["version"].as_i64().unwrap();
    let (status, body) = s.post(&format!("/api/models/{version}/activate?wait=true"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rescore"]["finished"], true);
    let (_, list) = s.get("/api/leads").await;
    assert_eq!(list["leads"][0]["total"], json!(120.0), "the stored score was rescored");
    let (_, models) = s.get("/api/models").await;
    let active: Vec<i64> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["active"] == true)
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    assert_eq!(active, [version]);
    let (status, body) = s.post("/api/models/99/activate", "").await;
    assert_eq!((status, body["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "model_not_found"));
    let (status, report) = s.post("/api/backtest", "").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["models"][0]["counts"]["leads"], 1);
}

#[tokio::test]
async fn a_decaying_lead_drops_from_sql_to_mql_exactly_when_it_crosses() {
    let s = start();
    // fit 40 (title) + engagement 60 (demo, half-life 10 d) = 100: SQL until 40 + 60·2^(−t/10d) < 80,
    // i.e. t = 10 d · log2(1.5) ≈ 5.85 d after the demo; then MQL until the total falls below 50.
    s.ingest(
        "/v1/batch",
        json!({"batch": [
            {"type": "identify", "userId": "d", "traits": {"title": "VP"}, "messageId": "i", "timestamp": T0},
            track("d", "Demo Requested", "t", T0),
        ]}),
    )
    .await;
    assert_eq!(s.lead("d").await["stage"], "sql");
    let t0 = parse_timestamp(T0).unwrap();
    let crossing = t0 + (10.0 * MS_PER_DAY as f64 * 1.5f64.log2()).ceil() as i64;
    let stored = |s: &Server| s.app.store().read(|tx| tx.lead("d")).unwrap().unwrap().score.unwrap();
    // The scheduler refreshes the decaying lead daily and schedules the crossing itself exactly.
    let mut steps = 0;
    let mut due = stored(&s).next_change_at.unwrap();
    while stored(&s).stage == "sql" {
        assert!(due <= crossing + 1, "the crossing at {crossing} was skipped (due {due})");
        if (due - crossing).abs() <= 1 {
            s.clock.set(due - 1);
            assert_eq!(s.app.run_due(due - 1).unwrap(), 0, "nothing is due a millisecond early");
        }
        s.clock.set(due);
        s.app.run_due(due).unwrap(); // (the background scheduler may get there first)
        due = stored(&s).next_change_at.unwrap();
        steps += 1;
    }
    assert!(steps >= 5, "daily refreshes before the crossing ({steps} steps)");
    let lead = s.lead("d").await;
    assert_eq!(lead["stage"], "mql");
    let last = lead["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["stage"], "mql");
    let at = parse_timestamp(last["at"].as_str().unwrap()).unwrap();
    assert!((at - crossing).abs() <= 1, "recorded at the crossing instant: {at} vs {crossing}");
    let (_, list) = s.get("/api/leads?stage=mql").await;
    assert_eq!(list["leads"][0]["id"], "d", "the stored stage changed without any event");
}

#[tokio::test]
async fn openapi_metrics_and_accounts_are_served() {
    let s = start();
    s.ingest("/v1/batch", json!({"batch": [
        {"type": "group", "userId": "a1", "groupId": "acme", "traits": {"employees": 300}, "messageId": "g1", "timestamp": T0},
        {"type": "group", "userId": "a2", "groupId": "acme", "messageId": "g2", "timestamp": T0},
        track("a2", "Demo Requested", "t2", T0),
    ]}))
    .await;
    let (status, account) = s.get("/api/accounts/acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["leads"].as_array().unwrap().len(), 2);
    assert_eq!(account["traits"]["employees"], 300);
    assert_eq!(account["scores"]["engagement"], json!(60.0), "max of its leads");
    assert_eq!(s.get("/api/accounts/none").await.0, StatusCode::NOT_FOUND);
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/v1/batch", "/api/leads", "/api/leads/{id}", "/api/models/{version}/activate", "/api/backtest"] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let (status, text) = s.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(text.contains("leadscore_ingest_events_total"), "{text}");
    assert!(text.contains("leadscore_http_request_seconds_bucket"), "{text}");
    assert!(text.contains("leadscore_ingest_queue_events"), "{text}");
}

/// A model whose stages are not named lead/MQL/SQL: `cold`, `warm`, `hot` (lowest first).
const TEMPERATURE: &str = include_str!("models/temperature.toml");
/// "Call now" ranks leads by the model's own stage order (highest stage first, then by total),
/// then leads in no stage, then those with an outcome; in the API, through its cursor, and on the
/// dashboard, whose counts and funnel name the model's stages.
#[tokio::test]
async fn call_now_follows_the_models_stage_order_whatever_the_names() {
    let s = start_with(None, TEMPERATURE);
    let mut batch = Vec::new();
    for (lead, views) in [("a", 1), ("b", 2), ("c", 3), ("d", 0), ("e", 4), ("f", 3)] {
        for i in 0..views {
            batch.push(json!({"type": "page", "userId": lead, "properties": {"path": "/pricing"},
                "messageId": format!("{lead}{i}"), "timestamp": T0}));
        }
        if views == 0 {
            batch.push(json!({"type": "page", "userId": lead, "properties": {"path": "/blog"}, "messageId": "d-blog", "timestamp": T0}));
        }
    }
    assert_eq!(s.ingest("/v1/batch", json!({"batch": batch})).await.0, StatusCode::OK);
    let (status, _) = s.post("/api/leads/f/outcome", r#"{"outcome": "won", "at": "2026-01-10T00:00:00Z"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let expected = ["e", "c", "b", "a", "d", "f"];
    let (_, all) = s.get("/api/leads?sort=call").await;
    let ids: Vec<&str> = all["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected, "{all}");
    // Page by page, the cursor keeps the order.
    let mut seen = Vec::new();
    let mut url = "/api/leads?sort=call&limit=2".to_owned();
    loop {
        let (status, page) = s.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/api/leads?sort=call&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let (_, warm) = s.get("/api/leads?stage=warm").await;
    assert_eq!(warm["leads"].as_array().unwrap().len(), 1);
    assert_eq!(warm["leads"][0]["id"], "b");

    // The dashboard: the call list in the same order, the model's stages in the filter, the
    // counts and the funnel.
    let (_, headers) = login(&s, "ak").await;
    let cookie = cookie_of(&headers);
    let (status, html, _) = page(&s, &cookie, "/leads").await;
    assert_eq!(status, StatusCode::OK);
    let order: Vec<usize> = expected.iter().map(|id| html.find(&format!("data-lead=\"{id}\"")).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "call list order {order:?}");
    assert!(html.contains(r#"<option value="hot" "#) && html.contains(r#"<option value="cold" "#));
    let (_, html, _) = page(&s, &cookie, "/leads?stage=warm").await;
    assert!(html.contains("data-lead=\"b\"") && !html.contains("data-lead=\"a\""));
    let (_, html, _) = page(&s, &cookie, "/marketing").await;
    for (stage, now) in [("hot", 2), ("warm", 1), ("cold", 1)] {
        assert!(
            html.contains(&format!("<div class=\"muted\">{stage} now</div><div class=\"kpi\">{now}</div>")),
            "{stage}: {html}"
        );
    }
    assert!(!html.contains("MQL now") && !html.contains("SQL now"));
}

/// A lead's stored state folds messages older than a few days together and keeps no ids of
/// them. A later copy of a folded message under another of the lead's ids (its anonymous id,
/// then its `userId`) is stored (another person), but the earliest copy is the one that counts:
/// the lead is folded again from its history, and the copy is not counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_folded_message_under_another_id_of_the_lead_counts_once_on_sqlite() {
    copy_of_a_folded_message_counts_once(&start()).await;
}

#[test]
fn a_copy_of_a_folded_message_under_another_id_of_the_lead_counts_once_on_postgres() {
    on_postgres(copy_of_a_folded_message_counts_once);
}

async fn copy_of_a_folded_message_counts_once(s: &Server) {
    let now = parse_timestamp(T0).unwrap();
    let at = |days: i64| leadscore_core::time::format_timestamp(now - days * MS_PER_DAY);
    let identify =
        json!({"type": "identify", "userId": "f", "anonymousId": "anon-f", "messageId": "i", "timestamp": at(20)});
    let visit = |user: Value, when: String| {
        let mut m = json!({"type": "page", "anonymousId": "anon-f", "properties": {"path": "/pricing"}, "messageId": "x", "timestamp": when});
        if !user.is_null() {
            m["userId"] = user;
        }
        m
    };
    let other = json!({"type": "page", "userId": "f", "properties": {"path": "/pricing"}, "messageId": "y", "timestamp": at(9)});
    let first = json!({"batch": [identify, visit(Value::Null, at(10)), other]});
    assert_eq!(s.ingest("/v1/batch", first).await.0, StatusCode::OK);
    let before = s.lead("f").await;
    // Dated after the stored state's horizon, so it could be filed into the state as it is.
    let copy = json!({"batch": [visit(json!("f"), at(1))]});
    let (status, answer) = s.ingest("/v1/batch", copy).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let fresh = s.lead("f").await;
    let pricing = |lead: &Value| {
        lead["contributions"].as_array().unwrap().iter().find(|c| c["rule"] == "Pricing page").unwrap()["matched"]
            .clone()
    };
    assert_eq!(pricing(&fresh), json!(2), "x counts once, y once: {fresh}");
    assert_eq!(fresh["total"], before["total"], "the copy changes nothing: {fresh}");
    let (_, list) = s.get("/api/leads").await;
    assert_eq!(list["leads"][0]["total"], fresh["total"], "{list}");
}

/// One dedupe key: a `messageId` counts once per person, whichever write key sent it (stored
/// once, counted once); the same `messageId` from two people is two messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_counts_once_per_person_whichever_write_key_sent_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = harness::start_settings(dir.path(), |settings| settings.write_keys.push("wk2".into()));
    let send = |key: &'static str, body: Value| {
        Request::post("/v1/batch")
            .header(header::AUTHORIZATION, basic(key))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let demo = |user: &str| json!({"batch": [track(user, "Demo Requested", "same-id", T0)]});
    assert_eq!(s.send(send("wk", demo("p1"))).await.0, StatusCode::OK);
    assert_eq!(s.send(send("wk2", demo("p1"))).await.0, StatusCode::OK);
    assert_eq!(s.send(send("wk", demo("p2"))).await.0, StatusCode::OK);
    let p1 = s.store(|store| store.read(|tx| tx.events_of_leads(&["p1".to_owned()], &[]))).await.unwrap();
    assert_eq!(p1.len(), 1, "p1's message is stored once");
    let stored = s.store(|store| store.read(|tx| tx.count_events())).await.unwrap();
    assert_eq!(stored, 2, "p1's message once, p2's once");
    assert_eq!(s.lead("p1").await["total"], json!(60.0));
    assert_eq!(s.lead("p2").await["total"], json!(60.0));
}

/// Ingest scores a lead from its stored fold state with only the new messages applied (the whole
/// history is read only after a new identity link). After every batch of random messages (late,
/// resent, anonymous and later stitched, sharing ids between a lead's anonymous and known
/// copies, accounts), before and after a model activation, every stored score equals a fresh
/// evaluation of the lead's whole history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_scores_from_stored_states_equal_fresh_evaluations() {
    let s = start();
    let t0 = parse_timestamp(T0).unwrap();
    // Event times run up to a day past the clock (as far as ingest accepts), so an anonymous
    // message stitched later is not yet visible when scored.
    let now = t0 + 20 * MS_PER_DAY;
    s.clock.set(now);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let mut sent: Vec<Value> = Vec::new();
    for round in 0..60 {
        let mut batch = Vec::new();
        for k in 0..=next(6) {
            if !sent.is_empty() && next(6) == 0 {
                batch.push(sent[next(sent.len() as u64) as usize].clone()); // a resend
                continue;
            }
            let user = format!("u{}", next(5));
            let anon = format!("a{}", next(6));
            let at = leadscore_core::time::format_timestamp(t0 + next(21 * MS_PER_DAY as u64 - 1) as i64);
            // Now and then the id of an earlier message: a lead's anonymous and known copies.
            let id = if next(5) == 0 && !sent.is_empty() {
                sent[next(sent.len() as u64) as usize]["messageId"].as_str().unwrap().to_owned()
            } else {
                format!("m{round}-{k}")
            };
            let message = match next(7) {
                0 => json!({"type": "track", "userId": user, "event": "Demo Requested"}),
                1 => json!({"type": "page", "anonymousId": anon, "properties": {"path": "/pricing"}}),
                2 => json!({"type": "page", "userId": user, "properties": {"path": "/pricing/team"}}),
                3 => {
                    let title = if next(2) == 0 { "VP Sales" } else { "Intern" };
                    json!({"type": "identify", "userId": user, "anonymousId": anon, "traits": {"title": title}})
                }
                4 => {
                    let employees = if next(2) == 0 { 50 } else { 500 };
                    json!({"type": "group", "userId": user, "groupId": format!("g{}", next(2)), "traits": {"employees": employees}})
                }
                5 => json!({"type": "track", "anonymousId": anon, "event": "Demo Requested"}),
                _ => json!({"type": "alias", "userId": user, "previousId": anon}),
            };
            let mut message = message;
            message["messageId"] = json!(id);
            message["timestamp"] = json!(at);
            sent.push(message.clone());
            batch.push(message);
        }
        let (status, answer) = s.ingest("/v1/batch", json!({ "batch": batch })).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if round == 30 {
            // Another model from here on: every lead's state is made again under it.
            let other =
                MODEL.replace("points = 60", "points = 45").replace("half_life = \"10d\"", "half_life = \"3d\"");
            let (status, created) = s.post("/api/models", &other).await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let version = created["version"].as_i64().unwrap();
            let (status, body) = s.post(&format!("/api/models/{version}/activate?wait=true"), "").await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (_, list) = s.get("/api/leads?limit=1000").await;
        for stored in list["leads"].as_array().unwrap() {
            let id = stored["id"].as_str().unwrap();
            let fresh = s.lead(id).await;
            let context = format!("round {round}, lead {id}:\nstored {stored}\nfresh {fresh}");
            assert_eq!(stored["total"], fresh["total"], "{context}");
            assert_eq!(stored["stage"], fresh["stage"], "{context}");
            assert_eq!(stored["scores"], json!(fresh["scores"]), "{context}");
        }
    }
}

/// An anonymous message whose id was linked to a lead by an `identify` dated later belongs to the
/// lead only from the link's time, also when it arrives after the link and is applied to the
/// lead's stored state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_message_counts_from_its_links_time_when_applied_to_a_stored_state() {
    let s = start();
    let now = parse_timestamp(T0).unwrap();
    let later = leadscore_core::time::format_timestamp(now + 12 * 3_600_000);
    let before = leadscore_core::time::format_timestamp(now - 3_600_000);
    let identify =
        json!({"type": "identify", "userId": "s1", "anonymousId": "anon-s", "messageId": "i", "timestamp": later});
    assert_eq!(s.ingest("/v1/batch", json!({"batch": [identify]})).await.0, StatusCode::OK);
    let demo = json!({"type": "track", "anonymousId": "anon-s", "event": "Demo Requested", "messageId": "d", "timestamp": before});
    assert_eq!(s.ingest("/v1/batch", json!({"batch": [demo]})).await.0, StatusCode::OK);
    let (_, list) = s.get("/api/leads").await;
    assert_eq!(list["leads"][0]["total"], json!(0.0), "not the lead's until the identify: {list}");
    assert_eq!(s.lead("s1").await["total"], json!(0.0));
    // At the link's time the scheduler counts it (its next change was due then).
    s.clock.set(now + 12 * 3_600_000);
    s.app.run_due(now + 12 * 3_600_000).unwrap();
    let (_, list) = s.get("/api/leads").await;
    let fresh = s.lead("s1").await;
    assert!(fresh["total"].as_f64().unwrap() > 50.0, "{fresh}");
    assert_eq!(list["leads"][0]["total"], fresh["total"], "{list}");
}

/// A model activation rescores every lead from one pass over the stored messages: an anonymous
/// message linked by an `identify` dated later still belongs to the lead only from the link's
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_activation_an_anonymous_message_still_counts_from_its_links_time() {
    let s = start();
    let now = parse_timestamp(T0).unwrap();
    let later = leadscore_core::time::format_timestamp(now + 12 * 3_600_000);
    let before = leadscore_core::time::format_timestamp(now - 3_600_000);
    let identify =
        json!({"type": "identify", "userId": "s3", "anonymousId": "anon-s3", "messageId": "i", "timestamp": later});
    let demo = json!({"type": "track", "anonymousId": "anon-s3", "event": "Demo Requested", "messageId": "d", "timestamp": before});
    assert_eq!(s.ingest("/v1/batch", json!({"batch": [identify, demo]})).await.0, StatusCode::OK);
    let (status, created) = s.post("/api/models", &MODEL.replace("api-test", "api-test-again")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let version = created["version"].as_i64().unwrap();
    let (status, body) = s.post(&format!("/api/models/{version}/activate?wait=true"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = s.get("/api/leads").await;
    assert_eq!(list["leads"][0]["total"], json!(0.0), "not the lead's until the identify: {list}");
    s.clock.set(now + 12 * 3_600_000);
    s.app.run_due(now + 12 * 3_600_000).unwrap();
    let (_, list) = s.get("/api/leads").await;
    let fresh = s.lead("s3").await;
    assert!(fresh["total"].as_f64().unwrap() > 50.0, "{fresh}");
    assert_eq!(list["leads"][0]["total"], fresh["total"], "{list}");
}

/// The history keeps a lead's first score and every change of stage or grade, not every new
/// total (a row per message would double what ingest writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_records_stage_changes_not_every_new_total() {
    let s = start();
    let page = |id: &str| json!({"type": "page", "userId": "h", "properties": {"path": "/pricing"}, "messageId": id, "timestamp": T0});
    for id in ["p1", "p2", "p3"] {
        assert_eq!(s.ingest("/v1/batch", json!({"batch": [page(id)]})).await.0, StatusCode::OK);
    }
    let lead = s.lead("h").await;
    assert_eq!(lead["total"], json!(15.0));
    let stages: Vec<(&str, f64)> = lead["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["stage"].as_str().unwrap(), h["total"].as_f64().unwrap()))
        .collect();
    assert_eq!(stages, [("lead", 5.0)], "the first score only: {lead}");
    s.ingest("/v1/batch", json!({"batch": [track("h", "Demo Requested", "d", T0)]})).await;
    let lead = s.lead("h").await;
    let last = lead["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["stage"].as_str(), lead["history"].as_array().unwrap().len()), (Some("mql"), 2), "{lead}");
}
