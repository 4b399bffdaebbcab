//! A way for an application thread to sleep until something arrives, instead of polling: the
//! shards bump a generation counter whenever they deliver a message or queue a status change,
//! and a waiting thread sleeps on a condition variable until the generation moves.
//!
//! The shard pays one atomic add per turn that delivered something, and takes the mutex only
//! when a thread is actually waiting:
//!
//! ```text
//!  shard:   gen += 1 (SeqCst) ; if waiters > 0 { lock; unlock; notify_all }
//!  waiter:  lock ; waiters += 1 (SeqCst) ; while gen == seen { wait } ; waiters -= 1
//! ```
//!
//! Either the waiter's read of `gen` (under the lock) sees the shard's bump, or the shard's
//! read of `waiters` sees the waiter, and then its lock waits until the waiter is asleep in
//! `wait` (which releases the lock atomically), so the notify that follows is not lost.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use sockworks_engine::shard::Clock;

use crate::sync::lock;

/// The activity generation of one instance.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    generation: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    moved: Condvar,
}

impl Activity {
    /// The generation now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Something arrived: wakes the threads waiting for it.
    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders us after a waiter's check of `gen`; notifying after
            // releasing it spares the woken thread from blocking on a lock we still hold
            // (on a shared core it would run at once and sleep again on the mutex).
            drop(lock(&self.lock));
            self.moved.notify_all();
        }
    }

    /// Sleeps until the generation differs from `seen` or `timeout` passes; returns the
    /// generation then.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration, clock: &Clock) -> u64 {
        let start = clock.now();
        let mut guard = lock(&self.lock);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        loop {
            let now = self.generation.load(Ordering::SeqCst);
            let waited = clock.now().saturating_since(start);
            if now != seen || waited >= timeout {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return now;
            }
            guard = match self.moved.wait_timeout(guard, timeout - waited) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_bump_from_another_thread_ends_the_wait() {
        let a = Arc::new(Activity::default());
        let clock = Clock::new();
        let seen = a.generation();
        let b = a.clone();
        let t = std::thread::spawn(move || b.bump());
        let got = a.wait(seen, Duration::from_secs(30), &clock);
        t.join().expect("bumper");
        assert_ne!(got, seen);
    }

    #[test]
    fn without_activity_the_wait_times_out() {
        let a = Activity::default();
        let clock = Clock::new();
        let seen = a.generation();
        assert_eq!(a.wait(seen, Duration::from_millis(5), &clock), seen);
        a.bump();
        assert_ne!(
            a.wait(seen, Duration::from_secs(30), &clock),
            seen,
            "already moved"
        );
    }
}
