//! Figures (ignored by default; run with `cargo test --release -p sockworks-relay --test relay
//! -- --ignored --nocapture figures`): throughput of 1 KiB payloads through the relay beside a
//! raw UDP forwarder (batched with the same driver, and plain recv_from / send_to) in the same
//! run, and the latency a relay hop adds (p50 RTT through the relay minus direct).

use sockworks_engine::driver::mmsg::MmsgDriver;
use sockworks_engine::driver::{Driver, RxBatch, TxBatch};

use super::*;

const PAYLOAD: usize = 1024;
const WINDOW: Duration = Duration::from_secs(2);

/// Counts datagrams arriving at a socket on 127.0.0.2.
struct Sink {
    addr: SocketAddr,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn sink() -> Sink {
    let mut d = MmsgDriver::bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let s = Sink {
        addr: d.local_addr().unwrap(),
        count: Arc::default(),
        stop: Arc::default(),
    };
    let (count, stop) = (s.count.clone(), s.stop.clone());
    std::thread::spawn(move || {
        let mut rx = RxBatch::new(64);
        while !stop.load(Ordering::Relaxed) {
            rx.clear();
            match d.recv_batch(&mut rx) {
                Ok(0) | Err(_) => {
                    let _ = d.wait(Some(Duration::from_millis(5)));
                }
                Ok(n) => {
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    });
    s
}

/// A raw forwarder: strips the 16-byte Data header and sends the rest to `to`, batched with
/// the engine's driver (the best a relay without sessions could do) or one datagram at a time.
fn raw_forwarder(to: SocketAddr, batched: bool, stop: Arc<AtomicBool>) -> SocketAddr {
    if !batched {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = s.recv_from(&mut buf) {
                    let _ = up.send_to(&buf[wire::DATA_OVERHEAD.min(n)..n], to);
                }
            }
        });
        return addr;
    }
    let mut down = MmsgDriver::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut up = MmsgDriver::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let addr = down.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut rx = RxBatch::new(64);
        let mut tx = TxBatch::with_capacity(64);
        while !stop.load(Ordering::Relaxed) {
            rx.clear();
            match down.recv_batch(&mut rx) {
                Ok(0) | Err(_) => {
                    let _ = down.wait(Some(Duration::from_millis(5)));
                }
                Ok(_) => {
                    for i in 0..rx.len() {
                        if let Some((_, b)) = rx.get(i) {
                            tx.push(to.into(), b.get(wire::DATA_OVERHEAD..).unwrap_or_default());
                        }
                    }
                    while !tx.is_empty() {
                        match up.send_batch(&tx) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => tx.consume(n),
                        }
                    }
                    tx.clear();
                }
            }
        }
    });
    addr
}

/// Blasts Data frames at `target` for the warm-up plus `WINDOW`; returns packets per second
/// counted at the sink during the window.
fn blast(target: SocketAddr, session: u32, token: u64, sink: &Sink) -> f64 {
    let mut d = MmsgDriver::bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut frame = Vec::new();
    wire::encode_data(session, token, &[0x5a; PAYLOAD], &mut frame);
    let mut tx = TxBatch::with_capacity(64);
    let warm = clock::now() + Duration::from_millis(300);
    let mut started: Option<(std::time::Instant, u64)> = None;
    loop {
        let now = clock::now();
        if started.is_none() && now >= warm {
            started = Some((now, sink.count.load(Ordering::Relaxed)));
        }
        if let Some((t0, c0)) = started
            && now.duration_since(t0) >= WINDOW
        {
            let got = sink.count.load(Ordering::Relaxed) - c0;
            return got as f64 / now.duration_since(t0).as_secs_f64();
        }
        tx.clear();
        for _ in 0..64 {
            tx.push(target.into(), &frame);
        }
        match d.send_batch(&tx) {
            Ok(0) | Err(_) => {
                let _ = d.wait(Some(Duration::from_millis(1)));
            }
            Ok(_) => {}
        }
    }
}

/// p50 of `n` round trips of a 64-byte datagram: `wrap` frames the payload for `to`.
fn p50_rtt(to: SocketAddr, wrap: impl Fn(&[u8]) -> Vec<u8>, n: usize) -> Duration {
    let s = UdpSocket::bind("127.0.0.3:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut rtts = Vec::with_capacity(n);
    let mut buf = [0u8; 2048];
    for i in 0..n + 100 {
        let d = wrap(&[(i % 251) as u8; 64]);
        let t0 = clock::now();
        s.send_to(&d, to).unwrap();
        if s.recv_from(&mut buf).is_ok() && i >= 100 {
            rtts.push(t0.elapsed());
        }
    }
    rtts.sort();
    rtts[rtts.len() / 2]
}

#[test]
#[ignore = "figures: run in release with --ignored --nocapture"]
fn figures_throughput_and_added_latency() {
    let mut relay = start(&["--rate", "100000000", "--burst", "100000000"]);
    let sink = sink();
    let mut c = Client::new(relay.addr);
    let (session, token) = c.hello(&good_ticket(sink.addr, "str:bench")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let raw_batched = raw_forwarder(sink.addr, true, stop.clone());
    let raw_plain = raw_forwarder(sink.addr, false, stop.clone());
    let (mut best_relay, mut best_batched, mut best_plain) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..3 {
        best_relay = best_relay.max(blast(relay.addr, session, token, &sink));
        best_batched = best_batched.max(blast(raw_batched, 0, 0, &sink));
        best_plain = best_plain.max(blast(raw_plain, 0, 0, &sink));
    }
    stop.store(true, Ordering::Relaxed);
    let s = relay.stats_until(|_| true);
    println!(
        "throughput, 1 KiB payloads, best of 3 x {} s (one relay thread):",
        WINDOW.as_secs()
    );
    println!("  relay               {best_relay:>10.0} pkt/s");
    println!(
        "  raw batched forward {best_batched:>10.0} pkt/s  relay = {:.0} %",
        100.0 * best_relay / best_batched
    );
    println!(
        "  raw plain forward   {best_plain:>10.0} pkt/s  relay = {:.0} %",
        100.0 * best_relay / best_plain
    );
    println!("  relay stats: {s:?}");

    let echo = echo_server();
    let mut c = Client::new(relay.addr);
    let (session, token) = c.hello(&good_ticket(echo.addr, "str:ping")).unwrap();
    let direct = p50_rtt(echo.addr, <[u8]>::to_vec, 2000);
    let relayed = p50_rtt(
        relay.addr,
        |p| {
            let mut v = Vec::new();
            wire::encode_data(session, token, p, &mut v);
            v
        },
        2000,
    );
    let added = relayed.saturating_sub(direct);
    println!(
        "latency, 64 B echo, p50 of 2000: direct {direct:?}, through the relay {relayed:?}: \
         +{added:?} per round trip, +{:?} per relay traversal",
        added / 2
    );
}
