//! What sales and marketing do with a score: note a contact (in the history, not the score),
//! filter the call-now list by owner, see who came into the highest stage since yesterday, and
//! know which missing answer to ask a lead for next (per lead, and tallied for marketing).

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;

use axum::http::StatusCode;
use serde_json::{Value, json};

use harness::{T0, cookie_of, csrf_of, form_submit, login, page, start_model_settings};
use leadscore_core::time::{MS_PER_DAY, parse_timestamp};

const MODEL: &str = r#"
[model]
name = "sales"

[dimensions.fit]
[dimensions.engagement]

[[rules]]
name = "Big company"
dimension = "fit"
if = 'has(lead.employees) && lead.employees >= 200'
points = 30

[[rules]]
name = "Senior"
dimension = "fit"
if = 'has(lead.title) && lead.title.contains("VP")'
points = 10

[[rules]]
name = "Demo"
dimension = "engagement"
on = 'event.type == "track" && event.event == "Demo Requested"'
points = 40

[[stages]]
name = "sql"
when = "total >= 70"

[grade]
fit = { A = 30, B = 10 }
engagement = { 1 = 40 }
"#;

fn identify(user: &str, traits: Value, id: &str) -> Value {
    json!({ "type": "identify", "userId": user, "traits": traits, "messageId": id, "timestamp": T0 })
}

fn demo(user: &str, id: &str) -> Value {
    json!({ "type": "track", "userId": user, "event": "Demo Requested", "messageId": id, "timestamp": T0 })
}

#[tokio::test]
async fn contacts_owners_new_arrivals_and_what_to_ask_next() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_model_settings(dir.path(), MODEL, |_| {});
    let batch = json!({ "batch": [
        // ana: VP, demo, employees unknown ("n/a"): 50 now; the answer could make her sql.
        identify("ana", json!({ "name": "Ana", "title": "VP Sales", "employees": "n/a", "owner": "Rita" }), "i1"),
        demo("ana", "d1"),
        // bo: big company, VP, demo: 80, sql already.
        identify("bo", json!({ "name": "Bo", "title": "VP", "employees": 900, "owner": "rita" }), "i2"),
        demo("bo", "d2"),
        // cy: nothing known but a demo: the company size would help most too.
        identify("cy", json!({ "name": "Cy", "owner": "Sam" }), "i3"),
        demo("cy", "d3"),
    ]});
    assert_eq!(s.ingest("/v1/batch", batch).await.0, 200);

    // What to ask next, per lead.
    let ana = s.lead("ana").await;
    assert_eq!(
        ana["ask_next"],
        json!({ "trait": "employees", "points": 30.0, "stage": "sql", "grade": "A1" }),
        "{ana}"
    );
    assert!(s.lead("bo").await.get("ask_next").is_none(), "bo has answered everything that counts");
    let cy = s.lead("cy").await;
    assert_eq!(cy["ask_next"]["trait"], "employees", "{cy}");

    // A contact: a note in the history, with the stage and total then; the score stays.
    let (status, body) = s.post("/api/leads/ana/contacted", &json!({ "by": "Rita" }).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["note"], "contacted by Rita");
    let ana = s.lead("ana").await;
    let last = ana["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["note"].as_str(), last["stage"].as_str(), last["total"].as_f64()),
        (Some("contacted by Rita"), Some("lead"), Some(50.0))
    );
    assert_eq!(ana["last_contacted_at"], T0);
    assert_eq!(ana["total"], 50.0);
    // An empty body is "now, unnamed"; a read key may; an unknown lead is a 404; junk a 400.
    let request = axum::http::Request::post("/api/leads/cy/contacted")
        .header("authorization", "Bearer rk")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, body, _) = s.send(request).await;
    assert_eq!((status, body["note"].as_str()), (StatusCode::OK, Some("contacted")), "{body}");
    let (status, body) = s.post("/api/leads/nobody/contacted", "").await;
    assert_eq!((status.as_u16(), body["code"].as_str()), (404, Some("lead_not_found")));
    let (status, body) = s.post("/api/leads/ana/contacted", "{\"when\": 1}").await;
    assert_eq!((status.as_u16(), body["code"].as_str()), (400, Some("invalid_json")), "{body}");

    // The owner filter (any case), through the API.
    let (_, list) = s.get("/api/leads?owner=RITA").await;
    let ids: Vec<&str> = list["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["bo", "ana"]);

    // The dashboard: the owner filter, who is new in sql, the contact button, what to ask.
    let (_, headers) = login(&s, "rk").await;
    let cookie = cookie_of(&headers);
    let (_, html, _) = page(&s, &cookie, "/leads?owner=sam").await;
    assert!(html.contains("data-lead=\"cy\"") && !html.contains("data-lead=\"ana\""), "{html}");
    assert!(html.contains("<option value=\"rita\" >rita (2)</option>") || html.contains("rita (2)"), "{html}");
    assert!(html.contains("New in sql since yesterday: 1</b>: <a href=\"/leads/bo\">Bo</a>"), "{html}");
    // Two days on, bo is no longer new.
    s.clock.set(parse_timestamp(T0).unwrap() + 2 * MS_PER_DAY);
    // (Sessions end after a day without use: log in again.)
    let (_, headers) = login(&s, "rk").await;
    let cookie = cookie_of(&headers);
    let (status, html, _) = page(&s, &cookie, "/leads").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("New in sql since yesterday: 0</b>"), "{html}");
    let (_, html, _) = page(&s, &cookie, "/leads/ana").await;
    assert!(
        html.contains("Ask for <b>employees</b> next: the answer could add up to 30 points and reach sql and grade A1"),
        "{html}"
    );
    assert!(html.contains("id=\"last-contacted\">Last contacted 2 days ago"), "{html}");
    let csrf = csrf_of(&html);
    let (status, _, headers) = form_submit(&s, &cookie, "/leads/ana/contacted", None, &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/leads/ana#history");
    let (_, html, _) = page(&s, &cookie, "/leads/ana").await;
    assert!(html.contains("Last contacted just now"), "{html}");
    assert_eq!(html.matches("<tr class=\"note\">").count(), 2, "{html}");

    // Marketing: the tally over open leads.
    let (_, headers) = login(&s, "ak").await;
    let (_, html, _) = page(&s, &cookie_of(&headers), "/marketing").await;
    let table = &html[html.find("id=\"ask-next\"").expect("the ask-next table")..];
    let row = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    // employees could take ana and cy to sql (40 + 30) and grade A1; bo answered everything.
    let expected = "<tbody><tr><td><b>employees</b></td><td class=\"num\">2</td><td class=\"num\">2</td><td class=\"num\">2</td></tr>";
    assert_eq!(row, expected);
}
