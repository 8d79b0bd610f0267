//! Reading one message into a [`Message`] in a single pass: the engine's own fields (type, ids,
//! times, `event`, `traits`) and the values at the plan's slot paths are kept; everything else is
//! skipped (still checked to be JSON). The field-skipping scanner ([`super::scan`]) reads nearly
//! every message; serde_json's deserializer reads the rest ([`read_message_serde`]) with the same
//! result, and gives the error message of a line that is not JSON. Strings without escapes are
//! borrowed from the input. [`read_fields`] reads a message given field by field (Parquet
//! columns) the same way.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Message, Plan, content_hash};
use crate::cel::FlatFields;
use crate::engine::{Event, EventError, TimeText, resolve_time_with};
use crate::time;

/// The plan's slot paths as a tree of field names, for one pass over a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTree {
    slot: Option<usize>,
    /// The slot is only tested for presence: it gets a marker, not the value.
    presence_only: bool,
    /// By key (a handful at most: a list is faster to search than a map).
    children: Vec<(String, FieldTree)>,
}

impl FieldTree {
    pub fn build(fields: &FlatFields) -> FieldTree {
        let mut root = FieldTree::default();
        for (slot, path) in fields.paths().iter().enumerate() {
            let mut node = &mut root;
            for key in path {
                let at = match node.children.iter().position(|(k, _)| k == key) {
                    Some(at) => at,
                    None => {
                        node.children.push((key.clone(), FieldTree::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            node.slot = Some(slot);
            node.presence_only = fields.presence_only(slot);
        }
        root
    }

    pub(crate) fn child(&self, key: &str) -> Option<&FieldTree> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, child)| child)
    }

    /// Whether the value at this node goes whole into its slot.
    pub(crate) fn reads_whole(&self) -> bool {
        self.slot.is_some() && !self.presence_only
    }

    /// Records a presence-only slot's marker: `null` for JSON null, else `true`.
    pub(crate) fn present(&self, slots: &mut [Option<Value>], present: bool) {
        if let Some(place) = self.slot.and_then(|slot| slots.get_mut(slot)) {
            *place = Some(if present { Value::Bool(true) } else { Value::Null });
        }
    }

    /// Empties the slots of this node and those below it (a repeated key replaces the value it had:
    /// the last occurrence wins, as in a parsed JSON object).
    pub(crate) fn clear(&self, slots: &mut [Option<Value>]) {
        if let Some(place) = self.slot.and_then(|slot| slots.get_mut(slot)) {
            *place = None;
        }
        for (_, child) in &self.children {
            child.clear(slots);
        }
    }

    /// Puts `value` (found at this node) into the slots of this node and those below it, in place
    /// of what an earlier occurrence of the key put there.
    pub(crate) fn replace(&self, value: &Value, slots: &mut [Option<Value>]) {
        self.clear(slots);
        self.fill(value, slots);
    }

    /// Puts `value` (found at this node) into the slots of this node and those below it.
    pub(crate) fn fill(&self, value: &Value, slots: &mut [Option<Value>]) {
        if let Some(slot) = self.slot
            && let Some(place) = slots.get_mut(slot)
        {
            *place = Some(if self.presence_only { FlatFields::marker(value) } else { value.clone() });
        }
        if let Value::Object(map) = value {
            for (key, child) in &self.children {
                if let Some(v) = map.get(key) {
                    child.fill(v, slots);
                }
            }
        }
    }
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON, or not a JSON object.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not a message the engine accepts.
    #[error("{0}")]
    Event(#[from] EventError),
    /// A field given as JSON text ([`FieldValue::Json`]) that is not JSON.
    #[error("`{field}` holds invalid JSON: {error}")]
    FieldJson { field: String, error: serde_json::Error },
}

/// A top-level field of a message given as a value rather than inside the message's JSON text
/// (a Parquet column). Reading fields ([`read_fields`]) gives the message that the JSON object of
/// those fields would give.
#[derive(Debug, Clone)]
pub enum FieldValue<'a> {
    Null,
    Text(&'a str),
    /// JSON text: an object (`properties`, `context`, …) or any JSON value.
    Json(&'a str),
    Number(serde_json::Number),
    Bool(bool),
    /// An instant (a timestamp column), which the JSON object would hold as RFC 3339 text.
    Instant(crate::time::Millis),
}

/// A scalar field as read: text (borrowed when possible), a number, null, or anything else.
#[derive(Debug, Clone)]
pub(crate) enum Text<'de> {
    Null,
    Str(Cow<'de, str>),
    Num(serde_json::Number),
    Other(Value),
    /// An instant given as such (see [`FieldValue::Instant`]): RFC 3339 text to anything but
    /// the time.
    Instant(crate::time::Millis),
}

impl<'de> Text<'de> {
    pub(crate) fn of_value(value: &Value) -> Text<'de> {
        match value {
            Value::Null => Text::Null,
            Value::String(s) => Text::Str(Cow::Owned(s.clone())),
            Value::Number(n) => Text::Num(n.clone()),
            other => Text::Other(other.clone()),
        }
    }

    /// An id: a non-empty string, or a number as its text.
    fn id(self) -> Option<Cow<'de, str>> {
        match self.textual() {
            Text::Str(s) if !s.is_empty() => Some(s),
            Text::Num(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }

    /// An instant as the text the JSON would hold; anything else as it is.
    fn textual(self) -> Text<'de> {
        match self {
            Text::Instant(ms) => Text::Str(Cow::Owned(time::format_timestamp(ms))),
            other => other,
        }
    }

    fn time(&self) -> TimeText<'_> {
        match self {
            Text::Null => TimeText::Absent,
            Text::Str(s) => TimeText::Text(s),
            Text::Num(n) => TimeText::Other(n.to_string()),
            Text::Other(v) => TimeText::Other(v.to_string()),
            Text::Instant(ms) => TimeText::Instant(*ms),
        }
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text<'de>, E> {
        Ok(Text::Num(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text<'de>, E> {
        Ok(Text::Num(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Text::Null, Text::Num))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text<'de>, E> {
        Ok(Text::Other(Value::Bool(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Text::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Text::Other)
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

/// A key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The engine's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Type,
    Event,
    UserId,
    AnonymousId,
    PreviousId,
    GroupId,
    MessageId,
    Timestamp,
    OriginalTimestamp,
    SentAt,
    ReceivedAt,
    Traits,
}

/// The message fields the engine itself reads (see [`Field`]).
pub(crate) const ENGINE_FIELDS: [&str; 12] = [
    "type",
    "event",
    "userId",
    "anonymousId",
    "previousId",
    "groupId",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "traits",
];

impl Field {
    pub(crate) fn of(key: &str) -> Option<Field> {
        Some(match key {
            "type" => Field::Type,
            "event" => Field::Event,
            "userId" => Field::UserId,
            "anonymousId" => Field::AnonymousId,
            "previousId" => Field::PreviousId,
            "groupId" => Field::GroupId,
            "messageId" => Field::MessageId,
            "timestamp" => Field::Timestamp,
            "originalTimestamp" => Field::OriginalTimestamp,
            "sentAt" => Field::SentAt,
            "receivedAt" => Field::ReceivedAt,
            "traits" => Field::Traits,
            _ => return None,
        })
    }
}

/// What one pass over a message collects.
#[derive(Default)]
pub(crate) struct Raw<'de> {
    /// type, event, userId, anonymousId, previousId, groupId, messageId, timestamp,
    /// originalTimestamp, sentAt, receivedAt (by `Field as usize`).
    pub(crate) texts: [Option<Text<'de>>; 11],
    pub(crate) traits: Option<Map<String, Value>>,
    pub(crate) slots: Vec<Option<Value>>,
}

impl Raw<'_> {
    /// An engine field's value read whole: kept as the field (`traits` when it is an object) and,
    /// if conditions read it too, in the slots of its node.
    pub(crate) fn put(&mut self, field: Field, node: Option<&FieldTree>, value: Value) {
        if let Some(node) = node {
            node.replace(&value, &mut self.slots);
        }
        if field == Field::Traits {
            self.traits = match value {
                Value::Object(map) => Some(map),
                _ => None,
            };
        } else {
            self.texts[field as usize] = Some(Text::of_value(&value));
        }
    }
}

/// Reads the values below one node of the field tree into the slots.
struct NodeSeed<'t, 's> {
    node: &'t FieldTree,
    slots: &'s mut [Option<Value>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.node.clear(self.slots);
        if self.node.reads_whole() {
            let value = Value::deserialize(deserializer)?;
            self.node.fill(&value, self.slots);
            return Ok(());
        }
        deserializer.deserialize_any(self)
    }
}

impl NodeSeed<'_, '_> {
    fn present(&mut self, present: bool) {
        self.node.present(self.slots, present);
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<(), A::Error> {
        self.present(true);
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            match self.node.child(&key) {
                Some(child) => access.next_value_seed(NodeSeed { node: child, slots: &mut *self.slots })?,
                None => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.present(true);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.present(true);
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.present(true);
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.present(true);
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.present(true);
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.present(true);
        Ok(())
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.present(false);
        Ok(())
    }

    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.present(false);
        Ok(())
    }
}

/// The top level of a message.
struct RootSeed<'t> {
    tree: &'t FieldTree,
    slots: usize,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_> {
    type Value = Raw<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_> {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Raw<'de>, A::Error> {
        let mut raw = Raw { slots: vec![None; self.slots], ..Raw::default() };
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            let node = self.tree.child(&key);
            match (Field::of(&key), node) {
                (Some(Field::Traits), node) => raw.put(Field::Traits, node, access.next_value::<Value>()?),
                (Some(field), None) => raw.texts[field as usize] = Some(access.next_value::<Text<'de>>()?),
                (Some(field), Some(node)) => raw.put(field, Some(node), access.next_value::<Value>()?),
                (None, Some(node)) => access.next_value_seed(NodeSeed { node, slots: &mut raw.slots })?,
                (None, None) => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// Reads one message (a JSON object) for `plan`. The result's strings borrow from `bytes` when
/// they have no escapes. Errors: not JSON or not an object ([`ReadError::Json`], with serde's
/// line and column), or not a message ([`ReadError::Event`]: a missing or non-string `type`, a bad
/// time, a `messageId` that is not a string).
///
/// The field-skipping scanner ([`super::scan`]) reads it; what the scanner declines (anything not
/// plainly JSON, or unusual) is read by [`read_message_serde`], which gives the same result.
pub fn read_message<'a>(plan: &Plan, bytes: &'a [u8]) -> Result<Message<'a>, ReadError> {
    if plan.tree.slot.is_none()
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        let mut raw = Raw { slots: vec![None; plan.fields.len()], ..Raw::default() };
        if super::scan::scan_message(&plan.tree, text, &mut raw).is_ok() {
            return assemble(plan, raw, content_hash(bytes));
        }
    }
    read_message_serde(plan, bytes)
}

/// [`read_message`] through serde_json's deserializer (one pass, skipped values checked but not
/// built): the reader of the messages the scanner declines, and its reference in tests.
pub fn read_message_serde<'a>(plan: &Plan, bytes: &'a [u8]) -> Result<Message<'a>, ReadError> {
    if plan.tree.slot.is_some() {
        // A condition reads `event` whole: no shortcut.
        let value: Value = serde_json::from_slice(bytes)?;
        if !value.is_object() {
            return Err(EventError::NotAnObject.into());
        }
        let event = Event::from_message(value)?;
        let mut message = Message::of_event(plan, &event).into_owned();
        message.tie = content_hash(bytes);
        return Ok(message);
    }
    // One UTF-8 check of the whole line (fast for ASCII) lets serde_json skip it per string.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            return Err(serde_json::from_slice::<IgnoredAny>(bytes)
                .err()
                .map_or_else(|| ReadError::Event(EventError::NotAnObject), ReadError::Json));
        }
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw = RootSeed { tree: &plan.tree, slots: plan.fields.len() }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    assemble(plan, raw, content_hash(bytes))
}

/// The message from the fields a pass collected.
fn assemble<'a>(plan: &Plan, mut raw: Raw<'a>, tie: u64) -> Result<Message<'a>, ReadError> {
    let mut take = |field: Field| raw.texts[field as usize].take().map(Text::textual);
    let kind = match take(Field::Type) {
        Some(Text::Str(s)) => s,
        None | Some(Text::Null) => return Err(EventError::MissingType.into()),
        Some(_) => return Err(EventError::TypeNotString.into()),
    };
    let message_id = match take(Field::MessageId) {
        None | Some(Text::Null) => None,
        Some(Text::Str(s)) => Some(s),
        Some(Text::Num(n)) => Some(Cow::Owned(n.to_string())),
        Some(Text::Other(_) | Text::Instant(_)) => return Err(EventError::NotAString("messageId").into()),
    };
    let event = match take(Field::Event) {
        Some(Text::Str(s)) => Some(s),
        _ => None,
    };
    let user_id = take(Field::UserId).and_then(Text::id);
    let anonymous_id = take(Field::AnonymousId).and_then(Text::id);
    let previous_id = take(Field::PreviousId).and_then(Text::id);
    let group_id = take(Field::GroupId).and_then(Text::id);
    let texts = &raw.texts;
    let at = resolve_time_with(|name| {
        let field = match name {
            "timestamp" => Field::Timestamp,
            "originalTimestamp" => Field::OriginalTimestamp,
            "sentAt" => Field::SentAt,
            _ => Field::ReceivedAt,
        };
        texts[field as usize].as_ref().map_or(TimeText::Absent, Text::time)
    })?
    .at;
    // What `Event::from_message` does to the body, conditions see here too: the resolved time as
    // `timestamp`, numeric ids as text.
    for (slot, path) in plan.fields.paths().iter().enumerate() {
        match path.as_slice() {
            [field] if field == "timestamp" => raw.slots[slot] = Some(Value::String(time::format_timestamp(at))),
            [field] if matches!(field.as_str(), "userId" | "anonymousId" | "previousId" | "groupId") => {
                if let Some(Value::Number(n)) = &raw.slots[slot] {
                    raw.slots[slot] = Some(Value::String(n.to_string()));
                }
            }
            _ => {}
        }
    }
    Ok(Message {
        kind,
        event,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        message_id,
        at,
        traits: raw.traits,
        slots: raw.slots,
        tie,
    })
}

/// Reads a message given field by field (a Parquet row's columns; fields absent from `fields`
/// are absent from the message): the same message as [`read_message`] gives for the JSON object
/// of those fields, except that `tie` is given. A plan that reads `event` whole cannot read
/// fields: build the JSON text instead.
pub fn read_fields<'a>(plan: &Plan, fields: &[(&'a str, FieldValue<'a>)], tie: u64) -> Result<Message<'a>, ReadError> {
    let mut raw = Raw { slots: vec![None; plan.fields.len()], ..Raw::default() };
    for (name, value) in fields {
        let field = Field::of(name);
        let node = plan.tree.child(name);
        if field.is_none() && node.is_none() {
            continue;
        }
        let invalid = |error| ReadError::FieldJson { field: (*name).to_owned(), error };
        let text = match value {
            FieldValue::Json(json) => {
                if field.is_none()
                    && let Some(node) = node
                {
                    if super::scan::scan_node(node, json, &mut raw.slots).is_err() {
                        let value: Value = serde_json::from_str(json).map_err(invalid)?;
                        node.replace(&value, &mut raw.slots);
                    }
                    continue;
                }
                let value: Value = serde_json::from_str(json).map_err(invalid)?;
                if let Some(field) = field {
                    raw.put(field, node, value);
                }
                continue;
            }
            scalar => {
                let (text, value) = match scalar {
                    FieldValue::Null => (Text::Null, node.map(|_| Value::Null)),
                    FieldValue::Text(s) => (Text::Str(Cow::Borrowed(*s)), node.map(|_| Value::String((*s).to_owned()))),
                    FieldValue::Number(n) => (Text::Num(n.clone()), node.map(|_| Value::Number(n.clone()))),
                    FieldValue::Bool(b) => (Text::Other(Value::Bool(*b)), node.map(|_| Value::Bool(*b))),
                    FieldValue::Instant(ms) => {
                        (Text::Instant(*ms), node.map(|_| Value::String(time::format_timestamp(*ms))))
                    }
                    FieldValue::Json(_) => continue,
                };
                if let (Some(node), Some(value)) = (node, &value) {
                    node.replace(value, &mut raw.slots);
                }
                if let Some(Field::Traits) = field {
                    // `traits` that is not an object.
                    raw.traits = None;
                    continue;
                }
                text
            }
        };
        if let Some(field) = field {
            raw.texts[field as usize] = Some(text);
        }
    }
    assemble(plan, raw, tie)
}

impl Message<'_> {
    /// The same message owning its strings.
    pub fn into_owned(self) -> Message<'static> {
        let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        Message {
            kind: Cow::Owned(self.kind.into_owned()),
            event: own(self.event),
            user_id: own(self.user_id),
            anonymous_id: own(self.anonymous_id),
            previous_id: own(self.previous_id),
            group_id: own(self.group_id),
            message_id: own(self.message_id),
            at: self.at,
            traits: self.traits,
            slots: self.slots,
            tie: self.tie,
        }
    }
}
