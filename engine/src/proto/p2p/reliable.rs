//! The reliable message stream inside signals (spec §3.3): how ICE messages survive a lossy,
//! duplicating, reordering signaling channel.
//!
//! ```text
//!  sender                                              receiver
//!  queue(msg) -> id 1, 2, 3 … (due at once)
//!  fill(signal): first due one .. end, RTO = now + 1 s ─►  first_reliable_msg = k, [k, k+1, …]
//!                                                         k > last + 1: drop the batch (no buffer)
//!                                                         else deliver (last+1 ..), last = end
//!  on_ack(n): drop ids <= n               ◄─ every signal: ack_reliable_msg = last
//! ```
//!
//! There is no out-of-order buffer and no window: GNS's receiver drops a batch that starts
//! past a gap, and the sender retransmits everything from the oldest due message onward.
//!
//! GNS: `steamnetworkingsockets_p2p.cpp`, `QueueSignalReliableMessage`,
//! `SetRendezvousCommonFieldsAndSendSignal`, `ProcessSignal`.

use std::collections::VecDeque;

use crate::time::Timestamp;
use crate::wire::rendezvous::{IceRendezvous, P2pRendezvous, ReliableMessage};

use super::signaling::RELIABLE_RTO;

/// One queued, unacknowledged message.
#[derive(Debug, Clone)]
struct Pending {
    id: u32,
    /// When to retransmit; `None` until first sent (due at once, GNS's "RTO = 1").
    rto: Option<Timestamp>,
    msg: IceRendezvous,
}

impl Pending {
    fn due(&self, now: Timestamp) -> bool {
        self.rto.is_none_or(|rto| rto <= now)
    }
}

/// The sending half: ids from 1, retransmitted every [`RELIABLE_RTO`] until acked.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReliableSender {
    /// Id of the last queued message (0: none yet).
    last_id: u32,
    unacked: VecDeque<Pending>,
}

impl ReliableSender {
    /// Queues a message, due at once; returns its id.
    pub(crate) fn queue(&mut self, msg: IceRendezvous) -> u32 {
        self.last_id = self.last_id.wrapping_add(1).max(1);
        self.unacked.push_back(Pending {
            id: self.last_id,
            rto: None,
            msg,
        });
        self.last_id
    }

    /// The peer has everything up to `ack`: forget those.
    pub(crate) fn on_ack(&mut self, ack: u32) {
        while self.unacked.front().is_some_and(|p| p.id <= ack) {
            self.unacked.pop_front();
        }
    }

    /// Drops every queued message and restarts ids at 1 (the connection closed).
    pub(crate) fn reset(&mut self) {
        self.unacked.clear();
        self.last_id = 0;
    }

    /// Number of messages not yet acknowledged.
    pub(crate) fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Whether some message is due for (re)transmission at `now`.
    pub(crate) fn any_due(&self, now: Timestamp) -> bool {
        self.unacked.iter().any(|p| p.due(now))
    }

    /// The earliest retransmission time; `Timestamp::ZERO` for a message never sent.
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.unacked
            .iter()
            .map(|p| p.rto.unwrap_or(Timestamp::ZERO))
            .min()
    }

    /// Appends messages to `signal` and sets `first_reliable_msg`: from the first due message
    /// (the oldest if `from_oldest`, for signals carrying `connect_request`/`connect_ok`),
    /// every remaining message; each appended one's RTO restarts at `now`.
    pub(crate) fn fill(&mut self, now: Timestamp, from_oldest: bool, signal: &mut P2pRendezvous) {
        let Some(start) = self.unacked.iter().position(|p| from_oldest || p.due(now)) else {
            return;
        };
        signal.first_reliable_msg = Some(self.unacked[start].id);
        for p in self.unacked.iter_mut().skip(start) {
            p.rto = Some(now + RELIABLE_RTO);
            signal.reliable_messages.push(ReliableMessage {
                ice: Some(p.msg.clone()),
            });
        }
    }
}

/// The receiving half: the id of the last message delivered in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReliableReceiver {
    last: u32,
}

impl ReliableReceiver {
    /// The value for `ack_reliable_msg`.
    pub(crate) fn last(&self) -> u32 {
        self.last
    }

    /// Takes a batch starting at id `first`; returns the ICE messages not delivered before, in
    /// order. A batch past a gap, or with `first == 0`, is dropped whole. Entries without an
    /// `ice` payload consume their id and deliver nothing, as in GNS.
    pub(crate) fn receive(&mut self, first: u32, batch: &[ReliableMessage]) -> Vec<IceRendezvous> {
        let next = u64::from(self.last) + 1;
        if first == 0 || u64::from(first) > next {
            return Vec::new();
        }
        // `first <= next`, so `skip` is the count of already-delivered entries.
        let skip = usize::try_from(next - u64::from(first)).unwrap_or(usize::MAX);
        let room = usize::try_from(u32::MAX - self.last).unwrap_or(usize::MAX);
        let fresh: Vec<&ReliableMessage> = batch.iter().skip(skip).take(room).collect();
        // `fresh.len() <= room = u32::MAX - last`: the sum cannot overflow.
        self.last += u32::try_from(fresh.len()).unwrap_or(0);
        fresh.into_iter().filter_map(|m| m.ice.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::rendezvous::IceAuth;

    fn ice(n: u32) -> IceRendezvous {
        IceRendezvous {
            add_candidate: None,
            auth: Some(IceAuth {
                pwd_frag: Some(n.to_string()),
            }),
        }
    }

    fn batch(range: std::ops::RangeInclusive<u32>) -> Vec<ReliableMessage> {
        range
            .map(|n| ReliableMessage { ice: Some(ice(n)) })
            .collect()
    }

    #[test]
    fn in_flight_messages_are_skipped_until_their_rto() {
        let t0 = Timestamp::from_micros(1_000_000);
        let mut tx = ReliableSender::default();
        assert_eq!(tx.queue(ice(1)), 1);
        let mut s = P2pRendezvous::default();
        tx.fill(t0, false, &mut s);
        assert_eq!(
            (s.first_reliable_msg, s.reliable_messages.len()),
            (Some(1), 1)
        );
        assert_eq!(tx.queue(ice(2)), 2);
        let mut s = P2pRendezvous::default();
        tx.fill(t0, false, &mut s);
        assert_eq!(
            (s.first_reliable_msg, s.reliable_messages.len()),
            (Some(2), 1)
        );
        // Nothing due: nothing appended.
        let mut s = P2pRendezvous::default();
        tx.fill(t0, false, &mut s);
        assert_eq!((s.first_reliable_msg, s.reliable_messages.len()), (None, 0));
        // A connect_request/connect_ok signal starts from the oldest anyway.
        let mut s = P2pRendezvous::default();
        tx.fill(t0, true, &mut s);
        assert_eq!(
            (s.first_reliable_msg, s.reliable_messages.len()),
            (Some(1), 2)
        );
        assert_eq!(tx.next_due(), Some(t0 + RELIABLE_RTO));
        tx.on_ack(1);
        assert_eq!(tx.unacked(), 1);
        tx.reset();
        assert_eq!(tx.queue(ice(9)), 1);
    }

    #[test]
    fn receiver_delivers_each_id_once_and_drops_batches_past_a_gap() {
        let mut rx = ReliableReceiver::default();
        assert!(rx.receive(2, &batch(2..=3)).is_empty());
        assert!(rx.receive(0, &batch(0..=3)).is_empty());
        assert_eq!(rx.receive(1, &batch(1..=2)), vec![ice(1), ice(2)]);
        assert_eq!(rx.receive(1, &batch(1..=4)), vec![ice(3), ice(4)]);
        assert!(rx.receive(2, &batch(2..=3)).is_empty());
        assert_eq!(rx.last(), 4);
    }

    #[test]
    fn receiver_ids_saturate_instead_of_wrapping() {
        let mut rx = ReliableReceiver { last: u32::MAX - 1 };
        assert_eq!(rx.receive(u32::MAX, &batch(1..=3)).len(), 1);
        assert_eq!(rx.last(), u32::MAX);
        assert!(rx.receive(u32::MAX, &batch(1..=3)).is_empty());
    }
}
