//! Messages: what `receive_messages_*` returns and what `send_messages` takes.

use std::sync::Arc;
use std::time::Duration;

use crate::handles::Connection;
use crate::recv_credit::RecvCredit;

/// `k_nSteamNetworkingSend_*` flags.
pub mod send_flags {
    /// Unreliable, Nagle applies.
    pub const UNRELIABLE: i32 = 0;
    /// Send at once, do not wait for Nagle.
    pub const NO_NAGLE: i32 = 1;
    /// Unreliable and sent now or dropped (`Ignored`).
    pub const UNRELIABLE_NO_NAGLE: i32 = NO_NAGLE;
    /// Drop rather than queue when it cannot go out now.
    pub const NO_DELAY: i32 = 4;
    /// Unreliable, not queued.
    pub const UNRELIABLE_NO_DELAY: i32 = NO_DELAY | NO_NAGLE;
    /// Reliable, in order per lane.
    pub const RELIABLE: i32 = 8;
    /// Reliable without Nagle delay.
    pub const RELIABLE_NO_NAGLE: i32 = RELIABLE | NO_NAGLE;
    /// Hint: do the work on the calling thread (ignored: shards always do it).
    pub const USE_CURRENT_THREAD: i32 = 16;
    /// Hint for P2P; ignored for UDP.
    pub const AUTO_RESTART_BROKEN_SESSION: i32 = 32;
}

/// A received message (`SteamNetworkingMessage_t`). Dropping it releases it, from any thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The payload.
    pub data: Vec<u8>,
    /// The connection it came on (`m_conn`).
    pub conn: Connection,
    /// The connection's user data when the message was delivered (`m_nConnUserData`).
    pub user_data: i64,
    /// When the shard delivered it, on the instance's clock (`m_usecTimeReceived`).
    pub time_received: Duration,
    /// The sender's message number on its lane (`m_nMessageNumber`).
    pub message_number: i64,
    /// `k_nSteamNetworkingSend_Reliable` if it came reliably, else 0 (`m_nFlags`).
    pub flags: i32,
    /// The lane (`m_idxLane`).
    pub lane: u16,
    /// The connection's receive accounting, settled when the application takes the message.
    pub(crate) credit: Credit,
}

/// A message's link to its connection's [`RecvCredit`] (none for in-memory pairs). Not part
/// of what the message says: it never makes two messages unequal.
#[derive(Clone, Default)]
pub(crate) struct Credit(pub(crate) Option<Arc<RecvCredit>>);

impl PartialEq for Credit {
    fn eq(&self, _: &Credit) -> bool {
        true
    }
}

impl Eq for Credit {}

impl std::fmt::Debug for Credit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credit")
    }
}

impl Message {
    /// The application took the message: settles its connection's receive accounting; true
    /// if its shard paused delivery at a limit and should be woken.
    pub(crate) fn settle(&mut self) -> bool {
        self.credit
            .0
            .take()
            .is_some_and(|c| c.taken(self.data.len()))
    }

    /// Takes the payload out (it then leaves the buffer pool for good).
    pub fn into_data(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

impl Drop for Message {
    /// Releasing a message is cheap from any thread: its buffer goes back to the pool the
    /// shards take receive buffers from.
    fn drop(&mut self) {
        sockworks_engine::buffers::give(std::mem::take(&mut self.data));
    }
}

/// A message to send with `send_messages` (the caller-allocated `SteamNetworkingMessage_t`):
/// the payload moves into the engine without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// Destination.
    pub conn: Connection,
    /// Payload.
    pub data: Vec<u8>,
    /// `k_nSteamNetworkingSend_*` flags.
    pub flags: i32,
    /// Lane.
    pub lane: u16,
}
