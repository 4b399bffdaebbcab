//! The endpoint: one UDP socket's worth of connections, sans I/O (spec §1.5, §2.3-2.4, §2.10).
//!
//! ```text
//!  handle_datagram(now, from, bytes)
//!    ├─ data (lead ≥ 0x80) ──────── by receiver connection id ─► Connection::handle_data
//!    │                                (not by address: survives client NAT rebinding once the
//!    │                                 packet authenticates; GNS routes by address)
//!    ├─ ChallengeRequest ──── known (addr, client id)? ─► connection (repeat) : stateless reply
//!    ├─ ConnectRequest ────── known? ─► connection : challenge ok ─► new incoming Connection
//!    ├─ ChallengeReply / ConnectOK ─ by our (client) id
//!    └─ ConnectionClosed / NoConnection ─ by our id, else by (addr, peer id), else reply
//!  poll_transmit(now, out) -> Some(dest)   stateless replies, then each connection's datagrams
//!  poll_event / poll_message / poll_timeout / handle_timeout
//! ```
//!
//! All randomness (connection ids, keys, nonces, challenge secret, fake-loss draws) comes from
//! one seeded RNG, so a simulated run replays exactly.

use std::collections::{BTreeSet, VecDeque};

// Fx hashing: the keys are our own random connection ids and challenge-checked addresses, so a
// fast non-keyed hash is safe here; SipHash was ~5 % of a loaded shard's instructions.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::crypto::EphemeralKeyPair;
use crate::crypto::cert::PROTOCOL_VERSION;
use crate::crypto::negotiate::cipher_preferences;
use crate::proto::challenge::ChallengeKey;
use crate::proto::connection::{ConnError, Connection, ConnectionConfig, StatusChange};
use crate::proto::fake_net::{FakeConditions, FakeLine};
use crate::proto::handshake::{
    ClientHandshake, LocalIdentity, SessionSecrets, check_connect_request,
};
use crate::proto::ids::{IdAllocator, IdError};
use crate::proto::snp::ReceivedMessage;
use crate::time::Timestamp;
use crate::wire::control::{ControlMessage, decode_control};
use crate::wire::packet::{PacketKind, classify};
use crate::wire::proto::{ChallengeReply, ConnectionClosed, NoConnection};

/// Minimum spacing of NoConnection replies to strays (GNS's global spam limiter: 250 ms).
pub const NO_CONNECTION_SPAM_INTERVAL: Duration = Duration::from_millis(250);

/// How an endpoint is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointConfig {
    /// Accept incoming connections (a listen socket).
    pub listen: bool,
    /// Bits of the connection id naming the shard, and this endpoint's shard index.
    pub shard_bits: u32,
    /// This endpoint's shard.
    pub shard: u32,
    /// Defaults for new connections.
    pub connection: ConnectionConfig,
}

/// Datagrams the endpoint dropped before any connection saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    /// Unknown lead byte, too short, connectionless.
    pub malformed: u64,
    /// Control messages that did not decode or validate.
    pub bad_control: u64,
    /// Data packets for no connection we have.
    pub unknown_connection: u64,
    /// ConnectRequests with a stale or forged challenge.
    pub bad_challenge: u64,
    /// Requests that reached a non-listening endpoint.
    pub not_listening: u64,
    /// ConnectRequests refused during the crypto checks.
    pub refused: u64,
}

/// An application-visible event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointEvent {
    /// The connection (its handle).
    pub connection: u32,
    /// Came in through the listen socket.
    pub incoming: bool,
    /// What changed.
    pub change: StatusChange,
}

/// Why a call on the endpoint failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No such connection (`k_EResultInvalidParam` / invalid handle).
    #[error("no such connection")]
    UnknownConnection,
    /// Connection ids exhausted.
    #[error(transparent)]
    Ids(#[from] IdError),
    /// The connection refused the call.
    #[error(transparent)]
    Conn(#[from] ConnError),
}

/// A sans-I/O endpoint.
pub struct Endpoint {
    config: EndpointConfig,
    rng: ChaCha8Rng,
    identity: LocalIdentity,
    challenge: ChallengeKey,
    ids: IdAllocator,
    connections: HashMap<u32, Connection>,
    /// Incoming connections by (client address, client connection id).
    by_request: HashMap<(SocketAddr, u32), u32>,
    /// The `by_request` key of each incoming connection (its address may change later).
    request_keys: HashMap<u32, (SocketAddr, u32)>,
    /// Stateless replies waiting to go out.
    replies: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Connections that may have something to transmit, in order.
    ready: VecDeque<u32>,
    /// Members of `ready` (O(1) membership for many connections).
    in_ready: HashSet<u32>,
    /// Each connection's next deadline, ordered: the endpoint's timer queue, so finding due
    /// connections costs O(log n) instead of a scan of every connection.
    timers: BTreeSet<(Timestamp, u32)>,
    /// The deadline each connection is filed under in `timers`.
    deadlines: HashMap<u32, Timestamp>,
    /// Connections touched since their deadline was last computed; refiled once per
    /// `poll_timeout` / `handle_timeout`, not after every packet.
    dirty: HashSet<u32>,
    events: VecDeque<EndpointEvent>,
    last_spam_reply: Option<Timestamp>,
    counters: EndpointCounters,
    fake_send: FakeLine,
    fake_recv: FakeLine,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.connections.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint whose every random choice derives from `seed`.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut identity_seed = [0u8; 32];
        rng.fill_bytes(&mut identity_seed);
        let mut secret = [0u8; 16];
        rng.fill_bytes(&mut secret);
        Endpoint {
            config,
            rng,
            identity: LocalIdentity::anonymous(identity_seed),
            challenge: ChallengeKey::new(secret),
            ids: IdAllocator::new(config.shard_bits, config.shard),
            connections: HashMap::default(),
            by_request: HashMap::default(),
            request_keys: HashMap::default(),
            replies: VecDeque::new(),
            ready: VecDeque::new(),
            in_ready: HashSet::default(),
            timers: BTreeSet::new(),
            deadlines: HashMap::default(),
            dirty: HashSet::default(),
            events: VecDeque::new(),
            last_spam_reply: None,
            counters: EndpointCounters::default(),
            fake_send: FakeLine::default(),
            fake_recv: FakeLine::default(),
        }
    }

    /// Dropped-datagram counters.
    pub fn counters(&self) -> EndpointCounters {
        self.counters
    }

    /// Sets the fake conditions applied to what this endpoint sends and receives.
    pub fn set_fake_conditions(&mut self, send: FakeConditions, recv: FakeConditions) {
        self.fake_send.conditions = send;
        self.fake_recv.conditions = recv;
    }

    /// A connection, for inspection.
    pub fn connection(&self, id: u32) -> Option<&Connection> {
        self.connections.get(&id)
    }

    /// A connection, for calls that the endpoint does not wrap.
    pub fn connection_mut(&mut self, id: u32) -> Option<&mut Connection> {
        self.mark(id);
        self.connections.get_mut(&id)
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    fn secrets(&mut self) -> SessionSecrets {
        let mut b = [0u8; 32];
        self.rng.fill_bytes(&mut b);
        SessionSecrets {
            ephemeral: EphemeralKeyPair::from_secret_bytes(b),
            nonce: self.rng.next_u64(),
        }
    }

    fn mark(&mut self, id: u32) {
        if self.in_ready.insert(id) {
            self.ready.push_back(id);
        }
    }

    /// Refiles every touched connection under its current deadline.
    fn refile(&mut self, now: Timestamp) {
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            self.reschedule(id, now);
        }
        // Reuse the allocation.
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Files the connection under its current deadline.
    fn reschedule(&mut self, id: u32, now: Timestamp) {
        if let Some(old) = self.deadlines.remove(&id) {
            self.timers.remove(&(old, id));
        }
        if let Some(t) = self
            .connections
            .get_mut(&id)
            .and_then(|c| c.poll_timeout(now))
        {
            self.timers.insert((t, id));
            self.deadlines.insert(id, t);
        }
    }

    /// `ConnectByIPAddress`: starts a client connection; returns its handle.
    pub fn connect(
        &mut self,
        now: Timestamp,
        server: SocketAddr,
        config: Option<ConnectionConfig>,
    ) -> Result<u32, EndpointError> {
        let config = config.unwrap_or(self.config.connection);
        let rng = &mut self.rng;
        let id = self.ids.allocate(|| rng.next_u32())?;
        let secrets = self.secrets();
        let ciphers = cipher_preferences(config.unencrypted).unwrap_or(&[]);
        let hs = ClientHandshake::new(id, server, &self.identity, secrets, ciphers);
        let conn = Connection::client(now, server, config, hs);
        self.connections.insert(id, conn);
        self.collect(id, now);
        Ok(id)
    }

    /// `AcceptConnection`.
    pub fn accept(&mut self, now: Timestamp, id: u32) -> Result<(), EndpointError> {
        let secrets = self.secrets();
        let conn = self
            .connections
            .get_mut(&id)
            .ok_or(EndpointError::UnknownConnection)?;
        conn.accept(now, &self.identity, &secrets)?;
        self.collect(id, now);
        Ok(())
    }

    /// `CloseConnection`.
    pub fn close(
        &mut self,
        now: Timestamp,
        id: u32,
        reason: u32,
        debug: &str,
        linger: bool,
    ) -> Result<(), EndpointError> {
        let conn = self
            .connections
            .get_mut(&id)
            .ok_or(EndpointError::UnknownConnection)?;
        conn.close(now, reason, debug, linger);
        self.collect(id, now);
        Ok(())
    }

    /// `SendMessageToConnection`: returns the message number.
    pub fn send_message(
        &mut self,
        now: Timestamp,
        id: u32,
        lane: u8,
        flags: u32,
        data: Vec<u8>,
    ) -> Result<u64, EndpointError> {
        let conn = self
            .connections
            .get_mut(&id)
            .ok_or(EndpointError::UnknownConnection)?;
        let n = conn.send_message(now, lane, flags, data)?;
        self.mark(id);
        self.dirty.insert(id);
        Ok(n)
    }

    /// The next received message on a connection.
    pub fn poll_message(&mut self, id: u32) -> Option<ReceivedMessage> {
        self.connections.get_mut(&id)?.poll_message()
    }

    /// The next status change.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// Moves a connection's events to the endpoint queue, marks it for transmit, and forgets
    /// it once dead and drained.
    fn collect(&mut self, id: u32, _now: Timestamp) {
        let Some(conn) = self.connections.get_mut(&id) else {
            return;
        };
        let incoming = conn.is_incoming();
        while let Some(change) = conn.poll_event() {
            self.events.push_back(EndpointEvent {
                connection: id,
                incoming,
                change,
            });
        }
        if conn.is_dead() && !conn.has_pending_transmit() {
            self.forget(id);
        } else {
            self.mark(id);
            self.dirty.insert(id);
        }
    }

    fn forget(&mut self, id: u32) {
        if let Some(old) = self.deadlines.remove(&id) {
            self.timers.remove(&(old, id));
        }
        if self.connections.remove(&id).is_some() {
            if let Some(key) = self.request_keys.remove(&id) {
                self.by_request.remove(&key);
            }
            self.ids.free(id);
        }
    }

    /// One received datagram. Data packets are decrypted in place.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, data: &mut [u8]) {
        if self.fake_recv.conditions.active()
            && !self.fake_recv.admit(now, &mut self.rng, from, data)
        {
            return;
        }
        self.dispatch(now, from, data);
    }

    fn dispatch(&mut self, now: Timestamp, from: SocketAddr, data: &mut [u8]) {
        match classify(data) {
            Ok(PacketKind::Data) => {
                let id = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
                match self.connections.get_mut(&id) {
                    Some(conn) => {
                        if conn.handle_data(now, data) && conn.peer() != from {
                            conn.set_peer(from);
                        }
                        self.collect(id, now);
                    }
                    None => {
                        self.counters.unknown_connection += 1;
                        // Tell the sender, at most every 250 ms across all strays (GNS's global
                        // spam limiter); an 11-byte reply to a ≥ 23-byte packet amplifies nothing.
                        let quiet = self
                            .last_spam_reply
                            .is_none_or(|t| now.saturating_since(t) >= NO_CONNECTION_SPAM_INTERVAL);
                        if quiet {
                            self.last_spam_reply = Some(now);
                            let reply = NoConnection {
                                from_connection_id: Some(id),
                                to_connection_id: None,
                            };
                            self.reply(from, reply.into());
                        }
                    }
                }
            }
            Ok(PacketKind::Control(_)) => match decode_control(data) {
                Ok(msg) => self.on_control(now, from, msg),
                Err(_) => self.counters.bad_control += 1,
            },
            Err(_) => self.counters.malformed += 1,
        }
    }

    fn route(&mut self, now: Timestamp, id: u32, msg: &ControlMessage) -> bool {
        match self.connections.get_mut(&id) {
            Some(conn) => {
                conn.handle_control(now, msg, &self.identity);
                self.collect(id, now);
                true
            }
            None => false,
        }
    }

    fn on_control(&mut self, now: Timestamp, from: SocketAddr, msg: ControlMessage) {
        match &msg {
            ControlMessage::ChallengeRequest(req) => {
                let Some(client) = req.connection_id.filter(|id| *id != 0) else {
                    self.counters.bad_control += 1;
                    return;
                };
                if let Some(&id) = self.by_request.get(&(from, client)) {
                    self.route(now, id, &msg);
                } else if self.config.listen {
                    let reply = ChallengeReply {
                        connection_id: Some(client),
                        challenge: Some(self.challenge.issue(now, from)),
                        your_timestamp: req.my_timestamp,
                        protocol_version: Some(PROTOCOL_VERSION),
                    };
                    self.reply(from, reply.into());
                } else {
                    self.counters.not_listening += 1;
                }
            }
            ControlMessage::ConnectRequest(req) => {
                let client = req.client_connection_id.unwrap_or(0);
                if let Some(&id) = self.by_request.get(&(from, client)) {
                    self.route(now, id, &msg);
                } else if !self.config.listen {
                    self.counters.not_listening += 1;
                } else if !req
                    .challenge
                    .is_some_and(|c| self.challenge.check(now, from, c))
                {
                    self.counters.bad_challenge += 1;
                } else {
                    self.new_incoming(now, from, req);
                }
            }
            ControlMessage::ChallengeReply(r) => {
                if !r.connection_id.is_some_and(|id| self.route(now, id, &msg)) {
                    self.counters.bad_control += 1;
                }
            }
            ControlMessage::ConnectOk(ok) => {
                if !ok
                    .client_connection_id
                    .is_some_and(|id| self.route(now, id, &msg))
                {
                    self.counters.bad_control += 1;
                }
            }
            ControlMessage::ConnectionClosed(c) => {
                let target = c
                    .to_connection_id
                    .filter(|id| self.connections.contains_key(id))
                    .or_else(|| {
                        c.from_connection_id
                            .and_then(|f| self.by_request.get(&(from, f)).copied())
                    });
                match target {
                    Some(id) => {
                        self.route(now, id, &msg);
                    }
                    // A padded (≥ 512 B) request from a stranger: always safe to answer.
                    None => {
                        let reply = NoConnection {
                            from_connection_id: c.to_connection_id,
                            to_connection_id: c.from_connection_id,
                        };
                        self.reply(from, reply.into());
                    }
                }
            }
            ControlMessage::NoConnection(n) => {
                if !n
                    .to_connection_id
                    .is_some_and(|id| self.route(now, id, &msg))
                {
                    self.counters.bad_control += 1;
                }
            }
        }
    }

    fn new_incoming(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        req: &crate::wire::proto::ConnectRequest,
    ) {
        let config = self.config.connection;
        match check_connect_request(now, req, from, &config.auth) {
            Ok(pending) => {
                let rng = &mut self.rng;
                let Ok(id) = self.ids.allocate(|| rng.next_u32()) else {
                    self.counters.refused += 1;
                    return;
                };
                self.by_request.insert((from, pending.remote_id), id);
                self.request_keys.insert(id, (from, pending.remote_id));
                let conn = Connection::incoming(now, id, from, config, pending);
                self.connections.insert(id, conn);
                self.collect(id, now);
            }
            Err(e) => {
                self.counters.refused += 1;
                let closed = ConnectionClosed {
                    debug: Some(e.to_string()),
                    reason_code: Some(e.end_reason()),
                    to_connection_id: req.client_connection_id,
                    from_connection_id: None,
                };
                self.reply(from, closed.into());
            }
        }
    }

    fn reply(&mut self, to: SocketAddr, msg: ControlMessage) {
        let mut out = Vec::new();
        if msg.encode(&mut out).is_ok() {
            self.replies.push_back((to, out));
        }
    }

    /// Appends the next datagram to send to `out` (so a runtime builds its whole send batch
    /// in one buffer); returns its destination, or `None` with `out` unchanged.
    pub fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<SocketAddr> {
        let start = out.len();
        loop {
            if let Some((to, data)) = self.fake_send.release(now) {
                out.extend_from_slice(&data);
                return Some(to);
            }
            let to = self.next_datagram(now, out)?;
            if !self.fake_send.conditions.active()
                || self.fake_send.admit(now, &mut self.rng, to, &out[start..])
            {
                return Some(to);
            }
            // Held back or dropped by the fake conditions: not for the caller.
            out.truncate(start);
        }
    }

    fn next_datagram(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<SocketAddr> {
        if let Some((to, data)) = self.replies.pop_front() {
            out.extend_from_slice(&data);
            return Some(to);
        }
        while let Some(&id) = self.ready.front() {
            if let Some(conn) = self.connections.get_mut(&id)
                && conn.poll_transmit(now, out).is_some()
            {
                let to = conn.peer();
                self.collect(id, now);
                return Some(to);
            }
            self.ready.pop_front();
            self.in_ready.remove(&id);
            self.dirty.insert(id);
        }
        None
    }

    /// When [`Endpoint::handle_timeout`] must run next: O(1) plus refiling the connections
    /// touched since the last call.
    pub fn poll_timeout(&mut self, now: Timestamp) -> Option<Timestamp> {
        self.refile(now);
        [
            self.fake_send.next_release(),
            self.fake_recv.next_release(),
            self.timers.first().map(|t| t.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs due timers, releases fake-delayed received datagrams, forgets dead connections.
    /// Each due connection runs once per call (a deadline still due afterwards waits for the
    /// next call, after the caller has polled transmits).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some((from, mut data)) = self.fake_recv.release(now) {
            self.dispatch(now, from, &mut data);
        }
        self.refile(now);
        let mut due = Vec::new();
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            self.deadlines.remove(&id);
            due.push(id);
        }
        for id in due {
            if let Some(conn) = self.connections.get_mut(&id) {
                conn.handle_timeout(now);
            }
            self.collect(id, now);
        }
    }
}

#[cfg(test)]
mod tests;
