//! Thin wrappers over GNS's flat C API for what the `gns` crate does not cover: init with an
//! identity, P2P listen/connect with custom signaling, and the signaling callbacks.
//!
//! Everything here except [`send_signal`] and [`release_signal`] runs on the main thread.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::mpsc::Sender;

use gns::sys::{
    self, ESteamNetworkingConfigValue as Cfg, ESteamNetworkingSocketsDebugOutputType as DebugType,
    HSteamNetConnection, ISteamNetworkingConnectionSignaling, ISteamNetworkingSockets,
    ISteamNetworkingUtils, SteamNetConnectionInfo_t, SteamNetConnectionStatusChangedCallback_t,
    SteamNetworkingIPAddr, SteamNetworkingIdentity,
};
use sockworks_interop::signal_relay::{SignalEndpoint, peer_name};

/// `k_nSteamNetworkingSend_Reliable`.
pub(crate) const SEND_RELIABLE: c_int = 8;

/// The two GNS interfaces of this process.
#[derive(Clone, Copy)]
pub(crate) struct Gns {
    pub(crate) sockets: *mut ISteamNetworkingSockets,
    pub(crate) utils: *mut ISteamNetworkingUtils,
}

/// Parses an identity string (`str:NAME`, `ip:..`, ...).
pub(crate) fn parse_identity(s: &str) -> Option<SteamNetworkingIdentity> {
    let c = CString::new(s).ok()?;
    let mut id = SteamNetworkingIdentity::default();
    // SAFETY: `id` is a valid identity of the size passed; `c` is NUL-terminated.
    let ok = unsafe {
        sys::SteamAPI_SteamNetworkingIdentity_ParseString(
            &raw mut id,
            size_of::<SteamNetworkingIdentity>(),
            c.as_ptr(),
        )
    };
    ok.then_some(id)
}

/// The string form of an identity.
pub(crate) fn identity_string(id: &SteamNetworkingIdentity) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: the buffer is writable for its length; GNS NUL-terminates within it.
    unsafe { sys::SteamAPI_SteamNetworkingIdentity_ToString(id, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated by ToString.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Converts a GNS address (IPv4 as v4-mapped IPv6) to a Rust one.
pub(crate) fn socket_addr(a: &SteamNetworkingIPAddr) -> SocketAddr {
    // SAFETY: both union variants are plain bytes; the 16-byte view is always initialised.
    let v6 = Ipv6Addr::from(unsafe { a.__bindgen_anon_1.m_ipv6 });
    let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
    SocketAddr::new(ip, a.m_port)
}

/// A C string field of GNS as Rust text.
pub(crate) fn c_text(field: &[c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// When the process started, for the timestamps of GNS's log lines.
pub(crate) static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

extern "C" fn debug_output(ty: DebugType, msg: *const c_char) {
    // SAFETY: GNS passes a NUL-terminated message valid for the call.
    let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    let ty = format!("{ty:?}");
    let ty = ty
        .strip_prefix("k_ESteamNetworkingSocketsDebugOutputType_")
        .unwrap_or(&ty);
    let ms = START.get().map_or(0, |t| t.elapsed().as_millis());
    eprintln!("gns[{ms}ms {ty}] {}", msg.trim_end());
}

/// Status-change callbacks, queued by [`status_changed`] during `RunCallbacks` (main thread).
static EVENTS: Mutex<Vec<SteamNetConnectionStatusChangedCallback_t>> = Mutex::new(Vec::new());

extern "C" fn status_changed(ev: *mut SteamNetConnectionStatusChangedCallback_t) {
    // SAFETY: GNS passes a valid callback struct for the duration of the call.
    let ev = unsafe { *ev };
    EVENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(ev);
}

impl Gns {
    /// GameNetworkingSockets_Init with `identity`, debug output to stderr, global status
    /// callback installed.
    pub(crate) fn init(identity: &SteamNetworkingIdentity, trace: bool) -> Result<Self, String> {
        let mut err = [0 as c_char; 1024];
        // SAFETY: identity is valid; err is the 1024-byte buffer the API expects.
        if !unsafe { sys::GameNetworkingSockets_Init(identity, &raw mut err) } {
            return Err(c_text(&err));
        }
        // SAFETY: GNS is initialised, so the interface accessors return live singletons.
        let g = unsafe {
            Self {
                sockets: sys::SteamAPI_SteamNetworkingSockets_v009(),
                utils: sys::SteamAPI_SteamNetworkingUtils_v003(),
            }
        };
        let level = if trace {
            DebugType::k_ESteamNetworkingSocketsDebugOutputType_Debug
        } else {
            DebugType::k_ESteamNetworkingSocketsDebugOutputType_Warning
        };
        // SAFETY: utils is live; the callbacks are 'static functions.
        unsafe {
            sys::SteamAPI_ISteamNetworkingUtils_SetDebugOutputFunction(
                g.utils,
                level,
                Some(debug_output),
            );
            sys::SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetConnectionStatusChanged(
                g.utils,
                Some(status_changed),
            );
        }
        Ok(g)
    }

    /// Sets a global int32 config value.
    pub(crate) fn set_int(self, key: Cfg, v: i32) -> bool {
        // SAFETY: utils is live.
        unsafe { sys::SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueInt32(self.utils, key, v) }
    }

    /// Sets a global string config value.
    pub(crate) fn set_str(self, key: Cfg, v: &str) -> bool {
        let Ok(c) = CString::new(v) else { return false };
        // SAFETY: utils is live; c is NUL-terminated and outlives the call (GNS copies it).
        unsafe {
            sys::SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueString(
                self.utils,
                key,
                c.as_ptr(),
            )
        }
    }

    /// Dispatches queued callbacks and returns the status changes they produced.
    pub(crate) fn run_callbacks(self) -> Vec<SteamNetConnectionStatusChangedCallback_t> {
        // SAFETY: sockets is live; called from the main thread only.
        unsafe { sys::SteamAPI_ISteamNetworkingSockets_RunCallbacks(self.sockets) };
        std::mem::take(
            &mut *EVENTS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// CreateListenSocketP2P on `vport`; `None` on failure.
    pub(crate) fn listen_p2p(self, vport: i32) -> Option<u32> {
        // SAFETY: sockets is live; no options.
        let h = unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P(
                self.sockets,
                vport,
                0,
                std::ptr::null(),
            )
        };
        (h != 0).then_some(h)
    }

    /// ConnectP2PCustomSignaling to `peer` on `vport`, signaling through `sig`.
    pub(crate) fn connect_p2p(
        self,
        sig: *mut ISteamNetworkingConnectionSignaling,
        peer: &SteamNetworkingIdentity,
        vport: i32,
    ) -> HSteamNetConnection {
        // SAFETY: sockets is live; sig came from CreateCustomSignaling and GNS takes it over.
        unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(
                self.sockets,
                sig,
                peer,
                vport,
                0,
                std::ptr::null(),
            )
        }
    }

    /// AcceptConnection; the EResult name on failure.
    pub(crate) fn accept(self, conn: HSteamNetConnection) -> Result<(), String> {
        // SAFETY: sockets is live.
        let r =
            unsafe { sys::SteamAPI_ISteamNetworkingSockets_AcceptConnection(self.sockets, conn) };
        if r == sys::EResult::k_EResultOK {
            Ok(())
        } else {
            let name = format!("{r:?}");
            Err(name.strip_prefix("k_EResult").unwrap_or(&name).to_owned())
        }
    }

    /// CloseConnection.
    pub(crate) fn close(self, conn: HSteamNetConnection, reason: c_int, debug: &str, linger: bool) {
        let debug = CString::new(debug).unwrap_or_default();
        // SAFETY: sockets is live; debug is NUL-terminated.
        unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_CloseConnection(
                self.sockets,
                conn,
                reason,
                debug.as_ptr(),
                linger,
            );
        }
    }

    /// Whether all reliable data sent on `conn` has been acknowledged.
    pub(crate) fn all_acked(self, conn: HSteamNetConnection) -> bool {
        let mut st = sys::SteamNetConnectionRealTimeStatus_t::default();
        // SAFETY: sockets is live; st is writable; no lanes requested.
        let r = unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_GetConnectionRealTimeStatus(
                self.sockets,
                conn,
                &raw mut st,
                0,
                std::ptr::null_mut(),
            )
        };
        r == sys::EResult::k_EResultOK
            && st.m_cbPendingReliable == 0
            && st.m_cbSentUnackedReliable == 0
    }

    /// Sends `data` reliably; `Err(LimitExceeded)` etc. as the EResult.
    pub(crate) fn send_reliable(self, conn: HSteamNetConnection, data: &[u8]) -> sys::EResult {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // SAFETY: sockets is live; data is readable for len bytes (GNS copies it).
        unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
                self.sockets,
                conn,
                data.as_ptr().cast(),
                len,
                SEND_RELIABLE,
                std::ptr::null_mut(),
            )
        }
    }

    /// Receives up to 64 messages on `conn`, copied out.
    pub(crate) fn receive(self, conn: HSteamNetConnection) -> Vec<Vec<u8>> {
        let mut ptrs = [std::ptr::null_mut::<sys::SteamNetworkingMessage_t>(); 64];
        // SAFETY: sockets is live; ptrs has room for the count passed.
        let n = unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(
                self.sockets,
                conn,
                ptrs.as_mut_ptr(),
                64,
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        ptrs[..n]
            .iter()
            .map(|&m| {
                // SAFETY: GNS returned n valid messages; each is read once, then released.
                unsafe {
                    let len = usize::try_from((*m).m_cbSize).unwrap_or(0);
                    let data = std::slice::from_raw_parts((*m).m_pData.cast::<u8>(), len).to_vec();
                    sys::SteamAPI_SteamNetworkingMessage_t_Release(m);
                    data
                }
            })
            .collect()
    }
}

/// Where a signaling object sends: this process's socket (a clone) and the peer's name.
pub(crate) struct SignalCtx {
    pub(crate) ep: SignalEndpoint,
    pub(crate) to: String,
    /// `(peer, bytes)` per signal sent, for SIGNAL lines; `None` without --verbose.
    pub(crate) log: Option<Sender<(String, usize)>>,
}

/// `SendSignal`: may run on GNS's service thread with GNS's lock held, so it only writes the
/// datagram (and queues a log record); it never calls GNS or takes a lock of ours. A failed
/// write is a lost signal (GNS retransmits), never `false`, which would kill the connection.
unsafe extern "C" fn send_signal(
    ctx: *mut c_void,
    _conn: HSteamNetConnection,
    _info: *const SteamNetConnectionInfo_t,
    msg: *const c_void,
    len: c_int,
) -> bool {
    // SAFETY: ctx is the SignalCtx boxed in `signaling`, alive until release_signal.
    let ctx = unsafe { &*ctx.cast::<SignalCtx>() };
    let len = usize::try_from(len).unwrap_or(0);
    // SAFETY: GNS passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let _ = ctx.ep.send(&ctx.to, bytes);
    if let Some(log) = &ctx.log {
        let _ = log.send((ctx.to.clone(), len));
    }
    true
}

/// `Release`: frees the context (GNS calls it once, when the connection is destroyed).
unsafe extern "C" fn release_signal(ctx: *mut c_void) {
    // SAFETY: ctx is the Box leaked in `signaling`; GNS releases it exactly once.
    drop(unsafe { Box::from_raw(ctx.cast::<SignalCtx>()) });
}

/// A GNS signaling object sending through `ctx`.
pub(crate) fn signaling(ctx: SignalCtx) -> *mut ISteamNetworkingConnectionSignaling {
    let ctx = Box::into_raw(Box::new(ctx));
    // SAFETY: ctx stays valid until GNS calls release_signal.
    unsafe {
        sys::SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(
            ctx.cast(),
            Some(send_signal),
            Some(release_signal),
        )
    }
}

/// What a received signal may ask of the application, answered by [`RecvHandler`].
pub(crate) trait RecvHandler {
    /// OnConnectRequest: a signaling object to accept (null to ignore it).
    fn on_connect_request(
        &mut self,
        conn: HSteamNetConnection,
        peer: &SteamNetworkingIdentity,
        vport: i32,
    ) -> *mut ISteamNetworkingConnectionSignaling;
    /// SendRejectionSignal to the peer named `to`.
    fn send_rejection(&mut self, to: &str, signal: &[u8]);
}

unsafe extern "C" fn on_connect_request<H: RecvHandler>(
    ctx: *mut c_void,
    conn: HSteamNetConnection,
    peer: *const SteamNetworkingIdentity,
    vport: c_int,
) -> *mut ISteamNetworkingConnectionSignaling {
    // SAFETY: ctx is the `&mut H` passed to received_signal, exclusive for that call.
    let h = unsafe { &mut *ctx.cast::<H>() };
    // SAFETY: GNS passes a valid identity for the call.
    h.on_connect_request(conn, unsafe { &*peer }, vport)
}

unsafe extern "C" fn send_rejection<H: RecvHandler>(
    ctx: *mut c_void,
    peer: *const SteamNetworkingIdentity,
    msg: *const c_void,
    len: c_int,
) {
    // SAFETY: as in on_connect_request.
    let h = unsafe { &mut *ctx.cast::<H>() };
    // SAFETY: GNS passes a valid identity and `len` readable bytes.
    let (id, bytes) = unsafe {
        (
            identity_string(&*peer),
            std::slice::from_raw_parts(msg.cast::<u8>(), usize::try_from(len).unwrap_or(0)),
        )
    };
    h.send_rejection(peer_name(&id), bytes);
}

impl Gns {
    /// ReceivedP2PCustomSignal2 with `handler` answering the context callbacks.
    pub(crate) fn received_signal<H: RecvHandler>(self, signal: &[u8], handler: &mut H) -> bool {
        let len = c_int::try_from(signal.len()).unwrap_or(c_int::MAX);
        // SAFETY: sockets is live; handler outlives the call and is only used during it.
        unsafe {
            sys::SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal2(
                self.sockets,
                signal.as_ptr().cast(),
                len,
                std::ptr::from_mut(handler).cast(),
                Some(on_connect_request::<H>),
                Some(send_rejection::<H>),
            )
        }
    }
}
