//! The sans-I/O [`Endpoint`] driven over one blocking `std::net::UdpSocket`: read with a
//! timeout equal to the endpoint's next deadline, feed datagrams in, send what it polls out.
//! One thread, one socket, one syscall per datagram: the simplest real-network runner, used by
//! the interop tests against real GNS and by the load generator's client side. The batched
//! thread-per-core runtime (`driver` + `shard`) is the production path.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::proto::endpoint::{Endpoint, EndpointConfig};
use crate::shard::Clock;
use crate::time::Timestamp;

/// An endpoint on a real UDP socket with a real clock.
#[derive(Debug)]
pub struct UdpDriver {
    socket: UdpSocket,
    /// The protocol endpoint; call it between `run_until` rounds or inside the callback.
    pub endpoint: Endpoint,
    clock: Clock,
    buf: Vec<u8>,
}

impl UdpDriver {
    /// Binds `addr` (port 0 for any) and creates an endpoint with `config`: public values from
    /// `seed`, secrets from the OS.
    pub fn bind(addr: SocketAddr, config: EndpointConfig, seed: u64) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        let secret = crate::entropy::SecretSeed::from_os().map_err(io::Error::other)?;
        Ok(UdpDriver {
            socket,
            endpoint: Endpoint::new(config, seed, &secret),
            clock: Clock::new(),
            buf: vec![0; 2048],
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Now, on the endpoint's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn flush(&mut self) -> io::Result<()> {
        let now = self.now();
        let mut out = Vec::with_capacity(1500);
        while let Some(t) = {
            out.clear();
            self.endpoint.poll_transmit(now, &mut out)
        } {
            self.socket.send_to(&out, t.to)?;
        }
        Ok(())
    }

    /// Runs I/O and timers until `done(endpoint, now)` holds or `limit` of wall time passes.
    /// Returns whether `done` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut Endpoint, Timestamp) -> bool,
    ) -> io::Result<bool> {
        let until = self.now() + limit;
        loop {
            self.flush()?;
            let now = self.now();
            if done(&mut self.endpoint, now) {
                self.flush()?;
                return Ok(true);
            }
            let now = self.now();
            if now >= until {
                return Ok(false);
            }
            let mut wait = until - now;
            if let Some(t) = self.endpoint.poll_timeout(now) {
                wait = wait.min(t.saturating_since(now));
            }
            // Callers poll application state in `done`; wake at least every 5 ms for it.
            wait = wait.clamp(Duration::from_micros(100), Duration::from_millis(5));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let now = self.now();
                    self.endpoint
                        .handle_datagram(now, from.into(), &mut self.buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
            let now = self.now();
            if self.endpoint.poll_timeout(now).is_some_and(|t| t <= now) {
                self.endpoint.handle_timeout(now);
            }
        }
    }
}
