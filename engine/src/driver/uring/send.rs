//! Send slots for the io_uring backend: `send_batch` copies each datagram (or GSO run) into a
//! free slot, submits its `SendMsg` and returns without waiting; the slot goes back on the
//! free list when its completion is reaped. The kernel reads only slot memory, never the
//! caller's `TxBatch`, so the caller may consume or refill its batch at once.
//!
//! ```text
//!  free: [3, 7, 0, …]  ── take ──► slot i: msghdr ─► iovec ─► data (run bytes)
//!                                           ├─► name (sockaddr)
//!                                           └─► control (UDP_SEGMENT, GSO runs only)
//!         ◄── give back (CQE SEND_TAG | i) ──┘
//! ```
//!
//! The slots live in one boxed slice that is never resized, so the self-referential
//! pointers (msghdr to iovec, name and control) stay valid while a send is in flight.

use socket2::SockAddr;

use super::super::cmsg::{self, ControlBuf};

/// One send's memory: everything `SendMsg` points at.
pub(super) struct SendSlot {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: SockAddr,
    control: ControlBuf,
    data: Vec<u8>,
    /// Datagrams this send carries (more than one for a GSO run).
    datagrams: usize,
    /// Taken from the free list (filled, maybe in flight).
    busy: bool,
}

/// A fixed set of send slots and the free list over them.
pub(super) struct SendSlots {
    slots: Box<[SendSlot]>,
    free: Vec<u32>,
}

/// What a completed slot carried, for the completion's bookkeeping.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    /// Datagrams in the send.
    pub datagrams: usize,
    /// Whether it was a GSO send (UDP_SEGMENT).
    pub gso: bool,
}

impl SendSlots {
    /// `n` empty slots; `placeholder` fills the address fields until first use.
    pub(super) fn new(n: usize, placeholder: SockAddr) -> Self {
        let slots = (0..n)
            .map(|_| SendSlot {
                // SAFETY: an all-zero msghdr / iovec is valid (null pointers, zero lengths).
                msg: unsafe { std::mem::zeroed() },
                // SAFETY: as above.
                iov: unsafe { std::mem::zeroed() },
                addr: placeholder.clone(),
                control: ControlBuf::default(),
                data: Vec::with_capacity(1500),
                datagrams: 0,
                busy: false,
            })
            .collect::<Box<[_]>>();
        // Reversed so the first sends take slot 0, 1, … (only matters for reading traces).
        let free = (0..n as u32).rev().collect();
        SendSlots { slots, free }
    }

    /// Slots free for new sends.
    pub(super) fn free(&self) -> usize {
        self.free.len()
    }

    /// Sends submitted whose completion has not been reaped yet.
    pub(super) fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Indices of the slots taken (filled, maybe in flight), for cancelling at teardown.
    pub(super) fn busy(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.slots.len() as u32).filter(|&i| self.slots[i as usize].busy)
    }

    /// Takes a free slot and fills it with `parts` (consecutive datagrams to `to`; with `seg`,
    /// one GSO send of segments that size). Returns the slot index and its msghdr, which the
    /// caller submits; `None` when every slot is in flight.
    pub(super) fn fill<'a>(
        &mut self,
        to: SockAddr,
        parts: impl Iterator<Item = &'a [u8]>,
        seg: Option<u16>,
    ) -> Option<(u32, *const libc::msghdr)> {
        let i = self.free.pop()?;
        let slot = &mut self.slots[i as usize];
        slot.busy = true;
        slot.data.clear();
        slot.datagrams = 0;
        for p in parts {
            slot.data.extend_from_slice(p);
            slot.datagrams += 1;
        }
        slot.addr = to;
        slot.iov = libc::iovec {
            iov_base: slot.data.as_mut_ptr().cast(),
            iov_len: slot.data.len(),
        };
        slot.msg.msg_name = slot.addr.as_ptr().cast_mut().cast();
        slot.msg.msg_namelen = slot.addr.len();
        slot.msg.msg_iov = &raw mut slot.iov;
        slot.msg.msg_iovlen = 1;
        slot.msg.msg_control = std::ptr::null_mut();
        slot.msg.msg_controllen = 0;
        if let Some(seg) = seg {
            cmsg::set_segment(&mut slot.msg, &mut slot.control, seg);
        }
        Some((i, &raw const slot.msg))
    }

    /// Returns slot `i` to the free list after the kernel reported its completion. `None`
    /// for an index that is not in flight (a stray completion; nothing is freed twice).
    pub(super) fn complete(&mut self, i: u32) -> Option<Sent> {
        let slot = self.slots.get_mut(i as usize).filter(|s| s.busy)?;
        slot.busy = false;
        self.free.push(i);
        Some(Sent {
            datagrams: slot.datagrams,
            gso: !slot.msg.msg_control.is_null(),
        })
    }

    /// Gives back a slot that was filled but never submitted.
    pub(super) fn unfill(&mut self, i: u32) {
        let _ = self.complete(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn slots_are_taken_filled_and_given_back_once() {
        let a = SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 9)));
        let mut s = SendSlots::new(2, a.clone());
        let (i, msg) = s
            .fill(a.clone(), [&b"ab"[..], b"cd"].into_iter(), Some(2))
            .expect("free slot");
        // SAFETY: (test) `msg` points into slot `i`, alive and not refilled yet.
        let m = unsafe { &*msg };
        // SAFETY: (test) the iovec points at the slot's data.
        assert_eq!(unsafe { (*m.msg_iov).iov_len }, 4);
        assert!(!m.msg_control.is_null(), "GSO run carries UDP_SEGMENT");
        let (j, _) = s
            .fill(a.clone(), [&b"x"[..]].into_iter(), None)
            .expect("slot");
        assert!(
            s.fill(a, [&b"y"[..]].into_iter(), None).is_none(),
            "all in flight"
        );
        assert_eq!(s.in_flight(), 2);
        let sent = s.complete(i).expect("in flight");
        assert_eq!((sent.datagrams, sent.gso), (2, true));
        assert!(s.complete(i).is_none(), "a second completion frees nothing");
        assert!(!s.complete(j).expect("in flight").gso);
        assert!(s.complete(99).is_none());
        assert_eq!(s.free(), 2);
    }
}
