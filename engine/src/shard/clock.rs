//! The one place Sockworks reads the OS clock. A shard reads it once per loop iteration and
//! passes the [`Timestamp`] down; protocol code never calls it.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::time::Timestamp;

/// Monotonic microseconds since the clock was made (offset by 1 s so zero never appears).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock starting now.
    #[expect(
        clippy::disallowed_methods,
        reason = "the shard clock is the one place that reads the OS clock"
    )]
    pub fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        let us = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        Timestamp::from_micros(us.saturating_add(1_000_000))
    }

    /// Wall-clock Unix seconds now (0 if the system clock is before 1970): what certificate
    /// validity is judged by, handed to the endpoint as an anchor
    /// ([`crate::proto::endpoint::Endpoint::set_unix_time`]), never used to measure intervals.
    #[expect(
        clippy::disallowed_methods,
        reason = "the shard clock is the one place that reads the OS clock (wall-clock anchor)"
    )]
    pub fn unix_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
