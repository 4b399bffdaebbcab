//! Socket setup and address conversion for the io_uring driver (no io_uring here): a
//! non-blocking UDP socket with SO_REUSEPORT (one per shard), dual-stack when bound to IPv6,
//! and address conversion (the eventfd lives in `driver::eventfd`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use std::os::fd::AsFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::super::udp::{grow_buffer, setsockopt_int};

/// Bytes reserved for the source address in each receive buffer: a `sockaddr_in6`, which also
/// holds a `sockaddr_in`.
pub(super) const NAME_LEN: usize = size_of::<libc::sockaddr_in6>();

/// Binds the shard's UDP socket.
pub(super) fn bind_udp(addr: SocketAddr, socket_buffer: Option<usize>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Dual-stack: IPv4 peers arrive as ::ffff:a.b.c.d and are converted back.
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if let Some(bytes) = socket_buffer {
        grow_buffer(&socket, bytes, true);
        grow_buffer(&socket, bytes, false);
    }
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket)
}

/// Turns on the UDP offloads asked for, where the kernel has them: GSO when
/// `setsockopt(UDP_SEGMENT, 0)` succeeds, GRO when `setsockopt(UDP_GRO, 1)` does. Returns
/// `(gso, gro)` as granted.
pub(super) fn offloads(socket: &Socket, gso: bool, gro: bool) -> (bool, bool) {
    let fd = socket.as_fd();
    let gso = gso && setsockopt_int(fd, libc::SOL_UDP, libc::UDP_SEGMENT, 0).is_ok();
    let gro = gro && setsockopt_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
    (gso, gro)
}

/// The kernel address for sending to `to` from a socket of the given family: an IPv4 peer on
/// an IPv6 socket becomes IPv4-mapped.
pub(super) fn dest_addr(to: SocketAddr, socket_is_v6: bool) -> SockAddr {
    match to {
        SocketAddr::V4(v4) if socket_is_v6 => {
            SockAddr::from(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        other => SockAddr::from(other),
    }
}

/// Parses the `msg_name` bytes the kernel wrote (a `sockaddr_in` or `sockaddr_in6`), turning
/// IPv4-mapped IPv6 sources into plain IPv4 so one peer has one address on any socket.
pub(super) fn parse_name(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*name.first()?, *name.get(1)?]));
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(ip);
            if let Some(v4) = ip.to_ipv4_mapped() {
                return Some(SocketAddr::new(IpAddr::V4(v4), port));
            }
            let flow = u32::from_ne_bytes(name.get(4..8)?.try_into().ok()?);
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v6_names_become_v4() {
        let v6 = SockAddr::from(SocketAddrV6::new(
            Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped(),
            4000,
            0,
            0,
        ));
        // SAFETY: `as_ptr` points at `len` initialised bytes of the storage.
        let bytes =
            unsafe { std::slice::from_raw_parts(v6.as_ptr().cast::<u8>(), v6.len() as usize) };
        assert_eq!(
            parse_name(bytes),
            Some(SocketAddr::from(([10, 1, 2, 3], 4000)))
        );
        let v4 = SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 9)));
        // SAFETY: as above.
        let bytes =
            unsafe { std::slice::from_raw_parts(v4.as_ptr().cast::<u8>(), v4.len() as usize) };
        assert_eq!(
            parse_name(bytes),
            Some(SocketAddr::from(([127, 0, 0, 1], 9)))
        );
        assert_eq!(parse_name(&[0; 3]), None, "short name is rejected");
    }
}
