//! GNS's text formats for keys and certificates (spec §2.9), so files made by GNS's certtool,
//! `ssh-keygen` and our own tools are interchangeable:
//!
//! - OpenSSH Ed25519 private keys (`-----BEGIN OPENSSH PRIVATE KEY-----`), written as GNS
//!   writes them (no comment, no padding, check words `0x12345678`, CRLF lines), read as GNS
//!   reads them (also `ssh-keygen`'s output; encrypted keys refused);
//! - `ssh-ed25519 AAAA… [comment]` public keys (`authorized_keys` lines);
//! - `-----BEGIN STEAMDATAGRAM CERT-----` blocks: base64 of `CMsgSteamDatagramCertificateSigned`;
//! - `-----BEGIN SOCKWORKS CERT REQUEST-----` blocks for `CMsgSteamDatagramCertificateRequest`.
//!   GNS has no text form for requests (`GetCertificateRequest` returns bytes); the name does not
//!   start with `STEAMDATAGRAM CERT`, because GNS matches block types by prefix and would
//!   otherwise take a request for a certificate.
//!
//! Locating and decoding follow GNS's `CCrypto::LocatePEMBody` and `Base64Decode` (lenient
//! dashes, case-insensitive `BEGIN`/type prefix, whitespace skipped, `=` ends the data).

use prost::Message;

use super::keys::{IdentityKey, PUBLIC_KEY_LEN};
use crate::wire::proto::{CertificateRequest, CertificateSigned};

/// Block type of an OpenSSH private key.
pub const PRIVATE_KEY_PEM_TYPE: &str = "OPENSSH PRIVATE KEY";
/// Block type of a signed certificate (GNS's certtool and `SetCertificateAndPrivateKey`).
pub const CERT_PEM_TYPE: &str = "STEAMDATAGRAM CERT";
/// Block type of a certificate request (ours: GNS has none).
pub const CERT_REQUEST_PEM_TYPE: &str = "SOCKWORKS CERT REQUEST";

/// GNS breaks base64 every 18 groups of 4 characters.
const LINE_CHARS: usize = 72;
const BASE64_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// `openssh-key-v1` and its NUL.
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";
const SSH_ED25519: &[u8] = b"ssh-ed25519";
/// GNS's fixed check words (they only matter for encrypted keys).
const OPENSSH_CHECK: u32 = 0x1234_5678;

/// Why a text block, key or certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN <type>-----` … `-----END <type>-----` block of the expected type.
    #[error("no {0} block found")]
    NoBlock(&'static str),
    /// The body holds a character that is neither base64 nor whitespace.
    #[error("invalid base64 character {0:?}")]
    Base64(char),
    /// Not `openssh-key-v1`.
    #[error("not an OpenSSH private key")]
    NotOpenSsh,
    /// The key is passphrase-protected; GNS (and we) only read unencrypted keys.
    #[error("encrypted OpenSSH private keys are not supported")]
    Encrypted,
    /// The OpenSSH file holds more or fewer than one key.
    #[error("OpenSSH private key file must hold exactly one key")]
    KeyCount,
    /// The key is not Ed25519, or a length field is wrong or runs past the end.
    #[error("malformed or non-Ed25519 OpenSSH key")]
    Malformed,
    /// Check words differ (a wrong passphrase or corrupt file).
    #[error("OpenSSH check words differ")]
    CheckMismatch,
    /// The copies of the public key in the file, or the secret and the public key, disagree.
    #[error("OpenSSH private key's public key copies disagree")]
    KeyMismatch,
    /// Not `ssh-ed25519 AAAA…`.
    #[error("not an ssh-ed25519 public key line")]
    NotPublicKey,
    /// The protobuf inside a certificate or request block does not decode.
    #[error("{0} does not decode")]
    Protobuf(&'static str),
    /// A certificate block without the certificate bytes (GNS: "No cert data").
    #[error("certificate block has no cert data")]
    NoCertData,
}

/// Base64 as GNS writes it: padded, `line_break` after every 72 characters and at the end (no
/// line breaks at all when `line_break` is empty).
pub fn base64_encode(data: &[u8], line_break: &str) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 8 + data.len() / 54 * 2);
    let mut since_break = 0;
    for chunk in data.chunks(3) {
        if !line_break.is_empty() && since_break == LINE_CHARS {
            out.push_str(line_break);
            since_break = 0;
        }
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            let c = if i <= chunk.len() {
                BASE64_CHARS[(n >> shift & 63) as usize] as char
            } else {
                '='
            };
            out.push(c);
        }
        since_break += 4;
    }
    out.push_str(line_break);
    out
}

/// Base64 as GNS reads it: `\r \n \t` and space are skipped, `=` or NUL ends the data, any
/// other non-alphabet character fails, and a partial final group yields its whole bytes.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, PemError> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        let v = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' => 62,
            '/' => 63,
            '=' | '\0' => break,
            '\r' | '\n' | '\t' | ' ' => continue,
            other => return Err(PemError::Base64(other)),
        };
        acc = (acc << 6 | v) & 0xff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// The base64 body of a block of `pem_type` that starts `text` (after whitespace), by GNS's
/// rules: any number of dashes, `BEGIN`/`END` and the type case-insensitive, the type matched
/// as a prefix of the header's, anything after the footer ignored.
pub fn locate_pem_body<'a>(text: &'a str, pem_type: &str) -> Option<&'a str> {
    let after_header = header_end(text, "BEGIN", pem_type)?;
    let body_len = text[after_header..].find('-')?;
    let body = &text[after_header..after_header + body_len];
    header_end(&text[after_header + body_len..], "END", pem_type)?;
    Some(body)
}

/// Like [`locate_pem_body`], but the block may start on any line (files with comments or
/// several blocks, e.g. a certificate followed by its private key).
pub fn find_pem_body<'a>(text: &'a str, pem_type: &str) -> Option<&'a str> {
    let mut start = 0;
    loop {
        if let Some(body) = locate_pem_body(&text[start..], pem_type) {
            return Some(body);
        }
        start += text[start..].find('\n')? + 1;
    }
}

/// Skips one header or footer line (`-----BEGIN TYPE-----`) and the whitespace after it;
/// returns the offset just past it.
fn header_end(text: &str, word: &str, pem_type: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = b.iter().position(|c| !c.is_ascii_whitespace())?;
    if b[i] != b'-' {
        return None;
    }
    while b.get(i) == Some(&b'-') {
        i += 1;
    }
    i += b[i..]
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    // GNS wants something after the word, hence `>` rather than `>=`.
    if b.len() <= i + word.len() || !b[i..i + word.len()].eq_ignore_ascii_case(word.as_bytes()) {
        return None;
    }
    i += word.len();
    i += b[i..]
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    let type_start = i;
    let type_len = b[i..]
        .iter()
        .position(|c| matches!(c, b'-' | b'\r' | b'\n' | b'\0'))?;
    if b[i + type_len] != b'-' {
        return None;
    }
    let found = &b[type_start..type_start + type_len];
    if found.len() < pem_type.len()
        || !found[..pem_type.len()].eq_ignore_ascii_case(pem_type.as_bytes())
    {
        return None;
    }
    i += type_len;
    while b.get(i) == Some(&b'-') {
        i += 1;
    }
    i += b[i..]
        .iter()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    Some(i)
}

/// Finds a block of `pem_type` anywhere in `text` ([`find_pem_body`]) and decodes its body.
pub fn decode_pem(text: &str, pem_type: &'static str) -> Result<Vec<u8>, PemError> {
    base64_decode(find_pem_body(text, pem_type).ok_or(PemError::NoBlock(pem_type))?)
}

/// A block as GNS's writers lay it out: header, base64 broken with `line_break` every 72
/// characters and at the end, footer. GNS's keys use CRLF; its certtool's certificates use LF
/// and put an extra line break before the footer, which we reproduce.
fn encode_pem(pem_type: &str, data: &[u8], line_break: &str, blank_before_footer: bool) -> String {
    let mut out = format!("-----BEGIN {pem_type}-----{line_break}");
    out.push_str(&base64_encode(data, line_break));
    if blank_before_footer {
        out.push_str(line_break);
    }
    out.push_str(&format!("-----END {pem_type}-----{line_break}"));
    out
}

/// A 32-bit big-endian length-prefixed OpenSSH string.
fn put_string(buf: &mut Vec<u8>, data: &[u8]) {
    // invariant: every field we write is a few dozen bytes.
    buf.extend_from_slice(
        &u32::try_from(data.len())
            .expect("short field")
            .to_be_bytes(),
    );
    buf.extend_from_slice(data);
}

/// `string("ssh-ed25519") string(pub32)`: the OpenSSH public key blob.
fn public_blob(public_key: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, SSH_ED25519);
    put_string(&mut blob, public_key);
    blob
}

/// An Ed25519 private key in GNS's OpenSSH form (`OpenSSHBinaryWriteEd25519Private`): no
/// comment, no padding. GNS reads it; OpenSSH does not (see [`write_openssh_private_key_padded`]).
pub fn write_openssh_private_key(seed: &[u8; 32]) -> String {
    openssh_private_key(seed, None)
}

/// The key as `ssh-keygen` writes it (comment, padding to 8 bytes, LF lines): both OpenSSH and
/// GNS read this form, OpenSSH does not read GNS's own.
pub fn write_openssh_private_key_padded(seed: &[u8; 32], comment: &str) -> String {
    openssh_private_key(seed, Some(comment))
}

/// `comment: None` is GNS's layout, `Some` OpenSSH's.
fn openssh_private_key(seed: &[u8; 32], comment: Option<&str>) -> String {
    let public = IdentityKey::from_seed(*seed).public_bytes();
    let mut private = Vec::with_capacity(128);
    private.extend_from_slice(&OPENSSH_CHECK.to_be_bytes());
    private.extend_from_slice(&OPENSSH_CHECK.to_be_bytes());
    private.extend_from_slice(&public_blob(&public));
    let mut secret = seed.to_vec();
    secret.extend_from_slice(&public);
    put_string(&mut private, &secret);
    if let Some(comment) = comment {
        put_string(&mut private, comment.as_bytes());
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
    }
    let mut body = OPENSSH_MAGIC.to_vec();
    put_string(&mut body, b"none");
    put_string(&mut body, b"none");
    put_string(&mut body, b"");
    body.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut body, &public_blob(&public));
    put_string(&mut body, &private);
    match comment {
        None => encode_pem(PRIVATE_KEY_PEM_TYPE, &body, "\r\n", false),
        Some(_) => encode_pem(PRIVATE_KEY_PEM_TYPE, &body, "\n", false),
    }
}

/// Reads an unencrypted OpenSSH Ed25519 private key; returns its 32-byte seed. As GNS: both
/// check words equal, all three public key copies equal, anything after the secret ignored.
/// Stricter than GNS: the public key must also be the one the seed derives.
pub fn read_openssh_private_key(text: &str) -> Result<[u8; 32], PemError> {
    let body = decode_pem(text, PRIVATE_KEY_PEM_TYPE)?;
    let mut r = Reader(&body);
    if r.take(OPENSSH_MAGIC.len())? != OPENSSH_MAGIC {
        return Err(PemError::NotOpenSsh);
    }
    let (cipher, kdf, kdf_options) = (r.string()?, r.string()?, r.string()?);
    if cipher != b"none" || kdf != b"none" || !kdf_options.is_empty() {
        return Err(PemError::Encrypted);
    }
    if r.u32()? != 1 {
        return Err(PemError::KeyCount);
    }
    let public1 = read_public_blob(&mut Reader(r.string()?))?;
    let mut private = Reader(r.string()?);
    if private.u32()? != private.u32()? {
        return Err(PemError::CheckMismatch);
    }
    let public2 = read_public_blob(&mut private)?;
    let secret = private.string()?;
    if secret.len() != 64 {
        return Err(PemError::Malformed);
    }
    let (seed, public3) = secret.split_at(32);
    if public1 != public2 || public1 != public3 {
        return Err(PemError::KeyMismatch);
    }
    // invariant: `split_at(32)` of 64 bytes.
    let seed: [u8; 32] = seed.try_into().expect("32 bytes");
    if IdentityKey::from_seed(seed).public_bytes() != public1 {
        return Err(PemError::KeyMismatch);
    }
    Ok(seed)
}

/// `string("ssh-ed25519") string(32 bytes)`; trailing bytes ignored, as GNS does.
fn read_public_blob(r: &mut Reader<'_>) -> Result<[u8; 32], PemError> {
    if r.string()? != SSH_ED25519 {
        return Err(PemError::Malformed);
    }
    r.string()?.try_into().map_err(|_| PemError::Malformed)
}

/// Big-endian OpenSSH wire reader.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PemError> {
        if self.0.len() < n {
            return Err(PemError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, PemError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], PemError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// `ssh-ed25519 <base64 blob>[ <comment>]`, as GNS's `GetAsOpenSSHAuthorizedKeys` writes it.
pub fn write_public_key(public_key: &[u8; PUBLIC_KEY_LEN], comment: Option<&str>) -> String {
    let mut out = format!(
        "ssh-ed25519 {}",
        base64_encode(&public_blob(public_key), "")
    );
    if let Some(c) = comment {
        out.push(' ');
        out.push_str(c);
    }
    out
}

/// Reads an `ssh-ed25519 AAAA…` line (comment ignored). GNS's `sscanf` pattern: the key word,
/// whitespace, then a base64 token that starts with `AAAA`. We also skip leading whitespace.
pub fn read_public_key(text: &str) -> Result<[u8; 32], PemError> {
    let rest = text
        .trim_start()
        .strip_prefix("ssh-ed25519")
        .ok_or(PemError::NotPublicKey)?
        .trim_start();
    let token = rest.split_ascii_whitespace().next().unwrap_or_default();
    if !token.starts_with("AAAA") {
        return Err(PemError::NotPublicKey);
    }
    let blob = base64_decode(token)?;
    read_public_blob(&mut Reader(&blob)).map_err(|_| PemError::NotPublicKey)
}

/// A signed certificate as GNS's certtool prints it (LF lines of 72 characters).
pub fn write_cert_pem(cert: &CertificateSigned) -> String {
    encode_pem(CERT_PEM_TYPE, &cert.encode_to_vec(), "\n", true)
}

/// Reads a `STEAMDATAGRAM CERT` block anywhere in `text` (GNS's `ParseCertFromPEM` wants it at
/// the start; we also skip lines before it). The certificate bytes must be present.
pub fn read_cert_pem(text: &str) -> Result<CertificateSigned, PemError> {
    let bytes = decode_pem(text, CERT_PEM_TYPE)?;
    let cert = CertificateSigned::decode(bytes.as_slice())
        .map_err(|_| PemError::Protobuf("CMsgSteamDatagramCertificateSigned"))?;
    if cert.cert.is_none() {
        return Err(PemError::NoCertData);
    }
    Ok(cert)
}

/// A certificate request in a [`CERT_REQUEST_PEM_TYPE`] block (LF lines, like certificates).
pub fn write_cert_request_pem(request: &CertificateRequest) -> String {
    encode_pem(CERT_REQUEST_PEM_TYPE, &request.encode_to_vec(), "\n", true)
}

/// Reads a [`CERT_REQUEST_PEM_TYPE`] block anywhere in `text`.
pub fn read_cert_request_pem(text: &str) -> Result<CertificateRequest, PemError> {
    let bytes = decode_pem(text, CERT_REQUEST_PEM_TYPE)?;
    CertificateRequest::decode(bytes.as_slice())
        .map_err(|_| PemError::Protobuf("CMsgSteamDatagramCertificateRequest"))
}

#[cfg(test)]
#[path = "pem/tests.rs"]
mod tests;
