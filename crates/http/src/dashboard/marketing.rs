//! Marketing's page: the active model, current stages, the funnel, score distributions,
//! conversion by score band, the latest backtest and model versions; and its admin actions (run a
//! backtest, activate a version).

use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value as Jv, context};
use serde::Deserialize;

use leadscore_core::model::RuleKind;
use leadscore_core::time::{self, Duration};
use leadscore_report::{charts, format_points, percent_encode};
use leadscore_service::App;
use leadscore_service::sessions::Session;

use super::sessions::forbidden;
use super::{page_error, render_page, stage_class};
use crate::routes::blocking;

#[derive(Deserialize, Default)]
pub struct MarketingQuery {
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

pub async fn marketing_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Query(query): Query<MarketingQuery>,
) -> Response {
    let app2 = Arc::clone(&app);
    let overview = match blocking(move || app2.marketing_overview()).await {
        Ok(o) => o,
        Err(e) => return page_error(&session, e),
    };
    let active = app.model();
    let model = &active.model;
    let funnel_rows: Vec<Jv> = overview
        .funnel
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let rate = match step.rate {
                _ if i == 0 => String::new(),
                Some(rate) => format!("{:.0}%", 100.0 * rate),
                None => "—".to_owned(),
            };
            context! { stage => step.stage, stage_class => stage_class(model, &step.stage), count => step.count, rate => rate }
        })
        .collect();
    let distributions: Vec<String> = overview
        .distributions
        .iter()
        .map(|(name, values)| {
            charts::histogram(&format!("{name} score distribution"), &[(name.clone(), values.clone())], 20, name)
        })
        .collect();
    let bands: Vec<(String, f64)> = overview
        .bands
        .iter()
        .map(|b| (format!("{}–{}", format_points(b.low), format_points(b.high)), b.conversion))
        .collect();
    let conversion_chart = charts::bar_chart(
        "Conversion by current total (leads with an outcome, fifths)",
        &bands,
        "total",
        "converted",
        true,
    );
    // The latest backtest.
    let backtest = app.latest_backtest().and_then(|run| {
        let r = run.models.first()?;
        let deciles: Vec<(String, f64)> = r.deciles.iter().map(|d| (d.band.to_string(), d.conversion_rate)).collect();
        let gains = r.gains.clone();
        let lifts: Vec<(String, f64)> = r.rules.iter().filter_map(|x| Some((x.rule.clone(), x.lift?))).collect();
        Some(context! {
            model => r.model,
            at => time::format_timestamp(run.ran_at),
            auc => r.auc.map_or("—".to_owned(), |a| format!("{a:.3}")),
            leads => r.counts.leads,
            converted => r.counts.converted,
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
    let model_rows: Vec<Jv> = overview
        .models
        .iter()
        .map(|m| context! { version => m.version, name => m.name, created_at => time::format_timestamp(m.created_at), active => m.active })
        .collect();
    render_page(
        &session,
        "marketing.html",
        context! {
            nav => "marketing",
            error => query.error,
            counts => context! {
                leads => overview.leads,
                stages => overview
                    .stage_counts
                    .iter()
                    .map(|(name, count)| context! { name => name, count => count })
                    .collect::<Vec<_>>(),
                customer => overview.customers,
            },
            funnel => funnel_rows,
            distributions => distributions,
            conversion_chart => conversion_chart,
            backtest => backtest,
            models => model_rows,
            rescore => Jv::from_serialize(app.rescore_progress()),
            model => context! { name => model.name, description => model.description, rules => rules, stages => stages },
        },
    )
}

pub async fn backtest_action(State(app): State<Arc<App>>, Extension(session): Extension<Session>) -> Response {
    if !session.admin() {
        return forbidden("Running a backtest needs an admin key.");
    }
    let now = app.clock.now();
    let result = blocking(move || app.backtest("", now, Duration::from_millis(86_400_000))).await;
    match result {
        Ok(_) => Redirect::to("/marketing#backtest").into_response(),
        Err(e) => Redirect::to(&format!("/marketing?error={}", percent_encode(&e.message))).into_response(),
    }
}

pub async fn activate_action(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(version): Path<i64>,
) -> Response {
    if !session.admin() {
        return forbidden("Activating a model needs an admin key.");
    }
    let result = blocking(move || app.activate(version)).await;
    match result {
        Ok(_) => Redirect::to("/marketing").into_response(),
        Err(e) => Redirect::to(&format!("/marketing?error={}", percent_encode(&e.message))).into_response(),
    }
}
