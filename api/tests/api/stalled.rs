//! A receiver that stops reading (issue 16): its messages wait within its receive limits, the
//! sender's buffer fills and sends return LimitExceeded, nothing is lost, and once it reads
//! again everything arrives in order.

use std::time::Duration;

use sockworks::engine::shard::Clock;
use sockworks::{ConfigValue, EResult, send_flags};

use crate::common::*;

const MSG: usize = 1024;
const RECV_LIMIT: i32 = 64 * 1024;

#[test]
fn a_stalled_reader_holds_bounded_memory_and_loses_nothing() {
    let l = link(
        1,
        &[
            ConfigValue::RecvBufferSize(RECV_LIMIT),
            ConfigValue::SendBufferSize(128 * 1024),
            ConfigValue::SendRateMin(64 * 1024 * 1024),
            ConfigValue::SendRateMax(64 * 1024 * 1024),
        ],
    );
    // The client does not read: the server sends until its buffer is full.
    let clock = Clock::new();
    let start = clock.now();
    let mut sent: u32 = 0;
    // Full for good: sends still refused after half a second of the shards moving data.
    let mut refused_since = None;
    let limited = loop {
        let mut payload = vec![0u8; MSG];
        payload[..4].copy_from_slice(&sent.to_le_bytes());
        match l
            .server
            .send_message_to_connection(l.s_conn, &payload, send_flags::RELIABLE)
        {
            Ok(_) => {
                sent += 1;
                refused_since = None;
            }
            Err(EResult::LimitExceeded) => {
                let since = *refused_since.get_or_insert(clock.now());
                if clock.now().saturating_since(since) > Duration::from_millis(500) {
                    break true;
                }
                let seen = generations(&[&l.server, &l.client]);
                wait_activity(&[&l.server, &l.client], &seen);
            }
            Err(e) => panic!("send failed: {e:?}"),
        }
        if clock.now().saturating_since(start) > Duration::from_secs(20) {
            break false;
        }
    };
    assert!(limited, "LimitExceeded after {sent} messages");
    assert!(
        u64::from(sent) * MSG as u64 > 128 * 1024,
        "more than the send buffer went out before the limit ({sent} messages)"
    );

    // What waits for the client's application is within its receive limit (plus one message).
    let mut waiting = Vec::new();
    l.client
        .receive_messages_on_connection(l.c_conn, &mut waiting, 100_000);
    assert!(
        waiting.len() * MSG <= RECV_LIMIT as usize + MSG,
        "{} messages waited unread",
        waiting.len()
    );

    // Reading again: every message arrives, once, in order.
    let mut got = waiting;
    let ok = wait_until(&[&l.client, &l.server], || {
        l.client
            .receive_messages_on_connection(l.c_conn, &mut got, 1024);
        got.len() >= sent as usize
    });
    assert!(ok, "{} of {sent} arrived", got.len());
    for (i, m) in got.iter().enumerate() {
        assert_eq!(
            u32::from_le_bytes(m.data[..4].try_into().unwrap()),
            i as u32
        );
    }
    assert_eq!(got.len(), sent as usize);
}
