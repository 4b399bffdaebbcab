use super::*;
use crate::crypto::negotiate::cipher_preferences;
use crate::crypto::{AeadBackend, CryptInfoError, NegotiationError, PacketCipher, SessionCipher};
use crate::wire::control::{ControlMessage, decode_control};
use crate::wire::proto::CertificateSigned;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secrets(b: u8) -> SessionSecrets {
    SessionSecrets {
        ephemeral: EphemeralKeyPair::from_secret_bytes([b; 32]),
        nonce: u64::from(b) * 77,
    }
}

fn aes() -> &'static [Cipher] {
    cipher_preferences(0).unwrap()
}

/// Sends `msg` through the real encoder and decoder, as the wire would.
fn over_wire(msg: ControlMessage) -> ControlMessage {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    decode_control(&out).unwrap()
}

#[test]
fn client_and_server_derive_matching_keys() {
    let client_id = LocalIdentity::anonymous([1; 32]);
    let server_id = LocalIdentity::anonymous([2; 32]);
    let server_addr = addr("127.0.0.1:27015");
    let client_addr = addr("127.0.0.1:50000");
    let policy = AuthPolicy::default();
    let mut client = ClientHandshake::new(0x1111_2222, server_addr, &client_id, secrets(3), aes());

    let t0 = Timestamp::from_micros(1_000_000);
    let creq = client.challenge_request(t0);
    let reply = ChallengeReply {
        connection_id: creq.connection_id,
        challenge: Some(42),
        your_timestamp: creq.my_timestamp,
        protocol_version: Some(13),
    };
    let t1 = Timestamp::from_micros(1_000_300);
    let (req, rtt) = client
        .on_challenge_reply(t1, &reply, &client_id, None)
        .unwrap();
    assert_eq!(rtt, Some(Duration::from_micros(300)));
    let ControlMessage::ConnectRequest(req) = over_wire(req.into()) else {
        panic!()
    };

    let pending = check_connect_request(t1, &req, client_addr, &policy).unwrap();
    assert_eq!(pending.remote_id, 0x1111_2222);
    // Anonymous localhost identity is replaced by the real address.
    assert_eq!(pending.remote_identity, Identity::IpAddress(client_addr));
    let t2 = Timestamp::from_micros(1_000_500);
    let (ok, server) = pending
        .accept(t2, 0x3333_4444, &server_id, &secrets(4), aes())
        .unwrap();
    assert_eq!(ok.delay_time_usec, Some(200));
    let ControlMessage::ConnectOk(ok) = over_wire(ok.into()) else {
        panic!()
    };

    let t3 = Timestamp::from_micros(1_000_900);
    // A server id with zero low 16 bits is refused as GNS does (Remote_BadCrypt).
    let zero_low = ConnectOk {
        server_connection_id: Some(0x3333_0000),
        ..(*ok).clone()
    };
    let e = client
        .on_connect_ok(t3, &zero_low, &client_id, &policy)
        .unwrap_err();
    assert_eq!(e, HandshakeError::BadServerConnectionId(0x3333_0000));
    assert_eq!(
        (e.end_reason(), e.to_string().as_str()),
        (
            end_reason::REMOTE_BAD_CRYPT,
            "bad crypt: server connection id low 16 bits zero"
        )
    );
    let (client_est, rtt) = client.on_connect_ok(t3, &ok, &client_id, &policy).unwrap();
    // 600 us since the ConnectRequest's timestamp, minus the 200 us the server held it.
    assert_eq!(rtt, Some(Duration::from_micros(400)));
    assert_eq!(client_est.remote_id, 0x3333_4444);
    assert_eq!(client_est.remote_identity, Identity::IpAddress(server_addr));
    assert_eq!(client_est.cipher, Cipher::Aes256Gcm);
    assert!(client_est.unauthenticated && server.unauthenticated);

    // What the client seals, the server opens, and the reverse.
    let (c_send, c_recv) = client_est
        .keys
        .ciphers(AeadBackend::Ring, client_est.cipher)
        .unwrap();
    let (s_send, s_recv) = server
        .keys
        .ciphers(AeadBackend::Ring, server.cipher)
        .unwrap();
    let check = |send: &SessionCipher, recv: &SessionCipher| {
        let mut buf = b"hello".to_vec();
        send.seal_in_place(2, &mut buf, 0).unwrap();
        assert_eq!(recv.open_in_place(2, &mut buf).unwrap(), b"hello");
    };
    check(&c_send, &s_recv);
    check(&s_send, &c_recv);
}

#[test]
fn failures_map_to_gns_end_reasons() {
    let client_id = LocalIdentity::anonymous([1; 32]);
    let server = addr("10.0.0.1:1");
    let mut client = ClientHandshake::new(7 << 16 | 7, server, &client_id, secrets(3), aes());
    let old = ChallengeReply {
        connection_id: Some(7 << 16 | 7),
        challenge: Some(1),
        your_timestamp: None,
        protocol_version: Some(7),
    };
    let e = client
        .on_challenge_reply(Timestamp::ZERO, &old, &client_id, None)
        .unwrap_err();
    assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_PROTOCOL_VERSION);
    let other = ChallengeReply {
        connection_id: Some(9),
        protocol_version: Some(13),
        ..old
    };
    let e = client
        .on_challenge_reply(Timestamp::ZERO, &other, &client_id, None)
        .unwrap_err();
    assert_eq!(e, HandshakeError::WrongConnection);

    // A server that only allows CA-signed certs rejects an unsigned one from a real address.
    let (req, _) = client
        .on_challenge_reply(
            Timestamp::ZERO,
            &ChallengeReply {
                protocol_version: Some(13),
                ..old
            },
            &client_id,
            None,
        )
        .unwrap();
    let strict = AuthPolicy {
        allow_without_auth: 0,
        localhost_allow_without_auth: 2,
        app_id: 0,
    };
    let e = check_connect_request(Timestamp::ZERO, &req, addr("10.0.0.2:5"), &strict).unwrap_err();
    assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_CERT);
    // The cause stays typed; the text (sent as the close's debug string) is unchanged.
    assert_eq!(e, HandshakeError::BadCert(CertError::UnsignedNotAllowed));
    assert_eq!(
        e.to_string(),
        "bad certificate: unsigned certificate not allowed"
    );
    // ... but loopback peers fall under IPLocalHost_AllowWithoutAuth.
    assert!(check_connect_request(Timestamp::ZERO, &req, addr("127.0.0.1:5"), &strict).is_ok());

    // A tampered crypt-info signature is a crypt failure.
    let mut bad = req.clone();
    if let Some(sig) = bad.crypt.as_mut().and_then(|c| c.signature.as_mut()) {
        sig[0] ^= 1;
    }
    let e = check_connect_request(Timestamp::ZERO, &bad, addr("127.0.0.1:5"), &strict).unwrap_err();
    assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_CRYPT);
    assert!(
        matches!(
            e,
            HandshakeError::BadCrypt(CryptoError::CryptInfo(CryptInfoError::Signature(_)))
        ),
        "{e:?}"
    );
    // Missing id.
    let mut none = req;
    none.client_connection_id = Some(0);
    let e =
        check_connect_request(Timestamp::ZERO, &none, addr("127.0.0.1:5"), &strict).unwrap_err();
    assert_eq!(e, HandshakeError::Missing("client_connection_id"));

    // Cipher mismatch: server insists on NULL, client offers only AES.
    let client_id2 = LocalIdentity::anonymous([5; 32]);
    let mut c2 = ClientHandshake::new(0x0101_0101, server, &client_id2, secrets(6), aes());
    let reply = ChallengeReply {
        connection_id: Some(0x0101_0101),
        ..old
    };
    let reply = ChallengeReply {
        protocol_version: Some(13),
        ..reply
    };
    let (req, _) = c2
        .on_challenge_reply(Timestamp::ZERO, &reply, &client_id2, None)
        .unwrap();
    let pending = check_connect_request(
        Timestamp::ZERO,
        &req,
        addr("127.0.0.1:5"),
        &AuthPolicy::default(),
    )
    .unwrap();
    let null_only = cipher_preferences(3).unwrap();
    let e = pending
        .accept(
            Timestamp::ZERO,
            0x0202_0202,
            &client_id2,
            &secrets(8),
            null_only,
        )
        .unwrap_err();
    assert_eq!(e.end_reason(), end_reason::REMOTE_BAD_CRYPT);
    assert_eq!(
        e,
        HandshakeError::BadCrypt(CryptoError::Negotiation(NegotiationError::NoCommonCipher))
    );
    assert_eq!(e.to_string(), "bad crypt: no cipher in common");
}

// ---- replay of the real GNS transcripts (engine/testdata, see shared/spec/vectors/README.md)

fn vector(name: &str) -> serde_json::Value {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hexv(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr32(v: &serde_json::Value) -> [u8; 32] {
    hexv(v).try_into().unwrap()
}

fn u64s(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn datagram(v: &serde_json::Value, kind: &str) -> ControlMessage {
    let d = v["datagrams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap();
    decode_control(&hexv(&d["hex"])).unwrap()
}

/// The known-keys side's identity with its exact certificate bytes from the capture.
fn known_identity(v: &serde_json::Value, cert_field: &str) -> LocalIdentity {
    let cert = CertificateSigned {
        cert: Some(hexv(&v["derivation"][cert_field])),
        ..Default::default()
    };
    let seed = arr32(&v["known_keys"]["ed25519_identity_private_seed_hex"]);
    LocalIdentity::with_certificate(seed, cert, Identity::localhost())
}

fn known_secrets(v: &serde_json::Value, nonce_field: &str) -> SessionSecrets {
    SessionSecrets {
        ephemeral: EphemeralKeyPair::from_secret_bytes(arr32(
            &v["known_keys"]["x25519_ephemeral_private_hex"],
        )),
        nonce: u64s(&v["derivation"][nonce_field]),
    }
}

#[test]
fn client_replays_gns_server_transcript_bit_for_bit() {
    let v = vector("gns-handshake-c2s.json");
    let d = &v["derivation"];
    let local = known_identity(&v, "client_cert_hex");
    let id = d["client_connection_id"].as_u64().unwrap() as u32;
    let server = addr("127.0.0.1:27015");
    let mut client =
        ClientHandshake::new(id, server, &local, known_secrets(&v, "client_nonce"), aes());
    let ControlMessage::ChallengeReply(reply) = datagram(&v, "ChallengeReply") else {
        panic!()
    };
    let (req, _) = client
        .on_challenge_reply(Timestamp::ZERO, &reply, &local, None)
        .unwrap();
    // Our signed crypt info is byte-identical to what GNS accepted (Ed25519 is deterministic).
    let ControlMessage::ConnectRequest(sent) = datagram(&v, "ConnectRequest") else {
        panic!()
    };
    assert_eq!(req.crypt, sent.crypt);
    assert_eq!(req.cert, sent.cert);
    assert_eq!(req.challenge, sent.challenge);

    let ControlMessage::ConnectOk(ok) = datagram(&v, "ConnectOK") else {
        panic!()
    };
    let (est, _) = client
        .on_connect_ok(Timestamp::ZERO, &ok, &local, &AuthPolicy::default())
        .unwrap();
    assert_eq!(
        u64::from(est.remote_id),
        d["server_connection_id"].as_u64().unwrap()
    );
    assert_eq!(est.keys.send.key().as_slice(), hexv(&d["key_c2s_hex"]));
    assert_eq!(est.keys.recv.key().as_slice(), hexv(&d["key_s2c_hex"]));
    assert_eq!(est.keys.send.iv().as_slice(), hexv(&d["iv_c2s_hex"]));
    assert_eq!(est.keys.recv.iv().as_slice(), hexv(&d["iv_s2c_hex"]));
    assert_eq!(est.peer_protocol, 13);
}

#[test]
fn server_replays_gns_client_transcript_bit_for_bit() {
    let v = vector("gns-handshake-s2c.json");
    let d = &v["derivation"];
    let local = known_identity(&v, "server_cert_hex");
    let ControlMessage::ConnectRequest(req) = datagram(&v, "ConnectRequest") else {
        panic!()
    };
    let from = addr("127.0.0.1:40000");
    let pending =
        check_connect_request(Timestamp::ZERO, &req, from, &AuthPolicy::default()).unwrap();
    assert_eq!(
        u64::from(pending.remote_id),
        d["client_connection_id"].as_u64().unwrap()
    );
    let server_id = d["server_connection_id"].as_u64().unwrap() as u32;
    let (ok, est) = pending
        .accept(
            Timestamp::ZERO,
            server_id,
            &local,
            &known_secrets(&v, "server_nonce"),
            aes(),
        )
        .unwrap();
    let ControlMessage::ConnectOk(sent) = datagram(&v, "ConnectOK") else {
        panic!()
    };
    assert_eq!(
        ok.crypt, sent.crypt,
        "signed crypt info identical to the captured ConnectOK"
    );
    assert_eq!(ok.cert, sent.cert);
    assert_eq!(est.keys.send.key().as_slice(), hexv(&d["key_s2c_hex"]));
    assert_eq!(est.keys.recv.key().as_slice(), hexv(&d["key_c2s_hex"]));
    assert_eq!(est.keys.send.iv().as_slice(), hexv(&d["iv_s2c_hex"]));
    assert_eq!(est.keys.recv.iv().as_slice(), hexv(&d["iv_c2s_hex"]));
}
