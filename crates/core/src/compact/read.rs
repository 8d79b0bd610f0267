//! Reading one JSON message into a [`Message`] in a single pass: serde_json walks the bytes once,
//! keeps the fields the engine needs (type, ids, times, `event`, `traits`) and the values at the
//! plan's slot paths, and skips everything else (still checking that it is JSON). Strings without
//! escapes are borrowed from the input.

use std::borrow::Cow;
use std::collections::BTreeMap;
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
    children: BTreeMap<String, FieldTree>,
}

impl FieldTree {
    pub fn build(fields: &FlatFields) -> FieldTree {
        let mut root = FieldTree::default();
        for (slot, path) in fields.paths().iter().enumerate() {
            let mut node = &mut root;
            for key in path {
                node = node.children.entry(key.clone()).or_default();
            }
            node.slot = Some(slot);
            node.presence_only = fields.presence_only(slot);
        }
        root
    }

    /// Empties the slots of this node and those below it (a repeated key replaces the value it had:
    /// the last occurrence wins, as in a parsed JSON object).
    fn clear(&self, slots: &mut [Option<Value>]) {
        if let Some(place) = self.slot.and_then(|slot| slots.get_mut(slot)) {
            *place = None;
        }
        for child in self.children.values() {
            child.clear(slots);
        }
    }

    /// Puts `value` (found at this node) into the slots of this node and those below it.
    fn fill(&self, value: &Value, slots: &mut [Option<Value>]) {
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
}

/// A scalar field as read: text (borrowed when possible), a number, null, or anything else.
#[derive(Debug, Clone)]
enum Text<'de> {
    Null,
    Str(Cow<'de, str>),
    Num(serde_json::Number),
    Other(Value),
}

impl<'de> Text<'de> {
    fn of_value(value: &Value) -> Text<'de> {
        match value {
            Value::Null => Text::Null,
            Value::String(s) => Text::Str(Cow::Owned(s.clone())),
            Value::Number(n) => Text::Num(n.clone()),
            other => Text::Other(other.clone()),
        }
    }

    /// An id: a non-empty string, or a number as its text.
    fn id(self) -> Option<Cow<'de, str>> {
        match self {
            Text::Str(s) if !s.is_empty() => Some(s),
            Text::Num(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }

    fn time(&self) -> TimeText<'_> {
        match self {
            Text::Null => TimeText::Absent,
            Text::Str(s) => TimeText::Text(s),
            Text::Num(n) => TimeText::Other(n.to_string()),
            Text::Other(v) => TimeText::Other(v.to_string()),
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
#[derive(Debug, Clone, Copy)]
enum Field {
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

impl Field {
    fn of(key: &str) -> Option<Field> {
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
struct Raw<'de> {
    /// type, event, userId, anonymousId, previousId, groupId, messageId, timestamp,
    /// originalTimestamp, sentAt, receivedAt (by `Field as usize`).
    texts: [Option<Text<'de>>; 11],
    traits: Option<Map<String, Value>>,
    slots: Vec<Option<Value>>,
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
        if self.node.slot.is_some() && !self.node.presence_only {
            let value = Value::deserialize(deserializer)?;
            self.node.fill(&value, self.slots);
            return Ok(());
        }
        deserializer.deserialize_any(self)
    }
}

impl NodeSeed<'_, '_> {
    /// Records a presence-only slot's marker: `null` for JSON null, else `true`.
    fn present(&mut self, present: bool) {
        if let Some(place) = self.node.slot.and_then(|slot| self.slots.get_mut(slot)) {
            *place = Some(if present { Value::Bool(true) } else { Value::Null });
        }
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
            match self.node.children.get(key.as_ref()) {
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
            let node = self.tree.children.get(key.as_ref());
            match (Field::of(&key), node) {
                (Some(Field::Traits), node) => {
                    let value = access.next_value::<Value>()?;
                    if let Some(node) = node {
                        node.clear(&mut raw.slots);
                        node.fill(&value, &mut raw.slots);
                    }
                    raw.traits = match value {
                        Value::Object(map) => Some(map),
                        _ => None,
                    };
                }
                (Some(field), None) => raw.texts[field as usize] = Some(access.next_value::<Text<'de>>()?),
                (Some(field), Some(node)) => {
                    let value = access.next_value::<Value>()?;
                    node.clear(&mut raw.slots);
                    node.fill(&value, &mut raw.slots);
                    raw.texts[field as usize] = Some(Text::of_value(&value));
                }
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
pub fn read_message<'a>(plan: &Plan, bytes: &'a [u8]) -> Result<Message<'a>, ReadError> {
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
    let mut raw = RootSeed { tree: &plan.tree, slots: plan.fields.len() }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    let mut take = |field: Field| raw.texts[field as usize].take();
    let kind = match take(Field::Type) {
        Some(Text::Str(s)) => s,
        None | Some(Text::Null) => return Err(EventError::MissingType.into()),
        Some(_) => return Err(EventError::TypeNotString.into()),
    };
    let message_id = match take(Field::MessageId) {
        None | Some(Text::Null) => None,
        Some(Text::Str(s)) => Some(s),
        Some(Text::Num(n)) => Some(Cow::Owned(n.to_string())),
        Some(Text::Other(_)) => return Err(EventError::NotAString("messageId").into()),
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
        tie: content_hash(bytes),
    })
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
