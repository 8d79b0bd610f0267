//! Backtests over stored history (SPEC §5): score every stored lead as of its cutoff with a model
//! (an uploaded one, or the active one) and report how well the score ranked the outcomes. The
//! latest run is kept for the dashboard.

use serde::Serialize;

use leadscore_core::CheckedModel;
use leadscore_core::time::{self, Duration, Millis};
use leadscore_learn::backtest::{BacktestReport, ModelNames, build_report, record_lead};
use leadscore_store::StoreError;

use crate::app::{App, check_source};
use crate::error::{Code, ServiceError};
use crate::models::invalid_model;
use crate::scoring::visit_histories;

/// A backtest's report (SPEC §5), as the API answers it.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestRun {
    /// When it ran (not in the report).
    #[serde(skip)]
    pub ran_at: Millis,
    /// Open leads were scored as of this instant (RFC 3339).
    pub as_of: String,
    /// How long before its outcome each lead was scored.
    pub gap: String,
    pub models: Vec<BacktestReport>,
}

impl App {
    /// Backtests `source` (or the active model when it is blank) over the stored history and
    /// keeps the report as the latest.
    pub fn backtest(&self, source: &str, as_of: Millis, gap: Duration) -> Result<BacktestRun, ServiceError> {
        let active = self.model();
        let custom;
        let model = if source.trim().is_empty() {
            &active.model
        } else {
            custom = check_source(source).map_err(|d| invalid_model(source, &d))?.0;
            &custom
        };
        let run = BacktestRun {
            ran_at: self.clock.now(),
            as_of: time::format_timestamp(as_of),
            gap: gap.to_string(),
            models: vec![self.backtest_report(model, as_of, gap)?],
        };
        if let Ok(mut latest) = self.latest_backtest.lock() {
            *latest = Some(run.clone());
        }
        Ok(run)
    }

    /// One model's backtest report over the stored history.
    pub(crate) fn backtest_report(
        &self,
        model: &CheckedModel,
        as_of: Millis,
        gap: Duration,
    ) -> Result<BacktestReport, ServiceError> {
        let projection = model.event_projection();
        let records = self.store.read(|tx| {
            let mut records = Vec::new();
            visit_histories(tx, model, &projection, |loaded| {
                records.extend(
                    loaded.leads.iter().map(|(_, history)| record_lead(model, history, &loaded.accounts, as_of, gap)),
                );
            })?;
            Ok::<_, StoreError>(records)
        })?;
        if records.is_empty() {
            return Err(ServiceError::user(Code::NoLeads, "there are no stored leads to backtest"));
        }
        let names = ModelNames::of(model);
        Ok(build_report(&names, &records, 42))
    }

    /// The latest backtest this process ran.
    pub fn latest_backtest(&self) -> Option<BacktestRun> {
        self.latest_backtest.lock().ok().and_then(|b| b.clone())
    }
}
