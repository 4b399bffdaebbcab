//! Where a datagram comes from or goes to: the local socket and the remote address, carried
//! together so that single- and multi-socket callers share one signature (as quinn's
//! `RecvMeta` / `Transmit` do). A leaf module: the sans-I/O core and the drivers both use it
//! without depending on each other.

use std::net::SocketAddr;

/// Which of a shard's sockets a datagram came in on or leaves by (0 for a single-socket
/// endpoint). The runtime maps it to a driver.
pub type LocalSocket = u16;

/// How a received datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecvMeta {
    /// The local socket it came in on.
    pub local: LocalSocket,
    /// The sender.
    pub from: SocketAddr,
}

/// Where a datagram to send goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transmit {
    /// The local socket it leaves by.
    pub local: LocalSocket,
    /// The destination.
    pub to: SocketAddr,
}

/// A datagram from `from` on local socket 0 (single-socket callers).
impl From<SocketAddr> for RecvMeta {
    fn from(from: SocketAddr) -> Self {
        RecvMeta { local: 0, from }
    }
}

/// A datagram to `to` by local socket 0 (single-socket callers).
impl From<SocketAddr> for Transmit {
    fn from(to: SocketAddr) -> Self {
        Transmit { local: 0, to }
    }
}
