//! The stateless half of receiving a signal (spec §3.4 steps 1-3): parse it, check the
//! sender's identity, and decide which connection it is for. Also the small rules around
//! new connections: virtual ports, symmetric connect, and the rejection signal.
//!
//! ```text
//!  parse_signal(bytes) ── from_identity present, parses, not `invalid`
//!     └─ route_signal
//!          to_connection_id? ───────────────► ToConnection(local id)   (unknown id: ignore)
//!          (from_identity, from_conn_id) known? ► Known(identity, remote id)
//!          connect_request with cert+crypt? ─► NewRequest { .., local_vport, remote_vport }
//!          otherwise ───────────────────────► Bad(reason)
//! ```
//!
//! GNS: `csteamnetworkingsockets.cpp`, `InternalReceivedP2PSignal`;
//! `steamnetworkingsockets_p2p.cpp`, `CompareSymmetricConnections`.

use std::cmp::Ordering;

use prost::Message;

use crate::wire::identity::Identity;
use crate::wire::proto::{CertificateSigned, CryptInfoSigned};
use crate::wire::rendezvous::{P2pConnectRequest, P2pConnectionClosed, P2pRendezvous};

use super::SignalError;

/// Where a parsed signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalRoute {
    /// To our connection with this local id; if there is none, ignore the signal (no reply,
    /// so a sender cannot probe who is online) and report success.
    ToConnection(u32),
    /// A later signal (or a retried request) of the known connection with this peer identity
    /// and remote connection id.
    Known(Identity, u32),
    /// A new incoming connection.
    NewRequest {
        /// The initiator's identity.
        identity: Identity,
        /// The initiator's connection id.
        remote_id: u32,
        /// Our virtual port it asks for (`to_virtual_port`, or -1 when absent).
        local_vport: i32,
        /// Its virtual port (`from_virtual_port`, or the local vport when absent).
        remote_vport: i32,
    },
    /// A bad signal: drop it and report failure.
    Bad(SignalError),
}

/// Decodes a signal and checks its `from_identity` (spec §3.4 step 1): present, non-empty,
/// parseable by [`Identity::parse`] and not `invalid`. FakeIP detection is compiled out of the
/// open-source GNS build (every address is "not fake"), so no `ip:` identity is refused here.
pub fn parse_signal(bytes: &[u8]) -> Result<P2pRendezvous, SignalError> {
    let msg = P2pRendezvous::decode(bytes).map_err(|_| SignalError::Decode)?;
    from_identity(&msg)?;
    Ok(msg)
}

/// The sender's identity, by the rules of [`parse_signal`].
pub fn from_identity(msg: &P2pRendezvous) -> Result<Identity, SignalError> {
    let s = msg
        .from_identity
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(SignalError::MissingFromIdentity)?;
    match Identity::parse(s) {
        Ok(Identity::Invalid) => Err(SignalError::InvalidFromIdentity),
        Ok(id) => Ok(id),
        Err(e) => Err(SignalError::BadFromIdentity(e)),
    }
}

/// Decides where a signal goes (spec §3.4 steps 2-3). `is_known(identity, remote id)` says
/// whether a connection with that peer and remote connection id exists. Whether we have a
/// valid local identity, a listen socket on the vport, or a symmetric twin is the caller's
/// business once it gets [`SignalRoute::NewRequest`].
pub fn route_signal(
    msg: &P2pRendezvous,
    is_known: impl FnOnce(&Identity, u32) -> bool,
) -> SignalRoute {
    let identity = match from_identity(msg) {
        Ok(id) => id,
        Err(e) => return SignalRoute::Bad(e),
    };
    if let Some(local_id) = msg.to_connection_id {
        return SignalRoute::ToConnection(local_id);
    }
    let remote_id = match msg.from_connection_id {
        None => return SignalRoute::Bad(SignalError::MissingConnectionId),
        Some(0) => return SignalRoute::Bad(SignalError::ZeroConnectionId),
        Some(id) => id,
    };
    if is_known(&identity, remote_id) {
        return SignalRoute::Known(identity, remote_id);
    }
    let Some(req) = &msg.connect_request else {
        return SignalRoute::Bad(SignalError::NotConnectRequest);
    };
    if req.cert.is_none() || req.crypt.is_none() {
        return SignalRoute::Bad(SignalError::MissingCertOrCrypt);
    }
    let (local_vport, remote_vport) = request_vports(req);
    SignalRoute::NewRequest {
        identity,
        remote_id,
        local_vport,
        remote_vport,
    }
}

/// A request's `(local vport, remote vport)` as the receiver sees them: `to_virtual_port` or
/// -1, and `from_virtual_port` or else the local vport. Values above `i32::MAX` wrap as in
/// GNS's `uint32` to `int` conversion.
pub fn request_vports(req: &P2pConnectRequest) -> (i32, i32) {
    let local = req.to_virtual_port.map_or(-1, wrap_vport);
    let remote = req.from_virtual_port.map_or(local, wrap_vport);
    (local, remote)
}

fn wrap_vport(v: u32) -> i32 {
    i32::from_ne_bytes(v.to_ne_bytes())
}

/// The initiator's `connect_request`: our crypt info and cert, with `to_virtual_port` written
/// when `remote_vport >= 0` and `from_virtual_port` when `local_vport >= 0` (both even when 0).
pub fn connect_request(
    crypt: CryptInfoSigned,
    cert: CertificateSigned,
    local_vport: i32,
    remote_vport: i32,
) -> P2pConnectRequest {
    P2pConnectRequest {
        crypt: Some(crypt),
        cert: Some(cert),
        to_virtual_port: u32::try_from(remote_vport).ok(),
        from_virtual_port: u32::try_from(local_vport).ok(),
        from_fakeip: None,
    }
}

/// GNS's `CompareSymmetricConnections`: when both sides connected to each other at once,
/// whether we keep the client (initiator) role. The lower connection id is the client,
/// flipped when the ids' lowest bits differ (so neither side always wins); equal ids compare
/// the serialized certificates, lower bytes as client. Both sides reach opposite answers.
pub fn symmetric_we_are_client(
    our_id: u32,
    their_id: u32,
    our_cert: &[u8],
    their_cert: &[u8],
) -> bool {
    let lower = match our_id.cmp(&their_id) {
        Ordering::Equal => return our_cert < their_cert,
        Ordering::Less => true,
        Ordering::Greater => false,
    };
    lower ^ ((our_id ^ their_id) & 1 != 0)
}

/// The signal refusing a new request (the application closed it in `OnConnectRequest`, or
/// the handshake failed): `connection_closed { reason, debug }` to the initiator's id.
///
/// GNS's rejection carries only `to_connection_id`, `to_identity` and `connection_closed`,
/// and a GNS receiver drops it for lacking `from_identity`. We add `from_identity` and
/// (when allocated) `from_connection_id`, so GNS peers do see the rejection.
pub fn rejection_signal(
    local_identity: &str,
    local_id: Option<u32>,
    remote_identity: &str,
    remote_id: u32,
    reason: u32,
    debug: &str,
) -> P2pRendezvous {
    P2pRendezvous {
        to_connection_id: Some(remote_id),
        connection_closed: Some(P2pConnectionClosed {
            debug: Some(debug.to_owned()),
            reason_code: Some(reason),
        }),
        from_identity: Some(local_identity.to_owned()),
        from_connection_id: local_id,
        to_identity: Some(remote_identity.to_owned()),
        ..P2pRendezvous::default()
    }
}
