//! Queuing messages on a connection: one at a time (`SendMessageToConnection`) or as a run
//! (the shard applying one `SendMessages` command), which finds the connection and files its
//! transmit and deadline work once for the whole run instead of once per message.

use super::{ConnectionId, Endpoint, EndpointError};
use crate::time::Timestamp;

impl Endpoint {
    /// `SendMessageToConnection`: returns the message number.
    pub fn send_message(
        &mut self,
        now: Timestamp,
        id: ConnectionId,
        lane: u8,
        flags: u32,
        data: Vec<u8>,
    ) -> Result<u64, EndpointError> {
        let id = id.get();
        let slot = self
            .connections
            .get_mut(&id)
            .ok_or(EndpointError::UnknownConnection)?;
        let n = slot.conn.send_message(now, lane, flags, data)?;
        slot.meta.queue_ready(id, &mut self.ready);
        slot.meta.queue_dirty(id, &mut self.dirty_ids);
        Ok(n)
    }

    /// Queues `(lane, flags, payload)` messages in order on one connection, as
    /// [`Endpoint::send_message`] would one by one. The caller numbered them already, so a
    /// message the connection refuses still uses its number (later numbers stay what the
    /// application was told). Returns how many were refused; all of them when the connection
    /// is gone.
    pub fn send_run<I>(&mut self, now: Timestamp, id: ConnectionId, messages: I) -> usize
    where
        I: IntoIterator<Item = (u8, u32, Vec<u8>)>,
    {
        let id = id.get();
        let Some(slot) = self.connections.get_mut(&id) else {
            return messages.into_iter().count();
        };
        let mut refused = 0;
        let mut queued = false;
        for (lane, flags, data) in messages {
            if slot.conn.send_message(now, lane, flags, data).is_ok() {
                queued = true;
            } else {
                slot.conn.skip_message_number(lane);
                refused += 1;
            }
        }
        if queued {
            slot.meta.queue_ready(id, &mut self.ready);
            slot.meta.queue_dirty(id, &mut self.dirty_ids);
        }
        refused
    }
}
