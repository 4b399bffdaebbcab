//! One server [`Endpoint`] streaming bulk reliable data to many client endpoints through one
//! shared [`Bottleneck`](super::BottleneckConfig): the harness the congestion-control scenarios
//! run on. Real handshakes, real crypto, a virtual clock that jumps to the next event.
//!
//! ```text
//!  client 0 ──┐                                      ┌──► client 0   (verifies, counts bytes)
//!  client 1 ──┼── acks, requests (link delay) ──►    │
//!   ...       │                       server ──► [ bottleneck: drop-tail queue ─► rate ]
//!  client N ──┘    keeps every connection's send         └─ link delay ──► client N
//!                  buffer topped up with reliable messages
//!
//!  step: top up ─► poll_transmit (touched endpoints) ─► deliver due datagrams ─► drain
//!        messages; nothing due now ─► jump to min(next delivery, endpoint timeouts)
//! ```
//!
//! Every message carries (connection index, sequence number) and a pattern derived from both,
//! so a client checks each reliable message arrives intact, once and in order; anything else
//! is recorded as a [`Many::reliable_errors`] entry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::measure::{Goodput, ManyCounters, Snapshot, jain_index};
use super::{BottleneckConfig, BottleneckId, Datagram, LinkConditions, Network};
use crate::proto::connection::{ApiState, ConnError, ConnectionConfig, State};
use crate::proto::endpoint::{ConnectionId, Endpoint, EndpointConfig, EndpointError, Transmit};
use crate::proto::snp::{SendError, send_flags};
use crate::time::Timestamp;

/// Bytes of (connection index, sequence number) at the start of every message.
const HEADER: usize = 12;

/// Shape of a many-connection scenario.
#[derive(Debug, Clone)]
pub struct ManyConfig {
    /// Connections opened at the start; more can join later with [`Many::add_connection`].
    pub connections: usize,
    /// Conditions of every link, both directions (propagation delay, jitter, loss, ...).
    pub link: LinkConditions,
    /// The bottleneck every server-to-client datagram crosses.
    pub bottleneck: BottleneckConfig,
    /// Connection settings of the server, the sender under test.
    pub server: ConnectionConfig,
    /// Connection settings of the clients (receivers).
    pub client: ConnectionConfig,
    /// Size of each reliable message the server queues (at least 12 bytes).
    pub message_size: usize,
}

impl ManyConfig {
    /// `connections` clients at `rtt` (half each way) behind a bottleneck of
    /// `rate_bytes_per_sec` with a queue of one bandwidth-delay product; the server's send
    /// rate is limited to `send_rate_min..=send_rate_max`; 1 KiB messages. The server's send
    /// buffer is 64 KiB: the harness tops it up at every event, so it never runs dry, and
    /// 64 KiB is over a quarter second of data at a 250 kB/s share (larger only lengthens a
    /// drain after a collapse).
    pub fn game_server(
        connections: usize,
        rtt: Duration,
        rate_bytes_per_sec: u64,
        send_rate_min: u32,
        send_rate_max: u32,
    ) -> Self {
        let mut server = ConnectionConfig::default();
        server.snp.send_rate_min = send_rate_min;
        server.snp.send_rate_max = send_rate_max;
        server.snp.send_buffer_size = 64 * 1024;
        ManyConfig {
            connections,
            link: LinkConditions::with_delay(rtt / 2),
            bottleneck: BottleneckConfig::with_bdp_queue(rate_bytes_per_sec, rtt, 1.0),
            server,
            client: ConnectionConfig::default(),
            message_size: 1024,
        }
    }
}

/// One client and what it received.
#[derive(Debug)]
pub struct ManyClient {
    /// The client's endpoint.
    pub endpoint: Endpoint,
    /// The client's address.
    pub addr: SocketAddr,
    /// The client's connection handle.
    pub handle: ConnectionId,
    /// The server's handle for this connection, once it was accepted.
    pub server_handle: Option<ConnectionId>,
    /// When the connection was opened.
    pub started_at: Timestamp,
    /// When the client saw it connected.
    pub connected_at: Option<Timestamp>,
    /// Reliable messages the server queued for this client.
    pub sent_messages: u64,
    /// Messages received intact and in order.
    pub delivered_messages: u64,
    /// Payload bytes of those messages.
    pub delivered_bytes: u64,
    next_timeout: Option<Timestamp>,
}

/// A server and many clients on one simulated network, all server-to-client traffic through
/// one bottleneck.
#[derive(Debug)]
pub struct Many {
    /// The network.
    pub net: Network,
    /// Virtual now.
    pub now: Timestamp,
    /// The sending side.
    pub server: Endpoint,
    /// The server's address.
    pub server_addr: SocketAddr,
    /// The clients, by connection index.
    pub clients: Vec<ManyClient>,
    /// The shared bottleneck.
    pub bottleneck: BottleneckId,
    config: ManyConfig,
    seed: u64,
    by_addr: HashMap<SocketAddr, usize>,
    by_server_handle: HashMap<ConnectionId, usize>,
    /// Indices of clients touched since their transmits were last polled.
    touched: Vec<usize>,
    server_timeout: Option<Timestamp>,
    sending: bool,
    errors: Vec<String>,
    error_count: u64,
    buf: Vec<u8>,
}

impl Many {
    /// A server and `config.connections` clients, all starting to connect now. All
    /// randomness derives from `seed`.
    pub fn new(seed: u64, config: ManyConfig) -> Self {
        assert!(
            config.message_size >= HEADER,
            "messages carry a 12-byte header"
        );
        let mut net = Network::new(seed, config.link.clone());
        let bottleneck = net.add_bottleneck(config.bottleneck);
        let server_addr = SocketAddr::from(([10, 255, 0, 1], 27015));
        let server = Endpoint::new(
            EndpointConfig {
                listen: true,
                connection: config.server,
                ..Default::default()
            },
            seed.wrapping_add(1),
            &super::sim_secret(seed.wrapping_add(1)),
        );
        let mut many = Many {
            net,
            now: Timestamp::from_micros(1_000_000),
            server,
            server_addr,
            clients: Vec::new(),
            bottleneck,
            seed,
            by_addr: HashMap::new(),
            by_server_handle: HashMap::new(),
            touched: Vec::new(),
            server_timeout: None,
            sending: true,
            errors: Vec::new(),
            error_count: 0,
            buf: Vec::with_capacity(1500),
            config,
        };
        for _ in 0..many.config.connections {
            many.add_connection();
        }
        many
    }

    /// Opens one more client connection now; returns its index.
    pub fn add_connection(&mut self) -> usize {
        let i = self.clients.len();
        let [hi, lo] = u16::try_from(i + 1)
            .expect("invariant: fewer than 65535 clients")
            .to_be_bytes();
        let addr = SocketAddr::from(([10, 0, hi, lo], 50000));
        let mut endpoint = Endpoint::new(
            EndpointConfig {
                connection: self.config.client,
                ..Default::default()
            },
            self.seed.wrapping_add(1000 + i as u64),
            &super::sim_secret(self.seed.wrapping_add(1000 + i as u64)),
        );
        let handle = endpoint
            .connect(self.now, self.server_addr.into(), None)
            .expect("invariant: a fresh endpoint has free connection ids");
        self.net
            .route_through(self.server_addr, addr, self.bottleneck);
        self.by_addr.insert(addr, i);
        self.clients.push(ManyClient {
            endpoint,
            addr,
            handle,
            server_handle: None,
            started_at: self.now,
            connected_at: None,
            sent_messages: 0,
            delivered_messages: 0,
            delivered_bytes: 0,
            next_timeout: None,
        });
        self.touched.push(i);
        i
    }

    /// Stops queueing new messages (what is queued still goes out).
    pub fn stop_sending(&mut self) {
        self.sending = false;
    }

    /// The scenario's configuration.
    pub fn config(&self) -> &ManyConfig {
        &self.config
    }

    /// The first reliable-delivery violations seen (up to 20), described.
    pub fn reliable_errors(&self) -> &[String] {
        &self.errors
    }

    /// Per-connection delivered bytes now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: self.now,
            delivered: self.clients.iter().map(|c| c.delivered_bytes).collect(),
        }
    }

    /// Goodput from `since` to now, over the connections that existed at `since`.
    pub fn goodput_since(&self, since: &Snapshot) -> Goodput {
        let interval = self.now.saturating_since(since.at);
        let secs = interval.as_secs_f64().max(1e-9);
        let per_connection: Vec<f64> = since
            .delivered
            .iter()
            .zip(&self.clients)
            .map(|(before, c)| (c.delivered_bytes - before) as f64 / secs)
            .collect();
        let total: f64 = per_connection.iter().sum();
        Goodput {
            interval,
            link_fraction: total / self.config.bottleneck.rate_bytes_per_sec as f64,
            jain: jain_index(&per_connection),
            per_connection,
        }
    }

    /// Sender, network and bottleneck counters so far.
    pub fn counters(&self) -> ManyCounters {
        let mut c = ManyCounters {
            packets_sent: 0,
            retransmitted_segments: 0,
            packets_timed_out: 0,
            bottleneck: self.net.bottleneck_stats(self.bottleneck),
            datagrams_delivered: self.net.stats().delivered,
            messages_sent: 0,
            messages_delivered: 0,
            reliable_errors: self.error_count,
        };
        for client in &self.clients {
            c.messages_sent += client.sent_messages;
            c.messages_delivered += client.delivered_messages;
            let Some(conn) = client.server_handle.and_then(|h| self.server.connection(h)) else {
                continue;
            };
            let k = conn.snp().counters();
            c.packets_sent += k.packets_sent;
            c.retransmitted_segments += k.retransmitted_segments;
            c.packets_timed_out += k.packets_timed_out;
        }
        c
    }

    /// Connections whose server side is not yet, or no longer, connected.
    pub fn not_connected(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| {
                self.clients[i]
                    .server_handle
                    .and_then(|h| self.server.connection(h))
                    .is_none_or(|c| c.state() != State::Connected)
            })
            .collect()
    }

    /// Connections with queued, unacked or undelivered reliable data.
    pub fn unfinished(&mut self) -> Vec<usize> {
        let now = self.now;
        let mut out = Vec::new();
        for (i, client) in self.clients.iter().enumerate() {
            let idle = client
                .server_handle
                .and_then(|h| self.server.connection_mut(h))
                .is_some_and(|c| {
                    let s = c.status(now);
                    s.pending_reliable == 0 && s.sent_unacked_reliable == 0
                });
            if !idle || client.delivered_messages != client.sent_messages {
                out.push(i);
            }
        }
        out
    }

    /// Stops sending and runs until every queued message is acked and delivered, for at most
    /// `within` of virtual time. Returns the connections still unfinished (empty: no loss).
    pub fn drain(&mut self, within: Duration) -> Vec<usize> {
        self.stop_sending();
        let limit = self.now + within;
        let tick = Duration::from_millis(10);
        while self.now < limit {
            if self.unfinished().is_empty() {
                break;
            }
            let until = (self.now + tick).min(limit);
            self.run_until(until);
        }
        self.unfinished()
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until virtual time reaches `limit`.
    pub fn run_until(&mut self, limit: Timestamp) {
        while self.step(limit) {}
        self.now = self.now.max(limit);
    }

    /// Processes everything due now, or jumps to the next event. False when the next event
    /// is after `limit`.
    fn step(&mut self, limit: Timestamp) -> bool {
        self.accept_and_top_up();
        self.flush();
        if self.deliver() > 0 {
            return true;
        }
        let mut next = self.net.next_delivery();
        for t in self
            .clients
            .iter()
            .filter_map(|c| c.next_timeout)
            .chain(self.server_timeout)
        {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let Some(next) = next.filter(|t| *t <= limit) else {
            return false;
        };
        self.now = self.now.max(next);
        if self.server_timeout.is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        for i in 0..self.clients.len() {
            if self.clients[i].next_timeout.is_some_and(|t| t <= self.now) {
                self.clients[i].endpoint.handle_timeout(self.now);
                self.touched.push(i);
            }
        }
        true
    }

    /// Accepts incoming connections and keeps every connected one's send buffer full.
    fn accept_and_top_up(&mut self) {
        while let Some(e) = self.server.poll_event() {
            if e.change.new != ApiState::Connecting || !e.incoming {
                continue;
            }
            let peer = self.server.connection(e.connection).map(|c| c.peer());
            let Some(&i) = peer.as_ref().and_then(|p| self.by_addr.get(p)) else {
                continue;
            };
            if self.server.accept(self.now, e.connection).is_ok() {
                self.clients[i].server_handle = Some(e.connection);
                self.by_server_handle.insert(e.connection, i);
            }
        }
        if !self.sending {
            return;
        }
        let size = self.config.message_size;
        for i in 0..self.clients.len() {
            let Some(h) = self.clients[i].server_handle else {
                continue;
            };
            loop {
                let room = match self.server.connection(h) {
                    Some(c) if c.state() == State::Connected => c.snp().send_buffer_available(),
                    _ => 0,
                };
                if room < size {
                    break;
                }
                let seq = self.clients[i].sent_messages;
                let body = message(i, seq, size);
                let flags = send_flags::RELIABLE | send_flags::NO_NAGLE;
                match self.server.send_message(self.now, h, 0, flags, body) {
                    Ok(_) => self.clients[i].sent_messages += 1,
                    Err(EndpointError::Conn(ConnError::Send(SendError::LimitExceeded))) => break,
                    Err(e) => panic!("server send to connection {i} failed: {e}"),
                }
            }
        }
    }

    /// Sends what the server and every touched client want to send now.
    fn flush(&mut self) {
        while let Some(Transmit { to, .. }) = {
            self.buf.clear();
            self.server.poll_transmit(self.now, &mut self.buf)
        } {
            let dg = Datagram {
                from: self.server_addr,
                to,
                payload: self.buf.clone(),
            };
            self.net.send(self.now, dg);
        }
        self.server_timeout = self.server.poll_timeout(self.now);
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for &i in &touched {
            let client = &mut self.clients[i];
            while let Some(Transmit { to, .. }) = {
                self.buf.clear();
                client.endpoint.poll_transmit(self.now, &mut self.buf)
            } {
                let dg = Datagram {
                    from: client.addr,
                    to,
                    payload: self.buf.clone(),
                };
                self.net.send(self.now, dg);
            }
            client.next_timeout = client.endpoint.poll_timeout(self.now);
        }
        touched.clear();
        self.touched = touched;
    }

    /// Delivers the datagrams due now; returns how many.
    fn deliver(&mut self) -> usize {
        let mut n = 0;
        while let Some(mut dg) = self.net.poll_deliver(self.now) {
            n += 1;
            if dg.to == self.server_addr {
                self.server
                    .handle_datagram(self.now, dg.from.into(), &mut dg.payload);
            } else if let Some(&i) = self.by_addr.get(&dg.to) {
                self.clients[i]
                    .endpoint
                    .handle_datagram(self.now, dg.from.into(), &mut dg.payload);
                self.receive(i);
                self.touched.push(i);
            }
        }
        n
    }

    /// Drains client `i`'s messages and events, checking every message.
    fn receive(&mut self, i: usize) {
        let now = self.now;
        let client = &mut self.clients[i];
        while client.endpoint.poll_event().is_some() {}
        if client.connected_at.is_none()
            && client
                .endpoint
                .connection(client.handle)
                .is_some_and(|c| c.state() == State::Connected)
        {
            client.connected_at = Some(now);
        }
        while let Some(m) = client.endpoint.poll_message(client.handle) {
            let expected = client.delivered_messages;
            let problem = if !m.reliable {
                Some("an unreliable message".to_owned())
            } else if m.data.len() != self.config.message_size {
                Some(format!("{} bytes", m.data.len()))
            } else if m.data != message(i, expected, self.config.message_size) {
                let (conn, seq) = header(&m.data);
                Some(format!("message (conn {conn}, seq {seq}) or corrupt"))
            } else {
                None
            };
            match problem {
                None => {
                    client.delivered_messages += 1;
                    client.delivered_bytes += m.data.len() as u64;
                }
                Some(what) => {
                    self.error_count += 1;
                    if self.errors.len() < 20 {
                        self.errors.push(format!(
                            "connection {i} at {now:?}: expected seq {expected}, got {what}"
                        ));
                    }
                }
            }
        }
    }
}

/// The `seq`-th message to connection `conn`: its index, its number, then a pattern of both.
fn message(conn: usize, seq: u64, size: usize) -> Vec<u8> {
    let conn = u32::try_from(conn).expect("invariant: fewer than 65535 clients");
    let mut m = Vec::with_capacity(size);
    m.extend_from_slice(&conn.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(conn);
    while m.len() < size {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        m.push((x >> 56) as u8);
    }
    m
}

/// The (connection, sequence) header of a message of at least [`HEADER`] bytes.
fn header(m: &[u8]) -> (u32, u64) {
    let mut conn = [0u8; 4];
    let mut seq = [0u8; 8];
    conn.copy_from_slice(&m[..4]);
    seq.copy_from_slice(&m[4..HEADER]);
    (u32::from_le_bytes(conn), u64::from_le_bytes(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_differ_by_connection_and_sequence() {
        let m = message(3, 7, 64);
        assert_eq!(header(&m), (3, 7));
        assert_ne!(m, message(3, 8, 64));
        assert_ne!(m, message(4, 7, 64));
        assert_eq!(m, message(3, 7, 64));
    }

    #[test]
    fn few_connections_through_a_wide_bottleneck_deliver_everything() {
        let mut config =
            ManyConfig::game_server(4, Duration::from_millis(20), 4_000_000, 262_144, 262_144);
        config.server.snp.send_buffer_size = 32 * 1024;
        let mut many = Many::new(crate::testing::seed_from_env(11), config);
        many.run_for(Duration::from_millis(500));
        let late = many.add_connection();
        many.run_for(Duration::from_millis(500));
        assert!(many.not_connected().is_empty());
        assert!(many.clients[late].delivered_messages > 0);
        assert_eq!(many.drain(Duration::from_secs(5)), Vec::<usize>::new());
        assert!(
            many.reliable_errors().is_empty(),
            "{:?}",
            many.reliable_errors()
        );
        let c = many.counters();
        assert_eq!(c.messages_sent, c.messages_delivered);
        assert_eq!(c.bottleneck.dropped, 0, "4 x 256 KiB/s fits 4 MB/s");
    }
}
