//! `leadscore sync setup` against the HubSpot contract server (every request validated against
//! HubSpot's OpenAPI documents): it creates the `leadscore` group and one property per value and
//! dimension once, says what exists on a second run, and names the sync and HubSpot's answer when
//! the token is refused.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "../../http/tests/common/contract.rs"]
mod contract;

use std::process::Command;

use serde_json::json;

const MODEL: &str = r#"
[model]
name = "setup"
[dimensions.fit]
[dimensions.Usage]
[[rules]]
name = "Any"
dimension = "fit"
on = 'event.type == "track"'
points = 1
"#;

#[test]
fn setup_creates_the_hubspot_properties_once() {
    let Some(hs) = contract::Contract::hubspot("pat-setup", 190, 10.0) else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.toml");
    std::fs::write(&model, MODEL).unwrap();
    let config = dir.path().join("leadscore.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nmodel = \"{}\"\n[[sync]]\ncrm = \"hubspot\"\nurl = \"{}\"\ntoken_env = \"HS_TEST_TOKEN\"\n\
             [sync.fields]\nreasons = \"\"\n",
            model.display(),
            hs.url
        ),
    )
    .unwrap();
    let run = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(["sync", "setup", "--config"])
            .arg(&config)
            .env("HS_TEST_TOKEN", token)
            .output()
            .unwrap()
    };
    let out = run("pat-setup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "hubspot: created property group `leadscore` of contacts",
            "hubspot: created property `leadscore_total` (number)",
            "hubspot: created property `leadscore_fit` (number)",
            "hubspot: created property `leadscore_usage` (number)",
            "hubspot: created property `leadscore_stage` (string)",
            "hubspot: created property `leadscore_grade` (string)",
            "hubspot: created property `leadscore_probability` (number)",
            "hubspot: created property `leadscore_updated_at` (datetime)",
        ]
    );
    let state = hs.state();
    assert_eq!(state["properties"]["contacts"]["leadscore_usage"]["groupName"], "leadscore");
    assert!(state["properties"]["contacts"].get("leadscore_reasons").is_none(), "a field named \"\" is not written");
    assert_eq!(state["violations"], json!([]));

    let out = run("pat-setup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.lines().all(|l| l.starts_with("hubspot: exists ")), "{text}");

    let out = run("pat-wrong");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "sync `hubspot`: GET /crm/v3/properties/contacts/groups/leadscore: HTTP 401: Authentication credentials"
        ),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["sync", "setup", "--config"])
        .arg(&config)
        .env_remove("HS_TEST_TOKEN")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("the token variable `HS_TEST_TOKEN` is not set"));
}

#[test]
fn setup_lists_the_salesforce_fields_to_create() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.toml");
    std::fs::write(&model, MODEL).unwrap();
    let config = dir.path().join("leadscore.toml");
    std::fs::write(&config, "[[sync]]\ncrm = \"salesforce\"\nurl = \"https://acme.my.salesforce.com\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["sync", "setup", "--config"])
        .arg(&config)
        .arg("--model")
        .arg(&model)
        .env("SALESFORCE_TOKEN", "00D!x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("salesforce:   Leadscore_Total__c (Number(16, 2)), label \"Leadscore total\""), "{text}");
    assert!(text.contains("salesforce:   Leadscore_Usage__c (Number(16, 2))"), "{text}");
    assert!(text.contains("salesforce:   Leadscore_Updated_At__c (Date/Time)"), "{text}");
    assert!(text.contains("Leadscore_Probability__c (Number(1, 4))"), "{text}");
}
