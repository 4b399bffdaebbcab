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

/// `GetHostedDedicatedServerPort`: the port relays forward to (`SDR_LISTEN_PORT`), 0 when
/// not hosted.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerPort(
    _self: *mut c_void,
) -> u16 {
    guard(0, || with(0, |s| s.get_hosted_dedicated_server_port()))
}

/// `GetHostedDedicatedServerPOPID`: the data center's POP id, 0 when not hosted.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerPOPID(
    _self: *mut c_void,
) -> SteamNetworkingPOPID {
    guard(0, || with(0, |s| s.get_hosted_dedicated_server_pop_id()))
}

/// The Steamworks SDK's layout of `SteamDatagramHostedAddress` (the public GNS headers only
/// declare it): a size and 128 bytes of opaque routing data.
#[repr(C)]
struct HostedAddressLayout {
    cb_size: c_int,
    data: [u8; 128],
}

/// `GetHostedDedicatedServerAddress`: fills the routing blob (the POP code and this server's
/// sealed address); InvalidState when not hosted, InvalidParam for a null pointer.
///
/// # Safety
/// `routing` is null or points to a `SteamDatagramHostedAddress` (132 bytes, SDK layout).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerAddress(
    _self: *mut c_void,
    routing: *mut SteamDatagramHostedAddress,
) -> i32 {
    guard(FAIL, || {
        with(FAIL, |s| match s.get_hosted_dedicated_server_address() {
            Ok(blob) => {
                // SAFETY: the caller passes null or a writable SteamDatagramHostedAddress.
                let Some(out) = (unsafe { routing.cast::<HostedAddressLayout>().as_mut() }) else {
                    return sockworks::EResult::InvalidParam.code();
                };
                let n = blob.len().min(out.data.len());
                out.data[..n].copy_from_slice(&blob[..n]);
                out.data[n..].fill(0);
                out.cb_size = c_int::try_from(n).unwrap_or(0);
                sockworks::EResult::Ok.code()
            }
            Err(e) => e.code(),
        })
    })
}

/// `CreateHostedDedicatedServerListenSocket`: listens on the hosted port; 0 when not hosted.
///
/// # Safety
/// `opts` points to `n` config values (or is null with `n` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_CreateHostedDedicatedServerListenSocket(
    _self: *mut c_void,
    virtual_port: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamListenSocket {
    guard(0, || {
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { crate::sockets::options(n, opts) }) else {
            return 0;
        };
        with(0, |s| {
            s.create_hosted_dedicated_server_listen_socket(virtual_port, &opts)
                .0
        })
    })
}

/// `GetGameCoordinatorServerLogin`: Fail.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_GetGameCoordinatorServerLogin(
    _self: *mut c_void,
    _login: *mut SteamDatagramGameCoordinatorServerLogin,
    _size: *mut c_int,
    _blob: *mut c_void,
) -> i32 {
    // The SDK's login struct is opaque in GNS's public headers, and this call's C form is
    // not defined by open-source GNS: it keeps failing here (the Rust API signs logins).
    guard(FAIL, || with(FAIL, |_| sockworks::EResult::Fail.code()))
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
