//! The GNS UDP handshake as pure functions over decoded control messages (spec §2.1-2.3, §3).
//!
//! ```text
//!  client                                              server
//!  ClientHandshake::challenge_request ── ChallengeRequest ──►  (stateless: endpoint answers)
//!                                     ◄── ChallengeReply ────
//!  on_challenge_reply ─────────────────── ConnectRequest ────►  check_connect_request -> PendingAccept
//!                                                               (app accepts)
//!                                     ◄── ConnectOK ─────────   PendingAccept::accept -> Established
//!  on_connect_ok -> Established
//! ```
//!
//! Nothing here keeps timers or state beyond what the messages need; the connection owns the
//! retries and timeouts. Every failure is a [`HandshakeError`] that maps to GNS's end reason.

use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::ca::certificate_identity;
use crate::crypto::cert::{PROTOCOL_VERSION, crypt_info, default_self_issued, sign_crypt_info};
use crate::crypto::kdf::derive;
use crate::crypto::negotiate::{client_accept_cipher, server_choose_cipher};
use crate::crypto::{
    CertError, CryptoError, EphemeralKeyPair, IdentityKey, KdfInput, PeerCert, PeerCryptInfo, Role,
    SessionKeys,
};
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::{
    Certificate, CertificateSigned, ChallengeReply, ChallengeRequest, Cipher, ConnectOk,
    ConnectRequest, CryptInfoSigned,
};

mod verify;
pub use verify::PeerAuth;
use verify::verify_peer;

/// Oldest protocol version GNS talks to.
pub const MIN_PEER_PROTOCOL: u32 = 8;
/// A request timestamp older than this is not echoed in ConnectOK (GNS: 4 s).
pub const ECHO_TIMESTAMP_MAX_AGE: Duration = Duration::from_secs(4);
/// RTT samples from handshake echoes are accepted up to this (GNS: 2 s).
pub const MAX_HANDSHAKE_RTT: Duration = Duration::from_secs(2);

/// Old path of [`crate::proto::end_reason`], kept so code written against it still builds.
pub use super::end_reason;

/// Why a handshake step failed; [`HandshakeError::end_reason`] gives the GNS code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A required field is missing or zero.
    #[error("handshake message missing {0}")]
    Missing(&'static str),
    /// The message is for another connection id.
    #[error("message for another connection")]
    WrongConnection,
    /// Peer speaks a protocol older than 8, or its signed version disagrees with its reply.
    #[error("bad protocol version {0}")]
    BadProtocolVersion(u32),
    /// Peer certificate unusable or not allowed by the authentication policy.
    #[error("bad certificate: {0}")]
    BadCert(#[from] CertError),
    /// Crypt info, signature, key exchange or cipher negotiation failed.
    #[error("bad crypt: {0}")]
    BadCrypt(#[from] CryptoError),
    /// The server's ConnectOK named a connection id whose low 16 bits are zero, which no GNS
    /// peer allocates (GNS ends this with `Remote_BadCrypt` too).
    #[error("bad crypt: server connection id low 16 bits zero")]
    BadServerConnectionId(u32),
}

impl HandshakeError {
    /// The `ESteamNetConnectionEnd` this failure ends the connection with.
    pub fn end_reason(&self) -> u32 {
        match self {
            Self::Missing(_) | Self::WrongConnection => end_reason::MISC_GENERIC,
            Self::BadProtocolVersion(_) => end_reason::REMOTE_BAD_PROTOCOL_VERSION,
            // GNS: a cert that does not decode is a crypt failure, not a cert one.
            Self::BadCert(CertError::Missing | CertError::Decode) => end_reason::REMOTE_BAD_CRYPT,
            Self::BadCert(_) => end_reason::REMOTE_BAD_CERT,
            Self::BadCrypt(_) | Self::BadServerConnectionId(_) => end_reason::REMOTE_BAD_CRYPT,
        }
    }
}

/// The long-lived identity of an endpoint: its Ed25519 key and self-issued certificate.
#[derive(Debug)]
pub struct LocalIdentity {
    key: IdentityKey,
    cert: CertificateSigned,
    /// Identity we present (anonymous localhost `ip:::1` by default, as GNS does).
    pub identity: Identity,
}

impl LocalIdentity {
    /// An anonymous identity with a throw-away key from `seed` (GNS's default without login).
    pub fn anonymous(seed: [u8; 32]) -> Self {
        Self::with_identity(seed, Identity::localhost())
    }

    /// The identity key's public half (what the certificate names).
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_bytes()
    }

    /// An identity with the given name and a key from `seed`.
    pub fn with_identity(seed: [u8; 32], identity: Identity) -> Self {
        let key = IdentityKey::from_seed(seed);
        let cert = default_self_issued(&key, &identity.to_string());
        LocalIdentity {
            key,
            cert,
            identity,
        }
    }

    /// An identity whose certificate is given as is (e.g. installed with `SetCertificate`, or
    /// byte-exact from a capture); `seed` must be the key the certificate names.
    pub fn with_certificate(seed: [u8; 32], cert: CertificateSigned, identity: Identity) -> Self {
        LocalIdentity {
            key: IdentityKey::from_seed(seed),
            cert,
            identity,
        }
    }

    /// An identity presenting a CA-issued certificate (our CLI's or CA service's output) with
    /// the private key `seed`: the cert must decode, certify `seed`'s public key and name a
    /// non-localhost identity, which becomes ours. Trust in its CA is the peers' business.
    pub fn with_ca_certificate(
        seed: [u8; 32],
        cert: CertificateSigned,
    ) -> Result<Self, LocalCertError> {
        let bytes = cert
            .cert
            .as_deref()
            .ok_or(LocalCertError::Cert(CertError::Missing))?;
        let body = <Certificate as prost::Message>::decode(bytes)
            .map_err(|_| LocalCertError::Cert(CertError::Decode))?;
        let key = IdentityKey::from_seed(seed);
        if body.key_data.as_deref() != Some(key.public_bytes().as_slice()) {
            return Err(LocalCertError::KeyMismatch);
        }
        let identity = certificate_identity(&body).map_err(|_| LocalCertError::NoIdentity)?;
        if matches!(identity, Identity::Invalid)
            || matches!(&identity, Identity::IpAddress(a) if a.ip().is_loopback())
        {
            return Err(LocalCertError::NoIdentity);
        }
        Ok(LocalIdentity {
            key,
            cert,
            identity,
        })
    }

    /// The certificate we send.
    pub fn cert(&self) -> &CertificateSigned {
        &self.cert
    }

    /// Whether our cert carries a CA signature (else it is GNS's self-issued kind).
    pub fn is_ca_signed(&self) -> bool {
        self.cert.ca_signature.is_some()
    }
}

/// Why a certificate cannot be used as ours (`SetCertificate`'s refusals).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalCertError {
    /// The certificate is missing or does not decode.
    #[error("{0}")]
    Cert(CertError),
    /// It certifies another key than our private key (GNS: "Cert has invalid public key" /
    /// "Private key doesn't match cert").
    #[error("certificate is for another key than the private key")]
    KeyMismatch,
    /// It names no identity, or localhost (GNS uses unsigned certs for those).
    #[error("certificate names no identity")]
    NoIdentity,
}

/// Per-connection secrets: an X25519 key pair and the crypt-info nonce, from the caller's RNG.
#[derive(Debug)]
pub struct SessionSecrets {
    /// Ephemeral X25519 key pair.
    pub ephemeral: EphemeralKeyPair,
    /// Crypt-info nonce (half of the key-derivation salt).
    pub nonce: u64,
}

/// Who may connect without a CA-signed certificate (`IP_AllowWithoutAuth`,
/// `IPLocalHost_AllowWithoutAuth`; 0 reject, 1 allow with a warning, 2 allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// `IP_AllowWithoutAuth`.
    pub allow_without_auth: i32,
    /// `IPLocalHost_AllowWithoutAuth`, applied to loopback peers.
    pub localhost_allow_without_auth: i32,
    /// Our AppID (0 in open-source builds).
    pub app_id: u32,
}

impl Default for AuthPolicy {
    /// Open-source GNS defaults: unsigned certificates allowed.
    fn default() -> Self {
        AuthPolicy {
            allow_without_auth: 2,
            localhost_allow_without_auth: 2,
            app_id: 0,
        }
    }
}

/// A completed handshake: keys and what we learned about the peer.
#[derive(Debug)]
pub struct Established {
    /// Send and receive keys for our role.
    pub keys: SessionKeys,
    /// Negotiated cipher.
    pub cipher: Cipher,
    /// Peer's connection id (goes in every data packet we send).
    pub remote_id: u32,
    /// Peer identity (anonymous localhost replaced by its address).
    pub remote_identity: Identity,
    /// Peer's signed protocol version.
    pub peer_protocol: u32,
    /// Peer's certificate was not CA-signed (`Unauthenticated` flag).
    pub unauthenticated: bool,
    /// Key id of the trusted CA that signed the peer's certificate.
    pub trusted_ca: Option<u64>,
}

/// A key-exchange failure of any crypto layer, typed (`map_err` cannot chain two `From`s).
fn bad_crypt(e: impl Into<CryptoError>) -> HandshakeError {
    HandshakeError::BadCrypt(e.into())
}

fn rtt_sample(now: Timestamp, echoed: Option<u64>, extra_delay: u64) -> Option<Duration> {
    let sent = echoed?;
    let elapsed = now
        .as_micros()
        .checked_sub(sent)?
        .checked_sub(extra_delay)?;
    let rtt = Duration::from_micros(elapsed);
    (rtt <= MAX_HANDSHAKE_RTT).then_some(rtt)
}

/// The client side of the handshake.
#[derive(Debug)]
pub struct ClientHandshake {
    local_id: u32,
    crypt: CryptInfoSigned,
    secrets: SessionSecrets,
    ciphers: &'static [Cipher],
    server_protocol: Option<u32>,
    server: SocketAddr,
    expected_remote: Option<Identity>,
}

impl ClientHandshake {
    /// Starts a handshake from `local_id` to `server`, offering `ciphers` (from the
    /// `Unencrypted` setting) and signing our crypt info with `local`.
    pub fn new(
        local_id: u32,
        server: SocketAddr,
        local: &LocalIdentity,
        secrets: SessionSecrets,
        ciphers: &'static [Cipher],
    ) -> Self {
        let info = crypt_info(&secrets.ephemeral.public_bytes(), secrets.nonce, ciphers);
        let crypt = sign_crypt_info(&info, &local.key);
        ClientHandshake {
            local_id,
            crypt,
            secrets,
            ciphers,
            server_protocol: None,
            server,
            expected_remote: None,
        }
    }

    /// Requires the server's certificate to name `identity` (connecting to a specific
    /// server, not just an address); a mismatch ends with `Remote_BadCert`.
    pub fn expect_remote_identity(&mut self, identity: Identity) {
        self.expected_remote = Some(identity);
    }

    /// Our connection id.
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// Our signed crypt info (a P2P connect request carries it in a signal).
    pub fn crypt(&self) -> &CryptInfoSigned {
        &self.crypt
    }

    /// The ChallengeRequest to (re)send; `my_timestamp` is our clock, echoed for an RTT sample.
    pub fn challenge_request(&self, now: Timestamp) -> ChallengeRequest {
        ChallengeRequest {
            connection_id: Some(self.local_id),
            my_timestamp: Some(now.as_micros()),
            protocol_version: Some(PROTOCOL_VERSION),
        }
    }

    /// Handles a ChallengeReply: returns the ConnectRequest to send and an RTT sample.
    pub fn on_challenge_reply(
        &mut self,
        now: Timestamp,
        reply: &ChallengeReply,
        local: &LocalIdentity,
        ping_est_ms: Option<u32>,
    ) -> Result<(ConnectRequest, Option<Duration>), HandshakeError> {
        if reply.connection_id != Some(self.local_id) {
            return Err(HandshakeError::WrongConnection);
        }
        let challenge = reply
            .challenge
            .ok_or(HandshakeError::Missing("challenge"))?;
        let version = reply.protocol_version.unwrap_or(0);
        if version < MIN_PEER_PROTOCOL {
            return Err(HandshakeError::BadProtocolVersion(version));
        }
        self.server_protocol = Some(version);
        let req = ConnectRequest {
            client_connection_id: Some(self.local_id),
            challenge: Some(challenge),
            my_timestamp: Some(now.as_micros()),
            ping_est_ms,
            crypt: Some(self.crypt.clone()),
            cert: Some(local.cert.clone()),
            ..ConnectRequest::default()
        };
        Ok((req, rtt_sample(now, reply.your_timestamp, 0)))
    }

    /// Handles a ConnectOK: verifies the server and derives the session keys.
    pub fn on_connect_ok<'a>(
        &self,
        now: Timestamp,
        ok: &ConnectOk,
        local: &LocalIdentity,
        auth: impl Into<PeerAuth<'a>>,
    ) -> Result<(Established, Option<Duration>), HandshakeError> {
        if ok.client_connection_id != Some(self.local_id) {
            return Err(HandshakeError::WrongConnection);
        }
        let remote_id = ok.server_connection_id.unwrap_or(0);
        if remote_id & 0xffff == 0 {
            return Err(HandshakeError::BadServerConnectionId(remote_id));
        }
        let peer = verify_peer(
            ok.cert.as_ref(),
            ok.crypt.as_ref(),
            ok.identity_string.as_deref(),
            self.server,
            self.expected_remote.as_ref(),
            auth.into(),
        )?;
        let (cert, info) = (&peer.cert, &peer.info);
        if let Some(v) = self.server_protocol
            && v != info.protocol_version
        {
            return Err(HandshakeError::BadProtocolVersion(info.protocol_version));
        }
        let cipher = client_accept_cipher(self.ciphers, &info.ciphers).map_err(bad_crypt)?;
        let shared = self
            .secrets
            .ephemeral
            .agree(&info.public_key)
            .map_err(bad_crypt)?;
        let own_cert = local.cert.cert.as_deref().unwrap_or_default();
        let own_info = self.crypt.info.as_deref().unwrap_or_default();
        let schedule = derive(&KdfInput {
            shared_secret: &shared,
            client_nonce: self.secrets.nonce,
            server_nonce: info.nonce,
            client_connection_id: self.local_id,
            server_connection_id: remote_id,
            server_cert: &cert.cert_bytes,
            client_cert: own_cert,
            server_crypt_info: &info.info_bytes,
            client_crypt_info: own_info,
        });
        let rtt = rtt_sample(
            now,
            ok.your_timestamp,
            u64::from(ok.delay_time_usec.unwrap_or(0)),
        );
        let established = Established {
            keys: SessionKeys::from_schedule(&schedule, Role::Client),
            cipher,
            remote_id,
            remote_identity: peer.identity.clone(),
            peer_protocol: info.protocol_version,
            unauthenticated: peer.trusted_ca.is_none(),
            trusted_ca: peer.trusted_ca,
        };
        Ok((established, rtt))
    }
}

/// A verified ConnectRequest waiting for the application to accept it.
#[derive(Debug, Clone)]
pub struct PendingAccept {
    /// Client's connection id.
    pub remote_id: u32,
    /// Client's identity (anonymous localhost replaced by its address).
    pub remote_identity: Identity,
    /// Client's ping estimate, if it sent one (≤ 1500 ms counts as a sample).
    pub ping_est_ms: Option<u32>,
    /// Client's signed protocol version.
    pub peer_protocol: u32,
    /// Client's certificate was not CA-signed.
    pub unauthenticated: bool,
    /// Key id of the trusted CA that signed the client's certificate.
    pub trusted_ca: Option<u64>,
    request_timestamp: Option<u64>,
    received_at: Timestamp,
    cert: PeerCert,
    info: PeerCryptInfo,
}

/// Verifies a ConnectRequest from `from` (the challenge is the endpoint's job).
pub fn check_connect_request<'a>(
    now: Timestamp,
    req: &ConnectRequest,
    from: SocketAddr,
    auth: impl Into<PeerAuth<'a>>,
) -> Result<PendingAccept, HandshakeError> {
    let remote_id = req.client_connection_id.filter(|id| *id != 0);
    let remote_id = remote_id.ok_or(HandshakeError::Missing("client_connection_id"))?;
    let peer = verify_peer(
        req.cert.as_ref(),
        req.crypt.as_ref(),
        req.identity_string.as_deref(),
        from,
        None,
        auth.into(),
    )?;
    let (cert, info) = (peer.cert, peer.info);
    Ok(PendingAccept {
        remote_id,
        remote_identity: peer.identity,
        ping_est_ms: req.ping_est_ms,
        peer_protocol: info.protocol_version,
        unauthenticated: peer.trusted_ca.is_none(),
        trusted_ca: peer.trusted_ca,
        request_timestamp: req.my_timestamp,
        received_at: now,
        cert,
        info,
    })
}

impl PendingAccept {
    /// Accepts: picks the cipher from `ciphers` (our `Unencrypted` preference, locked now),
    /// signs fresh key material, derives keys and returns the ConnectOK to send. Call again
    /// to rebuild the same ConnectOK is not needed: the caller keeps the message for re-sends.
    pub fn accept(
        &self,
        now: Timestamp,
        local_id: u32,
        local: &LocalIdentity,
        secrets: &SessionSecrets,
        ciphers: &'static [Cipher],
    ) -> Result<(ConnectOk, Established), HandshakeError> {
        let cipher = server_choose_cipher(ciphers, &self.info.ciphers).map_err(bad_crypt)?;
        let info = crypt_info(&secrets.ephemeral.public_bytes(), secrets.nonce, &[cipher]);
        let crypt = sign_crypt_info(&info, &local.key);
        let shared = secrets
            .ephemeral
            .agree(&self.info.public_key)
            .map_err(bad_crypt)?;
        let schedule = derive(&KdfInput {
            shared_secret: &shared,
            client_nonce: self.info.nonce,
            server_nonce: secrets.nonce,
            client_connection_id: self.remote_id,
            server_connection_id: local_id,
            server_cert: local.cert.cert.as_deref().unwrap_or_default(),
            client_cert: &self.cert.cert_bytes,
            server_crypt_info: crypt.info.as_deref().unwrap_or_default(),
            client_crypt_info: &self.info.info_bytes,
        });
        let held = now.saturating_since(self.received_at);
        let ok = ConnectOk {
            client_connection_id: Some(self.remote_id),
            server_connection_id: Some(local_id),
            your_timestamp: self
                .request_timestamp
                .filter(|_| held < ECHO_TIMESTAMP_MAX_AGE),
            delay_time_usec: Some(u32::try_from(held.as_micros()).unwrap_or(u32::MAX)),
            crypt: Some(crypt),
            cert: Some(local.cert.clone()),
            ..ConnectOk::default()
        };
        let established = Established {
            keys: SessionKeys::from_schedule(&schedule, Role::Server),
            cipher,
            remote_id: self.remote_id,
            remote_identity: self.remote_identity.clone(),
            peer_protocol: self.peer_protocol,
            unauthenticated: self.unauthenticated,
            trusted_ca: self.trusted_ca,
        };
        Ok((ok, established))
    }
}

#[cfg(test)]
#[path = "handshake/tests.rs"]
mod tests;
#[cfg(test)]
#[path = "handshake/trust_tests.rs"]
mod trust_tests;
