//! [`SessionCipher`]: the negotiated packet cipher of one connection direction, choosing the
//! backend (ring, RustCrypto) or the NULL cipher at run time and dispatching with a `match`, so
//! the hot path has no virtual calls and a batch dispatches once.

use super::aead::{
    AeadBackend, CipherSetupError, DirectionKeys, OpenError, OpenItem, PacketCipher, SealError,
    SealItem,
};
use super::null::NullCipher;
use super::ring_backend::RingCipher;
#[cfg(feature = "rustcrypto")]
use super::rustcrypto_backend::RustCryptoCipher;
use crate::wire::proto::Cipher;

/// The negotiated packet cipher of one direction, dispatching by `match` (no `dyn`).
#[allow(
    clippy::large_enum_variant,
    reason = "ring's key stays inline: one per connection direction, never moved on the hot \
              path, and a box would cost a pointer chase per packet"
)]
#[derive(Debug)]
pub enum SessionCipher {
    /// AES-256-GCM via ring.
    Ring(RingCipher),
    /// AES-256-GCM via RustCrypto (boxed: its key schedule is twice ring's size).
    #[cfg(feature = "rustcrypto")]
    RustCrypto(Box<RustCryptoCipher>),
    /// NULL cipher: plaintext, no tag (`Unencrypted` config).
    Null(NullCipher),
}

impl SessionCipher {
    /// Keys the negotiated `cipher` once for this direction.
    pub fn new(
        backend: AeadBackend,
        cipher: Cipher,
        keys: &DirectionKeys,
    ) -> Result<Self, CipherSetupError> {
        match cipher {
            Cipher::Invalid => Err(CipherSetupError::InvalidCipher(cipher)),
            Cipher::Null => Ok(Self::Null(NullCipher)),
            Cipher::Aes256Gcm => match backend {
                AeadBackend::Ring => Ok(Self::Ring(RingCipher::new(keys)?)),
                #[cfg(feature = "rustcrypto")]
                AeadBackend::RustCrypto => {
                    Ok(Self::RustCrypto(Box::new(RustCryptoCipher::new(keys))))
                }
                #[cfg(not(feature = "rustcrypto"))]
                AeadBackend::RustCrypto => Err(CipherSetupError::BackendUnavailable(backend)),
            },
        }
    }

    /// The cipher this instance implements.
    pub fn cipher(&self) -> Cipher {
        match self {
            Self::Null(_) => Cipher::Null,
            _ => Cipher::Aes256Gcm,
        }
    }
}

impl PacketCipher for SessionCipher {
    #[inline]
    fn tag_len(&self) -> usize {
        match self {
            Self::Ring(c) => c.tag_len(),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.tag_len(),
            Self::Null(c) => c.tag_len(),
        }
    }

    #[inline]
    fn seal_in_place(
        &self,
        packet_number: u64,
        buf: &mut Vec<u8>,
        header_len: usize,
    ) -> Result<(), SealError> {
        match self {
            Self::Ring(c) => c.seal_in_place(packet_number, buf, header_len),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.seal_in_place(packet_number, buf, header_len),
            Self::Null(c) => c.seal_in_place(packet_number, buf, header_len),
        }
    }

    #[inline]
    fn open_in_place<'b>(
        &self,
        packet_number: u64,
        buf: &'b mut [u8],
    ) -> Result<&'b mut [u8], OpenError> {
        match self {
            Self::Ring(c) => c.open_in_place(packet_number, buf),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.open_in_place(packet_number, buf),
            Self::Null(c) => c.open_in_place(packet_number, buf),
        }
    }

    fn seal_batch(&self, items: &mut [SealItem<'_>]) -> Result<(), SealError> {
        // Dispatch once per batch, not once per packet.
        match self {
            Self::Ring(c) => c.seal_batch(items),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.seal_batch(items),
            Self::Null(c) => c.seal_batch(items),
        }
    }

    fn seal_iter<'a, I>(&self, items: I) -> Result<(), SealError>
    where
        I: IntoIterator<Item = SealItem<'a>>,
    {
        match self {
            Self::Ring(c) => c.seal_iter(items),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.seal_iter(items),
            Self::Null(c) => c.seal_iter(items),
        }
    }

    fn open_batch(&self, items: &mut [OpenItem<'_>]) -> usize {
        match self {
            Self::Ring(c) => c.open_batch(items),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.open_batch(items),
            Self::Null(c) => c.open_batch(items),
        }
    }
}
