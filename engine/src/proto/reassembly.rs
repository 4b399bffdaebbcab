//! Reassembly of unreliable messages from fragments, one instance per lane (spec §4.4).
//!
//! An unreliable message larger than a packet is cut into segments, each carrying its byte
//! offset; the last one has the end flag. A message that fits in one segment (offset 0 + end)
//! is handed straight back without touching the map. Fragments wait in a small map keyed by
//! (message number, offset):
//!
//! ```text
//!   (7, 0)[1100 B] (7, 1100)[1100 B] (7, 2200)[300 B, end]  -> message 7 complete
//!   (9, 1100)[1100 B]                                      -> waits for (9, 0)
//! ```
//!
//! At most [`MAX_BUFFERED_SEGMENTS`] are held; beyond that every fragment of the oldest
//! (lowest-numbered) message is dropped. Unreliable data may be lost, so this loses nothing
//! the protocol promised.
//!
//! The common case skips the map: a message cut across consecutive packets arrives in order,
//! one piece after the other, while nothing else waits. Such a message is gathered in one
//! pooled buffer (a "run") that becomes the message itself when its end arrives: no copy per
//! fragment, no map entry, no second copy at the end. Anything else (a gap, a second message
//! interleaved) first puts the run into the map as one fragment and takes the general path.
//! A run starts only while the map is empty, so the map holds at most one such merged
//! fragment (≤ [`MAX_MESSAGE_EXTENT`] bytes) beside its ≤ 1300-byte ones.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// Largest unreliable segment accepted (§4.4).
pub(crate) const MAX_SEGMENT_SIZE: usize = 1300;

/// Largest `offset + size` accepted: 20 × 1300 (§4.4).
pub(crate) const MAX_MESSAGE_EXTENT: u64 = 26_000;

/// Room a run's buffer starts with: a pooled 2 KiB buffer holds a message cut across two
/// packets whole.
const RUN_CAPACITY: usize = 2048;

/// Fragments held per lane before the oldest message is evicted (§4.4).
pub(crate) const MAX_BUFFERED_SEGMENTS: usize = 20;

/// Why a segment was dropped without effect (not an error: the packet is still acked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// Segment larger than [`MAX_SEGMENT_SIZE`].
    SegmentTooLarge,
    /// `offset + size` beyond [`MAX_MESSAGE_EXTENT`].
    BeyondMaxExtent,
    /// A fragment at the same (message, offset) is already held.
    Duplicate,
}

/// What [`Reassembly::insert`] did with a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reassembled<'a> {
    /// A whole message: borrowed when it arrived in one segment, assembled otherwise.
    Complete {
        /// The lane's message number.
        msg_num: u64,
        /// The message bytes.
        data: Cow<'a, [u8]>,
    },
    /// Held until the rest arrives.
    Buffered,
    /// Dropped; see the reason.
    Ignored(Ignored),
}

#[derive(Debug, Clone)]
struct Fragment {
    data: Vec<u8>,
    end: bool,
}

/// A message received in order so far: its bytes from offset 0.
#[derive(Debug, Clone)]
struct Run {
    msg_num: u64,
    data: Vec<u8>,
}

/// The reassembly buffer of one lane.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reassembly {
    fragments: BTreeMap<(u64, u64), Fragment>,
    /// Set only while `fragments` is empty.
    run: Option<Run>,
}

impl Reassembly {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Frees the table's node when no fragment is held (idle connections).
    pub(crate) fn release_idle(&mut self) {
        if self.fragments.is_empty() {
            self.fragments = BTreeMap::new();
        }
    }

    /// Fragments currently held.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffered_segments(&self) -> usize {
        self.fragments.len() + usize::from(self.run.is_some())
    }

    /// Takes one decoded unreliable segment. Work is bounded by [`MAX_BUFFERED_SEGMENTS`].
    // GNS: CSteamNetworkConnectionBase::SNP_ReceiveUnreliableSegment
    pub(crate) fn insert<'a>(
        &mut self,
        msg_num: u64,
        offset: u64,
        data: &'a [u8],
        end: bool,
    ) -> Reassembled<'a> {
        if data.len() > MAX_SEGMENT_SIZE {
            return Reassembled::Ignored(Ignored::SegmentTooLarge);
        }
        // data.len() ≤ 1300, so the sum cannot overflow.
        if offset.saturating_add(data.len() as u64) > MAX_MESSAGE_EXTENT {
            return Reassembled::Ignored(Ignored::BeyondMaxExtent);
        }
        if offset == 0 && end {
            return Reassembled::Complete {
                msg_num,
                data: Cow::Borrowed(data),
            };
        }
        if let Some(r) = self.run.as_mut()
            && r.msg_num == msg_num
        {
            let have = r.data.len() as u64;
            if offset < have {
                // A piece already in the run (a duplicate packet's copy).
                return Reassembled::Ignored(Ignored::Duplicate);
            }
            if offset == have {
                r.data.extend_from_slice(data);
                if !end {
                    return Reassembled::Buffered;
                }
                // invariant: `r` is the run just matched.
                let r = self.run.take().expect("invariant: the run is set");
                return Reassembled::Complete {
                    msg_num,
                    data: Cow::Owned(r.data),
                };
            }
        }
        if offset == 0 && self.run.is_none() && self.fragments.is_empty() {
            // A segment is ≤ 1300 bytes, so it fits. The run is placed first and filled where
            // it lies: filled and then moved in, its vector was reloaded right after the
            // stores that built it (a stalled reload per fragmented message).
            let run = self.run.insert(Run {
                msg_num,
                data: crate::buffers::take(RUN_CAPACITY),
            });
            run.data.extend_from_slice(data);
            return Reassembled::Buffered;
        }
        // The general path: a run waits in the map as one fragment (the map is empty while
        // a run is set, so its key is free).
        if let Some(r) = self.run.take() {
            self.fragments.insert(
                (r.msg_num, 0),
                Fragment {
                    data: r.data,
                    end: false,
                },
            );
        }
        let key = (msg_num, offset);
        if self.fragments.contains_key(&key) {
            return Reassembled::Ignored(Ignored::Duplicate);
        }
        self.fragments.insert(
            key,
            Fragment {
                data: data.to_vec(),
                end,
            },
        );
        if let Some(done) = self.try_complete(msg_num) {
            return Reassembled::Complete {
                msg_num,
                data: Cow::Owned(done),
            };
        }
        if self.fragments.len() > MAX_BUFFERED_SEGMENTS {
            self.evict_oldest_message();
        }
        Reassembled::Buffered
    }

    /// Assembles `msg_num` if its fragments run contiguously from offset 0 to an end flag.
    fn try_complete(&mut self, msg_num: u64) -> Option<Vec<u8>> {
        let mut expect = 0u64;
        let mut total = None;
        for (&(_, off), frag) in self.fragments.range((msg_num, 0)..=(msg_num, u64::MAX)) {
            if off != expect {
                return None;
            }
            expect += frag.data.len() as u64;
            if frag.end {
                total = Some(expect);
                break;
            }
        }
        let total = total?;
        let mut out = crate::buffers::take(usize::try_from(total).unwrap_or(0));
        let keys: Vec<(u64, u64)> = self
            .fragments
            .range((msg_num, 0)..=(msg_num, u64::MAX))
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            if let Some(frag) = self.fragments.remove(&k) {
                if k.1 < total {
                    out.extend_from_slice(&frag.data);
                }
            }
        }
        Some(out)
    }

    fn evict_oldest_message(&mut self) {
        let Some((&(oldest, _), _)) = self.fragments.first_key_value() else {
            return;
        };
        self.fragments.retain(|&(m, _), _| m != oldest);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn complete(r: Reassembled<'_>) -> Option<(u64, Vec<u8>)> {
        match r {
            Reassembled::Complete { msg_num, data } => Some((msg_num, data.into_owned())),
            _ => None,
        }
    }

    #[test]
    fn single_segment_message_is_borrowed_without_buffering() {
        let mut r = Reassembly::new();
        let bytes = [1u8, 2, 3];
        match r.insert(5, 0, &bytes, true) {
            Reassembled::Complete {
                msg_num: 5,
                data: Cow::Borrowed(d),
            } => assert_eq!(d, &bytes),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(r.buffered_segments(), 0);
    }

    #[test]
    fn fragments_in_any_order_complete_once_at_the_last_piece() {
        let mut r = Reassembly::new();
        assert_eq!(r.insert(3, 4, b"efgh", false), Reassembled::Buffered);
        assert_eq!(r.insert(3, 8, b"ij", true), Reassembled::Buffered);
        let got = complete(r.insert(3, 0, b"abcd", false));
        assert_eq!(got, Some((3, b"abcdefghij".to_vec())));
        assert_eq!(r.buffered_segments(), 0);
    }

    #[test]
    fn duplicate_fragment_is_dropped() {
        let mut r = Reassembly::new();
        r.insert(1, 0, b"ab", false);
        assert_eq!(
            r.insert(1, 0, b"ab", false),
            Reassembled::Ignored(Ignored::Duplicate)
        );
        assert_eq!(r.buffered_segments(), 1);
    }

    #[test]
    fn oversized_or_far_segments_are_ignored() {
        let mut r = Reassembly::new();
        let big = vec![0u8; 1301];
        assert_eq!(
            r.insert(1, 0, &big, false),
            Reassembled::Ignored(Ignored::SegmentTooLarge)
        );
        let ok = vec![0u8; 1300];
        assert_eq!(r.insert(1, 24_700, &ok, false), Reassembled::Buffered);
        assert_eq!(
            r.insert(1, 24_701, &ok, false),
            Reassembled::Ignored(Ignored::BeyondMaxExtent)
        );
        assert_eq!(
            r.insert(1, u64::MAX, b"x", true),
            Reassembled::Ignored(Ignored::BeyondMaxExtent)
        );
    }

    #[test]
    fn more_than_20_fragments_evict_the_oldest_message_entirely() {
        let mut r = Reassembly::new();
        // Message 1: 15 fragments waiting for offset 0; message 2: 6 fragments.
        for i in 1..=15u64 {
            r.insert(1, i * 10, &[0; 10], false);
        }
        for i in 1..=5u64 {
            r.insert(2, i * 10, &[0; 10], false);
        }
        assert_eq!(r.buffered_segments(), 20);
        r.insert(2, 60, &[0; 10], true);
        assert_eq!(r.buffered_segments(), 6);
        // Message 1 is gone: its first fragment no longer completes anything.
        assert_eq!(r.insert(1, 0, &[0; 10], false), Reassembled::Buffered);
        // Message 2 completes.
        assert_eq!(
            complete(r.insert(2, 0, &[7; 10], false)).map(|(_, d)| d.len()),
            Some(70)
        );
    }

    #[test]
    fn gap_before_the_end_flag_keeps_the_message_waiting() {
        let mut r = Reassembly::new();
        r.insert(4, 0, b"ab", false);
        assert_eq!(r.insert(4, 4, b"ef", true), Reassembled::Buffered);
        assert_eq!(
            complete(r.insert(4, 2, b"cd", false)),
            Some((4, b"abcdef".to_vec()))
        );
    }

    #[test]
    fn in_order_pieces_gather_in_one_buffer_that_becomes_the_message() {
        let mut r = Reassembly::new();
        assert_eq!(r.insert(8, 0, b"abc", false), Reassembled::Buffered);
        assert_eq!(r.insert(8, 3, b"def", false), Reassembled::Buffered);
        assert!(
            r.fragments.is_empty(),
            "no map entry for an in-order message"
        );
        assert_eq!(r.buffered_segments(), 1);
        // A duplicate packet's copy of a piece already gathered changes nothing.
        assert_eq!(
            r.insert(8, 3, b"def", false),
            Reassembled::Ignored(Ignored::Duplicate)
        );
        match r.insert(8, 6, b"g", true) {
            Reassembled::Complete {
                msg_num: 8,
                data: Cow::Owned(d),
            } => assert_eq!(d, b"abcdefg"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(r.buffered_segments(), 0);
    }

    #[test]
    fn an_interleaved_message_moves_the_run_into_the_map_and_both_complete() {
        let mut r = Reassembly::new();
        r.insert(1, 0, b"ab", false);
        r.insert(1, 2, b"cd", false);
        // Message 2 starts before 1 ends: 1's run becomes one fragment in the map.
        assert_eq!(r.insert(2, 0, b"xy", false), Reassembled::Buffered);
        assert_eq!(r.fragments.len(), 2);
        assert_eq!(
            complete(r.insert(1, 4, b"e", true)),
            Some((1, b"abcde".to_vec()))
        );
        assert_eq!(
            complete(r.insert(2, 2, b"z", true)),
            Some((2, b"xyz".to_vec()))
        );
        assert_eq!(r.buffered_segments(), 0);
    }

    proptest! {
        #[test]
        fn two_interleaved_messages_each_complete_exactly_once(
            lens in (1usize..3000, 1usize..3000),
            cut in 200usize..1300,
            order_seed in proptest::collection::vec(any::<u32>(), 20),
            dup in proptest::collection::vec(any::<bool>(), 20),
        ) {
            let msgs: Vec<Vec<u8>> = [lens.0, lens.1]
                .iter()
                .enumerate()
                .map(|(m, &len)| (0..len).map(|i| (i * 7 + m * 13) as u8).collect())
                .collect();
            let mut pieces: Vec<(u64, u64, &[u8], bool)> = Vec::new();
            for (m, msg) in msgs.iter().enumerate() {
                let len = msg.len();
                for (i, c) in msg.chunks(cut).enumerate() {
                    pieces.push((m as u64 + 5, (i * cut) as u64, c, (i + 1) * cut >= len));
                }
            }
            prop_assume!(pieces.len() <= MAX_BUFFERED_SEGMENTS);
            let mut order: Vec<usize> = (0..pieces.len()).collect();
            order.sort_by_key(|&i| order_seed[i]);
            // The piece of each message that arrives last completes it; a duplicate of any
            // other piece follows it at once (the packet layer drops duplicate packets after
            // delivery, so none comes after its message completed).
            let last_of = |m: u64| order.iter().rev().copied().find(|&i| pieces[i].0 == m);
            let last = [last_of(5), last_of(6)];
            let mut r = Reassembly::new();
            let mut delivered = Vec::new();
            for &i in &order {
                let (m, off, data, end) = pieces[i];
                let copies = if dup[i] && !last.contains(&Some(i)) { 2 } else { 1 };
                for _ in 0..copies {
                    if let Some(d) = complete(r.insert(m, off, data, end)) {
                        delivered.push(d);
                    }
                }
            }
            delivered.sort();
            prop_assert_eq!(delivered, vec![(5, msgs[0].clone()), (6, msgs[1].clone())]);
            prop_assert_eq!(r.buffered_segments(), 0);
        }

        #[test]
        fn any_fragment_order_yields_the_message_exactly_once(
            len in 1usize..5000,
            cut in 1usize..1300,
            order_seed in proptest::collection::vec(any::<u32>(), 20),
            dup in proptest::collection::vec(any::<bool>(), 20),
        ) {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let pieces: Vec<(u64, &[u8], bool)> = msg
                .chunks(cut)
                .enumerate()
                .map(|(i, c)| ((i * cut) as u64, c, (i + 1) * cut >= len))
                .collect();
            prop_assume!(pieces.len() <= MAX_BUFFERED_SEGMENTS);
            let mut order: Vec<usize> = (0..pieces.len()).collect();
            order.sort_by_key(|&i| order_seed[i]);
            // Duplicates are sent before the last distinct piece (the packet layer drops
            // duplicate packets after delivery).
            let last = order.pop().expect("at least one piece");
            let mut feed = Vec::new();
            for &i in &order {
                feed.push(i);
                if dup[i] {
                    feed.push(i);
                }
            }
            feed.push(last);
            let mut r = Reassembly::new();
            let mut delivered = Vec::new();
            for i in feed {
                let (off, data, end) = pieces[i];
                if let Some(m) = complete(r.insert(9, off, data, end)) {
                    delivered.push(m);
                }
            }
            prop_assert_eq!(delivered, vec![(9, msg)]);
            prop_assert_eq!(r.buffered_segments(), 0);
        }
    }
}
