//! Unit tests of control framing: §1.2's known encodings, every error variant, round trips and
//! never-panic checks on arbitrary input.

use super::*;
use proptest::prelude::*;

fn challenge_request() -> proto::ChallengeRequest {
    proto::ChallengeRequest {
        connection_id: Some(0x3deb_1bd5),
        my_timestamp: Some(0xc3f3_dfa6),
        protocol_version: Some(13),
    }
}

#[test]
fn challenge_request_known_encoding() {
    let msg = ControlMessage::from(challenge_request());
    let mut out = Vec::new();
    assert_eq!(msg.encode(&mut out), Ok(512));
    let head = [
        0x20, 0x10, 0x00, 0x0d, 0xd5, 0x1b, 0xeb, 0x3d, 0x19, 0xa6, 0xdf, 0xf3, 0xc3, 0, 0, 0, 0,
        0x20, 0x0d,
    ];
    assert_eq!(out[..19], head);
    assert!(out[19..].iter().all(|&b| b == 0));
    assert_eq!(decode_control(&out), Ok(msg));
}

#[test]
fn challenge_reply_and_no_connection_known_encodings() {
    let reply = ControlMessage::from(proto::ChallengeReply {
        connection_id: Some(1),
        challenge: Some(2),
        your_timestamp: Some(3),
        protocol_version: Some(13),
    });
    let mut out = Vec::new();
    assert_eq!(reply.encode(&mut out), Ok(26));
    assert_eq!(out[..2], [0x21, 0x0d]);
    assert_eq!(out[6], 0x11);
    assert_eq!(out[15], 0x19);
    assert_eq!(out[24..], [0x20, 0x0d]);

    let nc = ControlMessage::from(proto::NoConnection {
        from_connection_id: Some(0x2d58_52c2),
        to_connection_id: Some(0x3deb_1bd5),
    });
    out.clear();
    assert_eq!(nc.encode(&mut out), Ok(11));
    assert_eq!(
        out,
        [
            0x25, 0x15, 0xc2, 0x52, 0x58, 0x2d, 0x1d, 0xd5, 0x1b, 0xeb, 0x3d
        ]
    );
    assert_eq!(decode_control(&out), Ok(nc));
}

#[test]
fn encode_appends_and_reports_len() {
    let msg = ControlMessage::from(proto::NoConnection::default());
    let mut out = vec![9, 9];
    assert_eq!(msg.encode(&mut out), Ok(1));
    assert_eq!(out, [9, 9, 0x25]);
    assert_eq!(msg.encoded_len(), 1);
}

#[test]
fn framing_errors() {
    assert_eq!(decode_control(&[]), Err(ControlError::Empty));
    assert_eq!(
        decode_control(&[0x80, 0]),
        Err(ControlError::NotControl(0x80))
    );
    assert_eq!(
        decode_control(&[0x26, 0]),
        Err(ControlError::UnknownLeadByte(0x26))
    );
    let mut padded = vec![0u8; 511];
    padded[0] = 0x24;
    padded[1] = 1;
    assert_eq!(
        decode_control(&padded),
        Err(ControlError::PaddedTooShort(511))
    );
    padded.push(0);
    assert_eq!(
        split_control(&padded),
        Ok((ControlKind::ConnectionClosed, &[0u8][..]))
    );
    padded[1] = 0;
    assert_eq!(decode_control(&padded), Err(ControlError::PaddedZeroLength));
    // 510 bytes of body fit in 512 (3 + 509 = 512); 510 does not.
    padded[1..3].copy_from_slice(&509u16.to_le_bytes());
    assert!(split_control(&padded).is_ok());
    padded[1..3].copy_from_slice(&510u16.to_le_bytes());
    assert_eq!(
        decode_control(&padded),
        Err(ControlError::PaddedLengthOverrun(510))
    );
    // Field 1 as a fixed32 with only two bytes: truncated protobuf.
    assert_eq!(
        decode_control(&[0x25, 0x15, 1, 2]),
        Err(ControlError::Protobuf(ControlKind::NoConnection))
    );
}

#[test]
fn too_large_is_refused() {
    let closed = proto::ConnectionClosed {
        debug: Some("x".repeat(1300)),
        ..Default::default()
    };
    let msg = ControlMessage::from(closed);
    let mut out = vec![7];
    let len = msg.encoded_len();
    assert!(len > 1300);
    assert_eq!(msg.encode(&mut out), Err(ControlError::TooLarge(len)));
    assert_eq!(out, [7]);
    // A body that just fits: 3 + 1297 = 1300.
    let fits = proto::ConnectionClosed {
        debug: Some("y".repeat(1297 - 3)),
        ..Default::default()
    };
    let msg = ControlMessage::from(fits);
    assert_eq!(msg.protobuf_len(), 1297);
    out.clear();
    assert_eq!(msg.encode(&mut out), Ok(1300));
    assert_eq!(decode_control(&out), Ok(msg));
}

fn signed_crypt() -> proto::CryptInfoSigned {
    let info = proto::CryptInfo {
        key_type: Some(proto::CryptKeyType::Curve25519 as i32),
        key_data: Some(vec![7; 32]),
        nonce: Some(5),
        protocol_version: Some(13),
        ciphers: vec![proto::Cipher::Aes256Gcm as i32],
    };
    proto::CryptInfoSigned {
        info: Some(info.encode_to_vec()),
        signature: Some(vec![1; 64]),
    }
}

fn signed_cert() -> proto::CertificateSigned {
    let cert = proto::Certificate {
        key_type: Some(proto::CertKeyType::Ed25519 as i32),
        key_data: Some(vec![3; 32]),
        app_ids: vec![0],
        identity_string: Some("ip:::1".into()),
        ..Default::default()
    };
    proto::CertificateSigned {
        cert: Some(cert.encode_to_vec()),
        ..Default::default()
    }
}

#[test]
fn validation() {
    use InvalidControl as E;
    let ok = proto::ConnectOk {
        client_connection_id: Some(1),
        server_connection_id: Some(0x0001_0001),
        crypt: Some(signed_crypt()),
        cert: Some(signed_cert()),
        ..Default::default()
    };
    assert_eq!(ControlMessage::from(ok.clone()).validate(), Ok(()));
    let check = |m: proto::ConnectOk| ControlMessage::from(m).validate();
    let with = |f: &dyn Fn(&mut proto::ConnectOk)| {
        let mut m = ok.clone();
        f(&mut m);
        check(m)
    };
    assert_eq!(
        with(&|m| m.client_connection_id = None),
        Err(E::MissingConnectionId)
    );
    assert_eq!(
        with(&|m| m.client_connection_id = Some(0)),
        Err(E::ZeroConnectionId)
    );
    assert_eq!(
        with(&|m| m.server_connection_id = Some(0x10000)),
        Err(E::ServerIdLow16Zero)
    );
    assert_eq!(with(&|m| m.crypt = None), Err(E::MissingCrypt));
    assert_eq!(
        with(&|m| m.crypt.as_mut().unwrap().info = None),
        Err(E::MissingCryptInfo)
    );
    assert_eq!(
        with(&|m| m.crypt.as_mut().unwrap().signature = None),
        Err(E::MissingCryptSignature)
    );
    assert_eq!(with(&|m| m.cert = None), Err(E::MissingCert));
    assert_eq!(
        with(&|m| m.cert.as_mut().unwrap().cert = None),
        Err(E::MissingCertBody)
    );

    let req = proto::ConnectRequest {
        client_connection_id: Some(9),
        crypt: Some(signed_crypt()),
        cert: Some(signed_cert()),
        ..Default::default()
    };
    assert_eq!(ControlMessage::from(req.clone()).validate(), Ok(()));
    let no_cert = proto::ConnectRequest { cert: None, ..req };
    assert_eq!(
        ControlMessage::from(no_cert).validate(),
        Err(E::MissingCert)
    );
    let zero = proto::ChallengeRequest {
        connection_id: Some(0),
        ..challenge_request()
    };
    assert_eq!(
        ControlMessage::from(zero).validate(),
        Err(E::ZeroConnectionId)
    );
    assert_eq!(
        ControlMessage::from(proto::ChallengeReply::default()).validate(),
        Err(E::MissingConnectionId)
    );
    assert_eq!(
        ControlMessage::from(proto::NoConnection::default()).validate(),
        Ok(())
    );

    assert_eq!(decode_crypt_info(&signed_crypt()).unwrap().nonce, Some(5));
    assert_eq!(decode_certificate(&signed_cert()).unwrap().app_ids, vec![0]);
    let bad = proto::CryptInfoSigned {
        info: Some(vec![0x0a, 0x05]),
        signature: None,
    };
    assert_eq!(decode_crypt_info(&bad), Err(E::CryptInfoProtobuf));
    assert_eq!(
        decode_crypt_info(&proto::CryptInfoSigned::default()),
        Err(E::MissingCryptInfo)
    );
    let bad_cert = proto::CertificateSigned {
        cert: Some(vec![0xff]),
        ..Default::default()
    };
    assert_eq!(decode_certificate(&bad_cert), Err(E::CertProtobuf));
    assert_eq!(
        decode_certificate(&proto::CertificateSigned::default()),
        Err(E::MissingCertBody)
    );
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn arb_message() -> impl Strategy<Value = ControlMessage> {
    let cr = (opt(any::<u32>()), opt(any::<u64>()), opt(any::<u32>())).prop_map(|(a, b, c)| {
        ControlMessage::from(proto::ChallengeRequest {
            connection_id: a,
            my_timestamp: b,
            protocol_version: c,
        })
    });
    let reply = (
        opt(any::<u32>()),
        opt(any::<u64>()),
        opt(any::<u64>()),
        opt(any::<u32>()),
    )
        .prop_map(|(a, b, c, d)| {
            ControlMessage::from(proto::ChallengeReply {
                connection_id: a,
                challenge: b,
                your_timestamp: c,
                protocol_version: d,
            })
        });
    let crypt = || {
        opt((opt(bytes(80)), opt(bytes(80))))
            .prop_map(|c| c.map(|(info, signature)| proto::CryptInfoSigned { info, signature }))
    };
    let cert = || {
        opt((opt(bytes(120)), opt(any::<u64>()), opt(bytes(64)))).prop_map(|c| {
            c.map(|(cert, ca_key_id, ca_signature)| proto::CertificateSigned {
                private_key_data: None,
                cert,
                ca_key_id,
                ca_signature,
            })
        })
    };
    let legacy = || {
        opt((
            opt(bytes(32)),
            opt("[a-z]{0,31}"),
            opt(bytes(18)),
            opt(any::<u64>()),
        ))
        .prop_map(|l| {
            l.map(|(a, b, c, d)| proto::IdentityLegacyBinary {
                generic_bytes: a,
                generic_string: b,
                ipv6_and_port: c,
                steam_id: d,
            })
        })
    };
    let ids = || {
        (
            opt(any::<u32>()),
            opt(any::<u64>()),
            opt(any::<u64>()),
            opt(any::<u64>()),
            opt(any::<u32>()),
        )
    };
    let connect_request = (
        ids(),
        crypt(),
        cert(),
        opt(any::<u32>()),
        legacy(),
        opt(".{0,40}"),
    )
        .prop_map(|((a, b, c, d, e), crypt, cert, lpv, legacy, ident)| {
            ControlMessage::from(proto::ConnectRequest {
                client_connection_id: a,
                challenge: b,
                legacy_client_steam_id: c,
                cert,
                my_timestamp: d,
                ping_est_ms: e,
                crypt,
                legacy_protocol_version: lpv,
                legacy_identity_binary: legacy,
                identity_string: ident,
            })
        });
    let connect_ok = (
        ids(),
        opt(any::<u32>()),
        crypt(),
        cert(),
        legacy(),
        opt(".{0,40}"),
    )
        .prop_map(|((a, b, c, _, d), server, crypt, cert, legacy, ident)| {
            ControlMessage::from(proto::ConnectOk {
                client_connection_id: a,
                legacy_server_steam_id: b,
                your_timestamp: c,
                delay_time_usec: d,
                server_connection_id: server,
                crypt,
                cert,
                legacy_identity_binary: legacy,
                identity_string: ident,
            })
        });
    let closed = (
        opt(".{0,200}"),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
    )
        .prop_map(|(a, b, c, d)| {
            ControlMessage::from(proto::ConnectionClosed {
                debug: a,
                reason_code: b,
                to_connection_id: c,
                from_connection_id: d,
            })
        });
    let nc = (opt(any::<u32>()), opt(any::<u32>())).prop_map(|(a, b)| {
        ControlMessage::from(proto::NoConnection {
            from_connection_id: a,
            to_connection_id: b,
        })
    });
    prop_oneof![cr, reply, connect_request, connect_ok, closed, nc]
}

proptest! {
    #[test]
    fn round_trip(msg in arb_message()) {
        let mut out = Vec::new();
        match msg.encode(&mut out) {
            Ok(n) => {
                prop_assert_eq!(n, out.len());
                prop_assert_eq!(n, msg.encoded_len());
                prop_assert!(n <= 1300);
                if msg.kind().is_padded() {
                    prop_assert!(n >= 512);
                }
                prop_assert_eq!(decode_control(&out), Ok(msg));
            }
            // An empty padded body (no fields) has length 0, which receivers reject: the
            // encoder refuses it rather than emit an undeliverable datagram.
            Err(ControlError::PaddedZeroLength) => {
                prop_assert!(msg.kind().is_padded() && msg.protobuf_len() == 0);
                prop_assert!(out.is_empty());
            }
            Err(e) => {
                prop_assert_eq!(e, ControlError::TooLarge(msg.encoded_len()));
                prop_assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn never_panics(lead in 0x1eu8..0x28, body in bytes(600)) {
        let mut d = vec![lead];
        d.extend_from_slice(&body);
        if let Ok(m) = decode_control(&d) {
            let _ = m.validate();
            prop_assert_eq!(m.kind().lead_byte(), lead);
        }
    }

    #[test]
    fn never_panics_any(d in bytes(64)) {
        let _ = decode_control(&d);
    }
}
