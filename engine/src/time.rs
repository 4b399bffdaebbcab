//! Time as the protocol sees it: microseconds on a monotonic clock that someone else reads.
//!
//! GNS's `SteamNetworkingMicroseconds` is an `i64` of microseconds; ours is unsigned and never
//! read from the OS inside `wire`, `crypto` or `proto`. The shard loop reads the clock once per
//! iteration and passes a [`Timestamp`] down, so every protocol behaviour replays exactly in the
//! simulator.

use std::num::NonZeroU64;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in microseconds since an arbitrary per-process origin.
///
/// Stored as microseconds + 1 in a `NonZeroU64`, so an `Option<Timestamp>` (every timer and
/// deadline a connection keeps) takes 8 bytes instead of 16 (issue 16: memory per idle
/// connection). The largest time is therefore `u64::MAX - 1` µs, half a million years.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NonZeroU64);

impl Timestamp {
    /// The origin; simulators start here.
    pub const ZERO: Timestamp = Timestamp(NonZeroU64::MIN);

    /// The last representable time (a deadline that never comes).
    pub const MAX: Timestamp = Timestamp(NonZeroU64::MAX);

    /// Builds a timestamp from microseconds since the origin (saturating at [`Timestamp::MAX`]).
    pub const fn from_micros(us: u64) -> Self {
        match NonZeroU64::new(us.saturating_add(1)) {
            Some(v) => Timestamp(v),
            None => Timestamp::MAX, // unreachable: a saturating + 1 is never 0
        }
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0.get() - 1
    }

    /// Time elapsed since `earlier`, zero if `earlier` is in the future (clocks never go back,
    /// but callers may compare against a deadline they computed optimistically).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.get().saturating_sub(earlier.0.get()))
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::ZERO
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timestamp({})", self.as_micros())
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp::from_micros(
            self.as_micros()
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

    fn ts(us: u64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = ts(10);
        assert_eq!(t + Duration::from_micros(5), ts(15));
        assert_eq!(ts(5) - t, Duration::ZERO);
        assert_eq!(t - ts(4), Duration::from_micros(6));
        assert_eq!(ts(u64::MAX - 2) + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(ts(u64::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::MAX.as_micros(), u64::MAX - 1);
    }

    #[test]
    fn micros_round_trip_and_order_holds() {
        for us in [0, 1, 999, 1 << 40, u64::MAX - 1] {
            assert_eq!(ts(us).as_micros(), us);
        }
        assert!(ts(0) < ts(1) && ts(1) < Timestamp::MAX);
        assert_eq!(Timestamp::default(), Timestamp::ZERO);
        assert_eq!(Timestamp::ZERO.as_micros(), 0);
    }

    #[test]
    fn an_optional_timestamp_is_one_word() {
        assert_eq!(size_of::<Option<Timestamp>>(), 8);
    }
}
