//! One table of error codes: each code's name, HTTP status and kind ([`Code`]), from which
//! `docs/server.md`'s table of error codes is checked. The user's mistakes get a readable message;
//! our faults are logged and answered with a generic one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use leadscore_store::StoreError;

/// Whose doing an error is, as meilisearch's error types say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is wrong: fix it and send it again.
    InvalidRequest,
    /// No key, a wrong key, or a key without the role.
    Auth,
    /// Not now: the server is busy, stopping, or its database cannot be reached; retry.
    System,
    /// Our fault (logged).
    Internal,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Auth => "auth",
            ErrorType::System => "system",
            ErrorType::Internal => "internal",
        }
    }
}

macro_rules! error_codes {
    ($($code:ident: $name:literal, $status:ident, $kind:ident, $when:literal;)*) => {
        /// Every error code the server answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($code,)*
        }

        impl Code {
            /// Every code, in the table's order.
            pub const ALL: &[Code] = &[$(Code::$code,)*];

            /// The stable `code` of the JSON answer.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$code => $name,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$code => StatusCode::$status,)*
                }
            }

            pub fn kind(self) -> ErrorType {
                match self {
                    $(Code::$code => ErrorType::$kind,)*
                }
            }

            /// When it is answered, in a few words (the documentation's table).
            pub fn when(self) -> &'static str {
                match self {
                    $(Code::$code => $when,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidJson: "invalid_json", BAD_REQUEST, InvalidRequest, "the body is not JSON";
    InvalidBody: "invalid_body", BAD_REQUEST, InvalidRequest, "the body is not what the endpoint takes (not an object, a field of the wrong type)";
    InvalidBatch: "invalid_batch", BAD_REQUEST, InvalidRequest, "`batch` is not an array of messages";
    InvalidMessage: "invalid_message", BAD_REQUEST, InvalidRequest, "a message is wrong (the JSON path says where); nothing of the request is stored";
    UnknownType: "unknown_type", BAD_REQUEST, InvalidRequest, "a message's `type` is not a Segment call";
    MissingId: "missing_id", BAD_REQUEST, InvalidRequest, "a message has neither `userId` nor `anonymousId`";
    InvalidTimestamp: "invalid_timestamp", BAD_REQUEST, InvalidRequest, "a time field is not RFC 3339, or the event time is before 1970 or too far after its receipt";
    InvalidGzip: "invalid_gzip", BAD_REQUEST, InvalidRequest, "the body says gzip but is not";
    InvalidParameter: "invalid_parameter", BAD_REQUEST, InvalidRequest, "a query parameter is wrong (the message names it)";
    InvalidCursor: "invalid_cursor", BAD_REQUEST, InvalidRequest, "`cursor` is not one this API returned";
    InvalidOutcome: "invalid_outcome", BAD_REQUEST, InvalidRequest, "`outcome` is not converted, won, lost or disqualified";
    NoLeads: "no_leads", BAD_REQUEST, InvalidRequest, "a backtest was asked for with no stored leads";
    BadRequest: "bad_request", BAD_REQUEST, InvalidRequest, "any other malformed request";
    MissingWriteKey: "missing_write_key", UNAUTHORIZED, Auth, "a tracking call without a write key";
    InvalidWriteKey: "invalid_write_key", UNAUTHORIZED, Auth, "a tracking call whose key is not a write key";
    MissingApiKey: "missing_api_key", UNAUTHORIZED, Auth, "an API call without a key";
    InvalidApiKey: "invalid_api_key", UNAUTHORIZED, Auth, "an API call whose key is not one of the server's";
    Unauthorized: "unauthorized", UNAUTHORIZED, Auth, "any other missing credentials";
    WriteKeyNotAllowed: "write_key_not_allowed", FORBIDDEN, Auth, "a write key on the API";
    InsufficientRole: "insufficient_role", FORBIDDEN, Auth, "a `read` key on an admin endpoint";
    Forbidden: "forbidden", FORBIDDEN, Auth, "any other refusal (a dashboard form without its CSRF token or from another site)";
    NotFound: "not_found", NOT_FOUND, InvalidRequest, "no such endpoint";
    UnknownPath: "unknown_path", NOT_FOUND, InvalidRequest, "no tracking API endpoint of that name (`/v1/...`)";
    UnknownWriteKey: "unknown_write_key", NOT_FOUND, InvalidRequest, "a project path (`/v1/projects/{key}/...`) whose key is no write key";
    LeadNotFound: "lead_not_found", NOT_FOUND, InvalidRequest, "no lead with that id";
    AccountNotFound: "account_not_found", NOT_FOUND, InvalidRequest, "no account with that id";
    ModelNotFound: "model_not_found", NOT_FOUND, InvalidRequest, "no model version with that number";
    DeliveryNotFound: "delivery_not_found", NOT_FOUND, InvalidRequest, "no webhook delivery with that id";
    MethodNotAllowed: "method_not_allowed", METHOD_NOT_ALLOWED, InvalidRequest, "the endpoint does not take that method";
    RequestTimeout: "request_timeout", REQUEST_TIMEOUT, InvalidRequest, "the body did not arrive within `body_timeout`";
    MessageTooLarge: "message_too_large", PAYLOAD_TOO_LARGE, InvalidRequest, "a message over 32 KB";
    BatchTooLarge: "batch_too_large", PAYLOAD_TOO_LARGE, InvalidRequest, "a request over 500 KB (after decompression)";
    PayloadTooLarge: "payload_too_large", PAYLOAD_TOO_LARGE, InvalidRequest, "any other body over its limit";
    UnsupportedEncoding: "unsupported_encoding", UNSUPPORTED_MEDIA_TYPE, InvalidRequest, "a `Content-Encoding` other than gzip";
    UnsupportedMediaType: "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, InvalidRequest, "a body of a type the endpoint does not take";
    InvalidModel: "invalid_model", UNPROCESSABLE_ENTITY, InvalidRequest, "an uploaded model has errors (`diagnostics` lists them)";
    Unprocessable: "unprocessable", UNPROCESSABLE_ENTITY, InvalidRequest, "any other body that parses but cannot be used";
    Overloaded: "overloaded", TOO_MANY_REQUESTS, System, "more than 50,000 events wait to be committed (with `Retry-After`)";
    InternalError: "internal_error", INTERNAL_SERVER_ERROR, Internal, "our fault; the server log says what";
    DatabaseUnavailable: "database_unavailable", SERVICE_UNAVAILABLE, System, "the database cannot be reached or written (with `Retry-After: 2`)";
    ShuttingDown: "shutting_down", SERVICE_UNAVAILABLE, System, "the server is stopping; retry against another or later";
    Unavailable: "unavailable", SERVICE_UNAVAILABLE, System, "any other temporary refusal";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Code {
    /// The code the server gives a status it answered without one of its own (the framework's
    /// rejections).
    pub fn for_status(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::BadRequest,
            401 => Code::Unauthorized,
            403 => Code::Forbidden,
            404 => Code::NotFound,
            405 => Code::MethodNotAllowed,
            408 => Code::RequestTimeout,
            413 => Code::PayloadTooLarge,
            415 => Code::UnsupportedMediaType,
            422 => Code::Unprocessable,
            429 => Code::Overloaded,
            503 => Code::Unavailable,
            _ if status.is_client_error() => Code::BadRequest,
            _ => Code::InternalError,
        }
    }

    /// The table as `docs/server.md` prints it.
    pub fn markdown_table() -> String {
        let mut table = String::from("| code | status | type | when |\n|---|---|---|---|\n");
        for code in Code::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                code.name(),
                code.status().as_u16(),
                code.kind().name(),
                code.when()
            ));
        }
        table
    }
}

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

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { status: code.status(), code, message: message.into(), details: None, retry_after: None }
    }

    pub fn overloaded(retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(Code::Overloaded, "the server is busy; retry after a moment")
        }
    }

    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!("{what}: {error}");
        ApiError::new(Code::InternalError, "internal error; see the server log")
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
                    ..ApiError::new(Code::DatabaseUnavailable, "the database is unavailable; retry after a moment")
                }
            }
            other => ApiError::internal("store", &other),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/server.md` prints the table of error codes as it is here.
    #[test]
    fn the_documentation_lists_every_error_code_as_the_table_has_it() {
        let docs = include_str!("../../../docs/server.md");
        let start = "<!-- error codes: generated from Code::markdown_table -->\n";
        let end = "<!-- end of error codes -->";
        let from = docs.find(start).expect("the error codes' place in docs/server.md") + start.len();
        let to = from + docs[from..].find(end).expect("the end of the error codes");
        let expected = Code::markdown_table();
        // (Blank lines around it, for Markdown to see a table after the comment.)
        assert!(
            docs[from..to].trim() == expected.trim(),
            "docs/server.md should have, between the markers:\n{expected}"
        );
    }

    #[test]
    fn codes_are_unique_and_their_statuses_are_errors() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
        for code in Code::ALL {
            let status = code.status();
            assert!(status.is_client_error() || status.is_server_error(), "{code}");
            assert_eq!(code.kind() == ErrorType::Internal, status == StatusCode::INTERNAL_SERVER_ERROR, "{code}");
        }
        // A framework rejection keeps a code of its own status.
        for status in [400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 503] {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            assert_eq!(Code::for_status(status).status(), status);
        }
    }
}
