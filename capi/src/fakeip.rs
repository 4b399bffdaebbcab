//! FakeIP through the C++ interfaces (GNS has no flat exports for these calls): the
//! `ISteamNetworkingSockets` slots `BeginAsyncRequestFakeIP`, `GetFakeIP`,
//! `CreateListenSocketP2PFakeIP`, `GetRemoteFakeIPForConnection`, `CreateFakeUDPPort`, and
//! the `ISteamNetworkingFakeUDPPort` objects the last one returns.
//!
//! ```text
//!  CreateFakeUDPPort(i) ─► Box<PortObject { vptr ─► [Destroy, SendMessageToFakeIP,
//!                                                    ReceiveMessages, ScheduleCleanup],
//!                                           port: Option<sockworks::FakeUdpPort> }>
//!  same i ≥ 0 while alive ─► the same object;  DestroyFakeUDPPort ─► freed
//!  GameNetworkingSockets_Kill ─► every object's port torn down (the object stays until
//!                                 destroyed; its calls then fail)
//! ```
//! The rendezvous service that hands out FakeIPs is named by `SOCKWORKS_RENDEZVOUS`
//! (`crate::instance`); without it `BeginAsyncRequestFakeIP` returns false, as GNS without
//! Steam does.

use std::ffi::{c_int, c_void};
use std::net::SocketAddr;
use std::sync::Mutex;

use sockworks::{Connection, EResult, FakeIpResult, FakeUdpPort};
use sockworks_engine::wire::fakeip::fake_ip_identity;

use crate::guard::guard;
use crate::instance::with;
use crate::message::lend;
use crate::types::{
    HSteamListenSocket, HSteamNetConnection, ISteamNetworkingFakeUDPPort,
    SteamNetworkingConfigValue_t, SteamNetworkingFakeIPResult_t, SteamNetworkingIPAddr,
    SteamNetworkingIdentity, SteamNetworkingMessage_t,
};

/// `k_EResultFail`.
const FAIL: i32 = EResult::Fail.code();
/// `k_EResultInvalidParam`.
const INVALID_PARAM: i32 = EResult::InvalidParam.code();

/// Writes `r` into the SDK struct (ports beyond the result's are 0).
pub(crate) fn fill(d: &mut SteamNetworkingFakeIPResult_t, r: &FakeIpResult) {
    d.m_eResult = r.result.code();
    d.m_identity = r.identity.as_ref().map_or_else(
        SteamNetworkingIdentity::zeroed,
        SteamNetworkingIdentity::from_identity,
    );
    d.m_unIP = u32::from(r.ip);
    let mut ports = [0u16; SteamNetworkingFakeIPResult_t::k_nMaxReturnPorts];
    for (slot, &p) in ports.iter_mut().zip(&r.ports) {
        *slot = p;
    }
    d.m_unPorts = ports;
}

/// An all-zero result struct.
fn zeroed_result() -> SteamNetworkingFakeIPResult_t {
    SteamNetworkingFakeIPResult_t {
        m_eResult: 0,
        m_identity: SteamNetworkingIdentity::zeroed(),
        m_unIP: 0,
        m_unPorts: [0; SteamNetworkingFakeIPResult_t::k_nMaxReturnPorts],
    }
}

/// The C FakeIP-result callback's type (`FnSteamNetworkingFakeIPResult`).
pub type CFakeIpResult = unsafe extern "C" fn(*mut SteamNetworkingFakeIPResult_t);

/// Wraps a C callback (207) as the Rust API's callback.
pub fn fake_ip_result_fn(f: CFakeIpResult) -> sockworks::FakeIpResultFn {
    std::sync::Arc::new(move |r: &FakeIpResult| {
        let mut c = zeroed_result();
        fill(&mut c, r);
        // SAFETY: the application registered `f` for exactly this struct; it lives for the call.
        unsafe { f(&mut c) };
    })
}

/// `BeginAsyncRequestFakeIP`: false for a port count outside 1..=4, while a request is in
/// flight, without a rendezvous service, or without an instance.
pub(crate) extern "C" fn begin_async_request_fake_ip(_self: *mut c_void, ports: c_int) -> bool {
    guard(false, || {
        with(false, |s| s.begin_async_request_fake_ip(ports))
    })
}

/// `GetFakeIP`: fills `*info` (result Busy, InvalidParam, NoMatch… as `sockworks::Sockets::
/// get_fake_ip`; NoMatch without an instance). Null `info`: nothing.
///
/// # Safety
/// `info` is null or points to a writable `SteamNetworkingFakeIPResult_t` (SDK layout).
pub(crate) unsafe extern "C" fn get_fake_ip(
    _self: *mut c_void,
    first_port: c_int,
    info: *mut SteamNetworkingFakeIPResult_t,
) {
    guard((), || {
        // SAFETY: the caller passes null or a writable result struct.
        let Some(out) = (unsafe { info.as_mut() }) else {
            return;
        };
        let mut c = zeroed_result();
        c.m_eResult = EResult::NoMatch.code();
        with((), |s| fill(&mut c, &s.get_fake_ip(first_port)));
        *out = c;
    });
}

/// `CreateListenSocketP2PFakeIP`: 0 for an index beyond the ports requested, bad options,
/// a port already listened on, or no instance.
///
/// # Safety
/// `opts` is null or points to `n` options.
pub(crate) unsafe extern "C" fn create_listen_socket_p2p_fake_ip(
    _self: *mut c_void,
    port: c_int,
    n: c_int,
    opts: *const SteamNetworkingConfigValue_t,
) -> HSteamListenSocket {
    guard(0, || {
        // SAFETY: forwarded from the caller.
        let Some(opts) = (unsafe { crate::sockets::options(n, opts) }) else {
            return 0;
        };
        with(0, |s| s.create_listen_socket_p2p_fake_ip(port, &opts).0)
    })
}

/// `GetRemoteFakeIPForConnection`: OK and the peer's FakeIP in `*out` (when not null);
/// InvalidParam for a bad handle; IPNotFound for a connection not made through FakeIP.
///
/// # Safety
/// `out` is null or points to a writable `SteamNetworkingIPAddr`.
pub(crate) unsafe extern "C" fn get_remote_fake_ip_for_connection(
    _self: *mut c_void,
    conn: HSteamNetConnection,
    out: *mut SteamNetworkingIPAddr,
) -> i32 {
    guard(INVALID_PARAM, || {
        with(INVALID_PARAM, |s| {
            match s.get_remote_fake_ip_for_connection(Connection(conn)) {
                Ok(addr) => {
                    // SAFETY: the caller passes null or a writable address.
                    if let Some(out) = unsafe { out.as_mut() } {
                        *out = SteamNetworkingIPAddr::from_socket_addr(SocketAddr::V4(addr));
                    }
                    EResult::Ok.code()
                }
                Err(e) => e.code(),
            }
        })
    })
}

/// One `ISteamNetworkingFakeUDPPort` handed to C: the vtable pointer first (Itanium ABI),
/// then the port (`None` once the instance was killed).
#[repr(C)]
struct PortObject {
    vptr: *const *const (),
    index: c_int,
    port: Mutex<Option<FakeUdpPort>>,
}

/// Live objects (their addresses), for the same index's same object and for Kill.
static OBJECTS: Mutex<Vec<(c_int, usize)>> = Mutex::new(Vec::new());

fn objects() -> std::sync::MutexGuard<'static, Vec<(c_int, usize)>> {
    OBJECTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `CreateFakeUDPPort`: the port object for fake port `index` (the same object for the same
/// index while it lives), or a new ephemeral port for -1; null for a bad index, without a
/// rendezvous service, or without an instance.
pub(crate) extern "C" fn create_fake_udp_port(
    _self: *mut c_void,
    index: c_int,
) -> *mut ISteamNetworkingFakeUDPPort {
    guard(std::ptr::null_mut(), || {
        let mut objs = objects();
        if index >= 0
            && let Some(&(_, ptr)) = objs.iter().find(|&&(i, p)| {
                // SAFETY: every address in OBJECTS is a live PortObject.
                i == index && unsafe { port_of(p as *mut c_void) }.is_some()
            })
        {
            return ptr as *mut ISteamNetworkingFakeUDPPort;
        }
        let Some(port) = with(None, |s| s.create_fake_udp_port(index)) else {
            return std::ptr::null_mut();
        };
        let obj = Box::new(PortObject {
            vptr: PORT_FNS.as_ptr(),
            index,
            port: Mutex::new(Some(port)),
        });
        let ptr = Box::into_raw(obj);
        objs.push((index, ptr as usize));
        ptr.cast::<ISteamNetworkingFakeUDPPort>()
    })
}

/// Tears down every port object's port (GameNetworkingSockets_Kill): the objects stay
/// allocated until the application destroys them, and fail every call meanwhile.
pub(crate) fn kill_ports() {
    let ports: Vec<FakeUdpPort> = objects()
        .iter()
        .filter_map(|&(_, ptr)| {
            // SAFETY: every address in OBJECTS is a live PortObject (removed before it is freed).
            let obj = unsafe { &*(ptr as *const PortObject) };
            obj.port
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        })
        .collect();
    for p in ports {
        p.destroy_fake_udp_port();
    }
}

/// The port of `this`, if the object is one of ours and still has one.
///
/// # Safety
/// `this` is null or a `PortObject` from [`create_fake_udp_port`] not yet destroyed.
unsafe fn port_of(this: *mut c_void) -> Option<FakeUdpPort> {
    // SAFETY: the caller passes null or a live PortObject.
    let obj = unsafe { this.cast::<PortObject>().as_ref() }?;
    obj.port
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// `DestroyFakeUDPPort`: closes the port's connections and frees the object.
///
/// # Safety
/// `this` is a live port object; it is invalid afterwards.
unsafe extern "C" fn destroy_fake_udp_port(this: *mut c_void) {
    guard((), || {
        if this.is_null() {
            return;
        }
        let mut objs = objects();
        let Some(at) = objs.iter().position(|&(_, p)| p == this as usize) else {
            return;
        };
        objs.remove(at);
        drop(objs);
        // SAFETY: a live PortObject from Box::into_raw, now out of OBJECTS: freed once.
        let obj = unsafe { Box::from_raw(this.cast::<PortObject>()) };
        let port = obj
            .port
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(p) = port {
            p.destroy_fake_udp_port();
        }
    });
}

/// `SendMessageToFakeIP`: see `sockworks::FakeUdpPort::send_message_to_fake_ip`;
/// InvalidParam for a null address or data; InvalidState for a killed port.
///
/// # Safety
/// `this` is a live port object; `to` is null or valid; `data` is null or holds `size` bytes.
unsafe extern "C" fn send_message_to_fake_ip(
    this: *mut c_void,
    to: *const SteamNetworkingIPAddr,
    data: *const c_void,
    size: u32,
    flags: c_int,
) -> i32 {
    guard(FAIL, || {
        // SAFETY: forwarded from the caller.
        let Some(port) = (unsafe { port_of(this) }) else {
            return EResult::InvalidState.code();
        };
        // SAFETY: the caller passes null or a valid address.
        let Some(to) = (unsafe { to.as_ref() }) else {
            return INVALID_PARAM;
        };
        let Ok(n) = usize::try_from(size) else {
            return INVALID_PARAM;
        };
        let data: &[u8] = if n == 0 {
            &[]
        } else if data.is_null() {
            return INVALID_PARAM;
        } else {
            // SAFETY: the caller promises `size` readable bytes at `data`.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) }
        };
        port.send_message_to_fake_ip(to.to_socket_addr(), data, flags)
            .code()
    })
}

/// `ReceiveMessages`: up to `max` messages into `out`, each with the sender's FakeIP as
/// `m_identityPeer` (`ip:169.254.x.y:port`), `m_conn` 0 and `m_nConnUserData` 0; returns
/// how many (0 for a killed port, a null `out` or `max` ≤ 0).
///
/// # Safety
/// `this` is a live port object; `out` is null or has room for `max` pointers.
unsafe extern "C" fn receive_messages(
    this: *mut c_void,
    out: *mut *mut SteamNetworkingMessage_t,
    max: c_int,
) -> c_int {
    guard(0, || {
        // SAFETY: forwarded from the caller.
        let Some(port) = (unsafe { port_of(this) }) else {
            return 0;
        };
        let Ok(max) = usize::try_from(max) else {
            return 0;
        };
        if out.is_null() || max == 0 {
            return 0;
        }
        let mut got = Vec::new();
        port.receive_messages(&mut got, max);
        let offset = with(0, |s| {
            let now = i64::try_from(s.now().as_micros()).unwrap_or(i64::MAX);
            crate::utils::local_timestamp().saturating_sub(now)
        });
        let from: Vec<_> = got.iter().map(|m| m.from).collect();
        let mut messages: Vec<_> = got.into_iter().map(|m| m.message).collect();
        let n = messages.len();
        // SAFETY: the caller promises room for `max` >= n pointers.
        unsafe { lend(&mut messages, out, offset) };
        for (i, addr) in from.into_iter().enumerate() {
            // SAFETY: `lend` wrote n live message pointers to `out`.
            let m = unsafe { &mut **out.add(i) };
            m.m_identityPeer = SteamNetworkingIdentity::from_identity(&fake_ip_identity(addr));
            m.m_conn = 0;
        }
        c_int::try_from(n).unwrap_or(c_int::MAX)
    })
}

/// `ScheduleCleanup`: see `sockworks::FakeUdpPort::schedule_cleanup`.
///
/// # Safety
/// `this` is a live port object; `peer` is null or valid.
unsafe extern "C" fn schedule_cleanup(this: *mut c_void, peer: *const SteamNetworkingIPAddr) {
    guard((), || {
        // SAFETY: forwarded from the caller.
        let Some(port) = (unsafe { port_of(this) }) else {
            return;
        };
        // SAFETY: the caller passes null or a valid address.
        if let Some(peer) = unsafe { peer.as_ref() } {
            port.schedule_cleanup(peer.to_socket_addr());
        }
    });
}

/// `ISteamNetworkingFakeUDPPort`'s virtual methods in declaration order (SDK
/// `steamnetworkingfakeip.h`; no virtual destructor, so no destructor slots).
pub const PORT_METHODS: &[&str] = &[
    "DestroyFakeUDPPort",
    "SendMessageToFakeIP",
    "ReceiveMessages",
    "ScheduleCleanup",
];

const PORT_FNS: &[*const ()] = &[
    destroy_fake_udp_port as *const (),
    send_message_to_fake_ip as *const (),
    receive_messages as *const (),
    schedule_cleanup as *const (),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn the_result_struct_has_the_sdk_layout() {
        assert_eq!(size_of::<SteamNetworkingFakeIPResult_t>(), 160);
        assert_eq!(offset_of!(SteamNetworkingFakeIPResult_t, m_identity), 4);
        assert_eq!(offset_of!(SteamNetworkingFakeIPResult_t, m_unIP), 0x8c);
        assert_eq!(offset_of!(SteamNetworkingFakeIPResult_t, m_unPorts), 0x90);
        assert_eq!(PORT_FNS.len(), PORT_METHODS.len());
    }

    #[test]
    fn results_fill_every_field() {
        let mut c = zeroed_result();
        fill(
            &mut c,
            &FakeIpResult {
                result: EResult::Ok,
                identity: sockworks_engine::wire::identity::Identity::parse("str:a").ok(),
                ip: [169, 254, 7, 9].into(),
                ports: vec![2000, 3000],
            },
        );
        assert_eq!({ c.m_eResult }, 1);
        assert_eq!({ c.m_unIP }, 0xa9fe_0709);
        assert_eq!({ c.m_unPorts }, [2000, 3000, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            c.m_identity.to_identity().map(|i| i.to_string()).as_deref(),
            Some("str:a")
        );
    }

    #[test]
    fn calls_without_an_instance_fail_cleanly() {
        let null = std::ptr::null_mut();
        assert!(!begin_async_request_fake_ip(null, 1));
        let mut r = zeroed_result();
        // SAFETY: a writable struct, then null.
        unsafe {
            get_fake_ip(null, 0, &mut r);
            get_fake_ip(null, 0, std::ptr::null_mut());
        }
        assert_eq!({ r.m_eResult }, EResult::NoMatch.code());
        assert!(create_fake_udp_port(null, 0).is_null());
        // SAFETY: null options with n = 0; a null out address.
        unsafe {
            assert_eq!(
                create_listen_socket_p2p_fake_ip(null, 0, 0, std::ptr::null()),
                0
            );
            assert_eq!(
                get_remote_fake_ip_for_connection(null, 5, std::ptr::null_mut()),
                INVALID_PARAM
            );
        }
    }
}
