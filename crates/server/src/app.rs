//! The running server's state and its background work: the group-commit writer that turns ingest
//! requests into transactions, the scheduler that applies time-driven changes, model activation
//! with a full rescore, and the watcher that picks up a model activated by another process.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use leadscore_core::diagnostics::Diagnostic;
use leadscore_core::time::Millis;
use leadscore_core::{CheckedModel, check_model};
use leadscore_store::{Store, StoreError, Tx};

use crate::auth::Keys;
use crate::clock::Clock;
use crate::error::{ApiError, Code};
use crate::ingest::Incoming;
use crate::scoring::{ActiveModel, Recorded, record_events, rescore_leads};
use crate::settings::Settings;
use crate::webhooks::Webhooks;

/// Most events waiting for the writer before ingest answers 429.
pub const MAX_PENDING_EVENTS: usize = 50_000;
/// Most events one transaction commits.
const MAX_GROUP_EVENTS: usize = 5_000;
/// Leads per transaction when rescoring everything (bigger chunks amortise the commit; 2,000
/// keeps the parsed histories of a chunk well under 500 MB even with long histories).
const RESCORE_CHUNK: usize = 2000;

/// One ingest request waiting for its commit.
struct Job {
    messages: Vec<Incoming>,
    reply: oneshot::Sender<Result<Recorded, ApiError>>,
}

/// Progress of the full rescore after a model activation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RescoreProgress {
    pub version: i64,
    pub done: u64,
    pub total: u64,
    pub finished: bool,
    /// Why the rescore stopped early (the leads not reached are rescored at the next start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct App {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Every configured key with its role (compared in constant time).
    pub keys: Keys,
    pub hooks: Webhooks,
    model: RwLock<Arc<ActiveModel>>,
    pending: AtomicUsize,
    /// Most events waiting for the writer before ingest answers 429 ([`MAX_PENDING_EVENTS`]).
    queue_limit: AtomicUsize,
    writer: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    pub rescore: Mutex<RescoreProgress>,
    stopping: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub started: Instant,
    /// The latest backtest report (from the API or the dashboard) and when it ran.
    pub latest_backtest: Mutex<Option<(Millis, serde_json::Value)>>,
    /// The model version whose stage order the stored call-now ranks follow (-1: not known yet).
    ranked_version: AtomicI64,
}

/// Why a model cannot be used.
#[derive(Debug)]
pub enum ModelProblem {
    Invalid(Vec<Diagnostic>),
    Store(StoreError),
}

impl From<StoreError> for ModelProblem {
    fn from(e: StoreError) -> Self {
        ModelProblem::Store(e)
    }
}

/// Parses and checks a model's TOML: `Ok` with warnings, or every diagnostic.
pub fn check_source(source: &str) -> Result<(CheckedModel, Vec<Diagnostic>), Vec<Diagnostic>> {
    let report = check_model(source);
    match report.model {
        Some(model) => Ok((model, report.diagnostics)),
        None => Err(report.diagnostics),
    }
}

impl App {
    /// Opens the store, settles the active model (the `--model` file becomes a new version if it
    /// differs from the active one) and starts the writer, scheduler and model watcher.
    pub fn start(settings: Settings, clock: Arc<dyn Clock>) -> Result<Arc<App>, StartError> {
        let store = Arc::new(Store::open(&settings.db).map_err(StartError::Store)?);
        let now = clock.now();
        let from_file = match &settings.model {
            Some(path) => {
                let source =
                    std::fs::read_to_string(path).map_err(|e| StartError::Model(format!("{}: {e}", path.display())))?;
                Some((path.display().to_string(), source))
            }
            None => None,
        };
        let active_row = store.read(|tx| tx.active_model()).map_err(StartError::Store)?;
        let (version, source, name) = match (from_file, active_row) {
            (Some((name, source)), Some(row)) if row.source == source => (row.version, source, name),
            (Some((name, source)), _) => {
                let (checked, _) = check_source(&source).map_err(|d| StartError::Model(render(&name, &source, &d)))?;
                let version = store
                    .write(|tx| {
                        let v = tx.insert_model(&checked.name, &source, now)?;
                        tx.activate_model(v, now)?;
                        Ok(v)
                    })
                    .map_err(StartError::Store)?;
                (version, source, name)
            }
            (None, Some(row)) => (row.version, row.source, format!("model version {}", row.version)),
            (None, None) => {
                return Err(StartError::Model(
                    "no model: pass --model FILE (or [server] model in the config file)".to_owned(),
                ));
            }
        };
        let (model, _) = check_source(&source).map_err(|d| StartError::Model(render(&name, &source, &d)))?;
        let hooks = Webhooks::new(settings.webhooks.clone());
        let app = Arc::new(App {
            store,
            clock,
            keys: settings.keys(),
            settings,
            hooks,
            model: RwLock::new(Arc::new(ActiveModel::new(version, source, model))),
            pending: AtomicUsize::new(0),
            queue_limit: AtomicUsize::new(MAX_PENDING_EVENTS),
            writer: Mutex::new(None),
            rescore: Mutex::new(RescoreProgress { version, finished: true, ..RescoreProgress::default() }),
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            started: Instant::now(),
            latest_backtest: Mutex::new(None),
            ranked_version: AtomicI64::new(-1),
        });
        // Call-now ranks follow the active model's stage order (leads stored before it, or by an
        // older version of the schema, get theirs now, or as soon as the database can be written).
        app.rank_stages_if_needed();
        app.spawn_writer();
        app.spawn_loop("scheduler", Duration::from_millis(250), |app| {
            let now = app.clock.now();
            if let Err(e) = app.run_due(now) {
                tracing::warn!("scheduler: {e}");
            }
        });
        // One dispatcher per receiver: a slow one delays only its own deliveries.
        for receiver in app.hooks.receivers() {
            app.spawn_loop("webhooks", Duration::from_millis(200), move |app| {
                if let Err(e) = crate::webhooks::dispatch_due(&app.store, &app.hooks, &receiver, app.clock.now()) {
                    tracing::warn!("webhooks: {e}");
                }
            });
        }
        app.spawn_loop("model-watcher", Duration::from_secs(2), |app| {
            if let Err(e) = app.follow_active_model() {
                tracing::warn!("model watcher: {e}");
            }
            app.rank_stages_if_needed();
        });
        // Leads not yet scored with the active model (a new --model, or an interrupted rescore).
        let stale = app.store.read(|tx| tx.count_leads_not_scored_with(version)).map_err(StartError::Store)?;
        if stale > 0 {
            app.spawn_rescore(version);
        }
        Ok(app)
    }

    pub fn model(&self) -> Arc<ActiveModel> {
        match self.model.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_model(&self, active: ActiveModel) {
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

    pub fn pending_events(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    fn spawn_loop(self: &Arc<Self>, name: &str, every: Duration, work: impl Fn(&App) + Send + 'static) {
        let app = Arc::downgrade(self);
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
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
        if let (Ok(handle), Ok(mut threads)) = (handle, self.threads.lock()) {
            threads.push(handle);
        }
    }

    // ---- ingest ---------------------------------------------------------------------------------

    /// Queues messages for the writer and waits for their commit. Answers 429 when the queue is
    /// full, so SDKs back off and resend.
    pub async fn ingest(&self, messages: Vec<Incoming>) -> Result<Recorded, ApiError> {
        if messages.is_empty() {
            return Ok(Recorded::default());
        }
        let n = messages.len();
        let before = self.pending.fetch_add(n, Ordering::SeqCst);
        if before + n > self.queue_limit.load(Ordering::Relaxed) && before > 0 {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            metrics::counter!("leadscore_ingest_rejected_total", "reason" => "backpressure").increment(n as u64);
            return Err(ApiError::overloaded(1));
        }
        let (reply, answer) = oneshot::channel();
        let sent = match self.writer.lock() {
            Ok(writer) => writer.as_ref().is_some_and(|w| w.send(Job { messages, reply }).is_ok()),
            Err(_) => false,
        };
        if !sent {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            return Err(ApiError::new(Code::ShuttingDown, "the server is shutting down; retry"));
        }
        answer.await.unwrap_or_else(|_| Err(ApiError::internal("writer", &"the writer stopped")))
    }

    fn spawn_writer(self: &Arc<Self>) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Job>();
        if let Ok(mut writer) = self.writer.lock() {
            *writer = Some(sender);
        }
        let app = Arc::clone(self);
        let handle = std::thread::Builder::new().name("writer".to_owned()).spawn(move || {
            while let Some(first) = receiver.blocking_recv() {
                let mut jobs = vec![first];
                let mut count = jobs[0].messages.len();
                while count < MAX_GROUP_EVENTS {
                    match receiver.try_recv() {
                        Ok(job) => {
                            count += job.messages.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                app.commit(jobs, count);
            }
        });
        if let (Ok(handle), Ok(mut threads)) = (handle, self.threads.lock()) {
            threads.push(handle);
        }
    }

    /// One group commit: every queued request's messages in one transaction. If that transaction
    /// fails for a reason other than the database being unavailable, each request is committed on
    /// its own, so one bad request never fails the others.
    fn commit(&self, jobs: Vec<Job>, count: usize) {
        let started = Instant::now();
        let mut messages = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(jobs.len());
        let mut sizes = Vec::with_capacity(jobs.len());
        for job in jobs {
            sizes.push(job.messages.len());
            messages.extend(job.messages);
            replies.push(job.reply);
        }
        let mut results = vec![self.record(&messages)];
        if replies.len() > 1 && matches!(&results[0], Err(e) if !is_transient(e)) {
            tracing::warn!("a group commit of {} requests failed; committing them one by one", replies.len());
            let mut rest = &messages[..];
            results = sizes
                .iter()
                .map(|&n| {
                    let (mine, tail) = rest.split_at(n);
                    rest = tail;
                    self.record(mine)
                })
                .collect();
        }
        self.pending.fetch_sub(count, Ordering::SeqCst);
        metrics::histogram!("leadscore_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("leadscore_ingest_commit_events").record(count as f64);
        for (i, reply) in replies.into_iter().enumerate() {
            let result = if results.len() == 1 { &results[0] } else { &results[i] };
            let answer = match result {
                Ok(r) => Ok(r.clone()),
                Err(StoreError::Conflict(m) | StoreError::Unavailable(m)) => {
                    Err(ApiError::from(StoreError::Unavailable(m.clone())))
                }
                Err(e) => Err(ApiError::internal("ingest", e)),
            };
            let _ = reply.send(answer);
        }
    }

    /// Stores messages and rescores what they affect, in one transaction.
    fn record(&self, messages: &[Incoming]) -> Result<Recorded, StoreError> {
        let active = self.model();
        let result = self.store.write(|tx| record_events(tx, &active, &self.hooks, messages, self.clock.now()));
        match &result {
            Ok(recorded) => {
                metrics::counter!("leadscore_ingest_events_total", "result" => "stored")
                    .increment(recorded.stored as u64);
                metrics::counter!("leadscore_ingest_events_total", "result" => "duplicate")
                    .increment(recorded.duplicates as u64);
                metrics::counter!("leadscore_rescored_leads_total", "cause" => "ingest")
                    .increment(recorded.rescored as u64);
                metrics::counter!("leadscore_stage_changes_total").increment(recorded.changes.len() as u64);
            }
            Err(e) => tracing::error!("ingest commit failed: {e}"),
        }
        result
    }

    /// Records outcomes `(lead id, outcome, at)` of existing leads and rescores them (as
    /// `POST /api/leads/{id}/outcome` does). Unknown leads and outcomes are skipped; returns how
    /// many were recorded.
    pub fn record_outcomes(&self, outcomes: &[(String, &str, Millis)]) -> Result<usize, StoreError> {
        let active = self.model();
        let now = self.clock.now();
        let mut recorded = 0;
        for chunk in outcomes.chunks(RESCORE_CHUNK) {
            recorded += self.store.write(|tx| {
                let ids: Vec<String> = chunk.iter().map(|(id, _, _)| id.clone()).collect();
                tx.lock_leads(&ids)?;
                let existing: HashSet<String> = tx.leads_by_ids(&ids)?.into_iter().map(|r| r.id).collect();
                let mut due = Vec::new();
                for (id, outcome, at) in chunk {
                    let Some(kind) = leadscore_core::OutcomeKind::parse(outcome) else { continue };
                    if !existing.contains(id) {
                        continue;
                    }
                    let row =
                        leadscore_store::OutcomeRow { lead_id: id.clone(), outcome: kind.as_str().to_owned(), at: *at };
                    tx.add_outcome(&row, now)?;
                    due.push((id.clone(), now));
                }
                due.sort();
                due.dedup();
                rescore_leads(tx, &active, &self.hooks, &due)?;
                Ok(due.len())
            })?;
        }
        Ok(recorded)
    }

    // ---- time-driven changes ------------------------------------------------------------------------

    /// Applies every time-driven change due at or before `now`, each at its own instant. Returns
    /// how many leads were rescored.
    pub fn run_due(&self, now: Millis) -> Result<usize, StoreError> {
        let mut rescored = 0;
        loop {
            let due = self.store.read(|tx| tx.due_leads(now, 256))?;
            if due.is_empty() {
                break;
            }
            if let Some((_, earliest)) = due.first() {
                metrics::gauge!("leadscore_scheduler_lag_seconds").set((now - earliest) as f64 / 1000.0);
            }
            match self.rescore_due(&due) {
                Ok(n) => rescored += n,
                Err(e) if is_transient(&e) => return Err(e),
                Err(e) => {
                    // Something about one lead breaks the batch: go one by one and set aside the
                    // leads that fail (they are scored again at their next event), so the
                    // scheduler never stops for everyone.
                    tracing::error!("scheduler: {e}; rescoring the {} due leads one by one", due.len());
                    for lead in &due {
                        match self.rescore_due(std::slice::from_ref(lead)) {
                            Ok(n) => rescored += n,
                            Err(e) if is_transient(&e) => return Err(e),
                            Err(e) => {
                                tracing::error!("scheduler: lead `{}`: {e}; set aside until its next event", lead.0);
                                metrics::counter!("leadscore_scoring_failures_total").increment(1);
                                self.store.write(|tx| tx.clear_next_changes(std::slice::from_ref(&lead.0)))?;
                            }
                        }
                    }
                }
            }
        }
        metrics::counter!("leadscore_rescored_leads_total", "cause" => "schedule").increment(rescored as u64);
        if rescored == 0 {
            metrics::gauge!("leadscore_scheduler_lag_seconds").set(0.0);
        }
        Ok(rescored)
    }

    /// Rescores these due leads, each at its due instant, in one transaction.
    fn rescore_due(&self, due: &[(String, Millis)]) -> Result<usize, StoreError> {
        let active = self.model();
        self.store.write(|tx| {
            let ids: Vec<String> = due.iter().map(|(id, _)| id.clone()).collect();
            tx.lock_leads(&ids)?;
            // Another writer may have rescored some since they were read.
            let current: HashMap<String, Option<Millis>> =
                tx.leads_by_ids(&ids)?.into_iter().map(|r| (r.id, r.score.and_then(|s| s.next_change_at))).collect();
            let still_due: Vec<(String, Millis)> =
                due.iter().filter(|(id, at)| current.get(id) == Some(&Some(*at))).cloned().collect();
            rescore_leads(tx, &active, &self.hooks, &still_due)?;
            Ok(still_due.len())
        })
    }

    // ---- models -------------------------------------------------------------------------------------

    /// Checks and stores a new model version (not active yet).
    pub fn add_model(&self, source: &str) -> Result<(i64, String, Vec<Diagnostic>), ModelProblem> {
        let (checked, warnings) = check_source(source).map_err(ModelProblem::Invalid)?;
        let now = self.clock.now();
        let version = self.store.write(|tx| tx.insert_model(&checked.name, source, now))?;
        Ok((version, checked.name, warnings))
    }

    /// Makes `version` active and rescores every lead in the background. `None` if there is no
    /// such version.
    pub fn activate(self: &Arc<Self>, version: i64) -> Result<Option<RescoreProgress>, ModelProblem> {
        let Some(row) = self.store.read(|tx| tx.model(version))? else { return Ok(None) };
        let (model, _) = check_source(&row.source).map_err(ModelProblem::Invalid)?;
        let now = self.clock.now();
        self.store.write(|tx| {
            tx.activate_model(version, now)?;
            rank_stages(tx, &model)
        })?;
        // The model first: the watcher, seeing the new version not yet marked ranked, at worst
        // ranks again with it (writing nothing), never with the old one.
        self.set_model(ActiveModel::new(version, row.source, model));
        self.ranked_version.store(version, Ordering::SeqCst);
        Ok(Some(self.spawn_rescore(version)))
    }

    /// Sets the stored call-now ranks from the active model's stage order, unless they already
    /// follow it; a database that cannot be written now is tried again on the next call.
    fn rank_stages_if_needed(&self) {
        let active = self.model();
        if self.ranked_version.load(Ordering::SeqCst) == active.version {
            return;
        }
        match self.store.write(|tx| rank_stages(tx, &active.model)) {
            Ok(()) => self.ranked_version.store(active.version, Ordering::SeqCst),
            Err(e) => tracing::warn!("call-now ranks for model version {}: {e}; trying again", active.version),
        }
    }

    /// Picks up a model another process activated in the shared database.
    fn follow_active_model(&self) -> Result<(), StoreError> {
        let Some(row) = self.store.read(|tx| tx.active_model())? else { return Ok(()) };
        if row.version == self.model().version {
            return Ok(());
        }
        match check_source(&row.source) {
            Ok((model, _)) => {
                tracing::info!("model version {} was activated elsewhere; using it", row.version);
                self.set_model(ActiveModel::new(row.version, row.source, model));
            }
            Err(_) => tracing::error!("active model version {} does not check; keeping the current one", row.version),
        }
        Ok(())
    }

    fn spawn_rescore(self: &Arc<Self>, version: i64) -> RescoreProgress {
        let total = self.store.read(|tx| tx.count_leads()).unwrap_or(0).max(0) as u64;
        let progress = RescoreProgress { version, done: 0, total, finished: total == 0, error: None };
        if let Ok(mut p) = self.rescore.lock() {
            *p = progress.clone();
        }
        let app = Arc::clone(self);
        let handle = std::thread::Builder::new().name("rescore".to_owned()).spawn(move || {
            if let Err(e) = app.rescore_all(version) {
                tracing::error!("rescore for model version {version}: {e}");
                if let Ok(mut p) = app.rescore.lock()
                    && p.version == version
                {
                    p.finished = true;
                    p.error = Some(e.to_string());
                }
            }
        });
        if let (Ok(handle), Ok(mut threads)) = (handle, self.threads.lock()) {
            threads.push(handle);
        }
        progress
    }

    /// Rescores every lead with model `version`, in chunks; stops if another version becomes
    /// active meanwhile.
    fn rescore_all(&self, version: i64) -> Result<(), StoreError> {
        let mut after = String::new();
        loop {
            let active = self.model();
            if active.version != version || self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let ids = self.store.read(|tx| tx.lead_ids_after(&after, RESCORE_CHUNK))?;
            let Some(last) = ids.last().cloned() else { break };
            let now = self.clock.now();
            let due: Vec<(String, Millis)> = ids.iter().map(|id| (id.clone(), now)).collect();
            // A database outage pauses the rescore instead of ending it.
            let mut attempt = 0u32;
            loop {
                match self.store.write(|tx| rescore_leads(tx, &active, &self.hooks, &due)) {
                    Ok(_) => break,
                    Err(e) if is_transient(&e) && attempt < 60 && !self.stopping.load(Ordering::SeqCst) => {
                        attempt += 1;
                        tracing::warn!("rescore paused: {e}; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Err(e) => return Err(e),
                }
            }
            metrics::counter!("leadscore_rescored_leads_total", "cause" => "model").increment(ids.len() as u64);
            if let Ok(mut p) = self.rescore.lock() {
                p.done += ids.len() as u64;
            }
            after = last;
        }
        if let Ok(mut p) = self.rescore.lock() {
            p.finished = true;
            p.done = p.done.max(p.total);
        }
        Ok(())
    }

    // ---- leads -------------------------------------------------------------------------------------

    /// Deletes a lead and everything about it (GDPR): its messages and those of every id stitched
    /// to it (anonymous ids, aliased previous ids), links, outcomes, history and deliveries; then
    /// makes the deleted bytes unrecoverable from the database files ([`Store::erase_deleted`]).
    /// Returns whether the lead existed.
    pub fn delete_lead(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.store.write(|tx| {
            tx.lock_leads(&[id.to_owned()])?;
            let stitched = crate::scoring::stitched_ids(tx, id)?;
            tx.lock_leads(&stitched)?;
            tx.delete_lead(id, &stitched)
        })?;
        if existed {
            self.store.erase_deleted()?;
        }
        Ok(existed)
    }

    // ---- health -------------------------------------------------------------------------------------

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

/// Failures that go away by themselves (the database is down, busy or read-only): retry later.
pub fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::Conflict(_))
}

/// Diagnostics as `leadscore check` prints them (plain text).
pub fn render(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let rendered: Vec<String> = diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render(name, source)).collect();
    rendered.join("\n")
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Model(String),
}

/// Sets every stored lead's call-now rank from `model`'s stage order.
fn rank_stages(tx: &mut Tx<'_>, model: &CheckedModel) -> Result<(), StoreError> {
    let (ranks, other) = model.stage_ranks();
    tx.rank_stages(&ranks, other).map(|_| ())
}
