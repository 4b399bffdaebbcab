//! A table of connection records keyed by their own handle. Each entry is the record's
//! pointer alone (8 bytes, where a map with the handle beside it takes 16): an instance keeps
//! two such tables per shard (the application threads' and the shard's own), so a table of a
//! few thousand connections costs half the memory (issue 16: memory per idle connection).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::record::ConnRecord;

/// A record as a table entry: hashed and compared by its handle, so that a lookup by handle
/// (`u32`, through `Borrow`) finds it.
#[derive(Debug, Clone)]
struct ByHandle(Arc<ConnRecord>);

impl Hash for ByHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `u32` hashes: `Borrow` requires it.
        self.0.handle.0.hash(state);
    }
}

impl PartialEq for ByHandle {
    fn eq(&self, other: &Self) -> bool {
        self.0.handle == other.0.handle
    }
}

impl Eq for ByHandle {}

impl Borrow<u32> for ByHandle {
    fn borrow(&self) -> &u32 {
        &self.0.handle.0
    }
}

/// Connection records by handle.
#[derive(Debug, Default)]
pub(crate) struct ConnTable(FxHashSet<ByHandle>);

impl ConnTable {
    /// The record of connection `id`.
    pub(crate) fn get(&self, id: &u32) -> Option<&Arc<ConnRecord>> {
        self.0.get(id).map(|e| &e.0)
    }

    /// Adds `rec` under its handle, in place of any record there.
    pub(crate) fn insert(&mut self, rec: Arc<ConnRecord>) {
        self.0.replace(ByHandle(rec));
    }

    /// Takes connection `id`'s record out.
    pub(crate) fn remove(&mut self, id: &u32) -> Option<Arc<ConnRecord>> {
        self.0.take(id).map(|e| e.0)
    }

    /// Every record, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<ConnRecord>> {
        self.0.iter().map(|e| &e.0)
    }

    /// Keeps the records for which `keep` says so.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Arc<ConnRecord>) -> bool) {
        self.0.retain(|e| keep(&e.0));
    }
}
