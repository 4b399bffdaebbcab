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
    out.push(peer, b"pong");
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
