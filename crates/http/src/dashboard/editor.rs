//! Marketing edits a model in the dashboard (admin only): stage conditions, grade bands, a rule's
//! points, window and half-life, removing a rule, adding one from a template, or the TOML text
//! itself. Saving checks the edited file as an upload is checked: with errors nothing is saved
//! and the form comes back with the diagnostics; without, it is a new inactive version and the
//! browser goes to its preview (from which it can be activated).

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value as Jv, context};

use leadscore_service::App;
use leadscore_service::drafts::{Changes, Draft, NewRule, TEMPLATES, draft_form};
use leadscore_service::sessions::Session;

use super::sessions::forbidden;
use super::{page_error, render_page};
use crate::routes::blocking;

/// The edit form of version `version`.
pub async fn edit_page(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(version): Path<i64>,
) -> Response {
    if !session.admin() {
        return forbidden("Editing a model needs an admin key.");
    }
    match blocking(move || app.draft_form(version)).await {
        Ok((_, source)) => form(&session, version, &source, None, None),
        Err(e) => page_error(&session, e),
    }
}

/// The form for `source` (the text being edited, based on `base`), with why it was not saved.
fn form(session: &Session, base: i64, source: &str, error: Option<&str>, diagnostics: Option<&str>) -> Response {
    // Text that is not TOML (typed into the box) shows in the box, with no fields to edit.
    let draft = draft_form(source).unwrap_or_default();
    let templates: Vec<Jv> =
        TEMPLATES.iter().map(|t| context! { id => t.id, label => t.label, points => t.points }).collect();
    let mut page = render_page(
        session,
        "edit.html",
        context! {
            nav => "marketing",
            base => base,
            source => source,
            draft => Jv::from_serialize(&draft),
            templates => templates,
            error => error,
            diagnostics => diagnostics,
        },
    );
    if error.is_some() {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    page
}

/// What a submitted form asks for: the text it was made from, the TOML text box, the changes.
fn parse_form(fields: &[(String, String)]) -> (String, String, Changes) {
    let mut source = String::new();
    let mut toml = String::new();
    let mut changes = Changes::default();
    let mut add =
        NewRule { template: String::new(), dimension: String::new(), name: String::new(), points: String::new() };
    for (key, value) in fields {
        let (field, index) = match key.split_once('.') {
            Some((field, rest)) => (field, rest),
            None => (key.as_str(), ""),
        };
        let at = index.parse::<usize>();
        match (field, at) {
            ("source", _) => source.clone_from(value),
            ("toml", _) => toml.clone_from(value),
            ("stage", Ok(i)) => {
                changes.stages.insert(i, value.clone());
            }
            ("points", Ok(i)) => {
                changes.points.insert(i, value.clone());
            }
            ("window", Ok(i)) => {
                changes.windows.insert(i, value.clone());
            }
            ("half_life", Ok(i)) => {
                changes.half_lives.insert(i, value.clone());
            }
            ("remove", Ok(i)) => {
                changes.remove.insert(i);
            }
            ("grade", _) => {
                if let Some((dimension, band)) = index.split_once('.') {
                    changes.grades.insert((dimension.to_owned(), band.to_owned()), value.clone());
                }
            }
            ("add", _) => match index {
                "template" => add.template.clone_from(value),
                "dimension" => add.dimension.clone_from(value),
                "name" => add.name.clone_from(value),
                "points" => add.points.clone_from(value),
                _ => {}
            },
            _ => {}
        }
    }
    if !add.template.is_empty() {
        changes.add = Some(add);
    }
    // Browsers send text boxes with CRLF line ends.
    (source.replace("\r\n", "\n"), toml.replace("\r\n", "\n"), changes)
}

/// Checks the edited model and saves it as a new version (then its preview), or shows the form
/// again with what is wrong.
pub async fn edit_action(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Path(base): Path<i64>,
    axum::extract::Form(fields): axum::extract::Form<Vec<(String, String)>>,
) -> Response {
    if !session.admin() {
        return forbidden("Editing a model needs an admin key.");
    }
    let (source, toml, changes) = parse_form(&fields);
    // The TOML text box wins when it was edited: the fields were made from the text before.
    let (source, changes) =
        if !toml.is_empty() && toml != source { (toml, Changes::default()) } else { (source, changes) };
    match blocking(move || app.save_draft(&source, &changes)).await {
        Ok(Draft::Saved(created)) => {
            Redirect::to(&format!("/marketing/models/{}/preview?edited_from={base}", created.version)).into_response()
        }
        Ok(Draft::Rejected { source, message, diagnostics }) => form(
            &session,
            base,
            &source,
            Some(&message),
            Some(&diagnostics).filter(|d| !d.is_empty()).map(String::as_str),
        ),
        Err(e) => page_error(&session, e),
    }
}
