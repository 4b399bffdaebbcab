//! The service's FakeIP requests and FakeIP-addressed signals, sans I/O.

use super::tests::{Harness, UNIX, addr, secs};
use super::*;
use crate::fakeip::FakeIpTable;
use crate::wire::{FakeIpPorts, FakeIpRefuseReason};

fn request(
    h: &mut Harness,
    now: Duration,
    from: SocketAddr,
    session: u64,
    n: u8,
) -> Message<'static> {
    let (to, bytes) = h
        .send(
            now,
            from,
            Message::FakeIpRequest {
                session,
                num_ports: n,
            },
        )
        .expect("an answer");
    assert_eq!(to, from);
    match Message::decode(&bytes).unwrap() {
        Message::FakeIpGranted { ip, ports } => Message::FakeIpGranted { ip, ports },
        Message::FakeIpRefused { reason } => Message::FakeIpRefused { reason },
        Message::UnknownSender => Message::UnknownSender,
        other => panic!("{other:?}"),
    }
}

fn granted(m: Message<'_>) -> (std::net::Ipv4Addr, Vec<u16>) {
    match m {
        Message::FakeIpGranted { ip, ports } => (ip, ports.as_slice().to_vec()),
        other => panic!("not granted: {other:?}"),
    }
}

#[test]
fn a_registered_peer_gets_its_fake_ip_and_the_same_one_again() {
    let mut h = Harness::new(ServiceConfig::new([9; 32]));
    let a = h.register(secs(1), addr(1), "str:alice");
    let b = h.register(secs(1), addr(2), "str:bob");
    let (ip_a, ports_a) = granted(request(&mut h, secs(1), addr(1), a, 2));
    let (ip_b, _) = granted(request(&mut h, secs(1), addr(2), b, 1));
    assert_ne!(ip_a, ip_b);
    assert_eq!(ports_a.len(), 2);
    assert_eq!(
        granted(request(&mut h, secs(2), addr(1), a, 2)),
        (ip_a, ports_a.clone())
    );
    // Re-registered from elsewhere (a new session): still the same allocation.
    let a2 = h.register(secs(3), addr(5), "str:alice");
    assert_eq!(
        granted(request(&mut h, secs(3), addr(5), a2, 1)).1,
        ports_a[..1]
    );
    assert_eq!(h.svc.stats().fakeip_granted, 4);
    assert_eq!(h.svc.fake_ips().len(), 2);
}

#[test]
fn bad_requests_and_a_full_table_are_refused_and_strangers_get_unknown_sender() {
    let mut config = ServiceConfig::new([9; 32]);
    config.max_fakeips = 1;
    let mut h = Harness::new(config);
    let a = h.register(secs(1), addr(1), "str:alice");
    let b = h.register(secs(1), addr(2), "str:bob");
    for n in [0, 5] {
        assert_eq!(
            request(&mut h, secs(1), addr(1), a, n),
            Message::FakeIpRefused {
                reason: FakeIpRefuseReason::BadRequest
            }
        );
    }
    granted(request(&mut h, secs(1), addr(1), a, 1));
    assert_eq!(
        request(&mut h, secs(1), addr(2), b, 1),
        Message::FakeIpRefused {
            reason: FakeIpRefuseReason::Full
        }
    );
    assert_eq!(
        request(&mut h, secs(1), addr(3), a, 1),
        Message::UnknownSender
    );
    assert_eq!(
        request(&mut h, secs(1), addr(1), a ^ 1, 1),
        Message::UnknownSender
    );
    assert_eq!(h.svc.stats().fakeip_refused, 3);
}

#[test]
fn signals_to_a_fake_ip_reach_its_owner_and_unknown_ones_get_unknown_peer() {
    let mut h = Harness::new(ServiceConfig::new([9; 32]));
    let a = h.register(secs(1), addr(1), "str:alice");
    let b = h.register(secs(1), addr(2), "str:bob");
    let (ip, ports) = granted(request(&mut h, secs(1), addr(2), b, 3));
    for port in &ports {
        let to = format!("ip:{ip}:{port}");
        let (dest, bytes) = h.signal(secs(1), addr(1), a, &to).unwrap();
        assert_eq!(dest, addr(2), "{to}");
        assert_eq!(
            Message::decode(&bytes).unwrap(),
            Message::Deliver {
                from: "str:alice",
                payload: b"offer"
            }
        );
    }
    let unused = (1025..).find(|p| !ports.contains(p)).unwrap();
    for to in [
        format!("ip:{ip}:{unused}"),
        "ip:169.254.250.1:2000".to_owned(),
        "ip:169.254.1.1:2000".to_owned(),
    ] {
        let (dest, bytes) = h.signal(secs(1), addr(1), a, &to).unwrap();
        assert_eq!(dest, addr(1));
        assert_eq!(
            Message::decode(&bytes).unwrap(),
            Message::UnknownPeer { to: &to }
        );
    }
    assert_eq!(h.svc.stats().fakeip_relayed, 3);
    // The owner gone: its FakeIP stays allocated, signals to it find nobody.
    h.send(secs(1), addr(2), Message::Unregister { session: b });
    let to = format!("ip:{ip}:{}", ports[0]);
    let (dest, _) = h.signal(secs(1), addr(1), a, &to).unwrap();
    assert_eq!(dest, addr(1));
}

#[test]
fn nobody_registers_as_a_fake_ip() {
    let mut h = Harness::new(ServiceConfig::new([9; 32]));
    for id in ["ip:169.254.7.9:2000", "ip:169.254.200.1:2000"] {
        assert_eq!(
            h.register_with(secs(1), addr(1), id, None),
            Message::RegisterRefused {
                reason: RefuseReason::BadIdentity
            }
        );
    }
}

#[test]
fn with_persistence_a_new_allocation_is_granted_only_after_its_save() {
    let mut config = ServiceConfig::new([9; 32]);
    config.persist_fakeips = true;
    let mut h = Harness::new(config);
    let a = h.register(secs(1), addr(1), "str:alice");
    let b = h.register(secs(1), addr(2), "str:bob");
    for (from, session) in [(addr(1), a), (addr(2), b)] {
        let mut dgram = Vec::new();
        Message::FakeIpRequest {
            session,
            num_ports: 2,
        }
        .encode(&mut dgram)
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(
            h.svc.handle_datagram(secs(1), UNIX, from, &dgram, &mut out),
            None
        );
    }
    let mut out = Vec::new();
    assert_eq!(
        h.svc.poll_grant(secs(1), &mut out),
        None,
        "nothing saved yet"
    );
    let (generation, text) = h.svc.fake_ip_snapshot().expect("something to save");
    // What would be written loads back to the same allocations.
    let saved = FakeIpTable::from_text(&text, 10, [0; 32]).unwrap();
    assert_eq!(saved.len(), 2);
    // Bob leaves before the save completes: only Alice gets her grant.
    h.send(secs(1), addr(2), Message::Unregister { session: b });
    h.svc.fake_ips_saved(generation);
    assert!(h.svc.fake_ip_snapshot().is_none());
    assert_eq!(h.svc.poll_grant(secs(1), &mut out), Some(addr(1)));
    let (ip, ports) = granted(Message::decode(&out).unwrap());
    assert_eq!(
        saved.get("str:alice").map(|s| (s.ip, s.ports.clone())),
        Some((ip, ports.clone()))
    );
    assert_eq!(h.svc.poll_grant(secs(1), &mut out), None);
    // Asked again once saved: answered at once.
    assert_eq!(
        granted(request(&mut h, secs(2), addr(1), a, 2)),
        (ip, ports)
    );
}

#[test]
fn a_loaded_table_answers_as_before_the_restart() {
    let mut first = Harness::new(ServiceConfig::new([1; 32]));
    let a = first.register(secs(1), addr(1), "str:alice");
    let before = granted(request(&mut first, secs(1), addr(1), a, 4));
    let text = first.svc.fake_ips().to_text();
    let mut config = ServiceConfig::new([2; 32]);
    config.persist_fakeips = true;
    let mut second = Harness::new(config);
    second
        .svc
        .set_fake_ips(FakeIpTable::from_text(&text, 10, [2; 32]).unwrap());
    let a = second.register(secs(1), addr(7), "str:alice");
    assert_eq!(
        granted(request(&mut second, secs(1), addr(7), a, 4)),
        before
    );
    let b = second.register(secs(1), addr(8), "str:bob");
    assert_ne!(granted_or_pending(&mut second, addr(8), b), Some(before.0));
}

/// Bob's grant with persistence on: pending until saved, then his address.
fn granted_or_pending(
    h: &mut Harness,
    from: SocketAddr,
    session: u64,
) -> Option<std::net::Ipv4Addr> {
    let mut dgram = Vec::new();
    Message::FakeIpRequest {
        session,
        num_ports: 1,
    }
    .encode(&mut dgram)
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        h.svc.handle_datagram(secs(1), UNIX, from, &dgram, &mut out),
        None
    );
    let (g, _) = h.svc.fake_ip_snapshot()?;
    h.svc.fake_ips_saved(g);
    h.svc.poll_grant(secs(1), &mut out)?;
    match Message::decode(&out).ok()? {
        Message::FakeIpGranted { ip, .. } => Some(ip),
        _ => None,
    }
}

#[test]
fn ports_struct_is_bounded() {
    assert_eq!(
        FakeIpPorts::new(&[1, 2, 3, 4, 5, 6]).as_slice(),
        &[1, 2, 3, 4]
    );
}
