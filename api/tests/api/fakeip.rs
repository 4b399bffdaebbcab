//! FakeIP through the public API: `BeginAsyncRequestFakeIP` with its callback, `GetFakeIP`,
//! `CreateListenSocketP2PFakeIP`, `ConnectByIPAddress` to a FakeIP, `GetRemoteFakeIPForConnection`,
//! `GetRealIdentityForFakeIP`, and allocations that survive a rendezvous restart. The
//! rendezvous service runs in a thread of the test (with its state file where it matters);
//! tests that connect run in a private network namespace (see `p2p.rs`).

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks::engine::wire::identity::Identity;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, FakeIpResult, FakeIpType, ListenSocket,
    RendezvousConfig, Sockets, SocketsConfig, send_flags,
};
use sockworks_rendezvous::fakeip::FakeIpTable;
use sockworks_rendezvous::server::{Service, ServiceConfig};

use super::common::{Seen, recv_n, wait_until};
use super::p2p::{private_net, states, with};

/// FakeIP results the callback saw.
pub(super) type Results = Arc<Mutex<Vec<FakeIpResult>>>;

/// A rendezvous service in a thread of the test on `at` (port 0: any) until `stop`, keeping
/// FakeIPs in `state` when given (loaded at start, saved before granting, as the binary
/// does). Joined through the handle, so a restart can take the same port.
pub(super) fn service_at(
    stop: Arc<AtomicBool>,
    at: SocketAddr,
    state: Option<PathBuf>,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind(at).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut config = ServiceConfig::new([9; 32]);
        config.persist_fakeips = state.is_some();
        let mut service = Service::new(config);
        if let Some(path) = &state {
            let table = sockworks_rendezvous::state::load(path, 100, [5; 32]).unwrap();
            service.set_fake_ips(table);
        }
        let clock = sockworks::engine::shard::Clock::new();
        let start = clock.now();
        let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
        while !stop.load(Ordering::Acquire) {
            let got = socket.recv_from(&mut buf);
            let now = clock.now().saturating_since(start);
            if let Ok((n, from)) = got {
                out.clear();
                if let Some(to) = service.handle_datagram(now, 0, from, &buf[..n], &mut out) {
                    let _ = socket.send_to(&out, to);
                }
            }
            if let (Some(path), Some((generation, text))) = (&state, service.fake_ip_snapshot()) {
                sockworks_rendezvous::state::save(path, &text).unwrap();
                service.fake_ips_saved(generation);
                while let Some(to) = service.poll_grant(now, &mut out) {
                    let _ = socket.send_to(&out, to);
                }
            }
        }
    });
    (addr, handle)
}

/// A peer named `str:{name}` registered with the service at `server`, recording status
/// changes and FakeIP results.
pub(super) fn peer(name: &str, server: SocketAddr) -> (Sockets, Seen, Results) {
    let (s, seen) = with(SocketsConfig {
        shards: 1,
        identity: Some(id(name)),
        rendezvous: Some(RendezvousConfig {
            reregister: Duration::from_millis(500),
            fake_ip_timeout: Duration::from_secs(5),
            ..RendezvousConfig::new(server)
        }),
        ..SocketsConfig::default()
    });
    let results: Results = Arc::default();
    let sink = results.clone();
    assert!(
        s.set_global_config_value(&ConfigValue::FakeIpResult(Arc::new(
            move |r: &FakeIpResult| sink.lock().unwrap().push(r.clone())
        )))
    );
    (s, seen, results)
}

pub(super) fn id(name: &str) -> Identity {
    Identity::parse(&format!("str:{name}")).unwrap()
}

/// Requests a FakeIP with `ports` ports and waits for the callback's result.
pub(super) fn request(s: &Sockets, results: &Results, ports: i32) -> FakeIpResult {
    let before = results.lock().unwrap().len();
    assert!(s.begin_async_request_fake_ip(ports));
    assert!(
        wait_until(&[s], || results.lock().unwrap().len() > before),
        "no FakeIP result"
    );
    results.lock().unwrap()[before].clone()
}

fn v4(r: &FakeIpResult, i: usize) -> SocketAddrV4 {
    r.addr(i).unwrap()
}

#[test]
fn two_peers_get_fake_ips_and_connect_by_fake_ip_only() {
    if !private_net() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (server, _service) = service_at(stop.clone(), "127.0.0.1:0".parse().unwrap(), None);
    let (alice, alice_seen, alice_results) = peer("alice", server);
    let (bob, bob_seen, bob_results) = peer("bob", server);
    let a_ip = request(&alice, &alice_results, 1);
    let b_ip = request(&bob, &bob_results, 2);
    for (r, who) in [(&a_ip, "alice"), (&b_ip, "bob")] {
        assert_eq!(r.result, EResult::Ok, "{r:?}");
        assert_eq!(r.identity, Some(id(who)));
        assert_eq!(sockworks::ipv4_fake_ip_type(r.ip), FakeIpType::GlobalIpv4);
        assert!(r.ports.iter().all(|&p| p > 1024));
    }
    assert_ne!(a_ip.ip, b_ip.ip);
    assert_eq!((a_ip.ports.len(), b_ip.ports.len()), (1, 2));
    // GetFakeIP: the same result, from a port index on.
    assert_eq!(alice.get_fake_ip(0), a_ip);
    assert_eq!(bob.get_fake_ip(1).ports, b_ip.ports[1..]);
    assert_eq!(alice.get_fake_ip(1).result, EResult::InvalidParam);
    // Another request after success: LimitExceeded (the SDK's rule), nothing changes.
    let again = request(&alice, &alice_results, 1);
    assert_eq!(again.result, EResult::LimitExceeded);
    assert_eq!(alice.get_fake_ip(0), a_ip);

    let listen = bob.create_listen_socket_p2p_fake_ip(0, &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    assert_eq!(
        bob.create_listen_socket_p2p_fake_ip(2, &[]),
        ListenSocket::INVALID
    );
    assert_eq!(
        bob.create_listen_socket_p2p_fake_ip(0, &[]),
        ListenSocket::INVALID,
        "taken"
    );

    // Alice knows Bob only by his FakeIP.
    let bob_addr = v4(&b_ip, 0);
    let a = alice.connect_by_ip_address(SocketAddr::V4(bob_addr), &[]);
    assert_ne!(a, Connection::INVALID);
    let fake_bob = Identity::IpAddress(SocketAddr::V4(bob_addr));
    assert_eq!(
        alice.get_connection_info(a).unwrap().identity_remote,
        Some(fake_bob.clone()),
        "the FakeIP identity at once"
    );
    let mut b = None;
    let ok = wait_until(&[&alice, &bob], || {
        if b.is_none()
            && let Some(e) = bob_seen
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.info.state == ConnectionState::Connecting)
        {
            assert_eq!(e.info.listen_socket, listen);
            assert_eq!(e.info.identity_remote, Some(id("alice")));
            assert_eq!(bob.accept_connection(e.conn), EResult::Ok);
            b = Some(e.conn);
        }
        states(&alice_seen, a).contains(&ConnectionState::Connected)
    });
    assert!(ok, "alice {:?}", states(&alice_seen, a));
    let b = b.unwrap();
    // The FakeIP identity until the answer named Bob, then Bob.
    let first = alice_seen
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.conn == a)
        .map(|e| e.info.identity_remote.clone());
    assert_eq!(first, Some(Some(fake_bob)));
    assert_eq!(
        alice.get_connection_info(a).unwrap().identity_remote,
        Some(id("bob"))
    );

    alice
        .send_message_to_connection(a, b"to bob", send_flags::RELIABLE)
        .unwrap();
    bob.send_message_to_connection(b, b"to alice", send_flags::RELIABLE)
        .unwrap();
    assert_eq!(recv_n(&bob, b, 1)[0].data, b"to bob");
    assert_eq!(recv_n(&alice, a, 1)[0].data, b"to alice");

    // Each side names the other by its global FakeIP.
    assert_eq!(bob.get_remote_fake_ip_for_connection(b), Ok(v4(&a_ip, 0)));
    assert_eq!(alice.get_remote_fake_ip_for_connection(a), Ok(bob_addr));
    let fake = |a: SocketAddrV4| SocketAddr::V4(a);
    assert_eq!(
        bob.get_real_identity_for_fake_ip(fake(v4(&a_ip, 0))),
        Ok(id("alice"))
    );
    assert_eq!(
        alice.get_real_identity_for_fake_ip(fake(bob_addr)),
        Ok(id("bob"))
    );
    assert_eq!(
        alice.get_real_identity_for_fake_ip(fake(v4(&a_ip, 0))),
        Ok(id("alice"))
    );
    let unknown = "169.254.1.1:2000".parse().unwrap();
    assert_eq!(
        alice.get_real_identity_for_fake_ip(unknown),
        Err(EResult::NoMatch)
    );
    let real = "10.0.0.1:2000".parse().unwrap();
    assert_eq!(
        alice.get_real_identity_for_fake_ip(real),
        Err(EResult::InvalidParam)
    );
    stop.store(true, Ordering::Release);
}

#[test]
fn a_peer_without_a_fake_ip_is_named_by_a_local_one() {
    if !private_net() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (server, _service) = service_at(stop.clone(), "127.0.0.1:0".parse().unwrap(), None);
    let (bob, bob_seen, bob_results) = peer("bob", server);
    let (carol, carol_seen, _) = peer("carol", server);
    let b_ip = request(&bob, &bob_results, 1);
    assert_ne!(
        bob.create_listen_socket_p2p_fake_ip(0, &[]),
        ListenSocket::INVALID
    );
    let c = carol.connect_by_ip_address(SocketAddr::V4(v4(&b_ip, 0)), &[]);
    let mut b = None;
    assert!(wait_until(&[&bob, &carol], || {
        if b.is_none()
            && let Some(e) = bob_seen
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.info.state == ConnectionState::Connecting)
        {
            bob.accept_connection(e.conn);
            b = Some(e.conn);
        }
        states(&carol_seen, c).contains(&ConnectionState::Connected)
    }));
    let local = bob.get_remote_fake_ip_for_connection(b.unwrap()).unwrap();
    assert_eq!(
        sockworks::ipv4_fake_ip_type(*local.ip()),
        FakeIpType::LocalIpv4
    );
    assert_eq!(
        bob.get_real_identity_for_fake_ip(SocketAddr::V4(local)),
        Ok(id("carol"))
    );
    stop.store(true, Ordering::Release);
}

#[test]
fn the_allocation_is_the_same_after_the_service_restarts_with_its_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("fakeips");
    let stop = Arc::new(AtomicBool::new(false));
    let (server, first) = service_at(
        stop.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Some(state.clone()),
    );
    let (alice, _, results) = peer("alice", server);
    let before = request(&alice, &results, 3);
    assert_eq!(before.result, EResult::Ok);
    drop(alice);
    stop.store(true, Ordering::Release);
    first.join().unwrap();
    // On disk before it was granted.
    let saved =
        FakeIpTable::from_text(&std::fs::read_to_string(&state).unwrap(), 10, [0; 32]).unwrap();
    assert_eq!(saved.get("str:alice").map(|a| a.ip), Some(before.ip));

    let stop2 = Arc::new(AtomicBool::new(false));
    let (again, _second) = service_at(stop2.clone(), server, Some(state));
    assert_eq!(again, server);
    let (alice, _, results) = peer("alice", server);
    let after = request(&alice, &results, 3);
    assert_eq!(
        (after.result, after.ip, &after.ports),
        (EResult::Ok, before.ip, &before.ports)
    );
    let (dave, _, results) = peer("dave", server);
    let other = request(&dave, &results, 1);
    assert_eq!(other.result, EResult::Ok);
    assert_ne!(other.ip, before.ip);
    stop2.store(true, Ordering::Release);
}

#[test]
fn misuse_returns_the_documented_values() {
    // No rendezvous service: nothing to ask.
    let (lonely, _) = with(SocketsConfig {
        shards: 1,
        ..SocketsConfig::default()
    });
    assert!(!lonely.begin_async_request_fake_ip(1));
    assert_eq!(lonely.get_fake_ip(0).result, EResult::NoMatch);
    assert_eq!(
        lonely.create_listen_socket_p2p_fake_ip(0, &[]),
        ListenSocket::INVALID
    );
    assert!(lonely.create_fake_udp_port(0).is_none());
    assert!(lonely.create_fake_udp_port(-1).is_none());
    let fake: SocketAddr = "169.254.7.9:2000".parse().unwrap();
    assert_eq!(lonely.connect_by_ip_address(fake, &[]), Connection::INVALID);

    // A service that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (s, _, results) = peer("mallory", silent.local_addr().unwrap());
    for bad in [0, 5, -1] {
        assert!(!s.begin_async_request_fake_ip(bad), "{bad} ports");
    }
    assert_eq!(
        s.create_listen_socket_p2p_fake_ip(0, &[]),
        ListenSocket::INVALID,
        "no request yet"
    );
    assert!(s.create_fake_udp_port(0).is_none(), "no request yet");
    assert!(s.begin_async_request_fake_ip(2));
    assert!(!s.begin_async_request_fake_ip(2), "in flight");
    assert_eq!(s.get_fake_ip(0).result, EResult::Busy);
    assert_eq!(s.get_fake_ip(-1).result, EResult::InvalidParam);
    assert_eq!(s.get_fake_ip(4).result, EResult::InvalidParam);
    // The ports asked for are known before the answer.
    assert_ne!(
        s.create_listen_socket_p2p_fake_ip(1, &[]),
        ListenSocket::INVALID
    );
    assert_eq!(
        s.create_listen_socket_p2p_fake_ip(2, &[]),
        ListenSocket::INVALID
    );
    assert_eq!(
        s.create_listen_socket_p2p_fake_ip(-1, &[]),
        ListenSocket::INVALID
    );
    let port = s.create_fake_udp_port(0).unwrap();
    assert_eq!(
        port.send_message_to_fake_ip(fake, b"x", send_flags::UNRELIABLE),
        EResult::Busy,
        "a server port before its FakeIP is allocated"
    );
    // Only global FakeIPs can be connected to, and never with a local virtual port.
    let local: SocketAddr = "169.254.200.1:2000".parse().unwrap();
    assert_eq!(s.connect_by_ip_address(local, &[]), Connection::INVALID);
    assert_eq!(
        s.connect_by_ip_address(fake, &[ConfigValue::LocalVirtualPort(3)]),
        Connection::INVALID
    );
    // ConnectP2P to a FakeIP identity takes virtual port -1 (GNS).
    let fake_id = Identity::IpAddress(fake);
    assert_eq!(s.connect_p2p(&fake_id, 3, &[]), Connection::INVALID);
    let local_id = Identity::IpAddress(local);
    assert_eq!(
        s.connect_p2p(&local_id, -1, &[]),
        Connection::INVALID,
        "local FakeIP"
    );
    // The callback is global only.
    let cb = ConfigValue::FakeIpResult(Arc::new(|_: &FakeIpResult| {}));
    assert_eq!(s.create_listen_socket_p2p(9, &[cb]), ListenSocket::INVALID);
    // No answer: Timeout, through the callback and GetFakeIP.
    // The request lasts `fake_ip_timeout` (5 s here); wait_until gives up after 10 s.
    assert!(wait_until(&[&s], || !results.lock().unwrap().is_empty()));
    let r = results.lock().unwrap()[0].clone();
    assert_eq!(r.result, EResult::Timeout);
    assert_eq!(
        (r.identity, r.ip, r.ports.len()),
        (Some(id("mallory")), Ipv4Addr::UNSPECIFIED, 0)
    );
    assert_eq!(s.get_fake_ip(0).result, EResult::Timeout);
    assert!(
        s.begin_async_request_fake_ip(1),
        "a failed request may be retried"
    );

    // Utils.
    let t = |a, b, c, d| sockworks::ipv4_fake_ip_type(Ipv4Addr::new(a, b, c, d));
    assert_eq!(t(169, 254, 7, 9), FakeIpType::GlobalIpv4);
    assert_eq!(t(169, 254, 200, 1), FakeIpType::LocalIpv4);
    assert_eq!(t(169, 254, 0, 1), FakeIpType::NotFake);
    assert_eq!(t(10, 0, 0, 1), FakeIpType::NotFake);
    assert!(sockworks::is_fake_ipv4(Ipv4Addr::new(169, 254, 100, 100)));
    assert!(!sockworks::is_fake_ipv4(Ipv4Addr::new(192, 168, 1, 1)));

    // GetRemoteFakeIPForConnection: InvalidParam for a bad handle, IpNotFound otherwise.
    assert_eq!(
        s.get_remote_fake_ip_for_connection(Connection(12345)),
        Err(EResult::InvalidParam)
    );
    let (x, _y) = s.create_socket_pair(false, None, None).unwrap();
    assert_eq!(
        s.get_remote_fake_ip_for_connection(x),
        Err(EResult::IpNotFound)
    );
}
