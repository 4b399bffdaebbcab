//! A TURN client (the RFC 5766 subset GNS uses): Allocate, a single 401 retry with long-term
//! credentials, Refresh at half the lifetime, CreatePermission (at most 10 peers per request),
//! Send and Data indications. No channels.
//!
//! ```text
//!  Allocating --401--> Allocating(authed) --success--> Allocated --(lifetime/2)--> Refresh
//!       \--timeout or error--> Failed
//! ```
//! GNS: steamnetworkingsockets_ice_client.cpp, `CSteamNetworkingICESession` TURN parts.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use md5::{Digest, Md5};
use rand_chacha::ChaCha8Rng;

use super::candidate::classify_host;
use super::retransmit::{Retransmit, Step, new_txid};
use super::stun::{StunMessage, StunWriter, attr, msg};
use crate::datagram::LocalSocket;
use crate::time::Timestamp;

/// UDP in REQUESTED-TRANSPORT.
const TRANSPORT_UDP: [u8; 4] = [17, 0, 0, 0];
/// Peers per CreatePermission request (GNS's limit).
const MAX_PEERS_PER_PERMISSION: usize = 10;
/// Permissions last 300 s on the server; renew before.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Lifetime assumed when the server omits LIFETIME.
const DEFAULT_LIFETIME_S: u32 = 600;

/// Allocation progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TurnState {
    /// Waiting for the Allocate answer.
    Allocating,
    /// Holding a relayed address.
    Allocated(SocketAddr),
    /// Gave up (timeout, error, or a second 401).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TxnKind {
    Allocate,
    Refresh,
    Permission(Vec<IpAddr>),
}

#[derive(Debug, Clone)]
struct Txn {
    txid: [u8; 12],
    bytes: Vec<u8>,
    rt: Retransmit,
    kind: TxnKind,
}

/// What an answer from the server changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TurnOutcome {
    /// The transaction id is not ours.
    NotMine,
    /// Ours, nothing for the agent to do.
    Handled,
    /// The allocation succeeded: the relayed address.
    Allocated(SocketAddr),
    /// The allocation failed.
    Failed,
}

/// One allocation on one TURN server, reached from one local socket.
#[derive(Debug)]
pub(super) struct TurnClient {
    /// The local socket that talks to the server.
    pub(super) socket: LocalSocket,
    /// The server.
    pub(super) server: SocketAddr,
    user: String,
    pass: String,
    pub(super) state: TurnState,
    realm: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
    key: Option<[u8; 16]>,
    challenged: bool,
    txns: Vec<Txn>,
    refresh_at: Option<Timestamp>,
    permissions: Vec<IpAddr>,
    permission_refresh_at: Option<Timestamp>,
}

impl TurnClient {
    /// Starts allocating at `now`.
    pub(super) fn new(
        now: Timestamp,
        socket: LocalSocket,
        server: SocketAddr,
        user: String,
        pass: String,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut c = TurnClient {
            socket,
            server,
            user,
            pass,
            state: TurnState::Allocating,
            realm: None,
            nonce: None,
            key: None,
            challenged: false,
            txns: Vec::new(),
            refresh_at: None,
            permissions: Vec::new(),
            permission_refresh_at: None,
        };
        c.start(now, TxnKind::Allocate, rng);
        c
    }

    /// The relayed address, once allocated.
    pub(super) fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            TurnState::Allocated(a) => Some(a),
            _ => None,
        }
    }

    fn start(&mut self, now: Timestamp, kind: TxnKind, rng: &mut ChaCha8Rng) {
        let txid = new_txid(rng);
        let mut w = StunWriter::new(
            match kind {
                TxnKind::Allocate => msg::ALLOCATE_REQUEST,
                TxnKind::Refresh => msg::REFRESH_REQUEST,
                TxnKind::Permission(_) => msg::CREATE_PERMISSION_REQUEST,
            },
            txid,
        );
        match &kind {
            TxnKind::Allocate => {
                w.attr(attr::REQUESTED_TRANSPORT, &TRANSPORT_UDP);
            }
            TxnKind::Refresh => {}
            TxnKind::Permission(peers) => {
                for ip in peers {
                    w.xor_addr(attr::XOR_PEER_ADDRESS, SocketAddr::new(*ip, 0));
                }
            }
        }
        if let (Some(realm), Some(nonce), Some(key)) = (&self.realm, &self.nonce, &self.key) {
            w.attr(attr::USERNAME, self.user.as_bytes())
                .attr(attr::REALM, realm)
                .attr(attr::NONCE, nonce)
                .integrity(key);
        }
        self.txns.push(Txn {
            txid,
            bytes: w.finish_with_fingerprint(),
            rt: Retransmit::new(now),
            kind,
        });
    }

    /// Asks the server to let `ip` reach the relayed address (batched by [`Self::drive`]).
    pub(super) fn add_permission(&mut self, ip: IpAddr) {
        if !self.permissions.contains(&ip) {
            self.permissions.push(ip);
            // Sent on the next drive once allocated.
            if self.permission_refresh_at.is_some() {
                self.permission_refresh_at = Some(Timestamp::ZERO);
            }
        }
    }

    fn request_permissions(&mut self, now: Timestamp, rng: &mut ChaCha8Rng) {
        let all = self.permissions.clone();
        for chunk in all.chunks(MAX_PEERS_PER_PERMISSION) {
            self.start(now, TxnKind::Permission(chunk.to_vec()), rng);
        }
        self.permission_refresh_at = Some(now + PERMISSION_REFRESH);
    }

    /// Sends what is due into `out` as (server, bytes).
    pub(super) fn drive(
        &mut self,
        now: Timestamp,
        rng: &mut ChaCha8Rng,
        out: &mut VecDeque<(LocalSocket, SocketAddr, Vec<u8>)>,
    ) -> Option<TurnOutcome> {
        if let TurnState::Allocated(_) = self.state {
            if self.refresh_at.is_some_and(|t| now >= t) {
                self.refresh_at = None;
                self.start(now, TxnKind::Refresh, rng);
            }
            if self.permission_refresh_at.is_some_and(|t| now >= t) && !self.permissions.is_empty()
            {
                self.request_permissions(now, rng);
            }
        }
        let mut outcome = None;
        let mut i = 0;
        while i < self.txns.len() {
            match self.txns[i].rt.poll(now) {
                Step::Send => {
                    out.push_back((self.socket, self.server, self.txns[i].bytes.clone()));
                }
                Step::Wait(_) => i += 1,
                Step::Failed => {
                    let t = self.txns.remove(i);
                    if t.kind == TxnKind::Allocate || t.kind == TxnKind::Refresh {
                        self.state = TurnState::Failed;
                        outcome = Some(TurnOutcome::Failed);
                    }
                }
            }
        }
        outcome
    }

    /// The next time [`Self::drive`] has work.
    pub(super) fn poll_timeout(&self) -> Option<Timestamp> {
        let t = self.txns.iter().map(|t| t.rt.deadline()).min();
        [t, self.refresh_at, self.permission_refresh_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles a response from the server.
    pub(super) fn handle_response(
        &mut self,
        now: Timestamp,
        m: &StunMessage<'_>,
        rng: &mut ChaCha8Rng,
    ) -> TurnOutcome {
        let Some(i) = self.txns.iter().position(|t| t.txid == m.txid) else {
            return TurnOutcome::NotMine;
        };
        if let Some(key) = &self.key {
            if m.verify_integrity(key).is_err() {
                return TurnOutcome::Handled; // forged or corrupt: keep waiting
            }
        }
        let txn = self.txns.remove(i);
        let success = m.msg_type & msg::CLASS_MASK == msg::CLASS_SUCCESS;
        if !success {
            let code = m.error_code().unwrap_or(0);
            let stale = code == 438 && self.key.is_some();
            if (code == 401 && !self.challenged) || stale {
                self.challenged = true;
                if let (Some(realm), Some(nonce)) = (m.get(attr::REALM), m.get(attr::NONCE)) {
                    self.realm = Some(realm.to_vec());
                    self.nonce = Some(nonce.to_vec());
                    let mut h = Md5::new();
                    h.update(self.user.as_bytes());
                    h.update(b":");
                    h.update(realm);
                    h.update(b":");
                    h.update(self.pass.as_bytes());
                    let mut key = [0u8; 16];
                    key.copy_from_slice(&h.finalize());
                    self.key = Some(key);
                    self.start(now, txn.kind, rng);
                    return TurnOutcome::Handled;
                }
            }
            if txn.kind == TxnKind::Allocate {
                self.state = TurnState::Failed;
                return TurnOutcome::Failed;
            }
            return TurnOutcome::Handled;
        }
        match txn.kind {
            TxnKind::Allocate => {
                // A relayed address no peer could use (0.0.0.0, loopback, broadcast) fails the
                // allocation: its candidate line would be refused by every parser.
                let Some(relayed) = m
                    .xor_addr(attr::XOR_RELAYED_ADDRESS)
                    .filter(|a| classify_host(a.ip()).is_some())
                else {
                    self.state = TurnState::Failed;
                    return TurnOutcome::Failed;
                };
                self.state = TurnState::Allocated(relayed);
                self.schedule_refresh(now, m);
                if !self.permissions.is_empty() {
                    self.request_permissions(now, rng);
                } else {
                    self.permission_refresh_at = Some(now + PERMISSION_REFRESH);
                }
                TurnOutcome::Allocated(relayed)
            }
            TxnKind::Refresh => {
                self.schedule_refresh(now, m);
                TurnOutcome::Handled
            }
            TxnKind::Permission(_) => TurnOutcome::Handled,
        }
    }

    fn schedule_refresh(&mut self, now: Timestamp, m: &StunMessage<'_>) {
        let life = m.u32_attr(attr::LIFETIME).unwrap_or(DEFAULT_LIFETIME_S);
        self.refresh_at = Some(now + Duration::from_secs(u64::from(life / 2).max(1)));
    }

    /// Whether `txid` belongs to one of this client's transactions.
    pub(super) fn owns(&self, txid: &[u8; 12]) -> bool {
        self.txns.iter().any(|t| &t.txid == txid)
    }
}

/// Wraps `payload` for `peer` in a Send indication (transaction id all zero, as GNS does).
pub(super) fn send_indication(peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut w = StunWriter::new(msg::SEND_INDICATION, [0; 12]);
    w.xor_addr(attr::XOR_PEER_ADDRESS, peer)
        .attr(attr::DATA, payload);
    w.finish()
}

/// The peer and payload of a Data indication.
pub(super) fn data_indication<'a>(m: &StunMessage<'a>) -> Option<(SocketAddr, &'a [u8])> {
    if m.msg_type != msg::DATA_INDICATION {
        return None;
    }
    Some((m.xor_addr(attr::XOR_PEER_ADDRESS)?, m.get(attr::DATA)?))
}
