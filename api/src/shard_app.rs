//! The API's work on each shard, after every I/O round: turn the endpoint's status changes into
//! record snapshots and callback events, and move received messages into connection or
//! poll-group queues. The shard is the only writer of the snapshots (state, info) that
//! application threads read. Commands from application threads are applied by the engine
//! (`sockworks_engine::shard::command`), not here.
//!
//! The shard keeps its own map of the records it delivers to, so the data path takes no lock
//! shared with application threads; it reads the instance's table only the first time it
//! meets a connection an application thread created (a client connection).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sockworks_engine::proto::connection::{ApiState, Route};
use sockworks_engine::proto::endpoint::{ConnectionId, Endpoint, EndpointEvent};
use sockworks_engine::shard::{App, Command};
use sockworks_engine::time::Timestamp;

use crate::callbacks::StatusChanged;
use crate::config::Config;
use crate::conn_table::ConnTable;
use crate::handles::{Connection, ListenSocket};
use crate::info::{ConnectionInfo, Published, info_flags};
use crate::message::{Message, send_flags};
use crate::record::ConnRecord;
use crate::shared::Shared;
use crate::sync::{lock, read, write};

/// The per-shard application hook of an instance.
pub(crate) struct ApiApp {
    shard: usize,
    shared: Arc<Shared>,
    /// The records of this shard's connections that the shard has met.
    conns: ConnTable,
    /// Connections whose delivery paused at the receive limits (few; re-checked every turn).
    paused: Vec<ConnectionId>,
}

impl ApiApp {
    pub(crate) fn new(shard: usize, shared: Arc<Shared>) -> Self {
        ApiApp {
            shard,
            shared,
            conns: ConnTable::default(),
            paused: Vec::new(),
        }
    }

    /// The live record of connection `id`, if the application has not closed it.
    fn record(&mut self, id: ConnectionId) -> Option<Arc<ConnRecord>> {
        let id = id.get();
        let rec = match self.conns.get(&id) {
            Some(r) => r.clone(),
            None => {
                let r = read(&self.shared.shards[self.shard].conns)
                    .get(&id)
                    .cloned()?;
                self.conns.insert(r.clone());
                r
            }
        };
        if rec.is_closed() {
            self.conns.remove(&id);
            return None;
        }
        Some(rec)
    }

    /// A record for a connection that just arrived on one of our listen sockets.
    fn arrived(&mut self, ep: &Endpoint, id: ConnectionId) -> Option<Arc<ConnRecord>> {
        let sh = &self.shared;
        let listener = ListenSocket(ep.accepted_by(id).unwrap_or(0));
        let config = read(&sh.listen)
            .get(&listener.0)
            .map(|l| lock(&l.config).clone())
            .unwrap_or_else(Config::defaults);
        // A socket pair's server end reports no listen socket, as GNS's pairs do.
        let pair = lock(&sh.pair_listeners).contains(&listener.0);
        let reported = if pair {
            ListenSocket::INVALID
        } else {
            listener
        };
        let info = info_of(ep, id, reported, config.user_data.unwrap_or(-1))?;
        let rec = ConnRecord::new(Connection(id.get()), self.shard, listener, info, &config);
        rec.silent.store(pair, Ordering::Release);
        write(&sh.shards[self.shard].conns).insert(rec.clone());
        self.conns.insert(rec.clone());
        Some(rec)
    }

    /// Publishes a status change to the record and queues it for `run_callbacks`.
    fn status_changed(&mut self, ep: &Endpoint, ev: EndpointEvent) {
        let id = ev.connection;
        let rec = match self.record(id) {
            Some(r) => r,
            // A new connection on one of our listen sockets (reported once, on arrival).
            None if ev.incoming && ev.change.new == ApiState::Connecting => {
                match self.arrived(ep, id) {
                    Some(r) => r,
                    None => return,
                }
            }
            // Closed by the application (no callbacks after that) or never ours.
            None => return,
        };
        let user_data = rec.user_data.load(Ordering::Relaxed);
        let last = rec.info.load_full();
        // The engine may already have forgotten a connection that ended: reuse the last
        // published details then.
        let mut info =
            info_of(ep, id, last.listen_socket, user_data).unwrap_or_else(|| rec.info_from(&last));
        if ev.change.end_reason != 0 {
            info.end_reason = i32::try_from(ev.change.end_reason).unwrap_or(i32::MAX);
            info.end_debug = ev.change.end_debug.clone();
        }
        info.state = ev.change.new;
        info.description = rec.describe(info.addr_remote);
        rec.set_state(ev.change.new);
        log_change(&info, ev.change.old);
        rec.publish(&info);
        if rec.silent.load(Ordering::Acquire) {
            return;
        }
        self.shared.events.push((
            rec,
            StatusChanged {
                conn: Connection(id.get()),
                info,
                old_state: ev.change.old,
            },
        ));
    }
}

impl ApiApp {
    /// Republishes connection `id`'s remote address after it moved (GNS raises no status
    /// change for that; `GetConnectionInfo` shows the new address).
    fn peer_moved(&mut self, ep: &Endpoint, id: ConnectionId) {
        let Some(rec) = self.record(id) else {
            return;
        };
        let last = rec.info.load_full();
        let Some(now) = info_of(ep, id, last.listen_socket, -1) else {
            return;
        };
        if now.addr_remote != last.addr_remote {
            let mut info = Published::clone(&last);
            info.addr_remote = now.addr_remote;
            rec.info.store(Arc::new(info));
        }
    }

    /// Moves connection `id`'s messages from the engine to the API's queues while what the
    /// application has not taken yet is under the receive limits; true if it stopped at a
    /// limit (the connection is paused: the engine keeps what is left, and its own limits
    /// then hold further data back from the sender).
    fn drain(
        &mut self,
        ep: &mut Endpoint,
        id: ConnectionId,
        time_received: Duration,
        arrived: &mut bool,
    ) -> bool {
        let Some(rec) = self.record(id) else {
            // Closed by the application: unread data is discarded (GNS).
            while ep.poll_message(id).is_some() {}
            return false;
        };
        let Some((max_bytes, max_msgs)) = ep.connection(id).map(|c| {
            let cfg = c.snp().config();
            (cfg.recv_buffer_size, cfg.recv_buffer_messages)
        }) else {
            return false;
        };
        // Readable: a message waits, so the accounting is needed now.
        let recv = rec.recv();
        let mut sink = rec.sink();
        let (max_b, max_m) = (max_bytes as u64, max_msgs as u64);
        // What waits as last published, and what this drain added since (published in one
        // update: see recv_credit).
        let (mut waiting_b, mut waiting_m) = recv.outstanding();
        let (mut added_b, mut added_m) = (0u64, 0u64);
        let paused = loop {
            if waiting_b + added_b >= max_b || waiting_m + added_m >= max_m {
                recv.delivered(added_b, added_m);
                (added_b, added_m) = (0, 0);
                if recv.over(max_bytes, max_msgs) {
                    // Paused (the engine may hold more, in its queue or its streams) until
                    // the application takes some.
                    break true;
                }
                (waiting_b, waiting_m) = recv.outstanding();
            }
            let Some(m) = ep.poll_message(id) else {
                break false;
            };
            *arrived = true;
            added_b += m.data.len() as u64;
            added_m += 1;
            let user_data = rec.user_data.load(Ordering::Relaxed);
            rec.deliver_with(&mut sink, || Message {
                data: m.data,
                conn: Connection(id.get()),
                user_data,
                time_received,
                message_number: i64::try_from(m.msg_num).unwrap_or(i64::MAX),
                flags: if m.reliable { send_flags::RELIABLE } else { 0 },
                lane: u16::from(m.lane),
            });
        };
        recv.delivered(added_b, added_m);
        rec.settle(sink);
        paused
    }
}

/// The API view of a connection's engine state.
fn info_of(
    ep: &Endpoint,
    id: ConnectionId,
    listen: ListenSocket,
    user_data: i64,
) -> Option<ConnectionInfo> {
    let c = ep.connection(id)?;
    let i = c.info();
    let mut flags = 0;
    if i.unauthenticated {
        flags |= info_flags::UNAUTHENTICATED;
    }
    if i.unencrypted {
        flags |= info_flags::UNENCRYPTED;
    }
    if i.peer.ip().is_loopback() || i.route == Route::Lan {
        flags |= info_flags::FAST;
    }
    // GNS clears the address of a relayed route: the peer's is hidden behind the relay.
    let mut addr_remote = i.peer;
    if i.route == Route::Relayed {
        flags |= info_flags::RELAYED;
    }
    if i.route == Route::Relayed || i.peer == sockworks_engine::proto::connection::NO_ROUTE {
        addr_remote = crate::p2p_net::no_route();
    }
    Some(ConnectionInfo {
        identity_remote: i.remote_identity,
        user_data,
        listen_socket: listen,
        addr_remote,
        state: i.state,
        end_reason: i32::try_from(i.end_reason).unwrap_or(i32::MAX),
        end_debug: i.end_debug,
        description: String::new(),
        flags,
    })
}

impl App for ApiApp {
    fn on_command(&mut self, command: &Command) {
        match command {
            Command::Close { id, .. } => {
                self.conns.remove(&id.get());
            }
            // The listen socket's connections were closed by the application.
            Command::CloseListener { .. } => self.conns.retain(|r| !r.is_closed()),
            _ => {}
        }
    }

    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        let mut arrived = false;
        while let Some(ev) = ep.poll_event() {
            self.status_changed(ep, ev);
            arrived = true;
        }
        while let Some(id) = ep.poll_moved() {
            self.peer_moved(ep, id);
        }
        let time_received = Duration::from_micros(now.as_micros());
        // Connections paused at their receive limit first: the application may have taken
        // their messages since.
        let mut paused = std::mem::take(&mut self.paused);
        paused.retain(|&id| self.drain(ep, id, time_received, &mut arrived));
        while let Some(id) = ep.poll_readable() {
            if !paused.contains(&id) && self.drain(ep, id, time_received, &mut arrived) {
                paused.push(id);
            }
        }
        self.paused = paused;
        crate::p2p::deliver_signals(&self.shared, ep, now, self.shard);
        if arrived {
            self.shared.activity.bump();
        }
    }
}

/// A state change as GNS spews it: problems as warnings, the rest as messages (connecting
/// at debug detail).
fn log_change(info: &ConnectionInfo, old: ApiState) {
    let (d, new) = (&info.description, info.state);
    match new {
        ApiState::ProblemDetectedLocally => tracing::warn!(
            "[{d}] problem detected locally ({}): {}",
            info.end_reason,
            info.end_debug
        ),
        ApiState::ClosedByPeer => {
            tracing::info!(
                "[{d}] closed by peer ({}): {}",
                info.end_reason,
                info.end_debug
            )
        }
        ApiState::Connected => tracing::info!("[{d}] connected"),
        _ => tracing::debug!("[{d}] state {old:?} -> {new:?}"),
    }
}
