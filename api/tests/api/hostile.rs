//! Hostile traffic over real loopback UDP against a `Sockets` server (issue 16), while honest
//! connections exchange reliable messages that must all arrive exactly once, in order:
//! - a handshake flood (ChallengeRequests and ConnectRequests with forged cookies from many
//!   127.0.0.x addresses): the server keeps no state for the flood's sources;
//! - forged, replayed, truncated, reordered and bit-flipped data packets through an
//!   impairment proxy ([`crate::impair`]): dropped and counted, the connections undisturbed.
//!
//! Round-trip times are printed (quiet vs flood), never asserted: speed is for benchmarks.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed lock or bind is a failed test"
)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sockworks::engine::wire::control::ControlMessage;
use sockworks::engine::wire::proto::{ChallengeRequest, ConnectRequest};
use sockworks::{Connection, ListenSocket, Sockets};

use crate::common::*;
use crate::honest::{Honest, echo, group_of, quantile};
use crate::impair::{Impairments, Proxy, XorShift};

/// Honest connections in each test.
const HONEST: usize = 100;
/// Rounds (one message per connection each) per phase.
const ROUNDS: usize = 20;

fn encode(msg: ControlMessage) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    out
}

/// Handshake packets no honest client sends: ChallengeRequests (each answered statelessly) and
/// ConnectRequests whose cookie was never issued.
fn flood_packets(rng: &mut XorShift) -> Vec<Vec<u8>> {
    (0..64)
        .flat_map(|_| {
            let id = (rng.next() as u32) | 1;
            [
                encode(
                    ChallengeRequest {
                        connection_id: Some(id),
                        my_timestamp: Some(rng.next()),
                        protocol_version: Some(13),
                    }
                    .into(),
                ),
                encode(
                    ConnectRequest {
                        client_connection_id: Some(id),
                        challenge: Some(rng.next()),
                        my_timestamp: Some(rng.next()),
                        ..ConnectRequest::default()
                    }
                    .into(),
                ),
            ]
        })
        .collect()
}

/// Sends `flood_packets` to `to` from sockets on 127.0.0.2..=127.0.0.200 until `stop`;
/// counts them in `sent`.
fn flood(to: SocketAddr, stop: &AtomicBool, sent: &AtomicU64) {
    let socks: Vec<UdpSocket> = (2..=200u8)
        .filter_map(|x| UdpSocket::bind((Ipv4Addr::new(127, 0, 0, x), 0)).ok())
        .collect();
    assert!(socks.len() > 100, "bound {} flood sources", socks.len());
    for s in &socks {
        s.set_nonblocking(true).unwrap();
    }
    let packets = flood_packets(&mut XorShift::new(0x5eed));
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) {
        for s in &socks {
            // A full socket buffer drops the datagram, as a real flood would lose it.
            let _ = s.send_to(&packets[k % packets.len()], to);
            k += 1;
        }
        sent.store(k as u64, Ordering::Relaxed);
    }
}

fn print_rtts(what: &str, rtts: &mut [Duration]) -> (Duration, Duration) {
    let (p50, p99) = (quantile(rtts, 0.5), quantile(rtts, 0.99));
    println!("{what}: {} echoes, RTT p50 {p50:?} p99 {p99:?}", rtts.len());
    (p50, p99)
}

#[test]
fn a_handshake_flood_leaves_no_state_and_honest_traffic_loses_nothing() {
    let (server, server_seen) = instance(1);
    let (client, _) = instance_seeded(1, 11);
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = server.get_listen_socket_address(listen).unwrap();
    let pairs = connect_n(&server, &server_seen, &client, addr, HONEST, &[]);
    let before = server.endpoint_stats();
    assert_eq!(before.connections, HONEST as u64);

    let stop_echo = AtomicBool::new(false);
    let stop_flood = AtomicBool::new(false);
    let flooded = AtomicU64::new(0);
    let sgroup = group_of(&server, pairs.iter().map(|p| p.1));
    let mut honest = Honest::new(&client, pairs.iter().map(|p| p.0).collect());
    let (mut quiet, mut loud, during) = std::thread::scope(|s| {
        s.spawn(|| echo(&server, sgroup, &stop_echo));
        let quiet = honest.rounds(ROUNDS);
        let flooder = s.spawn(|| flood(addr, &stop_flood, &flooded));
        while flooded.load(Ordering::Relaxed) == 0 && !flooder.is_finished() {
            std::thread::yield_now();
        }
        let loud = honest.rounds(ROUNDS);
        let during = server.endpoint_stats();
        stop_flood.store(true, Ordering::Relaxed);
        flooder.join().unwrap();
        stop_echo.store(true, Ordering::Relaxed);
        (quiet, loud, during)
    });
    let after = server.endpoint_stats();
    let sent = flooded.load(Ordering::Relaxed);
    println!("flood: {sent} datagrams from 199 sources; server during: {during:?}");
    print_rtts("quiet", &mut quiet);
    print_rtts("flood", &mut loud);

    assert_eq!(honest.delivered(), (2 * ROUNDS * HONEST) as u64);
    assert!(sent > 0);
    assert!(during.counters.bad_challenge > 0, "forged cookies counted");
    for s in [during, after] {
        assert_eq!(
            s.connections, HONEST as u64,
            "no connection for a flood source"
        );
        assert_eq!(
            s.incoming_requests, HONEST as u64,
            "no request state either"
        );
    }
    let incoming: std::collections::BTreeSet<Connection> =
        server_seen.lock().unwrap().iter().map(|e| e.conn).collect();
    assert_eq!(
        incoming.len(),
        HONEST,
        "the application saw only honest connections"
    );
    all_connected(&client, &server, &pairs);
}

/// The "Dropped:" counters of a connection's detailed status: bad header, replayed, failed
/// auth, wrong state, control ignored.
fn drops(s: &Sockets, conn: Connection) -> [u64; 5] {
    let mut buf = vec![0u8; 16 * 1024];
    assert_eq!(s.get_detailed_connection_status(conn, &mut buf), 0);
    let text = String::from_utf8_lossy(&buf);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Dropped:"))
        .expect("a Dropped line");
    let mut out = [0; 5];
    for (o, part) in out.iter_mut().zip(line.split(',')) {
        *o = part.split_whitespace().next().unwrap().parse().unwrap();
    }
    out
}

fn sum_drops(s: &Sockets, conns: impl Iterator<Item = Connection>) -> [u64; 5] {
    conns.fold([0; 5], |mut acc, c| {
        for (a, d) in acc.iter_mut().zip(drops(s, c)) {
            *a += d;
        }
        acc
    })
}

#[test]
fn forged_replayed_and_corrupted_data_packets_are_dropped_counted_and_harmless() {
    let (server, server_seen) = instance(1);
    let (client, _) = instance_seeded(1, 11);
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = server.get_listen_socket_address(listen).unwrap();
    let proxy = Proxy::start(addr, Impairments::default(), 0x1234);
    let pairs = connect_n(&server, &server_seen, &client, proxy.addr(), HONEST, &[]);

    let stop_echo = AtomicBool::new(false);
    let sgroup = group_of(&server, pairs.iter().map(|p| p.1));
    let mut honest = Honest::new(&client, pairs.iter().map(|p| p.0).collect());
    let mut rtts = std::thread::scope(|s| {
        s.spawn(|| echo(&server, sgroup, &stop_echo));
        let rtts = honest.rounds(2 * ROUNDS);
        stop_echo.store(true, Ordering::Relaxed);
        rtts
    });
    let done = proxy.stop();
    print_rtts("impaired", &mut rtts);
    println!("proxy: {done:?}");
    assert_eq!(honest.delivered(), (2 * ROUNDS * HONEST) as u64);
    all_connected(&client, &server, &pairs);

    let at_server = sum_drops(&server, pairs.iter().map(|p| p.1));
    let at_client = sum_drops(&client, pairs.iter().map(|p| p.0));
    let (se, ce) = (server.endpoint_stats(), client.endpoint_stats());
    println!("server drops [bad header, replayed, auth, state, control] {at_server:?}, {se:?}");
    println!("client drops {at_client:?}, {ce:?}");
    let each = [
        done.replayed,
        done.truncated,
        done.flipped,
        done.reordered,
        done.forged_live,
        done.forged_random,
    ];
    assert!(
        each.iter().all(|&n| n > 0) && done.forwarded > 0,
        "every impairment happened"
    );
    for (what, d) in [("server", at_server), ("client", at_client)] {
        assert!(d[1] > 0, "{what}: replays counted");
        assert!(
            d[2] > 0,
            "{what}: forged and flipped packets fail authentication"
        );
    }
    assert!(
        se.counters.unknown_connection + ce.counters.unknown_connection > 0,
        "packets for random connection ids counted"
    );
}

/// Every honest pair is still Connected on both ends.
fn all_connected(client: &Sockets, server: &Sockets, pairs: &[(Connection, Connection)]) {
    for &(c, s) in pairs {
        assert_eq!(
            client.connection_state(c),
            sockworks::ConnectionState::Connected
        );
        assert_eq!(
            server.connection_state(s),
            sockworks::ConnectionState::Connected
        );
    }
}
