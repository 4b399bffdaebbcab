//! Signal-level scenarios: GNS's captured signals, timing, closing rules, routing, and two
//! connections talking through a lossy, duplicating, reordering channel.

use std::time::Duration;

use prost::Message;

use super::signaling::{CONNECT_RETRY_INTERVAL, MIN_SEND_INTERVAL, RELIABLE_RTO, SCHEDULE_DELAY};
use super::*;
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::{CertificateSigned, CryptInfoSigned};

mod lossy;

const CLIENT_ID: u32 = 0xde27_f352;
const SERVER_ID: u32 = 0xd6df_aebc;
const CLIENT: &str = "str:peer_client";
const SERVER: &str = "str:peer_server";

fn ms(n: u64) -> Timestamp {
    Timestamp::from_micros(n * 1000)
}

fn pwd(s: &str) -> IceRendezvous {
    IceRendezvous {
        add_candidate: None,
        auth: Some(IceAuth {
            pwd_frag: Some(s.into()),
        }),
    }
}

fn cand(s: &str) -> IceRendezvous {
    IceRendezvous {
        add_candidate: Some(IceCandidate {
            candidate: Some(s.into()),
        }),
        auth: None,
    }
}

fn the_three() -> Vec<IceRendezvous> {
    vec![
        pwd("hgx6g"),
        cand("candidate:39889318 0 udp 2130706431 192.0.2.2 43429 typ host"),
        cand("candidate:25119899 0 udp 2130706175 fd00::2 52378 typ host"),
    ]
}

fn request() -> P2pConnectRequest {
    let crypt = CryptInfoSigned {
        info: Some(vec![0x08, 0x01]),
        signature: Some(vec![7; 64]),
    };
    let cert = CertificateSigned {
        cert: Some(vec![0x08, 0x01]),
        ..CertificateSigned::default()
    };
    connect_request(crypt, cert, 0, 0)
}

fn ok() -> P2pConnectOk {
    P2pConnectOk {
        crypt: Some(CryptInfoSigned::default()),
        cert: Some(CertificateSigned::default()),
    }
}

fn client(now: Timestamp) -> Signaling {
    Signaling::new(
        now,
        SignalingConfig {
            local_id: CLIENT_ID,
            local_identity: CLIENT.into(),
            remote_identity: Some(SERVER.into()),
            initiator: true,
        },
    )
}

fn server(now: Timestamp) -> Signaling {
    let mut s = Signaling::new(
        now,
        SignalingConfig {
            local_id: SERVER_ID,
            local_identity: SERVER.into(),
            remote_identity: Some(CLIENT.into()),
            initiator: false,
        },
    );
    s.set_remote(CLIENT_ID, CLIENT.into());
    s
}

/// A protobuf key and length, written by hand so the test does not lean on prost's encoder.
fn field(tag: u8, body: &[u8]) -> Vec<u8> {
    assert!(tag < 16 && body.len() < 128);
    let mut v = vec![(tag << 3) | 2, u8::try_from(body.len()).unwrap()];
    v.extend_from_slice(body);
    v
}

#[test]
fn first_client_signal_decodes_and_reencodes_byte_for_byte() {
    // connect_request { crypt, cert, to_virtual_port 0, from_virtual_port 0 }, then the
    // common fields and three reliable messages, in GNS's order (spec §3.2).
    let crypt = [field(1, &[0x08, 0x01]), field(2, &[7; 64])].concat();
    let cert = field(4, &[0x08, 0x01]);
    let req = [field(6, &crypt), field(7, &cert), vec![0x48, 0, 0x50, 0]].concat();
    let ice: Vec<Vec<u8>> = the_three()
        .iter()
        .map(|m| field(13, &field(1, &m.encode_to_vec())))
        .collect();
    let bytes = [
        field(4, &req),
        vec![0x38, 1],
        field(8, CLIENT.as_bytes()),
        vec![0x4d, 0x52, 0xf3, 0x27, 0xde],
        field(10, SERVER.as_bytes()),
        vec![0x58, 0, 0x60, 1],
        ice.concat(),
    ]
    .concat();
    let msg = parse_signal(&bytes).unwrap();
    assert_eq!(msg.connect_request, Some(request()));
    assert_eq!(msg.to_connection_id, None);
    assert_eq!(msg.from_connection_id, Some(CLIENT_ID));
    assert_eq!(
        (msg.ack_reliable_msg, msg.first_reliable_msg),
        (Some(0), Some(1))
    );
    let got: Vec<_> = msg
        .reliable_messages
        .iter()
        .map(|r| r.ice.clone().unwrap())
        .collect();
    assert_eq!(got, the_three());
    assert_eq!(msg.encode_to_vec(), bytes);

    // And it is exactly what our initiator sends first.
    let mut c = client(ms(0));
    for m in the_three() {
        c.queue_ice(ms(0), m);
    }
    c.set_connect_request(ms(0), request());
    assert_eq!(c.poll_signal(ms(0)).unwrap().encode_to_vec(), bytes);
}

#[test]
fn initiator_ack_only_signal_matches_the_gns_capture() {
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    for m in the_three() {
        c.queue_ice(ms(0), m);
    }
    assert!(c.poll_signal(ms(1)).is_some());
    // The server's first signal: connect_ok, ack 3, and its own three messages.
    let mut s = server(ms(0));
    s.queue_connect_ok(ms(20), ok());
    for m in the_three() {
        s.queue_ice(ms(20), m);
    }
    let mut from_server = s.poll_signal(ms(31)).unwrap();
    from_server.ack_reliable_msg = Some(3);
    let input = c.handle_signal(ms(31), &from_server).unwrap();
    assert_eq!(input.connect_ok, Some(ok()));
    assert_eq!(input.ice, the_three());
    c.connected(ms(31));
    assert_eq!(c.unacked(), 0);
    // Spaced 100 ms from the first signal.
    assert_eq!(c.poll_timeout(), Some(ms(101)));
    assert!(c.poll_signal(ms(100)).is_none());
    let ack = c.poll_signal(ms(101)).unwrap().encode_to_vec();
    let expected = concat!(
        "0dbcaedfd6",
        "3801",
        "420f7374723a706565725f636c69656e74",
        "4d52f327de",
        "520f7374723a706565725f736572766572",
        "5803",
    );
    assert_eq!(hex::encode(ack), expected);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn initiator_retries_connect_request_every_500ms() {
    let mut c = client(ms(0));
    assert!(c.poll_signal(ms(0)).is_none());
    assert_eq!(c.poll_timeout(), None);
    c.set_connect_request(ms(5), request());
    let mut sent = Vec::new();
    for t in 5..2000 {
        if let Some(sig) = c.poll_signal(ms(t)) {
            assert!(sig.connect_request.is_some());
            sent.push(t);
            assert_eq!(c.poll_timeout(), Some(ms(t) + CONNECT_RETRY_INTERVAL));
        }
    }
    assert_eq!(sent, vec![5, 505, 1005, 1505]);
    c.connected(ms(2000));
    assert!(c.poll_signal(ms(3000)).is_none());
}

#[test]
fn acceptor_is_silent_before_accept_then_spaces_signals_100ms_and_retransmits_after_1s() {
    let mut s = server(ms(0));
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    c.queue_ice(ms(0), pwd("a"));
    let first = c.poll_signal(ms(0)).unwrap();
    let input = s.handle_signal(ms(1), &first).unwrap();
    assert_eq!(input.ice, vec![pwd("a")]);
    assert!(!input.redundant_connect_request);
    assert!(s.poll_signal(ms(50)).is_none());
    assert_eq!(s.poll_timeout(), None);

    // The batch's AckMessages deadline (11 ms) is long past: connect_ok goes with it at once.
    s.queue_connect_ok(ms(100), ok());
    assert!(s.poll_timeout() <= Some(ms(100)));
    let sig = s.poll_signal(ms(100)).unwrap();
    assert_eq!(sig.connect_ok, Some(ok()));
    assert_eq!(sig.ack_reliable_msg, Some(1));
    assert_eq!(sig.to_connection_id, Some(CLIENT_ID));

    s.queue_ice(ms(120), pwd("b"));
    assert_eq!(s.poll_timeout(), Some(ms(100) + MIN_SEND_INTERVAL));
    assert!(s.poll_signal(ms(199)).is_none());
    let sig = s.poll_signal(ms(200)).unwrap();
    assert_eq!(sig.connect_ok, None);
    assert_eq!(
        (sig.first_reliable_msg, sig.reliable_messages.len()),
        (Some(1), 1)
    );

    // No ack: the message goes again after the RTO, and only then.
    assert_eq!(s.poll_timeout(), Some(ms(200) + RELIABLE_RTO));
    assert!(s.poll_signal(ms(1199)).is_none());
    let again = s.poll_signal(ms(1200)).unwrap();
    assert_eq!(again.first_reliable_msg, Some(1));

    // A redundant connect_request re-queues connect_ok, carried with the oldest message.
    let retry = c.poll_signal(ms(1300)).unwrap();
    let input = s.handle_signal(ms(1300), &retry).unwrap();
    assert!(input.redundant_connect_request);
    assert!(input.ice.is_empty());
    let sig = s.poll_signal(ms(1310)).unwrap();
    assert_eq!(sig.connect_ok, Some(ok()));
    assert_eq!(sig.first_reliable_msg, Some(1));
}

#[test]
fn a_send_reason_is_due_10ms_after_it_is_scheduled() {
    let mut s = server(ms(0));
    s.queue_connect_ok(ms(100), ok());
    assert_eq!(s.poll_timeout(), Some(ms(100) + SCHEDULE_DELAY));
    assert!(s.poll_signal(ms(109)).is_none());
    assert!(s.poll_signal(ms(110)).unwrap().connect_ok.is_some());
    // An ICE message is due at once (GNS's RTO = 1), subject only to the spacing.
    s.queue_ice(ms(300), pwd("x"));
    assert!(s.poll_timeout() <= Some(ms(300)));
    assert!(s.poll_signal(ms(300)).is_some());
}

#[test]
fn connect_request_signals_omit_to_connection_id_even_when_known() {
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    let _ = c.poll_signal(ms(0));
    let mut s = server(ms(0));
    s.queue_connect_ok(ms(0), ok());
    let mut sig = s.poll_signal(ms(10)).unwrap();
    sig.connect_ok = None; // as if only a retransmission got through
    let input = c.handle_signal(ms(10), &sig).unwrap();
    assert_eq!(input.connect_ok, None);
    assert_eq!(c.remote_id(), Some(SERVER_ID));
    let retry = c.poll_signal(ms(500)).unwrap();
    assert!(retry.connect_request.is_some());
    assert_eq!(retry.to_connection_id, None);
    assert_eq!(retry.to_identity.as_deref(), Some(SERVER));
}

#[test]
fn sender_checks_reject_without_side_effects() {
    let mut s = server(ms(0));
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    let sig = c.poll_signal(ms(0)).unwrap();

    let mut bad = sig.clone();
    bad.from_identity = Some("str:mallory".into());
    assert_eq!(
        s.handle_signal(ms(1), &bad),
        Err(SignalError::WrongIdentity)
    );
    bad.from_identity = None;
    assert_eq!(
        s.handle_signal(ms(1), &bad),
        Err(SignalError::MissingFromIdentity)
    );
    let mut bad = sig.clone();
    bad.from_connection_id = Some(5);
    assert_eq!(
        s.handle_signal(ms(1), &bad),
        Err(SignalError::ConnectionIdChanged {
            known: CLIENT_ID,
            got: 5
        })
    );
    bad.to_connection_id = Some(7);
    bad.from_connection_id = Some(CLIENT_ID);
    assert_eq!(
        s.handle_signal(ms(1), &bad),
        Err(SignalError::WrongConnection(7))
    );
    assert!(s.handle_signal(ms(1), &sig).is_ok());
}

#[test]
fn initiator_without_peer_identity_adopts_the_first_senders() {
    let mut c = Signaling::new(
        ms(0),
        SignalingConfig {
            local_id: CLIENT_ID,
            local_identity: CLIENT.into(),
            remote_identity: Some("ip:::1".into()),
            initiator: true,
        },
    );
    c.set_connect_request(ms(0), request());
    let _ = c.poll_signal(ms(0));
    let mut s = server(ms(0));
    s.queue_connect_ok(ms(0), ok());
    let sig = s.poll_signal(ms(10)).unwrap();
    assert!(c.handle_signal(ms(10), &sig).unwrap().connect_ok.is_some());
    assert_eq!(c.remote_identity(), Some(SERVER));
    c.connected(ms(10));
    let mut other = sig.clone();
    other.from_identity = Some("str:other".into());
    assert_eq!(
        c.handle_signal(ms(20), &other),
        Err(SignalError::WrongIdentity)
    );
}

#[test]
fn signal_without_ice_enabled_disables_ice_both_ways() {
    let mut s = server(ms(0));
    s.queue_connect_ok(ms(0), ok());
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    let mut sig = c.poll_signal(ms(0)).unwrap();
    assert!(!s.handle_signal(ms(1), &sig).unwrap().ice_disabled);
    sig.ice_enabled = None;
    assert!(s.handle_signal(ms(2), &sig).unwrap().ice_disabled);
    assert_eq!(s.poll_signal(ms(20)).unwrap().ice_enabled, None);
}

#[test]
fn close_signal_has_no_acks_and_drops_the_queue() {
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    c.queue_ice(ms(0), pwd("x"));
    let _ = c.poll_signal(ms(0));
    let sig = c.close_signal(5003, "Timed out attempting to connect");
    assert_eq!(sig.to_connection_id, None, "remote id unknown");
    assert_eq!(sig.connect_request, None);
    assert_eq!((sig.ack_reliable_msg, sig.first_reliable_msg), (None, None));
    assert!(sig.reliable_messages.is_empty());
    assert_eq!(sig.from_identity.as_deref(), Some(CLIENT));
    assert_eq!(sig.from_connection_id, Some(CLIENT_ID));
    let closed = sig.connection_closed.unwrap();
    assert_eq!(closed.reason_code, Some(5003));
    assert_eq!(c.unacked(), 0);
    assert!(c.is_closed());
    assert!(c.poll_signal(ms(5000)).is_none());
    assert_eq!(c.poll_timeout(), None);

    let mut s = server(ms(0));
    let closed = s.close_signal(5008, "Timed out attempting to negotiate rendezvous");
    assert_eq!(closed.to_connection_id, Some(CLIENT_ID));
}

#[test]
fn received_close_is_answered_with_no_connection_but_no_connection_is_not() {
    let mut s = server(ms(0));
    s.queue_connect_ok(ms(0), ok());
    s.queue_ice(ms(0), pwd("x"));
    let _ = s.poll_signal(ms(10));
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    let _ = c.poll_signal(ms(0));
    let close = c.close_signal(5003, "Timed out attempting to connect");

    let input = s.handle_signal(ms(20), &close).unwrap();
    assert_eq!(
        input.closed,
        Some((5003, "Timed out attempting to connect".into()))
    );
    assert_eq!(s.unacked(), 0);
    let reply = s.poll_signal(ms(20)).unwrap();
    assert_eq!(reply, s.no_connection_signal());
    let cc = reply.connection_closed.clone().unwrap();
    assert_eq!((cc.reason_code, cc.debug), (Some(P2P_NO_CONNECTION), None));
    assert!(s.poll_signal(ms(2000)).is_none());

    // The closer answers the NoConnection with nothing, and a live peer's NoConnection
    // closes with 5010.
    assert_eq!(c.handle_signal(ms(30), &reply).unwrap().closed, None);
    assert!(c.poll_signal(ms(30)).is_none());
    let mut fresh = client(ms(0));
    fresh.set_connect_request(ms(0), request());
    let input = fresh.handle_signal(ms(30), &reply).unwrap();
    assert_eq!(input.closed.unwrap().0, 5010);
    assert!(fresh.poll_signal(ms(30)).is_none());

    // Later signals to a peer-closed connection get NoConnection; to a locally closed one,
    // connection_closed with our reason.
    let mut sig = c.no_connection_signal();
    sig.connection_closed = None;
    s.handle_signal(ms(40), &sig).unwrap();
    assert_eq!(s.poll_signal(ms(40)), Some(s.no_connection_signal()));
    let mut s2 = server(ms(0));
    s2.close(1000, "bye");
    s2.handle_signal(ms(40), &sig).unwrap();
    let answer = s2.poll_signal(ms(40)).unwrap().connection_closed.unwrap();
    assert_eq!(
        (answer.reason_code, answer.debug.as_deref()),
        (Some(1000), Some("bye"))
    );
}

#[test]
fn routing_follows_the_receive_rules() {
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    let first = c.poll_signal(ms(0)).unwrap();
    let bytes = first.encode_to_vec();
    let msg = parse_signal(&bytes).unwrap();
    let peer = Identity::parse(CLIENT).unwrap();
    assert_eq!(
        route_signal(&msg, |_, _| false),
        SignalRoute::NewRequest {
            identity: peer.clone(),
            remote_id: CLIENT_ID,
            local_vport: 0,
            remote_vport: 0
        }
    );
    assert_eq!(
        route_signal(&msg, |id, r| *id == peer && r == CLIENT_ID),
        SignalRoute::Known(peer.clone(), CLIENT_ID)
    );
    let mut m = msg.clone();
    m.to_connection_id = Some(42);
    assert_eq!(
        route_signal(&m, |_, _| false),
        SignalRoute::ToConnection(42)
    );
    let mut m = msg.clone();
    m.connect_request.as_mut().unwrap().cert = None;
    assert_eq!(
        route_signal(&m, |_, _| false),
        SignalRoute::Bad(SignalError::MissingCertOrCrypt)
    );
    m.connect_request = None;
    assert_eq!(
        route_signal(&m, |_, _| false),
        SignalRoute::Bad(SignalError::NotConnectRequest)
    );
    m.from_connection_id = None;
    assert_eq!(
        route_signal(&m, |_, _| true),
        SignalRoute::Bad(SignalError::MissingConnectionId)
    );

    let mut m = msg.clone();
    for (s, err) in [
        (None, SignalError::MissingFromIdentity),
        (Some(""), SignalError::MissingFromIdentity),
        (Some("invalid"), SignalError::InvalidFromIdentity),
    ] {
        m.from_identity = s.map(str::to_owned);
        assert_eq!(parse_signal(&m.encode_to_vec()), Err(err));
    }
    m.from_identity = Some("nope".into());
    assert!(matches!(
        parse_signal(&m.encode_to_vec()),
        Err(SignalError::BadFromIdentity(_))
    ));
    // FakeIP detection is compiled out of open-source GNS: a 169.254/16 identity is fine.
    m.from_identity = Some("ip:169.254.1.2:2000".into());
    assert!(parse_signal(&m.encode_to_vec()).is_ok());
    assert_eq!(parse_signal(&[0xff, 0xff]), Err(SignalError::Decode));
}

#[test]
fn virtual_ports_default_as_gns_does() {
    let mut req = request();
    assert_eq!(request_vports(&req), (0, 0));
    req.from_virtual_port = None;
    req.to_virtual_port = Some(7);
    assert_eq!(request_vports(&req), (7, 7));
    req.to_virtual_port = None;
    assert_eq!(request_vports(&req), (-1, -1));
    req.from_virtual_port = Some(3);
    assert_eq!(request_vports(&req), (-1, 3));
    req.to_virtual_port = Some(u32::MAX);
    assert_eq!(request_vports(&req).0, -1);
    let built = connect_request(
        CryptInfoSigned::default(),
        CertificateSigned::default(),
        -1,
        5,
    );
    assert_eq!(
        (built.to_virtual_port, built.from_virtual_port),
        (Some(5), None)
    );
    let messages = connect_request(
        CryptInfoSigned::default(),
        CertificateSigned::default(),
        VIRTUAL_PORT_MESSAGES,
        VIRTUAL_PORT_MESSAGES,
    );
    assert_eq!(
        request_vports(&messages),
        (VIRTUAL_PORT_MESSAGES, VIRTUAL_PORT_MESSAGES)
    );
}

#[test]
fn symmetric_compare_gives_exactly_one_client() {
    assert!(symmetric_we_are_client(2, 4, b"", b""));
    assert!(!symmetric_we_are_client(2, 3, b"", b""), "odd xor flips");
    assert!(symmetric_we_are_client(3, 2, b"", b""));
    assert!(symmetric_we_are_client(9, 9, b"a", b"b"));
    assert!(!symmetric_we_are_client(9, 9, b"b", b"a"));
    let ids = [
        1u32,
        2,
        3,
        0x8000_0000,
        0xffff_ffff,
        0xde27_f352,
        0xd6df_aebc,
    ];
    for &a in &ids {
        for &b in &ids {
            if a != b {
                assert_ne!(
                    symmetric_we_are_client(a, b, b"x", b"y"),
                    symmetric_we_are_client(b, a, b"y", b"x"),
                    "{a:#x} vs {b:#x}"
                );
            }
        }
    }
}

#[test]
fn rejection_reaches_the_initiator_and_closes_it() {
    let mut c = client(ms(0));
    c.set_connect_request(ms(0), request());
    let first = c.poll_signal(ms(0)).unwrap();
    let rej = rejection_signal(
        SERVER,
        Some(SERVER_ID),
        CLIENT,
        first.from_connection_id.unwrap(),
        1001,
        "go away",
    );
    let msg = parse_signal(&rej.encode_to_vec()).unwrap();
    assert_eq!(
        route_signal(&msg, |_, _| false),
        SignalRoute::ToConnection(CLIENT_ID)
    );
    let input = c.handle_signal(ms(5), &msg).unwrap();
    assert_eq!(input.closed, Some((1001, "go away".into())));
    // Its NoConnection answer finds no connection at the acceptor: ignored there.
    let reply = c.poll_signal(ms(5)).unwrap();
    assert_eq!(reply.to_connection_id, Some(SERVER_ID));
    assert!(c.poll_signal(ms(600)).is_none());
}

#[test]
fn timestamps_saturate_far_in_the_future() {
    let far = Timestamp::from_micros(u64::MAX - 5);
    let mut c = client(far);
    c.set_connect_request(far, request());
    assert!(c.poll_signal(far).is_some());
    assert!(c.poll_signal(far + Duration::from_secs(1)).is_some());
}

proptest::proptest! {
    #[test]
    fn arbitrary_signals_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let mut s = server(ms(0));
        s.queue_connect_ok(ms(0), ok());
        let mut c = client(ms(0));
        c.set_connect_request(ms(0), request());
        if let Ok(msg) = parse_signal(&bytes) {
            let _ = route_signal(&msg, |_, _| true);
            let _ = s.handle_signal(ms(1), &msg);
            let _ = c.handle_signal(ms(1), &msg);
        }
        let _ = s.poll_signal(ms(2));
        let _ = c.poll_signal(ms(2));
    }

    #[test]
    fn arbitrary_fields_never_panic(
        first in proptest::num::u32::ANY,
        ack in proptest::num::u32::ANY,
        n in 0usize..5,
        to in proptest::option::of(proptest::num::u32::ANY),
        from in proptest::option::of(proptest::num::u32::ANY),
    ) {
        let mut s = server(ms(0));
        s.queue_connect_ok(ms(0), ok());
        s.queue_ice(ms(0), pwd("x"));
        let msg = P2pRendezvous {
            to_connection_id: to,
            from_connection_id: from,
            from_identity: Some(CLIENT.into()),
            ack_reliable_msg: Some(ack),
            first_reliable_msg: Some(first),
            reliable_messages: vec![ReliableMessage { ice: Some(pwd("y")) }; n],
            ..P2pRendezvous::default()
        };
        let _ = s.handle_signal(ms(1), &msg);
        let _ = s.handle_signal(ms(2), &msg);
        let _ = s.poll_signal(ms(3));
    }
}
