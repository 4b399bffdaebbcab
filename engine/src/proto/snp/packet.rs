//! Packet assembly (spec §4.1, §4.17): stop_waiting, ack, then segments grouped by lane.
//!
//! Segments are first *planned* in priority order (retries in stream order, then new data as
//! the lane scheduler picks it) against the space left after the ack, then written grouped
//! by lane, lane 0 first, each other lane behind a select-lane frame. Planning mirrors the
//! encoder's per-lane compression context, so the planned header sizes are exact:
//!
//! ```text
//!  [stop_waiting][ack ...][rel lane0][unrel lane0][0x89][rel lane2 retry][rel lane2 new, to end]
//!   always        reserved  ─── grouped by lane, planning order kept within a lane ───
//! ```
//!
//! With `SnpConfig::coalesce_reliable` (the default), new reliable data that continues its
//! lane's last planned segment (a new reliable one, contiguous stream range) extends it
//! instead of starting one, up to the largest reliable segment: thirty small messages make one
//! segment, not thirty. GNS starts a segment per message (a FIXME there); its receivers, like
//! ours, read the reliable stream as bytes, so both framings decode to the same messages.
//! With the switch off the framing is GNS's, byte for byte.

use super::{BuiltPacket, Snp};
use crate::proto::lanes::LaneId;
use crate::proto::sent_packets::SegmentRef;
use crate::time::Timestamp;
use crate::wire::frame::{MAX_EXPLICIT_SIZE, PacketEncoder, ack_delay_from_usec};
use crate::wire::packet::MAX_RELIABLE_SEGMENT;
use crate::wire::varint::varint_len;

/// Below this many bytes a segment is not started when it cannot be sent whole (§4.17).
const MIN_SLIVER: usize = 16;

/// Largest segment header: lane select (2) + type + 48-bit position + size byte.
const SEGMENT_HEADER_MAX: usize = 2 + 1 + 6 + 1;

/// A block-less ack frame.
const ACK_MIN_LEN: usize = 5;

/// `MTU_PacketSize` minus this is the largest reliable segment (1300 → 1137, §4.17).
const MTU_TO_SEGMENT: usize = 1300 - MAX_RELIABLE_SEGMENT;

#[derive(Debug, Clone)]
enum Kind {
    /// Stream bytes `[pos, pos + len)`, read from the lane's stream buffer when written.
    Reliable { pos: u64, retry: bool },
    /// Bytes `[offset, offset + len)` of unreliable message `msg_num`, which are
    /// `data[start..start + len]`: the message's own buffer, moved out of the queue when the
    /// rest of the message fits (no copy), else a copy of just this piece.
    Unreliable {
        msg_num: u64,
        offset: u64,
        end: bool,
        data: Vec<u8>,
        start: usize,
    },
}

#[derive(Debug, Clone)]
struct Piece {
    lane: u8,
    kind: Kind,
    len: usize,
}

/// The encoder's per-lane context, mirrored for sizing.
#[derive(Debug, Clone, Copy, Default)]
struct PlanCtx {
    used: bool,
    msg_num: Option<u64>,
    stream_end: Option<u64>,
}

impl PlanCtx {
    /// Header bytes (with a lane select if this lane is new in the packet) for a segment.
    fn header_len(&self, lane: u8, kind: &Kind) -> usize {
        let select = match (self.used, lane) {
            (true, _) | (false, 0) => 0,
            (false, 1..=7) => 1,
            (false, l) => 1 + varint_len(u64::from(l)),
        };
        let body = match *kind {
            Kind::Reliable { pos, .. } => match self.stream_end {
                None => 6,
                Some(end) => match pos.saturating_sub(end) {
                    0 => 0,
                    d if d <= 0xff => 1,
                    d if d <= 0xffff => 2,
                    _ => 4,
                },
            },
            Kind::Unreliable {
                msg_num, offset, ..
            } => {
                let num = match self.msg_num {
                    None => 4,
                    Some(cur) if cur + 1 == msg_num => 0,
                    Some(cur) => varint_len(msg_num.saturating_sub(cur)),
                };
                num + if offset > 0 { varint_len(offset) } else { 0 }
            }
        };
        // type byte + body + explicit size byte
        select + 1 + body + 1
    }

    /// Whether the encoder can express this segment in the current context: each reliable
    /// segment bumps the unreliable number, so several segments of one reliable message can
    /// push it past the lane's next unreliable message (possible with small MTUs); and
    /// reliable offsets are at most 32 bits.
    fn encodable(&self, kind: &Kind) -> bool {
        match *kind {
            Kind::Unreliable { msg_num, .. } => self.msg_num.is_none_or(|cur| msg_num >= cur),
            Kind::Reliable { pos, .. } => self
                .stream_end
                .is_none_or(|end| pos >= end && pos - end <= u64::from(u32::MAX)),
        }
    }

    fn note(&mut self, kind: &Kind, len: usize) {
        self.used = true;
        match *kind {
            Kind::Reliable { pos, .. } => {
                self.stream_end = Some(pos + len as u64);
                self.msg_num = self.msg_num.map(|n| n + 1);
            }
            Kind::Unreliable { msg_num, .. } => self.msg_num = Some(msg_num),
        }
    }
}

struct Planner {
    ctx: Vec<PlanCtx>,
    room: usize,
    pieces: Vec<Piece>,
    /// Let new reliable data extend the previous piece (`SnpConfig::coalesce_reliable`).
    coalesce: bool,
}

thread_local! {
    /// The planner's two vectors, kept between packets on each thread: a packet of small
    /// messages plans dozens of pieces, and growing fresh vectors for every packet was most of
    /// the allocations per message. Not per connection, so an idle connection keeps nothing.
    static PLAN_SCRATCH: std::cell::Cell<(Vec<PlanCtx>, Vec<Piece>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Scratch vectors above this many pieces are not kept (one huge packet plan should not pin
/// its memory for good).
const SCRATCH_KEEP_PIECES: usize = 256;

impl Planner {
    /// A planner with `lanes` fresh contexts and `room` bytes, on the thread's scratch vectors.
    fn new(lanes: usize, room: usize, coalesce: bool) -> Self {
        let (mut ctx, mut pieces) = PLAN_SCRATCH.take();
        ctx.clear();
        ctx.resize(lanes, PlanCtx::default());
        pieces.clear();
        Planner {
            ctx,
            room,
            pieces,
            coalesce,
        }
    }

    /// Hands the vectors back for the next packet (a nested or concurrent use simply started
    /// from empty ones).
    fn recycle(ctx: Vec<PlanCtx>, mut pieces: Vec<Piece>) {
        if pieces.capacity() > SCRATCH_KEEP_PIECES {
            return;
        }
        pieces.clear();
        PLAN_SCRATCH.set((ctx, pieces));
    }

    /// Plans a segment of up to `max` bytes; `whole` = it must go whole.
    /// Returns the bytes planned (None: it does not fit).
    fn plan(&mut self, lane: u8, kind: Kind, max: usize, whole: bool) -> Option<usize> {
        let c = &mut self.ctx[usize::from(lane)];
        if !c.encodable(&kind) {
            return None; // close the packet; the next one starts a fresh context
        }
        let hdr = c.header_len(lane, &kind);
        let avail = self.room.checked_sub(hdr)?;
        let take = max.min(avail).min(MAX_EXPLICIT_SIZE);
        if (whole && take < max) || take < MIN_SLIVER.min(max) {
            return None;
        }
        c.note(&kind, take);
        self.room -= hdr + take;
        self.pieces.push(Piece {
            lane,
            kind,
            len: take,
        });
        Some(take)
    }

    /// Extends `lane`'s last planned piece with up to `max` new reliable bytes at `pos` when
    /// it is a new reliable segment ending at `pos` and shorter than `cap`.
    /// No header is added, so any byte of room is used. Returns the bytes planned (None: no
    /// piece to extend; plan a new segment).
    fn extend(&mut self, lane: u8, pos: u64, max: usize, cap: usize) -> Option<usize> {
        if !self.coalesce {
            return None;
        }
        // The lane's last piece: pieces are written grouped by lane, so pieces of other lanes
        // planned after it do not separate it from this data on the wire.
        let p = self.pieces.iter_mut().rev().find(|p| p.lane == lane)?;
        let Kind::Reliable { pos: start, retry } = p.kind else {
            return None;
        };
        if retry || start + p.len as u64 != pos {
            return None;
        }
        let take = max
            .min(cap.min(MAX_EXPLICIT_SIZE).saturating_sub(p.len))
            .min(self.room);
        if take == 0 {
            return None;
        }
        p.len += take;
        self.room -= take;
        self.ctx[usize::from(lane)].stream_end = Some(pos + take as u64);
        Some(take)
    }
}

impl Snp {
    /// Appends one packet's SNP plaintext to `out`, at most `max_plaintext` bytes: stop_waiting
    /// and ack always, then retries, then new data. Returns `None` (and writes nothing) unless
    /// [`Snp::wants_to_send`] or `force` (keepalive / ack-only: then only what is ready).
    /// The packet is recorded in flight and the token bucket is charged `bytes + udp_overhead`
    /// (header + AEAD tag the caller adds), so the caller must send it.
    // GNS: CSteamNetworkConnectionBase::SNP_SendPacket
    pub fn build_packet(
        &mut self,
        now: Timestamp,
        out: &mut Vec<u8>,
        max_plaintext: usize,
        udp_overhead: usize,
        force: bool,
    ) -> Option<BuiltPacket> {
        let wants = self.wants_to_send(now);
        if !wants && !force {
            return None;
        }
        // Acks and NACKs go out whatever the window and the rate say; data only while both
        // have room.
        let data = wants && self.data_may_go(now);
        let start = out.len();
        let pkt = self.sent.next_packet_number();
        let min_waiting = self.sent.min_waiting();
        // invariant: min_waiting is an acked packet number, always below our next one.
        PacketEncoder::new(out)
            .stop_waiting(pkt, min_waiting)
            .expect("invariant: min_waiting < next packet number");
        let mut budget = max_plaintext.saturating_sub(out.len() - start);
        if data && !self.send.is_empty() {
            // Leave room for one whole segment (a retry must go whole), as GNS reserves ack
            // space against data; the ack lowers `latest` to what fits.
            budget = budget
                .saturating_sub(self.max_segment() + SEGMENT_HEADER_MAX)
                .max(ACK_MIN_LEN);
        }
        self.recv.write_ack(now, out, budget);
        let used = out.len() - start;
        let mut planner = Planner::new(
            self.send.lanes.len(),
            max_plaintext.saturating_sub(used),
            self.config.coalesce_reliable,
        );
        if data {
            self.plan_data(now, &mut planner);
        }
        let ctx = planner.ctx;
        let mut pieces = planner.pieces;
        if !pieces.is_sorted_by_key(|p| p.lane) {
            pieces.sort_by_key(|p| p.lane); // stable: planning order kept within a lane
        }
        let mut enc = PacketEncoder::new(out);
        let mut segs = crate::proto::sent_packets::Segments::new();
        let n = pieces.len();
        let mut reliable = false;
        for (i, p) in pieces.iter_mut().enumerate() {
            let last = i + 1 == n;
            let r = match &mut p.kind {
                &mut Kind::Reliable { pos, .. } => {
                    reliable = true;
                    let end = pos + p.len as u64;
                    segs.push(SegmentRef {
                        lane: LaneId(p.lane),
                        stream: pos..end,
                    });
                    // invariant: planned ranges are queued-unsent or unacked (retry) bytes,
                    // which the lane's stream buffer keeps until acked.
                    let bytes = self.send.lanes[usize::from(p.lane)]
                        .stream_bytes(pos, end)
                        .expect("invariant: planned stream bytes are buffered");
                    enc.reliable(p.lane, pos, bytes, last)
                }
                Kind::Unreliable {
                    msg_num,
                    offset,
                    end,
                    data,
                    start,
                } => {
                    let bytes = &data[*start..*start + p.len];
                    let r = enc.unreliable(p.lane, *msg_num, *offset, *end, bytes, last);
                    // Encoded: the payload buffer goes back to the pool for the next message.
                    crate::buffers::give(std::mem::take(data));
                    r
                }
            };
            // invariant: planning checked sizes, order and contexts exactly as the encoder does.
            r.expect("invariant: planned segment encodes");
        }
        for p in &pieces {
            if let Kind::Reliable { pos, retry } = p.kind {
                if retry {
                    self.stats.counters.retransmitted_segments += 1;
                }
                self.send.lanes[usize::from(p.lane)].on_segment_sent(pos, pos + p.len as u64);
            }
        }
        let bytes = out.len() - start;
        // Only packets carrying data count toward the window (RFC 9002: ack-eliciting).
        let counted = if pieces.is_empty() {
            0
        } else {
            bytes + udp_overhead
        };
        Planner::recycle(ctx, pieces);
        let number = self.sent.record_sent(
            now,
            segs,
            reliable,
            u32::try_from(counted).unwrap_or(u32::MAX),
        );
        debug_assert_eq!(number, pkt);
        if counted > 0 {
            self.recovery.on_sent(counted);
        }
        self.bucket.on_sent(now, bytes + udp_overhead);
        self.stats.on_sent(now, bytes + udp_overhead);
        Some(BuiltPacket {
            packet_number: pkt,
            reliable,
            bytes,
        })
    }

    /// Largest reliable segment for the configured MTU (1137 at the default 1300).
    // GNS: CSteamNetworkConnectionBase::SNP_SendMessage (cut at m_cbMaxReliableMessageSegment)
    fn max_segment(&self) -> usize {
        self.config
            .mtu_packet_size
            .saturating_sub(MTU_TO_SEGMENT)
            .clamp(MIN_SLIVER, MAX_RELIABLE_SEGMENT)
    }

    /// Retries first (stream order, lane order); if one does not fit, no new data. Then new
    /// data from the lane scheduler until the packet is full.
    fn plan_data(&mut self, now: Timestamp, pl: &mut Planner) {
        for lane in 0..self.send.lanes.len() {
            let l = &self.send.lanes[lane];
            let lane = lane as u8; // ≤ 255 lanes
            for (b, e) in l.retries() {
                if l.stream_bytes(b, e).is_none() {
                    continue; // defensive: unacked segments' bytes are always buffered
                }
                let kind = Kind::Reliable {
                    pos: b,
                    retry: true,
                };
                // A segment's length is at most the largest reliable segment, a usize.
                if pl.plan(lane, kind, (e - b) as usize, true).is_none() {
                    return;
                }
            }
        }
        while let Some(lane) = self.next_send_lane() {
            let l = &self.send.lanes[usize::from(lane.0)];
            let Some(m) = l.queue.front() else {
                break; // scheduler and queues agree; defensive
            };
            let rem = m.remaining();
            let cap = self.max_segment();
            let (take, max) = if m.reliable {
                let pos = m.stream_pos + m.sent as u64;
                if let Some(take) = pl.extend(lane.0, pos, rem, cap) {
                    // Room-limited only if it stopped short of both the message and the cap.
                    let max = if take < rem && pl.room > 0 { take } else { rem };
                    (take, max)
                } else {
                    let max = rem.min(cap);
                    let kind = Kind::Reliable { pos, retry: false };
                    let Some(take) = pl.plan(lane.0, kind, max, false) else {
                        break;
                    };
                    (take, max)
                }
            } else {
                if m.sent == 0
                    && self
                        .config
                        .unreliable_max_age
                        .is_some_and(|age| now.saturating_since(m.queued_at) > age)
                {
                    // Too old to be worth sending: dropped whole, counted.
                    self.send.advance_head(lane.0, rem);
                    self.schedule_sent(lane, rem as u32, true);
                    self.stats.counters.unreliable_expired += 1;
                    continue;
                }
                if m.data.is_none() {
                    break; // unreliable messages always carry their payload; defensive
                }
                let sent = m.sent;
                let kind = Kind::Unreliable {
                    msg_num: m.msg_num,
                    offset: sent as u64,
                    end: false,
                    data: Vec::new(), // filled once the piece's size is known
                    start: 0,
                };
                let Some(take) = pl.plan(lane.0, kind, rem, false) else {
                    break;
                };
                let whole = take == rem;
                let l = &mut self.send.lanes[usize::from(lane.0)];
                let (bytes, from) = match l.queue.front_mut().and_then(|m| m.data.as_mut()) {
                    // The rest of the message goes in this packet: its buffer moves along.
                    Some(d) if whole => (std::mem::take(d), sent),
                    Some(d) => (crate::buffers::copy_of(&d[sent..sent + take]), 0),
                    None => (Vec::new(), 0), // checked above
                };
                if let Some(Piece {
                    kind:
                        Kind::Unreliable {
                            end, data, start, ..
                        },
                    ..
                }) = pl.pieces.last_mut()
                {
                    *end = whole;
                    *data = bytes;
                    *start = from;
                }
                (take, rem)
            };
            let finished = self.send.advance_head(lane.0, take);
            self.schedule_sent(lane, take as u32, finished);
            if take < max {
                break; // packet full
            }
        }
    }
}

/// Ack delay field for a packet received at `received_at`.
pub(super) fn ack_delay(now: Timestamp, received_at: Timestamp) -> u16 {
    ack_delay_from_usec(now.saturating_since(received_at).as_micros() as u64)
}
