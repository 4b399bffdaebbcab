//! The chat server's core, shared by the `chat_server` example and the smoke test
//! (`tests/examples_smoke.rs`), so that what the test checks is what the example runs.
//!
//! Two layers: [`Room`] is pure (who is here under which nick; what to send when someone
//! joins, speaks or leaves: events in, [`Action`]s out), and [`ChatServer`] runs a room over
//! a [`Sockets`] instance: it accepts every connection from the status callback, puts it in a
//! poll group, and carries out the room's actions.
//!
//! ```text
//!  status callback ─► channel ─┐
//!                              ├─► Room::{join, leave, message} ─► Action ─► send / name / close
//!  poll group messages ────────┘
//! ```
//!
//! Behaviour follows GNS's `example_chat` server (facts, not code): accept from the callback,
//! one poll group for all clients, a nick per client, every line broadcast to the others,
//! `/nick NAME`, joins and leaves announced, ended connections closed with CloseConnection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};

use anyhow::{Context, bail};
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, ListenSocket, Message, PollGroup, Sockets,
    StatusChanged, send_flags,
};

/// Longest nick accepted, in characters.
pub(crate) const MAX_NICK: usize = 32;

/// What the room asks the network to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send `text` reliably to `to`.
    Send {
        /// Destination.
        to: Connection,
        /// The line.
        text: String,
    },
    /// Name the connection after its nick (logs and connection info).
    Name {
        /// The connection.
        conn: Connection,
        /// Its nick.
        nick: String,
    },
    /// Close the connection: it ended, or its client said `/quit`.
    Close {
        /// The connection.
        conn: Connection,
        /// Text the peer sees as the close reason.
        debug: &'static str,
        /// Flush queued reliable messages (a goodbye) before closing.
        linger: bool,
    },
}

/// Why someone left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// The client closed the connection (or said `/quit`).
    Quit,
    /// The connection failed (timeout, bad packet...).
    Problem,
}

/// The chat room: clients by connection, with their nicks.
#[derive(Debug, Default)]
pub(crate) struct Room {
    nicks: BTreeMap<Connection, String>,
    next_user: u32,
}

impl Room {
    /// An empty room.
    pub(crate) fn new() -> Self {
        Room::default()
    }

    /// Clients in the room.
    pub(crate) fn len(&self) -> usize {
        self.nicks.len()
    }

    /// A client's nick.
    pub(crate) fn nick(&self, conn: Connection) -> Option<&str> {
        self.nicks.get(&conn).map(String::as_str)
    }

    /// Every connection in the room.
    pub(crate) fn connections(&self) -> Vec<Connection> {
        self.nicks.keys().copied().collect()
    }

    /// `text` to everyone but `except`.
    fn broadcast(&self, except: Connection, text: &str, out: &mut Vec<Action>) {
        for &to in self.nicks.keys().filter(|&&c| c != except) {
            out.push(Action::Send {
                to,
                text: text.to_owned(),
            });
        }
    }

    /// A new client: gets a nick ("User#N"), a welcome listing who else is here, and the
    /// others hear about it.
    pub(crate) fn join(&mut self, conn: Connection) -> Vec<Action> {
        let mut out = Vec::new();
        if self.nicks.contains_key(&conn) {
            return out;
        }
        self.next_user += 1;
        let nick = format!("User#{}", self.next_user);
        let others: Vec<&str> = self.nicks.values().map(String::as_str).collect();
        let here = if others.is_empty() {
            "Nobody else is here.".to_owned()
        } else {
            format!("Also here: {}.", others.join(", "))
        };
        out.push(Action::Send {
            to: conn,
            text: format!(
                "Welcome! You are '{nick}'. {here} Type /nick NAME to change your name, /quit to leave."
            ),
        });
        self.broadcast(conn, &format!("{nick} joined."), &mut out);
        out.push(Action::Name {
            conn,
            nick: nick.clone(),
        });
        self.nicks.insert(conn, nick);
        out
    }

    /// A client left: the others hear about it and the connection is closed.
    pub(crate) fn leave(&mut self, conn: Connection, why: Leave) -> Vec<Action> {
        let mut out = Vec::new();
        self.remove(conn, why, &mut out);
        out.push(Action::Close {
            conn,
            debug: "",
            linger: false,
        });
        out
    }

    /// Takes `conn` out of the room and tells the others.
    fn remove(&mut self, conn: Connection, why: Leave, out: &mut Vec<Action>) {
        if let Some(nick) = self.nicks.remove(&conn) {
            let text = match why {
                Leave::Quit => format!("{nick} left."),
                Leave::Problem => format!("{nick} left (connection lost)."),
            };
            self.broadcast(conn, &text, out);
        }
    }

    /// A line from a client: a command, or chat for the others prefixed with the nick.
    pub(crate) fn message(&mut self, conn: Connection, text: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(nick) = self.nicks.get(&conn).cloned() else {
            return out; // not (or no longer) in the room
        };
        let text = text.trim();
        if text.is_empty() {
            return out;
        }
        let reply = |text: String| Action::Send { to: conn, text };
        if text == "/quit" {
            out.push(reply("Goodbye.".to_owned()));
            self.remove(conn, Leave::Quit, &mut out);
            out.push(Action::Close {
                conn,
                debug: "Goodbye",
                linger: true, // the goodbye goes out first
            });
        } else if let Some(arg) = command_arg(text, "/nick") {
            match self.check_nick(conn, arg) {
                Err(why) => out.push(reply(why)),
                Ok(()) => {
                    self.broadcast(conn, &format!("{nick} is now known as {arg}."), &mut out);
                    out.push(reply(format!("You are now known as {arg}.")));
                    out.push(Action::Name {
                        conn,
                        nick: arg.to_owned(),
                    });
                    self.nicks.insert(conn, arg.to_owned());
                }
            }
        } else if text.starts_with('/') {
            out.push(reply(format!(
                "Unknown command '{text}'. Commands: /nick NAME, /quit."
            )));
        } else {
            self.broadcast(conn, &format!("{nick}: {text}"), &mut out);
        }
        out
    }

    /// Whether `conn` may take `nick`: non-empty, short, printable, not someone else's.
    fn check_nick(&self, conn: Connection, nick: &str) -> Result<(), String> {
        if nick.is_empty() {
            return Err("Usage: /nick NAME".to_owned());
        }
        if nick.chars().count() > MAX_NICK || nick.chars().any(char::is_control) {
            return Err(format!(
                "A nick is at most {MAX_NICK} printable characters."
            ));
        }
        if self.nicks.iter().any(|(&c, n)| c != conn && n == nick) {
            return Err(format!("'{nick}' is taken."));
        }
        Ok(())
    }
}

/// The argument of `cmd` in `text` ("/nick Bob" gives "Bob"), `None` if `text` is not `cmd`.
fn command_arg<'a>(text: &'a str, cmd: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(cmd)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

/// A [`Room`] served over a [`Sockets`] instance.
pub(crate) struct ChatServer {
    sockets: Sockets,
    listen: ListenSocket,
    group: PollGroup,
    events: mpsc::Receiver<StatusChanged>,
    room: Room,
    inbox: Vec<Message>,
}

impl ChatServer {
    /// Listens on `addr`; every connection's status changes come to this server.
    pub(crate) fn start(sockets: Sockets, addr: SocketAddr) -> anyhow::Result<Self> {
        let (tx, events) = mpsc::channel();
        // The callback runs inside `run_callbacks` on our own thread; the channel hands the
        // change to `poll`, which owns the room. Set on the listen socket, so only its
        // connections report here.
        let callback = ConfigValue::ConnectionStatusChanged(Arc::new(move |ev: &StatusChanged| {
            let _ = tx.send(ev.clone()); // the server is gone: nothing to tell
        }));
        let listen = sockets.create_listen_socket_ip(addr, &[callback]);
        if listen == ListenSocket::INVALID {
            bail!("cannot listen on {addr}");
        }
        let group = sockets.create_poll_group();
        Ok(ChatServer {
            sockets,
            listen,
            group,
            events,
            room: Room::new(),
            inbox: Vec::new(),
        })
    }

    /// The address it listens on (with the port the OS picked for port 0).
    pub(crate) fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.sockets
            .get_listen_socket_address(self.listen)
            .context("listen socket vanished")
    }

    /// The room.
    pub(crate) fn room(&self) -> &Room {
        &self.room
    }

    /// One step: runs the callbacks, acts on status changes, then on received lines.
    /// Appends what happened to `log`; returns how many events and messages it handled.
    pub(crate) fn poll(&mut self, log: &mut Vec<String>) -> usize {
        self.sockets.run_callbacks();
        let mut work = 0;
        while let Ok(ev) = self.events.try_recv() {
            work += 1;
            self.on_status_changed(&ev, log);
        }
        self.inbox.clear();
        let n = self
            .sockets
            .receive_messages_on_poll_group(self.group, &mut self.inbox, 256);
        work += usize::try_from(n).unwrap_or(0);
        let inbox = std::mem::take(&mut self.inbox);
        for m in &inbox {
            // Peer input: never trust it to be UTF-8.
            let text = String::from_utf8_lossy(&m.data);
            let actions = self.room.message(m.conn, &text);
            self.apply(actions, log);
        }
        self.inbox = inbox;
        work
    }

    fn on_status_changed(&mut self, ev: &StatusChanged, log: &mut Vec<String>) {
        let conn = ev.conn;
        match ev.info.state {
            ConnectionState::Connecting => {
                // A new client. Accept it (a connection left unaccepted times out), then
                // route its messages to the poll group.
                let r = self.sockets.accept_connection(conn);
                if r != EResult::Ok {
                    // It may have given up already; the handle is still ours to close.
                    self.sockets.close_connection(conn, 0, "", false);
                    log.push(format!("could not accept {}: {r:?}", ev.info.addr_remote));
                    return;
                }
                if !self.sockets.set_connection_poll_group(conn, self.group) {
                    self.sockets.close_connection(conn, 0, "", false);
                    log.push(format!(
                        "could not add {} to the poll group",
                        ev.info.addr_remote
                    ));
                    return;
                }
                log.push(format!("accepted {}", ev.info.addr_remote));
                let actions = self.room.join(conn);
                self.apply(actions, log);
            }
            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                let why = if ev.info.state == ConnectionState::ClosedByPeer {
                    Leave::Quit
                } else {
                    Leave::Problem
                };
                let who = match self.room.nick(conn) {
                    Some(nick) => format!("{nick} ({})", ev.info.addr_remote),
                    None => ev.info.addr_remote.to_string(),
                };
                log.push(format!(
                    "{who} ended ({}, reason {}: {})",
                    if why == Leave::Quit {
                        "closed by peer"
                    } else {
                        "problem detected locally"
                    },
                    ev.info.end_reason,
                    ev.info.end_debug
                ));
                // Close even if the client never got in: the handle is ours until we do.
                let actions = self.room.leave(conn, why);
                self.apply(actions, log);
            }
            // Connected follows our accept; nothing to do (the welcome is already queued).
            ConnectionState::Connected | ConnectionState::FindingRoute | ConnectionState::None => {}
        }
    }

    fn apply(&self, actions: Vec<Action>, log: &mut Vec<String>) {
        for a in actions {
            match a {
                Action::Send { to, text } => {
                    let r = self.sockets.send_message_to_connection(
                        to,
                        text.as_bytes(),
                        send_flags::RELIABLE,
                    );
                    if let Err(e) = r {
                        log.push(format!("send to #{} failed: {e:?}", to.0));
                    }
                }
                Action::Name { conn, nick } => {
                    self.sockets.set_connection_name(conn, &nick);
                    log.push(format!("#{} is {nick}", conn.0));
                }
                Action::Close {
                    conn,
                    debug,
                    linger,
                } => {
                    self.sockets.close_connection(conn, 0, debug, linger);
                }
            }
        }
    }

    /// Says goodbye to every client and closes their connections (lingering, so the goodbye
    /// is delivered) and the poll group.
    ///
    /// The listen socket stays open: closing it would also end the lingering connections at
    /// once (`close_listen_socket` ends every connection accepted through it). It closes with
    /// the instance. The shards send the goodbyes after this returns, so callers keep the
    /// instance alive a moment longer before dropping it (see `chat_server`).
    pub(crate) fn shutdown(mut self) {
        let mut log = Vec::new();
        for conn in self.room.connections() {
            self.apply(
                vec![
                    Action::Send {
                        to: conn,
                        text: "The server is shutting down. Goodbye.".to_owned(),
                    },
                    Action::Close {
                        conn,
                        debug: "Server shutdown",
                        linger: true,
                    },
                ],
                &mut log,
            );
        }
        self.room = Room::new();
        self.sockets.destroy_poll_group(self.group);
    }
}
