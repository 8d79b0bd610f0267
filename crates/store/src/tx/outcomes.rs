//! Outcomes (won, lost, …) and every lead's stage history.

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::{Row, Sql};
use crate::tx::leads::scores_column;

/// A lead's stored scores, for distributions.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSample {
    pub id: String,
    pub scores: std::collections::BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    pub lead_id: String,
    pub outcome: String,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub at: Millis,
    pub stage: String,
    pub total: f64,
}

pub(super) fn outcome_row(row: &Row) -> Result<OutcomeRow, StoreError> {
    Ok(OutcomeRow { lead_id: text(row, 0)?, outcome: text(row, 1)?, at: int(row, 2)? })
}

impl Tx<'_> {
    pub fn add_outcome(&mut self, outcome: &OutcomeRow, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO outcomes (lead_id, outcome, at, recorded_at) VALUES ($1, $2, $3, $4)",
            &[outcome.lead_id.as_str().into(), outcome.outcome.as_str().into(), Sql::Int(outcome.at), Sql::Int(now)],
        )?;
        Ok(())
    }
    /// Every outcome (for backtests over stored history).
    pub fn all_outcomes(&mut self) -> Result<Vec<OutcomeRow>, StoreError> {
        let rows = self.conn.query("SELECT lead_id, outcome, at FROM outcomes ORDER BY lead_id, at, seq", &[])?;
        rows.iter().map(outcome_row).collect()
    }
    /// The lead's history, oldest first.
    pub fn history_of(&mut self, lead_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = self
            .conn
            .query("SELECT at, stage, total FROM history WHERE lead_id = $1 ORDER BY at, seq", &[lead_id.into()])?;
        rows.iter().map(|r| Ok(HistoryRow { at: int(r, 0)?, stage: text(r, 1)?, total: real(r, 2)? })).collect()
    }

    /// The histories of several leads, oldest first (for sparklines).
    pub fn histories_of(&mut self, ids: &[String]) -> Result<Vec<(String, HistoryRow)>, StoreError> {
        let sql = "SELECT lead_id, at, stage, total FROM history WHERE lead_id IN ({in}) ORDER BY lead_id, at, seq";
        self.query_in(sql, ids)?
            .iter()
            .map(|r| Ok((text(r, 0)?, HistoryRow { at: int(r, 1)?, stage: text(r, 2)?, total: real(r, 3)? })))
            .collect()
    }

    /// Up to `limit` stored scores (for distributions).
    pub fn score_sample(&mut self, limit: usize) -> Result<Vec<ScoreSample>, StoreError> {
        let rows = self.conn.query(
            "SELECT id, scores, total, stage FROM leads WHERE scored_at IS NOT NULL LIMIT $1",
            &[Sql::Int(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ScoreSample {
                    id: text(r, 0)?,
                    scores: scores_column(r, 1)?,
                    total: real(r, 2)?,
                    stage: text(r, 3)?,
                })
            })
            .collect()
    }

    /// Every `(lead id, stage)` a lead's history has reached.
    pub fn stages_reached(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.conn.query("SELECT DISTINCT lead_id, stage FROM history", &[])?;
        rows.iter().map(|r| Ok((text(r, 0)?, text(r, 1)?))).collect()
    }
}
