//! leadscore-core: what a lead score is.
//!
//! The model language (TOML with CEL conditions) is parsed into a [`ModelFile`], checked into a
//! [`CheckedModel`] (names resolved, CEL compiled, durations parsed, rules indexed) and evaluated by
//! [`evaluate`] for one lead at one instant. Everything here is pure: no I/O, no clock, no async;
//! time is always an argument (`as_of`, epoch milliseconds). The batch CLI and the server call the
//! same [`evaluate`], which is why their scores agree.

pub mod cel;
pub mod compact;
pub mod diagnostics;
pub mod engine;
pub mod event;
pub mod identity;
pub mod lead;
pub mod model;
pub mod profiling;
pub mod quality;
pub mod schedule;
pub mod time;

pub use diagnostics::{Diagnostic, Severity};
pub use engine::{AccountBook, Contribution, Event, LeadHistory, Outcome, OutcomeKind, Score, evaluate};
pub use identity::IdentityGraph;
pub use model::{CheckedModel, ModelFile, check_model};
