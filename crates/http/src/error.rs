//! Errors answered over HTTP: every one is JSON `{"code", "message"}` with the status of its code
//! in the service's one table ([`Code`]). A use case's [`ServiceError`] becomes an [`ApiError`]
//! here; our faults were logged where they happened and are answered with a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use leadscore_service::error::{Code, ErrorType, ServiceError};

/// An error answered over HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The code's status, except for a framework rejection of a status without a code of its own.
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    /// Extra JSON fields (e.g. model diagnostics).
    pub details: Option<(&'static str, serde_json::Value)>,
    pub retry_after: Option<u64>,
}

/// The status a code is answered with.
pub fn status_of(code: Code) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { status: status_of(code), code, message: message.into(), details: None, retry_after: None }
    }

    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!("{what}: {error}");
        ApiError::new(Code::InternalError, "internal error; see the server log")
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let code = e.code();
        match e {
            ServiceError::User { message, details, .. } => ApiError { details, ..ApiError::new(code, message) },
            ServiceError::Overloaded { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(code, "the server is busy; retry after a moment")
            },
            ServiceError::ShuttingDown => ApiError::new(code, "the server is shutting down; retry"),
            ServiceError::Store(store) if code == Code::DatabaseUnavailable => {
                tracing::warn!("store: {store}");
                ApiError {
                    retry_after: Some(2),
                    ..ApiError::new(code, "the database is unavailable; retry after a moment")
                }
            }
            ServiceError::Store(store) => ApiError::internal("store", &store),
            // Logged where it happened.
            ServiceError::Internal { .. } => ApiError::new(Code::InternalError, "internal error; see the server log"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code.name(), "message": self.message });
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
