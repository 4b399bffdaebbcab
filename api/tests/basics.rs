//! End to end over 127.0.0.1: listen, connect, accept, messages both ways, close.

mod common;

use common::*;
use sockworks::{ConnectionState, EResult, send_flags};

#[test]
fn connect_send_receive_close() {
    let l = link(2, &[]);
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
