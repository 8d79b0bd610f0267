//! Stored messages the engine cannot read (written by an older version, or damaged): they are
//! left out of every score and listed here for an operator.

use serde::Serialize;
use utoipa::ToSchema;

use leadscore_core::time;

use crate::app::App;
use crate::error::ServiceError;

/// A stored message the engine cannot read.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadableEvent {
    pub seq: i64,
    pub message_id: String,
    pub lead_id: Option<String>,
    pub anonymous_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub received_at: String,
    pub found_at: String,
    /// Why it cannot be read.
    pub reason: String,
    /// The stored text (the first 2,000 characters); it may not be JSON.
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadableList {
    pub events: Vec<UnreadableEvent>,
}

impl App {
    /// Up to `limit` unreadable messages, most recently found first.
    pub fn list_unreadable(&self, limit: usize) -> Result<UnreadableList, ServiceError> {
        let rows = self.store.read(|tx| tx.unreadable_events(limit))?;
        let events = rows
            .into_iter()
            .map(|u| UnreadableEvent {
                seq: u.seq,
                message_id: u.message_id,
                lead_id: u.lead_id,
                anonymous_id: u.anonymous_id,
                event_type: u.event_type,
                received_at: time::format_timestamp(u.received_at),
                found_at: time::format_timestamp(u.found_at),
                reason: u.reason,
                body: u.body.chars().take(2000).collect(),
            })
            .collect();
        Ok(UnreadableList { events })
    }
}
