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

use arbitrary::{Arbitrary, Unstructured};

use crate::proto::connection::{ConnectionConfig, State};
use crate::proto::endpoint::{Endpoint, EndpointConfig};
use crate::proto::handshake::end_reason;
use crate::proto::reassembly::MAX_BUFFERED_SEGMENTS;
use crate::proto::recv_packets::MAX_TRACKED_GAPS;
use crate::proto::snp::{MAX_UNRELIABLE_MESSAGE, ReceivedMessage, SnpConfig, send_flags};
use crate::testing::{Datagram, LinkConditions, Pair};
use crate::time::Timestamp;

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

/// Settings fixed for one run.
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    /// Seeds keys, connection ids and the simulator.
    pub seed: u8,
    /// One-way delay of the simulated link, ms.
    pub delay_ms: u8,
    /// Simulator loss, percent (mod 40).
    pub loss: u8,
    /// Simulator reordering, percent (mod 40).
    pub reorder: u8,
    /// Simulator duplication, percent (mod 40).
    pub dup: u8,
    /// Simulator byte corruption, percent (mod 40).
    pub corrupt: u8,
    /// Drain received messages after every step (else only `Op::Poll` does, so the receive
    /// queue fills and throttles the peer).
    pub auto_poll: bool,
    /// `SnpConfig::coalesce_reliable`.
    pub coalesce_reliable: bool,
    /// `MTU_PacketSize`, mapped onto 200..=1300.
    pub mtu: u8,
}

/// One step of the run. Sides: `server` false is the client.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Application send of `len % 4096` bytes on lane `lane % 8`; `flags` bits pick NoNagle
    /// (1), NoDelay (4) and Reliable (8), GNS's values.
    Send {
        /// Sending side.
        server: bool,
        /// Lane (mod 8).
        lane: u8,
        /// Send flags (masked).
        flags: u8,
        /// Length (mod 4096).
        len: u16,
    },
    /// A message of `kib` KiB + 1 byte: fragmented unreliable up to 16500 bytes, reliable
    /// above.
    SendLarge {
        /// Sending side.
        server: bool,
        /// Lane (mod 8).
        lane: u8,
        /// Reliable flag.
        reliable: bool,
        /// Size in KiB.
        kib: u8,
    },
    /// Deliver one datagram from the wire (any one: reordering).
    Deliver {
        /// Wire index (mod length).
        index: u8,
    },
    /// Deliver everything on the wire, in order.
    DeliverAll,
    /// Lose one datagram.
    Drop {
        /// Wire index (mod length).
        index: u8,
    },
    /// Deliver a copy of one datagram, keeping it on the wire.
    Duplicate {
        /// Wire index (mod length).
        index: u8,
    },
    /// Swap two datagrams on the wire.
    Swap {
        /// Wire index (mod length).
        a: u8,
        /// Wire index (mod length).
        b: u8,
    },
    /// Take one datagram off the wire, optionally truncate it, flip bits of one byte, and
    /// deliver it.
    Mangle {
        /// Wire index (mod length).
        index: u8,
        /// New length, if shorter.
        truncate: Option<u16>,
        /// Byte to flip (mod length).
        pos: u16,
        /// Bits to flip (0 means 1).
        xor: u8,
    },
    /// Deliver again a datagram delivered earlier.
    Replay {
        /// History index (mod length).
        index: u8,
    },
    /// Deliver arbitrary bytes to one side, from its peer's address.
    Forge {
        /// Receiving side.
        server: bool,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// Advance virtual time by `ms`, running timers (datagrams they emit stay on the wire).
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// Put the wire on the simulated network and run it for `ms` (link as in [`Setup`]).
    Settle {
        /// Milliseconds (mod 10 000).
        ms: u16,
    },
    /// Receive up to `max` messages on one side.
    Poll {
        /// Receiving side.
        server: bool,
        /// How many.
        max: u8,
    },
    /// `FlushMessagesOnConnection`.
    Flush {
        /// Side.
        server: bool,
    },
    /// `CloseConnection`.
    Close {
        /// Side.
        server: bool,
        /// Linger until reliable data is acked.
        linger: bool,
        /// Reason code (normalised as GNS does).
        reason: u16,
    },
    /// `SendRateMin` / `SendRateMax`, in KiB/s above 16.
    SendRate {
        /// Side.
        server: bool,
        /// Minimum rate.
        min_kib: u8,
        /// Maximum rate.
        max_kib: u8,
    },
    /// Buffer limits, in KiB (and messages).
    Buffers {
        /// Side.
        server: bool,
        /// `SendBufferSize`.
        send_kib: u16,
        /// `RecvBufferSize`.
        recv_kib: u16,
        /// `RecvBufferMessages`.
        recv_msgs: u16,
        /// `RecvMaxMessageSize`.
        max_msg_kib: u16,
    },
    /// `NagleTime`.
    Nagle {
        /// Side.
        server: bool,
        /// Milliseconds.
        ms: u8,
    },
    /// `ConfigureConnectionLanes`: `count` lanes, priorities from 2-bit fields, weights from
    /// 4-bit fields (0 is invalid on purpose).
    Lanes {
        /// Side.
        server: bool,
        /// Lane count.
        count: u8,
        /// 2-bit priorities.
        priorities: u32,
        /// 4-bit weights.
        weights: u32,
    },
}

/// Decodes a [`Setup`] and up to 256 operations from `data` (missing bytes read as zeros).
pub fn decode(data: &[u8]) -> Option<(Setup, Vec<Op>)> {
    let mut u = Unstructured::new(data);
    let setup = Setup::arbitrary(&mut u).ok()?;
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 256 {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    Some((setup, ops))
}

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
    /// No close, forged datagram or lowered receive limit yet: only a timeout may end the
    /// connection.
    strict: bool,
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
            let mut cfg = *c.config();
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
                    if let Some(t) = truncate {
                        w.payload.truncate(usize::from(t));
                    }
                    if !w.payload.is_empty() {
                        let at = usize::from(pos) % w.payload.len();
                        w.payload[at] ^= xor.max(1);
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

    fn after_step(&mut self) {
        self.pump();
        if self.m.auto_poll {
            self.m.drain_all(&mut self.p);
        }
        self.check();
    }

    /// The memory bounds and, in strict runs, how a connection may end.
    fn check(&mut self) {
        for server in [false, true] {
            let s = side(server);
            let id = self.m.ids[s];
            let lim = self.m.limits[s];
            let Some(c) = ep(&mut self.p, server).connection(id) else {
                continue;
            };
            let h = c.snp().held();
            assert!(
                h.send_unsent <= lim.send_buffer + FRAMING_SLACK,
                "side {s}: {} unsent bytes, send buffer at most {}",
                h.send_unsent,
                lim.send_buffer
            );
            assert!(
                h.send_retry + h.send_in_flight <= h.send_retained,
                "side {s}: send accounting: {h:?}"
            );
            let r = h.recv;
            assert!(
                r.reassembly_max <= MAX_BUFFERED_SEGMENTS,
                "side {s}: {} reassembly fragments on one lane",
                r.reassembly_max
            );
            assert!(
                r.stream_max <= lim.recv_buffer,
                "side {s}: a receive stream holds {} bytes, limit {}",
                r.stream_max,
                lim.recv_buffer
            );
            assert!(
                r.queue_bytes as u64 <= lim.recv_buffer,
                "side {s}: receive queue holds {} bytes, limit {}",
                r.queue_bytes,
                lim.recv_buffer
            );
            assert!(
                r.queue_messages <= lim.recv_messages,
                "side {s}: receive queue holds {} messages, limit {}",
                r.queue_messages,
                lim.recv_messages
            );
            assert!(
                r.packet_gaps <= MAX_TRACKED_GAPS,
                "side {s}: {} packet gaps tracked",
                r.packet_gaps
            );
            assert!(r.lanes <= 256, "side {s}: {} receive lanes", r.lanes);
            if self.m.strict {
                let info = c.info();
                let ended = matches!(
                    c.state(),
                    State::ClosedByPeer | State::ProblemDetectedLocally
                );
                assert!(
                    !ended
                        || matches!(
                            info.end_reason,
                            end_reason::MISC_TIMEOUT
                                | end_reason::REMOTE_TIMEOUT
                                | end_reason::MISC_PEER_SENT_NO_CONNECTION
                        ),
                    "side {s}: connection ended in {:?} with reason {} ({}) though nothing but \
                     a timeout should end it",
                    c.state(),
                    info.end_reason,
                    info.end_debug
                );
            }
        }
    }

    fn connected(&self) -> bool {
        let up = |e: &Endpoint, id| {
            e.connection(id)
                .is_some_and(|c| c.state() == State::Connected)
        };
        up(&self.p.client, self.m.ids[0]) && up(&self.p.server, self.m.ids[1])
    }

    /// Liveness: on a clean link with the default send rate and receive limits at least the
    /// defaults, everything owed arrives and the senders release their buffers.
    fn finish(&mut self) {
        if !self.connected() {
            return;
        }
        for server in [false, true] {
            // Receive limits the fuzzer lowered may leave a message with nowhere to go (GNS
            // too: the sender retries until the application raises them).
            self.update_snp(server, |c| {
                let d = SnpConfig::default();
                c.send_rate_min = d.send_rate_min;
                c.send_rate_max = d.send_rate_max;
                c.recv_buffer_size = c.recv_buffer_size.max(d.recv_buffer_size);
                c.recv_buffer_messages = c.recv_buffer_messages.max(d.recv_buffer_messages);
                c.recv_max_message_size = c.recv_max_message_size.max(d.recv_max_message_size);
            });
        }
        let clean = LinkConditions::with_delay(self.link.delay);
        let (ca, sa) = (self.p.client_addr, self.p.server_addr);
        self.p.net.set_link(ca, sa, clean.clone());
        self.p.net.set_link(sa, ca, clean);
        self.m.auto_poll = true;
        // Time to move the most a run may queue at the default rate, plus RTO backoff.
        let limit = self.p.now + Duration::from_secs(30);
        self.settle(Duration::ZERO, 1);
        let m = &mut self.m;
        let delivered = self.p.run_until(limit, 2_000_000, |p| {
            m.drain_all(p);
            m.sent[0].reliable_owed() == 0 && m.sent[1].reliable_owed() == 0
        });
        if !self.connected() {
            // A timeout (or, outside strict runs, anything else) ended it meanwhile.
            return;
        }
        assert!(
            delivered,
            "reliable messages still owed after 30 s on a clean link: client {}, server {}",
            self.m.sent[0].reliable_owed(),
            self.m.sent[1].reliable_owed()
        );
        // The last acks, then nothing reliable may be held.
        self.settle(Duration::from_secs(2), SETTLE_STEPS);
        for server in [false, true] {
            let id = self.m.ids[side(server)];
            if let Some(c) = ep(&mut self.p, server).connection(id)
                && c.state() == State::Connected
            {
                let h = c.snp().held();
                assert!(
                    !c.snp().reliable_pending()
                        && h.send_retained == 0
                        && h.send_retry == 0
                        && h.send_in_flight == 0,
                    "side {}: everything was delivered but the sender still holds {h:?}",
                    side(server)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            seed: 1,
            delay_ms: 5,
            loss: 0,
            reorder: 0,
            dup: 0,
            corrupt: 0,
            auto_poll: true,
            coalesce_reliable: true,
            mtu: 255,
        }
    }

    #[test]
    fn hostile_wire_still_delivers_reliable_data_in_order() {
        let ops = [
            Op::Lanes {
                server: false,
                count: 3,
                priorities: 0b01_00_00,
                weights: 0x121,
            },
            Op::Send {
                server: false,
                lane: 0,
                flags: 8,
                len: 300,
            },
            Op::SendLarge {
                server: false,
                lane: 2,
                reliable: true,
                kib: 40,
            },
            Op::SendLarge {
                server: true,
                lane: 0,
                reliable: false,
                kib: 8,
            },
            Op::Advance { ms: 20 },
            Op::Duplicate { index: 0 },
            Op::Swap { a: 0, b: 3 },
            Op::Mangle {
                index: 1,
                truncate: None,
                pos: 30,
                xor: 0x40,
            },
            Op::Drop { index: 2 },
            Op::Replay { index: 0 },
            Op::DeliverAll,
            Op::Settle { ms: 500 },
            Op::Replay { index: 3 },
        ];
        let mut h = Harness::new(&setup());
        for op in &ops {
            h.apply(op);
            h.after_step();
        }
        h.finish();
        assert!(h.connected());
        assert_eq!(h.m.sent[0].reliable_owed() + h.m.sent[1].reliable_owed(), 0);
        let drops = h.p.server.connection(h.m.ids[1]).unwrap().drops();
        assert!(
            drops.auth_failed + drops.replayed + drops.bad_header > 0,
            "{drops:?}"
        );
    }

    #[test]
    fn receive_queue_limits_hold_without_polling() {
        let s = Setup {
            auto_poll: false,
            ..setup()
        };
        let mut ops = vec![Op::Buffers {
            server: true,
            send_kib: 512,
            recv_kib: 1024,
            recv_msgs: 5,
            max_msg_kib: 512,
        }];
        for _ in 0..20 {
            ops.push(Op::Send {
                server: false,
                lane: 0,
                flags: 9,
                len: 100,
            });
        }
        ops.push(Op::Settle { ms: 2000 });
        let mut h = Harness::new(&s);
        for op in &ops {
            h.apply(op);
            h.after_step();
        }
        let held = h.p.server.connection(h.m.ids[1]).unwrap().snp().held();
        assert_eq!(held.recv.queue_messages, 5);
        h.finish();
        assert_eq!(h.m.sent[0].reliable_owed(), 0);
    }

    #[test]
    fn arbitrary_bytes_decode_to_operations_and_run() {
        assert!(decode(&[]).is_some_and(|(_, ops)| ops.is_empty()));
        let (_, ops) = decode(&[0x55; 300]).unwrap();
        assert!(ops.len() > 5, "{ops:?}");
        run_bytes(&[0x55; 300]);
        run_bytes(&[7; 64]);
    }
}
