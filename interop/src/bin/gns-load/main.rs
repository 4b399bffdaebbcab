//! `gns-load`: real Valve GNS as the load, or as the server under it, in its own process (GNS
//! keeps one global instance per process).
//!
//! - `gns-load serve`: a GNS echo server shaped like Sockworks' `loadgen --serve`: listen
//!   socket and poll group, batched receive, batched `SendMessages` back with the same
//!   reliability and NoNagle. Prints `LISTENING addr=IP port=PORT` once ready.
//! - `gns-load client`: N GNS connections in this process, each keeping W probes in flight
//!   (the probe format, accounting and loop are `loadgen::load`, shared with loadgen's own
//!   Sockworks client). Prints `CONNECTED`, `MEASURING`, `MEASURED` as the run moves on, then
//!   one `RESULT key=value ...` line; exits 1 if the run failed (a connection did not connect;
//!   reliable: any loss, duplicate, reordering or corruption).
//!
//! Both accept `--cpu C` to pin the whole process to one core (set on the main thread before
//! GNS starts its service thread, which inherits it).

mod client;
mod group;
mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Args, Parser, Subcommand};
use gns::sys::ESteamNetworkingConfigValue as Cfg;
use gns::sys::ESteamNetworkingSocketsDebugOutputType as DebugType;
use gns::{GnsConfig, GnsGlobal};

/// Real GNS echo server and load client for load comparisons.
#[derive(Parser, Debug)]
#[command(name = "gns-load", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Echo server: accept every connection, echo every message back.
    Serve(serve::ServeArgs),
    /// Load client: N connections, W probes in flight each, one RESULT line.
    Client(client::ClientArgs),
}

/// Switches both modes take.
#[derive(Args, Debug)]
struct Common {
    /// SendRateMin, bytes/s (GNS global config); unset keeps GNS's default (256 KiB/s).
    #[arg(long, global = true)]
    send_rate_min: Option<i32>,
    /// SendRateMax, bytes/s (GNS global config); unset keeps GNS's default (256 KiB/s).
    #[arg(long, global = true)]
    send_rate_max: Option<i32>,
    /// Pin this process (every thread) to this CPU core.
    #[arg(long, global = true)]
    cpu: Option<usize>,
    /// Hard bound on the run; the process always exits by itself.
    #[arg(long, global = true, default_value_t = 120)]
    max_seconds: u64,
}

/// Writes one line to stdout and flushes it (the parent reads lines as they come).
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // A closed stdout must not kill the run; there is nobody left to tell.
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}
pub(crate) use emit;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let c = &cli.common;
    if let Some(cpu) = c.cpu {
        pin_to(cpu)?;
    }
    // The watchdog: whatever happens, the process ends shortly after --max-seconds.
    let watchdog = Duration::from_secs(c.max_seconds) + Duration::from_secs(5);
    std::thread::spawn(move || {
        std::thread::sleep(watchdog);
        emit!("DEADLINE watchdog=1");
        std::process::exit(4);
    });
    let global = GnsGlobal::get().map_err(|e| anyhow!("GameNetworkingSockets_Init: {e}"))?;
    global.utils().enable_debug_output(
        DebugType::k_ESteamNetworkingSocketsDebugOutputType_Warning,
        |_, msg| eprintln!("gns: {}", msg.trim_end()),
    );
    let rates = [
        (Cfg::k_ESteamNetworkingConfig_SendRateMin, c.send_rate_min),
        (Cfg::k_ESteamNetworkingConfig_SendRateMax, c.send_rate_max),
    ];
    for (key, value) in rates {
        if let Some(v) = value {
            global
                .utils()
                .set_global_config_value(key, GnsConfig::Int32(v))
                .with_context(|| format!("{key:?} = {v}"))?;
        }
    }
    let max = Duration::from_secs(c.max_seconds);
    match cli.mode {
        Mode::Serve(args) => serve::run(global, &args, max),
        Mode::Client(args) => {
            let passed = client::run(global, &args, max)?;
            // GNS's service thread may still hold connections: exit without unwinding it.
            std::process::exit(if passed { 0 } else { 1 });
        }
    }
}

/// Pins the calling thread, and so every thread it starts later, to core `cpu`.
fn pin_to(cpu: usize) -> anyhow::Result<()> {
    let ok = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("cannot pin to CPU {cpu}"))
    }
}

/// `host:port` for a listen line.
pub(crate) fn listening_line(addr: SocketAddr) -> String {
    format!("LISTENING addr={} port={}", addr.ip(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_switches_parse_with_the_common_ones_after_the_mode() {
        let cli = Cli::try_parse_from([
            "gns-load",
            "client",
            "--target",
            "127.0.0.1:9",
            "--connections",
            "4",
            "--unreliable",
            "--send-rate-max",
            "256000000",
        ])
        .expect("parses");
        assert_eq!(cli.common.send_rate_max, Some(256_000_000));
        assert_eq!(cli.common.send_rate_min, None);
        let Mode::Client(args) = cli.mode else {
            panic!("client mode")
        };
        assert!(!args.reliable());
        assert_eq!(args.connections, 4);
    }
}
