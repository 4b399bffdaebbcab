//! A poll group's queue: the shards push a batch per connection per turn (the messages one
//! drain moved), application threads take messages in any count.
//!
//! A message-at-a-time lock-free queue cost two contended atomic operations and a copy of the
//! message per message on each side (about a tenth of a busy echo server's CPU). Batches cut
//! that to a few per batch; a shard's batches are mostly one connection's whole packet or
//! more. The emptied vectors go back to the shards, so a batch costs no allocation either.
//!
//! ```text
//!  shard:  spare() ─► fill ─► push(batch) ─► batches (lock-free) ─┐
//!             ▲                                                   ▼
//!          spares ◄── emptied ◄── receive(out, max) ◄── front (what a receive left over)
//! ```
//!
//! Receivers hold `front`'s lock for a whole receive (GNS serialises a poll group's receivers
//! too), so a batch is split between two receives in order, and messages keep their arrival
//! order: a connection's batches in the order its shard pushed them.

use std::collections::VecDeque;
use std::sync::Mutex;

use crossbeam_queue::{ArrayQueue, SegQueue};

use crate::handles::Connection;
use crate::message::Message;
use crate::sync::lock;

/// Emptied batch vectors kept for the shards.
const SPARES: usize = 64;
/// A vector that grew beyond this many messages is freed rather than kept: the spares of one
/// group hold at most 64 x 256 idle slots (about 1.2 MB), whatever bursts it once saw.
const SPARE_MAX_CAPACITY: usize = 256;

/// The queue of one poll group.
#[derive(Debug)]
pub(crate) struct GroupQueue {
    batches: SegQueue<Vec<Message>>,
    front: Mutex<VecDeque<Message>>,
    spares: ArrayQueue<Vec<Message>>,
}

impl Default for GroupQueue {
    fn default() -> Self {
        GroupQueue {
            batches: SegQueue::new(),
            front: Mutex::new(VecDeque::new()),
            spares: ArrayQueue::new(SPARES),
        }
    }
}

impl GroupQueue {
    /// An empty vector to fill with a batch (a recycled one when there is one).
    pub(crate) fn spare(&self) -> Vec<Message> {
        self.spares.pop().unwrap_or_default()
    }

    /// Queues a batch (an empty one is recycled).
    pub(crate) fn push(&self, batch: Vec<Message>) {
        if batch.is_empty() {
            self.recycle(batch);
        } else {
            self.batches.push(batch);
        }
    }

    /// Moves up to `max` messages, oldest first, to the end of `out`; returns how many.
    pub(crate) fn receive(&self, out: &mut Vec<Message>, max: usize) -> usize {
        let mut front = lock(&self.front);
        let from_front = front.len().min(max);
        out.extend(front.drain(..from_front));
        let mut moved = from_front;
        while moved < max {
            let Some(mut batch) = self.batches.pop() else {
                break;
            };
            let want = max - moved;
            if batch.len() <= want {
                moved += batch.len();
                out.append(&mut batch);
            } else {
                out.extend(batch.drain(..want));
                moved = max;
                front.extend(batch.drain(..));
            }
            self.recycle(batch);
        }
        if front.is_empty() && front.capacity() > SPARE_MAX_CAPACITY {
            // What a burst left behind is not kept either.
            *front = VecDeque::new();
        }
        moved
    }

    /// Takes every queued message of `conn` out (in order), keeping the others in order.
    pub(crate) fn take_conn(&self, conn: Connection) -> Vec<Message> {
        let mut taken = Vec::new();
        self.take_conn_into(conn, &mut taken, usize::MAX);
        taken
    }

    /// Moves up to `max` of `conn`'s queued messages, oldest first, to the end of `out`,
    /// keeping the others in order; returns how many. Reads the whole queue (a
    /// `ReceiveMessagesOnConnection` on a member of a group, GNS's rarer path).
    pub(crate) fn take_conn_into(
        &self,
        conn: Connection,
        out: &mut Vec<Message>,
        max: usize,
    ) -> usize {
        let mut front = lock(&self.front);
        // Batches pushed meanwhile stay behind `front`, which receives read first.
        while let Some(mut batch) = self.batches.pop() {
            front.extend(batch.drain(..));
            self.recycle(batch);
        }
        let mut taken = 0;
        // One turn through the deque: taken messages leave, the rest go round in order.
        for _ in 0..front.len() {
            let Some(m) = front.pop_front() else { break };
            if taken < max && m.conn == conn {
                out.push(m);
                taken += 1;
            } else {
                front.push_back(m);
            }
        }
        taken
    }

    fn recycle(&self, batch: Vec<Message>) {
        debug_assert!(batch.is_empty());
        if batch.capacity() > 0 && batch.capacity() <= SPARE_MAX_CAPACITY {
            let _ = self.spares.push(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(conn: u32, n: i64) -> Message {
        Message {
            data: Vec::new(),
            conn: Connection(conn),
            user_data: 0,
            time_received: std::time::Duration::ZERO,
            message_number: n,
            flags: 0,
            lane: 0,
        }
    }

    fn ids(ms: &[Message]) -> Vec<(u32, i64)> {
        ms.iter().map(|m| (m.conn.0, m.message_number)).collect()
    }

    #[test]
    fn receives_split_batches_in_order_and_recycle_the_vectors() {
        let q = GroupQueue::default();
        let mut a = q.spare();
        a.extend([msg(1, 1), msg(1, 2), msg(1, 3)]);
        q.push(a);
        q.push(vec![msg(2, 1), msg(2, 2)]);
        q.push(Vec::new());
        let mut out = Vec::new();
        assert_eq!(q.receive(&mut out, 2), 2);
        assert_eq!(ids(&out), [(1, 1), (1, 2)]);
        // The rest of the first batch comes before the second batch.
        assert_eq!(q.receive(&mut out, 10), 3);
        assert_eq!(ids(&out[2..]), [(1, 3), (2, 1), (2, 2)]);
        assert_eq!(q.receive(&mut out, 10), 0);
        // Both vectors came back for the shards.
        assert!(q.spare().capacity() >= 2 && q.spare().capacity() >= 2);
    }

    #[test]
    fn a_vector_grown_past_the_bound_is_not_kept() {
        let q = GroupQueue::default();
        q.push(
            (0..SPARE_MAX_CAPACITY as i64 + 1)
                .map(|n| msg(1, n))
                .collect(),
        );
        let mut out = Vec::new();
        assert_eq!(q.receive(&mut out, usize::MAX), SPARE_MAX_CAPACITY + 1);
        assert_eq!(q.spare().capacity(), 0, "freed, not hoarded");
        q.push(vec![msg(1, 0)]);
        q.receive(&mut out, usize::MAX);
        assert!(q.spare().capacity() >= 1, "a small one is kept");
        // A burst split between receives: what held its rest is not kept either.
        q.push(
            (0..SPARE_MAX_CAPACITY as i64 * 2)
                .map(|n| msg(1, n))
                .collect(),
        );
        assert_eq!(q.receive(&mut out, 1), 1);
        assert!(lock(&q.front).capacity() > SPARE_MAX_CAPACITY);
        q.receive(&mut out, usize::MAX);
        assert_eq!(lock(&q.front).capacity(), 0);
    }

    #[test]
    fn taking_a_connection_out_keeps_the_others_in_order() {
        let q = GroupQueue::default();
        q.push(vec![msg(1, 1), msg(2, 1), msg(1, 2)]);
        let mut out = Vec::new();
        assert_eq!(q.receive(&mut out, 1), 1);
        q.push(vec![msg(2, 2), msg(1, 3)]);
        assert_eq!(ids(&q.take_conn(Connection(1))), [(1, 2), (1, 3)]);
        q.push(vec![msg(2, 3)]);
        out.clear();
        assert_eq!(q.receive(&mut out, 10), 3);
        assert_eq!(ids(&out), [(2, 1), (2, 2), (2, 3)]);
    }

    #[test]
    fn taking_some_of_a_connections_messages_leaves_the_rest_in_order() {
        let q = GroupQueue::default();
        q.push(vec![msg(1, 1), msg(2, 1), msg(1, 2)]);
        q.push(vec![msg(1, 3), msg(2, 2)]);
        let mut out = Vec::new();
        assert_eq!(q.take_conn_into(Connection(1), &mut out, 2), 2);
        assert_eq!(ids(&out), [(1, 1), (1, 2)]);
        assert_eq!(q.take_conn_into(Connection(3), &mut out, 5), 0);
        out.clear();
        assert_eq!(q.receive(&mut out, 10), 3);
        assert_eq!(ids(&out), [(2, 1), (1, 3), (2, 2)]);
    }

    #[test]
    fn concurrent_shards_receivers_and_take_backs_lose_and_repeat_nothing() {
        use std::collections::BTreeSet;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        const CONNS_PER_SHARD: u32 = 3;
        const PER_CONN: i64 = 20_000;
        let q = Arc::new(GroupQueue::default());
        let done = Arc::new(AtomicBool::new(false));
        // Two "shards", each owning its connections, push batches of 1-40 messages.
        let shards: Vec<_> = (0..2u32)
            .map(|shard| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let conns: Vec<u32> = (0..CONNS_PER_SHARD).map(|c| shard * 10 + c).collect();
                    let mut next = vec![0i64; conns.len()];
                    let mut turn = 0usize;
                    while next.iter().any(|&n| n < PER_CONN) {
                        let k = turn % conns.len();
                        let n = (turn % 40 + 1) as i64;
                        let mut batch = q.spare();
                        let end = (next[k] + n).min(PER_CONN);
                        batch.extend((next[k]..end).map(|i| msg(conns[k], i)));
                        next[k] = end;
                        q.push(batch);
                        turn += 1;
                    }
                })
            })
            .collect();
        // Two receivers, and a thread that takes connection 0's messages out now and then.
        let receivers: Vec<_> = (0..3usize)
            .map(|r| {
                let (q, done) = (q.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut last = std::collections::HashMap::new();
                    let mut max = 1 + r * 7;
                    loop {
                        let finished = done.load(Ordering::SeqCst);
                        let mut out = Vec::new();
                        if r == 2 {
                            out = q.take_conn(Connection(0));
                            std::thread::yield_now();
                        } else {
                            q.receive(&mut out, max);
                            max = max % 300 + 13;
                        }
                        let empty = out.is_empty();
                        // Each thread sees a connection's messages in order, across calls.
                        for m in &out {
                            let prev = last.insert(m.conn.0, m.message_number);
                            assert!(prev < Some(m.message_number), "out of order");
                        }
                        got.extend(out.iter().map(|m| (m.conn.0, m.message_number)));
                        if finished && empty {
                            return got;
                        }
                    }
                })
            })
            .collect();
        for s in shards {
            s.join().expect("shard thread");
        }
        done.store(true, Ordering::SeqCst);
        let mut seen = BTreeSet::new();
        let mut total = 0usize;
        for r in receivers {
            let got = r.join().expect("receiver thread");
            total += got.len();
            seen.extend(got);
        }
        let expected = 2 * CONNS_PER_SHARD as usize * PER_CONN as usize;
        assert_eq!(total, expected, "every message once");
        assert_eq!(seen.len(), expected, "none twice");
    }
}
