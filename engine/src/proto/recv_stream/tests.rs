//! Tests for the reliable stream receive buffer.

#![allow(
    clippy::single_range_in_vec_init,
    reason = "gap lists are lists of ranges; a one-element list is the common case"
)]

use proptest::prelude::*;

use super::*;

fn stream() -> RecvStream {
    RecvStream::new(RECV_BUFFER_SIZE_DEFAULT)
}

#[test]
fn stream_starts_at_position_1_and_rejects_position_0() {
    let mut s = stream();
    assert_eq!(s.insert(0, b"x"), Err(SegmentRejected::InvalidPosition));
    assert_eq!(
        s.insert(u64::MAX, b"xy"),
        Err(SegmentRejected::InvalidPosition)
    );
    assert_eq!(s.insert(1, b"hello"), Ok(Inserted::New));
    assert_eq!(s.readable(), b"hello");
    assert_eq!(s.end(), 6);
}

#[test]
fn out_of_order_segment_creates_a_gap_until_filled() {
    let mut s = stream();
    s.insert(6, b"world").expect("fits");
    assert_eq!(s.readable(), b"");
    assert_eq!(s.gaps(), &[1..6]);
    s.insert(1, b"hello").expect("fits");
    assert_eq!(s.readable(), b"helloworld");
    assert_eq!(s.gap_count(), 0);
}

#[test]
fn retransmission_with_other_boundaries_fills_only_the_holes() {
    let mut s = stream();
    s.insert(1, b"ab").expect("fits");
    s.insert(5, b"ef").expect("fits");
    s.insert(9, b"ij").expect("fits");
    assert_eq!(s.gaps(), &[3..5, 7..9]);
    // One retransmitted segment spanning both holes and the data between them.
    assert_eq!(s.insert(2, b"bcdefgh"), Ok(Inserted::New));
    assert_eq!(s.readable(), b"abcdefghij");
    assert_eq!(s.insert(3, b"cd"), Ok(Inserted::Duplicate));
}

#[test]
fn consumed_bytes_are_dropped_and_old_segments_ignored() {
    let mut s = stream();
    s.insert(1, b"abcdef").expect("fits");
    assert_eq!(s.consume(4), 4);
    assert_eq!(s.consumed_position(), 5);
    assert_eq!(s.readable(), b"ef");
    assert_eq!(s.insert(1, b"abc"), Ok(Inserted::Duplicate));
    // Straddling the consumed position: only the tail is used.
    assert_eq!(s.insert(3, b"cdefgh"), Ok(Inserted::New));
    assert_eq!(s.readable(), b"efgh");
    assert_eq!(s.consume(100), 4);
    assert_eq!(s.buffered_len(), 0);
}

#[test]
fn buffer_limit_counts_from_consumed_position_including_holes() {
    let mut s = RecvStream::new(4096);
    assert_eq!(
        s.insert(4000, &[0; 98]),
        Err(SegmentRejected::BufferFull {
            would_hold: 4097,
            limit: 4096
        })
    );
    assert_eq!(s.insert(4000, &[0; 97]), Ok(Inserted::New));
    assert_eq!(s.buffered_len(), 4096);
    s.insert(1, &[1; 3999]).expect("fills the hole");
    s.consume(100);
    assert_eq!(s.insert(4097, &[2; 100]), Ok(Inserted::New));
}

#[test]
fn a_31st_gap_at_the_end_is_refused() {
    let mut s = stream();
    for i in 0..30u64 {
        s.insert(2 + i * 2, b"x").expect("gap budget left");
    }
    assert_eq!(s.gap_count(), 30);
    let before = s.end();
    assert_eq!(
        s.insert(100, b"x"),
        Err(SegmentRejected::TooManyGapsToExtend)
    );
    assert_eq!(s.end(), before);
    // Contiguous extension adds no gap and is still fine.
    assert_eq!(s.insert(before, b"y"), Ok(Inserted::New));
}

#[test]
fn splitting_a_gap_is_refused_once_20_gaps_exist() {
    let mut s = stream();
    for i in 0..19u64 {
        s.insert(10 + i * 10, b"x").expect("gap budget left");
    }
    assert_eq!(s.gap_count(), 19);
    // Splitting 1..10 makes 20.
    s.insert(5, b"x").expect("19 < 20");
    assert_eq!(s.gap_count(), 20);
    assert_eq!(s.insert(2, b"x"), Err(SegmentRejected::TooManyGapsToSplit));
    // Shrinking a gap from its edge is fine.
    assert_eq!(s.insert(1, b"x"), Ok(Inserted::New));
    assert_eq!(s.gap_count(), 20);
}

#[test]
fn large_stream_compacts_without_losing_bytes() {
    let mut s = stream();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let mut out = Vec::new();
    for (i, chunk) in data.chunks(1137).enumerate() {
        s.insert(1 + (i * 1137) as u64, chunk).expect("fits");
        let r = s.readable().to_vec();
        out.extend_from_slice(&r[..r.len() / 2]);
        s.consume(r.len() / 2);
    }
    out.extend_from_slice(s.readable());
    assert_eq!(out, data);
}

proptest! {
    #[test]
    fn any_order_duplication_and_overlap_yields_the_original_stream(
        len in 1usize..4000,
        cuts_a in proptest::collection::vec(1usize..4000, 0..10),
        cuts_b in proptest::collection::vec(1usize..4000, 0..10),
        keep_b in proptest::collection::vec(any::<bool>(), 11),
        order in proptest::collection::vec(any::<u32>(), 24),
        consume_every in 1usize..5,
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let pieces = |cuts: &[usize]| {
            let mut c: Vec<usize> = cuts.iter().map(|&x| x % len).filter(|&x| x > 0).collect();
            c.push(0);
            c.push(len);
            c.sort_unstable();
            c.dedup();
            c.windows(2).map(|w| w[0]..w[1]).collect::<Vec<_>>()
        };
        let mut segs = pieces(&cuts_a);
        segs.extend(pieces(&cuts_b).into_iter().enumerate().filter(|(i, _)| keep_b[*i]).map(|(_, r)| r));
        let mut idx: Vec<usize> = (0..segs.len()).collect();
        idx.sort_by_key(|&i| order[i]);
        let mut queue: std::collections::VecDeque<Range<usize>> =
            idx.into_iter().map(|i| segs[i].clone()).collect();

        let mut s = stream();
        let mut out = Vec::new();
        let mut steps = 0;
        while let Some(r) = queue.pop_front() {
            steps += 1;
            prop_assert!(steps < 10_000);
            if s.insert(1 + r.start as u64, &data[r.clone()]).is_err() {
                queue.push_back(r); // left unacked: the sender retransmits later
            }
            if steps % consume_every == 0 {
                let n = s.readable().len();
                out.extend_from_slice(s.readable());
                s.consume(n);
            }
        }
        out.extend_from_slice(s.readable());
        prop_assert_eq!(out, data);
        prop_assert_eq!(s.gap_count(), 0);
    }
}
