//! `SteamNetworkingIdentity`: who a peer claims to be, as carried in certificates and the
//! handshake (spec §2.9). Two encodings: the string form (`identity_string`, e.g. `ip:::1`),
//! which GNS prefers, and the legacy binary protobuf (`CMsgSteamNetworkingIdentityLegacyBinary`),
//! which GNS still writes alongside it.
//!
//! Parsing and printing follow GNS's `SteamNetworkingIdentity::ParseString` / `ToString`;
//! unknown prefixes are kept verbatim so newer peers' identities survive a round trip.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::proto::IdentityLegacyBinary;

/// Longest `str:` value in bytes (GNS's 32-byte buffer including the NUL).
pub const MAX_GENERIC_STRING_LEN: usize = 31;
/// Longest `gen:` value in bytes.
pub const MAX_GENERIC_BYTES_LEN: usize = 32;
/// Longest `xboxpwid:` value in bytes (GNS's 33-byte buffer including the NUL).
pub const MAX_XBOX_PAIRWISE_ID_LEN: usize = 32;
/// Longest unknown-type identity string, prefix included (GNS's 128-byte buffer).
pub const MAX_UNKNOWN_LEN: usize = 127;
/// Longest unknown-type prefix.
pub const MAX_UNKNOWN_PREFIX_LEN: usize = 16;
/// Length of `ipv6_and_port` in the legacy binary form: 16-byte address, big-endian port.
pub const LEGACY_IP_LEN: usize = 18;

/// A peer identity (`SteamNetworkingIdentity`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// No identity (`invalid`).
    Invalid,
    /// A SteamID64 (`steamid:<decimal>`); valid per [`is_valid_identity_steam_id`] when parsed.
    SteamId(u64),
    /// Xbox pairwise id (`xboxpwid:<text>`).
    XboxPairwiseId(String),
    /// Sony PSN id (`psn:<decimal>`).
    SonyPsn(u64),
    /// IP address and port (`ip:<addr>`); port 0 means "no port" and is not printed. IPv4 is
    /// kept as `V4` (GNS stores it IPv4-mapped; we normalise mapped addresses to `V4`).
    IpAddress(SocketAddr),
    /// Application-defined string (`str:<text>`), at most 31 bytes.
    GenericString(String),
    /// Application-defined bytes (`gen:<hex>`), 1 to 32 bytes.
    GenericBytes(Vec<u8>),
    /// A type this version does not know, kept verbatim as `<prefix>:<data>`.
    Unknown {
        /// `[a-z0-9_]{1,16}`.
        prefix: String,
        /// Everything after the first `:`.
        data: String,
    },
}

/// Why an identity could not be parsed or converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Empty string.
    #[error("empty identity string")]
    Empty,
    /// Contains a NUL byte (GNS strings are C strings).
    #[error("identity contains NUL")]
    ContainsNul,
    /// No `prefix:` and not `invalid`.
    #[error("identity has no type prefix")]
    MissingPrefix,
    /// Unknown prefix not of the form `[a-z0-9_]{1,16}`.
    #[error("bad identity type prefix")]
    BadPrefix,
    /// Unknown-type identity longer than 127 bytes.
    #[error("identity string too long")]
    TooLong,
    /// `steamid:`/`psn:` value is not a decimal u64.
    #[error("bad decimal number")]
    BadNumber,
    /// SteamID is not an individual or game-server account with a non-zero account id.
    #[error("SteamID not valid as an identity")]
    InvalidSteamId,
    /// `ip:` value is not an address (with optional port) in GNS's syntax.
    #[error("bad IP address")]
    BadIpAddress,
    /// `str:` value longer than 31 bytes.
    #[error("generic string too long")]
    GenericStringTooLong,
    /// `xboxpwid:` value longer than 32 bytes.
    #[error("xbox pairwise id too long")]
    XboxIdTooLong,
    /// `gen:` value is empty, odd-length or not hex.
    #[error("bad hex in generic bytes")]
    BadHex,
    /// Legacy binary `generic_bytes` present but empty (the string form needs a byte).
    #[error("legacy generic bytes are empty")]
    EmptyGenericBytes,
    /// `gen:` value longer than 32 bytes.
    #[error("generic bytes too long")]
    GenericBytesTooLong,
    /// Legacy binary `ipv6_and_port` is not exactly 18 bytes.
    #[error("legacy ipv6_and_port is not 18 bytes")]
    LegacyIpLength,
    /// Legacy binary message with none of the known fields.
    #[error("legacy identity has no recognised field")]
    LegacyEmpty,
    /// This identity type has no legacy binary form.
    #[error("identity type has no legacy binary form")]
    NoLegacyForm,
    /// None of `identity_string`, legacy binary, legacy SteamID present.
    #[error("no identity present")]
    Absent,
}

/// SteamID64 account types GNS accepts as identities (`IsValidSteamIDForIdentity`):
/// individual (1) and console user (9) are "individual"; game server (3) and anonymous game
/// server (4) are "game server".
const IDENTITY_ACCOUNT_TYPES: [u64; 4] = [1, 9, 3, 4];

/// Whether a SteamID64 is acceptable as an identity, per GNS's `IsValidSteamIDForIdentity`:
/// non-zero account id (bits 0..32) and an individual or game-server account type (bits
/// 52..56). SteamID64 layout: account id 32 bits, instance 20 bits, account type 4 bits,
/// universe 8 bits; instance and universe are not checked, as in GNS.
pub fn is_valid_identity_steam_id(steam_id: u64) -> bool {
    let account_id = steam_id & 0xffff_ffff;
    let account_type = (steam_id >> 52) & 0xf;
    account_id != 0 && IDENTITY_ACCOUNT_TYPES.contains(&account_type)
}

impl Identity {
    /// Parses the string form (spec §2.9). Strict where GNS's `sscanf` is lenient: numbers
    /// must be plain decimal digits. `gen:` accepts either hex case; printing is lowercase.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if s.contains('\0') {
            return Err(IdentityError::ContainsNul);
        }
        if s == "invalid" {
            return Ok(Identity::Invalid);
        }
        let (prefix, data) = s.split_once(':').ok_or(IdentityError::MissingPrefix)?;
        match prefix {
            "steamid" => {
                let id = parse_decimal(data)?;
                if !is_valid_identity_steam_id(id) {
                    return Err(IdentityError::InvalidSteamId);
                }
                Ok(Identity::SteamId(id))
            }
            "psn" => Ok(Identity::SonyPsn(parse_decimal(data)?)),
            "xboxpwid" => {
                if data.len() > MAX_XBOX_PAIRWISE_ID_LEN {
                    return Err(IdentityError::XboxIdTooLong);
                }
                Ok(Identity::XboxPairwiseId(data.to_owned()))
            }
            "ip" => parse_ip(data)
                .map(Identity::IpAddress)
                .ok_or(IdentityError::BadIpAddress),
            "str" => {
                if data.len() > MAX_GENERIC_STRING_LEN {
                    return Err(IdentityError::GenericStringTooLong);
                }
                Ok(Identity::GenericString(data.to_owned()))
            }
            "gen" => parse_hex(data).map(Identity::GenericBytes),
            _ => {
                let prefix_ok = !prefix.is_empty()
                    && prefix.len() <= MAX_UNKNOWN_PREFIX_LEN
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !prefix_ok {
                    return Err(IdentityError::BadPrefix);
                }
                if s.len() > MAX_UNKNOWN_LEN {
                    return Err(IdentityError::TooLong);
                }
                Ok(Identity::Unknown {
                    prefix: prefix.to_owned(),
                    data: data.to_owned(),
                })
            }
        }
    }

    /// The localhost identity GNS gives anonymous peers: `ip:::1`.
    pub fn localhost() -> Self {
        Identity::IpAddress(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0))
    }

    /// Converts to the legacy binary protobuf (GNS `BSerializeIdentityToLegacyBinary`
    /// equivalent). Only SteamID, generic string/bytes and IP identities have one.
    pub fn to_legacy_binary(&self) -> Result<IdentityLegacyBinary, IdentityError> {
        let mut out = IdentityLegacyBinary::default();
        match self {
            Identity::SteamId(id) => out.steam_id = Some(*id),
            Identity::GenericString(s) => out.generic_string = Some(s.clone()),
            Identity::GenericBytes(b) => out.generic_bytes = Some(b.clone()),
            Identity::IpAddress(addr) => {
                let v6 = match addr.ip() {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let mut bytes = v6.octets().to_vec();
                bytes.extend_from_slice(&addr.port().to_be_bytes());
                out.ipv6_and_port = Some(bytes);
            }
            _ => return Err(IdentityError::NoLegacyForm),
        }
        Ok(out)
    }

    /// Reads the legacy binary protobuf, checking fields in GNS's order (SteamID, generic
    /// string, generic bytes, IP) and applying the same limits as the string form.
    pub fn from_legacy_binary(msg: &IdentityLegacyBinary) -> Result<Self, IdentityError> {
        if let Some(id) = msg.steam_id {
            if !is_valid_identity_steam_id(id) {
                return Err(IdentityError::InvalidSteamId);
            }
            return Ok(Identity::SteamId(id));
        }
        if let Some(s) = &msg.generic_string {
            if s.len() > MAX_GENERIC_STRING_LEN {
                return Err(IdentityError::GenericStringTooLong);
            }
            if s.contains('\0') {
                return Err(IdentityError::ContainsNul);
            }
            return Ok(Identity::GenericString(s.clone()));
        }
        if let Some(b) = &msg.generic_bytes {
            // As `gen:` requires: GNS's binary reader takes zero bytes, but the identity then
            // prints as `gen:`, which no parser reads back.
            if b.is_empty() {
                return Err(IdentityError::EmptyGenericBytes);
            }
            if b.len() > MAX_GENERIC_BYTES_LEN {
                return Err(IdentityError::GenericBytesTooLong);
            }
            return Ok(Identity::GenericBytes(b.clone()));
        }
        if let Some(ip) = &msg.ipv6_and_port {
            let raw: [u8; LEGACY_IP_LEN] = ip
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::LegacyIpLength)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&raw[..16]);
            let port = u16::from_be_bytes([raw[16], raw[17]]);
            return Ok(Identity::IpAddress(normalise(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            ))));
        }
        Err(IdentityError::LegacyEmpty)
    }

    /// The identity a ConnectRequest, ConnectOK or certificate carries, in GNS's order of
    /// preference: `identity_string`, then `legacy_identity_binary`, then the legacy SteamID.
    pub fn from_wire(
        identity_string: Option<&str>,
        legacy_binary: Option<&IdentityLegacyBinary>,
        legacy_steam_id: Option<u64>,
    ) -> Result<Self, IdentityError> {
        if let Some(s) = identity_string {
            return Self::parse(s);
        }
        if let Some(b) = legacy_binary {
            return Self::from_legacy_binary(b);
        }
        match legacy_steam_id {
            Some(id) if is_valid_identity_steam_id(id) => Ok(Identity::SteamId(id)),
            Some(_) => Err(IdentityError::InvalidSteamId),
            None => Err(IdentityError::Absent),
        }
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Identity {
    /// The string form GNS's `ToString` produces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Invalid => f.write_str("invalid"),
            Identity::SteamId(id) => write!(f, "steamid:{id}"),
            Identity::XboxPairwiseId(s) => write!(f, "xboxpwid:{s}"),
            Identity::SonyPsn(id) => write!(f, "psn:{id}"),
            Identity::IpAddress(addr) => {
                f.write_str("ip:")?;
                let addr = normalise(*addr);
                match (addr.ip(), addr.port()) {
                    (ip, 0) => write!(f, "{ip}"),
                    (IpAddr::V4(ip), port) => write!(f, "{ip}:{port}"),
                    (IpAddr::V6(ip), port) => write!(f, "[{ip}]:{port}"),
                }
            }
            Identity::GenericString(s) => write!(f, "str:{s}"),
            Identity::GenericBytes(bytes) => {
                f.write_str("gen:")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Identity::Unknown { prefix, data } => write!(f, "{prefix}:{data}"),
        }
    }
}

/// IPv4-mapped IPv6 becomes plain IPv4 (GNS prints mapped addresses as IPv4); scope id and
/// flow info are dropped since GNS has neither.
fn normalise(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    SocketAddr::new(ip, addr.port())
}

fn parse_decimal(s: &str) -> Result<u64, IdentityError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentityError::BadNumber);
    }
    s.parse().map_err(|_| IdentityError::BadNumber)
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// GNS's `SteamNetworkingIPAddr::ParseString` syntax: `1.2.3.4`, `1.2.3.4:port`, bare IPv6
/// (`::1`), or bracketed IPv6 with port (`[::1]:27015`).
fn parse_ip(s: &str) -> Option<SocketAddr> {
    let addr = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        SocketAddr::new(
            IpAddr::V6(host.parse::<Ipv6Addr>().ok()?),
            parse_port(port)?,
        )
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        SocketAddr::new(ip, 0)
    } else {
        let (host, port) = s.rsplit_once(':')?;
        SocketAddr::new(
            IpAddr::V4(host.parse::<Ipv4Addr>().ok()?),
            parse_port(port)?,
        )
    };
    Some(normalise(addr))
}

fn parse_hex(s: &str) -> Result<Vec<u8>, IdentityError> {
    if s.is_empty() || s.len() % 2 != 0 {
        return Err(IdentityError::BadHex);
    }
    if s.len() / 2 > MAX_GENERIC_BYTES_LEN {
        return Err(IdentityError::GenericBytesTooLong);
    }
    let nibble = |c: u8| (c as char).to_digit(16).ok_or(IdentityError::BadHex);
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4 | nibble(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests;
