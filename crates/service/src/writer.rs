//! The writer thread: ingest requests wait in a queue and are committed together, every queued
//! request's messages in one transaction ([`crate::scoring::record_events`]: store, link
//! identities, rescore affected leads, history, outbox), and each request is answered when its
//! messages are durable. A full queue answers 429 so SDKs back off and resend.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use leadscore_store::StoreError;

use crate::app::App;
use crate::error::{ServiceError, is_transient};
use crate::ingest::Incoming;
use crate::scoring::{Recorded, record_events};

/// Most events one transaction commits.
const MAX_GROUP_EVENTS: usize = 5_000;

/// One ingest request waiting for its commit.
pub(crate) struct Job {
    messages: Vec<Incoming>,
    reply: oneshot::Sender<Result<Recorded, ServiceError>>,
}

impl App {
    /// Queues messages for the writer and waits for their commit. Answers 429 when the queue is
    /// full, so SDKs back off and resend. Traits named like the fields the CRM syncs write are
    /// dropped first (the loop guard: [`crate::crm::Syncs::guard`]).
    pub async fn ingest(&self, mut messages: Vec<Incoming>) -> Result<Recorded, ServiceError> {
        if messages.is_empty() {
            return Ok(Recorded::default());
        }
        let dropped = self.outboxes.syncs.guard(&mut messages);
        if dropped > 0 {
            metrics::counter!("leadscore_crm_loop_guard_traits_total").increment(dropped as u64);
        }
        let n = messages.len();
        let before = self.pending.fetch_add(n, Ordering::SeqCst);
        if before + n > self.queue_limit.load(Ordering::Relaxed) && before > 0 {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            metrics::counter!("leadscore_ingest_rejected_total", "reason" => "backpressure").increment(n as u64);
            return Err(ServiceError::Overloaded { retry_after: 1 });
        }
        let (reply, answer) = oneshot::channel();
        let sent = match self.writer.lock() {
            Ok(writer) => writer.as_ref().is_some_and(|w| w.send(Job { messages, reply }).is_ok()),
            Err(_) => false,
        };
        if !sent {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            return Err(ServiceError::ShuttingDown);
        }
        answer.await.unwrap_or_else(|_| Err(ServiceError::internal("writer", &"the writer stopped")))
    }

    pub(crate) fn spawn_writer(self: &Arc<Self>) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Job>();
        if let Ok(mut writer) = self.writer.lock() {
            *writer = Some(sender);
        }
        let app = Arc::clone(self);
        self.spawn_thread("writer", move || {
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
                    Err(ServiceError::Store(StoreError::Unavailable(m.clone())))
                }
                // Logged by `record`.
                Err(e) => Err(ServiceError::Internal { what: "ingest", message: e.to_string() }),
            };
            let _ = reply.send(answer);
        }
    }

    /// Stores messages and rescores what they affect, in one transaction.
    fn record(&self, messages: &[Incoming]) -> Result<Recorded, StoreError> {
        let result = self.store.write(|tx| {
            let active = self.model();
            let shadows = self.shadows();
            let recorded = record_events(tx, &active, &shadows, &self.outboxes, messages, self.clock.now())?;
            // Now under the affected leads' locks: if an activation set another model meanwhile,
            // its rescore may already have scored these leads, and scores of the replaced model
            // must not land after it. A conflict runs the transaction again with the new model.
            if self.model().version != active.version {
                return Err(StoreError::Conflict("the active model changed during the transaction".to_owned()));
            }
            Ok(recorded)
        });
        match &result {
            Ok(recorded) => {
                metrics::counter!("leadscore_ingest_events_total", "result" => "stored")
                    .increment(recorded.stored as u64);
                metrics::counter!("leadscore_ingest_events_total", "result" => "duplicate")
                    .increment(recorded.duplicates as u64);
                if recorded.ignored > 0 {
                    metrics::counter!("leadscore_ingest_events_total", "result" => "ignored")
                        .increment(recorded.ignored as u64);
                    self.ignored_events.fetch_add(recorded.ignored as u64, Ordering::Relaxed);
                    tracing::info!(
                        "ingest: {} of {} new messages match the model's [events] ignore (a bot's user agent, test \
                         traffic): stored, but they score nothing",
                        recorded.ignored,
                        recorded.stored
                    );
                }
                metrics::counter!("leadscore_rescored_leads_total", "cause" => "ingest")
                    .increment(recorded.rescored as u64);
                metrics::counter!("leadscore_stage_changes_total").increment(recorded.changes.len() as u64);
            }
            Err(e) => tracing::error!("ingest commit failed: {e}"),
        }
        result
    }
}
