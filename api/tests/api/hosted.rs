//! Hosted dedicated servers behind a relay fleet: the server side's port, POP and sealed
//! routing blob, its listen socket, and the client's relay-ticket cache.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

use std::net::SocketAddr;

use sockworks::engine::crypto::keys::IdentityKey;
use sockworks::engine::wire::identity::Identity;
use sockworks::{EResult, HostedConfig, ListenSocket, RelayAuthTicket, RoutingKey, SocketsConfig};

use super::common::instance;

/// A hosted server `id` on `port` of the fleet with routing key `key`, recording its status
/// changes.
fn hosted_server(
    id: &Identity,
    port: u16,
    key: [u8; 32],
) -> (sockworks::Sockets, super::common::Seen) {
    let server = sockworks::Sockets::with_config(SocketsConfig {
        shards: 1,
        identity: Some(id.clone()),
        hosted: Some(HostedConfig {
            listen_port: port,
            pop: "fra".into(),
            public_addr: format!("127.0.0.1:{port}").parse().unwrap(),
            routing_key: RoutingKey::new(&key),
        }),
        ..SocketsConfig::default()
    })
    .unwrap();
    let seen: super::common::Seen = std::sync::Arc::default();
    let sink = seen.clone();
    assert!(
        server.set_global_config_value(&sockworks::ConfigValue::ConnectionStatusChanged(
            std::sync::Arc::new(move |e: &sockworks::StatusChanged| sink
                .lock()
                .unwrap()
                .push(e.clone()))
        ))
    );
    (server, seen)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_hosted_server_reports_its_port_pop_and_a_sealed_routing_blob_and_listens() {
    let port = free_udp_port();
    let public: SocketAddr = format!("203.0.113.7:{port}").parse().unwrap();
    let key = [7u8; 32];
    let server = sockworks::Sockets::with_config(SocketsConfig {
        shards: 1,
        hosted: Some(HostedConfig {
            listen_port: port,
            pop: "fra".into(),
            public_addr: public,
            routing_key: RoutingKey::new(&key),
        }),
        ..SocketsConfig::default()
    })
    .unwrap();
    assert_eq!(server.get_hosted_dedicated_server_port(), port);
    assert_eq!(server.get_hosted_dedicated_server_pop_id(), 0x0066_7261);
    let blob = server.get_hosted_dedicated_server_address().unwrap();
    assert!(blob.len() <= 128);
    assert_eq!(&blob[..4], b"fra\0");
    // The relay fleet opens it; a client holding it learns nothing of the address.
    let (pop, addr) = sockworks_relay::routing::open(&blob, &RoutingKey::new(&key)).unwrap();
    assert_eq!((pop.as_str(), addr), ("fra", public));
    assert!(!blob.windows(4).any(|w| w == [203, 0, 113, 7]));
    assert!(sockworks_relay::routing::open(&blob, &RoutingKey::new(&[8; 32])).is_err());
    // Two calls seal with fresh nonces.
    assert_ne!(blob, server.get_hosted_dedicated_server_address().unwrap());
    let listen = server.create_hosted_dedicated_server_listen_socket(0, &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    assert_eq!(
        server.get_listen_socket_address(listen).unwrap().port(),
        port
    );
}

#[test]
fn a_server_outside_a_fleet_reports_nothing_and_cannot_listen_as_hosted() {
    let (s, _) = instance(1);
    assert_eq!(s.get_hosted_dedicated_server_port(), 0);
    assert_eq!(s.get_hosted_dedicated_server_pop_id(), 0);
    assert_eq!(
        s.get_hosted_dedicated_server_address(),
        Err(EResult::InvalidState)
    );
    assert_eq!(
        s.create_hosted_dedicated_server_listen_socket(0, &[]),
        ListenSocket::INVALID
    );
}

fn ticket(server: &str, vport: i32, expiry_unix: u64) -> RelayAuthTicket {
    RelayAuthTicket {
        gameserver: server.into(),
        authorized_client: "str:client".into(),
        public_ip: None,
        expiry_unix,
        routing: vec![b'f', b'r', b'a', 0, 1, 2, 3],
        app_id: 0,
        restrict_to_vport: vport,
        extra: Vec::new(),
    }
}

#[expect(clippy::disallowed_methods, reason = "tickets expire in Unix time")]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn relay_tickets_are_cached_and_the_latest_expiring_one_is_found() {
    let (s, _) = instance(1);
    let ca = IdentityKey::from_seed([3; 32]);
    let now = unix_now();
    let sign = |t: &RelayAuthTicket| sockworks_relay::ticket::sign(t, &ca).unwrap();
    let server = Identity::parse("str:arena-1").unwrap();
    let short = ticket("str:arena-1", -1, now + 600);
    let long = ticket("str:arena-1", 7, now + 3600);
    assert_eq!(
        s.received_relay_auth_ticket(&sign(&short)),
        Some(short.clone())
    );
    assert_eq!(
        s.received_relay_auth_ticket(&sign(&long)),
        Some(long.clone())
    );
    let (secs, found) = s.find_relay_auth_ticket_for_server(&server, 7);
    assert!((3590..=3600).contains(&secs), "{secs}");
    assert_eq!(found, Some(long));
    // Port 8: only the ticket for any port.
    let (secs, found) = s.find_relay_auth_ticket_for_server(&server, 8);
    assert!((590..=600).contains(&secs), "{secs}");
    assert_eq!(found, Some(short));
    // Another server: none.
    let other = Identity::parse("str:arena-2").unwrap();
    assert_eq!(s.find_relay_auth_ticket_for_server(&other, 7), (0, None));
    // Expired, malformed and oversized tickets are refused.
    assert_eq!(
        s.received_relay_auth_ticket(&sign(&ticket("str:x", -1, now - 1))),
        None
    );
    assert_eq!(s.received_relay_auth_ticket(b"not a ticket"), None);
    assert_eq!(s.received_relay_auth_ticket(&[0u8; 600]), None);
}

#[test]
fn a_client_reaches_a_hosted_server_through_a_relay_without_learning_its_address() {
    // The fleet: a CA that signs tickets, a routing key, one relay.
    let ca = IdentityKey::from_seed([5; 32]);
    let key = [9u8; 32];
    let trust = sockworks_relay::ticket::trust_of(&[ca.public_bytes()]);
    let relay_cfg = sockworks_relay::RelayConfig::new(trust, RoutingKey::new(&key), "fra", [1; 32]);
    let listener = sockworks_relay::io::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
    let relay_addr = {
        use sockworks::engine::driver::Driver as _;
        listener.local_addr().unwrap()
    };
    std::thread::spawn(move || {
        // Runs until the test process ends.
        let _ = sockworks_relay::io::run(
            sockworks_relay::Relay::new(relay_cfg),
            listener,
            None,
            |_, _| {},
        );
    });
    // The hosted server.
    let port = free_udp_port();
    let server_id = Identity::parse("str:arena-1").unwrap();
    let (server, seen) = hosted_server(&server_id, port, key);
    assert_ne!(
        server.create_hosted_dedicated_server_listen_socket(0, &[]),
        ListenSocket::INVALID
    );
    // The backend issues a ticket with the server's routing blob.
    let mut t = ticket("str:arena-1", -1, unix_now() + 3600);
    t.routing = server.get_hosted_dedicated_server_address().unwrap();
    let signed = sockworks_relay::ticket::sign(&t, &ca).unwrap();
    // The client.
    let client = sockworks::Sockets::with_config(SocketsConfig {
        shards: 1,
        identity: Some(Identity::parse("str:client").unwrap()),
        relays: vec![relay_addr],
        ..SocketsConfig::default()
    })
    .unwrap();
    assert!(client.received_relay_auth_ticket(&signed).is_some());
    let c = client.connect_to_hosted_dedicated_server(&server_id, 0, &[]);
    assert_ne!(c, sockworks::Connection::INVALID);
    let mut s_conn = None;
    assert!(super::common::wait_until(&[&server, &client], || {
        if s_conn.is_none() {
            s_conn = super::common::first_in(&seen, sockworks::ConnectionState::Connecting);
            if let Some(s) = s_conn {
                assert_eq!(server.accept_connection(s), EResult::Ok);
            }
        }
        client.connection_state(c) == sockworks::ConnectionState::Connected
    }));
    let s_conn = s_conn.unwrap();
    client
        .send_message_to_connection(c, b"through the relay", sockworks::send_flags::RELIABLE)
        .unwrap();
    let got = super::common::recv_n(&server, s_conn, 1);
    assert_eq!(got[0].data, b"through the relay");
    // The client sees the relay, never the server's port; the server sees the relay's
    // session socket, never the client's.
    let ci = client.get_connection_info(c).unwrap();
    assert_eq!(ci.addr_remote, relay_addr);
    assert_eq!(ci.identity_remote, Some(server_id));
    let si = server.get_connection_info(s_conn).unwrap();
    assert_ne!(si.addr_remote.port(), port);
    assert_eq!(
        si.identity_remote,
        Some(Identity::parse("str:client").unwrap())
    );
    // No ticket for another server: the call fails at once.
    assert_eq!(
        client.connect_to_hosted_dedicated_server(&Identity::parse("str:other").unwrap(), 0, &[]),
        sockworks::Connection::INVALID
    );
}

/// A UDP path between one client and a relay that adds `delay` and can be cut.
struct Path {
    addr: SocketAddr,
    alive: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Datagrams it carried (both ways).
    forwarded: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn path(to: SocketAddr, delay: std::time::Duration) -> Path {
    use std::sync::atomic::{AtomicBool, Ordering};
    let outer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let inner = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = outer.local_addr().unwrap();
    let alive = std::sync::Arc::new(AtomicBool::new(true));
    let forwarded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let client: std::sync::Arc<std::sync::Mutex<Option<SocketAddr>>> = std::sync::Arc::default();
    for (from, into, towards_relay) in [
        (outer.try_clone().unwrap(), inner.try_clone().unwrap(), true),
        (inner, outer, false),
    ] {
        let (alive, client, count) = (alive.clone(), client.clone(), forwarded.clone());
        from.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, src)) = from.recv_from(&mut buf) else {
                    continue;
                };
                if !alive.load(Ordering::Acquire) {
                    continue;
                }
                std::thread::sleep(delay);
                let dest = if towards_relay {
                    *client.lock().unwrap() = Some(src);
                    Some(to)
                } else {
                    *client.lock().unwrap()
                };
                if let Some(d) = dest {
                    count.fetch_add(1, Ordering::AcqRel);
                    let _ = into.send_to(&buf[..n], d);
                }
            }
        });
    }
    Path {
        addr,
        alive,
        forwarded,
    }
}

#[test]
fn a_relayed_client_takes_the_nearest_relay_and_moves_to_another_when_it_dies() {
    use std::sync::atomic::Ordering;
    let ca = IdentityKey::from_seed([6; 32]);
    let key = [4u8; 32];
    let mut relays = Vec::new();
    for _ in 0..2 {
        let trust = sockworks_relay::ticket::trust_of(&[ca.public_bytes()]);
        let cfg = sockworks_relay::RelayConfig::new(trust, RoutingKey::new(&key), "fra", [2; 32]);
        let listener = sockworks_relay::io::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        relays.push({
            use sockworks::engine::driver::Driver as _;
            listener.local_addr().unwrap()
        });
        std::thread::spawn(move || {
            let _ = sockworks_relay::io::run(
                sockworks_relay::Relay::new(cfg),
                listener,
                None,
                |_, _| {},
            );
        });
    }
    // The far relay is listed first; the near one must be chosen by its ping.
    let far = path(relays[1], std::time::Duration::from_millis(30));
    let near = path(relays[0], std::time::Duration::ZERO);
    let port = free_udp_port();
    let server_id = Identity::parse("str:arena-2").unwrap();
    let (server, seen) = hosted_server(&server_id, port, key);
    server.create_hosted_dedicated_server_listen_socket(0, &[]);
    let mut t = ticket("str:arena-2", -1, unix_now() + 3600);
    t.routing = server.get_hosted_dedicated_server_address().unwrap();
    let signed = sockworks_relay::ticket::sign(&t, &ca).unwrap();
    let client = sockworks::Sockets::with_config(SocketsConfig {
        shards: 1,
        relays: vec![far.addr, near.addr],
        ..SocketsConfig::default()
    })
    .unwrap();
    client.received_relay_auth_ticket(&signed).unwrap();
    let c = client.connect_to_hosted_dedicated_server(&server_id, 0, &[]);
    let mut s_conn = None;
    assert!(super::common::wait_until(&[&server, &client], || {
        if s_conn.is_none()
            && let Some(s) = super::common::first_in(&seen, sockworks::ConnectionState::Connecting)
        {
            assert_eq!(server.accept_connection(s), EResult::Ok);
            s_conn = Some(s);
        }
        client.connection_state(c) == sockworks::ConnectionState::Connected
    }));
    let s_conn = s_conn.unwrap();
    assert_eq!(
        client.get_connection_info(c).unwrap().addr_remote,
        near.addr
    );
    let send = |i: u32| {
        client
            .send_message_to_connection(c, &i.to_le_bytes(), sockworks::send_flags::RELIABLE)
            .unwrap();
    };
    for i in 0..50 {
        send(i);
    }
    let mut got = super::common::recv_n(&server, s_conn, 50);
    // The near relay dies; messages sent now must still all arrive, in order, via the other.
    let before_cut = far.forwarded.load(Ordering::Acquire);
    assert!(
        before_cut <= 2,
        "only the ping went the far way: {before_cut}"
    );
    near.alive.store(false, Ordering::Release);
    for i in 50..100 {
        send(i);
    }
    got.extend(super::common::recv_n(&server, s_conn, 50));
    let numbers: Vec<u32> = got
        .iter()
        .map(|m| u32::from_le_bytes(m.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(numbers, (0..100).collect::<Vec<u32>>());
    assert_eq!(
        client.connection_state(c),
        sockworks::ConnectionState::Connected
    );
    // The second half went through the other relay.
    let through_far = far.forwarded.load(Ordering::Acquire);
    // At least the Hello, the Welcome and the resent data.
    assert!(
        through_far >= before_cut + 3,
        "{before_cut} then {through_far}"
    );
}

#[test]
fn a_hosted_server_signs_a_game_coordinator_login_its_backend_verifies() {
    use sockworks::engine::crypto::TrustedCa;
    use sockworks::engine::crypto::ca::{self, CaKey, IssuePolicy};
    use sockworks::engine::wire::proto::CertificateRequest;
    let port = free_udp_port();
    let server = sockworks::Sockets::with_config(SocketsConfig {
        shards: 1,
        identity: Some(Identity::parse("str:arena-3").unwrap()),
        hosted: Some(HostedConfig {
            listen_port: port,
            pop: "fra".into(),
            public_addr: format!("127.0.0.1:{port}").parse().unwrap(),
            routing_key: RoutingKey::new(&[1; 32]),
        }),
        ..SocketsConfig::default()
    })
    .unwrap();
    // Without a CA-signed certificate there is nothing to sign with.
    assert_eq!(
        server.get_game_coordinator_server_login(b"x"),
        Err(EResult::InvalidState)
    );
    let ca = CaKey::from_seed([11; 32]);
    let raw = server.get_certificate_request().unwrap();
    let request = <CertificateRequest as prost::Message>::decode(raw.as_slice()).unwrap();
    let now = unix_now();
    let policy = IssuePolicy {
        app_ids: vec![0],
        pop_ids: None,
        time_created: (now - 3600) as u32,
        time_expiry: (now + 86_400) as u32,
        identity: None,
    };
    let cert = ca::issue_for_request(&ca, &request, &policy).unwrap();
    server
        .set_certificate(&prost::Message::encode_to_vec(&cert))
        .unwrap();
    let blob = server
        .get_game_coordinator_server_login(b"match 42")
        .unwrap();
    assert!(blob.len() <= 4096);
    let mut trust = sockworks::engine::crypto::TrustStore::new();
    trust.add_ca(TrustedCa::new(ca.public_key()));
    let login = sockworks_relay::login::verify(&blob, &trust, now, 60).unwrap();
    assert_eq!(login.identity, "str:arena-3");
    assert_eq!(login.app_data, b"match 42");
    assert_eq!(&login.routing[..4], b"fra\0");
    // Another CA's backend, a stale login, a flipped byte: refused.
    let mut other = sockworks::engine::crypto::TrustStore::new();
    other.add_ca(TrustedCa::new(CaKey::from_seed([12; 32]).public_key()));
    assert!(sockworks_relay::login::verify(&blob, &other, now, 60).is_err());
    assert!(sockworks_relay::login::verify(&blob, &trust, now + 3600, 60).is_err());
    let mut bad = blob.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    assert!(sockworks_relay::login::verify(&bad, &trust, now, 60).is_err());
    assert_eq!(
        server.get_game_coordinator_server_login(&[0; 3000]),
        Err(EResult::InvalidParam)
    );
}
