//! Chat client: the client half of GameNetworkingSockets' `example_chat` on Sockworks.
//!
//! It shows the client side of the API: connect by IP address, follow the connection through
//! its status callback, send reliable messages, receive on the connection, and close it. Lines
//! typed on stdin go to the server (`/nick NAME` renames, `/quit` leaves); what the server sends
//! is printed. It ends on `/quit`, end of input (Ctrl-D), Ctrl-C, or when the connection ends.
//! The logic lives in `common/chat_client_logic.rs`, which the smoke test runs too.
//!
//! ```text
//! cargo run -p sockworks --example chat_client -- --server 127.0.0.1:27020
//! ```

#[path = "common/chat_client_logic.rs"]
mod chat_client_logic;
#[path = "common/console.rs"]
mod console;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;

use clap::Parser;
use sockworks::{Sockets, SocketsConfig};

use chat_client_logic::{ChatClient, ClientEvent};

/// Chat client (GameNetworkingSockets' example_chat on Sockworks).
#[derive(Parser)]
struct Args {
    /// The chat server's address.
    #[arg(long, default_value = "127.0.0.1:27020")]
    server: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let quit = console::ctrl_c_flag()?;
    // One connection needs one shard thread.
    let sockets = Sockets::with_config(SocketsConfig {
        shards: 1,
        ..SocketsConfig::default()
    })?;
    let mut client = ChatClient::connect(sockets.clone(), args.server)?;
    println!("Connecting to {}...", args.server);

    let lines = console::stdin_lines();
    let mut events = Vec::new();
    while client.is_open() {
        if quit.load(Ordering::Relaxed) {
            client.close("Goodbye");
            break;
        }
        let work = client.poll(&mut events);
        for ev in events.drain(..) {
            match ev {
                ClientEvent::Connected => println!("Connected. Type /quit to leave."),
                ClientEvent::Line(text) => println!("{text}"),
                ClientEvent::Ended(text) => println!("{text}"),
            }
        }
        match lines.try_recv() {
            Ok(line) => {
                client.send_line(&line)?;
            }
            Err(TryRecvError::Disconnected) => client.close("Goodbye"), // end of input
            Err(TryRecvError::Empty) if work == 0 => std::thread::sleep(console::IDLE),
            Err(TryRecvError::Empty) => {}
        }
    }
    std::thread::sleep(console::CLOSE_GRACE);
    Ok(())
}
