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

#[derive(Deserialize, Default)]
pub struct PreviewQuery {
    backtest: Option<String>,
    /// The version an edit in the dashboard was made from (this one is the edit, just saved).
    edited_from: Option<i64>,
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
        let share = |n: usize, of: usize| if of == 0 { "—".to_owned() } else { format!("{:.0}%", 100.0 * n as f64 / of as f64) };
        let rules: Vec<Jv> = r
            .rules
            .iter()
            .map(|x| {
                context! {
                    rule => x.rule,
                    points => format_points(x.points),
                    with => format!("{} of {} ({})", x.converted_with, x.fired, share(x.converted_with, x.fired)),
                    without => format!("{} of {} ({})", x.converted_without, x.not_fired, share(x.converted_without, x.not_fired)),
                    lift => x.lift.map_or("—".to_owned(), |l| format!("{l:.2}")),
                    ci => x.lift_ci.map_or(String::new(), |(lo, hi)| format!("{lo:.2}–{hi:.2}")),
                    wrong_sign => x.wrong_sign,
                    suggestion => x.suggested_points.map(format_points),
                }
            })
            .collect();
        let auc_reading = r.auc.map(|a| {
            let quality = match a {
                a if a >= 0.8 => "strong",
                a if a >= 0.7 => "useful",
                a if a >= 0.6 => "weak",
                _ => "hardly better than chance",
            };
            format!(
                "a lead that converted outscored one that did not {:.0}% of the time (50% is a coin toss): {quality}",
                100.0 * a
            )
        });
        Some(context! {
            model => r.model,
            at => time::format_timestamp(run.ran_at),
            auc => r.auc.map_or("—".to_owned(), |a| format!("{a:.3}")),
            auc_ci => r.auc_ci.map(|(lo, hi)| format!("{lo:.3}–{hi:.3}")),
            auc_reading => auc_reading,
            leads => r.counts.leads,
            converted => r.counts.converted,
            rules => rules,
            charts => vec![
                charts::bar_chart("Conversion by score decile (1 = highest)", &deciles, "decile", "converted", true),
                charts::line_chart("Cumulative gains", &[("model".to_owned(), gains)], "share of leads called", "share of conversions found"),
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
        .map(|m| {
            context! {
                version => m.version, name => m.name, created_at => time::format_timestamp(m.created_at),
                active => m.active, shadow => m.shadow,
            }
        })
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
            ignored => app.ignored_events(),
            distributions => distributions,
            conversion_chart => conversion_chart,
            backtest => backtest,
            models => model_rows,
            ask_next => overview
                .ask_next
                .iter()
                .take(8)
                .map(|a| context! {
                    name => a.trait_name.replace('_', " "), leads => a.leads,
                    stage_moves => a.stage_moves, grade_moves => a.grade_moves,
                })
                .collect::<Vec<_>>(),
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

/// A signed count for people: `+3`, `−2`, `0`.
fn delta(n: i64) -> String {
    match n {
        0 => "0".to_owned(),
        n if n > 0 => format!("+{n}"),
        n => format!("−{}", -n),
    }
}

/// What-if: a version scored beside the active one (admin only: it scores every stored lead).
pub async fn preview_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(version): Path<i64>,
    Query(query): Query<PreviewQuery>,
) -> Response {
    if !session.admin() {
        return forbidden("Previewing a model needs an admin key.");
    }
    let backtest = (query.backtest.as_deref() == Some("true")).then(|| Duration::from_millis(86_400_000));
    let now = app.clock.now();
    let app2 = Arc::clone(&app);
    let preview = match blocking(move || app2.preview_model(version, now, backtest)).await {
        Ok(p) => p,
        Err(e) => return page_error(&session, e),
    };
    let active = app.model();
    let model = &active.model;
    let lead_ref = |l: &leadscore_service::preview::LeadRef| {
        context! { url => percent_encode(&l.id), label => l.name.clone().unwrap_or_else(|| l.id.clone()) }
    };
    let bucket = |b: &leadscore_service::preview::BucketPreview| {
        let change = b.preview as i64 - b.active as i64;
        context! {
            name => b.name, class => stage_class(model, &b.name), active => b.active, preview => b.preview,
            delta => change, delta_text => delta(change), entering => b.entering, leaving => b.leaving,
            entering_sample => b.entering_sample.iter().map(lead_ref).collect::<Vec<_>>(),
            leaving_sample => b.leaving_sample.iter().map(lead_ref).collect::<Vec<_>>(),
        }
    };
    let points = |s: &Option<leadscore_service::preview::Summary>,
                  f: fn(&leadscore_service::preview::Summary) -> f64| {
        s.as_ref().map_or("—".to_owned(), |s| format_points(f(s)))
    };
    let dimensions: Vec<Jv> = preview
        .dimensions
        .iter()
        .map(|d| {
            context! {
                name => d.name,
                active_mean => points(&d.active, |s| s.mean),
                preview_mean => points(&d.preview, |s| s.mean),
                p50 => format!("{} → {}", points(&d.active, |s| s.p50), points(&d.preview, |s| s.p50)),
                p90 => format!("{} → {}", points(&d.active, |s| s.p90), points(&d.preview, |s| s.p90)),
            }
        })
        .collect();
    let charts: Vec<String> = preview
        .dimensions
        .iter()
        .take(1)
        .flat_map(|d| {
            let label =
                |b: &leadscore_service::preview::Bin| format!("{}–{}", format_points(b.from), format_points(b.to));
            let now: Vec<(String, f64)> = d.bins.iter().map(|b| (label(b), b.active as f64)).collect();
            let then: Vec<(String, f64)> = d.bins.iter().map(|b| (label(b), b.preview as f64)).collect();
            [
                charts::bar_chart(&format!("{}: leads now", d.name), &now, d.name.as_str(), "leads", false),
                charts::bar_chart(
                    &format!("{}: leads with version {version}", d.name),
                    &then,
                    d.name.as_str(),
                    "leads",
                    false,
                ),
            ]
        })
        .collect();
    let backtests: Option<Vec<Jv>> = preview.backtest.as_ref().map(|pair| {
        [(format!("now (v{})", preview.active_version), &pair.active), (format!("version {version}"), &pair.preview)]
            .into_iter()
            .map(|(label, r)| {
                context! {
                    label => label,
                    auc => r.auc.map_or("—".to_owned(), |a| format!("{a:.3}")),
                    ci => r.auc_ci.map_or("—".to_owned(), |(lo, hi)| format!("{lo:.3}–{hi:.3}")),
                    leads => r.counts.leads,
                    converted => r.counts.converted,
                }
            })
            .collect()
    });
    render_page(
        &session,
        "preview.html",
        context! {
            nav => "marketing",
            version => preview.version,
            name => preview.name,
            active_version => preview.active_version,
            active_name => preview.active_name,
            as_of => preview.as_of,
            leads => preview.leads,
            stages => preview.stages.iter().map(bucket).collect::<Vec<_>>(),
            grades => preview.grades.iter().filter(|g| g.name != "none" || preview.grades.len() > 1).map(bucket).collect::<Vec<_>>(),
            moves => preview.moves.iter().map(|m| context! { from => m.from, to => m.to, leads => m.leads }).collect::<Vec<_>>(),
            dimensions => dimensions,
            charts => charts,
            diff => Jv::from_serialize(&preview.diff),
            backtest => backtests,
            warnings => preview.warnings,
            edited_from => query.edited_from,
        },
    )
}

#[derive(Deserialize, Default)]
pub struct ShadowForm {
    /// `true`: stop running the version in shadow.
    stop: Option<String>,
}

/// Runs a version in shadow, or stops it (admin only).
pub async fn shadow_action(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(version): Path<i64>,
    axum::extract::Form(form): axum::extract::Form<ShadowForm>,
) -> Response {
    if !session.admin() {
        return forbidden("Running a model in shadow needs an admin key.");
    }
    let stop = form.stop.as_deref() == Some("true");
    let result = blocking(move || if stop { app.stop_shadow(version) } else { app.start_shadow(version) }).await;
    match result {
        Ok(_) if stop => Redirect::to("/marketing").into_response(),
        Ok(_) => Redirect::to(&format!("/marketing/models/{version}/compare")).into_response(),
        Err(e) => Redirect::to(&format!("/marketing?error={}", percent_encode(&e.message))).into_response(),
    }
}

/// A share for people: `42%`, or `—` without leads.
fn rate(rate: Option<f64>) -> String {
    rate.map_or("—".to_owned(), |r| format!("{:.0}%", 100.0 * r))
}

/// A shadow model beside the active one: stage agreement and conversion where they differ.
pub async fn compare_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(version): Path<i64>,
) -> Response {
    let app2 = Arc::clone(&app);
    let comparison = match blocking(move || app2.compare_shadow(version)).await {
        Ok(c) => c,
        Err(e) => return page_error(&session, e),
    };
    let active = app.model();
    let shadow_model = app.shadows().iter().find(|s| s.version == version).cloned();
    let conversion = |c: &leadscore_service::shadow::Conversion| {
        context! { leads => c.leads, converted => c.converted, rate => rate(c.rate) }
    };
    let cells: Vec<Jv> = comparison
        .stages
        .iter()
        .map(|c| {
            let shadow_class = shadow_model.as_ref().map_or("", |s| stage_class(&s.model, &c.shadow_stage));
            context! {
                active_stage => c.active_stage, shadow_stage => c.shadow_stage,
                active_class => stage_class(&active.model, &c.active_stage), shadow_class => shadow_class,
                leads => c.conversion.leads, converted => c.conversion.converted, rate => rate(c.conversion.rate),
            }
        })
        .collect();
    let examples: Vec<Jv> = comparison
        .examples
        .iter()
        .map(|e| {
            context! {
                id => e.lead_id, url => percent_encode(&e.lead_id), active_stage => e.active_stage,
                active_total => format_points(e.active_total), shadow_stage => e.shadow_stage,
                shadow_total => format_points(e.shadow_total), converted => e.converted,
            }
        })
        .collect();
    render_page(
        &session,
        "compare.html",
        context! {
            nav => "marketing",
            version => comparison.version,
            name => comparison.name,
            active_version => comparison.active_version,
            active_name => comparison.active_name,
            leads => comparison.leads,
            not_scored => comparison.not_scored,
            same_stage => comparison.same_stage,
            agreement => rate(comparison.agreement),
            agree => conversion(&comparison.agree),
            disagree => conversion(&comparison.disagree),
            higher => conversion(&comparison.shadow_higher),
            lower => conversion(&comparison.shadow_lower),
            cells => cells,
            examples => examples,
        },
    )
}
