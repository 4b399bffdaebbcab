//! Loss recovery and congestion control of one connection: where acks, losses and timer
//! expiries meet the RTT estimator, the CUBIC window and the pacing rate.
//!
//! ```text
//!  ack ─► SentPackets::apply_ack ─► AckOutcome ─► on_ack: RTT sample, window grows,
//!                                                          losses cut it once per round trip
//!  timer ─► SentPackets::on_timeout ─► on_timeout: loss timer losses, or RTO: back off and
//!                                                   fall to the minimum window
//!  after each: pacing estimate = gain × window / srtt, clamped to [SendRateMin, SendRateMax]
//! ```
//!
//! `SendRateMin == SendRateMax` is GNS's fixed rate: the window is tracked (for status) but
//! never gates, and the bucket keeps the configured rate. Otherwise data goes out only while
//! the bytes in flight are below the window, which never drops below `SendRateMin × srtt`.

use std::time::Duration;

use crate::proto::congestion::Cubic;
use crate::proto::queue_delay::QueueDelay;
use crate::proto::rtt::RttEstimator;
use crate::proto::send_rate::{RateLimits, TokenBucket};
use crate::proto::sent_packets::{AckOutcome, Lost, TimeoutOutcome};
use crate::time::Timestamp;
use crate::wire::packet::MAX_UDP_PAYLOAD;

/// Acks are asked for (ACK_REQUEST_IMMEDIATE) once half the window is in flight, at most once
/// per this fraction of the window sent: GNS receivers otherwise hold acks for reliable data up
/// to 50 ms and send none at all for unreliable-only packets, which would stall the window.
/// A flow whose window is mostly unused (acks ride on the peer's own traffic) asks for none,
/// since each request costs the peer an ack-only packet.
const ACK_REQUEST_WINDOW_DIVISOR: u64 = 4;

/// Loss-recovery counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryCounters {
    /// Packets declared lost (thresholds or timeout).
    pub packets_lost: u64,
    /// Acks of packets already declared lost (the loss was spurious).
    pub spurious_losses: u64,
    /// Retransmission-timeout expiries.
    pub rto_expiries: u64,
    /// Window reductions (losses, timeouts and standing queues).
    pub congestion_events: u64,
}

/// RTT, window and pacing of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Recovery {
    pub rtt: RttEstimator,
    /// The window and its signals: allocated when data moves, dropped once the connection
    /// goes idle with nothing in flight ([`Recovery::release_idle`]).
    flight: Option<Box<Flight>>,
    limits: RateLimits,
    pub counters: RecoveryCounters,
}

/// The congestion state of a connection that is moving data (224 bytes that an idle
/// connection does without: issue 16, memory per idle connection).
#[derive(Debug, Clone)]
struct Flight {
    cc: Cubic,
    delay: QueueDelay,
    /// Packets lost in the current congestion event, and late acks seen since it began: when
    /// every loss of the event proves spurious, the reduction is undone.
    event_lost: u64,
    event_spurious: u64,
    bytes_since_ack_request: u64,
}

impl Flight {
    fn new() -> Self {
        Flight {
            cc: Cubic::new(MAX_UDP_PAYLOAD),
            delay: QueueDelay::new(),
            event_lost: 0,
            event_spurious: 0,
            bytes_since_ack_request: 0,
        }
    }
}

impl Recovery {
    pub(super) fn new(limits: RateLimits) -> Self {
        Recovery {
            rtt: RttEstimator::new(),
            flight: None,
            limits,
            counters: RecoveryCounters::default(),
        }
    }

    /// The congestion state, created fresh if the connection was idle.
    fn flight(&mut self) -> &mut Flight {
        self.flight.get_or_insert_with(|| Box::new(Flight::new()))
    }

    /// Reads the window state (a fresh one's while idle).
    fn with_cc<R>(&self, f: impl FnOnce(&Cubic) -> R) -> R {
        match &self.flight {
            Some(fl) => f(&fl.cc),
            None => f(&Cubic::new(MAX_UDP_PAYLOAD)),
        }
    }

    /// Drops the congestion state when nothing is in flight: the next data starts from the
    /// initial window in slow start, the restart after idle of RFC 5681 §4.1 (and Linux's
    /// default), which an idle period past the RTO calls for anyway. The RTT estimate stays.
    pub(super) fn release_idle(&mut self) {
        if self.flight.as_ref().is_some_and(|f| f.cc.in_flight() == 0) {
            self.flight = None;
        }
    }

    /// Whether the congestion state is allocated (tests of the idle release).
    #[cfg(test)]
    pub(super) fn has_flight(&self) -> bool {
        self.flight.is_some()
    }

    /// Bytes the window counts as in flight.
    pub(super) fn in_flight(&self) -> u64 {
        self.with_cc(Cubic::in_flight)
    }

    /// New rate limits (a config change); the window is kept.
    pub(super) fn set_limits(
        &mut self,
        now: Timestamp,
        limits: RateLimits,
        bucket: &mut TokenBucket,
    ) {
        self.limits = limits;
        bucket.set_limits(now, limits);
        self.update_pacing(now, bucket);
    }

    /// `SendRateMin == SendRateMax`: GNS's fixed rate, no window.
    pub(super) fn fixed_rate(&self) -> bool {
        self.limits.min() == self.limits.max()
    }

    /// The window in force: CUBIC's, raised to `SendRateMin × srtt` so the configured minimum
    /// rate always stays reachable.
    pub(super) fn window(&self) -> u64 {
        let floor = self.rtt.smoothed().map_or(0, |rtt| {
            (u128::from(self.limits.min()) * rtt.as_micros() / 1_000_000) as u64
        });
        self.with_cc(Cubic::window).max(floor)
    }

    /// Whether a data packet may go out now as far as the window is concerned.
    pub(super) fn allows_data(&self) -> bool {
        self.fixed_rate() || self.with_cc(|cc| cc.allows(self.window()))
    }

    /// Data was ready but the window held it back.
    pub(super) fn on_blocked(&mut self) {
        self.flight().cc.on_blocked();
    }

    /// A data-carrying packet of `bytes` (UDP payload) went out.
    pub(super) fn on_sent(&mut self, bytes: usize) {
        let f = self.flight();
        f.cc.on_sent(bytes);
        f.bytes_since_ack_request += bytes as u64;
    }

    /// Whether the next data packet should ask the peer for an immediate ack.
    pub(super) fn ack_request_due(&self) -> bool {
        let window = self.window();
        !self.fixed_rate()
            && self.flight.as_ref().is_some_and(|f| {
                f.cc.in_flight() * 2 >= window
                    && f.bytes_since_ack_request >= window / ACK_REQUEST_WINDOW_DIVISOR
            })
    }

    /// The packet that asked for an ack went out.
    pub(super) fn on_ack_requested(&mut self) {
        if let Some(f) = &mut self.flight {
            f.bytes_since_ack_request = 0;
        }
    }

    /// An RTT sample from outside the ack path (the handshake).
    pub(super) fn on_rtt_sample(&mut self, rtt: Duration) {
        self.rtt.on_sample(rtt);
    }

    /// Applies what an ack changed: RTT sample, spurious-loss undo, the standing-queue signal,
    /// window growth and loss reductions, then the pacing rate.
    pub(super) fn on_ack(&mut self, now: Timestamp, out: &AckOutcome, bucket: &mut TokenBucket) {
        if out.packets_acked > 0 {
            self.rtt.on_progress();
        }
        if out.late_acks > 0 {
            self.counters.spurious_losses += u64::from(out.late_acks);
            let f = self.flight();
            f.event_spurious += u64::from(out.late_acks);
            if f.event_lost > 0 && f.event_spurious >= f.event_lost {
                f.cc.undo_last_reduction();
                f.event_lost = 0;
            }
        }
        if let Some(rtt) = out.rtt {
            self.rtt.on_sample(rtt);
            let srtt = self.rtt.smoothed().unwrap_or(rtt);
            if self.flight().delay.on_sample(now, rtt, srtt) {
                self.count_event(|cc| cc.on_queue_delay(now, srtt), 0);
            }
        }
        if let Some(sent) = out.newest_acked_sent {
            let srtt = self.rtt.smoothed().unwrap_or_default();
            self.flight().cc.on_ack(now, out.acked_bytes, sent, srtt);
        }
        self.on_lost(now, &out.lost);
        self.update_pacing(now, bucket);
    }

    /// Runs a window change and, if it was a new congestion event, starts its accounting
    /// with `lost` packets.
    fn count_event(&mut self, change: impl FnOnce(&mut Cubic), lost: u64) {
        let f = self.flight();
        let before = f.cc.congestion_events();
        change(&mut f.cc);
        if f.cc.congestion_events() != before {
            f.event_lost = lost;
            f.event_spurious = 0;
            // Counted here, not read from the window state, which an idle period resets.
            self.counters.congestion_events += 1;
        } else {
            f.event_lost += lost;
        }
    }

    /// Applies what the timer found.
    pub(super) fn on_timeout(
        &mut self,
        now: Timestamp,
        out: &TimeoutOutcome,
        bucket: &mut TokenBucket,
    ) {
        if out.rto_fired {
            self.counters.rto_expiries += 1;
            self.rtt.on_timeout();
            self.flight().cc.on_discarded(out.lost.bytes);
            self.counters.packets_lost += u64::from(out.lost.packets);
            let lost = u64::from(out.lost.packets);
            self.count_event(|cc| cc.on_timeout(now), lost);
        } else {
            self.on_lost(now, &out.lost);
        }
        self.update_pacing(now, bucket);
    }

    fn on_lost(&mut self, now: Timestamp, lost: &Lost) {
        if let Some(sent) = lost.newest_sent {
            self.counters.packets_lost += u64::from(lost.packets);
            let n = u64::from(lost.packets);
            self.count_event(|cc| cc.on_loss(now, lost.bytes, sent), n);
        }
    }

    /// Pushes the pacing rate into the bucket (which clamps it to the limits).
    fn update_pacing(&mut self, now: Timestamp, bucket: &mut TokenBucket) {
        let rate = if self.fixed_rate() {
            self.limits.max()
        } else {
            let srtt = self.rtt.smoothed();
            self.with_cc(|cc| cc.pacing_rate(srtt))
                .map_or(self.limits.max(), |r| {
                    u32::try_from(r.max(1)).unwrap_or(u32::MAX)
                })
        };
        bucket.set_estimate(now, rate);
    }
}
