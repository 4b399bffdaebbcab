//! `sw-p2p`: a Sockworks P2P peer for the P2P tests, with the same command line, output and
//! success rules as `gns-p2p` (`sockworks_interop::p2p_cli`), so the tests can pair any two
//! peers: Sockworks with Sockworks, or with real GNS either way. It uses only the public
//! `sockworks` API: `CreateListenSocketP2P`, `ConnectP2PCustomSignaling`,
//! `ReceivedP2PCustomSignal`, messages and status callbacks.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser as _;
use sockworks::{
    ConfigValue, Connection, ConnectionInfo, ConnectionSignaling, ConnectionState, EResult,
    SignalingRecvContext, Sockets, SocketsConfig, StatusChanged, send_flags,
};
use sockworks_engine::wire::identity::Identity;
use sockworks_interop::p2p_cli::{P2P_AFTER_HELP, P2pArgs, message_payload};
use sockworks_interop::signal_relay::{SignalEndpoint, peer_name};

/// Writes one event line to stdout and flushes it.
macro_rules! emit {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        // A closed stdout must not kill the peer mid-test; nobody is left to tell.
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

#[expect(
    clippy::disallowed_methods,
    reason = "a live peer runs on wall-clock deadlines"
)]
fn now() -> Instant {
    Instant::now()
}

const SETTLE: Duration = Duration::from_millis(200);
const DRAIN: Duration = Duration::from_millis(300);
const REASON_REJECTED: i32 = 1234;

/// Signals to one peer through the test's relay. Called on a shard thread: one `sendto`.
struct RelaySignaling {
    ep: SignalEndpoint,
    to: String,
    verbose: bool,
}

impl ConnectionSignaling for RelaySignaling {
    fn send_signal(&self, _conn: Connection, _info: &ConnectionInfo, msg: &[u8]) -> bool {
        if self.verbose {
            emit!("SIGNAL dir=out bytes={} peer={}", msg.len(), self.to);
        }
        // A full relay queue is a lost signal, which P2P tolerates.
        let _ = self.ep.send(&self.to, msg);
        true
    }
}

fn state_name(s: ConnectionState) -> String {
    format!("{s:?}")
}

/// The one connection this peer cares about.
struct Conn {
    handle: Connection,
    since: Instant,
    connected_ms: Option<u128>,
    outbox: VecDeque<Vec<u8>>,
    sent: u32,
    good: u32,
    mismatch: bool,
    ended: bool,
}

struct Peer {
    sockets: Sockets,
    args: P2pArgs,
    ep: SignalEndpoint,
    conn: Option<Conn>,
    rejected: u32,
    /// Status changes, collected by the callback during `run_callbacks`.
    events: Arc<Mutex<Vec<StatusChanged>>>,
}

/// The receive context of one incoming signal.
struct Ctx<'a> {
    peer: &'a mut Peer,
    from: String,
}

impl SignalingRecvContext for Ctx<'_> {
    fn on_connect_request(
        &mut self,
        conn: Connection,
        who: &Identity,
        vport: i32,
    ) -> Option<Arc<dyn ConnectionSignaling>> {
        let p = &mut *self.peer;
        if p.args.listen.is_none() || (p.conn.is_some() && !p.args.reject) {
            eprintln!("sw-p2p: ignoring connect request from {who}");
            return None;
        }
        emit!(
            "REQUEST conn=1 identity={:?} vport={vport}",
            who.to_string()
        );
        if p.args.reject {
            p.rejected += 1;
            p.sockets
                .close_connection(conn, REASON_REJECTED, "rejected", false);
            emit!("REJECTED conn=1 identity={:?}", who.to_string());
            return None;
        }
        p.conn = Some(new_conn(conn));
        Some(Arc::new(RelaySignaling {
            ep: p.ep.try_clone().ok()?,
            to: self.from.clone(),
            verbose: p.args.verbose,
        }))
    }

    fn send_rejection_signal(&mut self, _peer: &Identity, msg: &[u8]) {
        let _ = self.peer.ep.send(&self.from, msg);
    }
}

fn new_conn(handle: Connection) -> Conn {
    Conn {
        handle,
        since: now(),
        connected_ms: None,
        outbox: VecDeque::new(),
        sent: 0,
        good: 0,
        mismatch: false,
        ended: false,
    }
}

impl Peer {
    fn is_listener(&self) -> bool {
        self.args.listen.is_some()
    }

    fn flush_outbox(&mut self) {
        let Some(c) = self
            .conn
            .as_mut()
            .filter(|c| c.connected_ms.is_some() && !c.ended)
        else {
            return;
        };
        while let Some(m) = c.outbox.front() {
            match self
                .sockets
                .send_message_to_connection(c.handle, m, send_flags::RELIABLE)
            {
                Ok(_) => {
                    c.outbox.pop_front();
                    c.sent += 1;
                }
                Err(EResult::LimitExceeded) => break,
                Err(r) => {
                    emit!("SEND_FAILED conn=1 result={r:?}");
                    c.ended = true;
                    break;
                }
            }
        }
    }

    fn pump_messages(&mut self) {
        let listener = self.is_listener();
        let size = self.args.size;
        let Some(c) = self.conn.as_mut() else { return };
        let mut got = Vec::new();
        self.sockets
            .receive_messages_on_connection(c.handle, &mut got, 256);
        for m in got {
            let data = m.into_data();
            if !c.mismatch && data == message_payload(c.good, size) {
                c.good += 1;
            } else if !c.mismatch {
                emit!("MISMATCH conn=1 index={} size={}", c.good, data.len());
                c.mismatch = true;
            }
            if listener {
                c.outbox.push_back(data);
            }
        }
    }

    fn on_status(&mut self, ev: &StatusChanged) {
        let info = &ev.info;
        emit!(
            "STATUS conn=1 old={} new={} reason={} debug={:?} remote={}",
            state_name(ev.old_state),
            state_name(info.state),
            info.end_reason,
            info.end_debug,
            info.addr_remote,
        );
        let ours = self.conn.as_ref().is_some_and(|c| c.handle == ev.conn);
        match info.state {
            ConnectionState::Connecting if self.is_listener() && ours && !self.args.reject => {
                match self.sockets.accept_connection(ev.conn) {
                    EResult::Ok => emit!("ACCEPTED conn=1"),
                    r => emit!("ACCEPT_FAILED conn=1 result={r:?}"),
                }
            }
            ConnectionState::Connected if ours => {
                let n = self.args.messages;
                let size = self.args.size;
                let listener = self.is_listener();
                // invariant: `ours` says the connection is there.
                let c = self.conn.as_mut().expect("ours");
                let ms = c.since.elapsed().as_millis();
                c.connected_ms = Some(ms);
                emit!(
                    "CONNECTED conn=1 ms={ms} remote={} flags={}",
                    info.addr_remote,
                    info.flags
                );
                if !listener {
                    c.outbox.extend((0..n).map(|k| message_payload(k, size)));
                }
            }
            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                if ours {
                    self.pump_messages();
                    if let Some(c) = self.conn.as_mut() {
                        c.ended = true;
                    }
                }
                self.sockets.close_connection(ev.conn, 0, "", false);
            }
            _ => {}
        }
    }

    fn all_acked(&self, conn: Connection) -> bool {
        self.sockets
            .get_connection_real_time_status(conn, &mut [])
            .is_ok_and(|s| s.pending_reliable == 0 && s.sent_unacked_reliable == 0)
    }

    fn verdict(&self) -> Option<bool> {
        let n = self.args.messages;
        let c = self.conn.as_ref()?;
        if self.is_listener() {
            let all_in = c.connected_ms.is_some() && c.good == n && c.sent == n && !c.mismatch;
            if all_in && (c.ended || self.all_acked(c.handle)) {
                return Some(true);
            }
            (c.ended && (n == 0 || !all_in)).then_some(n == 0 && c.connected_ms.is_some())
        } else {
            if c.connected_ms.is_some() && c.good == n && c.sent == n {
                return Some(true);
            }
            (c.ended || c.mismatch).then_some(false)
        }
    }

    fn step(&mut self) {
        loop {
            match self.ep.try_recv() {
                Ok(Some((from, signal))) => {
                    if self.args.verbose {
                        emit!("SIGNAL dir=in bytes={} peer={from}", signal.len());
                    }
                    let sockets = self.sockets.clone();
                    let mut ctx = Ctx { peer: self, from };
                    if !sockets.received_p2p_custom_signal(&signal, &mut ctx) {
                        eprintln!("sw-p2p: ReceivedP2PCustomSignal returned false");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("sw-p2p: signal socket: {e}");
                    break;
                }
            }
        }
        self.sockets.run_callbacks();
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()));
        for ev in &events {
            self.on_status(ev);
        }
        self.pump_messages();
        self.flush_outbox();
    }

    fn run_for(&mut self, d: Duration) {
        let until = now() + d;
        while now() < until {
            self.step();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn finish(&mut self, ok: bool, code: i32) -> ! {
        if let Some(c) = self.conn.as_ref().filter(|c| !c.ended) {
            let h = c.handle;
            if ok {
                self.run_for(SETTLE);
            }
            self.sockets.close_connection(
                h,
                if ok { 1000 } else { 2000 },
                if ok { "done" } else { "failed" },
                false,
            );
            self.run_for(DRAIN);
        }
        let (sent, good, setup) = self.conn.as_ref().map_or((0, 0, -1), |c| {
            let setup = c
                .connected_ms
                .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
            (c.sent, c.good, setup)
        });
        let rejected = if self.args.reject {
            format!(" rejected={}", self.rejected)
        } else {
            String::new()
        };
        emit!(
            "RESULT sent={sent} echoed={good} ok={} setup_ms={setup}{rejected}",
            u8::from(ok)
        );
        std::process::exit(if ok { 0 } else { code });
    }
}

fn fail_early(why: &str) -> ! {
    eprintln!("sw-p2p: {why}");
    emit!("RESULT sent=0 echoed=0 ok=0 setup_ms=-1");
    std::process::exit(1);
}

/// The P2P switches as global config values.
fn configure(sockets: &Sockets, a: &P2pArgs) -> bool {
    let mut values = Vec::new();
    if let Some(mask) = a.ice_enable {
        values.push(ConfigValue::P2pTransportIceEnable(mask));
    }
    if let Some(ms) = a.timeout_initial_ms {
        values.push(ConfigValue::TimeoutInitial(ms));
    }
    if let Some(s) = &a.stun {
        values.push(ConfigValue::P2pStunServerList(s.clone()));
    }
    if let Some(s) = &a.turn {
        values.push(ConfigValue::P2pTurnServerList(s.clone()));
    }
    if let Some(s) = &a.turn_user {
        values.push(ConfigValue::P2pTurnUserList(s.clone()));
    }
    if let Some(s) = &a.turn_pass {
        values.push(ConfigValue::P2pTurnPassList(s.clone()));
    }
    values.iter().all(|v| sockets.set_global_config_value(v))
}

fn main() {
    let args = match P2pArgs::try_parse_from(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp) {
                println!("{e}\n{P2P_AFTER_HELP}");
                std::process::exit(0);
            }
            e.exit()
        }
    };
    let deadline = now() + Duration::from_secs(args.max_seconds);
    let watchdog = Duration::from_secs(args.max_seconds) + Duration::from_secs(5);
    std::thread::spawn(move || {
        std::thread::sleep(watchdog);
        emit!("RESULT sent=0 echoed=0 ok=0 setup_ms=-1 watchdog=1");
        std::process::exit(4);
    });
    // `--trace` asks the stack for its debug log; Sockworks' comes through `tracing`, which
    // has no subscriber in this binary, so the flag is accepted and the STATUS lines suffice.
    let me = Identity::parse(&args.identity)
        .unwrap_or_else(|_| fail_early(&format!("bad --identity {:?}", args.identity)));
    let ep = SignalEndpoint::bind(&args.signal_dir, peer_name(&args.identity))
        .unwrap_or_else(|e| fail_early(&format!("binding the signal socket: {e}")));
    let config = SocketsConfig {
        shards: 1,
        identity: Some(me),
        ..SocketsConfig::default()
    };
    let sockets =
        Sockets::with_config(config).unwrap_or_else(|e| fail_early(&format!("init: {e}")));
    if !configure(&sockets, &args) {
        fail_early("a config value was refused");
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    sockets.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
        move |ev: &StatusChanged| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(ev.clone());
        },
    )));
    let mut peer = Peer {
        sockets: sockets.clone(),
        args: args.clone(),
        ep,
        conn: None,
        rejected: 0,
        events,
    };
    if let Some(vport) = args.listen {
        if sockets.create_listen_socket_p2p(vport, &[]) == sockworks::ListenSocket::INVALID {
            fail_early(&format!("CreateListenSocketP2P({vport}) failed"));
        }
        emit!("LISTENING identity={:?} vport={vport}", args.identity);
    } else if let (Some(remote), Some(vport)) = (&args.connect, args.vport) {
        let them = Identity::parse(remote)
            .unwrap_or_else(|_| fail_early(&format!("bad --connect {remote:?}")));
        let signaling = Arc::new(RelaySignaling {
            ep: peer
                .ep
                .try_clone()
                .unwrap_or_else(|e| fail_early(&format!("cloning the signal socket: {e}"))),
            to: peer_name(remote).to_owned(),
            verbose: args.verbose,
        });
        let h = sockets.connect_p2p_custom_signaling(signaling, Some(&them), vport, &[]);
        if h == Connection::INVALID {
            fail_early("ConnectP2PCustomSignaling returned an invalid handle");
        }
        peer.conn = Some(new_conn(h));
        emit!("CONNECTING conn=1 peer={remote:?} vport={vport}");
    }
    loop {
        peer.step();
        if let Some(ok) = peer.verdict() {
            peer.finish(ok, 1);
        }
        if now() >= deadline {
            let ok = peer.args.reject
                && peer.rejected > 0
                && peer.conn.as_ref().is_none_or(|c| c.connected_ms.is_none());
            peer.finish(ok, 3);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
