//! The relay's state machine, sans I/O: datagrams from clients and from servers in, actions
//! out. Time comes in as time since start (idle expiry, token buckets) and Unix seconds
//! (ticket expiry). The I/O loop ([`crate::io`]) owns the sockets: the client-facing one and
//! one per session toward its server, in the slot the session occupies.
//!
//! ```text
//!  slots:     Vec<Option<Session>>  session id = shard (8 bits) | generation (4) | slot (20)
//!  by_ticket: ticket key ─► slot    (one live session per ticket)
//!  Session { id, token, client addr, server addr, last seen, token bucket, counters }
//! ```
//!
//! Memory is bounded: at most `max_sessions` slots; nothing is stored for a client before its
//! ticket verifies. Ed25519 checks are bounded too: at most `hello_rate` per second relay-wide
//! (a flood of bad tickets costs at most that much CPU; the rest are refused unverified).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sockworks_engine::crypto::TrustStore;
use sockworks_engine::crypto::ca::pop_id;
use sockworks_engine::crypto::kdf::hmac_sha256;

use crate::routing::{self, RoutingKey};
pub use crate::stats::Stats;
use crate::ticket::{self, TicketError};
use crate::wire::{self, Message, RefuseReason};

/// Bits of a session id that name its slot (so at most 2^20 sessions per shard).
const SLOT_BITS: u32 = 20;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Where a session id keeps its shard: the top byte, which the kernel's steering program
/// reads to hand the session's datagrams to the shard that holds it ([`crate::shards`]).
pub const SHARD_SHIFT: u32 = 24;
/// Bits of a slot's generation (between the slot and the shard): a reused slot gets a new id.
const GEN_MASK: u32 = (1 << (SHARD_SHIFT - SLOT_BITS)) - 1;
/// Most sessions a relay can hold, whatever the configuration says.
pub const MAX_SESSIONS: usize = 1 << SLOT_BITS;
/// Source addresses whose ticket-check budgets are tracked at once.
const MAX_HELLO_IPS: usize = 65_536;

/// What the relay enforces.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// CA keys whose tickets are accepted (with revocations).
    pub trust: TrustStore,
    /// The fleet's key for routing blobs.
    pub routing_key: RoutingKey,
    /// This relay's POP code (announced in Pong).
    pub pop: String,
    /// Hard cap on live sessions (≤ [`MAX_SESSIONS`]).
    pub max_sessions: usize,
    /// A session ends after this long without an authenticated client datagram.
    pub idle: Duration,
    /// Client → server packets per second per ticket (token bucket refill).
    pub rate: f32,
    /// Token bucket size per ticket.
    pub burst: f32,
    /// Ticket verifications per second, relay-wide.
    pub hello_rate: f32,
    /// Ticket verifications per second per source IP (burst the same), so that one flooding
    /// host cannot spend the relay-wide budget.
    pub hello_per_ip: f32,
    /// Secret for session tokens (random per start).
    pub secret: [u8; 32],
    /// This relay state's shard (the top byte of its session ids); 0 when unsharded.
    pub shard: u8,
}

impl RelayConfig {
    /// Defaults: 10,000 sessions, 60 s idle, 2,000 packets/s per ticket (burst 2,000), 20,000
    /// ticket checks per second relay-wide and 10 per source IP.
    pub fn new(trust: TrustStore, routing_key: RoutingKey, pop: &str, secret: [u8; 32]) -> Self {
        Self {
            trust,
            routing_key,
            pop: pop.to_owned(),
            max_sessions: 10_000,
            idle: Duration::from_secs(60),
            rate: 2000.0,
            burst: 2000.0,
            hello_rate: 20_000.0,
            hello_per_ip: 10.0,
            secret,
            shard: 0,
        }
    }
}

/// What the I/O loop must do after a client datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    /// Nothing (dropped and counted, or a keepalive that needs no answer).
    Drop,
    /// Send `out` to this address (the client).
    Reply(SocketAddr),
    /// A new session in `slot`: open its socket toward `server`, then send `out` (Welcome) to
    /// `to`. If the socket cannot be opened, call [`Relay::abort_open`] instead.
    Open {
        /// The session's slot.
        slot: usize,
        /// Where its packets go.
        server: SocketAddr,
        /// The client.
        to: SocketAddr,
        /// The Hello's nonce (for a Refused if the socket fails).
        nonce: u64,
    },
    /// Send the GNS packet `datagram[wire::DATA_OVERHEAD..]` through `slot`'s socket to
    /// `server`.
    Forward {
        /// The session's slot.
        slot: usize,
        /// Its server.
        server: SocketAddr,
    },
    /// The session in `slot` ended: close its socket.
    Closed {
        /// The slot.
        slot: usize,
    },
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f32,
    last: Duration,
}

impl Bucket {
    fn full(burst: f32, now: Duration) -> Self {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn take(&mut self, now: Duration, rate: f32, burst: f32) -> bool {
        let dt = now.saturating_sub(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + dt * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One client's session.
#[derive(Debug, Clone)]
struct Session {
    id: u32,
    token: u64,
    ticket: u128,
    client: SocketAddr,
    server: SocketAddr,
    last_seen: Duration,
    bucket: Bucket,
}

/// The relay's state: sessions, counters and budgets.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    pop_id: u32,
    slots: Vec<Option<Session>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    by_ticket: HashMap<u128, usize>,
    live: usize,
    hello_budget: Bucket,
    hello_ips: HashMap<IpAddr, Bucket>,
    minted: u64,
    stats: Stats,
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

impl Relay {
    /// A relay with no sessions.
    pub fn new(mut config: RelayConfig) -> Self {
        config.max_sessions = config.max_sessions.clamp(1, MAX_SESSIONS);
        let hello_budget = Bucket::full(config.hello_rate.max(1.0), Duration::ZERO);
        Relay {
            pop_id: pop_id(&config.pop),
            config,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            by_ticket: HashMap::new(),
            live: 0,
            hello_budget,
            hello_ips: HashMap::new(),
            minted: 0,
            stats: Stats::default(),
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        self.live
    }

    /// The configuration in force.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// The session in `slot`: `(client, server)`, if live.
    pub fn session_addrs(&self, slot: usize) -> Option<(SocketAddr, SocketAddr)> {
        let s = self.slots.get(slot)?.as_ref()?;
        Some((s.client, s.server))
    }

    /// Handles one datagram from `from` on the client-facing socket. A reply, if any, is
    /// written to `out` (cleared first).
    pub fn handle_client(
        &mut self,
        now: Duration,
        unix_now: u64,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> ClientAction {
        self.stats.datagrams += 1;
        out.clear();
        // The hot path first: Data is decoded without the generic codec.
        if let Some((session, token, payload)) = wire::decode_data(datagram) {
            return self.client_data(now, from, session, token, payload.len());
        }
        match Message::decode(datagram) {
            Ok(Message::Hello { nonce, ticket }) => {
                self.hello(now, unix_now, from, nonce, ticket, datagram.len(), out)
            }
            Ok(Message::Ping {
                timestamp,
                session,
                token,
            }) => {
                let alive = match self.authenticate(session, token) {
                    Some(slot) => {
                        if let Some(s) = self.slots[slot].as_mut() {
                            s.last_seen = now;
                        }
                        true
                    }
                    None => false,
                };
                self.stats.pings += 1;
                Message::Pong {
                    timestamp,
                    pop_id: self.pop_id,
                    session_alive: alive,
                }
                .encode(out);
                self.reply_within(from, datagram.len(), out)
            }
            Ok(Message::Close { session, token }) => match self.authenticate(session, token) {
                Some(slot) => {
                    self.remove(slot);
                    self.stats.closed += 1;
                    ClientAction::Closed { slot }
                }
                None => {
                    self.stats.bad_session += 1;
                    ClientAction::Drop
                }
            },
            Ok(_) => {
                self.stats.unexpected += 1;
                ClientAction::Drop
            }
            Err(_) => {
                self.stats.malformed += 1;
                ClientAction::Drop
            }
        }
    }

    /// Sends `out` only if it is no larger than what it answers (no amplification).
    fn reply_within(
        &mut self,
        to: SocketAddr,
        request_len: usize,
        out: &mut Vec<u8>,
    ) -> ClientAction {
        if out.len() > request_len {
            out.clear();
            self.stats.short_hello += 1;
            return ClientAction::Drop;
        }
        ClientAction::Reply(to)
    }

    /// The slot of `session` if `token` is its token.
    fn authenticate(&self, session: u32, token: u64) -> Option<usize> {
        let slot = (session & SLOT_MASK) as usize;
        let s = self.slots.get(slot)?.as_ref()?;
        (s.id == session && s.token == token).then_some(slot)
    }

    fn client_data(
        &mut self,
        now: Duration,
        from: SocketAddr,
        session: u32,
        token: u64,
        len: usize,
    ) -> ClientAction {
        let Some(slot) = self.authenticate(session, token) else {
            self.stats.bad_session += 1;
            return ClientAction::Drop;
        };
        let (rate, burst) = (self.config.rate, self.config.burst);
        let Some(s) = self.slots[slot].as_mut() else {
            return ClientAction::Drop;
        };
        s.last_seen = now;
        if !s.bucket.take(now, rate, burst) {
            self.stats.rate_limited += 1;
            return ClientAction::Drop;
        }
        if s.client != from {
            s.client = from;
            self.stats.client_moves += 1;
        }
        self.stats.to_server += 1;
        self.stats.to_server_bytes += len as u64;
        ClientAction::Forward {
            slot,
            server: s.server,
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the inputs of a Hello"
    )]
    fn hello(
        &mut self,
        now: Duration,
        unix_now: u64,
        from: SocketAddr,
        nonce: u64,
        ticket_bytes: &[u8],
        request_len: usize,
        out: &mut Vec<u8>,
    ) -> ClientAction {
        // Every answer is at most a Welcome; a Hello shorter than that gets nothing.
        if request_len < wire::HEADER_LEN + 22 {
            self.stats.short_hello += 1;
            return ClientAction::Drop;
        }
        let refuse = |out: &mut Vec<u8>, reason| {
            Message::Refused { nonce, reason }.encode(out);
            ClientAction::Reply(from)
        };
        if !self.hello_allowed(now, from.ip()) {
            self.stats.refused_rate += 1;
            return refuse(out, RefuseReason::RateLimited);
        }
        let verified = match ticket::verify_full(ticket_bytes, &self.config.trust, unix_now) {
            Ok(v) => v,
            Err(e) => {
                let reason = match e {
                    TicketError::Expired { .. } | TicketError::TooFarAhead { .. } => {
                        self.stats.refused_expired += 1;
                        RefuseReason::Expired
                    }
                    TicketError::Malformed
                    | TicketError::TooLarge(_)
                    | TicketError::InvalidField(_) => {
                        self.stats.refused_malformed += 1;
                        RefuseReason::BadTicket
                    }
                    _ => {
                        self.stats.refused_forged += 1;
                        RefuseReason::BadTicket
                    }
                };
                return refuse(out, reason);
            }
        };
        if let Some(ip) = verified.ticket.public_ip
            && !same_ip(IpAddr::V4(ip), from.ip())
        {
            self.stats.refused_address += 1;
            return refuse(out, RefuseReason::WrongAddress);
        }
        let Ok((_pop, server)) = routing::open(&verified.ticket.routing, &self.config.routing_key)
        else {
            self.stats.refused_routing += 1;
            return refuse(out, RefuseReason::BadTicket);
        };
        let key = u128::from_le_bytes(verified.signature[..16].try_into().unwrap_or([0; 16]));
        if let Some(&slot) = self.by_ticket.get(&key)
            && let Some(s) = self.slots[slot].as_mut()
        {
            if s.client != from {
                self.stats.refused_replay += 1;
                return refuse(out, RefuseReason::WrongAddress);
            }
            s.last_seen = now;
            self.stats.hello_repeats += 1;
            self.welcome(nonce, slot, out);
            return ClientAction::Reply(from);
        }
        if self.live >= self.config.max_sessions {
            self.stats.refused_full += 1;
            return refuse(out, RefuseReason::Full);
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                self.slots.len() - 1
            }
        };
        let generation = self.generations[slot];
        let id =
            (u32::from(self.config.shard) << SHARD_SHIFT) | (generation << SLOT_BITS) | slot as u32;
        self.minted += 1;
        let mac = hmac_sha256(
            &self.config.secret,
            &[
                b"session token",
                &id.to_le_bytes(),
                &self.minted.to_le_bytes(),
            ],
        );
        let mut token = [0u8; 8];
        token.copy_from_slice(&mac[..8]);
        self.slots[slot] = Some(Session {
            id,
            token: u64::from_le_bytes(token),
            ticket: key,
            client: from,
            server,
            last_seen: now,
            bucket: Bucket::full(self.config.burst, now),
        });
        self.by_ticket.insert(key, slot);
        self.live += 1;
        self.stats.sessions_opened += 1;
        self.welcome(nonce, slot, out);
        ClientAction::Open {
            slot,
            server,
            to: from,
            nonce,
        }
    }

    /// Spends one ticket check from `ip`'s budget and the relay-wide one. The per-IP table is
    /// bounded; when it is full, new addresses only meet the relay-wide budget.
    fn hello_allowed(&mut self, now: Duration, ip: IpAddr) -> bool {
        let per_ip = self.config.hello_per_ip.max(1.0);
        if let Some(b) = self.hello_ips.get_mut(&ip) {
            if !b.take(now, per_ip, per_ip) {
                return false;
            }
        } else if self.hello_ips.len() < MAX_HELLO_IPS {
            let mut b = Bucket::full(per_ip, now);
            b.take(now, per_ip, per_ip);
            self.hello_ips.insert(ip, b);
        }
        let global = self.config.hello_rate.max(1.0);
        self.hello_budget.take(now, global, global)
    }

    fn welcome(&self, nonce: u64, slot: usize, out: &mut Vec<u8>) {
        if let Some(s) = self.slots[slot].as_ref() {
            Message::Welcome {
                nonce,
                session: s.id,
                token: s.token,
                keepalive_secs: (self.config.idle.as_secs() / 3).clamp(1, 0xffff) as u16,
            }
            .encode(out);
        }
    }

    /// The I/O could not open `slot`'s server socket: the session is dropped, and `out` holds
    /// a Refused(Unreachable) for the client.
    pub fn abort_open(&mut self, slot: usize, nonce: u64, out: &mut Vec<u8>) {
        self.remove(slot);
        self.stats.sessions_opened = self.stats.sessions_opened.saturating_sub(1);
        out.clear();
        Message::Refused {
            nonce,
            reason: RefuseReason::Unreachable,
        }
        .encode(out);
    }

    fn remove(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::take) {
            self.by_ticket.remove(&s.ticket);
            self.generations[slot] = (self.generations[slot] + 1) & GEN_MASK;
            self.free.push(slot);
            self.live -= 1;
        }
    }

    /// A datagram from `from` arrived on `slot`'s server socket. Returns where to send it and
    /// the session id and token to frame it with ([`wire::encode_data`]); `None` drops it
    /// (no session, or not from its server).
    #[inline]
    pub fn handle_server(
        &mut self,
        slot: usize,
        from: SocketAddr,
        len: usize,
    ) -> Option<(SocketAddr, u32, u64)> {
        let Some(s) = self.slots.get(slot).and_then(Option::as_ref) else {
            self.stats.server_stray += 1;
            return None;
        };
        if s.server != from {
            self.stats.server_stray += 1;
            return None;
        }
        self.stats.to_client += 1;
        self.stats.to_client_bytes += len as u64;
        Some((s.client, s.id, s.token))
    }

    /// Ends sessions idle for longer than the configured time; their slots are appended to
    /// `closed` (close their sockets). Call about once a second.
    pub fn sweep(&mut self, now: Duration, closed: &mut Vec<usize>) {
        let idle = self.config.idle;
        let stale: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| now.saturating_sub(s.last_seen) > idle)
                    .map(|_| i)
            })
            .collect();
        for slot in stale {
            self.remove(slot);
            self.stats.expired += 1;
            closed.push(slot);
        }
        // Buckets hold one second of checks: untouched for two seconds, one is full again.
        self.hello_ips
            .retain(|_, b| now.saturating_sub(b.last) < Duration::from_secs(2));
    }
}

#[cfg(test)]
#[path = "server/tests.rs"]
mod tests;
