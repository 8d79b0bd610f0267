//! Accounts (SPEC §2.2): an account's traits and its leads' scores rolled up with the model's
//! `aggregate`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use leadscore_core::engine::{evaluate_account, round2};
use leadscore_core::time::Millis;
use leadscore_core::{CheckedModel, Score};
use leadscore_store::{LeadRow, StoreError, Tx};

use crate::app::App;
use crate::error::{Code, ServiceError};
use crate::leads::summary;
use crate::scoring::{account_book, note_unreadable};

/// An account's rolled-up scores (SPEC §2.2) and its leads.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    /// How the leads' scores roll up: max, sum or mean.
    pub aggregate: String,
    /// Points per dimension.
    pub scores: BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
    pub leads: Vec<AccountLead>,
}

/// One of an account's leads.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLead {
    pub id: String,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
}

/// A stored lead row as a `Score` (for account roll-ups).
fn score_of_row(model: &CheckedModel, row: &LeadRow, now: Millis) -> Score {
    let stored = row.score.as_ref();
    Score {
        lead_id: row.id.clone(),
        as_of: now,
        dimensions: model
            .dimensions
            .iter()
            .map(|d| stored.and_then(|s| s.scores.get(&d.name).copied()).unwrap_or(0.0))
            .collect(),
        total: stored.map_or(0.0, |s| s.total),
        stage: stored.map_or_else(String::new, |s| s.stage.clone()),
        grade: None,
        probability: None,
        account: None,
        traits: Map::new(),
        contributions: Vec::new(),
    }
}

impl App {
    /// An account as of now: its traits, its leads' stored scores rolled up, and its leads.
    pub fn account_view(&self, id: &str) -> Result<AccountView, ServiceError> {
        let now = self.clock.now();
        let mut views = self.store.read(|tx| self.account_views(tx, &[id.to_owned()], now))?;
        views
            .pop()
            .flatten()
            .ok_or_else(|| ServiceError::user(Code::AccountNotFound, format!("no account with id `{id}`")))
    }

    /// These accounts as of `now` (`None`: no such account), in the caller's transaction.
    pub(crate) fn account_views(
        &self,
        tx: &mut Tx<'_>,
        ids: &[String],
        now: Millis,
    ) -> Result<Vec<Option<AccountView>>, StoreError> {
        let active = self.model();
        let (book, unreadable) = account_book(tx, &active.model, &active.projection, ids)?;
        note_unreadable(&unreadable);
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            let rows = tx.leads_of_account(id)?;
            if rows.is_empty() && book.version_at(id, Millis::MAX) == 0 {
                views.push(None);
                continue;
            }
            let scores: Vec<Score> = rows.iter().map(|row| score_of_row(&active.model, row, now)).collect();
            let refs: Vec<&Score> = scores.iter().collect();
            let rolled = evaluate_account(&active.model, id, &refs, now);
            let mut traits = book.traits_at(id, now);
            traits.remove("id");
            views.push(Some(AccountView {
                id: id.clone(),
                traits,
                aggregate: format!("{:?}", active.model.aggregate).to_lowercase(),
                scores: active
                    .model
                    .dimensions
                    .iter()
                    .zip(&rolled.dimensions)
                    .map(|(d, v)| (d.name.clone(), round2(*v)))
                    .collect(),
                total: round2(rolled.total),
                stage: rolled.stage,
                leads: rows
                    .iter()
                    .map(|r| {
                        let s = summary(r);
                        AccountLead { id: s.id, total: s.total, stage: s.stage, grade: s.grade }
                    })
                    .collect(),
            }));
        }
        Ok(views)
    }
}
