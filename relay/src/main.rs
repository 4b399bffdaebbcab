//! `sockworks-relay`: a relay for hosted dedicated servers (protocol in the library's docs).
//! Prints `listening on ADDR` on stdout once bound (so `--listen 127.0.0.1:0` works), then
//! logs and periodic `stats …` lines on stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use sockworks_engine::crypto::pem;
use sockworks_engine::crypto::{TrustStore, TrustedCa};
use sockworks_relay::routing::RoutingKey;
use sockworks_relay::server::MAX_SESSIONS;
use sockworks_relay::shards::{self, MAX_SHARDS};
use sockworks_relay::{RelayConfig, io};

/// Relay for hosted dedicated servers: forwards end-to-end encrypted GNS packets between
/// clients holding a signed relay auth ticket and the servers the tickets route to (UDP).
#[derive(Debug, Parser)]
#[command(name = "sockworks-relay", version)]
struct Cli {
    /// UDP address clients reach the relay on.
    #[arg(long, default_value = "0.0.0.0:27300")]
    listen: SocketAddr,
    /// Trusted ticket-signing CA keys: `ssh-ed25519 …` lines, as `sockworks-cert gen-ca`
    /// writes to ca.key.pub (`#` comments and blank lines ignored).
    #[arg(long, value_name = "FILE")]
    ca_keys: PathBuf,
    /// The fleet's routing key: 64 hex digits (32 bytes), shared by every relay of the fleet
    /// and the backend that seals server addresses.
    #[arg(long, value_name = "FILE")]
    routing_key_file: PathBuf,
    /// This relay's point-of-presence code (1 to 4 letters or digits, e.g. `fra`).
    #[arg(long, default_value = "dev")]
    pop: String,
    /// Most live sessions; further Hellos are refused with `Full`.
    #[arg(long, default_value_t = 10_000)]
    max_sessions: usize,
    /// Seconds without an authenticated client datagram after which a session ends.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Client → server packets per second per ticket (token bucket refill).
    #[arg(long, default_value_t = 2000.0)]
    rate: f32,
    /// Packets a ticket may send in one burst [default: --rate].
    #[arg(long)]
    burst: Option<f32>,
    /// Ticket signature checks per second, relay-wide (beyond: refused unverified).
    #[arg(long, default_value_t = 20_000.0)]
    hello_rate: f32,
    /// Ticket signature checks per second per source IP (so one host cannot spend the
    /// relay-wide budget).
    #[arg(long, default_value_t = 10.0)]
    hello_per_ip: f32,
    /// Seconds between `stats` lines on stderr (fractions allowed; 0: none).
    #[arg(long, default_value_t = 60.0)]
    stats_interval: f64,
    /// Shards: threads, each with its own socket on --listen (one SO_REUSEPORT group; the
    /// kernel steers every session's datagrams to its shard), sessions and budgets
    /// (--max-sessions and --hello-rate are split between them; --hello-per-ip applies per
    /// shard). Use one per core the relay may take.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn read_ca_keys(path: &Path) -> Result<TrustStore> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --ca-keys {}", path.display()))?;
    let mut trust = TrustStore::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = pem::read_public_key(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        trust.add_ca(TrustedCa::new(key));
    }
    if trust.cas().is_empty() {
        bail!("{}: no ssh-ed25519 CA key", path.display());
    }
    Ok(trust)
}

fn config(cli: &Cli) -> Result<RelayConfig> {
    if !(1..=MAX_SESSIONS).contains(&cli.max_sessions) {
        bail!("--max-sessions must be 1 to {MAX_SESSIONS}");
    }
    if cli.idle_seconds == 0 {
        bail!("--idle-seconds must be at least 1");
    }
    if !(cli.rate.is_finite() && cli.rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    let burst = cli.burst.unwrap_or(cli.rate);
    if !(burst.is_finite() && burst >= 1.0) {
        bail!("--burst must be at least 1");
    }
    if !(cli.hello_rate.is_finite() && cli.hello_rate >= 1.0) {
        bail!("--hello-rate must be at least 1");
    }
    if !(cli.hello_per_ip.is_finite() && cli.hello_per_ip >= 1.0) {
        bail!("--hello-per-ip must be at least 1");
    }
    if !(1..=MAX_SHARDS).contains(&cli.threads) {
        bail!("--threads must be 1 to {MAX_SHARDS}");
    }
    if !(cli.stats_interval.is_finite() && cli.stats_interval >= 0.0) {
        bail!("--stats-interval must be a non-negative number of seconds");
    }
    let trust = read_ca_keys(&cli.ca_keys)?;
    let key_text = std::fs::read_to_string(&cli.routing_key_file).with_context(|| {
        format!(
            "reading --routing-key-file {}",
            cli.routing_key_file.display()
        )
    })?;
    let routing_key = RoutingKey::from_hex(&key_text)
        .with_context(|| format!("{}", cli.routing_key_file.display()))?;
    let pop = cli.pop.as_bytes();
    if pop.is_empty() || pop.len() > 4 || !pop.iter().all(u8::is_ascii_alphanumeric) {
        bail!("--pop must be 1 to 4 ASCII letters or digits");
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let ids: Vec<String> = trust.cas().iter().map(|c| c.key_id().to_string()).collect();
    eprintln!("tickets from CA key id(s) {} accepted", ids.join(", "));
    let mut c = RelayConfig::new(trust, routing_key, &cli.pop, secret);
    c.max_sessions = cli.max_sessions;
    c.idle = Duration::from_secs(cli.idle_seconds);
    c.rate = cli.rate;
    c.burst = burst;
    c.hello_rate = cli.hello_rate;
    c.hello_per_ip = cli.hello_per_ip;
    Ok(c)
}

fn run(cli: &Cli) -> Result<()> {
    let config = config(cli)?;
    let fds = io::raise_fd_limit().context("raising the open-file limit")?;
    let need = 2 * config.max_sessions as u64 + 64;
    if fds < need {
        eprintln!(
            "WARNING: open-file limit {fds} is below the {need} that --max-sessions {} needs; \
             sessions beyond it are refused as Unreachable",
            config.max_sessions
        );
    }
    let group = shards::bind_group(cli.listen, cli.threads)
        .with_context(|| format!("binding UDP {}", cli.listen))?;
    let local = sockworks_engine::driver::Driver::local_addr(&group[0])?;
    eprintln!(
        "pop {}, {} shard(s), max sessions {}, idle {} s, {} packets/s per ticket (burst {}), \
         {} ticket checks/s ({} per source IP)",
        config.pop,
        cli.threads,
        config.max_sessions,
        config.idle.as_secs(),
        config.rate,
        config.burst,
        config.hello_rate,
        config.hello_per_ip
    );
    println!("listening on {local}");
    let stats_every =
        (cli.stats_interval > 0.0).then(|| Duration::from_secs_f64(cli.stats_interval));
    shards::run(&config, group, stats_every, |t| {
        eprintln!(
            "stats sessions={} {} send_drops={} io_errors={} open_failures={}",
            t.sessions, t.stats, t.io.send_drops, t.io.errors, t.io.open_failures
        );
    })
    .context("relay I/O")
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
