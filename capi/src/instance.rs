//! The process's one instance: `GameNetworkingSockets_Init` / `_Kill` and the interface
//! accessors.
//!
//! GNS keeps one global `ISteamNetworkingSockets` per process; so do we. Calls load it
//! without a lock ([`sockets`]); before Init and after Kill they find none and return their
//! documented failure value. Shard count: `SOCKWORKS_SHARDS` (default: the available cores);
//! trust and CA service: `crate::auth_env`; the rendezvous service that hands out FakeIPs
//! (and carries the signals of connections to them): `SOCKWORKS_RENDEZVOUS=host:port`.

use std::ffi::c_char;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sockworks::{Sockets, SocketsConfig};

use crate::guard::{fail_with, guard};
use crate::types::SteamNetworkingIdentity;

/// The live instance, if Init has run (and Kill has not).
static INSTANCE: ArcSwapOption<Sockets> = ArcSwapOption::const_empty();

/// The live instance, or `None` before Init / after Kill.
pub fn sockets() -> Option<Arc<Sockets>> {
    INSTANCE.load_full()
}

/// Runs `f` on the live instance, or returns `failure` when there is none. The common shape
/// of every call: no instance is a bad call, not a crash.
pub(crate) fn with<R>(failure: R, f: impl FnOnce(&Sockets) -> R) -> R {
    match &*INSTANCE.load() {
        Some(s) => f(s),
        None => failure,
    }
}

fn config_from_env() -> Result<SocketsConfig, String> {
    let mut config = SocketsConfig::default();
    if let Ok(v) = std::env::var("SOCKWORKS_SHARDS") {
        match v.parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => config.shards = n,
            _ => return Err(format!("SOCKWORKS_SHARDS={v:?}: expected 1..=1024")),
        }
    }
    crate::auth_env::apply(&mut config)?;
    if let Ok(v) = std::env::var("SOCKWORKS_RENDEZVOUS")
        && !v.trim().is_empty()
    {
        use std::net::ToSocketAddrs;
        let server = v
            .trim()
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("SOCKWORKS_RENDEZVOUS={v:?}: expected host:port"))?;
        config.rendezvous = Some(sockworks::RendezvousConfig::new(server));
    }
    Ok(config)
}

/// Starts the instance (once; a second Init while one runs succeeds and changes nothing, as
/// GNS). The identity argument becomes our identity (null: localhost `ip:::1`, as GNS);
/// trust and the CA service come from the environment (`crate::auth_env`).
///
/// # Safety
/// `identity` is null or a valid identity; `err_msg` is null or a `SteamNetworkingErrMsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn GameNetworkingSockets_Init(
    identity: *const SteamNetworkingIdentity,
    err_msg: *mut c_char,
) -> bool {
    guard(false, || {
        // SAFETY: the caller passes null or a SteamNetworkingErrMsg.
        let fail = |why: &str| unsafe { fail_with(err_msg, why) };
        if INSTANCE.load().is_some() {
            return true;
        }
        let mut config = match config_from_env() {
            Ok(c) => c,
            Err(e) => return fail(&e),
        };
        // SAFETY: the caller passes null or a valid identity.
        if let Some(id) = unsafe { identity.as_ref() } {
            match id.to_identity() {
                Some(i) => config.identity = Some(i),
                None => return fail("Invalid identity"),
            }
        }
        let sockets = match Sockets::with_config(config) {
            Ok(s) => s,
            Err(e) => return fail(&format!("Sockworks could not start: {e}")),
        };
        for value in crate::config::global_values() {
            sockets.set_global_config_value(&value);
        }
        let sockets = Arc::new(sockets);
        // Two racing Inits: the first one stored wins; the loser's instance shuts down.
        let prev = INSTANCE.compare_and_swap(&None::<Arc<Sockets>>, Some(sockets));
        drop(prev);
        true
    })
}

/// Closes every connection and listen socket and stops the shards. Messages the application
/// still holds stay valid until released.
#[unsafe(no_mangle)]
pub extern "C" fn GameNetworkingSockets_Kill() {
    guard((), || {
        // FakeUDP port objects hold the instance: their ports go first.
        crate::fakeip::kill_ports();
        drop(INSTANCE.swap(None));
    })
}

/// `SetCustomMemoryAllocator`: GNS honours it only when built with
/// STEAMNETWORKINGSOCKETS_ENABLE_MEM_OVERRIDE; Sockworks allocates with Rust's allocator and,
/// like a GNS build without the override, ignores it.
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingSockets_SetCustomMemoryAllocator(
    _malloc: Option<unsafe extern "C" fn(usize) -> *mut std::ffi::c_void>,
    _free: Option<unsafe extern "C" fn(*mut std::ffi::c_void)>,
    _realloc: Option<unsafe extern "C" fn(*mut std::ffi::c_void, usize) -> *mut std::ffi::c_void>,
) {
}

/// GNS's global-lock statistics: Sockworks has no global lock (each shard owns its
/// connections), so there is never a wait to report.
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingSockets_SetLockWaitWarningThreshold(_usec: i64) {}

/// See [`SteamNetworkingSockets_SetLockWaitWarningThreshold`]: no global lock, never called.
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingSockets_SetLockAcquiredCallback(
    _callback: Option<unsafe extern "C" fn(*const c_char, i64)>,
) {
}

/// See [`SteamNetworkingSockets_SetLockWaitWarningThreshold`]: no global lock, never called.
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingSockets_SetLockHeldCallback(
    _callback: Option<unsafe extern "C" fn(*const c_char, i64)>,
) {
}

/// GNS's service thread hook. Sockworks runs shard threads instead and does not call it yet
/// (the README's feature table says so).
#[unsafe(no_mangle)]
pub extern "C" fn SteamNetworkingSockets_SetServiceThreadInitCallback(
    _callback: Option<unsafe extern "C" fn()>,
) {
}
