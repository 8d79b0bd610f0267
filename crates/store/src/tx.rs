//! Every statement Leadscore runs, once for both backends: events (deduplicated per write key and
//! `messageId`), identity links, leads and their current scores, outcomes, stage history, model
//! versions and webhook deliveries.

use std::collections::HashSet;

use leadscore_core::time::Millis;

use crate::StoreError;
use crate::sql::{Conn, Dialect, Row, Sql};

/// An open transaction (see [`crate::Store::write`] and [`crate::Store::read`]).
pub struct Tx<'a> {
    pub(crate) conn: &'a mut dyn Conn,
}

/// A message to store, already validated and normalised by ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub write_key: String,
    pub message_id: String,
    /// `userId`.
    pub lead_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub group_id: Option<String>,
    pub event_type: String,
    /// The resolved event time.
    pub at: Millis,
    pub received_at: Millis,
    /// The normalised message, as JSON.
    pub body: String,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub lead_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub at: Millis,
    pub body: String,
}

/// An anonymous id linked to a lead (by `identify` with both ids, or `alias`) from `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub anonymous_id: String,
    pub lead_id: String,
    pub at: Millis,
}

/// A lead and its current score.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    pub id: String,
    /// Base traits (from imports), JSON object.
    pub traits: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub score: Option<StoredScore>,
}

/// The score stored for a lead: what the lists show and what stage changes compare against.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScore {
    pub scored_at: Millis,
    pub model_version: i64,
    /// JSON object: dimension -> points.
    pub scores: String,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    pub probability: Option<f64>,
    /// JSON array of contributions.
    pub contributions: String,
    /// JSON object: the traits as of `scored_at` (base + identify).
    pub current_traits: String,
    pub account_id: Option<String>,
    /// When time alone will next change the score (the scheduler's due time).
    pub next_change_at: Option<Millis>,
    /// Where the lead comes in a "call now" list (`CheckedModel::stage_rank` of its stage).
    pub stage_rank: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    pub lead_id: String,
    pub outcome: String,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub at: Millis,
    pub stage: String,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    pub version: i64,
    pub name: String,
    pub source: String,
    pub created_at: Millis,
    pub activated_at: Option<Millis>,
    pub active: bool,
}

/// A webhook delivery (the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub lead_id: String,
    pub url: String,
    pub body: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub created_at: Millis,
    pub next_attempt_at: Millis,
    pub last_attempt_at: Option<Millis>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Millis>,
}

/// A stored message found unreadable (see `add_unreadable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRow {
    pub seq: i64,
    pub reason: String,
    pub found_at: Millis,
    pub message_id: String,
    pub lead_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub event_type: String,
    pub received_at: Millis,
    pub body: String,
}

/// A dashboard session. The token itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_digest: String,
    /// `read` or `admin`.
    pub role: String,
    /// Which key logged in (a digest prefix): the session ends when that key is removed.
    pub key_fingerprint: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// How lead lists are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadSort {
    /// `-total`: highest first.
    TotalDesc,
    /// `total`: lowest first.
    TotalAsc,
    /// `-updated`: most recently changed first.
    UpdatedDesc,
    /// Sales' "call now": SQLs first, then MQLs, then the rest, each by total.
    CallNow,
}

/// Which leads a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadFilter {
    pub stage: Option<String>,
    pub grade: Option<String>,
    pub min_total: Option<f64>,
    pub account: Option<String>,
    /// Substring of the id or current traits, any case.
    pub search: Option<String>,
}

/// Where a page of leads continues: the sort key and id of the last lead shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadCursor {
    pub key: f64,
    pub id: String,
}

const LEAD_COLUMNS: &str = "id, traits, created_at, updated_at, scored_at, model_version, scores, total, stage, grade, \
     probability, contributions, current_traits, account_id, next_change_at, stage_rank";

/// The "call now" rank of a lead that has none (not scored yet): after every ranked lead.
pub const UNRANKED: i64 = 1_000_000;

const EVENT_COLUMNS: &str = "seq, lead_id, anonymous_id, at, body";

const DELIVERY_COLUMNS: &str = "id, lead_id, url, body, status, attempts, created_at, next_attempt_at, \
     last_attempt_at, last_error, delivered_at";

/// Row accessors that name the column at fault.
fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    row.get(i)
        .and_then(Sql::text)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Corrupt(format!("column {i}: expected text, got {:?}", row.get(i))))
}

fn opt_text(row: &Row, i: usize) -> Option<String> {
    row.get(i).and_then(Sql::text).map(str::to_owned)
}

fn int(row: &Row, i: usize) -> Result<i64, StoreError> {
    row.get(i)
        .and_then(Sql::int)
        .ok_or_else(|| StoreError::Corrupt(format!("column {i}: expected an integer, got {:?}", row.get(i))))
}

fn opt_int(row: &Row, i: usize) -> Option<i64> {
    row.get(i).and_then(Sql::int)
}

fn real(row: &Row, i: usize) -> Result<f64, StoreError> {
    row.get(i)
        .and_then(Sql::real)
        .ok_or_else(|| StoreError::Corrupt(format!("column {i}: expected a number, got {:?}", row.get(i))))
}

fn opt_real(row: &Row, i: usize) -> Option<f64> {
    row.get(i).and_then(Sql::real)
}

fn lead_row(row: &Row) -> Result<LeadRow, StoreError> {
    let score = match opt_int(row, 4) {
        Some(scored_at) => Some(StoredScore {
            scored_at,
            model_version: opt_int(row, 5).unwrap_or(0),
            scores: text(row, 6)?,
            total: real(row, 7)?,
            stage: text(row, 8)?,
            grade: opt_text(row, 9),
            probability: opt_real(row, 10),
            contributions: text(row, 11)?,
            current_traits: text(row, 12)?,
            account_id: opt_text(row, 13),
            next_change_at: opt_int(row, 14),
            stage_rank: opt_int(row, 15).unwrap_or(UNRANKED),
        }),
        None => None,
    };
    Ok(LeadRow { id: text(row, 0)?, traits: text(row, 1)?, created_at: int(row, 2)?, updated_at: int(row, 3)?, score })
}

fn event_row(row: &Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: int(row, 0)?,
        lead_id: opt_text(row, 1),
        anonymous_id: opt_text(row, 2),
        at: int(row, 3)?,
        body: text(row, 4)?,
    })
}

fn link_row(row: &Row) -> Result<Link, StoreError> {
    Ok(Link { anonymous_id: text(row, 0)?, lead_id: text(row, 1)?, at: int(row, 2)? })
}

fn outcome_row(row: &Row) -> Result<OutcomeRow, StoreError> {
    Ok(OutcomeRow { lead_id: text(row, 0)?, outcome: text(row, 1)?, at: int(row, 2)? })
}

fn delivery_row(row: &Row) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: text(row, 0)?,
        lead_id: text(row, 1)?,
        url: text(row, 2)?,
        body: text(row, 3)?,
        status: text(row, 4)?,
        attempts: int(row, 5)?,
        created_at: int(row, 6)?,
        next_attempt_at: int(row, 7)?,
        last_attempt_at: opt_int(row, 8),
        last_error: opt_text(row, 9),
        delivered_at: opt_int(row, 10),
    })
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Most parameters one statement binds (SQLite's default limit is 32766).
const MAX_PARAMS: usize = 30_000;

impl Tx<'_> {
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    // ---- events ----------------------------------------------------------------------------

    /// Stores the events whose (write key, messageId) is new; returns the indices (into
    /// `events`) of those stored. Duplicates, in the store or earlier in `events`, are skipped.
    pub fn insert_events<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e NewEvent>,
    ) -> Result<Vec<usize>, StoreError> {
        const COLUMNS: usize = 9;
        let events: Vec<&NewEvent> = events.into_iter().collect();
        const PER_STATEMENT: usize = MAX_PARAMS / COLUMNS;
        let mut inserted = Vec::new();
        for (chunk_index, chunk) in events.chunks(PER_STATEMENT).enumerate() {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS))).collect();
            let sql = format!(
                "INSERT INTO events (write_key, message_id, lead_id, anonymous_id, group_id, event_type, at, \
                 received_at, body) VALUES {} ON CONFLICT (write_key, message_id) DO NOTHING \
                 RETURNING write_key, message_id",
                values.join(", ")
            );
            let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
            for e in chunk {
                params.extend([
                    Sql::from(e.write_key.as_str()),
                    Sql::from(e.message_id.as_str()),
                    Sql::from(e.lead_id.as_deref()),
                    Sql::from(e.anonymous_id.as_deref()),
                    Sql::from(e.group_id.as_deref()),
                    Sql::from(e.event_type.as_str()),
                    Sql::Int(e.at),
                    Sql::Int(e.received_at),
                    Sql::from(e.body.as_str()),
                ]);
            }
            let mut new: HashSet<(String, String)> = self
                .conn
                .query(&sql, &params)?
                .into_iter()
                .filter_map(|mut r| {
                    let id = r.pop()?.into_text()?;
                    let key = r.pop()?.into_text()?;
                    Some((key, id))
                })
                .collect();
            for (i, e) in chunk.iter().enumerate() {
                // The first copy of a messageId within the batch is the one stored.
                if new.remove(&(e.write_key.clone(), e.message_id.clone())) {
                    inserted.push(chunk_index * PER_STATEMENT + i);
                }
            }
        }
        Ok(inserted)
    }

    /// Every `group` message for these accounts (their traits over time).
    pub fn group_events(&mut self, group_ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE group_id IN ({{in}}) AND event_type = 'group' ORDER BY seq"
        );
        self.query_in(&sql, group_ids)?.iter().map(event_row).collect()
    }

    /// The leads (by `userId`) and anonymous ids that sent `group` messages for `group_id`.
    pub fn members_of(&mut self, group_id: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let rows = self.conn.query(
            "SELECT DISTINCT lead_id, anonymous_id FROM events WHERE group_id = $1 AND event_type = 'group'",
            &[group_id.into()],
        )?;
        let mut leads = Vec::new();
        let mut anonymous = Vec::new();
        for row in &rows {
            match (opt_text(row, 0), opt_text(row, 1)) {
                (Some(lead), _) => leads.push(lead),
                (None, Some(anon)) => anonymous.push(anon),
                (None, None) => {}
            }
        }
        leads.sort();
        leads.dedup();
        anonymous.sort();
        anonymous.dedup();
        Ok((leads, anonymous))
    }

    pub fn count_events(&mut self) -> Result<i64, StoreError> {
        self.scalar_int("SELECT COUNT(*) FROM events", &[])
    }

    // ---- identity --------------------------------------------------------------------------

    /// Records that `anonymous_id` was linked to `lead_id` at `at` (the earliest such time is
    /// kept). Returns whether anything changed.
    pub fn add_link(&mut self, link: &Link) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO links (anonymous_id, lead_id, at) VALUES ($1, $2, $3) \
             ON CONFLICT (anonymous_id, lead_id) DO UPDATE SET at = excluded.at WHERE excluded.at < links.at",
            &[link.anonymous_id.as_str().into(), link.lead_id.as_str().into(), Sql::Int(link.at)],
        )?;
        Ok(n > 0)
    }

    /// Every link of these anonymous ids.
    pub fn links_of_anonymous(&mut self, anonymous_ids: &[String]) -> Result<Vec<Link>, StoreError> {
        let sql = "SELECT anonymous_id, lead_id, at FROM links WHERE anonymous_id IN ({in})";
        self.query_in(sql, anonymous_ids)?.iter().map(link_row).collect()
    }

    // ---- leads -----------------------------------------------------------------------------

    /// Creates the lead if it does not exist yet. Returns whether it was created.
    pub fn ensure_lead(&mut self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO leads (id, created_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT (id) DO NOTHING",
            &[id.into(), Sql::Int(now)],
        )?;
        Ok(n > 0)
    }

    /// Creates the leads that do not exist yet.
    pub fn ensure_leads(&mut self, ids: &[String], now: Millis) -> Result<(), StoreError> {
        for chunk in ids.chunks(MAX_PARAMS / 2) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, $1, $1)", i + 2)).collect();
            let sql = format!(
                "INSERT INTO leads (id, created_at, updated_at) VALUES {} ON CONFLICT (id) DO NOTHING",
                values.join(", ")
            );
            let mut params = vec![Sql::Int(now)];
            params.extend(chunk.iter().map(|id| Sql::from(id.as_str())));
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// Serialises writers on these leads until the transaction ends (PostgreSQL: advisory locks
    /// in a fixed order, so two processes never deadlock; SQLite: the write transaction already
    /// excludes other writers).
    pub fn lock_leads(&mut self, ids: &[String]) -> Result<(), StoreError> {
        if self.dialect() != Dialect::Postgres || ids.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&String> = ids.iter().collect();
        sorted.sort();
        sorted.dedup();
        // One round trip per chunk; volatile functions run after ORDER BY, so locks are taken
        // in id order.
        for chunk in sorted.chunks(1000) {
            let values: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i})")).collect();
            let sql = format!(
                "SELECT pg_advisory_xact_lock(hashtextextended(column1, 0)) FROM (VALUES {}) AS v ORDER BY column1",
                values.join(", ")
            );
            let params: Vec<Sql> = chunk.iter().map(|id| Sql::from(id.as_str())).collect();
            self.conn.query(&sql, &params)?;
        }
        Ok(())
    }

    /// The leads with these ids (those that exist).
    pub fn leads_by_ids(&mut self, ids: &[String]) -> Result<Vec<LeadRow>, StoreError> {
        self.query_in(&format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id IN ({{in}})"), ids)?
            .iter()
            .map(lead_row)
            .collect()
    }

    /// Every link naming one of these leads, and every other link of the same anonymous ids.
    pub fn links_of_leads(&mut self, ids: &[String]) -> Result<Vec<Link>, StoreError> {
        let sql = "SELECT anonymous_id, lead_id, at FROM links WHERE anonymous_id IN \
                   (SELECT anonymous_id FROM links WHERE lead_id IN ({in}))";
        let mut out = self.query_in(sql, ids)?.iter().map(link_row).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (&a.anonymous_id, &a.lead_id).cmp(&(&b.anonymous_id, &b.lead_id)));
        out.dedup();
        Ok(out)
    }

    /// The messages naming these leads directly, plus anonymous messages of these anonymous ids.
    pub fn events_of_leads(
        &mut self,
        ids: &[String],
        anonymous_ids: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut rows = self.query_in(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE lead_id IN ({{in}})"), ids)?;
        let anonymous =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE lead_id IS NULL AND anonymous_id IN ({{in}})");
        rows.extend(self.query_in(&anonymous, anonymous_ids)?);
        rows.iter().map(event_row).collect()
    }

    /// The outcomes of these leads.
    pub fn outcomes_of_leads(&mut self, ids: &[String]) -> Result<Vec<OutcomeRow>, StoreError> {
        let sql = "SELECT lead_id, outcome, at FROM outcomes WHERE lead_id IN ({in}) ORDER BY at, seq";
        self.query_in(sql, ids)?.iter().map(outcome_row).collect()
    }

    /// Stores many leads' new scores in a few statements. Each entry gives the lead's
    /// `updated_at` to keep (the old one, or the scoring time for a visible change).
    pub fn save_scores(&mut self, scores: &[(&LeadRow, &StoredScore, Millis)]) -> Result<(), StoreError> {
        const COLUMNS: usize = 16;
        for chunk in scores.chunks(MAX_PARAMS / COLUMNS) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS))).collect();
            let sql = format!(
                "INSERT INTO leads ({LEAD_COLUMNS}) VALUES {} ON CONFLICT (id) DO UPDATE SET \
                 updated_at = excluded.updated_at, scored_at = excluded.scored_at, \
                 model_version = excluded.model_version, scores = excluded.scores, total = excluded.total, \
                 stage = excluded.stage, grade = excluded.grade, probability = excluded.probability, \
                 contributions = excluded.contributions, current_traits = excluded.current_traits, \
                 account_id = excluded.account_id, next_change_at = excluded.next_change_at, \
                 stage_rank = excluded.stage_rank",
                values.join(", ")
            );
            let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
            for (row, score, updated_at) in chunk {
                params.extend([
                    Sql::from(row.id.as_str()),
                    Sql::from(row.traits.as_str()),
                    Sql::Int(row.created_at),
                    Sql::Int(*updated_at),
                    Sql::Int(score.scored_at),
                    Sql::Int(score.model_version),
                    Sql::from(score.scores.as_str()),
                    Sql::Real(score.total),
                    Sql::from(score.stage.as_str()),
                    Sql::from(score.grade.as_deref()),
                    Sql::from(score.probability),
                    Sql::from(score.contributions.as_str()),
                    Sql::from(score.current_traits.as_str()),
                    Sql::from(score.account_id.as_deref()),
                    Sql::from(score.next_change_at),
                    Sql::Int(score.stage_rank),
                ]);
            }
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// Appends many history entries at once.
    pub fn append_histories(&mut self, entries: &[(&str, HistoryRow)]) -> Result<(), StoreError> {
        for chunk in entries.chunks(MAX_PARAMS / 4) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("({})", placeholders(i * 4 + 1, 4))).collect();
            let sql = format!("INSERT INTO history (lead_id, at, stage, total) VALUES {}", values.join(", "));
            let mut params = Vec::with_capacity(chunk.len() * 4);
            for (lead, h) in chunk {
                params.extend([Sql::from(*lead), Sql::Int(h.at), Sql::from(h.stage.as_str()), Sql::Real(h.total)]);
            }
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    pub fn lead(&mut self, id: &str) -> Result<Option<LeadRow>, StoreError> {
        let rows = self.conn.query(&format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1"), &[id.into()])?;
        rows.first().map(lead_row).transpose()
    }

    /// A page of leads.
    pub fn list_leads(
        &mut self,
        filter: &LeadFilter,
        sort: LeadSort,
        limit: usize,
        cursor: Option<&LeadCursor>,
    ) -> Result<Vec<LeadRow>, StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut params: Vec<Sql> = Vec::new();
        let mut bind = |clauses: &mut Vec<String>, template: &str, values: Vec<Sql>| {
            let mut clause = template.to_owned();
            for (k, v) in values.into_iter().enumerate() {
                params.push(v);
                clause = clause.replace(&format!("?{k}"), &format!("${}", params.len()));
            }
            clauses.push(clause);
        };
        if let Some(stage) = &filter.stage {
            bind(&mut clauses, "stage = ?0", vec![stage.as_str().into()]);
        }
        if let Some(grade) = &filter.grade {
            bind(&mut clauses, "grade = ?0", vec![grade.as_str().into()]);
        }
        if let Some(min) = filter.min_total {
            bind(&mut clauses, "total >= ?0", vec![Sql::Real(min)]);
        }
        if let Some(account) = &filter.account {
            bind(&mut clauses, "account_id = ?0", vec![account.as_str().into()]);
        }
        if let Some(search) = &filter.search {
            let pattern = format!("%{}%", search.to_lowercase().replace(['%', '_'], ""));
            bind(
                &mut clauses,
                "(lower(id) LIKE ?0 OR lower(current_traits) LIKE ?1)",
                vec![pattern.clone().into(), pattern.into()],
            );
        }
        let (key, order) = match sort {
            LeadSort::TotalDesc => ("total", "total DESC, id ASC"),
            LeadSort::TotalAsc => ("total", "total ASC, id ASC"),
            LeadSort::UpdatedDesc => ("updated_at", "updated_at DESC, id ASC"),
            LeadSort::CallNow => ("call_rank", "call_rank ASC, id ASC"),
        };
        // Call-now ranks by the stored stage rank, then by total: one number keeps the cursor
        // simple.
        let key_expr = match sort {
            LeadSort::CallNow => format!("(COALESCE(stage_rank, {UNRANKED}) * 1e12 - total)"),
            _ => key.to_owned(),
        };
        if let Some(c) = cursor {
            let cmp = match sort {
                LeadSort::TotalDesc | LeadSort::UpdatedDesc => "<",
                LeadSort::TotalAsc | LeadSort::CallNow => ">",
            };
            let key_value = if sort == LeadSort::UpdatedDesc { Sql::Int(c.key as i64) } else { Sql::Real(c.key) };
            bind(
                &mut clauses,
                &format!("({key_expr} {cmp} ?0 OR ({key_expr} = ?1 AND id > ?2))"),
                vec![key_value.clone(), key_value, c.id.as_str().into()],
            );
        }
        let mut sql = format!("SELECT {LEAD_COLUMNS}, {key_expr} AS call_rank FROM leads");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {order} LIMIT {}", limit.max(1)));
        self.conn.query(&sql, &params)?.iter().map(lead_row).collect()
    }

    /// The sort key a lead has in a list (for its cursor).
    pub fn sort_key(row: &LeadRow, sort: LeadSort) -> f64 {
        let total = row.score.as_ref().map_or(0.0, |s| s.total);
        match sort {
            LeadSort::TotalDesc | LeadSort::TotalAsc => total,
            LeadSort::UpdatedDesc => row.updated_at as f64,
            LeadSort::CallNow => row.score.as_ref().map_or(UNRANKED, |s| s.stage_rank) as f64 * 1e12 - total,
        }
    }

    /// Sets every scored lead's "call now" rank from its stage: `ranks` gives the rank of each
    /// stage the active model has, `other` that of any other stage. Writes only the leads whose
    /// rank changes (none when the model's stage order did not).
    pub fn rank_stages(&mut self, ranks: &[(String, i64)], other: i64) -> Result<u64, StoreError> {
        let mut params = Vec::with_capacity(ranks.len() * 2 + 1);
        let mut case = String::from("CASE stage");
        for (i, (stage, rank)) in ranks.iter().enumerate() {
            // Typed, for PostgreSQL to know what the parameters are.
            case.push_str(&format!(" WHEN CAST(${} AS TEXT) THEN CAST(${} AS BIGINT)", 2 * i + 1, 2 * i + 2));
            params.extend([Sql::from(stage.as_str()), Sql::Int(*rank)]);
        }
        case.push_str(&format!(" ELSE CAST(${} AS BIGINT) END", 2 * ranks.len() + 1));
        params.push(Sql::Int(other));
        self.conn.execute(
            &format!(
                "UPDATE leads SET stage_rank = {case} WHERE scored_at IS NOT NULL AND stage_rank IS DISTINCT FROM {case}"
            ),
            &params,
        )
    }

    /// Ids after `after` in id order (for rescoring everything in chunks).
    pub fn lead_ids_after(&mut self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let rows = self.conn.query(
            "SELECT id FROM leads WHERE id > $1 ORDER BY id LIMIT $2",
            &[after.into(), Sql::Int(limit as i64)],
        )?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    pub fn count_leads(&mut self) -> Result<i64, StoreError> {
        self.scalar_int("SELECT COUNT(*) FROM leads", &[])
    }

    /// Leads scored with a model version other than `version`.
    pub fn count_leads_not_scored_with(&mut self, version: i64) -> Result<i64, StoreError> {
        self.scalar_int(
            "SELECT COUNT(*) FROM leads WHERE model_version IS NULL OR model_version <> $1",
            &[Sql::Int(version)],
        )
    }

    /// Leads whose time-driven change is due at or before `now`, earliest first.
    pub fn due_leads(&mut self, now: Millis, limit: usize) -> Result<Vec<(String, Millis)>, StoreError> {
        let rows = self.conn.query(
            "SELECT id, next_change_at FROM leads WHERE next_change_at IS NOT NULL AND next_change_at <= $1 \
             ORDER BY next_change_at LIMIT $2",
            &[Sql::Int(now), Sql::Int(limit as i64)],
        )?;
        rows.iter().map(|r| Ok((text(r, 0)?, int(r, 1)?))).collect()
    }

    /// Leads whose current account is `account_id`.
    pub fn leads_of_account(&mut self, account_id: &str) -> Result<Vec<LeadRow>, StoreError> {
        let rows = self.conn.query(
            &format!("SELECT {LEAD_COLUMNS} FROM leads WHERE account_id = $1 ORDER BY total DESC, id"),
            &[account_id.into()],
        )?;
        rows.iter().map(lead_row).collect()
    }

    /// Removes the lead and everything about it: its messages, and those of the ids stitched to
    /// it (`linked`: anonymous ids and aliased previous ids, both as `anonymousId` of messages
    /// without a `userId` and as `userId`), links, outcomes, history and deliveries of all of
    /// them. Returns whether the lead existed.
    pub fn delete_lead(&mut self, id: &str, linked: &[String]) -> Result<bool, StoreError> {
        let mut ids: Vec<String> = vec![id.to_owned()];
        ids.extend(linked.iter().filter(|l| l.as_str() != id).cloned());
        // `RETURNING` makes each delete a query, so the chunking helper runs it.
        self.query_in("DELETE FROM events WHERE lead_id IS NULL AND anonymous_id IN ({in}) RETURNING seq", &ids)?;
        self.query_in("DELETE FROM events WHERE lead_id IN ({in}) RETURNING seq", &ids)?;
        self.query_in("DELETE FROM links WHERE lead_id IN ({in}) OR anonymous_id IN ({in}) RETURNING at", &ids)?;
        for table in ["outcomes", "history", "deliveries"] {
            self.query_in(&format!("DELETE FROM {table} WHERE lead_id IN ({{in}}) RETURNING lead_id"), &ids)?;
        }
        self.conn.execute(
            "DELETE FROM unreadable_events WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = unreadable_events.seq)",
            &[],
        )?;
        let existed = self.conn.execute("DELETE FROM leads WHERE id = $1", &[id.into()])? > 0;
        self.query_in("DELETE FROM leads WHERE id IN ({in}) RETURNING id", &ids)?;
        Ok(existed)
    }

    /// Every row in every table that names `id` (to prove a delete is complete).
    pub fn rows_naming_lead(&mut self, id: &str) -> Result<i64, StoreError> {
        let mut n = 0;
        for table in ["events", "links", "outcomes", "history", "deliveries"] {
            n += self.scalar_int(&format!("SELECT COUNT(*) FROM {table} WHERE lead_id = $1"), &[id.into()])?;
        }
        n += self.scalar_int("SELECT COUNT(*) FROM leads WHERE id = $1", &[id.into()])?;
        Ok(n)
    }

    // ---- outcomes and history ----------------------------------------------------------------

    pub fn add_outcome(&mut self, outcome: &OutcomeRow, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO outcomes (lead_id, outcome, at, recorded_at) VALUES ($1, $2, $3, $4)",
            &[outcome.lead_id.as_str().into(), outcome.outcome.as_str().into(), Sql::Int(outcome.at), Sql::Int(now)],
        )?;
        Ok(())
    }
    /// Every outcome (for backtests over stored history).
    pub fn all_outcomes(&mut self) -> Result<Vec<OutcomeRow>, StoreError> {
        let rows = self.conn.query("SELECT lead_id, outcome, at FROM outcomes ORDER BY lead_id, at, seq", &[])?;
        rows.iter().map(outcome_row).collect()
    }
    /// The lead's history, oldest first.
    pub fn history_of(&mut self, lead_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = self
            .conn
            .query("SELECT at, stage, total FROM history WHERE lead_id = $1 ORDER BY at, seq", &[lead_id.into()])?;
        rows.iter().map(|r| Ok(HistoryRow { at: int(r, 0)?, stage: text(r, 1)?, total: real(r, 2)? })).collect()
    }

    /// The histories of several leads, oldest first (for sparklines).
    pub fn histories_of(&mut self, ids: &[String]) -> Result<Vec<(String, HistoryRow)>, StoreError> {
        let sql = "SELECT lead_id, at, stage, total FROM history WHERE lead_id IN ({in}) ORDER BY lead_id, at, seq";
        self.query_in(sql, ids)?
            .iter()
            .map(|r| Ok((text(r, 0)?, HistoryRow { at: int(r, 1)?, stage: text(r, 2)?, total: real(r, 3)? })))
            .collect()
    }

    /// Up to `limit` stored scores: `(lead id, scores JSON, total, stage)` (for distributions).
    pub fn score_sample(&mut self, limit: usize) -> Result<Vec<(String, String, f64, String)>, StoreError> {
        let rows = self.conn.query(
            "SELECT id, scores, total, stage FROM leads WHERE scored_at IS NOT NULL LIMIT $1",
            &[Sql::Int(limit as i64)],
        )?;
        rows.iter().map(|r| Ok((text(r, 0)?, text(r, 1)?, real(r, 2)?, text(r, 3)?))).collect()
    }

    /// Every `(lead id, stage)` a lead's history has reached.
    pub fn stages_reached(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.conn.query("SELECT DISTINCT lead_id, stage FROM history", &[])?;
        rows.iter().map(|r| Ok((text(r, 0)?, text(r, 1)?))).collect()
    }

    // ---- models ------------------------------------------------------------------------------

    /// Stores a new model version; returns its number.
    pub fn insert_model(&mut self, name: &str, source: &str, now: Millis) -> Result<i64, StoreError> {
        let next = self.scalar_int("SELECT COALESCE(MAX(version), 0) + 1 FROM models", &[])?;
        self.conn.execute(
            "INSERT INTO models (version, name, source, created_at, active) VALUES ($1, $2, $3, $4, 0)",
            &[Sql::Int(next), name.into(), source.into(), Sql::Int(now)],
        )?;
        Ok(next)
    }

    pub fn models(&mut self) -> Result<Vec<ModelRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT version, name, source, created_at, activated_at, active FROM models ORDER BY version",
            &[],
        )?;
        rows.iter().map(model_row).collect()
    }

    pub fn model(&mut self, version: i64) -> Result<Option<ModelRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT version, name, source, created_at, activated_at, active FROM models WHERE version = $1",
            &[Sql::Int(version)],
        )?;
        rows.first().map(model_row).transpose()
    }

    pub fn active_model(&mut self) -> Result<Option<ModelRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT version, name, source, created_at, activated_at, active FROM models WHERE active = 1",
            &[],
        )?;
        rows.first().map(model_row).transpose()
    }

    /// Makes `version` the one active model. Returns false if there is no such version.
    pub fn activate_model(&mut self, version: i64, now: Millis) -> Result<bool, StoreError> {
        if self.model(version)?.is_none() {
            return Ok(false);
        }
        self.conn.execute("UPDATE models SET active = 0 WHERE active = 1 AND version <> $1", &[Sql::Int(version)])?;
        self.conn.execute(
            "UPDATE models SET active = 1, activated_at = $2 WHERE version = $1",
            &[Sql::Int(version), Sql::Int(now)],
        )?;
        Ok(true)
    }

    // ---- deliveries ----------------------------------------------------------------------------

    pub fn enqueue_delivery(&mut self, delivery: &DeliveryRow) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({})", placeholders(1, 11)),
            &[
                delivery.id.as_str().into(),
                delivery.lead_id.as_str().into(),
                delivery.url.as_str().into(),
                delivery.body.as_str().into(),
                delivery.status.as_str().into(),
                Sql::Int(delivery.attempts),
                Sql::Int(delivery.created_at),
                Sql::Int(delivery.next_attempt_at),
                delivery.last_attempt_at.into(),
                delivery.last_error.as_deref().into(),
                delivery.delivered_at.into(),
            ],
        )?;
        Ok(())
    }

    /// Pending deliveries due at `now` to receiver `url` (or, with `None`, to any receiver not in
    /// `except`), oldest first. On PostgreSQL rows being sent by another process are skipped
    /// (`FOR UPDATE SKIP LOCKED`).
    pub fn due_deliveries(
        &mut self,
        now: Millis,
        url: Option<&str>,
        except: &[String],
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let lock = if self.dialect() == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let mut params = vec![Sql::Int(now), Sql::Int(limit as i64)];
        let receiver = match url {
            Some(url) => {
                params.push(url.into());
                " AND url = $3".to_owned()
            }
            None if except.is_empty() => String::new(),
            None => {
                let list = placeholders(3, except.len());
                params.extend(except.iter().map(|u| Sql::from(u.as_str())));
                format!(" AND url NOT IN ({list})")
            }
        };
        let rows = self.conn.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1{receiver} \
                 ORDER BY next_attempt_at, id LIMIT $2{lock}"
            ),
            &params,
        )?;
        rows.iter().map(delivery_row).collect()
    }

    /// Records an attempt's result.
    pub fn update_delivery(&mut self, delivery: &DeliveryRow) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_attempt_at = $5, \
             last_error = $6, delivered_at = $7 WHERE id = $1",
            &[
                delivery.id.as_str().into(),
                delivery.status.as_str().into(),
                Sql::Int(delivery.attempts),
                Sql::Int(delivery.next_attempt_at),
                delivery.last_attempt_at.into(),
                delivery.last_error.as_deref().into(),
                delivery.delivered_at.into(),
            ],
        )?;
        Ok(())
    }

    pub fn delivery(&mut self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let rows =
            self.conn.query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"), &[id.into()])?;
        rows.first().map(delivery_row).transpose()
    }

    /// The delivery log, newest first.
    pub fn deliveries(&mut self, status: Option<&str>, limit: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = match status {
            Some(status) => self.conn.query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2"
                ),
                &[status.into(), Sql::Int(limit as i64)],
            )?,
            None => self.conn.query(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY created_at DESC, id LIMIT $1"),
                &[Sql::Int(limit as i64)],
            )?,
        };
        rows.iter().map(delivery_row).collect()
    }

    // ---- unreadable messages --------------------------------------------------------------------

    /// Records that stored message `seq` cannot be read (once; the first reason is kept).
    pub fn add_unreadable(&mut self, seq: i64, reason: &str, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO unreadable_events (seq, reason, found_at) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING",
            &[Sql::Int(seq), reason.into(), Sql::Int(now)],
        )?;
        Ok(())
    }

    /// The stored messages found unreadable, most recently found first.
    pub fn unreadable_events(&mut self, limit: usize) -> Result<Vec<UnreadableRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT u.seq, u.reason, u.found_at, e.message_id, e.lead_id, e.anonymous_id, e.event_type, \
             e.received_at, e.body FROM unreadable_events u JOIN events e ON e.seq = u.seq \
             ORDER BY u.found_at DESC, u.seq DESC LIMIT $1",
            &[Sql::Int(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(UnreadableRow {
                    seq: int(r, 0)?,
                    reason: text(r, 1)?,
                    found_at: int(r, 2)?,
                    message_id: text(r, 3)?,
                    lead_id: opt_text(r, 4),
                    anonymous_id: opt_text(r, 5),
                    event_type: text(r, 6)?,
                    received_at: int(r, 7)?,
                    body: text(r, 8)?,
                })
            })
            .collect()
    }

    /// Forgets when time alone would next change these leads (their scoring failed; they are
    /// scored again at their next event).
    pub fn clear_next_changes(&mut self, ids: &[String]) -> Result<(), StoreError> {
        self.query_in("UPDATE leads SET next_change_at = NULL WHERE id IN ({in}) RETURNING id", ids)?;
        Ok(())
    }

    // ---- dashboard sessions -----------------------------------------------------------------------

    pub fn insert_session(&mut self, session: &SessionRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (token_digest, role, key_fingerprint, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                session.token_digest.as_str().into(),
                session.role.as_str().into(),
                session.key_fingerprint.as_str().into(),
                session.csrf.as_str().into(),
                Sql::Int(session.created_at),
                Sql::Int(session.expires_at),
            ],
        )?;
        Ok(())
    }

    /// The session with this token digest, if it has not expired at `now`.
    pub fn session(&mut self, token_digest: &str, now: Millis) -> Result<Option<SessionRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT token_digest, role, key_fingerprint, csrf, created_at, expires_at FROM sessions \
             WHERE token_digest = $1 AND expires_at > $2",
            &[token_digest.into(), Sql::Int(now)],
        )?;
        rows.first()
            .map(|r| {
                Ok(SessionRow {
                    token_digest: text(r, 0)?,
                    role: text(r, 1)?,
                    key_fingerprint: text(r, 2)?,
                    csrf: text(r, 3)?,
                    created_at: int(r, 4)?,
                    expires_at: int(r, 5)?,
                })
            })
            .transpose()
    }

    pub fn delete_session(&mut self, token_digest: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM sessions WHERE token_digest = $1", &[token_digest.into()])?;
        Ok(())
    }

    /// Removes sessions that expired before `now`.
    pub fn purge_sessions(&mut self, now: Millis) -> Result<u64, StoreError> {
        self.conn.execute("DELETE FROM sessions WHERE expires_at <= $1", &[Sql::Int(now)])
    }

    // ---- readiness ------------------------------------------------------------------------------

    /// A real write (the readiness probe: can the database be written now?).
    pub fn touch_readiness(&mut self, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO readiness (id, checked_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            &[Sql::Int(now)],
        )?;
        Ok(())
    }

    // ---- helpers ------------------------------------------------------------------------------

    /// Runs `sql`, whose `{in}` stands for a `$1, $2, …` list, once per chunk of `values` (so any
    /// number of ids fits the parameter limit) and collects the rows.
    fn query_in(&mut self, sql: &str, values: &[String]) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        for chunk in values.chunks(1000) {
            let statement = sql.replace("{in}", &placeholders(1, chunk.len()));
            let params: Vec<Sql> = chunk.iter().map(|v| Sql::from(v.as_str())).collect();
            rows.extend(self.conn.query(&statement, &params)?);
        }
        Ok(rows)
    }

    fn scalar_int(&mut self, sql: &str, params: &[Sql]) -> Result<i64, StoreError> {
        let rows = self.conn.query(sql, params)?;
        Ok(rows.first().and_then(|r| opt_int(r, 0)).unwrap_or(0))
    }
}

fn model_row(r: &Row) -> Result<ModelRow, StoreError> {
    Ok(ModelRow {
        version: int(r, 0)?,
        name: text(r, 1)?,
        source: text(r, 2)?,
        created_at: int(r, 3)?,
        activated_at: opt_int(r, 4),
        active: opt_int(r, 5) == Some(1),
    })
}
