//! Loss recovery and congestion control end to end, on the simulated network: what the window
//! needs from the peer's acks, and what a receiver owes a sender whatever its own pacing.

use std::time::Duration;

use crate::proto::connection::ConnectionConfig;
use crate::proto::endpoint::EndpointConfig;
use crate::proto::snp::{SnpConfig, send_flags};
use crate::testing::{LinkConditions, Pair, SeedGuard, seed_from_env};

const STEPS: u64 = 2_000_000;

fn with_snp(snp: SnpConfig) -> EndpointConfig {
    EndpointConfig {
        connection: ConnectionConfig {
            snp,
            ..ConnectionConfig::default()
        },
        ..EndpointConfig::default()
    }
}

/// A sender under congestion control (min 256 KiB/s, max 100 MB/s).
fn controlled() -> SnpConfig {
    SnpConfig {
        send_rate_max: 100_000_000,
        nagle: Duration::ZERO,
        ..SnpConfig::default()
    }
}

#[test]
fn a_window_of_unreliable_data_to_a_silent_peer_does_not_stall() {
    // The receiver sends nothing back, and (as GNS) acks unreliable-only packets only when
    // asked: the sender must ask, or its window fills and waits for a 10 s keepalive.
    let seed = seed_from_env(21);
    let _guard = SeedGuard::new(seed);
    let link = LinkConditions {
        rate_bytes_per_sec: Some(4_000_000),
        ..LinkConditions::with_delay(Duration::from_millis(5))
    };
    let mut p = Pair::new(
        seed,
        link,
        EndpointConfig::default(),
        with_snp(controlled()),
    );
    let (c, s) = p.connect(Duration::from_secs(10)).expect("connects");
    let n = 400;
    for i in 0..n {
        p.client
            .send_message(p.now, c, 0, send_flags::NO_NAGLE, vec![i as u8; 1000])
            .expect("fits the send buffer");
    }
    let mut got = 0;
    let start = p.now;
    // 400 kB at 4 MB/s is 0.1 s; allow 10x for slow start, far below a keepalive.
    let limit = p.now + Duration::from_secs(1);
    let done = p.run_until(limit, STEPS, |p| {
        got += std::iter::from_fn(|| p.server.poll_message(s)).count();
        got == n
    });
    let snp = p.client.connection(c).expect("open").snp();
    assert!(
        done,
        "{got} of {n} delivered in {:?}; window {} B, in flight {} B",
        p.now.saturating_since(start),
        snp.congestion_window(),
        snp.bytes_in_flight()
    );
    assert!(!snp.fixed_rate());
}

#[test]
fn acks_are_not_held_back_by_the_receivers_own_pacing() {
    // The server is paced at a fixed 4 KiB/s and has a backlog (one 1.2 kB packet every
    // ~300 ms). The client's reliable data must still be acked within the ack delay: an ack
    // waiting for the server's pacing would arrive after the client's retransmission timeout
    // (~75 ms here), which would then resend data that had arrived (a GNS sender does the
    // same, on every tick).
    let seed = seed_from_env(22);
    let _guard = SeedGuard::new(seed);
    let slow = SnpConfig {
        send_rate_min: 4096,
        send_rate_max: 4096,
        nagle: Duration::ZERO,
        ..SnpConfig::default()
    };
    let mut p = Pair::new(
        seed,
        LinkConditions::with_delay(Duration::from_millis(5)),
        with_snp(slow),
        with_snp(controlled()),
    );
    let (c, s) = p.connect(Duration::from_secs(10)).expect("connects");
    p.server
        .send_message(p.now, s, 0, send_flags::RELIABLE, vec![7; 200_000])
        .expect("queued");
    let mut got = 0;
    for _ in 0..100 {
        p.client
            .send_message(p.now, c, 0, send_flags::RELIABLE, vec![1; 500])
            .expect("queued");
        let next = p.now + Duration::from_millis(20);
        p.run_until(next, STEPS, |p| {
            got += std::iter::from_fn(|| p.server.poll_message(s)).count();
            false
        });
    }
    let snp = p.client.connection(c).expect("open").snp();
    let rc = *snp.recovery_counters();
    assert_eq!(got, 100);
    assert_eq!(
        (rc.rto_expiries, rc.packets_lost, rc.spurious_losses),
        (0, 0, 0),
        "client srtt {:?}",
        snp.rtt().smoothed()
    );
    assert_eq!(snp.counters().retransmitted_segments, 0);
    assert!(p.server.connection(s).expect("open").snp().fixed_rate());
}
