//! Receive side (spec §4.2-4.11): frame processing, delivery, and what gets acked.
//!
//! A packet's frames are decoded and applied one at a time, in order (any decode error kills
//! the connection, so partial effects do not matter). The packet is recorded for acking
//! only if everything in it was ingested; otherwise it stays a gap, the peer's sender treats
//! it as lost and retransmits, and an ack is scheduled soon so the peer learns quickly:
//!
//! ```text
//!  plaintext ─► FrameCursor ─► [StopWaiting → tracker] [Ack → SentPackets → send side]
//!                               [Unreliable → Reassembly ─┐] [Reliable → RecvStream ─┐]
//!                                                         ▼                          ▼
//!                                           receive queue (count + bytes limit) ◄── headers
//! ```
//!
//! Reliable messages leave their stream only while the receive queue has room, so an
//! application that stops polling fills the stream buffer and the peer is throttled by
//! unacked packets, as in GNS.

use std::collections::VecDeque;
use std::ops::Range;

use super::packet::ack_delay;
use super::send::SendState;
use super::{AckRequest, ReceivedMessage, RecvSummary, SnpConfig, SnpError};
use crate::proto::ping::PingTracker;
use crate::proto::reassembly::{Reassembled, Reassembly};
use crate::proto::recv_packets::{AckDeadline, RecordOutcome, RecvPacketTracker};
use crate::proto::recv_stream::{RecvStream, STREAM_START, SegmentRejected};
use crate::proto::sent_packets::{AckRanges, SentPackets};
use crate::time::Timestamp;
use crate::wire::frame::{Frame, FrameCursor, FrameRefs, PacketEncoder, decode_reliable_header};

/// Largest reliable message-number delta a header may carry (§4.6).
const MAX_RELIABLE_DELTA: u64 = 1_000_000;
/// How far past the highest seen number a reliable message may land (§4.6).
const MAX_RELIABLE_AHEAD: u64 = 10_000;

/// The sender's state an incoming ack updates.
pub(crate) struct SendSide<'a> {
    pub sent: &'a mut SentPackets,
    pub send: &'a mut SendState,
    pub ping: &'a mut PingTracker,
    pub recovery: &'a mut super::recovery::Recovery,
    pub bucket: &'a mut crate::proto::send_rate::TokenBucket,
}

#[derive(Debug)]
struct RecvLane {
    stream: RecvStream,
    reassembly: Reassembly,
    highest_msg_num: u64,
    last_reliable_num: u64,
}

/// Decoder references over the lane table, snapshotted per packet.
struct Refs<'a> {
    next: u64,
    lanes: &'a [RecvLane],
}

impl FrameRefs for Refs<'_> {
    fn next_packet_number(&self) -> u64 {
        self.next
    }
    fn message_number_ref(&self, lane: u8) -> u64 {
        self.lanes
            .get(usize::from(lane))
            .map_or(0, |l| l.highest_msg_num)
    }
    fn stream_pos_ref(&self, lane: u8) -> u64 {
        self.lanes
            .get(usize::from(lane))
            .map_or(STREAM_START, |l| l.stream.end())
    }
}

/// Receive counters for statistics and the detailed status.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvCounts {
    /// Data packets processed (duplicates of a packet number excluded).
    pub packets: u64,
    /// Packets not taken for want of room (receive limits): left unacked for a resend.
    pub left_unacked: u64,
    /// Packet numbers skipped (lost or late).
    pub skipped: u64,
    /// Packets that arrived below the highest number seen.
    pub out_of_order: u64,
}

/// Completed messages waiting for `poll_message`, and their payload bytes.
#[derive(Debug, Default)]
struct Ready {
    queue: VecDeque<ReceivedMessage>,
    bytes: usize,
}

impl Ready {
    /// Whether one more message of `size` stays within the receive limits.
    fn has_room(&self, size: usize, max_messages: u32, max_bytes: u32) -> bool {
        self.queue.len() < max_messages as usize && self.bytes + size <= max_bytes as usize
    }

    fn push(&mut self, m: ReceivedMessage) {
        self.bytes += m.data.len();
        self.queue.push_back(m);
    }

    fn pop(&mut self) -> Option<ReceivedMessage> {
        let m = self.queue.pop_front()?;
        self.bytes -= m.data.len();
        Some(m)
    }
}

/// Everything the receiver keeps.
#[derive(Debug)]
pub(crate) struct RecvState {
    tracker: RecvPacketTracker,
    deadline: AckDeadline,
    lanes: Vec<RecvLane>,
    ready: Ready,
    // The limits as u32 (GNS's are int32 settings): 12 bytes less per connection than usize.
    buffer_size: u32,
    buffer_messages: u32,
    max_message: u32,
    /// Segments per packet at most (a config limit).
    max_segments: u32,
    /// A sanity failure found while refilling the queue from `poll_message`.
    deferred: Option<SnpError>,
    /// A reliable message stopped in its stream for want of room in `ready`: taking one out
    /// (`poll_message`) may let it through. Otherwise a stream holds no complete message
    /// (extraction runs whenever a segment arrives), so a take need not look.
    room_blocked: bool,
    pub counts: RecvCounts,
}

impl RecvState {
    pub(super) fn new(now: Timestamp, config: &SnpConfig) -> Self {
        let mut s = RecvState {
            tracker: RecvPacketTracker::new(now, 1),
            deadline: AckDeadline::new(),
            lanes: Vec::new(),
            ready: Ready::default(),
            buffer_size: 0,
            buffer_messages: 0,
            max_message: 0,
            max_segments: 0,
            deferred: None,
            room_blocked: false,
            counts: RecvCounts::default(),
        };
        s.take_limits(config);
        s
    }

    /// Copies the receive limits from `config` (u32: larger values saturate).
    fn take_limits(&mut self, config: &SnpConfig) {
        let limit = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        self.buffer_size = limit(config.recv_buffer_size);
        self.buffer_messages = limit(config.recv_buffer_messages);
        self.max_message = limit(config.recv_max_message_size);
        self.max_segments = limit(config.recv_max_segments_per_packet);
    }

    /// Takes new receive limits, for the lanes' streams too (queued and buffered bytes stay).
    /// Raised limits may make room for complete messages already waiting in a reliable
    /// stream: they move to the queue now, since their packets were acked and no
    /// retransmission will come to move them later.
    pub(super) fn set_limits(&mut self, config: &SnpConfig) {
        self.take_limits(config);
        for lane in &mut self.lanes {
            lane.stream.set_limit(self.buffer_size as usize);
        }
        self.refill();
    }

    /// Moves what fits from every lane's reliable stream to the queue, if a message waits
    /// there for room (`room_blocked`); a sanity failure is kept for the next
    /// `receive_packet`.
    fn refill(&mut self) {
        if self.deferred.is_none() && std::mem::take(&mut self.room_blocked) {
            for lane in 0..self.lanes.len() {
                if let Err(e) = self.extract(lane as u8) {
                    self.deferred = Some(e);
                    break;
                }
            }
        }
    }

    pub(super) fn ack_deadline(&self) -> Option<Timestamp> {
        self.deadline.deadline()
    }

    pub(super) fn next_nack_flush(&self) -> Option<Timestamp> {
        self.tracker.next_nack_flush()
    }

    /// Lane `lane`, made on first use. Inlined (it runs per segment); the growth is not.
    #[inline]
    fn lane(&mut self, lane: u8) -> &mut RecvLane {
        let i = usize::from(lane);
        if i >= self.lanes.len() {
            self.add_lanes(i);
        }
        &mut self.lanes[i]
    }

    /// Adds lanes up to index `i`.
    #[cold]
    #[inline(never)]
    fn add_lanes(&mut self, i: usize) {
        // Exactly the lanes used (a push would reserve four).
        self.lanes.reserve_exact(i + 1 - self.lanes.len());
        while self.lanes.len() <= i {
            self.lanes.push(RecvLane {
                stream: RecvStream::new(self.buffer_size as usize),
                reassembly: Reassembly::new(),
                highest_msg_num: 0,
                last_reliable_num: 0,
            });
        }
    }

    /// Frees the capacity of the empty queue, streams, reassembly buffers and gap list
    /// (idle connections, issue 16).
    pub(super) fn release_idle(&mut self) {
        if self.ready.queue.is_empty() {
            self.ready.queue = VecDeque::new();
        }
        for lane in &mut self.lanes {
            lane.stream.release_idle();
            lane.reassembly.release_idle();
        }
        self.tracker.release_idle();
    }

    /// Processes one packet (see the module docs).
    // GNS: CSteamNetworkConnectionBase::ProcessPlainTextDataChunk
    pub(super) fn receive_packet(
        &mut self,
        now: Timestamp,
        pkt: u64,
        plaintext: &[u8],
        ack_request: AckRequest,
        side: &mut SendSide<'_>,
    ) -> Result<RecvSummary, SnpError> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let mut summary = RecvSummary::default();
        if self.tracker.is_received(pkt) {
            summary.duplicate = true;
            return Ok(summary);
        }
        let queued_before = self.ready.queue.len();
        let mut ingested = true;
        let mut segments = 0usize;
        // Each frame is applied before the next is decoded, as GNS does: a lane revisited
        // later in the packet is decoded against what its earlier segments left. A decode
        // error ends the connection (§4.2), so what came before it need not be undone.
        let next_packet = side.sent.next_packet_number();
        let mut cursor = FrameCursor::new(plaintext, pkt);
        loop {
            let refs = Refs {
                next: next_packet,
                lanes: &self.lanes,
            };
            let Some(f) = cursor.next_frame(&refs) else {
                break;
            };
            match f? {
                Frame::StopWaiting(sw) => self.tracker.apply_stop_waiting(pkt, sw.value)?,
                Frame::Ack(a) => {
                    if a.latest >= next_packet {
                        // GNS ignores the rest of the packet and does not ack it.
                        summary.new_messages = self.ready.queue.len() - queued_before;
                        return Ok(summary);
                    }
                    let mut ranges = AckRanges {
                        latest: a.latest,
                        delay_usec: a.delay_usec(),
                        acked: Default::default(),
                        nacked: Default::default(),
                    };
                    for b in a.blocks() {
                        ranges.acked.push(b.acked);
                        ranges.nacked.push(b.nacked);
                    }
                    let loss_delay = side.recovery.rtt.loss_delay();
                    if let Ok(out) = side.sent.apply_ack(now, &ranges, loss_delay) {
                        if let Some(rtt) = out.rtt {
                            side.ping.record_sample(now, rtt);
                        }
                        side.send.on_acked(&out.acked);
                        side.send.on_lost(&out.lost.segments);
                        side.recovery.on_ack(now, &out, side.bucket);
                    }
                    self.deadline
                        .on_ack_with_blocks(now, u32::from(a.block_count));
                }
                Frame::SelectLane { .. } => {}
                Frame::Unreliable(u) => {
                    segments += 1;
                    if segments > self.max_segments as usize {
                        ingested = false;
                        break;
                    }
                    let lane = self.lane(u.lane);
                    lane.highest_msg_num = lane.highest_msg_num.max(u.msg_num);
                    let done =
                        match lane
                            .reassembly
                            .insert(u.msg_num, u.offset, u.data, u.end_of_message)
                        {
                            Reassembled::Complete { msg_num, data } => Some((
                                msg_num,
                                match data {
                                    std::borrow::Cow::Borrowed(d) => crate::buffers::copy_of(d),
                                    std::borrow::Cow::Owned(v) => v,
                                },
                            )),
                            Reassembled::Buffered | Reassembled::Ignored(_) => None,
                        };
                    if let Some((msg_num, data)) = done {
                        if !self
                            .ready
                            .has_room(data.len(), self.buffer_messages, self.buffer_size)
                        {
                            ingested = false;
                            break;
                        }
                        self.ready.push(ReceivedMessage {
                            lane: u.lane,
                            msg_num,
                            reliable: false,
                            data,
                        });
                    }
                }
                Frame::Reliable(r) => {
                    segments += 1;
                    if segments > self.max_segments as usize {
                        ingested = false;
                        break;
                    }
                    summary.reliable_data = true;
                    match self.lane(r.lane).stream.insert(r.stream_pos, r.data) {
                        Ok(_) => {}
                        Err(SegmentRejected::InvalidPosition) => {
                            return Err(SnpError::Decode(
                                crate::wire::frame::FrameError::StreamPositionNotPositive,
                            ));
                        }
                        Err(_) => {
                            ingested = false;
                            break;
                        }
                    }
                    self.extract(r.lane)?;
                }
            }
        }
        self.counts.packets += 1;
        if ingested {
            let highest = self.tracker.highest();
            if self.tracker.record(now, pkt) == RecordOutcome::New {
                if pkt > highest + 1 {
                    self.counts.skipped += pkt - highest - 1;
                } else if pkt < highest {
                    self.counts.out_of_order += 1;
                }
            }
            summary.acked = true;
            if summary.reliable_data {
                self.deadline.on_reliable_data(now);
            }
        } else {
            self.counts.left_unacked += 1;
            self.deadline
                .on_packet_left_unacked(now, side.ping.smoothed());
        }
        match ack_request {
            AckRequest::None => {}
            AckRequest::E2e => self.deadline.on_ack_request_e2e(now),
            AckRequest::Immediate => self.deadline.on_ack_request_immediate(now),
        }
        summary.new_messages = self.ready.queue.len() - queued_before;
        Ok(summary)
    }

    /// Moves complete reliable messages from `lane`'s stream to the queue while it has room,
    /// checking each header's sanity (§4.6).
    fn extract(&mut self, lane: u8) -> Result<(), SnpError> {
        self.lane(lane);
        let (buffer_size, buffer_messages, max_message) =
            (self.buffer_size, self.buffer_messages, self.max_message);
        // The lane and the queue borrowed apart, once for the whole run of messages.
        let RecvState {
            lanes,
            ready,
            room_blocked,
            ..
        } = self;
        let Some(l) = lanes.get_mut(usize::from(lane)) else {
            return Ok(());
        };
        loop {
            let buf = l.stream.readable();
            let Some(h) = decode_reliable_header(buf)? else {
                return Ok(());
            };
            let (last, highest) = (l.last_reliable_num, l.highest_msg_num);
            let num = last.saturating_add(h.msg_num_delta);
            if h.msg_num_delta > MAX_RELIABLE_DELTA
                || num > highest.max(last).saturating_add(MAX_RELIABLE_AHEAD)
            {
                return Err(SnpError::ReliableHeaderInsane { lane });
            }
            if h.size > u64::from(buffer_size) || h.size > u64::from(max_message) {
                return Err(SnpError::MessageTooLarge { lane, size: h.size });
            }
            let size = h.size as usize; // ≤ buffer size, fits
            let total = h.header_len + size;
            if buf.len() < total {
                return Ok(());
            }
            if !ready.has_room(size, buffer_messages, buffer_size) {
                *room_blocked = true;
                return Ok(());
            }
            let data = crate::buffers::copy_of(&buf[h.header_len..total]);
            l.stream.consume(total);
            l.last_reliable_num = num;
            l.highest_msg_num = highest.max(num);
            ready.push(ReceivedMessage {
                lane,
                msg_num: num,
                reliable: true,
                data,
            });
        }
    }

    /// What the receive side holds, for the fuzz harness's memory bounds.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn held(&self) -> super::RecvHeld {
        super::RecvHeld {
            lanes: self.lanes.len(),
            stream_max: self
                .lanes
                .iter()
                .map(|l| l.stream.buffered_len())
                .max()
                .unwrap_or(0),
            stream_gaps_max: self
                .lanes
                .iter()
                .map(|l| l.stream.gap_count())
                .max()
                .unwrap_or(0),
            reassembly_max: self
                .lanes
                .iter()
                .map(|l| l.reassembly.buffered_segments())
                .max()
                .unwrap_or(0),
            queue_bytes: self.ready.bytes,
            queue_messages: self.ready.queue.len(),
            packet_gaps: self.tracker.gap_count(),
        }
    }

    /// Whether `poll_message` has a message ready without refilling from a stream.
    pub(super) fn has_message(&self) -> bool {
        !self.ready.queue.is_empty()
    }

    /// The next delivered message; refills the queue from the reliable streams.
    pub(super) fn poll_message(&mut self) -> Option<ReceivedMessage> {
        let m = self.ready.pop()?;
        self.refill();
        Some(m)
    }

    /// Writes the ack frame into `out` within `budget` bytes and marks acks as sent.
    // GNS: CSteamNetworkConnectionBase::SNP_SerializeAckBlocks
    pub(super) fn write_ack(&mut self, now: Timestamp, out: &mut Vec<u8>, budget: usize) {
        let input = self.tracker.ack_input(now);
        let gaps: Vec<Range<u64>> = input.gaps.iter().rev().map(|g| g.missing.clone()).collect();
        let mark = out.len();
        let delay = ack_delay(now, input.received_at);
        let Ok(written) = PacketEncoder::new(out).ack_for_gaps(input.latest, &gaps, delay, budget)
        else {
            return;
        };
        if written != input.latest {
            // Newest gaps did not fit: the delay must be that of the packet stated as latest.
            let at = input
                .gaps
                .iter()
                .find(|g| g.missing.start.checked_sub(1) == Some(written))
                .map_or(input.received_at, |g| g.prev_received_at);
            out.truncate(mark);
            let delay = ack_delay(now, at);
            if PacketEncoder::new(out)
                .ack_for_gaps(input.latest, &gaps, delay, budget)
                .is_err()
            {
                return;
            }
        }
        self.tracker.on_ack_sent(now);
        self.deadline.on_ack_sent();
    }
}
