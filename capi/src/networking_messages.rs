//! `ISteamNetworkingMessages` (sessions addressed by identity, over P2P): Sockworks has no
//! P2P transport yet, so every call returns its documented failure value and nothing is
//! queued. The README's feature table says so.

use std::ffi::c_int;
use std::ffi::c_void;

use crate::types::{
    SteamNetConnectionInfo_t, SteamNetConnectionRealTimeStatus_t, SteamNetworkingIdentity,
    SteamNetworkingMessage_t,
};

/// `k_EResultNoConnection`: no session can be made.
const NO_CONNECTION: i32 = sockworks::EResult::NoConnection.code();

/// `SendMessageToUser`: NoConnection (no transport reaches a peer identity yet).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingMessages_SendMessageToUser(
    _self: *mut c_void,
    _identity: *const SteamNetworkingIdentity,
    _data: *const c_void,
    _size: u32,
    _flags: c_int,
    _channel: c_int,
) -> i32 {
    NO_CONNECTION
}

/// `ReceiveMessagesOnChannel`: nothing ever arrives: 0.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingMessages_ReceiveMessagesOnChannel(
    _self: *mut c_void,
    _channel: c_int,
    _out: *mut *mut SteamNetworkingMessage_t,
    _max: c_int,
) -> c_int {
    0
}

/// `AcceptSessionWithUser`: no session request can be pending: false.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingMessages_AcceptSessionWithUser(
    _self: *mut c_void,
    _identity: *const SteamNetworkingIdentity,
) -> bool {
    false
}

/// `CloseSessionWithUser`: no session: false.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingMessages_CloseSessionWithUser(
    _self: *mut c_void,
    _identity: *const SteamNetworkingIdentity,
) -> bool {
    false
}

/// `CloseChannelWithUser`: no session: false.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingMessages_CloseChannelWithUser(
    _self: *mut c_void,
    _identity: *const SteamNetworkingIdentity,
    _channel: c_int,
) -> bool {
    false
}

/// `GetSessionConnectionInfo`: no session: `k_ESteamNetworkingConnectionState_None` (0), the
/// outputs cleared.
///
/// # Safety
/// `info` / `status` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingMessages_GetSessionConnectionInfo(
    _self: *mut c_void,
    _identity: *const SteamNetworkingIdentity,
    info: *mut SteamNetConnectionInfo_t,
    status: *mut SteamNetConnectionRealTimeStatus_t,
) -> c_int {
    crate::guard::guard(0, || {
        if !info.is_null() {
            // SAFETY: non-null and writable (the caller's promise).
            unsafe { info.write(SteamNetConnectionInfo_t::zeroed()) };
        }
        if !status.is_null() {
            // SAFETY: non-null and writable (the caller's promise).
            unsafe { status.write(SteamNetConnectionRealTimeStatus_t::zeroed()) };
        }
        0
    })
}
