use std::net::Ipv4Addr;

use sockworks_engine::crypto::keys::IdentityKey;

use super::*;
use crate::ticket::{RelayAuthTicket, sign, trust_of};

const UNIX: u64 = 1_700_000_000;

fn ca() -> IdentityKey {
    IdentityKey::from_seed([5; 32])
}

fn server_addr() -> SocketAddr {
    "10.9.8.7:27015".parse().unwrap()
}

fn relay(max: usize) -> Relay {
    let mut c = RelayConfig::new(
        trust_of(&[ca().public_bytes()]),
        RoutingKey::new(&[1; 32]),
        "fra",
        [2; 32],
    );
    c.max_sessions = max;
    c.rate = 10.0;
    c.burst = 10.0;
    c.idle = Duration::from_secs(30);
    Relay::new(c)
}

fn ticket(client: &str, ip: Option<Ipv4Addr>) -> Vec<u8> {
    let routing = routing::seal("fra", server_addr(), &RoutingKey::new(&[1; 32]), [3; 12]).unwrap();
    sign(
        &RelayAuthTicket {
            gameserver: "str:gs".into(),
            authorized_client: client.into(),
            public_ip: ip,
            expiry_unix: UNIX + 3600,
            routing,
            app_id: 1,
            restrict_to_vport: -1,
            extra: vec![],
        },
        &ca(),
    )
    .unwrap()
}

fn hello(r: &mut Relay, from: &str, t: &[u8], out: &mut Vec<u8>) -> ClientAction {
    let d = Message::Hello {
        nonce: 77,
        ticket: t,
    }
    .to_vec();
    r.handle_client(Duration::ZERO, UNIX, from.parse().unwrap(), &d, out)
}

fn welcome(out: &[u8]) -> (u32, u64) {
    match Message::decode(out).unwrap() {
        Message::Welcome {
            nonce: 77,
            session,
            token,
            ..
        } => (session, token),
        m => panic!("not a welcome: {m:?}"),
    }
}

fn refused(out: &[u8]) -> RefuseReason {
    match Message::decode(out).unwrap() {
        Message::Refused { nonce: 77, reason } => reason,
        m => panic!("not refused: {m:?}"),
    }
}

#[test]
fn valid_ticket_opens_a_session_that_forwards_both_ways() {
    let mut r = relay(10);
    let mut out = Vec::new();
    let t = ticket("str:alice", None);
    let a = hello(&mut r, "1.2.3.4:5000", &t, &mut out);
    assert!(matches!(a, ClientAction::Open { slot: 0, server, .. } if server == server_addr()));
    let (session, token) = welcome(&out);
    let mut data = Vec::new();
    wire::encode_data(session, token, b"gns", &mut data);
    let a = r.handle_client(
        Duration::ZERO,
        UNIX,
        "1.2.3.4:5000".parse().unwrap(),
        &data,
        &mut out,
    );
    assert_eq!(
        a,
        ClientAction::Forward {
            slot: 0,
            server: server_addr()
        }
    );
    assert_eq!(
        r.handle_server(0, server_addr(), 3),
        Some(("1.2.3.4:5000".parse().unwrap(), session, token))
    );
    assert_eq!(r.handle_server(0, "6.6.6.6:1".parse().unwrap(), 3), None);
    assert_eq!(r.stats().server_stray, 1);
    // Wrong token: dropped.
    data.clear();
    wire::encode_data(session, token ^ 1, b"gns", &mut data);
    let a = r.handle_client(
        Duration::ZERO,
        UNIX,
        "1.2.3.4:5000".parse().unwrap(),
        &data,
        &mut out,
    );
    assert_eq!(a, ClientAction::Drop);
    assert_eq!(r.stats().bad_session, 1);
    // Authenticated data from a new address moves the client.
    data.clear();
    wire::encode_data(session, token, b"gns", &mut data);
    r.handle_client(
        Duration::ZERO,
        UNIX,
        "1.2.3.4:6000".parse().unwrap(),
        &data,
        &mut out,
    );
    assert_eq!(
        r.session_addrs(0).unwrap().0,
        "1.2.3.4:6000".parse().unwrap()
    );
}

#[test]
fn ticket_is_one_session_idempotent_for_its_own_address() {
    let mut r = relay(10);
    let mut out = Vec::new();
    let t = ticket("str:alice", None);
    hello(&mut r, "1.2.3.4:5000", &t, &mut out);
    let first = welcome(&out);
    assert!(matches!(
        hello(&mut r, "1.2.3.4:5000", &t, &mut out),
        ClientAction::Reply(_)
    ));
    assert_eq!(welcome(&out), first);
    hello(&mut r, "9.9.9.9:5000", &t, &mut out);
    assert_eq!(refused(&out), RefuseReason::WrongAddress);
    assert_eq!(r.stats().refused_replay, 1);
    assert_eq!(r.sessions(), 1);
}

#[test]
fn public_ip_binds_the_ticket() {
    let mut r = relay(10);
    let mut out = Vec::new();
    let t = ticket("str:alice", Some(Ipv4Addr::new(1, 2, 3, 4)));
    hello(&mut r, "5.6.7.8:1", &t, &mut out);
    assert_eq!(refused(&out), RefuseReason::WrongAddress);
    assert!(matches!(
        hello(&mut r, "[::ffff:1.2.3.4]:1", &t, &mut out),
        ClientAction::Open { .. }
    ));
}

#[test]
fn cap_rate_idle_and_close() {
    let mut r = relay(1);
    let mut out = Vec::new();
    hello(&mut r, "1.1.1.1:1", &ticket("str:a", None), &mut out);
    let (session, token) = welcome(&out);
    hello(&mut r, "1.1.1.2:1", &ticket("str:b", None), &mut out);
    assert_eq!(refused(&out), RefuseReason::Full);
    // Burst 10, then nothing until time passes.
    let mut data = Vec::new();
    wire::encode_data(session, token, b"x", &mut data);
    let from = "1.1.1.1:1".parse().unwrap();
    let sent = (0..50)
        .filter(|_| {
            matches!(
                r.handle_client(Duration::ZERO, UNIX, from, &data, &mut out),
                ClientAction::Forward { .. }
            )
        })
        .count();
    assert_eq!(sent, 10);
    assert_eq!(r.stats().rate_limited, 40);
    let later = Duration::from_millis(500);
    assert!(matches!(
        r.handle_client(later, UNIX, from, &data, &mut out),
        ClientAction::Forward { .. }
    ));
    // Idle sweep.
    let mut closed = Vec::new();
    r.sweep(later + Duration::from_secs(29), &mut closed);
    assert!(closed.is_empty());
    r.sweep(later + Duration::from_secs(31), &mut closed);
    assert_eq!(closed, vec![0]);
    assert_eq!(r.sessions(), 0);
    // The old id no longer works even though the slot is reused.
    hello(&mut r, "1.1.1.2:1", &ticket("str:b", None), &mut out);
    let (s2, _) = welcome(&out);
    assert_ne!(s2, session);
    assert_eq!(
        r.handle_client(later, UNIX, from, &data, &mut out),
        ClientAction::Drop
    );
    let close = Message::Close {
        session: s2,
        token: 0,
    }
    .to_vec();
    assert_eq!(
        r.handle_client(later, UNIX, from, &close, &mut out),
        ClientAction::Drop
    );
}

#[test]
fn bad_tickets_are_refused_and_counted_without_amplification() {
    let mut r = relay(10);
    let mut out = Vec::new();
    let mut t = ticket("str:alice", None);
    let n = t.len();
    t[n - 1] ^= 1;
    hello(&mut r, "1.1.1.1:1", &t, &mut out);
    assert_eq!(refused(&out), RefuseReason::BadTicket);
    hello(&mut r, "1.1.1.1:1", &[0x0a, 0xff], &mut out);
    assert!(out.is_empty(), "short hello must get nothing");
    hello(&mut r, "1.1.1.1:1", &[0x0a; 40], &mut out);
    assert_eq!(refused(&out), RefuseReason::BadTicket);
    let s = r.stats();
    assert_eq!(
        (s.refused_forged, s.refused_malformed, s.short_hello),
        (1, 1, 1)
    );
    // Ping of the right size gets a smaller Pong; a truncated one nothing.
    let ping = Message::Ping {
        timestamp: 9,
        session: 0,
        token: 0,
    }
    .to_vec();
    let from = "1.1.1.1:1".parse().unwrap();
    assert!(matches!(
        r.handle_client(Duration::ZERO, UNIX, from, &ping, &mut out),
        ClientAction::Reply(_)
    ));
    assert!(out.len() < ping.len());
    assert_eq!(
        r.handle_client(Duration::ZERO, UNIX, from, &ping[..10], &mut out),
        ClientAction::Drop
    );
}

#[test]
fn one_flooding_address_cannot_spend_the_relay_wide_check_budget() {
    let mut r = relay(10);
    let mut out = Vec::new();
    let junk = [0x0au8; 60];
    for _ in 0..100 {
        hello(&mut r, "6.6.6.6:1", &junk, &mut out);
    }
    assert_eq!(r.stats().refused_rate, 90);
    assert_eq!(refused(&out), RefuseReason::RateLimited);
    assert!(matches!(
        hello(&mut r, "1.2.3.4:5", &ticket("str:ok", None), &mut out),
        ClientAction::Open { .. }
    ));
    // A second later the flooder gets its budget back.
    let d = Message::Hello {
        nonce: 77,
        ticket: &junk,
    }
    .to_vec();
    r.handle_client(
        Duration::from_secs(1),
        UNIX,
        "6.6.6.6:1".parse().unwrap(),
        &d,
        &mut out,
    );
    assert_eq!(refused(&out), RefuseReason::BadTicket);
}
