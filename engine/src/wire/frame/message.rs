//! Reliable message framing inside a lane's reliable stream (spec §4.6).
//!
//! Each message is a header byte `0 m s s s s s s`, an optional message-number delta varint
//! (`m`; else delta 1, counted from the previous *reliable* message on the lane), an optional
//! size varint (`0x20`; size = varint << 5 | low 5 bits), then the payload. The stream arrives
//! in pieces, so the decoder distinguishes "need more bytes" (`Ok(None)`) from malformed.
//! Sanity limits on delta and size (§4.6 "Receiver sanity") are the receiver's policy and are
//! not applied here.

use super::FrameError;
use super::reader::Reader;
use crate::wire::varint::{varint_len, write_varint};

/// A decoded reliable message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReliableHeader {
    /// Message number minus the previous reliable message's number on this lane.
    pub msg_num_delta: u64,
    /// Payload bytes that follow the header.
    pub size: u64,
    /// Header bytes (type byte plus varints).
    pub header_len: usize,
}

/// Decodes a header from the front of `buf`; `Ok(None)` when `buf` ends inside the header.
pub fn decode_reliable_header(buf: &[u8]) -> Result<Option<ReliableHeader>, FrameError> {
    match read(buf) {
        Err(FrameError::Truncated) => Ok(None),
        other => other.map(Some),
    }
}

fn read(buf: &[u8]) -> Result<ReliableHeader, FrameError> {
    let mut r = Reader::new(buf);
    let h = r.u8()?;
    if h & 0x80 != 0 {
        return Err(FrameError::ReliableHeaderHighBit);
    }
    let msg_num_delta = if h & 0x40 != 0 { r.varint()? } else { 1 };
    let low = u64::from(h & 0x1f);
    let size = if h & 0x20 != 0 {
        let upper = r.varint()?;
        if upper > u64::MAX >> 5 {
            return Err(FrameError::VarintOverflow);
        }
        (upper << 5) | low
    } else {
        low
    };
    Ok(ReliableHeader {
        msg_num_delta,
        size,
        header_len: r.pos(),
    })
}

/// Appends the header GNS writes for a message (GNS: `SNP_SendMessage`): the delta varint only
/// when it is not 1, the size varint only when size ≥ 32. Returns the header length.
pub fn write_reliable_header(out: &mut Vec<u8>, msg_num_delta: u64, size: u64) -> usize {
    let start = out.len();
    let mut h = (size & 0x1f) as u8;
    if msg_num_delta != 1 {
        h |= 0x40;
    }
    if size >= 0x20 {
        h |= 0x20;
    }
    out.push(h);
    if msg_num_delta != 1 {
        write_varint(out, msg_num_delta);
    }
    if size >= 0x20 {
        write_varint(out, size >> 5);
    }
    out.len() - start
}

/// Length [`write_reliable_header`] will produce.
pub fn reliable_header_len(msg_num_delta: u64, size: u64) -> usize {
    let delta = if msg_num_delta != 1 {
        varint_len(msg_num_delta)
    } else {
        0
    };
    let size = if size >= 0x20 {
        varint_len(size >> 5)
    } else {
        0
    };
    1 + delta + size
}
