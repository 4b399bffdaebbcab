//! A real server loop on its own thread with real clients (the `game-networking-sockets`
//! crate's integration_tests, ported): echo, broadcast to several clients, connect and
//! disconnect events, and reliable ordered delivery.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::*;
use sockworks::engine::shard::Clock;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, ListenSocket, OutMessage, PollGroup,
    Sockets, send_flags,
};

/// What the server loop saw.
#[derive(Default)]
struct ServerLog {
    messages: Vec<String>,
    /// (old, new) of every status change.
    transitions: Vec<(ConnectionState, ConnectionState)>,
    /// End reason and debug text of every connection that ended.
    ends: Vec<(i32, String)>,
}

struct Server {
    addr: std::net::SocketAddr,
    /// The server's instance (its loop runs on its own thread), to wait on its activity.
    sockets: Sockets,
    log: Arc<Mutex<ServerLog>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a server thread: accepts every connection into a poll group, closes the ones that
/// end, and answers each message with "ECHO: ..." to every client (at most 20 s).
fn start_server(options: &[ConfigValue]) -> Server {
    let (s, seen) = instance(2);
    let listen = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), options);
    assert_ne!(listen, ListenSocket::INVALID);
    let addr = s.get_listen_socket_address(listen).unwrap();
    let log = Arc::new(Mutex::new(ServerLog::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (log2, stop2) = (log.clone(), stop.clone());
    let sockets = s.clone();
    let thread = std::thread::spawn(move || {
        server_loop(&s, &seen, &log2, &stop2);
    });
    Server {
        addr,
        sockets,
        log,
        stop,
        thread: Some(thread),
    }
}

fn server_loop(s: &Sockets, seen: &Seen, log: &Mutex<ServerLog>, stop: &AtomicBool) {
    let group = s.create_poll_group();
    assert_ne!(group, PollGroup::INVALID);
    let clock = Clock::new();
    let start = clock.now();
    let mut clients: Vec<Connection> = Vec::new();
    let mut handled = 0;
    let mut inbox = Vec::new();
    while !stop.load(Ordering::Relaxed)
        && clock.now().saturating_since(start) < Duration::from_secs(20)
    {
        let seen_gen = s.activity();
        s.run_callbacks();
        let events: Vec<_> = seen.lock().unwrap()[handled..].to_vec();
        handled += events.len();
        for ev in events {
            log.lock()
                .unwrap()
                .transitions
                .push((ev.old_state, ev.info.state));
            match (ev.old_state, ev.info.state) {
                (ConnectionState::None, ConnectionState::Connecting) => {
                    assert_eq!(s.accept_connection(ev.conn), EResult::Ok);
                    assert!(s.set_connection_poll_group(ev.conn, group));
                    clients.push(ev.conn);
                }
                (_, ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally) => {
                    log.lock()
                        .unwrap()
                        .ends
                        .push((ev.info.end_reason, ev.info.end_debug.clone()));
                    clients.retain(|&c| c != ev.conn);
                    assert!(s.close_connection(ev.conn, 0, "", false));
                }
                _ => {}
            }
        }
        inbox.clear();
        s.receive_messages_on_poll_group(group, &mut inbox, 100);
        for m in inbox.drain(..) {
            let text = String::from_utf8(m.into_data()).unwrap();
            let echo = format!("ECHO: {text}");
            log.lock().unwrap().messages.push(text);
            let out = clients
                .iter()
                .map(|&c| OutMessage {
                    conn: c,
                    data: echo.clone().into_bytes(),
                    flags: send_flags::RELIABLE,
                    lane: 0,
                })
                .collect();
            assert!(s.send_messages(out).iter().all(|&r| r > 0));
        }
        // Until something arrives (or a moment passes, to see the stop flag).
        s.wait_for_activity(seen_gen, Duration::from_millis(20));
    }
}

/// A client instance connected to `addr`.
fn client(addr: std::net::SocketAddr, seed: u64) -> (Sockets, Connection) {
    let (c, _) = instance_seeded(1, seed);
    let conn = c.connect_by_ip_address(addr, &[]);
    assert_ne!(conn, Connection::INVALID);
    assert!(
        wait_until(&[&c], || c.connection_state(conn)
            == ConnectionState::Connected),
        "client connected"
    );
    (c, conn)
}

fn texts(s: &Sockets, conn: Connection, n: usize) -> Vec<String> {
    recv_n(s, conn, n)
        .into_iter()
        .map(|m| String::from_utf8(m.into_data()).unwrap())
        .collect()
}

#[test]
fn single_client_message_exchange() {
    let server = start_server(&[]);
    let (c, conn) = client(server.addr, 101);
    c.send_message_to_connection(conn, b"Hello, server!", send_flags::RELIABLE)
        .unwrap();
    assert_eq!(texts(&c, conn, 1), vec!["ECHO: Hello, server!"]);
    assert_eq!(server.log.lock().unwrap().messages, vec!["Hello, server!"]);
}

#[test]
fn multiple_clients_broadcast() {
    let server = start_server(&[]);
    let (c1, conn1) = client(server.addr, 201);
    let (c2, conn2) = client(server.addr, 202);
    // Both are known to the server before anyone speaks (they receive every echo).
    assert!(wait_until(&[&server.sockets], || {
        let log = server.log.lock().unwrap();
        log.transitions
            .iter()
            .filter(|t| t.1 == ConnectionState::Connected)
            .count()
            == 2
    }));
    c1.send_message_to_connection(conn1, b"Hello from client 1!", send_flags::RELIABLE)
        .unwrap();
    // One after the other, so every client sees the same order.
    assert_eq!(texts(&c1, conn1, 1), vec!["ECHO: Hello from client 1!"]);
    c2.send_message_to_connection(conn2, b"Hello from client 2!", send_flags::RELIABLE)
        .unwrap();
    assert_eq!(texts(&c1, conn1, 1), vec!["ECHO: Hello from client 2!"]);
    assert_eq!(
        texts(&c2, conn2, 2),
        vec!["ECHO: Hello from client 1!", "ECHO: Hello from client 2!"]
    );
    let mut got = server.log.lock().unwrap().messages.clone();
    got.sort();
    assert_eq!(got, vec!["Hello from client 1!", "Hello from client 2!"]);
}

#[test]
fn client_connection_and_disconnection() {
    let server = start_server(&[]);
    let (c, conn) = client(server.addr, 301);
    assert!(c.close_connection(conn, 0, "leaving", false));
    // The server closes what the peer closed, and (as in GNS, whose example chat says "we
    // will get callbacks here when we destroy connections") sees that last change too.
    assert!(wait_until(&[&server.sockets], || {
        server
            .log
            .lock()
            .unwrap()
            .transitions
            .contains(&(ConnectionState::ClosedByPeer, ConnectionState::None))
    }));
    let t = server.log.lock().unwrap().transitions.clone();
    assert_eq!(
        t,
        vec![
            (ConnectionState::None, ConnectionState::Connecting),
            (ConnectionState::Connecting, ConnectionState::Connected),
            (ConnectionState::Connected, ConnectionState::ClosedByPeer),
            (ConnectionState::ClosedByPeer, ConnectionState::None),
        ]
    );
}

#[test]
fn dropping_the_client_instance_closes_its_connections() {
    // As GNS's shutdown: what the application left open is closed, and the peer told.
    let server = start_server(&[]);
    let (c, _conn) = client(server.addr, 401);
    drop(c);
    assert!(wait_until(&[&server.sockets], || {
        server
            .log
            .lock()
            .unwrap()
            .transitions
            .contains(&(ConnectionState::Connected, ConnectionState::ClosedByPeer))
    }));
    assert_eq!(
        server.log.lock().unwrap().ends,
        vec![(2999, "SteamNetworkingSockets shutdown".to_owned())],
        "k_ESteamNetConnectionEnd_AppException_Max"
    );
}

#[test]
fn message_reliability() {
    let server = start_server(&[]);
    let (c, conn) = client(server.addr, 501);
    let sent: Vec<String> = (0..50).map(|i| format!("Test message {i}")).collect();
    for m in &sent {
        c.send_message_to_connection(conn, m.as_bytes(), send_flags::RELIABLE)
            .unwrap();
    }
    let echoes = texts(&c, conn, 50);
    let want: Vec<String> = sent.iter().map(|m| format!("ECHO: {m}")).collect();
    assert_eq!(echoes, want);
    assert_eq!(server.log.lock().unwrap().messages, sent);
}
