//! ICE credentials the GNS way: 5-character strings of 30 bits each.
//!
//! The local ufrag is never signaled: each side derives the other's from the connection id it
//! already knows. The password is 30 random bits, sent as the first reliable signal message.
//! GNS: steamnetworkingsockets_p2p_ice.cpp, `Base64EncodeLower30Bits`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The low 30 bits of `n` as 5 base64 characters, most significant first.
pub fn base64_lower30(n: u32) -> [u8; 5] {
    let mut out = [0u8; 5];
    for (i, c) in out.iter_mut().enumerate() {
        let shift = 24 - 6 * i;
        *c = ALPHABET[((n >> shift) & 0x3F) as usize];
    }
    out
}

/// [`base64_lower30`] as a `String`.
pub fn base64_lower30_string(n: u32) -> String {
    base64_lower30(n).iter().map(|&b| char::from(b)).collect()
}

/// The ufrag of the side whose connection id is `conn_id`.
pub fn ufrag_from_connection_id(conn_id: u32) -> String {
    base64_lower30_string(conn_id)
}

/// A password from 32 random bits (only 30 are used, as in GNS).
pub fn password_from_random(r: u32) -> String {
    base64_lower30_string(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_gns_examples() {
        assert_eq!(base64_lower30_string(1_848_967_564), "uNQGM");
        assert_eq!(base64_lower30_string(714_086_808), "qkBmY");
        assert_eq!(&base64_lower30(0), b"AAAAA");
        assert_eq!(&base64_lower30(u32::MAX), b"/////");
    }

    #[test]
    fn only_low_30_bits_count() {
        assert_eq!(base64_lower30(0xC000_0001), base64_lower30(1));
    }
}
