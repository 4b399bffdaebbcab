//! CUBIC congestion control (RFC 9438) on a window of bytes in flight.
//!
//! Open-source GNS has none (spec §4.14): a connection sends at `clamp(estimate, SendRateMin,
//! SendRateMax)` whatever the path does. Sockworks keeps that when `SendRateMin ==
//! SendRateMax` (a fixed rate, as GNS), and otherwise lets this controller choose: packets go
//! out while the bytes in flight are below the window, paced at a multiple of window / RTT,
//! clamped between the two limits.
//!
//! Why CUBIC and not a BBR-style model: its only input is loss, which GNS receivers already
//! report through NACK blocks, while a bandwidth model needs delivery-rate samples that GNS's
//! 50 ms delayed acks blur; it is the Linux default, so a server shares bottlenecks fairly with
//! the TCP around it; and at game-server RTTs (1-100 ms) it runs in its Reno-friendly region,
//! where many flows through one queue converge to equal shares (fast convergence helps).
//!
//! ```text
//!  slow start      cwnd += acked                  until loss or cwnd ≥ ssthresh
//!  loss (once per  w_max = cwnd (× (1+β)/2 if below the last w_max), cwnd = β·cwnd, β = 0.7
//!   round trip)    recovery until a packet sent after the loss is acked
//!  avoidance       cwnd → max(W_cubic(t + rtt), W_reno) with W_cubic(t) = C(t − K)³ + w_max
//!  timeout         cwnd = minimum window (persistent congestion)
//! ```

use std::time::Duration;

use crate::time::Timestamp;

/// CUBIC's multiplicative decrease factor (RFC 9438 §4.6).
const BETA: f64 = 0.7;

/// Decrease factor for a standing queue (`queue_delay`): gentler than for a loss, since
/// nothing was lost and the queue only has to drain.
const DELAY_BETA: f64 = 0.85;

/// CUBIC's scaling constant, in maximum-size packets per second cubed (RFC 9438 §5).
const C: f64 = 0.4;

/// Packets of initial window (RFC 9002 §7.2: 10 packets).
const INITIAL_PACKETS: u64 = 10;

/// Packets of minimum window (RFC 9002 §7.2: 2 packets).
const MIN_PACKETS: u64 = 2;

/// Pacing gain over window / RTT in slow start (the window doubles each round trip).
const PACING_GAIN_SLOW_START: f64 = 2.0;

/// Pacing gain over window / RTT in congestion avoidance.
const PACING_GAIN_AVOIDANCE: f64 = 1.25;

/// The controller of one connection. Bytes are UDP payload bytes of data-carrying packets.
#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    mss: u64,
    cwnd: u64,
    ssthresh: u64,
    in_flight: u64,
    /// The window before the last reduction, bytes.
    w_max: f64,
    /// Start of the current avoidance epoch and its K (seconds).
    epoch: Option<(Timestamp, f64)>,
    /// The Reno-friendly window estimate, bytes.
    w_est: f64,
    /// Losses of packets sent before this belong to a congestion event already answered.
    recovery_start: Option<Timestamp>,
    /// Whether the window limited the sender since the last ack (no growth when app-limited).
    window_limited: bool,
    /// Congestion events so far.
    events: u64,
    /// The state before the last reduction, restored if it proves spurious.
    undo: Option<Saved>,
}

/// What a reduction changed.
#[derive(Debug, Clone, Copy)]
struct Saved {
    cwnd: u64,
    ssthresh: u64,
    w_max: f64,
}

impl Cubic {
    /// A controller for packets of at most `mss` bytes, starting in slow start.
    pub(crate) fn new(mss: usize) -> Self {
        let mss = mss.max(1) as u64;
        Cubic {
            mss,
            cwnd: INITIAL_PACKETS * mss,
            ssthresh: u64::MAX,
            in_flight: 0,
            w_max: 0.0,
            epoch: None,
            w_est: 0.0,
            recovery_start: None,
            window_limited: false,
            events: 0,
            undo: None,
        }
    }

    /// The congestion window, bytes.
    pub(crate) fn window(&self) -> u64 {
        self.cwnd
    }

    /// Bytes sent and neither acked nor declared lost.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Slow-start threshold (`u64::MAX` until the first loss).
    #[cfg(test)]
    pub(crate) fn ssthresh(&self) -> u64 {
        self.ssthresh
    }

    /// Congestion events (window reductions) so far.
    pub(crate) fn congestion_events(&self) -> u64 {
        self.events
    }

    /// Whether another packet may go out under `window` (the caller's effective window: this
    /// one, possibly raised to the `SendRateMin` floor).
    pub(crate) fn allows(&self, window: u64) -> bool {
        self.in_flight < window
    }

    /// Notes that the window held the sender back (growth is earned only while limited).
    pub(crate) fn on_blocked(&mut self) {
        self.window_limited = true;
    }

    /// A data-carrying packet of `bytes` went out.
    pub(crate) fn on_sent(&mut self, bytes: usize) {
        self.in_flight += bytes as u64;
        if self.in_flight * 2 >= self.cwnd {
            self.window_limited = true;
        }
    }

    fn in_recovery(&self, sent_at: Timestamp) -> bool {
        self.recovery_start.is_some_and(|r| sent_at <= r)
    }

    /// Packets totalling `bytes` were acked; `newest_sent` is when the most recent of them
    /// was sent, `srtt` the smoothed RTT after this ack.
    pub(crate) fn on_ack(
        &mut self,
        now: Timestamp,
        bytes: u64,
        newest_sent: Timestamp,
        srtt: Duration,
    ) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        if bytes == 0 || self.in_recovery(newest_sent) {
            return;
        }
        if !self.window_limited {
            return; // app-limited: the window was not tested, do not grow it
        }
        self.window_limited = self.in_flight * 2 >= self.cwnd;
        if self.cwnd < self.ssthresh {
            self.cwnd += bytes;
            return;
        }
        let mss = self.mss as f64;
        let cwnd = self.cwnd as f64;
        let (start, k) = *self.epoch.get_or_insert_with(|| {
            self.w_est = cwnd;
            let k = if self.w_max > cwnd {
                ((self.w_max - cwnd) / mss / C).cbrt()
            } else {
                0.0
            };
            (now, k)
        });
        let w_max = self.w_max.max(cwnd);
        let t = now.saturating_since(start).as_secs_f64() + srtt.as_secs_f64();
        let w_cubic = C * (t - k).powi(3) * mss + w_max;
        // RFC 9438 §4.3: the Reno-friendly estimate grows α per window of acks.
        let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
        self.w_est += alpha * mss * bytes as f64 / cwnd;
        let target = w_cubic.clamp(cwnd, 1.5 * cwnd);
        let grown = if self.w_est > w_cubic {
            self.w_est
        } else {
            cwnd + (target - cwnd) * bytes as f64 / cwnd
        };
        // Float to bytes: the window stays far below 2^53.
        self.cwnd = (grown as u64).max(self.cwnd);
    }

    /// Packets totalling `bytes` were declared lost; `newest_sent` is when the most recent
    /// of them was sent. One reduction per round trip: losses of packets sent before the last
    /// reduction only leave the flight.
    pub(crate) fn on_loss(&mut self, now: Timestamp, bytes: u64, newest_sent: Timestamp) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        if bytes == 0 || self.in_recovery(newest_sent) {
            return;
        }
        self.reduce(now, BETA);
    }

    /// The round trip shows a standing queue (`queue_delay`): reduce as for a loss, but
    /// gently and at most once per round trip.
    pub(crate) fn on_queue_delay(&mut self, now: Timestamp, srtt: Duration) {
        if self.recovery_start.is_some_and(|r| now < r + srtt) {
            return;
        }
        self.reduce(now, DELAY_BETA);
    }

    fn reduce(&mut self, now: Timestamp, beta: f64) {
        self.events += 1;
        self.undo = Some(Saved {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
        });
        self.recovery_start = Some(now);
        let cwnd = self.cwnd as f64;
        // Fast convergence: a flow that lost below its last maximum yields more.
        self.w_max = if cwnd < self.w_max {
            cwnd * (1.0 + beta) / 2.0
        } else {
            cwnd
        };
        self.cwnd = ((cwnd * beta) as u64).max(self.min_window());
        self.ssthresh = self.cwnd;
        self.epoch = None;
    }

    /// Every packet the last reduction was for turned out to have arrived (their acks came
    /// late; GNS's packet numbers are never reused, so a late ack is unambiguous): restore
    /// the window it cut (RFC 9438 §4.9).
    pub(crate) fn undo_last_reduction(&mut self) {
        if let Some(s) = self.undo.take() {
            self.cwnd = self.cwnd.max(s.cwnd);
            self.ssthresh = s.ssthresh;
            self.w_max = s.w_max;
            self.epoch = None;
        }
    }

    /// The retransmission timer expired with nothing acked: persistent congestion, back to
    /// the minimum window (RFC 9002 §7.6.2).
    pub(crate) fn on_timeout(&mut self, now: Timestamp) {
        if self.recovery_start.is_none_or(|r| r < now) {
            self.events += 1;
        }
        self.undo = Some(Saved {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
        });
        self.ssthresh = ((self.cwnd as f64 * BETA) as u64).max(self.min_window());
        self.w_max = self.cwnd as f64;
        self.cwnd = self.min_window();
        self.epoch = None;
        self.recovery_start = Some(now);
    }

    /// Bytes that left the flight without an ack or loss signal (a record forgotten).
    pub(crate) fn on_discarded(&mut self, bytes: u64) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    /// The smallest window (two packets).
    pub(crate) fn min_window(&self) -> u64 {
        MIN_PACKETS * self.mss
    }

    /// Pacing rate, bytes per second: the window spread over the RTT with headroom;
    /// `None` before any RTT is known.
    pub(crate) fn pacing_rate(&self, srtt: Option<Duration>) -> Option<u64> {
        let rtt = srtt?.max(Duration::from_micros(100)).as_secs_f64();
        let gain = if self.cwnd < self.ssthresh {
            PACING_GAIN_SLOW_START
        } else {
            PACING_GAIN_AVOIDANCE
        };
        Some((self.cwnd as f64 * gain / rtt) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn ms(v: u64) -> Timestamp {
        Timestamp::from_micros(v * 1000)
    }

    fn rtt() -> Duration {
        Duration::from_millis(20)
    }

    /// Fills the window, then acks it all at `at`: one round trip of a window-limited flow.
    fn round(c: &mut Cubic, sent: Timestamp, at: Timestamp) {
        let w = c.window();
        let mut n = 0;
        while c.allows(c.window()) {
            c.on_sent(MSS);
            n += MSS as u64;
        }
        assert!(n >= w);
        c.on_ack(at, n, sent, rtt());
    }

    #[test]
    fn slow_start_doubles_the_window_each_round_trip() {
        let mut c = Cubic::new(MSS);
        assert_eq!(c.window(), 10_000);
        round(&mut c, ms(0), ms(20));
        assert_eq!(c.window(), 20_000);
        round(&mut c, ms(20), ms(40));
        assert_eq!(c.window(), 40_000);
    }

    #[test]
    fn an_app_limited_flow_does_not_grow_its_window() {
        let mut c = Cubic::new(MSS);
        for i in 0..100 {
            c.on_sent(MSS);
            c.on_ack(ms(i + 1), MSS as u64, ms(i), rtt());
        }
        assert_eq!(c.window(), 10_000);
    }

    #[test]
    fn loss_reduces_once_per_round_trip() {
        let mut c = Cubic::new(MSS);
        for i in 0..4 {
            round(&mut c, ms(i * 20), ms(i * 20 + 20));
        }
        let before = c.window();
        for _ in 0..20 {
            c.on_sent(MSS);
        }
        c.on_loss(ms(100), MSS as u64, ms(90));
        assert_eq!(c.window(), (before as f64 * BETA) as u64);
        // Another loss of a packet sent before the reduction: no second cut.
        c.on_loss(ms(101), MSS as u64, ms(95));
        assert_eq!(c.window(), (before as f64 * BETA) as u64);
        assert_eq!(c.congestion_events(), 1);
        assert_eq!(c.ssthresh(), c.window());
        // A loss of a packet sent after it is a new event.
        c.on_loss(ms(130), MSS as u64, ms(110));
        assert_eq!(c.congestion_events(), 2);
    }

    #[test]
    fn avoidance_regrows_toward_the_old_maximum_then_probes_beyond() {
        let mut c = Cubic::new(MSS);
        for i in 0..5 {
            round(&mut c, ms(i * 20), ms(i * 20 + 20));
        }
        let w_max = c.window();
        c.on_sent(MSS);
        c.on_loss(ms(100), MSS as u64, ms(100));
        let low = c.window();
        let mut t = 120;
        let mut reached = None;
        while t < 20_000 {
            round(&mut c, ms(t - 20), ms(t));
            if reached.is_none() && c.window() >= w_max {
                reached = Some(t);
            }
            t += 20;
        }
        let reached = reached.expect("the window regrows to its old maximum");
        assert!(low < w_max);
        assert!(
            reached > 200,
            "concave regrowth takes a while: {reached} ms"
        );
        assert!(
            c.window() > w_max * 2,
            "then it probes beyond: {}",
            c.window()
        );
    }

    #[test]
    fn a_standing_queue_reduces_gently_once_per_round_trip() {
        let mut c = Cubic::new(MSS);
        for i in 0..4 {
            round(&mut c, ms(i * 20), ms(i * 20 + 20));
        }
        let before = c.window();
        c.on_queue_delay(ms(100), rtt());
        assert_eq!(c.window(), (before as f64 * DELAY_BETA) as u64);
        c.on_queue_delay(ms(110), rtt());
        assert_eq!(c.congestion_events(), 1, "within the same round trip");
        c.on_queue_delay(ms(120), rtt());
        assert_eq!(c.congestion_events(), 2);
    }

    #[test]
    fn a_spurious_reduction_is_undone() {
        let mut c = Cubic::new(MSS);
        for i in 0..4 {
            round(&mut c, ms(i * 20), ms(i * 20 + 20));
        }
        let before = (c.window(), c.ssthresh());
        c.on_sent(MSS);
        c.on_loss(ms(100), MSS as u64, ms(100));
        assert!(c.window() < before.0);
        c.undo_last_reduction();
        assert_eq!((c.window(), c.ssthresh()), before);
        // Only once.
        c.on_timeout(ms(200));
        c.undo_last_reduction();
        assert_eq!(c.window(), before.0);
        c.undo_last_reduction();
        assert_eq!(c.window(), before.0);
    }

    #[test]
    fn timeout_falls_back_to_the_minimum_window() {
        let mut c = Cubic::new(MSS);
        round(&mut c, ms(0), ms(20));
        c.on_timeout(ms(1000));
        assert_eq!(c.window(), 2_000);
        assert_eq!(c.ssthresh(), 14_000);
    }

    #[test]
    fn lost_and_discarded_bytes_leave_the_flight() {
        let mut c = Cubic::new(MSS);
        c.on_sent(MSS);
        c.on_sent(MSS);
        c.on_sent(MSS);
        c.on_loss(ms(1), MSS as u64, ms(0));
        c.on_discarded(MSS as u64);
        assert_eq!(c.in_flight(), MSS as u64);
    }

    #[test]
    fn pacing_spreads_the_window_over_the_rtt_with_headroom() {
        let c = Cubic::new(MSS);
        assert_eq!(c.pacing_rate(None), None);
        // 10 000 B × 2 / 20 ms in slow start
        assert_eq!(c.pacing_rate(Some(rtt())), Some(1_000_000));
    }
}
