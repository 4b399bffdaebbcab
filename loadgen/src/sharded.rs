//! The main job on the thread-per-core runtime: an echo server of N shards (one socket each in
//! a SO_REUSEPORT group) and a client runtime whose shards each drive their share of the client
//! connections with a window of reliable messages in flight, checking every echo byte for byte
//! and in order and recording round-trip times.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use sockworks_engine::proto::connection::{ConnError, State};
use sockworks_engine::proto::endpoint::{ConnectionId, Endpoint, EndpointError};
use sockworks_engine::proto::snp::{SendError, send_flags};
use sockworks_engine::shard::App;
use sockworks_engine::time::Timestamp;

pub(crate) use sockworks_engine::shard::EchoApp;

/// Totals the client shards add to.
#[derive(Debug)]
pub(crate) struct Progress {
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
    pub(crate) fn new() -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Progress {
            connected: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            echoed: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            rtt: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        }))
    }
}

/// A message: sequence number, send time (µs), then a pattern derived from the sequence.
pub(crate) fn payload(seq: u64, sent_at: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&sent_at.to_le_bytes());
    v.extend((16..size).map(|i| (i as u64 ^ seq) as u8));
    v
}

struct Flow {
    id: ConnectionId,
    up: bool,
    next_seq: u64,
    next_echo: u64,
}

/// One client shard's share of the load.
pub(crate) struct ClientApp {
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
    pub(crate) fn new(
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
            match ep.connect(now, self.server.into(), None) {
                Ok(id) => self.flows.push(Flow {
                    id,
                    up: false,
                    next_seq: 0,
                    next_echo: 0,
                }),
                Err(_) => self.progress.failed.store(true, Ordering::Relaxed),
            }
            self.to_open -= 1;
        }
        while ep.poll_event().is_some() {}
        let go = self.start.load(Ordering::Relaxed);
        for f in &mut self.flows {
            if !f.up {
                if ep
                    .connection(f.id)
                    .is_some_and(|c| c.state() == State::Connected)
                {
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
                match ep.send_message(
                    now,
                    f.id,
                    0,
                    send_flags::RELIABLE,
                    payload(f.next_seq, now.as_micros(), self.size),
                ) {
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
pub(crate) fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let steps = limit.as_millis().max(1);
    for _ in 0..steps {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// One run of the sharded load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Client connections in total.
    pub connections: u32,
    /// Messages per connection.
    pub messages: u64,
    /// Message size (≥ 16).
    pub size: usize,
    /// In flight per connection.
    pub window: u64,
    /// Send rate per connection, bytes/s.
    pub rate: u32,
    /// Server shard threads.
    pub server_shards: usize,
    /// Client shard threads.
    pub client_shards: usize,
    /// Pin shards to cores.
    pub pin: bool,
    /// Wall-clock bound.
    pub max: Duration,
    /// Seed.
    pub seed: u64,
    /// Kernel I/O backend.
    pub backend: sockworks_engine::driver::any::Backend,
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Report {
    /// Time until every connection was up.
    pub connect_time: Duration,
    /// First send to last echo.
    pub transfer_time: Duration,
    /// Messages sent.
    pub sent: u64,
    /// Echoes received intact and in order.
    pub echoed: u64,
    /// Round-trip times, µs.
    pub rtt: Histogram<u64>,
    /// Datagrams the server shards received.
    pub server_in: u64,
    /// Datagrams the server shards sent.
    pub server_out: u64,
    /// Server receive calls that returned data.
    pub server_recv_batches: u64,
    /// Server send calls.
    pub server_send_batches: u64,
    /// Data packets forwarded between server shards.
    pub forwarded: u64,
    /// CPU time of all server shards.
    pub server_cpu: Duration,
}

/// Endpoint settings for both sides of the load: the given per-connection rate, no Nagle delay
/// (every message is latency-measured).
pub(crate) fn endpoint_config(
    listen: bool,
    rate: u32,
) -> sockworks_engine::proto::endpoint::EndpointConfig {
    let mut c = sockworks_engine::proto::connection::ConnectionConfig::default();
    c.snp.send_rate_min = rate;
    c.snp.send_rate_max = rate;
    c.snp.nagle = Duration::ZERO;
    sockworks_engine::proto::endpoint::EndpointConfig {
        listen,
        connection: c,
        ..Default::default()
    }
}

/// Runs the load on two runtimes (server, client) over UDP loopback.
pub(crate) fn run(load: &Load) -> anyhow::Result<Report> {
    use sockworks_engine::driver::any::AnyDriver;
    use sockworks_engine::shard::{Runtime, RuntimeConfig};
    use std::os::fd::AsFd;

    anyhow::ensure!(
        load.size >= 16,
        "messages carry a 16-byte header: size must be at least 16"
    );
    let n = load.server_shards.max(1);
    let port = Mutex::new(0u16);
    let bits = sockworks_engine::shard::runtime_shard_bits(n);
    let server_cfg = RuntimeConfig {
        shards: n,
        pin: load.pin,
        busy_poll: false,
        coalesce: sockworks_engine::shard::COALESCE_DEFAULT,
        batch: 64,
        endpoint: endpoint_config(true, load.rate),
        seed: load.seed ^ 0x5e,
        secret: None,
    };
    let server = Runtime::start(
        server_cfg,
        |i| {
            let mut p = port.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            let d = AnyDriver::bind(SocketAddr::from(([127, 0, 0, 1], *p)), load.backend)?;
            if i == 0 {
                *p = sockworks_engine::driver::Driver::local_addr(&d)?.port();
            }
            if i + 1 == n && n > 1 {
                // Steering is best effort: without it, the forwarding path keeps correctness.
                let _ = sockworks_engine::driver::steering::attach_steering(d.as_fd(), bits);
            }
            Ok(d)
        },
        |_| EchoApp,
    )?;
    let server_addr = server.local_addrs()[0];
    let progress = Progress::new()?;
    let start = Arc::new(AtomicBool::new(false));
    let m = load.client_shards.max(1);
    let per = (load.connections as usize).div_ceil(m);
    let client_cfg = RuntimeConfig {
        shards: m,
        pin: load.pin,
        busy_poll: false,
        coalesce: sockworks_engine::shard::COALESCE_DEFAULT,
        batch: 64,
        endpoint: endpoint_config(false, load.rate),
        seed: load.seed,
        secret: None,
    };
    let apps_progress = progress.clone();
    let apps_start = start.clone();
    let total_conns = load.connections as usize;
    let client = Runtime::start(
        client_cfg,
        |_| AnyDriver::bind(SocketAddr::from(([127, 0, 0, 1], 0)), load.backend),
        move |i| {
            let mine = per.min(total_conns.saturating_sub(i * per));
            ClientApp::new(
                server_addr,
                mine,
                load.messages,
                load.size,
                load.window,
                apps_progress.clone(),
                apps_start.clone(),
            )
            .expect("histogram bounds are valid")
        },
    )?;
    let clock = sockworks_engine::shard::Clock::new();
    let t0 = clock.now();
    let up = wait_until(load.max, || {
        progress.connected.load(Ordering::Relaxed) >= u64::from(load.connections)
            || progress.failed.load(Ordering::Relaxed)
    });
    let t1 = clock.now();
    start.store(true, Ordering::Relaxed);
    // Idle shards sleep until their next deadline: wake them to see the start flag.
    for i in 0..m {
        if let Some(mb) = client.mailbox(i) {
            mb.wake();
        }
    }
    let total = u64::from(load.connections) * load.messages;
    let done = up
        && wait_until(load.max, || {
            progress.echoed.load(Ordering::Relaxed) >= total
                || progress.failed.load(Ordering::Relaxed)
        });
    let t2 = clock.now();
    client.stop()?;
    let server_stats = server.stop()?;
    anyhow::ensure!(
        up,
        "only {} of {} connections came up",
        progress.connected.load(Ordering::Relaxed),
        load.connections
    );
    anyhow::ensure!(
        !progress.failed.load(Ordering::Relaxed),
        "an echo was corrupted, out of order, or a send failed"
    );
    anyhow::ensure!(
        done,
        "timed out with {} of {total} echoes",
        progress.echoed.load(Ordering::Relaxed)
    );
    let rtt = progress
        .rtt
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    Ok(Report {
        connect_time: t1 - t0,
        transfer_time: t2 - t1,
        sent: progress.sent.load(Ordering::Relaxed),
        echoed: progress.echoed.load(Ordering::Relaxed),
        rtt,
        server_in: server_stats.iter().map(|s| s.datagrams_in).sum(),
        server_out: server_stats.iter().map(|s| s.datagrams_out).sum(),
        server_recv_batches: server_stats.iter().map(|s| s.recv_batches).sum(),
        server_send_batches: server_stats.iter().map(|s| s.send_batches).sum(),
        forwarded: server_stats.iter().map(|s| s.forwarded_out).sum(),
        server_cpu: Duration::from_micros(server_stats.iter().map(|s| s.cpu_usec).sum()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockworks_engine::driver::any::Backend;

    fn load(server_shards: usize, client_shards: usize) -> Load {
        Load {
            connections: 16,
            messages: 200,
            size: 600,
            window: 8,
            rate: 8_000_000,
            server_shards,
            client_shards,
            pin: false,
            max: Duration::from_secs(30),
            seed: 11,
            backend: Backend::Mmsg,
        }
    }

    #[test]
    fn sharded_echo_delivers_everything_in_order() {
        let r = run(&load(1, 1)).unwrap();
        assert_eq!(r.sent, 16 * 200);
        assert_eq!(r.echoed, r.sent);
        assert!(r.server_in >= r.server_recv_batches, "batched receive");
    }

    #[test]
    fn steered_shards_forward_nothing() {
        // Two server shards in one SO_REUSEPORT group with the steering program, two client
        // shards (two source sockets): every data packet lands on the shard that owns it.
        let r = run(&load(2, 2)).unwrap();
        assert_eq!(r.echoed, r.sent);
        assert_eq!(
            r.forwarded, 0,
            "BPF steering sent every data packet to its owner"
        );
    }
}
