//! What an instance's application threads and shards share: per shard, its mailbox (the one
//! way to ask anything of it), its id stock and its table of connection records; per instance,
//! the listen sockets, poll groups, pending status changes and global configuration.
//!
//! ```text
//!  Sockets (any thread) ─► Shared ─► shards[i].mailbox ─► Command ─► shard i
//!                             ▲                                        │
//!                             └── records, events, group queues ◄──────┘ (ApiApp)
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use rustc_hash::{FxHashMap, FxHashSet};
use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver};
use sockworks_engine::proto::ids::IdAllocator;
use sockworks_engine::shard::{Clock, Command, IdStock, Mailbox};

use crate::activity::Activity;
use crate::auth::Auth;
use crate::callbacks::StatusChanged;
use crate::config::Config;
use crate::conn_table::ConnTable;
use crate::handles::Connection;
use crate::record::{ConnRecord, GroupRecord, ListenRecord};
use crate::sync::{lock, read};

/// Longest a connecting thread waits for its shard to reserve a connection id.
const ID_WAIT: Duration = Duration::from_secs(1);

/// One shard as application threads see it.
pub(crate) struct ShardRef {
    /// The shard's command FIFO.
    pub mailbox: Mailbox,
    /// Connection ids the shard reserved for us.
    pub ids: Arc<IdStock>,
    /// Live connection records by handle. Application threads read it on every call and
    /// change it on connect and close; the shard writes it only when a connection arrives.
    pub conns: RwLock<ConnTable>,
    pub next_local: AtomicU16,
    /// The shard's client sockets.
    pub client: Mutex<Vec<ClientSocket>>,
}

/// A UDP socket a shard's client connections send from. Connections to different servers
/// share one; two to the same server address never do, since a server (GNS's included) tells
/// its clients apart by address and refuses a second connection from the same one.
pub(crate) struct ClientSocket {
    local: u16,
    v6: bool,
    /// Open connections per server address.
    peers: FxHashMap<SocketAddr, u32>,
}

/// Everything the shards and application threads share.
pub(crate) struct Shared {
    pub shards: Vec<ShardRef>,
    pub shard_bits: u32,
    pub listen: RwLock<FxHashMap<u32, Arc<ListenRecord>>>,
    pub groups: RwLock<FxHashMap<u32, Arc<GroupRecord>>>,
    /// Listen-socket and poll-group handles: never reused.
    pub next_handle: AtomicU32,
    /// Status changes waiting for `run_callbacks`.
    pub events: SegQueue<(Arc<ConnRecord>, StatusChanged)>,
    pub global: RwLock<Config>,
    pub next_client_shard: AtomicUsize,
    /// One-shot listeners of network socket pairs being set up.
    pub pair_listeners: Mutex<FxHashSet<u32>>,
    /// The clock of the shards (message receive times).
    pub clock: Clock,
    /// Bumped whenever a message or status change arrives, for threads that wait for one.
    pub activity: Activity,
    /// Identity, certificate, trust and authentication status.
    pub auth: Auth,
    /// P2P signaling objects and ICE sockets.
    pub p2p: crate::p2p::P2pShared,
    /// FakeIP: our allocation, peers' FakeIPs, FakeUDP ports.
    pub fake_ip: crate::fakeip::FakeIpShared,
    /// `ConnectP2P`'s rendezvous client, when configured.
    pub rendezvous: std::sync::OnceLock<crate::p2p_rendezvous::Rendezvous>,
    /// This server's place in a relay fleet (`None`: from the environment, if there).
    pub hosted: Option<crate::hosted::HostedConfig>,
    /// Relay auth tickets received (`ReceivedRelayAuthTicket`).
    pub tickets: crate::hosted::TicketCache,
    /// Relays `ConnectToHostedDedicatedServer` may use.
    pub relays: Vec<SocketAddr>,
}

impl Shared {
    /// The shard owning a connection handle.
    pub(crate) fn shard_of(&self, conn: Connection) -> usize {
        IdAllocator::shard_of(conn.0, self.shard_bits) as usize
    }

    /// A live connection's record (`None`: invalid, closed by the application, or foreign).
    pub(crate) fn conn(&self, conn: Connection) -> Option<Arc<ConnRecord>> {
        let shard = self.shards.get(self.shard_of(conn))?;
        let rec = read(&shard.conns).get(&conn.0).cloned()?;
        (!rec.is_closed()).then_some(rec)
    }

    /// Queues `cmd` for shard `shard`.
    pub(crate) fn send(&self, shard: usize, cmd: Command) {
        if let Some(s) = self.shards.get(shard) {
            s.mailbox.send(cmd);
        }
    }

    /// Wakes the shard owning `conn` (it paused delivering that connection's messages).
    pub(crate) fn wake_owner(&self, conn: Connection) {
        if let Some(s) = self.shards.get(self.shard_of(conn)) {
            s.mailbox.wake();
        }
    }

    /// A fresh listen-socket or poll-group handle.
    pub(crate) fn new_handle(&self) -> u32 {
        loop {
            let h = self.next_handle.fetch_add(1, Ordering::Relaxed);
            if h != 0 {
                return h;
            }
        }
    }

    /// A fresh connection id (= handle) on `shard`, from the ids the shard reserved (drawn
    /// there from the endpoint's random stream: peers see client ids and must not predict
    /// others). Waits (bounded) for the shard to top its stock up after a burst of connects;
    /// `None` when the shard has no id left.
    pub(crate) fn allocate_id(&self, shard: usize) -> Option<u32> {
        let s = &self.shards[shard];
        let start = self.clock.now();
        loop {
            if let Some(id) = s.ids.take() {
                return Some(id.get());
            }
            if s.ids.exhausted() || self.clock.now().saturating_since(start) > ID_WAIT {
                return None;
            }
            s.mailbox.wake();
            std::thread::yield_now();
        }
    }

    /// Returns an id that no engine connection holds (an in-memory pair's end) to `shard`.
    pub(crate) fn free_id(&self, shard: usize, id: u32) {
        self.send(shard, Command::ReleaseId { id: id.into() });
    }

    /// A client socket of `shard` for a new connection to `server`: one of `server`'s address
    /// family with no connection to `server` yet, bound (here, so errors surface to the
    /// caller) and handed to the shard when there is none. Counted until
    /// [`Shared::release_client_socket`].
    pub(crate) fn client_socket(&self, shard: usize, server: SocketAddr) -> std::io::Result<u16> {
        let s = &self.shards[shard];
        let mut client = lock(&s.client);
        let v6 = server.is_ipv6();
        if let Some(c) = client
            .iter_mut()
            .find(|c| c.v6 == v6 && !c.peers.contains_key(&server))
        {
            c.peers.insert(server, 1);
            return Ok(c.local);
        }
        let any = if v6 {
            SocketAddr::from(([0u16; 8], 0))
        } else {
            SocketAddr::from(([0u8; 4], 0))
        };
        // No GRO: its receive buffers (64 x 64 KiB) are per socket, and a process opening
        // thousands of connections to one server gets a socket for each (5,000 such sockets
        // meant 20 GB of buffers to allocate and zero). A client socket carries the traffic
        // of a connection or a few, where GRO gains little; listen sockets keep it.
        let config = MmsgConfig {
            reuse_port: false,
            gro: false,
            ..MmsgConfig::default()
        };
        let socket = MmsgDriver::bind_with(any, config)?;
        let local = s.next_local.fetch_add(1, Ordering::Relaxed);
        s.mailbox.send(Command::Attach {
            local,
            socket: Box::new(socket),
        });
        let mut peers = FxHashMap::default();
        peers.insert(server, 1);
        client.push(ClientSocket { local, v6, peers });
        Ok(local)
    }

    /// The connection to `server` from client socket `local` of `shard` is gone: the socket
    /// may carry another one to `server`.
    pub(crate) fn release_client_socket(&self, shard: usize, local: u16, server: SocketAddr) {
        let mut client = lock(&self.shards[shard].client);
        if let Some(c) = client.iter_mut().find(|c| c.local == local)
            && let Some(n) = c.peers.get_mut(&server)
        {
            *n -= 1;
            if *n == 0 {
                c.peers.remove(&server);
            }
        }
    }
}
