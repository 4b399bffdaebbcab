//! Echo server: a minimal production-shaped server on the Sockworks API.
//!
//! It shows the server loop for real traffic: one application thread over any number of shard
//! threads, every connection accepted from the status callback into one poll group, messages
//! received in batches and sent back with `send_messages` (the payload moves, no copy), on the
//! same connection with the same reliability. Once a second it prints the connection count and
//! the message rate. It runs until Ctrl-C, or for `--secs` seconds.
//!
//! ```text
//! cargo run --release -p sockworks --example echo_server -- --addr [::]:27021 --shards 4
//! ```
//!
//! With `--hosted` it is a hosted dedicated server behind a relay fleet instead: it listens
//! with `CreateHostedDedicatedServerListenSocket` on the port its environment gives it
//! (`SDR_LISTEN_PORT`, `SDR_POPID`, `SOCKWORKS_PUBLIC_ADDR`, `SOCKWORKS_RELAY_ROUTING_KEY`) and
//! prints its routing blob as `ROUTING=<hex>` for the backend that signs client tickets
//! (`sockworks-cert create-hostedserver-ticket`; `scripts/relay-fleet-demo.sh` runs it all).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sockworks::engine::shard::Clock;
use sockworks::engine::wire::identity::Identity;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, ListenSocket, Message, OutMessage, Sockets,
    SocketsConfig, StatusChanged, send_flags,
};

/// Echo server on Sockworks.
#[derive(Parser)]
struct Args {
    /// Address to listen on (`[::]` is dual stack).
    #[arg(long, default_value = "[::]:27021")]
    addr: SocketAddr,
    /// Shard threads (default: one per core).
    #[arg(long)]
    shards: Option<usize>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    secs: Option<u64>,
    /// This server's identity (GNS string form, e.g. str:arena-1): what clients of a hosted
    /// server name in ConnectToHostedDedicatedServer.
    #[arg(long)]
    identity: Option<String>,
    /// Listen as a hosted server behind relays (configured from the environment) instead of
    /// on --addr.
    #[arg(long)]
    hosted: bool,
}

/// Messages taken from the poll group per step.
const BATCH: usize = 512;
/// Sleep when a step found nothing (the API has no blocking wait; this bounds idle CPU use
/// and adds at most this much latency to the first message after a quiet spell).
const IDLE: Duration = Duration::from_micros(200);

/// Counters for the once-a-second report.
#[derive(Default)]
struct Counters {
    messages: u64,
    bytes: u64,
    /// Echoes the send buffer had no room for (a client sending faster than it reads).
    dropped: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let quit = Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    ctrlc::set_handler(move || q.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;

    let mut config = SocketsConfig::default();
    if let Some(n) = args.shards {
        config.shards = n;
    }
    if let Some(id) = &args.identity {
        config.identity = Some(Identity::parse(id).with_context(|| format!("--identity {id}"))?);
    }
    let sockets = Sockets::with_config(config)?;
    let (tx, events) = mpsc::channel();
    let callback = ConfigValue::ConnectionStatusChanged(Arc::new(move |ev: &StatusChanged| {
        let _ = tx.send(ev.clone()); // the main loop is gone: nothing to tell
    }));
    let listen = if args.hosted {
        let listen = sockets.create_hosted_dedicated_server_listen_socket(0, &[callback]);
        if listen == ListenSocket::INVALID {
            bail!(
                "cannot listen as a hosted server: is SDR_LISTEN_PORT and SOCKWORKS_RELAY_ROUTING_KEY set?"
            );
        }
        let routing = sockets
            .get_hosted_dedicated_server_address()
            .map_err(|e| anyhow::anyhow!("GetHostedDedicatedServerAddress: {e:?}"))?;
        println!("ROUTING={}", hex::encode(routing));
        listen
    } else {
        let listen = sockets.create_listen_socket_ip(args.addr, &[callback]);
        if listen == ListenSocket::INVALID {
            bail!("cannot listen on {}", args.addr);
        }
        listen
    };
    let group = sockets.create_poll_group();
    let addr = sockets
        .get_listen_socket_address(listen)
        .context("listen socket vanished")?;
    println!(
        "Echoing on {addr} with {} shards. Ctrl-C stops.",
        sockets.shard_count()
    );

    let clock = Clock::new();
    let start = clock.now();
    let stop_after = args.secs.map(Duration::from_secs);
    let mut last_report = start;
    let mut conns: BTreeSet<Connection> = BTreeSet::new();
    let mut connected = 0usize;
    let mut counters = Counters::default();
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);

    while !quit.load(Ordering::Relaxed) {
        let now = clock.now();
        if stop_after.is_some_and(|d| now.saturating_since(start) >= d) {
            break;
        }
        if now.saturating_since(last_report) >= Duration::from_secs(1) {
            let secs = now.saturating_since(last_report).as_secs_f64();
            let c = std::mem::take(&mut counters);
            println!(
                "{connected} connections, {:.0} msg/s, {:.1} MiB/s, {} dropped",
                c.messages as f64 / secs,
                c.bytes as f64 / secs / (1024.0 * 1024.0),
                c.dropped
            );
            last_report = now;
        }

        sockets.run_callbacks();
        while let Ok(ev) = events.try_recv() {
            on_status_changed(&sockets, group, &ev, &mut conns, &mut connected);
        }

        batch.clear();
        sockets.receive_messages_on_poll_group(group, &mut batch, BATCH);
        if batch.is_empty() {
            std::thread::sleep(IDLE);
            continue;
        }
        let echoes: Vec<OutMessage> = batch
            .drain(..)
            .map(|m| {
                counters.messages += 1;
                counters.bytes += m.data.len() as u64;
                // Same reliability as received; no Nagle wait, an echo should come back now.
                // Lane 0: the server configures no other lanes.
                let flags = (m.flags & send_flags::RELIABLE) | send_flags::NO_NAGLE;
                OutMessage {
                    conn: m.conn,
                    data: m.into_data(),
                    flags,
                    lane: 0,
                }
            })
            .collect();
        for r in sockets.send_messages(echoes) {
            if r == -i64::from(EResult::LimitExceeded.code()) {
                counters.dropped += 1;
            }
        }
    }

    println!("Stopping: closing {} connections.", conns.len());
    for conn in conns {
        sockets.close_connection(conn, 0, "Server shutdown", false);
    }
    sockets.close_listen_socket(listen);
    // Let the shards send the close packets before the instance stops.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// Accepts new connections into `group`, closes ended ones, and keeps the connected count.
fn on_status_changed(
    sockets: &Sockets,
    group: sockworks::PollGroup,
    ev: &StatusChanged,
    conns: &mut BTreeSet<Connection>,
    connected: &mut usize,
) {
    match ev.info.state {
        ConnectionState::Connecting => {
            if sockets.accept_connection(ev.conn) == EResult::Ok
                && sockets.set_connection_poll_group(ev.conn, group)
            {
                conns.insert(ev.conn);
            } else {
                sockets.close_connection(ev.conn, 0, "", false);
            }
        }
        ConnectionState::Connected => *connected += 1,
        ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
            if ev.old_state == ConnectionState::Connected {
                *connected = connected.saturating_sub(1);
            }
            conns.remove(&ev.conn);
            sockets.close_connection(ev.conn, 0, "", false);
        }
        ConnectionState::FindingRoute | ConnectionState::None => {}
    }
}
