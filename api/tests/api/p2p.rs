//! P2P through the public API: `CreateListenSocketP2P`, `ConnectP2PCustomSignaling`,
//! `ReceivedP2PCustomSignal` with signals carried by the test, and `ConnectP2P` through a
//! rendezvous service run in the test. ICE never gathers loopback addresses (as GNS's), so
//! each test moves its thread into a fresh network namespace with one test-only address; the
//! instances it creates there (and their shard threads) live in it. Without the right to do
//! that (not root), a test prints SKIP and returns.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks::engine::wire::identity::Identity;
use sockworks::{
    ConfigValue, Connection, ConnectionInfo, ConnectionSignaling, ConnectionState, ListenSocket,
    OutMessage, RendezvousConfig, SignalingRecvContext, Sockets, SocketsConfig, StatusChanged,
    send_flags,
};

use super::common::{Seen, recv_n, wait_until};

/// Moves this thread into a new network namespace with a veth pair whose one end has
/// `10.77.0.1/24` (and loopback up; the kernel may lack the dummy link type). False when the OS refuses (not root).
pub(super) fn private_net() -> bool {
    // SAFETY: unshare(CLONE_NEWNET) changes only the calling thread's network namespace; no
    // memory is involved.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!("SKIP: cannot create a network namespace (not root?)");
        return false;
    }
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = ip(&["link", "set", "lo", "up"])
        && ip(&[
            "link", "add", "p2pt0", "type", "veth", "peer", "name", "p2pt1",
        ])
        && ip(&["addr", "add", "10.77.0.1/24", "dev", "p2pt0"])
        && ip(&["link", "set", "p2pt0", "up"])
        && ip(&["link", "set", "p2pt1", "up"]);
    if !ok {
        eprintln!("SKIP: cannot configure the test namespace (iproute2 missing?)");
    }
    ok
}

fn peer(name: &str) -> (Sockets, Seen) {
    let config = SocketsConfig {
        shards: 1,
        identity: Some(Identity::parse(&format!("str:{name}")).unwrap()),
        ..SocketsConfig::default()
    };
    with(config)
}

pub(super) fn with(config: SocketsConfig) -> (Sockets, Seen) {
    let s = Sockets::with_config(config).unwrap();
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    assert!(
        s.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
            move |e: &StatusChanged| sink.lock().unwrap().push(e.clone())
        )))
    );
    (s, seen)
}

/// Signals to the other side, queued for the test loop to deliver.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<Vec<u8>>>>);

impl ConnectionSignaling for Wire {
    fn send_signal(&self, _: Connection, _: &ConnectionInfo, msg: &[u8]) -> bool {
        self.0.lock().unwrap().push(msg.to_vec());
        true
    }
}

impl Wire {
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The acceptor's receive context: keeps every request, answering through `back`.
struct Keep {
    back: Wire,
    requests: Vec<(Connection, Identity, i32)>,
    reject: bool,
    sockets: Sockets,
    rejections: Vec<Vec<u8>>,
}

impl SignalingRecvContext for Keep {
    fn on_connect_request(
        &mut self,
        conn: Connection,
        peer: &Identity,
        local_vport: i32,
    ) -> Option<Arc<dyn ConnectionSignaling>> {
        self.requests.push((conn, peer.clone(), local_vport));
        if self.reject {
            self.sockets
                .close_connection(conn, 1234, "not today", false);
            return None;
        }
        Some(Arc::new(self.back.clone()))
    }

    fn send_rejection_signal(&mut self, _: &Identity, msg: &[u8]) {
        self.rejections.push(msg.to_vec());
    }
}

pub(super) fn states(seen: &Seen, conn: Connection) -> Vec<ConnectionState> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|e| e.conn == conn)
        .map(|e| e.info.state)
        .collect()
}

#[test]
fn custom_signaling_connects_two_instances_over_ice_and_carries_reliable_messages() {
    if !private_net() {
        return;
    }
    let (alice, alice_seen) = peer("alice");
    let (bob, bob_seen) = peer("bob");
    assert_ne!(bob.create_listen_socket_p2p(5, &[]), ListenSocket::INVALID);
    assert_eq!(
        bob.create_listen_socket_p2p(5, &[]),
        ListenSocket::INVALID,
        "one listen socket per virtual port"
    );
    let (to_bob, to_alice) = (Wire::default(), Wire::default());
    let bob_id = Identity::parse("str:bob").unwrap();
    let a = alice.connect_p2p_custom_signaling(Arc::new(to_bob.clone()), Some(&bob_id), 5, &[]);
    assert_ne!(a, Connection::INVALID);
    let mut ctx = Keep {
        back: to_alice.clone(),
        requests: Vec::new(),
        reject: false,
        sockets: bob.clone(),
        rejections: Vec::new(),
    };
    let mut b = None;
    let connected = wait_until(&[&alice, &bob], || {
        for s in to_bob.take() {
            assert!(bob.received_p2p_custom_signal(&s, &mut ctx));
        }
        for s in to_alice.take() {
            assert!(alice.received_p2p_custom_signal(&s, &mut ctx_none()));
        }
        if b.is_none()
            && let Some(&(conn, _, _)) = ctx.requests.first()
            && states(&bob_seen, conn).contains(&ConnectionState::Connecting)
        {
            assert_eq!(bob.accept_connection(conn), sockworks::EResult::Ok);
            b = Some(conn);
        }
        b.is_some_and(|b| states(&bob_seen, b).contains(&ConnectionState::Connected))
            && states(&alice_seen, a).contains(&ConnectionState::Connected)
    });
    assert!(
        connected,
        "alice {:?} bob {:?}",
        states(&alice_seen, a),
        ctx.requests
    );
    let b = b.unwrap();
    assert_eq!(ctx.requests.len(), 1);
    assert_eq!(ctx.requests[0].1, Identity::parse("str:alice").unwrap());
    assert_eq!(ctx.requests[0].2, 5);
    assert_eq!(
        states(&alice_seen, a),
        [
            ConnectionState::Connecting,
            ConnectionState::FindingRoute,
            ConnectionState::Connected
        ]
    );
    let info = alice.get_connection_info(a).unwrap();
    assert_eq!(info.identity_remote, Some(bob_id));
    assert_eq!(
        info.addr_remote.ip(),
        "10.77.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    for i in 0..20u8 {
        alice
            .send_message_to_connection(a, &[i; 1000], send_flags::RELIABLE)
            .unwrap();
    }
    let got = recv_n(&bob, b, 20);
    assert_eq!(got.len(), 20);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, m)| m.data == vec![i as u8; 1000])
    );
    // Lanes work as on the IP path: two lanes, each in order, each message on its own lane.
    assert_eq!(
        alice.configure_connection_lanes(a, &[0, 1], &[1, 1]),
        sockworks::EResult::Ok
    );
    let batch: Vec<OutMessage> = (0..10u8)
        .map(|i| OutMessage {
            conn: a,
            data: vec![i],
            flags: send_flags::RELIABLE,
            lane: u16::from(i % 2),
        })
        .collect();
    assert!(alice.send_messages(batch).iter().all(|&r| r > 0));
    let got = recv_n(&bob, b, 10);
    for lane in 0..2u16 {
        let on: Vec<u8> = got
            .iter()
            .filter(|m| m.lane == lane)
            .map(|m| m.data[0])
            .collect();
        let want: Vec<u8> = (0..10u8).filter(|i| u16::from(i % 2) == lane).collect();
        assert_eq!(on, want, "lane {lane}");
    }
    // Bob closes; alice hears it over the route.
    assert!(bob.close_connection(b, 1001, "bye", false));
    assert!(wait_until(&[&alice, &bob], || states(&alice_seen, a)
        .contains(&ConnectionState::ClosedByPeer)));
}

/// A context for the initiator, which never gets new requests.
fn ctx_none() -> Keep {
    Keep {
        back: Wire::default(),
        requests: Vec::new(),
        reject: true,
        sockets: Sockets::with_config(SocketsConfig {
            shards: 1,
            ..SocketsConfig::default()
        })
        .unwrap(),
        rejections: Vec::new(),
    }
}

#[test]
fn a_request_closed_in_on_connect_request_is_refused_with_a_rejection_signal() {
    if !private_net() {
        return;
    }
    let (alice, alice_seen) = peer("alice");
    let (bob, _) = peer("bob");
    let to_bob = Wire::default();
    let a = alice.connect_p2p_custom_signaling(
        Arc::new(to_bob.clone()),
        Some(&Identity::parse("str:bob").unwrap()),
        0,
        &[],
    );
    let mut ctx = Keep {
        back: Wire::default(),
        requests: Vec::new(),
        reject: true,
        sockets: bob.clone(),
        rejections: Vec::new(),
    };
    assert!(wait_until(&[&alice, &bob], || {
        for s in to_bob.take() {
            bob.received_p2p_custom_signal(&s, &mut ctx);
        }
        !ctx.rejections.is_empty()
    }));
    // The rejection (with our from_identity, unlike GNS's) closes alice's connection.
    let mut none = ctx_none();
    for r in std::mem::take(&mut ctx.rejections) {
        assert!(alice.received_p2p_custom_signal(&r, &mut none));
    }
    assert!(wait_until(&[&alice], || states(&alice_seen, a)
        .contains(&ConnectionState::ClosedByPeer)));
    let info = alice.get_connection_info(a).unwrap();
    assert_eq!(
        (info.end_reason, info.end_debug.as_str()),
        (1234, "not today")
    );
}

#[test]
fn ice_disabled_makes_connect_p2p_custom_signaling_fail_and_garbage_signals_return_false() {
    if !private_net() {
        return;
    }
    let (alice, _) = peer("alice");
    let h = alice.connect_p2p_custom_signaling(
        Arc::new(Wire::default()),
        None,
        0,
        &[ConfigValue::P2pTransportIceEnable(0)],
    );
    assert_eq!(h, Connection::INVALID);
    let mut none = ctx_none();
    assert!(!alice.received_p2p_custom_signal(b"\x01\x02garbage", &mut none));
    assert!(!alice.received_p2p_custom_signal(&[], &mut none));
    assert_eq!(
        alice.create_listen_socket_p2p(-1, &[]),
        ListenSocket::INVALID
    );
    assert_eq!(
        alice.create_listen_socket_p2p(65536, &[]),
        ListenSocket::INVALID
    );
}

/// A rendezvous service in a thread of the test on `at` (port 0: any), until `stop`; joined
/// through the handle, so a restart can take the same port.
fn rendezvous_at(
    stop: Arc<AtomicBool>,
    at: SocketAddr,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind(at).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut service = sockworks_rendezvous::server::Service::new(
            sockworks_rendezvous::server::ServiceConfig::new([9; 32]),
        );
        let clock = sockworks::engine::shard::Clock::new();
        let start = clock.now();
        let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
        while !stop.load(Ordering::Acquire) {
            let got = socket.recv_from(&mut buf);
            let now = Duration::from_micros(clock.now().saturating_since(start).as_micros() as u64);
            if let Ok((n, from)) = got {
                out.clear();
                if let Some(to) = service.handle_datagram(now, 0, from, &buf[..n], &mut out) {
                    let _ = socket.send_to(&out, to);
                }
            }
        }
    });
    (addr, handle)
}

fn rendezvous(stop: Arc<AtomicBool>) -> SocketAddr {
    rendezvous_at(stop, "127.0.0.1:0".parse().unwrap()).0
}

#[test]
fn connect_p2p_by_identity_through_the_rendezvous_service() {
    if !private_net() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let server = rendezvous(stop.clone());
    let config = |name: &str| SocketsConfig {
        shards: 1,
        identity: Some(Identity::parse(&format!("str:{name}")).unwrap()),
        rendezvous: Some(RendezvousConfig::new(server)),
        ..SocketsConfig::default()
    };
    let (alice, alice_seen) = with(config("alice"));
    let (bob, bob_seen) = with(config("bob"));
    assert_ne!(bob.create_listen_socket_p2p(3, &[]), ListenSocket::INVALID);
    let bob_id = Identity::parse("str:bob").unwrap();
    // Bob registers in the background; a connect before that is retried by the signals.
    let a = alice.connect_p2p(&bob_id, 3, &[]);
    assert_ne!(a, Connection::INVALID);
    let mut b = None;
    let ok = wait_until(&[&alice, &bob], || {
        if b.is_none()
            && let Some(e) = bob_seen
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.info.state == ConnectionState::Connecting)
        {
            assert_eq!(bob.accept_connection(e.conn), sockworks::EResult::Ok);
            b = Some(e.conn);
        }
        states(&alice_seen, a).contains(&ConnectionState::Connected)
    });
    stop.store(true, Ordering::Release);
    assert!(ok, "alice {:?}", states(&alice_seen, a));
    let b = b.unwrap();
    alice
        .send_message_to_connection(a, b"hello via rendezvous", send_flags::RELIABLE)
        .unwrap();
    assert_eq!(recv_n(&bob, b, 1)[0].data, b"hello via rendezvous");
    // Without a service, ConnectP2P fails as GNS's does without a signaling callback.
    let (lonely, _) = peer("carol");
    assert_eq!(lonely.connect_p2p(&bob_id, 3, &[]), Connection::INVALID);
}

#[test]
fn connect_p2p_survives_a_rendezvous_restart() {
    if !private_net() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (server, first) = rendezvous_at(stop.clone(), "127.0.0.1:0".parse().unwrap());
    let config = |name: &str| SocketsConfig {
        shards: 1,
        identity: Some(Identity::parse(&format!("str:{name}")).unwrap()),
        rendezvous: Some(RendezvousConfig {
            reregister: Duration::from_millis(500),
            ..RendezvousConfig::new(server)
        }),
        ..SocketsConfig::default()
    };
    let (alice, alice_seen) = with(config("alice"));
    let (bob, bob_seen) = with(config("bob"));
    assert_ne!(bob.create_listen_socket_p2p(3, &[]), ListenSocket::INVALID);
    let bob_id = Identity::parse("str:bob").unwrap();
    let accept_all = |seen: &Seen, done: &mut Vec<Connection>| {
        for e in seen.lock().unwrap().iter() {
            if e.info.state == ConnectionState::Connecting && !done.contains(&e.conn) {
                assert_eq!(bob.accept_connection(e.conn), sockworks::EResult::Ok);
                done.push(e.conn);
            }
        }
    };
    let mut accepted = Vec::new();
    let a1 = alice.connect_p2p(&bob_id, 3, &[]);
    assert!(wait_until(&[&alice, &bob], || {
        accept_all(&bob_seen, &mut accepted);
        states(&alice_seen, a1).contains(&ConnectionState::Connected)
    }));
    // The service goes away and comes back on the same port with no registrations.
    stop.store(true, Ordering::Release);
    first.join().unwrap();
    // The live connection does not need it.
    alice
        .send_message_to_connection(a1, b"while down", send_flags::RELIABLE)
        .unwrap();
    assert_eq!(recv_n(&bob, accepted[0], 1)[0].data, b"while down");
    let stop2 = Arc::new(AtomicBool::new(false));
    let (again, _second) = rendezvous_at(stop2.clone(), server);
    assert_eq!(again, server);
    // Peers re-register within an interval; a new connection then forms.
    let a2 = alice.connect_p2p(&bob_id, 3, &[]);
    let ok = wait_until(&[&alice, &bob], || {
        accept_all(&bob_seen, &mut accepted);
        states(&alice_seen, a2).contains(&ConnectionState::Connected)
    });
    stop2.store(true, Ordering::Release);
    assert!(ok, "after the restart: {:?}", states(&alice_seen, a2));
}
