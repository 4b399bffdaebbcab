//! Connection ids handed to application threads ahead of need. `ConnectByIPAddress` must
//! return its handle (= the connection id) at once, but only the shard may touch its
//! endpoint's id allocator. So the shard keeps a small stock of reserved ids in a lock-free
//! queue, topped up every turn; a connecting thread takes one without waiting for the shard.
//!
//! Reserved ids count as live in the allocator (`MAX_LIVE_IDS` per shard), so the stock is
//! kept small; an id taken for an in-memory socket pair goes back with
//! [`Command::ReleaseId`](super::Command::ReleaseId).

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::proto::endpoint::{ConnectionId, Endpoint};

/// Ids a shard keeps reserved for application threads.
pub(crate) const ID_STOCK: usize = 64;

/// A shard's stock of reserved connection ids.
#[derive(Debug)]
pub struct IdStock {
    ids: ArrayQueue<ConnectionId>,
    /// The allocator had no id left at the last top-up.
    exhausted: AtomicBool,
}

impl Default for IdStock {
    fn default() -> Self {
        IdStock {
            ids: ArrayQueue::new(ID_STOCK),
            exhausted: AtomicBool::new(false),
        }
    }
}

impl IdStock {
    /// A reserved id, if the stock has one.
    pub fn take(&self) -> Option<ConnectionId> {
        self.ids.pop()
    }

    /// Whether the shard could not top the stock up (every id is live): taking will fail until
    /// connections close.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Acquire) && self.ids.is_empty()
    }

    /// On the shard: reserves ids until the stock is full or the allocator is out.
    pub(super) fn top_up(&self, ep: &mut Endpoint) {
        while !self.ids.is_full() {
            match ep.reserve_id() {
                Ok(id) => {
                    // invariant: only this thread pushes and the queue is not full.
                    if self.ids.push(id).is_err() {
                        ep.release_id(id);
                        break;
                    }
                }
                Err(_) => {
                    self.exhausted.store(true, Ordering::Release);
                    return;
                }
            }
        }
        self.exhausted.store(false, Ordering::Release);
    }
}
