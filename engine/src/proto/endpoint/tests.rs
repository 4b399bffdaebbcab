//! Endpoint-level rules: the stateless challenge, routing, replies to strangers.

use std::time::Duration;

use super::*;
use crate::entropy::SecretSeed;
use crate::proto::end_reason;
use crate::testing::sim_secret;
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
    while let Some(t) = {
        buf.clear();
        ep.poll_transmit(now, &mut buf)
    } {
        out.push((t.to, decode_control(&buf).unwrap()));
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
        &sim_secret(1),
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
    ep.handle_datagram(now, from.into(), &mut encode(req.clone().into()));
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
    ep.handle_datagram(now, from.into(), &mut encode(zero.into()));
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
    ep.handle_datagram(now, from.into(), &mut encode(req.into()));
    assert_eq!(ep.counters().bad_challenge, 1);
    // A real challenge, but used from another address or too late.
    let good = ep.challenge.issue(now, from);
    let req = ConnectRequest {
        client_connection_id: Some(0x0102_0304),
        challenge: Some(good),
        ..Default::default()
    };
    ep.handle_datagram(
        now,
        addr("127.0.0.1:4001").into(),
        &mut encode(req.clone().into()),
    );
    ep.handle_datagram(
        now + Duration::from_secs(6),
        from.into(),
        &mut encode(req.into()),
    );
    assert_eq!(ep.counters().bad_challenge, 3);
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn non_listening_endpoint_ignores_requests() {
    let mut ep = Endpoint::new(EndpointConfig::default(), 2, &sim_secret(2));
    let req = ChallengeRequest {
        connection_id: Some(9 << 16 | 9),
        my_timestamp: Some(1),
        protocol_version: Some(13),
    };
    ep.handle_datagram(
        Timestamp::ZERO,
        addr("127.0.0.1:1").into(),
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
    ep.handle_datagram(Timestamp::ZERO, from.into(), &mut encode(closed.into()));
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
        ep.handle_datagram(
            Timestamp::from_micros(i * 50_000),
            from.into(),
            &mut data.clone(),
        );
    }
    let replies = drain(&mut ep, Timestamp::from_micros(500_000));
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(ep.counters().unknown_connection, 10);
}

/// Moves every datagram between a single-socket client and a multi-socket server until quiet;
/// returns the local sockets the server's datagrams left by.
fn shuttle(
    client: &mut Endpoint,
    server: &mut Endpoint,
    server_local: LocalSocket,
    now: Timestamp,
) -> Vec<LocalSocket> {
    shuttle_from(client, addr("127.0.0.1:5000"), server, server_local, now)
}

/// [`shuttle`] for a client at `ca`.
fn shuttle_from(
    client: &mut Endpoint,
    ca: SocketAddr,
    server: &mut Endpoint,
    server_local: LocalSocket,
    now: Timestamp,
) -> Vec<LocalSocket> {
    let sa = addr("127.0.0.1:6000");
    let mut used = Vec::new();
    for _ in 0..20 {
        let mut moved = false;
        let mut buf = Vec::new();
        while client.poll_transmit(now, &mut buf).is_some() {
            server.handle_datagram(
                now,
                RecvMeta {
                    local: server_local,
                    from: ca,
                },
                &mut buf,
            );
            buf.clear();
            moved = true;
        }
        while let Some(Transmit { local, .. }) = server.poll_transmit(now, &mut buf) {
            used.push(local);
            client.handle_datagram(now, sa.into(), &mut buf);
            buf.clear();
            moved = true;
        }
        if !moved {
            break;
        }
    }
    used
}

#[test]
fn listeners_on_several_local_sockets() {
    let mut server = Endpoint::new(EndpointConfig::default(), 2, &sim_secret(2));
    let cfg = ConnectionConfig::default();
    server.add_listener(
        1,
        Listener {
            handle: 11,
            connection: cfg,
            admission: None,
        },
    );
    server.add_listener(
        2,
        Listener {
            handle: 22,
            connection: cfg,
            admission: None,
        },
    );
    let mut client = Endpoint::new(EndpointConfig::default(), 3, &sim_secret(3));
    let now = Timestamp::from_micros(1_000_000);
    client
        .connect(now, addr("127.0.0.1:6000").into(), None)
        .unwrap();
    let used = shuttle(&mut client, &mut server, 2, now);
    assert!(!used.is_empty() && used.iter().all(|&l| l == 2), "{used:?}");
    let ev = server.poll_event().expect("incoming connection");
    assert!(ev.incoming);
    assert_eq!(server.accepted_by(ev.connection), Some(22));
    assert_eq!(server.local_of(ev.connection), 2);
    server.accept(now, ev.connection).unwrap();
    shuttle(&mut client, &mut server, 2, now);
    assert_eq!(
        server.connection(ev.connection).map(|c| c.state()),
        Some(State::Connected)
    );
    // Closing the other listener leaves it alone; closing its own closes it.
    assert!(server.remove_listener(now, 1).is_empty());
    assert_eq!(server.remove_listener(now, 2), vec![ev.connection]);
    let used = shuttle(&mut client, &mut server, 2, now);
    assert!(
        used.contains(&2),
        "the close leaves by the connection's socket"
    );
    // A request on a socket that no longer listens is counted, not answered.
    let mut c2 = Endpoint::new(EndpointConfig::default(), 4, &sim_secret(4));
    c2.connect(now, addr("127.0.0.1:6000").into(), None)
        .unwrap();
    let before = server.counters().not_listening;
    assert!(shuttle(&mut c2, &mut server, 2, now).is_empty());
    assert!(server.counters().not_listening > before);
}

/// The end reason a client saw, once its connection ended.
fn ended_with(client: &mut Endpoint) -> Option<(u32, String)> {
    let mut last = None;
    while let Some(ev) = client.poll_event() {
        if ev.change.end_reason != 0 {
            last = Some((ev.change.end_reason, ev.change.end_debug));
        }
    }
    last
}

#[test]
fn connection_limits_refuse_cleanly_and_free_their_slots() {
    use crate::proto::admission::{Admission, AdmissionLimits};
    let admission = std::sync::Arc::new(Admission::new(
        AdmissionLimits {
            max_connections: 2,
            max_per_address: 10,
            max_pending: 1,
        },
        5,
    ));
    let mut server = Endpoint::new(EndpointConfig::default(), 2, &sim_secret(2));
    server.add_listener(
        1,
        Listener {
            handle: 11,
            connection: ConnectionConfig::default(),
            admission: Some(admission.clone()),
        },
    );
    let now = Timestamp::from_micros(1_000_000);
    let client = |seed: u64| {
        let mut c = Endpoint::new(EndpointConfig::default(), seed, &sim_secret(seed));
        c.connect(now, addr("127.0.0.1:6000").into(), None).unwrap();
        c
    };
    let mut first = client(10);
    shuttle(&mut first, &mut server, 1, now);
    let ev = server.poll_event().expect("the first arrives");
    assert_eq!(admission.counts(), (1, 1));

    // One is waiting for its accept: the next is refused at once, with a reason.
    let mut second = client(11);
    shuttle(&mut second, &mut server, 1, now);
    assert_eq!(
        ended_with(&mut second),
        Some((
            end_reason::MISC_GENERIC,
            "Too many connections waiting to be accepted".to_owned()
        ))
    );
    assert_eq!(server.counters().refused_limit, 1);
    assert!(
        server.poll_event().is_none(),
        "no state for the refused one"
    );

    // Accepting frees the pending slot; then the total is the limit.
    server.accept(now, ev.connection).unwrap();
    shuttle(&mut first, &mut server, 1, now);
    while server.poll_event().is_some() {}
    let mut third = client(12);
    shuttle_from(&mut third, addr("127.0.0.1:5003"), &mut server, 1, now);
    let third_ev = server.poll_event().expect("the third arrives");
    assert_eq!(admission.counts(), (2, 1));
    let mut fourth = client(13);
    shuttle(&mut fourth, &mut server, 1, now);
    assert_eq!(
        ended_with(&mut fourth).map(|(r, _)| r),
        Some(end_reason::MISC_GENERIC)
    );

    // A connection closed and forgotten gives its slot back; the first is untouched.
    server
        .close(now, third_ev.connection, 0, "bye", false)
        .unwrap();
    let mut t = now;
    for _ in 0..50 {
        t = t + Duration::from_millis(200);
        server.handle_timeout(t);
        first.handle_timeout(t);
        third.handle_timeout(t);
        shuttle_from(&mut third, addr("127.0.0.1:5003"), &mut server, 1, t);
        shuttle(&mut first, &mut server, 1, t);
    }
    assert_eq!(admission.counts().0, 1, "the closed one was released");
    assert_eq!(
        server.connection(ev.connection).map(|c| c.state()),
        Some(State::Connected)
    );
}

/// The cookie a listener built from public seed 7 and `secret` answers one fixed
/// ChallengeRequest with.
fn cookie_from(secret: &SecretSeed) -> Option<u64> {
    let cfg = EndpointConfig {
        listen: true,
        ..Default::default()
    };
    let mut ep = Endpoint::new(cfg, 7, secret);
    let now = Timestamp::from_micros(5_000_000);
    let req = ChallengeRequest {
        connection_id: Some(0x0102_0304),
        my_timestamp: Some(77),
        protocol_version: Some(13),
    };
    ep.handle_datagram(now, addr("127.0.0.1:4000").into(), &mut encode(req.into()));
    match drain(&mut ep, now).first() {
        Some((_, ControlMessage::ChallengeReply(r))) => r.challenge,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_same_public_seed_gives_different_secrets_and_the_same_public_values() {
    let (a, b) = (
        SecretSeed::from_os().expect("OS randomness"),
        SecretSeed::from_os().expect("OS randomness"),
    );
    // Secrets: the challenge key (seen through its cookies) and the identity key differ...
    assert_ne!(cookie_from(&a), cookie_from(&b));
    let ea = Endpoint::new(EndpointConfig::default(), 7, &a);
    let eb = Endpoint::new(EndpointConfig::default(), 7, &b);
    assert_ne!(ea.identity_public_key(), eb.identity_public_key());
    // ...and repeat only with the secret seed (tests and the simulator replay).
    assert_eq!(cookie_from(&a), cookie_from(&a));
    assert_eq!(
        ea.identity_public_key(),
        Endpoint::new(EndpointConfig::default(), 7, &a).identity_public_key()
    );
    // Public values still follow the public seed alone: the first client connection id is the
    // same whatever the secrets.
    let now = Timestamp::from_micros(1_000_000);
    let server = addr("127.0.0.1:6000");
    let (mut ca, mut cb) = (
        Endpoint::new(EndpointConfig::default(), 7, &a),
        Endpoint::new(EndpointConfig::default(), 7, &b),
    );
    assert_eq!(
        ca.connect(now, server.into(), None).unwrap(),
        cb.connect(now, server.into(), None).unwrap()
    );
}

#[path = "trust_tests.rs"]
mod trust_tests;
