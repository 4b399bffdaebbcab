//! Two [`Endpoint`]s joined by a simulated [`Network`] with a virtual clock: the harness every
//! protocol scenario runs on. Nothing sleeps; time jumps to the next event.
//!
//! ```text
//!  loop: both endpoints poll_transmit → network.send
//!        deliver every datagram due now → handle_datagram
//!        nothing left at `now` → jump to min(next delivery, endpoint timeouts), handle_timeout
//! ```

use std::net::SocketAddr;

use super::{Datagram, LinkConditions, Network};
use crate::proto::connection::{ApiState, State};
use crate::proto::endpoint::{ConnectionId, Endpoint, EndpointConfig, Transmit};
use crate::time::Timestamp;

/// Client and server endpoints on a simulated network.
#[derive(Debug)]
pub struct Pair {
    /// The network between them.
    pub net: Network,
    /// Virtual now.
    pub now: Timestamp,
    /// The connecting side.
    pub client: Endpoint,
    /// The listening side.
    pub server: Endpoint,
    /// Client's address.
    pub client_addr: SocketAddr,
    /// Server's address.
    pub server_addr: SocketAddr,
    buf: Vec<u8>,
    /// Datagrams moved so far.
    pub datagrams: u64,
}

impl Pair {
    /// A pair whose randomness (keys, ids, network fate) all derives from `seed`.
    pub fn new(
        seed: u64,
        link: LinkConditions,
        server: EndpointConfig,
        client: EndpointConfig,
    ) -> Self {
        Pair {
            net: Network::new(seed, link),
            now: Timestamp::from_micros(1_000_000),
            client: Endpoint::new(
                client,
                seed.wrapping_add(1),
                &super::sim_secret(seed.wrapping_add(1)),
            ),
            server: Endpoint::new(
                EndpointConfig {
                    listen: true,
                    ..server
                },
                seed.wrapping_add(2),
                &super::sim_secret(seed.wrapping_add(2)),
            ),
            client_addr: "127.0.0.1:50000".parse().expect("literal address"),
            server_addr: "127.0.0.1:27015".parse().expect("literal address"),
            buf: Vec::with_capacity(1500),
            datagrams: 0,
        }
    }

    /// Sends everything both endpoints want to send now.
    fn flush(&mut self) {
        for side in [0, 1] {
            let (ep, from) = if side == 0 {
                (&mut self.client, self.client_addr)
            } else {
                (&mut self.server, self.server_addr)
            };
            while let Some(Transmit { to, .. }) = {
                self.buf.clear();
                ep.poll_transmit(self.now, &mut self.buf)
            } {
                self.net.send(
                    self.now,
                    Datagram {
                        from,
                        to,
                        payload: self.buf.clone(),
                    },
                );
            }
        }
    }

    /// Delivers datagrams due now; returns how many.
    fn deliver(&mut self) -> usize {
        let mut n = 0;
        while let Some(mut dg) = self.net.poll_deliver(self.now) {
            n += 1;
            self.datagrams += 1;
            if dg.to == self.server_addr {
                self.server
                    .handle_datagram(self.now, dg.from.into(), &mut dg.payload);
            } else if dg.to == self.client_addr {
                self.client
                    .handle_datagram(self.now, dg.from.into(), &mut dg.payload);
            }
        }
        n
    }

    /// Advances to the next event and processes it. Returns false when nothing is scheduled
    /// at or before `limit`.
    pub fn step(&mut self, limit: Timestamp) -> bool {
        self.flush();
        if self.deliver() > 0 {
            return true;
        }
        let mut next = self.net.next_delivery();
        for t in [
            self.client.poll_timeout(self.now),
            self.server.poll_timeout(self.now),
        ]
        .into_iter()
        .flatten()
        {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let Some(next) = next.filter(|t| *t <= limit) else {
            return false;
        };
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        true
    }

    /// Runs until `done` holds (checked after every step) or virtual time passes `limit` or
    /// `max_steps` steps ran. Returns whether `done` held.
    pub fn run_until(
        &mut self,
        limit: Timestamp,
        max_steps: u64,
        mut done: impl FnMut(&mut Pair) -> bool,
    ) -> bool {
        for _ in 0..max_steps {
            if done(self) {
                return true;
            }
            if !self.step(limit) {
                return done(self);
            }
        }
        done(self)
    }

    /// Runs for `d` of virtual time (bounded by `max_steps`).
    pub fn run_for(&mut self, d: std::time::Duration, max_steps: u64) {
        let limit = self.now + d;
        self.run_until(limit, max_steps, |p| p.now >= limit);
        self.now = self.now.max(limit);
    }

    /// Opens a client connection and accepts it on the server, running up to `within` of
    /// virtual time. Returns (client handle, server handle) once the client is Connected;
    /// status events seen on the server are consumed.
    pub fn connect(&mut self, within: std::time::Duration) -> Option<(ConnectionId, ConnectionId)> {
        let c = self
            .client
            .connect(self.now, self.server_addr.into(), None)
            .ok()?;
        let limit = self.now + within;
        let mut server_conn = None;
        let up = self.run_until(limit, 1_000_000, |p| {
            while let Some(e) = p.server.poll_event() {
                if e.change.new == ApiState::Connecting
                    && p.server.accept(p.now, e.connection).is_ok()
                {
                    server_conn = Some(e.connection);
                }
            }
            p.client
                .connection(c)
                .is_some_and(|x| x.state() == State::Connected)
        });
        if up {
            server_conn.map(|s| (c, s))
        } else {
            None
        }
    }
}
