//! Handles: plain `u32`s as in GNS (`HSteamNetConnection`, `HSteamListenSocket`,
//! `HSteamNetPollGroup`), each wrapped so they cannot be mixed up. 0 is invalid for all three.
//!
//! A connection handle is the connection's wire id, which names its owning shard in fixed bits
//! (docs/design.md), so any thread finds the shard with a mask. Listen-socket and poll-group
//! handles come from one instance-wide counter and are never reused, so a stale handle is
//! detected, never aliased.

/// `ESteamNetworkingConnectionState`, as the API reports it.
pub use sockworks_engine::proto::connection::ApiState as ConnectionState;

/// `HSteamNetConnection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Connection(pub u32);

/// `HSteamListenSocket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenSocket(pub u32);

/// `HSteamNetPollGroup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PollGroup(pub u32);

impl Connection {
    /// `k_HSteamNetConnection_Invalid`.
    pub const INVALID: Connection = Connection(0);

    /// The engine's id of the connection (the handle is the id).
    pub(crate) fn id(self) -> sockworks_engine::proto::ids::ConnectionId {
        self.0.into()
    }
}

impl ListenSocket {
    /// `k_HSteamListenSocket_Invalid`.
    pub const INVALID: ListenSocket = ListenSocket(0);
}

impl PollGroup {
    /// `k_HSteamNetPollGroup_Invalid`.
    pub const INVALID: PollGroup = PollGroup(0);
}
