//! Hostile and excess input: garbage datagrams, the peer cap.

use std::net::UdpSocket;
use std::time::Duration;

use sockworks_rendezvous::wire::{Message, RefuseReason};
use sockworks_rendezvous::{ClientConfig, Incoming, RendezvousClient};

use super::{WAIT, client, exchange, start, wait_until};

/// A deterministic xorshift stream (no RNG dependency, reproducible failures).
fn noise(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state as u8
        })
        .collect()
}

#[test]
fn malformed_huge_and_random_datagrams_are_dropped_and_counted_and_service_continues() {
    let mut server = start(&[]);
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut datagrams: Vec<Vec<u8>> = vec![
        vec![],
        b"S".to_vec(),
        b"SR\x01".to_vec(),
        b"SR\x02\x01padpadpadpadpad".to_vec(),
        b"SR\x01\x01short".to_vec(),
        b"SR\x01\x07\x00\x00".to_vec(),
        vec![0u8; 65_000],
    ];
    let mut big_signal = Vec::new();
    Message::Signal {
        session: 1,
        to: "str:bob",
        payload: &[1; 4096],
    }
    .encode(&mut big_signal)
    .unwrap();
    // Claims 4096 bytes of payload, carries 60,000.
    big_signal.resize(60_000, 7);
    datagrams.push(big_signal);
    for len in [1usize, 3, 4, 5, 17, 100, 1200, 4200, 9000] {
        for _ in 0..20 {
            let mut d = noise(&mut state, len);
            if d.len() >= 4 {
                d[..3].copy_from_slice(b"SR\x01");
                d[3] = (d[3] % 12) + 1;
            }
            datagrams.push(d);
        }
    }
    // Some of the random ones may happen to decode (e.g. as a Hello); count those that do not.
    let malformed = datagrams
        .iter()
        .filter(|d| Message::decode(d).is_err())
        .count() as u64;
    // A few at a time, each group followed by a Hello from another socket whose Challenge
    // says the service has read the group: a burst would overflow the socket's buffer.
    let barrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    barrier.set_read_timeout(Some(WAIT)).unwrap();
    let mut hello = Vec::new();
    Message::Hello.encode(&mut hello).unwrap();
    for group in datagrams.chunks(4) {
        for d in group {
            raw.send_to(d, server.addr).unwrap();
        }
        barrier.send_to(&hello, server.addr).unwrap();
        let mut buf = [0u8; 64];
        barrier.recv(&mut buf).unwrap();
    }
    let groups = datagrams.len().div_ceil(4) as u64;
    let s = server.stats_until(|s| s["datagrams"] >= datagrams.len() as u64 + groups);
    assert_eq!(s["malformed"], malformed);
    let (alice, _) = client(server.addr, "str:alice");
    let (bob, bob_rx) = client(server.addr, "str:bob");
    wait_until("registered after the garbage", || {
        alice.registered() && bob.registered()
    });
    exchange(&alice, "str:bob", &bob_rx, b"still serving");
}

#[test]
fn the_peer_cap_refuses_new_identities_until_one_leaves() {
    let mut server = start(&["--max-peers", "2", "--interval-seconds", "1"]);
    let config = |id: &str| ClientConfig {
        reregister: Duration::from_secs(1),
        ..ClientConfig::new(server.addr, id)
    };
    let (a, _) = RendezvousClient::start(config("str:a")).unwrap();
    let (b, b_rx) = RendezvousClient::start(config("str:b")).unwrap();
    wait_until("two registered", || a.registered() && b.registered());
    let (c, c_rx) = RendezvousClient::start(config("str:c")).unwrap();
    let refused = loop {
        if let Incoming::Refused { reason } = c_rx.recv_timeout(WAIT).unwrap() {
            break reason;
        }
    };
    assert_eq!(refused, RefuseReason::Full);
    assert!(!c.registered());
    server.stats_until(|s| s["refused_full"] >= 1 && s["peers"] == 2);
    drop(a);
    // c retries every interval and now fits.
    wait_until("c registered after a left", || c.registered());
    exchange(&c, "str:b", &b_rx, b"made it");
}
