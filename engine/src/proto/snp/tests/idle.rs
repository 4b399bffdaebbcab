//! What an idle connection gives back (issue 16), and that nothing it gives back changes
//! what the peer sees afterwards.

use std::time::Duration;

use super::harness::{Pair, fast_config, payload};
use crate::proto::snp::send_flags;
use crate::testing::{LinkConditions, SeedGuard, seed_from_env};

/// The default lane parks once everything sent is acked: message numbers and reliable stream
/// positions continue where they were when the next message comes, in both kinds of message,
/// and the status still shows the one lane.
#[test]
fn a_parked_lane_keeps_its_numbering() {
    let seed = seed_from_env(61);
    let _guard = SeedGuard::new(seed);
    let link = LinkConditions {
        delay: Duration::from_millis(5),
        ..LinkConditions::default()
    };
    let mut pair = Pair::new(seed, link, fast_config(10_000_000));
    let send = |p: &mut Pair, from: u64, n: u64| {
        for i in from..from + n {
            let flags = if i % 3 == 0 {
                send_flags::UNRELIABLE
            } else {
                send_flags::RELIABLE
            };
            let num =
                p.a.send_message(p.now, 0, flags, payload(0, i, 300 + (i as usize % 7) * 500))
                    .expect("room");
            assert_eq!(num, i + 1, "lane message numbers run on from 1");
        }
    };
    send(&mut pair, 0, 30);
    pair.run_until(Duration::from_secs(10), 100_000, |p| {
        p.got[1].len() == 30 && !p.a.reliable_pending() && p.a.bytes_in_flight() == 0
    });
    assert!(!pair.a.send.is_parked());

    pair.now = pair.now + Duration::from_secs(5);
    let now = pair.now;
    pair.a.release_idle_memory(now);
    assert!(pair.a.send.is_parked(), "an idle default lane parks");
    assert_eq!(pair.a.lane_count(), 1);
    let status = pair.a.status(now);
    assert_eq!(status.lanes.len(), 1);
    assert_eq!(status.lanes[0].pending_reliable, 0);

    send(&mut pair, 30, 30);
    assert!(!pair.a.send.is_parked(), "a send brings the lane back");
    pair.run_until(Duration::from_secs(10), 100_000, |p| {
        p.got[1].len() == 60 && !p.a.reliable_pending()
    });
    for (i, m) in pair.got[1].iter().enumerate() {
        assert_eq!(m.msg_num, i as u64 + 1);
        assert_eq!(
            m.data,
            payload(0, i as u64, m.data.len()),
            "message {i} intact"
        );
    }
}

/// A connection with lanes configured never parks them (the parked form is the default lane's).
#[test]
fn configured_lanes_do_not_park() {
    let seed = seed_from_env(62);
    let _guard = SeedGuard::new(seed);
    let mut pair = Pair::new(seed, LinkConditions::default(), fast_config(10_000_000));
    pair.a.configure_lanes(&[0, 1], &[1, 1]).expect("two lanes");
    pair.now = pair.now + Duration::from_secs(5);
    let now = pair.now;
    pair.a.release_idle_memory(now);
    assert!(!pair.a.send.is_parked());
    assert_eq!(pair.a.lane_count(), 2);
}
