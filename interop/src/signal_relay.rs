//! The custom-signaling channel of the P2P tests: Unix datagram sockets in one directory, so
//! it crosses network namespaces (path-bound Unix sockets live in the filesystem, not in a
//! network namespace).
//!
//! Protocol:
//! - A peer named `NAME` (its identity with `str:` stripped, see [`peer_name`]) binds
//!   `DIR/NAME.sock`.
//! - To send a signal (or a rejection signal) to peer `TO`, it sends one datagram
//!   `TO\n<raw signal bytes>` to `DIR/relay.sock`.
//! - The relay ([`SignalRelay`], a thread in the test process) forwards `FROM\n<raw signal
//!   bytes>` to `DIR/TO.sock`, where `FROM` is the sender's socket name. On the way it can
//!   drop, duplicate and reorder datagrams ([`Impairment`], seeded), and it counts what it did
//!   ([`RelayStats`]).
//!
//! [`SignalEndpoint`] is the peer side, used by `gns-p2p` and meant for any peer binary.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The relay's socket file name inside the signal directory.
pub const RELAY_SOCK: &str = "relay.sock";
/// Largest datagram either side reads.
pub const MAX_DATAGRAM: usize = 65536;

/// The peer name for an identity string: `str:NAME` gives `NAME`; anything else is used as is.
#[must_use]
pub fn peer_name(identity: &str) -> &str {
    identity.strip_prefix("str:").unwrap_or(identity)
}

/// `name\nbytes`.
#[must_use]
pub fn frame(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1 + bytes.len());
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(bytes);
    out
}

/// Splits `name\nbytes`; `None` when there is no newline or the name is not UTF-8.
#[must_use]
pub fn unframe(datagram: &[u8]) -> Option<(&str, &[u8])> {
    let nl = datagram.iter().position(|&b| b == b'\n')?;
    let name = std::str::from_utf8(&datagram[..nl]).ok()?;
    Some((name, &datagram[nl + 1..]))
}

/// The socket path of peer `name` in `dir`.
#[must_use]
pub fn sock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// A peer's end of the channel: its bound socket (non-blocking) and the relay's address.
#[derive(Debug)]
pub struct SignalEndpoint {
    sock: UnixDatagram,
    relay: PathBuf,
}

impl SignalEndpoint {
    /// Binds `dir/<name>.sock` (replacing a stale file) in non-blocking mode.
    pub fn bind(dir: &Path, name: &str) -> io::Result<Self> {
        let path = sock_path(dir, name);
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path)?;
        sock.set_nonblocking(true)?;
        Ok(Self {
            sock,
            relay: dir.join(RELAY_SOCK),
        })
    }

    /// A second handle on the same socket, for another thread (e.g. GNS's service thread).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            sock: self.sock.try_clone()?,
            relay: self.relay.clone(),
        })
    }

    /// Sends one signal to peer `to` through the relay. One `sendto`; no locks. A full relay
    /// queue (`WouldBlock`) is an error the caller may treat as a lost signal.
    pub fn send(&self, to: &str, signal: &[u8]) -> io::Result<()> {
        self.sock.send_to(&frame(to, signal), &self.relay).map(drop)
    }

    /// The next received signal as `(from, bytes)`, or `None` when nothing is waiting.
    /// Datagrams without the `name\n` framing are skipped.
    pub fn try_recv(&self) -> io::Result<Option<(String, Vec<u8>)>> {
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    if let Some((from, bytes)) = unframe(&buf[..n]) {
                        return Ok(Some((from.to_owned(), bytes.to_vec())));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the relay does to the datagrams it forwards; probabilities are percentages.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Percent of datagrams dropped.
    pub loss: f64,
    /// Percent of (not dropped) datagrams delivered twice.
    pub dup: f64,
    /// Percent of datagrams held back and delivered after the next one (or after
    /// [`REORDER_HOLD`] without a next one).
    pub reorder: f64,
    /// PRNG seed; the same seed and traffic give the same decisions.
    pub seed: u64,
}

/// The longest a reordered datagram is held when nothing else comes.
pub const REORDER_HOLD: Duration = Duration::from_millis(100);

/// Counters of one relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Well-formed datagrams received from peers.
    pub received: u64,
    /// Datagrams written to a destination socket (duplicates included).
    pub forwarded: u64,
    /// Dropped on purpose.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Held back and sent after a later one.
    pub reordered: u64,
    /// The destination socket was missing or full.
    pub undeliverable: u64,
    /// Unframed or from an unbound sender.
    pub malformed: u64,
}

/// A seeded splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: f64) -> bool {
        #[expect(
            clippy::cast_precision_loss,
            reason = "53 random bits are plenty for a percentage"
        )]
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        unit * 100.0 < percent
    }
}

/// The relay thread; stops and joins on drop.
#[derive(Debug)]
pub struct SignalRelay {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<RelayStats>>,
    thread: Option<JoinHandle<()>>,
}

impl SignalRelay {
    /// Binds `dir/relay.sock` and starts forwarding.
    pub fn start(dir: &Path, impairment: Impairment) -> io::Result<Self> {
        let path = dir.join(RELAY_SOCK);
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path)?;
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        // A peer that stopped reading must not stall the relay: a full queue counts as lost.
        sock.set_write_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(RelayStats::default()));
        let worker = Worker {
            sock,
            dir: dir.to_owned(),
            imp: impairment,
            rng: Rng(impairment.seed),
            stats: Arc::clone(&stats),
            held: None,
        };
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("signal-relay".into())
            .spawn(move || worker.run(&stop2))?;
        Ok(Self {
            dir: dir.to_owned(),
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// The signal directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> RelayStats {
        *self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SignalRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(self.dir.join(RELAY_SOCK));
    }
}

/// A datagram waiting for delivery: destination, framed bytes.
type Pending = (String, Vec<u8>);

struct Worker {
    sock: UnixDatagram,
    dir: PathBuf,
    imp: Impairment,
    rng: Rng,
    stats: Arc<Mutex<RelayStats>>,
    /// The datagram held back for reordering, with the count of receive timeouts since.
    held: Option<(Pending, u32)>,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0; MAX_DATAGRAM];
        let hold_ticks = 5; // 5 x 20 ms read timeout = REORDER_HOLD
        while !stop.load(Ordering::SeqCst) {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let from = from
                        .as_pathname()
                        .and_then(Path::file_stem)
                        .and_then(|s| s.to_str())
                        .map(str::to_owned);
                    match (from, unframe(&buf[..n])) {
                        (Some(from), Some((to, bytes))) => {
                            let out = (to.to_owned(), frame(&from, bytes));
                            self.count(|s| s.received += 1);
                            self.handle(out);
                        }
                        _ => self.count(|s| s.malformed += 1),
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some((_, ticks)) = &mut self.held {
                        *ticks += 1;
                        if *ticks >= hold_ticks {
                            let (p, _) = self.held.take().expect("held");
                            self.deliver(&p);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("signal relay: recv: {e}");
                    break;
                }
            }
        }
        if let Some((p, _)) = self.held.take() {
            self.deliver(&p);
        }
    }

    fn handle(&mut self, p: Pending) {
        if self.rng.chance(self.imp.loss) {
            self.count(|s| s.dropped += 1);
            return;
        }
        let dup = self.rng.chance(self.imp.dup);
        if self.held.is_none() && self.rng.chance(self.imp.reorder) {
            self.count(|s| s.reordered += 1);
            self.held = Some((p, 0));
            return;
        }
        self.deliver(&p);
        if dup {
            self.count(|s| s.duplicated += 1);
            self.deliver(&p);
        }
        if let Some((held, _)) = self.held.take() {
            self.deliver(&held);
        }
    }

    fn deliver(&self, (to, bytes): &Pending) {
        match self.sock.send_to(bytes, sock_path(&self.dir, to)) {
            Ok(_) => self.count(|s| s.forwarded += 1),
            Err(_) => self.count(|s| s.undeliverable += 1),
        }
    }

    fn count(&self, f: impl FnOnce(&mut RelayStats)) {
        f(&mut self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv_until(ep: &SignalEndpoint, n: usize) -> Vec<(String, Vec<u8>)> {
        let mut got = Vec::new();
        for _ in 0..200 {
            while let Some(m) = ep.try_recv().expect("recv") {
                got.push(m);
            }
            if got.len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    #[test]
    fn framing_round_trips_and_rejects_garbage() {
        assert_eq!(unframe(&frame("b", b"x\ny")), Some(("b", &b"x\ny"[..])));
        assert_eq!(unframe(b"no newline"), None);
        assert_eq!(peer_name("str:alice"), "alice");
        assert_eq!(peer_name("ip:1.2.3.4"), "ip:1.2.3.4");
    }

    #[test]
    fn relay_forwards_with_the_sender_name_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let relay = SignalRelay::start(dir.path(), Impairment::default()).expect("relay");
        let a = SignalEndpoint::bind(dir.path(), "a").expect("a");
        let b = SignalEndpoint::bind(dir.path(), "b").expect("b");
        a.send("b", b"hello").expect("send");
        a.send("nobody", b"lost").expect("send");
        let got = recv_until(&b, 1);
        assert_eq!(got, vec![("a".to_owned(), b"hello".to_vec())]);
        std::thread::sleep(Duration::from_millis(50));
        let s = relay.stats();
        assert_eq!((s.received, s.forwarded, s.undeliverable), (2, 1, 1));
    }

    #[test]
    fn impairment_drops_duplicates_and_reorders_deterministically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let imp = Impairment {
            loss: 30.0,
            dup: 50.0,
            reorder: 20.0,
            seed: 7,
        };
        let relay = SignalRelay::start(dir.path(), imp).expect("relay");
        let a = SignalEndpoint::bind(dir.path(), "a").expect("a");
        let b = SignalEndpoint::bind(dir.path(), "b").expect("b");
        let mut got = Vec::new();
        for i in 0..200u32 {
            // Unix datagram queues are short (net.unix.max_dgram_qlen, often 10): pace.
            while let Err(e) = a.send("b", &i.to_le_bytes()) {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
                std::thread::sleep(Duration::from_millis(1));
            }
            while b.try_recv().expect("recv").is_some_and(|m| {
                got.push(m);
                true
            }) {}
        }
        // Wait until everything not dropped arrived (the last held datagram included).
        for _ in 0..400 {
            while let Some(m) = b.try_recv().expect("recv") {
                got.push(m);
            }
            let s = relay.stats();
            let all = s.received - s.dropped + s.duplicated;
            if s.received == 200 && s.forwarded == all && got.len() as u64 == all {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = relay.stats();
        assert_eq!(s.received, 200);
        assert!(s.dropped > 30 && s.dropped < 90, "{s:?}");
        assert!(s.duplicated > 40, "{s:?}");
        assert!(s.reordered > 5, "{s:?}");
        assert_eq!(s.forwarded, 200 - s.dropped + s.duplicated);
        assert_eq!(u64::try_from(got.len()).expect("len"), s.forwarded);
        let order: Vec<u32> = got
            .iter()
            .map(|(_, b)| u32::from_le_bytes(b[..4].try_into().expect("4 bytes")))
            .collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]), "nothing reordered");
    }
}
