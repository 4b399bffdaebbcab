//! The raw pieces of a `msghdr` the kernel backends fill and read: socket addresses
//! (`sockaddr_in` / `sockaddr_in6`, with IPv4-mapped IPv6 folded back to IPv4) and the one
//! control message each direction uses (`UDP_SEGMENT` on send, `UDP_GRO` on receive).
//!
//! ```text
//!  Control: one 8-byte-aligned 64-byte buffer per message, enough for one cmsg:
//!  [ cmsghdr { len, level = SOL_UDP, type } ][ u16 gso_size | i32 gro_size ][pad]
//! ```

#![allow(
    unsafe_code,
    reason = "cmsg headers are raw kernel memory; each block has a SAFETY note"
)]

use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Room for one small control message per datagram (CMSG_SPACE(4) is 24 on 64-bit Linux).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(super) struct ControlBuf(pub [u8; 64]);

impl std::fmt::Debug for ControlBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlBuf")
    }
}

impl Default for ControlBuf {
    fn default() -> Self {
        ControlBuf([0; 64])
    }
}

/// A zeroed `sockaddr_storage`.
pub(super) fn empty_name() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
    unsafe { mem::zeroed() }
}

/// Writes `addr` into `storage` for a socket of family `v6_socket` and returns the length to
/// pass as `msg_namelen`. An IPv4 destination on an IPv6 socket is written IPv4-mapped;
/// `None` when the destination cannot be reached from this socket (IPv6 on an IPv4 socket).
pub(super) fn encode_name(
    addr: SocketAddr,
    v6_socket: bool,
    storage: &mut libc::sockaddr_storage,
) -> Option<libc::socklen_t> {
    let addr = match (addr, v6_socket) {
        (SocketAddr::V4(a), true) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        (SocketAddr::V6(a), false) => {
            let v4 = a.ip().to_ipv4_mapped()?;
            SocketAddr::V4(SocketAddrV4::new(v4, a.port()))
        }
        (a, _) => a,
    };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and at least as aligned as sockaddr_in
            // (the C type exists to hold any sockaddr), and `storage` is a valid &mut.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin) };
            Some(size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, sockaddr_storage can hold a sockaddr_in6.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin6) };
            Some(size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Reads the source address the kernel wrote; IPv4-mapped IPv6 comes back as plain IPv4 so
/// a dual-stack socket reports the same peer address an IPv4 socket would.
pub(super) fn decode_name(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> SocketAddr {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family and length checked) into storage,
            // which is aligned for it.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family and length checked).
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                )),
            }
        }
        // UDP always reports a source; an unknown family is a kernel contract change. Report
        // the unspecified address rather than panicking on it.
        _ => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    }
}

/// Writes a `UDP_SEGMENT` control message (segment size `seg`) into `buf` and points `hdr`'s
/// control fields at it.
pub(super) fn set_segment(hdr: &mut libc::msghdr, buf: &mut ControlBuf, seg: u16) {
    hdr.msg_control = buf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic on a constant.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= buf.0.len());
    hdr.msg_controllen = space as _;
    // SAFETY: msg_control points at `buf` (64 bytes, 8-aligned) and msg_controllen covers one
    // cmsg of a u16, so CMSG_FIRSTHDR returns a non-null, aligned pointer into `buf`, and
    // CMSG_DATA points inside the same buffer with room for the u16 (written unaligned).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(hdr);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
    }
}

/// The `UDP_GRO` segment size in a received message's control data, if the kernel coalesced
/// it.
#[allow(
    clippy::unnecessary_cast,
    reason = "msg_controllen is usize on glibc, u32 on musl"
)]
pub(super) fn gro_segment(hdr: &libc::msghdr) -> Option<usize> {
    if hdr.msg_control.is_null() || (hdr.msg_controllen as usize) < size_of::<libc::cmsghdr>() {
        return None;
    }
    // SAFETY: msg_control/msg_controllen describe a buffer we own that the kernel filled with
    // well-formed cmsgs (it sets msg_controllen to the bytes written); CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay within it and return null at the end, and each cmsg_len was checked to
    // cover its i32 before CMSG_DATA is read (unaligned).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_UDP
                && c.cmsg_type == libc::UDP_GRO
                && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<i32>() as u32) as usize
            {
                let seg = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
                return usize::try_from(seg).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

/// The `UDP_GRO` segment size in raw control bytes the kernel wrote somewhere without
/// alignment (io_uring's multishot recvmsg puts them right after the source address).
#[cfg_attr(
    not(all(target_os = "linux", feature = "uring")),
    allow(
        dead_code,
        reason = "only the io_uring backend receives into raw bytes"
    )
)]
pub(super) fn gro_segment_in(control: &[u8]) -> Option<usize> {
    let header = size_of::<libc::cmsghdr>();
    // SAFETY: CMSG_LEN is arithmetic on a constant.
    let data_at = unsafe { libc::CMSG_LEN(0) } as usize;
    let mut off = 0;
    while off + header <= control.len() {
        // SAFETY: `off + header <= len`, so the read stays inside `control`; read_unaligned
        // has no alignment requirement and cmsghdr is plain old data.
        let c: libc::cmsghdr =
            unsafe { std::ptr::read_unaligned(control.as_ptr().add(off).cast()) };
        #[allow(
            clippy::unnecessary_cast,
            reason = "cmsg_len is usize on glibc, u32 on musl"
        )]
        let len = c.cmsg_len as usize;
        if len < data_at || off + len > control.len() {
            return None;
        }
        if c.cmsg_level == libc::SOL_UDP && c.cmsg_type == libc::UDP_GRO && len >= data_at + 4 {
            let v = control.get(off + data_at..off + data_at + 4)?;
            let seg = i32::from_ne_bytes(v.try_into().ok()?);
            return usize::try_from(seg).ok().filter(|&s| s > 0);
        }
        off += len.next_multiple_of(size_of::<usize>());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fold_mapped_ipv4() {
        let mut s = empty_name();
        let v4: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let len = encode_name(v4, false, &mut s).unwrap();
        assert_eq!(decode_name(&s, len), v4);
        let len = encode_name(v4, true, &mut s).unwrap();
        assert_eq!(i32::from(s.ss_family), libc::AF_INET6);
        assert_eq!(decode_name(&s, len), v4, "mapped folds back to IPv4");
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        let len = encode_name(v6, true, &mut s).unwrap();
        assert_eq!(decode_name(&s, len), v6);
        assert_eq!(
            encode_name(v6, false, &mut s),
            None,
            "no IPv6 from an IPv4 socket"
        );
    }

    #[test]
    fn segment_cmsg_is_read_back_by_the_gro_parser() {
        // SAFETY: (test) msghdr is plain old data.
        let mut hdr: libc::msghdr = unsafe { mem::zeroed() };
        let mut buf = ControlBuf::default();
        set_segment(&mut hdr, &mut buf, 1200);
        assert_eq!(gro_segment(&hdr), None, "UDP_SEGMENT is not UDP_GRO");
        // SAFETY: (test) the cmsg set_segment wrote sits at the start of buf.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_type = libc::UDP_GRO;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), 1200);
        }
        assert_eq!(gro_segment(&hdr), Some(1200));
    }

    #[test]
    fn unaligned_gro_cmsg_is_found_after_other_cmsgs() {
        let mut ctl = vec![0xaa_u8; 3]; // misalign the start, as io_uring's out buffer does
        let h = size_of::<libc::cmsghdr>();
        for (level, ty, val) in [
            (libc::SOL_IP, 8, 7_i32),
            (libc::SOL_UDP, libc::UDP_GRO, 1100),
        ] {
            // SAFETY: (test) arithmetic.
            let len = unsafe { libc::CMSG_LEN(4) } as usize;
            // SAFETY: (test) cmsghdr is plain old data.
            let mut c: libc::cmsghdr = unsafe { mem::zeroed() };
            c.cmsg_len = len as _;
            c.cmsg_level = level;
            c.cmsg_type = ty;
            let start = ctl.len();
            // SAFETY: (test) viewing a local POD value as its bytes.
            let raw = unsafe { std::slice::from_raw_parts((&raw const c).cast::<u8>(), h) };
            ctl.extend_from_slice(raw);
            ctl.extend_from_slice(&val.to_ne_bytes());
            ctl.resize(start + len.next_multiple_of(size_of::<usize>()), 0);
        }
        assert_eq!(gro_segment_in(&ctl[3..]), Some(1100));
        assert_eq!(gro_segment_in(&ctl[3..10]), None, "truncated header");
        assert_eq!(gro_segment_in(&[]), None);
    }
}
