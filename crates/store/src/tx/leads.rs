//! Leads and their current scores: upserts, lists with filters, sorts and cursors, call-now
//! ranks, due time-driven changes, deletes.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::{Row, Sql};

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
    /// Points per dimension (a JSON object in the table).
    pub scores: BTreeMap<String, f64>,
    pub total: f64,
    pub stage: String,
    pub grade: Option<String>,
    pub probability: Option<f64>,
    /// Which rule gave how many points (a JSON array in the table).
    pub contributions: Vec<StoredContribution>,
    /// The traits as of `scored_at`, base and identify (a JSON object in the table).
    pub current_traits: Map<String, Value>,
    pub account_id: Option<String>,
    /// When time alone will next change the score (the scheduler's due time).
    pub next_change_at: Option<Millis>,
    /// Where the lead comes in a "call now" list (`CheckedModel::stage_rank` of its stage).
    pub stage_rank: i64,
}

/// The leads table's indexes for lists, as the first migration creates them: name and definition.
const LIST_INDEXES: [(&str, &str); 3] = [
    ("leads_total", "leads (total, id)"),
    ("leads_updated", "leads (updated_at, id)"),
    ("leads_stage", "leads (stage, total)"),
];

/// A stored score's JSON columns, encoded: the scoring threads encode them, so that the one
/// writer only binds their text.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreJson {
    pub scores: String,
    pub contributions: String,
    pub current_traits: String,
}

impl ScoreJson {
    pub fn of(score: &StoredScore) -> ScoreJson {
        ScoreJson {
            scores: json_text(&score.scores),
            contributions: json_text(&score.contributions),
            current_traits: json_text(&score.current_traits),
        }
    }
}

/// One lead's new score for [`Tx::save_scores`].
#[derive(Debug, Clone, Copy)]
pub struct ScoreWrite<'a> {
    pub lead: &'a LeadHead,
    pub score: &'a StoredScore,
    pub json: &'a ScoreJson,
    /// The lead's `updated_at` to keep (the old one, or the scoring time for a visible change).
    pub updated_at: Millis,
    /// Its fold state, as stored.
    pub state: Option<&'a [u8]>,
}

/// What scoring needs of a stored lead: its base traits and times, what its stored score says
/// now (to tell a change), and its stored fold state with the model version it was made under.
/// Lighter than a [`LeadRow`]: no contributions or traits of the score are read.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadHead {
    pub id: String,
    /// Base traits, JSON object.
    pub traits: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The stored score's stage, total and grade.
    pub scored: Option<(String, f64, Option<String>)>,
    /// The model version of the stored score, and of its fold state.
    pub model_version: Option<i64>,
    /// The stored fold state (read only when asked for).
    pub state: Option<Vec<u8>>,
}

/// A rule's part of a stored score, as SPEC §6.2 shows contributions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredContribution {
    // Fields in alphabetical order: the JSON text keeps the key order it always had.
    pub dimension: String,
    /// RFC 3339.
    pub last_matched_at: Option<String>,
    pub matched: u64,
    /// Rounded to 2 decimals.
    pub points: f64,
    pub rule: String,
}

/// A JSON column read back: what an older or damaged row cannot give reads as empty, so one bad
/// row never hides a list.
pub(super) fn json_column<T: serde::de::DeserializeOwned + Default>(row: &Row, i: usize) -> Result<T, StoreError> {
    Ok(serde_json::from_str(&text(row, i)?).unwrap_or_default())
}

/// Points per dimension read back entry by entry: a point written as `null` (not a finite
/// number) leaves out that dimension only.
pub(super) fn scores_column(row: &Row, i: usize) -> Result<BTreeMap<String, f64>, StoreError> {
    let map: Map<String, Value> = json_column(row, i)?;
    Ok(map.into_iter().filter_map(|(k, v)| Some((k, v.as_f64()?))).collect())
}

/// Contributions read back element by element: one that cannot be read leaves out only itself.
pub(super) fn contributions_column(row: &Row, i: usize) -> Result<Vec<StoredContribution>, StoreError> {
    let list: Vec<Value> = json_column(row, i)?;
    Ok(list.into_iter().filter_map(|c| serde_json::from_value(c).ok()).collect())
}

/// A value as the JSON text of its column.
pub(super) fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A current trait's value as lower-cased text in SQL, `{key}` standing for the parameter that
/// names the trait, and that parameter's value.
fn trait_value(dialect: Dialect, name: &str) -> (String, &'static str) {
    match dialect {
        Dialect::Sqlite => {
            (format!("$.\"{}\"", name.replace('"', "")), "lower(CAST(json_extract(current_traits, {key}) AS TEXT))")
        }
        Dialect::Postgres => (name.to_owned(), "lower(current_traits::jsonb ->> {key})"),
    }
}

/// How lead lists are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeadSort {
    /// `-total`: highest first.
    #[default]
    TotalDesc,
    /// `total`: lowest first.
    TotalAsc,
    /// `-updated`: most recently changed first.
    UpdatedDesc,
    /// Sales' "call now": by the stored stage rank (the model's highest stage first, then each
    /// lower one, then `lead`, then outcomes), each by total.
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
    /// `(trait, value)`: leads whose current trait has this value, any case (the owner).
    pub owner: Option<(String, String)>,
}

/// Where a page of leads continues: the sort key and id of the last lead shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadCursor {
    pub key: f64,
    pub id: String,
}

pub(super) const LEAD_COLUMNS: &str = "id, traits, created_at, updated_at, scored_at, model_version, scores, total, stage, grade, \
     probability, contributions, current_traits, account_id, next_change_at, stage_rank";

/// The "call now" rank of a lead that has none (not scored yet): after every ranked lead.
pub const UNRANKED: i64 = 1_000_000;

pub(super) fn lead_row(row: &Row) -> Result<LeadRow, StoreError> {
    let score = match opt_int(row, 4) {
        Some(scored_at) => Some(StoredScore {
            scored_at,
            model_version: opt_int(row, 5).unwrap_or(0),
            scores: scores_column(row, 6)?,
            total: real(row, 7)?,
            stage: text(row, 8)?,
            grade: opt_text(row, 9),
            probability: opt_real(row, 10),
            contributions: contributions_column(row, 11)?,
            current_traits: json_column(row, 12)?,
            account_id: opt_text(row, 13),
            next_change_at: opt_int(row, 14),
            stage_rank: opt_int(row, 15).unwrap_or(UNRANKED),
        }),
        None => None,
    };
    Ok(LeadRow { id: text(row, 0)?, traits: text(row, 1)?, created_at: int(row, 2)?, updated_at: int(row, 3)?, score })
}

impl Tx<'_> {
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

    /// The leads whose trait `name` (as of their last scoring) is one of `values`, compared as
    /// text and without case: `(lead id, value as given)`. A scan of the leads (there is no index
    /// on traits): for inbound CRM webhooks, which name a record by its CRM id or e-mail.
    pub fn leads_by_trait(&mut self, name: &str, values: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let lowered: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
        let (key, template) = trait_value(self.dialect(), name);
        let value = template.replace("{key}", "$1");
        let mut out = Vec::new();
        for chunk in lowered.chunks(1000) {
            let sql = format!("SELECT id, {value} FROM leads WHERE {value} IN ({})", placeholders(2, chunk.len()));
            let mut params = vec![Sql::from(key.as_str())];
            params.extend(chunk.iter().map(|v| Sql::from(v.as_str())));
            for row in self.conn.query(&sql, &params)? {
                let found = text(&row, 1)?;
                if let Some(given) = values.iter().find(|v| v.to_lowercase() == found) {
                    out.push((text(&row, 0)?, given.clone()));
                }
            }
        }
        Ok(out)
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
        // `person` (the userId, else the anonymousId) leads the dedupe key's index, which serves
        // both lookups.
        let own = format!("SELECT {EVENT_COLUMNS} FROM events WHERE person IN ({{in}}) AND lead_id IS NOT NULL");
        let mut rows = self.query_in(&own, ids)?;
        let anonymous = format!("SELECT {EVENT_COLUMNS} FROM events WHERE person IN ({{in}}) AND lead_id IS NULL");
        rows.extend(self.query_in(&anonymous, anonymous_ids)?);
        rows.iter().map(event_row).collect()
    }

    /// The outcomes of these leads.
    pub fn outcomes_of_leads(&mut self, ids: &[String]) -> Result<Vec<OutcomeRow>, StoreError> {
        let sql = "SELECT lead_id, outcome, at FROM outcomes WHERE lead_id IN ({in}) ORDER BY at, seq";
        self.query_in(sql, ids)?.iter().map(outcome_row).collect()
    }

    /// Stores many leads' new scores in a few statements. Each entry gives the lead's
    /// `updated_at` to keep (the old one, or the scoring time for a visible change) and its fold
    /// state under the score's model (`None` forgets the state: the next scoring reads the
    /// lead's whole history).
    pub fn save_scores(&mut self, scores: &[ScoreWrite<'_>]) -> Result<(), StoreError> {
        const COLUMNS: usize = 17;
        for chunk in scores.chunks(MAX_PARAMS / COLUMNS) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS))).collect();
            let sql = format!(
                "INSERT INTO leads ({LEAD_COLUMNS}, state) VALUES {} ON CONFLICT (id) DO UPDATE SET \
                 updated_at = excluded.updated_at, scored_at = excluded.scored_at, \
                 model_version = excluded.model_version, scores = excluded.scores, total = excluded.total, \
                 stage = excluded.stage, grade = excluded.grade, probability = excluded.probability, \
                 contributions = excluded.contributions, current_traits = excluded.current_traits, \
                 account_id = excluded.account_id, next_change_at = excluded.next_change_at, \
                 stage_rank = excluded.stage_rank, state = excluded.state",
                values.join(", ")
            );
            let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
            for ScoreWrite { lead, score, json, updated_at, state } in chunk {
                params.extend([
                    Sql::from(lead.id.as_str()),
                    Sql::from(lead.traits.as_str()),
                    Sql::Int(lead.created_at),
                    Sql::Int(*updated_at),
                    Sql::Int(score.scored_at),
                    Sql::Int(score.model_version),
                    Sql::from(json.scores.as_str()),
                    Sql::Real(score.total),
                    Sql::from(score.stage.as_str()),
                    Sql::from(score.grade.as_deref()),
                    Sql::from(score.probability),
                    Sql::from(json.contributions.as_str()),
                    Sql::from(json.current_traits.as_str()),
                    Sql::from(score.account_id.as_deref()),
                    Sql::from(score.next_change_at),
                    Sql::Int(score.stage_rank),
                    state.map_or(Sql::Null, |s| Sql::Bytes(s.to_vec())),
                ]);
            }
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// What scoring needs of these leads (those that exist), with their fold states if `states`.
    pub fn lead_heads(&mut self, ids: &[String], states: bool) -> Result<Vec<LeadHead>, StoreError> {
        let state = if states { "state" } else { "NULL" };
        let sql = format!(
            "SELECT id, traits, created_at, updated_at, scored_at, stage, total, grade, model_version, {state} \
             FROM leads WHERE id IN ({{in}})"
        );
        self.query_in(&sql, ids)?
            .into_iter()
            .map(|mut r| {
                let state = r.pop().and_then(Sql::into_bytes);
                let scored = match opt_int(&r, 4) {
                    Some(_) => Some((text(&r, 5)?, real(&r, 6)?, opt_text(&r, 7))),
                    None => None,
                };
                Ok(LeadHead {
                    id: text(&r, 0)?,
                    traits: text(&r, 1)?,
                    created_at: int(&r, 2)?,
                    updated_at: int(&r, 3)?,
                    scored,
                    model_version: opt_int(&r, 8),
                    state,
                })
            })
            .collect()
    }

    /// Appends many history entries at once.
    pub fn append_histories(&mut self, entries: &[(&str, HistoryRow)]) -> Result<(), StoreError> {
        for chunk in entries.chunks(MAX_PARAMS / 5) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("({})", placeholders(i * 5 + 1, 5))).collect();
            let sql = format!("INSERT INTO history (lead_id, at, stage, total, note) VALUES {}", values.join(", "));
            let mut params = Vec::with_capacity(chunk.len() * 5);
            for (lead, h) in chunk {
                params.extend([
                    Sql::from(*lead),
                    Sql::Int(h.at),
                    Sql::from(h.stage.as_str()),
                    Sql::Real(h.total),
                    Sql::from(h.note.as_deref()),
                ]);
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
        let dialect = self.dialect();
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
        if let Some((name, value)) = &filter.owner {
            let (path, template) = trait_value(dialect, name);
            bind(
                &mut clauses,
                &format!("{} = ?1", template.replace("{key}", "?0")),
                vec![path.into(), value.to_lowercase().into()],
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

    /// Drops the leads table's list indexes (by total, by update time, by stage) on SQLite, for
    /// a rewrite of most lead rows: each row rewritten moves its entry in each of them, which
    /// costs SQLite more than the row itself (200,000 scored rows rewritten: 8.4 s with them,
    /// 2.8 s without, 1.1 s to build them again; `bench/lead_rows_peer.py`). Lists still answer meanwhile, from the table.
    /// [`Tx::ensure_list_indexes`] builds them again; [`crate::Store::open`] runs it at every
    /// start, after a crash in between too. `false` on PostgreSQL, whose indexes stay.
    pub fn drop_list_indexes(&mut self) -> Result<bool, StoreError> {
        if self.dialect() != crate::Dialect::Sqlite {
            return Ok(false);
        }
        for (name, _) in LIST_INDEXES {
            self.conn.batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
        Ok(true)
    }

    /// Builds any list index of the leads table that is missing (see
    /// [`Tx::drop_list_indexes`]; SQLite only).
    pub fn ensure_list_indexes(&mut self) -> Result<(), StoreError> {
        if self.dialect() != crate::Dialect::Sqlite {
            return Ok(());
        }
        for (name, on) in LIST_INDEXES {
            self.conn.batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}"))?;
        }
        Ok(())
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

    /// The values of a current trait (the owner) with their number of leads, most leads first
    /// (at most `limit`), lower-cased.
    pub fn trait_values(&mut self, name: &str, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        let (key, template) = trait_value(self.dialect(), name);
        let value = template.replace("{key}", "$1");
        let rows = self.conn.query(
            &format!(
                "SELECT v, COUNT(*) FROM (SELECT {value} AS v FROM leads) t WHERE v IS NOT NULL AND v <> '' \
                 GROUP BY v ORDER BY COUNT(*) DESC, v LIMIT $2"
            ),
            &[key.into(), Sql::Int(limit as i64)],
        )?;
        rows.iter().map(|r| Ok((text(r, 0)?, int(r, 1)?))).collect()
    }

    /// Up to `limit` scored leads not closed by an outcome (for what to ask them next).
    pub fn open_leads_sample(&mut self, limit: usize) -> Result<Vec<LeadRow>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {LEAD_COLUMNS} FROM leads WHERE scored_at IS NOT NULL \
                 AND stage NOT IN ('customer', 'lost', 'disqualified') LIMIT $1"
            ),
            &[Sql::Int(limit as i64)],
        )?;
        rows.iter().map(lead_row).collect()
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
    /// without a `userId` and as `userId`), links, outcomes, history, deliveries, CRM outbox rows
    /// and shadow scores of all of them. Returns whether the lead existed.
    pub fn delete_lead(&mut self, id: &str, linked: &[String]) -> Result<bool, StoreError> {
        let mut ids: Vec<String> = vec![id.to_owned()];
        ids.extend(linked.iter().filter(|l| l.as_str() != id).cloned());
        // `RETURNING` makes each delete a query, so the chunking helper runs it.
        self.query_in("DELETE FROM events WHERE person IN ({in}) AND lead_id IS NULL RETURNING seq", &ids)?;
        self.query_in("DELETE FROM events WHERE person IN ({in}) AND lead_id IS NOT NULL RETURNING seq", &ids)?;
        self.query_in("DELETE FROM links WHERE lead_id IN ({in}) OR anonymous_id IN ({in}) RETURNING at", &ids)?;
        for table in ["outcomes", "history", "deliveries", "crm_outbox", "shadow_scores"] {
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
        for table in ["events", "links", "outcomes", "history", "deliveries", "crm_outbox", "shadow_scores"] {
            n += self.scalar_int(&format!("SELECT COUNT(*) FROM {table} WHERE lead_id = $1"), &[id.into()])?;
        }
        n += self.scalar_int("SELECT COUNT(*) FROM leads WHERE id = $1", &[id.into()])?;
        Ok(n)
    }
}
