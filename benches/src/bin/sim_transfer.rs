//! One simulated transfer through the whole protocol core (the `transfer` bench's setup,
//! `sockworks_benches::simulated_pair`: two endpoints, handshake done, real AES-GCM, SNP
//! framing and acks, the in-memory network with a virtual clock), for instruction counts:
//! deterministic, so two commits compare exactly on a noisy machine.
//!
//! ```sh
//! cargo build --profile profiling -p sockworks-benches --bin sim_transfer
//! valgrind --tool=callgrind target/profiling/sim_transfer --size 32 --unreliable
//! ```
//! Connecting is counted too: run twice with different `--messages` and subtract.

use std::time::Duration;

use clap::Parser;
use sockworks_engine::buffers;
use sockworks_engine::proto::snp::send_flags;

/// What to send.
#[derive(Parser, Debug)]
struct Args {
    /// Messages sent, client to server.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Unreliable (NoNagle) instead of reliable.
    #[arg(long)]
    unreliable: bool,
}

fn main() {
    let args = Args::parse();
    let Some((mut p, c, s)) = sockworks_benches::simulated_pair() else {
        eprintln!("sim_transfer: the simulated handshake did not complete");
        std::process::exit(1);
    };
    let flags = if args.unreliable {
        send_flags::UNRELIABLE | send_flags::NO_NAGLE
    } else {
        send_flags::RELIABLE
    };
    // In rounds of at most 1,000, so the send buffer never refuses.
    let mut sent = 0u64;
    let mut got = 0u64;
    let limit = p.now + Duration::from_secs(600);
    while sent < args.messages {
        let round = (args.messages - sent).min(1_000);
        for _ in 0..round {
            // Payloads come from and go back to the buffer pool, as an echo server's do (the
            // received buffer is what it sends back), so the counts show the engine's own
            // allocations rather than the harness's.
            let mut payload = buffers::take(args.size);
            payload.resize(args.size, 0xa5);
            if p.client.send_message(p.now, c, 0, flags, payload).is_err() {
                eprintln!("sim_transfer: send refused");
                std::process::exit(1);
            }
        }
        sent += round;
        p.run_until(limit, 10_000_000, |p| {
            while let Some(m) = p.server.poll_message(s) {
                buffers::give(m.data);
                got += 1;
            }
            got == sent
        });
    }
    println!(
        "sim_transfer: {got} of {sent} messages of {} B delivered",
        args.size
    );
    if got != sent {
        std::process::exit(1);
    }
}
