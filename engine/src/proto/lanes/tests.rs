//! Tests for the lane scheduler: WFQ shares, strict priority, GNS's queue-and-drain scenario.

use proptest::prelude::*;

use super::*;

fn cfg(priority: i32, weight: u16) -> LaneConfig {
    LaneConfig { priority, weight }
}

fn sched(configs: &[LaneConfig]) -> LaneScheduler {
    let mut s = LaneScheduler::new();
    s.configure(configs).expect("test config is valid");
    s
}

/// Sends up to `chunk` bytes from the chosen lane; returns the lane and bytes sent.
fn send_one(s: &mut LaneScheduler, chunk: u32) -> Option<(LaneId, u32, bool)> {
    let lane = s.next_lane()?;
    let remaining = s.head_remaining(lane).expect("chosen lane has a head");
    let n = remaining.min(chunk);
    let finished = n == remaining;
    s.on_sent(lane, n, finished).expect("lane is valid");
    Some((lane, n, finished))
}

#[test]
fn weights_20_to_5_share_bytes_4_to_1() {
    let mut s = sched(&[cfg(0, 20), cfg(0, 5)]);
    let mut sent = [0u64; 2];
    for lane in 0..2 {
        for _ in 0..4 {
            s.push(LaneId(lane), 1000).expect("lane exists");
        }
    }
    for _ in 0..20_000 {
        let (lane, n, finished) = send_one(&mut s, 1200).expect("saturated");
        sent[lane.index()] += u64::from(n);
        if finished {
            s.push(lane, 1000).expect("lane exists");
        }
    }
    let ratio = sent[0] as f64 / sent[1] as f64;
    assert!((ratio - 4.0).abs() < 0.1, "ratio {ratio}");
}

#[test]
fn strict_priority_starves_lower_priority_lanes_while_higher_have_data() {
    let mut s = sched(&[cfg(5, 100), cfg(1, 1)]);
    for _ in 0..10 {
        s.push(LaneId(0), 500).expect("lane exists");
        s.push(LaneId(1), 500).expect("lane exists");
    }
    for _ in 0..10 {
        let (lane, _, _) = send_one(&mut s, 1200).expect("data queued");
        assert_eq!(lane, LaneId(1));
    }
    assert_eq!(s.next_lane(), Some(LaneId(0)));
    // New high-priority data preempts again.
    s.push(LaneId(1), 10).expect("lane exists");
    assert_eq!(s.next_lane(), Some(LaneId(1)));
}

#[test]
fn gns_queue_and_drain_scenario_orders_lanes_and_predicts_queue_times() {
    // GNS test lane_quick_queueanddrain: priorities [2,0,1,1], weights [1,1,25,75].
    let mut s = sched(&[cfg(2, 1), cfg(0, 1), cfg(1, 25), cfg(1, 75)]);
    for lane in 0..4 {
        for _ in 0..128 {
            s.push(LaneId(lane), 1024).expect("lane exists");
        }
    }
    let rate = 128 * 1024;
    let predicted: Vec<Duration> = (0..4).map(|l| s.queue_time(LaneId(l), rate)).collect();

    let mut total = 0u64;
    let mut done_at = [0u64; 4];
    let mut bytes_at_lane3_done = [0u64; 4];
    let mut sent = [0u64; 4];
    let mut order = Vec::new();
    while let Some((lane, n, _)) = send_one(&mut s, 1100) {
        total += u64::from(n);
        sent[lane.index()] += u64::from(n);
        if s.queued_bytes(lane) == 0 {
            done_at[lane.index()] = total;
            order.push(lane.0);
            if lane.0 == 3 {
                bytes_at_lane3_done = sent;
            }
        }
    }
    assert_eq!(order, vec![1, 3, 2, 0]);
    // While lanes 2 and 3 shared, they split 25:75.
    let share = bytes_at_lane3_done[2] as f64 / bytes_at_lane3_done[3] as f64;
    assert!((share - 1.0 / 3.0).abs() < 0.02, "share {share}");
    assert_eq!(bytes_at_lane3_done[0], 0);
    // Predictions within 50 ms of what the simulated drain took at 128 KiB/s.
    for lane in 0..4 {
        let actual = Duration::from_micros(done_at[lane] * 1_000_000 / u64::from(rate));
        let diff = predicted[lane].abs_diff(actual);
        assert!(
            diff <= Duration::from_millis(50),
            "lane {lane}: predicted {:?}, actual {actual:?}",
            predicted[lane]
        );
    }
    assert_eq!(predicted[1], Duration::from_secs(1));
    assert_eq!(predicted[0], Duration::from_secs(4));
}

#[test]
fn idle_lane_accumulates_no_credit() {
    let mut s = sched(&[cfg(0, 1), cfg(0, 1)]);
    for _ in 0..100 {
        s.push(LaneId(0), 1000).expect("lane exists");
    }
    for _ in 0..50 {
        send_one(&mut s, 1000);
    }
    // Lane 1 wakes up after being idle: it gets an equal share from now on, not 50 messages
    // of catch-up.
    for _ in 0..10 {
        s.push(LaneId(1), 1000).expect("lane exists");
    }
    let mut firsts = Vec::new();
    for _ in 0..10 {
        firsts.push(send_one(&mut s, 1000).expect("data").0.0);
    }
    let from_0 = firsts.iter().filter(|&&l| l == 0).count();
    assert!((4..=6).contains(&from_0), "{firsts:?}");
}

#[test]
fn partial_sends_advance_the_class_clock() {
    let mut s = sched(&[cfg(0, 1), cfg(0, 1)]);
    s.push(LaneId(0), 10_000).expect("lane exists");
    // Send half of lane 0's big message, then lane 1 arrives: it starts from the advanced clock
    // and its 1000-byte message (finish 5000+2000 units of bytes) beats lane 0's remainder.
    send_one(&mut s, 5000);
    s.push(LaneId(1), 1000).expect("lane exists");
    assert_eq!(s.next_lane(), Some(LaneId(1)));
    assert_eq!(s.head_remaining(LaneId(0)), Some(5000));
    assert_eq!(s.queued_bytes(LaneId(0)), 5000);
}

#[test]
fn clocks_rebase_beyond_2_pow_53_without_changing_order() {
    let mut s = sched(&[cfg(0, 1), cfg(0, u16::MAX)]);
    // Lane 0's multiplier is 65536 × 65536 per byte: 2^53 after 2^21 bytes.
    for _ in 0..3 {
        s.push(LaneId(0), 1 << 20).expect("lane exists");
    }
    for _ in 0..3 {
        send_one(&mut s, u32::MAX);
    }
    s.push(LaneId(0), 10).expect("lane exists");
    s.push(LaneId(1), 10).expect("lane exists");
    assert_eq!(s.next_lane(), Some(LaneId(1)));
    assert!(s.0.as_ref().expect("configured").classes[0].clock <= CLOCK_REBASE_THRESHOLD);
}

#[test]
fn reconfiguration_cannot_shrink_and_rejects_zero_weights() {
    let mut s = sched(&[cfg(0, 1), cfg(0, 1), cfg(0, 1)]);
    assert_eq!(
        s.configure(&[cfg(0, 1), cfg(0, 1)]),
        Err(LaneConfigError::CannotShrink {
            current: 3,
            requested: 2
        })
    );
    assert_eq!(s.configure(&[]), Err(LaneConfigError::NoLanes));
    assert_eq!(
        s.configure(&[cfg(0, 1), cfg(0, 0), cfg(0, 1)]),
        Err(LaneConfigError::ZeroWeight { lane: 1 })
    );
    assert_eq!(
        s.configure(&vec![cfg(0, 1); 256]),
        Err(LaneConfigError::TooManyLanes { requested: 256 })
    );
    assert_eq!(s.lane_count(), 3);
    assert_eq!(s.configure(&vec![cfg(0, 1); 255]), Ok(()));
    assert_eq!(s.push(LaneId(254), 1), Ok(()));
}

#[test]
fn reconfiguration_keeps_queued_messages_in_order() {
    let mut s = LaneScheduler::new();
    s.push(LaneId(0), 100).expect("lane exists");
    s.push(LaneId(0), 200).expect("lane exists");
    send_one(&mut s, 30);
    s.configure(&[cfg(1, 1), cfg(0, 1)]).expect("valid");
    assert_eq!(s.head_remaining(LaneId(0)), Some(70));
    assert_eq!(s.queued_bytes(LaneId(0)), 270);
    assert_eq!(s.config(LaneId(1)), Some(cfg(0, 1)));
    s.push(LaneId(1), 5).expect("lane exists");
    assert_eq!(s.next_lane(), Some(LaneId(1)));
}

#[test]
fn unknown_lanes_and_empty_lanes_are_typed_errors() {
    let mut s = LaneScheduler::new();
    assert_eq!(s.push(LaneId(1), 1), Err(LaneError::UnknownLane(1)));
    assert_eq!(
        s.on_sent(LaneId(0), 1, true),
        Err(LaneError::NothingQueued(0))
    );
    assert!(s.is_empty());
    assert_eq!(s.next_lane(), None);
    assert_eq!(s.queue_time(LaneId(0), 1000), Duration::ZERO);
}

proptest! {
    #[test]
    fn byte_shares_converge_to_weight_ratios(
        weights in proptest::collection::vec(1u16..100, 2..5),
        sizes in proptest::collection::vec(1u32..3000, 1..20),
        chunk in 200u32..1500,
    ) {
        let configs: Vec<LaneConfig> = weights.iter().map(|&w| cfg(0, w)).collect();
        let mut s = sched(&configs);
        let n = weights.len();
        let mut next_size = vec![0usize; n];
        for lane in 0..n {
            for _ in 0..3 {
                s.push(LaneId(lane as u8), sizes[next_size[lane] % sizes.len()]).expect("lane");
                next_size[lane] += 1;
            }
        }
        let mut sent = vec![0u64; n];
        let mut total = 0u64;
        while total < 2_000_000 {
            let (lane, b, finished) = send_one(&mut s, chunk).expect("saturated");
            sent[lane.index()] += u64::from(b);
            total += u64::from(b);
            if finished {
                let l = lane.index();
                s.push(lane, sizes[next_size[l] % sizes.len()]).expect("lane");
                next_size[l] += 1;
            }
        }
        let wsum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        for lane in 0..n {
            let expected = f64::from(weights[lane]) / wsum as f64;
            let got = sent[lane] as f64 / total as f64;
            prop_assert!((got - expected).abs() < 0.01, "lane {} got {} want {}", lane, got, expected);
        }
    }
}
