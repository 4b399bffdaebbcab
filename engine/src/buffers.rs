//! A process-wide pool of message buffers, so a received message costs no allocation on the
//! shard and no free on the application thread that releases it (a cross-thread free is what
//! makes malloc expensive here: the shard allocates, the application frees).
//!
//! ```text
//!  shard: take(len) ─► payload ─► Message ─► app thread ─► drop(Message) ─► give(buf) ─┐
//!           ▲                                                                          │
//!           └──────────────── size class queue (lock-free, bounded) ◄──────────────────┘
//! ```
//!
//! Bounded: each class keeps at most a fixed number of buffers (about 22 MiB in all); beyond
//! that, released buffers are simply freed.

use std::sync::OnceLock;

use crossbeam_queue::ArrayQueue;

/// Capacities of the size classes, and how many idle buffers each keeps.
const CLASSES: [(usize, usize); 4] = [(256, 8192), (2048, 4096), (16_384, 512), (131_072, 32)];

fn pools() -> &'static [ArrayQueue<Vec<u8>>; 4] {
    static POOLS: OnceLock<[ArrayQueue<Vec<u8>>; 4]> = OnceLock::new();
    POOLS.get_or_init(|| CLASSES.map(|(_, depth)| ArrayQueue::new(depth)))
}

/// An empty buffer with room for at least `len` bytes, from the pool when one is idle.
pub fn take(len: usize) -> Vec<u8> {
    match CLASSES.iter().position(|&(cap, _)| cap >= len) {
        Some(c) => pools()[c]
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CLASSES[c].0)),
        None => Vec::with_capacity(len),
    }
}

/// Returns a buffer for reuse (any thread). Buffers of odd sizes are freed.
pub fn give(mut buf: Vec<u8>) {
    let cap = buf.capacity();
    let Some(c) = CLASSES.iter().rposition(|&(size, _)| cap >= size) else {
        return;
    };
    if cap >= CLASSES[c].0 * 4 {
        // Far larger than its class (a user-grown Vec): do not hoard it.
        return;
    }
    buf.clear();
    let _ = pools()[c].push(buf);
}

/// A copy of `data` in a pooled buffer.
pub fn copy_of(data: &[u8]) -> Vec<u8> {
    let mut v = take(data.len());
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_by_size_class() {
        let b = take(100);
        assert!(b.capacity() >= 256 && b.is_empty());
        let p = b.as_ptr();
        give(b);
        // Another test thread may take it first; either way the class hands out ≥ 256.
        let again = take(10);
        assert!(again.capacity() >= 256);
        let _ = p;
        let big = take(200_000);
        assert!(big.capacity() >= 200_000);
        give(big); // not hoarded, no panic
        let v = copy_of(b"hello");
        assert_eq!(v, b"hello");
        give(Vec::new()); // too small for any class
    }
}
