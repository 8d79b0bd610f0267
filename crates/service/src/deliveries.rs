//! The webhook delivery log: list deliveries by status, newest first, and send one again.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use leadscore_core::time;
use leadscore_store::DeliveryRow;

pub use leadscore_store::DeliveryStatus;

use crate::app::App;
use crate::error::{Code, ServiceError};

/// A webhook delivery in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub lead_id: String,
    pub url: String,
    /// pending, delivered or dead.
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    /// For a pending delivery: when it is sent next.
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The receiver's answer or the network error of the last attempt.
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    /// What is sent (SPEC §6.4).
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

fn view(d: &DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        lead_id: d.lead_id.clone(),
        url: d.url.clone(),
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        created_at: time::format_timestamp(d.created_at),
        next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| time::format_timestamp(d.next_attempt_at)),
        last_attempt_at: d.last_attempt_at.map(time::format_timestamp),
        last_error: d.last_error.clone(),
        delivered_at: d.delivered_at.map(time::format_timestamp),
        body: serde_json::from_str::<Value>(&d.body).unwrap_or_else(|_| json!({})),
    }
}

impl App {
    /// Up to `limit` deliveries (of one status, or all), newest first.
    pub fn list_deliveries(&self, status: Option<DeliveryStatus>, limit: usize) -> Result<DeliveryList, ServiceError> {
        let rows = self.store.read(|tx| tx.deliveries(status, limit))?;
        Ok(DeliveryList { deliveries: rows.iter().map(view).collect() })
    }

    /// Makes a delivery pending again and due now, whatever its status.
    pub fn resend_delivery(&self, id: &str) -> Result<DeliveryView, ServiceError> {
        let now = self.clock.now();
        let updated = self.store.write(|tx| {
            let Some(mut d) = tx.delivery(id)? else { return Ok(None) };
            d.status = DeliveryStatus::Pending;
            d.next_attempt_at = now;
            tx.update_delivery(&d)?;
            Ok::<_, ServiceError>(Some(d))
        })?;
        let d =
            updated.ok_or_else(|| ServiceError::user(Code::DeliveryNotFound, format!("no delivery with id `{id}`")))?;
        Ok(view(&d))
    }
}
