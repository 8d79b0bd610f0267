//! leadscore-service: the server's use cases, without HTTP. Scores come from `leadscore_core`,
//! state from `leadscore_store`; this crate decides when to score, what to record and what a
//! reader sees. The HTTP crate (`leadscore-http`) decodes requests, calls [`App`]'s methods and
//! renders their typed views; it never opens a store transaction.
//!
//! What runs where ([`App::start`] starts the threads, [`App::shutdown`] stops them):
//!
//! | thread | file | does |
//! |---|---|---|
//! | `writer` | [`writer`] | group-commits queued ingest requests: store, link identities, rescore affected leads, history, outbox |
//! | `scheduler` | [`scheduler`] | every 250 ms, rescores leads whose time-driven change is due, at that instant |
//! | `webhooks` (one per receiver) | [`dispatcher`] | sends due deliveries from the outbox, signed; retries with backoff |
//! | `crm-sync` (one per `[[sync]]`) | [`crm::sender`] | writes changed leads' scores to the CRM in batches, within its rate limit |
//! | `model-watcher` | [`watcher`] | every 2 s, follows a model activated by another process; re-ranks stages |
//! | `rescore` | [`rescore`] | after an activation, rescores every lead in chunks |
//! | `shadow-{version}` | [`shadow`] | scores the leads stored before a model started running in shadow |
//! | `checkpointer` | [`checkpointer`] | every 250 ms, copies SQLite's write-ahead log into the database file, off the writer |
//! | the caller's | [`leads`], [`accounts`], [`models`], [`drafts`], [`backtest`], [`deliveries`], [`unreadable`], [`sessions`], [`marketing`] | read views and one-off changes, each in its own transactions |
//!
//! Errors: every use case returns [`ServiceError`] (the user's mistake with its [`Code`], the
//! store's, or ours); [`error::Code`] is the one table of codes with their HTTP status.

pub mod accounts;
pub mod alerts;
pub mod app;
pub mod auth;
pub mod backtest;
pub mod checkpointer;
pub mod clock;
pub mod crm;
pub mod deliveries;
pub mod dispatcher;
pub mod drafts;
pub mod error;
pub mod ingest;
pub mod leads;
pub mod marketing;
pub mod models;
pub mod outbox;
pub mod preview;
pub mod rescore;
pub mod scheduler;
pub mod scoring;
pub mod sessions;
pub mod settings;
pub mod shadow;
pub mod unreadable;
pub mod watcher;
pub mod webhooks;
pub mod writer;

pub use app::{App, StartError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Code, ServiceError};
pub use leads::LeadId;
pub use settings::{Flags, Settings};
