//! The eventfd that wakes a shard out of its wait, shared by the kernel backends: `Wake::wake`
//! adds 1 to its counter from any thread; mmsg polls it next to the socket and reads it back to
//! zero, io_uring keeps a read armed on it in the ring.

#![allow(
    unsafe_code,
    reason = "eventfd(2), read(2), write(2); each block has a SAFETY note"
)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::driver::Wake;

/// The eventfd behind [`Driver::waker`].
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and nothing else owns it.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Resets the counter so the next poll blocks again.
    pub(crate) fn drain(&self) {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (already drained) is harmless.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&raw mut v).cast(), 8) };
    }

    /// The descriptor, for poll sets and io_uring reads.
    pub(crate) fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    /// A poll entry for this eventfd (readable = woken).
    pub(crate) fn pollfd(&self) -> libc::pollfd {
        libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN,
            revents: 0,
        }
    }

    /// Blocks in poll(2) on `fds`, whose last entry is [`EventFd::pollfd`] of `self`, until one
    /// is ready or `timeout` passes (`None`: no timeout); drains the wake if it fired. A signal
    /// counts as a spurious wake-up, which callers handle anyway.
    pub(crate) fn poll_with(
        &self,
        fds: &mut [libc::pollfd],
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let ms = match timeout {
            None => -1,
            Some(d) => i32::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
        };
        // SAFETY: `fds` is a live slice of pollfds whose descriptors the caller keeps open for
        // the whole call; its length is passed exactly.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EINTR) {
                Ok(())
            } else {
                Err(e)
            };
        }
        if fds.last().is_some_and(|f| f.revents != 0) {
            self.drain();
        }
        Ok(())
    }
}

/// Whether poll(2) found any socket among `fds` (all but the last, the eventfd) with
/// something to receive (data, or an error to collect): writability alone does not count.
pub(crate) fn any_readable(fds: &[libc::pollfd]) -> bool {
    let sockets = fds.len().saturating_sub(1);
    fds[..sockets]
        .iter()
        .any(|f| f.revents & !libc::POLLOUT != 0)
}

impl Wake for EventFd {
    fn wake(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd; EAGAIN means the counter is
        // saturated, i.e. a wake is already pending.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&raw const one).cast(), 8) };
    }
}
