//! The one place the tool reads clocks: the wall clock for certificate times and the
//! monotonic clock for the service's request deadlines. Everything else takes times as
//! arguments, so it can be tested with fixed instants.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock in unix seconds (0 if the clock is before 1970).
#[expect(
    clippy::disallowed_methods,
    reason = "the CLI stamps certificates with the current time"
)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The monotonic clock, for timeouts.
#[expect(
    clippy::disallowed_methods,
    reason = "the service bounds how long a client may take"
)]
pub fn monotonic() -> Instant {
    Instant::now()
}
