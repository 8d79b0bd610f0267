//! Alerts (`[[alerts]]`): a message in Slack (an incoming webhook, Block Kit) or Microsoft Teams
//! (a workflow webhook, an Adaptive Card) when a lead reaches one of the chosen stages, with who
//! it is, its grade and total, the top three reasons and a link to its page. Once per crossing:
//! a lead that reaches the stage again within the alert's quiet period (oscillating around a
//! threshold) does not alert again. Alerts go through the webhook outbox ([`crate::webhooks`]):
//! queued in the transaction of the change, sent by the dispatchers, retried, in the delivery
//! log; they are not signed (Slack and Teams authenticate by the secret URL).

use serde_json::{Map, Value, json};

use leadscore_core::time::Millis;
use leadscore_store::{StoreError, StoredScore, Tx};

use crate::webhooks::StageChange;

/// Where alerts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Slack,
    Teams,
}

impl AlertKind {
    pub const ALL: [AlertKind; 2] = [AlertKind::Slack, AlertKind::Teams];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Slack => "slack",
            AlertKind::Teams => "teams",
        }
    }

    pub fn parse(text: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A configured alert (checked by [`crate::settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The incoming webhook's URL (a secret: from the environment or the file).
    pub url: String,
    /// The stages whose reaching alerts (empty: every stage but the default `lead`).
    pub stages: Vec<String>,
    /// How long after an alert for a lead and stage another one for them is held back.
    pub quiet: Millis,
}

/// The default quiet period: a day.
pub const DEFAULT_QUIET_MS: Millis = 86_400_000;

impl Alert {
    pub fn wants(&self, stage: &str) -> bool {
        if self.stages.is_empty() {
            stage != leadscore_core::model::DEFAULT_STAGE
        } else {
            self.stages.iter().any(|s| s == stage)
        }
    }
}

/// What an alert says of a lead (from its score, traits and reasons).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFacts<'a> {
    pub change: &'a StageChange,
    pub score: &'a StoredScore,
    pub name: Option<String>,
    pub email: Option<&'a str>,
    pub company: Option<&'a str>,
    pub reasons: &'a [(String, f64)],
    pub url: Option<String>,
}

impl AlertFacts<'_> {
    fn who(&self) -> String {
        self.name.clone().or(self.email.map(str::to_owned)).unwrap_or_else(|| self.change.lead_id.clone())
    }

    fn headline(&self) -> String {
        let company = self.company.map(|c| format!(" ({c})")).unwrap_or_default();
        format!("{}{company} is now {}", self.who(), self.change.to.to_uppercase())
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![("Stage", format!("{} → {}", self.change.from, self.change.to))];
        if let Some(grade) = &self.score.grade {
            facts.push(("Grade", grade.clone()));
        }
        facts.push(("Total", leadscore_report::words::format_points(self.score.total)));
        if let Some(company) = self.company {
            facts.push(("Company", company.to_owned()));
        }
        if let Some(email) = self.email {
            facts.push(("E-mail", email.to_owned()));
        }
        facts
    }

    fn reason_lines(&self) -> Vec<String> {
        self.reasons
            .iter()
            .map(|(rule, points)| {
                let sign = if *points < 0.0 { "−" } else { "+" };
                format!("{rule} {sign}{}", leadscore_report::words::format_points(points.abs()))
            })
            .collect()
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped in text from users.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Slack incoming-webhook message (Block Kit, with `text` for notifications).
pub fn slack_body(facts: &AlertFacts<'_>) -> Value {
    let fields: Vec<Value> = facts
        .facts()
        .into_iter()
        .map(|(title, value)| json!({"type": "mrkdwn", "text": format!("*{title}*\n{}", slack_escape(&value))}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": facts.headline(), "emoji": false}}),
        json!({"type": "section", "fields": fields}),
    ];
    let reasons = facts.reason_lines();
    if !reasons.is_empty() {
        let text: Vec<String> = reasons.iter().map(|r| format!("• {}", slack_escape(r))).collect();
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Why*\n{}", text.join("\n"))}}),
        );
    }
    if let Some(url) = &facts.url {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open lead"}, "url": url}
        ]}));
    }
    json!({ "text": facts.headline(), "blocks": blocks })
}

/// A Microsoft Teams workflow-webhook message: one Adaptive Card.
pub fn teams_body(facts: &AlertFacts<'_>) -> Value {
    let fact_set: Vec<Value> =
        facts.facts().into_iter().map(|(title, value)| json!({"title": title, "value": value})).collect();
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": facts.headline(), "wrap": true}),
        json!({"type": "FactSet", "facts": fact_set}),
    ];
    let reasons = facts.reason_lines();
    if !reasons.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "Why", "weight": "Bolder", "spacing": "Medium"}));
        let lines: Vec<String> = reasons.iter().map(|r| format!("- {r}")).collect();
        body.push(json!({"type": "TextBlock", "text": lines.join("\n"), "wrap": true}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(url) = &facts.url {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open lead", "url": url}]);
    }
    json!({"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}
    ]})
}

/// The delivery id prefix of alert `index` for `stage` (the quiet period looks it up).
pub fn id_prefix(index: usize, stage: &str) -> String {
    format!("alert-{index}-{stage}-")
}

/// The company a lead's traits name (`company`, `company_name`, `companyName`).
pub fn company_of(traits: &Map<String, Value>) -> Option<&str> {
    ["company", "company_name", "companyName"]
        .iter()
        .find_map(|k| traits.get(*k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()))
}

/// Queues the alerts a stage change calls for (in the caller's transaction), unless the lead
/// alerted for that stage within the quiet period.
pub fn enqueue(tx: &mut Tx<'_>, alerts: &[Alert], facts: &AlertFacts<'_>, digest: &str) -> Result<(), StoreError> {
    let change = facts.change;
    for (index, alert) in alerts.iter().enumerate() {
        if !alert.wants(&change.to) {
            continue;
        }
        let prefix = id_prefix(index, &change.to);
        let last = tx.latest_delivery_at(&change.lead_id, &prefix)?;
        if last.is_some_and(|last| change.at - last < alert.quiet) {
            metrics::counter!("leadscore_alerts_total", "result" => "quiet").increment(1);
            continue;
        }
        let body = match alert.kind {
            AlertKind::Slack => slack_body(facts),
            AlertKind::Teams => teams_body(facts),
        };
        tx.enqueue_delivery(&leadscore_store::DeliveryRow {
            id: format!("{prefix}{digest}"),
            lead_id: change.lead_id.clone(),
            url: alert.url.clone(),
            body: body.to_string(),
            status: leadscore_store::DeliveryStatus::Pending,
            attempts: 0,
            created_at: change.at,
            next_attempt_at: change.at,
            last_attempt_at: None,
            last_error: None,
            delivered_at: None,
        })?;
        metrics::counter!("leadscore_alerts_total", "result" => "queued", "kind" => alert.kind.as_str()).increment(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn score() -> StoredScore {
        StoredScore {
            scored_at: 0,
            model_version: 1,
            scores: BTreeMap::new(),
            total: 104.5,
            stage: "sql".into(),
            grade: Some("A1".into()),
            probability: None,
            contributions: Vec::new(),
            current_traits: Map::new(),
            account_id: None,
            next_change_at: None,
            stage_rank: 0,
        }
    }

    #[test]
    fn slack_and_teams_messages_say_who_why_and_where() {
        let change = StageChange { lead_id: "42".into(), from: "mql".into(), to: "sql".into(), at: 0 };
        let score = score();
        let reasons = vec![("Demo requested".to_owned(), 30.0), ("Careers page".to_owned(), -10.0)];
        let facts = AlertFacts {
            change: &change,
            score: &score,
            name: Some("Ada <Lovelace>".into()),
            email: Some("ada@example.com"),
            company: Some("Acme & Co"),
            reasons: &reasons,
            url: Some("https://leads.example.com/leads/42".into()),
        };
        let slack = slack_body(&facts);
        assert_eq!(slack["text"], "Ada <Lovelace> (Acme & Co) is now SQL");
        assert_eq!(slack["blocks"][0]["type"], "header");
        assert_eq!(slack["blocks"][1]["fields"][0]["text"], "*Stage*\nmql → sql");
        assert_eq!(slack["blocks"][1]["fields"][3]["text"], "*Company*\nAcme &amp; Co");
        assert_eq!(slack["blocks"][2]["text"]["text"], "*Why*\n• Demo requested +30\n• Careers page −10");
        assert_eq!(slack["blocks"][3]["elements"][0]["url"], "https://leads.example.com/leads/42");
        let teams = teams_body(&facts);
        let card = &teams["attachments"][0]["content"];
        assert_eq!(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!((&card["type"], &card["version"]), (&json!("AdaptiveCard"), &json!("1.4")));
        assert_eq!(card["body"][1]["facts"][1], json!({"title": "Grade", "value": "A1"}));
        assert_eq!(card["body"][3]["text"], "- Demo requested +30\n- Careers page −10");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    }
}
