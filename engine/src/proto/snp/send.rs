//! Send-side message state: per-lane queues, reliable stream positions, the segments sent and
//! not yet acked, and the retry sets (spec §4.6, §4.12, §4.16, §4.17).
//!
//! A reliable message is framed (header + payload) straight into its lane's stream buffer
//! and given its stream range when queued. Packet assembly cuts the stream into segments
//! (one segment may span several consecutive messages, see `SnpConfig::coalesce_reliable`);
//! each segment's exact range is remembered until it is acked, and a NACK or RTO puts it in
//! its lane's retry set, from which it is resent with the same range and a new packet number.
//! The buffer keeps every byte from the lowest unacked segment on, so a retry is one slice:
//!
//! ```text
//!  lane stream:  [msg 1 ][msg 2][msg 3][    msg 4     ][msg 5 ...   (queue head, partly sent)
//!  segs:         [s1    ][s2               ][s3  ][s4 ][s5 ]
//!  state:         acked   in flight         retry  in flight         copies: packets unacked
//!  buffer:                [ kept from the first unacked segment to the end ...
//! ```
//!
//! A segment counts how many packets carrying it are still in flight (`copies`); it joins the
//! retry set only when the last copy is reported lost, so an old packet's NACK cannot queue a
//! segment whose retransmission is still on its way.

use std::collections::{BTreeSet, VecDeque};

use crate::proto::recv_stream::STREAM_START;
use crate::proto::sent_packets::SegmentRef;
use crate::proto::seq_map::SeqMap;
use crate::time::Timestamp;
use crate::wire::frame::write_reliable_header;

/// A queued message, not yet fully cut into segments.
#[derive(Debug, Clone)]
pub(crate) struct OutMsg {
    /// Connection-wide enqueue order, for Nagle.
    pub seq: u64,
    /// When Nagle lets it go.
    pub nagle_at: Timestamp,
    /// When it was queued (for `SnpConfig::unreliable_max_age`).
    pub queued_at: Timestamp,
    /// Lane message number.
    pub msg_num: u64,
    /// Reliable (framed in the lane's stream buffer) or unreliable.
    pub reliable: bool,
    /// Unreliable: the payload (small ones in the caller's buffer; see `MOVE_UNRELIABLE_MAX`),
    /// which moves on into the packet that carries the message's last byte. Reliable: `None`,
    /// the bytes are in the lane's stream buffer.
    pub data: Option<Vec<u8>>,
    /// Reliable: header + payload bytes; unreliable: payload bytes.
    pub len: usize,
    /// Bytes already put in packets.
    pub sent: usize,
    /// Reliable: stream position of the first header byte.
    pub stream_pos: u64,
}

impl OutMsg {
    pub(super) fn remaining(&self) -> usize {
        self.len - self.sent
    }
}

/// Reliable messages join a lane's last queue entry up to this many bytes in all (see
/// `SendState::enqueue`): about one packet's data, so lanes and the packet builder still see
/// entries no coarser than a packet.
pub(super) const JOIN_MAX: usize = 1024;

/// What [`SendState::enqueue`] did with a message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Enqueued {
    /// Its lane message number.
    pub msg_num: u64,
    /// Its queued size (reliable: with its header).
    pub size: u32,
    /// It joined the lane's last queue entry instead of adding one (only on a single lane,
    /// where the scheduler keeps no entries).
    pub joined: bool,
}

/// Unreliable payloads up to this size are queued in the caller's own buffer; larger ones are
/// copied to an exact-size one once the lane holds [`MOVE_UNRELIABLE_QUEUE`] unsent unreliable
/// bytes (see `SendState::enqueue`).
const MOVE_UNRELIABLE_MAX: usize = 256;

/// Below this many unsent unreliable bytes on a lane, even a large payload moves in in the
/// caller's (pooled, up to twice as large) buffer: an echo of 1 KiB messages then costs no
/// allocation, copy and free per message, and the extra memory stays under this bound.
const MOVE_UNRELIABLE_QUEUE: usize = 64 * 1024;

/// Buffer bytes released before the stream buffer is compacted (amortises the move). It is
/// compacted once the released prefix is also three quarters of the buffer: at most 1/3 byte
/// moved per byte released (half: up to 1; 3.1 % fewer instructions per 1 KiB reliable
/// message in `sim_transfer`), for a buffer up to 4x its live bytes while data flows.
const COMPACT_MIN: usize = 16 * 1024;

/// A sent, unacked reliable segment.
#[derive(Debug, Clone, Copy)]
struct SentSeg {
    end: u64,
    copies: u32,
    in_retry: bool,
}

/// One lane's send state.
#[derive(Debug, Clone)]
pub(crate) struct SendLane {
    next_msg_num: u64,
    last_reliable_num: u64,
    next_stream_pos: u64,
    pub queue: VecDeque<OutMsg>,
    /// Reliable stream bytes from `stream_base` on are `stream[stream_head..]`.
    stream: Vec<u8>,
    stream_head: usize,
    stream_base: u64,
    /// Unacked segments by their first stream position (new segments start past every
    /// segment held: the stream is cut in order, and a retry reuses its segment's entry).
    segs: SeqMap<SentSeg>,
    retry: BTreeSet<u64>,
    pub unsent_reliable: u64,
    pub unsent_unreliable: u64,
    pub retry_bytes: u64,
    /// Sent, not acked, not queued for retry.
    pub in_flight_bytes: u64,
}

impl SendLane {
    fn new() -> Self {
        Self::resumed(ParkedLane::START)
    }

    /// An empty lane whose numbering continues from `p`.
    fn resumed(p: ParkedLane) -> Self {
        SendLane {
            next_msg_num: p.next_msg_num,
            last_reliable_num: p.last_reliable_num,
            next_stream_pos: p.next_stream_pos,
            queue: VecDeque::new(),
            stream: Vec::new(),
            stream_head: 0,
            stream_base: p.next_stream_pos,
            segs: SeqMap::default(),
            retry: BTreeSet::new(),
            unsent_reliable: 0,
            unsent_unreliable: 0,
            retry_bytes: 0,
            in_flight_bytes: 0,
        }
    }

    /// The bytes of stream range `[begin, end)` (any range of queued, unacked or unsent
    /// bytes, across message boundaries); `None` if part of it was released or never queued.
    pub(super) fn stream_bytes(&self, begin: u64, end: u64) -> Option<&[u8]> {
        let from = usize::try_from(begin.checked_sub(self.stream_base)?).ok()?;
        let to = usize::try_from(end.checked_sub(self.stream_base)?).ok()?;
        self.stream
            .get(self.stream_head + from..self.stream_head + to)
    }

    /// Releases the stream bytes below the lowest unacked segment and the first unsent byte.
    fn release(&mut self) {
        let unsent = self.next_stream_pos - self.unsent_reliable;
        let keep = self.segs.first().map_or(unsent, |(b, _)| b.min(unsent));
        let Some(n) = keep
            .checked_sub(self.stream_base)
            .and_then(|n| usize::try_from(n).ok())
        else {
            return;
        };
        self.stream_base = keep;
        self.stream_head += n;
        if self.stream_head == self.stream.len() {
            self.stream.clear();
            self.stream_head = 0;
        } else if self.stream_head >= COMPACT_MIN && self.stream_head * 4 >= self.stream.len() * 3 {
            self.stream.drain(..self.stream_head);
            self.stream_head = 0;
        }
    }

    /// Frees the capacity of whatever is empty (idle connections, issue 16).
    fn release_idle(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
        if self.stream_head == self.stream.len() {
            // Nothing from `stream_base` on: an empty buffer says the same.
            self.stream = Vec::new();
            self.stream_head = 0;
        }
        self.segs.release_if_empty();
        if self.retry.is_empty() {
            self.retry = BTreeSet::new();
        }
    }

    /// Retry segments in stream order: (begin, end).
    pub(super) fn retries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.retry
            .iter()
            .filter_map(|&b| self.segs.get(b).map(|s| (b, s.end)))
    }

    /// A segment went out in a packet (new or retried).
    pub(super) fn on_segment_sent(&mut self, begin: u64, end: u64) {
        let len = end - begin;
        match self.segs.get_mut(begin) {
            Some(s) => {
                s.copies += 1;
                if s.in_retry {
                    s.in_retry = false;
                    self.retry.remove(&begin);
                    self.retry_bytes -= len;
                    self.in_flight_bytes += len;
                }
            }
            None => {
                let fresh = self.segs.insert(
                    begin,
                    SentSeg {
                        end,
                        copies: 1,
                        in_retry: false,
                    },
                );
                // A new segment starts where the stream was last cut, past every segment held;
                // the map refuses (and debug builds assert) anything else.
                if fresh {
                    self.in_flight_bytes += len;
                }
            }
        }
    }

    fn on_acked(&mut self, begin: u64, end: u64) {
        let Some(s) = self.segs.get(begin).copied() else {
            return;
        };
        if s.end != end {
            return;
        }
        self.segs.remove(begin);
        let len = end - begin;
        if s.in_retry {
            self.retry.remove(&begin);
            self.retry_bytes -= len;
        } else {
            self.in_flight_bytes -= len;
        }
        self.release();
    }

    fn on_lost(&mut self, begin: u64, end: u64) {
        let Some(s) = self.segs.get_mut(begin) else {
            return;
        };
        if s.end != end {
            return;
        }
        s.copies = s.copies.saturating_sub(1);
        if s.copies == 0 && !s.in_retry {
            s.in_retry = true;
            self.retry.insert(begin);
            let len = end - begin;
            self.in_flight_bytes -= len;
            self.retry_bytes += len;
        }
    }
}

/// The send state of all lanes.
#[derive(Debug, Clone)]
pub(crate) struct SendState {
    /// Empty while the default single lane is parked (idle connections, issue 16): its
    /// numbering is then in `parked`, and [`SendState::unpark`] brings the lane back.
    pub lanes: Vec<SendLane>,
    /// Lane 0's numbering while `lanes` is empty.
    parked: ParkedLane,
    next_seq: u64,
    /// Messages with `seq` below this ignore Nagle (NoNagle or flush).
    nagle_cleared_below: u64,
}

/// What an idle lane must remember: everything else of an idle lane is empty or derived.
#[derive(Debug, Clone, Copy)]
struct ParkedLane {
    next_msg_num: u64,
    last_reliable_num: u64,
    next_stream_pos: u64,
}

impl ParkedLane {
    /// A new lane's numbering: messages from 1, the stream from its start.
    const START: ParkedLane = ParkedLane {
        next_msg_num: 1,
        last_reliable_num: 0,
        next_stream_pos: STREAM_START,
    };
}

impl SendState {
    pub(super) fn new() -> Self {
        // Parked from the start: a connection allocates its lane with its first message.
        SendState {
            lanes: Vec::new(),
            parked: ParkedLane::START,
            next_seq: 0,
            nagle_cleared_below: 0,
        }
    }

    pub(super) fn ensure_lanes(&mut self, n: usize) {
        self.lanes.reserve_exact(n.saturating_sub(self.lanes.len()));
        while self.lanes.len() < n {
            self.lanes.push(SendLane::new());
        }
    }

    /// Frees the capacity of every lane's empty queues and tables (idle connections).
    pub(super) fn release_idle(&mut self) {
        for lane in &mut self.lanes {
            lane.release_idle();
        }
    }

    /// Whether the lanes are parked ([`SendState::park`]).
    pub(super) fn is_parked(&self) -> bool {
        self.lanes.is_empty()
    }

    /// Parks a single idle lane (nothing queued, in flight or buffered): keeps its numbering
    /// and frees the lane (176 bytes of an idle connection). Returns whether it parked.
    pub(super) fn park(&mut self) -> bool {
        let [l] = self.lanes.as_slice() else {
            return false;
        };
        let idle = l.queue.is_empty()
            && l.segs.is_empty()
            && l.retry.is_empty()
            && l.stream_head == l.stream.len()
            && l.stream_base == l.next_stream_pos
            && l.unsent_reliable == 0
            && l.unsent_unreliable == 0
            && l.retry_bytes == 0
            && l.in_flight_bytes == 0;
        if !idle {
            return false;
        }
        self.parked = ParkedLane {
            next_msg_num: l.next_msg_num,
            last_reliable_num: l.last_reliable_num,
            next_stream_pos: l.next_stream_pos,
        };
        self.lanes = Vec::new();
        true
    }

    /// Brings a parked lane back, exactly as it was parked.
    pub(super) fn unpark(&mut self) {
        if self.lanes.is_empty() {
            self.lanes = vec![SendLane::resumed(self.parked)];
        }
    }

    /// What the send side holds, for the fuzz harness's memory bounds: (unsent, queued for
    /// retry, in flight, reliable stream bytes kept, queued messages).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn held(&self) -> (u64, u64, u64, u64, usize) {
        self.lanes.iter().fold((0, 0, 0, 0, 0), |acc, l| {
            (
                acc.0 + l.unsent_reliable + l.unsent_unreliable,
                acc.1 + l.retry_bytes,
                acc.2 + l.in_flight_bytes,
                acc.3 + (l.stream.len() - l.stream_head) as u64,
                acc.4 + l.queue.len(),
            )
        })
    }

    /// Bytes `SendBufferSize` counts: unsent plus queued for retry (§4.16).
    pub(super) fn buffered_bytes(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| l.unsent_reliable + l.unsent_unreliable + l.retry_bytes)
            .sum()
    }

    /// Bytes the send buffer holds back from new messages: [`SendState::buffered_bytes`] plus
    /// reliable bytes in flight (sent, not yet acked).
    pub(crate) fn held_bytes(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| l.unsent_reliable + l.unsent_unreliable + l.retry_bytes + l.in_flight_bytes)
            .sum()
    }

    /// Whether nothing is queued (unsent or retry) on any lane.
    pub(super) fn is_empty(&self) -> bool {
        self.buffered_bytes() == 0 && self.lanes.iter().all(|l| l.queue.is_empty())
    }

    pub(super) fn has_retries(&self) -> bool {
        self.lanes.iter().any(|l| !l.retry.is_empty())
    }

    pub(super) fn reliable_pending(&self) -> bool {
        self.lanes
            .iter()
            .any(|l| l.unsent_reliable > 0 || !l.segs.is_empty())
    }

    /// Burns lane `lane`'s next message number (a refused send the caller already numbered).
    pub(super) fn skip_message_number(&mut self, lane: u8) {
        if let Some(l) = self.lanes.get_mut(usize::from(lane)) {
            l.next_msg_num += 1;
        }
    }

    /// Queues a message; returns its number and queued size, and whether it joined the lane's
    /// last queued entry. The lane must exist.
    ///
    /// With `join`, a reliable message joins the entry before it when nothing of that entry is
    /// sent yet, the two are adjacent in the stream, the entry stays under [`JOIN_MAX`] bytes
    /// and both go under the same Nagle rule (both exempt, or the same deadline), so nothing
    /// leaves earlier or later than it would have alone. The packet builder then cuts one run
    /// of stream bytes instead of walking message by message: it cut consecutive messages into
    /// one segment already (`SnpConfig::coalesce_reliable`), so the wire is the same.
    #[expect(
        clippy::too_many_arguments,
        reason = "the message and how it may queue, each a plain value the caller has"
    )]
    pub(super) fn enqueue(
        &mut self,
        now: Timestamp,
        nagle: std::time::Duration,
        lane: u8,
        reliable: bool,
        no_nagle: bool,
        payload: Vec<u8>,
        join: bool,
    ) -> Enqueued {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Entries from here on were queued without an exemption (before this message's own).
        let exempt_below = self.nagle_cleared_below;
        if no_nagle {
            self.nagle_cleared_below = self.next_seq;
        }
        let nagle_at = now + nagle;
        let l = &mut self.lanes[usize::from(lane)];
        let msg_num = l.next_msg_num;
        l.next_msg_num += 1;
        let (data, len, stream_pos) = if reliable {
            // Framed straight into the lane's stream buffer; the caller's payload goes back to
            // the buffer pool (a shard echoing received messages then allocates nothing per
            // message for them).
            let before = l.stream.len();
            write_reliable_header(
                &mut l.stream,
                msg_num - l.last_reliable_num,
                payload.len() as u64,
            );
            l.stream.extend_from_slice(&payload);
            crate::buffers::give(payload);
            let len = l.stream.len() - before;
            l.last_reliable_num = msg_num;
            let pos = l.next_stream_pos;
            l.next_stream_pos += len as u64;
            l.unsent_reliable += len as u64;
            if join
                && let Some(last) = l.queue.back_mut()
                && last.reliable
                && last.sent == 0
                && last.stream_pos + last.len as u64 == pos
                && last.len + len <= JOIN_MAX
                && (no_nagle || (last.nagle_at == nagle_at && last.seq >= exempt_below))
            {
                last.len += len;
                return Enqueued {
                    msg_num,
                    size: len as u32, // ≤ JOIN_MAX
                    joined: true,
                };
            }
            (None, len, pos)
        } else {
            let len = payload.len();
            let data = if len <= MOVE_UNRELIABLE_MAX
                || l.unsent_unreliable < MOVE_UNRELIABLE_QUEUE as u64
            {
                // Small, or a short queue: the caller's buffer moves in and on into the packet
                // (no allocation, no copy, where both used to cost more than the message).
                payload
            } else {
                // Large into a long queue: an exact copy, and the caller's (pooled) buffer goes
                // back at once, so a long queue of them neither doubles its memory nor drains
                // the pool.
                let exact = payload.to_vec();
                crate::buffers::give(payload);
                exact
            };
            l.unsent_unreliable += len as u64;
            (Some(data), len, 0)
        };
        // Sizes are ≤ 512 KiB + header, far below u32::MAX.
        let size = u32::try_from(len).unwrap_or(u32::MAX);
        l.queue.push_back(OutMsg {
            seq,
            nagle_at,
            queued_at: now,
            msg_num,
            reliable,
            data,
            len,
            sent: 0,
            stream_pos,
        });
        Enqueued {
            msg_num,
            size,
            joined: false,
        }
    }

    pub(super) fn flush_nagle(&mut self) {
        self.nagle_cleared_below = self.next_seq;
    }

    /// When queued data is ready to go (ignoring the rate): now for retries, a full packet of
    /// unsent bytes or a Nagle-exempt message; else the oldest message's Nagle deadline.
    // GNS: CSteamNetworkConnectionBase::SNP_GetNextThinkTime
    pub(super) fn data_ready_at(&self, now: Timestamp) -> Option<Timestamp> {
        if self.has_retries() {
            return Some(now);
        }
        let oldest = self
            .lanes
            .iter()
            .filter_map(|l| l.queue.front())
            .min_by_key(|m| m.seq)?;
        let unsent: u64 = self
            .lanes
            .iter()
            .map(|l| l.unsent_reliable + l.unsent_unreliable)
            .sum();
        if oldest.seq < self.nagle_cleared_below
            || unsent >= crate::wire::packet::MAX_PLAINTEXT_SEND as u64
        {
            Some(now)
        } else {
            Some(oldest.nagle_at)
        }
    }

    /// Acked segments: forget them, free fully acked messages.
    pub(super) fn on_acked(&mut self, segs: &[SegmentRef]) {
        for s in segs {
            if let Some(l) = self.lanes.get_mut(usize::from(s.lane.0)) {
                l.on_acked(s.stream.start, s.stream.end);
            }
        }
    }

    /// NACKed or timed-out segments: queue for retry once no copy is in flight.
    pub(super) fn on_lost(&mut self, segs: &[SegmentRef]) {
        for s in segs {
            if let Some(l) = self.lanes.get_mut(usize::from(s.lane.0)) {
                l.on_lost(s.stream.start, s.stream.end);
            }
        }
    }

    /// Records that `n` bytes of `lane`'s head message went out; pops it when done.
    /// Returns whether the message finished.
    pub(super) fn advance_head(&mut self, lane: u8, n: usize) -> bool {
        let l = &mut self.lanes[usize::from(lane)];
        let Some(m) = l.queue.front_mut() else {
            return false;
        };
        m.sent += n;
        if m.reliable {
            l.unsent_reliable -= n as u64;
        } else {
            l.unsent_unreliable -= n as u64;
        }
        if m.sent >= m.len {
            l.queue.pop_front();
            true
        } else {
            false
        }
    }

    /// Oldest queued message's enqueue order per lane, for status queue times.
    pub(super) fn pending_unreliable(&self) -> u64 {
        self.lanes.iter().map(|l| l.unsent_unreliable).sum()
    }

    pub(super) fn pending_reliable(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| l.unsent_reliable + l.retry_bytes)
            .sum()
    }

    pub(super) fn sent_unacked(&self) -> u64 {
        self.lanes.iter().map(|l| l.in_flight_bytes).sum()
    }
}
