//! Control-message framing (spec §1.1, §2.7): the six handshake and teardown messages, each a
//! lead byte followed by a protobuf, either plain (`[lead][protobuf]`, running to the end of
//! the datagram) or padded (`[lead][u16 LE length][protobuf][zeros]`, at least 512 bytes) for
//! the two kinds that ask for a reply and so must not be usable for amplification.
//!
//! Decoding is faithful and total: it checks the framing as GNS does
//! (`CSteamNetworkListenSocketDirectUDP` / `CConnectionTransportUDP` `ParsePaddedPacket`),
//! maps any protobuf error to [`ControlError::Protobuf`], and allocates only what the input
//! holds. Whether the fields make sense is a separate step, [`ControlMessage::validate`].
//! Encoding writes fields in ascending tag order (as GNS does), pads the padded kinds like
//! GNS's `SendPaddedMsg`, and refuses anything over 1300 bytes.

use prost::Message;

use super::packet::{ControlKind, DATA_LEAD_BIT, MAX_UDP_PAYLOAD, MIN_PADDED_PACKET};
use super::proto;

/// Lead byte plus the u16 length of a padded message (`UDPPaddedMessageHdr`).
pub const PADDED_HEADER_LEN: usize = 3;

/// Why a datagram is not a well-framed control message, or a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Empty datagram.
    #[error("empty datagram")]
    Empty,
    /// Lead byte has bit 7 set: a data packet.
    #[error("lead byte {0:#04x} is a data packet")]
    NotControl(u8),
    /// Lead byte names no control message.
    #[error("unknown control lead byte {0:#04x}")]
    UnknownLeadByte(u8),
    /// Padded message in a datagram shorter than 512 bytes.
    #[error("padded message in a {0}-byte datagram (minimum 512)")]
    PaddedTooShort(usize),
    /// Padded message whose length field is 0.
    #[error("padded message with length 0")]
    PaddedZeroLength,
    /// Padded message whose length field runs past the datagram.
    #[error("padded message length {0} overruns the datagram")]
    PaddedLengthOverrun(u16),
    /// The protobuf body does not parse as the message the lead byte names.
    #[error("{0:?} protobuf does not parse")]
    Protobuf(ControlKind),
    /// Encoding would produce a datagram over 1300 bytes (the size it would have had).
    #[error("encoded control message of {0} bytes exceeds 1300")]
    TooLarge(usize),
}

/// A decoded message that lacks something GNS requires before acting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidControl {
    /// A required connection id field is absent.
    #[error("connection id missing")]
    MissingConnectionId,
    /// A connection id is zero (never a valid id).
    #[error("connection id is zero")]
    ZeroConnectionId,
    /// ConnectOK's server connection id has zero low 16 bits (GNS rejects these).
    #[error("server connection id has zero low 16 bits")]
    ServerIdLow16Zero,
    /// No signed crypt info.
    #[error("crypt info missing")]
    MissingCrypt,
    /// Signed crypt info without its `info` bytes.
    #[error("crypt info bytes missing")]
    MissingCryptInfo,
    /// Signed crypt info without a signature.
    #[error("crypt info signature missing")]
    MissingCryptSignature,
    /// No certificate.
    #[error("certificate missing")]
    MissingCert,
    /// Signed certificate without its `cert` bytes.
    #[error("certificate bytes missing")]
    MissingCertBody,
    /// The `info` bytes are not a valid `CMsgSteamDatagramSessionCryptInfo`.
    #[error("crypt info does not parse")]
    CryptInfoProtobuf,
    /// The `cert` bytes are not a valid `CMsgSteamDatagramCertificate`.
    #[error("certificate does not parse")]
    CertProtobuf,
}

/// One of the six control messages, as its protobuf. The two large ones are boxed so the enum
/// stays small.
#[derive(Clone, Debug, PartialEq)]
pub enum ControlMessage {
    /// Lead 32, padded.
    ChallengeRequest(proto::ChallengeRequest),
    /// Lead 33.
    ChallengeReply(proto::ChallengeReply),
    /// Lead 34.
    ConnectRequest(Box<proto::ConnectRequest>),
    /// Lead 35.
    ConnectOk(Box<proto::ConnectOk>),
    /// Lead 36, padded.
    ConnectionClosed(proto::ConnectionClosed),
    /// Lead 37.
    NoConnection(proto::NoConnection),
}

/// Splits a control datagram into its kind and protobuf body, checking the framing (padded
/// rules of spec §1.1: datagram ≥ 512, length ≠ 0, length + 3 ≤ datagram). Padding content is
/// not checked, as in GNS.
pub fn split_control(datagram: &[u8]) -> Result<(ControlKind, &[u8]), ControlError> {
    let (&lead, rest) = datagram.split_first().ok_or(ControlError::Empty)?;
    if lead & DATA_LEAD_BIT != 0 {
        return Err(ControlError::NotControl(lead));
    }
    let kind = ControlKind::from_lead_byte(lead).ok_or(ControlError::UnknownLeadByte(lead))?;
    if !kind.is_padded() {
        return Ok((kind, rest));
    }
    if datagram.len() < MIN_PADDED_PACKET {
        return Err(ControlError::PaddedTooShort(datagram.len()));
    }
    let len = u16::from_le_bytes([datagram[1], datagram[2]]);
    if len == 0 {
        return Err(ControlError::PaddedZeroLength);
    }
    let body = datagram
        .get(PADDED_HEADER_LEN..PADDED_HEADER_LEN + usize::from(len))
        .ok_or(ControlError::PaddedLengthOverrun(len))?;
    Ok((kind, body))
}

/// Decodes a control datagram (lead byte included). Does not apply the 5-byte minimum of
/// [`crate::wire::packet::classify`]; call that first on received datagrams.
pub fn decode_control(datagram: &[u8]) -> Result<ControlMessage, ControlError> {
    let (kind, body) = split_control(datagram)?;
    let err = |_| ControlError::Protobuf(kind);
    Ok(match kind {
        ControlKind::ChallengeRequest => {
            ControlMessage::ChallengeRequest(proto::ChallengeRequest::decode(body).map_err(err)?)
        }
        ControlKind::ChallengeReply => {
            ControlMessage::ChallengeReply(proto::ChallengeReply::decode(body).map_err(err)?)
        }
        ControlKind::ConnectRequest => ControlMessage::ConnectRequest(Box::new(
            proto::ConnectRequest::decode(body).map_err(err)?,
        )),
        ControlKind::ConnectOk => {
            ControlMessage::ConnectOk(Box::new(proto::ConnectOk::decode(body).map_err(err)?))
        }
        ControlKind::ConnectionClosed => {
            ControlMessage::ConnectionClosed(proto::ConnectionClosed::decode(body).map_err(err)?)
        }
        ControlKind::NoConnection => {
            ControlMessage::NoConnection(proto::NoConnection::decode(body).map_err(err)?)
        }
    })
}

impl ControlMessage {
    /// Which message this is (and so its lead byte and framing).
    pub fn kind(&self) -> ControlKind {
        match self {
            Self::ChallengeRequest(_) => ControlKind::ChallengeRequest,
            Self::ChallengeReply(_) => ControlKind::ChallengeReply,
            Self::ConnectRequest(_) => ControlKind::ConnectRequest,
            Self::ConnectOk(_) => ControlKind::ConnectOk,
            Self::ConnectionClosed(_) => ControlKind::ConnectionClosed,
            Self::NoConnection(_) => ControlKind::NoConnection,
        }
    }

    fn as_message(&self) -> &dyn ProtoBody {
        match self {
            Self::ChallengeRequest(m) => m,
            Self::ChallengeReply(m) => m,
            Self::ConnectRequest(m) => m.as_ref(),
            Self::ConnectOk(m) => m.as_ref(),
            Self::ConnectionClosed(m) => m,
            Self::NoConnection(m) => m,
        }
    }

    /// Length of the protobuf body alone.
    pub fn protobuf_len(&self) -> usize {
        self.as_message().body_len()
    }

    /// Length of the whole datagram [`ControlMessage::encode`] would write (padding included),
    /// whether or not it is within the 1300-byte cap.
    pub fn encoded_len(&self) -> usize {
        let body = self.protobuf_len();
        if self.kind().is_padded() {
            (PADDED_HEADER_LEN + body).max(MIN_PADDED_PACKET)
        } else {
            1 + body
        }
    }

    /// Appends the framed datagram to `out` and returns its length. Appending (rather than a
    /// fixed slice) lets the caller reuse one buffer; on error `out` is left unchanged.
    /// Refuses what a receiver would reject: over 1300 bytes ([`ControlError::TooLarge`]) or
    /// a padded kind with an empty body ([`ControlError::PaddedZeroLength`]).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize, ControlError> {
        let total = self.encoded_len();
        if total > MAX_UDP_PAYLOAD {
            return Err(ControlError::TooLarge(total));
        }
        if self.kind().is_padded() && self.protobuf_len() == 0 {
            // Receivers (ours and GNS's) reject a zero-length padded body; never emit one.
            return Err(ControlError::PaddedZeroLength);
        }
        let start = out.len();
        out.reserve(total);
        out.push(self.kind().lead_byte());
        let body = self.protobuf_len();
        if self.kind().is_padded() {
            // invariant: body < 1300 here, so it fits a u16.
            let len = u16::try_from(body).expect("body below 1300 fits u16");
            out.extend_from_slice(&len.to_le_bytes());
        }
        self.as_message().write_body(out);
        out.resize(start + total, 0);
        Ok(total)
    }

    /// Checks the fields GNS requires before acting on the message:
    ///
    /// - ChallengeRequest: `connection_id` present, non-zero.
    /// - ChallengeReply: `connection_id` present, non-zero.
    /// - ConnectRequest: `client_connection_id` present, non-zero; `crypt` with `info` and
    ///   `signature`; `cert` with `cert` bytes.
    /// - ConnectOK: as ConnectRequest, plus `server_connection_id` present with non-zero low
    ///   16 bits.
    /// - ConnectionClosed, NoConnection: nothing is required; whether they match a connection
    ///   is the state machine's decision (spec §2.10).
    pub fn validate(&self) -> Result<(), InvalidControl> {
        match self {
            Self::ChallengeRequest(m) => nonzero_id(m.connection_id).map(drop),
            Self::ChallengeReply(m) => nonzero_id(m.connection_id).map(drop),
            Self::ConnectRequest(m) => {
                nonzero_id(m.client_connection_id)?;
                check_crypt(m.crypt.as_ref())?;
                check_cert(m.cert.as_ref())
            }
            Self::ConnectOk(m) => {
                nonzero_id(m.client_connection_id)?;
                let server = nonzero_id(m.server_connection_id)?;
                if server & 0xffff == 0 {
                    return Err(InvalidControl::ServerIdLow16Zero);
                }
                check_crypt(m.crypt.as_ref())?;
                check_cert(m.cert.as_ref())
            }
            Self::ConnectionClosed(_) | Self::NoConnection(_) => Ok(()),
        }
    }
}

/// Object-safe view of the prost messages, so encoding is written once.
trait ProtoBody {
    fn body_len(&self) -> usize;
    fn write_body(&self, out: &mut Vec<u8>);
}

impl<M: Message> ProtoBody for M {
    fn body_len(&self) -> usize {
        self.encoded_len()
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        // invariant: a Vec grows on demand, so prost's capacity check cannot fail.
        self.encode(out).expect("Vec has unbounded capacity");
    }
}

fn nonzero_id(id: Option<u32>) -> Result<u32, InvalidControl> {
    match id {
        None => Err(InvalidControl::MissingConnectionId),
        Some(0) => Err(InvalidControl::ZeroConnectionId),
        Some(id) => Ok(id),
    }
}

fn check_crypt(crypt: Option<&proto::CryptInfoSigned>) -> Result<(), InvalidControl> {
    let crypt = crypt.ok_or(InvalidControl::MissingCrypt)?;
    if crypt.info.is_none() {
        return Err(InvalidControl::MissingCryptInfo);
    }
    if crypt.signature.is_none() {
        return Err(InvalidControl::MissingCryptSignature);
    }
    Ok(())
}

fn check_cert(cert: Option<&proto::CertificateSigned>) -> Result<(), InvalidControl> {
    let cert = cert.ok_or(InvalidControl::MissingCert)?;
    if cert.cert.is_none() {
        return Err(InvalidControl::MissingCertBody);
    }
    Ok(())
}

/// Parses the `info` bytes of a signed crypt info. The raw bytes stay authoritative (they are
/// what is signed and fed into the key derivation); this is for reading the fields.
pub fn decode_crypt_info(
    signed: &proto::CryptInfoSigned,
) -> Result<proto::CryptInfo, InvalidControl> {
    let info = signed
        .info
        .as_deref()
        .ok_or(InvalidControl::MissingCryptInfo)?;
    proto::CryptInfo::decode(info).map_err(|_| InvalidControl::CryptInfoProtobuf)
}

/// Parses the `cert` bytes of a signed certificate; as with [`decode_crypt_info`], the raw
/// bytes stay authoritative.
pub fn decode_certificate(
    signed: &proto::CertificateSigned,
) -> Result<proto::Certificate, InvalidControl> {
    let cert = signed
        .cert
        .as_deref()
        .ok_or(InvalidControl::MissingCertBody)?;
    proto::Certificate::decode(cert).map_err(|_| InvalidControl::CertProtobuf)
}

impl From<proto::ChallengeRequest> for ControlMessage {
    fn from(m: proto::ChallengeRequest) -> Self {
        Self::ChallengeRequest(m)
    }
}

impl From<proto::ChallengeReply> for ControlMessage {
    fn from(m: proto::ChallengeReply) -> Self {
        Self::ChallengeReply(m)
    }
}

impl From<proto::ConnectRequest> for ControlMessage {
    fn from(m: proto::ConnectRequest) -> Self {
        Self::ConnectRequest(Box::new(m))
    }
}

impl From<proto::ConnectOk> for ControlMessage {
    fn from(m: proto::ConnectOk) -> Self {
        Self::ConnectOk(Box::new(m))
    }
}

impl From<proto::ConnectionClosed> for ControlMessage {
    fn from(m: proto::ConnectionClosed) -> Self {
        Self::ConnectionClosed(m)
    }
}

impl From<proto::NoConnection> for ControlMessage {
    fn from(m: proto::NoConnection) -> Self {
        Self::NoConnection(m)
    }
}

#[cfg(test)]
mod tests;
