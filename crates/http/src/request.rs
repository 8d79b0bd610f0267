//! What a handler reads from a request besides its body: query parameters with JSON errors
//! ([`ApiQuery`]), the peer's address ([`Peer`]), and the origin a client used to reach this
//! server ([`client_origin`]: `public_url`, or `Host` with forwarded headers from trusted proxies).

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

use leadscore_service::Settings;

use crate::error::{ApiError, Code};

/// Query parameters whose errors are JSON (`400 invalid_parameter` naming the problem), unlike
/// axum's own `Query` (a text/plain 400).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
                Err(ApiError::new(Code::InvalidParameter, format!("query: {detail}")))
            }
        }
    }
}

/// The peer's address (absent when the router is driven directly, as in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// How a client reached this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
}

impl std::fmt::Display for ClientOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// Whether `text` is a plain `host[:port]` (no path, user info or spaces): a `Host` header we may
/// repeat back to clients.
fn plain_authority(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

/// The origin clients use to reach this server: `public_url` when configured; otherwise the
/// request's `Host`, with `X-Forwarded-Proto` / `X-Forwarded-Host` believed only from trusted
/// proxies.
pub fn client_origin(settings: &Settings, headers: &HeaderMap, peer: Option<IpAddr>) -> ClientOrigin {
    if let Some(public) = &settings.public_url {
        return ClientOrigin { scheme: public.scheme.clone(), authority: public.authority.clone() };
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let trusted = peer.is_some_and(|p| settings.trusts(p));
    let scheme = match first("x-forwarded-proto") {
        Some(proto) if trusted && (proto == "https" || proto == "http") => proto,
        _ => "http".to_owned(),
    };
    let forwarded_host = if trusted { first("x-forwarded-host") } else { None };
    let authority = forwarded_host
        .or_else(|| first(header::HOST.as_str()))
        .filter(|h| plain_authority(h))
        .unwrap_or_else(|| settings.listen.to_string());
    ClientOrigin { scheme, authority }
}
