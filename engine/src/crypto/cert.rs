//! Certificates and signed crypt infos (spec §2.8, §3.2): building our own unsigned,
//! self-issued certificate and signed crypt info, and checking a peer's.
//!
//! Only checks about the crypto material live here. Identity matching, the
//! `IP_AllowWithoutAuth` policy for unsigned certs, expiry (needs a clock) and protocol-version
//! consistency with the ChallengeReply are the caller's: [`PeerCert::ca`] says whether the cert
//! was CA-signed so it can apply them. GNS: `CSteamNetworkConnectionBase::BRecvCryptoHandshake`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use prost::Message;

use super::keys::{IdentityKey, KeyError, PUBLIC_KEY_LEN, ca_key_id, verify_signature};
use crate::wire::proto::{
    CertKeyType, Certificate, CertificateSigned, Cipher, CryptInfo, CryptInfoSigned, CryptKeyType,
    IdentityLegacyBinary,
};

/// The protocol version we speak and sign into our crypt info.
pub const PROTOCOL_VERSION: u32 = 13;
/// Oldest peer protocol version GNS accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 8;
/// Identity GNS uses when none is configured (anonymous localhost).
pub const LOCALHOST_IDENTITY: &str = "ip:::1";
/// The AppID of the open-source build, which its self-issued certs list.
pub const DEFAULT_APP_ID: u32 = 0;

/// Why a peer certificate is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// `CertificateSigned.cert` is absent.
    #[error("certificate bytes missing")]
    Missing,
    /// `cert` is not a valid `Certificate` protobuf.
    #[error("certificate does not decode")]
    Decode,
    /// Key type is not Ed25519.
    #[error("certificate key type {0:?} is not Ed25519")]
    KeyType(Option<i32>),
    /// Key is not 32 bytes.
    #[error("certificate key is {0} bytes, expected 32")]
    KeyLength(usize),
    /// The cert lists app IDs and none is ours.
    #[error("certificate is not valid for app {local_app_id}")]
    AppId {
        /// Our AppID.
        local_app_id: u32,
    },
    /// A cert naming a non-localhost identity must list at least one app ID.
    #[error("certificate names an identity but lists no app IDs")]
    IdentityWithoutAppIds,
    /// A CA signature is present but not trusted, and the policy requires trust (GNS: "Bad
    /// cert: …").
    #[error("Bad cert: {0}")]
    Untrusted(super::trust::TrustError),
    /// The identity in the cert does not parse (GNS: "Bad cert identity").
    #[error("Bad cert identity: {0}")]
    BadIdentity(crate::wire::identity::IdentityError),
    /// The cert names another identity than the peer claims or we connected to.
    #[error("Cert was issued to {cert}, not {expected}")]
    IdentityMismatch {
        /// The cert's identity.
        cert: String,
        /// The identity claimed or expected.
        expected: String,
    },
    /// A CA-signed cert without an identity, which GNS only allows for anonymous game servers
    /// scoped to POPs.
    #[error("Certs with no identity can only be anonymous gameservers")]
    SignedWithoutIdentity,
    /// The cert is not CA-signed and the authentication policy (`IP_AllowWithoutAuth`) refuses
    /// unsigned certs from this peer; the handshake raises it, not [`check_peer_cert`].
    #[error("unsigned certificate not allowed")]
    UnsignedNotAllowed,
}

/// Why a peer's signed crypt info is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptInfoError {
    /// `info` is absent.
    #[error("crypt info bytes missing")]
    Missing,
    /// `signature` is absent.
    #[error("crypt info signature missing")]
    MissingSignature,
    /// Signature does not verify with the cert's key.
    #[error("crypt info signature: {0}")]
    Signature(KeyError),
    /// `info` is not a valid `CryptInfo` protobuf.
    #[error("crypt info does not decode")]
    Decode,
    /// Key type is not Curve25519.
    #[error("crypt info key type {0:?} is not Curve25519")]
    KeyType(Option<i32>),
    /// Key is not 32 bytes.
    #[error("crypt info key is {0} bytes, expected 32")]
    KeyLength(usize),
    /// Protocol version absent or below [`MIN_PROTOCOL_VERSION`].
    #[error("peer protocol version {0:?} is too old")]
    ProtocolVersion(Option<u32>),
}

/// Why a CA signature was not accepted (the cert is then treated as unsigned by policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRejection {
    /// No trusted CA has the cert's `ca_key_id` (or it is absent).
    UnknownCa,
    /// The CA is known but its signature does not verify.
    BadSignature,
}

/// How the peer certificate is vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaStatus {
    /// Signed by the trusted CA with this key ID.
    Signed {
        /// The CA key ID.
        ca_key_id: u64,
    },
    /// No CA signature: allowed only if `IP_AllowWithoutAuth` (or loopback variant) permits.
    Unsigned,
    /// A CA signature was present but not accepted; GNS then applies the unsigned policy.
    Rejected(CaRejection),
}

/// A structurally valid peer certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerCert {
    /// Exact `CertificateSigned.cert` bytes (key derivation input).
    pub cert_bytes: Vec<u8>,
    /// Decoded certificate (identity, app IDs, expiry for the caller's checks).
    pub cert: Certificate,
    /// The Ed25519 key that must sign the peer's crypt info.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// CA status for the caller's authentication policy.
    pub ca: CaStatus,
}

/// A verified peer crypt info.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerCryptInfo {
    /// Exact `CryptInfoSigned.info` bytes (key derivation input).
    pub info_bytes: Vec<u8>,
    /// Peer's X25519 ephemeral public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Peer's nonce (salt half).
    pub nonce: u64,
    /// Signed protocol version (≥ [`MIN_PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// Raw cipher values as sent (see `negotiate`).
    pub ciphers: Vec<i32>,
}

/// The unsigned self-issued certificate GNS makes for itself: Ed25519 key, identity string and
/// app IDs (`[0]` in the open-source build). GNS also writes `legacy_identity_binary`; set it on
/// the result before [`certificate_signed`] to match GNS byte for byte. GNS: `CSteamNetworkingSocketsBase::InternalGetCertificate` / `CCertStore`.
pub fn self_issued_certificate(
    public_key: &[u8; PUBLIC_KEY_LEN],
    identity_string: Option<&str>,
    app_ids: &[u32],
) -> Certificate {
    Certificate {
        key_type: Some(CertKeyType::Ed25519 as i32),
        key_data: Some(public_key.to_vec()),
        app_ids: app_ids.to_vec(),
        identity_string: identity_string.map(str::to_owned),
        ..Certificate::default()
    }
}

/// Wraps a certificate, unsigned, as it goes on the wire (the `cert` bytes are then fixed).
pub fn certificate_signed(cert: &Certificate) -> CertificateSigned {
    CertificateSigned {
        cert: Some(cert.encode_to_vec()),
        ..CertificateSigned::default()
    }
}

/// Our default cert: `identity` (e.g. [`LOCALHOST_IDENTITY`]) and `app_ids = [DEFAULT_APP_ID]`.
pub fn default_self_issued(key: &IdentityKey, identity: &str) -> CertificateSigned {
    certificate_signed(&self_issued_certificate(
        &key.public_bytes(),
        Some(identity),
        &[DEFAULT_APP_ID],
    ))
}

/// Our crypt info: Curve25519 ephemeral key, nonce, [`PROTOCOL_VERSION`] and ciphers (client:
/// preference list; server: exactly the chosen one).
pub fn crypt_info(
    ephemeral_public: &[u8; PUBLIC_KEY_LEN],
    nonce: u64,
    ciphers: &[Cipher],
) -> CryptInfo {
    CryptInfo {
        key_type: Some(CryptKeyType::Curve25519 as i32),
        key_data: Some(ephemeral_public.to_vec()),
        nonce: Some(nonce),
        protocol_version: Some(PROTOCOL_VERSION),
        ciphers: ciphers.iter().map(|&c| c as i32).collect(),
    }
}

/// Serializes and signs a crypt info; the `info` bytes are kept exactly as signed.
pub fn sign_crypt_info(info: &CryptInfo, key: &IdentityKey) -> CryptInfoSigned {
    let bytes = info.encode_to_vec();
    let signature = key.sign(&bytes).to_vec();
    CryptInfoSigned {
        info: Some(bytes),
        signature: Some(signature),
    }
}

/// Checks a peer cert's key, app IDs and CA signature. `trusted_cas` are Ed25519 CA public keys;
/// `local_app_id` is ours ([`DEFAULT_APP_ID`] for the open-source build).
pub fn check_peer_cert(
    signed: &CertificateSigned,
    local_app_id: u32,
    trusted_cas: &[[u8; PUBLIC_KEY_LEN]],
) -> Result<PeerCert, CertError> {
    let cert_bytes = signed.cert.as_ref().ok_or(CertError::Missing)?;
    let cert = Certificate::decode(cert_bytes.as_slice()).map_err(|_| CertError::Decode)?;
    if cert.key_type != Some(CertKeyType::Ed25519 as i32) {
        return Err(CertError::KeyType(cert.key_type));
    }
    let key = cert.key_data.as_deref().unwrap_or_default();
    let public_key: [u8; PUBLIC_KEY_LEN] = key
        .try_into()
        .map_err(|_| CertError::KeyLength(key.len()))?;
    if !cert.app_ids.is_empty() && !cert.app_ids.contains(&local_app_id) {
        return Err(CertError::AppId { local_app_id });
    }
    if names_remote_identity(&cert) && cert.app_ids.is_empty() {
        return Err(CertError::IdentityWithoutAppIds);
    }
    let ca = match &signed.ca_signature {
        None => CaStatus::Unsigned,
        Some(sig) => check_ca(signed.ca_key_id, cert_bytes, sig, trusted_cas),
    };
    Ok(PeerCert {
        cert_bytes: cert_bytes.clone(),
        cert,
        public_key,
        ca,
    })
}

/// Whether the cert carries an identity other than localhost (`::1` or `127.0.0.1`, any port).
/// GNS prefers `identity_string`, then the legacy binary form, then the legacy SteamID.
fn names_remote_identity(cert: &Certificate) -> bool {
    if let Some(s) = cert.identity_string.as_deref() {
        return !is_localhost_identity_string(s);
    }
    if let Some(legacy) = &cert.legacy_identity_binary {
        return match legacy.ipv6_and_port.as_deref() {
            Some(ip_port) if legacy.generic_bytes.is_none() && legacy.generic_string.is_none() => {
                !ip_port.get(..16).is_some_and(|ip| {
                    // invariant: `get(..16)` returned exactly 16 bytes.
                    let octets: [u8; 16] = ip.try_into().expect("16 bytes");
                    is_loopback(IpAddr::V6(Ipv6Addr::from(octets)))
                })
            }
            _ => legacy != &IdentityLegacyBinary::default(),
        };
    }
    cert.legacy_steam_id.is_some()
}

/// `ip:::1`, `ip:[::1]:27015`, `ip:127.0.0.1`, `ip:127.0.0.1:27015` (spec §2.9 forms).
fn is_localhost_identity_string(s: &str) -> bool {
    let Some(addr) = s.strip_prefix("ip:") else {
        return false;
    };
    let host = if let Some(rest) = addr.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if addr.matches(':').count() == 1 {
        addr.split(':').next().unwrap_or(addr)
    } else {
        addr
    };
    host.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// GNS's `SteamNetworkingIPAddr::IsLocalHost`: exactly `::1` or `127.0.0.1` (also v4-mapped).
fn is_loopback(ip: IpAddr) -> bool {
    const V4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
    match ip {
        IpAddr::V4(v4) => v4 == V4,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped() == Some(V4),
    }
}

fn check_ca(
    ca_key_id_field: Option<u64>,
    cert_bytes: &[u8],
    signature: &[u8],
    trusted_cas: &[[u8; PUBLIC_KEY_LEN]],
) -> CaStatus {
    let Some(id) = ca_key_id_field else {
        return CaStatus::Rejected(CaRejection::UnknownCa);
    };
    match trusted_cas.iter().find(|k| ca_key_id(k) == id) {
        None => CaStatus::Rejected(CaRejection::UnknownCa),
        Some(ca) => match verify_signature(ca, cert_bytes, signature) {
            Ok(()) => CaStatus::Signed { ca_key_id: id },
            Err(_) => CaStatus::Rejected(CaRejection::BadSignature),
        },
    }
}

/// Verifies the peer's crypt info signature (over the exact received bytes) with its cert key,
/// then its key type, key length and protocol version.
pub fn verify_peer_crypt_info(
    signed: &CryptInfoSigned,
    cert: &PeerCert,
) -> Result<PeerCryptInfo, CryptInfoError> {
    let info_bytes = signed.info.as_ref().ok_or(CryptInfoError::Missing)?;
    let sig = signed
        .signature
        .as_ref()
        .ok_or(CryptInfoError::MissingSignature)?;
    verify_signature(&cert.public_key, info_bytes, sig).map_err(CryptInfoError::Signature)?;
    read_crypt_info(info_bytes)
}

/// The checks behind the signature: decodes signed crypt info bytes and checks the key type,
/// key length and protocol version.
pub(crate) fn read_crypt_info(info_bytes: &[u8]) -> Result<PeerCryptInfo, CryptInfoError> {
    let info = CryptInfo::decode(info_bytes).map_err(|_| CryptInfoError::Decode)?;
    if info.key_type != Some(CryptKeyType::Curve25519 as i32) {
        return Err(CryptInfoError::KeyType(info.key_type));
    }
    let key = info.key_data.as_deref().unwrap_or_default();
    let public_key: [u8; PUBLIC_KEY_LEN] = key
        .try_into()
        .map_err(|_| CryptInfoError::KeyLength(key.len()))?;
    let protocol_version = match info.protocol_version {
        Some(v) if v >= MIN_PROTOCOL_VERSION => v,
        other => return Err(CryptInfoError::ProtocolVersion(other)),
    };
    Ok(PeerCryptInfo {
        info_bytes: info_bytes.to_vec(),
        public_key,
        nonce: info.nonce.unwrap_or(0),
        protocol_version,
        ciphers: info.ciphers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> IdentityKey {
        IdentityKey::from_seed([b; 32])
    }

    #[test]
    fn own_cert_and_crypt_info_verify() {
        let id = key(1);
        let cert = default_self_issued(&id, LOCALHOST_IDENTITY);
        let peer = check_peer_cert(&cert, DEFAULT_APP_ID, &[]).unwrap();
        assert_eq!(peer.ca, CaStatus::Unsigned);
        assert_eq!(peer.public_key, id.public_bytes());
        let signed = sign_crypt_info(&crypt_info(&[9; 32], 77, &[Cipher::Aes256Gcm]), &id);
        let info = verify_peer_crypt_info(&signed, &peer).unwrap();
        assert_eq!(
            (info.nonce, info.protocol_version, info.public_key),
            (77, 13, [9; 32])
        );
        assert_eq!(info.ciphers, vec![2]);

        let mut bad = signed.clone();
        bad.info.as_mut().unwrap()[5] ^= 1;
        assert_eq!(
            verify_peer_crypt_info(&bad, &peer),
            Err(CryptInfoError::Signature(KeyError::BadSignature))
        );
        let other = check_peer_cert(&default_self_issued(&key(2), "ip:::1"), 0, &[]).unwrap();
        assert!(verify_peer_crypt_info(&signed, &other).is_err());
    }

    #[test]
    fn crypt_info_checks() {
        let id = key(1);
        let peer = check_peer_cert(&default_self_issued(&id, LOCALHOST_IDENTITY), 0, &[]).unwrap();
        let mut ci = crypt_info(&[9; 32], 1, &[]);
        ci.protocol_version = Some(7);
        let r = verify_peer_crypt_info(&sign_crypt_info(&ci, &id), &peer);
        assert_eq!(r, Err(CryptInfoError::ProtocolVersion(Some(7))));
        ci.protocol_version = Some(8);
        ci.key_data = Some(vec![1; 31]);
        let r = verify_peer_crypt_info(&sign_crypt_info(&ci, &id), &peer);
        assert_eq!(r, Err(CryptInfoError::KeyLength(31)));
        ci.key_type = Some(0);
        let r = verify_peer_crypt_info(&sign_crypt_info(&ci, &id), &peer);
        assert_eq!(r, Err(CryptInfoError::KeyType(Some(0))));
    }

    #[test]
    fn cert_rules() {
        let pk = key(3).public_bytes();
        let app7 = certificate_signed(&self_issued_certificate(&pk, Some("ip:::1"), &[7]));
        assert_eq!(
            check_peer_cert(&app7, 0, &[]),
            Err(CertError::AppId { local_app_id: 0 })
        );
        assert!(check_peer_cert(&app7, 7, &[]).is_ok());
        let no_apps = certificate_signed(&self_issued_certificate(&pk, Some("str:bob"), &[]));
        assert_eq!(
            check_peer_cert(&no_apps, 0, &[]),
            Err(CertError::IdentityWithoutAppIds)
        );
        let anon = certificate_signed(&self_issued_certificate(&pk, None, &[]));
        assert!(check_peer_cert(&anon, 0, &[]).is_ok());
        let mut wrong = self_issued_certificate(&pk, None, &[]);
        wrong.key_data = Some(vec![0; 33]);
        assert_eq!(
            check_peer_cert(&certificate_signed(&wrong), 0, &[]),
            Err(CertError::KeyLength(33))
        );
        wrong.key_type = None;
        assert_eq!(
            check_peer_cert(&certificate_signed(&wrong), 0, &[]),
            Err(CertError::KeyType(None))
        );
        let garbage = CertificateSigned {
            cert: Some(vec![0xff, 0xff]),
            ..Default::default()
        };
        assert_eq!(check_peer_cert(&garbage, 0, &[]), Err(CertError::Decode));
        assert_eq!(
            check_peer_cert(&CertificateSigned::default(), 0, &[]),
            Err(CertError::Missing)
        );
    }

    #[test]
    fn localhost_identities() {
        for s in [
            "ip:::1",
            "ip:[::1]:27015",
            "ip:127.0.0.1",
            "ip:127.0.0.1:5",
            "ip:::ffff:127.0.0.1",
        ] {
            assert!(is_localhost_identity_string(s), "{s}");
        }
        for s in [
            "ip:10.0.0.1",
            "ip:127.0.0.2",
            "ip:[::2]:1",
            "str:ip:::1",
            "steamid:1",
            "ip:",
        ] {
            assert!(!is_localhost_identity_string(s), "{s}");
        }
        let pk = key(5).public_bytes();
        let mut c = self_issued_certificate(&pk, None, &[]);
        let mut ip = [0u8; 18];
        ip[15] = 1;
        c.legacy_identity_binary = Some(IdentityLegacyBinary {
            ipv6_and_port: Some(ip.to_vec()),
            ..Default::default()
        });
        assert!(check_peer_cert(&certificate_signed(&c), 0, &[]).is_ok());
        ip[15] = 2;
        c.legacy_identity_binary = Some(IdentityLegacyBinary {
            ipv6_and_port: Some(ip.to_vec()),
            ..Default::default()
        });
        let r = check_peer_cert(&certificate_signed(&c), 0, &[]);
        assert_eq!(r, Err(CertError::IdentityWithoutAppIds));
    }

    #[test]
    fn ca_signed_certs() {
        let ca = key(10);
        let ca_pk = ca.public_bytes();
        let mut signed = default_self_issued(&key(4), "str:server");
        let bytes = signed.cert.clone().unwrap();
        signed.ca_key_id = Some(ca_key_id(&ca_pk));
        signed.ca_signature = Some(ca.sign(&bytes).to_vec());
        let ok = check_peer_cert(&signed, 0, &[[1; 32], ca_pk]).unwrap();
        assert_eq!(
            ok.ca,
            CaStatus::Signed {
                ca_key_id: ca_key_id(&ca_pk)
            }
        );
        let unknown = check_peer_cert(&signed, 0, &[]).unwrap();
        assert_eq!(unknown.ca, CaStatus::Rejected(CaRejection::UnknownCa));
        signed.ca_signature = Some(key(11).sign(&bytes).to_vec());
        let bad = check_peer_cert(&signed, 0, &[ca_pk]).unwrap();
        assert_eq!(bad.ca, CaStatus::Rejected(CaRejection::BadSignature));
    }
}
