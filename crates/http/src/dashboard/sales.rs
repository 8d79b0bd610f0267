//! Sales' pages: "call now" (the model's highest stage first, then by total, with grades,
//! trends and the top reasons) and a page per lead (scores, reasons, events, history).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use minijinja::{Value as Jv, context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use leadscore_core::CheckedModel;
use leadscore_core::time::{self, Millis};
use leadscore_report::{charts, format_points, percent_encode, top_reasons};
use leadscore_service::App;
use leadscore_service::leads::{CallList, ContributionView, LeadId, LeadSort, ScorePoint};
use leadscore_service::sessions::Session;

use super::{page_error, render_page, stage_class};
use crate::routes::blocking;
use crate::routes::leads::ListQuery;

#[derive(Serialize)]
struct Reason {
    rule: String,
    points: f64,
    sign: &'static str,
    abs: String,
}

/// The `n` contributions with the most points either way, in plain words.
fn reasons(contributions: &[ContributionView], n: usize) -> Vec<Reason> {
    top_reasons(contributions.iter().map(|c| (c.rule.as_str(), c.points)), n)
        .into_iter()
        .map(|(rule, points)| Reason {
            sign: if points > 0.0 { "+" } else { "−" },
            abs: reading_points(points.abs()),
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
    // Segment's reserved traits: `firstName`/`lastName`, else the full `name`.
    let name = traits["name"].as_str().map(str::trim).filter(|n| !n.is_empty());
    match (full.is_empty(), name) {
        (false, _) => full,
        (true, Some(name)) => name.to_owned(),
        (true, None) => traits["email"].as_str().map_or_else(|| id.to_owned(), str::to_owned),
    }
}

/// How long ago `at` was, for people: `just now`, `5 minutes ago`, `3 hours ago`, `2 days ago`,
/// `4 months ago` (the exact time stays in the page, as a tooltip).
fn relative(at: Millis, now: Millis) -> String {
    let seconds = (now - at) / 1000;
    if seconds < 0 {
        return "in the future".to_owned();
    }
    let (n, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        2_592_000..31_536_000 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Points for reading in a ledger: one decimal at most, none when whole (`36.6`, `-10`).
fn reading_points(p: f64) -> String {
    let r = (p * 10.0).round() / 10.0;
    if r.fract() == 0.0 { format!("{r:.0}") } else { format!("{r:.1}") }
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
pub struct LeadsQuery {
    q: Option<String>,
    stage: Option<String>,
    grade: Option<String>,
    account: Option<String>,
    owner: Option<String>,
    cursor: Option<String>,
}

pub async fn leads_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Query(query): Query<LeadsQuery>,
) -> Response {
    let list = ListQuery {
        stage: query.stage.clone(),
        grade: query.grade.clone(),
        account: query.account.clone(),
        q: query.q.clone(),
        owner: query.owner.clone(),
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
    let active = app.model();
    let model = &active.model;
    // Who came into the model's highest stage in the last day, and the owners to filter by.
    let top = model.stages.last().map(|s| s.name.clone());
    let since = app.clock.now() - time::MS_PER_DAY;
    let app2 = Arc::clone(&app);
    let found = blocking(move || {
        let list = app2.call_list(&request)?;
        let entered = match &top {
            Some(stage) => app2.entered_stage(stage, since, 5)?,
            None => (0, Vec::new()),
        };
        Ok((list, entered, app2.owners()?))
    })
    .await;
    let (CallList { page, trends }, (entered_count, entered), owners) = match found {
        Ok(x) => x,
        Err(e) => return page_error(&session, e),
    };
    let now = app.clock.now();
    let owner_trait = app.settings.owner_trait.as_str();
    let entered: Vec<Jv> = entered
        .iter()
        .map(|e| {
            let traits = Value::Object(e.traits.clone());
            context! {
                url => percent_encode(&e.id), name => name_of(&e.id, &traits), total => reading_points(e.total),
                ago => relative(e.at, now),
            }
        })
        .collect();
    // A column per shadow model: its live total and stage beside the active one's.
    let shadows = app.shadows();
    let shadow_heads: Vec<Jv> =
        shadows.iter().map(|s| context! { version => s.version, name => s.model.name }).collect();
    let rows: Vec<Jv> = page
        .leads
        .iter()
        .map(|l| {
            let traits = Value::Object(l.traits.clone().unwrap_or_default());
            let shadow_cells: Vec<Jv> = shadows
                .iter()
                .map(|m| match l.shadows.iter().find(|s| s.version == m.version) {
                    Some(s) => context! { total => format_points(s.total), stage => s.stage },
                    None => context! { total => "—", stage => "" },
                })
                .collect();
            context! {
                id => l.id,
                name => name_of(&l.id, &traits),
                company => traits["company"].as_str().or(traits["company_name"].as_str()).unwrap_or(""),
                stage => l.stage,
                stage_class => stage_class(model, &l.stage),
                grade => l.grade,
                total => format_points(l.total),
                trend => sparkline(trends.get(&l.id).map_or(&[][..], Vec::as_slice)),
                reasons => reasons(l.contributions.as_deref().unwrap_or_default(), 3),
                shadows => shadow_cells,
                owner => traits[owner_trait].as_str().map(str::to_owned).or_else(|| {
                    traits.get(owner_trait).filter(|v| !v.is_null()).map(Value::to_string)
                }),
            }
        })
        .collect();
    let mut stages: Vec<String> = model.stages.iter().rev().map(|s| s.name.clone()).collect();
    stages.extend(["lead", "customer", "lost", "disqualified"].map(String::from));
    let next = page.next_cursor.map(|c| {
        let mut q = format!("cursor={c}");
        for (k, v) in [
            ("q", &query.q),
            ("stage", &query.stage),
            ("grade", &query.grade),
            ("account", &query.account),
            ("owner", &query.owner),
        ] {
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
            nav => "sales", leads => rows, stages => stages, next => next, shadows => shadow_heads,
            entered => entered, entered_count => entered_count, top => model.stages.last().map(|s| s.name.clone()),
            owners => owners.iter().map(|(o, n)| context! { name => o, leads => n }).collect::<Vec<_>>(),
            owner => query.owner.clone().unwrap_or_default(),
            q => query.q.unwrap_or_default(), stage => query.stage.unwrap_or_default(),
            grade => query.grade.unwrap_or_default(), account => query.account.unwrap_or_default(),
        },
    )
}

/// Total over time (replayed), with each stage change marked.
fn history_chart(model: &CheckedModel, points: &[ScorePoint]) -> String {
    const W: f64 = 560.0;
    const H: f64 = 200.0;
    const L: f64 = 44.0;
    const B: f64 = 28.0;
    if points.is_empty() {
        return "<p class=\"muted\">No history yet.</p>".to_owned();
    }
    let (t0, t1) = (points[0].at, points[points.len() - 1].at.max(points[0].at + 1));
    let lo = points.iter().map(|p| p.total).fold(0.0_f64, f64::min);
    let hi = points.iter().map(|p| p.total).fold(1.0_f64, f64::max);
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
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            path.push(format!("{:.1},{:.1}", x(p.at), y(points[i - 1].total)));
        }
        path.push(format!("{:.1},{:.1}", x(p.at), y(p.total)));
    }
    let _ = write!(svg, r##"<polyline points="{}" fill="none" stroke="#2f6fde" stroke-width="2"/>"##, path.join(" "));
    let mut previous = String::new();
    for ScorePoint { at: t, total: v, stage } in points {
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

pub async fn lead_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let now = app.clock.now();
    let app2 = Arc::clone(&app);
    let found = blocking(move || app2.lead_page(&LeadId::parse(&id)?, now, 60)).await;
    let (view, series) = match found {
        Ok(x) => x,
        Err(e) => return page_error(&session, e),
    };
    let traits = Value::Object(view.traits.clone());
    let max = view.scores.values().map(|v| v.abs()).fold(1.0, f64::max);
    // A dimension whose rules give more (or less) than it shows was capped by its `max`/`min`.
    let mut from_rules: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    for c in &view.contributions {
        *from_rules.entry(c.dimension.as_str()).or_default() += c.points;
    }
    let dims: Vec<Jv> = view
        .scores
        .iter()
        .map(|(name, value)| {
            let rules = from_rules.get(name.as_str()).copied().unwrap_or(0.0);
            // (Rounded points: a few hundredths apart is no cap.)
            let capped = ((rules - value).abs() > 0.05).then(|| reading_points(rules));
            context! {
                name => name, value => reading_points(*value), negative => *value < 0.0,
                width => (100.0 * value.abs() / max).round(), capped => capped,
            }
        })
        .collect();
    let events: Vec<Jv> = view
        .events
        .iter()
        .map(|e| {
            let kind = e["type"].as_str().unwrap_or("");
            let what = match kind {
                "track" => e["event"].as_str().unwrap_or("track").to_owned(),
                "page" | "screen" => {
                    format!("Viewed {}", e["properties"]["path"].as_str().or(e["name"].as_str()).unwrap_or("a page"))
                }
                "identify" => "Identified (traits updated)".to_owned(),
                "group" => format!("Joined account {}", e["groupId"].as_str().unwrap_or("")),
                "alias" => "Alias".to_owned(),
                other => other.to_owned(),
            };
            // Details as `key: value` pairs (nested values as compact JSON), not raw JSON.
            let details: Vec<String> = e
                .get("properties")
                .or(e.get("traits"))
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => format!("{k}: {s}"),
                            other => format!("{k}: {other}"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let at = e["timestamp"].as_str().unwrap_or("");
            let ago = time::parse_timestamp(at).map(|t| relative(t, now)).unwrap_or_default();
            context! { at => at, ago => ago, what => what, details => details }
        })
        .collect();
    let active = app.model();
    let model = &active.model;
    let history: Vec<Jv> = view
        .history
        .iter()
        .rev()
        .map(|h| {
            let ago = time::parse_timestamp(&h.at).map(|t| relative(t, now)).unwrap_or_default();
            context! {
                at => h.at, ago => ago, stage => h.stage, stage_class => stage_class(model, &h.stage),
                total => reading_points(h.total), note => h.note,
            }
        })
        .collect();
    let last_contacted = view.last_contacted_at.as_deref().and_then(time::parse_timestamp).map(|t| relative(t, now));
    let ask_next = view.ask_next.as_ref().map(|a| {
        let mut what = Vec::new();
        if let Some(stage) = &a.stage {
            what.push(format!("reach {stage}"));
        }
        if let Some(grade) = &a.grade {
            what.push(format!("grade {grade}"));
        }
        context! {
            name => a.trait_name.replace('_', " "), points => reading_points(a.points), moves => what.join(" and "),
        }
    });
    let subtitle =
        [traits["title"].as_str(), traits["company"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" · ");
    let account = view.account.as_ref().map(|a| {
        let name = a.traits.get("name").and_then(Value::as_str).unwrap_or(a.id.as_str());
        context! { url => percent_encode(&a.id), name => name }
    });
    // Contact links, and the traits as a readable list (nested values as compact JSON).
    let email = traits["email"].as_str().filter(|e| e.contains('@')).map(str::to_owned);
    let phone = ["phone", "mobile", "phone_number"].iter().find_map(|k| traits[*k].as_str()).map(|p| {
        let dial: String = p.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        context! { text => p, dial => dial }
    });
    let trait_rows: Vec<Jv> = view
        .traits
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => "—".to_owned(),
                other => other.to_string(),
            };
            context! { key => k.replace('_', " "), value => text }
        })
        .collect();
    render_page(
        &session,
        "lead.html",
        context! {
            nav => "sales",
            name => name_of(&view.id, &traits),
            subtitle => subtitle,
            stage => view.stage,
            stage_class => stage_class(model, &view.stage),
            grade => view.grade,
            total => format_points(view.total),
            probability => view.probability.map(|p| format!("{:.0}%", p * 100.0)),
            dimensions => dims,
            contributions => view
                .contributions
                .iter()
                .map(|c| context! {
                    rule => c.rule, dimension => c.dimension, points => reading_points(c.points),
                    positive => c.points > 0.0, negative => c.points < 0.0,
                    matched => c.matched, last_matched_at => c.last_matched_at,
                    last_matched_ago => c.last_matched_at.as_deref().and_then(time::parse_timestamp).map(|t| relative(t, now)),
                })
                .collect::<Vec<_>>(),
            id => view.id,
            url_id => percent_encode(&view.id),
            email => email,
            phone => phone,
            outcomes => ["won", "converted", "lost", "disqualified"],
            events => events,
            history => history,
            history_chart => history_chart(model, &series),
            traits => trait_rows,
            account => account,
            quality => view.quality.iter().map(|q| context! { code => q.code, message => q.message }).collect::<Vec<_>>(),
            shadows => view.shadows.iter().map(shadow_row).collect::<Vec<_>>(),
            last_contacted => last_contacted,
            ask_next => ask_next,
        },
    )
}

#[derive(Deserialize)]
pub struct OutcomeForm {
    outcome: String,
}

/// Sales records an outcome from the lead page (a read key may: outcomes are sales' to record).
pub async fn outcome_action(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    axum::extract::Form(form): axum::extract::Form<OutcomeForm>,
) -> Response {
    let Some(kind) = leadscore_core::OutcomeKind::parse(&form.outcome) else {
        return super::sessions::forbidden("That is not an outcome.");
    };
    lead_action(app, session, id, "outcome", move |app, id, now| app.record_outcome(id, kind, now).map(|_| ())).await
}

/// Sales notes contacting the lead (a read key may).
pub async fn contacted_action(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    lead_action(app, session, id, "history", |app, id, now| app.record_contact(id, now, None).map(|_| ())).await
}

/// Runs a sales action on lead `id` now, then goes back to its page at `anchor`.
async fn lead_action(
    app: Arc<App>,
    session: Session,
    id: String,
    anchor: &str,
    work: impl FnOnce(&App, &LeadId, Millis) -> Result<(), leadscore_service::ServiceError> + Send + 'static,
) -> Response {
    use axum::response::IntoResponse;
    let now = app.clock.now();
    let target = format!("/leads/{}#{anchor}", percent_encode(&id));
    match blocking(move || work(&app, &LeadId::parse(&id)?, now)).await {
        Ok(()) => axum::response::Redirect::to(&target).into_response(),
        Err(e) => page_error(&session, e),
    }
}

/// An account: its leads' scores rolled up, its traits, and its leads (best first).
pub async fn account_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let app2 = Arc::clone(&app);
    let view = match blocking(move || app2.account_view(&id)).await {
        Ok(v) => v,
        Err(e) => return page_error(&session, e),
    };
    let active = app.model();
    let model = &active.model;
    let mut leads: Vec<_> = view.leads.iter().collect();
    leads.sort_by(|a, b| b.total.total_cmp(&a.total).then_with(|| a.id.cmp(&b.id)));
    let name = view.traits.get("name").and_then(Value::as_str).map_or_else(|| view.id.clone(), str::to_owned);
    render_page(
        &session,
        "account.html",
        context! {
            nav => "sales",
            id => view.id,
            name => name,
            aggregate => view.aggregate,
            stage => view.stage,
            stage_class => stage_class(model, &view.stage),
            total => format_points(view.total),
            dimensions => view.scores.iter().map(|(n, v)| context! { name => n, value => format_points(*v) }).collect::<Vec<_>>(),
            traits => view.traits.iter().map(|(k, v)| context! {
                key => k.replace('_', " "),
                value => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            }).collect::<Vec<_>>(),
            leads => leads.iter().map(|l| context! {
                id => l.id, url => percent_encode(&l.id), stage => l.stage, stage_class => stage_class(model, &l.stage),
                grade => l.grade, total => format_points(l.total),
            }).collect::<Vec<_>>(),
        },
    )
}

/// A lead's score under a shadow model, for its page: points by dimension and the top three
/// reasons in words.
fn shadow_row(s: &leadscore_service::leads::ShadowScoreView) -> Jv {
    let dimensions: Vec<String> = s.scores.iter().map(|(d, v)| format!("{d} {}", reading_points(*v))).collect();
    let mut reasons: Vec<&leadscore_service::leads::ContributionView> =
        s.contributions.iter().flatten().filter(|c| c.points != 0.0).collect();
    reasons.sort_by(|a, b| b.points.abs().total_cmp(&a.points.abs()));
    let reasons: Vec<String> =
        reasons.iter().take(3).map(|c| format!("{} ({})", c.rule, reading_points(c.points))).collect();
    context! {
        version => s.version, model => s.model, total => format_points(s.total), stage => s.stage,
        grade => s.grade, dimensions => dimensions.join(" · "), reasons => reasons.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_how_long_ago() {
        let now = 1_700_000_000_000;
        assert_eq!(relative(now - 20_000, now), "just now");
        assert_eq!(relative(now - 60_000, now), "1 minute ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 hours ago");
        assert_eq!(relative(now - 2 * 86_400_000, now), "2 days ago");
        assert_eq!(relative(now - 100 * 86_400_000, now), "3 months ago");
        assert_eq!(relative(now + 5_000, now), "in the future");
    }

    #[test]
    fn reasons_are_the_biggest_contributions_either_way() {
        let c: Vec<ContributionView> = [("A", 5.0), ("B", -20.0), ("C", 30.0), ("D", 0.0)]
            .into_iter()
            .map(|(rule, points)| ContributionView {
                rule: rule.to_owned(),
                dimension: "fit".to_owned(),
                points,
                matched: 1,
                last_matched_at: None,
            })
            .collect();
        let r = reasons(&c, 3);
        let words: Vec<String> = r.iter().map(|r| format!("{}{} {}", r.sign, r.abs, r.rule)).collect();
        assert_eq!(words, ["+30 C", "−20 B", "+5 A"]);
    }
}
