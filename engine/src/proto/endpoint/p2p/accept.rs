//! New P2P requests (GNS §3.4 step 3): verifying one into an incoming connection that waits
//! for the application's `OnConnectRequest`, symmetric connects that cross one of ours, and
//! what the application's answer does (keep, drop, refuse).

use rand_core::Rng;

use super::super::meta::Slot;
use super::{
    Endpoint, ICE_ENABLE_ALL, Session, SignalOutcome, candidate_message, encode, feed_ice,
    is_localhost, queue_password,
};
use crate::proto::connection::{Connection, NO_ROUTE};
use crate::proto::end_reason;
use crate::proto::handshake::{PeerAuth, check_connect_request};
use crate::proto::ice::agent::IceConfig;
use crate::proto::ids::ConnectionId;
use crate::proto::p2p::SignalError;
use crate::proto::p2p::route::rejection_signal;
use crate::proto::p2p::signaling::{Signaling, SignalingConfig};
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::ConnectRequest;
use crate::wire::rendezvous::{P2pConnectOk, P2pRendezvous};

impl Endpoint {
    pub(super) fn new_p2p_request(
        &mut self,
        now: Timestamp,
        msg: &P2pRendezvous,
        identity: Identity,
        remote_id: u32,
        local_vport: i32,
        listener_required: bool,
    ) -> SignalOutcome {
        let listener = self.p2p_state().listeners.get(&local_vport).cloned();
        if listener.is_none() && listener_required {
            // Default signaling without a listen socket: silently ignored (GNS).
            self.p2p_state().counters.unknown_signals += 1;
            return SignalOutcome::Handled;
        }
        // invariant: route_signal returns NewRequest only with connect_request, cert and crypt.
        let req = msg.connect_request.as_ref().expect("connect_request");
        let (_, remote_vport) = crate::proto::p2p::route::request_vports(req);
        let crossing = self.p2p_state().sessions.iter().find_map(|(&id, s)| {
            let (peer, ours, theirs) = s.symmetric.as_ref()?;
            (*peer == identity.to_string() && *ours == local_vport && *theirs == remote_vport)
                .then_some(id)
        });
        if let Some(ours) = crossing {
            return self.symmetric_crossing(now, msg, ours, identity, remote_id);
        }
        let udp = ConnectRequest {
            client_connection_id: Some(remote_id),
            crypt: req.crypt.clone(),
            cert: req.cert.clone(),
            ..ConnectRequest::default()
        };
        let config = listener
            .as_ref()
            .map_or(self.config.connection, |l| l.connection);
        let auth = PeerAuth {
            policy: &config.auth,
            trust: &self.trust,
            unix_now: super::super::auth::unix_time(self.wall_clock, now),
        };
        let refuse = |ep: &mut Self, reason: u32, debug: &str| {
            ep.counters.refused += 1;
            let signal = rejection_signal(
                &ep.identity.identity.to_string(),
                None,
                &identity.to_string(),
                remote_id,
                reason,
                debug,
            );
            SignalOutcome::Refused {
                identity: identity.clone(),
                signal: encode(&signal),
            }
        };
        let pending = match check_connect_request(now, &udp, NO_ROUTE, auth) {
            Ok(p) => p,
            Err(e) => return refuse(self, e.end_reason(), &e.to_string()),
        };
        // The certificate must name the identity the signals come from.
        if !is_localhost(&identity) && pending.remote_identity != identity {
            let debug = format!(
                "Cert was issued to {}, not {identity}",
                pending.remote_identity
            );
            return refuse(self, end_reason::REMOTE_BAD_CERT, &debug);
        }
        let rng = &mut self.rng;
        let Ok(id) = self.ids.allocate(|| rng.next_u32()) else {
            return refuse(self, end_reason::MISC_GENERIC, "Too many connections");
        };
        let conn = Connection::p2p_incoming(now, id, config, pending);
        let mut slot = Slot::new(conn, 0);
        slot.meta.accepted_by = listener.as_ref().map(|l| l.handle);
        self.connections.insert(id, slot);
        let mut signaling = Signaling::new(
            now,
            SignalingConfig {
                local_id: id,
                local_identity: self.identity.identity.to_string(),
                remote_identity: Some(identity.to_string()),
                initiator: false,
            },
        );
        signaling.set_remote(remote_id, identity.to_string());
        let key = (identity.to_string(), remote_id);
        let session = Session {
            signaling,
            ice: None,
            pending_ice: Vec::new(),
            // Host candidates only until the application's settings arrive (p2p_keep).
            ice_config: IceConfig {
                enable_mask: ICE_ENABLE_ALL,
                stun_servers: Vec::new(),
                turn_servers: Vec::new(),
            },
            relayed: false,
            close_signaled: false,
            remote_key: Some(key.clone()),
            ufrag_indexed: None,
            symmetric: None,
            candidates: Vec::new(),
        };
        let p = self.p2p_state();
        p.sessions.insert(id, session);
        p.by_remote.insert(key, id);
        // The request's own ICE messages (password, candidates) wait for the agent.
        if let Some(s) = p.sessions.get_mut(&id)
            && let Ok(input) = s.signaling.handle_signal(now, msg)
        {
            s.pending_ice.extend(input.ice);
        }
        SignalOutcome::NewRequest {
            connection: ConnectionId::new(id),
            identity,
            local_vport,
            listener: listener.map(|l| l.handle),
        }
    }

    /// Symmetric connect: the peer's request crossed our outbound connection `ours`. The lower
    /// id keeps the client role (GNS's rule); if that is us the request is dropped (the peer
    /// will answer ours), else our connection turns into the acceptor of theirs.
    fn symmetric_crossing(
        &mut self,
        now: Timestamp,
        msg: &P2pRendezvous,
        ours: u32,
        identity: Identity,
        remote_id: u32,
    ) -> SignalOutcome {
        // invariant: the caller routed a NewRequest, which carries connect_request with cert.
        let req = msg.connect_request.as_ref().expect("connect_request");
        let their_cert = req
            .cert
            .as_ref()
            .and_then(|c| c.cert.as_deref())
            .unwrap_or(&[]);
        let our_cert = self.identity.cert().cert.as_deref().unwrap_or(&[]);
        if crate::proto::p2p::route::symmetric_we_are_client(ours, remote_id, our_cert, their_cert)
        {
            return SignalOutcome::Handled;
        }
        let udp = ConnectRequest {
            client_connection_id: Some(remote_id),
            crypt: req.crypt.clone(),
            cert: req.cert.clone(),
            ..ConnectRequest::default()
        };
        let Some(config) = self.connections.get(&ours).map(|s| s.conn.config()) else {
            return SignalOutcome::Handled;
        };
        let auth = PeerAuth {
            policy: &config.auth,
            trust: &self.trust,
            unix_now: super::super::auth::unix_time(self.wall_clock, now),
        };
        let Ok(pending) = check_connect_request(now, &udp, NO_ROUTE, auth) else {
            return self.bad_signal(SignalError::MissingCertOrCrypt);
        };
        let secrets = self.secrets();
        let Some(slot) = self.connections.get_mut(&ours) else {
            return SignalOutcome::Handled;
        };
        if slot
            .conn
            .become_p2p_acceptor(now, pending, &self.identity, &secrets)
            .is_err()
        {
            return SignalOutcome::Handled;
        }
        let key = (identity.to_string(), remote_id);
        let mut signaling = Signaling::new(
            now,
            SignalingConfig {
                local_id: ours,
                local_identity: self.identity.identity.to_string(),
                remote_identity: Some(identity.to_string()),
                initiator: false,
            },
        );
        signaling.set_remote(remote_id, identity.to_string());
        let input = signaling.handle_signal(now, msg).ok();
        let ok = self
            .connections
            .get(&ours)
            .and_then(|c| c.conn.p2p_connect_ok())
            .cloned();
        let p = self.p2p_state();
        if let Some(s) = p.sessions.get_mut(&ours) {
            if let Some(old) = s.remote_key.take() {
                p.by_remote.remove(&old);
            }
            s.signaling = signaling;
            s.symmetric = None;
            s.remote_key = Some(key.clone());
            if let Some(ice) = s.ice.as_mut() {
                ice.set_controlling(true);
                ice.set_remote_connection_id(remote_id);
                for m in input.iter().flat_map(|i| &i.ice) {
                    feed_ice(ice, m);
                }
            }
            queue_password(now, s);
            for line in s.candidates.clone() {
                s.signaling.queue_ice(now, candidate_message(line));
            }
            if let Some(ok) = ok {
                s.signaling.queue_connect_ok(
                    now,
                    P2pConnectOk {
                        crypt: ok.crypt,
                        cert: ok.cert,
                    },
                );
            }
        }
        p.by_remote.insert(key, ours);
        self.p2p_pump(now, ours);
        self.collect(ours);
        SignalOutcome::Handled
    }

    /// The application took a new P2P request (its `OnConnectRequest` returned a signaling
    /// object): post its Connecting status change. ICE settings for the acceptor come here.
    pub fn p2p_keep(&mut self, id: ConnectionId, ice: IceConfig) {
        let id = id.get();
        if let Some(s) = self.p2p.as_mut().and_then(|p| p.sessions.get_mut(&id)) {
            s.ice_config = ice;
        }
        if let Some(s) = self.connections.get_mut(&id) {
            s.conn.announce();
        }
        self.collect(id);
    }

    /// The application refused a new P2P request without closing it (`OnConnectRequest`
    /// returned null): forget it silently, as GNS does.
    pub fn p2p_drop(&mut self, now: Timestamp, id: ConnectionId) {
        let id = id.get();
        if let Some(s) = self.connections.get_mut(&id) {
            s.conn.destroy(now);
            s.conn.take_events();
        }
        self.collect(id);
    }

    /// The rejection signal for a new request the application closed inside its
    /// `OnConnectRequest` (for the receive context's `SendRejectionSignal`).
    pub fn p2p_rejection(&mut self, id: ConnectionId) -> Option<(Identity, Vec<u8>)> {
        let s = self.connections.get(&id.get())?;
        let info = s.conn.info();
        let identity = info.remote_identity?;
        let signal = rejection_signal(
            &self.identity.identity.to_string(),
            Some(id.get()),
            &identity.to_string(),
            info.remote_id?,
            info.end_reason,
            &info.end_debug,
        );
        Some((identity, encode(&signal)))
    }
}
