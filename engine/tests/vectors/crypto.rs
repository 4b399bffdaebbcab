//! Crypto known-answer tests against the GNS transcripts (vectors README "Using them in unit
//! tests", items 1, 2, 4 and 5): key schedule, signatures, certificates, nonces and AEAD.

use prost::Message;
use serde_json::Value;
use sockworks_engine::crypto::cert::{
    self, CaStatus, DEFAULT_APP_ID, LOCALHOST_IDENTITY, check_peer_cert, verify_peer_crypt_info,
};
use sockworks_engine::crypto::kdf::{self, KdfInput};
use sockworks_engine::crypto::keys::{EphemeralKeyPair, IdentityKey, verify_signature};
use sockworks_engine::crypto::{
    AeadBackend, DirectionKeys, OpenError, OpenItem, PacketCipher, ReplayCheck, ReplayWindow, Role,
    SealItem, SessionCipher, SessionKeys, TAG_LEN,
};
use sockworks_engine::wire::proto::{Certificate, Cipher, ConnectOk, ConnectRequest, CryptInfo};

use crate::support;

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    support::hex(v).try_into().unwrap()
}

fn backends() -> Vec<AeadBackend> {
    [AeadBackend::Ring, AeadBackend::RustCrypto]
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

/// Byte strings of both sides taken from the ConnectRequest / ConnectOK datagrams.
struct Handshake {
    client_id: u32,
    server_id: u32,
    client_cert: Vec<u8>,
    server_cert: Vec<u8>,
    client_info: Vec<u8>,
    server_info: Vec<u8>,
    client_sig: Vec<u8>,
    server_sig: Vec<u8>,
    req: ConnectRequest,
    ok: ConnectOk,
}

fn parse_handshake(v: &Value) -> Handshake {
    let req_bytes = support::hex(&support::first_of_kind(v, "ConnectRequest")["hex"]);
    let ok_bytes = support::hex(&support::first_of_kind(v, "ConnectOK")["hex"]);
    // Both are plain `[lead][protobuf]` (not padded).
    let req = ConnectRequest::decode(&req_bytes[1..]).unwrap();
    let ok = ConnectOk::decode(&ok_bytes[1..]).unwrap();
    let rc = req.crypt.clone().unwrap();
    let oc = ok.crypt.clone().unwrap();
    Handshake {
        client_id: req.client_connection_id.unwrap(),
        server_id: ok.server_connection_id.unwrap(),
        client_cert: req.cert.clone().unwrap().cert.unwrap(),
        server_cert: ok.cert.clone().unwrap().cert.unwrap(),
        client_info: rc.info.unwrap(),
        server_info: oc.info.unwrap(),
        client_sig: rc.signature.unwrap(),
        server_sig: oc.signature.unwrap(),
        req,
        ok,
    }
}

fn known_role(v: &Value) -> Role {
    match v["known_keys_role"].as_str().unwrap() {
        "client" => Role::Client,
        "server" => Role::Server,
        other => panic!("role {other}"),
    }
}

#[test]
fn key_schedule_from_derivation_inputs() {
    for (name, v) in support::all() {
        let d = &v["derivation"];
        let shared: [u8; 32] = arr(&d["x25519_shared_secret_hex"]);
        let (sc, cc) = (
            support::hex(&d["server_cert_hex"]),
            support::hex(&d["client_cert_hex"]),
        );
        let (si, ci) = (
            support::hex(&d["server_crypt_info_hex"]),
            support::hex(&d["client_crypt_info_hex"]),
        );
        let input = KdfInput {
            shared_secret: &shared,
            client_nonce: support::u64_str(&d["client_nonce"]),
            server_nonce: support::u64_str(&d["server_nonce"]),
            client_connection_id: support::int(&d["client_connection_id"]) as u32,
            server_connection_id: support::int(&d["server_connection_id"]) as u32,
            server_cert: &sc,
            client_cert: &cc,
            server_crypt_info: &si,
            client_crypt_info: &ci,
        };
        let info = kdf::hkdf_info(&input);
        assert_eq!(info, support::hex(&d["hkdf_info_hex"]), "{name} info");
        assert_eq!(
            info.len() as u64,
            support::int(&d["hkdf_info_len"]),
            "{name}"
        );
        check_schedule(name, d, &kdf::derive(&input));
    }
}

fn check_schedule(name: &str, d: &Value, ks: &kdf::KeySchedule) {
    assert_eq!(ks.premaster, arr(&d["premaster_hex"]), "{name} premaster");
    assert_eq!(ks.salt, arr(&d["salt_hex"]), "{name} salt");
    assert_eq!(ks.prk, arr(&d["prk_hex"]), "{name} prk");
    for i in 0..4 {
        assert_eq!(
            ks.t[i],
            arr(&d[format!("expand_t{}_hex", i + 1)]),
            "{name} T{}",
            i + 1
        );
    }
    assert_eq!(ks.key_c2s(), &arr(&d["key_c2s_hex"]), "{name}");
    assert_eq!(ks.key_s2c(), &arr(&d["key_s2c_hex"]), "{name}");
    assert_eq!(ks.iv_c2s(), &arr(&d["iv_c2s_hex"]), "{name}");
    assert_eq!(ks.iv_s2c(), &arr(&d["iv_s2c_hex"]), "{name}");
}

/// The stronger form: only `known_keys` and the two handshake datagrams.
#[test]
fn key_schedule_from_known_keys_and_datagrams() {
    for (name, v) in support::all() {
        let d = &v["derivation"];
        let k = &v["known_keys"];
        let hs = parse_handshake(&v);
        assert_eq!(
            hs.client_cert,
            support::hex(&d["client_cert_hex"]),
            "{name}"
        );
        assert_eq!(
            hs.server_cert,
            support::hex(&d["server_cert_hex"]),
            "{name}"
        );
        assert_eq!(
            hs.client_info,
            support::hex(&d["client_crypt_info_hex"]),
            "{name}"
        );
        assert_eq!(
            hs.server_info,
            support::hex(&d["server_crypt_info_hex"]),
            "{name}"
        );

        let role = known_role(&v);
        let (own_cert, peer_cert, peer_info_signed) = match role {
            Role::Client => (&hs.req.cert, &hs.ok.cert, &hs.ok.crypt),
            Role::Server => (&hs.ok.cert, &hs.req.cert, &hs.req.crypt),
        };
        // Peer checks as the protocol core will run them.
        let peer = check_peer_cert(peer_cert.as_ref().unwrap(), DEFAULT_APP_ID, &[]).unwrap();
        assert_eq!(peer.ca, CaStatus::Unsigned);
        let peer_info = verify_peer_crypt_info(peer_info_signed.as_ref().unwrap(), &peer).unwrap();
        assert_eq!(peer_info.protocol_version, 13);
        let own = check_peer_cert(own_cert.as_ref().unwrap(), DEFAULT_APP_ID, &[]).unwrap();
        assert_eq!(
            own.public_key,
            arr(&k["ed25519_identity_public_hex"]),
            "{name}"
        );

        let eph = EphemeralKeyPair::from_secret_bytes(arr(&k["x25519_ephemeral_private_hex"]));
        assert_eq!(
            eph.public_bytes(),
            arr(&k["x25519_ephemeral_public_hex"]),
            "{name}"
        );
        let shared = eph.agree(&peer_info.public_key).unwrap();
        assert_eq!(shared, arr(&d["x25519_shared_secret_hex"]), "{name} shared");

        let client_nonce = CryptInfo::decode(hs.client_info.as_slice())
            .unwrap()
            .nonce
            .unwrap();
        let server_nonce = CryptInfo::decode(hs.server_info.as_slice())
            .unwrap()
            .nonce
            .unwrap();
        let ks = kdf::derive(&KdfInput {
            shared_secret: &shared,
            client_nonce,
            server_nonce,
            client_connection_id: hs.client_id,
            server_connection_id: hs.server_id,
            server_cert: &hs.server_cert,
            client_cert: &hs.client_cert,
            server_crypt_info: &hs.server_info,
            client_crypt_info: &hs.client_info,
        });
        check_schedule(name, d, &ks);

        let keys = SessionKeys::from_schedule(&ks, role);
        let (c2s, s2c) = match role {
            Role::Client => (&keys.send, &keys.recv),
            Role::Server => (&keys.recv, &keys.send),
        };
        assert_eq!(c2s.key(), &arr(&d["key_c2s_hex"]));
        assert_eq!(s2c.iv(), &arr(&d["iv_s2c_hex"]));
    }
}

#[test]
fn signatures() {
    for (name, v) in support::all() {
        let d = &v["derivation"];
        let k = &v["known_keys"];
        let hs = parse_handshake(&v);
        let id = IdentityKey::from_seed(arr(&k["ed25519_identity_private_seed_hex"]));
        assert_eq!(
            id.public_bytes(),
            arr(&k["ed25519_identity_public_hex"]),
            "{name}"
        );

        let (own_info, own_sig, gns_info, gns_sig, gns_cert) = match known_role(&v) {
            Role::Client => (
                &hs.client_info,
                &hs.client_sig,
                &hs.server_info,
                &hs.server_sig,
                &hs.server_cert,
            ),
            Role::Server => (
                &hs.server_info,
                &hs.server_sig,
                &hs.client_info,
                &hs.client_sig,
                &hs.client_cert,
            ),
        };
        // GNS's signature verifies with the key from its own cert.
        let gns_key = Certificate::decode(gns_cert.as_slice())
            .unwrap()
            .key_data
            .unwrap();
        verify_signature(&gns_key, gns_info, gns_sig).unwrap();
        let mut tampered = gns_info.clone();
        tampered[3] ^= 0x80;
        assert!(verify_signature(&gns_key, &tampered, gns_sig).is_err());

        // Ed25519 is deterministic: re-signing our exact bytes reproduces the signature.
        assert_eq!(id.sign(own_info).to_vec(), *own_sig, "{name}");
        let sig_field = match known_role(&v) {
            Role::Client => "client_crypt_info_signature_hex",
            Role::Server => "server_crypt_info_signature_hex",
        };
        assert_eq!(*own_sig, support::hex(&d[sig_field]));

        // Rebuilding our crypt info from its fields gives the same bytes (prost order 1..5).
        let decoded = CryptInfo::decode(own_info.as_slice()).unwrap();
        let ciphers: Vec<Cipher> = decoded
            .ciphers
            .iter()
            .map(|&c| Cipher::try_from(c).unwrap())
            .collect();
        let rebuilt = cert::crypt_info(
            &decoded.key_data.clone().unwrap().try_into().unwrap(),
            decoded.nonce.unwrap(),
            &ciphers,
        );
        let signed = cert::sign_crypt_info(&rebuilt, &id);
        assert_eq!(signed.info.as_ref(), Some(own_info), "{name}");
        assert_eq!(signed.signature.as_ref(), Some(own_sig), "{name}");
    }
}

#[test]
fn certificates() {
    for (name, v) in support::all() {
        let hs = parse_handshake(&v);
        let (own_cert, gns_cert) = match known_role(&v) {
            Role::Client => (&hs.client_cert, &hs.server_cert),
            Role::Server => (&hs.server_cert, &hs.client_cert),
        };
        // Our builder makes a cert GNS accepted: decode-equal to the known side's.
        let id = IdentityKey::from_seed(arr(&v["known_keys"]["ed25519_identity_private_seed_hex"]));
        let ours = cert::default_self_issued(&id, LOCALHOST_IDENTITY);
        let ours = Certificate::decode(ours.cert.unwrap().as_slice()).unwrap();
        let mut theirs = Certificate::decode(own_cert.as_slice()).unwrap();
        theirs.legacy_identity_binary = None;
        assert_eq!(ours, theirs, "{name}");

        // And byte-exact against GNS's own unsigned cert when given the same fields.
        let g = Certificate::decode(gns_cert.as_slice()).unwrap();
        let mut rebuilt = cert::self_issued_certificate(
            &g.key_data.clone().unwrap().try_into().unwrap(),
            g.identity_string.as_deref(),
            &g.app_ids,
        );
        rebuilt.legacy_identity_binary = g.legacy_identity_binary.clone();
        assert_eq!(
            g.legacy_identity_binary
                .as_ref()
                .map(|l| l.ipv6_and_port.is_some()),
            Some(true)
        );
        assert_eq!(
            cert::certificate_signed(&rebuilt).cert.as_ref(),
            Some(gns_cert),
            "{name}"
        );
    }
}

/// Per-direction ciphers, indexed by the transcript's `aead.key_field`.
fn direction_keys(d: &Value, dg: &Value) -> DirectionKeys {
    let key_field = dg["aead"]["key_field"].as_str().unwrap();
    let iv_field = dg["aead"]["base_iv_field"].as_str().unwrap();
    DirectionKeys::new(arr(&d[key_field]), arr(&d[iv_field]))
}

#[test]
fn packet_numbers_nonces_and_aead() {
    for (name, v) in support::all() {
        let d = &v["derivation"];
        let mut windows = [("c2s", ReplayWindow::new()), ("s2c", ReplayWindow::new())];
        for dg in support::datagrams(&v)
            .iter()
            .filter(|g| g["kind"] == "data")
        {
            let idx = support::int(&dg["index"]);
            let dir = dg["dir"].as_str().unwrap();
            let (_, w) = windows.iter_mut().find(|(n, _)| *n == dir).unwrap();
            let wire = support::int(&dg["header"]["packet_number_wire"]) as u16;
            let pn = w.expand(wire).unwrap();
            assert_eq!(pn, support::int(&dg["packet_number"]), "{name} #{idx}");
            assert_eq!(w.check(pn), ReplayCheck::New);

            let keys = direction_keys(d, dg);
            assert_eq!(
                keys.nonce(pn).to_vec(),
                support::hex(&dg["aead"]["nonce_hex"])
            );
            let bytes = support::hex(&dg["hex"]);
            let header_len = support::int(&dg["header_len"]) as usize;
            let plaintext = support::hex(&dg["plaintext_hex"]);
            let sealed = [
                support::hex(&dg["aead"]["ciphertext_hex"]),
                support::hex(&dg["aead"]["tag_hex"]),
            ]
            .concat();
            assert_eq!(&bytes[header_len..], sealed.as_slice());

            let mut outputs = Vec::new();
            for backend in backends() {
                let c = SessionCipher::new(backend, Cipher::Aes256Gcm, &keys).unwrap();
                let mut buf = bytes.clone();
                assert_eq!(
                    c.open_in_place(pn, &mut buf[header_len..]).unwrap(),
                    plaintext.as_slice()
                );

                let mut out = [&bytes[..header_len], &plaintext].concat();
                c.seal_in_place(pn, &mut out, header_len).unwrap();
                assert_eq!(out, bytes, "{name} #{idx} {backend:?}");
                outputs.push(out);

                for i in header_len..bytes.len() {
                    let mut bad = bytes.clone();
                    bad[i] ^= 0x01;
                    assert_eq!(
                        c.open_in_place(pn, &mut bad[header_len..]),
                        Err(OpenError::Authentication),
                        "{name} #{idx} byte {i}"
                    );
                }
                // The header (and stats blob) is not authenticated.
                let mut hdr = bytes.clone();
                hdr[1] ^= 0xff;
                assert!(c.open_in_place(pn, &mut hdr[header_len..]).is_ok());
                // Wrong packet number → wrong nonce → fails.
                let mut again = bytes.clone();
                assert!(c.open_in_place(pn + 1, &mut again[header_len..]).is_err());
            }
            assert!(outputs.windows(2).all(|o| o[0] == o[1]));
            assert_eq!(
                w.commit(pn),
                sockworks_engine::crypto::CommitOutcome::Recorded
            );
            assert_eq!(w.check(pn), ReplayCheck::Duplicate);
        }
    }
}

#[test]
fn batch_matches_single_on_transcripts() {
    for (name, v) in support::all() {
        let d = &v["derivation"];
        for dir in ["c2s", "s2c"] {
            let data: Vec<&Value> = support::datagrams(&v)
                .iter()
                .filter(|g| g["kind"] == "data" && g["dir"] == dir)
                .collect();
            let keys = direction_keys(d, data[0]);
            for backend in backends() {
                let c = SessionCipher::new(backend, Cipher::Aes256Gcm, &keys).unwrap();
                let mut bufs: Vec<Vec<u8>> = data
                    .iter()
                    .map(|g| {
                        let h = support::int(&g["header_len"]) as usize;
                        [
                            &support::hex(&g["hex"])[..h],
                            &support::hex(&g["plaintext_hex"]),
                        ]
                        .concat()
                    })
                    .collect();
                for b in &mut bufs {
                    b.reserve(TAG_LEN);
                }
                let mut items: Vec<SealItem<'_>> = data
                    .iter()
                    .zip(bufs.iter_mut())
                    .map(|(g, buf)| SealItem {
                        packet_number: support::int(&g["packet_number"]),
                        buf,
                        header_len: support::int(&g["header_len"]) as usize,
                    })
                    .collect();
                c.seal_batch(&mut items).unwrap();
                for (g, b) in data.iter().zip(&bufs) {
                    assert_eq!(*b, support::hex(&g["hex"]), "{name} {dir} {backend:?}");
                }
                let mut opens: Vec<OpenItem<'_>> = data
                    .iter()
                    .zip(bufs.iter_mut())
                    .map(|(g, b)| {
                        let h = support::int(&g["header_len"]) as usize;
                        OpenItem::new(support::int(&g["packet_number"]), &mut b[h..])
                    })
                    .collect();
                assert_eq!(c.open_batch(&mut opens), data.len());
                for (g, o) in data.iter().zip(&opens) {
                    assert_eq!(
                        o.plaintext(),
                        Some(support::hex(&g["plaintext_hex"]).as_slice())
                    );
                }
            }
        }
    }
}
