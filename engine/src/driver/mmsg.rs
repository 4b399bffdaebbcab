//! The default kernel backend: one non-blocking UDP socket per shard, `recvmmsg` / `sendmmsg`
//! for batches, UDP GSO (`UDP_SEGMENT`) for equal-size bursts to one peer and UDP GRO on
//! receive, `poll` on the socket plus an eventfd for [`Driver::wait`].
//!
//! ```text
//!  send_batch:  [to A 1200][to A 1200][to A 700][to B 90][to A 1200]
//!                └──── one msg, UDP_SEGMENT=1200 ───┘  └ msg ┘ └ msg ┘   → one sendmmsg
//!  recv_batch:  recvmmsg ─► GRO off: straight into the RxBatch slots (no copy)
//!                        └► GRO on:  64 KiB scratch buffers, split by the UDP_GRO size,
//!                                    copied into slots; what does not fit waits in `carry`
//!                                    (in place: no recvmmsg until it is handed out)
//! ```
//!
//! Offloads are probed at run time, never by kernel version: GRO is on when
//! `setsockopt(UDP_GRO)` succeeds; GSO when `setsockopt(UDP_SEGMENT, 0)` succeeds, and the
//! first EIO / EINVAL from a GSO send (a NIC without checksum offload, an MTU smaller than the
//! segment) turns it off for good and resends without it.

#![allow(
    unsafe_code,
    reason = "sendmmsg / recvmmsg syscalls; each block has a SAFETY note"
)]

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::cmsg::{self, ControlBuf};
use super::eventfd::EventFd;
use super::udp::{grow_buffer, gso_run, is_peer_error, setsockopt_int};
use super::{Driver, MAX_DATAGRAM, RxBatch, TxBatch, Wake};

/// Most messages per `recvmmsg` / `sendmmsg` call.
pub const MAX_BATCH: usize = 64;
/// A GRO super-datagram is at most one IP packet.
const GRO_BUF: usize = 1 << 16;

/// How to open the socket. `Default` gives the production settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmsgConfig {
    /// Let several shards bind the same port (SO_REUSEPORT), for kernel-side steering. The
    /// kernel only groups sockets of the same effective user, but within that user a second
    /// process binding the port silently shares its traffic: turn it off for single-socket
    /// tools.
    pub reuse_port: bool,
    /// Socket buffer sizes to ask for: bursts from thousands of peers overflow the default
    /// ~200 KiB long before the shard gets to them.
    pub recv_buffer: usize,
    /// See `recv_buffer`.
    pub send_buffer: usize,
    /// Use UDP GSO where the kernel has it; off forces the one-datagram-per-message path.
    pub gso: bool,
    /// Use UDP GRO where the kernel has it; off receives straight into the batch slots.
    pub gro: bool,
}

impl Default for MmsgConfig {
    fn default() -> Self {
        MmsgConfig {
            reuse_port: true,
            recv_buffer: 4 << 20,
            send_buffer: 4 << 20,
            gso: true,
            gro: true,
        }
    }
}

/// What the kernel granted, for logs and capacity planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketInfo {
    /// SO_RCVBUF as read back (Linux reports double the usable size).
    pub recv_buffer: usize,
    /// SO_SNDBUF as read back.
    pub send_buffer: usize,
    /// Whether GSO is in use now (it may turn off after a failed send).
    pub gso: bool,
    /// Whether GRO is enabled.
    pub gro: bool,
}

/// What the offloads did, to check they engage (tests, loadgen reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MmsgStats {
    /// Messages sent with UDP_SEGMENT (each carried 2..=64 datagrams).
    pub gso_messages: u64,
    /// Received GRO super-datagrams (more than one segment).
    pub gro_coalesced: u64,
    /// Times segments had to wait for the next `recv_batch` because the batch was full.
    pub carried: u64,
}

/// A datagram run received but not yet handed out because the batch filled mid-split.
#[derive(Debug, Clone, Copy)]
struct Carried {
    from: SocketAddr,
    /// Range in `gro_bufs` still to hand out.
    start: usize,
    end: usize,
    seg: usize,
}

/// The recvmmsg/sendmmsg driver for one shard's socket.
#[derive(Debug)]
pub struct MmsgDriver {
    socket: Socket,
    local: SocketAddr,
    v6: bool,
    wake: Arc<EventFd>,
    gso: bool,
    gro: bool,
    /// The last send stopped on a full socket buffer: `wait` also watches for writability.
    send_blocked: bool,
    names: Vec<libc::sockaddr_storage>,
    control: Vec<ControlBuf>,
    /// GRO receive buffers, `MAX_BATCH * GRO_BUF` bytes (allocated only with GRO on).
    gro_bufs: Vec<u8>,
    /// Segments received beyond what the last batch could hold, in arrival order.
    /// They stay in `gro_bufs`, which `recv_into` does not overwrite while any wait here.
    carry: std::collections::VecDeque<Carried>,
    /// Whether the last `wait` saw the socket readable (true until one says otherwise).
    readable: bool,
    stats: MmsgStats,
    /// Tests: the next `sendmmsg` fails with this errno instead of running.
    #[cfg(test)]
    inject_send_errno: Option<i32>,
}

impl MmsgDriver {
    /// Binds `addr` with the production settings (SO_REUSEPORT, 4 MiB buffers, GSO and GRO
    /// where supported). `[::]` is dual-stack: IPv4 peers show up as plain IPv4 addresses.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with(addr, MmsgConfig::default())
    }

    /// Binds `addr` with explicit settings.
    pub fn bind_with(addr: SocketAddr, config: MmsgConfig) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        let v6 = addr.is_ipv6();
        if v6 {
            socket.set_only_v6(false)?;
        }
        if config.reuse_port {
            socket.set_reuse_port(true)?;
        }
        grow_buffer(&socket, config.recv_buffer, true);
        grow_buffer(&socket, config.send_buffer, false);
        socket.bind(&addr.into())?;
        let local = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound address is not an IP address"))?;
        let fd = socket.as_fd();
        let gro = config.gro && setsockopt_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        let gso = config.gso && setsockopt_int(fd, libc::SOL_UDP, libc::UDP_SEGMENT, 0).is_ok();
        Ok(MmsgDriver {
            socket,
            local,
            v6,
            wake: Arc::new(EventFd::new()?),
            gso,
            gro,
            send_blocked: false,
            names: vec![cmsg::empty_name(); MAX_BATCH],
            control: vec![ControlBuf::default(); MAX_BATCH],
            gro_bufs: if gro {
                vec![0; MAX_BATCH * GRO_BUF]
            } else {
                Vec::new()
            },
            carry: std::collections::VecDeque::new(),
            readable: true,
            stats: MmsgStats::default(),
            #[cfg(test)]
            inject_send_errno: None,
        })
    }

    /// Buffer sizes granted and offloads in use.
    pub fn info(&self) -> io::Result<SocketInfo> {
        Ok(SocketInfo {
            recv_buffer: self.socket.recv_buffer_size()?,
            send_buffer: self.socket.send_buffer_size()?,
            gso: self.gso,
            gro: self.gro,
        })
    }

    /// Offload counters since bind.
    pub fn stats(&self) -> MmsgStats {
        self.stats
    }

    /// The socket's descriptor, for a poll set spanning several drivers.
    pub(crate) fn raw_fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }

    /// Whether received segments wait in the carry-over (so a poll must not block).
    pub(crate) fn has_carry(&self) -> bool {
        !self.carry.is_empty()
    }

    /// Whether the last send stopped on a full socket buffer.
    pub(crate) fn send_blocked(&self) -> bool {
        self.send_blocked
    }

    /// Moves carried-over segments into `batch`; returns how many.
    fn drain_carry(&mut self, batch: &mut RxBatch) -> usize {
        let mut n = 0;
        while let Some(c) = self.carry.front_mut() {
            // Do-while, so an empty datagram is handed out once too.
            loop {
                let end = (c.start + c.seg).min(c.end);
                if !batch.push(c.from, &self.gro_bufs[c.start..end]) {
                    return n;
                }
                c.start = end;
                n += 1;
                if c.start >= c.end {
                    break;
                }
            }
            self.carry.pop_front();
        }
        n
    }

    fn recv_into(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        let want = (batch.capacity() - batch.len()).min(MAX_BATCH);
        if want == 0 {
            return Ok(0);
        }
        let slot = if self.gro { GRO_BUF } else { MAX_DATAGRAM };
        // SAFETY: iovec and mmsghdr are plain old data; all-zero (null pointers, zero lengths)
        // is valid, and every entry passed to the kernel is filled in below.
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut bases = [std::ptr::null_mut::<u8>(); MAX_BATCH];
        let mut count = 0;
        if self.gro {
            for (b, buf) in bases
                .iter_mut()
                .zip(self.gro_bufs.chunks_exact_mut(GRO_BUF))
            {
                *b = buf.as_mut_ptr();
            }
            count = want;
        } else {
            for (b, buf) in bases.iter_mut().zip(batch.free_slots().take(want)) {
                *b = buf.as_mut_ptr();
                count += 1;
            }
        }
        for (i, base) in bases.iter().take(count).enumerate() {
            iov[i] = libc::iovec {
                iov_base: base.cast(),
                iov_len: slot,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&raw mut self.names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
            h.msg_iov = &raw mut iov[i];
            h.msg_iovlen = 1;
            if self.gro {
                h.msg_control = self.control[i].0.as_mut_ptr().cast();
                h.msg_controllen = self.control[i].0.len() as _;
            }
        }
        // SAFETY: the first `count` headers point at live buffers owned by `self` or
        // `batch` (iovecs of `slot` bytes, names, control buffers of the stated lengths), none
        // of which move or are otherwise borrowed during the call; MSG_DONTWAIT never blocks.
        let rc = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                count as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(0),
                // An ICMP error queued by an earlier send; the next call reads on.
                Some(code) if is_peer_error(code) => Ok(0),
                _ => Err(e),
            };
        }
        let mut n = 0;
        for (i, h) in hdrs.iter().take(rc as usize).enumerate() {
            let from = cmsg::decode_name(&self.names[i], h.msg_hdr.msg_namelen);
            let len = (h.msg_len as usize).min(slot);
            if !self.gro {
                // invariant: slot i was free before the call and slots fill in order.
                let ok = batch.commit(from, len);
                debug_assert!(ok);
                n += 1;
                continue;
            }
            let seg = cmsg::gro_segment(&h.msg_hdr).unwrap_or(len).max(1);
            if seg < len {
                self.stats.gro_coalesced += 1;
            }
            let data = &self.gro_bufs[i * GRO_BUF..i * GRO_BUF + len];
            // Split into segments; once anything is carried, later datagrams queue behind it
            // so order is kept.
            let (mut off, mut done) = (0, false);
            while !done && self.carry.is_empty() {
                let end = (off + seg).min(len);
                if !batch.push(from, &data[off..end]) {
                    break;
                }
                n += 1;
                off = end;
                done = off >= len;
            }
            if !done {
                // No copy: recv_batch returns before the next recv_into while this waits.
                self.carry.push_back(Carried {
                    from,
                    start: i * GRO_BUF + off,
                    end: i * GRO_BUF + len,
                    seg,
                });
                self.stats.carried += 1;
            }
        }
        Ok(n)
    }

    /// Packs datagrams `first..` of `batch` into up to MAX_BATCH messages (a GSO run per
    /// message when possible) and sends them; returns datagrams accounted for (sent or
    /// skipped), or `None` when the socket buffer is full before anything went.
    fn send_some(&mut self, batch: &TxBatch, first: usize) -> io::Result<Option<usize>> {
        // SAFETY: plain old data, as in recv_into.
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut counts = [0usize; MAX_BATCH];
        let mut msgs = 0;
        let mut i = first;
        let mut skipped_front = 0;
        while msgs < MAX_BATCH {
            let Some((to, data)) = batch.get(i) else {
                break;
            };
            let (run, bytes) = if self.gso {
                gso_run(batch, i)
            } else {
                (1, data.len())
            };
            let Some(namelen) = cmsg::encode_name(to, self.v6, &mut self.names[msgs]) else {
                // Unreachable from this socket's family: dropped, as UDP would. Only at the
                // front, so the count returned stays a prefix of the batch.
                if msgs > 0 {
                    break;
                }
                skipped_front += 1;
                i += 1;
                continue;
            };
            iov[msgs] = libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: bytes,
            };
            let h = &mut hdrs[msgs].msg_hdr;
            h.msg_name = (&raw mut self.names[msgs]).cast();
            h.msg_namelen = namelen;
            h.msg_iov = &raw mut iov[msgs];
            h.msg_iovlen = 1;
            if run > 1 {
                // invariant: gso_run caps a segment at MAX_GSO_BYTES, below u16::MAX.
                cmsg::set_segment(h, &mut self.control[msgs], data.len() as u16);
            }
            counts[msgs] = run;
            msgs += 1;
            i += run;
        }
        if msgs == 0 {
            return Ok(Some(skipped_front));
        }
        #[cfg(test)]
        let injected = self.inject_send_errno.take();
        #[cfg(not(test))]
        let injected: Option<i32> = None;
        let rc = if injected.is_some() {
            -1
        } else {
            // SAFETY: the first `msgs` headers point at live names, control buffers and
            // iovecs; each iovec covers bytes inside `batch`'s buffer (a run is contiguous,
            // checked by gso_run), which the shared borrow keeps alive and unchanged.
            unsafe { libc::sendmmsg(self.socket.as_raw_fd(), hdrs.as_mut_ptr(), msgs as u32, 0) }
        };
        if rc >= 0 {
            let gso = counts[..rc as usize].iter().filter(|&&c| c > 1).count();
            self.stats.gso_messages += gso as u64;
            return Ok(Some(
                skipped_front + counts[..rc as usize].iter().sum::<usize>(),
            ));
        }
        let e = injected.map_or_else(io::Error::last_os_error, io::Error::from_raw_os_error);
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::ENOBUFS) if skipped_front == 0 => Ok(None),
            Some(libc::EAGAIN | libc::ENOBUFS) => Ok(Some(skipped_front)),
            Some(libc::EINTR) => Ok(Some(skipped_front)),
            Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE) if counts[0] > 1 => {
                // The first message was a GSO send the path cannot do: stop using GSO and
                // let the caller resend the same datagrams one by one.
                self.gso = false;
                Ok(Some(skipped_front))
            }
            Some(code) if is_peer_error(code) => Ok(Some(skipped_front + counts[0])),
            _ => Err(e),
        }
    }
}

impl AsFd for MmsgDriver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Driver for MmsgDriver {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        let carried = self.drain_carry(batch);
        if !self.carry.is_empty() {
            return Ok(carried);
        }
        Ok(carried + self.recv_into(batch)?)
    }

    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize> {
        let mut done = 0;
        // Bounded: every round either accounts for at least one datagram, returns, or turns
        // GSO off (which happens once); EINTR rounds are capped.
        let mut interrupts = 0;
        while done < batch.len() {
            let gso_before = self.gso;
            match self.send_some(batch, done)? {
                None => {
                    self.send_blocked = true;
                    return Ok(done);
                }
                Some(0) if gso_before != self.gso => {}
                Some(0) => {
                    interrupts += 1;
                    if interrupts > 8 {
                        break;
                    }
                }
                Some(n) => done += n,
            }
        }
        self.send_blocked = false;
        Ok(done)
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if !self.carry.is_empty() {
            return Ok(());
        }
        let mut events = libc::POLLIN;
        if self.send_blocked {
            events |= libc::POLLOUT;
        }
        let mut fds = [
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events,
                revents: 0,
            },
            self.wake.pollfd(),
        ];
        // Until poll says otherwise (an error return included), assume data may be waiting.
        self.readable = true;
        self.wake.poll_with(&mut fds, timeout)?;
        self.readable = super::eventfd::any_readable(&fds);
        Ok(())
    }

    fn maybe_readable(&self) -> bool {
        self.readable || !self.carry.is_empty()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.wake.clone()
    }
}
