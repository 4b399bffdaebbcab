//! The stateful fuzz target: a connected client/server [`Pair`] on the seeded simulator, driven
//! by an arbitrary sequence of [`Op`]s (sends on lanes, the fate of each datagram, time, close,
//! config changes), with the invariants checked after every step:
//!
//! - no panic, and no timer that stays due after it was handled (a spinning event loop);
//! - reliable messages arrive exactly once, in order per lane, with the bytes and message
//!   number they were sent with; unreliable ones at most once, with the right bytes;
//! - memory stays bounded: unsent bytes within the largest send buffer configured plus one
//!   message's framing, the receiver's stream buffers, reassembly fragments, queue and gap
//!   lists within their limits;
//! - without closes, forged datagrams or lowered receive limits, a connection ends only by
//!   timeout;
//! - at the end, on a clean link, every reliable message still owed is delivered and the
//!   sender lets go of every byte it held.
//!
//! ```text
//!  Pair (handshake on a clean link) ─► ops ─┬─ Send / Close / config ─► endpoints
//!                                          ├─ wire: datagrams the endpoints emitted, which
//!                                          │  ops deliver, drop, duplicate, swap, mangle, replay
//!                                          ├─ Advance: timers only; Settle: the simulator's
//!                                          │  Network (seeded loss / reorder / dup / corrupt)
//!                                          └─ after each: drain (if auto_poll), check
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::proto::connection::{ConnectionConfig, State};
use crate::proto::endpoint::{Endpoint, EndpointConfig};
use crate::proto::handshake::end_reason;
use crate::proto::reassembly::MAX_BUFFERED_SEGMENTS;
use crate::proto::recv_packets::MAX_TRACKED_GAPS;
use crate::proto::snp::{MAX_UNRELIABLE_MESSAGE, ReceivedMessage, SnpConfig, send_flags};
use crate::testing::{Datagram, LinkConditions, Pair};
use crate::time::Timestamp;
use crate::wire::packet::DATA_LEAD_BIT;

/// Largest reliable message header (flags byte, two ten-byte varints) plus slack: what "one
/// message" adds to the send buffer on top of its payload.
const FRAMING_SLACK: u64 = 32;
/// Datagrams held on the fuzzer's wire; the oldest is lost beyond this.
const WIRE_CAP: usize = 256;
/// Delivered datagrams remembered for `Op::Replay`.
const HISTORY_CAP: usize = 32;
/// Payload bytes one run may queue (keeps an execution short).
const MAX_BYTES_PER_RUN: usize = 1 << 20;
/// Simulator steps one `Settle` may take.
const SETTLE_STEPS: u64 = 20_000;
/// Timer rounds at one instant before the harness calls it a spin.
const MAX_SPINS: u32 = 10_000;

mod check;
mod ops;
#[cfg(test)]
mod tests;

pub use ops::{Op, Setup, decode};

/// Decodes `data` and runs it (the fuzz target). With `SOCKWORKS_FUZZ_DEBUG` set, prints the
/// decoded run first (to turn a crashing input into a regression test).
pub fn run_bytes(data: &[u8]) {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some((setup, ops)) = decode(data) {
        if *DEBUG.get_or_init(|| std::env::var_os("SOCKWORKS_FUZZ_DEBUG").is_some()) {
            eprintln!("{setup:?}\n{ops:#?}");
        }
        run(&setup, &ops);
    }
}

/// Runs `ops` on a fresh connected pair, checking the invariants (see the module docs).
pub fn run(setup: &Setup, ops: &[Op]) {
    let mut h = Harness::new(setup);
    for op in ops {
        h.apply(op);
        h.after_step();
    }
    h.finish();
}

/// What one side sent and the peer has not received yet.
#[derive(Debug, Default)]
struct Sent {
    /// Reliable messages per lane, in order: (message number, bytes).
    reliable: HashMap<u8, VecDeque<(u64, Vec<u8>)>>,
    /// Unreliable messages not yet delivered.
    unreliable: HashMap<(u8, u64), Vec<u8>>,
    /// Messages generated (payload seed).
    seq: u32,
}

impl Sent {
    fn reliable_owed(&self) -> usize {
        self.reliable.values().map(VecDeque::len).sum()
    }
}

/// The largest limits a side was ever configured with.
#[derive(Debug, Clone, Copy)]
struct Limits {
    send_buffer: u64,
    recv_buffer: u64,
    recv_messages: usize,
}

impl Limits {
    fn of(c: &SnpConfig) -> Self {
        Limits {
            send_buffer: c.send_buffer_size as u64,
            recv_buffer: c.recv_buffer_size as u64,
            recv_messages: c.recv_buffer_messages,
        }
    }

    fn widen(&mut self, c: &SnpConfig) {
        let n = Limits::of(c);
        self.send_buffer = self.send_buffer.max(n.send_buffer);
        self.recv_buffer = self.recv_buffer.max(n.recv_buffer);
        self.recv_messages = self.recv_messages.max(n.recv_messages);
    }
}

/// The reference model the endpoints are checked against.
#[derive(Debug)]
struct Model {
    /// Connection handles: client's, server's.
    ids: [crate::proto::ids::ConnectionId; 2],
    /// Messages sent by the client (index 0) and the server (1).
    sent: [Sent; 2],
    limits: [Limits; 2],
    auto_poll: bool,
    /// No close, forged or altered control datagram or lowered receive limit yet: only a
    /// timeout may end the connection.
    strict: bool,
    /// The simulated link corrupts bytes: a ConnectionClosed may arrive with its reason
    /// altered (control messages carry no MAC).
    link_corrupts: bool,
    bytes_queued: usize,
}

/// A datagram on the fuzzer's wire.
#[derive(Debug, Clone)]
struct Wire {
    to_server: bool,
    payload: Vec<u8>,
}

struct Harness {
    p: Pair,
    m: Model,
    wire: VecDeque<Wire>,
    history: VecDeque<Wire>,
    link: LinkConditions,
    buf: Vec<u8>,
}

fn ep(p: &mut Pair, server: bool) -> &mut Endpoint {
    if server { &mut p.server } else { &mut p.client }
}

fn side(server: bool) -> usize {
    usize::from(server)
}

/// Deterministic message bytes, distinct per (sender, seq).
fn payload(sender: usize, seq: u32, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| (u64::from(seq).wrapping_mul(0x9e37_79b9) ^ (i as u64 * 31 + sender as u64)) as u8)
        .collect();
    for (b, s) in v.iter_mut().zip(seq.to_le_bytes()) {
        *b = s;
    }
    v
}

impl Model {
    /// Receives up to `max` messages on one side and checks each against what the peer sent.
    fn drain(&mut self, p: &mut Pair, server: bool, max: usize) {
        let id = self.ids[side(server)];
        for _ in 0..max {
            let Some(m) = ep(p, server).poll_message(id) else {
                return;
            };
            self.check_received(side(!server), &m);
        }
    }

    fn drain_all(&mut self, p: &mut Pair) {
        self.drain(p, false, usize::MAX);
        self.drain(p, true, usize::MAX);
    }

    fn check_received(&mut self, sender: usize, m: &ReceivedMessage) {
        let sent = &mut self.sent[sender];
        if m.reliable {
            let (num, data) = sent
                .reliable
                .get_mut(&m.lane)
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(|| {
                    panic!(
                        "reliable message {} on lane {} from side {sender} was never sent or \
                         arrived twice",
                        m.msg_num, m.lane
                    )
                });
            assert_eq!(
                m.msg_num, num,
                "reliable messages out of order or lost on lane {} from side {sender}",
                m.lane
            );
            assert!(
                m.data == data,
                "reliable message {num} on lane {} from side {sender}: wrong bytes",
                m.lane
            );
        } else {
            let data = sent
                .unreliable
                .remove(&(m.lane, m.msg_num))
                .unwrap_or_else(|| {
                    panic!(
                        "unreliable message {} on lane {} from side {sender} was never sent or \
                         arrived twice",
                        m.msg_num, m.lane
                    )
                });
            assert!(
                m.data == data,
                "unreliable message {} on lane {} from side {sender}: wrong bytes",
                m.msg_num,
                m.lane
            );
        }
    }
}

impl Harness {
    fn new(s: &Setup) -> Self {
        let mut conn = ConnectionConfig {
            mtu_packet_size: 200 + usize::from(s.mtu) * 1100 / 255,
            ..ConnectionConfig::default()
        };
        conn.snp.coalesce_reliable = s.coalesce_reliable;
        conn.snp.mtu_packet_size = conn.mtu_packet_size;
        let cfg = EndpointConfig {
            connection: conn,
            ..EndpointConfig::default()
        };
        let delay = Duration::from_millis(u64::from(s.delay_ms));
        let mut p = Pair::new(
            u64::from(s.seed),
            LinkConditions::with_delay(delay),
            cfg,
            cfg,
        );
        let (c, sv) = p
            .connect(Duration::from_secs(10))
            .expect("a clean link connects within 10 s");
        let link = LinkConditions {
            loss_pct: f64::from(s.loss % 40),
            reorder_pct: f64::from(s.reorder % 40),
            dup_pct: f64::from(s.dup % 40),
            corrupt_pct: f64::from(s.corrupt % 40),
            ..LinkConditions::with_delay(delay)
        };
        let (ca, sa) = (p.client_addr, p.server_addr);
        p.net.set_link(ca, sa, link.clone());
        p.net.set_link(sa, ca, link.clone());
        let limits = Limits::of(&conn.snp);
        let mut h = Harness {
            p,
            m: Model {
                ids: [c, sv],
                sent: [Sent::default(), Sent::default()],
                limits: [limits; 2],
                auto_poll: s.auto_poll,
                strict: true,
                link_corrupts: s.corrupt % 40 > 0,
                bytes_queued: 0,
            },
            wire: VecDeque::new(),
            history: VecDeque::new(),
            link,
            buf: Vec::with_capacity(1500),
        };
        // Whatever the handshake left on the simulator is delivered before the ops start.
        h.p.run_for(Duration::from_millis(1), SETTLE_STEPS);
        h
    }

    /// Moves what both endpoints want to send now onto the wire.
    fn pump(&mut self) {
        for server in [false, true] {
            loop {
                self.buf.clear();
                let now = self.p.now;
                let Some(t) = ep(&mut self.p, server).poll_transmit(now, &mut self.buf) else {
                    break;
                };
                let to = t.to;
                let to_server = to == self.p.server_addr;
                assert!(to_server != server, "a datagram addressed to its own side");
                assert!(
                    to_server || to == self.p.client_addr,
                    "a datagram to an unknown address {to}"
                );
                self.wire.push_back(Wire {
                    to_server,
                    payload: self.buf.clone(),
                });
                if self.wire.len() > WIRE_CAP {
                    self.wire.pop_front();
                }
            }
        }
    }

    fn deliver(&mut self, w: Wire, remember: bool) {
        let (from, now) = if w.to_server {
            (self.p.client_addr, self.p.now)
        } else {
            (self.p.server_addr, self.p.now)
        };
        let mut payload = w.payload.clone();
        ep(&mut self.p, w.to_server).handle_datagram(now, from.into(), &mut payload);
        if remember {
            self.history.push_back(w);
            if self.history.len() > HISTORY_CAP {
                self.history.pop_front();
            }
        }
    }

    fn wire_index(&self, i: u8) -> Option<usize> {
        (!self.wire.is_empty()).then(|| usize::from(i) % self.wire.len())
    }

    fn send(&mut self, server: bool, lane: u8, flags: u32, len: usize) {
        if self.m.bytes_queued + len > MAX_BYTES_PER_RUN {
            return;
        }
        let s = side(server);
        let id = self.m.ids[s];
        let seq = self.m.sent[s].seq;
        self.m.sent[s].seq += 1;
        let data = payload(s, seq, len);
        let now = self.p.now;
        let before = ep(&mut self.p, server)
            .connection(id)
            .map(|c| (c.snp().held(), c.snp().config().send_buffer_size as u64));
        let Ok(num) = ep(&mut self.p, server).send_message(now, id, lane, flags, data.clone())
        else {
            return;
        };
        self.m.bytes_queued += len;
        if let Some((held, limit)) = before {
            assert!(
                held.send_unsent + held.send_retry + len as u64 <= limit,
                "a send was accepted past SendBufferSize ({limit}): {held:?} + {len}"
            );
        }
        let sent = &mut self.m.sent[s];
        if flags & send_flags::RELIABLE != 0 || len > MAX_UNRELIABLE_MESSAGE {
            sent.reliable
                .entry(lane)
                .or_default()
                .push_back((num, data));
        } else {
            assert!(
                sent.unreliable.insert((lane, num), data).is_none(),
                "message number {num} on lane {lane} handed out twice"
            );
        }
    }

    fn update_snp(&mut self, server: bool, f: impl FnOnce(&mut SnpConfig)) {
        let s = side(server);
        let id = self.m.ids[s];
        let now = self.p.now;
        if let Some(c) = ep(&mut self.p, server).connection_mut(id) {
            let mut cfg = c.config();
            let old = cfg.snp;
            f(&mut cfg.snp);
            if cfg.snp.recv_buffer_size < old.recv_buffer_size
                || cfg.snp.recv_max_message_size < old.recv_max_message_size
            {
                // A message already on its way may now be too large: the receiver may end the
                // connection (GNS does too).
                self.m.strict = false;
            }
            c.set_config(now, cfg);
            self.m.limits[s].widen(&cfg.snp);
        }
    }

    /// Runs timers up to `target`, without delivering anything.
    fn advance_to(&mut self, target: Timestamp) {
        let mut spins = 0u32;
        loop {
            let now = self.p.now;
            let next = [
                self.p.client.poll_timeout(now),
                self.p.server.poll_timeout(now),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(t) = next.filter(|t| *t <= target) else {
                break;
            };
            if t <= now {
                spins += 1;
                assert!(
                    spins < MAX_SPINS,
                    "a timer stays due at {now:?} after handling"
                );
            } else {
                spins = 0;
            }
            self.p.now = now.max(t);
            let now = self.p.now;
            self.p.client.handle_timeout(now);
            self.p.server.handle_timeout(now);
            self.pump();
        }
        self.p.now = self.p.now.max(target);
    }

    /// Puts the wire on the simulated network and runs it for `d`.
    fn settle(&mut self, d: Duration, steps: u64) {
        let now = self.p.now;
        for w in std::mem::take(&mut self.wire) {
            let (from, to) = if w.to_server {
                (self.p.client_addr, self.p.server_addr)
            } else {
                (self.p.server_addr, self.p.client_addr)
            };
            self.p.net.send(
                now,
                Datagram {
                    from,
                    to,
                    payload: w.payload,
                },
            );
        }
        let limit = self.p.now + d;
        let m = &mut self.m;
        self.p.run_until(limit, steps, |p| {
            if m.auto_poll {
                m.drain_all(p);
            }
            false
        });
        self.p.now = self.p.now.max(limit);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Send {
                server,
                lane,
                flags,
                len,
            } => {
                let flags = u32::from(flags)
                    & (send_flags::NO_NAGLE | send_flags::NO_DELAY | send_flags::RELIABLE);
                self.send(server, lane % 8, flags, usize::from(len) % 4096);
            }
            Op::SendLarge {
                server,
                lane,
                reliable,
                kib,
            } => {
                let flags = if reliable { send_flags::RELIABLE } else { 0 };
                self.send(server, lane % 8, flags, usize::from(kib) * 1024 + 1);
            }
            Op::Deliver { index } => {
                if let Some(i) = self.wire_index(index)
                    && let Some(w) = self.wire.remove(i)
                {
                    self.deliver(w, true);
                }
            }
            Op::DeliverAll => {
                for w in std::mem::take(&mut self.wire) {
                    self.deliver(w, true);
                }
            }
            Op::Drop { index } => {
                if let Some(i) = self.wire_index(index) {
                    self.wire.remove(i);
                }
            }
            Op::Duplicate { index } => {
                if let Some(i) = self.wire_index(index) {
                    let w = self.wire[i].clone();
                    self.deliver(w, true);
                }
            }
            Op::Swap { a, b } => {
                if let (Some(a), Some(b)) = (self.wire_index(a), self.wire_index(b)) {
                    self.wire.swap(a, b);
                }
            }
            Op::Mangle {
                index,
                truncate,
                pos,
                xor,
            } => {
                if let Some(i) = self.wire_index(index)
                    && let Some(mut w) = self.wire.remove(i)
                {
                    let data = |p: &[u8]| p.first().is_some_and(|b| b & DATA_LEAD_BIT != 0);
                    let was_data = data(&w.payload);
                    if let Some(t) = truncate {
                        w.payload.truncate(usize::from(t));
                    }
                    if !w.payload.is_empty() {
                        let at = usize::from(pos) % w.payload.len();
                        w.payload[at] ^= xor.max(1);
                    }
                    if !was_data || !data(&w.payload) {
                        // Control messages carry no MAC (GNS's neither): an altered one is as
                        // good as a forged one, and may end the connection with any reason
                        // (a flipped bit turns ConnectionClosed's 5003 into 5001).
                        self.m.strict = false;
                    }
                    self.deliver(w, false);
                }
            }
            Op::Replay { index } => {
                if !self.history.is_empty() {
                    let w = self.history[usize::from(index) % self.history.len()].clone();
                    self.deliver(w, false);
                }
            }
            Op::Forge { server, ref bytes } => {
                // An unauthenticated ConnectionClosed naming the right ids ends a connection in
                // GNS too.
                self.m.strict = false;
                self.deliver(
                    Wire {
                        to_server: server,
                        payload: bytes.clone(),
                    },
                    false,
                );
            }
            Op::Advance { ms } => {
                let target = self.p.now + Duration::from_millis(u64::from(ms));
                self.advance_to(target);
            }
            Op::Settle { ms } => {
                self.settle(Duration::from_millis(u64::from(ms % 10_000)), SETTLE_STEPS);
            }
            Op::Poll { server, max } => self.m.drain(&mut self.p, server, usize::from(max)),
            Op::Flush { server } => {
                let (id, now) = (self.m.ids[side(server)], self.p.now);
                if let Some(c) = ep(&mut self.p, server).connection_mut(id) {
                    let _ = c.flush(now);
                }
            }
            Op::Close {
                server,
                linger,
                reason,
            } => {
                self.m.strict = false;
                let (id, now) = (self.m.ids[side(server)], self.p.now);
                let _ = ep(&mut self.p, server).close(now, id, u32::from(reason), "", linger);
            }
            Op::SendRate {
                server,
                min_kib,
                max_kib,
            } => self.update_snp(server, |c| {
                c.send_rate_min = (u32::from(min_kib) + 16) * 1024;
                c.send_rate_max = (u32::from(max_kib) + 16) * 1024;
            }),
            Op::Buffers {
                server,
                send_kib,
                recv_kib,
                recv_msgs,
                max_msg_kib,
            } => self.update_snp(server, |c| {
                c.send_buffer_size = usize::from(send_kib) * 1024;
                c.recv_buffer_size = usize::from(recv_kib) * 1024;
                c.recv_buffer_messages = usize::from(recv_msgs);
                c.recv_max_message_size = usize::from(max_msg_kib) * 1024;
            }),
            Op::Nagle { server, ms } => self.update_snp(server, |c| {
                c.nagle = Duration::from_millis(u64::from(ms));
            }),
            Op::Lanes {
                server,
                count,
                priorities,
                weights,
            } => {
                let n = usize::from(count);
                let pr: Vec<i32> = (0..n)
                    .map(|i| ((priorities >> (2 * (i % 16))) & 3) as i32)
                    .collect();
                let wt: Vec<u16> = (0..n)
                    .map(|i| ((weights >> (4 * (i % 8))) & 15) as u16)
                    .collect();
                let id = self.m.ids[side(server)];
                if let Some(c) = ep(&mut self.p, server).connection_mut(id) {
                    let _ = c.configure_lanes(&pr, &wt);
                }
            }
        }
    }
}
