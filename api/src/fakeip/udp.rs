//! `ISteamNetworkingFakeUDPPort`: datagrams to and from FakeIPs, over P2P connections the
//! port opens and accepts on its own (no status callbacks, no handles the application sees).
//!
//! ```text
//!  send_message_to_fake_ip(169.254.x.y:p) ─► peers[addr] ─ live? ─► send on it
//!                                             └ none ─► connect_p2p_with(ip:…, our vport,
//!                                                         from_fakeip) ─► join the poll group
//!  incoming request to our fake port ─► p2p::new_request ─► adopt: accept, join the group
//!  receive_messages ─► poll group ─► each message tagged with its connection's peer FakeIP
//! ```
//!
//! A port with index `i >= 0` is "server" port `i` of our global FakeIP (local virtual port
//! `0x7fffff00 + i`, with a listen socket); peers see its datagrams come from our FakeIP. Index
//! -1 makes an ephemeral "client" port (`0x7ffffe00 + n`, no listen socket): peers name it by a
//! local FakeIP of their own. Connections are closed when dead, after [`IDLE_TIMEOUT`] without
//! traffic, or [`CLEANUP_DELAY`] after `schedule_cleanup` unless traffic resumes; this
//! housekeeping runs in the port's own calls.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rustc_hash::FxHashMap;
use sockworks_engine::wire::fakeip::{
    EPHEMERAL_FAKE_PORT_0, FakeIpType, GLOBAL_FAKE_PORT_0, MAX_EPHEMERAL_PORTS, addr_fake_ip_type,
    fake_ip_identity, v4,
};

use crate::handles::{Connection, ConnectionState, ListenSocket, PollGroup};
use crate::message::{Message, send_flags};
use crate::p2p::P2pConnectArgs;
use crate::result::EResult;
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::lock;

/// `k_cbSteamNetworkingSocketsFakeUDPPortMaxMessageSize`: larger datagrams are refused.
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// How long after `schedule_cleanup` an idle peer's connection is closed ("a few seconds").
pub const CLEANUP_DELAY: Duration = Duration::from_secs(3);
/// A peer's connection with no traffic for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A datagram received on a [`FakeUdpPort`].
#[derive(Debug)]
pub struct FakeUdpMessage {
    /// The sender's FakeIP: its global one, or the local one we name it by.
    pub from: SocketAddrV4,
    /// The datagram (`conn` is [`Connection::INVALID`] and `user_data` 0, as GNS fills them).
    pub message: Message,
}

/// The FakeUDP ports of an instance, by local virtual port (weak: a port lives as long as
/// the application holds it).
#[derive(Default)]
pub(crate) struct Registry(Mutex<FxHashMap<i32, Weak<PortInner>>>);

/// The port that owns P2P listen socket `listen`, if any.
pub(crate) fn port_of_listener(sh: &Shared, listen: ListenSocket) -> Option<Arc<PortInner>> {
    if listen == ListenSocket::INVALID {
        return None;
    }
    // Upgraded under the lock, looked at (and the others dropped) after it: dropping the last
    // handle of a port tears it down, which takes the lock.
    let ports: Vec<Arc<PortInner>> = lock(&sh.fake_ip.udp.0)
        .values()
        .filter_map(Weak::upgrade)
        .collect();
    ports.into_iter().find(|p| p.listen == listen)
}

/// One peer: the connection datagrams to it go on.
struct Peer {
    conn: Connection,
    last_active: Duration,
    cleanup_at: Option<Duration>,
}

#[derive(Default)]
struct Peers {
    by_addr: FxHashMap<SocketAddrV4, Peer>,
    /// Every connection of the port (both directions) and its peer.
    by_conn: FxHashMap<u32, SocketAddrV4>,
}

/// The port's state (see the module documentation).
pub(crate) struct PortInner {
    sockets: Sockets,
    index: i32,
    vport: i32,
    listen: ListenSocket,
    group: PollGroup,
    peers: Mutex<Peers>,
    destroyed: AtomicBool,
}

/// `ISteamNetworkingFakeUDPPort`. Clones are the same port; it is torn down by
/// [`FakeUdpPort::destroy_fake_udp_port`] or when the last clone is dropped.
#[derive(Clone)]
pub struct FakeUdpPort {
    inner: Arc<PortInner>,
}

impl PartialEq for FakeUdpPort {
    /// The same port (clones, or the same index asked for twice).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for FakeUdpPort {}

impl std::fmt::Debug for FakeUdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUdpPort")
            .field("index", &self.inner.index)
            .field("vport", &self.inner.vport)
            .finish_non_exhaustive()
    }
}

fn dead(state: ConnectionState) -> bool {
    matches!(
        state,
        ConnectionState::None
            | ConnectionState::ClosedByPeer
            | ConnectionState::ProblemDetectedLocally
    )
}

impl Sockets {
    /// `CreateFakeUDPPort`: a UDP-like port on our FakeIP's port `index` (0 to the ports
    /// asked for with `BeginAsyncRequestFakeIP`; the request need not have completed, but
    /// sends fail with `Busy` until it has), or an ephemeral port for -1 (a new one each
    /// call). The same index returns the same port. `None` without a rendezvous service,
    /// for a bad index, or when the index's virtual port is taken (a
    /// `CreateListenSocketP2PFakeIP` on it).
    pub fn create_fake_udp_port(&self, index: i32) -> Option<FakeUdpPort> {
        let sh = self.shared();
        sh.rendezvous.get()?;
        let mut reg = lock(&sh.fake_ip.udp.0);
        reg.retain(|_, w| w.strong_count() > 0);
        let (vport, listen) = if index >= 0 {
            if usize::try_from(index).ok()? >= sh.fake_ip.requested_ports() {
                tracing::warn!("CreateFakeUDPPort: invalid fake port index {index}");
                return None;
            }
            let vport = GLOBAL_FAKE_PORT_0 + index;
            if let Some(p) = reg.get(&vport).and_then(Weak::upgrade) {
                return Some(FakeUdpPort { inner: p });
            }
            let listen = self.create_listen_socket_p2p_vport(vport, &[]);
            if listen == ListenSocket::INVALID {
                return None;
            }
            (vport, listen)
        } else if index == -1 {
            let vport = (EPHEMERAL_FAKE_PORT_0..EPHEMERAL_FAKE_PORT_0 + MAX_EPHEMERAL_PORTS)
                .find(|v| !reg.contains_key(v))?;
            (vport, ListenSocket::INVALID)
        } else {
            return None;
        };
        let inner = Arc::new(PortInner {
            sockets: self.clone(),
            index,
            vport,
            listen,
            group: self.create_poll_group(),
            peers: Mutex::default(),
            destroyed: AtomicBool::new(false),
        });
        reg.insert(vport, Arc::downgrade(&inner));
        Some(FakeUdpPort { inner })
    }
}

impl FakeUdpPort {
    /// The fake port index it was created with (-1: ephemeral).
    pub fn index(&self) -> i32 {
        self.inner.index
    }

    /// `SendMessageToFakeIP`: sends `data` to the peer at `to`, opening a connection to it
    /// first if there is none (its first datagrams wait for the route). `flags` as
    /// `SendMessageToConnection`'s, unreliable by default; `Reliable` is refused
    /// (InvalidParam), as are datagrams over [`MAX_MESSAGE_SIZE`] and addresses that are not
    /// FakeIPs. `Busy` while our global FakeIP is still being allocated (server ports),
    /// `IpNotFound` for a local FakeIP with no connection (its peer can only be answered
    /// while its connection lives), `InvalidState` after the port was destroyed.
    pub fn send_message_to_fake_ip(&self, to: SocketAddr, data: &[u8], flags: i32) -> EResult {
        let p = &self.inner;
        if p.destroyed.load(Ordering::Acquire) {
            return EResult::InvalidState;
        }
        if flags & send_flags::RELIABLE != 0 || data.len() > MAX_MESSAGE_SIZE {
            return EResult::InvalidParam;
        }
        let kind = addr_fake_ip_type(&to);
        let Some(to) = v4(&to).filter(|_| kind > FakeIpType::NotFake) else {
            return EResult::InvalidParam;
        };
        let now = p.sockets.now();
        p.housekeeping(now);
        let conn = match p.conn_to(to, kind, now) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match p.sockets.send_message_to_connection(conn, data, flags) {
            Ok(_) => EResult::Ok,
            Err(e) => e,
        }
    }

    /// `ReceiveMessages`: up to `max` datagrams from any peer into `out`, each with its
    /// sender's FakeIP; returns how many.
    pub fn receive_messages(&self, out: &mut Vec<FakeUdpMessage>, max: usize) -> usize {
        let p = &self.inner;
        if p.destroyed.load(Ordering::Acquire) {
            return 0;
        }
        let now = p.sockets.now();
        p.housekeeping(now);
        let mut got: Vec<Message> = Vec::new();
        p.sockets
            .receive_messages_on_poll_group(p.group, &mut got, max);
        let sh = p.sockets.shared();
        let mut peers = lock(&p.peers);
        let start = out.len();
        for mut m in got {
            let Some(from) = peers
                .by_conn
                .get(&m.conn.0)
                .copied()
                .or_else(|| sh.fake_ip.remote(m.conn.0))
            else {
                continue;
            };
            if let Some(peer) = peers.by_addr.get_mut(&from) {
                peer.last_active = now;
                peer.cleanup_at = None;
            }
            m.conn = Connection::INVALID;
            m.user_data = 0;
            out.push(FakeUdpMessage { from, message: m });
        }
        out.len() - start
    }

    /// `ScheduleCleanup`: closes the connection to `peer` in [`CLEANUP_DELAY`], unless a
    /// datagram is sent to or received from it before.
    pub fn schedule_cleanup(&self, peer: SocketAddr) {
        let p = &self.inner;
        let Some(peer) = v4(&peer) else {
            return;
        };
        let at = p.sockets.now() + CLEANUP_DELAY;
        if let Some(e) = lock(&p.peers).by_addr.get_mut(&peer) {
            e.cleanup_at = Some(at);
        }
    }

    /// `DestroyFakeUDPPort`: closes its connections and listen socket; every clone of the
    /// port is dead afterwards (sends fail with `InvalidState`, receives return nothing).
    pub fn destroy_fake_udp_port(self) {
        self.inner.teardown();
    }
}

impl PortInner {
    /// An incoming connection to our fake port: accepted, in our poll group, and the
    /// connection datagrams to `remote` go on unless one is live already.
    pub(crate) fn adopt(&self, sockets: &Sockets, conn: Connection, remote: Option<SocketAddrV4>) {
        let Some(remote) = remote.filter(|_| !self.destroyed.load(Ordering::Acquire)) else {
            sockets.close_connection(conn, 0, "FakeUDP port closed", false);
            return;
        };
        sockets.accept_connection(conn);
        sockets.set_connection_poll_group(conn, self.group);
        let now = sockets.now();
        let mut peers = lock(&self.peers);
        peers.by_conn.insert(conn.0, remote);
        let replace = peers
            .by_addr
            .get(&remote)
            .is_none_or(|e| dead(sockets.connection_state(e.conn)));
        if replace {
            peers.by_addr.insert(
                remote,
                Peer {
                    conn,
                    last_active: now,
                    cleanup_at: None,
                },
            );
        }
    }

    /// The live connection to `to` (marked active), or a new one to a global FakeIP. The
    /// peers stay locked throughout, so two senders never open two connections.
    fn conn_to(
        &self,
        to: SocketAddrV4,
        kind: FakeIpType,
        now: Duration,
    ) -> Result<Connection, EResult> {
        let mut peers = lock(&self.peers);
        if let Some(e) = peers.by_addr.get_mut(&to)
            && !dead(self.sockets.connection_state(e.conn))
        {
            e.last_active = now;
            e.cleanup_at = None;
            return Ok(e.conn);
        }
        if kind != FakeIpType::GlobalIpv4 {
            return Err(EResult::IpNotFound);
        }
        let sh = self.sockets.shared();
        let from_fakeip = match usize::try_from(self.index) {
            Ok(i) => Some(sh.fake_ip.our_port(i)?.to_string()),
            Err(_) => None,
        };
        let peer = fake_ip_identity(to);
        let signaling = crate::p2p_rendezvous::signaling_for(&self.sockets, &peer)
            .ok_or(EResult::InvalidState)?;
        let args = P2pConnectArgs {
            peer: Some(&peer),
            remote_vport: -1,
            local_vport: Some(self.vport),
            from_fakeip,
            silent: true,
        };
        let conn = self.sockets.connect_p2p_with(signaling, &args, &[]);
        if conn == Connection::INVALID {
            return Err(EResult::Fail);
        }
        sh.fake_ip.set_remote_addr(conn.0, to);
        self.sockets.set_connection_poll_group(conn, self.group);
        peers.by_conn.insert(conn.0, to);
        let old = peers.by_addr.insert(
            to,
            Peer {
                conn,
                last_active: now,
                cleanup_at: None,
            },
        );
        if let Some(old) = old {
            // Dead (checked above): let it go.
            peers.by_conn.remove(&old.conn.0);
            self.sockets.close_connection(old.conn, 0, "", false);
        }
        Ok(conn)
    }

    /// Closes dead connections, idle peers, and peers whose cleanup is due.
    fn housekeeping(&self, now: Duration) {
        let s = &self.sockets;
        let mut peers = lock(&self.peers);
        let gone: Vec<SocketAddrV4> = peers
            .by_addr
            .iter()
            .filter(|(_, e)| {
                e.cleanup_at.is_some_and(|t| now >= t)
                    || now.saturating_sub(e.last_active) >= IDLE_TIMEOUT
            })
            .map(|(a, _)| *a)
            .collect();
        for a in &gone {
            peers.by_addr.remove(a);
        }
        let Peers { by_addr, by_conn } = &mut *peers;
        by_conn.retain(|&c, addr| {
            let conn = Connection(c);
            let keep = !gone.contains(addr) && !dead(s.connection_state(conn));
            if !keep {
                s.close_connection(conn, 0, "FakeUDP cleanup", false);
                if by_addr.get(addr).is_some_and(|e| e.conn == conn) {
                    by_addr.remove(addr);
                }
            }
            keep
        });
    }

    /// Closes everything the port holds (once).
    fn teardown(&self) {
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return;
        }
        let s = &self.sockets;
        let conns: Vec<u32> = {
            let mut peers = lock(&self.peers);
            peers.by_addr.clear();
            peers.by_conn.drain().map(|(c, _)| c).collect()
        };
        for c in conns {
            s.close_connection(Connection(c), 0, "FakeUDP port destroyed", false);
        }
        if self.listen != ListenSocket::INVALID {
            s.close_listen_socket(self.listen);
        }
        s.destroy_poll_group(self.group);
        let mut reg = lock(&s.shared().fake_ip.udp.0);
        if reg
            .get(&self.vport)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            reg.remove(&self.vport);
        }
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        self.teardown();
    }
}
