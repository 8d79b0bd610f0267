//! Which rules an event can possibly match, decided once per model from each condition's
//! top-level `&&` terms: a rule that requires `event.event == "Email Opened"` is filed under that
//! name, one that requires `event.type == "page"` under that type (with what
//! `event.properties.path` must be checked before the condition runs: `path == "/x"`,
//! `path.startsWith("/x")`, or an `||` of those); the rest are tried on every event. A rule required to have one of several names (`event.event in ["a", "b"]`) is
//! filed under each. When a condition is nothing but what the index checked (its name or type,
//! and a path prefix), the index decides it alone: the rule is an exact candidate and its
//! condition need not run. Indexing never changes a result, only how many conditions run.

use std::collections::HashMap;

use serde_json::Value;

use super::{Rule, RuleKind};
use crate::cel::{Atom, CmpOp, Literal};

/// Slot of `event` in event conditions (see `check::EVENT_VARS`).
const EVENT_SLOT: usize = 0;

type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    by_name: Map<Vec<Entry>>,
    by_type: Map<Vec<Entry>>,
    any: Vec<Entry>,
    /// The distinct path tests of the entries (a learned model repeats one with several windows):
    /// each is run once per event.
    paths: Vec<PathTest>,
}

/// A rule filed in the index, with the types one of which the event must have (for a rule filed
/// by name) and what `event.properties.path` must be, if its condition requires them.
#[derive(Debug, Clone)]
struct Entry {
    rule: usize,
    kinds: Option<Box<[Box<str>]>>,
    /// Which of [`RuleIndex::paths`].
    path: Option<usize>,
    /// The condition holds whenever these checks pass.
    exact: bool,
}

impl RuleIndex {
    pub fn build(rules: &[Rule]) -> Self {
        let mut index = RuleIndex::default();
        for (i, rule) in rules.iter().enumerate() {
            if matches!(rule.kind, RuleKind::Trait { .. }) {
                continue;
            }
            let mut names: Option<Vec<String>> = None;
            let mut kinds: Option<Vec<String>> = None;
            let mut path = None;
            // Whether every top-level term is one the index checks exactly.
            let mut exact = true;
            for atom in rule.kind.condition().conjuncts() {
                if names.is_none()
                    && let Some(list) = one_of(&atom, "event")
                {
                    names = Some(list);
                } else if kinds.is_none()
                    && let Some(list) = one_of(&atom, "type")
                {
                    kinds = Some(list);
                } else if path.is_none()
                    && let Some(test) = path_test(&atom)
                {
                    let test = PathTest(test.into_boxed_slice());
                    path = Some(index.paths.iter().position(|t| *t == test).unwrap_or_else(|| {
                        index.paths.push(test);
                        index.paths.len() - 1
                    }));
                } else {
                    exact = false;
                }
            }
            match (names, kinds) {
                (Some(names), kinds) => {
                    let kinds: Option<Box<[Box<str>]>> =
                        kinds.map(|k| k.into_iter().map(String::into_boxed_str).collect());
                    for name in names {
                        let entry = Entry { rule: i, kinds: kinds.clone(), path, exact };
                        index.by_name.entry(name).or_default().push(entry);
                    }
                }
                (None, Some(kinds)) => {
                    for kind in kinds {
                        let entry = Entry { rule: i, kinds: None, path, exact };
                        index.by_type.entry(kind).or_default().push(entry);
                    }
                }
                (None, None) => index.any.push(Entry { rule: i, kinds: None, path, exact: false }),
            }
        }
        index
    }

    /// Calls `f` with each rule that could match `event` (each at most once), and whether the
    /// rule is known to match (its condition is what the index checked).
    pub fn for_each_candidate(&self, event: &Value, f: impl FnMut(usize, bool)) {
        let ty = event.get("type").and_then(Value::as_str);
        let name = event.get("event").and_then(Value::as_str);
        let path = event.get("properties").and_then(|p| p.get("path")).and_then(Value::as_str);
        self.for_each_candidate_of(ty, name, path, f);
    }

    /// [`RuleIndex::for_each_candidate`] from the three fields it looks at: `type`, `event` and
    /// `properties.path` (each when it is a string).
    pub fn for_each_candidate_of(
        &self,
        ty: Option<&str>,
        name: Option<&str>,
        path: Option<&str>,
        mut f: impl FnMut(usize, bool),
    ) {
        let lists = [name.and_then(|n| self.by_name.get(n)), ty.and_then(|t| self.by_type.get(t)), Some(&self.any)];
        // Each distinct path test once: 0 not yet, 1 fails, 2 holds.
        let mut known = [0u8; 64];
        let mut holds = |t: usize| -> bool {
            let test = &self.paths[t];
            match known.get_mut(t) {
                Some(0) | None => {
                    let result = path.is_some_and(|p| test.holds(p));
                    if let Some(slot) = known.get_mut(t) {
                        *slot = 1 + u8::from(result);
                    }
                    result
                }
                Some(k) => *k == 2,
            }
        };
        for list in lists.into_iter().flatten() {
            for entry in list {
                if let Some(kinds) = &entry.kinds
                    && !ty.is_some_and(|t| kinds.iter().any(|k| **k == *t))
                {
                    continue;
                }
                if let Some(t) = entry.path
                    && !holds(t)
                {
                    continue;
                }
                f(entry.rule, entry.exact);
            }
        }
    }

    /// How many rules require something of `properties.path` (for diagnostics and tests).
    pub fn rules_with_path_test(&self) -> usize {
        let mut rules: Vec<usize> = self
            .by_name
            .values()
            .chain(self.by_type.values())
            .chain([&self.any])
            .flatten()
            .filter(|e| e.path.is_some())
            .map(|e| e.rule)
            .collect();
        rules.sort_unstable();
        rules.dedup();
        rules.len()
    }

    /// How many rules are indexed by a specific event name or type (for diagnostics and tests).
    pub fn indexed_rules(&self) -> usize {
        let mut rules: Vec<usize> =
            self.by_name.values().chain(self.by_type.values()).flatten().map(|e| e.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        rules.len()
    }

    /// How many rules the index decides alone (for diagnostics and tests).
    pub fn exact_rules(&self) -> usize {
        let mut rules: Vec<usize> =
            self.by_name.values().chain(self.by_type.values()).flatten().filter(|e| e.exact).map(|e| e.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        rules.len()
    }
}

/// The string values one of which the event's top-level `field` must have for `atom` to hold, if
/// that is all `atom` says: `field == "a"`, `field in ["a", "b"]` or `field == "a" || field ==
/// "b"` (sorted, each once: a rule is filed once under each).
fn one_of(atom: &Atom, field: &str) -> Option<Vec<String>> {
    let is_field = |var: &usize, path: &[String]| *var == EVENT_SLOT && path.len() == 1 && path[0] == field;
    let mut values: Vec<String> = match atom {
        Atom::Compare { var, path, op: CmpOp::Eq, value: Literal::String(s) } if is_field(var, path) => vec![s.clone()],
        Atom::In { var, path, values } if is_field(var, path) => values
            .iter()
            .map(|v| if let Literal::String(s) = v { Some(s.clone()) } else { None })
            .collect::<Option<_>>()?,
        Atom::AnyOf(alternatives) => {
            alternatives.iter().map(|a| one_of(a, field)).collect::<Option<Vec<_>>>()?.into_iter().flatten().collect()
        }
        _ => return None,
    };
    values.sort_unstable();
    values.dedup();
    (!values.is_empty()).then_some(values)
}

/// What `event.properties.path` must be: one of these (the path itself, or a prefix of it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathTest(Box<[(PathOp, Box<str>)]>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathOp {
    Is,
    StartsWith,
}

impl PathTest {
    fn holds(&self, path: &str) -> bool {
        self.0.iter().any(|(op, text)| match op {
            PathOp::Is => path == &**text,
            PathOp::StartsWith => path.starts_with(&**text),
        })
    }
}

/// The [`PathTest`] `atom` is, if it is nothing but tests of `event.properties.path`:
/// `path == "…"`, `path.startsWith("…")`, or an `||` of those.
fn path_test(atom: &Atom) -> Option<Vec<(PathOp, Box<str>)>> {
    match atom {
        Atom::Compare { var: EVENT_SLOT, path, op: CmpOp::Eq, value: Literal::String(s) } if is_page_path(path) => {
            Some(vec![(PathOp::Is, s.as_str().into())])
        }
        Atom::StartsWith { var: EVENT_SLOT, path, prefix } if is_page_path(path) => {
            Some(vec![(PathOp::StartsWith, prefix.as_str().into())])
        }
        Atom::AnyOf(alternatives) => {
            let tests = alternatives.iter().map(path_test).collect::<Option<Vec<_>>>()?;
            Some(tests.into_iter().flatten().collect())
        }
        _ => None,
    }
}

fn is_page_path(path: &[String]) -> bool {
    path.len() == 2 && path[0] == "properties" && path[1] == "path"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::CheckedModel;

    fn model() -> CheckedModel {
        let source = r#"
[model]
name = "index"
[dimensions.engagement]
[[rules]]
name = "opened"
on = 'event.event == "Email Opened"'
points = 1
[[rules]]
name = "careers"
on = 'event.type == "page" && event.properties.path.startsWith("/careers")'
points = -1
[[rules]]
name = "any page"
on = 'event.type == "page"'
points = 1
[[rules]]
name = "anything from a bot"
on = 'event.context.userAgent.contains("bot")'
points = -1
[[rules]]
name = "docs"
on = 'event.type == "page" && (event.properties.path == "/docs" || event.properties.path.startsWith("/docs/"))'
points = 1
[[rules]]
name = "docs or a download"
on = 'event.type == "page" && (event.properties.path == "/docs" || event.event == "Downloaded")'
points = 1
[[rules]]
name = "signed up"
on = 'event.type == "track" && event.event in ["Signed Up", "Trial Started"]'
points = 1
[[rules]]
name = "marketing email"
on = 'event.event == "Email Opened" && event.properties.campaign_type == "marketing"'
points = 1
[[rules]]
name = "active"
on = 'event.type == "track" && (event.event == "Logged In" || event.event == "Report Created" || event.event == "Logged In")'
points = 1
[[rules]]
name = "gone quiet"
inactive = 'event.type == "page" || event.type == "track"'
for = "30d"
points = -1
[[rules]]
name = "trait"
if = 'true'
points = 1
"#;
        CheckedModel::from_source(source).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn candidates(model: &CheckedModel, event: serde_json::Value) -> Vec<&str> {
        let mut out = Vec::new();
        model.index.for_each_candidate(&event, |r, _| out.push(model.rules[r].name.as_str()));
        out.sort_unstable();
        out
    }

    /// The candidates the index decides alone.
    fn exact(model: &CheckedModel, event: serde_json::Value) -> Vec<&str> {
        let mut out = Vec::new();
        model.index.for_each_candidate(&event, |r, exact| {
            if exact {
                out.push(model.rules[r].name.as_str());
            }
        });
        out.sort_unstable();
        out
    }

    #[test]
    fn events_are_only_tested_against_rules_that_could_match() {
        let m = model();
        assert_eq!(m.index.indexed_rules(), 9, "by event name (or names), by type (or types), by path prefix");
        assert_eq!(m.index.rules_with_path_test(), 2, "`careers`, and `docs` from its `||`");
        assert_eq!(
            m.index.exact_rules(),
            7,
            "`opened`, `careers`, `any page`, `docs`, `signed up`, `active`, `gone quiet`"
        );
        assert_eq!(
            candidates(&m, json!({"type": "track", "event": "Email Opened"})),
            ["anything from a bot", "gone quiet", "marketing email", "opened"]
        );
        // Named twice in its `||`, a rule is still a candidate once.
        assert_eq!(
            candidates(&m, json!({"type": "track", "event": "Logged In"})),
            ["active", "anything from a bot", "gone quiet"]
        );
        assert_eq!(exact(&m, json!({"type": "track", "event": "Logged In"})), ["active", "gone quiet"]);
        assert_eq!(exact(&m, json!({"type": "track", "event": "Email Opened"})), ["gone quiet", "opened"]);
        for name in ["Signed Up", "Trial Started"] {
            assert_eq!(
                candidates(&m, json!({"type": "track", "event": name})),
                ["anything from a bot", "gone quiet", "signed up"]
            );
            assert_eq!(exact(&m, json!({"type": "track", "event": name})), ["gone quiet", "signed up"]);
        }
        // Filed by name, the rule still requires its type.
        assert_eq!(
            candidates(&m, json!({"type": "page", "event": "Signed Up"})),
            ["any page", "anything from a bot", "docs or a download", "gone quiet"]
        );
        assert_eq!(
            exact(&m, json!({"type": "page", "properties": {"path": "/careers/x"}})),
            ["any page", "careers", "gone quiet"]
        );
        assert_eq!(
            candidates(&m, json!({"type": "page", "properties": {"path": "/careers/jobs"}})),
            ["any page", "anything from a bot", "careers", "docs or a download", "gone quiet"]
        );
        assert_eq!(
            candidates(&m, json!({"type": "page", "properties": {"path": "/pricing"}})),
            ["any page", "anything from a bot", "docs or a download", "gone quiet"]
        );
        for path in ["/docs", "/docs/api"] {
            assert_eq!(
                candidates(&m, json!({"type": "page", "properties": {"path": path}})),
                ["any page", "anything from a bot", "docs", "docs or a download", "gone quiet"]
            );
            assert_eq!(
                exact(&m, json!({"type": "page", "properties": {"path": path}})),
                ["any page", "docs", "gone quiet"]
            );
        }
        // The path is checked as the condition says, not only by a prefix.
        assert_eq!(
            candidates(&m, json!({"type": "page", "properties": {"path": "/docsmith"}})),
            ["any page", "anything from a bot", "docs or a download", "gone quiet"]
        );
        assert_eq!(candidates(&m, json!({"type": "identify"})), ["anything from a bot"]);
    }

    /// The shipped model's event rules are decided by the index alone wherever their condition
    /// allows it (the scoring speed of `b2b-default.toml` depends on it).
    #[test]
    fn most_of_the_example_models_event_rules_are_exact() {
        let source = include_str!("../../../../examples/models/b2b-default.toml");
        let m = CheckedModel::from_source(source).unwrap_or_else(|d| panic!("{d:?}"));
        let event_rules = m.rules.iter().filter(|r| !matches!(r.kind, crate::model::RuleKind::Trait { .. })).count();
        assert_eq!((m.index.exact_rules(), event_rules), (16, 20));
    }
}
