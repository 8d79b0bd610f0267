//! The router-driven test server: an `App` on a temporary SQLite file (or a given database), a
//! manual clock, and helpers to send requests. Shared by the server's test binaries.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use leadscore_core::time::parse_timestamp;
use leadscore_service::webhooks::Hook;
use leadscore_service::{App, ManualClock, Settings};

pub const MODEL: &str = r#"
[model]
name = "api-test"

[traits]
title = "string"

[dimensions.fit]
[dimensions.engagement]
half_life = "10d"

[[rules]]
name = "Executive"
dimension = "fit"
if = 'lead.title.contains("VP")'
points = 40

[[rules]]
name = "Big account"
dimension = "fit"
if = 'has(account.employees) && account.employees >= 100'
points = 10

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

[[stages]]
name = "mql"
when = "total >= 50"

[[stages]]
name = "sql"
when = "total >= 80"
"#;

pub const T0: &str = "2026-01-10T00:00:00Z";

pub struct Server {
    pub app: Arc<App>,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

pub fn start_with(db: Option<String>, model: &str) -> Server {
    start_full(db, model, Vec::new())
}

pub fn start_full(db: Option<String>, model: &str, webhooks: Vec<Hook>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.toml");
    std::fs::write(&model_path, model).unwrap();
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        read_keys: vec!["rk".into()],
        webhooks,
        ..Settings::new(
            db.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("test.db").display())),
            Some(model_path),
            vec!["wk".into()],
            vec!["ak".into()],
        )
    };
    let clock = Arc::new(ManualClock::new(parse_timestamp(T0).unwrap()));
    let app = App::start(settings, clock.clone()).unwrap();
    let router = leadscore_http::router(Arc::clone(&app));
    Server { app, router, clock, _dir: dir }
}

/// A server on a SQLite file in `dir` with settings adjusted by `adjust`.
pub fn start_settings(dir: &std::path::Path, adjust: impl FnOnce(&mut Settings)) -> Server {
    start_model_settings(dir, MODEL, adjust)
}

/// A server on a SQLite file in `dir` with this model and settings adjusted by `adjust`.
pub fn start_model_settings(dir: &std::path::Path, model: &str, adjust: impl FnOnce(&mut Settings)) -> Server {
    let model_path = dir.join("model.toml");
    std::fs::write(&model_path, model).unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        read_keys: vec!["rk".into()],
        ..Settings::new(
            format!("sqlite://{}", dir.join("test.db").display()),
            Some(model_path),
            vec!["wk".into()],
            vec!["ak".into()],
        )
    };
    adjust(&mut settings);
    let clock = Arc::new(ManualClock::new(parse_timestamp(T0).unwrap()));
    let app = App::start(settings, clock.clone()).unwrap();
    let router = leadscore_http::router(Arc::clone(&app));
    Server { app, router, clock, _dir: tempfile::tempdir().unwrap() }
}

pub fn start() -> Server {
    start_with(None, MODEL)
}

pub fn basic(key: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

impl Server {
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value, headers)
    }

    pub async fn ingest(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, basic("wk"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (s, v, _) = self.send(request).await;
        (s, v)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path).header(header::AUTHORIZATION, "Bearer ak").body(Body::empty()).unwrap();
        let (s, v, _) = self.send(request).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let request =
            Request::post(path).header(header::AUTHORIZATION, "Bearer ak").body(Body::from(body.to_owned())).unwrap();
        let (s, v, _) = self.send(request).await;
        (s, v)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::delete(path).header(header::AUTHORIZATION, "Bearer ak").body(Body::empty()).unwrap();
        let (s, v, _) = self.send(request).await;
        (s, v)
    }

    /// Runs store work off the async thread (the PostgreSQL driver blocks on its own runtime).
    pub async fn store<T: Send + 'static>(&self, f: impl FnOnce(&leadscore_store::Store) -> T + Send + 'static) -> T {
        let app = Arc::clone(&self.app);
        tokio::task::spawn_blocking(move || f(app.store())).await.unwrap()
    }

    pub async fn lead(&self, id: &str) -> Value {
        let (status, lead) = self.get(&format!("/api/leads/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        lead
    }
}

/// The session cookie (`name=value`) a response sets.
pub fn cookie_of(headers: &axum::http::HeaderMap) -> String {
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Logs in to the dashboard with an API key, as a browser on the server's own origin would.
pub async fn login(s: &Server, key: &str) -> (StatusCode, axum::http::HeaderMap) {
    let request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .body(Body::from(format!("api_key={key}")))
        .unwrap();
    let (status, _, headers) = s.send(request).await;
    (status, headers)
}

/// A dashboard page as the session with `cookie` sees it.
pub async fn page(s: &Server, cookie: &str, path: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    let request = Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
    let (status, body, headers) = s.send(request).await;
    (status, body.as_str().unwrap_or_default().to_owned(), headers)
}

/// Posts a dashboard form (as a browser on the server's own origin, unless `origin` says
/// otherwise); returns the status.
pub async fn form_post(s: &Server, cookie: &str, path: &str, origin: Option<&str>, form: &str) -> StatusCode {
    form_submit(s, cookie, path, origin, form).await.0
}

/// Posts a dashboard form; returns the status, the page and the headers.
pub async fn form_submit(
    s: &Server,
    cookie: &str,
    path: &str,
    origin: Option<&str>,
    form: &str,
) -> (StatusCode, String, axum::http::HeaderMap) {
    let mut request = Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let (status, body, headers) = s.send(request.body(Body::from(form.to_owned())).unwrap()).await;
    (status, body.as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()), headers)
}

/// The CSRF token of a dashboard page's forms.
pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}
