//! The conformance suite on io_uring, plus ring-exhaustion and dual-stack checks over real
//! loopback UDP (port 0). Each test skips, with a printed reason, where io_uring is unavailable.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::*;
use crate::driver::conformance;

fn lo() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn usable() -> bool {
    match io_uring_available() {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("skipping: io_uring unavailable ({reason})");
            false
        }
    }
}

fn bind(opts: UringOptions) -> UringDriver {
    UringDriver::bind(lo(), opts).expect("bind")
}

#[test]
fn probe_reports_io_uring_available_here() {
    match io_uring_available() {
        Ok(()) => {}
        Err(reason) => eprintln!("skipping: io_uring unavailable ({reason})"),
    }
}

#[test]
fn uring_batch_round_trip() {
    if usable() {
        conformance::batch_round_trip(bind(UringOptions::default()), bind(UringOptions::default()));
    }
}

#[test]
fn uring_same_size_burst_splits_into_datagrams() {
    if usable() {
        conformance::same_size_burst_splits_into_datagrams(
            bind(UringOptions::default()),
            bind(UringOptions::default()),
        );
    }
}

#[test]
fn uring_wait_times_out_and_wakes() {
    if usable() {
        conformance::wait_times_out_and_wakes(bind(UringOptions::default()));
        conformance::readable_hint_has_no_false_negatives(
            bind(UringOptions::default()),
            bind(UringOptions::default()),
        );
    }
}

fn datagram(seq: u32) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    d.extend((0..(seq % 60) as u8).map(|k| k ^ seq as u8));
    d
}

/// Receives `want` datagrams from `peer`, in order, with bounded waits.
fn expect_in_order(d: &mut UringDriver, peer: SocketAddr, first: u32, want: u32) {
    let mut rx = RxBatch::new(32);
    let mut next = first;
    for _ in 0..500 {
        rx.clear();
        let n = d.recv_batch(&mut rx).expect("recv_batch");
        for i in 0..n {
            let (from, data) = rx.get(i).expect("entry");
            assert_eq!(from, peer);
            assert_eq!(data, datagram(next).as_slice(), "datagram {next}");
            next += 1;
        }
        if next == first + want {
            return;
        }
        if n == 0 {
            d.wait(Some(Duration::from_millis(10))).expect("wait");
        }
    }
    panic!("got {} of {want} datagrams", next - first);
}

#[test]
fn thousand_datagrams_through_a_16_buffer_ring_rearm_after_enobufs() {
    if !usable() {
        return;
    }
    let mut d = bind(UringOptions {
        rx_buffers: 16,
        ..UringOptions::default()
    });
    let tx = UdpSocket::bind(lo()).expect("std bind");
    let peer = tx.local_addr().expect("addr");
    tx.connect(d.local_addr().expect("addr")).expect("connect");
    // Bursts of 50 > 16 buffers: the multishot receive runs dry, ends with ENOBUFS and must
    // be re-armed; the rest waits in the socket buffer (small datagrams, so none is dropped).
    for burst in 0..20u32 {
        for seq in burst * 50..(burst + 1) * 50 {
            tx.send(&datagram(seq)).expect("send");
        }
        expect_in_order(&mut d, peer, burst * 50, 50);
    }
    let stats = d.stats();
    assert!(stats.enobufs > 0, "ring ran dry: {stats:?}");
    assert!(
        stats.rearms >= stats.enobufs,
        "re-armed after each: {stats:?}"
    );
    assert_eq!(stats.dropped, 0);
}

#[test]
fn dual_stack_socket_sees_ipv4_peers_as_ipv4() {
    if !usable() {
        return;
    }
    let mapped = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 0));
    let mut d = UringDriver::bind(mapped, UringOptions::default()).expect("bind v6");
    let port = d.local_addr().expect("addr").port();
    let tx = UdpSocket::bind(lo()).expect("std bind");
    let peer = tx.local_addr().expect("addr");
    tx.send_to(&datagram(7), SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("send");
    expect_in_order(&mut d, peer, 7, 1);
    // And back: an IPv4 destination on the IPv6 socket.
    let mut out = TxBatch::with_capacity(1);
    out.push(peer.into(), b"pong");
    assert_eq!(d.send_batch(&out).expect("send_batch"), 1);
    tx.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0; 16];
    let (n, from) = tx.recv_from(&mut buf).expect("reply");
    assert_eq!(&buf[..n], b"pong");
    assert_eq!(from.port(), port);
}

#[test]
fn bind_rejects_bad_options() {
    let e = UringDriver::bind(
        lo(),
        UringOptions {
            rx_buffers: 12,
            ..UringOptions::default()
        },
    )
    .expect_err("not a power of two");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

/// Receives with `rx` until `want` datagrams arrived (bounded waits).
fn collect(d: &mut UringDriver, rx: &mut RxBatch, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for _ in 0..500 {
        rx.clear();
        let n = d.recv_batch(rx).expect("recv_batch");
        got.extend((0..n).map(|i| rx.get(i).expect("entry").1.to_vec()));
        if got.len() >= want {
            break;
        }
        if n == 0 {
            d.wait(Some(Duration::from_millis(10))).expect("wait");
        }
    }
    got
}

#[test]
fn gso_sends_arrive_as_gro_and_split_across_small_batches() {
    if !usable() {
        return;
    }
    let mut a = bind(UringOptions::default());
    let mut b = bind(UringOptions::default());
    let to = b.local_addr().expect("addr");
    let mut tx = TxBatch::with_capacity(40);
    for i in 0..40u8 {
        tx.push(to.into(), &[i; 1200]);
    }
    assert_eq!(
        a.send_batch(&tx).expect("send"),
        40,
        "40 datagrams take one slot"
    );
    // A 3-slot batch forces a GRO buffer to be handed out over many calls.
    let got = collect(&mut b, &mut RxBatch::new(3), 40);
    assert_eq!(got.len(), 40);
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d.as_slice(), &[i as u8; 1200][..], "datagram {i}");
    }
    if a.offloads().0 {
        assert_eq!(a.stats().gso_sends, 1, "{:?}", a.stats());
    }
    if b.offloads().1 && a.offloads().0 {
        // Loopback hands a GSO send to a GRO socket whole.
        assert!(b.stats().gro_coalesced >= 1, "{:?}", b.stats());
    }
    assert_eq!(a.stats().send_failures, 0);
}

#[test]
fn full_send_slots_report_fewer_sent_and_the_rest_follows_in_order() {
    if !usable() {
        return;
    }
    // 8 entries, 2 kept for re-arms: at most 6 sends per call.
    let mut a = bind(UringOptions {
        sq_entries: 8,
        gso: false,
        ..UringOptions::default()
    });
    let mut b = bind(UringOptions::default());
    let to = b.local_addr().expect("addr");
    let mut tx = TxBatch::with_capacity(20);
    for seq in 0..20 {
        tx.push(to.into(), &datagram(seq));
    }
    let first = a.send_batch(&tx).expect("send");
    assert!((1..=6).contains(&first), "sent {first} of 20");
    tx.consume(first);
    for _ in 0..100 {
        if tx.is_empty() {
            break;
        }
        let n = a.send_batch(&tx).expect("send");
        tx.consume(n);
    }
    assert!(tx.is_empty());
    let got = collect(&mut b, &mut RxBatch::new(32), 20);
    let want: Vec<Vec<u8>> = (0..20).map(datagram).collect();
    assert_eq!(got, want);
}

#[test]
fn driver_bound_on_one_thread_receives_on_another() {
    if !usable() {
        return;
    }
    // What a shard does: bind on the main thread, run on its own. Nothing is armed before the
    // first recv_batch, so the receive's completion work belongs to the running thread.
    let mut d = bind(UringOptions::default());
    let tx = UdpSocket::bind(lo()).expect("std bind");
    let peer = tx.local_addr().expect("addr");
    tx.send_to(&datagram(1), d.local_addr().expect("addr"))
        .expect("sent before the receive was armed");
    let t = std::thread::spawn(move || {
        expect_in_order(&mut d, peer, 1, 1);
        d
    });
    let d = t.join().expect("shard thread");
    assert_eq!(d.stats().dropped, 0);
}
