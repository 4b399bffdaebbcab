//! The contract every P2P test peer binary follows (`gns-p2p` for real GNS; a Sockworks peer
//! is to follow the same): its command line ([`P2pArgs`], parse it with clap), its stdout
//! lines ([`P2P_AFTER_HELP`]) and its message payloads ([`message_payload`]). With one
//! contract, [`crate::p2p_harness`] can pair any two peer binaries.

use std::path::PathBuf;

use clap::{ArgGroup, Parser};

/// The output and behaviour section of `--help` (shared by all P2P peer binaries).
pub const P2P_AFTER_HELP: &str = "\
SIGNALING: the peer's name is its identity without `str:`. It binds the Unix datagram socket
SIGNAL_DIR/NAME.sock and sends each signal (and each rejection signal) as one datagram
`TO\\n<raw signal bytes>` to SIGNAL_DIR/relay.sock; it receives `FROM\\n<raw signal bytes>`.
Signals are sent from whatever thread the stack produces them on; received ones are fed to the
stack from the main loop.

BEHAVIOUR:
  --listen VPORT    listen on that virtual port; accept every connect request (or, with
                    --reject, close it inside OnConnectRequest with reason 1234 \"rejected\");
                    echo every received message back on its connection, reliable.
                    Success: Connected, --messages N received intact and echoed, and the echoes
                    acknowledged (or the peer closed after all N); then close (1000) and exit.
                    With --reject: success when at least one request was rejected and nothing
                    connected by --max-seconds.
  --connect ID      connect to ID on --vport; once Connected send --messages N reliable
                    messages of --size bytes and check that each echo equals what was sent, in
                    order. Success: all N echoes intact; then close (1000) and exit.
  Message k (0-based) of size B has byte j = (j + k) % 251.

OUTPUT (stdout, one event per line, flushed; `KIND key=value ...`, a value is a bare token or a
Rust-escaped \"string\"; conn= is the peer's own connection number 1, 2, ... in order of
first sight; ADDR is IP:PORT or [IPv6]:PORT, [::]:0 when the stack reports none):
  LISTENING identity=\"str:NAME\" vport=N   listener ready (signal socket bound)
  CONNECTING conn=C peer=\"str:PEER\" vport=N   connector: the connect call returned
  REQUEST conn=C identity=\"str:PEER\" vport=N  listener: a new connect request arrived
  REJECTED conn=C identity=\"str:PEER\"      listener --reject: request closed (1234)
  ACCEPTED conn=C | ACCEPT_FAILED conn=C result=NAME
  STATUS conn=C old=S new=S reason=N debug=\"..\" remote=ADDR
                                          every connection-state change; S is None,
                                          Connecting, FindingRoute, Connected, ClosedByPeer,
                                          ProblemDetectedLocally, FinWait, Linger or Dead
  CONNECTED conn=C ms=M remote=ADDR flags=N   M = ms since the connect call (connector) or
                                          since REQUEST (listener); flags = GNS
                                          m_nFlags (1 Unauthenticated, 8 Fast, 16 Relayed)
  SIGNAL dir=out|in bytes=N peer=NAME      one signal (only with --verbose)
  MISMATCH conn=C index=K size=N           a received message differs from message K
  RESULT sent=N echoed=N ok=0|1 setup_ms=X [rejected=N]
                                          last line. Connector: sent = messages sent,
                                          echoed = intact echoes received. Listener:
                                          sent = echoes sent, echoed = intact messages
                                          received. X = the CONNECTED ms, -1 if never.
EXIT: 0 iff ok=1; 1 on failure; 3 when --max-seconds ran out.";

/// A P2P test peer: custom signaling through a file-system relay, ICE, an echo exchange.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(after_help = P2P_AFTER_HELP)]
#[command(group(ArgGroup::new("mode").required(true).args(["listen", "connect"])))]
pub struct P2pArgs {
    /// Local identity, e.g. `str:alice` (GameNetworkingSockets_Init with it).
    #[arg(long)]
    pub identity: String,
    /// Directory of the signaling sockets (see SIGNALING).
    #[arg(long)]
    pub signal_dir: PathBuf,
    /// Listen on this virtual port.
    #[arg(long, value_name = "VPORT")]
    pub listen: Option<i32>,
    /// Connect to this identity (needs --vport).
    #[arg(long, value_name = "ID", requires = "vport")]
    pub connect: Option<String>,
    /// The remote virtual port to connect to.
    #[arg(long, value_name = "N")]
    pub vport: Option<i32>,
    /// Reliable messages to send (connector) or expect (listener) once Connected.
    #[arg(long, default_value_t = 0)]
    pub messages: u32,
    /// Bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: u32,
    /// P2P_Transport_ICE_Enable bitmask: 1 relay, 2 private host, 4 public host + reflexive.
    #[arg(long, value_name = "MASK")]
    pub ice_enable: Option<i32>,
    /// STUN server(s), literal `IP:PORT`, comma-separated (P2P_STUN_ServerList).
    #[arg(long, value_name = "IP:PORT")]
    pub stun: Option<String>,
    /// TURN server(s), literal `IP:PORT`, comma-separated (P2P_TURN_ServerList).
    #[arg(long, value_name = "IP:PORT")]
    pub turn: Option<String>,
    /// TURN user name (P2P_TURN_UserList).
    #[arg(long, value_name = "U")]
    pub turn_user: Option<String>,
    /// TURN password (P2P_TURN_PassList).
    #[arg(long, value_name = "P")]
    pub turn_pass: Option<String>,
    /// TimeoutInitial in milliseconds (GNS default 10000, applied per state).
    #[arg(long, value_name = "MS")]
    pub timeout_initial_ms: Option<i32>,
    /// Listener: reject every connect request inside OnConnectRequest.
    #[arg(long)]
    pub reject: bool,
    /// Hard bound on the run; the process always exits by then.
    #[arg(long, default_value_t = 30)]
    pub max_seconds: u64,
    /// Print a SIGNAL line per signal sent or received.
    #[arg(long)]
    pub verbose: bool,
    /// The stack's own debug log (and P2P rendezvous log) to stderr.
    #[arg(long)]
    pub trace: bool,
}

/// Message `k` (0-based) of `size` bytes: byte `j` is `(j + k) % 251`.
#[must_use]
pub fn message_payload(k: u32, size: u32) -> Vec<u8> {
    (0..size)
        .map(|j| {
            // invariant: the remainder is below 251, so it fits a u8.
            ((u64::from(j) + u64::from(k)) % 251) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent_and_needs_exactly_one_mode() {
        P2pArgs::command().debug_assert();
        let base = ["p", "--identity", "str:a", "--signal-dir", "/tmp/x"];
        assert!(P2pArgs::try_parse_from(base).is_err());
        let l = P2pArgs::try_parse_from([&base[..], &["--listen", "7"]].concat()).expect("listen");
        assert_eq!(l.listen, Some(7));
        assert!(P2pArgs::try_parse_from([&base[..], &["--connect", "str:b"]].concat()).is_err());
        let c = P2pArgs::try_parse_from(
            [
                &base[..],
                &["--connect", "str:b", "--vport", "7", "--messages", "3"],
            ]
            .concat(),
        )
        .expect("connect");
        assert_eq!((c.vport, c.messages, c.size), (Some(7), 3, 100));
        assert!(
            P2pArgs::try_parse_from(
                [
                    &base[..],
                    &["--listen", "1", "--connect", "str:b", "--vport", "1"]
                ]
                .concat()
            )
            .is_err()
        );
    }

    #[test]
    fn payloads_differ_per_index() {
        assert_eq!(message_payload(0, 3), vec![0, 1, 2]);
        assert_eq!(message_payload(250, 3), vec![250, 0, 1]);
        assert_ne!(message_payload(1, 10), message_payload(2, 10));
    }
}
