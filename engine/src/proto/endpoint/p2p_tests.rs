//! P2P between two endpoints: signals carried by the test, datagrams by a small in-memory
//! network with test addresses (ICE never uses loopback), virtual time.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::proto::connection::{ApiState, State};
use crate::proto::handshake::LocalIdentity;
use crate::proto::ice::{IceConfig, LocalInterface};
use crate::testing::sim_secret;
use crate::wire::identity::Identity;

const A_ADDR: &str = "10.7.0.1:40001";
const B_ADDR: &str = "10.7.0.2:40002";

fn peer(seed: u64, name: &str, addr: &str) -> Endpoint {
    let mut ep = Endpoint::new(EndpointConfig::default(), seed, &sim_secret(seed));
    let id = Identity::parse(&format!("str:{name}")).unwrap();
    ep.set_identity(LocalIdentity::with_identity([seed as u8; 32], id));
    ep.set_p2p_interfaces(vec![LocalInterface {
        socket: 0,
        addr: addr.parse().unwrap(),
        prefix_len: 24,
    }]);
    ep
}

fn ice_all() -> IceConfig {
    IceConfig {
        enable_mask: ICE_ENABLE_ALL,
        stun_servers: Vec::new(),
        turn_servers: Vec::new(),
    }
}

/// Both endpoints, the signals in flight each way, and the clock.
struct World {
    a: Endpoint,
    b: Endpoint,
    now: Timestamp,
    /// Drop every n-th signal (0: none).
    drop_every: usize,
    signals_seen: usize,
    /// New requests B saw (its application's answer is to keep and accept them).
    requests: Vec<ConnectionId>,
    events_a: Vec<EndpointEvent>,
    events_b: Vec<EndpointEvent>,
}

impl World {
    fn new() -> Self {
        let mut b = peer(2, "bob", B_ADDR);
        assert!(b.add_p2p_listener(
            7,
            P2pListener {
                handle: 99,
                connection: ConnectionConfig::default(),
                symmetric: false,
            }
        ));
        World {
            a: peer(1, "alice", A_ADDR),
            b,
            now: Timestamp::from_micros(1_000_000),
            drop_every: 0,
            signals_seen: 0,
            requests: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
        }
    }

    /// One millisecond: signals and datagrams move, timers run.
    fn step(&mut self) {
        let now = self.now;
        for from_a in [true, false] {
            loop {
                let (src, dst) = if from_a {
                    (&mut self.a, &mut self.b)
                } else {
                    (&mut self.b, &mut self.a)
                };
                let Some((_, sig)) = src.poll_signal() else {
                    break;
                };
                self.signals_seen += 1;
                if self.drop_every != 0 && self.signals_seen.is_multiple_of(self.drop_every) {
                    continue;
                }
                match dst.handle_signal(now, &sig, false) {
                    SignalOutcome::NewRequest { connection, .. } => {
                        dst.p2p_keep(connection, ice_all());
                        dst.accept(now, connection).unwrap();
                        self.requests.push(connection);
                    }
                    SignalOutcome::Handled => {}
                    other => panic!("signal refused: {other:?}"),
                }
            }
        }
        for from_a in [true, false] {
            let (src, dst, from) = if from_a {
                (&mut self.a, &mut self.b, A_ADDR)
            } else {
                (&mut self.b, &mut self.a, B_ADDR)
            };
            let mut buf = Vec::new();
            while let Some(t) = {
                buf.clear();
                src.poll_transmit(now, &mut buf)
            } {
                let to_me = if from_a { B_ADDR } else { A_ADDR };
                if t.to == to_me.parse::<SocketAddr>().unwrap() {
                    dst.handle_datagram(now, from.parse::<SocketAddr>().unwrap().into(), &mut buf);
                }
            }
        }
        while let Some(e) = self.a.poll_event() {
            self.events_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.events_b.push(e);
        }
        self.now = now + Duration::from_millis(1);
        for ep in [&mut self.a, &mut self.b] {
            if ep.poll_timeout(self.now).is_some_and(|t| t <= self.now) {
                ep.handle_timeout(self.now);
            }
        }
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) -> Duration {
        let start = self.now;
        while !done(self) {
            assert!(
                self.now.saturating_since(start) < limit,
                "not done within {limit:?}: a {:?} b {:?}",
                self.events_a,
                self.events_b
            );
            self.step();
        }
        self.now.saturating_since(start)
    }
}

fn connect(w: &mut World) -> ConnectionId {
    let id = w.a.reserve_id().unwrap();
    let req = P2pConnect {
        remote_identity: Some(Identity::parse("str:bob").unwrap()),
        local_vport: 7,
        remote_vport: 7,
        config: None,
        ice: ice_all(),
        symmetric: false,
        from_fakeip: None,
    };
    w.a.connect_p2p(w.now, id, req).unwrap();
    id
}

fn state(ep: &Endpoint, id: ConnectionId) -> Option<State> {
    ep.connection(id).map(Connection::state)
}

#[test]
fn two_endpoints_connect_over_signals_and_ice_then_exchange_reliable_messages() {
    let mut w = World::new();
    let a_id = connect(&mut w);
    let took = w.run_until(Duration::from_secs(5), |w| {
        state(&w.a, a_id) == Some(State::Connected)
            && w.requests
                .first()
                .is_some_and(|&b| state(&w.b, b) == Some(State::Connected))
    });
    let b_id = w.requests[0];
    assert!(took < Duration::from_secs(1), "connected in {took:?}");
    // The application saw Connecting, FindingRoute and Connected on both sides.
    for (events, id) in [(&w.events_a, a_id), (&w.events_b, b_id)] {
        let states: Vec<ApiState> = events
            .iter()
            .filter(|e| e.connection == id)
            .map(|e| e.change.new)
            .collect();
        assert_eq!(
            states,
            [
                ApiState::Connecting,
                ApiState::FindingRoute,
                ApiState::Connected
            ],
            "{events:?}"
        );
    }
    assert_eq!(
        w.a.connection(a_id).unwrap().peer(),
        B_ADDR.parse().unwrap()
    );
    assert_eq!(
        w.b.connection(b_id).unwrap().peer(),
        A_ADDR.parse().unwrap()
    );
    let info = w.b.connection(b_id).unwrap().info();
    assert_eq!(
        info.remote_identity,
        Some(Identity::parse("str:alice").unwrap())
    );
    for i in 0..50u8 {
        w.a.send_message(
            w.now,
            a_id,
            0,
            crate::proto::snp::send_flags::RELIABLE,
            vec![i; 300],
        )
        .unwrap();
    }
    let mut got = Vec::new();
    let mut steps = 0;
    while got.len() < 50 && steps < 5000 {
        w.step();
        while let Some(m) = w.b.poll_message(b_id) {
            got.push(m.data[0]);
        }
        steps += 1;
    }
    assert_eq!(got, (0..50).collect::<Vec<u8>>());
}

#[test]
fn lost_signals_are_retried_and_the_connection_still_forms() {
    let mut w = World::new();
    w.drop_every = 3;
    let a_id = connect(&mut w);
    w.run_until(Duration::from_secs(8), |w| {
        state(&w.a, a_id) == Some(State::Connected)
            && w.requests
                .first()
                .is_some_and(|&b| state(&w.b, b) == Some(State::Connected))
    });
    assert_eq!(w.requests.len(), 1, "retries reached the same connection");
}

#[test]
fn ice_disabled_fails_the_connect_call() {
    let mut w = World::new();
    let id = w.a.reserve_id().unwrap();
    let req = P2pConnect {
        remote_identity: None,
        local_vport: 0,
        remote_vport: 0,
        config: None,
        ice: IceConfig {
            enable_mask: 0,
            ..ice_all()
        },
        symmetric: false,
        from_fakeip: None,
    };
    assert_eq!(
        w.a.connect_p2p(w.now, id, req),
        Err(EndpointError::IceDisabled)
    );
}

#[test]
fn a_peer_that_never_answers_ends_in_a_connect_timeout() {
    let mut w = World::new();
    let a_id = connect(&mut w);
    // Every signal is lost.
    w.drop_every = 1;
    w.run_until(Duration::from_secs(12), |w| {
        state(&w.a, a_id) == Some(State::ProblemDetectedLocally)
    });
    let info = w.a.connection(a_id).unwrap().info();
    assert_eq!(info.end_reason, end_reason::MISC_TIMEOUT);
}

#[test]
fn a_certificate_for_another_identity_is_refused_with_a_rejection_signal() {
    let mut w = World::new();
    // Alice's certificate names alice, but her signals claim to be mallory.
    let id = w.a.reserve_id().unwrap();
    let req = P2pConnect {
        remote_identity: None,
        local_vport: 7,
        remote_vport: 7,
        config: None,
        ice: ice_all(),
        symmetric: false,
        from_fakeip: None,
    };
    w.a.connect_p2p(w.now, id, req).unwrap();
    let (_, sig) = w.a.poll_signal().unwrap();
    let mut msg: crate::wire::rendezvous::P2pRendezvous = prost::Message::decode(&sig[..]).unwrap();
    msg.from_identity = Some("str:mallory".into());
    let forged = prost::Message::encode_to_vec(&msg);
    match w.b.handle_signal(w.now, &forged, false) {
        SignalOutcome::Refused { identity, signal } => {
            assert_eq!(identity, Identity::parse("str:mallory").unwrap());
            let r: crate::wire::rendezvous::P2pRendezvous =
                prost::Message::decode(&signal[..]).unwrap();
            let closed = r.connection_closed.unwrap();
            assert_eq!(closed.reason_code, Some(end_reason::REMOTE_BAD_CERT));
            assert_eq!(r.from_identity.as_deref(), Some("str:bob"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.b.connection_count(), 0);
}

#[test]
fn garbage_signals_are_counted_and_change_nothing() {
    let mut w = World::new();
    for bad in [&b""[..], b"\xff\xff\xff", b"\x42\x03abc"] {
        assert!(matches!(
            w.b.handle_signal(w.now, bad, false),
            SignalOutcome::Bad(_)
        ));
    }
    assert_eq!(w.b.p2p_counters().bad_signals, 3);
    assert_eq!(w.b.connection_count(), 0);
}

#[test]
fn symmetric_connects_from_both_sides_at_once_become_one_connection() {
    let mut w = World::new();
    let symmetric = |peer: &str| P2pConnect {
        remote_identity: Some(Identity::parse(peer).unwrap()),
        local_vport: 7,
        remote_vport: 7,
        config: None,
        ice: ice_all(),
        symmetric: true,
        from_fakeip: None,
    };
    let a_id = w.a.reserve_id().unwrap();
    let b_id = w.b.reserve_id().unwrap();
    w.a.connect_p2p(w.now, a_id, symmetric("str:bob")).unwrap();
    w.b.connect_p2p(w.now, b_id, symmetric("str:alice"))
        .unwrap();
    w.run_until(Duration::from_secs(5), |w| {
        state(&w.a, a_id) == Some(State::Connected) && state(&w.b, b_id) == Some(State::Connected)
    });
    // No new incoming connection on either side: each kept its own handle.
    assert!(w.requests.is_empty(), "{:?}", w.requests);
    assert_eq!((w.a.connection_count(), w.b.connection_count()), (1, 1));
    w.a.send_message(
        w.now,
        a_id,
        0,
        crate::proto::snp::send_flags::RELIABLE,
        b"sym".to_vec(),
    )
    .unwrap();
    let mut got = None;
    for _ in 0..2000 {
        w.step();
        if let Some(m) = w.b.poll_message(b_id) {
            got = Some(m.data);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some(&b"sym"[..]));
}

#[test]
fn replayed_and_huge_signals_change_nothing() {
    let mut w = World::new();
    let a_id = connect(&mut w);
    w.run_until(Duration::from_secs(5), |w| {
        state(&w.a, a_id) == Some(State::Connected)
            && w.requests
                .first()
                .is_some_and(|&b| state(&w.b, b) == Some(State::Connected))
    });
    // A's very first signal (the connect request), replayed after the connection formed:
    // the known connection takes it as a retry (a ConnectOK again), no second connection.
    let first = {
        let mut probe = World::new();
        connect(&mut probe);
        probe.a.poll_signal().unwrap().1
    };
    let before = w.b.connection_count();
    let _ = w.b.handle_signal(w.now, &first, false);
    // A megabyte of noise, and a valid signal padded with an unknown huge field.
    let noise: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    assert!(matches!(
        w.b.handle_signal(w.now, &noise, false),
        SignalOutcome::Bad(_)
    ));
    let mut padded = first.clone();
    padded.extend_from_slice(&[0xfa, 0x3f]); // field 1023, length-delimited
    padded.extend_from_slice(&[0x80, 0x80, 0x40]); // 1 MiB length
    padded.extend(std::iter::repeat_n(0u8, 1 << 20));
    let _ = w.b.handle_signal(w.now, &padded, false);
    assert_eq!(w.b.connection_count(), before, "a replay made a connection");
    for _ in 0..100 {
        w.step();
    }
    let b_id = w.requests[0];
    assert_eq!(state(&w.b, b_id), Some(State::Connected));
    assert_eq!(state(&w.a, a_id), Some(State::Connected));
}

/// ConnectByIPAddress to a FakeIP (spec §5.2): the request names the FakeIP in `to_identity`,
/// carries `from_fakeip` and no virtual ports; the peer's real identity replaces the FakeIP
/// once its answer arrives.
#[test]
fn a_connection_to_a_fake_ip_learns_the_real_identity_from_the_answer() {
    let mut w = World::new();
    let fake = Identity::parse("ip:169.254.7.9:2000").unwrap();
    let id = w.a.reserve_id().unwrap();
    let req = P2pConnect {
        remote_identity: Some(fake.clone()),
        local_vport: -1,
        remote_vport: -1,
        config: None,
        ice: ice_all(),
        symmetric: false,
        from_fakeip: Some("169.254.3.4:1500".into()),
    };
    w.a.connect_p2p(w.now, id, req).unwrap();
    assert_eq!(
        w.a.connection(id).unwrap().info().remote_identity,
        Some(fake)
    );
    let (_, first) = w.a.poll_signal().expect("the request goes out at once");
    let msg = crate::proto::p2p::parse_signal(&first).unwrap();
    assert_eq!(msg.to_identity.as_deref(), Some("ip:169.254.7.9:2000"));
    let cr = msg.connect_request.as_ref().unwrap();
    assert_eq!(cr.from_fakeip.as_deref(), Some("169.254.3.4:1500"));
    assert_eq!((cr.to_virtual_port, cr.from_virtual_port), (None, None));
    // B receives it (no listener needed with custom signaling) and accepts.
    match w.b.handle_signal(w.now, &first, false) {
        SignalOutcome::NewRequest { connection, .. } => {
            w.b.p2p_keep(connection, ice_all());
            w.b.accept(w.now, connection).unwrap();
            w.requests.push(connection);
        }
        other => panic!("{other:?}"),
    }
    w.run_until(Duration::from_secs(5), |w| {
        state(&w.a, id) == Some(State::Connected)
    });
    assert_eq!(
        w.a.connection(id).unwrap().info().remote_identity,
        Identity::parse("str:bob").ok()
    );
}
