//! What application threads and shards share about each connection, listen socket and poll
//! group. Every shared field has one writer (docs/concurrency.md has the table):
//!
//! | written by | fields |
//! |---|---|
//! | fixed at creation | `handle`, `shard`, `incoming`, `listener`, `pipe` |
//! | the owning shard | `state`, `info`, `credit` and `recv` (their shard halves); pushes to `inbox` |
//! | application threads | `closed`, `accepted`, `silent`, `user_data`, `name`, `group`, `local`, `callback`, `client_socket`, `credit` and `recv` (their application halves); pops from `inbox` |
//!
//! Data-path fields are atomics and lock-free queues; the mutexes guard data that only
//! application threads touch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_queue::SegQueue;
use sockworks_engine::proto::admission::Admission;
use sockworks_engine::proto::connection::ConnectionConfig;
use sockworks_engine::shard::SendCredit;

use crate::callbacks::StatusChangedFn;
use crate::config::Config;
use crate::handles::{Connection, ConnectionState, ListenSocket, PollGroup};
use crate::info::ConnectionInfo;
use crate::message::Message;
use crate::recv_credit::RecvCredit;

/// What only application threads touch: holding it while taking a number and queuing the
/// send keeps numbers and command order in step.
#[derive(Debug)]
pub(crate) struct Local {
    /// Next message number per lane.
    pub next_number: Vec<i64>,
    /// The connection's settings as the application last set them (the shard gets a copy of
    /// the whole set on every change); shared between connections until one is changed.
    pub config: Arc<ConnectionConfig>,
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

/// A poll group: a queue the shards fill for every member connection.
#[derive(Debug)]
pub(crate) struct GroupRecord {
    pub handle: PollGroup,
    pub queue: SegQueue<Message>,
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
/// 256 bytes (two cache-padded ends, 128-byte aligned), a third of a record, and most servers
/// put every connection in a poll group: so it is allocated with the first such message
/// (issue 16: memory per idle connection).
#[derive(Debug, Default)]
pub(crate) struct Inbox(OnceLock<Box<SegQueue<Message>>>);

impl Inbox {
    /// Queues `m` (allocating the queue the first time).
    pub(crate) fn push(&self, m: Message) {
        self.0.get_or_init(Box::default).push(m);
    }

    /// The oldest message, if any.
    pub(crate) fn pop(&self) -> Option<Message> {
        self.0.get()?.pop()
    }
}

/// One connection as the API sees it.
pub(crate) struct ConnRecord {
    pub handle: Connection,
    pub shard: usize,
    /// Came in through a listen socket (AcceptConnection applies to it).
    pub incoming: bool,
    /// The listen socket it came in through (internal ones, of socket pairs, included).
    pub listener: ListenSocket,
    /// `ConnectionState` as i32, updated by the shard on every change.
    pub state: AtomicI32,
    /// The application closed it: the handle is dead for every call.
    pub closed: AtomicBool,
    /// AcceptConnection was called.
    pub accepted: AtomicBool,
    /// Status changes are not reported (a socket pair while it is being set up).
    pub silent: AtomicBool,
    /// The other end of an in-memory socket pair (no engine connection behind it).
    pub pipe: OnceLock<Weak<ConnRecord>>,
    pub user_data: AtomicI64,
    pub name: Mutex<String>,
    /// The latest info the shard published (on state changes).
    pub info: ArcSwap<ConnectionInfo>,
    /// Messages delivered while not in a poll group.
    pub inbox: Inbox,
    pub group: ArcSwapOption<GroupRecord>,
    pub local: Mutex<Local>,
    /// Send-buffer accounting shared with the shard.
    pub credit: Arc<SendCredit>,
    /// Receive accounting shared with the shard.
    pub recv: Arc<RecvCredit>,
    /// `SendBufferSize` in force.
    pub send_buffer_size: AtomicU64,
    pub callback: Mutex<Option<StatusChangedFn>>,
    /// A client connection's local socket and server, released on close (a socket carries
    /// at most one connection to each server address).
    pub client_socket: Mutex<Option<(u16, SocketAddr)>>,
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
            shard,
            incoming,
            listener,
            state: AtomicI32::new(info.state as i32),
            closed: AtomicBool::new(false),
            accepted: AtomicBool::new(false),
            silent: AtomicBool::new(false),
            pipe: OnceLock::new(),
            user_data: AtomicI64::new(config.user_data.unwrap_or(-1)),
            name: Mutex::new(String::new()),
            info: ArcSwap::from_pointee(info),
            inbox: Inbox::default(),
            group: ArcSwapOption::empty(),
            local: Mutex::new(Local {
                next_number: vec![1],
                config: shared_config(&config.connection),
            }),
            credit: Arc::default(),
            recv: Arc::default(),
            send_buffer_size: AtomicU64::new(config.connection.snp.send_buffer_size as u64),
            client_socket: Mutex::new(None),
            callback: Mutex::new(config.on_status_changed.clone()),
        })
    }

    /// Whether this is one end of an in-memory pair.
    pub(crate) fn is_pipe(&self) -> bool {
        self.pipe.get().is_some()
    }

    /// The state now.
    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_code(self.state.load(Ordering::Acquire))
    }

    /// Whether the application closed it.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Delivers a received message to the connection's poll group, or its own queue. A
    /// concurrent `set_poll_group` may move the group under us: after pushing to the
    /// connection's queue we look again and move everything if a group appeared, so no
    /// message is stranded (`set_poll_group` stores the group before it drains; both sides
    /// use SeqCst).
    pub(crate) fn deliver(&self, m: Message) {
        if let Some(g) = self.group.load_full() {
            g.queue.push(m);
            return;
        }
        self.inbox.push(m);
        if let Some(g) = self.group.load_full() {
            while let Some(m) = self.inbox.pop() {
                g.queue.push(m);
            }
        }
    }
}
