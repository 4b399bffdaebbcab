//! The API's work on each shard, after every I/O round: turn the endpoint's status changes into
//! records and callback events, and move received messages into connection or poll-group
//! queues.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::proto::endpoint::Endpoint;
use sockworks_engine::shard::App;
use sockworks_engine::time::Timestamp;

use crate::callbacks::StatusChanged;
use crate::config::Config;
use crate::handles::{Connection, ListenSocket};
use crate::info::{ConnectionInfo, info_flags};
use crate::message::{Message, send_flags};
use crate::record::{ConnRecord, lock};
use crate::sockets::{Shared, read, write};

/// The per-shard application hook of an instance.
pub(crate) struct ApiApp {
    shard: usize,
    /// Filled once the instance finished starting (ticks before that have nothing to do).
    slot: Arc<Mutex<Option<Arc<Shared>>>>,
    shared: Option<Arc<Shared>>,
}

impl ApiApp {
    pub fn new(shard: usize, slot: Arc<Mutex<Option<Arc<Shared>>>>) -> Self {
        ApiApp {
            shard,
            slot,
            shared: None,
        }
    }
}

/// The API view of a connection's engine state.
pub(crate) fn info_of(
    ep: &Endpoint,
    id: u32,
    listen: ListenSocket,
    user_data: i64,
) -> Option<ConnectionInfo> {
    let c = ep.connection(id.into())?;
    let i = c.info();
    let mut flags = 0;
    if i.unauthenticated {
        flags |= info_flags::UNAUTHENTICATED;
    }
    if i.unencrypted {
        flags |= info_flags::UNENCRYPTED;
    }
    if i.peer.ip().is_loopback() {
        flags |= info_flags::FAST;
    }
    Some(ConnectionInfo {
        identity_remote: i.remote_identity,
        user_data,
        listen_socket: listen,
        addr_remote: i.peer,
        state: i.state,
        end_reason: i32::try_from(i.end_reason).unwrap_or(i32::MAX),
        end_debug: i.end_debug,
        description: String::new(),
        flags,
    })
}

impl App for ApiApp {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        if self.shared.is_none() {
            self.shared = lock(&self.slot).clone();
        }
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let me = &shared.shards[self.shard];
        while let Some(ev) = ep.poll_event() {
            let id = ev.connection.get();
            let known = read(&me.conns).get(&id).cloned();
            let rec = match known {
                Some(r) => r,
                None if ev.incoming && ev.change.new == ApiState::Connecting => {
                    // A new connection on one of our listen sockets.
                    let listen = ep.accepted_by(id.into()).unwrap_or(0);
                    let config = read(&shared.listen)
                        .get(&listen)
                        .map(|l| lock(&l.config).clone())
                        .unwrap_or_else(Config::defaults);
                    let Some(info) =
                        info_of(ep, id, ListenSocket(listen), config.user_data.unwrap_or(-1))
                    else {
                        continue;
                    };
                    let rec = ConnRecord::new(Connection(id), self.shard, info, &config);
                    if lock(&shared.pair_listeners).contains(&listen) {
                        rec.silent.store(true, Ordering::Release);
                    }
                    write(&me.conns).insert(id, rec.clone());
                    rec
                }
                // Closed by the application (no callbacks after that) or never ours.
                None => continue,
            };
            if rec.closed.load(Ordering::Acquire) {
                continue;
            }
            let user_data = rec.user_data.load(Ordering::Relaxed);
            let listen = lock(&rec.info).listen_socket;
            // The engine may already have forgotten a connection that ended: reuse the last
            // published details then.
            let mut info =
                info_of(ep, id, listen, user_data).unwrap_or_else(|| lock(&rec.info).clone());
            if ev.change.end_reason != 0 {
                info.end_reason = i32::try_from(ev.change.end_reason).unwrap_or(i32::MAX);
                info.end_debug = ev.change.end_debug.clone();
            }
            info.state = ev.change.new;
            info.description = crate::introspect::describe(id, &info, &lock(&rec.name));
            rec.state.store(ev.change.new as i32, Ordering::Release);
            *lock(&rec.info) = info.clone();
            if rec.silent.load(Ordering::Acquire) {
                continue;
            }
            shared.events.push((
                rec,
                StatusChanged {
                    conn: Connection(id),
                    info,
                    old_state: ev.change.old,
                },
            ));
        }
        while let Some(cid) = ep.poll_readable() {
            let id = cid.get();
            let rec = read(&me.conns).get(&id).cloned();
            while let Some(m) = ep.poll_message(cid) {
                let Some(rec) = rec.as_ref() else {
                    // Closed by the application: unread data is discarded (GNS).
                    continue;
                };
                rec.deliver(Message {
                    data: m.data,
                    conn: Connection(id),
                    user_data: rec.user_data.load(Ordering::Relaxed),
                    time_received: Duration::from_micros(now.as_micros()),
                    message_number: i64::try_from(m.msg_num).unwrap_or(i64::MAX),
                    flags: if m.reliable { send_flags::RELIABLE } else { 0 },
                    lane: u16::from(m.lane),
                });
            }
        }
    }
}
