//! `/api/accounts/{id}`: an account's rolled-up scores and its leads.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use leadscore_service::App;
use leadscore_service::accounts::AccountView;

use super::{ErrorBody, blocking};
use crate::error::ApiError;

/// An account's rolled-up scores and its leads
#[utoipa::path(get, path = "/api/accounts/{id}", params(("id" = String, Path, description = "account (group) id")),
    tag = "accounts", responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_account(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Json<AccountView>, ApiError> {
    blocking(move || app.account_view(&id)).await.map(Json)
}
