//! FakeIP address ranges (P2P spec §5): the IPv4 identifiers that stand for a peer's identity
//! (`ConnectByIPAddress(169.254.x.y:port)` becomes a P2P connection). Pure classification: who
//! owns which FakeIP is the rendezvous service's business (global FakeIPs) or the local
//! instance's (local FakeIPs).
//!
//! ```text
//!  169.254.0.0   ─ 169.254.0.255     not fake (RFC 3927 reserves the first /24)
//!  169.254.1.0   ─ 169.254.191.255   global: handed out by the rendezvous service, per identity
//!  169.254.192.0 ─ 169.254.254.255   local: this process names peers that have no global one
//!  169.254.255.0 ─ 169.254.255.255   not fake (RFC 3927 reserves the last /24)
//! ```
//!
//! GNS (`steamnetworkingsockets_internal.h`, `GetIPv4FakeIPType`) keeps one contiguous fake
//! range with the global part below the local part, as here; Steam's own bounds are not in
//! the open-source tree. Valve documents only "169.254.0.0/16, ports > 1024": applications must
//! classify with [`fake_ip_type`] (GNS's `IsFakeIP`), never by range.
//!
//! Virtual ports: a FakeIP connection carries no virtual port on the wire. Locally, GNS gives
//! the connections of global fake port `i` the virtual port [`GLOBAL_FAKE_PORT_0`] `+ i`, and
//! those of ephemeral (`CreateFakeUDPPort(-1)`) port `n` [`EPHEMERAL_FAKE_PORT_0`] `+ n`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::identity::Identity;

/// Lowest global FakeIP.
pub const GLOBAL_MIN: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 0);
/// Highest global FakeIP.
pub const GLOBAL_MAX: Ipv4Addr = Ipv4Addr::new(169, 254, 191, 255);
/// Lowest local FakeIP (`GLOBAL_MAX + 1`, as GNS requires).
pub const LOCAL_MIN: Ipv4Addr = Ipv4Addr::new(169, 254, 192, 0);
/// Highest local FakeIP.
pub const LOCAL_MAX: Ipv4Addr = Ipv4Addr::new(169, 254, 254, 255);
/// Lowest FakeIP port: ports are always above 1024.
pub const MIN_PORT: u16 = 1025;
/// Most ports one allocation holds (`BeginAsyncRequestFakeIP`'s limit).
pub const MAX_PORTS: usize = 4;
/// `k_nVirtualPort_GlobalFakePort0`: local virtual port of global fake port 0.
pub const GLOBAL_FAKE_PORT_0: i32 = 0x7fff_ff00;
/// `k_nVirtualPort_EphemeralFakePort0`: local virtual port of ephemeral fake port 0.
pub const EPHEMERAL_FAKE_PORT_0: i32 = 0x7fff_fe00;
/// Ephemeral fake ports an instance may hold at once (the range up to the global ones).
pub const MAX_EPHEMERAL_PORTS: i32 = 0x100;

/// `ESteamNetworkingFakeIPType`.
/// Ordered as GNS's values: `> NotFake` means fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum FakeIpType {
    /// Not an IP address at all.
    Invalid = 0,
    /// A real address.
    NotFake = 1,
    /// Handed out by the rendezvous service: unique among its peers.
    GlobalIpv4 = 2,
    /// Named by this process for a peer without a global FakeIP; never to be shared.
    LocalIpv4 = 3,
}

/// GNS's `GetIPv4FakeIPType`.
pub fn fake_ip_type(ip: Ipv4Addr) -> FakeIpType {
    if (GLOBAL_MIN..=GLOBAL_MAX).contains(&ip) {
        FakeIpType::GlobalIpv4
    } else if (LOCAL_MIN..=LOCAL_MAX).contains(&ip) {
        FakeIpType::LocalIpv4
    } else {
        FakeIpType::NotFake
    }
}

/// GNS's `SteamNetworkingIPAddr::GetFakeIPType`: IPv6 addresses (IPv4-mapped ones aside) are
/// never fake.
pub fn addr_fake_ip_type(addr: &SocketAddr) -> FakeIpType {
    match v4(addr) {
        Some(a) => fake_ip_type(*a.ip()),
        None => FakeIpType::NotFake,
    }
}

/// `IsFakeIP`: a global or local FakeIP.
pub fn is_fake_ip(addr: &SocketAddr) -> bool {
    addr_fake_ip_type(addr) > FakeIpType::NotFake
}

/// The address as IPv4 (IPv4-mapped IPv6 included).
pub fn v4(addr: &SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(*a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

/// The FakeIP an identity names (`ip:169.254.x.y:port`), if it is one.
pub fn identity_fake_ip(id: &Identity) -> Option<(SocketAddrV4, FakeIpType)> {
    let Identity::IpAddress(addr) = id else {
        return None;
    };
    let a = v4(addr)?;
    let t = fake_ip_type(*a.ip());
    (t > FakeIpType::NotFake).then_some((a, t))
}

/// The identity that names a FakeIP (GNS's `SteamNetworkingIdentity::SetIPAddr`).
pub fn fake_ip_identity(addr: SocketAddrV4) -> Identity {
    Identity::IpAddress(SocketAddr::V4(addr))
}

/// Whether a local virtual port is a global fake port's (`IsVirtualPortGlobalFakePort`).
pub fn is_global_fake_vport(vport: i32) -> bool {
    (GLOBAL_FAKE_PORT_0..GLOBAL_FAKE_PORT_0 + MAX_PORTS as i32).contains(&vport)
}

/// Whether a local virtual port is an ephemeral fake port's (`IsVirtualPortEphemeralFakePort`).
pub fn is_ephemeral_fake_vport(vport: i32) -> bool {
    (EPHEMERAL_FAKE_PORT_0..EPHEMERAL_FAKE_PORT_0 + MAX_EPHEMERAL_PORTS).contains(&vport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_classify_as_documented() {
        let t = |a, b, c, d| fake_ip_type(Ipv4Addr::new(a, b, c, d));
        assert_eq!(t(169, 254, 0, 7), FakeIpType::NotFake);
        assert_eq!(t(169, 254, 1, 0), FakeIpType::GlobalIpv4);
        assert_eq!(t(169, 254, 1, 2), FakeIpType::GlobalIpv4);
        assert_eq!(t(169, 254, 191, 255), FakeIpType::GlobalIpv4);
        assert_eq!(t(169, 254, 192, 0), FakeIpType::LocalIpv4);
        assert_eq!(t(169, 254, 254, 255), FakeIpType::LocalIpv4);
        assert_eq!(t(169, 254, 255, 1), FakeIpType::NotFake);
        assert_eq!(t(10, 0, 0, 1), FakeIpType::NotFake);
        assert_eq!(u32::from(GLOBAL_MAX) + 1, u32::from(LOCAL_MIN));
    }

    #[test]
    fn identities_and_mapped_addresses() {
        let id = Identity::parse("ip:169.254.7.9:2000").unwrap();
        let (a, t) = identity_fake_ip(&id).unwrap();
        assert_eq!(a, "169.254.7.9:2000".parse().unwrap());
        assert_eq!(t, FakeIpType::GlobalIpv4);
        assert_eq!(fake_ip_identity(a), id);
        assert_eq!(
            identity_fake_ip(&Identity::parse("ip:10.0.0.1:5").unwrap()),
            None
        );
        assert_eq!(identity_fake_ip(&Identity::parse("str:x").unwrap()), None);
        let mapped: SocketAddr = "[::ffff:169.254.200.1]:3000".parse().unwrap();
        assert!(is_fake_ip(&mapped));
        assert_eq!(addr_fake_ip_type(&mapped), FakeIpType::LocalIpv4);
        assert!(!is_fake_ip(&"[::1]:3000".parse().unwrap()));
    }

    #[test]
    fn virtual_port_ranges() {
        assert!(is_global_fake_vport(GLOBAL_FAKE_PORT_0));
        assert!(is_global_fake_vport(GLOBAL_FAKE_PORT_0 + 3));
        assert!(!is_global_fake_vport(GLOBAL_FAKE_PORT_0 + 4));
        assert!(is_ephemeral_fake_vport(EPHEMERAL_FAKE_PORT_0 + 0xff));
        assert!(!is_ephemeral_fake_vport(GLOBAL_FAKE_PORT_0));
        assert!(!is_global_fake_vport(65535));
    }
}
