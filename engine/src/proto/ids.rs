//! Local connection ids (spec §2.5, docs/design.md "Identity of things").
//!
//! GNS's rules: random 32-bit ids, both 16-bit halves non-zero, the low 16 bits unique among
//! live connections and the 256 most recently used ids. Sockworks adds one: `shard_bits` bits
//! name the owning shard, so the runtime can steer a data packet (whose header carries our id)
//! to its shard with a shift and a mask, and the API handle (= the id) tells the owner too.
//!
//! The shard bits sit at the bottom of the HIGH half, not in the low 16 bits (the original
//! design said "low bits"; docs/design.md lists the deviation): the low half must stay unique
//! among live ids, and fixing bits there would shrink that space to 2^(16 - shard_bits)
//! values, too few for [`MAX_LIVE_IDS`] connections per shard.
//!
//! ```text
//!  31        16+shard_bits  16 15            0
//!  [ random      | shard idx ][ random, != 0 ]   high half != 0; low half unique (live + last 256)
//! ```

use std::collections::{HashSet, VecDeque};

/// Recently freed ids kept out of reuse (GNS: 256).
pub const RECENT_IDS: usize = 256;
/// Live ids per allocator (one shard). GNS caps a whole process at 0x1FFF because of its
/// 16-bit table key; the only rule our ids need is unique low halves among live and recent
/// ids, which 65,535 values allow for many more. Half the space keeps allocation at about two
/// draws at worst, and lets one shard hold what a busy server churns: 5,000 live connections
/// closing at 900/s keep another 4,500 in their 5 s FinWait, past GNS's cap.
pub const MAX_LIVE_IDS: usize = 0x7fff;

/// A local connection id: how the endpoint names a connection (and the API handle's value).
/// A newtype so that ids cannot be mixed up with the other `u32`s nearby (listen handles,
/// reason codes, message flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u32);

impl ConnectionId {
    /// The id with raw value `id`.
    pub const fn new(id: u32) -> Self {
        ConnectionId(id)
    }

    /// The raw value, as it travels in packet headers and API handles.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl From<u32> for ConnectionId {
    fn from(id: u32) -> Self {
        ConnectionId(id)
    }
}

impl From<ConnectionId> for u32 {
    fn from(id: ConnectionId) -> Self {
        id.0
    }
}

/// Decimal, as the bare `u32` printed before the newtype.
impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why no id could be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Too many live connections on this allocator.
    #[error("too many live connections")]
    Exhausted,
}

/// Hands out connection ids for one shard.
#[derive(Debug)]
pub struct IdAllocator {
    shard_bits: u32,
    shard: u32,
    live_low: HashSet<u16>,
    recent: VecDeque<u16>,
}

impl IdAllocator {
    /// An allocator for shard `shard` of `1 << shard_bits` (shard_bits ≤ 8).
    pub fn new(shard_bits: u32, shard: u32) -> Self {
        assert!(
            shard_bits <= 8 && shard < (1 << shard_bits),
            "shard index fits its bits"
        );
        IdAllocator {
            shard_bits,
            shard,
            live_low: HashSet::new(),
            recent: VecDeque::new(),
        }
    }

    /// The shard an id belongs to under `shard_bits`.
    pub fn shard_of(id: u32, shard_bits: u32) -> u32 {
        (id >> 16) & ((1 << shard_bits) - 1)
    }

    /// Picks a fresh id; `random` yields random u32s (the caller's seeded RNG).
    pub fn allocate(&mut self, mut random: impl FnMut() -> u32) -> Result<u32, IdError> {
        if self.live_low.len() >= MAX_LIVE_IDS {
            return Err(IdError::Exhausted);
        }
        let mask = ((1u32 << self.shard_bits) - 1) << 16;
        // Live (≤ 32767) plus recent (256) low halves leave half of the 65535 free, so this
        // loop ends after about two draws for any reasonable random source.
        loop {
            let id = (random() & !mask) | (self.shard << 16);
            let low = id as u16;
            if low == 0 || id >> 16 == 0 {
                continue;
            }
            if self.live_low.contains(&low) || self.recent.contains(&low) {
                continue;
            }
            self.live_low.insert(low);
            return Ok(id);
        }
    }

    /// Returns an id; it stays out of reuse for the next [`RECENT_IDS`] frees.
    pub fn free(&mut self, id: u32) {
        let low = id as u16;
        if self.live_low.remove(&low) {
            if self.recent.len() == RECENT_IDS {
                self.recent.pop_front();
            }
            self.recent.push_back(low);
        }
    }

    /// Live ids.
    pub fn live(&self) -> usize {
        self.live_low.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> u32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 32) as u32
    }

    #[test]
    fn ids_carry_the_shard_and_follow_gns_rules() {
        let mut s = 1;
        let mut a = IdAllocator::new(3, 5);
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let id = a.allocate(|| lcg(&mut s)).unwrap();
            assert_eq!(IdAllocator::shard_of(id, 3), 5);
            assert!(id as u16 != 0 && id >> 16 != 0);
            assert!(seen.insert(id as u16), "low halves unique among live ids");
        }
        assert_eq!(a.live(), 2000);
    }

    #[test]
    fn freed_ids_are_not_reused_soon_and_cap_holds() {
        let mut s = 9;
        let mut a = IdAllocator::new(0, 0);
        let first = a.allocate(|| lcg(&mut s)).unwrap();
        a.free(first);
        // A generator that keeps offering the freed id, then another.
        let mut offers = [first, first, first ^ 0x0001_0100].into_iter();
        let next = a.allocate(|| offers.next().unwrap()).unwrap();
        assert_ne!(next as u16, first as u16);
        let mut a = IdAllocator::new(0, 0);
        for _ in 0..MAX_LIVE_IDS {
            a.allocate(|| lcg(&mut s)).unwrap();
        }
        assert_eq!(a.allocate(|| lcg(&mut s)), Err(IdError::Exhausted));
    }
}
