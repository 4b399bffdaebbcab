//! Per-packet AEAD (spec §3.5): the [`PacketCipher`] trait every data packet goes through, one
//! direction's key material ([`DirectionKeys`]), the errors and the GNS nonce rule.
//!
//! GNS seals the SNP payload of each data packet with AES-256-GCM, no associated data, a 16-byte
//! tag appended, and a nonce equal to the direction's base IV plus the full 64-bit packet number.
//! The backends live in `ring_backend.rs`, `rustcrypto_backend.rs` and `null.rs`;
//! `SessionCipher` (`session.rs`) picks one at run time without dynamic dispatch, and
//! `SessionKeys` (`schedule.rs`) keys both directions from the key schedule.
//!
//! This module is the leaf of `crypto`'s packet layer: it names no other crypto module, so the
//! backends, `session`, `kdf` and `schedule` can all build on it without a cycle.

use std::fmt;

use crate::wire::proto::Cipher;

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// GCM nonce / base IV length in bytes.
pub const IV_LEN: usize = 12;
/// GCM tag length in bytes, appended after the ciphertext.
pub const TAG_LEN: usize = 16;

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than the tag.
    #[error("packet shorter than the {TAG_LEN}-byte tag")]
    TooShort,
    /// Tag did not verify: wrong key, wrong packet number, or tampered bytes.
    #[error("authentication tag mismatch")]
    Authentication,
}

/// Why a packet cipher could not be keyed (`SessionCipher::new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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

    /// Like [`PacketCipher::seal_batch`] but over any iterator of items, so a runtime can seal
    /// straight from its own packet arena without building a slice first.
    fn seal_iter<'a, I>(&self, items: I) -> Result<(), SealError>
    where
        I: IntoIterator<Item = SealItem<'a>>,
        Self: Sized,
    {
        for item in items {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::null::NullCipher;
    use crate::crypto::session::SessionCipher;

    fn backends() -> Vec<AeadBackend> {
        [AeadBackend::Ring, AeadBackend::RustCrypto]
            .into_iter()
            .filter(|b| b.is_available())
            .collect()
    }

    fn cipher(backend: AeadBackend, key: [u8; 32], iv: [u8; 12]) -> SessionCipher {
        SessionCipher::new(backend, Cipher::Aes256Gcm, &DirectionKeys::new(key, iv)).unwrap()
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn nonce_adds_packet_number_le_wrapping() {
        let iv = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4];
        assert_eq!(packet_nonce(&iv, 1), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        let iv = [0xfe, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9];
        assert_eq!(packet_nonce(&iv, 3), [1, 1, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9]);
    }

    /// McGrew & Viega GCM test cases 13-15 (AES-256, no AAD), the NIST `gcmEncryptExtIV256` family.
    #[test]
    fn gcm_known_answers_all_backends() {
        let k15: [u8; 32] = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let iv15: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let cases = [
            (
                [0u8; 32],
                [0u8; 12],
                String::new(),
                "530f8afbc74536b9a963b4f1c4cb738b".to_owned(),
            ),
            (
                [0u8; 32],
                [0u8; 12],
                "00000000000000000000000000000000".to_owned(),
                "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919".to_owned(),
            ),
            (
                k15,
                iv15,
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
                    .to_owned(),
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                 8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad\
                 b094dac5d93471bdec1a502270e3cc6c"
                    .to_owned(),
            ),
        ];
        for backend in backends() {
            for (key, iv, pt, ct) in &cases {
                let c = cipher(backend, *key, *iv);
                let mut buf = h(pt);
                c.seal_in_place(0, &mut buf, 0).unwrap();
                assert_eq!(hex::encode(&buf), *ct, "{backend:?}");
                assert_eq!(c.open_in_place(0, &mut buf).unwrap(), h(pt).as_slice());
            }
        }
    }

    #[test]
    fn header_is_left_alone_and_errors_are_typed() {
        for backend in backends() {
            let c = cipher(backend, [1; 32], [2; 12]);
            let mut buf = b"HDRpayload".to_vec();
            c.seal_in_place(5, &mut buf, 3).unwrap();
            assert_eq!(&buf[..3], b"HDR");
            assert_eq!(buf.len(), 10 + TAG_LEN);
            assert_eq!(
                c.open_in_place(6, &mut buf.clone()[3..]),
                Err(OpenError::Authentication)
            );
            assert_eq!(c.open_in_place(5, &mut buf[3..]).unwrap(), b"payload");
            assert_eq!(c.open_in_place(5, &mut [0u8; 15]), Err(OpenError::TooShort));
            let mut short = vec![0u8; 2];
            assert_eq!(
                c.seal_in_place(5, &mut short, 3),
                Err(SealError::HeaderPastEnd {
                    header_len: 3,
                    buf_len: 2
                })
            );
            assert!(!format!("{c:?}").contains("01010101"));
        }
        let keys = DirectionKeys::new([0; 32], [0; 12]);
        assert_eq!(
            SessionCipher::new(AeadBackend::Ring, Cipher::Invalid, &keys).err(),
            Some(CipherSetupError::InvalidCipher(Cipher::Invalid))
        );
        let null = SessionCipher::new(AeadBackend::Ring, Cipher::Null, &keys).unwrap();
        assert_eq!((null.tag_len(), null.cipher()), (0, Cipher::Null));
        if !AeadBackend::RustCrypto.is_available() {
            assert_eq!(
                SessionCipher::new(AeadBackend::RustCrypto, Cipher::Aes256Gcm, &keys).err(),
                Some(CipherSetupError::BackendUnavailable(
                    AeadBackend::RustCrypto
                ))
            );
        }
    }

    #[test]
    fn open_batch_isolates_bad_packets() {
        for backend in backends() {
            let c = cipher(backend, [4; 32], [8; 12]);
            let mut bufs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 20]).collect();
            for (pn, b) in bufs.iter_mut().enumerate() {
                c.seal_in_place(pn as u64, b, 0).unwrap();
            }
            bufs[1][0] ^= 1;
            let mut items: Vec<OpenItem<'_>> = bufs
                .iter_mut()
                .enumerate()
                .map(|(pn, b)| OpenItem::new(pn as u64, b))
                .collect();
            assert_eq!(c.open_batch(&mut items), 2);
            assert_eq!(items[0].plaintext(), Some(&[0u8; 20][..]));
            assert_eq!(items[1].outcome, Err(OpenError::Authentication));
            assert_eq!(items[1].plaintext(), None);
            assert_eq!(items[2].plaintext(), Some(&[2u8; 20][..]));
        }
    }

    proptest! {
        #[test]
        fn round_trip_and_backends_agree(
            key in any::<[u8; 32]>(),
            iv in any::<[u8; 12]>(),
            pn in any::<u64>(),
            pt in prop::collection::vec(any::<u8>(), 0..1300),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut sealed_by: Vec<Vec<u8>> = Vec::new();
            for backend in backends() {
                let c = cipher(backend, key, iv);
                let mut buf = pt.clone();
                c.seal_in_place(pn, &mut buf, 0).unwrap();
                prop_assert_eq!(buf.len(), pt.len() + TAG_LEN);
                sealed_by.push(buf.clone());
                let mut tampered = buf.clone();
                tampered[flip.index(buf.len())] ^= 0x01;
                prop_assert_eq!(c.open_in_place(pn, &mut tampered), Err(OpenError::Authentication));
                prop_assert_eq!(&*c.open_in_place(pn, &mut buf).unwrap(), pt.as_slice());
            }
            prop_assert!(sealed_by.windows(2).all(|w| w[0] == w[1]));
        }

        #[test]
        fn batch_equals_single(
            pts in prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..200)), 0..12),
            header_len in 0usize..8,
        ) {
            for backend in backends() {
                let c = cipher(backend, [7; 32], [3; 12]);
                let mut bufs: Vec<Vec<u8>> =
                    pts.iter().map(|(_, p)| [vec![0xAA; header_len], p.clone()].concat()).collect();
                let singles: Vec<Vec<u8>> = pts.iter().zip(&bufs).map(|((pn, _), b)| {
                    let mut b = b.clone();
                    c.seal_in_place(*pn, &mut b, header_len).unwrap();
                    b
                }).collect();
                let mut items: Vec<SealItem<'_>> = pts.iter().zip(bufs.iter_mut())
                    .map(|((pn, _), buf)| SealItem { packet_number: *pn, buf, header_len }).collect();
                c.seal_batch(&mut items).unwrap();
                prop_assert_eq!(&bufs, &singles);
                let mut via_iter: Vec<Vec<u8>> =
                    pts.iter().map(|(_, p)| [vec![0xAA; header_len], p.clone()].concat()).collect();
                c.seal_iter(pts.iter().zip(via_iter.iter_mut()).map(|((pn, _), buf)| SealItem {
                    packet_number: *pn,
                    buf,
                    header_len,
                }))
                .unwrap();
                prop_assert_eq!(&via_iter, &singles);
                let mut opens: Vec<OpenItem<'_>> = pts.iter().zip(bufs.iter_mut())
                    .map(|((pn, _), b)| OpenItem::new(*pn, &mut b[header_len..])).collect();
                prop_assert_eq!(c.open_batch(&mut opens), pts.len());
                for ((_, p), item) in pts.iter().zip(&opens) {
                    prop_assert_eq!(item.plaintext(), Some(p.as_slice()));
                }
            }
        }

        #[test]
        fn open_arbitrary_never_panics(pn in any::<u64>(), mut bytes in prop::collection::vec(any::<u8>(), 0..1400)) {
            for backend in backends() {
                let c = cipher(backend, [5; 32], [6; 12]);
                let _ = c.open_in_place(pn, &mut bytes.clone());
            }
            let null = NullCipher;
            prop_assert_eq!(null.open_in_place(pn, &mut bytes).map(|p| p.len()), Ok(bytes.len()));
        }
    }
}
