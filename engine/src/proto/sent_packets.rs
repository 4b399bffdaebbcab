//! The sender's in-flight table (spec §4.9, §4.12): which reliable segments each sent packet
//! carried, so acks and NACKs map back to stream ranges.
//!
//! Every data packet gets a new number (retransmissions too). A record starts in flight;
//! an ack removes it and reports its segments acked; a NACK or the RTO marks it lost and
//! reports its segments for retry, but the record stays so a late ack still counts. Records
//! are finally forgotten once older than the forget horizon.
//!
//! ```text
//!   pkt:    5     6     7     8     9      (next = 10)
//!         [lost][ack'd: removed][flight][flight]
//!   ack latest=8 blocks: ack [8,9) nack [7,8) | implicit ack [min_waiting, 7)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use super::lanes::LaneId;
use crate::time::Timestamp;

/// RTT samples outside −1..=2000 ms are rejected (§4.12).
pub const MAX_RTT_SAMPLE: Duration = Duration::from_millis(2000);

/// A sample may come out up to this negative (clock granularity, delay rounding) (§4.12).
pub const MIN_RTT_SAMPLE_NEGATIVE: Duration = Duration::from_millis(1);

/// The forget horizon counts the age of the newest ping sample up to this (§4.12).
pub const FORGET_PING_AGE_CAP: Duration = Duration::from_secs(3);

/// Extra forget time while there is no valid ping (§4.12).
pub const FORGET_NO_PING_EXTRA: Duration = Duration::from_secs(1);

/// First data packet number when the handshake implies packet 1 (peer protocol ≥ 10, §4.19).
pub const FIRST_DATA_PACKET: u64 = 2;

/// A reliable segment a packet carried: a range of one lane's stream, retransmitted exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentRef {
    /// The lane whose stream it belongs to.
    pub lane: LaneId,
    /// Stream positions `[begin, end)`.
    pub stream: Range<u64>,
}

/// A decoded ack, in ranges: the frame decoder's output is adapted to this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckRanges {
    /// The `latest_received` field, already expanded to 64 bits.
    pub latest: u64,
    /// The delay field in microseconds; `None` for 0xFFFF ("no timing info").
    pub delay_usec: Option<u64>,
    /// Explicitly acked ranges (the implicit final block is added by the table).
    pub acked: Vec<Range<u64>>,
    /// NACKed ranges.
    pub nacked: Vec<Range<u64>>,
}

/// Why an ack was refused; GNS drops the rest of the packet and does not ack it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The ack's latest is a packet we have not sent yet.
    #[error("ack for packet {latest}, but the next packet number is {next}")]
    PacketNeverSent {
        /// The acked number.
        latest: u64,
        /// Our next packet number.
        next: u64,
    },
}

/// What an ack changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Segments of newly acked packets (including late acks of packets already declared lost:
    /// the reliable layer drops them from its retry queue).
    pub acked: Vec<SegmentRef>,
    /// Segments of newly NACKed packets: queue for retransmission.
    pub nacked: Vec<SegmentRef>,
    /// RTT sample, if `latest` was in flight, the delay is known and the value is plausible.
    pub rtt: Option<Duration>,
    /// Packets newly acked.
    pub packets_acked: u32,
}

#[derive(Debug, Clone)]
struct SentPacket {
    sent_at: Timestamp,
    segments: Vec<SegmentRef>,
    expects_reply: bool,
    lost: bool,
}

/// The sender's table of sent, not yet acked data packets.
#[derive(Debug, Clone)]
pub struct SentPackets {
    next: u64,
    /// The highest `latest` the peer has acked; drives our stop_waiting.
    min_waiting: u64,
    packets: BTreeMap<u64, SentPacket>,
    /// Numbers of the records still in flight (not lost), so the RTO scan and deadline skip
    /// lost records in O(log n) instead of walking past them.
    in_flight: BTreeSet<u64>,
}

impl SentPackets {
    /// An empty table whose first packet will be `first_packet` (normally
    /// [`FIRST_DATA_PACKET`]).
    pub fn new(first_packet: u64) -> Self {
        SentPackets {
            next: first_packet,
            min_waiting: 0,
            packets: BTreeMap::new(),
            in_flight: BTreeSet::new(),
        }
    }

    /// The number the next packet will carry (for the header and stop_waiting encoders).
    pub fn next_packet_number(&self) -> u64 {
        self.next
    }

    /// The highest packet the peer has acked: the stop_waiting encoder sends
    /// `next − min_waiting − 1`.
    pub fn min_waiting(&self) -> u64 {
        self.min_waiting
    }

    /// Records a packet sent at `now` and returns its number.
    pub fn record_sent(
        &mut self,
        now: Timestamp,
        segments: Vec<SegmentRef>,
        expects_reply: bool,
    ) -> u64 {
        let pkt = self.next;
        self.next += 1;
        self.in_flight.insert(pkt);
        self.packets.insert(
            pkt,
            SentPacket {
                sent_at: now,
                segments,
                expects_reply,
                lost: false,
            },
        );
        pkt
    }

    /// Records in the table (in flight or lost, not yet forgotten).
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Whether any packet still in flight (not acked, not declared lost) expected a reply.
    pub fn awaiting_reply(&self) -> bool {
        self.in_flight
            .iter()
            .any(|k| self.packets.get(k).is_some_and(|p| p.expects_reply))
    }

    /// Whether `pkt` is in flight (sent, neither acked nor lost).
    pub fn is_in_flight(&self, pkt: u64) -> bool {
        self.packets.get(&pkt).is_some_and(|p| !p.lost)
    }

    /// Applies a decoded ack at `now`. Work is bounded by the table size, not the ranges.
    // GNS: CSteamNetworkConnectionBase::ProcessPlainTextDataChunk (ack frame) and
    // CSteamNetworkConnectionBase::SNP_SenderProcessPacketNack
    pub fn apply_ack(&mut self, now: Timestamp, ack: &AckRanges) -> Result<AckOutcome, AckError> {
        if ack.latest >= self.next {
            return Err(AckError::PacketNeverSent {
                latest: ack.latest,
                next: self.next,
            });
        }
        let mut out = AckOutcome::default();
        if let (Some(p), Some(delay)) = (self.packets.get(&ack.latest), ack.delay_usec) {
            let elapsed = i128::from(now.as_micros()) - i128::from(p.sent_at.as_micros());
            let rtt = elapsed - i128::from(delay);
            let min = -i128::try_from(MIN_RTT_SAMPLE_NEGATIVE.as_micros()).unwrap_or(0);
            let max = i128::try_from(MAX_RTT_SAMPLE.as_micros()).unwrap_or(0);
            if (min..=max).contains(&rtt) {
                out.rtt = Some(Duration::from_micros(u64::try_from(rtt).unwrap_or(0)));
            }
        }
        // The implicit final block acks [min_waiting, lowest explicit begin).
        let lowest = ack
            .acked
            .iter()
            .chain(&ack.nacked)
            .map(|r| r.start)
            .min()
            .unwrap_or(ack.latest + 1)
            .min(ack.latest + 1);
        let implicit = self.min_waiting..lowest;
        for r in ack.acked.iter().chain(std::iter::once(&implicit)) {
            self.ack_range(r.clone(), &mut out);
        }
        for r in &ack.nacked {
            if r.start >= r.end {
                continue;
            }
            for (k, p) in self.packets.range_mut(r.clone()) {
                if !p.lost {
                    p.lost = true;
                    self.in_flight.remove(k);
                    out.nacked.extend(p.segments.iter().cloned());
                }
            }
        }
        self.min_waiting = self.min_waiting.max(ack.latest);
        Ok(out)
    }

    fn ack_range(&mut self, r: Range<u64>, out: &mut AckOutcome) {
        if r.start >= r.end {
            return;
        }
        let keys: Vec<u64> = self.packets.range(r).map(|(&k, _)| k).collect();
        for k in keys {
            if let Some(p) = self.packets.remove(&k) {
                self.in_flight.remove(&k);
                out.acked.extend(p.segments);
                out.packets_acked += 1;
            }
        }
    }

    /// When the oldest in-flight packet's RTO expires, for the timer.
    pub fn next_rto_deadline(&self, rto: Duration) -> Option<Timestamp> {
        self.in_flight
            .first()
            .and_then(|k| self.packets.get(k))
            .map(|p| p.sent_at + rto)
    }

    /// Marks packets unacked for `rto` as lost, returning their segments for retry, and
    /// forgets records older than `max(2 × rto, age of the newest ping sample capped at 3 s)`
    /// (+1 s when there is no ping sample).
    // GNS: CSteamNetworkConnectionBase::SNP_SenderCheckInFlightPackets
    pub fn on_timeout(
        &mut self,
        now: Timestamp,
        rto: Duration,
        last_ping_sample_at: Option<Timestamp>,
    ) -> Vec<SegmentRef> {
        let mut retry = Vec::new();
        // Send times grow with packet numbers, so the expired ones are a prefix.
        while let Some(&k) = self.in_flight.first() {
            let Some(p) = self.packets.get_mut(&k) else {
                self.in_flight.pop_first();
                continue;
            };
            if p.sent_at + rto > now {
                break;
            }
            self.in_flight.pop_first();
            p.lost = true;
            retry.extend(p.segments.iter().cloned());
        }
        let keep = match last_ping_sample_at {
            Some(at) => (rto * 2).max(now.saturating_since(at).min(FORGET_PING_AGE_CAP)),
            None => rto * 2 + FORGET_NO_PING_EXTRA,
        };
        while let Some(entry) = self.packets.first_entry() {
            if entry.get().sent_at + keep > now {
                break;
            }
            let k = *entry.key();
            let p = entry.remove();
            if !p.lost {
                self.in_flight.remove(&k);
                // Unreachable in practice (keep ≥ rto) but never drop segments silently.
                retry.extend(p.segments);
            }
        }
        retry
    }
}

#[cfg(test)]
mod tests;
