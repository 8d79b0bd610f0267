//! The one place the binary reads the wall clock; everything below it takes time as an argument.

use leadscore_core::time::Millis;

#[expect(clippy::disallowed_methods, reason = "this is the clock")]
pub fn now() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}
