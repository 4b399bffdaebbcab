//! P2P custom signaling objects across the boundary: the application's C++
//! `ISteamNetworkingConnectionSignaling` and `ISteamNetworkingSignalingRecvContext` as the
//! Rust API's [`ConnectionSignaling`] and [`SignalingRecvContext`], and the plain-C adapters
//! of `steamnetworkingsockets_flat.h` (`CreateCustomSignaling`, the context behind
//! `ReceivedP2PCustomSignal2`).
//!
//! ```text
//!  C++ object { vptr } ─► [SendSignal, Release]          (steamnetworkingcustomsignaling.h)
//!      wrapped as CppSignaling: send_signal ─► slot 0,  Drop ─► slot 1 (exactly once)
//!  CreateCustomSignaling(ctx, fnSend, fnRelease) ─► FlatSignaling { vptr, ctx, fns } (heap)
//!      slot 0 ─► fnSend(ctx, …);  slot 1 ─► fnRelease(ctx), then the object frees itself
//! ```
//!
//! The interfaces have no virtual destructor, so under the Itanium ABI the tables are just
//! the two methods in declaration order, `this` first, references as pointers. `SendSignal`
//! runs on a shard thread (GNS: any thread); the application promised that is safe.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use sockworks::engine::wire::identity::Identity;
use sockworks::{Connection, ConnectionInfo, ConnectionSignaling, SignalingRecvContext};

use crate::guard::guard;
use crate::types::{
    HSteamNetConnection, ISteamNetworkingConnectionSignaling, ISteamNetworkingSignalingRecvContext,
    SteamNetConnectionInfo_t, SteamNetworkingIdentity,
};

/// `ISteamNetworkingConnectionSignaling`'s virtual methods in declaration order.
pub const SIGNALING_METHODS: &[&str] = &["SendSignal", "Release"];
/// `ISteamNetworkingSignalingRecvContext`'s virtual methods in declaration order.
pub const RECV_CONTEXT_METHODS: &[&str] = &["OnConnectRequest", "SendRejectionSignal"];

/// `FSteamNetworkingSocketsCustomSignaling_SendSignal`.
pub type FnSendSignal = unsafe extern "C" fn(
    *mut c_void,
    HSteamNetConnection,
    *const SteamNetConnectionInfo_t,
    *const c_void,
    c_int,
) -> bool;
/// `FSteamNetworkingSocketsCustomSignaling_Release`.
pub type FnRelease = unsafe extern "C" fn(*mut c_void);
/// `FSteamNetworkingCustomSignalingRecvContext_OnConnectRequest`.
pub type FnOnConnectRequest = unsafe extern "C" fn(
    *mut c_void,
    HSteamNetConnection,
    *const SteamNetworkingIdentity,
    c_int,
) -> *mut ISteamNetworkingConnectionSignaling;
/// `FSteamNetworkingCustomSignalingRecvContext_SendRejectionSignal`.
pub type FnSendRejectionSignal =
    unsafe extern "C" fn(*mut c_void, *const SteamNetworkingIdentity, *const c_void, c_int);
/// `FnSteamNetworkingSocketsCreateConnectionSignaling` (config value 206).
pub type FnCreateConnectionSignaling =
    unsafe extern "C" fn(
        *mut c_void,
        *const SteamNetworkingIdentity,
        c_int,
        c_int,
    ) -> *mut ISteamNetworkingConnectionSignaling;

/// `ISteamNetworkingConnectionSignaling`'s table.
#[repr(C)]
struct SignalingVtbl {
    send_signal: unsafe extern "C" fn(
        *mut ISteamNetworkingConnectionSignaling,
        HSteamNetConnection,
        *const SteamNetConnectionInfo_t,
        *const c_void,
        c_int,
    ) -> bool,
    release: unsafe extern "C" fn(*mut ISteamNetworkingConnectionSignaling),
}

/// `ISteamNetworkingSignalingRecvContext`'s table.
#[repr(C)]
struct RecvContextVtbl {
    on_connect_request: unsafe extern "C" fn(
        *mut ISteamNetworkingSignalingRecvContext,
        HSteamNetConnection,
        *const SteamNetworkingIdentity,
        c_int,
    ) -> *mut ISteamNetworkingConnectionSignaling,
    send_rejection_signal: unsafe extern "C" fn(
        *mut ISteamNetworkingSignalingRecvContext,
        *const SteamNetworkingIdentity,
        *const c_void,
        c_int,
    ),
}

/// The application's signaling object; dropping it calls its `Release`.
pub struct CppSignaling(NonNull<ISteamNetworkingConnectionSignaling>);

// SAFETY: GNS's contract for the object: `SendSignal` may be called from any thread (and
// concurrently), `Release` once from any thread. The pointer is never dereferenced by Rust.
unsafe impl Send for CppSignaling {}
// SAFETY: as above.
unsafe impl Sync for CppSignaling {}

impl CppSignaling {
    /// Takes ownership of `p` (null: `None`, nothing to release).
    ///
    /// # Safety
    /// `p` is null or a live `ISteamNetworkingConnectionSignaling` whose `Release` has not
    /// been called and will be called only by the returned value.
    pub unsafe fn wrap(p: *mut ISteamNetworkingConnectionSignaling) -> Option<Arc<Self>> {
        NonNull::new(p).map(|p| Arc::new(CppSignaling(p)))
    }

    fn vtbl(&self) -> &SignalingVtbl {
        // SAFETY: a live C++ object starts with a pointer to its table, whose first two slots
        // are SendSignal and Release (the header's declaration order).
        unsafe { &**self.0.as_ptr().cast::<*const SignalingVtbl>() }
    }
}

impl ConnectionSignaling for CppSignaling {
    fn send_signal(&self, conn: Connection, info: &ConnectionInfo, msg: &[u8]) -> bool {
        let Ok(len) = c_int::try_from(msg.len()) else {
            return false;
        };
        let info = SteamNetConnectionInfo_t::from_info(info);
        // SAFETY: the object is live until Drop; `info` and `msg` outlive the call.
        unsafe {
            (self.vtbl().send_signal)(self.0.as_ptr(), conn.0, &info, msg.as_ptr().cast(), len)
        }
    }
}

impl Drop for CppSignaling {
    fn drop(&mut self) {
        // SAFETY: the object is live and this is the one Release this wrapper owes it.
        unsafe { (self.vtbl().release)(self.0.as_ptr()) }
    }
}

/// The application's receive context, for the duration of one `ReceivedP2PCustomSignal`.
pub struct CppRecvContext(Option<NonNull<ISteamNetworkingSignalingRecvContext>>);

impl CppRecvContext {
    /// The context at `p`; a null one ignores new requests and drops rejections.
    ///
    /// # Safety
    /// `p` is null or a live `ISteamNetworkingSignalingRecvContext` for as long as the value
    /// is used.
    pub unsafe fn new(p: *mut ISteamNetworkingSignalingRecvContext) -> Self {
        CppRecvContext(NonNull::new(p))
    }

    fn vtbl(p: NonNull<ISteamNetworkingSignalingRecvContext>) -> &'static RecvContextVtbl {
        // SAFETY: a live C++ object starts with a pointer to its table (OnConnectRequest,
        // SendRejectionSignal), which lives as long as the program's code.
        unsafe { &**p.as_ptr().cast::<*const RecvContextVtbl>() }
    }
}

impl SignalingRecvContext for CppRecvContext {
    fn on_connect_request(
        &mut self,
        conn: Connection,
        peer: &Identity,
        local_vport: i32,
    ) -> Option<Arc<dyn ConnectionSignaling>> {
        let p = self.0?;
        let id = SteamNetworkingIdentity::from_identity(peer);
        // SAFETY: the context is live for this call (see `new`); `id` outlives the call.
        let s = unsafe { (Self::vtbl(p).on_connect_request)(p.as_ptr(), conn.0, &id, local_vport) };
        // SAFETY: the application hands over a signaling object it does not release itself.
        let s = unsafe { CppSignaling::wrap(s) }?;
        Some(s)
    }

    fn send_rejection_signal(&mut self, peer: &Identity, msg: &[u8]) {
        let (Some(p), Ok(len)) = (self.0, c_int::try_from(msg.len())) else {
            return;
        };
        let id = SteamNetworkingIdentity::from_identity(peer);
        // SAFETY: the context is live for this call; `id` and `msg` outlive the call.
        unsafe { (Self::vtbl(p).send_rejection_signal)(p.as_ptr(), &id, msg.as_ptr().cast(), len) }
    }
}

/// The context `ReceivedP2PCustomSignal2` builds from its C callbacks.
pub struct FlatRecvContext {
    /// The application's context pointer, passed back to each callback.
    pub ctx: *mut c_void,
    /// `fnOnConnectRequest` (null: requests are ignored).
    pub on_connect_request: Option<FnOnConnectRequest>,
    /// `fnSendRejectionSignal` (nullable, as in GNS).
    pub send_rejection_signal: Option<FnSendRejectionSignal>,
}

impl SignalingRecvContext for FlatRecvContext {
    fn on_connect_request(
        &mut self,
        conn: Connection,
        peer: &Identity,
        local_vport: i32,
    ) -> Option<Arc<dyn ConnectionSignaling>> {
        let f = self.on_connect_request?;
        let id = SteamNetworkingIdentity::from_identity(peer);
        // SAFETY: the application's callback with its own context; `id` outlives the call.
        let s = unsafe { f(self.ctx, conn.0, &id, local_vport) };
        // SAFETY: the application hands over a signaling object it does not release itself.
        let s = unsafe { CppSignaling::wrap(s) }?;
        Some(s)
    }

    fn send_rejection_signal(&mut self, peer: &Identity, msg: &[u8]) {
        let (Some(f), Ok(len)) = (self.send_rejection_signal, c_int::try_from(msg.len())) else {
            return;
        };
        let id = SteamNetworkingIdentity::from_identity(peer);
        // SAFETY: the application's callback with its own context; `id` and `msg` outlive it.
        unsafe { f(self.ctx, &id, msg.as_ptr().cast(), len) }
    }
}

/// The heap object `CreateCustomSignaling` returns: a C++ object (vtable first) whose
/// methods call the application's C functions.
#[repr(C)]
struct FlatSignaling {
    vtbl: *const SignalingVtbl,
    ctx: *mut c_void,
    send_signal: FnSendSignal,
    release: Option<FnRelease>,
}

static FLAT_VTBL: SignalingVtbl = SignalingVtbl {
    send_signal: flat_send_signal,
    release: flat_release,
};

unsafe extern "C" fn flat_send_signal(
    this: *mut ISteamNetworkingConnectionSignaling,
    conn: HSteamNetConnection,
    info: *const SteamNetConnectionInfo_t,
    msg: *const c_void,
    len: c_int,
) -> bool {
    // SAFETY: `this` is a FlatSignaling made by CreateCustomSignaling, not yet released.
    let me = unsafe { &*this.cast::<FlatSignaling>() };
    // SAFETY: the application's callback with its own context; the arguments are forwarded.
    unsafe { (me.send_signal)(me.ctx, conn, info, msg, len) }
}

unsafe extern "C" fn flat_release(this: *mut ISteamNetworkingConnectionSignaling) {
    // SAFETY: `this` is a FlatSignaling made by CreateCustomSignaling (Box::into_raw), and
    // Release is its last use: it is taken back and freed here.
    let me = unsafe { Box::from_raw(this.cast::<FlatSignaling>()) };
    if let Some(release) = me.release {
        // SAFETY: the application's cleanup callback with its own context.
        unsafe { release(me.ctx) }
    }
}

/// `CreateCustomSignaling`: a signaling object calling `send_signal(ctx, …)` for each signal
/// and, on `Release`, `release(ctx)` (nullable), after which it frees itself. Null when
/// `send_signal` is null (GNS would build an object that crashes on first use).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(
    ctx: *mut c_void,
    send_signal: Option<FnSendSignal>,
    release: Option<FnRelease>,
) -> *mut ISteamNetworkingConnectionSignaling {
    guard(std::ptr::null_mut(), || {
        let Some(send_signal) = send_signal else {
            return std::ptr::null_mut();
        };
        let obj = Box::new(FlatSignaling {
            vtbl: &FLAT_VTBL,
            ctx,
            send_signal,
            release,
        });
        Box::into_raw(obj).cast()
    })
}
