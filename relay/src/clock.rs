//! The one place this crate reads the clock (the relay core and codecs take time as input).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic now, for intervals and deadlines.
#[expect(
    clippy::disallowed_methods,
    reason = "the clock module of the relay binary, its I/O loop and tests"
)]
pub fn now() -> Instant {
    Instant::now()
}

/// Wall-clock Unix seconds, for ticket expiry (0 if the clock is before 1970).
#[expect(
    clippy::disallowed_methods,
    reason = "the clock module of the relay binary, its I/O loop and tests"
)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
