//! A UDP impairment proxy on loopback: honest clients connect to [`Proxy::addr`], each client
//! address gets its own upstream socket to the server (so the server sees one source per
//! client), and data packets (lead byte 0x80..) are, for a fraction of them, replayed,
//! truncated, bit-flipped, swapped with the next one, or accompanied by forged packets carrying
//! the live connection id (bytes 1..5 of the header, `wire::header`) or a random one. Handshake
//! (control) packets pass untouched, so connections form.
//!
//! ```text
//!  client sockets ──► front (one thread) ──► upstream[client] ──► server
//!  client sockets ◄── front ◄── one thread per upstream socket ◄── server
//!                  (each direction impaired by its own Impairer)
//! ```

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed bind or lock is a failed test"
)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A seeded xorshift64* generator (tests need no more).
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform below `n` (> 0), near enough.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How much to impair.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Impairments {
    /// Percent of data packets that get one of the impairments.
    pub percent: usize,
}

impl Default for Impairments {
    fn default() -> Self {
        Self { percent: 10 }
    }
}

/// What the proxy did, summed over both directions.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub forwarded: AtomicU64,
    pub replayed: AtomicU64,
    pub truncated: AtomicU64,
    pub flipped: AtomicU64,
    pub reordered: AtomicU64,
    pub forged_live: AtomicU64,
    pub forged_random: AtomicU64,
}

/// A plain copy of [`Counts`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    pub forwarded: u64,
    pub replayed: u64,
    pub truncated: u64,
    pub flipped: u64,
    pub reordered: u64,
    pub forged_live: u64,
    pub forged_random: u64,
}

/// One direction's impairment state.
struct Impairer {
    rng: XorShift,
    percent: usize,
    /// Recent data packets, for replays.
    recent: Vec<Vec<u8>>,
    /// A packet held back to go out after the next one.
    held: Option<Vec<u8>>,
    counts: Arc<Counts>,
}

impl Impairer {
    fn new(seed: u64, percent: usize, counts: Arc<Counts>) -> Self {
        Self {
            rng: XorShift::new(seed),
            percent,
            recent: Vec::new(),
            held: None,
            counts,
        }
    }

    fn forged(&mut self, lead: u8, id: [u8; 4]) -> Vec<u8> {
        let len = 8 + self.rng.below(200);
        let mut p: Vec<u8> = (0..len).map(|_| self.rng.next() as u8).collect();
        // A data packet without the optional header fields, for `id`.
        p[0] = (lead | 0x80) & !0x03;
        p[1..5].copy_from_slice(&id);
        p
    }

    /// Passes `pkt` on through `send`, impaired or not.
    fn forward(&mut self, pkt: &[u8], mut send: impl FnMut(&[u8])) {
        let c = &self.counts;
        c.forwarded.fetch_add(1, Ordering::Relaxed);
        let data = pkt.len() >= 7 && pkt[0] & 0x80 != 0;
        if !data || self.rng.below(100) >= self.percent {
            send(pkt);
            self.release(&mut send);
            return;
        }
        if self.recent.len() < 64 {
            self.recent.push(pkt.to_vec());
        } else {
            let i = self.rng.below(64);
            self.recent[i] = pkt.to_vec();
        }
        let id: [u8; 4] = pkt[1..5].try_into().unwrap();
        match self.rng.below(6) {
            0 => {
                c.replayed.fetch_add(1, Ordering::Relaxed);
                send(pkt);
                let old = self.rng.below(self.recent.len());
                send(&self.recent[old]);
            }
            1 => {
                c.truncated.fetch_add(1, Ordering::Relaxed);
                send(&pkt[..self.rng.below(pkt.len())]);
                send(pkt);
            }
            2 => {
                c.flipped.fetch_add(1, Ordering::Relaxed);
                let mut f = pkt.to_vec();
                let bit = self.rng.below((f.len() - 1) * 8);
                f[1 + bit / 8] ^= 1 << (bit % 8);
                send(&f);
                // Half the time the original is lost: the corrupted copy was all there was.
                if self.rng.below(2) == 0 {
                    send(pkt);
                }
            }
            3 => {
                c.reordered.fetch_add(1, Ordering::Relaxed);
                match self.held.take() {
                    None => self.held = Some(pkt.to_vec()),
                    Some(h) => {
                        send(pkt);
                        send(&h);
                    }
                }
                return;
            }
            4 => {
                c.forged_live.fetch_add(1, Ordering::Relaxed);
                let f = self.forged(pkt[0], id);
                send(&f);
                send(pkt);
            }
            _ => {
                c.forged_random.fetch_add(1, Ordering::Relaxed);
                let random = (self.rng.next() as u32).to_le_bytes();
                let f = self.forged(pkt[0], random);
                send(&f);
                send(pkt);
            }
        }
        self.release(&mut send);
    }

    /// Sends the held packet, if any (after the next packet, or when the line goes idle).
    fn release(&mut self, send: &mut impl FnMut(&[u8])) {
        if let Some(h) = self.held.take() {
            send(&h);
        }
    }
}

/// Reads `sock` until `stop`, idling in short timeouts (releasing held packets).
fn pump(sock: &UdpSocket, stop: &AtomicBool, mut on: impl FnMut(Option<(&[u8], SocketAddr)>)) {
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => on(Some((&buf[..n], from))),
            Err(_) => on(None),
        }
    }
}

/// The proxy's threads; [`Proxy::stop`] ends them.
pub(crate) struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    front: Option<JoinHandle<()>>,
    upstreams: Arc<Mutex<Vec<JoinHandle<()>>>>,
    counts: Arc<Counts>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 in front of `server`.
    pub(crate) fn start(server: SocketAddr, imp: Impairments, seed: u64) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let upstreams = Arc::new(Mutex::new(Vec::new()));
        let (stop2, counts2, ups) = (stop.clone(), counts.clone(), upstreams.clone());
        let front_thread = std::thread::spawn(move || {
            // Each client's upstream socket and the impairer of its packets to the server.
            let mut routes: HashMap<SocketAddr, (Arc<UdpSocket>, Impairer)> = HashMap::new();
            let front2 = front.clone();
            pump(&front, &stop2, |got| {
                let Some((pkt, from)) = got else {
                    // Idle: packets held back for reordering go out now.
                    for (up, imp) in routes.values_mut() {
                        imp.release(&mut |p: &[u8]| {
                            let _ = up.send(p);
                        });
                    }
                    return;
                };
                let (up, to_server) = routes.entry(from).or_insert_with(|| {
                    let up = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                    up.connect(server).unwrap();
                    let (up2, front3, stop3) = (up.clone(), front2.clone(), stop2.clone());
                    let salt = u64::from(from.port()) << 17;
                    let mut back = Impairer::new(seed ^ salt ^ 1, imp.percent, counts2.clone());
                    let t = std::thread::spawn(move || {
                        pump(&up2, &stop3, |got| {
                            let mut send = |p: &[u8]| {
                                let _ = front3.send_to(p, from);
                            };
                            match got {
                                Some((pkt, _)) => back.forward(pkt, send),
                                None => back.release(&mut send),
                            }
                        });
                    });
                    ups.lock().unwrap().push(t);
                    let to_server = Impairer::new(seed ^ salt, imp.percent, counts2.clone());
                    (up, to_server)
                });
                to_server.forward(pkt, |p| {
                    let _ = up.send(p);
                });
            });
        });
        Self {
            addr,
            stop,
            front: Some(front_thread),
            upstreams,
            counts,
        }
    }

    /// Where clients connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the threads and returns what they did.
    pub(crate) fn stop(mut self) -> Done {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.front.take() {
            t.join().unwrap();
        }
        for t in self.upstreams.lock().unwrap().drain(..) {
            t.join().unwrap();
        }
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Done {
            forwarded: get(&c.forwarded),
            replayed: get(&c.replayed),
            truncated: get(&c.truncated),
            flipped: get(&c.flipped),
            reordered: get(&c.reordered),
            forged_live: get(&c.forged_live),
            forged_random: get(&c.forged_random),
        }
    }
}
