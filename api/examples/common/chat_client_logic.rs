//! The chat client's core, shared by the `chat_client` example and the smoke test
//! (`tests/examples_smoke.rs`): one connection to the server, lines out, lines and status
//! changes in. No terminal I/O here; the example reads stdin and prints [`ClientEvent`]s.
//!
//! Behaviour follows GNS's `example_chat` client (facts, not code): lines go reliably,
//! `/quit` closes the connection locally (lingering, so queued lines still go), and the client
//! is done when the connection ends, which it then closes with CloseConnection.

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};

use anyhow::{anyhow, bail};
use sockworks::{
    ConfigValue, Connection, ConnectionState, Message, Sockets, StatusChanged, send_flags,
};

/// What the client shows its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientEvent {
    /// The connection is up.
    Connected,
    /// A line from the server.
    Line(String),
    /// The connection ended; the text says how.
    Ended(String),
}

/// A chat client over a [`Sockets`] instance.
pub(crate) struct ChatClient {
    sockets: Sockets,
    conn: Connection,
    events: mpsc::Receiver<StatusChanged>,
    inbox: Vec<Message>,
    open: bool,
}

impl ChatClient {
    /// Starts connecting to `server`; [`ClientEvent::Connected`] says when it is up.
    pub(crate) fn connect(sockets: Sockets, server: SocketAddr) -> anyhow::Result<Self> {
        let (tx, events) = mpsc::channel();
        // Runs inside `run_callbacks` on our thread; `poll` reads the channel.
        let callback = ConfigValue::ConnectionStatusChanged(Arc::new(move |ev: &StatusChanged| {
            let _ = tx.send(ev.clone()); // the client is gone: nothing to tell
        }));
        let conn = sockets.connect_by_ip_address(server, &[callback]);
        if conn == Connection::INVALID {
            bail!("cannot connect to {server}");
        }
        Ok(ChatClient {
            sockets,
            conn,
            events,
            inbox: Vec::new(),
            open: true,
        })
    }

    /// Whether the connection is still ours (not ended, not quit).
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// Sends one line the user typed. `/quit` closes the connection instead; returns whether
    /// the client goes on.
    pub(crate) fn send_line(&mut self, line: &str) -> anyhow::Result<bool> {
        if !self.open {
            return Ok(false);
        }
        let line = line.trim();
        if line == "/quit" {
            self.close("Goodbye");
            return Ok(false);
        }
        if line.is_empty() {
            return Ok(true);
        }
        // Queued even while still connecting; it goes once the handshake is done.
        self.sockets
            .send_message_to_connection(self.conn, line.as_bytes(), send_flags::RELIABLE)
            .map_err(|e| anyhow!("sending failed: {e:?}"))?;
        Ok(true)
    }

    /// Closes the connection, lingering so that lines already sent still go out.
    pub(crate) fn close(&mut self, debug: &str) {
        if self.open {
            self.open = false;
            self.sockets.close_connection(self.conn, 0, debug, true);
        }
    }

    /// One step: runs the callbacks and appends what happened to `out`, in order: the
    /// connection coming up, the lines received, the connection ending. Returns how many
    /// events it appended.
    pub(crate) fn poll(&mut self, out: &mut Vec<ClientEvent>) -> usize {
        let before = out.len();
        if !self.open {
            return 0;
        }
        self.sockets.run_callbacks();
        let mut ended = None;
        while let Ok(ev) = self.events.try_recv() {
            match ev.info.state {
                ConnectionState::Connected => out.push(ClientEvent::Connected),
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    ended = Some(end_text(&ev));
                }
                ConnectionState::Connecting
                | ConnectionState::FindingRoute
                | ConnectionState::None => {}
            }
        }
        // Lines that arrived before the end are still readable until we close.
        self.inbox.clear();
        self.sockets
            .receive_messages_on_connection(self.conn, &mut self.inbox, 256);
        for m in &self.inbox {
            // Peer input: never trust it to be UTF-8.
            out.push(ClientEvent::Line(
                String::from_utf8_lossy(&m.data).into_owned(),
            ));
        }
        if let Some(text) = ended {
            out.push(ClientEvent::Ended(text));
            // The handle stays ours until we close it, even after the peer has.
            self.open = false;
            self.sockets.close_connection(self.conn, 0, "", false);
        }
        out.len() - before
    }
}

/// How the connection ended, for the user.
fn end_text(ev: &StatusChanged) -> String {
    let why = if ev.info.end_debug.is_empty() {
        format!("reason {}", ev.info.end_reason)
    } else {
        format!("reason {}: {}", ev.info.end_reason, ev.info.end_debug)
    };
    if ev.old_state == ConnectionState::Connecting {
        format!("Could not connect to {} ({why}).", ev.info.addr_remote)
    } else if ev.info.state == ConnectionState::ClosedByPeer {
        format!("The server closed the connection ({why}).")
    } else {
        format!("Lost the connection to the server ({why}).")
    }
}
