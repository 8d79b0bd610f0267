//! The running server's state ([`App`]): the store, the clock, the settings, the active model, and
//! the background threads it starts and stops. The use cases are `App`'s methods, one file per
//! kind of work (see the crate documentation for the map).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use leadscore_core::diagnostics::Diagnostic;
use leadscore_core::{CheckedModel, check_model};
use leadscore_store::{Store, StoreError};

use crate::auth::Keys;
use crate::backtest::BacktestRun;
use crate::clock::Clock;
use crate::crm::Syncs;
use crate::outbox::Outboxes;
use crate::rescore::RescoreProgress;
use crate::scoring::ActiveModel;
use crate::settings::Settings;
use crate::webhooks::Webhooks;
use crate::writer::Job;

/// Most events waiting for the writer before ingest answers 429.
pub const MAX_PENDING_EVENTS: usize = 50_000;

pub struct App {
    pub(crate) store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Every configured key with its role (compared in constant time).
    pub keys: Keys,
    /// What a score change is queued for: webhooks and CRM syncs.
    pub outboxes: Outboxes,
    model: RwLock<Arc<ActiveModel>>,
    /// Versions scored live beside the active one ([`crate::shadow`]).
    pub(crate) shadows: RwLock<Arc<Vec<Arc<ActiveModel>>>>,
    pub(crate) pending: AtomicUsize,
    /// Most events waiting for the writer before ingest answers 429 ([`MAX_PENDING_EVENTS`]).
    pub(crate) queue_limit: AtomicUsize,
    pub(crate) writer: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Job>>>,
    pub(crate) rescore: Mutex<RescoreProgress>,
    pub(crate) stopping: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub started: Instant,
    /// The latest backtest (from the API or the dashboard).
    pub(crate) latest_backtest: Mutex<Option<BacktestRun>>,
    /// The model version whose stage order the stored call-now ranks follow (-1: not known yet).
    pub(crate) ranked_version: AtomicI64,
    /// The model version whose re-ranking failure was last logged as a warning.
    pub(crate) rank_warned: AtomicI64,
    /// Messages stored since the start that the model's `[events] ignore` drops.
    pub(crate) ignored_events: std::sync::atomic::AtomicU64,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{path}: {reason}")]
    ModelFile { path: String, reason: String },
    /// The model has errors, rendered as `leadscore check` prints them.
    #[error("{0}")]
    InvalidModel(String),
    #[error("no model: pass --model FILE (or [server] model in the config file)")]
    NoModel,
}

/// Parses and checks a model's TOML: `Ok` with warnings, or every diagnostic.
pub fn check_source(source: &str) -> Result<(CheckedModel, Vec<Diagnostic>), Vec<Diagnostic>> {
    let report = check_model(source);
    match report.model {
        Some(model) => Ok((model, report.diagnostics)),
        None => Err(report.diagnostics),
    }
}

/// Diagnostics as `leadscore check` prints them (plain text).
pub fn render(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let rendered: Vec<String> = diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render(name, source)).collect();
    rendered.join("\n")
}

impl App {
    /// Opens the store, settles the active model (the `--model` file becomes a new version if it
    /// differs from the active one) and starts the writer, scheduler, webhook dispatchers and
    /// model watcher.
    pub fn start(settings: Settings, clock: Arc<dyn Clock>) -> Result<Arc<App>, StartError> {
        let store = Arc::new(Store::open(&settings.db)?);
        let now = clock.now();
        let from_file = match &settings.model {
            Some(path) => {
                let source = std::fs::read_to_string(path)
                    .map_err(|e| StartError::ModelFile { path: path.display().to_string(), reason: e.to_string() })?;
                Some((path.display().to_string(), source))
            }
            None => None,
        };
        let active_row = store.read(|tx| tx.active_model())?;
        let invalid = |name: &str, source: &str, d: &[Diagnostic]| StartError::InvalidModel(render(name, source, d));
        let (version, source, name) = match (from_file, active_row) {
            (Some((name, source)), Some(row)) if row.source == source => (row.version, source, name),
            (Some((name, source)), _) => {
                let (checked, _) = check_source(&source).map_err(|d| invalid(&name, &source, &d))?;
                let version = store.write(|tx| {
                    let v = tx.insert_model(&checked.name, &source, now)?;
                    tx.activate_model(v, now)?;
                    Ok::<_, StoreError>(v)
                })?;
                (version, source, name)
            }
            (None, Some(row)) => (row.version, row.source, format!("model version {}", row.version)),
            (None, None) => return Err(StartError::NoModel),
        };
        let (model, _) = check_source(&source).map_err(|d| invalid(&name, &source, &d))?;
        let public_url = settings.public_url.as_ref().map(crate::settings::PublicUrl::origin);
        let outboxes = Outboxes::new(
            Webhooks::new(settings.webhooks.clone(), settings.alerts.clone(), public_url),
            Syncs::new(settings.syncs.clone()),
        );
        let app = Arc::new(App {
            store,
            clock,
            keys: settings.keys(),
            settings,
            outboxes,
            model: RwLock::new(Arc::new(ActiveModel::new(version, source, model))),
            shadows: RwLock::new(Arc::new(Vec::new())),
            pending: AtomicUsize::new(0),
            queue_limit: AtomicUsize::new(MAX_PENDING_EVENTS),
            writer: Mutex::new(None),
            rescore: Mutex::new(RescoreProgress { version, finished: true, ..RescoreProgress::default() }),
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            started: Instant::now(),
            latest_backtest: Mutex::new(None),
            ranked_version: AtomicI64::new(-1),
            rank_warned: AtomicI64::new(-1),
            ignored_events: std::sync::atomic::AtomicU64::new(0),
        });
        // Call-now ranks follow the active model's stage order (leads stored before it, or by an
        // older version of the schema, get theirs now, or as soon as the database can be written).
        app.rank_stages_if_needed();
        app.load_shadows()?;
        app.spawn_writer();
        app.spawn_scheduler();
        app.spawn_dispatchers();
        app.spawn_syncs();
        app.spawn_watcher();
        app.spawn_checkpointer();
        // Leads not yet scored with the active model (a new --model, or an interrupted rescore).
        let stale = app.store.read(|tx| tx.count_leads_not_scored_with(version))?;
        if stale > 0 {
            app.spawn_rescore(version);
        }
        app.spawn_backfills();
        Ok(app)
    }

    /// The model scores come from now.
    pub fn model(&self) -> Arc<ActiveModel> {
        match self.model.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn set_model(&self, active: ActiveModel) {
        let active = Arc::new(active);
        match self.model.write() {
            Ok(mut guard) => *guard = active,
            Err(poisoned) => *poisoned.into_inner() = active,
        }
    }

    /// Changes how many events may wait for the writer before ingest answers 429.
    pub fn set_queue_limit(&self, events: usize) {
        self.queue_limit.store(events.max(1), Ordering::Relaxed);
    }

    /// Messages stored since the server started that the model's `[events] ignore` drops.
    pub fn ignored_events(&self) -> u64 {
        self.ignored_events.load(Ordering::Relaxed)
    }

    /// Events accepted and not yet committed.
    pub fn pending_events(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// The store, for tests that set up or inspect rows directly.
    #[cfg(feature = "test-support")]
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Starts a named thread that runs `work` every `every` until the server stops.
    pub(crate) fn spawn_loop(self: &Arc<Self>, name: &str, every: Duration, work: impl Fn(&App) + Send + 'static) {
        let app = Arc::downgrade(self);
        self.spawn_thread(name, move || {
            loop {
                let Some(app) = app.upgrade() else { return };
                if app.stopping.load(Ordering::SeqCst) {
                    return;
                }
                work(&app);
                drop(app);
                std::thread::sleep(every);
            }
        });
    }

    /// Starts a named thread that [`App::shutdown`] waits for.
    pub(crate) fn spawn_thread(&self, name: &str, work: impl FnOnce() + Send + 'static) {
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(work);
        match (handle, self.threads.lock()) {
            (Ok(handle), Ok(mut threads)) => threads.push(handle),
            (Err(e), _) => tracing::error!("cannot start the {name} thread: {e}"),
            (Ok(_), Err(_)) => {}
        }
    }

    /// Readiness: the database can be written now.
    pub fn check_ready(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store.write(|tx| tx.touch_readiness(now))
    }

    /// Stops accepting ingest, lets the writer finish what was accepted, and stops the threads.
    pub fn shutdown(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        self.stopping.store(true, Ordering::SeqCst);
        let threads: Vec<JoinHandle<()>> = match self.threads.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for t in threads {
            let _ = t.join();
        }
    }
}
