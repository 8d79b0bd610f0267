//! The dashboard (SPEC §6.5), served at `/` by the same process: server-rendered HTML from
//! templates compiled into the binary (`templates/`), charts as inline SVG, no scripts. Sales get
//! "call now" (the model's highest stage first, then by total) with grades, trends and the top
//! reasons, and a page per lead ([`sales`]); marketing gets the active model, score
//! distributions, conversion by score band, the stage funnel, the latest backtest, model
//! versions with a what-if preview of each, and shadow models beside the active one
//! ([`marketing`]); and edits a model into a new version ([`editor`]). Login with an API key sets an HttpOnly, SameSite=Lax session cookie
//! ([`sessions`]; the sessions themselves are stored by the service, so they survive restarts).

pub mod editor;
pub mod marketing;
pub mod sales;
pub mod sessions;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value as Jv, context};

use leadscore_core::CheckedModel;
use leadscore_service::App;
use leadscore_service::sessions::Session;

use crate::error::ApiError;

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("login.html", include_str!("../../templates/login.html")),
            ("leads.html", include_str!("../../templates/leads.html")),
            ("lead.html", include_str!("../../templates/lead.html")),
            ("marketing.html", include_str!("../../templates/marketing.html")),
            ("compare.html", include_str!("../../templates/compare.html")),
            ("edit.html", include_str!("../../templates/edit.html")),
            ("preview.html", include_str!("../../templates/preview.html")),
            ("account.html", include_str!("../../templates/account.html")),
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

/// Renders a page for a logged-in user (the header's log-out form carries the CSRF token; admin
/// actions show only to admins).
fn render_page(session: &Session, name: &str, ctx: Jv) -> Response {
    render(name, context! { csrf => session.csrf, admin => session.admin(), ..ctx })
}

/// An error page for a logged-in user, with the error's status.
fn page_error(session: &Session, e: ApiError) -> Response {
    let status = e.status;
    let mut r = render_page(session, "login.html", context! { nav => "sales", error => e.message });
    *r.status_mut() = status;
    r
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

/// The dashboard's routes.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let pages = Router::new()
        .route("/leads", get(sales::leads_page))
        .route("/leads/{id}", get(sales::lead_page))
        .route("/leads/{id}/outcome", post(sales::outcome_action))
        .route("/leads/{id}/contacted", post(sales::contacted_action))
        .route("/accounts/{id}", get(sales::account_page))
        .route("/marketing", get(marketing::marketing_page))
        .route("/marketing/backtest", post(marketing::backtest_action))
        .route("/marketing/models/{version}/activate", post(marketing::activate_action))
        .route("/marketing/models/{version}/preview", get(marketing::preview_page))
        .route("/marketing/models/{version}/shadow", post(marketing::shadow_action))
        .route("/marketing/models/{version}/compare", get(marketing::compare_page))
        .route("/marketing/models/{version}/edit", get(editor::edit_page).post(editor::edit_action))
        .route("/logout", post(sessions::logout))
        .route_layer(middleware::from_fn_with_state(app, sessions::require_session));
    Router::new()
        .route("/", get(sessions::root))
        .route("/login", get(sessions::login_page).post(sessions::login))
        .merge(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for name in [
            "base.html",
            "login.html",
            "leads.html",
            "lead.html",
            "marketing.html",
            "preview.html",
            "account.html",
            "compare.html",
            "edit.html",
        ] {
            assert!(templates().get_template(name).is_ok(), "{name}");
        }
        let html = templates().get_template("login.html").and_then(|t| t.render(context! { error => "<b>" }));
        assert!(html.is_ok_and(|h| h.contains("&lt;b&gt;")), "autoescaped");
    }
}
