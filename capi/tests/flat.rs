//! The flat C calls, called as a C program would (raw pointers, C strings, callbacks), in
//! one process: an echo over UDP on 127.0.0.1 with a status callback that accepts, allocated
//! messages, lanes and a close with linger; then misuse (null pointers, invalid handles,
//! double release, unterminated strings), which must fail with the documented values and
//! never crash. One test function: the library has one instance per process.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::ffi::{CString, c_char};
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use std::time::Duration;

use GameNetworkingSockets::instance::*;
use GameNetworkingSockets::introspect::*;
use GameNetworkingSockets::message::{
    SteamAPI_ISteamNetworkingUtils_AllocateMessage, double_releases,
};
use GameNetworkingSockets::sockets::*;
use GameNetworkingSockets::types::*;

/// A status change the callback saw: (conn, old state, new state, end reason, debug).
type Event = (u32, i32, i32, i32, String);

/// Status changes seen by the callback.
static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());
/// Lines the debug output function received: (GNS output type, text).
static LOG: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_debug(kind: i32, text: *const c_char) {
    // SAFETY: the library passes a NUL-terminated line valid for the call.
    let text = unsafe { std::ffi::CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned();
    LOG.lock().unwrap().push((kind, text));
}

/// The poll group the callback puts accepted connections in.
static GROUP: Mutex<u32> = Mutex::new(0);

unsafe extern "C" fn on_status(ev: *mut SteamNetConnectionStatusChangedCallback_t) {
    // SAFETY: the library passes a valid struct for the duration of the call.
    let ev = unsafe { *ev };
    let info = ev.m_info;
    let state = info.m_eState;
    let debug = read_c_chars(&info.m_szEndDebug);
    EVENTS
        .lock()
        .unwrap()
        .push((ev.m_hConn, ev.m_eOldState, state, info.m_eEndReason, debug));
    if info.m_hListenSocket != 0 && state == k_ESteamNetworkingConnectionState_Connecting {
        let s = null_mut();
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_AcceptConnection(s, ev.m_hConn),
            k_EResultOK
        );
        let group = *GROUP.lock().unwrap();
        assert!(SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(
            s, ev.m_hConn, group
        ));
    }
}

fn callback_option() -> SteamNetworkingConfigValue_t {
    let f: unsafe extern "C" fn(*mut SteamNetConnectionStatusChangedCallback_t) = on_status;
    SteamNetworkingConfigValue_t {
        m_eValue: k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged,
        m_eDataType: k_ESteamNetworkingConfig_Ptr,
        m_val: SteamNetworkingConfigValue_t_Value {
            m_ptr: f as *mut std::ffi::c_void,
        },
    }
}

/// Runs callbacks until `done`, for at most about 10 s (5,000 rounds of 2 ms).
fn pump(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        if done() {
            return;
        }
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(null_mut());
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("timed out waiting for {what}");
}

fn state_of(conn: u32) -> i32 {
    let mut info = SteamNetConnectionInfo_t::zeroed();
    // SAFETY: valid out pointer.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(null_mut(), conn, &mut info)
    });
    info.m_eState
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn flat_calls_echo_and_survive_misuse() {
    let s = null_mut();
    let mut err = [0 as c_char; 1024];
    assert!(
        // SAFETY: null identity is allowed; the buffer is a SteamNetworkingErrMsg.
        unsafe { GameNetworkingSockets_Init(null(), err.as_mut_ptr()) },
        "{}",
        read_c_chars(&err)
    );

    // Sockworks' log events at GNS's Msg detail and above reach the C function.
    GameNetworkingSockets::utils::SteamAPI_ISteamNetworkingUtils_SetDebugOutputFunction(
        s,
        k_ESteamNetworkingSocketsDebugOutputType_Msg,
        Some(on_debug),
    );

    // --- echo ---------------------------------------------------------------------------
    *GROUP.lock().unwrap() = SteamAPI_ISteamNetworkingSockets_CreatePollGroup(s);
    let port = free_port();
    let addr =
        SteamNetworkingIPAddr::from_socket_addr(format!("127.0.0.1:{port}").parse().unwrap());
    let opts = [callback_option()];
    // SAFETY: valid address and a one-element options array.
    let listen = unsafe {
        SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(s, &addr, 1, opts.as_ptr())
    };
    assert_ne!(listen, 0);
    let mut bound = SteamNetworkingIPAddr::zeroed();
    // SAFETY: valid out pointer.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_GetListenSocketAddress(s, listen, &mut bound)
    });
    assert_eq!(bound.to_socket_addr().port(), port);

    // SAFETY: as above.
    let client =
        unsafe { SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(s, &addr, 1, opts.as_ptr()) };
    assert_ne!(client, 0);
    pump("connected", || {
        state_of(client) == k_ESteamNetworkingConnectionState_Connected
    });
    let server = pump_server_conn(client);

    {
        let log = LOG.lock().unwrap();
        assert!(
            log.iter().any(
                |(kind, text)| *kind == k_ESteamNetworkingSocketsDebugOutputType_Msg
                    && text.contains("connected")
            ),
            "no 'connected' line in the debug output: {log:?}"
        );
        assert!(
            log.iter()
                .all(|(kind, _)| *kind <= k_ESteamNetworkingSocketsDebugOutputType_Msg),
            "output above the chosen detail level: {log:?}"
        );
    }

    // Two lanes; messages on lane 1 come back on lane 1, reliable flag kept.
    let (prio, weights) = ([0i32, 0], [1u16, 3]);
    // SAFETY: arrays of the stated length.
    let r = unsafe {
        SteamAPI_ISteamNetworkingSockets_ConfigureConnectionLanes(
            s,
            client,
            2,
            prio.as_ptr(),
            weights.as_ptr(),
        )
    };
    assert_eq!(r, k_EResultOK);
    const N: usize = 200;
    let mut msgs: Vec<*mut SteamNetworkingMessage_t> = (0..N)
        .map(|i| {
            let payload = format!("message {i:04}");
            let m = SteamAPI_ISteamNetworkingUtils_AllocateMessage(s, payload.len() as i32);
            // SAFETY: AllocateMessage returned a message with a buffer of that size.
            unsafe {
                std::ptr::copy_nonoverlapping(payload.as_ptr(), (*m).m_pData.cast(), payload.len());
                (*m).m_conn = client;
                (*m).m_nFlags = k_nSteamNetworkingSend_Reliable;
                (*m).m_idxLane = 1;
                (*m).m_nUserData = i as i64;
            }
            m
        })
        .collect();
    let mut results = vec![0i64; N];
    // SAFETY: N allocated messages and room for N results.
    unsafe {
        SteamAPI_ISteamNetworkingSockets_SendMessages(
            s,
            N as i32,
            msgs.as_mut_ptr(),
            results.as_mut_ptr(),
            true,
        )
    };
    assert!(
        results.iter().all(|r| *r > 0),
        "message numbers: {results:?}"
    );

    // The server echoes what its poll group receives.
    let group = *GROUP.lock().unwrap();
    let mut echoed = 0;
    let mut out = [null_mut::<SteamNetworkingMessage_t>(); 64];
    pump("server receives", || {
        // SAFETY: room for 64 pointers.
        let n = unsafe {
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(
                s,
                group,
                out.as_mut_ptr(),
                64,
            )
        };
        for &m in &out[..n.max(0) as usize] {
            // SAFETY: received messages are valid until released.
            let msg = unsafe { &*m };
            assert_eq!(msg.m_conn, server);
            assert_eq!(msg.m_idxLane, 1);
            assert_ne!(msg.m_nFlags & k_nSteamNetworkingSend_Reliable, 0);
            // SAFETY: m_pData holds m_cbSize bytes.
            let data = unsafe {
                std::slice::from_raw_parts(msg.m_pData.cast::<u8>(), msg.m_cbSize as usize)
            };
            assert_eq!(data, format!("message {echoed:04}").as_bytes());
            let mut num = 0i64;
            // SAFETY: valid data pointer and out pointer.
            let r = unsafe {
                SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
                    s,
                    server,
                    msg.m_pData,
                    msg.m_cbSize as u32,
                    k_nSteamNetworkingSend_Reliable,
                    &mut num,
                )
            };
            assert_eq!(r, k_EResultOK);
            // SAFETY: the message is ours to release, once.
            unsafe { (msg.m_pfnRelease.unwrap())(m) };
            echoed += 1;
        }
        echoed == N
    });
    let mut back = 0;
    pump("client receives the echo", || {
        // SAFETY: room for 64 pointers.
        let n = unsafe {
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(
                s,
                client,
                out.as_mut_ptr(),
                64,
            )
        };
        for &m in &out[..n.max(0) as usize] {
            // SAFETY: as above.
            let msg = unsafe { &*m };
            // SAFETY: as above.
            let data = unsafe {
                std::slice::from_raw_parts(msg.m_pData.cast::<u8>(), msg.m_cbSize as usize)
            };
            assert_eq!(data, format!("message {back:04}").as_bytes());
            assert!(msg.m_usecTimeReceived > 0);
            // SAFETY: the flat release, once.
            unsafe { GameNetworkingSockets::vtable::SteamAPI_SteamNetworkingMessage_t_Release(m) };
            back += 1;
        }
        back == N
    });

    // Close with linger: the server sees ClosedByPeer with the reason and text.
    let bye = CString::new("bye").unwrap();
    // SAFETY: a C string.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_CloseConnection(s, client, 1000, bye.as_ptr(), true)
    });
    pump("ClosedByPeer", || {
        EVENTS.lock().unwrap().iter().any(|e| {
            e.0 == server
                && e.2 == k_ESteamNetworkingConnectionState_ClosedByPeer
                && e.3 == 1000
                && e.4 == "bye"
        })
    });
    // SAFETY: null debug text is allowed.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_CloseConnection(s, server, 0, null(), false)
    });
    assert!(SteamAPI_ISteamNetworkingSockets_CloseListenSocket(
        s, listen
    ));

    // --- misuse -------------------------------------------------------------------------
    let bad = 12345;
    let byte = 0u8;
    // SAFETY: the pointers below are valid, or deliberately null where the library
    // promises to check.
    unsafe {
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
                s,
                bad,
                (&raw const byte).cast(),
                1,
                0,
                null_mut()
            ),
            k_EResultInvalidParam
        );
        assert!(!SteamAPI_ISteamNetworkingSockets_CloseConnection(
            s,
            bad,
            0,
            null(),
            false
        ));
        assert!(!SteamAPI_ISteamNetworkingSockets_CloseListenSocket(s, bad));
        let mut info = SteamNetConnectionInfo_t::zeroed();
        assert!(!SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(
            s, bad, &mut info
        ));
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(
                s,
                bad,
                out.as_mut_ptr(),
                8
            ),
            -1
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(
                s,
                bad,
                out.as_mut_ptr(),
                8
            ),
            -1
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_AcceptConnection(s, bad),
            k_EResultInvalidParam
        );
        assert!(!SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(
            s, bad, group
        ));
        assert!(!SteamAPI_ISteamNetworkingSockets_DestroyPollGroup(s, bad));
        // Null address / out pointers fail instead of crashing.
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(s, null(), 0, null()),
            0
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(s, null(), 0, null()),
            0
        );
        // A non-empty options array at a null pointer is refused.
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(s, &addr, 3, null()),
            0
        );
        let mut status = SteamNetConnectionRealTimeStatus_t::zeroed();
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_GetConnectionRealTimeStatus(
                s,
                bad,
                &mut status,
                0,
                null_mut()
            ),
            k_EResultNoConnection
        );
        // A message released twice: the second release is detected and ignored.
        let before = double_releases();
        let m = SteamAPI_ISteamNetworkingUtils_AllocateMessage(s, 16);
        ((*m).m_pfnRelease.unwrap())(m);
        ((*m).m_pfnRelease.unwrap())(m);
        assert_eq!(double_releases(), before + 1);
        // Negative sizes are refused.
        assert!(SteamAPI_ISteamNetworkingUtils_AllocateMessage(s, -1).is_null());
        // A null message in SendMessages gets a failure result, the rest are sent.
        let mut batch = [
            null_mut(),
            SteamAPI_ISteamNetworkingUtils_AllocateMessage(s, 1),
        ];
        (*batch[1]).m_conn = bad;
        let mut res = [0i64; 2];
        SteamAPI_ISteamNetworkingSockets_SendMessages(
            s,
            2,
            batch.as_mut_ptr(),
            res.as_mut_ptr(),
            true,
        );
        assert_eq!(
            res,
            [
                -i64::from(k_EResultInvalidParam),
                -i64::from(k_EResultInvalidParam)
            ]
        );
        // A long name is cut to the caller's buffer; an unterminated one is read up to the
        // library's bound, never past it, and ignored.
        let c2 = SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(s, &addr, 0, null());
        let long = CString::new("n".repeat(100)).unwrap();
        SteamAPI_ISteamNetworkingSockets_SetConnectionName(s, c2, long.as_ptr());
        let mut name = [0 as c_char; 16];
        assert!(SteamAPI_ISteamNetworkingSockets_GetConnectionName(
            s,
            c2,
            name.as_mut_ptr(),
            16
        ));
        assert_eq!(
            read_c_chars(&name),
            "n".repeat(15),
            "cut to the caller's buffer"
        );
        let unterminated = vec![b'x' as c_char; 4096];
        SteamAPI_ISteamNetworkingSockets_SetConnectionName(s, c2, unterminated.as_ptr());
        assert!(SteamAPI_ISteamNetworkingSockets_GetConnectionName(
            s,
            c2,
            name.as_mut_ptr(),
            16
        ));
        assert_eq!(read_c_chars(&name), "", "unterminated text is not a name");
        assert!(SteamAPI_ISteamNetworkingSockets_CloseConnection(
            s,
            c2,
            0,
            null(),
            false
        ));
    }

    // Kill, then everything fails cleanly; Init again works.
    GameNetworkingSockets_Kill();
    assert_eq!(SteamAPI_ISteamNetworkingSockets_CreatePollGroup(s), 0);
    // SAFETY: valid pointers.
    unsafe {
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(s, &addr, 0, null()),
            0
        );
        assert!(GameNetworkingSockets_Init(null(), err.as_mut_ptr()));
    }
    GameNetworkingSockets_Kill();
}

/// The server side of `client`: the accepted connection the callback saw.
fn pump_server_conn(client: u32) -> u32 {
    let mut server = 0;
    pump("server connected", || {
        server = EVENTS
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.0 != client && e.2 == k_ESteamNetworkingConnectionState_Connected)
            .map_or(0, |e| e.0);
        server != 0
    });
    server
}
