//! The sender's in-flight table (spec §4.9, §4.12): which reliable segments each sent packet
//! carried, so acks and NACKs map back to stream ranges.
//!
//! Every data packet gets a new number (retransmissions too). A record starts in flight;
//! an ack removes it and reports its segments acked. Loss follows acks, as RFC 9002 §6: once a
//! later packet is acked, a packet still unacked (GNS's receivers NACK it) is lost when it is
//! [`PACKET_THRESHOLD`] packets behind or has waited 9/8 RTT; the retransmission timeout
//! declares the overdue packets lost only when acks stop for a whole (backed-off) timeout. A lost record stays so a late ack still counts,
//! and is forgotten once older than the forget horizon.
//!
//! ```text
//!   pkt:    5     6     7     8     9      (next = 10)
//!         [lost][ack'd: removed][flight][flight]
//!   ack latest=8 blocks: ack [8,9) nack [7,8) | implicit ack [min_waiting, 7)
//! ```

use std::ops::Range;
use std::time::Duration;

use smallvec::SmallVec;

use super::lanes::LaneId;
use super::seq_map::SeqMap;
use crate::time::Timestamp;

/// RTT samples outside −1..=2000 ms are rejected (§4.12).
pub(crate) const MAX_RTT_SAMPLE: Duration = Duration::from_millis(2000);

/// A sample may come out up to this negative (clock granularity, delay rounding) (§4.12).
pub(crate) const MIN_RTT_SAMPLE_NEGATIVE: Duration = Duration::from_millis(1);

/// The forget horizon counts the age of the newest ping sample up to this (§4.12).
pub(crate) const FORGET_PING_AGE_CAP: Duration = Duration::from_secs(3);

/// Extra forget time while there is no valid ping (§4.12).
pub(crate) const FORGET_NO_PING_EXTRA: Duration = Duration::from_secs(1);

/// First data packet number when the handshake implies packet 1 (peer protocol ≥ 10, §4.19).
pub(crate) const FIRST_DATA_PACKET: u64 = 2;

/// A reliable segment a packet carried: a range of one lane's stream, retransmitted exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SegmentRef {
    /// The lane whose stream it belongs to.
    pub lane: LaneId,
    /// Stream positions `[begin, end)`.
    pub stream: Range<u64>,
}

/// The reliable segments one packet carried: almost always one (a full-size segment, or
/// several messages coalesced into one), so it lives in the record without an allocation.
pub(crate) type Segments = SmallVec<[SegmentRef; 1]>;

/// Ack or NACK ranges of one ack frame: a handful (GNS writes at most a few blocks per ack).
pub(crate) type RangeList = SmallVec<[Range<u64>; 4]>;

/// A decoded ack, in ranges: the frame decoder's output is adapted to this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AckRanges {
    /// The `latest_received` field, already expanded to 64 bits.
    pub latest: u64,
    /// The delay field in microseconds; `None` for 0xFFFF ("no timing info").
    pub delay_usec: Option<u64>,
    /// Explicitly acked ranges (the implicit final block is added by the table).
    pub acked: RangeList,
    /// NACKed ranges (they bound the implicit block; loss itself follows the thresholds).
    pub nacked: RangeList,
}

/// Why an ack was refused; GNS drops the rest of the packet and does not ack it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AckError {
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
pub(crate) struct AckOutcome {
    /// Segments of newly acked packets (including late acks of packets already declared lost:
    /// the reliable layer drops them from its retry queue).
    pub acked: SmallVec<[SegmentRef; 8]>,
    /// Packets the ack proves lost (packet or time threshold): queue their segments for
    /// retransmission.
    pub lost: Lost,
    /// RTT sample, if `latest` was in flight, the delay is known and the value is plausible.
    pub rtt: Option<Duration>,
    /// Packets newly acked (late acks of packets declared lost included).
    pub packets_acked: u32,
    /// Counted bytes of newly acked packets that were still in flight.
    pub acked_bytes: u64,
    /// When the most recently sent of those went out.
    pub newest_acked_sent: Option<Timestamp>,
    /// Acks of packets already declared lost (spurious losses).
    pub late_acks: u32,
}

#[derive(Debug, Clone)]
struct SentPacket {
    sent_at: Timestamp,
    segments: Segments,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read only by the test accessor `awaiting_reply`")
    )]
    expects_reply: bool,
    lost: bool,
    /// UDP bytes the congestion controller counts (0 for packets without data).
    bytes: u32,
    /// Carries data (segments or counted bytes): ack-only packets are kept for RTT samples
    /// and the ack ranges but never wait for an ack (peers do not ack them promptly), so they
    /// neither arm the timeout nor count as lost.
    tracked: bool,
}

/// Packets a later acked packet overtook by this many count as lost (RFC 9002
/// `kPacketThreshold`).
pub(crate) const PACKET_THRESHOLD: u64 = 3;

/// Packets newly declared lost, summed for the congestion controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lost {
    /// Their segments: queue for retransmission.
    pub segments: Vec<SegmentRef>,
    /// Counted bytes of the lost packets.
    pub bytes: u64,
    /// When the most recently sent of them went out.
    pub newest_sent: Option<Timestamp>,
    /// Packets newly declared lost.
    pub packets: u32,
}

impl Lost {
    fn add(&mut self, p: &SentPacket) {
        self.segments.extend(p.segments.iter().cloned());
        self.bytes += u64::from(p.bytes);
        self.newest_sent = Some(self.newest_sent.map_or(p.sent_at, |t| t.max(p.sent_at)));
        self.packets += 1;
    }
}

/// What the timer found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TimeoutOutcome {
    /// Packets declared lost, by the time threshold or by the retransmission timeout.
    pub lost: Lost,
    /// The retransmission timeout expired (back off, collapse the window).
    pub rto_fired: bool,
}

/// The sender's table of sent, not yet acked data packets.
#[derive(Debug, Clone)]
pub(crate) struct SentPackets {
    next: u64,
    /// The highest `latest` the peer has acked; drives our stop_waiting.
    min_waiting: u64,
    /// The highest packet number acked so far (loss detection's reference).
    /// (Packet numbers start at 1, so the niche keeps this one word.)
    largest_acked: Option<std::num::NonZeroU64>,
    packets: SeqMap<SentPacket>,
    /// Numbers of the records still in flight (not lost), so the timer scan and deadline skip
    /// lost records instead of walking past them.
    in_flight: SeqMap<()>,
    /// Earliest time an in-flight packet below the largest acked crosses the time threshold.
    loss_time: Option<Timestamp>,
    /// The retransmission timer counts from here when it is later than the oldest in-flight
    /// packet: the last ack of new data or the last expiry (RFC 6298 §5.3 restarts it).
    rto_base: Timestamp,
    /// One packet whose fate the connection wants to learn (the one carrying its stats
    /// report, GNS's `m_pktNumInFlight`): 0 none, else its number, or [`WATCH_ACKED`] /
    /// [`WATCH_LOST`] once known. One word, so the table (and an idle connection) stays small.
    watch: u64,
}

/// [`SentPackets::watch`]: the watched packet was acked.
const WATCH_ACKED: u64 = u64::MAX;
/// [`SentPackets::watch`]: the watched packet was declared lost or forgotten unacked.
const WATCH_LOST: u64 = u64::MAX - 1;

impl SentPackets {
    /// An empty table whose first packet will be `first_packet` (normally
    /// [`FIRST_DATA_PACKET`]).
    pub(crate) fn new(first_packet: u64) -> Self {
        SentPackets {
            next: first_packet,
            min_waiting: 0,
            largest_acked: None,
            packets: SeqMap::default(),
            in_flight: SeqMap::default(),
            loss_time: None,
            rto_base: Timestamp::from_micros(0),
            watch: 0,
        }
    }

    /// Watches `pkt` (already recorded): [`SentPackets::take_watch_outcome`] tells whether
    /// the peer acked it or it was lost. Replaces an earlier watch.
    pub(crate) fn watch(&mut self, pkt: u64) {
        self.watch = pkt;
    }

    /// The watched packet's fate once known, clearing the watch: `Some(true)` acked,
    /// `Some(false)` lost (declared lost, or forgotten without an ack).
    pub(crate) fn take_watch_outcome(&mut self) -> Option<bool> {
        let outcome = match self.watch {
            WATCH_ACKED => true,
            WATCH_LOST => false,
            _ => return None,
        };
        self.watch = 0;
        Some(outcome)
    }

    /// `pkt` was declared lost or forgotten: the watch, if on it, has its answer.
    fn watched_lost(watch: &mut u64, pkt: u64) {
        if *watch == pkt {
            *watch = WATCH_LOST;
        }
    }

    /// The number the next packet will carry (for the header and stop_waiting encoders).
    pub(crate) fn next_packet_number(&self) -> u64 {
        self.next
    }

    /// The highest packet the peer has acked: the stop_waiting encoder sends
    /// `next − min_waiting − 1`.
    pub(crate) fn min_waiting(&self) -> u64 {
        self.min_waiting
    }

    /// Records a packet sent at `now` and returns its number. `bytes` is what the congestion
    /// controller counts for it (0 for a packet without data).
    pub(crate) fn record_sent(
        &mut self,
        now: Timestamp,
        segments: impl Into<Segments>,
        expects_reply: bool,
        bytes: u32,
    ) -> u64 {
        let segments = segments.into();
        let pkt = self.next;
        self.next += 1;
        let tracked = !segments.is_empty() || bytes > 0;
        if tracked {
            if self.in_flight.is_empty() {
                self.rto_base = now;
            }
            self.in_flight.insert(pkt, ());
        }
        self.packets.insert(
            pkt,
            SentPacket {
                sent_at: now,
                segments,
                expects_reply,
                lost: false,
                bytes,
                tracked,
            },
        );
        pkt
    }

    /// Records in the table (in flight or lost, not yet forgotten).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the table is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Whether any packet still in flight (not acked, not declared lost) expected a reply.
    #[cfg(test)]
    pub(crate) fn awaiting_reply(&self) -> bool {
        self.in_flight
            .keys_in(..)
            .any(|k| self.packets.get(k).is_some_and(|p| p.expects_reply))
    }

    /// Whether `pkt` is in flight (sent, neither acked nor lost).
    #[cfg(test)]
    pub(crate) fn is_in_flight(&self, pkt: u64) -> bool {
        self.packets.get(pkt).is_some_and(|p| p.tracked && !p.lost)
    }

    /// Applies a decoded ack at `now`, then declares lost what the ack proves missing: packets
    /// `PACKET_THRESHOLD` or more below the largest acked, or below it and older than
    /// `loss_delay` (RFC 9002 §6.1). A NACK block is such proof once it meets a threshold, so a
    /// reordered packet the peer reported early is not resent. Work is bounded by the table
    /// size, not the ranges.
    // GNS: CSteamNetworkConnectionBase::ProcessPlainTextDataChunk (ack frame) and
    // CSteamNetworkConnectionBase::SNP_SenderProcessPacketNack
    pub(crate) fn apply_ack(
        &mut self,
        now: Timestamp,
        ack: &AckRanges,
        loss_delay: Duration,
    ) -> Result<AckOutcome, AckError> {
        if ack.latest >= self.next {
            return Err(AckError::PacketNeverSent {
                latest: ack.latest,
                next: self.next,
            });
        }
        let mut out = AckOutcome::default();
        if let (Some(p), Some(delay)) = (self.packets.get(ack.latest), ack.delay_usec) {
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
        if out.packets_acked > 0 {
            self.rto_base = now;
        }
        self.min_waiting = self.min_waiting.max(ack.latest);
        out.lost = self.detect_losses(now, loss_delay);
        Ok(out)
    }

    fn ack_range(&mut self, r: Range<u64>, out: &mut AckOutcome) {
        if r.start >= r.end {
            return;
        }
        let (in_flight, largest_acked) = (&mut self.in_flight, &mut self.largest_acked);
        let watch = &mut self.watch;
        self.packets.take_range(r, |k, p| {
            if k == *watch {
                *watch = WATCH_ACKED;
            }
            if let Some(k) = std::num::NonZeroU64::new(k) {
                *largest_acked = Some(largest_acked.map_or(k, |l| l.max(k)));
            }
            if in_flight.remove(k).is_some() {
                out.acked_bytes += u64::from(p.bytes);
                out.newest_acked_sent = Some(
                    out.newest_acked_sent
                        .map_or(p.sent_at, |t| t.max(p.sent_at)),
                );
            } else if p.lost {
                out.late_acks += 1;
            }
            out.acked.extend(p.segments.drain(..));
            out.packets_acked += 1;
        });
    }

    /// Declares lost the in-flight packets below the largest acked that meet the packet or
    /// time threshold, and sets the loss timer for the rest.
    // RFC 9002 §6.1 (DetectAndRemoveLostPackets)
    fn detect_losses(&mut self, now: Timestamp, loss_delay: Duration) -> Lost {
        let mut lost = Lost::default();
        self.loss_time = None;
        let Some(largest) = self.largest_acked.map(std::num::NonZeroU64::get) else {
            return lost;
        };
        let (packets, loss_time) = (&mut self.packets, &mut self.loss_time);
        let watch = &mut self.watch;
        self.in_flight.retain_range(..largest, |k, ()| {
            let Some(p) = packets.get_mut(k) else {
                return false;
            };
            let deadline = p.sent_at + loss_delay;
            if largest - k >= PACKET_THRESHOLD || deadline <= now {
                Self::watched_lost(watch, k);
                p.lost = true;
                lost.add(p);
                false
            } else {
                *loss_time = Some(loss_time.map_or(deadline, |t| t.min(deadline)));
                true
            }
        });
        lost
    }

    /// When the timer next has work: the loss timer, else the retransmission timeout of the
    /// oldest in-flight packet, counted from the last progress (ack of new data or expiry).
    pub(crate) fn next_deadline(&self, rto: Duration) -> Option<Timestamp> {
        if let Some(t) = self.loss_time {
            return Some(t);
        }
        self.in_flight
            .first()
            .and_then(|(k, _)| self.packets.get(k))
            .map(|p| p.sent_at.max(self.rto_base) + rto)
    }

    /// Runs the loss timer and the retransmission timeout, and forgets old records.
    ///
    /// The loss timer declares lost the packets below the largest acked that have waited
    /// `loss_delay`. The retransmission timeout fires `rto` after the oldest in-flight packet
    /// was sent or after the last progress (an ack of new data, or the last expiry), whichever
    /// is later, and declares lost the oldest packet and every other one unacked for `rto`.
    /// GNS does the same with a timeout of 3 × its low-biased ping + 60 ms and no backoff, so
    /// under load, when queues make the real round trip longer than that, it resends the
    /// whole flight on every tick; the caller's timeout follows the real round trip and
    /// doubles per expiry without progress. Lost records are forgotten once
    /// older than `max(2 × rto, age of the newest ping sample capped at 3 s)` (+1 s when there
    /// is no ping sample); in-flight records stay until acked or declared lost.
    // GNS: CSteamNetworkConnectionBase::SNP_SenderCheckInFlightPackets
    pub(crate) fn on_timeout(
        &mut self,
        now: Timestamp,
        rto: Duration,
        loss_delay: Duration,
        last_ping_sample_at: Option<Timestamp>,
    ) -> TimeoutOutcome {
        let mut out = TimeoutOutcome::default();
        if self.loss_time.is_some_and(|t| t <= now) {
            out.lost = self.detect_losses(now, loss_delay);
        } else if self.loss_time.is_none() && self.next_deadline(rto).is_some_and(|t| t <= now) {
            // Everything unacked for a whole timeout is overdue: lost (RFC 6675 §5.1 after a
            // timeout). The window (when a controller runs) falls to its minimum, so the
            // retransmissions go out as slowly as a new connection's data would.
            while let Some((k, _)) = self.in_flight.first() {
                let Some(p) = self.packets.get_mut(k) else {
                    self.in_flight.pop_first();
                    continue;
                };
                if p.sent_at + rto > now && out.rto_fired {
                    break;
                }
                self.in_flight.pop_first();
                Self::watched_lost(&mut self.watch, k);
                p.lost = true;
                out.lost.add(p);
                out.rto_fired = true;
            }
            self.rto_base = now;
        }
        self.forget_old(now, rto, last_ping_sample_at);
        out
    }

    /// Forgets lost and ack-only records older than `max(2 × rto, age of the newest ping
    /// sample capped at 3 s)` (+1 s when there is no ping sample).
    fn forget_old(
        &mut self,
        now: Timestamp,
        rto: Duration,
        last_ping_sample_at: Option<Timestamp>,
    ) {
        let keep = match last_ping_sample_at {
            Some(at) => (rto * 2).max(now.saturating_since(at).min(FORGET_PING_AGE_CAP)),
            None => rto * 2 + FORGET_NO_PING_EXTRA,
        };
        // Lost and ack-only records only: forgetting one in flight would lose its segments.
        while let Some((_, p)) = self.packets.first() {
            if (p.tracked && !p.lost) || p.sent_at + keep > now {
                break;
            }
            if let Some((k, _)) = self.packets.pop_first() {
                Self::watched_lost(&mut self.watch, k);
            }
        }
    }

    /// When the oldest record, if it is not in flight, can surely be forgotten: the time to
    /// run [`SentPackets::release_idle`] again on an idle connection (whose timers would
    /// otherwise keep the record, and its table node, until the next keepalive).
    pub(crate) fn idle_forget_at(
        &self,
        rto: Duration,
        last_ping_sample_at: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let (_, p) = self.packets.first()?;
        if p.tracked && !p.lost {
            return None;
        }
        // The largest `keep` that `forget_old` can use.
        let keep = match last_ping_sample_at {
            Some(_) => (rto * 2).max(FORGET_PING_AGE_CAP),
            None => rto * 2 + FORGET_NO_PING_EXTRA,
        };
        Some(p.sent_at + keep)
    }

    /// Forgets what [`SentPackets::on_timeout`] would, then frees the tables' buffers if they
    /// are empty. For idle connections (issue 16).
    pub(crate) fn release_idle(
        &mut self,
        now: Timestamp,
        rto: Duration,
        last_ping_sample_at: Option<Timestamp>,
    ) {
        self.forget_old(now, rto, last_ping_sample_at);
        self.packets.release_if_empty();
        self.in_flight.release_if_empty();
    }
}

#[cfg(test)]
mod tests;
