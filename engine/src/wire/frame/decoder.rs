//! The frame decoder: a cursor over one packet's plaintext (GNS: `ProcessPlainTextDataChunk`),
//! and an iterator over it for callers with fixed references.
//!
//! It tracks the in-packet segment context itself and asks the caller, through [`FrameRefs`],
//! for the per-lane references truncated numbers are reconstructed against. It stops after the
//! first error (there is no way to resynchronise, §4.2).

use super::ack::AckFrame;
use super::reader::Reader;
use super::segment::{ReliableSegment, SegmentContext, UnreliableSegment};
use super::stop_waiting::StopWaiting;
use super::{Frame, FrameError, FrameType};

/// Receiver state the decoder reconstructs truncated numbers against. The connection core
/// implements this over its lane tables; [`FixedRefs`] is a plain value for tests.
pub trait FrameRefs {
    /// The packet number we will send next: an ack's `latest` is expanded nearest to it.
    fn next_packet_number(&self) -> u64;
    /// The highest message number seen on `lane` (0 if none): reference for the first
    /// unreliable segment's absolute number.
    fn message_number_ref(&self, lane: u8) -> u64;
    /// The next reliable stream position expected on `lane` (consumed + buffered; 1 for a new
    /// lane): reference for the first reliable segment's absolute position (reconstructed with
    /// GNS's forward-only rule, [`crate::wire::pktnum::stream_pos_from_low_bits`]).
    fn stream_pos_ref(&self, lane: u8) -> u64;
}

/// The same references for every lane; enough for tests and single-lane tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedRefs {
    /// See [`FrameRefs::next_packet_number`].
    pub next_packet_number: u64,
    /// See [`FrameRefs::message_number_ref`].
    pub message_number: u64,
    /// See [`FrameRefs::stream_pos_ref`].
    pub stream_pos: u64,
}

impl Default for FixedRefs {
    /// A fresh connection: we send packet 2 next, nothing received on any lane yet.
    fn default() -> Self {
        Self {
            next_packet_number: 2,
            message_number: 0,
            stream_pos: 1,
        }
    }
}

impl FrameRefs for FixedRefs {
    fn next_packet_number(&self) -> u64 {
        self.next_packet_number
    }
    fn message_number_ref(&self, _lane: u8) -> u64 {
        self.message_number
    }
    fn stream_pos_ref(&self, _lane: u8) -> u64 {
        self.stream_pos
    }
}

/// Walks the frames of one packet, taking the references afresh for each frame, so a caller
/// may apply each frame to the state the references come from before decoding the next (as
/// GNS does: a lane revisited later in the packet is decoded against what the earlier
/// segments made of it). Yields `Err` at most once, then ends.
#[derive(Debug)]
pub struct FrameCursor<'a> {
    r: Reader<'a>,
    packet_number: u64,
    ctx: SegmentContext,
    failed: bool,
}

impl<'a> FrameCursor<'a> {
    /// Starts at the first frame of `plaintext`, the payload of packet `packet_number`
    /// (already expanded; stop_waiting is relative to it).
    pub fn new(plaintext: &'a [u8], packet_number: u64) -> Self {
        Self {
            r: Reader::new(plaintext),
            packet_number,
            ctx: SegmentContext::default(),
            failed: false,
        }
    }

    /// The next frame, decoded against `refs`; `None` at the end or after an error.
    #[inline]
    pub fn next_frame<R: FrameRefs + ?Sized>(
        &mut self,
        refs: &R,
    ) -> Option<Result<Frame<'a>, FrameError>> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let item = self.read_frame(refs);
        self.failed = item.is_err();
        Some(item)
    }

    /// Offset in the plaintext where the next frame starts.
    pub fn offset(&self) -> usize {
        self.r.pos()
    }

    /// The lane in effect for the next segment.
    pub fn lane(&self) -> u8 {
        self.ctx.lane
    }

    #[inline]
    fn read_frame<R: FrameRefs + ?Sized>(&mut self, refs: &R) -> Result<Frame<'a>, FrameError> {
        let ty = self.r.u8()?;
        let r = &mut self.r;
        Ok(match FrameType::classify(ty)? {
            FrameType::StopWaiting => {
                Frame::StopWaiting(StopWaiting::read(ty, r, self.packet_number)?)
            }
            FrameType::Ack => Frame::Ack(AckFrame::read(ty, r, refs.next_packet_number())?),
            FrameType::SelectLane => {
                let lane = match ty & 7 {
                    7 => r.varint()?,
                    n => u64::from(n) + 1,
                };
                let lane = u8::try_from(lane).map_err(|_| FrameError::LaneOutOfRange)?;
                self.ctx.select(lane);
                Frame::SelectLane { lane }
            }
            FrameType::Unreliable => {
                let reference = refs.message_number_ref(self.ctx.lane);
                Frame::Unreliable(UnreliableSegment::read(ty, r, &mut self.ctx, reference)?)
            }
            FrameType::Reliable => {
                let reference = refs.stream_pos_ref(self.ctx.lane);
                Frame::Reliable(ReliableSegment::read(ty, r, &mut self.ctx, reference)?)
            }
        })
    }
}

/// Iterates the frames of one packet against one fixed set of references (a [`FrameCursor`]
/// holding its references). Yields `Err` at most once, then ends.
#[derive(Debug)]
pub struct FrameDecoder<'a, 'r, R: FrameRefs + ?Sized> {
    cursor: FrameCursor<'a>,
    refs: &'r R,
}

impl<'a, 'r, R: FrameRefs + ?Sized> FrameDecoder<'a, 'r, R> {
    /// Starts decoding `plaintext`, the payload of packet `packet_number` (already expanded;
    /// stop_waiting is relative to it).
    pub fn new(plaintext: &'a [u8], packet_number: u64, refs: &'r R) -> Self {
        Self {
            cursor: FrameCursor::new(plaintext, packet_number),
            refs,
        }
    }

    /// Offset in the plaintext where the next frame starts.
    pub fn offset(&self) -> usize {
        self.cursor.offset()
    }

    /// The lane in effect for the next segment.
    pub fn lane(&self) -> u8 {
        self.cursor.lane()
    }
}

impl<'a, R: FrameRefs + ?Sized> Iterator for FrameDecoder<'a, '_, R> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_frame(self.refs)
    }
}

impl<R: FrameRefs + ?Sized> std::iter::FusedIterator for FrameDecoder<'_, '_, R> {}
