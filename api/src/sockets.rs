//! The instance (`ISteamNetworkingSockets`): its shards, its handle tables, and the lookups
//! every call starts with.
//!
//! ```text
//!  Sockets (Clone, Send + Sync) ─► Instance ─► Shared ◄──────────── ApiApp on each shard
//!                                   │           shards[i]: mailbox, socket set, ids, conns
//!                                   └ Runtime   listen sockets, poll groups, events, config
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crossbeam_queue::SegQueue;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use rustc_hash::FxHashMap;
use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver};
use sockworks_engine::driver::set::{SetControl, SocketSet};
use sockworks_engine::proto::endpoint::{Endpoint, EndpointConfig, SharedIds};
use sockworks_engine::proto::ids::IdAllocator;
use sockworks_engine::shard::{Command, Mailbox, Runtime, RuntimeConfig, placement};
use sockworks_engine::time::Timestamp;

use crate::callbacks::StatusChanged;
use crate::config::Config;
use crate::handles::Connection;
use crate::record::{ConnRecord, GroupRecord, ListenRecord, lock};
use crate::shard_app::ApiApp;

/// How an instance starts.
#[derive(Debug, Clone, Copy)]
pub struct SocketsConfig {
    /// Shard threads (default: the available cores).
    pub shards: usize,
    /// Pin shard `i` to core `i`.
    pub pin: bool,
    /// Spin instead of sleeping when idle.
    pub busy_poll: bool,
    /// Seed of the public random values (handle numbers, the engine's connection ids and
    /// nonces); `None` draws one from the OS. Secrets (identity and ephemeral keys, the challenge
    /// key) never derive from it: they always come from the OS.
    pub seed: Option<u64>,
}

impl Default for SocketsConfig {
    fn default() -> Self {
        SocketsConfig {
            shards: placement::available_cores(),
            pin: false,
            busy_poll: false,
            seed: None,
        }
    }
}

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Creating a shard's sockets or threads failed.
    #[error("starting the shards: {0}")]
    Io(#[from] std::io::Error),
    /// No OS randomness for the seed.
    #[error("no OS randomness: {0}")]
    Random(String),
}

/// One shard as application threads see it.
pub(crate) struct ShardRef {
    pub mailbox: Mailbox,
    pub set: Arc<SetControl>,
    pub ids: SharedIds,
    pub conns: RwLock<FxHashMap<u32, Arc<ConnRecord>>>,
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
    pub pair_listeners: Mutex<rustc_hash::FxHashSet<u32>>,
    /// Random source for client connection ids.
    pub rng: Mutex<ChaCha8Rng>,
}

/// Reads a lock even after a panic elsewhere (holders keep the data consistent).
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes a lock even after a panic elsewhere.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The shard owning a connection handle.
    pub fn shard_of(&self, conn: Connection) -> usize {
        IdAllocator::shard_of(conn.0, self.shard_bits) as usize
    }

    /// A live connection's record (`None`: invalid, closed by the application, or foreign).
    pub fn conn(&self, conn: Connection) -> Option<Arc<ConnRecord>> {
        let shard = self.shards.get(self.shard_of(conn))?;
        let rec = read(&shard.conns).get(&conn.0).cloned()?;
        (!rec.closed.load(Ordering::Acquire)).then_some(rec)
    }

    /// Runs `f` on the connection's shard.
    pub fn command(&self, shard: usize, f: impl FnOnce(&mut Endpoint, Timestamp) + Send + 'static) {
        if let Some(s) = self.shards.get(shard) {
            let cmd: Command = Box::new(f);
            s.mailbox.send(cmd);
        }
    }

    /// A fresh listen-socket or poll-group handle.
    pub fn new_handle(&self) -> u32 {
        loop {
            let h = self.next_handle.fetch_add(1, Ordering::Relaxed);
            if h != 0 {
                return h;
            }
        }
    }

    /// A fresh connection id (= handle) on `shard`, drawn from a CSPRNG seeded from the OS:
    /// peers see client ids on the wire and must not be able to predict others. `None` when
    /// the shard has no id left.
    pub fn allocate_id(&self, shard: usize) -> Option<u32> {
        let mut rng = lock(&self.rng);
        lock(&self.shards[shard].ids)
            .allocate(|| rng.next_u32())
            .ok()
    }

    /// Returns an id that no engine connection holds (the API's own pipes) to `shard`.
    pub fn free_id(&self, shard: usize, id: u32) {
        lock(&self.shards[shard].ids).free(id);
    }

    /// A client socket of `shard` for a new connection to `server`: one of `server`'s address
    /// family with no connection to `server` yet, bound when there is none. Counted until
    /// [`Shared::release_client_socket`].
    pub fn client_socket(&self, shard: usize, server: SocketAddr) -> std::io::Result<u16> {
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
        let any: SocketAddr = if v6 {
            "[::]:0".parse().map_err(std::io::Error::other)?
        } else {
            "0.0.0.0:0".parse().map_err(std::io::Error::other)?
        };
        let config = MmsgConfig {
            reuse_port: false,
            ..MmsgConfig::default()
        };
        let driver = MmsgDriver::bind_with(any, config)?;
        let local = s.next_local.fetch_add(1, Ordering::Relaxed);
        s.set.add(local, driver);
        let mut peers = FxHashMap::default();
        peers.insert(server, 1);
        client.push(ClientSocket { local, v6, peers });
        Ok(local)
    }

    /// The connection to `server` from client socket `local` of `shard` is gone: the socket
    /// may carry another one to `server`.
    pub fn release_client_socket(&self, shard: usize, local: u16, server: SocketAddr) {
        let mut client = lock(&self.shards[shard].client);
        if let Some(c) = client.iter_mut().find(|c| c.local == local) {
            if let Some(n) = c.peers.get_mut(&server) {
                *n -= 1;
                if *n == 0 {
                    c.peers.remove(&server);
                }
            }
        }
    }
}

/// The instance and its shard threads; the shards stop when the last `Sockets` clone drops.
pub(crate) struct Instance {
    pub shared: Arc<Shared>,
    runtime: Mutex<Option<Runtime>>,
}

/// `k_ESteamNetConnectionEnd_AppException_Max`: the end reason GNS gives connections still
/// open when the interface is destroyed.
const END_SHUTDOWN: u32 = 1999;

impl Drop for Instance {
    fn drop(&mut self) {
        // As GNS's shutdown: connections the application left open are closed, with a quick
        // ConnectionClosed to each peer (the shards' last turn sends it).
        let sh = &self.shared;
        for (i, shard) in sh.shards.iter().enumerate() {
            let open: Vec<u32> = read(&shard.conns)
                .iter()
                .filter(|(_, r)| !r.closed.load(Ordering::Acquire))
                .map(|(&id, _)| id)
                .collect();
            if !open.is_empty() {
                sh.command(i, move |ep, now| {
                    for id in open {
                        let _ = ep.close(
                            now,
                            id.into(),
                            END_SHUTDOWN,
                            "SteamNetworkingSockets shutdown",
                            false,
                        );
                    }
                });
            }
        }
        if let Some(rt) = lock(&self.runtime).take() {
            let _ = rt.stop();
        }
    }
}

/// `ISteamNetworkingSockets`: one instance with its own shards. Clone it freely; every call
/// is safe from any number of threads at once.
#[derive(Clone)]
pub struct Sockets {
    pub(crate) inner: Arc<Instance>,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("shards", &self.inner.shared.shards.len())
            .finish()
    }
}

fn os_seed() -> Result<u64, InitError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| InitError::Random(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}

impl Sockets {
    /// An instance with the default configuration (one shard per core).
    pub fn new() -> Result<Self, InitError> {
        Self::with_config(SocketsConfig::default())
    }

    /// An instance with `config`.
    pub fn with_config(config: SocketsConfig) -> Result<Self, InitError> {
        let seed = match config.seed {
            Some(s) => s,
            None => os_seed()?,
        };
        let n = config.shards.max(1);
        let rt_config = RuntimeConfig {
            shards: n,
            pin: config.pin,
            busy_poll: config.busy_poll,
            batch: 64,
            endpoint: EndpointConfig::default(),
            seed,
            secret: None,
        };
        let controls: Mutex<Vec<Arc<SetControl>>> = Mutex::new(Vec::new());
        let shared_slot: Arc<Mutex<Option<Arc<Shared>>>> = Arc::new(Mutex::new(None));
        let slot = shared_slot.clone();
        let runtime = Runtime::start(
            rt_config,
            |_| {
                let set = SocketSet::new()?;
                lock(&controls).push(set.control());
                Ok(set)
            },
            move |i| ApiApp::new(i, slot.clone()),
        )?;
        let controls = std::mem::take(&mut *lock(&controls));
        let shards = (0..n)
            .map(|i| ShardRef {
                // invariant: the runtime made one mailbox and allocator per shard.
                mailbox: runtime
                    .mailbox(i)
                    .cloned()
                    .expect("invariant: shard exists"),
                set: controls[i].clone(),
                ids: runtime
                    .shared_ids(i)
                    .cloned()
                    .expect("invariant: shard exists"),
                conns: RwLock::new(FxHashMap::default()),
                next_local: AtomicU16::new(0),
                client: Mutex::new(Vec::new()),
            })
            .collect();
        let shared = Arc::new(Shared {
            shards,
            shard_bits: runtime.shard_bits(),
            listen: RwLock::new(FxHashMap::default()),
            groups: RwLock::new(FxHashMap::default()),
            next_handle: AtomicU32::new((seed as u32 & 0xffff) | 1),
            events: SegQueue::new(),
            global: RwLock::new(Config::defaults()),
            next_client_shard: AtomicUsize::new(0),
            pair_listeners: Mutex::new(rustc_hash::FxHashSet::default()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x6a09_e667_f3bc_c908)),
        });
        *lock(&shared_slot) = Some(shared.clone());
        Ok(Sockets {
            inner: Arc::new(Instance {
                shared,
                runtime: Mutex::new(Some(runtime)),
            }),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Shards (threads) this instance runs.
    pub fn shard_count(&self) -> usize {
        self.shared().shards.len()
    }
}
