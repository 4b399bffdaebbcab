//! Shared helpers for the API tests: an instance with a callback that records every status
//! change, and bounded waits (no sleeps longer than a poll step).

#![allow(dead_code, clippy::unwrap_used)] // test helpers: a failed lock is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks::engine::shard::Clock;

use sockworks::{
    ConfigValue, Connection, ConnectionState, ListenSocket, Message, Sockets, SocketsConfig,
    StatusChanged,
};

/// Status changes seen by `run_callbacks`.
pub type Seen = Arc<Mutex<Vec<StatusChanged>>>;

/// An instance whose global status callback appends to the returned list.
pub fn instance(shards: usize) -> (Sockets, Seen) {
    let s = Sockets::with_config(SocketsConfig {
        shards,
        seed: Some(7),
        ..SocketsConfig::default()
    })
    .expect("instance");
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    assert!(
        s.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
            move |ev: &StatusChanged| sink.lock().unwrap().push(ev.clone())
        )))
    );
    (s, seen)
}

/// Runs callbacks until `pred` holds (true) or 10 s pass (false).
pub fn wait_until(s: &[&Sockets], mut pred: impl FnMut() -> bool) -> bool {
    let clock = Clock::new();
    let start = clock.now();
    while clock.now().saturating_since(start) < Duration::from_secs(10) {
        for x in s {
            x.run_callbacks();
        }
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The first connection that reached `state` in `seen`.
pub fn first_in(seen: &Seen, state: ConnectionState) -> Option<Connection> {
    seen.lock()
        .unwrap()
        .iter()
        .find(|e| e.info.state == state)
        .map(|e| e.conn)
}

/// A listening server and a connected client; the server accepts from its callback list.
pub struct Link {
    pub server: Sockets,
    pub client: Sockets,
    pub server_seen: Seen,
    pub client_seen: Seen,
    pub listen: ListenSocket,
    pub s_conn: Connection,
    pub c_conn: Connection,
}

/// Connects a client instance to a server instance over 127.0.0.1 and accepts.
pub fn link(shards: usize, options: &[ConfigValue]) -> Link {
    let (server, server_seen) = instance(shards);
    let (client, client_seen) = instance(1);
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), options);
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = server.get_listen_socket_address(listen).unwrap();
    let c_conn = client.connect_by_ip_address(addr, options);
    assert_ne!(c_conn, Connection::INVALID);
    assert!(
        wait_until(&[&server], || first_in(
            &server_seen,
            ConnectionState::Connecting
        )
        .is_some()),
        "server saw the connection"
    );
    let s_conn = first_in(&server_seen, ConnectionState::Connecting).unwrap();
    assert_eq!(server.accept_connection(s_conn), sockworks::EResult::Ok);
    assert!(
        wait_until(&[&server, &client], || {
            client.connection_state(c_conn) == ConnectionState::Connected
                && server.connection_state(s_conn) == ConnectionState::Connected
        }),
        "both ends connected"
    );
    Link {
        server,
        client,
        server_seen,
        client_seen,
        listen,
        s_conn,
        c_conn,
    }
}

/// Receives on `conn` until `n` messages arrived (or 10 s pass).
pub fn recv_n(s: &Sockets, conn: Connection, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    wait_until(&[s], || {
        s.receive_messages_on_connection(conn, &mut out, 1024);
        out.len() >= n
    });
    out
}
