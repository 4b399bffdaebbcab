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

mod client;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use hdrhistogram::Histogram;

use crate::series::{RssTrend, Sample};
use crate::versus::procs;
use client::{Churn, HEADER, Run};

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

/// Runs the churn load, prints its report, writes the series and the plot (also when the
/// run stops early), then fails on any loss, failed connection or unfinished drain.
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

    let churn = Churn::new(load, addr)?;
    let mut r = churn.run(pid)?;
    let error = r.error.take();
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
    if t.refused > 0 {
        println!(
            "  refused: {} connects refused locally by the API (first at {:.1} s), retried",
            t.refused,
            t.first_refusal.unwrap_or(0.0)
        );
    }
    if let Some(e) = error {
        return Err(e.context("the run stopped early"));
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
    use super::client::payload;
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
