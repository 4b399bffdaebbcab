//! One driver type over every backend, so a runtime can pick mmsg or io_uring from config at
//! run time (with fallback) and stay generic over a single `Driver`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::mmsg::MmsgDriver;
use super::{Driver, RxBatch, TxBatch, Wake};

/// Which kernel backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// recvmmsg / sendmmsg with GSO and GRO (the default: measured faster here).
    #[default]
    Mmsg,
    /// io_uring (feature `uring`); falls back to `Mmsg` when unavailable.
    Uring,
}

/// A bound driver of either backend.
#[derive(Debug)]
pub enum AnyDriver {
    /// recvmmsg / sendmmsg.
    Mmsg(MmsgDriver),
    /// io_uring.
    #[cfg(all(target_os = "linux", feature = "uring"))]
    Uring(Box<super::uring::UringDriver>),
}

impl AnyDriver {
    /// Binds `addr` with `backend`. Asking for io_uring where it is unavailable (not compiled
    /// in, seccomp, old kernel, memlock) logs why on stderr and falls back to mmsg.
    pub fn bind(addr: SocketAddr, backend: Backend) -> io::Result<Self> {
        if backend == Backend::Uring {
            #[cfg(all(target_os = "linux", feature = "uring"))]
            match super::uring::UringDriver::bind(addr, super::uring::UringOptions::default()) {
                Ok(d) => return Ok(AnyDriver::Uring(Box::new(d))),
                Err(e) => {
                    eprintln!("sockworks: io_uring unavailable ({e}), using recvmmsg/sendmmsg")
                }
            }
            #[cfg(not(all(target_os = "linux", feature = "uring")))]
            eprintln!(
                "sockworks: io_uring not compiled in (feature `uring`), using recvmmsg/sendmmsg"
            );
        }
        Ok(AnyDriver::Mmsg(MmsgDriver::bind(addr)?))
    }

    /// The backend actually in use.
    pub fn backend(&self) -> Backend {
        match self {
            AnyDriver::Mmsg(_) => Backend::Mmsg,
            #[cfg(all(target_os = "linux", feature = "uring"))]
            AnyDriver::Uring(_) => Backend::Uring,
        }
    }
}

impl std::os::fd::AsFd for AnyDriver {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            AnyDriver::Mmsg(d) => d.as_fd(),
            #[cfg(all(target_os = "linux", feature = "uring"))]
            AnyDriver::Uring(d) => d.as_fd(),
        }
    }
}

macro_rules! each {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDriver::Mmsg($d) => $e,
            #[cfg(all(target_os = "linux", feature = "uring"))]
            AnyDriver::Uring($d) => $e,
        }
    };
}

impl Driver for AnyDriver {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        each!(self, d => d.recv_batch(batch))
    }
    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize> {
        each!(self, d => d.send_batch(batch))
    }
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, d => d.wait(timeout))
    }
    fn maybe_readable(&self) -> bool {
        each!(self, d => d.maybe_readable())
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        each!(self, d => d.local_addr())
    }
    fn waker(&self) -> Arc<dyn Wake> {
        each!(self, d => d.waker())
    }
}
