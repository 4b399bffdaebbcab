//! Two SNP instances through the seeded simulator: reliable delivery under loss, reorder and
//! duplication; unreliable integrity; lane weights and priorities.

use std::collections::HashMap;
use std::time::Duration;

use super::harness::{Pair, Rng, fast_config, payload};
use crate::proto::snp::{SendError, send_flags};
use crate::testing::{LinkConditions, SeedGuard, seed_from_env};

fn lossy(loss_pct: f64) -> LinkConditions {
    LinkConditions {
        loss_pct,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(1),
        reorder_pct: 5.0,
        reorder_delay: Duration::from_millis(3),
        dup_pct: 2.0,
        ..LinkConditions::default()
    }
}

/// 10,000 reliable messages over 3 lanes: sizes mostly 1..200 B, some 1-5 KB, and a few
/// up to 512 KiB (one exactly 512 KiB).
fn reliable_plan(rng: &mut Rng) -> Vec<(u8, usize)> {
    (0..10_000)
        .map(|i| {
            let lane = rng.below(3) as u8;
            let len = if i == 5_000 {
                512 * 1024
            } else if i % 2_000 == 1_999 {
                16_384 + rng.below(200_000) as usize
            } else if rng.below(20) == 0 {
                1_200 + rng.below(4_000) as usize
            } else {
                1 + rng.below(200) as usize
            };
            (lane, len)
        })
        .collect()
}

fn reliable_scenario(loss_pct: f64, default_seed: u64) {
    let seed = seed_from_env(default_seed);
    let _guard = SeedGuard::new(seed);
    let mut pair = Pair::new(seed, lossy(loss_pct), fast_config(10_000_000));
    pair.a
        .configure_lanes(&[0, 0, 0], &[1, 1, 1])
        .expect("3 lanes");
    let plan = reliable_plan(&mut Rng(seed ^ 0x5eed));
    let mut next = 0usize;
    let mut expected: [Vec<(u64, usize)>; 3] = Default::default();
    pair.run_until(Duration::from_secs(600), 2_000_000, |p| {
        while let Some(&(lane, len)) = plan.get(next) {
            if len > p.a.send_buffer_available() {
                break;
            }
            match p.a.send_message(
                p.now,
                lane,
                send_flags::RELIABLE,
                payload(lane, next as u64, len),
            ) {
                Ok(num) => {
                    expected[usize::from(lane)].push((num, next));
                    next += 1;
                }
                Err(SendError::LimitExceeded) => break,
                Err(e) => panic!("send failed: {e}"),
            }
        }
        next == plan.len() && p.got[1].len() == plan.len() && !p.a.reliable_pending()
    });
    eprintln!(
        "loss {loss_pct}%: {:?} virtual, {} iterations, A {:?}, net {:?}",
        pair.now
            .saturating_since(crate::time::Timestamp::from_micros(1_000_000)),
        pair.iterations,
        pair.a.counters(),
        pair.net.stats()
    );
    let mut seen: [usize; 3] = [0; 3];
    for m in &pair.got[1] {
        assert!(m.reliable);
        let l = usize::from(m.lane);
        let (num, idx) = expected[l][seen[l]];
        assert_eq!(m.msg_num, num, "lane {l} out of order");
        assert_eq!(
            m.data,
            payload(m.lane, idx as u64, plan[idx].1),
            "message {idx} corrupted"
        );
        seen[l] += 1;
    }
    assert_eq!(seen.iter().sum::<usize>(), plan.len());
    if loss_pct > 0.0 {
        assert!(pair.a.counters().retransmitted_segments > 0);
    }
}

#[test]
fn reliable_messages_arrive_once_in_order_without_loss() {
    reliable_scenario(0.0, 1);
}

#[test]
fn reliable_messages_arrive_once_in_order_under_10pct_loss() {
    reliable_scenario(10.0, 2);
}

#[test]
fn reliable_messages_arrive_once_in_order_under_30pct_loss() {
    reliable_scenario(30.0, 3);
}

#[test]
fn reliable_messages_arrive_once_in_order_under_50pct_loss() {
    reliable_scenario(50.0, 4);
}

/// Without reordering every unreliable message arrives; with it, GNS's 20-fragment
/// reassembly limit may evict a message whose fragment was overtaken (§4.4).
fn unreliable_scenario(cond: LinkConditions, default_seed: u64) -> (usize, usize) {
    let seed = seed_from_env(default_seed);
    let _guard = SeedGuard::new(seed);
    let mut pair = Pair::new(seed, cond, fast_config(20_000_000));
    let mut rng = Rng(seed ^ 0xfeed);
    let plan: Vec<usize> = (0..3_000)
        .map(|_| {
            if rng.below(10) == 0 {
                1_200 + rng.below(15_301) as usize // up to 16500: multi-packet, unreliable
            } else {
                rng.below(300) as usize
            }
        })
        .collect();
    let mut next = 0usize;
    let mut by_num: HashMap<u64, usize> = HashMap::new();
    pair.run_until(Duration::from_secs(120), 1_000_000, |p| {
        while let Some(&len) = plan.get(next) {
            if len > p.a.send_buffer_available() {
                break;
            }
            match p.a.send_message(
                p.now,
                0,
                send_flags::UNRELIABLE,
                payload(0, next as u64, len),
            ) {
                Ok(num) => {
                    by_num.insert(num, next);
                    next += 1;
                }
                Err(SendError::LimitExceeded) => break,
                Err(e) => panic!("send failed: {e}"),
            }
        }
        next == plan.len() && p.a.status(p.now).pending_unreliable == 0 && p.net.in_flight() == 0
    });
    let mut delivered = std::collections::HashSet::new();
    for m in &pair.got[1] {
        assert!(!m.reliable);
        assert!(
            delivered.insert(m.msg_num),
            "message {} duplicated",
            m.msg_num
        );
        let idx = by_num[&m.msg_num];
        assert_eq!(
            m.data,
            payload(0, idx as u64, plan[idx]),
            "message {idx} altered"
        );
    }
    (delivered.len(), plan.len())
}

#[test]
fn unreliable_messages_are_all_delivered_intact_without_loss() {
    let clean = LinkConditions {
        jitter: Duration::from_millis(1),
        ..LinkConditions::with_delay(Duration::from_millis(5))
    };
    let (got, sent) = unreliable_scenario(clean, 11);
    assert_eq!(got, sent);
}

#[test]
fn unreliable_messages_are_never_duplicated_or_altered_under_20pct_loss() {
    let (got, sent) = unreliable_scenario(lossy(20.0), 12);
    assert!(got < sent && got > sent / 2, "{got} of {sent}");
}

#[test]
fn lane_weights_20_to_5_share_bandwidth_4_to_1() {
    let seed = seed_from_env(21);
    let _guard = SeedGuard::new(seed);
    let mut pair = Pair::new(
        seed,
        LinkConditions::with_delay(Duration::from_millis(2)),
        fast_config(1_000_000),
    );
    pair.a.configure_lanes(&[0, 0], &[20, 5]).expect("lanes");
    let start = pair.now;
    let window = (start + Duration::from_millis(300))..(start + Duration::from_millis(1300));
    let mut bytes = [0u64; 2];
    let mut counted = 0usize;
    pair.run_until(Duration::from_secs(5), 1_000_000, |p| {
        let st = p.a.status(p.now);
        for lane in 0..2u8 {
            let mut pending = st.lanes[usize::from(lane)].pending_reliable;
            while pending < 32 * 1024 {
                p.a.send_message(p.now, lane, send_flags::RELIABLE, vec![lane; 1000])
                    .expect("buffer has room");
                pending += 1002;
            }
        }
        for m in &p.got[1][counted..] {
            if window.contains(&p.now) {
                bytes[usize::from(m.lane)] += m.data.len() as u64;
            }
        }
        counted = p.got[1].len();
        p.now >= window.end
    });
    let total = bytes[0] + bytes[1];
    assert!(total > 800_000, "link not saturated: {bytes:?}");
    let ratio = bytes[0] as f64 / bytes[1] as f64;
    assert!(
        bytes[1] > 0 && (3.6..=4.4).contains(&ratio),
        "{bytes:?} ratio {ratio}"
    );
}

#[test]
fn strict_priority_starves_the_lower_lane_while_the_higher_has_data() {
    let seed = seed_from_env(22);
    let _guard = SeedGuard::new(seed);
    let mut pair = Pair::new(
        seed,
        LinkConditions::with_delay(Duration::from_millis(2)),
        fast_config(1_000_000),
    );
    pair.a.configure_lanes(&[1, 0], &[1, 1]).expect("lanes");
    for i in 0..100u64 {
        for lane in 0..2u8 {
            pair.a
                .send_message(pair.now, lane, send_flags::RELIABLE, payload(lane, i, 1000))
                .expect("queued");
        }
    }
    pair.a.flush(pair.now);
    pair.run_until(Duration::from_secs(10), 100_000, |p| p.got[1].len() == 200);
    let last_high = pair.got[1].iter().rposition(|m| m.lane == 1);
    let first_low = pair.got[1].iter().position(|m| m.lane == 0);
    assert!(
        last_high < first_low,
        "lane 0 (priority 1) sent before lane 1 drained"
    );
}

#[test]
fn reliable_traffic_flows_both_ways_under_30pct_loss() {
    let seed = seed_from_env(31);
    let _guard = SeedGuard::new(seed);
    let mut pair = Pair::new(seed, lossy(30.0), fast_config(10_000_000));
    let mut rng = Rng(seed);
    let plan: Vec<usize> = (0..2_000).map(|_| 1 + rng.below(3_000) as usize).collect();
    let mut next = [0usize; 2];
    pair.run_until(Duration::from_secs(60), 500_000, |p| {
        for (side, next) in next.iter_mut().enumerate() {
            let snp = if side == 0 { &mut p.a } else { &mut p.b };
            while let Some(&len) = plan.get(*next) {
                if len > snp.send_buffer_available() {
                    break;
                }
                let data = payload(side as u8, *next as u64, len);
                snp.send_message(p.now, 0, send_flags::RELIABLE, data)
                    .expect("room checked");
                *next += 1;
            }
        }
        p.got[0].len() == plan.len()
            && p.got[1].len() == plan.len()
            && !p.a.reliable_pending()
            && !p.b.reliable_pending()
    });
    for (receiver, sender) in [(1usize, 0u8), (0, 1)] {
        for (i, m) in pair.got[receiver].iter().enumerate() {
            assert_eq!(m.msg_num, i as u64 + 1);
            assert_eq!(m.data, payload(sender, i as u64, plan[i]));
        }
    }
    assert!(pair.a.ping().smoothed().is_some() && pair.b.ping().smoothed().is_some());
}

/// Time from `send_message` to delivery of one small message on an idle 1 ms link.
fn one_message_latency(flags: u32) -> Duration {
    let mut pair = Pair::new(
        seed_from_env(41),
        LinkConditions::with_delay(Duration::from_millis(1)),
        fast_config(1_000_000),
    );
    let t0 = pair.now;
    pair.a
        .send_message(t0, 0, flags, b"ping".to_vec())
        .expect("queued");
    pair.run_until(Duration::from_secs(1), 10_000, |p| !p.got[1].is_empty());
    pair.got_at[1][0].saturating_since(t0)
}

#[test]
fn nagle_delays_a_small_message_by_5ms_unless_no_nagle() {
    let nagle = one_message_latency(send_flags::UNRELIABLE);
    let immediate = one_message_latency(send_flags::NO_NAGLE);
    assert!(
        (Duration::from_millis(6)..=Duration::from_micros(6_100)).contains(&nagle),
        "{nagle:?}"
    );
    assert!(immediate <= Duration::from_micros(1_100), "{immediate:?}");
}

/// An idle connection gives its congestion state back (issue 16) and restarts from the initial
/// window, as TCP does after idle (RFC 5681 §4.1); the RTT estimate and the counters stay, and
/// data flows again.
#[test]
fn an_idle_connection_restarts_from_the_initial_window() {
    let seed = seed_from_env(51);
    let _guard = SeedGuard::new(seed);
    let config = crate::proto::snp::SnpConfig {
        send_rate_min: 64 * 1024,
        send_rate_max: 100_000_000,
        ..crate::proto::snp::SnpConfig::default()
    };
    let initial =
        crate::proto::congestion::Cubic::new(crate::wire::packet::MAX_UDP_PAYLOAD).window();
    let mut pair = Pair::new(seed, lossy(2.0), config);
    let send = |p: &mut Pair, n: u64| {
        for i in 0..n {
            p.a.send_message(p.now, 0, send_flags::RELIABLE, payload(0, i, 1000))
                .expect("room");
        }
    };
    send(&mut pair, 200);
    pair.run_until(Duration::from_secs(30), 500_000, |p| {
        p.got[1].len() == 200 && !p.a.reliable_pending() && p.a.bytes_in_flight() == 0
    });
    assert!(pair.a.recovery.has_flight());
    assert_ne!(pair.a.congestion_window(), initial, "the window moved");
    let (srtt, counters) = (pair.a.rtt().smoothed(), *pair.a.recovery_counters());

    pair.now = pair.now + Duration::from_secs(1);
    let now = pair.now;
    pair.a.release_idle_memory(now);
    assert!(!pair.a.recovery.has_flight(), "congestion state given back");
    assert_eq!(
        pair.a.congestion_window(),
        initial.max(64 * 1024 * srtt.unwrap().as_micros() as u64 / 1_000_000)
    );
    assert_eq!(pair.a.rtt().smoothed(), srtt);
    assert_eq!(*pair.a.recovery_counters(), counters);

    send(&mut pair, 100);
    pair.run_until(Duration::from_secs(30), 500_000, |p| {
        p.got[1].len() == 300 && !p.a.reliable_pending()
    });
    assert!(pair.a.recovery_counters().packets_lost >= counters.packets_lost);
}
