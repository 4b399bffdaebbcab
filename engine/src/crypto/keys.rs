//! Key material of a handshake: the per-connection X25519 ephemeral pair and the Ed25519
//! identity key that signs it. Secrets come from the caller (seed bytes), never from an OS RNG
//! in here, so tests and the sans-I/O core stay deterministic.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};

use super::kdf::sha256;

/// Length of X25519 and Ed25519 public keys.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why key agreement or a signature check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A public key was not 32 bytes.
    #[error("public key is {0} bytes, expected 32")]
    PublicKeyLength(usize),
    /// The peer's X25519 key is a low-order point: the shared secret would be all zeros.
    #[error("peer X25519 key is a low-order point (non-contributory)")]
    LowOrderPoint,
    /// The Ed25519 public key does not decode to a curve point (or is weak).
    #[error("invalid Ed25519 public key")]
    BadEd25519Key,
    /// A signature was not 64 bytes.
    #[error("signature is {0} bytes, expected 64")]
    SignatureLength(usize),
    /// The signature does not verify.
    #[error("Ed25519 signature does not verify")]
    BadSignature,
}

/// A connection's X25519 ephemeral key pair.
pub struct EphemeralKeyPair {
    secret: StaticSecret,
    public: PublicKey,
}

impl EphemeralKeyPair {
    /// From 32 secret bytes (unclamped; X25519 clamps). The caller draws them from its RNG.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The public key that goes into `CryptInfo.key_data`.
    pub fn public_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public.to_bytes()
    }

    /// X25519 with the peer's public key; rejects low-order peer keys (all-zero output).
    pub fn agree(&self, peer_public: &[u8]) -> Result<[u8; 32], KeyError> {
        let peer: [u8; PUBLIC_KEY_LEN] = peer_public
            .try_into()
            .map_err(|_| KeyError::PublicKeyLength(peer_public.len()))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(KeyError::LowOrderPoint);
        }
        Ok(shared.to_bytes())
    }
}

impl fmt::Debug for EphemeralKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralKeyPair")
            .field("public", &self.public.as_bytes())
            .finish()
    }
}

/// An Ed25519 identity key: signs our crypt info; its public half goes into our certificate.
#[derive(Clone)]
pub struct IdentityKey {
    signing: SigningKey,
}

impl IdentityKey {
    /// From a 32-byte RFC 8032 secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key for `Certificate.key_data`.
    pub fn public_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    /// Deterministic Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(msg).to_bytes()
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKey")
            .field("public", &self.public_bytes())
            .finish()
    }
}

/// Verifies an Ed25519 signature (strict: rejects weak keys and malleable signatures).
pub fn verify_signature(public_key: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), KeyError> {
    let pk: [u8; PUBLIC_KEY_LEN] = public_key
        .try_into()
        .map_err(|_| KeyError::PublicKeyLength(public_key.len()))?;
    let sig: [u8; SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| KeyError::SignatureLength(signature.len()))?;
    let vk = VerifyingKey::from_bytes(&pk).map_err(|_| KeyError::BadEd25519Key)?;
    vk.verify_strict(msg, &Signature::from_bytes(&sig))
        .map_err(|_| KeyError::BadSignature)
}

/// CA key ID (spec §3.1): first 8 bytes, little-endian, of SHA-256 of the Ed25519 public key.
pub fn ca_key_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> u64 {
    let d = sha256(public_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    u64::from_le_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc7748_alice_bob() {
        let alice = EphemeralKeyPair::from_secret_bytes(h32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = EphemeralKeyPair::from_secret_bytes(h32(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            alice.public_bytes(),
            h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(
            bob.public_bytes(),
            h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let shared = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(alice.agree(&bob.public_bytes()).unwrap(), shared);
        assert_eq!(bob.agree(&alice.public_bytes()).unwrap(), shared);
    }

    #[test]
    fn rejects_low_order_and_bad_length() {
        let k = EphemeralKeyPair::from_secret_bytes([9; 32]);
        assert_eq!(k.agree(&[0u8; 32]), Err(KeyError::LowOrderPoint));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(k.agree(&one), Err(KeyError::LowOrderPoint));
        assert_eq!(k.agree(&[1u8; 31]), Err(KeyError::PublicKeyLength(31)));
    }

    #[test]
    fn rfc8032_test_1() {
        let key = IdentityKey::from_seed(h32(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        let pk = h32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(key.public_bytes(), pk);
        let sig = key.sign(b"");
        let expected = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap();
        assert_eq!(sig.to_vec(), expected);
        verify_signature(&pk, b"", &sig).unwrap();
        assert_eq!(
            verify_signature(&pk, b"x", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            verify_signature(&pk, b"", &sig[..63]),
            Err(KeyError::SignatureLength(63))
        );
        assert!(!format!("{key:?}").contains("9d61b1"));
    }

    #[test]
    fn ca_key_id_is_le_prefix_of_sha256() {
        let pk = [3u8; 32];
        let d = sha256(&pk);
        assert_eq!(ca_key_id(&pk).to_le_bytes(), d[..8]);
    }
}
