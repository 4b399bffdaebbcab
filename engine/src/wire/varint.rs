//! Protobuf-style unsigned base-128 varints, as SNP frames and the data-packet stats blob use
//! them (spec §4.2-4.9, §1.3).
//!
//! The decoder is total: it never reads past the slice and rejects encodings longer than ten
//! bytes or that overflow 64 bits, so a hostile peer cannot make it loop or wrap.

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The input ended before the last byte (high bit clear) of the varint.
    #[error("varint truncated")]
    Truncated,
    /// More than ten bytes, or a value above `u64::MAX`.
    #[error("varint overflows 64 bits")]
    Overflow,
}

/// Largest encoded size of a `u64`.
pub const MAX_VARINT_LEN: usize = 10;

/// Reads a varint from the front of `buf`; returns the value and the number of bytes used.
pub fn read_varint(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(MAX_VARINT_LEN) {
        let low = u64::from(byte & 0x7f);
        if i == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(VarintError::Overflow);
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Number of bytes [`write_varint`] will use for `value`.
pub const fn varint_len(value: u64) -> usize {
    // 64 - leading zeros = significant bits; each byte carries 7.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `value` as a varint to `out`.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut v = Vec::new();
        write_varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        assert_eq!(read_varint(&[0xac, 0x02, 0xff]), Ok((300, 2)));
        assert_eq!(read_varint(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0xff; 11]), Err(VarintError::Overflow));
        let mut max = Vec::new();
        write_varint(&mut max, u64::MAX);
        assert_eq!(max.len(), 10);
        assert_eq!(read_varint(&max), Ok((u64::MAX, 10)));
        // Tenth byte may only carry the top bit of a u64.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(read_varint(&over), Err(VarintError::Overflow));
    }

    proptest! {
        #[test]
        fn round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            prop_assert_eq!(read_varint(&out), Ok((v, out.len())));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok((_, used)) = read_varint(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }
    }
}
