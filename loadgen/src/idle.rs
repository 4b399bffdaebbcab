//! `--mode idle`: many idle connections on one server process (issue 16, "Scale").
//!
//! ```text
//!  spawn `loadgen --serve` (its own process: /proc tells its RSS and CPU apart)
//!   ─► open N connections from few client sockets (one per client shard, connections told
//!      apart by connection id), at most --connect-window handshakes in flight per shard
//!   ─► hold them idle --seconds (keepalives and timers only)
//!   ─► one echoed reliable message on every connection (all at once, or at most
//!      --exchange-window unanswered per client shard)
//! ```
//! Reports server RSS per idle connection, server CPU per handshake and per idle second, and
//! connect-time percentiles. The clients run on the engine's runtime in this process.
//!
//! Limit: an endpoint (one shard) holds at most `proto::ids::MAX_LIVE_IDS` (32,767; GNS caps a
//! process at 8,191) live connections, less the API's stock of reserved ids, and the kernel
//! places a client socket's handshakes on a server shard by its 4-tuple hash: past ~30,000
//! connections, use several server shards and many client sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use hdrhistogram::Histogram;
use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::proto::endpoint::{ConnectionId, Endpoint};
use sockworks_engine::proto::snp::send_flags;
use sockworks_engine::shard::App;
use sockworks_engine::time::Timestamp;

use crate::sharded::wait_until;
use crate::versus::procs;

/// The shape of an idle run.
#[derive(Debug, Clone)]
pub(crate) struct IdleLoad {
    pub connections: u32,
    pub client_shards: usize,
    pub server_shards: usize,
    /// Handshakes in flight per client shard.
    pub connect_window: usize,
    /// Held idle this long.
    pub idle: Duration,
    /// Bytes of the one message each connection exchanges at the end.
    pub size: usize,
    /// Bound on connecting, and again on the exchange.
    pub max: Duration,
    /// Unanswered messages per client shard in the exchange (0: all at once).
    pub exchange_window: usize,
    pub seed: u64,
}

/// Totals the client shards add to.
#[derive(Debug)]
struct Progress {
    connected: AtomicU64,
    failed: AtomicU64,
    echoed: AtomicU64,
    exchange: AtomicBool,
    connect_us: Mutex<Histogram<u64>>,
    /// Why connections that were up ended (end reason and text), and send refusals.
    ended: Mutex<HashMap<String, u64>>,
}

impl Progress {
    /// Counts a failure and why.
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.ended.lock() {
            *m.entry(why).or_default() += 1;
        }
    }
}

/// One client shard: opens its share, then sends one message per connection when told.
struct IdleClient {
    server: SocketAddr,
    to_open: usize,
    window: usize,
    pending: HashMap<ConnectionId, Timestamp>,
    /// Up; in the exchange, sent and waiting for the echo.
    up: Vec<ConnectionId>,
    /// In the exchange: up, message not sent yet (`--exchange-window`).
    to_send: Vec<ConnectionId>,
    exchange_window: usize,
    sent: bool,
    size: usize,
    connect_us: Histogram<u64>,
    progress: Arc<Progress>,
}

impl App for IdleClient {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        while let Some(ev) = ep.poll_event() {
            if matches!(ev.change.new, ApiState::Connecting | ApiState::FindingRoute) {
                continue;
            }
            let Some(t0) = self.pending.remove(&ev.connection) else {
                if ev.change.new != ApiState::Connected {
                    // A connection that was up ended: it will miss its echo.
                    self.up.retain(|&c| c != ev.connection);
                    self.to_send.retain(|&c| c != ev.connection);
                    let c = &ev.change;
                    let when = if self.sent { "exchange" } else { "idle" };
                    self.progress.fail(format!(
                        "{when}: {:?} {} {}",
                        c.new, c.end_reason, c.end_debug
                    ));
                }
                continue;
            };
            if ev.change.new == ApiState::Connected {
                let _ = self
                    .connect_us
                    .record(now.as_micros().saturating_sub(t0.as_micros()).max(1));
                self.up.push(ev.connection);
                self.progress.connected.fetch_add(1, Ordering::Relaxed);
            } else {
                self.progress.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        while self.to_open > 0 && self.pending.len() < self.window {
            self.to_open -= 1;
            match ep.connect(now, self.server.into(), None) {
                Ok(id) => {
                    self.pending.insert(id, now);
                }
                Err(_) => {
                    self.progress.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !self.progress.exchange.load(Ordering::Relaxed) {
            return;
        }
        if !self.sent {
            self.sent = true;
            // Sent from the back: reverse, so the first connected go first.
            self.to_send = std::mem::take(&mut self.up);
            self.to_send.reverse();
        }
        let flags = send_flags::RELIABLE | send_flags::NO_NAGLE;
        while self.exchange_window == 0 || self.up.len() < self.exchange_window {
            let Some(id) = self.to_send.pop() else { break };
            match ep.send_message(now, id, 0, flags, vec![0x5a; self.size]) {
                Ok(_) => self.up.push(id),
                Err(e) => self.progress.fail(format!("send refused: {e}")),
            }
        }
        let progress = &self.progress;
        let size = self.size;
        self.up.retain(|&id| match ep.poll_message(id) {
            Some(m) => {
                if m.data.len() != size || m.data.iter().any(|&b| b != 0x5a) {
                    progress.failed.fetch_add(1, Ordering::Relaxed);
                }
                progress.echoed.fetch_add(1, Ordering::Relaxed);
                false
            }
            None => true,
        });
    }
}

impl Drop for IdleClient {
    fn drop(&mut self) {
        if let Ok(mut h) = self.progress.connect_us.lock() {
            let _ = h.add(&self.connect_us);
        }
    }
}

/// Resident set of `pid` now, KiB (`VmRSS`).
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

fn cpu(pid: u32) -> anyhow::Result<f64> {
    procs::cpu_secs(pid).context("no CPU time for the server")
}

/// Runs the idle load and prints its report.
pub(crate) fn run(load: &IdleLoad) -> anyhow::Result<()> {
    use sockworks_engine::driver::any::{AnyDriver, Backend};
    use sockworks_engine::shard::{Runtime, RuntimeConfig};

    let n = u64::from(load.connections);
    ensure!(
        n > 0 && load.connect_window > 0,
        "connections and window must be > 0"
    );
    // The server: `loadgen --serve` in its own process, sleeping on its activity when idle
    // (its default; `--poll-idle`'s yield-then-sleep loop would be most of its idle CPU).
    let exe = std::env::current_exe()?;
    let life = 2 * load.max + load.idle + Duration::from_secs(30);
    let args: Vec<String> = [
        "--serve",
        "127.0.0.1:0",
        "--server-shards",
        &load.server_shards.to_string(),
        "--max-seconds",
        &life.as_secs().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let (tx, rx) = procs::lines();
    let server = procs::Proc::spawn("server", &exe, &args, 0, tx)?;
    let (_, line) = procs::wait_line(&rx, Duration::from_secs(10), "LISTENING", |(_, l)| {
        l.starts_with("LISTENING ")
    })?;
    let addr = procs::listening_addr(&line).context("bad LISTENING line")?;
    let pid = server.pid();
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, cpu0) = (rss_kib(pid)?, cpu(pid)?);

    let progress = Arc::new(Progress {
        connected: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        echoed: AtomicU64::new(0),
        exchange: AtomicBool::new(false),
        connect_us: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        ended: Mutex::new(HashMap::new()),
    });
    let m = load.client_shards.max(1);
    let per = (load.connections as usize).div_ceil(m);
    let total = load.connections as usize;
    let mut endpoint = crate::sharded::endpoint_config(false, 1_000_000);
    endpoint.connection.snp.send_rate_min = 256 * 1024;
    let cfg = RuntimeConfig {
        shards: m,
        pin: false,
        busy_poll: false,
        coalesce: sockworks_engine::shard::COALESCE_DEFAULT,
        batch: 64,
        endpoint,
        seed: load.seed,
        secret: None,
    };
    let (p, size, window) = (progress.clone(), load.size, load.connect_window);
    let exchange_window = load.exchange_window;
    let clock = sockworks_engine::shard::Clock::new();
    let t0 = clock.now();
    let client = Runtime::start(
        cfg,
        |_| AnyDriver::bind(SocketAddr::from(([127, 0, 0, 1], 0)), Backend::Mmsg),
        move |i| IdleClient {
            server: addr,
            to_open: per.min(total.saturating_sub(i * per)),
            window,
            pending: HashMap::new(),
            up: Vec::new(),
            to_send: Vec::new(),
            exchange_window,
            sent: false,
            size,
            connect_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("invariant: valid bounds"),
            progress: p.clone(),
        },
    )?;
    let settled =
        |p: &Progress| p.connected.load(Ordering::Relaxed) + p.failed.load(Ordering::Relaxed) >= n;
    let up = wait_until(load.max, || settled(&progress));
    let connect_time = clock.now() - t0;
    let (rss1, cpu1) = (rss_kib(pid)?, cpu(pid)?);
    let connected = progress.connected.load(Ordering::Relaxed);
    println!(
        "sockworks loadgen: idle connections, server `loadgen --serve` (pid {pid}, {} shard(s)), {m} client socket(s), UDP 127.0.0.1",
        load.server_shards
    );
    println!(
        "  connect     {connected} of {n} up in {:.2} s ({:.0} /s), {} failed{}",
        connect_time.as_secs_f64(),
        connected as f64 / connect_time.as_secs_f64(),
        progress.failed.load(Ordering::Relaxed),
        if up { "" } else { ", TIMED OUT" }
    );
    let hs_cpu = cpu1 - cpu0;
    println!(
        "  handshake   server cpu {hs_cpu:.2} s: {:.1} us per handshake, {:.0} handshakes/s per server core",
        hs_cpu * 1e6 / connected.max(1) as f64,
        connected as f64 / hs_cpu.max(0.01)
    );
    println!(
        "  memory      server RSS {rss0} KiB -> {rss1} KiB: {:.0} B per connection",
        (rss1.saturating_sub(rss0) * 1024) as f64 / connected.max(1) as f64
    );
    std::thread::sleep(load.idle);
    let (rss2, cpu2) = (rss_kib(pid)?, cpu(pid)?);
    let idle_cpu = (cpu2 - cpu1) / load.idle.as_secs_f64();
    println!(
        "  idle        {:.0} s: server cpu {:.2}% of a core ({:.2} us/s per connection), RSS {rss2} KiB, {} failed so far",
        load.idle.as_secs_f64(),
        idle_cpu * 100.0,
        idle_cpu * 1e6 / connected.max(1) as f64,
        progress.failed.load(Ordering::Relaxed)
    );
    let failed_before = progress.failed.load(Ordering::Relaxed);
    let t1 = clock.now();
    progress.exchange.store(true, Ordering::Relaxed);
    for mb in (0..m).filter_map(|i| client.mailbox(i)) {
        mb.wake();
    }
    let exchanged = wait_until(load.max, || {
        progress.echoed.load(Ordering::Relaxed) + progress.failed.load(Ordering::Relaxed)
            >= connected + failed_before
    });
    let x_time = clock.now() - t1;
    client.stop()?;
    let echoed = progress.echoed.load(Ordering::Relaxed);
    let h = progress
        .connect_us
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    println!(
        "  connect us  p50 {}  p99 {}  max {}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
    println!(
        "  exchange    {echoed} of {connected} echoed in {:.2} s ({} B each)",
        x_time.as_secs_f64(),
        load.size
    );
    if let Ok(m) = progress.ended.lock() {
        let mut why: Vec<_> = m.iter().collect();
        why.sort_by(|a, b| b.1.cmp(a.1));
        for (w, k) in why.iter().take(8) {
            println!("  failed      {k} x {w}");
        }
    }
    drop(server);
    ensure!(up && connected == n, "not every connection came up");
    ensure!(exchanged && echoed == n, "not every connection echoed");
    ensure!(progress.failed.load(Ordering::Relaxed) == 0, "failures");
    Ok(())
}
