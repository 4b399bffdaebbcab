//! `gns-load client`: the shared load loop (`loadgen::load::client`) over real GNS client
//! connections, one `GnsSocket<IsClient>` per connection, all in this one GNS instance.
//!
//! Every connection joins one poll group (`group.rs`: the wrapper has none for client sockets),
//! so each turn reads all of them with one `ReceiveMessagesOnPollGroup`; probes go out in one
//! `SendMessages` per turn, NoNagle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use gns::sys::ESteamNetworkingConnectionState as State;
use gns::{
    GnsConnection, GnsGlobal, GnsSocket, IsClient, IsCreated, MessageSlot, SendFlags, SendOutcome,
};
use loadgen::load::client::{ClientConfig, Incoming, LoadError, Outgoing, Phase, Transport};

use crate::emit;
use crate::group::PollGroup;

/// `gns-load client` switches.
#[derive(Args, Debug)]
pub(crate) struct ClientArgs {
    /// The server.
    #[arg(long)]
    target: SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 16)]
    pub(crate) connections: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 64)]
    window: u32,
    /// Bytes per message (at least 20: the probe header).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Reliable messages (the default).
    #[arg(long, conflicts_with = "unreliable")]
    reliable: bool,
    /// Unreliable messages; one not echoed within --loss-timeout-ms is lost.
    #[arg(long)]
    unreliable: bool,
    /// Measured seconds (after connecting and the warmup).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Load before measuring, milliseconds.
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
    /// After measuring, how long to wait for messages still in flight, milliseconds.
    #[arg(long, default_value_t = 3000)]
    drain_ms: u64,
    /// Unreliable: a message not echoed within this is lost (and its place refilled).
    #[arg(long, default_value_t = 1000)]
    loss_timeout_ms: u64,
    /// How long all connections may take to connect, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    connect_timeout_ms: u64,
    /// Send this many messages per connection, then wait for their echoes and stop (no
    /// warmup; --seconds bounds the run).
    #[arg(long)]
    messages: Option<u64>,
    /// Append the RTT histogram to the RESULT line (for merging several processes).
    #[arg(long)]
    hist: bool,
    /// Read each connection with its own call instead of one poll group (GNS clients are
    /// then slower: every call takes GNS's global lock).
    #[arg(long)]
    no_poll_group: bool,
    /// Before closing, print GNS's detailed status of this many connections (stderr).
    #[arg(long, default_value_t = 0)]
    detail: usize,
    /// Print a `TIMELINE` line (fresh echoes) to stderr every this many ms after connecting.
    #[arg(long)]
    timeline_ms: Option<u64>,
}

impl ClientArgs {
    /// Reliable unless --unreliable.
    pub(crate) fn reliable(&self) -> bool {
        !self.unreliable
    }
}

/// GNS's client side as the load loop sees it.
struct GnsClients {
    global: &'static GnsGlobal,
    sockets: Vec<GnsSocket<IsClient>>,
    flags: SendFlags,
    slots: Vec<MessageSlot>,
    /// (connection, sequence number) of each probe in the batch being sent.
    sending: Vec<(usize, u64)>,
    /// Connections whose detailed status is printed before closing.
    detail: usize,
    /// Every connection, for one receive call per turn (`None`: read each connection).
    group: Option<PollGroup>,
    /// Connection handle to index.
    index: HashMap<GnsConnection, usize>,
}

impl Transport for GnsClients {
    fn connect(&mut self, target: SocketAddr, n: usize) -> Result<(), LoadError> {
        for i in 0..n {
            let socket = GnsSocket::<IsCreated>::new(self.global)
                .connect(target.ip(), target.port())
                .map_err(|e| LoadError::Transport(format!("connection {i} to {target}: {e}")))?;
            let conn = socket.connection();
            if self.group.as_ref().is_some_and(|g| !g.add(conn)) {
                return Err(LoadError::Transport(format!(
                    "connection {i}: SetConnectionPollGroup refused"
                )));
            }
            self.index.insert(conn, self.sockets.len());
            self.sockets.push(socket);
        }
        Ok(())
    }

    fn poll(&mut self, sink: &mut dyn FnMut(Incoming<'_>)) -> usize {
        self.global.poll_callbacks();
        let mut n = 0;
        for (i, socket) in self.sockets.iter().enumerate() {
            for event in socket.receive_events() {
                n += 1;
                let info = event.info();
                match info.state() {
                    State::k_ESteamNetworkingConnectionState_Connected => {
                        sink(Incoming::Connected(i));
                    }
                    State::k_ESteamNetworkingConnectionState_ClosedByPeer
                    | State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => {
                        sink(Incoming::Ended {
                            conn: i,
                            reason: format!("{} {}", info.end_reason(), info.end_debug()),
                        });
                    }
                    _ => {}
                }
            }
            if self.group.is_some() {
                continue;
            }
            loop {
                // Fails only for a connection GNS no longer knows: nothing to read there.
                let Ok(batch) = socket.receive_messages_into(&mut self.slots) else {
                    break;
                };
                let got = batch.len();
                for m in batch {
                    sink(Incoming::Message {
                        conn: i,
                        data: m.payload(),
                    });
                }
                n += got;
                if got < self.slots.len() {
                    break;
                }
            }
        }
        if let Some(group) = self.group.as_mut() {
            let index = &self.index;
            loop {
                let got = group.receive(|conn, data| {
                    if let Some(&i) = index.get(&conn) {
                        sink(Incoming::Message { conn: i, data });
                    }
                });
                n += got;
                if got < self.slots.len() {
                    break;
                }
            }
        }
        n
    }

    fn send(&mut self, batch: &mut Vec<Outgoing>, failed: &mut dyn FnMut(usize, u64)) {
        let Some(first) = self.sockets.first() else {
            batch.clear();
            return;
        };
        self.sending.clear();
        let utils = self.global.utils();
        let messages: Vec<_> = batch
            .drain(..)
            .filter_map(|o| {
                let conn = self.sockets.get(o.conn)?.connection();
                self.sending.push((o.conn, o.seq));
                Some(utils.allocate_message(conn, self.flags, o.data))
            })
            .collect();
        // SendMessages is one call for every connection; any socket of the instance makes it.
        for (outcome, &(conn, seq)) in first.send_messages(messages).iter().zip(&self.sending) {
            if !matches!(outcome, SendOutcome::Sent(_)) {
                failed(conn, seq);
            }
        }
    }

    fn close(&mut self) {
        for socket in self.sockets.iter().take(self.detail) {
            if let Some(text) = socket.get_detailed_connection_status(socket.connection()) {
                eprintln!("{text}");
            }
        }
        for socket in &self.sockets {
            let _ = socket.close_connection(socket.connection(), 0, None, false);
        }
    }
}

/// Runs the load and prints its lines; true if it passed.
pub(crate) fn run(
    global: &'static GnsGlobal,
    args: &ClientArgs,
    max: Duration,
) -> anyhow::Result<bool> {
    let mut flags = SendFlags::NO_NAGLE;
    flags |= if args.reliable() {
        SendFlags::RELIABLE
    } else {
        SendFlags::UNRELIABLE
    };
    let cfg = ClientConfig {
        target: args.target,
        connections: args.connections,
        window: args.window,
        size: args.size,
        reliable: args.reliable(),
        warmup: Duration::from_millis(args.warmup_ms),
        measure: Duration::try_from_secs_f64(args.seconds)
            .map_err(|e| anyhow!("--seconds: {e}"))?,
        drain: Duration::from_millis(args.drain_ms),
        loss_timeout: Duration::from_millis(args.loss_timeout_ms),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        max,
        messages: args.messages,
        timeline: args.timeline_ms.map(Duration::from_millis),
    };
    let mut clients = GnsClients {
        global,
        sockets: Vec::with_capacity(args.connections),
        flags,
        slots: (0..256).map(|_| MessageSlot::uninit()).collect(),
        sending: Vec::new(),
        detail: args.detail,
        group: (!args.no_poll_group).then(|| PollGroup::new(256)).flatten(),
        index: HashMap::new(),
    };
    let result = loadgen::load::client::run(&mut clients, &cfg, &mut |phase| match phase {
        Phase::Connected => emit!("CONNECTED"),
        Phase::Measuring => emit!("MEASURING"),
        Phase::Draining => emit!("MEASURED"),
    })?;
    // Let the close packets go out before the process exits.
    for _ in 0..20 {
        global.poll_callbacks();
        std::thread::sleep(Duration::from_millis(5));
    }
    emit!("{}", result.to_line(args.hist));
    Ok(result.passed())
}
