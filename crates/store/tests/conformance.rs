//! The store conformance suite: every check runs against SQLite and against a real PostgreSQL
//! (a throwaway cluster; "skipped: …" loudly when PostgreSQL is not installed).

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

#[path = "common/pg.rs"]
mod pg;

use leadscore_core::event::MessageKind;
use leadscore_store::*;

type Check = fn(&Store);

const CHECKS: &[(&str, Check)] = &[
    ("messages_are_deduplicated_per_person_and_message_id", messages_are_deduplicated_per_person_and_message_id),
    (
        "a_lead_gets_its_own_and_its_stitched_anonymous_messages",
        a_lead_gets_its_own_and_its_stitched_anonymous_messages,
    ),
    ("the_earliest_link_time_is_kept", the_earliest_link_time_is_kept),
    ("scores_round_trip_with_nulls_and_floats", scores_round_trip_with_nulls_and_floats),
    ("every_sort_pages_through_every_lead_once", every_sort_pages_through_every_lead_once),
    ("filters_select_the_right_leads", filters_select_the_right_leads),
    ("due_leads_come_earliest_first", due_leads_come_earliest_first),
    ("outcomes_and_history_keep_their_order", outcomes_and_history_keep_their_order),
    ("one_model_version_is_active", one_model_version_is_active),
    ("deliveries_move_through_their_states", deliveries_move_through_their_states),
    ("deleting_a_lead_removes_every_row_naming_it", deleting_a_lead_removes_every_row_naming_it),
    ("a_failed_transaction_leaves_nothing_behind", a_failed_transaction_leaves_nothing_behind),
    ("each_receiver_gets_only_its_deliveries", each_receiver_gets_only_its_deliveries),
    ("deleting_a_lead_removes_its_aliased_ids_too", deleting_a_lead_removes_its_aliased_ids_too),
    ("sessions_expire_and_are_looked_up_by_digest", sessions_expire_and_are_looked_up_by_digest),
    ("unreadable_messages_are_listed_once", unreadable_messages_are_listed_once),
    ("the_readiness_probe_writes", the_readiness_probe_writes),
    ("stage_ranks_follow_the_active_models_order", stage_ranks_follow_the_active_models_order),
    ("a_point_that_is_not_a_number_leaves_out_only_itself", a_point_that_is_not_a_number_leaves_out_only_itself),
    ("the_crm_outbox_coalesces_changes_per_lead", the_crm_outbox_coalesces_changes_per_lead),
    ("leads_are_found_by_a_trait", leads_are_found_by_a_trait),
    ("shadow_scores_are_kept_per_lead_and_version", shadow_scores_are_kept_per_lead_and_version),
    ("leads_entering_a_stage_are_found_by_when_they_did", leads_entering_a_stage_are_found_by_when_they_did),
];

fn run_all(open: impl Fn() -> Store) {
    for (name, check) in CHECKS {
        eprintln!("check: {name}");
        check(&open());
    }
}

#[test]
fn conformance_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    run_all(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Store::open(&format!("sqlite://{}", dir.path().join(format!("t{i}.db")).display())).unwrap()
    });
}

#[test]
fn conformance_postgres() {
    let Some(cluster) = pg::PgCluster::start() else { return };
    run_all(|| Store::open(&cluster.database()).unwrap());
}

#[test]
fn sqlite_data_survives_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = Store::open(&url).unwrap();
    store.write(|tx| tx.insert_events(&[event("k", "m1", Some("u1"), None, 10)])).unwrap();
    drop(store);
    let store = Store::open(&url).unwrap();
    assert_eq!(store.read(|tx| tx.count_events()).unwrap(), 1);
}

/// A full rescore of many leads drops the list indexes while it rewrites the rows: lists still
/// answer (from the table), and the next start builds any index a crash left dropped.
#[test]
fn sqlite_list_indexes_dropped_for_a_rewrite_come_back_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let path = dir.path().join("a.db");
    let indexes = || -> i64 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' \
             AND name IN ('leads_total', 'leads_updated', 'leads_stage')",
            [],
            |row| row.get(0),
        )
        .unwrap()
    };
    let store = Store::open(&url).unwrap();
    assert_eq!(indexes(), 3);
    assert!(store.write(|tx| tx.drop_list_indexes()).unwrap());
    assert_eq!(indexes(), 0);
    every_sort_pages_through_every_lead_once(&store);
    filters_select_the_right_leads(&store);
    drop(store);
    let store = Store::open(&url).unwrap();
    assert_eq!(indexes(), 3, "built again at the start");
    store.write(|tx| tx.drop_list_indexes()).unwrap();
    store.write(|tx| tx.ensure_list_indexes()).unwrap();
    assert_eq!(indexes(), 3);
}

#[test]
fn unknown_urls_are_refused() {
    assert!(matches!(Store::open("mysql://x").unwrap_err(), StoreError::UnsupportedUrl(_)));
    assert!(matches!(Store::open("sqlite://").unwrap_err(), StoreError::UnsupportedUrl(_)));
}

fn event(key: &str, id: &str, lead: Option<&str>, anon: Option<&str>, at: i64) -> NewEvent {
    NewEvent {
        write_key: key.into(),
        message_id: id.into(),
        lead_id: lead.map(Into::into),
        anonymous_id: anon.map(Into::into),
        group_id: None,
        event_type: MessageKind::Track,
        at,
        received_at: at + 1,
        body: format!(r#"{{"type":"track","messageId":"{id}"}}"#),
    }
}

fn score(total: f64, stage: &str, next: Option<i64>) -> StoredScore {
    StoredScore {
        scored_at: 100,
        model_version: 1,
        scores: [("fit".to_owned(), total)].into(),
        total,
        stage: stage.into(),
        grade: None,
        probability: None,
        contributions: Vec::new(),
        current_traits: serde_json::Map::new(),
        account_id: None,
        next_change_at: next,
        // As a model with stages `mql` then `sql` ranks them.
        stage_rank: match stage {
            "sql" => 0,
            "mql" => 1,
            "lead" => 2,
            _ => 3,
        },
    }
}

/// One dedupe key: a `messageId` counts once per person (the message's `userId`, else its
/// `anonymousId`), whichever write key sent it; the engine counts a `messageId` once per lead.
fn messages_are_deduplicated_per_person_and_message_id(store: &Store) {
    let batch = vec![
        event("k1", "a", Some("u"), None, 1),
        event("k1", "b", Some("u"), None, 2),
        event("k1", "a", Some("u"), None, 3),      // a resend within the batch
        event("k2", "a", Some("u"), None, 4),      // the same message through another write key
        event("k1", "a", Some("v"), None, 5),      // another person's message with the same id
        event("k1", "a", None, Some("anon-1"), 6), // an anonymous person's
        event("k2", "a", None, Some("anon-1"), 7),
    ];
    let stored = store.write(|tx| tx.insert_events(&batch)).unwrap();
    assert_eq!(stored, vec![0, 1, 4, 5]);
    let again = store.write(|tx| tx.insert_events(&batch)).unwrap();
    assert!(again.is_empty(), "a resent batch stores nothing: {again:?}");
    assert_eq!(store.read(|tx| tx.count_events()).unwrap(), 4);
    // Large batches are split below the parameter limit.
    let many: Vec<NewEvent> = (0..7000).map(|i| event("k3", &format!("m{i}"), Some("w"), None, i)).collect();
    assert_eq!(store.write(|tx| tx.insert_events(&many)).unwrap().len(), 7000);
}

fn a_lead_gets_its_own_and_its_stitched_anonymous_messages(store: &Store) {
    let mut group = event("k", "g", Some("u1"), None, 5);
    group.group_id = Some("acme".into());
    group.event_type = MessageKind::Group;
    let mut anon_group = event("k", "g2", None, Some("anon-2"), 6);
    anon_group.group_id = Some("acme".into());
    anon_group.event_type = MessageKind::Group;
    store
        .write(|tx| {
            tx.insert_events(&[
                event("k", "1", Some("u1"), Some("anon-1"), 1),
                event("k", "2", None, Some("anon-1"), 2),
                event("k", "3", None, Some("anon-9"), 3),
                event("k", "4", Some("u2"), Some("anon-1"), 4),
                group.clone(),
                anon_group.clone(),
            ])
        })
        .unwrap();
    let events = store.read(|tx| tx.events_of_leads(&["u1".to_owned()], &["anon-1".to_owned()])).unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e.at).collect();
    // Its own (1, 5) and anon-1's anonymous message (2); not u2's message that carries anon-1.
    assert_eq!(ids.len(), 3, "{events:?}");
    assert!(ids.contains(&1) && ids.contains(&2) && ids.contains(&5));
    let groups = store.read(|tx| tx.group_events(&["acme".to_owned()])).unwrap();
    assert_eq!(groups.len(), 2);
    let (leads, anons) = store.read(|tx| tx.members_of("acme")).unwrap();
    assert_eq!((leads, anons), (vec!["u1".to_owned()], vec!["anon-2".to_owned()]));
}

fn the_earliest_link_time_is_kept(store: &Store) {
    let link = |lead: &str, at| Link { anonymous_id: "anon".into(), lead_id: lead.into(), at };
    assert!(store.write(|tx| tx.add_link(&link("u1", 50))).unwrap());
    assert!(store.write(|tx| tx.add_link(&link("u1", 20))).unwrap());
    assert!(!store.write(|tx| tx.add_link(&link("u1", 30))).unwrap(), "a later link changes nothing");
    store.write(|tx| tx.add_link(&link("u2", 10))).unwrap();
    let mut links = store.read(|tx| tx.links_of_leads(&["u1".to_owned()])).unwrap();
    links.sort_by(|a, b| a.lead_id.cmp(&b.lead_id));
    assert_eq!(links, vec![link("u1", 20), link("u2", 10)], "u1's links and the competing ones");
    assert_eq!(store.read(|tx| tx.links_of_anonymous(&["anon".to_owned()])).unwrap().len(), 2);
}

/// Saves one lead's score; a visible change moves `updated_at` to the scoring time.
fn save_score(tx: &mut Tx<'_>, id: &str, score: &StoredScore, changed: bool) -> Result<(), StoreError> {
    let row = tx.lead_heads(&[id.to_owned()], false)?.pop().expect("the lead exists");
    let updated_at = if changed { score.scored_at } else { row.updated_at };
    let json = ScoreJson::of(score);
    tx.save_scores(&[ScoreWrite { lead: &row, score, json: &json, updated_at, state: None }])
}

fn scores_round_trip_with_nulls_and_floats(store: &Store) {
    assert!(store.write(|tx| tx.ensure_lead("u", 7)).unwrap());
    assert!(!store.write(|tx| tx.ensure_lead("u", 8)).unwrap());
    let fresh = store.read(|tx| tx.lead("u")).unwrap().unwrap();
    assert_eq!((fresh.created_at, fresh.updated_at, fresh.score.clone()), (7, 7, None));
    let mut s = score(12.345_678, "mql", Some(999));
    s.grade = Some("A1".into());
    s.probability = Some(0.125);
    s.account_id = Some("acme".into());
    store.write(|tx| save_score(tx, "u", &s, true)).unwrap();
    let row = store.read(|tx| tx.lead("u")).unwrap().unwrap();
    assert_eq!(row.score, Some(s.clone()));
    assert_eq!(row.updated_at, 100, "a visible change moves updated_at");
    let mut quiet = s.clone();
    quiet.scored_at = 200;
    quiet.next_change_at = None;
    store.write(|tx| save_score(tx, "u", &quiet, false)).unwrap();
    let row = store.read(|tx| tx.lead("u")).unwrap().unwrap();
    assert_eq!((row.updated_at, row.score.unwrap().next_change_at), (100, None));
    assert_eq!(store.read(|tx| tx.lead("nobody")).unwrap(), None);
}

fn seed_leads(store: &Store, n: usize) {
    store
        .write(|tx| {
            for i in 0..n {
                let id = format!("lead-{i:03}");
                tx.ensure_lead(&id, 0)?;
                let stage = ["lead", "mql", "sql"][i % 3];
                let mut s = score((i % 7) as f64 * 10.0, stage, None);
                s.scored_at = i as i64;
                s.grade = Some(if i % 2 == 0 { "A1" } else { "B2" }.into());
                s.account_id = Some(format!("acct-{}", i % 4));
                let owner = ["Ana Lopez", "ben"][i % 3 / 2];
                s.current_traits = serde_json::json!({"email": format!("person{i}@example.com"), "owner": owner})
                    .as_object()
                    .cloned()
                    .unwrap();
                save_score(tx, &id, &s, true)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

fn every_sort_pages_through_every_lead_once(store: &Store) {
    seed_leads(store, 23);
    for sort in [LeadSort::TotalDesc, LeadSort::TotalAsc, LeadSort::UpdatedDesc, LeadSort::CallNow] {
        let mut seen = Vec::new();
        let mut cursor: Option<LeadCursor> = None;
        loop {
            let page = store.read(|tx| tx.list_leads(&LeadFilter::default(), sort, 5, cursor.as_ref())).unwrap();
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap();
            cursor = Some(LeadCursor { key: Tx::sort_key(last, sort), id: last.id.clone() });
            seen.extend(page.into_iter().map(|r| (Tx::sort_key(&r, sort), r.id)));
        }
        assert_eq!(seen.len(), 23, "{sort:?}");
        let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 23, "{sort:?}: no lead twice");
        let keys: Vec<f64> = seen.iter().map(|(k, _)| *k).collect();
        let ordered = match sort {
            LeadSort::TotalDesc | LeadSort::UpdatedDesc => keys.windows(2).all(|w| w[0] >= w[1]),
            LeadSort::TotalAsc | LeadSort::CallNow => keys.windows(2).all(|w| w[0] <= w[1]),
        };
        assert!(ordered, "{sort:?}: {keys:?}");
    }
    let call = store.read(|tx| tx.list_leads(&LeadFilter::default(), LeadSort::CallNow, 100, None)).unwrap();
    let first_non_sql = call.iter().position(|r| r.score.as_ref().unwrap().stage != "sql").unwrap();
    assert!(call[first_non_sql..].iter().all(|r| r.score.as_ref().unwrap().stage != "sql"), "SQLs first");
}

fn filters_select_the_right_leads(store: &Store) {
    seed_leads(store, 30);
    let count =
        |filter: LeadFilter| store.read(|tx| tx.list_leads(&filter, LeadSort::TotalDesc, 1000, None)).unwrap().len();
    assert_eq!(count(LeadFilter { stage: Some("sql".into()), ..LeadFilter::default() }), 10);
    assert_eq!(count(LeadFilter { grade: Some("A1".into()), ..LeadFilter::default() }), 15);
    assert_eq!(count(LeadFilter { account: Some("acct-1".into()), ..LeadFilter::default() }), 8);
    let high = (0..30).filter(|i| (i % 7) * 10 >= 40).count();
    assert_eq!(count(LeadFilter { min_total: Some(40.0), ..LeadFilter::default() }), high);
    assert_eq!(count(LeadFilter { search: Some("PERSON17@".into()), ..LeadFilter::default() }), 1);
    assert_eq!(count(LeadFilter { search: Some("lead-00".into()), ..LeadFilter::default() }), 10);
    assert_eq!(store.read(|tx| tx.leads_of_account("acct-2")).unwrap().len(), 7);
    // The owner: a current trait, matched in any case; its values for the filter's list.
    let owner = |v: &str| LeadFilter { owner: Some(("owner".into(), v.into())), ..LeadFilter::default() };
    assert_eq!(count(owner("ana lopez")), 20);
    assert_eq!(count(owner("BEN")), 10);
    assert_eq!(count(owner("nobody")), 0);
    let values = store.read(|tx| tx.trait_values("owner", 10)).unwrap();
    assert_eq!(values, vec![("ana lopez".to_owned(), 20), ("ben".to_owned(), 10)]);
    assert_eq!(store.read(|tx| tx.open_leads_sample(100)).unwrap().len(), 30);
}

fn due_leads_come_earliest_first(store: &Store) {
    store
        .write(|tx| {
            for (id, next) in [("a", Some(300)), ("b", Some(100)), ("c", None), ("d", Some(200))] {
                tx.ensure_lead(id, 0)?;
                save_score(tx, id, &score(1.0, "lead", next), true)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let due = store.read(|tx| tx.due_leads(250, 10)).unwrap();
    assert_eq!(due, vec![("b".to_owned(), 100), ("d".to_owned(), 200)]);
    assert_eq!(store.read(|tx| tx.count_leads_not_scored_with(1)).unwrap(), 0);
    assert_eq!(store.read(|tx| tx.count_leads_not_scored_with(2)).unwrap(), 4);
    assert_eq!(store.read(|tx| tx.lead_ids_after("b", 2)).unwrap(), vec!["c".to_owned(), "d".to_owned()]);
}

fn outcomes_and_history_keep_their_order(store: &Store) {
    store
        .write(|tx| {
            tx.add_outcome(&OutcomeRow { lead_id: "u".into(), outcome: "won".into(), at: 20 }, 1)?;
            tx.add_outcome(&OutcomeRow { lead_id: "u".into(), outcome: "lost".into(), at: 10 }, 1)?;
            tx.append_histories(&[("u", HistoryRow { at: 5, stage: "mql".into(), total: 55.5, note: None })])?;
            tx.append_histories(&[("u", HistoryRow { at: 1, stage: "lead".into(), total: 0.0, note: None })])?;
            tx.append_histories(&[("u", HistoryRow { at: 5, stage: "sql".into(), total: 80.0, note: None })])?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let outcomes = store.read(|tx| tx.outcomes_of_leads(&["u".to_owned()])).unwrap();
    assert_eq!(outcomes.iter().map(|o| o.at).collect::<Vec<_>>(), vec![10, 20]);
    assert_eq!(store.read(|tx| tx.all_outcomes()).unwrap().len(), 2);
    let history = store.read(|tx| tx.history_of("u")).unwrap();
    let stages: Vec<&str> = history.iter().map(|h| h.stage.as_str()).collect();
    assert_eq!(stages, ["lead", "mql", "sql"], "by time, then by insertion");
    assert_eq!(history[1].total, 55.5);
    // Notes sit in the history; the sparklines' stage changes leave them out.
    store
        .write(|tx| {
            let note = HistoryRow { at: 7, stage: "sql".into(), total: 80.0, note: Some("contacted".into()) };
            tx.append_histories(&[("u", note)])
        })
        .unwrap();
    let history = store.read(|tx| tx.history_of("u")).unwrap();
    assert_eq!(history.last().unwrap().note.as_deref(), Some("contacted"));
    assert_eq!(store.read(|tx| tx.histories_of(&["u".to_owned()])).unwrap().len(), 3);
}

/// Leads that came into a stage lately: the last time each entered the stage it is in now.
fn leads_entering_a_stage_are_found_by_when_they_did(store: &Store) {
    store
        .write(|tx| {
            for (id, stage) in [("early", "sql"), ("back", "sql"), ("new", "sql"), ("left", "mql")] {
                tx.ensure_lead(id, 0)?;
                save_score(tx, id, &score(90.0, stage, None), true)?;
            }
            let row = |at, stage: &str| HistoryRow { at, stage: stage.into(), total: 1.0, note: None };
            tx.append_histories(&[
                ("early", row(10, "lead")),
                ("early", row(20, "sql")),
                ("early", HistoryRow { note: Some("contacted".into()), ..row(150, "sql") }),
                ("back", row(10, "sql")),
                ("back", row(50, "mql")),
                ("back", row(120, "sql")),
                ("new", row(10, "mql")),
                ("new", row(130, "sql")),
                ("new", row(140, "sql")),
                ("left", row(110, "sql")),
                ("left", row(115, "mql")),
            ])
        })
        .unwrap();
    let entered = store.read(|tx| tx.entered_stage_since("sql", 100)).unwrap();
    assert_eq!(entered, vec![("new".to_owned(), 130), ("back".to_owned(), 120)]);
}

fn one_model_version_is_active(store: &Store) {
    let v1 = store.write(|tx| tx.insert_model("m", "a = 1", 10)).unwrap();
    let v2 = store.write(|tx| tx.insert_model("m", "a = 2", 20)).unwrap();
    assert_eq!((v1, v2), (1, 2));
    assert!(store.write(|tx| tx.activate_model(v1, 30)).unwrap());
    assert!(store.write(|tx| tx.activate_model(v2, 40)).unwrap());
    assert!(!store.write(|tx| tx.activate_model(9, 50)).unwrap());
    let active = store.read(|tx| tx.active_model()).unwrap().unwrap();
    assert_eq!((active.version, active.source.as_str(), active.activated_at), (2, "a = 2", Some(40)));
    let all = store.read(|tx| tx.models()).unwrap();
    assert_eq!(all.iter().filter(|m| m.active).count(), 1);
    assert_eq!(store.read(|tx| tx.model(1)).unwrap().unwrap().activated_at, Some(30));
}

fn delivery(id: &str, lead: &str, at: i64) -> DeliveryRow {
    DeliveryRow {
        id: id.into(),
        lead_id: lead.into(),
        url: "http://127.0.0.1:9/hook".into(),
        body: "{}".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        created_at: at,
        next_attempt_at: at,
        last_attempt_at: None,
        last_error: None,
        delivered_at: None,
    }
}

fn deliveries_move_through_their_states(store: &Store) {
    store
        .write(|tx| {
            tx.enqueue_delivery(&delivery("d1", "u", 10))?;
            tx.enqueue_delivery(&delivery("d2", "u", 20))?;
            tx.enqueue_delivery(&delivery("d3", "v", 30))
        })
        .unwrap();
    let due = store.write(|tx| tx.due_deliveries(25, None, &[], 10)).unwrap();
    assert_eq!(due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d1", "d2"]);
    let mut d1 = due[0].clone();
    d1.status = DeliveryStatus::Delivered;
    d1.attempts = 1;
    d1.delivered_at = Some(26);
    let mut d2 = due[1].clone();
    d2.attempts = 1;
    d2.next_attempt_at = 1000;
    d2.last_error = Some("connection refused".into());
    store
        .write(|tx| {
            tx.update_delivery(&d1)?;
            tx.update_delivery(&d2)
        })
        .unwrap();
    assert_eq!(store.read(|tx| tx.delivery("d1")).unwrap().unwrap(), d1);
    assert_eq!(
        store
            .write(|tx| tx.due_deliveries(100, None, &[], 10))
            .unwrap()
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        ["d3"]
    );
    assert_eq!(store.read(|tx| tx.deliveries(Some(DeliveryStatus::Pending), 10)).unwrap().len(), 2);
    assert_eq!(store.read(|tx| tx.deliveries(None, 10)).unwrap()[0].id, "d3", "newest first");
}

fn deleting_a_lead_removes_every_row_naming_it(store: &Store) {
    store
        .write(|tx| {
            tx.insert_events(&[
                event("k", "1", Some("gone"), Some("anon-g"), 1),
                event("k", "2", None, Some("anon-g"), 2),
                event("k", "3", Some("kept"), None, 3),
            ])?;
            tx.add_link(&Link { anonymous_id: "anon-g".into(), lead_id: "gone".into(), at: 1 })?;
            for id in ["gone", "kept"] {
                tx.ensure_lead(id, 0)?;
                tx.add_outcome(&OutcomeRow { lead_id: id.into(), outcome: "won".into(), at: 5 }, 5)?;
                tx.append_histories(&[(id, HistoryRow { at: 1, stage: "lead".into(), total: 0.0, note: None })])?;
                tx.enqueue_delivery(&delivery(&format!("d-{id}"), id, 1))?;
                tx.mark_crm("hubspot", &[id], 1, 2)?;
                let s = score(10.0, "mql", Some(50));
                let json = ScoreJson::of(&s);
                tx.save_shadow_scores(9, &[ShadowWrite { lead_id: id, score: &s, json: &json, state: Some(b"x") }])?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(store.read(|tx| tx.rows_naming_lead("gone")).unwrap() >= 8);
    assert!(store.write(|tx| tx.delete_lead("gone", &["anon-g".to_owned()])).unwrap());
    assert_eq!(store.read(|tx| tx.rows_naming_lead("gone")).unwrap(), 0);
    assert_eq!(store.read(|tx| tx.events_of_leads(&["gone".to_owned()], &["anon-g".to_owned()])).unwrap(), vec![]);
    assert_eq!(store.read(|tx| tx.rows_naming_lead("kept")).unwrap(), 7, "the other lead is untouched");
    assert!(!store.write(|tx| tx.delete_lead("gone", &[])).unwrap());
}

fn each_receiver_gets_only_its_deliveries(store: &Store) {
    store
        .write(|tx| {
            let mut a = delivery("a1", "u", 10);
            a.url = "http://a/hook".into();
            let mut b = delivery("b1", "u", 10);
            b.url = "http://b/hook".into();
            let mut gone = delivery("c1", "u", 10);
            gone.url = "http://removed/hook".into();
            for d in [a, b, gone] {
                tx.enqueue_delivery(&d)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let ids = |url: Option<&str>, except: &[String]| -> Vec<String> {
        store.write(|tx| tx.due_deliveries(50, url, except, 10)).unwrap().into_iter().map(|d| d.id).collect()
    };
    assert_eq!(ids(Some("http://a/hook"), &[]), ["a1"]);
    assert_eq!(ids(Some("http://b/hook"), &[]), ["b1"]);
    assert_eq!(ids(None, &["http://a/hook".to_owned(), "http://b/hook".to_owned()]), ["c1"]);
    assert_eq!(ids(None, &[]).len(), 3);
}

/// `alias` from a previous user id: that id's messages (sent as `userId`) and its lead row go
/// with the lead, and so do anonymous messages stitched to either.
fn deleting_a_lead_removes_its_aliased_ids_too(store: &Store) {
    store
        .write(|tx| {
            tx.insert_events(&[
                event("k", "1", Some("old-id"), None, 1),
                event("k", "2", None, Some("anon-old"), 2),
                event("k", "3", Some("new-id"), None, 3),
                event("k", "4", Some("other"), None, 4),
            ])?;
            tx.add_link(&Link { anonymous_id: "old-id".into(), lead_id: "new-id".into(), at: 3 })?;
            tx.add_link(&Link { anonymous_id: "anon-old".into(), lead_id: "old-id".into(), at: 1 })?;
            for id in ["old-id", "new-id", "other"] {
                tx.ensure_lead(id, 0)?;
            }
            tx.add_unreadable(1, "test", 5)
        })
        .unwrap();
    let linked = vec!["old-id".to_owned(), "anon-old".to_owned()];
    assert!(store.write(|tx| tx.delete_lead("new-id", &linked)).unwrap());
    for id in ["new-id", "old-id"] {
        assert_eq!(store.read(|tx| tx.rows_naming_lead(id)).unwrap(), 0, "{id}");
    }
    assert_eq!(store.read(|tx| tx.count_events()).unwrap(), 1, "only `other`'s message is left");
    assert_eq!(store.read(|tx| tx.count_leads()).unwrap(), 1);
    assert!(store.read(|tx| tx.unreadable_events(10)).unwrap().is_empty(), "the deleted message's entry went too");
}

fn sessions_expire_and_are_looked_up_by_digest(store: &Store) {
    let row = SessionRow {
        token_digest: "d1".into(),
        role: "read".into(),
        key_fingerprint: "f".into(),
        csrf: "c".into(),
        created_at: 10,
        expires_at: 100,
    };
    store.write(|tx| tx.insert_session(&row)).unwrap();
    assert_eq!(store.read(|tx| tx.session("d1", 50)).unwrap(), Some(row));
    assert_eq!(store.read(|tx| tx.session("d1", 100)).unwrap(), None, "expired");
    assert_eq!(store.read(|tx| tx.session("other", 50)).unwrap(), None);
    assert_eq!(store.write(|tx| tx.purge_sessions(100)).unwrap(), 1);
    store.write(|tx| tx.delete_session("d1")).unwrap();
}

fn unreadable_messages_are_listed_once(store: &Store) {
    store.write(|tx| tx.insert_events(&[event("k", "bad", Some("u"), None, 10)])).unwrap();
    store
        .write(|tx| {
            tx.add_unreadable(1, "first reason", 20)?;
            tx.add_unreadable(1, "second reason", 30)
        })
        .unwrap();
    let list = store.read(|tx| tx.unreadable_events(10)).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].reason.as_str(), list[0].found_at, list[0].message_id.as_str()), ("first reason", 20, "bad"));
    assert_eq!(list[0].lead_id.as_deref(), Some("u"));
}

fn the_readiness_probe_writes(store: &Store) {
    store.write(|tx| tx.touch_readiness(1)).unwrap();
    store.write(|tx| tx.touch_readiness(2)).unwrap();
}

fn a_failed_transaction_leaves_nothing_behind(store: &Store) {
    let result: Result<(), StoreError> = store.write(|tx| {
        tx.insert_events(&[event("k", "x", Some("u"), None, 1)])?;
        tx.ensure_lead("u", 1)?;
        Err(StoreError::Backend("the use case failed".into()))
    });
    assert!(result.is_err());
    assert_eq!(store.read(|tx| tx.count_events()).unwrap(), 0);
    assert_eq!(store.read(|tx| tx.count_leads()).unwrap(), 0);
}

/// Re-ranking for another model's stage order changes the call-now order of every scored lead,
/// and writes nothing when the order is already right.
fn stage_ranks_follow_the_active_models_order(store: &Store) {
    seed_leads(store, 9);
    let call_stages = |store: &Store| -> Vec<String> {
        let rows = store.read(|tx| tx.list_leads(&LeadFilter::default(), LeadSort::CallNow, 100, None)).unwrap();
        let mut stages: Vec<String> = rows.into_iter().map(|r| r.score.unwrap().stage).collect();
        stages.dedup();
        stages
    };
    assert_eq!(call_stages(store), ["sql", "mql", "lead"]);
    let ranks = |order: &[&str]| order.iter().enumerate().map(|(i, s)| ((*s).to_owned(), i as i64)).collect::<Vec<_>>();
    let changed = store.write(|tx| tx.rank_stages(&ranks(&["mql", "lead", "sql"]), 3)).unwrap();
    assert_eq!(changed, 9);
    assert_eq!(call_stages(store), ["mql", "lead", "sql"]);
    assert_eq!(store.write(|tx| tx.rank_stages(&ranks(&["mql", "lead", "sql"]), 3)).unwrap(), 0);
    // A stage the model does not have ranks as `other`.
    assert_eq!(store.write(|tx| tx.rank_stages(&ranks(&["lead", "sql"]), 9)).unwrap(), 9);
    assert_eq!(call_stages(store), ["lead", "sql", "mql"]);
}

/// A score's JSON columns hold a point that is not a finite number as `null`; reading it back
/// loses that entry only, never the lead's other dimensions or contributions.
fn a_point_that_is_not_a_number_leaves_out_only_itself(store: &Store) {
    store.write(|tx| tx.ensure_lead("nan", 1)).unwrap();
    let mut score = score(5.0, "lead", None);
    score.scores.insert("engagement".to_owned(), f64::NAN);
    let contribution = |rule: &str, points: f64| StoredContribution {
        dimension: "fit".to_owned(),
        last_matched_at: None,
        matched: 1,
        points,
        rule: rule.to_owned(),
    };
    score.contributions = vec![contribution("a", f64::INFINITY), contribution("b", 5.0)];
    store.write(|tx| save_score(tx, "nan", &score, true)).unwrap();
    let back = store.read(|tx| tx.lead("nan")).unwrap().unwrap().score.unwrap();
    assert_eq!(back.scores, [("fit".to_owned(), 5.0)].into());
    assert_eq!(back.contributions, vec![contribution("b", 5.0)]);
    let sample = store.read(|tx| tx.score_sample(10)).unwrap();
    assert_eq!(sample.iter().find(|s| s.id == "nan").map(|s| s.scores.clone()), Some([("fit".to_owned(), 5.0)].into()));
}

fn the_crm_outbox_coalesces_changes_per_lead(store: &Store) {
    // Two changes of `a` before it is sent: one row, due at the first change's debounce.
    store.write(|tx| tx.mark_crm("hs", &["a", "b"], 10, 70)).unwrap();
    store.write(|tx| tx.mark_crm("hs", &["a"], 20, 80)).unwrap();
    store.write(|tx| tx.mark_crm("other", &["a"], 20, 80)).unwrap();
    assert!(store.write(|tx| tx.due_crm("hs", 69, 10)).unwrap().is_empty(), "not due before the debounce");
    let due = store.write(|tx| tx.due_crm("hs", 70, 10)).unwrap();
    assert_eq!(
        due.iter().map(|r| (r.lead_id.as_str(), r.version, r.changed_at)).collect::<Vec<_>>(),
        [("a", 2, 10), ("b", 1, 10)]
    );
    store.write(|tx| tx.lease_crm("hs", &["a".to_owned(), "b".to_owned()], 1_000)).unwrap();
    assert!(store.write(|tx| tx.due_crm("hs", 999, 10)).unwrap().is_empty(), "leased");
    // `b` changes while it is being sent: its write is not final.
    store.write(|tx| tx.mark_crm("hs", &["b"], 75, 135)).unwrap();
    let sent = |row: &CrmRow| CrmRow {
        status: DeliveryStatus::Delivered,
        sent_at: Some(80),
        sent: Some("{\"leadscore_total\":\"1\"}".into()),
        last_attempt_at: Some(80),
        ..row.clone()
    };
    assert!(store.write(|tx| tx.finish_crm(&sent(&due[0]), 2, 140)).unwrap());
    assert!(!store.write(|tx| tx.finish_crm(&sent(&due[1]), 1, 140)).unwrap());
    let a = store.read(|tx| tx.crm_row("hs", "a")).unwrap().unwrap();
    assert_eq!((a.status, a.sent_at), (DeliveryStatus::Delivered, Some(80)));
    let b = store.read(|tx| tx.crm_row("hs", "b")).unwrap().unwrap();
    assert_eq!((b.status, b.next_attempt_at, b.sent_at, b.version), (DeliveryStatus::Pending, 140, Some(80), 2));
    // A failed attempt keeps its backoff when another change comes; a delivered row starts over.
    let failed = CrmRow { attempts: 1, next_attempt_at: 500, last_error: Some("HTTP 503".into()), ..b.clone() };
    assert!(store.write(|tx| tx.finish_crm(&failed, 2, 0)).unwrap());
    store.write(|tx| tx.mark_crm("hs", &["a", "b"], 200, 260)).unwrap();
    let a = store.read(|tx| tx.crm_row("hs", "a")).unwrap().unwrap();
    assert_eq!((a.status, a.changed_at, a.next_attempt_at, a.attempts), (DeliveryStatus::Pending, 200, 260, 0));
    let b = store.read(|tx| tx.crm_row("hs", "b")).unwrap().unwrap();
    assert_eq!((b.changed_at, b.next_attempt_at, b.attempts), (80, 500, 1));
    assert_eq!(store.read(|tx| tx.crm_counts("hs")).unwrap(), [(DeliveryStatus::Pending, 2)]);
    assert_eq!(store.read(|tx| tx.crm_rows("other", None, 10)).unwrap().len(), 1, "each sync has its own rows");
    assert!(store.write(|tx| tx.resend_crm("hs", "b", 300)).unwrap());
    assert_eq!(store.read(|tx| tx.crm_row("hs", "b")).unwrap().unwrap().next_attempt_at, 300);
    assert!(!store.write(|tx| tx.resend_crm("hs", "nobody", 300)).unwrap());
    store.write(|tx| tx.forget_crm("hs", &["a".to_owned()])).unwrap();
    assert_eq!(store.read(|tx| tx.crm_rows("hs", Some(DeliveryStatus::Pending), 10)).unwrap().len(), 1);
}

fn leads_are_found_by_a_trait(store: &Store) {
    store
        .write(|tx| {
            for (id, traits) in [
                ("a", serde_json::json!({"hubspot_id": 501, "email": "Ann@X.com"})),
                ("b", serde_json::json!({"hubspot_id": "502", "email": "bob@x.com"})),
                ("c", serde_json::json!({"email": "carl@x.com"})),
            ] {
                let mut s = score(1.0, "lead", None);
                s.current_traits = traits.as_object().unwrap().clone();
                tx.ensure_lead(id, 0)?;
                save_score(tx, id, &s, true)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let mut found =
        store.read(|tx| tx.leads_by_trait("hubspot_id", &["501".into(), "502".into(), "999".into()])).unwrap();
    found.sort();
    assert_eq!(found, [("a".to_owned(), "501".to_owned()), ("b".to_owned(), "502".to_owned())], "numbers and strings");
    let found = store.read(|tx| tx.leads_by_trait("email", &["ann@x.com".into()])).unwrap();
    assert_eq!(found, [("a".to_owned(), "ann@x.com".to_owned())], "e-mails without case");
    assert!(store.read(|tx| tx.leads_by_trait("email", &[])).unwrap().is_empty());
}

fn shadow_scores_are_kept_per_lead_and_version(store: &Store) {
    seed_leads(store, 3);
    let (v1, v2, v3) = store
        .write(|tx| {
            let v1 = tx.insert_model("a", "a", 1)?;
            let v2 = tx.insert_model("b", "b", 2)?;
            let v3 = tx.insert_model("c", "c", 3)?;
            tx.activate_model(v1, 4)?;
            assert!(tx.set_shadow(v2, true)? && tx.set_shadow(v3, true)?);
            assert!(!tx.set_shadow(99, true)?);
            Ok::<_, StoreError>((v1, v2, v3))
        })
        .unwrap();
    let shadows: Vec<(i64, bool)> =
        store.read(|tx| tx.shadow_models()).unwrap().iter().map(|m| (m.version, m.shadow)).collect();
    assert_eq!(shadows, vec![(v2, true), (v3, true)]);
    assert_eq!(store.read(|tx| tx.leads_without_shadow(v2, "", 10)).unwrap().len(), 3);
    // lead-000 and lead-001 scored by v2 (one twice: the second write wins), lead-000 by v3.
    store
        .write(|tx| {
            let mut first = score(12.5, "mql", Some(500));
            first.probability = Some(0.25);
            first.grade = Some("A1".into());
            let later = score(40.0, "sql", Some(300));
            let other = score(1.0, "lead", None);
            let (j1, j2, j3) = (ScoreJson::of(&first), ScoreJson::of(&later), ScoreJson::of(&other));
            tx.save_shadow_scores(
                v2,
                &[
                    ShadowWrite { lead_id: "lead-000", score: &first, json: &j1, state: Some(b"state-0") },
                    ShadowWrite { lead_id: "lead-001", score: &first, json: &j1, state: None },
                ],
            )?;
            tx.save_shadow_scores(
                v2,
                &[ShadowWrite { lead_id: "lead-001", score: &later, json: &j2, state: Some(b"s1") }],
            )?;
            tx.save_shadow_scores(v3, &[ShadowWrite { lead_id: "lead-000", score: &other, json: &j3, state: None }])?;
            tx.add_outcome(&OutcomeRow { lead_id: "lead-001".into(), outcome: "won".into(), at: 5 }, 5)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let ids = vec!["lead-000".to_owned(), "lead-001".to_owned(), "lead-002".to_owned()];
    let states = store.read(|tx| tx.shadow_states(v2, &ids)).unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states["lead-000"], b"state-0".to_vec());
    let rows = store.read(|tx| tx.shadow_scores_of(&ids)).unwrap();
    let seen: Vec<(i64, &str, f64, &str)> =
        rows.iter().map(|r| (r.model_version, r.lead_id.as_str(), r.total, r.stage.as_str())).collect();
    assert_eq!(seen, vec![(v2, "lead-000", 12.5, "mql"), (v2, "lead-001", 40.0, "sql"), (v3, "lead-000", 1.0, "lead")]);
    assert_eq!((rows[0].probability, rows[0].grade.as_deref()), (Some(0.25), Some("A1")));
    assert_eq!(rows[0].scores["fit"], 12.5);
    assert_eq!(store.read(|tx| tx.leads_without_shadow(v2, "", 10)).unwrap(), vec!["lead-002".to_owned()]);
    assert_eq!(store.read(|tx| tx.count_shadow_scores(v2)).unwrap(), 2);
    // Due changes, earliest first; a cleared one is no longer due.
    let due = store.read(|tx| tx.due_shadow_scores(1_000, 10)).unwrap();
    assert_eq!(due, vec![(v2, "lead-001".to_owned(), 300), (v2, "lead-000".to_owned(), 500)]);
    store.write(|tx| tx.clear_shadow_changes(v2, &["lead-001".to_owned()])).unwrap();
    assert_eq!(store.read(|tx| tx.due_shadow_scores(1_000, 10)).unwrap().len(), 1);
    // Both models' stages side by side, with conversions.
    let pairs = store.read(|tx| tx.stage_pairs(v2)).unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[1].lead_id, "lead-001");
    assert_eq!(pairs[1].shadow.as_ref().map(|(s, t)| (s.as_str(), *t)), Some(("sql", 40.0)));
    assert!(pairs[1].converted && !pairs[0].converted);
    assert_eq!(pairs[2].shadow, None);
    assert!(pairs[0].active.is_some());
    // Stopping forgets a shadow's scores; promoting one (activation) ends its shadow.
    store.write(|tx| tx.set_shadow(v3, false)).unwrap();
    assert_eq!(store.read(|tx| tx.shadow_scores_of(&ids)).unwrap().len(), 2);
    store.write(|tx| tx.activate_model(v2, 9)).unwrap();
    assert!(store.read(|tx| tx.shadow_models()).unwrap().is_empty());
    assert_eq!(store.read(|tx| tx.count_shadow_scores(v2)).unwrap(), 0);
    let active = store.read(|tx| tx.model(v2)).unwrap().unwrap();
    assert!(active.active && !active.shadow);
    assert!(!store.read(|tx| tx.model(v1)).unwrap().unwrap().active);
}
