//! `gns-load`, the real-GNS load tool, against both echo servers: its own GNS server
//! (`gns-load serve`) and Sockworks' (`loadgen::echo`, the server behind `loadgen --serve`,
//! run here on a thread). A tiny reliable load (4 connections x 50 messages) must come back
//! complete: the right count, nothing lost, duplicated, reordered or corrupted.
//!
//! Every wait is bounded (the processes also carry `--max-seconds`); 127.0.0.1, port 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step is a failed test"
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use loadgen::echo::{EchoConfig, EchoServer};
use loadgen::load::result::LoadResult;

const EXE: &str = env!("CARGO_BIN_EXE_gns-load");
const WAIT: Duration = Duration::from_secs(40);
const CONNECTIONS: u64 = 4;
const PER_CONNECTION: u64 = 50;
/// Both servers and the client use the same send rates, as in a comparison.
const RATE_MAX: &str = "64000000";

/// A child whose stdout lines arrive on a channel; killed on drop.
struct Proc {
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(EXE)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gns-load");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    /// The first line starting with `prefix`, within [`WAIT`].
    fn line(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("no {prefix} line: {e}"));
            eprintln!("[gns-load] {line}");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the tiny load against `target` and returns its RESULT and exit status.
fn load(target: SocketAddr) -> (LoadResult, bool) {
    let (target, conns, msgs) = (
        target.to_string(),
        CONNECTIONS.to_string(),
        PER_CONNECTION.to_string(),
    );
    let mut client = Proc::spawn(&[
        "client",
        "--target",
        &target,
        "--connections",
        &conns,
        "--window",
        "8",
        "--size",
        "100",
        "--reliable",
        "--messages",
        &msgs,
        "--seconds",
        "20",
        "--send-rate-max",
        RATE_MAX,
        "--max-seconds",
        "30",
    ]);
    let line = client.line("RESULT ");
    let status = client.child.wait().expect("wait");
    (
        LoadResult::parse(&line).expect("a RESULT line"),
        status.success(),
    )
}

fn assert_complete(r: &LoadResult, exited_ok: bool) {
    let total = CONNECTIONS * PER_CONNECTION;
    assert_eq!(r.connected, CONNECTIONS);
    assert_eq!(
        (r.msgs, r.counts.sent, r.counts.received),
        (total, total, total)
    );
    assert!(r.counts.is_clean(), "{:?}", r.counts);
    assert!(r.passed() && exited_ok);
    assert!(r.p50_us > 0 && r.max_us >= r.p50_us);
}

/// `gns-load serve` on a free 127.0.0.1 port: the process (killed on drop) and its address.
fn gns_echo_server() -> (Proc, SocketAddr) {
    let server = Proc::spawn(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--send-rate-max",
        RATE_MAX,
        "--max-seconds",
        "40",
    ]);
    let line = server.line("LISTENING ");
    let port: u16 = line
        .rsplit_once("port=")
        .and_then(|(_, p)| p.trim().parse().ok())
        .expect("port");
    (server, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn gns_clients_get_every_echo_back_from_the_gns_echo_server() {
    let (_server, addr) = gns_echo_server();
    let (r, ok) = load(addr);
    assert_complete(&r, ok);
}

#[test]
fn gns_clients_get_every_echo_back_from_the_sockworks_echo_server() {
    let mut server = EchoServer::start(&EchoConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 1,
        send_rate_min: None,
        send_rate_max: Some(RATE_MAX.parse().unwrap()),
        unreliable_max_age_ms: None,
        batch: 256,
        wait_for_activity: true,
        coalesce: None,
    })
    .expect("echo server");
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    let serving = std::thread::spawn(move || {
        server.run(|| !stopper.load(Ordering::Relaxed));
        let stats = server.stats();
        server.shutdown();
        stats
    });
    let (r, ok) = load(addr);
    stop.store(true, Ordering::Relaxed);
    let stats = serving.join().expect("server thread");
    assert_complete(&r, ok);
    assert_eq!(stats.accepted, CONNECTIONS);
    assert_eq!(stats.echoed, CONNECTIONS * PER_CONNECTION);
    assert_eq!(stats.refused, 0);
}

/// Several Sockworks client connections from one shard to one GNS server: GNS takes one
/// connection per remote address (`CSharedSocket::AddRemoteHost`), so each must come from its
/// own UDP socket. All connect, and each gets its own message echoed.
#[test]
fn several_sockworks_connections_from_one_shard_reach_one_gns_server() {
    use sockworks::{ConnectionState, Sockets, SocketsConfig, send_flags};

    const N: usize = 4;
    let (_server, target) = gns_echo_server();
    let sockets = Sockets::with_config(SocketsConfig {
        shards: 1,
        ..SocketsConfig::default()
    })
    .expect("instance");
    let conns: Vec<_> = (0..N)
        .map(|_| sockets.connect_by_ip_address(target, &[]))
        .collect();
    // Bounded by count: waits of at most 5 ms for activity, WAIT in all (tests do not read the
    // clock themselves).
    let mut naps = WAIT.as_millis() / 5;
    let mut seen = sockets.activity();
    while conns
        .iter()
        .any(|&c| sockets.connection_state(c) != ConnectionState::Connected)
    {
        naps -= 1;
        assert!(
            naps > 0,
            "states: {:?}",
            conns
                .iter()
                .map(|&c| sockets.connection_state(c))
                .collect::<Vec<_>>()
        );
        sockets.run_callbacks();
        seen = sockets.wait_for_activity(seen, Duration::from_millis(5));
    }
    for (i, &c) in conns.iter().enumerate() {
        let text = format!("hello from connection {i}");
        assert!(
            sockets
                .send_message_to_connection(c, text.as_bytes(), send_flags::RELIABLE)
                .is_ok()
        );
    }
    for (i, &c) in conns.iter().enumerate() {
        let mut got = Vec::new();
        let mut naps = WAIT.as_millis() / 5;
        while got.is_empty() {
            naps -= 1;
            assert!(naps > 0, "no echo on {i}");
            let seen = sockets.activity();
            sockets.receive_messages_on_connection(c, &mut got, 1);
            if got.is_empty() {
                sockets.wait_for_activity(seen, Duration::from_millis(5));
            }
        }
        assert_eq!(got[0].data, format!("hello from connection {i}").as_bytes());
    }
    for c in conns {
        sockets.close_connection(c, 0, "done", false);
    }
}
