//! GNS's fake network conditions (spec §6: `FakePacketLoss_*`, `FakePacketLag_*`,
//! `FakePacketReorder_*`, `FakePacketDup_*`), applied by the endpoint to what it sends and
//! receives, so an application can test under loss without `tc netem`.
//!
//! Deterministic: draws come from the endpoint's seeded RNG, time is passed in. Delayed
//! datagrams wait in a queue ordered by release time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

use crate::time::Timestamp;

/// One direction's fake conditions. Percentages are 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FakeConditions {
    /// Chance a datagram is dropped.
    pub loss_pct: f32,
    /// Fixed extra delay.
    pub lag: Duration,
    /// Chance a datagram gets `reorder_time` more delay (so later ones overtake it).
    pub reorder_pct: f32,
    /// Extra delay of a reordered datagram (GNS default 15 ms).
    pub reorder_time: Duration,
    /// Chance a datagram is sent twice.
    pub dup_pct: f32,
    /// The duplicate is delayed by a random 0..=this (GNS default 10 ms).
    pub dup_time_max: Duration,
}

impl FakeConditions {
    /// Whether any knob is on (the fast path skips everything otherwise).
    pub fn active(&self) -> bool {
        self.loss_pct > 0.0 || !self.lag.is_zero() || self.reorder_pct > 0.0 || self.dup_pct > 0.0
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    at: Timestamp,
    seq: u64,
    local: u16,
    addr: SocketAddr,
    data: Vec<u8>,
}

/// A delay line for one direction.
#[derive(Debug, Default)]
pub struct FakeLine {
    /// The conditions in force.
    pub conditions: FakeConditions,
    held: BinaryHeap<Reverse<Held>>,
    seq: u64,
    /// Datagrams dropped by the loss knob.
    pub dropped: u64,
}

fn roll(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 100.0
}

impl FakeLine {
    /// Passes a datagram through: `Some` to handle it now, `None` if dropped or held back.
    pub fn admit(
        &mut self,
        now: Timestamp,
        rng: &mut ChaCha8Rng,
        addr: SocketAddr,
        data: &[u8],
    ) -> bool {
        self.admit_on(now, rng, 0, addr, data)
    }

    /// [`FakeLine::admit`] for a datagram of local socket `local` (a shard's endpoint may own
    /// several sockets; the tag comes back from [`FakeLine::release_on`]).
    pub fn admit_on(
        &mut self,
        now: Timestamp,
        rng: &mut ChaCha8Rng,
        local: u16,
        addr: SocketAddr,
        data: &[u8],
    ) -> bool {
        let c = self.conditions;
        if roll(rng) < c.loss_pct {
            self.dropped += 1;
            return false;
        }
        if c.dup_pct > 0.0 && roll(rng) < c.dup_pct {
            let max = u64::try_from(c.dup_time_max.as_micros()).unwrap_or(u64::MAX);
            let extra = Duration::from_micros(if max == 0 {
                0
            } else {
                rng.next_u64() % (max + 1)
            });
            self.hold(now + c.lag + extra, local, addr, data.to_vec());
        }
        let mut delay = c.lag;
        if c.reorder_pct > 0.0 && roll(rng) < c.reorder_pct {
            delay += c.reorder_time;
        }
        if delay.is_zero() {
            return true;
        }
        self.hold(now + delay, local, addr, data.to_vec());
        false
    }

    fn hold(&mut self, at: Timestamp, local: u16, addr: SocketAddr, data: Vec<u8>) {
        self.seq += 1;
        self.held.push(Reverse(Held {
            at,
            seq: self.seq,
            local,
            addr,
            data,
        }));
    }

    /// When the next held datagram is due.
    pub fn next_release(&self) -> Option<Timestamp> {
        self.held.peek().map(|h| h.0.at)
    }

    /// A held datagram due at `now`.
    pub fn release(&mut self, now: Timestamp) -> Option<(SocketAddr, Vec<u8>)> {
        self.release_on(now).map(|(_, a, d)| (a, d))
    }

    /// A held datagram due at `now`, with the local socket it was admitted on.
    pub fn release_on(&mut self, now: Timestamp) -> Option<(u16, SocketAddr, Vec<u8>)> {
        if self.held.peek()?.0.at > now {
            return None;
        }
        self.held.pop().map(|h| (h.0.local, h.0.addr, h.0.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn loss_lag_and_dup_behave() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut line = FakeLine::default();
        assert!(
            line.admit(Timestamp::ZERO, &mut rng, a, b"x"),
            "no knobs: pass through"
        );
        line.conditions = FakeConditions {
            loss_pct: 50.0,
            ..Default::default()
        };
        let passed = (0..10_000)
            .filter(|_| line.admit(Timestamp::ZERO, &mut rng, a, b"x"))
            .count();
        assert!((4_500..5_500).contains(&passed), "{passed}");
        line.conditions = FakeConditions {
            lag: Duration::from_millis(30),
            dup_pct: 100.0,
            ..Default::default()
        };
        assert!(!line.admit(Timestamp::ZERO, &mut rng, a, b"y"));
        assert_eq!(line.release(Timestamp::from_micros(29_999)), None);
        assert_eq!(
            line.release(Timestamp::from_micros(30_000)),
            Some((a, b"y".to_vec()))
        );
        assert_eq!(
            line.release(Timestamp::from_micros(30_000)),
            Some((a, b"y".to_vec()))
        );
        assert_eq!(line.next_release(), None);
    }
}
