//! The reliable stream receive buffer of one lane (spec §4.5, §4.6).
//!
//! Each lane's reliable messages travel as a byte stream whose first byte is at position 1.
//! Segments arrive in any order, duplicated, and retransmitted with different boundaries; the
//! buffer keeps everything from the consumed position to the highest byte received, with
//! holes tracked as gaps:
//!
//! ```text
//!   consumed                                         end
//!      |  readable  | gap |  data  |  gap   |  data   |
//!      [============[xxxxx[========[xxxxxxxx[=========]
//!       ^ readable() exposes this prefix; consume(n) drops it
//! ```
//!
//! To bound the memory and bookkeeping a peer can force, a segment is refused (and its packet
//! left unacked, so the sender retries later) when it would open a 31st gap at the end, split
//! a gap while 20 exist, or make the buffer exceed `RecvBufferSize`.

use std::ops::Range;

/// Default `RecvBufferSize` (config 47, §6): 1 MiB.
#[cfg(test)]
pub(crate) const RECV_BUFFER_SIZE_DEFAULT: usize = 1_048_576;

/// Gaps allowed before a segment beyond the end is refused (GNS
/// `k_nMaxReliableStreamGaps_Extend`, §4.6).
pub(crate) const MAX_GAPS_EXTEND: usize = 30;

/// Gaps allowed before a segment that splits a gap is refused (GNS
/// `k_nMaxReliableStreamGaps_Fragment`, §4.6).
pub(crate) const MAX_GAPS_FRAGMENT: usize = 20;

/// Position of the first byte of every reliable stream (0 is reserved, §4.5).
pub(crate) const STREAM_START: u64 = 1;

/// Why a segment was refused; the packet carrying it must not be acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SegmentRejected {
    /// Position 0 or a range that overflows u64: a decoder bug or a hostile peer.
    #[error("invalid stream position")]
    InvalidPosition,
    /// Buffered bytes (consumed position to end) would exceed the limit.
    #[error("receive buffer would hold {would_hold} bytes, limit {limit}")]
    BufferFull {
        /// Buffer size after the segment.
        would_hold: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The segment would open a new gap past the end while too many exist.
    #[error("too many gaps to extend the stream")]
    TooManyGapsToExtend,
    /// The segment would split a gap while too many exist.
    #[error("too many gaps to split one")]
    TooManyGapsToSplit,
}

/// What an accepted segment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Some bytes were new.
    New,
    /// Everything was already received or consumed.
    Duplicate,
}

/// Receive buffer of one lane's reliable stream.
#[derive(Debug, Clone)]
pub(crate) struct RecvStream {
    /// Stream position of `data[head]`.
    consumed: u64,
    /// Bytes from the consumed position to the end, holes zero-filled; the first `head` bytes
    /// are consumed and await compaction.
    data: Vec<u8>,
    head: usize,
    /// Missing ranges, ascending, within `consumed..end()`.
    gaps: Vec<Range<u64>>,
    limit: usize,
}

impl RecvStream {
    /// An empty stream expecting position [`STREAM_START`], holding at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        RecvStream {
            consumed: STREAM_START,
            data: Vec::new(),
            head: 0,
            gaps: Vec::new(),
            limit,
        }
    }

    /// Frees the buffer's capacity when nothing unconsumed is held (idle connections).
    pub(crate) fn release_idle(&mut self) {
        if self.head == self.data.len() {
            // `consumed` stays the position of `data[head]`.
            self.data = Vec::new();
            self.head = 0;
        }
        if self.gaps.is_empty() {
            self.gaps = Vec::new();
        }
    }

    /// Changes the limit (`RecvBufferSize` changed): bytes already held stay, new ones must fit.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Position of the first byte not yet consumed.
    #[cfg(test)]
    pub(crate) fn consumed_position(&self) -> u64 {
        self.consumed
    }

    /// One past the highest byte received: the reference for reconstructing truncated
    /// absolute positions (§4.5).
    pub(crate) fn end(&self) -> u64 {
        self.consumed + (self.data.len() - self.head) as u64
    }

    /// Bytes held from the consumed position to the end, holes included (what the limit counts).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffered_len(&self) -> u64 {
        self.end() - self.consumed
    }

    /// Number of holes.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn gap_count(&self) -> usize {
        self.gaps.len()
    }

    /// The missing ranges, ascending.
    #[cfg(test)]
    pub(crate) fn gaps(&self) -> &[Range<u64>] {
        &self.gaps
    }

    /// The contiguous bytes from the consumed position up to the first hole.
    pub(crate) fn readable(&self) -> &[u8] {
        let upto = self.gaps.first().map_or(self.end(), |g| g.start);
        let len = (upto - self.consumed) as usize;
        &self.data[self.head..self.head + len]
    }

    /// Drops up to `n` readable bytes (a parsed message) and returns how many were dropped.
    pub(crate) fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.readable().len());
        self.head += n;
        self.consumed += n as u64;
        // Amortised compaction: move the tail down once the dead prefix dominates.
        if self.head == self.data.len() {
            self.data.clear();
            self.head = 0;
        } else if self.head > 4096 && self.head > self.data.len() / 2 {
            self.data.drain(..self.head);
            self.head = 0;
        }
        n
    }

    /// Takes a reliable segment at stream position `pos`. Overlaps with received or consumed
    /// data are fine; on error nothing changed.
    // GNS: CSteamNetworkConnectionBase::SNP_ReceiveReliableSegment
    pub(crate) fn insert(&mut self, pos: u64, bytes: &[u8]) -> Result<Inserted, SegmentRejected> {
        if pos < STREAM_START {
            return Err(SegmentRejected::InvalidPosition);
        }
        let seg_end = pos
            .checked_add(bytes.len() as u64)
            .ok_or(SegmentRejected::InvalidPosition)?;
        if seg_end <= self.consumed {
            return Ok(Inserted::Duplicate);
        }
        let start = pos.max(self.consumed);
        let bytes = &bytes[(start - pos) as usize..];
        let end = self.end();

        if seg_end > end {
            let would_hold = seg_end - self.consumed;
            if would_hold > self.limit as u64 {
                return Err(SegmentRejected::BufferFull {
                    would_hold,
                    limit: self.limit,
                });
            }
            if start > end && self.gaps.len() >= MAX_GAPS_EXTEND {
                return Err(SegmentRejected::TooManyGapsToExtend);
            }
        }
        let splits = self.gaps.iter().any(|g| g.start < start && seg_end < g.end);
        if splits && self.gaps.len() >= MAX_GAPS_FRAGMENT {
            return Err(SegmentRejected::TooManyGapsToSplit);
        }
        let fills_gap = self.gaps.iter().any(|g| g.start < seg_end && start < g.end);
        if seg_end <= end && !fills_gap {
            return Ok(Inserted::Duplicate);
        }

        // Mutate: grow, copy, then fix up the gap list.
        let at = self.head + (start - self.consumed) as usize;
        if at == self.data.len() {
            // In order (the common case): append, without zeroing the room first.
            self.data.extend_from_slice(bytes);
        } else {
            let new_len = self.head + (seg_end.max(end) - self.consumed) as usize;
            if new_len > self.data.len() {
                self.data.resize(new_len, 0);
            }
            self.data[at..at + bytes.len()].copy_from_slice(bytes);
        }

        if self.gaps.is_empty() {
            // The common case (no loss): nothing to split, no allocation per segment.
            if start > end {
                self.gaps.push(end..start);
            }
            return Ok(Inserted::New);
        }
        let mut gaps = Vec::with_capacity(self.gaps.len() + 1);
        for g in self.gaps.drain(..) {
            if g.end <= start || seg_end <= g.start {
                gaps.push(g);
                continue;
            }
            if g.start < start {
                gaps.push(g.start..start);
            }
            if seg_end < g.end {
                gaps.push(seg_end..g.end);
            }
        }
        if start > end {
            gaps.push(end..start);
        }
        self.gaps = gaps;
        Ok(Inserted::New)
    }
}

#[cfg(test)]
mod tests;
