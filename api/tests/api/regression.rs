//! Regressions (the `game-networking-sockets` crate's regression_tests, ported): listen
//! sockets leave nothing behind when closed, a taken port is refused, bad configuration is an
//! error rather than a panic.

use crate::common::*;
use sockworks::{ConfigValue, ConnectionState, ListenSocket, send_flags};

#[test]
fn closed_listen_sockets_leave_nothing_behind() {
    let (s, seen) = instance(2);
    let mut handles = Vec::new();
    for _ in 0..16 {
        let l = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
        assert_ne!(l, ListenSocket::INVALID);
        assert!(s.get_listen_socket_address(l).is_some());
        assert!(s.close_listen_socket(l));
        assert_eq!(s.get_listen_socket_address(l), None, "gone at once");
        assert!(!handles.contains(&l), "handles are never reused");
        handles.push(l);
    }
    // The instance still serves a new listen socket end to end.
    let listen = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    let addr = s.get_listen_socket_address(listen).unwrap();
    let (client, _) = instance_seeded(1, 3);
    let c = client.connect_by_ip_address(addr, &[]);
    let sc = accept_next(&s, &seen, &[]);
    assert!(wait_until(&[&client, &s], || {
        client.connection_state(c) == ConnectionState::Connected
            && s.connection_state(sc) == ConnectionState::Connected
    }));
    assert_eq!(s.get_connection_info(sc).unwrap().listen_socket, listen);
}

#[test]
fn a_closed_listen_port_can_be_listened_on_again() {
    let (s, _) = instance(2);
    let first = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    let addr = s.get_listen_socket_address(first).unwrap();
    assert!(s.close_listen_socket(first));
    // As with GNS, the port is free again as soon as the call returns.
    let again = s.create_listen_socket_ip(addr, &[]);
    assert_ne!(again, ListenSocket::INVALID);
    assert_eq!(s.get_listen_socket_address(again), Some(addr));
}

#[test]
fn listening_twice_on_one_port_fails() {
    let (a, a_seen) = instance(2);
    let first = a.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(first, ListenSocket::INVALID);
    let addr = a.get_listen_socket_address(first).unwrap();
    assert_eq!(
        a.create_listen_socket_ip(addr, &[]),
        ListenSocket::INVALID,
        "same instance"
    );
    let (b, _) = instance_seeded(2, 99);
    assert_eq!(
        b.create_listen_socket_ip(addr, &[]),
        ListenSocket::INVALID,
        "another instance in the same process"
    );
    let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        a.create_listen_socket_ip(plain.local_addr().unwrap(), &[]),
        ListenSocket::INVALID,
        "a port another socket holds"
    );
    // The first listen socket still works.
    let (client, _) = instance_seeded(1, 5);
    let c = client.connect_by_ip_address(addr, &[]);
    accept_next(&a, &a_seen, &[]);
    assert!(wait_until(&[&client], || client.connection_state(c)
        == ConnectionState::Connected));
}

#[test]
fn bad_configuration_is_an_error_not_a_panic() {
    // The nearest thing to a string with an interior NUL: values GNS cannot take.
    let (s, _) = instance(1);
    for bad in [
        ConfigValue::FakePacketLossSend(f32::NAN),
        ConfigValue::FakePacketLossSend(f32::INFINITY),
        ConfigValue::MtuPacketSize(i32::MIN),
        ConfigValue::RecvMaxSegmentsPerPacket(0),
        ConfigValue::RecvMaxMessageSize(1),
    ] {
        assert!(!s.set_global_config_value(&bad), "{bad:?}");
    }
    // And the instance still works.
    let l = link(1, &[]);
    assert_eq!(
        l.client
            .send_message_to_connection(l.c_conn, b"ok", send_flags::RELIABLE),
        Ok(1)
    );
    assert_eq!(recv_n(&l.server, l.s_conn, 1).len(), 1);
}
