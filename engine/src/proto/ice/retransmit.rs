//! GNS's STUN request schedule, shared by connectivity checks and server transactions:
//! up to 5 sends, 400 ms apart and then ×1.5 each time (sends at ≈0, 0.4, 1.0, 1.9, 3.25 s),
//! failure 2.025 s after the last send (≈5.3 s). RFC 5389's 7 sends are not used.
//! GNS: steamnetworkingsockets_ice_client.cpp, `CSteamNetworkingSocketsSTUNRequest::Think`.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

use crate::time::Timestamp;

/// How many times a request is sent before it fails.
pub(super) const MAX_SENDS: u8 = 5;
/// The first retransmission interval.
const FIRST_INTERVAL_MS: u64 = 400;

/// What a request wants at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing before this time.
    Wait(Timestamp),
    /// Send (or resend) the request now.
    Send,
    /// No answer after the last send: give up.
    Failed,
}

/// The send schedule of one request.
#[derive(Debug, Clone)]
pub(super) struct Retransmit {
    sends: u8,
    next: Timestamp,
    interval_ms: u64,
    /// When the request was last sent (round-trip time of the answer).
    pub(super) last_send: Timestamp,
}

impl Retransmit {
    /// A schedule whose first send is due at `now`.
    pub(super) fn new(now: Timestamp) -> Self {
        Retransmit {
            sends: 0,
            next: now,
            interval_ms: FIRST_INTERVAL_MS,
            last_send: now,
        }
    }

    /// Restarts the count with the first send due at `now` (GNS's re-triggered check).
    pub(super) fn reset(&mut self, now: Timestamp) {
        *self = Retransmit::new(now);
    }

    /// The next time [`Retransmit::poll`] will do something.
    pub(super) fn deadline(&self) -> Timestamp {
        self.next
    }

    /// Advances the schedule to `now`.
    pub(super) fn poll(&mut self, now: Timestamp) -> Step {
        if now < self.next {
            return Step::Wait(self.next);
        }
        if self.sends >= MAX_SENDS {
            return Step::Failed;
        }
        self.sends += 1;
        self.last_send = now;
        self.next = now + Duration::from_millis(self.interval_ms);
        self.interval_ms = self.interval_ms * 3 / 2;
        Step::Send
    }
}

/// A fresh 96-bit transaction id from the agent's seeded RNG.
pub(super) fn new_txid(rng: &mut ChaCha8Rng) -> [u8; 12] {
    let mut t = [0u8; 12];
    rng.fill_bytes(&mut t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_gns() {
        let ms = |m: u64| Timestamp::from_micros(m * 1000);
        let mut r = Retransmit::new(ms(0));
        let mut sends = vec![];
        let mut t = ms(0);
        loop {
            match r.poll(t) {
                Step::Send => sends.push(t.as_micros() / 1000),
                Step::Wait(d) => t = d,
                Step::Failed => break,
            }
        }
        assert_eq!(sends, vec![0, 400, 1000, 1900, 3250]);
        assert_eq!(t, ms(5275));
    }
}
