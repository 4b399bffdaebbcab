//! The flat `SteamAPI_ISteamNetworkingUtils_*` configuration calls, including the header's
//! inline helpers (typed setters, global callbacks), which the flat header also exports.
//! `self_` is ignored: there is one utils object per process.

use std::ffi::{c_char, c_void};
use std::ptr;

use super::{access, table};
use crate::guard::guard;
use crate::types::{
    ESteamNetworkingConfigDataType, ESteamNetworkingConfigScope, ESteamNetworkingConfigValue,
    ESteamNetworkingGetConfigValueResult, FnSteamNetAuthenticationStatusChanged,
    FnSteamNetConnectionStatusChanged, FnSteamRelayNetworkStatusChanged, HSteamNetConnection,
    SteamNetworkingConfigValue_t, k_ESteamNetworkingConfig_Callback_AuthStatusChanged,
    k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged,
    k_ESteamNetworkingConfig_Callback_RelayNetworkStatusChanged,
    k_ESteamNetworkingConfig_Connection, k_ESteamNetworkingConfig_Float,
    k_ESteamNetworkingConfig_Global, k_ESteamNetworkingConfig_Int32, k_ESteamNetworkingConfig_Ptr,
    k_ESteamNetworkingConfig_String, k_ESteamNetworkingGetConfigValue_BadValue,
};

/// `SetConfigValue`: false for an unknown or read-only value, a scope it cannot be set at, a
/// bad handle, or an argument that does not convert; a null `pArg` clears the value.
///
/// # Safety
/// `pArg` is null or points to a value of `eDataType` (strings: the string itself;
/// pointers: the pointer to the pointer).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_SetConfigValue(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    eScopeType: ESteamNetworkingConfigScope,
    scopeObj: isize,
    eDataType: ESteamNetworkingConfigDataType,
    pArg: *const c_void,
) -> bool {
    // SAFETY: the caller's promise about `pArg` is `set`'s.
    guard(false, || unsafe {
        access::set(eValue, eScopeType, scopeObj, eDataType, pArg)
    })
}

/// `SetConfigValueStruct` (inline in the header): one options-array entry at a scope.
///
/// # Safety
/// `opt` is null or points to an option whose union holds a value of its data type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_SetConfigValueStruct(
    _self: *mut c_void,
    opt: *const SteamNetworkingConfigValue_t,
    eScopeType: ESteamNetworkingConfigScope,
    scopeObj: isize,
) -> bool {
    guard(false, || {
        if opt.is_null() {
            return false;
        }
        // SAFETY: non-null and readable (caller).
        let o = unsafe { &*opt };
        let arg = if o.m_eDataType == k_ESteamNetworkingConfig_String {
            // SAFETY: the union's pointer member; every member is plain data.
            unsafe { o.m_val.m_string }.cast::<c_void>()
        } else {
            ptr::from_ref(&o.m_val).cast::<c_void>()
        };
        // SAFETY: `arg` is the string or the union holding a value of `m_eDataType` (caller).
        unsafe { access::set(o.m_eValue, eScopeType, scopeObj, o.m_eDataType, arg) }
    })
}

/// `GetConfigValue`: BadValue for an unknown value, BadScopeObj for a scope it does not
/// exist at or a bad handle, BufferTooSmall (with `*cbResult` the size needed) for too small
/// a buffer, OK if set at that scope, OKInherited if it comes from an outer one.
///
/// # Safety
/// `pOutDataType` is null or writable; `pResult` is null or has `*cbResult` writable bytes;
/// `cbResult` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_GetConfigValue(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    eScopeType: ESteamNetworkingConfigScope,
    scopeObj: isize,
    pOutDataType: *mut ESteamNetworkingConfigDataType,
    pResult: *mut c_void,
    cbResult: *mut usize,
) -> ESteamNetworkingGetConfigValueResult {
    guard(k_ESteamNetworkingGetConfigValue_BadValue, || {
        // SAFETY: the caller's promises are `get`'s.
        unsafe {
            access::get(
                eValue,
                eScopeType,
                scopeObj,
                pOutDataType,
                pResult,
                cbResult,
            )
        }
    })
}

/// `GetConfigValueInfo`: the value's name (static, NUL-terminated), data type and scope;
/// null for an unknown value.
///
/// # Safety
/// `pOutDataType` and `pOutScope` are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_GetConfigValueInfo(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    pOutDataType: *mut ESteamNetworkingConfigDataType,
    pOutScope: *mut ESteamNetworkingConfigScope,
) -> *const c_char {
    guard(ptr::null(), || {
        let Some(e) = table::find(eValue) else {
            return ptr::null();
        };
        if !pOutDataType.is_null() {
            // SAFETY: non-null and writable (caller).
            unsafe { pOutDataType.write_unaligned(e.data_type) };
        }
        if !pOutScope.is_null() {
            // SAFETY: non-null and writable (caller).
            unsafe { pOutScope.write_unaligned(e.scope) };
        }
        e.name.as_ptr()
    })
}

/// `IterateGenericEditableConfigValues`: the next value after `eCurrent` (the first after
/// `k_ESteamNetworkingConfig_Invalid`) that a generic settings UI should offer; Invalid at
/// the end.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_IterateGenericEditableConfigValues(
    _self: *mut c_void,
    eCurrent: ESteamNetworkingConfigValue,
    bEnumerateDevVars: bool,
) -> ESteamNetworkingConfigValue {
    guard(0, || table::next_listed(eCurrent, bEnumerateDevVars))
}

/// Sets at global or connection scope through `SetConfigValue`, as the header's inline
/// helpers do.
fn set_typed(scope: i32, obj: isize, id: i32, data_type: i32, arg: *const c_void) -> bool {
    // SAFETY: every caller passes a pointer to a local of `data_type`, or a C string.
    guard(false, || unsafe {
        access::set(id, scope, obj, data_type, arg)
    })
}

/// `SetGlobalConfigValueInt32`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueInt32(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    val: i32,
) -> bool {
    let p = ptr::from_ref(&val).cast();
    set_typed(
        k_ESteamNetworkingConfig_Global,
        0,
        eValue,
        k_ESteamNetworkingConfig_Int32,
        p,
    )
}

/// `SetGlobalConfigValueFloat`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueFloat(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    val: f32,
) -> bool {
    let p = ptr::from_ref(&val).cast();
    set_typed(
        k_ESteamNetworkingConfig_Global,
        0,
        eValue,
        k_ESteamNetworkingConfig_Float,
        p,
    )
}

/// `SetGlobalConfigValueString` (null clears, as in GNS).
///
/// # Safety
/// `val` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueString(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    val: *const c_char,
) -> bool {
    let p = val.cast();
    set_typed(
        k_ESteamNetworkingConfig_Global,
        0,
        eValue,
        k_ESteamNetworkingConfig_String,
        p,
    )
}

/// `SetGlobalConfigValuePtr` (callbacks).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValuePtr(
    _self: *mut c_void,
    eValue: ESteamNetworkingConfigValue,
    val: *mut c_void,
) -> bool {
    let p = ptr::from_ref(&val).cast();
    set_typed(
        k_ESteamNetworkingConfig_Global,
        0,
        eValue,
        k_ESteamNetworkingConfig_Ptr,
        p,
    )
}

/// `SetConnectionConfigValueInt32`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetConnectionConfigValueInt32(
    _self: *mut c_void,
    hConn: HSteamNetConnection,
    eValue: ESteamNetworkingConfigValue,
    val: i32,
) -> bool {
    let p = ptr::from_ref(&val).cast();
    set_typed(
        CONN,
        hConn as isize,
        eValue,
        k_ESteamNetworkingConfig_Int32,
        p,
    )
}

/// `SetConnectionConfigValueFloat`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetConnectionConfigValueFloat(
    _self: *mut c_void,
    hConn: HSteamNetConnection,
    eValue: ESteamNetworkingConfigValue,
    val: f32,
) -> bool {
    let p = ptr::from_ref(&val).cast();
    set_typed(
        CONN,
        hConn as isize,
        eValue,
        k_ESteamNetworkingConfig_Float,
        p,
    )
}

/// `SetConnectionConfigValueString` (null clears).
///
/// # Safety
/// `val` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_SetConnectionConfigValueString(
    _self: *mut c_void,
    hConn: HSteamNetConnection,
    eValue: ESteamNetworkingConfigValue,
    val: *const c_char,
) -> bool {
    set_typed(
        CONN,
        hConn as isize,
        eValue,
        k_ESteamNetworkingConfig_String,
        val.cast(),
    )
}

const CONN: i32 = k_ESteamNetworkingConfig_Connection;

fn set_global_ptr(id: i32, f: Option<usize>) -> bool {
    let val = f.unwrap_or(0) as *mut c_void;
    SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValuePtr(ptr::null_mut(), id, val)
}

/// `SetGlobalCallback_SteamNetConnectionStatusChanged`: the callback every later listen
/// socket and connection inherits.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetConnectionStatusChanged(
    _self: *mut c_void,
    fnCallback: FnSteamNetConnectionStatusChanged,
) -> bool {
    let id = k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged;
    set_global_ptr(id, fnCallback.map(|f| f as usize))
}

/// `SetGlobalCallback_SteamNetAuthenticationStatusChanged`: the callback `RunCallbacks`
/// calls whenever the authentication status changes (`SetCertificate`, `InitAuthentication`).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetAuthenticationStatusChanged(
    _self: *mut c_void,
    fnCallback: FnSteamNetAuthenticationStatusChanged,
) -> bool {
    let id = k_ESteamNetworkingConfig_Callback_AuthStatusChanged;
    set_global_ptr(id, fnCallback.map(|f| f as usize))
}

/// `SetGlobalCallback_SteamRelayNetworkStatusChanged`: accepted and stored; never called
/// (no relay network).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamRelayNetworkStatusChanged(
    _self: *mut c_void,
    fnCallback: FnSteamRelayNetworkStatusChanged,
) -> bool {
    let id = k_ESteamNetworkingConfig_Callback_RelayNetworkStatusChanged;
    set_global_ptr(id, fnCallback.map(|f| f as usize))
}
