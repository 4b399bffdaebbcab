//! The io_uring backend: one UDP socket per shard, received with a multishot `RecvMsgMulti`
//! that picks buffers from a registered provided-buffer ring, sent with one linked chain of
//! `SendMsg` entries per batch, and woken through an eventfd read kept armed in the ring.
//!
//! Probe with [`io_uring_available`] (or just try [`UringDriver::bind`]) and fall back to
//! recvmmsg/sendmmsg when it fails: io_uring is often blocked on fleets (seccomp, the
//! `kernel.io_uring_disabled` sysctl) and is not automatically faster.
//!
//! Who owns which memory, and when the kernel may touch it:
//!
//! ```text
//!             publish (tail)                    CQE (bid, F_MORE?)
//!  BufRing ──────────────────► kernel ring ───────────────────────► ready: VecDeque<Loan>
//!  (arena + entries, ours)     (kernel may write                     (ours: kernel will not
//!     ▲                         buffers it took)                      write a loaned buffer)
//!     │                                                                   │ copy payload into
//!     └────────────────────── recycle(Loan) ◄──────────────────────────────┘ RxBatch slot
//!
//!  KernelMemory (ManuallyDrop): BufRing, recv msghdr, eventfd read buffer, send slots
//!     freed only after Drop cancelled every request and saw its last CQE; leaked otherwise.
//! ```
//!
//! A multishot receive ends (a CQE without `IORING_CQE_F_MORE`) when the ring runs dry
//! (`-ENOBUFS`) or on an error; the driver re-arms it once buffers are back, and datagrams that
//! arrive meanwhile wait in the socket buffer.
//!
//! Sends copy each datagram into a driver-owned slot (msghdr + iovec + sockaddr + bytes), so
//! nothing the kernel reads belongs to the caller's `TxBatch`; `send_batch` waits for the
//! chain's completions (UDP sends with `MSG_DONTWAIT` complete inline) so it can return an
//! exact count, and the link stops the chain at the first failure to keep order.

#![allow(unsafe_code)]

mod buf_ring;
mod probe;
mod socket;
#[cfg(test)]
mod tests;

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use socket2::{SockAddr, Socket};

use self::buf_ring::{BufRing, Loan};
use self::socket::NAME_LEN;
use super::eventfd::EventFd;
use super::{Driver, MAX_DATAGRAM, RxBatch, TxBatch, Wake};

pub use self::probe::{UringUnavailable, io_uring_available};

/// user_data tags (top byte); send completions carry the slot index below the tag.
const TAG_MASK: u64 = 0xff << 56;
const RECV_TAG: u64 = 1 << 56;
const WAKE_TAG: u64 = 2 << 56;
const SEND_TAG: u64 = 3 << 56;
const CANCEL_TAG: u64 = 4 << 56;

/// The only buffer group this ring uses.
const BGID: u16 = 0;
/// `struct io_uring_recvmsg_out`: namelen, controllen, payloadlen, flags (4 x u32).
const RECVMSG_OUT_LEN: usize = 16;
/// One receive buffer: the recvmsg-out header, the name area, no control data, a full slot.
const RECV_BUF_LEN: usize = (RECVMSG_OUT_LEN + NAME_LEN + MAX_DATAGRAM).next_multiple_of(64);
/// Submission entries kept free for the receive and wake re-arms.
const SQ_RESERVED: u32 = 2;
/// Bound on the rounds spent waiting for send or cancel completions.
const DRAIN_ROUNDS: usize = 1000;

/// Sizes of the ring and buffers.
#[derive(Debug, Clone, Copy)]
pub struct UringOptions {
    /// Submission queue entries (also the most datagrams one `send_batch` sends). 8..=4096.
    pub sq_entries: u32,
    /// Provided receive buffers (a power of two, 1..=32768). When they are all waiting to be
    /// copied out, the multishot receive pauses until `recv_batch` returns some.
    pub rx_buffers: u16,
    /// SO_RCVBUF / SO_SNDBUF in bytes (`None`: the system default).
    pub socket_buffer: Option<usize>,
}

impl Default for UringOptions {
    fn default() -> Self {
        UringOptions {
            sq_entries: 256,
            rx_buffers: 256,
            socket_buffer: None,
        }
    }
}

/// Counters for tuning `rx_buffers` (plain integers: one shard, one thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UringStats {
    /// Times the multishot receive was armed again after it ended.
    pub rearms: u64,
    /// Times it ended because every buffer was loaned out (`-ENOBUFS`).
    pub enobufs: u64,
    /// Completions dropped as malformed (bad buffer id, unparsable header or address).
    pub dropped: u64,
}

/// One in-flight send: everything `SendMsg` points at, owned by the driver.
struct SendSlot {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: SockAddr,
    data: Vec<u8>,
    result: Option<i32>,
}

/// Memory the kernel may read or write while requests are in flight.
struct KernelMemory {
    bufs: BufRing,
    /// The template for the multishot receive (the kernel reads name/control lengths).
    recv_msg: Box<libc::msghdr>,
    /// The eventfd read's destination (written by the kernel).
    wake_buf: Box<UnsafeCell<u64>>,
    slots: Box<[SendSlot]>,
}

/// State updated from completions (split from the ring so both can be borrowed at once).
struct State {
    ready: VecDeque<Loan>,
    recv_armed: bool,
    /// Whether the receive was ever armed (so later arms count as re-arms).
    armed_before: bool,
    wake_armed: bool,
    woken: bool,
    sends_in_flight: usize,
    recv_error: Option<io::Error>,
    stats: UringStats,
}

/// A [`Driver`] on io_uring for one UDP socket (see the module docs for buffer ownership).
pub struct UringDriver {
    ring: IoUring,
    socket: Socket,
    local: SocketAddr,
    is_v6: bool,
    wake: Arc<EventFd>,
    mem: ManuallyDrop<KernelMemory>,
    state: State,
}

// SAFETY: the raw pointers inside (msghdrs, buffer ring) point only at memory this value owns,
// and the ring is created without SINGLE_ISSUER, so moving the driver to another thread (a
// shard binding on the main thread, then running on its own) is sound. It is not Sync.
unsafe impl Send for UringDriver {}

impl std::fmt::Debug for UringDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringDriver")
            .field("local", &self.local)
            .field("stats", &self.state.stats)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Errors from `io_uring_enter` that only mean "look at the completion queue and go on".
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME)
    )
}

impl UringDriver {
    /// Binds `addr` (IPv4, or IPv6 dual-stack) with SO_REUSEPORT and starts receiving. Fails
    /// with `ErrorKind::Unsupported` wrapping a [`UringUnavailable`] when io_uring cannot be
    /// used here, so the caller can fall back to recvmmsg/sendmmsg.
    pub fn bind(addr: SocketAddr, opts: UringOptions) -> io::Result<Self> {
        if !(8..=4096).contains(&opts.sq_entries) {
            return Err(invalid("sq_entries must be in 8..=4096"));
        }
        if !opts.rx_buffers.is_power_of_two() || opts.rx_buffers > 32768 {
            return Err(invalid("rx_buffers must be a power of two <= 32768"));
        }
        let cq = (2 * opts.sq_entries)
            .max(opts.sq_entries + u32::from(opts.rx_buffers))
            .next_power_of_two();
        let ring = IoUring::builder()
            .setup_cqsize(cq)
            .build(opts.sq_entries)
            .map_err(probe::classify_setup_error)?;
        probe::check_ring(&ring)?;

        let socket = socket::bind_udp(addr, opts.socket_buffer)?;
        let local = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| invalid("not an IP socket"))?;

        let bufs = BufRing::new(opts.rx_buffers, RECV_BUF_LEN).map_err(io::Error::other)?;
        // SAFETY: the entry ring is page-aligned, holds `count` entries and lives in
        // `KernelMemory`, which is released only after Drop unregisters this group.
        let reg = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring_addr(), bufs.count(), BGID, 0)
        };
        if let Err(e) = reg {
            bufs.release(); // never registered, so the kernel never saw it
            return Err(UringUnavailable::NoBufRing(e.raw_os_error().unwrap_or(0)).into());
        }
        bufs.publish();

        // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
        let mut recv_msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_msg.msg_namelen = NAME_LEN as libc::socklen_t;
        let nslots = (opts.sq_entries - SQ_RESERVED) as usize;
        let slots = (0..nslots)
            .map(|_| SendSlot {
                // SAFETY: as above, an all-zero msghdr / iovec is valid.
                msg: unsafe { std::mem::zeroed() },
                // SAFETY: as above.
                iov: unsafe { std::mem::zeroed() },
                addr: SockAddr::from(local),
                data: Vec::with_capacity(1500),
                result: None,
            })
            .collect();

        let mut driver = UringDriver {
            ring,
            is_v6: local.is_ipv6(),
            socket,
            local,
            wake: Arc::new(EventFd::new()?),
            mem: ManuallyDrop::new(KernelMemory {
                bufs,
                recv_msg,
                wake_buf: Box::new(UnsafeCell::new(0)),
                slots,
            }),
            state: State {
                ready: VecDeque::with_capacity(usize::from(opts.rx_buffers)),
                recv_armed: false,
                armed_before: false,
                wake_armed: false,
                woken: false,
                sends_in_flight: 0,
                recv_error: None,
                stats: UringStats::default(),
            },
        };
        driver.arm();
        driver.enter(0, None)?;
        Ok(driver)
    }

    /// Receive-path counters.
    pub fn stats(&self) -> UringStats {
        self.state.stats
    }

    /// Queues the multishot receive and the eventfd read if they are not in flight.
    fn arm(&mut self) {
        let fd = Fd(self.socket.as_raw_fd());
        let loaned = self.state.ready.len();
        if !self.state.recv_armed && loaned < usize::from(self.mem.bufs.count()) {
            let entry = opcode::RecvMsgMulti::new(fd, &raw const *self.mem.recv_msg, BGID)
                .build()
                .user_data(RECV_TAG);
            // SAFETY: the msghdr and the buffer ring live in `KernelMemory` until Drop has
            // seen this request's final CQE.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                if self.state.armed_before {
                    self.state.stats.rearms += 1;
                }
                self.state.armed_before = true;
                self.state.recv_armed = true;
            }
        }
        if !self.state.wake_armed {
            let entry = opcode::Read::new(
                Fd(self.wake.raw()),
                self.mem.wake_buf.get().cast::<u8>(),
                size_of::<u64>() as u32,
            )
            .build()
            .user_data(WAKE_TAG);
            // SAFETY: `wake_buf` is an UnsafeCell we never read, kept alive in `KernelMemory`
            // until Drop has seen this read's CQE; the eventfd outlives the ring (Arc).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.state.wake_armed = true;
            }
        }
    }

    /// Submits queued entries and waits for `want` completions or `timeout`.
    fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        let res = match timeout {
            Some(d) if want > 0 => {
                let ts = Timespec::from(d);
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            _ => self.ring.submit_and_wait(want),
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves every completion into `state`.
    fn reap(&mut self) {
        let UringDriver {
            ring, mem, state, ..
        } = self;
        for cqe in ring.completion() {
            state.on_completion(mem, cqe.user_data(), cqe.result(), cqe.flags());
        }
    }

    /// Waits until no send is in flight (each round sees at least one completion).
    fn finish_sends(&mut self) -> io::Result<()> {
        for _ in 0..DRAIN_ROUNDS {
            self.reap();
            if self.state.sends_in_flight == 0 {
                return Ok(());
            }
            self.enter(1, None)?;
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "io_uring sends did not complete",
        ))
    }
}

impl State {
    fn on_completion(&mut self, mem: &mut KernelMemory, user_data: u64, res: i32, flags: u32) {
        match user_data & TAG_MASK {
            RECV_TAG => {
                if !cqueue::more(flags) {
                    self.recv_armed = false;
                }
                let bid = cqueue::buffer_select(flags);
                if res >= 0 {
                    match bid.and_then(|bid| mem.bufs.loan(bid, res as usize)) {
                        Some(loan) => self.ready.push_back(loan),
                        None => self.stats.dropped += 1,
                    }
                    return;
                }
                if let Some(loan) = bid.and_then(|bid| mem.bufs.loan(bid, 0)) {
                    mem.bufs.recycle(loan); // an error that still consumed a buffer
                }
                match -res {
                    libc::ENOBUFS => self.stats.enobufs += 1,
                    libc::ECANCELED | libc::EINTR | libc::EAGAIN => {}
                    errno => self.recv_error = Some(io::Error::from_raw_os_error(errno)),
                }
            }
            WAKE_TAG => {
                self.wake_armed = false;
                self.woken = true;
            }
            SEND_TAG => {
                let i = (user_data & !TAG_MASK) as usize;
                if let Some(slot) = mem.slots.get_mut(i) {
                    slot.result = Some(res);
                    self.sends_in_flight = self.sends_in_flight.saturating_sub(1);
                }
            }
            _ => {} // CANCEL_TAG: the cancelled request reports on its own tag
        }
    }
}

impl Driver for UringDriver {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        self.reap();
        if self.state.ready.is_empty() {
            self.arm();
            self.enter(0, None)?;
            self.reap();
        }
        if self.state.ready.is_empty() {
            if let Some(e) = self.state.recv_error.take() {
                return Err(e);
            }
        }
        let mut n = 0;
        let mem = &mut *self.mem;
        while batch.len() < batch.capacity() {
            let Some(loan) = self.state.ready.pop_front() else {
                break;
            };
            let parsed = RecvMsgOut::parse(mem.bufs.bytes(&loan), &mem.recv_msg).ok();
            let delivered = parsed.is_some_and(|out| {
                socket::parse_name(out.name_data())
                    .is_some_and(|from| batch.push(from, out.payload_data()))
            });
            if delivered {
                n += 1;
            } else {
                self.state.stats.dropped += 1;
            }
            mem.bufs.recycle(loan);
        }
        if n > 0 {
            mem.bufs.publish();
        }
        if !self.state.recv_armed {
            self.arm();
            self.enter(0, None)?;
        }
        Ok(n)
    }

    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize> {
        self.finish_sends()?;
        let sq_room = {
            let sq = self.ring.submission();
            sq.capacity().saturating_sub(sq.len())
        };
        let k = batch.len().min(self.mem.slots.len()).min(sq_room);
        if k == 0 {
            return Ok(0);
        }
        let fd = Fd(self.socket.as_raw_fd());
        for i in 0..k {
            // invariant: i < k <= batch.len().
            let Some((to, bytes)) = batch.get(i) else {
                break;
            };
            let slot = &mut self.mem.slots[i];
            slot.data.clear();
            slot.data.extend_from_slice(bytes);
            slot.addr = socket::dest_addr(to, self.is_v6);
            slot.iov = libc::iovec {
                iov_base: slot.data.as_mut_ptr().cast(),
                iov_len: slot.data.len(),
            };
            slot.msg.msg_name = slot.addr.as_ptr().cast_mut().cast();
            slot.msg.msg_namelen = slot.addr.len();
            slot.msg.msg_iov = &raw mut slot.iov;
            slot.msg.msg_iovlen = 1;
            slot.result = None;
            let mut entry = opcode::SendMsg::new(fd, &raw const slot.msg)
                .flags(libc::MSG_DONTWAIT as u32)
                .build()
                .user_data(SEND_TAG | i as u64);
            if i + 1 < k {
                // A failed send cancels the rest, so what went out is always a prefix.
                entry = entry.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: the msghdr, iovec, address and bytes live in this slot, which is not
            // touched again until its CQE arrives (finish_sends below, or Drop).
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                break; // cannot happen: k <= free entries
            }
            self.state.sends_in_flight += 1;
        }
        self.finish_sends()?;
        let mut sent = 0;
        for slot in &self.mem.slots[..k] {
            match slot.result {
                Some(r) if r >= 0 => sent += 1,
                Some(r)
                    if sent == 0
                        && !matches!(-r, libc::EAGAIN | libc::ENOBUFS | libc::ECANCELED) =>
                {
                    return Err(io::Error::from_raw_os_error(-r));
                }
                _ => break,
            }
        }
        Ok(sent)
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.reap();
        if !self.state.ready.is_empty() || self.state.woken || self.state.recv_error.is_some() {
            self.state.woken = false;
            return Ok(());
        }
        self.arm();
        match timeout {
            Some(Duration::ZERO) => self.enter(0, None)?,
            t => self.enter(1, t)?,
        }
        self.reap();
        self.state.woken = false;
        Ok(())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.wake.clone()
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        let busy = |s: &State| s.recv_armed || s.wake_armed || s.sends_in_flight > 0;
        let mut cancels = Vec::with_capacity(2);
        if self.state.recv_armed {
            cancels.push(
                opcode::AsyncCancel::new(RECV_TAG)
                    .build()
                    .user_data(CANCEL_TAG),
            );
        }
        if self.state.wake_armed {
            cancels.push(
                opcode::AsyncCancel::new(WAKE_TAG)
                    .build()
                    .user_data(CANCEL_TAG),
            );
        }
        for entry in &cancels {
            // SAFETY: cancel entries carry no pointers.
            let _ = unsafe { self.ring.submission().push(entry) };
        }
        for _ in 0..DRAIN_ROUNDS {
            self.reap();
            if !busy(&self.state) {
                break;
            }
            if self.enter(1, Some(Duration::from_millis(10))).is_err() {
                break;
            }
        }
        self.reap();
        if busy(&self.state) {
            // The kernel may still write these buffers: leak them rather than free them.
            return;
        }
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
        // SAFETY: every request that referenced this memory has completed (checked above) and
        // the buffer group is unregistered; `mem` is not used again.
        let mem = unsafe { ManuallyDrop::take(&mut self.mem) };
        mem.bufs.release();
    }
}

impl std::os::fd::AsFd for UringDriver {
    /// The UDP socket (to attach the steering program to its reuseport group).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
