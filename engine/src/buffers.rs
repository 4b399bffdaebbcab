//! A process-wide pool of message buffers, so a received message costs no allocation on the
//! shard and no free on the application thread that releases it (a cross-thread free is what
//! makes malloc expensive here: the shard allocates, the application frees).
//!
//! ```text
//!  shard: take(len) ─► payload ─► Message ─► app thread ─► drop(Message) ─► give(buf) ─┐
//!           ▲                                                                          │
//!     thread cache ◄── magazine (32 buffers) ◄── size class queue ◄── thread cache ◄───┘
//! ```
//!
//! Each thread keeps a small cache per size class and trades with the shared queues a
//! magazine (a batch of buffers) at a time: one atomic operation per magazine instead of one
//! per buffer. Most buffers never leave their thread at all: an echo's payload is taken on
//! the shard when it arrives and given back there when its reply is acked.
//!
//! Bounded: the shared queues keep at most a fixed number of buffers per class (about 22 MiB
//! in all), each thread's cache a few more (under 1.2 MiB); beyond that, released buffers are
//! simply freed.

use std::cell::RefCell;
use std::sync::OnceLock;

use crossbeam_queue::ArrayQueue;

/// A size class: buffer capacity, idle buffers kept in the shared queue, and the size of a
/// magazine (a thread's cache holds up to two).
struct Class {
    cap: usize,
    shared: usize,
    magazine: usize,
}

const CLASSES: [Class; 4] = [
    Class {
        cap: 256,
        shared: 8192,
        magazine: 64,
    },
    Class {
        cap: 2048,
        shared: 4096,
        magazine: 32,
    },
    Class {
        cap: 16_384,
        shared: 512,
        magazine: 16,
    },
    Class {
        cap: 131_072,
        shared: 32,
        magazine: 2,
    },
];

/// The shared queues: full magazines, per class.
fn shared() -> &'static [ArrayQueue<Vec<Vec<u8>>>; 4] {
    static SHARED: OnceLock<[ArrayQueue<Vec<Vec<u8>>>; 4]> = OnceLock::new();
    SHARED.get_or_init(|| CLASSES.map(|c| ArrayQueue::new(c.shared / c.magazine)))
}

thread_local! {
    /// This thread's idle buffers, per class (at most two magazines each).
    static CACHE: RefCell<[Vec<Vec<u8>>; 4]> = const { RefCell::new([const { Vec::new() }; 4]) };
}

/// The smallest class whose buffers hold `len` bytes.
#[inline]
fn class_for_len(len: usize) -> Option<usize> {
    CLASSES.iter().position(|class| class.cap >= len)
}

/// The class a buffer of capacity `cap` goes back to: the largest it fills, unless it is far
/// larger than that class (a user-grown Vec, not hoarded).
#[inline]
fn class_for_cap(cap: usize) -> Option<usize> {
    let c = CLASSES.iter().rposition(|class| cap >= class.cap)?;
    (cap < CLASSES[c].cap * 4).then_some(c)
}

/// An empty buffer with room for at least `len` bytes, from the pool when one is idle.
///
/// Inlined with its fast path only (a pop from this thread's cache): it runs twice per
/// message, where a call's own cost was a third of the work.
#[inline]
pub fn take(len: usize) -> Vec<u8> {
    let Some(c) = class_for_len(len) else {
        return Vec::with_capacity(len);
    };
    let cached = CACHE.try_with(|cache| cache.borrow_mut()[c].pop());
    match cached {
        Ok(Some(buf)) => buf,
        _ => take_slow(c),
    }
}

/// [`take`] when this thread's cache of class `c` is empty: a magazine from the shared queue,
/// else a new buffer.
#[cold]
#[inline(never)]
fn take_slow(c: usize) -> Vec<u8> {
    CACHE
        .try_with(|cache| take_from(&mut cache.borrow_mut()[c], &shared()[c]))
        // A thread being torn down has no cache: allocate.
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(CLASSES[c].cap))
}

/// Returns a buffer for reuse (any thread). Buffers of odd sizes are freed.
///
/// Always inlined: as a call it received the vector through memory its caller had just
/// written word by word, and the reload of it stalled (store forwarding), a few percent of a
/// shard's time when every message's buffer comes back this way.
#[inline(always)]
pub fn give(mut buf: Vec<u8>) {
    let Some(c) = class_for_cap(buf.capacity()) else {
        return;
    };
    buf.clear();
    let _ = CACHE.try_with(|cache| {
        let local = &mut cache.borrow_mut()[c];
        if local.len() < 2 * CLASSES[c].magazine && local.capacity() != 0 {
            local.push(buf);
        } else {
            give_slow(local, c, buf);
        }
    });
}

/// [`give`] when this thread's cache of class `c` is full (or not yet made).
#[cold]
#[inline(never)]
fn give_slow(local: &mut Vec<Vec<u8>>, c: usize, buf: Vec<u8>) {
    give_to(local, &shared()[c], CLASSES[c].magazine, buf);
}

/// A buffer from a thread's cache of one class, refilled with a magazine from the shared
/// queue when empty.
fn take_from(local: &mut Vec<Vec<u8>>, shared: &ArrayQueue<Vec<Vec<u8>>>) -> Option<Vec<u8>> {
    if local.is_empty()
        && let Some(full) = shared.pop()
    {
        *local = full;
    }
    local.pop()
}

/// Keeps `buf` in a thread's cache of one class; a full cache passes its older half to the
/// shared queue as one magazine (freed if that is full too). The newer half stays, so a
/// thread that alternates give and take at the boundary does not trade a magazine each time.
fn give_to(
    local: &mut Vec<Vec<u8>>,
    shared: &ArrayQueue<Vec<Vec<u8>>>,
    magazine: usize,
    buf: Vec<u8>,
) {
    if local.len() >= 2 * magazine {
        let newer = local.split_off(magazine);
        let older = std::mem::replace(local, newer);
        let _ = shared.push(older);
    }
    if local.capacity() == 0 {
        local.reserve_exact(2 * magazine);
    }
    local.push(buf);
}

/// A copy of `data` in a pooled buffer.
#[inline]
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
        // The thread's own cache hands the same buffer back.
        let again = take(10);
        assert_eq!(again.as_ptr(), p);
        assert!(again.capacity() >= 256);
        let big = take(200_000);
        assert!(big.capacity() >= 200_000);
        give(big); // not hoarded, no panic
        let v = copy_of(b"hello");
        assert_eq!(v, b"hello");
        give(Vec::new()); // too small for any class
    }

    #[test]
    fn caches_trade_whole_magazines_through_the_shared_queue() {
        let shared = ArrayQueue::new(2);
        let (mut giver, mut taker) = (Vec::new(), Vec::new());
        let bufs: Vec<Vec<u8>> = (0..10).map(|_| Vec::with_capacity(64)).collect();
        let ptrs: Vec<*const u8> = bufs.iter().map(|b| b.as_ptr()).collect();
        for b in bufs {
            give_to(&mut giver, &shared, 4, b);
        }
        // 10 given with magazines of 4: the cache overflowed once at 8, keeping 6.
        assert_eq!(giver.len(), 6);
        assert_eq!(shared.len(), 1);
        // The taker gets the oldest four, in one magazine, newest of them first.
        let got: Vec<Vec<u8>> = (0..4)
            .map(|_| take_from(&mut taker, &shared).expect("a magazine waits"))
            .collect();
        let got: Vec<*const u8> = got.iter().map(|b| b.as_ptr()).collect();
        assert_eq!(got, vec![ptrs[3], ptrs[2], ptrs[1], ptrs[0]]);
        assert!(
            take_from(&mut taker, &shared).is_none(),
            "nothing left to trade"
        );
        // The giver's own cache serves it last in, first out.
        let own = take_from(&mut giver, &shared).expect("cached");
        assert_eq!(own.as_ptr(), ptrs[9]);
    }

    #[test]
    fn a_full_shared_queue_frees_instead_of_growing() {
        let shared = ArrayQueue::new(1);
        let mut local = Vec::new();
        for _ in 0..20 {
            give_to(&mut local, &shared, 2, Vec::with_capacity(8));
        }
        assert_eq!(shared.len(), 1, "bounded");
        assert!(local.len() <= 4, "a cache holds at most two magazines");
    }
}
