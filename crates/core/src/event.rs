//! A Segment message as the engine takes it ([`Event`]): its resolved time (SPEC §6.1, from
//! `timestamp`, `originalTimestamp` corrected by the clock skew, `sentAt` or receipt), the time from
//! which it belongs to its lead, and the message itself.

use serde_json::{Map, Value};

use crate::time::{self, Millis};

/// One Segment message attributed to a lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened.
    pub at: Millis,
    /// From when it belongs to this lead: `at`, or later for an anonymous event stitched to the
    /// lead by an `identify`/`alias` that came after it (the link's time).
    pub visible_at: Millis,
    pub message_id: Option<String>,
    /// The message as received (`type`, `event`, `properties`, `traits`, `context`, …), with
    /// `timestamp` set to the resolved event time.
    pub body: Value,
}

/// Why a message cannot be an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the message is not a JSON object")]
    NotAnObject,
    #[error("`type` is missing")]
    MissingType,
    #[error("`type` must be a string")]
    TypeNotString,
    #[error("`{field}` is not an RFC 3339 timestamp: `{value}`")]
    BadTimestamp { field: &'static str, value: String },
    #[error("the message has no time: give `timestamp` (RFC 3339)")]
    NoTime,
    #[error("`{field}` gives an event time outside the years 0000–9999 ({at} ms since 1970)")]
    TimeOutOfRange { field: &'static str, at: Millis },
    #[error("`{0}` must be a string")]
    NotAString(&'static str),
}

/// Where an event's time came from (SPEC §6.1: `timestamp`, else `originalTimestamp` corrected
/// by the clock skew `receivedAt − sentAt`, else `receivedAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    Timestamp,
    /// `originalTimestamp + (receivedAt − sentAt)`.
    SkewCorrected,
    OriginalTimestamp,
    ReceivedAt,
}

impl TimeSource {
    /// The message field the time was read from.
    pub fn field(self) -> &'static str {
        match self {
            TimeSource::Timestamp => "timestamp",
            TimeSource::SkewCorrected | TimeSource::OriginalTimestamp => "originalTimestamp",
            TimeSource::ReceivedAt => "receivedAt",
        }
    }
}

/// A message's resolved time and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    pub at: Millis,
    pub source: TimeSource,
}

/// Resolves a message's time. The fields it reads must be RFC 3339 timestamps, and the result
/// must be one too (years 0000–9999 after the skew correction), so a stored event's time can
/// always be read back.
pub fn resolve_time(object: &Map<String, Value>) -> Result<EventTime, EventError> {
    resolve_time_with(|field| match object.get(field) {
        None | Some(Value::Null) => TimeText::Absent,
        Some(Value::String(s)) => TimeText::Text(s),
        Some(other) => TimeText::Other(other.to_string()),
    })
}

/// A time field of a message as read: absent (or null), text, or something else (shown as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeText<'a> {
    Absent,
    Text(&'a str),
    Other(String),
    /// An instant given as such (a Parquet timestamp column).
    Instant(Millis),
}

/// [`resolve_time`] over fields however they were read (`field` gives each by name).
pub fn resolve_time_with<'a>(field: impl Fn(&'static str) -> TimeText<'a>) -> Result<EventTime, EventError> {
    let time_of = |name: &'static str| -> Result<Option<Millis>, EventError> {
        match field(name) {
            TimeText::Absent => Ok(None),
            TimeText::Text(s) => time::parse_timestamp(s)
                .map(Some)
                .ok_or_else(|| EventError::BadTimestamp { field: name, value: s.to_owned() }),
            TimeText::Other(json) => Err(EventError::BadTimestamp { field: name, value: json }),
            TimeText::Instant(ms) => Ok(Some(ms)),
        }
    };
    let (at, source) = match time_of("timestamp")? {
        Some(at) => (at, TimeSource::Timestamp),
        None => {
            let received = time_of("receivedAt")?;
            match (time_of("originalTimestamp")?, time_of("sentAt")?, received) {
                (Some(original), Some(sent), Some(received)) => {
                    (original.saturating_add(received.saturating_sub(sent)), TimeSource::SkewCorrected)
                }
                (Some(original), _, _) => (original, TimeSource::OriginalTimestamp),
                (None, _, Some(received)) => (received, TimeSource::ReceivedAt),
                (None, _, None) => return Err(EventError::NoTime),
            }
        }
    };
    if !time::is_representable(at) {
        return Err(EventError::TimeOutOfRange { field: source.field(), at });
    }
    Ok(EventTime { at, source })
}

impl Event {
    /// Builds an event from a Segment message. Its time is `timestamp`, else `originalTimestamp`
    /// corrected by the client clock skew `receivedAt − sentAt`, else `receivedAt`.
    pub fn from_message(mut body: Value) -> Result<Event, EventError> {
        let object = body.as_object().ok_or(EventError::NotAnObject)?;
        match object.get("type") {
            None | Some(Value::Null) => return Err(EventError::MissingType),
            Some(Value::String(_)) => {}
            Some(_) => return Err(EventError::TypeNotString),
        }
        let at = resolve_time(object)?.at;
        let message_id = match object.get("messageId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(EventError::NotAString("messageId")),
        };
        if let Some(object) = body.as_object_mut() {
            object.insert("timestamp".to_owned(), Value::String(time::format_timestamp(at)));
            // SDKs accept numeric ids; identity and rules see them as strings.
            for field in ["userId", "anonymousId", "previousId", "groupId"] {
                if let Some(Value::Number(n)) = object.get(field) {
                    let text = n.to_string();
                    object.insert(field.to_owned(), Value::String(text));
                }
            }
        }
        Ok(Event { at, visible_at: at, message_id, body })
    }

    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    fn str_field(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }
}

impl Event {
    /// The lead this message names directly (`userId`), if any.
    pub fn user_id(&self) -> Option<&str> {
        self.str_field("userId").filter(|s| !s.is_empty())
    }

    /// The anonymous id this message carries, if any.
    pub fn anonymous_id(&self) -> Option<&str> {
        self.str_field("anonymousId").filter(|s| !s.is_empty())
    }
}

/// The Segment calls the tracking API takes (a message's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl MessageKind {
    pub const ALL: [MessageKind; 6] = [
        MessageKind::Identify,
        MessageKind::Track,
        MessageKind::Page,
        MessageKind::Screen,
        MessageKind::Group,
        MessageKind::Alias,
    ];

    /// As messages name it: `identify`, `track`, …
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Identify => "identify",
            MessageKind::Track => "track",
            MessageKind::Page => "page",
            MessageKind::Screen => "screen",
            MessageKind::Group => "group",
            MessageKind::Alias => "alias",
        }
    }

    pub fn parse(text: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
