//! Datagram-level facts: the size limits GNS works with (spec §1.4) and the first look at a
//! datagram, which decides from its lead byte whether it is a data packet or one of the six
//! control messages (spec §1.1). Nothing here parses past the first bytes; the header and
//! control codecs do that.

/// Largest UDP payload GNS sends (`MTU_PacketSize` default and maximum,
/// `k_cbSteamNetworkingSocketsMaxUDPMsgLen`). Control messages are capped at this too.
pub const MAX_UDP_PAYLOAD: usize = 1300;

/// Smallest value the `MTU_PacketSize` config accepts (spec §1.4, range 200..1300).
pub const MIN_MTU_PACKET_SIZE: usize = 200;

/// Largest encrypted SNP chunk GNS sends (`k_cbSteamNetworkingSocketsMaxEncryptedPayloadSend`):
/// leaves 52 bytes of the 1300 for the header and a stats blob.
pub const MAX_ENCRYPTED_PAYLOAD_SEND: usize = 1248;

/// AES-256-GCM tag length; appended to every encrypted payload (0 with the NULL cipher).
pub const AEAD_TAG_LEN: usize = 16;

/// Largest SNP plaintext GNS puts in one packet: 1248 minus the GCM tag.
pub const MAX_PLAINTEXT_SEND: usize = MAX_ENCRYPTED_PAYLOAD_SEND - AEAD_TAG_LEN;

/// Largest SNP plaintext GNS accepts (its decrypt buffer size); tolerate this much on receive.
pub const MAX_PLAINTEXT_RECV: usize = 1300;

/// Largest ciphertext (plaintext plus tag) a receiver must be ready to open.
pub const MAX_CIPHERTEXT_RECV: usize = MAX_PLAINTEXT_RECV + AEAD_TAG_LEN;

/// GNS's receive buffer per datagram (1300 + 1024); longer datagrams are truncated by it, so a
/// receive buffer this large sees everything GNS could.
pub const RECV_BUFFER_LEN: usize = MAX_UDP_PAYLOAD + 1024;

/// Padded control messages (ChallengeRequest, ConnectionClosed) are at least this long
/// (`k_cbSteamNetworkingMinPaddedPacketSize`), so that their small replies cannot amplify.
pub const MIN_PADDED_PACKET: usize = 512;

/// Datagrams shorter than this are dropped before the lead byte is looked at (GNS's
/// "packet is way too small" check, spec §1.1).
pub const MIN_DATAGRAM_LEN: usize = 5;

/// The fixed part of a data packet header: flags, to_connection_id, 16-bit packet number.
pub const DATA_HEADER_LEN: usize = 7;

/// `MTU_DataSize` as reported to applications: `MTU_PacketSize - 100`, "the largest message
/// that won't fragment".
pub const MTU_DATA_SIZE: usize = MAX_UDP_PAYLOAD - 100;

/// GNS's internal "no fragment" size, `MAX_PLAINTEXT_SEND - 100`, used for queue-time
/// estimates.
pub const NO_FRAGMENT_SIZE: usize = MAX_PLAINTEXT_SEND - 100;

/// Most reliable-stream bytes GNS puts in one segment with default MTU and AES.
pub const MAX_RELIABLE_SEGMENT: usize = NO_FRAGMENT_SIZE + 5;

/// Largest message GNS sends (`k_cbMaxSteamNetworkingSocketsMessageSizeSend`); also the
/// default `RecvMaxMessageSize`.
pub const MAX_MESSAGE_SIZE: usize = 512 * 1024;

/// Bit 7 of the lead byte: set on every data packet and on no control message.
pub const DATA_LEAD_BIT: u8 = 0x80;

/// The six control messages, by lead byte (spec §1.1, §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ControlKind {
    /// Client asks for a challenge (padded).
    ChallengeRequest = 32,
    /// Server's stateless cookie.
    ChallengeReply = 33,
    /// Client's keys and certificate.
    ConnectRequest = 34,
    /// Server's keys and certificate.
    ConnectOk = 35,
    /// Either side closes (padded; asks for a NoConnection reply).
    ConnectionClosed = 36,
    /// "No such connection"; never answered.
    NoConnection = 37,
}

impl ControlKind {
    /// All kinds, in lead-byte order.
    pub const ALL: [ControlKind; 6] = [
        ControlKind::ChallengeRequest,
        ControlKind::ChallengeReply,
        ControlKind::ConnectRequest,
        ControlKind::ConnectOk,
        ControlKind::ConnectionClosed,
        ControlKind::NoConnection,
    ];

    /// The lead byte (`k_ESteamNetworkingUDPMsg_*`).
    pub const fn lead_byte(self) -> u8 {
        self as u8
    }

    /// The kind a lead byte names, if any.
    pub const fn from_lead_byte(byte: u8) -> Option<Self> {
        match byte {
            32 => Some(Self::ChallengeRequest),
            33 => Some(Self::ChallengeReply),
            34 => Some(Self::ConnectRequest),
            35 => Some(Self::ConnectOk),
            36 => Some(Self::ConnectionClosed),
            37 => Some(Self::NoConnection),
            _ => None,
        }
    }

    /// Whether the message travels padded (`[lead][u16 len][protobuf][zeros]` to 512 bytes):
    /// the two that ask for a reply from a possibly unknown address.
    pub const fn is_padded(self) -> bool {
        matches!(self, Self::ChallengeRequest | Self::ConnectionClosed)
    }

    /// Whether a listen socket acts on this kind from an address with no connection
    /// (`CSteamNetworkListenSocketDirectUDP::ReceivedFromUnknownHost`): ChallengeReply and
    /// ConnectOK are server-to-client only, and NoConnection is never answered.
    pub const fn handled_by_listen_socket(self) -> bool {
        matches!(
            self,
            Self::ChallengeRequest | Self::ConnectRequest | Self::ConnectionClosed
        )
    }
}

/// What a datagram is, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Encrypted data packet (lead byte has bit 7 set); see [`crate::wire::header`].
    Data,
    /// A control message; see [`crate::wire::control`].
    Control(ControlKind),
}

/// Why a datagram was dropped before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than [`MIN_DATAGRAM_LEN`].
    #[error("datagram of {0} bytes is too short")]
    TooShort(usize),
    /// Starts `FF FF FF FF`: a Source-engine connectionless packet, ignored silently.
    #[error("connectionless (FF FF FF FF) packet")]
    Connectionless,
    /// Lead byte is neither a data packet nor a known control message.
    #[error("unknown lead byte {0:#04x}")]
    UnknownLeadByte(u8),
}

/// Classifies a datagram by its lead byte, applying GNS's drop rules (spec §1.1): too short,
/// connectionless `FF FF FF FF`, unknown lead byte.
///
/// GNS only checks for `FF FF FF FF` on the listen socket; we check it everywhere, which is
/// safe because GNS never sends a data packet whose flags byte is `0xFF` (it only ever sets
/// 0x80, 0x01 and 0x02). Whether a listen socket should act on the result is
/// [`PacketKind::handled_by_listen_socket`]'s business.
pub fn classify(datagram: &[u8]) -> Result<PacketKind, PacketError> {
    if datagram.len() < MIN_DATAGRAM_LEN {
        return Err(PacketError::TooShort(datagram.len()));
    }
    let lead = datagram[0];
    if datagram[..4] == [0xff; 4] {
        return Err(PacketError::Connectionless);
    }
    if lead & DATA_LEAD_BIT != 0 {
        return Ok(PacketKind::Data);
    }
    ControlKind::from_lead_byte(lead)
        .map(PacketKind::Control)
        .ok_or(PacketError::UnknownLeadByte(lead))
}

/// The receiver's connection id of a data packet (lead byte has bit 7 set, id in bytes 1..5,
/// little-endian); `None` for anything shorter or not data. The one place that reads it, so
/// routing, steering and header decoding cannot disagree.
pub fn receiver_id(datagram: &[u8]) -> Option<u32> {
    match *datagram {
        [lead, a, b, c, d, ..] if lead & DATA_LEAD_BIT != 0 => {
            Some(u32::from_le_bytes([a, b, c, d]))
        }
        _ => None,
    }
}

impl PacketKind {
    /// Whether a listen socket acts on this from an unknown address: stray data packets are
    /// ignored without a reply, and so are ChallengeReply, ConnectOK and NoConnection.
    pub const fn handled_by_listen_socket(self) -> bool {
        match self {
            PacketKind::Data => false,
            PacketKind::Control(kind) => kind.handled_by_listen_socket(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_match_spec_table() {
        assert_eq!(MAX_PLAINTEXT_SEND, 1232);
        assert_eq!(MAX_UDP_PAYLOAD - MAX_ENCRYPTED_PAYLOAD_SEND, 52);
        assert_eq!(MAX_CIPHERTEXT_RECV, 1316);
        assert_eq!(RECV_BUFFER_LEN, 2324);
        assert_eq!(MTU_DATA_SIZE, 1200);
        assert_eq!(NO_FRAGMENT_SIZE, 1132);
        assert_eq!(MAX_RELIABLE_SEGMENT, 1137);
        assert_eq!(MAX_MESSAGE_SIZE, 524_288);
    }

    #[test]
    fn lead_bytes() {
        for kind in ControlKind::ALL {
            assert_eq!(ControlKind::from_lead_byte(kind.lead_byte()), Some(kind));
            let mut d = [0u8; 5];
            d[0] = kind.lead_byte();
            assert_eq!(classify(&d), Ok(PacketKind::Control(kind)));
        }
        assert!(ControlKind::ChallengeRequest.is_padded());
        assert!(ControlKind::ConnectionClosed.is_padded());
        assert!(!ControlKind::NoConnection.is_padded());
        assert_eq!(classify(&[0x80, 1, 2, 3, 4]), Ok(PacketKind::Data));
        assert_eq!(classify(&[0x81, 0xff, 0xff, 0xff, 0]), Ok(PacketKind::Data));
    }

    #[test]
    fn receiver_ids() {
        assert_eq!(receiver_id(&[0x80, 1, 2, 3, 4]), Some(0x0403_0201));
        assert_eq!(receiver_id(&[0x83, 1, 0, 0, 0, 9, 9]), Some(1));
        assert_eq!(receiver_id(&[0x80, 1, 2, 3]), None, "too short");
        assert_eq!(receiver_id(&[0x22, 1, 2, 3, 4]), None, "control");
    }

    #[test]
    fn drop_rules() {
        assert_eq!(classify(&[]), Err(PacketError::TooShort(0)));
        assert_eq!(classify(&[0x80; 4]), Err(PacketError::TooShort(4)));
        assert_eq!(
            classify(&[0xff, 0xff, 0xff, 0xff, b'T']),
            Err(PacketError::Connectionless)
        );
        assert_eq!(
            classify(&[0x26, 0, 0, 0, 0]),
            Err(PacketError::UnknownLeadByte(0x26))
        );
        assert_eq!(
            classify(&[0x1f, 0, 0, 0, 0]),
            Err(PacketError::UnknownLeadByte(0x1f))
        );
    }

    #[test]
    fn listen_socket_policy() {
        assert!(!PacketKind::Data.handled_by_listen_socket());
        let handled: Vec<_> = ControlKind::ALL
            .into_iter()
            .filter(|k| PacketKind::Control(*k).handled_by_listen_socket())
            .collect();
        assert_eq!(
            handled,
            [
                ControlKind::ChallengeRequest,
                ControlKind::ConnectRequest,
                ControlKind::ConnectionClosed
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            match classify(&bytes) {
                Ok(PacketKind::Data) => prop_assert!(bytes[0] & 0x80 != 0),
                Ok(PacketKind::Control(k)) => prop_assert_eq!(k.lead_byte(), bytes[0]),
                Err(_) => {}
            }
        }
    }
}
