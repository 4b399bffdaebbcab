//! The GNS session key schedule, exactly as spec §3.4 describes (verified against captures).
//!
//! It is HKDF-SHA256 with one twist: the extract step uses the **premaster as the HMAC key** and
//! the nonces as the message (RFC 5869 has them the other way round). Getting that backwards
//! yields keys that silently fail every GCM tag, so every intermediate is exposed for tests.
//! GNS: `CSteamNetworkConnectionBase::FinishCryptoHandshake`.

use std::fmt;

use ring::{digest, hmac};

use super::aead::{IV_LEN, KEY_LEN};

/// ASCII label between the connection IDs and the certificates in the HKDF info.
pub const INFO_LABEL: &[u8] = b"Steam datagram";

/// Everything the key schedule consumes. Byte strings are exactly as transmitted (the
/// `CertificateSigned.cert` and `CryptInfoSigned.info` fields), never re-encoded.
#[derive(Clone, Copy)]
pub struct KdfInput<'a> {
    /// Raw 32-byte X25519 output.
    pub shared_secret: &'a [u8; 32],
    /// `nonce` of the client's crypt info.
    pub client_nonce: u64,
    /// `nonce` of the server's crypt info.
    pub server_nonce: u64,
    /// Client's connection ID.
    pub client_connection_id: u32,
    /// Server's connection ID.
    pub server_connection_id: u32,
    /// Server's `CertificateSigned.cert` bytes.
    pub server_cert: &'a [u8],
    /// Client's `CertificateSigned.cert` bytes.
    pub client_cert: &'a [u8],
    /// Server's `CryptInfoSigned.info` bytes.
    pub server_crypt_info: &'a [u8],
    /// Client's `CryptInfoSigned.info` bytes.
    pub client_crypt_info: &'a [u8],
}

impl fmt::Debug for KdfInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KdfInput")
            .field("client_connection_id", &self.client_connection_id)
            .field("server_connection_id", &self.server_connection_id)
            .finish_non_exhaustive()
    }
}

/// All intermediates and outputs of the schedule; the getters name what each block is for.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySchedule {
    /// SHA-256 of the X25519 shared secret.
    pub premaster: [u8; 32],
    /// `server_nonce` LE ‖ `client_nonce` LE.
    pub salt: [u8; 16],
    /// HMAC-SHA256(key = premaster, message = salt).
    pub prk: [u8; 32],
    /// HKDF-Expand blocks T(1)..T(4).
    pub t: [[u8; 32]; 4],
}

impl fmt::Debug for KeySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySchedule { .. }")
    }
}

impl KeySchedule {
    /// T(1): AES key client→server.
    pub fn key_c2s(&self) -> &[u8; KEY_LEN] {
        &self.t[0]
    }

    /// T(2): AES key server→client.
    pub fn key_s2c(&self) -> &[u8; KEY_LEN] {
        &self.t[1]
    }

    /// T(3)[..12]: base IV client→server.
    pub fn iv_c2s(&self) -> &[u8; IV_LEN] {
        first_12(&self.t[2])
    }

    /// T(4)[..12]: base IV server→client.
    pub fn iv_s2c(&self) -> &[u8; IV_LEN] {
        first_12(&self.t[3])
    }
}

fn first_12(block: &[u8; 32]) -> &[u8; IV_LEN] {
    // invariant: 12 <= 32.
    block
        .first_chunk::<IV_LEN>()
        .expect("IV is a prefix of a 32-byte block")
}

/// SHA-256 of a byte string.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// `server_nonce` LE ‖ `client_nonce` LE.
pub fn salt(server_nonce: u64, client_nonce: u64) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&server_nonce.to_le_bytes());
    s[8..].copy_from_slice(&client_nonce.to_le_bytes());
    s
}

/// The HKDF info string: client ID LE ‖ server ID LE ‖ "Steam datagram" ‖ server cert ‖ client
/// cert ‖ server crypt info ‖ client crypt info.
pub fn hkdf_info(input: &KdfInput<'_>) -> Vec<u8> {
    let parts: [&[u8]; 5] = [
        INFO_LABEL,
        input.server_cert,
        input.client_cert,
        input.server_crypt_info,
        input.client_crypt_info,
    ];
    let mut info = Vec::with_capacity(8 + parts.iter().map(|p| p.len()).sum::<usize>());
    info.extend_from_slice(&input.client_connection_id.to_le_bytes());
    info.extend_from_slice(&input.server_connection_id.to_le_bytes());
    for p in parts {
        info.extend_from_slice(p);
    }
    info
}

/// Runs the whole schedule.
pub fn derive(input: &KdfInput<'_>) -> KeySchedule {
    let premaster = sha256(input.shared_secret);
    let salt = salt(input.server_nonce, input.client_nonce);
    // Non-standard extract: premaster is the key, salt the message.
    let prk = hmac_sha256(&premaster, &[&salt]);
    let info = hkdf_info(input);
    let t = expand(&prk, &info);
    KeySchedule {
        premaster,
        salt,
        prk,
        t,
    }
}

/// Standard HKDF-Expand for four blocks: T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
pub fn expand(prk: &[u8; 32], info: &[u8]) -> [[u8; 32]; 4] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, prk);
    let mut t = [[0u8; 32]; 4];
    let mut prev: &[u8] = &[];
    for (i, block) in t.iter_mut().enumerate() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(prev);
        ctx.update(info);
        // invariant: i < 4, so i + 1 fits in a byte.
        ctx.update(&[u8::try_from(i + 1).expect("four blocks")]);
        block.copy_from_slice(ctx.sign().as_ref());
        prev = block;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn rfc4231_case_1_and_2() {
        let mac = hmac_sha256(&[0x0b; 20], &[b"Hi ", b"There"]);
        assert_eq!(
            mac.to_vec(),
            h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac.to_vec(),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn rfc5869_expand_case_1() {
        // RFC 5869 A.1: standard expand half (our extract differs on purpose).
        let prk: [u8; 32] = h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
            .try_into()
            .unwrap();
        let info = h("f0f1f2f3f4f5f6f7f8f9");
        let t = expand(&prk, &info);
        let okm = h(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        );
        assert_eq!(&t[0][..], &okm[..32]);
        assert_eq!(&t[1][..10], &okm[32..]);
    }

    #[test]
    fn sha256_fips180_abc() {
        assert_eq!(
            sha256(b"abc").to_vec(),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn extract_uses_premaster_as_key() {
        let shared = [7u8; 32];
        let input = KdfInput {
            shared_secret: &shared,
            client_nonce: 1,
            server_nonce: 2,
            client_connection_id: 3,
            server_connection_id: 4,
            server_cert: b"sc",
            client_cert: b"cc",
            server_crypt_info: b"si",
            client_crypt_info: b"ci",
        };
        let ks = derive(&input);
        assert_eq!(ks.prk, hmac_sha256(&ks.premaster, &[&ks.salt]));
        assert_ne!(ks.prk, hmac_sha256(&ks.salt, &[&ks.premaster]));
        assert_eq!(&ks.salt[..8], &2u64.to_le_bytes());
        assert_eq!(
            hkdf_info(&input),
            b"\x03\0\0\0\x04\0\0\0Steam datagramscccsici".to_vec()
        );
        assert_eq!(ks.iv_s2c(), &ks.t[3][..12]);
        assert_eq!(format!("{ks:?}"), "KeySchedule { .. }");
    }
}
