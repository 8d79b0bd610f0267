//! Salesforce's REST API as the write-back uses it: Lead and Contact records updated through sObject
//! Collections (`PATCH /services/data/vXX.X/composite/sobjects`, up to 200 records, `allOrNone:
//! false`, so each record succeeds or fails on its own), custom fields (`Leadscore_Total__c`, …)
//! created beforehand in Setup, an OAuth bearer token. A record is named by the id a lead's
//! `salesforce_id` trait holds; its object type comes from the id's key prefix (`00Q` Lead, `003`
//! Contact), else the sync's `object`. Building requests and reading answers is pure.

use serde_json::{Map, Value, json};

use super::{Answer, FieldValue, Input};

/// Most records one collection request takes.
pub const MAX_RECORDS: usize = 200;
/// The default REST API version.
pub const DEFAULT_API_VERSION: &str = "v60.0";

pub fn collections_path(api_version: &str) -> String {
    format!("/services/data/{api_version}/composite/sobjects")
}

/// The object a record id names, by its key prefix.
pub fn object_of<'a>(id: &str, default: &'a str) -> &'a str {
    if id.starts_with("00Q") {
        "Lead"
    } else if id.starts_with("003") {
        "Contact"
    } else {
        default
    }
}

impl FieldValue {
    /// As Salesforce takes a field value: numbers as numbers, times in RFC 3339, `null` clears.
    pub fn as_json(&self) -> Value {
        match self {
            FieldValue::Number(n) => json!(n),
            FieldValue::Text(t) => json!(t),
            FieldValue::Time(_) => json!(self.as_text()),
            FieldValue::Empty => Value::Null,
        }
    }
}

/// The body of a collection update: each record with its type and id, not all-or-none.
pub fn collections_body(default_object: &str, inputs: &[&Input]) -> Value {
    let records: Vec<Value> = inputs
        .iter()
        .map(|input| {
            let mut record = Map::new();
            record.insert("attributes".into(), json!({"type": object_of(&input.id, default_object)}));
            record.insert("id".into(), json!(input.id));
            for (name, value) in &input.values {
                record.insert(name.clone(), value.as_json());
            }
            Value::Object(record)
        })
        .collect();
    json!({"allOrNone": false, "records": records})
}

/// The first error of a Salesforce error list (`[{"message", "errorCode"}]`), as text.
fn first_error(body: &Value, text: &str) -> String {
    match body.as_array().and_then(|a| a.first()) {
        Some(e) => {
            let code = e.get("errorCode").or_else(|| e.get("statusCode")).and_then(Value::as_str).unwrap_or("");
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            format!("{code}: {message}")
        }
        None => text.chars().take(300).collect(),
    }
}

/// Reads a collection update's answer: per record, in the order sent.
pub fn interpret(status: u16, text: &str, inputs: &[&Input]) -> Answer {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = |what: &str| format!("HTTP {status}: {what}");
    match status {
        200 => {
            let Some(results) = body.as_array() else {
                return Answer::Failed(error("the answer is not a list of results"));
            };
            let failed: Vec<(String, String)> = inputs
                .iter()
                .enumerate()
                .filter_map(|(i, input)| {
                    let result = results.get(i);
                    let ok = result.and_then(|r| r.get("success")).and_then(Value::as_bool) == Some(true);
                    if ok {
                        return None;
                    }
                    let why = result
                        .and_then(|r| r.get("errors"))
                        .map_or_else(|| "no result for this record".to_owned(), |e| first_error(e, ""));
                    Some((input.id.clone(), error(&why)))
                })
                .collect();
            if failed.is_empty() { Answer::Written } else { Answer::Partly(failed) }
        }
        401 => Answer::Unauthorized(error(&first_error(&body, text))),
        403 if text.contains("REQUEST_LIMIT_EXCEEDED") => {
            // The org's API request limit (a rolling 24 hours): try again in an hour.
            Answer::RateLimited { wait_ms: 3_600_000, error: error(&first_error(&body, text)) }
        }
        403 => Answer::Unauthorized(error(&first_error(&body, text))),
        _ => Answer::Failed(error(&first_error(&body, text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::Values;

    fn input(id: &str) -> Input {
        let mut values = Values::new();
        values.insert("Leadscore_Total__c".into(), FieldValue::Number(42.5));
        values.insert("Leadscore_Grade__c".into(), FieldValue::Empty);
        values.insert("Leadscore_Stage__c".into(), FieldValue::Text("mql".into()));
        Input { id: id.into(), by_email: false, values }
    }

    #[test]
    fn records_are_typed_by_their_id_and_values_keep_their_types() {
        let (a, b, c) = (input("00Q5e000001AbcD"), input("0035e000002XyzE"), input("a015e0000000001"));
        assert_eq!(
            collections_body("Lead", &[&a, &b, &c]),
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Lead"}, "id": "00Q5e000001AbcD", "Leadscore_Grade__c": null,
                 "Leadscore_Stage__c": "mql", "Leadscore_Total__c": 42.5},
                {"attributes": {"type": "Contact"}, "id": "0035e000002XyzE", "Leadscore_Grade__c": null,
                 "Leadscore_Stage__c": "mql", "Leadscore_Total__c": 42.5},
                {"attributes": {"type": "Lead"}, "id": "a015e0000000001", "Leadscore_Grade__c": null,
                 "Leadscore_Stage__c": "mql", "Leadscore_Total__c": 42.5},
            ]})
        );
    }

    #[test]
    fn each_record_succeeds_or_fails_on_its_own() {
        let (a, b) = (input("00Q1"), input("00Q2"));
        let ok = r#"[{"id":"00Q1","success":true,"errors":[]},{"id":"00Q2","success":true,"errors":[]}]"#;
        assert_eq!(interpret(200, ok, &[&a, &b]), Answer::Written);
        let partly = r#"[{"id":"00Q1","success":true,"errors":[]},
            {"success":false,"errors":[{"statusCode":"ENTITY_IS_DELETED","message":"entity is deleted","fields":[]}]}]"#;
        assert_eq!(
            interpret(200, partly, &[&a, &b]),
            Answer::Partly(vec![("00Q2".into(), "HTTP 200: ENTITY_IS_DELETED: entity is deleted".into())])
        );
        let expired = r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert_eq!(
            interpret(401, expired, &[&a]),
            Answer::Unauthorized("HTTP 401: INVALID_SESSION_ID: Session expired or invalid".into())
        );
        let limit = r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(interpret(403, limit, &[&a]), Answer::RateLimited { wait_ms: 3_600_000, .. }));
        let field = r#"[{"message":"No such column 'Leadscore_Total__c' on sobject of type Lead","errorCode":"INVALID_FIELD"}]"#;
        assert_eq!(
            interpret(400, field, &[&a]),
            Answer::Failed(
                "HTTP 400: INVALID_FIELD: No such column 'Leadscore_Total__c' on sobject of type Lead".into()
            )
        );
    }
}
