//! Time as the protocol sees it: microseconds on a monotonic clock that someone else reads.
//!
//! GNS's `SteamNetworkingMicroseconds` is an `i64` of microseconds; ours is unsigned and never
//! read from the OS inside `wire`, `crypto` or `proto`. The shard loop reads the clock once per
//! iteration and passes a [`Timestamp`] down, so every protocol behaviour replays exactly in the
//! simulator.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in microseconds since an arbitrary per-process origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The origin; simulators start here.
    pub const ZERO: Timestamp = Timestamp(0);

    /// Builds a timestamp from microseconds since the origin.
    pub const fn from_micros(us: u64) -> Self {
        Timestamp(us)
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is in the future (clocks never go back,
    /// but callers may compare against a deadline they computed optimistically).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, earlier: Timestamp) -> Duration {
        self.saturating_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp::from_micros(10);
        assert_eq!(t + Duration::from_micros(5), Timestamp(15));
        assert_eq!(Timestamp(5) - t, Duration::ZERO);
        assert_eq!(t - Timestamp(4), Duration::from_micros(6));
        assert_eq!(
            Timestamp(u64::MAX - 1) + Duration::from_secs(1),
            Timestamp(u64::MAX)
        );
    }
}
