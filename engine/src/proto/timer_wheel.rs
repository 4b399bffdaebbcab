//! A hierarchical timer wheel keyed by connection id: the endpoint's timer queue for 10^5
//! connections whose deadlines sit 1 ms .. 60 s ahead, with O(1) insert and remove (no
//! rebalancing, no allocation once warm) where a `BTreeSet<(Timestamp, u32)>` pays O(log n)
//! pointer chasing per operation.
//!
//! Deadlines keep their exact microseconds; the wheel only buckets them by tick
//! (`2^TICK_SHIFT` µs ≈ 1 ms). Nine levels of 64 slots cover every `u64` timestamp, so there is
//! no overflow list:
//!
//! ```text
//!  tick = deadline_us >> 10            level l slot = (tick >> 6l) & 63
//!  level 0: 64 slots × 1 tick   (65 ms)   ◄── entries in elapsed's 64-tick block
//!  level 1: 64 slots × 64 ticks (4.2 s)   ◄── same 4096-tick block, later 64-tick block
//!  level 2: 64 slots × 4096     (268 s)   …   level 8 covers the rest of u64
//! ```
//!
//! An entry's level is the 6-bit group of the highest bit where its tick differs from
//! `elapsed` (the wheel's current tick), so every entry on a lower level expires before any
//! entry on a higher one, and within a level slots expire in index order. A per-level bitmask
//! finds the next occupied slot with one `trailing_zeros`. Popping due entries walks those
//! slots in time order: a level-0 slot is due as a whole (or, for the current tick, entry by
//! entry), a higher slot is cascaded, i.e. its entries are refiled relative to its start.
//!
//! `first` (the earliest deadline) is cached; after the earliest entry leaves, it is recomputed
//! by scanning the one slot that must hold the minimum. Everything is deterministic: time only
//! moves when the caller passes a `now`, and due entries come out in `(deadline, id)` order,
//! exactly as a `BTreeSet<(Timestamp, u32)>` would yield them.

use rustc_hash::FxHashMap;

use crate::time::Timestamp;

/// log2 of the tick in microseconds (1024 µs).
const TICK_SHIFT: u32 = 10;
/// log2 of slots per level.
const LEVEL_BITS: u32 = 6;
const SLOTS: usize = 1 << LEVEL_BITS;
/// Enough levels for any tick of a `u64` microsecond timestamp (54 bits / 6).
const LEVELS: usize = (64 - TICK_SHIFT).div_ceil(LEVEL_BITS) as usize;

/// One filed timer.
#[derive(Debug, Clone, Copy)]
struct Node {
    id: u32,
    deadline: Timestamp,
    /// `level * SLOTS + slot`.
    bucket: u16,
    /// Index inside the bucket's vector (kept current across swap-removes).
    pos: u32,
}

/// Connection deadlines, at most one per id (see the module docs).
#[derive(Debug, Clone)]
pub struct TimerWheel {
    /// Node indices per bucket.
    buckets: Vec<Vec<u32>>,
    /// Bit `s` of `occupied[l]`: bucket `(l, s)` is non-empty.
    occupied: [u64; LEVELS],
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    by_id: FxHashMap<u32, u32>,
    /// The wheel's current tick; no entry is filed before it.
    elapsed: u64,
    /// `Some(first)` when the cached earliest deadline is current.
    first_cache: Option<Option<Timestamp>>,
    /// Reused buffer for entries moved during a cascade.
    scratch: Vec<u32>,
}

impl Default for TimerWheel {
    fn default() -> Self {
        Self::new(Timestamp::ZERO)
    }
}

fn tick(t: Timestamp) -> u64 {
    t.as_micros() >> TICK_SHIFT
}

/// The level and slot for an entry expiring at tick `when` (`>= elapsed`).
fn bucket_for(elapsed: u64, when: u64) -> (usize, usize) {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    let level = (significant / LEVEL_BITS) as usize;
    let slot = ((when >> (LEVEL_BITS * level as u32)) & (SLOTS as u64 - 1)) as usize;
    (level, slot)
}

/// The first tick of slot `slot` of `level`, in the block `elapsed` is in.
fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let shift = LEVEL_BITS * level as u32;
    let block = shift + LEVEL_BITS;
    let base = if block >= 64 {
        0
    } else {
        elapsed >> block << block
    };
    base + ((slot as u64) << shift)
}

impl TimerWheel {
    /// An empty wheel whose clock starts at `now` (deadlines before it are simply due).
    pub fn new(now: Timestamp) -> Self {
        TimerWheel {
            buckets: vec![Vec::new(); LEVELS * SLOTS],
            occupied: [0; LEVELS],
            nodes: Vec::new(),
            free_nodes: Vec::new(),
            by_id: FxHashMap::default(),
            elapsed: tick(now),
            first_cache: Some(None),
            scratch: Vec::new(),
        }
    }

    /// Timers filed.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no timer is filed.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The deadline `id` is filed under.
    pub fn deadline(&self, id: u32) -> Option<Timestamp> {
        self.by_id
            .get(&id)
            .map(|&n| self.nodes[n as usize].deadline)
    }

    /// Files `id` under `deadline`, replacing its previous deadline (returned). O(1).
    pub fn insert(&mut self, deadline: Timestamp, id: u32) -> Option<Timestamp> {
        if let Some(&n) = self.by_id.get(&id) {
            // Rescheduling (the common case): move the node, one hash lookup.
            let old = self.nodes[n as usize].deadline;
            self.unfile(n);
            self.nodes[n as usize].deadline = deadline;
            self.file(n);
            match self.first_cache {
                Some(Some(first)) if first == old && deadline > old => self.first_cache = None,
                Some(first) if first.is_none_or(|f| deadline < f) => {
                    self.first_cache = Some(Some(deadline));
                }
                _ => {}
            }
            return Some(old);
        }
        let node = Node {
            id,
            deadline,
            bucket: 0,
            pos: 0,
        };
        let n = match self.free_nodes.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                // invariant: at most one node per u32 id, so the count fits a u32.
                (self.nodes.len() - 1) as u32
            }
        };
        self.by_id.insert(id, n);
        self.file(n);
        if let Some(first) = &mut self.first_cache {
            if first.is_none_or(|f| deadline < f) {
                *first = Some(deadline);
            }
        }
        None
    }

    /// Removes `id`'s timer; returns the deadline it had. O(1).
    pub fn remove(&mut self, id: u32) -> Option<Timestamp> {
        let n = self.by_id.remove(&id)?;
        self.unfile(n);
        self.free_nodes.push(n);
        let deadline = self.nodes[n as usize].deadline;
        if self.first_cache == Some(Some(deadline)) {
            self.first_cache = None;
        }
        Some(deadline)
    }

    /// The earliest deadline filed. O(1) when cached; otherwise one scan of the single slot
    /// that must hold it.
    pub fn first(&mut self) -> Option<Timestamp> {
        if let Some(first) = self.first_cache {
            return first;
        }
        let first = self.next_bucket().and_then(|(level, slot)| {
            self.buckets[level * SLOTS + slot]
                .iter()
                .map(|&n| self.nodes[n as usize].deadline)
                .min()
        });
        self.first_cache = Some(first);
        first
    }

    /// Removes every timer with a deadline at or before `now` and appends them to `due` in
    /// `(deadline, id)` order, the order a `BTreeSet<(Timestamp, u32)>` pops them. Moves the
    /// wheel's clock to `now` (an earlier `now` than before moves nothing but is still exact).
    pub fn pop_due(&mut self, now: Timestamp, due: &mut Vec<(Timestamp, u32)>) {
        let start_len = due.len();
        // Entries filed before the clock sit in the clock's own slot: compare them exactly.
        let now_tick = tick(now).max(self.elapsed);
        while let Some((level, slot)) = self.next_bucket() {
            let start = slot_start(self.elapsed, level, slot);
            if start > now_tick {
                // Every entry is after `now_tick`, so the clock may move there without any
                // entry's level going stale (module docs).
                self.elapsed = now_tick;
                break;
            }
            // Lower levels are empty, so the clock may move to this slot's start.
            self.elapsed = start;
            let b = level * SLOTS + slot;
            let mut moved = std::mem::take(&mut self.scratch);
            moved.append(&mut self.buckets[b]);
            self.occupied[level] &= !(1 << slot);
            let current = level == 0 && start == now_tick;
            for &n in &moved {
                let node = self.nodes[n as usize];
                if level == 0 && (!current || node.deadline <= now) {
                    self.by_id.remove(&node.id);
                    self.free_nodes.push(n);
                    due.push((node.deadline, node.id));
                } else {
                    // A cascade (or a not-yet-due entry of the current tick): refile relative
                    // to the new clock, onto a lower level (or the same slot).
                    self.file(n);
                }
            }
            moved.clear();
            self.scratch = moved;
            if current {
                break;
            }
        }
        if self.is_empty() {
            self.elapsed = now_tick;
        }
        if due.len() > start_len {
            due[start_len..].sort_unstable();
            self.first_cache = None;
        }
    }

    /// The lowest level's next occupied slot: it holds the earliest deadlines.
    fn next_bucket(&self) -> Option<(usize, usize)> {
        let level = self.occupied.iter().position(|&o| o != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// Puts node `n` in the bucket its deadline belongs to now.
    fn file(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        let when = tick(node.deadline).max(self.elapsed);
        let (level, slot) = bucket_for(self.elapsed, when);
        let b = level * SLOTS + slot;
        // invariant: LEVELS * SLOTS = 576 buckets, so the index fits a u16.
        node.bucket = b as u16;
        // invariant: a bucket holds at most one node per u32 id.
        node.pos = self.buckets[b].len() as u32;
        self.buckets[b].push(n);
        self.occupied[level] |= 1 << slot;
    }

    /// Takes node `n` out of its bucket (swap-remove, fixing the moved node's position).
    fn unfile(&mut self, n: u32) {
        let Node { bucket, pos, .. } = self.nodes[n as usize];
        let b = usize::from(bucket);
        let list = &mut self.buckets[b];
        list.swap_remove(pos as usize);
        if let Some(&moved) = list.get(pos as usize) {
            self.nodes[moved as usize].pos = pos;
        }
        if list.is_empty() {
            self.occupied[b / SLOTS] &= !(1 << (b % SLOTS));
        }
    }
}

#[cfg(test)]
mod tests;
