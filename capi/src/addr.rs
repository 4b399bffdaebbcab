//! `SteamNetworkingIPAddr`'s exported helpers: the flat `SteamAPI_SteamNetworkingIPAddr_*`
//! methods (what the header's inline methods do, for C and C#) and the free functions
//! `SteamNetworkingIPAddr_ToString` / `_ParseString` / `_GetFakeIPType` that the C++ inline
//! methods call.
//!
//! Text follows GNS: IPv4-mapped addresses print as `a.b.c.d[:port]`, others as
//! `[v6]:port` or bare `v6`; parsing accepts the same forms, clears the address on failure
//! and reads a missing port as 0.

use std::ffi::{c_char, c_int};
use std::net::SocketAddr;

use sockworks::engine::wire::identity::Identity;

use crate::guard::{c_str_bounded, guard, write_c_str};
use crate::types::{
    IPv4MappedAddress, SteamNetworkingIPAddr, SteamNetworkingIPAddr_Union,
    k_ESteamNetworkingFakeIPType_NotFake,
};

/// Longest text `ParseString` looks at; longer input is not an address.
const MAX_TEXT: usize = 256;

/// The text form, as GNS's `ToString` writes it.
pub fn ip_addr_text(addr: &SteamNetworkingIPAddr, with_port: bool) -> String {
    let a = addr.to_socket_addr();
    match (a, with_port) {
        (SocketAddr::V4(v4), true) => v4.to_string(),
        (SocketAddr::V4(v4), false) => v4.ip().to_string(),
        (SocketAddr::V6(v6), true) => format!("[{}]:{}", v6.ip(), v6.port()),
        (SocketAddr::V6(v6), false) => v6.ip().to_string(),
    }
}

/// Parses GNS's address syntax (`1.2.3.4`, `1.2.3.4:5`, `::1`, `[::1]:5`).
pub fn parse_ip_addr(text: &str) -> Option<SocketAddr> {
    match Identity::parse(&format!("ip:{text}")) {
        Ok(Identity::IpAddress(a)) => Some(a),
        _ => None,
    }
}

/// `SteamNetworkingIPAddr::ToString`. A null address or buffer writes nothing.
///
/// # Safety
/// `addr` is null or valid; `buf` is null or has `size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamNetworkingIPAddr_ToString(
    addr: *const SteamNetworkingIPAddr,
    buf: *mut c_char,
    size: usize,
    with_port: bool,
) {
    guard((), || {
        // SAFETY: the caller passes a valid address or null.
        let Some(addr) = (unsafe { addr.as_ref() }) else {
            return;
        };
        // SAFETY: `buf` has `size` writable bytes or is null.
        unsafe { write_c_str(buf, size, &ip_addr_text(addr, with_port)) };
    });
}

/// `SteamNetworkingIPAddr::ParseString`: false (and the address cleared) for bad text.
///
/// # Safety
/// `addr` is null or valid; `text` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamNetworkingIPAddr_ParseString(
    addr: *mut SteamNetworkingIPAddr,
    text: *const c_char,
) -> bool {
    guard(false, || {
        // SAFETY: the caller passes a valid address or null.
        let Some(addr) = (unsafe { addr.as_mut() }) else {
            return false;
        };
        *addr = SteamNetworkingIPAddr::zeroed();
        // SAFETY: `text` is null or terminated; at most MAX_TEXT bytes are read before a NUL.
        let parsed = unsafe { c_str_bounded(text, MAX_TEXT) }
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(parse_ip_addr);
        match parsed {
            Some(a) => {
                *addr = SteamNetworkingIPAddr::from_socket_addr(a);
                true
            }
            None => false,
        }
    })
}

/// `SteamNetworkingIPAddr::GetFakeIPType`: GlobalIPv4 or LocalIPv4 for the FakeIP ranges
/// (see `GetIPv4FakeIPType`), NotFake for any other address or a null pointer (GNS: "never
/// returns Invalid").
///
/// # Safety
/// `addr` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamNetworkingIPAddr_GetFakeIPType(
    addr: *const SteamNetworkingIPAddr,
) -> c_int {
    // SAFETY: the caller passes null or a valid address.
    match unsafe { addr.as_ref() } {
        Some(a) => sockworks::engine::wire::fakeip::addr_fake_ip_type(&a.to_socket_addr()) as c_int,
        None => k_ESteamNetworkingFakeIPType_NotFake,
    }
}

/// Runs `f` on the address, or returns `failure` when it is null.
fn on<R: Copy>(
    addr: *mut SteamNetworkingIPAddr,
    failure: R,
    f: impl FnOnce(&mut SteamNetworkingIPAddr) -> R,
) -> R {
    guard(failure, || {
        // SAFETY: every caller below documents that `addr` is null or valid.
        match unsafe { addr.as_mut() } {
            Some(a) => f(a),
            None => failure,
        }
    })
}

fn mapped(a: &SteamNetworkingIPAddr) -> IPv4MappedAddress {
    // SAFETY: any 16 bytes are a valid mapped view.
    unsafe { a.u.m_ipv4 }
}

fn is_ipv4(a: &SteamNetworkingIPAddr) -> bool {
    let m = mapped(a);
    ({ m.m_8zeros }, { m.m_0000 }, { m.m_ffff }) == (0, 0, 0xffff)
}

/// `SteamNetworkingIPAddr::Clear`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_Clear(this: *mut SteamNetworkingIPAddr) {
    on(this, (), |a| *a = SteamNetworkingIPAddr::zeroed());
}

/// `SteamNetworkingIPAddr::IsIPv6AllZeros`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_IsIPv6AllZeros(
    this: *mut SteamNetworkingIPAddr,
) -> bool {
    on(this, false, |a| a.ipv6_bytes() == [0; 16])
}

/// `SteamNetworkingIPAddr::SetIPv6`: 16 bytes, network order.
///
/// # Safety
/// `this` is null or valid; `ipv6` is null or has 16 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_SetIPv6(
    this: *mut SteamNetworkingIPAddr,
    ipv6: *const u8,
    port: u16,
) {
    if ipv6.is_null() {
        return;
    }
    on(this, (), |a| {
        let mut b = [0u8; 16];
        // SAFETY: `ipv6` is non-null with 16 readable bytes.
        b.copy_from_slice(unsafe { std::slice::from_raw_parts(ipv6, 16) });
        a.u = SteamNetworkingIPAddr_Union { m_ipv6: b };
        a.m_port = port;
    });
}

/// `SteamNetworkingIPAddr::SetIPv4`: address and port in host order.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_SetIPv4(
    this: *mut SteamNetworkingIPAddr,
    ip: u32,
    port: u16,
) {
    on(this, (), |a| {
        a.u = SteamNetworkingIPAddr_Union {
            m_ipv4: IPv4MappedAddress {
                m_8zeros: 0,
                m_0000: 0,
                m_ffff: 0xffff,
                m_ip: ip.to_be_bytes(),
            },
        };
        a.m_port = port;
    });
}

/// `SteamNetworkingIPAddr::IsIPv4`: an IPv4-mapped address.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_IsIPv4(
    this: *mut SteamNetworkingIPAddr,
) -> bool {
    on(this, false, |a| is_ipv4(a))
}

/// `SteamNetworkingIPAddr::GetIPv4`: host order, 0 when not IPv4.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_GetIPv4(
    this: *mut SteamNetworkingIPAddr,
) -> u32 {
    on(this, 0, |a| {
        if is_ipv4(a) {
            u32::from_be_bytes(mapped(a).m_ip)
        } else {
            0
        }
    })
}

/// `SteamNetworkingIPAddr::SetIPv6LocalHost`: `[::1]:port`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_SetIPv6LocalHost(
    this: *mut SteamNetworkingIPAddr,
    port: u16,
) {
    on(this, (), |a| {
        let mut b = [0u8; 16];
        b[15] = 1;
        a.u = SteamNetworkingIPAddr_Union { m_ipv6: b };
        a.m_port = port;
    });
}

/// `SteamNetworkingIPAddr::IsLocalHost`: `::1` or `127.0.0.1`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_IsLocalHost(
    this: *mut SteamNetworkingIPAddr,
) -> bool {
    on(this, false, |a| {
        let mut v6_loopback = [0u8; 16];
        v6_loopback[15] = 1;
        a.ipv6_bytes() == v6_loopback || (is_ipv4(a) && mapped(a).m_ip == [127, 0, 0, 1])
    })
}

/// `SteamNetworkingIPAddr::operator==`: the same 18 bytes.
///
/// # Safety
/// `this` and `other` are null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_IsEqualTo(
    this: *mut SteamNetworkingIPAddr,
    other: *const SteamNetworkingIPAddr,
) -> bool {
    // SAFETY: the caller passes a valid address or null.
    let Some(other) = (unsafe { other.as_ref() }).copied() else {
        return false;
    };
    on(this, false, |a| {
        a.ipv6_bytes() == other.ipv6_bytes() && { a.m_port } == { other.m_port }
    })
}

/// `SteamNetworkingIPAddr::ToString`.
///
/// # Safety
/// As [`SteamNetworkingIPAddr_ToString`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_ToString(
    this: *const SteamNetworkingIPAddr,
    buf: *mut c_char,
    size: usize,
    with_port: bool,
) {
    // SAFETY: same contract.
    unsafe { SteamNetworkingIPAddr_ToString(this, buf, size, with_port) }
}

/// `SteamNetworkingIPAddr::ParseString`.
///
/// # Safety
/// As [`SteamNetworkingIPAddr_ParseString`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIPAddr_ParseString(
    this: *mut SteamNetworkingIPAddr,
    text: *const c_char,
) -> bool {
    // SAFETY: same contract.
    unsafe { SteamNetworkingIPAddr_ParseString(this, text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<SteamNetworkingIPAddr> {
        let text = std::ffi::CString::new(s).unwrap();
        let mut a = SteamNetworkingIPAddr::from_socket_addr("9.9.9.9:9".parse().unwrap());
        // SAFETY: valid pointers.
        let ok = unsafe { SteamNetworkingIPAddr_ParseString(&mut a, text.as_ptr()) };
        if !ok {
            assert_eq!(a.ipv6_bytes(), [0; 16], "cleared on failure");
        }
        ok.then_some(a)
    }

    fn text(a: &SteamNetworkingIPAddr, with_port: bool) -> String {
        let mut buf = [0 as c_char; SteamNetworkingIPAddr::k_cchMaxString];
        // SAFETY: valid pointers, buffer of the stated size.
        unsafe { SteamNetworkingIPAddr_ToString(a, buf.as_mut_ptr(), buf.len(), with_port) };
        crate::types::read_c_chars(&buf)
    }

    #[test]
    fn text_round_trips_as_gns_prints_it() {
        for (input, with, without) in [
            ("127.0.0.1:27015", "127.0.0.1:27015", "127.0.0.1"),
            ("10.1.2.3", "10.1.2.3:0", "10.1.2.3"),
            ("[::1]:80", "[::1]:80", "::1"),
            ("2001:db8::7", "[2001:db8::7]:0", "2001:db8::7"),
        ] {
            let a = parse(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(text(&a, true), with);
            assert_eq!(text(&a, false), without);
        }
        for bad in ["", "nonsense", "1.2.3.4:99999", "256.1.1.1:1", "[::1"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn setters_and_getters_match_the_header() {
        let mut a = SteamNetworkingIPAddr::zeroed();
        // SAFETY: valid pointers throughout.
        unsafe {
            assert!(SteamAPI_SteamNetworkingIPAddr_IsIPv6AllZeros(&mut a));
            SteamAPI_SteamNetworkingIPAddr_SetIPv4(&mut a, 0x7f00_0001, 5);
            assert!(SteamAPI_SteamNetworkingIPAddr_IsIPv4(&mut a));
            assert!(SteamAPI_SteamNetworkingIPAddr_IsLocalHost(&mut a));
            assert_eq!(SteamAPI_SteamNetworkingIPAddr_GetIPv4(&mut a), 0x7f00_0001);
            let b = SteamNetworkingIPAddr::from_socket_addr("127.0.0.1:5".parse().unwrap());
            assert!(SteamAPI_SteamNetworkingIPAddr_IsEqualTo(&mut a, &b));
            SteamAPI_SteamNetworkingIPAddr_SetIPv6LocalHost(&mut a, 7);
            assert!(!SteamAPI_SteamNetworkingIPAddr_IsIPv4(&mut a));
            assert!(SteamAPI_SteamNetworkingIPAddr_IsLocalHost(&mut a));
            assert_eq!(SteamAPI_SteamNetworkingIPAddr_GetIPv4(&mut a), 0);
            assert_eq!(a.to_socket_addr(), "[::1]:7".parse().unwrap());
            SteamAPI_SteamNetworkingIPAddr_Clear(&mut a);
            assert!(SteamAPI_SteamNetworkingIPAddr_IsIPv6AllZeros(&mut a));
            // Null pointers are refused, not dereferenced.
            SteamAPI_SteamNetworkingIPAddr_Clear(std::ptr::null_mut());
            assert!(!SteamAPI_SteamNetworkingIPAddr_IsIPv4(std::ptr::null_mut()));
            assert!(!SteamNetworkingIPAddr_ParseString(&mut a, std::ptr::null()));
        }
    }
}
