//! Sockworks load generator.
//!
//! Today it drives the full per-packet path of a GNS-compatible endpoint in memory, because the
//! connection core and the UDP runtime are not built yet: for each connection a real handshake
//! (control messages, certificates, signatures, X25519, GNS key schedule), then rounds of SNP
//! packets carrying reliable messages, sealed in batches with AES-256-GCM, opened, decoded and
//! verified byte for byte. It reports throughput and fails if any message is lost or corrupted.
//! Once the runtime lands it becomes server + network load with the same checks.

mod handshake;
mod pipeline;

use std::time::{Duration, Instant};

use anyhow::ensure;
use clap::{Parser, ValueEnum};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sockworks_engine::crypto::AeadBackend;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    Ring,
    Rustcrypto,
}

/// Command line; the defaults are the embedded load the README's main-job command runs.
#[derive(Parser, Debug)]
#[command(about = "Sockworks load generator (in-memory codec + crypto pipeline for now)")]
struct Args {
    /// Connections (each does its own handshake).
    #[arg(long, default_value_t = 256)]
    connections: u32,
    /// Data packets per connection.
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
    /// RNG seed for every key and id.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop early after this many seconds (the run is bounded either way).
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

#[expect(
    clippy::disallowed_methods,
    reason = "the load generator measures wall-clock time"
)]
fn now() -> Instant {
    Instant::now()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.batch > 0 && args.connections > 0,
        "batch and connections must be > 0"
    );
    let backend = match args.backend {
        Backend::Ring => AeadBackend::Ring,
        Backend::Rustcrypto => AeadBackend::RustCrypto,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);

    let t0 = now();
    let mut flows = Vec::with_capacity(args.connections as usize);
    for i in 0..args.connections {
        let session = handshake::connect(&mut rng, backend)?;
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
        "  handshakes  {:>10.0} /s  ({:.1} us each, both sides)",
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
