//! Configuration (the `game-networking-sockets` crate's config_tests, ported): values set
//! at global, listen-socket and connection scope are taken and take effect, with GNS's
//! inheritance; received message flags say how a message came.

use std::sync::{Arc, Mutex};

use crate::common::*;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, ListenSocket, Sockets, StatusChanged,
    send_flags,
};

#[test]
fn global_values_are_taken() {
    let (s, _) = instance(1);
    assert!(s.set_global_config_value(&ConfigValue::TimeoutInitial(15_000)));
    assert!(s.set_global_config_value(&ConfigValue::FakePacketLagSend(100)));
    assert!(s.set_global_config_value(&ConfigValue::FakePacketLagSend(0)));
    assert!(s.set_global_config_value(&ConfigValue::FakePacketLossRecv(1.5)));
    assert!(s.set_global_config_value(&ConfigValue::FakePacketLossRecv(0.0)));
}

#[test]
fn message_flags_say_how_it_came() {
    let l = link(1, &[]);
    l.client
        .send_message_to_connection(l.c_conn, b"r", send_flags::RELIABLE)
        .unwrap();
    l.client
        .send_message_to_connection(l.c_conn, b"u", send_flags::UNRELIABLE_NO_NAGLE)
        .unwrap();
    let got = recv_n(&l.server, l.s_conn, 2);
    let mut flags: Vec<(Vec<u8>, i32)> = got
        .into_iter()
        .map(|m| {
            let f = m.flags;
            (m.into_data(), f)
        })
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        vec![(b"r".to_vec(), send_flags::RELIABLE), (b"u".to_vec(), 0)]
    );
}

#[test]
fn connection_info_of_an_invalid_handle_is_none() {
    let (s, _) = instance(1);
    let listen = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    assert!(s.get_connection_info(Connection::INVALID).is_none());
}

#[test]
fn user_data_is_inherited_global_then_listen_socket_then_options() {
    let (server, seen) = instance(1);
    let (client, _) = instance_seeded(1, 21);
    assert!(server.set_global_config_value(&ConfigValue::ConnectionUserData(5)));
    let plain = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    let tagged = server.create_listen_socket_ip(
        "127.0.0.1:0".parse().unwrap(),
        &[ConfigValue::ConnectionUserData(42)],
    );
    let later = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert!(server.set_listen_socket_config_value(later, &ConfigValue::ConnectionUserData(9)));
    let mut known = Vec::new();
    for (listen, want) in [(plain, 5), (tagged, 42), (later, 9)] {
        let addr = server.get_listen_socket_address(listen).unwrap();
        let c = client.connect_by_ip_address(addr, &[ConfigValue::ConnectionUserData(100)]);
        assert_eq!(client.get_connection_user_data(c), 100, "the option wins");
        let s = accept_next(&server, &seen, &known);
        known.push(s);
        assert_eq!(server.get_connection_user_data(s), want, "{listen:?}");
    }
}

#[test]
fn send_buffer_size_limits_what_may_queue() {
    let l = link(1, &[]);
    assert!(
        l.client
            .set_connection_config_value(l.c_conn, &ConfigValue::SendBufferSize(2000))
    );
    assert_eq!(
        l.client
            .send_message_to_connection(l.c_conn, &[0; 2001], send_flags::RELIABLE),
        Err(EResult::LimitExceeded)
    );
    assert_eq!(
        l.client
            .send_message_to_connection(l.c_conn, &[0; 1500], send_flags::RELIABLE),
        Ok(1),
        "the refused message took no number"
    );
    assert!(
        l.client
            .set_connection_config_value(l.c_conn, &ConfigValue::SendBufferSize(1 << 20))
    );
    assert_eq!(
        l.client
            .send_message_to_connection(l.c_conn, &[0; 100_000], send_flags::RELIABLE),
        Ok(2)
    );
    assert_eq!(recv_n(&l.server, l.s_conn, 2).len(), 2);
}

#[test]
fn timeout_initial_ends_a_connect_nobody_answers() {
    let (client, seen) = instance(1);
    // A port nobody listens on: bound here, never read.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = client.connect_by_ip_address(
        silent.local_addr().unwrap(),
        &[ConfigValue::TimeoutInitial(300)],
    );
    assert_ne!(c, Connection::INVALID);
    assert!(wait_until(&[&client], || client.connection_state(c)
        == ConnectionState::ProblemDetectedLocally));
    let ev = seen
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.conn == c && e.info.state == ConnectionState::ProblemDetectedLocally)
        .cloned()
        .unwrap();
    assert_eq!(ev.old_state, ConnectionState::Connecting);
    assert_ne!(ev.info.end_reason, 0);
    assert!(client.close_connection(c, 0, "", false));
}

#[test]
fn a_connection_callback_overrides_the_global_one() {
    let (server, server_seen) = instance(1);
    let (client, client_global) = instance_seeded(1, 31);
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    let mine: Arc<Mutex<Vec<StatusChanged>>> = Arc::default();
    let sink = mine.clone();
    let cb = ConfigValue::ConnectionStatusChanged(Arc::new(move |ev: &StatusChanged| {
        sink.lock().unwrap().push(ev.clone());
    }));
    let c = client.connect_by_ip_address(server.get_listen_socket_address(listen).unwrap(), &[cb]);
    let s = accept_next(&server, &server_seen, &[]);
    assert!(wait_until(&[&client, &server], || client
        .connection_state(c)
        == ConnectionState::Connected));
    assert_ne!(s, Connection::INVALID);
    assert!(
        mine.lock()
            .unwrap()
            .iter()
            .any(|e| e.conn == c && e.info.state == ConnectionState::Connected)
    );
    assert!(
        client_global.lock().unwrap().iter().all(|e| e.conn != c),
        "the global callback did not hear about it"
    );
}

/// Sockworks' listen-socket limits: a client past one is refused at once with a reason, the
/// ones already there are untouched, and an accept frees a pending slot.
#[test]
fn listen_socket_limits_refuse_new_clients_cleanly() {
    let (server, server_seen) = instance(1);
    let listen = server.create_listen_socket_ip(
        "127.0.0.1:0".parse().unwrap(),
        &[
            ConfigValue::MaxPendingConnections(1),
            ConfigValue::MaxConnections(2),
        ],
    );
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = server.get_listen_socket_address(listen).unwrap();
    let refused = |c: &Sockets, conn: Connection, debug: &str| {
        assert!(wait_until(&[c], || matches!(
            c.connection_state(conn),
            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally
        )));
        let info = c.get_connection_info(conn).unwrap();
        assert_eq!((info.end_reason, info.end_debug.as_str()), (5001, debug));
    };
    let (c1, _) = instance(1);
    let a = c1.connect_by_ip_address(addr, &[]);
    assert!(wait_until(&[&server], || first_in(
        &server_seen,
        ConnectionState::Connecting
    )
    .is_some()));
    let (c2, _) = instance(1);
    let b = c2.connect_by_ip_address(addr, &[]);
    refused(&c2, b, "Too many connections waiting to be accepted");

    let s_a = first_in(&server_seen, ConnectionState::Connecting).unwrap();
    assert_eq!(server.accept_connection(s_a), EResult::Ok);
    assert!(wait_until(&[&c1], || c1.connection_state(a)
        == ConnectionState::Connected));
    let (c3, _) = instance(1);
    let c = c3.connect_by_ip_address(addr, &[]);
    assert!(wait_until(&[&server], || server_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.info.state == ConnectionState::Connecting)
        .count()
        == 2));
    let (c4, _) = instance(1);
    let d = c4.connect_by_ip_address(addr, &[]);
    refused(&c4, d, "Too many connections");
    assert_eq!(c1.connection_state(a), ConnectionState::Connected);
    assert_eq!(c3.connection_state(c), ConnectionState::Connecting);
    // Limits belong to listen sockets, not connections.
    assert!(!server.set_connection_config_value(s_a, &ConfigValue::MaxConnections(5)));
    assert!(server.set_listen_socket_config_value(listen, &ConfigValue::MaxConnections(5)));
}
