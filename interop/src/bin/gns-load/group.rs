//! A GNS poll group over client connections, through GNS's flat C API.
//!
//! The `gns` wrapper gives client sockets no poll group, so a load client would read each of
//! its N connections with its own `ReceiveMessagesOnConnection` call, each taking GNS's global
//! lock: at 256 connections that starves GNS's own service thread (GNS logs "thread
//! starvation") and the client, not the server, decides the result. A real game client has one
//! connection; this makes N of them in one process cost one call per turn, as a GNS server's
//! poll group does.

use gns::GnsConnection;
use gns::sys::{
    HSteamNetConnection, HSteamNetPollGroup, SteamAPI_ISteamNetworkingSockets_CreatePollGroup,
    SteamAPI_ISteamNetworkingSockets_DestroyPollGroup,
    SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup,
    SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup,
    SteamAPI_SteamNetworkingMessage_t_Release, SteamAPI_SteamNetworkingSockets_v009,
    SteamNetworkingMessage_t, k_HSteamNetPollGroup_Invalid,
};

/// The raw handle of a connection.
fn raw(conn: GnsConnection) -> HSteamNetConnection {
    // SAFETY: `GnsConnection` is `#[repr(transparent)]` over `HSteamNetConnection` (the gns
    // crate's declaration), so both have the same size and every bit pattern is valid.
    unsafe { std::mem::transmute::<GnsConnection, HSteamNetConnection>(conn) }
}

/// One poll group of the process's GNS instance; destroyed on drop.
pub(crate) struct PollGroup {
    handle: HSteamNetPollGroup,
    /// Received messages, owned by GNS until released.
    out: Vec<*mut SteamNetworkingMessage_t>,
}

impl PollGroup {
    /// Creates the group; `None` if GNS refuses (it is not initialised).
    pub(crate) fn new(batch: usize) -> Option<Self> {
        // SAFETY: the interface pointer is GNS's global one, valid once `GnsGlobal` exists
        // (the caller holds it); the call has no other preconditions.
        let handle = unsafe {
            SteamAPI_ISteamNetworkingSockets_CreatePollGroup(SteamAPI_SteamNetworkingSockets_v009())
        };
        (handle != k_HSteamNetPollGroup_Invalid).then(|| PollGroup {
            handle,
            out: vec![std::ptr::null_mut(); batch.max(1)],
        })
    }

    /// Moves `conn` into the group; false if GNS does not know the connection.
    pub(crate) fn add(&self, conn: GnsConnection) -> bool {
        // SAFETY: as in `new`; GNS validates both handles.
        unsafe {
            SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(
                SteamAPI_SteamNetworkingSockets_v009(),
                raw(conn),
                self.handle,
            )
        }
    }

    /// Receives up to one batch, calls `each(connection, payload)` per message, releases them;
    /// returns how many there were.
    pub(crate) fn receive(&mut self, mut each: impl FnMut(GnsConnection, &[u8])) -> usize {
        let max = i32::try_from(self.out.len()).unwrap_or(i32::MAX);
        // SAFETY: `out` has room for `max` pointers, which GNS fills with the messages it
        // returns (the count), each ours until released.
        let n = unsafe {
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(
                SteamAPI_SteamNetworkingSockets_v009(),
                self.handle,
                self.out.as_mut_ptr(),
                max,
            )
        };
        let n = usize::try_from(n).unwrap_or(0).min(self.out.len());
        for &m in &self.out[..n] {
            // SAFETY: GNS returned `m` as a valid message; its payload is `m_cbSize` bytes at
            // `m_pData` until the release below.
            let (conn, data) = unsafe {
                let msg = &*m;
                let len = usize::try_from(msg.m_cbSize).unwrap_or(0);
                let data = if len == 0 || msg.m_pData.is_null() {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(msg.m_pData.cast::<u8>(), len)
                };
                (GnsConnection::from_raw(msg.m_conn), data)
            };
            each(conn, data);
            // SAFETY: released exactly once; `data` is not used after this.
            unsafe { SteamAPI_SteamNetworkingMessage_t_Release(m) };
        }
        n
    }
}

impl Drop for PollGroup {
    fn drop(&mut self) {
        // SAFETY: as in `new`; the handle is ours and destroyed once.
        unsafe {
            SteamAPI_ISteamNetworkingSockets_DestroyPollGroup(
                SteamAPI_SteamNetworkingSockets_v009(),
                self.handle,
            );
        }
    }
}
