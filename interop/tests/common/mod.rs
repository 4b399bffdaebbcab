//! Shared pieces of the interop matrix and the differential test: starting `gns-peer`
//! processes, a Sockworks endpoint on the public `sockworks` API that accepts (or refuses),
//! echoes and queues sends, and one record type for a received message on either side.
//!
//! Every wait is bounded; the only sleep is one poll step (1 ms) while nothing happened.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers: a failed lock is a failed test"
)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks::engine::shard::Clock;
use sockworks::engine::time::Timestamp;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, ListenSocket, Message, OutMessage, Sockets,
    SocketsConfig, StatusChanged, send_flags,
};
use sockworks_interop::events::Event;
use sockworks_interop::payload::{fnv_hex, is_pattern, pattern};
use sockworks_interop::process::PeerProc;

/// Send rate of both ends (bytes/s): 1.2 MB of payload takes about 0.3 s.
pub(crate) const RATE: i32 = 4_000_000;
/// Send buffer of both ends: a whole scenario's data can be queued at once, so lane
/// scheduling, not the application's pacing, decides what goes first.
pub(crate) const SEND_BUFFER: i32 = 8 << 20;

/// Common `gns-peer` switches: the rate, the send buffer and a hard bound on the run.
pub(crate) fn gns_common() -> Vec<String> {
    [
        "--send-rate",
        &RATE.to_string(),
        "--send-buffer",
        &SEND_BUFFER.to_string(),
        "--max-seconds",
        "30",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Starts `gns-peer` with `args` (the common switches appended).
pub(crate) fn gns(name: &'static str, args: &[&str]) -> PeerProc {
    let common = gns_common();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(common.iter().map(String::as_str));
    PeerProc::spawn(env!("CARGO_BIN_EXE_gns-peer"), name, &all)
}

/// A GNS server on 127.0.0.1 (port from its LISTENING line) with `args` after `server`.
pub(crate) fn gns_server(args: &[&str]) -> (PeerProc, SocketAddr) {
    let mut all = vec!["server", "--bind", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut p = gns("gns-server", &all);
    let port: u16 = p
        .wait_for("LISTENING", |e| e.kind == "LISTENING")
        .num("port")
        .unwrap();
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A GNS client of `server` running `script`, with `args` after the script.
pub(crate) fn gns_client(server: SocketAddr, script: &str, args: &[&str]) -> PeerProc {
    let addr = server.to_string();
    let mut all = vec!["client", "--connect", &addr, "--script", script];
    all.extend_from_slice(args);
    gns("gns-client", &all)
}

/// One received message, from a GNS `RECV` line or a Sockworks [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    /// Lane index.
    pub lane: u16,
    /// Came reliably.
    pub reliable: bool,
    /// The sender's message number.
    pub num: i64,
    /// Payload bytes.
    pub size: usize,
    /// FNV-1a of the payload.
    pub fnv: String,
    /// The payload is the generated pattern of its length.
    pub pattern: bool,
    /// The payload as text, when it is short UTF-8 (as gns-peer prints it).
    pub text: String,
}

impl Got {
    /// From a `RECV` line.
    pub(crate) fn from_event(e: &Event) -> Self {
        assert_eq!(e.kind, "RECV");
        Got {
            lane: e.num("lane").unwrap(),
            reliable: e.get("reliable") == Some("1"),
            num: e.num("num").unwrap(),
            size: e.num("size").unwrap(),
            fnv: e.get("fnv").unwrap().to_owned(),
            pattern: e.get("pattern") == Some("1"),
            text: e.get("text").unwrap_or("").to_owned(),
        }
    }

    /// From a message Sockworks delivered.
    pub(crate) fn from_msg(m: &Message) -> Self {
        let text = match std::str::from_utf8(&m.data) {
            Ok(s) if s.len() <= 256 && !s.chars().any(char::is_control) => s.to_owned(),
            _ => String::new(),
        };
        Got {
            lane: m.lane,
            reliable: m.flags & send_flags::RELIABLE != 0,
            num: m.message_number,
            size: m.data.len(),
            fnv: fnv_hex(&m.data),
            pattern: is_pattern(&m.data),
            text,
        }
    }

    /// Whether this is the generated payload of `size` bytes (checked by checksum too).
    pub(crate) fn is_pattern_of(&self, size: usize) -> bool {
        self.size == size && self.pattern && self.fnv == fnv_hex(&pattern(size))
    }
}

/// Reads the peer's lines until `n` events seen so far satisfy `pred`.
pub(crate) fn wait_count(p: &mut PeerProc, what: &str, n: usize, pred: impl Fn(&Event) -> bool) {
    let already = p.seen.iter().filter(|e| pred(e)).count();
    if already >= n {
        return;
    }
    let count = std::cell::Cell::new(already);
    p.wait_for(what, |e| {
        if pred(e) {
            count.set(count.get() + 1);
        }
        count.get() >= n
    });
}

/// What a GNS peer received, in order.
pub(crate) fn gns_got(p: &PeerProc) -> Vec<Got> {
    p.of_kind("RECV").into_iter().map(Got::from_event).collect()
}

/// The reliable messages of one lane, in delivery order.
pub(crate) fn reliable_on(got: &[Got], lane: u16) -> Vec<Got> {
    got.iter()
        .filter(|g| g.reliable && g.lane == lane)
        .cloned()
        .collect()
}

/// What a Sockworks server does with a connection request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// AcceptConnection.
    Accept,
    /// CloseConnection(1234, "refused") instead of accepting.
    Refuse,
}

/// Status changes seen by `run_callbacks`.
pub(crate) type Seen = Arc<Mutex<Vec<StatusChanged>>>;

/// A Sockworks instance driven from the test thread: status callbacks, accepting, receiving,
/// echoing and a send queue that waits out a full send buffer in order.
pub(crate) struct Sw {
    /// The instance.
    pub s: Sockets,
    seen: Seen,
    handled: usize,
    /// What to do with incoming connections.
    pub incoming: Incoming,
    /// Send every received message back on its lane with its reliability.
    pub echo: bool,
    /// Lanes (priorities, weights) configured on every accepted or opened connection.
    pub lanes: Option<(Vec<i32>, Vec<u16>)>,
    /// Connections accepted or opened.
    pub conns: Vec<Connection>,
    /// Every message received, in delivery order.
    pub got: Vec<Message>,
    outq: VecDeque<OutMessage>,
    /// Sends that failed with something other than LimitExceeded.
    pub send_errors: Vec<i64>,
}

impl Sw {
    /// An instance with `shards` shard threads and `globals` set at global scope (plus the
    /// rate and send buffer of [`RATE`] and [`SEND_BUFFER`]).
    pub(crate) fn new(shards: usize, globals: &[ConfigValue]) -> Self {
        let s = Sockets::with_config(SocketsConfig {
            shards,
            seed: Some(11),
            ..SocketsConfig::default()
        })
        .expect("sockworks instance");
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        assert!(
            s.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
                move |ev: &StatusChanged| sink.lock().unwrap().push(ev.clone())
            )))
        );
        for v in [
            ConfigValue::SendRateMin(RATE),
            ConfigValue::SendRateMax(RATE),
            ConfigValue::SendBufferSize(SEND_BUFFER),
        ]
        .iter()
        .chain(globals)
        {
            assert!(s.set_global_config_value(v), "global {v:?}");
        }
        Sw {
            s,
            seen,
            handled: 0,
            incoming: Incoming::Accept,
            echo: false,
            lanes: None,
            conns: Vec::new(),
            got: Vec::new(),
            outq: VecDeque::new(),
            send_errors: Vec::new(),
        }
    }

    /// Listens on 127.0.0.1 (a free port) and returns the address.
    pub(crate) fn listen(&self, options: &[ConfigValue]) -> SocketAddr {
        let l = self
            .s
            .create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), options);
        assert_ne!(l, ListenSocket::INVALID);
        self.s.get_listen_socket_address(l).unwrap()
    }

    /// Connects to `server` (lanes configured at once when set).
    pub(crate) fn connect(&mut self, server: SocketAddr, options: &[ConfigValue]) -> Connection {
        let c = self.s.connect_by_ip_address(server, options);
        assert_ne!(c, Connection::INVALID);
        self.configure(c);
        self.conns.push(c);
        c
    }

    fn configure(&self, c: Connection) {
        if let Some((p, w)) = &self.lanes {
            assert_eq!(self.s.configure_connection_lanes(c, p, w), EResult::Ok);
        }
    }

    /// Queues a message; it is handed to Sockworks in order as the send buffer allows.
    pub(crate) fn send(&mut self, conn: Connection, lane: u16, flags: i32, data: Vec<u8>) {
        self.outq.push_back(OutMessage {
            conn,
            data,
            flags,
            lane,
        });
        self.flush_queue();
    }

    /// Whether everything queued with [`Sw::send`] was accepted by Sockworks.
    pub(crate) fn queue_empty(&self) -> bool {
        self.outq.is_empty()
    }

    fn flush_queue(&mut self) {
        while let Some(m) = self.outq.front() {
            let r = self.s.send_messages(vec![m.clone()])[0];
            if r == -i64::from(EResult::LimitExceeded.code()) {
                return;
            }
            if r <= 0 {
                self.send_errors.push(r);
            }
            self.outq.pop_front();
        }
    }

    /// Runs callbacks, accepts or refuses new connections, receives (and echoes); true if
    /// anything happened.
    pub(crate) fn pump(&mut self) -> bool {
        self.s.run_callbacks();
        let events: Vec<StatusChanged> = self.seen.lock().unwrap()[self.handled..].to_vec();
        self.handled += events.len();
        let mut busy = !events.is_empty();
        for ev in events {
            let incoming = ev.info.state == ConnectionState::Connecting
                && ev.info.listen_socket != ListenSocket::INVALID
                && !self.conns.contains(&ev.conn);
            if incoming {
                match self.incoming {
                    Incoming::Accept => {
                        assert_eq!(self.s.accept_connection(ev.conn), EResult::Ok);
                        self.configure(ev.conn);
                        self.conns.push(ev.conn);
                    }
                    Incoming::Refuse => {
                        assert!(self.s.close_connection(ev.conn, 1234, "refused", false));
                    }
                }
            }
        }
        for &c in &self.conns {
            let before = self.got.len();
            self.s
                .receive_messages_on_connection(c, &mut self.got, 1024);
            busy |= self.got.len() > before;
            if self.echo {
                for m in &self.got[before..] {
                    self.outq.push_back(OutMessage {
                        conn: c,
                        data: m.data.clone(),
                        flags: m.flags & send_flags::RELIABLE,
                        lane: m.lane,
                    });
                }
            }
        }
        self.flush_queue();
        busy
    }

    /// Pumps until `done` holds (true) or `timeout` passes (false).
    pub(crate) fn pump_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let watch = Stopwatch::start();
        loop {
            let seen = self.s.activity();
            let busy = self.pump();
            if done(self) {
                return true;
            }
            if watch.elapsed() >= timeout {
                return false;
            }
            if !busy {
                // Until something arrives; at most a millisecond, since a full send buffer
                // drains (acks) without any activity to report.
                self.s.wait_for_activity(seen, Duration::from_millis(1));
            }
        }
    }

    /// Pumps for `duration`.
    pub(crate) fn pump_for(&mut self, duration: Duration) {
        self.pump_until(duration, |_| false);
    }

    /// Every status change seen so far.
    pub(crate) fn events(&self) -> Vec<StatusChanged> {
        self.seen.lock().unwrap().clone()
    }

    /// The states `conn` went through, in order, as the callbacks reported them.
    pub(crate) fn states(&self, conn: Connection) -> Vec<ConnectionState> {
        self.events()
            .iter()
            .filter(|e| e.conn == conn)
            .map(|e| e.info.state)
            .collect()
    }

    /// The first status change of any connection into `state`.
    pub(crate) fn first(&self, state: ConnectionState) -> Option<StatusChanged> {
        self.events().into_iter().find(|e| e.info.state == state)
    }

    /// What was received, as [`Got`] records.
    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.iter().map(Got::from_msg).collect()
    }
}

/// A stopwatch on the shard clock (tests may not read `Instant::now` directly).
pub(crate) struct Stopwatch {
    clock: Clock,
    start: Timestamp,
}

impl Stopwatch {
    /// Starts now.
    pub(crate) fn start() -> Self {
        let clock = Clock::new();
        let start = clock.now();
        Stopwatch { clock, start }
    }

    /// Time since [`Stopwatch::start`].
    pub(crate) fn elapsed(&self) -> Duration {
        self.clock.now().saturating_since(self.start)
    }
}
