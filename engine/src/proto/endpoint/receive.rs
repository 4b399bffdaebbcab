//! The receive side of the endpoint: dispatching datagrams by kind, the stateless challenge,
//! new incoming connections and stateless replies.

use std::net::SocketAddr;

use rand_core::Rng;

use super::auth::unix_time;
use super::meta::Admitted;
use super::{Endpoint, LocalSocket, NO_CONNECTION_SPAM_INTERVAL, Slot};
use crate::crypto::cert::PROTOCOL_VERSION;
use crate::proto::connection::Connection;
use crate::proto::end_reason;
use crate::proto::handshake::{PeerAuth, check_connect_request};
use crate::time::Timestamp;
use crate::wire::control::{ControlMessage, decode_control};
use crate::wire::packet::{AEAD_TAG_LEN, DATA_HEADER_LEN, PacketKind, classify, receiver_id};
use crate::wire::proto::{ChallengeReply, ConnectionClosed, NoConnection};

impl Endpoint {
    pub(super) fn dispatch(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        data: &mut [u8],
    ) {
        if self.relay.is_some() && self.is_relay_datagram(from, data) {
            self.relay_datagram(now, local, from, data);
            return;
        }
        if self.p2p.is_some() && crate::proto::ice::is_stun(data) {
            self.p2p_stun(now, local, from, data);
            return;
        }
        match classify(data) {
            Ok(PacketKind::Data) => {
                // classify saw a data lead byte and at least 5 bytes, so the id is there.
                let Some(id) = receiver_id(data) else {
                    self.counters.malformed += 1;
                    return;
                };
                match self.connections.get_mut(&id).map(|s| &mut s.conn) {
                    Some(conn) => {
                        if conn.handle_data(now, data) && conn.peer() != from {
                            conn.set_peer(from);
                            if !self.moved.contains(&id) {
                                self.moved.push(id);
                            }
                        }
                        self.collect(id);
                    }
                    None => {
                        self.counters.unknown_connection += 1;
                        // Tell the sender, at most every 250 ms across all strays (GNS's global
                        // spam limiter), and only for a datagram as long as the smallest real
                        // data packet (header and tag, 23 bytes): the 11-byte reply then
                        // amplifies nothing. A shorter one cannot be a data packet at all.
                        let quiet = self
                            .last_spam_reply
                            .is_none_or(|t| now.saturating_since(t) >= NO_CONNECTION_SPAM_INTERVAL);
                        if quiet && data.len() >= DATA_HEADER_LEN + AEAD_TAG_LEN {
                            self.last_spam_reply = Some(now);
                            let reply = NoConnection {
                                from_connection_id: Some(id),
                                to_connection_id: None,
                            };
                            self.reply(local, from, reply.into());
                        }
                    }
                }
            }
            Ok(PacketKind::Control(_)) => match decode_control(data) {
                Ok(msg) => self.on_control(now, local, from, msg),
                Err(_) => self.counters.bad_control += 1,
            },
            Err(_) => self.counters.malformed += 1,
        }
    }

    fn route(&mut self, now: Timestamp, id: u32, msg: &ControlMessage) -> bool {
        match self.connections.get_mut(&id) {
            Some(s) => {
                let unix_now = unix_time(self.wall_clock, now);
                s.conn
                    .handle_control(now, msg, &self.identity, &self.trust, unix_now);
                self.collect(id);
                true
            }
            None => false,
        }
    }

    fn on_control(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        msg: ControlMessage,
    ) {
        match &msg {
            ControlMessage::ChallengeRequest(req) => {
                let Some(client) = req.connection_id.filter(|id| *id != 0) else {
                    self.counters.bad_control += 1;
                    return;
                };
                if let Some(id) = self.by_request.get(&self.connections, &(from, client)) {
                    self.route(now, id, &msg);
                } else if self.listeners.contains_key(&local) {
                    let reply = ChallengeReply {
                        connection_id: Some(client),
                        challenge: Some(self.challenge.issue(now, from)),
                        your_timestamp: req.my_timestamp,
                        protocol_version: Some(PROTOCOL_VERSION),
                    };
                    self.reply(local, from, reply.into());
                } else {
                    self.counters.not_listening += 1;
                }
            }
            ControlMessage::ConnectRequest(req) => {
                let client = req.client_connection_id.unwrap_or(0);
                if let Some(id) = self.by_request.get(&self.connections, &(from, client)) {
                    self.route(now, id, &msg);
                } else if !self.listeners.contains_key(&local) {
                    self.counters.not_listening += 1;
                } else if !req
                    .challenge
                    .is_some_and(|c| self.challenge.check(now, from, c))
                {
                    self.counters.bad_challenge += 1;
                } else {
                    self.new_incoming(now, local, from, req);
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
                            .and_then(|f| self.by_request.get(&self.connections, &(from, f)))
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
                        self.reply(local, from, reply.into());
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
        local: LocalSocket,
        from: SocketAddr,
        req: &crate::wire::proto::ConnectRequest,
    ) {
        let Some(listener) = self.listeners.get(&local).cloned() else {
            return;
        };
        let config = listener.connection;
        let auth = PeerAuth {
            policy: &config.auth,
            trust: &self.trust,
            unix_now: unix_time(self.wall_clock, now),
        };
        match check_connect_request(now, req, from, auth) {
            Ok(pending) => {
                let admitted = match &listener.admission {
                    None => None,
                    Some(a) => match a.admit(from.ip()) {
                        Ok(()) => Some(Admitted {
                            admission: a.clone(),
                            pending: true,
                        }),
                        Err(why) => {
                            self.counters.refused += 1;
                            self.counters.refused_limit += 1;
                            self.refuse(
                                local,
                                from,
                                req,
                                end_reason::MISC_GENERIC,
                                why.to_string(),
                            );
                            return;
                        }
                    },
                };
                let rng = &mut self.rng;
                let Ok(id) = self.ids.allocate(|| rng.next_u32()) else {
                    self.counters.refused += 1;
                    if let Some(a) = admitted {
                        a.admission.released(from.ip(), true);
                    }
                    self.refuse(
                        local,
                        from,
                        req,
                        end_reason::MISC_GENERIC,
                        "Too many connections".to_owned(),
                    );
                    return;
                };
                let key = (from, pending.remote_id);
                self.by_request.insert(&self.connections, &key, id);
                let config = self.configs.share(&config);
                let conn = Connection::incoming(now, id, from, config, pending);
                let mut slot = Slot::new(conn, local);
                slot.meta.request_key = Some(key);
                slot.meta.accepted_by = Some(listener.handle);
                slot.admitted = admitted;
                self.connections.insert(id, slot);
                self.collect(id);
            }
            Err(e) => {
                self.counters.refused += 1;
                self.refuse(local, from, req, e.end_reason(), e.to_string());
            }
        }
    }

    /// Refuses a ConnectRequest with a ConnectionClosed (a plain reply, smaller than the
    /// request it answers).
    fn refuse(
        &mut self,
        local: LocalSocket,
        from: SocketAddr,
        req: &crate::wire::proto::ConnectRequest,
        reason: u32,
        debug: String,
    ) {
        let closed = ConnectionClosed {
            debug: Some(debug),
            reason_code: Some(reason),
            to_connection_id: req.client_connection_id,
            from_connection_id: None,
        };
        self.reply(local, from, closed.into());
    }

    fn reply(&mut self, local: LocalSocket, to: SocketAddr, msg: ControlMessage) {
        let mut out = Vec::new();
        if msg.encode(&mut out).is_ok() {
            self.replies.push_back((local, to, out));
        }
    }
}
