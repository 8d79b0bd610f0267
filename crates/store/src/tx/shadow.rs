//! Shadow models: model versions scored live beside the active one. Each lead's shadow score and
//! fold state are kept per version (`shadow_scores`); nothing else (history, webhooks, CRM
//! syncs) ever reads them.

use std::collections::{BTreeMap, HashMap};

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::Sql;

/// A lead's score under a shadow model.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowScore {
    pub model_version: i64,
    pub lead_id: String,
    pub scored_at: Millis,
    pub scores: BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    pub probability: Option<f64>,
    pub contributions: Vec<StoredContribution>,
    pub next_change_at: Option<Millis>,
}

/// One lead's new shadow score for [`Tx::save_shadow_scores`].
#[derive(Debug, Clone, Copy)]
pub struct ShadowWrite<'a> {
    pub lead_id: &'a str,
    pub score: &'a StoredScore,
    pub json: &'a ScoreJson,
    pub state: Option<&'a [u8]>,
}

/// A lead's stage and total under the active model and under a shadow model (`None`: not
/// scored by the shadow yet), and whether it converted (an outcome `converted` or `won`).
#[derive(Debug, Clone, PartialEq)]
pub struct StagePair {
    pub lead_id: String,
    pub active: Option<(String, f64)>,
    pub shadow: Option<(String, f64)>,
    pub converted: bool,
}

const SHADOW_COLUMNS: &str =
    "model_version, lead_id, scored_at, scores, total, stage, grade, probability, contributions, next_change_at";

fn shadow_row(r: &Row) -> Result<ShadowScore, StoreError> {
    Ok(ShadowScore {
        model_version: int(r, 0)?,
        lead_id: text(r, 1)?,
        scored_at: int(r, 2)?,
        scores: scores_column(r, 3)?,
        total: real(r, 4)?,
        stage: text(r, 5)?,
        grade: opt_text(r, 6),
        probability: opt_real(r, 7),
        contributions: contributions_column(r, 8)?,
        next_change_at: opt_int(r, 9),
    })
}

impl Tx<'_> {
    /// Marks `version` as a shadow model (or not). Stopping a shadow removes its scores. Returns
    /// false if there is no such version.
    pub fn set_shadow(&mut self, version: i64, shadow: bool) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE models SET shadow = $2 WHERE version = $1",
            &[Sql::Int(version), Sql::Int(i64::from(shadow))],
        )?;
        if !shadow {
            self.conn.execute("DELETE FROM shadow_scores WHERE model_version = $1", &[Sql::Int(version)])?;
        }
        Ok(n > 0)
    }

    /// The versions marked shadow (never the active one).
    pub fn shadow_models(&mut self) -> Result<Vec<ModelRow>, StoreError> {
        let rows = self.conn.query(
            &format!("SELECT {MODEL_COLUMNS} FROM models WHERE shadow = 1 AND active = 0 ORDER BY version"),
            &[],
        )?;
        rows.iter().map(model_row).collect()
    }

    /// The stored fold states of these leads under shadow model `version`.
    pub fn shadow_states(&mut self, version: i64, ids: &[String]) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        let sql = format!(
            "SELECT lead_id, state FROM shadow_scores WHERE model_version = {version} AND lead_id IN ({{in}}) \
             AND state IS NOT NULL"
        );
        let mut states = HashMap::new();
        for mut r in self.query_in(&sql, ids)? {
            if let Some(state) = r.pop().and_then(Sql::into_bytes) {
                states.insert(text(&r, 0)?, state);
            }
        }
        Ok(states)
    }

    /// Writes leads' scores under shadow model `version`, each with its fold state.
    pub fn save_shadow_scores(&mut self, version: i64, scores: &[ShadowWrite<'_>]) -> Result<(), StoreError> {
        const COLUMNS: usize = 11;
        for chunk in scores.chunks(MAX_PARAMS / COLUMNS) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS))).collect();
            let sql = format!(
                "INSERT INTO shadow_scores ({SHADOW_COLUMNS}, state) VALUES {} \
                 ON CONFLICT (model_version, lead_id) DO UPDATE SET scored_at = excluded.scored_at, \
                 scores = excluded.scores, total = excluded.total, stage = excluded.stage, \
                 grade = excluded.grade, probability = excluded.probability, \
                 contributions = excluded.contributions, next_change_at = excluded.next_change_at, \
                 state = excluded.state",
                values.join(", ")
            );
            let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
            for ShadowWrite { lead_id, score, json, state } in chunk {
                params.extend([
                    Sql::Int(version),
                    Sql::from(*lead_id),
                    Sql::Int(score.scored_at),
                    Sql::from(json.scores.as_str()),
                    Sql::Real(score.total),
                    Sql::from(score.stage.as_str()),
                    Sql::from(score.grade.as_deref()),
                    Sql::from(score.probability),
                    Sql::from(json.contributions.as_str()),
                    Sql::from(score.next_change_at),
                    state.map_or(Sql::Null, |s| Sql::Bytes(s.to_vec())),
                ]);
            }
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// Forgets these leads' time-driven changes under shadow model `version` (their scoring
    /// failed: they wait for their next event).
    pub fn clear_shadow_changes(&mut self, version: i64, ids: &[String]) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE shadow_scores SET next_change_at = NULL WHERE model_version = {version} \
             AND lead_id IN ({{in}}) RETURNING lead_id"
        );
        self.query_in(&sql, ids).map(|_| ())
    }

    /// The shadow scores of these leads, every shadow version, by version then lead.
    pub fn shadow_scores_of(&mut self, ids: &[String]) -> Result<Vec<ShadowScore>, StoreError> {
        let sql = format!(
            "SELECT {SHADOW_COLUMNS} FROM shadow_scores s WHERE lead_id IN ({{in}}) \
             AND EXISTS (SELECT 1 FROM models m WHERE m.version = s.model_version AND m.shadow = 1 AND m.active = 0)"
        );
        let mut rows = self.query_in(&sql, ids)?.iter().map(shadow_row).collect::<Result<Vec<_>, _>>()?;
        rows.sort_by(|a, b| (a.model_version, &a.lead_id).cmp(&(b.model_version, &b.lead_id)));
        Ok(rows)
    }

    /// Shadow scores whose time-driven change is due at or before `now`: `(version, lead, at)`,
    /// earliest first.
    pub fn due_shadow_scores(&mut self, now: Millis, limit: usize) -> Result<Vec<(i64, String, Millis)>, StoreError> {
        let rows = self.conn.query(
            "SELECT model_version, lead_id, next_change_at FROM shadow_scores \
             WHERE next_change_at IS NOT NULL AND next_change_at <= $1 ORDER BY next_change_at LIMIT $2",
            &[Sql::Int(now), Sql::Int(limit as i64)],
        )?;
        rows.iter().map(|r| Ok((int(r, 0)?, text(r, 1)?, int(r, 2)?))).collect()
    }

    /// The ids after `after` (in id order) of up to `limit` leads shadow model `version` has not
    /// scored yet.
    pub fn leads_without_shadow(&mut self, version: i64, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let rows = self.conn.query(
            "SELECT id FROM leads l WHERE id > $1 AND NOT EXISTS \
             (SELECT 1 FROM shadow_scores s WHERE s.model_version = $2 AND s.lead_id = l.id) ORDER BY id LIMIT $3",
            &[after.into(), Sql::Int(version), Sql::Int(limit as i64)],
        )?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    /// How many leads shadow model `version` has scored.
    pub fn count_shadow_scores(&mut self, version: i64) -> Result<i64, StoreError> {
        self.scalar_int(
            "SELECT COUNT(*) FROM shadow_scores s WHERE model_version = $1 \
             AND EXISTS (SELECT 1 FROM leads l WHERE l.id = s.lead_id)",
            &[Sql::Int(version)],
        )
    }

    /// Every lead's stage and total under the active model and under shadow model `version`,
    /// and whether it converted.
    pub fn stage_pairs(&mut self, version: i64) -> Result<Vec<StagePair>, StoreError> {
        let rows = self.conn.query(
            "SELECT l.id, l.stage, l.total, l.scored_at, s.stage, s.total, \
             CASE WHEN EXISTS (SELECT 1 FROM outcomes o WHERE o.lead_id = l.id \
             AND o.outcome IN ('converted', 'won')) THEN 1 ELSE 0 END \
             FROM leads l LEFT JOIN shadow_scores s ON s.model_version = $1 AND s.lead_id = l.id ORDER BY l.id",
            &[Sql::Int(version)],
        )?;
        rows.iter()
            .map(|r| {
                let active = match opt_int(r, 3) {
                    Some(_) => Some((text(r, 1)?, real(r, 2)?)),
                    None => None,
                };
                let shadow = match opt_text(r, 4) {
                    Some(stage) => Some((stage, real(r, 5)?)),
                    None => None,
                };
                Ok(StagePair { lead_id: text(r, 0)?, active, shadow, converted: opt_int(r, 6) == Some(1) })
            })
            .collect()
    }
}
