//! ack `1 0 0 1 w n n n` (spec §4.9): the receiver's view of which packets arrived.
//!
//! Layout: type byte, `latest` (u16 LE if `w`, else u32 LE), delay u16 LE, optional u8 block
//! count (`nnn` = 7), then blocks newest to oldest. Each block byte `A a a a N n n n` carries the
//! low 3 bits of an ack count and a nack count; `A`/`N` mean a varint with the upper bits follows.
//!
//! Semantics: `end = latest + 1`; each block acks `[end - ack, end)` and nacks the `nack` packets
//! just below that, then `end` moves to the start of the nacked range. After the last explicit
//! block an **implicit block acks everything from the sender's min-waiting up to `end`**
//! ([`AckFrame::implicitly_acked_below`]), which is why a receiver must list every gap it knows
//! between its minimum-to-ack and `latest`.

use std::ops::Range;

use super::FrameError;
use super::reader::{Reader, write_le};
use crate::wire::pktnum::nearest_with_low_bits;
use crate::wire::varint::write_varint;

/// The decoder rejects a count whose varint upper part (count >> 3) exceeds this
/// (GNS: `ProcessPlainTextDataChunk`).
pub const ACK_COUNT_UPPER_MAX: u64 = 100_000;
/// Most blocks one ack frame can carry (the explicit count is a u8).
pub const ACK_MAX_BLOCKS: usize = 255;
/// Delay value meaning "no timing information".
pub const ACK_DELAY_NO_TIMING: u16 = 0xffff;

/// Converts a receive-to-ack delay to the wire's 32 µs units, clamping like GNS
/// (GNS: `SNP_SerializeAckBlocks`): anything above 0xFFFE becomes "no timing".
pub fn ack_delay_from_usec(usec: u64) -> u16 {
    u16::try_from(usec >> 5).unwrap_or(ACK_DELAY_NO_TIMING)
}

/// The two counts of one block, as they go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBlockCounts {
    /// Packets acked (the newer part of the block).
    pub ack: u64,
    /// Packets nacked just below them.
    pub nack: u64,
}

/// One explicit block with its absolute ranges, for the sender to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckBlock {
    /// The wire counts.
    pub counts: AckBlockCounts,
    /// Packets reported received, half-open.
    pub acked: Range<u64>,
    /// Packets reported missing, half-open, directly below `acked`.
    pub nacked: Range<u64>,
}

/// A decoded ack frame. Blocks stay in the packet (already validated) and are walked with
/// [`AckFrame::blocks`], so decoding allocates nothing. Equality compares the decoded blocks,
/// not their bytes: a varint may be written non-canonically and still mean the same block.
#[derive(Debug, Clone, Eq)]
pub struct AckFrame<'a> {
    /// Whether `latest` was sent as 32 bits (`w` = 0). GNS always sends 16, and GNS decoders
    /// before protocol 13 ignore `w` (their test is on bit 0x40, never set in an ack byte) and
    /// always read 16 bits, so never send `w` = 0 to them.
    pub latest_32bit: bool,
    /// `latest` as it was on the wire (16 or 32 low bits).
    pub latest_wire: u32,
    /// Newest packet the peer reports, expanded nearest to our next packet number. If it is ≥
    /// that number the peer acks a packet never sent; GNS then ignores the rest of the packet
    /// (GNS: `ProcessPlainTextDataChunk`) — a policy left to the caller.
    pub latest: u64,
    /// Receive-to-ack delay in 32 µs units; [`ACK_DELAY_NO_TIMING`] = none.
    pub delay: u16,
    /// Whether the block count was sent as an explicit u8 (`nnn` = 7).
    pub explicit_count: bool,
    /// Number of explicit blocks.
    pub block_count: u8,
    /// Start of the range the implicit final block acks: everything from the sender's
    /// min-waiting up to here (exclusive) counts as received.
    pub implicitly_acked_below: u64,
    blocks_raw: &'a [u8],
}

impl PartialEq for AckFrame<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.latest_32bit == other.latest_32bit
            && self.latest_wire == other.latest_wire
            && self.latest == other.latest
            && self.delay == other.delay
            && self.explicit_count == other.explicit_count
            && self.block_count == other.block_count
            && self.implicitly_acked_below == other.implicitly_acked_below
            && self.blocks().eq(other.blocks())
    }
}

impl<'a> AckFrame<'a> {
    /// The delay in microseconds, or `None` for "no timing".
    pub fn delay_usec(&self) -> Option<u64> {
        (self.delay != ACK_DELAY_NO_TIMING).then_some(u64::from(self.delay) << 5)
    }

    /// The explicit blocks, newest first.
    pub fn blocks(&self) -> AckBlocks<'a> {
        AckBlocks {
            r: Reader::new(self.blocks_raw),
            left: self.block_count,
            end: self.latest.saturating_add(1),
        }
    }

    /// Decodes after type byte `ty`; `next_packet_number` is the number we will send next.
    pub(crate) fn read(
        ty: u8,
        r: &mut Reader<'a>,
        next_packet_number: u64,
    ) -> Result<Self, FrameError> {
        let latest_32bit = ty & 0x08 == 0;
        let (latest_wire, bits) = if latest_32bit {
            (r.le(4)?, 32)
        } else {
            (r.le(2)?, 16)
        };
        let latest = nearest_with_low_bits(next_packet_number, latest_wire, bits)
            .ok_or(FrameError::AckRangeUnderflow)?;
        let delay = r.le(2)? as u16;
        let explicit_count = ty & 7 == 7;
        let block_count = if explicit_count { r.u8()? } else { ty & 7 };
        let start = r.pos();
        let mut blocks = AckBlocks {
            r: r.clone(),
            left: block_count,
            end: latest.checked_add(1).ok_or(FrameError::AckRangeUnderflow)?,
        };
        while blocks.left > 0 {
            blocks.read_one()?;
        }
        let used = blocks.r.pos() - start;
        let blocks_raw = r.bytes(used)?;
        Ok(Self {
            latest_32bit,
            latest_wire: latest_wire as u32,
            latest,
            delay,
            explicit_count,
            block_count,
            implicitly_acked_below: blocks.end,
            blocks_raw,
        })
    }
}

/// Iterator over an ack's explicit blocks, newest first.
#[derive(Debug, Clone)]
pub struct AckBlocks<'a> {
    r: Reader<'a>,
    left: u8,
    end: u64,
}

impl AckBlocks<'_> {
    fn read_one(&mut self) -> Result<AckBlock, FrameError> {
        let b = self.r.u8()?;
        let mut ack = u64::from((b >> 4) & 7);
        let mut nack = u64::from(b & 7);
        if b & 0x80 != 0 {
            ack |= upper(&mut self.r)? << 3;
        }
        if b & 0x08 != 0 {
            nack |= upper(&mut self.r)? << 3;
        }
        let ack_begin = self
            .end
            .checked_sub(ack)
            .ok_or(FrameError::AckRangeUnderflow)?;
        let nack_begin = ack_begin
            .checked_sub(nack)
            .ok_or(FrameError::AckRangeUnderflow)?;
        let block = AckBlock {
            counts: AckBlockCounts { ack, nack },
            acked: ack_begin..self.end,
            nacked: nack_begin..ack_begin,
        };
        self.end = nack_begin;
        self.left -= 1;
        Ok(block)
    }
}

/// Reads the varint upper part of a block count, bounded so the shift cannot overflow.
fn upper(r: &mut Reader<'_>) -> Result<u64, FrameError> {
    let v = r.varint()?;
    if v > ACK_COUNT_UPPER_MAX {
        return Err(FrameError::AckCountTooLarge);
    }
    Ok(v)
}

impl Iterator for AckBlocks<'_> {
    type Item = AckBlock;

    fn next(&mut self) -> Option<AckBlock> {
        if self.left == 0 {
            return None;
        }
        // Validated when the frame was decoded; an error here cannot happen but ends iteration.
        self.read_one().ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// Whether a count can go on the wire (its upper part passes the decoder's bound).
pub(crate) fn count_encodable(count: u64) -> bool {
    count >> 3 <= ACK_COUNT_UPPER_MAX
}

/// Encoded length of one block.
pub(crate) fn block_len(c: AckBlockCounts) -> usize {
    let part = |n: u64| {
        if n > 7 {
            crate::wire::varint::varint_len(n >> 3)
        } else {
            0
        }
    };
    1 + part(c.ack) + part(c.nack)
}

/// Encoded length of the frame head (type, latest, delay, optional count).
pub(crate) fn head_len(latest_32bit: bool, blocks: usize) -> usize {
    let latest = if latest_32bit { 4 } else { 2 };
    1 + latest + 2 + usize::from(blocks > 6)
}

/// Appends an ack frame. Counts must be [`count_encodable`] and `blocks.len()` ≤ 255 (the
/// encoder checks both first).
pub(crate) fn write_ack(
    out: &mut Vec<u8>,
    latest: u64,
    latest_32bit: bool,
    delay: u16,
    blocks: &[AckBlockCounts],
    explicit_count: bool,
) {
    let n = blocks.len().min(ACK_MAX_BLOCKS) as u8;
    let explicit = explicit_count || n > 6;
    let w = if latest_32bit { 0 } else { 0x08 };
    out.push(0x90 | w | if explicit { 7 } else { n });
    write_le(out, latest, if latest_32bit { 4 } else { 2 });
    write_le(out, u64::from(delay), 2);
    if explicit {
        out.push(n);
    }
    for c in blocks.iter().take(ACK_MAX_BLOCKS) {
        let mut b = (((c.ack & 7) as u8) << 4) | (c.nack & 7) as u8;
        if c.ack > 7 {
            b |= 0x80;
        }
        if c.nack > 7 {
            b |= 0x08;
        }
        out.push(b);
        if c.ack > 7 {
            write_varint(out, c.ack >> 3);
        }
        if c.nack > 7 {
            write_varint(out, c.nack >> 3);
        }
    }
}
