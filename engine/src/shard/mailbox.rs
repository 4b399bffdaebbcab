//! A shard's one inbound FIFO: a lock-free MPSC queue of [`Command`]s plus a wake on the
//! awake-to-asleep transition only, so a busy shard costs producers no syscall
//! (docs/design.md, "The send path without a round trip").
//!
//! The wake handshake (a Dekker pair, both sides SeqCst):
//!
//! ```text
//!  producer:  push(cmd) ; if sleeping.swap(false) { wake() }
//!  shard:     sleeping.store(true) ; if queue non-empty { sleeping = false; don't sleep }
//! ```
//!
//! Either the shard's emptiness check sees the push, or the producer's swap sees the flag the
//! shard stored and wakes it; SeqCst on both the store/load pair and the swap forbids the
//! outcome where each misses the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;

use super::command::Command;
use crate::driver::Wake;

/// Datagrams other shards may have queued here at once: past it, forwarded datagrams are
/// dropped (and counted) instead of growing the queue without bound under a flood of
/// misrouted packets.
pub(crate) const MAX_FORWARDED: usize = 4096;

struct Queue {
    commands: SegQueue<Command>,
    sleeping: AtomicBool,
    /// [`Command::Forwarded`] entries now queued.
    forwarded: AtomicUsize,
    waker: Arc<dyn Wake>,
}

/// The sending side; clone it for every producer thread.
#[derive(Clone)]
pub struct Mailbox {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("queued", &self.queue.commands.len())
            .finish()
    }
}

/// The shard's receiving side.
pub struct Inbox {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.queue.commands.len())
            .finish()
    }
}

/// A connected mailbox and inbox; `waker` wakes the shard's driver.
pub fn mailbox(waker: Arc<dyn Wake>) -> (Mailbox, Inbox) {
    let queue = Arc::new(Queue {
        commands: SegQueue::new(),
        sleeping: AtomicBool::new(false),
        forwarded: AtomicUsize::new(0),
        waker,
    });
    (
        Mailbox {
            queue: queue.clone(),
        },
        Inbox { queue },
    )
}

impl Mailbox {
    /// Queues `cmd`; wakes the shard only if it is (about to be) asleep.
    pub fn send(&self, cmd: Command) {
        self.queue.commands.push(cmd);
        self.wake_if_asleep();
    }

    /// Queues a misrouted datagram for this shard; false (dropped) when `MAX_FORWARDED`
    /// are already waiting.
    pub fn forward(&self, cmd: Command) -> bool {
        if self.queue.forwarded.fetch_add(1, Ordering::AcqRel) >= MAX_FORWARDED {
            self.queue.forwarded.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.send(cmd);
        true
    }

    /// Makes the shard run a turn soon (to see a flag it reads, say) without a command.
    pub fn wake(&self) {
        self.queue.sleeping.store(false, Ordering::SeqCst);
        self.queue.waker.wake();
    }

    fn wake_if_asleep(&self) {
        if self.queue.sleeping.swap(false, Ordering::SeqCst) {
            self.queue.waker.wake();
        }
    }
}

impl Inbox {
    /// Takes the next command.
    pub fn pop(&self) -> Option<Command> {
        let cmd = self.queue.commands.pop()?;
        if matches!(cmd, Command::Forwarded { .. }) {
            self.queue.forwarded.fetch_sub(1, Ordering::AcqRel);
        }
        Some(cmd)
    }

    /// Announces that the shard will sleep; returns false (do not sleep) if work arrived.
    pub fn prepare_sleep(&self) -> bool {
        self.queue.sleeping.store(true, Ordering::SeqCst);
        if self.queue.commands.is_empty() {
            true
        } else {
            self.queue.sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    /// The shard is awake again.
    pub fn woke(&self) {
        self.queue.sleeping.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Default)]
    struct CountingWake(AtomicU32);
    impl Wake for CountingWake {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn datagram() -> Command {
        Command::Forwarded {
            meta: "127.0.0.1:1"
                .parse::<std::net::SocketAddr>()
                .expect("literal address")
                .into(),
            data: vec![0x80],
        }
    }

    #[test]
    fn only_a_sleeping_shard_is_woken() {
        let w = Arc::new(CountingWake::default());
        let (mb, inbox) = mailbox(w.clone());
        mb.send(Command::Flush { id: 1.into() });
        assert_eq!(w.0.load(Ordering::Relaxed), 0, "awake: no syscall");
        assert!(!inbox.prepare_sleep(), "work is waiting");
        assert!(inbox.pop().is_some());
        assert!(inbox.prepare_sleep());
        mb.send(Command::Flush { id: 2.into() });
        mb.send(Command::Flush { id: 3.into() });
        assert_eq!(
            w.0.load(Ordering::Relaxed),
            1,
            "one wake for the transition"
        );
    }

    #[test]
    fn commands_come_out_in_the_order_they_went_in() {
        let (mb, inbox) = mailbox(Arc::new(CountingWake::default()));
        for id in 0..100 {
            mb.send(Command::Accept { id: id.into() });
        }
        for want in 0..100 {
            assert!(matches!(inbox.pop(), Some(Command::Accept { id }) if id.get() == want));
        }
        assert!(inbox.pop().is_none());
    }

    #[test]
    fn forwarded_datagrams_are_bounded() {
        let (mb, inbox) = mailbox(Arc::new(CountingWake::default()));
        for _ in 0..MAX_FORWARDED {
            assert!(mb.forward(datagram()));
        }
        assert!(!mb.forward(datagram()), "the bound drops the next one");
        assert!(inbox.pop().is_some());
        assert!(
            mb.forward(datagram()),
            "room again after the shard took one"
        );
    }
}
