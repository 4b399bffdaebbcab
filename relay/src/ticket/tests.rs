use super::*;

const NOW: u64 = 1_700_000_000;

fn ca(seed: u8) -> IdentityKey {
    IdentityKey::from_seed([seed; 32])
}

pub(crate) fn sample() -> RelayAuthTicket {
    RelayAuthTicket {
        gameserver: "str:server-1".into(),
        authorized_client: "str:alice".into(),
        public_ip: Some(Ipv4Addr::new(198, 51, 100, 7)),
        expiry_unix: NOW + 6 * 3600,
        routing: vec![0xab; 51],
        app_id: 480,
        restrict_to_vport: 3,
        extra: vec![
            ExtraField {
                name: "match".into(),
                value: ExtraValue::String("ranked-42".into()),
            },
            ExtraField {
                name: "mmr".into(),
                value: ExtraValue::Int64(-5),
            },
            ExtraField {
                name: "party".into(),
                value: ExtraValue::Uint64(u64::MAX),
            },
        ],
    }
}

#[test]
fn signed_ticket_round_trips() {
    let key = ca(1);
    let bytes = sign(&sample(), &key).unwrap();
    assert!(bytes.len() <= MAX_SIGNED_TICKET);
    let v = verify_full(&bytes, &trust_of(&[key.public_bytes()]), NOW).unwrap();
    assert_eq!(v.ticket, sample());
    assert_eq!(v.key_id, ca_key_id(&key.public_bytes()));
}

#[test]
fn defaults_round_trip_any_ip_any_vport() {
    let key = ca(1);
    let mut t = sample();
    t.public_ip = None;
    t.restrict_to_vport = -1;
    t.extra.clear();
    let bytes = sign(&t, &key).unwrap();
    assert_eq!(
        verify(&bytes, &trust_of(&[key.public_bytes()]), NOW).unwrap(),
        t
    );
}

#[test]
fn forged_altered_and_wrong_ca_are_refused() {
    let key = ca(1);
    let trust = trust_of(&[key.public_bytes()]);
    let bytes = sign(&sample(), &key).unwrap();
    // Flip one byte inside the ticket body (the routing blob is all 0xab).
    let mut altered = bytes.clone();
    let at = altered.iter().position(|b| *b == 0xab).unwrap();
    altered[at] ^= 1;
    assert_eq!(
        verify(&altered, &trust, NOW),
        Err(TicketError::BadSignature)
    );
    // Signed by another key that claims the trusted key id.
    let mut forged = proto::Signed::decode(sign(&sample(), &ca(2)).unwrap().as_slice()).unwrap();
    forged.key_id = Some(ca_key_id(&key.public_bytes()));
    assert_eq!(
        verify(&forged.encode_to_vec(), &trust, NOW),
        Err(TicketError::BadSignature)
    );
    // Signed by an untrusted CA.
    let other = sign(&sample(), &ca(2)).unwrap();
    assert!(matches!(
        verify(&other, &trust, NOW),
        Err(TicketError::UnknownCa(_))
    ));
    // Revoked CA.
    let mut revoked = trust.clone();
    revoked.revoke(ca_key_id(&key.public_bytes()));
    assert!(matches!(
        verify(&bytes, &revoked, NOW),
        Err(TicketError::RevokedCa(_))
    ));
}

#[test]
fn expiry_window_is_enforced() {
    let key = ca(1);
    let trust = trust_of(&[key.public_bytes()]);
    let bytes = sign(&sample(), &key).unwrap();
    let expiry = sample().expiry_unix;
    assert!(verify(&bytes, &trust, expiry).is_ok());
    assert_eq!(
        verify(&bytes, &trust, expiry + 1),
        Err(TicketError::Expired {
            expiry,
            now: expiry + 1
        })
    );
    let mut far = sample();
    far.expiry_unix = NOW + MAX_LIFETIME_SECS + 1;
    let far = sign(&far, &key).unwrap();
    assert!(matches!(
        verify(&far, &trust, NOW),
        Err(TicketError::TooFarAhead { .. })
    ));
}

#[test]
fn limits_are_enforced_when_signing() {
    let key = ca(1);
    let mut t = sample();
    t.routing = vec![0; 129];
    assert!(matches!(sign(&t, &key), Err(TicketError::InvalidField(_))));
    let mut t = sample();
    t.extra = (0..17)
        .map(|i| ExtraField {
            name: format!("f{i}"),
            value: ExtraValue::Int64(i),
        })
        .collect();
    assert!(matches!(sign(&t, &key), Err(TicketError::InvalidField(_))));
    let mut t = sample();
    t.extra[0].name = "x".repeat(28);
    assert!(matches!(sign(&t, &key), Err(TicketError::InvalidField(_))));
    let mut t = sample();
    t.extra[0].value = ExtraValue::String("y".repeat(128));
    assert!(matches!(sign(&t, &key), Err(TicketError::InvalidField(_))));
    let mut t = sample();
    t.gameserver = "nonsense".into();
    assert!(matches!(sign(&t, &key), Err(TicketError::InvalidField(_))));
    // 16 maximal string fields do not fit in 512 bytes.
    let mut t = sample();
    t.extra = (0..16)
        .map(|i| ExtraField {
            name: format!("{i:0>27}"),
            value: ExtraValue::String("z".repeat(127)),
        })
        .collect();
    assert!(matches!(sign(&t, &key), Err(TicketError::TooLarge(_))));
}

#[test]
fn malformed_input_never_panics() {
    let trust = trust_of(&[ca(1).public_bytes()]);
    let good = sign(&sample(), &ca(1)).unwrap();
    for len in 0..good.len() {
        assert!(verify(&good[..len], &trust, NOW).is_err());
    }
    assert_eq!(
        verify(&[0u8; 600], &trust, NOW),
        Err(TicketError::TooLarge(600))
    );
    let mut x = 0x1234_5678u32;
    for _ in 0..2000 {
        let buf: Vec<u8> = (0..(x % 300))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(verify(&buf, &trust, NOW).is_err());
    }
}
