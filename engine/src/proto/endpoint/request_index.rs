//! Incoming connections by the handshake that made them: (client address, client connection
//! id) -> our id, so a repeated ChallengeRequest or ConnectRequest reaches the connection it
//! already made (§2.3).
//!
//! The key already lives in each connection's slot (`ConnMeta::request_key`), so the table
//! keeps only the 4-byte id and compares through the slot: 5 bytes per bucket instead of the
//! 49 of a `HashMap<(SocketAddr, u32), u32>`, about 70 bytes less per connection at 10k
//! connections (issue 16).

use std::hash::BuildHasher;
use std::net::SocketAddr;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::meta::Slot;

/// (client address, client connection id).
pub(super) type RequestKey = (SocketAddr, u32);

/// The index; every id in it has a slot whose `request_key` is its key.
#[derive(Debug, Default)]
pub(super) struct RequestIndex {
    table: HashTable<u32>,
}

fn hash(key: &RequestKey) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The key of connection `id`, from its slot (`None` for an id without one: never in the table).
fn key_of(slots: &FxHashMap<u32, Box<Slot>>, id: u32) -> Option<RequestKey> {
    slots.get(&id).and_then(|s| s.meta.request_key)
}

impl RequestIndex {
    /// The connection that `key`'s handshake made, if it is still there.
    pub(super) fn get(&self, slots: &FxHashMap<u32, Box<Slot>>, key: &RequestKey) -> Option<u32> {
        self.table
            .find(hash(key), |&id| key_of(slots, id).as_ref() == Some(key))
            .copied()
    }

    /// Files `id` under `key`. Every id already in the table must still have its slot (the
    /// table rehashes them through it when it grows); `id`'s own slot may come later.
    pub(super) fn insert(&mut self, slots: &FxHashMap<u32, Box<Slot>>, key: &RequestKey, id: u32) {
        self.table.insert_unique(hash(key), id, |&other| {
            // invariant: ids in the table have slots with their key (removed together).
            key_of(slots, other).map_or(0, |k| hash(&k))
        });
    }

    /// Removes `id`, filed under `key`.
    pub(super) fn remove(&mut self, key: &RequestKey, id: u32) {
        if let Ok(entry) = self.table.find_entry(hash(key), |&v| v == id) {
            entry.remove();
        }
    }

    /// Connections filed.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}
