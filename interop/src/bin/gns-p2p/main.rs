//! `gns-p2p`: a real Valve GameNetworkingSockets P2P peer for interop tests: custom signaling
//! through the file-system relay of `sockworks_interop::signal_relay`, GNS's native ICE
//! (host, STUN server-reflexive and TURN relay candidates), one connection, an echo exchange.
//!
//! The command line is `sockworks_interop::p2p_cli::P2pArgs`; the output lines, the success
//! rules and the exit codes are in `--help` (`P2P_AFTER_HELP`), shared with any other peer
//! binary that the P2P tests pair with this one. One process is one GNS instance.

mod ffi;

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use clap::Parser as _;
use gns::sys::{
    EResult, ESteamNetworkingConfigValue as Cfg, ESteamNetworkingConnectionState as State,
    HSteamNetConnection, ISteamNetworkingConnectionSignaling, SteamNetworkingIdentity,
};
use sockworks_interop::p2p_cli::{P2pArgs, message_payload};
use sockworks_interop::signal_relay::{SignalEndpoint, peer_name};

use ffi::{Gns, RecvHandler, SignalCtx, c_text, identity_string, socket_addr};

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
    reason = "a live GNS peer runs on wall-clock deadlines"
)]
fn now() -> Instant {
    Instant::now()
}

/// How long to keep GNS running after success before closing, so the last acks go out.
const SETTLE: Duration = Duration::from_millis(200);
/// How long to keep GNS running after our close.
const DRAIN: Duration = Duration::from_millis(300);
/// App close reasons.
const REASON_DONE: i32 = 1000;
const REASON_FAILED: i32 = 2000;
const REASON_REJECTED: i32 = 1234;

fn state_name(s: State) -> &'static str {
    match s {
        State::k_ESteamNetworkingConnectionState_None => "None",
        State::k_ESteamNetworkingConnectionState_Connecting => "Connecting",
        State::k_ESteamNetworkingConnectionState_FindingRoute => "FindingRoute",
        State::k_ESteamNetworkingConnectionState_Connected => "Connected",
        State::k_ESteamNetworkingConnectionState_ClosedByPeer => "ClosedByPeer",
        State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => "ProblemDetectedLocally",
        State::k_ESteamNetworkingConnectionState_FinWait => "FinWait",
        State::k_ESteamNetworkingConnectionState_Linger => "Linger",
        State::k_ESteamNetworkingConnectionState_Dead => "Dead",
        State::k_ESteamNetworkingConnectionState__Force32Bit => "Invalid",
    }
}

/// The one connection this peer cares about.
struct Conn {
    handle: HSteamNetConnection,
    id: u32,
    /// When the connect call returned (connector) or the request arrived (listener).
    since: Instant,
    connected_ms: Option<u128>,
    /// Messages still to send (connector: originals; listener: echoes).
    outbox: VecDeque<Vec<u8>>,
    sent: u32,
    /// Intact messages (listener) or echoes (connector) received, in order.
    good: u32,
    mismatch: bool,
    /// The connection ended (ClosedByPeer or ProblemDetectedLocally).
    ended: bool,
}

/// Peer state; also the receive-context handler for incoming signals.
struct Peer {
    gns: Gns,
    args: P2pArgs,
    ep: SignalEndpoint,
    log: Option<Sender<(String, usize)>>,
    ids: HashMap<HSteamNetConnection, u32>,
    conn: Option<Conn>,
    rejected: u32,
    /// The peer name of the signal being processed (where replies go).
    from: String,
}

impl Peer {
    fn id_of(&mut self, h: HSteamNetConnection) -> u32 {
        let next = u32::try_from(self.ids.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        *self.ids.entry(h).or_insert(next)
    }

    fn signaling(&self, to: &str) -> *mut ISteamNetworkingConnectionSignaling {
        let ep = match self.ep.try_clone() {
            Ok(ep) => ep,
            Err(e) => {
                eprintln!("gns-p2p: cloning the signal socket: {e}");
                return std::ptr::null_mut();
            }
        };
        ffi::signaling(SignalCtx {
            ep,
            to: to.to_owned(),
            log: self.log.clone(),
        })
    }

    fn new_conn(&mut self, handle: HSteamNetConnection) -> u32 {
        let id = self.id_of(handle);
        self.conn = Some(Conn {
            handle,
            id,
            since: now(),
            connected_ms: None,
            outbox: VecDeque::new(),
            sent: 0,
            good: 0,
            mismatch: false,
            ended: false,
        });
        id
    }

    fn is_listener(&self) -> bool {
        self.args.listen.is_some()
    }

    /// Sends what the outbox holds until GNS pushes back.
    fn flush_outbox(&mut self) {
        let gns = self.gns;
        let Some(c) = self
            .conn
            .as_mut()
            .filter(|c| c.connected_ms.is_some() && !c.ended)
        else {
            return;
        };
        while let Some(m) = c.outbox.front() {
            match gns.send_reliable(c.handle, m) {
                EResult::k_EResultOK => {
                    c.outbox.pop_front();
                    c.sent += 1;
                }
                EResult::k_EResultLimitExceeded => break,
                r => {
                    emit!("SEND_FAILED conn={} result={r:?}", c.id);
                    c.ended = true;
                    break;
                }
            }
        }
    }

    /// Receives and checks messages; the listener queues echoes.
    fn pump_messages(&mut self) {
        let gns = self.gns;
        let listener = self.is_listener();
        let size = self.args.size;
        let Some(c) = self.conn.as_mut() else { return };
        for m in gns.receive(c.handle) {
            if !c.mismatch && m == message_payload(c.good, size) {
                c.good += 1;
            } else if !c.mismatch {
                emit!("MISMATCH conn={} index={} size={}", c.id, c.good, m.len());
                c.mismatch = true;
            }
            if listener {
                c.outbox.push_back(m);
            }
        }
    }

    fn on_status(&mut self, ev: &gns::sys::SteamNetConnectionStatusChangedCallback_t) {
        let id = self.id_of(ev.m_hConn);
        let info = &ev.m_info;
        let remote = socket_addr(&info.m_addrRemote);
        emit!(
            "STATUS conn={id} old={} new={} reason={} debug={:?} remote={remote}",
            state_name(ev.m_eOldState),
            state_name(info.m_eState),
            info.m_eEndReason,
            c_text(&info.m_szEndDebug),
        );
        let ours = self.conn.as_ref().is_some_and(|c| c.handle == ev.m_hConn);
        match info.m_eState {
            State::k_ESteamNetworkingConnectionState_Connecting
                if self.is_listener() && ours && !self.args.reject =>
            {
                match self.gns.accept(ev.m_hConn) {
                    Ok(()) => emit!("ACCEPTED conn={id}"),
                    Err(r) => emit!("ACCEPT_FAILED conn={id} result={r}"),
                }
            }
            State::k_ESteamNetworkingConnectionState_Connected if ours => {
                let n = self.args.messages;
                let size = self.args.size;
                let listener = self.is_listener();
                let c = self.conn.as_mut().expect("ours");
                let ms = c.since.elapsed().as_millis();
                c.connected_ms = Some(ms);
                emit!(
                    "CONNECTED conn={id} ms={ms} remote={remote} flags={}",
                    info.m_nFlags
                );
                if !listener {
                    c.outbox.extend((0..n).map(|k| message_payload(k, size)));
                }
            }
            State::k_ESteamNetworkingConnectionState_ClosedByPeer
            | State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => {
                if ours {
                    self.pump_messages();
                    if let Some(c) = self.conn.as_mut() {
                        c.ended = true;
                    }
                }
                // Frees the handle; GNS keeps the connection in FinWait for a while.
                self.gns.close(ev.m_hConn, 0, "", false);
            }
            _ => {}
        }
    }

    /// Whether the run succeeded (`Some(true)`), failed for good (`Some(false)`), or goes on.
    fn verdict(&self) -> Option<bool> {
        let n = self.args.messages;
        let c = self.conn.as_ref()?;
        if self.is_listener() {
            let all_in = c.connected_ms.is_some() && c.good == n && c.sent == n && !c.mismatch;
            if all_in && (c.ended || self.gns.all_acked(c.handle)) {
                return Some(true);
            }
            // Listener without --messages: a connection that came and went is the result.
            (c.ended && (n == 0 || !all_in)).then_some(n == 0 && c.connected_ms.is_some())
        } else {
            if c.connected_ms.is_some() && c.good == n && c.sent == n {
                return Some(true);
            }
            (c.ended || c.mismatch).then_some(false)
        }
    }

    /// Runs GNS (callbacks, signals, messages) for `d`.
    fn run_for(&mut self, d: Duration, log_rx: &Receiver<(String, usize)>) {
        let until = now() + d;
        while now() < until {
            self.step(log_rx);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// One turn of the main loop.
    fn step(&mut self, log_rx: &Receiver<(String, usize)>) {
        loop {
            match self.ep.try_recv() {
                Ok(Some((from, signal))) => {
                    if self.args.verbose {
                        emit!("SIGNAL dir=in bytes={} peer={from}", signal.len());
                    }
                    self.from = from;
                    let gns = self.gns;
                    if !gns.received_signal(&signal, self) {
                        eprintln!("gns-p2p: ReceivedP2PCustomSignal2 returned false");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("gns-p2p: signal socket: {e}");
                    break;
                }
            }
        }
        for ev in self.gns.run_callbacks() {
            self.on_status(&ev);
        }
        self.pump_messages();
        self.flush_outbox();
        while let Ok((peer, bytes)) = log_rx.try_recv() {
            emit!("SIGNAL dir=out bytes={bytes} peer={peer}");
        }
    }

    /// Prints RESULT and exits.
    fn finish(&mut self, ok: bool, code: i32, log_rx: &Receiver<(String, usize)>) -> ! {
        if let Some(c) = self.conn.as_ref().filter(|c| !c.ended) {
            let (h, reason) = (c.handle, if ok { REASON_DONE } else { REASON_FAILED });
            if ok {
                self.run_for(SETTLE, log_rx);
            }
            self.gns
                .close(h, reason, if ok { "done" } else { "failed" }, false);
            self.run_for(DRAIN, log_rx);
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

impl RecvHandler for Peer {
    fn on_connect_request(
        &mut self,
        conn: HSteamNetConnection,
        peer: &SteamNetworkingIdentity,
        vport: i32,
    ) -> *mut ISteamNetworkingConnectionSignaling {
        let who = identity_string(peer);
        if !self.is_listener() || (self.conn.is_some() && !self.args.reject) {
            // One connection per run; a second request (or one to a connector) is ignored.
            eprintln!("gns-p2p: ignoring connect request from {who}");
            return std::ptr::null_mut();
        }
        let id = self.id_of(conn);
        emit!("REQUEST conn={id} identity={who:?} vport={vport}");
        if self.args.reject {
            self.rejected += 1;
            self.gns.close(conn, REASON_REJECTED, "rejected", false);
            emit!("REJECTED conn={id} identity={who:?}");
            return std::ptr::null_mut();
        }
        self.new_conn(conn);
        let to = self.from.clone();
        self.signaling(&to)
    }

    fn send_rejection(&mut self, to: &str, signal: &[u8]) {
        if self.args.verbose {
            emit!(
                "SIGNAL dir=out bytes={} peer={to} rejection=1",
                signal.len()
            );
        }
        let _ = self.ep.send(to, signal);
    }
}

/// Applies the ICE/timeout switches as GNS global config.
fn configure(gns: Gns, a: &P2pArgs) -> Result<(), String> {
    let mut ok = true;
    if let Some(mask) = a.ice_enable {
        ok &= gns.set_int(Cfg::k_ESteamNetworkingConfig_P2P_Transport_ICE_Enable, mask);
    }
    if let Some(ms) = a.timeout_initial_ms {
        ok &= gns.set_int(Cfg::k_ESteamNetworkingConfig_TimeoutInitial, ms);
    }
    if let Some(s) = &a.stun {
        ok &= gns.set_str(Cfg::k_ESteamNetworkingConfig_P2P_STUN_ServerList, s);
    }
    if let Some(s) = &a.turn {
        ok &= gns.set_str(Cfg::k_ESteamNetworkingConfig_P2P_TURN_ServerList, s);
    }
    if let Some(s) = &a.turn_user {
        ok &= gns.set_str(Cfg::k_ESteamNetworkingConfig_P2P_TURN_UserList, s);
    }
    if let Some(s) = &a.turn_pass {
        ok &= gns.set_str(Cfg::k_ESteamNetworkingConfig_P2P_TURN_PassList, s);
    }
    if a.trace {
        ok &= gns.set_int(Cfg::k_ESteamNetworkingConfig_LogLevel_P2PRendezvous, 7);
    }
    if ok {
        Ok(())
    } else {
        Err("a GNS config value was refused".to_owned())
    }
}

fn fail_early(why: &str) -> ! {
    eprintln!("gns-p2p: {why}");
    emit!("RESULT sent=0 echoed=0 ok=0 setup_ms=-1");
    std::process::exit(1);
}

fn main() {
    let args = P2pArgs::parse();
    let started = now();
    let _ = ffi::START.set(started);
    let deadline = started + Duration::from_secs(args.max_seconds);
    let watchdog = Duration::from_secs(args.max_seconds) + Duration::from_secs(5);
    std::thread::spawn(move || {
        std::thread::sleep(watchdog);
        emit!("RESULT sent=0 echoed=0 ok=0 setup_ms=-1 watchdog=1");
        std::process::exit(4);
    });

    let Some(me) = ffi::parse_identity(&args.identity) else {
        fail_early(&format!("bad --identity {:?}", args.identity))
    };
    let ep = SignalEndpoint::bind(&args.signal_dir, peer_name(&args.identity))
        .unwrap_or_else(|e| fail_early(&format!("binding the signal socket: {e}")));
    let gns = Gns::init(&me, args.trace)
        .unwrap_or_else(|e| fail_early(&format!("GameNetworkingSockets_Init: {e}")));
    if let Err(e) = configure(gns, &args) {
        fail_early(&e);
    }
    let (log_tx, log_rx) = mpsc::channel();
    let mut peer = Peer {
        gns,
        log: args.verbose.then_some(log_tx),
        args: args.clone(),
        ep,
        ids: HashMap::new(),
        conn: None,
        rejected: 0,
        from: String::new(),
    };

    if let Some(vport) = args.listen {
        if gns.listen_p2p(vport).is_none() {
            fail_early(&format!("CreateListenSocketP2P({vport}) failed"));
        }
        emit!("LISTENING identity={:?} vport={vport}", args.identity);
    } else if let (Some(remote), Some(vport)) = (&args.connect, args.vport) {
        let Some(them) = ffi::parse_identity(remote) else {
            fail_early(&format!("bad --connect {remote:?}"))
        };
        let sig = peer.signaling(peer_name(remote));
        let h = gns.connect_p2p(sig, &them, vport);
        if h == 0 {
            fail_early("ConnectP2PCustomSignaling returned an invalid handle");
        }
        let id = peer.new_conn(h);
        emit!("CONNECTING conn={id} peer={remote:?} vport={vport}");
    }

    loop {
        peer.step(&log_rx);
        if let Some(ok) = peer.verdict() {
            peer.finish(ok, 1, &log_rx);
        }
        if now() >= deadline {
            let ok = peer.args.reject
                && peer.rejected > 0
                && peer.conn.as_ref().is_none_or(|c| c.connected_ms.is_none());
            peer.finish(ok, 3, &log_rx);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
