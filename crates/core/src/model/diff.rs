//! What changed between two model files, rule by rule: rules and stages are matched by `name`
//! (so reordering is no change), every other table key by key, and each difference is one
//! [`ModelChange`] with its path (`rules."Demo requested".points`) and the values before and after
//! as TOML. This is what a reviewer reads before activating a new version.

use serde::Serialize;
use toml::Value;

/// One difference between two model files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelChange {
    /// Where: `rules."Demo requested".points`, `stages.sql.when`, `dimensions.fit`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The value before (TOML), absent for an addition.
    pub before: Option<String>,
    /// The value after (TOML), absent for a removal.
    pub after: Option<String>,
}

/// Arrays of tables matched by their `name`.
const NAMED: [&str; 2] = ["rules", "stages"];

/// The differences from `before` to `after` (model files as TOML text), in the order of the
/// file's sections. `Err` names the side that is not TOML.
pub fn diff_models(before: &str, after: &str) -> Result<Vec<ModelChange>, String> {
    let before: Value = toml::from_str(before).map_err(|e| format!("the first model is not TOML: {e}"))?;
    let after: Value = toml::from_str(after).map_err(|e| format!("the second model is not TOML: {e}"))?;
    let mut out = Vec::new();
    diff_value("", &before, &after, &mut out);
    Ok(out)
}

/// A key as a path segment: bare when it can be, else quoted.
fn segment(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else {
        quote(key)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { segment(key) } else { format!("{path}.{}", segment(key)) }
}

fn text(value: &Value) -> String {
    match value {
        Value::Table(t) => {
            let parts: Vec<String> = t.iter().map(|(k, v)| format!("{} = {}", segment(k), text(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(", ")),
        Value::String(s) => quote(s),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn diff_value(path: &str, before: &Value, after: &Value, out: &mut Vec<ModelChange>) {
    match (before, after) {
        (Value::Table(b), Value::Table(a)) => {
            for (key, bv) in b {
                let here = join(path, key);
                match a.get(key) {
                    Some(av) if path.is_empty() && NAMED.contains(&key.as_str()) => diff_named(&here, bv, av, out),
                    Some(av) => diff_value(&here, bv, av, out),
                    None => {
                        out.push(ModelChange { path: here, change: "removed", before: Some(text(bv)), after: None })
                    }
                }
            }
            for (key, av) in a {
                if !b.contains_key(key) {
                    out.push(ModelChange {
                        path: join(path, key),
                        change: "added",
                        before: None,
                        after: Some(text(av)),
                    });
                }
            }
        }
        _ if before == after => {}
        _ => out.push(ModelChange {
            path: path.to_owned(),
            change: "changed",
            before: Some(text(before)),
            after: Some(text(after)),
        }),
    }
}

/// Arrays of tables matched by `name` (an entry without one by its position).
fn diff_named(path: &str, before: &Value, after: &Value, out: &mut Vec<ModelChange>) {
    let (Value::Array(b), Value::Array(a)) = (before, after) else {
        return diff_value(path, before, after, out);
    };
    let key = |i: usize, v: &Value| match v.get("name").and_then(Value::as_str) {
        Some(name) => name.to_owned(),
        None => format!("#{}", i + 1),
    };
    let b_keys: Vec<String> = b.iter().enumerate().map(|(i, v)| key(i, v)).collect();
    let a_keys: Vec<String> = a.iter().enumerate().map(|(i, v)| key(i, v)).collect();
    for (k, bv) in b_keys.iter().zip(b) {
        let here = join(path, k);
        match a_keys.iter().position(|x| x == k) {
            Some(j) => diff_value(&here, bv, &a[j], out),
            None => out.push(ModelChange { path: here, change: "removed", before: Some(text(bv)), after: None }),
        }
    }
    for (k, av) in a_keys.iter().zip(a) {
        if !b_keys.contains(k) {
            out.push(ModelChange { path: join(path, k), change: "added", before: None, after: Some(text(av)) });
        }
    }
    // Stages are ordered (the last whose condition holds wins): a new order is a change.
    let common_b: Vec<&String> = b_keys.iter().filter(|k| a_keys.contains(k)).collect();
    let common_a: Vec<&String> = a_keys.iter().filter(|k| b_keys.contains(k)).collect();
    if path == "stages" && common_b != common_a {
        out.push(ModelChange {
            path: format!("{path} (order)"),
            change: "changed",
            before: Some(format!("{common_b:?}")),
            after: Some(format!("{common_a:?}")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"
[model]
name = "b2b"
[dimensions.fit]
[dimensions.engagement]
half_life = "30d"
[[rules]]
name = "Demo requested"
dimension = "engagement"
on = 'event.event == "Demo Requested"'
points = 30
[[rules]]
name = "Careers page"
dimension = "engagement"
on = 'event.properties.path.startsWith("/careers")'
points = -10
[[stages]]
name = "mql"
when = "total >= 50"
[[stages]]
name = "sql"
when = "total >= 80"
"#;

    const AFTER: &str = r#"
[model]
name = "b2b"
[dimensions.fit]
[dimensions.engagement]
half_life = "14d"
[[rules]]
name = "Pricing page"
dimension = "engagement"
on = 'event.properties.path.startsWith("/pricing")'
points = 5
[[rules]]
name = "Demo requested"
dimension = "engagement"
on = 'event.event == "Demo Requested"'
points = 40
[[stages]]
name = "mql"
when = "total >= 45"
[[stages]]
name = "sql"
when = "total >= 80"
"#;

    #[test]
    fn rules_and_stages_are_matched_by_name() {
        let changes = diff_models(BEFORE, AFTER).unwrap();
        let lines: Vec<String> =
            changes.iter().map(|c| format!("{} {}: {:?} -> {:?}", c.change, c.path, c.before, c.after)).collect();
        assert_eq!(
            lines,
            [
                r#"changed dimensions.engagement.half_life: Some("\"30d\"") -> Some("\"14d\"")"#,
                r#"changed rules."Demo requested".points: Some("30") -> Some("40")"#,
                r#"removed rules."Careers page": Some("{ dimension = \"engagement\", name = \"Careers page\", on = \"event.properties.path.startsWith(\\\"/careers\\\")\", points = -10 }") -> None"#,
                r#"added rules."Pricing page": None -> Some("{ dimension = \"engagement\", name = \"Pricing page\", on = \"event.properties.path.startsWith(\\\"/pricing\\\")\", points = 5 }")"#,
                r#"changed stages.mql.when: Some("\"total >= 50\"") -> Some("\"total >= 45\"")"#,
            ]
        );
    }

    #[test]
    fn the_same_model_reordered_has_no_rule_changes_but_a_new_stage_order_is_one() {
        assert_eq!(diff_models(BEFORE, BEFORE).unwrap(), vec![]);
        let swapped = BEFORE
            .replace("name = \"mql\"\nwhen = \"total >= 50\"", "name = \"tmp\"")
            .replace("name = \"sql\"\nwhen = \"total >= 80\"", "name = \"mql\"\nwhen = \"total >= 50\"");
        let swapped = swapped.replace("name = \"tmp\"", "name = \"sql\"\nwhen = \"total >= 80\"");
        let changes = diff_models(BEFORE, &swapped).unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].path, "stages (order)");
        assert!(diff_models("not = [toml", BEFORE).unwrap_err().starts_with("the first model is not TOML"));
    }
}
