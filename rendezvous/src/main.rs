//! `sockworks-rendezvous`: the signaling relay for Sockworks' `ConnectP2P` (protocol in the
//! library's docs). Prints `listening on ADDR` on stdout once bound (so `--listen
//! 127.0.0.1:0` works), then logs and periodic `stats …` lines on stderr. With
//! `--fakeip-state FILE`, FakeIP allocations are loaded from FILE at start and saved to it
//! (atomically) before they are granted.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use sockworks_rendezvous::auth::{Verifier, parse_ca_file};
use sockworks_rendezvous::{Service, ServiceConfig, clock, state};

/// Receive buffer asked for.
const RECV_BUFFER: usize = 4 << 20;
/// Least time between two saves of the FakeIP state (bounds the disk work under a burst of
/// new allocations; a new allocation waits at most this long for its grant).
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// Signaling relay for Sockworks P2P connections: peers register under their GNS identity
/// and exchange signals through it (UDP).
#[derive(Debug, Parser)]
#[command(name = "sockworks-rendezvous", version)]
struct Cli {
    /// UDP address to listen on.
    #[arg(long, default_value = "0.0.0.0:27200")]
    listen: SocketAddr,
    /// Trusted CA keys (`ssh-ed25519 …` lines as `sockworks-cert gen-ca` writes to ca.key.pub,
    /// or STEAMDATAGRAM CERT blocks). With it, peers must prove their identity with a
    /// certificate from one of these CAs; without it, registrations are unauthenticated.
    #[arg(long, value_name = "FILE")]
    ca_certs: Option<PathBuf>,
    /// Most registrations held at once; further identities are refused.
    #[arg(long, default_value_t = 100_000)]
    max_peers: usize,
    /// Seconds between the refreshes peers are asked to send.
    #[arg(long, default_value_t = 10)]
    interval_seconds: u64,
    /// Seconds a registration lives without a refresh [default: 3 × --interval-seconds].
    #[arg(long)]
    ttl_seconds: Option<u64>,
    /// Signals per second each peer may send (token bucket refill).
    #[arg(long, default_value_t = 50.0)]
    rate: f32,
    /// Signals a peer may send in one burst [default: 2 × --rate].
    #[arg(long)]
    burst: Option<f32>,
    /// Seconds between `stats` lines on stderr (fractions allowed; 0: none).
    #[arg(long, default_value_t = 60.0)]
    stats_interval: f64,
    /// File keeping FakeIP allocations across restarts: loaded at start (created if
    /// missing), replaced atomically whenever an allocation is added. Without it,
    /// allocations live in memory only and a restart forgets them.
    #[arg(long, value_name = "FILE")]
    fakeip_state: Option<PathBuf>,
    /// Most identities holding a FakeIP (at most 48896, the global range); new identities
    /// beyond are refused.
    #[arg(long, default_value_t = 40_000)]
    max_fakeips: usize,
}

fn config(cli: &Cli) -> Result<ServiceConfig> {
    if cli.max_peers == 0 {
        bail!("--max-peers must be at least 1");
    }
    if !(1..=0xffff).contains(&cli.interval_seconds) {
        bail!("--interval-seconds must be 1 to 65535");
    }
    let ttl = cli.ttl_seconds.unwrap_or(3 * cli.interval_seconds);
    if ttl < cli.interval_seconds || ttl > 0xffff {
        bail!("--ttl-seconds must be at least --interval-seconds and at most 65535");
    }
    if !(cli.rate.is_finite() && cli.rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    let burst = cli.burst.unwrap_or(2.0 * cli.rate);
    if !(burst.is_finite() && burst >= 1.0) {
        bail!("--burst must be at least 1");
    }
    if !(1..=sockworks_rendezvous::fakeip::GLOBAL_CAPACITY).contains(&cli.max_fakeips) {
        bail!(
            "--max-fakeips must be 1 to {}",
            sockworks_rendezvous::fakeip::GLOBAL_CAPACITY
        );
    }
    if !(cli.stats_interval.is_finite() && cli.stats_interval >= 0.0) {
        bail!("--stats-interval must be a non-negative number of seconds");
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let mut c = ServiceConfig::new(secret);
    c.max_peers = cli.max_peers;
    c.interval = Duration::from_secs(cli.interval_seconds);
    c.ttl = Duration::from_secs(ttl);
    c.rate = cli.rate;
    c.burst = burst;
    c.max_fakeips = cli.max_fakeips;
    c.persist_fakeips = cli.fakeip_state.is_some();
    if let Some(path) = &cli.ca_certs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --ca-certs {}", path.display()))?;
        let cas = parse_ca_file(&text).with_context(|| format!("{}", path.display()))?;
        let ids: Vec<String> = cas.iter().map(|c| c.key_id().to_string()).collect();
        eprintln!(
            "authentication: certificates from CA key id(s) {} required",
            ids.join(", ")
        );
        c.verifier = Some(Verifier::new(cas));
    } else {
        eprintln!(
            "WARNING: no --ca-certs: registrations are NOT authenticated (any peer can claim \
             any identity)"
        );
    }
    Ok(c)
}

/// The service socket, with a large receive buffer (best-effort: the kernel caps it at
/// `net.core.rmem_max`) so that bursts of registrations are not dropped.
fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn run(cli: &Cli) -> Result<()> {
    let config = config(cli)?;
    let socket = bind(cli.listen).with_context(|| format!("binding UDP {}", cli.listen))?;
    let local = socket.local_addr()?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    eprintln!(
        "max peers {}, refresh every {} s, ttl {} s, {} signals/s per peer (burst {})",
        config.max_peers,
        config.interval.as_secs(),
        config.ttl.as_secs(),
        config.rate,
        config.burst
    );
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let table = match &cli.fakeip_state {
        Some(path) => {
            let t = state::load(path, config.max_fakeips, key)?;
            eprintln!(
                "fakeip state {}: {} allocation(s) loaded (max {})",
                path.display(),
                t.len(),
                config.max_fakeips
            );
            if t.len() > t.max() {
                eprintln!("WARNING: more FakeIP allocations than --max-fakeips: new ones refused");
            }
            t
        }
        None => {
            eprintln!("no --fakeip-state: FakeIP allocations are kept in memory only");
            sockworks_rendezvous::fakeip::FakeIpTable::new(config.max_fakeips, key)
        }
    };
    println!("listening on {local}");
    let mut service = Service::new(config);
    service.set_fake_ips(table);
    let stats_every =
        (cli.stats_interval > 0.0).then(|| Duration::from_secs_f64(cli.stats_interval));
    let start = clock::now();
    let mut next_sweep = Duration::from_secs(1);
    let mut next_stats = stats_every.unwrap_or(Duration::MAX);
    let mut send_errors = 0u64;
    let mut save_errors = 0u64;
    let mut next_save = Duration::ZERO;
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    loop {
        let received = socket.recv_from(&mut buf);
        let now = clock::now().duration_since(start);
        if let Ok((n, from)) = received
            && let Some(datagram) = buf.get(..n)
            && let Some(to) =
                service.handle_datagram(now, clock::unix_now(), from, datagram, &mut out)
            && socket.send_to(&out, to).is_err()
        {
            send_errors += 1;
        }
        if let Some(path) = &cli.fakeip_state
            && now >= next_save
            && let Some((generation, text)) = service.fake_ip_snapshot()
        {
            next_save = now + SAVE_EVERY;
            match state::save(path, &text) {
                Ok(()) => {
                    service.fake_ips_saved(generation);
                    while let Some(to) = service.poll_grant(now, &mut out) {
                        if socket.send_to(&out, to).is_err() {
                            send_errors += 1;
                        }
                    }
                }
                Err(e) => {
                    // Grants wait (their peers retry, then give up): never grant what a
                    // restart could forget.
                    save_errors += 1;
                    if save_errors.is_power_of_two() {
                        eprintln!(
                            "error: saving {}: {e} ({save_errors} failures)",
                            path.display()
                        );
                    }
                }
            }
        }
        if now >= next_sweep {
            service.sweep(now);
            next_sweep = now + Duration::from_secs(1);
        }
        if let Some(every) = stats_every
            && now >= next_stats
        {
            eprintln!(
                "stats peers={} fakeips={} {} send_errors={send_errors} save_errors={save_errors}",
                service.peers(),
                service.fake_ips().len(),
                service.stats()
            );
            next_stats = now + every;
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
