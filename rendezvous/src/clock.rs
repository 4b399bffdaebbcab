//! The one place this crate reads the clock (the service core and codec take time as input).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic now, for intervals and deadlines.
#[expect(
    clippy::disallowed_methods,
    reason = "the clock module of the client thread and the service binary"
)]
pub fn now() -> Instant {
    Instant::now()
}

/// Wall-clock Unix seconds, for certificate validity (0 if the clock is before 1970).
#[expect(
    clippy::disallowed_methods,
    reason = "the clock module of the client thread and the service binary"
)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
