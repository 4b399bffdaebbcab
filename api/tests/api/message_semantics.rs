//! The send path's message semantics (the `game-networking-sockets` crate's
//! message_semantics_tests, ported): SendMessages reports a number or a negated EResult per
//! message, failed messages do not disturb the others, payload sizes and user data arrive as
//! GNS documents.

use crate::common::*;
use sockworks::{Connection, EResult, OutMessage, send_flags};

fn out(conn: Connection, data: &[u8], flags: i32) -> OutMessage {
    OutMessage {
        conn,
        data: data.to_vec(),
        flags,
        lane: 0,
    }
}

const INVALID_PARAM: i64 = -(EResult::InvalidParam as i64);

#[test]
fn send_messages_to_an_invalid_handle_fails_that_message() {
    let (s, _) = instance(1);
    let listen = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(listen, sockworks::ListenSocket::INVALID);
    let r = s.send_messages(vec![out(Connection::INVALID, b"this will fail", 8)]);
    assert_eq!(r, vec![INVALID_PARAM]);
}

#[test]
fn every_message_to_an_unknown_handle_fails() {
    // GNS (this version) skips later messages on a handle that already failed in the batch
    // and leaves 0 in their slot; the API reference promises a negated EResult for every
    // failed message, which is what this API reports.
    let (s, _) = instance(1);
    let fake = Connection(0xDEAD_BEEF);
    let r = s.send_messages(vec![
        out(fake, b"first", send_flags::RELIABLE),
        out(fake, b"second", send_flags::RELIABLE),
    ]);
    assert_eq!(r, vec![INVALID_PARAM, INVALID_PARAM]);
}

#[test]
fn mixed_batch_sends_the_good_and_fails_the_bad() {
    let l = link(1, &[]);
    let r = l.client.send_messages(vec![
        out(l.c_conn, b"good", send_flags::RELIABLE),
        out(Connection::INVALID, b"bad", send_flags::RELIABLE),
        out(l.c_conn, b"good again", send_flags::RELIABLE),
    ]);
    assert_eq!(r, vec![1, INVALID_PARAM, 2]);
    let got = recv_n(&l.server, l.s_conn, 2);
    let data: Vec<&[u8]> = got.iter().map(|m| m.data.as_slice()).collect();
    assert_eq!(data, vec![&b"good"[..], &b"good again"[..]]);
    let mut extra = Vec::new();
    assert_eq!(
        l.server
            .receive_messages_on_connection(l.s_conn, &mut extra, 8),
        0
    );
}

#[test]
fn sizes_flags_and_numbers_arrive_as_sent() {
    let l = link(1, &[]);
    let sizes = [0usize, 1, 1199, 1200, 1201, 5000, 70_000];
    // Reliable and unreliable messages share one number sequence per lane.
    for (i, &n) in sizes.iter().enumerate() {
        let flags = if i == 3 {
            send_flags::UNRELIABLE_NO_NAGLE
        } else {
            send_flags::RELIABLE
        };
        let data: Vec<u8> = (0..n).map(|b| (b % 251) as u8).collect();
        assert_eq!(
            l.client.send_message_to_connection(l.c_conn, &data, flags),
            Ok(i as i64 + 1),
            "size {n}"
        );
    }
    let got = recv_n(&l.server, l.s_conn, sizes.len());
    let reliable: Vec<_> = got
        .iter()
        .filter(|m| m.flags == send_flags::RELIABLE)
        .map(|m| (m.message_number, m.data.len()))
        .collect();
    assert_eq!(
        reliable,
        vec![(1, 0), (2, 1), (3, 1199), (5, 1201), (6, 5000), (7, 70_000)],
        "each reliable send is one message of the same size, in order"
    );
    for m in &got {
        assert!(
            m.data
                .iter()
                .enumerate()
                .all(|(b, &v)| v == (b % 251) as u8)
        );
        assert_eq!(m.conn, l.s_conn);
        assert_eq!(m.lane, 0);
    }
    // Unreliable on loopback without loss: it arrives, unflagged, with its number.
    let unreliable: Vec<_> = got
        .iter()
        .filter(|m| m.flags != send_flags::RELIABLE)
        .map(|m| (m.flags, m.message_number, m.data.len()))
        .collect();
    assert_eq!(unreliable, vec![(0, 4, 1200)]);
}

#[test]
fn received_messages_carry_the_latest_user_data() {
    let l = link(1, &[]);
    assert!(l.server.set_connection_user_data(l.s_conn, 0xDEAD_BEEF));
    assert_eq!(
        l.client.send_message_to_connection(l.c_conn, b"a", 8),
        Ok(1)
    );
    let got = recv_n(&l.server, l.s_conn, 1);
    assert_eq!(got[0].user_data, 0xDEAD_BEEF);
    assert!(l.server.set_connection_user_data(l.s_conn, -7));
    assert_eq!(l.server.get_connection_user_data(l.s_conn), -7);
    assert_eq!(
        l.client.send_message_to_connection(l.c_conn, b"b", 8),
        Ok(2)
    );
    let got = recv_n(&l.server, l.s_conn, 1);
    assert_eq!(got[0].user_data, -7);
    assert_eq!(got[0].message_number, 2);
}

#[test]
fn send_messages_takes_many_connections_in_one_call() {
    let l = links(2, 1, 3, &[]);
    let mut batch = Vec::new();
    for round in 0..4u8 {
        for (k, &(c, _)) in l.pairs.iter().enumerate() {
            batch.push(out(c, &[k as u8, round], send_flags::RELIABLE));
        }
    }
    let r = l.client.send_messages(batch);
    // Numbers count per connection, in batch order.
    assert_eq!(r, vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    for (k, &(_, s)) in l.pairs.iter().enumerate() {
        let got = recv_n(&l.server, s, 4);
        let data: Vec<Vec<u8>> = got.into_iter().map(sockworks::Message::into_data).collect();
        let want: Vec<Vec<u8>> = (0..4u8).map(|r| vec![k as u8, r]).collect();
        assert_eq!(data, want, "connection {k}");
    }
}
