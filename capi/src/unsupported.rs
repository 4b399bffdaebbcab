//! The flat calls of Valve's relay network, on our relay fleet: hosted servers, relay
//! tickets and the game-coordinator login (`SteamDatagram*` structs in the Steamworks SDK's
//! layout, which GNS's headers only declare). FakeIP is `crate::fakeip`.
use std::ffi::{c_int, c_void};

use crate::guard::guard;
use crate::instance::with;
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, SteamDatagramGameCoordinatorServerLogin,
    SteamDatagramHostedAddress, SteamDatagramRelayAuthTicket, SteamNetworkingConfigValue_t,
    SteamNetworkingIdentity, SteamNetworkingPOPID,
};

/// `k_EResultFail`.
const FAIL: i32 = sockworks::EResult::Fail.code();
/// `k_EResultInvalidParam`.
const INVALID_PARAM: i32 = sockworks::EResult::InvalidParam.code();

/// Largest ticket `ReceivedRelayAuthTicket` looks at (`k_cbSteamDatagramMaxSerializedTicket`).
const MAX_TICKET: usize = 512;

/// `ReceivedRelayAuthTicket`: caches a signed relay auth ticket from the backend; false for a
/// null, malformed, oversized or expired one. `parsed` is not written: the SDK struct is not
/// defined by GNS's public headers (only declared), so no program built on them reads it.
///
/// # Safety
/// `ticket` is null or points to `size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ReceivedRelayAuthTicket(
    _self: *mut c_void,
    ticket: *const c_void,
    size: c_int,
    _parsed: *mut SteamDatagramRelayAuthTicket,
) -> bool {
    guard(false, || {
        let Ok(len) = usize::try_from(size) else {
            return false;
        };
        if ticket.is_null() || len == 0 || len > MAX_TICKET {
            return false;
        }
        // SAFETY: the caller passes `size` readable bytes at `ticket` (non-null, checked).
        let bytes = unsafe { std::slice::from_raw_parts(ticket.cast::<u8>(), len) };
        with(false, |s| s.received_relay_auth_ticket(bytes).is_some())
    })
}

/// `FindRelayAuthTicketForServer`: seconds until the latest-expiring cached ticket for
/// (server, virtual port) expires; 0 when none (or a null or invalid identity). `parsed` is
/// not written (see `ReceivedRelayAuthTicket`).
///
/// # Safety
/// `server` is null or a valid identity.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_FindRelayAuthTicketForServer(
    _self: *mut c_void,
    server: *const SteamNetworkingIdentity,
    virtual_port: c_int,
    _parsed: *mut SteamDatagramRelayAuthTicket,
) -> c_int {
    guard(0, || {
        // SAFETY: the caller passes null or a valid identity.
        let Some(id) = (unsafe { server.as_ref() }).and_then(|i| i.to_identity()) else {
            return 0;
        };
        with(0, |s| {
            s.find_relay_auth_ticket_for_server(&id, virtual_port).0
        })
    })
}

/// `ConnectToHostedDedicatedServer`: connects through a relay (`SOCKWORKS_RELAYS`) with the
/// latest-expiring cached ticket for the server; 0 without a ticket, a relay, a valid
/// identity or valid options.
///
/// # Safety
/// `target` is null or a valid identity; `opts` points to `n` config values (or is null with
/// `n` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ConnectToHostedDedicatedServer(
    _self: *mut c_void,
    target: *const SteamNetworkingIdentity,
    virtual_port: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamNetConnection {
    guard(0, || {
        // SAFETY: the caller passes null or a valid identity.
        let Some(id) = (unsafe { target.as_ref() }).and_then(|i| i.to_identity()) else {
            return 0;
        };
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { crate::sockets::options(n, opts) }) else {
            return 0;
        };
        with(0, |s| {
            s.connect_to_hosted_dedicated_server(&id, virtual_port, &opts)
                .0
        })
    })
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

impl HostedAddressLayout {
    /// Holds `blob` (cut to 128 bytes), zero-filling the rest.
    fn set(&mut self, blob: &[u8]) {
        let n = blob.len().min(self.data.len());
        self.data[..n].copy_from_slice(&blob[..n]);
        self.data[n..].fill(0);
        self.cb_size = c_int::try_from(n).unwrap_or(0);
    }
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
                out.set(&blob);
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

/// The Steamworks SDK's layout of `SteamDatagramGameCoordinatorServerLogin` (GNS's headers
/// only declare it): who the server is, where, when, and the application's data.
#[repr(C)]
struct LoginLayout {
    identity: SteamNetworkingIdentity,
    routing: HostedAddressLayout,
    app_id: u32,
    rtime: u32,
    cb_app_data: c_int,
    app_data: [u8; MAX_LOGIN_APP_DATA],
}

/// `k_cbMaxSteamDatagramGameCoordinatorServerLoginAppData`.
const MAX_LOGIN_APP_DATA: usize = 2048;

/// `GetGameCoordinatorServerLogin`: signs this hosted server's login for its backend. The
/// application fills `m_cbAppData` / `m_appData` of `login` (SDK layout); the call fills
/// the identity, routing blob, app id and time, and writes the signed blob (at most 4,096
/// bytes) to `blob`, whose size `*size` gives on entry and receives on return. InvalidParam
/// for null pointers, app data over 2,048 bytes or a blob buffer too small; InvalidState when
/// not hosted or without a CA-signed certificate (GNS: not logged on).
///
/// # Safety
/// `login` is null or a writable `SteamDatagramGameCoordinatorServerLogin` (SDK layout);
/// `size` is null or writable; `blob` is null or has `*size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetGameCoordinatorServerLogin(
    _self: *mut c_void,
    login: *mut SteamDatagramGameCoordinatorServerLogin,
    size: *mut c_int,
    blob: *mut c_void,
) -> i32 {
    guard(FAIL, || {
        // SAFETY: the caller passes null or a writable login struct of the SDK layout.
        let Some(info) = (unsafe { login.cast::<LoginLayout>().as_mut() }) else {
            return INVALID_PARAM;
        };
        // SAFETY: the caller passes null or a writable int.
        let Some(size) = (unsafe { size.as_mut() }) else {
            return INVALID_PARAM;
        };
        let Ok(app_len) = usize::try_from(info.cb_app_data) else {
            return INVALID_PARAM;
        };
        let Ok(capacity) = usize::try_from(*size) else {
            return INVALID_PARAM;
        };
        if app_len > info.app_data.len() || blob.is_null() {
            return INVALID_PARAM;
        }
        let app_data = info.app_data[..app_len].to_vec();
        with(FAIL, |s| match s.game_coordinator_server_login(&app_data) {
            Ok((fields, signed)) => {
                if signed.len() > capacity {
                    return INVALID_PARAM;
                }
                // SAFETY: `blob` is non-null (checked) with `capacity` writable bytes, and
                // the signed login fits.
                unsafe {
                    std::ptr::copy_nonoverlapping(signed.as_ptr(), blob.cast::<u8>(), signed.len());
                }
                *size = c_int::try_from(signed.len()).unwrap_or(0);
                if let Ok(id) = sockworks::engine::wire::identity::Identity::parse(&fields.identity)
                {
                    info.identity = SteamNetworkingIdentity::from_identity(&id);
                }
                info.routing.set(&fields.routing);
                info.app_id = fields.app_id;
                info.rtime = u32::try_from(fields.rtime).unwrap_or(u32::MAX);
                sockworks::EResult::Ok.code()
            }
            Err(e) => e.code(),
        })
    })
}
