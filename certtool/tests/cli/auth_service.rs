//! `InitAuthentication` against the real CA service: `sockworks-cert serve` started here, a
//! Sockworks client that fetches its certificate from it (the status walks Attempting →
//! Current and the callback fires), then is accepted with its identity by a server that
//! requires trusted certificates; a bad token ends in Failed with the service's reason.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks::engine::crypto::{TrustedCa, pem};
use sockworks::engine::shard::Clock;
use sockworks::{
    AuthStatus, Availability, CaClientConfig, ConfigValue, Connection, ConnectionState,
    ListenSocket, Sockets, SocketsConfig, StatusChanged, TrustConfig, info_flags,
};

use super::serve::{ADMIN_TOKEN, PLAYER_TOKEN, Server, setup, start};

/// Longest any wait here lasts.
const WAIT: Duration = Duration::from_secs(20);

type Log<T> = Arc<Mutex<Vec<T>>>;

/// An instance of `identity` that fetches from `server` with `token`, trusting the test CA,
/// recording its authentication and connection status changes.
fn instance(
    identity: &str,
    server: &Server,
    token: &str,
    trust: TrustConfig,
) -> (Sockets, Log<AuthStatus>, Log<StatusChanged>) {
    let mut ca = CaClientConfig::new(format!("http://{}", server.addr), token);
    ca.timeout = Duration::from_secs(10);
    let s = Sockets::with_config(SocketsConfig {
        shards: 1,
        identity: Some(identity.parse().unwrap()),
        trust,
        ca: Some(ca),
        ..SocketsConfig::default()
    })
    .unwrap();
    let auth: Log<AuthStatus> = Arc::default();
    let conns: Log<StatusChanged> = Arc::default();
    let (a, c) = (auth.clone(), conns.clone());
    assert!(
        s.set_global_config_value(&ConfigValue::AuthStatusChanged(Arc::new(
            move |st: &AuthStatus| a.lock().unwrap().push(st.clone())
        )))
    );
    assert!(
        s.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
            move |ev: &StatusChanged| c.lock().unwrap().push(ev.clone())
        )))
    );
    (s, auth, conns)
}

/// The test CA (the service's key) as a trust setting.
fn trust(dir: &std::path::Path, require: bool) -> TrustConfig {
    let line = std::fs::read_to_string(dir.join("ca.key.pub")).unwrap();
    TrustConfig {
        cas: vec![TrustedCa::new(pem::read_public_key(&line).unwrap())],
        require_trusted: require,
        ..TrustConfig::default()
    }
}

/// Runs callbacks on `s` until `pred` holds or [`WAIT`] passes.
fn wait_until(s: &[&Sockets], mut pred: impl FnMut() -> bool) -> bool {
    let clock = Clock::new();
    let start = clock.now();
    while clock.now().saturating_since(start) < WAIT {
        let seen: Vec<u64> = s.iter().map(|x| x.activity()).collect();
        for x in s {
            x.run_callbacks();
        }
        if pred() {
            return true;
        }
        for (x, g) in s.iter().zip(seen) {
            x.wait_for_activity(g, Duration::from_millis(20));
        }
    }
    false
}

/// `client` connects to a fresh listen socket of `server`, which accepts; both ends reach
/// Connected (bounded). Returns (client's handle, server's handle).
fn connect(
    server: &Sockets,
    server_conns: &Log<StatusChanged>,
    client: &Sockets,
) -> (Connection, Connection) {
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = server.get_listen_socket_address(listen).unwrap();
    let c = client.connect_by_ip_address(addr, &[]);
    let mut s = Connection::INVALID;
    assert!(wait_until(&[server, client], || {
        if s == Connection::INVALID
            && let Some(ev) = server_conns
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.info.state == ConnectionState::Connecting)
        {
            s = ev.conn;
            server.accept_connection(s);
        }
        client.connection_state(c) == ConnectionState::Connected
            && server.connection_state(s) == ConnectionState::Connected
    }));
    (c, s)
}

/// Asks for a certificate and waits for the outcome.
fn authenticate(s: &Sockets) -> AuthStatus {
    assert_eq!(s.init_authentication(), Availability::Attempting);
    wait_until(&[s], || {
        !matches!(
            s.get_authentication_status().avail,
            Availability::Attempting | Availability::NeverTried
        )
    });
    s.get_authentication_status()
}

#[test]
fn init_authentication_fetches_a_cert_that_a_trusting_server_accepts() {
    let dir = setup();
    let service = start(dir.path(), &[]);
    let (server, server_auth, server_conns) = instance(
        "str:game-server",
        &service,
        ADMIN_TOKEN,
        trust(dir.path(), true),
    );
    let (client, client_auth, _) = instance(
        "str:player-one",
        &service,
        PLAYER_TOKEN,
        trust(dir.path(), false),
    );
    assert_eq!(
        client.get_authentication_status().avail,
        Availability::NeverTried
    );

    let st = authenticate(&client);
    assert_eq!(st.avail, Availability::Current, "{st:?}");
    let seen: Vec<Availability> = client_auth
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.avail)
        .collect();
    assert_eq!(seen, [Availability::Attempting, Availability::Current]);
    assert_eq!(authenticate(&server).avail, Availability::Current);
    assert!(!server_auth.lock().unwrap().is_empty());

    let (c, s) = connect(&server, &server_conns, &client);
    let si = server.get_connection_info(s).unwrap();
    assert_eq!(si.identity_remote, Some("str:player-one".parse().unwrap()));
    assert_eq!(si.flags & info_flags::UNAUTHENTICATED, 0);
    let ci = client.get_connection_info(c).unwrap();
    assert_eq!(ci.identity_remote, Some("str:game-server".parse().unwrap()));
}

#[test]
fn a_bad_token_ends_in_failed_with_the_reason() {
    let dir = setup();
    let service = start(dir.path(), &[]);
    let (client, auth, _) = instance(
        "str:player-two",
        &service,
        "not-a-known-token-0123456789",
        trust(dir.path(), false),
    );
    let st = authenticate(&client);
    assert_eq!(st.avail, Availability::Failed, "{st:?}");
    assert!(st.debug.contains("401"), "{}", st.debug);
    assert_eq!(
        auth.lock().unwrap().last().map(|e| e.avail),
        Some(Availability::Failed)
    );
    // Once failed, InitAuthentication tries again (GNS): Attempting.
    assert_eq!(client.init_authentication(), Availability::Attempting);
}

#[test]
fn a_short_lived_certificate_is_renewed_before_it_expires() {
    // Six-second certificates: renewed at two thirds of their life. After seven seconds the
    // first one has expired, so a server that requires trusted certificates accepts the
    // client only if it renewed.
    let dir = setup();
    let service = start(dir.path(), &["--lifetime", "6", "--backdate", "0"]);
    let (server, _, server_conns) = instance(
        "str:game-server",
        &service,
        ADMIN_TOKEN,
        trust(dir.path(), true),
    );
    let (client, client_auth, _) = instance(
        "str:player-three",
        &service,
        PLAYER_TOKEN,
        trust(dir.path(), false),
    );
    assert_eq!(authenticate(&client).avail, Availability::Current);
    assert_eq!(authenticate(&server).avail, Availability::Current);
    let clock = Clock::new();
    let start = clock.now();
    // Bounded: seven seconds of callbacks.
    wait_until(&[&server, &client], || {
        clock.now().saturating_since(start) > Duration::from_secs(7)
    });
    assert_eq!(
        client.get_authentication_status().avail,
        Availability::Current,
        "{:?}",
        client_auth.lock().unwrap()
    );

    let (_, s) = connect(&server, &server_conns, &client);
    let si = server.get_connection_info(s).unwrap();
    assert_eq!(
        si.identity_remote,
        Some("str:player-three".parse().unwrap())
    );
    assert_eq!(si.flags & info_flags::UNAUTHENTICATED, 0);
}
