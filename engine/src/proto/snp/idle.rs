//! What an idle connection gives back (issue 16: at most 2 KiB of server memory per idle
//! connection). Queues and tables keep their capacity when they drain (a `VecDeque` its
//! buffer, a `BTreeMap` its root node), which is right while messages flow and wasted once
//! the connection goes quiet: up to ~1.9 KiB after a single message each way. The connection
//! calls [`Snp::release_idle_memory`] when it parks its packet keys (no packet for 0.5 s), so
//! busy connections never pay for it; nothing it frees changes behaviour.
//!
//! The default send lane and its schedule go further: they park (only the lane's message
//! number and stream position stay) and are rebuilt by the next message. Connections start
//! with them parked, because what a connection allocates while it comes up and frees once idle
//! leaves holes between the connections that came up after it, which the allocator cannot
//! return: measured, that was ~600 B of RSS per idle connection.

use super::Snp;
use crate::time::Timestamp;

impl Snp {
    /// Frees the capacity of every empty queue, buffer and table, after forgetting the sent
    /// packet records the next timeout would forget anyway.
    pub fn release_idle_memory(&mut self, now: Timestamp) {
        self.sent
            .release_idle(now, self.recovery.rtt.rto(), self.ping.last_sample_at());
        self.send.release_idle();
        self.sched.release_idle();
        self.park_lanes();
        self.recv.release_idle();
        self.recovery.release_idle();
    }

    /// When [`Snp::release_idle_memory`] can free more: sent-packet records (kept a few
    /// seconds for late acks) that were still too young the last time.
    pub fn idle_release_at(&self) -> Option<Timestamp> {
        self.sent
            .idle_forget_at(self.recovery.rtt.rto(), self.ping.last_sample_at())
    }
}
