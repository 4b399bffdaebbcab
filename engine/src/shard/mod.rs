//! The thread-per-core runtime: one shard per core, each owning its endpoint (connections,
//! timers), its socket (a [`Driver`]), its batches and its mailbox. No lock is shared between
//! shards or with application threads on the data path.
//!
//! ```text
//!  loop {
//!    now = clock.now()                         (the only clock read)
//!    commands from the mailbox ─► command::apply (one FIFO: app threads' commands and
//!                                                 datagrams forwarded by other shards)
//!    recv_batch ─► steer: mine? ─► endpoint.handle_datagram (decrypt in place)
//!                          └─ no ─► the owner shard's mailbox (bounded, counted)
//!    due timers ─► endpoint.handle_timeout
//!    app.on_tick(endpoint, now)                (application logic living on the shard)
//!    endpoint.poll_transmit … ─► TxBatch ─► send_batch (one syscall for the batch)
//!    idle or settled? ─► loaded? ─► pause ≤ 50 µs    (the last receive found several
//!                        │             datagrams: gather a bigger batch, see `coalescing`)
//!                        └─ else ─► driver.wait(next deadline | wake)   (settled: socket
//!                                                   drained, nothing left to send)
//!  }
//! ```

pub(crate) mod clock;
pub mod command;
mod echo;
pub(crate) mod id_stock;
pub(crate) mod mailbox;
pub mod placement;
mod runtime;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use clock::Clock;
pub use command::{Command, Outgoing, Query, SendCredit};
pub use echo::EchoApp;
pub use id_stock::IdStock;
pub use mailbox::{Inbox, Mailbox, mailbox};
pub use runtime::{Bound, Runtime, RuntimeConfig, shard_bits_for as runtime_shard_bits};

use crate::driver::{Driver, RxBatch, TxBatch};
use crate::proto::endpoint::{Endpoint, RecvMeta};
use crate::proto::ids::IdAllocator;
use crate::time::Timestamp;
use crate::wire::packet::receiver_id;

/// Application logic that runs on the shard thread between I/O rounds.
pub trait App {
    /// Called once per loop iteration with the shard's endpoint.
    fn on_tick(&mut self, endpoint: &mut Endpoint, now: Timestamp);

    /// Sees each command just before the shard applies it (to drop its own per-connection
    /// state on a close, say).
    fn on_command(&mut self, command: &Command) {
        let _ = command;
    }
}

/// An app that does nothing (the endpoint is driven only by mailbox commands).
#[derive(Debug, Default)]
pub struct NoApp;

impl App for NoApp {
    fn on_tick(&mut self, _: &mut Endpoint, _: Timestamp) {}
}

/// Every shard's mailbox, for handing a datagram to the shard that owns it.
#[derive(Clone, Debug)]
pub struct Forwarding {
    mailboxes: Arc<Vec<Mailbox>>,
    shard_bits: u32,
}

impl Forwarding {
    /// Forwarding among the shards of `mailboxes`, whose connection ids carry `shard_bits`.
    pub fn new(mailboxes: Vec<Mailbox>, shard_bits: u32) -> Self {
        Forwarding {
            mailboxes: Arc::new(mailboxes),
            shard_bits,
        }
    }
}

/// Per-shard counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Loop iterations.
    pub iterations: u64,
    /// Datagrams received from the driver.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Receive calls that returned at least one datagram.
    pub recv_batches: u64,
    /// Send calls.
    pub send_batches: u64,
    /// Data packets that arrived here but belong to another shard (forwarded to it).
    pub forwarded_out: u64,
    /// Data packets other shards forwarded to us.
    pub forwarded_in: u64,
    /// Data packets dropped because their owner's queue was full.
    pub forward_dropped: u64,
    /// Commands applied.
    pub commands: u64,
    /// Times the loop slept.
    pub sleeps: u64,
    /// Pauses taken under load to gather larger batches ([`ShardConfig::coalesce`]).
    pub coalesced: u64,
    /// CPU time the shard thread used, microseconds (Linux `/proc/thread-self/stat`; 0 where
    /// unavailable). Filled when the shard stops.
    pub cpu_usec: u64,
}

/// CPU time of the calling thread in microseconds: from `/proc/thread-self/schedstat`
/// (nanosecond precision), else `/proc/thread-self/stat` (user + system, 10 ms ticks).
pub fn thread_cpu_usec() -> u64 {
    // schedstat's first field is the thread's time on a CPU in nanoseconds: exact, where stat
    // only has 10 ms ticks (too coarse for sub-second benchmark runs).
    if let Some(ns) = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .filter(|&ns| ns > 0)
    {
        return ns / 1000;
    }
    stat_cpu_usec("/proc/thread-self/stat")
}

/// CPU time of the whole process (every thread, user + system) in microseconds, from
/// `/proc/self/stat` (10 ms ticks): for runs of a second or more.
pub fn process_cpu_usec() -> u64 {
    stat_cpu_usec("/proc/self/stat")
}

/// utime + stime of a `/proc/…/stat` file, in microseconds (0 where unreadable).
fn stat_cpu_usec(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the command name start at field 3 (state); utime and stime are 14 and 15,
    // in USER_HZ ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) * 10_000
}

/// How one shard runs.
#[derive(Debug, Clone, Copy)]
pub struct ShardConfig {
    /// This shard's index (the shard bits of its connection ids).
    pub index: u32,
    /// Datagrams per receive and send batch.
    pub batch: usize,
    /// Spin instead of sleeping when idle (lowest latency, burns the core).
    pub busy_poll: bool,
    /// Under load, pause this long between turns so that datagrams and commands gather into
    /// larger batches (after a turn that found several datagrams and took less than this);
    /// zero turns it off.
    pub coalesce: std::time::Duration,
}

/// The pause [`ShardConfig::coalesce`] has by default: at a turn per 50 µs a shard still
/// answers well within a frame, and each turn's fixed cost (the receive, send and wait calls,
/// the application thread's wake-up) is spread over several times more datagrams.
pub const COALESCE_DEFAULT: std::time::Duration = std::time::Duration::from_micros(50);

/// A turn that received at least this many datagrams counts as loaded: the next one waits
/// [`ShardConfig::coalesce`] first. Below it (one request at a time, a quiet server) every
/// datagram is handled the moment it arrives.
pub const COALESCE_MIN_DATAGRAMS: usize = 4;

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            index: 0,
            batch: 64,
            busy_poll: false,
            coalesce: COALESCE_DEFAULT,
        }
    }
}

/// How often a shard re-anchors its endpoint's wall-clock time (so clock adjustments are
/// followed; certificate validity is judged in whole seconds).
const WALL_CLOCK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Commands applied per turn at most, so a flood of them cannot starve the sockets.
const MAX_COMMANDS_PER_TURN: usize = 1024;

/// One shard: a driver, an endpoint, batches and a mailbox.
pub struct Shard<D: Driver> {
    driver: D,
    endpoint: Endpoint,
    inbox: Inbox,
    clock: Clock,
    config: ShardConfig,
    rx: RxBatch,
    tx: TxBatch,
    forwarding: Option<Forwarding>,
    /// Reserved connection ids for application threads, when they connect through this shard.
    id_stock: Option<Arc<IdStock>>,
    /// Sockets to detach once this turn's datagrams are sent.
    deferred: command::Deferred,
    /// When the endpoint's wall-clock anchor is renewed next (`None`: at the next turn).
    next_wall_clock: Option<Timestamp>,
    /// The last wait ended with no datagram ready: the next turn skips its receive call.
    skip_recv: bool,
    /// The last turn's receive call drained the socket (returned less than a full batch), or
    /// was skipped (a poll had just found no socket readable, or the turn before had drained
    /// it).
    drained: bool,
    /// The last turn skipped its receive call.
    skipped_recv: bool,
    /// Datagrams the last receive call returned.
    last_received: usize,
    /// When the last turn began.
    turn_began: Timestamp,
    stats: ShardStats,
}

impl<D: Driver> std::fmt::Debug for Shard<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("index", &self.config.index)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<D: Driver> Shard<D> {
    /// A shard over `driver` and `endpoint`; returns it with the mailbox producers use.
    pub fn new(
        driver: D,
        endpoint: Endpoint,
        config: ShardConfig,
        clock: Clock,
    ) -> (Self, Mailbox) {
        let (mb, inbox) = mailbox(driver.waker());
        let shard = Shard {
            driver,
            endpoint,
            inbox,
            clock,
            config,
            rx: RxBatch::new(config.batch),
            tx: TxBatch::with_capacity(config.batch),
            forwarding: None,
            id_stock: None,
            deferred: Vec::new(),
            next_wall_clock: None,
            skip_recv: false,
            drained: false,
            skipped_recv: false,
            last_received: 0,
            turn_began: Timestamp::ZERO,
            stats: ShardStats::default(),
        };
        (shard, mb)
    }

    /// Joins a forwarding group (call before running).
    pub fn set_forwarding(&mut self, f: Forwarding) {
        self.forwarding = Some(f);
    }

    /// Keeps `stock` topped up with reserved connection ids (call before running).
    pub fn set_id_stock(&mut self, stock: Arc<IdStock>) {
        stock.top_up(&mut self.endpoint);
        self.id_stock = Some(stock);
    }

    /// Counters so far.
    pub fn stats(&self) -> ShardStats {
        self.stats
    }

    /// The endpoint (between runs, or from tests).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The driver's bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.driver.local_addr()
    }

    /// The owner shard of a data datagram, if it is not shard `me`.
    fn foreign_owner(forwarding: Option<&Forwarding>, me: u32, data: &[u8]) -> Option<usize> {
        let f = forwarding?;
        let id = receiver_id(data)?;
        let owner = IdAllocator::shard_of(id, f.shard_bits) as usize;
        (owner != me as usize && owner < f.mailboxes.len()).then_some(owner)
    }

    /// One loop iteration; returns whether it did any work.
    pub fn turn(&mut self, app: &mut impl App) -> io::Result<bool> {
        self.stats.iterations += 1;
        let now = self.clock.now();
        self.turn_began = now;
        if self.next_wall_clock.is_none_or(|t| t <= now) {
            // Certificates are judged by wall-clock time, which only the clock module reads.
            self.endpoint.set_unix_time(now, self.clock.unix_secs());
            self.next_wall_clock = Some(now + WALL_CLOCK_EVERY);
        }
        let mut budget = MAX_COMMANDS_PER_TURN;
        let mut work = self.run_commands(app, now, &mut budget);
        self.rx.clear();
        self.skipped_recv = std::mem::take(&mut self.skip_recv);
        let n = if self.skipped_recv {
            0
        } else {
            self.driver.recv_batch(&mut self.rx)?
        };
        self.drained = n < self.config.batch;
        if !self.skipped_recv {
            self.last_received = n;
        }
        if n > 0 {
            self.stats.recv_batches += 1;
            self.stats.datagrams_in += n as u64;
            work = true;
        }
        for i in 0..n {
            let local = self.rx.local(i);
            let Some((from, data)) = self.rx.get_mut(i) else {
                break;
            };
            let meta = RecvMeta { local, from };
            match Self::foreign_owner(self.forwarding.as_ref(), self.config.index, data) {
                Some(owner) => {
                    if let Some(f) = &self.forwarding {
                        let cmd = Command::Forwarded {
                            meta,
                            data: data.to_vec(),
                        };
                        if f.mailboxes[owner].forward(cmd) {
                            self.stats.forwarded_out += 1;
                        } else {
                            self.stats.forward_dropped += 1;
                        }
                    }
                }
                None => self.endpoint.handle_datagram(now, meta, data),
            }
        }
        if self.endpoint.poll_timeout(now).is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
            work = true;
        }
        app.on_tick(&mut self.endpoint, now);
        // An application thread woken by what this turn delivered (on this core it often runs
        // at once) may have answered already: its sends go out in this turn's batch, beside
        // the acks, instead of costing a turn of their own. What those commands caused (status
        // changes, say) is handed to the app now: the loop may sleep after this turn.
        if self.run_commands(app, now, &mut budget) {
            app.on_tick(&mut self.endpoint, now);
            work = true;
        }
        work |= self.flush(now)?;
        for (local, closed) in self.deferred.drain(..) {
            command::detach(&mut self.driver, local, closed);
        }
        if let Some(stock) = &self.id_stock {
            stock.top_up(&mut self.endpoint);
        }
        Ok(work)
    }

    /// Applies queued commands, at most `budget` (what is left of the turn's); returns whether
    /// there were any.
    fn run_commands(&mut self, app: &mut impl App, now: Timestamp, budget: &mut usize) -> bool {
        let mut any = false;
        while *budget > 0 {
            let Some(cmd) = self.inbox.pop() else { break };
            *budget -= 1;
            app.on_command(&cmd);
            if matches!(cmd, Command::Forwarded { .. }) {
                self.stats.forwarded_in += 1;
            }
            self.stats.commands += 1;
            command::apply(
                cmd,
                &mut self.endpoint,
                &mut self.driver,
                now,
                &mut self.deferred,
            );
            any = true;
        }
        any
    }

    /// Moves transmits into the batch and sends it; keeps what the socket refused.
    fn flush(&mut self, now: Timestamp) -> io::Result<bool> {
        let mut sent_any = false;
        loop {
            // Datagrams are written straight into the batch buffer: no copy per packet.
            let endpoint = &mut self.endpoint;
            while self.tx.len() < self.config.batch
                && self.tx.push_with(|buf| endpoint.poll_transmit(now, buf))
            {}
            if self.tx.is_empty() {
                return Ok(sent_any);
            }
            let n = self.driver.send_batch(&self.tx)?;
            self.stats.send_batches += 1;
            self.stats.datagrams_out += n as u64;
            sent_any = true;
            let full = n < self.tx.len();
            self.tx.consume(n);
            if full || n == 0 {
                // The socket buffer is full: keep the rest for the next turn.
                return Ok(true);
            }
        }
    }

    /// Sleeps until the next deadline, a datagram or a wake (never when busy polling).
    fn idle(&mut self) -> io::Result<()> {
        if self.config.busy_poll {
            return Ok(());
        }
        let now = self.clock.now();
        let timeout = self
            .endpoint
            .poll_timeout(now)
            .map(|t| t.saturating_since(now));
        let timeout = if self.tx.is_empty() {
            timeout
        } else {
            Some(std::time::Duration::from_millis(1))
        };
        if self.coalescing(now) {
            // Commands queued meanwhile wait too (the sleeping flag stays clear, so their
            // senders do not pay for a wake-up); the next turn takes them with the datagrams.
            let pause = timeout.map_or(self.config.coalesce, |t| t.min(self.config.coalesce));
            self.stats.coalesced += 1;
            self.last_received = 0;
            std::thread::sleep(pause);
            return Ok(());
        }
        if self.inbox.prepare_sleep() {
            self.stats.sleeps += 1;
            self.driver.wait(timeout)?;
            self.skip_recv = !self.driver.maybe_readable();
        } else {
            // Commands arrived since the last turn, which drained the socket an instant ago:
            // run them without a receive call; anything that arrived meanwhile is seen by
            // the poll after that turn (level-triggered), so it waits no longer than that.
            // Never twice in a row without a poll in between, so a steady stream of commands
            // cannot keep the socket unread.
            self.skip_recv = self.drained && !self.skipped_recv;
        }
        self.inbox.woke();
        Ok(())
    }

    /// Whether the next turn should wait [`ShardConfig::coalesce`] first: the last receive
    /// drained the socket after at least [`COALESCE_MIN_DATAGRAMS`] datagrams (they arrive
    /// faster than turns end), the turn took less than the pause (a longer one has its fixed
    /// costs spread already), and nothing waits for room in the socket. Under such load a
    /// turn per handful of datagrams spends much of the core on fixed per-turn work (the
    /// receive, send and wait calls, the application thread's wake-up); a short pause gathers
    /// the next batch, so it goes in one receive and one send call, and GSO finds runs to one
    /// peer. The application's replies to this turn's messages are not held back: they went
    /// out with this turn's flush when its thread answered at once (see [`Shard::turn`]). A
    /// quiet server, or one request at a time, never pauses, so unloaded latency is unchanged;
    /// and never two pauses without a turn between them.
    fn coalescing(&self, now: Timestamp) -> bool {
        !self.config.coalesce.is_zero()
            && now.saturating_since(self.turn_began) < self.config.coalesce
            && self.drained
            && self.tx.is_empty()
            && self.last_received >= COALESCE_MIN_DATAGRAMS
    }

    /// Whether the last turn left nothing for an immediate next one: it drained the socket
    /// and sent everything. The loop then goes straight to [`Shard::idle`], whose poll
    /// returns at once if something arrived meanwhile, instead of a receive call that would
    /// most likely find nothing (one system call saved per burst).
    fn settled(&self) -> bool {
        self.drained && self.tx.is_empty()
    }

    /// Runs until `stop` is set, then one last turn so that commands queued before the stop
    /// (closing connections, say) still run and their datagrams go out; returns the counters.
    pub fn run(&mut self, app: &mut impl App, stop: &AtomicBool) -> io::Result<ShardStats> {
        while !stop.load(Ordering::Acquire) {
            if !self.turn(app)? || self.settled() {
                self.idle()?;
            }
        }
        self.turn(app)?;
        self.stats.cpu_usec = thread_cpu_usec();
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests;
