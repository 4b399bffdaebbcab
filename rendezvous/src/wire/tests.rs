use super::*;

fn round_trip(m: Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    assert_eq!(Message::decode(&out), Ok(m));
    out
}

#[test]
fn every_message_round_trips() {
    let sig = [7u8; 64];
    for m in [
        Message::Hello,
        Message::Challenge {
            cookie: 0x1122_3344_5566_7788,
            auth_required: true,
        },
        Message::Register {
            cookie: 9,
            identity: "str:alice",
            cert: b"certbytes",
            signature: &sig,
        },
        Message::Register {
            cookie: 9,
            identity: "str:alice",
            cert: b"",
            signature: b"",
        },
        Message::RegisterOk {
            session: 5,
            interval_secs: 10,
            ttl_secs: 30,
        },
        Message::RegisterRefused {
            reason: RefuseReason::Full,
        },
        Message::RegisterRefused {
            reason: RefuseReason::Other(200),
        },
        Message::Refresh { session: 5 },
        Message::Signal {
            session: 5,
            to: "str:bob",
            payload: &[1, 2, 3],
        },
        Message::Deliver {
            from: "str:alice",
            payload: &[0; MAX_PAYLOAD_LEN],
        },
        Message::UnknownPeer { to: "str:bob" },
        Message::UnknownSender,
        Message::Unregister { session: 5 },
        Message::FakeIpRequest {
            session: 5,
            num_ports: 4,
        },
        Message::FakeIpGranted {
            ip: [169, 254, 7, 9].into(),
            ports: FakeIpPorts::new(&[1025, 40000, 65535, 2000]),
        },
        Message::FakeIpGranted {
            ip: [169, 254, 7, 9].into(),
            ports: FakeIpPorts::new(&[]),
        },
        Message::FakeIpRefused {
            reason: FakeIpRefuseReason::Full,
        },
        Message::FakeIpRefused {
            reason: FakeIpRefuseReason::Other(77),
        },
    ] {
        round_trip(m);
    }
}

#[test]
fn replies_before_registration_are_never_larger_than_their_requests() {
    let hello = round_trip(Message::Hello);
    let challenge = round_trip(Message::Challenge {
        cookie: 1,
        auth_required: true,
    });
    assert!(challenge.len() <= hello.len());
    let register = round_trip(Message::Register {
        cookie: 1,
        identity: "",
        cert: b"",
        signature: b"",
    });
    let ok = round_trip(Message::RegisterOk {
        session: 1,
        interval_secs: 1,
        ttl_secs: 1,
    });
    let refused = round_trip(Message::RegisterRefused {
        reason: RefuseReason::Full,
    });
    assert!(challenge.len() <= register.len() && refused.len() <= register.len());
    assert!(ok.len() <= register.len());
    let refresh = round_trip(Message::Refresh { session: 1 });
    assert_eq!(refresh.len(), REFRESH_LEN);
    assert!(ok.len() <= refresh.len());
    let unknown_sender = round_trip(Message::UnknownSender);
    assert!(unknown_sender.len() <= refresh.len());
}

#[test]
fn malformed_datagrams_are_errors() {
    let mut good = Vec::new();
    Message::Signal {
        session: 1,
        to: "str:bob",
        payload: b"hi",
    }
    .encode(&mut good)
    .unwrap();
    for cut in 0..good.len() {
        assert!(Message::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut extra = good.clone();
    extra.push(0);
    assert_eq!(Message::decode(&extra), Err(DecodeError::Trailing));
    let mut v = good.clone();
    v[2] = 2;
    assert_eq!(Message::decode(&v), Err(DecodeError::Version(2)));
    let mut m = good.clone();
    m[0] = b'X';
    assert_eq!(Message::decode(&m), Err(DecodeError::BadMagic));
    let mut t = good;
    t[3] = 99;
    assert_eq!(Message::decode(&t), Err(DecodeError::UnknownType(99)));
    assert_eq!(
        Message::decode(b"SR\x01\x01short"),
        Err(DecodeError::Truncated),
        "unpadded Hello"
    );
    let mut long = b"SR\x01\x08".to_vec();
    long.push(200);
    assert_eq!(Message::decode(&long), Err(DecodeError::TooLong));
    let mut bad_utf8 = b"SR\x01\x09\x02".to_vec();
    bad_utf8.extend_from_slice(&[0xff, 0xfe]);
    assert_eq!(Message::decode(&bad_utf8), Err(DecodeError::Utf8));
}

#[test]
fn pseudo_random_bytes_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..2000usize {
        let mut buf = vec![0u8; len % 300];
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if len % 3 == 0 && buf.len() >= 4 {
            buf[..3].copy_from_slice(b"SR\x01");
        }
        let _ = Message::decode(&buf);
    }
}

#[test]
fn oversized_fields_are_refused_when_encoding() {
    let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
    let mut out = Vec::new();
    let m = Message::Signal {
        session: 1,
        to: "str:bob",
        payload: &big,
    };
    assert_eq!(m.encode(&mut out), Err(EncodeError));
    let long_id = "x".repeat(MAX_IDENTITY_LEN + 1);
    let m = Message::UnknownPeer { to: &long_id };
    assert_eq!(m.encode(&mut out), Err(EncodeError));
}

#[test]
fn fake_ip_messages_are_small_and_checked() {
    let request = round_trip(Message::FakeIpRequest {
        session: 1,
        num_ports: 1,
    });
    let granted = round_trip(Message::FakeIpGranted {
        ip: [169, 254, 1, 0].into(),
        ports: FakeIpPorts::new(&[1025, 1026, 1027, 1028, 1029]),
    });
    // A grant never holds more than four ports, whatever it was built from.
    assert_eq!(granted.len(), HEADER_LEN + 4 + 1 + 2 * MAX_FAKEIP_PORTS);
    assert_eq!(
        request.len(),
        granted.len(),
        "no reply outgrows its request"
    );
    let mut five = granted[..HEADER_LEN + 4].to_vec();
    five.push(5);
    five.extend_from_slice(&[0; 10]);
    assert_eq!(Message::decode(&five), Err(DecodeError::TooLong));
    for cut in 0..granted.len() {
        assert!(Message::decode(&granted[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        FakeIpRefuseReason::from_code(FakeIpRefuseReason::BadRequest.code()),
        FakeIpRefuseReason::BadRequest
    );
}
