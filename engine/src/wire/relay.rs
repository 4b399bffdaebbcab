//! The client ↔ relay datagram codec (UDP). The relay ↔ server side has no framing at all:
//! the relay sends the bare GNS packets from a socket of its own per session.
//!
//! Every datagram starts with `'S' 'Y' VERSION type`; integers are little-endian.
//!
//! | type | name | direction | body after the 4-byte header | size |
//! |---|---|---|---|---|
//! | 1 | Hello | client → relay | nonce u64, ticket_len u16, signed ticket (≤ 512), padding | ≥ 14 + ticket |
//! | 2 | Welcome | relay → client | nonce u64, session u32, token u64, keepalive_secs u16 | 26 |
//! | 3 | Refused | relay → client | nonce u64, reason u8 ([`RefuseReason`]) | 13 |
//! | 4 | Data | both | session u32, token u64, GNS packet (rest of the datagram) | 16 + payload |
//! | 5 | Ping | client → relay | timestamp u64, session u32, token u64 (zeros: none) | 24 |
//! | 6 | Pong | relay → client | timestamp u64 (echoed), POP id u32, session_alive u8 | 17 |
//! | 7 | Close | client → relay | session u32, token u64 | 16 |
//!
//! The `nonce` of Hello is echoed by Welcome / Refused so a client matches replies to
//! requests; Ping's timestamp is opaque to the relay (clients put their clock there and
//! measure the RTT from the Pong). Every reply is smaller than what it answers, so the relay
//! never amplifies (it also checks this before sending).

/// Largest signed relay auth ticket (`k_cbSteamDatagramMaxSerializedTicket`).
pub const MAX_SIGNED_TICKET: usize = 512;

/// First two bytes of every datagram.
pub const MAGIC: [u8; 2] = *b"SY";
/// Protocol version.
pub const VERSION: u8 = 1;
/// Header bytes (`MAGIC`, version, type).
pub const HEADER_LEN: usize = 4;
/// Bytes a Data frame adds in front of the GNS packet.
pub const DATA_OVERHEAD: usize = HEADER_LEN + 4 + 8;

const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const REFUSED: u8 = 3;
const DATA: u8 = 4;
const PING: u8 = 5;
const PONG: u8 = 6;
const CLOSE: u8 = 7;

/// Why the relay refused a Hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefuseReason {
    /// Forged, altered, unknown CA, malformed, or a routing blob of another fleet / POP.
    BadTicket = 1,
    /// The ticket expired (or expires too far ahead).
    Expired = 2,
    /// Too many Hellos (signature checks) per second at this relay.
    RateLimited = 3,
    /// The relay holds its maximum number of sessions.
    Full = 4,
    /// The ticket is live for another client address, or names another public IP.
    WrongAddress = 5,
    /// The relay cannot reach the server (no socket).
    Unreachable = 6,
}

impl RefuseReason {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::BadTicket,
            2 => Self::Expired,
            3 => Self::RateLimited,
            4 => Self::Full,
            5 => Self::WrongAddress,
            6 => Self::Unreachable,
            _ => return None,
        })
    }
}

/// A decoded control message (Data has its own fast path: [`decode_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Asks for a session with a signed ticket.
    Hello {
        /// Echoed in the reply.
        nonce: u64,
        /// The signed relay auth ticket.
        ticket: &'a [u8],
    },
    /// A session was granted.
    Welcome {
        /// Echo of the Hello's nonce.
        nonce: u64,
        /// Session id.
        session: u32,
        /// Secret the client puts in every Data, Ping and Close of the session.
        token: u64,
        /// Seconds of silence after which the relay ends the session.
        keepalive_secs: u16,
    },
    /// The Hello was refused.
    Refused {
        /// Echo of the Hello's nonce.
        nonce: u64,
        /// Why.
        reason: RefuseReason,
    },
    /// A GNS packet.
    Data {
        /// Session id.
        session: u32,
        /// Session token.
        token: u64,
        /// The opaque GNS packet.
        payload: &'a [u8],
    },
    /// Measures the relay; with a session, also a keepalive.
    Ping {
        /// Opaque to the relay; echoed.
        timestamp: u64,
        /// Session id, 0 for none.
        session: u32,
        /// Session token, 0 for none.
        token: u64,
    },
    /// Answer to Ping.
    Pong {
        /// The Ping's timestamp.
        timestamp: u64,
        /// The relay's POP id (GNS's numeric form).
        pop_id: u32,
        /// Whether the Ping named a live session of the sender.
        session_alive: bool,
    },
    /// Ends a session.
    Close {
        /// Session id.
        session: u32,
        /// Session token.
        token: u64,
    },
}

/// Why a datagram did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not our magic or version.
    #[error("not a relay datagram")]
    NotRelay,
    /// Unknown message type.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// Shorter than its fields, or a length out of range.
    #[error("truncated or malformed message")]
    Malformed,
}

fn header(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
}

/// Appends a Data frame carrying `payload` to `out` (what a client sends for each GNS packet,
/// and what the relay sends back).
pub fn encode_data(session: u32, token: u64, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(DATA_OVERHEAD + payload.len());
    header(out, DATA);
    out.extend_from_slice(&session.to_le_bytes());
    out.extend_from_slice(&token.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The fast path for Data: `(session, token, GNS packet)`, or `None` if `datagram` is not a
/// Data frame.
#[inline]
pub fn decode_data(datagram: &[u8]) -> Option<(u32, u64, &[u8])> {
    let (head, rest) = datagram.split_first_chunk::<DATA_OVERHEAD>()?;
    if head[..4] != [MAGIC[0], MAGIC[1], VERSION, DATA] {
        return None;
    }
    let session = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&head[8..16]);
    Some((session, u64::from_le_bytes(t), rest))
}

/// Reads fields front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

impl<'a> Message<'a> {
    /// Decodes any message. Trailing bytes are allowed after Hello (padding) and belong to the
    /// payload of Data; after the others they are refused.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        if datagram.len() < HEADER_LEN || datagram[..3] != [MAGIC[0], MAGIC[1], VERSION] {
            return Err(DecodeError::NotRelay);
        }
        let mut r = Reader(&datagram[HEADER_LEN..]);
        let m = match datagram[3] {
            HELLO => {
                let nonce = r.u64()?;
                let len = usize::from(r.u16()?);
                if len > MAX_SIGNED_TICKET {
                    return Err(DecodeError::Malformed);
                }
                let ticket = r.take(len)?;
                r.0 = &[];
                Message::Hello { nonce, ticket }
            }
            WELCOME => Message::Welcome {
                nonce: r.u64()?,
                session: r.u32()?,
                token: r.u64()?,
                keepalive_secs: r.u16()?,
            },
            REFUSED => Message::Refused {
                nonce: r.u64()?,
                reason: RefuseReason::from_u8(r.u8()?).ok_or(DecodeError::Malformed)?,
            },
            DATA => {
                let (session, token, payload) =
                    decode_data(datagram).ok_or(DecodeError::Malformed)?;
                r.0 = &[];
                Message::Data {
                    session,
                    token,
                    payload,
                }
            }
            PING => Message::Ping {
                timestamp: r.u64()?,
                session: r.u32()?,
                token: r.u64()?,
            },
            PONG => Message::Pong {
                timestamp: r.u64()?,
                pop_id: r.u32()?,
                session_alive: r.u8()? != 0,
            },
            CLOSE => Message::Close {
                session: r.u32()?,
                token: r.u64()?,
            },
            t => return Err(DecodeError::UnknownType(t)),
        };
        if !r.0.is_empty() {
            return Err(DecodeError::Malformed);
        }
        Ok(m)
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Message::Hello { nonce, ticket } => {
                header(out, HELLO);
                out.extend_from_slice(&nonce.to_le_bytes());
                let len = ticket.len().min(MAX_SIGNED_TICKET);
                out.extend_from_slice(&(len as u16).to_le_bytes());
                out.extend_from_slice(&ticket[..len]);
            }
            Message::Welcome {
                nonce,
                session,
                token,
                keepalive_secs,
            } => {
                header(out, WELCOME);
                out.extend_from_slice(&nonce.to_le_bytes());
                out.extend_from_slice(&session.to_le_bytes());
                out.extend_from_slice(&token.to_le_bytes());
                out.extend_from_slice(&keepalive_secs.to_le_bytes());
            }
            Message::Refused { nonce, reason } => {
                header(out, REFUSED);
                out.extend_from_slice(&nonce.to_le_bytes());
                out.push(reason as u8);
            }
            Message::Data {
                session,
                token,
                payload,
            } => encode_data(session, token, payload, out),
            Message::Ping {
                timestamp,
                session,
                token,
            } => {
                header(out, PING);
                out.extend_from_slice(&timestamp.to_le_bytes());
                out.extend_from_slice(&session.to_le_bytes());
                out.extend_from_slice(&token.to_le_bytes());
            }
            Message::Pong {
                timestamp,
                pop_id,
                session_alive,
            } => {
                header(out, PONG);
                out.extend_from_slice(&timestamp.to_le_bytes());
                out.extend_from_slice(&pop_id.to_le_bytes());
                out.push(u8::from(session_alive));
            }
            Message::Close { session, token } => {
                header(out, CLOSE);
                out.extend_from_slice(&session.to_le_bytes());
                out.extend_from_slice(&token.to_le_bytes());
            }
        }
    }

    /// The encoded bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message<'static>> {
        vec![
            Message::Hello {
                nonce: 9,
                ticket: &[1, 2, 3],
            },
            Message::Welcome {
                nonce: 9,
                session: 7,
                token: u64::MAX,
                keepalive_secs: 30,
            },
            Message::Refused {
                nonce: 1,
                reason: RefuseReason::WrongAddress,
            },
            Message::Data {
                session: 3,
                token: 4,
                payload: b"gns packet",
            },
            Message::Ping {
                timestamp: 5,
                session: 0,
                token: 0,
            },
            Message::Pong {
                timestamp: 5,
                pop_id: 0x66_7261,
                session_alive: true,
            },
            Message::Close {
                session: 3,
                token: 4,
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in all() {
            let bytes = m.to_vec();
            assert_eq!(Message::decode(&bytes).unwrap(), m, "{m:?}");
        }
    }

    #[test]
    fn data_helpers_match_the_codec() {
        let mut out = Vec::new();
        encode_data(0xdead_beef, 42, b"xyz", &mut out);
        assert_eq!(out.len(), DATA_OVERHEAD + 3);
        assert_eq!(decode_data(&out), Some((0xdead_beef, 42, &b"xyz"[..])));
        assert_eq!(decode_data(&out[..DATA_OVERHEAD - 1]), None);
        assert_eq!(
            decode_data(&out[..DATA_OVERHEAD]),
            Some((0xdead_beef, 42, &[][..]))
        );
        let mut ping = out.clone();
        ping[3] = PING;
        assert_eq!(decode_data(&ping), None);
    }

    #[test]
    fn replies_are_smaller_than_requests() {
        let welcome = all()[1].to_vec().len();
        let hello_min = Message::Hello {
            nonce: 0,
            ticket: &[0; 100],
        }
        .to_vec()
        .len();
        assert!(welcome < hello_min);
        assert!(all()[5].to_vec().len() < all()[4].to_vec().len());
    }

    #[test]
    fn truncations_and_garbage_do_not_decode_or_panic() {
        for m in all() {
            let bytes = m.to_vec();
            for len in 0..bytes.len() {
                let r = Message::decode(&bytes[..len]);
                assert!(r.is_err() || matches!(m, Message::Hello { .. } | Message::Data { .. }));
            }
        }
        let mut x = 0x9e37_79b9u32;
        for _ in 0..5000 {
            let mut buf: Vec<u8> = (0..(x % 64))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if buf.len() >= 3 && x % 2 == 0 {
                buf[..3].copy_from_slice(&[MAGIC[0], MAGIC[1], VERSION]);
            }
            let _ = Message::decode(&buf);
            let _ = decode_data(&buf);
        }
        assert_eq!(Message::decode(b"SY\x02\x01"), Err(DecodeError::NotRelay));
        assert_eq!(
            Message::decode(b"SY\x01\x63"),
            Err(DecodeError::UnknownType(0x63))
        );
    }
}
