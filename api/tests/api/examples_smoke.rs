//! Smoke test of the chat example: the server and client cores that `chat_server` and
//! `chat_client` run (`examples/common/`), driven here over 127.0.0.1 with one server and two
//! clients, plus the room's rules on their own. Bounded: every wait ends within 4 s.

#[path = "../../examples/common/chat_client_logic.rs"]
mod chat_client_logic;
#[path = "../../examples/common/chat_server_logic.rs"]
mod chat_server_logic;

use std::time::Duration;

use crate::common::{generations, wait_activity};
use chat_client_logic::{ChatClient, ClientEvent};
use chat_server_logic::{Action, ChatServer, Leave, Room};
use sockworks::engine::shard::Clock;
use sockworks::{Connection, Sockets, SocketsConfig};

/// The longest any one wait may take.
const WAIT: Duration = Duration::from_secs(4);

fn instance(seed: u64) -> Sockets {
    Sockets::with_config(SocketsConfig {
        shards: 1,
        seed: Some(seed),
        ..SocketsConfig::default()
    })
    .expect("instance")
}

/// The three processes of a chat session, in one test.
struct Chat {
    /// Every instance of the session, to sleep on their activity.
    sockets: Vec<Sockets>,
    server: ChatServer,
    clients: Vec<ChatClient>,
    /// What each client has shown so far.
    seen: Vec<Vec<ClientEvent>>,
}

impl Chat {
    /// Steps server and clients until `pred(seen)` holds; panics after [`WAIT`].
    fn until(&mut self, what: &str, pred: impl Fn(&[Vec<ClientEvent>]) -> bool) {
        let clock = Clock::new();
        let start = clock.now();
        let mut log = Vec::new();
        loop {
            let socks: Vec<&Sockets> = self.sockets.iter().collect();
            let gens = generations(&socks);
            let mut work = self.server.poll(&mut log);
            for (c, seen) in self.clients.iter_mut().zip(&mut self.seen) {
                work += c.poll(seen);
            }
            if pred(&self.seen) {
                return;
            }
            assert!(
                clock.now().saturating_since(start) < WAIT,
                "timed out waiting for {what}; clients saw {:#?}; server log {log:#?}",
                self.seen
            );
            if work == 0 {
                wait_activity(&socks, &gens);
            }
        }
    }
}

fn line(text: &str) -> ClientEvent {
    ClientEvent::Line(text.to_owned())
}

fn saw(seen: &[ClientEvent], text: &str) -> bool {
    seen.contains(&line(text))
}

#[test]
fn two_clients_chat_rename_and_quit_over_loopback() {
    // Kept past the server's shutdown: dropping the last handle stops the shards at once,
    // before they send the goodbyes (the example waits a moment for the same reason).
    let server_sockets = instance(1);
    let server = ChatServer::start(server_sockets.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let first_sockets = instance(2);
    let first = ChatClient::connect(first_sockets.clone(), addr).unwrap();
    let mut chat = Chat {
        sockets: vec![server_sockets.clone(), first_sockets],
        server,
        clients: vec![first],
        seen: vec![Vec::new()],
    };
    // One at a time, so the nicks are known: the first is User#1.
    chat.until("the first welcome", |s| {
        s[0].contains(&ClientEvent::Connected)
            && s[0].iter().any(|e| matches!(e, ClientEvent::Line(t) if t.starts_with("Welcome! You are 'User#1'. Nobody else")))
    });
    let second_sockets = instance(3);
    chat.sockets.push(second_sockets.clone());
    chat.clients
        .push(ChatClient::connect(second_sockets, addr).unwrap());
    chat.seen.push(Vec::new());
    chat.until("the second welcome and the join", |s| {
        saw(&s[0], "User#2 joined.")
            && s[1].iter().any(|e| matches!(e, ClientEvent::Line(t) if t.starts_with("Welcome! You are 'User#2'. Also here: User#1.")))
    });
    assert_eq!(chat.server.room().len(), 2);

    // A line goes to the other client with the sender's nick, and not back to the sender.
    assert!(chat.clients[0].send_line("hello there").unwrap());
    chat.until("the line", |s| saw(&s[1], "User#1: hello there"));
    assert!(!saw(&chat.seen[0], "User#1: hello there"));

    assert!(chat.clients[1].send_line("/nick Bob").unwrap());
    chat.until("the rename", |s| {
        saw(&s[0], "User#2 is now known as Bob.") && saw(&s[1], "You are now known as Bob.")
    });
    assert!(chat.clients[1].send_line("hi").unwrap());
    chat.until("Bob's line", |s| saw(&s[0], "Bob: hi"));

    // /quit closes the client's connection; the server notices, tells the other client and
    // closes its end.
    assert!(!chat.clients[1].send_line("/quit").unwrap());
    assert!(!chat.clients[1].is_open());
    chat.until("the leave", |s| saw(&s[0], "Bob left."));
    assert_eq!(chat.server.room().len(), 1);

    // Server shutdown: the remaining client hears the goodbye and sees the connection end.
    let Chat {
        sockets,
        server,
        mut clients,
        mut seen,
    } = chat;
    server.shutdown();
    let clock = Clock::new();
    let start = clock.now();
    while clients[0].is_open() {
        let seen_gen = sockets[1].activity();
        clients[0].poll(&mut seen[0]);
        assert!(
            clock.now().saturating_since(start) < WAIT,
            "the client saw no end: {:#?}",
            seen[0]
        );
        sockets[1].wait_for_activity(seen_gen, Duration::from_millis(20));
    }
    assert!(saw(&seen[0], "The server is shutting down. Goodbye."));
    assert!(
        matches!(seen[0].last(), Some(ClientEvent::Ended(t)) if t.contains("Server shutdown")),
        "{:#?}",
        seen[0]
    );
    drop(server_sockets);
}

#[test]
fn room_rules_without_a_network() {
    let (a, b) = (Connection(10), Connection(20));
    let mut room = Room::new();
    room.join(a);
    let joined = room.join(b);
    assert!(joined.contains(&Action::Send {
        to: a,
        text: "User#2 joined.".into()
    }));

    // Nicks are checked: empty, taken, too long, and "/nickname" is not "/nick".
    let sends_to = |actions: &[Action], who: Connection| -> Vec<String> {
        actions
            .iter()
            .filter_map(|x| match x {
                Action::Send { to, text } if *to == who => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        sends_to(&room.message(a, "/nick"), a),
        ["Usage: /nick NAME"]
    );
    assert_eq!(
        sends_to(&room.message(a, "/nick User#2"), a),
        ["'User#2' is taken."]
    );
    let long = format!("/nick {}", "x".repeat(chat_server_logic::MAX_NICK + 1));
    assert_eq!(sends_to(&room.message(a, &long), b), Vec::<String>::new());
    assert!(sends_to(&room.message(a, "/nickname"), a)[0].starts_with("Unknown command"));
    let renamed = room.message(a, "/nick  Ann ");
    assert_eq!(sends_to(&renamed, b), ["User#1 is now known as Ann."]);
    assert!(renamed.contains(&Action::Name {
        conn: a,
        nick: "Ann".into()
    }));

    // Chat goes to the others only; blank lines go nowhere; strangers are ignored.
    assert_eq!(sends_to(&room.message(a, " hi "), b), ["Ann: hi"]);
    assert!(sends_to(&room.message(a, "hi"), a).is_empty());
    assert!(room.message(a, "   ").is_empty());
    assert!(room.message(Connection(99), "hi").is_empty());

    // /quit: goodbye first, the others told, then a lingering close.
    let quit = room.message(a, "/quit");
    assert_eq!(sends_to(&quit, a), ["Goodbye."]);
    assert_eq!(sends_to(&quit, b), ["Ann left."]);
    assert_eq!(
        quit.last(),
        Some(&Action::Close {
            conn: a,
            debug: "Goodbye",
            linger: true
        })
    );
    // A connection that failed is announced as lost and closed at once.
    let lost = room.leave(b, Leave::Problem);
    assert_eq!(
        lost,
        [Action::Close {
            conn: b,
            debug: "",
            linger: false
        }]
    );
    assert_eq!(room.len(), 0);
}
