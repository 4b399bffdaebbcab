//! Receive and transmit batches: fixed slots in one contiguous buffer, reused every loop
//! iteration, so recvmmsg / sendmmsg / io_uring get one slice and nothing is allocated per
//! packet.
//!
//! ```text
//!  RxBatch: data = [slot 0: MAX_DATAGRAM][slot 1]…   entries[i] = (from, len)
//!  TxBatch: data = [dgram 0][dgram 1]… (packed)      entries[i] = (to, offset, len)
//! ```

use std::net::SocketAddr;

use crate::datagram::Transmit;

/// Largest datagram a slot holds: GNS's receive buffer (1300 + 1024) rounded up. Larger
/// datagrams are truncated by the kernel and then fail to authenticate.
pub const MAX_DATAGRAM: usize = 2048;

/// Received datagrams.
#[derive(Debug)]
pub struct RxBatch {
    data: Vec<u8>,
    entries: Vec<(SocketAddr, usize)>,
    /// Local socket of each entry, when a multi-socket driver tagged them (else all 0).
    locals: Vec<u16>,
    capacity: usize,
}

impl RxBatch {
    /// A batch of `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        RxBatch {
            data: vec![0; capacity * MAX_DATAGRAM],
            entries: Vec::with_capacity(capacity),
            locals: Vec::new(),
            capacity,
        }
    }

    /// Slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every datagram (the slots are reused).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.locals.clear();
    }

    /// Marks datagrams `start..` as received on local socket `local` (a driver over several
    /// sockets calls this after each member's receive).
    pub fn tag_from(&mut self, start: usize, local: u16) {
        self.locals.resize(self.entries.len(), 0);
        for l in self.locals.iter_mut().skip(start) {
            *l = local;
        }
    }

    /// The local socket datagram `i` came in on (0 unless tagged).
    pub fn local(&self, i: usize) -> u16 {
        self.locals.get(i).copied().unwrap_or(0)
    }

    /// The free slots after the filled ones, for a backend to receive into: each is
    /// [`MAX_DATAGRAM`] bytes.
    pub fn free_slots(&mut self) -> impl Iterator<Item = &mut [u8]> {
        let used = self.entries.len();
        self.data.chunks_exact_mut(MAX_DATAGRAM).skip(used)
    }

    /// Records that the next free slot now holds `len` bytes from `from`. Returns false when the
    /// batch is full.
    pub fn commit(&mut self, from: SocketAddr, len: usize) -> bool {
        if self.entries.len() == self.capacity {
            return false;
        }
        self.entries.push((from, len.min(MAX_DATAGRAM)));
        true
    }

    /// Copies a datagram into the next free slot (for backends that receive elsewhere, e.g.
    /// GRO splitting). Returns false when full; longer data is truncated to a slot.
    pub fn push(&mut self, from: SocketAddr, data: &[u8]) -> bool {
        let i = self.entries.len();
        if i == self.capacity {
            return false;
        }
        let n = data.len().min(MAX_DATAGRAM);
        self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + n].copy_from_slice(&data[..n]);
        self.commit(from, n)
    }

    /// Datagram `i`: its source and bytes (mutable, so it can be decrypted in place).
    pub fn get_mut(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8])> {
        let (from, len) = *self.entries.get(i)?;
        Some((
            from,
            &mut self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len],
        ))
    }

    /// Datagram `i`, read-only.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let (from, len) = *self.entries.get(i)?;
        Some((from, &self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len]))
    }
}

/// Datagrams to send, packed back to back.
#[derive(Debug, Default)]
pub struct TxBatch {
    data: Vec<u8>,
    entries: Vec<(SocketAddr, usize, usize)>,
    /// Local socket of each entry (parallel to `entries`).
    locals: Vec<u16>,
}

impl TxBatch {
    /// An empty batch with room for `datagrams` full-size datagrams before it grows.
    pub fn with_capacity(datagrams: usize) -> Self {
        TxBatch {
            data: Vec::with_capacity(datagrams * 1500),
            entries: Vec::with_capacity(datagrams),
            locals: Vec::with_capacity(datagrams),
        }
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
        self.locals.clear();
    }

    /// Appends a copy of `bytes`, bound where `t` says (a `SocketAddr` converts to local
    /// socket 0).
    pub fn push(&mut self, t: Transmit, bytes: &[u8]) {
        let off = self.data.len();
        self.data.extend_from_slice(bytes);
        self.entries.push((t.to, off, bytes.len()));
        self.locals.push(t.local);
    }

    /// The local socket datagram `i` leaves by.
    pub fn local(&self, i: usize) -> u16 {
        self.locals.get(i).copied().unwrap_or(0)
    }

    /// Appends a datagram written by `fill` directly into the batch buffer (no copy): `fill`
    /// appends the bytes to the vector it is given and returns where they go, or `None` to
    /// write nothing.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> Option<Transmit>) -> bool {
        let off = self.data.len();
        match fill(&mut self.data) {
            Some(t) => {
                let len = self.data.len() - off;
                self.entries.push((t.to, off, len));
                self.locals.push(t.local);
                true
            }
            None => {
                self.data.truncate(off);
                false
            }
        }
    }

    /// Datagram `i`.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let (to, off, len) = *self.entries.get(i)?;
        Some((to, &self.data[off..off + len]))
    }

    /// Drops the first `n` datagrams (sent), keeping the rest in order.
    pub fn consume(&mut self, n: usize) {
        if n >= self.entries.len() {
            self.clear();
            return;
        }
        let start = self.entries[n].1;
        self.data.drain(..start);
        self.entries.drain(..n);
        self.locals.drain(..n);
        for e in &mut self.entries {
            e.1 -= start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn rx_slots_fill_and_clear() {
        let mut rx = RxBatch::new(2);
        assert!(rx.push(a(1), b"one"));
        let slot = rx.free_slots().next().unwrap();
        slot[..3].copy_from_slice(b"two");
        assert!(rx.commit(a(2), 3));
        assert!(!rx.push(a(3), b"three"), "full");
        assert_eq!(rx.get(0), Some((a(1), &b"one"[..])));
        assert_eq!(rx.get(1), Some((a(2), &b"two"[..])));
        rx.get_mut(1).unwrap().1[0] = b'T';
        assert_eq!(rx.get(1).unwrap().1, b"Two");
        rx.clear();
        assert!(rx.is_empty() && rx.push(a(4), &[0; 5000]));
        assert_eq!(
            rx.get(0).unwrap().1.len(),
            MAX_DATAGRAM,
            "oversize truncated to a slot"
        );
    }

    #[test]
    fn tx_packs_and_consumes_in_order() {
        let mut tx = TxBatch::with_capacity(4);
        tx.push(a(1).into(), b"aa");
        assert!(tx.push_with(|v| {
            v.extend_from_slice(b"bbb");
            Some(Transmit { local: 4, to: a(2) })
        }));
        assert!(!tx.push_with(|v| {
            v.extend_from_slice(b"zz");
            None
        }));
        tx.push(a(3).into(), b"c");
        assert_eq!(tx.len(), 3);
        tx.consume(1);
        assert_eq!(tx.get(0), Some((a(2), &b"bbb"[..])));
        assert_eq!((tx.local(0), tx.local(1)), (4, 0));
        assert_eq!(tx.get(1), Some((a(3), &b"c"[..])));
        tx.consume(5);
        assert!(tx.is_empty());
    }
}
