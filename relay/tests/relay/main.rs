//! Runs the built `sockworks-relay` binary on loopback (port 0) between plain UDP clients and
//! a UDP echo "game server" on another loopback address (127.0.0.2), so every datagram's source
//! and bytes can be checked. Every child is killed on drop; every wait has a deadline.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed file or socket operation is a failed test"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks_engine::crypto::keys::IdentityKey;
use sockworks_engine::crypto::pem;
use sockworks_relay::clock;
use sockworks_relay::routing::{self, RoutingKey};
use sockworks_relay::ticket::{self, RelayAuthTicket};
use sockworks_relay::wire::{self, Message, RefuseReason};

mod figures;
mod fleet;
mod hostile;
mod netns;
mod sessions;

/// Longest wait for anything the relay should do.
const WAIT: Duration = Duration::from_secs(20);
const ROUTING_KEY: [u8; 32] = [0x42; 32];

fn ca() -> IdentityKey {
    IdentityKey::from_seed([0x11; 32])
}

/// A running relay, killed when dropped; its stderr lines arrive on `log`.
struct Relay {
    child: Child,
    addr: SocketAddr,
    log: Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Key files in a fresh directory: `ca.pub` (trusting `ca()`) and `routing.key`.
fn key_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pk = ca().public_bytes();
    let line = pem::write_public_key(&pk, Some("ID-test"));
    std::fs::write(dir.path().join("ca.pub"), format!("# test CA\n{line}\n")).unwrap();
    std::fs::write(dir.path().join("routing.key"), hex::encode(ROUTING_KEY)).unwrap();
    dir
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockworks-relay"))
}

/// Starts the relay on 127.0.0.1:0 with `args` and frequent stats.
fn start(args: &[&str]) -> Relay {
    start_with(bin(), args)
}

/// Starts the relay as `cmd` (the binary, or a wrapper running it) with `args`.
fn start_with(mut cmd: Command, args: &[&str]) -> Relay {
    let dir = key_files();
    if !args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .args(["--pop", "tst", "--stats-interval", "0.05"])
        .arg("--ca-keys")
        .arg(dir.path().join("ca.pub"))
        .arg("--routing-key-file")
        .arg(dir.path().join("routing.key"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = line_tx.send(first);
    });
    let (log_tx, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = line_rx.recv_timeout(WAIT).unwrap_or_default();
    let mut relay = Relay {
        child,
        addr: "0.0.0.0:0".parse().unwrap(),
        log,
        seen: Vec::new(),
        _dir: dir,
    };
    let Some(addr) = first.trim().strip_prefix("listening on ") else {
        // Collect what the relay said before it exited.
        while let Ok(line) = relay.log.recv_timeout(Duration::from_secs(2)) {
            relay.seen.push(line);
        }
        panic!("no address on stdout: {first:?}, log {:?}", relay.seen);
    };
    relay.addr = addr.parse().unwrap();
    relay
}

impl Relay {
    /// Waits for a stats line satisfying `ok`; returns its counters.
    fn stats_until(&mut self, ok: impl Fn(&HashMap<String, u64>) -> bool) -> HashMap<String, u64> {
        let deadline = clock::now() + WAIT;
        let mut last = HashMap::new();
        while let Some(left) = deadline.checked_duration_since(clock::now()) {
            let Ok(line) = self.log.recv_timeout(left) else {
                break;
            };
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("stats ") {
                last = rest
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                    .collect();
                if ok(&last) {
                    return last;
                }
            }
        }
        panic!("no stats line as expected; last {last:?}");
    }
}

/// A UDP echo "game server" on 127.0.0.2: echoes every datagram to its sender, records every
/// source address, counts datagrams.
struct Echo {
    addr: SocketAddr,
    sources: Arc<Mutex<Vec<SocketAddr>>>,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn echo_server() -> Echo {
    echo_on(UdpSocket::bind("127.0.0.2:0").unwrap())
}

/// An echo server on `socket`.
fn echo_on(socket: UdpSocket) -> Echo {
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let echo = Echo {
        addr: socket.local_addr().unwrap(),
        sources: Arc::default(),
        count: Arc::default(),
        stop: Arc::default(),
    };
    let (sources, count, stop) = (echo.sources.clone(), echo.count.clone(), echo.stop.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            count.fetch_add(1, Ordering::Relaxed);
            {
                let mut s = sources.lock().unwrap();
                if !s.contains(&from) {
                    s.push(from);
                }
            }
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    echo
}

fn ticket_for(server: SocketAddr, client: &str, expiry: u64, key: &IdentityKey) -> Vec<u8> {
    let routing = routing::seal("tst", server, &RoutingKey::new(&ROUTING_KEY), [9; 12]).unwrap();
    ticket::sign(
        &RelayAuthTicket {
            gameserver: "str:game-server".into(),
            authorized_client: client.into(),
            public_ip: None,
            expiry_unix: expiry,
            routing,
            app_id: 480,
            restrict_to_vport: -1,
            extra: vec![],
        },
        key,
    )
    .unwrap()
}

fn good_ticket(server: SocketAddr, client: &str) -> Vec<u8> {
    ticket_for(server, client, clock::unix_now() + 3600, &ca())
}

/// A client socket on 127.0.0.3 talking to the relay.
struct Client {
    socket: UdpSocket,
    relay: SocketAddr,
    /// Every datagram received, for scanning.
    received: Vec<Vec<u8>>,
}

impl Client {
    fn new(relay: SocketAddr) -> Self {
        Self::on(UdpSocket::bind("127.0.0.3:0").unwrap(), relay)
    }

    fn on(socket: UdpSocket, relay: SocketAddr) -> Self {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Client {
            socket,
            relay,
            received: Vec::new(),
        }
    }

    fn send(&self, m: &Message<'_>) {
        self.socket.send_to(&m.to_vec(), self.relay).unwrap();
    }

    /// Next datagram (asserting it comes from the relay), or `None` after 200 ms.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        let (n, from) = self.socket.recv_from(&mut buf).ok()?;
        assert_eq!(
            from, self.relay,
            "a datagram from someone other than the relay"
        );
        self.received.push(buf[..n].to_vec());
        Some(buf[..n].to_vec())
    }

    /// Sends Hello until a Welcome or Refused answers.
    fn hello(&mut self, ticket: &[u8]) -> Result<(u32, u64), RefuseReason> {
        let deadline = clock::now() + WAIT;
        while clock::now() < deadline {
            self.send(&Message::Hello { nonce: 5, ticket });
            while let Some(d) = self.recv() {
                match Message::decode(&d) {
                    Ok(Message::Welcome {
                        nonce: 5,
                        session,
                        token,
                        ..
                    }) => return Ok((session, token)),
                    Ok(Message::Refused { nonce: 5, reason }) => return Err(reason),
                    _ => {}
                }
            }
        }
        panic!("no answer to Hello");
    }

    fn data(&self, session: u32, token: u64, payload: &[u8]) {
        let mut v = Vec::new();
        wire::encode_data(session, token, payload, &mut v);
        self.socket.send_to(&v, self.relay).unwrap();
    }
}

/// Runs `ip ARGS` (iproute2) for the namespace tests; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Polls `cond` until it holds or the deadline passes.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = clock::now() + WAIT;
    while !cond() {
        assert!(clock::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

#[test]
fn help_and_startup_errors() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--ca-keys",
        "--routing-key-file",
        "--pop",
        "--max-sessions",
        "--idle-seconds",
        "--rate",
        "--stats-interval",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    let dir = key_files();
    std::fs::write(dir.path().join("bad.key"), "zz").unwrap();
    std::fs::write(dir.path().join("empty.pub"), "# nothing\n").unwrap();
    let ca = dir.path().join("ca.pub");
    let key = dir.path().join("routing.key");
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![
                "--ca-keys".into(),
                dir.path().join("missing").into(),
                "--routing-key-file".into(),
                key.clone().into(),
            ],
            "reading --ca-keys",
        ),
        (
            vec![
                "--ca-keys".into(),
                dir.path().join("empty.pub").into(),
                "--routing-key-file".into(),
                key.clone().into(),
            ],
            "no ssh-ed25519",
        ),
        (
            vec![
                "--ca-keys".into(),
                ca.clone().into(),
                "--routing-key-file".into(),
                dir.path().join("bad.key").into(),
            ],
            "64 hex digits",
        ),
        (
            vec![
                "--ca-keys".into(),
                ca.clone().into(),
                "--routing-key-file".into(),
                key.clone().into(),
                "--pop".into(),
                "toolong".into(),
            ],
            "--pop",
        ),
        (
            vec![
                "--ca-keys".into(),
                ca.clone().into(),
                "--routing-key-file".into(),
                key.clone().into(),
                "--max-sessions".into(),
                "0".into(),
            ],
            "--max-sessions",
        ),
    ];
    for (args, expect) in cases {
        let out = bin()
            .args(&args)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("error:") && err.contains(expect),
            "{args:?}: {err}"
        );
    }
    // Address in use.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = bin()
        .arg("--ca-keys")
        .arg(&ca)
        .arg("--routing-key-file")
        .arg(&key)
        .args(["--listen", &taken.local_addr().unwrap().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("binding UDP"));
}
