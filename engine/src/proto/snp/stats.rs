//! Statistics for `GetConnectionRealTimeStatus` (spec §5.5): counters, one-second rate
//! windows, queue-time predictions and a local quality estimate.
//!
//! Rates are reported from the last complete one-second window, so they are stable between
//! calls and need no clock of their own:
//!
//! ```text
//!  |-- window k-1 (reported) --|-- window k (accumulating) --|
//! ```

use std::time::Duration;

use super::Snp;
use crate::proto::lanes::LaneId;
use crate::time::Timestamp;
use crate::wire::packet::NO_FRAGMENT_SIZE;

const WINDOW: Duration = Duration::from_secs(1);

/// Lifetime counters of one connection's SNP layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnpCounters {
    /// Packets built.
    pub packets_sent: u64,
    /// Packets handed to `receive_packet` (including duplicates).
    pub packets_recv: u64,
    /// Plaintext + overhead bytes sent.
    pub bytes_sent: u64,
    /// Plaintext bytes received.
    pub bytes_recv: u64,
    /// Reliable segments sent again.
    pub retransmitted_segments: u64,
    /// Packets received twice (or below stop_waiting).
    pub duplicates: u64,
    /// RTO expiries that declared packets lost.
    pub packets_timed_out: u64,
    /// Messages handed out by `poll_message`.
    pub messages_received: u64,
    /// Unreliable messages dropped unsent after `SnpConfig::unreliable_max_age`.
    pub unreliable_expired: u64,
}

/// Per-lane part of the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneStatus {
    /// Unsent unreliable bytes.
    pub pending_unreliable: u64,
    /// Unsent plus queued-for-retry reliable bytes.
    pub pending_reliable: u64,
    /// Reliable bytes sent and not yet acked.
    pub sent_unacked_reliable: u64,
    /// Predicted time until the lane's last queued byte leaves, µs.
    pub queue_time_usec: i64,
}

/// A `SteamNetConnectionRealTimeStatus_t`-shaped snapshot of the SNP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct SnpStatus {
    /// Smoothed ping in ms, −1 unknown.
    pub ping_ms: i32,
    /// 1 − dropped − out-of-order share of the packets received in the last closed 5 s
    /// interval, −1 unknown (filled in by `Connection::status`; −1 from the message layer
    /// alone).
    pub quality_local: f32,
    /// The peer's view of the same, from its last stats report; −1 without one (filled in by
    /// `Connection::status`).
    pub quality_remote: f32,
    /// Packets per second received (last full second).
    pub in_packets_per_sec: f32,
    /// Bytes per second received.
    pub in_bytes_per_sec: f32,
    /// Packets per second sent.
    pub out_packets_per_sec: f32,
    /// Bytes per second sent.
    pub out_bytes_per_sec: f32,
    /// The clamped send rate.
    pub send_rate_bytes_per_sec: u32,
    /// Unsent unreliable bytes.
    pub pending_unreliable: u64,
    /// Unsent plus queued-for-retry reliable bytes.
    pub pending_reliable: u64,
    /// Reliable bytes in flight.
    pub sent_unacked_reliable: u64,
    /// Predicted queue time, µs (`i64::MAX` while not connected).
    pub queue_time_usec: i64,
    /// Per send lane.
    pub lanes: Vec<LaneStatus>,
    /// Lifetime counters.
    pub counters: SnpCounters,
}

/// One second's counts (u32, saturating: 4 GiB in a second is beyond one connection), two
/// per connection.
#[derive(Debug, Clone, Copy)]
struct RateWindow {
    start: Timestamp,
    packets: u32,
    bytes: u32,
    last_packets: u32,
    last_bytes: u32,
}

impl RateWindow {
    fn new(now: Timestamp) -> Self {
        RateWindow {
            start: now,
            packets: 0,
            bytes: 0,
            last_packets: 0,
            last_bytes: 0,
        }
    }

    fn roll(&mut self, now: Timestamp) {
        let elapsed = now.saturating_since(self.start);
        if elapsed < WINDOW {
            return;
        }
        if elapsed < WINDOW * 2 {
            self.last_packets = self.packets;
            self.last_bytes = self.bytes;
            self.start = self.start + WINDOW;
        } else {
            self.last_packets = 0;
            self.last_bytes = 0;
            self.start = now;
        }
        self.packets = 0;
        self.bytes = 0;
    }

    fn add(&mut self, now: Timestamp, bytes: usize) {
        self.roll(now);
        self.packets = self.packets.saturating_add(1);
        self.bytes = self
            .bytes
            .saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
    }
}

/// Packets and bytes per second each way, from the last complete one-second window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Packets received per second.
    pub in_packets_per_sec: f32,
    /// Bytes received per second.
    pub in_bytes_per_sec: f32,
    /// Packets sent per second.
    pub out_packets_per_sec: f32,
    /// Bytes sent per second.
    pub out_bytes_per_sec: f32,
}

/// Counters and rate windows.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub counters: SnpCounters,
    recv: RateWindow,
    sent: RateWindow,
}

impl Stats {
    pub(super) fn new(now: Timestamp) -> Self {
        Stats {
            counters: SnpCounters::default(),
            recv: RateWindow::new(now),
            sent: RateWindow::new(now),
        }
    }

    pub(super) fn on_recv(&mut self, now: Timestamp, bytes: usize) {
        self.counters.packets_recv += 1;
        self.counters.bytes_recv += bytes as u64;
        self.recv.add(now, bytes);
    }

    /// The rates of the last complete window each way (rolling the windows to `now`).
    pub(super) fn rates(&mut self, now: Timestamp) -> Rates {
        self.recv.roll(now);
        self.sent.roll(now);
        Rates {
            in_packets_per_sec: self.recv.last_packets as f32,
            in_bytes_per_sec: self.recv.last_bytes as f32,
            out_packets_per_sec: self.sent.last_packets as f32,
            out_bytes_per_sec: self.sent.last_bytes as f32,
        }
    }

    pub(super) fn on_sent(&mut self, now: Timestamp, bytes: usize) {
        self.counters.packets_sent += 1;
        self.counters.bytes_sent += bytes as u64;
        self.sent.add(now, bytes);
    }
}

fn usec(bytes: u64, rate: u32) -> i64 {
    i64::try_from(bytes.saturating_mul(1_000_000) / u64::from(rate.max(1))).unwrap_or(i64::MAX)
}

/// Builds the status snapshot (§5.5).
pub(crate) fn status(snp: &mut Snp, now: Timestamp, rate: u32, debt: u64) -> SnpStatus {
    let r = snp.stats.rates(now);
    let send = &snp.send;
    let mut lanes: Vec<LaneStatus> = send
        .lanes
        .iter()
        .enumerate()
        .map(|(i, l)| LaneStatus {
            pending_unreliable: l.unsent_unreliable,
            pending_reliable: l.unsent_reliable + l.retry_bytes,
            sent_unacked_reliable: l.in_flight_bytes,
            queue_time_usec: {
                let t = snp.lane_queue_time(LaneId(i as u8), rate);
                i64::try_from(t.as_micros())
                    .unwrap_or(i64::MAX)
                    .saturating_add(usec(debt, rate))
            },
        })
        .collect();
    if send.is_parked() {
        // The parked default lane: nothing pending.
        lanes.push(LaneStatus {
            pending_unreliable: 0,
            pending_reliable: 0,
            sent_unacked_reliable: 0,
            queue_time_usec: usec(debt, rate),
        });
    }
    let pending = send.pending_unreliable() + send.pending_reliable();
    let whole = pending / NO_FRAGMENT_SIZE as u64 * NO_FRAGMENT_SIZE as u64;
    let queue_time_usec = if !snp.connected {
        i64::MAX
    } else if lanes.len() > 1 {
        lanes.iter().map(|l| l.queue_time_usec).max().unwrap_or(0)
    } else {
        usec(whole, rate).saturating_add(usec(debt, rate))
    };
    SnpStatus {
        ping_ms: snp.ping.smoothed_ms(),
        // The connection's stats reports know these (`Connection::status`).
        quality_local: -1.0,
        quality_remote: -1.0,
        in_packets_per_sec: r.in_packets_per_sec,
        in_bytes_per_sec: r.in_bytes_per_sec,
        out_packets_per_sec: r.out_packets_per_sec,
        out_bytes_per_sec: r.out_bytes_per_sec,
        send_rate_bytes_per_sec: rate,
        pending_unreliable: send.pending_unreliable(),
        pending_reliable: send.pending_reliable(),
        sent_unacked_reliable: send.sent_unacked(),
        queue_time_usec,
        lanes,
        counters: snp.stats.counters,
    }
}
