//! Opening and closing: CreateListenSocketIP, GetListenSocketAddress, CloseListenSocket,
//! ConnectByIPAddress, AcceptConnection, CloseConnection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::os::fd::AsFd;
use std::sync::Mutex;

use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver};
use sockworks_engine::driver::steering::attach_steering;
use sockworks_engine::proto::admission::Admission;
use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::proto::endpoint::Listener;
use sockworks_engine::shard::Command;
use sockworks_engine::wire::identity::Identity;

use crate::config::ConfigValue;
use crate::handles::{Connection, ListenSocket};
use crate::info::ConnectionInfo;
use crate::record::{ConnRecord, ListenRecord};
use crate::result::EResult;
use crate::sockets::Sockets;
use crate::sync::{read, write};

/// Binds `addr` without SO_REUSEPORT and lets it go again: `None` if any socket holds the
/// port (reuse-port groups included), else the address with the port the OS picked.
fn claim_port(addr: SocketAddr) -> Option<SocketAddr> {
    std::net::UdpSocket::bind(addr).ok()?.local_addr().ok()
}

/// One SO_REUSEPORT socket per shard on `addr`, after claiming the port exclusively (the
/// shards' sockets share the port through SO_REUSEPORT, which would as gladly let them join
/// another instance's listen socket, or let port 0 pick a port one holds; a plain bind first
/// claims it, as GNS's own bind would).
fn bind_group(addr: SocketAddr, shards: usize) -> Option<(SocketAddr, Vec<MmsgDriver>)> {
    let bound = claim_port(addr)?;
    let drivers = (0..shards)
        .map(|_| MmsgDriver::bind_with(bound, MmsgConfig::default()).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((bound, drivers))
}

/// Longest `CloseListenSocket` waits for the shards to close its sockets.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Attempts at a port-0 listen socket: between the claim and the shards' binds another socket
/// may take the port the OS picked; a fresh port is then tried.
const PORT_ZERO_ATTEMPTS: usize = 8;

impl Sockets {
    /// `CreateListenSocketIP`: listens on `addr` (port 0 picks a free port; `[::]` is dual
    /// stack) on every shard, the kernel spreading new clients over the shards. Returns
    /// [`ListenSocket::INVALID`] if the address cannot be bound or an option is invalid.
    pub fn create_listen_socket_ip(
        &self,
        addr: SocketAddr,
        options: &[ConfigValue],
    ) -> ListenSocket {
        let sh = self.shared();
        let Ok(config) = read(&sh.global).with_options(options) else {
            return ListenSocket::INVALID;
        };
        if addr.port() != 0 && read(&sh.listen).values().any(|l| l.addr == addr) {
            // Our own SO_REUSEPORT group would silently take a second listener in.
            return ListenSocket::INVALID;
        }
        let attempts = if addr.port() == 0 {
            PORT_ZERO_ATTEMPTS
        } else {
            1
        };
        let Some((bound, drivers)) = (0..attempts).find_map(|_| bind_group(addr, sh.shards.len()))
        else {
            return ListenSocket::INVALID;
        };
        if sh.shards.len() > 1 {
            // Data packets go straight to the shard owning their connection; where the
            // program cannot attach, shards forward misrouted packets instead.
            let _ = attach_steering(drivers[0].as_fd(), sh.shard_bits);
        }
        let handle = sh.new_handle();
        // The per-address buckets' hash key, from the OS.
        let Ok(key) = crate::sockets::os_u64() else {
            return ListenSocket::INVALID;
        };
        let admission = Arc::new(Admission::new(config.admission, key));
        let mut locals = Vec::with_capacity(drivers.len());
        for (i, d) in drivers.into_iter().enumerate() {
            let shard = &sh.shards[i];
            let local = shard.next_local.fetch_add(1, Ordering::Relaxed);
            let listener = Box::new(Listener {
                handle,
                connection: config.connection,
                admission: Some(admission.clone()),
            });
            // The listener first, then the socket, in one FIFO: no request arrives before the
            // listener is known.
            shard.mailbox.send(Command::Listen { local, listener });
            shard.mailbox.send(Command::Attach {
                local,
                socket: Box::new(d),
            });
            locals.push(local);
        }
        let rec = ListenRecord {
            addr: bound,
            locals,
            config: Mutex::new(config),
            admission,
            p2p_vport: None,
        };
        write(&sh.listen).insert(handle, Arc::new(rec));
        ListenSocket(handle)
    }

    /// `GetListenSocketAddress`: the bound address (with the port the OS picked).
    pub fn get_listen_socket_address(&self, socket: ListenSocket) -> Option<SocketAddr> {
        read(&self.shared().listen).get(&socket.0).map(|l| l.addr)
    }

    /// `CloseListenSocket`: stops listening and closes every connection accepted through it
    /// (their handles become invalid); the port is free again when it returns. False for an
    /// invalid handle.
    pub fn close_listen_socket(&self, socket: ListenSocket) -> bool {
        let sh = self.shared();
        let Some(rec) = write(&sh.listen).remove(&socket.0) else {
            return false;
        };
        // The application closes them: no more callbacks, handles invalid at once.
        for shard in &sh.shards {
            let mut conns = write(&shard.conns);
            conns.retain(|c| {
                let child = c.listener == socket;
                if child {
                    c.closed.store(true, Ordering::Release);
                }
                !child
            });
        }
        if let Some(vport) = rec.p2p_vport {
            for i in 0..sh.shards.len() {
                sh.send(i, Command::P2pUnlisten { vport });
            }
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(rec.locals.len());
        for (i, &local) in rec.locals.iter().enumerate() {
            sh.send(i, Command::CloseListener { local });
            // After this turn's send: the ConnectionClosed datagrams still leave through it.
            sh.send(
                i,
                Command::Detach {
                    local,
                    after_flush: true,
                    closed: Some(tx.clone()),
                },
            );
        }
        // As GNS's, the call returns with the port free again (bounded: a shard that does not
        // answer in time frees it a moment later).
        let start = sh.clock.now();
        for _ in &rec.locals {
            let left = CLOSE_WAIT.saturating_sub(sh.clock.now().saturating_since(start));
            if rx.recv_timeout(left).is_err() {
                break;
            }
        }
        true
    }

    /// `ConnectByIPAddress`: starts connecting to `server` from a client socket of one shard
    /// (chosen round robin; one socket carries at most one connection to each server address)
    /// and returns the handle at once; the result arrives as a status change. [`Connection::INVALID`] if an option is invalid or no socket could be bound.
    ///
    /// A FakeIP (`169.254.x.y:port` that the rendezvous service gave a peer) makes a P2P
    /// connection to that peer through the service instead (GNS with FakeIP): its
    /// `identity_remote` is the FakeIP until the peer's answer names the real identity.
    pub fn connect_by_ip_address(&self, server: SocketAddr, options: &[ConfigValue]) -> Connection {
        if let Some(fake) = sockworks_engine::wire::fakeip::v4(&server)
            .filter(|_| sockworks_engine::wire::fakeip::is_fake_ip(&server))
        {
            return self.connect_fake_ip(fake, options);
        }
        self.connect_inner(server, options, false, None)
    }

    /// Ours, beyond GNS (whose `ConnectByIPAddress` cannot say whom it means): as
    /// [`Sockets::connect_by_ip_address`], and the server's certificate must name `expected`,
    /// else the handshake ends with `Remote_BadCert` (4003). Pair it with
    /// `TrustConfig::require_trusted`, so only a CA-signed certificate can name it.
    pub fn connect_by_ip_address_expecting(
        &self,
        server: SocketAddr,
        expected: Identity,
        options: &[ConfigValue],
    ) -> Connection {
        self.connect_inner(server, options, false, Some(expected))
    }

    /// [`Sockets::connect_by_ip_address`]; `silent` suppresses status callbacks (socket pairs).
    pub(crate) fn connect_inner(
        &self,
        server: SocketAddr,
        options: &[ConfigValue],
        silent: bool,
        expected: Option<Identity>,
    ) -> Connection {
        let sh = self.shared();
        let Ok(config) = read(&sh.global).with_options(options) else {
            return Connection::INVALID;
        };
        let shard = sh.next_client_shard.fetch_add(1, Ordering::Relaxed) % sh.shards.len();
        let Ok(local) = sh.client_socket(shard, server) else {
            return Connection::INVALID;
        };
        let Some(id) = sh.allocate_id(shard) else {
            sh.release_client_socket(shard, local, server);
            return Connection::INVALID;
        };
        let info = ConnectionInfo::new(server, ApiState::Connecting, 0);
        let rec = ConnRecord::new(Connection(id), shard, ListenSocket::INVALID, info, &config);
        rec.silent.store(silent, Ordering::Release);
        rec.set_client_socket(local, server);
        write(&sh.shards[shard].conns).insert(rec);
        sh.send(
            shard,
            Command::Connect {
                local,
                id: id.into(),
                server,
                config: Box::new(config.connection),
                expected: expected.map(Box::new),
            },
        );
        Connection(id)
    }

    /// `AcceptConnection`: InvalidParam for an invalid handle; InvalidState unless it is an
    /// incoming connection still waiting to be accepted.
    pub fn accept_connection(&self, conn: Connection) -> EResult {
        let sh = self.shared();
        let Some(rec) = sh.conn(conn) else {
            return EResult::InvalidParam;
        };
        // GNS's order: the state first, then whether the peer started it.
        if rec.state() != ApiState::Connecting {
            tracing::error!(
                "[#{}] cannot accept connection, current state is {:?}",
                conn.0,
                rec.state()
            );
            return EResult::InvalidState;
        }
        if !rec.incoming {
            tracing::error!(
                "[#{}] should not be trying to accept this connection, it was not initiated remotely",
                conn.0
            );
            return EResult::InvalidParam;
        }
        if rec.accepted.swap(true, Ordering::AcqRel) {
            tracing::error!("[#{}] connection already accepted", conn.0);
            return EResult::InvalidState;
        }
        sh.send(rec.shard(), Command::Accept { id: conn.id() });
        EResult::Ok
    }

    /// `CloseConnection`: invalidates the handle at once, discards unread messages, and tells
    /// the peer (`reason` 0 means App_Generic; with `linger`, queued reliable data is flushed
    /// first). False for an invalid handle.
    pub fn close_connection(
        &self,
        conn: Connection,
        reason: i32,
        debug: &str,
        linger: bool,
    ) -> bool {
        let sh = self.shared();
        let Some(rec) = sh.conn(conn) else {
            return false;
        };
        if rec.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        write(&sh.shards[rec.shard()].conns).remove(&conn.0);
        if let Some((local, server)) = rec.take_client_socket() {
            sh.release_client_socket(rec.shard(), local, server);
        }
        rec.group.store(None);
        while rec.inbox.pop().is_some() {}
        sh.p2p.closing(conn.0, sh.clock.now());
        sh.fake_ip.forget(conn.0);
        post_closed_by_app(sh, &rec, reason, debug);
        if rec.is_pipe() {
            crate::pair::pipe_close(sh, &rec, reason, debug);
            return true;
        }
        sh.send(
            rec.shard(),
            Command::Close {
                id: conn.id(),
                reason: u32::try_from(reason).unwrap_or(0),
                debug: debug.to_owned(),
                linger,
            },
        );
        true
    }
}

/// GNS posts one last status change when the application closes a connection: its state
/// goes to None, with the application's reason and text as GNS normalizes them. Only the
/// closing side's callback sees it; nothing follows.
fn post_closed_by_app(sh: &crate::shared::Shared, rec: &Arc<ConnRecord>, reason: i32, debug: &str) {
    let old = rec.state();
    if old == ApiState::None || rec.silent.load(Ordering::Acquire) {
        return;
    }
    let mut info = rec.info();
    let (reason, text) = sockworks_engine::proto::connection::normalize_close(
        u32::try_from(reason).unwrap_or(0),
        debug,
    );
    tracing::info!("[#{}] closed by app ({reason}): {text}", rec.handle.0);
    info.state = ApiState::None;
    info.end_reason = i32::try_from(reason).unwrap_or(i32::MAX);
    info.end_debug = text;
    sh.events.push((
        rec.clone(),
        crate::callbacks::StatusChanged {
            conn: rec.handle,
            info,
            old_state: old,
        },
    ));
    sh.activity.bump();
}
