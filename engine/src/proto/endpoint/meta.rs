//! What the endpoint keeps about each connection beside the connection itself, in the same map
//! entry, so forgetting a connection is one `remove` and no side table can go stale.
//!
//! ```text
//!  connections: id ─► Box<Slot> { conn, meta: ConnMeta { local, accepted_by, request_key,
//!                                                         in_ready, in_readable, dirty } }
//!  ready / readable / dirty_ids: ids in order; the flags make membership O(1)
//! ```
//!
//! The ordered lists may keep the id of a connection forgotten since; every user skips ids
//! that no longer have a slot.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::{Endpoint, EndpointEvent, LocalSocket};
use crate::proto::connection::Connection;
use crate::proto::ids::ConnectionId;
use crate::time::Timestamp;

/// One connection and the endpoint's bookkeeping for it.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) conn: Connection,
    pub(super) meta: ConnMeta,
    /// The listen socket's limits an incoming connection counts against: its address, and
    /// whether it still waits for AcceptConnection.
    pub(super) admitted: Option<Admitted>,
}

/// An incoming connection's place in its listen socket's counts. The address it counts
/// against is its request key's (`ConnMeta::request_key`, always set beside this).
#[derive(Debug)]
pub(super) struct Admitted {
    pub(super) admission: std::sync::Arc<crate::proto::admission::Admission>,
    pub(super) pending: bool,
}

impl Slot {
    /// A connection on local socket `local`, not yet in any list (boxed for the endpoint's
    /// table).
    pub(super) fn new(conn: Connection, local: LocalSocket) -> Box<Self> {
        Box::new(Slot {
            conn,
            meta: ConnMeta {
                local,
                ..ConnMeta::default()
            },
            admitted: None,
        })
    }
}

/// The endpoint's per-connection bookkeeping.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ConnMeta {
    /// The local socket the connection sends by.
    pub(super) local: LocalSocket,
    /// The listen-socket handle an incoming connection came in through.
    pub(super) accepted_by: Option<u32>,
    /// An incoming connection's `by_request` key (its address may change later).
    pub(super) request_key: Option<(SocketAddr, u32)>,
    /// In `ready`.
    pub(super) in_ready: bool,
    /// In `readable`.
    pub(super) in_readable: bool,
    /// In `dirty_ids`: touched since its deadline was last filed.
    pub(super) dirty: bool,
}

impl ConnMeta {
    /// Puts connection `id` (this one) in the transmit queue once: for callers that hold its
    /// slot already (no second lookup per message).
    pub(super) fn queue_ready(&mut self, id: u32, ready: &mut VecDeque<u32>) {
        if !self.in_ready {
            self.in_ready = true;
            ready.push_back(id);
        }
    }

    /// Puts connection `id` (this one) in the list of deadlines to refile once.
    pub(super) fn queue_dirty(&mut self, id: u32, dirty: &mut Vec<u32>) {
        if !self.dirty {
            self.dirty = true;
            dirty.push(id);
        }
    }
}

impl Endpoint {
    /// Queues the connection for refiling in the timer wheel.
    pub(super) fn mark_dirty(&mut self, id: u32) {
        if let Some(s) = self.connections.get_mut(&id) {
            s.meta.queue_dirty(id, &mut self.dirty_ids);
        }
    }

    /// Refiles every touched connection under its current deadline.
    pub(super) fn refile(&mut self, now: Timestamp) {
        if self.dirty_ids.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty_ids);
        for &id in &dirty {
            self.reschedule(id, now);
        }
        // Reuse the allocation.
        dirty.clear();
        self.dirty_ids = dirty;
    }

    /// Files the connection under its current deadline.
    fn reschedule(&mut self, id: u32, now: Timestamp) {
        let mut p2p = false;
        let mut deadline = self.connections.get_mut(&id).and_then(|s| {
            s.meta.dirty = false;
            p2p = s.conn.is_p2p();
            s.conn.poll_timeout(now)
        });
        if p2p && let Some(t) = self.p2p_deadline(id) {
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        if self.relay.is_some()
            && let Some(t) = self.relay_deadline(id)
        {
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        match deadline {
            Some(t) => {
                self.timers.insert(t, id);
            }
            None => {
                self.timers.remove(id);
            }
        }
    }

    /// Moves a connection's events to the endpoint queue, marks it for transmit, and forgets
    /// it once dead and drained.
    pub(super) fn collect(&mut self, id: u32) {
        let Some(slot) = self.connections.get_mut(&id) else {
            return;
        };
        let conn = &mut slot.conn;
        let incoming = conn.is_incoming();
        while let Some(change) = conn.poll_event() {
            self.events.push_back(EndpointEvent {
                connection: ConnectionId::new(id),
                incoming,
                change,
            });
        }
        if conn.has_message() && !slot.meta.in_readable {
            slot.meta.in_readable = true;
            self.readable.push_back(id);
        }
        if conn.is_dead() && !conn.has_pending_transmit() && !conn.has_message() {
            self.forget(id);
            return;
        }
        // `mark` and `mark_dirty`, on the slot already in hand (no second lookup).
        if !slot.meta.in_ready {
            slot.meta.in_ready = true;
            self.ready.push_back(id);
        }
        if !slot.meta.dirty {
            slot.meta.dirty = true;
            self.dirty_ids.push(id);
        }
    }

    /// Drops a connection and everything kept about it, and frees its id.
    fn forget(&mut self, id: u32) {
        self.timers.remove(id);
        self.p2p_forget(id);
        self.relay_forget(id);
        if let Some(slot) = self.connections.remove(&id) {
            if let Some(key) = slot.meta.request_key {
                self.by_request.remove(&key, id);
            }
            if let (Some(a), Some((from, _))) = (slot.admitted, slot.meta.request_key) {
                a.admission.released(from.ip(), a.pending);
            }
            self.ids.free(id);
        }
    }
}
