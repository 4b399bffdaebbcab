//! Configuration (the `game-networking-sockets` crate's config_tests, ported): values set
//! at global, listen-socket and connection scope are taken and take effect, with GNS's
//! inheritance; received message flags say how a message came.

use std::sync::{Arc, Mutex};

use crate::common::*;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, ListenSocket, StatusChanged, send_flags,
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
