//! Which lane the packet builder takes data from next. With several lanes the lane scheduler
//! decides, and it mirrors every lane's send queue entry by entry. With one lane there is no
//! choice to make: the scheduler keeps no entries and lane 0's own queue answers, which saves
//! a queue push and pop per message on the default connection. When lanes are added, the
//! entries still queued on lane 0 enter the scheduler in order.

use std::time::Duration;

use super::Snp;
use crate::proto::lanes::{LaneId, send_time};

impl Snp {
    /// Whether the lane scheduler holds entries (several lanes configured).
    #[inline]
    pub(super) fn scheduled(&self) -> bool {
        self.sched.lane_count() > 1
    }

    /// The lane to take data from next, if any has some queued.
    #[inline]
    pub(super) fn next_send_lane(&self) -> Option<LaneId> {
        if self.scheduled() {
            return self.sched.next_lane();
        }
        let l = self.send.lanes.first()?;
        (!l.queue.is_empty()).then_some(LaneId(0))
    }

    /// A new queue entry of `size` bytes on `lane`.
    #[inline]
    pub(super) fn schedule_entry(&mut self, lane: u8, size: u32) {
        if self.scheduled() {
            // invariant: the caller checked `lane` against the lane count.
            self.sched
                .push(LaneId(lane), size)
                .expect("invariant: lane configured");
        }
    }

    /// `bytes` of `lane`'s head entry went out (all of it: `finished`).
    #[inline]
    pub(super) fn schedule_sent(&mut self, lane: LaneId, bytes: u32, finished: bool) {
        if self.scheduled() {
            // invariant: the scheduler's queues mirror the lanes' queues entry for entry.
            self.sched
                .on_sent(lane, bytes, finished)
                .expect("invariant: scheduler mirrors queue");
        }
    }

    /// After lanes were configured: if lane 0 was alone until now, its queued entries (what
    /// is left of each) enter the scheduler, in order.
    pub(super) fn schedule_after_configure(&mut self, was_scheduled: bool) {
        if was_scheduled || !self.scheduled() {
            return;
        }
        let Some(l) = self.send.lanes.first() else {
            return;
        };
        for m in &l.queue {
            // Entries are ≤ 512 KiB + header, far below u32::MAX.
            let size = u32::try_from(m.remaining()).unwrap_or(u32::MAX);
            // invariant: lane 0 always exists once configured.
            self.sched
                .push(LaneId(0), size)
                .expect("invariant: lane 0 configured");
        }
    }

    /// How long `lane`'s last queued byte waits at `rate` behind what goes before it
    /// (`GetConnectionRealTimeStatus`'s per-lane queue time).
    pub(super) fn lane_queue_time(&self, lane: LaneId, rate_bytes_per_sec: u32) -> Duration {
        if self.scheduled() {
            return self.sched.queue_time(lane, rate_bytes_per_sec);
        }
        // One lane: everything unsent on it, as the scheduler would count it.
        let Some(l) = self.send.lanes.get(usize::from(lane.0)) else {
            return Duration::ZERO;
        };
        if l.queue.is_empty() {
            return Duration::ZERO;
        }
        send_time(l.unsent_reliable + l.unsent_unreliable, rate_bytes_per_sec)
    }
}
