//! A bottleneck link: one transmitter serializing at a fixed rate, fed by a finite drop-tail
//! queue, shared by every datagram routed through it (see [`super::Network::route_through`]).
//!
//! ```text
//!  datagrams from many links ─► [ drop-tail queue, capacity in bytes ] ─► serialize at rate
//!       (too big for the free space: dropped, counted)                 └─► link delay + jitter
//! ```
//!
//! The queue holds every admitted datagram whose last byte has not left yet, the one being
//! serialized included, so an idle bottleneck accepts any datagram up to `queue_bytes`.
//! Departure times are exact: the transmitter's clock runs in byte-microseconds (bytes x 1e6,
//! divided by the rate only when read), so rounding never accumulates over a long run.

use std::collections::VecDeque;

use crate::time::Timestamp;

/// Names one bottleneck of a [`super::Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BottleneckId(pub(super) usize);

/// Shape of a bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BottleneckConfig {
    /// Serialization rate in bytes (of UDP payload) per second; must be above zero.
    pub rate_bytes_per_sec: u64,
    /// Drop-tail queue capacity in bytes, the datagram being serialized included.
    pub queue_bytes: usize,
}

impl BottleneckConfig {
    /// A bottleneck of `rate_bytes_per_sec` whose queue holds `bdps` bandwidth-delay products
    /// of a path with round-trip time `rtt`.
    pub fn with_bdp_queue(rate_bytes_per_sec: u64, rtt: std::time::Duration, bdps: f64) -> Self {
        let bdp = rate_bytes_per_sec as f64 * rtt.as_secs_f64();
        BottleneckConfig {
            rate_bytes_per_sec,
            queue_bytes: (bdp * bdps) as usize,
        }
    }
}

/// What one bottleneck did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BottleneckStats {
    /// Datagrams admitted to the queue.
    pub enqueued: u64,
    /// Bytes admitted to the queue.
    pub enqueued_bytes: u64,
    /// Datagrams dropped because the queue was full.
    pub dropped: u64,
    /// Bytes dropped because the queue was full.
    pub dropped_bytes: u64,
    /// Most bytes ever queued at once (after an admission).
    pub max_backlog_bytes: usize,
}

/// The transmitter and queue of one bottleneck.
#[derive(Debug)]
pub(super) struct Bottleneck {
    config: BottleneckConfig,
    /// When the last admitted byte leaves, in byte-microseconds (µs x rate).
    busy_until: u128,
    /// Admitted datagrams not yet fully serialized: (departure in byte-µs, size).
    queue: VecDeque<(u128, usize)>,
    backlog: usize,
    stats: BottleneckStats,
}

impl Bottleneck {
    pub(super) fn new(config: BottleneckConfig) -> Self {
        assert!(
            config.rate_bytes_per_sec > 0,
            "a bottleneck needs a rate above zero"
        );
        Bottleneck {
            config,
            busy_until: 0,
            queue: VecDeque::new(),
            backlog: 0,
            stats: BottleneckStats::default(),
        }
    }

    pub(super) fn config(&self) -> BottleneckConfig {
        self.config
    }

    pub(super) fn stats(&self) -> BottleneckStats {
        self.stats
    }

    /// Bytes queued at `now` (the datagram in service included).
    pub(super) fn backlog(&mut self, now: Timestamp) -> usize {
        self.expire(now);
        self.backlog
    }

    fn expire(&mut self, now: Timestamp) {
        let now_scaled = u128::from(now.as_micros()) * u128::from(self.config.rate_bytes_per_sec);
        while let Some(&(departs, size)) = self.queue.front() {
            if departs > now_scaled {
                break;
            }
            self.queue.pop_front();
            self.backlog -= size;
        }
    }

    /// Offers a datagram of `size` bytes at `now`: returns when its last byte leaves, or `None`
    /// when the queue has no room (drop-tail).
    pub(super) fn admit(&mut self, now: Timestamp, size: usize) -> Option<Timestamp> {
        self.expire(now);
        if self.backlog + size > self.config.queue_bytes {
            self.stats.dropped += 1;
            self.stats.dropped_bytes += size as u64;
            return None;
        }
        let rate = u128::from(self.config.rate_bytes_per_sec);
        let now_scaled = u128::from(now.as_micros()) * rate;
        self.busy_until = self.busy_until.max(now_scaled) + size as u128 * 1_000_000;
        self.queue.push_back((self.busy_until, size));
        self.backlog += size;
        self.stats.enqueued += 1;
        self.stats.enqueued_bytes += size as u64;
        self.stats.max_backlog_bytes = self.stats.max_backlog_bytes.max(self.backlog);
        // Round the departure up to the next microsecond: never earlier than the rate allows.
        let departs_us = self.busy_until.div_ceil(rate);
        Some(Timestamp::from_micros(
            u64::try_from(departs_us).unwrap_or(u64::MAX),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(us: u64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    #[test]
    fn full_queue_drops_the_tail_and_counts_it() {
        // 1000 B/s: a 100-byte datagram takes 100 ms. Room for three.
        let mut b = Bottleneck::new(BottleneckConfig {
            rate_bytes_per_sec: 1000,
            queue_bytes: 300,
        });
        let departures: Vec<_> = (0..5).map(|_| b.admit(at(0), 100)).collect();
        assert_eq!(
            departures,
            vec![
                Some(at(100_000)),
                Some(at(200_000)),
                Some(at(300_000)),
                None,
                None
            ]
        );
        let s = b.stats();
        assert_eq!((s.enqueued, s.dropped), (3, 2));
        assert_eq!((s.enqueued_bytes, s.dropped_bytes), (300, 200));
        assert_eq!(s.max_backlog_bytes, 300);
        // Once the first has left there is room for exactly one more, queued behind the rest.
        assert_eq!(b.backlog(at(100_000)), 200);
        assert_eq!(b.admit(at(100_000), 100), Some(at(400_000)));
        assert_eq!(b.admit(at(100_000), 1), None);
        assert_eq!(b.backlog(at(400_000)), 0);
    }

    #[test]
    fn departures_respect_the_rate_without_drift() {
        // 3 B/s does not divide 1e6: exact byte-µs bookkeeping must not drift.
        let mut b = Bottleneck::new(BottleneckConfig {
            rate_bytes_per_sec: 3,
            queue_bytes: usize::MAX / 2,
        });
        let mut last = Timestamp::ZERO;
        for _ in 0..3000 {
            last = b.admit(Timestamp::ZERO, 1).expect("room");
        }
        assert_eq!(last, at(1_000_000_000), "3000 bytes at 3 B/s take 1000 s");
    }

    #[test]
    fn an_idle_link_starts_serializing_at_once() {
        let mut b = Bottleneck::new(BottleneckConfig::with_bdp_queue(
            1_000_000,
            Duration::from_millis(20),
            1.0,
        ));
        assert_eq!(b.config().queue_bytes, 20_000);
        assert_eq!(b.admit(at(5_000), 1000), Some(at(6_000)));
        // Idle again long after: no credit is banked for the idle time.
        assert_eq!(b.admit(at(50_000), 1000), Some(at(51_000)));
        assert_eq!(b.admit(at(50_000), 1000), Some(at(52_000)));
    }
}
