use super::*;
use proptest::prelude::*;

/// The captured GNS 1.6 check (spec §4.5), server to client, with USE-CANDIDATE.
const CAPTURED: &str = concat!(
    "00010048",
    "2112a442",
    "502ba522afdd66ee6ce31dc5",
    "0006000b",
    "754e51474d3a716b426d5900",
    "00240004",
    "6efffeff",
    "802a0008",
    "305fac7e6a6e491b",
    "00250000",
    "00080014",
    "685106c2e509c6902e2a8d2ac825ac552019df91",
    "80280004",
    "7cfda423",
);

fn txid(hex_str: &str) -> [u8; 12] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

#[test]
fn encoder_reproduces_captured_gns_check_byte_for_byte() {
    let want = hex::decode(CAPTURED).unwrap();
    assert_eq!(want.len(), 92);
    let got = encode_binding_request(
        txid("502ba522afdd66ee6ce31dc5"),
        &BindingRequest {
            username: b"uNQGM:qkBmY",
            priority: 1_862_270_719,
            controlling: true,
            tiebreaker: 0x305f_ac7e_6a6e_491b,
            use_candidate: true,
            key: b"6PZAI",
        },
    );
    assert_eq!(hex::encode(&got), hex::encode(&want));
}

#[test]
fn decoder_verifies_captured_check() {
    let data = hex::decode(CAPTURED).unwrap();
    assert!(is_stun(&data));
    let m = StunMessage::decode(&data).unwrap();
    assert_eq!(m.msg_type, msg::BINDING_REQUEST);
    assert!(m.is_request());
    assert_eq!(m.get(attr::USERNAME), Some(&b"uNQGM:qkBmY"[..]));
    assert_eq!(m.u32_attr(attr::PRIORITY), Some(1_862_270_719));
    assert!(m.has(attr::USE_CANDIDATE));
    assert!(m.has(attr::ICE_CONTROLLING));
    assert!(m.has_integrity());
    m.verify_integrity(b"6PZAI").unwrap();
    assert_eq!(m.verify_integrity(b"6PZAJ"), Err(StunError::BadIntegrity));
    assert_eq!(username_local_ufrag(&data), Some(*b"uNQGM"));
    assert_eq!(
        transaction_id(&data),
        Some(txid("502ba522afdd66ee6ce31dc5"))
    );
}

#[test]
fn corrupted_fingerprint_or_integrity_is_rejected() {
    let mut data = hex::decode(CAPTURED).unwrap();
    let n = data.len();
    data[n - 1] ^= 1;
    assert_eq!(
        StunMessage::decode(&data).unwrap_err(),
        StunError::BadFingerprint
    );
    let mut data = hex::decode(CAPTURED).unwrap();
    data[30] ^= 1; // inside USERNAME: both MI and FINGERPRINT break; FINGERPRINT is checked first
    assert_eq!(
        StunMessage::decode(&data).unwrap_err(),
        StunError::BadFingerprint
    );
}

#[test]
fn ipv4_response_example_decodes_xor_mapped_address() {
    // 0101 003c 2112a442 <txid> | 0020 0008 0001 8667 e112a640 | USERNAME | MI | FINGERPRINT
    let t = [7u8; 12];
    let addr: SocketAddr = "192.0.2.2:42869".parse().unwrap();
    let resp = encode_binding_success(t, addr, Some(b"qkBmY:uNQGM"), b"6PZAI");
    assert_eq!(&resp[..4], &[0x01, 0x01, 0x00, 0x3c]);
    assert_eq!(
        hex::encode(&resp[20..32]),
        "002000080001".to_string() + "8667e112a640"
    );
    let m = StunMessage::decode(&resp).unwrap();
    assert!(m.is_response());
    assert_eq!(m.xor_addr(attr::XOR_MAPPED_ADDRESS), Some(addr));
    assert_eq!(m.mapped_address(), Some(addr));
    m.verify_integrity(b"6PZAI").unwrap();

    // The literal attribute from the spec, wrapped in a minimal message.
    let mut w = StunWriter::new(msg::BINDING_SUCCESS, t);
    w.attr(
        attr::XOR_MAPPED_ADDRESS,
        &hex::decode("00018667e112a640").unwrap(),
    );
    let raw = w.finish();
    let m = StunMessage::decode(&raw).unwrap();
    let a = m.xor_addr(attr::XOR_MAPPED_ADDRESS).unwrap();
    assert_eq!(a.port(), 42869);
    assert_eq!(a.ip().to_string(), "192.0.2.2");
}

#[test]
fn check_without_use_candidate_is_88_bytes() {
    let got = encode_binding_request(
        [1; 12],
        &BindingRequest {
            username: b"uNQGM:qkBmY",
            priority: 1_862_270_975,
            controlling: false,
            tiebreaker: 1,
            use_candidate: false,
            key: b"abcde",
        },
    );
    assert_eq!(got.len(), 88);
}

#[test]
fn discovery_request_is_a_plain_binding_request_a_standard_server_accepts() {
    let r = encode_discovery_request([3; 12]);
    let m = StunMessage::decode(&r).unwrap();
    assert!(!m.has_integrity());
    // Only FINGERPRINT: no (XOR-)MAPPED-ADDRESS, which coturn refuses with 420.
    assert_eq!(r.len(), 20 + 8);
    assert_eq!(m.addr(attr::MAPPED_ADDRESS), None);
    assert_eq!(m.xor_addr(attr::XOR_MAPPED_ADDRESS), None);
}

#[test]
fn demux_rule_matches_gns() {
    assert!(!is_stun(&[0u8; 19]));
    let mut h = StunWriter::new(1, [0; 12]).finish();
    assert!(is_stun(&h));
    h[0] |= 0x40;
    assert!(!is_stun(&h));
    let mut h = StunWriter::new(1, [0; 12]).finish();
    h.push(0);
    assert!(!is_stun(&h));
    let mut h = StunWriter::new(1, [0; 12]).finish();
    h[4] = 0;
    assert!(!is_stun(&h));
    // A GNS data packet (lead byte 0x80) is never STUN.
    assert!(!is_stun(&[0x81; 40]));
}

#[test]
fn long_username_is_rejected() {
    let mut w = StunWriter::new(msg::BINDING_REQUEST, [0; 12]);
    w.attr(attr::USERNAME, &[b'a'; 513]);
    let d = w.finish();
    assert_eq!(
        StunMessage::decode(&d).unwrap_err(),
        StunError::UsernameTooLong
    );
}

fn any_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
    ]
}

proptest! {
    #[test]
    fn binding_request_round_trips(
        t in any::<[u8; 12]>(),
        user in proptest::collection::vec(any::<u8>(), 0..40),
        priority in any::<u32>(),
        controlling in any::<bool>(),
        tiebreaker in any::<u64>(),
        use_candidate in any::<bool>(),
        key in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let r = BindingRequest { username: &user, priority, controlling, tiebreaker, use_candidate, key: &key };
        let bytes = encode_binding_request(t, &r);
        prop_assert!(is_stun(&bytes));
        let m = StunMessage::decode(&bytes).unwrap();
        prop_assert_eq!(m.txid, t);
        prop_assert_eq!(m.get(attr::USERNAME), Some(&user[..]));
        prop_assert_eq!(m.u32_attr(attr::PRIORITY), Some(priority));
        prop_assert_eq!(m.has(attr::ICE_CONTROLLING), controlling);
        prop_assert_eq!(m.has(attr::USE_CANDIDATE), use_candidate);
        prop_assert!(m.verify_integrity(&key).is_ok());
    }

    #[test]
    fn xor_addresses_round_trip(t in any::<[u8; 12]>(), a in any_addr()) {
        let bytes = encode_binding_success(t, a, None, b"k");
        let m = StunMessage::decode(&bytes).unwrap();
        prop_assert_eq!(m.xor_addr(attr::XOR_MAPPED_ADDRESS), Some(a));
    }

    #[test]
    fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = StunMessage::decode(&data);
        let _ = username_local_ufrag(&data);
    }
}
