//! leadscore-learn: closed-loop analysis on top of `leadscore-core`.
//!
//! Pure computation: it never reads files or the clock. `metrics` measures how well scores rank
//! outcomes, `backtest` builds the report of SPEC §5 from scores taken before each outcome, `synth`
//! generates realistic synthetic leads and events with a known ground truth, and `train` learns a
//! scorecard written as an ordinary model file. Scores always come from `leadscore_core::evaluate`;
//! nothing here re-implements scoring.

pub mod backtest;
pub mod metrics;
pub mod survival;
pub mod synth;
pub mod train;
