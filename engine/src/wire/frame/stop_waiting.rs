//! stop_waiting `1 0 0 0 0 0 w w` (spec §4.8): the sender tells the receiver how far back it
//! still needs acks, so the receiver can forget older loss gaps.
//!
//! The wire value X is an offset back from the carrying packet's own number N: the receiver's
//! minimum-to-ack becomes `N - X - 1`.

use super::FrameError;
use super::reader::{Reader, write_le};

/// A decoded stop_waiting frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopWaiting {
    /// The wire offset X.
    pub value: u64,
    /// Bytes X took on the wire: 1, 2, 3 or 8.
    pub width_bytes: u8,
    /// `N - X - 1`: the receiver need not report packets below this.
    pub min_packet_to_ack: u64,
}

/// Bytes for each `ww` code.
const WIDTHS: [u8; 4] = [1, 2, 3, 8];

impl StopWaiting {
    /// The frame GNS sends in packet `packet_number` when the highest `latest` it has seen in
    /// the peer's acks is `min_waiting` (GNS: `SNP_SerializeStopWaitingFrame`). `None` if
    /// `min_waiting` is not below `packet_number`.
    pub fn for_packet(packet_number: u64, min_waiting: u64) -> Option<Self> {
        let value = packet_number.checked_sub(min_waiting)?.checked_sub(1)?;
        Some(Self {
            value,
            width_bytes: smallest_width(value),
            min_packet_to_ack: min_waiting,
        })
    }

    /// Encoded length in bytes (type byte included).
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.width_bytes)
    }

    /// Appends the frame using `width_bytes` (must be 1, 2, 3 or 8 and hold `value`; anything
    /// else falls back to the smallest width).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let width = if fits(self.value, self.width_bytes) {
            self.width_bytes
        } else {
            smallest_width(self.value)
        };
        let code = WIDTHS.iter().position(|&w| w == width).unwrap_or(3);
        out.push(0x80 | code as u8);
        write_le(out, self.value, usize::from(width));
    }

    /// Decodes after the type byte `ty`, for a frame in packet `packet_number`.
    pub(crate) fn read(ty: u8, r: &mut Reader<'_>, packet_number: u64) -> Result<Self, FrameError> {
        let width_bytes = WIDTHS[usize::from(ty & 3)];
        let value = r.le(usize::from(width_bytes))?;
        // GNS: ProcessPlainTextDataChunk rejects an offset reaching before packet 0.
        let min_packet_to_ack = packet_number
            .checked_sub(value)
            .and_then(|v| v.checked_sub(1))
            .ok_or(FrameError::BadStopWaiting)?;
        Ok(Self {
            value,
            width_bytes,
            min_packet_to_ack,
        })
    }
}

/// Whether `value` fits a legal width of `width` bytes.
fn fits(value: u64, width: u8) -> bool {
    match width {
        1..=3 => value < 1u64 << (8 * u32::from(width)),
        8 => true,
        _ => false,
    }
}

/// Smallest legal width holding `value`.
fn smallest_width(value: u64) -> u8 {
    WIDTHS.into_iter().find(|&w| fits(value, w)).unwrap_or(8)
}
