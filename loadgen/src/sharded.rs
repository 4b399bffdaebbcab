//! The main job on the thread-per-core runtime: an echo server of N shards (one socket each in
//! a SO_REUSEPORT group) and a client runtime whose shards each drive their share of the client
//! connections with a window of reliable messages in flight, checking every echo byte for byte
//! and in order and recording round-trip times.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use sockworks_engine::proto::connection::{ApiState, ConnError, State};
use sockworks_engine::proto::endpoint::{Endpoint, EndpointError};
use sockworks_engine::proto::snp::{SendError, send_flags};
use sockworks_engine::shard::App;
use sockworks_engine::time::Timestamp;

/// Accepts every connection and echoes every message (reliable, same lane).
#[derive(Debug, Default)]
pub struct EchoApp {
    conns: Vec<u32>,
}

impl App for EchoApp {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        while let Some(ev) = ep.poll_event() {
            if ev.incoming && ev.change.new == ApiState::Connecting && ep.accept(now, ev.connection).is_ok() {
                self.conns.push(ev.connection);
            }
            if matches!(ev.change.new, ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally) {
                let _ = ep.close(now, ev.connection, 0, "", false);
                self.conns.retain(|&c| c != ev.connection);
            }
        }
        for &c in &self.conns {
            while let Some(m) = ep.poll_message(c) {
                // The client's window bounds what is queued, so the echo always fits.
                let _ = ep.send_message(now, c, m.lane, send_flags::RELIABLE, m.data);
            }
        }
    }
}

/// Totals the client shards add to.
#[derive(Debug)]
pub struct Progress {
    /// Connections up.
    pub connected: AtomicU64,
    /// Messages sent.
    pub sent: AtomicU64,
    /// Echoes received intact and in order.
    pub echoed: AtomicU64,
    /// Set on the first corrupted or out-of-order echo or failed send.
    pub failed: AtomicBool,
    /// Round-trip times, merged from every shard at the end.
    pub rtt: Mutex<Histogram<u64>>,
}

impl Progress {
    /// Empty totals.
    pub fn new() -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Progress {
            connected: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            echoed: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            rtt: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        }))
    }
}

fn payload(seq: u64, sent_at: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&sent_at.to_le_bytes());
    v.extend((16..size).map(|i| (i as u64 ^ seq) as u8));
    v
}

struct Flow {
    id: u32,
    up: bool,
    next_seq: u64,
    next_echo: u64,
}

/// One client shard's share of the load.
pub struct ClientApp {
    server: SocketAddr,
    to_open: usize,
    flows: Vec<Flow>,
    messages: u64,
    size: usize,
    window: u64,
    progress: Arc<Progress>,
    rtt: Histogram<u64>,
    start: Arc<AtomicBool>,
}

impl ClientApp {
    /// `connections` flows to `server`, each sending `messages` of `size` bytes with `window`
    /// in flight, once `start` is set (so every connection is up before timing starts).
    pub fn new(
        server: SocketAddr,
        connections: usize,
        messages: u64,
        size: usize,
        window: u64,
        progress: Arc<Progress>,
        start: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        Ok(ClientApp {
            server,
            to_open: connections,
            flows: Vec::with_capacity(connections),
            messages,
            size,
            window,
            progress,
            rtt: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            start,
        })
    }
}

impl Drop for ClientApp {
    fn drop(&mut self) {
        if let Ok(mut h) = self.progress.rtt.lock() {
            let _ = h.add(&self.rtt);
        }
    }
}

impl App for ClientApp {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        while self.to_open > 0 {
            match ep.connect(now, self.server, None) {
                Ok(id) => self.flows.push(Flow { id, up: false, next_seq: 0, next_echo: 0 }),
                Err(_) => self.progress.failed.store(true, Ordering::Relaxed),
            }
            self.to_open -= 1;
        }
        while ep.poll_event().is_some() {}
        let go = self.start.load(Ordering::Relaxed);
        for f in &mut self.flows {
            if !f.up {
                if ep.connection(f.id).is_some_and(|c| c.state() == State::Connected) {
                    f.up = true;
                    self.progress.connected.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            while let Some(m) = ep.poll_message(f.id) {
                let seq = u64::from_le_bytes(m.data[..8].try_into().unwrap_or_default());
                let at = u64::from_le_bytes(m.data[8..16].try_into().unwrap_or_default());
                if seq != f.next_echo || m.data != payload(seq, at, self.size) {
                    self.progress.failed.store(true, Ordering::Relaxed);
                }
                f.next_echo = seq + 1;
                self.progress.echoed.fetch_add(1, Ordering::Relaxed);
                let _ = self.rtt.record(now.as_micros().saturating_sub(at).max(1));
            }
            while go && f.next_seq < self.messages && f.next_seq < f.next_echo + self.window {
                match ep.send_message(now, f.id, 0, send_flags::RELIABLE, payload(f.next_seq, now.as_micros(), self.size)) {
                    Ok(_) => {
                        f.next_seq += 1;
                        self.progress.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(EndpointError::Conn(ConnError::Send(SendError::LimitExceeded))) => break,
                    Err(_) => {
                        self.progress.failed.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
    }
}

/// Waits (polling shared counters, 1 ms steps) until `cond` or `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let steps = limit.as_millis().max(1);
    for _ in 0..steps {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}
