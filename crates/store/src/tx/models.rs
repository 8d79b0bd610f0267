//! Model versions: uploads, the active one, activation.

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::{Row, Sql};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    pub version: i64,
    pub name: String,
    pub source: String,
    pub created_at: Millis,
    pub activated_at: Option<Millis>,
    pub active: bool,
    /// Scored live beside the active model ([`Tx::set_shadow`]).
    pub shadow: bool,
}

pub(super) const MODEL_COLUMNS: &str = "version, name, source, created_at, activated_at, active, shadow";

pub(super) fn model_row(r: &Row) -> Result<ModelRow, StoreError> {
    Ok(ModelRow {
        version: int(r, 0)?,
        name: text(r, 1)?,
        source: text(r, 2)?,
        created_at: int(r, 3)?,
        activated_at: opt_int(r, 4),
        active: opt_int(r, 5) == Some(1),
        shadow: opt_int(r, 6) == Some(1),
    })
}

impl Tx<'_> {
    /// Stores a new model version; returns its number.
    pub fn insert_model(&mut self, name: &str, source: &str, now: Millis) -> Result<i64, StoreError> {
        let next = self.scalar_int("SELECT COALESCE(MAX(version), 0) + 1 FROM models", &[])?;
        self.conn.execute(
            "INSERT INTO models (version, name, source, created_at, active) VALUES ($1, $2, $3, $4, 0)",
            &[Sql::Int(next), name.into(), source.into(), Sql::Int(now)],
        )?;
        Ok(next)
    }

    pub fn models(&mut self) -> Result<Vec<ModelRow>, StoreError> {
        let rows = self.conn.query(&format!("SELECT {MODEL_COLUMNS} FROM models ORDER BY version"), &[])?;
        rows.iter().map(model_row).collect()
    }

    pub fn model(&mut self, version: i64) -> Result<Option<ModelRow>, StoreError> {
        let rows =
            self.conn.query(&format!("SELECT {MODEL_COLUMNS} FROM models WHERE version = $1"), &[Sql::Int(version)])?;
        rows.first().map(model_row).transpose()
    }

    pub fn active_model(&mut self) -> Result<Option<ModelRow>, StoreError> {
        let rows = self.conn.query(&format!("SELECT {MODEL_COLUMNS} FROM models WHERE active = 1"), &[])?;
        rows.first().map(model_row).transpose()
    }

    /// Makes `version` the one active model (promoting a shadow model ends its shadow scores).
    /// Returns false if there is no such version.
    pub fn activate_model(&mut self, version: i64, now: Millis) -> Result<bool, StoreError> {
        if self.model(version)?.is_none() {
            return Ok(false);
        }
        self.conn.execute("UPDATE models SET active = 0 WHERE active = 1 AND version <> $1", &[Sql::Int(version)])?;
        self.conn.execute(
            "UPDATE models SET active = 1, shadow = 0, activated_at = $2 WHERE version = $1",
            &[Sql::Int(version), Sql::Int(now)],
        )?;
        self.conn.execute("DELETE FROM shadow_scores WHERE model_version = $1", &[Sql::Int(version)])?;
        Ok(true)
    }
}
