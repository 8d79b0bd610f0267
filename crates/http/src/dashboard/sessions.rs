//! Logging in and out of the dashboard: the session cookie (HttpOnly, SameSite=Lax, `Secure` when
//! clients reach us over https), and the middleware every page goes through: a live session, and
//! on a POST our own origin and the session's CSRF token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value as Jv, context};
use serde::Deserialize;

use leadscore_core::time::Millis;
use leadscore_service::App;
use leadscore_service::auth::same_secret;
use leadscore_service::sessions::{SESSION_MS, Session};

use super::render;
use crate::error::Code;
use crate::request::client_origin;
use crate::routes::blocking;

const COOKIE: &str = "leadscore_session";

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The session of this request's cookie: stored, not expired, and its key still configured with
/// its role.
async fn session_of(app: &Arc<App>, headers: &HeaderMap) -> Option<Session> {
    let token = token_of(headers)?;
    let app = Arc::clone(app);
    blocking(move || app.session(&token)).await.ok().flatten()
}

/// Whether a POST comes from our own pages: the host (and port) of its `Origin` (or, without one,
/// of its `Referer`) must be this server's; a request with neither relies on the CSRF token alone.
/// The scheme is not compared, so a TLS proxy that does not report `X-Forwarded-Proto` still
/// works.
fn same_origin(app: &App, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> bool {
    let ours = client_origin(&app.settings, headers, peer);
    let authority_of = |url: &str| -> Option<String> {
        let (_, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Some(strip_default_port(authority).to_ascii_lowercase())
    };
    let header_text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let claimed = match (header_text(header::ORIGIN), header_text(header::REFERER)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        (None, None) => return true,
    };
    authority_of(claimed).is_some_and(|a| a == strip_default_port(&ours.authority).to_ascii_lowercase())
}

/// `host:80` and `host:443` are `host` (browsers leave default ports out of `Origin`).
fn strip_default_port(authority: &str) -> &str {
    authority.strip_suffix(":80").or_else(|| authority.strip_suffix(":443")).unwrap_or(authority)
}

fn peer_of(request: &Request) -> Option<std::net::IpAddr> {
    request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// The login page with a refusal, answered 403.
pub(super) fn forbidden(why: &str) -> Response {
    login_page_with(StatusCode::FORBIDDEN, why)
}

/// The login page with a message, answered with `status`.
fn login_page_with(status: StatusCode, message: &str) -> Response {
    let mut r = render("login.html", context! { error => message });
    *r.status_mut() = status;
    r
}

/// Pages need a session; a POST also needs our own origin and the session's CSRF token.
pub async fn require_session(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(session) = session_of(&app, request.headers()).await else {
        return Redirect::to("/login").into_response();
    };
    let mut request = request;
    if request.method() == axum::http::Method::POST {
        if !same_origin(&app, request.headers(), peer_of(&request)) {
            return forbidden("This form was sent from another site; it was refused.");
        }
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
            return forbidden("The form could not be read.");
        };
        let form: HashMap<String, String> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !form.get("csrf").is_some_and(|token| same_secret(token, &session.csrf)) {
            return forbidden("The form has expired; reload the page and try again.");
        }
        request = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

pub async fn root(State(app): State<Arc<App>>, headers: HeaderMap) -> Redirect {
    Redirect::to(if session_of(&app, &headers).await.is_some() { "/leads" } else { "/login" })
}

pub async fn login_page() -> Response {
    render("login.html", context! { nav => Jv::from(()) })
}

#[derive(Deserialize)]
pub struct LoginForm {
    api_key: String,
}

fn cookie(app: &App, headers: &HeaderMap, peer: Option<std::net::IpAddr>, value: &str, max_age: Millis) -> HeaderValue {
    let secure = if client_origin(&app.settings, headers, peer).scheme == "https" { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age / 1000);
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("leadscore_session=; Max-Age=0"))
}

pub async fn login(State(app): State<Arc<App>>, request: Request) -> Response {
    let peer = peer_of(&request);
    let headers = request.headers().clone();
    if !same_origin(&app, &headers, peer) {
        return forbidden("This form was sent from another site; it was refused.");
    }
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return forbidden("The form could not be read.");
    };
    let key = form.api_key.trim().to_owned();
    let app2 = Arc::clone(&app);
    let token = match blocking(move || app2.open_session(&key)).await {
        Ok((token, _)) => token,
        Err(e) => {
            let message = match e.code {
                Code::WriteKeyNotAllowed => "That is a write key (for sending events); log in with an API key.",
                Code::InvalidApiKey => "That is not an API key of this server.",
                _ => return login_page_with(e.status, &e.message),
            };
            return login_page_with(StatusCode::UNAUTHORIZED, message);
        }
    };
    let mut r = Redirect::to("/leads").into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&app, &headers, peer, &token, SESSION_MS));
    r
}

pub async fn logout(State(app): State<Arc<App>>, request: Request) -> Response {
    let peer = peer_of(&request);
    let headers = request.headers().clone();
    if let Some(token) = token_of(&headers) {
        let app2 = Arc::clone(&app);
        let _ = blocking(move || app2.close_session(&token)).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&app, &headers, peer, "", 0));
    r
}
