//! SNP, the message layer of one connection (spec §4): pure and deterministic.
//!
//! [`Snp`] turns application messages into packet plaintexts and packet plaintexts back into
//! messages. It knows nothing of crypto, packet headers, the handshake, keepalives or timeouts:
//! the connection layer wraps it, encrypts what [`Snp::build_packet`] writes, and hands
//! decrypted plaintexts to [`Snp::receive_packet`]. Everything takes `now` as an argument.
//!
//! ```text
//!  send_message ─► send::SendState (per-lane queues, LaneScheduler, retry sets)
//!                        │  build_packet: stop_waiting, ack, retries, new data (packet.rs)
//!                        ▼
//!               SentPackets (in-flight table) ◄── acks / NACKs / RTO ──┐
//!                                                                      │
//!  receive_packet ─► recv::RecvState (RecvPacketTracker, RecvStream, Reassembly)
//!                        │ complete messages
//!                        ▼
//!                   poll_message
//! ```
//!
//! Call order for the connection layer (all calls take the same `now` within one event):
//!
//! ```text
//!  per decrypted data packet:  receive_packet(now, pkt_num, plaintext, ack_request)
//!                              -> Err: close (ProblemDetectedLocally, Misc_InternalError)
//!                              then drain poll_message()
//!  per wakeup / send chance:   if next_timeout(now) <= now { handle_timeout(now) }
//!                              while wants_to_send(now) { build_packet(..) -> header,
//!                                  encrypt with BuiltPacket.packet_number, send }
//!                              keepalive / ack request: build_packet(.., force = true)
//!  then sleep until:           next_timeout(now)
//! ```

mod idle;
mod packet;
mod recovery;
mod recv;
mod schedule;
mod send;
mod stats;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::proto::lanes::{LaneConfig, LaneConfigError, LaneScheduler};
use crate::proto::ping::PingTracker;
use crate::proto::recv_packets::StopWaitingError;
use crate::proto::send_rate::{RateLimits, TokenBucket};
use crate::proto::sent_packets::{FIRST_DATA_PACKET, SentPackets};
use crate::time::Timestamp;
use crate::wire::frame::FrameError;

pub use recovery::RecoveryCounters;
pub use recv::RecvCounts;
pub use stats::{LaneStatus, Rates, SnpCounters, SnpStatus};

/// `SendMessage` flags, with GNS's values (`k_nSteamNetworkingSend_*`, spec §4.16).
pub mod send_flags {
    /// Unreliable, Nagle applies.
    pub const UNRELIABLE: u32 = 0;
    /// Send without waiting for the Nagle timer; flushes every queued message too.
    pub const NO_NAGLE: u32 = 1;
    /// Drop (unreliable) instead of queueing when it cannot go out at once.
    pub const NO_DELAY: u32 = 4;
    /// Reliable, in order per lane.
    pub const RELIABLE: u32 = 8;
    /// Scheduling hint for the runtime; SNP ignores it.
    pub const USE_CURRENT_THREAD: u32 = 16;
    /// Ours, engine-internal: the sender already admitted this message against the send
    /// buffer (the API decides LimitExceeded on the calling thread and has told the caller
    /// the message's number), so the engine must not refuse it for room. Framing bytes may
    /// then take the buffer a little past its size.
    pub const ADMITTED: u32 = 1 << 24;
}

/// Unreliable messages above this are sent reliably instead (15 × 1100, spec §4.16).
pub const MAX_UNRELIABLE_MESSAGE: usize = 16_500;

/// Per-connection SNP settings; `Default` is GNS's defaults (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnpConfig {
    /// `NagleTime`: how long a message without NoNagle may wait for company.
    pub nagle: Duration,
    /// `SendBufferSize`: unsent plus queued-for-retry bytes allowed.
    pub send_buffer_size: usize,
    /// `SendRateMin`, bytes per second.
    pub send_rate_min: u32,
    /// `SendRateMax`, bytes per second.
    pub send_rate_max: u32,
    /// `RecvBufferSize`: bytes held per reliable stream and in the receive queue.
    pub recv_buffer_size: usize,
    /// `RecvBufferMessages`: messages held in the receive queue.
    pub recv_buffer_messages: usize,
    /// `RecvMaxMessageSize`: larger reliable messages kill the connection.
    pub recv_max_message_size: usize,
    /// `RecvMaxSegmentsPerPacket`: segments beyond this leave the packet unacked.
    pub recv_max_segments_per_packet: usize,
    /// `MTU_PacketSize`; informational here (the caller passes `max_plaintext`).
    pub mtu_packet_size: usize,
    /// Not a GNS setting. `true` (default): consecutive new reliable messages of one lane go
    /// out as one reliable segment (up to the largest segment), which GNS receivers accept
    /// since the reliable stream is read as bytes. `false`: one segment per message piece,
    /// GNS's exact framing (spec §4.17).
    pub coalesce_reliable: bool,
    /// Not a GNS setting (off by default). An unreliable message still unsent after this long
    /// is dropped and counted (`SnpCounters::unreliable_expired`): a late game-state update is
    /// worth less than the bandwidth it would take.
    pub unreliable_max_age: Option<Duration>,
}

impl Default for SnpConfig {
    fn default() -> Self {
        SnpConfig {
            nagle: Duration::from_micros(5000),
            send_buffer_size: 524_288,
            send_rate_min: 262_144,
            send_rate_max: 262_144,
            recv_buffer_size: 1_048_576,
            recv_buffer_messages: 1000,
            recv_max_message_size: 524_288,
            recv_max_segments_per_packet: 1300,
            mtu_packet_size: 1300,
            coalesce_reliable: true,
            unreliable_max_age: None,
        }
    }
}

/// Why `send_message` refused a message (maps to GNS's `EResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Message above 512 KiB or lane not configured (`k_EResultInvalidParam`).
    #[error("invalid parameter (message too large or unknown lane)")]
    InvalidParam,
    /// The send buffer is full (`k_EResultLimitExceeded`).
    #[error("send buffer full")]
    LimitExceeded,
    /// NoDelay message that cannot go out right now (`k_EResultIgnored`).
    #[error("no-delay message dropped")]
    Ignored,
}

/// Anything in a received plaintext that per GNS kills the connection
/// (ProblemDetectedLocally, `Misc_InternalError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpError {
    /// A frame could not be decoded.
    #[error("frame decode: {0}")]
    Decode(#[from] FrameError),
    /// stop_waiting broke the §4.8 rules.
    #[error("stop_waiting: {0}")]
    StopWaiting(#[from] StopWaitingError),
    /// A reliable header's message-number delta or resulting number is implausible (§4.6).
    #[error("reliable message header on lane {lane} is insane")]
    ReliableHeaderInsane {
        /// The lane.
        lane: u8,
    },
    /// A reliable message larger than the receive limits (§4.6).
    #[error("reliable message of {size} bytes on lane {lane} exceeds the limit")]
    MessageTooLarge {
        /// The lane.
        lane: u8,
        /// Declared payload size.
        size: u64,
    },
}

/// The ack-request flags of the packet's stats blob (spec §4.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckRequest {
    /// No request.
    #[default]
    None,
    /// ACK_REQUEST_E2E: ack within 50 ms.
    E2e,
    /// ACK_REQUEST_IMMEDIATE (with or without E2E): ack at once.
    Immediate,
}

/// One delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The peer's lane.
    pub lane: u8,
    /// The lane's message number.
    pub msg_num: u64,
    /// Whether it came through the reliable stream.
    pub reliable: bool,
    /// Payload.
    pub data: Vec<u8>,
}

/// What the message layer holds, for the fuzz harness's memory bounds (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnpHeld {
    /// Send side: queued, not yet sent (what `SendBufferSize` limits, with `send_retry`).
    pub send_unsent: u64,
    /// Send side: reliable bytes queued for retransmission.
    pub send_retry: u64,
    /// Send side: reliable bytes sent and not yet acked.
    pub send_in_flight: u64,
    /// Send side: reliable stream bytes kept (from the lowest unacked segment on).
    pub send_retained: u64,
    /// Send side: messages queued.
    pub send_messages: usize,
    /// Receive side.
    pub recv: RecvHeld,
}

/// What the receive side holds (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvHeld {
    /// Receive lanes allocated.
    pub lanes: usize,
    /// Largest reliable stream buffer of any lane, holes included.
    pub stream_max: u64,
    /// Most holes in any lane's reliable stream.
    pub stream_gaps_max: usize,
    /// Most unreliable fragments held by any lane.
    pub reassembly_max: usize,
    /// Bytes of delivered messages waiting for `poll_message`.
    pub queue_bytes: usize,
    /// Messages waiting for `poll_message`.
    pub queue_messages: usize,
    /// Gaps the packet tracker holds.
    pub packet_gaps: usize,
}

/// What `receive_packet` made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecvSummary {
    /// The packet was recorded and will be acked.
    pub acked: bool,
    /// The packet number was already received (or is below stop_waiting): nothing processed.
    pub duplicate: bool,
    /// Messages newly queued for `poll_message`.
    pub new_messages: usize,
    /// The packet carried reliable segments.
    pub reliable_data: bool,
}

/// One packet written by `build_packet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltPacket {
    /// The number to put in the packet header (and to encrypt with).
    pub packet_number: u64,
    /// Carries reliable data: the connection should arm its reply timeout (§4.13).
    pub reliable: bool,
    /// Plaintext bytes appended to `out`.
    pub bytes: usize,
}

/// The SNP state of one connection. See the module docs for the call order.
#[derive(Debug)]
pub struct Snp {
    /// Shared with the other connections that run with the same settings.
    config: std::sync::Arc<SnpConfig>,
    connected: bool,
    bucket: TokenBucket,
    recovery: recovery::Recovery,
    ping: PingTracker,
    sent: SentPackets,
    sched: LaneScheduler,
    send: send::SendState,
    recv: recv::RecvState,
    stats: stats::Stats,
}

impl Snp {
    /// A connection whose first data packet will be number 2 and which has implicitly received
    /// packet 1 (handshake, peer protocol ≥ 10). Starts not connected: messages queue.
    pub fn new(now: Timestamp, config: SnpConfig) -> Self {
        Self::with_shared_config(now, std::sync::Arc::new(config))
    }

    /// [`Snp::new`] with settings other connections share.
    pub fn with_shared_config(now: Timestamp, config: std::sync::Arc<SnpConfig>) -> Self {
        let limits = RateLimits::new(config.send_rate_min, config.send_rate_max);
        Snp {
            connected: false,
            bucket: TokenBucket::new(now, limits, config.send_rate_max),
            recovery: recovery::Recovery::new(limits),
            ping: PingTracker::new(),
            sent: SentPackets::new(FIRST_DATA_PACKET),
            // The default lane starts parked (`unpark_lanes`): nothing allocated until the
            // first message, so a connection that never sends never pays for a lane.
            sched: LaneScheduler::parked(),
            send: send::SendState::new(),
            recv: recv::RecvState::new(now, &config),
            stats: stats::Stats::new(now),
            config,
        }
    }

    /// The configuration in effect.
    pub fn config(&self) -> &SnpConfig {
        &self.config
    }

    /// Applies changed settings to a live connection (the API's connection-scope config):
    /// Nagle, buffer limits and send rates take effect for what is queued from now on.
    pub fn set_config(&mut self, now: Timestamp, config: SnpConfig) {
        if config.send_rate_min != self.config.send_rate_min
            || config.send_rate_max != self.config.send_rate_max
        {
            let limits = RateLimits::new(config.send_rate_min, config.send_rate_max);
            self.recovery.set_limits(now, limits, &mut self.bucket);
        }
        self.recv.set_limits(&config);
        if *self.config != config {
            self.config = std::sync::Arc::new(config);
        }
    }

    /// `ConfigureConnectionLanes` for our send direction: the count can only grow; missing
    /// priorities are 0 and missing weights 1. (Refusing > 1 lane toward peers older than
    /// protocol 11 is the connection's job.)
    pub fn configure_lanes(
        &mut self,
        priorities: &[i32],
        weights: &[u16],
    ) -> Result<(), LaneConfigError> {
        let n = priorities.len().max(weights.len());
        let configs: Vec<LaneConfig> = (0..n)
            .map(|i| LaneConfig {
                priority: priorities.get(i).copied().unwrap_or(0),
                weight: weights.get(i).copied().unwrap_or(1),
            })
            .collect();
        self.unpark_lanes();
        let was_scheduled = self.scheduled();
        self.sched.configure(&configs)?;
        self.send.ensure_lanes(self.sched.lane_count());
        self.schedule_after_configure(was_scheduled);
        Ok(())
    }

    /// Number of send lanes configured.
    pub fn lane_count(&self) -> usize {
        // A parked lane is still the one default lane.
        self.sched.lane_count().max(1)
    }

    /// Parks the default single lane and its schedule when nothing is queued, in flight or
    /// buffered: only its numbering stays ([`Snp::release_idle_memory`]).
    fn park_lanes(&mut self) {
        if self.sched.is_default_and_empty() && self.send.park() {
            self.sched = LaneScheduler::parked();
        }
    }

    /// Brings the default lane back if it is parked (connections start that way).
    fn unpark_lanes(&mut self) {
        if self.send.is_parked() {
            self.send.unpark();
            self.sched = LaneScheduler::new();
        }
    }

    /// Queues a message and returns its lane message number (per-lane, from 1, shared by
    /// reliable and unreliable). Unreliable messages above 16500 bytes go reliably (§4.16).
    // GNS: CSteamNetworkConnectionBase::SNP_SendMessage
    pub fn send_message(
        &mut self,
        now: Timestamp,
        lane: u8,
        flags: u32,
        data: Vec<u8>,
    ) -> Result<u64, SendError> {
        self.unpark_lanes();
        if data.len() > crate::wire::packet::MAX_MESSAGE_SIZE
            || usize::from(lane) >= self.sched.lane_count()
        {
            return Err(SendError::InvalidParam);
        }
        let mut reliable = flags & send_flags::RELIABLE != 0;
        if !reliable && data.len() > MAX_UNRELIABLE_MESSAGE {
            reliable = true;
        }
        let no_delay = flags & send_flags::NO_DELAY != 0;
        if no_delay && !self.connected {
            return Err(SendError::Ignored);
        }
        if no_delay && !reliable && (!self.send.is_empty() || !self.bucket.can_send(now)) {
            // GNS drops a NoDelay unreliable message that would have to wait.
            return Err(SendError::Ignored);
        }
        // Queued bytes count their framing; the new message its payload, so one 512 KiB
        // message fits an empty default buffer.
        // GNS: CSteamNetworkConnectionBase::SNP_SendMessage (send buffer check). GNS counts
        // unsent and retry bytes only; we also count reliable bytes sent and not yet acked,
        // so a peer that stops acking (a stalled reader) bounds our memory at the buffer
        // instead of letting a fixed-rate sender keep it all in flight.
        if flags & send_flags::ADMITTED == 0
            && self.send.held_bytes() + data.len() as u64 > self.config.send_buffer_size as u64
        {
            return Err(SendError::LimitExceeded);
        }
        let no_nagle = flags & (send_flags::NO_NAGLE | send_flags::NO_DELAY) != 0;
        // Entries join only where the scheduler keeps none (one lane); with several lanes
        // each message stays its own entry, as GNS schedules them.
        let join = self.config.coalesce_reliable && !self.scheduled();
        let q = self
            .send
            .enqueue(now, self.config.nagle, lane, reliable, no_nagle, data, join);
        if !q.joined {
            self.schedule_entry(lane, q.size);
        }
        Ok(q.msg_num)
    }

    /// Payload bytes `send_message` would accept now before returning `LimitExceeded`.
    pub fn send_buffer_available(&self) -> usize {
        let used = usize::try_from(self.send.held_bytes()).unwrap_or(usize::MAX);
        self.config.send_buffer_size.saturating_sub(used)
    }

    /// `FlushMessagesOnConnection`: every queued message may go without waiting for Nagle.
    pub fn flush(&mut self, _now: Timestamp) {
        self.send.flush_nagle();
    }

    /// Enters or leaves the connected state. While not connected nothing is sent (except a
    /// forced packet) and the token bucket is kept full (§4.14).
    pub fn set_connected(&mut self, now: Timestamp, connected: bool) {
        self.connected = connected;
        if !connected {
            self.bucket.fill(now);
        }
    }

    /// Feeds an RTT sample taken outside SNP (handshake).
    pub fn record_ping_sample(&mut self, now: Timestamp, rtt: Duration) {
        self.ping.record_sample(now, rtt);
        self.recovery.on_rtt_sample(rtt);
    }

    /// The ping tracker (smoothed RTT).
    pub fn ping(&self) -> &PingTracker {
        &self.ping
    }

    /// Current retransmission timeout (smoothed RTT + 4 × variance + GNS's 60 ms ack slack,
    /// doubled per expiry without progress).
    pub fn rto(&self) -> Duration {
        self.recovery.rtt.rto()
    }

    /// The loss-recovery estimator (smoothed RTT, variance, backoff): unlike [`Snp::ping`],
    /// which reports GNS's low-biased ping, it follows queueing delay.
    pub fn rtt(&self) -> &crate::proto::rtt::RttEstimator {
        &self.recovery.rtt
    }

    /// The congestion window in force, bytes (see `proto::congestion`).
    pub fn congestion_window(&self) -> u64 {
        self.recovery.window()
    }

    /// Bytes of data-carrying packets in flight.
    pub fn bytes_in_flight(&self) -> u64 {
        self.recovery.in_flight()
    }

    /// Whether the send rate is fixed (`SendRateMin == SendRateMax`, GNS's behaviour) rather
    /// than chosen by the congestion controller.
    pub fn fixed_rate(&self) -> bool {
        self.recovery.fixed_rate()
    }

    /// Receive counters: data packets processed, left unacked (no room to take them: the
    /// sender will resend), numbers skipped and arrivals out of order.
    pub fn recv_counts(&self) -> RecvCounts {
        self.recv.counts
    }

    /// Watches sent packet `pkt` for [`Snp::take_watch_outcome`]: the connection learns
    /// whether the packet carrying its stats report arrived.
    pub(crate) fn watch_packet(&mut self, pkt: u64) {
        self.sent.watch(pkt);
    }

    /// The watched packet's fate once known: `Some(true)` acked, `Some(false)` lost.
    pub(crate) fn take_watch_outcome(&mut self) -> Option<bool> {
        self.sent.take_watch_outcome()
    }

    /// Loss-recovery counters.
    pub fn recovery_counters(&self) -> &RecoveryCounters {
        &self.recovery.counters
    }

    /// Whether the next data packet should carry ACK_REQUEST_IMMEDIATE (the connection layer
    /// writes the stats blob; call [`Snp::on_ack_requested`] once it went out).
    pub fn ack_request_due(&self) -> bool {
        self.connected && self.recovery.ack_request_due() && self.send_ready_at_now()
    }

    /// A packet asking for an ack went out.
    pub fn on_ack_requested(&mut self) {
        self.recovery.on_ack_requested();
    }

    fn send_ready_at_now(&self) -> bool {
        self.recovery.allows_data() && !self.send.is_empty()
    }

    /// Whether reliable data is unsent, queued for retry or sent but unacked (Linger waits
    /// for this to turn false).
    pub fn reliable_pending(&self) -> bool {
        self.send.reliable_pending()
    }

    /// Processes one decrypted packet plaintext. `Err` kills the connection.
    pub fn receive_packet(
        &mut self,
        now: Timestamp,
        packet_number: u64,
        plaintext: &[u8],
        ack_request: AckRequest,
    ) -> Result<RecvSummary, SnpError> {
        self.stats.on_recv(now, plaintext.len());
        let mut ctx = recv::SendSide {
            sent: &mut self.sent,
            send: &mut self.send,
            ping: &mut self.ping,
            recovery: &mut self.recovery,
            bucket: &mut self.bucket,
        };
        let summary =
            self.recv
                .receive_packet(now, packet_number, plaintext, ack_request, &mut ctx)?;
        if summary.duplicate {
            self.stats.counters.duplicates += 1;
        }
        Ok(summary)
    }

    /// Whether a delivered message is waiting (so a runtime polls only connections that have
    /// one).
    pub fn has_message(&self) -> bool {
        self.recv.has_message()
    }

    /// Consumes lane `lane`'s next message number without sending (the API hands numbers out
    /// before the shard runs the send; a send the shard then refuses must not shift the
    /// numbers of later messages).
    pub fn skip_message_number(&mut self, lane: u8) {
        self.unpark_lanes();
        self.send.skip_message_number(lane);
    }

    /// The next delivered message: reliable ones in order per lane.
    pub fn poll_message(&mut self) -> Option<ReceivedMessage> {
        let m = self.recv.poll_message();
        if m.is_some() {
            self.stats.counters.messages_received += 1;
        }
        m
    }

    /// Whether a packet should be built now: connected, and acks or NACKs are due, or data is
    /// ready (retries, Nagle expired, a full packet, NoNagle) and the window and the rate let
    /// it go.
    ///
    /// Acks are not held back by the rate or the window (GNS paces them with the data): a
    /// GNS sender resends everything unacked after 3 × ping + 60 ms, so a paced ack turns a
    /// busy receiver into the cause of a retransmission storm. Ack-only packets are charged
    /// to the bucket all the same.
    // GNS: CSteamNetworkConnectionBase::SNP_GetNextThinkTime (the "ready now" part)
    pub fn wants_to_send(&mut self, now: Timestamp) -> bool {
        self.connected && (self.ack_due(now) || self.data_may_go(now))
    }

    /// An ack or a NACK is owed now.
    fn ack_due(&self, now: Timestamp) -> bool {
        self.ack_ready_at().is_some_and(|t| t <= now)
    }

    /// When an owed ack or NACK must go out.
    fn ack_ready_at(&self) -> Option<Timestamp> {
        [self.recv.ack_deadline(), self.recv.next_nack_flush()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Data is ready now and both the window and the rate let it go.
    fn data_may_go(&mut self, now: Timestamp) -> bool {
        self.data_ready_at(now).is_some_and(|t| t <= now) && self.bucket.can_send(now)
    }

    /// When queued data is ready to go (ignoring the rate); `None` while the congestion
    /// window is full (an ack reopens it).
    fn data_ready_at(&mut self, now: Timestamp) -> Option<Timestamp> {
        let data = self.send.data_ready_at(now)?;
        if self.recovery.allows_data() {
            Some(data)
        } else {
            self.recovery.on_blocked();
            None
        }
    }

    /// When `handle_timeout` or `build_packet` next needs to run: the loss timer or RTO, an
    /// owed ack, and ready data delayed by the token bucket.
    pub fn next_timeout(&mut self, now: Timestamp) -> Option<Timestamp> {
        let rto = self.sent.next_deadline(self.recovery.rtt.rto());
        if !self.connected {
            return rto;
        }
        let ack = self.ack_ready_at();
        let data = self
            .data_ready_at(now)
            .map(|t| t.max(now + self.bucket.time_until_send(now)));
        [rto, ack, data].into_iter().flatten().min()
    }

    /// Loss timer and retransmission timeout (see `SentPackets::on_timeout`); old lost
    /// records are forgotten.
    // GNS: CSteamNetworkConnectionBase::SNP_SenderCheckInFlightPackets
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let out = self.sent.on_timeout(
            now,
            self.recovery.rtt.rto(),
            self.recovery.rtt.loss_delay(),
            self.ping.last_sample_at(),
        );
        self.stats.counters.packets_timed_out += u64::from(out.rto_fired);
        self.send.on_lost(&out.lost.segments);
        self.recovery.on_timeout(now, &out, &mut self.bucket);
    }

    /// Charges the token bucket with a packet's UDP payload size. `build_packet` already
    /// charges `bytes + udp_overhead`; call this only for packets sent outside SNP.
    pub fn on_sent_outside(&mut self, now: Timestamp, udp_bytes: usize) {
        self.bucket.on_sent(now, udp_bytes);
    }

    /// Reports status for `GetConnectionRealTimeStatus` (§5.5).
    pub fn status(&mut self, now: Timestamp) -> SnpStatus {
        let rate = self.bucket.rate();
        let debt = self.bucket.debt_bytes(now);
        stats::status(self, now, rate, debt)
    }

    /// Packets and bytes per second each way (the last complete second), without building
    /// a whole [`Snp::status`].
    pub(crate) fn rates(&mut self, now: Timestamp) -> Rates {
        self.stats.rates(now)
    }

    /// What this connection's message layer holds (feature `fuzzing`).
    #[cfg(feature = "fuzzing")]
    pub fn held(&self) -> SnpHeld {
        let (send_unsent, send_retry, send_in_flight, send_retained, send_messages) =
            self.send.held();
        SnpHeld {
            send_unsent,
            send_retry,
            send_in_flight,
            send_retained,
            send_messages,
            recv: self.recv.held(),
        }
    }

    /// Lifetime counters.
    pub fn counters(&self) -> &SnpCounters {
        &self.stats.counters
    }
}
/// The message layer's share of [`crate::proto::connection`]'s inline budget (issue 16).
#[cfg(test)]
pub(crate) fn assert_size_budget() {
    assert!(
        size_of::<Snp>() <= 720,
        "Snp grew to {} B",
        size_of::<Snp>()
    );
    // Parked while idle: one pointer.
    assert_eq!(size_of::<LaneScheduler>(), size_of::<usize>());
}
