//! Accounting for one connection of a windowed echo load.
//!
//! Every probe sent is a slot in a window, oldest first; an echo settles its slot. An echo for
//! a slot that is already settled is a duplicate (or, if its slot timed out, late); one that
//! does not check byte for byte is corrupt; one older than an echo already received is
//! reordered. With reliable messages nothing may time out: what is still unsettled
//! when the run ends is lost. With unreliable messages a probe not echoed within the timeout
//! is lost at once and its window place is free again.
//!
//! ```text
//!   base                         next_seq
//!    |  settled? pending pending  |
//!    [ P ][ S ][ P ][ P ]          <- slots; the front is popped while settled
//! ```
//!
//! Pure bookkeeping: times are passed in, nothing reads a clock.

use std::collections::VecDeque;
use std::ops::AddAssign;

use super::probe::{self, Probe};

/// Counters of one connection, or summed over many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Probes sent.
    pub sent: u64,
    /// Echoes that came back intact, once.
    pub received: u64,
    /// Probes never echoed (reliable: by the end of the run; unreliable: within the timeout),
    /// or refused by the send call.
    pub lost: u64,
    /// Echoes of a probe that had already come back.
    pub dup: u64,
    /// Echoes that arrived after a younger probe's echo on the same connection (an older
    /// probe that is merely missing does not make later echoes reordered).
    pub reordered: u64,
    /// Echoes that did not match what was sent (wrong bytes, length, connection, or a sequence
    /// number never sent).
    pub corrupt: u64,
    /// Echoes of an unreliable probe that had already been counted lost (after the timeout).
    pub late: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.dup += o.dup;
        self.reordered += o.reordered;
        self.corrupt += o.corrupt;
        self.late += o.late;
    }
}

impl Counts {
    /// Whether a reliable run with these counts is clean: nothing lost, duplicated,
    /// reordered, corrupted or late.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.dup == 0
            && self.reordered == 0
            && self.corrupt == 0
            && self.late == 0
    }
}

/// What one echo turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The first intact echo of a waiting probe, `rtt_us` after it was sent.
    Fresh {
        /// Round trip, microseconds.
        rtt_us: u64,
    },
    /// Counted as duplicate, late or corrupt; no round trip to record.
    Rejected,
}

/// One probe in the window.
#[derive(Debug, Clone, Copy)]
struct Slot {
    sent_us: u64,
    settled: bool,
}

/// Timed-out sequence numbers remembered to tell a late echo from a duplicate.
const EXPIRED_MEMORY: usize = 4096;

/// The window and counters of one connection.
#[derive(Debug, Clone)]
pub struct ConnTally {
    conn: u32,
    size: usize,
    next_seq: u64,
    /// Sequence number of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot>,
    pending: u32,
    /// Recently timed-out sequence numbers, ascending.
    expired: VecDeque<u64>,
    /// The youngest probe echoed so far.
    highest: Option<u64>,
    counts: Counts,
}

impl ConnTally {
    /// A connection with client index `conn` whose probes are `size` bytes.
    #[must_use]
    pub fn new(conn: u32, size: usize) -> Self {
        ConnTally {
            conn,
            size: size.max(probe::HEADER),
            next_seq: 0,
            base: 0,
            slots: VecDeque::new(),
            pending: 0,
            expired: VecDeque::new(),
            highest: None,
            counts: Counts::default(),
        }
    }

    /// Probes sent and not yet settled.
    #[must_use]
    pub fn pending(&self) -> u32 {
        self.pending
    }

    /// The counters so far.
    #[must_use]
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Registers the next probe, sent at `now_us`, and returns its payload.
    pub fn next_probe(&mut self, now_us: u64) -> (u64, Vec<u8>) {
        let p = Probe {
            conn: self.conn,
            seq: self.next_seq,
            sent_us: now_us,
        };
        self.slots.push_back(Slot {
            sent_us: now_us,
            settled: false,
        });
        self.next_seq += 1;
        self.pending += 1;
        self.counts.sent += 1;
        (p.seq, probe::encode(p, self.size))
    }

    /// Accounts an echo that arrived on this connection at `now_us`.
    pub fn on_echo(&mut self, bytes: &[u8], now_us: u64) -> Echo {
        let Some(h) = probe::header(bytes).filter(|h| h.conn == self.conn) else {
            self.counts.corrupt += 1;
            return Echo::Rejected;
        };
        if h.seq >= self.next_seq {
            self.counts.corrupt += 1;
            return Echo::Rejected;
        }
        let idx = h
            .seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok());
        let Some((idx, slot)) = idx.and_then(|i| Some((i, *self.slots.get(i)?))) else {
            self.reject_settled(h.seq);
            return Echo::Rejected;
        };
        if slot.settled {
            self.reject_settled(h.seq);
            return Echo::Rejected;
        }
        let fresh = slot.sent_us == h.sent_us && probe::is_intact(bytes, h, self.size);
        self.settle(idx);
        if !fresh {
            self.counts.corrupt += 1;
            return Echo::Rejected;
        }
        let seq = h.seq;
        match self.highest {
            Some(top) if top > seq => self.counts.reordered += 1,
            _ => self.highest = Some(seq),
        }
        self.counts.received += 1;
        Echo::Fresh {
            rtt_us: now_us.saturating_sub(slot.sent_us),
        }
    }

    /// The send call refused probe `seq`: it counts as lost.
    pub fn on_send_failed(&mut self, seq: u64) {
        let idx = seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok());
        if let Some(i) = idx.filter(|&i| self.slots.get(i).is_some_and(|s| !s.settled)) {
            self.settle(i);
            self.counts.lost += 1;
        }
    }

    /// Unreliable: counts every probe sent `timeout_us` or more before `now_us` and still
    /// waiting as lost, freeing its place in the window. Returns how many.
    pub fn expire(&mut self, now_us: u64, timeout_us: u64) -> u64 {
        let mut n = 0;
        let mut i = 0;
        while let Some(slot) = self.slots.get(i) {
            if !slot.settled {
                // Send times grow with the sequence number: the first young one ends the scan.
                if now_us.saturating_sub(slot.sent_us) < timeout_us {
                    break;
                }
                let seq = self.base + i as u64;
                if self.expired.len() == EXPIRED_MEMORY {
                    self.expired.pop_front();
                }
                self.expired.push_back(seq);
                self.settle(i);
                n += 1;
                // `settle` may have popped the front: rescan from the start.
                i = 0;
                continue;
            }
            i += 1;
        }
        self.counts.lost += n;
        n
    }

    /// Ends the run: every probe still waiting is lost.
    pub fn finish(&mut self) {
        self.counts.lost += u64::from(self.pending);
        self.pending = 0;
        self.base = self.next_seq;
        self.slots.clear();
    }

    fn reject_settled(&mut self, seq: u64) {
        if self.expired.binary_search(&seq).is_ok() {
            self.counts.late += 1;
        } else {
            self.counts.dup += 1;
        }
    }

    fn settle(&mut self, idx: usize) {
        if let Some(slot) = self.slots.get_mut(idx) {
            slot.settled = true;
            self.pending -= 1;
        }
        while self.slots.front().is_some_and(|s| s.settled) {
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(t: &mut ConnTally, n: usize, now: u64) -> Vec<Vec<u8>> {
        (0..n).map(|_| t.next_probe(now).1).collect()
    }

    #[test]
    fn in_order_echoes_settle_the_window_and_give_round_trips() {
        let mut t = ConnTally::new(3, 32);
        let p = sent(&mut t, 3, 100);
        assert_eq!(t.pending(), 3);
        for b in &p {
            assert_eq!(t.on_echo(b, 150), Echo::Fresh { rtt_us: 50 });
        }
        assert_eq!(t.pending(), 0);
        t.finish();
        let c = t.counts();
        assert_eq!((c.sent, c.received), (3, 3));
        assert!(c.is_clean());
    }

    #[test]
    fn an_overtaking_echo_is_reordered_and_a_repeat_is_a_duplicate() {
        let mut t = ConnTally::new(0, 32);
        let p = sent(&mut t, 3, 0);
        assert!(matches!(t.on_echo(&p[1], 5), Echo::Fresh { .. }));
        assert!(matches!(t.on_echo(&p[0], 5), Echo::Fresh { .. }));
        assert_eq!(t.on_echo(&p[0], 6), Echo::Rejected);
        t.finish();
        let c = t.counts();
        assert_eq!((c.received, c.reordered, c.dup, c.lost), (2, 1, 1, 1));
        assert!(!c.is_clean());
    }

    #[test]
    fn wrong_bytes_another_connection_or_an_unsent_sequence_are_corrupt() {
        let mut t = ConnTally::new(0, 32);
        let mut p = sent(&mut t, 1, 0);
        p[0][25] ^= 0xff;
        assert_eq!(t.on_echo(&p[0], 1), Echo::Rejected);
        let mut other = ConnTally::new(1, 32);
        assert_eq!(t.on_echo(&other.next_probe(0).1, 1), Echo::Rejected);
        let mut ahead = ConnTally::new(0, 32);
        sent(&mut ahead, 5, 0);
        assert_eq!(t.on_echo(&ahead.next_probe(0).1, 1), Echo::Rejected);
        assert_eq!(t.on_echo(b"short", 1), Echo::Rejected);
        assert_eq!(t.counts().corrupt, 4);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn unreliable_probes_time_out_free_their_place_and_a_late_echo_is_late() {
        let mut t = ConnTally::new(0, 32);
        let old = sent(&mut t, 2, 0);
        let young = sent(&mut t, 1, 900);
        assert_eq!(t.expire(1000, 1000), 2);
        assert_eq!(t.pending(), 1);
        assert_eq!(t.on_echo(&old[1], 1001), Echo::Rejected);
        assert!(matches!(t.on_echo(&young[0], 1001), Echo::Fresh { .. }));
        let c = t.counts();
        assert_eq!((c.lost, c.late, c.dup, c.received), (2, 1, 0, 1));
    }

    #[test]
    fn echoes_after_a_missing_unreliable_probe_are_not_reordered() {
        let mut t = ConnTally::new(0, 32);
        let p = sent(&mut t, 4, 0);
        for b in &p[1..] {
            assert!(matches!(t.on_echo(b, 5), Echo::Fresh { .. }));
        }
        assert_eq!(t.expire(2000, 1000), 1);
        let c = t.counts();
        assert_eq!((c.received, c.reordered, c.lost), (3, 0, 1));
    }

    #[test]
    fn a_refused_send_is_lost() {
        let mut t = ConnTally::new(0, 32);
        let (seq, _) = t.next_probe(0);
        t.on_send_failed(seq);
        assert_eq!((t.pending(), t.counts().lost), (0, 1));
    }
}
