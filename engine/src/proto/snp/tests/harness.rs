//! A two-endpoint harness on the virtual-clock network: each datagram is the 8-byte packet
//! number (little endian; there is no real header here) followed by the SNP plaintext.
//!
//! ```text
//!  loop: deliver due datagrams -> receive_packet + poll_message
//!        per side: handle_timeout if due; build_packet while wants_to_send
//!        now = earliest(next_timeout(a), next_timeout(b), next delivery)
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use crate::proto::snp::{AckRequest, ReceivedMessage, Snp, SnpConfig};
use crate::testing::{Datagram, LinkConditions, Network};
use crate::time::Timestamp;
use crate::wire::packet::MAX_PLAINTEXT_SEND;

/// Header + tag bytes the connection layer would add, charged to the token bucket.
pub(super) const OVERHEAD: usize = 7 + 16;
/// Packets one side may build per loop iteration.
const BURST: usize = 64;

/// Two SNP instances, A and B, and the network between them.
pub(super) struct Pair {
    pub a: Snp,
    pub b: Snp,
    pub net: Network,
    pub now: Timestamp,
    addr: [SocketAddr; 2],
    /// Messages delivered to A / B.
    pub got: [Vec<ReceivedMessage>; 2],
    /// When each message in `got` was polled.
    pub got_at: [Vec<Timestamp>; 2],
    /// Whether each side drains its receive queue.
    pub polling: [bool; 2],
    pub iterations: u64,
}

/// A fast config: high send rate so scenarios finish in little virtual time.
pub(super) fn fast_config(rate: u32) -> SnpConfig {
    SnpConfig {
        send_rate_min: rate,
        send_rate_max: rate,
        ..SnpConfig::default()
    }
}

impl Pair {
    pub(super) fn new(seed: u64, cond: LinkConditions, config: SnpConfig) -> Self {
        let now = Timestamp::from_micros(1_000_000);
        let mut a = Snp::new(now, config);
        let mut b = Snp::new(now, config);
        a.set_connected(now, true);
        b.set_connected(now, true);
        Pair {
            a,
            b,
            net: Network::new(seed, cond),
            now,
            addr: [
                "10.0.0.1:1000".parse().expect("invariant: literal"),
                "10.0.0.2:2000".parse().expect("invariant: literal"),
            ],
            got: [Vec::new(), Vec::new()],
            got_at: [Vec::new(), Vec::new()],
            polling: [true, true],
            iterations: 0,
        }
    }

    fn side(&mut self, i: usize) -> &mut Snp {
        if i == 0 { &mut self.a } else { &mut self.b }
    }

    /// One loop iteration at `self.now`, then advances the clock. Returns false when idle.
    pub(super) fn step(&mut self) -> bool {
        self.iterations += 1;
        let now = self.now;
        while let Some(dg) = self.net.poll_deliver(now) {
            let i = usize::from(dg.to == self.addr[1]);
            let (num, body) = dg.payload.split_at(8);
            let pkt = u64::from_le_bytes(num.try_into().expect("invariant: 8 bytes"));
            self.side(i)
                .receive_packet(now, pkt, body, AckRequest::None)
                .expect("peer plaintext must decode");
        }
        for i in 0..2 {
            if self.polling[i] {
                while let Some(m) = self.side(i).poll_message() {
                    self.got[i].push(m);
                    self.got_at[i].push(now);
                }
            }
            if self.side(i).next_timeout(now).is_some_and(|t| t <= now) {
                self.side(i).handle_timeout(now);
            }
            for _ in 0..BURST {
                let mut buf = Vec::with_capacity(1300);
                buf.extend_from_slice(&[0; 8]);
                let Some(p) =
                    self.side(i)
                        .build_packet(now, &mut buf, MAX_PLAINTEXT_SEND, OVERHEAD, false)
                else {
                    break;
                };
                assert!(p.bytes <= MAX_PLAINTEXT_SEND);
                buf[..8].copy_from_slice(&p.packet_number.to_le_bytes());
                let (from, to) = (self.addr[i], self.addr[1 - i]);
                self.net.send(
                    now,
                    Datagram {
                        from,
                        to,
                        payload: buf,
                    },
                );
            }
        }
        let next = [
            self.a.next_timeout(now),
            self.b.next_timeout(now),
            self.net.next_delivery(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => {
                self.now = t.max(now + Duration::from_micros(1));
                true
            }
            None => false,
        }
    }

    /// Steps until `done` holds; panics past `max_time` of virtual time or `max_iters`.
    pub(super) fn run_until(
        &mut self,
        max_time: Duration,
        max_iters: u64,
        mut done: impl FnMut(&mut Pair) -> bool,
    ) {
        let deadline = self.now + max_time;
        let iter_cap = self.iterations + max_iters;
        while !done(self) {
            assert!(
                self.now <= deadline,
                "virtual time cap hit at {:?}",
                self.now
            );
            assert!(self.iterations < iter_cap, "iteration cap hit");
            if self.iterations % 20_000 == 0 && std::env::var("SNP_TRACE").is_ok() {
                let now = self.now;
                eprintln!(
                    "it {} t {:?} got {} {} a {:?} b-next {:?} net {}",
                    self.iterations,
                    now,
                    self.got[0].len(),
                    self.got[1].len(),
                    self.a.status(now),
                    self.b.next_timeout(now),
                    self.net.in_flight()
                );
            }
            if !self.step() {
                // Idle: jump ahead a little so `done` callbacks that feed data get a turn.
                self.now = self.now + Duration::from_millis(1);
            }
        }
    }
}

/// Deterministic payload for (lane, message number, length).
pub(super) fn payload(lane: u8, num: u64, len: usize) -> Vec<u8> {
    let seed = num.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(lane);
    (0..len)
        .map(|i| (seed.wrapping_add(i as u64 * 31) >> 3) as u8)
        .collect()
}

/// A small seeded xorshift for test choices (the network owns its own RNG).
pub(super) struct Rng(pub u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
