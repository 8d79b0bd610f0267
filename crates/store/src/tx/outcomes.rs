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
    /// A note beside the stage changes (`contacted`); `None` for a stage or grade change.
    pub note: Option<String>,
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
        let rows = self.conn.query(
            "SELECT at, stage, total, note FROM history WHERE lead_id = $1 ORDER BY at, seq",
            &[lead_id.into()],
        )?;
        rows.iter()
            .map(|r| Ok(HistoryRow { at: int(r, 0)?, stage: text(r, 1)?, total: real(r, 2)?, note: opt_text(r, 3) }))
            .collect()
    }

    /// The stage changes of several leads (no notes), oldest first (for sparklines).
    pub fn histories_of(&mut self, ids: &[String]) -> Result<Vec<(String, HistoryRow)>, StoreError> {
        let sql = "SELECT lead_id, at, stage, total FROM history WHERE lead_id IN ({in}) AND note IS NULL \
                   ORDER BY lead_id, at, seq";
        self.query_in(sql, ids)?
            .iter()
            .map(|r| {
                Ok((text(r, 0)?, HistoryRow { at: int(r, 1)?, stage: text(r, 2)?, total: real(r, 3)?, note: None }))
            })
            .collect()
    }

    /// The leads now in `stage` that last entered it at or after `since`, with that instant,
    /// latest first.
    pub fn entered_stage_since(&mut self, stage: &str, since: Millis) -> Result<Vec<(String, Millis)>, StoreError> {
        let rows = self.conn.query(
            "SELECT h.lead_id, h.at, h.stage FROM history h JOIN leads l ON l.id = h.lead_id \
             WHERE l.stage = $1 AND h.note IS NULL AND h.lead_id IN \
             (SELECT lead_id FROM history WHERE stage = $1 AND at >= $2 AND note IS NULL) \
             ORDER BY h.lead_id, h.at, h.seq",
            &[stage.into(), Sql::Int(since)],
        )?;
        let mut entered: Vec<(String, Millis)> = Vec::new();
        let mut previous: Option<(String, String)> = None;
        let mut current: Option<(String, Millis)> = None;
        for r in &rows {
            let (lead, at, row_stage) = (text(r, 0)?, int(r, 1)?, text(r, 2)?);
            if previous.as_ref().is_none_or(|(l, _)| *l != lead) {
                entered.extend(current.take());
            }
            let was = previous.as_ref().filter(|(l, _)| *l == lead).map(|(_, s)| s.as_str());
            if row_stage == stage && was != Some(stage) {
                current = Some((lead.clone(), at));
            }
            previous = Some((lead, row_stage));
        }
        entered.extend(current);
        entered.retain(|(_, at)| *at >= since);
        entered.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(entered)
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
