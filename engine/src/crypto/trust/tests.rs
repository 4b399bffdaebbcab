use prost::Message;

use super::*;
use crate::crypto::ca::{CaKey, CertParams, issue};
use crate::crypto::keys::IdentityKey;
use crate::wire::identity::Identity;

const NOW: u64 = 1_750_000_000;

fn cert_for(
    ca: &CaKey,
    key_seed: u8,
    created: u32,
    expiry: u32,
) -> (CertificateSigned, Certificate) {
    let signed = issue(
        ca,
        &CertParams {
            identity: Some(Identity::parse("str:server").unwrap()),
            public_key: IdentityKey::from_seed([key_seed; 32]).public_bytes(),
            app_ids: vec![0],
            pop_ids: vec![],
            time_created: created,
            time_expiry: expiry,
        },
    )
    .unwrap();
    let body = Certificate::decode(signed.cert.as_deref().unwrap()).unwrap();
    (signed, body)
}

fn store(ca: &CaKey) -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca(TrustedCa::new(ca.public_key()));
    t
}

#[test]
fn chain_rules() {
    let ca = CaKey::from_seed([1; 32]);
    let t = store(&ca);
    let (good, body) = cert_for(&ca, 2, 1_700_000_000, 1_800_000_000);
    assert_eq!(t.check(&good, &body, 0, Some(NOW)), Ok(ca.key_id()));
    assert_eq!(t.check(&good, &body, 0, None), Err(TrustError::NoClock));
    assert_eq!(
        t.check(&good, &body, 0, Some(1_800_000_001)),
        Err(TrustError::Expired {
            expiry: 1_800_000_000,
            now: 1_800_000_001
        })
    );
    assert_eq!(
        t.check(&good, &body, 0, Some(1_699_999_999)),
        Err(TrustError::NotYetValid {
            created: 1_700_000_000,
            now: 1_699_999_999
        })
    );
    let mut lenient = t.clone();
    lenient.not_before_leeway = 1;
    assert!(lenient.check(&good, &body, 0, Some(1_699_999_999)).is_ok());

    let other = CaKey::from_seed([3; 32]);
    assert_eq!(
        store(&other).check(&good, &body, 0, Some(NOW)),
        Err(TrustError::UnknownCa(ca.key_id()))
    );

    let mut revoked_ca = t.clone();
    revoked_ca.revoke(ca.key_id());
    assert_eq!(
        revoked_ca.check(&good, &body, 0, Some(NOW)),
        Err(TrustError::RevokedCa(ca.key_id()))
    );
    let mut revoked_key = t.clone();
    let leaf_id = ca_key_id(&IdentityKey::from_seed([2; 32]).public_bytes());
    revoked_key.revoke(leaf_id);
    revoked_key.revoke(leaf_id);
    assert_eq!(revoked_key.revoked(), &[leaf_id]);
    assert_eq!(
        revoked_key.check(&good, &body, 0, Some(NOW)),
        Err(TrustError::RevokedKey(leaf_id))
    );

    let mut tampered = good.clone();
    tampered.cert.as_mut().unwrap()[3] ^= 1;
    assert_eq!(
        t.check(&tampered, &body, 0, Some(NOW)),
        Err(TrustError::BadSignature)
    );
    let mut short = good.clone();
    short.ca_signature.as_mut().unwrap().pop();
    assert_eq!(
        t.check(&short, &body, 0, Some(NOW)),
        Err(TrustError::SignatureLength(63))
    );
    let mut no_id = good.clone();
    no_id.ca_key_id = None;
    assert_eq!(
        t.check(&no_id, &body, 0, Some(NOW)),
        Err(TrustError::NoCaKeyId)
    );

    let mut scoped = TrustStore::new();
    scoped.add_ca(TrustedCa {
        app_ids: vec![480],
        ..TrustedCa::new(ca.public_key())
    });
    assert_eq!(
        scoped.check(&good, &body, 0, Some(NOW)),
        Err(TrustError::AppNotInCaScope(0))
    );
    assert!(scoped.check(&good, &body, 480, Some(NOW)).is_ok());
    let mut expiring = TrustStore::new();
    expiring.add_ca(TrustedCa {
        time_expiry: Some(10),
        ..TrustedCa::new(ca.public_key())
    });
    expiring.add_ca(TrustedCa {
        time_expiry: Some(20),
        ..TrustedCa::new(ca.public_key())
    });
    assert_eq!(expiring.cas().len(), 1);
    assert!(matches!(
        expiring.check(&good, &body, 0, Some(NOW)),
        Err(TrustError::CaExpired { expiry: 20, .. })
    ));
}

#[test]
fn no_expiry_counts_as_expired() {
    let ca = CaKey::from_seed([1; 32]);
    let mut body = cert_for(&ca, 2, 1, 2).1;
    body.time_expiry = None;
    let signed = crate::crypto::ca::sign_certificate(&ca, &body);
    assert_eq!(
        store(&ca).check(&signed, &body, 0, Some(NOW)),
        Err(TrustError::Expired {
            expiry: 0,
            now: NOW
        })
    );
}
