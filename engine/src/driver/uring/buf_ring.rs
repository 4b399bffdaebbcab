//! The provided-buffer ring that multishot `RecvMsgMulti` picks receive buffers from, and the
//! loan type that makes "the kernel handed this buffer back to us" a value.
//!
//! Two allocations, both owned here and freed only by `BufRing`'s owner after the ring is
//! drained (see the driver's `Drop`):
//!
//! ```text
//!  entries (page-aligned, shared with the kernel)      arena (kernel writes, we read)
//!  ┌────────┬────────┬────────┬───┐ tail (u16 in       ┌──────────┬──────────┬───┐
//!  │addr,len│addr,len│addr,len│ … │ entry 0's resv)    │ buf 0    │ buf 1    │ … │ BUF_LEN each
//!  │bid     │bid     │bid     │   │ ◄── we publish     └──────────┴──────────┴───┘
//!  └────────┴────────┴────────┴───┘     (Release)
//!        ▲ kernel consumes from its private head; each CQE names the bid it filled
//! ```

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// Ring entries must start on a page boundary (the kernel maps them by address).
const PAGE: usize = 4096;

/// A zeroed, page-aligned allocation for ring entries. Its owner decides when the kernel can no
/// longer touch it; `release` frees it, dropping it without `release` leaks it on purpose (the
/// safe choice when the kernel might still read it).
#[derive(Debug)]
pub(super) struct RingMemory {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl RingMemory {
    /// Room for `entries` ring entries.
    pub(super) fn new(entries: u16) -> Result<Self, std::alloc::LayoutError> {
        let bytes = (usize::from(entries) * size_of::<BufRingEntry>()).max(PAGE);
        Self::with_layout(Layout::from_size_align(bytes, PAGE)?)
    }

    fn with_layout(layout: Layout) -> Result<Self, std::alloc::LayoutError> {
        // SAFETY: `layout` has a non-zero size (at least one page or one buffer).
        let raw = unsafe { alloc_zeroed(layout) };
        match NonNull::new(raw) {
            Some(ptr) => Ok(RingMemory { ptr, layout }),
            None => std::alloc::handle_alloc_error(layout),
        }
    }

    /// The address to register with the kernel.
    pub(super) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Frees the memory. Only call once the kernel can no longer access it.
    pub(super) fn release(self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with exactly `layout`, and `self` is consumed
        // (it has no Drop) so it cannot be freed twice.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A receive buffer the kernel filled and gave back (named by a CQE). While a loan exists the
/// kernel will not write that buffer; [`BufRing::recycle`] consumes the loan and hands the
/// buffer back, so a buffer cannot be read after it is recycled or recycled twice.
#[derive(Debug)]
pub(super) struct Loan {
    bid: u16,
    len: usize,
}

/// Provided buffers for one buffer group: the entry ring plus the buffer arena.
#[derive(Debug)]
pub(super) struct BufRing {
    entries: RingMemory,
    arena: RingMemory,
    count: u16,
    buf_len: usize,
    /// Our copy of the tail; published to the kernel by `publish`.
    tail: u16,
}

impl BufRing {
    /// `count` (a power of two, at most 32768) buffers of `buf_len` bytes each, all initially
    /// queued for the kernel (published on the first [`publish`](Self::publish)).
    pub(super) fn new(count: u16, buf_len: usize) -> Result<Self, std::alloc::LayoutError> {
        let entries = RingMemory::new(count)?;
        let arena =
            RingMemory::with_layout(Layout::from_size_align(usize::from(count) * buf_len, 64)?)?;
        let mut ring = BufRing {
            entries,
            arena,
            count,
            buf_len,
            tail: 0,
        };
        for bid in 0..count {
            ring.push(bid);
        }
        Ok(ring)
    }

    /// The entry ring's address, for `register_buf_ring_with_flags`.
    pub(super) fn ring_addr(&self) -> u64 {
        self.entries.addr()
    }

    /// Number of buffers.
    pub(super) fn count(&self) -> u16 {
        self.count
    }

    /// Takes the buffer a completion named, with the number of bytes the kernel wrote.
    /// Returns `None` for a bid out of range (a kernel bug; the caller drops the completion).
    pub(super) fn loan(&self, bid: u16, len: usize) -> Option<Loan> {
        (bid < self.count && len <= self.buf_len).then_some(Loan { bid, len })
    }

    /// The bytes the kernel wrote into a loaned buffer.
    pub(super) fn bytes(&self, loan: &Loan) -> &[u8] {
        let start = usize::from(loan.bid) * self.buf_len;
        // SAFETY: `loan` proves the kernel returned buffer `bid` and it has not been recycled,
        // so the kernel does not write it while this borrow lives; `bid < count` and
        // `len <= buf_len` were checked in `loan`, so the range is inside the arena.
        unsafe {
            std::slice::from_raw_parts(self.arena.ptr.as_ptr().add(start).cast_const(), loan.len)
        }
    }

    /// Queues a loaned buffer back for the kernel; visible to it after [`publish`](Self::publish).
    pub(super) fn recycle(&mut self, loan: Loan) {
        self.push(loan.bid);
    }

    fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        let addr = self.arena.addr() + (usize::from(bid) * self.buf_len) as u64;
        // SAFETY: `slot < count` and the entry memory holds `count` entries. The kernel only
        // reads entries between its head and the published tail, and `slot` is at or past the
        // published tail, so it is ours to write.
        let entry = unsafe { &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(slot) };
        entry.set_addr(addr);
        // invariant: buf_len is at most a few KiB (checked by the driver's options).
        entry.set_len(u32::try_from(self.buf_len).unwrap_or(u32::MAX));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every recycled buffer visible to the kernel (one Release store of the tail).
    pub(super) fn publish(&self) {
        // SAFETY: the tail is the `resv` u16 of entry 0, inside our page-aligned allocation,
        // so it is valid and 2-byte aligned for an AtomicU16; the kernel reads it with an
        // acquire load and we are its only writer.
        let tail = unsafe {
            AtomicU16::from_ptr(
                BufRingEntry::tail(self.entries.ptr.as_ptr().cast::<BufRingEntry>()).cast_mut(),
            )
        };
        tail.store(self.tail, Ordering::Release);
    }

    /// Frees both allocations. Only call once the ring is unregistered or the kernel can no
    /// longer select buffers from it.
    pub(super) fn release(self) {
        self.entries.release();
        self.arena.release();
    }
}
