//! The NULL packet cipher (spec §3.3, `Unencrypted` config): the payload travels as plaintext
//! with no tag and no integrity check. Keys are still derived but unused.

use super::aead::{OpenError, PacketCipher, SealError, check_header};

/// Plaintext passthrough; `seal`/`open` leave the bytes unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NullCipher;

impl PacketCipher for NullCipher {
    #[inline]
    fn tag_len(&self) -> usize {
        0
    }

    #[inline]
    fn seal_in_place(
        &self,
        _packet_number: u64,
        buf: &mut Vec<u8>,
        header_len: usize,
    ) -> Result<(), SealError> {
        check_header(buf, header_len)
    }

    #[inline]
    fn open_in_place<'b>(
        &self,
        _packet_number: u64,
        buf: &'b mut [u8],
    ) -> Result<&'b mut [u8], OpenError> {
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough() {
        let mut buf = b"hdrpayload".to_vec();
        NullCipher.seal_in_place(9, &mut buf, 3).unwrap();
        assert_eq!(buf, b"hdrpayload");
        assert_eq!(
            NullCipher.open_in_place(9, &mut buf[3..]).unwrap(),
            b"payload"
        );
        assert!(NullCipher.seal_in_place(9, &mut buf, 11).is_err());
    }
}
