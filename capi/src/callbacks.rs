//! Connection status changes delivered to the application's C callback from `RunCallbacks`.
//!
//! The callback is a config value (`Callback_ConnectionStatusChanged`, 201) at global, listen
//! socket or connection scope, as in GNS; the Rust API already queues the changes and calls
//! a `StatusChangedFn` on the thread that runs callbacks. Here that function builds the C
//! struct and calls the C pointer; nothing is locked meanwhile, so the callback may call back
//! into the library (accept, close), as GNS programs do.

use std::sync::Arc;

use sockworks::{StatusChanged, StatusChangedFn};

use crate::types::{SteamNetConnectionInfo_t, SteamNetConnectionStatusChangedCallback_t};

/// The C status-changed callback's type, without the `Option` of the header's typedef.
pub type CStatusChanged = unsafe extern "C" fn(*mut SteamNetConnectionStatusChangedCallback_t);

/// Wraps a C callback as the Rust API's callback.
pub fn status_changed_fn(f: CStatusChanged) -> StatusChangedFn {
    Arc::new(move |ev: &StatusChanged| {
        let mut c = SteamNetConnectionStatusChangedCallback_t {
            m_hConn: ev.conn.0,
            m_info: SteamNetConnectionInfo_t::from_info(&ev.info),
            m_eOldState: ev.old_state as i32,
        };
        // SAFETY: the application registered `f` for exactly this struct; it lives for the call.
        unsafe { f(&mut c) };
    })
}
