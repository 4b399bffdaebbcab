//! The default AES-256-GCM backend, on `ring`: one `LessSafeKey` expanded per connection
//! direction at handshake time, then seal/open in place with no allocation per packet.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::aead::{
    CipherSetupError, DirectionKeys, IV_LEN, OpenError, PacketCipher, SealError, TAG_LEN,
    check_header, packet_nonce,
};

/// AES-256-GCM of one direction via ring.
pub struct RingCipher {
    key: LessSafeKey,
    iv: [u8; IV_LEN],
}

impl RingCipher {
    /// Expands the AES key schedule once.
    pub fn new(keys: &DirectionKeys) -> Result<Self, CipherSetupError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, keys.key()).map_err(|_| CipherSetupError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            iv: *keys.iv(),
        })
    }

    #[inline]
    fn nonce(&self, packet_number: u64) -> Nonce {
        Nonce::assume_unique_for_key(packet_nonce(&self.iv, packet_number))
    }
}

impl fmt::Debug for RingCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RingCipher { .. }")
    }
}

impl PacketCipher for RingCipher {
    #[inline]
    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    #[inline]
    fn seal_in_place(
        &self,
        packet_number: u64,
        buf: &mut Vec<u8>,
        header_len: usize,
    ) -> Result<(), SealError> {
        check_header(buf, header_len)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.nonce(packet_number),
                Aad::empty(),
                &mut buf[header_len..],
            )
            .map_err(|_| SealError::TooLong)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    #[inline]
    fn open_in_place<'b>(
        &self,
        packet_number: u64,
        buf: &'b mut [u8],
    ) -> Result<&'b mut [u8], OpenError> {
        if buf.len() < TAG_LEN {
            return Err(OpenError::TooShort);
        }
        self.key
            .open_in_place(self.nonce(packet_number), Aad::empty(), buf)
            .map_err(|_| OpenError::Authentication)
    }
}
