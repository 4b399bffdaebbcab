//! What application threads and shards share about each connection, listen socket and poll
//! group. Every shared field has one writer (docs/concurrency.md has the table):
//!
//! | written by | fields |
//! |---|---|
//! | fixed at creation | `handle`, `shard`, `incoming`, `listener`, `pipe` (in `rare`) |
//! | the owning shard | `state`, `info`, `local.credit` and `recv` (their shard halves); pushes to `inbox` |
//! | application threads | `closed`, `accepted`, `silent`, `user_data`, `name` and `client_socket` (in `rare`), `group`, `local` (with the callback), `local.credit` and `recv` (their application halves); pops from `inbox` |
//!
//! Data-path fields are atomics and lock-free queues; the mutexes guard data that only
//! application threads touch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_queue::SegQueue;
use once_cell::race::OnceBox;
use sockworks_engine::proto::admission::Admission;
use sockworks_engine::proto::connection::ConnectionConfig;
use sockworks_engine::shard::SendCredit;

use crate::callbacks::StatusChangedFn;
use crate::config::Config;
use crate::group_queue::GroupQueue;
use crate::handles::{Connection, ConnectionState, ListenSocket, PollGroup};
use crate::info::{ConnectionInfo, Published};
use crate::message::Message;
use crate::recv_credit::RecvCredit;

/// What only application threads touch: holding it while taking a number and queuing the
/// send keeps numbers and command order in step.
pub(crate) struct Local {
    /// Next message number per lane.
    pub next_number: LaneNumbers,
    /// The connection's settings as the application last set them (the shard gets a copy of
    /// the whole set on every change); shared between connections until one is changed.
    pub config: Arc<ConnectionConfig>,
    /// Send-buffer accounting shared with the shard, from the first send on: a connection
    /// that never sends has nothing buffered and needs none (issue 16: memory per idle
    /// connection).
    pub credit: Option<Arc<SendCredit>>,
    /// The status-change callback (`run_callbacks` calls it): here rather than behind its
    /// own mutex, since only application threads touch it too.
    pub callback: Option<StatusChangedFn>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("next_number", &self.next_number)
            .field("callback", &self.callback.is_some())
            .finish_non_exhaustive()
    }
}

/// The next message number of each lane. Most connections keep the one lane they start
/// with: its number is kept inline, so they need no allocation for it (issue 16).
#[derive(Debug)]
pub(crate) struct LaneNumbers {
    /// Lane 0.
    first: i64,
    /// Lanes 1 and up, once lanes are configured.
    #[expect(
        clippy::box_collection,
        reason = "one word in every record, where a Vec takes three; only multi-lane connections pay the extra allocation"
    )]
    rest: Option<Box<Vec<i64>>>,
}

impl Default for LaneNumbers {
    /// One lane; numbers start at 1.
    fn default() -> Self {
        LaneNumbers {
            first: 1,
            rest: None,
        }
    }
}

impl LaneNumbers {
    /// How many lanes there are.
    pub(crate) fn len(&self) -> usize {
        1 + self.rest.as_ref().map_or(0, |r| r.len())
    }

    /// Lane `lane`'s next number, counted as used; `None` for an unknown lane.
    pub(crate) fn take(&mut self, lane: usize) -> Option<i64> {
        let n = match lane {
            0 => &mut self.first,
            _ => self.rest.as_mut()?.get_mut(lane - 1)?,
        };
        let number = *n;
        *n += 1;
        Some(number)
    }

    /// Grows to `lanes` lanes (never shrinks); new lanes start at 1.
    pub(crate) fn grow(&mut self, lanes: usize) {
        if lanes > self.len() {
            self.rest.get_or_insert_default().resize(lanes - 1, 1);
        }
    }
}

/// `c` behind an `Arc`, the same one as the previous call's when equal: a server's
/// connections nearly all start with their listen socket's settings, 160 bytes kept once
/// instead of per connection (issue 16: memory per idle connection). Process-wide; a cache
/// only, so which instance filled it does not matter.
pub(crate) fn shared_config(c: &ConnectionConfig) -> Arc<ConnectionConfig> {
    static LAST: Mutex<Option<Arc<ConnectionConfig>>> = Mutex::new(None);
    let mut last = crate::sync::lock(&LAST);
    match &*last {
        Some(prev) if **prev == *c => prev.clone(),
        _ => {
            let fresh = Arc::new(*c);
            *last = Some(fresh.clone());
            fresh
        }
    }
}

/// Where a batch of received messages goes: a poll group's queue (gathered here and pushed
/// as one batch), or (no group) the connection's own.
pub(crate) struct Sink {
    group: Option<Arc<GroupRecord>>,
    batch: Vec<Message>,
}

/// A poll group: a queue the shards fill for every member connection.
#[derive(Debug)]
pub(crate) struct GroupRecord {
    pub handle: PollGroup,
    pub queue: GroupQueue,
}

/// A listen socket: one SO_REUSEPORT member per shard.
#[derive(Debug)]
pub(crate) struct ListenRecord {
    pub addr: SocketAddr,
    /// The local socket index of this listen socket on each shard.
    pub locals: Vec<u16>,
    /// What connections accepted here start with.
    pub config: Mutex<Config>,
    /// Its connection limits and counts, shared with its members on every shard.
    pub admission: Arc<Admission>,
    /// A P2P listen socket's virtual port (it has no sockets of its own).
    pub p2p_vport: Option<i32>,
}

/// A connection's messages delivered while it is in no poll group. The lock-free queue is
/// 256 bytes (two cache-padded ends, 128-byte aligned), more than the rest of the record, and
/// most servers put every connection in a poll group: so it is allocated with the first such
/// message (issue 16: memory per idle connection).
#[derive(Debug, Default)]
pub(crate) struct Inbox(OnceBox<SegQueue<Message>>);

impl Inbox {
    /// Queues `m` (allocating the queue the first time).
    pub(crate) fn push(&self, m: Message) {
        self.0.get_or_init(Box::default).push(m);
    }

    /// The oldest message, if any.
    pub(crate) fn pop(&self) -> Option<Message> {
        self.0.get()?.pop()
    }

    /// Every message queued now, oldest first.
    pub(crate) fn drain(&self) -> Vec<Message> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

/// One connection as the API sees it.
///
/// Sized for servers with many idle connections (issue 16): what most connections never use
/// is allocated when first used, and the fixed fields are as narrow as their ranges allow.
pub(crate) struct ConnRecord {
    /// Its handle (= the engine's connection id).
    pub handle: Connection,
    /// The shard that owns it ([`ConnRecord::shard`]).
    shard: u16,
    /// Came in through a listen socket (AcceptConnection applies to it).
    pub incoming: bool,
    /// The listen socket it came in through (internal ones, of socket pairs, included).
    pub listener: ListenSocket,
    /// `ConnectionState`'s code, updated by the shard on every change.
    state: AtomicU8,
    /// The application closed it: the handle is dead for every call.
    pub closed: AtomicBool,
    /// AcceptConnection was called.
    pub accepted: AtomicBool,
    /// Status changes are not reported (a socket pair while it is being set up).
    pub silent: AtomicBool,
    /// `SetConnectionUserData`'s value.
    pub user_data: AtomicI64,
    /// The latest info the shard published (on state changes), less what the record keeps
    /// elsewhere: [`ConnRecord::info`] gives the whole.
    pub info: ArcSwap<Published>,
    /// Messages delivered while not in a poll group.
    pub inbox: Inbox,
    /// The poll group it is in.
    pub group: ArcSwapOption<GroupRecord>,
    /// What only application threads touch (numbering, settings, callback).
    pub local: Mutex<Local>,
    /// Receive accounting shared by the shard and the receiving threads, from the first
    /// delivery on (issue 16: memory per idle connection). Only the owning shard stores it.
    recv: ArcSwapOption<RecvCredit>,
    /// Name, client socket, pipe: allocated for the connections that have one.
    rare: OnceBox<Rare>,
}

/// A connection's fields that most connections of a server never set (its accepted
/// connections have no client socket and no pipe, and are seldom named): kept out of the
/// record until one is set (issue 16: memory per idle connection).
#[derive(Debug, Default)]
struct Rare {
    /// `SetConnectionName`'s name.
    name: Mutex<String>,
    /// A client connection's local socket and server, released on close (a socket carries
    /// at most one connection to each server address).
    client_socket: Mutex<Option<(u16, SocketAddr)>>,
    /// The other end of an in-memory socket pair (no engine connection behind it).
    pipe: OnceLock<Weak<ConnRecord>>,
    /// A pipe end's `RecvBufferSize` and `RecvBufferMessages`, readable by the other end's
    /// senders without this end's lock (they hold their own).
    pipe_recv_limits: [AtomicU64; 2],
}

impl std::fmt::Debug for ConnRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnRecord")
            .field("handle", &self.handle)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ConnRecord {
    /// A record for `handle` on `shard`; `listener` is the listen socket of an incoming
    /// connection ([`ListenSocket::INVALID`] for one we started).
    pub(crate) fn new(
        handle: Connection,
        shard: usize,
        listener: ListenSocket,
        info: ConnectionInfo,
        config: &Config,
    ) -> Arc<Self> {
        Self::with_incoming(
            handle,
            shard,
            listener,
            listener != ListenSocket::INVALID,
            info,
            config,
        )
    }

    /// An incoming connection that may have no listen socket (a P2P request through custom
    /// signaling).
    pub(crate) fn new_incoming(
        handle: Connection,
        shard: usize,
        listener: ListenSocket,
        info: ConnectionInfo,
        config: &Config,
    ) -> Arc<Self> {
        Self::with_incoming(handle, shard, listener, true, info, config)
    }

    fn with_incoming(
        handle: Connection,
        shard: usize,
        listener: ListenSocket,
        incoming: bool,
        info: ConnectionInfo,
        config: &Config,
    ) -> Arc<Self> {
        Arc::new(ConnRecord {
            handle,
            // invariant: shards are numbered by far fewer bits than 16 (the id allocator's
            // shard bits).
            shard: u16::try_from(shard).unwrap_or(u16::MAX),
            incoming,
            listener,
            state: AtomicU8::new(info.state as u8),
            closed: AtomicBool::new(false),
            accepted: AtomicBool::new(false),
            silent: AtomicBool::new(false),
            user_data: AtomicI64::new(config.user_data.unwrap_or(-1)),
            info: ArcSwap::from_pointee(Published::of(&info)),
            inbox: Inbox::default(),
            group: ArcSwapOption::empty(),
            local: Mutex::new(Local {
                next_number: LaneNumbers::default(),
                config: shared_config(&config.connection),
                credit: None,
                callback: config.on_status_changed.clone(),
            }),
            recv: ArcSwapOption::empty(),
            rare: OnceBox::new(),
        })
    }

    /// The rarely set fields, allocated now if they were not.
    fn rare(&self) -> &Rare {
        self.rare.get_or_init(Box::default)
    }

    /// Whether this is one end of an in-memory pair.
    pub(crate) fn is_pipe(&self) -> bool {
        self.rare.get().is_some_and(|r| r.pipe.get().is_some())
    }

    /// Makes this one end of an in-memory pair whose other end is `peer` (once, at creation).
    pub(crate) fn set_pipe(&self, peer: Weak<ConnRecord>) {
        // Set once, by the pair's creator, before anyone else sees the record.
        let _ = self.rare().pipe.set(peer);
    }

    /// The other end of an in-memory pair, while it exists.
    pub(crate) fn pipe_peer(&self) -> Option<Arc<ConnRecord>> {
        self.rare.get()?.pipe.get()?.upgrade()
    }

    /// A pipe end's receive limits (bytes, messages): what waits unread beyond them is
    /// dropped, as GNS's pipes do.
    pub(crate) fn pipe_recv_limits(&self) -> (u64, u64) {
        self.rare.get().map_or((u64::MAX, u64::MAX), |r| {
            (
                r.pipe_recv_limits[0].load(Ordering::Relaxed),
                r.pipe_recv_limits[1].load(Ordering::Relaxed),
            )
        })
    }

    /// Sets a pipe end's receive limits (at creation, and when the application changes them).
    pub(crate) fn set_pipe_recv_limits(&self, bytes: u64, messages: u64) {
        let r = self.rare();
        r.pipe_recv_limits[0].store(bytes, Ordering::Relaxed);
        r.pipe_recv_limits[1].store(messages, Ordering::Relaxed);
    }

    /// The application's name for it ("" when none was set).
    pub(crate) fn name(&self) -> String {
        self.rare
            .get()
            .map(|r| crate::sync::lock(&r.name).clone())
            .unwrap_or_default()
    }

    /// Sets the application's name for it.
    pub(crate) fn set_name(&self, name: &str) {
        // Naming an unnamed connection "" changes nothing: no need to allocate for it.
        if name.is_empty() && self.rare.get().is_none() {
            return;
        }
        *crate::sync::lock(&self.rare().name) = name.to_owned();
    }

    /// `m_szConnectionDescription` as it reads now, for a connection whose peer is at
    /// `addr_remote`.
    pub(crate) fn describe(&self, addr_remote: SocketAddr) -> String {
        match self.rare.get() {
            Some(r) => {
                crate::info::describe(self.handle.0, addr_remote, &crate::sync::lock(&r.name))
            }
            None => crate::info::describe(self.handle.0, addr_remote, ""),
        }
    }

    /// The connection's info as `GetConnectionInfo` reports it now: the last published
    /// snapshot with the state, user data and description of this moment.
    pub(crate) fn info(&self) -> ConnectionInfo {
        let published = self.info.load();
        self.info_from(&published)
    }

    /// `published` completed with the state, user data and description of this moment.
    pub(crate) fn info_from(&self, published: &Published) -> ConnectionInfo {
        published.to_info(
            self.state(),
            self.user_data.load(Ordering::Relaxed),
            self.describe(published.addr_remote),
        )
    }

    /// Publishes `info` (its state goes to `state` separately).
    pub(crate) fn publish(&self, info: &ConnectionInfo) {
        self.info.store(Arc::new(Published::of(info)));
    }

    /// Remembers a client connection's local socket and server (released on close).
    pub(crate) fn set_client_socket(&self, local: u16, server: SocketAddr) {
        *crate::sync::lock(&self.rare().client_socket) = Some((local, server));
    }

    /// The client socket and server, taken (once) for release.
    pub(crate) fn take_client_socket(&self) -> Option<(u16, SocketAddr)> {
        crate::sync::lock(&self.rare.get()?.client_socket).take()
    }

    /// The state now.
    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_code(i32::from(self.state.load(Ordering::Acquire)))
    }

    /// The receive accounting, created the first time the shard delivers (only the owning
    /// shard calls this, so no other thread can create it at the same time).
    pub(crate) fn recv(&self) -> Arc<RecvCredit> {
        if let Some(r) = self.recv.load_full() {
            return r;
        }
        let fresh = Arc::new(RecvCredit::default());
        self.recv.store(Some(fresh.clone()));
        fresh
    }

    /// The receive accounting, if the shard ever delivered (any thread; creates nothing).
    pub(crate) fn recv_if_any(&self) -> Option<Arc<RecvCredit>> {
        self.recv.load_full()
    }

    /// The shard that owns it.
    pub(crate) fn shard(&self) -> usize {
        usize::from(self.shard)
    }

    /// Publishes a new state (the owning shard; for a pipe, application threads).
    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Whether the application closed it.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Where this connection's messages go now: its poll group's queue, or its own. Taken once
    /// for a batch ([`ConnRecord::deliver_to`], then [`ConnRecord::settle`]), not per message.
    pub(crate) fn sink(&self) -> Sink {
        let group = self.group.load_full();
        let batch = group.as_ref().map(|g| g.queue.spare()).unwrap_or_default();
        Sink { group, batch }
    }

    /// Moves the connection into `new` (or out of any group), carrying its pending messages
    /// along: takes them back from the old group, then moves its own queue into the new one.
    /// The group is stored first, so a shard delivering meanwhile sees the move (see
    /// [`ConnRecord::settle`]).
    pub(crate) fn move_to_group(&self, new: Option<Arc<GroupRecord>>) {
        let old = self.group.swap(new.clone());
        // Orders the store before the looks at the queues, as a shard's push is before its
        // look at the group.
        std::sync::atomic::fence(Ordering::SeqCst);
        if let Some(old) = old {
            for m in old.queue.take_conn(self.handle) {
                self.inbox.push(m);
            }
        }
        if let Some(g) = new {
            g.queue.push(self.inbox.drain());
        }
    }

    /// Delivers one message (a batch of one).
    pub(crate) fn deliver(&self, m: Message) {
        let mut sink = self.sink();
        self.deliver_to(&mut sink, m);
        self.settle(sink);
    }

    /// Delivers a received message to `sink` (from [`ConnRecord::sink`]); a group sees it
    /// when the batch is settled.
    pub(crate) fn deliver_to(&self, sink: &mut Sink, m: Message) {
        self.deliver_with(sink, || m);
    }

    /// [`ConnRecord::deliver_to`] with the message built by `make` where it is stored: into a
    /// group's batch it is written in place once room is reserved (built first and then
    /// pushed, it was copied from the stack with wider loads than the stores that built it,
    /// a stalled reload per message).
    #[inline]
    pub(crate) fn deliver_with(&self, sink: &mut Sink, make: impl FnOnce() -> Message) {
        match &sink.group {
            Some(_) => sink.batch.extend(std::iter::once_with(make)),
            None => self.inbox.push(make()),
        }
    }

    /// Ends a batch delivered to `sink`: a group's batch goes to its queue. The application
    /// may have moved the connection (`set_connection_poll_group`, `destroy_poll_group`) since
    /// the sink was taken: it stores the new group and then takes the connection's messages
    /// back from the old one, while this pushes and then looks at the group again (both sides
    /// SeqCst). So either its take-back finds this batch, or this look sees the move, and then
    /// this side takes back what it left behind and delivers it where the connection is now
    /// (again, until the group stays put). No message is stranded in a group the connection
    /// left, or lost with a destroyed one.
    pub(crate) fn settle(&self, sink: Sink) {
        let (mut target, mut batch) = (sink.group, sink.batch);
        loop {
            match &target {
                Some(g) => g.queue.push(std::mem::take(&mut batch)),
                None => {
                    for m in batch.drain(..) {
                        self.inbox.push(m);
                    }
                }
            }
            // Orders the push before the look (the application orders its store before its
            // take-back the same way, in `groups.rs`).
            std::sync::atomic::fence(Ordering::SeqCst);
            let now = self.group.load();
            let same = match (now.as_ref(), &target) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same {
                return;
            }
            batch = match &target {
                Some(g) => g.queue.take_conn(self.handle),
                None => self.inbox.drain(),
            };
            target = (*now).clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record() -> Arc<ConnRecord> {
        ConnRecord::new(
            Connection(7),
            0,
            ListenSocket::INVALID,
            ConnectionInfo::new(([127, 0, 0, 1], 1).into(), ConnectionState::Connected, 0),
            &Config::default(),
        )
    }

    fn group(handle: u32) -> Arc<GroupRecord> {
        Arc::new(GroupRecord {
            handle: PollGroup(handle),
            queue: GroupQueue::default(),
        })
    }

    fn msg(n: i64) -> Message {
        Message {
            data: Vec::new(),
            conn: Connection(7),
            user_data: 0,
            time_received: Duration::ZERO,
            message_number: n,
            flags: 0,
            lane: 0,
        }
    }

    fn received(g: &GroupRecord) -> Vec<i64> {
        let mut out = Vec::new();
        g.queue.receive(&mut out, usize::MAX);
        out.iter().map(|m| m.message_number).collect()
    }

    #[test]
    fn a_batch_for_a_group_the_connection_just_left_follows_it() {
        let (rec, g1, g2) = (record(), group(1), group(2));
        rec.group.store(Some(g1.clone()));
        let mut sink = rec.sink();
        rec.deliver_to(&mut sink, msg(1));
        rec.move_to_group(Some(g2.clone()));
        rec.deliver_to(&mut sink, msg(2));
        rec.settle(sink);
        assert_eq!(received(&g1), Vec::<i64>::new(), "nothing stranded");
        assert_eq!(received(&g2), vec![1, 2]);
    }

    #[test]
    fn a_batch_for_a_destroyed_group_goes_back_to_the_connection() {
        let (rec, g1) = (record(), group(1));
        rec.group.store(Some(g1.clone()));
        let mut sink = rec.sink();
        rec.deliver_to(&mut sink, msg(1));
        rec.move_to_group(None);
        rec.settle(sink);
        assert_eq!(received(&g1), Vec::<i64>::new());
        assert_eq!(rec.inbox.pop().map(|m| m.message_number), Some(1));
    }

    #[test]
    fn a_batch_for_the_inbox_follows_a_group_joined_meanwhile() {
        let (rec, g1) = (record(), group(1));
        let mut sink = rec.sink();
        rec.deliver_to(&mut sink, msg(1));
        rec.move_to_group(Some(g1.clone()));
        rec.deliver_to(&mut sink, msg(2));
        rec.settle(sink);
        assert_eq!(received(&g1), vec![1, 2]);
        assert!(rec.inbox.pop().is_none());
    }
}
