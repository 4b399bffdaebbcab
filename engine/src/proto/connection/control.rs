//! Control messages on an existing connection (spec §2.2, §2.3 table, §2.10) and the
//! handshake steps that change its state: ChallengeReply / ConnectOK on the client, accept and
//! repeated requests on the server, ConnectionClosed and NoConnection on both.

use super::{ConnError, Connection, Role, State};
use crate::crypto::ReplayWindow;
use crate::crypto::TrustStore;
use crate::crypto::negotiate::cipher_preferences;
use crate::proto::end_reason;
use crate::proto::handshake::{Established, LocalIdentity, PeerAuth, SessionSecrets};
use crate::time::Timestamp;
use crate::wire::control::ControlMessage;
use crate::wire::proto::{ConnectionClosed, NoConnection};

use super::keys::PacketKeys;
use super::timers::CONNECT_RETRY_INTERVAL;

impl Connection {
    pub(super) fn send_challenge_request(&mut self, now: Timestamp) {
        if let Role::Client(hs) = &self.role {
            let msg = hs.challenge_request(now);
            self.queue_control(msg.into());
            self.timers.last_ping_request = now;
            self.timers.state_deadline = Some(now + CONNECT_RETRY_INTERVAL);
        }
    }

    /// `AcceptConnection`: only for an incoming connection still waiting.
    pub fn accept(
        &mut self,
        now: Timestamp,
        local: &LocalIdentity,
        secrets: &SessionSecrets,
    ) -> Result<(), ConnError> {
        let Role::Pending(pending) = &self.role else {
            return Err(ConnError::InvalidState);
        };
        if self.state != State::Connecting {
            return Err(ConnError::InvalidState);
        }
        let ciphers = cipher_preferences(self.config.unencrypted).unwrap_or(&[]);
        match pending.accept(now, self.local_id, local, secrets, ciphers) {
            Ok((ok, est)) => {
                // A P2P ConnectOK travels in a signal (the endpoint takes it from the role).
                self.role = if self.p2p {
                    Role::Accepted(Box::new(ok))
                } else {
                    let datagram = super::encode_control(&ok.into()).unwrap_or_default();
                    if !datagram.is_empty() {
                        self.control_out.push_back(datagram.clone());
                    }
                    Role::AcceptedUdp(datagram.into_boxed_slice())
                };
                self.establish(now, est);
                Ok(())
            }
            Err(e) => {
                self.problem(now, e.end_reason(), &e.to_string());
                Err(ConnError::InvalidState)
            }
        }
    }

    fn establish(&mut self, now: Timestamp, est: Established) {
        match PacketKeys::new(now, self.config.aead_backend, est.cipher, est.keys) {
            Ok(keys) => self.keys = Some(keys),
            Err(e) => {
                self.problem(now, end_reason::REMOTE_BAD_CRYPT, &e.to_string());
                return;
            }
        }
        self.remote_id = Some(est.remote_id);
        self.remote_identity = Some(est.remote_identity);
        self.unauthenticated = est.unauthenticated;
        self.replay = ReplayWindow::new();
        self.timers.received(now);
        self.timers.state_deadline = None;
        if self.p2p {
            self.enter_finding_route(now);
        } else {
            self.set_state(now, State::Connected);
        }
    }

    /// A control message the endpoint routed to this connection; `trust` and `unix_now`
    /// (wall-clock seconds, if the caller gave one) judge the server's certificate.
    pub fn handle_control(
        &mut self,
        now: Timestamp,
        msg: &ControlMessage,
        local: &LocalIdentity,
        trust: &TrustStore,
        unix_now: Option<u64>,
    ) {
        match msg {
            // P2P handshakes travel in signals; GNS rejects these lead bytes on ICE.
            ControlMessage::ChallengeReply(_)
            | ControlMessage::ConnectOk(_)
            | ControlMessage::ChallengeRequest(_)
            | ControlMessage::ConnectRequest(_)
                if self.p2p =>
            {
                super::count(&mut self.drops.control_ignored);
            }
            ControlMessage::ChallengeReply(reply) => self.on_challenge_reply(now, reply, local),
            ControlMessage::ConnectOk(ok) => self.on_connect_ok(now, ok, local, trust, unix_now),
            ControlMessage::ChallengeRequest(_) | ControlMessage::ConnectRequest(_) => {
                self.on_repeated_request(now)
            }
            ControlMessage::ConnectionClosed(c) => self.on_connection_closed(now, c),
            ControlMessage::NoConnection(n) => self.on_no_connection(now, n),
        }
    }

    fn on_challenge_reply(
        &mut self,
        now: Timestamp,
        reply: &crate::wire::proto::ChallengeReply,
        local: &LocalIdentity,
    ) {
        if self.state != State::Connecting {
            super::count(&mut self.drops.control_ignored);
            return;
        }
        let ping = self.snp.ping().smoothed_ms();
        let Role::Client(hs) = &mut self.role else {
            super::count(&mut self.drops.control_ignored);
            return;
        };
        let ping_est = u32::try_from(ping).ok();
        match hs.on_challenge_reply(now, reply, local, ping_est) {
            Ok((req, rtt)) => {
                if let Some(rtt) = rtt {
                    self.snp.record_ping_sample(now, rtt);
                }
                self.queue_control(req.into());
                self.timers.state_deadline = Some(now + CONNECT_RETRY_INTERVAL);
            }
            Err(crate::proto::handshake::HandshakeError::WrongConnection) => {
                super::count(&mut self.drops.control_ignored);
            }
            Err(e) => self.problem(now, e.end_reason(), &e.to_string()),
        }
    }

    pub(super) fn on_connect_ok(
        &mut self,
        now: Timestamp,
        ok: &crate::wire::proto::ConnectOk,
        local: &LocalIdentity,
        trust: &TrustStore,
        unix_now: Option<u64>,
    ) {
        match self.state {
            State::Connecting => {}
            State::FinWait | State::ProblemDetectedLocally if !self.closed_by_peer_first => {
                self.queue_connection_closed();
                return;
            }
            _ => {
                super::count(&mut self.drops.control_ignored);
                return;
            }
        }
        let Role::Client(hs) = &self.role else {
            super::count(&mut self.drops.control_ignored);
            return;
        };
        let auth = PeerAuth {
            policy: &self.config.auth,
            trust,
            unix_now,
        };
        match hs.on_connect_ok(now, ok, local, auth) {
            Ok((est, rtt)) => {
                if let Some(rtt) = rtt {
                    self.snp.record_ping_sample(now, rtt);
                }
                self.role = Role::Established;
                self.establish(now, est);
            }
            Err(crate::proto::handshake::HandshakeError::WrongConnection) => {
                super::count(&mut self.drops.control_ignored);
            }
            Err(e) => {
                // The server id may be known now; tell it why.
                self.remote_id = ok.server_connection_id;
                self.problem(now, e.end_reason(), &e.to_string());
            }
        }
    }

    /// A ChallengeRequest or ConnectRequest from our client's address with its id (§2.3).
    fn on_repeated_request(&mut self, _now: Timestamp) {
        match (&self.state, &self.role) {
            (State::Connected | State::Linger, Role::AcceptedUdp(ok)) if !ok.is_empty() => {
                self.control_out.push_back(ok.to_vec());
            }
            (State::ClosedByPeer, _) => self.queue_no_connection(),
            (State::FinWait, _) if self.closed_by_peer_first => self.queue_no_connection(),
            (State::FinWait | State::ProblemDetectedLocally, _) => self.queue_connection_closed(),
            _ => super::count(&mut self.drops.control_ignored),
        }
    }

    pub(super) fn on_connection_closed(&mut self, now: Timestamp, c: &ConnectionClosed) {
        let matches = match c.to_connection_id {
            Some(to) => to == self.local_id,
            None => c.from_connection_id.is_some() && c.from_connection_id == self.remote_id,
        };
        if !matches {
            super::count(&mut self.drops.control_ignored);
            return;
        }
        // Always answer a matching ConnectionClosed (echoing the ids), so the peer can stop.
        self.queue_control(
            NoConnection {
                from_connection_id: c.to_connection_id.or(Some(self.local_id)),
                to_connection_id: c.from_connection_id,
            }
            .into(),
        );
        if matches!(
            self.state,
            State::Connecting | State::FindingRoute | State::Connected | State::Linger
        ) {
            self.end_reason = c.reason_code.unwrap_or(end_reason::MISC_GENERIC);
            self.end_debug = super::truncate(c.debug.as_deref().unwrap_or("")).into();
            if self.state == State::Linger {
                self.set_state(now, State::FinWait);
            } else {
                self.set_state(now, State::ClosedByPeer);
            }
        }
    }

    fn on_no_connection(&mut self, now: Timestamp, n: &NoConnection) {
        let matches = n.to_connection_id == Some(self.local_id)
            && n.from_connection_id.is_some()
            && n.from_connection_id == self.remote_id;
        if !matches {
            super::count(&mut self.drops.control_ignored);
            return;
        }
        match self.state {
            State::Connecting | State::FindingRoute | State::Connected => {
                self.end_reason = end_reason::MISC_PEER_SENT_NO_CONNECTION;
                self.end_debug = "Peer sent NoConnection".into();
                self.set_state(now, State::ClosedByPeer);
            }
            // Already closing: the peer has confirmed; stop waiting.
            State::FinWait | State::Linger => self.set_state(now, State::Dead),
            _ => {}
        }
    }
}
