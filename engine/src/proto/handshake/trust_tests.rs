//! CA-signed certificates in the handshake: each chain failure refused with GNS's end reason
//! when trust is required, tolerated (unauthenticated) under GNS's default policy.

use super::*;
use crate::crypto::ca::{CaKey, CertParams, issue, key_id};
use crate::crypto::negotiate::cipher_preferences;
use crate::crypto::{TrustError, TrustStore, TrustedCa};

const NOW: u64 = 1_750_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secrets(b: u8) -> SessionSecrets {
    SessionSecrets {
        ephemeral: EphemeralKeyPair::from_secret_bytes([b; 32]),
        nonce: u64::from(b),
    }
}

fn params(identity: &str, seed: u8) -> CertParams {
    CertParams {
        identity: Some(Identity::parse(identity).unwrap()),
        public_key: IdentityKey::from_seed([seed; 32]).public_bytes(),
        app_ids: vec![0],
        pop_ids: vec![],
        time_created: 1_700_000_000,
        time_expiry: 1_800_000_000,
    }
}

fn ca() -> CaKey {
    CaKey::from_seed([100; 32])
}

fn identity_with(seed: u8, cert: CertificateSigned) -> LocalIdentity {
    LocalIdentity::with_ca_certificate([seed; 32], cert).unwrap()
}

fn strict() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca(TrustedCa::new(ca().public_key()));
    t.require_trusted = true;
    t
}

/// A ConnectRequest from a client presenting `local`.
fn request(local: &LocalIdentity) -> ConnectRequest {
    let mut c = ClientHandshake::new(
        0x0a0b_0c0d,
        addr("10.0.0.1:27015"),
        local,
        secrets(7),
        cipher_preferences(0).unwrap(),
    );
    let reply = ChallengeReply {
        connection_id: Some(0x0a0b_0c0d),
        challenge: Some(1),
        your_timestamp: None,
        protocol_version: Some(13),
    };
    c.on_challenge_reply(Timestamp::ZERO, &reply, local, None)
        .unwrap()
        .0
}

fn check(
    req: &ConnectRequest,
    trust: &TrustStore,
    now: Option<u64>,
) -> Result<PendingAccept, HandshakeError> {
    let policy = AuthPolicy::default();
    let auth = PeerAuth {
        policy: &policy,
        trust,
        unix_now: now,
    };
    check_connect_request(Timestamp::ZERO, req, addr("10.0.0.2:5"), auth)
}

fn refused(req: &ConnectRequest, trust: &TrustStore) -> (u32, String) {
    let e = check(req, trust, Some(NOW)).unwrap_err();
    (e.end_reason(), e.to_string())
}

#[test]
fn valid_chain_is_trusted() {
    let client = identity_with(1, issue(&ca(), &params("str:alice", 1)).unwrap());
    assert_eq!(client.identity, Identity::parse("str:alice").unwrap());
    let p = check(&request(&client), &strict(), Some(NOW)).unwrap();
    assert_eq!(p.trusted_ca, Some(ca().key_id()));
    assert!(!p.unauthenticated);
    assert_eq!(p.remote_identity, Identity::parse("str:alice").unwrap());
    // Without a clock nothing CA-signed can be trusted.
    let e = check(&request(&client), &strict(), None).unwrap_err();
    let (code, text) = (e.end_reason(), e.to_string());
    assert_eq!(code, end_reason::REMOTE_BAD_CERT);
    assert!(text.contains("wall-clock"), "{text}");
}

#[test]
fn each_chain_failure_is_refused_with_bad_cert() {
    let good = issue(&ca(), &params("str:alice", 1)).unwrap();
    let cases: Vec<(&str, CertificateSigned, TrustStore, TrustError)> = vec![
        (
            "expired",
            issue(
                &ca(),
                &CertParams {
                    time_expiry: 1_740_000_000,
                    ..params("str:alice", 1)
                },
            )
            .unwrap(),
            strict(),
            TrustError::Expired {
                expiry: 1_740_000_000,
                now: NOW,
            },
        ),
        (
            "not yet valid",
            issue(
                &ca(),
                &CertParams {
                    time_created: 1_760_000_000,
                    ..params("str:alice", 1)
                },
            )
            .unwrap(),
            strict(),
            TrustError::NotYetValid {
                created: 1_760_000_000,
                now: NOW,
            },
        ),
        (
            "wrong CA",
            issue(&CaKey::from_seed([5; 32]), &params("str:alice", 1)).unwrap(),
            strict(),
            TrustError::UnknownCa(CaKey::from_seed([5; 32]).key_id()),
        ),
        (
            "revoked CA",
            good.clone(),
            {
                let mut t = strict();
                t.revoke(ca().key_id());
                t
            },
            TrustError::RevokedCa(ca().key_id()),
        ),
        (
            "revoked key",
            good.clone(),
            {
                let mut t = strict();
                t.revoke(key_id(&IdentityKey::from_seed([1; 32]).public_bytes()));
                t
            },
            TrustError::RevokedKey(key_id(&IdentityKey::from_seed([1; 32]).public_bytes())),
        ),
        (
            "tampered",
            {
                let mut c = good.clone();
                c.ca_signature.as_mut().unwrap()[10] ^= 1;
                c
            },
            strict(),
            TrustError::BadSignature,
        ),
        (
            "truncated",
            {
                let mut c = good.clone();
                c.cert.as_mut().unwrap().truncate(20);
                c
            },
            strict(),
            TrustError::BadSignature,
        ),
        (
            "CA not for our app",
            good.clone(),
            {
                let mut t = strict();
                t.add_ca(TrustedCa {
                    app_ids: vec![480],
                    ..TrustedCa::new(ca().public_key())
                });
                t
            },
            TrustError::AppNotInCaScope(0),
        ),
    ];
    for (what, cert, trust, why) in cases {
        let client =
            LocalIdentity::with_certificate([1; 32], cert, Identity::parse("str:alice").unwrap());
        let e = check(&request(&client), &trust, Some(NOW)).unwrap_err();
        assert_eq!(
            e,
            HandshakeError::BadCert(CertError::Untrusted(why)),
            "{what}"
        );
        assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_CERT, "{what}");
        assert!(e.to_string().contains("Bad cert: "), "{what}: {e}");
        // GNS's default policy only flags such a peer unauthenticated (truncated aside: it no
        // longer decodes, which GNS ends with Remote_BadCrypt).
        let mut open = trust;
        open.require_trusted = false;
        match check(&request(&client), &open, Some(NOW)) {
            Ok(p) => assert!(p.unauthenticated && p.trusted_ca.is_none(), "{what}"),
            Err(e) => {
                assert_eq!(what, "truncated");
                assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_CRYPT);
            }
        }
    }
}

#[test]
fn wrong_app_and_identity_rules() {
    let app480 = issue(
        &ca(),
        &CertParams {
            app_ids: vec![480],
            ..params("str:alice", 1)
        },
    )
    .unwrap();
    let client =
        LocalIdentity::with_certificate([1; 32], app480, Identity::parse("str:alice").unwrap());
    let (code, text) = refused(&request(&client), &strict());
    assert_eq!(code, end_reason::REMOTE_BAD_CERT);
    assert!(text.contains("app 0"), "{text}");

    // The cert names alice; the request claims bob.
    let alice = identity_with(1, issue(&ca(), &params("str:alice", 1)).unwrap());
    let mut req = request(&alice);
    req.identity_string = Some("str:bob".into());
    let (code, text) = refused(&req, &strict());
    assert_eq!(code, end_reason::REMOTE_BAD_CERT);
    assert!(
        text.contains("Cert was issued to str:alice, not str:bob"),
        "{text}"
    );

    // Identity-less CA-signed certs are refused even under the open policy (GNS rule 4).
    let anon = issue(
        &ca(),
        &CertParams {
            identity: None,
            ..params("str:x", 1)
        },
    )
    .unwrap();
    let client = LocalIdentity::with_certificate([1; 32], anon, Identity::localhost());
    let e = check(&request(&client), &TrustStore::new(), Some(NOW)).unwrap_err();
    assert_eq!(e, HandshakeError::BadCert(CertError::SignedWithoutIdentity));

    // Unsigned certs: refused when trust is required, accepted by default.
    let unsigned = LocalIdentity::with_identity([1; 32], Identity::parse("str:alice").unwrap());
    let e = check(&request(&unsigned), &strict(), Some(NOW)).unwrap_err();
    assert_eq!(e, HandshakeError::BadCert(CertError::UnsignedNotAllowed));
    assert!(
        check(&request(&unsigned), &TrustStore::new(), Some(NOW))
            .unwrap()
            .unauthenticated
    );
}

#[test]
fn client_checks_the_server_it_meant() {
    let server_local = identity_with(2, issue(&ca(), &params("str:server", 2)).unwrap());
    let client_local = LocalIdentity::anonymous([1; 32]);
    let run = |expected: Option<&str>, trust: &TrustStore| {
        let server_addr = addr("10.0.0.1:27015");
        let mut c = ClientHandshake::new(
            0x0a0b_0c0d,
            server_addr,
            &client_local,
            secrets(7),
            cipher_preferences(0).unwrap(),
        );
        if let Some(e) = expected {
            c.expect_remote_identity(Identity::parse(e).unwrap());
        }
        let reply = ChallengeReply {
            connection_id: Some(0x0a0b_0c0d),
            challenge: Some(1),
            your_timestamp: None,
            protocol_version: Some(13),
        };
        let req = c
            .on_challenge_reply(Timestamp::ZERO, &reply, &client_local, None)
            .unwrap()
            .0;
        let policy = AuthPolicy::default();
        let pending =
            check_connect_request(Timestamp::ZERO, &req, addr("10.0.0.2:5"), &policy).unwrap();
        let (ok, _) = pending
            .accept(
                Timestamp::ZERO,
                0x1234_5678,
                &server_local,
                &secrets(8),
                cipher_preferences(0).unwrap(),
            )
            .unwrap();
        let auth = PeerAuth {
            policy: &policy,
            trust,
            unix_now: Some(NOW),
        };
        c.on_connect_ok(Timestamp::ZERO, &ok, &client_local, auth)
    };
    let (est, _) = run(Some("str:server"), &strict()).unwrap();
    assert_eq!(est.remote_identity, Identity::parse("str:server").unwrap());
    assert_eq!(est.trusted_ca, Some(ca().key_id()));
    let e = run(Some("str:other"), &strict()).unwrap_err();
    assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_CERT);
    assert!(
        e.to_string()
            .contains("Cert was issued to str:server, not str:other"),
        "{e}"
    );
    // Not trusting the CA: the server is unauthenticated by default, refused when required.
    let mut other_ca = TrustStore::new();
    other_ca.add_ca(TrustedCa::new(CaKey::from_seed([9; 32]).public_key()));
    assert!(run(None, &other_ca).unwrap().0.unauthenticated);
    other_ca.require_trusted = true;
    let e = run(None, &other_ca).unwrap_err();
    assert_eq!(
        e,
        HandshakeError::BadCert(CertError::Untrusted(TrustError::UnknownCa(ca().key_id())))
    );
}

#[test]
fn own_certificate_must_match_key_and_name_someone() {
    let cert = issue(&ca(), &params("str:alice", 1)).unwrap();
    assert_eq!(
        LocalIdentity::with_ca_certificate([2; 32], cert).unwrap_err(),
        LocalCertError::KeyMismatch
    );
    let anon = issue(
        &ca(),
        &CertParams {
            identity: None,
            ..params("str:x", 1)
        },
    )
    .unwrap();
    assert_eq!(
        LocalIdentity::with_ca_certificate([1; 32], anon).unwrap_err(),
        LocalCertError::NoIdentity
    );
    let local = issue(
        &ca(),
        &CertParams {
            identity: Some(Identity::localhost()),
            ..params("str:x", 1)
        },
    )
    .unwrap();
    assert_eq!(
        LocalIdentity::with_ca_certificate([1; 32], local).unwrap_err(),
        LocalCertError::NoIdentity
    );
    assert!(matches!(
        LocalIdentity::with_ca_certificate([1; 32], CertificateSigned::default()),
        Err(LocalCertError::Cert(CertError::Missing))
    ));
}
