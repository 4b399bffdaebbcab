use super::*;
use crate::crypto::cert::{CaStatus, check_peer_cert};
use crate::wire::proto::IdentityLegacyBinary;

const VALVE_ROOT: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrsoE4XUc5iaNVpACyh4fobLbwm02tOo6AIOtNygpuE";

fn params(identity: Option<&str>, public_key: [u8; 32]) -> CertParams {
    CertParams {
        identity: identity.map(|s| Identity::parse(s).unwrap()),
        public_key,
        app_ids: vec![0],
        pop_ids: vec![],
        time_created: 1_700_000_000,
        time_expiry: 1_800_000_000,
    }
}

#[test]
fn key_id_of_valve_root_is_gns_value() {
    let pk = pem::read_public_key(VALVE_ROOT).unwrap();
    assert_eq!(key_id(&pk), 18_220_590_129_359_924_542);
}

#[test]
fn ca_key_pem_round_trip() {
    let ca = CaKey::from_seed([3; 32]);
    let back = CaKey::from_pem(&ca.to_pem()).unwrap();
    assert_eq!(back.public_key(), ca.public_key());
    assert_eq!(back.seed(), [3; 32]);
    let line = ca.public_key_line();
    assert!(line.ends_with(&format!(" ID{}", ca.key_id())));
    assert_eq!(pem::read_public_key(&line).unwrap(), ca.public_key());
    assert!(!format!("{ca:?}").contains("0303"));
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
    assert_ne!(
        CaKey::generate(&mut rng).public_key(),
        CaKey::generate(&mut rng).public_key()
    );
}

#[test]
fn issued_cert_layout_and_gns_verification() {
    let ca = CaKey::from_seed([1; 32]);
    let leaf = IdentityKey::from_seed([2; 32]).public_bytes();
    let signed = issue(&ca, &params(Some("str:server"), leaf)).unwrap();
    let wire = signed.encode_to_vec();
    // GNS order: cert (4), ca_key_id (5), ca_signature (6).
    assert_eq!(wire[0], 0x22);
    let cert_len = signed.cert.as_ref().unwrap().len();
    let after = &wire[2..][cert_len..];
    assert_eq!(after[0], 0x29);
    assert_eq!(after[1..9], ca.key_id().to_le_bytes());
    assert_eq!(after[9..11], [0x32, 0x40]);
    // The handshake's checks accept it as CA-signed.
    let peer = check_peer_cert(&signed, 0, &[ca.public_key()]).unwrap();
    assert_eq!(
        peer.ca,
        CaStatus::Signed {
            ca_key_id: ca.key_id()
        }
    );
    assert_eq!(peer.cert.identity_string.as_deref(), Some("str:server"));
    assert_eq!(
        peer.cert.legacy_identity_binary,
        Some(IdentityLegacyBinary {
            generic_string: Some("server".into()),
            ..Default::default()
        })
    );
    assert_eq!(peer.cert.time_expiry, Some(1_800_000_000));
    // Through PEM and back, byte for byte.
    assert_eq!(
        pem::read_cert_pem(&pem::write_cert_pem(&signed)).unwrap(),
        signed
    );
}

#[test]
fn identity_fields_like_gns() {
    let mut c = Certificate::default();
    set_identity_fields(
        &mut c,
        &Identity::parse("steamid:76561197960287930").unwrap(),
    )
    .unwrap();
    assert_eq!(c.legacy_steam_id, Some(76_561_197_960_287_930));
    assert_eq!(
        c.legacy_identity_binary.as_ref().unwrap().steam_id,
        c.legacy_steam_id
    );
    let mut c = Certificate::default();
    set_identity_fields(&mut c, &Identity::parse("xboxpwid:abc").unwrap()).unwrap();
    assert_eq!(
        c.legacy_identity_binary,
        Some(IdentityLegacyBinary::default())
    );
    assert_eq!(c.legacy_steam_id, None);
    assert!(set_identity_fields(&mut c, &Identity::Invalid).is_err());
    let bad_times = CertParams {
        time_expiry: 5,
        time_created: 5,
        ..params(None, [0; 32])
    };
    assert_eq!(
        issue(&CaKey::from_seed([1; 32]), &bad_times),
        Err(IssueError::Times {
            created: 5,
            expiry: 5
        })
    );
}

#[test]
fn requests_like_gns_and_issuing_from_them() {
    let key = IdentityKey::from_seed([4; 32]).public_bytes();
    let server = Identity::parse("str:peer_server").unwrap();
    let req = make_request(&server, &key);
    // GNS `[V]`: 70 bytes, `0a 44 08 01 12 20 <pub> 5a 0d 1a 0b "peer_server" 62 0f "str:peer_server"`.
    let bytes = req.encode_to_vec();
    assert_eq!(bytes.len(), 70);
    assert_eq!(bytes[..6], [0x0a, 0x44, 0x08, 0x01, 0x12, 0x20]);
    assert_eq!(bytes[38..42], [0x5a, 0x0d, 0x1a, 0x0b]);
    assert_eq!(&bytes[53..55], &[0x62, 0x0f]);
    let anon = make_request(&Identity::localhost(), &key);
    assert_eq!(anon.cert.as_ref().unwrap().identity_string, None);

    let ca = CaKey::from_seed([9; 32]);
    let policy = IssuePolicy {
        app_ids: vec![0],
        pop_ids: None,
        time_created: 10,
        time_expiry: 20,
        identity: None,
    };
    let signed = issue_for_request(&ca, &req, &policy).unwrap();
    let summary = inspect(&signed, Some(&ca.public_key())).unwrap();
    assert_eq!(summary.identity, Ok(server.clone()));
    assert_eq!(summary.public_key, Some(key));
    assert_eq!(summary.key_id, key_id(&key));
    assert_eq!(summary.ca_key_id, Some(ca.key_id()));
    assert_eq!(
        (summary.signed, summary.signature_valid),
        (true, Some(true))
    );
    assert_eq!(
        (summary.time_created, summary.time_expiry),
        (Some(10), Some(20))
    );
    assert_eq!(summary.app_ids, vec![0]);
    let other = CaKey::from_seed([8; 32]).public_key();
    assert_eq!(
        inspect(&signed, Some(&other)).unwrap().signature_valid,
        Some(false)
    );

    assert_eq!(
        issue_for_request(&ca, &anon, &policy),
        Err(IssueError::NoIdentity)
    );
    let fixed = IssuePolicy {
        identity: Some(Identity::parse("str:bob").unwrap()),
        ..policy.clone()
    };
    let for_bob = issue_for_request(&ca, &anon, &fixed).unwrap();
    assert_eq!(
        inspect(&for_bob, None).unwrap().identity,
        Ok(Identity::parse("str:bob").unwrap())
    );
    assert!(matches!(
        issue_for_request(&ca, &req, &fixed),
        Err(IssueError::IdentityNotAllowed { .. })
    ));
    assert_eq!(
        issue_for_request(&ca, &CertificateRequest::default(), &policy),
        Err(IssueError::EmptyRequest)
    );
    let mut short = req.clone();
    short.cert.as_mut().unwrap().key_data = Some(vec![1; 31]);
    assert_eq!(
        issue_for_request(&ca, &short, &policy),
        Err(IssueError::RequestKey(CertError::KeyLength(31)))
    );
}

#[test]
fn pop_ids() {
    assert_eq!(pop_id("iad"), 6_906_212);
    assert_eq!(pop_id("abcd"), 0x6461_6263);
    assert_eq!(pop_id(""), 0);
    assert_eq!(pop_code(pop_id("iad")), "iad");
    assert_eq!(pop_code(pop_id("abcd")), "abcd");
}
