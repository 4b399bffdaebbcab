//! The io_uring backend: one UDP socket per shard, received with a multishot `RecvMsgMulti`
//! that picks buffers from a registered provided-buffer ring, sent with one `SendMsg` per
//! datagram or GSO run without waiting for it, and woken through an eventfd read kept armed in
//! the ring.
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
//! Sends copy each datagram (or each GSO run of equal-size datagrams to one peer, sent with
//! `UDP_SEGMENT`) into a driver-owned slot (see `send`), submit one `SendMsg` per slot and
//! return without waiting: nothing the kernel reads belongs to the caller's `TxBatch`. Slots
//! come back as their completions are reaped (in every `recv_batch`, `send_batch` and `wait`);
//! when all are in flight `send_batch` reports fewer sent and the caller keeps the rest. A
//! send that fails after submission drops its datagrams, as the network may (counted in
//! [`UringStats::send_failures`]; a socket-level error is returned by the next `send_batch`).
//! UDP sends complete inline during the submitting `io_uring_enter` unless the socket buffer
//! is full, so slots are normally free again before `send_batch` returns.
//!
//! Receive buffers are 64 KiB with UDP GRO on: a coalesced super-datagram is split by its
//! `UDP_GRO` size while being copied into the `RxBatch`; a buffer only partly handed out
//! stays at the front of `ready` until the next `recv_batch`.

#![allow(
    unsafe_code,
    reason = "io_uring SQEs borrow buffers the kernel writes; each block has a SAFETY note"
)]

mod buf_ring;
mod options;
mod probe;
mod recv;
mod send;
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

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use socket2::{SockAddr, Socket};

use self::buf_ring::{BufRing, Loan};
use self::send::SendSlots;
use self::socket::NAME_LEN;
use super::eventfd::EventFd;
use super::udp::{MAX_GSO_BYTES, gso_run, is_peer_error};
use super::{Driver, MAX_DATAGRAM, RxBatch, TxBatch, Wake};

pub use self::options::{UringOptions, UringStats};
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
/// Control bytes reserved per receive with GRO on (one UDP_GRO cmsg is CMSG_SPACE(4) = 24).
const CONTROL_LEN: usize = 32;
/// A GRO super-datagram is at most one IP packet.
const GRO_PAYLOAD: usize = 1 << 16;
/// Whether the sends of one batch are linked (IO_LINK). Linked, a send parked on a full socket
/// buffer holds back the rest of its batch, so order is kept even then; but one failed send
/// (an unreachable peer) cancels the sends to every other peer after it, and each linked send
/// runs as task work. Unlinked, sends can only be reordered while the socket buffer is full
/// (each parks until writable), which GNS tolerates like any UDP reordering. loadgen's 1 KiB
/// echo could not tell them apart once the receive ran on the shard thread (233-259 k vs
/// 237-248 k round trips/s on a loaded machine).
const LINK_SENDS: bool = false;
/// Submission entries kept free for the receive and wake re-arms.
const SQ_RESERVED: u32 = 2;
/// Bound on the rounds spent waiting for send or cancel completions.
const DRAIN_ROUNDS: usize = 1000;

/// Memory the kernel may read or write while requests are in flight.
struct KernelMemory {
    bufs: BufRing,
    /// The template for the multishot receive (the kernel reads name/control lengths).
    recv_msg: Box<libc::msghdr>,
    /// The eventfd read's destination (written by the kernel).
    wake_buf: Box<UnsafeCell<u64>>,
    sends: SendSlots,
}

/// State updated from completions (split from the ring so both can be borrowed at once).
struct State {
    ready: VecDeque<Loan>,
    /// Payload bytes of `ready`'s front buffer already handed out (a GRO buffer split across
    /// two batches).
    front_off: usize,
    recv_armed: bool,
    /// Whether the receive was ever armed (so later arms count as re-arms).
    armed_before: bool,
    wake_armed: bool,
    woken: bool,
    /// GSO in use (off for good after a GSO send fails with EIO / EINVAL / EMSGSIZE).
    gso: bool,
    recv_error: Option<io::Error>,
    /// A socket-level send failure, returned by the next `send_batch`.
    send_error: Option<io::Error>,
    stats: UringStats,
}

/// A [`Driver`] on io_uring for one UDP socket (see the module docs for buffer ownership).
pub struct UringDriver {
    ring: IoUring,
    socket: Socket,
    local: SocketAddr,
    is_v6: bool,
    gro: bool,
    /// The ring runs task work cooperatively and flags when some is pending.
    coop: bool,
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
        // COOP_TASKRUN: completions of receives a peer's send triggers run when this thread
        // next enters the kernel, instead of interrupting it (Linux 5.19; retried without).
        let (ring, coop) = match IoUring::builder()
            .setup_cqsize(cq)
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(opts.sq_entries)
        {
            Ok(ring) => (ring, true),
            Err(_) => (
                IoUring::builder()
                    .setup_cqsize(cq)
                    .build(opts.sq_entries)
                    .map_err(probe::classify_setup_error)?,
                false,
            ),
        };
        probe::check_ring(&ring)?;

        let socket = socket::bind_udp(addr, opts.socket_buffer)?;
        let local = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| invalid("not an IP socket"))?;
        let (gso, gro) = socket::offloads(&socket, opts.gso, opts.gro);

        let (control_len, payload) = if gro {
            (CONTROL_LEN, GRO_PAYLOAD)
        } else {
            (0, MAX_DATAGRAM)
        };
        let buf_len = (RECVMSG_OUT_LEN + NAME_LEN + control_len + payload).next_multiple_of(64);
        let bufs = BufRing::new(opts.rx_buffers, buf_len).map_err(io::Error::other)?;
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
        // Multishot recvmsg only reads the lengths: control bytes land in each buffer.
        recv_msg.msg_controllen = control_len as _;
        let nslots = (opts.sq_entries - SQ_RESERVED) as usize;
        let sends = SendSlots::new(nslots, SockAddr::from(local));

        // Not armed here: io_uring runs a request's completion work (the multishot receive's
        // copies, the eventfd read) on the thread that submitted it, and a shard binds on the
        // main thread, then runs elsewhere. The first recv_batch / wait arms both on the
        // thread that polls the ring (datagrams arriving before then wait in the socket).
        let driver = UringDriver {
            ring,
            is_v6: local.is_ipv6(),
            gro,
            coop,
            socket,
            local,
            wake: Arc::new(EventFd::new()?),
            mem: ManuallyDrop::new(KernelMemory {
                bufs,
                recv_msg,
                wake_buf: Box::new(UnsafeCell::new(0)),
                sends,
            }),
            state: State {
                ready: VecDeque::with_capacity(usize::from(opts.rx_buffers)),
                front_off: 0,
                recv_armed: false,
                armed_before: false,
                wake_armed: false,
                woken: false,
                gso,
                recv_error: None,
                send_error: None,
                stats: UringStats::default(),
            },
        };
        Ok(driver)
    }

    /// Whether UDP GSO / GRO are in use (GSO turns off for good after a refused GSO send).
    pub fn offloads(&self) -> (bool, bool) {
        (self.state.gso, self.gro)
    }

    /// Receive and send counters.
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
                let Some(sent) = mem.sends.complete((user_data & !TAG_MASK) as u32) else {
                    return;
                };
                if res >= 0 {
                    return;
                }
                // Already reported sent: the datagrams are lost, as the network may lose them.
                self.stats.send_failures += sent.datagrams as u64;
                match -res {
                    libc::EIO | libc::EINVAL | libc::EMSGSIZE if sent.gso => self.gso = false,
                    libc::EAGAIN | libc::ENOBUFS | libc::ECANCELED | libc::EINTR => {}
                    errno if is_peer_error(errno) => {}
                    errno => {
                        self.send_error
                            .get_or_insert(io::Error::from_raw_os_error(errno));
                    }
                }
            }
            _ => {} // CANCEL_TAG: the cancelled request reports on its own tag
        }
    }
}

impl Driver for UringDriver {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        self.reap();
        if self.state.ready.is_empty() && self.kernel_has_work() {
            self.arm();
            self.enter(0, None)?;
            self.reap();
        }
        if self.state.ready.is_empty() {
            if let Some(e) = self.state.recv_error.take() {
                return Err(e);
            }
        }
        let before = self.state.ready.len();
        let n = self.deliver(batch);
        if self.state.ready.len() < before {
            self.mem.bufs.publish();
        }
        if !self.state.recv_armed {
            self.arm();
            self.enter(0, None)?;
        }
        Ok(n)
    }

    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize> {
        self.reap();
        if let Some(e) = self.state.send_error.take() {
            return Err(e);
        }
        let sq_room = {
            let sq = self.ring.submission();
            // Keep room for the receive and wake re-arms.
            sq.capacity()
                .saturating_sub(sq.len())
                .saturating_sub(SQ_RESERVED as usize)
        };
        let mut budget = sq_room.min(self.mem.sends.free());
        let fd = Fd(self.socket.as_raw_fd());
        let mut pending: Option<squeue::Entry> = None;
        let mut done = 0;
        while budget > 0 && done < batch.len() {
            let Some((to, first)) = batch.get(done) else {
                break;
            };
            let run = if self.state.gso {
                gso_run(batch, done).0
            } else {
                1
            };
            // invariant: gso_run caps a segment below MAX_GSO_BYTES < u16::MAX.
            let seg = (run > 1).then(|| first.len().min(MAX_GSO_BYTES) as u16);
            let parts = (done..done + run).filter_map(|i| batch.get(i).map(|(_, d)| d));
            let addr = socket::dest_addr(to, self.is_v6);
            let Some((slot, msg)) = self.mem.sends.fill(addr, parts, seg) else {
                break;
            };
            let entry = opcode::SendMsg::new(fd, msg)
                .build()
                .user_data(SEND_TAG | u64::from(slot));
            if let Some(prev) = pending.replace(entry) {
                let prev = if LINK_SENDS {
                    prev.flags(squeue::Flags::IO_LINK)
                } else {
                    prev
                };
                // SAFETY: the msghdr and everything it points at live in a send slot that is
                // not refilled before its CQE is reaped (SendSlots::complete), and the slots
                // outlive every request (KernelMemory, freed only after Drop drained them).
                if unsafe { self.ring.submission().push(&prev) }.is_err() {
                    // invariant: budget <= free entries, so unreachable.
                    self.mem.sends.unfill(slot);
                    self.mem
                        .sends
                        .unfill((prev.get_user_data() & !TAG_MASK) as u32);
                    return Err(io::Error::other("io_uring submission queue full"));
                }
            }
            if seg.is_some() {
                self.state.stats.gso_sends += 1;
            }
            budget -= 1;
            done += run;
        }
        if let Some(last) = pending {
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&last) }.is_err() {
                // invariant: budget counted this entry's room; unreachable.
                let slot = (last.get_user_data() & !TAG_MASK) as u32;
                self.mem.sends.unfill(slot);
                return Err(io::Error::other("io_uring submission queue full"));
            }
        }
        if done > 0 {
            self.enter(0, None)?;
            // Inline completions free their slots now rather than at the next call.
            self.reap();
        }
        Ok(done)
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
        let busy =
            |s: &State, m: &KernelMemory| s.recv_armed || s.wake_armed || m.sends.in_flight() > 0;
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
        // Sends parked on a full socket buffer would otherwise hold their slots until writable.
        cancels.extend(self.mem.sends.busy().map(|i| {
            opcode::AsyncCancel::new(SEND_TAG | u64::from(i))
                .build()
                .user_data(CANCEL_TAG)
        }));
        for entry in &cancels {
            // SAFETY: cancel entries carry no pointers.
            if unsafe { self.ring.submission().push(entry) }.is_err() {
                // Full: submit what is queued, then try once more.
                let _ = self.ring.submit();
                // SAFETY: as above.
                let _ = unsafe { self.ring.submission().push(entry) };
            }
        }
        for _ in 0..DRAIN_ROUNDS {
            self.reap();
            if !busy(&self.state, &self.mem) {
                break;
            }
            if self.enter(1, Some(Duration::from_millis(10))).is_err() {
                break;
            }
        }
        self.reap();
        if busy(&self.state, &self.mem) {
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
