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
/// Only Sockworks makes them (non-exhaustive), so a message always came from a receive call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
}

/// The application took `batch` (each message exactly once): settles each connection's
/// receive accounting, found through `credit_of`, once per run of messages from the same
/// connection (a receive call's batch is mostly such runs, as a shard delivers a
/// connection's messages together), and calls `wake` with each connection whose shard paused
/// delivery at a limit. A connection without accounting (closed, or an in-memory pair) is
/// skipped.
pub(crate) fn settle_batch(
    batch: &[Message],
    mut credit_of: impl FnMut(Connection) -> Option<Arc<RecvCredit>>,
    mut wake: impl FnMut(Connection),
) {
    let mut i = 0;
    while i < batch.len() {
        let conn = batch[i].conn;
        let run = batch[i..].iter().take_while(|m| m.conn == conn);
        let (bytes, msgs) = run.fold((0u64, 0u64), |(b, n), m| (b + m.data.len() as u64, n + 1));
        if let Some(credit) = credit_of(conn)
            && credit.taken(bytes, msgs)
        {
            wake(conn);
        }
        // invariant: a run holds at least the message at `i`.
        i += usize::try_from(msgs).unwrap_or(1);
    }
}

impl Message {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(conn: u32, len: usize) -> Message {
        Message {
            data: vec![0; len],
            conn: Connection(conn),
            user_data: 0,
            time_received: Duration::ZERO,
            message_number: 0,
            flags: 0,
            lane: 0,
        }
    }

    #[test]
    fn a_batch_settles_each_connection_once_per_run_and_wakes_paused_shards() {
        let (a, b) = (
            Arc::new(RecvCredit::default()),
            Arc::new(RecvCredit::default()),
        );
        // One more message each than the batch holds, so a miscount shows.
        a.delivered(10 + 20 + 40 + 100, 4);
        b.delivered(5 + 7, 2);
        // Both shards paused at a limit (one message each).
        assert!(a.over(usize::MAX, 1) && b.over(usize::MAX, 1));
        // Connection 3 has no accounting (closed, say): skipped.
        let batch = vec![msg(1, 10), msg(1, 20), msg(2, 5), msg(3, 9), msg(1, 40)];
        let mut looked_up = Vec::new();
        let mut woken = Vec::new();
        settle_batch(
            &batch,
            |c| {
                looked_up.push(c.0);
                match c.0 {
                    1 => Some(a.clone()),
                    2 => Some(b.clone()),
                    _ => None,
                }
            },
            |c| woken.push(c.0),
        );
        assert_eq!(a.outstanding(), (100, 1), "every message of A counted once");
        assert_eq!(b.outstanding(), (7, 1));
        // One lookup per run; A wakes once (the first run clears its pause), B once.
        assert_eq!(looked_up, vec![1, 2, 3, 1]);
        assert_eq!(woken, vec![1, 2]);
    }
}
