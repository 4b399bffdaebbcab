//! `CreateSocketPair`: two connected connections inside one instance.
//!
//! - In memory (`use_network_loopback = false`): a pipe, as in GNS: no packets, no encryption;
//!   a send lands straight in the other end's queue. No shard is involved.
//! - Network loopback (`true`): a real connection over 127.0.0.1 through the engine, with
//!   encryption and the global fake lag / loss, set up with a one-shot listener and a bounded
//!   wait on the instance's activity (this is a setup call, not the data path). Its status changes during setup are not
//!   reported, as for GNS's pairs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sockworks_engine::driver::Driver;
use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver};
use sockworks_engine::proto::connection::{ApiState, normalize_close};
use sockworks_engine::proto::endpoint::Listener;
use sockworks_engine::shard::Command;
use sockworks_engine::wire::identity::Identity;

use crate::callbacks::StatusChanged;
use crate::handles::{Connection, ListenSocket};
use crate::info::{ConnectionInfo, info_flags};
use crate::message::Message;
use crate::record::ConnRecord;
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::{lock, read, write};

/// Longest the network pair waits for its handshake.
const PAIR_SETUP: Duration = Duration::from_secs(5);

/// A pipe's own receive limits, bytes and messages (GNS's `k_cbPipeHugeSize`: GNS sets both
/// on each end so that a pipe does not limit; the application may lower them per end).
const PIPE_RECV_LIMIT: usize = 0x1000_0000;

/// Delivers a pipe send to the other end (dropped if that end is closed), stamped with the
/// shards' clock like network messages.
pub(crate) fn pipe_send(
    sh: &Shared,
    rec: &ConnRecord,
    data: Vec<u8>,
    flags: i32,
    lane: u16,
    number: i64,
) {
    let Some(peer) = rec.pipe_peer() else {
        return;
    };
    if peer.closed.load(Ordering::Acquire) {
        return;
    }
    // GNS's receive-queue check: a message that would take the unread messages to the
    // limit, or their bytes past it, is dropped (its number stays used). Only this end's
    // senders, under this end's send lock, deliver to `peer`: the check and the count
    // cannot interleave with another delivery.
    let (max_bytes, max_msgs) = peer.pipe_recv_limits();
    let credit = peer.recv();
    let (bytes, msgs) = credit.outstanding();
    let len = data.len() as u64;
    if msgs >= max_msgs || bytes.saturating_add(len) > max_bytes {
        return;
    }
    credit.delivered(len, 1);
    peer.deliver(Message {
        data,
        conn: peer.handle,
        user_data: peer.user_data.load(Ordering::Relaxed),
        time_received: Duration::from_micros(sh.clock.now().as_micros()),
        message_number: number,
        flags: flags & crate::message::send_flags::RELIABLE,
        lane,
    });
    sh.activity.bump();
}

/// The application closed one end of a pipe: the other sees ClosedByPeer.
pub(crate) fn pipe_close(sh: &Shared, rec: &ConnRecord, reason: i32, debug: &str) {
    sh.free_id(rec.shard(), rec.handle.0);
    let Some(peer) = rec.pipe_peer() else {
        return;
    };
    if peer.closed.load(Ordering::Acquire) {
        return;
    }
    let old = peer.state();
    peer.set_state(ApiState::ClosedByPeer);
    // A pipe has no shard: its application threads are its records' only writers.
    let mut info = peer.info();
    info.state = ApiState::ClosedByPeer;
    // What a network peer would receive: the engine's rules for the application's close.
    let (reason, text) = normalize_close(u32::try_from(reason).unwrap_or(0), debug);
    info.end_reason = i32::try_from(reason).unwrap_or(i32::MAX);
    info.end_debug = text;
    peer.publish(&info);
    sh.events.push((
        peer.clone(),
        StatusChanged {
            conn: peer.handle,
            info,
            old_state: old,
        },
    ));
    sh.activity.bump();
}

impl Sockets {
    /// `CreateSocketPair`: two connected connections; see the module docs for the two kinds.
    /// The identities are reported as each end's remote identity. `None` if it could not be
    /// set up.
    pub fn create_socket_pair(
        &self,
        use_network_loopback: bool,
        identity1: Option<Identity>,
        identity2: Option<Identity>,
    ) -> Option<(Connection, Connection)> {
        if use_network_loopback {
            self.network_pair()
        } else {
            self.pipe_pair(identity1, identity2)
        }
    }

    fn pipe_pair(
        &self,
        identity1: Option<Identity>,
        identity2: Option<Identity>,
    ) -> Option<(Connection, Connection)> {
        let sh = self.shared();
        let shard = sh.next_client_shard.fetch_add(1, Ordering::Relaxed) % sh.shards.len();
        let a = sh.allocate_id(shard)?;
        let Some(b) = sh.allocate_id(shard) else {
            sh.free_id(shard, a);
            return None;
        };
        let mut config = read(&sh.global).clone();
        config.connection.snp.recv_buffer_size = PIPE_RECV_LIMIT;
        config.connection.snp.recv_buffer_messages = PIPE_RECV_LIMIT;
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let info = |remote: Option<Identity>| ConnectionInfo {
            identity_remote: remote,
            ..ConnectionInfo::new(
                loopback,
                ApiState::Connected,
                info_flags::LOOPBACK_BUFFERS
                    | info_flags::FAST
                    | info_flags::UNENCRYPTED
                    | info_flags::UNAUTHENTICATED,
            )
        };
        let none = ListenSocket::INVALID;
        let ra = ConnRecord::new(Connection(a), shard, none, info(identity2), &config);
        let rb = ConnRecord::new(Connection(b), shard, none, info(identity1), &config);
        ra.set_pipe(Arc::downgrade(&rb));
        rb.set_pipe(Arc::downgrade(&ra));
        for r in [&ra, &rb] {
            r.set_pipe_recv_limits(PIPE_RECV_LIMIT as u64, PIPE_RECV_LIMIT as u64);
        }
        let mut conns = write(&sh.shards[shard].conns);
        conns.insert(ra);
        conns.insert(rb);
        Some((Connection(a), Connection(b)))
    }

    fn network_pair(&self) -> Option<(Connection, Connection)> {
        let sh = self.shared();
        let shard = sh.next_client_shard.fetch_add(1, Ordering::Relaxed) % sh.shards.len();
        let config = MmsgConfig {
            reuse_port: false,
            ..MmsgConfig::default()
        };
        let driver = MmsgDriver::bind_with(SocketAddr::from(([127, 0, 0, 1], 0)), config).ok()?;
        let addr = driver.local_addr().ok()?;
        let handle = sh.new_handle();
        lock(&sh.pair_listeners).insert(handle);
        let local = sh.shards[shard].next_local.fetch_add(1, Ordering::Relaxed);
        let listener = Box::new(Listener {
            handle,
            connection: read(&sh.global).connection,
            admission: None,
        });
        sh.send(shard, Command::Listen { local, listener });
        sh.send(
            shard,
            Command::Attach {
                local,
                socket: Box::new(driver),
            },
        );
        let client = self.connect_inner(addr, &[], true, None);
        let clock = sh.clock;
        let start = clock.now();
        let mut server = None;
        let mut accepted = false;
        let done = loop {
            // Taken before looking: a change after this point ends the wait below.
            let seen = sh.activity.generation();
            if server.is_none() {
                server = read(&sh.shards[shard].conns)
                    .values()
                    .find(|r| r.listener == ListenSocket(handle))
                    .map(|r| r.handle);
            }
            if let Some(s) = server {
                if !accepted {
                    accepted = self.accept_connection(s) == crate::result::EResult::Ok;
                }
                if self.connection_state(s) == ApiState::Connected
                    && self.connection_state(client) == ApiState::Connected
                {
                    break true;
                }
            }
            let waited = clock.now().saturating_since(start);
            if waited > PAIR_SETUP {
                break false;
            }
            // The handshake's status changes move the activity generation.
            sh.activity.wait(seen, PAIR_SETUP - waited, &clock);
        };
        sh.send(shard, Command::StopListening { local });
        lock(&sh.pair_listeners).remove(&handle);
        let ends = [Some(client), server];
        if !done {
            for c in ends.into_iter().flatten() {
                self.close_connection(c, 0, "socket pair setup failed", false);
            }
            return None;
        }
        for c in ends.into_iter().flatten() {
            if let Some(r) = sh.conn(c) {
                r.silent.store(false, Ordering::Release);
            }
        }
        Some((client, server?))
    }
}
