//! The connection's clocks (spec §2.2, §2.10, §4.13): handshake retries and timeout, reply
//! timeouts, keepalives, urgent pings, the connection timeout and FinWait.
//!
//! ```text
//!  Connecting   retry ChallengeRequest every 500 ms; give up after TimeoutInitial
//!  Connected    packet expecting a reply sent ─► reply deadline = now + min(2·ping + 250 ms, 1.25 s)
//!               any packet received ─► deadline cleared, streak reset
//!               deadline passes ─► streak += 1, urgent pings every 200 ms
//!               streak ≥ 4 and now ≥ max(streak start, last recv) + TimeoutConnected ─► dead
//!               nothing received for 10 s and no deadline ─► keepalive (ACK_REQUEST_E2E)
//!               no packet sealed or opened for 0.5 s ─► packet keys parked (keys.rs), empty
//!               queues and tables freed (release_idle_memory)
//!  FinWait      5 s, then Dead
//! ```

use std::time::Duration;

use super::{Connection, Role, State};
use crate::proto::end_reason;
use crate::time::Timestamp;

/// ChallengeRequest retry interval (GNS `k_usecConnectRetryInterval`).
pub(super) const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// How long a closed connection answers stray packets (GNS `k_usecFinWaitTimeout`).
pub(super) const FIN_WAIT: Duration = Duration::from_secs(5);
/// Idle time before a keepalive (GNS `k_usecKeepAliveIntervalActive`).
pub(super) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Interval of urgent pings while replies are overdue.
pub(super) const URGENT_PING_INTERVAL: Duration = Duration::from_millis(200);
/// Reply timeouts in a row before the connection may be declared dead.
pub(super) const TIMEOUTS_BEFORE_DEAD: u32 = 4;
/// Cap of the reply timeout.
pub(super) const MAX_REPLY_TIMEOUT: Duration = Duration::from_millis(1250);
/// Slack added to twice the ping for the reply timeout.
pub(super) const REPLY_TIMEOUT_SLACK: Duration = Duration::from_millis(250);
/// Extra allowance when the peer may delay its reply (keepalive, tracer).
pub(super) const DELAYED_REPLY_SLACK: Duration = Duration::from_millis(200);
/// A tracer ping (ACK_REQUEST_E2E on a data packet) after this long without a ping sample.
pub(super) const TRACER_INTERVAL: Duration = Duration::from_secs(7);

/// Timer state of one connection.
#[derive(Debug)]
pub(super) struct Timers {
    pub created: Timestamp,
    /// The one deadline of a passing state: while Connecting, the next ChallengeRequest
    /// retry; in FinWait, when it ends (one field for both: the states never overlap).
    pub state_deadline: Option<Timestamp>,
    pub last_recv: Timestamp,
    pub reply_deadline: Option<Timestamp>,
    pub timeouts_in_a_row: u32,
    pub streak_started: Option<Timestamp>,
    pub next_urgent_ping: Option<Timestamp>,
    pub last_ping_request: Timestamp,
    /// A packet with ACK_REQUEST flags must go out: (immediate?).
    pub force_ack_request: Option<bool>,
}

impl Timers {
    pub(super) fn new(now: Timestamp) -> Self {
        Timers {
            created: now,
            state_deadline: None,
            last_recv: now,
            reply_deadline: None,
            timeouts_in_a_row: 0,
            streak_started: None,
            next_urgent_ping: None,
            last_ping_request: now,
            force_ack_request: None,
        }
    }

    pub(super) fn finwait_started(&mut self, now: Timestamp) {
        self.state_deadline = Some(now + FIN_WAIT);
    }

    /// Something valid arrived: the peer is alive.
    pub(super) fn received(&mut self, now: Timestamp) {
        self.last_recv = now;
        self.reply_deadline = None;
        self.timeouts_in_a_row = 0;
        self.streak_started = None;
        self.next_urgent_ping = None;
    }

    /// A packet that expects a reply went out.
    pub(super) fn expect_reply(
        &mut self,
        now: Timestamp,
        ping: Option<Duration>,
        delayed_ok: bool,
    ) {
        if self.reply_deadline.is_some() {
            return;
        }
        let worst = ping.unwrap_or(Duration::from_millis(500));
        let mut t = (worst * 2 + REPLY_TIMEOUT_SLACK).min(MAX_REPLY_TIMEOUT);
        if delayed_ok {
            t += DELAYED_REPLY_SLACK;
        }
        self.reply_deadline = Some(now + t);
    }
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Connection {
    /// When [`Connection::handle_timeout`] must run next.
    pub fn poll_timeout(&mut self, now: Timestamp) -> Option<Timestamp> {
        let snp = match self.state {
            State::Connected | State::Linger => self.snp_timeout(now),
            _ => None,
        };
        let t = &self.timers;
        match self.state {
            State::Connecting => {
                let next = Some(t.created + self.config.timeout_initial);
                min_opt(next, t.state_deadline)
            }
            State::FindingRoute => {
                let next = Some(t.created + self.config.timeout_initial);
                min_opt(next, t.next_urgent_ping.filter(|_| self.has_route()))
            }
            State::Connected | State::Linger => {
                let mut next = snp;
                next = min_opt(next, self.keys.as_ref().and_then(|k| k.park_at()));
                if self.keys.as_ref().is_some_and(|k| k.is_parked()) {
                    next = min_opt(next, self.snp.idle_release_at());
                }
                next = min_opt(next, t.reply_deadline);
                next = min_opt(next, t.next_urgent_ping);
                if t.reply_deadline.is_none() && t.timeouts_in_a_row == 0 {
                    next = min_opt(next, Some(t.last_recv + KEEPALIVE_INTERVAL));
                }
                if t.timeouts_in_a_row > 0 {
                    let base = t.streak_started.unwrap_or(t.last_recv).max(t.last_recv);
                    next = min_opt(next, Some(base + self.config.timeout_connected));
                }
                min_opt(next, self.quality_due_at())
            }
            State::FinWait => t.state_deadline,
            State::ClosedByPeer | State::ProblemDetectedLocally | State::Dead => None,
        }
    }

    fn snp_timeout(&mut self, now: Timestamp) -> Option<Timestamp> {
        if self.keys.is_some() {
            self.snp.next_timeout(now)
        } else {
            None
        }
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self.state {
            State::Connecting => self.connecting_timeout(now),
            State::FindingRoute => self.finding_route_timeout(now),
            State::Connected | State::Linger => self.connected_timeout(now),
            State::FinWait if self.timers.state_deadline.is_some_and(|t| now >= t) => {
                self.set_state(now, State::Dead);
            }
            _ => {}
        }
    }

    fn connecting_timeout(&mut self, now: Timestamp) {
        if now >= self.timers.created + self.config.timeout_initial {
            let debug = match self.role {
                Role::Client(_) => "Timed out attempting to connect",
                _ => "App didn't accept or close incoming connection in time.",
            };
            self.problem(now, end_reason::MISC_TIMEOUT, debug);
            return;
        }
        if !self.p2p
            && matches!(self.role, Role::Client(_))
            && self.timers.state_deadline.is_some_and(|t| now >= t)
        {
            self.send_challenge_request(now);
        }
    }

    fn connected_timeout(&mut self, now: Timestamp) {
        self.snp.handle_timeout(now);
        self.quality_fate(now);
        self.quality_tick(now);
        // Just parked, or idle and woken (by `idle_release_at` or a keepalive): free what
        // drained. A few emptiness checks, and busy connections never get here.
        if let Some(k) = &mut self.keys {
            k.park_if_idle(now);
        }
        if self.keys.as_ref().is_some_and(|k| k.is_parked()) {
            self.release_idle_memory(now);
        }
        let t = &mut self.timers;
        if t.reply_deadline.is_some_and(|d| now >= d) {
            t.reply_deadline = None;
            t.timeouts_in_a_row += 1;
            t.streak_started.get_or_insert(now);
            t.next_urgent_ping = Some(now);
        }
        if t.timeouts_in_a_row >= TIMEOUTS_BEFORE_DEAD {
            let base = t.streak_started.unwrap_or(t.last_recv).max(t.last_recv);
            if now >= base + self.config.timeout_connected {
                self.problem(now, end_reason::MISC_TIMEOUT, "Connection dropped");
                return;
            }
        }
        let t = &mut self.timers;
        if t.timeouts_in_a_row > 0 && t.next_urgent_ping.is_some_and(|p| now >= p) {
            t.force_ack_request = Some(true);
            t.next_urgent_ping = Some(now + URGENT_PING_INTERVAL);
        } else if t.reply_deadline.is_none()
            && t.timeouts_in_a_row == 0
            && now >= t.last_recv + KEEPALIVE_INTERVAL
        {
            t.force_ack_request.get_or_insert(false);
        }
        self.finish_linger(now);
    }

    /// A lingering connection whose reliable data is all acked says ConnectionClosed and
    /// moves to FinWait. Runs when an ack arrives as well as on timers, so the close follows
    /// the last ack at once (not at the next keepalive, 10 s later).
    pub(super) fn finish_linger(&mut self, now: Timestamp) {
        if self.state == State::Linger && !self.snp.reliable_pending() {
            self.queue_connection_closed();
            self.set_state(now, State::FinWait);
        }
    }
}
