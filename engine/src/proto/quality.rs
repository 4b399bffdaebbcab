//! End-to-end connection quality (spec §4.13, §5.5; GNS's `LinkStatsTracker`): the receive
//! quality of each 5 s interval, the instantaneous and lifetime stats a connection reports to
//! its peer inline in data packets, and the peer's reports, which `GetConnectionRealTimeStatus`
//! shows as the remote quality.
//!
//! ```text
//!  every 5 s:   interval closes ─► dropped %, weird % (the local quality), a histogram sample
//!  20 s after the peer acked our last report: "ready", rides on a data packet going out anyway
//!  30 s:        "due", a packet goes out for it        lifetime: ready at 120 s, rides along
//!  the packet carrying a report is acked ─► the clocks restart; lost ─► sent again when ready
//! ```
//!
//! Quiet links report nothing (fewer packets than one per 3 s since the last report), as GNS.
//! A connection allocates this state only once it carries traffic (more than 5 packets
//! received) and keeps it for its life, so an idle connection pays one pointer (issue 16).

use std::time::Duration;

use crate::proto::snp::{Rates, SnpCounters};
use crate::time::Timestamp;
use crate::wire::proto::{ConnectionQuality, LinkInstantaneousStats, LinkLifetimeStats, UdpStats};

/// Length of a quality interval (GNS `k_usecSteamDatagramLinkStatsDefaultInterval`).
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);
/// Instantaneous stats may ride along this long after the peer acked the last ones.
const INSTANT_READY: Duration = Duration::from_secs(20);
/// ... and force a packet this long after.
const INSTANT_DUE: Duration = Duration::from_secs(30);
/// Lifetime stats may ride along this long after the peer acked the last ones.
const LIFETIME_READY: Duration = Duration::from_secs(120);
/// GNS's lifetime "due" time; GNS measures it from the *instantaneous* ack (kept as GNS does:
/// on an active link lifetime stats therefore only ever ride along).
const LIFETIME_DUE: Duration = Duration::from_secs(140);
/// A link with fewer packets than one per this long since the last report has nothing to say.
const ACTIVE_SEND_INTERVAL: Duration = Duration::from_secs(3);
/// Lifetime stats wait for this many new packets either way.
const LIFETIME_MIN_PACKETS: u64 = 100;
/// An interval needs more received packets than this for a quality sample.
const MIN_SAMPLE_PACKETS: u64 = 5;
/// Quality histogram buckets, in the order of the lifetime message's fields 21..29.
const BUCKETS: usize = 9;
const BUCKET_DEAD: usize = 8;

/// Cumulative packet counts of the connection, sampled when the tracker needs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Sequenced packets received (duplicates included).
    pub recv: u64,
    /// Packet numbers skipped and never filled in.
    pub dropped: u64,
    /// Packets out of order or duplicated.
    pub weird: u64,
    /// Packets sent.
    pub sent: u64,
}

/// Which reports the next packet should carry (GNS's `k_nSendStats_*` bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Need(u8);

impl Need {
    const INSTANT_DUE: u8 = 1;
    const INSTANT_READY: u8 = 2;
    const LIFETIME_DUE: u8 = 4;
    const LIFETIME_READY: u8 = 8;

    /// Nothing to report.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A report must go out even if no data does.
    pub(crate) fn is_due(self) -> bool {
        self.0 & (Self::INSTANT_DUE | Self::LIFETIME_DUE) != 0
    }

    /// The same without lifetime stats (trimmed for room).
    pub(crate) fn without_lifetime(self) -> Need {
        Need(self.0 & !(Self::LIFETIME_DUE | Self::LIFETIME_READY))
    }

    fn instant(self) -> bool {
        self.0 & (Self::INSTANT_DUE | Self::INSTANT_READY) != 0
    }

    fn lifetime(self) -> bool {
        self.0 & (Self::LIFETIME_DUE | Self::LIFETIME_READY) != 0
    }
}

/// What a report is built from besides the tracker's own state: the message layer's figures,
/// as it keeps them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Inputs {
    /// Packets and bytes per second each way (the last full second).
    pub rates: Rates,
    /// Smoothed ping, ms (−1 unknown).
    pub ping_ms: i32,
    /// Lifetime totals.
    pub counters: SnpCounters,
    /// Packets received out of order.
    pub out_of_order: u64,
}

/// The peer's latest reports and when they came.
#[derive(Debug, Clone, Default)]
pub struct RemoteStats {
    /// Its last instantaneous stats and when they arrived.
    pub instantaneous: Option<(LinkInstantaneousStats, Timestamp)>,
    /// Its last lifetime stats and when they arrived.
    pub lifetime: Option<(LinkLifetimeStats, Timestamp)>,
}

/// One connection's quality bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Quality {
    started: Timestamp,
    interval_start: Timestamp,
    /// The end of the interval, the first time a report may be ready (the earlier of the two
    /// clocks' ready times) and when instantaneous stats fall due: the per-packet tests
    /// compare against these, kept up to date where their inputs change.
    interval_end: Timestamp,
    ready_at: Timestamp,
    due_at: Timestamp,
    at_interval: Counts,
    /// The last closed interval's dropped and weird fractions; −1 when it received nothing.
    dropped: f32,
    weird: f32,
    histogram: [u32; BUCKETS],
    instant_acked_at: Timestamp,
    at_instant_ack: Counts,
    lifetime_acked_at: Timestamp,
    at_lifetime_ack: Counts,
    /// What the packet the sent-packet table watches for us carries.
    in_flight: Option<Need>,
    remote: Option<Box<RemoteStats>>,
}

fn pct(frac: f32) -> Option<u32> {
    // f32 → u32 `as` saturates; the fraction is within 0..=1.
    (frac >= 0.0).then_some((frac * 100.0) as u32)
}

impl Quality {
    /// Starts tracking at `now` (GNS: the link became active; the report clocks start).
    pub(crate) fn new(now: Timestamp, c: Counts) -> Self {
        Quality {
            started: now,
            interval_start: now,
            interval_end: now + INTERVAL,
            ready_at: now + INSTANT_READY,
            due_at: now + INSTANT_DUE,
            at_interval: c,
            dropped: -1.0,
            weird: -1.0,
            histogram: [0; BUCKETS],
            instant_acked_at: now,
            at_instant_ack: c,
            lifetime_acked_at: now,
            at_lifetime_ack: c,
            in_flight: None,
            remote: None,
        }
    }

    /// Closes the current interval if it has run its length. `dead`: replies have been
    /// overdue at least twice in a row (an interval with sends and no receives then counts as
    /// a dead one in the histogram, as GNS).
    // GNS: LinkStatsTrackerBase::UpdateInterval
    pub(crate) fn roll(&mut self, now: Timestamp, c: Counts, dead: bool) {
        let elapsed = now.saturating_since(self.interval_start);
        if elapsed < INTERVAL {
            return;
        }
        let recv = c.recv.saturating_sub(self.at_interval.recv);
        let dropped = c.dropped.saturating_sub(self.at_interval.dropped);
        let weird = c.weird.saturating_sub(self.at_interval.weird).min(recv);
        let sent = c.sent.saturating_sub(self.at_interval.sent);
        if recv > MIN_SAMPLE_PACKETS {
            self.histogram[bucket(recv, dropped, weird)] += 1;
        } else if recv == 0 && sent > elapsed.as_secs() && dead {
            self.histogram[BUCKET_DEAD] += 1;
        }
        if recv == 0 {
            self.dropped = -1.0;
            self.weird = -1.0;
        } else {
            let total = (recv + dropped) as f32;
            self.dropped = dropped as f32 / total;
            self.weird = weird as f32 / total;
        }
        self.interval_start = now;
        self.interval_end = now + INTERVAL;
        self.at_interval = c;
    }

    /// 1 − dropped − weird over the last closed interval; −1 before one closed with traffic.
    pub(crate) fn local(&self) -> f32 {
        if self.dropped < 0.0 {
            -1.0
        } else {
            (1.0 - self.dropped - self.weird).max(0.0)
        }
    }

    /// The same figure from the peer's last instantaneous report; −1 without one.
    pub(crate) fn remote(&self) -> f32 {
        let Some((s, _)) = self.remote.as_ref().and_then(|r| r.instantaneous.as_ref()) else {
            return -1.0;
        };
        match (s.packets_dropped_pct, s.packets_weird_sequence_pct) {
            (Some(d), w) => (1.0 - d as f32 * 0.01 - w.unwrap_or(0) as f32 * 0.01).max(0.0),
            (None, _) => -1.0,
        }
    }

    /// The peer's reports, if any came.
    pub(crate) fn remote_stats(&self) -> Option<&RemoteStats> {
        self.remote.as_deref()
    }

    /// Takes the peer's report (after its packet decrypted and was processed).
    // GNS: LinkStatsTrackerBase::InternalProcessMessage
    pub(crate) fn receive(&mut self, now: Timestamp, msg: ConnectionQuality) {
        let remote = self.remote.get_or_insert_with(Box::default);
        if let Some(i) = msg.instantaneous {
            remote.instantaneous = Some((i, now));
        }
        if let Some(l) = msg.lifetime {
            remote.lifetime = Some((l, now));
        }
    }

    /// Which reports the next packet should carry. May restart a clock when the link had
    /// nothing to report (GNS does the same).
    // GNS: LinkStatsTrackerBase::GetStatsSendNeed
    pub(crate) fn need(&mut self, now: Timestamp, c: Counts) -> Need {
        if self.in_flight.is_some() {
            return Need::default();
        }
        let mut n = 0;
        if now >= self.instant_acked_at + INSTANT_READY && self.instant_has_data(now, c) {
            n |= if now >= self.instant_acked_at + INSTANT_DUE {
                Need::INSTANT_DUE
            } else {
                Need::INSTANT_READY
            };
        }
        if now >= self.lifetime_acked_at + LIFETIME_READY && self.lifetime_has_data(now, c) {
            n |= if now >= self.instant_acked_at + LIFETIME_DUE {
                Need::LIFETIME_DUE
            } else {
                Need::LIFETIME_READY
            };
        }
        Need(n)
    }

    /// Whether [`Quality::need`] can find anything at `now`: a cheap test for every packet.
    pub(crate) fn may_need(&self, now: Timestamp) -> bool {
        self.in_flight.is_none() && now >= self.ready_at
    }

    /// Whether the current interval has run its length ([`Quality::roll`] has work).
    pub(crate) fn interval_over(&self, now: Timestamp) -> bool {
        now >= self.interval_end
    }

    /// When a report may fall due and force a packet. [`Quality::need`] then finds whether
    /// the link had anything to report; if not, the clock restarts and this moves 30 s on,
    /// so a quiet link wakes for it once per 30 s and sends nothing.
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.in_flight.is_none().then_some(self.due_at)
    }

    fn instant_has_data(&mut self, now: Timestamp, c: Counts) -> bool {
        let elapsed = now.saturating_since(self.instant_acked_at);
        let threshold = elapsed.as_secs() / ACTIVE_SEND_INTERVAL.as_secs();
        if self.at_instant_ack.recv + threshold < c.recv
            || self.at_instant_ack.sent + threshold < c.sent
        {
            return true;
        }
        // Idle since the last report: act as if one was sent and acked.
        self.instant_acked(now, c);
        false
    }

    fn lifetime_has_data(&mut self, now: Timestamp, c: Counts) -> bool {
        if self.at_lifetime_ack.recv + LIFETIME_MIN_PACKETS < c.recv
            || self.at_lifetime_ack.sent + LIFETIME_MIN_PACKETS < c.sent
        {
            return true;
        }
        // Only the clock restarts: a slow trickle still reports every 100 packets or so.
        self.lifetime_acked(now, None);
        false
    }

    fn instant_acked(&mut self, now: Timestamp, c: Counts) {
        self.instant_acked_at = now;
        self.at_instant_ack = c;
        self.clocks_moved();
    }

    /// The lifetime clock restarts at `now` (and its counts, when the report was acked).
    fn lifetime_acked(&mut self, now: Timestamp, c: Option<Counts>) {
        self.lifetime_acked_at = now;
        if let Some(c) = c {
            self.at_lifetime_ack = c;
        }
        self.clocks_moved();
    }

    fn clocks_moved(&mut self) {
        self.ready_at =
            (self.instant_acked_at + INSTANT_READY).min(self.lifetime_acked_at + LIFETIME_READY);
        self.due_at = self.instant_acked_at + INSTANT_DUE;
    }

    /// Builds the report `need` asks for.
    // GNS: LinkStatsTrackerBase::PopulateMessage
    pub(crate) fn report(
        &self,
        need: Need,
        now: Timestamp,
        c: Counts,
        x: &Inputs,
    ) -> ConnectionQuality {
        let instantaneous = need.instant().then(|| LinkInstantaneousStats {
            // f32 → u32 `as` saturates (rates are never negative).
            out_packets_per_sec_x10: Some((x.rates.out_packets_per_sec * 10.0) as u32),
            out_bytes_per_sec: Some(x.rates.out_bytes_per_sec as u32),
            in_packets_per_sec_x10: Some((x.rates.in_packets_per_sec * 10.0) as u32),
            in_bytes_per_sec: Some(x.rates.in_bytes_per_sec as u32),
            ping_ms: u32::try_from(x.ping_ms).ok(),
            packets_dropped_pct: pct(self.dropped),
            packets_weird_sequence_pct: pct(self.weird),
            // Jitter needs the sender's packet spacing, which plain UDP peers do not send.
            peak_jitter_usec: None,
        });
        let lifetime = need.lifetime().then(|| self.lifetime(now, c, x));
        ConnectionQuality {
            instantaneous,
            lifetime,
        }
    }

    /// The stats blob (`CMsgSteamSockets_UDP_Stats`) carrying `need`'s reports in at most
    /// `room` bytes, and what it carries: lifetime stats are left out when they do not fit
    /// (GNS trims the same way); `None` when even the rest does not. `immediate` adds
    /// ACK_REQUEST_IMMEDIATE (a report implies ACK_REQUEST_E2E).
    pub(crate) fn blob(
        &self,
        mut need: Need,
        now: Timestamp,
        c: Counts,
        x: &Inputs,
        immediate: bool,
        room: usize,
    ) -> Option<(Vec<u8>, Need)> {
        loop {
            if need.is_empty() {
                return None;
            }
            let msg = UdpStats {
                stats: Some(self.report(need, now, c, x)),
                flags: immediate
                    .then_some(UdpStats::ACK_REQUEST_E2E | UdpStats::ACK_REQUEST_IMMEDIATE),
            };
            let blob = prost::Message::encode_to_vec(&msg);
            if blob.len() <= room {
                return Some((blob, need));
            }
            if !need.lifetime() {
                return None;
            }
            need = need.without_lifetime();
        }
    }

    fn lifetime(&self, now: Timestamp, c: Counts, x: &Inputs) -> LinkLifetimeStats {
        let h = |i: usize| Some(self.histogram[i]);
        LinkLifetimeStats {
            connected_seconds: u32::try_from(now.saturating_since(self.started).as_secs()).ok(),
            packets_sent: Some(x.counters.packets_sent),
            kb_sent: Some(x.counters.bytes_sent.saturating_add(512) / 1024),
            packets_recv: Some(x.counters.packets_recv),
            kb_recv: Some(x.counters.bytes_recv.saturating_add(512) / 1024),
            packets_recv_sequenced: Some(c.recv),
            packets_recv_dropped: Some(c.dropped),
            packets_recv_out_of_order: Some(x.out_of_order),
            packets_recv_duplicate: Some(x.counters.duplicates),
            // A lurch ends the connection here (spec §3.6), so none is ever counted.
            packets_recv_lurch: Some(0),
            quality_histogram_100: h(0),
            quality_histogram_99: h(1),
            quality_histogram_97: h(2),
            quality_histogram_95: h(3),
            quality_histogram_90: h(4),
            quality_histogram_75: h(5),
            quality_histogram_50: h(6),
            quality_histogram_1: h(7),
            quality_histogram_dead: h(BUCKET_DEAD),
            ..LinkLifetimeStats::default()
        }
    }

    /// A report that cannot fit any packet: both clocks restart as if it had been sent and
    /// acked.
    pub(crate) fn skip(&mut self, now: Timestamp, c: Counts) {
        self.instant_acked(now, c);
        self.lifetime_acked(now, Some(c));
    }

    /// A packet carrying `need`'s reports went out (the caller watches it in the sent-packet
    /// table and reports its fate with [`Quality::on_fate`]).
    pub(crate) fn on_sent(&mut self, need: Need) {
        self.in_flight = Some(need);
    }

    /// The watched packet was acked (`true`) or lost.
    // GNS: LinkStatsTrackerBase::InFlightPktAck / InFlightPktTimeout
    pub(crate) fn on_fate(&mut self, now: Timestamp, acked: bool, c: Counts) {
        let Some(need) = self.in_flight.take() else {
            return;
        };
        if !acked {
            return;
        }
        if need.instant() {
            self.instant_acked(now, c);
        }
        if need.lifetime() {
            self.lifetime_acked(now, Some(c));
        }
    }
}

/// The histogram bucket of an interval with `recv` packets received (GNS's thresholds: 100
/// means perfect, 99 is the cap otherwise, 1 the floor).
fn bucket(recv: u64, dropped: u64, weird: u64) -> usize {
    if dropped + weird == 0 {
        return 0;
    }
    let quality = (recv - weird) * 100 / (recv + dropped);
    match quality {
        99.. => 1,
        97..=98 => 2,
        95..=96 => 3,
        90..=94 => 4,
        75..=89 => 5,
        50..=74 => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests;
