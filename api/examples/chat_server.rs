//! Chat server: the classic GameNetworkingSockets example (`example_chat`) on Sockworks.
//!
//! It shows the server side of the API in its usual shape: listen, accept every connection
//! from the status callback, put the clients in one poll group, receive from the group and
//! send reliable messages, and close connections that ended. Each client gets a nick
//! ("User#N"); every line is broadcast to the others; `/nick NAME` renames, `/quit` leaves.
//! The logic lives in `common/chat_server_logic.rs`, which the smoke test runs too.
//!
//! ```text
//! cargo run -p sockworks --example chat_server -- --port 27020
//! ```
//!
//! Type `/quit` (or Ctrl-D, Ctrl-C) to stop it.

#[path = "common/chat_server_logic.rs"]
mod chat_server_logic;
#[path = "common/console.rs"]
mod console;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;

use clap::Parser;
use sockworks::{Sockets, SocketsConfig};

use chat_server_logic::ChatServer;

/// Chat server (GameNetworkingSockets' example_chat on Sockworks).
#[derive(Parser)]
struct Args {
    /// UDP port to listen on (all addresses, IPv6 and IPv4).
    #[arg(long, default_value_t = 27020)]
    port: u16,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let quit = console::ctrl_c_flag()?;
    // A chat room's traffic fits one shard thread.
    let sockets = Sockets::with_config(SocketsConfig {
        shards: 1,
        ..SocketsConfig::default()
    })?;
    // Dual stack where the host has IPv6, IPv4 only where it has not.
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, args.port));
    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port));
    let mut server = match ChatServer::start(sockets.clone(), v6) {
        Ok(s) => s,
        Err(_) => ChatServer::start(sockets.clone(), v4)?,
    };
    println!("Listening on {}. Type /quit to stop.", server.local_addr()?);

    let lines = console::stdin_lines();
    let mut log = Vec::new();
    while !quit.load(Ordering::Relaxed) {
        let work = server.poll(&mut log);
        for line in log.drain(..) {
            println!("{line}");
        }
        match lines.try_recv() {
            Ok(line) if line.trim() == "/quit" => break,
            Ok(line) if line.trim().is_empty() => {}
            Ok(_) => println!("The server knows one command: /quit"),
            Err(TryRecvError::Disconnected) => break, // end of input
            Err(TryRecvError::Empty) if work == 0 => std::thread::sleep(console::IDLE),
            Err(TryRecvError::Empty) => {}
        }
    }
    println!("Shutting down ({} clients).", server.room().len());
    server.shutdown();
    std::thread::sleep(console::CLOSE_GRACE);
    Ok(())
}
