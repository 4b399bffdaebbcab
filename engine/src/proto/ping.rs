//! Ping smoothing (spec §4.15) and the retransmission timeout derived from it (§4.12).
//!
//! GNS keeps only the last three RTT samples, newest first, and smooths by discarding the
//! worst: with one sample it is the ping, with two the smaller, with three the mean of the two
//! smallest. A burst of samples (within 100 ms of the previous one) may only lower the newest
//! sample, so a single ack carrying a delayed reply cannot push the estimate up repeatedly.
//!
//! ```text
//!   samples: [newest, older, oldest]   smoothed = mean(two smallest)
//! ```

use std::time::Duration;

use crate::time::Timestamp;

/// Samples closer than this to the previous one only replace it when smaller.
/// From GNS `PingTracker::ReceivedPing` (100 ms).
pub(crate) const PING_SAMPLE_COALESCE: Duration = Duration::from_millis(100);

/// RTO used while no ping estimate exists. From spec §4.12 (1 s).
pub(crate) const RTO_WITHOUT_PING: Duration = Duration::from_secs(1);

/// Added to 3 × ping for the RTO: the peer's 50 ms max ack delay plus 10 ms slack (§4.12).
pub(crate) const RTO_SLACK: Duration = Duration::from_millis(60);

/// One RTT measurement and when it was taken. Microseconds in a `u32` (samples above 2 s are
/// refused before they get here) keep an `Option<Sample>` at 16 bytes: three per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    rtt_us: u32,
    at: Timestamp,
}

impl Sample {
    fn new(rtt: Duration, at: Timestamp) -> Self {
        Sample {
            rtt_us: u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX),
            at,
        }
    }

    fn rtt(self) -> Duration {
        Duration::from_micros(u64::from(self.rtt_us))
    }
}

/// Smoothed round-trip time from the last three samples, as GNS reports it in `m_nPing`.
#[derive(Debug, Clone, Default)]
pub struct PingTracker {
    /// Newest first; only the first `len` are valid.
    samples: [Option<Sample>; 3],
    /// Total samples accepted, for statistics.
    total: u64,
}

impl PingTracker {
    /// A tracker with no estimate yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an RTT sample taken at `now`.
    // GNS: PingTracker::ReceivedPing
    pub fn record_sample(&mut self, now: Timestamp, rtt: Duration) {
        self.total += 1;
        if let Some(newest) = self.samples[0] {
            if now < newest.at + PING_SAMPLE_COALESCE {
                if rtt < newest.rtt() {
                    self.samples[0] = Some(Sample::new(rtt, now));
                }
                return;
            }
        }
        self.samples.rotate_right(1);
        self.samples[0] = Some(Sample::new(rtt, now));
    }

    /// The smoothed ping, `None` until the first sample.
    pub fn smoothed(&self) -> Option<Duration> {
        let mut v: [Duration; 3] = [Duration::ZERO; 3];
        let mut n = 0;
        for s in self.samples.iter().flatten() {
            v[n] = s.rtt();
            n += 1;
        }
        match n {
            0 => None,
            1 => Some(v[0]),
            2 => Some(v[0].min(v[1])),
            _ => {
                v.sort_unstable();
                Some((v[0] + v[1]) / 2)
            }
        }
    }

    /// The smoothed ping in whole milliseconds (rounded down), −1 when unknown, as the
    /// `m_nPing` field of `SteamNetConnectionRealTimeStatus_t` reports it.
    pub fn smoothed_ms(&self) -> i32 {
        self.smoothed()
            .map_or(-1, |d| i32::try_from(d.as_millis()).unwrap_or(i32::MAX))
    }

    /// When the newest sample was taken; the sender keeps in-flight records at least this old
    /// so late acks can still yield a sample (§4.12).
    pub fn last_sample_at(&self) -> Option<Timestamp> {
        self.samples[0].map(|s| s.at)
    }

    /// Number of samples accepted so far.
    pub fn sample_count(&self) -> u64 {
        self.total
    }

    /// Retransmission timeout: 3 × smoothed ping + 60 ms, or 1 s without an estimate.
    // GNS: CSteamNetworkConnectionBase::SNP_SenderCheckInFlightPackets (its RTO)
    pub fn rto(&self) -> Duration {
        self.smoothed()
            .map_or(RTO_WITHOUT_PING, |p| p * 3 + RTO_SLACK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn at_ms(v: u64) -> Timestamp {
        Timestamp::from_micros(v * 1000)
    }

    #[test]
    fn unknown_ping_reports_minus_one_and_one_second_rto() {
        let p = PingTracker::new();
        assert_eq!(p.smoothed(), None);
        assert_eq!(p.smoothed_ms(), -1);
        assert_eq!(p.rto(), Duration::from_secs(1));
        assert_eq!(p.last_sample_at(), None);
    }

    #[test]
    fn smoothing_uses_first_then_min_then_mean_of_two_smallest() {
        let mut p = PingTracker::new();
        p.record_sample(at_ms(0), ms(50));
        assert_eq!(p.smoothed(), Some(ms(50)));
        p.record_sample(at_ms(1000), ms(30));
        assert_eq!(p.smoothed(), Some(ms(30)));
        p.record_sample(at_ms(2000), ms(90));
        assert_eq!(p.smoothed(), Some(ms(40)));
        // The oldest (50) falls out: [10, 90, 30] -> mean(10, 30).
        p.record_sample(at_ms(3000), ms(10));
        assert_eq!(p.smoothed(), Some(ms(20)));
    }

    #[test]
    fn sample_within_100ms_only_replaces_newest_when_smaller() {
        let mut p = PingTracker::new();
        p.record_sample(at_ms(0), ms(50));
        p.record_sample(at_ms(50), ms(80));
        assert_eq!(p.smoothed(), Some(ms(50)));
        p.record_sample(at_ms(60), ms(20));
        assert_eq!(p.smoothed(), Some(ms(20)));
        assert_eq!(p.last_sample_at(), Some(at_ms(60)));
        // Only one slot is used: a later sample makes two.
        p.record_sample(at_ms(500), ms(40));
        assert_eq!(p.smoothed(), Some(ms(20)));
    }

    #[test]
    fn ping_is_reported_in_whole_milliseconds_rounded_down() {
        let mut p = PingTracker::new();
        p.record_sample(at_ms(0), Duration::from_micros(12_999));
        assert_eq!(p.smoothed_ms(), 12);
    }

    #[test]
    fn rto_is_three_pings_plus_60ms() {
        let mut p = PingTracker::new();
        p.record_sample(at_ms(0), ms(20));
        assert_eq!(p.rto(), ms(120));
    }
}
