//! Introspection (the `game-networking-sockets` crate's introspection_tests, ported):
//! listen-socket address, connection info, names, user data, detailed and real-time status,
//! receive timestamps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::common::*;
use sockworks::{ConfigValue, ConnectionState, ListenSocket, info_flags, send_flags};

#[test]
fn listen_socket_address_reports_the_bound_address() {
    let (s, _) = instance(2);
    // A port the OS says is free right now.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let want = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let listen = s.create_listen_socket_ip(want, &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    assert_eq!(s.get_listen_socket_address(listen), Some(want));
    // Port 0: the OS picks one, and the address says which.
    let any = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    let got = s.get_listen_socket_address(any).unwrap();
    assert_eq!(got.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(got.port(), 0);
    assert_ne!(got.port(), port);
}

#[test]
fn send_receive_with_timestamps() {
    let l = link(1, &[]);
    let mut last = std::time::Duration::ZERO;
    for i in 0..5u8 {
        l.client
            .send_message_to_connection(l.c_conn, &[i], send_flags::RELIABLE_NO_NAGLE)
            .unwrap();
        let got = recv_n(&l.server, l.s_conn, 1);
        assert_eq!(got[0].data, [i]);
        assert!(got[0].time_received > std::time::Duration::ZERO);
        assert!(
            got[0].time_received >= last,
            "receive times never go back on one connection"
        );
        last = got[0].time_received;
    }
}

#[test]
fn detailed_connection_status() {
    let l = link(1, &[]);
    let mut buf = vec![0u8; 8192];
    assert_eq!(
        l.client.get_detailed_connection_status(l.c_conn, &mut buf),
        0
    );
    let text = std::ffi::CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!text.is_empty(), "a non-empty status dump");
    // An invalid handle: −1, no text.
    assert_eq!(
        l.client
            .get_detailed_connection_status(sockworks::Connection::INVALID, &mut buf),
        -1
    );
}

#[test]
fn connection_name_round_trip() {
    let l = link(1, &[]);
    assert_eq!(l.client.get_connection_name(l.c_conn).as_deref(), Some(""));
    assert!(l.client.set_connection_name(l.c_conn, "pair-side-a"));
    assert_eq!(
        l.client.get_connection_name(l.c_conn).as_deref(),
        Some("pair-side-a")
    );
    let info = l.client.get_connection_info(l.c_conn).unwrap();
    assert!(
        info.description.contains("pair-side-a"),
        "the description names it: {}",
        info.description
    );
    // The other end is unaffected.
    assert_eq!(l.server.get_connection_name(l.s_conn).as_deref(), Some(""));
}

#[test]
fn connection_info_of_both_ends() {
    let l = link(2, &[ConfigValue::ConnectionUserData(77)]);
    let s = l.server.get_connection_info(l.s_conn).unwrap();
    let c = l.client.get_connection_info(l.c_conn).unwrap();
    assert_eq!(s.state, ConnectionState::Connected);
    assert_eq!(c.state, ConnectionState::Connected);
    assert_eq!(
        s.listen_socket, l.listen,
        "accepted through the listen socket"
    );
    assert_eq!(
        c.listen_socket,
        ListenSocket::INVALID,
        "a client connection"
    );
    assert_eq!(
        c.addr_remote,
        l.server.get_listen_socket_address(l.listen).unwrap()
    );
    assert!(s.addr_remote.ip().is_loopback());
    assert_ne!(s.addr_remote.port(), 0);
    assert_eq!((s.user_data, c.user_data), (77, 77), "the creation option");
    assert_eq!(l.client.get_connection_user_data(l.c_conn), 77);
    for info in [&s, &c] {
        assert_eq!(info.end_reason, 0);
        assert!(info.end_debug.is_empty());
        assert_ne!(info.flags & info_flags::FAST, 0, "loopback is fast");
        assert!(info.identity_remote.is_some(), "known once connected");
    }
    // Status changes carry the info too.
    let seen = l.client_seen.lock().unwrap();
    let connected = seen
        .iter()
        .find(|e| e.info.state == ConnectionState::Connected)
        .unwrap();
    assert_eq!(connected.conn, l.c_conn);
    assert_eq!(connected.old_state, ConnectionState::Connecting);
    assert_eq!(connected.info.user_data, 77);
}

#[test]
fn real_time_status_after_traffic() {
    let l = link(1, &[]);
    for i in 0..20u8 {
        l.client
            .send_message_to_connection(l.c_conn, &[i; 100], send_flags::RELIABLE)
            .unwrap();
    }
    assert_eq!(recv_n(&l.server, l.s_conn, 20).len(), 20);
    let st = l
        .client
        .get_connection_real_time_status(l.c_conn, &mut [])
        .unwrap();
    assert_eq!(st.state, Some(ConnectionState::Connected));
    assert!(st.ping >= 0, "ping known after a handshake: {}", st.ping);
    assert!(st.send_rate_bytes_per_sec > 0);
    assert!(st.pending_reliable >= 0 && st.pending_unreliable >= 0);
}
