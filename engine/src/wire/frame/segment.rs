//! Unreliable (`0 0 e m o s s s`, §4.4) and reliable (`0 1 0 m m s s s`, §4.5) segments, and
//! the in-packet context both are compressed against.
//!
//! The context ([`SegmentContext`]) is per packet: lane 0 at the start, and a select-lane frame
//! resets it. The first unreliable segment carries a truncated absolute message number, later
//! ones a delta or an implied +1; **each reliable segment after an unreliable number has been
//! established bumps that number by one** (GNS encoder optimisation, mirrored exactly). The first
//! reliable segment carries a truncated absolute stream position, later ones an offset from the
//! previous reliable segment's end.

use super::FrameError;
use super::reader::{Reader, write_le};
use crate::wire::pktnum::{nearest_with_low_bits, stream_pos_from_low_bits};
use crate::wire::varint::write_varint;

/// Largest size an explicit size code can express (`(4 << 8) | 0xff`).
pub const MAX_EXPLICIT_SIZE: usize = 1279;

/// How an unreliable segment's message number was (or will be) written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgNumEncoding {
    /// First in context, `m` = 0: low 16 bits.
    AbsoluteU16,
    /// First in context, `m` = 1: low 32 bits (what GNS always sends).
    AbsoluteU32,
    /// Later in context, `m` = 1: varint added to the current number.
    DeltaVarint,
    /// Later in context, `m` = 0: current number + 1.
    ImpliedPlusOne,
}

/// How a reliable segment's stream position was (or will be) written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPosEncoding {
    /// First in context, `mm` = 00: low 24 bits.
    Absolute24,
    /// First in context, `mm` = 01: low 32 bits.
    Absolute32,
    /// First in context, `mm` = 10: low 48 bits (what GNS always sends).
    Absolute48,
    /// Later, `mm` = 00: starts where the previous reliable segment ended.
    Contiguous,
    /// Later, `mm` = 01: previous end + u8.
    DeltaU8,
    /// Later, `mm` = 10: previous end + u16.
    DeltaU16,
    /// Later, `mm` = 11: previous end + u32.
    DeltaU32,
}

/// A decoded unreliable segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreliableSegment<'a> {
    /// Lane in effect.
    pub lane: u8,
    /// Full message number.
    pub msg_num: u64,
    /// How it was written.
    pub msg_num_encoding: MsgNumEncoding,
    /// Byte offset of `data` within the message.
    pub offset: u64,
    /// Whether the offset field was present (GNS sends it iff offset > 0).
    pub offset_present: bool,
    /// This segment ends the message.
    pub end_of_message: bool,
    /// Size code `111`: the data ran to the end of the packet.
    pub size_to_end: bool,
    /// The bytes, borrowed from the packet.
    pub data: &'a [u8],
}

/// A decoded reliable segment: `data` is the lane's stream at `stream_pos..stream_end()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReliableSegment<'a> {
    /// Lane in effect.
    pub lane: u8,
    /// Stream position of the first byte (the stream starts at 1).
    pub stream_pos: u64,
    /// How it was written.
    pub stream_pos_encoding: StreamPosEncoding,
    /// Size code `111`: the data ran to the end of the packet.
    pub size_to_end: bool,
    /// The bytes, borrowed from the packet.
    pub data: &'a [u8],
}

impl ReliableSegment<'_> {
    /// Stream position just past the last byte.
    pub fn stream_end(&self) -> u64 {
        self.stream_pos.saturating_add(self.data.len() as u64)
    }
}

/// The per-packet, per-lane compression context, shared by decoder and encoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SegmentContext {
    /// Lane in effect.
    pub lane: u8,
    /// Current unreliable message number, once established in this context.
    pub msg_num: Option<u64>,
    /// End of the previous reliable segment in this context.
    pub stream_end: Option<u64>,
}

impl SegmentContext {
    /// A select-lane frame: new lane, fresh context.
    pub(crate) fn select(&mut self, lane: u8) {
        *self = Self {
            lane,
            ..Self::default()
        };
    }

    /// Records an unreliable segment's number.
    pub(crate) fn note_unreliable(&mut self, msg_num: u64) {
        self.msg_num = Some(msg_num);
    }

    /// Records a reliable segment: its end, and the +1 bump of the unreliable number
    /// (GNS: `ProcessPlainTextDataChunk` / `SNP_SendPacket`).
    pub(crate) fn note_reliable(&mut self, end: u64) -> Result<(), FrameError> {
        self.stream_end = Some(end);
        if let Some(n) = self.msg_num {
            self.msg_num = Some(
                n.checked_add(1)
                    .ok_or(FrameError::MessageNumberNotPositive)?,
            );
        }
        Ok(())
    }
}

/// Reads the size field and the data (§4.3).
fn read_data<'a>(code: u8, r: &mut Reader<'a>) -> Result<(&'a [u8], bool), FrameError> {
    match code {
        0..=4 => {
            let size = (usize::from(code) << 8) | usize::from(r.u8()?);
            Ok((r.bytes(size)?, false))
        }
        7 => Ok((r.rest(), true)),
        _ => Err(FrameError::ReservedSizeCode),
    }
}

/// Size bits for the type byte; the explicit size byte (if any) is written by [`write_size`].
pub(crate) fn size_code(len: usize, to_end: bool) -> u8 {
    if to_end { 7 } else { ((len >> 8) & 7) as u8 }
}

fn write_size(out: &mut Vec<u8>, len: usize, to_end: bool) {
    if !to_end {
        out.push((len & 0xff) as u8);
    }
}

impl<'a> UnreliableSegment<'a> {
    /// Decodes after type byte `ty`; `reference` is the lane's highest message number seen.
    /// Inlined into the frame loop: returned through memory, the segment's fields cost the
    /// caller a stalled reload per frame (a packet of small messages has dozens).
    #[inline]
    pub(crate) fn read(
        ty: u8,
        r: &mut Reader<'a>,
        ctx: &mut SegmentContext,
        reference: u64,
    ) -> Result<Self, FrameError> {
        let m = ty & 0x10 != 0;
        let (msg_num, msg_num_encoding) = match ctx.msg_num {
            None => {
                let (wire, bits, enc) = if m {
                    (r.le(4)?, 32, MsgNumEncoding::AbsoluteU32)
                } else {
                    (r.le(2)?, 16, MsgNumEncoding::AbsoluteU16)
                };
                let n = nearest_with_low_bits(reference, wire, bits)
                    .filter(|&n| n > 0)
                    .ok_or(FrameError::MessageNumberNotPositive)?;
                (n, enc)
            }
            Some(cur) => {
                let (delta, enc) = if m {
                    (r.varint()?, MsgNumEncoding::DeltaVarint)
                } else {
                    (1, MsgNumEncoding::ImpliedPlusOne)
                };
                let n = cur
                    .checked_add(delta)
                    .ok_or(FrameError::MessageNumberNotPositive)?;
                (n, enc)
            }
        };
        let offset_present = ty & 0x08 != 0;
        let offset = if offset_present { r.varint()? } else { 0 };
        let (data, size_to_end) = read_data(ty & 7, r)?;
        ctx.note_unreliable(msg_num);
        Ok(Self {
            lane: ctx.lane,
            msg_num,
            msg_num_encoding,
            offset,
            offset_present,
            end_of_message: ty & 0x20 != 0,
            size_to_end,
            data,
        })
    }

    /// Appends the segment with its recorded encodings; the caller has checked them against
    /// `cur` (the context's current number) and the size limit.
    pub(crate) fn write(&self, out: &mut Vec<u8>, cur: u64) {
        let m = matches!(
            self.msg_num_encoding,
            MsgNumEncoding::AbsoluteU32 | MsgNumEncoding::DeltaVarint
        );
        let offset_present = self.offset_present || self.offset > 0;
        let mut ty = size_code(self.data.len(), self.size_to_end);
        ty |= if self.end_of_message { 0x20 } else { 0 };
        ty |= if m { 0x10 } else { 0 };
        ty |= if offset_present { 0x08 } else { 0 };
        out.push(ty);
        match self.msg_num_encoding {
            MsgNumEncoding::AbsoluteU16 => write_le(out, self.msg_num, 2),
            MsgNumEncoding::AbsoluteU32 => write_le(out, self.msg_num, 4),
            MsgNumEncoding::DeltaVarint => write_varint(out, self.msg_num.wrapping_sub(cur)),
            MsgNumEncoding::ImpliedPlusOne => {}
        }
        if offset_present {
            write_varint(out, self.offset);
        }
        write_size(out, self.data.len(), self.size_to_end);
        out.extend_from_slice(self.data);
    }
}

impl<'a> ReliableSegment<'a> {
    /// Decodes after type byte `ty`; `reference` is the lane's next expected stream position.
    /// Inlined into the frame loop, as [`UnreliableSegment::read`].
    #[inline]
    pub(crate) fn read(
        ty: u8,
        r: &mut Reader<'a>,
        ctx: &mut SegmentContext,
        reference: u64,
    ) -> Result<Self, FrameError> {
        let mm = (ty >> 3) & 3;
        let (stream_pos, stream_pos_encoding) = match ctx.stream_end {
            None => {
                let (bytes, enc) = match mm {
                    0 => (3, StreamPosEncoding::Absolute24),
                    1 => (4, StreamPosEncoding::Absolute32),
                    2 => (6, StreamPosEncoding::Absolute48),
                    _ => return Err(FrameError::ReservedStreamPosEncoding),
                };
                let wire = r.le(bytes)?;
                let pos = stream_pos_from_low_bits(reference, wire, 8 * bytes as u32)
                    .filter(|&p| p > 0)
                    .ok_or(FrameError::StreamPositionNotPositive)?;
                (pos, enc)
            }
            Some(end) => {
                let (delta, enc) = match mm {
                    0 => (0, StreamPosEncoding::Contiguous),
                    1 => (r.le(1)?, StreamPosEncoding::DeltaU8),
                    2 => (r.le(2)?, StreamPosEncoding::DeltaU16),
                    _ => (r.le(4)?, StreamPosEncoding::DeltaU32),
                };
                let pos = end
                    .checked_add(delta)
                    .ok_or(FrameError::StreamPositionNotPositive)?;
                (pos, enc)
            }
        };
        let (data, size_to_end) = read_data(ty & 7, r)?;
        let end = stream_pos
            .checked_add(data.len() as u64)
            .ok_or(FrameError::StreamPositionNotPositive)?;
        ctx.note_reliable(end)?;
        Ok(Self {
            lane: ctx.lane,
            stream_pos,
            stream_pos_encoding,
            size_to_end,
            data,
        })
    }

    /// Appends the segment with its recorded encoding; the caller has checked it against
    /// `prev_end` (the context's previous reliable end) and the size limit.
    pub(crate) fn write(&self, out: &mut Vec<u8>, prev_end: u64) {
        let (mm, field, bytes) = match self.stream_pos_encoding {
            StreamPosEncoding::Absolute24 => (0, self.stream_pos, 3),
            StreamPosEncoding::Absolute32 => (1, self.stream_pos, 4),
            StreamPosEncoding::Absolute48 => (2, self.stream_pos, 6),
            StreamPosEncoding::Contiguous => (0, 0, 0),
            StreamPosEncoding::DeltaU8 => (1, self.stream_pos.wrapping_sub(prev_end), 1),
            StreamPosEncoding::DeltaU16 => (2, self.stream_pos.wrapping_sub(prev_end), 2),
            StreamPosEncoding::DeltaU32 => (3, self.stream_pos.wrapping_sub(prev_end), 4),
        };
        out.push(0x40 | (mm << 3) | size_code(self.data.len(), self.size_to_end));
        write_le(out, field, bytes);
        write_size(out, self.data.len(), self.size_to_end);
        out.extend_from_slice(self.data);
    }
}
