//! Client connections through one of our relays (`sockworks-relay`, issue 15): the endpoint
//! opens a relay session with the client's signed ticket (Hello → Welcome), then the
//! connection's own handshake and data run end to end inside the relay's Data frames. The
//! relay forwards to the hosted server from a socket of its own, so neither side learns the
//! other's address.
//!
//! ```text
//!  connect_via_relay ─► Hello{nonce, ticket} every 500 ms ─► Welcome{session, token}
//!     connection datagrams ─► Data{session, token, packet} ─► relay ─► server
//!     relay ─► Data{session, token, packet} ─► dispatch(packet, from: relay)
//!  Refused ─► the connection ends (ProblemDetectedLocally, Misc_Generic, the reason)
//! ```
//!
//! Until the session is open the connection's datagrams are dropped (its ChallengeRequest is
//! sent again as soon as the Welcome arrives).

use std::net::SocketAddr;
use std::time::Duration;

use rand_core::Rng;
use rustc_hash::FxHashMap as HashMap;

use super::{Endpoint, LocalSocket};
use crate::proto::connection::ConnectionConfig;
use crate::proto::end_reason;
use crate::proto::ids::ConnectionId;
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::relay::{self, Message};

/// Hello retry interval (the connection's own handshake retries at the same pace).
const HELLO_RETRY: Duration = Duration::from_millis(500);

/// One connection's relay session.
#[derive(Debug)]
struct Link {
    /// The relays it may use, best first; `relay` is the one in use.
    relays: Vec<SocketAddr>,
    relay: SocketAddr,
    local: LocalSocket,
    nonce: u64,
    ticket: Vec<u8>,
    /// (session id, token) once the relay welcomed us.
    open: Option<(u32, u64)>,
    next_hello: Timestamp,
}

/// The endpoint's relay sessions (boxed: most endpoints never use one).
#[derive(Debug, Default)]
pub(super) struct RelayLinks {
    by_conn: HashMap<u32, Link>,
    by_session: HashMap<(SocketAddr, u32), u32>,
    /// Relay datagrams dropped: unknown session, bad token, malformed.
    pub(super) dropped: u64,
}

impl Endpoint {
    /// `ConnectToHostedDedicatedServer` on a reserved id: the connection runs through the first
    /// of `relays` (sending by local socket `local`) once it accepts `ticket`, and moves to the
    /// next when replies stop coming; the hosted server must prove `expected` (its identity)
    /// with its certificate.
    pub fn connect_via_relay(
        &mut self,
        now: Timestamp,
        id: ConnectionId,
        (local, relays): (LocalSocket, Vec<SocketAddr>),
        ticket: Vec<u8>,
        config: Option<ConnectionConfig>,
        expected: Option<Identity>,
    ) {
        let Some(&relay) = relays.first() else {
            return;
        };
        let nonce = self.rng.next_u64();
        let links = self.relay.get_or_insert_with(Box::default);
        links.by_conn.insert(
            id.get(),
            Link {
                relays,
                relay,
                local,
                nonce,
                ticket,
                open: None,
                next_hello: now,
            },
        );
        self.connect_with_id_expecting(
            now,
            id,
            super::Transmit { local, to: relay },
            config,
            expected,
        );
        self.relay_hello(now, id.get());
    }

    /// Sends (or re-sends) a connection's Hello while its session is not open.
    fn relay_hello(&mut self, now: Timestamp, id: u32) {
        let Some(link) = self.relay.as_mut().and_then(|r| r.by_conn.get_mut(&id)) else {
            return;
        };
        if link.open.is_some() || link.next_hello > now {
            return;
        }
        link.next_hello = now + HELLO_RETRY;
        let hello = Message::Hello {
            nonce: link.nonce,
            ticket: &link.ticket,
        }
        .to_vec();
        let (local, to) = (link.local, link.relay);
        self.replies.push_back((local, to, hello));
    }

    /// When a connection's relay session next needs [`Endpoint::relay_timeout`].
    pub(super) fn relay_deadline(&self, id: u32) -> Option<Timestamp> {
        let link = self.relay.as_ref()?.by_conn.get(&id)?;
        link.open.is_none().then_some(link.next_hello)
    }

    /// A connection's relay timer: the Hello retry.
    pub(super) fn relay_timeout(&mut self, now: Timestamp, id: u32) {
        self.relay_hello(now, id);
    }

    /// Failover: a connection whose replies stopped coming (a reply deadline passed) while its
    /// relay session was open moves to the next relay with the same ticket. The server follows
    /// the connection to the new relay's address once a packet from there authenticates, and
    /// reliable data still unacked is sent again, so nothing is lost.
    pub(super) fn relay_check(&mut self, now: Timestamp, id: u32) {
        let overdue = self
            .connections
            .get(&id)
            .is_some_and(|s| s.conn.reply_overdue());
        let Some(links) = self.relay.as_mut() else {
            return;
        };
        let Some(link) = links.by_conn.get_mut(&id) else {
            return;
        };
        let Some((session, _)) = link.open else {
            return;
        };
        if !overdue || link.relays.len() < 2 {
            return;
        }
        let at = link
            .relays
            .iter()
            .position(|r| *r == link.relay)
            .unwrap_or(0);
        let next = link.relays[(at + 1) % link.relays.len()];
        links.by_session.remove(&(link.relay, session));
        link.relay = next;
        link.open = None;
        link.nonce = self.rng.next_u64();
        link.next_hello = now;
        self.relays_moved += 1;
        self.relay_hello(now, id);
    }

    /// Whether `data` from `from` is a relay datagram (our relays' magic) for us.
    pub(super) fn is_relay_datagram(&self, from: SocketAddr, data: &[u8]) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|r| r.by_conn.values().any(|l| l.relays.contains(&from)))
            && data.starts_with(&relay::MAGIC)
    }

    /// A datagram from one of our relays: a session answer, or a GNS packet to dispatch.
    pub(super) fn relay_datagram(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        data: &[u8],
    ) {
        let Some(links) = self.relay.as_mut() else {
            return;
        };
        if let Some((session, token, payload)) = relay::decode_data(data) {
            let ok = links
                .by_session
                .get(&(from, session))
                .and_then(|id| links.by_conn.get(id))
                .is_some_and(|l| l.open == Some((session, token)));
            if !ok {
                links.dropped += 1;
                return;
            }
            let mut packet = payload.to_vec();
            self.dispatch(now, local, from, &mut packet);
            return;
        }
        match Message::decode(data) {
            Ok(Message::Welcome {
                nonce,
                session,
                token,
                ..
            }) => {
                let Some((&id, link)) = links
                    .by_conn
                    .iter_mut()
                    .find(|(_, l)| l.relay == from && l.nonce == nonce && l.open.is_none())
                else {
                    links.dropped += 1;
                    return;
                };
                link.open = Some((session, token));
                links.by_session.insert((from, session), id);
                // The handshake starts now, not at its next retry; a connection that moved
                // here pings at once, so the server learns the new path.
                if let Some(s) = self.connections.get_mut(&id) {
                    s.conn.retry_handshake_now(now);
                    s.conn.ping_now();
                }
                self.collect(id);
            }
            Ok(Message::Refused { nonce, reason }) => {
                let Some(&id) = links
                    .by_conn
                    .iter()
                    .find(|(_, l)| l.relay == from && l.nonce == nonce && l.open.is_none())
                    .map(|(id, _)| id)
                else {
                    links.dropped += 1;
                    return;
                };
                if let Some(s) = self.connections.get_mut(&id) {
                    let debug = format!("Relay refused the ticket: {reason:?}");
                    s.conn.p2p_problem(now, end_reason::MISC_GENERIC, &debug);
                }
                self.collect(id);
            }
            // Pongs and anything else a client does not act on.
            _ => links.dropped += 1,
        }
    }

    /// Wraps a relayed connection's datagram (in `out[start..]`) in a Data frame; `None` when
    /// the connection is not relayed. A relayed connection whose session is not open yet has
    /// its datagram dropped (`Some(None)`).
    pub(super) fn relay_wrap(
        &mut self,
        id: u32,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Option<Option<(LocalSocket, SocketAddr)>> {
        let link = self.relay.as_ref()?.by_conn.get(&id)?;
        let Some((session, token)) = link.open else {
            out.truncate(start);
            return Some(None);
        };
        let packet = out.split_off(start);
        relay::encode_data(session, token, &packet, out);
        Some(Some((link.local, link.relay)))
    }

    /// Forgets a connection's relay session.
    pub(super) fn relay_forget(&mut self, id: u32) {
        if let Some(links) = self.relay.as_mut()
            && let Some(link) = links.by_conn.remove(&id)
            && let Some((session, _)) = link.open
        {
            links.by_session.remove(&(link.relay, session));
        }
    }
}
