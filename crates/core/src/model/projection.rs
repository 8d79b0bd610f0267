//! Which parts of an event's JSON a model can read. Every static field path its event conditions
//! use (`event.properties.path`, `event.context.userAgent`; a path followed by an index or used
//! whole keeps its whole subtree, and a bare `event` keeps everything) plus the fields the engine
//! itself reads (ids, times, `traits`) form a projection. Events parsed through it (`project`)
//! skip everything else without allocating it, which is most of a real analytics.js message
//! (`context.page` alone repeats the page). Scores are the same as on the full message.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{CheckedModel, RuleKind};

/// A tree of field names to keep; a node marked `all` keeps its whole subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    all: bool,
    fields: BTreeMap<String, Projection>,
}

impl Projection {
    /// Keeps everything.
    pub fn everything() -> Projection {
        Projection { all: true, fields: BTreeMap::new() }
    }

    /// Keeps the value at `path` (and all below it).
    pub fn keep(&mut self, path: &[String]) {
        if self.all {
            return;
        }
        match path.split_first() {
            None => {
                self.all = true;
                self.fields.clear();
            }
            Some((head, rest)) => self.fields.entry(head.clone()).or_default().keep(rest),
        }
    }

    /// Keeps also what `other` keeps.
    pub fn merge(&mut self, other: &Projection) {
        if self.all {
            return;
        }
        if other.all {
            self.all = true;
            self.fields.clear();
            return;
        }
        for (key, below) in &other.fields {
            self.fields.entry(key.clone()).or_default().merge(below);
        }
    }

    pub fn keeps_everything(&self) -> bool {
        self.all
    }
}

impl CheckedModel {
    /// The lead traits this model's rules read: the first name of each `lead.…` path (`id` and
    /// `account` aside).
    pub fn lead_traits_read(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for rule in &self.rules {
            let lead_slot = if matches!(rule.kind, RuleKind::Trait { .. }) { 0 } else { 1 };
            for path in rule.kind.condition().field_paths() {
                match path.path.first() {
                    Some(first) if path.var == lead_slot && first != "id" && first != "account" => {
                        out.insert(first.clone());
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The parts of an event any of this model's conditions (and the engine) can read.
    pub fn event_projection(&self) -> Projection {
        let mut projection = Projection::default();
        // The fields the engine and identity stitching read, whatever the model says.
        for field in crate::compact::ENGINE_FIELDS {
            projection.keep(&[(*field).to_owned()]);
        }
        let event_conditions = self
            .rules
            .iter()
            .filter(|r| !matches!(r.kind, RuleKind::Trait { .. }))
            .map(|r| r.kind.condition())
            .chain(self.ignore.as_ref());
        for condition in event_conditions {
            // `event` is slot 0 in both event conditions and `[events] ignore`.
            for path in condition.field_paths().into_iter().filter(|p| p.var == 0) {
                projection.keep(&path.path);
            }
        }
        projection
    }
}

/// Parses one JSON value, keeping only what `projection` keeps.
pub struct Project<'p>(pub &'p Projection);

impl<'de> DeserializeSeed<'de> for Project<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.all {
            return serde::Deserialize::deserialize(deserializer);
        }
        deserializer.deserialize_any(ProjectVisitor(self.0))
    }
}

struct ProjectVisitor<'p>(&'p Projection);

impl<'de> Visitor<'de> for ProjectVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.fields.get(key.as_ref()) {
                Some(child) => {
                    let value = access.next_value_seed(Project(child))?;
                    map.insert(key.into_owned(), value);
                }
                None => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(map))
    }

    // Anything but an object is kept whole: a projection only selects fields of objects.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(access))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Parses a JSON message keeping only what `projection` keeps.
pub fn parse_projected(json: &[u8], projection: &Projection) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = Project(projection).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(rules: &str) -> CheckedModel {
        CheckedModel::from_source(&format!("[model]\nname = \"p\"\n[dimensions.engagement]\n{rules}"))
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    const MESSAGE: &str = r#"{"type":"page","userId":"a","timestamp":"2024-01-01T00:00:00Z","messageId":"m",
        "properties":{"path":"/pricing","url":"https://x/pricing","items":[{"sku":"a"}]},
        "context":{"userAgent":"Mozilla","page":{"path":"/pricing","title":"Pricing"},"ip":"1.2.3.4"},"traits":{"title":"CEO"}}"#;

    #[test]
    fn projection_keeps_referenced_paths_and_engine_fields_only() {
        let m = model("[[rules]]\nname = \"r\"\non = 'event.properties.path == \"/pricing\"'\npoints = 1\n");
        let value = parse_projected(MESSAGE.as_bytes(), &m.event_projection()).unwrap();
        assert_eq!(
            value,
            json!({"type": "page", "userId": "a", "timestamp": "2024-01-01T00:00:00Z", "messageId": "m",
                   "properties": {"path": "/pricing"}, "traits": {"title": "CEO"}})
        );
    }

    #[test]
    fn an_index_or_a_bare_variable_keeps_the_subtree() {
        let m = model("[[rules]]\nname = \"r\"\non = 'event.properties.items[0].sku == \"a\"'\npoints = 1\n");
        let value = parse_projected(MESSAGE.as_bytes(), &m.event_projection()).unwrap();
        assert_eq!(value["properties"]["items"], json!([{"sku": "a"}]));
        assert!(value["properties"].get("url").is_none());
        let m = model("[[rules]]\nname = \"r\"\non = 'size(event) > 3'\npoints = 1\n");
        assert!(m.event_projection().keeps_everything());
    }

    #[test]
    fn ignore_conditions_count_too() {
        let m = model(
            "[[rules]]\nname = \"r\"\non = 'event.type == \"page\"'\npoints = 1\n[events]\nignore = 'event.context.userAgent.contains(\"bot\")'\n",
        );
        let value = parse_projected(MESSAGE.as_bytes(), &m.event_projection()).unwrap();
        assert_eq!(value["context"], json!({"userAgent": "Mozilla"}));
    }

    #[test]
    fn invalid_json_is_still_an_error() {
        let projection = Projection::default();
        assert!(parse_projected(b"{\"type\": ", &projection).is_err());
        assert!(parse_projected(b"{} trailing", &projection).is_err());
    }
}
