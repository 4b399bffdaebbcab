//! Options arrays (`SteamNetworkingConfigValue_t *`, as CreateListenSocketIP,
//! ConnectByIPAddress and CreateSocketPair take them) read into the Rust API's values, with
//! GNS's rules: each option is applied like `SetConfigValueStruct` at the new object's scope,
//! and any refusal fails the whole call.

use std::ffi::{c_int, c_void};

use sockworks::ConfigValue;

use super::table::{self, Support};
use super::value::{coerce, read_arg, to_config};
use crate::types::{
    SteamNetworkingConfigValue_t, k_ESteamNetworkingConfig_Global, k_ESteamNetworkingConfig_String,
};

/// Why an options array was refused (the create call then fails, as in GNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigArrayError {
    /// A negative count.
    #[error("negative options count {0}")]
    NegativeCount(c_int),
    /// A null array with a positive count.
    #[error("options list is NULL, but nOptions != 0")]
    NullArray,
    /// An id GNS 1.6 does not define.
    #[error("option {index}: unknown config value {id}")]
    Unknown {
        /// Position in the array.
        index: usize,
        /// `m_eValue`.
        id: i32,
    },
    /// A global-only value (fake network conditions, global callbacks) or a read-only one
    /// (MTU_DataSize): not settable on a listen socket or connection.
    #[error("option {index}: config value {id} cannot be set on a listen socket or connection")]
    WrongScope {
        /// Position in the array.
        index: usize,
        /// `m_eValue`.
        id: i32,
    },
    /// A data type that cannot be converted to the option's (or a string that does not parse).
    #[error("option {index}: config value {id} cannot take data type {data_type}")]
    WrongType {
        /// Position in the array.
        index: usize,
        /// `m_eValue`.
        id: i32,
        /// `m_eDataType`.
        data_type: i32,
    },
    /// A value the Rust API refuses even after GNS's clamp.
    #[error("option {index}: config value {id} out of range")]
    OutOfRange {
        /// Position in the array.
        index: usize,
        /// `m_eValue`.
        id: i32,
    },
}

/// Reads `n` options at `opts` into the Rust API's values. Options Sockworks accepts with no
/// effect (P2P, SDR, log levels, …) are checked and skipped. A null array with `n == 0` is an
/// empty list.
///
/// # Safety
/// `opts` is null or points to `n` readable options whose string values (if any) are
/// NUL-terminated.
pub unsafe fn values_from_options(
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> Result<Vec<ConfigValue>, ConfigArrayError> {
    let count = usize::try_from(n).map_err(|_| ConfigArrayError::NegativeCount(n))?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if opts.is_null() {
        return Err(ConfigArrayError::NullArray);
    }
    // SAFETY: non-null, `count` readable options (caller).
    let opts = unsafe { std::slice::from_raw_parts(opts, count) };
    let mut out = Vec::new();
    for (index, o) in opts.iter().enumerate() {
        let id = o.m_eValue;
        let e = table::find(id).ok_or(ConfigArrayError::Unknown { index, id })?;
        if e.scope == k_ESteamNetworkingConfig_Global || e.support == Support::ReadOnly {
            return Err(ConfigArrayError::WrongScope { index, id });
        }
        let wrong_type = ConfigArrayError::WrongType {
            index,
            id,
            data_type: o.m_eDataType,
        };
        let arg = if o.m_eDataType == k_ESteamNetworkingConfig_String {
            // SAFETY: reading the union's pointer member: every member is plain data.
            let p = unsafe { o.m_val.m_string };
            if p.is_null() {
                // GNS: a null argument clears the option, which a new object has not set.
                continue;
            }
            // SAFETY: the caller promises a NUL-terminated string.
            unsafe { read_arg(o.m_eDataType, p.cast::<c_void>()) }
        } else {
            // SAFETY: the union holds a value of `m_eDataType` (caller); read_arg reads at
            // most 8 bytes of the 8-byte union.
            unsafe { read_arg(o.m_eDataType, std::ptr::from_ref(&o.m_val).cast::<c_void>()) }
        }
        .ok_or(wrong_type)?;
        let v = coerce(e, &arg).ok_or(wrong_type)?;
        if e.support != Support::Implemented {
            continue;
        }
        let Some(cv) = to_config(id, &v) else {
            continue;
        };
        if sockworks::Config::defaults().set(&cv).is_err() {
            return Err(ConfigArrayError::OutOfRange { index, id });
        }
        out.push(cv);
    }
    Ok(out)
}
