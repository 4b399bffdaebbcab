//! The P2P sessions' moving parts: pumping each session (ICE output, route selection, state
//! signals), its timers, STUN datagrams in, and STUN and TURN-wrapped datagrams out.

use std::net::SocketAddr;

use super::{Endpoint, LocalSocket, candidate_message, encode};
use crate::proto::connection::{Route, State};
use crate::proto::ice::agent::IceEvent;
use crate::proto::ice::candidate::same_prefix;
use crate::proto::ice::cred::ufrag_from_connection_id;
use crate::proto::ice::{transaction_id, username_local_ufrag};
use crate::proto::ids::ConnectionId;
use crate::time::Timestamp;

impl Endpoint {
    /// Moves a session's output along: ICE candidates into signals, ICE datagrams out, a
    /// selected route into the connection, the connection's fate into signals, then every
    /// signal that is due.
    pub(in crate::proto::endpoint) fn p2p_pump(&mut self, now: Timestamp, id: u32) {
        let Endpoint {
            p2p, connections, ..
        } = self;
        let Some(p) = p2p.as_mut() else {
            return;
        };
        let Some(s) = p.sessions.get_mut(&id) else {
            return;
        };
        let Some(slot) = connections.get_mut(&id) else {
            return;
        };
        let mut route = None;
        if let Some(ice) = s.ice.as_mut() {
            while let Some(line) = ice.poll_local_candidate() {
                s.candidates.push(line.clone());
                s.signaling.queue_ice(now, candidate_message(line));
            }
            while let Some(t) = ice.poll_transmit(now) {
                p.stun_out.push_back(t);
            }
            while let Some(ev) = ice.poll_event() {
                // `Failed` needs nothing: GNS never retries ICE on a connection, which then
                // times out in FindingRoute.
                if let IceEvent::Selected {
                    local,
                    remote,
                    relayed,
                    rtt_ms,
                } = ev
                {
                    route = Some((local, remote, relayed, rtt_ms));
                }
            }
        }
        if let Some((local, remote, relayed, rtt_ms)) = route {
            slot.meta.local = local;
            s.relayed = relayed;
            let lan = p
                .interfaces
                .iter()
                .any(|i| i.socket == local && same_prefix(i.addr.ip(), remote.ip(), i.prefix_len));
            let kind = match (relayed, lan) {
                (true, _) => Route::Relayed,
                (false, true) => Route::Lan,
                (false, false) => Route::Direct,
            };
            slot.conn.set_route(now, remote, kind);
            slot.conn
                .record_route_ping(now, std::time::Duration::from_millis(u64::from(rtt_ms)));
        }
        let conn = &slot.conn;
        if conn.failed_before_connected() && !s.close_signaled {
            s.close_signaled = true;
            let info = conn.info();
            let signal = s.signaling.close_signal(info.end_reason, &info.end_debug);
            p.signals
                .push_back((ConnectionId::new(id), encode(&signal)));
        } else if matches!(
            conn.state(),
            State::FinWait | State::Linger | State::Dead | State::ProblemDetectedLocally
        ) && !s.signaling.is_closed()
        {
            let info = conn.info();
            s.signaling.close(info.end_reason, &info.end_debug);
        }
        while let Some(signal) = s.signaling.poll_signal(now) {
            p.signals
                .push_back((ConnectionId::new(id), encode(&signal)));
        }
        if s.ufrag_indexed.is_none() && s.ice.is_some() {
            let ufrag = ufrag_from_connection_id(id);
            p.by_ufrag.insert(ufrag.clone(), id);
            s.ufrag_indexed = Some(ufrag);
        }
    }

    /// When a session next needs [`Endpoint::p2p_timeout`] (joins its connection's deadline).
    pub(in crate::proto::endpoint) fn p2p_deadline(&self, id: u32) -> Option<Timestamp> {
        let s = self.p2p.as_ref()?.sessions.get(&id)?;
        let ice = s.ice.as_ref().and_then(|i| i.poll_timeout());
        [s.signaling.poll_timeout(), ice]
            .into_iter()
            .flatten()
            .min()
    }

    /// A session's timers: ICE checks and retransmits, signal retries and spacing.
    pub(in crate::proto::endpoint) fn p2p_timeout(&mut self, now: Timestamp, id: u32) {
        let Some(s) = self.p2p.as_mut().and_then(|p| p.sessions.get_mut(&id)) else {
            return;
        };
        if let Some(ice) = s.ice.as_mut()
            && ice.poll_timeout().is_some_and(|t| t <= now)
        {
            ice.handle_timeout(now);
        }
        self.p2p_pump(now, id);
    }

    /// A STUN datagram on one of our sockets: to the agent whose ufrag its USERNAME names
    /// (requests), or whose transaction it answers (responses); a TURN Data indication is
    /// unwrapped and its GNS packet dispatched as if it came from the peer.
    pub(in crate::proto::endpoint) fn p2p_stun(
        &mut self,
        now: Timestamp,
        local: LocalSocket,
        from: SocketAddr,
        data: &mut [u8],
    ) {
        let Some(p) = self.p2p.as_mut() else {
            self.counters.malformed += 1;
            return;
        };
        let mut owner = username_local_ufrag(data).and_then(|u| {
            std::str::from_utf8(&u)
                .ok()
                .and_then(|u| p.by_ufrag.get(u))
                .copied()
        });
        if owner.is_none()
            && let Some(txid) = transaction_id(data)
        {
            owner = p
                .sessions
                .iter()
                .find(|(_, s)| s.ice.as_ref().is_some_and(|i| i.has_transaction(&txid)))
                .map(|(&id, _)| id);
        }
        if owner.is_none() {
            // A TURN Data indication (its transaction id is not ours): a GNS packet for one of
            // our relayed sessions, or a connectivity check for the agent of that TURN server.
            let inner = p.sessions.values().find_map(|s| {
                s.ice
                    .as_ref()
                    .and_then(|i| i.decapsulate(local, from, data))
                    .map(|(peer, d)| (peer, d.to_vec()))
            });
            if let Some((peer, mut inner)) = inner {
                self.dispatch(now, local, peer, &mut inner);
                return;
            }
            owner = p
                .sessions
                .iter()
                .find(|(_, s)| {
                    s.ice
                        .as_ref()
                        .is_some_and(|i| i.is_turn_server(local, from))
                })
                .map(|(&id, _)| id);
        }
        let Some(id) = owner else {
            p.counters.stun_dropped += 1;
            return;
        };
        let Some(s) = p.sessions.get_mut(&id) else {
            return;
        };
        let Some(ice) = s.ice.as_mut() else {
            p.counters.stun_dropped += 1;
            return;
        };
        if ice.handle_stun(now, local, from, data).is_err() {
            p.counters.stun_dropped += 1;
        }
        self.p2p_pump(now, id);
        self.collect(id);
    }

    /// The next ICE datagram (checks, responses, STUN/TURN server traffic).
    pub(in crate::proto::endpoint) fn p2p_next_stun(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Option<(LocalSocket, SocketAddr)> {
        let (local, to, data) = self.p2p.as_mut()?.stun_out.pop_front()?;
        out.extend_from_slice(&data);
        Some((local, to))
    }

    /// Wraps a relayed P2P connection's datagram (already in `out[start..]`) for TURN; returns
    /// where the wrapped datagram goes, or `None` when the route is direct.
    pub(in crate::proto::endpoint) fn p2p_wrap(
        &mut self,
        id: u32,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Option<(LocalSocket, SocketAddr)> {
        let s = self.p2p.as_ref()?.sessions.get(&id)?;
        if !s.relayed {
            return None;
        }
        let ice = s.ice.as_ref()?;
        // The agent writes a whole datagram into its own buffer: `out` holds the batch.
        let mut wrapped = Vec::new();
        let dest = ice.encapsulate(&out[start..], &mut wrapped)?;
        out.truncate(start);
        out.extend_from_slice(&wrapped);
        Some(dest)
    }

    /// Forgets a connection's P2P session.
    pub(in crate::proto::endpoint) fn p2p_forget(&mut self, id: u32) {
        let Some(p) = self.p2p.as_mut() else {
            return;
        };
        if let Some(s) = p.sessions.remove(&id) {
            if let Some(key) = s.remote_key {
                p.by_remote.remove(&key);
            }
            if let Some(u) = s.ufrag_indexed {
                p.by_ufrag.remove(&u);
            }
        }
    }
}
