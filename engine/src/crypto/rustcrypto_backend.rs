//! The alternative AES-256-GCM backend, on RustCrypto `aes-gcm` (feature `rustcrypto`): pure
//! Rust, for platforms ring does not cover and to cross-check ring byte for byte.

use std::fmt;

use aes_gcm::aead::{AeadInOut, Nonce, Tag};
use aes_gcm::{Aes256Gcm, KeyInit};

use super::aead::{
    DirectionKeys, IV_LEN, OpenError, PacketCipher, SealError, TAG_LEN, check_header, packet_nonce,
};

/// AES-256-GCM of one direction via RustCrypto.
pub struct RustCryptoCipher {
    aead: Aes256Gcm,
    iv: [u8; IV_LEN],
}

impl RustCryptoCipher {
    /// Expands the AES key schedule once.
    pub fn new(keys: &DirectionKeys) -> Self {
        Self {
            aead: Aes256Gcm::new(&(*keys.key()).into()),
            iv: *keys.iv(),
        }
    }

    #[inline]
    fn nonce(&self, packet_number: u64) -> Nonce<Aes256Gcm> {
        packet_nonce(&self.iv, packet_number).into()
    }
}

impl fmt::Debug for RustCryptoCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RustCryptoCipher { .. }")
    }
}

impl PacketCipher for RustCryptoCipher {
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
            .aead
            .encrypt_inout_detached(
                &self.nonce(packet_number),
                &[],
                (&mut buf[header_len..]).into(),
            )
            .map_err(|_| SealError::TooLong)?;
        buf.extend_from_slice(tag.as_slice());
        Ok(())
    }

    #[inline]
    fn open_in_place<'b>(
        &self,
        packet_number: u64,
        buf: &'b mut [u8],
    ) -> Result<&'b mut [u8], OpenError> {
        let body_len = buf.len().checked_sub(TAG_LEN).ok_or(OpenError::TooShort)?;
        let (body, tag_bytes) = buf.split_at_mut(body_len);
        let mut tag_arr = [0u8; TAG_LEN];
        tag_arr.copy_from_slice(tag_bytes);
        let tag: Tag<Aes256Gcm> = tag_arr.into();
        self.aead
            .decrypt_inout_detached(&self.nonce(packet_number), &[], (&mut *body).into(), &tag)
            .map_err(|_| OpenError::Authentication)?;
        Ok(body)
    }
}
