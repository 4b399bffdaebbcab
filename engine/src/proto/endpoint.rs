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
//! Public randomness (connection ids, nonces, fake-loss draws) comes from one seeded RNG, so a
//! simulated run replays exactly; secrets (identity key, ephemeral keys, challenge secret) come
//! from a separate [`SecretSeed`] (see [`crate::entropy`]), never from the public stream.

use std::collections::VecDeque;

// Fx hashing: the keys are our own random connection ids and challenge-checked addresses, so a
// fast non-keyed hash is safe here; SipHash was ~5 % of a loaded shard's instructions.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use rand_core::{Rng, SeedableRng};

use crate::crypto::EphemeralKeyPair;
use crate::crypto::negotiate::cipher_preferences;
use crate::entropy::SecretSeed;
use crate::proto::challenge::ChallengeKey;
use crate::proto::connection::{ConnError, Connection, ConnectionConfig, State, StatusChange};
use crate::proto::end_reason;
use crate::proto::fake_net::{FakeConditions, FakeLine};
use crate::proto::handshake::{ClientHandshake, LocalIdentity, SessionSecrets};
use crate::proto::ids::{IdAllocator, IdError};

/// An id allocator shared by a shard's endpoint and the API threads that open client
/// connections on it: a client handle (= its id) must exist before the shard runs the connect.
/// Locked only when a connection is created or freed, never per packet.
use crate::proto::snp::ReceivedMessage;
use crate::proto::timer_wheel::TimerWheel;
use crate::time::Timestamp;

/// Minimum spacing of NoConnection replies to strays (GNS's global spam limiter: 250 ms).
pub const NO_CONNECTION_SPAM_INTERVAL: Duration = Duration::from_millis(250);

/// Which of a shard's sockets a datagram came in on or leaves by (0 for a single-socket
/// endpoint). The runtime maps it to a driver.
pub type LocalSocket = u16;

/// A listen socket as the endpoint sees it: the socket it receives on and what new
/// connections inherit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The API's listen-socket handle, reported for each connection accepted through it.
    pub handle: u32,
    /// Settings new incoming connections start with.
    pub connection: ConnectionConfig,
}

/// How an endpoint is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointConfig {
    /// Accept incoming connections on local socket 0 (a single listen socket, handle 0).
    /// More listeners are added with [`Endpoint::add_listener`].
    pub listen: bool,
    /// Bits of the connection id naming the shard, and this endpoint's shard index.
    pub shard_bits: u32,
    /// This endpoint's shard.
    pub shard: u32,
    /// Defaults for new connections.
    pub connection: ConnectionConfig,
    /// Key of the stateless challenge; every shard of one listen port must share it, since a
    /// client's ChallengeRequest and ConnectRequest may reach different shards. `None`: drawn
    /// from the seed.
    pub challenge_secret: Option<[u8; 16]>,
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
#[non_exhaustive]
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
    /// Public values: connection ids, handshake nonces (replayable from the u64 seed).
    rng: ChaCha8Rng,
    /// Secrets: ephemeral keys (from the caller's [`SecretSeed`], never from `rng`).
    secret_rng: ChaCha20Rng,
    identity: LocalIdentity,
    challenge: ChallengeKey,
    ids: IdAllocator,
    connections: HashMap<u32, Connection>,
    /// Incoming connections by (client address, client connection id).
    by_request: HashMap<(SocketAddr, u32), u32>,
    /// The `by_request` key of each incoming connection (its address may change later).
    request_keys: HashMap<u32, (SocketAddr, u32)>,
    /// Stateless replies waiting to go out.
    replies: VecDeque<(LocalSocket, SocketAddr, Vec<u8>)>,
    /// Listen sockets by the local socket they receive on.
    listeners: HashMap<LocalSocket, Listener>,
    /// The local socket of every connection not on socket 0.
    locals: HashMap<u32, LocalSocket>,
    /// The listen-socket handle of every incoming connection.
    accepted_by: HashMap<u32, u32>,
    /// Connections with a received message waiting, in order.
    readable: VecDeque<u32>,
    /// Members of `readable`.
    in_readable: HashSet<u32>,
    /// Connections that may have something to transmit, in order.
    ready: VecDeque<u32>,
    /// Members of `ready` (O(1) membership for many connections).
    in_ready: HashSet<u32>,
    /// Each connection's next deadline in a hierarchical timer wheel: filing, refiling and
    /// finding due connections cost O(1), not a scan of every connection (nor O(log n)).
    timers: TimerWheel,
    /// Scratch for `handle_timeout`'s due list.
    due: Vec<(Timestamp, u32)>,
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
    /// An endpoint whose public random values (connection ids, nonces) derive from `seed` and
    /// whose secrets (identity key, ephemeral keys, challenge key) derive from `secret`: the OS's
    /// in production ([`SecretSeed::from_os`]), a stated one in tests and the simulator.
    pub fn new(config: EndpointConfig, seed: u64, secret: &SecretSeed) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let mut secret_rng = secret.rng();
        let mut identity_seed = [0u8; 32];
        secret_rng.fill_bytes(&mut identity_seed);
        let mut challenge = [0u8; 16];
        secret_rng.fill_bytes(&mut challenge);
        let secret = config.challenge_secret.unwrap_or(challenge);
        let mut listeners = HashMap::default();
        if config.listen {
            listeners.insert(
                0,
                Listener {
                    handle: 0,
                    connection: config.connection,
                },
            );
        }
        Endpoint {
            config,
            rng,
            secret_rng,
            identity: LocalIdentity::anonymous(identity_seed),
            challenge: ChallengeKey::new(secret),
            ids: IdAllocator::new(config.shard_bits, config.shard),
            connections: HashMap::default(),
            by_request: HashMap::default(),
            request_keys: HashMap::default(),
            replies: VecDeque::new(),
            listeners,
            locals: HashMap::default(),
            accepted_by: HashMap::default(),
            readable: VecDeque::new(),
            in_readable: HashSet::default(),
            ready: VecDeque::new(),
            in_ready: HashSet::default(),
            timers: TimerWheel::default(),
            due: Vec::new(),
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

    /// The public half of this endpoint's identity key.
    pub fn identity_public_key(&self) -> [u8; 32] {
        self.identity.public_key()
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    fn secrets(&mut self) -> SessionSecrets {
        let mut b = [0u8; 32];
        self.secret_rng.fill_bytes(&mut b);
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
        match self
            .connections
            .get_mut(&id)
            .and_then(|c| c.poll_timeout(now))
        {
            Some(t) => {
                self.timers.insert(t, id);
            }
            None => {
                self.timers.remove(id);
            }
        }
    }

    /// `ConnectByIPAddress`: starts a client connection; returns its handle.
    pub fn connect(
        &mut self,
        now: Timestamp,
        server: SocketAddr,
        config: Option<ConnectionConfig>,
    ) -> Result<u32, EndpointError> {
        self.connect_on(now, 0, server, config)
    }

    /// [`Endpoint::connect`] through local socket `local`.
    pub fn connect_on(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        server: SocketAddr,
        config: Option<ConnectionConfig>,
    ) -> Result<u32, EndpointError> {
        let id = self.reserve_id()?;
        self.connect_with_id(now, local, id, server, config);
        Ok(id)
    }

    /// Takes a fresh connection id without a connection yet: the API hands ids out as handles
    /// on its own threads before the shard runs the connect ([`Endpoint::connect_with_id`]),
    /// or uses them for in-memory pairs ([`Endpoint::release_id`] returns those).
    pub fn reserve_id(&mut self) -> Result<u32, IdError> {
        let rng = &mut self.rng;
        self.ids.allocate(|| rng.next_u32())
    }

    /// Returns a reserved id that no connection took.
    pub fn release_id(&mut self, id: u32) {
        if !self.connections.contains_key(&id) {
            self.ids.free(id);
        }
    }

    /// Starts a client connection on an id from [`Endpoint::reserve_id`].
    pub fn connect_with_id(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        id: u32,
        server: SocketAddr,
        config: Option<ConnectionConfig>,
    ) {
        let config = config.unwrap_or(self.config.connection);
        let secrets = self.secrets();
        let ciphers = cipher_preferences(config.unencrypted).unwrap_or(&[]);
        let hs = ClientHandshake::new(id, server, &self.identity, secrets, ciphers);
        let conn = Connection::client(now, server, config, hs);
        self.connections.insert(id, conn);
        if local != 0 {
            self.locals.insert(id, local);
        }
        self.collect(id, now);
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
        let conn = self.connections.get_mut(&id)?;
        let m = conn.poll_message();
        if m.is_none() && conn.is_dead() {
            // Drained: a dead connection may now be forgotten. (A live one is left alone: no
            // transmit or timer work for having been read.)
            self.collect(id, Timestamp::ZERO);
        }
        m
    }

    /// A connection that had a received message waiting when it was last touched (drain it
    /// with [`Endpoint::poll_message`]); each appears once until polled again.
    pub fn poll_readable(&mut self) -> Option<u32> {
        let id = self.readable.pop_front()?;
        self.in_readable.remove(&id);
        Some(id)
    }

    /// Starts accepting connections on local socket `local`.
    pub fn add_listener(&mut self, local: LocalSocket, listener: Listener) {
        self.listeners.insert(local, listener);
    }

    /// Stops accepting on `local`, leaving connections accepted there alone (a socket pair's
    /// one-shot listener).
    pub fn stop_listening(&mut self, local: LocalSocket) {
        self.listeners.remove(&local);
    }

    /// Stops listening on `local` and closes every connection accepted through it (GNS's
    /// CloseListenSocket); returns those connections.
    pub fn remove_listener(&mut self, now: Timestamp, local: LocalSocket) -> Vec<u32> {
        let Some(l) = self.listeners.remove(&local) else {
            return Vec::new();
        };
        let mut ids: Vec<u32> = self
            .accepted_by
            .iter()
            .filter(|&(_, &h)| h == l.handle)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        // Connections the application already closed (lingering, FinWait) finish on their own.
        ids.retain(|id| {
            self.connections
                .get(id)
                .is_some_and(|c| !matches!(c.state(), State::Linger | State::FinWait | State::Dead))
        });
        for &id in &ids {
            if let Some(conn) = self.connections.get_mut(&id) {
                conn.close(now, end_reason::APP_GENERIC, "Listen socket closed", false);
            }
            self.collect(id, now);
        }
        ids
    }

    /// The listen-socket handle a connection came in through.
    pub fn accepted_by(&self, id: u32) -> Option<u32> {
        self.accepted_by.get(&id).copied()
    }

    /// The local socket a connection uses.
    pub fn local_of(&self, id: u32) -> LocalSocket {
        if self.locals.is_empty() {
            // Single-socket endpoints (the common server case) skip the hash per datagram.
            return 0;
        }
        self.locals.get(&id).copied().unwrap_or(0)
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
        if conn.has_message() && self.in_readable.insert(id) {
            self.readable.push_back(id);
        }
        if conn.is_dead() && !conn.has_pending_transmit() && !conn.has_message() {
            self.forget(id);
        } else {
            self.mark(id);
            self.dirty.insert(id);
        }
    }

    fn forget(&mut self, id: u32) {
        self.timers.remove(id);
        if self.connections.remove(&id).is_some() {
            if let Some(key) = self.request_keys.remove(&id) {
                self.by_request.remove(&key);
            }
            self.locals.remove(&id);
            self.accepted_by.remove(&id);
            self.ids.free(id);
        }
    }

    /// One received datagram. Data packets are decrypted in place.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, data: &mut [u8]) {
        self.handle_datagram_on(now, 0, from, data);
    }

    /// One datagram received on local socket `local`.
    pub fn handle_datagram_on(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        data: &mut [u8],
    ) {
        if self.fake_recv.conditions.active()
            && !self
                .fake_recv
                .admit_on(now, &mut self.rng, local, from, data)
        {
            return;
        }
        self.dispatch(now, local, from, data);
    }

    /// Appends the next datagram to send to `out` (so a runtime builds its whole send batch
    /// in one buffer); returns its destination, or `None` with `out` unchanged.
    pub fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<SocketAddr> {
        self.poll_transmit_on(now, out).map(|(_, to)| to)
    }

    /// [`Endpoint::poll_transmit`] that also says which local socket the datagram leaves by.
    pub fn poll_transmit_on(
        &mut self,
        now: Timestamp,
        out: &mut Vec<u8>,
    ) -> Option<(LocalSocket, SocketAddr)> {
        let start = out.len();
        loop {
            if let Some((local, to, data)) = self.fake_send.release_on(now) {
                out.extend_from_slice(&data);
                return Some((local, to));
            }
            let (local, to) = self.next_datagram(now, out)?;
            if !self.fake_send.conditions.active()
                || self
                    .fake_send
                    .admit_on(now, &mut self.rng, local, to, &out[start..])
            {
                return Some((local, to));
            }
            // Held back or dropped by the fake conditions: not for the caller.
            out.truncate(start);
        }
    }

    fn next_datagram(
        &mut self,
        now: Timestamp,
        out: &mut Vec<u8>,
    ) -> Option<(LocalSocket, SocketAddr)> {
        if let Some((local, to, data)) = self.replies.pop_front() {
            out.extend_from_slice(&data);
            return Some((local, to));
        }
        while let Some(&id) = self.ready.front() {
            if let Some(conn) = self.connections.get_mut(&id)
                && conn.poll_transmit(now, out).is_some()
            {
                let to = conn.peer();
                let local = self.local_of(id);
                self.collect(id, now);
                return Some((local, to));
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
            self.timers.first(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs due timers, releases fake-delayed received datagrams, forgets dead connections.
    /// Each due connection runs once per call (a deadline still due afterwards waits for the
    /// next call, after the caller has polled transmits).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some((local, from, mut data)) = self.fake_recv.release_on(now) {
            self.dispatch(now, local, from, &mut data);
        }
        self.refile(now);
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        self.timers.pop_due(now, &mut due);
        for &(_, id) in &due {
            if let Some(conn) = self.connections.get_mut(&id) {
                conn.handle_timeout(now);
            }
            self.collect(id, now);
        }
        self.due = due;
    }
}

mod receive;
#[cfg(test)]
mod tests;
