//! Outcomes from the CRM, through the existing outcome path ([`App::record_outcomes`]):
//! - HubSpot's webhooks (`POST /hooks/hubspot/{sync}`): contact and deal property changes (by
//!   default `lifecyclestage` = `customer` → won, `hs_lead_status` = `UNQUALIFIED` →
//!   disqualified, `dealstage` = `closedwon` / `closedlost` → won / lost; the mapping is the
//!   sync's `[[sync.outcomes]]`), signed with HubSpot's v3 signature (`X-HubSpot-Signature-v3`,
//!   the timestamp within 5 minutes); a contact is the lead whose `id_trait` holds its id, a
//!   deal's contacts are found with HubSpot's contact search (`associations.deal`);
//! - a generic signed JSON webhook (`POST /hooks/outcomes`, for Salesforce Flow, Zapier or a
//!   script): `{"lead_id" | "email", "outcome", "at"?}` or `{"outcomes": [...]}`, signed as
//!   Leadscore signs its own webhooks (`Leadscore-Signature: t=…,v1=…`).
//!
//! A request whose signature does not verify, or whose timestamp is more than 5 minutes off,
//! records nothing.

use std::collections::BTreeSet;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use leadscore_core::OutcomeKind;
use leadscore_core::time::{self, Millis};

use crate::app::App;
use crate::error::{Code, ServiceError};
use crate::leads::LeadId;

/// How far a signed request's timestamp may be from the server's clock.
pub const MAX_SKEW_MS: Millis = 5 * 60_000;

/// A CRM field value that is an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeMap {
    pub property: String,
    /// Compared without case.
    pub value: String,
    pub outcome: OutcomeKind,
}

/// HubSpot's lifecycle stage and lead status values that are outcomes, unless a sync says
/// otherwise.
pub fn default_hubspot_outcomes() -> Vec<OutcomeMap> {
    vec![
        OutcomeMap { property: "lifecyclestage".into(), value: "customer".into(), outcome: OutcomeKind::Won },
        OutcomeMap {
            property: "hs_lead_status".into(),
            value: "UNQUALIFIED".into(),
            outcome: OutcomeKind::Disqualified,
        },
        OutcomeMap { property: "dealstage".into(), value: "closedwon".into(), outcome: OutcomeKind::Won },
        OutcomeMap { property: "dealstage".into(), value: "closedlost".into(), outcome: OutcomeKind::Lost },
    ]
}

/// What a HubSpot webhook event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HubSpotObject {
    Contact,
    Deal,
}

/// What an inbound webhook did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct InboundResult {
    /// Events (or outcomes) in the request.
    pub received: usize,
    /// Outcomes recorded (the leads rescored).
    pub recorded: usize,
    /// CRM ids or e-mails no lead has.
    pub unknown: Vec<String>,
    /// Events that are no outcome (another property or value, another object).
    pub ignored: usize,
}

/// A signed request as received.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The URLs the sender may have signed (the public URL of the request; behind a proxy the
    /// scheme or host can differ, so each candidate is tried).
    pub urls: Vec<String>,
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub body: &'a [u8],
}

fn hmac(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC accepts keys of any length.
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The URL as HubSpot signs it: these escapes decoded (HubSpot's "validating requests" guide).
fn hubspot_url(url: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = url.to_owned();
    for (escape, char) in DECODED {
        out = out.replace(escape, char).replace(&escape.to_lowercase(), char);
    }
    out
}

/// HubSpot's v3 signature: base64(HMAC-SHA256(secret, method + url + body + timestamp)).
pub fn hubspot_v3_signature(secret: &str, method: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    let mac = hmac(secret, &[method.as_bytes(), hubspot_url(url).as_bytes(), body, timestamp.as_bytes()]);
    base64::engine::general_purpose::STANDARD.encode(mac)
}

fn refused(why: &str) -> ServiceError {
    metrics::counter!("leadscore_inbound_webhooks_total", "result" => "refused").increment(1);
    ServiceError::user(Code::InvalidSignature, why)
}

/// Checks a timestamp (milliseconds, or seconds with `seconds`) against `now`.
fn fresh(timestamp: &str, now: Millis, seconds: bool) -> Result<(), ServiceError> {
    let t: i64 = timestamp.trim().parse().map_err(|_| refused("the timestamp is not a number"))?;
    let at = if seconds { t.saturating_mul(1000) } else { t };
    if (now - at).abs() > MAX_SKEW_MS {
        return Err(refused(
            "the timestamp is more than 5 minutes from the server's clock (a replay, or a wrong clock)",
        ));
    }
    Ok(())
}

/// Verifies HubSpot's v3 signature over one of `request.urls`.
pub fn verify_hubspot(secret: &str, request: &SignedRequest<'_>, now: Millis) -> Result<(), ServiceError> {
    let (Some(signature), Some(timestamp)) = (request.signature, request.timestamp) else {
        return Err(refused("`X-HubSpot-Signature-v3` and `X-HubSpot-Request-Timestamp` are required"));
    };
    fresh(timestamp, now, false)?;
    let ok = request.urls.iter().any(|url| {
        let expected = hubspot_v3_signature(secret, request.method, url, request.body, timestamp);
        bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()))
    });
    if ok { Ok(()) } else { Err(refused("the signature does not verify (`X-HubSpot-Signature-v3`)")) }
}

/// Verifies a `Leadscore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn verify_leadscore(secret: &str, header: Option<&str>, body: &[u8], now: Millis) -> Result<(), ServiceError> {
    let header = header.ok_or_else(|| refused("`Leadscore-Signature` is required"))?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(refused("`Leadscore-Signature` must be `t=<unix seconds>,v1=<hex HMAC-SHA256>`"));
    };
    fresh(t, now, true)?;
    let expected = hex::encode(hmac(secret, &[t.as_bytes(), b".", body]));
    if bool::from(expected.as_bytes().ct_eq(v1.trim().as_bytes())) {
        Ok(())
    } else {
        Err(refused("the signature does not verify (`Leadscore-Signature`)"))
    }
}

fn bad_body(message: String) -> ServiceError {
    ServiceError::user(Code::InvalidBody, message)
}

/// One contact or deal property change of a HubSpot webhook body, if it is one.
fn hubspot_change(event: &Value) -> Option<(HubSpotObject, String, &str, &str, Option<Millis>)> {
    let kind = event.get("subscriptionType").and_then(Value::as_str)?;
    let type_id = event.get("objectTypeId").and_then(Value::as_str);
    let object = match (kind, type_id) {
        ("contact.propertyChange", _) | ("object.propertyChange", Some("0-1")) => HubSpotObject::Contact,
        ("deal.propertyChange", _) | ("object.propertyChange", Some("0-3")) => HubSpotObject::Deal,
        _ => return None,
    };
    let id = match event.get("objectId")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let property = event.get("propertyName").and_then(Value::as_str)?;
    let value = event.get("propertyValue").and_then(Value::as_str)?;
    Some((object, id, property, value, event.get("occurredAt").and_then(Value::as_i64)))
}

/// The contacts associated with a deal (HubSpot's contact search by `associations.deal`), by
/// record id.
fn deal_contacts(sync: &super::Sync, deal: &str) -> Result<Vec<String>, String> {
    let agent = super::sender::agent();
    let url = format!("{}/crm/v3/objects/contacts/search", sync.url.trim_end_matches('/'));
    let mut contacts = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let body = serde_json::json!({
            "filterGroups": [{"filters": [{"propertyName": "associations.deal", "operator": "EQ", "value": deal}]}],
            "properties": ["email"], "sorts": [], "limit": 100, "after": after,
        });
        let response = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", sync.token))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes());
        let mut response = response.map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            return Err(format!(
                "HubSpot's contact search answered {status}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        let page: Value = serde_json::from_str(&text).map_err(|e| format!("HubSpot's contact search: {e}"))?;
        for result in page.get("results").and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = result.get("id").and_then(Value::as_str) {
                contacts.push(id.to_owned());
            }
        }
        match page.get("paging").and_then(|p| p.get("next")).and_then(|n| n.get("after")).and_then(Value::as_str) {
            Some(next) if contacts.len() < 1_000 => after = next.to_owned(),
            _ => return Ok(contacts),
        }
    }
}

impl App {
    /// HubSpot's webhook for the sync `name`: verifies it, and records the outcomes its contact
    /// property changes map to.
    pub fn hubspot_webhook(&self, name: &str, request: &SignedRequest<'_>) -> Result<InboundResult, ServiceError> {
        let runner = self.outboxes.syncs.get(name).ok_or_else(|| {
            ServiceError::user(Code::SyncNotFound, format!("no sync named `{name}` takes HubSpot's webhooks"))
        })?;
        let sync = &runner.sync;
        let secret = sync.webhook_secret.as_deref().ok_or_else(|| {
            ServiceError::user(
                Code::SyncNotFound,
                format!("sync `{name}` has no webhook secret (`webhook_secret_env`): its webhooks are off"),
            )
        })?;
        let now = self.clock.now();
        verify_hubspot(secret, request, now)?;
        let body: Value = serde_json::from_slice(request.body)
            .map_err(|e| ServiceError::user(Code::InvalidJson, format!("the body is not valid JSON: {e}")))?;
        let Value::Array(events) = body else {
            return Err(bad_body("the body must be an array of HubSpot events".into()));
        };
        let mut result = InboundResult { received: events.len(), ..InboundResult::default() };
        let mut wanted: Vec<(String, OutcomeKind, Millis)> = Vec::new();
        for event in &events {
            let mapped = hubspot_change(event).and_then(|(object, id, property, value, at)| {
                let map =
                    sync.outcomes.iter().find(|m| m.property == property && m.value.eq_ignore_ascii_case(value))?;
                Some((object, id, map.outcome, at.unwrap_or(now).min(now)))
            });
            match mapped {
                Some((HubSpotObject::Contact, id, outcome, at)) => wanted.push((id, outcome, at)),
                // A deal's outcome is its contacts' (HubSpot's deal events name no contact).
                Some((HubSpotObject::Deal, deal, outcome, at)) => {
                    let contacts = deal_contacts(sync, &deal).map_err(|e| {
                        tracing::warn!("hubspot webhook: deal `{deal}`: {e}");
                        // HubSpot retries a webhook that fails (for up to a day).
                        ServiceError::user(Code::Unavailable, format!("deal `{deal}`: {e}"))
                    })?;
                    if contacts.is_empty() {
                        result.unknown.push(format!("deal {deal}"));
                    }
                    wanted.extend(contacts.into_iter().map(|c| (c, outcome, at)));
                }
                None => result.ignored += 1,
            }
        }
        self.record_by_trait(&sync.id_trait, wanted, &mut result)?;
        metrics::counter!("leadscore_inbound_webhooks_total", "result" => "accepted").increment(1);
        Ok(result)
    }

    /// The generic outcome webhook: verifies its signature and records its outcomes, each
    /// naming its lead by `lead_id` or by the `email` trait.
    pub fn outcome_webhook(&self, signature: Option<&str>, body: &[u8]) -> Result<InboundResult, ServiceError> {
        let Some(secret) = self.settings.outcome_secret.as_deref() else {
            return Err(ServiceError::user(
                Code::NotFound,
                "the outcome webhook is off: set LEADSCORE_OUTCOME_SECRET (or [outcome_webhook] secret_env)",
            ));
        };
        let now = self.clock.now();
        verify_leadscore(secret, signature, body, now)?;
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| ServiceError::user(Code::InvalidJson, format!("the body is not valid JSON: {e}")))?;
        let (items, path): (Vec<&Value>, &str) = match &body {
            Value::Object(o) if o.contains_key("outcomes") => match o.get("outcomes") {
                Some(Value::Array(list)) => (list.iter().collect(), "outcomes"),
                _ => return Err(bad_body("`outcomes` must be an array".into())),
            },
            Value::Object(_) => (vec![&body], ""),
            _ => return Err(bad_body("the body must be an outcome object or `{\"outcomes\": [...]}`".into())),
        };
        let at_path = |i: usize, field: &str| {
            if path.is_empty() { format!("`{field}`") } else { format!("`{path}[{i}].{field}`") }
        };
        let mut by_id: Vec<(LeadId, OutcomeKind, Millis)> = Vec::new();
        let mut by_email: Vec<(String, OutcomeKind, Millis)> = Vec::new();
        let mut unknown = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let text = |field: &str| item.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
            let outcome = text("outcome").and_then(OutcomeKind::parse).ok_or_else(|| {
                bad_body(format!("{}: give converted, won, lost or disqualified", at_path(i, "outcome")))
            })?;
            let at = match item.get("at") {
                None | Some(Value::Null) => now,
                Some(Value::String(s)) => time::parse_timestamp(s)
                    .ok_or_else(|| bad_body(format!("{}: `{s}` is not an RFC 3339 timestamp", at_path(i, "at"))))?,
                Some(_) => return Err(bad_body(format!("{}: must be an RFC 3339 timestamp", at_path(i, "at")))),
            };
            match (text("lead_id"), text("email")) {
                (Some(id), _) => match LeadId::parse(id) {
                    Ok(id) => by_id.push((id, outcome, at)),
                    Err(_) => unknown.push(id.to_owned()),
                },
                (None, Some(email)) => by_email.push((email.to_owned(), outcome, at)),
                (None, None) => return Err(bad_body(format!("{}: give `lead_id` or `email`", at_path(i, "lead_id")))),
            }
        }
        let mut result = InboundResult { received: items.len(), unknown, ..InboundResult::default() };
        let done = self.record_outcomes(&by_id)?;
        result.recorded += done.recorded;
        result.unknown.extend(done.unknown);
        self.record_by_trait(&self.settings.outcome_email_trait, by_email, &mut result)?;
        metrics::counter!("leadscore_inbound_webhooks_total", "result" => "accepted").increment(1);
        Ok(result)
    }

    /// Records outcomes of the leads whose trait `name` holds each value.
    fn record_by_trait(
        &self,
        name: &str,
        wanted: Vec<(String, OutcomeKind, Millis)>,
        result: &mut InboundResult,
    ) -> Result<(), ServiceError> {
        if wanted.is_empty() {
            return Ok(());
        }
        let values: Vec<String> =
            wanted.iter().map(|(v, _, _)| v.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let found = self.store.read(|tx| tx.leads_by_trait(name, &values))?;
        let mut outcomes = Vec::new();
        for (value, outcome, at) in wanted {
            let leads: Vec<&String> =
                found.iter().filter(|(_, v)| v.eq_ignore_ascii_case(&value)).map(|(l, _)| l).collect();
            if leads.is_empty() {
                result.unknown.push(value);
            }
            for lead in leads {
                if let Ok(id) = LeadId::parse(lead) {
                    outcomes.push((id, outcome, at));
                }
            }
        }
        let done = self.record_outcomes(&outcomes)?;
        result.recorded += done.recorded;
        result.unknown.extend(done.unknown);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubspots_v3_signature_matches_an_independent_computation() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"secret",
        //   b"POSThttps://leads.example.com/hooks/hubspot/hubspot?a=b:c[]1700000000000",
        //   hashlib.sha256).digest()).decode())'
        let url = "https://leads.example.com/hooks/hubspot/hubspot?a=b%3Ac";
        assert_eq!(
            hubspot_v3_signature("secret", "POST", url, b"[]", "1700000000000"),
            "9LtRzDKArs0Pdxc/ctLkvD6PNPITxLk1phWxALtI5PU="
        );
    }

    #[test]
    fn a_signature_must_verify_and_be_fresh() {
        let now = 1_700_000_000_000;
        let body = br#"{"lead_id":"u1","outcome":"won"}"#;
        let header = crate::dispatcher::signature("s3cret", now, std::str::from_utf8(body).unwrap());
        assert!(verify_leadscore("s3cret", Some(&header), body, now + 60_000).is_ok());
        assert!(verify_leadscore("other", Some(&header), body, now).is_err());
        assert!(verify_leadscore("s3cret", Some(&header), b"{}", now).is_err());
        assert!(verify_leadscore("s3cret", Some(&header), body, now + MAX_SKEW_MS + 1_000).is_err(), "too old");
        assert!(verify_leadscore("s3cret", None, body, now).is_err());
        let request = SignedRequest {
            method: "POST",
            urls: vec!["http://h/x".into(), "https://h/x".into()],
            signature: Some(""),
            timestamp: Some("1700000000000"),
            body: b"[]",
        };
        let good = hubspot_v3_signature("k", "POST", "https://h/x", b"[]", "1700000000000");
        assert!(verify_hubspot("k", &SignedRequest { signature: Some(&good), ..request.clone() }, now).is_ok());
        assert!(verify_hubspot("k", &request, now).is_err());
        assert!(
            verify_hubspot("k", &SignedRequest { signature: Some(&good), ..request.clone() }, now + 6 * 60_000)
                .is_err()
        );
    }
}
