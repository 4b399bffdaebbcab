//! An ordered map for keys that only grow: the sent-packet table (packet numbers) and a send
//! lane's unacked segments (stream positions). Records are inserted in increasing key order,
//! looked up and removed in any order.
//!
//! A sorted `VecDeque` with tombstones instead of a `BTreeMap`: insertion is a push at the
//! back, lookup a binary search, and removal marks the slot empty and trims empty slots off
//! both ends (acks mostly remove the oldest records). Slots emptied in the middle are
//! compacted away once they outnumber the live records, so memory stays proportional to the
//! records held. One keepalive's record costs a 4-slot buffer (~200 bytes) instead of a
//! B-tree leaf (~550 bytes), which every idle connection allocated once per keepalive round
//! (issue 16: memory per idle connection); busy connections walk one contiguous buffer, and
//! range walks ([`SeqMap::take_range`], [`SeqMap::retain_range`]) need no list of keys.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};

/// Records keyed by strictly increasing `u64`s.
#[derive(Debug, Clone)]
pub(crate) struct SeqMap<V> {
    entries: VecDeque<(u64, Option<V>)>,
    live: usize,
}

impl<V> Default for SeqMap<V> {
    fn default() -> Self {
        SeqMap {
            entries: VecDeque::new(),
            live: 0,
        }
    }
}

impl<V> SeqMap<V> {
    /// Live records.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Whether no record is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds `v` under `k`, which must be above every key held (packet numbers only grow);
    /// a key out of order is refused (`false`), never stored out of place.
    pub(crate) fn insert(&mut self, k: u64, v: V) -> bool {
        let in_order = self.entries.back().is_none_or(|(last, _)| *last < k);
        debug_assert!(in_order, "SeqMap keys must increase: {k}");
        if !in_order {
            return false;
        }
        if self.entries.capacity() == 0 {
            // One slot for the first record, not the default four: an idle connection's
            // keepalive is often its only record (issue 16); busy ones double from here.
            self.entries.reserve_exact(1);
        }
        self.entries.push_back((k, Some(v)));
        self.live += 1;
        true
    }

    fn index(&self, k: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&k, |(key, _)| *key).ok()
    }

    /// The record under `k`.
    pub(crate) fn get(&self, k: u64) -> Option<&V> {
        self.entries[self.index(k)?].1.as_ref()
    }

    /// The record under `k`, mutably.
    pub(crate) fn get_mut(&mut self, k: u64) -> Option<&mut V> {
        let i = self.index(k)?;
        self.entries[i].1.as_mut()
    }

    /// Takes the record under `k` out.
    pub(crate) fn remove(&mut self, k: u64) -> Option<V> {
        let i = self.index(k)?;
        let v = self.entries[i].1.take()?;
        self.live -= 1;
        self.tidy();
        Some(v)
    }

    /// The oldest live record.
    pub(crate) fn first(&self) -> Option<(u64, &V)> {
        // `tidy` keeps the front live whenever anything is.
        self.entries
            .front()
            .and_then(|(k, v)| v.as_ref().map(|v| (*k, v)))
    }

    /// Takes the oldest live record out.
    pub(crate) fn pop_first(&mut self) -> Option<(u64, V)> {
        let (k, v) = self.entries.pop_front()?;
        let v = v?;
        self.live -= 1;
        self.tidy();
        Some((k, v))
    }

    /// Keys of the live records in `range`, ascending.
    #[cfg(test)]
    pub(crate) fn keys_in(&self, range: impl RangeBounds<u64>) -> impl Iterator<Item = u64> + '_ {
        self.entries
            .range(self.slots(range))
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
    }

    /// Slot indices of the keys in `range`.
    fn slots(&self, range: impl RangeBounds<u64>) -> std::ops::Range<usize> {
        let start = match range.start_bound() {
            Bound::Included(&s) => self.entries.partition_point(|(k, _)| *k < s),
            Bound::Excluded(&s) => self.entries.partition_point(|(k, _)| *k <= s),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => self.entries.partition_point(|(k, _)| *k <= e),
            Bound::Excluded(&e) => self.entries.partition_point(|(k, _)| *k < e),
            Bound::Unbounded => self.entries.len(),
        };
        start..end.max(start)
    }

    /// Removes every live record in `range`, in ascending order, handing each to `f` first
    /// where it lies (by reference: moving a record out to hand it over made `f` reload what
    /// the move had just stored, with wider loads than its stores, a stalled reload per
    /// record on the ack path).
    pub(crate) fn take_range(
        &mut self,
        range: impl RangeBounds<u64>,
        mut f: impl FnMut(u64, &mut V),
    ) {
        let slots = self.slots(range);
        if slots.is_empty() {
            return;
        }
        for (k, slot) in self.entries.range_mut(slots) {
            if let Some(v) = slot.as_mut() {
                f(*k, v);
                *slot = None;
                self.live -= 1;
            }
        }
        self.tidy();
    }

    /// Keeps the live records in `range` for which `keep` says so (ascending order) and
    /// removes the others.
    pub(crate) fn retain_range(
        &mut self,
        range: impl RangeBounds<u64>,
        mut keep: impl FnMut(u64, &mut V) -> bool,
    ) {
        let slots = self.slots(range);
        let mut removed = false;
        for (k, slot) in self.entries.range_mut(slots) {
            if let Some(v) = slot {
                if !keep(*k, v) {
                    *slot = None;
                    self.live -= 1;
                    removed = true;
                }
            }
        }
        if removed {
            self.tidy();
        }
    }

    /// Frees the buffer when nothing is held (idle connections).
    pub(crate) fn release_if_empty(&mut self) {
        if self.live == 0 {
            self.entries = VecDeque::new();
        }
    }

    /// Trims empty slots off both ends; compacts when empty slots outnumber live ones.
    fn tidy(&mut self) {
        while self.entries.front().is_some_and(|(_, v)| v.is_none()) {
            self.entries.pop_front();
        }
        while self.entries.back().is_some_and(|(_, v)| v.is_none()) {
            self.entries.pop_back();
        }
        if self.entries.len() > 2 * self.live + 32 {
            self.entries.retain(|(_, v)| v.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_an_ordered_map_under_any_removal_order() {
        let mut m = SeqMap::default();
        let mut model = std::collections::BTreeMap::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = 5u64;
        for step in 0..20_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            match rng % 7 {
                0 | 1 => {
                    next += 1 + rng % 3;
                    assert!(m.insert(next, step));
                    model.insert(next, step);
                }
                2 => {
                    let k = next.saturating_sub(rng % 64);
                    assert_eq!(m.remove(k), model.remove(&k));
                }
                3 => assert_eq!(m.pop_first(), model.pop_first()),
                4 => {
                    // An ack's range: everything in it comes out, in key order.
                    let lo = next.saturating_sub(rng % 80);
                    let hi = lo + (rng >> 8) % 12;
                    let mut got = Vec::new();
                    m.take_range(lo..hi, |k, v| got.push((k, *v)));
                    let want: Vec<(u64, u32)> =
                        model.range(lo..hi).map(|(k, v)| (*k, *v)).collect();
                    for (k, _) in &want {
                        model.remove(k);
                    }
                    assert_eq!(got, want);
                }
                5 => {
                    // Loss detection: keep some records below a bound, drop the others.
                    let hi = next.saturating_sub(rng % 30);
                    let drop_odd = rng & 1 == 1;
                    let mut seen = Vec::new();
                    m.retain_range(..hi, |k, v| {
                        seen.push(k);
                        *v += 1;
                        (k % 2 == 1) != drop_odd
                    });
                    let want: Vec<u64> = model.range(..hi).map(|(k, _)| *k).collect();
                    assert_eq!(seen, want, "every live record below the bound, in order");
                    model.retain(|k, _| *k >= hi || (k % 2 == 1) != drop_odd);
                    for (_, v) in model.range_mut(..hi) {
                        *v += 1;
                    }
                }
                _ => {
                    let lo = next.saturating_sub(rng % 100);
                    let hi = lo + rng % 50;
                    let got: Vec<u64> = m.keys_in(lo..hi).collect();
                    let want: Vec<u64> = model.range(lo..hi).map(|(k, _)| *k).collect();
                    assert_eq!(got, want);
                    let k = next.saturating_sub(rng % 40);
                    assert_eq!(m.get(k), model.get(&k));
                }
            }
            assert_eq!(m.len(), model.len());
            assert_eq!(m.first(), model.first_key_value().map(|(k, v)| (*k, v)));
            assert!(m.entries.len() <= 2 * m.live + 32 + 1);
        }
        let all: Vec<u64> = m.keys_in(..).collect();
        assert_eq!(all, model.keys().copied().collect::<Vec<_>>());
    }

    #[test]
    fn out_of_order_keys_are_refused_and_empty_tables_free_their_buffer() {
        let mut m = SeqMap::default();
        assert!(m.insert(10, ()));
        if !cfg!(debug_assertions) {
            assert!(!m.insert(10, ()));
            assert!(!m.insert(3, ()));
        }
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(10), Some(()));
        m.release_if_empty();
        assert_eq!(m.entries.capacity(), 0);
        assert_eq!(m.keys_in(..=10).count(), 0);
    }
}
