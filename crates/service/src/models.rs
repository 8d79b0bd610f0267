//! Model versions: upload (checked like `leadscore check`), list, read one. Activation is in
//! [`crate::rescore`].

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use leadscore_core::Diagnostic;
use leadscore_core::time;

use crate::app::{App, check_source};
use crate::error::{Code, ServiceError};
use crate::rescore::RescoreProgress;

/// A model version in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelSummary {
    pub version: i64,
    pub name: String,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub active: bool,
    /// Scored live beside the active model (`POST /api/models/{version}/shadow`).
    pub shadow: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelSummary>,
    /// The full rescore after the latest activation.
    pub rescore: RescoreProgress,
}

/// A model version with its TOML source.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDetail {
    pub version: i64,
    pub name: String,
    pub source: String,
    pub active: bool,
    pub shadow: bool,
    pub created_at: String,
    pub activated_at: Option<String>,
}

/// A stored (not yet active) model version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCreated {
    pub version: i64,
    pub name: String,
    pub active: bool,
    /// The checker's warnings (as `leadscore check --json`).
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<Value>,
}

/// An activated model version and the progress of its full rescore.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activated {
    pub version: i64,
    pub active: bool,
    pub rescore: RescoreProgress,
}

/// No model version `version`.
pub fn model_not_found(version: i64) -> ServiceError {
    ServiceError::user(Code::ModelNotFound, format!("no model version {version}"))
}

/// A model with errors: the first in the message, every diagnostic in `diagnostics`.
pub fn invalid_model(source: &str, diagnostics: &[Diagnostic]) -> ServiceError {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let list: Vec<Value> = diagnostics.iter().map(|d| d.to_json("model.toml", source)).collect();
    let first = diagnostics.iter().find(|d| d.is_error()).map(|d| d.headline("model.toml", source)).unwrap_or_default();
    ServiceError::user(
        Code::InvalidModel,
        format!("the model has {errors} error{}: {first}", if errors == 1 { "" } else { "s" }),
    )
    .with_details("diagnostics", Value::Array(list))
}

impl App {
    /// Checks and stores a new model version (not active yet).
    pub fn add_model(&self, source: &str) -> Result<ModelCreated, ServiceError> {
        let (checked, warnings) = check_source(source).map_err(|d| invalid_model(source, &d))?;
        let now = self.clock.now();
        let version = self.store.write(|tx| tx.insert_model(&checked.name, source, now))?;
        Ok(ModelCreated {
            version,
            name: checked.name,
            active: false,
            warnings: warnings.iter().map(|d| d.to_json("model.toml", source)).collect(),
        })
    }

    /// Every model version, oldest first, and the progress of the latest rescore.
    pub fn list_models(&self) -> Result<ModelList, ServiceError> {
        let rows = self.store.read(|tx| tx.models())?;
        Ok(ModelList {
            models: rows
                .into_iter()
                .map(|r| ModelSummary {
                    version: r.version,
                    name: r.name,
                    created_at: time::format_timestamp(r.created_at),
                    activated_at: r.activated_at.map(time::format_timestamp),
                    active: r.active,
                    shadow: r.shadow && !r.active,
                })
                .collect(),
            rescore: self.rescore_progress(),
        })
    }

    /// One model version with its source.
    pub fn model_detail(&self, version: i64) -> Result<ModelDetail, ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        Ok(ModelDetail {
            version: row.version,
            name: row.name,
            source: row.source,
            active: row.active,
            shadow: row.shadow && !row.active,
            created_at: time::format_timestamp(row.created_at),
            activated_at: row.activated_at.map(time::format_timestamp),
        })
    }
}
