//! Tests for the receiver's packet tracking and ack deadlines.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn ms(v: u64) -> Timestamp {
    Timestamp::from_micros(v * 1000)
}

fn gaps(input: &AckInput) -> Vec<Range<u64>> {
    input.gaps.iter().map(|g| g.missing.clone()).collect()
}

#[test]
fn in_order_packets_leave_no_gaps_and_latest_is_highest() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    for p in 2..10 {
        assert_eq!(t.record(ms(p), p), RecordOutcome::New);
    }
    let a = t.ack_input(ms(100));
    assert_eq!((a.latest, a.received_at), (9, ms(9)));
    assert!(a.gaps.is_empty());
}

#[test]
fn duplicate_and_implied_packet_one_are_reported_as_duplicates() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    assert_eq!(t.record(ms(1), 1), RecordOutcome::Duplicate);
    assert_eq!(t.record(ms(1), 2), RecordOutcome::New);
    assert_eq!(t.record(ms(2), 2), RecordOutcome::Duplicate);
}

#[test]
fn new_gap_is_not_nacked_until_3ms_after_detection() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(10), 2);
    t.record(ms(20), 5);
    // Within the NACK delay: the ack stops below the gap, with packet 2's receive time.
    let a = t.ack_input(ms(22));
    assert_eq!((a.latest, a.received_at), (2, ms(10)));
    assert!(a.gaps.is_empty());
    assert_eq!(t.next_nack_flush(), Some(ms(23)));
    let a = t.ack_input(ms(23));
    assert_eq!((a.latest, a.received_at), (5, ms(20)));
    assert_eq!(gaps(&a), vec![3..5]);
}

#[test]
fn announced_gaps_stop_requesting_a_nack_wakeup() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(0), 3);
    assert_eq!(t.next_nack_flush(), Some(ms(3)));
    t.on_ack_sent(ms(3));
    assert_eq!(t.next_nack_flush(), None);
}

#[test]
fn filling_a_gap_splits_shrinks_and_removes_it() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(0), 10); // gap 2..10
    t.record(ms(1), 5); // split: 2..5, 6..10
    t.record(ms(1), 2); // shrink from below: 3..5
    t.record(ms(1), 9); // shrink from above: 6..9
    t.record(ms(1), 3);
    t.record(ms(1), 4); // gone
    assert_eq!(gaps(&t.ack_input(ms(10))), vec![6..9]);
    assert!(t.is_received(5) && !t.is_received(7));
}

#[test]
fn more_than_62_gaps_merge_the_two_oldest() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    // Receive every other packet: 2, 4, 6, ... creating gaps {3}, {5}, ...
    for i in 1..=64u64 {
        t.record(ms(0), 2 * i);
    }
    assert_eq!(t.gap_count(), MAX_TRACKED_GAPS);
    let g = gaps(&t.ack_input(ms(10)));
    // 63 gaps were detected: the oldest two ({3}, {5}) collapsed; the received 4 is NACKed.
    assert_eq!(g.last(), Some(&(3..6)));
    assert_eq!(g.len(), MAX_TRACKED_GAPS);
    assert_eq!(g.first(), Some(&(127..128)));
}

#[test]
fn stop_waiting_forgets_gaps_below_the_minimum() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(0), 5);
    t.record(ms(0), 10);
    // Packet 11 says: min = 11 - 3 - 1 = 7.
    t.record(ms(0), 11);
    assert_eq!(t.apply_stop_waiting(11, 3), Ok(()));
    assert_eq!(t.min_to_ack(), 7);
    assert_eq!(gaps(&t.ack_input(ms(10))), vec![7..10]);
    assert_eq!(t.record(ms(0), 3), RecordOutcome::BelowMinimum);
}

#[test]
fn stop_waiting_is_clamped_to_the_highest_recorded_packet() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(0), 4);
    assert_eq!(t.apply_stop_waiting(100, 0), Ok(()));
    assert_eq!(t.min_to_ack(), 4);
}

#[test]
fn stop_waiting_going_backwards_is_an_error_only_from_a_newer_packet() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(0), 20);
    assert_eq!(t.apply_stop_waiting(20, 4), Ok(())); // min 15, set by 20
    // A stale, reordered packet 18 with min 10: ignored.
    assert_eq!(t.apply_stop_waiting(18, 7), Ok(()));
    assert_eq!(t.min_to_ack(), 15);
    // Newer packet 21 moving it back to 10: protocol error.
    assert_eq!(
        t.apply_stop_waiting(21, 10),
        Err(StopWaitingError::MovedBackwards { packet: 21 })
    );
    // Equal is a no-op.
    assert_eq!(t.apply_stop_waiting(22, 6), Ok(()));
}

#[test]
fn stop_waiting_before_packet_zero_is_an_error() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    assert_eq!(
        t.apply_stop_waiting(5, 5),
        Err(StopWaitingError::Negative {
            packet: 5,
            offset: 5
        })
    );
    assert_eq!(t.apply_stop_waiting(5, 4), Ok(()));
}

#[test]
fn truncating_blocks_drops_the_newest_gaps_and_lowers_latest() {
    let mut t = RecvPacketTracker::new(ms(0), 1);
    t.record(ms(1), 3); // gap 2
    t.record(ms(2), 5); // gap 4
    t.record(ms(3), 7); // gap 6
    let mut a = t.ack_input(ms(10));
    assert_eq!(gaps(&a), vec![6..7, 4..5, 2..3]);
    a.truncate_newest(1);
    assert_eq!(gaps(&a), vec![2..3]);
    assert_eq!((a.latest, a.received_at), (3, ms(1)));
}

#[test]
fn ack_deadline_takes_the_earliest_reason() {
    let mut d = AckDeadline::new();
    assert_eq!(d.deadline(), None);
    d.on_ack_request_e2e(ms(100));
    assert_eq!(d.deadline(), Some(ms(150)));
    d.on_ack_with_blocks(ms(110), 10); // 25 ms
    assert_eq!(d.deadline(), Some(ms(135)));
    // Reliable data: 10 ms (GNS: 50 ms, see DATA_ACK_DELAY).
    d.on_reliable_data(ms(120));
    assert_eq!(d.deadline(), Some(ms(130)));
    assert!(!d.is_due(ms(129)) && d.is_due(ms(130)));
    d.on_ack_request_immediate(ms(125));
    assert_eq!(d.deadline(), Some(ms(125)));
    d.on_ack_sent();
    assert_eq!(d.deadline(), None);
}

#[test]
fn unacked_packet_deadline_is_twice_clamped_ping_plus_5ms() {
    let mut d = AckDeadline::new();
    d.on_packet_left_unacked(ms(0), Some(Duration::from_millis(20)));
    assert_eq!(d.deadline(), Some(ms(50)));
    let mut d = AckDeadline::new();
    d.on_packet_left_unacked(ms(0), Some(Duration::from_millis(400)));
    assert_eq!(d.deadline(), Some(ms(210)));
    let mut d = AckDeadline::new();
    d.on_packet_left_unacked(ms(0), None);
    assert_eq!(d.deadline(), Some(ms(210)));
    d.on_ack_with_blocks(ms(0), 0);
    assert_eq!(d.deadline(), Some(ms(210)));
}

/// Reference: the set of missing numbers in `min..=latest`.
fn missing(received: &BTreeSet<u64>, min: u64, latest: u64) -> BTreeSet<u64> {
    (min.max(1)..=latest)
        .filter(|p| !received.contains(p))
        .collect()
}

proptest! {
    #[test]
    fn reported_gaps_describe_exactly_the_missing_packets(
        pkts in proptest::collection::vec(2u64..300, 0..200),
        stop in proptest::option::of(0u64..300),
        ack_at in 0u64..250,
    ) {
        let mut t = RecvPacketTracker::new(ms(0), 1);
        let mut received: BTreeSet<u64> = BTreeSet::from([1]);
        let mut max_gaps = 0;
        for (i, &p) in pkts.iter().enumerate() {
            t.record(ms(i as u64), p);
            received.insert(p);
            max_gaps = max_gaps.max(t.gap_count());
        }
        let mut min = 0;
        if let Some(s) = stop {
            let highest = t.highest();
            if t.apply_stop_waiting(highest + 1, s).is_ok() {
                min = t.min_to_ack();
            }
        }
        let a = t.ack_input(ms(ack_at));
        // Gaps still inside the NACK delay lower `latest` instead of being reported.
        let settled = ack_at >= pkts.len() as u64 + 3;
        if settled {
            prop_assert_eq!(a.latest, t.highest());
        }
        let reported: BTreeSet<u64> = a.gaps.iter().flat_map(|g| g.missing.clone()).collect();
        let truth = missing(&received, min, a.latest);
        // Safety: everything missing is NACKed, so the implicit block never lies.
        prop_assert!(truth.is_subset(&reported));
        prop_assert!(reported.iter().all(|&p| p >= min && p <= a.latest));
        // Exactness while the gap limit was never hit.
        if settled && max_gaps < MAX_TRACKED_GAPS {
            prop_assert_eq!(&truth, &reported);
        }
        // Newest first, disjoint.
        for w in a.gaps.windows(2) {
            prop_assert!(w[1].missing.end < w[0].missing.start);
        }
    }
}
