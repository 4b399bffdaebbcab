//! STUN message codec (RFC 5389 framing) with the attributes GNS's native ICE client uses.
//!
//! ```text
//!  0                   1                   2                   3
//! |0 0|  message type (14) |        length (attrs only)         |
//! |                  magic cookie 0x2112A442                     |
//! |                  transaction id (96 bits)                    |
//! | attr type (16) | attr length (16) | value, padded to 4 ...   |
//! ```
//!
//! Encoding goes through [`StunWriter`], which keeps the header length exact as attributes are
//! appended, so MESSAGE-INTEGRITY and FINGERPRINT cover what RFC 5389 says they cover. Decoding
//! ([`StunMessage::decode`]) verifies FINGERPRINT when present; MESSAGE-INTEGRITY needs a key
//! the caller picks, so it is checked separately ([`StunMessage::verify_integrity`]), again only
//! when present (GNS accepts messages without it).
//! GNS: steamnetworkingsockets_ice_client.cpp, `ParseSTUNAttributes` / `EncodeSTUNPacket`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The RFC 5389 magic cookie, in every header after the length.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// XORed into the CRC-32 to make FINGERPRINT.
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 20;
/// Longest USERNAME GNS accepts.
pub const MAX_USERNAME: usize = 512;

/// Message types (method and class combined) this client sends or understands.
pub mod msg {
    /// Binding request (connectivity checks, server-reflexive discovery).
    pub const BINDING_REQUEST: u16 = 0x0001;
    /// Binding success response.
    pub const BINDING_SUCCESS: u16 = 0x0101;
    /// Binding error response (GNS never sends one, but counts it as a check answer).
    pub const BINDING_ERROR: u16 = 0x0111;
    /// TURN Allocate request.
    pub const ALLOCATE_REQUEST: u16 = 0x0003;
    /// TURN Refresh request.
    pub const REFRESH_REQUEST: u16 = 0x0004;
    /// TURN CreatePermission request.
    pub const CREATE_PERMISSION_REQUEST: u16 = 0x0008;
    /// TURN Send indication (client to server).
    pub const SEND_INDICATION: u16 = 0x0016;
    /// TURN Data indication (server to client).
    pub const DATA_INDICATION: u16 = 0x0017;
    /// Class bits of a success response.
    pub const CLASS_SUCCESS: u16 = 0x0100;
    /// Class bits of an error response.
    pub const CLASS_ERROR: u16 = 0x0110;
    /// Mask of the class bits within a message type.
    pub const CLASS_MASK: u16 = 0x0110;
}

/// Attribute types this client sends or understands.
pub mod attr {
    /// MAPPED-ADDRESS (plain address; GNS also puts its own address in discovery requests).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// LIFETIME (TURN).
    pub const LIFETIME: u16 = 0x000D;
    /// XOR-PEER-ADDRESS (TURN).
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA (TURN).
    pub const DATA: u16 = 0x0013;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS (TURN).
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-TRANSPORT (TURN).
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// MESSAGE-INTEGRITY-SHA256 (recognised, not produced).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (ICE nomination).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED.
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING.
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// Why a datagram was not accepted as a STUN message. Every one means "drop it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Fails GNS's demultiplexing rule ([`is_stun`]).
    #[error("not a STUN message")]
    NotStun,
    /// An attribute runs past the end of the message.
    #[error("truncated attribute")]
    Truncated,
    /// FINGERPRINT present and wrong.
    #[error("bad FINGERPRINT")]
    BadFingerprint,
    /// MESSAGE-INTEGRITY present and wrong for the key.
    #[error("bad MESSAGE-INTEGRITY")]
    BadIntegrity,
    /// USERNAME longer than 512 bytes.
    #[error("USERNAME too long")]
    UsernameTooLong,
    /// USERNAME does not name this agent and its peer.
    #[error("USERNAME mismatch")]
    WrongUsername,
    /// An address attribute with an unknown family or size.
    #[error("malformed address attribute")]
    BadAddress,
    /// A well-formed message this agent has no use for (unknown type or transaction).
    #[error("unexpected STUN message")]
    Unexpected,
}

/// GNS's demultiplexing rule on ICE sockets: at least a header, top two bits zero, the length
/// field exact, and the magic cookie. Anything else is a GNS packet.
/// GNS: steamnetworkingsockets_ice_client.cpp, `OnPacketReceived`.
pub fn is_stun(data: &[u8]) -> bool {
    if data.len() < HEADER_LEN {
        return false;
    }
    let w0 = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let cookie = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    ((w0 & 0xC000_FFFF) as usize) + HEADER_LEN == data.len() && cookie == MAGIC_COOKIE
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // HMAC accepts keys of any length (long ones are hashed), so construction cannot fail;
    // a zero tag on the impossible error path simply never verifies.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(key) else {
        return [0; 20];
    };
    for p in parts {
        mac.update(p);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

fn xor_port_ip(addr: SocketAddr, txid: &[u8; 12]) -> (u16, IpAddr) {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match addr.ip() {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) ^ MAGIC_COOKIE)),
        IpAddr::V6(v6) => {
            let mut b = v6.octets();
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(txid);
            for (x, m) in b.iter_mut().zip(mask) {
                *x ^= m;
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    (port, ip)
}

fn encode_addr(port: u16, ip: IpAddr) -> Vec<u8> {
    let mut v = Vec::with_capacity(20);
    v.push(0);
    match ip {
        IpAddr::V4(a) => {
            v.push(1);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            v.push(2);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&a.octets());
        }
    }
    v
}

fn decode_addr(v: &[u8]) -> Result<(u16, IpAddr), StunError> {
    match (v.len(), v.get(1)) {
        (8, Some(1)) => Ok((
            u16::from_be_bytes([v[2], v[3]]),
            IpAddr::V4(Ipv4Addr::new(v[4], v[5], v[6], v[7])),
        )),
        (20, Some(2)) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&v[4..20]);
            Ok((
                u16::from_be_bytes([v[2], v[3]]),
                IpAddr::V6(Ipv6Addr::from(b)),
            ))
        }
        _ => Err(StunError::BadAddress),
    }
}

/// Builds one STUN message; the header length always matches what has been appended.
#[derive(Debug, Clone)]
pub struct StunWriter {
    buf: Vec<u8>,
    txid: [u8; 12],
}

impl StunWriter {
    /// Starts a message of type `msg_type` with transaction id `txid`.
    pub fn new(msg_type: u16, txid: [u8; 12]) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&msg_type.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&txid);
        StunWriter { buf, txid }
    }

    fn set_len(&mut self, attrs_len: usize) {
        let l = u16::try_from(attrs_len).unwrap_or(u16::MAX);
        self.buf[2..4].copy_from_slice(&l.to_be_bytes());
    }

    /// Appends a raw attribute, padded to 4 bytes with zeros.
    pub fn attr(&mut self, typ: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(&value[..usize::from(len)]);
        let pad = (4 - value.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        let n = self.buf.len() - HEADER_LEN;
        self.set_len(n);
        self
    }

    /// Appends a 32-bit big-endian attribute (PRIORITY, LIFETIME).
    pub fn u32_attr(&mut self, typ: u16, v: u32) -> &mut Self {
        self.attr(typ, &v.to_be_bytes())
    }

    /// Appends a plain address attribute (MAPPED-ADDRESS).
    pub fn addr(&mut self, typ: u16, a: SocketAddr) -> &mut Self {
        let v = encode_addr(a.port(), a.ip());
        self.attr(typ, &v)
    }

    /// Appends an XORed address attribute (XOR-MAPPED-, XOR-PEER-, XOR-RELAYED-ADDRESS).
    pub fn xor_addr(&mut self, typ: u16, a: SocketAddr) -> &mut Self {
        let (port, ip) = xor_port_ip(a, &self.txid);
        let v = encode_addr(port, ip);
        self.attr(typ, &v)
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 keyed with `key` over the message so far, with the
    /// header length already counting the MESSAGE-INTEGRITY attribute.
    pub fn integrity(&mut self, key: &[u8]) -> &mut Self {
        let n = self.buf.len() - HEADER_LEN + 24;
        self.set_len(n);
        let tag = hmac_sha1(key, &[&self.buf]);
        self.attr(attr::MESSAGE_INTEGRITY, &tag)
    }

    /// Appends FINGERPRINT (CRC-32 of everything before it, XOR 0x5354554E) and returns the
    /// finished message.
    pub fn finish_with_fingerprint(mut self) -> Vec<u8> {
        let n = self.buf.len() - HEADER_LEN + 8;
        self.set_len(n);
        let crc = crc32fast::hash(&self.buf) ^ FINGERPRINT_XOR;
        self.attr(attr::FINGERPRINT, &crc.to_be_bytes());
        self.buf
    }

    /// The finished message without FINGERPRINT (TURN Send indications).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// A decoded STUN message borrowing the datagram. Attribute values are unpadded.
#[derive(Debug, Clone)]
pub struct StunMessage<'a> {
    raw: &'a [u8],
    /// Method and class.
    pub msg_type: u16,
    /// Transaction id.
    pub txid: [u8; 12],
    attrs: Vec<(u16, &'a [u8])>,
    /// Offset of the MESSAGE-INTEGRITY attribute header, if any.
    mi_offset: Option<usize>,
}

impl<'a> StunMessage<'a> {
    /// Parses `data`, checking framing, USERNAME length and FINGERPRINT (when present).
    pub fn decode(data: &'a [u8]) -> Result<Self, StunError> {
        if !is_stun(data) {
            return Err(StunError::NotStun);
        }
        let msg_type = u16::from_be_bytes([data[0], data[1]]);
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&data[8..20]);
        let mut attrs = Vec::new();
        let mut mi_offset = None;
        let mut off = HEADER_LEN;
        while off < data.len() {
            let hdr = data.get(off..off + 4).ok_or(StunError::Truncated)?;
            let typ = u16::from_be_bytes([hdr[0], hdr[1]]);
            let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
            let value = data
                .get(off + 4..off + 4 + len)
                .ok_or(StunError::Truncated)?;
            match typ {
                attr::USERNAME if len > MAX_USERNAME => return Err(StunError::UsernameTooLong),
                attr::MESSAGE_INTEGRITY if mi_offset.is_none() => {
                    if len != 20 {
                        return Err(StunError::BadIntegrity);
                    }
                    mi_offset = Some(off);
                }
                attr::FINGERPRINT => {
                    let want = crc32fast::hash(&data[..off]) ^ FINGERPRINT_XOR;
                    if value != want.to_be_bytes() {
                        return Err(StunError::BadFingerprint);
                    }
                }
                _ => {}
            }
            attrs.push((typ, value));
            off += 4 + len.div_ceil(4) * 4;
        }
        Ok(StunMessage {
            raw: data,
            msg_type,
            txid,
            attrs,
            mi_offset,
        })
    }

    /// Whether this is a request (class bits 00).
    pub fn is_request(&self) -> bool {
        self.msg_type & msg::CLASS_MASK == 0
    }

    /// Whether this is a success or error response.
    pub fn is_response(&self) -> bool {
        self.msg_type & 0x0100 != 0
    }

    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.mi_offset.is_some()
    }

    /// Checks MESSAGE-INTEGRITY with `key`; a message without one passes (as in GNS).
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let Some(off) = self.mi_offset else {
            return Ok(());
        };
        let Some(tag) = self.raw.get(off + 4..off + 24) else {
            return Err(StunError::BadIntegrity);
        };
        let len = u16::try_from(off + 24 - HEADER_LEN).unwrap_or(u16::MAX);
        let lenb = len.to_be_bytes();
        let want = hmac_sha1(key, &[&self.raw[..2], &lenb, &self.raw[4..off]]);
        if want.as_slice() == tag {
            Ok(())
        } else {
            Err(StunError::BadIntegrity)
        }
    }

    /// The first value of attribute `typ`.
    pub fn get(&self, typ: u16) -> Option<&'a [u8]> {
        self.attrs.iter().find(|(t, _)| *t == typ).map(|(_, v)| *v)
    }

    /// Whether attribute `typ` is present.
    pub fn has(&self, typ: u16) -> bool {
        self.attrs.iter().any(|(t, _)| *t == typ)
    }

    /// A 32-bit attribute (PRIORITY, LIFETIME).
    pub fn u32_attr(&self, typ: u16) -> Option<u32> {
        let v = self.get(typ)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    /// A plain address attribute.
    pub fn addr(&self, typ: u16) -> Option<SocketAddr> {
        let (port, ip) = decode_addr(self.get(typ)?).ok()?;
        Some(SocketAddr::new(ip, port))
    }

    /// An XORed address attribute.
    pub fn xor_addr(&self, typ: u16) -> Option<SocketAddr> {
        let (port, ip) = decode_addr(self.get(typ)?).ok()?;
        let (port, ip) = xor_port_ip(SocketAddr::new(ip, port), &self.txid);
        Some(SocketAddr::new(ip, port))
    }

    /// The mapped address as GNS reads it: the last XOR-MAPPED-ADDRESS or MAPPED-ADDRESS wins.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        let mut found = None;
        for (t, v) in &self.attrs {
            let Ok((port, ip)) = decode_addr(v) else {
                continue;
            };
            match *t {
                attr::MAPPED_ADDRESS => found = Some(SocketAddr::new(ip, port)),
                attr::XOR_MAPPED_ADDRESS => {
                    let (port, ip) = xor_port_ip(SocketAddr::new(ip, port), &self.txid);
                    found = Some(SocketAddr::new(ip, port));
                }
                _ => {}
            }
        }
        found
    }

    /// ERROR-CODE as a number (class·100 + number).
    pub fn error_code(&self) -> Option<u16> {
        let v = self.get(attr::ERROR_CODE)?;
        let class = u16::from(*v.get(2)? & 0x07);
        Some(class * 100 + u16::from(*v.get(3)?))
    }
}

/// Fields of an ICE connectivity check (Binding request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRequest<'a> {
    /// `<remoteUfrag>:<localUfrag>`.
    pub username: &'a [u8],
    /// PRIORITY: what a peer-reflexive candidate learned from this check would get.
    pub priority: u32,
    /// Sender's role: ICE-CONTROLLING when true, else ICE-CONTROLLED.
    pub controlling: bool,
    /// The 8-byte tiebreaker (sent, never used by GNS).
    pub tiebreaker: u64,
    /// USE-CANDIDATE (nomination).
    pub use_candidate: bool,
    /// MESSAGE-INTEGRITY key: the remote (recipient's) password.
    pub key: &'a [u8],
}

/// Encodes a connectivity check in GNS's attribute order.
pub fn encode_binding_request(txid: [u8; 12], r: &BindingRequest<'_>) -> Vec<u8> {
    let mut w = StunWriter::new(msg::BINDING_REQUEST, txid);
    w.attr(attr::USERNAME, r.username)
        .u32_attr(attr::PRIORITY, r.priority);
    let role = if r.controlling {
        attr::ICE_CONTROLLING
    } else {
        attr::ICE_CONTROLLED
    };
    w.attr(role, &r.tiebreaker.to_be_bytes());
    if r.use_candidate {
        w.attr(attr::USE_CANDIDATE, &[]);
    }
    w.integrity(r.key);
    w.finish_with_fingerprint()
}

/// Encodes GNS's Binding success response: XOR-MAPPED-ADDRESS, USERNAME echo, MI keyed with the
/// local password, FINGERPRINT.
pub fn encode_binding_success(
    txid: [u8; 12],
    mapped: SocketAddr,
    username: Option<&[u8]>,
    key: &[u8],
) -> Vec<u8> {
    let mut w = StunWriter::new(msg::BINDING_SUCCESS, txid);
    w.xor_addr(attr::XOR_MAPPED_ADDRESS, mapped);
    if let Some(u) = username {
        w.attr(attr::USERNAME, u);
    }
    w.integrity(key);
    w.finish_with_fingerprint()
}

/// Encodes a server-reflexive discovery request: a plain Binding request with FINGERPRINT and
/// no MESSAGE-INTEGRITY. GNS also puts its own bound address in a (XOR-)MAPPED-ADDRESS
/// attribute, which a standard server such as coturn refuses (420 Unknown Attribute), so its
/// peers behind NATs get no server-reflexive candidate from one; we leave it out.
pub fn encode_discovery_request(txid: [u8; 12]) -> Vec<u8> {
    StunWriter::new(msg::BINDING_REQUEST, txid).finish_with_fingerprint()
}

/// The local ufrag (the part of USERNAME before `:`) of a Binding request, so an endpoint can
/// route a check to the agent that owns that ufrag. `None` for anything else.
pub fn username_local_ufrag(data: &[u8]) -> Option<[u8; 5]> {
    let m = StunMessage::decode(data).ok()?;
    if m.msg_type != msg::BINDING_REQUEST {
        return None;
    }
    let u = m.get(attr::USERNAME)?;
    let head = u.split(|b| *b == b':').next()?;
    head.try_into().ok()
}

/// The transaction id of a STUN message, so an endpoint can route responses.
pub fn transaction_id(data: &[u8]) -> Option<[u8; 12]> {
    if !is_stun(data) {
        return None;
    }
    data.get(8..20)?.try_into().ok()
}

/// Fuzzing only: recomputes, in place, the first MESSAGE-INTEGRITY (keyed with `key`) and every
/// FINGERPRINT of a framed message, so mutated inputs get past the checks and reach what lies
/// behind them. Anything that does not walk as attributes is left as it is.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_resign(data: &mut [u8], key: &[u8]) {
    if !is_stun(data) {
        return;
    }
    let mut mi_done = false;
    let mut off = HEADER_LEN;
    while off + 4 <= data.len() {
        let typ = u16::from_be_bytes([data[off], data[off + 1]]);
        let len = usize::from(u16::from_be_bytes([data[off + 2], data[off + 3]]));
        if off + 4 + len > data.len() {
            return;
        }
        match typ {
            attr::MESSAGE_INTEGRITY if !mi_done => {
                mi_done = true;
                if len == 20 {
                    let l = u16::try_from(off + 24 - HEADER_LEN).unwrap_or(u16::MAX);
                    let tag = hmac_sha1(key, &[&data[..2], &l.to_be_bytes(), &data[4..off]]);
                    data[off + 4..off + 24].copy_from_slice(&tag);
                }
            }
            attr::FINGERPRINT if len == 4 => {
                let crc = crc32fast::hash(&data[..off]) ^ FINGERPRINT_XOR;
                data[off + 4..off + 8].copy_from_slice(&crc.to_be_bytes());
            }
            _ => {}
        }
        off += 4 + len.div_ceil(4) * 4;
    }
}

#[cfg(test)]
#[path = "stun_tests.rs"]
mod tests;
