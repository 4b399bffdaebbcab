//! The game-coordinator login (`GetGameCoordinatorServerLogin`, SDR's
//! `SteamDatagramGameCoordinatorServerLogin`): a hosted server signs who and where it is with
//! its certificate's key, so a backend learns its identity, routing blob and POP without IP
//! allow-lists. Format (ours; prost):
//!
//! ```text
//!  SignedLogin { 1 login: bytes (Login), 2 cert: CertificateSigned, 3 signature: bytes (64) }
//!  Login       { 1 identity: string, 2 routing: bytes (≤128), 3 app_id: uint32,
//!                4 rtime: fixed64 (Unix seconds), 5 app_data: bytes (≤2048) }
//! ```
//!
//! The signature is Ed25519 by the certificate's key over `"sockworks gc login v1\0" ‖ login`.
//! [`verify`] checks it, the certificate against the backend's trusted CAs (the engine's
//! `TrustStore`), that the certificate names the login's identity, and freshness.

#![allow(
    clippy::derive_partial_eq_without_eq,
    reason = "prost's derive emits impls that clippy cannot see through; the structs are plain data"
)]

use prost::Message as _;
use sockworks_engine::crypto::TrustStore;
use sockworks_engine::crypto::ca::certificate_identity;
use sockworks_engine::crypto::keys::{IdentityKey, verify_signature};
use sockworks_engine::wire::proto::{Certificate, CertificateSigned};

/// Largest app data (SDR's `k_cbMaxSteamDatagramGameCoordinatorServerLoginAppData`).
pub const MAX_APP_DATA: usize = 2048;
/// Largest signed login (SDR's `k_cbMaxSteamDatagramGameCoordinatorServerLoginSerialized`).
pub const MAX_SIGNED_LOGIN: usize = 4096;
const CONTEXT: &[u8] = b"sockworks gc login v1\0";

/// What a hosted server says about itself.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Login {
    /// The server's identity string.
    #[prost(string, tag = "1")]
    pub identity: String,
    /// Its routing blob (`GetHostedDedicatedServerAddress`).
    #[prost(bytes = "vec", tag = "2")]
    pub routing: Vec<u8>,
    /// The application.
    #[prost(uint32, tag = "3")]
    pub app_id: u32,
    /// When it was signed, Unix seconds.
    #[prost(fixed64, tag = "4")]
    pub rtime: u64,
    /// The application's own data.
    #[prost(bytes = "vec", tag = "5")]
    pub app_data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SignedLogin {
    #[prost(bytes = "vec", tag = "1")]
    login: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    cert: Option<CertificateSigned>,
    #[prost(bytes = "vec", tag = "3")]
    signature: Vec<u8>,
}

/// Why a login could not be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// App data over [`MAX_APP_DATA`], or a signed login over [`MAX_SIGNED_LOGIN`].
    #[error("login too large")]
    TooLarge,
    /// Not a signed login.
    #[error("malformed login")]
    Malformed,
    /// The signature does not match the certificate's key.
    #[error("bad login signature")]
    BadSignature,
    /// The certificate is not trusted (or does not decode).
    #[error("untrusted certificate: {0}")]
    Untrusted(String),
    /// The certificate names someone else.
    #[error("certificate names {cert}, login says {login}")]
    WrongIdentity {
        /// The certificate's identity.
        cert: String,
        /// The login's.
        login: String,
    },
    /// Older than allowed, or from the future.
    #[error("login time {rtime} too far from now {now}")]
    Stale {
        /// The login's time.
        rtime: u64,
        /// The verifier's time.
        now: u64,
    },
}

/// Signs `login` with `key`, attaching `cert` (the certificate naming `key`).
pub fn sign(
    login: &Login,
    cert: &CertificateSigned,
    key: &IdentityKey,
) -> Result<Vec<u8>, LoginError> {
    if login.app_data.len() > MAX_APP_DATA {
        return Err(LoginError::TooLarge);
    }
    let body = login.encode_to_vec();
    let signature = key.sign(&[CONTEXT, &body].concat()).to_vec();
    let out = SignedLogin {
        login: body,
        cert: Some(cert.clone()),
        signature,
    }
    .encode_to_vec();
    if out.len() > MAX_SIGNED_LOGIN {
        return Err(LoginError::TooLarge);
    }
    Ok(out)
}

/// A backend's check of a signed login at `unix_now`, accepting logins at most `max_age`
/// seconds old (and 60 s ahead, for clock skew).
pub fn verify(
    blob: &[u8],
    trust: &TrustStore,
    unix_now: u64,
    max_age: u64,
) -> Result<Login, LoginError> {
    if blob.len() > MAX_SIGNED_LOGIN {
        return Err(LoginError::TooLarge);
    }
    let signed = SignedLogin::decode(blob).map_err(|_| LoginError::Malformed)?;
    let cert_signed = signed.cert.ok_or(LoginError::Malformed)?;
    let cert = Certificate::decode(cert_signed.cert.as_deref().unwrap_or_default())
        .map_err(|_| LoginError::Malformed)?;
    trust
        .check(&cert_signed, &cert, 0, Some(unix_now))
        .map_err(|e| LoginError::Untrusted(e.to_string()))?;
    let key = cert.key_data.as_deref().ok_or(LoginError::Malformed)?;
    verify_signature(key, &[CONTEXT, &signed.login].concat(), &signed.signature)
        .map_err(|_| LoginError::BadSignature)?;
    let login = Login::decode(signed.login.as_slice()).map_err(|_| LoginError::Malformed)?;
    let named = certificate_identity(&cert)
        .map_err(|e| LoginError::Untrusted(e.to_string()))?
        .to_string();
    if named != login.identity {
        return Err(LoginError::WrongIdentity {
            cert: named,
            login: login.identity,
        });
    }
    if login.rtime + max_age < unix_now || login.rtime > unix_now + 60 {
        return Err(LoginError::Stale {
            rtime: login.rtime,
            now: unix_now,
        });
    }
    Ok(login)
}
