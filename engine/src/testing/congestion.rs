//! Congestion scenarios: many connections from one server share a bottleneck at ten times
//! overload (see [`super::Many`]). They judge the send-rate controller: goodput, fairness,
//! a late joiner's share, and that overload never costs reliable data.
//!
//! The path is a game server's: 20 ms RTT, a 16 MB/s bottleneck with a drop-tail queue of one
//! bandwidth-delay product (320 kB), 64 connections each with a 1 KiB-message bulk stream.
//! The fair share is 250 kB/s per connection; offered load is `connections x send_rate_max`
//! = 10 x the bottleneck. The controlled runs let the rate float between 64 KiB/s (a floor
//! a quarter of the fair share) and that maximum; the fixed run pins min = max (GNS).
//!
//! Each run prints its figures (`cargo test congestion -- --nocapture`); the ignored
//! `congestion_figures_sweep` prints a wider table for tuning.

use std::time::Duration;

use super::{Goodput, Many, ManyConfig, ManyCounters, SeedGuard, seed_from_env};

const RTT: Duration = Duration::from_millis(20);
const LINK: u64 = 16_000_000;
const CONNECTIONS: usize = 64;
const FLOOR: u32 = 64 * 1024;
const OVERLOAD: u64 = 10;
/// Controlled runs settle for this long before goodput is measured.
const WARM_UP: Duration = Duration::from_secs(2);
/// Goodput is measured over this long.
const MEASURE: Duration = Duration::from_secs(2);
/// After the measurement, queued data must be acked and delivered within this.
const DRAIN: Duration = Duration::from_secs(20);

/// The per-connection maximum that makes `connections` offer `OVERLOAD` x the link.
fn overload_max(connections: usize) -> u32 {
    u32::try_from(LINK * OVERLOAD / connections as u64).expect("fits")
}

fn config(connections: usize, min: u32, max: u32) -> ManyConfig {
    ManyConfig::game_server(connections, RTT, LINK, min, max)
}

/// What one run measured.
#[derive(Debug)]
struct Figures {
    goodput: Goodput,
    counters: ManyCounters,
    unfinished: Vec<usize>,
    /// Virtual time the drain took.
    drained_in: Duration,
    not_connected: Vec<usize>,
    errors: Vec<String>,
}

impl Figures {
    fn print(&self, label: &str) {
        let g = &self.goodput;
        let c = &self.counters;
        let (lo, hi) = g
            .per_connection
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        eprintln!(
            "[{label}] goodput {:.1} % of link over {:?}, Jain {:.3}, per-connection \
             {:.0}..{:.0} B/s; reliable errors {}, drained in {:?} (unfinished {}), not connected {}; \
             packets sent {}, retransmitted segments {}, RTO expiries {}; bottleneck enqueued {} \
             dropped {} ({:.1} %), max backlog {} B",
            g.link_fraction * 100.0,
            g.interval,
            g.jain,
            lo,
            hi,
            c.reliable_errors,
            self.drained_in,
            self.unfinished.len(),
            self.not_connected.len(),
            c.packets_sent,
            c.retransmitted_segments,
            c.packets_timed_out,
            c.bottleneck.enqueued,
            c.bottleneck.dropped,
            100.0 * c.bottleneck.dropped as f64
                / (c.bottleneck.enqueued + c.bottleneck.dropped).max(1) as f64,
            c.bottleneck.max_backlog_bytes,
        );
    }

    fn assert_no_reliable_loss(&self) {
        assert!(self.errors.is_empty(), "reliable errors: {:?}", self.errors);
        assert_eq!(self.not_connected, Vec::<usize>::new(), "connections lost");
        assert_eq!(
            self.unfinished,
            Vec::<usize>::new(),
            "connections with reliable data unacked or undelivered after {DRAIN:?} of drain"
        );
        assert_eq!(
            self.counters.messages_sent,
            self.counters.messages_delivered
        );
    }
}

/// Runs `config` from `seed`: `warm_up`, then goodput over `interval`, then a drain. Prints
/// the figures under `label`.
fn measure(
    label: &str,
    seed: u64,
    config: ManyConfig,
    warm_up: Duration,
    interval: Duration,
) -> Figures {
    let mut many = Many::new(seed, config);
    many.run_for(warm_up);
    let start = many.snapshot();
    many.run_for(interval);
    let goodput = many.goodput_since(&start);
    let not_connected = many.not_connected();
    let drain_start = many.now;
    let unfinished = many.drain(DRAIN);
    let figures = Figures {
        goodput,
        counters: many.counters(),
        unfinished,
        drained_in: many.now.saturating_since(drain_start),
        not_connected,
        errors: many.reliable_errors().to_vec(),
    };
    figures.print(label);
    figures
}

#[test]
fn sixty_four_connections_share_a_ten_times_overloaded_bottleneck() {
    let seed = seed_from_env(0xc0_6e57);
    let _guard = SeedGuard::new(seed);
    let f = measure(
        "64 controlled",
        seed,
        config(CONNECTIONS, FLOOR, overload_max(CONNECTIONS)),
        WARM_UP,
        MEASURE,
    );
    f.assert_no_reliable_loss();
    assert!(
        f.goodput.link_fraction >= 0.85,
        "goodput {:.3} of the link",
        f.goodput.link_fraction
    );
    assert!(f.goodput.jain >= 0.9, "Jain index {:.3}", f.goodput.jain);
}

/// The yardstick: paced at 0.9 x the fair share (GNS's fixed rate, no overload), the harness
/// loses nothing at the bottleneck and reaches the goodput the first scenario asks of the
/// controller (the ~3 % between link and payload bytes is packet overhead).
#[test]
fn below_capacity_the_harness_reaches_the_goodput_target() {
    let seed = seed_from_env(0xba5e);
    let _guard = SeedGuard::new(seed);
    let rate = u32::try_from(LINK * 9 / 10 / CONNECTIONS as u64).expect("fits");
    let f = measure(
        "64 fixed 0.9x fair share",
        seed,
        config(CONNECTIONS, rate, rate),
        Duration::from_millis(500),
        Duration::from_secs(1),
    );
    f.assert_no_reliable_loss();
    assert_eq!(f.counters.bottleneck.dropped, 0);
    assert!(f.goodput.link_fraction >= 0.85, "{:?}", f.goodput);
    assert!(f.goodput.jain >= 0.99, "{:?}", f.goodput);
}

/// A connection joining a converged bottleneck: its goodput over a 500 ms window starting ten
/// base RTTs (200 ms) after it reports Connected must reach half the fair share
/// (link / connections). Its handshake crosses the congested queue too, so the window is
/// anchored on Connected, not on the join.
#[test]
fn a_late_connection_gets_its_fair_share_within_a_few_rtts() {
    let seed = seed_from_env(0x1a7e);
    let _guard = SeedGuard::new(seed);
    let mut many = Many::new(
        seed,
        config(CONNECTIONS - 1, FLOOR, overload_max(CONNECTIONS)),
    );
    many.run_for(WARM_UP);
    let late = many.add_connection();
    let joined = many.now;
    let deadline = joined + Duration::from_secs(5);
    while many.clients[late].connected_at.is_none() && many.now < deadline {
        many.run_for(RTT / 4);
    }
    let connected = many.clients[late]
        .connected_at
        .unwrap_or_else(|| panic!("late connection not connected 5 s after joining"));
    many.run_until(connected + RTT * 10);
    let start = many.snapshot();
    many.run_for(Duration::from_millis(500));
    let g = many.goodput_since(&start);
    let fair = LINK as f64 / CONNECTIONS as f64;
    let share = g.per_connection[late] / fair;
    let others =
        (g.per_connection.iter().sum::<f64>() - g.per_connection[late]) / (CONNECTIONS - 1) as f64;
    eprintln!(
        "[late joiner] connected {:?} after joining; over {:?} from 10 RTTs later it got \
         {:.0} B/s = {:.1} % of the fair share {fair:.0} B/s (others average {others:.0} B/s); \
         link goodput {:.1} %, Jain {:.3}",
        connected.saturating_since(joined),
        g.interval,
        g.per_connection[late],
        share * 100.0,
        g.link_fraction * 100.0,
        g.jain,
    );
    // Full delivery after a drain is the first scenario's business; here only order and
    // integrity of what arrived.
    assert!(
        many.reliable_errors().is_empty(),
        "{:?}",
        many.reliable_errors()
    );
    assert!(
        share >= 0.5,
        "late connection got {:.1} % of its fair share",
        share * 100.0
    );
}

/// GNS's semantics, min == max: no controller, every connection paced at 10 x its fair share.
/// Goodput is printed, not asserted; reliable data must still all arrive. Without a controller
/// the bottleneck collapses (a few % goodput), so the run is kept short.
#[test]
fn fixed_rate_at_ten_times_overload_loses_no_reliable_data() {
    let seed = seed_from_env(0xf1_7ed);
    let _guard = SeedGuard::new(seed);
    let rate = overload_max(CONNECTIONS);
    let f = measure(
        "64 fixed rate",
        seed,
        config(CONNECTIONS, rate, rate),
        Duration::from_millis(500),
        Duration::from_secs(1),
    );
    f.assert_no_reliable_loss();
}

/// A wider table for tuning, 64 connections at several offered loads:
/// `cargo test congestion_figures_sweep -- --ignored --nocapture`. "fixed 0.9x" (no overload)
/// is the reference: about 87 % goodput, the rest is packet overhead and 10 % headroom.
/// Without a controller the "max 100 MB/s" run takes minutes (tens of millions of packets).
#[test]
#[ignore = "prints figures for tuning; slow"]
fn congestion_figures_sweep() {
    let seed = seed_from_env(0x5eed);
    let _guard = SeedGuard::new(seed);
    let max = overload_max(CONNECTIONS);
    let fair = u32::try_from(LINK / CONNECTIONS as u64).expect("fits");
    let runs = [
        ("fixed 0.9x", fair * 9 / 10, fair * 9 / 10),
        ("fixed 1.5x", fair * 3 / 2, fair * 3 / 2),
        ("fixed 10x", max, max),
        ("controlled, max 10x", FLOOR, max),
        ("controlled, max 100 MB/s", FLOOR, 100_000_000),
    ];
    for (name, min, max) in runs {
        let label = format!("{CONNECTIONS} conns, {name}");
        let config = config(CONNECTIONS, min, max);
        measure(&label, seed, config, WARM_UP, MEASURE);
    }
}
