//! The headers' structs, field for field (`#[repr(C)]`, same names and packing), and the
//! conversions to Sockworks' types (in `convert`).
//!
//! Packing follows the Linux x86_64 build of the headers: `SteamNetworkingIPAddr` and
//! `SteamNetworkingIdentity` are `pack(1)`; the callback structs and the connection info and
//! status structs are `pack(4)` (`VALVE_CALLBACK_PACK_SMALL`), so their `int64` fields may sit
//! at 4-byte offsets: read and write them by value, never through a reference. The test
//! `tests/layout.rs` checks every size and offset against the C++ compiler's view of the
//! real headers.

mod consts;
mod convert;

pub use consts::*;
pub use convert::{fill_c_chars, read_c_chars};

use std::ffi::{c_char, c_void};

/// A connection handle (`HSteamNetConnection`); 0 is invalid.
pub type HSteamNetConnection = u32;
/// A listen socket handle; 0 is invalid.
pub type HSteamListenSocket = u32;
/// A poll group handle; 0 is invalid.
pub type HSteamNetPollGroup = u32;
/// A relay point of presence id (SDR only).
pub type SteamNetworkingPOPID = u32;
/// Microseconds on the library's clock.
pub type SteamNetworkingMicroseconds = i64;
/// The error text buffer the `Init` and `CreateSocketPair`-style calls fill.
pub type SteamNetworkingErrMsg = [c_char; 1024];
/// `EResult` (values `k_EResult*`).
pub type EResult = i32;
/// `ESteamNetworkingConnectionState`.
pub type ESteamNetworkingConnectionState = i32;
/// `ESteamNetworkingAvailability`.
pub type ESteamNetworkingAvailability = i32;
/// `ESteamNetworkingIdentityType`.
pub type ESteamNetworkingIdentityType = i32;
/// `ESteamNetworkingFakeIPType`.
pub type ESteamNetworkingFakeIPType = i32;
/// `ESteamNetworkingConfigValue`.
pub type ESteamNetworkingConfigValue = i32;
/// `ESteamNetworkingConfigDataType`.
pub type ESteamNetworkingConfigDataType = i32;
/// `ESteamNetworkingConfigScope`.
pub type ESteamNetworkingConfigScope = i32;
/// `ESteamNetworkingGetConfigValueResult`.
pub type ESteamNetworkingGetConfigValueResult = i32;
/// `ESteamNetworkingSocketsDebugOutputType`.
pub type ESteamNetworkingSocketsDebugOutputType = i32;

/// The status-changed callback's typedef.
pub type FnSteamNetConnectionStatusChanged =
    Option<unsafe extern "C" fn(*mut SteamNetConnectionStatusChangedCallback_t)>;
/// The authentication-status callback's typedef.
pub type FnSteamNetAuthenticationStatusChanged =
    Option<unsafe extern "C" fn(*mut SteamNetAuthenticationStatus_t)>;
/// The relay-network-status callback's typedef.
pub type FnSteamRelayNetworkStatusChanged =
    Option<unsafe extern "C" fn(*mut SteamRelayNetworkStatus_t)>;
/// The debug output callback's typedef.
pub type FSteamNetworkingSocketsDebugOutput =
    Option<unsafe extern "C" fn(ESteamNetworkingSocketsDebugOutputType, *const c_char)>;

/// The address union of `SteamNetworkingIPAddr` (IPv6, or IPv4-mapped).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub union SteamNetworkingIPAddr_Union {
    /// The 16 address bytes, network order.
    pub m_ipv6: [u8; 16],
    /// The IPv4-mapped view: 8 zero bytes, `0xffff`, 4 address bytes.
    pub m_ipv4: IPv4MappedAddress,
}

/// The IPv4-mapped view of an address (`::ffff:a.b.c.d`).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IPv4MappedAddress {
    /// Zero.
    pub m_8zeros: u64,
    /// Zero.
    pub m_0000: u16,
    /// `0xffff`.
    pub m_ffff: u16,
    /// The IPv4 address, network order.
    pub m_ip: [u8; 4],
}

/// An IP address and port (`pack(1)`, 18 bytes); IPv4 is stored IPv4-mapped.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct SteamNetworkingIPAddr {
    /// The address.
    pub u: SteamNetworkingIPAddr_Union,
    /// Port, host byte order.
    pub m_port: u16,
}

impl SteamNetworkingIPAddr {
    /// `k_cchMaxString`: the longest `ToString` output plus its NUL.
    pub const k_cchMaxString: usize = 48;
}

/// The identity union (`pack(1)`, 128 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub union SteamNetworkingIdentity_Union {
    /// `k_ESteamNetworkingIdentityType_SteamID`.
    pub m_steamID64: u64,
    /// `k_ESteamNetworkingIdentityType_SonyPSN`.
    pub m_PSNID: u64,
    /// `k_ESteamNetworkingIdentityType_GenericString`, NUL-terminated.
    pub m_szGenericString: [c_char; 32],
    /// `k_ESteamNetworkingIdentityType_XboxPairwiseID`, NUL-terminated.
    pub m_szXboxPairwiseID: [c_char; 33],
    /// `k_ESteamNetworkingIdentityType_GenericBytes`.
    pub m_genericBytes: [u8; 32],
    /// `k_ESteamNetworkingIdentityType_UnknownType`: the whole `prefix:data` string.
    pub m_szUnknownRawString: [c_char; 128],
    /// `k_ESteamNetworkingIdentityType_IPAddress`.
    pub m_ip: SteamNetworkingIPAddr,
    /// Padding for future types.
    pub m_reserved: [u32; 32],
}

/// Who a peer is (`pack(1)`, 136 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct SteamNetworkingIdentity {
    /// `ESteamNetworkingIdentityType`.
    pub m_eType: ESteamNetworkingIdentityType,
    /// Bytes of the union in use.
    pub m_cbSize: i32,
    /// The value.
    pub u: SteamNetworkingIdentity_Union,
}

impl SteamNetworkingIdentity {
    /// `k_cchMaxString`: the longest `ToString` output plus its NUL.
    pub const k_cchMaxString: usize = 128;
    /// `k_cchMaxGenericString`, NUL included.
    pub const k_cchMaxGenericString: usize = 32;
    /// `k_cchMaxXboxPairwiseID`, NUL included.
    pub const k_cchMaxXboxPairwiseID: usize = 33;
    /// `k_cbMaxGenericBytes`.
    pub const k_cbMaxGenericBytes: usize = 32;
}

/// `SteamNetConnectionInfo_t` (`pack(4)`, 696 bytes).
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct SteamNetConnectionInfo_t {
    /// The peer's identity.
    pub m_identityRemote: SteamNetworkingIdentity,
    /// The application's user data.
    pub m_nUserData: i64,
    /// The listen socket it arrived on, or 0.
    pub m_hListenSocket: HSteamListenSocket,
    /// The peer's address.
    pub m_addrRemote: SteamNetworkingIPAddr,
    /// Padding.
    pub m__pad1: u16,
    /// The remote relay POP (SDR only).
    pub m_idPOPRemote: SteamNetworkingPOPID,
    /// The relay in use (SDR only).
    pub m_idPOPRelay: SteamNetworkingPOPID,
    /// `ESteamNetworkingConnectionState`.
    pub m_eState: ESteamNetworkingConnectionState,
    /// `ESteamNetConnectionEnd` once ended.
    pub m_eEndReason: i32,
    /// Debug text of the end reason, NUL-terminated.
    pub m_szEndDebug: [c_char; 128],
    /// A description for logs, NUL-terminated.
    pub m_szConnectionDescription: [c_char; 128],
    /// `k_nSteamNetworkConnectionInfoFlags_*`.
    pub m_nFlags: i32,
    /// Reserved.
    pub reserved: [u32; 63],
}

/// `SteamNetConnectionRealTimeStatus_t` (`pack(4)`, 120 bytes).
#[repr(C, packed(4))]
#[derive(Clone, Copy, Default)]
pub struct SteamNetConnectionRealTimeStatus_t {
    /// State.
    pub m_eState: ESteamNetworkingConnectionState,
    /// Ping, ms.
    pub m_nPing: i32,
    /// Local connection quality, 0..1 (−1 unknown).
    pub m_flConnectionQualityLocal: f32,
    /// The peer's view of the same.
    pub m_flConnectionQualityRemote: f32,
    /// Packets sent per second.
    pub m_flOutPacketsPerSec: f32,
    /// Bytes sent per second.
    pub m_flOutBytesPerSec: f32,
    /// Packets received per second.
    pub m_flInPacketsPerSec: f32,
    /// Bytes received per second.
    pub m_flInBytesPerSec: f32,
    /// Estimated send rate.
    pub m_nSendRateBytesPerSecond: i32,
    /// Unsent unreliable bytes.
    pub m_cbPendingUnreliable: i32,
    /// Unsent or queued-for-retry reliable bytes.
    pub m_cbPendingReliable: i32,
    /// Reliable bytes in flight.
    pub m_cbSentUnackedReliable: i32,
    /// Predicted µs until the last queued byte leaves.
    pub m_usecQueueTime: SteamNetworkingMicroseconds,
    /// Largest jitter seen, µs (−1 unknown).
    pub m_usecMaxJitter: i32,
    /// Reserved.
    pub reserved: [u32; 15],
}

/// `SteamNetConnectionRealTimeLaneStatus_t` (`pack(4)`, 64 bytes).
#[repr(C, packed(4))]
#[derive(Clone, Copy, Default)]
pub struct SteamNetConnectionRealTimeLaneStatus_t {
    /// Unsent unreliable bytes.
    pub m_cbPendingUnreliable: i32,
    /// Unsent or queued-for-retry reliable bytes.
    pub m_cbPendingReliable: i32,
    /// Reliable bytes in flight.
    pub m_cbSentUnackedReliable: i32,
    /// Reserved.
    pub _reservePad1: i32,
    /// Predicted µs until the lane's last queued byte leaves.
    pub m_usecQueueTime: SteamNetworkingMicroseconds,
    /// Reserved.
    pub reserved: [u32; 10],
}

/// A message (natural alignment, 216 bytes). Received ones are ours until released; the
/// application fills allocated ones and hands them to `SendMessages`.
#[repr(C)]
pub struct SteamNetworkingMessage_t {
    /// Payload.
    pub m_pData: *mut c_void,
    /// Payload size.
    pub m_cbSize: i32,
    /// Connection (received) or destination (sent).
    pub m_conn: HSteamNetConnection,
    /// The peer's identity (received).
    pub m_identityPeer: SteamNetworkingIdentity,
    /// The connection's user data when received.
    pub m_nConnUserData: i64,
    /// When it arrived, on `GetLocalTimestamp`'s clock.
    pub m_usecTimeReceived: SteamNetworkingMicroseconds,
    /// Message number on its lane.
    pub m_nMessageNumber: i64,
    /// Frees `m_pData` (messages the application filled itself).
    pub m_pfnFreeData: Option<unsafe extern "C" fn(*mut SteamNetworkingMessage_t)>,
    /// Releases the message; what `Release()` calls.
    pub m_pfnRelease: Option<unsafe extern "C" fn(*mut SteamNetworkingMessage_t)>,
    /// Channel (ISteamNetworkingMessages only).
    pub m_nChannel: i32,
    /// `k_nSteamNetworkingSend_*`.
    pub m_nFlags: i32,
    /// Application data (sent messages).
    pub m_nUserData: i64,
    /// Lane.
    pub m_idxLane: u16,
    /// Padding.
    pub _pad1__: u16,
}

/// The value union of `SteamNetworkingConfigValue_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union SteamNetworkingConfigValue_t_Value {
    /// `k_ESteamNetworkingConfig_Int32`.
    pub m_int32: i32,
    /// `k_ESteamNetworkingConfig_Int64`.
    pub m_int64: i64,
    /// `k_ESteamNetworkingConfig_Float`.
    pub m_float: f32,
    /// `k_ESteamNetworkingConfig_String`: the caller's NUL-terminated buffer.
    pub m_string: *const c_char,
    /// `k_ESteamNetworkingConfig_Ptr` (callbacks).
    pub m_ptr: *mut c_void,
}

/// One configuration option as passed in options arrays (16 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SteamNetworkingConfigValue_t {
    /// Which option.
    pub m_eValue: ESteamNetworkingConfigValue,
    /// Which union member holds the value.
    pub m_eDataType: ESteamNetworkingConfigDataType,
    /// The value.
    pub m_val: SteamNetworkingConfigValue_t_Value,
}

/// `SteamNetConnectionStatusChangedCallback_t` (`pack(4)`, 704 bytes).
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct SteamNetConnectionStatusChangedCallback_t {
    /// The connection.
    pub m_hConn: HSteamNetConnection,
    /// Its state and details now.
    pub m_info: SteamNetConnectionInfo_t,
    /// The state before.
    pub m_eOldState: ESteamNetworkingConnectionState,
}

/// `SteamNetAuthenticationStatus_t` (`pack(4)`, 260 bytes).
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct SteamNetAuthenticationStatus_t {
    /// Whether we have a certificate.
    pub m_eAvail: ESteamNetworkingAvailability,
    /// Why not, for humans.
    pub m_debugMsg: [c_char; 256],
}

/// `SteamRelayNetworkStatus_t` (272 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SteamRelayNetworkStatus_t {
    /// Summary availability.
    pub m_eAvail: ESteamNetworkingAvailability,
    /// Nonzero while pings are being measured.
    pub m_bPingMeasurementInProgress: i32,
    /// Network config availability.
    pub m_eAvailNetworkConfig: ESteamNetworkingAvailability,
    /// Any relay reachable.
    pub m_eAvailAnyRelay: ESteamNetworkingAvailability,
    /// Why not, for humans.
    pub m_debugMsg: [c_char; 256],
}

/// An opaque ping location (512 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SteamNetworkPingLocation_t {
    /// Opaque.
    pub m_data: [u8; 512],
}

/// `SteamNetworkingFakeIPResult_t` (callback 1223), as the Steamworks SDK's
/// `steamnetworkingfakeip.h` defines it (GNS's public headers only declare it): `pack(4)`
/// (`VALVE_CALLBACK_PACK_SMALL`, Linux), 160 bytes.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct SteamNetworkingFakeIPResult_t {
    /// `EResult` of the request (see `sockworks::FakeIpResult`).
    pub m_eResult: EResult,
    /// The identity of the interface that made the request.
    pub m_identity: SteamNetworkingIdentity,
    /// The FakeIP, host byte order.
    pub m_unIP: u32,
    /// Its ports; entries beyond the allocation are 0.
    pub m_unPorts: [u16; 8],
}

impl SteamNetworkingFakeIPResult_t {
    /// `k_iCallback`: `k_iSteamNetworkingSocketsCallbacks + 3`.
    pub const k_iCallback: i32 = 1223;
    /// `k_nMaxReturnPorts`.
    pub const k_nMaxReturnPorts: usize = 8;
}

/// `ISteamNetworkingFakeUDPPort` (the SDK's `steamnetworkingfakeip.h`): only pointers pass;
/// the objects are `crate::fakeip`'s.
#[repr(C)]
pub struct ISteamNetworkingFakeUDPPort {
    _opaque: [u8; 0],
}

/// Declared but never defined by the public headers (SDR only): only pointers pass.
#[repr(C)]
pub struct SteamDatagramHostedAddress {
    _opaque: [u8; 0],
}

/// Declared but never defined by the public headers (SDR only): only pointers pass.
#[repr(C)]
pub struct SteamDatagramGameCoordinatorServerLogin {
    _opaque: [u8; 0],
}

/// Declared but never defined by the public headers (SDR only): only pointers pass.
#[repr(C)]
pub struct SteamDatagramRelayAuthTicket {
    _opaque: [u8; 0],
}

/// `ISteamNetworkingConnectionSignaling` (P2P custom signaling): only pointers pass.
#[repr(C)]
pub struct ISteamNetworkingConnectionSignaling {
    _opaque: [u8; 0],
}

/// `ISteamNetworkingSignalingRecvContext` (P2P custom signaling): only pointers pass.
#[repr(C)]
pub struct ISteamNetworkingSignalingRecvContext {
    _opaque: [u8; 0],
}

/// `SteamNetworkingMessagesSessionRequest_t` (`pack(1)`, 136 bytes): never posted by
/// Sockworks (no ISteamNetworkingMessages sessions), defined for programs' layouts.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct SteamNetworkingMessagesSessionRequest_t {
    /// Who wants to talk.
    pub m_identityRemote: SteamNetworkingIdentity,
}

/// `SteamNetworkingMessagesSessionFailed_t` (`pack(1)`, 696 bytes): never posted by Sockworks.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct SteamNetworkingMessagesSessionFailed_t {
    /// The failed session's connection.
    pub m_info: SteamNetConnectionInfo_t,
}
