//! Reconstructing 64-bit counters from the truncated low bits GNS puts on the wire (spec §2.6,
//! §4.4, §4.5, §4.9).
//!
//! GNS never sends a full packet number, message number or stream position: it sends the low
//! 16/24/32/48 bits and the receiver picks the value with those low bits that is nearest to a
//! reference it already knows (the signed-difference method). One generic function,
//! [`nearest_with_low_bits`], does this for every width; [`expand_packet_number`] is the 16-bit
//! packet-number case of §2.6.

/// Reconstructs the value whose low `bits` bits equal `low` and that is nearest to `reference`.
///
/// "Nearest" is the signed-difference method GNS uses everywhere: the difference between `low`
/// and the low bits of `reference` is read as a signed `bits`-bit integer (range
/// `-2^(bits-1) .. 2^(bits-1)`) and added to `reference`. Bits of `low` above `bits` are ignored.
/// Returns `None` when the result would be negative or above `u64::MAX`; callers treat that as
/// a malformed packet. `bits` of 0 or ≥ 64 returns `low` itself (nothing was truncated).
pub fn nearest_with_low_bits(reference: u64, low: u64, bits: u32) -> Option<u64> {
    if bits == 0 || bits >= 64 {
        return Some(low);
    }
    let modulus = 1u64 << bits;
    let mask = modulus - 1;
    let half = modulus >> 1;
    // Unsigned difference modulo 2^bits, then folded into the signed range.
    let diff = low.wrapping_sub(reference) & mask;
    if diff < half {
        reference.checked_add(diff)
    } else {
        reference.checked_sub(modulus - diff)
    }
}

/// Expands a 16-bit wire packet number against the highest packet number received so far.
///
/// GNS: `CSteamNetworkConnectionBase::DecryptDataChunk` does this before decryption because the
/// AEAD nonce needs the full number. `None` means the expansion fell below zero.
pub fn expand_packet_number(wire: u16, max_received: u64) -> Option<u64> {
    nearest_with_low_bits(max_received, u64::from(wire), 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packet_numbers() {
        assert_eq!(expand_packet_number(2, 1), Some(2));
        assert_eq!(expand_packet_number(0x0000, 0xffff), Some(0x1_0000));
        assert_eq!(expand_packet_number(0xffff, 0x1_0000), Some(0xffff));
        // Exactly half the range ahead reads as behind (signed i16 range is -32768..32767).
        assert_eq!(expand_packet_number(0x8001, 1), None);
        assert_eq!(expand_packet_number(0x8000, 0x1_0000), Some(0x8000));
        assert_eq!(expand_packet_number(0x7fff, 0x1_0000), Some(0x1_7fff));
        assert_eq!(expand_packet_number(0xffff, 1), None);
        assert_eq!(expand_packet_number(0, 1), Some(0));
    }

    #[test]
    fn other_widths() {
        assert_eq!(
            nearest_with_low_bits(0x1_0000_0005, 3, 32),
            Some(0x1_0000_0003)
        );
        assert_eq!(
            nearest_with_low_bits(0x1_ffff_fff0, 2, 32),
            Some(0x2_0000_0002)
        );
        assert_eq!(nearest_with_low_bits(1, 1, 48), Some(1));
        assert_eq!(nearest_with_low_bits(0xff_fff0, 0x10, 24), Some(0x100_0010));
        assert_eq!(nearest_with_low_bits(7, 0x1234, 64), Some(0x1234));
        assert_eq!(nearest_with_low_bits(u64::MAX, 0, 8), None);
    }

    proptest! {
        #[test]
        fn roundtrip_within_half_range(reference in 0u64..(1 << 62), delta in -(1i64 << 14)..(1i64 << 14), bits in prop::sample::select(vec![16u32, 24, 32, 48])) {
            let value = reference.saturating_add_signed(delta);
            let low = value & ((1u64 << bits) - 1);
            prop_assert_eq!(nearest_with_low_bits(reference, low, bits), Some(value));
        }

        #[test]
        fn never_panics(reference: u64, low: u64, bits in 0u32..70) {
            let _ = nearest_with_low_bits(reference, low, bits);
        }
    }
}
