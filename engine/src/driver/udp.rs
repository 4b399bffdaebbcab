//! UDP socket rules shared by the kernel backends (mmsg and io_uring): socket options, buffer
//! sizing, which send errors only drop one datagram, and how a [`TxBatch`] is cut into GSO
//! runs. Kept in one place so both backends batch and fail the same way.

#![allow(
    unsafe_code,
    reason = "raw socket options and errno; each block has a SAFETY note"
)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use socket2::Socket;

use super::TxBatch;

/// Most segments in one GSO send (the kernel's UDP_MAX_SEGMENTS).
pub(super) const MAX_GSO_SEGMENTS: usize = 64;
/// Largest UDP payload of one GSO send (IPv4's limit; IPv6's is a little larger).
pub(super) const MAX_GSO_BYTES: usize = 65_507;

/// `setsockopt` with an `int` value (the socket2 crate has no UDP_GRO / UDP_SEGMENT).
pub(super) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    value: i32,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live i32 and its exact size; the fd is open (borrowed).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks for a `want`-byte receive (or send) buffer; where the sysctl cap
/// (net.core.[rw]mem_max) gives less, tries the privileged FORCE variant, which may fail
/// quietly without CAP_NET_ADMIN.
pub(super) fn grow_buffer(socket: &Socket, want: usize, recv: bool) {
    let (set, get, force) = if recv {
        (
            Socket::set_recv_buffer_size as fn(&Socket, usize) -> io::Result<()>,
            Socket::recv_buffer_size as fn(&Socket) -> io::Result<usize>,
            libc::SO_RCVBUFFORCE,
        )
    } else {
        (
            Socket::set_send_buffer_size as fn(&Socket, usize) -> io::Result<()>,
            Socket::send_buffer_size as fn(&Socket) -> io::Result<usize>,
            libc::SO_SNDBUFFORCE,
        )
    };
    let _ = set(socket, want);
    // Linux reports twice the requested size when it granted it in full.
    if get(socket).is_ok_and(|got| got < want) {
        let v = i32::try_from(want).unwrap_or(i32::MAX);
        let _ = setsockopt_int(socket.as_fd(), libc::SOL_SOCKET, force, v);
    }
}

/// Errors about one destination or one datagram, not the socket: UDP drops that datagram.
pub(super) fn is_peer_error(code: i32) -> bool {
    matches!(
        code,
        libc::ECONNREFUSED
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
            | libc::EPERM
            | libc::EACCES
            | libc::EADDRNOTAVAIL
            | libc::EAFNOSUPPORT
            | libc::EMSGSIZE
    )
}

/// The GSO run starting at datagram `i`: how many datagrams and how many bytes. A run is
/// consecutive datagrams to one destination, adjacent in the buffer, all the size of the
/// first except a shorter last one, within the kernel's segment and size limits.
pub(super) fn gso_run(batch: &TxBatch, i: usize) -> (usize, usize) {
    let Some((to, first)) = batch.get(i) else {
        return (0, 0);
    };
    let seg = first.len();
    if seg == 0 || seg > MAX_GSO_BYTES / 2 {
        return (1, seg);
    }
    let max = MAX_GSO_SEGMENTS.min(MAX_GSO_BYTES / seg);
    let (mut run, mut bytes) = (1, seg);
    let mut next_ptr = first.as_ptr().wrapping_add(seg);
    while run < max {
        let Some((t, d)) = batch.get(i + run) else {
            break;
        };
        if t != to || d.len() > seg || d.is_empty() || d.as_ptr() != next_ptr {
            break;
        }
        run += 1;
        bytes += d.len();
        next_ptr = d.as_ptr().wrapping_add(d.len());
        if d.len() < seg {
            break;
        }
    }
    (run, bytes)
}
