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
//! bytes; `bytes8` a u8 length then bytes. A FakeIP is 4 address bytes in network order, then
//! a u8 port count (at most [`MAX_FAKEIP_PORTS`]) and the ports as u16.

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
/// Most ports one FakeIP allocation holds (GNS's `BeginAsyncRequestFakeIP` limit).
pub const MAX_FAKEIP_PORTS: usize = 4;
/// Reserved bytes closing a FakeIpRequest: they make it as long as the largest grant, so no
/// reply of the service is ever larger than its request.
pub const FAKEIP_REQUEST_RESERVED: usize = 4;
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

/// Why the service refused a FakeIP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FakeIpRefuseReason {
    /// The service holds `--max-fakeips` allocations already.
    Full,
    /// The port count is not 1 to [`MAX_FAKEIP_PORTS`].
    BadRequest,
    /// A code this version does not know (a newer service).
    Other(u8),
}

impl FakeIpRefuseReason {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Full => 1,
            Self::BadRequest => 2,
            Self::Other(c) => c,
        }
    }

    /// From the wire code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Full,
            2 => Self::BadRequest,
            c => Self::Other(c),
        }
    }
}

/// The ports of a FakeIP allocation (at most [`MAX_FAKEIP_PORTS`]), kept inline so that
/// [`Message`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FakeIpPorts {
    len: u8,
    ports: [u16; MAX_FAKEIP_PORTS],
}

impl FakeIpPorts {
    /// The first [`MAX_FAKEIP_PORTS`] of `ports` at most.
    pub fn new(ports: &[u16]) -> Self {
        let mut p = FakeIpPorts::default();
        for (slot, &port) in p.ports.iter_mut().zip(ports) {
            *slot = port;
            p.len += 1;
        }
        p
    }

    /// The ports, in allocation order.
    pub fn as_slice(&self) -> &[u16] {
        &self.ports[..usize::from(self.len)]
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
    /// Ask for a global FakeIP with `num_ports` ports for the identity registered at the
    /// source address (`BeginAsyncRequestFakeIP`).
    FakeIpRequest {
        /// From RegisterOk.
        session: u64,
        /// Ports wanted, 1 to [`MAX_FAKEIP_PORTS`].
        num_ports: u8,
    },
    /// The identity's FakeIP: the same address and ports every time it asks.
    FakeIpGranted {
        /// In 169.254.0.0/16 (see `sockworks_engine::wire::fakeip`).
        ip: std::net::Ipv4Addr,
        /// As many as asked for, each above 1024.
        ports: FakeIpPorts,
    },
    /// The FakeIP request was refused.
    FakeIpRefused {
        /// Why.
        reason: FakeIpRefuseReason,
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
    pub(super) const FAKEIP_REQUEST: u8 = 12;
    pub(super) const FAKEIP_GRANTED: u8 = 13;
    pub(super) const FAKEIP_REFUSED: u8 = 14;
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
            ty::FAKEIP_REQUEST => {
                let session = r.u64()?;
                let num_ports = r.u8()?;
                r.take(FAKEIP_REQUEST_RESERVED)?;
                Message::FakeIpRequest { session, num_ports }
            }
            ty::FAKEIP_GRANTED => {
                let mut ip = [0u8; 4];
                ip.copy_from_slice(r.take(4)?);
                let n = usize::from(r.u8()?);
                if n > MAX_FAKEIP_PORTS {
                    return Err(DecodeError::TooLong);
                }
                let mut ports = [0u16; MAX_FAKEIP_PORTS];
                for p in &mut ports[..n] {
                    *p = r.u16()?;
                }
                Message::FakeIpGranted {
                    ip: ip.into(),
                    ports: FakeIpPorts::new(&ports[..n]),
                }
            }
            ty::FAKEIP_REFUSED => Message::FakeIpRefused {
                reason: FakeIpRefuseReason::from_code(r.u8()?),
            },
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
            Message::FakeIpRequest { .. } => ty::FAKEIP_REQUEST,
            Message::FakeIpGranted { .. } => ty::FAKEIP_GRANTED,
            Message::FakeIpRefused { .. } => ty::FAKEIP_REFUSED,
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
            Message::FakeIpRequest { session, num_ports } => {
                out.extend_from_slice(&session.to_le_bytes());
                out.push(num_ports);
                out.extend_from_slice(&[0; FAKEIP_REQUEST_RESERVED]);
            }
            Message::FakeIpGranted { ip, ports } => {
                out.extend_from_slice(&ip.octets());
                // invariant: FakeIpPorts holds at most MAX_FAKEIP_PORTS (4).
                out.push(ports.as_slice().len() as u8);
                for p in ports.as_slice() {
                    out.extend_from_slice(&p.to_le_bytes());
                }
            }
            Message::FakeIpRefused { reason } => out.push(reason.code()),
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
#[path = "wire/tests.rs"]
mod tests;
