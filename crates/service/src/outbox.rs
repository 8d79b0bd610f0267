//! What a committed score change is queued for, in the transaction that made it: webhook
//! deliveries ([`crate::webhooks`]) and CRM writes ([`crate::crm`]).

use crate::crm::Syncs;
use crate::webhooks::Webhooks;

#[derive(Debug, Clone, Default)]
pub struct Outboxes {
    pub webhooks: Webhooks,
    pub syncs: Syncs,
}

impl Outboxes {
    pub fn new(webhooks: Webhooks, syncs: Syncs) -> Outboxes {
        Outboxes { webhooks, syncs }
    }
}
