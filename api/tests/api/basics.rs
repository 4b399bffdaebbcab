//! End to end over 127.0.0.1: listen, connect, accept, messages both ways, close.

use crate::common::*;
use sockworks::{ConfigValue, ConnectionState, EResult, send_flags};

#[test]
fn connect_send_receive_close() {
    let l = link(2, &[]);
    let desc = l.server_seen.lock().unwrap()[0].info.description.clone();
    assert!(
        desc.starts_with(&format!("#{} UDP 127.0.0.1:", l.s_conn.0)),
        "callbacks carry the description: {desc}"
    );
    let n = l
        .client
        .send_message_to_connection(l.c_conn, b"hello", send_flags::RELIABLE)
        .unwrap();
    assert_eq!(n, 1);
    let got = recv_n(&l.server, l.s_conn, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"hello");
    assert_eq!(got[0].conn, l.s_conn);
    assert_eq!(got[0].message_number, 1);
    assert_eq!(got[0].flags, send_flags::RELIABLE);

    for i in 0..100u32 {
        let n = l
            .server
            .send_message_to_connection(l.s_conn, &i.to_le_bytes(), send_flags::RELIABLE)
            .unwrap();
        assert_eq!(n, i64::from(i) + 1);
    }
    let got = recv_n(&l.client, l.c_conn, 100);
    let nums: Vec<u32> = got
        .iter()
        .map(|m| u32::from_le_bytes(m.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(nums, (0..100).collect::<Vec<_>>());

    assert!(l.client.close_connection(l.c_conn, 1234, "bye", false));
    assert!(
        !l.client.close_connection(l.c_conn, 0, "", false),
        "handle is dead"
    );
    assert!(wait_until(&[&l.server], || {
        l.server.connection_state(l.s_conn) == ConnectionState::ClosedByPeer
    }));
    let info = l.server.get_connection_info(l.s_conn).unwrap();
    assert_eq!(info.end_reason, 1234);
    assert_eq!(info.end_debug, "bye");
    assert_eq!(
        l.server
            .send_message_to_connection(l.s_conn, b"x", send_flags::RELIABLE),
        Err(EResult::NoConnection)
    );
    assert!(l.server.close_connection(l.s_conn, 0, "", false));
}

#[test]
fn in_memory_pair_passes_messages_and_closes() {
    let (s, seen) = instance(1);
    let (a, b) = s.create_socket_pair(false, None, None).unwrap();
    assert_eq!(s.connection_state(a), ConnectionState::Connected);
    assert_eq!(
        s.send_message_to_connection(a, b"ping", send_flags::RELIABLE),
        Ok(1)
    );
    assert_eq!(s.send_message_to_connection(a, b"ping2", 0), Ok(2));
    let got = recv_n(&s, b, 2);
    assert_eq!(got[0].data, b"ping");
    assert_eq!(got[0].conn, b);
    assert_eq!(got[1].message_number, 2);
    let info = s.get_connection_info(b).unwrap();
    assert_ne!(info.flags & sockworks::info_flags::LOOPBACK_BUFFERS, 0);
    assert!(s.close_connection(a, 0, "done", false));
    assert!(wait_until(&[&s], || first_in(
        &seen,
        ConnectionState::ClosedByPeer
    ) == Some(b)));
    assert_eq!(s.get_connection_info(b).unwrap().end_reason, 1000);
    assert_eq!(
        s.send_message_to_connection(b, b"x", 0),
        Err(EResult::NoConnection)
    );
}

#[test]
fn an_in_memory_pair_bounds_what_waits_unread_as_gns_does() {
    // GNS's pipes set their own receive limits huge (0x10000000 bytes and messages), past the
    // 1,000-message default of network connections; an application can lower them per end,
    // and what would overflow is dropped (its number stays used).
    let (s, _) = instance(1);
    let (a, b) = s.create_socket_pair(false, None, None).unwrap();
    assert!(matches!(
        s.get_connection_config_value(b, 48),
        Some(ConfigValue::RecvBufferMessages(0x1000_0000))
    ));
    assert!(matches!(
        s.get_connection_config_value(b, 47),
        Some(ConfigValue::RecvBufferSize(0x1000_0000))
    ));
    for i in 0..1500u32 {
        s.send_message_to_connection(a, &i.to_le_bytes(), send_flags::RELIABLE)
            .unwrap();
    }
    assert_eq!(
        recv_n(&s, b, 1500).len(),
        1500,
        "not held to the network default"
    );

    assert!(s.set_connection_config_value(b, &ConfigValue::RecvBufferMessages(3)));
    for i in 0..5u32 {
        assert_eq!(
            s.send_message_to_connection(a, &i.to_le_bytes(), send_flags::RELIABLE),
            Ok(1501 + i64::from(i))
        );
    }
    let mut got = Vec::new();
    assert_eq!(s.receive_messages_on_connection(b, &mut got, 16), 3);
    let nums: Vec<i64> = got.iter().map(|m| m.message_number).collect();
    assert_eq!(
        nums,
        [1501, 1502, 1503],
        "the two beyond the limit were dropped"
    );
    // Read, so there is room again.
    s.send_message_to_connection(a, b"after", send_flags::RELIABLE)
        .unwrap();
    got.clear();
    assert_eq!(s.receive_messages_on_connection(b, &mut got, 16), 1);
    assert_eq!(got[0].data, b"after");

    assert!(s.set_connection_config_value(b, &ConfigValue::RecvBufferSize(10)));
    s.send_message_to_connection(a, &[1; 8], 0).unwrap();
    s.send_message_to_connection(a, &[2; 8], 0).unwrap();
    got.clear();
    assert_eq!(
        s.receive_messages_on_connection(b, &mut got, 16),
        1,
        "16 bytes > 10"
    );
}

#[test]
fn network_pair_is_encrypted_and_connected() {
    let (s, _seen) = instance(2);
    let (a, b) = s.create_socket_pair(true, None, None).unwrap();
    assert_eq!(s.connection_state(a), ConnectionState::Connected);
    assert_eq!(s.connection_state(b), ConnectionState::Connected);
    let info = s.get_connection_info(a).unwrap();
    assert_eq!(info.flags & sockworks::info_flags::UNENCRYPTED, 0);
    assert!(info.addr_remote.ip().is_loopback());
    for i in 0..10u8 {
        s.send_message_to_connection(b, &[i; 300], send_flags::RELIABLE)
            .unwrap();
    }
    let got = recv_n(&s, a, 10);
    assert_eq!(got.len(), 10);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, m)| m.data == [i as u8; 300])
    );
    let mut buf = [0u8; 4096];
    assert_eq!(s.get_detailed_connection_status(a, &mut buf), 0);
    let mut small = [0u8; 8];
    assert!(s.get_detailed_connection_status(a, &mut small) > 8);
    assert_eq!(small[7], 0, "truncated text is NUL terminated");
}

#[test]
fn dual_stack_listen_socket_takes_ipv4_and_ipv6_clients() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let (server, seen) = instance(2);
    let (client, _) = instance(1);
    let listen = server.create_listen_socket_ip("[::]:0".parse().unwrap(), &[]);
    assert_ne!(listen, sockworks::ListenSocket::INVALID);
    let port = server.get_listen_socket_address(listen).unwrap().port();
    let v4 = client.connect_by_ip_address(format!("127.0.0.1:{port}").parse().unwrap(), &[]);
    let v6 = client.connect_by_ip_address(format!("[::1]:{port}").parse().unwrap(), &[]);
    assert!(wait_until(&[&server], || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|e| e.info.state == ConnectionState::Connecting)
            .count()
            == 2
    }));
    let incoming: Vec<_> = seen.lock().unwrap().iter().map(|e| e.conn).collect();
    for c in incoming {
        assert_eq!(server.accept_connection(c), EResult::Ok);
    }
    assert!(wait_until(&[&server, &client], || {
        client.connection_state(v4) == ConnectionState::Connected
            && client.connection_state(v6) == ConnectionState::Connected
    }));
    for c in [v4, v6] {
        client
            .send_message_to_connection(c, b"dual", send_flags::RELIABLE)
            .unwrap();
    }
    let group = server.create_poll_group();
    for e in seen.lock().unwrap().iter() {
        server.set_connection_poll_group(e.conn, group);
    }
    let mut got = Vec::new();
    assert!(wait_until(&[&server], || {
        server.receive_messages_on_poll_group(group, &mut got, 16);
        got.len() == 2
    }));
    assert!(got.iter().all(|m| m.data == b"dual"));
}

#[test]
fn a_connection_in_a_poll_group_can_still_be_read_on_its_own() {
    // GNS keeps each message in both queues: ReceiveMessagesOnConnection takes a member's
    // messages (in order) and the group no longer returns them.
    let l = links(1, 1, 2, &[]);
    let (a, b) = (l.pairs[0], l.pairs[1]);
    let group = l.server.create_poll_group();
    assert!(l.server.set_connection_poll_group(a.1, group));
    assert!(l.server.set_connection_poll_group(b.1, group));
    for (conn, text) in [
        (a.0, "a1"),
        (b.0, "b1"),
        (a.0, "a2"),
        (b.0, "b2"),
        (a.0, "a3"),
    ] {
        l.client
            .send_message_to_connection(conn, text.as_bytes(), send_flags::RELIABLE)
            .unwrap();
    }
    let mut mine = Vec::new();
    assert!(wait_until(&[&l.server], || {
        l.server.receive_messages_on_connection(a.1, &mut mine, 2);
        mine.len() >= 3
    }));
    let texts: Vec<&[u8]> = mine.iter().map(|m| m.data.as_slice()).collect();
    assert_eq!(texts, [&b"a1"[..], b"a2", b"a3"]);
    assert!(mine.iter().all(|m| m.conn == a.1));
    let mut rest = Vec::new();
    assert!(wait_until(&[&l.server], || {
        l.server
            .receive_messages_on_poll_group(group, &mut rest, 16);
        rest.len() >= 2
    }));
    let texts: Vec<&[u8]> = rest.iter().map(|m| m.data.as_slice()).collect();
    assert_eq!(texts, [&b"b1"[..], b"b2"]);
    assert_eq!(
        l.server
            .receive_messages_on_poll_group(group, &mut rest, 16),
        0
    );
    assert_eq!(
        l.server.receive_messages_on_connection(b.1, &mut rest, 16),
        0
    );
}
