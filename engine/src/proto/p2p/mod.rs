//! GNS's P2P rendezvous signaling (spec `gns-p2p-certs.md` §3.3-3.7), as pure code.
//!
//! A P2P connection has no address to send its handshake to: both sides exchange
//! [`P2pRendezvous`] signals through an application-provided channel that may lose, duplicate
//! and reorder them. This module decides what a signal means and which signals to send; the
//! endpoint owns the connections, the crypto and the ICE session.
//!
//! ```text
//!  bytes from the app's channel
//!    └─ route::parse_signal ─► route::route_signal ─┬─ ToConnection / Known ─► Signaling::handle_signal
//!                                                   ├─ NewRequest ─► new connection + Signaling (acceptor)
//!                                                   └─ Bad ─► drop (ReceivedP2PCustomSignal = false)
//!  Signaling::poll_signal(now) ─► bytes to the app's channel (SendSignal)
//! ```
//!
//! [`Signaling`] is one connection's signal state: connect retries (initiator), the pending
//! `connect_ok` (acceptor), the reliable stream of ICE messages (`reliable.rs`), spacing and
//! deadlines, and the closing rules. Nothing here reads a clock: time is passed in.

use crate::wire::identity::IdentityError;

pub(crate) mod reliable;
pub mod route;
pub mod signaling;

#[cfg(test)]
mod tests;

pub use crate::wire::rendezvous::{
    ApplicationMessage, IceAuth, IceCandidate, IceRendezvous, P2pConnectOk, P2pConnectRequest,
    P2pConnectionClosed, P2pRendezvous, ReliableMessage,
};
pub use route::{
    SignalRoute, connect_request, from_identity, parse_signal, rejection_signal, request_vports,
    route_signal, symmetric_we_are_client,
};
pub use signaling::{SignalInput, Signaling, SignalingConfig};

/// `k_ESteamNetConnectionEnd_Internal_P2PNoConnection`: the reason code of a "NoConnection"
/// signal, which means "I have no such connection, do not reply".
pub const P2P_NO_CONNECTION: u32 = 9999;

/// Virtual port `k_nVirtualPort_Messages`: connections for ISteamNetworkingMessages.
pub const VIRTUAL_PORT_MESSAGES: i32 = 0x7fff_ffff;

/// Why a signal was rejected. Each one makes GNS's `ReceivedP2PCustomSignal` return false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The bytes are not a `CMsgSteamNetworkingP2PRendezvous`.
    #[error("signal is not a valid rendezvous protobuf")]
    Decode,
    /// No (or an empty) `from_identity`.
    #[error("bad P2P signal: no from_identity")]
    MissingFromIdentity,
    /// `from_identity` does not parse.
    #[error("bad P2P signal: invalid from_identity: {0}")]
    BadFromIdentity(IdentityError),
    /// `from_identity` is the `invalid` identity.
    #[error("bad P2P signal: from_identity is invalid")]
    InvalidFromIdentity,
    /// Neither `to_connection_id` nor `from_connection_id`.
    #[error("bad P2P signal: no connection id")]
    MissingConnectionId,
    /// A connection id of zero, which no GNS peer allocates.
    #[error("bad P2P signal: zero connection id")]
    ZeroConnectionId,
    /// An unknown peer's signal without a `connect_request`.
    #[error("bad P2P signal: unknown connection and no connect_request")]
    NotConnectRequest,
    /// A `connect_request` without `cert` or `crypt`.
    #[error("bad P2P signal: connect_request without cert or crypt")]
    MissingCertOrCrypt,
    /// `from_identity` differs from the connection's remote identity.
    #[error("bad P2P signal: from_identity is not the connection's peer")]
    WrongIdentity,
    /// `from_connection_id` differs from the one learned earlier.
    #[error("bad P2P signal: remote connection id changed from {known:#x} to {got:#x}")]
    ConnectionIdChanged {
        /// The id learned from the first signal.
        known: u32,
        /// The id in this signal.
        got: u32,
    },
    /// `to_connection_id` names another connection.
    #[error("bad P2P signal: addressed to connection {0:#x}")]
    WrongConnection(u32),
}
