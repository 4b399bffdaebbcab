//! The I/O contract between a shard and the kernel: one small trait with batch semantics, and
//! its backends. The shard loop is generic over [`Driver`] and does not care which one runs.
//!
//! ```text
//!  shard loop ──► recv_batch(&mut RxBatch)  ◄── kernel (recvmmsg + GRO | io_uring multishot)
//!             ──► send_batch(&mut TxBatch)  ──► kernel (sendmmsg + GSO | io_uring sendmsg)
//!             ──► wait(timeout)             ◄── readable | Waker::wake() | timeout
//! ```
//!
//! Batches are contiguous buffers owned by the shard and reused every iteration, so a whole
//! batch goes to the kernel in one call and nothing is allocated per packet.
//!
//! Backends: [`mmsg`] (recvmmsg / sendmmsg with GSO and GRO, the default on Linux),
//! [`loopback`] (in memory, for tests and socket pairs) and, with the `uring` feature,
//! `uring` (io_uring multishot receive + batched sendmsg; probe with
//! `uring::io_uring_available` and fall back to `mmsg`). [`steering`] attaches the
//! SO_REUSEPORT program that sends a data packet to the shard named in its connection id.

pub mod any;
pub(crate) mod batch;
mod cmsg;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod eventfd;
pub mod loopback;
pub mod mmsg;
pub mod set;
pub mod steering;
mod udp;
#[cfg(all(target_os = "linux", feature = "uring"))]
pub mod uring;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use crate::datagram::{LocalSocket, RecvMeta, Transmit};
pub use batch::{MAX_DATAGRAM, RxBatch, TxBatch};

/// Wakes a shard blocked in [`Driver::wait`] from any thread (eventfd, io_uring message or a
/// condition variable, depending on the backend). Cheap to clone.
pub trait Wake: Send + Sync {
    /// Makes the current or next `wait` return promptly.
    fn wake(&self);
}

/// Batched datagram I/O for one shard's socket.
pub trait Driver {
    /// Receives up to `batch.capacity()` datagrams without blocking, appending them to `batch`
    /// (which the caller cleared). Returns how many arrived; 0 when none are waiting. A GRO
    /// super-datagram is split into its segments, so every entry is one UDP datagram.
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize>;

    /// Sends the datagrams in `batch` from the front, without blocking. Returns how many went
    /// out; the caller keeps the rest (the socket buffer was full) and retries after `wait`.
    /// Consecutive datagrams to one destination with equal sizes may go as one GSO send.
    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize>;

    /// Blocks until a datagram may be readable, [`Wake::wake`] was called, or `timeout`
    /// passes (`None`: no timeout; `Some(ZERO)`: just poll).
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// After [`Driver::wait`]: false when that wait ended with no datagram ready (on a wake or
    /// its timeout), so a receive now would find nothing and the shard skips that system
    /// call. Drivers that cannot tell say true.
    fn maybe_readable(&self) -> bool {
        true
    }

    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// A handle other threads use to wake this driver.
    fn waker(&self) -> std::sync::Arc<dyn Wake>;

    /// Takes `socket` in as local socket `local` (replacing any there). Only a driver over a
    /// set of sockets ([`set::SocketSet`]) can; the others refuse and the socket closes.
    fn attach(&mut self, local: u16, socket: mmsg::MmsgDriver) -> io::Result<()> {
        let _ = (local, socket);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this driver holds one socket",
        ))
    }

    /// Closes local socket `local`, if this driver holds such a member.
    fn detach(&mut self, local: u16) {
        let _ = local;
    }
}
