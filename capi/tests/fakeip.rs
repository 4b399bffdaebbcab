//! FakeIP through the C++ interfaces, as a C++ program would use it: the rendezvous service
//! (run in a thread of the test) is named by `SOCKWORKS_RENDEZVOUS`; `BeginAsyncRequestFakeIP`
//! and `GetFakeIP` through the `ISteamNetworkingSockets` vtable with the result callback set
//! as config value 207; `CreateListenSocketP2PFakeIP` and the flat `ConnectByIPAddress` to our
//! own FakeIP (one instance per process: it reaches itself through the service, as GNS's
//! self-connect test does over custom signaling); `GetRemoteFakeIPForConnection`, the utils'
//! FakeIP calls; and two `ISteamNetworkingFakeUDPPort` objects through their own vtable. ICE
//! needs a non-loopback address, so the test moves into a private network namespace (SKIP
//! when not permitted).

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::ffi::{c_char, c_int, c_void};
use std::net::{SocketAddr, UdpSocket};
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sockworks::engine::shard::Clock;

use GameNetworkingSockets::config::SteamAPI_ISteamNetworkingUtils_SetConfigValue;
use GameNetworkingSockets::config::SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetConnectionStatusChanged;
use GameNetworkingSockets::fakeip::PORT_METHODS;
use GameNetworkingSockets::identity::SteamAPI_SteamNetworkingIdentity_ParseString;
use GameNetworkingSockets::instance::{GameNetworkingSockets_Init, GameNetworkingSockets_Kill};
use GameNetworkingSockets::sockets::*;
use GameNetworkingSockets::types::*;
use GameNetworkingSockets::vtable::{
    SOCKETS_METHODS, SteamAPI_SteamNetworkingMessage_t_Release, SteamNetworkingSockets_LibV12,
    SteamNetworkingUtils_LibV4, UTILS_METHODS,
};

/// FakeIP results the callback saw: (result, ip, first port).
static RESULTS: Mutex<Vec<(i32, u32, u16)>> = Mutex::new(Vec::new());
/// Incoming connections accepted in the status callback: (connection, listen socket).
static ACCEPTED: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());
/// Connections that reached Connected.
static CONNECTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn private_net() -> bool {
    // SAFETY: unshare(CLONE_NEWNET) changes only the calling thread's network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!("SKIP: cannot create a network namespace (not root?)");
        return false;
    }
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = ip(&["link", "set", "lo", "up"])
        && ip(&[
            "link", "add", "cfk0", "type", "veth", "peer", "name", "cfk1",
        ])
        && ip(&["addr", "add", "10.78.0.1/24", "dev", "cfk0"])
        && ip(&["link", "set", "cfk0", "up"])
        && ip(&["link", "set", "cfk1", "up"]);
    if !ok {
        eprintln!("SKIP: cannot configure the test namespace (iproute2 missing?)");
    }
    ok
}

/// The rendezvous service in a thread until `stop`.
fn service(stop: &'static AtomicBool) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut svc = sockworks_rendezvous::server::Service::new(
            sockworks_rendezvous::server::ServiceConfig::new([4; 32]),
        );
        let clock = Clock::new();
        let start = clock.now();
        let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
        while !stop.load(Ordering::Acquire) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                let now = clock.now().saturating_since(start);
                if let Some(to) = svc.handle_datagram(now, 0, from, &buf[..n], &mut out) {
                    let _ = socket.send_to(&out, to);
                }
            }
        }
    });
    addr
}

unsafe extern "C" fn on_fake_ip(r: *mut SteamNetworkingFakeIPResult_t) {
    // SAFETY: valid for the duration of the call.
    let r = unsafe { *r };
    let ports = r.m_unPorts;
    RESULTS
        .lock()
        .unwrap()
        .push((r.m_eResult, r.m_unIP, ports[0]));
}

unsafe extern "C" fn on_status(ev: *mut SteamNetConnectionStatusChangedCallback_t) {
    // SAFETY: valid for the duration of the call.
    let ev = unsafe { *ev };
    let (conn, state, listen) = (ev.m_hConn, ev.m_info.m_eState, ev.m_info.m_hListenSocket);
    if state == k_ESteamNetworkingConnectionState_Connecting && listen != 0 {
        ACCEPTED.lock().unwrap().push((conn, listen));
        SteamAPI_ISteamNetworkingSockets_AcceptConnection(null_mut(), conn);
    }
    if state == k_ESteamNetworkingConnectionState_Connected {
        CONNECTED.lock().unwrap().push(conn);
    }
}

/// Slot `name` of the object's vtable, as a function of type `F`.
///
/// # Safety
/// `obj` is one of the library's interface objects and `F` the method's type.
unsafe fn slot<F: Copy>(obj: *mut c_void, methods: &[&str], name: &str) -> F {
    let i = methods.iter().position(|m| *m == name).unwrap();
    // SAFETY: the object starts with its vtable pointer; the table has one slot per method.
    let f = unsafe { *(*obj.cast::<*const *const ()>()).add(i) };
    // SAFETY: the caller names the slot's function type.
    unsafe { std::mem::transmute_copy::<*const (), F>(&f) }
}

/// Runs callbacks until `done` holds (10 s at most).
fn until(mut done: impl FnMut() -> bool) -> bool {
    let clock = Clock::new();
    let start = clock.now();
    while clock.now().saturating_since(start) < Duration::from_secs(10) {
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(null_mut());
        if done() {
            return true;
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
    false
}

fn addr(ip: u32, port: u16) -> SteamNetworkingIPAddr {
    SteamNetworkingIPAddr::from_socket_addr(SocketAddr::from((ip.to_be_bytes(), port)))
}

type SendFn = unsafe extern "C" fn(
    *mut c_void,
    *const SteamNetworkingIPAddr,
    *const c_void,
    u32,
    c_int,
) -> i32;
type RecvFn = unsafe extern "C" fn(*mut c_void, *mut *mut SteamNetworkingMessage_t, c_int) -> c_int;

/// Sends `data` from port `from` to `to` until port `rx` receives it; returns the sender's
/// FakeIP identity as the receiver saw it.
fn exchange(from: *mut c_void, to: SteamNetworkingIPAddr, data: &[u8], rx: *mut c_void) -> String {
    // SAFETY: both are port objects of the library.
    let (send, recv) = unsafe {
        (
            slot::<SendFn>(from, PORT_METHODS, "SendMessageToFakeIP"),
            slot::<RecvFn>(rx, PORT_METHODS, "ReceiveMessages"),
        )
    };
    let mut seen = None;
    let ok = until(|| {
        // SAFETY: a valid address and `data.len()` bytes.
        let r = unsafe { send(from, &to, data.as_ptr().cast(), data.len() as u32, 1) };
        assert_eq!(r, k_EResultOK);
        let mut msgs = [null_mut(); 8];
        // SAFETY: room for 8 pointers.
        let n = unsafe { recv(rx, msgs.as_mut_ptr(), 8) };
        for &m in &msgs[..n as usize] {
            // SAFETY: a message the library lent us; released once.
            unsafe {
                let body =
                    std::slice::from_raw_parts((*m).m_pData.cast::<u8>(), (*m).m_cbSize as usize);
                assert_eq!({ (*m).m_conn }, 0);
                if body == data {
                    let mut buf = [0 as c_char; 128];
                    GameNetworkingSockets::identity::SteamNetworkingIdentity_ToString(
                        &(*m).m_identityPeer,
                        buf.as_mut_ptr(),
                        buf.len(),
                    );
                    seen = Some(read_c_chars(&buf));
                }
                SteamAPI_SteamNetworkingMessage_t_Release(m);
            }
        }
        seen.is_some()
    });
    assert!(ok, "{data:?} never arrived");
    seen.unwrap()
}

#[test]
fn fake_ip_through_the_cpp_interfaces() {
    if !private_net() {
        return;
    }
    static STOP: AtomicBool = AtomicBool::new(false);
    let server = service(&STOP);
    // SAFETY: set before the instance starts (no other thread reads the environment then).
    unsafe {
        std::env::set_var("SOCKWORKS_RENDEZVOUS", server.to_string());
        std::env::set_var("SOCKWORKS_SHARDS", "1");
    }
    let mut me = SteamNetworkingIdentity::zeroed();
    // SAFETY: a valid identity and a C string.
    assert!(unsafe {
        SteamAPI_SteamNetworkingIdentity_ParseString(
            &mut me,
            size_of_val(&me),
            c"str:cfake".as_ptr(),
        )
    });
    let mut err = [0 as c_char; 1024];
    // SAFETY: a valid identity and a SteamNetworkingErrMsg.
    let ok = unsafe { GameNetworkingSockets_Init(&me, err.as_mut_ptr()) };
    assert!(ok, "{}", read_c_chars(&err));
    assert!(
        SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetConnectionStatusChanged(
            null_mut(),
            Some(on_status)
        )
    );
    let cb: unsafe extern "C" fn(*mut SteamNetworkingFakeIPResult_t) = on_fake_ip;
    // SAFETY: pArg points to the callback pointer, of the Ptr type.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingUtils_SetConfigValue(
            null_mut(),
            k_ESteamNetworkingConfig_Callback_FakeIPResult,
            k_ESteamNetworkingConfig_Global,
            0,
            k_ESteamNetworkingConfig_Ptr,
            (&raw const cb).cast(),
        )
    });
    let sockets = SteamNetworkingSockets_LibV12();
    let utils = SteamNetworkingUtils_LibV4();
    // SAFETY: the library's interface objects and the methods' types.
    let (begin, get, listen, remote, create, fake_type, real) = unsafe {
        (
            slot::<unsafe extern "C" fn(*mut c_void, c_int) -> bool>(
                sockets,
                SOCKETS_METHODS,
                "BeginAsyncRequestFakeIP",
            ),
            slot::<unsafe extern "C" fn(*mut c_void, c_int, *mut SteamNetworkingFakeIPResult_t)>(
                sockets,
                SOCKETS_METHODS,
                "GetFakeIP",
            ),
            slot::<
                unsafe extern "C" fn(
                    *mut c_void,
                    c_int,
                    c_int,
                    *const SteamNetworkingConfigValue_t,
                ) -> u32,
            >(sockets, SOCKETS_METHODS, "CreateListenSocketP2PFakeIP"),
            slot::<unsafe extern "C" fn(*mut c_void, u32, *mut SteamNetworkingIPAddr) -> i32>(
                sockets,
                SOCKETS_METHODS,
                "GetRemoteFakeIPForConnection",
            ),
            slot::<unsafe extern "C" fn(*mut c_void, c_int) -> *mut c_void>(
                sockets,
                SOCKETS_METHODS,
                "CreateFakeUDPPort",
            ),
            slot::<unsafe extern "C" fn(*mut c_void, u32) -> i32>(
                utils,
                UTILS_METHODS,
                "GetIPv4FakeIPType",
            ),
            slot::<
                unsafe extern "C" fn(
                    *mut c_void,
                    *const SteamNetworkingIPAddr,
                    *mut SteamNetworkingIdentity,
                ) -> i32,
            >(utils, UTILS_METHODS, "GetRealIdentityForFakeIP"),
        )
    };

    // SAFETY: every call below passes the slot's own argument types and valid pointers.
    unsafe {
        assert!(!begin(sockets, 5));
        assert!(begin(sockets, 2));
        assert!(until(|| !RESULTS.lock().unwrap().is_empty()));
        let (result, ip, port0) = RESULTS.lock().unwrap()[0];
        assert_eq!(result, k_EResultOK);
        assert_eq!(
            fake_type(utils, ip),
            k_ESteamNetworkingFakeIPType_GlobalIPv4
        );
        let mut info: SteamNetworkingFakeIPResult_t = std::mem::zeroed();
        get(sockets, 0, &mut info);
        assert_eq!(
            ({ info.m_eResult }, { info.m_unIP }, { info.m_unPorts }[0]),
            (k_EResultOK, ip, port0)
        );
        let port1 = { info.m_unPorts }[1];
        assert!(port1 > 1024 && { info.m_unPorts }[2] == 0);
        get(sockets, 7, &mut info);
        assert_eq!({ info.m_eResult }, k_EResultInvalidParam);

        // Connection-oriented: listen on fake port 0, connect to our own FakeIP by address.
        let ls = listen(sockets, 0, 0, null());
        assert_ne!(ls, 0);
        let target = addr(ip, port0);
        let client =
            SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(null_mut(), &target, 0, null());
        assert_ne!(client, 0);
        assert!(until(|| CONNECTED.lock().unwrap().contains(&client)));
        let (server_conn, via) = ACCEPTED.lock().unwrap()[0];
        assert_eq!(via, ls);
        let mut peer = SteamNetworkingIPAddr::zeroed();
        assert_eq!(remote(sockets, server_conn, &mut peer), k_EResultOK);
        assert_eq!(
            peer.to_socket_addr(),
            target.to_socket_addr(),
            "our own port 0, from_fakeip"
        );
        assert_eq!(remote(sockets, 99_999, &mut peer), k_EResultInvalidParam);
        let mut who = SteamNetworkingIdentity::zeroed();
        assert_eq!(real(utils, &target, &mut who), k_EResultOK);
        assert_eq!(
            who.to_identity().map(|i| i.to_string()).as_deref(),
            Some("str:cfake")
        );
        let not_fake = SteamNetworkingIPAddr::from_socket_addr("10.0.0.1:1".parse().unwrap());
        assert_eq!(real(utils, &not_fake, &mut who), k_EResultInvalidParam);

        // FakeUDP: an ephemeral port talks to our server port 1.
        let server_port = create(sockets, 1);
        assert!(!server_port.is_null());
        assert_eq!(create(sockets, 1), server_port, "same index, same object");
        assert!(create(sockets, 2).is_null(), "2 ports requested");
        let client_port = create(sockets, -1);
        assert!(!client_port.is_null());
        let from = exchange(client_port, addr(ip, port1), b"ping", server_port);
        let local: SocketAddr = from.strip_prefix("ip:").unwrap().parse().unwrap();
        let local_ip = match local {
            SocketAddr::V4(a) => u32::from(*a.ip()),
            SocketAddr::V6(_) => panic!("{from}"),
        };
        assert_eq!(
            fake_type(utils, local_ip),
            k_ESteamNetworkingFakeIPType_LocalIPv4
        );
        let back = exchange(
            server_port,
            SteamNetworkingIPAddr::from_socket_addr(local),
            b"pong",
            client_port,
        );
        let back: SocketAddr = back.strip_prefix("ip:").unwrap().parse().unwrap();
        assert_eq!(back, SocketAddr::from((ip.to_be_bytes(), port1)));
        for p in [client_port, server_port] {
            let destroy =
                slot::<unsafe extern "C" fn(*mut c_void)>(p, PORT_METHODS, "DestroyFakeUDPPort");
            destroy(p);
        }
    }
    GameNetworkingSockets_Kill();
    STOP.store(true, Ordering::Release);
}
