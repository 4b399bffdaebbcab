//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`). Each feeds arbitrary
//! bytes to one decoder and checks the invariants that must hold for any input: no panic, no
//! out-of-bounds read, and where an encoder exists, decode → encode → decode is stable.
//! [`mod@connection`] is the stateful one: a connected pair on the simulator driven by arbitrary
//! operations. [`mod@p2p`] holds the P2P parsers' targets (signals, STUN, candidate lines).

pub mod connection;
pub mod p2p;

pub use p2p::{ice_candidate, rendezvous_signal, stun};

use std::sync::OnceLock;

use prost::Message;

use crate::crypto::cert::{CaStatus, MIN_PROTOCOL_VERSION, check_peer_cert, read_crypt_info};
use crate::crypto::keys::IdentityKey;
use crate::crypto::negotiate::{cipher_preferences, client_accept_cipher, server_choose_cipher};
use crate::crypto::{AeadBackend, DirectionKeys, PacketCipher, ReplayWindow, SessionCipher};
use crate::wire::control::{decode_certificate, decode_control, decode_crypt_info};
use crate::wire::frame::{FixedRefs, FrameDecoder, PacketEncoder, decode_reliable_header};
use crate::wire::header::DataHeader;
use crate::wire::identity::Identity;
use crate::wire::packet::classify;
use crate::wire::proto::{Certificate, CertificateSigned, Cipher, CryptInfoSigned};
use crate::wire::varint::{MAX_VARINT_LEN, read_varint, write_varint};

/// Lead-byte dispatch.
pub fn packet(data: &[u8]) {
    let _ = classify(data);
}

/// Control messages: anything that decodes re-encodes (unless too large) and decodes equal.
pub fn control(data: &[u8]) {
    if let Ok(msg) = decode_control(data) {
        let _ = msg.validate();
        let mut out = Vec::new();
        if msg.encode(&mut out).is_ok() {
            // invariant: our own encoding of a decoded message always decodes.
            let again = decode_control(&out).expect("re-encoded control message decodes");
            assert_eq!(again, msg);
        }
    }
}

/// Data-packet header: decoded headers re-encode to the same prefix.
pub fn data_header(data: &[u8]) {
    if let Ok((hdr, len)) = DataHeader::decode(data) {
        assert!(len <= data.len());
        let _ = hdr.decode_stats();
        let mut out = Vec::new();
        hdr.encode(&mut out);
        assert_eq!(out.len(), hdr.encoded_len());
    }
}

/// SNP frames: the first 16 bytes pick the references, the rest is the plaintext; every fully
/// decoded packet re-encodes to bytes that decode to the same frames (not always the same
/// bytes: decoders accept non-canonical varints, as GNS's do, and the encoder writes canonical
/// ones).
pub fn frames(data: &[u8]) {
    let (refs_bytes, plaintext) = data.split_at(data.len().min(16));
    let mut r = [0u8; 16];
    r[..refs_bytes.len()].copy_from_slice(refs_bytes);
    let refs = FixedRefs {
        next_packet_number: u64::from(u32::from_le_bytes([r[0], r[1], r[2], r[3]])),
        message_number: u64::from(u32::from_le_bytes([r[4], r[5], r[6], r[7]])),
        stream_pos: u64::from_le_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]),
    };
    let pn = refs.next_packet_number;
    let frames: Result<Vec<_>, _> = FrameDecoder::new(plaintext, pn, &refs).collect();
    if let Ok(frames) = frames {
        let mut out = Vec::with_capacity(plaintext.len());
        let mut enc = PacketEncoder::new(&mut out);
        for f in &frames {
            // invariant: decoded frames carry encodings the encoder accepts.
            enc.frame(f).expect("decoded frame re-encodes");
        }
        assert!(out.len() <= plaintext.len());
        let again: Vec<_> = FrameDecoder::new(&out, pn, &refs).collect();
        let again: Result<Vec<_>, _> = again.into_iter().collect();
        // invariant: our own encoding of decoded frames decodes.
        assert_eq!(again.expect("re-encoded frames decode"), frames);
    }
}

/// Reliable message headers inside the stream.
pub fn reliable_message(data: &[u8]) {
    if let Ok(Some(h)) = decode_reliable_header(data) {
        assert!(h.header_len <= data.len());
    }
}

/// Identity strings.
pub fn identity(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(id) = Identity::parse(s)
    {
        let printed = id.to_string();
        // invariant: what we print, we parse back to the same identity.
        assert_eq!(
            Identity::parse(&printed).expect("printed identity parses"),
            id
        );
    }
}

/// AEAD open of arbitrary ciphertext with both backends: never panics, never authenticates
/// (forging a tag for a fixed key by chance is 2^-128).
pub fn aead_open(data: &[u8]) {
    let keys = DirectionKeys::new([1; 32], [2; 12]);
    for backend in [AeadBackend::Ring, AeadBackend::RustCrypto] {
        if let Ok(c) = SessionCipher::new(backend, Cipher::Aes256Gcm, &keys) {
            let mut buf = data.to_vec();
            assert!(c.open_in_place(3, &mut buf).is_err());
        }
    }
}

/// Replay window fed a sequence of 16-bit wire numbers: never accepts a number twice while the
/// connection lives (a lurch kills the connection, so the run ends there).
pub fn replay(data: &[u8]) {
    let mut w = ReplayWindow::new();
    let mut seen = std::collections::HashSet::new();
    for pair in data.chunks_exact(2) {
        let wire = u16::from_le_bytes([pair[0], pair[1]]);
        let Some(n) = w.expand(wire) else { continue };
        if w.check(n).is_acceptable() {
            assert!(seen.insert(n), "packet {n} accepted twice");
            if let crate::crypto::CommitOutcome::Lurch { .. } = w.commit(n) {
                return;
            }
        }
    }
}

/// Varints: a decoded value re-encodes canonically, no longer than it was read, and decodes
/// back to itself.
pub fn varint(data: &[u8]) {
    if let Ok((v, n)) = read_varint(data) {
        assert!(n >= 1 && n <= data.len() && n <= MAX_VARINT_LEN);
        let mut out = Vec::new();
        write_varint(&mut out, v);
        assert!(
            out.len() <= n,
            "canonical encoding longer than the one read"
        );
        assert_eq!(read_varint(&out), Ok((v, out.len())));
    }
}

/// Peer certificates. The first byte picks the form: odd, the rest is a whole
/// `CertificateSigned` (a CA signature in it is checked against a fixed trusted CA); even, the
/// rest is the inner `Certificate`, unsigned. The low bits of the first byte are our AppID.
/// Checks the certificate and the identity it names: the control-message reader and the
/// checker agree on what decodes, and identities round-trip through their string and legacy
/// binary forms.
pub fn cert(data: &[u8]) {
    static CA: OnceLock<[u8; 32]> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let trusted = [*CA.get_or_init(|| IdentityKey::from_seed([7; 32]).public_bytes())];
    let signed = if mode & 1 == 0 {
        CertificateSigned {
            cert: Some(rest.to_vec()),
            ..CertificateSigned::default()
        }
    } else {
        let Ok(signed) = CertificateSigned::decode(rest) else {
            return;
        };
        signed
    };
    let decoded = decode_certificate(&signed).ok();
    match check_peer_cert(&signed, u32::from(mode >> 1) & 3, &trusted) {
        Ok(peer) => {
            assert_eq!(decoded.as_ref(), Some(&peer.cert));
            if signed.ca_signature.is_none() {
                assert_eq!(peer.ca, CaStatus::Unsigned);
            }
            identity_of(&peer.cert);
        }
        Err(_) => {
            if let Some(c) = decoded {
                identity_of(&c);
            }
        }
    }
}

/// The identity a certificate names: what parses prints and parses back equal.
fn identity_of(c: &Certificate) {
    if let Ok(id) = Identity::from_wire(
        c.identity_string.as_deref(),
        c.legacy_identity_binary.as_ref(),
        c.legacy_steam_id,
    ) {
        let printed = id.to_string();
        assert_eq!(
            Identity::parse(&printed).expect("printed identity parses"),
            id
        );
        if let Ok(legacy) = id.to_legacy_binary() {
            assert_eq!(
                Identity::from_legacy_binary(&legacy).expect("legacy form reads back"),
                id
            );
        }
    }
}

/// Signed crypt infos: the bytes are the `CryptInfo` protobuf as it stands behind a valid
/// signature (the signature itself is fixed-size work, left to the unit tests); then the
/// cipher negotiation on the offered list. What passes the checks also decodes for the
/// control-message reader.
pub fn crypt_info(data: &[u8]) {
    let signed = CryptInfoSigned {
        info: Some(data.to_vec()),
        signature: None,
    };
    let decoded = decode_crypt_info(&signed);
    if let Ok(info) = read_crypt_info(data) {
        assert!(
            decoded.is_ok(),
            "crypt info that passes the checks does not decode"
        );
        assert!(info.protocol_version >= MIN_PROTOCOL_VERSION);
        for unencrypted in 0..=3 {
            let local = cipher_preferences(unencrypted).expect("0..=3 are valid");
            if let Ok(chosen) = server_choose_cipher(local, &info.ciphers) {
                assert!(local.contains(&chosen));
                // invariant: the client accepts the single cipher a server chose from its list.
                let reply = [chosen as i32];
                assert_eq!(client_accept_cipher(local, &reply), Ok(chosen));
            }
            let _ = client_accept_cipher(local, &info.ciphers);
        }
    }
}

/// The stateful target (see [`mod@connection`]).
pub fn connection(data: &[u8]) {
    connection::run_bytes(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry point on a few fixed inputs, so the fuzz harness code is exercised by
    /// `cargo test --all-features` even where cargo-fuzz is not installed.
    #[test]
    fn entry_points_accept_edge_inputs() {
        let inputs: [&[u8]; 6] = [
            &[],
            &[0x80, 1, 0, 0, 0, 2, 0],
            &[0x20, 0x10, 0x00, 0x0d, 1, 2, 3, 4],
            &[0x24; 600],
            b"ip:::1",
            &[0x98, 1, 0, 0xff, 0xff, 0x50, 0, 0, 0, 0, 0, 0, 1, b'x'],
        ];
        for data in inputs {
            packet(data);
            control(data);
            data_header(data);
            frames(data);
            reliable_message(data);
            identity(data);
            aead_open(data);
            replay(data);
            varint(data);
            cert(data);
            crypt_info(data);
        }
    }
}
