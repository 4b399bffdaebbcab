//! A bounds-checked cursor over a frame buffer: every read returns `Truncated` instead of
//! indexing past the end, which is what keeps the frame decoders total.

use super::FrameError;
use crate::wire::varint::{VarintError, read_varint};

/// Cursor over borrowed bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The unread bytes.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining().is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameError> {
        let b = *self.buf.get(self.pos).ok_or(FrameError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).ok_or(FrameError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(FrameError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// A little-endian integer of `n` ≤ 8 bytes (GNS's 24- and 48-bit fields are plain LE too).
    pub(crate) fn le(&mut self, n: usize) -> Result<u64, FrameError> {
        let s = self.bytes(n)?;
        Ok(s.iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, FrameError> {
        let (v, n) = read_varint(self.remaining()).map_err(|e| match e {
            VarintError::Truncated => FrameError::Truncated,
            VarintError::Overflow => FrameError::VarintOverflow,
        })?;
        self.pos += n;
        Ok(v)
    }

    /// Consumes and returns everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = self.remaining();
        self.pos = self.buf.len();
        r
    }
}

/// Appends the low `n` bytes of `value` little-endian.
pub(crate) fn write_le(out: &mut Vec<u8>, value: u64, n: usize) {
    out.extend_from_slice(&value.to_le_bytes()[..n.min(8)]);
}
