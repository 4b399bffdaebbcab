//! `SteamNetworkingIdentity`'s exported helpers: the flat `SteamAPI_SteamNetworkingIdentity_*`
//! methods (the header's inline methods, for C and C#) and the free functions
//! `SteamNetworkingIdentity_ToString` / `_ParseString` that the C++ inline methods call.
//! Text follows GNS (`steamid:…`, `ip:…`, `str:…`, `gen:<hex>`, …); parsing "invalid" is a
//! failure, as in GNS.

use std::ffi::{c_char, c_int, c_void};

use sockworks::engine::wire::identity::Identity;

use crate::guard::{c_str_bounded, guard, write_c_str};
use crate::types::{
    SteamNetworkingIPAddr, SteamNetworkingIdentity, k_ESteamNetworkingIdentityType_GenericBytes,
    k_ESteamNetworkingIdentityType_GenericString, k_ESteamNetworkingIdentityType_IPAddress,
    k_ESteamNetworkingIdentityType_Invalid, k_ESteamNetworkingIdentityType_SteamID,
    k_ESteamNetworkingIdentityType_XboxPairwiseID,
};

/// Longest text `ParseString` looks at (the longest identity string, 127 bytes, plus slack).
const MAX_TEXT: usize = 256;

/// The text form, as GNS's `ToString` writes it (`bad_type:N` for unknown type numbers).
pub fn identity_text(id: &SteamNetworkingIdentity) -> String {
    match id.to_identity() {
        Some(i) => i.to_string(),
        None if { id.m_eType } == k_ESteamNetworkingIdentityType_Invalid => "invalid".into(),
        None => format!("bad_type:{}", { id.m_eType }),
    }
}

/// `SteamNetworkingIdentity::ToString`. A null identity or buffer writes nothing.
///
/// # Safety
/// `id` is null or valid; `buf` is null or has `size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamNetworkingIdentity_ToString(
    id: *const SteamNetworkingIdentity,
    buf: *mut c_char,
    size: usize,
) {
    guard((), || {
        // SAFETY: the caller passes a valid identity or null.
        let Some(id) = (unsafe { id.as_ref() }) else {
            return;
        };
        // SAFETY: `buf` is null or has `size` writable bytes.
        unsafe { write_c_str(buf, size, &identity_text(id)) };
    });
}

/// `SteamNetworkingIdentity::ParseString`: clears `size_of_identity` bytes, then parses;
/// false for bad text, for "invalid" and for a size under 32 (GNS's bogus-size check).
///
/// # Safety
/// `id` is null or has `size_of_identity` writable bytes; `text` is null or terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamNetworkingIdentity_ParseString(
    id: *mut SteamNetworkingIdentity,
    size_of_identity: usize,
    text: *const c_char,
) -> bool {
    guard(false, || {
        if id.is_null() || size_of_identity < 32 {
            return false;
        }
        // SAFETY: the caller says `size_of_identity` bytes are writable.
        unsafe { std::ptr::write_bytes(id.cast::<u8>(), 0, size_of_identity) };
        // SAFETY: `text` is null or terminated; at most MAX_TEXT bytes are read before a NUL.
        let parsed = unsafe { c_str_bounded(text, MAX_TEXT) }
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| Identity::parse(s).ok());
        let c = match parsed {
            None | Some(Identity::Invalid) => return false,
            Some(i) => SteamNetworkingIdentity::from_identity(&i),
        };
        // An older, smaller struct gets what fits (GNS's forward-compatibility rule); a
        // value that does not fit is a failure.
        let size = size_of_identity.min(size_of::<SteamNetworkingIdentity>());
        if 8 + usize::try_from(c.m_cbSize).unwrap_or(usize::MAX) > size {
            return false;
        }
        // SAFETY: `size` bytes of `c` are readable and of `id` writable.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::from_ref(&c).cast::<u8>(),
                id.cast::<u8>(),
                size,
            );
        }
        true
    })
}

/// Runs `f` on the identity, or returns `failure` when it is null.
fn on<R: Copy>(
    id: *mut SteamNetworkingIdentity,
    failure: R,
    f: impl FnOnce(&mut SteamNetworkingIdentity) -> R,
) -> R {
    guard(failure, || {
        // SAFETY: every caller below documents that `id` is null or valid.
        match unsafe { id.as_mut() } {
            Some(i) => f(i),
            None => failure,
        }
    })
}

/// A pointer into the identity's union (valid as long as the identity is).
fn union_ptr(id: &mut SteamNetworkingIdentity) -> *mut u8 {
    std::ptr::addr_of_mut!(id.u).cast::<u8>()
}

/// `SteamNetworkingIdentity::Clear`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_Clear(
    this: *mut SteamNetworkingIdentity,
) {
    on(this, (), |i| *i = SteamNetworkingIdentity::zeroed());
}

/// `SteamNetworkingIdentity::IsInvalid`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_IsInvalid(
    this: *mut SteamNetworkingIdentity,
) -> bool {
    on(
        this,
        true,
        |i| { i.m_eType } == k_ESteamNetworkingIdentityType_Invalid,
    )
}

/// `SteamNetworkingIdentity::SetSteamID` (the flat form takes the SteamID as a `uint64`).
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetSteamID(
    this: *mut SteamNetworkingIdentity,
    steam_id: u64,
) {
    // SAFETY: same contract.
    unsafe { SteamAPI_SteamNetworkingIdentity_SetSteamID64(this, steam_id) }
}

/// `SteamNetworkingIdentity::GetSteamID`: 0 unless a SteamID.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_GetSteamID(
    this: *mut SteamNetworkingIdentity,
) -> u64 {
    // SAFETY: same contract.
    unsafe { SteamAPI_SteamNetworkingIdentity_GetSteamID64(this) }
}

/// `SteamNetworkingIdentity::SetSteamID64`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetSteamID64(
    this: *mut SteamNetworkingIdentity,
    steam_id: u64,
) {
    on(this, (), |i| {
        *i = SteamNetworkingIdentity::from_identity(&Identity::SteamId(steam_id))
    });
}

/// `SteamNetworkingIdentity::GetSteamID64`: 0 unless a SteamID.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_GetSteamID64(
    this: *mut SteamNetworkingIdentity,
) -> u64 {
    on(this, 0, |i| {
        if { i.m_eType } == k_ESteamNetworkingIdentityType_SteamID {
            // SAFETY: the union holds a SteamID for this type.
            unsafe { i.u.m_steamID64 }
        } else {
            0
        }
    })
}

/// Sets a NUL-terminated string member: false (unchanged) when empty-and-required or too long.
///
/// # Safety
/// `this` is null or valid; `text` is null or terminated.
unsafe fn set_text(
    this: *mut SteamNetworkingIdentity,
    text: *const c_char,
    kind: i32,
    cap: usize,
    min_len: usize,
) -> bool {
    // SAFETY: `text` is null or terminated; at most `cap` bytes are read before a NUL.
    let Some(bytes) = (unsafe { c_str_bounded(text, cap) }) else {
        return false;
    };
    if bytes.len() < min_len || bytes.len() >= cap {
        return false;
    }
    on(this, false, |i| {
        *i = SteamNetworkingIdentity::zeroed();
        i.m_eType = kind;
        i.m_cbSize = bytes.len() as i32 + 1;
        // SAFETY: the union has 128 bytes; `bytes.len() < cap <= 33`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), union_ptr(i), bytes.len()) };
        true
    })
}

/// A string member's pointer when the identity is of `kind`, else null.
fn get_text(this: *mut SteamNetworkingIdentity, kind: i32) -> *const c_char {
    on(this, std::ptr::null(), |i| {
        if { i.m_eType } == kind {
            union_ptr(i).cast_const().cast::<c_char>()
        } else {
            std::ptr::null()
        }
    })
}

/// `SteamNetworkingIdentity::SetXboxPairwiseID`: 1 to 32 bytes.
///
/// # Safety
/// `this` is null or valid; `text` is null or terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetXboxPairwiseID(
    this: *mut SteamNetworkingIdentity,
    text: *const c_char,
) -> bool {
    // SAFETY: same contract.
    unsafe {
        set_text(
            this,
            text,
            k_ESteamNetworkingIdentityType_XboxPairwiseID,
            33,
            1,
        )
    }
}

/// `SteamNetworkingIdentity::GetXboxPairwiseID`: null unless that type.
///
/// # Safety
/// `this` is null or valid; the pointer lives as long as the identity.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_GetXboxPairwiseID(
    this: *mut SteamNetworkingIdentity,
) -> *const c_char {
    get_text(this, k_ESteamNetworkingIdentityType_XboxPairwiseID)
}

/// `SteamNetworkingIdentity::SetIPAddr`.
///
/// # Safety
/// `this` and `addr` are null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetIPAddr(
    this: *mut SteamNetworkingIdentity,
    addr: *const SteamNetworkingIPAddr,
) {
    // SAFETY: the caller passes a valid address or null.
    let Some(addr) = (unsafe { addr.as_ref() }).copied() else {
        return;
    };
    on(this, (), |i| {
        i.m_eType = k_ESteamNetworkingIdentityType_IPAddress;
        i.m_cbSize = size_of::<SteamNetworkingIPAddr>() as i32;
        i.u.m_ip = addr;
    });
}

/// `SteamNetworkingIdentity::GetIPAddr`: null unless an address.
///
/// # Safety
/// `this` is null or valid; the pointer lives as long as the identity.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_GetIPAddr(
    this: *mut SteamNetworkingIdentity,
) -> *const SteamNetworkingIPAddr {
    get_text(this, k_ESteamNetworkingIdentityType_IPAddress).cast::<SteamNetworkingIPAddr>()
}

/// `SteamNetworkingIdentity::SetLocalHost`: `ip:::1`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetLocalHost(
    this: *mut SteamNetworkingIdentity,
) {
    let mut addr = SteamNetworkingIPAddr::zeroed();
    // SAFETY: a valid local address.
    unsafe { crate::addr::SteamAPI_SteamNetworkingIPAddr_SetIPv6LocalHost(&mut addr, 0) };
    // SAFETY: same contract; `addr` is valid.
    unsafe { SteamAPI_SteamNetworkingIdentity_SetIPAddr(this, &addr) }
}

/// `SteamNetworkingIdentity::IsLocalHost`.
///
/// # Safety
/// `this` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_IsLocalHost(
    this: *mut SteamNetworkingIdentity,
) -> bool {
    on(this, false, |i| {
        if { i.m_eType } != k_ESteamNetworkingIdentityType_IPAddress {
            return false;
        }
        // SAFETY: the union holds an address for this type.
        let mut addr = unsafe { i.u.m_ip };
        // SAFETY: `addr` is valid.
        unsafe { crate::addr::SteamAPI_SteamNetworkingIPAddr_IsLocalHost(&mut addr) }
    })
}

/// `SteamNetworkingIdentity::SetGenericString`: at most 31 bytes.
///
/// # Safety
/// `this` is null or valid; `text` is null or terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetGenericString(
    this: *mut SteamNetworkingIdentity,
    text: *const c_char,
) -> bool {
    // SAFETY: same contract.
    unsafe {
        set_text(
            this,
            text,
            k_ESteamNetworkingIdentityType_GenericString,
            32,
            0,
        )
    }
}

/// `SteamNetworkingIdentity::GetGenericString`: null unless that type.
///
/// # Safety
/// `this` is null or valid; the pointer lives as long as the identity.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_GetGenericString(
    this: *mut SteamNetworkingIdentity,
) -> *const c_char {
    get_text(this, k_ESteamNetworkingIdentityType_GenericString)
}

/// `SteamNetworkingIdentity::SetGenericBytes`: at most 32 bytes.
///
/// # Safety
/// `this` is null or valid; `data` is null or has `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_SetGenericBytes(
    this: *mut SteamNetworkingIdentity,
    data: *const c_void,
    len: u32,
) -> bool {
    let len = len as usize;
    if len > SteamNetworkingIdentity::k_cbMaxGenericBytes || (data.is_null() && len > 0) {
        return false;
    }
    on(this, false, |i| {
        *i = SteamNetworkingIdentity::zeroed();
        i.m_eType = k_ESteamNetworkingIdentityType_GenericBytes;
        i.m_cbSize = len as i32;
        if len > 0 {
            // SAFETY: `data` has `len <= 32` readable bytes; the union has 128.
            unsafe { std::ptr::copy_nonoverlapping(data.cast::<u8>(), union_ptr(i), len) };
        }
        true
    })
}

/// `SteamNetworkingIdentity::GetGenericBytes`: null unless that type; the length through
/// `len`.
///
/// # Safety
/// `this` is null or valid; `len` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_GetGenericBytes(
    this: *mut SteamNetworkingIdentity,
    len: *mut c_int,
) -> *const u8 {
    on(this, std::ptr::null(), |i| {
        if { i.m_eType } != k_ESteamNetworkingIdentityType_GenericBytes {
            return std::ptr::null();
        }
        if !len.is_null() {
            // SAFETY: `len` is writable.
            unsafe { len.write(i.m_cbSize) };
        }
        union_ptr(i).cast_const()
    })
}

/// `SteamNetworkingIdentity::operator==`: same type, size and the first `size` bytes.
///
/// # Safety
/// `this` and `other` are null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_IsEqualTo(
    this: *mut SteamNetworkingIdentity,
    other: *const SteamNetworkingIdentity,
) -> bool {
    // SAFETY: the caller passes a valid identity or null.
    let Some(other) = (unsafe { other.as_ref() }).copied() else {
        return false;
    };
    on(this, false, |i| {
        let n = usize::try_from(i.m_cbSize).unwrap_or(0).min(128);
        ({ i.m_eType }) == { other.m_eType }
            && { i.m_cbSize } == { other.m_cbSize }
            && i.raw()[..n] == other.raw()[..n]
    })
}

/// `SteamNetworkingIdentity::ToString`.
///
/// # Safety
/// As [`SteamNetworkingIdentity_ToString`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_ToString(
    this: *const SteamNetworkingIdentity,
    buf: *mut c_char,
    size: usize,
) {
    // SAFETY: same contract.
    unsafe { SteamNetworkingIdentity_ToString(this, buf, size) }
}

/// `SteamNetworkingIdentity::ParseString`.
///
/// # Safety
/// As [`SteamNetworkingIdentity_ParseString`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_SteamNetworkingIdentity_ParseString(
    this: *mut SteamNetworkingIdentity,
    size_of_identity: usize,
    text: *const c_char,
) -> bool {
    // SAFETY: same contract.
    unsafe { SteamNetworkingIdentity_ParseString(this, size_of_identity, text) }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;
    use crate::types::read_c_chars;

    fn parse(s: &str) -> Option<SteamNetworkingIdentity> {
        let text = CString::new(s).unwrap();
        let mut id = SteamNetworkingIdentity::zeroed();
        // SAFETY: valid pointers and the struct's own size.
        unsafe { SteamNetworkingIdentity_ParseString(&mut id, size_of_val(&id), text.as_ptr()) }
            .then_some(id)
    }

    fn text(id: &SteamNetworkingIdentity) -> String {
        let mut buf = [0 as c_char; SteamNetworkingIdentity::k_cchMaxString];
        // SAFETY: valid pointers.
        unsafe { SteamNetworkingIdentity_ToString(id, buf.as_mut_ptr(), buf.len()) };
        read_c_chars(&buf)
    }

    #[test]
    fn parse_and_print_as_gns() {
        for s in [
            "steamid:76561197960287930",
            "ip:127.0.0.1:5",
            "ip:::1",
            "str:abc",
            "gen:0aff",
            "psn:7",
        ] {
            let id = parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(text(&id), s);
        }
        for bad in [
            "",
            "invalid",
            "steamid:0",
            "str:this string is far too long for it",
            "nope",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert_eq!(text(&SteamNetworkingIdentity::zeroed()), "invalid");
    }

    #[test]
    fn setters_getters_and_equality() {
        let mut a = SteamNetworkingIdentity::zeroed();
        let s = CString::new("player-one").unwrap();
        // SAFETY: valid pointers throughout.
        unsafe {
            assert!(SteamAPI_SteamNetworkingIdentity_IsInvalid(&mut a));
            assert!(SteamAPI_SteamNetworkingIdentity_SetGenericString(
                &mut a,
                s.as_ptr()
            ));
            let got =
                std::ffi::CStr::from_ptr(SteamAPI_SteamNetworkingIdentity_GetGenericString(&mut a));
            assert_eq!(got.to_str().unwrap(), "player-one");
            assert!(SteamAPI_SteamNetworkingIdentity_GetXboxPairwiseID(&mut a).is_null());
            let b = parse("str:player-one").unwrap();
            assert!(SteamAPI_SteamNetworkingIdentity_IsEqualTo(&mut a, &b));
            SteamAPI_SteamNetworkingIdentity_SetSteamID64(&mut a, 42);
            assert_eq!(SteamAPI_SteamNetworkingIdentity_GetSteamID64(&mut a), 42);
            assert!(!SteamAPI_SteamNetworkingIdentity_IsEqualTo(&mut a, &b));
            SteamAPI_SteamNetworkingIdentity_SetLocalHost(&mut a);
            assert!(SteamAPI_SteamNetworkingIdentity_IsLocalHost(&mut a));
            assert!(!SteamAPI_SteamNetworkingIdentity_GetIPAddr(&mut a).is_null());
            let bytes = [1u8, 2, 3];
            assert!(SteamAPI_SteamNetworkingIdentity_SetGenericBytes(
                &mut a,
                bytes.as_ptr().cast(),
                3
            ));
            let mut n = 0;
            let p = SteamAPI_SteamNetworkingIdentity_GetGenericBytes(&mut a, &mut n);
            assert_eq!(std::slice::from_raw_parts(p, n as usize), &bytes);
            assert!(!SteamAPI_SteamNetworkingIdentity_SetGenericBytes(
                &mut a,
                bytes.as_ptr().cast(),
                33
            ));
            // Null pointers are refused.
            assert!(!SteamAPI_SteamNetworkingIdentity_SetGenericString(
                &mut a,
                std::ptr::null()
            ));
            assert!(SteamAPI_SteamNetworkingIdentity_IsInvalid(
                std::ptr::null_mut()
            ));
            assert!(!SteamNetworkingIdentity_ParseString(&mut a, 8, s.as_ptr()));
        }
    }
}
