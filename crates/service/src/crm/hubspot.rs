//! HubSpot's CRM v3 API as the write-back uses it (`../shared/crm/hubspot/`): contacts updated
//! in batches of up to 100 (`POST /crm/v3/objects/{object}/batch/update`, each input matched by
//! record id or by `idProperty: email`), and the custom properties created by
//! `leadscore sync setup` (`/crm/v3/properties/{object}` and its groups). Building requests and
//! reading answers is pure; [`setup`] talks to HubSpot.

use serde_json::{Map, Value, json};

use super::{Answer, Input, Sync};

/// HubSpot's limit of inputs per batch request.
pub const MAX_INPUTS: usize = 100;
/// The property group the fields are created in.
pub const GROUP: &str = "leadscore";
/// The default API address.
pub const DEFAULT_URL: &str = "https://api.hubapi.com";

pub fn batch_update_path(object: &str) -> String {
    format!("/crm/v3/objects/{object}/batch/update")
}

/// The body of a batch update (`BatchInputSimplePublicObjectBatchInput`): every value as text.
pub fn batch_update_body(inputs: &[&Input]) -> Value {
    let inputs: Vec<Value> = inputs
        .iter()
        .map(|input| {
            let properties: Map<String, Value> =
                input.values.iter().map(|(name, v)| (name.clone(), Value::String(v.as_text()))).collect();
            let mut item = json!({"id": input.id, "properties": properties});
            if input.by_email {
                item["idProperty"] = json!("email");
            }
            item
        })
        .collect();
    json!({ "inputs": inputs })
}

/// HubSpot's `message`, else the start of the body.
fn message_of(body: &Value, text: &str) -> String {
    match body.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => text.chars().take(300).collect(),
    }
}

/// The ids an error names (`context.ids`), with its message.
fn named_ids(error: &Value, text: &str) -> Vec<(String, String)> {
    let message = message_of(error, text);
    error
        .get("context")
        .and_then(|c| c.get("ids"))
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).map(|id| (id.to_owned(), message.clone())).collect())
        .unwrap_or_default()
}

/// Reads a batch update's answer: `status`, its `Retry-After` header and body text.
pub fn interpret(status: u16, retry_after: Option<&str>, text: &str) -> Answer {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = |what: &str| format!("HTTP {status}: {what}");
    match status {
        200..=206 | 208..=299 => Answer::Written,
        207 => {
            let failed: Vec<(String, String)> = body
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| errors.iter().flat_map(|e| named_ids(e, text)).map(|(id, m)| (id, error(&m))).collect())
                .unwrap_or_default();
            Answer::Partly(failed)
        }
        401 | 403 => Answer::Unauthorized(error(&message_of(&body, text))),
        429 => {
            let seconds = retry_after.and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
            Answer::RateLimited {
                wait_ms: seconds.map_or(10_000, |s| (s * 1000.0).ceil() as i64),
                error: error(&message_of(&body, text)),
            }
        }
        400..=499 => {
            let named: Vec<(String, String)> =
                named_ids(&body, text).into_iter().map(|(id, m)| (id, error(&m))).collect();
            if named.is_empty() { Answer::Failed(error(&message_of(&body, text))) } else { Answer::Rejected(named) }
        }
        _ => Answer::Failed(error(&message_of(&body, text))),
    }
}

/// A property `leadscore sync setup` creates: name, label, HubSpot type and field type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertySpec {
    pub name: String,
    pub label: String,
    pub kind: &'static str,
    pub field_type: &'static str,
}

/// The properties a sync writes, for a model with these dimensions (accounts have no grade,
/// probability or reasons).
pub fn properties(sync: &Sync, dimensions: &[String]) -> Vec<PropertySpec> {
    let fields = &sync.fields;
    let leads = !sync.accounts;
    let mut out = Vec::new();
    let mut add = |name: Option<String>, label: String, kind: &'static str, field_type: &'static str| {
        if let Some(name) = name {
            out.push(PropertySpec { name, label, kind, field_type });
        }
    };
    add(fields.total.clone(), "Leadscore total".into(), "number", "number");
    for d in dimensions {
        add(fields.dimension(d), format!("Leadscore {d}"), "number", "number");
    }
    add(fields.stage.clone(), "Leadscore stage".into(), "string", "text");
    if leads {
        add(fields.grade.clone(), "Leadscore grade".into(), "string", "text");
        add(fields.probability.clone(), "Leadscore probability".into(), "number", "number");
        add(fields.reasons.clone(), "Leadscore reasons".into(), "string", "textarea");
    }
    add(fields.updated_at.clone(), "Leadscore updated at".into(), "datetime", "date");
    out
}

/// What [`setup`] did to one property or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStep {
    pub what: String,
    pub created: bool,
}

/// Creates the `leadscore` property group and each property the sync writes, where missing,
/// within the sync's rate limit.
pub fn setup(sync: &Sync, dimensions: &[String]) -> Result<Vec<SetupStep>, String> {
    let agent = super::sender::agent();
    let base = sync.url.trim_end_matches('/');
    let object = &sync.object;
    let auth = format!("Bearer {}", sync.token);
    // Setup's requests count toward the same burst limit as the sync's writes.
    let window = std::cell::RefCell::new(super::sender::Window::new(
        sync.rate_requests,
        std::time::Duration::from_millis(u64::try_from(sync.rate_window_ms).unwrap_or(10_000)),
    ));
    // One request within the limit; a 429 is waited out (`Retry-After`) and sent again.
    let call = |method: &str, path: &str, body: Option<&Value>| -> Result<(u16, String), String> {
        loop {
            let wait = window.borrow_mut().wait(std::time::Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
                continue;
            }
            let url = format!("{base}{path}");
            let response = match body {
                Some(body) => agent
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .send(body.to_string().as_bytes()),
                None => agent.get(&url).header("Authorization", &auth).call(),
            };
            let (status, retry_after, text) = match response {
                Ok(mut r) => {
                    let retry_after = r.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    (r.status().as_u16(), retry_after, r.body_mut().read_to_string().unwrap_or_default())
                }
                Err(e) => return Err(format!("{method} {path}: {e}")),
            };
            window.borrow_mut().record(std::time::Instant::now());
            if let Answer::RateLimited { wait_ms, .. } = interpret(status, retry_after.as_deref(), &text) {
                let until =
                    std::time::Instant::now() + std::time::Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
                window.borrow_mut().pause(until);
                continue;
            }
            return Ok((status, text));
        }
    };
    let get = |path: &str| -> Result<u16, String> {
        match call("GET", path, None)? {
            (status @ (200 | 404), _) => Ok(status),
            (status, text) => Err(format!("GET {path}: HTTP {status}: {}", message_of(&parse(&text), &text))),
        }
    };
    let post = |path: &str, body: Value| -> Result<(), String> {
        match call("POST", path, Some(&body))? {
            (200..=299, _) => Ok(()),
            (status, text) => Err(format!("POST {path}: HTTP {status}: {}", message_of(&parse(&text), &text))),
        }
    };
    let mut steps = Vec::new();
    let group_path = format!("/crm/v3/properties/{object}/groups/{GROUP}");
    let missing = get(&group_path)? == 404;
    if missing {
        post(
            &format!("/crm/v3/properties/{object}/groups"),
            json!({"name": GROUP, "label": "Leadscore", "displayOrder": -1}),
        )?;
    }
    steps.push(SetupStep { what: format!("property group `{GROUP}` of {object}"), created: missing });
    for p in properties(sync, dimensions) {
        let missing = get(&format!("/crm/v3/properties/{object}/{}", p.name))? == 404;
        if missing {
            post(
                &format!("/crm/v3/properties/{object}"),
                json!({
                    "name": p.name, "label": p.label, "type": p.kind, "fieldType": p.field_type,
                    "groupName": GROUP, "description": "Written by Leadscore.", "formField": false,
                }),
            )?;
        }
        steps.push(SetupStep { what: format!("property `{}` ({})", p.name, p.kind), created: missing });
    }
    Ok(steps)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::{FieldValue, Values};

    #[test]
    fn inputs_are_text_and_match_by_email_only_without_an_id() {
        let mut values = Values::new();
        values.insert("leadscore_total".into(), FieldValue::Number(42.5));
        values.insert("leadscore_grade".into(), FieldValue::Empty);
        values.insert("leadscore_fit".into(), FieldValue::Number(30.0));
        let a = Input { id: "123".into(), by_email: false, values: values.clone() };
        let b = Input { id: "x@y.com".into(), by_email: true, values };
        assert_eq!(
            batch_update_body(&[&a, &b]),
            json!({"inputs": [
                {"id": "123", "properties": {"leadscore_fit": "30", "leadscore_grade": "", "leadscore_total": "42.5"}},
                {"id": "x@y.com", "idProperty": "email",
                 "properties": {"leadscore_fit": "30", "leadscore_grade": "", "leadscore_total": "42.5"}},
            ]})
        );
    }

    #[test]
    fn answers_say_which_inputs_were_written() {
        assert_eq!(interpret(200, None, "{}"), Answer::Written);
        let partly = r#"{"status":"COMPLETE","results":[],"errors":[{"status":"error","category":"OBJECT_NOT_FOUND",
            "message":"Could not get some CONTACT objects","context":{"ids":["a@x.com"]}}]}"#;
        assert_eq!(
            interpret(207, None, partly),
            Answer::Partly(vec![("a@x.com".into(), "HTTP 207: Could not get some CONTACT objects".into())])
        );
        assert_eq!(
            interpret(429, Some("3"), r#"{"message":"You have reached your ten_secondly_rolling limit."}"#),
            Answer::RateLimited {
                wait_ms: 3000,
                error: "HTTP 429: You have reached your ten_secondly_rolling limit.".into()
            }
        );
        assert!(matches!(interpret(429, None, ""), Answer::RateLimited { wait_ms: 10_000, .. }));
        assert_eq!(interpret(401, None, r#"{"message":"expired"}"#), Answer::Unauthorized("HTTP 401: expired".into()));
        assert_eq!(
            interpret(400, None, r#"{"message":"Duplicate IDs","context":{"ids":["7"]}}"#),
            Answer::Rejected(vec![("7".into(), "HTTP 400: Duplicate IDs".into())])
        );
        assert_eq!(
            interpret(400, None, r#"{"message":"Property values were not valid"}"#),
            Answer::Failed("HTTP 400: Property values were not valid".into())
        );
        assert_eq!(
            interpret(502, None, "<html>bad gateway</html>"),
            Answer::Failed("HTTP 502: <html>bad gateway</html>".into())
        );
    }
}
