//! Errors of the use cases. [`ServiceError`] says whose fault a failure is, as meilisearch's
//! `milli::Error` does: the user's mistake ([`ServiceError::User`], with a readable message), the
//! store's (unavailable: retry; otherwise ours), or a bug. [`Code`] is the one table of error
//! codes, each with its name, HTTP status and type, from which `docs/server.md`'s table is
//! checked; the HTTP crate answers with it and adds only codes of its own transport.

use serde_json::Value;

use leadscore_store::{StoreError, TxError};

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
    ($($code:ident: $name:literal, $status:literal, $kind:ident, $when:literal;)*) => {
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

            /// The HTTP status it is answered with.
            pub fn status(self) -> u16 {
                match self {
                    $(Code::$code => $status,)*
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
    InvalidJson: "invalid_json", 400, InvalidRequest, "the body is not JSON";
    InvalidBody: "invalid_body", 400, InvalidRequest, "the body is not what the endpoint takes (not an object, a field of the wrong type)";
    InvalidBatch: "invalid_batch", 400, InvalidRequest, "`batch` is not an array of messages";
    InvalidMessage: "invalid_message", 400, InvalidRequest, "a message is wrong (the JSON path says where); nothing of the request is stored";
    UnknownType: "unknown_type", 400, InvalidRequest, "a message's `type` is not a Segment call";
    MissingId: "missing_id", 400, InvalidRequest, "a message has neither `userId` nor `anonymousId`";
    InvalidTimestamp: "invalid_timestamp", 400, InvalidRequest, "a time field is not RFC 3339, or the event time is before 1970 or too far after its receipt";
    InvalidGzip: "invalid_gzip", 400, InvalidRequest, "the body says gzip but is not";
    InvalidParameter: "invalid_parameter", 400, InvalidRequest, "a query parameter is wrong (the message names it)";
    InvalidCursor: "invalid_cursor", 400, InvalidRequest, "`cursor` is not one this API returned";
    InvalidOutcome: "invalid_outcome", 400, InvalidRequest, "`outcome` is not converted, won, lost or disqualified";
    NoLeads: "no_leads", 400, InvalidRequest, "a backtest was asked for with no stored leads";
    BadRequest: "bad_request", 400, InvalidRequest, "any other malformed request";
    MissingWriteKey: "missing_write_key", 401, Auth, "a tracking call without a write key";
    InvalidWriteKey: "invalid_write_key", 401, Auth, "a tracking call whose key is not a write key";
    MissingApiKey: "missing_api_key", 401, Auth, "an API call without a key";
    InvalidApiKey: "invalid_api_key", 401, Auth, "an API call whose key is not one of the server's";
    Unauthorized: "unauthorized", 401, Auth, "any other missing credentials";
    InvalidSignature: "invalid_signature", 401, Auth, "an inbound webhook whose signature does not verify or whose timestamp is more than 5 minutes off";
    WriteKeyNotAllowed: "write_key_not_allowed", 403, Auth, "a write key on the API";
    InsufficientRole: "insufficient_role", 403, Auth, "a `read` key on an admin endpoint";
    Forbidden: "forbidden", 403, Auth, "any other refusal (a dashboard form without its CSRF token or from another site)";
    NotFound: "not_found", 404, InvalidRequest, "no such endpoint";
    UnknownPath: "unknown_path", 404, InvalidRequest, "no tracking API endpoint of that name (`/v1/...`)";
    UnknownWriteKey: "unknown_write_key", 404, InvalidRequest, "a project path (`/v1/projects/{key}/...`) whose key is no write key";
    LeadNotFound: "lead_not_found", 404, InvalidRequest, "no lead with that id";
    AccountNotFound: "account_not_found", 404, InvalidRequest, "no account with that id";
    ModelNotFound: "model_not_found", 404, InvalidRequest, "no model version with that number";
    DeliveryNotFound: "delivery_not_found", 404, InvalidRequest, "no webhook delivery with that id";
    SyncNotFound: "sync_not_found", 404, InvalidRequest, "no CRM sync (`[[sync]]`) with that name";
    MethodNotAllowed: "method_not_allowed", 405, InvalidRequest, "the endpoint does not take that method";
    RequestTimeout: "request_timeout", 408, InvalidRequest, "the body did not arrive within `body_timeout`";
    ModelIsActive: "model_is_active", 409, InvalidRequest, "the active model version cannot also run in shadow (it is scored live already)";
    MessageTooLarge: "message_too_large", 413, InvalidRequest, "a message over 32 KB";
    BatchTooLarge: "batch_too_large", 413, InvalidRequest, "a request over 500 KB (after decompression)";
    PayloadTooLarge: "payload_too_large", 413, InvalidRequest, "any other body over its limit";
    UnsupportedEncoding: "unsupported_encoding", 415, InvalidRequest, "a `Content-Encoding` other than gzip";
    UnsupportedMediaType: "unsupported_media_type", 415, InvalidRequest, "a body of a type the endpoint does not take";
    InvalidModel: "invalid_model", 422, InvalidRequest, "an uploaded model has errors (`diagnostics` lists them)";
    Unprocessable: "unprocessable", 422, InvalidRequest, "any other body that parses but cannot be used";
    Overloaded: "overloaded", 429, System, "more than 50,000 events wait to be committed (with `Retry-After`)";
    InternalError: "internal_error", 500, Internal, "our fault; the server log says what";
    DatabaseUnavailable: "database_unavailable", 503, System, "the database cannot be reached or written (with `Retry-After: 2`)";
    ShuttingDown: "shutting_down", 503, System, "the server is stopping; retry against another or later";
    Unavailable: "unavailable", 503, System, "any other temporary refusal";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Code {
    /// The code the server gives a status it answered without one of its own (the framework's
    /// rejections).
    pub fn for_status(status: u16) -> Code {
        match status {
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
            _ if (400..500).contains(&status) => Code::BadRequest,
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
                code.status(),
                code.kind().name(),
                code.when()
            ));
        }
        table
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The user's mistake: a wrong request, or a lead, account, model or delivery that does not
    /// exist. The message says what, in the user's terms.
    #[error("{message}")]
    User {
        code: Code,
        message: String,
        /// Extra fields for the answer (a model's `diagnostics`).
        details: Option<(&'static str, Value)>,
    },
    /// The store failed: unavailable or busy (retry) or worse (ours).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Too many events wait for the writer: retry after this many seconds.
    #[error("the server is busy; retry after a moment")]
    Overloaded { retry_after: u64 },
    /// The server is stopping and takes no more work.
    #[error("the server is shutting down; retry")]
    ShuttingDown,
    /// Our fault (a bug, a thread that stopped), logged where it happened.
    #[error("{what}: {message}")]
    Internal { what: &'static str, message: String },
}

impl ServiceError {
    /// The user's mistake, with its code and message.
    pub fn user(code: Code, message: impl Into<String>) -> ServiceError {
        ServiceError::User { code, message: message.into(), details: None }
    }

    /// Our fault: logged now, answered with a generic message.
    pub fn internal(what: &'static str, error: &dyn std::fmt::Display) -> ServiceError {
        tracing::error!("{what}: {error}");
        ServiceError::Internal { what, message: error.to_string() }
    }

    pub fn with_details(self, key: &'static str, value: Value) -> ServiceError {
        match self {
            ServiceError::User { code, message, .. } => {
                ServiceError::User { code, message, details: Some((key, value)) }
            }
            other => other,
        }
    }

    /// The code the error is answered with.
    pub fn code(&self) -> Code {
        match self {
            ServiceError::User { code, .. } => *code,
            ServiceError::Store(e) if is_transient(e) => Code::DatabaseUnavailable,
            ServiceError::Store(_) | ServiceError::Internal { .. } => Code::InternalError,
            ServiceError::Overloaded { .. } => Code::Overloaded,
            ServiceError::ShuttingDown => Code::ShuttingDown,
        }
    }

    /// Whether trying again later can succeed (the database is down, busy or read-only).
    pub fn is_transient(&self) -> bool {
        matches!(self, ServiceError::Store(e) if is_transient(e))
    }
}

impl TxError for ServiceError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            ServiceError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Failures that go away by themselves (the database is down, busy or read-only): retry later.
pub fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::Conflict(_))
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
            assert!((400..600).contains(&status), "{code}");
            assert_eq!(code.kind() == ErrorType::Internal, status == 500, "{code}");
        }
        // A framework rejection keeps a code of its own status.
        for status in [400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 503] {
            assert_eq!(Code::for_status(status).status(), status);
        }
    }
}
