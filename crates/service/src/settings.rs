//! Server configuration (SPEC §6): a TOML file (`[server]`, `[ingest]`, `[auth]`, `[[webhooks]]`,
//! `[[sync]]`), then the environment (`LEADSCORE_WRITE_KEYS`, `LEADSCORE_API_KEYS`,
//! `LEADSCORE_READ_KEYS`, `LEADSCORE_PUBLIC_URL`, and each sync's token variable), then flags;
//! later sources win. [`Config`] is what a file says;
//! [`Settings`] is the checked result the server runs with.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use leadscore_core::time::Millis;

use crate::alerts::{Alert, AlertKind, DEFAULT_QUIET_MS};
use crate::auth::{Keys, Role};
use crate::crm::{self, Crm, Fields, Naming, Sync, When};
use crate::webhooks::{DEFAULT_FIRST_RETRY_MS, Hook};

/// The config file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// CRM write-back (`[[sync]]`).
    #[serde(default)]
    pub sync: Vec<SyncConfig>,
    /// The generic signed outcome webhook (`POST /hooks/outcomes`).
    #[serde(default)]
    pub outcome_webhook: OutcomeWebhookSection,
    /// Slack and Teams alerts (`[[alerts]]`).
    #[serde(default)]
    pub alerts: Vec<AlertConfig>,
    #[serde(default)]
    pub dashboard: DashboardSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSection {
    /// The trait naming a lead's owner (the sales rep), for the call-now list's owner column and
    /// filter (default `owner`; HubSpot imports might use `hubspot_owner_id`).
    pub owner_trait: Option<String>,
}

/// One `[[alerts]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// `slack` (an incoming webhook) or `teams` (a workflow webhook).
    pub kind: String,
    /// The webhook URL …
    pub url: Option<String>,
    /// … or the environment variable holding it (it is a secret).
    pub url_env: Option<String>,
    /// The stages whose reaching alerts (default: every stage but `lead`).
    #[serde(default)]
    pub stages: Vec<String>,
    /// How long after an alert for a lead and stage another one is held back (default `24h`).
    pub quiet: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeWebhookSection {
    /// The environment variable holding its secret (default `LEADSCORE_OUTCOME_SECRET`; unset:
    /// the webhook is off).
    pub secret_env: Option<String>,
    /// The trait an outcome's `email` is matched against (default `email`).
    pub email_trait: Option<String>,
}

/// One `[[sync.outcomes]]` entry: a CRM field value that is an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeMapConfig {
    pub property: String,
    pub value: String,
    /// converted, won, lost or disqualified.
    pub outcome: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<String>,
    pub db: Option<String>,
    pub model: Option<PathBuf>,
    /// How browsers and SDKs reach this server (`https://leads.example.com`): the analytics.js
    /// settings, the RudderStack source config and `Secure` cookies follow it.
    pub public_url: Option<String>,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-Proto` / `X-Forwarded-For` are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// How long a client may take to send a request's headers (default `10s`).
    pub header_timeout: Option<String>,
    /// How long a client may take to send a request's body (default `30s`).
    pub body_timeout: Option<String>,
    /// How long a keep-alive connection may stay idle between requests (default `60s`).
    pub idle_timeout: Option<String>,
    /// Most open client connections (default 1024, and at most the open-file limit less 64); past
    /// it the longest-idle connection is closed to make room.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// How far after its receipt an event's time may lie (default `1d`); later times are a 400.
    pub max_future: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub write_keys: Vec<String>,
    /// Admin keys (everything).
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Read keys (sales: leads, accounts, outcomes, the dashboard without admin actions).
    #[serde(default)]
    pub read_keys: Vec<String>,
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
    /// Which event types to send (default: all; today there is `lead.stage_changed`).
    #[serde(default)]
    pub events: Vec<String>,
    /// The wait before the first retry of a failed delivery (default `5s`), doubling after each
    /// failure up to an hour; retries go on for 24 hours.
    pub first_retry: Option<String>,
}

/// One `[[sync]]` entry: scores written to a CRM's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// `hubspot` or `salesforce`.
    pub crm: String,
    /// Names the sync in the log, the API and the metrics (default: the CRM's name).
    pub name: Option<String>,
    /// The environment variable holding the token (default `HUBSPOT_TOKEN`, `SALESFORCE_TOKEN`).
    pub token_env: Option<String>,
    /// The API's base URL (HubSpot: default `https://api.hubapi.com`; Salesforce: the org's
    /// instance URL, required).
    pub url: Option<String>,
    /// The records written (HubSpot: `contacts`, or `companies` for accounts' rolled-up scores;
    /// Salesforce: `Lead` (default) or `Contact`, for ids whose prefix does not say).
    pub object: Option<String>,
    /// Salesforce's REST API version (default `v60.0`).
    pub api_version: Option<String>,
    /// `change` (default: every change of total, stage or grade, debounced) or `stage` (only
    /// stage or grade changes).
    pub when: Option<String>,
    /// How long after a lead's first unwritten change it is written (default `60s`).
    pub debounce: Option<String>,
    /// Requests per window (default `190/10s`, HubSpot's burst limit for private apps;
    /// Salesforce `100/10s`).
    pub rate_limit: Option<String>,
    /// The trait holding a lead's CRM record id (default `hubspot_id`, `salesforce_id`; for
    /// companies the account trait `hubspot_company_id`).
    pub id_trait: Option<String>,
    /// HubSpot: the trait holding its e-mail, to match by e-mail without the id (default
    /// `email`; `""`: match by id only). Salesforce matches by id only.
    pub email_trait: Option<String>,
    /// The prefix of the default field names (default `leadscore_`, `Leadscore_`).
    pub prefix: Option<String>,
    /// Field names: `total`, `stage`, `grade`, `probability`, `reasons`, `updated_at`, or a
    /// dimension's name, to a CRM field name (`""`: not written).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The wait before the first retry of a failed write (default `5s`), doubling up to an hour.
    pub first_retry: Option<String>,
    /// How long a failing lead is retried before it is dead until its next change (default `24h`).
    pub retry_for: Option<String>,
    /// The environment variable holding the HubSpot app's client secret, which signs its
    /// webhooks (default `HUBSPOT_CLIENT_SECRET`; unset: the sync takes no webhooks).
    pub webhook_secret_env: Option<String>,
    /// Which CRM field values are outcomes (default: `lifecyclestage` `customer` → won,
    /// `hs_lead_status` `UNQUALIFIED` → disqualified).
    #[serde(default)]
    pub outcomes: Vec<OutcomeMapConfig>,
}

/// Command-line values (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub db: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub write_keys: Vec<String>,
    pub api_keys: Vec<String>,
    pub read_keys: Vec<String>,
}

/// The server's public address, from `public_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
}

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let text = text.trim().trim_end_matches('/');
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("`{text}` is not a URL (e.g. https://leads.example.com)"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{text}` must start with http:// or https://"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!("`{text}` must be scheme://host[:port], without a path"));
        }
        Ok(PublicUrl { scheme, authority: rest.to_ascii_lowercase() })
    }

    /// `scheme://authority`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// What the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub db: String,
    pub model: Option<PathBuf>,
    pub write_keys: Vec<String>,
    /// Admin keys.
    pub api_keys: Vec<String>,
    pub read_keys: Vec<String>,
    pub webhooks: Vec<Hook>,
    /// CRM write-back.
    pub syncs: Vec<Sync>,
    /// Slack and Teams alerts.
    pub alerts: Vec<Alert>,
    /// The generic outcome webhook's secret (`None`: off).
    pub outcome_secret: Option<String>,
    /// The trait its `email` is matched against.
    pub outcome_email_trait: String,
    /// The trait naming a lead's owner (`[dashboard] owner_trait`, default `owner`).
    pub owner_trait: String,
    pub public_url: Option<PublicUrl>,
    pub trusted_proxies: Vec<IpNet>,
    pub limits: Limits,
    /// How far after its receipt an event's time may lie.
    pub max_future: Millis,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DB: &str = "sqlite://leadscore.db";
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// One day: browsers' clocks are often wrong by hours, rarely by days.
pub const DEFAULT_MAX_FUTURE: Millis = 86_400_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("`{value}` is not a listen address (expected HOST:PORT, e.g. 127.0.0.1:8080)")]
    Listen { value: String },
    #[error("no write key: give --write-key, LEADSCORE_WRITE_KEYS or [auth] write_keys")]
    NoWriteKey,
    #[error("no API key: give --api-key, LEADSCORE_API_KEYS or [auth] api_keys")]
    NoApiKey,
    #[error("`{key}` is given for two roles; use a different key for each")]
    SharedKey { key: String },
    #[error("webhook {index}: {reason}")]
    Webhook { index: usize, reason: String },
    #[error("sync {name}: {reason}")]
    Sync { name: String, reason: String },
    #[error("alert {index}: {reason}")]
    Alert { index: usize, reason: String },
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Config {
    /// The `[[sync]]` entries, checked, with their tokens from the environment (`env`).
    pub fn syncs(&self, env: &impl Fn(&str) -> Option<String>) -> Result<Vec<Sync>, SettingsError> {
        let mut syncs: Vec<Sync> = Vec::with_capacity(self.sync.len());
        for (i, entry) in self.sync.iter().enumerate() {
            let sync = sync(entry, env).map_err(|reason| SettingsError::Sync {
                name: entry.name.as_deref().map_or_else(|| (i + 1).to_string(), |n| format!("`{n}`")),
                reason,
            })?;
            if syncs.iter().any(|s| s.name == sync.name) {
                return Err(SettingsError::Sync {
                    name: format!("`{}`", sync.name),
                    reason: "two syncs have this name; give each its own `name`".to_owned(),
                });
            }
            syncs.push(sync);
        }
        Ok(syncs)
    }

    pub fn load(path: &Path) -> Result<Config, SettingsError> {
        let file = |reason: String| SettingsError::File { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
        toml::from_str(&text).map_err(|e| file(e.to_string().trim_end().replace('\n', " ")))
    }
}

/// Comma-separated keys, blanks dropped.
fn split_keys(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect()
}

fn duration(field: &'static str, text: Option<&str>, default: Duration) -> Result<Duration, SettingsError> {
    match text {
        None => Ok(default),
        Some(text) => leadscore_core::time::Duration::parse(text)
            .map(|d| Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            .map_err(|e| SettingsError::Invalid { field, reason: e.to_string() }),
    }
}

/// A trusted proxy: an address (`10.0.0.1`) or a CIDR range (`10.0.0.0/8`).
fn proxy(text: &str) -> Result<IpNet, SettingsError> {
    let text = text.trim();
    text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map_err(|_| SettingsError::Invalid {
        field: "trusted_proxies",
        reason: format!("`{text}` is not an IP address or CIDR range (e.g. 10.0.0.0/8)"),
    })
}

/// A duration field of a sync, or its default.
fn sync_duration(field: &str, text: Option<&str>, default: Millis) -> Result<Millis, String> {
    let zero = |t: &str| {
        let digits = t.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
        !digits.is_empty() && digits.chars().all(|c| c == '0')
    };
    match text {
        None => Ok(default),
        // `0s`: no debounce (the model language has no zero durations).
        Some(text) if zero(text) => Ok(0),
        Some(text) => leadscore_core::time::Duration::parse(text)
            .map(|d| d.as_millis())
            .map_err(|_| format!("`{field}`: `{text}` is not a duration (e.g. 60s, 5m)")),
    }
}

/// Whether `name` can name a Salesforce field (letters, digits and `_`, from a letter).
fn salesforce_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` can name a HubSpot property (lower-case letters, digits and `_`, from a letter).
fn hubspot_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks one `[[alerts]]` entry (its URL from the file or the environment).
fn alert(entry: &AlertConfig, env: &impl Fn(&str) -> Option<String>) -> Result<Alert, String> {
    let kind =
        AlertKind::parse(&entry.kind).ok_or_else(|| format!("`kind`: `{}` is not `slack` or `teams`", entry.kind))?;
    let url = match (&entry.url, &entry.url_env) {
        (Some(url), None) => url.clone(),
        (None, Some(var)) => env(var)
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("`url_env`: the variable `{var}` is not set"))?,
        _ => return Err("give `url` or `url_env` (one of them)".to_owned()),
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("the URL must start with https:// or http://".to_owned());
    }
    Ok(Alert {
        kind,
        url,
        stages: entry.stages.clone(),
        quiet: sync_duration("quiet", entry.quiet.as_deref(), DEFAULT_QUIET_MS)?,
    })
}

/// Checks one `[[sync]]` entry and reads its token from the environment.
fn sync(entry: &SyncConfig, env: &impl Fn(&str) -> Option<String>) -> Result<Sync, String> {
    let crm = Crm::parse(&entry.crm).ok_or_else(|| {
        let known: Vec<&str> = Crm::ALL.iter().map(|c| c.as_str()).collect();
        format!("`crm`: unknown CRM `{}` (known: {})", entry.crm, known.join(", "))
    })?;
    let name = entry.name.clone().unwrap_or_else(|| crm.as_str().to_owned());
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("`name`: `{name}` must be letters, digits, `_` or `-`"));
    }
    let salesforce = crm == Crm::Salesforce;
    let (default_token_env, what) = if salesforce {
        ("SALESFORCE_TOKEN", "a Salesforce OAuth access token")
    } else {
        ("HUBSPOT_TOKEN", "a HubSpot private app's access token")
    };
    let token_env = entry.token_env.clone().unwrap_or_else(|| default_token_env.to_owned());
    let token = env(&token_env)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("the token variable `{token_env}` is not set ({what})"))?;
    let url = match (&entry.url, salesforce) {
        (Some(url), _) => url.clone(),
        (None, false) => crm::hubspot::DEFAULT_URL.to_owned(),
        (None, true) => return Err("`url`: give the org's instance URL (https://yourorg.my.salesforce.com)".to_owned()),
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("`url`: `{url}` must start with https:// or http://"));
    }
    let object = entry.object.clone().unwrap_or_else(|| if salesforce { "Lead" } else { "contacts" }.to_owned());
    let objects: &[&str] = if salesforce { &["Lead", "Contact"] } else { &["contacts", "companies"] };
    let accounts = object == "companies";
    if !objects.contains(&object.as_str()) {
        return Err(format!("`object`: `{object}` cannot be written (known: {})", objects.join(", ")));
    }
    let api_version = entry.api_version.clone().unwrap_or_else(|| crm::salesforce::DEFAULT_API_VERSION.to_owned());
    let valid_version = api_version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && (a.to_owned() + b).chars().all(|c| c.is_ascii_digit()));
    if !valid_version {
        return Err(format!("`api_version`: `{api_version}` is not a version like v60.0"));
    }
    let when = match entry.when.as_deref() {
        None | Some("change") => When::Change,
        Some("stage") => When::Stage,
        Some(other) => return Err(format!("`when`: `{other}` is not `change` or `stage`")),
    };
    let (rate_requests, rate_window_ms) = match entry.rate_limit.as_deref() {
        None if salesforce => (100, 10_000),
        None => (190, 10_000),
        Some(text) => {
            let bad = || format!("`rate_limit`: `{text}` is not requests per window (e.g. 190/10s)");
            let (n, window) = text.split_once('/').ok_or_else(bad)?;
            let n: usize = n.trim().parse().map_err(|_| bad())?;
            let window = leadscore_core::time::Duration::parse(window.trim()).map_err(|_| bad())?.as_millis();
            if n == 0 || window <= 0 {
                return Err(bad());
            }
            (n, window)
        }
    };
    let prefix =
        entry.prefix.clone().unwrap_or_else(|| if salesforce { "Leadscore_" } else { "leadscore_" }.to_owned());
    let (valid, rule): (fn(&str) -> bool, &str) = if salesforce {
        (salesforce_name, "a Salesforce field name (letters, digits and `_`, from a letter)")
    } else {
        (hubspot_name, "a HubSpot property name (lower-case letters, digits and `_`, from a letter)")
    };
    for (key, field) in &entry.fields {
        if !field.is_empty() && !valid(field) {
            return Err(format!("`fields.{key}`: `{field}` is not {rule}"));
        }
    }
    if !prefix.is_empty() && !valid(&prefix) {
        return Err(format!("`prefix`: `{prefix}` must be the start of {rule}"));
    }
    let default_id = match (salesforce, accounts) {
        (true, _) => "salesforce_id",
        (false, true) => "hubspot_company_id",
        (false, false) => "hubspot_id",
    };
    let id_trait = entry.id_trait.clone().unwrap_or_else(|| default_id.to_owned());
    let webhook_secret = env(entry.webhook_secret_env.as_deref().unwrap_or("HUBSPOT_CLIENT_SECRET"))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if let (Some(var), None) = (&entry.webhook_secret_env, &webhook_secret) {
        return Err(format!("`webhook_secret_env`: the variable `{var}` is not set"));
    }
    let outcomes = if entry.outcomes.is_empty() {
        crm::inbound::default_hubspot_outcomes()
    } else {
        entry
            .outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let outcome = leadscore_core::OutcomeKind::parse(&o.outcome).ok_or_else(|| {
                    format!("`outcomes[{i}].outcome`: `{}` is not converted, won, lost or disqualified", o.outcome)
                })?;
                Ok(crm::inbound::OutcomeMap { property: o.property.clone(), value: o.value.clone(), outcome })
            })
            .collect::<Result<Vec<_>, String>>()?
    };
    let email_trait = match entry.email_trait.as_deref() {
        // Salesforce's collections update by id only; a company has no unique e-mail.
        _ if salesforce || accounts => None,
        None => Some("email".to_owned()),
        Some("") => None,
        Some(t) => Some(t.to_owned()),
    };
    Ok(Sync {
        name,
        crm,
        url,
        token,
        object,
        accounts,
        when,
        debounce: sync_duration("debounce", entry.debounce.as_deref(), 60_000)?,
        rate_requests,
        rate_window_ms,
        id_trait,
        email_trait,
        fields: Fields::new(if salesforce { Naming::Salesforce } else { Naming::Snake }, &prefix, &entry.fields),
        first_retry: sync_duration("first_retry", entry.first_retry.as_deref(), DEFAULT_FIRST_RETRY_MS)?,
        retry_for: sync_duration("retry_for", entry.retry_for.as_deref(), crate::dispatcher::RETRY_WINDOW_MS)?,
        webhook_secret,
        outcomes,
        api_version,
    })
}

impl Settings {
    /// Settings with these keys and defaults for everything else.
    pub fn new(db: String, model: Option<PathBuf>, write_keys: Vec<String>, api_keys: Vec<String>) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db,
            model,
            write_keys,
            api_keys,
            read_keys: Vec::new(),
            webhooks: Vec::new(),
            syncs: Vec::new(),
            alerts: Vec::new(),
            outcome_secret: None,
            outcome_email_trait: "email".to_owned(),
            owner_trait: "owner".to_owned(),
            public_url: None,
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            max_future: DEFAULT_MAX_FUTURE,
        }
    }

    /// Every configured key with its role.
    pub fn keys(&self) -> Keys {
        Keys::new(
            self.write_keys
                .iter()
                .map(|k| (k.as_str(), Role::Write))
                .chain(self.read_keys.iter().map(|k| (k.as_str(), Role::Read)))
                .chain(self.api_keys.iter().map(|k| (k.as_str(), Role::Admin))),
        )
    }

    /// Whether requests from `peer` may set `X-Forwarded-*`.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Merges file, environment (`env` looks a variable up) and flags, and checks the result.
    pub fn resolve(flags: Flags, env: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let config = match &flags.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let pick = |flag: Vec<String>, var: &str, file: Vec<String>| {
            if !flag.is_empty() {
                flag
            } else if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
                split_keys(&v)
            } else {
                file
            }
        };
        let syncs = config.syncs(&env)?;
        let secret_env = config.outcome_webhook.secret_env.clone();
        let outcome_secret =
            env(secret_env.as_deref().unwrap_or("LEADSCORE_OUTCOME_SECRET")).filter(|s| !s.trim().is_empty());
        if let (Some(var), None) = (&secret_env, &outcome_secret) {
            return Err(SettingsError::Invalid {
                field: "outcome_webhook.secret_env",
                reason: format!("the variable `{var}` is not set"),
            });
        }
        let outcome_email_trait = config.outcome_webhook.email_trait.clone().unwrap_or_else(|| "email".to_owned());
        let alerts = config
            .alerts
            .iter()
            .enumerate()
            .map(|(i, a)| alert(a, &env).map_err(|reason| SettingsError::Alert { index: i + 1, reason }))
            .collect::<Result<Vec<_>, _>>()?;
        let write_keys = pick(flags.write_keys, "LEADSCORE_WRITE_KEYS", config.auth.write_keys);
        let api_keys = pick(flags.api_keys, "LEADSCORE_API_KEYS", config.auth.api_keys);
        let read_keys = pick(flags.read_keys, "LEADSCORE_READ_KEYS", config.auth.read_keys);
        if write_keys.is_empty() {
            return Err(SettingsError::NoWriteKey);
        }
        if api_keys.is_empty() {
            return Err(SettingsError::NoApiKey);
        }
        let lists = [&write_keys, &read_keys, &api_keys];
        for (i, a) in lists.iter().enumerate() {
            for b in &lists[i + 1..] {
                if let Some(key) = a.iter().find(|k| b.contains(k)) {
                    return Err(SettingsError::SharedKey { key: key.clone() });
                }
            }
        }
        let listen_text = flags.listen.or(config.server.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| SettingsError::Listen { value: listen_text.clone() })?;
        let mut webhooks = Vec::with_capacity(config.webhooks.len());
        for (i, hook) in config.webhooks.iter().enumerate() {
            let first_retry = hook.first_retry.as_deref().map(leadscore_core::time::Duration::parse);
            let reason = if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                Some(format!("`url` must start with http:// or https:// (got `{}`)", hook.url))
            } else if hook.secret.is_empty() {
                Some("`secret` is empty".to_owned())
            } else if let (Some(text), Some(Err(_))) = (hook.first_retry.as_deref(), &first_retry) {
                Some(format!("`first_retry`: `{text}` is not a duration (e.g. 5s, 1m)"))
            } else {
                hook.events
                    .iter()
                    .find(|e| e.as_str() != crate::webhooks::STAGE_CHANGED)
                    .map(|e| format!("unknown event `{e}` (known: {})", crate::webhooks::STAGE_CHANGED))
            };
            if let Some(reason) = reason {
                return Err(SettingsError::Webhook { index: i + 1, reason });
            }
            webhooks.push(Hook {
                url: hook.url.clone(),
                secret: hook.secret.clone(),
                events: hook.events.clone(),
                first_retry: match first_retry {
                    Some(Ok(d)) => d.as_millis(),
                    _ => DEFAULT_FIRST_RETRY_MS,
                },
            });
        }
        let public_url = flags
            .public_url
            .or_else(|| env("LEADSCORE_PUBLIC_URL").filter(|v| !v.trim().is_empty()))
            .or(config.server.public_url.clone())
            .map(|text| {
                PublicUrl::parse(&text).map_err(|reason| SettingsError::Invalid { field: "public_url", reason })
            })
            .transpose()?;
        let trusted_proxies = config.server.trusted_proxies.iter().map(|p| proxy(p)).collect::<Result<_, _>>()?;
        let defaults = Limits::default();
        let section = &config.server;
        let limits = Limits {
            header_timeout: duration("header_timeout", section.header_timeout.as_deref(), defaults.header_timeout)?,
            body_timeout: duration("body_timeout", section.body_timeout.as_deref(), defaults.body_timeout)?,
            idle_timeout: duration("idle_timeout", section.idle_timeout.as_deref(), defaults.idle_timeout)?,
            max_connections: match section.max_connections {
                Some(0) => {
                    return Err(SettingsError::Invalid {
                        field: "max_connections",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                Some(n) => n,
                None => defaults.max_connections,
            },
        };
        let max_future = match config.ingest.max_future.as_deref() {
            None => DEFAULT_MAX_FUTURE,
            Some(text) => leadscore_core::time::Duration::parse(text)
                .map_err(|e| SettingsError::Invalid { field: "max_future", reason: e.to_string() })?
                .as_millis(),
        };
        Ok(Settings {
            listen,
            db: flags.db.or(config.server.db.clone()).unwrap_or_else(|| DEFAULT_DB.to_owned()),
            model: flags.model.or(config.server.model.clone()),
            write_keys,
            api_keys,
            read_keys,
            webhooks,
            syncs,
            alerts,
            outcome_secret,
            outcome_email_trait,
            owner_trait: config.dashboard.owner_trait.clone().unwrap_or_else(|| "owner".to_owned()),
            public_url,
            trusted_proxies,
            limits,
            max_future,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn refuses_to_start_without_keys() {
        assert_eq!(Settings::resolve(Flags::default(), no_env).unwrap_err(), SettingsError::NoWriteKey);
        let flags = Flags { write_keys: vec!["w".into()], ..Flags::default() };
        assert_eq!(Settings::resolve(flags, no_env).unwrap_err(), SettingsError::NoApiKey);
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leadscore.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:9000\"\ndb = \"sqlite://file.db\"\n[auth]\nwrite_keys = [\"wf\"]\napi_keys = [\"af\"]\n",
        )
        .unwrap();
        let env = |var: &str| (var == "LEADSCORE_API_KEYS").then(|| "a1, a2".to_owned());
        let flags = Flags { config: Some(path), db: Some("sqlite://flag.db".into()), ..Flags::default() };
        let s = Settings::resolve(flags, env).unwrap();
        assert_eq!(s.write_keys, ["wf"]);
        assert_eq!(s.api_keys, ["a1", "a2"]);
        assert_eq!(s.db, "sqlite://flag.db");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn defaults_bind_loopback_and_an_embedded_database() {
        let flags = Flags { write_keys: vec!["w".into()], api_keys: vec!["a".into()], ..Flags::default() };
        let s = Settings::resolve(flags, no_env).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.db, DEFAULT_DB);
    }

    #[test]
    fn read_keys_limits_and_public_url_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leadscore.toml");
        std::fs::write(
            &path,
            "[server]\npublic_url = \"https://Leads.Example.com/\"\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n\
             header_timeout = \"5s\"\nmax_connections = 300\n[ingest]\nmax_future = \"2h\"\n\
             [auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\nread_keys = [\"r\"]\n",
        )
        .unwrap();
        let s = Settings::resolve(Flags { config: Some(path), ..Flags::default() }, no_env).unwrap();
        assert_eq!(s.read_keys, ["r"]);
        assert_eq!(s.keys().role_of("r"), Some(Role::Read));
        assert_eq!(s.keys().role_of("a"), Some(Role::Admin), "api_keys stay full-power");
        assert_eq!(s.public_url.as_ref().map(PublicUrl::origin).as_deref(), Some("https://leads.example.com"));
        assert!(s.trusts("10.1.2.3".parse().unwrap()) && s.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!s.trusts("192.168.0.1".parse().unwrap()));
        assert_eq!(s.limits.header_timeout, Duration::from_secs(5));
        assert_eq!(s.limits.idle_timeout, Limits::default().idle_timeout);
        assert_eq!(s.limits.max_connections, 300);
        assert_eq!(s.max_future, 2 * 3_600_000);
    }

    #[test]
    fn a_key_has_one_role_and_bad_values_name_their_field() {
        let flags = Flags {
            write_keys: vec!["k".into()],
            api_keys: vec!["a".into()],
            read_keys: vec!["k".into()],
            ..Flags::default()
        };
        assert_eq!(Settings::resolve(flags, no_env).unwrap_err(), SettingsError::SharedKey { key: "k".into() });
        let flags = Flags {
            write_keys: vec!["w".into()],
            api_keys: vec!["a".into()],
            public_url: Some("ftp://x".into()),
            ..Flags::default()
        };
        assert!(Settings::resolve(flags, no_env).unwrap_err().to_string().starts_with("`public_url`"));
    }

    #[test]
    fn a_sync_takes_its_token_from_the_environment_and_checks_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leadscore.toml");
        std::fs::write(
            &path,
            "[auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\n\
             [[sync]]\ncrm = \"hubspot\"\nwhen = \"stage\"\nrate_limit = \"100/10s\"\ndebounce = \"0s\"\n\
             [sync.fields]\nreasons = \"\"\nfit = \"hs_fit_points\"\n",
        )
        .unwrap();
        let flags = || Flags { config: Some(path.clone()), ..Flags::default() };
        let err = Settings::resolve(flags(), no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sync 1: the token variable `HUBSPOT_TOKEN` is not set (a HubSpot private app's access token)"
        );
        let env = |var: &str| (var == "HUBSPOT_TOKEN").then(|| "pat-1".to_owned());
        let s = Settings::resolve(flags(), env).unwrap();
        let sync = &s.syncs[0];
        assert_eq!((sync.name.as_str(), sync.token.as_str(), sync.when), ("hubspot", "pat-1", When::Stage));
        assert_eq!((sync.rate_requests, sync.rate_window_ms, sync.debounce), (100, 10_000, 0));
        assert_eq!(sync.fields.reasons, None, "an empty name: not written");
        assert_eq!(sync.fields.dimension("fit").as_deref(), Some("hs_fit_points"));
        assert_eq!(sync.fields.dimension("Engagement").as_deref(), Some("leadscore_engagement"));
        assert_eq!(sync.fields.total.as_deref(), Some("leadscore_total"));
        assert_eq!(sync.email_trait.as_deref(), Some("email"));

        std::fs::write(
            &path,
            "[auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\n[[sync]]\ncrm = \"hubspot\"\nrate_limit = \"fast\"\n",
        )
        .unwrap();
        let err = Settings::resolve(flags(), env).unwrap_err().to_string();
        assert_eq!(err, "sync 1: `rate_limit`: `fast` is not requests per window (e.g. 190/10s)");
        std::fs::write(&path, "[auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\n[[sync]]\ncrm = \"hubspot\"\n[[sync]]\ncrm = \"hubspot\"\n")
            .unwrap();
        let err = Settings::resolve(flags(), env).unwrap_err().to_string();
        assert!(err.contains("two syncs have this name"), "{err}");
        std::fs::write(&path, "[auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\n[[sync]]\ncrm = \"pipedrive\"\n")
            .unwrap();
        let err = Settings::resolve(flags(), env).unwrap_err().to_string();
        assert_eq!(err, "sync 1: `crm`: unknown CRM `pipedrive` (known: hubspot, salesforce)");
        std::fs::write(&path, "[auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\n[[sync]]\ncrm = \"salesforce\"\nurl = \"https://acme.my.salesforce.com\"\n").unwrap();
        let env = |var: &str| (var == "SALESFORCE_TOKEN").then(|| "00D!token".to_owned());
        let s = Settings::resolve(flags(), env).unwrap();
        let sf = &s.syncs[0];
        assert_eq!(
            (sf.object.as_str(), sf.id_trait.as_str(), sf.api_version.as_str()),
            ("Lead", "salesforce_id", "v60.0")
        );
        assert_eq!(sf.fields.total.as_deref(), Some("Leadscore_Total__c"));
        assert_eq!(sf.fields.updated_at.as_deref(), Some("Leadscore_Updated_At__c"));
        assert_eq!(sf.fields.dimension("engagement").as_deref(), Some("Leadscore_Engagement__c"));
        assert_eq!(sf.email_trait, None, "Salesforce matches by record id");

        let keys = "[auth]\nwrite_keys = [\"w\"]\napi_keys = [\"a\"]\n";
        std::fs::write(
            &path,
            format!("{keys}[[alerts]]\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\nstages = [\"sql\"]\n"),
        )
        .unwrap();
        let err = Settings::resolve(flags(), no_env).unwrap_err().to_string();
        assert_eq!(err, "alert 1: `url_env`: the variable `SLACK_URL` is not set");
        let env = |var: &str| (var == "SLACK_URL").then(|| "https://hooks.slack.com/services/T/B/x".to_owned());
        let s = Settings::resolve(flags(), env).unwrap();
        assert_eq!(s.alerts[0].url, "https://hooks.slack.com/services/T/B/x");
        assert_eq!(s.alerts[0].quiet, crate::alerts::DEFAULT_QUIET_MS);
        std::fs::write(&path, format!("{keys}[[alerts]]\nkind = \"email\"\nurl = \"https://x\"\n")).unwrap();
        let err = Settings::resolve(flags(), no_env).unwrap_err().to_string();
        assert_eq!(err, "alert 1: `kind`: `email` is not `slack` or `teams`");
    }

    #[test]
    fn unknown_config_keys_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[server]\nlisten_on = \"x\"\n").unwrap();
        let err = Settings::resolve(Flags { config: Some(path), ..Flags::default() }, no_env).unwrap_err();
        assert!(err.to_string().contains("bad.toml") && err.to_string().contains("listen_on"), "{err}");
    }
}
