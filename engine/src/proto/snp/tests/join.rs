//! Queue entries shared by consecutive reliable messages (`SendState::enqueue`'s `join`): the
//! packets are byte for byte those of one entry per message, and Nagle, lanes and the entry
//! size bound keep messages apart where sharing would change when or how they go.

use std::time::Duration;

use super::support::{T0, build, connected_with};
use crate::proto::snp::send::JOIN_MAX;
use crate::proto::snp::{Snp, SnpConfig, send_flags};

fn snp() -> Snp {
    connected_with(SnpConfig::default())
}

/// An instance at a fixed fast rate, so its bucket lets many packets out at once.
fn fast() -> Snp {
    connected_with(SnpConfig {
        send_rate_min: 100_000_000,
        send_rate_max: 100_000_000,
        ..SnpConfig::default()
    })
}

/// Queue entries on lane 0.
fn entries(s: &Snp) -> usize {
    s.send.lanes[0].queue.len()
}

/// Every packet `s` sends at `now` (plaintext), until it has nothing more.
fn drain(s: &mut Snp, now: crate::time::Timestamp) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| build(s, now, false).map(|(_, bytes)| bytes)).collect()
}

#[test]
fn shared_entries_send_the_same_bytes_as_one_entry_per_message() {
    // The same messages through an instance with one lane (entries shared) and through one
    // with a second, unused lane (one entry per message): identical packets.
    let mut joined = fast();
    let mut apart = fast();
    apart.configure_lanes(&[0, 0], &[1, 1]).expect("lanes");
    let mut seed = 7u64;
    for i in 0..400u64 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 1 + (seed >> 33) as usize % 300;
        let flags = send_flags::RELIABLE | if i % 3 == 0 { send_flags::NO_NAGLE } else { 0 };
        let payload = vec![i as u8; len];
        let a = joined.send_message(T0, 0, flags, payload.clone());
        let b = apart.send_message(T0, 0, flags, payload);
        assert_eq!(a, b, "message numbers");
    }
    assert!(entries(&joined) < entries(&apart) / 2, "entries shared");
    assert_eq!(entries(&apart), 400);
    let later = T0 + Duration::from_millis(10);
    let (a, b) = (drain(&mut joined, later), drain(&mut apart, later));
    assert!(a.len() > 10, "several packets: {}", a.len());
    assert_eq!(a, b);
}

#[test]
fn an_entry_stays_within_its_bound() {
    let mut s = snp();
    // 34 framed bytes each: 30 fit in one entry, the 31st starts the next.
    for _ in 0..31 {
        s.send_message(
            T0,
            0,
            send_flags::RELIABLE | send_flags::NO_NAGLE,
            vec![1; 32],
        )
        .expect("queued");
    }
    assert_eq!(entries(&s), 2);
    assert!(s.send.lanes[0].queue.iter().all(|m| m.len <= JOIN_MAX));
}

#[test]
fn messages_join_only_under_the_same_nagle_rule() {
    let mut s = snp();
    let rel = send_flags::RELIABLE;
    // Two Nagle messages with one deadline share an entry; one queued later does not.
    s.send_message(T0, 0, rel, vec![1; 8]).expect("queued");
    s.send_message(T0, 0, rel, vec![2; 8]).expect("queued");
    assert_eq!(entries(&s), 1);
    s.send_message(T0 + Duration::from_micros(1), 0, rel, vec![3; 8])
        .expect("queued");
    assert_eq!(entries(&s), 2);
    // The shared entry keeps its deadline: nothing goes before it.
    assert!(!s.wants_to_send(T0 + Duration::from_micros(4999)));
    assert!(s.wants_to_send(T0 + Duration::from_micros(5000)));

    // After an exempt (NoNagle) message, a Nagle one with the same deadline stays apart, so
    // it is not sent early for having joined an exempt entry.
    let mut s = snp();
    s.send_message(T0, 0, rel | send_flags::NO_NAGLE, vec![1; 8])
        .expect("queued");
    let _ = drain(&mut s, T0);
    s.send_message(T0, 0, rel | send_flags::NO_NAGLE, vec![1; 8])
        .expect("queued");
    s.send_message(T0, 0, rel, vec![2; 8]).expect("queued");
    assert_eq!(entries(&s), 2);
    // A NoNagle message exempts everything before it, so it may join.
    s.send_message(T0, 0, rel | send_flags::NO_NAGLE, vec![3; 8])
        .expect("queued");
    assert_eq!(entries(&s), 2);
}

#[test]
fn several_lanes_or_no_coalescing_keep_an_entry_per_message() {
    let rel = send_flags::RELIABLE | send_flags::NO_NAGLE;
    let mut lanes = snp();
    lanes.configure_lanes(&[0, 1], &[1, 1]).expect("lanes");
    let mut plain = connected_with(SnpConfig {
        coalesce_reliable: false,
        ..SnpConfig::default()
    });
    for s in [&mut lanes, &mut plain] {
        for _ in 0..5 {
            s.send_message(T0, 0, rel, vec![1; 16]).expect("queued");
        }
        assert_eq!(entries(s), 5);
    }
}

#[test]
fn an_unreliable_message_ends_the_shared_entry() {
    let mut s = snp();
    let rel = send_flags::RELIABLE | send_flags::NO_NAGLE;
    s.send_message(T0, 0, rel, vec![1; 16]).expect("queued");
    s.send_message(T0, 0, rel, vec![2; 16]).expect("queued");
    s.send_message(T0, 0, send_flags::NO_NAGLE, vec![3; 16])
        .expect("queued");
    s.send_message(T0, 0, rel, vec![4; 16]).expect("queued");
    // [1+2] [3] [4]: the reliable message after the unreliable one starts a new entry.
    assert_eq!(entries(&s), 3);
}

#[test]
fn one_lane_reports_the_queue_time_the_scheduler_would() {
    // The same messages on lane 0 of a one-lane instance (no scheduler entries) and of a
    // two-lane one (entries): the same queue time.
    let mut one = snp();
    let mut two = snp();
    two.configure_lanes(&[0, 0], &[1, 1]).expect("lanes");
    for s in [&mut one, &mut two] {
        for i in 0..20u8 {
            let flags = if i % 2 == 0 { send_flags::RELIABLE } else { 0 };
            s.send_message(T0, 0, flags, vec![i; 100]).expect("queued");
        }
    }
    let lane0 = crate::proto::lanes::LaneId(0);
    let t = one.lane_queue_time(lane0, 1_000_000);
    assert!(t > Duration::ZERO);
    assert_eq!(t, two.lane_queue_time(lane0, 1_000_000));
}

#[test]
fn lanes_added_while_messages_wait_schedule_them_in_order() {
    // Lane 0 alone queues (and shares entries), then a second lane is configured: what waits
    // on lane 0 enters the scheduler, and every byte of both lanes goes out.
    let mut s = fast();
    for i in 0..50u8 {
        s.send_message(T0, 0, send_flags::RELIABLE, vec![i; 40])
            .expect("queued");
    }
    let waiting = entries(&s);
    assert!(waiting < 50, "entries shared while alone");
    s.configure_lanes(&[0, 0], &[1, 1]).expect("lanes");
    assert_eq!(s.sched.lane_count(), 2);
    for i in 0..10u8 {
        s.send_message(
            T0,
            1,
            send_flags::RELIABLE | send_flags::NO_NAGLE,
            vec![i; 40],
        )
        .expect("queued");
    }
    // The bucket holds a packet or so at a time: the rest goes as it refills.
    let mut packets = drain(&mut s, T0);
    packets.extend(drain(&mut s, T0 + Duration::from_millis(10)));
    assert!(packets.len() >= 2);
    assert_eq!(entries(&s), 0, "lane 0 sent in full");
    assert!(s.send.lanes[1].queue.is_empty(), "lane 1 sent in full");
    assert_eq!(
        s.next_send_lane(),
        None,
        "the scheduler agrees nothing waits"
    );
}
