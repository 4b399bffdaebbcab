//! What GNS concluded about the peer's certificate, read through GNS's flat C API (the `gns`
//! wrapper exposes neither `m_nFlags` nor `m_identityRemote` of `SteamNetConnectionInfo_t`).

use std::ffi::{CStr, c_char};

use gns::GnsConnection;
use gns::sys::{
    HSteamNetConnection, SteamAPI_ISteamNetworkingSockets_GetConnectionInfo,
    SteamAPI_SteamNetworkingIdentity_ToString, SteamAPI_SteamNetworkingSockets_v009,
    SteamNetConnectionInfo_t, k_nSteamNetworkConnectionInfoFlags_Unauthenticated,
};

/// `SteamNetConnectionInfo_t`'s security view of a connection.
pub(crate) struct PeerAuthInfo {
    /// `m_nFlags` (1 Unauthenticated, 2 Unencrypted, 4 LoopbackBuffers, 8 Fast).
    pub flags: i32,
    /// `m_identityRemote` in GNS's string form (`str:..`, `ip:..`; empty when invalid).
    pub identity: String,
}

impl PeerAuthInfo {
    /// Whether GNS flags the peer unauthenticated (no trusted CA signature, or an IP identity).
    pub(crate) fn unauthenticated(&self) -> bool {
        self.flags & k_nSteamNetworkConnectionInfoFlags_Unauthenticated != 0
    }
}

/// The raw handle of a connection.
fn raw(conn: GnsConnection) -> HSteamNetConnection {
    // SAFETY: `GnsConnection` is `#[repr(transparent)]` over `HSteamNetConnection` (the gns
    // crate's declaration), so both have the same size and every bit pattern is valid.
    unsafe { std::mem::transmute::<GnsConnection, HSteamNetConnection>(conn) }
}

/// `GetConnectionInfo`'s flags and remote identity; `None` for a handle GNS does not know.
pub(crate) fn peer_auth(conn: GnsConnection) -> Option<PeerAuthInfo> {
    let mut info = SteamNetConnectionInfo_t::default();
    // SAFETY: the interface pointer is GNS's global one, valid while the process's GNS
    // instance exists (the peer holds it for its whole run); `info` is a valid out-pointer.
    let known = unsafe {
        SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(
            SteamAPI_SteamNetworkingSockets_v009(),
            raw(conn),
            &mut info,
        )
    };
    if !known {
        return None;
    }
    // The struct is packed: copy the field out rather than borrow it unaligned.
    let remote = info.m_identityRemote;
    let mut buf = [0 as c_char; 256];
    // SAFETY: `remote` is an initialised identity GNS filled in; GNS writes at most
    // `buf.len()` bytes into `buf`.
    unsafe {
        SteamAPI_SteamNetworkingIdentity_ToString(&remote, buf.as_mut_ptr(), buf.len() as _);
    }
    let bytes = buf.map(|c| c as u8);
    let identity = CStr::from_bytes_until_nul(&bytes).map_or_else(
        |_| String::from_utf8_lossy(&bytes).into_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    Some(PeerAuthInfo {
        flags: info.m_nFlags,
        identity,
    })
}
