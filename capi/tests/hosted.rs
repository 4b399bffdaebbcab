//! Hosted servers and relay tickets through the C ABI, as a C program makes the calls: the
//! instance is a hosted server (SDR's environment) that signs its game-coordinator login into
//! the SDK's `SteamDatagramGameCoordinatorServerLogin`, and a client that caches a ticket and
//! connects through an in-process relay to a hosted server built on the Rust API. A process of
//! its own: the library has one instance per process.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::net::SocketAddr;
use std::ptr::{null, null_mut};
use std::sync::mpsc;
use std::time::Duration;

use GameNetworkingSockets::auth::*;
use GameNetworkingSockets::identity::SteamNetworkingIdentity_ParseString;
use GameNetworkingSockets::instance::GameNetworkingSockets_Init;
use GameNetworkingSockets::introspect::SteamAPI_ISteamNetworkingSockets_GetConnectionInfo;
use GameNetworkingSockets::sockets::{
    SteamAPI_ISteamNetworkingSockets_RunCallbacks,
    SteamAPI_ISteamNetworkingSockets_SendMessageToConnection,
};
use GameNetworkingSockets::types::*;
use GameNetworkingSockets::unsupported::*;
use prost::Message;
use sockworks::engine::crypto::keys::IdentityKey;
use sockworks::engine::shard::Clock;
use sockworks_engine::crypto::TrustedCa;
use sockworks_engine::crypto::ca::{CaKey, IssuePolicy, issue_for_request};
use sockworks_engine::wire::proto::CertificateRequest;

/// The Steamworks SDK's `SteamDatagramGameCoordinatorServerLogin`, written out here from the
/// SDK's header independently of the library's own copy.
#[repr(C)]
struct SdkLogin {
    identity: SteamNetworkingIdentity,
    routing_size: c_int,
    routing: [u8; 128],
    app_id: u32,
    rtime: u32,
    cb_app_data: c_int,
    app_data: [u8; 2048],
}

fn identity(text: &str) -> SteamNetworkingIdentity {
    let mut id = SteamNetworkingIdentity::zeroed();
    let t = CString::new(text).unwrap();
    // SAFETY: valid pointers and the struct's own size.
    assert!(unsafe { SteamNetworkingIdentity_ParseString(&mut id, size_of_val(&id), t.as_ptr()) });
    id
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_now() -> u64 {
    sockworks_relay::clock::unix_now()
}

/// GetCertificateRequest, a CA's signature, SetCertificate: the instance then has a
/// CA-signed certificate to sign its login with. Returns the CA.
fn install_certificate(s: *mut c_void, me: &SteamNetworkingIdentity) -> CaKey {
    let mut err = [0 as c_char; 1024];
    let mut blob = vec![0u8; 4096];
    let mut size = blob.len() as c_int;
    // SAFETY: a buffer of the stated size.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_GetCertificateRequest(
            s,
            &mut size,
            blob.as_mut_ptr().cast(),
            err.as_mut_ptr(),
        )
    });
    let request = CertificateRequest::decode(&blob[..size as usize]).unwrap();
    let ca = CaKey::from_seed([21; 32]);
    let policy = IssuePolicy {
        app_ids: vec![0],
        pop_ids: None,
        time_created: (unix_now() - 3600) as u32,
        time_expiry: (unix_now() + 86_400) as u32,
        identity: me.to_identity(),
    };
    let cert = issue_for_request(&ca, &request, &policy)
        .unwrap()
        .encode_to_vec();
    // SAFETY: the certificate's bytes.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_SetCertificate(
            s,
            cert.as_ptr().cast(),
            cert.len() as c_int,
            err.as_mut_ptr(),
        )
    });
    ca
}

/// A relay on 127.0.0.1 trusting tickets signed by `ca`, running until the process ends.
fn relay(ca: &IdentityKey, routing_key: [u8; 32]) -> SocketAddr {
    let trust = sockworks_relay::ticket::trust_of(&[ca.public_bytes()]);
    let cfg = sockworks_relay::RelayConfig::new(
        trust,
        sockworks_relay::RoutingKey::new(&routing_key),
        "fra",
        [3; 32],
    );
    let listener = sockworks_relay::io::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = {
        use sockworks::engine::driver::Driver as _;
        listener.local_addr().unwrap()
    };
    std::thread::spawn(move || {
        let _ =
            sockworks_relay::io::run(sockworks_relay::Relay::new(cfg), listener, None, |_, _| {});
    });
    addr
}

#[test]
fn a_c_program_signs_its_login_and_reaches_a_hosted_server_through_a_relay() {
    let s = null_mut::<c_void>();
    let routing_key = [0x5au8; 32];
    let ticket_ca = IdentityKey::from_seed([22; 32]);
    let relay_addr = relay(&ticket_ca, routing_key);
    let port = free_port();
    // SAFETY: set before any thread of this test process reads the environment (the relay's
    // thread never does), as a launcher would set SDR's variables.
    unsafe {
        std::env::set_var("SDR_LISTEN_PORT", port.to_string());
        std::env::set_var("SDR_POPID", "fra");
        std::env::set_var("SOCKWORKS_PUBLIC_ADDR", format!("127.0.0.1:{port}"));
        std::env::set_var(
            "SOCKWORKS_RELAY_ROUTING_KEY",
            routing_key.map(|b| format!("{b:02x}")).concat(),
        );
        std::env::set_var("SOCKWORKS_RELAYS", relay_addr.to_string());
    }
    let me = identity("str:capi-hosted");
    let mut err = [0 as c_char; 1024];
    // SAFETY: a valid identity and error buffer.
    assert!(unsafe { GameNetworkingSockets_Init(&me, err.as_mut_ptr()) });

    // --- The game-coordinator login, into the SDK's struct. ---
    // SAFETY: a zeroed SDK struct is a valid (empty) login.
    let mut login: SdkLogin = unsafe { std::mem::zeroed() };
    login.app_data[..7].copy_from_slice(b"lobby-7");
    login.cb_app_data = 7;
    let mut blob = vec![0u8; 4096];
    let mut size = blob.len() as c_int;
    let call = |login: *mut SdkLogin, size: *mut c_int, blob: *mut u8| {
        // SAFETY: each argument is null or valid for the call, as the test chooses.
        unsafe {
            SteamAPI_ISteamNetworkingSockets_GetGameCoordinatorServerLogin(
                s,
                login.cast(),
                size,
                blob.cast(),
            )
        }
    };
    // Without a CA-signed certificate there is nothing to sign with (GNS: not logged on).
    assert_eq!(
        call(&mut login, &mut size, blob.as_mut_ptr()),
        sockworks::EResult::InvalidState.code()
    );
    let cert_ca = install_certificate(s, &me);
    assert_eq!(
        call(&mut login, &mut size, blob.as_mut_ptr()),
        sockworks::EResult::Ok.code()
    );
    let trust = {
        let mut t = sockworks_engine::crypto::TrustStore::new();
        t.add_ca(TrustedCa::new(cert_ca.public_key()));
        t
    };
    let verified =
        sockworks_relay::login::verify(&blob[..size as usize], &trust, unix_now(), 60).unwrap();
    assert_eq!(verified.identity, "str:capi-hosted");
    assert_eq!(verified.app_data, b"lobby-7");
    // The struct now names the server, its routing blob and the time, as the blob does.
    assert_eq!(login.identity.to_identity(), me.to_identity());
    assert_eq!(
        &login.routing[..login.routing_size as usize],
        &verified.routing[..]
    );
    assert_eq!(&login.routing[..4], b"fra\0");
    assert_eq!(u64::from(login.rtime), verified.rtime);
    // Misuse: null struct or size, a blob buffer too small, app data over 2,048 bytes.
    let invalid = sockworks::EResult::InvalidParam.code();
    assert_eq!(call(null_mut(), &mut size, blob.as_mut_ptr()), invalid);
    assert_eq!(call(&mut login, null_mut(), blob.as_mut_ptr()), invalid);
    let mut tiny: c_int = 8;
    assert_eq!(call(&mut login, &mut tiny, blob.as_mut_ptr()), invalid);
    login.cb_app_data = 5000;
    size = blob.len() as c_int;
    assert_eq!(call(&mut login, &mut size, blob.as_mut_ptr()), invalid);

    // --- The client side: a ticket, then a connection through the relay. ---
    let server_id = sockworks::engine::wire::identity::Identity::parse("str:rust-hosted").unwrap();
    let server_port = free_port();
    let server = sockworks::Sockets::with_config(sockworks::SocketsConfig {
        shards: 1,
        identity: Some(server_id.clone()),
        hosted: Some(sockworks::HostedConfig {
            listen_port: server_port,
            pop: "fra".into(),
            public_addr: format!("127.0.0.1:{server_port}").parse().unwrap(),
            routing_key: sockworks::RoutingKey::new(&routing_key),
        }),
        ..sockworks::SocketsConfig::default()
    })
    .unwrap();
    let (tx, events) = mpsc::channel();
    let cb = sockworks::ConfigValue::ConnectionStatusChanged(std::sync::Arc::new(
        move |e: &sockworks::StatusChanged| {
            let _ = tx.send(e.clone());
        },
    ));
    assert_ne!(
        server.create_hosted_dedicated_server_listen_socket(0, &[cb]),
        sockworks::ListenSocket::INVALID
    );
    let ticket = sockworks_relay::ticket::sign(
        &sockworks_relay::RelayAuthTicket {
            gameserver: "str:rust-hosted".into(),
            authorized_client: "str:capi-hosted".into(),
            public_ip: None,
            expiry_unix: unix_now() + 3600,
            routing: server.get_hosted_dedicated_server_address().unwrap(),
            app_id: 0,
            restrict_to_vport: -1,
            extra: vec![],
        },
        &ticket_ca,
    )
    .unwrap();
    let target = identity("str:rust-hosted");
    let other = identity("str:nobody");
    // SAFETY: every call below gets pointers to live values of the stated sizes, or null.
    unsafe {
        assert!(!SteamAPI_ISteamNetworkingSockets_ReceivedRelayAuthTicket(
            s,
            b"junk".as_ptr().cast(),
            4,
            null_mut()
        ));
        assert!(!SteamAPI_ISteamNetworkingSockets_ReceivedRelayAuthTicket(
            s,
            null(),
            40,
            null_mut()
        ));
        assert!(SteamAPI_ISteamNetworkingSockets_ReceivedRelayAuthTicket(
            s,
            ticket.as_ptr().cast(),
            ticket.len() as c_int,
            null_mut()
        ));
        let left = SteamAPI_ISteamNetworkingSockets_FindRelayAuthTicketForServer(
            s,
            &target,
            0,
            null_mut(),
        );
        assert!((3590..=3600).contains(&left), "{left} s left");
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_FindRelayAuthTicketForServer(s, &other, 0, null_mut()),
            0
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_FindRelayAuthTicketForServer(s, null(), 0, null_mut()),
            0
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_ConnectToHostedDedicatedServer(
                s,
                &other,
                0,
                0,
                null()
            ),
            0,
            "no ticket for that server"
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingSockets_ConnectToHostedDedicatedServer(
                s,
                null(),
                0,
                0,
                null()
            ),
            0
        );
    }
    // SAFETY: a valid identity, no options.
    let conn = unsafe {
        SteamAPI_ISteamNetworkingSockets_ConnectToHostedDedicatedServer(s, &target, 0, 0, null())
    };
    assert_ne!(conn, 0);
    let clock = Clock::new();
    let start = clock.now();
    let mut s_conn = None;
    let mut info = SteamNetConnectionInfo_t::zeroed();
    loop {
        server.run_callbacks();
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(s);
        while let Ok(e) = events.try_recv() {
            if e.info.state == sockworks::ConnectionState::Connecting {
                assert_eq!(server.accept_connection(e.conn), sockworks::EResult::Ok);
                s_conn = Some(e.conn);
            }
        }
        // SAFETY: a writable info struct.
        assert!(unsafe { SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(s, conn, &mut info) });
        if info.m_eState == k_ESteamNetworkingConnectionState_Connected {
            break;
        }
        assert!(
            clock.now().saturating_since(start) < Duration::from_secs(10),
            "not connected through the relay"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let payload = b"from C, through the relay";
    // SAFETY: the payload's bytes and length; no message number wanted.
    let r = unsafe {
        SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
            s,
            conn,
            payload.as_ptr().cast(),
            payload.len() as u32,
            sockworks::send_flags::RELIABLE,
            null_mut(),
        )
    };
    assert_eq!(r, sockworks::EResult::Ok.code());
    let s_conn = s_conn.unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(clock.now().saturating_since(start) < Duration::from_secs(10));
        server.receive_messages_on_connection(s_conn, &mut got, 4);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(got[0].data, payload);
}
