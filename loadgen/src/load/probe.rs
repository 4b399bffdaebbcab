//! The echo probe: what a load client sends and expects back unchanged.
//!
//! ```text
//!  0        4                12               20                     size
//!  | conn   | seq            | sent_us        | pattern(conn, seq, i) ... |
//!  | u32 LE | u64 LE         | u64 LE         |                           |
//! ```
//!
//! `conn` is the client's index of the connection, `seq` counts from 0 per connection, and
//! `sent_us` is the client's own monotonic clock, so the round trip is measured on one clock.
//! Every byte after the header depends on the connection, the sequence number and its offset,
//! so a swapped, shifted or truncated payload does not check.

/// Bytes of header; a probe is at least this long.
pub const HEADER: usize = 20;

/// The header fields of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The client's index of the connection it was sent on.
    pub conn: u32,
    /// Sequence number on that connection, from 0.
    pub seq: u64,
    /// Send time on the client's clock, microseconds.
    pub sent_us: u64,
}

/// The per-message seed of the pattern.
fn seed(conn: u32, seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(conn).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
}

/// Byte `i` (`i >= HEADER`) of the pattern of a probe with this seed.
fn pattern_byte(seed: u64, i: usize) -> u8 {
    // invariant: `i % 64` is below 64, so it fits a u32; the casts to u8 keep the low byte.
    (seed.rotate_left((i % 64) as u32) as u8) ^ (i as u8)
}

/// The `size`-byte payload of `probe` (`size` is raised to [`HEADER`]).
#[must_use]
pub fn encode(probe: Probe, size: usize) -> Vec<u8> {
    let size = size.max(HEADER);
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&probe.conn.to_le_bytes());
    v.extend_from_slice(&probe.seq.to_le_bytes());
    v.extend_from_slice(&probe.sent_us.to_le_bytes());
    let s = seed(probe.conn, probe.seq);
    v.extend((HEADER..size).map(|i| pattern_byte(s, i)));
    v
}

/// The header of `bytes`, if it is long enough to have one.
#[must_use]
pub fn header(bytes: &[u8]) -> Option<Probe> {
    let conn = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let seq = u64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?);
    let sent_us = u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?);
    Some(Probe { conn, seq, sent_us })
}

/// Whether `bytes` is exactly the `size`-byte payload of `probe`.
#[must_use]
pub fn is_intact(bytes: &[u8], probe: Probe, size: usize) -> bool {
    let size = size.max(HEADER);
    if bytes.len() != size || header(bytes) != Some(probe) {
        return false;
    }
    let s = seed(probe.conn, probe.seq);
    bytes[HEADER..]
        .iter()
        .enumerate()
        .all(|(k, &b)| b == pattern_byte(s, HEADER + k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Probe = Probe {
        conn: 7,
        seq: 123_456,
        sent_us: 99,
    };

    #[test]
    fn an_encoded_probe_reads_back_and_checks() {
        let bytes = encode(P, 1024);
        assert_eq!(bytes.len(), 1024);
        assert_eq!(header(&bytes), Some(P));
        assert!(is_intact(&bytes, P, 1024));
    }

    #[test]
    fn a_flipped_byte_a_short_payload_or_another_sequence_does_not_check() {
        let mut bytes = encode(P, 64);
        bytes[40] ^= 1;
        assert!(!is_intact(&bytes, P, 64));
        let bytes = encode(P, 64);
        assert!(!is_intact(&bytes[..63], P, 64));
        let other = Probe {
            seq: P.seq + 1,
            ..P
        };
        assert!(!is_intact(&encode(other, 64), P, 64));
        assert_eq!(header(&bytes[..19]), None);
    }

    #[test]
    fn the_pattern_differs_between_connections_at_the_same_offset() {
        let a = encode(P, 64);
        let b = encode(Probe { conn: 8, ..P }, 64);
        assert_ne!(a[HEADER..], b[HEADER..]);
    }
}
