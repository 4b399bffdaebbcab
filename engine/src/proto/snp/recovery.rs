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
    pub cc: Cubic,
    delay: QueueDelay,
    limits: RateLimits,
    /// Packets lost in the current congestion event, and late acks seen since it began: when
    /// every loss of the event proves spurious, the reduction is undone.
    event_lost: u64,
    event_spurious: u64,
    bytes_since_ack_request: u64,
    pub counters: RecoveryCounters,
}

impl Recovery {
    pub(super) fn new(limits: RateLimits) -> Self {
        Recovery {
            rtt: RttEstimator::new(),
            cc: Cubic::new(MAX_UDP_PAYLOAD),
            delay: QueueDelay::new(),
            limits,
            event_lost: 0,
            event_spurious: 0,
            bytes_since_ack_request: 0,
            counters: RecoveryCounters::default(),
        }
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
        self.cc.window().max(floor)
    }

    /// Whether a data packet may go out now as far as the window is concerned.
    pub(super) fn allows_data(&self) -> bool {
        self.fixed_rate() || self.cc.allows(self.window())
    }

    /// Data was ready but the window held it back.
    pub(super) fn on_blocked(&mut self) {
        self.cc.on_blocked();
    }

    /// A data-carrying packet of `bytes` (UDP payload) went out.
    pub(super) fn on_sent(&mut self, bytes: usize) {
        self.cc.on_sent(bytes);
        self.bytes_since_ack_request += bytes as u64;
    }

    /// Whether the next data packet should ask the peer for an immediate ack.
    pub(super) fn ack_request_due(&self) -> bool {
        let window = self.window();
        !self.fixed_rate()
            && self.cc.in_flight() * 2 >= window
            && self.bytes_since_ack_request >= window / ACK_REQUEST_WINDOW_DIVISOR
    }

    /// The packet that asked for an ack went out.
    pub(super) fn on_ack_requested(&mut self) {
        self.bytes_since_ack_request = 0;
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
            self.event_spurious += u64::from(out.late_acks);
            if self.event_lost > 0 && self.event_spurious >= self.event_lost {
                self.cc.undo_last_reduction();
                self.event_lost = 0;
            }
        }
        if let Some(rtt) = out.rtt {
            self.rtt.on_sample(rtt);
            let srtt = self.rtt.smoothed().unwrap_or(rtt);
            if self.delay.on_sample(now, rtt, srtt) {
                self.count_event(|cc| cc.on_queue_delay(now, srtt), 0);
            }
        }
        if let Some(sent) = out.newest_acked_sent {
            let srtt = self.rtt.smoothed().unwrap_or_default();
            self.cc.on_ack(now, out.acked_bytes, sent, srtt);
        }
        self.on_lost(now, &out.lost);
        self.update_pacing(now, bucket);
    }

    /// Runs a window change and, if it was a new congestion event, starts its accounting
    /// with `lost` packets.
    fn count_event(&mut self, change: impl FnOnce(&mut Cubic), lost: u64) {
        let before = self.cc.congestion_events();
        change(&mut self.cc);
        if self.cc.congestion_events() != before {
            self.counters.congestion_events = self.cc.congestion_events();
            self.event_lost = lost;
            self.event_spurious = 0;
        } else {
            self.event_lost += lost;
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
            self.cc.on_discarded(out.lost.bytes);
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
            self.cc
                .pacing_rate(self.rtt.smoothed())
                .map_or(self.limits.max(), |r| {
                    u32::try_from(r.max(1)).unwrap_or(u32::MAX)
                })
        };
        bucket.set_estimate(now, rate);
    }
}
