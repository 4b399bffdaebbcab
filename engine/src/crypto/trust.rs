//! Which certificate authorities we trust, which keys are revoked, and the chain check a peer's
//! CA-signed certificate must pass (GNS: `CertStore_CheckCert` / `CertStore_CheckCASignature`,
//! spec §2.5). Open-source GNS only trusts Valve's hard-coded root; Sockworks lets each
//! instance configure its own roots, so fleets can authenticate without Steam.
//!
//! One level of chain: a peer's certificate must be signed directly by a trusted CA key. Pure:
//! the current Unix time is an argument (the engine reads no clock).

use super::keys::{PUBLIC_KEY_LEN, SIGNATURE_LEN, ca_key_id, verify_signature};
use crate::wire::proto::{Certificate, CertificateSigned};

/// A trusted CA public key and the scope it may vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCa {
    /// Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// AppIDs it may certify; empty means all (as GNS's scopes).
    pub app_ids: Vec<u32>,
    /// Unix seconds after which its signatures are no longer accepted (`None`: never).
    pub time_expiry: Option<u32>,
}

impl TrustedCa {
    /// A CA trusted for every app, forever.
    pub fn new(public_key: [u8; PUBLIC_KEY_LEN]) -> Self {
        Self {
            public_key,
            app_ids: Vec::new(),
            time_expiry: None,
        }
    }

    /// GNS's key id of the CA key.
    pub fn key_id(&self) -> u64 {
        ca_key_id(&self.public_key)
    }
}

/// Trusted CAs, revoked key ids and whether peers must present a trusted certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    cas: Vec<TrustedCa>,
    revoked: Vec<u64>,
    /// Refuse peers whose certificate is unsigned or fails these checks, whatever
    /// `IP_AllowWithoutAuth` says. Off by default: GNS peers (which cannot get our certs) keep
    /// connecting, flagged unauthenticated.
    pub require_trusted: bool,
    /// Seconds a certificate may be dated in the future (clock skew between CA and us). GNS
    /// does not check `time_created` at all; we do, exactly unless this is raised.
    pub not_before_leeway: u32,
}

/// Why a CA-signed certificate is not trusted (GNS: the `Bad cert: …` messages, 4003 when
/// trust is required; otherwise the peer is only flagged unauthenticated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Signature without `ca_key_id`.
    #[error("Missing CA Key ID")]
    NoCaKeyId,
    /// No trusted CA has this key id.
    #[error("CA key {0} is not known to us")]
    UnknownCa(u64),
    /// The CA key is revoked.
    #[error("CA key {0} has been revoked")]
    RevokedCa(u64),
    /// The CA's trust ended.
    #[error("CA key {ca_key_id} expired at {expiry} (now {now})")]
    CaExpired {
        /// CA key id.
        ca_key_id: u64,
        /// Its expiry.
        expiry: u32,
        /// Our time.
        now: u64,
    },
    /// The signature is not 64 bytes.
    #[error("Signature has invalid length {0}")]
    SignatureLength(usize),
    /// The signature does not verify with the CA's key (tampered or forged).
    #[error("Signature verification failed")]
    BadSignature,
    /// `time_expiry` is before now (GNS: a cert without expiry counts as expired).
    #[error("Cert expired at {expiry} (current time {now})")]
    Expired {
        /// `time_expiry` (0 if absent).
        expiry: u32,
        /// Our time.
        now: u64,
    },
    /// `time_created` is after now.
    #[error("Cert is not valid until {created} (current time {now})")]
    NotYetValid {
        /// `time_created`.
        created: u32,
        /// Our time.
        now: u64,
    },
    /// The caller has no wall-clock time, so expiry cannot be checked.
    #[error("no wall-clock time to check the cert's validity period")]
    NoClock,
    /// The certificate's own key is revoked.
    #[error("Key public ID{0} has been revoked!")]
    RevokedKey(u64),
    /// The CA may not vouch for our AppID.
    #[error("CA trust chain does not authorize appid {0}")]
    AppNotInCaScope(u32),
}

impl TrustStore {
    /// An empty store (nothing trusted, nothing revoked, unsigned peers allowed by policy).
    pub const fn new() -> Self {
        Self {
            cas: Vec::new(),
            revoked: Vec::new(),
            require_trusted: false,
            not_before_leeway: 0,
        }
    }

    /// Trusts a CA (replacing one with the same key).
    pub fn add_ca(&mut self, ca: TrustedCa) {
        self.cas.retain(|c| c.public_key != ca.public_key);
        self.cas.push(ca);
    }

    /// Revokes a key id: a CA key (its certificates stop being trusted) or a certificate key.
    pub fn revoke(&mut self, key_id: u64) {
        if !self.revoked.contains(&key_id) {
            self.revoked.push(key_id);
        }
    }

    /// The trusted CAs.
    pub fn cas(&self) -> &[TrustedCa] {
        &self.cas
    }

    /// The revoked key ids.
    pub fn revoked(&self) -> &[u64] {
        &self.revoked
    }

    /// Whether a key id is revoked.
    pub fn is_revoked(&self, key_id: u64) -> bool {
        self.revoked.contains(&key_id)
    }

    /// GNS's chain check of a CA-signed certificate (`CertStore_CheckCert`) plus
    /// `time_created` and the CA's app scope: [`TrustStore::check_signature`], then
    /// [`TrustStore::check_cert`] on the decoded body. Returns the CA key id.
    pub fn check(
        &self,
        signed: &CertificateSigned,
        cert: &Certificate,
        app_id: u32,
        unix_now: Option<u64>,
    ) -> Result<u64, TrustError> {
        let ca = self.check_signature(signed, unix_now)?;
        self.check_cert(ca, cert, app_id, unix_now)
    }

    /// The part GNS does before decoding the certificate (`CertStore_CheckCASignature`): the
    /// trusted, unrevoked, unexpired CA that `ca_key_id` names signed exactly `signed.cert`.
    pub fn check_signature(
        &self,
        signed: &CertificateSigned,
        unix_now: Option<u64>,
    ) -> Result<&TrustedCa, TrustError> {
        let id = signed.ca_key_id.ok_or(TrustError::NoCaKeyId)?;
        let ca = self
            .cas
            .iter()
            .find(|c| c.key_id() == id)
            .ok_or(TrustError::UnknownCa(id))?;
        if self.is_revoked(id) {
            return Err(TrustError::RevokedCa(id));
        }
        let now = unix_now.ok_or(TrustError::NoClock)?;
        if let Some(expiry) = ca.time_expiry
            && u64::from(expiry) < now
        {
            return Err(TrustError::CaExpired {
                ca_key_id: id,
                expiry,
                now,
            });
        }
        let sig = signed.ca_signature.as_deref().unwrap_or_default();
        if sig.len() != SIGNATURE_LEN {
            return Err(TrustError::SignatureLength(sig.len()));
        }
        let bytes = signed.cert.as_deref().unwrap_or_default();
        verify_signature(&ca.public_key, bytes, sig).map_err(|_| TrustError::BadSignature)?;
        Ok(ca)
    }

    /// The checks on the decoded body of a certificate `ca` signed: validity period at
    /// `unix_now`, its key not revoked, our `app_id` within the CA's scope (the cert's own
    /// app list is checked for every cert, signed or not, by the handshake).
    pub fn check_cert(
        &self,
        ca: &TrustedCa,
        cert: &Certificate,
        app_id: u32,
        unix_now: Option<u64>,
    ) -> Result<u64, TrustError> {
        let now = unix_now.ok_or(TrustError::NoClock)?;
        let expiry = cert.time_expiry.unwrap_or(0);
        if u64::from(expiry) < now {
            return Err(TrustError::Expired { expiry, now });
        }
        let created = cert.time_created.unwrap_or(0);
        if u64::from(created) > now + u64::from(self.not_before_leeway) {
            return Err(TrustError::NotYetValid { created, now });
        }
        if let Some(key) = cert
            .key_data
            .as_deref()
            .and_then(|k| <&[u8; PUBLIC_KEY_LEN]>::try_from(k).ok())
            && self.is_revoked(ca_key_id(key))
        {
            return Err(TrustError::RevokedKey(ca_key_id(key)));
        }
        // GNS's `CheckCertAppID`, scope half.
        if !ca.app_ids.is_empty() && !ca.app_ids.contains(&app_id) {
            return Err(TrustError::AppNotInCaScope(app_id));
        }
        Ok(ca.key_id())
    }
}

#[cfg(test)]
#[path = "trust/tests.rs"]
mod tests;
