//! The C++ interface objects: vtables laid out as GNS 1.6's class declarations under the
//! Itanium C++ ABI (Linux x86-64), pointing at the flat calls.
//!
//! ```text
//!  SteamNetworkingSockets_LibV12() ─► Object { vptr } ─► [CreateListenSocketIP, ConnectBy…]
//!                                                         each slot: extern "C" fn(this, …)
//! ```
//!
//! Under the Itanium ABI an object of a class with virtual methods starts with a pointer to
//! its table's first function slot; pure virtual methods take slots in declaration order
//! (overloads included, no reordering); a member function is called with `this` as a hidden
//! first argument, in the C calling convention otherwise, and references are pointers. The
//! three interfaces have protected, non-virtual destructors, so no destructor slots. A flat
//! call takes the interface pointer first, so the same functions fill both doors. The
//! `*_METHODS` name lists are checked against the headers' declarations by a test.

use std::ffi::{c_char, c_int, c_void};

use crate::addr::{
    SteamNetworkingIPAddr_GetFakeIPType, SteamNetworkingIPAddr_ParseString,
    SteamNetworkingIPAddr_ToString,
};
use crate::auth as a;
use crate::identity::{SteamNetworkingIdentity_ParseString, SteamNetworkingIdentity_ToString};
use crate::introspect as i;
use crate::networking_messages as nm;
use crate::p2p as p;
use crate::sockets as s;
use crate::types::{SteamNetworkingIPAddr, SteamNetworkingIdentity};
use crate::unsupported as u;

/// A C++ interface object: only the vtable pointer (the interfaces have no data members).
#[repr(C)]
pub struct Object {
    vptr: *const *const (),
}

// SAFETY: the object is immutable and points at a table of immutable function pointers.
unsafe impl Sync for Object {}

impl Object {
    /// The pointer C++ receives (`ISteamNetworkingSockets *` etc.).
    pub fn as_ptr(&'static self) -> *mut c_void {
        std::ptr::from_ref(self).cast_mut().cast::<c_void>()
    }
}

/// Builds a vtable (slots in order) and the matching method-name list.
macro_rules! vtable {
    ($fns:ident, $names:ident, [$($name:literal => $f:expr),* $(,)?]) => {
        const $fns: &[*const ()] = &[$($f as *const ()),*];
        /// The class's pure virtual methods in declaration order, as the slots are filled.
        pub const $names: &[&str] = &[$($name),*];
    };
}

vtable!(SOCKETS_FNS, SOCKETS_METHODS, [
    "CreateListenSocketIP" => s::SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP,
    "ConnectByIPAddress" => s::SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress,
    "CreateListenSocketP2P" => p::SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P,
    "ConnectP2P" => p::SteamAPI_ISteamNetworkingSockets_ConnectP2P,
    "AcceptConnection" => s::SteamAPI_ISteamNetworkingSockets_AcceptConnection,
    "CloseConnection" => s::SteamAPI_ISteamNetworkingSockets_CloseConnection,
    "CloseListenSocket" => s::SteamAPI_ISteamNetworkingSockets_CloseListenSocket,
    "SetConnectionUserData" => i::SteamAPI_ISteamNetworkingSockets_SetConnectionUserData,
    "GetConnectionUserData" => i::SteamAPI_ISteamNetworkingSockets_GetConnectionUserData,
    "SetConnectionName" => i::SteamAPI_ISteamNetworkingSockets_SetConnectionName,
    "GetConnectionName" => i::SteamAPI_ISteamNetworkingSockets_GetConnectionName,
    "SendMessageToConnection" => s::SteamAPI_ISteamNetworkingSockets_SendMessageToConnection,
    "SendMessages" => s::SteamAPI_ISteamNetworkingSockets_SendMessages,
    "FlushMessagesOnConnection" => s::SteamAPI_ISteamNetworkingSockets_FlushMessagesOnConnection,
    "ReceiveMessagesOnConnection" => s::SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection,
    "GetConnectionInfo" => i::SteamAPI_ISteamNetworkingSockets_GetConnectionInfo,
    "GetConnectionRealTimeStatus" => i::SteamAPI_ISteamNetworkingSockets_GetConnectionRealTimeStatus,
    "GetDetailedConnectionStatus" => i::SteamAPI_ISteamNetworkingSockets_GetDetailedConnectionStatus,
    "GetListenSocketAddress" => i::SteamAPI_ISteamNetworkingSockets_GetListenSocketAddress,
    "CreateSocketPair" => s::SteamAPI_ISteamNetworkingSockets_CreateSocketPair,
    "ConfigureConnectionLanes" => s::SteamAPI_ISteamNetworkingSockets_ConfigureConnectionLanes,
    "GetIdentity" => a::SteamAPI_ISteamNetworkingSockets_GetIdentity,
    "InitAuthentication" => a::SteamAPI_ISteamNetworkingSockets_InitAuthentication,
    "GetAuthenticationStatus" => a::SteamAPI_ISteamNetworkingSockets_GetAuthenticationStatus,
    "CreatePollGroup" => s::SteamAPI_ISteamNetworkingSockets_CreatePollGroup,
    "DestroyPollGroup" => s::SteamAPI_ISteamNetworkingSockets_DestroyPollGroup,
    "SetConnectionPollGroup" => s::SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup,
    "ReceiveMessagesOnPollGroup" => s::SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup,
    "ReceivedRelayAuthTicket" => u::SteamAPI_ISteamNetworkingSockets_ReceivedRelayAuthTicket,
    "FindRelayAuthTicketForServer" => u::SteamAPI_ISteamNetworkingSockets_FindRelayAuthTicketForServer,
    "ConnectToHostedDedicatedServer" => u::SteamAPI_ISteamNetworkingSockets_ConnectToHostedDedicatedServer,
    "GetHostedDedicatedServerPort" => u::SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerPort,
    "GetHostedDedicatedServerPOPID" => u::SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerPOPID,
    "GetHostedDedicatedServerAddress" => u::SteamAPI_ISteamNetworkingSockets_GetHostedDedicatedServerAddress,
    "CreateHostedDedicatedServerListenSocket" => u::SteamAPI_ISteamNetworkingSockets_CreateHostedDedicatedServerListenSocket,
    "GetGameCoordinatorServerLogin" => u::SteamAPI_ISteamNetworkingSockets_GetGameCoordinatorServerLogin,
    "ConnectP2PCustomSignaling" => p::SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling,
    "ReceivedP2PCustomSignal" => p::SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal,
    "GetCertificateRequest" => a::SteamAPI_ISteamNetworkingSockets_GetCertificateRequest,
    "SetCertificate" => a::SteamAPI_ISteamNetworkingSockets_SetCertificate,
    "ResetIdentity" => a::reset_identity,
    "RunCallbacks" => s::SteamAPI_ISteamNetworkingSockets_RunCallbacks,
    "BeginAsyncRequestFakeIP" => crate::fakeip::begin_async_request_fake_ip,
    "GetFakeIP" => crate::fakeip::get_fake_ip,
    "CreateListenSocketP2PFakeIP" => crate::fakeip::create_listen_socket_p2p_fake_ip,
    "GetRemoteFakeIPForConnection" => crate::fakeip::get_remote_fake_ip_for_connection,
    "CreateFakeUDPPort" => crate::fakeip::create_fake_udp_port,
]);

vtable!(UTILS_FNS, UTILS_METHODS, [
    "AllocateMessage" => crate::message::SteamAPI_ISteamNetworkingUtils_AllocateMessage,
    "GetRelayNetworkStatus" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetRelayNetworkStatus,
    "GetLocalPingLocation" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetLocalPingLocation,
    "EstimatePingTimeBetweenTwoLocations" => crate::utils::SteamAPI_ISteamNetworkingUtils_EstimatePingTimeBetweenTwoLocations,
    "EstimatePingTimeFromLocalHost" => crate::utils::SteamAPI_ISteamNetworkingUtils_EstimatePingTimeFromLocalHost,
    "ConvertPingLocationToString" => crate::utils::SteamAPI_ISteamNetworkingUtils_ConvertPingLocationToString,
    "ParsePingLocationString" => crate::utils::SteamAPI_ISteamNetworkingUtils_ParsePingLocationString,
    "CheckPingDataUpToDate" => crate::utils::SteamAPI_ISteamNetworkingUtils_CheckPingDataUpToDate,
    "GetPingToDataCenter" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetPingToDataCenter,
    "GetDirectPingToPOP" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetDirectPingToPOP,
    "GetPOPCount" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetPOPCount,
    "GetPOPList" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetPOPList,
    "GetLocalTimestamp" => crate::utils::SteamAPI_ISteamNetworkingUtils_GetLocalTimestamp,
    "SetDebugOutputFunction" => crate::utils::SteamAPI_ISteamNetworkingUtils_SetDebugOutputFunction,
    "GetIPv4FakeIPType" => crate::utils::get_ipv4_fake_ip_type,
    "GetRealIdentityForFakeIP" => crate::utils::get_real_identity_for_fake_ip,
    "SetConfigValue" => crate::config::SteamAPI_ISteamNetworkingUtils_SetConfigValue,
    "GetConfigValue" => crate::config::SteamAPI_ISteamNetworkingUtils_GetConfigValue,
    "GetConfigValueInfo" => crate::config::SteamAPI_ISteamNetworkingUtils_GetConfigValueInfo,
    "IterateGenericEditableConfigValues" => crate::config::SteamAPI_ISteamNetworkingUtils_IterateGenericEditableConfigValues,
    "SteamNetworkingIPAddr_ToString" => v_ipaddr_to_string,
    "SteamNetworkingIPAddr_ParseString" => v_ipaddr_parse_string,
    "SteamNetworkingIPAddr_GetFakeIPType" => v_ipaddr_get_fake_ip_type,
    "SteamNetworkingIdentity_ToString" => v_identity_to_string,
    "SteamNetworkingIdentity_ParseString" => v_identity_parse_string,
]);

vtable!(MESSAGES_FNS, MESSAGES_METHODS, [
    "SendMessageToUser" => nm::SteamAPI_ISteamNetworkingMessages_SendMessageToUser,
    "ReceiveMessagesOnChannel" => nm::SteamAPI_ISteamNetworkingMessages_ReceiveMessagesOnChannel,
    "AcceptSessionWithUser" => nm::SteamAPI_ISteamNetworkingMessages_AcceptSessionWithUser,
    "CloseSessionWithUser" => nm::SteamAPI_ISteamNetworkingMessages_CloseSessionWithUser,
    "CloseChannelWithUser" => nm::SteamAPI_ISteamNetworkingMessages_CloseChannelWithUser,
    "GetSessionConnectionInfo" => nm::SteamAPI_ISteamNetworkingMessages_GetSessionConnectionInfo,
]);

// The utils' string helpers are virtual methods whose free-function twins take no `this`.

unsafe extern "C" fn v_ipaddr_to_string(
    _this: *mut c_void,
    addr: *const SteamNetworkingIPAddr,
    buf: *mut c_char,
    size: usize,
    with_port: bool,
) {
    // SAFETY: forwarded from the C++ caller, same contract.
    unsafe { SteamNetworkingIPAddr_ToString(addr, buf, size, with_port) }
}

unsafe extern "C" fn v_ipaddr_parse_string(
    _this: *mut c_void,
    addr: *mut SteamNetworkingIPAddr,
    text: *const c_char,
) -> bool {
    // SAFETY: forwarded from the C++ caller, same contract.
    unsafe { SteamNetworkingIPAddr_ParseString(addr, text) }
}

unsafe extern "C" fn v_ipaddr_get_fake_ip_type(
    _this: *mut c_void,
    addr: *const SteamNetworkingIPAddr,
) -> c_int {
    // SAFETY: forwarded from the C++ caller, same contract.
    unsafe { SteamNetworkingIPAddr_GetFakeIPType(addr) }
}

unsafe extern "C" fn v_identity_to_string(
    _this: *mut c_void,
    identity: *const SteamNetworkingIdentity,
    buf: *mut c_char,
    size: usize,
) {
    // SAFETY: forwarded from the C++ caller, same contract.
    unsafe { SteamNetworkingIdentity_ToString(identity, buf, size) }
}

unsafe extern "C" fn v_identity_parse_string(
    _this: *mut c_void,
    identity: *mut SteamNetworkingIdentity,
    text: *const c_char,
) -> bool {
    // The virtual form has no size argument: the identity is the header's own struct.
    let size = size_of::<SteamNetworkingIdentity>();
    // SAFETY: forwarded from the C++ caller, same contract.
    unsafe { SteamNetworkingIdentity_ParseString(identity, size, text) }
}

static SOCKETS: Object = Object {
    vptr: SOCKETS_FNS.as_ptr(),
};
static UTILS: Object = Object {
    vptr: UTILS_FNS.as_ptr(),
};
static MESSAGES: Object = Object {
    vptr: MESSAGES_FNS.as_ptr(),
};

/// `SteamNetworkingSockets_LibV12`: the interface, or null before Init (as GNS).
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingSockets_LibV12() -> *mut c_void {
    if crate::instance::sockets().is_some() {
        SOCKETS.as_ptr()
    } else {
        std::ptr::null_mut()
    }
}

/// `SteamGameServerNetworkingSockets_LibV12`: the same instance (open-source GNS has one).
#[unsafe(no_mangle)]
pub extern "C" fn SteamGameServerNetworkingSockets_LibV12() -> *mut c_void {
    SteamNetworkingSockets_LibV12()
}

/// `SteamAPI_SteamNetworkingSockets_v009`: the flat accessor of the same object.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_SteamNetworkingSockets_v009() -> *mut c_void {
    SteamNetworkingSockets_LibV12()
}

/// `SteamNetworkingUtils_LibV4`: always available, before Init too (as GNS).
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingUtils_LibV4() -> *mut c_void {
    UTILS.as_ptr()
}

/// `SteamAPI_SteamNetworkingUtils_v003`: the flat accessor of the same object.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_SteamNetworkingUtils_v003() -> *mut c_void {
    UTILS.as_ptr()
}

/// `SteamNetworkingMessages_LibV2`: the (not yet functional) messages interface, null
/// before Init.
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingMessages_LibV2() -> *mut c_void {
    if crate::instance::sockets().is_some() {
        MESSAGES.as_ptr()
    } else {
        std::ptr::null_mut()
    }
}

/// `SteamGameServerNetworkingMessages_LibV2`: the same object.
#[unsafe(no_mangle)]
pub extern "C" fn SteamGameServerNetworkingMessages_LibV2() -> *mut c_void {
    SteamNetworkingMessages_LibV2()
}

/// `SteamAPI_SteamNetworkingMessages_v002`: the flat accessor of the same object.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_SteamNetworkingMessages_v002() -> *mut c_void {
    SteamNetworkingMessages_LibV2()
}

/// `SteamAPI_SteamNetworkingMessage_t_Release`: calls the message's own release function,
/// as the header's inline `Release()` does.
///
/// # Safety
/// `msg` is null or a message from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingMessage_t_Release(
    msg: *mut crate::types::SteamNetworkingMessage_t,
) {
    crate::guard::guard((), || {
        // SAFETY: the caller passes null or one of our messages; reading its release pointer
        // is in bounds (a released message of ours stays allocated, see `message`).
        let Some(release) = (unsafe { msg.as_ref() }).and_then(|m| m.m_pfnRelease) else {
            return;
        };
        // SAFETY: the message's own release function, for this message.
        unsafe { release(msg) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_names_agree_in_length() {
        assert_eq!(SOCKETS_FNS.len(), SOCKETS_METHODS.len());
        assert_eq!(SOCKETS_FNS.len(), 47);
        assert_eq!(UTILS_FNS.len(), 25);
        assert_eq!(MESSAGES_FNS.len(), 6);
        assert!(SOCKETS_FNS.iter().all(|f| !f.is_null()));
    }
}
