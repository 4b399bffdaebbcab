//! What the application set, per scope, so `GetConfigValue` returns it: every value set
//! through the C ABI is remembered here (the Rust API holds the implemented ones too, and is
//! asked first once an instance runs). Global values set before `GameNetworkingSockets_Init`
//! live only here until Init applies them ([`global_values`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use super::table::{self, Support};
use super::value::{Value, to_config};

/// Where a value was set. GNS has no poll-group scope; `SocketsInterface` scope is Global
/// here (one interface per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Global.
    Global,
    /// A listen socket (`HSteamListenSocket`).
    Listen(u32),
    /// A connection (`HSteamNetConnection`).
    Conn(u32),
}

/// Values by scope, then by option id: closing a connection forgets its values in one step.
type Map = HashMap<Scope, HashMap<i32, Value>>;

static STORE: LazyLock<Mutex<Map>> = LazyLock::new(Mutex::default);

fn store() -> MutexGuard<'static, Map> {
    // A panic while holding the lock leaves a map that is still whole: keep using it.
    STORE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remembers `v` for option `id` at `scope`.
pub(super) fn put(scope: Scope, id: i32, v: Value) {
    store().entry(scope).or_default().insert(id, v);
}

/// What was set for `id` at exactly `scope`.
pub(super) fn get(scope: Scope, id: i32) -> Option<Value> {
    store().get(&scope).and_then(|m| m.get(&id)).cloned()
}

/// Clears `id` at `scope` (it inherits again).
pub(super) fn remove(scope: Scope, id: i32) {
    let mut st = store();
    if let Some(m) = st.get_mut(&scope) {
        m.remove(&id);
        if m.is_empty() {
            st.remove(&scope);
        }
    }
}

/// Forgets every value set on a listen socket or connection: the close calls
/// (`CloseListenSocket`, `CloseConnection`) call it so the store does not grow without
/// bound. Forgetting `Global` resets every global value to GNS's default.
pub fn forget(scope: Scope) {
    store().remove(&scope);
}

/// The implemented global values set so far (before Init, or before a previous Kill), in id
/// order: `GameNetworkingSockets_Init` applies them to the new instance.
pub fn global_values() -> Vec<sockworks::ConfigValue> {
    let mut set: Vec<(i32, Value)> = store()
        .get(&Scope::Global)
        .map(|m| m.iter().map(|(id, v)| (*id, v.clone())).collect())
        .unwrap_or_default();
    set.sort_by_key(|(id, _)| *id);
    set.iter()
        .filter(|(id, _)| table::find(*id).is_some_and(|e| e.support == Support::Implemented))
        .filter_map(|(id, v)| to_config(*id, v))
        .collect()
}

/// The global pointer value `id` (a callback) as an address; 0 when unset or null. For
/// callbacks the Rust API has no counterpart of (`Callback_CreateConnectionSignaling`).
pub fn global_ptr(id: i32) -> usize {
    match get(Scope::Global, id) {
        Some(Value::Ptr(p)) => p,
        _ => 0,
    }
}
