//! One option's value as C passes it and as `GetConfigValue` returns it, with GNS's
//! conversions between data types (`AssignConfigValueTyped`: an Int32 option accepts an
//! Int64 that fits, a Float rounded, a string parsed like `sscanf("%d")`) and its clamp.

use std::ffi::c_void;
use std::sync::Arc;

use sockworks::{ConfigPayload, ConfigValue};

use super::table::{Default, Entry, Limits};
use crate::types::{
    SteamNetAuthenticationStatus_t, SteamNetConnectionStatusChangedCallback_t,
    k_ESteamNetworkingConfig_Float, k_ESteamNetworkingConfig_Int32, k_ESteamNetworkingConfig_Int64,
    k_ESteamNetworkingConfig_Ptr, k_ESteamNetworkingConfig_String,
    k_ESteamNetworkingGetConfigValue_BufferTooSmall, k_ESteamNetworkingGetConfigValue_OK,
};

/// Longest string option read from C (a longer one without a NUL is refused, never overread).
pub(crate) const MAX_STRING: usize = 64 * 1024;

/// A value of an option's own data type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Int32.
    I32(i32),
    /// Int64.
    I64(i64),
    /// Float.
    F32(f32),
    /// String, without its NUL.
    Str(Vec<u8>),
    /// Ptr (a callback), as an address; 0 is null.
    Ptr(usize),
}

/// The argument as the caller typed it (`eDataType`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg<'a> {
    /// Int32.
    I32(i32),
    /// Int64.
    I64(i64),
    /// Float.
    F32(f32),
    /// String bytes before the NUL.
    Str(&'a [u8]),
    /// Pointer.
    Ptr(usize),
}

/// Reads `SetConfigValue`'s `pArg` as `data_type` says; `None` for an unknown type or an
/// unterminated string.
///
/// # Safety
/// `p` is non-null and points to a value of `data_type` (for strings: the string itself,
/// NUL-terminated; for pointers: the pointer to the pointer, as GNS's header passes it).
pub(crate) unsafe fn read_arg<'a>(data_type: i32, p: *const c_void) -> Option<Arg<'a>> {
    // read_unaligned: C gives no alignment promise for a `const void *`.
    Some(match data_type {
        k_ESteamNetworkingConfig_Int32 => {
            // SAFETY: the caller promises `p` points to an int32.
            Arg::I32(unsafe { p.cast::<i32>().read_unaligned() })
        }
        k_ESteamNetworkingConfig_Int64 => {
            // SAFETY: the caller promises `p` points to an int64.
            Arg::I64(unsafe { p.cast::<i64>().read_unaligned() })
        }
        k_ESteamNetworkingConfig_Float => {
            // SAFETY: the caller promises `p` points to a float.
            Arg::F32(unsafe { p.cast::<f32>().read_unaligned() })
        }
        k_ESteamNetworkingConfig_String => {
            // SAFETY: a NUL-terminated string (caller), read no further than MAX_STRING bytes.
            Arg::Str(unsafe { crate::guard::c_str_bounded(p.cast(), MAX_STRING) }?)
        }
        k_ESteamNetworkingConfig_Ptr => {
            // SAFETY: the caller promises `p` points to a pointer.
            Arg::Ptr(unsafe { p.cast::<*mut c_void>().read_unaligned() } as usize)
        }
        _ => return None,
    })
}

/// `sscanf("%lld")`: optional spaces and sign, then digits; the rest is ignored.
fn scan_int(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?.trim_start();
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    s[..s.len() - digits.len() + n].parse().ok()
}

/// `sscanf("%f")`: the longest leading text that is a number.
fn scan_float(s: &[u8]) -> Option<f32> {
    let s = std::str::from_utf8(s).ok()?.trim_start();
    let n = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
        .count();
    (1..=n).rev().find_map(|k| s[..k].parse().ok())
}

/// `floor(f + .5)`, saturating where C would be undefined.
fn round(f: f32) -> i64 {
    (f64::from(f) + 0.5).floor() as i64
}

/// The argument as the entry's own type, clamped to its limits (GNS clamps, it does not
/// refuse); `None` where GNS refuses the conversion.
pub(crate) fn coerce(e: &Entry, a: &Arg<'_>) -> Option<Value> {
    let v = match e.data_type {
        k_ESteamNetworkingConfig_Int32 => Value::I32(match *a {
            Arg::I32(v) => v,
            Arg::I64(v) => i32::try_from(v).ok()?,
            Arg::F32(f) => round(f).clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            Arg::Str(s) => i32::try_from(scan_int(s)?).ok()?,
            Arg::Ptr(_) => return None,
        }),
        k_ESteamNetworkingConfig_Int64 => Value::I64(match *a {
            Arg::I32(v) => v.into(),
            Arg::I64(v) => v,
            Arg::F32(f) => round(f),
            Arg::Str(s) => scan_int(s)?,
            Arg::Ptr(_) => return None,
        }),
        k_ESteamNetworkingConfig_Float => Value::F32(match *a {
            Arg::I32(v) => v as f32,
            Arg::I64(v) => v as f32,
            Arg::F32(f) => f,
            Arg::Str(s) => scan_float(s)?,
            Arg::Ptr(_) => return None,
        }),
        k_ESteamNetworkingConfig_String => Value::Str(match *a {
            Arg::I32(v) => v.to_string().into_bytes(),
            Arg::I64(v) => v.to_string().into_bytes(),
            Arg::F32(f) => f.to_string().into_bytes(),
            Arg::Str(s) => s.to_vec(),
            Arg::Ptr(_) => return None,
        }),
        k_ESteamNetworkingConfig_Ptr => match *a {
            Arg::Ptr(p) => Value::Ptr(p),
            _ => return None,
        },
        _ => return None,
    };
    Some(clamp(e, v))
}

fn clamp(e: &Entry, v: Value) -> Value {
    match (e.limits, v) {
        (Limits::Int(lo, hi), Value::I32(x)) => Value::I32(x.clamp(lo, hi)),
        // max/min as GNS's std::max/std::min: NaN ends up at the upper limit.
        (Limits::Float(lo, hi), Value::F32(x)) => Value::F32(lo.max(hi.min(x))),
        (_, v) => v,
    }
}

/// The entry's GNS default.
pub(crate) fn default_value(e: &Entry) -> Value {
    match e.default {
        Default::I32(v) => Value::I32(v),
        Default::I64(v) => Value::I64(v),
        Default::F32(v) => Value::F32(v),
        Default::Str(s) => Value::Str(s.as_bytes().to_vec()),
        Default::Null => Value::Ptr(0),
    }
}

/// The C status-changed callback at `addr`, as the Rust API's callback (null: one that does
/// nothing, the Rust API's way of "no callback").
fn status_callback(addr: usize) -> sockworks::StatusChangedFn {
    if addr == 0 {
        return Arc::new(|_| {});
    }
    // SAFETY: `addr` is the non-null function pointer the application passed for
    // Callback_ConnectionStatusChanged, whose type is this function type.
    let f = unsafe {
        std::mem::transmute::<
            usize,
            unsafe extern "C" fn(*mut SteamNetConnectionStatusChangedCallback_t),
        >(addr)
    };
    crate::callbacks::status_changed_fn(f)
}

/// The C authentication-status callback at `addr` (null: one that does nothing).
fn auth_callback(addr: usize) -> sockworks::AuthStatusFn {
    if addr == 0 {
        return Arc::new(|_| {});
    }
    // SAFETY: `addr` is the non-null function pointer the application passed for
    // Callback_AuthStatusChanged, whose type is this function type.
    let f = unsafe {
        std::mem::transmute::<usize, unsafe extern "C" fn(*mut SteamNetAuthenticationStatus_t)>(
            addr,
        )
    };
    crate::auth::auth_status_fn(f)
}

/// The C FakeIP-result callback at `addr` (null: one that does nothing).
fn fake_ip_callback(addr: usize) -> sockworks::FakeIpResultFn {
    if addr == 0 {
        return Arc::new(|_| {});
    }
    // SAFETY: `addr` is the non-null function pointer the application passed for
    // Callback_FakeIPResult, whose type is this function type.
    let f = unsafe { std::mem::transmute::<usize, crate::fakeip::CFakeIpResult>(addr) };
    crate::fakeip::fake_ip_result_fn(f)
}

/// The Rust API's value for an implemented option `id`; `None` for one Sockworks only
/// stores, or a value of the wrong type.
pub(crate) fn to_config(id: i32, v: &Value) -> Option<ConfigValue> {
    match (id, v) {
        (201, Value::Ptr(p)) => Some(ConfigValue::ConnectionStatusChanged(status_callback(*p))),
        (202, Value::Ptr(p)) => Some(ConfigValue::AuthStatusChanged(auth_callback(*p))),
        (207, Value::Ptr(p)) => Some(ConfigValue::FakeIpResult(fake_ip_callback(*p))),
        (id, Value::I32(x)) => ConfigValue::from_payload(id, ConfigPayload::Int32(*x)),
        (id, Value::I64(x)) => ConfigValue::from_payload(id, ConfigPayload::Int64(*x)),
        (id, Value::F32(x)) => ConfigValue::from_payload(id, ConfigPayload::Float(*x)),
        (id, Value::Str(x)) => ConfigValue::from_payload(
            id,
            ConfigPayload::String(String::from_utf8_lossy(x).into_owned()),
        ),
        _ => None,
    }
}

/// The payload of a Rust API value; `None` for the callback (its C pointer is kept by the
/// store, the Rust closure cannot give it back).
pub(crate) fn from_config(cv: &ConfigValue) -> Option<Value> {
    Some(match cv.payload()? {
        ConfigPayload::Int32(x) => Value::I32(x),
        ConfigPayload::Int64(x) => Value::I64(x),
        ConfigPayload::Float(x) => Value::F32(x),
        ConfigPayload::String(x) => Value::Str(x.into_bytes()),
    })
}

/// GNS's `ReturnConfigValueTyped`: writes `v` if `*cb` bytes are room enough (strings with
/// their NUL), sets `*cb` to the size needed either way; BufferTooSmall otherwise (and for a
/// null `cb`, where GNS would crash).
///
/// # Safety
/// `out` is null or points to `*cb` writable bytes; `cb` is null or valid.
pub(crate) unsafe fn write_out(v: &Value, out: *mut c_void, cb: *mut usize) -> i32 {
    if cb.is_null() {
        return k_ESteamNetworkingGetConfigValue_BufferTooSmall;
    }
    let bytes: Vec<u8> = match v {
        Value::I32(x) => x.to_ne_bytes().to_vec(),
        Value::I64(x) => x.to_ne_bytes().to_vec(),
        Value::F32(x) => x.to_ne_bytes().to_vec(),
        Value::Ptr(x) => x.to_ne_bytes().to_vec(),
        Value::Str(s) => s.iter().copied().chain([0]).collect(),
    };
    // SAFETY: `cb` is non-null and valid (caller).
    let room = unsafe { cb.read_unaligned() };
    let r = if out.is_null() || room < bytes.len() {
        k_ESteamNetworkingGetConfigValue_BufferTooSmall
    } else {
        // SAFETY: `out` has `room >= bytes.len()` writable bytes (caller); distinct buffers.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), bytes.len()) };
        k_ESteamNetworkingGetConfigValue_OK
    };
    // SAFETY: as above.
    unsafe { cb.write_unaligned(bytes.len()) };
    r
}
