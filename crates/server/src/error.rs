//! One table from error kind to HTTP status and stable snake_case `code`. The user's mistakes get
//! a readable message; our faults are logged and answered with a generic one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use leadscore_store::StoreError;

/// An error answered over HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra JSON fields (e.g. model diagnostics).
    pub details: Option<(&'static str, serde_json::Value)>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: None, retry_after: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn too_large(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    pub fn overloaded(retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", "the server is busy; retry after a moment")
        }
    }

    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!("{what}: {error}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error; see the server log")
    }

    pub fn with_details(mut self, key: &'static str, value: serde_json::Value) -> ApiError {
        self.details = Some((key, value));
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => {
                tracing::warn!("store: {e}");
                ApiError {
                    retry_after: Some(2),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database_unavailable",
                        "the database is unavailable; retry after a moment",
                    )
                }
            }
            other => ApiError::internal("store", &other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some((key, value)), Some(object)) = (self.details, body.as_object_mut()) {
            object.insert(key.to_owned(), value);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
