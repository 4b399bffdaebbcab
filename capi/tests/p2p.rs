//! P2P through the flat C calls, as a C program would make them: one process (the library has
//! one instance per process) listens on virtual port 0 and connects to its own identity, as
//! GNS's own self-connect test does, getting two real connections over ICE. Signals are
//! queued by the C callbacks and fed back by the test loop.
//!
//! First with `CreateCustomSignaling` + `ConnectP2PCustomSignaling` + `ReceivedP2PCustomSignal2`
//! (C callbacks), then with `ConnectP2P` + `Callback_CreateConnectionSignaling` (206) +
//! `ReceivedP2PCustomSignal` given a C++ context object built here (vtable first). Every
//! signaling object's `Release` is counted. ICE never gathers loopback addresses, so the test
//! thread moves into a fresh network namespace with one test-only address (SKIP when not
//! permitted); the instance's threads, started from it, live there too.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use GameNetworkingSockets::config::*;
use GameNetworkingSockets::identity::SteamAPI_SteamNetworkingIdentity_ParseString;
use GameNetworkingSockets::instance::*;
use GameNetworkingSockets::introspect::*;
use GameNetworkingSockets::p2p::*;
use GameNetworkingSockets::signaling::SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling;
use GameNetworkingSockets::sockets::*;
use GameNetworkingSockets::types::*;
use GameNetworkingSockets::utils::SteamAPI_ISteamNetworkingUtils_SetDebugOutputFunction;
use GameNetworkingSockets::vtable::SteamAPI_SteamNetworkingMessage_t_Release;

/// Signals sent by any of our connections, in order (self-connect: one wire serves both).
static WIRE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// `Release` calls seen by the flat adapters' `fnRelease`.
static RELEASED: AtomicUsize = AtomicUsize::new(0);
/// `SendSignal` calls whose info named the connection they were for (checked by the test).
static SENDERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Connect requests: (connection, peer identity, local virtual port).
static REQUESTS: Mutex<Vec<(u32, String, i32)>> = Mutex::new(Vec::new());
/// Status changes: (connection, new state).
static EVENTS: Mutex<Vec<(u32, i32)>> = Mutex::new(Vec::new());
/// The listen socket of each incoming connection's Connecting callback.
static LISTENERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Debug output lines.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// `Callback_CreateConnectionSignaling` calls: (peer, local vport, remote vport).
static CREATES: Mutex<Vec<(String, i32, i32)>> = Mutex::new(Vec::new());

/// Moves this thread into a new network namespace with a veth pair whose one end has
/// `10.77.0.1/24`. False when the OS refuses (not root) or `ip` is missing.
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
            "link", "add", "cp2p0", "type", "veth", "peer", "name", "cp2p1",
        ])
        && ip(&["addr", "add", "10.77.0.1/24", "dev", "cp2p0"])
        && ip(&["link", "set", "cp2p0", "up"])
        && ip(&["link", "set", "cp2p1", "up"]);
    if !ok {
        eprintln!("SKIP: cannot configure the test namespace (iproute2 missing?)");
    }
    ok
}

fn identity_text(id: *const SteamNetworkingIdentity) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: the library passes a valid identity; the buffer has 128 bytes.
    unsafe {
        GameNetworkingSockets::identity::SteamNetworkingIdentity_ToString(
            id,
            buf.as_mut_ptr(),
            buf.len(),
        );
    }
    read_c_chars(&buf)
}

unsafe extern "C" fn on_debug(_kind: i32, text: *const c_char) {
    // SAFETY: a NUL-terminated line valid for the call.
    let text = unsafe { std::ffi::CStr::from_ptr(text) };
    LOG.lock()
        .unwrap()
        .push(text.to_string_lossy().into_owned());
}

unsafe extern "C" fn on_status(ev: *mut SteamNetConnectionStatusChangedCallback_t) {
    // SAFETY: valid for the duration of the call.
    let ev = unsafe { *ev };
    let state = ev.m_info.m_eState;
    EVENTS.lock().unwrap().push((ev.m_hConn, state));
    let requested = REQUESTS.lock().unwrap().iter().any(|r| r.0 == ev.m_hConn);
    if requested && state == k_ESteamNetworkingConnectionState_Connecting {
        LISTENERS.lock().unwrap().push(ev.m_info.m_hListenSocket);
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_AcceptConnection(null_mut(), ev.m_hConn),
            k_EResultOK
        );
    }
}

unsafe extern "C" fn send_signal(
    _ctx: *mut c_void,
    conn: HSteamNetConnection,
    info: *const SteamNetConnectionInfo_t,
    msg: *const c_void,
    len: c_int,
) -> bool {
    // SAFETY: the library passes `len` readable bytes and a valid info.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len as usize) };
    // SAFETY: as above.
    let _state = unsafe { (*info).m_eState };
    SENDERS.lock().unwrap().push(conn);
    WIRE.lock().unwrap().push(bytes.to_vec());
    true
}

unsafe extern "C" fn release(ctx: *mut c_void) {
    assert_eq!(
        ctx as usize, 0x5eed,
        "fnRelease gets the context it was made with"
    );
    RELEASED.fetch_add(1, Ordering::SeqCst);
}

fn new_signaling() -> *mut ISteamNetworkingConnectionSignaling {
    let s = SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(
        0x5eed as *mut c_void,
        Some(send_signal),
        Some(release),
    );
    assert!(!s.is_null());
    s
}

unsafe extern "C" fn on_connect_request(
    _ctx: *mut c_void,
    conn: HSteamNetConnection,
    peer: *const SteamNetworkingIdentity,
    vport: c_int,
) -> *mut ISteamNetworkingConnectionSignaling {
    REQUESTS
        .lock()
        .unwrap()
        .push((conn, identity_text(peer), vport));
    new_signaling()
}

unsafe extern "C" fn create_signaling(
    _iface: *mut c_void,
    peer: *const SteamNetworkingIdentity,
    local: c_int,
    remote: c_int,
) -> *mut ISteamNetworkingConnectionSignaling {
    CREATES
        .lock()
        .unwrap()
        .push((identity_text(peer), local, remote));
    new_signaling()
}

unsafe extern "C" fn create_nothing(
    _iface: *mut c_void,
    _peer: *const SteamNetworkingIdentity,
    _local: c_int,
    _remote: c_int,
) -> *mut ISteamNetworkingConnectionSignaling {
    null_mut()
}

/// A C++ `ISteamNetworkingSignalingRecvContext` as a compiler would lay it out: the vtable
/// pointer first, the slots in declaration order, `this` first.
#[repr(C)]
struct CxxContext {
    vtbl: *const [*const (); 2],
    requests: usize,
}

unsafe extern "C" fn cxx_on_connect_request(
    this: *mut CxxContext,
    conn: HSteamNetConnection,
    peer: *const SteamNetworkingIdentity,
    vport: c_int,
) -> *mut ISteamNetworkingConnectionSignaling {
    // SAFETY: the library calls with the object it was given, live for the call.
    unsafe { (*this).requests += 1 };
    // SAFETY: forwarded.
    unsafe { on_connect_request(null_mut(), conn, peer, vport) }
}

unsafe extern "C" fn cxx_send_rejection(
    _this: *mut CxxContext,
    _peer: *const SteamNetworkingIdentity,
    _msg: *const c_void,
    _len: c_int,
) {
    panic!("no rejection expected");
}

struct Table([*const (); 2]);
// SAFETY: immutable function pointers.
unsafe impl Sync for Table {}
static CXX_VTBL: Table = Table([
    cxx_on_connect_request as *const (),
    cxx_send_rejection as *const (),
]);

/// Delivers queued signals until `done`, for at most about 10 s.
fn pump(what: &str, mut feed: impl FnMut(&[u8]) -> bool, mut done: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        let signals = std::mem::take(&mut *WIRE.lock().unwrap());
        for s in signals {
            assert!(feed(&s), "a signal of our own was refused");
        }
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(null_mut());
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!(
        "timed out waiting for {what}; events {:?}\nlog {:#?}",
        EVENTS.lock().unwrap(),
        LOG.lock().unwrap()
    );
}

fn feed_flat(s: &[u8]) -> bool {
    // SAFETY: `s.len()` readable bytes; the callbacks take any context.
    unsafe {
        SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal2(
            null_mut(),
            s.as_ptr().cast(),
            s.len() as c_int,
            null_mut(),
            Some(on_connect_request),
            None,
        )
    }
}

fn connected(conn: u32) -> bool {
    EVENTS
        .lock()
        .unwrap()
        .contains(&(conn, k_ESteamNetworkingConnectionState_Connected))
}

fn info(conn: u32) -> SteamNetConnectionInfo_t {
    let mut info = SteamNetConnectionInfo_t::zeroed();
    // SAFETY: valid out pointer.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(null_mut(), conn, &mut info)
    });
    info
}

/// Sends one reliable message `from` → `to` and waits for it.
fn exchange(from: u32, to: u32, text: &[u8], feed: impl FnMut(&[u8]) -> bool) {
    // SAFETY: `text.len()` readable bytes; null message-number out pointer is allowed.
    let r = unsafe {
        SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
            null_mut(),
            from,
            text.as_ptr().cast(),
            text.len() as u32,
            k_nSteamNetworkingSend_Reliable,
            null_mut(),
        )
    };
    assert_eq!(r, k_EResultOK);
    let mut got = Vec::new();
    pump("a message", feed, || {
        let mut msg: *mut SteamNetworkingMessage_t = null_mut();
        // SAFETY: room for one message pointer.
        let n = unsafe {
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(
                null_mut(),
                to,
                &mut msg,
                1,
            )
        };
        if n == 1 {
            // SAFETY: a message from the library, released once.
            unsafe {
                let m = &*msg;
                got = std::slice::from_raw_parts(m.m_pData.cast::<u8>(), m.m_cbSize as usize)
                    .to_vec();
                SteamAPI_SteamNetworkingMessage_t_Release(msg);
            }
        }
        n == 1
    });
    assert_eq!(got, text);
}

fn close(conn: u32) {
    // SAFETY: a null debug string is allowed.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_CloseConnection(null_mut(), conn, 0, null(), false)
    });
}

#[test]
fn self_connect_over_ice_through_the_flat_and_cxx_signaling_calls() {
    if !private_net() {
        return;
    }
    let s = null_mut();
    let mut me = SteamNetworkingIdentity::zeroed();
    // SAFETY: a valid identity and a C string.
    assert!(unsafe {
        SteamAPI_SteamNetworkingIdentity_ParseString(
            &mut me,
            size_of_val(&me),
            c"str:self".as_ptr(),
        )
    });
    let mut err = [0 as c_char; 1024];
    // SAFETY: a valid identity and a SteamNetworkingErrMsg.
    let ok = unsafe { GameNetworkingSockets_Init(&me, err.as_mut_ptr()) };
    assert!(ok, "{}", read_c_chars(&err));
    SteamAPI_ISteamNetworkingUtils_SetDebugOutputFunction(
        s,
        k_ESteamNetworkingSocketsDebugOutputType_Verbose,
        Some(on_debug),
    );
    assert!(
        SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetConnectionStatusChanged(
            s,
            Some(on_status)
        )
    );

    // --- failures -----------------------------------------------------------------------
    // SAFETY: null signaling and options are allowed.
    let r = unsafe {
        SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(s, null_mut(), &me, 0, 0, null())
    };
    assert_eq!(r, 0, "null signaling");
    assert!(
        SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(null_mut(), None, None).is_null()
    );
    // SAFETY: a valid identity, no options.
    let r = unsafe { SteamAPI_ISteamNetworkingSockets_ConnectP2P(s, &me, 0, 0, null()) };
    assert_eq!(
        r, 0,
        "ConnectP2P without Callback_CreateConnectionSignaling"
    );
    assert!(
        LOG.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("CreateConnectionSignaling callback not set")),
        "{:?}",
        LOG.lock().unwrap()
    );
    assert!(SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValuePtr(
        s,
        k_ESteamNetworkingConfig_Callback_CreateConnectionSignaling,
        create_nothing as *mut c_void
    ));
    // SAFETY: as above.
    let r = unsafe { SteamAPI_ISteamNetworkingSockets_ConnectP2P(s, &me, 0, 0, null()) };
    assert_eq!(r, 0, "the callback gave no signaling object");
    // SAFETY: as above.
    let r = unsafe { SteamAPI_ISteamNetworkingSockets_ConnectP2P(s, &me, 70_000, 0, null()) };
    assert_eq!(r, 0, "virtual port out of range");
    for garbage in [&b"garbage"[..], &[0xff; 64][..]] {
        assert!(!feed_flat(garbage), "garbage signal {garbage:?}");
    }
    // SAFETY: a null message is refused before it is read.
    assert!(!unsafe {
        SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal(s, null(), 10, null_mut())
    });
    // ICE disabled: no transport, the call fails and the object is released at once.
    let no_ice = [SteamNetworkingConfigValue_t {
        m_eValue: k_ESteamNetworkingConfig_P2P_Transport_ICE_Enable,
        m_eDataType: k_ESteamNetworkingConfig_Int32,
        m_val: SteamNetworkingConfigValue_t_Value { m_int32: 0 },
    }];
    // SAFETY: a one-element options array.
    let r = unsafe {
        SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(
            s,
            new_signaling(),
            &me,
            0,
            1,
            no_ice.as_ptr(),
        )
    };
    assert_eq!(r, 0, "ICE disabled");
    assert_eq!(
        RELEASED.load(Ordering::SeqCst),
        1,
        "released when the connect failed"
    );
    WIRE.lock().unwrap().clear();

    // --- self-connect with C callbacks --------------------------------------------------
    // SAFETY: no options.
    let listen = unsafe { SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P(s, 0, 0, null()) };
    assert_ne!(listen, 0);
    // SAFETY: as above.
    let again = unsafe { SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P(s, 0, 0, null()) };
    assert_eq!(again, 0, "one listen socket per virtual port");
    // SAFETY: a fresh signaling object, a valid identity, no options.
    let client = unsafe {
        SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(
            s,
            new_signaling(),
            &me,
            0,
            0,
            null(),
        )
    };
    assert_ne!(client, 0);
    pump("the connect request", feed_flat, || {
        !REQUESTS.lock().unwrap().is_empty()
    });
    let (server, peer, vport) = REQUESTS.lock().unwrap()[0].clone();
    assert_eq!((peer.as_str(), vport), ("str:self", 0));
    assert_ne!(server, client);
    pump("both connected", feed_flat, || {
        connected(client) && connected(server)
    });
    assert_eq!(info(server).m_hListenSocket, listen);
    assert_eq!(LISTENERS.lock().unwrap().as_slice(), [listen]);
    let remote = info(client).m_addrRemote.to_socket_addr();
    assert_eq!(remote.ip().to_string(), "10.77.0.1");
    assert!(SENDERS.lock().unwrap().contains(&client));
    assert!(SENDERS.lock().unwrap().contains(&server));
    exchange(client, server, b"hello over ICE", feed_flat);
    exchange(server, client, b"and back", feed_flat);
    close(client);
    close(server);

    // --- ConnectP2P with callback 206, C++ receive context --------------------------------
    assert!(SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValuePtr(
        s,
        k_ESteamNetworkingConfig_Callback_CreateConnectionSignaling,
        create_signaling as *mut c_void
    ));
    let mut ctx = CxxContext {
        vtbl: &CXX_VTBL.0,
        requests: 0,
    };
    let ctx_ptr: *mut CxxContext = &mut ctx;
    let mut feed_cxx = |sig: &[u8]| {
        // SAFETY: `sig.len()` readable bytes; the context object outlives the call.
        unsafe {
            SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal(
                null_mut(),
                sig.as_ptr().cast(),
                sig.len() as c_int,
                ctx_ptr.cast(),
            )
        }
    };
    // SAFETY: a valid identity, no options.
    let client2 = unsafe { SteamAPI_ISteamNetworkingSockets_ConnectP2P(s, &me, 0, 0, null()) };
    assert_ne!(client2, 0);
    assert_eq!(
        CREATES.lock().unwrap().as_slice(),
        [("str:self".to_owned(), 0, 0)]
    );
    pump("the second request", &mut feed_cxx, || {
        REQUESTS.lock().unwrap().len() == 2
    });
    let server2 = REQUESTS.lock().unwrap()[1].0;
    pump("both connected again", &mut feed_cxx, || {
        connected(client2) && connected(server2)
    });
    // SAFETY: the context is no longer used by the library.
    assert_eq!(unsafe { (*ctx_ptr).requests }, 1);
    exchange(server2, client2, b"default signaling", &mut feed_cxx);
    close(client2);
    close(server2);
    assert!(SteamAPI_ISteamNetworkingSockets_CloseListenSocket(
        s, listen
    ));

    // Every signaling object is released once its connection is gone (after FinWait).
    for _ in 0..1_000 {
        if RELEASED.load(Ordering::SeqCst) >= 5 {
            break;
        }
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(s);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        RELEASED.load(Ordering::SeqCst),
        5,
        "1 failed + 4 connections"
    );
    GameNetworkingSockets_Kill();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(RELEASED.load(Ordering::SeqCst), 5, "no second release");
}
