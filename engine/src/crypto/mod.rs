//! Handshake cryptography and packet protection, wire-compatible with GNS (spec §3): X25519 /
//! Ed25519 key material ([`keys`]), certificates and signed crypt infos ([`cert`]), cipher
//! negotiation ([`negotiate`]), the exact GNS key schedule ([`kdf`]), AES-256-GCM packet sealing
//! behind the [`PacketCipher`] trait with ring (default) or RustCrypto backends (`aead`,
//! `session`), the per-role session keys (`schedule`), and the receive replay window
//! (`replay`).
//!
//! Layering, bottom up: `aead` (trait, constants, errors, nonce rule) → the backends and `kdf` →
//! `session` → `schedule`. No module names one above it.
//!
//! Everything here is pure: no I/O, no clock, and no randomness except bytes the caller passes
//! in (secret seeds, nonces), so the sans-I/O protocol core and the tests stay deterministic.

// Key material and parsing of peer input: no reason for `unsafe` here, ever.
#![forbid(unsafe_code)]

pub(crate) mod aead;
pub mod ca;
pub mod cert;
pub mod kdf;
pub mod keys;
pub mod negotiate;
pub(crate) mod null;
pub mod pem;
pub(crate) mod replay;
pub mod revocation;
pub(crate) mod ring_backend;
#[cfg(feature = "rustcrypto")]
pub(crate) mod rustcrypto_backend;
pub(crate) mod schedule;
pub(crate) mod session;
pub mod trust;

pub use aead::{
    AeadBackend, CipherSetupError, DirectionKeys, IV_LEN, KEY_LEN, OpenError, OpenItem,
    PacketCipher, Role, SealError, SealItem, TAG_LEN, packet_nonce,
};
pub use ca::{
    CaKey, CertParams, CertSummary, IssueError, IssuePolicy, inspect, issue, issue_for_request,
    key_id, make_request,
};
pub use cert::{CaStatus, CertError, CryptInfoError, PeerCert, PeerCryptInfo};
pub use kdf::{KdfInput, KeySchedule};
pub use keys::{EphemeralKeyPair, IdentityKey, KeyError};
pub use negotiate::NegotiationError;
pub use pem::PemError;
pub use replay::{CommitOutcome, ReplayCheck, ReplayWindow};
pub use schedule::SessionKeys;
pub use session::SessionCipher;
pub use trust::{TrustError, TrustStore, TrustedCa};

/// Why a handshake's key exchange failed once the peer's certificate checked out: the typed
/// cause of `HandshakeError::BadCrypt` (GNS end reason `Remote_BadCrypt`, 4002). Certificate
/// failures are [`CertError`] instead, because GNS ends those with a different code (4003).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Key agreement or signature failure.
    #[error(transparent)]
    Key(#[from] KeyError),
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
