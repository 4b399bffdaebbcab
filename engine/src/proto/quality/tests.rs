use std::time::Duration;

use super::*;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_micros(ms * 1000)
}

fn counts(recv: u64, dropped: u64, weird: u64, sent: u64) -> Counts {
    Counts {
        recv,
        dropped,
        weird,
        sent,
    }
}

fn inputs() -> Inputs {
    Inputs {
        rates: Rates {
            out_packets_per_sec: 12.5,
            out_bytes_per_sec: 9000.0,
            in_packets_per_sec: 20.0,
            in_bytes_per_sec: 15000.4,
        },
        ping_ms: 42,
        counters: SnpCounters {
            packets_sent: 700,
            bytes_sent: 1_000_000,
            packets_recv: 650,
            bytes_recv: 2_047,
            duplicates: 2,
            ..SnpCounters::default()
        },
        out_of_order: 3,
    }
}

#[test]
fn local_quality_is_unknown_until_an_interval_closes_with_traffic() {
    let mut q = Quality::new(at(0), Counts::default());
    assert_eq!(q.local(), -1.0);
    q.roll(at(4_999), counts(100, 10, 5, 100), false);
    assert_eq!(q.local(), -1.0, "the interval has not run its 5 s");
    q.roll(at(5_000), counts(100, 10, 5, 100), false);
    // 100 received, 10 dropped: 110 sent; 5 of the received were weird.
    let expect = 1.0 - 10.0 / 110.0 - 5.0 / 110.0;
    assert!((q.local() - expect).abs() < 1e-6, "{}", q.local());
    // The next interval receives nothing: unknown again (GNS reports -1).
    q.roll(at(10_000), counts(100, 10, 5, 150), false);
    assert_eq!(q.local(), -1.0);
}

#[test]
fn intervals_fill_the_quality_histogram() {
    let mut q = Quality::new(at(0), Counts::default());
    // Perfect interval.
    q.roll(at(5_000), counts(50, 0, 0, 50), false);
    // 96 good of 100 sent (2 dropped, 2 weird of 98 received): 95 bucket.
    q.roll(at(10_000), counts(148, 2, 2, 100), false);
    // Too few packets for a sample.
    q.roll(at(15_000), counts(151, 2, 2, 150), false);
    // Nothing received while sending and timing out: dead.
    q.roll(at(20_000), counts(151, 2, 2, 200), true);
    let l = q.lifetime(at(20_000), counts(151, 2, 2, 200), &inputs());
    assert_eq!(l.quality_histogram_100, Some(1));
    assert_eq!(l.quality_histogram_95, Some(1));
    assert_eq!(l.quality_histogram_dead, Some(1));
    assert_eq!(l.quality_histogram_99, Some(0));
    assert_eq!(l.connected_seconds, Some(20));
    assert_eq!(l.packets_recv_sequenced, Some(151));
    assert_eq!(l.packets_recv_dropped, Some(2));
    assert_eq!(l.kb_sent, Some(977), "rounded to the nearest KiB, as GNS");
    assert_eq!(l.kb_recv, Some(2));
}

#[test]
fn histogram_buckets_follow_gns_thresholds() {
    assert_eq!(bucket(100, 0, 0), 0);
    assert_eq!(bucket(1000, 1, 0), 1, "99.9 % caps at the 99 bucket");
    assert_eq!(bucket(100, 2, 0), 2, "98 %");
    assert_eq!(bucket(100, 4, 0), 3, "96 %");
    assert_eq!(bucket(100, 10, 0), 4, "90 %");
    assert_eq!(bucket(100, 30, 0), 5, "76 %");
    assert_eq!(bucket(100, 100, 0), 6, "50 %");
    assert_eq!(bucket(10, 100, 0), 7, "9 %");
    assert_eq!(bucket(10, 0, 10), 7, "all weird");
}

#[test]
fn reports_wait_20_s_ride_along_until_30_s_then_fall_due() {
    let mut q = Quality::new(at(0), Counts::default());
    let busy = counts(1000, 0, 0, 1000);
    assert!(q.need(at(19_999), busy).is_empty());
    let ready = q.need(at(20_000), busy);
    assert!(!ready.is_empty() && !ready.is_due() && ready.instant() && !ready.lifetime());
    let due = q.need(at(30_000), busy);
    assert!(due.is_due() && due.instant());
    assert_eq!(q.next_due(), Some(at(30_000)));
}

#[test]
fn a_quiet_link_reports_nothing_and_sets_no_timer() {
    let mut q = Quality::new(at(0), Counts::default());
    // Three keepalives each way in 30 s: under one packet per 3 s.
    let quiet = counts(3, 0, 0, 3);
    assert_eq!(q.next_due(), Some(at(30_000)));
    assert!(q.need(at(30_000), quiet).is_empty());
    assert_eq!(q.next_due(), Some(at(60_000)), "the clock restarted");
    // The clock restarted: the next chance is 20 s from now, with traffic then.
    assert!(q.need(at(45_000), counts(100, 0, 0, 100)).is_empty());
    assert!(!q.need(at(50_000), counts(100, 0, 0, 100)).is_empty());
}

#[test]
fn an_acked_report_restarts_the_clock_and_a_lost_one_is_sent_again() {
    let mut q = Quality::new(at(0), Counts::default());
    let busy = counts(1000, 0, 0, 1000);
    let need = q.need(at(21_000), busy);
    q.on_sent(need);
    assert!(
        q.need(at(22_000), busy).is_empty(),
        "one report in flight at a time"
    );
    assert_eq!(q.next_due(), None);
    q.on_fate(at(22_000), false, busy);
    assert!(!q.need(at(22_500), busy).is_empty(), "lost: ready again");
    let need = q.need(at(23_000), busy);
    q.on_sent(need);
    q.on_fate(at(23_100), true, busy);
    let more = counts(2000, 0, 0, 2000);
    assert!(q.need(at(43_000), more).is_empty(), "acked at 23.1 s");
    assert!(!q.need(at(43_100), more).is_empty());
}

#[test]
fn lifetime_stats_ride_along_after_120_s_and_100_packets() {
    let mut q = Quality::new(at(0), Counts::default());
    let mut c = counts(0, 0, 0, 0);
    // Instantaneous reports acked every 25 s, as on a busy link.
    let mut t = 0;
    let mut lifetime_at = None;
    while t <= 200_000 {
        c.recv += 500;
        c.sent += 500;
        let need = q.need(at(t), c);
        if need.lifetime() {
            assert!(
                !need.is_due(),
                "GNS measures lifetime's due time from the instant ack"
            );
            lifetime_at.get_or_insert(t);
        }
        if !need.is_empty() {
            q.on_sent(need);
            q.on_fate(at(t + 50), true, c);
        }
        t += 5_000;
    }
    assert_eq!(lifetime_at, Some(120_000));
}

#[test]
fn a_report_carries_gns_units() {
    let mut q = Quality::new(at(0), Counts::default());
    q.roll(at(5_000), counts(97, 3, 1, 100), false);
    let need = q.need(at(30_000), counts(1000, 3, 1, 1000));
    let r = q.report(need, at(30_000), counts(1000, 3, 1, 1000), &inputs());
    let i = r.instantaneous.expect("instantaneous stats");
    assert_eq!(i.out_packets_per_sec_x10, Some(125));
    assert_eq!(i.in_packets_per_sec_x10, Some(200));
    assert_eq!(i.in_bytes_per_sec, Some(15000));
    assert_eq!(i.ping_ms, Some(42));
    assert_eq!(i.packets_dropped_pct, Some(3), "3 of 100");
    assert_eq!(i.packets_weird_sequence_pct, Some(1));
    assert_eq!(i.peak_jitter_usec, None);
    assert!(r.lifetime.is_none());

    let fresh = Quality::new(at(0), Counts::default());
    let x = Inputs {
        ping_ms: -1,
        ..inputs()
    };
    let i = fresh
        .report(Need(Need::INSTANT_DUE), at(1), Counts::default(), &x)
        .instantaneous
        .unwrap();
    assert_eq!(
        (
            i.ping_ms,
            i.packets_dropped_pct,
            i.packets_weird_sequence_pct
        ),
        (None, None, None),
        "unknowns are left out, as GNS"
    );
}

#[test]
fn remote_quality_comes_from_the_peers_last_instantaneous_report() {
    let mut q = Quality::new(at(0), Counts::default());
    assert_eq!(q.remote(), -1.0);
    q.receive(
        at(1_000),
        ConnectionQuality {
            instantaneous: Some(LinkInstantaneousStats {
                packets_dropped_pct: Some(3),
                packets_weird_sequence_pct: Some(1),
                ..Default::default()
            }),
            lifetime: None,
        },
    );
    assert!((q.remote() - 0.96).abs() < 1e-6, "{}", q.remote());
    // A lifetime-only report keeps the last instantaneous one.
    q.receive(
        at(2_000),
        ConnectionQuality {
            instantaneous: None,
            lifetime: Some(LinkLifetimeStats {
                packets_sent: Some(5),
                ..Default::default()
            }),
        },
    );
    assert!((q.remote() - 0.96).abs() < 1e-6);
    let r = q.remote_stats().unwrap();
    assert_eq!(r.lifetime.as_ref().unwrap().1, at(2_000));
    // A report without loss figures (the peer received nothing): unknown.
    q.receive(
        at(3_000),
        ConnectionQuality {
            instantaneous: Some(LinkInstantaneousStats::default()),
            lifetime: None,
        },
    );
    assert_eq!(q.remote(), -1.0);
    let _ = Duration::ZERO;
}

#[test]
fn a_report_is_trimmed_to_its_room() {
    let q = Quality::new(at(0), Counts::default());
    let huge = Inputs {
        counters: SnpCounters {
            packets_sent: u64::MAX,
            bytes_sent: u64::MAX / 2,
            packets_recv: u64::MAX,
            bytes_recv: u64::MAX / 2,
            duplicates: u64::MAX,
            ..SnpCounters::default()
        },
        out_of_order: u64::MAX,
        ..inputs()
    };
    let c = counts(u64::MAX, u64::MAX, 0, u64::MAX);
    let both = Need(Need::INSTANT_DUE | Need::LIFETIME_READY);
    let (full, need) = q.blob(both, at(1), c, &huge, false, 1000).unwrap();
    assert_eq!(need, both);
    let decoded = <UdpStats as prost::Message>::decode(&full[..]).unwrap();
    let stats = decoded.stats.unwrap();
    assert!(stats.lifetime.is_some() && stats.instantaneous.is_some());
    assert_eq!(decoded.flags, None, "a report implies ACK_REQUEST_E2E");
    // Room for the instantaneous stats only: lifetime is left out.
    let (small, need) = q.blob(both, at(1), c, &huge, true, 60).unwrap();
    assert!(small.len() <= 60 && small.len() < full.len());
    assert_eq!(need, Need(Need::INSTANT_DUE));
    let decoded = <UdpStats as prost::Message>::decode(&small[..]).unwrap();
    assert!(decoded.stats.unwrap().lifetime.is_none());
    assert_eq!(
        decoded.flags,
        Some(UdpStats::ACK_REQUEST_E2E | UdpStats::ACK_REQUEST_IMMEDIATE)
    );
    // No room at all: nothing.
    assert!(q.blob(both, at(1), c, &huge, false, 4).is_none());
}
