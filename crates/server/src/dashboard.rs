//! The dashboard (SPEC §6.5), served at `/` by the same process: server-rendered HTML from
//! templates compiled into the binary (`templates/`), charts as inline SVG, no scripts. Sales get
//! "call now" (SQL first, then by total) with grades, trends and the top reasons, and a page per
//! lead; marketing gets the active model, score distributions, conversion by score band, the
//! stage funnel, the latest backtest and model versions. Login with an API key sets an HttpOnly,
//! SameSite=Lax session cookie (sessions live in memory: a restart logs everyone out).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use axum::Form;
use axum::Router;
use axum::extract::{Extension, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value as Jv, context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use leadscore_core::CheckedModel;
use leadscore_core::model::RuleKind;
use leadscore_core::time::{self, Duration, Millis};
use leadscore_store::{LeadSort, SessionRow};

use crate::app::App;
use crate::auth::{Role, fingerprint, random_token, same_secret, token_digest};
use crate::error::{ApiError, Code};
use crate::http::api::{ListQuery, blocking, lead_view, list_page, run_backtest, score_series};
use crate::http::client_origin;
use leadscore_report::charts;
use leadscore_report::{format_points, percent_encode, top_reasons};

const COOKIE: &str = "leadscore_session";
const SESSION_MS: Millis = 12 * 3_600_000;

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("login.html", include_str!("../templates/login.html")),
            ("leads.html", include_str!("../templates/leads.html")),
            ("lead.html", include_str!("../templates/lead.html")),
            ("marketing.html", include_str!("../templates/marketing.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!("template {name}: {e:#}");
            }
        }
        env
    })
}

fn render(name: &str, ctx: Jv) -> Response {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal("template", &e).into_response(),
    }
}

// ---- sessions ------------------------------------------------------------------------------------------

/// A logged-in user, put into every page request by [`require_session`].
#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    /// The token every form must carry (checked on each POST).
    pub csrf: String,
}

impl Session {
    fn admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Renders a page for a logged-in user (the header's log-out form carries the CSRF token; admin
/// actions show only to admins).
fn render_page(session: &Session, name: &str, ctx: Jv) -> Response {
    render(name, context! { csrf => session.csrf, admin => session.admin(), ..ctx })
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The session of this request's cookie: stored (so it survives restarts and is shared by every
/// process on one database), not expired, and its key still configured with its role.
async fn session_of(app: &Arc<App>, headers: &HeaderMap) -> Option<Session> {
    let token = token_of(headers)?;
    let app = Arc::clone(app);
    let found = blocking(move || {
        let now = app.clock.now();
        let row = app.store.read(|tx| tx.session(&token_digest(&token), now))?;
        Ok(row.and_then(|row| {
            let role = Role::parse(&row.role)?;
            app.keys.has_fingerprint(&row.key_fingerprint, role).then_some(Session { role, csrf: row.csrf })
        }))
    })
    .await;
    found.ok().flatten()
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

fn forbidden(why: &str) -> Response {
    let mut r = render("login.html", context! { error => why });
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

/// Pages need a session; a POST also needs our own origin and the session's CSRF token.
async fn require_session(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
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

async fn root(State(app): State<Arc<App>>, headers: HeaderMap) -> Redirect {
    Redirect::to(if session_of(&app, &headers).await.is_some() { "/leads" } else { "/login" })
}

async fn login_page() -> Response {
    render("login.html", context! { nav => Jv::from(()) })
}

#[derive(Deserialize)]
struct LoginForm {
    api_key: String,
}

fn cookie(app: &App, headers: &HeaderMap, peer: Option<std::net::IpAddr>, value: &str, max_age: Millis) -> HeaderValue {
    let secure = if client_origin(&app.settings, headers, peer).scheme == "https" { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age / 1000);
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("leadscore_session=; Max-Age=0"))
}

async fn login(State(app): State<Arc<App>>, request: Request) -> Response {
    let peer = peer_of(&request);
    let headers = request.headers().clone();
    if !same_origin(&app, &headers, peer) {
        return forbidden("This form was sent from another site; it was refused.");
    }
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return forbidden("The form could not be read.");
    };
    let key = form.api_key.trim().to_owned();
    let refuse = |message: &str| {
        let mut r = render("login.html", context! { error => message });
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r
    };
    let role = match app.keys.role_of(&key) {
        Some(role @ (Role::Read | Role::Admin)) => role,
        Some(Role::Write) => return refuse("That is a write key (for sending events); log in with an API key."),
        None => return refuse("That is not an API key of this server."),
    };
    let (Ok(token), Ok(csrf)) = (random_token(32), random_token(16)) else {
        return page_error_plain(ApiError::internal("login", &"the system random number generator failed"));
    };
    let now = app.clock.now();
    let row = SessionRow {
        token_digest: token_digest(&token),
        role: role.as_str().to_owned(),
        key_fingerprint: fingerprint(&key),
        csrf,
        created_at: now,
        expires_at: now + SESSION_MS,
    };
    let app2 = Arc::clone(&app);
    let stored = blocking(move || {
        Ok(app2.store.write(|tx| {
            tx.purge_sessions(now)?;
            tx.insert_session(&row)
        })?)
    })
    .await;
    if let Err(e) = stored {
        return page_error_plain(e);
    }
    let mut r = Redirect::to("/leads").into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&app, &headers, peer, &token, SESSION_MS));
    r
}

async fn logout(State(app): State<Arc<App>>, request: Request) -> Response {
    let peer = peer_of(&request);
    let headers = request.headers().clone();
    if let Some(token) = token_of(&headers) {
        let app2 = Arc::clone(&app);
        let _ = blocking(move || Ok(app2.store.write(|tx| tx.delete_session(&token_digest(&token)))?)).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&app, &headers, peer, "", 0));
    r
}

fn page_error(session: &Session, e: ApiError) -> Response {
    let status = e.status;
    let mut r = render_page(session, "login.html", context! { nav => "sales", error => e.message });
    *r.status_mut() = status;
    r
}

fn page_error_plain(e: ApiError) -> Response {
    let status = e.status;
    let mut r = render("login.html", context! { error => e.message });
    *r.status_mut() = status;
    r
}

// ---- sales -----------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Reason {
    rule: String,
    points: f64,
    sign: &'static str,
    abs: String,
}

/// The `n` contributions with the most points either way, in plain words.
fn reasons(contributions: &Value, n: usize) -> Vec<Reason> {
    top_reasons(contributions, n)
        .into_iter()
        .map(|(rule, points)| Reason {
            sign: if points > 0.0 { "+" } else { "−" },
            abs: format_points(points.abs()),
            rule,
            points,
        })
        .collect()
}

/// A lead's display name: first and last name, else e-mail, else id.
fn name_of(id: &str, traits: &Value) -> String {
    let first = traits["first_name"].as_str().or(traits["firstName"].as_str()).unwrap_or("");
    let last = traits["last_name"].as_str().or(traits["lastName"].as_str()).unwrap_or("");
    let full = format!("{first} {last}").trim().to_owned();
    if !full.is_empty() { full } else { traits["email"].as_str().map_or_else(|| id.to_owned(), str::to_owned) }
}

/// A small inline line of totals over time.
fn sparkline(points: &[f64]) -> String {
    if points.len() < 2 {
        return String::new();
    }
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let span = (hi - lo).max(1.0);
    let step = 80.0 / (points.len() - 1) as f64;
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, 22.0 - 20.0 * (v - lo) / span))
        .collect();
    let color = if points.last() >= points.first() { "#0e9f6e" } else { "#c81e1e" };
    format!(
        r#"<svg class="trend" viewBox="0 0 80 24" width="80" height="24" role="img" aria-label="score trend"><polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>"#,
        path.join(" ")
    )
}

#[derive(Deserialize, Default)]
struct LeadsQuery {
    q: Option<String>,
    stage: Option<String>,
    grade: Option<String>,
    account: Option<String>,
    cursor: Option<String>,
}

async fn leads_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Query(query): Query<LeadsQuery>,
) -> Response {
    let list = ListQuery {
        stage: query.stage.clone(),
        grade: query.grade.clone(),
        account: query.account.clone(),
        q: query.q.clone(),
        sort: Some("call".to_owned()),
        limit: Some("50".to_owned()),
        cursor: query.cursor.clone(),
        include: Some("contributions,traits".to_owned()),
        min_total: None,
    };
    let request = match list.parse() {
        Ok(r) => r,
        Err(e) => return page_error(&session, e),
    };
    debug_assert_eq!(request.sort, LeadSort::CallNow);
    let app2 = Arc::clone(&app);
    let result = blocking(move || {
        Ok(app2.store.read(|tx| {
            let page = list_page(tx, &request)?;
            let ids: Vec<String> = page.leads.iter().map(|l| l.id.clone()).collect();
            let mut trends: HashMap<String, Vec<f64>> = HashMap::new();
            for (id, h) in tx.histories_of(&ids)? {
                trends.entry(id).or_default().push(h.total);
            }
            Ok((page, trends))
        })?)
    })
    .await;
    let (page, trends) = match result {
        Ok(x) => x,
        Err(e) => return page_error(&session, e),
    };
    let active = app.model();
    let model = &active.model;
    let rows: Vec<Jv> = page
        .leads
        .iter()
        .map(|l| {
            let traits = l.traits.clone().unwrap_or(Value::Null);
            context! {
                id => l.id,
                name => name_of(&l.id, &traits),
                company => traits["company"].as_str().or(traits["company_name"].as_str()).unwrap_or(""),
                stage => l.stage,
                stage_class => stage_class(model, &l.stage),
                grade => l.grade,
                total => format_points(l.total),
                trend => sparkline(trends.get(&l.id).map_or(&[][..], Vec::as_slice)),
                reasons => reasons(l.contributions.as_ref().unwrap_or(&Value::Null), 3),
            }
        })
        .collect();
    let mut stages: Vec<String> = model.stages.iter().rev().map(|s| s.name.clone()).collect();
    stages.extend(["lead", "customer", "lost", "disqualified"].map(String::from));
    let next = page.next_cursor.map(|c| {
        let mut q = format!("cursor={c}");
        for (k, v) in [("q", &query.q), ("stage", &query.stage), ("grade", &query.grade), ("account", &query.account)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                let _ = write!(q, "&{k}={}", percent_encode(v));
            }
        }
        q
    });
    render_page(
        &session,
        "leads.html",
        context! {
            nav => "sales", leads => rows, stages => stages, next => next,
            q => query.q.unwrap_or_default(), stage => query.stage.unwrap_or_default(),
            grade => query.grade.unwrap_or_default(), account => query.account.unwrap_or_default(),
        },
    )
}

/// The badge class of a stage: the model's highest stage, the one below it, a customer, a lost
/// or disqualified lead; other stages (and `lead`) look alike. Stage names are the model's own.
fn stage_class(model: &CheckedModel, stage: &str) -> &'static str {
    match stage {
        "customer" => "customer",
        "lost" | "disqualified" => "bad",
        _ if model.stages.is_empty() => "",
        _ => match model.stage_rank(stage) {
            0 => "top",
            1 if model.stages.len() > 1 => "next",
            _ => "",
        },
    }
}

/// Total over time (replayed), with each stage change marked.
fn history_chart(model: &CheckedModel, points: &[(Millis, f64, String)]) -> String {
    const W: f64 = 560.0;
    const H: f64 = 200.0;
    const L: f64 = 44.0;
    const B: f64 = 28.0;
    if points.is_empty() {
        return "<p class=\"muted\">No history yet.</p>".to_owned();
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0.max(points[0].0 + 1));
    let lo = points.iter().map(|p| p.1).fold(0.0_f64, f64::min);
    let hi = points.iter().map(|p| p.1).fold(1.0_f64, f64::max);
    let x = |t: Millis| L + (W - L - 10.0) * (t - t0) as f64 / (t1 - t0) as f64;
    let y = |v: f64| 10.0 + (H - B - 10.0) * (1.0 - (v - lo) / (hi - lo));
    let mut svg = String::new();
    for tick in [lo, (lo + hi) / 2.0, hi] {
        let _ = write!(
            svg,
            r##"<line x1="{L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e4e7eb"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - 10.0,
            L - 4.0,
            y(tick) + 4.0,
            format_points(tick),
            yy = y(tick)
        );
    }
    // A step line: a total holds until the next change.
    let mut path = Vec::new();
    for (i, (t, v, _)) in points.iter().enumerate() {
        if i > 0 {
            path.push(format!("{:.1},{:.1}", x(*t), y(points[i - 1].1)));
        }
        path.push(format!("{:.1},{:.1}", x(*t), y(*v)));
    }
    let _ = write!(svg, r##"<polyline points="{}" fill="none" stroke="#2f6fde" stroke-width="2"/>"##, path.join(" "));
    let mut previous = String::new();
    for (t, v, stage) in points {
        if *stage != previous {
            let color = match stage_class(model, stage) {
                "top" => "#0e9f6e",
                "next" => "#d97706",
                "customer" => "#2f6fde",
                "bad" => "#c81e1e",
                _ => "#9aa5b1",
            };
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{} {}: {}</title></circle>"#,
                x(*t),
                y(*v),
                charts::escape(&time::format_timestamp(*t)),
                charts::escape(stage),
                format_points(*v)
            );
            previous.clone_from(stage);
        }
    }
    let day = |t: Millis| time::format_timestamp(t).chars().take(10).collect::<String>();
    let _ = write!(
        svg,
        r#"<text x="{L}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
        H - 8.0,
        day(t0),
        W - 10.0,
        H - 8.0,
        day(t1)
    );
    format!(
        r#"<figure><svg viewBox="0 0 {W} {H}" role="img" aria-label="score history">{svg}</svg><figcaption>Total and stage over time (replayed with the current model; dots mark stage changes)</figcaption></figure>"#
    )
}

async fn lead_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let now = app.clock.now();
    let app2 = Arc::clone(&app);
    let id2 = id.clone();
    let view = blocking(move || {
        let found = app2.store.read(|tx| {
            let Some(view) = lead_view(&app2, tx, &id2, now)? else { return Ok(None) };
            Ok(Some((view, score_series(&app2, tx, &id2, now, 60)?)))
        })?;
        Ok(found)
    })
    .await;
    let (view, series) = match view {
        Ok(Some((v, series))) => (v, series),
        Ok(None) => {
            return page_error(&session, ApiError::new(Code::LeadNotFound, format!("no lead with id `{id}`")));
        }
        Err(e) => return page_error(&session, e),
    };
    let traits = view["traits"].clone();
    let dims: Vec<Jv> = view["scores"]
        .as_object()
        .map(|m| {
            let max = m.values().filter_map(Value::as_f64).map(f64::abs).fold(1.0, f64::max);
            m.iter()
                .map(|(name, v)| {
                    let value = v.as_f64().unwrap_or(0.0);
                    context! { name => name, value => value, width => (100.0 * value.abs() / max).round() }
                })
                .collect()
        })
        .unwrap_or_default();
    let events: Vec<Jv> = view["events"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    let kind = e["type"].as_str().unwrap_or("");
                    let what = match kind {
                        "track" => e["event"].as_str().unwrap_or("track").to_owned(),
                        "page" | "screen" => {
                            format!(
                                "Viewed {}",
                                e["properties"]["path"].as_str().or(e["name"].as_str()).unwrap_or("a page")
                            )
                        }
                        "identify" => "Identified (traits updated)".to_owned(),
                        "group" => format!("Joined account {}", e["groupId"].as_str().unwrap_or("")),
                        "alias" => "Alias".to_owned(),
                        other => other.to_owned(),
                    };
                    let details = e.get("properties").or(e.get("traits")).map(Value::to_string).unwrap_or_default();
                    context! { at => e["timestamp"].as_str().unwrap_or(""), what => what, details => details }
                })
                .collect()
        })
        .unwrap_or_default();
    let active = app.model();
    let model = &active.model;
    let history: Vec<Jv> = view["history"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .rev()
                .map(|h| {
                    let stage = h["stage"].as_str().unwrap_or("");
                    context! { at => h["at"], stage => stage, stage_class => stage_class(model, stage), total => h["total"] }
                })
                .collect()
        })
        .unwrap_or_default();
    let subtitle = [
        traits["title"].as_str(),
        traits["company"].as_str(),
        view["account"]["id"].as_str().map(|a| a.trim()),
        traits["email"].as_str(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    render_page(
        &session,
        "lead.html",
        context! {
            nav => "sales",
            name => name_of(&id, &traits),
            subtitle => subtitle,
            stage => view["stage"].as_str().unwrap_or(""),
            stage_class => stage_class(model, view["stage"].as_str().unwrap_or("")),
            grade => view["grade"].as_str(),
            total => view["total"].as_f64().map(format_points),
            probability => view["probability"].as_f64().map(|p| format!("{:.0}%", p * 100.0)),
            dimensions => dims,
            contributions => Jv::from_serialize(&view["contributions"]),
            events => events,
            history => history,
            history_chart => history_chart(model, &series),
            traits => serde_json::to_string_pretty(&traits).unwrap_or_default(),
        },
    )
}

// ---- marketing -------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct MarketingQuery {
    error: Option<String>,
}

/// A rule's options in words (`limit 1`, `within 30d`, …).
fn rule_options(kind: &RuleKind) -> String {
    let mut parts = Vec::new();
    match kind {
        RuleKind::Trait { .. } => {}
        RuleKind::Event { limit, within, per_day, max_points, half_life, .. } => {
            if let Some(l) = limit {
                parts.push(format!("at most {l} times"));
            }
            if let Some(w) = within {
                parts.push(format!("within {w}"));
            }
            if let Some(p) = per_day {
                parts.push(format!("{p} per day"));
            }
            if let Some(m) = max_points {
                parts.push(format!("capped at {m} points"));
            }
            if let Some(h) = half_life {
                parts.push(format!("half-life {h}"));
            }
        }
        RuleKind::Count { at_least, within, .. } => parts.push(format!("at least {at_least} times within {within}")),
        RuleKind::Inactivity { period, .. } => parts.push(format!("when none for {period}")),
    }
    parts.join(", ")
}

async fn marketing_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Query(query): Query<MarketingQuery>,
) -> Response {
    let app2 = Arc::clone(&app);
    let data = blocking(move || {
        Ok(app2.store.read(|tx| {
            Ok((tx.count_leads()?, tx.score_sample(20_000)?, tx.all_outcomes()?, tx.stages_reached()?, tx.models()?))
        })?)
    })
    .await;
    let (lead_count, sample, outcomes, reached, models) = match data {
        Ok(d) => d,
        Err(e) => return page_error(&session, e),
    };
    let active = app.model();
    let model = &active.model;
    // Current stages.
    let mut now_in: HashMap<&str, usize> = HashMap::new();
    for (_, _, _, stage) in &sample {
        *now_in.entry(stage.as_str()).or_default() += 1;
    }
    // Funnel: every lead; those that ever reached each stage (in model order); customers.
    let converted: std::collections::HashSet<&str> = outcomes
        .iter()
        .filter(|o| {
            leadscore_core::OutcomeKind::parse(&o.outcome).is_some_and(leadscore_core::OutcomeKind::is_conversion)
        })
        .map(|o| o.lead_id.as_str())
        .collect();
    let stage_names: Vec<&str> = model.stages.iter().map(|s| s.name.as_str()).collect();
    let mut reached_by: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for (lead, stage) in &reached {
        // Reaching a later stage means passing the earlier ones (funnel semantics).
        if let Some(i) = stage_names.iter().position(|s| s == stage) {
            for s in &stage_names[..=i] {
                reached_by.entry(s).or_default().insert(lead.as_str());
            }
        }
    }
    let mut funnel: Vec<(String, usize)> = vec![("lead".to_owned(), usize::try_from(lead_count).unwrap_or(0))];
    for s in &stage_names {
        funnel.push(((*s).to_owned(), reached_by.get(s).map_or(0, std::collections::HashSet::len)));
    }
    funnel.push(("customer".to_owned(), converted.len()));
    let funnel_rows: Vec<Jv> = funnel
        .iter()
        .enumerate()
        .map(|(i, (stage, count))| {
            let rate = if i == 0 {
                String::new()
            } else {
                let before = funnel[i - 1].1;
                if before == 0 { "—".to_owned() } else { format!("{:.0}%", 100.0 * *count as f64 / before as f64) }
            };
            context! { stage => stage, stage_class => stage_class(model, stage), count => count, rate => rate }
        })
        .collect();
    // Distributions per dimension and conversion by score band.
    let mut per_dim: Vec<(String, Vec<f64>)> = model.dimensions.iter().map(|d| (d.name.clone(), Vec::new())).collect();
    for (_, scores, _, _) in &sample {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(scores) {
            for (name, values) in &mut per_dim {
                if let Some(v) = map.get(name.as_str()).and_then(Value::as_f64) {
                    values.push(v);
                }
            }
        }
    }
    let distributions: Vec<String> = per_dim
        .into_iter()
        .map(|(name, values)| {
            charts::histogram(&format!("{name} score distribution"), &[(name.clone(), values)], 20, &name)
        })
        .collect();
    let with_outcome: std::collections::HashSet<&str> = outcomes.iter().map(|o| o.lead_id.as_str()).collect();
    let mut scored: Vec<(f64, bool)> = sample
        .iter()
        .filter(|(id, ..)| with_outcome.contains(id.as_str()))
        .map(|(id, _, total, _)| (*total, converted.contains(id.as_str())))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let bands: Vec<(String, f64)> = if scored.is_empty() {
        Vec::new()
    } else {
        let size = scored.len().div_ceil(5);
        scored
            .chunks(size)
            .map(|c| {
                let (lo, hi) = (c[c.len() - 1].0, c[0].0);
                let rate = c.iter().filter(|x| x.1).count() as f64 / c.len() as f64;
                (format!("{}–{}", format_points(lo), format_points(hi)), rate)
            })
            .collect()
    };
    let conversion_chart = charts::bar_chart(
        "Conversion by current total (leads with an outcome, fifths)",
        &bands,
        "total",
        "converted",
        true,
    );
    // The latest backtest.
    let backtest = app.latest_backtest.lock().ok().and_then(|b| b.clone()).and_then(|(at, report)| {
        let r = report["models"].get(0)?.clone();
        let deciles: Vec<(String, f64)> = r["deciles"]
            .as_array()?
            .iter()
            .map(|d| (d["band"].to_string(), d["conversion_rate"].as_f64().unwrap_or(0.0)))
            .collect();
        let gains: Vec<(f64, f64)> =
            r["gains"].as_array()?.iter().filter_map(|g| Some((g.get(0)?.as_f64()?, g.get(1)?.as_f64()?))).collect();
        let lifts: Vec<(String, f64)> = r["rules"]
            .as_array()?
            .iter()
            .filter_map(|x| Some((x["rule"].as_str()?.to_owned(), x["lift"].as_f64()?)))
            .collect();
        Some(context! {
            model => r["model"].as_str().unwrap_or(""),
            at => time::format_timestamp(at),
            auc => r["auc"].as_f64().map_or("—".to_owned(), |a| format!("{a:.3}")),
            leads => r["counts"]["leads"].as_u64(),
            converted => r["counts"]["converted"].as_u64(),
            charts => vec![
                charts::bar_chart("Conversion by score decile (1 = highest)", &deciles, "decile", "converted", true),
                charts::line_chart("Cumulative gains", &[("model".to_owned(), gains)], "share of leads called", "share of conversions found"),
                charts::hbar_chart("Lift per rule (conversion with ÷ without)", &lifts, "lift", 1.0),
            ],
        })
    });
    let rules: Vec<Jv> = model
        .rules
        .iter()
        .map(|r| {
            context! {
                name => r.name, dimension => model.dimensions[r.dimension].name, points => r.points,
                when => r.kind.condition().source(), options => rule_options(&r.kind),
            }
        })
        .collect();
    let stages: Vec<Jv> = model.stages.iter().map(|s| context! { name => s.name, when => s.when.source() }).collect();
    let model_rows: Vec<Jv> = models
        .iter()
        .rev()
        .map(|m| context! { version => m.version, name => m.name, created_at => time::format_timestamp(m.created_at), active => m.active })
        .collect();
    render_page(
        &session,
        "marketing.html",
        context! {
            nav => "marketing",
            error => query.error,
            counts => context! {
                leads => lead_count,
                stages => model
                    .stages
                    .iter()
                    .rev()
                    .map(|s| context! { name => s.name, count => now_in.get(s.name.as_str()).copied().unwrap_or(0) })
                    .collect::<Vec<_>>(),
                customer => converted.len(),
            },
            funnel => funnel_rows,
            distributions => distributions,
            conversion_chart => conversion_chart,
            backtest => backtest,
            models => model_rows,
            rescore => app.rescore.lock().ok().map(|p| Jv::from_serialize(&*p)),
            model => context! { name => model.name, description => model.description, rules => rules, stages => stages },
        },
    )
}

async fn backtest_action(State(app): State<Arc<App>>, Extension(session): Extension<Session>) -> Response {
    if !session.admin() {
        return forbidden("Running a backtest needs an admin key.");
    }
    let now = app.clock.now();
    let result = blocking(move || run_backtest(&app, "", now, Duration::from_millis(86_400_000))).await;
    match result {
        Ok(_) => Redirect::to("/marketing#backtest").into_response(),
        Err(e) => Redirect::to(&format!("/marketing?error={}", percent_encode(&e.message))).into_response(),
    }
}

async fn activate_action(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(version): Path<i64>,
) -> Response {
    if !session.admin() {
        return forbidden("Activating a model needs an admin key.");
    }
    let result = blocking(move || match app.activate(version) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::new(Code::ModelNotFound, format!("no model version {version}"))),
        Err(_) => Err(ApiError::new(Code::InvalidModel, format!("model version {version} does not check"))),
    })
    .await;
    match result {
        Ok(()) => Redirect::to("/marketing").into_response(),
        Err(e) => Redirect::to(&format!("/marketing?error={}", percent_encode(&e.message))).into_response(),
    }
}

/// The dashboard's routes.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let pages = Router::new()
        .route("/leads", get(leads_page))
        .route("/leads/{id}", get(lead_page))
        .route("/marketing", get(marketing_page))
        .route("/marketing/backtest", post(backtest_action))
        .route("/marketing/models/{version}/activate", post(activate_action))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(app, require_session));
    Router::new().route("/", get(root)).route("/login", get(login_page).post(login)).merge(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_biggest_contributions_either_way() {
        let c = serde_json::json!([{"rule": "A", "points": 5.0}, {"rule": "B", "points": -20.0}, {"rule": "C", "points": 30.0}, {"rule": "D", "points": 0.0}]);
        let r = reasons(&c, 3);
        let words: Vec<String> = r.iter().map(|r| format!("{}{} {}", r.sign, r.abs, r.rule)).collect();
        assert_eq!(words, ["+30 C", "−20 B", "+5 A"]);
    }

    #[test]
    fn every_template_compiles() {
        for name in ["base.html", "login.html", "leads.html", "lead.html", "marketing.html"] {
            assert!(templates().get_template(name).is_ok(), "{name}");
        }
        let html = templates().get_template("login.html").and_then(|t| t.render(context! { error => "<b>" }));
        assert!(html.is_ok_and(|h| h.contains("&lt;b&gt;")), "autoescaped");
    }
}
