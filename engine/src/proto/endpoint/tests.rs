//! Endpoint-level rules: the stateless challenge, routing, replies to strangers.

use std::time::Duration;

use super::*;
use crate::wire::control::{ControlMessage, decode_control};
use crate::wire::proto::{ChallengeRequest, ConnectRequest, ConnectionClosed};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn encode(msg: ControlMessage) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    out
}

fn drain(ep: &mut Endpoint, now: Timestamp) -> Vec<(SocketAddr, ControlMessage)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(to) = {
        buf.clear();
        ep.poll_transmit(now, &mut buf)
    } {
        out.push((to, decode_control(&buf).unwrap()));
    }
    out
}

fn listener() -> Endpoint {
    Endpoint::new(
        EndpointConfig {
            listen: true,
            ..Default::default()
        },
        1,
    )
}

#[test]
fn challenge_request_gets_a_stateless_reply() {
    let mut ep = listener();
    let now = Timestamp::from_micros(5_000_000);
    let from = addr("127.0.0.1:4000");
    let req = ChallengeRequest {
        connection_id: Some(0x0102_0304),
        my_timestamp: Some(77),
        protocol_version: Some(13),
    };
    ep.handle_datagram(now, from, &mut encode(req.clone().into()));
    let out = drain(&mut ep, now);
    assert_eq!(out.len(), 1);
    let (to, ControlMessage::ChallengeReply(reply)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(*to, from);
    assert_eq!(reply.connection_id, Some(0x0102_0304));
    assert_eq!(reply.your_timestamp, Some(77));
    assert_eq!(reply.protocol_version, Some(13));
    assert_eq!(
        ep.connection_count(),
        0,
        "no state before a valid ConnectRequest"
    );
    // A zero connection id is dropped and counted.
    let zero = ChallengeRequest {
        connection_id: Some(0),
        ..req
    };
    ep.handle_datagram(now, from, &mut encode(zero.into()));
    assert!(drain(&mut ep, now).is_empty());
    assert_eq!(ep.counters().bad_control, 1);
}

#[test]
fn connect_request_needs_a_fresh_challenge_for_its_address() {
    let mut ep = listener();
    let now = Timestamp::from_micros(5_000_000);
    let from = addr("127.0.0.1:4000");
    let req = ConnectRequest {
        client_connection_id: Some(0x0102_0304),
        challenge: Some(12345),
        ..Default::default()
    };
    ep.handle_datagram(now, from, &mut encode(req.into()));
    assert_eq!(ep.counters().bad_challenge, 1);
    // A real challenge, but used from another address or too late.
    let good = ep.challenge.issue(now, from);
    let req = ConnectRequest {
        client_connection_id: Some(0x0102_0304),
        challenge: Some(good),
        ..Default::default()
    };
    ep.handle_datagram(now, addr("127.0.0.1:4001"), &mut encode(req.clone().into()));
    ep.handle_datagram(now + Duration::from_secs(6), from, &mut encode(req.into()));
    assert_eq!(ep.counters().bad_challenge, 3);
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn non_listening_endpoint_ignores_requests() {
    let mut ep = Endpoint::new(EndpointConfig::default(), 2);
    let req = ChallengeRequest {
        connection_id: Some(9 << 16 | 9),
        my_timestamp: Some(1),
        protocol_version: Some(13),
    };
    ep.handle_datagram(
        Timestamp::ZERO,
        addr("127.0.0.1:1"),
        &mut encode(req.into()),
    );
    assert!(drain(&mut ep, Timestamp::ZERO).is_empty());
    assert_eq!(ep.counters().not_listening, 1);
}

#[test]
fn strangers_get_no_connection_replies() {
    let mut ep = listener();
    let from = addr("127.0.0.1:4000");
    let closed = ConnectionClosed {
        debug: Some("bye".into()),
        reason_code: Some(1000),
        to_connection_id: Some(0x0a0a_0b0b),
        from_connection_id: Some(0x0c0c_0d0d),
    };
    ep.handle_datagram(Timestamp::ZERO, from, &mut encode(closed.into()));
    let out = drain(&mut ep, Timestamp::ZERO);
    let [(_, ControlMessage::NoConnection(n))] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (n.from_connection_id, n.to_connection_id),
        (Some(0x0a0a_0b0b), Some(0x0c0c_0d0d))
    );
    // Stray data packets: one NoConnection per 250 ms at most.
    let mut data = vec![0x80, 1, 2, 3, 4, 2, 0];
    data.extend_from_slice(&[0; 30]);
    for i in 0..10u64 {
        ep.handle_datagram(Timestamp::from_micros(i * 50_000), from, &mut data.clone());
    }
    let replies = drain(&mut ep, Timestamp::from_micros(500_000));
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(ep.counters().unknown_connection, 10);
}
