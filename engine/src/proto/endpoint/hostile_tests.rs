//! Hostile traffic from strangers at a listening endpoint (issue 16): whatever arrives from an
//! address with no connection, no reply is larger than the datagram that caused it (no
//! amplification), nothing panics, and no per-client state is kept without a valid cookie.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::testing::sim_secret;
use crate::wire::control::ControlMessage;
use crate::wire::proto::{ChallengeRequest, ConnectRequest, ConnectionClosed};

fn encode(msg: ControlMessage) -> Vec<u8> {
    let mut out = Vec::new();
    // invariant: every message built below has its required fields.
    msg.encode(&mut out).expect("encodable control message");
    out
}

/// A datagram a stranger might send: well-formed control messages with arbitrary fields (a
/// ConnectRequest's cookie is never valid), data packets for arbitrary connection ids,
/// truncations of all of them, and raw bytes.
fn stranger_datagram() -> impl Strategy<Value = Vec<u8>> {
    let challenge = (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(id, ts, v)| {
        encode(
            ChallengeRequest {
                connection_id: Some(id),
                my_timestamp: Some(ts),
                protocol_version: Some(v),
            }
            .into(),
        )
    });
    let connect = (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(id, cookie, ts)| {
        encode(
            ConnectRequest {
                client_connection_id: Some(id),
                challenge: Some(cookie),
                my_timestamp: Some(ts),
                ..ConnectRequest::default()
            }
            .into(),
        )
    });
    let closed = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(to, from, reason)| {
        encode(
            ConnectionClosed {
                to_connection_id: Some(to),
                from_connection_id: Some(from),
                reason_code: Some(reason),
                debug: Some("bye".to_owned()),
            }
            .into(),
        )
    });
    let data = (
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(flags, id, rest)| {
            let mut d = vec![0x80 | flags];
            d.extend_from_slice(&id.to_le_bytes());
            d.extend(rest);
            d
        });
    let raw = prop::collection::vec(any::<u8>(), 0..1300);
    let whole = prop_oneof![challenge, connect, closed, data, raw];
    (whole, any::<prop::sample::Index>(), any::<bool>()).prop_map(|(d, cut, truncate)| {
        if truncate && !d.is_empty() {
            d[..cut.index(d.len())].to_vec()
        } else {
            d
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_reply_to_a_stranger_is_larger_than_what_it_sent(
        datagrams in prop::collection::vec(stranger_datagram(), 1..40),
    ) {
        let mut ep = Endpoint::new(
            EndpointConfig { listen: true, ..Default::default() },
            9,
            &sim_secret(9),
        );
        let mut now = Timestamp::from_micros(1_000_000);
        let mut out = Vec::new();
        for (i, d) in datagrams.into_iter().enumerate() {
            // Each from its own address (no connection, no earlier challenge), a little later
            // than the last (so the spam limiter lets replies through).
            let from = SocketAddr::from(([127, 0, 1, (i % 250) as u8 + 1], 20_000 + i as u16));
            now = now + Duration::from_millis(300);
            let sent = d.len();
            let mut d = d;
            ep.handle_datagram(now, from.into(), &mut d);
            loop {
                out.clear();
                let Some(t) = ep.poll_transmit(now, &mut out) else { break };
                prop_assert_eq!(t.to, from, "replies go only to the sender");
                prop_assert!(
                    out.len() <= sent,
                    "a {}-byte reply to a {}-byte datagram", out.len(), sent
                );
            }
        }
        let stats = ep.stats();
        prop_assert_eq!(stats.connections, 0, "no state without a valid cookie");
        prop_assert_eq!(stats.incoming_requests, 0);
        prop_assert_eq!(stats.queued_replies, 0, "every reply went out");
    }
}
