//! P2P connections on the endpoint (P2P spec §3, §4): signals in and out, the ICE agent of each
//! connection, and STUN on the endpoint's P2P sockets. Data packets take the IP path
//! unchanged (routed by connection id in [`Endpoint::dispatch`]); only the handshake and the
//! route differ.
//!
//! ```text
//!  app ── handle_signal(bytes) ─► route: to our id / known (identity, remote id) / new request
//!                                   └─► Signaling::handle_signal ─► connect_ok, ICE messages
//!  Signaling::poll_signal ─► poll_signal() ─► app's SendSignal
//!  STUN datagram ─► agent (by USERNAME's ufrag, else by transaction id) ─► Selected
//!                                                  └─► Connection::set_route(remote)
//! ```
//!
//! Each session's deadlines join its connection's in the timer wheel ([`Endpoint::reschedule`]),
//! so P2P adds no scan of the connections.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rand_core::Rng;
use rustc_hash::FxHashMap as HashMap;

use super::meta::Slot;
use super::{Endpoint, EndpointError, LocalSocket};
use crate::crypto::negotiate::cipher_preferences;
use crate::proto::connection::{Connection, ConnectionConfig, NO_ROUTE, State};
use crate::proto::end_reason;
use crate::proto::handshake::ClientHandshake;
use crate::proto::ice::agent::{IceAgent, IceConfig, LocalInterface};
use crate::proto::ids::ConnectionId;
use crate::proto::p2p::SignalError;
use crate::proto::p2p::route::{SignalRoute, connect_request, parse_signal, route_signal};
use crate::proto::p2p::signaling::{SignalInput, Signaling, SignalingConfig};
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::ConnectOk;
use crate::wire::rendezvous::{IceAuth, IceCandidate, IceRendezvous, P2pConnectOk, P2pRendezvous};

/// `P2P_Transport_ICE_Enable`'s `All` (GNS's open-source default).
pub const ICE_ENABLE_ALL: i32 = 0x7fff_ffff;

/// A P2P listen socket (`CreateListenSocketP2P`) as the endpoint sees it.
#[derive(Debug, Clone)]
pub struct P2pListener {
    /// The API's listen-socket handle.
    pub handle: u32,
    /// Settings new connections start with.
    pub connection: ConnectionConfig,
    /// `SymmetricConnect`: a request that crosses our own outbound connection to the same
    /// peer and ports resolves into one connection.
    pub symmetric: bool,
}

/// What `ConnectP2PCustomSignaling` asks for.
#[derive(Debug, Clone)]
pub struct P2pConnect {
    /// The peer, if known (its certificate must then name it).
    pub remote_identity: Option<Identity>,
    /// Our virtual port (`LocalVirtualPort`, else the remote one).
    pub local_vport: i32,
    /// The peer's virtual port.
    pub remote_vport: i32,
    /// Connection settings (`None`: the endpoint's defaults).
    pub config: Option<ConnectionConfig>,
    /// ICE settings.
    pub ice: IceConfig,
    /// `SymmetricConnect` (needs `remote_identity`).
    pub symmetric: bool,
    /// Our global FakeIP (`169.254.x.y:port`), sent as `ConnectRequest.from_fakeip` when
    /// `remote_identity` is a FakeIP (GNS sends it from a global fake port).
    pub from_fakeip: Option<String>,
}

/// What a received signal did ([`Endpoint::handle_signal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalOutcome {
    /// Applied to a connection (or deliberately ignored: unknown connection). GNS returns true.
    Handled,
    /// Bad: dropped and counted. GNS returns false.
    Bad(SignalError),
    /// A new incoming connection, waiting for the application's `OnConnectRequest`; announce
    /// it with [`Endpoint::p2p_keep`] or drop it with [`Endpoint::p2p_drop`].
    NewRequest {
        /// The new connection.
        connection: ConnectionId,
        /// The initiator.
        identity: Identity,
        /// Our virtual port it asked for.
        local_vport: i32,
        /// The P2P listen socket on that port, if any.
        listener: Option<u32>,
    },
    /// A new request we refused (bad certificate, no listen socket where one is required):
    /// hand `signal` to the receive context's `SendRejectionSignal`. GNS returns false.
    Refused {
        /// The initiator.
        identity: Identity,
        /// The rejection signal.
        signal: Vec<u8>,
    },
}

/// Counters of P2P input that went nowhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pCounters {
    /// Signals that did not decode or validate.
    pub bad_signals: u64,
    /// Signals for connections we do not have (ignored without a reply, as GNS does).
    pub unknown_signals: u64,
    /// STUN datagrams no agent took, or that an agent dropped.
    pub stun_dropped: u64,
}

/// One connection's P2P state beside the connection itself.
#[derive(Debug)]
struct Session {
    signaling: Signaling,
    ice: Option<IceAgent>,
    /// ICE messages that arrived before the acceptor's agent exists (GNS buffers them too).
    pending_ice: Vec<IceRendezvous>,
    ice_config: IceConfig,
    /// The selected route goes through TURN: datagrams are wrapped.
    relayed: bool,
    /// A failure out of Connecting/FindingRoute was signaled.
    close_signaled: bool,
    /// Key in `by_remote`, once the peer's id is known.
    remote_key: Option<(String, u32)>,
    /// Key in `by_ufrag`, once the agent exists.
    ufrag_indexed: Option<String>,
    /// Outbound and symmetric: (peer identity, our vport, its vport) a crossing request must
    /// match.
    symmetric: Option<(String, i32, i32)>,
    /// Our candidate lines so far (a symmetric role change signals them again).
    candidates: Vec<String>,
}

/// The endpoint's P2P state (boxed: most endpoints never use it).
#[derive(Debug, Default)]
pub(super) struct P2p {
    sessions: HashMap<u32, Session>,
    /// Connections by (peer identity string, peer connection id).
    by_remote: HashMap<(String, u32), u32>,
    /// Connections by their ICE ufrag (requests name it in USERNAME).
    by_ufrag: HashMap<String, u32>,
    interfaces: Vec<LocalInterface>,
    listeners: HashMap<i32, P2pListener>,
    signals: VecDeque<(ConnectionId, Vec<u8>)>,
    stun_out: VecDeque<(LocalSocket, SocketAddr, Vec<u8>)>,
    counters: P2pCounters,
}

impl Endpoint {
    fn p2p_state(&mut self) -> &mut P2p {
        self.p2p.get_or_insert_with(Box::default)
    }

    /// The local addresses (with their attached sockets) ICE gathers host candidates from.
    pub fn set_p2p_interfaces(&mut self, interfaces: Vec<LocalInterface>) {
        self.p2p_state().interfaces = interfaces;
    }

    /// The sockets ICE uses, for the driver's routing of their datagrams here.
    pub fn p2p_interfaces(&self) -> &[LocalInterface] {
        self.p2p.as_ref().map_or(&[], |p| &p.interfaces)
    }

    /// `CreateListenSocketP2P`: false if the virtual port already has one.
    pub fn add_p2p_listener(&mut self, vport: i32, listener: P2pListener) -> bool {
        let p = self.p2p_state();
        if p.listeners.contains_key(&vport) {
            return false;
        }
        p.listeners.insert(vport, listener);
        true
    }

    /// `CloseListenSocket` of a P2P listen socket: closes the connections accepted through it.
    pub fn remove_p2p_listener(&mut self, now: Timestamp, vport: i32) -> Vec<ConnectionId> {
        let Some(l) = self.p2p.as_mut().and_then(|p| p.listeners.remove(&vport)) else {
            return Vec::new();
        };
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

    /// P2P counters.
    pub fn p2p_counters(&self) -> P2pCounters {
        self.p2p
            .as_ref()
            .map_or_else(P2pCounters::default, |p| p.counters)
    }

    /// `ConnectP2PCustomSignaling` on a reserved id: fails at once (as GNS does) when ICE
    /// cannot start (disabled, or no candidate type allowed).
    pub fn connect_p2p(
        &mut self,
        now: Timestamp,
        id: ConnectionId,
        req: P2pConnect,
    ) -> Result<(), EndpointError> {
        let id = id.get();
        let config = req.config.unwrap_or(self.config.connection);
        let seed = self.rng.next_u64();
        let interfaces = self.p2p_state().interfaces.clone();
        let ice = IceAgent::new(now, false, id, seed, req.ice.clone(), &interfaces)
            .map_err(|_| EndpointError::IceDisabled)?;
        let secrets = self.secrets();
        let ciphers = cipher_preferences(config.unencrypted).unwrap_or(&[]);
        let mut hs = ClientHandshake::new(id, NO_ROUTE, &self.identity, secrets, ciphers);
        // A FakeIP names nobody's certificate: the peer's identity is learned from its answer
        // (GNS: `m_identityRemote.IsFakeIP()`, "we don't really know who they are yet").
        let fake = req.remote_identity.as_ref().is_some_and(is_fake_ip);
        if let Some(e) = req
            .remote_identity
            .clone()
            .filter(|e| !is_localhost(e) && !fake)
        {
            hs.expect_remote_identity(e);
        }
        let mut request = if fake {
            // GNS: "Don't send any virtual ports in the message"; the receiver picks its
            // fake port from the FakeIP the signal is addressed to.
            connect_request(hs.crypt().clone(), self.identity.cert().clone(), -1, -1)
        } else {
            connect_request(
                hs.crypt().clone(),
                self.identity.cert().clone(),
                req.local_vport,
                req.remote_vport,
            )
        };
        if fake {
            request.from_fakeip.clone_from(&req.from_fakeip);
        }
        let conn = Connection::p2p_client(now, config, hs, req.remote_identity.clone());
        let mut signaling = Signaling::new(
            now,
            SignalingConfig {
                local_id: id,
                local_identity: self.identity.identity.to_string(),
                remote_identity: req.remote_identity.as_ref().map(Identity::to_string),
                initiator: true,
            },
        );
        signaling.set_connect_request(now, request);
        let local = interfaces.first().map_or(0, |i| i.socket);
        self.connections.insert(id, Slot::new(conn, local));
        let mut session = Session {
            signaling,
            ice: Some(ice),
            pending_ice: Vec::new(),
            ice_config: req.ice,
            relayed: false,
            close_signaled: false,
            remote_key: None,
            ufrag_indexed: None,
            symmetric: None,
            candidates: Vec::new(),
        };
        let listener_symmetric = self
            .p2p_state()
            .listeners
            .get(&req.local_vport)
            .is_some_and(|l| l.symmetric);
        if let Some(peer) = req.remote_identity.as_ref()
            && (req.symmetric || listener_symmetric)
        {
            session.symmetric = Some((peer.to_string(), req.local_vport, req.remote_vport));
        }
        queue_password(now, &mut session);
        self.p2p_state().sessions.insert(id, session);
        self.p2p_pump(now, id);
        self.collect(id);
        Ok(())
    }

    /// `ReceivedP2PCustomSignal`. `listener_required`: a new request needs a P2P listen socket
    /// on its port (default signaling; custom signaling creates listener-less connections).
    pub fn handle_signal(
        &mut self,
        now: Timestamp,
        data: &[u8],
        listener_required: bool,
    ) -> SignalOutcome {
        let msg = match parse_signal(data) {
            Ok(m) => m,
            Err(e) => return self.bad_signal(e),
        };
        let route = {
            let p = self.p2p_state();
            route_signal(&msg, |identity, remote| {
                p.by_remote.contains_key(&(identity.to_string(), remote))
            })
        };
        let id = match route {
            SignalRoute::Bad(e) => return self.bad_signal(e),
            SignalRoute::ToConnection(id) => id,
            SignalRoute::Known(identity, remote) => {
                match self
                    .p2p_state()
                    .by_remote
                    .get(&(identity.to_string(), remote))
                {
                    Some(&id) => id,
                    None => return SignalOutcome::Handled,
                }
            }
            SignalRoute::NewRequest {
                identity,
                remote_id,
                local_vport,
                remote_vport: _,
            } => {
                return self.new_p2p_request(
                    now,
                    &msg,
                    identity,
                    remote_id,
                    local_vport,
                    listener_required,
                );
            }
        };
        if !self.p2p_state().sessions.contains_key(&id) {
            self.p2p_state().counters.unknown_signals += 1;
            return SignalOutcome::Handled;
        }
        let result = {
            let p = self.p2p_state();
            // invariant: checked just above.
            let s = p.sessions.get_mut(&id).expect("session exists");
            s.signaling.handle_signal(now, &msg)
        };
        match result {
            Ok(input) => {
                self.apply_signal(now, id, &msg, input);
                SignalOutcome::Handled
            }
            Err(e) => self.bad_signal(e),
        }
    }

    fn bad_signal(&mut self, e: SignalError) -> SignalOutcome {
        self.p2p_state().counters.bad_signals += 1;
        SignalOutcome::Bad(e)
    }

    fn apply_signal(&mut self, now: Timestamp, id: u32, msg: &P2pRendezvous, input: SignalInput) {
        // Learn the peer's id (and index the connection by it) from its first signal.
        if let Some(remote) = msg.from_connection_id
            && let Some(identity) = msg.from_identity.clone()
        {
            let p = self.p2p_state();
            if let Some(s) = p.sessions.get_mut(&id)
                && s.remote_key.is_none()
            {
                s.remote_key = Some((identity.clone(), remote));
                if let Some(ice) = s.ice.as_mut() {
                    ice.set_remote_connection_id(remote);
                }
                p.by_remote.insert((identity, remote), id);
            }
        }
        if let Some(ok) = &input.connect_ok {
            self.p2p_connect_ok(now, id, msg, ok);
        }
        if let Some((reason, debug)) = &input.closed
            && let Some(s) = self.connections.get_mut(&id)
        {
            s.conn.handle_p2p_closed(now, *reason, debug);
        }
        if let Some(s) = self.p2p.as_mut().and_then(|p| p.sessions.get_mut(&id)) {
            if input.ice_disabled && s.ice.take().is_some() {
                s.signaling.disable_ice();
            }
            match s.ice.as_mut() {
                Some(ice) => {
                    for m in &input.ice {
                        feed_ice(ice, m);
                    }
                }
                None if !input.ice_disabled => s.pending_ice.extend(input.ice),
                None => {}
            }
        }
        self.p2p_pump(now, id);
        self.collect(id);
    }

    fn p2p_connect_ok(&mut self, now: Timestamp, id: u32, msg: &P2pRendezvous, ok: &P2pConnectOk) {
        let udp = ConnectOk {
            client_connection_id: Some(id),
            server_connection_id: msg.from_connection_id,
            crypt: ok.crypt.clone(),
            cert: ok.cert.clone(),
            ..ConnectOk::default()
        };
        let unix_now = super::auth::unix_time(self.wall_clock, now);
        if let Some(s) = self.connections.get_mut(&id) {
            s.conn
                .handle_p2p_connect_ok(now, &udp, &self.identity, &self.trust, unix_now);
            if matches!(s.conn.state(), State::FindingRoute | State::Connected)
                && let Some(p) = self.p2p.as_mut()
                && let Some(sess) = p.sessions.get_mut(&id)
            {
                sess.signaling.connected(now);
                if let Some(identity) = s.conn.info().remote_identity {
                    sess.signaling
                        .set_remote(msg.from_connection_id.unwrap_or(0), identity.to_string());
                }
            }
        }
    }

    /// The application's `SendSignal` failed: the connection ends (5002, as GNS).
    pub fn p2p_signal_failed(&mut self, now: Timestamp, id: ConnectionId) {
        if let Some(s) = self.connections.get_mut(&id.get()) {
            s.conn.p2p_problem(
                now,
                end_reason::MISC_INTERNAL_ERROR,
                "Failed to send P2P signal",
            );
        }
        self.collect(id.get());
    }

    /// The next signal to hand to a connection's signaling object.
    pub fn poll_signal(&mut self) -> Option<(ConnectionId, Vec<u8>)> {
        self.p2p.as_mut()?.signals.pop_front()
    }

    /// The acceptor's side of `AcceptConnection`: its ConnectOK goes into a signal and its
    /// ICE agent (controlling, GNS's inverted roles) starts.
    pub(super) fn p2p_accepted(&mut self, now: Timestamp, id: u32) -> Result<(), EndpointError> {
        let Some(ok) = self
            .connections
            .get(&id)
            .and_then(|s| s.conn.p2p_connect_ok())
            .cloned()
        else {
            return Ok(());
        };
        let seed = self.rng.next_u64();
        let p = self.p2p_state();
        let interfaces = p.interfaces.clone();
        let Some(s) = p.sessions.get_mut(&id) else {
            return Ok(());
        };
        let remote = s.remote_key.as_ref().map(|k| k.1);
        match IceAgent::new(now, true, id, seed, s.ice_config.clone(), &interfaces) {
            Ok(mut ice) => {
                if let Some(r) = remote {
                    ice.set_remote_connection_id(r);
                }
                for m in s.pending_ice.drain(..) {
                    feed_ice(&mut ice, &m);
                }
                s.ice = Some(ice);
            }
            Err(e) => {
                let (code, debug) = (e.close_code(), e.to_string());
                if let Some(c) = self.connections.get_mut(&id) {
                    c.conn.p2p_problem(now, code, &debug);
                }
                self.collect(id);
                return Err(EndpointError::IceDisabled);
            }
        }
        queue_password(now, s);
        s.signaling.queue_connect_ok(
            now,
            P2pConnectOk {
                crypt: ok.crypt,
                cert: ok.cert,
            },
        );
        if let Some(c) = self.connections.get(&id)
            && let Some(first) = interfaces.first()
            && c.meta.local == 0
        {
            let socket = first.socket;
            if let Some(c) = self.connections.get_mut(&id) {
                c.meta.local = socket;
            }
        }
        self.p2p_pump(now, id);
        Ok(())
    }
}

/// The ICE password goes first on the reliable stream (GNS queues it as the agent starts).
fn queue_password(now: Timestamp, s: &mut Session) {
    if let Some(ice) = &s.ice {
        let msg = IceRendezvous {
            add_candidate: None,
            auth: Some(IceAuth {
                pwd_frag: Some(ice.local_password().to_owned()),
            }),
        };
        s.signaling.queue_ice(now, msg);
    }
}

fn feed_ice(ice: &mut IceAgent, m: &IceRendezvous) {
    if let Some(pwd) = m.auth.as_ref().and_then(|a| a.pwd_frag.as_deref()) {
        ice.handle_remote_password(pwd);
    }
    if let Some(line) = m
        .add_candidate
        .as_ref()
        .and_then(|c| c.candidate.as_deref())
    {
        // A candidate we cannot use is dropped, as GNS drops it.
        let _ = ice.handle_remote_candidate(line);
    }
}

fn candidate_message(line: String) -> IceRendezvous {
    IceRendezvous {
        add_candidate: Some(IceCandidate {
            candidate: Some(line),
        }),
        auth: None,
    }
}

fn encode(msg: &P2pRendezvous) -> Vec<u8> {
    prost::Message::encode_to_vec(msg)
}

fn is_localhost(id: &Identity) -> bool {
    match id {
        Identity::IpAddress(a) => a.ip().is_loopback(),
        _ => false,
    }
}

/// A FakeIP identity (`ip:169.254.x.y:port`): it stands for a peer whose identity we learn
/// from its signals.
fn is_fake_ip(id: &Identity) -> bool {
    crate::wire::fakeip::identity_fake_ip(id).is_some()
}

mod accept;
mod io;
