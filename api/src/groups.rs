//! Poll groups: CreatePollGroup, DestroyPollGroup, SetConnectionPollGroup,
//! ReceiveMessagesOnPollGroup.
//!
//! Shards deliver a member's messages straight into the group's lock-free queue. Moving a
//! connection between groups re-queues its pending messages (approximately in arrival order,
//! as GNS documents).

use std::sync::Arc;

use crate::group_queue::GroupQueue;
use crate::handles::{Connection, PollGroup};
use crate::message::Message;
use crate::record::{ConnRecord, GroupRecord};
use crate::sockets::Sockets;
use crate::sync::{read, write};

/// Takes `conn`'s messages out of `group`, keeping the others in order.
fn take_back(group: &GroupRecord, rec: &ConnRecord) {
    // The record's new group was stored before: ordered before the look at the queue, as a
    // shard's push is before its look at the group (see ConnRecord::settle).
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    for m in group.queue.take_conn(rec.handle) {
        rec.inbox.push(m);
    }
}

impl Sockets {
    /// `CreatePollGroup`.
    pub fn create_poll_group(&self) -> PollGroup {
        let sh = self.shared();
        let handle = sh.new_handle();
        let g = Arc::new(GroupRecord {
            handle: PollGroup(handle),
            queue: GroupQueue::default(),
        });
        write(&sh.groups).insert(handle, g);
        PollGroup(handle)
    }

    /// `DestroyPollGroup`: members leave it (keeping their pending messages). False for an
    /// invalid handle.
    pub fn destroy_poll_group(&self, group: PollGroup) -> bool {
        let sh = self.shared();
        let Some(g) = write(&sh.groups).remove(&group.0) else {
            return false;
        };
        for shard in &sh.shards {
            for rec in read(&shard.conns).values() {
                if rec.group.load().as_ref().is_some_and(|x| x.handle == group) {
                    rec.group.store(None);
                    take_back(&g, rec);
                }
            }
        }
        true
    }

    /// `SetConnectionPollGroup`: moves `conn` into `group` (or out of any with
    /// [`PollGroup::INVALID`]), carrying its pending messages along. False for an invalid
    /// connection or group handle.
    pub fn set_connection_poll_group(&self, conn: Connection, group: PollGroup) -> bool {
        let sh = self.shared();
        let Some(rec) = sh.conn(conn) else {
            return false;
        };
        let new = if group == PollGroup::INVALID {
            None
        } else {
            match read(&sh.groups).get(&group.0) {
                Some(g) => Some(g.clone()),
                None => return false,
            }
        };
        let old = rec.group.swap(new.clone());
        if let Some(old) = old {
            take_back(&old, &rec);
        }
        // Stored before taking back and draining: a shard that delivered to the old group or
        // the inbox meanwhile sees the move on its second look and moves its batch itself
        // (see ConnRecord::settle).
        if let Some(g) = new {
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            g.queue.push(rec.inbox.drain());
        }
        true
    }

    /// `ReceiveMessagesOnPollGroup`: up to `max` messages from any member into `out`; returns
    /// how many, or −1 for an invalid handle.
    pub fn receive_messages_on_poll_group(
        &self,
        group: PollGroup,
        out: &mut Vec<Message>,
        max: usize,
    ) -> i32 {
        let Some(g) = read(&self.shared().groups).get(&group.0).cloned() else {
            return -1;
        };
        let sh = self.shared();
        // As `receive_messages_on_connection`: the batch first, then its settlement.
        let start = out.len();
        g.queue.receive(out, max);
        crate::message::settle_batch(
            &out[start..],
            |conn| sh.conn(conn)?.recv_if_any(),
            |conn| sh.wake_owner(conn),
        );
        i32::try_from(out.len() - start).unwrap_or(i32::MAX)
    }
}
