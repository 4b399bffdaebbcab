//! Server-reflexive discovery, GNS's way: per interface a Binding request to the first STUN
//! server of the same family (no MESSAGE-INTEGRITY, our own address in MAPPED-ADDRESS, then in
//! XOR-MAPPED-ADDRESS on later tries), the next server on timeout, a srflx candidate unless the
//! mapping equals the local address, and a keepalive every 15 s to the server that answered.
//! GNS: steamnetworkingsockets_ice_client.cpp, `Think_DiscoverServerReflexiveCandidates`,
//! `Think_KeepAliveOnCandidates`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::agent::{IceAgent, LocalInterface};
use super::candidate::{CandidateKind, CandidateTypes, classify_host};
use super::retransmit::{Retransmit, Step, new_txid};
use super::stun::{StunError, StunMessage, encode_discovery_request};
use crate::datagram::LocalSocket;
use crate::time::Timestamp;

/// Keepalive period towards the STUN server that produced the srflx address.
const KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Txn {
    txid: [u8; 12],
    bytes: Vec<u8>,
    rt: Retransmit,
    server: SocketAddr,
}

/// Discovery state of one interface.
#[derive(Debug)]
pub(super) struct Discovery {
    socket: LocalSocket,
    addr: SocketAddr,
    local_pref: u16,
    servers: Vec<SocketAddr>,
    next_server: usize,
    txn: Option<Txn>,
    /// The server that answered and the mapping it reported.
    found: Option<(SocketAddr, SocketAddr)>,
    next_keepalive: Option<Timestamp>,
}

impl Discovery {
    /// Starts with a request to `servers[0]` due at `now`.
    pub(super) fn new(
        now: Timestamp,
        iface: &LocalInterface,
        local_pref: u16,
        servers: Vec<SocketAddr>,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut d = Discovery {
            socket: iface.socket,
            addr: iface.addr,
            local_pref,
            servers,
            next_server: 0,
            txn: None,
            found: None,
            next_keepalive: None,
        };
        d.try_next_server(now, rng);
        d
    }

    fn start(&mut self, now: Timestamp, server: SocketAddr, rng: &mut ChaCha8Rng) {
        let txid = new_txid(rng);
        self.txn = Some(Txn {
            txid,
            bytes: encode_discovery_request(txid),
            rt: Retransmit::new(now),
            server,
        });
    }

    fn try_next_server(&mut self, now: Timestamp, rng: &mut ChaCha8Rng) {
        if let Some(&s) = self.servers.get(self.next_server) {
            self.next_server += 1;
            self.start(now, s, rng);
        }
    }

    /// Sends what is due into `out`.
    pub(super) fn drive(
        &mut self,
        now: Timestamp,
        rng: &mut ChaCha8Rng,
        out: &mut VecDeque<(LocalSocket, SocketAddr, Vec<u8>)>,
    ) {
        if let (Some(t), Some((server, _))) = (self.next_keepalive, self.found) {
            if now >= t {
                self.next_keepalive = Some(now + KEEPALIVE);
                self.start(now, server, rng);
            }
        }
        loop {
            let Some(txn) = &mut self.txn else { return };
            match txn.rt.poll(now) {
                Step::Send => out.push_back((self.socket, txn.server, txn.bytes.clone())),
                Step::Wait(_) => return,
                Step::Failed => {
                    self.txn = None;
                    if self.found.is_none() {
                        self.try_next_server(now, rng);
                    }
                }
            }
        }
    }

    /// When [`Self::drive`] next has work.
    pub(super) fn poll_timeout(&self) -> Option<Timestamp> {
        let t = self.txn.as_ref().map(|t| t.rt.deadline());
        match (t, self.next_keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a response on `socket` with `txid` answers our request.
    pub(super) fn owns(&self, socket: LocalSocket, txid: &[u8; 12]) -> bool {
        self.socket == socket && self.has_txid(txid)
    }

    /// Whether `txid` is our request's.
    pub(super) fn has_txid(&self, txid: &[u8; 12]) -> bool {
        self.txn.as_ref().is_some_and(|t| &t.txid == txid)
    }
}

impl IceAgent {
    /// A STUN server answered discovery `d`.
    pub(super) fn handle_discovery_response(
        &mut self,
        d: usize,
        m: &StunMessage<'_>,
    ) -> Result<(), StunError> {
        let disc = &mut self.discoveries[d];
        let Some(txn) = disc.txn.take() else {
            return Err(StunError::Unexpected);
        };
        // No address in the answer, or one no peer could use (0.0.0.0, loopback, broadcast:
        // the candidate line would be refused by every parser, ours included): treat like a
        // timeout of this server.
        let Some(mapped) = m
            .mapped_address()
            .filter(|a| classify_host(a.ip()).is_some())
        else {
            return Ok(());
        };
        if disc.found.is_some() {
            // Keepalive answer; GNS only logs a changed mapping.
            return Ok(());
        }
        disc.found = Some((txn.server, mapped));
        let (addr, pref) = (disc.addr, disc.local_pref);
        // The keepalive clock starts from the answer.
        disc.next_keepalive = Some(txn.rt.last_send + KEEPALIVE);
        if mapped != addr
            && self
                .allowed
                .allows(CandidateTypes::bit_for(CandidateKind::Srflx, mapped.ip()))
        {
            self.advertise(mapped, Some(txn.server), CandidateKind::Srflx, pref);
        }
        Ok(())
    }
}
