//! Introspection types: `SteamNetConnectionInfo_t`, `SteamNetConnectionRealTimeStatus_t` and
//! its per-lane part.

use std::net::SocketAddr;

use sockworks_engine::wire::identity::Identity;

use crate::handles::{ConnectionState, ListenSocket};

/// `k_nSteamNetworkConnectionInfoFlags_*`.
pub mod info_flags {
    /// The peer's certificate is not CA-signed.
    pub const UNAUTHENTICATED: i32 = 1;
    /// The NULL cipher is in use.
    pub const UNENCRYPTED: i32 = 2;
    /// Loopback buffers (an in-process socket pair).
    pub const LOOPBACK_BUFFERS: i32 = 4;
    /// A fast path (LAN / loopback).
    pub const FAST: i32 = 8;
    /// Relayed (a P2P route through TURN); the remote address is then not reported.
    pub const RELAYED: i32 = 16;
}

/// `SteamNetConnectionInfo_t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The peer's identity, once known.
    pub identity_remote: Option<Identity>,
    /// The connection's user data.
    pub user_data: i64,
    /// The listen socket it came in on (INVALID for a client connection).
    pub listen_socket: ListenSocket,
    /// The peer's address.
    pub addr_remote: SocketAddr,
    /// State.
    pub state: ConnectionState,
    /// `ESteamNetConnectionEnd` once ended, else 0.
    pub end_reason: i32,
    /// Debug text of the end reason.
    pub end_debug: String,
    /// Human-readable description (the name when set, else handle and address).
    pub description: String,
    /// [`info_flags`].
    pub flags: i32,
}

impl ConnectionInfo {
    /// What the API knows of a connection before the engine reports on it: the peer, the
    /// state and flags, no identity, no listen socket, not ended. (User data lives in the
    /// connection's record and is filled in when the info is read.)
    pub(crate) fn new(addr_remote: SocketAddr, state: ConnectionState, flags: i32) -> Self {
        ConnectionInfo {
            identity_remote: None,
            user_data: -1,
            listen_socket: ListenSocket::INVALID,
            addr_remote,
            state,
            end_reason: 0,
            end_debug: String::new(),
            description: String::new(),
            flags,
        }
    }
}

/// What the shard last published about a connection: the part of [`ConnectionInfo`] the
/// record keeps nowhere else. State and user data have their own atomics in the record and
/// the description is built from the name when read, so the snapshot swapped on every
/// status change stays small (issue 16: memory per idle connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    /// The peer's identity, once known.
    pub identity_remote: Option<Identity>,
    /// The peer's address.
    pub addr_remote: SocketAddr,
    /// The listen socket reported (INVALID for a client connection or a pair).
    pub listen_socket: ListenSocket,
    /// [`info_flags`].
    pub flags: i32,
    /// `ESteamNetConnectionEnd` and its debug text, once ended (boxed: most connections
    /// this is kept for are live).
    pub end: Option<Box<(i32, String)>>,
}

impl Published {
    /// What `info` says that the record keeps here.
    pub(crate) fn of(info: &ConnectionInfo) -> Self {
        Published {
            identity_remote: info.identity_remote.clone(),
            addr_remote: info.addr_remote,
            listen_socket: info.listen_socket,
            flags: info.flags,
            end: (info.end_reason != 0 || !info.end_debug.is_empty())
                .then(|| Box::new((info.end_reason, info.end_debug.clone()))),
        }
    }

    /// The whole info, with the rest as the record says it now.
    pub(crate) fn to_info(
        &self,
        state: ConnectionState,
        user_data: i64,
        description: String,
    ) -> ConnectionInfo {
        let (end_reason, end_debug) = self
            .end
            .as_deref()
            .map_or((0, String::new()), |(r, d)| (*r, d.clone()));
        ConnectionInfo {
            identity_remote: self.identity_remote.clone(),
            user_data,
            listen_socket: self.listen_socket,
            addr_remote: self.addr_remote,
            state,
            end_reason,
            end_debug,
            description,
            flags: self.flags,
        }
    }
}

/// `SteamNetConnectionRealTimeLaneStatus_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneStatus {
    /// Unsent unreliable bytes.
    pub pending_unreliable: i32,
    /// Unsent and queued-for-retry reliable bytes.
    pub pending_reliable: i32,
    /// Reliable bytes sent and not yet acked.
    pub sent_unacked_reliable: i32,
    /// Predicted µs until the lane's last queued byte leaves.
    pub queue_time_usec: i64,
}

/// `SteamNetConnectionRealTimeStatus_t`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RealTimeStatus {
    /// State.
    pub state: Option<ConnectionState>,
    /// Smoothed ping, ms (−1 unknown).
    pub ping: i32,
    /// Fraction of packets received intact and in order (−1 unknown).
    pub quality_local: f32,
    /// The peer's view of the same (−1: not reported by this implementation yet).
    pub quality_remote: f32,
    /// Packets sent per second.
    pub out_packets_per_sec: f32,
    /// Bytes sent per second.
    pub out_bytes_per_sec: f32,
    /// Packets received per second.
    pub in_packets_per_sec: f32,
    /// Bytes received per second.
    pub in_bytes_per_sec: f32,
    /// Estimated send rate, bytes/s.
    pub send_rate_bytes_per_sec: i32,
    /// Unsent unreliable bytes (all lanes).
    pub pending_unreliable: i32,
    /// Unsent and queued-for-retry reliable bytes.
    pub pending_reliable: i32,
    /// Reliable bytes sent and not yet acked.
    pub sent_unacked_reliable: i32,
    /// Predicted µs until the last queued byte leaves.
    pub queue_time_usec: i64,
}

/// `m_szConnectionDescription`: the handle and the name, or the peer's address when unnamed.
pub(crate) fn describe(handle: u32, addr_remote: SocketAddr, name: &str) -> String {
    if name.is_empty() {
        format!("#{handle} UDP {addr_remote}")
    } else {
        format!("#{handle} '{name}'")
    }
}
