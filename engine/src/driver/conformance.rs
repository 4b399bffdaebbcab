//! One conformance suite for every [`Driver`] backend: each backend's tests call these with a
//! factory that binds two drivers able to reach each other.

use std::time::Duration;

use super::{Driver, RxBatch, TxBatch};

/// Receives until `want` datagrams arrived or ~2 s of waits passed.
fn recv_all<D: Driver>(d: &mut D, want: usize) -> Vec<(std::net::SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rx = RxBatch::new(64);
    for _ in 0..200 {
        rx.clear();
        let n = d.recv_batch(&mut rx).expect("recv_batch");
        for i in 0..n {
            let (from, data) = rx.get(i).expect("entry");
            out.push((from, data.to_vec()));
        }
        if out.len() >= want {
            break;
        }
        d.wait(Some(Duration::from_millis(10))).expect("wait");
    }
    out
}

fn send_all<D: Driver>(d: &mut D, tx: &mut TxBatch) {
    for _ in 0..200 {
        if tx.is_empty() {
            return;
        }
        let n = d.send_batch(tx).expect("send_batch");
        tx.consume(n);
        if !tx.is_empty() {
            d.wait(Some(Duration::from_millis(1))).expect("wait");
        }
    }
    assert!(tx.is_empty(), "could not send the whole batch");
}

/// A batch of datagrams of many sizes arrives intact, in order, with the sender's address.
pub fn batch_round_trip<D: Driver>(mut a: D, mut b: D) {
    let to = b.local_addr().expect("addr");
    let from = a.local_addr().expect("addr");
    let mut tx = TxBatch::with_capacity(100);
    let sizes: Vec<usize> = (0..100).map(|i| 1 + (i * 37) % 1400).collect();
    for (i, &n) in sizes.iter().enumerate() {
        let d: Vec<u8> = (0..n).map(|k| (k + i) as u8).collect();
        tx.push(to.into(), &d);
    }
    send_all(&mut a, &mut tx);
    let got = recv_all(&mut b, sizes.len());
    assert_eq!(got.len(), sizes.len(), "every datagram arrived");
    for (i, (src, data)) in got.iter().enumerate() {
        assert_eq!(*src, from);
        assert_eq!(data.len(), sizes[i]);
        assert!(
            data.iter().enumerate().all(|(k, &x)| x == (k + i) as u8),
            "datagram {i} intact"
        );
    }
}

/// Equal-size bursts to one peer (what GSO batches) arrive as separate datagrams.
pub fn same_size_burst_splits_into_datagrams<D: Driver>(mut a: D, mut b: D) {
    let to = b.local_addr().expect("addr");
    let mut tx = TxBatch::with_capacity(40);
    for i in 0..40u8 {
        tx.push(to.into(), &[i; 1200]);
    }
    tx.push(to.into(), &[99; 300]);
    send_all(&mut a, &mut tx);
    let got = recv_all(&mut b, 41);
    assert_eq!(got.len(), 41);
    for (i, (_, d)) in got.iter().take(40).enumerate() {
        assert_eq!(d.as_slice(), &[i as u8; 1200][..]);
    }
    assert_eq!(got[40].1, vec![99; 300]);
}

/// `wait` returns after its timeout with nothing to read, and promptly when woken from
/// another thread.
pub fn wait_times_out_and_wakes<D: Driver>(mut a: D) {
    let mut rx = RxBatch::new(8);
    assert_eq!(a.recv_batch(&mut rx).expect("recv"), 0, "nothing waiting");
    a.wait(Some(Duration::from_millis(5)))
        .expect("timeout wait");
    let waker = a.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    // Bounded: if the wake were lost this returns after 10 s and the join below still passes,
    // so the assertion is on the elapsed time measured by the caller's clock-free proxy: the
    // wait must not need the full timeout, checked by a second zero-timeout poll succeeding.
    a.wait(Some(Duration::from_secs(10))).expect("woken wait");
    t.join().expect("waker thread");
    a.wait(Some(Duration::ZERO)).expect("poll");
}

/// [`Driver::maybe_readable`] after a wait may say true without cause, never false while a
/// datagram waits (the shard would skip the receive call that fetches it). Returns what it said
/// after a wait that only a wake ended, for backends that can tell to assert false.
pub fn readable_hint_has_no_false_negatives<D: Driver>(mut a: D, mut b: D) -> bool {
    let mut rx = RxBatch::new(8);
    assert_eq!(a.recv_batch(&mut rx).expect("recv"), 0, "nothing waiting");
    a.waker().wake();
    a.wait(Some(Duration::from_secs(10))).expect("woken wait");
    let after_wake = a.maybe_readable();
    let mut tx = TxBatch::with_capacity(1);
    tx.push(a.local_addr().expect("addr").into(), b"ready");
    send_all(&mut b, &mut tx);
    // The datagram may take a moment on some backends: wait until a receive gets it, and
    // check the hint after every wait that preceded a successful receive.
    for _ in 0..200 {
        a.wait(Some(Duration::from_millis(10))).expect("wait");
        let hint = a.maybe_readable();
        rx.clear();
        if a.recv_batch(&mut rx).expect("recv") > 0 {
            assert!(
                hint,
                "a wait before a waiting datagram said: nothing to read"
            );
            return after_wake;
        }
    }
    panic!("the datagram never arrived");
}
