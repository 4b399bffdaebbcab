//! Every `ESteamNetworkingConfigValue` of GNS 1.6's header, and Sockworks' own ids: the name
//! `GetConfigValueInfo` returns (GNS registers each value under its enum name without the
//! `k_ESteamNetworkingConfig_` prefix), data type, scope, default, limits, and what Sockworks
//! does with it.
//!
//! **Implemented** (forwarded to the Rust API, they change behaviour): FakePacketLoss_*,
//! FakePacketLag_*, FakePacketReorder_*, FakePacketDup_*, SendBufferSize, SendRateMin/Max,
//! NagleTime, IP_AllowWithoutAuth, IPLocalHost_AllowWithoutAuth, TimeoutInitial/Connected,
//! MTU_PacketSize, Unencrypted, ConnectionUserData, RecvBufferSize, RecvBufferMessages,
//! RecvMaxMessageSize, RecvMaxSegmentsPerPacket, Callback_ConnectionStatusChanged,
//! Callback_AuthStatusChanged, Callback_FakeIPResult, SymmetricConnect, LocalVirtualPort, P2P_STUN_ServerList,
//! P2P_TURN_ServerList/UserList/PassList, P2P_Transport_ICE_Enable/Penalty/Implementation,
//! and Sockworks' UnreliableMaxAge, MaxConnections, MaxConnectionsPerAddress,
//! MaxPendingConnections. **Read-only**: MTU_DataSize (MTU_PacketSize − 100, as GNS).
//! Callback_CreateConnectionSignaling is only stored, and `ConnectP2P` reads it from the
//! store (`crate::p2p`): the Rust API has no such callback.
//!
//! **Accepted, no effect** (stored so `GetConfigValue` returns what was set, otherwise
//! ignored): LogLevel_* (the debug output level comes from `SetDebugOutputFunction`),
//! SDRClient_* (no relay network), P2P_Transport_SDR_Penalty (no relay network),
//! DualWifi_Enable, EnableDiagnosticsUI, SendTimeSincePreviousPacket,
//! PacketTraceMaxBytes, FakeRateLimit_*, FakePacketJitter_*,
//! OutOfOrderCorrectionWindowMicroseconds, ECN, Callback_RelayNetworkStatusChanged,
//! Callback_MessagesSession*. GNS's open-source build does
//! not register the Steam-only ones among these (SDR, DualWifi, diagnostics UI): its
//! defaults and limits here are Sockworks' best knowledge, and GNS itself would refuse them.
//! `DELETED_EnumerateDevVars` (35) is not registered, as in GNS 1.6.

use std::ffi::CStr;

use crate::types::{
    k_ESteamNetworkingConfig_Connection as C, k_ESteamNetworkingConfig_Float,
    k_ESteamNetworkingConfig_Global as G, k_ESteamNetworkingConfig_Int32,
    k_ESteamNetworkingConfig_Int64, k_ESteamNetworkingConfig_ListenSocket as L,
    k_ESteamNetworkingConfig_Ptr, k_ESteamNetworkingConfig_String,
};

/// What Sockworks does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Maps to a `sockworks::ConfigValue`: it changes behaviour.
    Implemented,
    /// Stored and read back, otherwise ignored.
    NoEffect,
    /// Derived from another value; setting it fails (MTU_DataSize).
    ReadOnly,
}

/// A default value, of the entry's data type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    /// Int32.
    I32(i32),
    /// Int64.
    I64(i64),
    /// Float.
    F32(f32),
    /// String (empty for every string option).
    Str(&'static str),
    /// Ptr: null.
    Null,
}

/// GNS's clamp: values set outside it are clamped, not refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limits {
    /// No limits (int64, strings, pointers).
    None,
    /// Int32 limits.
    Int(i32, i32),
    /// Float limits.
    Float(f32, f32),
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// `ESteamNetworkingConfigValue`.
    pub id: i32,
    /// GNS's name for it.
    pub name: &'static CStr,
    /// `ESteamNetworkingConfigDataType`.
    pub data_type: i32,
    /// `ESteamNetworkingConfigScope`: Global, Connection (settable at global, listen socket
    /// and connection scope), or ListenSocket (Sockworks' limits: global and listen socket).
    pub scope: i32,
    /// GNS's default.
    pub default: Default,
    /// GNS's clamp.
    pub limits: Limits,
    /// What Sockworks does with it.
    pub support: Support,
}

use Support::{Implemented as IMPL, NoEffect as NOFX};

const fn int(
    id: i32,
    name: &'static CStr,
    scope: i32,
    d: i32,
    lo: i32,
    hi: i32,
    s: Support,
) -> Entry {
    Entry {
        id,
        name,
        data_type: k_ESteamNetworkingConfig_Int32,
        scope,
        default: Default::I32(d),
        limits: Limits::Int(lo, hi),
        support: s,
    }
}

const fn float(id: i32, name: &'static CStr, d: f32, lo: f32, hi: f32, s: Support) -> Entry {
    Entry {
        id,
        name,
        data_type: k_ESteamNetworkingConfig_Float,
        scope: G,
        default: Default::F32(d),
        limits: Limits::Float(lo, hi),
        support: s,
    }
}

const fn string(id: i32, name: &'static CStr, scope: i32, s: Support) -> Entry {
    Entry {
        id,
        name,
        data_type: k_ESteamNetworkingConfig_String,
        scope,
        default: Default::Str(""),
        limits: Limits::None,
        support: s,
    }
}

const fn ptr(id: i32, name: &'static CStr, scope: i32, s: Support) -> Entry {
    Entry {
        id,
        name,
        data_type: k_ESteamNetworkingConfig_Ptr,
        scope,
        default: Default::Null,
        limits: Limits::None,
        support: s,
    }
}

/// GNS's `k_ESteamNetworkingSocketsDebugOutputType_Warning` .. `_Everything` (log levels).
const WARN: i32 = 4;
const MAXI: i32 = i32::MAX;
const SZ: i32 = 0x1000_0000;

/// The table, sorted by id (as GNS sorts its own for the binary search and iteration).
pub static TABLE: &[Entry] = &[
    float(2, c"FakePacketLoss_Send", 0.0, 0.0, 100.0, IMPL),
    float(3, c"FakePacketLoss_Recv", 0.0, 0.0, 100.0, IMPL),
    int(4, c"FakePacketLag_Send", G, 0, 0, 5000, IMPL),
    int(5, c"FakePacketLag_Recv", G, 0, 0, 5000, IMPL),
    float(6, c"FakePacketReorder_Send", 0.0, 0.0, 100.0, IMPL),
    float(7, c"FakePacketReorder_Recv", 0.0, 0.0, 100.0, IMPL),
    int(8, c"FakePacketReorder_Time", G, 15, 0, 5000, IMPL),
    int(9, c"SendBufferSize", C, 512 * 1024, 4 * 1024, SZ, IMPL),
    int(10, c"SendRateMin", C, 256 * 1024, 1024, SZ, IMPL),
    int(11, c"SendRateMax", C, 256 * 1024, 1024, SZ, IMPL),
    int(12, c"NagleTime", C, 5000, 0, 20_000, IMPL),
    int(13, c"LogLevel_AckRTT", C, WARN, 2, 8, NOFX),
    int(14, c"LogLevel_PacketDecode", C, WARN, 2, 8, NOFX),
    int(15, c"LogLevel_Message", C, WARN, 2, 8, NOFX),
    int(16, c"LogLevel_PacketGaps", C, WARN, 2, 8, NOFX),
    int(17, c"LogLevel_P2PRendezvous", C, WARN, 2, 8, NOFX),
    int(18, c"LogLevel_SDRRelayPings", G, WARN, 2, 8, NOFX),
    int(
        19,
        c"SDRClient_ConsecutitivePingTimeoutsFailInitial",
        G,
        0,
        0,
        1000,
        NOFX,
    ),
    int(
        20,
        c"SDRClient_ConsecutitivePingTimeoutsFail",
        G,
        5,
        0,
        1000,
        NOFX,
    ),
    int(
        21,
        c"SDRClient_MinPingsBeforePingAccurate",
        G,
        10,
        0,
        100,
        NOFX,
    ),
    int(22, c"SDRClient_SingleSocket", G, 0, 0, 1, NOFX),
    int(23, c"IP_AllowWithoutAuth", C, 2, 0, 2, IMPL),
    int(24, c"TimeoutInitial", C, 10_000, 0, MAXI, IMPL),
    int(25, c"TimeoutConnected", C, 10_000, 0, MAXI, IMPL),
    float(26, c"FakePacketDup_Send", 0.0, 0.0, 100.0, IMPL),
    float(27, c"FakePacketDup_Recv", 0.0, 0.0, 100.0, IMPL),
    int(28, c"FakePacketDup_TimeMax", G, 10, 0, 5000, IMPL),
    string(29, c"SDRClient_ForceRelayCluster", G, NOFX),
    string(30, c"SDRClient_DevTicket", C, NOFX),
    string(31, c"SDRClient_ForceProxyAddr", G, NOFX),
    int(32, c"MTU_PacketSize", C, 1300, 200, 1300, IMPL),
    Entry {
        id: 33,
        name: c"MTU_DataSize",
        data_type: k_ESteamNetworkingConfig_Int32,
        scope: C,
        default: Default::I32(1300 - MTU_DATA_RESERVE),
        limits: Limits::None,
        support: Support::ReadOnly,
    },
    int(34, c"Unencrypted", C, 0, 0, 3, IMPL),
    string(36, c"SDRClient_FakeClusterPing", G, NOFX),
    int(37, c"SymmetricConnect", C, 0, 0, 1, IMPL),
    int(38, c"LocalVirtualPort", C, -1, -1, MAXI, IMPL),
    int(39, c"DualWifi_Enable", C, 1, 0, 4, NOFX),
    Entry {
        id: 40,
        name: c"ConnectionUserData",
        data_type: k_ESteamNetworkingConfig_Int64,
        scope: C,
        default: Default::I64(-1),
        limits: Limits::None,
        support: IMPL,
    },
    int(41, c"PacketTraceMaxBytes", G, -1, -1, 99_999, NOFX),
    int(42, c"FakeRateLimit_Send_Rate", G, 0, 0, 1 << 30, NOFX),
    int(
        43,
        c"FakeRateLimit_Send_Burst",
        G,
        16 * 1024,
        0,
        1 << 20,
        NOFX,
    ),
    int(44, c"FakeRateLimit_Recv_Rate", G, 0, 0, 1 << 30, NOFX),
    int(
        45,
        c"FakeRateLimit_Recv_Burst",
        G,
        16 * 1024,
        0,
        1 << 20,
        NOFX,
    ),
    int(46, c"EnableDiagnosticsUI", C, 1, 0, 1, NOFX),
    int(47, c"RecvBufferSize", C, 1024 * 1024, 4 * 1024, SZ, IMPL),
    int(48, c"RecvBufferMessages", C, 1000, 2, SZ, IMPL),
    int(49, c"RecvMaxMessageSize", C, 512 * 1024, 64, SZ, IMPL),
    int(50, c"RecvMaxSegmentsPerPacket", C, 1300, 1, 1300, IMPL),
    int(
        51,
        c"OutOfOrderCorrectionWindowMicroseconds",
        G,
        1000,
        0,
        50_000,
        NOFX,
    ),
    int(52, c"IPLocalHost_AllowWithoutAuth", C, 2, 0, 2, IMPL),
    float(53, c"FakePacketJitter_Send_Avg", 0.0, 0.0, 2000.0, NOFX),
    float(54, c"FakePacketJitter_Send_Max", 100.0, 0.0, 5000.0, NOFX),
    float(55, c"FakePacketJitter_Send_Pct", 75.0, 0.0, 100.0, NOFX),
    float(56, c"FakePacketJitter_Recv_Avg", 0.0, 0.0, 2000.0, NOFX),
    float(57, c"FakePacketJitter_Recv_Max", 100.0, 0.0, 5000.0, NOFX),
    float(58, c"FakePacketJitter_Recv_Pct", 75.0, 0.0, 100.0, NOFX),
    int(59, c"SendTimeSincePreviousPacket", C, -1, -1, 1, NOFX),
    int(
        60,
        c"SDRClient_LimitPingProbesToNearestN",
        G,
        16,
        0,
        MAXI,
        NOFX,
    ),
    string(103, c"P2P_STUN_ServerList", C, IMPL),
    int(104, c"P2P_Transport_ICE_Enable", C, MAXI, 0, MAXI, IMPL),
    int(105, c"P2P_Transport_ICE_Penalty", C, 0, 0, MAXI, IMPL),
    int(106, c"P2P_Transport_SDR_Penalty", C, 0, 0, MAXI, NOFX),
    string(107, c"P2P_TURN_ServerList", C, IMPL),
    string(108, c"P2P_TURN_UserList", C, IMPL),
    string(109, c"P2P_TURN_PassList", C, IMPL),
    int(110, c"P2P_Transport_ICE_Implementation", C, 0, 0, 2, IMPL),
    ptr(201, c"Callback_ConnectionStatusChanged", C, IMPL),
    ptr(202, c"Callback_AuthStatusChanged", G, IMPL),
    ptr(203, c"Callback_RelayNetworkStatusChanged", G, NOFX),
    ptr(204, c"Callback_MessagesSessionRequest", G, NOFX),
    ptr(205, c"Callback_MessagesSessionFailed", G, NOFX),
    ptr(206, c"Callback_CreateConnectionSignaling", G, NOFX),
    ptr(207, c"Callback_FakeIPResult", G, IMPL),
    int(998, c"SDRClient_EnableTOSProbes", G, 0, 0, 1, NOFX),
    int(999, c"ECN", G, -1, -1, 2, NOFX),
    int(
        sockworks::UNRELIABLE_MAX_AGE_ID,
        c"UnreliableMaxAge",
        C,
        0,
        0,
        60_000,
        IMPL,
    ),
    int(
        sockworks::MAX_CONNECTIONS_ID,
        c"MaxConnections",
        L,
        0,
        0,
        MAXI,
        IMPL,
    ),
    int(
        sockworks::MAX_CONNECTIONS_PER_ADDRESS_ID,
        c"MaxConnectionsPerAddress",
        L,
        0,
        0,
        MAXI,
        IMPL,
    ),
    int(
        sockworks::MAX_PENDING_CONNECTIONS_ID,
        c"MaxPendingConnections",
        L,
        0,
        0,
        MAXI,
        IMPL,
    ),
];

/// `k_cbSteamNetworkingSocketsNoFragmentHeaderReserve`: MTU_DataSize = MTU_PacketSize − this.
pub const MTU_DATA_RESERVE: i32 = 100;

/// The entry of `id`, or `None` for an id GNS 1.6 (and Sockworks) does not know.
pub fn find(id: i32) -> Option<&'static Entry> {
    TABLE
        .binary_search_by_key(&id, |e| e.id)
        .ok()
        .and_then(|i| TABLE.get(i))
}

/// GNS's `BEnumerateConfigValue`: callbacks, SymmetricConnect, LocalVirtualPort and
/// ConnectionUserData are never listed; IP_AllowWithoutAuth, Unencrypted and
/// SDRClient_FakeClusterPing only with dev vars.
fn listed(e: &Entry, dev_vars: bool) -> bool {
    match e.id {
        _ if e.data_type == k_ESteamNetworkingConfig_Ptr => false,
        37 | 38 | 40 => false,
        23 | 34 | 36 => dev_vars,
        _ => true,
    }
}

/// `IterateGenericEditableConfigValues`: the next listed id after `current` (the first for
/// 0), 0 at the end or for an unknown `current`.
pub fn next_listed(current: i32, dev_vars: bool) -> i32 {
    let start = if current == 0 {
        0
    } else {
        match TABLE.binary_search_by_key(&current, |e| e.id) {
            Ok(i) => i + 1,
            Err(_) => return 0,
        }
    };
    TABLE
        .iter()
        .skip(start)
        .find(|e| listed(e, dev_vars))
        .map_or(0, |e| e.id)
}
