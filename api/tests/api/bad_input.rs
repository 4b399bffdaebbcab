//! Invalid, stale (closed) and foreign handles, oversize messages, unknown lanes and values
//! out of range: every call answers with the error the API reference documents (InvalidParam,
//! false, −1, an INVALID handle...) and nothing panics.

use crate::common::*;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, LaneStatus, ListenSocket, OutMessage,
    PollGroup, Sockets, send_flags,
};

/// Largest message GNS sends (`k_cbMaxSteamNetworkingSocketsMessageSizeSend`).
const MAX_SEND: usize = 512 * 1024;

/// Every connection call on a handle that does not name a live connection of `s`.
fn assert_dead_connection(s: &Sockets, conn: Connection, group: PollGroup, what: &str) {
    assert_eq!(s.accept_connection(conn), EResult::InvalidParam, "{what}");
    assert_eq!(
        s.send_message_to_connection(conn, b"x", send_flags::RELIABLE),
        Err(EResult::InvalidParam),
        "{what}"
    );
    assert_eq!(
        s.send_messages(vec![OutMessage {
            conn,
            data: b"x".to_vec(),
            flags: send_flags::RELIABLE,
            lane: 0,
        }]),
        vec![-i64::from(EResult::InvalidParam.code())],
        "{what}"
    );
    assert_eq!(
        s.flush_messages_on_connection(conn),
        EResult::InvalidParam,
        "{what}"
    );
    let mut out = Vec::new();
    assert_eq!(
        s.receive_messages_on_connection(conn, &mut out, 8),
        -1,
        "{what}"
    );
    assert!(out.is_empty(), "{what}");
    assert_eq!(
        s.configure_connection_lanes(conn, &[0, 1], &[]),
        EResult::NoConnection,
        "{what}: ConfigureConnectionLanes says NoConnection for a bad handle"
    );
    assert!(!s.set_connection_poll_group(conn, group), "{what}");
    assert!(
        !s.set_connection_poll_group(conn, PollGroup::INVALID),
        "{what}"
    );
    assert!(!s.set_connection_user_data(conn, 5), "{what}");
    assert_eq!(s.get_connection_user_data(conn), -1, "{what}");
    assert!(!s.set_connection_name(conn, "name"), "{what}");
    assert_eq!(s.get_connection_name(conn), None, "{what}");
    assert_eq!(s.get_connection_info(conn), None, "{what}");
    assert_eq!(
        s.get_connection_real_time_status(conn, &mut []).err(),
        Some(EResult::NoConnection),
        "{what}: GetConnectionRealTimeStatus says NoConnection for a bad handle"
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        s.get_detailed_connection_status(conn, &mut buf),
        -1,
        "{what}"
    );
    assert!(
        !s.set_connection_config_value(conn, &ConfigValue::NagleTime(0)),
        "{what}"
    );
    assert_eq!(s.connection_state(conn), ConnectionState::None, "{what}");
    assert!(!s.close_connection(conn, 0, "", false), "{what}");
}

fn assert_dead_listen_socket(s: &Sockets, socket: ListenSocket, what: &str) {
    assert_eq!(s.get_listen_socket_address(socket), None, "{what}");
    assert!(
        !s.set_listen_socket_config_value(socket, &ConfigValue::NagleTime(0)),
        "{what}"
    );
    assert!(!s.close_listen_socket(socket), "{what}");
}

fn assert_dead_poll_group(s: &Sockets, group: PollGroup, live: Connection, what: &str) {
    let mut out = Vec::new();
    assert_eq!(
        s.receive_messages_on_poll_group(group, &mut out, 8),
        -1,
        "{what}"
    );
    assert!(out.is_empty(), "{what}");
    if group != PollGroup::INVALID {
        assert!(
            !s.set_connection_poll_group(live, group),
            "{what}: a live connection cannot join it"
        );
    }
    assert!(!s.destroy_poll_group(group), "{what}");
}

#[test]
fn invalid_stale_and_foreign_handles_give_documented_errors() {
    let l = link(2, &[]);
    let (other, _) = instance_seeded(1, 0x8000);
    let group = l.server.create_poll_group();

    // Invalid (0) and never issued.
    for conn in [
        Connection::INVALID,
        Connection(0xDEAD_BEEF),
        Connection(u32::MAX),
    ] {
        assert_dead_connection(&l.server, conn, group, &format!("{conn:?}"));
    }
    for socket in [ListenSocket::INVALID, ListenSocket(0xDEAD_BEEF)] {
        assert_dead_listen_socket(&l.server, socket, &format!("{socket:?}"));
    }
    for g in [PollGroup::INVALID, PollGroup(0xDEAD_BEEF)] {
        assert_dead_poll_group(&l.server, g, l.s_conn, &format!("{g:?}"));
    }
    assert!(
        l.server
            .set_connection_poll_group(l.s_conn, PollGroup::INVALID),
        "INVALID leaves any group: allowed"
    );

    // Foreign: issued by another instance.
    assert_dead_connection(&l.server, l.c_conn, group, "client's handle on the server");
    let foreign_listen = other.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(foreign_listen, ListenSocket::INVALID);
    let foreign_group = other.create_poll_group();
    assert_dead_listen_socket(&l.server, foreign_listen, "other instance's listen socket");
    assert_dead_poll_group(&l.server, foreign_group, l.s_conn, "other instance's group");
    assert!(
        other.get_listen_socket_address(foreign_listen).is_some(),
        "the calls above did not touch the owner"
    );

    // The live ones still work after all that.
    assert_eq!(
        l.client
            .send_message_to_connection(l.c_conn, b"still here", send_flags::RELIABLE),
        Ok(1)
    );
    let got = recv_n(&l.server, l.s_conn, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"still here");

    // Stale: closed by the application.
    assert!(l.server.close_connection(l.s_conn, 0, "", false));
    assert_dead_connection(&l.server, l.s_conn, group, "closed server end");
    assert!(l.client.close_connection(l.c_conn, 0, "", false));
    assert_dead_connection(&l.client, l.c_conn, PollGroup::INVALID, "closed client end");
    let live_listen = l.listen;
    assert!(l.server.close_listen_socket(live_listen));
    assert_dead_listen_socket(&l.server, live_listen, "closed listen socket");
    assert!(l.server.destroy_poll_group(group));
    let mut out = Vec::new();
    assert_eq!(
        l.server.receive_messages_on_poll_group(group, &mut out, 8),
        -1
    );
    assert!(!l.server.destroy_poll_group(group), "destroyed group");
}

#[test]
fn handles_are_dead_in_the_wrong_state() {
    let l = link(1, &[]);
    // A client connection is not waiting to be accepted; an accepted one no longer is.
    assert_eq!(l.client.accept_connection(l.c_conn), EResult::InvalidState);
    assert_eq!(l.server.accept_connection(l.s_conn), EResult::InvalidState);

    // Ended by the peer: the handle is valid but the connection is not.
    assert!(l.client.close_connection(l.c_conn, 0, "", false));
    assert!(wait_until(&[&l.server], || l
        .server
        .connection_state(l.s_conn)
        == ConnectionState::ClosedByPeer));
    let s = &l.server;
    assert_eq!(
        s.send_message_to_connection(l.s_conn, b"x", send_flags::RELIABLE),
        Err(EResult::NoConnection)
    );
    assert_eq!(
        s.send_messages(vec![OutMessage {
            conn: l.s_conn,
            data: vec![1],
            flags: 0,
            lane: 0
        }]),
        vec![-i64::from(EResult::NoConnection.code())]
    );
    assert_eq!(
        s.flush_messages_on_connection(l.s_conn),
        EResult::NoConnection
    );
    assert_eq!(
        s.configure_connection_lanes(l.s_conn, &[0, 0], &[]),
        EResult::InvalidState,
        "ConfigureConnectionLanes: InvalidState once the connection is dead"
    );
    assert_eq!(s.accept_connection(l.s_conn), EResult::InvalidState);
    let mut out = Vec::new();
    assert_eq!(s.receive_messages_on_connection(l.s_conn, &mut out, 8), 0);
    assert!(s.get_connection_info(l.s_conn).is_some(), "still a handle");
    assert!(s.close_connection(l.s_conn, 0, "", false));
}

#[test]
fn flush_before_connected_is_ignored() {
    let (server, _) = instance(1);
    let (client, _) = instance(1);
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    let addr = server.get_listen_socket_address(listen).unwrap();
    // Nobody accepts: the client stays connecting.
    let c = client.connect_by_ip_address(addr, &[]);
    assert_ne!(c, Connection::INVALID);
    assert_eq!(client.connection_state(c), ConnectionState::Connecting);
    assert_eq!(client.flush_messages_on_connection(c), EResult::Ignored);
    // A NoDelay message cannot wait for the connection; a plain one queues.
    assert_eq!(
        client.send_message_to_connection(c, b"x", send_flags::UNRELIABLE_NO_DELAY),
        Err(EResult::Ignored)
    );
    assert_eq!(
        client.send_message_to_connection(c, b"x", send_flags::RELIABLE),
        Ok(1)
    );
    assert!(client.close_connection(c, 0, "", false));
}

#[test]
fn oversize_messages_and_unknown_lanes_are_invalid_params() {
    // Room and rate for a maximum-size message next to small ones.
    let l = link(
        1,
        &[
            ConfigValue::SendBufferSize(4 * MAX_SEND as i32),
            ConfigValue::SendRateMin(64 << 20),
            ConfigValue::SendRateMax(64 << 20),
        ],
    );
    let (c, conn) = (&l.client, l.c_conn);
    let big = vec![7u8; MAX_SEND + 1];
    for flags in [send_flags::RELIABLE, send_flags::UNRELIABLE] {
        assert_eq!(
            c.send_message_to_connection(conn, &big, flags),
            Err(EResult::InvalidParam)
        );
    }
    let lane_err = -i64::from(EResult::InvalidParam.code());
    let msg = |data: Vec<u8>, lane: u16| OutMessage {
        conn,
        data,
        flags: send_flags::RELIABLE,
        lane,
    };
    // One lane by default: lane 1 is unknown.
    let r = c.send_messages(vec![
        msg(big.clone(), 0),
        msg(b"lane 1".to_vec(), 1),
        msg(b"lane 0".to_vec(), 0),
        msg(b"lane max".to_vec(), u16::MAX),
    ]);
    assert_eq!(r, vec![lane_err, lane_err, 1, lane_err]);
    assert_eq!(
        c.configure_connection_lanes(conn, &[0, 0], &[1, 1]),
        EResult::Ok
    );
    let r = c.send_messages(vec![msg(b"lane 1".to_vec(), 1), msg(b"lane 2".to_vec(), 2)]);
    assert_eq!(r, vec![1, lane_err], "lane 1 now exists, lane 2 does not");
    // The exact maximum is allowed.
    let max = vec![9u8; MAX_SEND];
    assert_eq!(
        c.send_message_to_connection(conn, &max, send_flags::RELIABLE),
        Ok(2)
    );
    // Refused messages took no numbers, and none of them arrives.
    let got = recv_n(&l.server, l.s_conn, 3);
    let mut summary: Vec<(u16, i64, usize)> = got
        .iter()
        .map(|m| (m.lane, m.message_number, m.data.len()))
        .collect();
    summary.sort_unstable();
    assert_eq!(summary, vec![(0, 1, 6), (0, 2, MAX_SEND), (1, 1, 6)]);
}

#[test]
fn bad_lane_configurations_are_invalid_params() {
    let l = link(1, &[]);
    let (c, conn) = (&l.client, l.c_conn);
    assert_eq!(
        c.configure_connection_lanes(conn, &[], &[]),
        EResult::InvalidParam
    );
    assert_eq!(
        c.configure_connection_lanes(conn, &[0; 256], &[]),
        EResult::InvalidParam,
        "more than 255 lanes"
    );
    assert_eq!(
        c.configure_connection_lanes(conn, &[0, 0], &[1]),
        EResult::InvalidParam,
        "weights for some lanes only"
    );
    assert_eq!(
        c.configure_connection_lanes(conn, &[0, 0], &[1, 0]),
        EResult::InvalidParam,
        "weights must be positive"
    );
    assert_eq!(
        c.configure_connection_lanes(conn, &[0, 5, 5], &[]),
        EResult::Ok
    );
    assert_eq!(
        c.configure_connection_lanes(conn, &[0, 0], &[]),
        EResult::InvalidParam,
        "the lane count cannot shrink"
    );
    assert_eq!(
        c.configure_connection_lanes(conn, &[0, 1, 2], &[3, 2, 1]),
        EResult::Ok
    );
    let mut lanes = [LaneStatus::default(); 4];
    assert_eq!(
        c.get_connection_real_time_status(conn, &mut lanes).err(),
        Some(EResult::InvalidParam),
        "more lanes asked for than configured"
    );
    assert!(
        c.get_connection_real_time_status(conn, &mut lanes[..3])
            .is_ok()
    );
    assert!(c.get_connection_real_time_status(conn, &mut []).is_ok());
}

#[test]
fn config_values_out_of_range_or_at_the_wrong_scope_are_refused() {
    let l = link(1, &[]);
    let s = &l.server;
    for bad in [
        ConfigValue::MtuPacketSize(100),
        ConfigValue::MtuPacketSize(100_000),
        ConfigValue::TimeoutInitial(-1),
        ConfigValue::SendBufferSize(-5),
        ConfigValue::NagleTime(1_000_000),
        ConfigValue::SendRateMin(10),
        ConfigValue::Unencrypted(4),
        ConfigValue::IpAllowWithoutAuth(3),
        ConfigValue::FakePacketLossSend(101.0),
        ConfigValue::FakePacketLossRecv(-1.0),
        ConfigValue::FakePacketLagSend(-1),
        ConfigValue::FakePacketReorderSend(f32::NAN),
    ] {
        assert!(!s.set_global_config_value(&bad), "{bad:?} global");
        assert!(
            !s.set_connection_config_value(l.s_conn, &bad),
            "{bad:?} conn"
        );
        assert!(
            !s.set_listen_socket_config_value(l.listen, &bad),
            "{bad:?} listen"
        );
        assert_eq!(
            s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), std::slice::from_ref(&bad)),
            ListenSocket::INVALID,
            "{bad:?} as a listen option"
        );
        assert_eq!(
            l.client.connect_by_ip_address(
                s.get_listen_socket_address(l.listen).unwrap(),
                std::slice::from_ref(&bad)
            ),
            Connection::INVALID,
            "{bad:?} as a connect option"
        );
    }
    // Fake network conditions are global only.
    let global_only = ConfigValue::FakePacketLagSend(10);
    assert!(!s.set_connection_config_value(l.s_conn, &global_only));
    assert!(!s.set_listen_socket_config_value(l.listen, &global_only));
    assert_eq!(
        s.create_listen_socket_ip(
            "127.0.0.1:0".parse().unwrap(),
            std::slice::from_ref(&global_only)
        ),
        ListenSocket::INVALID
    );
    assert!(s.set_global_config_value(&global_only));
    assert!(s.set_global_config_value(&ConfigValue::FakePacketLagSend(0)));
    // The connection is unharmed.
    assert_eq!(
        l.client
            .send_message_to_connection(l.c_conn, b"ok", send_flags::RELIABLE),
        Ok(1)
    );
    assert_eq!(recv_n(s, l.s_conn, 1).len(), 1);
}

#[test]
fn detailed_status_buffer_convention() {
    let l = link(1, &[]);
    let mut big = vec![0xffu8; 64 * 1024];
    assert_eq!(
        l.client.get_detailed_connection_status(l.c_conn, &mut big),
        0
    );
    let len = big.iter().position(|&b| b == 0).unwrap();
    assert!(len > 0, "a non-empty text, NUL terminated");
    // Too small: truncated, NUL terminated, and the size that would fit comes back.
    let mut small = [0xffu8; 8];
    let need = l
        .client
        .get_detailed_connection_status(l.c_conn, &mut small);
    assert!(need > 8, "needs {need}");
    assert_eq!(small[7], 0);
    let mut none: [u8; 0] = [];
    assert!(l.client.get_detailed_connection_status(l.c_conn, &mut none) > 0);
}
