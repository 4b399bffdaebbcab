//! The frame decoder: an iterator over one packet's plaintext (GNS: `ProcessPlainTextDataChunk`).
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

/// Iterates the frames of one packet. Yields `Err` at most once, then ends.
#[derive(Debug)]
pub struct FrameDecoder<'a, 'r, R: FrameRefs + ?Sized> {
    r: Reader<'a>,
    packet_number: u64,
    refs: &'r R,
    ctx: SegmentContext,
    failed: bool,
}

impl<'a, 'r, R: FrameRefs + ?Sized> FrameDecoder<'a, 'r, R> {
    /// Starts decoding `plaintext`, the payload of packet `packet_number` (already expanded;
    /// stop_waiting is relative to it).
    pub fn new(plaintext: &'a [u8], packet_number: u64, refs: &'r R) -> Self {
        Self {
            r: Reader::new(plaintext),
            packet_number,
            refs,
            ctx: SegmentContext::default(),
            failed: false,
        }
    }

    /// Offset in the plaintext where the next frame starts.
    pub fn offset(&self) -> usize {
        self.r.pos()
    }

    /// The lane in effect for the next segment.
    pub fn lane(&self) -> u8 {
        self.ctx.lane
    }

    fn read_frame(&mut self) -> Result<Frame<'a>, FrameError> {
        let ty = self.r.u8()?;
        let r = &mut self.r;
        Ok(match FrameType::classify(ty)? {
            FrameType::StopWaiting => {
                Frame::StopWaiting(StopWaiting::read(ty, r, self.packet_number)?)
            }
            FrameType::Ack => Frame::Ack(AckFrame::read(ty, r, self.refs.next_packet_number())?),
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
                let reference = self.refs.message_number_ref(self.ctx.lane);
                Frame::Unreliable(UnreliableSegment::read(ty, r, &mut self.ctx, reference)?)
            }
            FrameType::Reliable => {
                let reference = self.refs.stream_pos_ref(self.ctx.lane);
                Frame::Reliable(ReliableSegment::read(ty, r, &mut self.ctx, reference)?)
            }
        })
    }
}

impl<'a, R: FrameRefs + ?Sized> Iterator for FrameDecoder<'a, '_, R> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let item = self.read_frame();
        self.failed = item.is_err();
        Some(item)
    }
}

impl<R: FrameRefs + ?Sized> std::iter::FusedIterator for FrameDecoder<'_, '_, R> {}
