//! The endpoint: one UDP socket's worth of connections, sans I/O (spec §1.5, §2.3-2.4, §2.10).
//!
//! ```text
//!  handle_datagram(now, RecvMeta { local, from }, bytes)
//!    ├─ data (lead ≥ 0x80) ──────── by receiver connection id ─► Connection::handle_data
//!    │                                (not by address: survives client NAT rebinding once the
//!    │                                 packet authenticates; GNS routes by address)
//!    ├─ ChallengeRequest ──── known (addr, client id)? ─► connection (repeat) : stateless reply
//!    ├─ ConnectRequest ────── known? ─► connection : challenge ok ─► new incoming Connection
//!    ├─ ChallengeReply / ConnectOK ─ by our (client) id
//!    └─ ConnectionClosed / NoConnection ─ by our id, else by (addr, peer id), else reply
//!  poll_transmit(now, out) -> Some(Transmit { local, to })
//!                           stateless replies, then each connection's datagrams
//!  poll_event / poll_message / poll_timeout / handle_timeout
//! ```
//!
//! Public randomness (connection ids, nonces, fake-loss draws) comes from one seeded RNG, so a
//! simulated run replays exactly; secrets (identity key, ephemeral keys, challenge secret) come
//! from a separate [`SecretSeed`] (see [`crate::entropy`]), never from the public stream.

use std::collections::VecDeque;

// Fx hashing: the keys are our own random connection ids and challenge-checked addresses, so a
// fast non-keyed hash is safe here; SipHash was ~5 % of a loaded shard's instructions.
use rustc_hash::FxHashMap as HashMap;
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

use crate::proto::snp::ReceivedMessage;
use crate::proto::timer_wheel::TimerWheel;
use crate::time::Timestamp;

/// Minimum spacing of NoConnection replies to strays (GNS's global spam limiter: 250 ms).
pub const NO_CONNECTION_SPAM_INTERVAL: Duration = Duration::from_millis(250);

pub use crate::datagram::{LocalSocket, RecvMeta, Transmit};
pub use crate::proto::ids::ConnectionId;

/// A listen socket as the endpoint sees it: the socket it receives on and what new
/// connections inherit.
#[derive(Debug, Clone)]
pub struct Listener {
    /// The API's listen-socket handle, reported for each connection accepted through it.
    pub handle: u32,
    /// Settings new incoming connections start with.
    pub connection: ConnectionConfig,
    /// The listen socket's connection limits, shared by its members on every shard (`None`:
    /// no limit but the id table's).
    pub admission: Option<std::sync::Arc<crate::proto::admission::Admission>>,
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
    /// ConnectRequests refused (crypto checks, connection limits, ids exhausted).
    pub refused: u64,
    /// Of those, refused by a listen socket's connection limits.
    pub refused_limit: u64,
}

/// What an endpoint holds and has dropped, for diagnostics and hostile-traffic tests: a
/// stranger (no valid cookie) must move only the counters, never the state sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams dropped before any connection saw them.
    pub counters: EndpointCounters,
    /// Connections held (any state, lingering ones included).
    pub connections: u64,
    /// Incoming connections indexed by (client address, client connection id).
    pub incoming_requests: u64,
    /// Stateless replies (challenges, refusals) waiting to go out.
    pub queued_replies: u64,
}

/// An application-visible event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointEvent {
    /// The connection (its handle).
    pub connection: ConnectionId,
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
    /// ICE cannot start (disabled, or no candidate type allowed): GNS fails the P2P call.
    #[error("ICE not enabled by local user options")]
    IceDisabled,
}

/// A sans-I/O endpoint.
pub struct Endpoint {
    config: EndpointConfig,
    /// Public values: connection ids, handshake nonces (replayable from the u64 seed).
    rng: ChaCha8Rng,
    /// Secrets: ephemeral keys (from the caller's [`SecretSeed`], never from `rng`).
    secret_rng: ChaCha20Rng,
    identity: LocalIdentity,
    /// Trusted CAs and revocations peers' certificates are checked against.
    trust: crate::crypto::TrustStore,
    /// A (monotonic, Unix seconds) pair from the caller: wall-clock time for cert validity.
    wall_clock: Option<(Timestamp, u64)>,
    challenge: ChallengeKey,
    ids: IdAllocator,
    /// Each connection with its bookkeeping ([`meta::ConnMeta`]), boxed: the table then holds
    /// 16-byte entries, not ~3 KiB ones, so its spare capacity (up to half of a hash table's
    /// buckets) costs pointers, not whole connections (issue 16: memory per idle connection).
    connections: HashMap<u32, Box<Slot>>,
    /// Incoming connections by (client address, client connection id).
    by_request: request_index::RequestIndex,
    /// Stateless replies waiting to go out.
    replies: VecDeque<(LocalSocket, SocketAddr, Vec<u8>)>,
    /// Listen sockets by the local socket they receive on.
    listeners: HashMap<LocalSocket, Listener>,
    /// Connections with a received message waiting, in order (members flagged `in_readable`).
    readable: VecDeque<u32>,
    /// Connections whose peer address changed (NAT rebinding, a relayed connection moved to
    /// another relay), for the application's view of the remote address.
    moved: Vec<u32>,
    /// Connections that may have something to transmit, in order (members flagged
    /// `in_ready`: O(1) membership for many connections).
    ready: VecDeque<u32>,
    /// Each connection's next deadline in a hierarchical timer wheel: filing, refiling and
    /// finding due connections cost O(1), not a scan of every connection (nor O(log n)).
    timers: TimerWheel,
    /// Scratch for `handle_timeout`'s due list.
    due: Vec<(Timestamp, u32)>,
    /// Connections touched since their deadline was last computed (members flagged `dirty`);
    /// refiled once per `poll_timeout` / `handle_timeout`, not after every packet.
    dirty_ids: Vec<u32>,
    events: VecDeque<EndpointEvent>,
    last_spam_reply: Option<Timestamp>,
    counters: EndpointCounters,
    fake_send: FakeLine,
    fake_recv: FakeLine,
    /// P2P sessions, listeners and ICE sockets (none until first used).
    p2p: Option<Box<p2p::P2p>>,
    /// Client connections through our relays (none until first used).
    relay: Option<Box<relay_link::RelayLinks>>,
    /// Relay failovers so far.
    relays_moved: u64,
    /// New connections' settings, kept once per distinct set.
    configs: crate::proto::connection::ConfigCache,
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
                    admission: None,
                },
            );
        }
        Endpoint {
            config,
            rng,
            secret_rng,
            identity: LocalIdentity::anonymous(identity_seed),
            trust: crate::crypto::TrustStore::new(),
            wall_clock: None,
            challenge: ChallengeKey::new(secret),
            ids: IdAllocator::new(config.shard_bits, config.shard),
            connections: HashMap::default(),
            by_request: request_index::RequestIndex::default(),
            replies: VecDeque::new(),
            listeners,
            readable: VecDeque::new(),
            moved: Vec::new(),
            ready: VecDeque::new(),
            timers: TimerWheel::default(),
            due: Vec::new(),
            dirty_ids: Vec::new(),
            events: VecDeque::new(),
            last_spam_reply: None,
            counters: EndpointCounters::default(),
            fake_send: FakeLine::default(),
            fake_recv: FakeLine::default(),
            p2p: None,
            relay: None,
            relays_moved: 0,
            configs: Default::default(),
        }
    }

    /// Times a relayed connection moved to another relay (failover).
    pub fn relays_moved(&self) -> u64 {
        self.relays_moved
    }

    /// Dropped-datagram counters.
    pub fn counters(&self) -> EndpointCounters {
        self.counters
    }

    /// Counters and state sizes (see [`EndpointStats`]).
    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            counters: self.counters,
            connections: self.connections.len() as u64,
            incoming_requests: self.by_request.len() as u64,
            queued_replies: self.replies.len() as u64,
        }
    }

    /// Sets the fake conditions applied to what this endpoint sends and receives.
    pub fn set_fake_conditions(&mut self, send: FakeConditions, recv: FakeConditions) {
        self.fake_send.conditions = send;
        self.fake_recv.conditions = recv;
    }

    /// A connection, for inspection.
    pub fn connection(&self, id: ConnectionId) -> Option<&Connection> {
        self.connections.get(&id.get()).map(|s| &s.conn)
    }

    /// A connection, for calls that the endpoint does not wrap.
    pub fn connection_mut(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        let id = id.get();
        let slot = self.connections.get_mut(&id)?;
        slot.meta.queue_ready(id, &mut self.ready);
        Some(&mut slot.conn)
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

    /// `ConnectByIPAddress`: starts a client connection to `server.to`, sending by local
    /// socket `server.local` (a `SocketAddr` converts to socket 0); returns its handle.
    pub fn connect(
        &mut self,
        now: Timestamp,
        server: Transmit,
        config: Option<ConnectionConfig>,
    ) -> Result<ConnectionId, EndpointError> {
        let id = self.reserve_id()?;
        self.connect_with_id(now, id, server, config);
        Ok(id)
    }

    /// Takes a fresh connection id without a connection yet: the API hands ids out as handles
    /// on its own threads before the shard runs the connect ([`Endpoint::connect_with_id`]),
    /// or uses them for in-memory pairs ([`Endpoint::release_id`] returns those).
    pub fn reserve_id(&mut self) -> Result<ConnectionId, IdError> {
        let rng = &mut self.rng;
        self.ids.allocate(|| rng.next_u32()).map(ConnectionId::new)
    }

    /// Returns a reserved id that no connection took.
    pub fn release_id(&mut self, id: ConnectionId) {
        if !self.connections.contains_key(&id.get()) {
            self.ids.free(id.get());
        }
    }

    /// Starts a client connection on an id from [`Endpoint::reserve_id`].
    pub fn connect_with_id(
        &mut self,
        now: Timestamp,
        id: ConnectionId,
        server: Transmit,
        config: Option<ConnectionConfig>,
    ) {
        self.connect_with_id_expecting(now, id, server, config, None);
    }

    /// [`Endpoint::connect_with_id`] to a server that must prove `expected` identity with its
    /// certificate (`None`: any).
    pub fn connect_with_id_expecting(
        &mut self,
        now: Timestamp,
        id: ConnectionId,
        server: Transmit,
        config: Option<ConnectionConfig>,
        expected: Option<crate::wire::identity::Identity>,
    ) {
        let id = id.get();
        let Transmit { local, to: server } = server;
        let config = config.unwrap_or(self.config.connection);
        let secrets = self.secrets();
        let ciphers = cipher_preferences(config.unencrypted).unwrap_or(&[]);
        let mut hs = ClientHandshake::new(id, server, &self.identity, secrets, ciphers);
        if let Some(e) = expected {
            hs.expect_remote_identity(e);
        }
        let conn = Connection::client(now, server, self.configs.share(&config), hs);
        self.connections.insert(id, Slot::new(conn, local));
        self.collect(id);
    }

    /// `AcceptConnection`.
    pub fn accept(&mut self, now: Timestamp, id: ConnectionId) -> Result<(), EndpointError> {
        let id = id.get();
        let secrets = self.secrets();
        let conn = &mut self
            .connections
            .get_mut(&id)
            .ok_or(EndpointError::UnknownConnection)?
            .conn;
        conn.accept(now, &self.identity, &secrets)?;
        if conn.is_p2p() {
            self.p2p_accepted(now, id)?;
        }
        if let Some(a) = self
            .connections
            .get_mut(&id)
            .and_then(|s| s.admitted.as_mut())
            .filter(|a| a.pending)
        {
            a.pending = false;
            a.admission.accepted();
        }
        self.collect(id);
        Ok(())
    }

    /// `CloseConnection`.
    pub fn close(
        &mut self,
        now: Timestamp,
        id: ConnectionId,
        reason: u32,
        debug: &str,
        linger: bool,
    ) -> Result<(), EndpointError> {
        let id = id.get();
        let conn = &mut self
            .connections
            .get_mut(&id)
            .ok_or(EndpointError::UnknownConnection)?
            .conn;
        conn.close(now, reason, debug, linger);
        if conn.is_p2p() {
            self.p2p_pump(now, id);
        }
        self.collect(id);
        Ok(())
    }

    /// The next received message on a connection.
    pub fn poll_message(&mut self, id: ConnectionId) -> Option<ReceivedMessage> {
        let id = id.get();
        let conn = &mut self.connections.get_mut(&id)?.conn;
        let m = conn.poll_message();
        if m.is_none() && conn.is_dead() {
            // Drained: a dead connection may now be forgotten. (A live one is left alone: no
            // transmit or timer work for having been read.)
            self.collect(id);
        }
        m
    }

    /// A connection that had a received message waiting when it was last touched (drain it
    /// with [`Endpoint::poll_message`]); each appears once until polled again.
    pub fn poll_readable(&mut self) -> Option<ConnectionId> {
        let id = self.readable.pop_front()?;
        if let Some(s) = self.connections.get_mut(&id) {
            s.meta.in_readable = false;
        }
        Some(ConnectionId::new(id))
    }

    /// The next connection whose peer address changed since it was last reported.
    pub fn poll_moved(&mut self) -> Option<ConnectionId> {
        self.moved.pop().map(ConnectionId::new)
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
    pub fn remove_listener(&mut self, now: Timestamp, local: LocalSocket) -> Vec<ConnectionId> {
        let Some(l) = self.listeners.remove(&local) else {
            return Vec::new();
        };
        // Connections the application already closed (lingering, FinWait) finish on their own.
        let mut ids: Vec<u32> = self
            .connections
            .iter()
            .filter(|(_, s)| {
                s.meta.accepted_by == Some(l.handle)
                    && !matches!(s.conn.state(), State::Linger | State::FinWait | State::Dead)
            })
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        for &id in &ids {
            if let Some(s) = self.connections.get_mut(&id) {
                s.conn
                    .close(now, end_reason::APP_GENERIC, "Listen socket closed", false);
            }
            self.collect(id);
        }
        ids.into_iter().map(ConnectionId::new).collect()
    }

    /// The listen-socket handle a connection came in through.
    pub fn accepted_by(&self, id: ConnectionId) -> Option<u32> {
        self.connections.get(&id.get())?.meta.accepted_by
    }

    /// The local socket a connection uses.
    pub fn local_of(&self, id: ConnectionId) -> LocalSocket {
        self.connections.get(&id.get()).map_or(0, |s| s.meta.local)
    }

    /// The next status change.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// One received datagram (a `SocketAddr` converts to a [`RecvMeta`] on local socket 0).
    /// Data packets are decrypted in place.
    pub fn handle_datagram(&mut self, now: Timestamp, meta: RecvMeta, data: &mut [u8]) {
        let RecvMeta { local, from } = meta;
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
    /// in one buffer); returns where it goes (local socket and destination), or `None` with
    /// `out` unchanged.
    pub fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<Transmit> {
        let start = out.len();
        loop {
            if let Some((local, to, data)) = self.fake_send.release_on(now) {
                out.extend_from_slice(&data);
                return Some(Transmit { local, to });
            }
            let (local, to) = self.next_datagram(now, out)?;
            if !self.fake_send.conditions.active()
                || self
                    .fake_send
                    .admit_on(now, &mut self.rng, local, to, &out[start..])
            {
                return Some(Transmit { local, to });
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
        if self.p2p.is_some()
            && let Some(t) = self.p2p_next_stun(out)
        {
            return Some(t);
        }
        while let Some(&id) = self.ready.front() {
            let start = out.len();
            if let Some(s) = self.connections.get_mut(&id)
                && s.conn.poll_transmit(now, out).is_some()
            {
                let mut dest = (s.meta.local, s.conn.peer());
                if s.conn.is_p2p()
                    && let Some(wrapped) = self.p2p_wrap(id, out, start)
                {
                    dest = wrapped;
                }
                if self.relay.is_some()
                    && let Some(wrapped) = self.relay_wrap(id, out, start)
                {
                    match wrapped {
                        Some(d) => dest = d,
                        // The relay session is not open yet: dropped, the handshake retries.
                        None => continue,
                    }
                }
                self.collect(id);
                return Some(dest);
            }
            self.ready.pop_front();
            if let Some(s) = self.connections.get_mut(&id) {
                s.meta.in_ready = false;
            }
            self.mark_dirty(id);
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
            if let Some(s) = self.connections.get_mut(&id) {
                s.conn.handle_timeout(now);
                if s.conn.is_p2p() {
                    self.p2p_timeout(now, id);
                }
            }
            if self.relay.is_some() {
                self.relay_timeout(now, id);
                self.relay_check(now, id);
            }
            self.collect(id);
        }
        self.due = due;
    }
}

mod auth;
mod meta;
mod p2p;
mod receive;
mod relay_link;
mod send;

pub use p2p::{ICE_ENABLE_ALL, P2pConnect, P2pCounters, P2pListener, SignalOutcome};

use meta::Slot;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod idle_tests;
#[cfg(test)]
mod p2p_tests;
mod request_index;
#[cfg(test)]
mod tests;
