//! Queueing-delay detection: the congestion signal that comes before loss.
//!
//! A loss-only controller fills whatever queue sits in front of the bottleneck before it backs
//! off. When that queue is a GNS peer's own socket buffer (a client process that cannot keep up
//! with its server), the peer reads our acks late, its retransmission timeout (3 × its ping +
//! 60 ms) fires for data we already acked, and it resends its whole flight: a storm on a link
//! that never lost a packet. Watching the delay keeps that queue short instead.
//!
//! Per round trip the smallest RTT sample is kept (the round minimum filters out ack delays
//! and jitter; a standing queue raises every sample). A round whose minimum exceeds the base
//! RTT by more than the threshold is a congestion signal (HyStart++'s test, used beyond slow
//! start, with a larger threshold: a drop-tail queue of up to one bandwidth-delay product, the
//! usual WAN buffer, never triggers it, so loss governs there and flows whose base estimates
//! differ still share fairly; it catches bloated buffers and a peer that has fallen 16 ms or
//! more behind):
//!
//! ```text
//!   threshold = clamp(base, 16 ms, 32 ms)  (the RTT has doubled, and grown by 16 ms at least)
//!   base      = smallest sample of the last 10 s (a path change is picked up within 10 s)
//!   signal    = round_min > base + threshold
//! ```

use std::time::Duration;

use crate::time::Timestamp;

/// Smallest queueing delay that counts. Below it sit clock and scheduling noise, and the
/// processing backlog of a busy peer on a LAN: a closed-loop load (64 messages in flight per
/// connection through a GNS client at its CPU limit) holds 8-12 ms there on loopback, and a 4 ms
/// floor cut the window 43 times in 6 s for no loss, costing 27 % of the throughput.
pub(crate) const MIN_THRESHOLD: Duration = Duration::from_millis(16);

/// Largest queueing delay tolerated before it counts.
pub(crate) const MAX_THRESHOLD: Duration = Duration::from_millis(32);

/// The base RTT is the smallest sample seen in this long.
pub(crate) const BASE_WINDOW: Duration = Duration::from_secs(10);

/// Watches RTT samples for a standing queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDelay {
    /// Smallest sample of the current base window, and when the window started.
    base: Option<(Duration, Timestamp)>,
    /// Smallest sample of the previous base window (kept while the current one fills).
    prev_base: Option<Duration>,
    /// Start of the current round and its smallest sample.
    round: Option<(Timestamp, Duration)>,
}

impl QueueDelay {
    /// A detector with no samples.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The base RTT: the smallest sample of the last one or two base windows.
    pub(crate) fn base(&self) -> Option<Duration> {
        let cur = self.base.map(|(d, _)| d);
        match (cur, self.prev_base) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The queueing delay that counts as a signal for the current base.
    pub(crate) fn threshold(&self) -> Duration {
        self.base()
            .unwrap_or_default()
            .clamp(MIN_THRESHOLD, MAX_THRESHOLD)
    }

    /// Feeds a sample taken at `now`; a round lasts `srtt`. Returns true when a round just
    /// ended whose smallest sample shows a standing queue.
    pub(crate) fn on_sample(&mut self, now: Timestamp, rtt: Duration, srtt: Duration) -> bool {
        match self.base {
            Some((b, since)) if now.saturating_since(since) < BASE_WINDOW => {
                if rtt < b {
                    self.base = Some((rtt, since));
                }
            }
            Some((b, _)) => {
                self.prev_base = Some(b);
                self.base = Some((rtt, now));
            }
            None => self.base = Some((rtt, now)),
        }
        let Some((start, min)) = self.round else {
            self.round = Some((now, rtt));
            return false;
        };
        if now.saturating_since(start) < srtt.max(MIN_THRESHOLD) {
            self.round = Some((start, min.min(rtt)));
            return false;
        }
        self.round = Some((now, rtt));
        let base = self.base().unwrap_or(min);
        min > base + self.threshold()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn at(v: u64) -> Timestamp {
        Timestamp::from_micros(v * 1000)
    }

    /// Feeds `rtt` every millisecond from `from` to `to`; returns how many rounds signalled.
    fn feed(q: &mut QueueDelay, from: u64, to: u64, rtt: Duration) -> usize {
        (from..to).filter(|&t| q.on_sample(at(t), rtt, rtt)).count()
    }

    #[test]
    fn a_steady_path_never_signals() {
        let mut q = QueueDelay::new();
        assert_eq!(feed(&mut q, 0, 2000, ms(20)), 0);
        assert_eq!(q.base(), Some(ms(20)));
        assert_eq!(q.threshold(), ms(20));
    }

    #[test]
    fn a_standing_queue_signals_once_per_round() {
        let mut q = QueueDelay::new();
        feed(&mut q, 0, 100, ms(20));
        // 25 ms of queue on a 20 ms path (threshold 20 ms): about one signal per 45 ms round.
        let n = feed(&mut q, 100, 550, ms(45));
        assert!((9..=11).contains(&n), "{n}");
    }

    #[test]
    fn queueing_below_the_threshold_is_tolerated() {
        let mut q = QueueDelay::new();
        feed(&mut q, 0, 100, ms(20));
        assert_eq!(feed(&mut q, 100, 1000, ms(39)), 0);
    }

    #[test]
    fn a_single_low_sample_in_a_round_clears_it() {
        let mut q = QueueDelay::new();
        feed(&mut q, 0, 100, ms(20));
        let mut signals = 0;
        for t in 100..1000 {
            // Mostly queued samples, but each round sees one clean one: jitter, not a queue.
            let rtt = if t % 10 == 0 { ms(21) } else { ms(60) };
            signals += usize::from(q.on_sample(at(t), rtt, ms(20)));
        }
        assert_eq!(signals, 0);
    }

    #[test]
    fn small_rtts_use_the_16ms_floor_and_the_base_follows_a_path_change() {
        let mut q = QueueDelay::new();
        feed(&mut q, 0, 100, Duration::from_micros(200));
        assert_eq!(q.threshold(), MIN_THRESHOLD);
        assert_eq!(
            feed(&mut q, 100, 200, ms(16)),
            0,
            "15.8 ms of queue is below 16 ms"
        );
        assert!(feed(&mut q, 200, 300, ms(17)) > 0);
        // The path itself got longer: after two base windows the old base is gone.
        feed(&mut q, 300, 21_000, ms(50));
        assert_eq!(q.base(), Some(ms(50)));
        assert_eq!(feed(&mut q, 21_000, 22_000, ms(50)), 0);
    }
}
