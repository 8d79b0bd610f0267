//! Server configuration (SPEC §6): a TOML file (`[server]`, `[auth]`, `[[webhooks]]`), then the
//! environment (`LEADSCORE_WRITE_KEYS`, `LEADSCORE_API_KEYS`), then flags; later sources win.
//! [`Config`] is what a file says; [`Settings`] is the checked result the server runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The config file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<String>,
    pub db: Option<String>,
    pub model: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub write_keys: Vec<String>,
    #[serde(default)]
    pub api_keys: Vec<String>,
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

/// Command-line values (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub db: Option<String>,
    pub listen: Option<String>,
    pub write_keys: Vec<String>,
    pub api_keys: Vec<String>,
}

/// What the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub db: String,
    pub model: Option<PathBuf>,
    pub write_keys: Vec<String>,
    pub api_keys: Vec<String>,
    pub webhooks: Vec<WebhookConfig>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DB: &str = "sqlite://leadscore.db";

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
    #[error("`{key}` is both a write key and an API key; use different keys")]
    SharedKey { key: String },
    #[error("webhook {index}: {reason}")]
    Webhook { index: usize, reason: String },
}

impl Config {
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

impl Settings {
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
        let write_keys = pick(flags.write_keys, "LEADSCORE_WRITE_KEYS", config.auth.write_keys);
        let api_keys = pick(flags.api_keys, "LEADSCORE_API_KEYS", config.auth.api_keys);
        if write_keys.is_empty() {
            return Err(SettingsError::NoWriteKey);
        }
        if api_keys.is_empty() {
            return Err(SettingsError::NoApiKey);
        }
        if let Some(key) = write_keys.iter().find(|k| api_keys.contains(k)) {
            return Err(SettingsError::SharedKey { key: key.clone() });
        }
        let listen_text = flags.listen.or(config.server.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| SettingsError::Listen { value: listen_text.clone() })?;
        for (i, hook) in config.webhooks.iter().enumerate() {
            let reason = if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                Some(format!("`url` must start with http:// or https:// (got `{}`)", hook.url))
            } else if hook.secret.is_empty() {
                Some("`secret` is empty".to_owned())
            } else if let Some(text) = hook.first_retry.as_deref()
                && leadscore_core::time::Duration::parse(text).is_err()
            {
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
        }
        Ok(Settings {
            listen,
            db: flags.db.or(config.server.db).unwrap_or_else(|| DEFAULT_DB.to_owned()),
            model: flags.model.or(config.server.model),
            write_keys,
            api_keys,
            webhooks: config.webhooks,
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
    fn unknown_config_keys_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[server]\nlisten_on = \"x\"\n").unwrap();
        let err = Settings::resolve(Flags { config: Some(path), ..Flags::default() }, no_env).unwrap_err();
        assert!(err.to_string().contains("bad.toml") && err.to_string().contains("listen_on"), "{err}");
    }
}
