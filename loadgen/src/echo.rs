//! The Sockworks echo server of load comparisons (`loadgen --serve`), on the public
//! `sockworks` API and shaped like `gns-load serve`, its real-GNS twin: every connection is
//! accepted into one poll group; messages are received in batches of [`EchoConfig::batch`]
//! and sent back with one `send_messages` call per batch, same connection, same reliability,
//! NoNagle. `SendRateMin` and `SendRateMax` are set only where given, so both servers run on
//! the same configuration.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};

use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, InitError, ListenSocket, Message,
    OutMessage, PollGroup, Sockets, SocketsConfig, StatusChanged, send_flags,
};

use crate::load::Idle;

/// How to run the echo server.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Listen address (port 0: the OS picks; see [`EchoServer::local_addr`]).
    pub bind: SocketAddr,
    /// Shard threads.
    pub shards: usize,
    /// `SendRateMin`, bytes/s; `None` keeps the default (256 KiB/s, as GNS).
    pub send_rate_min: Option<i32>,
    /// `SendRateMax`, bytes/s; `None` keeps the default (256 KiB/s, as GNS).
    pub send_rate_max: Option<i32>,
    /// `UnreliableMaxAge` (Sockworks' own setting), ms: unreliable echoes still unsent after
    /// this are dropped; `None` keeps it off (the default).
    pub unreliable_max_age_ms: Option<i32>,
    /// Messages taken from the poll group per turn.
    pub batch: usize,
    /// Sleep on the instance's activity ([`Sockets::wait_for_activity`], ours) when a turn
    /// found nothing, instead of the shared [`Idle`] policy that GNS's loop uses too.
    pub wait_for_activity: bool,
    /// The shards' pause between turns under load (`SocketsConfig::coalesce`); `None` keeps
    /// the default.
    pub coalesce: Option<std::time::Duration>,
}

/// What the server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Messages echoed.
    pub echoed: u64,
    /// Echoes the stack refused (send buffer full).
    pub refused: u64,
}

/// Why the echo server could not start.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// The Sockworks instance did not start.
    #[error(transparent)]
    Init(#[from] InitError),
    /// A configuration value was out of range.
    #[error("config value rejected: {0:?}")]
    Config(ConfigValue),
    /// The listen socket could not be created.
    #[error("cannot listen on {0}")]
    Listen(SocketAddr),
}

/// A running echo server; [`EchoServer::run`] drives it.
pub struct EchoServer {
    sockets: Sockets,
    listen: ListenSocket,
    group: PollGroup,
    addr: SocketAddr,
    events: mpsc::Receiver<StatusChanged>,
    conns: BTreeSet<Connection>,
    inbox: Vec<Message>,
    batch: usize,
    wait_for_activity: bool,
    stats: EchoStats,
}

/// Longest one wait for activity lasts before the loop asks whether to go on.
const ACTIVITY_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

impl EchoServer {
    /// Starts the instance, configures it and listens.
    pub fn start(cfg: &EchoConfig) -> Result<Self, EchoError> {
        let defaults = SocketsConfig::default();
        let sockets = Sockets::with_config(SocketsConfig {
            shards: cfg.shards.max(1),
            coalesce: cfg.coalesce.unwrap_or(defaults.coalesce),
            ..defaults
        })?;
        let rates = [
            cfg.send_rate_min.map(ConfigValue::SendRateMin),
            cfg.send_rate_max.map(ConfigValue::SendRateMax),
            cfg.unreliable_max_age_ms.map(ConfigValue::UnreliableMaxAge),
        ];
        // Global values are inherited when the listen socket is made, so they go first.
        for value in rates.into_iter().flatten() {
            if !sockets.set_global_config_value(&value) {
                return Err(EchoError::Config(value));
            }
        }
        let (tx, events) = mpsc::channel();
        let callback = ConfigValue::ConnectionStatusChanged(Arc::new(move |ev: &StatusChanged| {
            let _ = tx.send(ev.clone()); // the server is gone: nobody to tell
        }));
        let listen = sockets.create_listen_socket_ip(cfg.bind, &[callback]);
        let addr = sockets
            .get_listen_socket_address(listen)
            .filter(|_| listen != ListenSocket::INVALID)
            .ok_or(EchoError::Listen(cfg.bind))?;
        let group = sockets.create_poll_group();
        Ok(EchoServer {
            sockets,
            listen,
            group,
            addr,
            events,
            conns: BTreeSet::new(),
            inbox: Vec::with_capacity(cfg.batch.max(1)),
            batch: cfg.batch.max(1),
            wait_for_activity: cfg.wait_for_activity,
            stats: EchoStats::default(),
        })
    }

    /// The bound address, with the port the OS picked.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server did so far.
    #[must_use]
    pub fn stats(&self) -> EchoStats {
        self.stats
    }

    /// One turn: status changes, then one batch received and echoed. Returns the number of
    /// messages and status changes handled (0: nothing to do).
    pub fn step(&mut self) -> usize {
        self.sockets.run_callbacks();
        let mut work = 0;
        while let Ok(ev) = self.events.try_recv() {
            self.on_status(&ev);
            work += 1;
        }
        self.inbox.clear();
        self.sockets
            .receive_messages_on_poll_group(self.group, &mut self.inbox, self.batch);
        if self.inbox.is_empty() {
            return work;
        }
        let echoes: Vec<OutMessage> = self
            .inbox
            .drain(..)
            .map(|m| {
                // Same reliability as received; lane 0 (no other lanes are configured).
                let flags = (m.flags & send_flags::RELIABLE) | send_flags::NO_NAGLE;
                OutMessage {
                    conn: m.conn,
                    data: m.into_data(),
                    flags,
                    lane: 0,
                }
            })
            .collect();
        work += echoes.len();
        for r in self.sockets.send_messages(echoes) {
            if r > 0 {
                self.stats.echoed += 1;
            } else {
                self.stats.refused += 1;
            }
        }
        work
    }

    /// Runs turns until `keep_going` says no (checked every turn), waiting as
    /// [`Idle`] does when a turn found nothing.
    pub fn run(&mut self, mut keep_going: impl FnMut() -> bool) {
        let mut idle = Idle::default();
        while keep_going() {
            let seen = self.sockets.activity();
            let work = self.step();
            if self.wait_for_activity {
                if work == 0 {
                    // Bounded, so `keep_going` is asked again now and then.
                    self.sockets.wait_for_activity(seen, ACTIVITY_WAIT);
                }
            } else {
                idle.turn(work > 0);
            }
        }
    }

    /// `GetDetailedConnectionStatus` of up to `n` connections (diagnostics: rates, window,
    /// losses, retransmissions).
    #[must_use]
    pub fn detailed_status(&self, n: usize) -> Vec<String> {
        let mut buf = vec![0u8; 8192];
        let mut out = Vec::new();
        for &c in self.conns.iter().take(n) {
            if self.sockets.get_detailed_connection_status(c, &mut buf) == 0 {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                out.push(String::from_utf8_lossy(&buf[..end]).into_owned());
            }
        }
        out
    }

    /// Closes every connection and the listen socket.
    pub fn shutdown(self) {
        for &conn in &self.conns {
            self.sockets
                .close_connection(conn, 0, "server shutdown", false);
        }
        self.sockets.close_listen_socket(self.listen);
    }

    fn on_status(&mut self, ev: &StatusChanged) {
        match ev.info.state {
            ConnectionState::Connecting => {
                if self.sockets.accept_connection(ev.conn) == EResult::Ok
                    && self.sockets.set_connection_poll_group(ev.conn, self.group)
                {
                    self.conns.insert(ev.conn);
                    self.stats.accepted += 1;
                } else {
                    self.sockets.close_connection(ev.conn, 0, "", false);
                }
            }
            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                self.conns.remove(&ev.conn);
                self.sockets.close_connection(ev.conn, 0, "", false);
            }
            _ => {}
        }
    }
}
