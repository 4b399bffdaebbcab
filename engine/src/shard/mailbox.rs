//! Commands from application threads to a shard: a lock-free MPSC queue plus a wake on the
//! empty-to-non-empty transition, so a busy shard costs producers no syscall (docs/design.md,
//! "The send path without a round trip").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::SegQueue;

use crate::driver::Wake;
use crate::proto::endpoint::Endpoint;
use crate::time::Timestamp;

/// Work for a shard: runs on the shard thread with its endpoint and the loop's `now`.
pub type Command = Box<dyn FnOnce(&mut Endpoint, Timestamp) + Send>;

/// The sending side; clone it for every producer thread.
#[derive(Clone)]
pub struct Mailbox {
    queue: Arc<SegQueue<Command>>,
    sleeping: Arc<AtomicBool>,
    waker: Arc<dyn Wake>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("queued", &self.queue.len())
            .finish()
    }
}

/// The shard's receiving side.
#[derive(Debug)]
pub struct Inbox {
    queue: Arc<SegQueue<Command>>,
    sleeping: Arc<AtomicBool>,
}

/// A connected mailbox and inbox; `waker` wakes the shard's driver.
pub fn mailbox(waker: Arc<dyn Wake>) -> (Mailbox, Inbox) {
    let queue = Arc::new(SegQueue::new());
    let sleeping = Arc::new(AtomicBool::new(false));
    (
        Mailbox {
            queue: queue.clone(),
            sleeping: sleeping.clone(),
            waker,
        },
        Inbox { queue, sleeping },
    )
}

impl Mailbox {
    /// Queues `cmd`; wakes the shard only if it is (about to be) asleep.
    pub fn send(&self, cmd: Command) {
        self.queue.push(cmd);
        if self.sleeping.swap(false, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}

impl Inbox {
    /// Takes the next command.
    pub fn pop(&self) -> Option<Command> {
        self.queue.pop()
    }

    /// Announces that the shard will sleep; returns false (do not sleep) if work arrived.
    pub fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.queue.is_empty() {
            true
        } else {
            self.sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    /// The shard is awake again.
    pub fn woke(&self) {
        self.sleeping.store(false, Ordering::Release);
    }
}
