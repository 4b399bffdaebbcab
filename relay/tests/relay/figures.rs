//! Figures (ignored by default; run with `cargo test --release -p sockworks-relay --test relay
//! -- --ignored --nocapture figures`): throughput of 1 KiB payloads through the relay beside a
//! raw UDP forwarder (batched with the same driver, and plain recv_from / send_to) in the same
//! run, and the latency a relay hop adds (p50 RTT through the relay minus direct).

#![allow(unsafe_code, reason = "gettid(2) for the forwarders' CPU time")]

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
/// Returns its address and the forwarding thread's id (for its CPU time).
fn raw_forwarder(to: SocketAddr, batched: bool, stop: Arc<AtomicBool>) -> (SocketAddr, i32) {
    let (tid_tx, tid_rx) = mpsc::channel();
    if !batched {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            let _ = tid_tx.send(unsafe { libc::gettid() });
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = s.recv_from(&mut buf) {
                    let _ = up.send_to(&buf[wire::DATA_OVERHEAD.min(n)..n], to);
                }
            }
        });
        return (addr, tid_rx.recv().unwrap());
    }
    let mut down = MmsgDriver::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut up = MmsgDriver::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let addr = down.local_addr().unwrap();
    std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let _ = tid_tx.send(unsafe { libc::gettid() });
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
    (addr, tid_rx.recv().unwrap())
}

/// Nanoseconds a thread has run on a CPU (first field of a `schedstat` file); for a
/// process's `task` directory, the sum over its threads (the relay's work runs on its shard
/// threads, not its main thread).
fn cpu_ns(schedstat: &str) -> u64 {
    let one = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match std::fs::read_dir(schedstat) {
        Ok(tasks) => tasks
            .flatten()
            .map(|t| one(&t.path().join("schedstat")))
            .sum(),
        Err(_) => one(std::path::Path::new(schedstat)),
    }
}

/// Blasts Data frames at `target` for the warm-up plus `WINDOW`; returns packets per second
/// counted at the sink during the window and the forwarder's CPU nanoseconds per packet
/// (`schedstat`: its thread's schedstat file).
fn blast(target: SocketAddr, session: u32, token: u64, sink: &Sink, schedstat: &str) -> (f64, f64) {
    let mut d = MmsgDriver::bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut frame = Vec::new();
    wire::encode_data(session, token, &[0x5a; PAYLOAD], &mut frame);
    let mut tx = TxBatch::with_capacity(64);
    let warm = clock::now() + Duration::from_millis(300);
    let mut started: Option<(std::time::Instant, u64, u64)> = None;
    loop {
        let now = clock::now();
        if started.is_none() && now >= warm {
            started = Some((now, sink.count.load(Ordering::Relaxed), cpu_ns(schedstat)));
        }
        if let Some((t0, c0, cpu0)) = started
            && now.duration_since(t0) >= WINDOW
        {
            let got = sink.count.load(Ordering::Relaxed) - c0;
            let cpu = cpu_ns(schedstat).saturating_sub(cpu0);
            return (
                got as f64 / now.duration_since(t0).as_secs_f64(),
                cpu as f64 / got.max(1) as f64,
            );
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
    let (raw_batched, batched_tid) = raw_forwarder(sink.addr, true, stop.clone());
    let (raw_plain, plain_tid) = raw_forwarder(sink.addr, false, stop.clone());
    let relay_stat = format!("/proc/{}/task", relay.child.id());
    let batched_stat = format!("/proc/self/task/{batched_tid}/schedstat");
    let plain_stat = format!("/proc/self/task/{plain_tid}/schedstat");
    let mut runs: [Vec<(f64, f64)>; 3] = Default::default();
    for _ in 0..5 {
        runs[0].push(blast(relay.addr, session, token, &sink, &relay_stat));
        runs[1].push(blast(raw_batched, 0, 0, &sink, &batched_stat));
        runs[2].push(blast(raw_plain, 0, 0, &sink, &plain_stat));
    }
    stop.store(true, Ordering::Relaxed);
    let median = |v: &mut Vec<(f64, f64)>| {
        let mut pps: Vec<f64> = v.iter().map(|r| r.0).collect();
        let mut cpu: Vec<f64> = v.iter().map(|r| r.1).collect();
        pps.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        (pps[pps.len() / 2], pps[pps.len() - 1], cpu[cpu.len() / 2])
    };
    let [r, b, p] = runs.each_mut().map(median);
    println!(
        "throughput, 1 KiB payloads, 5 alternating runs of {} s each (one relay thread; \
         median / best pkt/s, median CPU ns per delivered packet):",
        WINDOW.as_secs()
    );
    for (name, m) in [
        ("relay", r),
        ("raw batched forwarder", b),
        ("raw plain forwarder", p),
    ] {
        println!(
            "  {name:<22} {:>9.0} / {:>9.0} pkt/s  {:>6.0} ns/pkt  relay = {:>4.0} % of its pkt/s, \
             {:>4.0} % of its CPU/pkt",
            m.0,
            m.1,
            m.2,
            100.0 * r.0 / m.0,
            100.0 * r.2 / m.2
        );
    }
    while relay.log.try_recv().is_ok() {}
    let s = relay.stats_until(|_| true);
    println!(
        "  relay counters: to_server={} send_drops={} rate_limited={}",
        s["to_server"], s["send_drops"], s["rate_limited"]
    );

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
