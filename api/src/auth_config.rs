//! What an instance is told about authentication at start ([`crate::SocketsConfig`]): the
//! trust its peers are judged by, the certificate authority service it may fetch its own
//! certificate from, and the status types `GetAuthenticationStatus` and callback 202 report.

use std::sync::Arc;
use std::time::Duration;

use sockworks_engine::crypto::{TrustStore, TrustedCa};

/// Who this instance trusts: CA public keys, revoked key ids, and whether peers must present
/// a certificate one of those CAs signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    /// CA keys whose certificates we accept (one level of chain).
    pub cas: Vec<TrustedCa>,
    /// Revoked key ids (CA keys or certificate keys), as `sockworks-cert revoke` lists them.
    pub revoked: Vec<u64>,
    /// Refuse peers without a trusted certificate (`Remote_BadCert`, 4003), whatever
    /// `IP_AllowWithoutAuth` says. Off by default, so GNS peers keep connecting unauthenticated.
    pub require_trusted: bool,
    /// Seconds a certificate may be dated in the future (clock skew with the CA); default 300.
    pub not_before_leeway: u32,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            cas: Vec::new(),
            revoked: Vec::new(),
            require_trusted: false,
            not_before_leeway: 300,
        }
    }
}

impl TrustConfig {
    /// The engine's trust store with these settings.
    pub fn store(&self) -> TrustStore {
        let mut t = TrustStore::new();
        for ca in &self.cas {
            t.add_ca(ca.clone());
        }
        for &id in &self.revoked {
            t.revoke(id);
        }
        t.require_trusted = self.require_trusted;
        t.not_before_leeway = self.not_before_leeway;
        t
    }
}

/// The CA service `InitAuthentication` fetches our certificate from (`sockworks-cert serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaClientConfig {
    /// Base URL, `http://host:port` (optionally with a path prefix); only plain `http://`.
    pub url: String,
    /// Bearer token the service knows us by (never logged).
    pub token: String,
    /// Longest one request may take, connect to last byte (default 10 s).
    pub timeout: Duration,
    /// Wait before retrying a failed renewal while the current certificate is still valid
    /// (default 30 s, as GNS retries). A first attempt that fails is not retried (GNS).
    pub retry_after: Duration,
}

impl CaClientConfig {
    /// A client of the service at `url` with `token` and the default timeouts.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        CaClientConfig {
            url: url.into(),
            token: token.into(),
            timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(30),
        }
    }
}

/// `ESteamNetworkingAvailability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Availability {
    /// A dependency is missing or not configured: there is nothing to try.
    CannotTry = -102,
    /// Tried and failed.
    Failed = -101,
    /// Was available, lost it (e.g. the certificate expired).
    Previously = -100,
    /// Failed, and will try again (a renewal while the old certificate still works).
    Retrying = -10,
    /// Never tried.
    NeverTried = 1,
    /// Waiting for a dependency.
    Waiting = 2,
    /// Trying now.
    Attempting = 3,
    /// Available now.
    Current = 100,
}

/// `SteamNetAuthenticationStatus_t`: the availability and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStatus {
    /// `m_eAvail`.
    pub avail: Availability,
    /// `m_debugMsg`: what happened (GNS: "No certificate authority", "OK", the failure).
    pub debug: String,
}

impl AuthStatus {
    pub(crate) fn new(avail: Availability, debug: impl Into<String>) -> Self {
        AuthStatus {
            avail,
            debug: debug.into(),
        }
    }
}

/// The authentication-status callback (`Callback_AuthStatusChanged`, 202), called from
/// `run_callbacks` on the application's thread whenever the status changes.
pub type AuthStatusFn = Arc<dyn Fn(&AuthStatus) + Send + Sync>;
