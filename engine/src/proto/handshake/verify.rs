//! Verifying a peer's certificate and signed crypt info during the handshake, in the order of
//! GNS's `CSteamNetworkConnectionBase::RecvCryptoHandshake` (spec §1.6, §2.4): CA chain (when
//! signed), the unsigned-cert policy, the certificate body, identity rules, the crypt-info
//! signature, the protocol version.

use std::net::SocketAddr;

use super::{AuthPolicy, HandshakeError, MIN_PEER_PROTOCOL, bad_crypt};
use crate::crypto::ca::certificate_identity;
use crate::crypto::cert::{check_peer_cert, verify_peer_crypt_info};
use crate::crypto::{CertError, PeerCert, PeerCryptInfo, TrustError, TrustStore};
use crate::wire::identity::{Identity, IdentityError};
use crate::wire::proto::{CertificateSigned, CryptInfoSigned};

/// The empty store [`PeerAuth`] uses when only a policy is given.
static NO_TRUST: TrustStore = TrustStore::new();

/// SteamID account type of anonymous game servers (GNS `BAnonGameServerAccount`).
const ANON_GAMESERVER_ACCOUNT_TYPE: u64 = 4;

/// Everything a handshake step needs to judge a peer: the connection's policy, the instance's
/// trust store, and the current Unix time (seconds), which the caller supplies because the
/// engine reads no clock. Without a time, CA-signed certificates cannot be trusted.
#[derive(Debug, Clone, Copy)]
pub struct PeerAuth<'a> {
    /// `IP_AllowWithoutAuth` and our AppID.
    pub policy: &'a AuthPolicy,
    /// Trusted CAs, revocations, `require_trusted`.
    pub trust: &'a TrustStore,
    /// Wall-clock Unix seconds.
    pub unix_now: Option<u64>,
}

impl<'a> From<&'a AuthPolicy> for PeerAuth<'a> {
    /// Open-source GNS's situation: no CA we trust.
    fn from(policy: &'a AuthPolicy) -> Self {
        PeerAuth {
            policy,
            trust: &NO_TRUST,
            unix_now: None,
        }
    }
}

/// A peer that passed every check.
#[derive(Debug)]
pub(super) struct VerifiedPeer {
    pub cert: PeerCert,
    pub info: PeerCryptInfo,
    pub identity: Identity,
    /// Key id of the trusted CA that signed the peer's cert, if any.
    pub trusted_ca: Option<u64>,
}

/// Checks the peer's cert and crypt info. `message_identity` is the identity the handshake
/// message claims (only used when the cert names none); `expected` is the identity we
/// connected to, if the application named one.
pub(super) fn verify_peer(
    cert: Option<&CertificateSigned>,
    crypt: Option<&CryptInfoSigned>,
    message_identity: Option<&str>,
    from: SocketAddr,
    expected: Option<&Identity>,
    auth: PeerAuth<'_>,
) -> Result<VerifiedPeer, HandshakeError> {
    let signed = cert.ok_or(HandshakeError::Missing("cert"))?;
    let crypt = crypt.ok_or(HandshakeError::Missing("crypt"))?;
    let policy = auth.policy;
    let unsigned_allowed = !auth.trust.require_trusted && {
        let level = if from.ip().is_loopback() {
            policy
                .allow_without_auth
                .max(policy.localhost_allow_without_auth)
        } else {
            policy.allow_without_auth
        };
        level >= 1
    };
    // GNS checks the CA signature over the raw bytes before it decodes them.
    let chain = signed
        .ca_signature
        .is_some()
        .then(|| auth.trust.check_signature(signed, auth.unix_now));
    if let Some(Err(e)) = &chain
        && !unsigned_allowed
    {
        return Err(CertError::Untrusted(e.clone()).into());
    }
    let peer_cert = check_peer_cert(signed, policy.app_id, &[])?;
    let chain = chain.map(|r| {
        r.and_then(|ca| {
            auth.trust
                .check_cert(ca, &peer_cert.cert, policy.app_id, auth.unix_now)
        })
    });
    let trusted_ca = match chain {
        Some(Ok(id)) => Some(id),
        Some(Err(e)) if !unsigned_allowed => return Err(CertError::Untrusted(e).into()),
        _ => None,
    };

    let cert_identity = match certificate_identity(&peer_cert.cert) {
        Ok(id) => Some(id),
        Err(IdentityError::Absent) => None,
        Err(e) => return Err(CertError::BadIdentity(e).into()),
    };
    let named = cert_identity.clone().filter(|id| !is_localhost(id));
    let claimed = message_identity.and_then(|s| Identity::parse(s).ok());
    match &named {
        Some(id) => {
            for other in [claimed.as_ref(), expected].into_iter().flatten() {
                if other != id {
                    return Err(CertError::IdentityMismatch {
                        cert: id.to_string(),
                        expected: other.to_string(),
                    }
                    .into());
                }
            }
        }
        None if signed.ca_signature.is_some() => {
            // Rule 4 of §1.6: identity-less signed certs only for anonymous game servers
            // scoped to POPs; GNS applies it whether or not the signature was trusted.
            let anon = matches!(
                expected.or(claimed.as_ref()),
                Some(Identity::SteamId(id)) if (id >> 52) & 0xf == ANON_GAMESERVER_ACCOUNT_TYPE
            );
            if !anon || peer_cert.cert.gameserver_datacenter_ids.is_empty() {
                return Err(CertError::SignedWithoutIdentity.into());
            }
        }
        None => {
            if let Some(e) = expected {
                return Err(CertError::IdentityMismatch {
                    cert: Identity::localhost().to_string(),
                    expected: e.to_string(),
                }
                .into());
            }
        }
    }
    if trusted_ca.is_none() && !unsigned_allowed {
        return Err(CertError::UnsignedNotAllowed.into());
    }

    let info = verify_peer_crypt_info(crypt, &peer_cert).map_err(bad_crypt)?;
    if info.protocol_version < MIN_PEER_PROTOCOL {
        return Err(HandshakeError::BadProtocolVersion(info.protocol_version));
    }
    let identity = remote_identity(cert_identity.or(claimed), from);
    Ok(VerifiedPeer {
        cert: peer_cert,
        info,
        identity,
        trusted_ca,
    })
}

/// GNS's `IsLocalHost` for identities: an IP identity on the loopback address.
fn is_localhost(id: &Identity) -> bool {
    matches!(id, Identity::IpAddress(a) if a.ip().is_loopback())
}

/// The peer's identity: from its cert, else from the message; an anonymous localhost identity
/// (or none) becomes the peer's real address (GNS, spec §2.3 step 3-4).
fn remote_identity(named: Option<Identity>, from: SocketAddr) -> Identity {
    match named {
        Some(id) if is_localhost(&id) => Identity::IpAddress(from),
        Some(Identity::Invalid) | None => Identity::IpAddress(from),
        Some(id) => id,
    }
}

impl From<TrustError> for HandshakeError {
    fn from(e: TrustError) -> Self {
        HandshakeError::BadCert(CertError::Untrusted(e))
    }
}
