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
use crate::record::GroupRecord;
use crate::sockets::Sockets;
use crate::sync::{read, write};

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
        if write(&sh.groups).remove(&group.0).is_none() {
            return false;
        }
        for shard in &sh.shards {
            for rec in read(&shard.conns).values() {
                if rec.group.load().as_ref().is_some_and(|x| x.handle == group) {
                    rec.move_to_group(None);
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
        rec.move_to_group(new);
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
