//! Runs the built `sockworks-rendezvous` binary on 127.0.0.1 port 0 and talks to it with the
//! library's client (and raw sockets for hostile input). Every child is killed on drop; every
//! wait has a deadline.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed file or socket operation is a failed test"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use sockworks_rendezvous::clock;
use sockworks_rendezvous::{ClientConfig, Incoming, RendezvousClient};

mod auth;
mod fakeip;
mod hostile;
mod memory;
mod relay;

/// Longest wait for anything the service or a client should do.
const WAIT: Duration = Duration::from_secs(20);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockworks-rendezvous"))
}

/// A running service, killed when dropped; its stderr lines arrive on `log`.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Receiver<String>,
    /// Lines already read from `log`.
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the service with `args` (plus `--listen 127.0.0.1:0` unless given, and frequent
/// stats) and reads the bound address from stdout.
fn start(args: &[&str]) -> Server {
    let mut cmd = bin();
    if !args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .args(["--stats-interval", "0.05"])
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
    let mut server = Server {
        child,
        addr: "0.0.0.0:0".parse().unwrap(),
        log,
        seen: Vec::new(),
    };
    let first = line_rx.recv_timeout(WAIT).unwrap_or_default();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address on stdout: {first:?}, log: {:?}", server.drain()));
    server.addr = addr.parse().unwrap();
    server
}

impl Server {
    /// Everything logged so far.
    fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.log.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Whether a line containing `needle` was logged, waiting for it (the log arrives through a
    /// reader thread, so a line written before the call may still be on its way).
    fn logged(&mut self, needle: &str) -> bool {
        let deadline = clock::now() + WAIT;
        loop {
            if self.drain().iter().any(|l| l.contains(needle)) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(clock::now()) else {
                return false;
            };
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return false,
            }
        }
    }

    /// Waits for a stats line satisfying `ok` and returns it as counters.
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

fn client(server: SocketAddr, identity: &str) -> (RendezvousClient, Receiver<Incoming>) {
    RendezvousClient::start(ClientConfig::new(server, identity)).unwrap()
}

/// Polls `cond` until it holds or the deadline passes.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = clock::now() + WAIT;
    while !cond() {
        assert!(clock::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// Sends `payload` from `from` to `to` until `rx` receives it; returns when, and the message.
fn exchange(
    from: &RendezvousClient,
    to: &str,
    rx: &Receiver<Incoming>,
    payload: &[u8],
) -> (Instant, Incoming) {
    let deadline = clock::now() + WAIT;
    loop {
        assert!(from.send_signal(to, payload));
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(20))
            && matches!(&m, Incoming::Signal { payload: p, .. } if p == payload)
        {
            return (clock::now(), m);
        }
        assert!(clock::now() < deadline, "signal to {to} never arrived");
    }
}
