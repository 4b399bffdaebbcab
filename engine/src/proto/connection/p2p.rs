//! A connection that rides a P2P route (spec P2P §3.5, §4.6): the handshake's crypt info and
//! certificates travel in signals, so there is no challenge and no UDP ConnectRequest; once
//! both ends hold keys the connection waits in FindingRoute until ICE selects a route
//! ([`Connection::set_route`]) and the first data packet from the peer decrypts, which
//! confirms the route end to end and makes it Connected. From then on the data path is the
//! IP path's: same packets, same ciphers, packet numbers from 2.
//!
//! ```text
//!  initiator: p2p_client ─ Connecting ─ handle_p2p_connect_ok ─► FindingRoute ─┐
//!  acceptor:  p2p_incoming ─ Connecting ─ accept ─────────────► FindingRoute ─┤
//!                                set_route(peer) ─► pings every 200 ms       │
//!                                first packet that decrypts ─────────────────┴► Connected
//!  FindingRoute longer than TimeoutInitial ─► ProblemDetectedLocally 5008
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use super::timers::URGENT_PING_INTERVAL;
use super::{Connection, Role, State};
use crate::crypto::TrustStore;
use crate::proto::end_reason;
use crate::proto::handshake::{ClientHandshake, LocalIdentity, PendingAccept};
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::{ConnectOk, CryptInfoSigned};

/// The address a P2P connection reports before ICE selects a route.
pub const NO_ROUTE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// What a P2P connection's route is, for the info flags GNS reports (`Fast` for a LAN route,
/// `Relayed` through TURN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// No route yet (or not a P2P connection).
    #[default]
    None,
    /// Direct, across subnets.
    Direct,
    /// Direct, to an address on our own subnet (GNS: `UDPProbablyLocal`, flag `Fast`).
    Lan,
    /// Through a TURN relay (flag `Relayed`).
    Relayed,
}

/// GNS's debug text for a route that never came (`k_ESteamNetConnectionEnd_Misc_P2P_Rendezvous`).
const ROUTE_TIMEOUT_DEBUG: &str = "Timed out attempting to negotiate rendezvous";

impl Connection {
    /// A P2P initiator (`ConnectP2PCustomSignaling`): sends nothing itself; its crypt info
    /// ([`Connection::p2p_crypt`]) goes out in the signals' connect request.
    pub fn p2p_client(
        now: Timestamp,
        config: super::ConnectionConfig,
        handshake: ClientHandshake,
        remote: Option<Identity>,
    ) -> Self {
        let mut c = Self::base_client(now, NO_ROUTE, config.into(), handshake);
        c.p2p = true;
        c.remote_identity = remote;
        c
    }

    /// A P2P acceptor for a verified connect request, waiting for [`Connection::accept`]; the
    /// ConnectOK it then builds is read with [`Connection::p2p_connect_ok`].
    pub fn p2p_incoming(
        now: Timestamp,
        local_id: u32,
        config: super::ConnectionConfig,
        pending: PendingAccept,
    ) -> Self {
        let mut c = Self::incoming(now, local_id, NO_ROUTE, config, pending);
        c.p2p = true;
        // Announced only once the application keeps it ([`Connection::announce`]).
        c.events.clear();
        c
    }

    /// Posts the None -> Connecting change of a kept P2P request.
    pub fn announce(&mut self) {
        self.push_event(super::ApiState::None);
    }

    /// Drops unread status changes (a P2P request forgotten without a trace).
    pub fn take_events(&mut self) {
        self.events.clear();
    }

    /// A P2P failure found outside the connection (ICE, signaling): ProblemDetectedLocally.
    pub fn p2p_problem(&mut self, now: Timestamp, reason: u32, debug: &str) {
        self.problem(now, reason, debug);
    }

    /// The round trip of the ICE check that confirmed the route: a first ping sample.
    pub fn record_route_ping(&mut self, now: Timestamp, rtt: std::time::Duration) {
        if self.snp.ping().smoothed().is_none() {
            self.snp.record_ping_sample(now, rtt);
        }
    }

    /// Symmetric connect, the side that lost the role: our outbound connection answers the
    /// peer's request instead (GNS's `ChangeRoleToServerAndAccept`), keeping its handle; its
    /// ConnectOK is then read with [`Connection::p2p_connect_ok`].
    pub fn become_p2p_acceptor(
        &mut self,
        now: Timestamp,
        pending: PendingAccept,
        local: &LocalIdentity,
        secrets: &crate::proto::handshake::SessionSecrets,
    ) -> Result<(), super::ConnError> {
        if !self.p2p || self.state != State::Connecting || !matches!(self.role, Role::Client(_)) {
            return Err(super::ConnError::InvalidState);
        }
        self.remote_id = Some(pending.remote_id);
        self.remote_identity = Some(pending.remote_identity.clone());
        self.unauthenticated = pending.unauthenticated;
        self.role = Role::Pending(Box::new(pending));
        self.accept(now, local, secrets)
    }

    /// A client still waiting for the server's first answer sends its ChallengeRequest again
    /// now (its path just opened: a relay session was granted).
    pub fn retry_handshake_now(&mut self, now: Timestamp) {
        if !self.p2p && self.state == State::Connecting && matches!(self.role, Role::Client(_)) {
            self.send_challenge_request(now);
        }
    }

    /// Whether a reply deadline passed without a reply (the path may be gone).
    pub fn reply_overdue(&self) -> bool {
        self.timers.timeouts_in_a_row > 0
    }

    /// A connected connection sends a ping (ACK request) with its next packet, now.
    pub fn ping_now(&mut self) {
        if matches!(self.state, State::Connected | State::Linger) {
            self.timers.force_ack_request = Some(true);
        }
    }

    /// Whether this is a P2P connection.
    pub fn is_p2p(&self) -> bool {
        self.p2p
    }

    /// Whether ICE has selected a route.
    pub fn has_route(&self) -> bool {
        self.route != Route::None
    }

    /// The initiator's signed crypt info, while it still waits for ConnectOK.
    pub fn p2p_crypt(&self) -> Option<&CryptInfoSigned> {
        match &self.role {
            Role::Client(hs) if self.p2p => Some(hs.crypt()),
            _ => None,
        }
    }

    /// The acceptor's ConnectOK (crypt info and certificate), once accepted.
    pub fn p2p_connect_ok(&self) -> Option<&ConnectOk> {
        match &self.role {
            Role::Accepted(ok) if self.p2p => Some(ok),
            _ => None,
        }
    }

    /// The initiator's side of a signaled ConnectOK (already in UDP form: our id, the peer's id
    /// from the signal, its crypt info and certificate).
    pub fn handle_p2p_connect_ok(
        &mut self,
        now: Timestamp,
        ok: &ConnectOk,
        local: &LocalIdentity,
        trust: &TrustStore,
        unix_now: Option<u64>,
    ) {
        if self.p2p {
            self.on_connect_ok(now, ok, local, trust, unix_now);
        }
    }

    /// ICE selected (or moved) the route: datagrams now go to `peer`. In FindingRoute the
    /// connection pings at once and every 200 ms until a packet comes back.
    pub fn set_route(&mut self, now: Timestamp, peer: SocketAddr, kind: Route) {
        if !self.p2p || kind == Route::None {
            return;
        }
        self.peer = peer;
        self.route = kind;
        if self.state == State::FindingRoute {
            self.timers.force_ack_request = Some(true);
            self.timers.next_urgent_ping = Some(now + URGENT_PING_INTERVAL);
        }
    }

    /// Keys are ready: wait for a route (its own TimeoutInitial, as GNS counts per state).
    pub(super) fn enter_finding_route(&mut self, now: Timestamp) {
        self.timers.created = now;
        self.set_state(now, State::FindingRoute);
        if self.has_route() {
            self.timers.force_ack_request = Some(true);
            self.timers.next_urgent_ping = Some(now + URGENT_PING_INTERVAL);
        }
    }

    pub(super) fn finding_route_timeout(&mut self, now: Timestamp) {
        if now >= self.timers.created + self.config.timeout_initial {
            self.problem(now, end_reason::MISC_P2P_RENDEZVOUS, ROUTE_TIMEOUT_DEBUG);
            return;
        }
        if self.has_route() && self.timers.next_urgent_ping.is_some_and(|t| now >= t) {
            self.timers.force_ack_request = Some(true);
            self.timers.next_urgent_ping = Some(now + URGENT_PING_INTERVAL);
        }
    }

    /// Whether a P2P connection failed before it connected (its peer hears by signal).
    pub fn failed_before_connected(&self) -> bool {
        self.p2p && !self.p2p_connected && self.state == State::ProblemDetectedLocally
    }

    /// Applies the peer's verdict from a signal (`connection_closed`), as a ConnectionClosed
    /// on the wire would be.
    pub fn handle_p2p_closed(&mut self, now: Timestamp, reason: u32, debug: &str) {
        let c = crate::wire::proto::ConnectionClosed {
            debug: Some(debug.to_owned()),
            reason_code: Some(reason),
            to_connection_id: Some(self.local_id),
            from_connection_id: self.remote_id,
        };
        self.on_connection_closed(now, &c);
        // The reply it queued (NoConnection) has no route to go by; the signal layer answers.
        if !self.has_route() {
            self.control_out.clear();
        }
    }
}
