//! Round-trip estimation for loss recovery and congestion control (RFC 6298, RFC 9002 §5).
//!
//! GNS's own ping (`ping.rs`, the mean of the two smallest of the last three samples) is
//! biased low on purpose: it is what GNS reports in `m_nPing`, and Sockworks keeps reporting
//! it. A retransmission timeout built on it (`3 × ping + 60 ms`) fires as soon as queueing
//! delay grows past a few pings, and GNS then declares everything in flight lost at once: a
//! retransmission storm under overload. This estimator follows the path instead:
//!
//! ```text
//!   first sample r:   srtt = r          rttvar = r / 2
//!   later samples:    rttvar = 3/4 rttvar + 1/4 |srtt − r|
//!                     srtt   = 7/8 srtt   + 1/8 r
//!   rto = srtt + max(4 rttvar, 1 ms) + max ack delay (+ 10 ms), × 2^backoff, ≤ 60 s
//! ```
//!
//! The peer's reported ack delay is already taken out of each sample (`sent_packets`), so the
//! timeout adds GNS's maximum ack delay (50 ms) for the acks that wait for it.

use std::time::Duration;

/// Before the first sample (RFC 6298 says 1 s; GNS uses 1 s too).
pub(crate) const INITIAL_RTO: Duration = Duration::from_secs(1);

/// The longest a GNS receiver holds an ack for reliable data (`k_usecMaxDataAckDelay`, 50 ms)
/// plus 10 ms of slack, as GNS's own RTO adds.
pub(crate) const ACK_DELAY_SLACK: Duration = Duration::from_millis(60);

/// Clock granularity floor of the variance term (RFC 9002 `kGranularity`).
pub(crate) const GRANULARITY: Duration = Duration::from_millis(1);

/// Upper bound of the backed-off timeout (RFC 6298 allows ≥ 60 s).
pub(crate) const MAX_RTO: Duration = Duration::from_secs(60);

/// Backoff doublings stop here (2^6 = 64 × the base timeout).
const MAX_BACKOFF: u32 = 6;

/// Smoothed RTT, variance and the backed-off retransmission timeout of one connection.
///
/// Kept in whole nanoseconds (`Duration`'s own precision, so the arithmetic is exactly that
/// of `Duration`), with `u64::MAX` for "no sample": 40 bytes instead of 72 per connection.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    smoothed_ns: u64,
    var_ns: u64,
    latest_ns: u64,
    min_ns: u64,
    backoff: u32,
}

/// "No sample yet" in the nanosecond fields.
const NONE: u64 = u64::MAX;

fn ns(d: Duration) -> u64 {
    // Below NONE for any RTT (584 years).
    u64::try_from(d.as_nanos())
        .unwrap_or(NONE - 1)
        .min(NONE - 1)
}

fn opt(v: u64) -> Option<Duration> {
    (v != NONE).then(|| Duration::from_nanos(v))
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator {
            smoothed_ns: NONE,
            var_ns: 0,
            latest_ns: 0,
            min_ns: NONE,
            backoff: 0,
        }
    }
}

impl RttEstimator {
    /// An estimator with no sample yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one sample (ack delay already subtracted).
    pub fn on_sample(&mut self, rtt: Duration) {
        let rtt = ns(rtt);
        self.latest_ns = rtt;
        self.min_ns = self.min_ns.min(rtt);
        if self.smoothed_ns == NONE {
            self.smoothed_ns = rtt;
            self.var_ns = rtt / 2;
        } else {
            let s = self.smoothed_ns;
            let diff = s.abs_diff(rtt);
            self.var_ns = self.var_ns.saturating_mul(3).saturating_add(diff) / 4;
            self.smoothed_ns = (s.saturating_mul(7).saturating_add(rtt) / 8).min(NONE - 1);
        }
    }

    /// Smoothed RTT; `None` before the first sample.
    pub fn smoothed(&self) -> Option<Duration> {
        opt(self.smoothed_ns)
    }

    /// The most recent sample (zero before the first).
    pub fn latest(&self) -> Duration {
        Duration::from_nanos(self.latest_ns)
    }

    /// The smallest sample seen.
    pub fn min(&self) -> Option<Duration> {
        opt(self.min_ns)
    }

    /// The RTT variance estimate.
    pub fn var(&self) -> Duration {
        Duration::from_nanos(self.var_ns)
    }

    /// The timeout before backoff.
    pub fn base_rto(&self) -> Duration {
        match self.smoothed() {
            None => INITIAL_RTO,
            Some(s) => s + (self.var() * 4).max(GRANULARITY) + ACK_DELAY_SLACK,
        }
    }

    /// The timeout in force: the base doubled once per consecutive expiry.
    pub fn rto(&self) -> Duration {
        (self.base_rto() * (1u32 << self.backoff)).min(MAX_RTO)
    }

    /// The timer expired with nothing acked since the last expiry: double the timeout.
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
    }

    /// New data was acked: the path works again, the timeout returns to its base.
    pub fn on_progress(&mut self) {
        self.backoff = 0;
    }

    /// Consecutive expiries without progress.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// How long a packet may stay unacked after a later one was acked before it counts as
    /// lost (RFC 9002 §6.1.2: 9/8 × max(srtt, latest), at least 1 ms).
    pub fn loss_delay(&self) -> Duration {
        let base = self.smoothed().unwrap_or(INITIAL_RTO).max(self.latest());
        (base * 9 / 8).max(GRANULARITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn without_samples_the_timeout_is_one_second() {
        let r = RttEstimator::new();
        assert_eq!(r.smoothed(), None);
        assert_eq!(r.rto(), INITIAL_RTO);
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut r = RttEstimator::new();
        r.on_sample(ms(100));
        assert_eq!(r.smoothed(), Some(ms(100)));
        assert_eq!(r.var(), ms(50));
        // 100 + 4 × 50 + 60
        assert_eq!(r.rto(), ms(360));
    }

    #[test]
    fn later_samples_follow_rfc_6298_weights() {
        let mut r = RttEstimator::new();
        r.on_sample(ms(100));
        r.on_sample(ms(180));
        // rttvar = 3/4 × 50 + 1/4 × 80 = 57.5; srtt = 7/8 × 100 + 1/8 × 180 = 110
        assert_eq!(r.var(), Duration::from_micros(57_500));
        assert_eq!(r.smoothed(), Some(ms(110)));
        assert_eq!(r.min(), Some(ms(100)));
        assert_eq!(r.latest(), ms(180));
    }

    #[test]
    fn timeout_tracks_a_growing_queue_instead_of_the_minimum() {
        let mut r = RttEstimator::new();
        for i in 0..50 {
            r.on_sample(ms(10 + i * 4));
        }
        // The path's RTT climbed to ~200 ms: the timeout must sit above it, where GNS's
        // 3 × (two smallest of the last three) + 60 ms would sit near 650 ms only by luck.
        assert!(r.rto() > ms(200), "{:?}", r.rto());
    }

    #[test]
    fn backoff_doubles_and_progress_resets() {
        let mut r = RttEstimator::new();
        r.on_sample(ms(20));
        let base = r.rto();
        r.on_timeout();
        assert_eq!(r.rto(), base * 2);
        r.on_timeout();
        assert_eq!(r.rto(), base * 4);
        for _ in 0..20 {
            r.on_timeout();
        }
        assert_eq!(r.backoff(), MAX_BACKOFF);
        r.on_progress();
        assert_eq!(r.rto(), base);
    }

    #[test]
    fn backed_off_timeout_is_capped() {
        let mut r = RttEstimator::new();
        r.on_sample(Duration::from_secs(2));
        for _ in 0..10 {
            r.on_timeout();
        }
        assert_eq!(r.rto(), MAX_RTO);
    }

    #[test]
    fn loss_delay_is_nine_eighths_of_the_larger_rtt() {
        let mut r = RttEstimator::new();
        r.on_sample(ms(80));
        assert_eq!(r.loss_delay(), ms(90));
        let mut tiny = RttEstimator::new();
        tiny.on_sample(Duration::from_micros(100));
        assert_eq!(tiny.loss_delay(), GRANULARITY);
    }
}
