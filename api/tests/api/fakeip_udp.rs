//! `CreateFakeUDPPort` / `ISteamNetworkingFakeUDPPort`: datagrams between FakeIPs, a "server"
//! port on a global FakeIP and an ephemeral "client" port, cleanup, and misuse.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sockworks::{
    EResult, FakeIpType, FakeUdpMessage, FakeUdpPort, MAX_FAKE_UDP_MESSAGE_SIZE, Sockets,
    send_flags,
};

use super::common::wait_until;
use super::fakeip::{peer, request, service_at};
use super::p2p::private_net;

/// Sends `data` from `port` to `to` until `rx` (on `rx_sockets`) receives it, as UDP code
/// would retry; returns the received datagram.
fn deliver(
    sockets: &[&Sockets],
    port: &FakeUdpPort,
    to: SocketAddrV4,
    data: &[u8],
    rx: &FakeUdpPort,
) -> FakeUdpMessage {
    let mut got = Vec::new();
    let ok = wait_until(sockets, || {
        let r = port.send_message_to_fake_ip(SocketAddr::V4(to), data, send_flags::NO_NAGLE);
        assert_eq!(r, EResult::Ok);
        rx.receive_messages(&mut got, 16);
        got.iter().any(|m| m.message.data == data)
    });
    assert!(ok, "{data:?} never arrived at {to}");
    let i = got.iter().position(|m| m.message.data == data).unwrap();
    got.swap_remove(i)
}

#[test]
fn fake_udp_ports_exchange_datagrams_and_clean_up() {
    if !private_net() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (server, _service) = service_at(stop.clone(), "127.0.0.1:0".parse().unwrap(), None);
    let (alice, alice_seen, alice_results) = peer("alice", server);
    let (bob, bob_seen, bob_results) = peer("bob", server);
    let (carol, _, _) = peer("carol", server);
    let a_ip = request(&alice, &alice_results, 1);
    let b_ip = request(&bob, &bob_results, 2);
    let (a_addr, b_addr) = (a_ip.addr(0).unwrap(), b_ip.addr(1).unwrap());

    let bob_port = bob.create_fake_udp_port(1).unwrap();
    assert_eq!(
        bob.create_fake_udp_port(1).unwrap(),
        bob_port,
        "same index, same port"
    );
    assert!(
        bob.create_fake_udp_port(2).is_none(),
        "only 2 ports asked for"
    );
    assert!(bob.create_fake_udp_port(-2).is_none());
    let alice_port = alice.create_fake_udp_port(0).unwrap();

    // Alice's server port to Bob's port 1: Bob sees her global FakeIP, and answers it.
    let got = deliver(
        &[&alice, &bob],
        &alice_port,
        b_addr,
        b"hello bob",
        &bob_port,
    );
    assert_eq!(got.from, a_addr);
    assert_eq!(got.message.conn, sockworks::Connection::INVALID);
    let back = deliver(
        &[&alice, &bob],
        &bob_port,
        got.from,
        b"hello alice",
        &alice_port,
    );
    assert_eq!(back.from, b_addr);
    assert_eq!(
        bob.get_real_identity_for_fake_ip(SocketAddr::V4(a_addr)),
        Ok(super::fakeip::id("alice"))
    );

    // Carol's ephemeral port has no global FakeIP: Bob names her by a local one.
    let carol_port = carol.create_fake_udp_port(-1).unwrap();
    assert_ne!(
        carol.create_fake_udp_port(-1).unwrap(),
        carol_port,
        "a new one each call"
    );
    let got = deliver(
        &[&carol, &bob],
        &carol_port,
        b_addr,
        b"from carol",
        &bob_port,
    );
    let carol_local = got.from;
    assert_eq!(
        sockworks::ipv4_fake_ip_type(*carol_local.ip()),
        FakeIpType::LocalIpv4
    );
    let back = deliver(
        &[&carol, &bob],
        &bob_port,
        carol_local,
        b"to carol",
        &carol_port,
    );
    assert_eq!(back.from, b_addr);

    // The internal connections never reach the application's callbacks.
    bob.run_callbacks();
    alice.run_callbacks();
    assert!(
        bob_seen.lock().unwrap().is_empty(),
        "{:?}",
        bob_seen.lock().unwrap()
    );
    assert!(alice_seen.lock().unwrap().is_empty());

    // Misuse.
    let to = SocketAddr::V4(b_addr);
    assert_eq!(
        alice_port.send_message_to_fake_ip(to, b"x", send_flags::RELIABLE),
        EResult::InvalidParam
    );
    let big = vec![0u8; MAX_FAKE_UDP_MESSAGE_SIZE + 1];
    assert_eq!(
        alice_port.send_message_to_fake_ip(to, &big, 0),
        EResult::InvalidParam
    );
    let real: SocketAddr = "10.0.0.1:2000".parse().unwrap();
    assert_eq!(
        alice_port.send_message_to_fake_ip(real, b"x", 0),
        EResult::InvalidParam
    );
    let stranger: SocketAddr = "169.254.220.1:3000".parse().unwrap();
    assert_eq!(
        bob_port.send_message_to_fake_ip(stranger, b"x", 0),
        EResult::IpNotFound
    );

    // Cleanup: Bob lets Carol go; once it ran, her local FakeIP leads nowhere. Only
    // receiving (the port's housekeeping) in between: a send would cancel it.
    // First let the copies `deliver`'s retries left in flight arrive (a datagram from Carol
    // would cancel the cleanup).
    let mut scratch = Vec::new();
    let mut quiet_since = bob.now();
    while bob.now() - quiet_since < Duration::from_millis(300) {
        bob.wait_for_activity(bob.activity(), Duration::from_millis(50));
        if bob_port.receive_messages(&mut scratch, 16) > 0 {
            quiet_since = bob.now();
        }
    }
    scratch.clear();
    bob_port.schedule_cleanup(SocketAddr::V4(carol_local));
    let due = bob.now() + sockworks::FAKE_UDP_CLEANUP_DELAY;
    while bob.now() <= due {
        bob.wait_for_activity(bob.activity(), Duration::from_millis(100));
        bob_port.receive_messages(&mut scratch, 16);
    }
    assert!(
        scratch.iter().all(|m| m.from != carol_local),
        "Carol was quiet"
    );
    assert_eq!(
        bob_port.send_message_to_fake_ip(SocketAddr::V4(carol_local), b"?", 0),
        EResult::IpNotFound
    );
    // Alice's connection was not touched.
    assert_eq!(
        bob_port.send_message_to_fake_ip(SocketAddr::V4(a_addr), b"still", 0),
        EResult::Ok
    );

    // Destroyed: every clone is dead.
    let clone = alice_port.clone();
    alice_port.destroy_fake_udp_port();
    assert_eq!(
        clone.send_message_to_fake_ip(to, b"x", 0),
        EResult::InvalidState
    );
    assert_eq!(clone.receive_messages(&mut scratch, 16), 0);
    // The index is free again.
    assert!(alice.create_fake_udp_port(0).is_some());
    stop.store(true, Ordering::Release);
}
