//! API keys on `/api`: which role each endpoint needs (SPEC §6.2) and the middleware that checks
//! the bearer key against it. Keys themselves are the service's ([`leadscore_service::auth`]).

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use leadscore_service::App;
use leadscore_service::auth::Role;

use crate::error::{ApiError, Code};

/// Which role each API endpoint needs (SPEC §6.2): reading leads, accounts and models and
/// recording outcomes and contacts is `read` (sales); everything else (model uploads and activation,
/// backtests, deletes, webhooks, unreadable events) is `admin`.
pub fn needed_role(method: &Method, route: &str) -> Role {
    match (method.as_str(), route) {
        ("GET", "/api/leads" | "/api/leads/{id}" | "/api/accounts/{id}" | "/api/models" | "/api/models/{version}") => {
            Role::Read
        }
        ("POST", "/api/leads/{id}/outcome" | "/api/leads/{id}/contacted") => Role::Read,
        _ => Role::Admin,
    }
}

/// Bearer keys for `/api`, checked against the role the endpoint needs: 401 without a valid key,
/// 403 for a write key or a read key on an admin endpoint.
pub async fn require_role(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = token else {
        return ApiError::new(Code::MissingApiKey, "send an API key: `Authorization: Bearer <key>`").into_response();
    };
    let route = request.extensions().get::<MatchedPath>().map_or("", MatchedPath::as_str);
    let needed = needed_role(request.method(), route);
    match app.keys.role_of(&token) {
        None => ApiError::new(Code::InvalidApiKey, "the API key is not valid").into_response(),
        Some(Role::Write) => {
            ApiError::new(Code::WriteKeyNotAllowed, "this is a write key; the API needs an API key").into_response()
        }
        Some(role) if !role.allows(needed) => ApiError::new(
            Code::InsufficientRole,
            format!("this endpoint needs an `{}` key; this key is `{}`", needed.as_str(), role.as_str()),
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}
