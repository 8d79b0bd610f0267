//! Stored scores come from stored fold states: ingest applies a lead's new messages to the state
//! kept with it instead of re-reading its history. On random models and data from
//! `bench/random_case.py` (every rule kind, stages, grades, `[events] ignore`, accounts; messages
//! late, out of order, duplicated and resent, anonymous visits stitched later), sent shuffled in
//! random batches while the clock moves, with outcomes and a model activation halfway, every
//! stored score must equal a fresh `evaluate` of the lead's stored history at the same instant.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/cases.rs"]
mod cases;
#[path = "common/harness.rs"]
mod harness;

use serde_json::json;

use cases::{Case, Rng, random_case, urlencode};
use harness::{Server, start_model_settings};
use leadscore_core::engine::round2;
use leadscore_core::time::{MS_PER_DAY, format_timestamp};

/// Every stored lead against a fresh evaluation of its history at the instant it was scored.
async fn assert_stored_equal_fresh(s: &Server, context: &str) -> usize {
    let (status, list) = s.get("/api/leads?limit=1000").await;
    assert_eq!(status, 200, "{list}");
    let leads = list["leads"].as_array().unwrap();
    for listed in leads {
        let id = listed["id"].as_str().unwrap().to_owned();
        let key = id.clone();
        let row = s.store(move |store| store.read(|tx| tx.lead(&key)).unwrap()).await.unwrap();
        let stored = row.score.expect("every listed lead was scored");
        let at = format_timestamp(stored.scored_at);
        let (status, fresh) = s.get(&format!("/api/leads/{}?as_of={at}", urlencode(&id))).await;
        assert_eq!(status, 200, "{id}: {fresh}");
        let context = format!("{context}, lead {id} scored at {at}:\nstored {stored:?}\nfresh {fresh}");
        assert_eq!(json!(round2(stored.total)), fresh["total"], "total: {context}");
        assert_eq!(json!(stored.stage), fresh["stage"], "stage: {context}");
        assert_eq!(json!(stored.grade), fresh["grade"], "grade: {context}");
        assert_eq!(json!(stored.scores), fresh["scores"], "scores: {context}");
        assert_eq!(json!(stored.contributions), fresh["contributions"], "contributions: {context}");
        // The view shows probabilities to 4 decimals.
        let probability = stored.probability.map(|p| (p * 10_000.0).round() / 10_000.0);
        assert_eq!(json!(probability), fresh["probability"], "probability: {context}");
        assert_eq!(listed["total"], fresh["total"], "the list shows the stored total: {context}");
    }
    leads.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_states_equal_fresh_evaluations_on_random_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for seed in 1..=8_u64 {
        let Case { model, mut messages, outcomes, as_of } = random_case(seed, dir.path());
        let other = random_case(seed + 1000, dir.path()).model;
        let db_dir = dir.path().join(format!("db-{seed}"));
        std::fs::create_dir_all(&db_dir).unwrap();
        // Events run up to five days past as_of; none is refused for lying in the future.
        let s = start_model_settings(&db_dir, &model, |settings| settings.max_future = 400 * MS_PER_DAY);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        // Shuffled (Fisher-Yates), then sent in random batches while the clock moves from ten days
        // before as_of to as_of, the scheduler running at each step as the server's would.
        for i in (1..messages.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            messages.swap(i, j);
        }
        let start = as_of - 10 * MS_PER_DAY;
        let total = messages.len().max(1);
        let mut sent = 0;
        let mut activated = false;
        let mut outcomes_sent = false;
        let mut round = 0;
        while sent < messages.len() {
            let n = (1 + rng.below(40) as usize).min(messages.len() - sent);
            let batch = &messages[sent..sent + n];
            let now = start + (as_of - start) * (sent + n) as i64 / total as i64;
            s.clock.set(now);
            let app = std::sync::Arc::clone(&s.app);
            tokio::task::spawn_blocking(move || app.run_due(now)).await.unwrap().unwrap();
            let (status, answer) = s.ingest("/v1/batch", json!({ "batch": batch })).await;
            assert_eq!(status, 200, "seed {seed}: {answer}");
            if rng.below(8) == 0 {
                // A resend of the same batch (an SDK retrying after a timeout) changes nothing.
                let (status, answer) = s.ingest("/v1/batch", json!({ "batch": batch })).await;
                assert_eq!(status, 200, "seed {seed}: {answer}");
            }
            sent += n;
            round += 1;
            if !outcomes_sent && sent * 3 >= total {
                outcomes_sent = true;
                for (lead, outcome, at) in &outcomes {
                    let body = json!({ "outcome": outcome, "at": at }).to_string();
                    let (status, answer) = s.post(&format!("/api/leads/{}/outcome", urlencode(lead)), &body).await;
                    assert!(status == 200 || status == 404, "seed {seed}, outcome of {lead}: {status} {answer}");
                }
            }
            if !activated && sent * 2 >= total {
                activated = true;
                let (status, created) = s.post("/api/models", &other).await;
                assert_eq!(status, 201, "seed {seed}: {created}");
                let version = created["version"].as_i64().unwrap();
                let (status, body) = s.post(&format!("/api/models/{version}/activate?wait=true"), "").await;
                assert_eq!(status, 200, "seed {seed}: {body}");
            }
            if round % 4 == 0 || sent == messages.len() {
                let at = format_timestamp(now);
                checked += assert_stored_equal_fresh(&s, &format!("seed {seed}, {sent} messages sent, at {at}")).await;
            }
        }
        // Then time alone: the scheduler's rescores from the states equal fresh evaluations too.
        for days in [1, 3, 10, 40] {
            let now = as_of + days * MS_PER_DAY;
            s.clock.set(now);
            let app = std::sync::Arc::clone(&s.app);
            tokio::task::spawn_blocking(move || app.run_due(now)).await.unwrap().unwrap();
            checked += assert_stored_equal_fresh(&s, &format!("seed {seed}, {days} days after as_of")).await;
        }
    }
    assert!(checked > 500, "only {checked} lead comparisons were made");
}
