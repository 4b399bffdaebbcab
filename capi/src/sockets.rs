//! The flat `ISteamNetworkingSockets` calls (`SteamAPI_ISteamNetworkingSockets_*`).
//!
//! Each takes the interface pointer first (`self` in the flat header, `this` through the
//! vtable); there is one instance per process, so it is not read. Every body runs in
//! [`guard`]: a bad pointer or handle gets the documented failure value, never a crash of
//! the library's own making. FakeIP lives in `fakeip`, the SDR calls in `unsupported`, those
//! that read or label a connection in `introspect`.

use std::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;

use sockworks::{Connection, ListenSocket, PollGroup};

use crate::guard::{c_str_bounded, guard};
use crate::instance::with;
use crate::message::{lend, send_messages};
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, HSteamNetPollGroup, SteamNetworkingConfigValue_t,
    SteamNetworkingIPAddr, SteamNetworkingIdentity, SteamNetworkingMessage_t,
};

/// `k_EResultInvalidParam`, for calls that fail before reaching the Rust API.
pub(crate) const INVALID_PARAM: i32 = sockworks::EResult::InvalidParam.code();
/// `k_EResultNoConnection`: GNS's answer for calls made with no instance.
const NO_CONNECTION: i32 = sockworks::EResult::NoConnection.code();
/// Longest debug or name string read from C (GNS truncates to 128 anyway).
const MAX_TEXT: usize = 4096;

/// A C string of at most [`MAX_TEXT`] bytes as text; empty when null or unterminated.
///
/// # Safety
/// `p` is null or a NUL-terminated string (or at least `MAX_TEXT` readable bytes).
pub(crate) unsafe fn text(p: *const c_char) -> String {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { c_str_bounded(p, MAX_TEXT) }.unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

/// The options array as Rust values, or `None` when it is malformed (the call then fails).
///
/// # Safety
/// `opts` is null or points to `n` options.
pub(crate) unsafe fn options(
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> Option<Vec<sockworks::ConfigValue>> {
    // SAFETY: forwarded from the caller.
    match unsafe { crate::config::values_from_options(n, opts) } {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("bad options array: {e}");
            None
        }
    }
}

/// `CreateListenSocketIP`: 0 on failure (bad address pointer or options, port 0, port in
/// use). Port 0 is refused as GNS refuses it ("Must specify local port"), although the Rust
/// API would pick a free one: a program written against GNS gets GNS's answer.
///
/// # Safety
/// `addr` is null or valid; `opts` null or `n` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(
    _self: *mut c_void,
    addr: *const SteamNetworkingIPAddr,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamListenSocket {
    guard(0, || {
        // SAFETY: the caller passes null or a valid address.
        let Some(addr) = (unsafe { addr.as_ref() }) else {
            return 0;
        };
        if { addr.m_port } == 0 {
            tracing::warn!("CreateListenSocketIP: must specify local port");
            return 0;
        }
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { options(n, opts) }) else {
            return 0;
        };
        with(0, |s| {
            s.create_listen_socket_ip(addr.to_socket_addr(), &opts).0
        })
    })
}

/// `ConnectByIPAddress`: 0 on failure.
///
/// # Safety
/// `addr` is null or valid; `opts` null or `n` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(
    _self: *mut c_void,
    addr: *const SteamNetworkingIPAddr,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamNetConnection {
    guard(0, || {
        // SAFETY: the caller passes null or a valid address.
        let Some(addr) = (unsafe { addr.as_ref() }) else {
            return 0;
        };
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { options(n, opts) }) else {
            return 0;
        };
        let to: SocketAddr = addr.to_socket_addr();
        with(0, |s| s.connect_by_ip_address(to, &opts).0)
    })
}

/// `AcceptConnection`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_AcceptConnection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
) -> i32 {
    guard(INVALID_PARAM, || {
        with(INVALID_PARAM, |s| {
            s.accept_connection(Connection(conn)).code()
        })
    })
}

/// `CloseConnection`: false for an invalid handle.
///
/// # Safety
/// `debug` is null or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_CloseConnection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    reason: c_int,
    debug: *const c_char,
    linger: bool,
) -> bool {
    guard(false, || {
        // SAFETY: forwarded from the caller.
        let debug = unsafe { text(debug) };
        let closed = with(false, |s| {
            s.close_connection(Connection(conn), reason, &debug, linger)
        });
        if closed {
            crate::config::forget(crate::config::Scope::Conn(conn));
        }
        closed
    })
}

/// `CloseListenSocket`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_CloseListenSocket(
    _self: *mut c_void,
    socket: HSteamListenSocket,
) -> bool {
    guard(false, || {
        let closed = with(false, |s| s.close_listen_socket(ListenSocket(socket)));
        if closed {
            crate::config::forget(crate::config::Scope::Listen(socket));
        }
        closed
    })
}

/// `SendMessageToConnection`: the message number into `out_number` on success.
///
/// # Safety
/// `data` has `size` readable bytes (or is null with size 0); `out_number` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    data: *const c_void,
    size: u32,
    flags: c_int,
    out_number: *mut i64,
) -> i32 {
    guard(INVALID_PARAM, || {
        let Ok(n) = usize::try_from(size) else {
            return INVALID_PARAM;
        };
        let payload: &[u8] = if n == 0 {
            &[]
        } else if data.is_null() {
            return INVALID_PARAM;
        } else {
            // SAFETY: the caller promises `size` readable bytes at `data`.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) }
        };
        let r = with(Err(sockworks::EResult::NoConnection), |s| {
            s.send_message_to_connection(Connection(conn), payload, flags & 0xffff)
        });
        match r {
            Ok(number) => {
                if !out_number.is_null() {
                    // SAFETY: non-null and the caller promises it is writable.
                    unsafe { *out_number = number };
                }
                sockworks::EResult::Ok.code()
            }
            Err(e) => e.code(),
        }
    })
}

/// `SendMessages`: see `message::send_messages` for the ownership rules.
///
/// # Safety
/// `msgs` points to `n` pointers (null or from AllocateMessage); `results` null or room for
/// `n` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_SendMessages(
    _self: *mut c_void,
    n: c_int,
    msgs: *mut *mut SteamNetworkingMessage_t,
    results: *mut i64,
    delete_failed: bool,
) {
    guard((), || {
        let Some(s) = crate::instance::sockets() else {
            if !results.is_null() {
                for i in 0..usize::try_from(n).unwrap_or(0) {
                    // SAFETY: the caller promises room for n results.
                    unsafe { *results.add(i) = -i64::from(NO_CONNECTION) };
                }
            }
            return;
        };
        // SAFETY: forwarded from the caller.
        unsafe { send_messages(&s, n, msgs, results, delete_failed) }
    })
}

/// `FlushMessagesOnConnection`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_FlushMessagesOnConnection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
) -> i32 {
    guard(INVALID_PARAM, || {
        with(INVALID_PARAM, |s| {
            s.flush_messages_on_connection(Connection(conn)).code()
        })
    })
}

thread_local! {
    /// Reused between receive calls so a receive allocates nothing of its own.
    static SCRATCH: std::cell::RefCell<Vec<sockworks::Message>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Receives into the C array through the thread's scratch vector.
///
/// # Safety
/// `out` is null or has room for `max` pointers.
unsafe fn receive(
    out: *mut *mut SteamNetworkingMessage_t,
    max: c_int,
    pull: impl FnOnce(&sockworks::Sockets, &mut Vec<sockworks::Message>, usize) -> i32,
) -> c_int {
    let Ok(max) = usize::try_from(max) else {
        return -1;
    };
    if out.is_null() && max > 0 {
        return -1;
    }
    SCRATCH.with(|cell| {
        // A re-entrant receive (from a callback inside this one) gets its own vector.
        let mut own = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let v = match borrowed.as_mut() {
            Ok(v) => &mut **v,
            Err(_) => &mut own,
        };
        v.clear();
        let (r, offset) = with((-1, 0), |s| {
            let r = pull(s, v, max);
            // One pair of clock reads per batch that holds messages.
            let offset = if r > 0 {
                let now = i64::try_from(s.now().as_micros()).unwrap_or(i64::MAX);
                crate::utils::local_timestamp().saturating_sub(now)
            } else {
                0
            };
            (r, offset)
        });
        if r > 0 {
            // SAFETY: the caller promises room for `max` >= r pointers.
            unsafe { lend(v, out, offset) };
        }
        v.clear();
        r
    })
}

/// `ReceiveMessagesOnConnection`: −1 for an invalid handle.
///
/// # Safety
/// `out` has room for `max` pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    out: *mut *mut SteamNetworkingMessage_t,
    max: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded from the caller.
        unsafe {
            receive(out, max, |s, v, max| {
                s.receive_messages_on_connection(Connection(conn), v, max)
            })
        }
    })
}

/// `ReceiveMessagesOnPollGroup`: −1 for an invalid handle.
///
/// # Safety
/// `out` has room for `max` pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(
    _self: *mut c_void,
    group: HSteamNetPollGroup,
    out: *mut *mut SteamNetworkingMessage_t,
    max: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded from the caller.
        unsafe {
            receive(out, max, |s, v, max| {
                s.receive_messages_on_poll_group(PollGroup(group), v, max)
            })
        }
    })
}

/// `CreateSocketPair`.
///
/// # Safety
/// `out1`/`out2` writable; identities null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_CreateSocketPair(
    _self: *mut c_void,
    out1: *mut HSteamNetConnection,
    out2: *mut HSteamNetConnection,
    use_network_loopback: bool,
    identity1: *const SteamNetworkingIdentity,
    identity2: *const SteamNetworkingIdentity,
) -> bool {
    guard(false, || {
        if out1.is_null() || out2.is_null() {
            return false;
        }
        // SAFETY: the caller passes null or valid identities.
        let (i1, i2) = unsafe { (identity1.as_ref(), identity2.as_ref()) };
        let (i1, i2) = (
            i1.and_then(|i| i.to_identity()),
            i2.and_then(|i| i.to_identity()),
        );
        let Some((a, b)) = with(None, |s| s.create_socket_pair(use_network_loopback, i1, i2))
        else {
            return false;
        };
        // SAFETY: both non-null and writable (the caller's promise).
        unsafe {
            *out1 = a.0;
            *out2 = b.0;
        }
        true
    })
}

/// `ConfigureConnectionLanes`: null priorities mean all equal, null weights all 1.
///
/// # Safety
/// `priorities` / `weights` null or `n` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ConfigureConnectionLanes(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    n: c_int,
    priorities: *const c_int,
    weights: *const u16,
) -> i32 {
    guard(INVALID_PARAM, || {
        let Ok(count) = usize::try_from(n) else {
            return INVALID_PARAM;
        };
        if count > sockworks::MAX_LANES {
            return INVALID_PARAM;
        }
        let p = if priorities.is_null() {
            vec![0; count]
        } else {
            // SAFETY: the caller promises n priorities.
            unsafe { std::slice::from_raw_parts(priorities, count) }.to_vec()
        };
        let w = if weights.is_null() {
            vec![1; count]
        } else {
            // SAFETY: the caller promises n weights.
            unsafe { std::slice::from_raw_parts(weights, count) }.to_vec()
        };
        with(INVALID_PARAM, |s| {
            s.configure_connection_lanes(Connection(conn), &p, &w)
                .code()
        })
    })
}

/// `CreatePollGroup`: 0 with no instance.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_CreatePollGroup(
    _self: *mut c_void,
) -> HSteamNetPollGroup {
    guard(0, || with(0, |s| s.create_poll_group().0))
}

/// `DestroyPollGroup`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_DestroyPollGroup(
    _self: *mut c_void,
    group: HSteamNetPollGroup,
) -> bool {
    guard(false, || {
        with(false, |s| s.destroy_poll_group(PollGroup(group)))
    })
}

/// `SetConnectionPollGroup` (0 removes the connection from its group).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    group: HSteamNetPollGroup,
) -> bool {
    guard(false, || {
        with(false, |s| {
            s.set_connection_poll_group(Connection(conn), PollGroup(group))
        })
    })
}

/// `RunCallbacks`: status-changed callbacks run here, on the caller's thread.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_RunCallbacks(_self: *mut c_void) {
    guard((), || {
        // Not `with`: the callbacks may call Kill, which must not find the instance borrowed.
        if let Some(s) = crate::instance::sockets() {
            s.run_callbacks();
        }
    })
}
