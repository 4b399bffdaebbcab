//! Control messages, data-packet headers and identities against the GNS transcripts: every
//! control datagram is classified, decoded and compared field by field (nested crypt info and
//! certificates too); every datagram GNS sent is rebuilt from the transcript's decoded fields
//! with our encoder and must match byte for byte; every data header is decoded and re-encoded.

use std::cell::RefCell;
use std::collections::BTreeSet;

use prost::Message;
use serde_json::Value;
use sockworks_engine::wire::control::{
    ControlMessage, PADDED_HEADER_LEN, decode_certificate, decode_control, decode_crypt_info,
    split_control,
};
use sockworks_engine::wire::header::DataHeader;
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::packet::{ControlKind, PacketKind, classify};
use sockworks_engine::wire::proto;
use sockworks_engine::wire::varint::read_varint;

use crate::support;

/// A JSON object whose keys must all be read, so no transcript field goes unchecked.
struct Fields<'a> {
    v: &'a Value,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value) -> Self {
        assert!(v.is_object(), "not an object: {v}");
        let used = RefCell::new(BTreeSet::from(["field_order".to_owned()]));
        Self { v, used }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(key.to_owned());
        self.v.get(key)
    }

    fn u32(&self, key: &str) -> Option<u32> {
        self.get(key)
            .map(|v| u32::try_from(support::int(v)).unwrap())
    }

    fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).map(support::u64_str)
    }

    fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key).map(support::hex)
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| v.as_str().unwrap().to_owned())
    }

    fn u32s(&self, key: &str) -> Vec<u32> {
        self.get(key).map_or_else(Vec::new, |v| {
            let items = v.as_array().unwrap();
            items
                .iter()
                .map(|x| u32::try_from(support::int(x)).unwrap())
                .collect()
        })
    }

    fn i32s(&self, key: &str) -> Vec<i32> {
        self.u32s(key).into_iter().map(|x| x as i32).collect()
    }

    fn i32(&self, key: &str) -> Option<i32> {
        self.u32(key).map(|x| x as i32)
    }
}

impl Drop for Fields<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let used = self.used.borrow();
        for key in self.v.as_object().unwrap().keys() {
            assert!(
                used.contains(key),
                "transcript field {key} not checked in {}",
                self.v
            );
        }
    }
}

/// Field numbers of a protobuf in wire order (a minimal walker, independent of prost).
fn field_order(mut buf: &[u8]) -> Vec<u64> {
    let mut order = Vec::new();
    while !buf.is_empty() {
        let (key, n) = read_varint(buf).unwrap();
        buf = &buf[n..];
        let skip = match key & 7 {
            0 => read_varint(buf).unwrap().1,
            1 => 8,
            2 => {
                let (len, n) = read_varint(buf).unwrap();
                n + len as usize
            }
            5 => 4,
            t => panic!("wire type {t}"),
        };
        buf = &buf[skip..];
        order.push(key >> 3);
    }
    order
}

/// Checks a nested message against its raw bytes: it decodes to `msg`, its wire order is the
/// transcript's `field_order`, and, where the sender wrote fields in ascending order (GNS
/// always does), our encoding reproduces the bytes exactly.
fn check_nested<M: Message + Default + PartialEq + std::fmt::Debug>(
    msg: &M,
    raw: &[u8],
    decoded: &Value,
) {
    assert_eq!(&M::decode(raw).unwrap(), msg);
    let order: Vec<u64> = decoded["field_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(support::int)
        .collect();
    assert_eq!(field_order(raw), order);
    if order.is_sorted() {
        assert_eq!(msg.encode_to_vec(), raw, "re-encoding {msg:?}");
    }
}

/// `{"bytes_hex": ..., "decoded": {...}}` → (bytes, decoded).
fn nested(v: &Value) -> (Vec<u8>, &Value) {
    (support::hex(&v["bytes_hex"]), &v["decoded"])
}

fn legacy_identity(v: &Value) -> proto::IdentityLegacyBinary {
    let (raw, dec) = nested(v);
    let f = Fields::new(dec);
    let m = proto::IdentityLegacyBinary {
        generic_bytes: f.bytes("generic_bytes"),
        generic_string: f.string("generic_string"),
        ipv6_and_port: f.bytes("ipv6_and_port"),
        steam_id: f.u64("steam_id"),
    };
    check_nested(&m, &raw, dec);
    m
}

fn crypt_signed(v: &Value) -> proto::CryptInfoSigned {
    let (raw, dec) = nested(v);
    let f = Fields::new(dec);
    let (info_raw, info_dec) = nested(f.get("info").unwrap());
    let fi = Fields::new(info_dec);
    let info = proto::CryptInfo {
        key_type: fi.i32("key_type"),
        key_data: fi.bytes("key_data"),
        nonce: fi.u64("nonce"),
        protocol_version: fi.u32("protocol_version"),
        ciphers: fi.i32s("ciphers"),
    };
    check_nested(&info, &info_raw, info_dec);
    let m = proto::CryptInfoSigned {
        info: Some(info_raw),
        signature: f.bytes("signature"),
    };
    assert_eq!(decode_crypt_info(&m).unwrap(), info);
    check_nested(&m, &raw, dec);
    m
}

fn cert_signed(v: &Value) -> proto::CertificateSigned {
    let (raw, dec) = nested(v);
    let f = Fields::new(dec);
    let (cert_raw, cert_dec) = nested(f.get("cert").unwrap());
    let fc = Fields::new(cert_dec);
    let cert = proto::Certificate {
        key_type: fc.i32("key_type"),
        key_data: fc.bytes("key_data"),
        legacy_steam_id: fc.u64("legacy_steam_id"),
        gameserver_datacenter_ids: fc.u32s("gameserver_datacenter_ids"),
        time_created: fc.u32("time_created"),
        time_expiry: fc.u32("time_expiry"),
        app_ids: fc.u32s("app_ids"),
        legacy_identity_binary: fc.get("legacy_identity_binary").map(legacy_identity),
        identity_string: fc.string("identity_string"),
        ip_addresses: fc.get("ip_addresses").map_or_else(Vec::new, |v| {
            let items = v.as_array().unwrap();
            items
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        }),
    };
    check_nested(&cert, &cert_raw, cert_dec);
    let m = proto::CertificateSigned {
        private_key_data: f.bytes("private_key_data"),
        cert: Some(cert_raw),
        ca_key_id: f.u64("ca_key_id"),
        ca_signature: f.bytes("ca_signature"),
    };
    assert_eq!(decode_certificate(&m).unwrap(), cert);
    check_nested(&m, &raw, dec);
    m
}

/// Builds the message a transcript datagram's `fields` describe.
fn build(kind: ControlKind, fields: &Value) -> ControlMessage {
    let f = Fields::new(fields);
    match kind {
        ControlKind::ChallengeRequest => proto::ChallengeRequest {
            connection_id: f.u32("connection_id"),
            my_timestamp: f.u64("my_timestamp"),
            protocol_version: f.u32("protocol_version"),
        }
        .into(),
        ControlKind::ChallengeReply => proto::ChallengeReply {
            connection_id: f.u32("connection_id"),
            challenge: f.u64("challenge"),
            your_timestamp: f.u64("your_timestamp"),
            protocol_version: f.u32("protocol_version"),
        }
        .into(),
        ControlKind::ConnectRequest => proto::ConnectRequest {
            client_connection_id: f.u32("client_connection_id"),
            challenge: f.u64("challenge"),
            legacy_client_steam_id: f.u64("legacy_client_steam_id"),
            cert: f.get("cert").map(cert_signed),
            my_timestamp: f.u64("my_timestamp"),
            ping_est_ms: f.u32("ping_est_ms"),
            crypt: f.get("crypt").map(crypt_signed),
            legacy_protocol_version: f.u32("legacy_protocol_version"),
            legacy_identity_binary: f.get("legacy_identity_binary").map(legacy_identity),
            identity_string: f.string("identity_string"),
        }
        .into(),
        ControlKind::ConnectOk => proto::ConnectOk {
            client_connection_id: f.u32("client_connection_id"),
            legacy_server_steam_id: f.u64("legacy_server_steam_id"),
            your_timestamp: f.u64("your_timestamp"),
            delay_time_usec: f.u32("delay_time_usec"),
            server_connection_id: f.u32("server_connection_id"),
            crypt: f.get("crypt").map(crypt_signed),
            cert: f.get("cert").map(cert_signed),
            legacy_identity_binary: f.get("legacy_identity_binary").map(legacy_identity),
            identity_string: f.string("identity_string"),
        }
        .into(),
        ControlKind::ConnectionClosed => proto::ConnectionClosed {
            debug: f.string("debug"),
            reason_code: f.u32("reason_code"),
            to_connection_id: f.u32("to_connection_id"),
            from_connection_id: f.u32("from_connection_id"),
        }
        .into(),
        ControlKind::NoConnection => proto::NoConnection {
            from_connection_id: f.u32("from_connection_id"),
            to_connection_id: f.u32("to_connection_id"),
        }
        .into(),
    }
}

#[test]
fn control_datagrams_decode_and_gns_ones_rebuild() {
    let mut seen = BTreeSet::new();
    let mut rebuilt = 0;
    for (file, t) in support::all() {
        for d in support::datagrams(&t) {
            if d["kind"] == "data" {
                continue;
            }
            let ctx = format!("{file} #{}", d["index"]);
            let bytes = support::hex(&d["hex"]);
            assert_eq!(bytes.len() as u64, support::int(&d["len"]), "{ctx}");
            let lead = u8::try_from(support::int(&d["msg_type"])).unwrap();
            let kind = ControlKind::from_lead_byte(lead).unwrap();
            assert_eq!(
                format!("{kind:?}").to_lowercase(),
                d["kind"].as_str().unwrap().to_lowercase()
            );
            assert_eq!(classify(&bytes), Ok(PacketKind::Control(kind)), "{ctx}");
            assert_eq!(kind.is_padded(), d["padded"].as_bool().unwrap(), "{ctx}");

            let (split_kind, body) = split_control(&bytes).unwrap();
            assert_eq!(split_kind, kind);
            assert_eq!(body, support::hex(&d["protobuf_hex"]), "{ctx}");
            if kind.is_padded() {
                assert_eq!(body.len() as u64, support::int(&d["protobuf_len"]), "{ctx}");
                let padding = &bytes[PADDED_HEADER_LEN + body.len()..];
                assert_eq!(padding.len() as u64, support::int(&d["padding_zero_bytes"]));
                assert!(padding.iter().all(|&b| b == 0), "{ctx}");
            }

            let msg = decode_control(&bytes).unwrap();
            assert_eq!(msg.kind(), kind);
            msg.validate().unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let built = build(kind, &d["fields"]);
            assert_eq!(msg, built, "{ctx}");
            check_nested_order(body, &d["fields"], &ctx);

            if d["sender"] == "gns" {
                let mut out = Vec::new();
                assert_eq!(built.encode(&mut out), Ok(bytes.len()), "{ctx}");
                assert_eq!(
                    hex::encode(&out),
                    hex::encode(&bytes),
                    "{ctx}: rebuilt bytes"
                );
                rebuilt += 1;
            }
            seen.insert(lead);
        }
    }
    assert_eq!(seen.len(), 6, "every control kind occurs");
    assert_eq!(rebuilt, 7);
}

fn check_nested_order(body: &[u8], fields: &Value, ctx: &str) {
    let order: Vec<u64> = fields["field_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(support::int)
        .collect();
    assert_eq!(field_order(body), order, "{ctx}");
}

#[test]
fn data_headers() {
    let mut with_stats = 0;
    for (file, t) in support::all() {
        for d in support::datagrams(&t) {
            if d["kind"] != "data" {
                continue;
            }
            let ctx = format!("{file} #{}", d["index"]);
            let bytes = support::hex(&d["hex"]);
            assert_eq!(classify(&bytes), Ok(PacketKind::Data), "{ctx}");
            let (h, offset) = DataHeader::decode(&bytes).unwrap();
            let f = Fields::new(&d["header"]);
            assert_eq!(
                u64::from(h.flags()),
                support::int(f.get("flags").unwrap()),
                "{ctx}"
            );
            assert_eq!(Some(h.to_connection_id), f.u32("to_connection_id"), "{ctx}");
            assert_eq!(
                Some(u32::from(h.packet_number)),
                f.u32("packet_number_wire")
            );
            assert_eq!(
                h.stats_blob.is_some(),
                f.get("has_stats_blob").unwrap().as_bool().unwrap()
            );
            let tsp = f.get("has_time_since_prev").unwrap().as_bool().unwrap();
            assert_eq!(h.time_since_prev.is_some(), tsp, "{ctx}");
            assert_eq!(offset as u64, support::int(&d["header_len"]), "{ctx}");
            assert_eq!(
                h.stats_blob.map(<[u8]>::len),
                f.u32("stats_blob_len").map(|n| n as usize)
            );
            assert_eq!(
                h.stats_blob.map(<[u8]>::to_vec),
                f.bytes("stats_blob_hex"),
                "{ctx}"
            );
            match f.get("stats") {
                Some(stats) => {
                    let fs = Fields::new(stats);
                    let decoded = h.decode_stats().unwrap().unwrap();
                    assert_eq!(decoded.flags, fs.u32("flags"), "{ctx}");
                    assert_eq!(decoded.stats, None, "{ctx}");
                    check_nested(&decoded, h.stats_blob.unwrap(), stats);
                    with_stats += 1;
                }
                None => assert_eq!(h.decode_stats(), None),
            }
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(out, bytes[..offset], "{ctx}: re-encoded header");
            let tag = support::hex(&d["aead"]["tag_hex"]);
            let ct = support::hex(&d["aead"]["ciphertext_hex"]);
            assert_eq!([&ct[..], &tag[..]].concat(), bytes[offset..], "{ctx}");
        }
    }
    assert_eq!(with_stats, 1);
}

#[test]
fn transcript_identities_round_trip() {
    for (_, t) in support::all() {
        let req = decode_control(&support::hex(
            &support::first_of_kind(&t, "ConnectRequest")["hex"],
        ));
        let ok = decode_control(&support::hex(
            &support::first_of_kind(&t, "ConnectOK")["hex"],
        ));
        let certs = match (req.unwrap(), ok.unwrap()) {
            (ControlMessage::ConnectRequest(r), ControlMessage::ConnectOk(o)) => {
                [r.cert.unwrap(), o.cert.unwrap()]
            }
            other => panic!("unexpected {other:?}"),
        };
        for signed in certs {
            let cert = decode_certificate(&signed).unwrap();
            let s = cert.identity_string.as_deref().unwrap();
            assert_eq!(s, "ip:::1");
            let id = Identity::parse(s).unwrap();
            assert_eq!(id, Identity::localhost());
            assert_eq!(id.to_string(), s);
            let from_wire = Identity::from_wire(
                cert.identity_string.as_deref(),
                cert.legacy_identity_binary.as_ref(),
                cert.legacy_steam_id,
            );
            assert_eq!(from_wire, Ok(id.clone()));
            if let Some(legacy) = &cert.legacy_identity_binary {
                // GNS's form for ::1: 16-byte address then port 0, big-endian.
                assert_eq!(Identity::from_legacy_binary(legacy), Ok(id.clone()));
                assert_eq!(&id.to_legacy_binary().unwrap(), legacy);
            }
        }
    }
}
