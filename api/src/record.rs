//! What application threads and shards share about each connection, listen socket and poll
//! group. Data-path fields are atomics and lock-free queues; the few mutexes guard data only
//! application threads touch (send numbering, name) or that changes on state changes only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwapOption;
use crossbeam_queue::SegQueue;

use crate::callbacks::{ConnectionState, StatusChangedFn};
use crate::config::Config;
use crate::handles::{Connection, PollGroup};
use crate::info::ConnectionInfo;
use crate::message::Message;

/// A mutex whose data stays usable after a panic elsewhere (every holder leaves it
/// consistent before anything can panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Send-side numbering, touched only by application threads: holding it while taking a
/// number and queuing the command keeps numbers and command order in step.
#[derive(Debug)]
pub(crate) struct SendSide {
    /// Next message number per lane.
    pub next_number: Vec<i64>,
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
}

/// One connection as the API sees it.
pub(crate) struct ConnRecord {
    pub handle: Connection,
    pub shard: usize,
    /// `ConnectionState` as i32, updated by the shard on every change.
    pub state: AtomicI32,
    /// The application closed it: the handle is dead for every call.
    pub closed: AtomicBool,
    /// AcceptConnection was called.
    pub accepted: AtomicBool,
    /// Status changes are not reported (a socket pair while it is being set up).
    pub silent: AtomicBool,
    /// The other end of an in-memory socket pair (no engine connection behind it).
    pub pipe: std::sync::OnceLock<std::sync::Weak<ConnRecord>>,
    pub user_data: AtomicI64,
    pub name: Mutex<String>,
    /// The latest info the shard published (state changes only).
    pub info: Mutex<ConnectionInfo>,
    /// Messages delivered while not in a poll group.
    pub inbox: SegQueue<Message>,
    pub group: ArcSwapOption<GroupRecord>,
    pub send: Mutex<SendSide>,
    /// Payload bytes in send commands the shard has not run yet.
    pub pending_bytes: AtomicU64,
    /// The engine's queued bytes when the shard last reported them.
    pub engine_buffered: AtomicU64,
    /// `SendBufferSize` in force.
    pub send_buffer_size: AtomicU64,
    pub callback: Mutex<Option<StatusChangedFn>>,
    /// A client connection's local socket and server, released on close (a socket carries
    /// at most one connection to each server address).
    pub client_socket: Mutex<Option<(u16, std::net::SocketAddr)>>,
}

impl std::fmt::Debug for ConnRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnRecord")
            .field("handle", &self.handle)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// `ConnectionState` from its number.
pub(crate) fn state_from(code: i32) -> ConnectionState {
    match code {
        1 => ConnectionState::Connecting,
        2 => ConnectionState::FindingRoute,
        3 => ConnectionState::Connected,
        4 => ConnectionState::ClosedByPeer,
        5 => ConnectionState::ProblemDetectedLocally,
        _ => ConnectionState::None,
    }
}

impl ConnRecord {
    pub fn new(
        handle: Connection,
        shard: usize,
        info: ConnectionInfo,
        config: &Config,
    ) -> Arc<Self> {
        Arc::new(ConnRecord {
            handle,
            shard,
            state: AtomicI32::new(info.state as i32),
            closed: AtomicBool::new(false),
            accepted: AtomicBool::new(false),
            silent: AtomicBool::new(false),
            pipe: std::sync::OnceLock::new(),
            user_data: AtomicI64::new(config.user_data.unwrap_or(-1)),
            name: Mutex::new(String::new()),
            info: Mutex::new(info),
            inbox: SegQueue::new(),
            group: ArcSwapOption::empty(),
            send: Mutex::new(SendSide {
                next_number: vec![1],
            }),
            pending_bytes: AtomicU64::new(0),
            engine_buffered: AtomicU64::new(0),
            send_buffer_size: AtomicU64::new(config.connection.snp.send_buffer_size as u64),
            client_socket: Mutex::new(None),
            callback: Mutex::new(config.on_status_changed.clone()),
        })
    }

    /// Whether this is one end of an in-memory pair.
    pub fn is_pipe(&self) -> bool {
        self.pipe.get().is_some()
    }

    /// The state now.
    pub fn state(&self) -> ConnectionState {
        state_from(self.state.load(Ordering::Acquire))
    }

    /// Delivers a received message to the connection's poll group, or its own queue. A
    /// concurrent `set_poll_group` may move the group under us: after pushing to the
    /// connection's queue we look again and move everything if a group appeared, so no
    /// message is stranded (`set_poll_group` stores the group before it drains; both sides
    /// use SeqCst).
    pub fn deliver(&self, m: Message) {
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
