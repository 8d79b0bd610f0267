//! Thread `crm-sync`, one per `[[sync]]`: claims the leads due in its outbox (a lease: their
//! next attempt moves a minute ahead, so a process that dies mid-send leaves them to be retried),
//! reads their current scores, writes them to the CRM in batches outside any transaction, within
//! the sync's rate limit ([`Window`]), and records each lead's result:
//! - written: delivered, with the values sent;
//! - failed (5xx, network, a rejected input): retried with the webhooks' backoff, dead once the
//!   sync's `retry_for` has passed since the change (until the lead's next change or a resend);
//! - rate limited (429): sent again after `Retry-After`, not counted as a failure;
//! - token refused (401, 403): the sync stops, the leads stay pending, and the log, the sync's
//!   status and `/metrics` say why;
//! - no record id or e-mail trait to match: dead with that error.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use leadscore_core::time::Millis;
use leadscore_store::{CrmRow, DeliveryStatus, Store, StoreError};

use super::{Answer, Input, SyncRunner, Values};
use crate::app::App;
use crate::dispatcher::backoff;

/// How long claimed leads are left to their sender before another attempt may start.
const LEASE_MS: Millis = 60_000;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Requests in flight at once, per sync.
pub const PARALLEL: usize = 4;

/// The HTTP client of the syncs and of `leadscore sync setup`.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .user_agent(concat!("leadscore/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A rate limit as CRMs count it: at most `max` requests in any window of `span` (a log of the
/// last `max` requests, each recorded when its answer came, so network delays cannot squeeze
/// more into the CRM's window; a token bucket would allow up to twice `max` in one window), and
/// a pause the CRM asked for (`Retry-After`). Requests go one at a time.
#[derive(Debug)]
pub struct Window {
    max: usize,
    span: Duration,
    /// When each request of the window was answered.
    sent: VecDeque<Instant>,
    /// Requests sent and not answered yet: they count in the window until their answer.
    in_flight: usize,
    paused_until: Option<Instant>,
}

impl Window {
    pub fn new(max: usize, span: Duration) -> Window {
        Window { max: max.max(1), span, sent: VecDeque::new(), in_flight: 0, paused_until: None }
    }

    fn prune(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= self.span) {
            self.sent.pop_front();
        }
    }

    /// How long until the next request may go (zero: now).
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.prune(now);
        let pause = self.paused_until.map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        let full = if self.sent.len() + self.in_flight < self.max {
            Duration::ZERO
        } else {
            match self.sent.front() {
                Some(oldest) => self.span.saturating_sub(now.duration_since(*oldest)),
                // All in flight: their answers free nothing for a whole span.
                None => self.span,
            }
        };
        pause.max(full)
    }

    /// How many requests may start now.
    pub fn room(&mut self, now: Instant) -> usize {
        if !self.wait(now).is_zero() {
            return 0;
        }
        self.max - self.sent.len() - self.in_flight
    }

    /// A request starts.
    pub fn begin(&mut self) {
        self.in_flight += 1;
    }

    /// A request was answered at `now`.
    pub fn finish(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.sent.push_back(now);
    }

    /// A request, sent and answered at `now` (one at a time).
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    pub fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

impl App {
    pub(crate) fn spawn_syncs(self: &Arc<Self>) {
        for runner in &self.outboxes.syncs.runners {
            let runner = Arc::clone(runner);
            let window = Mutex::new(Window::new(
                runner.sync.rate_requests,
                Duration::from_millis(u64::try_from(runner.sync.rate_window_ms).unwrap_or(10_000)),
            ));
            let agent = agent();
            self.spawn_loop("crm-sync", Duration::from_millis(200), move |app| {
                let mut window = match window.lock() {
                    Ok(w) => w,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let stop = || app.stopping.load(Ordering::SeqCst);
                if let Err(e) = send_due(app, &runner, &agent, &mut window, &stop) {
                    tracing::warn!("crm sync `{}`: {e}", runner.sync.name);
                }
            });
        }
    }
}

/// One write request: its inputs with their rows' places, and the records it names (a CRM
/// refuses a batch naming one record twice).
struct Batch {
    inputs: Vec<(usize, Input)>,
    records: HashSet<(bool, String)>,
}

/// What became of one claimed lead.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Written(String),
    Failed(String),
    /// Not sent (or sent and not looked at): due again at once, not counted as a failure.
    Again(Option<String>),
    Unmatched(String),
    Gone,
}

/// Sends due leads until none is due, the rate limit is reached or the sync stops; returns how
/// many requests were sent. Up to [`PARALLEL`] requests are in flight at once (a CRM answers a
/// batch in a few hundred milliseconds; one at a time would stay far below its rate limit), each
/// counted in the window from its start.
pub fn send_due(
    app: &App,
    runner: &SyncRunner,
    agent: &ureq::Agent,
    window: &mut Window,
    stop: &dyn Fn() -> bool,
) -> Result<usize, StoreError> {
    let (store, clock) = (&app.store, app.clock.as_ref());
    let sync = &runner.sync;
    let mut requests = 0;
    loop {
        let up = runner.health().stopped.is_none();
        metrics::gauge!("leadscore_crm_sync_up", "sync" => sync.name.clone()).set(if up { 1.0 } else { 0.0 });
        let room = window.room(Instant::now()).min(PARALLEL);
        if !up || stop() || room == 0 {
            return Ok(requests);
        }
        let now = clock.now();
        let (rows, records) = store.write(|tx| {
            let rows = tx.due_crm(&sync.name, now, sync.crm.batch_size() * room)?;
            let ids: Vec<String> = rows.iter().map(|r| r.lead_id.clone()).collect();
            tx.lease_crm(&sync.name, &ids, now + LEASE_MS)?;
            let records = records(app, tx, runner, &ids, now)?;
            Ok::<_, StoreError>((rows, records))
        })?;
        if rows.is_empty() {
            return Ok(requests);
        }
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(rows.len());
        let mut batches: Vec<Batch> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let Some((traits, values)) = records.get(row.lead_id.as_str()) else {
                outcomes.push(Outcome::Gone);
                continue;
            };
            let (id, by_email) = match (sync.record_id(traits), sync.email(traits)) {
                (Some(id), _) => (id, false),
                (None, Some(email)) => (email, true),
                (None, None) => {
                    outcomes.push(Outcome::Unmatched(unmatched(runner)));
                    continue;
                }
            };
            // A CRM refuses a batch naming one record twice: the second lead goes in another.
            let key = (by_email, id.to_lowercase());
            outcomes.push(Outcome::Again(None));
            let input = Input { id, by_email, values: values.clone() };
            let open = batches.iter().position(|b| b.inputs.len() < sync.crm.batch_size() && !b.records.contains(&key));
            match open {
                Some(at) => {
                    batches[at].records.insert(key);
                    batches[at].inputs.push((i, input));
                }
                None if batches.len() < room => {
                    batches.push(Batch { inputs: vec![(i, input)], records: HashSet::from([key]) });
                }
                // No room left this turn: the lead is due again at once.
                None => {}
            }
        }
        let shared = Mutex::new(&mut *window);
        let answers: Vec<Answer> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .iter()
                .map(|batch| {
                    let shared = &shared;
                    scope.spawn(move || {
                        lock(shared).begin();
                        let list: Vec<&Input> = batch.inputs.iter().map(|(_, input)| input).collect();
                        let answer = send(agent, runner, &list);
                        // Counted until its answer: the CRM counted it on arrival, no later.
                        lock(shared).finish(Instant::now());
                        answer
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Answer::Failed("the request thread panicked".to_owned())))
                .collect()
        });
        requests += answers.len();
        for (batch, answer) in batches.iter().zip(&answers) {
            metrics::counter!("leadscore_crm_requests_total", "sync" => sync.name.clone(), "answer" => answer_name(answer))
                .increment(1);
            let named = |failed: &[(String, String)], id: &str| {
                failed.iter().find(|(f, _)| f.eq_ignore_ascii_case(id)).map(|(_, m)| m.clone())
            };
            for (i, input) in &batch.inputs {
                outcomes[*i] = match answer {
                    Answer::Written => Outcome::Written(sent_json(input)),
                    Answer::Partly(failed) => match named(failed, &input.id) {
                        Some(error) => Outcome::Failed(error),
                        None => Outcome::Written(sent_json(input)),
                    },
                    Answer::Rejected(failed) => match named(failed, &input.id) {
                        Some(error) => Outcome::Failed(error),
                        None => Outcome::Again(None),
                    },
                    Answer::Failed(error) => Outcome::Failed(error.clone()),
                    Answer::RateLimited { error, .. } | Answer::Unauthorized(error) => {
                        Outcome::Again(Some(error.clone()))
                    }
                };
            }
            match answer {
                Answer::RateLimited { wait_ms, error } => {
                    tracing::warn!("crm sync `{}`: rate limited, waiting {wait_ms} ms: {error}", sync.name);
                    window.pause(Instant::now() + Duration::from_millis(u64::try_from(*wait_ms).unwrap_or(0)));
                }
                Answer::Unauthorized(error) => {
                    let why = format!(
                        "stopped: {} refused the token ({error}); fix the token and restart the server",
                        sync.crm.as_str()
                    );
                    tracing::error!("crm sync `{}`: {why}", sync.name);
                    runner.update_health(|h| h.stopped = Some(why));
                }
                _ => {}
            }
        }
        record(store, runner, &rows, &outcomes, clock.now())?;
    }
}

/// What a record is written from: the traits that name it, and its values.
type Record = (Map<String, Value>, Values);

/// What each claimed key is written from: the traits that name its record, and its values.
/// Leads (`contacts`, `Lead`, `Contact`) from their stored scores; accounts (`companies`) rolled
/// up from their leads' stored scores as of `now`. A key with nothing (deleted) is left out.
fn records(
    app: &App,
    tx: &mut leadscore_store::Tx<'_>,
    runner: &SyncRunner,
    ids: &[String],
    now: Millis,
) -> Result<HashMap<String, Record>, StoreError> {
    let sync = &runner.sync;
    let mut out = HashMap::with_capacity(ids.len());
    if sync.accounts {
        for view in app.account_views(tx, ids, now)?.into_iter().flatten() {
            let values = sync.account_values(&view.scores, view.total, &view.stage, now);
            out.insert(view.id, (view.traits, values));
        }
    } else {
        for lead in tx.leads_by_ids(ids)? {
            if let Some(score) = lead.score {
                let values = sync.values(&score, lead.updated_at);
                out.insert(lead.id, (score.current_traits, values));
            }
        }
    }
    Ok(out)
}

fn lock<'a, T>(m: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn unmatched(runner: &SyncRunner) -> String {
    let sync = &runner.sync;
    let what = if sync.accounts { "account" } else { "lead" };
    let traits = match &sync.email_trait {
        Some(email) => format!("`{}` or `{email}` trait", sync.id_trait),
        None => format!("`{}` trait", sync.id_trait),
    };
    format!("no {traits}: the {what} cannot be matched to a {} record", sync.crm.as_str())
}

fn answer_name(answer: &Answer) -> &'static str {
    match answer {
        Answer::Written => "written",
        Answer::Partly(_) => "partly",
        Answer::Rejected(_) => "rejected",
        Answer::Failed(_) => "failed",
        Answer::RateLimited { .. } => "rate_limited",
        Answer::Unauthorized(_) => "unauthorized",
    }
}

/// The values written, as the log shows them.
fn sent_json(input: &Input) -> String {
    let map: Map<String, Value> = input.values.iter().map(|(k, v)| (k.clone(), Value::String(v.as_text()))).collect();
    Value::Object(map).to_string()
}

/// One write request for `inputs`, with the sync's token; a network error reads as a failure.
fn send(agent: &ureq::Agent, runner: &SyncRunner, inputs: &[&Input]) -> Answer {
    let sync = &runner.sync;
    let request = sync.request(inputs);
    let url = format!("{}{}", sync.url.trim_end_matches('/'), request.path);
    let body = request.body.to_string();
    let bearer = format!("Bearer {}", sync.token);
    let builder = match request.method {
        "PATCH" => agent.patch(&url),
        _ => agent.post(&url),
    };
    let response =
        builder.header("Authorization", &bearer).header("Content-Type", "application/json").send(body.as_bytes());
    match response {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let retry_after = r.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let text = r.body_mut().read_to_string().unwrap_or_default();
            sync.interpret(status, retry_after.as_deref(), &text, inputs)
        }
        Err(e) => Answer::Failed(format!("{} {url}: {e}", request.method)),
    }
}

/// Records what became of each claimed lead.
fn record(
    store: &Store,
    runner: &SyncRunner,
    rows: &[CrmRow],
    outcomes: &[Outcome],
    now: Millis,
) -> Result<(), StoreError> {
    let sync = &runner.sync;
    let mut gone = Vec::new();
    let mut last_error = None;
    store.write(|tx| {
        for (row, outcome) in rows.iter().zip(outcomes) {
            let mut next = CrmRow { last_attempt_at: Some(now), ..row.clone() };
            let result = match outcome {
                Outcome::Gone => {
                    gone.push(row.lead_id.clone());
                    continue;
                }
                Outcome::Written(sent) => {
                    next.status = DeliveryStatus::Delivered;
                    next.attempts = 0;
                    next.last_error = None;
                    next.sent_at = Some(now);
                    next.sent = Some(sent.clone());
                    "written"
                }
                Outcome::Again(error) => {
                    next.next_attempt_at = now;
                    match error {
                        Some(error) => next.last_error = Some(error.clone()),
                        None => next.last_attempt_at = row.last_attempt_at,
                    }
                    tx.finish_crm(&next, row.version, now)?;
                    continue;
                }
                Outcome::Failed(error) | Outcome::Unmatched(error) => {
                    next.attempts += 1;
                    next.last_error = Some(error.clone());
                    last_error = Some(error.clone());
                    let expired = now - row.changed_at >= sync.retry_for;
                    if matches!(outcome, Outcome::Unmatched(_)) || expired {
                        next.status = DeliveryStatus::Dead;
                        if matches!(outcome, Outcome::Unmatched(_)) { "unmatched" } else { "dead" }
                    } else {
                        next.next_attempt_at = now + backoff(sync.first_retry, next.attempts, &row.lead_id);
                        "failed"
                    }
                }
            };
            let due_if_changed =
                if next.status == DeliveryStatus::Delivered { now + sync.debounce } else { next.next_attempt_at };
            tx.finish_crm(&next, row.version, due_if_changed)?;
            metrics::counter!("leadscore_crm_records_total", "sync" => sync.name.clone(), "result" => result)
                .increment(1);
        }
        tx.forget_crm(&sync.name, &gone)?;
        Ok::<_, StoreError>(())
    })?;
    if let Some(error) = last_error {
        runner.update_health(|h| {
            h.last_error = Some(error);
            h.last_error_at = Some(now);
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_allows_max_requests_in_any_span() {
        let start = Instant::now();
        let mut w = Window::new(3, Duration::from_secs(10));
        for i in 0..3 {
            assert_eq!(w.wait(start + Duration::from_secs(i)), Duration::ZERO);
            w.record(start + Duration::from_secs(i));
        }
        assert_eq!(w.wait(start + Duration::from_secs(4)), Duration::from_secs(6), "full until the first leaves");
        assert_eq!(w.wait(start + Duration::from_secs(10)), Duration::ZERO);
        w.record(start + Duration::from_secs(10));
        assert_eq!(w.wait(start + Duration::from_secs(10)), Duration::from_secs(1));
        w.pause(start + Duration::from_secs(30));
        assert_eq!(w.wait(start + Duration::from_secs(25)), Duration::from_secs(5), "Retry-After wins");
    }

    #[test]
    fn requests_in_flight_hold_their_place_until_answered() {
        let start = Instant::now();
        let mut w = Window::new(3, Duration::from_secs(10));
        assert_eq!(w.room(start), 3);
        w.begin();
        w.begin();
        assert_eq!(w.room(start), 1);
        w.begin();
        assert_eq!(w.room(start + Duration::from_secs(20)), 0, "in flight however long");
        w.finish(start + Duration::from_secs(21));
        assert_eq!(w.room(start + Duration::from_secs(22)), 0, "counted from its answer");
        assert_eq!(w.wait(start + Duration::from_secs(22)), Duration::from_secs(9));
        assert_eq!(w.room(start + Duration::from_secs(31)), 1);
    }
}
