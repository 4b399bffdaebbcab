//! SNP frames: the message layer inside a decrypted data packet (spec §4.1-4.10).
//!
//! A packet's plaintext is a sequence of frames with no length prefix and no way to skip an
//! unknown one, so any decode error kills the connection (§4.2). Segment headers are compressed
//! against per-packet, per-lane contexts (the previous message number and stream end in this
//! packet) and against per-lane state the receiver supplies through [`FrameRefs`]. The
//! [`FrameDecoder`] and [`PacketEncoder`] track those contexts identically, so every packet the
//! encoder writes decodes back to the same frames.
//!
//! Receiver *policies* are left to the caller, because they are not decode errors in GNS: the
//! per-packet segment cap (`RecvMaxSegmentsPerPacket`), ignoring unreliable segments with
//! offset + size > 26000 or size > 1300, dropping the rest of a packet whose ack `latest` is ≥
//! our next packet number, stop_waiting monotonicity, and the §4.6 reliable header sanity limits.
//!
//! ```text
//!  plaintext ─► FrameDecoder (iterator, borrows data) ─► Frame::{StopWaiting, Ack, SelectLane,
//!                                                              Unreliable, Reliable}
//!  reliable stream bytes ─► message::decode_reliable_header ─► ReliableHeader
//! ```

mod ack;
mod decoder;
mod encoder;
mod message;
mod reader;
mod segment;
mod stop_waiting;
#[cfg(test)]
mod tests;

pub use ack::{
    ACK_COUNT_UPPER_MAX, ACK_DELAY_NO_TIMING, ACK_MAX_BLOCKS, AckBlock, AckBlockCounts, AckBlocks,
    AckFrame, ack_delay_from_usec,
};
pub use decoder::{FixedRefs, FrameCursor, FrameDecoder, FrameRefs};
pub use encoder::{EncodeError, PacketEncoder};
pub use message::{
    ReliableHeader, decode_reliable_header, reliable_header_len, write_reliable_header,
};
pub use segment::{
    MAX_EXPLICIT_SIZE, MsgNumEncoding, ReliableSegment, StreamPosEncoding, UnreliableSegment,
};
pub use stop_waiting::StopWaiting;

/// Why a frame (or a reliable message header) could not be decoded. Any of these kills the
/// connection (GNS: `DECODE_ERROR` in `ProcessPlainTextDataChunk` → `Misc_InternalError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The packet ended inside a frame.
    #[error("frame truncated")]
    Truncated,
    /// A frame type byte from the reserved patterns of §4.2.
    #[error("reserved frame type byte {0:#04x}")]
    ReservedFrameType(u8),
    /// Segment size code `101` or `110` (§4.3).
    #[error("reserved segment size code")]
    ReservedSizeCode,
    /// First reliable segment with position encoding `11` (§4.5).
    #[error("reserved stream position encoding")]
    ReservedStreamPosEncoding,
    /// A varint longer than ten bytes or above `u64::MAX`.
    #[error("varint overflow")]
    VarintOverflow,
    /// stop_waiting offset reaching back before packet 0 (§4.8).
    #[error("invalid stop_waiting offset")]
    BadStopWaiting,
    /// select lane naming a lane above 255 (§4.10).
    #[error("lane out of range")]
    LaneOutOfRange,
    /// A reconstructed message number ≤ 0 or past `u64::MAX` (§4.4).
    #[error("message number not positive")]
    MessageNumberNotPositive,
    /// A reconstructed stream position ≤ 0, or a segment ending past `u64::MAX` (§4.5).
    #[error("stream position not positive")]
    StreamPositionNotPositive,
    /// An ack block count whose upper part exceeds 100000 (§4.9).
    #[error("ack block count too large")]
    AckCountTooLarge,
    /// Ack blocks reaching below packet 0, or a `latest` that expands below 0 (§4.9).
    #[error("ack range below zero")]
    AckRangeUnderflow,
    /// A reliable message header with bit 0x80 set (§4.6).
    #[error("reliable message header has high bit set")]
    ReliableHeaderHighBit,
}

/// The five frame kinds, from the type byte alone (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// `00xxxxxx`
    Unreliable,
    /// `010xxxxx`
    Reliable,
    /// `100000ww`
    StopWaiting,
    /// `10001nnn`
    SelectLane,
    /// `1001wnnn`
    Ack,
}

impl FrameType {
    /// Classifies a type byte; every reserved pattern is an error because frames cannot be
    /// skipped (GNS: `ProcessPlainTextDataChunk`).
    pub fn classify(byte: u8) -> Result<Self, FrameError> {
        match byte {
            0x00..=0x3f => Ok(Self::Unreliable),
            0x40..=0x5f => Ok(Self::Reliable),
            0x80..=0x83 => Ok(Self::StopWaiting),
            0x88..=0x8f => Ok(Self::SelectLane),
            0x90..=0x9f => Ok(Self::Ack),
            _ => Err(FrameError::ReservedFrameType(byte)),
        }
    }
}

/// One decoded frame; segment data borrows from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Tells the receiver the oldest packet it still needs to report on.
    StopWaiting(StopWaiting),
    /// Packets the peer received and missed.
    Ack(AckFrame<'a>),
    /// Switches the lane for the following segments and resets the segment contexts.
    SelectLane {
        /// The lane now in effect (0..=255).
        lane: u8,
    },
    /// A piece of an unreliable message.
    Unreliable(UnreliableSegment<'a>),
    /// A range of a lane's reliable stream.
    Reliable(ReliableSegment<'a>),
}

impl Frame<'_> {
    /// The kind of this frame.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Self::StopWaiting(_) => FrameType::StopWaiting,
            Self::Ack(_) => FrameType::Ack,
            Self::SelectLane { .. } => FrameType::SelectLane,
            Self::Unreliable(_) => FrameType::Unreliable,
            Self::Reliable(_) => FrameType::Reliable,
        }
    }
}
