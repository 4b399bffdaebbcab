//! The datagram codec (the protocol itself is described in the crate docs). Decoding borrows
//! from the datagram and never panics: every malformed input is a [`DecodeError`].
//!
//! ```text
//!  0      1      2         3
//! +------+------+---------+------+---- body (per type) ----
//! | 'S'  | 'R'  | VERSION | type |
//! +------+------+---------+------+-------------------------
//! ```
//! Integers are little-endian. `str8` is a u8 length then UTF-8; `bytes16` a u16 length then
//! bytes; `bytes8` a u8 length then bytes.

/// The two magic bytes that open every datagram.
pub const MAGIC: [u8; 2] = *b"SR";
/// Protocol version this crate speaks; datagrams of other versions are dropped.
pub const VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 4;
/// Longest identity string (GNS's `k_cchMaxString` less the NUL).
pub const MAX_IDENTITY_LEN: usize = 127;
/// Largest signal payload the service relays (GNS signals are ~50-400 bytes).
pub const MAX_PAYLOAD_LEN: usize = 4096;
/// Largest certificate blob (`CMsgSteamDatagramCertificateSigned`; ours are ~200 bytes).
pub const MAX_CERT_LEN: usize = 2048;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// A Hello is padded to at least this many bytes, so that the Challenge it earns (13 bytes)
/// is never larger: a spoofed Hello cannot be used to amplify traffic at a victim.
pub const HELLO_MIN_LEN: usize = 16;
/// Bytes of a Refresh (header, session, 4 reserved): as long as the RegisterOk it earns.
pub const REFRESH_LEN: usize = HEADER_LEN + 8 + 4;
/// Largest datagram either side sends (a Signal with the longest identity and payload).
pub const MAX_DATAGRAM_LEN: usize = HEADER_LEN + 8 + 1 + MAX_IDENTITY_LEN + 2 + MAX_PAYLOAD_LEN;

/// Why the service refused a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The service holds `--max-peers` registrations already.
    Full,
    /// The identity string does not parse as a GNS identity.
    BadIdentity,
    /// The service requires a CA-signed certificate and none was sent.
    CertRequired,
    /// The certificate is malformed, expired, revoked or not signed by a trusted CA.
    UntrustedCert,
    /// The certificate names another identity than the one registered.
    IdentityMismatch,
    /// The challenge signature does not verify with the certificate's key.
    BadSignature,
    /// A code this version does not know (a newer service).
    Other(u8),
}

impl RefuseReason {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Full => 1,
            Self::BadIdentity => 2,
            Self::CertRequired => 3,
            Self::UntrustedCert => 4,
            Self::IdentityMismatch => 5,
            Self::BadSignature => 6,
            Self::Other(c) => c,
        }
    }

    /// From the wire code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Full,
            2 => Self::BadIdentity,
            3 => Self::CertRequired,
            4 => Self::UntrustedCert,
            5 => Self::IdentityMismatch,
            6 => Self::BadSignature,
            c => Self::Other(c),
        }
    }
}

/// One datagram of the protocol (borrowing its strings and blobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Client asks for a challenge (body: padding up to [`HELLO_MIN_LEN`]).
    Hello,
    /// The stateless cookie for the client's address, and whether a certificate is required.
    Challenge {
        /// Echoed in Register; signed when a certificate is required.
        cookie: u64,
        /// The service has a CA configured.
        auth_required: bool,
    },
    /// Claim an identity at the source address.
    Register {
        /// From the Challenge.
        cookie: u64,
        /// GNS identity string (`str:alice`, `steamid:…`).
        identity: &'a str,
        /// `CMsgSteamDatagramCertificateSigned` bytes, empty when not authenticating.
        cert: &'a [u8],
        /// Ed25519 signature by the certificate's key over [`crate::auth::register_message`],
        /// empty when not authenticating.
        signature: &'a [u8],
    },
    /// The registration (or refresh) holds.
    RegisterOk {
        /// Token the client puts in Signal, Refresh and Unregister.
        session: u64,
        /// Seconds between refreshes the service asks for.
        interval_secs: u16,
        /// Seconds a registration lives without a refresh.
        ttl_secs: u16,
    },
    /// The registration was refused.
    RegisterRefused {
        /// Why.
        reason: RefuseReason,
    },
    /// Extend the registration held at the source address.
    Refresh {
        /// From RegisterOk.
        session: u64,
    },
    /// Relay `payload` to the peer registered as `to`.
    Signal {
        /// From RegisterOk.
        session: u64,
        /// Target identity.
        to: &'a str,
        /// The opaque signal.
        payload: &'a [u8],
    },
    /// A relayed signal; `from` is the identity the service registered for the sender.
    Deliver {
        /// Sender identity.
        from: &'a str,
        /// The opaque signal.
        payload: &'a [u8],
    },
    /// The target of a Signal is not registered.
    UnknownPeer {
        /// As the Signal named it.
        to: &'a str,
    },
    /// The source address holds no registration with that session (e.g. the service
    /// restarted): register again.
    UnknownSender,
    /// Drop the registration held at the source address.
    Unregister {
        /// From RegisterOk.
        session: u64,
    },
}

/// Why a datagram does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than its fields say.
    #[error("truncated datagram")]
    Truncated,
    /// Not starting with [`MAGIC`].
    #[error("bad magic")]
    BadMagic,
    /// Another protocol version.
    #[error("unsupported version {0}")]
    Version(u8),
    /// Unknown message type.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// An identity, payload, certificate or signature over its limit.
    #[error("field too long")]
    TooLong,
    /// An identity that is not UTF-8.
    #[error("identity is not UTF-8")]
    Utf8,
    /// Bytes after the last field.
    #[error("trailing bytes")]
    Trailing,
}

mod ty {
    pub(super) const HELLO: u8 = 1;
    pub(super) const CHALLENGE: u8 = 2;
    pub(super) const REGISTER: u8 = 3;
    pub(super) const REGISTER_OK: u8 = 4;
    pub(super) const REGISTER_REFUSED: u8 = 5;
    pub(super) const REFRESH: u8 = 6;
    pub(super) const SIGNAL: u8 = 7;
    pub(super) const DELIVER: u8 = 8;
    pub(super) const UNKNOWN_PEER: u8 = 9;
    pub(super) const UNKNOWN_SENDER: u8 = 10;
    pub(super) const UNREGISTER: u8 = 11;
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn str8(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u8()?);
        if len > MAX_IDENTITY_LEN {
            return Err(DecodeError::TooLong);
        }
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::Utf8)
    }

    fn bytes8(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(DecodeError::TooLong);
        }
        self.take(len)
    }

    fn bytes16(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(DecodeError::TooLong);
        }
        self.take(len)
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

impl<'a> Message<'a> {
    /// Decodes one datagram.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(datagram);
        let header = r.take(HEADER_LEN)?;
        if header[..2] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if header[2] != VERSION {
            return Err(DecodeError::Version(header[2]));
        }
        let msg = match header[3] {
            ty::HELLO => {
                if datagram.len() < HELLO_MIN_LEN {
                    return Err(DecodeError::Truncated);
                }
                // Padding: any content.
                r.0 = &[];
                Message::Hello
            }
            ty::CHALLENGE => Message::Challenge {
                cookie: r.u64()?,
                auth_required: r.u8()? != 0,
            },
            ty::REGISTER => Message::Register {
                cookie: r.u64()?,
                identity: r.str8()?,
                cert: r.bytes16(MAX_CERT_LEN)?,
                signature: r.bytes8(SIGNATURE_LEN)?,
            },
            ty::REGISTER_OK => Message::RegisterOk {
                session: r.u64()?,
                interval_secs: r.u16()?,
                ttl_secs: r.u16()?,
            },
            ty::REGISTER_REFUSED => Message::RegisterRefused {
                reason: RefuseReason::from_code(r.u8()?),
            },
            ty::REFRESH => {
                let session = r.u64()?;
                r.take(4)?;
                Message::Refresh { session }
            }
            ty::SIGNAL => Message::Signal {
                session: r.u64()?,
                to: r.str8()?,
                payload: r.bytes16(MAX_PAYLOAD_LEN)?,
            },
            ty::DELIVER => Message::Deliver {
                from: r.str8()?,
                payload: r.bytes16(MAX_PAYLOAD_LEN)?,
            },
            ty::UNKNOWN_PEER => Message::UnknownPeer { to: r.str8()? },
            ty::UNKNOWN_SENDER => Message::UnknownSender,
            ty::UNREGISTER => Message::Unregister { session: r.u64()? },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.end()?;
        Ok(msg)
    }

    fn type_byte(&self) -> u8 {
        match self {
            Message::Hello => ty::HELLO,
            Message::Challenge { .. } => ty::CHALLENGE,
            Message::Register { .. } => ty::REGISTER,
            Message::RegisterOk { .. } => ty::REGISTER_OK,
            Message::RegisterRefused { .. } => ty::REGISTER_REFUSED,
            Message::Refresh { .. } => ty::REFRESH,
            Message::Signal { .. } => ty::SIGNAL,
            Message::Deliver { .. } => ty::DELIVER,
            Message::UnknownPeer { .. } => ty::UNKNOWN_PEER,
            Message::UnknownSender => ty::UNKNOWN_SENDER,
            Message::Unregister { .. } => ty::UNREGISTER,
        }
    }

    /// Appends the datagram to `out` (cleared first). Fails only if a field is over its limit,
    /// which [`Message::decode`] would refuse.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.type_byte());
        match *self {
            Message::Hello => out.resize(HELLO_MIN_LEN, 0),
            Message::Challenge {
                cookie,
                auth_required,
            } => {
                out.extend_from_slice(&cookie.to_le_bytes());
                out.push(u8::from(auth_required));
            }
            Message::Register {
                cookie,
                identity,
                cert,
                signature,
            } => {
                out.extend_from_slice(&cookie.to_le_bytes());
                put_str8(out, identity)?;
                put_bytes16(out, cert, MAX_CERT_LEN)?;
                if signature.len() > SIGNATURE_LEN {
                    return Err(EncodeError);
                }
                out.push(signature.len() as u8);
                out.extend_from_slice(signature);
            }
            Message::RegisterOk {
                session,
                interval_secs,
                ttl_secs,
            } => {
                out.extend_from_slice(&session.to_le_bytes());
                out.extend_from_slice(&interval_secs.to_le_bytes());
                out.extend_from_slice(&ttl_secs.to_le_bytes());
            }
            Message::RegisterRefused { reason } => out.push(reason.code()),
            Message::Refresh { session } => {
                out.extend_from_slice(&session.to_le_bytes());
                out.extend_from_slice(&[0; 4]);
            }
            Message::Signal {
                session,
                to,
                payload,
            } => {
                out.extend_from_slice(&session.to_le_bytes());
                put_str8(out, to)?;
                put_bytes16(out, payload, MAX_PAYLOAD_LEN)?;
            }
            Message::Deliver { from, payload } => {
                put_str8(out, from)?;
                put_bytes16(out, payload, MAX_PAYLOAD_LEN)?;
            }
            Message::UnknownPeer { to } => put_str8(out, to)?,
            Message::UnknownSender => {}
            Message::Unregister { session } => out.extend_from_slice(&session.to_le_bytes()),
        }
        Ok(())
    }
}

/// A field is over its limit (identity, payload, certificate or signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("field over its protocol limit")]
pub struct EncodeError;

fn put_str8(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    if s.len() > MAX_IDENTITY_LEN {
        return Err(EncodeError);
    }
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_bytes16(out: &mut Vec<u8>, b: &[u8], max: usize) -> Result<(), EncodeError> {
    if b.len() > max {
        return Err(EncodeError);
    }
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
