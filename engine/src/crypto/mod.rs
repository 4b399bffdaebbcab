//! Handshake cryptography and packet protection, wire-compatible with GNS (spec §3): X25519 /
//! Ed25519 key material ([`keys`]), certificates and signed crypt infos ([`cert`]), cipher
//! negotiation ([`negotiate`]), the exact GNS key schedule ([`kdf`]), AES-256-GCM packet sealing
//! behind the [`PacketCipher`] trait with ring (default) or RustCrypto backends ([`aead`]), and
//! the receive replay window ([`replay`]).
//!
//! Everything here is pure: no I/O, no clock, and no randomness except bytes the caller passes
//! in (secret seeds, nonces), so the sans-I/O protocol core and the tests stay deterministic.

pub mod aead;
pub mod cert;
pub mod kdf;
pub mod keys;
pub mod negotiate;
pub mod null;
pub mod replay;
pub mod ring_backend;
#[cfg(feature = "rustcrypto")]
pub mod rustcrypto_backend;
pub mod session;

pub use aead::{
    AeadBackend, CipherSetupError, DirectionKeys, IV_LEN, KEY_LEN, OpenError, OpenItem,
    PacketCipher, Role, SealError, SealItem, SessionKeys, TAG_LEN, packet_nonce,
};
pub use cert::{CaStatus, CertError, CryptInfoError, PeerCert, PeerCryptInfo};
pub use kdf::{KdfInput, KeySchedule};
pub use keys::{EphemeralKeyPair, IdentityKey, KeyError};
pub use negotiate::NegotiationError;
pub use replay::{CommitOutcome, ReplayCheck, ReplayWindow};
pub use session::SessionCipher;

/// Any handshake-time crypto failure, so the protocol core can `?` them into one type and map
/// each to a GNS end reason (BadCert 4003, BadCrypt 4002, BadProtocolVersion 4006).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Key agreement or signature failure.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Peer certificate unusable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Peer crypt info unusable.
    #[error(transparent)]
    CryptInfo(#[from] CryptInfoError),
    /// No acceptable cipher.
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
    /// Packet cipher could not be keyed.
    #[error(transparent)]
    CipherSetup(#[from] CipherSetupError),
}
