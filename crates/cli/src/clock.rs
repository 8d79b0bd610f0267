//! The binary's "now": the server's wall clock (`leadscore_service::SystemClock`, the one place
//! that reads it); everything below takes time as an argument.

use leadscore_core::time::Millis;
use leadscore_service::{Clock, SystemClock};

pub fn now() -> Millis {
    SystemClock.now()
}
