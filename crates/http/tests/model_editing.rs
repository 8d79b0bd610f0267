//! Changing the model from the dashboard: editing a version into a new one (through the same
//! check, diagnostics shown inline, then its preview), and running a version in shadow with its
//! comparison page, its column on the call-now list and its row on the lead page.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/harness.rs"]
mod harness;

use axum::http::{StatusCode, header};
use serde_json::json;

use harness::{Server, T0, cookie_of, csrf_of, form_submit, login, page, start_model_settings};

const MODEL: &str = r#"# The team's model: this comment stays.
[model]
name = "team"

[dimensions.fit]
[dimensions.engagement]

[[rules]]
name = "Demo requested"   # the strongest signal
dimension = "engagement"
on = 'event.type == "track" && event.event == "Demo Requested"'
points = 30

[[rules]]
name = "Pricing page"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path == "/pricing"'
points = 5
within = "30d"

[[stages]]
name = "mql"
when = "total >= 50"

[grade]
fit = { A = 40, B = 20 }
engagement = { 1 = 50, 2 = 20 }
"#;

/// A form body, percent-encoded.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", leadscore_report::percent_encode(k), leadscore_report::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the hidden `source` field of the edit form (unescaped).
fn source_of(html: &str) -> String {
    let start = html.find("name=\"source\" value=\"").unwrap() + "name=\"source\" value=\"".len();
    let raw = &html[start..start + html[start..].find('"').unwrap()];
    raw.replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

async fn admin(s: &Server) -> String {
    let (status, headers) = login(s, "ak").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    cookie_of(&headers)
}

fn demo(user: &str, id: &str) -> serde_json::Value {
    json!({ "type": "track", "userId": user, "event": "Demo Requested", "messageId": id, "timestamp": T0,
            "traits": { "name": format!("Person {user}") } })
}

#[tokio::test]
async fn an_edit_is_checked_saved_as_a_new_version_and_previewed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_model_settings(dir.path(), MODEL, |_| {});
    let cookie = admin(&s).await;
    let (status, html, _) = page(&s, &cookie, "/marketing/models/1/edit").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for field in [
        "name=\"stage.0\" value=\"total &gt;= 50\"",
        "name=\"points.0\" value=\"30\"",
        "name=\"window.1\" value=\"30d\"",
        "name=\"grade.fit.A\" value=\"40\"",
        "value=\"careers_page\"",
    ] {
        assert!(html.contains(field), "{field} in {html}");
    }
    let csrf = csrf_of(&html);
    let source = source_of(&html);
    assert_eq!(source, MODEL);

    // A threshold, points, a window removed, a grade band, a rule removed and one added.
    let body = form(&[
        ("csrf", &csrf),
        ("source", &source),
        ("stage.0", "total >= 40"),
        ("points.0", "35"),
        ("points.1", "5"),
        ("window.1", ""),
        ("half_life.1", "7d"),
        ("grade.fit.A", "45"),
        ("grade.fit.B", "20"),
        ("remove.0", "on"),
        ("add.template", "careers_page"),
        ("add.dimension", "engagement"),
        ("add.name", "Job seeker"),
        ("add.points", "-12"),
        ("toml", &source),
    ]);
    let (status, _, headers) = form_submit(&s, &cookie, "/marketing/models/1/edit", None, &body).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/marketing/models/2/preview?edited_from=1");
    let (_, model) = s.get("/api/models/2").await;
    let saved = model["source"].as_str().unwrap();
    assert!(saved.starts_with("# The team's model: this comment stays."), "{saved}");
    assert!(saved.contains("when = \"total >= 40\""), "{saved}");
    assert!(saved.contains("half_life = \"7d\""), "{saved}");
    assert!(saved.contains("A = 45"), "{saved}");
    assert!(!saved.contains("Demo requested"), "removed: {saved}");
    assert!(saved.contains("name = \"Job seeker\"") && saved.contains("points = -12"), "{saved}");
    assert!(!saved.contains("within"), "{saved}");
    assert_eq!(model["active"], false, "a draft is not active");
    // The preview says what happened and offers the next steps.
    let (status, html, _) = page(&s, &cookie, "/marketing/models/2/preview?edited_from=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"saved\"") && html.contains("saved as version 2"), "{html}");
    assert!(html.contains("id=\"run-shadow\"") && html.contains("id=\"activate\""), "{html}");
    // The rule-by-rule diff of the two files.
    assert!(html.contains("Job seeker"), "{html}");

    // A condition that does not parse: nothing saved, the form again with the diagnostics.
    let body = form(&[("csrf", &csrf), ("source", MODEL), ("stage.0", "total >= ")]);
    let (status, html, _) = form_submit(&s, &cookie, "/marketing/models/1/edit", None, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("Not saved: the edited model has 1 error"), "{html}");
    assert!(html.contains("id=\"diagnostics\"") && html.contains("model.toml:"), "{html}");
    assert!(html.contains("name=\"stage.0\" value=\"total &gt;=\""), "the user's text stays: {html}");
    // A number that is not one.
    let body = form(&[("csrf", &csrf), ("source", MODEL), ("points.1", "lots")]);
    let (status, html, _) = form_submit(&s, &cookie, "/marketing/models/1/edit", None, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("rule `Pricing page`: points: `lots` is not a number"), "{html}");
    let (_, list) = s.get("/api/models").await;
    assert_eq!(list["models"].as_array().unwrap().len(), 2, "nothing was saved");

    // The TOML box: saved as written when changed.
    let edited = MODEL.replace("points = 5\n", "points = 8\n");
    let body = form(&[("csrf", &csrf), ("source", MODEL), ("toml", &edited)]);
    let (status, _, headers) = form_submit(&s, &cookie, "/marketing/models/1/edit", None, &body).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/marketing/models/3/preview?edited_from=1");
    assert_eq!(s.get("/api/models/3").await.1["source"], edited);

    // A read key's session may not edit.
    let (_, headers) = login(&s, "rk").await;
    let reader = cookie_of(&headers);
    assert_eq!(page(&s, &reader, "/marketing/models/1/edit").await.0, StatusCode::FORBIDDEN);
    let body = form(&[("csrf", &csrf), ("source", MODEL), ("toml", &edited)]);
    assert_eq!(form_submit(&s, &reader, "/marketing/models/1/edit", None, &body).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_version_runs_in_shadow_from_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_model_settings(dir.path(), MODEL, |_| {});
    let (_, created) = s.post("/api/models", &MODEL.replace("points = 30", "points = 60")).await;
    assert_eq!(created["version"], 2);
    let (status, _) = s.ingest("/v1/batch", json!({ "batch": [demo("a", "m1"), demo("b", "m2")] })).await;
    assert_eq!(status, 200);
    let cookie = admin(&s).await;
    let (_, html, _) = page(&s, &cookie, "/marketing").await;
    assert!(html.contains("class=\"quiet run-shadow\""), "{html}");
    let csrf = csrf_of(&html);
    let (status, _, headers) =
        form_submit(&s, &cookie, "/marketing/models/2/shadow", None, &form(&[("csrf", &csrf)])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/marketing/models/2/compare");
    for _ in 0..200 {
        if s.app.shadow_status(2).unwrap().scored == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, html, _) = page(&s, &cookie, "/marketing/models/2/compare").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // Both leads: lead under the active model (30), mql under the shadow (60).
    assert!(html.contains("<div class=\"kpi\" id=\"agreement\">0%</div>"), "{html}");
    assert!(html.contains("2 leads scored by both"), "{html}");
    let (_, html, _) = page(&s, &cookie, "/marketing").await;
    assert!(html.contains("shadow-mark") && html.contains("stop-shadow"), "{html}");
    // Sales see the shadow's column and the lead's row.
    let (_, html, _) = page(&s, &cookie, "/leads").await;
    assert!(html.contains("v2 (shadow)"), "{html}");
    assert!(html.contains("<td class=\"num hide-phone shadow\">60<div class=\"muted\">mql</div></td>"), "{html}");
    let (_, html, _) = page(&s, &cookie, "/leads/a").await;
    assert!(html.contains("id=\"shadows\"") && html.contains("Demo requested (60)"), "{html}");
    // Stopping it takes it off the pages.
    let (status, _, _) =
        form_submit(&s, &cookie, "/marketing/models/2/shadow", None, &form(&[("csrf", &csrf), ("stop", "true")])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html, _) = page(&s, &cookie, "/leads/a").await;
    assert!(!html.contains("id=\"shadows\""), "{html}");
    let (_, html, _) = page(&s, &cookie, "/leads").await;
    assert!(!html.contains("(shadow)"), "{html}");
}
