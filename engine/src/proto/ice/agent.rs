//! [`IceAgent`]: one per P2P connection, the sans-I/O ICE session GNS's native client runs.
//!
//! Inputs: signals from the peer (password, candidate lines), STUN datagrams routed to this
//! agent, timeouts. Outputs: candidate lines to signal, datagrams to send, events.
//!
//! Poll order after any input: [`IceAgent::poll_transmit`] until `None`,
//! [`IceAgent::poll_local_candidate`], [`IceAgent::poll_event`], then arm
//! [`IceAgent::poll_timeout`].
//!
//! ```text
//!  signals --> remote candidates --+
//!                                  +--> pairs (checklist.rs) --checks--> Selected
//!  interfaces --> local candidates-+        ^ triggered by incoming requests
//!      \--> STUN servers (srflx, gather.rs), TURN servers (relay, turn.rs)
//! ```
//! GNS: steamnetworkingsockets_ice_client.cpp, `CSteamNetworkingICESession`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::candidate::{
    Candidate, CandidateError, CandidateKind, CandidateTypes, candidate_priority, classify_host,
    gns_foundation, is_reserved,
};
use super::checklist::{Pair, RemoteCand};
use super::cred::{password_from_random, ufrag_from_connection_id};
use super::gather::Discovery;
use super::stun::{StunError, StunMessage, encode_binding_success, msg};
use super::turn::{self, TurnClient, TurnOutcome};
use crate::datagram::LocalSocket;
use crate::time::Timestamp;

/// GNS's session think interval: at most one new check per tick.
pub(super) const THINK_INTERVAL: Duration = Duration::from_millis(50);

/// `k_nICECloseCode_Local_UserNotEnabled`: ICE disabled or no allowed candidate type.
pub const ICE_CLOSE_USER_NOT_ENABLED: u32 = 3998;
/// `k_nICECloseCode_Aborted` (= `Local_Special`).
pub const ICE_CLOSE_ABORTED: u32 = 3997;

/// A local address ICE may use, with the socket bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalInterface {
    /// The socket bound to `addr`.
    pub socket: LocalSocket,
    /// The bound address (ephemeral port already chosen).
    pub addr: SocketAddr,
    /// Netmask length, for same-subnet preference.
    pub prefix_len: u8,
}

/// A TURN server with its (possibly empty) long-term credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// Resolved server address.
    pub addr: SocketAddr,
    /// `P2P_TURN_UserList` entry.
    pub user: String,
    /// `P2P_TURN_PassList` entry.
    pub pass: String,
}

/// The connection's ICE configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// `P2P_Transport_ICE_Enable` (already clamped by the caller).
    pub enable_mask: i32,
    /// Resolved `P2P_STUN_ServerList`.
    pub stun_servers: Vec<SocketAddr>,
    /// Resolved `P2P_TURN_ServerList` with credentials.
    pub turn_servers: Vec<TurnServer>,
}

/// What the agent tells its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceEvent {
    /// A pair was selected (again, on an upgrade): send data from `local` to `remote`
    /// (through [`IceAgent::encapsulate`], which wraps it for TURN when `relayed`).
    Selected {
        /// Local socket of the pair.
        local: LocalSocket,
        /// Remote candidate address.
        remote: SocketAddr,
        /// Either side is a relay candidate (GNS route kind TURN).
        relayed: bool,
        /// Round trip of the check that confirmed the pair, ms, at least 1 (GNS's initial ping).
        rtt_ms: u32,
    },
    /// ICE gave up; `reason` is a GNS ICE close code (3997/3998).
    Failed {
        /// GNS ICE close code.
        reason: u32,
        /// Human-readable detail.
        debug: String,
    },
}

/// Why an agent could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IceError {
    /// `P2P_Transport_ICE_Enable` is 0 (or negative).
    #[error("ICE not enabled by local user options")]
    NotEnabled,
    /// The mask allows no candidate type given the configured servers.
    #[error("No local candidate types are allowed by user settings and configured servers")]
    NoAllowedTypes,
}

impl IceError {
    /// The GNS ICE close code for this failure.
    pub fn close_code(&self) -> u32 {
        ICE_CLOSE_USER_NOT_ENABLED
    }
}

/// A local candidate the agent pairs: a host socket or a TURN allocation reached through one.
#[derive(Debug, Clone)]
pub(super) struct LocalCand {
    pub(super) socket: LocalSocket,
    /// Host address, or the relayed address.
    pub(super) addr: SocketAddr,
    pub(super) prefix_len: u8,
    pub(super) local_pref: u16,
    /// Index into `turn` when this is a relay candidate.
    pub(super) relay: Option<usize>,
}

impl LocalCand {
    pub(super) fn kind(&self) -> CandidateKind {
        if self.relay.is_some() {
            CandidateKind::Relay
        } else {
            CandidateKind::Host
        }
    }
}

/// One ICE session (GNS `CSteamNetworkingICESession`).
#[derive(Debug)]
pub struct IceAgent {
    pub(super) controlling: bool,
    pub(super) rng: ChaCha8Rng,
    pub(super) tiebreaker: u64,
    pub(super) allowed: CandidateTypes,
    pub(super) local_ufrag: String,
    pub(super) local_pwd: String,
    pub(super) remote_ufrag: Option<String>,
    pub(super) remote_pwd: Option<String>,
    pub(super) locals: Vec<LocalCand>,
    pub(super) remotes: Vec<RemoteCand>,
    pub(super) pairs: Vec<Pair>,
    pub(super) triggered: VecDeque<usize>,
    pub(super) selected: Option<usize>,
    pub(super) next_think: Timestamp,
    pub(super) discoveries: Vec<Discovery>,
    pub(super) turn: Vec<TurnClient>,
    pub(super) out: VecDeque<(LocalSocket, SocketAddr, Vec<u8>)>,
    pub(super) local_lines: VecDeque<String>,
    pub(super) events: VecDeque<IceEvent>,
    /// Datagrams dropped (bad integrity, wrong username, unknown transaction...).
    pub(super) dropped: u64,
}

impl IceAgent {
    /// Starts a session: host candidates are gathered at once from `interfaces` (reserved
    /// addresses skipped, local preference 65535 counting down), server-reflexive discovery and
    /// TURN allocation begin on the first [`IceAgent::poll_transmit`].
    pub fn new(
        now: Timestamp,
        controlling: bool,
        local_conn_id: u32,
        rng_seed: u64,
        config: IceConfig,
        interfaces: &[LocalInterface],
    ) -> Result<IceAgent, IceError> {
        if config.enable_mask <= 0 {
            return Err(IceError::NotEnabled);
        }
        let allowed = CandidateTypes::from_enable_mask(
            config.enable_mask,
            !config.stun_servers.is_empty(),
            !config.turn_servers.is_empty(),
        );
        if allowed.0 == 0 {
            return Err(IceError::NoAllowedTypes);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let local_pwd = password_from_random(rng.next_u32());
        let tiebreaker = rng.next_u64();
        let mut agent = IceAgent {
            controlling,
            rng,
            tiebreaker,
            allowed,
            local_ufrag: ufrag_from_connection_id(local_conn_id),
            local_pwd,
            remote_ufrag: None,
            remote_pwd: None,
            locals: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            selected: None,
            next_think: now,
            discoveries: Vec::new(),
            turn: Vec::new(),
            out: VecDeque::new(),
            local_lines: VecDeque::new(),
            events: VecDeque::new(),
            dropped: 0,
        };
        let mut pref: u16 = 65535;
        for iface in interfaces {
            let ip = iface.addr.ip();
            let Some(host_bit) = classify_host(ip).filter(|_| !is_reserved(ip)) else {
                continue;
            };
            let local_pref = pref;
            pref = pref.saturating_sub(1);
            agent.locals.push(LocalCand {
                socket: iface.socket,
                addr: iface.addr,
                prefix_len: iface.prefix_len,
                local_pref,
                relay: None,
            });
            if allowed.allows(host_bit) {
                agent.advertise(iface.addr, None, CandidateKind::Host, local_pref);
            }
            let refl = CandidateTypes::bit_for(CandidateKind::Srflx, ip);
            if allowed.allows(refl) {
                let servers: Vec<SocketAddr> = config
                    .stun_servers
                    .iter()
                    .filter(|s| s.is_ipv4() == iface.addr.is_ipv4())
                    .copied()
                    .collect();
                if !servers.is_empty() {
                    let d = Discovery::new(now, iface, local_pref, servers, &mut agent.rng);
                    agent.discoveries.push(d);
                }
            }
            let relay = CandidateTypes::bit_for(CandidateKind::Relay, ip);
            if allowed.allows(relay) {
                let server = config
                    .turn_servers
                    .iter()
                    .find(|s| s.addr.is_ipv4() == iface.addr.is_ipv4());
                if let Some(s) = server {
                    let c = TurnClient::new(
                        now,
                        iface.socket,
                        s.addr,
                        s.user.clone(),
                        s.pass.clone(),
                        &mut agent.rng,
                    );
                    agent.turn.push(c);
                }
            }
        }
        Ok(agent)
    }

    /// Queues a local candidate line for signaling.
    pub(super) fn advertise(
        &mut self,
        addr: SocketAddr,
        server: Option<SocketAddr>,
        kind: CandidateKind,
        local_pref: u16,
    ) {
        let c = Candidate {
            foundation: gns_foundation(addr, server, kind).to_string(),
            priority: candidate_priority(kind, local_pref),
            addr,
            kind,
        };
        self.local_lines.push_back(c.to_string());
    }

    /// Our password, to send as the first reliable signal (`ice.auth.pwd_frag`).
    pub fn local_password(&self) -> &str {
        &self.local_pwd
    }

    /// Our ufrag (derived from our connection id; never signaled).
    pub fn local_ufrag(&self) -> &str {
        &self.local_ufrag
    }

    /// The next candidate line to signal (`ice.add_candidate`), in discovery order.
    pub fn poll_local_candidate(&mut self) -> Option<String> {
        self.local_lines.pop_front()
    }

    /// The peer's connection id is known: its ufrag follows from it.
    pub fn set_remote_connection_id(&mut self, id: u32) {
        self.remote_ufrag = Some(ufrag_from_connection_id(id));
    }

    /// The peer's `pwd_frag` arrived.
    pub fn handle_remote_password(&mut self, pwd: &str) {
        self.remote_pwd = Some(pwd.to_string());
    }

    /// A signaled candidate line arrived.
    pub fn handle_remote_candidate(&mut self, line: &str) -> Result<(), CandidateError> {
        let c = Candidate::parse(line)?;
        self.add_remote(c);
        Ok(())
    }

    /// Our role changed (symmetric connect). Pair priorities follow the new role.
    pub fn set_controlling(&mut self, controlling: bool) {
        self.controlling = controlling;
    }

    /// Whether this agent is controlling.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// Datagrams dropped so far (integrity, username, unknown transaction, malformed).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A STUN datagram for this agent arrived on `local` from `from`. An `Err` means it was
    /// dropped (and counted). A TURN Data indication carrying GNS data is ignored here: the
    /// caller takes those through [`IceAgent::decapsulate`] first.
    pub fn handle_stun(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), StunError> {
        let r = self.handle_stun_inner(now, local, from, data);
        if r.is_err() {
            self.dropped += 1;
        }
        r
    }

    fn handle_stun_inner(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), StunError> {
        let m = StunMessage::decode(data)?;
        if let Some(t) = self.turn_from(local, from) {
            if m.msg_type == msg::DATA_INDICATION {
                let (peer, inner) = turn::data_indication(&m).ok_or(StunError::Unexpected)?;
                let inner = StunMessage::decode(inner)?;
                let lc = self
                    .locals
                    .iter()
                    .position(|l| l.relay == Some(t))
                    .ok_or(StunError::Unexpected)?;
                return self.handle_check_message(now, lc, peer, &inner);
            }
            if m.is_response() && self.turn[t].owns(&m.txid) {
                return self.handle_turn_response(now, t, &m);
            }
        }
        if m.is_response() {
            if let Some(d) = self.discoveries.iter().position(|d| d.owns(local, &m.txid)) {
                return self.handle_discovery_response(d, &m);
            }
        }
        let lc = self
            .locals
            .iter()
            .position(|l| l.socket == local && l.relay.is_none())
            .ok_or(StunError::Unexpected)?;
        self.handle_check_message(now, lc, from, &m)
    }

    /// Whether `from` on `local` is one of this agent's TURN servers (its Data indications
    /// carry no transaction id of ours, so an endpoint routes them by their source).
    pub fn is_turn_server(&self, local: LocalSocket, from: SocketAddr) -> bool {
        self.turn_from(local, from).is_some()
    }

    fn turn_from(&self, local: LocalSocket, from: SocketAddr) -> Option<usize> {
        self.turn
            .iter()
            .position(|t| t.socket == local && t.server == from)
    }

    fn handle_turn_response(
        &mut self,
        now: Timestamp,
        t: usize,
        m: &StunMessage<'_>,
    ) -> Result<(), StunError> {
        match self.turn[t].handle_response(now, m, &mut self.rng) {
            TurnOutcome::NotMine => Err(StunError::Unexpected),
            TurnOutcome::Handled | TurnOutcome::Failed => Ok(()),
            TurnOutcome::Allocated(relayed) => {
                let socket = self.turn[t].socket;
                let server = self.turn[t].server;
                let (prefix_len, local_pref) = self
                    .locals
                    .iter()
                    .find(|l| l.socket == socket && l.relay.is_none())
                    .map_or((0, 0), |l| (l.prefix_len, l.local_pref));
                self.locals.push(LocalCand {
                    socket,
                    addr: relayed,
                    prefix_len,
                    local_pref,
                    relay: Some(t),
                });
                let lc = self.locals.len() - 1;
                let peers: Vec<SocketAddr> = self.remotes.iter().map(|r| r.addr).collect();
                for p in peers {
                    self.turn[t].add_permission(p.ip());
                }
                self.pair_local(lc);
                self.advertise(relayed, Some(server), CandidateKind::Relay, local_pref);
                Ok(())
            }
        }
    }

    /// Queues `bytes` from local candidate `lc` to `to`, through TURN for a relay candidate.
    pub(super) fn send_from(&mut self, lc: usize, to: SocketAddr, bytes: Vec<u8>) {
        let l = &self.locals[lc];
        match l.relay {
            Some(t) => {
                let server = self.turn[t].server;
                self.out
                    .push_back((l.socket, server, turn::send_indication(to, &bytes)));
            }
            None => self.out.push_back((l.socket, to, bytes)),
        }
    }

    /// Answers a check GNS's way: XOR-MAPPED-ADDRESS of the source, USERNAME echo, MI with our
    /// password, FINGERPRINT.
    pub(super) fn respond(&mut self, lc: usize, from: SocketAddr, txid: [u8; 12]) {
        let username = self.expected_incoming_username();
        let resp = encode_binding_success(
            txid,
            from,
            username.as_deref().map(str::as_bytes),
            self.local_pwd.as_bytes(),
        );
        self.send_from(lc, from, resp);
    }

    /// `localUfrag:remoteUfrag`, once the remote ufrag is known.
    pub(super) fn expected_incoming_username(&self) -> Option<String> {
        let r = self.remote_ufrag.as_ref()?;
        Some(format!("{}:{}", self.local_ufrag, r))
    }

    /// Runs everything due at `now`: retransmissions, one check per 50 ms think, server
    /// transactions, keepalives, TURN refreshes.
    fn drive(&mut self, now: Timestamp) {
        for i in 0..self.turn.len() {
            let _ = self.turn[i].drive(now, &mut self.rng, &mut self.out);
        }
        for d in &mut self.discoveries {
            d.drive(now, &mut self.rng, &mut self.out);
        }
        self.drive_checks(now);
        if now >= self.next_think {
            while self.next_think <= now {
                self.next_think = self.next_think + THINK_INTERVAL;
            }
            self.think(now);
        }
    }

    /// The next datagram to send: checks, responses, server transactions.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<(LocalSocket, SocketAddr, Vec<u8>)> {
        if self.out.is_empty() {
            self.drive(now);
        }
        self.out.pop_front()
    }

    /// Runs timers due at `now` (the output shows up in [`IceAgent::poll_transmit`]).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.drive(now);
    }

    /// When [`IceAgent::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut t: Option<Timestamp> = None;
        let mut take = |x: Option<Timestamp>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if !self.out.is_empty() {
            take(Some(Timestamp::ZERO));
        }
        for c in &self.turn {
            take(c.poll_timeout());
        }
        for d in &self.discoveries {
            take(d.poll_timeout());
        }
        take(self.checks_timeout());
        if self.has_think_work() {
            take(Some(self.next_think));
        }
        t
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// The selected pair: local socket and remote address.
    pub fn selected(&self) -> Option<(LocalSocket, SocketAddr)> {
        let p = &self.pairs[self.selected?];
        Some((self.locals[p.local].socket, self.remotes[p.remote].addr))
    }

    /// Frames `payload` for the selected pair into `out` and says where to send it: a TURN Send
    /// indication to the server for a relayed local candidate, the payload as is otherwise.
    /// `None` before a pair is selected (GNS sends nothing then).
    pub fn encapsulate(
        &self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<(LocalSocket, SocketAddr)> {
        let p = &self.pairs[self.selected?];
        let l = &self.locals[p.local];
        let remote = self.remotes[p.remote].addr;
        out.clear();
        match l.relay {
            Some(t) => {
                out.extend_from_slice(&turn::send_indication(remote, payload));
                Some((l.socket, self.turn[t].server))
            }
            None => {
                out.extend_from_slice(payload);
                Some((l.socket, remote))
            }
        }
    }

    /// The GNS data inside a TURN Data indication from one of our servers: the peer and the
    /// payload. `None` for anything else (including STUN carried in the indication, which
    /// [`IceAgent::handle_stun`] takes).
    pub fn decapsulate<'a>(
        &self,
        local: LocalSocket,
        from: SocketAddr,
        data: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        self.turn_from(local, from)?;
        let m = StunMessage::decode(data).ok()?;
        let (peer, inner) = turn::data_indication(&m)?;
        if super::stun::is_stun(inner) {
            return None;
        }
        Some((peer, inner))
    }

    /// Whether a response with `txid` belongs to this agent (routing of responses).
    pub fn has_transaction(&self, txid: &[u8; 12]) -> bool {
        self.pairs
            .iter()
            .any(|p| p.check.as_ref().is_some_and(|c| &c.txid == txid))
            || self.discoveries.iter().any(|d| d.has_txid(txid))
            || self.turn.iter().any(|t| t.owns(txid))
    }
}
