//! Send-side message state: per-lane queues, reliable stream positions, the segments sent and
//! not yet acked, and the retry sets (spec §4.6, §4.12, §4.16, §4.17).
//!
//! A reliable message is framed (header + payload) and given its stream range when queued.
//! Packet assembly cuts it into segments; each segment's exact range is remembered until it
//! is acked, and a NACK or RTO puts it in its lane's retry set, from which it is resent with
//! the same range and a new packet number:
//!
//! ```text
//!  lane stream:  [msg 1 ][    msg 2     ][msg 3 ...     (queue head, partly segmented)
//!  segs:         [s1    ][s2      ][s3  ][s4 ]
//!  state:         acked   in flight retry  in flight     copies: packets carrying it unacked
//! ```
//!
//! A segment counts how many packets carrying it are still in flight (`copies`); it joins the
//! retry set only when the last copy is reported lost, so an old packet's NACK cannot queue a
//! segment whose retransmission is still on its way.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::proto::recv_stream::STREAM_START;
use crate::proto::sent_packets::SegmentRef;
use crate::time::Timestamp;
use crate::wire::frame::write_reliable_header;

/// A queued message, not yet fully cut into segments.
#[derive(Debug, Clone)]
pub(crate) struct OutMsg {
    /// Connection-wide enqueue order, for Nagle.
    pub seq: u64,
    /// When Nagle lets it go.
    pub nagle_at: Timestamp,
    /// Lane message number.
    pub msg_num: u64,
    /// Reliable (framed in the stream) or unreliable.
    pub reliable: bool,
    /// Reliable: header + payload; unreliable: payload.
    pub data: Arc<[u8]>,
    /// Bytes of `data` already put in packets.
    pub sent: usize,
    /// Reliable: stream position of `data[0]`.
    pub stream_pos: u64,
}

impl OutMsg {
    pub fn remaining(&self) -> usize {
        self.data.len() - self.sent
    }
}

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
    /// Reliable messages with unacked segments, by stream position of their first byte.
    msgs: BTreeMap<u64, Arc<[u8]>>,
    segs: BTreeMap<u64, SentSeg>,
    retry: BTreeSet<u64>,
    pub unsent_reliable: u64,
    pub unsent_unreliable: u64,
    pub retry_bytes: u64,
    /// Sent, not acked, not queued for retry.
    pub in_flight_bytes: u64,
}

impl SendLane {
    fn new() -> Self {
        SendLane {
            next_msg_num: 1,
            last_reliable_num: 0,
            next_stream_pos: STREAM_START,
            queue: VecDeque::new(),
            msgs: BTreeMap::new(),
            segs: BTreeMap::new(),
            retry: BTreeSet::new(),
            unsent_reliable: 0,
            unsent_unreliable: 0,
            retry_bytes: 0,
            in_flight_bytes: 0,
        }
    }

    /// The bytes of stream range `[begin, end)`, which lies inside one message.
    pub fn stream_bytes(&self, begin: u64, end: u64) -> Option<(Arc<[u8]>, usize, usize)> {
        let (&mb, data) = self.msgs.range(..=begin).next_back()?;
        let from = usize::try_from(begin - mb).ok()?;
        let to = usize::try_from(end - mb).ok()?;
        (to <= data.len()).then(|| (data.clone(), from, to))
    }

    /// Retry segments in stream order: (begin, end).
    pub fn retries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.retry
            .iter()
            .filter_map(|b| self.segs.get(b).map(|s| (*b, s.end)))
    }

    /// A segment went out in a packet (new or retried).
    pub fn on_segment_sent(&mut self, begin: u64, end: u64) {
        let len = end - begin;
        match self.segs.get_mut(&begin) {
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
                self.segs.insert(
                    begin,
                    SentSeg {
                        end,
                        copies: 1,
                        in_retry: false,
                    },
                );
                self.in_flight_bytes += len;
            }
        }
    }

    /// Registers a reliable message's bytes once its first segment goes out.
    pub fn retain_message(&mut self, pos: u64, data: &Arc<[u8]>) {
        self.msgs.entry(pos).or_insert_with(|| data.clone());
    }

    fn on_acked(&mut self, begin: u64, end: u64) {
        let Some(s) = self.segs.get(&begin).copied() else {
            return;
        };
        if s.end != end {
            return;
        }
        self.segs.remove(&begin);
        let len = end - begin;
        if s.in_retry {
            self.retry.remove(&begin);
            self.retry_bytes -= len;
        } else {
            self.in_flight_bytes -= len;
        }
        self.maybe_free(begin);
    }

    fn on_lost(&mut self, begin: u64, end: u64) {
        let Some(s) = self.segs.get_mut(&begin) else {
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

    /// Drops the message containing `pos` once it is fully segmented and fully acked.
    fn maybe_free(&mut self, pos: u64) {
        let Some((&mb, data)) = self.msgs.range(..=pos).next_back() else {
            return;
        };
        let me = mb + data.len() as u64;
        let head_busy = self
            .queue
            .front()
            .is_some_and(|m| m.reliable && m.stream_pos == mb);
        if !head_busy && self.segs.range(mb..me).next().is_none() {
            self.msgs.remove(&mb);
        }
    }
}

/// The send state of all lanes.
#[derive(Debug, Clone)]
pub(crate) struct SendState {
    pub lanes: Vec<SendLane>,
    next_seq: u64,
    /// Messages with `seq` below this ignore Nagle (NoNagle or flush).
    nagle_cleared_below: u64,
}

impl SendState {
    pub fn new() -> Self {
        SendState {
            lanes: vec![SendLane::new()],
            next_seq: 0,
            nagle_cleared_below: 0,
        }
    }

    pub fn ensure_lanes(&mut self, n: usize) {
        while self.lanes.len() < n {
            self.lanes.push(SendLane::new());
        }
    }

    /// Bytes `SendBufferSize` counts: unsent plus queued for retry (§4.16).
    pub fn buffered_bytes(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| l.unsent_reliable + l.unsent_unreliable + l.retry_bytes)
            .sum()
    }

    /// Whether nothing is queued (unsent or retry) on any lane.
    pub fn is_empty(&self) -> bool {
        self.buffered_bytes() == 0 && self.lanes.iter().all(|l| l.queue.is_empty())
    }

    pub fn has_retries(&self) -> bool {
        self.lanes.iter().any(|l| !l.retry.is_empty())
    }

    pub fn reliable_pending(&self) -> bool {
        self.lanes
            .iter()
            .any(|l| l.unsent_reliable > 0 || !l.segs.is_empty())
    }

    /// Burns lane `lane`'s next message number (a refused send the caller already numbered).
    pub fn skip_message_number(&mut self, lane: u8) {
        if let Some(l) = self.lanes.get_mut(usize::from(lane)) {
            l.next_msg_num += 1;
        }
    }

    /// Queues a message; returns its number and queued size. The lane must exist.
    pub fn enqueue(
        &mut self,
        nagle_at: Timestamp,
        lane: u8,
        reliable: bool,
        no_nagle: bool,
        payload: Vec<u8>,
    ) -> (u64, u32) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if no_nagle {
            self.nagle_cleared_below = self.next_seq;
        }
        let l = &mut self.lanes[usize::from(lane)];
        let msg_num = l.next_msg_num;
        l.next_msg_num += 1;
        let (data, stream_pos): (Arc<[u8]>, u64) = if reliable {
            // Framing scratch and the caller's payload go back to the buffer pool (a shard
            // echoing received messages then allocates nothing per message for them).
            let mut framed = crate::buffers::take(payload.len() + 10);
            write_reliable_header(
                &mut framed,
                msg_num - l.last_reliable_num,
                payload.len() as u64,
            );
            framed.extend_from_slice(&payload);
            crate::buffers::give(payload);
            l.last_reliable_num = msg_num;
            let pos = l.next_stream_pos;
            l.next_stream_pos += framed.len() as u64;
            l.unsent_reliable += framed.len() as u64;
            let data: Arc<[u8]> = Arc::from(&framed[..]);
            crate::buffers::give(framed);
            (data, pos)
        } else {
            l.unsent_unreliable += payload.len() as u64;
            let data: Arc<[u8]> = Arc::from(&payload[..]);
            crate::buffers::give(payload);
            (data, 0)
        };
        // Sizes are ≤ 512 KiB + header, far below u32::MAX.
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        l.queue.push_back(OutMsg {
            seq,
            nagle_at,
            msg_num,
            reliable,
            data,
            sent: 0,
            stream_pos,
        });
        (msg_num, size)
    }

    pub fn flush_nagle(&mut self) {
        self.nagle_cleared_below = self.next_seq;
    }

    /// When queued data is ready to go (ignoring the rate): now for retries, a full packet of
    /// unsent bytes or a Nagle-exempt message; else the oldest message's Nagle deadline.
    // GNS: CSteamNetworkConnectionBase::SNP_GetNextThinkTime
    pub fn data_ready_at(&self, now: Timestamp) -> Option<Timestamp> {
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
    pub fn on_acked(&mut self, segs: &[SegmentRef]) {
        for s in segs {
            if let Some(l) = self.lanes.get_mut(usize::from(s.lane.0)) {
                l.on_acked(s.stream.start, s.stream.end);
            }
        }
    }

    /// NACKed or timed-out segments: queue for retry once no copy is in flight.
    pub fn on_lost(&mut self, segs: &[SegmentRef]) {
        for s in segs {
            if let Some(l) = self.lanes.get_mut(usize::from(s.lane.0)) {
                l.on_lost(s.stream.start, s.stream.end);
            }
        }
    }

    /// Records that `n` bytes of `lane`'s head message went out; pops it when done.
    /// Returns whether the message finished.
    pub fn advance_head(&mut self, lane: u8, n: usize) -> bool {
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
        if m.sent >= m.data.len() {
            let done = l.queue.pop_front();
            if let Some(m) = done.filter(|m| m.reliable) {
                l.maybe_free(m.stream_pos);
            }
            true
        } else {
            false
        }
    }

    /// Oldest queued message's enqueue order per lane, for status queue times.
    pub fn pending_unreliable(&self) -> u64 {
        self.lanes.iter().map(|l| l.unsent_unreliable).sum()
    }

    pub fn pending_reliable(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| l.unsent_reliable + l.retry_bytes)
            .sum()
    }

    pub fn sent_unacked(&self) -> u64 {
        self.lanes.iter().map(|l| l.in_flight_bytes).sum()
    }
}
