//! The receive side's bound: GNS's `RecvBufferSize` / `RecvBufferMessages` cover messages
//! "waiting to be processed by the application", but our shards move each message out of the
//! engine into the API's queues at once. So the shard counts what it delivered per connection,
//! the application's receive calls count what they took, and the shard stops moving a
//! connection's messages while the difference is at a limit. The engine's own queue then
//! fills, its limits drop further data unacked, and the sender's send buffer fills: a reader
//! that stalls costs bounded memory, as in GNS.
//!
//! ```text
//!  shard:  while !over(limits) { poll_message ─► deliver ; delivered += len }
//!          over? ─► blocked = true, re-checked every turn
//!  app:    receive_* ─► taken += len ; blocked? ─► wake the shard
//! ```
//!
//! Both sides count in batches (a drain's deliveries, a receive call's run of messages from
//! one connection): two atomic adds per batch instead of per message. Between its updates
//! the shard judges the limits on its own running total, which can only overstate what
//! waits (receives only shrink it), so a batch never passes a limit; at a limit it publishes
//! and asks [`RecvCredit::over`] exactly. A receive finds the accounting through the
//! message's connection (one lookup per run), so a message carries no reference of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One connection's receive accounting: `delivered_*` written by its shard, `taken_*` by the
/// application threads that receive.
#[derive(Debug, Default)]
pub(crate) struct RecvCredit {
    delivered_bytes: AtomicU64,
    delivered_msgs: AtomicU64,
    taken_bytes: AtomicU64,
    taken_msgs: AtomicU64,
    /// The shard stopped delivering at a limit and waits for a receive.
    blocked: AtomicBool,
}

impl RecvCredit {
    /// On the shard: `msgs` messages of `bytes` in all went to the API's queues.
    pub(crate) fn delivered(&self, bytes: u64, msgs: u64) {
        if msgs == 0 {
            return;
        }
        self.delivered_bytes.fetch_add(bytes, Ordering::Release);
        self.delivered_msgs.fetch_add(msgs, Ordering::Release);
    }

    /// On the shard: bytes and messages delivered and not taken yet, as far as published
    /// (never less than what really waits).
    pub(crate) fn outstanding(&self) -> (u64, u64) {
        // Taken first: a concurrent receive can only make the difference look larger.
        let taken_b = self.taken_bytes.load(Ordering::SeqCst);
        let taken_m = self.taken_msgs.load(Ordering::SeqCst);
        (
            self.delivered_bytes
                .load(Ordering::Acquire)
                .saturating_sub(taken_b),
            self.delivered_msgs
                .load(Ordering::Acquire)
                .saturating_sub(taken_m),
        )
    }

    /// On the shard: whether what the application has not taken yet is at `max_bytes` or
    /// `max_msgs` (then delivery pauses, and the application's next receive wakes the shard).
    pub(crate) fn over(&self, max_bytes: usize, max_msgs: usize) -> bool {
        if !self.outstanding_over(max_bytes, max_msgs) {
            return false;
        }
        // Announce the pause, then look again: a receive that ran before the announcement
        // is seen now, one after it sees the flag and wakes us (both sides SeqCst).
        self.blocked.store(true, Ordering::SeqCst);
        if self.outstanding_over(max_bytes, max_msgs) {
            true
        } else {
            self.blocked.store(false, Ordering::SeqCst);
            false
        }
    }

    fn outstanding_over(&self, max_bytes: usize, max_msgs: usize) -> bool {
        let (bytes, msgs) = self.outstanding();
        bytes >= max_bytes as u64 || msgs >= max_msgs as u64
    }

    /// On an application thread: `msgs` messages of `bytes` in all were received. True if
    /// the shard was waiting for that (wake it).
    pub(crate) fn taken(&self, bytes: u64, msgs: u64) -> bool {
        self.taken_bytes.fetch_add(bytes, Ordering::SeqCst);
        self.taken_msgs.fetch_add(msgs, Ordering::SeqCst);
        self.blocked.load(Ordering::SeqCst) && self.blocked.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::RecvCredit;

    #[test]
    fn delivery_pauses_at_a_limit_and_a_receive_reports_the_pause() {
        let c = RecvCredit::default();
        c.delivered(600, 1);
        assert!(!c.over(1000, 10));
        c.delivered(600, 1);
        assert!(c.over(1000, 10), "1200 bytes not taken");
        assert!(c.taken(600, 1), "the shard waits: wake it");
        assert!(!c.over(1000, 10));
        assert!(!c.taken(600, 1), "nobody waits");
        c.delivered(3, 3);
        assert_eq!(c.outstanding(), (3, 3));
        assert!(c.over(1000, 3), "three messages not taken");
        assert!(c.taken(3, 3), "the shard waits again");
        assert_eq!(c.outstanding(), (0, 0));
    }
}
