//! Decoding Segment tracking-API requests (SPEC §6.1, INGEST-CLIENTS.md) into events to store:
//! gzip or not, whatever the content type says (`application/json`, `text/plain`, form-encoded),
//! the write key from Basic auth or the body, explicit nulls, `context.traits`, clock-skew
//! correction, size limits, and a JSON path in every error. Pure: bytes in, events or an error out.

use std::io::Read;

pub use axum::http::HeaderMap;
use axum::http::header;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use leadscore_core::Event;
use leadscore_core::engine::{EventError, TimeSource, resolve_time};
use leadscore_core::event::MessageKind;
use leadscore_core::time::{self, Millis};
use leadscore_service::auth::{Keys, Role};
use leadscore_service::ingest::{Incoming, MAX_ID_BYTES, NewEvent};

use crate::error::{ApiError, Code};

/// Segment's limits: 32 KB per message, 500 KB per request body.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

/// A decoded request.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub write_key: String,
    pub messages: Vec<Incoming>,
}

/// The message type a single-message path implies (`/v1/track`, `/v1/t`, …).
pub fn type_of_path(segment: &str) -> Option<MessageKind> {
    Some(match segment {
        "i" => MessageKind::Identify,
        "t" => MessageKind::Track,
        "p" => MessageKind::Page,
        "s" => MessageKind::Screen,
        "g" => MessageKind::Group,
        "a" => MessageKind::Alias,
        other => return MessageKind::parse(other),
    })
}

/// Decodes one request. `implied_type` is `None` for `/v1/batch` and `/v1/b`. Every message is
/// validated completely here, before anything is queued: an event time before 1970 or more than
/// `max_future` after `received_at` is a 400.
pub fn decode(
    implied_type: Option<MessageKind>,
    headers: &HeaderMap,
    body: &[u8],
    keys: &Keys,
    received_at: Millis,
    max_future: Millis,
    query_key: Option<&str>,
) -> Result<Decoded, ApiError> {
    let body = decompress(headers, body)?;
    if body.len() > MAX_BATCH_BYTES {
        return Err(ApiError::new(
            Code::BatchTooLarge,
            format!("the request body is {} bytes; the limit is {MAX_BATCH_BYTES} (500 KB)", body.len()),
        ));
    }
    let root: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(ApiError::new(Code::InvalidBody, "the body must be a JSON object"));
    };
    let write_key = authenticate(headers, &root, query_key, keys)?;
    let batch_sent_at = root.get("sentAt").cloned().filter(|v| !v.is_null());
    let (messages, path_of): (Vec<Value>, Box<dyn Fn(usize) -> String>) = match implied_type {
        None => match root.remove("batch") {
            Some(Value::Array(items)) => (items, Box::new(|i| format!("batch[{i}]"))),
            Some(_) => return Err(ApiError::new(Code::InvalidBatch, "`batch` must be an array")),
            None => return Err(ApiError::new(Code::InvalidBatch, "`batch` is missing")),
        },
        Some(kind) => {
            root.remove("writeKey");
            root.entry("type").or_insert_with(|| Value::String(kind.as_str().to_owned()));
            (vec![Value::Object(root)], Box::new(|_| "$".to_owned()))
        }
    };
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let path = path_of(i);
        out.push(normalise(message, &path, &write_key, batch_sent_at.as_ref(), received_at, max_future)?);
    }
    Ok(Decoded { write_key, messages: out })
}

/// Undoes `Content-Encoding: gzip` (also a gzip body sent without the header, as some
/// form-encoded clients do), never inflating past the batch limit.
fn decompress(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    let gzip_magic = body.starts_with(&[0x1f, 0x8b]);
    match encoding.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => inflate(body),
        "" | "identity" if gzip_magic => inflate(body),
        "" | "identity" => Ok(body.to_vec()),
        other => Err(ApiError::new(
            Code::UnsupportedEncoding,
            format!("Content-Encoding `{other}` is not supported (use gzip or none)"),
        )),
    }
}

fn inflate(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(MAX_BATCH_BYTES as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ApiError::new(Code::InvalidGzip, format!("the body is not valid gzip: {e}")))?;
    if out.len() > MAX_BATCH_BYTES {
        return Err(ApiError::new(
            Code::BatchTooLarge,
            format!("the decompressed body is over {MAX_BATCH_BYTES} bytes (500 KB)"),
        ));
    }
    Ok(out)
}

/// The Basic-auth user name (the write key; password empty, the colon may be missing).
pub fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or("").to_owned())
}

/// The write key: Basic auth user name, else `writeKey` in the body, else `writeKey` in the
/// query (RudderStack's beacon).
fn authenticate(
    headers: &HeaderMap,
    root: &Map<String, Value>,
    query_key: Option<&str>,
    keys: &Keys,
) -> Result<String, ApiError> {
    let key = basic_user(headers)
        .filter(|k| !k.is_empty())
        .or_else(|| root.get("writeKey").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| query_key.filter(|k| !k.is_empty()).map(str::to_owned))
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingWriteKey,
                "no write key: send it as the Basic-auth user name or as `writeKey` in the body",
            )
        })?;
    if keys.has(&key, Role::Write) {
        Ok(key)
    } else {
        Err(ApiError::new(Code::InvalidWriteKey, "the write key is not valid"))
    }
}

fn invalid(path: &str, field: &str, message: impl std::fmt::Display) -> ApiError {
    let code = if field == "timestamp" { Code::InvalidTimestamp } else { Code::InvalidMessage };
    ApiError::new(code, format!("{path}.{field}: {message}"))
}

/// Every time field must be an RFC 3339 timestamp, and the event time they give (SPEC §6.1) must
/// lie between 1970 and `max_future` after the receipt.
fn check_time(m: &Map<String, Value>, path: &str, received_at: Millis, max_future: Millis) -> Result<(), ApiError> {
    let bad =
        |field: &str, message: String| ApiError::new(Code::InvalidTimestamp, format!("{path}.{field}: {message}"));
    for field in ["timestamp", "originalTimestamp", "sentAt"] {
        match m.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if time::parse_timestamp(s).is_some() => {}
            Some(Value::String(s)) => return Err(bad(field, format!("`{s}` is not an RFC 3339 timestamp"))),
            Some(other) => return Err(bad(field, format!("`{other}` is not an RFC 3339 timestamp"))),
        }
    }
    let resolved = resolve_time(m).map_err(|e| match e {
        EventError::TimeOutOfRange { field, .. } => {
            bad(field, "the event time is outside the years 0000–9999".to_owned())
        }
        other => bad("timestamp", other.to_string()),
    })?;
    let field = resolved.source.field();
    let how = match resolved.source {
        TimeSource::SkewCorrected => " (corrected by the clock skew receivedAt − sentAt)",
        _ => "",
    };
    let latest = received_at.saturating_add(max_future);
    if resolved.at < 0 {
        return Err(bad(field, format!("the event time {}{how} is before 1970", time::format_timestamp(resolved.at))));
    }
    if resolved.at > latest {
        return Err(bad(
            field,
            format!(
                "the event time {}{how} is more than {} after its receipt at {}",
                time::format_timestamp(resolved.at),
                leadscore_core::time::Duration::from_millis(max_future.max(1)),
                time::format_timestamp(received_at)
            ),
        ));
    }
    Ok(())
}

/// Validates one message and brings it to the stored form: `type` known, an id present, traits
/// from `context.traits` when `traits` is missing, `receivedAt` and `sentAt` set so the event
/// time is `timestamp`, else `originalTimestamp` corrected for clock skew, else receipt.
fn normalise(
    message: Value,
    path: &str,
    write_key: &str,
    batch_sent_at: Option<&Value>,
    received_at: Millis,
    max_future: Millis,
) -> Result<Incoming, ApiError> {
    let Value::Object(mut m) = message else {
        return Err(ApiError::new(Code::InvalidMessage, format!("{path}: a message must be a JSON object")));
    };
    let size = serde_json::to_vec(&m).map_or(0, |v| v.len());
    if size > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            Code::MessageTooLarge,
            format!("{path}: the message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} (32 KB)"),
        ));
    }
    let kind = match m.get("type") {
        Some(Value::String(t)) => MessageKind::parse(t).ok_or_else(|| {
            let known: Vec<&str> = MessageKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::new(
                Code::UnknownType,
                format!("{path}.type: unknown message type `{t}` (known: {})", known.join(", ")),
            )
        })?,
        None | Some(Value::Null) => return Err(invalid(path, "type", "is missing")),
        Some(_) => return Err(invalid(path, "type", "must be a string")),
    };
    for field in ["userId", "anonymousId", "previousId", "groupId", "messageId"] {
        match m.get(field) {
            Some(Value::String(s)) if s.contains('\0') => {
                return Err(invalid(path, field, "must not contain a NUL character"));
            }
            // Ids are indexed: PostgreSQL refuses index entries over ~2.7 KB.
            Some(Value::String(s)) if s.len() > MAX_ID_BYTES => {
                return Err(invalid(path, field, format!("is {} bytes long; the limit is {MAX_ID_BYTES}", s.len())));
            }
            None | Some(Value::Null | Value::String(_) | Value::Number(_)) => {}
            Some(_) => return Err(invalid(path, field, "must be a string")),
        }
    }
    let id_of = |m: &Map<String, Value>, field: &str| match m.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let user_id = id_of(&m, "userId");
    let anonymous_id = id_of(&m, "anonymousId");
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(ApiError::new(
            Code::MissingId,
            format!("{path}: give `userId` or `anonymousId` (both are missing or empty)"),
        ));
    }
    if kind == MessageKind::Alias && (user_id.is_none() || id_of(&m, "previousId").is_none()) {
        return Err(ApiError::new(Code::MissingId, format!("{path}: an alias needs `userId` and `previousId`")));
    }
    if kind == MessageKind::Group && id_of(&m, "groupId").is_none() {
        return Err(ApiError::new(Code::MissingId, format!("{path}: a group call needs `groupId`")));
    }
    if kind == MessageKind::Track && !matches!(m.get("event"), Some(Value::String(e)) if !e.is_empty()) {
        return Err(invalid(path, "event", "a track call needs the event name as a string"));
    }
    for field in ["properties", "traits", "context"] {
        match m.get(field) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(_) => return Err(invalid(path, field, "must be an object")),
        }
    }
    // RudderStack Python sends identify traits only in `context.traits`.
    if matches!(m.get("traits"), None | Some(Value::Null))
        && let Some(traits) = m.get("context").and_then(|c| c.get("traits")).filter(|t| t.is_object()).cloned()
    {
        m.insert("traits".to_owned(), traits);
    }
    let message_id = match id_of(&m, "messageId") {
        Some(id) => id,
        None => {
            // No messageId: derive one from the content (before the receipt fields are added), so a
            // resent copy still counts once.
            let digest = Sha256::digest(serde_json::to_vec(&m).unwrap_or_default());
            let id = format!("ls-{}", hex::encode(&digest[..16]));
            m.insert("messageId".to_owned(), Value::String(id.clone()));
            id
        }
    };
    if matches!(m.get("sentAt"), None | Some(Value::Null))
        && let Some(sent) = batch_sent_at
    {
        m.insert("sentAt".to_owned(), sent.clone());
    }
    m.insert("receivedAt".to_owned(), Value::String(time::format_timestamp(received_at)));
    check_time(&m, path, received_at, max_future)?;
    let group_id = id_of(&m, "groupId");
    let event = Event::from_message(Value::Object(m))
        .map_err(|e| ApiError::new(Code::InvalidMessage, format!("{path}: {e}")))?;
    let body =
        serde_json::to_string(&event.body).map_err(|e| ApiError::new(Code::InvalidMessage, format!("{path}: {e}")))?;
    Ok(Incoming {
        new: NewEvent {
            write_key: write_key.to_owned(),
            message_id,
            lead_id: user_id,
            anonymous_id,
            group_id,
            event_type: kind,
            at: event.at,
            received_at,
            body,
        },
        event,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    // 2026-12-01T00:00:00Z.
    const NOW: Millis = 1_796_083_200_000;

    const DAY: Millis = 86_400_000;

    fn keys() -> Keys {
        Keys::new([("wk", Role::Write), ("ak", Role::Admin)])
    }

    fn basic(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        h
    }

    #[test]
    fn python_sdk_batch_with_explicit_nulls_is_accepted() {
        let body = br#"{"batch":[{"integrations":{},"anonymousId":null,"timestamp":"2026-11-22T09:14:19.907+00:00",
            "context":{"library":{"name":"analytics-python","version":"2.4.0"}},"type":"identify","userId":"user-42",
            "traits":{"email":"jane@acme.com"},"messageId":"m1"}],"sentAt":"2026-11-22T09:14:20.421766+00:00","writeKey":"wk"}"#;
        let d = decode(None, &basic("wk"), body, &keys(), NOW, DAY, None).unwrap();
        assert_eq!(d.messages.len(), 1);
        assert_eq!(d.messages[0].new.lead_id.as_deref(), Some("user-42"));
        assert_eq!(d.messages[0].new.at, time::parse_timestamp("2026-11-22T09:14:19.907Z").unwrap());
    }

    #[test]
    fn rudder_context_traits_and_original_timestamp_are_used() {
        let body = br#"{"batch":[{"type":"identify","userId":"u","context":{"traits":{"title":"CTO"}},
            "originalTimestamp":"2026-01-01T00:00:00.000Z","sentAt":"2026-01-01T00:00:10.000Z","messageId":"m"}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        let mut headers = basic("wk");
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let received = time::parse_timestamp("2026-01-01T00:00:15Z").unwrap();
        let d = decode(None, &headers, &gz.finish().unwrap(), &keys(), received, DAY, None).unwrap();
        let m = &d.messages[0];
        assert_eq!(m.event.body["traits"]["title"], "CTO");
        // 5 s of skew: the client clock is 5 s behind the server.
        assert_eq!(m.new.at, time::parse_timestamp("2026-01-01T00:00:05Z").unwrap());
    }

    #[test]
    fn short_browser_paths_imply_the_type_and_take_the_key_from_the_body() {
        let body = br#"{"writeKey":"wk","event":"Signed Up","anonymousId":"a1","messageId":"x"}"#;
        let d = decode(type_of_path("t"), &HeaderMap::new(), body, &keys(), NOW, DAY, None).unwrap();
        assert_eq!(d.messages[0].new.event_type, MessageKind::Track);
        assert_eq!(d.messages[0].new.at, NOW);
    }

    #[test]
    fn errors_have_stable_codes_and_json_paths() {
        let cases: [(&[u8], &str, &str); 9] = [
            (b"{not json", "invalid_json", ""),
            (br#"{"batch":{}}"#, "invalid_batch", "`batch`"),
            (br#"{"batch":[{"type":"frob","userId":"u"}]}"#, "unknown_type", "batch[0].type"),
            (br#"{"batch":[{"type":"track","event":"x"}]}"#, "missing_id", "batch[0]"),
            (br#"{"batch":[{"type":"track","event":"x","userId":"u"},{"type":"page","userId":"u","timestamp":"yesterday"}]}"#,
                "invalid_timestamp", "batch[1].timestamp"),
            (br#"{"batch":[{"type":"track","userId":"u","event":7}]}"#, "invalid_message", "batch[0].event"),
            (br#"{"batch":[{"type":"track","userId":{"a":1},"event":"e"}]}"#, "invalid_message", "batch[0].userId"),
            (br#"{"batch":[{"type":"identify","userId":"u","traits":[1]}]}"#, "invalid_message", "batch[0].traits"),
            (br#"{"batch":[{"type":"track","userId":"a\u0000b","event":"e"}]}"#, "invalid_message", "batch[0].userId"),
        ];
        let long =
            format!(r#"{{"batch":[{{"type":"track","userId":"u","event":"e","messageId":"{}"}}]}}"#, "m".repeat(1025));
        let e = decode(None, &basic("wk"), long.as_bytes(), &keys(), NOW, DAY, None).unwrap_err();
        assert!(e.message.starts_with("batch[0].messageId: is 1025 bytes long"), "{}", e.message);
        for (body, code, path) in cases {
            let e = decode(None, &basic("wk"), body, &keys(), NOW, DAY, None).unwrap_err();
            assert_eq!(e.code.name(), code, "{}", String::from_utf8_lossy(body));
            assert!(e.message.contains(path), "{} lacks {path}", e.message);
        }
    }

    /// The reported attack and its relatives: every way to give an event an unreadable or absurd
    /// time is a 400 naming the field, whichever field the time comes from.
    #[test]
    fn event_times_outside_1970_to_receipt_plus_allowance_are_refused() {
        let cases: [(&str, &str); 7] = [
            (
                r#"{"anonymousId":"a7","originalTimestamp":"9999-12-30T00:00:00Z","sentAt":"1970-01-01T00:00:00Z"}"#,
                "$.originalTimestamp",
            ),
            (r#"{"anonymousId":"a7","timestamp":"9999-12-30T00:00:00Z"}"#, "$.timestamp"),
            (r#"{"anonymousId":"a7","timestamp":"1969-12-31T23:59:59Z"}"#, "$.timestamp"),
            (r#"{"anonymousId":"a7","originalTimestamp":"1960-01-01T00:00:00Z"}"#, "$.originalTimestamp"),
            (
                r#"{"anonymousId":"a7","originalTimestamp":"2026-01-01T00:00:00Z","sentAt":"1900-01-01T00:00:00Z"}"#,
                "$.originalTimestamp",
            ),
            (r#"{"anonymousId":"a7","timestamp":"2026-01-01T00:00:00Z","sentAt":"not a time"}"#, "$.sentAt"),
            (r#"{"anonymousId":"a7","originalTimestamp":"2026-01-01T00:00:00Z","sentAt":12}"#, "$.sentAt"),
        ];
        for (body, path) in cases {
            let e = decode(type_of_path("page"), &basic("wk"), body.as_bytes(), &keys(), NOW, DAY, None).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code.name()), (400, "invalid_timestamp"), "{body}: {}", e.message);
            assert!(e.message.starts_with(path), "{body}: {}", e.message);
        }
        // A batch-level sentAt counts for every message without its own.
        let batch = r#"{"batch":[{"type":"track","userId":"u","event":"e","originalTimestamp":"2026-01-01T00:00:00Z"}],"sentAt":"1971-01-01T00:00:00Z"}"#;
        let e = decode(None, &basic("wk"), batch.as_bytes(), &keys(), NOW, DAY, None).unwrap_err();
        assert_eq!(e.code.name(), "invalid_timestamp");
        assert!(e.message.contains("batch[0].originalTimestamp") && e.message.contains("clock skew"), "{}", e.message);
        // Up to the allowance after receipt is fine; past it is not.
        let soon = format!(r#"{{"anonymousId":"a","timestamp":"{}"}}"#, time::format_timestamp(NOW + DAY));
        assert!(decode(type_of_path("page"), &basic("wk"), soon.as_bytes(), &keys(), NOW, DAY, None).is_ok());
        let later = format!(r#"{{"anonymousId":"a","timestamp":"{}"}}"#, time::format_timestamp(NOW + DAY + 1000));
        assert!(decode(type_of_path("page"), &basic("wk"), later.as_bytes(), &keys(), NOW, DAY, None).is_err());
        // Every accepted time reads back from the stored body.
        let ok = decode(type_of_path("page"), &basic("wk"), soon.as_bytes(), &keys(), NOW, DAY, None).unwrap();
        let stored: Value = serde_json::from_str(&ok.messages[0].new.body).unwrap();
        assert_eq!(Event::from_message(stored).unwrap().at, NOW + DAY);
    }

    #[test]
    fn only_write_keys_send_events() {
        let body = br#"{"batch":[]}"#;
        assert_eq!(
            decode(None, &basic("ak"), body, &keys(), NOW, DAY, None).unwrap_err().code.name(),
            "invalid_write_key"
        );
    }

    #[test]
    fn keys_and_limits_are_enforced() {
        let body = br#"{"batch":[]}"#;
        assert_eq!(
            decode(None, &HeaderMap::new(), body, &keys(), NOW, DAY, None).unwrap_err().code.name(),
            "missing_write_key"
        );
        assert_eq!(
            decode(None, &basic("nope"), body, &keys(), NOW, DAY, None).unwrap_err().code.name(),
            "invalid_write_key"
        );
        let big = format!(
            r#"{{"batch":[{{"type":"track","userId":"u","event":"e","properties":{{"x":"{}"}}}}]}}"#,
            "a".repeat(40_000)
        );
        let e = decode(None, &basic("wk"), big.as_bytes(), &keys(), NOW, DAY, None).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.name()), (413, "message_too_large"));
        let huge = format!(r#"{{"batch":[],"pad":"{}"}}"#, "a".repeat(600_000));
        assert_eq!(
            decode(None, &basic("wk"), huge.as_bytes(), &keys(), NOW, DAY, None).unwrap_err().code.name(),
            "batch_too_large"
        );
        let mut h = basic("wk");
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            decode(None, &h, b"\x1f\x8bnot really", &keys(), NOW, DAY, None).unwrap_err().code.name(),
            "invalid_gzip"
        );
    }

    #[test]
    fn messages_without_an_id_get_one_from_their_content() {
        let body = br#"{"batch":[{"type":"track","userId":"u","event":"e","timestamp":"2026-01-01T00:00:00Z"}]}"#;
        let a = decode(None, &basic("wk"), body, &keys(), NOW, DAY, None).unwrap();
        let b = decode(None, &basic("wk"), body, &keys(), NOW, DAY, None).unwrap();
        assert_eq!(a.messages[0].new.message_id, b.messages[0].new.message_id);
        assert!(a.messages[0].new.message_id.starts_with("ls-"));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    // 2026-12-01T00:00:00Z.
    const NOW: Millis = 1_796_083_200_000;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "[a-zA-Z0-9:+. -]{0,12}".prop_map(Value::from),
            prop_oneof![
                Just("track"),
                Just("identify"),
                Just("page"),
                Just("group"),
                Just("alias"),
                Just("2026-01-01T00:00:00Z")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("userId".to_owned()),
                        Just("anonymousId".to_owned()),
                        Just("event".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("originalTimestamp".to_owned()),
                        Just("sentAt".to_owned()),
                        Just("traits".to_owned()),
                        Just("context".to_owned()),
                        Just("batch".to_owned()),
                        Just("groupId".to_owned()),
                        Just("previousId".to_owned()),
                        Just("messageId".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever arrives, decoding answers a 4xx or accepts it: never a panic, never a 5xx.
        #[test]
        fn any_json_body_is_accepted_or_a_4xx(body in json_value(), path in prop_oneof![Just(None), Just(Some(MessageKind::Track)), Just(Some(MessageKind::Identify))]) {
            let mut body = body;
            if let Some(object) = body.as_object_mut() {
                object.insert("writeKey".to_owned(), Value::from("wk"));
            }
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            match decode(path, &HeaderMap::new(), &bytes, &Keys::new([("wk", Role::Write)]), NOW, 86_400_000, None) {
                Ok(decoded) => prop_assert!(decoded.messages.iter().all(|m| !m.new.message_id.is_empty())),
                Err(e) => prop_assert!(e.status.is_client_error(), "{} {}", e.status, e.message),
            }
        }

        #[test]
        fn any_bytes_are_accepted_or_a_4xx(bytes in prop::collection::vec(any::<u8>(), 0..300), gzip in any::<bool>()) {
            let mut headers = HeaderMap::new();
            if gzip {
                headers.insert(header::CONTENT_ENCODING, axum::http::HeaderValue::from_static("gzip"));
            }
            if let Err(e) = decode(None, &headers, &bytes, &Keys::new([("wk", Role::Write)]), NOW, 86_400_000, None) {
                prop_assert!(e.status.is_client_error(), "{} {}", e.status, e.message);
            }
        }
    }
}
