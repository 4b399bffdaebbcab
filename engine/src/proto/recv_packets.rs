//! Receiver packet tracking for acks (spec §4.8, §4.9, §4.11).
//!
//! The receiver remembers the highest packet number it has recorded and the gaps (missing
//! ranges) below it, down to the minimum the sender still wants to hear about (its
//! stop_waiting). An ack states `latest` and describes every gap between that minimum and
//! `latest`, because the sender treats anything not NACKed as delivered (implicit final block):
//!
//! ```text
//!   min_to_ack                                     highest
//!       |  ok  |  gap  |   ok   | gap |    ok       |
//!       [------[xxxxxxx[--------[xxxxx[-------------]
//!                 ^ NACKable only 3 ms after it was detected
//! ```
//!
//! A gap that is still inside its 3 ms NACK delay cannot be reported yet, so the ack input
//! lowers `latest` to just below it. [`AckDeadline`] tracks when an ack must go out.

use std::ops::Range;
use std::time::Duration;

use crate::time::Timestamp;

/// Gaps tracked at most; beyond this the two oldest are merged (§4.11).
pub(crate) const MAX_TRACKED_GAPS: usize = 62;

/// A new gap is not NACKed until this long after detection, to tolerate reordering
/// (GNS `k_usecNackFlush`, §4.11).
pub(crate) const NACK_FLUSH_DELAY: Duration = Duration::from_millis(3);

/// Max delay before acking reliable data or an ACK_REQUEST_E2E
/// (GNS `k_usecMaxDataAckDelay`, §4.11).
pub(crate) const MAX_DATA_ACK_DELAY: Duration = Duration::from_millis(50);

/// How long Sockworks holds an ack for reliable data: a departure from GNS's 50 ms. A GNS
/// sender's retransmission timeout is 3 × its (low-biased) ping + 60 ms, about 60 ms on a LAN,
/// so an ack held 50 ms plus any scheduling delay makes it resend data that arrived: under
/// load, a retransmission storm. 10 ms stays far inside that, and the delay field still tells
/// the peer how long the ack waited, so its RTT samples are unaffected. Most acks ride on data
/// anyway; this bounds only the ack-only packets of one-way flows.
pub(crate) const DATA_ACK_DELAY: Duration = Duration::from_millis(10);

/// Budget for flushing acks after receiving an ack with N blocks: this divided by N (§4.11).
pub(crate) const ACK_BLOCKS_FLUSH_BUDGET: Duration = Duration::from_millis(250);

/// Ping used for the "left unacked" deadline when unknown, and its clamp (§4.11).
pub(crate) const UNACKED_PING_CAP: Duration = Duration::from_millis(100);

/// Slack added to the ping for the "left unacked" deadline (§4.11).
pub(crate) const UNACKED_PING_SLACK: Duration = Duration::from_millis(5);

/// One run of missing packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    /// First missing packet.
    begin: u64,
    /// One past the last missing packet (a received packet, or the next gap's merge point).
    end: u64,
    /// When the packet just below `begin` was received, for the ack delay field when the ack
    /// has to stop below this gap.
    prev_received_at: Timestamp,
    /// Earliest time this gap may be NACKed.
    nack_at: Timestamp,
    /// Whether an ack carrying this gap has been sent (for the NACK wakeup timer).
    announced: bool,
}

/// What [`RecvPacketTracker::record`] made of a packet number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordOutcome {
    /// Newly recorded; it will be acked.
    New,
    /// Already recorded (or implied): nothing changed.
    Duplicate,
    /// Below the sender's stop_waiting minimum: nothing to report on it.
    BelowMinimum,
}

/// A decoded stop_waiting value that the decoder rules of §4.8 reject; the connection dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopWaitingError {
    /// N − X − 1 would be negative.
    #[error("stop_waiting offset {offset} reaches before packet 0 (packet {packet})")]
    Negative {
        /// The packet carrying the frame.
        packet: u64,
        /// The decoded offset X.
        offset: u64,
    },
    /// A newer packet than the one that set the minimum moved it backwards.
    #[error("stop_waiting moved backwards in packet {packet}")]
    MovedBackwards {
        /// The packet carrying the frame.
        packet: u64,
    },
}

/// One reportable gap, for the ack encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AckGap {
    /// The missing packets.
    pub missing: Range<u64>,
    /// When the packet just below the gap was received: the delay base if the encoder has to
    /// drop this gap and everything newer, stating `missing.start - 1` as latest.
    pub prev_received_at: Timestamp,
}

/// Everything the ack encoder needs: `latest`, its receive time, the gaps newest to oldest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AckInput {
    /// The latest packet the ack speaks for; every gap below it is in `gaps`.
    pub latest: u64,
    /// When `latest` was received (the delay field is `now - received_at`).
    pub received_at: Timestamp,
    /// Missing ranges below `latest`, newest first, one ack block each.
    pub gaps: Vec<AckGap>,
}

impl AckInput {
    /// Keeps only the `max_blocks` oldest gaps, lowering `latest` below the dropped ones, as
    /// GNS does when the blocks do not fit in the packet (§4.9).
    #[cfg(test)]
    pub(crate) fn truncate_newest(&mut self, max_blocks: usize) {
        if self.gaps.len() <= max_blocks {
            return;
        }
        let drop = self.gaps.len() - max_blocks;
        // The oldest dropped gap is the lowest: latest becomes the packet just below it.
        let lowest_dropped = &self.gaps[drop - 1];
        self.latest = lowest_dropped.missing.start - 1;
        self.received_at = lowest_dropped.prev_received_at;
        self.gaps.drain(..drop);
    }
}

/// The receiver's record of which packets arrived, in the shape acks need.
#[derive(Debug, Clone)]
pub(crate) struct RecvPacketTracker {
    /// Highest packet number recorded (the handshake implies packet 1).
    highest: u64,
    /// When `highest` was recorded.
    highest_at: Timestamp,
    /// Packets below this are never reported (the sender's stop_waiting).
    min_to_ack: u64,
    /// The packet whose stop_waiting set `min_to_ack`.
    min_set_by: u64,
    /// Missing ranges, ascending, all within `min_to_ack..highest`.
    gaps: Vec<Gap>,
}

impl RecvPacketTracker {
    /// A tracker that has (implicitly) received `initial_highest` at `now`: 1 for peers whose
    /// handshake implies packet 1 (protocol ≥ 10), else 0.
    pub(crate) fn new(now: Timestamp, initial_highest: u64) -> Self {
        RecvPacketTracker {
            highest: initial_highest,
            highest_at: now,
            min_to_ack: 0,
            min_set_by: 0,
            gaps: Vec::new(),
        }
    }

    /// Frees the gap list's capacity when it is empty (idle connections).
    pub(crate) fn release_idle(&mut self) {
        if self.gaps.is_empty() {
            self.gaps = Vec::new();
        }
    }

    /// Highest packet recorded.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// The stop_waiting minimum: packets below it are forgotten.
    #[cfg(test)]
    pub(crate) fn min_to_ack(&self) -> u64 {
        self.min_to_ack
    }

    /// Number of gaps currently tracked.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn gap_count(&self) -> usize {
        self.gaps.len()
    }

    /// Whether `pkt` has been recorded; packets below the minimum count as recorded.
    pub(crate) fn is_received(&self, pkt: u64) -> bool {
        pkt < self.min_to_ack || (pkt <= self.highest && self.gap_index(pkt).is_none())
    }

    fn gap_index(&self, pkt: u64) -> Option<usize> {
        let i = self.gaps.partition_point(|g| g.end <= pkt);
        (i < self.gaps.len() && self.gaps[i].begin <= pkt).then_some(i)
    }

    /// Records a fully processed packet so it will be acked.
    // GNS: CSteamNetworkConnectionBase::SNP_RecordReceivedPktNum
    pub(crate) fn record(&mut self, now: Timestamp, pkt: u64) -> RecordOutcome {
        if pkt < self.min_to_ack {
            return RecordOutcome::BelowMinimum;
        }
        if pkt > self.highest {
            let begin = (self.highest + 1).max(self.min_to_ack);
            if begin < pkt {
                self.gaps.push(Gap {
                    begin,
                    end: pkt,
                    prev_received_at: self.highest_at,
                    nack_at: now + NACK_FLUSH_DELAY,
                    announced: false,
                });
                if self.gaps.len() > MAX_TRACKED_GAPS {
                    self.merge_two_oldest();
                }
            }
            self.highest = pkt;
            self.highest_at = now;
            return RecordOutcome::New;
        }
        let Some(i) = self.gap_index(pkt) else {
            return RecordOutcome::Duplicate;
        };
        let g = self.gaps[i];
        match (pkt == g.begin, pkt + 1 == g.end) {
            (true, true) => {
                self.gaps.remove(i);
            }
            (true, false) => {
                self.gaps[i].begin = pkt + 1;
                self.gaps[i].prev_received_at = now;
            }
            (false, true) => self.gaps[i].end = pkt,
            (false, false) => {
                self.gaps[i].end = pkt;
                let upper = Gap {
                    begin: pkt + 1,
                    prev_received_at: now,
                    ..g
                };
                self.gaps.insert(i + 1, upper);
                if self.gaps.len() > MAX_TRACKED_GAPS {
                    self.merge_two_oldest();
                }
            }
        }
        RecordOutcome::New
    }

    /// Merges the two oldest gaps: the received packets between them will be NACKed (§4.11).
    fn merge_two_oldest(&mut self) {
        let second = self.gaps.remove(1);
        let first = &mut self.gaps[0];
        first.end = second.end;
        first.nack_at = first.nack_at.min(second.nack_at);
        first.announced &= second.announced;
    }

    /// Applies a decoded stop_waiting offset `offset` carried by packet `pkt` (§4.8).
    // GNS: CSteamNetworkConnectionBase::ProcessPlainTextDataChunk (stop_waiting frame)
    pub(crate) fn apply_stop_waiting(
        &mut self,
        pkt: u64,
        offset: u64,
    ) -> Result<(), StopWaitingError> {
        let Some(min) = pkt.checked_sub(offset).and_then(|v| v.checked_sub(1)) else {
            return Err(StopWaitingError::Negative {
                packet: pkt,
                offset,
            });
        };
        let min = min.min(self.highest);
        if min == self.min_to_ack {
            return Ok(());
        }
        if min < self.min_to_ack {
            return if pkt > self.min_set_by {
                Err(StopWaitingError::MovedBackwards { packet: pkt })
            } else {
                Ok(())
            };
        }
        self.min_to_ack = min;
        self.min_set_by = pkt;
        let drop = self.gaps.partition_point(|g| g.end <= min);
        self.gaps.drain(..drop);
        if let Some(g) = self.gaps.first_mut() {
            g.begin = g.begin.max(min);
        }
        Ok(())
    }

    /// The ack to send at `now`: gaps past their NACK delay, with `latest` lowered below the
    /// first gap that is not yet reportable.
    // GNS: CSteamNetworkConnectionBase::SNP_GatherAckBlocks
    pub(crate) fn ack_input(&self, now: Timestamp) -> AckInput {
        let mut latest = self.highest;
        let mut received_at = self.highest_at;
        let mut reportable = self.gaps.len();
        if let Some(i) = self.gaps.iter().position(|g| g.nack_at > now) {
            reportable = i;
            latest = self.gaps[i].begin - 1;
            received_at = self.gaps[i].prev_received_at;
        }
        let gaps = self.gaps[..reportable]
            .iter()
            .rev()
            .map(|g| AckGap {
                missing: g.begin..g.end,
                prev_received_at: g.prev_received_at,
            })
            .collect();
        AckInput {
            latest,
            received_at,
            gaps,
        }
    }

    /// When a gap first becomes NACKable and has not been announced: GNS wakes up then to
    /// send a packet even without data.
    pub(crate) fn next_nack_flush(&self) -> Option<Timestamp> {
        self.gaps
            .iter()
            .filter(|g| !g.announced)
            .map(|g| g.nack_at)
            .min()
    }

    /// Notes that an ack built at `now` went out, so reportable gaps stop asking for a wakeup.
    pub(crate) fn on_ack_sent(&mut self, now: Timestamp) {
        for g in self.gaps.iter_mut().filter(|g| g.nack_at <= now) {
            g.announced = true;
        }
    }
}

/// When the receiver must flush an ack (§4.11): the earliest of the deadlines raised since the
/// last ack went out.
#[derive(Debug, Clone, Default)]
pub(crate) struct AckDeadline {
    at: Option<Timestamp>,
}

impl AckDeadline {
    /// No ack owed.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The earliest time an ack must go out, if one is owed.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        self.at
    }

    /// Whether an ack is owed by `now`.
    #[cfg(test)]
    pub(crate) fn is_due(&self, now: Timestamp) -> bool {
        self.at.is_some_and(|t| t <= now)
    }

    fn raise(&mut self, t: Timestamp) {
        self.at = Some(self.at.map_or(t, |cur| cur.min(t)));
    }

    /// Reliable data arrived: ack within [`DATA_ACK_DELAY`] (GNS: 50 ms).
    pub(crate) fn on_reliable_data(&mut self, now: Timestamp) {
        self.raise(now + DATA_ACK_DELAY);
    }

    /// The peer set ACK_REQUEST_E2E: ack within 50 ms.
    pub(crate) fn on_ack_request_e2e(&mut self, now: Timestamp) {
        self.raise(now + MAX_DATA_ACK_DELAY);
    }

    /// The peer set ACK_REQUEST_IMMEDIATE: ack now.
    pub(crate) fn on_ack_request_immediate(&mut self, now: Timestamp) {
        self.raise(now);
    }

    /// We received an ack with `blocks` > 0 blocks: flush within 250 ms / N so the peer's
    /// stop_waiting moves forward and its blocks shrink.
    pub(crate) fn on_ack_with_blocks(&mut self, now: Timestamp, blocks: u32) {
        if blocks > 0 {
            self.raise(now + ACK_BLOCKS_FLUSH_BUDGET / blocks);
        }
    }

    /// We left a packet unacked on purpose: re-ack within 2 × (ping + 5 ms), ping clamped to
    /// 100 ms (100 ms when unknown).
    pub(crate) fn on_packet_left_unacked(&mut self, now: Timestamp, ping: Option<Duration>) {
        let ping = ping.unwrap_or(UNACKED_PING_CAP).min(UNACKED_PING_CAP);
        self.raise(now + (ping + UNACKED_PING_SLACK) * 2);
    }

    /// An ack went out: nothing is owed any more.
    pub(crate) fn on_ack_sent(&mut self) {
        self.at = None;
    }
}

#[cfg(test)]
mod tests;
