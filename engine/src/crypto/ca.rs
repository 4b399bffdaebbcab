//! A certificate authority in GNS's formats (spec §2.1-2.2, §2.7): Ed25519 CA keys, issuing
//! `CMsgSteamDatagramCertificateSigned` for an identity and key (directly or from a
//! `CMsgSteamDatagramCertificateRequest`), building the request GNS's `GetCertificateRequest`
//! returns, and decoding any certificate for display.
//!
//! GNS's own certtool cannot put an identity into a certificate, and GNS peers reject a
//! CA-signed certificate without one (§1.6 rule 4), so end-entity certificates made here always
//! name their identity. Pure: keys come from caller seeds or a caller RNG, times are arguments.

use std::fmt;

use prost::Message;
use rand_core::CryptoRng;

use super::cert::CertError;
pub use super::keys::ca_key_id as key_id;
use super::keys::{IdentityKey, PUBLIC_KEY_LEN, SIGNATURE_LEN, verify_signature};
use super::pem::{self, PemError};
use crate::wire::identity::{Identity, IdentityError};
use crate::wire::proto::{CertKeyType, Certificate, CertificateRequest, CertificateSigned};

/// An Ed25519 CA signing key.
#[derive(Clone)]
pub struct CaKey {
    key: IdentityKey,
    seed: [u8; 32],
}

impl CaKey {
    /// From a 32-byte RFC 8032 seed (the private half stored in key files).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: IdentityKey::from_seed(seed),
            seed,
        }
    }

    /// A fresh key from the caller's cryptographic RNG (the engine has no RNG of its own).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// Reads an OpenSSH Ed25519 private key (GNS's or `ssh-keygen`'s, unencrypted).
    pub fn from_pem(text: &str) -> Result<Self, PemError> {
        pem::read_openssh_private_key(text).map(Self::from_seed)
    }

    /// The key as GNS writes private keys (OpenSSH PEM, CRLF).
    pub fn to_pem(&self) -> String {
        pem::write_openssh_private_key(&self.seed)
    }

    /// The secret seed, for storing the key elsewhere.
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The public key peers must trust.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.public_bytes()
    }

    /// GNS's key id of the public key (what certificates carry as `ca_key_id`).
    pub fn key_id(&self) -> u64 {
        key_id(&self.public_key())
    }

    /// The public key as an `ssh-ed25519 … ID<keyid>` line, like GNS's hard-coded root.
    pub fn public_key_line(&self) -> String {
        pem::write_public_key(&self.public_key(), Some(&format!("ID{}", self.key_id())))
    }

    /// Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(msg)
    }
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// What a certificate says: the body of `CMsgSteamDatagramCertificate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertParams {
    /// Whom the key belongs to; `None` only for CA/intermediate certificates (GNS peers refuse
    /// CA-signed end-entity certificates without one).
    pub identity: Option<Identity>,
    /// The certified Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// AppIDs the key may be used for (empty: all, for CA certificates; GNS wants a non-empty
    /// list containing the verifier's AppID, 0 in open-source builds, for identity certs).
    pub app_ids: Vec<u32>,
    /// POP ids (`gameserver_datacenter_ids`, see [`pop_id`]); empty means all.
    pub pop_ids: Vec<u32>,
    /// Unix seconds.
    pub time_created: u32,
    /// Unix seconds; GNS treats 0 as already expired.
    pub time_expiry: u32,
}

/// Why a certificate could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The identity has no GNS wire form (`invalid`).
    #[error("identity {0} cannot be put in a certificate")]
    Identity(String),
    /// The request carries no certificate body.
    #[error("certificate request has no certificate")]
    EmptyRequest,
    /// The request's key is not a 32-byte Ed25519 key.
    #[error("certificate request key: {0}")]
    RequestKey(CertError),
    /// The request's identity does not parse.
    #[error("certificate request identity: {0}")]
    RequestIdentity(IdentityError),
    /// Neither the request nor the policy names a (non-localhost) identity.
    #[error("certificate request names no identity")]
    NoIdentity,
    /// The request names another identity than the policy allows.
    #[error("certificate request is for {requested}, the caller may only get {allowed}")]
    IdentityNotAllowed {
        /// What the request asked for.
        requested: Identity,
        /// What the policy allows.
        allowed: Identity,
    },
    /// `time_expiry` is not after `time_created`.
    #[error("certificate would expire ({expiry}) before it is created ({created})")]
    Times {
        /// `time_created`.
        created: u32,
        /// `time_expiry`.
        expiry: u32,
    },
}

/// Writes `identity` into a certificate's identity fields as GNS does: the string form, the
/// legacy binary form (an empty message for types without one) and, for SteamIDs, the legacy
/// SteamID field.
pub fn set_identity_fields(cert: &mut Certificate, identity: &Identity) -> Result<(), IssueError> {
    if *identity == Identity::Invalid {
        return Err(IssueError::Identity(identity.to_string()));
    }
    cert.identity_string = Some(identity.to_string());
    cert.legacy_identity_binary = Some(identity.to_legacy_binary().unwrap_or_default());
    cert.legacy_steam_id = match identity {
        Identity::SteamId(id) => Some(*id),
        _ => None,
    };
    Ok(())
}

/// The certificate body for `params` (fields written in GNS's order by prost: by number).
pub fn certificate(params: &CertParams) -> Result<Certificate, IssueError> {
    if params.time_expiry <= params.time_created {
        return Err(IssueError::Times {
            created: params.time_created,
            expiry: params.time_expiry,
        });
    }
    let mut cert = Certificate {
        key_type: Some(CertKeyType::Ed25519 as i32),
        key_data: Some(params.public_key.to_vec()),
        gameserver_datacenter_ids: params.pop_ids.clone(),
        time_created: Some(params.time_created),
        time_expiry: Some(params.time_expiry),
        app_ids: params.app_ids.clone(),
        ..Certificate::default()
    };
    if let Some(identity) = &params.identity {
        set_identity_fields(&mut cert, identity)?;
    }
    Ok(cert)
}

/// Signs a certificate body: the signature covers exactly the serialized bytes stored in
/// `cert`, and `ca_key_id` names the CA, as GNS verifies (§2.2).
pub fn sign_certificate(ca: &CaKey, cert: &Certificate) -> CertificateSigned {
    let bytes = cert.encode_to_vec();
    let signature = ca.sign(&bytes).to_vec();
    CertificateSigned {
        cert: Some(bytes),
        ca_key_id: Some(ca.key_id()),
        ca_signature: Some(signature),
        private_key_data: None,
    }
}

/// Issues a certificate for `params`, signed by `ca`.
pub fn issue(ca: &CaKey, params: &CertParams) -> Result<CertificateSigned, IssueError> {
    Ok(sign_certificate(ca, &certificate(params)?))
}

/// What a CA fills in when it signs a request (the request itself only carries a key and an
/// identity, as GNS's `GetCertificateRequest` builds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePolicy {
    /// AppIDs to grant (GNS peers need their own AppID in the list: `[0]` for open-source).
    pub app_ids: Vec<u32>,
    /// POP ids to grant; `None` keeps the request's.
    pub pop_ids: Option<Vec<u32>>,
    /// Unix seconds.
    pub time_created: u32,
    /// Unix seconds.
    pub time_expiry: u32,
    /// The identity the caller is entitled to (e.g. from its token). The request must name it
    /// or name none (or localhost); `None` accepts whatever non-localhost identity it names.
    pub identity: Option<Identity>,
}

/// Signs a `CMsgSteamDatagramCertificateRequest` under `policy`.
pub fn issue_for_request(
    ca: &CaKey,
    request: &CertificateRequest,
    policy: &IssuePolicy,
) -> Result<CertificateSigned, IssueError> {
    let body = request.cert.as_ref().ok_or(IssueError::EmptyRequest)?;
    if body.key_type != Some(CertKeyType::Ed25519 as i32) {
        return Err(IssueError::RequestKey(CertError::KeyType(body.key_type)));
    }
    let key = body.key_data.as_deref().unwrap_or_default();
    let public_key: [u8; PUBLIC_KEY_LEN] = key
        .try_into()
        .map_err(|_| IssueError::RequestKey(CertError::KeyLength(key.len())))?;
    let requested = match certificate_identity(body) {
        Ok(id) if id == Identity::localhost() => None,
        Ok(id) => Some(id),
        Err(IdentityError::Absent) => None,
        Err(e) => return Err(IssueError::RequestIdentity(e)),
    };
    let identity = match (requested, &policy.identity) {
        (None, None) => return Err(IssueError::NoIdentity),
        (Some(r), None) => r,
        (None, Some(a)) => a.clone(),
        (Some(r), Some(a)) if r == *a => r,
        (Some(r), Some(a)) => {
            return Err(IssueError::IdentityNotAllowed {
                requested: r,
                allowed: a.clone(),
            });
        }
    };
    issue(
        ca,
        &CertParams {
            identity: Some(identity),
            public_key,
            app_ids: policy.app_ids.clone(),
            pop_ids: policy
                .pop_ids
                .clone()
                .unwrap_or_else(|| body.gameserver_datacenter_ids.clone()),
            time_created: policy.time_created,
            time_expiry: policy.time_expiry,
        },
    )
}

/// The request GNS's `GetCertificateRequest` returns for `identity` and our key: Ed25519 key
/// and the identity fields, left out for invalid and localhost identities; no times, no apps.
pub fn make_request(identity: &Identity, public_key: &[u8; PUBLIC_KEY_LEN]) -> CertificateRequest {
    let mut cert = Certificate {
        key_type: Some(CertKeyType::Ed25519 as i32),
        key_data: Some(public_key.to_vec()),
        ..Certificate::default()
    };
    if *identity != Identity::localhost() {
        // An invalid identity is simply left out, as GNS does.
        let _ = set_identity_fields(&mut cert, identity);
    }
    CertificateRequest { cert: Some(cert) }
}

/// The identity a certificate names, in GNS's order of preference (`Absent` if none).
pub fn certificate_identity(cert: &Certificate) -> Result<Identity, IdentityError> {
    Identity::from_wire(
        cert.identity_string.as_deref(),
        cert.legacy_identity_binary.as_ref(),
        cert.legacy_steam_id,
    )
}

/// GNS's POP id of a 3- or 4-character code (`CalculateSteamNetworkingPOPIDFromString`):
/// `"iad"` is `'i'<<16 | 'a'<<8 | 'd'`, `"abcd"` is `0xddaabbcc`.
pub fn pop_id(code: &str) -> u32 {
    let b = code.as_bytes();
    let at = |i: usize| u32::from(b.get(i).copied().unwrap_or(0));
    let mut id = at(0) << 16;
    if id != 0 && at(1) != 0 {
        id |= at(1) << 8;
        if at(2) != 0 {
            id |= at(2) | at(3) << 24;
        }
    }
    id
}

/// The code of a POP id (inverse of [`pop_id`]; GNS's `GetSteamNetworkingLocationPOPStringFromID`).
pub fn pop_code(id: u32) -> String {
    let bytes = [
        (id >> 16) as u8,
        (id >> 8) as u8,
        id as u8,
        (id >> 24) as u8,
    ];
    bytes
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect()
}

/// A certificate decoded for display (the CLI's `inspect`, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The named identity; `Err(Absent)` for CA certificates, other errors if malformed.
    pub identity: Result<Identity, IdentityError>,
    /// The certified key (if it is a 32-byte Ed25519 key).
    pub public_key: Option<[u8; PUBLIC_KEY_LEN]>,
    /// Its key id (0 if the key is not 32 bytes, as in GNS).
    pub key_id: u64,
    /// `ca_key_id`, if any.
    pub ca_key_id: Option<u64>,
    /// Whether a CA signature is present.
    pub signed: bool,
    /// Whether the signature verifies with the key passed to [`inspect`] (`None`: no key given
    /// or no signature).
    pub signature_valid: Option<bool>,
    /// Unix seconds, if present.
    pub time_created: Option<u32>,
    /// Unix seconds, if present.
    pub time_expiry: Option<u32>,
    /// Granted AppIDs.
    pub app_ids: Vec<u32>,
    /// Granted POP ids.
    pub pop_ids: Vec<u32>,
    /// Whether the blob carries a private key (`private_key_data`).
    pub has_private_key: bool,
}

/// Decodes a signed certificate; checks the signature against `ca_public_key` if given.
pub fn inspect(
    signed: &CertificateSigned,
    ca_public_key: Option<&[u8; PUBLIC_KEY_LEN]>,
) -> Result<CertSummary, CertError> {
    let bytes = signed.cert.as_deref().ok_or(CertError::Missing)?;
    let cert = Certificate::decode(bytes).map_err(|_| CertError::Decode)?;
    let public_key: Option<[u8; PUBLIC_KEY_LEN]> = cert
        .key_data
        .as_deref()
        .and_then(|k| k.try_into().ok())
        .filter(|_| cert.key_type == Some(CertKeyType::Ed25519 as i32));
    let signature_valid = match (ca_public_key, &signed.ca_signature) {
        (Some(ca), Some(sig)) => Some(verify_signature(ca, bytes, sig).is_ok()),
        _ => None,
    };
    Ok(CertSummary {
        identity: certificate_identity(&cert),
        public_key,
        key_id: public_key.as_ref().map_or(0, key_id),
        ca_key_id: signed.ca_key_id,
        signed: signed.ca_signature.is_some(),
        signature_valid,
        time_created: cert.time_created,
        time_expiry: cert.time_expiry,
        app_ids: cert.app_ids,
        pop_ids: cert.gameserver_datacenter_ids,
        has_private_key: signed.private_key_data.is_some(),
    })
}

#[cfg(test)]
#[path = "ca/tests.rs"]
mod tests;
