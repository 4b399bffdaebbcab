//! Starting and stopping a set of shards: one thread each, pinned, each with its own driver
//! (sockets bound to the same port with SO_REUSEPORT for a server), endpoint and mailbox.
//!
//! Starting has two phases, so that what the shards' apps need can be built from what the
//! shards expose (their mailboxes, id stocks and addresses) before any thread runs:
//!
//! ```text
//!  Runtime::bind(config, make_driver) ─► Bound { shards, mailboxes, addrs }   (no thread yet)
//!  Bound::spawn(make_app)             ─► Runtime { threads }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::{App, Clock, Forwarding, IdStock, Mailbox, Shard, ShardConfig, ShardStats, placement};
use crate::driver::Driver;
use crate::entropy::SecretSeed;
use crate::proto::endpoint::{Endpoint, EndpointConfig};
use crate::proto::ids::IdAllocator;

/// How a runtime starts.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Shard threads.
    pub shards: usize,
    /// Pin shard `i` to core `i`.
    pub pin: bool,
    /// Spin instead of sleeping.
    pub busy_poll: bool,
    /// The pause between turns under load ([`ShardConfig::coalesce`]; zero: none).
    pub coalesce: std::time::Duration,
    /// Datagrams per batch.
    pub batch: usize,
    /// Endpoint settings shared by every shard (shard index and bits are filled in).
    pub endpoint: EndpointConfig,
    /// Seed of shard `i`'s public values (ids, nonces) is `seed + i`.
    pub seed: u64,
    /// Where every secret derives from (identity and ephemeral keys, the challenge key); `None`
    /// (the default): 256 bits from the OS. Set it only in tests that must replay.
    pub secret: Option<SecretSeed>,
}

/// The derivation index of the challenge key (shards use their index).
const CHALLENGE_STREAM: u64 = u64::MAX;

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: placement::available_cores(),
            pin: true,
            busy_poll: false,
            coalesce: super::COALESCE_DEFAULT,
            batch: 64,
            endpoint: EndpointConfig::default(),
            seed: 0,
            secret: None,
        }
    }
}

/// Bits needed to name `n` shards.
pub fn shard_bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// Shards bound but not running yet: the first phase of a start.
pub struct Bound<D: Driver> {
    config: RuntimeConfig,
    shards: Vec<Shard<D>>,
    mailboxes: Vec<Mailbox>,
    addrs: Vec<SocketAddr>,
    shard_bits: u32,
    clock: Clock,
}

impl<D: Driver> std::fmt::Debug for Bound<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("shards", &self.shards.len())
            .field("addrs", &self.addrs)
            .finish()
    }
}

/// Running shards.
pub struct Runtime {
    mailboxes: Vec<Mailbox>,
    handles: Vec<JoinHandle<io::Result<ShardStats>>>,
    stop: Arc<AtomicBool>,
    addrs: Vec<SocketAddr>,
    shard_bits: u32,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.handles.len())
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Runtime {
    /// Binds every shard's driver with `make_driver(i)` (on this thread, so errors surface
    /// here), then starts one thread per shard running `make_app(i)`.
    pub fn start<D, A>(
        config: RuntimeConfig,
        make_driver: impl Fn(usize) -> io::Result<D>,
        make_app: impl Fn(usize) -> A,
    ) -> io::Result<Self>
    where
        D: Driver + Send + 'static,
        A: App + Send + 'static,
    {
        Self::bind(config, make_driver)?.spawn(make_app)
    }

    /// The first phase of a start: binds every shard's driver with `make_driver(i)` and builds
    /// its endpoint and mailbox, running nothing yet.
    pub fn bind<D: Driver>(
        config: RuntimeConfig,
        make_driver: impl Fn(usize) -> io::Result<D>,
    ) -> io::Result<Bound<D>> {
        let n = config.shards.max(1);
        let shard_bits = shard_bits_for(n);
        let clock = Clock::new();
        let root = match &config.secret {
            Some(s) => s.clone(),
            None => SecretSeed::from_os().map_err(io::Error::other)?,
        };
        // One challenge key for every shard of the port: a client's ChallengeRequest and its
        // ConnectRequest may be hashed to different shards.
        let challenge_secret = config.endpoint.challenge_secret.or_else(|| {
            use rand_core::Rng;
            let mut k = [0u8; 16];
            root.derive(CHALLENGE_STREAM).rng().fill_bytes(&mut k);
            Some(k)
        });
        let mut shards = Vec::with_capacity(n);
        let mut mailboxes = Vec::with_capacity(n);
        let mut addrs = Vec::with_capacity(n);
        for i in 0..n {
            let driver = make_driver(i)?;
            addrs.push(driver.local_addr()?);
            let ep_config = EndpointConfig {
                shard_bits,
                shard: i as u32,
                challenge_secret,
                ..config.endpoint
            };
            let endpoint = Endpoint::new(
                ep_config,
                config.seed.wrapping_add(i as u64),
                &root.derive(i as u64),
            );
            let shard_config = ShardConfig {
                index: i as u32,
                batch: config.batch,
                busy_poll: config.busy_poll,
                coalesce: config.coalesce,
            };
            let (shard, mb) = Shard::new(driver, endpoint, shard_config, clock);
            shards.push(shard);
            mailboxes.push(mb);
        }
        Ok(Bound {
            config,
            shards,
            mailboxes,
            addrs,
            shard_bits,
            clock,
        })
    }

    /// Shard `i`'s mailbox.
    pub fn mailbox(&self, i: usize) -> Option<&Mailbox> {
        self.mailboxes.get(i)
    }

    /// Bits of a connection id that name its shard.
    pub fn shard_bits(&self) -> u32 {
        self.shard_bits
    }

    /// The shard owning connection `id`.
    pub fn shard_of(&self, id: u32) -> usize {
        IdAllocator::shard_of(id, self.shard_bits) as usize
    }

    /// Each shard's bound address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.handles.len()
    }

    /// Stops every shard and returns their counters.
    pub fn stop(self) -> io::Result<Vec<ShardStats>> {
        // Release: commands queued before the stop are seen by the shards' last turn.
        self.stop.store(true, Ordering::Release);
        for mb in &self.mailboxes {
            // A sleeping shard must wake to see the stop flag.
            mb.wake();
        }
        self.handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| io::Error::other("shard thread panicked"))?
            })
            .collect()
    }
}

impl<D: Driver + Send + 'static> Bound<D> {
    /// Every shard's mailbox, in shard order.
    pub fn mailboxes(&self) -> &[Mailbox] {
        &self.mailboxes
    }

    /// Each shard's bound address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Bits of a connection id that name its shard.
    pub fn shard_bits(&self) -> u32 {
        self.shard_bits
    }

    /// The clock every shard reads (its `now` is the shards' `now`).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Gives every shard a stock of reserved connection ids for application threads (see
    /// [`IdStock`]); returns them in shard order.
    pub fn id_stocks(&mut self) -> Vec<Arc<IdStock>> {
        self.shards
            .iter_mut()
            .map(|s| {
                let stock = Arc::new(IdStock::default());
                s.set_id_stock(stock.clone());
                stock
            })
            .collect()
    }

    /// The second phase: starts one thread per shard running `make_app(i)`.
    pub fn spawn<A: App + Send + 'static>(
        self,
        make_app: impl Fn(usize) -> A,
    ) -> io::Result<Runtime> {
        let forwarding = Forwarding::new(self.mailboxes.clone(), self.shard_bits);
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(self.shards.len());
        for (i, mut shard) in self.shards.into_iter().enumerate() {
            shard.set_forwarding(forwarding.clone());
            let mut app = make_app(i);
            let stop = stop.clone();
            let pin = self.config.pin;
            let h = std::thread::Builder::new()
                .name(format!("sockworks-shard-{i}"))
                .spawn(move || {
                    if pin {
                        placement::pin_current_thread(i);
                    }
                    shard.run(&mut app, &stop)
                })?;
            handles.push(h);
        }
        Ok(Runtime {
            mailboxes: self.mailboxes,
            handles,
            stop,
            addrs: self.addrs,
            shard_bits: self.shard_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::shard_bits_for;

    #[test]
    fn shard_bits_cover_the_count() {
        assert_eq!(shard_bits_for(1), 0);
        assert_eq!(shard_bits_for(2), 1);
        assert_eq!(shard_bits_for(3), 2);
        assert_eq!(shard_bits_for(8), 3);
        assert_eq!(shard_bits_for(64), 6);
    }
}
