//! Configuration values (`ESteamNetworkingConfigValue`, spec §6) at global, listen-socket and
//! connection scope, with GNS's inheritance: a connection starts from its listen socket's
//! values (or the global ones for a client), overridden by the options passed at creation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sockworks_engine::proto::admission::AdmissionLimits;
use sockworks_engine::proto::connection::ConnectionConfig;
use sockworks_engine::proto::fake_net::FakeConditions;

use crate::auth_config::AuthStatusFn;
use crate::callbacks::StatusChangedFn;
use crate::fakeip::FakeIpResultFn;

/// One settable value, with GNS's numbers (see [`ConfigValue::id`]).
#[derive(Clone)]
pub enum ConfigValue {
    /// 24: ms allowed for the handshake (or for the application to accept).
    TimeoutInitial(i32),
    /// 25: ms of silence after which a connected peer is declared dead.
    TimeoutConnected(i32),
    /// 9: bytes of unsent messages a connection may queue.
    SendBufferSize(i32),
    /// 47: bytes of received, undelivered data.
    RecvBufferSize(i32),
    /// 48: received, undelivered messages.
    RecvBufferMessages(i32),
    /// 49: largest reliable message accepted.
    RecvMaxMessageSize(i32),
    /// 50: segments per packet processed.
    RecvMaxSegmentsPerPacket(i32),
    /// 40: user data a connection starts with (messages carry the latest value).
    ConnectionUserData(i64),
    /// 10: minimum send rate, bytes/s.
    SendRateMin(i32),
    /// 11: maximum send rate, bytes/s.
    SendRateMax(i32),
    /// 12: µs a message without NoNagle may wait for company.
    NagleTime(i32),
    /// 23: accept peers without a CA-signed certificate (0-2).
    IpAllowWithoutAuth(i32),
    /// 52: the same for loopback peers.
    IpLocalHostAllowWithoutAuth(i32),
    /// 32: largest UDP payload sent (200-1300).
    MtuPacketSize(i32),
    /// 34: 0 require AES-GCM … 3 NULL cipher only (danger: no encryption).
    Unencrypted(i32),
    /// 2: % of sent packets dropped (global).
    FakePacketLossSend(f32),
    /// 3: % of received packets dropped (global).
    FakePacketLossRecv(f32),
    /// 4: ms added to every sent packet (global).
    FakePacketLagSend(i32),
    /// 5: ms added to every received packet (global).
    FakePacketLagRecv(i32),
    /// 6: % of sent packets delayed by the reorder time (global).
    FakePacketReorderSend(f32),
    /// 7: % of received packets delayed by the reorder time (global).
    FakePacketReorderRecv(f32),
    /// 8: ms a reordered packet is delayed (global).
    FakePacketReorderTime(i32),
    /// 26: % of sent packets duplicated (global).
    FakePacketDupSend(f32),
    /// 27: % of received packets duplicated (global).
    FakePacketDupRecv(f32),
    /// 28: a duplicate is delayed by 0..=this ms (global).
    FakePacketDupTimeMax(i32),
    /// 201: called from `run_callbacks` when a connection's state changes.
    ConnectionStatusChanged(StatusChangedFn),
    /// 202 (global only): called from `run_callbacks` when the authentication status changes
    /// (`SteamNetAuthenticationStatus_t`).
    AuthStatusChanged(AuthStatusFn),
    /// 207 (global only): called from `run_callbacks` when a `BeginAsyncRequestFakeIP`
    /// completes (`SteamNetworkingFakeIPResult_t`).
    FakeIpResult(FakeIpResultFn),
    /// [`UNRELIABLE_MAX_AGE_ID`] (Sockworks, not GNS; 0 = off, the default): ms an unreliable
    /// message may wait unsent before it is dropped and counted, since a late game-state
    /// update is worthless. 0..=60000.
    UnreliableMaxAge(i32),
    /// [`MAX_CONNECTIONS_ID`] (Sockworks, not GNS; listen-socket scope, inherited from
    /// global; 0 = no limit, the default): connections a listen socket holds at once. Past
    /// it a new client is refused at once with `Misc_Generic` ("Too many connections").
    MaxConnections(i32),
    /// [`MAX_CONNECTIONS_PER_ADDRESS_ID`] (Sockworks; as [`ConfigValue::MaxConnections`]):
    /// connections from one source IP address (counted in hashed buckets, so it may refuse
    /// early, never late).
    MaxConnectionsPerAddress(i32),
    /// [`MAX_PENDING_CONNECTIONS_ID`] (Sockworks; as [`ConfigValue::MaxConnections`]):
    /// connections waiting for AcceptConnection.
    MaxPendingConnections(i32),
    /// 37: both sides may connect to each other at once and end up with one connection.
    SymmetricConnect(i32),
    /// 38: a P2P connection's own virtual port (-1: the remote one).
    LocalVirtualPort(i32),
    /// 103: STUN servers for server-reflexive candidates, `host:port` comma list.
    P2pStunServerList(String),
    /// 104: candidate types ICE may use (bits: 1 relay, 2 private, 4 public; 0 disables ICE).
    P2pTransportIceEnable(i32),
    /// 105: added to the ICE route's score.
    P2pTransportIcePenalty(i32),
    /// 107: TURN servers for relayed candidates, `host:port` comma list.
    P2pTurnServerList(String),
    /// 108: TURN user names, one per server.
    P2pTurnUserList(String),
    /// 109: TURN passwords, one per server.
    P2pTurnPassList(String),
    /// 110: 0 default, 1 native ICE (ours), 2 WebRTC (not built: ICE fails).
    P2pTransportIceImplementation(i32),
}

/// A connection's P2P settings (the `P2P_*` values, `SymmetricConnect`, `LocalVirtualPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pSettings {
    /// `P2P_Transport_ICE_Enable` (GNS's open-source default: all).
    pub ice_enable: i32,
    /// `P2P_Transport_ICE_Penalty`.
    pub ice_penalty: i32,
    /// `P2P_Transport_ICE_Implementation`.
    pub ice_implementation: i32,
    /// `P2P_STUN_ServerList`.
    pub stun_servers: String,
    /// `P2P_TURN_ServerList`.
    pub turn_servers: String,
    /// `P2P_TURN_UserList`.
    pub turn_users: String,
    /// `P2P_TURN_PassList`.
    pub turn_passes: String,
    /// `SymmetricConnect`.
    pub symmetric: bool,
    /// `LocalVirtualPort` (-1: none).
    pub local_vport: i32,
}

impl Default for P2pSettings {
    fn default() -> Self {
        P2pSettings {
            ice_enable: sockworks_engine::proto::endpoint::ICE_ENABLE_ALL,
            ice_penalty: 0,
            ice_implementation: 0,
            stun_servers: String::new(),
            turn_servers: String::new(),
            turn_users: String::new(),
            turn_passes: String::new(),
            symmetric: false,
            local_vport: -1,
        }
    }
}

/// The number of [`ConfigValue::UnreliableMaxAge`]: outside GNS's enum ("SW" + 1), so a GNS
/// build that is handed it refuses it instead of misreading it.
pub const UNRELIABLE_MAX_AGE_ID: i32 = 0x5357_0001;
/// The number of [`ConfigValue::MaxConnections`].
pub const MAX_CONNECTIONS_ID: i32 = 0x5357_0002;
/// The number of [`ConfigValue::MaxConnectionsPerAddress`].
pub const MAX_CONNECTIONS_PER_ADDRESS_ID: i32 = 0x5357_0003;
/// The number of [`ConfigValue::MaxPendingConnections`].
pub const MAX_PENDING_CONNECTIONS_ID: i32 = 0x5357_0004;

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigValue({})", self.id())
    }
}

impl ConfigValue {
    /// The `ESteamNetworkingConfigValue` number.
    pub fn id(&self) -> i32 {
        use ConfigValue::*;
        match self {
            TimeoutInitial(_) => 24,
            TimeoutConnected(_) => 25,
            SendBufferSize(_) => 9,
            RecvBufferSize(_) => 47,
            RecvBufferMessages(_) => 48,
            RecvMaxMessageSize(_) => 49,
            RecvMaxSegmentsPerPacket(_) => 50,
            ConnectionUserData(_) => 40,
            SendRateMin(_) => 10,
            SendRateMax(_) => 11,
            NagleTime(_) => 12,
            IpAllowWithoutAuth(_) => 23,
            IpLocalHostAllowWithoutAuth(_) => 52,
            MtuPacketSize(_) => 32,
            Unencrypted(_) => 34,
            FakePacketLossSend(_) => 2,
            FakePacketLossRecv(_) => 3,
            FakePacketLagSend(_) => 4,
            FakePacketLagRecv(_) => 5,
            FakePacketReorderSend(_) => 6,
            FakePacketReorderRecv(_) => 7,
            FakePacketReorderTime(_) => 8,
            FakePacketDupSend(_) => 26,
            FakePacketDupRecv(_) => 27,
            FakePacketDupTimeMax(_) => 28,
            ConnectionStatusChanged(_) => 201,
            AuthStatusChanged(_) => 202,
            FakeIpResult(_) => 207,
            UnreliableMaxAge(_) => UNRELIABLE_MAX_AGE_ID,
            MaxConnections(_) => MAX_CONNECTIONS_ID,
            MaxConnectionsPerAddress(_) => MAX_CONNECTIONS_PER_ADDRESS_ID,
            MaxPendingConnections(_) => MAX_PENDING_CONNECTIONS_ID,
            SymmetricConnect(_) => 37,
            LocalVirtualPort(_) => 38,
            P2pStunServerList(_) => 103,
            P2pTransportIceEnable(_) => 104,
            P2pTransportIcePenalty(_) => 105,
            P2pTurnServerList(_) => 107,
            P2pTurnUserList(_) => 108,
            P2pTurnPassList(_) => 109,
            P2pTransportIceImplementation(_) => 110,
        }
    }

    /// The value option `id` takes with `payload`, the inverse of [`ConfigValue::id`] and
    /// [`ConfigValue::payload`]; `None` for an id Sockworks does not implement, a callback
    /// (it carries no number) or a payload of another type than the option's.
    pub fn from_payload(id: i32, payload: ConfigPayload) -> Option<ConfigValue> {
        use ConfigValue::*;
        Some(match (id, payload) {
            (40, ConfigPayload::Int64(x)) => ConnectionUserData(x),
            (2, ConfigPayload::Float(x)) => FakePacketLossSend(x),
            (3, ConfigPayload::Float(x)) => FakePacketLossRecv(x),
            (6, ConfigPayload::Float(x)) => FakePacketReorderSend(x),
            (7, ConfigPayload::Float(x)) => FakePacketReorderRecv(x),
            (26, ConfigPayload::Float(x)) => FakePacketDupSend(x),
            (27, ConfigPayload::Float(x)) => FakePacketDupRecv(x),
            (103, ConfigPayload::String(x)) => P2pStunServerList(x),
            (107, ConfigPayload::String(x)) => P2pTurnServerList(x),
            (108, ConfigPayload::String(x)) => P2pTurnUserList(x),
            (109, ConfigPayload::String(x)) => P2pTurnPassList(x),
            (id, ConfigPayload::Int32(x)) => match id {
                4 => FakePacketLagSend(x),
                5 => FakePacketLagRecv(x),
                8 => FakePacketReorderTime(x),
                9 => SendBufferSize(x),
                10 => SendRateMin(x),
                11 => SendRateMax(x),
                12 => NagleTime(x),
                23 => IpAllowWithoutAuth(x),
                24 => TimeoutInitial(x),
                25 => TimeoutConnected(x),
                28 => FakePacketDupTimeMax(x),
                32 => MtuPacketSize(x),
                34 => Unencrypted(x),
                47 => RecvBufferSize(x),
                48 => RecvBufferMessages(x),
                49 => RecvMaxMessageSize(x),
                50 => RecvMaxSegmentsPerPacket(x),
                52 => IpLocalHostAllowWithoutAuth(x),
                37 => SymmetricConnect(x),
                38 => LocalVirtualPort(x),
                104 => P2pTransportIceEnable(x),
                105 => P2pTransportIcePenalty(x),
                110 => P2pTransportIceImplementation(x),
                UNRELIABLE_MAX_AGE_ID => UnreliableMaxAge(x),
                MAX_CONNECTIONS_ID => MaxConnections(x),
                MAX_CONNECTIONS_PER_ADDRESS_ID => MaxConnectionsPerAddress(x),
                MAX_PENDING_CONNECTIONS_ID => MaxPendingConnections(x),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The number a value carries, typed as GNS types it (`None` for the callback): what
    /// `GetConfigValue` hands back, and how tests compare values (closures are not `Eq`).
    pub fn payload(&self) -> Option<ConfigPayload> {
        use ConfigValue::*;
        Some(match self {
            ConnectionStatusChanged(_) | AuthStatusChanged(_) | FakeIpResult(_) => return None,
            ConnectionUserData(x) => ConfigPayload::Int64(*x),
            P2pStunServerList(x) | P2pTurnServerList(x) | P2pTurnUserList(x)
            | P2pTurnPassList(x) => ConfigPayload::String(x.clone()),
            FakePacketLossSend(x)
            | FakePacketLossRecv(x)
            | FakePacketReorderSend(x)
            | FakePacketReorderRecv(x)
            | FakePacketDupSend(x)
            | FakePacketDupRecv(x) => ConfigPayload::Float(*x),
            TimeoutInitial(x)
            | TimeoutConnected(x)
            | SendBufferSize(x)
            | RecvBufferSize(x)
            | RecvBufferMessages(x)
            | RecvMaxMessageSize(x)
            | RecvMaxSegmentsPerPacket(x)
            | SendRateMin(x)
            | SendRateMax(x)
            | NagleTime(x)
            | IpAllowWithoutAuth(x)
            | IpLocalHostAllowWithoutAuth(x)
            | MtuPacketSize(x)
            | Unencrypted(x)
            | FakePacketLagSend(x)
            | FakePacketLagRecv(x)
            | FakePacketReorderTime(x)
            | FakePacketDupTimeMax(x)
            | UnreliableMaxAge(x)
            | MaxConnections(x)
            | MaxConnectionsPerAddress(x)
            | MaxPendingConnections(x)
            | SymmetricConnect(x)
            | LocalVirtualPort(x)
            | P2pTransportIceEnable(x)
            | P2pTransportIcePenalty(x)
            | P2pTransportIceImplementation(x) => ConfigPayload::Int32(*x),
        })
    }

    /// Values that belong to a listen socket (and the global defaults it inherits), never to
    /// a connection.
    pub fn listen_scope(&self) -> bool {
        matches!(
            self,
            ConfigValue::MaxConnections(_)
                | ConfigValue::MaxConnectionsPerAddress(_)
                | ConfigValue::MaxPendingConnections(_)
        )
    }

    /// Whether GNS allows it only at global scope (the fake network conditions, the
    /// authentication and FakeIP callbacks).
    pub fn global_only(&self) -> bool {
        self.fake_network() || matches!(self.id(), 202 | 207)
    }

    /// Whether it is one of the fake network conditions (applied by every shard at once).
    pub fn fake_network(&self) -> bool {
        matches!(self.id(), 2..=8 | 26..=28)
    }
}

/// The number (or text) in a [`ConfigValue`], by GNS's data type.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigPayload {
    /// `k_ESteamNetworkingConfig_Int32`.
    Int32(i32),
    /// `k_ESteamNetworkingConfig_Int64`.
    Int64(i64),
    /// `k_ESteamNetworkingConfig_Float`.
    Float(f32),
    /// `k_ESteamNetworkingConfig_String`.
    String(String),
}

/// Why a configuration value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Outside GNS's documented range.
    #[error("config value {id} out of range")]
    OutOfRange {
        /// The value's number.
        id: i32,
    },
    /// A global-only value set at a narrower scope.
    #[error("config value {id} is global only")]
    GlobalOnly {
        /// The value's number.
        id: i32,
    },
}

/// A resolved set of values: what one scope runs with.
#[derive(Clone, Default)]
pub struct Config {
    /// Engine settings of new connections.
    pub connection: ConnectionConfig,
    /// `ConnectionUserData` new connections start with (−1: none).
    pub user_data: Option<i64>,
    /// The status-changed callback.
    pub on_status_changed: Option<StatusChangedFn>,
    /// The authentication-status callback (global scope).
    pub on_auth_status: Option<AuthStatusFn>,
    /// The FakeIP-result callback (global scope).
    pub on_fake_ip_result: Option<FakeIpResultFn>,
    /// Fake conditions on sends (global scope).
    pub fake_send: FakeConditions,
    /// Fake conditions on receives (global scope).
    pub fake_recv: FakeConditions,
    /// A listen socket's connection limits (Sockworks' own).
    pub admission: AdmissionLimits,
    /// P2P settings.
    pub p2p: P2pSettings,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("connection", &self.connection)
            .field("user_data", &self.user_data)
            .field("callback", &self.on_status_changed.is_some())
            .finish()
    }
}

fn range(id: i32, v: i32, lo: i32, hi: i32) -> Result<i32, ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::OutOfRange { id })
    }
}

fn pct(id: i32, v: f32) -> Result<f32, ConfigError> {
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::OutOfRange { id })
    }
}

/// A connection limit: 0 means none.
fn limit(id: i32, v: i32) -> Result<u32, ConfigError> {
    let v = range(id, v, 0, i32::MAX)?.unsigned_abs();
    Ok(if v == 0 { u32::MAX } else { v })
}

fn ms(v: i32) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

/// Non-negative i32 as usize (callers checked the range).
fn us(v: i32) -> usize {
    usize::try_from(v).unwrap_or(0)
}

impl Config {
    /// GNS's defaults.
    pub fn defaults() -> Self {
        // FakePacketReorder_Time 15 ms and FakePacketDup_TimeMax 10 ms, both directions.
        let fake = FakeConditions {
            reorder_time: Duration::from_millis(15),
            dup_time_max: Duration::from_millis(10),
            ..Default::default()
        };
        Config {
            fake_send: fake,
            fake_recv: fake,
            ..Default::default()
        }
    }

    /// Applies one value, checking GNS's range.
    pub fn set(&mut self, value: &ConfigValue) -> Result<(), ConfigError> {
        use ConfigValue::*;
        let id = value.id();
        let c = &mut self.connection;
        match value {
            TimeoutInitial(v) => c.timeout_initial = ms(range(id, *v, 0, i32::MAX)?),
            TimeoutConnected(v) => c.timeout_connected = ms(range(id, *v, 0, i32::MAX)?),
            SendBufferSize(v) => c.snp.send_buffer_size = us(range(id, *v, 0, 0x1000_0000)?),
            RecvBufferSize(v) => c.snp.recv_buffer_size = us(range(id, *v, 0, 0x1000_0000)?),
            RecvBufferMessages(v) => {
                c.snp.recv_buffer_messages = us(range(id, *v, 0, 0x1000_0000)?)
            }
            RecvMaxMessageSize(v) => {
                c.snp.recv_max_message_size = us(range(id, *v, 64, 0x1000_0000)?)
            }
            RecvMaxSegmentsPerPacket(v) => {
                c.snp.recv_max_segments_per_packet = us(range(id, *v, 1, 1300)?)
            }
            ConnectionUserData(v) => self.user_data = (*v != -1).then_some(*v),
            SendRateMin(v) => {
                c.snp.send_rate_min = range(id, *v, 1024, 0x1000_0000)?.unsigned_abs()
            }
            SendRateMax(v) => {
                c.snp.send_rate_max = range(id, *v, 1024, 0x1000_0000)?.unsigned_abs()
            }
            NagleTime(v) => c.snp.nagle = Duration::from_micros(range(id, *v, 0, 20_000)? as u64),
            IpAllowWithoutAuth(v) => c.auth.allow_without_auth = range(id, *v, 0, 2)?,
            IpLocalHostAllowWithoutAuth(v) => {
                c.auth.localhost_allow_without_auth = range(id, *v, 0, 2)?
            }
            MtuPacketSize(v) => {
                let m = us(range(id, *v, 200, 1300)?);
                c.mtu_packet_size = m;
                c.snp.mtu_packet_size = m;
            }
            Unencrypted(v) => c.unencrypted = range(id, *v, 0, 3)?,
            FakePacketLossSend(v) => self.fake_send.loss_pct = pct(id, *v)?,
            FakePacketLossRecv(v) => self.fake_recv.loss_pct = pct(id, *v)?,
            FakePacketLagSend(v) => self.fake_send.lag = ms(range(id, *v, 0, 5000)?),
            FakePacketLagRecv(v) => self.fake_recv.lag = ms(range(id, *v, 0, 5000)?),
            FakePacketReorderSend(v) => self.fake_send.reorder_pct = pct(id, *v)?,
            FakePacketReorderRecv(v) => self.fake_recv.reorder_pct = pct(id, *v)?,
            FakePacketReorderTime(v) => {
                let t = ms(range(id, *v, 0, 5000)?);
                self.fake_send.reorder_time = t;
                self.fake_recv.reorder_time = t;
            }
            FakePacketDupSend(v) => self.fake_send.dup_pct = pct(id, *v)?,
            FakePacketDupRecv(v) => self.fake_recv.dup_pct = pct(id, *v)?,
            FakePacketDupTimeMax(v) => {
                let t = ms(range(id, *v, 0, 5000)?);
                self.fake_send.dup_time_max = t;
                self.fake_recv.dup_time_max = t;
            }
            ConnectionStatusChanged(f) => self.on_status_changed = Some(Arc::clone(f)),
            AuthStatusChanged(f) => self.on_auth_status = Some(Arc::clone(f)),
            FakeIpResult(f) => self.on_fake_ip_result = Some(Arc::clone(f)),
            UnreliableMaxAge(v) => {
                let v = range(id, *v, 0, 60_000)?;
                c.snp.unreliable_max_age = (v > 0).then(|| ms(v));
            }
            MaxConnections(v) => self.admission.max_connections = limit(id, *v)?,
            MaxConnectionsPerAddress(v) => self.admission.max_per_address = limit(id, *v)?,
            MaxPendingConnections(v) => self.admission.max_pending = limit(id, *v)?,
            SymmetricConnect(v) => self.p2p.symmetric = range(id, *v, 0, 1)? == 1,
            LocalVirtualPort(v) => self.p2p.local_vport = range(id, *v, -1, 65535)?,
            // GNS clamps the mask to [0, All]: -1 ("platform default") becomes 0, disabled.
            P2pTransportIceEnable(v) => self.p2p.ice_enable = (*v).max(0),
            P2pTransportIcePenalty(v) => self.p2p.ice_penalty = range(id, *v, 0, i32::MAX)?,
            P2pTransportIceImplementation(v) => self.p2p.ice_implementation = range(id, *v, 0, 2)?,
            P2pStunServerList(v) => self.p2p.stun_servers.clone_from(v),
            P2pTurnServerList(v) => self.p2p.turn_servers.clone_from(v),
            P2pTurnUserList(v) => self.p2p.turn_users.clone_from(v),
            P2pTurnPassList(v) => self.p2p.turn_passes.clone_from(v),
        }
        Ok(())
    }

    /// This scope's values with the creation options applied on top (GNS's options array:
    /// global-only values are refused there).
    pub fn with_options(&self, options: &[ConfigValue]) -> Result<Config, ConfigError> {
        let mut c = self.clone();
        for o in options {
            if o.global_only() {
                return Err(ConfigError::GlobalOnly { id: o.id() });
            }
            c.set(o)?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_gns_defaults_and_ranges_are_checked() {
        let c = Config::defaults();
        assert_eq!(c.connection.timeout_initial, Duration::from_secs(10));
        assert_eq!(c.connection.snp.send_buffer_size, 524_288);
        assert_eq!(c.fake_send.reorder_time, Duration::from_millis(15));
        let mut c = c;
        assert_eq!(
            c.set(&ConfigValue::MtuPacketSize(100)),
            Err(ConfigError::OutOfRange { id: 32 })
        );
        c.set(&ConfigValue::NagleTime(0)).unwrap();
        assert_eq!(c.connection.snp.nagle, Duration::ZERO);
        assert_eq!(
            c.with_options(&[ConfigValue::FakePacketLossSend(5.0)])
                .err(),
            Some(ConfigError::GlobalOnly { id: 2 })
        );
        let d = c
            .with_options(&[
                ConfigValue::ConnectionUserData(7),
                ConfigValue::TimeoutInitial(500),
            ])
            .unwrap();
        assert_eq!(d.user_data, Some(7));
        assert_eq!(d.connection.timeout_initial, Duration::from_millis(500));
        assert_eq!(
            c.user_data, None,
            "options do not change the scope they start from"
        );
    }

    #[test]
    fn unreliable_max_age_is_off_by_default_and_zero_turns_it_off() {
        let mut c = Config::defaults();
        assert_eq!(c.connection.snp.unreliable_max_age, None);
        c.set(&ConfigValue::UnreliableMaxAge(40)).unwrap();
        assert_eq!(
            c.connection.snp.unreliable_max_age,
            Some(Duration::from_millis(40))
        );
        c.set(&ConfigValue::UnreliableMaxAge(0)).unwrap();
        assert_eq!(c.connection.snp.unreliable_max_age, None);
        assert_eq!(
            c.set(&ConfigValue::UnreliableMaxAge(-1)),
            Err(ConfigError::OutOfRange {
                id: UNRELIABLE_MAX_AGE_ID
            })
        );
    }
}
