//! `--mode churn`: connections turning over continuously (issue 16, "Soak").
//!
//! ```text
//!  spawn `loadgen --serve` (its own process: /proc tells its RSS and CPU apart)
//!  client: `--connections` slots on the public `sockworks` API, one app thread
//!    slot: connect ─► exchange `--exchange` reliable messages (window `--window`), every echo
//!          checked byte for byte and in order ─► close ─► connect a fresh one ─► ...
//!    at most `--connect-window` handshakes in flight
//!  every second: round trips, p99 RTT, connects, open connections, server and client RSS,
//!    server CPU ─► `--series FILE.csv`, `--plot FILE.png`
//!  after `--seconds`: no new connections; the open ones finish their exchange (hard bound
//!    `--max-seconds`)
//! ```
//! Fails (non-zero exit) on any lost, duplicated, reordered or corrupted echo, on any
//! connection that fails or drops, and when the drain misses `--max-seconds`. Prints the RSS
//! slope and spread over the second half of the run and a verdict on "flat after warm-up".

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use hdrhistogram::Histogram;
use sockworks::{
    ConfigValue, Connection, ConnectionState, Message, OutMessage, Sockets, SocketsConfig,
    StatusChanged, send_flags,
};

use crate::idle::rss_kib;
use crate::series::{RssTrend, Sample};
use crate::versus::procs;

/// The shape of a churn run.
#[derive(Debug, Clone)]
pub(crate) struct ChurnLoad {
    /// Connection slots held open (each always connecting, exchanging or being replaced).
    pub connections: u32,
    /// Reliable messages each connection exchanges before it closes.
    pub exchange: u64,
    /// Messages in flight per connection.
    pub window: u64,
    /// Message size, bytes (at least the 24-byte header).
    pub size: usize,
    /// SendRateMin and SendRateMax of both ends, bytes/s per connection (GNS's default,
    /// 256 KiB/s, would make the pacing the RTT).
    pub rate: u32,
    /// Handshakes in flight at most.
    pub connect_window: usize,
    pub client_shards: usize,
    pub server_shards: usize,
    /// Churn this long, then drain.
    pub seconds: f64,
    /// Hard bound on the whole run, drain included.
    pub max: Duration,
    pub seed: u64,
    /// Where the per-second CSV goes.
    pub series: Option<PathBuf>,
    /// Where the PNG goes.
    pub plot: Option<PathBuf>,
}

/// Status changes, collected by the callback, handled by the app thread.
type Changes = Arc<Mutex<Vec<StatusChanged>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No connection (after the churn ends).
    Empty,
    Connecting,
    Open,
}

/// One connection slot and its current connection.
#[derive(Debug, Clone, Copy)]
struct Slot {
    conn: Connection,
    /// Connections this slot has had (tells a slot's successive connections apart).
    generation: u32,
    phase: Phase,
    sent: u64,
    received: u64,
    /// When the connect was asked, µs since the start.
    asked_us: u64,
}

/// The message header: slot, generation, sequence, send time (µs since the start).
const HEADER: usize = 24;

/// The payload of message `seq` of `slot`'s connection number `generation`.
fn payload(size: usize, slot: u32, generation: u32, seq: u64, t_us: u64) -> Vec<u8> {
    let mut v = vec![0u8; size.max(HEADER)];
    v[..4].copy_from_slice(&slot.to_le_bytes());
    v[4..8].copy_from_slice(&generation.to_le_bytes());
    v[8..16].copy_from_slice(&seq.to_le_bytes());
    v[16..24].copy_from_slice(&t_us.to_le_bytes());
    let mix = seq ^ (u64::from(generation) << 8) ^ (u64::from(slot) << 24);
    for (i, b) in v.iter_mut().enumerate().skip(HEADER) {
        *b = (i as u64 ^ mix ^ (mix >> 8)) as u8;
    }
    v
}

/// Counters of the whole run and of the current second.
#[derive(Debug, Default)]
struct Totals {
    sent: u64,
    echoed: u64,
    completed: u64,
    connects: u64,
    /// Connections that failed or dropped, and the reliable messages they took with them.
    failed: u64,
    lost: u64,
    second_msgs: u64,
    second_connects: u64,
    open: u64,
    first_failure: Option<String>,
}

/// What one run measured.
struct Run {
    totals: Totals,
    samples: Vec<Sample>,
    rtt: Histogram<u64>,
    connect_us: Histogram<u64>,
    churn_secs: f64,
    drained: bool,
}

/// The client side of the run: the instance, its slots and what they measured.
struct Churn<'a> {
    load: &'a ChurnLoad,
    client: Sockets,
    changes: Changes,
    group: sockworks::PollGroup,
    addr: std::net::SocketAddr,
    slots: Vec<Slot>,
    by_conn: HashMap<u32, usize>,
    /// Slots waiting for a connect (the connect window is full).
    to_open: Vec<usize>,
    connecting: usize,
    out: Vec<OutMessage>,
    totals: Totals,
    second_rtt: Histogram<u64>,
    rtt: Histogram<u64>,
    connect_us: Histogram<u64>,
    clock: std::time::Instant,
}

impl Churn<'_> {
    fn us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// Starts a fresh connection in `slot`.
    fn open(&mut self, slot: usize) -> anyhow::Result<()> {
        let conn = self.client.connect_by_ip_address(self.addr, &[]);
        ensure!(conn != Connection::INVALID, "connect refused locally");
        ensure!(
            self.client.set_connection_user_data(conn, slot as i64)
                && self.client.set_connection_poll_group(conn, self.group),
            "configuring a new connection"
        );
        let asked_us = self.us();
        let s = &mut self.slots[slot];
        *s = Slot {
            conn,
            generation: s.generation.wrapping_add(1),
            phase: Phase::Connecting,
            sent: 0,
            received: 0,
            asked_us,
        };
        self.by_conn.insert(conn.0, slot);
        self.connecting += 1;
        Ok(())
    }

    /// Queues the messages `slot`'s window has room for.
    fn fill(&mut self, slot: usize) {
        let t_us = self.us();
        let s = &mut self.slots[slot];
        while s.sent < self.load.exchange && s.sent - s.received < self.load.window {
            self.out.push(OutMessage {
                conn: s.conn,
                data: payload(self.load.size, slot as u32, s.generation, s.sent, t_us),
                flags: send_flags::RELIABLE | send_flags::NO_NAGLE,
                lane: 0,
            });
            s.sent += 1;
        }
    }

    /// Ends `slot`'s connection; a new one replaces it while the churn goes on.
    fn retire(&mut self, slot: usize, churning: bool) {
        let s = &mut self.slots[slot];
        self.by_conn.remove(&s.conn.0);
        self.client.close_connection(s.conn, 0, "churn", false);
        if s.phase == Phase::Open {
            self.totals.open -= 1;
        } else if s.phase == Phase::Connecting {
            self.connecting -= 1;
        }
        s.phase = Phase::Empty;
        if churning {
            self.to_open.push(slot);
        }
    }

    /// Status changes: connected slots start their exchange; failures are counted.
    fn on_changes(&mut self, churning: bool) {
        let events = self
            .changes
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for ev in events {
            let Some(&slot) = self.by_conn.get(&ev.conn.0) else {
                continue;
            };
            match ev.info.state {
                ConnectionState::Connected if self.slots[slot].phase == Phase::Connecting => {
                    let now = self.us();
                    let s = &mut self.slots[slot];
                    s.phase = Phase::Open;
                    let _ = self
                        .connect_us
                        .record(now.saturating_sub(s.asked_us).max(1));
                    self.connecting -= 1;
                    self.totals.open += 1;
                    self.totals.connects += 1;
                    self.totals.second_connects += 1;
                    self.fill(slot);
                }
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    let s = self.slots[slot];
                    self.totals.failed += 1;
                    self.totals.lost += s.sent - s.received;
                    self.totals.first_failure.get_or_insert_with(|| {
                        format!(
                            "slot {slot} ({:?}, {} of {} echoed): {:?} {}",
                            s.phase, s.received, s.sent, ev.info.state, ev.info.end_debug
                        )
                    });
                    self.retire(slot, churning);
                }
                _ => {}
            }
        }
    }

    /// Checks one echo; the slot closes and is replaced once its exchange is done.
    fn on_echo(&mut self, m: &Message, now_us: u64, churning: bool) -> anyhow::Result<()> {
        let slot = usize::try_from(m.user_data).context("echo without user data")?;
        ensure!(
            slot < self.slots.len() && self.slots[slot].conn == m.conn,
            "echo on an unknown or retired connection {:?}",
            m.conn
        );
        ensure!(m.data.len() >= HEADER, "short echo ({} B)", m.data.len());
        let s = self.slots[slot];
        let field = |r: std::ops::Range<usize>| -> anyhow::Result<u64> {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(&m.data[r]);
            Ok(u64::from_le_bytes(b))
        };
        let (gen_, seq, t) = (field(4..8)?, field(8..16)?, field(16..24)?);
        ensure!(
            field(0..4)? == slot as u64 && gen_ == u64::from(s.generation),
            "slot {slot}: echo of another connection's message"
        );
        ensure!(
            seq == s.received,
            "slot {slot}: echo {seq}, expected {} (lost, duplicated or reordered)",
            s.received
        );
        ensure!(
            t <= now_us && m.data == payload(self.load.size, slot as u32, s.generation, seq, t),
            "slot {slot}: corrupt echo {seq}"
        );
        let rtt = now_us.saturating_sub(t).max(1);
        self.rtt.record(rtt)?;
        self.second_rtt.record(rtt)?;
        self.slots[slot].received += 1;
        self.totals.echoed += 1;
        self.totals.second_msgs += 1;
        if self.slots[slot].received == self.load.exchange {
            self.totals.completed += 1;
            self.retire(slot, churning);
        } else {
            self.fill(slot);
        }
        Ok(())
    }

    /// Sends what [`Churn::fill`] queued.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        for r in self.client.send_messages(std::mem::take(&mut self.out)) {
            ensure!(r > 0, "send failed: {r}");
            self.totals.sent += 1;
        }
        Ok(())
    }

    /// The second that just ended.
    fn sample(&mut self, t: f64, server: u32, cpu: &mut f64) -> Sample {
        let server_cpu = procs::cpu_secs(server).unwrap_or(*cpu);
        let s = Sample {
            t,
            msgs: std::mem::take(&mut self.totals.second_msgs),
            p99_us: if self.second_rtt.is_empty() {
                0
            } else {
                self.second_rtt.value_at_quantile(0.99)
            },
            connects: std::mem::take(&mut self.totals.second_connects),
            open: self.totals.open,
            server_rss_kib: rss_kib(server).unwrap_or(0),
            process_rss_kib: rss_kib(std::process::id()).unwrap_or(0),
            server_cpu: server_cpu - *cpu,
        };
        *cpu = server_cpu;
        self.second_rtt.reset();
        s
    }

    /// The run: churn for `--seconds`, then drain, sampling every second.
    fn run(mut self, server: u32) -> anyhow::Result<Run> {
        let load = self.load;
        self.to_open = (0..self.slots.len()).rev().collect();
        let mut samples = Vec::new();
        let mut inbox: Vec<Message> = Vec::with_capacity(1024);
        let mut cpu = procs::cpu_secs(server).unwrap_or(0.0);
        let mut next_sample = 1.0;
        let mut idle = 0u32;
        let mut churn_secs = None;
        loop {
            let t = self.clock.elapsed().as_secs_f64();
            if t >= next_sample {
                samples.push(self.sample(t, server, &mut cpu));
                next_sample += 1.0;
            }
            let churning = t < load.seconds;
            if !churning && churn_secs.is_none() {
                churn_secs = Some(t);
                self.to_open.clear();
                // Handshakes not yet done will not be needed: close them.
                let pending: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.slots[i].phase == Phase::Connecting)
                    .collect();
                for i in pending {
                    self.retire(i, false);
                }
            }
            if !churning && self.totals.open == 0 && self.connecting == 0 {
                break;
            }
            if self.clock.elapsed() > load.max {
                break;
            }
            while churning && self.connecting < load.connect_window {
                let Some(slot) = self.to_open.pop() else {
                    break;
                };
                self.open(slot)?;
            }
            self.client.run_callbacks();
            self.on_changes(churning);
            inbox.clear();
            self.client
                .receive_messages_on_poll_group(self.group, &mut inbox, 1024);
            let now_us = self.us();
            for m in &inbox {
                self.on_echo(m, now_us, churning)?;
            }
            self.flush()?;
            if inbox.is_empty() {
                idle += 1;
                // The shards need these cores more than a spinning poll does.
                if idle > 64 {
                    std::thread::sleep(Duration::from_micros(50));
                } else {
                    std::thread::yield_now();
                }
            } else {
                idle = 0;
            }
        }
        let drained = self.totals.open == 0 && self.connecting == 0;
        let t = self.clock.elapsed().as_secs_f64();
        if t - samples.last().map_or(0.0, |s| s.t) > 0.5 {
            samples.push(self.sample(t, server, &mut cpu));
        }
        for i in 0..self.slots.len() {
            if self.slots[i].phase != Phase::Empty {
                self.totals.lost += self.slots[i].sent - self.slots[i].received;
                self.retire(i, false);
            }
        }
        Ok(Run {
            totals: self.totals,
            samples,
            rtt: self.rtt,
            connect_us: self.connect_us,
            churn_secs: churn_secs.unwrap_or(t),
            drained,
        })
    }
}

/// Runs the churn load, prints its report, writes the series and the plot.
pub(crate) fn run(load: &ChurnLoad) -> anyhow::Result<()> {
    ensure!(
        load.connections > 0 && load.exchange > 0 && load.window > 0 && load.connect_window > 0,
        "connections, exchange, window and connect window must be > 0"
    );
    ensure!(
        load.seconds < load.max.as_secs_f64(),
        "--seconds ({}) must be below --max-seconds ({}): the drain needs time",
        load.seconds,
        load.max.as_secs()
    );
    let exe = std::env::current_exe()?;
    let life = load.max + Duration::from_secs(30);
    let rate = i32::try_from(load.rate.min(0x1000_0000)).unwrap_or(i32::MAX);
    let args: Vec<String> = [
        "--serve",
        "127.0.0.1:0",
        "--wait-activity",
        "--server-shards",
        &load.server_shards.to_string(),
        "--max-seconds",
        &life.as_secs().to_string(),
        "--send-rate-min",
        &rate.to_string(),
        "--send-rate-max",
        &rate.to_string(),
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

    let changes = Changes::default();
    let client = Sockets::with_config(SocketsConfig {
        shards: load.client_shards.max(1),
        seed: Some(load.seed),
        ..SocketsConfig::default()
    })?;
    let sink = changes.clone();
    ensure!(
        client.set_global_config_value(&ConfigValue::SendRateMin(rate))
            && client.set_global_config_value(&ConfigValue::SendRateMax(rate))
            && client.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
                move |ev: &StatusChanged| {
                    if let Ok(mut v) = sink.lock() {
                        v.push(ev.clone());
                    }
                },
            ))),
        "configuring the client"
    );
    let group = client.create_poll_group();
    let hist = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3);
    let empty = Slot {
        conn: Connection::INVALID,
        generation: 0,
        phase: Phase::Empty,
        sent: 0,
        received: 0,
        asked_us: 0,
    };
    let churn = Churn {
        load,
        client: client.clone(),
        changes,
        group,
        addr,
        slots: vec![empty; load.connections as usize],
        by_conn: HashMap::new(),
        to_open: Vec::new(),
        connecting: 0,
        out: Vec::new(),
        totals: Totals::default(),
        second_rtt: hist()?,
        rtt: hist()?,
        connect_us: hist()?,
        clock: crate::now(),
    };
    let r = churn.run(pid)?;
    drop(server);
    report(load, pid, &r);
    if let Some(path) = &load.series {
        crate::series::write_csv(path, &r.samples)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  series      {}", path.display());
    }
    if let Some(path) = &load.plot {
        let title = format!(
            "SOCKWORKS CHURN: {} CONNECTIONS, {} MESSAGES EACH, {:.0} S",
            load.connections, load.exchange, r.churn_secs
        );
        crate::plot::write(path, &title, &r.samples)?;
        println!("  plot        {}", path.display());
    }
    let t = &r.totals;
    println!(
        "  check: {} sent, {} echoed intact and in order, {} lost, {} connections failed or dropped",
        t.sent, t.echoed, t.lost, t.failed
    );
    if let Some(f) = &t.first_failure {
        println!("  first failure: {f}");
    }
    ensure!(r.drained, "the drain did not finish within --max-seconds");
    ensure!(
        t.lost == 0 && t.failed == 0 && t.sent == t.echoed,
        "reliable messages lost or connections failed"
    );
    if t.completed == 0 {
        bail!("no connection completed its exchange");
    }
    Ok(())
}

/// Prints the summary of a run.
fn report(load: &ChurnLoad, pid: u32, r: &Run) {
    let t = &r.totals;
    let secs = r.churn_secs.max(1e-3);
    println!(
        "sockworks loadgen: churn, {} connection slots, server `loadgen --serve` (pid {pid}, {} shard(s)), client API {} shard(s), UDP 127.0.0.1",
        load.connections, load.server_shards, load.client_shards
    );
    println!(
        "  churn       {secs:.1} s: {} connects ({:.0} /s), {} connections completed {} x {} B reliable round trips (window {})",
        t.connects,
        t.connects as f64 / secs,
        t.completed,
        load.exchange,
        load.size.max(HEADER),
        load.window
    );
    println!(
        "  round trips {:.0} /s ({} echoed)",
        t.echoed as f64 / secs,
        t.echoed
    );
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    println!(
        "  rtt us      p50 {}  p99 {}  p99.9 {}  max {}",
        q(&r.rtt, 0.5),
        q(&r.rtt, 0.99),
        q(&r.rtt, 0.999),
        r.rtt.max()
    );
    println!(
        "  connect us  p50 {}  p99 {}  max {}",
        q(&r.connect_us, 0.5),
        q(&r.connect_us, 0.99),
        r.connect_us.max()
    );
    let cpu: f64 = r.samples.iter().map(|s| s.server_cpu).sum();
    let run_secs = r.samples.last().map_or(1.0, |s| s.t).max(1e-3);
    println!(
        "  server cpu  {cpu:.1} s ({:.0}% of a core), {:.0} us per connection lifetime",
        cpu * 100.0 / run_secs,
        cpu * 1e6 / t.connects.max(1) as f64
    );
    let rss = |name: &str, f: &dyn Fn(&Sample) -> u64| -> Option<RssTrend> {
        let first = r.samples.first().map_or(0, f);
        let max = r.samples.iter().map(f).max().unwrap_or(0);
        let last = r.samples.last().map_or(0, f);
        let trend = RssTrend::second_half(&r.samples, f);
        match trend {
            Some(tr) => println!(
                "  rss {name:<7} {first} -> {last} KiB (max {max}); second half: slope {:+.0} KiB/min, spread {} KiB",
                tr.slope_kib_per_min, tr.spread_kib
            ),
            None => {
                println!("  rss {name:<7} {first} -> {last} KiB (max {max}); too short for a trend")
            }
        }
        trend
    };
    let server = rss("server", &|s| s.server_rss_kib);
    let client = rss("client", &|s| s.process_rss_kib);
    match (server, client) {
        (Some(s), Some(c)) => println!(
            "  verdict: RSS {} after warm-up (second half, {:.1} min: server {:+.0} KiB, client {:+.0} KiB projected; flat allows +{:.0} / +{:.0} KiB: max(5% of mean, 2 MiB))",
            if s.flat() && c.flat() {
                "FLAT"
            } else {
                "GROWING"
            },
            s.minutes,
            s.growth_kib(),
            c.growth_kib(),
            s.allowance_kib(),
            c.allowance_kib()
        ),
        _ => println!("  verdict: RSS UNKNOWN (run too short for a trend)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_differ_by_slot_generation_and_sequence() {
        let a = payload(64, 1, 1, 0, 5);
        assert_eq!(a.len(), 64);
        assert_ne!(a, payload(64, 2, 1, 0, 5));
        assert_ne!(a, payload(64, 1, 2, 0, 5));
        assert_ne!(a, payload(64, 1, 1, 1, 5));
        assert_eq!(payload(8, 1, 1, 0, 5).len(), HEADER);
    }

    #[test]
    fn seconds_must_leave_time_to_drain() {
        // The server is `current_exe() --serve`: only the loadgen binary can run it, so the
        // end-to-end run lives in tests/churn.rs; here, the argument checks.
        let load = ChurnLoad {
            connections: 4,
            exchange: 4,
            window: 2,
            size: 64,
            rate: 1_000_000,
            connect_window: 4,
            client_shards: 1,
            server_shards: 1,
            seconds: 5.0,
            max: Duration::from_secs(5),
            seed: 1,
            series: None,
            plot: None,
        };
        assert!(run(&load).is_err(), "seconds must be below max");
    }
}
