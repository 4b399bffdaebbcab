//! Proof of identity for registrations, when the service has a CA: the peer sends its
//! CA-signed certificate (`CMsgSteamDatagramCertificateSigned`, as `sockworks-cert issue`
//! writes it) and an Ed25519 signature, by the certificate's key, over
//! [`register_message`]: a context string, the service's cookie and the identity. The cookie
//! is bound to the peer's address and a few seconds of time, so a captured registration cannot
//! be replayed from elsewhere or later.
//!
//! The certificate passes the same chain check as a handshake (`TrustStore::check`: a trusted
//! CA signed it directly, not expired, not yet-valid, key not revoked) and must name exactly the
//! identity registered.

use prost::Message as _;
use sockworks_engine::crypto::ca::certificate_identity;
use sockworks_engine::crypto::keys::{IdentityKey, verify_signature};
use sockworks_engine::crypto::pem::{self, PemError};
use sockworks_engine::crypto::{TrustStore, TrustedCa};
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::proto::{Certificate, CertificateSigned};

use crate::wire::RefuseReason;

/// Domain separation: a signature made here means nothing anywhere else.
const CONTEXT: &[u8] = b"sockworks-rendezvous v1 register\0";

/// The bytes a registering peer signs: context, cookie (u64 LE), identity string.
pub fn register_message(cookie: u64, identity: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + 8 + identity.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(&cookie.to_le_bytes());
    m.extend_from_slice(identity.as_bytes());
    m
}

/// A peer's credentials: its CA-signed certificate and the key it certifies.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    cert: Vec<u8>,
    key: IdentityKey,
}

/// Why credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthLoadError {
    /// The certificate or key text does not parse.
    #[error("{0}")]
    Pem(#[from] PemError),
    /// Neither a key file nor the certificate's `private_key_data` gave a key.
    #[error("no private key: pass one, or a certificate issued --with-private-key")]
    NoKey,
}

impl ClientAuth {
    /// From a decoded certificate and its key.
    pub fn new(cert: &CertificateSigned, key: IdentityKey) -> Self {
        // The key travels in the key file, never to the service.
        let mut cert = cert.clone();
        cert.private_key_data = None;
        Self {
            cert: cert.encode_to_vec(),
            key,
        }
    }

    /// From a `STEAMDATAGRAM CERT` block and an OpenSSH private key (`sockworks-cert gen-key`),
    /// or no key when the certificate carries `private_key_data`.
    pub fn from_pem(cert_pem: &str, key_pem: Option<&str>) -> Result<Self, AuthLoadError> {
        let cert = pem::read_cert_pem(cert_pem)?;
        let seed = match key_pem {
            Some(text) => pem::read_openssh_private_key(text)?,
            None => cert
                .private_key_data
                .as_deref()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or(AuthLoadError::NoKey)?,
        };
        Ok(Self::new(&cert, IdentityKey::from_seed(seed)))
    }

    /// The certificate as sent in Register.
    pub fn cert_bytes(&self) -> &[u8] {
        &self.cert
    }

    /// The signature Register carries for `cookie` and `identity`.
    pub fn sign(&self, cookie: u64, identity: &str) -> [u8; 64] {
        self.key.sign(&register_message(cookie, identity))
    }
}

/// Why a CA file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaFileError {
    /// A line or block that is neither an `ssh-ed25519` key nor a certificate.
    #[error("line {line}: {reason}")]
    Entry {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file trusts nothing.
    #[error("no CA keys in the file")]
    Empty,
}

/// Trusted CA keys from a CA file: `ssh-ed25519 AAAA… [comment]` lines (the `ca.key.pub` that
/// `sockworks-cert gen-ca` writes), and/or `STEAMDATAGRAM CERT` blocks whose certified key is
/// trusted as a CA. `#` lines and blank lines are skipped.
pub fn parse_ca_file(text: &str) -> Result<Vec<TrustedCa>, CaFileError> {
    let mut cas = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let line = line.trim();
        let bad = |reason: String| CaFileError::Entry {
            line: i + 1,
            reason,
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("-----BEGIN") {
            let mut block = String::from(line);
            block.push('\n');
            for (_, l) in lines.by_ref() {
                block.push_str(l);
                block.push('\n');
                if l.trim_start().starts_with("-----END") {
                    break;
                }
            }
            let cert = pem::read_cert_pem(&block).map_err(|e| bad(e.to_string()))?;
            let body = Certificate::decode(cert.cert.as_deref().unwrap_or_default())
                .map_err(|_| bad("certificate body does not decode".into()))?;
            let key = body
                .key_data
                .as_deref()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or_else(|| bad("certificate key is not Ed25519".into()))?;
            cas.push(TrustedCa::new(key));
        } else {
            let key = pem::read_public_key(line).map_err(|e| bad(e.to_string()))?;
            cas.push(TrustedCa::new(key));
        }
    }
    if cas.is_empty() {
        return Err(CaFileError::Empty);
    }
    Ok(cas)
}

/// Checks registrations against a set of trusted CAs.
#[derive(Debug, Clone)]
pub struct Verifier {
    trust: TrustStore,
}

impl Verifier {
    /// Trusting `cas` (each for every app, as long as the key is trusted).
    pub fn new(cas: Vec<TrustedCa>) -> Self {
        let mut trust = TrustStore::new();
        trust.require_trusted = true;
        // Peers' clocks may be a little ahead of ours.
        trust.not_before_leeway = 300;
        for ca in cas {
            trust.add_ca(ca);
        }
        Self { trust }
    }

    /// Whether `cert` is trusted at `unix_now`, names `identity`, and its key signed the
    /// registration message for `cookie`.
    pub fn verify(
        &self,
        identity: &Identity,
        canonical: &str,
        cookie: u64,
        cert: &[u8],
        signature: &[u8],
        unix_now: u64,
    ) -> Result<(), RefuseReason> {
        if cert.is_empty() || signature.is_empty() {
            return Err(RefuseReason::CertRequired);
        }
        let signed = CertificateSigned::decode(cert).map_err(|_| RefuseReason::UntrustedCert)?;
        let body = Certificate::decode(signed.cert.as_deref().unwrap_or_default())
            .map_err(|_| RefuseReason::UntrustedCert)?;
        self.trust
            .check(&signed, &body, 0, Some(unix_now))
            .map_err(|_| RefuseReason::UntrustedCert)?;
        match certificate_identity(&body) {
            Ok(named) if named == *identity => {}
            _ => return Err(RefuseReason::IdentityMismatch),
        }
        let key = body.key_data.as_deref().unwrap_or_default();
        verify_signature(key, &register_message(cookie, canonical), signature)
            .map_err(|_| RefuseReason::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockworks_engine::crypto::ca::{self, CaKey, CertParams};

    const NOW: u64 = 1_800_000_000;

    fn cert_for(ca: &CaKey, identity: &str, key: &IdentityKey) -> CertificateSigned {
        ca::issue(
            ca,
            &CertParams {
                identity: Some(Identity::parse(identity).unwrap()),
                public_key: key.public_bytes(),
                app_ids: vec![0],
                pop_ids: vec![],
                time_created: (NOW - 10) as u32,
                time_expiry: (NOW + 1000) as u32,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_trusted_cert_for_the_identity_with_a_good_signature_passes_and_nothing_else() {
        let ca = CaKey::from_seed([1; 32]);
        let other_ca = CaKey::from_seed([2; 32]);
        let key = IdentityKey::from_seed([3; 32]);
        let v = Verifier::new(vec![TrustedCa::new(ca.public_key())]);
        let alice = Identity::parse("str:alice").unwrap();
        let auth = ClientAuth::new(&cert_for(&ca, "str:alice", &key), key.clone());
        let sig = auth.sign(42, "str:alice");
        assert_eq!(
            v.verify(&alice, "str:alice", 42, auth.cert_bytes(), &sig, NOW),
            Ok(())
        );
        assert_eq!(
            v.verify(&alice, "str:alice", 43, auth.cert_bytes(), &sig, NOW),
            Err(RefuseReason::BadSignature),
            "another cookie"
        );
        let bob = Identity::parse("str:bob").unwrap();
        assert_eq!(
            v.verify(
                &bob,
                "str:bob",
                42,
                auth.cert_bytes(),
                &auth.sign(42, "str:bob"),
                NOW
            ),
            Err(RefuseReason::IdentityMismatch)
        );
        let foreign = ClientAuth::new(&cert_for(&other_ca, "str:alice", &key), key.clone());
        assert_eq!(
            v.verify(
                &alice,
                "str:alice",
                42,
                foreign.cert_bytes(),
                &foreign.sign(42, "str:alice"),
                NOW
            ),
            Err(RefuseReason::UntrustedCert)
        );
        assert_eq!(
            v.verify(&alice, "str:alice", 42, auth.cert_bytes(), &sig, NOW + 5000),
            Err(RefuseReason::UntrustedCert),
            "expired"
        );
        assert_eq!(
            v.verify(&alice, "str:alice", 42, b"", b"", NOW),
            Err(RefuseReason::CertRequired)
        );
        assert_eq!(
            v.verify(&alice, "str:alice", 42, b"\xff\xff", &sig, NOW),
            Err(RefuseReason::UntrustedCert)
        );
    }

    #[test]
    fn ca_files_take_key_lines_and_cert_blocks() {
        let ca = CaKey::from_seed([1; 32]);
        let ca2 = CaKey::from_seed([2; 32]);
        let cert = cert_for(&ca, "str:x", &IdentityKey::from_seed(ca2.seed()));
        let text = format!(
            "# fleet\n\n{}\n{}",
            ca.public_key_line(),
            pem::write_cert_pem(&cert)
        );
        let cas = parse_ca_file(&text).unwrap();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0].public_key, ca.public_key());
        assert_eq!(cas[1].public_key, ca2.public_key());
        assert!(matches!(
            parse_ca_file("# nothing\n"),
            Err(CaFileError::Empty)
        ));
        assert!(matches!(
            parse_ca_file("garbage\n"),
            Err(CaFileError::Entry { line: 1, .. })
        ));
    }

    #[test]
    fn credentials_load_from_pem_and_drop_the_private_key() {
        let ca = CaKey::from_seed([1; 32]);
        let key = IdentityKey::from_seed([3; 32]);
        let mut cert = cert_for(&ca, "str:alice", &key);
        let key_pem = pem::write_openssh_private_key(&[3; 32]);
        let a = ClientAuth::from_pem(&pem::write_cert_pem(&cert), Some(&key_pem)).unwrap();
        cert.private_key_data = Some(vec![3; 32]);
        let b = ClientAuth::from_pem(&pem::write_cert_pem(&cert), None).unwrap();
        assert_eq!(a.cert_bytes(), b.cert_bytes());
        assert_eq!(a.sign(1, "str:alice"), b.sign(1, "str:alice"));
        cert.private_key_data = None;
        assert!(matches!(
            ClientAuth::from_pem(&pem::write_cert_pem(&cert), None),
            Err(AuthLoadError::NoKey)
        ));
    }
}
