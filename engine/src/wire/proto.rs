//! GNS's protobuf messages (proto2), written by hand with `prost` derive so no `protoc` is
//! needed at build time. Field numbers and types follow spec §2.7-2.8 exactly; structs declare
//! fields in ascending tag order because that is the order GNS writes them (and prost encodes
//! in declaration order), which keeps our encodings byte-identical to GNS's.
//!
//! Every field is `optional` as in the `.proto` files: absence and zero are different things on
//! the wire (`to_connection_id` is omitted when unknown, `app_ids = [0]` is not `app_ids = []`).
//! Repeated scalars are unpacked (proto2's default), as GNS sends them; prost decodes both forms.
//!
//! GNS: `steamnetworkingsockets_messages_udp.proto`, `steamnetworkingsockets_messages_certs.proto`,
//! `steamnetworkingsockets_messages.proto`.

#![allow(
    clippy::derive_partial_eq_without_eq,
    reason = "prost's derive emits impls that clippy cannot see through; the structs are plain data"
)]

/// `ESteamNetworkingSocketsCipher`: the packet ciphers a peer offers or the server picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Cipher {
    /// Not a cipher; never valid on the wire.
    Invalid = 0,
    /// No encryption, no tag (`Unencrypted` config, danger).
    Null = 1,
    /// AES-256-GCM with a 16-byte tag: the default and the only one GNS offers unless told.
    Aes256Gcm = 2,
}

/// `CMsgSteamDatagramSessionCryptInfo.EKeyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CryptKeyType {
    /// Invalid.
    Invalid = 0,
    /// X25519 ephemeral public key, 32 bytes.
    Curve25519 = 1,
}

/// `CMsgSteamDatagramCertificate.EKeyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CertKeyType {
    /// Invalid.
    Invalid = 0,
    /// Ed25519 public key, 32 bytes.
    Ed25519 = 1,
}

/// `CMsgSteamNetworkingIdentityLegacyBinary`: the old binary identity, type implied by the field
/// present. Read when `identity_string` is absent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IdentityLegacyBinary {
    /// Generic bytes identity.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub generic_bytes: Option<Vec<u8>>,
    /// Generic string identity.
    #[prost(string, optional, tag = "3")]
    pub generic_string: Option<String>,
    /// IP identity: 16-byte IPv6 (IPv4 mapped) then the port big-endian, 18 bytes.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub ipv6_and_port: Option<Vec<u8>>,
    /// 64-bit SteamID.
    #[prost(fixed64, optional, tag = "16")]
    pub steam_id: Option<u64>,
}

/// `CMsgSteamDatagramSessionCryptInfo`: a side's ephemeral key exchange offer. Its serialized
/// bytes are signed and also fed verbatim into the key derivation, so keep them as received.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CryptInfo {
    /// Key type; must be [`CryptKeyType::Curve25519`].
    #[prost(enumeration = "CryptKeyType", optional, tag = "1")]
    pub key_type: Option<i32>,
    /// 32-byte X25519 public key.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub key_data: Option<Vec<u8>>,
    /// Random nonce, half of the key-derivation salt.
    #[prost(fixed64, optional, tag = "3")]
    pub nonce: Option<u64>,
    /// Signed (authoritative) protocol version.
    #[prost(uint32, optional, tag = "4")]
    pub protocol_version: Option<u32>,
    /// Client: preference list; server: exactly the chosen cipher. Values of [`Cipher`].
    #[prost(enumeration = "Cipher", repeated, packed = "false", tag = "5")]
    pub ciphers: Vec<i32>,
}

/// `CMsgSteamDatagramSessionCryptInfoSigned`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CryptInfoSigned {
    /// Serialized [`CryptInfo`], exactly as signed.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub info: Option<Vec<u8>>,
    /// 64-byte Ed25519 signature of `info` by the sender's certificate key.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature: Option<Vec<u8>>,
}

/// `CMsgSteamDatagramCertificate`: binds an Ed25519 key to an identity and app ids.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Certificate {
    /// Key type; must be [`CertKeyType::Ed25519`].
    #[prost(enumeration = "CertKeyType", optional, tag = "1")]
    pub key_type: Option<i32>,
    /// 32-byte Ed25519 public key.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub key_data: Option<Vec<u8>>,
    /// Legacy SteamID identity.
    #[prost(fixed64, optional, tag = "4")]
    pub legacy_steam_id: Option<u64>,
    /// Data centers (POP ids) a relay-scoped cert is valid for.
    #[prost(fixed32, repeated, packed = "false", tag = "5")]
    pub gameserver_datacenter_ids: Vec<u32>,
    /// Creation time, unix seconds.
    #[prost(fixed32, optional, tag = "8")]
    pub time_created: Option<u32>,
    /// Expiry time, unix seconds; only checked for CA-signed certs.
    #[prost(fixed32, optional, tag = "9")]
    pub time_expiry: Option<u32>,
    /// Apps this cert may be used for; GNS's self-issued certs carry `[0]`.
    #[prost(uint32, repeated, packed = "false", tag = "10")]
    pub app_ids: Vec<u32>,
    /// Legacy binary identity.
    #[prost(message, optional, tag = "11")]
    pub legacy_identity_binary: Option<IdentityLegacyBinary>,
    /// Identity in string form (spec §2.9), preferred.
    #[prost(string, optional, tag = "12")]
    pub identity_string: Option<String>,
    /// IP addresses the cert is restricted to.
    #[prost(string, repeated, tag = "13")]
    pub ip_addresses: Vec<String>,
}

/// `CMsgSteamDatagramCertificateSigned`: a certificate and, when CA-issued, its signature.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertificateSigned {
    /// Private key (local cert+key bundles only, never on the wire).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub private_key_data: Option<Vec<u8>>,
    /// Serialized [`Certificate`], exactly as signed and as fed to the key derivation.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub cert: Option<Vec<u8>>,
    /// Signing CA key id (first 8 bytes of SHA-256 of its public key, LE).
    #[prost(fixed64, optional, tag = "5")]
    pub ca_key_id: Option<u64>,
    /// Ed25519 signature of `cert` by the CA.
    #[prost(bytes = "vec", optional, tag = "6")]
    pub ca_signature: Option<Vec<u8>>,
}

/// `CMsgSteamDatagramCertificateRequest`: what a CA is asked to sign.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertificateRequest {
    /// The certificate to sign.
    #[prost(message, optional, tag = "1")]
    pub cert: Option<Certificate>,
}

/// `CMsgSteamSockets_UDP_ChallengeRequest` (lead byte 32, padded).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChallengeRequest {
    /// Client's connection id, non-zero.
    #[prost(fixed32, optional, tag = "1")]
    pub connection_id: Option<u32>,
    /// Opaque client timestamp, echoed back.
    #[prost(fixed64, optional, tag = "3")]
    pub my_timestamp: Option<u64>,
    /// Client's protocol version (13).
    #[prost(uint32, optional, tag = "4")]
    pub protocol_version: Option<u32>,
}

/// `CMsgSteamSockets_UDP_ChallengeReply` (lead byte 33).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChallengeReply {
    /// Echo of the client's connection id.
    #[prost(fixed32, optional, tag = "1")]
    pub connection_id: Option<u32>,
    /// Stateless cookie the client must return in its ConnectRequest.
    #[prost(fixed64, optional, tag = "2")]
    pub challenge: Option<u64>,
    /// Echo of the request's `my_timestamp` (an RTT sample).
    #[prost(fixed64, optional, tag = "3")]
    pub your_timestamp: Option<u64>,
    /// Server's protocol version.
    #[prost(uint32, optional, tag = "4")]
    pub protocol_version: Option<u32>,
}

/// `CMsgSteamSockets_UDP_ConnectRequest` (lead byte 34).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectRequest {
    /// Client's connection id.
    #[prost(fixed32, optional, tag = "1")]
    pub client_connection_id: Option<u32>,
    /// The challenge from the ChallengeReply.
    #[prost(fixed64, optional, tag = "2")]
    pub challenge: Option<u64>,
    /// Legacy SteamID of the client.
    #[prost(fixed64, optional, tag = "3")]
    pub legacy_client_steam_id: Option<u64>,
    /// Client certificate (required).
    #[prost(message, optional, tag = "4")]
    pub cert: Option<CertificateSigned>,
    /// Opaque client timestamp, echoed in ConnectOK.
    #[prost(fixed64, optional, tag = "5")]
    pub my_timestamp: Option<u64>,
    /// Client's smoothed ping estimate, if it has one.
    #[prost(uint32, optional, tag = "6")]
    pub ping_est_ms: Option<u32>,
    /// Client's signed crypt info (required).
    #[prost(message, optional, tag = "7")]
    pub crypt: Option<CryptInfoSigned>,
    /// Legacy protocol version (not sent by current GNS).
    #[prost(uint32, optional, tag = "8")]
    pub legacy_protocol_version: Option<u32>,
    /// Legacy binary identity.
    #[prost(message, optional, tag = "9")]
    pub legacy_identity_binary: Option<IdentityLegacyBinary>,
    /// Identity string, when the cert carries none.
    #[prost(string, optional, tag = "10")]
    pub identity_string: Option<String>,
}

/// `CMsgSteamSockets_UDP_ConnectOK` (lead byte 35).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectOk {
    /// Client's connection id.
    #[prost(fixed32, optional, tag = "1")]
    pub client_connection_id: Option<u32>,
    /// Legacy SteamID of the server.
    #[prost(fixed64, optional, tag = "2")]
    pub legacy_server_steam_id: Option<u64>,
    /// Echo of ConnectRequest.my_timestamp (omitted when older than 4 s).
    #[prost(fixed64, optional, tag = "3")]
    pub your_timestamp: Option<u64>,
    /// Time the server held the request before replying, microseconds.
    #[prost(uint32, optional, tag = "4")]
    pub delay_time_usec: Option<u32>,
    /// Server's connection id; low 16 bits non-zero.
    #[prost(fixed32, optional, tag = "5")]
    pub server_connection_id: Option<u32>,
    /// Server's signed crypt info, with exactly one cipher.
    #[prost(message, optional, tag = "7")]
    pub crypt: Option<CryptInfoSigned>,
    /// Server certificate.
    #[prost(message, optional, tag = "8")]
    pub cert: Option<CertificateSigned>,
    /// Legacy binary identity.
    #[prost(message, optional, tag = "10")]
    pub legacy_identity_binary: Option<IdentityLegacyBinary>,
    /// Identity string, when the cert carries none.
    #[prost(string, optional, tag = "11")]
    pub identity_string: Option<String>,
}

/// `CMsgSteamSockets_UDP_ConnectionClosed` (lead byte 36, padded).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectionClosed {
    /// Human-readable reason (≤ 127 chars in practice).
    #[prost(string, optional, tag = "2")]
    pub debug: Option<String>,
    /// `ESteamNetConnectionEnd` code.
    #[prost(uint32, optional, tag = "3")]
    pub reason_code: Option<u32>,
    /// Receiver's connection id, absent when unknown.
    #[prost(fixed32, optional, tag = "4")]
    pub to_connection_id: Option<u32>,
    /// Sender's connection id.
    #[prost(fixed32, optional, tag = "5")]
    pub from_connection_id: Option<u32>,
}

/// `CMsgSteamSockets_UDP_NoConnection` (lead byte 37): "I have no such connection".
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoConnection {
    /// The id the peer addressed (the sender's own, from its point of view).
    #[prost(fixed32, optional, tag = "2")]
    pub from_connection_id: Option<u32>,
    /// The peer's id, if known.
    #[prost(fixed32, optional, tag = "3")]
    pub to_connection_id: Option<u32>,
}

/// `CMsgSteamDatagramLinkInstantaneousStats`: the last few seconds of a link.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkInstantaneousStats {
    /// Packets sent per second ×10.
    #[prost(uint32, optional, tag = "1")]
    pub out_packets_per_sec_x10: Option<u32>,
    /// Bytes sent per second.
    #[prost(uint32, optional, tag = "2")]
    pub out_bytes_per_sec: Option<u32>,
    /// Packets received per second ×10.
    #[prost(uint32, optional, tag = "3")]
    pub in_packets_per_sec_x10: Option<u32>,
    /// Bytes received per second.
    #[prost(uint32, optional, tag = "4")]
    pub in_bytes_per_sec: Option<u32>,
    /// Smoothed ping, ms.
    #[prost(uint32, optional, tag = "5")]
    pub ping_ms: Option<u32>,
    /// Dropped packets, percent.
    #[prost(uint32, optional, tag = "6")]
    pub packets_dropped_pct: Option<u32>,
    /// Out-of-order or duplicate packets, percent.
    #[prost(uint32, optional, tag = "7")]
    pub packets_weird_sequence_pct: Option<u32>,
    /// Peak jitter, microseconds.
    #[prost(uint32, optional, tag = "8")]
    pub peak_jitter_usec: Option<u32>,
}

/// `CMsgSteamDatagramLinkLifetimeStats`: counters and histograms since the link started.
/// Optional for interop; kept complete so stats blobs from GNS decode losslessly.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkLifetimeStats {
    /// Seconds connected.
    #[prost(uint32, optional, tag = "2")]
    pub connected_seconds: Option<u32>,
    /// Packets sent.
    #[prost(uint64, optional, tag = "3")]
    pub packets_sent: Option<u64>,
    /// KiB sent.
    #[prost(uint64, optional, tag = "4")]
    pub kb_sent: Option<u64>,
    /// Packets received.
    #[prost(uint64, optional, tag = "5")]
    pub packets_recv: Option<u64>,
    /// KiB received.
    #[prost(uint64, optional, tag = "6")]
    pub kb_recv: Option<u64>,
    /// Sequenced packets received.
    #[prost(uint64, optional, tag = "7")]
    pub packets_recv_sequenced: Option<u64>,
    /// Packets inferred dropped.
    #[prost(uint64, optional, tag = "8")]
    pub packets_recv_dropped: Option<u64>,
    /// Packets received out of order.
    #[prost(uint64, optional, tag = "9")]
    pub packets_recv_out_of_order: Option<u64>,
    /// Duplicate packets received.
    #[prost(uint64, optional, tag = "10")]
    pub packets_recv_duplicate: Option<u64>,
    /// Packet-number lurches.
    #[prost(uint64, optional, tag = "11")]
    pub packets_recv_lurch: Option<u64>,
    /// Multipath: sequenced packets per path.
    #[prost(uint64, repeated, packed = "false", tag = "12")]
    pub multipath_packets_recv_sequenced: Vec<u64>,
    /// Multipath: packets that arrived later on a path.
    #[prost(uint64, repeated, packed = "false", tag = "13")]
    pub multipath_packets_recv_later: Vec<u64>,
    /// Multipath send enabled.
    #[prost(uint32, optional, tag = "14")]
    pub multipath_send_enabled: Option<u32>,
    /// Out-of-order packets later corrected.
    #[prost(uint64, optional, tag = "15")]
    pub packets_recv_out_of_order_corrected: Option<u64>,
    /// Quality histogram: intervals at 100 %.
    #[prost(uint32, optional, tag = "21")]
    pub quality_histogram_100: Option<u32>,
    /// Quality histogram: ≥ 99 %.
    #[prost(uint32, optional, tag = "22")]
    pub quality_histogram_99: Option<u32>,
    /// Quality histogram: ≥ 97 %.
    #[prost(uint32, optional, tag = "23")]
    pub quality_histogram_97: Option<u32>,
    /// Quality histogram: ≥ 95 %.
    #[prost(uint32, optional, tag = "24")]
    pub quality_histogram_95: Option<u32>,
    /// Quality histogram: ≥ 90 %.
    #[prost(uint32, optional, tag = "25")]
    pub quality_histogram_90: Option<u32>,
    /// Quality histogram: ≥ 75 %.
    #[prost(uint32, optional, tag = "26")]
    pub quality_histogram_75: Option<u32>,
    /// Quality histogram: ≥ 50 %.
    #[prost(uint32, optional, tag = "27")]
    pub quality_histogram_50: Option<u32>,
    /// Quality histogram: ≥ 1 %.
    #[prost(uint32, optional, tag = "28")]
    pub quality_histogram_1: Option<u32>,
    /// Quality histogram: dead intervals.
    #[prost(uint32, optional, tag = "29")]
    pub quality_histogram_dead: Option<u32>,
    /// Quality 2nd percentile.
    #[prost(uint32, optional, tag = "30")]
    pub quality_ntile_2nd: Option<u32>,
    /// Quality 5th percentile.
    #[prost(uint32, optional, tag = "31")]
    pub quality_ntile_5th: Option<u32>,
    /// Quality 25th percentile.
    #[prost(uint32, optional, tag = "32")]
    pub quality_ntile_25th: Option<u32>,
    /// Quality 50th percentile.
    #[prost(uint32, optional, tag = "33")]
    pub quality_ntile_50th: Option<u32>,
    /// Ping histogram ≤ 25 ms.
    #[prost(uint32, optional, tag = "41")]
    pub ping_histogram_25: Option<u32>,
    /// Ping histogram ≤ 50 ms.
    #[prost(uint32, optional, tag = "42")]
    pub ping_histogram_50: Option<u32>,
    /// Ping histogram ≤ 75 ms.
    #[prost(uint32, optional, tag = "43")]
    pub ping_histogram_75: Option<u32>,
    /// Ping histogram ≤ 100 ms.
    #[prost(uint32, optional, tag = "44")]
    pub ping_histogram_100: Option<u32>,
    /// Ping histogram ≤ 125 ms.
    #[prost(uint32, optional, tag = "45")]
    pub ping_histogram_125: Option<u32>,
    /// Ping histogram ≤ 150 ms.
    #[prost(uint32, optional, tag = "46")]
    pub ping_histogram_150: Option<u32>,
    /// Ping histogram ≤ 200 ms.
    #[prost(uint32, optional, tag = "47")]
    pub ping_histogram_200: Option<u32>,
    /// Ping histogram ≤ 300 ms.
    #[prost(uint32, optional, tag = "48")]
    pub ping_histogram_300: Option<u32>,
    /// Ping histogram > 300 ms.
    #[prost(uint32, optional, tag = "49")]
    pub ping_histogram_max: Option<u32>,
    /// Ping 5th percentile.
    #[prost(uint32, optional, tag = "50")]
    pub ping_ntile_5th: Option<u32>,
    /// Ping 50th percentile.
    #[prost(uint32, optional, tag = "51")]
    pub ping_ntile_50th: Option<u32>,
    /// Ping 75th percentile.
    #[prost(uint32, optional, tag = "52")]
    pub ping_ntile_75th: Option<u32>,
    /// Ping 95th percentile.
    #[prost(uint32, optional, tag = "53")]
    pub ping_ntile_95th: Option<u32>,
    /// Ping 98th percentile.
    #[prost(uint32, optional, tag = "54")]
    pub ping_ntile_98th: Option<u32>,
    /// Jitter histogram < 1 ms.
    #[prost(uint32, optional, tag = "61")]
    pub jitter_histogram_negligible: Option<u32>,
    /// Jitter histogram 1-2 ms.
    #[prost(uint32, optional, tag = "62")]
    pub jitter_histogram_1: Option<u32>,
    /// Jitter histogram 2-5 ms.
    #[prost(uint32, optional, tag = "63")]
    pub jitter_histogram_2: Option<u32>,
    /// Jitter histogram 5-10 ms.
    #[prost(uint32, optional, tag = "64")]
    pub jitter_histogram_5: Option<u32>,
    /// Jitter histogram 10-20 ms.
    #[prost(uint32, optional, tag = "65")]
    pub jitter_histogram_10: Option<u32>,
    /// Jitter histogram ≥ 20 ms.
    #[prost(uint32, optional, tag = "66")]
    pub jitter_histogram_20: Option<u32>,
}

/// `CMsgSteamDatagramConnectionQuality`: end-to-end stats a peer reports.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectionQuality {
    /// Recent stats.
    #[prost(message, optional, tag = "1")]
    pub instantaneous: Option<LinkInstantaneousStats>,
    /// Lifetime stats.
    #[prost(message, optional, tag = "2")]
    pub lifetime: Option<LinkLifetimeStats>,
}

/// `CMsgSteamSockets_UDP_Stats`: the inline stats blob of a data packet (spec §1.3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UdpStats {
    /// End-to-end quality stats; presence implies [`UdpStats::ACK_REQUEST_E2E`].
    #[prost(message, optional, tag = "1")]
    pub stats: Option<ConnectionQuality>,
    /// Flag bits (`ACK_REQUEST_*`, `NOT_PRIMARY_TRANSPORT_E2E`).
    #[prost(uint32, optional, tag = "3")]
    pub flags: Option<u32>,
}

impl UdpStats {
    /// The peer wants an ack within 50 ms.
    pub const ACK_REQUEST_E2E: u32 = 2;
    /// The peer wants an ack at once.
    pub const ACK_REQUEST_IMMEDIATE: u32 = 4;
    /// The packet did not travel on the peer's primary transport.
    pub const NOT_PRIMARY_TRANSPORT_E2E: u32 = 16;
}
