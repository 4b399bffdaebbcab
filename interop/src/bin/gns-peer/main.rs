//! `gns-peer`: a real Valve GameNetworkingSockets endpoint, scriptable from the command line,
//! for interop tests. One process is one GNS instance (GNS keeps global state per process).
//!
//! Everything observable goes to stdout, one event per line (format in `AFTER_HELP` and in
//! `sockworks_interop::events`); GNS's own debug output goes to stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Args, Parser, Subcommand};
use gns::sys::ESteamNetworkingSocketsDebugOutputType as DebugType;
use gns::{GnsGlobal, GnsLane, GnsSocket, IsCreated, IsServer};
use sockworks_interop::script::{SCRIPT_HELP, parse_lanes, parse_script};

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
                                          ProblemDetectedLocally, FinWait, Linger or Dead;
                                          our own CloseConnection shows as new=None
  AUTH conn=C flags=N unauthenticated=B identity=\"..\"
                                          on Connected: GetConnectionInfo's m_nFlags (1
                                          Unauthenticated: no trusted CA signature or an IP
                                          identity) and the remote identity GNS settled on
  ACCEPTED conn=C | REFUSED conn=C reason=1234 debug=\"refused\" | ACCEPT_FAILED conn=C error=..
  LANES conn=C n=N | LANES_FAILED conn=C error=\"..\"   ConfigureConnectionLanes
  RECV conn=C lane=L reliable=B num=N size=BYTES fnv=HEX16 pattern=B text=\"..\"
                                          text is the payload when it is UTF-8 of <= 256 bytes
                                          without control characters, else \"\"; fnv is
                                          64-bit FNV-1a (16 hex digits); pattern=1 when the
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
        /// Script to run on the first connection once it is Connected (SCRIPT in
        /// `gns-peer --help`).
        #[arg(long, default_value = "")]
        script: String,
    },
    /// Connect, wait for Connected, run the script, close.
    Client {
        /// The server's address.
        #[arg(long)]
        connect: SocketAddr,
        /// Steps to run once connected (SCRIPT in `gns-peer --help`).
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

mod peer;
mod setup;

use peer::{DeadlineHit, Peer};
use setup::{apply_config, now};
use sockworks_interop::listen::listen;

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
            let mut peer = Peer::new(
                socket,
                global,
                Some(|s: &GnsSocket<IsServer>, conn| s.accept(conn)),
                (refuse, echo),
                lanes,
                deadline,
            );
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
                        peer.done(false, if reason == "deadline" { 3 } else { 1 });
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
            let mut peer = Peer::new(socket, global, None, (false, echo), lanes, deadline);
            let id = peer.id_of(conn);
            emit!("CONNECTING conn={id} addr={connect}");
            // Waits at most until the deadline, which then reads as Ok(false) or Err.
            let up = peer.wait_until(Duration::MAX, |p| p.is_open(id) || p.ended.contains(&id));
            if !peer.is_open(id) {
                if peer.ended.contains(&id) {
                    peer.done(false, 1);
                }
                debug_assert!(!matches!(up, Ok(true)));
                emit!("DEADLINE");
                peer.done(false, 3);
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
    use crate::peer::send_flags;
    use clap::CommandFactory as _;
    use gns::SendFlags;
    use sockworks_interop::script::SendMode;

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
