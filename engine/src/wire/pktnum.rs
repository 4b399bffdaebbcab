//! Reconstructing 64-bit counters from the truncated low bits GNS puts on the wire (spec §2.6,
//! §4.4, §4.5, §4.9).
//!
//! GNS never sends a full packet number, message number or stream position: it sends the low
//! 16/24/32/48 bits and the receiver picks the value with those low bits that is nearest to a
//! reference it already knows (the signed-difference method). One generic function,
//! [`nearest_with_low_bits`], does this for every width; [`expand_packet_number`] is the 16-bit
//! packet-number case of §2.6. First reliable stream positions use GNS's slightly different
//! forward-only rule, [`stream_pos_from_low_bits`].

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

/// Reconstructs a first reliable segment's stream position from its low `bits` bits, relative to
/// the receiver's next expected position, exactly as GNS does it (GNS:
/// `ProcessPlainTextDataChunk`): take `low` inside the `2^bits` block that holds `expected`, and
/// if that is more than `2^(bits-1) - 1` behind `expected`, move it one block forward. Unlike
/// [`nearest_with_low_bits`] this never moves *backwards* a block, so a value far ahead within
/// the current block stays ahead. `None` on overflow; the caller rejects 0.
pub fn stream_pos_from_low_bits(expected: u64, low: u64, bits: u32) -> Option<u64> {
    if bits == 0 || bits >= 64 {
        return Some(low);
    }
    let mask = (1u64 << bits) - 1;
    let pos = (expected & !mask) | (low & mask);
    if pos.saturating_add(mask >> 1) < expected {
        pos.checked_add(mask + 1)
    } else {
        Some(pos)
    }
}

/// Expands a 16-bit wire packet number against the highest packet number received so far.
///
/// GNS: `ExpandWirePacketNumberAndCheck`, done before decryption because the AEAD nonce needs
/// the full number. `None` means the expansion fell below zero; GNS also drops a result of 0.
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

    #[test]
    fn stream_positions_wrap_forward_only() {
        // Far ahead inside the current 24-bit block: GNS keeps it ahead (no backward wrap).
        assert_eq!(
            stream_pos_from_low_bits(0x10, 0xff_fff0, 24),
            Some(0xff_fff0)
        );
        assert_eq!(nearest_with_low_bits(0x10, 0xff_fff0, 24), None);
        // More than half a block behind: one block forward.
        assert_eq!(
            stream_pos_from_low_bits(0x100_0010, 0x10, 24),
            Some(0x100_0010)
        );
        assert_eq!(
            stream_pos_from_low_bits(0x90_0000, 0x10_0000, 24),
            Some(0x110_0000)
        );
        // Exactly 2^23 - 1 behind stays; 2^23 behind wraps.
        assert_eq!(stream_pos_from_low_bits(0x80_0000, 1, 24), Some(1));
        assert_eq!(stream_pos_from_low_bits(0x80_0000, 0, 24), Some(0x100_0000));
        assert_eq!(stream_pos_from_low_bits(1, 1, 48), Some(1));
        assert_eq!(stream_pos_from_low_bits(u64::MAX, 0, 8), None);
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
            let _ = stream_pos_from_low_bits(reference, low, bits);
        }

        #[test]
        fn stream_pos_window(expected in 0u64..(1 << 60), low: u64, bits in prop::sample::select(vec![24u32, 32, 48])) {
            let mask = (1u64 << bits) - 1;
            let pos = stream_pos_from_low_bits(expected, low, bits).unwrap();
            prop_assert_eq!(pos & mask, low & mask);
            // Never more than half a block behind, never a whole block ahead.
            prop_assert!(pos + (mask >> 1) >= expected);
            prop_assert!(pos <= expected + mask);
        }
    }
}
