//! The flat P2P calls of `ISteamNetworkingSockets`: `CreateListenSocketP2P`, `ConnectP2P`
//! (default signaling from config value 206), `ConnectP2PCustomSignaling`,
//! `ReceivedP2PCustomSignal` (C++ context) and `ReceivedP2PCustomSignal2` (C callbacks).
//!
//! ```text
//!  ConnectP2PCustomSignaling(ISteamNetworkingConnectionSignaling*) ─► CppSignaling ─┐
//!  ConnectP2P ─► Callback_CreateConnectionSignaling(iface, peer, local, remote) ────┤
//!                                      sockworks::Sockets::connect_p2p_custom_signaling
//!  ReceivedP2PCustomSignal(ctx*) / …2(fns) ─► CppRecvContext / FlatRecvContext ─► received_p2p_custom_signal
//! ```
//!
//! A signaling object handed to a connect call belongs to the library from then on: it is
//! released when its connection is gone, or at once when the call fails (as GNS does).

use std::ffi::{c_int, c_void};

use crate::guard::guard;
use crate::instance::with;
use crate::signaling::{
    CppRecvContext, CppSignaling, FlatRecvContext, FnCreateConnectionSignaling, FnOnConnectRequest,
    FnSendRejectionSignal,
};
use crate::sockets::options;
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, ISteamNetworkingConnectionSignaling,
    ISteamNetworkingSignalingRecvContext, SteamNetworkingConfigValue_t, SteamNetworkingIdentity,
    k_ESteamNetworkingConfig_Callback_CreateConnectionSignaling, k_ESteamNetworkingConfig_Int32,
    k_ESteamNetworkingConfig_LocalVirtualPort,
};

/// Longest signal accepted from the application (GNS has no explicit bound; signals are a
/// few hundred bytes).
const MAX_SIGNAL: usize = 1 << 20;

/// `CreateListenSocketP2P`: 0 for a port outside 0..=65535, one already listened on, bad
/// options, or no instance.
///
/// # Safety
/// `opts` is null or points to `n` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P(
    _self: *mut c_void,
    virtual_port: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamListenSocket {
    guard(0, || {
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { options(n, opts) }) else {
            return 0;
        };
        with(0, |s| s.create_listen_socket_p2p(virtual_port, &opts).0)
    })
}

/// `ConnectP2PCustomSignaling`: 0 for a null `signaling` (nothing called). Otherwise the
/// object belongs to the library: released when the connection is gone, or before this call
/// returns 0 (bad options, ICE disabled, no instance). `peer` may be null (whoever answers).
///
/// # Safety
/// `signaling` is null or a live object whose ownership passes here; `peer` is null or a
/// valid identity; `opts` is null or points to `n` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(
    _self: *mut c_void,
    signaling: *mut ISteamNetworkingConnectionSignaling,
    peer: *const SteamNetworkingIdentity,
    virtual_port: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamNetConnection {
    guard(0, || {
        // SAFETY: the caller hands over a live object (or null).
        let Some(signaling) = (unsafe { CppSignaling::wrap(signaling) }) else {
            return 0;
        };
        // SAFETY: the caller passes null or a valid identity.
        let peer = match unsafe { peer.as_ref() } {
            None => None,
            Some(p) => match p.to_identity() {
                Some(id) => Some(id),
                None => {
                    tracing::warn!("ConnectP2PCustomSignaling: invalid peer identity");
                    return 0;
                }
            },
        };
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { options(n, opts) }) else {
            return 0;
        };
        with(0, |s| {
            s.connect_p2p_custom_signaling(signaling, peer.as_ref(), virtual_port, &opts)
                .0
        })
    })
}

/// The local virtual port `ConnectP2P` will use: `LocalVirtualPort` among the options, else
/// the remote one (GNS's rule). `None` when that option is not an Int32.
///
/// # Safety
/// `opts` is null or points to `n` options.
unsafe fn local_vport(
    remote: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> Option<c_int> {
    let count = usize::try_from(n).unwrap_or(0);
    if count == 0 || opts.is_null() {
        return Some(remote);
    }
    // SAFETY: non-null, `count` readable options (caller).
    let opts = unsafe { std::slice::from_raw_parts(opts, count) };
    let mut local = remote;
    for o in opts
        .iter()
        .filter(|o| o.m_eValue == k_ESteamNetworkingConfig_LocalVirtualPort)
    {
        if o.m_eDataType != k_ESteamNetworkingConfig_Int32 {
            tracing::warn!("LocalVirtualPort must be Int32");
            return None;
        }
        // SAFETY: the union holds an int32, as its data type says.
        local = unsafe { o.m_val.m_int32 };
    }
    Some(local)
}

/// `ConnectP2P`: asks the global `Callback_CreateConnectionSignaling` (config value 206) for
/// a signaling object, then connects as `ConnectP2PCustomSignaling`. 0 when the callback is
/// not set (GNS's "CreateConnectionSignaling callback not set" through the debug output), it
/// returns null, the port is outside 0..=65535, or the identity is invalid.
///
/// # Safety
/// `identity` is null or valid; `opts` is null or points to `n` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ConnectP2P(
    _self: *mut c_void,
    identity: *const SteamNetworkingIdentity,
    virtual_port: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamNetConnection {
    guard(0, || {
        if !(0..=0xffff).contains(&virtual_port) {
            tracing::warn!("Virtual port number should be a small, non-negative number");
            return 0;
        }
        // SAFETY: the caller passes null or a valid identity.
        let Some(c_id) = (unsafe { identity.as_ref() }) else {
            return 0;
        };
        let Some(id) = c_id.to_identity() else {
            tracing::warn!("ConnectP2P: invalid identity");
            return 0;
        };
        let iface = crate::vtable::SteamNetworkingSockets_LibV12();
        if iface.is_null() {
            return 0;
        }
        // SAFETY: forwarded from the caller.
        let Some(local) = (unsafe { local_vport(virtual_port, n, opts) }) else {
            return 0;
        };
        if !(-1..=0xffff).contains(&local) {
            tracing::warn!("Invalid LocalVirtualPort {local}");
            return 0;
        }
        // SAFETY: forwarded from the caller.
        let Some(options) = (unsafe { options(n, opts) }) else {
            return 0;
        };
        let addr =
            crate::config::global_ptr(k_ESteamNetworkingConfig_Callback_CreateConnectionSignaling);
        if addr == 0 {
            tracing::warn!(
                "Cannot use P2P connectivity.  CreateConnectionSignaling callback not set"
            );
            return 0;
        }
        // SAFETY: a non-null pointer the application set for Callback_CreateConnectionSignaling,
        // whose type is this function type.
        let create = unsafe { std::mem::transmute::<usize, FnCreateConnectionSignaling>(addr) };
        // SAFETY: the application's callback; `c_id` outlives the call.
        let raw = unsafe { create(iface, c_id, local, virtual_port) };
        // SAFETY: the callback hands over a new signaling object (or null).
        let Some(signaling) = (unsafe { CppSignaling::wrap(raw) }) else {
            return 0;
        };
        with(0, |s| {
            s.connect_p2p_custom_signaling(signaling, Some(&id), virtual_port, &options)
                .0
        })
    })
}

/// The signal at `msg`, or `None` when null, empty or implausibly large.
///
/// # Safety
/// `msg` is null or points to `size` readable bytes.
unsafe fn signal<'a>(msg: *const c_void, size: c_int) -> Option<&'a [u8]> {
    let len = usize::try_from(size)
        .ok()
        .filter(|l| (1..=MAX_SIGNAL).contains(l))?;
    if msg.is_null() {
        return None;
    }
    // SAFETY: non-null, `len` readable bytes (caller).
    Some(unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) })
}

/// `ReceivedP2PCustomSignal`: feeds a signal from the peer; new requests are put to the C++
/// `context` (null: ignored). False for a malformed or forged signal, a refused request, or
/// no instance; true when taken or deliberately ignored.
///
/// # Safety
/// `msg` is null or points to `size` bytes; `context` is null or a live C++ object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal(
    _self: *mut c_void,
    msg: *const c_void,
    size: c_int,
    context: *mut ISteamNetworkingSignalingRecvContext,
) -> bool {
    guard(false, || {
        // SAFETY: forwarded from the caller.
        let Some(msg) = (unsafe { signal(msg, size) }) else {
            return false;
        };
        // SAFETY: the caller passes null or a context live for this call.
        let mut ctx = unsafe { CppRecvContext::new(context) };
        with(false, |s| s.received_p2p_custom_signal(msg, &mut ctx))
    })
}

/// `ReceivedP2PCustomSignal2`: [`SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal`]
/// with the context given as C callbacks and their `ctx` (`send_rejection` nullable; a null
/// `on_connect_request` ignores new requests).
///
/// # Safety
/// `msg` is null or points to `size` bytes; the callbacks accept `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal2(
    _self: *mut c_void,
    msg: *const c_void,
    size: c_int,
    ctx: *mut c_void,
    on_connect_request: Option<FnOnConnectRequest>,
    send_rejection: Option<FnSendRejectionSignal>,
) -> bool {
    guard(false, || {
        // SAFETY: forwarded from the caller.
        let Some(msg) = (unsafe { signal(msg, size) }) else {
            return false;
        };
        let mut ctx = FlatRecvContext {
            ctx,
            on_connect_request,
            send_rejection_signal: send_rejection,
        };
        with(false, |s| s.received_p2p_custom_signal(msg, &mut ctx))
    })
}
