//! The FFI boundary: no panic crosses it, and C strings are read only within their bounds.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs an exported call's body; a panic becomes the call's documented failure value.
pub fn guard<R>(failure: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(failure)
}

/// A NUL-terminated C string as UTF-8 (lossy), or `None` for a null pointer.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that stays valid for `'a`.
pub unsafe fn c_str<'a>(p: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller promises a terminated string valid for 'a.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy())
}

/// A C string of at most `max` bytes before its NUL; `None` when null or unterminated within
/// `max`, so a buffer without a terminator is never read past its end.
///
/// # Safety
/// `p` is null or points to at least `max` readable bytes, or to a terminated string shorter.
pub unsafe fn c_str_bounded<'a>(p: *const c_char, max: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    let mut n = 0;
    while n < max {
        // SAFETY: n < max and the caller promises max readable bytes (or a NUL before them).
        if unsafe { *p.add(n) } == 0 {
            // SAFETY: the n bytes before the NUL were just read.
            return Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) });
        }
        n += 1;
    }
    None
}

/// `k_cchMaxSteamNetworkingErrMsg`: the size of a `SteamNetworkingErrMsg`.
pub const ERR_MSG_LEN: usize = 1024;

/// Writes `why` into a `SteamNetworkingErrMsg` (null: nothing) and returns
/// false: how the calls that take an error buffer fail.
///
/// # Safety
/// `err_msg` is null or a `SteamNetworkingErrMsg`.
pub unsafe fn fail_with(err_msg: *mut c_char, why: &str) -> bool {
    // SAFETY: the caller passes null or 1024 writable bytes.
    unsafe { write_c_str(err_msg, ERR_MSG_LEN, why) };
    false
}

/// Copies `s` into a C buffer of `cap` bytes, NUL-terminated and truncated to fit; nothing
/// written when the buffer is null or empty. Returns the bytes the text and its NUL need.
///
/// # Safety
/// `buf` is null or points to `cap` writable bytes.
pub unsafe fn write_c_str(buf: *mut c_char, cap: usize, s: &str) -> usize {
    if !buf.is_null() && cap > 0 {
        let n = s.len().min(cap - 1);
        // SAFETY: n + 1 <= cap bytes are writable; the source is a distinct Rust string.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    s.len() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_failure_value() {
        let r = guard(-1, || -> i32 { panic!("boom") });
        assert_eq!(r, -1);
        assert_eq!(guard(-1, || 7), 7);
    }

    #[test]
    fn bounded_strings_stop_at_the_bound() {
        let unterminated = *b"abcd";
        // SAFETY: 4 readable bytes.
        let r = unsafe { c_str_bounded(unterminated.as_ptr().cast(), 4) };
        assert_eq!(r, None);
        let terminated = *b"ab\0d";
        // SAFETY: 4 readable bytes.
        let r = unsafe { c_str_bounded(terminated.as_ptr().cast(), 4) };
        assert_eq!(r, Some(&b"ab"[..]));
    }

    #[test]
    fn writes_truncate_and_terminate() {
        let mut buf = [0x55 as c_char; 4];
        // SAFETY: 4 writable bytes.
        let need = unsafe { write_c_str(buf.as_mut_ptr(), 4, "hello") };
        assert_eq!(need, 6);
        assert_eq!(buf.map(|c| c as u8), *b"hel\0");
    }
}
