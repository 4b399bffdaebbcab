//! End-to-end stats reports on the simulated network (spec §4.13, §5.5): each side's receive
//! quality reaches the other as its remote quality, quiet links report nothing, and a lost
//! report is sent again.

use std::time::Duration;

use crate::proto::endpoint::{ConnectionId, EndpointConfig};
use crate::proto::snp::send_flags;
use crate::testing::{LinkConditions, Pair, SeedGuard, seed_from_env};

const STEPS: u64 = 5_000_000;

/// Both sides send an unreliable message every 20 ms for `d` (the server echoes).
fn chatter(p: &mut Pair, c: ConnectionId, s: ConnectionId, d: Duration) {
    let end = p.now + d;
    while p.now < end {
        let _ = p
            .client
            .send_message(p.now, c, 0, send_flags::NO_NAGLE, vec![7; 200]);
        p.run_for(Duration::from_millis(20), STEPS);
        while let Some(m) = p.server.poll_message(s) {
            let _ = p
                .server
                .send_message(p.now, s, 0, send_flags::NO_NAGLE, m.data.to_vec());
        }
        while p.client.poll_message(c).is_some() {}
    }
}

fn quality(p: &mut Pair, side_client: bool, id: ConnectionId) -> (f32, f32) {
    let ep = if side_client {
        &mut p.client
    } else {
        &mut p.server
    };
    let now = p.now;
    let st = ep.connection_mut(id).expect("open").status(now);
    (st.quality_local, st.quality_remote)
}

/// A connected pair on `link`, seeded from `seed` (or SIM_SEED).
fn connected(seed: u64, link: LinkConditions) -> (Pair, ConnectionId, ConnectionId, SeedGuard) {
    connected_with(seed, link, EndpointConfig::default())
}

/// [`connected`] with both ends configured as `config`.
fn connected_with(
    seed: u64,
    link: LinkConditions,
    config: EndpointConfig,
) -> (Pair, ConnectionId, ConnectionId, SeedGuard) {
    let seed = seed_from_env(seed);
    let guard = SeedGuard::new(seed);
    let mut p = Pair::new(seed, link, config, config);
    let (c, s) = p.connect(Duration::from_secs(30)).expect("connects");
    (p, c, s, guard)
}

#[test]
fn each_sides_receive_quality_reaches_the_other_within_30_s() {
    let link = LinkConditions {
        loss_pct: 10.0,
        ..LinkConditions::with_delay(Duration::from_millis(10))
    };
    let (mut p, c, s, _guard) = connected(71, link);
    assert_eq!(quality(&mut p, true, c), (-1.0, -1.0), "nothing known yet");
    chatter(&mut p, c, s, Duration::from_secs(6));
    let (local, remote) = quality(&mut p, true, c);
    assert!((0.8..0.97).contains(&local), "client local {local}");
    assert_eq!(remote, -1.0, "no report before 20 s");
    chatter(&mut p, c, s, Duration::from_secs(30));
    for (client, id) in [(true, c), (false, s)] {
        let (local, remote) = quality(&mut p, client, id);
        assert!(
            (0.8..0.97).contains(&local),
            "local {local} (client {client})"
        );
        assert!(
            (0.8..0.97).contains(&remote),
            "remote {remote} (client {client})"
        );
    }
    let ep = &p.client;
    let r = ep.connection(c).unwrap().remote_stats().expect("a report");
    let (i, _) = r.instantaneous.as_ref().expect("instantaneous stats");
    assert!(i.ping_ms.is_some_and(|ms| (15..=40).contains(&ms)), "{i:?}");
    assert!(i.in_packets_per_sec_x10.is_some_and(|x| x > 0), "{i:?}");
    assert!(r.lifetime.is_none(), "lifetime stats wait 120 s");
}

#[test]
fn a_clean_link_reports_full_quality_and_lifetime_stats_follow() {
    let (mut p, c, s, _guard) = connected(72, LinkConditions::with_delay(Duration::from_millis(5)));
    chatter(&mut p, c, s, Duration::from_secs(150));
    assert_eq!(quality(&mut p, false, s), (1.0, 1.0));
    let r = p
        .server
        .connection(s)
        .unwrap()
        .remote_stats()
        .expect("a report");
    let (l, _) = r.lifetime.as_ref().expect("lifetime stats by 150 s");
    assert!(l.packets_sent.is_some_and(|n| n > 5_000), "{l:?}");
    assert!(l.quality_histogram_100.is_some_and(|n| n >= 20), "{l:?}");
    assert_eq!(l.packets_recv_dropped, Some(0));
}

#[test]
fn a_quiet_link_sends_no_reports_and_no_packets_for_them() {
    let (mut p, c, s, _guard) = connected(73, LinkConditions::with_delay(Duration::from_millis(5)));
    // Only keepalives for two minutes: nothing to report.
    let before = p.datagrams;
    p.run_for(Duration::from_secs(120), STEPS);
    assert!(p.server.connection(s).unwrap().remote_stats().is_none());
    assert!(p.client.connection(c).unwrap().remote_stats().is_none());
    let idle = p.datagrams - before;
    // A burst, then quiet again: its report rides on a keepalive (GNS: the interval had
    // traffic), and no packet goes out for a report alone.
    chatter(&mut p, c, s, Duration::from_secs(1));
    let before = p.datagrams;
    p.run_for(Duration::from_secs(120), STEPS);
    let after_burst = p.datagrams - before;
    assert!(
        after_burst <= idle + 2,
        "{after_burst} datagrams in 120 s after a burst, {idle} before it"
    );
}

#[test]
fn reports_fit_the_smallest_mtu() {
    // MTU_PacketSize 200 (its floor): a report must leave room for the packet's other content
    // and trim what does not fit, never make the header outgrow the packet.
    let mut config = EndpointConfig::default();
    config.connection.mtu_packet_size = 200;
    config.connection.snp.mtu_packet_size = 200;
    let link = LinkConditions::with_delay(Duration::from_millis(5));
    let (mut p, c, s, _guard) = connected_with(74, link.clone(), config);
    // Once connected (the handshake's messages are larger), the path takes 200 bytes at most.
    let small = LinkConditions { mtu: 200, ..link };
    let (a, b) = (p.client_addr, p.server_addr);
    p.net.set_link(a, b, small.clone());
    p.net.set_link(b, a, small);
    chatter(&mut p, c, s, Duration::from_secs(150));
    for (client, id) in [(true, c), (false, s)] {
        let (local, remote) = quality(&mut p, client, id);
        assert_eq!((local, remote), (1.0, 1.0), "client {client}");
    }
    let dropped = p.net.stats().too_big;
    assert_eq!(dropped, 0, "no datagram over the MTU");
}
