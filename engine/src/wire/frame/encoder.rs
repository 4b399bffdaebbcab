//! The frame encoder: appends frames to a caller-owned `Vec<u8>` (the packet plaintext) and
//! tracks the same in-packet segment context as [`super::FrameDecoder`], so its output decodes
//! back to the same frames.
//!
//! The convenience methods make GNS's choices (GNS: `SNP_SendPacket`, `SNP_SerializeAckBlocks`,
//! `SNP_SerializeStopWaitingFrame`): smallest stop_waiting width, 16-bit ack `latest`, u32
//! absolute first message number, 48-bit absolute first stream position. [`PacketEncoder::frame`]
//! instead reproduces a decoded frame with the encodings it was received with. The caller
//! enforces the packet size, except for acks, which take an explicit byte budget.

use std::ops::Range;

use super::Frame;
use super::ack::{ACK_MAX_BLOCKS, AckBlockCounts, block_len, count_encodable, head_len, write_ack};
use super::segment::{
    MAX_EXPLICIT_SIZE, MsgNumEncoding, ReliableSegment, SegmentContext, StreamPosEncoding,
    UnreliableSegment,
};
use super::stop_waiting::StopWaiting;
use crate::wire::varint::write_varint;

/// Why a frame could not be encoded. The frame was not written (a lane select the segment
/// method emitted before it may have been).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A segment was already written with the "to end of packet" size code.
    #[error("packet already closed by a to-end-of-packet segment")]
    PacketClosed,
    /// Explicit segment size above 1279 bytes.
    #[error("segment too large for an explicit size")]
    SizeTooLarge,
    /// Message number below the current one in this packet and lane, or 0.
    #[error("message number not encodable here")]
    MessageNumber,
    /// Stream position before the previous reliable segment's end, too far after it, or 0.
    #[error("stream position not encodable here")]
    StreamPosition,
    /// The requested encoding is not legal in the current context (e.g. an absolute form
    /// after the first segment, or a delta that does not fit).
    #[error("encoding not allowed in this context")]
    EncodingNotAllowed,
    /// stop_waiting: the peer's acks are not behind this packet number.
    #[error("stop_waiting value negative")]
    StopWaiting,
    /// Ack: gaps not ascending and separated, an ack count too large, over 255 blocks, or
    /// a gap at or above `latest`.
    #[error("invalid ack blocks")]
    AckBlocks,
    /// Ack: not even a block-less ack fits the budget.
    #[error("ack does not fit the budget")]
    AckBudget,
}

/// Writes frames into a caller-owned buffer, appending.
#[derive(Debug)]
pub struct PacketEncoder<'v> {
    out: &'v mut Vec<u8>,
    ctx: SegmentContext,
    closed: bool,
}

impl<'v> PacketEncoder<'v> {
    /// Starts a packet at the end of `out` (lane 0, fresh context).
    pub fn new(out: &'v mut Vec<u8>) -> Self {
        Self {
            out,
            ctx: SegmentContext::default(),
            closed: false,
        }
    }

    /// The lane in effect.
    pub fn lane(&self) -> u8 {
        self.ctx.lane
    }

    /// Whether a to-end-of-packet segment was written (nothing may follow).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn open(&self) -> Result<(), EncodeError> {
        if self.closed {
            Err(EncodeError::PacketClosed)
        } else {
            Ok(())
        }
    }

    /// GNS's stop_waiting for packet `packet_number` given the highest `latest` the peer has
    /// acked (`min_waiting`): smallest width.
    pub fn stop_waiting(
        &mut self,
        packet_number: u64,
        min_waiting: u64,
    ) -> Result<StopWaiting, EncodeError> {
        self.open()?;
        let sw =
            StopWaiting::for_packet(packet_number, min_waiting).ok_or(EncodeError::StopWaiting)?;
        sw.write(self.out);
        Ok(sw)
    }

    /// An ack with explicit blocks (newest first) and a 16-bit `latest`, as GNS sends it.
    pub fn ack(
        &mut self,
        latest: u64,
        delay: u16,
        blocks: &[AckBlockCounts],
    ) -> Result<(), EncodeError> {
        self.ack_exact(latest, false, delay, blocks, false)
    }

    /// An ack with every encoding choice explicit: 32-bit `latest` (GNS never sends it, but
    /// decoders at protocol ≥ 13 accept it) and the explicit block-count byte even for ≤ 6 blocks.
    pub fn ack_exact(
        &mut self,
        latest: u64,
        latest_32bit: bool,
        delay: u16,
        blocks: &[AckBlockCounts],
        explicit_count: bool,
    ) -> Result<(), EncodeError> {
        self.open()?;
        let ok = blocks.len() <= ACK_MAX_BLOCKS
            && blocks
                .iter()
                .all(|c| count_encodable(c.ack) && count_encodable(c.nack));
        if !ok {
            return Err(EncodeError::AckBlocks);
        }
        write_ack(
            self.out,
            latest,
            latest_32bit,
            delay,
            blocks,
            explicit_count,
        );
        Ok(())
    }

    /// The receiver's ack: `latest` received, `gaps` the missing ranges below it (half-open,
    /// ascending, separated by at least one received packet, all at or above the
    /// minimum-to-ack), at most `budget` bytes. One block per gap, newest first. If not all
    /// gaps fit, the newest are dropped and `latest` is lowered to the last packet below the
    /// oldest dropped gap, so the (implicit) rest stays truthful (GNS: `SNP_SerializeAckBlocks`).
    /// Returns the `latest` actually written.
    pub fn ack_for_gaps(
        &mut self,
        latest: u64,
        gaps: &[Range<u64>],
        delay: u16,
        budget: usize,
    ) -> Result<u64, EncodeError> {
        self.open()?;
        let top = latest.checked_add(1).ok_or(EncodeError::AckBlocks)?;
        // Oldest-first counts; each block's acks run from its gap's end to the next gap.
        let mut counts = Vec::with_capacity(gaps.len().min(ACK_MAX_BLOCKS + 1));
        for (i, g) in gaps.iter().enumerate() {
            let next = gaps.get(i + 1).map_or(top, |n| n.start);
            if g.start >= g.end || g.end >= next {
                return Err(EncodeError::AckBlocks);
            }
            let c = AckBlockCounts {
                ack: next - g.end,
                nack: g.end - g.start,
            };
            if counts.len() == ACK_MAX_BLOCKS || !count_encodable(c.ack) || !count_encodable(c.nack)
            {
                // Later (newer) gaps can only be described by lowering `latest`.
                break;
            }
            counts.push(c);
        }
        if head_len(false, 0) > budget {
            return Err(EncodeError::AckBudget);
        }
        let mut keep = 0;
        let mut blocks_size = 0;
        for (k, c) in counts.iter().enumerate() {
            blocks_size += block_len(*c);
            if head_len(false, k + 1) + blocks_size > budget {
                break;
            }
            keep = k + 1;
        }
        let written_latest = match gaps.get(keep) {
            None => latest,
            Some(g) => g.start.checked_sub(1).ok_or(EncodeError::AckBudget)?,
        };
        counts.truncate(keep);
        counts.reverse();
        write_ack(self.out, written_latest, false, delay, &counts, false);
        Ok(written_latest)
    }

    /// A select-lane frame: `0x88..0x8E` for lanes 1..7, else `0x8F` + varint of the lane
    /// itself. Resets the segment context. (GNS's own encoder drops the varint for lanes ≥ 8 —
    /// its header length omits the 0x8F byte, GNS: `SNPSegmentCollector::GetLane` — so for
    /// lanes ≥ 8 a GNS peer sends a bare 0x8F and the next segment's type byte is read as the
    /// lane; we encode per spec.)
    pub fn select_lane(&mut self, lane: u8) -> Result<(), EncodeError> {
        self.open()?;
        match lane {
            1..=7 => self.out.push(0x87 + lane),
            _ => {
                self.out.push(0x8f);
                write_varint(self.out, u64::from(lane));
            }
        }
        self.ctx.select(lane);
        Ok(())
    }

    fn ensure_lane(&mut self, lane: u8) -> Result<(), EncodeError> {
        if lane != self.ctx.lane {
            self.select_lane(lane)?;
        }
        Ok(())
    }

    /// An unreliable segment with GNS's encodings; selects `lane` first if needed. `to_end`
    /// uses size code `111` and closes the packet.
    pub fn unreliable(
        &mut self,
        lane: u8,
        msg_num: u64,
        offset: u64,
        end_of_message: bool,
        data: &[u8],
        to_end: bool,
    ) -> Result<(), EncodeError> {
        self.open()?;
        self.ensure_lane(lane)?;
        let msg_num_encoding = match self.ctx.msg_num {
            None => MsgNumEncoding::AbsoluteU32,
            Some(cur) if cur.checked_add(1) == Some(msg_num) => MsgNumEncoding::ImpliedPlusOne,
            Some(_) => MsgNumEncoding::DeltaVarint,
        };
        self.write_unreliable(&UnreliableSegment {
            lane,
            msg_num,
            msg_num_encoding,
            offset,
            offset_present: offset > 0,
            end_of_message,
            size_to_end: to_end,
            data,
        })
    }

    /// A reliable segment with GNS's encodings; selects `lane` first if needed.
    pub fn reliable(
        &mut self,
        lane: u8,
        stream_pos: u64,
        data: &[u8],
        to_end: bool,
    ) -> Result<(), EncodeError> {
        self.open()?;
        self.ensure_lane(lane)?;
        let stream_pos_encoding = match self.ctx.stream_end {
            None => StreamPosEncoding::Absolute48,
            Some(end) => match stream_pos.checked_sub(end) {
                Some(0) => StreamPosEncoding::Contiguous,
                Some(d) if d <= 0xff => StreamPosEncoding::DeltaU8,
                Some(d) if d <= 0xffff => StreamPosEncoding::DeltaU16,
                _ => StreamPosEncoding::DeltaU32,
            },
        };
        self.write_reliable(&ReliableSegment {
            lane,
            stream_pos,
            stream_pos_encoding,
            size_to_end: to_end,
            data,
        })
    }

    /// Re-encodes a decoded frame with the encodings it carries (segments select their lane
    /// first if it is not the current one).
    pub fn frame(&mut self, frame: &Frame<'_>) -> Result<(), EncodeError> {
        self.open()?;
        match frame {
            Frame::StopWaiting(sw) => {
                sw.write(self.out);
                Ok(())
            }
            Frame::Ack(a) => {
                let counts: Vec<AckBlockCounts> = a.blocks().map(|b| b.counts).collect();
                self.ack_exact(a.latest, a.latest_32bit, a.delay, &counts, a.explicit_count)
            }
            Frame::SelectLane { lane } => self.select_lane(*lane),
            Frame::Unreliable(s) => {
                self.ensure_lane(s.lane)?;
                self.write_unreliable(s)
            }
            Frame::Reliable(s) => {
                self.ensure_lane(s.lane)?;
                self.write_reliable(s)
            }
        }
    }

    fn check_size(len: usize, to_end: bool) -> Result<(), EncodeError> {
        if !to_end && len > MAX_EXPLICIT_SIZE {
            Err(EncodeError::SizeTooLarge)
        } else {
            Ok(())
        }
    }

    fn write_unreliable(&mut self, s: &UnreliableSegment<'_>) -> Result<(), EncodeError> {
        Self::check_size(s.data.len(), s.size_to_end)?;
        if s.msg_num == 0 {
            return Err(EncodeError::MessageNumber);
        }
        let cur = self.ctx.msg_num;
        let legal = match (s.msg_num_encoding, cur) {
            (MsgNumEncoding::AbsoluteU16 | MsgNumEncoding::AbsoluteU32, None) => true,
            (MsgNumEncoding::DeltaVarint, Some(c)) => s.msg_num >= c,
            (MsgNumEncoding::ImpliedPlusOne, Some(c)) => c.checked_add(1) == Some(s.msg_num),
            _ => false,
        };
        if !legal {
            return Err(match cur {
                Some(c) if s.msg_num < c => EncodeError::MessageNumber,
                _ => EncodeError::EncodingNotAllowed,
            });
        }
        s.write(self.out, cur.unwrap_or(0));
        self.ctx.note_unreliable(s.msg_num);
        self.closed = s.size_to_end;
        Ok(())
    }

    fn write_reliable(&mut self, s: &ReliableSegment<'_>) -> Result<(), EncodeError> {
        Self::check_size(s.data.len(), s.size_to_end)?;
        let end = s
            .stream_pos
            .checked_add(s.data.len() as u64)
            .filter(|_| s.stream_pos > 0)
            .ok_or(EncodeError::StreamPosition)?;
        let prev = self.ctx.stream_end;
        let delta = prev.map(|p| s.stream_pos.checked_sub(p));
        let legal = match (s.stream_pos_encoding, delta) {
            (
                StreamPosEncoding::Absolute24
                | StreamPosEncoding::Absolute32
                | StreamPosEncoding::Absolute48,
                None,
            ) => true,
            (StreamPosEncoding::Contiguous, Some(Some(d))) => d == 0,
            (StreamPosEncoding::DeltaU8, Some(Some(d))) => d <= 0xff,
            (StreamPosEncoding::DeltaU16, Some(Some(d))) => d <= 0xffff,
            (StreamPosEncoding::DeltaU32, Some(Some(d))) => d <= 0xffff_ffff,
            (_, Some(None)) => return Err(EncodeError::StreamPosition),
            _ => false,
        };
        if !legal {
            return Err(EncodeError::EncodingNotAllowed);
        }
        // The +1 bump of the unreliable number can only overflow at u64::MAX.
        let mut ctx = self.ctx;
        ctx.note_reliable(end)
            .map_err(|_| EncodeError::MessageNumber)?;
        s.write(self.out, prev.unwrap_or(0));
        self.ctx = ctx;
        self.closed = s.size_to_end;
        Ok(())
    }
}
