//! The instance (`ISteamNetworkingSockets`): starting its shards and shutting them down.
//!
//! ```text
//!  Sockets (Clone, Send + Sync) ─► Instance ─► Shared ◄──────────── ApiApp on each shard
//!                                   │           shards[i]: mailbox, id stock, conns
//!                                   └ Runtime   listen sockets, poll groups, events, config
//! ```
//!
//! Starting is two-phase: the runtime binds its shards, `Shared` is built from their
//! mailboxes and id stocks, and only then do the shard threads start, each with its `ApiApp`
//! holding `Shared`.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_queue::SegQueue;
use rustc_hash::FxHashMap;
use sockworks_engine::driver::set::SocketSet;
use sockworks_engine::proto::end_reason;
use sockworks_engine::proto::endpoint::EndpointConfig;
use sockworks_engine::shard::{Command, Runtime, RuntimeConfig, placement};

use crate::activity::Activity;
use crate::auth::Auth;
use crate::auth_config::{CaClientConfig, TrustConfig};
use crate::config::Config;
use crate::shard_app::ApiApp;
use crate::shared::{ShardRef, Shared};
use crate::sync::read;

/// How an instance starts.
#[derive(Debug, Clone)]
pub struct SocketsConfig {
    /// Shard threads (default: the available cores).
    pub shards: usize,
    /// Pin shard `i` to core `i`.
    pub pin: bool,
    /// Spin instead of sleeping when idle.
    pub busy_poll: bool,
    /// Ours, beyond GNS: under load (a shard's receive keeps finding several datagrams), the
    /// shard pauses this long between turns so that datagrams and the application's replies
    /// go out in larger batches: less CPU per message for at most this much added latency,
    /// and none when load is light. Zero turns it off.
    pub coalesce: std::time::Duration,
    /// Seed of the public random values (handle numbers, the engine's connection ids and
    /// nonces); `None` draws one from the OS. Secrets (identity and ephemeral keys, the challenge
    /// key) never derive from it: they always come from the OS.
    pub seed: Option<u64>,
    /// Our identity (`GameNetworkingSockets_Init`'s argument); `None`: anonymous localhost
    /// (`ip:::1`) with a self-signed certificate, as open-source GNS.
    pub identity: Option<sockworks_engine::wire::identity::Identity>,
    /// Whom we trust: CA keys, revoked keys, whether peers must present a trusted cert.
    pub trust: TrustConfig,
    /// The CA service `InitAuthentication` fetches our certificate from; `None`: none
    /// (`InitAuthentication` reports `CannotTry`, "No certificate authority").
    pub ca: Option<CaClientConfig>,
    /// The rendezvous service `ConnectP2P` signals through (ours; GNS takes a signaling
    /// callback); `None`: `ConnectP2P` fails, as GNS's does without one.
    pub rendezvous: Option<crate::p2p_rendezvous::RendezvousConfig>,
    /// This server's place in a relay fleet (ours; `None`: SDR's environment variables, see
    /// [`crate::HostedConfig`]).
    pub hosted: Option<crate::hosted::HostedConfig>,
    /// Relays of our fleet `ConnectToHostedDedicatedServer` may use (ours; empty:
    /// `SOCKWORKS_RELAYS`).
    pub relays: Vec<std::net::SocketAddr>,
}

impl Default for SocketsConfig {
    fn default() -> Self {
        SocketsConfig {
            shards: placement::available_cores(),
            pin: false,
            busy_poll: false,
            coalesce: sockworks_engine::shard::COALESCE_DEFAULT,
            seed: None,
            identity: None,
            trust: TrustConfig::default(),
            ca: None,
            rendezvous: None,
            hosted: None,
            relays: Vec::new(),
        }
    }
}

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Creating a shard's sockets or threads failed.
    #[error("starting the shards: {0}")]
    Io(#[from] std::io::Error),
    /// No OS randomness for the seed.
    #[error("no OS randomness: {0}")]
    Random(String),
    /// The identity or trust settings cannot be used.
    #[error("identity: {0}")]
    Identity(String),
}

/// The instance and its shard threads; the shards stop when the last `Sockets` clone drops.
pub(crate) struct Instance {
    pub shared: Arc<Shared>,
    runtime: Option<Runtime>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // As GNS's shutdown: connections the application left open are closed, with a quick
        // ConnectionClosed to each peer (the shards' last turn sends it), with the end reason
        // AppException_Max (2999) and GNS's text, as its KillConnections closes them.
        let sh = &self.shared;
        sh.auth.worker.stop();
        for (i, shard) in sh.shards.iter().enumerate() {
            let open: Vec<u32> = read(&shard.conns)
                .values()
                .filter(|r| !r.is_closed())
                .map(|r| r.handle.0)
                .collect();
            for id in open {
                sh.send(
                    i,
                    Command::Close {
                        id: id.into(),
                        reason: end_reason::APP_EXCEPTION_MAX,
                        debug: "SteamNetworkingSockets shutdown".to_owned(),
                        linger: false,
                    },
                );
            }
        }
        if let Some(rt) = self.runtime.take() {
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

/// 64 random bits from the OS (public seeds, hash keys; never key material).
pub(crate) fn os_u64() -> Result<u64, getrandom::Error> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)?;
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
            None => os_u64().map_err(|e| InitError::Random(e.to_string()))?,
        };
        let n = config.shards.max(1);
        let rt_config = RuntimeConfig {
            shards: n,
            pin: config.pin,
            busy_poll: config.busy_poll,
            coalesce: config.coalesce,
            batch: 64,
            endpoint: EndpointConfig::default(),
            seed,
            secret: None,
        };
        let mut bound = Runtime::bind(rt_config, |_| SocketSet::new())?;
        let stocks = bound.id_stocks();
        let shards = bound
            .mailboxes()
            .iter()
            .zip(stocks)
            .map(|(mailbox, ids)| ShardRef {
                mailbox: mailbox.clone(),
                ids,
                conns: RwLock::default(),
                next_local: AtomicU16::new(0),
                client: Mutex::new(Vec::new()),
            })
            .collect();
        let shared = Arc::new(Shared {
            shards,
            shard_bits: bound.shard_bits(),
            listen: RwLock::new(FxHashMap::default()),
            groups: RwLock::new(FxHashMap::default()),
            next_handle: AtomicU32::new((seed as u32 & 0xffff) | 1),
            events: SegQueue::new(),
            global: RwLock::new(Config::defaults()),
            next_client_shard: AtomicUsize::new(0),
            pair_listeners: Mutex::new(rustc_hash::FxHashSet::default()),
            clock: bound.clock(),
            activity: Activity::default(),
            auth: Auth::new(config.identity.clone(), &config.trust, config.ca.clone()),
            p2p: crate::p2p::P2pShared::default(),
            fake_ip: crate::fakeip::FakeIpShared::default(),
            rendezvous: std::sync::OnceLock::new(),
            hosted: config.hosted.clone(),
            relays: config.relays.clone(),
            tickets: crate::hosted::TicketCache::default(),
        });
        // Queued before any other command: the shards know whom they are and whom they
        // trust from their first turn.
        let start = shared.auth.start_commands(n).map_err(InitError::Identity)?;
        for (i, cmd) in start.into_iter().enumerate() {
            shared.send(i % n, cmd);
        }
        let runtime = bound.spawn(|i| ApiApp::new(i, shared.clone()))?;
        let inner = Arc::new(Instance {
            shared,
            runtime: Some(runtime),
        });
        if let Some(r) = &config.rendezvous {
            let identity = config
                .identity
                .clone()
                .unwrap_or_else(sockworks_engine::wire::identity::Identity::localhost);
            let client = crate::p2p_rendezvous::start(r, &identity, Arc::downgrade(&inner))?;
            // A fresh instance: the cell is empty.
            let _ = inner.shared.rendezvous.set(client);
        }
        Ok(Sockets { inner })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Ours, beyond GNS: the instance's activity generation, which moves whenever a shard
    /// delivers a message or queues a status change. Take it before looking at the queues,
    /// then pass it to [`Sockets::wait_for_activity`].
    pub fn activity(&self) -> u64 {
        self.shared().activity.generation()
    }

    /// Ours, beyond GNS: sleeps until the activity generation moves past `since` (a value of
    /// [`Sockets::activity`] taken before the caller last drained its queues) or `timeout`
    /// passes, and returns the generation then. A server loop can sleep here instead of
    /// polling; nothing that arrived after `since` is missed.
    pub fn wait_for_activity(&self, since: u64, timeout: std::time::Duration) -> u64 {
        let sh = self.shared();
        sh.activity.wait(since, timeout, &sh.clock)
    }

    /// Now on the instance's clock: what [`Message::time_received`](crate::Message) is
    /// measured on, so a caller can tell how long a message waited.
    pub fn now(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.shared().clock.now().as_micros())
    }

    /// Shards (threads) this instance runs.
    pub fn shard_count(&self) -> usize {
        self.shared().shards.len()
    }
}
