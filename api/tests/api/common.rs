//! Shared helpers for the API tests: an instance with a callback that records every status
//! change, and bounded waits that sleep on the instances' activity (a message or a status
//! change arriving), never for a fixed time.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers: a failed lock is a failed test"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks::engine::shard::Clock;

use sockworks::{
    ConfigValue, Connection, ConnectionState, ListenSocket, Message, Sockets, SocketsConfig,
    StatusChanged,
};

/// Status changes seen by `run_callbacks`.
pub(crate) type Seen = Arc<Mutex<Vec<StatusChanged>>>;

/// An instance whose global status callback appends to the returned list.
pub(crate) fn instance(shards: usize) -> (Sockets, Seen) {
    instance_seeded(shards, 7)
}

/// Longest one wait for activity lasts before the caller looks again: a condition may also
/// change without activity in these instances (another thread's work, acks draining a queue).
const RECHECK: Duration = Duration::from_millis(20);

/// The activity generations of `s`, taken before looking at their queues.
pub(crate) fn generations(s: &[&Sockets]) -> Vec<u64> {
    s.iter().map(|x| x.activity()).collect()
}

/// Sleeps until one of `s` had activity since `seen` (from [`generations`]) or [`RECHECK`]
/// passes. Several instances are waited on in short turns.
pub(crate) fn wait_activity(s: &[&Sockets], seen: &[u64]) {
    match s {
        [] => std::thread::yield_now(),
        [one] => {
            one.wait_for_activity(seen[0], RECHECK);
        }
        many => {
            let turn = RECHECK / many.len() as u32;
            for (x, &g) in many.iter().zip(seen) {
                if x.wait_for_activity(g, turn) != g {
                    return;
                }
            }
        }
    }
}

/// Runs callbacks until `pred` holds (true) or 10 s pass (false), sleeping on `s`'s activity
/// in between.
pub(crate) fn wait_until(s: &[&Sockets], mut pred: impl FnMut() -> bool) -> bool {
    let clock = Clock::new();
    let start = clock.now();
    while clock.now().saturating_since(start) < Duration::from_secs(10) {
        let seen = generations(s);
        for x in s {
            x.run_callbacks();
        }
        if pred() {
            return true;
        }
        wait_activity(s, &seen);
    }
    false
}

/// The first connection that reached `state` in `seen`.
pub(crate) fn first_in(seen: &Seen, state: ConnectionState) -> Option<Connection> {
    seen.lock()
        .unwrap()
        .iter()
        .find(|e| e.info.state == state)
        .map(|e| e.conn)
}

/// A listening server and a connected client; the server accepts from its callback list.
pub(crate) struct Link {
    pub server: Sockets,
    pub client: Sockets,
    pub server_seen: Seen,
    pub client_seen: Seen,
    pub listen: ListenSocket,
    pub s_conn: Connection,
    pub c_conn: Connection,
}

/// Connects a client instance to a server instance over 127.0.0.1 and accepts.
pub(crate) fn link(shards: usize, options: &[ConfigValue]) -> Link {
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
pub(crate) fn recv_n(s: &Sockets, conn: Connection, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    wait_until(&[s], || {
        s.receive_messages_on_connection(conn, &mut out, 1024);
        out.len() >= n
    });
    out
}

/// An instance with an explicit seed (handles of instances with different seeds do not
/// overlap) and the recording callback.
pub(crate) fn instance_seeded(shards: usize, seed: u64) -> (Sockets, Seen) {
    let s = Sockets::with_config(SocketsConfig {
        shards,
        seed: Some(seed),
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

/// Waits for an incoming connection not in `known` and accepts it.
pub(crate) fn accept_next(server: &Sockets, seen: &Seen, known: &[Connection]) -> Connection {
    let mut found = None;
    assert!(
        wait_until(&[server], || {
            found = seen
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.info.state == ConnectionState::Connecting && !known.contains(&e.conn))
                .map(|e| e.conn);
            found.is_some()
        }),
        "server saw a new connection"
    );
    let conn = found.unwrap();
    assert_eq!(server.accept_connection(conn), sockworks::EResult::Ok);
    conn
}

/// A server with `n` connections from one client instance.
pub(crate) struct Links {
    pub server: Sockets,
    pub client: Sockets,
    pub server_seen: Seen,
    pub client_seen: Seen,
    pub listen: ListenSocket,
    /// (client end, server end) of each connection.
    pub pairs: Vec<(Connection, Connection)>,
}

/// Connects `n` connections one after the other (so each server end is known) and waits
/// until all are connected.
pub(crate) fn links(
    server_shards: usize,
    client_shards: usize,
    n: usize,
    options: &[ConfigValue],
) -> Links {
    let (server, server_seen) = instance(server_shards);
    let (client, client_seen) = instance_seeded(client_shards, 11);
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), options);
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = server.get_listen_socket_address(listen).unwrap();
    let pairs = connect_n(&server, &server_seen, &client, addr, n, options);
    Links {
        server,
        client,
        server_seen,
        client_seen,
        listen,
        pairs,
    }
}

/// Connects `n` connections from `client` to `addr` (a listen socket of `server`, or a proxy
/// in front of one) one after the other, accepting each (so each server end is known), and
/// waits until all are connected. Returns (client end, server end) of each.
pub(crate) fn connect_n(
    server: &Sockets,
    server_seen: &Seen,
    client: &Sockets,
    addr: std::net::SocketAddr,
    n: usize,
    options: &[ConfigValue],
) -> Vec<(Connection, Connection)> {
    let mut pairs = Vec::new();
    let mut known: Vec<Connection> = server_seen.lock().unwrap().iter().map(|e| e.conn).collect();
    for _ in 0..n {
        let c = client.connect_by_ip_address(addr, options);
        assert_ne!(c, Connection::INVALID);
        let s = accept_next(server, server_seen, &known);
        known.push(s);
        pairs.push((c, s));
    }
    assert!(
        wait_until(&[server, client], || pairs.iter().all(|&(c, s)| {
            client.connection_state(c) == ConnectionState::Connected
                && server.connection_state(s) == ConnectionState::Connected
        })),
        "all connected"
    );
    pairs
}

/// The little-endian u32 at the start of a payload.
pub(crate) fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}
