//! Reading configuration values back (`GetConfigValue`): the value a scope runs with now, as
//! the [`ConfigValue`] that would set it, so a C caller's `GetConfigValue` after
//! `SetConfigValue` returns what it set (after range checks) and, before any set, GNS's
//! default.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::{
    Config, ConfigValue, MAX_CONNECTIONS_ID, MAX_CONNECTIONS_PER_ADDRESS_ID,
    MAX_PENDING_CONNECTIONS_ID, UNRELIABLE_MAX_AGE_ID,
};
use crate::handles::{Connection, ListenSocket};
use crate::sockets::Sockets;
use crate::sync::{lock, read};

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn int(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A connection limit back to its setting: "no limit" reads 0, as it is set.
fn limit(v: u32) -> i32 {
    if v == u32::MAX {
        0
    } else {
        i32::try_from(v).unwrap_or(i32::MAX)
    }
}

impl Config {
    /// The current value of option `id` in this scope; `None` for an id Sockworks does not
    /// implement, and for `ConnectionStatusChanged` when no callback is set (there is no
    /// "null" callback value to return).
    pub fn get(&self, id: i32) -> Option<ConfigValue> {
        use ConfigValue::*;
        let c = &self.connection;
        let s = &c.snp;
        Some(match id {
            24 => TimeoutInitial(ms(c.timeout_initial)),
            25 => TimeoutConnected(ms(c.timeout_connected)),
            9 => SendBufferSize(int(s.send_buffer_size)),
            47 => RecvBufferSize(int(s.recv_buffer_size)),
            48 => RecvBufferMessages(int(s.recv_buffer_messages)),
            49 => RecvMaxMessageSize(int(s.recv_max_message_size)),
            50 => RecvMaxSegmentsPerPacket(int(s.recv_max_segments_per_packet)),
            40 => ConnectionUserData(self.user_data.unwrap_or(-1)),
            10 => SendRateMin(i32::try_from(s.send_rate_min).unwrap_or(i32::MAX)),
            11 => SendRateMax(i32::try_from(s.send_rate_max).unwrap_or(i32::MAX)),
            12 => NagleTime(i32::try_from(s.nagle.as_micros()).unwrap_or(i32::MAX)),
            23 => IpAllowWithoutAuth(c.auth.allow_without_auth),
            52 => IpLocalHostAllowWithoutAuth(c.auth.localhost_allow_without_auth),
            32 => MtuPacketSize(int(c.mtu_packet_size)),
            34 => Unencrypted(c.unencrypted),
            2 => FakePacketLossSend(self.fake_send.loss_pct),
            3 => FakePacketLossRecv(self.fake_recv.loss_pct),
            4 => FakePacketLagSend(ms(self.fake_send.lag)),
            5 => FakePacketLagRecv(ms(self.fake_recv.lag)),
            6 => FakePacketReorderSend(self.fake_send.reorder_pct),
            7 => FakePacketReorderRecv(self.fake_recv.reorder_pct),
            8 => FakePacketReorderTime(ms(self.fake_send.reorder_time)),
            26 => FakePacketDupSend(self.fake_send.dup_pct),
            27 => FakePacketDupRecv(self.fake_recv.dup_pct),
            28 => FakePacketDupTimeMax(ms(self.fake_send.dup_time_max)),
            201 => ConnectionStatusChanged(self.on_status_changed.clone()?),
            202 => AuthStatusChanged(self.on_auth_status.clone()?),
            207 => FakeIpResult(self.on_fake_ip_result.clone()?),
            UNRELIABLE_MAX_AGE_ID => UnreliableMaxAge(s.unreliable_max_age.map_or(0, ms)),
            MAX_CONNECTIONS_ID => MaxConnections(limit(self.admission.max_connections)),
            MAX_CONNECTIONS_PER_ADDRESS_ID => {
                MaxConnectionsPerAddress(limit(self.admission.max_per_address))
            }
            MAX_PENDING_CONNECTIONS_ID => MaxPendingConnections(limit(self.admission.max_pending)),
            37 => SymmetricConnect(i32::from(self.p2p.symmetric)),
            38 => LocalVirtualPort(self.p2p.local_vport),
            103 => P2pStunServerList(self.p2p.stun_servers.clone()),
            104 => P2pTransportIceEnable(self.p2p.ice_enable),
            105 => P2pTransportIcePenalty(self.p2p.ice_penalty),
            107 => P2pTurnServerList(self.p2p.turn_servers.clone()),
            108 => P2pTurnUserList(self.p2p.turn_users.clone()),
            109 => P2pTurnPassList(self.p2p.turn_passes.clone()),
            110 => P2pTransportIceImplementation(self.p2p.ice_implementation),
            _ => return None,
        })
    }
}

impl Sockets {
    /// The global value of option `id` (what new listen sockets and connections inherit);
    /// `None` for an id Sockworks does not implement.
    pub fn get_global_config_value(&self, id: i32) -> Option<ConfigValue> {
        read(&self.shared().global).get(id)
    }

    /// A listen socket's value of option `id` (what connections it accepts start with);
    /// `None` for an invalid handle, an unimplemented id or a global-only one (GNS's
    /// `BadScopeObj`).
    pub fn get_listen_socket_config_value(
        &self,
        socket: ListenSocket,
        id: i32,
    ) -> Option<ConfigValue> {
        let l = read(&self.shared().listen).get(&socket.0).cloned()?;
        let v = lock(&l.config).get(id)?;
        (!v.global_only()).then_some(v)
    }

    /// A live connection's value of option `id`; `None` for an invalid handle, an
    /// unimplemented id, a global-only one or a listen-socket one (connection limits).
    pub fn get_connection_config_value(&self, conn: Connection, id: i32) -> Option<ConfigValue> {
        let rec = self.shared().conn(conn)?;
        let local = lock(&rec.local);
        let cfg = Config {
            connection: *local.config,
            user_data: Some(rec.user_data.load(Ordering::Relaxed)),
            on_status_changed: local.callback.clone(),
            ..Config::defaults()
        };
        drop(local);
        let v = cfg.get(id)?;
        (!v.global_only() && !v.listen_scope()).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::ConfigPayload;

    /// Every value Sockworks implements, each away from its default.
    fn samples() -> Vec<ConfigValue> {
        use ConfigValue::*;
        vec![
            TimeoutInitial(1234),
            TimeoutConnected(4321),
            SendBufferSize(65_536),
            RecvBufferSize(70_000),
            RecvBufferMessages(77),
            RecvMaxMessageSize(9_999),
            RecvMaxSegmentsPerPacket(3),
            ConnectionUserData(42),
            SendRateMin(100_000),
            SendRateMax(200_000),
            NagleTime(0),
            IpAllowWithoutAuth(1),
            IpLocalHostAllowWithoutAuth(0),
            MtuPacketSize(1200),
            Unencrypted(1),
            FakePacketLossSend(1.5),
            FakePacketLossRecv(2.5),
            FakePacketLagSend(30),
            FakePacketLagRecv(31),
            FakePacketReorderSend(3.5),
            FakePacketReorderRecv(4.5),
            FakePacketReorderTime(40),
            FakePacketDupSend(5.5),
            FakePacketDupRecv(6.5),
            FakePacketDupTimeMax(50),
            ConnectionStatusChanged(Arc::new(|_| {})),
            UnreliableMaxAge(25),
            MaxConnections(100),
            MaxConnectionsPerAddress(4),
            MaxPendingConnections(8),
            SymmetricConnect(1),
            LocalVirtualPort(9),
            P2pStunServerList("10.0.0.1:3478".into()),
            P2pTransportIceEnable(6),
            P2pTransportIcePenalty(3),
            P2pTurnServerList("10.0.0.2:3478".into()),
            P2pTurnUserList("u".into()),
            P2pTurnPassList("p".into()),
            P2pTransportIceImplementation(1),
        ]
    }

    /// The payload of a value, to compare values (ConfigValue is not PartialEq: callbacks).
    fn payload(v: &ConfigValue) -> String {
        match v.payload() {
            None => "callback".to_owned(),
            Some(ConfigPayload::Int32(x)) => format!("{x}"),
            Some(ConfigPayload::Int64(x)) => format!("{x}"),
            Some(ConfigPayload::Float(x)) => format!("{x}"),
            Some(ConfigPayload::String(x)) => x,
        }
    }

    #[test]
    fn from_payload_inverts_id_and_payload() {
        for v in samples() {
            let Some(p) = v.payload() else {
                continue; // callbacks carry no number
            };
            let back = ConfigValue::from_payload(v.id(), p).unwrap();
            assert_eq!(payload(&back), payload(&v), "value {}", v.id());
            assert_eq!(back.id(), v.id());
        }
        assert!(ConfigValue::from_payload(24, ConfigPayload::Float(1.0)).is_none());
        assert!(ConfigValue::from_payload(999, ConfigPayload::Int32(1)).is_none());
    }

    #[test]
    fn every_implemented_value_reads_back_what_was_set() {
        let mut c = Config::defaults();
        for v in samples() {
            assert!(
                c.get(v.id()).is_some() || v.id() == 201,
                "{} has a default",
                v.id()
            );
            c.set(&v).unwrap();
            let got = c.get(v.id()).unwrap();
            assert_eq!(got.id(), v.id());
            assert_eq!(payload(&got), payload(&v), "value {}", v.id());
        }
    }

    #[test]
    fn defaults_read_as_gns_defaults_and_unknown_ids_are_none() {
        let c = Config::defaults();
        assert_eq!(payload(&c.get(24).unwrap()), "10000");
        assert_eq!(payload(&c.get(12).unwrap()), "5000");
        assert_eq!(payload(&c.get(40).unwrap()), "-1");
        assert_eq!(payload(&c.get(MAX_CONNECTIONS_ID).unwrap()), "0");
        assert_eq!(payload(&c.get(UNRELIABLE_MAX_AGE_ID).unwrap()), "0");
        assert!(c.get(201).is_none(), "no callback set");
        assert!(c.get(0).is_none());
        assert!(c.get(33).is_none(), "MTU_DataSize is derived, not held");
        assert!(c.get(999).is_none());
    }

    #[test]
    fn instance_scopes_read_back_and_refuse_bad_handles() {
        let s = Sockets::with_config(crate::SocketsConfig {
            shards: 1,
            seed: Some(7),
            ..crate::SocketsConfig::default()
        })
        .unwrap();
        assert!(s.set_global_config_value(&ConfigValue::TimeoutInitial(777)));
        assert_eq!(payload(&s.get_global_config_value(24).unwrap()), "777");
        assert_eq!(payload(&s.get_global_config_value(2).unwrap()), "0");
        assert!(s.get_global_config_value(999).is_none());

        let l = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
        assert_ne!(l, ListenSocket::INVALID);
        assert_eq!(
            payload(&s.get_listen_socket_config_value(l, 24).unwrap()),
            "777",
            "inherited from global"
        );
        assert!(s.set_listen_socket_config_value(l, &ConfigValue::MaxConnections(5)));
        assert_eq!(
            payload(
                &s.get_listen_socket_config_value(l, MAX_CONNECTIONS_ID)
                    .unwrap()
            ),
            "5"
        );
        assert!(
            s.get_listen_socket_config_value(l, 2).is_none(),
            "global only"
        );
        assert!(
            s.get_listen_socket_config_value(ListenSocket(9999), 24)
                .is_none()
        );

        let (a, _b) = s.create_socket_pair(false, None, None).unwrap();
        assert!(s.set_connection_config_value(a, &ConfigValue::NagleTime(1000)));
        assert_eq!(
            payload(&s.get_connection_config_value(a, 12).unwrap()),
            "1000"
        );
        assert!(s.set_connection_user_data(a, 99));
        assert_eq!(
            payload(&s.get_connection_config_value(a, 40).unwrap()),
            "99"
        );
        assert!(
            s.get_connection_config_value(a, MAX_CONNECTIONS_ID)
                .is_none()
        );
        assert!(s.get_connection_config_value(a, 2).is_none());
        assert!(
            s.get_connection_config_value(Connection(12345), 24)
                .is_none()
        );
    }
}
