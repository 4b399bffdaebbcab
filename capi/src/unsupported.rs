//! Calls of features Sockworks does not have yet (FakeIP, Valve's relay network and hosted
//! servers): each returns the failure value GNS
//! documents, so callers take their documented error path. The README's feature table lists
//! them; the Rust API's `unsupported` module gives the same answers.

use std::ffi::{c_int, c_void};

use crate::guard::guard;
use crate::instance::with;
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, SteamDatagramGameCoordinatorServerLogin,
    SteamDatagramHostedAddress, SteamNetworkingConfigValue_t, SteamNetworkingFakeIPResult_t,
    SteamNetworkingIPAddr, SteamNetworkingIdentity, SteamNetworkingPOPID,
};

/// `k_EResultFail`.
const FAIL: i32 = sockworks::EResult::Fail.code();
/// `k_EResultInvalidParam`.
const INVALID_PARAM: i32 = sockworks::EResult::InvalidParam.code();
/// `k_EResultIPNotFound`: GNS's answer when a connection has no FakeIP.
const IP_NOT_FOUND: i32 = 31;

/// `ReceivedRelayAuthTicket`: no relay network: false.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_ReceivedRelayAuthTicket(
    _self: *mut c_void,
    _ticket: *const c_void,
    _size: c_int,
    _parsed: *mut c_void,
) -> bool {
    false
}

/// `FindRelayAuthTicketForServer`: no tickets: 0 seconds.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_FindRelayAuthTicketForServer(
    _self: *mut c_void,
    _server: *const SteamNetworkingIdentity,
    _virtual_port: c_int,
    _parsed: *mut c_void,
) -> c_int {
    0
}

/// `ConnectToHostedDedicatedServer`: no relay network: 0.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_ConnectToHostedDedicatedServer(
    _self: *mut c_void,
    _target: *const SteamNetworkingIdentity,
    _virtual_port: c_int,
    _n: c_int,
    _opts: *const SteamNetworkingConfigValue_t,
) -> HSteamNetConnection {
    0
}

/// `GetHostedDedicatedServerPort`: not hosted in a relay data center: 0.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerPort(
    _self: *mut c_void,
) -> u16 {
    0
}

/// `GetHostedDedicatedServerPOPID`: 0.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerPOPID(
    _self: *mut c_void,
) -> SteamNetworkingPOPID {
    0
}

/// `GetHostedDedicatedServerAddress`: Fail (no relay network).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerAddress(
    _self: *mut c_void,
    _routing: *mut SteamDatagramHostedAddress,
) -> i32 {
    guard(FAIL, || {
        with(FAIL, |s| s.get_hosted_dedicated_server_address().code())
    })
}

/// `CreateHostedDedicatedServerListenSocket`: 0.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_CreateHostedDedicatedServerListenSocket(
    _self: *mut c_void,
    _virtual_port: c_int,
    _n: c_int,
    _opts: *const SteamNetworkingConfigValue_t,
) -> HSteamListenSocket {
    0
}

/// `GetGameCoordinatorServerLogin`: Fail.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetGameCoordinatorServerLogin(
    _self: *mut c_void,
    _login: *mut SteamDatagramGameCoordinatorServerLogin,
    _size: *mut c_int,
    _blob: *mut c_void,
) -> i32 {
    guard(FAIL, || {
        with(FAIL, |s| s.get_game_coordinator_server_login().code())
    })
}

// The calls below exist only as virtual methods (no flat export in GNS 1.6).

/// `BeginAsyncRequestFakeIP`: FakeIP needs Steam (as in open-source GNS): false.
pub(crate) extern "C" fn begin_async_request_fake_ip(_self: *mut c_void, _ports: c_int) -> bool {
    false
}

/// `GetFakeIP`: no FakeIP to report. The public headers declare
/// `SteamNetworkingFakeIPResult_t` without defining it, so a program built against them
/// cannot read one either: nothing is written.
pub(crate) extern "C" fn get_fake_ip(
    _self: *mut c_void,
    _first_port: c_int,
    _info: *mut SteamNetworkingFakeIPResult_t,
) {
}

/// `CreateListenSocketP2PFakeIP`: 0.
pub(crate) extern "C" fn create_listen_socket_p2p_fake_ip(
    _self: *mut c_void,
    _port: c_int,
    _n: c_int,
    _opts: *const SteamNetworkingConfigValue_t,
) -> HSteamListenSocket {
    0
}

/// `GetRemoteFakeIPForConnection`: InvalidParam for a bad handle, else IPNotFound (GNS).
pub(crate) extern "C" fn get_remote_fake_ip_for_connection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    _out: *mut SteamNetworkingIPAddr,
) -> i32 {
    guard(INVALID_PARAM, || {
        with(INVALID_PARAM, |s| {
            if s.get_connection_info(sockworks::Connection(conn)).is_some() {
                IP_NOT_FOUND
            } else {
                INVALID_PARAM
            }
        })
    })
}

/// `CreateFakeUDPPort`: null.
pub(crate) extern "C" fn create_fake_udp_port(_self: *mut c_void, _port: c_int) -> *mut c_void {
    std::ptr::null_mut()
}
