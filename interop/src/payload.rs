//! Generated payloads and the checksum that `gns-peer` prints for every message.
//!
//! A generated payload of `len` bytes has byte `i` equal to `i % 251` (a prime, so the pattern
//! does not line up with powers of two and a shifted or truncated segment is detectable).

/// Byte `i` of every generated payload.
#[must_use]
pub fn pattern_byte(i: usize) -> u8 {
    // invariant: the remainder is below 251, so it fits a u8.
    (i % 251) as u8
}

/// A generated payload of `len` bytes.
#[must_use]
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(pattern_byte).collect()
}

/// Whether `bytes` is exactly the generated payload of its length.
#[must_use]
pub fn is_pattern(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| b == pattern_byte(i))
}

/// 64-bit FNV-1a of `bytes`, the checksum printed as `fnv=` (16 lowercase hex digits).
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The `fnv=` field value for `bytes`.
#[must_use]
pub fn fnv_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn pattern_is_recognised_and_a_changed_byte_is_not() {
        let mut p = pattern(1000);
        assert!(is_pattern(&p));
        assert_eq!(p[251], 0);
        p[500] ^= 1;
        assert!(!is_pattern(&p));
        assert!(!is_pattern(b"hello"));
    }
}
