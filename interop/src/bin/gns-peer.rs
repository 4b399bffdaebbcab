//! `gns-peer`: a real Valve GameNetworkingSockets endpoint, scriptable from the command line,
//! for interop tests. One process is one GNS instance (GNS keeps global state per process).
//!
//! Everything observable goes to stdout, one event per line (format in `AFTER_HELP` and in
//! `sockworks_interop::events`); GNS's own debug output goes to stderr.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use clap::{Args, Parser, Subcommand};
use gns::sys::{
    EResult, ESteamNetworkingConfigValue as Cfg, ESteamNetworkingConnectionState as State,
    ESteamNetworkingSocketsDebugOutputType as DebugType,
};
use gns::{
    GnsConfig, GnsConnection, GnsGlobal, GnsLane, GnsNetworkMessage, GnsResult, GnsSocket,
    IsCreated, IsReady, IsServer, SendFlags, SendOutcome, ToReceive, ToSend,
};
use sockworks_interop::payload::{fnv_hex, is_pattern, pattern};
use sockworks_interop::script::{SCRIPT_HELP, SendMode, Step, parse_lanes, parse_script};

const AFTER_HELP: &str = "\
OUTPUT (stdout, one event per line, flushed): KIND key=value ...; a value is a bare token or a
Rust-escaped \"string\". conn= is gns-peer's own connection number (1, 2, ... in order of first
sight), not the GNS handle. reliable= and pattern= are 0/1.
  CONFIG key=NAME value=V                 a GNS global config value that was set
  LISTENING addr=IP port=PORT             server: the bound address (port 0 resolved)
  CONNECTING conn=1 addr=IP:PORT          client: ConnectByIPAddress returned
  STATUS conn=C old=S new=S reason=N debug=\"..\" remote=IP:PORT
                                          every connection-status callback; S is None,
                                          Connecting, FindingRoute, Connected, ClosedByPeer,
                                          ProblemDetectedLocally, FinWait, Linger or Dead
  ACCEPTED conn=C | REFUSED conn=C reason=1234 debug=\"refused\" | ACCEPT_FAILED conn=C error=..
  LANES conn=C n=N                        ConfigureConnectionLanes succeeded
  RECV conn=C lane=L reliable=B num=N size=BYTES fnv=HEX16 pattern=B text=\"..\"
                                          text is the payload when it is UTF-8 of <= 256 bytes,
                                          else \"\"; fnv is 64-bit FNV-1a; pattern=1 when the
                                          payload is the generated one (byte i = i % 251)
  SENT conn=C lane=L reliable=B num=N size=BYTES fnv=HEX16 echo=B
  SEND_FAILED conn=C lane=L result=ERESULT
  STEP i=I text=\"..\"                      a script step starts (I counts from 0)
  EXPECT_OK want=N got=M | SENT_ALL conn=C | STATS conn=C ping=MS ... | PEER_CLOSED conn=C
  CLOSE conn=C reason=N debug=\"..\" linger=B   we called CloseConnection
  CLOSED conn=C state=S reason=N debug=\"..\"   the connection ended (peer or problem)
  FAIL reason=\"..\"                        a step failed (the connection is then closed with
                                          2000 \"script failed\")
  DEADLINE                                --max-seconds reached
  DONE ok=B received=N sent=N             last line; exit code 0 iff ok=1 (3 at the deadline
                                          with a client or --once)

Fake network conditions (--loss-*, --lag-*, --reorder-*, --dup-*) are GNS global settings and
apply to every packet this process sends or receives.";

/// A real GNS peer for Sockworks interop tests.
#[derive(Parser, Debug)]
#[command(name = "gns-peer", version, after_help = format!("{SCRIPT_HELP}\n\n{AFTER_HELP}"))]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Listen, accept (or refuse) connections, optionally echo and run a script.
    Server {
        /// Address to listen on; port 0 picks a free port (see the LISTENING line).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// Close each incoming connection with reason 1234, debug "refused", instead of
        /// accepting it.
        #[arg(long)]
        refuse: bool,
        /// Send every received message back on its connection, same lane and reliability.
        #[arg(long)]
        echo: bool,
        /// Exit (after --drain-ms) once the first connection has ended.
        #[arg(long)]
        once: bool,
        /// Script to run on the first connection once it is Connected.
        #[arg(long, default_value = "")]
        script: String,
    },
    /// Connect, wait for Connected, run the script, close.
    Client {
        /// The server's address.
        #[arg(long)]
        connect: SocketAddr,
        /// Steps to run once connected (see SCRIPT below).
        #[arg(long, default_value = "")]
        script: String,
        /// Send every received message back, same lane and reliability.
        #[arg(long)]
        echo: bool,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// Lanes as "prio:weight,prio:weight,..." (ConfigureConnectionLanes once Connected).
    #[arg(long, global = true)]
    lanes: Option<String>,
    /// FakePacketLoss_Send, percent 0-100.
    #[arg(long, global = true)]
    loss_send: Option<f32>,
    /// FakePacketLoss_Recv, percent 0-100.
    #[arg(long, global = true)]
    loss_recv: Option<f32>,
    /// FakePacketLag_Send, milliseconds.
    #[arg(long, global = true)]
    lag_send: Option<i32>,
    /// FakePacketLag_Recv, milliseconds.
    #[arg(long, global = true)]
    lag_recv: Option<i32>,
    /// FakePacketReorder_Send, percent 0-100 (needs --reorder-time).
    #[arg(long, global = true)]
    reorder_send: Option<f32>,
    /// FakePacketReorder_Recv, percent 0-100 (needs --reorder-time).
    #[arg(long, global = true)]
    reorder_recv: Option<f32>,
    /// FakePacketReorder_Time, milliseconds of extra delay for reordered packets.
    #[arg(long, global = true)]
    reorder_time: Option<i32>,
    /// FakePacketDup_Send, percent 0-100.
    #[arg(long, global = true)]
    dup_send: Option<f32>,
    /// FakePacketDup_Recv, percent 0-100.
    #[arg(long, global = true)]
    dup_recv: Option<f32>,
    /// FakePacketDup_TimeMax, milliseconds (duplicates are delayed up to this).
    #[arg(long, global = true)]
    dup_time_max: Option<i32>,
    /// NagleTime, microseconds.
    #[arg(long, global = true)]
    nagle_us: Option<i32>,
    /// SendRateMin = SendRateMax, bytes per second.
    #[arg(long, global = true)]
    send_rate: Option<i32>,
    /// SendBufferSize, bytes (GNS default 524288).
    #[arg(long, global = true)]
    send_buffer: Option<i32>,
    /// TimeoutInitial, milliseconds.
    #[arg(long, global = true)]
    timeout_initial_ms: Option<i32>,
    /// TimeoutConnected, milliseconds.
    #[arg(long, global = true)]
    timeout_connected_ms: Option<i32>,
    /// GNS debug output at Verbose to stderr, plus a packet trace (PacketTraceMaxBytes).
    #[arg(long, global = true)]
    trace: bool,
    /// With --trace: payload bytes dumped per traced packet (PacketTraceMaxBytes, default 0).
    #[arg(long, global = true, default_value_t = 0)]
    trace_bytes: i32,
    /// Hard bound on the run; the process always exits by itself.
    #[arg(long, global = true, default_value_t = 30)]
    max_seconds: u64,
    /// How long to keep GNS running after the last close so close packets go out
    /// (default 250 ms plus twice --lag-send).
    #[arg(long, global = true)]
    drain_ms: Option<u64>,
}

/// Writes one event line to stdout and flushes it.
macro_rules! emit {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        // A closed stdout must not kill the peer mid-test; there is nobody left to tell.
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

fn state_name(state: State) -> &'static str {
    match state {
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

fn result_name(result: EResult) -> String {
    let name = format!("{result:?}");
    name.strip_prefix("k_EResult").unwrap_or(&name).to_owned()
}

fn send_flags(mode: SendMode) -> SendFlags {
    let mut flags = if mode.reliable {
        SendFlags::RELIABLE
    } else {
        SendFlags::UNRELIABLE
    };
    if mode.no_nagle {
        flags |= SendFlags::NO_NAGLE;
    }
    if mode.no_delay {
        flags |= SendFlags::NO_DELAY;
    }
    flags
}

#[expect(
    clippy::disallowed_methods,
    reason = "a live GNS peer runs on wall-clock deadlines"
)]
fn now() -> Instant {
    Instant::now()
}

/// `AcceptConnection` plus joining the poll group (a server's; a client has none).
type AcceptFn<S> = fn(&GnsSocket<S>, GnsConnection) -> GnsResult<()>;

/// The run hit `--max-seconds`.
#[derive(Debug)]
struct DeadlineHit;

/// One GNS socket (listen socket or client connection) and what the peer saw on it.
struct Peer<S: IsReady> {
    socket: GnsSocket<S>,
    global: &'static GnsGlobal,
    /// `AcceptConnection` + poll group; `None` for a client.
    accept: Option<AcceptFn<S>>,
    refuse: bool,
    echo: bool,
    lanes: Vec<GnsLane>,
    deadline: Instant,
    ids: HashMap<GnsConnection, u32>,
    /// Connections that reached Connected and have not ended or been closed by us.
    open: Vec<(u32, GnsConnection)>,
    /// Connections that ended (closed by the peer, a local problem, or refused).
    ended: HashSet<u32>,
    received: u64,
    sent: u64,
}

impl<S: IsReady> Peer<S> {
    fn id_of(&mut self, conn: GnsConnection) -> u32 {
        let next = u32::try_from(self.ids.len() + 1).unwrap_or(u32::MAX);
        *self.ids.entry(conn).or_insert(next)
    }

    fn is_open(&self, id: u32) -> bool {
        self.open.iter().any(|&(i, _)| i == id)
    }

    /// Runs GNS callbacks, then handles every queued status change and message.
    fn pump(&mut self) -> Result<bool, DeadlineHit> {
        if now() >= self.deadline {
            return Err(DeadlineHit);
        }
        self.global.poll_callbacks();
        let events: Vec<_> = self.socket.receive_events().collect();
        let mut busy = !events.is_empty();
        for event in events {
            self.on_status(event.connection(), event.old_state(), event.info());
        }
        loop {
            // After our own close of a client's only connection this fails: nothing to read.
            let Ok(batch) = self.socket.receive_messages::<64>() else {
                break;
            };
            let messages: Vec<GnsNetworkMessage<ToReceive>> = batch.collect();
            if messages.is_empty() {
                break;
            }
            busy = true;
            for message in messages {
                self.on_message(&message);
            }
        }
        Ok(busy)
    }

    /// Pumps until `done` holds (true) or `timeout` passes (false).
    fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, DeadlineHit> {
        let until = now().checked_add(timeout).unwrap_or(self.deadline);
        loop {
            if done(self) {
                return Ok(true);
            }
            if now() >= until {
                return Ok(false);
            }
            if !self.pump()? {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn on_status(&mut self, conn: GnsConnection, old: State, info: gns::GnsConnectionInfo) {
        let id = self.id_of(conn);
        let new = info.state();
        let remote = SocketAddr::new(info.remote_address(), info.remote_port());
        emit!(
            "STATUS conn={id} old={} new={} reason={} debug={:?} remote={remote}",
            state_name(old),
            state_name(new),
            info.end_reason(),
            info.end_debug()
        );
        match new {
            State::k_ESteamNetworkingConnectionState_Connecting => {
                let Some(accept) = self.accept else { return };
                if self.refuse {
                    let debug = c"refused";
                    let _ = self.socket.close_connection(conn, 1234, Some(debug), false);
                    emit!("REFUSED conn={id} reason=1234 debug=\"refused\"");
                    self.ended.insert(id);
                } else {
                    match accept(&self.socket, conn) {
                        Ok(()) => emit!("ACCEPTED conn={id}"),
                        Err(e) => emit!("ACCEPT_FAILED conn={id} error={:?}", e.to_string()),
                    }
                }
            }
            State::k_ESteamNetworkingConnectionState_Connected => {
                if !self.lanes.is_empty() {
                    self.configure_lanes(id, conn);
                }
                if !self.is_open(id) {
                    self.open.push((id, conn));
                }
            }
            State::k_ESteamNetworkingConnectionState_ClosedByPeer
            | State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => {
                emit!(
                    "CLOSED conn={id} state={} reason={} debug={:?}",
                    state_name(new),
                    info.end_reason(),
                    info.end_debug()
                );
                // GNS keeps the handle until the application closes it.
                let _ = self.socket.close_connection(conn, 0, None, false);
                self.open.retain(|&(i, _)| i != id);
                self.ended.insert(id);
            }
            _ => {}
        }
    }

    fn configure_lanes(&self, id: u32, conn: GnsConnection) -> bool {
        match self.socket.configure_connection_lanes(conn, &self.lanes) {
            Ok(()) => {
                emit!("LANES conn={id} n={}", self.lanes.len());
                true
            }
            Err(e) => {
                emit!("LANES_FAILED conn={id} error={:?}", e.to_string());
                false
            }
        }
    }

    fn on_message(&mut self, message: &GnsNetworkMessage<ToReceive>) {
        self.received += 1;
        let conn = message.connection();
        let id = self.id_of(conn);
        let payload = message.payload();
        let reliable = message.flags().contains(SendFlags::RELIABLE);
        let text = match std::str::from_utf8(payload) {
            Ok(s) if s.len() <= 256 => s,
            _ => "",
        };
        emit!(
            "RECV conn={id} lane={} reliable={} num={} size={} fnv={} pattern={} text={text:?}",
            message.lane(),
            u8::from(reliable),
            message.message_number(),
            payload.len(),
            fnv_hex(payload),
            u8::from(is_pattern(payload))
        );
        if self.echo {
            let flags = if reliable {
                SendFlags::RELIABLE
            } else {
                SendFlags::UNRELIABLE
            };
            let reply = self
                .global
                .utils()
                .allocate_message(conn, flags, payload.to_vec())
                .set_lane(message.lane());
            // No retry on a full send buffer here: retrying pumps, which could recurse.
            let _ = self.send(id, reply, message.lane(), true, false);
        }
    }

    /// Sends one message; with `retry`, pumps and retries while the send buffer is full.
    fn send(
        &mut self,
        id: u32,
        mut message: GnsNetworkMessage<ToSend>,
        lane: u16,
        echo: bool,
        retry: bool,
    ) -> Result<u64, String> {
        let reliable = message.flags().contains(SendFlags::RELIABLE);
        let (size, fnv) = (message.payload().len(), fnv_hex(message.payload()));
        loop {
            let outcome = self.socket.send_messages(std::iter::once(message)).pop();
            let result = match outcome {
                Some(SendOutcome::Sent(num)) => {
                    self.sent += 1;
                    emit!(
                        "SENT conn={id} lane={lane} reliable={} num={num} size={size} fnv={fnv} echo={}",
                        u8::from(reliable),
                        u8::from(echo)
                    );
                    return Ok(num);
                }
                Some(SendOutcome::Failed(EResult::k_EResultLimitExceeded, back)) if retry => {
                    message = back;
                    if !self.pump().map_err(|_| "deadline while send buffer full")? {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    continue;
                }
                Some(SendOutcome::Failed(result, _)) => result_name(result),
                Some(SendOutcome::Skipped(_)) | None => "Skipped".to_owned(),
            };
            emit!("SEND_FAILED conn={id} lane={lane} result={result}");
            return Err(format!("send failed: {result}"));
        }
    }

    /// True when nothing is queued or unacked on `conn` (false if its status is unavailable).
    fn all_sent(&self, conn: GnsConnection) -> bool {
        let lanes = u32::try_from(self.lanes.len()).unwrap_or(0);
        self.socket
            .get_connection_real_time_status(conn, lanes)
            .is_ok_and(|(s, _)| {
                s.pending_bytes_reliable() == 0
                    && s.pending_bytes_unreliable() == 0
                    && s.bytes_sent_unacked_reliable() == 0
            })
    }

    /// Runs `steps` on connection `id`; `Err` carries the FAIL reason.
    fn run_script(&mut self, id: u32, conn: GnsConnection, script: &str) -> Result<(), String> {
        let steps = parse_script(script).map_err(|e| e.to_string())?;
        let texts = script.split(';').map(str::trim).filter(|s| !s.is_empty());
        let deadline = |_: DeadlineHit| "deadline".to_owned();
        for (i, (step, text)) in steps.into_iter().zip(texts).enumerate() {
            emit!("STEP i={i} text={text:?}");
            let needs_open = !matches!(step, Step::Sleep(_) | Step::Expect { .. });
            if needs_open && !self.is_open(id) {
                return Err(format!("step {i}: connection is not open"));
            }
            match step {
                Step::Send {
                    mode,
                    lane,
                    payload,
                } => {
                    let msg = self
                        .global
                        .utils()
                        .allocate_message(conn, send_flags(mode), payload);
                    self.send(id, msg.set_lane(lane), lane, false, true)?;
                }
                Step::SendSize {
                    mode,
                    lane,
                    size,
                    count,
                } => {
                    for _ in 0..count {
                        let flags = send_flags(mode);
                        let msg = self
                            .global
                            .utils()
                            .allocate_message(conn, flags, pattern(size));
                        self.send(id, msg.set_lane(lane), lane, false, true)?;
                    }
                }
                Step::Expect { count, timeout } => {
                    let ok = self
                        .wait_until(timeout, |p| p.received >= count || p.ended.contains(&id))
                        .map_err(deadline)?;
                    if !ok || self.received < count {
                        return Err(format!("expect: got {} of {count}", self.received));
                    }
                    emit!("EXPECT_OK want={count} got={}", self.received);
                }
                Step::Sleep(duration) => {
                    self.wait_until(duration, |_| false).map_err(deadline)?;
                }
                Step::Flush => {
                    self.socket
                        .flush_messages_on_connection(conn)
                        .map_err(|e| format!("flush: {e}"))?;
                }
                Step::WaitSent(timeout) => {
                    if !self
                        .wait_until(timeout, |p| p.all_sent(conn))
                        .map_err(deadline)?
                    {
                        return Err("waitsent: data still pending".into());
                    }
                    emit!("SENT_ALL conn={id}");
                }
                Step::Status => self.emit_stats(id, conn)?,
                Step::Lanes(lanes) => {
                    self.lanes = lanes.into_iter().map(|(p, w)| GnsLane::new(p, w)).collect();
                    if !self.configure_lanes(id, conn) {
                        return Err("lanes: ConfigureConnectionLanes failed".into());
                    }
                }
                Step::Close {
                    reason,
                    debug,
                    linger,
                } => {
                    if linger {
                        let left = self.deadline.saturating_duration_since(now());
                        self.wait_until(left, |p| p.all_sent(conn))
                            .map_err(deadline)?;
                    }
                    self.close(id, conn, reason, &debug, linger);
                }
                Step::WaitClose(timeout) => {
                    if !self
                        .wait_until(timeout, |p| p.ended.contains(&id))
                        .map_err(deadline)?
                    {
                        return Err("waitclose: still open".into());
                    }
                    emit!("PEER_CLOSED conn={id}");
                }
            }
        }
        Ok(())
    }

    fn emit_stats(&self, id: u32, conn: GnsConnection) -> Result<(), String> {
        let lanes = u32::try_from(self.lanes.len()).unwrap_or(0);
        let (s, _) = self
            .socket
            .get_connection_real_time_status(conn, lanes)
            .map_err(|e| format!("status: {e}"))?;
        emit!(
            "STATS conn={id} state={} ping={} quality_local={:.3} quality_remote={:.3} \
             out_bytes_per_sec={:.0} in_bytes_per_sec={:.0} send_rate={} pending_reliable={} \
             pending_unreliable={} unacked_reliable={} queue_us={}",
            state_name(s.state()),
            s.ping(),
            s.quality_local(),
            s.quality_remote(),
            s.out_bytes_per_sec(),
            s.in_bytes_per_sec(),
            s.send_rate_bytes_per_sec(),
            s.pending_bytes_reliable(),
            s.pending_bytes_unreliable(),
            s.bytes_sent_unacked_reliable(),
            s.approximated_queue_time().as_micros()
        );
        Ok(())
    }

    fn close(&mut self, id: u32, conn: GnsConnection, reason: u32, debug: &str, linger: bool) {
        let c_debug = CString::new(debug).unwrap_or_default();
        let _ = self
            .socket
            .close_connection(conn, reason, Some(&c_debug), linger);
        emit!(
            "CLOSE conn={id} reason={reason} debug={debug:?} linger={}",
            u8::from(linger)
        );
        self.open.retain(|&(i, _)| i != id);
    }

    /// Keeps GNS running for `duration` (close packets, lingering data); ignores the deadline.
    fn drain(&mut self, duration: Duration) {
        self.deadline = self.deadline.max(now() + duration);
        let _ = self.wait_until(duration, |_| false);
    }

    fn done(&self, ok: bool, code: i32) -> ! {
        emit!(
            "DONE ok={} received={} sent={}",
            u8::from(ok),
            self.received,
            self.sent
        );
        // Exit without running GNS teardown: nothing is left to flush after the drain.
        std::process::exit(if ok { 0 } else { code })
    }
}

/// Sets the GNS global config values named on the command line and prints a CONFIG line each.
fn apply_config(global: &GnsGlobal, c: &Common) -> anyhow::Result<()> {
    let utils = global.utils();
    let floats = [
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLoss_Send,
            "FakePacketLoss_Send",
            c.loss_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLoss_Recv,
            "FakePacketLoss_Recv",
            c.loss_recv,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketReorder_Send,
            "FakePacketReorder_Send",
            c.reorder_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketReorder_Recv,
            "FakePacketReorder_Recv",
            c.reorder_recv,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketDup_Send,
            "FakePacketDup_Send",
            c.dup_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketDup_Recv,
            "FakePacketDup_Recv",
            c.dup_recv,
        ),
    ];
    for (key, name, value) in floats {
        if let Some(v) = value {
            utils
                .set_global_config_value(key, GnsConfig::Float(v))
                .with_context(|| format!("{name}={v}"))?;
            emit!("CONFIG key={name} value={v}");
        }
    }
    let trace = c.trace.then_some(c.trace_bytes);
    let ints = [
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLag_Send,
            "FakePacketLag_Send",
            c.lag_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLag_Recv,
            "FakePacketLag_Recv",
            c.lag_recv,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketReorder_Time,
            "FakePacketReorder_Time",
            c.reorder_time,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketDup_TimeMax,
            "FakePacketDup_TimeMax",
            c.dup_time_max,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_NagleTime,
            "NagleTime",
            c.nagle_us,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_SendRateMin,
            "SendRateMin",
            c.send_rate,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_SendRateMax,
            "SendRateMax",
            c.send_rate,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_SendBufferSize,
            "SendBufferSize",
            c.send_buffer,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_TimeoutInitial,
            "TimeoutInitial",
            c.timeout_initial_ms,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_TimeoutConnected,
            "TimeoutConnected",
            c.timeout_connected_ms,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_PacketTraceMaxBytes,
            "PacketTraceMaxBytes",
            trace,
        ),
    ];
    for (key, name, value) in ints {
        if let Some(v) = value {
            utils
                .set_global_config_value(key, GnsConfig::Int32(v))
                .with_context(|| format!("{name}={v}"))?;
            emit!("CONFIG key={name} value={v}");
        }
    }
    Ok(())
}

/// CreateListenSocketIP on `bind`. GNS refuses port 0 ("Must specify local port"), so for
/// port 0 a free port is taken from the OS (bind a UDP socket, read its port, release it) and
/// the listen is retried with a fresh one if another process grabbed it in between.
fn listen(global: &'static GnsGlobal, bind: SocketAddr) -> anyhow::Result<GnsSocket<IsServer>> {
    if bind.port() != 0 {
        return GnsSocket::<IsCreated>::new(global)
            .listen(bind.ip(), bind.port())
            .map_err(|e| anyhow!("listen on {bind}: {e}"));
    }
    let mut last = None;
    for _ in 0..5 {
        let port = std::net::UdpSocket::bind(bind)
            .and_then(|s| s.local_addr())
            .with_context(|| format!("finding a free UDP port on {}", bind.ip()))?
            .port();
        match GnsSocket::<IsCreated>::new(global).listen(bind.ip(), port) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow!("listen on {bind}: {last:?}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let c = &cli.common;
    let lanes = match &c.lanes {
        Some(spec) => parse_lanes(spec)?
            .into_iter()
            .map(|(p, w)| GnsLane::new(p, w))
            .collect(),
        None => Vec::new(),
    };
    let script = match &cli.mode {
        Mode::Server { script, .. } | Mode::Client { script, .. } => script.clone(),
    };
    parse_script(&script).context("--script")?;

    let started = now();
    let deadline = started + Duration::from_secs(c.max_seconds);
    let watchdog = Duration::from_secs(c.max_seconds) + Duration::from_secs(5);
    std::thread::spawn(move || {
        std::thread::sleep(watchdog);
        emit!("DONE ok=0 received=0 sent=0 watchdog=1");
        std::process::exit(4);
    });
    let drain = Duration::from_millis(
        c.drain_ms
            .unwrap_or(250 + 2 * u64::try_from(c.lag_send.unwrap_or(0)).unwrap_or(0)),
    );

    let global = GnsGlobal::get().map_err(|e| anyhow!("GameNetworkingSockets_Init: {e}"))?;
    let level = if c.trace {
        DebugType::k_ESteamNetworkingSocketsDebugOutputType_Verbose
    } else {
        DebugType::k_ESteamNetworkingSocketsDebugOutputType_Warning
    };
    global.utils().enable_debug_output(level, |ty, msg| {
        let ty = format!("{ty:?}");
        let ty = ty
            .strip_prefix("k_ESteamNetworkingSocketsDebugOutputType_")
            .unwrap_or(&ty);
        eprintln!("gns[{ty}] {}", msg.trim_end());
    });
    apply_config(global, c)?;

    match cli.mode {
        Mode::Server {
            bind,
            refuse,
            echo,
            once,
            script,
        } => {
            let socket = listen(global, bind)?;
            let (ip, port) = socket
                .get_listen_socket_address()
                .ok_or_else(|| anyhow!("GetListenSocketAddress failed"))?;
            emit!("LISTENING addr={ip} port={port}");
            let mut peer = Peer {
                socket,
                global,
                accept: Some(|s: &GnsSocket<IsServer>, conn| s.accept(conn)),
                refuse,
                echo,
                lanes,
                deadline,
                ids: HashMap::new(),
                open: Vec::new(),
                ended: HashSet::new(),
                received: 0,
                sent: 0,
            };
            let mut script_pending = !script.trim().is_empty();
            loop {
                match peer.pump() {
                    Ok(true) => {}
                    Ok(false) => std::thread::sleep(Duration::from_millis(1)),
                    Err(DeadlineHit) => {
                        emit!("DEADLINE");
                        peer.done(!once, 3);
                    }
                }
                let first_open = peer.open.first().copied().filter(|_| script_pending);
                if let Some((id, conn)) = first_open {
                    script_pending = false;
                    if let Err(reason) = peer.run_script(id, conn, &script) {
                        emit!("FAIL reason={reason:?}");
                        if peer.is_open(id) {
                            peer.close(id, conn, 2000, "script failed", false);
                        }
                        peer.drain(drain);
                        peer.done(false, 1);
                    }
                }
                if once && !peer.ended.is_empty() && peer.open.is_empty() {
                    peer.drain(drain);
                    peer.done(true, 1);
                }
            }
        }
        Mode::Client {
            connect,
            script,
            echo,
        } => {
            let socket = GnsSocket::<IsCreated>::new(global)
                .connect(connect.ip(), connect.port())
                .map_err(|e| anyhow!("connect to {connect}: {e}"))?;
            let conn = socket.connection();
            let mut peer = Peer {
                socket,
                global,
                accept: None,
                refuse: false,
                echo,
                lanes,
                deadline,
                ids: HashMap::new(),
                open: Vec::new(),
                ended: HashSet::new(),
                received: 0,
                sent: 0,
            };
            let id = peer.id_of(conn);
            emit!("CONNECTING conn={id} addr={connect}");
            match peer.wait_until(Duration::MAX, |p| p.is_open(id) || p.ended.contains(&id)) {
                Ok(_) if peer.is_open(id) => {}
                Ok(_) => peer.done(false, 1),
                Err(DeadlineHit) => {
                    emit!("DEADLINE");
                    peer.done(false, 3);
                }
            }
            let result = peer.run_script(id, conn, &script);
            if let Err(reason) = &result {
                emit!("FAIL reason={reason:?}");
            }
            if peer.is_open(id) {
                match result {
                    Ok(()) => peer.close(id, conn, 1000, "script end", false),
                    Err(_) => peer.close(id, conn, 2000, "script failed", false),
                }
            }
            peer.drain(drain);
            if matches!(&result, Err(r) if r == "deadline") {
                emit!("DEADLINE");
                peer.done(false, 3);
            }
            peer.done(result.is_ok(), 1);
        }
    }
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
    fn common_switches_parse_after_the_mode() {
        let cli = Cli::try_parse_from([
            "gns-peer",
            "client",
            "--connect",
            "127.0.0.1:9",
            "--script",
            "send r 0 hi",
            "--lanes",
            "0:1,1:1",
            "--loss-send",
            "5",
            "--send-rate",
            "1000000",
        ])
        .expect("parses");
        assert_eq!(cli.common.loss_send, Some(5.0));
        assert_eq!(cli.common.send_rate, Some(1_000_000));
        assert!(matches!(cli.mode, Mode::Client { .. }));
    }

    #[test]
    fn send_modes_map_to_gns_flags() {
        let m = |reliable, no_nagle, no_delay| SendMode {
            reliable,
            no_nagle,
            no_delay,
        };
        assert_eq!(send_flags(m(true, false, false)), SendFlags::RELIABLE);
        assert_eq!(send_flags(m(false, false, false)), SendFlags::UNRELIABLE);
        assert_eq!(
            send_flags(m(false, true, false)),
            SendFlags::UNRELIABLE | SendFlags::NO_NAGLE
        );
        assert_eq!(send_flags(m(false, false, true)), SendFlags::NO_DELAY);
    }
}
