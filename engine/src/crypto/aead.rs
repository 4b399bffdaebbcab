//! Per-packet AEAD (spec §3.5): the [`PacketCipher`] trait every data packet goes through, the
//! per-direction key material ([`DirectionKeys`], [`SessionKeys`]) and the GNS nonce rule.
//!
//! GNS seals the SNP payload of each data packet with AES-256-GCM, no associated data, a 16-byte
//! tag appended, and a nonce equal to the direction's base IV plus the full 64-bit packet number.
//! The backends live in `ring_backend.rs`, `rustcrypto_backend.rs` and `null.rs`;
//! [`SessionCipher`] picks one at run time without dynamic dispatch on the hot path.

use std::fmt;

use super::kdf::KeySchedule;
use super::null::NullCipher;
use super::ring_backend::RingCipher;
#[cfg(feature = "rustcrypto")]
use super::rustcrypto_backend::RustCryptoCipher;
use crate::wire::proto::Cipher;

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// GCM nonce / base IV length in bytes.
pub const IV_LEN: usize = 12;
/// GCM tag length in bytes, appended after the ciphertext.
pub const TAG_LEN: usize = 16;

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// `header_len` is past the end of the buffer.
    #[error("header length {header_len} exceeds buffer length {buf_len}")]
    HeaderPastEnd {
        /// The header length given.
        header_len: usize,
        /// The buffer length.
        buf_len: usize,
    },
    /// The backend refused (payload longer than GCM allows).
    #[error("payload too long for the AEAD")]
    TooLong,
}

/// Why a received packet did not open. GNS drops such packets silently (spec §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than the tag.
    #[error("packet shorter than the {TAG_LEN}-byte tag")]
    TooShort,
    /// Tag did not verify: wrong key, wrong packet number, or tampered bytes.
    #[error("authentication tag mismatch")]
    Authentication,
}

/// Why a [`SessionCipher`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CipherSetupError {
    /// `Cipher::Invalid` (or an unknown value) cannot encrypt anything.
    #[error("cipher {0:?} cannot be used for packets")]
    InvalidCipher(Cipher),
    /// The RustCrypto backend was asked for but the `rustcrypto` feature is off.
    #[error("AEAD backend {0:?} is not compiled in")]
    BackendUnavailable(AeadBackend),
    /// The backend rejected the key (never happens with 32-byte keys).
    #[error("backend rejected the key")]
    BadKey,
}

/// Which side of the connection we are: decides which derived key seals and which opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that sent ConnectRequest.
    Client,
    /// The side that accepted (sent ConnectOK).
    Server,
}

/// AES-256-GCM implementation, selectable at run time (benchmarks compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AeadBackend {
    /// `ring` (default; fastest on x86-64 and aarch64).
    #[default]
    Ring,
    /// RustCrypto `aes-gcm`; needs the `rustcrypto` feature.
    RustCrypto,
}

impl AeadBackend {
    /// Whether this backend is compiled into this build.
    pub fn is_available(self) -> bool {
        match self {
            AeadBackend::Ring => true,
            AeadBackend::RustCrypto => cfg!(feature = "rustcrypto"),
        }
    }
}

/// One direction's key and base IV (T(1)/T(3) for client→server, T(2)/T(4) the other way).
#[derive(Clone, PartialEq, Eq)]
pub struct DirectionKeys {
    key: [u8; KEY_LEN],
    iv: [u8; IV_LEN],
}

impl DirectionKeys {
    /// Wraps raw key material (e.g. from a test vector).
    pub fn new(key: [u8; KEY_LEN], iv: [u8; IV_LEN]) -> Self {
        Self { key, iv }
    }

    /// The AES-256 key.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The 12-byte base IV.
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// The GCM nonce of packet `packet_number` in this direction.
    pub fn nonce(&self, packet_number: u64) -> [u8; IV_LEN] {
        packet_nonce(&self.iv, packet_number)
    }
}

impl fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirectionKeys { .. }")
    }
}

/// Both directions' keys, already assigned to send/recv for one side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionKeys {
    /// Keys we seal with.
    pub send: DirectionKeys,
    /// Keys we open with.
    pub recv: DirectionKeys,
}

impl SessionKeys {
    /// Assigns the derived keys by role: the client sends with c2s, the server with s2c.
    /// GNS: `CSteamNetworkConnectionBase::FinishCryptoHandshake`.
    pub fn from_schedule(schedule: &KeySchedule, role: Role) -> Self {
        let c2s = DirectionKeys::new(*schedule.key_c2s(), *schedule.iv_c2s());
        let s2c = DirectionKeys::new(*schedule.key_s2c(), *schedule.iv_s2c());
        match role {
            Role::Client => Self {
                send: c2s,
                recv: s2c,
            },
            Role::Server => Self {
                send: s2c,
                recv: c2s,
            },
        }
    }

    /// Builds the send and receive ciphers for the negotiated `cipher` with one backend.
    pub fn ciphers(
        &self,
        backend: AeadBackend,
        cipher: Cipher,
    ) -> Result<(SessionCipher, SessionCipher), CipherSetupError> {
        Ok((
            SessionCipher::new(backend, cipher, &self.send)?,
            SessionCipher::new(backend, cipher, &self.recv)?,
        ))
    }
}

/// Spec §3.5: base IV bytes 0..8 as a u64 LE plus the packet number (wrapping), bytes 8..12 kept.
/// GNS: `CSteamNetworkConnectionBase::EncryptDataChunk` / `DecryptDataChunk`.
#[inline]
pub fn packet_nonce(base_iv: &[u8; IV_LEN], packet_number: u64) -> [u8; IV_LEN] {
    let mut nonce = *base_iv;
    let mut low = [0u8; 8];
    low.copy_from_slice(&base_iv[..8]);
    let sum = u64::from_le_bytes(low).wrapping_add(packet_number);
    nonce[..8].copy_from_slice(&sum.to_le_bytes());
    nonce
}

/// One packet of a send batch: `buf[header_len..]` is plaintext, sealed in place, tag appended.
///
/// The runtime keeps its packet buffers (with capacity for the tag, so nothing reallocates) and
/// a reusable `Vec<SealItem>`; sealing a batch then allocates nothing.
#[derive(Debug)]
pub struct SealItem<'a> {
    /// Full 64-bit packet number (selects the nonce).
    pub packet_number: u64,
    /// Header (not authenticated, left as is) followed by the plaintext.
    pub buf: &'a mut Vec<u8>,
    /// Bytes at the start of `buf` that are not encrypted.
    pub header_len: usize,
}

/// One packet of a receive batch: `buf` is ciphertext ‖ tag, opened in place.
#[derive(Debug)]
pub struct OpenItem<'a> {
    /// Full (expanded) 64-bit packet number.
    pub packet_number: u64,
    /// Ciphertext followed by the tag; on success its first `Ok(len)` bytes are the plaintext.
    pub buf: &'a mut [u8],
    /// Set by [`PacketCipher::open_batch`]: plaintext length, or why it failed.
    pub outcome: Result<usize, OpenError>,
}

impl<'a> OpenItem<'a> {
    /// A not-yet-opened item.
    pub fn new(packet_number: u64, buf: &'a mut [u8]) -> Self {
        Self {
            packet_number,
            buf,
            outcome: Err(OpenError::TooShort),
        }
    }

    /// The plaintext after a successful open, else `None`.
    pub fn plaintext(&self) -> Option<&[u8]> {
        match self.outcome {
            Ok(len) => self.buf.get(..len),
            Err(_) => None,
        }
    }
}

/// A packet cipher for one direction of one connection, keyed once at handshake time.
///
/// Implementations never allocate per packet (sealing pushes the tag onto the caller's `Vec`,
/// which only reallocates if the caller left no room for [`PacketCipher::tag_len`] bytes).
pub trait PacketCipher {
    /// Bytes `seal_in_place` appends (16 for AES-GCM, 0 for the NULL cipher).
    fn tag_len(&self) -> usize;

    /// Encrypts `buf[header_len..]` in place and appends the tag.
    fn seal_in_place(
        &self,
        packet_number: u64,
        buf: &mut Vec<u8>,
        header_len: usize,
    ) -> Result<(), SealError>;

    /// Verifies and decrypts `buf` (ciphertext ‖ tag) in place; returns the plaintext, a prefix
    /// of `buf`. On error the contents of `buf` are unspecified.
    fn open_in_place<'b>(
        &self,
        packet_number: u64,
        buf: &'b mut [u8],
    ) -> Result<&'b mut [u8], OpenError>;

    /// Seals every item; stops at the first error (only possible with a bad `header_len`).
    fn seal_batch(&self, items: &mut [SealItem<'_>]) -> Result<(), SealError> {
        for item in items.iter_mut() {
            self.seal_in_place(item.packet_number, item.buf, item.header_len)?;
        }
        Ok(())
    }

    /// Opens every item, recording each outcome in [`OpenItem::outcome`]; one bad packet does
    /// not affect the others. Returns how many opened.
    fn open_batch(&self, items: &mut [OpenItem<'_>]) -> usize {
        let mut opened = 0;
        for item in items.iter_mut() {
            item.outcome = self
                .open_in_place(item.packet_number, item.buf)
                .map(|p| p.len());
            opened += usize::from(item.outcome.is_ok());
        }
        opened
    }
}

/// Checks `header_len` for the backends.
#[inline]
pub(super) fn check_header(buf: &[u8], header_len: usize) -> Result<(), SealError> {
    if header_len > buf.len() {
        return Err(SealError::HeaderPastEnd {
            header_len,
            buf_len: buf.len(),
        });
    }
    Ok(())
}

/// The negotiated packet cipher of one direction, dispatching by `match` (no `dyn`).
#[derive(Debug)]
pub enum SessionCipher {
    /// AES-256-GCM via ring.
    Ring(RingCipher),
    /// AES-256-GCM via RustCrypto.
    #[cfg(feature = "rustcrypto")]
    RustCrypto(RustCryptoCipher),
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
                AeadBackend::RustCrypto => Ok(Self::RustCrypto(RustCryptoCipher::new(keys))),
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

    fn open_batch(&self, items: &mut [OpenItem<'_>]) -> usize {
        match self {
            Self::Ring(c) => c.open_batch(items),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto(c) => c.open_batch(items),
            Self::Null(c) => c.open_batch(items),
        }
    }
}
