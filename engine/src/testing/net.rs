//! The simulated network: datagrams between socket addresses, each direction of each pair of
//! addresses with its own [`LinkConditions`], delivered in virtual time.
//!
//! ```text
//!  send(now, dg) ─► drop? (loss, MTU) ─► corrupt? ─► bottleneck? ─► link rate ─► delay + jitter
//!                   └─► duplicate? (second copy, its own delay)            └─► reorder? (+delay)
//!                                                     in-flight heap keyed by (deliver_at, seq)
//!  poll_deliver(now) ◄── earliest datagram whose deliver_at <= now
//! ```
//!
//! Jitter alone never reorders (a link's deliveries stay FIFO unless the reorder knob picks a
//! datagram), matching how GNS separates "jitter" (clumping) from "reorder".
//!
//! A [`Bottleneck`](super::bottleneck) is shared by every link routed through it
//! ([`Network::route_through`], [`Network::route_to`]): a finite drop-tail queue served at a
//! fixed rate, after which the link's own rate limit, delay and jitter apply. Duplicate copies
//! ride along with their original and are not charged to the bottleneck.

use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::bottleneck::{Bottleneck, BottleneckConfig, BottleneckId, BottleneckStats};
use crate::time::Timestamp;

/// One UDP datagram in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender address.
    pub from: SocketAddr,
    /// Receiver address.
    pub to: SocketAddr,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// What one direction of a link does to datagrams. Percentages are 0.0..=100.0.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConditions {
    /// Chance a datagram is lost.
    pub loss_pct: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in 0..=jitter, that never reorders the link.
    pub jitter: Duration,
    /// Chance a datagram is held back by `reorder_delay`, letting later ones overtake it.
    pub reorder_pct: f64,
    /// How long a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Chance a datagram is delivered twice (the copy gets up to `reorder_delay` extra).
    pub dup_pct: f64,
    /// Chance one random byte of the datagram is flipped.
    pub corrupt_pct: f64,
    /// Datagrams larger than this are dropped (path MTU for UDP payloads).
    pub mtu: usize,
    /// Link rate in bytes per second (serialization delay); `None` = infinite.
    pub rate_bytes_per_sec: Option<u64>,
}

impl Default for LinkConditions {
    fn default() -> Self {
        LinkConditions {
            loss_pct: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder_pct: 0.0,
            reorder_delay: Duration::from_millis(15),
            dup_pct: 0.0,
            corrupt_pct: 0.0,
            mtu: 1500,
            rate_bytes_per_sec: None,
        }
    }
}

impl LinkConditions {
    /// A clean link with a fixed one-way delay.
    pub fn with_delay(delay: Duration) -> Self {
        LinkConditions {
            delay,
            ..Default::default()
        }
    }
}

/// What the network did, for assertions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to `send`.
    pub sent: u64,
    /// Datagrams handed out by `poll_deliver`.
    pub delivered: u64,
    /// Dropped by the loss knob.
    pub lost: u64,
    /// Dropped for exceeding the MTU.
    pub too_big: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams with a flipped byte.
    pub corrupted: u64,
    /// Datagrams held back to reorder.
    pub reordered: u64,
    /// Dropped by a full bottleneck queue (all bottlenecks together).
    pub queue_dropped: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct InFlight {
    deliver_at: Timestamp,
    seq: u64,
    dg: Datagram,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Min-heap on (deliver_at, seq): earliest first, FIFO among equal times.
        (other.deliver_at, other.seq).cmp(&(self.deliver_at, self.seq))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
struct LinkState {
    /// When the rate limiter finishes serializing the previous datagram.
    busy_until: Timestamp,
    /// Latest in-order delivery time on this link, so jitter keeps FIFO order.
    last_delivery: Timestamp,
}

/// A deterministic network of addresses. Links default to `default_conditions`; each
/// direction can be overridden with [`Network::set_link`].
#[derive(Debug)]
pub struct Network {
    rng: ChaCha8Rng,
    default_conditions: LinkConditions,
    links: HashMap<(SocketAddr, SocketAddr), LinkConditions>,
    state: HashMap<(SocketAddr, SocketAddr), LinkState>,
    in_flight: BinaryHeap<InFlight>,
    seq: u64,
    stats: NetStats,
    bottlenecks: Vec<Bottleneck>,
    /// Links (one direction) routed through a bottleneck; checked before `routes_to`.
    routes: HashMap<(SocketAddr, SocketAddr), BottleneckId>,
    /// Destinations all of whose incoming datagrams cross a bottleneck.
    routes_to: HashMap<SocketAddr, BottleneckId>,
}

impl Network {
    /// A network whose randomness is fully determined by `seed`.
    pub fn new(seed: u64, default_conditions: LinkConditions) -> Self {
        Network {
            rng: ChaCha8Rng::seed_from_u64(seed),
            default_conditions,
            links: HashMap::new(),
            state: HashMap::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
            stats: NetStats::default(),
            bottlenecks: Vec::new(),
            routes: HashMap::new(),
            routes_to: HashMap::new(),
        }
    }

    /// Adds a bottleneck; route links through it with [`Network::route_through`] or
    /// [`Network::route_to`].
    pub fn add_bottleneck(&mut self, config: BottleneckConfig) -> BottleneckId {
        self.bottlenecks.push(Bottleneck::new(config));
        BottleneckId(self.bottlenecks.len() - 1)
    }

    /// Sends every datagram of the direction `from -> to` through bottleneck `id`.
    pub fn route_through(&mut self, from: SocketAddr, to: SocketAddr, id: BottleneckId) {
        self.routes.insert((from, to), id);
    }

    /// Sends every datagram addressed to `to` (from anyone not routed with
    /// [`Network::route_through`]) through bottleneck `id`.
    pub fn route_to(&mut self, to: SocketAddr, id: BottleneckId) {
        self.routes_to.insert(to, id);
    }

    /// The configuration of bottleneck `id`.
    pub fn bottleneck_config(&self, id: BottleneckId) -> BottleneckConfig {
        self.bottlenecks[id.0].config()
    }

    /// What bottleneck `id` did so far.
    pub fn bottleneck_stats(&self, id: BottleneckId) -> BottleneckStats {
        self.bottlenecks[id.0].stats()
    }

    /// Bytes queued at bottleneck `id` at `now`, the datagram in service included.
    pub fn bottleneck_backlog(&mut self, id: BottleneckId, now: Timestamp) -> usize {
        self.bottlenecks[id.0].backlog(now)
    }

    /// Overrides the conditions of the direction `from -> to`.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, conditions: LinkConditions) {
        self.links.insert((from, to), conditions);
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Datagrams still in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Uniform draw in [0, 100).
    fn roll_pct(&mut self) -> f64 {
        // 53 random bits -> [0, 1), as f64 carries 53 bits of mantissa.
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }

    fn uniform(&mut self, max: Duration) -> Duration {
        let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        if max_us == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.rng.next_u64() % (max_us + 1))
    }

    /// Hands a datagram to the network at `now`.
    pub fn send(&mut self, now: Timestamp, mut dg: Datagram) {
        self.stats.sent += 1;
        let key = (dg.from, dg.to);
        let cond = self
            .links
            .get(&key)
            .unwrap_or(&self.default_conditions)
            .clone();
        if dg.payload.len() > cond.mtu {
            self.stats.too_big += 1;
            return;
        }
        if self.roll_pct() < cond.loss_pct {
            self.stats.lost += 1;
            return;
        }
        if !dg.payload.is_empty() && self.roll_pct() < cond.corrupt_pct {
            let i = (self.rng.next_u64() % dg.payload.len() as u64) as usize;
            let bit = 1u8 << (self.rng.next_u64() % 8);
            dg.payload[i] ^= bit;
            self.stats.corrupted += 1;
        }
        let jitter = self.uniform(cond.jitter);
        let reorder = self.roll_pct() < cond.reorder_pct;
        let dup = self.roll_pct() < cond.dup_pct;
        let dup_extra = self.uniform(cond.reorder_delay);

        let route = self
            .routes
            .get(&key)
            .or_else(|| self.routes_to.get(&dg.to))
            .copied();
        let leaves_at = match route {
            Some(id) => match self.bottlenecks[id.0].admit(now, dg.payload.len()) {
                Some(t) => t,
                None => {
                    self.stats.queue_dropped += 1;
                    return;
                }
            },
            None => now,
        };
        let state = self.state.entry(key).or_default();
        let start = match cond.rate_bytes_per_sec {
            Some(rate) if rate > 0 => {
                let begin = leaves_at.max(state.busy_until);
                let serialize = Duration::from_micros(dg.payload.len() as u64 * 1_000_000 / rate);
                state.busy_until = begin + serialize;
                state.busy_until
            }
            _ => leaves_at,
        };
        let mut deliver_at = (start + cond.delay + jitter).max(state.last_delivery);
        state.last_delivery = deliver_at;
        if reorder {
            deliver_at = deliver_at + cond.reorder_delay;
            self.stats.reordered += 1;
        }
        if dup {
            self.stats.duplicated += 1;
            let copy = dg.clone();
            self.push(deliver_at + dup_extra, copy);
        }
        self.push(deliver_at, dg);
    }

    fn push(&mut self, deliver_at: Timestamp, dg: Datagram) {
        self.seq += 1;
        self.in_flight.push(InFlight {
            deliver_at,
            seq: self.seq,
            dg,
        });
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        self.in_flight.peek().map(|f| f.deliver_at)
    }

    /// The next datagram due at or before `now`, earliest first.
    pub fn poll_deliver(&mut self, now: Timestamp) -> Option<Datagram> {
        if self.in_flight.peek()?.deliver_at > now {
            return None;
        }
        self.stats.delivered += 1;
        self.in_flight.pop().map(|f| f.dg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn dg(n: u32) -> Datagram {
        Datagram {
            from: addr(1),
            to: addr(2),
            payload: n.to_le_bytes().to_vec(),
        }
    }

    fn drain(net: &mut Network) -> Vec<(Timestamp, u32)> {
        let mut out = Vec::new();
        while let Some(t) = net.next_delivery() {
            let d = net.poll_deliver(t).expect("due datagram");
            out.push((t, u32::from_le_bytes(d.payload[..4].try_into().unwrap())));
        }
        out
    }

    #[test]
    fn same_seed_same_fate() {
        let cond = LinkConditions {
            loss_pct: 30.0,
            jitter: Duration::from_millis(5),
            reorder_pct: 10.0,
            dup_pct: 5.0,
            ..LinkConditions::with_delay(Duration::from_millis(20))
        };
        let run = |seed| {
            let mut net = Network::new(seed, cond.clone());
            for i in 0..500 {
                net.send(Timestamp::from_micros(u64::from(i) * 1000), dg(i));
            }
            drain(&mut net)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn loss_rate_is_close_to_the_setting() {
        let mut net = Network::new(
            1,
            LinkConditions {
                loss_pct: 30.0,
                ..Default::default()
            },
        );
        for i in 0..10_000 {
            net.send(Timestamp::ZERO, dg(i));
        }
        let lost = net.stats().lost;
        assert!(
            (2_700..3_300).contains(&lost),
            "lost {lost} of 10000 at 30 %"
        );
        assert_eq!(drain(&mut net).len() as u64, 10_000 - lost);
    }

    #[test]
    fn delay_and_fifo_without_reorder() {
        let cond = LinkConditions {
            jitter: Duration::from_millis(10),
            ..LinkConditions::with_delay(Duration::from_millis(50))
        };
        let mut net = Network::new(3, cond);
        for i in 0..100 {
            net.send(Timestamp::from_micros(u64::from(i) * 100), dg(i));
        }
        let got = drain(&mut net);
        assert_eq!(got.len(), 100);
        assert!(
            got.windows(2).all(|w| w[0].1 < w[1].1),
            "jitter must not reorder"
        );
        assert!(got.iter().all(|(t, _)| t.as_micros() >= 50_000));
        assert_eq!(net.poll_deliver(Timestamp::MAX), None);
    }

    #[test]
    fn reorder_duplicate_corrupt_and_mtu() {
        let cond = LinkConditions {
            reorder_pct: 20.0,
            dup_pct: 10.0,
            corrupt_pct: 10.0,
            mtu: 3,
            ..LinkConditions::with_delay(Duration::from_millis(1))
        };
        let mut net = Network::new(4, cond.clone());
        for i in 0..1000 {
            net.send(Timestamp::from_micros(u64::from(i) * 100), dg(i));
        }
        assert_eq!(
            net.stats().too_big,
            1000,
            "4-byte datagrams exceed a 3-byte MTU"
        );
        let mut net = Network::new(4, LinkConditions { mtu: 1500, ..cond });
        for i in 0..1000 {
            net.send(Timestamp::from_micros(u64::from(i) * 100), dg(i));
        }
        let s = net.stats();
        let got = drain(&mut net);
        assert_eq!(got.len() as u64, 1000 + s.duplicated);
        assert!(
            s.duplicated > 50 && s.corrupted > 50 && s.reordered > 100,
            "{s:?}"
        );
        assert!(
            got.windows(2).any(|w| w[0].1 > w[1].1),
            "some overtaking happened"
        );
    }

    #[test]
    fn rate_limit_spaces_datagrams() {
        let cond = LinkConditions {
            rate_bytes_per_sec: Some(4_000),
            ..Default::default()
        };
        let mut net = Network::new(5, cond);
        for i in 0..10 {
            net.send(Timestamp::ZERO, dg(i));
        }
        let got = drain(&mut net);
        // 4 bytes at 4000 B/s = 1 ms each.
        let times: Vec<u64> = got.iter().map(|(t, _)| t.as_micros()).collect();
        assert_eq!(times, (1..=10).map(|i| i * 1000).collect::<Vec<_>>());
    }

    fn dg_between(from: u16, to: u16, n: u32, size: usize) -> Datagram {
        let mut payload = vec![0u8; size];
        payload[..4].copy_from_slice(&n.to_le_bytes());
        Datagram {
            from: addr(from),
            to: addr(to),
            payload,
        }
    }

    #[test]
    fn bottleneck_is_shared_by_the_links_routed_through_it() {
        // 1 MB/s, 10 ms after the bottleneck, a queue of 5 datagrams of 1000 bytes.
        let mut net = Network::new(9, LinkConditions::with_delay(Duration::from_millis(10)));
        let b = net.add_bottleneck(BottleneckConfig {
            rate_bytes_per_sec: 1_000_000,
            queue_bytes: 5_000,
        });
        net.route_through(addr(1), addr(2), b);
        net.route_to(addr(3), b);
        for i in 0..4 {
            net.send(Timestamp::ZERO, dg_between(1, 2, i, 1000));
            net.send(Timestamp::ZERO, dg_between(1, 3, 100 + i, 1000));
        }
        // Not routed: unaffected.
        net.send(Timestamp::ZERO, dg_between(2, 1, 200, 1000));
        let s = net.stats();
        assert_eq!(s.queue_dropped, 3, "8 offered to a 5-datagram queue");
        assert_eq!(net.bottleneck_stats(b).dropped, 3);
        assert_eq!(net.bottleneck_stats(b).enqueued, 5);
        let got = drain(&mut net);
        let times: Vec<(u64, u32)> = got.iter().map(|(t, n)| (t.as_micros(), *n)).collect();
        assert_eq!(
            times,
            vec![
                (10_000, 200),
                (11_000, 0),
                (12_000, 100),
                (13_000, 1),
                (14_000, 101),
                (15_000, 2),
            ]
        );
    }

    #[test]
    fn bottleneck_rate_is_respected_under_overload() {
        // Offer 10x a 100 kB/s bottleneck for 10 s: ~1 MB delivered, the rest dropped.
        let mut net = Network::new(10, LinkConditions::with_delay(Duration::from_millis(5)));
        let b = net.add_bottleneck(BottleneckConfig::with_bdp_queue(
            100_000,
            Duration::from_millis(20),
            1.0,
        ));
        net.route_to(addr(2), b);
        let mut delivered_bytes = 0usize;
        let mut last = Timestamp::ZERO;
        for ms in 0..10_000u64 {
            let now = Timestamp::from_micros(ms * 1000);
            net.send(now, dg_between(1, 2, ms as u32, 1000));
            while let Some(d) = net.poll_deliver(now) {
                delivered_bytes += d.payload.len();
                last = now;
            }
        }
        let s = net.stats();
        let bs = net.bottleneck_stats(b);
        assert_eq!(s.sent, 10_000);
        assert_eq!(bs.enqueued + bs.dropped, 10_000);
        assert_eq!(s.queue_dropped, bs.dropped);
        assert!(bs.max_backlog_bytes <= 2_000, "{bs:?}");
        // 100 kB/s for 10 s minus the delay and what is still queued.
        assert!(
            (990_000..=1_000_000).contains(&delivered_bytes),
            "{delivered_bytes} bytes by {last:?}"
        );
        assert_eq!(
            u64::try_from(delivered_bytes).unwrap() + (net.in_flight() as u64) * 1000,
            bs.enqueued_bytes
        );
    }

    #[test]
    fn per_link_override() {
        let mut net = Network::new(6, LinkConditions::default());
        net.set_link(
            addr(1),
            addr(2),
            LinkConditions {
                loss_pct: 100.0,
                ..Default::default()
            },
        );
        net.send(Timestamp::ZERO, dg(1));
        let back = Datagram {
            from: addr(2),
            to: addr(1),
            payload: vec![9],
        };
        net.send(Timestamp::ZERO, back.clone());
        assert_eq!(net.poll_deliver(Timestamp::ZERO), Some(back));
        assert_eq!(net.stats().lost, 1);
    }
}
