//! Messages (deduplicated per write key and `messageId`), the identity links between anonymous
//! ids and leads, and messages found unreadable.

use std::collections::HashSet;

use leadscore_core::event::MessageKind;
use leadscore_core::time::Millis;

use super::*;
use crate::StoreError;
use crate::sql::{Row, Sql};

/// A message to store, already validated and normalised by ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub write_key: String,
    pub message_id: String,
    /// `userId`.
    pub lead_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub group_id: Option<String>,
    pub event_type: MessageKind,
    /// The resolved event time.
    pub at: Millis,
    pub received_at: Millis,
    /// The normalised message, as JSON.
    pub body: String,
}

impl NewEvent {
    /// Whose message it is, as the message itself says: its `userId`, else its `anonymousId`. A
    /// `messageId` is stored once per person, whichever write key sent it.
    pub fn person(&self) -> &str {
        self.lead_id.as_deref().or(self.anonymous_id.as_deref()).unwrap_or("")
    }
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

pub(super) const EVENT_COLUMNS: &str = "seq, lead_id, anonymous_id, at, body";

pub(super) fn event_row(row: &Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: int(row, 0)?,
        lead_id: opt_text(row, 1),
        anonymous_id: opt_text(row, 2),
        at: int(row, 3)?,
        body: text(row, 4)?,
    })
}

pub(super) fn link_row(row: &Row) -> Result<Link, StoreError> {
    Ok(Link { anonymous_id: text(row, 0)?, lead_id: text(row, 1)?, at: int(row, 2)? })
}

impl Tx<'_> {
    /// Stores the events whose (write key, messageId) is new; returns the indices (into
    /// `events`) of those stored. Duplicates, in the store or earlier in `events`, are skipped.
    pub fn insert_events<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e NewEvent>,
    ) -> Result<Vec<usize>, StoreError> {
        const COLUMNS: usize = 10;
        let events: Vec<&NewEvent> = events.into_iter().collect();
        const PER_STATEMENT: usize = MAX_PARAMS / COLUMNS;
        let mut inserted = Vec::new();
        for (chunk_index, chunk) in events.chunks(PER_STATEMENT).enumerate() {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS))).collect();
            let sql = format!(
                "INSERT INTO events (write_key, message_id, person, lead_id, anonymous_id, group_id, event_type, \
                 at, received_at, body) VALUES {} ON CONFLICT (person, message_id) DO NOTHING \
                 RETURNING person, message_id",
                values.join(", ")
            );
            let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
            for e in chunk {
                params.extend([
                    Sql::from(e.write_key.as_str()),
                    Sql::from(e.message_id.as_str()),
                    Sql::from(e.person()),
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
                    let person = r.pop()?.into_text()?;
                    Some((person, id))
                })
                .collect();
            for (i, e) in chunk.iter().enumerate() {
                // The first copy of a messageId within the batch is the one stored.
                if new.remove(&(e.person().to_owned(), e.message_id.clone())) {
                    inserted.push(chunk_index * PER_STATEMENT + i);
                }
            }
        }
        Ok(inserted)
    }

    /// Up to `limit` stored messages with `after < seq <= until`, in storage order, each with
    /// whether it is a `group` message: a full pass over the messages reads the table front to
    /// back (per-lead look-ups jump around it).
    pub fn events_page(
        &mut self,
        after: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(StoredEvent, bool)>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS}, event_type FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn
            .query(&sql, &[Sql::Int(after), Sql::Int(until), Sql::Int(limit)])?
            .iter()
            .map(|row| Ok((event_row(row)?, text(row, 5)? == "group")))
            .collect()
    }

    /// The last stored message's `seq` (0 with none).
    pub fn last_seq(&mut self) -> Result<i64, StoreError> {
        self.scalar_int("SELECT COALESCE(MAX(seq), 0) FROM events", &[])
    }

    /// Every identity link.
    pub fn all_links(&mut self) -> Result<Vec<Link>, StoreError> {
        self.conn.query("SELECT anonymous_id, lead_id, at FROM links", &[])?.iter().map(link_row).collect()
    }

    /// Which of these `(person, messageId)` pairs are stored.
    pub fn stored_messages(&mut self, pairs: &[(&str, &str)]) -> Result<HashSet<(String, String)>, StoreError> {
        let mut found = HashSet::new();
        // 200 pairs a statement: SQLite limits an expression's depth to 1,000.
        for chunk in pairs.chunks(200) {
            // One index lookup per pair (SQLite and PostgreSQL both turn an OR of them into a
            // union of index scans).
            let terms: Vec<String> = (0..chunk.len())
                .map(|i| format!("(person = ${} AND message_id = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!("SELECT person, message_id FROM events WHERE {}", terms.join(" OR "));
            let params: Vec<Sql> = chunk.iter().flat_map(|(p, m)| [Sql::from(*p), Sql::from(*m)]).collect();
            for mut row in self.conn.query(&sql, &params)? {
                if let (Some(id), Some(person)) =
                    (row.pop().and_then(|v| v.into_text()), row.pop().and_then(|v| v.into_text()))
                {
                    found.insert((person, id));
                }
            }
        }
        Ok(found)
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
}
