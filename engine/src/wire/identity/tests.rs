//! Unit tests of identity strings and the legacy binary form: the spec §2.9 table, every error
//! variant, round trips and never-panic checks.

use super::*;
use proptest::prelude::*;

/// A valid individual SteamID: universe 1, type 1, instance 1, account 12345.
const STEAM_ID: u64 = (1 << 56) | (1 << 52) | (1 << 32) | 12345;

fn p(s: &str) -> Result<Identity, IdentityError> {
    Identity::parse(s)
}

fn round(s: &str) {
    let id = p(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(id.to_string(), s);
}

#[test]
fn spec_table_round_trips() {
    round("invalid");
    round(&format!("steamid:{STEAM_ID}"));
    round("xboxpwid:abcDEF");
    round("psn:18446744073709551615");
    round("ip:1.2.3.4");
    round("ip:1.2.3.4:27015");
    round("ip:::1");
    round("ip:[::1]:27015");
    round("ip:[fe80::1:2]:1");
    round("str:hello world");
    round(&format!("str:{}", "x".repeat(31)));
    round("gen:00ff10");
    round(&format!("gen:{}", "ab".repeat(32)));
    round("some_new_type9:whatever:with:colons");
    round(&format!("{}:{}", "a".repeat(16), "d".repeat(127 - 17)));
    assert_eq!(p("ip:::1"), Ok(Identity::localhost()));
}

#[test]
fn normalisations() {
    // Port 0 is "no port"; mapped IPv4 prints as IPv4; hex prints lowercase.
    assert_eq!(p("ip:1.2.3.4:0").unwrap().to_string(), "ip:1.2.3.4");
    assert_eq!(p("ip:[::1]:0").unwrap().to_string(), "ip:::1");
    assert_eq!(p("ip:::ffff:1.2.3.4").unwrap().to_string(), "ip:1.2.3.4");
    assert_eq!(
        p("ip:[::ffff:1.2.3.4]:9").unwrap().to_string(),
        "ip:1.2.3.4:9"
    );
    assert_eq!(p("gen:ABcd").unwrap().to_string(), "gen:abcd");
    assert_eq!(
        "str:x".parse::<Identity>(),
        Ok(Identity::GenericString("x".into()))
    );
}

#[test]
fn steam_id_rule() {
    assert!(is_valid_identity_steam_id(STEAM_ID));
    let with_type = |t: u64| (1 << 56) | (t << 52) | 7;
    for t in [1, 3, 4, 9] {
        assert!(is_valid_identity_steam_id(with_type(t)), "type {t}");
    }
    for t in [0, 2, 5, 6, 7, 8, 10, 15] {
        assert!(!is_valid_identity_steam_id(with_type(t)), "type {t}");
    }
    assert!(!is_valid_identity_steam_id(STEAM_ID & !0xffff_ffff));
    assert_eq!(p("steamid:0"), Err(IdentityError::InvalidSteamId));
    assert_eq!(p("steamid:12345"), Err(IdentityError::InvalidSteamId));
}

#[test]
fn errors() {
    use IdentityError as E;
    assert_eq!(p(""), Err(E::Empty));
    assert_eq!(p("str:a\0b"), Err(E::ContainsNul));
    assert_eq!(p("nocolon"), Err(E::MissingPrefix));
    assert_eq!(p(":x"), Err(E::BadPrefix));
    assert_eq!(p("Upper:x"), Err(E::BadPrefix));
    assert_eq!(p(&format!("{}:x", "a".repeat(17))), Err(E::BadPrefix));
    assert_eq!(p(&format!("abc:{}", "d".repeat(124))), Err(E::TooLong));
    assert_eq!(p("steamid:"), Err(E::BadNumber));
    assert_eq!(p("steamid:+5"), Err(E::BadNumber));
    assert_eq!(p("psn:18446744073709551616"), Err(E::BadNumber));
    assert_eq!(p("ip:1.2.3"), Err(E::BadIpAddress));
    assert_eq!(p("ip:1.2.3.4:"), Err(E::BadIpAddress));
    assert_eq!(p("ip:1.2.3.4:65536"), Err(E::BadIpAddress));
    assert_eq!(p("ip:[::1]"), Err(E::BadIpAddress));
    assert_eq!(p("ip:::1:+5"), Err(E::BadIpAddress));
    assert_eq!(
        p(&format!("str:{}", "x".repeat(32))),
        Err(E::GenericStringTooLong)
    );
    assert_eq!(
        p(&format!("xboxpwid:{}", "x".repeat(33))),
        Err(E::XboxIdTooLong)
    );
    assert_eq!(p("gen:"), Err(E::BadHex));
    assert_eq!(p("gen:abc"), Err(E::BadHex));
    assert_eq!(p("gen:zz"), Err(E::BadHex));
    assert_eq!(
        p(&format!("gen:{}", "00".repeat(33))),
        Err(E::GenericBytesTooLong)
    );

    let legacy = |f: &dyn Fn(&mut IdentityLegacyBinary)| {
        let mut m = IdentityLegacyBinary::default();
        f(&mut m);
        Identity::from_legacy_binary(&m)
    };
    assert_eq!(legacy(&|_| {}), Err(E::LegacyEmpty));
    assert_eq!(
        legacy(&|m| m.ipv6_and_port = Some(vec![0; 17])),
        Err(E::LegacyIpLength)
    );
    assert_eq!(legacy(&|m| m.steam_id = Some(1)), Err(E::InvalidSteamId));
    assert_eq!(
        legacy(&|m| m.generic_string = Some("x".repeat(32))),
        Err(E::GenericStringTooLong)
    );
    assert_eq!(
        legacy(&|m| m.generic_string = Some("\0".into())),
        Err(E::ContainsNul)
    );
    assert_eq!(
        legacy(&|m| m.generic_bytes = Some(vec![0; 33])),
        Err(E::GenericBytesTooLong)
    );
    assert_eq!(
        Identity::SonyPsn(1).to_legacy_binary(),
        Err(E::NoLegacyForm)
    );
    assert_eq!(Identity::from_wire(None, None, None), Err(E::Absent));
    assert_eq!(
        Identity::from_wire(None, None, Some(3)),
        Err(E::InvalidSteamId)
    );
}

#[test]
fn empty_legacy_generic_bytes_are_refused() {
    // Fuzzing regression (cert target): a certificate whose legacy identity carried empty
    // generic bytes was accepted as `GenericBytes([])`, which prints as `gen:` and does not
    // parse back.
    let m = IdentityLegacyBinary {
        generic_bytes: Some(Vec::new()),
        ..IdentityLegacyBinary::default()
    };
    assert_eq!(
        Identity::from_legacy_binary(&m),
        Err(IdentityError::EmptyGenericBytes)
    );
    assert_eq!(p("gen:"), Err(IdentityError::BadHex));
    let one = IdentityLegacyBinary {
        generic_bytes: Some(vec![0xab]),
        ..IdentityLegacyBinary::default()
    };
    let id = Identity::from_legacy_binary(&one).unwrap();
    assert_eq!(p(&id.to_string()), Ok(id));
}

#[test]
fn legacy_binary_localhost() {
    // What GNS puts in its self-signed cert for `ip:::1` (spec §2.8).
    let m = Identity::localhost().to_legacy_binary().unwrap();
    let mut expect = vec![0u8; 18];
    expect[15] = 1;
    assert_eq!(m.ipv6_and_port, Some(expect));
    assert_eq!(Identity::from_legacy_binary(&m), Ok(Identity::localhost()));
    let v4 = p("ip:10.0.0.1:27015").unwrap();
    let m = v4.to_legacy_binary().unwrap();
    assert_eq!(
        m.ipv6_and_port.as_deref().unwrap(),
        [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1, 0x69, 0x87
        ]
    );
    assert_eq!(Identity::from_legacy_binary(&m), Ok(v4));
}

#[test]
fn wire_preference_order() {
    let legacy = Identity::GenericString("b".into())
        .to_legacy_binary()
        .unwrap();
    assert_eq!(
        Identity::from_wire(Some("str:a"), Some(&legacy), Some(STEAM_ID)),
        Ok(Identity::GenericString("a".into()))
    );
    assert_eq!(
        Identity::from_wire(None, Some(&legacy), Some(STEAM_ID)),
        Ok(Identity::GenericString("b".into()))
    );
    assert_eq!(
        Identity::from_wire(None, None, Some(STEAM_ID)),
        Ok(Identity::SteamId(STEAM_ID))
    );
}

fn arb_ip() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(o, port)| SocketAddr::from((o, port))),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(o, port)| normalise(SocketAddr::from((Ipv6Addr::from(o), port)))),
    ]
}

fn arb_identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        Just(Identity::Invalid),
        (
            any::<u32>(),
            0u64..(1 << 20),
            prop::sample::select(vec![1u64, 3, 4, 9]),
            any::<u8>()
        )
            .prop_filter("account id non-zero", |(a, ..)| *a != 0)
            .prop_map(|(a, inst, t, u)| Identity::SteamId(
                (u64::from(u) << 56) | (t << 52) | (inst << 32) | u64::from(a)
            )),
        "[^\0]{0,8}"
            .prop_filter("≤ 32 bytes", |s: &String| s.len() <= 32)
            .prop_map(Identity::XboxPairwiseId),
        any::<u64>().prop_map(Identity::SonyPsn),
        arb_ip().prop_map(Identity::IpAddress),
        "[^\0]{0,10}"
            .prop_filter("≤ 31 bytes", |s: &String| s.len() <= 31)
            .prop_map(Identity::GenericString),
        proptest::collection::vec(any::<u8>(), 1..=32).prop_map(Identity::GenericBytes),
        ("[a-z0-9_]{1,16}", "[ -~]{0,100}")
            .prop_filter("≤ 127", |(p, d)| p.len() + 1 + d.len() <= 127)
            .prop_filter("not a known prefix", |(p, _)| {
                !["steamid", "psn", "xboxpwid", "ip", "str", "gen"].contains(&p.as_str())
            })
            .prop_map(|(prefix, data)| Identity::Unknown { prefix, data }),
    ]
}

proptest! {
    #[test]
    fn string_round_trip(id in arb_identity()) {
        let s = id.to_string();
        prop_assert_eq!(Identity::parse(&s), Ok(id));
    }

    #[test]
    fn legacy_round_trip(id in arb_identity()) {
        match id.to_legacy_binary() {
            Ok(m) => prop_assert_eq!(Identity::from_legacy_binary(&m), Ok(id)),
            Err(e) => prop_assert_eq!(e, IdentityError::NoLegacyForm),
        }
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        if let Ok(id) = Identity::parse(&s) {
            // Whatever parses prints to something that parses to the same identity.
            prop_assert_eq!(Identity::parse(&id.to_string()), Ok(id));
        }
    }

    #[test]
    fn parse_never_panics_prefixed(
        prefix in prop::sample::select(vec!["steamid:", "psn:", "ip:", "gen:", "str:", "x:"]),
        s in "[0-9a-fA-F:.\\[\\]%+-]{0,45}",
    ) {
        let s = format!("{prefix}{s}");
        if let Ok(id) = Identity::parse(&s) {
            prop_assert_eq!(Identity::parse(&id.to_string()), Ok(id));
        }
    }
}
