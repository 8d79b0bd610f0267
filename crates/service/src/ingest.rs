//! What ingest hands the writer: a validated message ready to store ([`NewEvent`]) with its
//! parsed form for scoring. Decoding the Segment tracking API into these is the HTTP crate's job;
//! queueing and committing them is [`crate::writer`]'s.

use leadscore_core::Event;

pub use leadscore_store::NewEvent;

/// The longest id (`userId`, `anonymousId`, `previousId`, `groupId`, `messageId`) accepted:
/// ids are indexed, and PostgreSQL refuses index entries over ~2.7 KB.
pub const MAX_ID_BYTES: usize = 1024;

/// One message ready to store, with its parsed form for scoring.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub new: NewEvent,
    pub event: Event,
}
