//! One GNS connection, sans I/O: handshake, state machine, timers and packet protection around
//! the SNP message layer ([`crate::proto::snp`]).
//!
//! ```text
//!  endpoint ── handle_control(msg) ──►┐                     ┌──► poll_transmit(out): control
//!           ── handle_data(datagram) ─┤ Connection          │    datagrams first, then sealed
//!  app ──── send_message / close ─────┤  state, timers,     │    data packets
//!           accept (server)           │  ciphers, replay    ├──► poll_event: StatusChange
//!  shard ── handle_timeout(now) ──────┘  window, Snp        ├──► poll_message
//!                                                           └──► poll_timeout(now)
//! ```
//!
//! Poll order after any input: `poll_transmit` until `None`, then `poll_event`, `poll_message`,
//! and finally `poll_timeout` to learn when to call `handle_timeout` next.

mod config;
mod control;
mod data;
mod detail;
mod keys;
mod p2p;
mod state;
mod stats;
mod timers;

use crate::proto::lazy_queue::LazyQueue;
use std::net::SocketAddr;
use std::time::Duration;

pub use config::{ConfigCache, ConnectionConfig, SharedConfig};
#[cfg(test)]
pub(crate) use keys::ONE_OFF_PACKETS;
pub use p2p::{NO_ROUTE, Route};
pub use state::{ApiState, State, StatusChange};

use crate::crypto::ReplayWindow;
use crate::proto::end_reason;
use crate::proto::handshake::{ClientHandshake, PendingAccept};
use crate::proto::snp::{ReceivedMessage, SendError, Snp, SnpStatus, send_flags};
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::{Cipher, ConnectOk, ConnectionClosed, NoConnection};

/// Longest debug string kept (GNS: `k_cchSteamNetworkingMaxConnectionCloseReason` − 1).
pub const MAX_DEBUG_LEN: usize = 127;

/// Why the application's call on a connection was refused (maps to `EResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// Wrong state for the call (`k_EResultInvalidState`).
    #[error("connection in the wrong state")]
    InvalidState,
    /// The connection has ended (`k_EResultNoConnection`).
    #[error("connection has ended")]
    NoConnection,
    /// The message layer refused (`InvalidParam`, `LimitExceeded`, `Ignored`).
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Packets dropped before they reached the message layer, by reason (saturating `u32`s: one
/// connection's counts, 20 bytes less per connection than `u64`s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Data packets whose header did not parse.
    pub bad_header: u32,
    /// Data packets outside the replay window or already received.
    pub replayed: u32,
    /// Data packets that failed authentication.
    pub auth_failed: u32,
    /// Data packets ignored because of the connection state (e.g. while connecting).
    pub wrong_state: u32,
    /// Control messages that did not match this connection or its state.
    pub control_ignored: u32,
}

/// What a connection knows about itself, for `GetConnectionInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Our id (= the API handle).
    pub local_id: u32,
    /// The peer's id once known.
    pub remote_id: Option<u32>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The peer's identity once known.
    pub remote_identity: Option<Identity>,
    /// State as the API reports it.
    pub state: ApiState,
    /// End reason (0 while alive).
    pub end_reason: u32,
    /// End debug text.
    pub end_debug: String,
    /// Accepted from a listen socket (not locally initiated).
    pub incoming: bool,
    /// Peer certificate not CA-signed (`k_nSteamNetworkConnectionInfoFlags_Unauthenticated`).
    pub unauthenticated: bool,
    /// P2P: the route's kind ([`Route::None`] for IP connections).
    pub route: Route,
    /// NULL cipher (`..._Unencrypted`).
    pub unencrypted: bool,
}

enum Role {
    Client(Box<ClientHandshake>),
    /// Incoming, not yet accepted (or refused).
    Pending(Box<PendingAccept>),
    /// Incoming P2P and accepted: the ConnectOK, which the endpoint signals.
    Accepted(Box<ConnectOk>),
    /// Incoming over UDP and accepted: the ConnectOK datagram to re-send to repeated requests,
    /// encoded once (smaller than the message and its certificate and crypt-info buffers);
    /// one allocation, freed once the client's data shows it has the ConnectOK.
    AcceptedUdp(Box<[u8]>),
    /// Client after ConnectOK; a UDP server once the client's first data packet showed that
    /// it has the ConnectOK.
    Established,
}

/// One connection. Created by the endpoint.
pub struct Connection {
    /// The connection-layer settings (the message layer's are in `snp`), shared with the
    /// other connections that run with the same ones.
    config: std::sync::Arc<config::Settings>,
    local_id: u32,
    remote_id: Option<u32>,
    peer: SocketAddr,
    remote_identity: Option<Identity>,
    state: State,
    /// Set when FinWait was entered from ClosedByPeer (answer NoConnection, not ConnectionClosed).
    closed_by_peer_first: bool,
    end_reason: u32,
    /// Boxed (the text never grows once set): 8 bytes less per connection than a String.
    end_debug: Box<str>,
    role: Role,
    /// Packet ciphers, once established (parked while idle: [`keys`]).
    keys: Option<keys::PacketKeys>,
    replay: ReplayWindow,
    unauthenticated: bool,
    snp: Snp,
    timers: timers::Timers,
    control_out: LazyQueue<Vec<u8>>,
    events: LazyQueue<StatusChange>,
    drops: DropCounters,
    incoming: bool,
    /// A P2P connection: handshake over signals, datagrams only once a route is set.
    p2p: bool,
    /// P2P: the route ICE selected ([`Connection::set_route`]); `peer` is its address.
    route: Route,
    /// P2P: has been Connected (a later failure is not signaled, as in GNS).
    p2p_connected: bool,
    /// End-to-end stats reports (`stats`): made once the link carries traffic.
    quality: Option<Box<crate::proto::quality::Quality>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("peer", &self.peer)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn base(
        now: Timestamp,
        local_id: u32,
        peer: SocketAddr,
        config: SharedConfig,
        role: Role,
    ) -> Self {
        let incoming = !matches!(role, Role::Client(_));
        Connection {
            config: config.settings,
            local_id,
            remote_id: None,
            peer,
            remote_identity: None,
            state: State::Connecting,
            closed_by_peer_first: false,
            end_reason: 0,
            end_debug: Box::default(),
            role,
            keys: None,
            replay: ReplayWindow::new(),
            unauthenticated: false,
            snp: Snp::with_shared_config(now, config.snp),
            timers: timers::Timers::new(now),
            control_out: LazyQueue::new(),
            events: LazyQueue::new(),
            drops: DropCounters::default(),
            incoming,
            p2p: false,
            route: Route::None,
            p2p_connected: false,
            quality: None,
        }
    }

    /// What every client connection starts as (UDP and P2P): Connecting, reported.
    fn base_client(
        now: Timestamp,
        peer: SocketAddr,
        config: SharedConfig,
        handshake: ClientHandshake,
    ) -> Self {
        let id = handshake.local_id();
        let role = Role::Client(Box::new(handshake));
        let mut c = Self::base(now, id, peer, config, role);
        c.push_event(ApiState::None);
        c
    }

    /// A client connection; queues the first ChallengeRequest at once.
    pub fn client(
        now: Timestamp,
        peer: SocketAddr,
        config: impl Into<SharedConfig>,
        handshake: ClientHandshake,
    ) -> Self {
        let mut c = Self::base_client(now, peer, config.into(), handshake);
        c.send_challenge_request(now);
        c
    }

    /// A server connection for a verified ConnectRequest, waiting for [`Connection::accept`].
    pub fn incoming(
        now: Timestamp,
        local_id: u32,
        peer: SocketAddr,
        config: impl Into<SharedConfig>,
        pending: PendingAccept,
    ) -> Self {
        let mut c = Self::base(
            now,
            local_id,
            peer,
            config.into(),
            Role::Pending(Box::new(pending.clone())),
        );
        c.remote_id = Some(pending.remote_id);
        c.remote_identity = Some(pending.remote_identity.clone());
        c.unauthenticated = pending.unauthenticated;
        if let Some(ms) = pending.ping_est_ms.filter(|ms| *ms <= 1500) {
            c.snp
                .record_ping_sample(now, Duration::from_millis(u64::from(ms)));
        }
        c.push_event(ApiState::None);
        c
    }

    /// Our id (the API handle).
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// The peer's id, once known.
    pub fn remote_id(&self) -> Option<u32> {
        self.remote_id
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Moves the peer to a new address (NAT rebinding), after a packet from there authenticated.
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = peer;
    }

    /// Internal state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the endpoint can forget this connection.
    pub fn is_dead(&self) -> bool {
        self.state == State::Dead
    }

    /// Whether it came in through the listen socket (cheap; [`Connection::info`] allocates).
    pub fn is_incoming(&self) -> bool {
        self.incoming
    }

    /// Whether control datagrams are queued (a dead connection sends them before it goes).
    pub fn has_pending_transmit(&self) -> bool {
        !self.control_out.is_empty()
    }

    /// Whether the packet keys are parked (idle: see [`keys`]).
    #[cfg(test)]
    pub(crate) fn keys_parked(&self) -> bool {
        self.keys.as_ref().is_some_and(|k| k.is_parked())
    }

    /// Dropped-packet counters.
    pub fn drops(&self) -> DropCounters {
        self.drops
    }

    /// The message layer, read-only (stats, ping).
    pub fn snp(&self) -> &Snp {
        &self.snp
    }

    /// `GetConnectionInfo`.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            local_id: self.local_id,
            remote_id: self.remote_id,
            peer: self.peer,
            remote_identity: self.remote_identity.clone(),
            state: self.state.api(),
            end_reason: self.end_reason,
            end_debug: self.end_debug.to_string(),
            incoming: self.incoming,
            unauthenticated: self.unauthenticated,
            route: self.route,
            unencrypted: self
                .keys
                .as_ref()
                .is_some_and(|k| k.cipher() == Cipher::Null),
        }
    }

    /// `GetConnectionRealTimeStatus` (message-layer part; the API adds the state). The
    /// qualities are GNS's: local over the last closed 5 s interval, remote from the peer's
    /// last report, −1 while unknown.
    pub fn status(&mut self, now: Timestamp) -> SnpStatus {
        if matches!(self.state, State::Connected | State::Linger) {
            self.quality_tick(now);
        }
        let mut st = self.snp.status(now);
        (st.quality_local, st.quality_remote) = self.quality();
        st
    }

    fn push_event(&mut self, old: ApiState) {
        let new = self.state.api();
        if old != new {
            self.events.push_back(StatusChange {
                old,
                new,
                end_reason: self.end_reason,
                end_debug: self.end_debug.to_string(),
            });
        }
    }

    fn set_state(&mut self, now: Timestamp, state: State) {
        if self.state == state {
            return;
        }
        let old = self.state.api();
        self.state = state;
        self.p2p_connected |= state == State::Connected;
        self.snp
            .set_connected(now, matches!(state, State::Connected | State::Linger));
        if state.api() == ApiState::None {
            // Entering an API-None state purges unread received messages (GNS).
            while self.snp.poll_message().is_some() {}
        }
        if state == State::FinWait {
            self.timers.finwait_started(now);
        }
        self.push_event(old);
    }

    /// Ends the connection from our side for a protocol reason (ProblemDetectedLocally) and
    /// tells the peer.
    fn problem(&mut self, now: Timestamp, reason: u32, debug: &str) {
        if !matches!(
            self.state,
            State::Connecting | State::FindingRoute | State::Connected | State::Linger
        ) {
            return;
        }
        self.end_reason = reason;
        self.end_debug = truncate(debug).into();
        self.queue_connection_closed();
        self.set_state(now, State::ProblemDetectedLocally);
    }

    fn queue_connection_closed(&mut self) {
        let msg = ConnectionClosed {
            debug: Some(self.end_debug.to_string()),
            reason_code: Some(self.end_reason),
            to_connection_id: self.remote_id,
            from_connection_id: Some(self.local_id),
        };
        self.queue_control(msg.into());
    }

    fn queue_no_connection(&mut self) {
        let msg = NoConnection {
            from_connection_id: Some(self.local_id),
            to_connection_id: self.remote_id,
        };
        self.queue_control(msg.into());
    }

    fn queue_control(&mut self, msg: crate::wire::control::ControlMessage) {
        if let Some(out) = encode_control(&msg) {
            self.control_out.push_back(out);
        }
    }

    /// Queues a message (`SendMessageToConnection`). Returns its message number.
    pub fn send_message(
        &mut self,
        now: Timestamp,
        lane: u8,
        flags: u32,
        data: Vec<u8>,
    ) -> Result<u64, ConnError> {
        match self.state {
            State::Connected => {}
            // Messages may queue while connecting, except NoDelay (GNS: Ignored).
            State::Connecting | State::FindingRoute if flags & send_flags::NO_DELAY != 0 => {
                return Err(SendError::Ignored.into());
            }
            State::Connecting | State::FindingRoute => {}
            State::ClosedByPeer | State::ProblemDetectedLocally => {
                return Err(ConnError::NoConnection);
            }
            State::FinWait | State::Linger | State::Dead => return Err(ConnError::InvalidState),
        }
        Ok(self.snp.send_message(now, lane, flags, data)?)
    }

    /// `FlushMessagesOnConnection`.
    pub fn flush(&mut self, now: Timestamp) -> Result<(), ConnError> {
        match self.state {
            State::Connected | State::Connecting | State::FindingRoute => {
                self.snp.flush(now);
                Ok(())
            }
            State::ClosedByPeer | State::ProblemDetectedLocally => Err(ConnError::NoConnection),
            _ => Err(ConnError::InvalidState),
        }
    }

    /// `ConfigureConnectionLanes`.
    pub fn configure_lanes(
        &mut self,
        priorities: &[i32],
        weights: &[u16],
    ) -> Result<(), ConnError> {
        if matches!(self.state, State::FinWait | State::Linger | State::Dead) {
            return Err(ConnError::InvalidState);
        }
        self.snp
            .configure_lanes(priorities, weights)
            .map_err(|_| ConnError::Send(SendError::InvalidParam))
    }

    /// The settings in effect.
    pub fn config(&self) -> ConnectionConfig {
        self.config.with(*self.snp.config())
    }

    /// Applies changed settings (API connection scope): timeouts, MTU and the message-layer
    /// settings apply from now on; the cipher choice is fixed once the handshake started.
    pub fn set_config(&mut self, now: Timestamp, config: ConnectionConfig) {
        self.snp.set_config(now, config.snp);
        let settings = config::Settings::of(&config);
        if *self.config != settings {
            self.config = std::sync::Arc::new(settings);
        }
    }

    /// Whether a received message is waiting.
    pub fn has_message(&self) -> bool {
        self.snp.has_message()
    }

    /// See [`Snp::skip_message_number`].
    pub fn skip_message_number(&mut self, lane: u8) {
        self.snp.skip_message_number(lane);
    }

    /// The next received message, in order per lane for reliable ones.
    pub fn poll_message(&mut self) -> Option<ReceivedMessage> {
        self.snp.poll_message()
    }

    /// The next status change for the application.
    pub fn poll_event(&mut self) -> Option<StatusChange> {
        self.events.pop_front()
    }

    /// `CloseConnection`: `reason` 0 means 1000; outside 1000..=2999 becomes 1999 (GNS).
    pub fn close(&mut self, now: Timestamp, reason: u32, debug: &str, linger: bool) {
        let (reason, debug) = normalize_close(reason, debug);
        match self.state {
            State::Connecting | State::FindingRoute | State::Connected => {
                self.end_reason = reason;
                self.end_debug = debug.into();
                if self.state == State::Connected && linger && self.snp.reliable_pending() {
                    self.set_state(now, State::Linger);
                } else {
                    self.queue_connection_closed();
                    self.set_state(now, State::FinWait);
                }
            }
            State::ClosedByPeer => {
                self.closed_by_peer_first = true;
                self.queue_no_connection();
                self.set_state(now, State::FinWait);
            }
            State::ProblemDetectedLocally => self.set_state(now, State::FinWait),
            State::Linger | State::FinWait | State::Dead => {}
        }
    }

    /// Frees what an idle connection holds for nothing: the capacity of the message layer's
    /// drained queues (run when its packet keys park: no packet for 0.5 s; this layer's own
    /// queues free their buffers as they drain).
    fn release_idle_memory(&mut self, now: Timestamp) {
        self.snp.release_idle_memory(now);
    }

    /// Ends the connection at once without telling the peer (listen socket destroyed, GNS).
    pub fn destroy(&mut self, now: Timestamp) {
        self.set_state(now, State::Dead);
    }
}

/// One control datagram, `None` if it cannot be encoded.
/// Counts one more drop (the counters saturate).
fn count(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}

fn encode_control(msg: &crate::wire::control::ControlMessage) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(msg.encoded_len());
    // invariant: our own control messages are far below 1300 bytes and padded ones are
    // never empty (they always carry ids).
    msg.encode(&mut out).is_ok().then_some(out)
}

fn truncate(s: &str) -> String {
    let mut end = s.len().min(MAX_DEBUG_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// GNS's rules for the reason and debug text an application closes with (`APICloseConnection`):
/// 0 is App_Generic, a reason outside the application ranges becomes App_Max with "Invalid
/// numeric reason code", an empty text gets GNS's default, and the text is cut to 127 bytes.
/// The API applies the same rules to what it reports without the engine (pipes, the closing
/// side's own last status change).
pub fn normalize_close(reason: u32, debug: &str) -> (u32, String) {
    let (reason, debug) = match reason {
        0 => (end_reason::APP_GENERIC, debug),
        r if (end_reason::APP_GENERIC..=end_reason::APP_EXCEPTION_MAX).contains(&r) => (r, debug),
        _ => (end_reason::APP_MAX, "Invalid numeric reason code"),
    };
    let debug = if debug.is_empty() {
        if reason >= end_reason::APP_EXCEPTION_GENERIC {
            "Application closed connection in an unusual way"
        } else {
            "Application closed connection"
        }
    } else {
        debug
    };
    (reason, truncate(debug))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_quality;
#[cfg(test)]
mod tests_recovery;
#[cfg(test)]
mod size_budget {
    //! Issue 16 (at most 2 KiB of server memory per idle connection): the connection's inline
    //! state is most of it, so growth here should be a decision, not an accident. Raise a
    //! budget only with a reason in the commit.
    use super::*;

    #[test]
    fn an_idle_connection_stays_within_its_inline_budget() {
        assert!(
            size_of::<Connection>() <= 1_120,
            "Connection grew to {} B",
            size_of::<Connection>()
        );
        // 16-byte alignment (a u128 or i128 field) would pad it and every slot around it.
        assert_eq!(align_of::<Connection>(), 8);
        crate::proto::snp::assert_size_budget();
    }
}
