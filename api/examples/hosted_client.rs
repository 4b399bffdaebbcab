//! Client of a hosted dedicated server: reaches the server only through the relay fleet, with a
//! relay auth ticket from the backend, and checks that every reliable echo comes back in order
//! even when its relay dies under it.
//!
//! It caches the ticket (`ReceivedRelayAuthTicket`), connects with
//! `ConnectToHostedDedicatedServer` (the relay is picked by measured ping among `--relays`),
//! then sends `--messages` numbered reliable messages, one every `--interval-ms`, to
//! `echo_server --hosted`. It prints `RELAY <addr>` whenever the connection's remote address
//! (its relay) changes, and at the end one `DONE ...` line (with the longest wait between two
//! echoes, i.e. how long a failover stalled the session); it exits with status 1 unless every
//! message came back exactly once and in order.
//!
//! ```text
//! cargo run --release -p sockworks --example hosted_client -- --server-identity str:arena-1 \
//!     --identity str:player-1 --relays 10.0.0.1:27300,10.0.1.1:27300 --ticket "$TICKET_HEX"
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sockworks::engine::shard::Clock;
use sockworks::engine::wire::identity::Identity;
use sockworks::{Connection, ConnectionState, Message, Sockets, SocketsConfig, send_flags};

/// Client of a hosted server behind relays.
#[derive(Parser)]
struct Args {
    /// The hosted server's identity, as its ticket names it.
    #[arg(long)]
    server_identity: String,
    /// This client's identity (the ticket's authorized client).
    #[arg(long, default_value = "str:player")]
    identity: String,
    /// The signed ticket in hex (`sockworks-cert create-hostedserver-ticket` prints it as
    /// SOCKWORKS_TICKET=...); default: the SOCKWORKS_TICKET environment variable.
    #[arg(long)]
    ticket: Option<String>,
    /// Relays to choose from by ping [default: SOCKWORKS_RELAYS].
    #[arg(long, value_delimiter = ',')]
    relays: Vec<SocketAddr>,
    /// Numbered reliable messages to send.
    #[arg(long, default_value_t = 200)]
    messages: u32,
    /// Pause between messages.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Give up (status 1) after this many seconds in all.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let clock = Clock::new();
    let start = clock.now();
    let elapsed = || clock.now().saturating_since(start);
    let timeout = Duration::from_secs(args.timeout_secs);
    let ticket_hex = match &args.ticket {
        Some(t) => t.clone(),
        None => std::env::var("SOCKWORKS_TICKET").context("no --ticket and no SOCKWORKS_TICKET")?,
    };
    let ticket = hex::decode(ticket_hex.trim()).context("the ticket is not hex")?;
    let server = Identity::parse(&args.server_identity).context("--server-identity")?;
    let sockets = Sockets::with_config(SocketsConfig {
        shards: 1,
        identity: Some(Identity::parse(&args.identity).context("--identity")?),
        relays: args.relays.clone(),
        ..SocketsConfig::default()
    })?;
    if sockets.received_relay_auth_ticket(&ticket).is_none() {
        bail!("the ticket is malformed or expired");
    }
    let conn = sockets.connect_to_hosted_dedicated_server(&server, 0, &[]);
    if conn == Connection::INVALID {
        bail!("ConnectToHostedDedicatedServer failed: no ticket for that server, or no relays");
    }
    let mut relay = None;
    let mut relays_used: Vec<SocketAddr> = Vec::new();
    let mut watch_relay = |sockets: &Sockets| {
        let now = sockets.get_connection_info(conn).map(|i| i.addr_remote);
        if now.is_some() && now != relay {
            relay = now;
            if let Some(a) = now {
                println!("RELAY {a}");
                relays_used.push(a);
            }
        }
    };
    loop {
        sockets.run_callbacks();
        match sockets.connection_state(conn) {
            ConnectionState::Connected => break,
            ConnectionState::Connecting | ConnectionState::FindingRoute => {}
            other => bail!("connection ended while connecting: {other:?}"),
        }
        if elapsed() > timeout {
            bail!("not connected within --timeout-secs");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    watch_relay(&sockets);
    println!("CONNECTED");

    let interval = Duration::from_millis(args.interval_ms);
    let mut next_send = elapsed();
    let mut sent = 0u32;
    let mut echoed: Vec<u32> = Vec::with_capacity(args.messages as usize);
    let mut batch: Vec<Message> = Vec::new();
    // The longest wait between two echoes: how long a relay failover stalled the session.
    let mut last_echo = elapsed();
    let mut max_gap = Duration::ZERO;
    while (echoed.len() as u32) < args.messages && elapsed() < timeout {
        sockets.run_callbacks();
        let state = sockets.connection_state(conn);
        if state != ConnectionState::Connected {
            println!("connection left Connected: {state:?}");
            break;
        }
        if sent < args.messages && elapsed() >= next_send {
            let mut payload = sent.to_le_bytes().to_vec();
            payload.resize(64, 0xA5);
            // LimitExceeded would mean our own send buffer is full; try again next turn.
            if sockets
                .send_message_to_connection(conn, &payload, send_flags::RELIABLE)
                .is_ok()
            {
                sent += 1;
                next_send += interval;
            }
        }
        batch.clear();
        sockets.receive_messages_on_connection(conn, &mut batch, 64);
        if !batch.is_empty() {
            let now = elapsed();
            max_gap = max_gap.max(now.saturating_sub(last_echo));
            last_echo = now;
        }
        for m in &batch {
            let n = m
                .data
                .get(..4)
                .map_or(u32::MAX, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            echoed.push(n);
        }
        watch_relay(&sockets);
        std::thread::sleep(Duration::from_millis(1));
    }
    let in_order = echoed.iter().copied().eq(0..echoed.len() as u32);
    println!(
        "DONE sent={sent} echoed={} in_order={in_order} max_gap_ms={} relays={}",
        echoed.len(),
        max_gap.as_millis(),
        relays_used
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    sockets.close_connection(conn, 0, "done", true);
    std::thread::sleep(Duration::from_millis(100));
    if echoed.len() as u32 != args.messages || !in_order {
        bail!("lost, duplicated or reordered echoes");
    }
    Ok(())
}
