//! Tests for the sender's in-flight table.

#![allow(
    clippy::single_range_in_vec_init,
    reason = "ack ranges are lists of ranges; an ack with one block decodes to one element"
)]

use super::*;

fn ms(v: u64) -> Timestamp {
    Timestamp::from_micros(v * 1000)
}

/// Loss delay used by the tests (9/8 RTT in the connection).
const LD: Duration = Duration::from_millis(50);

fn seg(lane: u8, begin: u64, end: u64) -> SegmentRef {
    SegmentRef {
        lane: LaneId(lane),
        stream: begin..end,
    }
}

/// Sends packets 2..=n+1, packet k carrying segment [k*100, k*100+100) on lane 0.
fn table_with(n: u64) -> SentPackets {
    let mut t = SentPackets::new(FIRST_DATA_PACKET);
    for i in 0..n {
        let k = t.next_packet_number();
        assert_eq!(
            t.record_sent(ms(i), vec![seg(0, k * 100, k * 100 + 100)], true, 100),
            k
        );
    }
    t
}

fn streams(v: &[SegmentRef]) -> Vec<u64> {
    v.iter().map(|s| s.stream.start / 100).collect()
}

#[test]
fn ack_without_blocks_acks_everything_up_to_latest() {
    let mut t = table_with(5); // packets 2..=6
    let out = t
        .apply_ack(
            ms(100),
            &AckRanges {
                latest: 4,
                delay_usec: Some(0),
                ..Default::default()
            },
            LD,
        )
        .expect("latest was sent");
    assert_eq!(streams(&out.acked), vec![2, 3, 4]);
    assert_eq!(out.packets_acked, 3);
    assert_eq!(out.acked_bytes, 300);
    assert_eq!(out.newest_acked_sent, Some(ms(2)));
    assert_eq!(out.lost, Lost::default());
    assert_eq!(t.min_waiting(), 4);
    assert!(t.is_in_flight(5) && !t.is_in_flight(4));
}

#[test]
fn blocks_ack_and_the_thresholds_decide_what_is_lost() {
    let mut t = table_with(8); // 2..=9, packet k sent at k − 2 ms
    // latest 9: ack [8,10) nack [6,8); ack [5,6) nack [4,5); implicit ack [0,4).
    let ack = AckRanges {
        latest: 9,
        delay_usec: None,
        acked: smallvec::smallvec![8..10, 5..6],
        nacked: smallvec::smallvec![6..8, 4..5],
    };
    let out = t.apply_ack(ms(50), &ack, LD).expect("sent");
    let mut acked = streams(&out.acked);
    acked.sort_unstable();
    assert_eq!(acked, vec![2, 3, 5, 8, 9]);
    // 4 and 6 are 3+ packets behind the largest acked (9); 7 is only 2 behind and was sent
    // at 5 ms, so it waits for the time threshold (5 + 50 ms).
    assert_eq!(streams(&out.lost.segments), vec![4, 6]);
    assert_eq!(out.lost.bytes, 200);
    assert_eq!(out.lost.newest_sent, Some(ms(4)));
    assert_eq!(out.rtt, None);
    assert!(t.is_in_flight(7));
    assert_eq!(t.next_deadline(Duration::from_secs(1)), Some(ms(55)));
    let early = t.on_timeout(ms(54), Duration::from_secs(1), LD, Some(ms(0)));
    assert_eq!(early, TimeoutOutcome::default());
    let timed = t.on_timeout(ms(55), Duration::from_secs(1), LD, Some(ms(0)));
    assert_eq!(streams(&timed.lost.segments), vec![7]);
    assert!(!timed.rto_fired);
    // Lost records stay for a late ack, which reports their segments as acked.
    assert_eq!(t.len(), 3);
    let late = t
        .apply_ack(
            ms(60),
            &AckRanges {
                latest: 9,
                delay_usec: None,
                acked: smallvec::smallvec![4..10],
                nacked: smallvec::smallvec![],
            },
            LD,
        )
        .expect("sent");
    assert_eq!(streams(&late.acked), vec![4, 6, 7]);
    assert_eq!(late.late_acks, 3);
    assert_eq!(late.acked_bytes, 0, "their bytes already left the flight");
    assert!(late.lost.segments.is_empty());
    assert!(t.is_empty());
}

#[test]
fn a_nack_is_not_a_loss_until_a_threshold_is_met_and_never_twice() {
    let mut t = table_with(3); // 2, 3, 4 at 0, 1, 2 ms
    let ack = AckRanges {
        latest: 4,
        delay_usec: None,
        acked: smallvec::smallvec![4..5],
        nacked: smallvec::smallvec![3..4],
    };
    // Reordered by less than the loss delay: a late arrival is still possible.
    assert!(
        t.apply_ack(ms(9), &ack, LD)
            .expect("sent")
            .lost
            .segments
            .is_empty()
    );
    assert_eq!(
        streams(&t.apply_ack(ms(60), &ack, LD).expect("sent").lost.segments),
        vec![3]
    );
    assert!(
        t.apply_ack(ms(61), &ack, LD)
            .expect("sent")
            .lost
            .segments
            .is_empty()
    );
}

#[test]
fn rtt_sample_subtracts_the_peer_delay_and_is_bounded() {
    let mut t = table_with(3); // packet 4 sent at 2 ms
    let out = t
        .apply_ack(
            ms(52),
            &AckRanges {
                latest: 4,
                delay_usec: Some(10_000),
                ..Default::default()
            },
            LD,
        )
        .expect("sent");
    assert_eq!(out.rtt, Some(Duration::from_millis(40)));

    let mut t = table_with(1); // packet 2 at 0 ms
    let late = AckRanges {
        latest: 2,
        delay_usec: Some(0),
        ..Default::default()
    };
    assert_eq!(
        t.clone().apply_ack(ms(2001), &late, LD).expect("sent").rtt,
        None
    );
    assert_eq!(
        t.apply_ack(ms(2000), &late, LD).expect("sent").rtt,
        Some(Duration::from_secs(2))
    );
    // A slightly negative sample (delay rounding) counts as zero; a big one is rejected.
    let mut t = table_with(1);
    let neg = |d| AckRanges {
        latest: 2,
        delay_usec: Some(d),
        ..Default::default()
    };
    assert_eq!(
        t.clone()
            .apply_ack(ms(5), &neg(5_900), LD)
            .expect("sent")
            .rtt,
        Some(Duration::ZERO)
    );
    assert_eq!(t.apply_ack(ms(5), &neg(7_000), LD).expect("sent").rtt, None);
}

#[test]
fn ack_of_implied_packet_one_is_tolerated() {
    let mut t = SentPackets::new(FIRST_DATA_PACKET);
    let out = t
        .apply_ack(
            ms(1),
            &AckRanges {
                latest: 1,
                delay_usec: Some(0),
                ..Default::default()
            },
            LD,
        )
        .expect("packet 1 is implied");
    assert_eq!(out, AckOutcome::default());
    assert_eq!(t.min_waiting(), 1);
}

#[test]
fn ack_for_a_packet_never_sent_is_a_typed_error_and_changes_nothing() {
    let mut t = table_with(2); // 2, 3; next 4
    let err = t.apply_ack(
        ms(1),
        &AckRanges {
            latest: 4,
            ..Default::default()
        },
        LD,
    );
    assert_eq!(err, Err(AckError::PacketNeverSent { latest: 4, next: 4 }));
    assert_eq!(t.len(), 2);
    assert_eq!(t.min_waiting(), 0);
}

#[test]
fn min_waiting_never_goes_backwards() {
    let mut t = table_with(5);
    let ack = |latest| AckRanges {
        latest,
        ..Default::default()
    };
    t.apply_ack(ms(1), &ack(5), LD).expect("sent");
    t.apply_ack(ms(1), &ack(3), LD).expect("sent");
    assert_eq!(t.min_waiting(), 5);
}

#[test]
fn rto_declares_the_overdue_packets_lost_and_restarts_from_the_expiry() {
    let mut t = table_with(3); // sent at 0, 1, 2 ms
    let rto = Duration::from_millis(100);
    assert_eq!(t.next_deadline(rto), Some(ms(100)));
    assert_eq!(
        t.on_timeout(ms(99), rto, LD, Some(ms(0))),
        TimeoutOutcome::default()
    );
    // At 101 ms, packets 2 and 3 have been unacked for a whole timeout; 4 has not.
    let out = t.on_timeout(ms(101), rto, LD, Some(ms(0)));
    assert!(out.rto_fired);
    assert_eq!(streams(&out.lost.segments), vec![2, 3]);
    assert!(t.is_in_flight(4));
    // The next expiry counts from this one, not from packet 4's send time (which would fire
    // at once, one packet at a time).
    assert_eq!(t.next_deadline(rto), Some(ms(201)));
    assert!(!t.on_timeout(ms(150), rto, LD, Some(ms(0))).rto_fired);
    assert!(t.awaiting_reply());
    // Forget horizon: max(2 × 100 ms, ping age capped at 3 s) = 2 × RTO here; lost records
    // older than it go, the in-flight one stays until acked or lost.
    t.on_timeout(ms(200), rto, LD, Some(ms(150)));
    assert_eq!(t.len(), 2);
    assert!(t.is_in_flight(4));
}

#[test]
fn an_ack_of_new_data_restarts_the_retransmission_timer() {
    let mut t = table_with(5); // 2..=6 at 0..4 ms
    let rto = Duration::from_millis(100);
    let ack = AckRanges {
        latest: 2,
        delay_usec: None,
        ..Default::default()
    };
    t.apply_ack(ms(90), &ack, LD).expect("sent");
    // Packet 3 was sent at 1 ms, but acks are flowing: no expiry before 90 + 100 ms.
    assert_eq!(t.next_deadline(rto), Some(ms(190)));
}

#[test]
fn records_are_kept_as_long_as_the_newest_ping_sample_is_old_up_to_3s() {
    let rto = Duration::from_millis(100);
    let mut t = SentPackets::new(FIRST_DATA_PACKET);
    t.record_sent(ms(10), vec![seg(0, 1, 2)], true, 100);
    // The newest sample (at 0) predates the packet: keep it until a newer sample or 3 s.
    // Declared lost by the timeout at 110 ms, then kept for a late ack.
    assert!(t.on_timeout(ms(110), rto, LD, Some(ms(0))).rto_fired);
    t.on_timeout(ms(1000), rto, LD, Some(ms(0)));
    assert_eq!(t.len(), 1, "ping sample 1 s old keeps records 1 s");
    t.on_timeout(ms(1000), rto, LD, Some(ms(900)));
    assert!(
        t.is_empty(),
        "a fresh sample shrinks the horizon to 2 x RTO"
    );

    let mut t = SentPackets::new(FIRST_DATA_PACKET);
    t.record_sent(ms(10), vec![seg(0, 1, 2)], true, 100);
    assert!(t.on_timeout(ms(110), rto, LD, Some(ms(0))).rto_fired);
    t.on_timeout(ms(3009), rto, LD, Some(ms(0)));
    assert_eq!(t.len(), 1);
    t.on_timeout(ms(3010), rto, LD, Some(ms(0)));
    assert!(t.is_empty(), "age capped at 3 s");

    let mut t = table_with(1); // sent at 0
    assert!(t.on_timeout(ms(100), rto, LD, None).rto_fired);
    t.on_timeout(ms(1199), rto, LD, None);
    assert_eq!(t.len(), 1, "no ping: 2 x RTO + 1 s");
    t.on_timeout(ms(1200), rto, LD, None);
    assert!(t.is_empty());
}

#[test]
fn segments_of_several_lanes_come_back_on_ack() {
    let mut t = SentPackets::new(FIRST_DATA_PACKET);
    t.record_sent(ms(0), vec![seg(0, 1, 10), seg(3, 1, 5)], true, 100);
    let out = t
        .apply_ack(
            ms(1),
            &AckRanges {
                latest: 2,
                ..Default::default()
            },
            LD,
        )
        .expect("sent");
    assert_eq!(out.acked.as_slice(), [seg(0, 1, 10), seg(3, 1, 5)]);
}

mod with_receiver {
    //! The receiver's ack input, mapped to ack blocks as GNS's encoder does (§4.9), must make
    //! the sender ack exactly what arrived, thanks to the implicit final block.

    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::proto::recv_packets::{AckInput, RecvPacketTracker};

    fn to_ranges(input: &AckInput) -> AckRanges {
        let mut end = input.latest + 1;
        let mut out = AckRanges {
            latest: input.latest,
            delay_usec: Some(0),
            ..Default::default()
        };
        for g in &input.gaps {
            out.acked.push(g.missing.end..end);
            out.nacked.push(g.missing.clone());
            end = g.missing.start;
        }
        out
    }

    proptest! {
        #[test]
        fn sender_acks_exactly_what_the_receiver_got(
            sent in 1u64..150,
            lost in proptest::collection::btree_set(2u64..152, 0..40),
            order in proptest::collection::vec(any::<u32>(), 150),
        ) {
            let mut tx = table_with(sent);
            let last = FIRST_DATA_PACKET + sent - 1;
            let mut arrived: Vec<u64> =
                (FIRST_DATA_PACKET..=last).filter(|p| !lost.contains(p)).collect();
            arrived.sort_by_key(|&p| order[(p - 2) as usize]);
            let mut rx = RecvPacketTracker::new(ms(0), 1);
            for &p in &arrived {
                rx.record(ms(0), p);
            }
            let ranges = to_ranges(&rx.ack_input(ms(1_000)));
            let out = tx.apply_ack(ms(1_000), &ranges, LD).expect("only sent packets are acked");
            let acked: BTreeSet<u64> = out.acked.iter().map(|s| s.stream.start / 100).collect();
            // Everything was sent long before the loss delay: every NACKed packet is lost.
            let nacked: BTreeSet<u64> =
                out.lost.segments.iter().map(|s| s.stream.start / 100).collect();
            let got: BTreeSet<u64> = arrived.iter().copied().collect();
            let missing: BTreeSet<u64> =
                (FIRST_DATA_PACKET..=ranges.latest).filter(|p| !got.contains(p)).collect();
            prop_assert_eq!(acked, got);
            prop_assert_eq!(nacked, missing);
        }
    }
}

#[test]
fn timer_deadline_skips_lost_records_and_late_acks_still_count() {
    // Lost records ahead of an in-flight one: the deadline is the in-flight one's, and the
    // timer neither re-reports the lost ones nor loses the late ack of one.
    let mut t = table_with(5); // packets 2..=6 sent at 0..4 ms
    let rto = Duration::from_millis(100);
    let nack = AckRanges {
        latest: 6,
        delay_usec: None,
        acked: smallvec::smallvec![6..7],
        nacked: smallvec::smallvec![2..5],
    };
    let out = t.apply_ack(ms(40), &nack, LD).expect("valid");
    assert_eq!(streams(&out.lost.segments), vec![2, 3]);
    assert!(t.is_in_flight(4) && t.is_in_flight(5) && !t.is_in_flight(2));
    // Packets 4 and 5 (sent at 2 and 3 ms) are 2 and 1 behind the largest acked: the loss
    // timer has them.
    assert_eq!(t.next_deadline(rto), Some(ms(52)));
    let out = t.on_timeout(ms(53), rto, LD, Some(ms(10)));
    assert_eq!(streams(&out.lost.segments), vec![4, 5]);
    assert_eq!(t.next_deadline(rto), None);
    let late = AckRanges {
        latest: 6,
        delay_usec: None,
        acked: smallvec::smallvec![3..4],
        nacked: smallvec::smallvec![],
    };
    assert_eq!(
        streams(&t.apply_ack(ms(105), &late, LD).expect("ok").acked),
        vec![3]
    );
}

#[test]
fn ack_only_packets_never_arm_the_timeout_and_are_forgotten() {
    let mut t = SentPackets::new(FIRST_DATA_PACKET);
    let rto = Duration::from_millis(100);
    t.record_sent(ms(0), vec![], false, 0); // 2: ack only
    t.record_sent(ms(5), vec![seg(0, 300, 400)], true, 100); // 3: data
    assert!(!t.is_in_flight(2) && t.is_in_flight(3));
    assert_eq!(t.next_deadline(rto), Some(ms(105)));
    let out = t.on_timeout(ms(105), rto, LD, Some(ms(0)));
    assert_eq!(
        streams(&out.lost.segments),
        vec![3],
        "the probe carries data"
    );
    // Forgotten with the lost record once past the horizon.
    t.on_timeout(ms(400), rto, LD, Some(ms(390)));
    assert!(t.is_empty());
    // An ack of an ack-only packet is neither progress in bytes nor a spurious loss, but it
    // still yields an RTT sample.
    t.record_sent(ms(500), vec![], false, 0);
    let out = t
        .apply_ack(
            ms(510),
            &AckRanges {
                latest: 4,
                delay_usec: Some(0),
                ..Default::default()
            },
            LD,
        )
        .expect("sent");
    assert_eq!(out.rtt, Some(Duration::from_millis(10)));
    assert_eq!((out.acked_bytes, out.late_acks), (0, 0));
}
