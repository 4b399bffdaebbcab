//! Between the headers' structs and Sockworks' types.

use std::ffi::c_char;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use sockworks::engine::wire::identity::Identity;
use sockworks::{ConnectionInfo, LaneStatus, RealTimeStatus};

use super::*;

/// Copies `s` into a fixed C buffer, cut at a character boundary to leave room for the NUL.
pub fn fill_c_chars(dst: &mut [c_char], s: &str) {
    let Some(room) = dst.len().checked_sub(1) else {
        return;
    };
    let mut n = s.len().min(room);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, b) in dst.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = *b as c_char;
    }
    dst[n] = 0;
}

/// The NUL-terminated text in a fixed C buffer (all of it when unterminated), lossily decoded.
pub fn read_c_chars(src: &[c_char]) -> String {
    let bytes: Vec<u8> = src
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl SteamNetworkingIPAddr {
    /// `[::]:0`, what `Clear()` leaves.
    pub const fn zeroed() -> Self {
        SteamNetworkingIPAddr {
            u: SteamNetworkingIPAddr_Union { m_ipv6: [0; 16] },
            m_port: 0,
        }
    }

    /// The 16 address bytes.
    pub fn ipv6_bytes(&self) -> [u8; 16] {
        // SAFETY: every bit pattern of the union is a valid byte array.
        unsafe { self.u.m_ipv6 }
    }

    /// IPv4 is stored IPv4-mapped, as GNS does.
    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        let v6 = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        SteamNetworkingIPAddr {
            u: SteamNetworkingIPAddr_Union {
                m_ipv6: v6.octets(),
            },
            m_port: addr.port(),
        }
    }

    /// IPv4-mapped addresses come back as IPv4.
    pub fn to_socket_addr(&self) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.ipv6_bytes());
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        SocketAddr::new(ip, self.m_port)
    }
}

impl SteamNetworkingIdentity {
    /// The invalid identity, what `Clear()` leaves.
    pub const fn zeroed() -> Self {
        SteamNetworkingIdentity {
            m_eType: k_ESteamNetworkingIdentityType_Invalid,
            m_cbSize: 0,
            u: SteamNetworkingIdentity_Union {
                m_reserved: [0; 32],
            },
        }
    }

    /// The union's bytes.
    pub fn raw(&self) -> [u8; 128] {
        // SAFETY: every bit pattern of the union is a valid array of words.
        let words = unsafe { self.u.m_reserved };
        let mut out = [0u8; 128];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_ne_bytes());
        }
        out
    }

    fn with_raw(kind: ESteamNetworkingIdentityType, bytes: &[u8], size: usize) -> Self {
        let mut raw = [0u8; 128];
        raw[..bytes.len()].copy_from_slice(bytes);
        let mut words = [0u32; 32];
        for (w, c) in words.iter_mut().zip(raw.chunks_exact(4)) {
            *w = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
        }
        SteamNetworkingIdentity {
            m_eType: kind,
            m_cbSize: size as i32,
            u: SteamNetworkingIdentity_Union { m_reserved: words },
        }
    }

    /// The header's representation of a Sockworks identity (as GNS's setters fill it).
    pub fn from_identity(id: &Identity) -> Self {
        match id {
            Identity::Invalid => Self::zeroed(),
            Identity::SteamId(v) => {
                Self::with_raw(k_ESteamNetworkingIdentityType_SteamID, &v.to_le_bytes(), 8)
            }
            Identity::SonyPsn(v) => {
                Self::with_raw(k_ESteamNetworkingIdentityType_SonyPSN, &v.to_le_bytes(), 8)
            }
            Identity::IpAddress(a) => {
                let ip = SteamNetworkingIPAddr::from_socket_addr(*a);
                let mut bytes = [0u8; 18];
                bytes[..16].copy_from_slice(&ip.ipv6_bytes());
                bytes[16..].copy_from_slice(&a.port().to_le_bytes());
                Self::with_raw(k_ESteamNetworkingIdentityType_IPAddress, &bytes, 18)
            }
            Identity::GenericString(s) => {
                Self::text(k_ESteamNetworkingIdentityType_GenericString, s, 32)
            }
            Identity::XboxPairwiseId(s) => {
                Self::text(k_ESteamNetworkingIdentityType_XboxPairwiseID, s, 33)
            }
            Identity::GenericBytes(b) => {
                let b = &b[..b.len().min(32)];
                Self::with_raw(k_ESteamNetworkingIdentityType_GenericBytes, b, b.len())
            }
            unknown @ Identity::Unknown { .. } => Self::text(
                k_ESteamNetworkingIdentityType_UnknownType,
                &unknown.to_string(),
                128,
            ),
        }
    }

    /// A NUL-terminated string member, cut to `cap` bytes with its NUL; `m_cbSize` counts it.
    fn text(kind: ESteamNetworkingIdentityType, s: &str, cap: usize) -> Self {
        let n = s.len().min(cap - 1);
        Self::with_raw(kind, &s.as_bytes()[..n], n + 1)
    }

    /// The identity this struct holds; `None` for the invalid identity or a malformed one.
    pub fn to_identity(&self) -> Option<Identity> {
        let raw = self.raw();
        let size = usize::try_from(self.m_cbSize).ok()?.min(raw.len());
        let text = |cap: usize| {
            let field = &raw[..cap];
            let end = field.iter().position(|b| *b == 0)?;
            std::str::from_utf8(&field[..end]).ok().map(str::to_owned)
        };
        let u64_at = || {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[..8]);
            u64::from_le_bytes(b)
        };
        match self.m_eType {
            k_ESteamNetworkingIdentityType_SteamID => Some(Identity::SteamId(u64_at())),
            k_ESteamNetworkingIdentityType_SonyPSN => Some(Identity::SonyPsn(u64_at())),
            k_ESteamNetworkingIdentityType_IPAddress => {
                // SAFETY: the union holds an address for this type; any bytes are valid.
                let ip = unsafe { self.u.m_ip };
                Some(Identity::IpAddress(ip.to_socket_addr()))
            }
            k_ESteamNetworkingIdentityType_GenericString => text(32).map(Identity::GenericString),
            k_ESteamNetworkingIdentityType_XboxPairwiseID => text(33).map(Identity::XboxPairwiseId),
            k_ESteamNetworkingIdentityType_GenericBytes if (1..=32).contains(&size) => {
                Some(Identity::GenericBytes(raw[..size].to_vec()))
            }
            k_ESteamNetworkingIdentityType_UnknownType => {
                text(128).and_then(|s| Identity::parse(&s).ok())
            }
            _ => None,
        }
    }
}

impl SteamNetConnectionInfo_t {
    /// All zero: no identity, no address, state `None`.
    pub const fn zeroed() -> Self {
        SteamNetConnectionInfo_t {
            m_identityRemote: SteamNetworkingIdentity::zeroed(),
            m_nUserData: 0,
            m_hListenSocket: 0,
            m_addrRemote: SteamNetworkingIPAddr::zeroed(),
            m__pad1: 0,
            m_idPOPRemote: 0,
            m_idPOPRelay: 0,
            m_eState: 0,
            m_eEndReason: 0,
            m_szEndDebug: [0; 128],
            m_szConnectionDescription: [0; 128],
            m_nFlags: 0,
            reserved: [0; 63],
        }
    }

    /// From the API's connection info.
    pub fn from_info(info: &ConnectionInfo) -> Self {
        let mut c = Self::zeroed();
        if let Some(id) = &info.identity_remote {
            c.m_identityRemote = SteamNetworkingIdentity::from_identity(id);
        }
        c.m_nUserData = info.user_data;
        c.m_hListenSocket = info.listen_socket.0;
        c.m_addrRemote = SteamNetworkingIPAddr::from_socket_addr(info.addr_remote);
        c.m_eState = info.state as i32;
        c.m_eEndReason = info.end_reason;
        fill_c_chars(&mut c.m_szEndDebug, &info.end_debug);
        fill_c_chars(&mut c.m_szConnectionDescription, &info.description);
        c.m_nFlags = info.flags;
        c
    }
}

impl SteamNetConnectionRealTimeStatus_t {
    /// All zero (state `None`).
    pub fn zeroed() -> Self {
        Self::default()
    }

    /// From the API's real-time status.
    pub fn from_status(s: &RealTimeStatus) -> Self {
        SteamNetConnectionRealTimeStatus_t {
            m_eState: s.state.map_or(0, |st| st as i32),
            m_nPing: s.ping,
            m_flConnectionQualityLocal: s.quality_local,
            m_flConnectionQualityRemote: s.quality_remote,
            m_flOutPacketsPerSec: s.out_packets_per_sec,
            m_flOutBytesPerSec: s.out_bytes_per_sec,
            m_flInPacketsPerSec: s.in_packets_per_sec,
            m_flInBytesPerSec: s.in_bytes_per_sec,
            m_nSendRateBytesPerSecond: s.send_rate_bytes_per_sec,
            m_cbPendingUnreliable: s.pending_unreliable,
            m_cbPendingReliable: s.pending_reliable,
            m_cbSentUnackedReliable: s.sent_unacked_reliable,
            m_usecQueueTime: s.queue_time_usec,
            // Not measured by Sockworks: GNS's "unknown".
            m_usecMaxJitter: -1,
            reserved: [0; 15],
        }
    }
}

impl SteamNetConnectionRealTimeLaneStatus_t {
    /// From the API's lane status.
    pub fn from_lane(l: &LaneStatus) -> Self {
        SteamNetConnectionRealTimeLaneStatus_t {
            m_cbPendingUnreliable: l.pending_unreliable,
            m_cbPendingReliable: l.pending_reliable,
            m_cbSentUnackedReliable: l.sent_unacked_reliable,
            _reservePad1: 0,
            m_usecQueueTime: l.queue_time_usec,
            reserved: [0; 10],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_the_c_struct() {
        for s in [
            "steamid:76561197960287930",
            "psn:1234",
            "ip:127.0.0.1:27015",
            "ip:[::1]:5",
            "ip:10.0.0.1",
            "str:hello",
            "xboxpwid:abcdef",
            "gen:00ff10",
            "future_kind:some data",
        ] {
            let id = Identity::parse(s).unwrap();
            let c = SteamNetworkingIdentity::from_identity(&id);
            assert_eq!(c.to_identity().as_ref(), Some(&id), "{s}");
        }
        assert_eq!(SteamNetworkingIdentity::zeroed().to_identity(), None);
    }

    #[test]
    fn sizes_follow_the_setters() {
        let c = SteamNetworkingIdentity::from_identity(&Identity::parse("str:abc").unwrap());
        assert_eq!({ c.m_cbSize }, 4);
        let c = SteamNetworkingIdentity::from_identity(&Identity::parse("ip:1.2.3.4:5").unwrap());
        assert_eq!(
            ({ c.m_eType }, { c.m_cbSize }),
            (k_ESteamNetworkingIdentityType_IPAddress, 18)
        );
    }

    #[test]
    fn ipv4_is_mapped_and_comes_back() {
        let a: SocketAddr = "192.0.2.7:443".parse().unwrap();
        let c = SteamNetworkingIPAddr::from_socket_addr(a);
        assert_eq!(&c.ipv6_bytes()[10..], &[0xff, 0xff, 192, 0, 2, 7]);
        assert_eq!(c.to_socket_addr(), a);
    }

    #[test]
    fn c_strings_are_cut_at_a_character_boundary() {
        let mut buf = [1 as c_char; 4];
        fill_c_chars(&mut buf, "aé€");
        assert_eq!(read_c_chars(&buf), "aé");
        let mut none: [c_char; 0] = [];
        fill_c_chars(&mut none, "x");
    }
}
