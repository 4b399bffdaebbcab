//! Receiving into a caller's buffer with a bound (the `game-networking-sockets` crate's
//! receive_into_tests, ported to `receive_messages_on_*(conn, out, max)`): no call returns
//! more than `max`, one buffer serves every call, and messages dropped unread are gone, not
//! redelivered.

use crate::common::*;
use sockworks::{Message, send_flags};

const N: usize = 10;

fn send_numbered(l: &Link) {
    for i in 0..N {
        let msg = format!("msg-{i}");
        assert_eq!(
            l.client
                .send_message_to_connection(l.c_conn, msg.as_bytes(), send_flags::RELIABLE),
            Ok(i as i64 + 1)
        );
    }
}

#[test]
fn bounded_receives_reuse_one_buffer() {
    let l = link(1, &[]);
    send_numbered(&l);
    const CAP: usize = 4;
    let mut buf: Vec<Message> = Vec::with_capacity(CAP);
    let mut received = Vec::new();
    assert!(wait_until(&[&l.server], || {
        buf.clear();
        let n = l
            .server
            .receive_messages_on_connection(l.s_conn, &mut buf, CAP);
        assert!((0..=CAP as i32).contains(&n), "batch of {n}");
        assert_eq!(buf.len(), n as usize, "returns what it appended");
        received.extend(
            buf.drain(..)
                .map(|m| String::from_utf8(m.into_data()).unwrap()),
        );
        received.len() >= N
    }));
    let want: Vec<String> = (0..N).map(|i| format!("msg-{i}")).collect();
    assert_eq!(received, want, "all, in reliable order");
    assert_eq!(buf.capacity(), CAP, "the one buffer never grew");
}

#[test]
fn max_zero_takes_nothing() {
    let l = link(1, &[]);
    send_numbered(&l);
    let mut buf = Vec::new();
    // One at a time, then ask for none.
    assert!(wait_until(&[&l.server], || l
        .server
        .receive_messages_on_connection(l.s_conn, &mut buf, 1)
        == 1));
    assert_eq!(buf.len(), 1);
    assert_eq!(
        l.server
            .receive_messages_on_connection(l.s_conn, &mut buf, 0),
        0
    );
    assert_eq!(buf.len(), 1);
    let rest = recv_n(&l.server, l.s_conn, N - 1);
    assert_eq!(rest.len(), N - 1);
    assert_eq!(rest[0].data, b"msg-1");
}

#[test]
fn dropped_batch_is_released_and_not_redelivered() {
    let l = link(1, &[]);
    send_numbered(&l);
    const CAP: usize = 3;
    let mut dropped = 0;
    let mut consumed = Vec::new();
    assert!(wait_until(&[&l.server], || {
        let mut batch = Vec::new();
        let n = l
            .server
            .receive_messages_on_connection(l.s_conn, &mut batch, CAP);
        assert!(n as usize <= CAP);
        if dropped == 0 && n > 0 {
            dropped = batch.len();
            drop(batch);
        } else {
            consumed.extend(batch.into_iter().map(|m| m.message_number));
        }
        dropped + consumed.len() >= N
    }));
    assert!(dropped >= 1);
    let want: Vec<i64> = (dropped as i64 + 1..=N as i64).collect();
    assert_eq!(consumed, want, "the rest, once each");
    let mut extra = Vec::new();
    assert_eq!(
        l.server
            .receive_messages_on_connection(l.s_conn, &mut extra, 64),
        0
    );
}

#[test]
fn poll_group_receives_are_bounded_too() {
    let l = links(2, 1, 2, &[]);
    let g = l.server.create_poll_group();
    for &(_, s) in &l.pairs {
        assert!(l.server.set_connection_poll_group(s, g));
    }
    for (k, &(c, _)) in l.pairs.iter().enumerate() {
        for i in 0..N {
            let data = [k as u8, i as u8];
            l.client
                .send_message_to_connection(c, &data, send_flags::RELIABLE)
                .unwrap();
        }
    }
    let mut got: Vec<Message> = Vec::new();
    assert!(wait_until(&[&l.server], || {
        let before = got.len();
        let n = l.server.receive_messages_on_poll_group(g, &mut got, 3);
        assert!((0..=3).contains(&n));
        assert_eq!(got.len() - before, n as usize);
        got.len() >= 2 * N
    }));
    for (k, &(_, s)) in l.pairs.iter().enumerate() {
        let mine: Vec<u8> = got
            .iter()
            .filter(|m| m.conn == s)
            .map(|m| {
                assert_eq!(m.data[0], k as u8);
                m.data[1]
            })
            .collect();
        assert_eq!(
            mine,
            (0..N as u8).collect::<Vec<_>>(),
            "connection {k} in order"
        );
    }
}
