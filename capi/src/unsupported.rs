//! Calls of Valve's relay network and hosted servers whose C forms Sockworks does not
//! implement (ticket calls, the coordinator login) return the failure value GNS documents, so
//! callers take their documented error path; the hosted-server calls forward to the Rust API.
//! The README's feature table lists them. (FakeIP is `crate::fakeip`.)

use std::ffi::{c_int, c_void};

use crate::guard::guard;
use crate::instance::with;
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, SteamDatagramGameCoordinatorServerLogin,
    SteamDatagramHostedAddress, SteamNetworkingConfigValue_t, SteamNetworkingIdentity,
    SteamNetworkingPOPID,
};

/// `k_EResultFail`.
const FAIL: i32 = sockworks::EResult::Fail.code();

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
