//! The flat `ISteamNetworkingSockets` calls that read or label a connection or listen socket:
//! user data, names, info, real-time and detailed status, the bound address, the local
//! identity. Same conventions as `sockets`: the interface pointer is not read, every body runs
//! in [`guard`], bad pointers and handles get GNS's failure values.

use std::ffi::{c_char, c_int, c_void};

use sockworks::{Connection, ListenSocket};

use crate::guard::{guard, write_c_str};
use crate::instance::with;
use crate::sockets::{INVALID_PARAM, text};
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, SteamNetConnectionInfo_t,
    SteamNetConnectionRealTimeLaneStatus_t, SteamNetConnectionRealTimeStatus_t,
    SteamNetworkingIPAddr,
};

/// `SetConnectionUserData`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_SetConnectionUserData(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    data: i64,
) -> bool {
    guard(false, || {
        with(false, |s| {
            s.set_connection_user_data(Connection(conn), data)
        })
    })
}

/// `GetConnectionUserData`: −1 for an invalid handle.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetConnectionUserData(
    _self: *mut c_void,
    conn: HSteamNetConnection,
) -> i64 {
    guard(-1, || {
        with(-1, |s| s.get_connection_user_data(Connection(conn)))
    })
}

/// `SetConnectionName`.
///
/// # Safety
/// `name` is null or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_SetConnectionName(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    name: *const c_char,
) {
    guard((), || {
        // SAFETY: forwarded from the caller.
        let name = unsafe { text(name) };
        with(false, |s| s.set_connection_name(Connection(conn), &name));
    })
}

/// `GetConnectionName`: false for an invalid handle or a null buffer.
///
/// # Safety
/// `buf` is null or has `max` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetConnectionName(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    buf: *mut c_char,
    max: c_int,
) -> bool {
    guard(false, || {
        let Ok(cap) = usize::try_from(max) else {
            return false;
        };
        if buf.is_null() || cap == 0 {
            return false;
        }
        let Some(name) = with(None, |s| s.get_connection_name(Connection(conn))) else {
            return false;
        };
        // SAFETY: the caller promises `max` writable bytes.
        unsafe { write_c_str(buf, cap, &name) };
        true
    })
}

/// `GetConnectionInfo`: false for an invalid handle or a null `info`.
///
/// # Safety
/// `info` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    info: *mut SteamNetConnectionInfo_t,
) -> bool {
    guard(false, || {
        let Some(i) = with(None, |s| s.get_connection_info(Connection(conn))) else {
            return false;
        };
        if !info.is_null() {
            // SAFETY: non-null and the caller promises it is writable.
            unsafe { info.write(SteamNetConnectionInfo_t::from_info(&i)) };
        }
        true
    })
}

/// `GetConnectionRealTimeStatus`: `status` may be null; `lanes` holds `n_lanes` entries.
///
/// # Safety
/// `status` null or writable; `lanes` null or room for `n_lanes` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetConnectionRealTimeStatus(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    status: *mut SteamNetConnectionRealTimeStatus_t,
    n_lanes: c_int,
    lanes: *mut SteamNetConnectionRealTimeLaneStatus_t,
) -> i32 {
    guard(INVALID_PARAM, || {
        let Ok(n) = usize::try_from(n_lanes) else {
            return INVALID_PARAM;
        };
        if n > 0 && lanes.is_null() {
            return INVALID_PARAM;
        }
        let mut rust_lanes = vec![sockworks::LaneStatus::default(); n];
        let r = with(Err(sockworks::EResult::NoConnection), |s| {
            s.get_connection_real_time_status(Connection(conn), &mut rust_lanes)
        });
        match r {
            Ok(st) => {
                if !status.is_null() {
                    // SAFETY: non-null and the caller promises it is writable.
                    unsafe { status.write(SteamNetConnectionRealTimeStatus_t::from_status(&st)) };
                }
                for (i, l) in rust_lanes.iter().enumerate() {
                    // SAFETY: the caller promises room for n_lanes entries.
                    unsafe {
                        lanes
                            .add(i)
                            .write(SteamNetConnectionRealTimeLaneStatus_t::from_lane(l))
                    };
                }
                sockworks::EResult::Ok.code()
            }
            Err(e) => e.code(),
        }
    })
}

/// `GetDetailedConnectionStatus`: −1 invalid handle; 0 it fit; N > 0 a buffer of N bytes
/// would.
///
/// # Safety
/// `buf` null or `size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetDetailedConnectionStatus(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    buf: *mut c_char,
    size: c_int,
) -> c_int {
    guard(-1, || {
        let cap = usize::try_from(size).unwrap_or(0);
        let slice: &mut [u8] = if buf.is_null() || cap == 0 {
            &mut []
        } else {
            // SAFETY: the caller promises `size` writable bytes.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) }
        };
        with(-1, |s| {
            s.get_detailed_connection_status(Connection(conn), slice)
        })
    })
}

/// `GetListenSocketAddress`.
///
/// # Safety
/// `out` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetListenSocketAddress(
    _self: *mut c_void,
    socket: HSteamListenSocket,
    out: *mut SteamNetworkingIPAddr,
) -> bool {
    guard(false, || {
        if out.is_null() {
            return false;
        }
        let Some(a) = with(None, |s| s.get_listen_socket_address(ListenSocket(socket))) else {
            return false;
        };
        // SAFETY: non-null and the caller promises it is writable.
        unsafe { out.write(SteamNetworkingIPAddr::from_socket_addr(a)) };
        true
    })
}
