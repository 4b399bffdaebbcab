//! Sockworks load generator.
//!
//! Modes (`--mode`):
//! - `runtime` (default, the README's main job): a Sockworks echo server and a load of client
//!   connections over real UDP on 127.0.0.1 on the thread-per-core runtime, with RTT
//!   histograms and byte-for-byte, in-order checks of every echo. Fails on any loss.
//! - `udp`: the same on the blocking one-datagram-per-syscall driver.
//! - `api`: the same load through the public `sockworks` API.
//! - `pipeline`: the per-packet codec + crypto path in memory (handshake material, SNP framing,
//!   batched AES-256-GCM, decode), to measure CPU per packet without the kernel.
//! - `handshake`: CPU per handshake in memory (the engine's handshake steps over encoded
//!   control messages), server side and client side apart; `--ca-certs` runs CA-signed
//!   handshakes interleaved with anonymous ones and prints both with their ratio.
//! - `idle`: `--connections` idle connections (up to 100,000) from few client sockets on a
//!   `--serve` child process, held `--seconds`, then one echo each: server RSS per
//!   connection, idle CPU, connect-time percentiles, server CPU per handshake.
//! - `churn`: `--connections` (default 5,000) connections turning over for `--seconds`
//!   (connect, `--exchange` checked reliable round trips, disconnect, replace) against a
//!   `--serve` child; per-second throughput, p99 RTT, RSS (`--series FILE.csv`,
//!   `--plot FILE.png`), the RSS slope over the second half. `scripts/soak.sh` runs the
//!   10-minute soak with it.
//!
//! Servers under real load (see `versus`): `--server gns|sockworks`, `--clients gns|sockworks`,
//! `--compare`, `--target`, and `--serve ADDR` (the Sockworks echo server alone).

mod api;
mod churn;
mod flood;
mod handshake;
mod idle;
mod pipeline;
mod plot;
mod series;
mod sharded;
mod udp;
mod versus;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::ensure;
use clap::{Parser, ValueEnum};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sockworks_engine::crypto::AeadBackend;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Thread-per-core runtime (batched mmsg driver, shards) server + client over UDP loopback.
    Runtime,
    /// Server + client connections over UDP loopback, blocking one-datagram-per-syscall driver.
    Udp,
    /// In-memory codec + crypto pipeline.
    Pipeline,
    /// The same echo load through the public `sockworks` API (app threads, queues, poll groups).
    Api,
    /// CPU per handshake, in memory (`--connections` handshakes; `--ca-certs` adds CA-signed).
    Handshake,
    /// Many idle connections on a `--serve` child process: RSS per connection, idle CPU,
    /// connect times (`--connections`, `--seconds` idle, `--connect-window`).
    Idle,
    /// Connections turning over for `--seconds` (default 5,000 of them: connect, `--exchange`
    /// checked reliable round trips, disconnect, replace) on a `--serve` child; per-second
    /// series (`--series`, `--plot`), RSS slope; fails on any loss. `scripts/soak.sh`: the
    /// 10-minute soak.
    Churn,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Io {
    /// recvmmsg / sendmmsg with GSO and GRO.
    Mmsg,
    /// io_uring (falls back to mmsg when unavailable).
    Uring,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    Ring,
    Rustcrypto,
}

/// Command line; the defaults are the embedded load the README's main-job command runs.
#[derive(Parser, Debug)]
#[command(
    about = "Sockworks load generator: echo server + clients over UDP loopback, or the in-memory pipeline"
)]
struct Args {
    /// What to run.
    #[arg(long, value_enum, default_value_t = Mode::Runtime)]
    mode: Mode,
    /// runtime: server shards (threads).
    #[arg(long, default_value_t = 1)]
    server_shards: usize,
    /// runtime: client shards (threads).
    #[arg(long, default_value_t = 1)]
    client_shards: usize,
    /// runtime: kernel I/O backend.
    #[arg(long, value_enum, default_value_t = Io::Mmsg)]
    io: Io,
    /// runtime: pin shard threads to cores.
    #[arg(long, default_value_t = false)]
    pin: bool,
    /// Connections (each does its own handshake; churn: slots, default 5,000).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// udp: messages each connection sends and gets echoed.
    #[arg(long, default_value_t = 2_000)]
    messages: u64,
    /// udp: messages in flight per connection.
    #[arg(long, default_value_t = 8)]
    window: u64,
    /// Send rate per connection, bytes/s (GNS's default is 262144, which would make the
    /// pacing, not the engine, the bottleneck of a load test).
    #[arg(long, default_value_t = 100_000_000)]
    rate: u32,
    /// pipeline: data packets per connection.
    #[arg(long, default_value_t = 2_000)]
    packets: u64,
    /// Reliable message size in bytes (1024: one per packet; 32: many per packet).
    #[arg(long, default_value_t = 1024)]
    message_size: usize,
    /// Packets sealed and opened per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// AEAD backend.
    #[arg(long, value_enum, default_value_t = Backend::Ring)]
    backend: Backend,
    /// pipeline, handshake: CA-signed certificates that each side requires to chain to a
    /// trusted CA (handshake mode: beside anonymous ones, interleaved, with the ratio).
    #[arg(long)]
    ca_certs: bool,
    /// churn: reliable messages each connection exchanges before it disconnects.
    #[arg(long, default_value_t = 20)]
    exchange: u64,
    /// churn: write the per-second series (throughput, p99 RTT, RSS, ...) as CSV here.
    #[arg(long, value_name = "FILE.csv")]
    series: Option<std::path::PathBuf>,
    /// churn: plot throughput, p99 RTT and RSS over time into this PNG.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<std::path::PathBuf>,
    /// idle, churn: handshakes in flight (idle: per client shard) while connecting.
    #[arg(long, default_value_t = 512)]
    connect_window: usize,
    /// idle: unanswered messages per client shard in the final exchange (0: every
    /// connection's at once, a burst that overflows the server's socket buffers at 100k on
    /// a small machine: see the README).
    #[arg(long, default_value_t = 0)]
    exchange_window: usize,
    /// RNG seed for every key and id.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop early after this many seconds (the run is bounded either way; `--serve`: run
    /// this long).
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// api: while the echoes run, flood the server with this many handshake datagrams per
    /// second (ChallengeRequests and ConnectRequests with forged cookies from 127.0.0.2..200);
    /// compare the RTTs with a run without it.
    #[arg(long, default_value_t = 0)]
    handshake_flood: u32,
    #[command(flatten)]
    versus: VersusArgs,
}

/// Servers under real load: GNS's echo server beside Sockworks', GNS clients as the load.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Servers under real load (GNS vs Sockworks)")]
struct VersusArgs {
    /// Run only the Sockworks echo server on ADDR (port 0: any) and print
    /// `LISTENING addr=.. port=..`; runs until killed or --max-seconds. Uses --server-shards.
    #[arg(long, value_name = "ADDR")]
    serve: Option<SocketAddr>,
    /// Who makes the load: real GNS clients (`gns-load client` processes) or Sockworks
    /// clients in this process. Default gns.
    #[arg(long, value_enum)]
    clients: Option<versus::Stack>,
    /// The server to measure, in its own process: `gns-load serve` or `loadgen --serve`.
    #[arg(long, value_enum)]
    server: Option<versus::Stack>,
    /// Measure both servers, one after the other, under the same load; print them side by
    /// side with ratios Sockworks/GNS.
    #[arg(long)]
    compare: bool,
    /// Load a GNS-compatible server that is already running at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<SocketAddr>,
    /// Reliable messages (the default).
    #[arg(long, conflicts_with = "unreliable")]
    reliable: bool,
    /// Unreliable messages; one not echoed within 1 s is lost and its place refilled.
    #[arg(long)]
    unreliable: bool,
    /// Measured seconds per server (after connecting and a 0.5 s warmup); idle: seconds
    /// held idle; churn: seconds of churn (then the drain, within --max-seconds).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// GNS client processes the connections are spread over.
    #[arg(long, default_value_t = 1)]
    client_procs: usize,
    /// SendRateMin, bytes/s, of the Sockworks server and clients; unset keeps the default
    /// (256 KiB/s, as GNS), so with a higher `--send-rate-max` Sockworks' congestion
    /// controller chooses the rate between the two.
    #[arg(long)]
    send_rate_min: Option<i32>,
    /// SendRateMin, bytes/s, of the GNS processes (clients and the GNS server); unset: equal
    /// to `--send-rate-max`. GNS has no congestion control: its rate is clamp(a fixed initial
    /// estimate, min, max), so a fast GNS peer needs min = max (what GNS users set).
    #[arg(long)]
    gns_send_rate_min: Option<i32>,
    /// SendRateMax, bytes/s, for servers and clients alike; unset keeps the default.
    #[arg(long)]
    send_rate_max: Option<i32>,
    /// `UnreliableMaxAge` of the Sockworks server, ms (Sockworks' own setting, off by
    /// default): unreliable echoes still unsent after this are dropped, as a game server
    /// drops stale state updates.
    #[arg(long)]
    unreliable_max_age_ms: Option<i32>,
    /// The Sockworks echo server polls when idle with the yield-then-sleep loop that GNS's
    /// echo server and every client use (GNS has no way to wait), instead of sleeping on its
    /// instance's activity (`Sockets::wait_for_activity`, ours), which is the default.
    #[arg(long)]
    poll_idle: bool,
    /// The Sockworks server's pause between shard turns under load, µs (`SocketsConfig::
    /// coalesce`, ours): unset keeps the default (50 µs); 0 turns it off.
    #[arg(long)]
    coalesce_us: Option<u64>,
    /// Every client process prints a `TIMELINE` line to stderr every this many ms after
    /// connecting (fresh echoes in that slice): shows when a client stops reading.
    #[arg(long)]
    timeline_ms: Option<u64>,
    /// `--serve`: at the end, print the detailed status of this many connections.
    #[arg(long, default_value_t = 0)]
    serve_detail: usize,
    /// `--serve`: pin the whole process to this CPU core.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print the header of the `MATRIX_ROW` lines that `--compare` prints, and exit.
    #[arg(long)]
    matrix_header: bool,
}

impl VersusArgs {
    fn wanted(&self) -> bool {
        self.clients.is_some() || self.server.is_some() || self.compare || self.target.is_some()
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the load generator measures wall-clock time"
)]
fn now() -> Instant {
    Instant::now()
}

fn main() -> anyhow::Result<()> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    if matches!(args.mode, Mode::Churn)
        && matches.value_source("connections") != Some(clap::parser::ValueSource::CommandLine)
    {
        args.connections = 5_000;
    }
    if args.versus.matrix_header {
        println!("{}", versus::MATRIX_HEADER);
        return Ok(());
    }
    if let Some(bind) = args.versus.serve {
        return serve(&args, bind);
    }
    if args.versus.wanted() {
        return run_versus(&args);
    }
    match args.mode {
        Mode::Runtime => run_sharded(&args),
        Mode::Udp => run_udp(&args),
        Mode::Pipeline => run_pipeline(&args),
        Mode::Api => run_api(&args),
        Mode::Handshake => handshake::run_cli(&handshake::CliRun {
            connections: args.connections,
            backend: aead(args.backend),
            ca_certs: args.ca_certs,
            seed: args.seed,
            max: Duration::from_secs(args.max_seconds),
        }),
        Mode::Idle => idle::run(&idle::IdleLoad {
            connections: args.connections,
            client_shards: args.client_shards,
            server_shards: args.server_shards,
            connect_window: args.connect_window,
            idle: Duration::from_secs_f64(args.versus.seconds),
            size: args.message_size,
            max: Duration::from_secs(args.max_seconds),
            exchange_window: args.exchange_window,
            seed: args.seed,
        }),
        Mode::Churn => churn::run(&churn::ChurnLoad {
            connections: args.connections,
            exchange: args.exchange,
            window: args.window,
            size: args.message_size,
            rate: args.rate,
            connect_window: args.connect_window,
            client_shards: args.client_shards,
            server_shards: args.server_shards,
            seconds: args.versus.seconds,
            max: Duration::from_secs(args.max_seconds),
            seed: args.seed,
            series: args.series.clone(),
            plot: args.plot.clone(),
        }),
    }
}

/// `--serve`: the Sockworks echo server alone, until killed or `--max-seconds`.
fn serve(args: &Args, bind: SocketAddr) -> anyhow::Result<()> {
    let v = &args.versus;
    if let Some(cpu) = v.cpu {
        // Before the instance starts its shards, which inherit the mask.
        ensure!(
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
            "cannot pin to CPU {cpu}"
        );
    }
    let mut server = loadgen::echo::EchoServer::start(&loadgen::echo::EchoConfig {
        bind,
        shards: args.server_shards,
        send_rate_min: v.send_rate_min,
        send_rate_max: v.send_rate_max,
        unreliable_max_age_ms: v.unreliable_max_age_ms,
        batch: 256,
        wait_for_activity: !v.poll_idle,
        coalesce: v.coalesce_us.map(Duration::from_micros),
    })?;
    let addr = server.local_addr();
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTENING addr={} port={}", addr.ip(), addr.port())?;
        out.flush()?;
    }
    let until = now() + Duration::from_secs(args.max_seconds);
    server.run(|| now() < until);
    if v.serve_detail > 0 {
        for d in server.detailed_status(v.serve_detail) {
            println!("{d}");
        }
    }
    let s = server.stats();
    println!(
        "SERVED accepted={} echoed={} refused={}",
        s.accepted, s.echoed, s.refused
    );
    server.shutdown();
    Ok(())
}

/// `--server`, `--clients`, `--compare`, `--target`: servers under real load.
fn run_versus(args: &Args) -> anyhow::Result<()> {
    let v = &args.versus;
    let servers = if v.compare {
        vec![versus::Stack::Gns, versus::Stack::Sockworks]
    } else if v.target.is_some() {
        Vec::new()
    } else {
        vec![v.server.unwrap_or(versus::Stack::Sockworks)]
    };
    let run = versus::Versus {
        clients: v.clients.unwrap_or(versus::Stack::Gns),
        servers,
        target: v.target,
        connections: args.connections as usize,
        client_procs: v.client_procs,
        window: u32::try_from(args.window).unwrap_or(u32::MAX),
        size: args.message_size,
        reliable: !v.unreliable,
        seconds: v.seconds,
        send_rate_min: v.send_rate_min,
        gns_send_rate_min: v.gns_send_rate_min.or(v.send_rate_max),
        send_rate_max: v.send_rate_max,
        unreliable_max_age_ms: v.unreliable_max_age_ms,
        poll_idle: v.poll_idle,
        coalesce_us: v.coalesce_us,
        timeline_ms: v.timeline_ms,
        shards: args.server_shards,
    };
    let measured = run.run()?;
    if let [gns, sw] = measured.as_slice()
        && v.compare
    {
        versus::print_compare(&run, gns, sw);
    }
    let failed: Vec<&str> = measured
        .iter()
        .filter(|m| !m.result.passed())
        .map(|m| m.server.as_str())
        .collect();
    ensure!(
        failed.is_empty(),
        "the load failed against {failed:?} (connections missing, or with reliable messages: loss, duplicates, reordering or corruption)"
    );
    Ok(())
}

fn run_api(args: &Args) -> anyhow::Result<()> {
    let load = sharded_load(args);
    let r = api::run(&load, args.handshake_flood)?;
    println!(
        "sockworks loadgen: sockworks API, {} server shard(s) + {} client shard(s), {} connections, UDP 127.0.0.1",
        args.server_shards, args.client_shards, args.connections
    );
    print_common(args, r.connect_time, r.transfer_time, r.echoed, &r.rtt);
    println!(
        "  cpu         process {:.2} s: {:.2} us per round trip (both ends, all threads)",
        r.process_cpu,
        r.process_cpu * 1e6 / r.echoed.max(1) as f64
    );
    check(r.sent, r.echoed)
}

fn run_udp(args: &Args) -> anyhow::Result<()> {
    let load = udp::UdpLoad {
        connections: args.connections,
        messages: args.messages,
        size: args.message_size,
        window: args.window,
        rate: args.rate,
        max: Duration::from_secs(args.max_seconds),
        seed: args.seed,
    };
    let r = udp::run(load)?;
    println!(
        "sockworks loadgen: echo server + {} client connections over UDP 127.0.0.1",
        args.connections
    );
    print_common(args, r.connect_time, r.transfer_time, r.echoed, &r.rtt);
    let per_msg = |cpu: Duration| cpu.as_secs_f64() * 1e6 / (r.echoed.max(1) as f64);
    println!(
        "  cpu         server {:.2} s ({:.2} us per message in+out), client {:.2} s",
        r.server_cpu.as_secs_f64(),
        per_msg(r.server_cpu),
        r.client_cpu.as_secs_f64()
    );
    check(r.sent, r.echoed)
}

/// The echo load of the runtime and API modes, from the command line.
fn sharded_load(args: &Args) -> sharded::Load {
    sharded::Load {
        connections: args.connections,
        messages: args.messages,
        size: args.message_size,
        window: args.window,
        rate: args.rate,
        server_shards: args.server_shards,
        client_shards: args.client_shards,
        pin: args.pin,
        max: Duration::from_secs(args.max_seconds),
        seed: args.seed,
        backend: match args.io {
            Io::Mmsg => sockworks_engine::driver::any::Backend::Mmsg,
            Io::Uring => sockworks_engine::driver::any::Backend::Uring,
        },
    }
}

fn run_sharded(args: &Args) -> anyhow::Result<()> {
    let load = sharded_load(args);
    let r = sharded::run(&load)?;
    let secs = r.transfer_time.as_secs_f64();
    println!(
        "sockworks loadgen: {} server shard(s) + {} client shard(s), {} connections, UDP 127.0.0.1 ({:?} driver)",
        args.server_shards, args.client_shards, args.connections, args.io
    );
    print_common(args, r.connect_time, r.transfer_time, r.echoed, &r.rtt);
    println!(
        "  server      {:>10.0} datagrams in /s, {:.1} per recv batch, {:.1} per send batch, {} forwarded",
        r.server_in as f64 / secs,
        r.server_in as f64 / r.server_recv_batches.max(1) as f64,
        r.server_out as f64 / r.server_send_batches.max(1) as f64,
        r.forwarded
    );
    println!(
        "  server cpu  {:.2} s: {:.2} us per message (in + out), {:.2} us per datagram",
        r.server_cpu.as_secs_f64(),
        r.server_cpu.as_secs_f64() * 1e6 / r.echoed.max(1) as f64,
        r.server_cpu.as_secs_f64() * 1e6 / (r.server_in + r.server_out).max(1) as f64
    );
    check(r.sent, r.echoed)
}

/// The loss check every echo mode ends with: fails unless every message came back.
fn check(sent: u64, echoed: u64) -> anyhow::Result<()> {
    println!(
        "  check: {sent} sent, {echoed} echoed intact and in order, {} lost",
        sent - echoed
    );
    ensure!(sent == echoed, "messages lost");
    Ok(())
}

/// The lines both echo modes print: load shape, connect time, throughput, RTT.
fn print_common(
    args: &Args,
    connect: Duration,
    transfer: Duration,
    echoed: u64,
    rtt: &hdrhistogram::Histogram<u64>,
) {
    let secs = transfer.as_secs_f64();
    println!(
        "  reliable {} B messages, window {} per connection, send rate {} B/s per connection",
        args.message_size, args.window, args.rate
    );
    println!(
        "  connect     {:>10.1} ms for all connections",
        connect.as_secs_f64() * 1e3
    );
    println!(
        "  round trips {:>10.0} /s  ({echoed} messages echoed in {secs:.2} s)",
        echoed as f64 / secs
    );
    println!(
        "  payload     {:>10.1} MB/s each way",
        (echoed as f64 * args.message_size as f64) / secs / 1e6
    );
    println!(
        "  rtt us      p50 {}  p99 {}  p99.9 {}  max {}",
        rtt.value_at_quantile(0.5),
        rtt.value_at_quantile(0.99),
        rtt.value_at_quantile(0.999),
        rtt.max()
    );
}

fn run_pipeline(args: &Args) -> anyhow::Result<()> {
    ensure!(
        args.batch > 0 && args.connections > 0,
        "batch and connections must be > 0"
    );
    let backend = aead(args.backend);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);

    let certs = if args.ca_certs {
        handshake::Certs::CaSigned
    } else {
        handshake::Certs::Anonymous
    };
    let sides = handshake::Sides::new(certs, &mut rng)?;
    let t0 = now();
    let mut flows = Vec::with_capacity(args.connections as usize);
    for i in 0..args.connections {
        let (session, _) = handshake::connect(&mut rng, backend, &sides)?;
        flows.push(pipeline::Flow::new(session, i, args.batch));
    }
    let handshake_time = t0.elapsed();

    let deadline = Duration::from_secs(args.max_seconds);
    let rounds = args.packets.div_ceil(args.batch as u64);
    let mut tally = pipeline::Tally::default();
    let t1 = now();
    'outer: for _ in 0..rounds {
        for flow in &mut flows {
            flow.round(args.message_size, &mut tally)?;
        }
        if t1.elapsed() > deadline {
            eprintln!("stopping early at the {}s bound", args.max_seconds);
            break 'outer;
        }
    }
    let data_time = t1.elapsed().as_secs_f64();

    println!("sockworks loadgen: in-memory pipeline (handshake, SNP framing, AES-256-GCM, decode)");
    println!(
        "  connections {}  backend {:?}  message {} B  batch {}",
        args.connections, args.backend, args.message_size, args.batch
    );
    println!(
        "  handshakes  {:>10.0} /s  ({:.1} us each, both sides, {certs:?} certs)",
        f64::from(args.connections) / handshake_time.as_secs_f64(),
        handshake_time.as_secs_f64() * 1e6 / f64::from(args.connections)
    );
    println!(
        "  packets     {:>10.0} /s  ({:.0} ns per packet, seal + open + codec both sides)",
        tally.packets as f64 / data_time,
        data_time * 1e9 / tally.packets.max(1) as f64
    );
    println!(
        "  messages    {:>10.0} /s",
        tally.delivered as f64 / data_time
    );
    println!(
        "  payload     {:>10.1} MB/s on the wire",
        tally.bytes as f64 / data_time / 1e6
    );
    println!(
        "  check: {} messages sent, {} delivered intact and in order, {} lost",
        tally.sent,
        tally.delivered,
        tally.sent - tally.delivered
    );
    ensure!(tally.sent == tally.delivered, "messages lost");
    Ok(())
}

fn aead(b: Backend) -> AeadBackend {
    match b {
        Backend::Ring => AeadBackend::Ring,
        Backend::Rustcrypto => AeadBackend::RustCrypto,
    }
}
