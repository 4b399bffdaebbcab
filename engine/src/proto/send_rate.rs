//! Send-rate pacing: GNS's token bucket (spec §4.14).
//!
//! Open-source GNS has no congestion control: the rate is `clamp(estimate, min, max)` where the
//! estimate is a fixed initial value, and with the default limits (256 KiB/s both) every
//! connection is paced at exactly 256 KiB/s. The bucket fills at that rate, holds at most one
//! maximum packet of credit when idle, and a send may overdraw it once:
//!
//! ```text
//!   +1248 ---- cap (idle credit)
//!       |  fills at `rate` bytes/s
//!       0 ---- may send while >= 0
//!   -debt ---- after a send that overdrew; wait debt / rate
//! ```
//!
//! The seam for a real rate controller is [`TokenBucket::set_estimate`]: a controller computes
//! an estimate from acks and loss and pushes it in; the limits still clamp it.

use std::time::Duration;

use crate::time::Timestamp;

/// Lowest rate limit GNS accepts internally (1 KiB/s, §4.14).
pub(crate) const SEND_RATE_FLOOR: u32 = 1024;

/// Highest rate limit GNS accepts internally (100 MiB/s, §4.14).
pub(crate) const SEND_RATE_CEILING: u32 = 100 * 1024 * 1024;

/// Default `SendRateMin` and `SendRateMax` (config 10/11, §6): 256 KiB/s.
pub(crate) const SEND_RATE_DEFAULT: u32 = 262_144;

/// Credit the bucket may hold when idle: one maximum UDP payload (§4.14, GNS
/// `k_cbSteamNetworkingSocketsMaxEncryptedPayloadSend`).
pub(crate) const MAX_IDLE_CREDIT: u32 = 1248;

/// Sockworks departs from GNS here: the bucket may also hold up to this much time's worth of
/// credit at the current rate. GNS caps credit at one packet, so a sender that wakes once per
/// timer tick (1-4 ms on Linux) sends one packet per tick whatever the configured rate: that
/// is the ~1 MB/s per-connection ceiling GNS users report (GNS issue #198). At the default
/// 256 KiB/s this allowance is below one packet, so default pacing is unchanged.
pub(crate) const BURST_WINDOW_USEC: u64 = 4_000;

/// Token bucket scale: credit is kept in byte-microseconds so refills are exact integers.
const SCALE: i64 = 1_000_000;

/// Credit earned is computed over at most this long (µs): far past any cap, and small enough
/// that elapsed × rate stays inside an `i64` at any `u32` rate.
const MAX_ACCUMULATE_USEC: u64 = 1_000_000_000;

/// The configured lower and upper bound on the send rate, already clamped to
/// [`SEND_RATE_FLOOR`]..=[`SEND_RATE_CEILING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimits {
    min: u32,
    max: u32,
}

impl RateLimits {
    /// Builds limits from the `SendRateMin`/`SendRateMax` config values, clamping both into
    /// GNS's internal range; a max below the min is raised to the min.
    // GNS: CSteamNetworkConnectionBase::SNP_ClampSendRate
    pub(crate) fn new(min: u32, max: u32) -> Self {
        let min = min.clamp(SEND_RATE_FLOOR, SEND_RATE_CEILING);
        let max = max.clamp(SEND_RATE_FLOOR, SEND_RATE_CEILING).max(min);
        RateLimits { min, max }
    }

    /// The clamped minimum, bytes per second.
    pub(crate) fn min(self) -> u32 {
        self.min
    }

    /// The clamped maximum, bytes per second.
    pub(crate) fn max(self) -> u32 {
        self.max
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(SEND_RATE_DEFAULT, SEND_RATE_DEFAULT)
    }
}

/// The pacing token bucket of one connection.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    limits: RateLimits,
    /// The rate controller's opinion, before clamping.
    estimate: u32,
    /// Credit in byte-microseconds (bytes × [`SCALE`]); may be negative after an overdraw.
    /// An `i64` (not `i128`, which would make the bucket and the connection 16-aligned).
    credit: i64,
    /// When `credit` was last brought up to date.
    updated: Timestamp,
}

impl TokenBucket {
    /// A full bucket at `now`, paced by `limits` with the given initial estimate (GNS starts
    /// from 4380 B / RTT, which the default limits override anyway).
    pub(crate) fn new(now: Timestamp, limits: RateLimits, initial_estimate: u32) -> Self {
        TokenBucket {
            limits,
            estimate: initial_estimate,
            credit: i64::from(MAX_IDLE_CREDIT) * SCALE,
            updated: now,
        }
    }

    /// Replaces the limits (a config change); the bucket's credit is kept.
    pub(crate) fn set_limits(&mut self, now: Timestamp, limits: RateLimits) {
        self.accumulate(now);
        self.limits = limits;
    }

    /// The seam for a rate controller: replaces the unclamped estimate.
    pub(crate) fn set_estimate(&mut self, now: Timestamp, bytes_per_sec: u32) {
        self.accumulate(now);
        self.estimate = bytes_per_sec;
    }

    /// The effective rate, `clamp(estimate, min, max)`, as reported in
    /// `m_nSendRateBytesPerSecond`.
    pub(crate) fn rate(&self) -> u32 {
        self.estimate.clamp(self.limits.min, self.limits.max)
    }

    /// The most credit the bucket holds: one packet, or [`BURST_WINDOW_USEC`] at the current
    /// rate if that is more.
    fn cap(&self) -> i64 {
        let burst = BURST_WINDOW_USEC as i64 * i64::from(self.rate()); // 4000: fits
        (i64::from(MAX_IDLE_CREDIT) * SCALE).max(burst)
    }

    /// Adds the credit earned since the last update, capped (one packet, or the burst window
    /// at the current rate).
    // GNS: CSteamNetworkConnectionBase::SNP_TokenBucket_Accumulate
    pub(crate) fn accumulate(&mut self, now: Timestamp) {
        if now <= self.updated {
            return;
        }
        let elapsed = (now.as_micros() - self.updated.as_micros()).min(MAX_ACCUMULATE_USEC);
        // invariant: elapsed ≤ 1e9 and rate < 2^32, so the product is below 2^62.
        let earned = i64::try_from(elapsed).unwrap_or(i64::MAX) * i64::from(self.rate());
        self.credit = self.credit.saturating_add(earned).min(self.cap());
        self.updated = now;
    }

    /// Whether a packet may go out at `now` (credit ≥ 0; the packet itself may overdraw).
    pub(crate) fn can_send(&mut self, now: Timestamp) -> bool {
        self.accumulate(now);
        self.credit >= 0
    }

    /// Charges a sent packet's UDP payload size.
    pub(crate) fn on_sent(&mut self, now: Timestamp, udp_payload_bytes: usize) {
        self.accumulate(now);
        let bytes = i64::try_from(udp_payload_bytes)
            .unwrap_or(i64::MAX)
            .min(i64::MAX / SCALE);
        self.credit = self.credit.saturating_sub(bytes * SCALE);
    }

    /// How long until [`TokenBucket::can_send`] turns true; zero when it already is. For the
    /// connection's next-wakeup timer.
    pub(crate) fn time_until_send(&mut self, now: Timestamp) -> Duration {
        self.accumulate(now);
        if self.credit >= 0 {
            return Duration::ZERO;
        }
        let rate = i64::from(self.rate().max(1));
        // Round up so the timer never fires early.
        let us = self.credit.saturating_neg().saturating_add(rate - 1) / rate;
        Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    /// Bytes owed after an overdraw (0 when in credit): part of the queue-time estimate (§5.5).
    pub(crate) fn debt_bytes(&mut self, now: Timestamp) -> u64 {
        self.accumulate(now);
        if self.credit >= 0 {
            0
        } else {
            u64::try_from(self.credit.saturating_neg().saturating_add(SCALE - 1) / SCALE)
                .unwrap_or(u64::MAX)
        }
    }

    /// Refills to the idle cap: GNS keeps the bucket full while not connected.
    pub(crate) fn fill(&mut self, now: Timestamp) {
        self.credit = i64::from(MAX_IDLE_CREDIT) * SCALE;
        self.updated = self.updated.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Timestamp {
        Timestamp::from_micros(v)
    }

    #[test]
    fn limits_are_clamped_to_1kib_and_100mib() {
        let l = RateLimits::new(1, u32::MAX);
        assert_eq!((l.min(), l.max()), (SEND_RATE_FLOOR, SEND_RATE_CEILING));
        let l = RateLimits::new(50_000, 10_000);
        assert_eq!((l.min(), l.max()), (50_000, 50_000));
    }

    #[test]
    fn rate_is_estimate_clamped_between_min_and_max() {
        let mut b = TokenBucket::new(us(0), RateLimits::new(10_000, 20_000), 4380);
        assert_eq!(b.rate(), 10_000);
        b.set_estimate(us(0), 1_000_000);
        assert_eq!(b.rate(), 20_000);
        b.set_estimate(us(0), 15_000);
        assert_eq!(b.rate(), 15_000);
    }

    #[test]
    fn idle_credit_is_capped_at_one_packet() {
        let mut b = TokenBucket::new(us(0), RateLimits::default(), 0);
        assert!(b.can_send(us(10_000_000)));
        b.on_sent(us(10_000_000), 1248);
        b.on_sent(us(10_000_000), 1);
        assert!(!b.can_send(us(10_000_000)));
        assert_eq!(b.debt_bytes(us(10_000_000)), 1);
    }

    #[test]
    fn one_packet_may_overdraw_then_sender_waits_for_the_debt() {
        // 1_000_000 B/s = 1 byte per microsecond.
        let mut b = TokenBucket::new(us(0), RateLimits::new(1_000_000, 1_000_000), 0);
        b.on_sent(us(0), 1248); // credit 0: still allowed
        assert!(b.can_send(us(0)));
        b.on_sent(us(0), 1000); // overdraw
        assert!(!b.can_send(us(0)));
        assert_eq!(b.time_until_send(us(0)), Duration::from_micros(1000));
        assert!(!b.can_send(us(999)));
        assert!(b.can_send(us(1000)));
    }

    #[test]
    fn default_rate_paces_256_kib_per_second() {
        let mut b = TokenBucket::new(us(0), RateLimits::default(), 0);
        let mut now = us(0);
        let mut sent = 0u64;
        while now < us(1_000_000) {
            if b.can_send(now) {
                b.on_sent(now, 1000);
                sent += 1000;
            } else {
                now = now + b.time_until_send(now);
            }
        }
        // 1248 B of initial credit + 262144 B/s, give or take one packet.
        assert!((262_144..=262_144 + 1248 + 1000).contains(&sent), "{sent}");
    }

    #[test]
    fn fill_restores_full_credit_while_disconnected() {
        let mut b = TokenBucket::new(us(0), RateLimits::default(), 0);
        b.on_sent(us(0), 100_000);
        b.fill(us(5));
        assert!(b.can_send(us(5)));
        assert_eq!(b.debt_bytes(us(5)), 0);
        b.on_sent(us(5), 1249);
        assert!(!b.can_send(us(5)));
    }
}
