//! Servers judged under real load: a GNS echo server (`gns-load serve`) and the Sockworks one
//! (`loadgen --serve`), each in its own process, under the same load of real GNS clients
//! (`gns-load client` processes) or Sockworks clients (in this process).
//!
//! ```text
//!   CPU 1: load clients ──probes──► CPU 0: server process (GNS or Sockworks)
//!          (K gns-load client         │ utime+stime over the measured interval,
//!           processes, or loadgen)    │ VmHWM at the end, from /proc/PID
//! ```
//! Where two or more cores are allowed, the server process is pinned to the first and the
//! clients (and this process) to the second: each process calls sched_setaffinity on its
//! main thread (`--cpu`) before starting any other thread, so all of its threads inherit it.

pub(crate) mod procs;
mod report;
mod swclient;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::ValueEnum;
use loadgen::load::client::{self, ClientConfig, Phase};
use loadgen::load::result::LoadResult;

use crate::now;
use procs::{
    Proc, cpu_secs, gns_load_exe, listening_addr, peak_rss_kib, udp_rcvbuf_errors, wait_line,
};
pub(crate) use report::{MATRIX_HEADER, print_compare};

/// A network stack on one side of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Stack {
    /// Valve's GameNetworkingSockets (the crates.io build, through `gns-load`).
    Gns,
    /// Sockworks.
    Sockworks,
}

impl Stack {
    /// The name in reports.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Stack::Gns => "GNS",
            Stack::Sockworks => "Sockworks",
        }
    }
}

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Versus {
    /// Who makes the load.
    pub clients: Stack,
    /// Servers to measure, one after the other.
    pub servers: Vec<Stack>,
    /// A server already running (no server process of ours, so no CPU or RSS figures).
    pub target: Option<SocketAddr>,
    /// Connections in all.
    pub connections: usize,
    /// GNS client processes the connections are spread over.
    pub client_procs: usize,
    /// Messages in flight per connection.
    pub window: u32,
    /// Bytes per message.
    pub size: usize,
    /// Reliable (else unreliable).
    pub reliable: bool,
    /// Measured seconds.
    pub seconds: f64,
    /// SendRateMin of the Sockworks server and clients; `None` keeps the default.
    pub send_rate_min: Option<i32>,
    /// SendRateMin of the GNS processes (clients, server); `None` keeps GNS's default.
    pub gns_send_rate_min: Option<i32>,
    /// SendRateMax for servers and clients; `None` keeps the default.
    pub send_rate_max: Option<i32>,
    /// `UnreliableMaxAge` of the Sockworks server, ms; `None`: off.
    pub unreliable_max_age_ms: Option<i32>,
    /// The Sockworks server polls when idle, as GNS's loop must, instead of waiting on its
    /// activity (see `--poll-idle`).
    pub poll_idle: bool,
    /// The Sockworks server's pause between shard turns under load, µs; `None`: its default.
    pub coalesce_us: Option<u64>,
    /// Clients print a `TIMELINE` line every this many ms (see `--timeline-ms`).
    pub timeline_ms: Option<u64>,
    /// Shard threads of the Sockworks server and of the Sockworks clients.
    pub shards: usize,
}

/// One server measured under the load.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// Which server.
    pub server: String,
    /// What the clients saw (merged over client processes).
    pub result: LoadResult,
    /// Server CPU (all threads) over the measured interval, seconds.
    pub server_cpu: Option<f64>,
    /// Length of the interval the CPU was sampled over, seconds.
    pub cpu_interval: f64,
    /// Server CPU (all threads) from the clients' start until every connection was up (or
    /// failed), seconds: the handshakes, plus whatever the idle server spends meanwhile.
    pub connect_cpu: Option<f64>,
    /// Wall time of that connect phase, seconds.
    pub connect_secs: f64,
    /// Server peak RSS (VmHWM), KiB.
    pub rss_kib: Option<u64>,
    /// Datagrams dropped by full UDP receive buffers during the load, system-wide.
    pub udp_drops: Option<u64>,
}

impl Measured {
    /// Server CPU per completed handshake over the connect phase, microseconds.
    pub(crate) fn cpu_us_per_handshake(&self) -> Option<f64> {
        let n = self.result.connected as f64;
        self.connect_cpu.filter(|_| n > 0.0).map(|c| c * 1e6 / n)
    }

    /// Server CPU per echoed message, microseconds.
    pub(crate) fn cpu_us_per_msg(&self) -> Option<f64> {
        let msgs = self.result.msgs_per_sec * self.cpu_interval;
        self.server_cpu
            .filter(|_| msgs > 0.0)
            .map(|c| c * 1e6 / msgs)
    }
}

/// Cores for (server, clients), if at least two are allowed.
fn placement() -> Option<(usize, usize)> {
    let ids = core_affinity::get_core_ids()?;
    match ids.as_slice() {
        [a, b, ..] => Some((a.id, b.id)),
        _ => None,
    }
}

/// Warmup and connect allowances of every load (and so, with the drain, the bound of a run).
const WARMUP: Duration = Duration::from_millis(500);
const CONNECT: Duration = Duration::from_secs(10);

impl Versus {
    fn measure(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.max(0.1))
    }

    /// After measuring, how long to wait for echoes in flight. Reliable: long enough for
    /// retransmissions under an overloaded loopback (what is missing after it is lost);
    /// unreliable probes are lost after 1 s anyway.
    fn drain(&self) -> Duration {
        Duration::from_secs(if self.reliable { 10 } else { 2 })
    }

    /// The longest one load may take, with margin.
    fn run_bound(&self) -> Duration {
        CONNECT + WARMUP + self.measure() + self.drain() + Duration::from_secs(5)
    }

    /// The send-rate flags of a process of `stack`.
    fn rate_args(&self, stack: Stack) -> Vec<String> {
        let mut v = Vec::new();
        let min = match stack {
            Stack::Gns => self.gns_send_rate_min,
            Stack::Sockworks => self.send_rate_min,
        };
        if let Some(r) = min {
            v.extend(["--send-rate-min".to_owned(), r.to_string()]);
        }
        if let Some(r) = self.send_rate_max {
            v.extend(["--send-rate-max".to_owned(), r.to_string()]);
        }
        v
    }

    /// Runs every load; prints each result and, for two servers, the comparison.
    pub(crate) fn run(&self) -> anyhow::Result<Vec<Measured>> {
        let cores = placement();
        match cores {
            Some((s, c)) => println!(
                "pinning: server process to CPU {s}, clients to CPU {c} (sched_setaffinity in each process)"
            ),
            None => println!("pinning: off (fewer than 2 cores allowed)"),
        }
        if self.clients == Stack::Gns || self.servers.contains(&Stack::Gns) {
            gns_load_exe()?;
        }
        let mut out = Vec::new();
        if let Some(target) = self.target {
            let m = self.load(target, None, cores.map(|c| c.1))?;
            out.push(Measured {
                server: format!("{target}"),
                ..m
            });
        }
        for &server in &self.servers {
            out.push(self.one_server(server, cores)?);
        }
        for m in &out {
            report::print_one(self, m);
        }
        Ok(out)
    }

    /// Starts `server` in its own process, loads it, stops it.
    fn one_server(&self, server: Stack, cores: Option<(usize, usize)>) -> anyhow::Result<Measured> {
        let bound = self.run_bound();
        let (exe, mut args) = match server {
            Stack::Gns => (gns_load_exe()?, vec!["serve".to_owned()]),
            Stack::Sockworks => (
                std::env::current_exe().context("loadgen's own path")?,
                vec![
                    "--serve".to_owned(),
                    "127.0.0.1:0".to_owned(),
                    "--server-shards".to_owned(),
                    self.shards.to_string(),
                ],
            ),
        };
        if server == Stack::Gns {
            args.extend(["--bind".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        args.extend(self.rate_args(server));
        if let (Stack::Sockworks, Some(age)) = (server, self.unreliable_max_age_ms) {
            args.extend(["--unreliable-max-age-ms".to_owned(), age.to_string()]);
        }
        if server == Stack::Sockworks && self.poll_idle {
            args.push("--poll-idle".to_owned());
        }
        if let (Stack::Sockworks, Some(us)) = (server, self.coalesce_us) {
            args.extend(["--coalesce-us".to_owned(), us.to_string()]);
        }
        args.extend([
            "--max-seconds".to_owned(),
            (bound.as_secs() + 5).to_string(),
        ]);
        if let Some((cpu, _)) = cores {
            args.extend(["--cpu".to_owned(), cpu.to_string()]);
        }
        let (tx, rx) = procs::lines();
        let proc = Proc::spawn(server.label(), &exe, &args, 0, tx)?;
        let (_, line) = wait_line(&rx, Duration::from_secs(15), "LISTENING line", |(_, l)| {
            l.starts_with("LISTENING ")
        })
        .with_context(|| format!("starting the {} server", server.label()))?;
        let addr = listening_addr(&line).with_context(|| format!("bad line {line:?}"))?;
        // The rest of the server's output is not needed; the channel just buffers it.
        let m = self.load(addr, Some(&proc), cores.map(|c| c.1))?;
        drop(proc);
        Ok(Measured {
            server: server.label().to_owned(),
            ..m
        })
    }

    /// Loads `addr`; samples `server`'s CPU over the measured interval and its peak RSS.
    fn load(
        &self,
        addr: SocketAddr,
        server: Option<&Proc>,
        client_cpu: Option<usize>,
    ) -> anyhow::Result<Measured> {
        let pid = server.map(Proc::pid);
        let mut sampler = Sampler::new(pid);
        let drops0 = udp_rcvbuf_errors();
        sampler.begin = sampler.sample();
        let result = match self.clients {
            Stack::Sockworks => self.load_in_process(addr, client_cpu, &mut sampler)?,
            Stack::Gns => self.load_gns(addr, client_cpu, &mut sampler)?,
        };
        let rss_kib = pid.and_then(peak_rss_kib);
        let udp_drops = udp_rcvbuf_errors()
            .zip(drops0)
            .map(|(b, a)| b.saturating_sub(a));
        let (server_cpu, cpu_interval) = sampler.figures();
        let (connect_cpu, connect_secs) = sampler.connect_figures();
        Ok(Measured {
            server: String::new(),
            result,
            server_cpu,
            cpu_interval,
            connect_cpu,
            connect_secs,
            rss_kib,
            udp_drops,
        })
    }

    fn client_config(&self, target: SocketAddr, connections: usize) -> ClientConfig {
        ClientConfig {
            target,
            connections,
            window: self.window,
            size: self.size,
            reliable: self.reliable,
            warmup: WARMUP,
            measure: self.measure(),
            drain: self.drain(),
            loss_timeout: Duration::from_secs(1),
            connect_timeout: CONNECT,
            max: self.run_bound(),
            messages: None,
            timeline: self.timeline_ms.map(Duration::from_millis),
        }
    }

    fn load_in_process(
        &self,
        addr: SocketAddr,
        cpu: Option<usize>,
        sampler: &mut Sampler,
    ) -> anyhow::Result<LoadResult> {
        if let Some(cpu) = cpu {
            ensure!(
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
                "cannot pin to CPU {cpu}"
            );
        }
        let mut t = swclient::SwClients::new(
            self.shards,
            self.reliable,
            (self.send_rate_min, self.send_rate_max),
        )?;
        let cfg = self.client_config(addr, self.connections);
        Ok(client::run(&mut t, &cfg, &mut |phase| {
            sampler.on_phase(phase)
        })?)
    }

    fn load_gns(
        &self,
        addr: SocketAddr,
        cpu: Option<usize>,
        sampler: &mut Sampler,
    ) -> anyhow::Result<LoadResult> {
        let exe = gns_load_exe()?;
        let k = self.client_procs.clamp(1, self.connections.max(1));
        let (tx, rx) = procs::lines();
        let mut clients: Vec<Proc> = Vec::new();
        for i in 0..k {
            // Connections spread as evenly as they go: the first ones get the remainder.
            let n = self.connections / k + usize::from(i < self.connections % k);
            let mut args: Vec<String> = [
                "client",
                "--target",
                &addr.to_string(),
                "--connections",
                &n.to_string(),
                "--window",
                &self.window.to_string(),
                "--size",
                &self.size.to_string(),
                if self.reliable {
                    "--reliable"
                } else {
                    "--unreliable"
                },
                "--seconds",
                &self.seconds.to_string(),
                "--warmup-ms",
                &WARMUP.as_millis().to_string(),
                "--drain-ms",
                &self.drain().as_millis().to_string(),
                "--connect-timeout-ms",
                &CONNECT.as_millis().to_string(),
                "--max-seconds",
                &self.run_bound().as_secs().to_string(),
                "--hist",
            ]
            .map(str::to_owned)
            .to_vec();
            args.extend(self.rate_args(Stack::Gns));
            if let Some(ms) = self.timeline_ms {
                args.extend(["--timeline-ms".to_owned(), ms.to_string()]);
            }
            if let Some(cpu) = cpu {
                args.extend(["--cpu".to_owned(), cpu.to_string()]);
            }
            clients.push(Proc::spawn(
                &format!("gns-load client {i}"),
                &exe,
                &args,
                i,
                tx.clone(),
            )?);
        }
        drop(tx);
        let until = now() + self.run_bound() + Duration::from_secs(5);
        let (mut connected, mut measuring, mut measured) = (0, 0, 0);
        let mut results: Vec<Option<LoadResult>> = vec![None; k];
        while results.iter().any(Option::is_none) {
            let left = until.saturating_duration_since(now());
            let Ok((i, line)) = rx.recv_timeout(left) else {
                break; // deadline, or every client's stdout closed
            };
            match line.split_whitespace().next() {
                Some("MEASURING") => {
                    measuring += 1;
                    // The measured interval is the one all clients share.
                    if measuring == k {
                        sampler.on_phase(Phase::Measuring);
                    }
                }
                Some("MEASURED") => {
                    measured += 1;
                    if measured == 1 {
                        sampler.on_phase(Phase::Draining);
                    }
                }
                Some("RESULT") => {
                    results[i] = Some(
                        LoadResult::parse(&line)
                            .with_context(|| format!("client {i}: {line:?}"))?,
                    );
                }
                Some("CONNECTED") => {
                    connected += 1;
                    // The connect phase ends when the last client has all its connections.
                    if connected == k {
                        sampler.on_phase(Phase::Connected);
                    }
                }
                _ => eprintln!("[client {i}] {line}"),
            }
        }
        for c in &mut clients {
            // Their status (non-zero on loss) is in the RESULT line too; the line decides.
            let _ = c.wait_exit(Duration::from_secs(5));
        }
        let got: Vec<LoadResult> = results.into_iter().flatten().collect();
        if got.len() != k {
            bail!(
                "{} of {k} gns-load clients gave no RESULT line",
                k - got.len()
            );
        }
        LoadResult::merge(&got).context("no results")
    }
}

/// Samples a server's CPU time when the clients start, when every connection is up, and
/// when the measured interval starts and ends.
struct Sampler {
    pid: Option<u32>,
    begin: Option<(std::time::Instant, f64)>,
    up: Option<(std::time::Instant, f64)>,
    start: Option<(std::time::Instant, f64)>,
    end: Option<(std::time::Instant, f64)>,
}

impl Sampler {
    fn new(pid: Option<u32>) -> Self {
        Sampler {
            pid,
            begin: None,
            up: None,
            start: None,
            end: None,
        }
    }

    fn sample(&self) -> Option<(std::time::Instant, f64)> {
        Some((now(), cpu_secs(self.pid?)?))
    }

    fn on_phase(&mut self, phase: Phase) {
        match phase {
            Phase::Measuring => self.start = self.sample(),
            Phase::Draining => self.end = self.sample(),
            Phase::Connected => self.up = self.sample(),
        }
    }

    /// (CPU seconds, wall seconds) of the connect phase.
    fn connect_figures(&self) -> (Option<f64>, f64) {
        between(self.begin, self.up)
    }

    /// (CPU seconds, wall seconds) between the samples.
    fn figures(&self) -> (Option<f64>, f64) {
        between(self.start, self.end)
    }
}

/// (CPU seconds, wall seconds) from sample `a` to sample `b`; no CPU figure unless both were
/// taken.
fn between(
    a: Option<(std::time::Instant, f64)>,
    b: Option<(std::time::Instant, f64)>,
) -> (Option<f64>, f64) {
    match (a, b) {
        (Some((t0, c0)), Some((t1, c1))) => (Some(c1 - c0), t1.duration_since(t0).as_secs_f64()),
        _ => (None, 0.0),
    }
}
