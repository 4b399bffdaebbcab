//! ICE candidates as GNS sees them: kinds, GNS's internal type bits and the
//! `P2P_Transport_ICE_Enable` mask, address classification, priorities, foundations, and the
//! `candidate:` line that travels in signals.
//! GNS: steamnetworkingsockets_ice_client.cpp (`CalcICECandidateType`,
//! `ParseRFC5245CandidateAttribute`), steamnetworkingsockets_p2p_ice.cpp (`CheckInitICE`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// What a candidate is, as named in the `typ` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateKind {
    /// An address of a local interface.
    Host,
    /// Our address as a STUN server sees it.
    Srflx,
    /// A source address learned from an incoming check.
    Prflx,
    /// An address allocated on a TURN server.
    Relay,
}

impl CandidateKind {
    /// The `typ` token.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::Srflx => "srflx",
            CandidateKind::Prflx => "prflx",
            CandidateKind::Relay => "relay",
        }
    }

    /// RFC 8445 type preference, GNS's values.
    pub fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::Srflx => 100,
            CandidateKind::Prflx => 110,
            CandidateKind::Relay => 0,
        }
    }

    /// The `kind` term of GNS's foundation formula.
    fn foundation_kind(self) -> u32 {
        match self {
            CandidateKind::Host => 1,
            CandidateKind::Srflx => 2,
            CandidateKind::Relay => 3,
            CandidateKind::Prflx => 4,
        }
    }
}

/// GNS's `EICECandidateType` bit set: which candidate types a side may advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CandidateTypes(pub u32);

impl CandidateTypes {
    /// IPv4 relay.
    pub const IPV4_RELAY: u32 = 0x001;
    /// IPv4 private host (RFC 1918, 169.254/16).
    pub const IPV4_HOST_PRIVATE: u32 = 0x002;
    /// IPv4 public host.
    pub const IPV4_HOST_PUBLIC: u32 = 0x004;
    /// IPv4 server reflexive.
    pub const IPV4_REFLEXIVE: u32 = 0x008;
    /// IPv6 relay.
    pub const IPV6_RELAY: u32 = 0x100;
    /// IPv6 private host (GNS never classifies an address so).
    pub const IPV6_HOST_PRIVATE: u32 = 0x200;
    /// IPv6 host (every IPv6 host address).
    pub const IPV6_HOST_PUBLIC: u32 = 0x400;
    /// IPv6 server reflexive.
    pub const IPV6_REFLEXIVE: u32 = 0x800;

    /// `P2P_Transport_ICE_Enable` bit: relay.
    pub const ENABLE_RELAY: i32 = 1;
    /// `P2P_Transport_ICE_Enable` bit: private host.
    pub const ENABLE_PRIVATE: i32 = 2;
    /// `P2P_Transport_ICE_Enable` bit: public host and reflexive.
    pub const ENABLE_PUBLIC: i32 = 4;
    /// `P2P_Transport_ICE_Enable` default: all.
    pub const ENABLE_ALL: i32 = 0x7fff_ffff;

    /// GNS's mapping from the enable mask to allowed types; relay needs a TURN server and
    /// reflexive a STUN server. `[V]` default with no servers = 0x606.
    pub fn from_enable_mask(enable: i32, has_stun: bool, has_turn: bool) -> Self {
        let mut t = 0;
        if enable & Self::ENABLE_RELAY != 0 && has_turn {
            t |= Self::IPV4_RELAY | Self::IPV6_RELAY;
        }
        if enable & Self::ENABLE_PRIVATE != 0 {
            t |= Self::IPV4_HOST_PRIVATE | Self::IPV6_HOST_PRIVATE;
        }
        if enable & Self::ENABLE_PUBLIC != 0 {
            t |= Self::IPV4_HOST_PUBLIC | Self::IPV6_HOST_PUBLIC;
            if has_stun {
                t |= Self::IPV4_REFLEXIVE | Self::IPV6_REFLEXIVE;
            }
        }
        CandidateTypes(t)
    }

    /// Whether any bit of `bits` is allowed.
    pub fn allows(self, bits: u32) -> bool {
        self.0 & bits != 0
    }

    /// The type bit of a candidate of `kind` at `ip` (host and prflx by classification).
    pub fn bit_for(kind: CandidateKind, ip: IpAddr) -> u32 {
        let shift = if ip.is_ipv6() { 8 } else { 0 };
        let base = match kind {
            CandidateKind::Host | CandidateKind::Prflx => match classify_host(ip) {
                Some(b) => return b,
                None => 0,
            },
            CandidateKind::Srflx => Self::IPV4_REFLEXIVE,
            CandidateKind::Relay => Self::IPV4_RELAY,
        };
        base << shift
    }
}

/// Addresses GNS never gathers: loopback, IPv4 link-local, broadcast, IPv6 `fe80::/16`,
/// `ff00::/16`, unspecified. GNS: `GetLocalAddresses_IsReserved`.
pub fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            o[0] == 127 || (o[0] == 169 && o[1] == 254) || a.is_broadcast() || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback() || a.is_unspecified() || s[0] == 0xfe80 || s[0] & 0xff00 == 0xff00
        }
    }
}

/// GNS's `CalcICECandidateType` for a host address: the type bit, or `None` for an address
/// that is never a candidate. IPv4 RFC 1918 and 169.254/16 are private, other IPv4 public,
/// and every IPv6 address public (even ULA).
pub fn classify_host(ip: IpAddr) -> Option<u32> {
    match ip {
        IpAddr::V4(a) => {
            if a.is_loopback() || a.is_unspecified() || a.is_broadcast() {
                None
            } else if a.is_private() || a.is_link_local() {
                Some(CandidateTypes::IPV4_HOST_PRIVATE)
            } else {
                Some(CandidateTypes::IPV4_HOST_PUBLIC)
            }
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return classify_host(IpAddr::V4(v4));
            }
            if a.is_loopback() || a.is_unspecified() {
                None
            } else {
                Some(CandidateTypes::IPV6_HOST_PUBLIC)
            }
        }
    }
}

/// Whether `ip` is a LAN address for same-subnet sorting (private or link-local IPv4, ULA or
/// link-local IPv6, loopback). GNS: `ClassifyIP`.
pub fn is_lan(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_private() || a.is_link_local() || a.is_loopback(),
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            a.is_loopback() || s0 & 0xfe00 == 0xfc00 || s0 & 0xffc0 == 0xfe80
        }
    }
}

/// Whether `b` lies in the `prefix_len`-bit network of `a` (same family only).
pub fn same_prefix(a: IpAddr, b: IpAddr, prefix_len: u8) -> bool {
    fn cmp(a: &[u8], b: &[u8], bits: usize) -> bool {
        let bits = bits.min(a.len() * 8);
        let (full, rest) = (bits / 8, bits % 8);
        if a[..full] != b[..full] {
            return false;
        }
        rest == 0 || (a[full] ^ b[full]) & (0xFFu8 << (8 - rest)) == 0
    }
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => cmp(&a.octets(), &b.octets(), prefix_len.into()),
        (IpAddr::V6(a), IpAddr::V6(b)) => cmp(&a.octets(), &b.octets(), prefix_len.into()),
        _ => false,
    }
}

/// RFC 8445 candidate priority with GNS's type preferences (component is always 1).
pub fn candidate_priority(kind: CandidateKind, local_pref: u16) -> u32 {
    (kind.type_preference() << 24) + (u32::from(local_pref) << 8) + 255
}

/// GNS's foundation: `(bound port + server port) + (byte sum of both IPv6-form addresses, as a
/// u16, << 15) + kind`; an absent server counts as `::ffff:0.0.0.0:0`.
pub fn gns_foundation(bound: SocketAddr, server: Option<SocketAddr>, kind: CandidateKind) -> u32 {
    fn v6_bytes(ip: IpAddr) -> [u8; 16] {
        match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        }
    }
    let server = server.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let sum = v6_bytes(bound.ip())
        .iter()
        .chain(v6_bytes(server.ip()).iter())
        .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
    u32::from(bound.port())
        .wrapping_add(u32::from(server.port()))
        .wrapping_add(u32::from(sum) << 15)
        .wrapping_add(kind.foundation_kind())
}

/// Why a remote candidate line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CandidateError {
    /// Not a `candidate:` line, or a field is missing.
    #[error("malformed candidate line")]
    Malformed,
    /// The connection address is not an IP literal (no hostnames, no mDNS).
    #[error("candidate address is not an IP literal")]
    BadAddress,
    /// A `typ` other than host/srflx/prflx/relay.
    #[error("unknown candidate type")]
    UnknownType,
    /// Localhost or unclassifiable: GNS drops it ("Dropping peer candidate with invalid address").
    #[error("candidate address not usable")]
    UnusableAddress,
}

/// One candidate as signaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Compared for equality only.
    pub foundation: String,
    /// RFC 8445 priority.
    pub priority: u32,
    /// Transport address.
    pub addr: SocketAddr,
    /// Kind.
    pub kind: CandidateKind,
}

/// `atoi`: optional sign and leading digits, truncated to 32 bits as C's `int` would be.
fn atoi(s: &str) -> u32 {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    let v = if neg { -v } else { v };
    v as i32 as u32
}

impl Candidate {
    /// Parses a signaled line with GNS's rules: component and transport ignored, `atoi`
    /// priority, IP literal only, known types only, trailing `name value` pairs must pair up.
    pub fn parse(line: &str) -> Result<Candidate, CandidateError> {
        let rest = line
            .trim_end_matches(['\r', '\n'])
            .strip_prefix("candidate:")
            .ok_or(CandidateError::Malformed)?;
        let f: Vec<&str> = rest.split(' ').filter(|s| !s.is_empty()).collect();
        if f.len() < 8 || f[6] != "typ" || (f.len() - 8) % 2 != 0 {
            return Err(CandidateError::Malformed);
        }
        let ip: IpAddr = f[4].parse().map_err(|_| CandidateError::BadAddress)?;
        let port: u16 = f[5].parse().map_err(|_| CandidateError::Malformed)?;
        let kind = match f[7] {
            "host" => CandidateKind::Host,
            "srflx" => CandidateKind::Srflx,
            "prflx" => CandidateKind::Prflx,
            "relay" => CandidateKind::Relay,
            _ => return Err(CandidateError::UnknownType),
        };
        if classify_host(ip).is_none() {
            return Err(CandidateError::UnusableAddress);
        }
        Ok(Candidate {
            foundation: f[0].to_string(),
            priority: atoi(f[3]),
            addr: SocketAddr::new(ip, port),
            kind,
        })
    }
}

impl fmt::Display for Candidate {
    /// GNS's format: `candidate:<foundation> 0 udp <priority> <addr> <port> typ <type>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "candidate:{} 0 udp {} {} {} typ {}",
            self.foundation,
            self.priority,
            self.addr.ip(),
            self.addr.port(),
            self.kind.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "candidate:39889318 0 udp 2130706431 192.0.2.2 43429 typ host";
    const V6: &str = "candidate:25119899 0 udp 2130706175 fd00::2 52378 typ host";

    #[test]
    fn sample_lines_round_trip_and_match_gns_formulas() {
        for (line, pref) in [(V4, 65535u16), (V6, 65534)] {
            let c = Candidate::parse(line).unwrap();
            assert_eq!(c.to_string(), line);
            assert_eq!(c.kind, CandidateKind::Host);
            assert_eq!(c.priority, candidate_priority(CandidateKind::Host, pref));
            let f = gns_foundation(c.addr, None, CandidateKind::Host);
            assert_eq!(f.to_string(), c.foundation);
        }
    }

    #[test]
    fn parser_follows_gns_rules() {
        let c = Candidate::parse("candidate:x 1   tcp 5 10.0.0.1 9 typ srflx raddr").unwrap_err();
        assert_eq!(c, CandidateError::Malformed); // pair without value
        let c = Candidate::parse("candidate:x 1 tcp 5 10.0.0.1 9 typ srflx raddr 1.2.3.4 rport 1")
            .unwrap();
        assert_eq!(c.kind, CandidateKind::Srflx);
        assert_eq!(c.priority, 5);
        assert_eq!(
            Candidate::parse("candidate:x 0 udp 1 host.local 9 typ host"),
            Err(CandidateError::BadAddress)
        );
        assert_eq!(
            Candidate::parse("candidate:x 0 udp 1 127.0.0.1 9 typ host"),
            Err(CandidateError::UnusableAddress)
        );
        assert_eq!(
            Candidate::parse("candidate:x 0 udp 1 1.2.3.4 9 typ foo"),
            Err(CandidateError::UnknownType)
        );
        assert_eq!(Candidate::parse("x"), Err(CandidateError::Malformed));
        // atoi overflow: 2^32-1 reads back as 0xFFFFFFFF; 2^31 as 2^31.
        let c = Candidate::parse("candidate:x 0 udp 4294967295 1.2.3.4 9 typ host").unwrap();
        assert_eq!(c.priority, u32::MAX);
    }

    #[test]
    fn enable_mask_maps_to_gns_types() {
        let all = CandidateTypes::ENABLE_ALL;
        assert_eq!(CandidateTypes::from_enable_mask(all, false, false).0, 0x606);
        assert_eq!(CandidateTypes::from_enable_mask(all, true, true).0, 0xF0F);
        assert_eq!(CandidateTypes::from_enable_mask(1, true, false).0, 0);
        assert_eq!(CandidateTypes::from_enable_mask(2, true, true).0, 0x202);
    }

    #[test]
    fn classification_matches_gns() {
        let c = |s: &str| classify_host(s.parse().unwrap());
        assert_eq!(c("192.0.2.2"), Some(CandidateTypes::IPV4_HOST_PUBLIC));
        assert_eq!(c("10.1.2.3"), Some(CandidateTypes::IPV4_HOST_PRIVATE));
        assert_eq!(c("169.254.1.1"), Some(CandidateTypes::IPV4_HOST_PRIVATE));
        assert_eq!(c("fd00::2"), Some(CandidateTypes::IPV6_HOST_PUBLIC));
        assert_eq!(c("127.0.0.5"), None);
        assert_eq!(c("::1"), None);
        let r = |s: &str| is_reserved(s.parse().unwrap());
        assert!(r("127.0.0.1") && r("169.254.3.3") && r("255.255.255.255"));
        assert!(r("fe80::1") && r("ff02::1") && r("::1"));
        assert!(!r("10.0.0.1") && !r("fd00::1") && !r("fe81::1"));
    }

    #[test]
    fn prefix_compare() {
        let a: IpAddr = "192.168.1.10".parse().unwrap();
        assert!(same_prefix(a, "192.168.1.200".parse().unwrap(), 24));
        assert!(!same_prefix(a, "192.168.2.1".parse().unwrap(), 24));
        assert!(same_prefix(a, "192.168.3.1".parse().unwrap(), 22));
        assert!(!same_prefix(a, "::1".parse().unwrap(), 0));
    }
}
