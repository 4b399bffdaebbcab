//! `SetConfigValue` / `GetConfigValue` semantics, as GNS: scope resolution, clearing with a
//! null argument, clamping, inheritance (connection ← listen socket ← global ← default) and
//! `OK` versus `OKInherited`. Implemented values go to the running instance's Rust API and
//! are read back from it; every value is also remembered in the store.

use std::ffi::c_void;

use sockworks::{ConfigValue, Connection, ListenSocket, Sockets};

use super::store::{self, Scope};
use super::table::{self, Entry, MTU_DATA_RESERVE, Support};
use super::value::{Value, coerce, default_value, from_config, read_arg, to_config, write_out};
use crate::types::{
    k_ESteamNetworkingConfig_Connection as CONNECTION, k_ESteamNetworkingConfig_Global as GLOBAL,
    k_ESteamNetworkingConfig_ListenSocket as LISTEN, k_ESteamNetworkingConfig_Ptr,
    k_ESteamNetworkingConfig_SocketsInterface as INTERFACE,
    k_ESteamNetworkingGetConfigValue_BadScopeObj, k_ESteamNetworkingGetConfigValue_BadValue,
    k_ESteamNetworkingGetConfigValue_OK, k_ESteamNetworkingGetConfigValue_OKInherited,
};

/// Any implemented connection-scope id: reading it tells whether a handle is live.
const PROBE: i32 = 24;

/// The scope `scope_type` / `obj` names for entry `e`, if it exists and `e` may be set there
/// (GNS's `EvaluateScopeConfigValue`).
fn resolve(e: &Entry, scope_type: i32, obj: isize) -> Option<Scope> {
    let per_connection = e.scope == CONNECTION;
    match scope_type {
        GLOBAL => Some(Scope::Global),
        INTERFACE if per_connection => Some(Scope::Global),
        LISTEN if per_connection || e.scope == LISTEN => {
            let h = u32::try_from(obj).ok().filter(|h| *h != 0)?;
            let s = crate::instance::sockets()?;
            s.get_listen_socket_config_value(ListenSocket(h), PROBE)?;
            Some(Scope::Listen(h))
        }
        CONNECTION if per_connection => {
            let h = u32::try_from(obj).ok().filter(|h| *h != 0)?;
            let s = crate::instance::sockets()?;
            s.get_connection_config_value(Connection(h), PROBE)?;
            Some(Scope::Conn(h))
        }
        _ => None,
    }
}

fn apply(s: &Sockets, scope: Scope, cv: &ConfigValue) -> bool {
    match scope {
        Scope::Global => s.set_global_config_value(cv),
        Scope::Listen(h) => s.set_listen_socket_config_value(ListenSocket(h), cv),
        Scope::Conn(h) => s.set_connection_config_value(Connection(h), cv),
    }
}

fn api_get(s: &Sockets, scope: Scope, id: i32) -> Option<ConfigValue> {
    match scope {
        Scope::Global => s.get_global_config_value(id),
        Scope::Listen(h) => s.get_listen_socket_config_value(ListenSocket(h), id),
        Scope::Conn(h) => s.get_connection_config_value(Connection(h), id),
    }
}

/// Hands an implemented value to the Rust API: range-checked even before Init (so a value
/// Init would refuse is refused now), applied when an instance runs.
fn forward(e: &Entry, scope: Scope, v: &Value) -> bool {
    if e.support != Support::Implemented {
        return true;
    }
    let Some(cv) = to_config(e.id, v) else {
        return false;
    };
    if sockworks::Config::defaults().set(&cv).is_err() {
        tracing::warn!("config value {} ({:?}) out of range", e.id, e.name);
        return false;
    }
    match crate::instance::sockets() {
        Some(s) => apply(&s, scope, &cv),
        None => scope == Scope::Global,
    }
}

/// `SetConfigValue`.
///
/// # Safety
/// `arg` is null or points to a value of `data_type` (strings: the string; pointers: the
/// pointer to the pointer).
pub(crate) unsafe fn set(
    id: i32,
    scope_type: i32,
    obj: isize,
    data_type: i32,
    arg: *const c_void,
) -> bool {
    let Some(e) = table::find(id) else {
        return false;
    };
    if e.support == Support::ReadOnly {
        tracing::warn!("{:?} is read-only", e.name);
        return false;
    }
    let Some(scope) = resolve(e, scope_type, obj) else {
        return false;
    };
    if arg.is_null() {
        return clear(e, scope);
    }
    // SAFETY: non-null, of `data_type` (caller).
    let Some(v) = unsafe { read_arg(data_type, arg) }.and_then(|a| coerce(e, &a)) else {
        return false;
    };
    if !forward(e, scope, &v) {
        return false;
    }
    store::put(scope, id, v);
    true
}

/// A null argument: back to the default (global) or to inheriting (narrower scopes).
fn clear(e: &Entry, scope: Scope) -> bool {
    if e.id == 40 && matches!(scope, Scope::Conn(_)) {
        tracing::warn!("Cannot clear connection user data");
        return false;
    }
    store::remove(scope, e.id);
    forward(e, scope, &inherited(e, scope))
}

/// The value in effect at `scope`, and whether it was set there (global values always are,
/// as in GNS).
fn current(e: &Entry, scope: Scope) -> (Value, bool) {
    let stored = store::get(scope, e.id);
    let set_here = scope == Scope::Global || stored.is_some();
    if e.support == Support::Implemented && e.data_type != k_ESteamNetworkingConfig_Ptr {
        if let Some(v) = crate::instance::sockets()
            .and_then(|s| api_get(&s, scope, e.id))
            .and_then(|cv| from_config(&cv))
        {
            return (v, set_here);
        }
    }
    match stored {
        Some(v) => (v, true),
        None => (inherited(e, scope), set_here),
    }
}

/// What `scope` inherits: a connection from its listen socket (if it came from one), a listen
/// socket from global, global from GNS's default.
fn inherited(e: &Entry, scope: Scope) -> Value {
    match scope {
        Scope::Global => default_value(e),
        Scope::Listen(_) => current(e, Scope::Global).0,
        Scope::Conn(h) => {
            let listen = crate::instance::sockets()
                .and_then(|s| s.get_connection_info(Connection(h)))
                .map(|i| i.listen_socket.0)
                .filter(|l| *l != 0);
            match listen {
                Some(l) => current(e, Scope::Listen(l)).0,
                None => current(e, Scope::Global).0,
            }
        }
    }
}

/// `GetConfigValue`.
///
/// # Safety
/// `out_type` is null or writable; `result` is null or points to `*cb` writable bytes; `cb`
/// is null or valid.
pub(crate) unsafe fn get(
    id: i32,
    scope_type: i32,
    obj: isize,
    out_type: *mut i32,
    result: *mut c_void,
    cb: *mut usize,
) -> i32 {
    if id == 33 {
        // MTU_DataSize: derived from MTU_PacketSize at the same scope, as GNS.
        let Some(e) = table::find(32) else {
            return k_ESteamNetworkingGetConfigValue_BadValue;
        };
        let Some(scope) = resolve(e, scope_type, obj) else {
            return bad_scope(cb);
        };
        let (v, here) = current(e, scope);
        let Value::I32(mtu) = v else {
            return k_ESteamNetworkingGetConfigValue_BadValue;
        };
        let data = Value::I32((mtu - MTU_DATA_RESERVE).max(0));
        // SAFETY: the caller's buffers, as promised.
        return finish(unsafe { write_out(&data, result, cb) }, here);
    }
    let Some(e) = table::find(id) else {
        return k_ESteamNetworkingGetConfigValue_BadValue;
    };
    if !out_type.is_null() {
        // SAFETY: non-null and writable (caller).
        unsafe { out_type.write_unaligned(e.data_type) };
    }
    let Some(scope) = resolve(e, scope_type, obj) else {
        return bad_scope(cb);
    };
    let (v, here) = current(e, scope);
    // SAFETY: the caller's buffers, as promised.
    finish(unsafe { write_out(&v, result, cb) }, here)
}

fn finish(written: i32, set_here: bool) -> i32 {
    if written == k_ESteamNetworkingGetConfigValue_OK && !set_here {
        k_ESteamNetworkingGetConfigValue_OKInherited
    } else {
        written
    }
}

fn bad_scope(cb: *mut usize) -> i32 {
    if !cb.is_null() {
        // SAFETY: non-null and valid (the caller of `get`).
        unsafe { cb.write_unaligned(0) };
    }
    k_ESteamNetworkingGetConfigValue_BadScopeObj
}
