//! The CRM contract servers (`tests/crm/hubspot_contract.py`, `tests/crm/salesforce_contract.py`)
//! as child processes: every request they get is validated against the vendor's API description.
//! Without their Python environment (`tests/crm/.venv`, see tests/crm/README.md) the constructors
//! say "skipped: …" loudly and return `None`; with `LEADSCORE_REQUIRE_CRM=1` (CI) they fail instead.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub struct Contract {
    child: Child,
    pub url: String,
    agent: ureq::Agent,
}

impl Drop for Contract {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Contract {
    /// HubSpot's, with this private-app token and burst limit (`rate` requests per `window` s).
    pub fn hubspot(token: &str, rate: usize, window: f64) -> Option<Contract> {
        let args = ["--token", token, "--rate", &rate.to_string(), "--window", &window.to_string()].map(str::to_owned);
        Contract::start("hubspot_contract.py", &args)
    }

    /// Salesforce's, with this OAuth access token.
    pub fn salesforce(token: &str) -> Option<Contract> {
        Contract::start("salesforce_contract.py", &["--token".to_owned(), token.to_owned()])
    }

    fn start(script: &str, args: &[String]) -> Option<Contract> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/crm");
        let python = std::env::var_os("LEADSCORE_CRM_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        if !python.exists() {
            let message = format!(
                "skipped: the CRM contract servers need {} (python3 -m venv tests/crm/.venv && \
                 tests/crm/.venv/bin/pip install -r tests/crm/requirements.txt)",
                python.display()
            );
            assert!(std::env::var("LEADSCORE_REQUIRE_CRM").is_err(), "{message}");
            eprintln!("\n*** {message} ***\n");
            return None;
        }
        let mut child = Command::new(python)
            .arg(root.join(script))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the contract server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("its port");
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected: {line}"));
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Some(Contract { child, url: format!("http://127.0.0.1:{port}"), agent })
    }

    /// A control call (`/__control/{path}`) with a body.
    pub fn control_post(&self, path: &str, body: Value) -> Value {
        self.control(path, Some(body))
    }

    fn control(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/__control/{path}", self.url);
        let mut response = match body {
            Some(body) => {
                self.agent.post(&url).header("Content-Type", "application/json").send(body.to_string().as_bytes())
            }
            None => self.agent.get(&url).call(),
        }
        .expect("the control API");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        serde_json::from_str(&response.body_mut().read_to_string().expect("a body")).expect("JSON")
    }

    /// Salesforce: creates records `(id, type)`.
    pub fn records(&self, list: &[(String, &str)]) {
        let body: Vec<Value> = list.iter().map(|(id, kind)| json!({"id": id, "type": kind})).collect();
        self.control("records", Some(json!(body)));
    }

    /// Salesforce: the custom fields each object has (`{"Lead": {"Leadscore_Total__c": "number"}}`).
    pub fn fields(&self, fields: Value) {
        self.control("fields", Some(fields));
    }

    /// HubSpot: creates contacts (`email`, and an `id` or one assigned); returns their ids in order.
    pub fn contacts(&self, list: &[(&str, Option<&str>)]) -> Vec<String> {
        let body: Vec<Value> = list.iter().map(|(email, id)| json!({"email": email, "id": id})).collect();
        let out = self.control("contacts", Some(json!(body)));
        out.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    }

    /// Makes every answer `status` (`count` times, or until cleared with 0).
    pub fn fail(&self, status: u16, count: Option<u32>, retry_after: Option<u32>) {
        self.control("fail", Some(json!({"status": status, "count": count, "retry_after": retry_after})));
    }

    pub fn state(&self) -> Value {
        self.control("state", None)
    }
}
