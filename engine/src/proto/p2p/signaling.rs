//! One P2P connection's signaling state (spec §3.3-3.5, §3.7): which signals to send, when,
//! and what a received signal means for the connection.
//!
//! ```text
//!  initiator                                         acceptor
//!  set_connect_request ── connect_request + ICE ──►  (route: NewRequest; app decides)
//!     (every 500 ms until connect_ok)                 queue_connect_ok (after accept)
//!  handle_signal -> connect_ok ◄─ connect_ok + ack + ICE ──
//!  connected()                  ── ack ──────────────►
//!  ICE messages both ways on the reliable stream; any signal carries acks
//! ```
//!
//! Poll order: feed every received signal to [`Signaling::handle_signal`], then call
//! [`Signaling::poll_signal`] until it returns `None`, and wake again at
//! [`Signaling::poll_timeout`]. Signals are spaced [`MIN_SEND_INTERVAL`] apart, except the
//! initiator's connect retries and the replies to signals for a closed connection, which GNS
//! sends directly.
//!
//! GNS: `steamnetworkingsockets_p2p.cpp` (`ThinkConnection`, `ThinkConnection_ClientConnecting`,
//! `ScheduleSendSignal`, `SetRendezvousCommonFieldsAndSendSignal`, `ProcessSignal`,
//! `SendConnectionClosedSignal`, `SendNoConnectionSignal`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::proto::end_reason;
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::rendezvous::{
    ApplicationMessage, IceRendezvous, P2pConnectOk, P2pConnectRequest, P2pConnectionClosed,
    P2pRendezvous,
};

use super::reliable::{ReliableReceiver, ReliableSender};
use super::{P2P_NO_CONNECTION, SignalError};

/// `k_usecP2PSignalMinSendInterval`: the least spacing between two signals of a connection.
pub const MIN_SEND_INTERVAL: Duration = Duration::from_millis(100);
/// `ScheduleSendSignal`'s delay: a send reason (ConnectOK, AckMessages) is due this soon.
pub const SCHEDULE_DELAY: Duration = Duration::from_millis(10);
/// `k_usecP2PSignalReliableRTO`: retransmit timeout of each reliable message.
pub const RELIABLE_RTO: Duration = Duration::from_secs(1);
/// `k_usecConnectRetryInterval`: the initiator re-sends its `connect_request` this often.
pub const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Who a connection is, for its signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalingConfig {
    /// Our connection id (`from_connection_id`).
    pub local_id: u32,
    /// Our identity string (`from_identity`).
    pub local_identity: String,
    /// The peer's identity string, if known (`to_identity`). When `None` or localhost, the
    /// initiator adopts the `from_identity` of the first signal it receives, as GNS does.
    pub remote_identity: Option<String>,
    /// Whether we sent the `connect_request` (GNS's client) rather than accepted it.
    pub initiator: bool,
}

/// What a received signal means for the connection, in the order to act on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalInput {
    /// ICE messages not delivered before, in order. The acceptor buffers them until its ICE
    /// session exists (GNS's `m_vecPendingICEMessages`).
    pub ice: Vec<IceRendezvous>,
    /// The acceptor's answer (initiator while connecting): finish the crypto handshake, then
    /// call [`Signaling::connected`].
    pub connect_ok: Option<P2pConnectOk>,
    /// A `connect_request` after we accepted: our `connect_ok` was lost and is queued again.
    pub redundant_connect_request: bool,
    /// The peer closed: the end reason and debug text to close with (ClosedByPeer). A
    /// NoConnection (9999) becomes 5010 "Received unexpected P2P 'no connection' signal".
    pub closed: Option<(u32, String)>,
    /// The signal lacked `ice_enabled`: tear ICE down for good (GNS: `ICEFailed(4999, "Peer
    /// sent signal without ice_enabled set")`). Our later signals stop claiming ICE.
    pub ice_disabled: bool,
    /// Application messages carried in the signal, for lane 0.
    pub app_messages: Vec<ApplicationMessage>,
}

/// Whether the connection may still signal, and how to answer when it may not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Open,
    /// We closed (FinWait / ProblemDetectedLocally): answer signals with `connection_closed`.
    ClosedLocally {
        reason: u32,
        debug: String,
    },
    /// The peer closed: answer signals with NoConnection.
    ClosedByPeer,
}

/// One P2P connection's signaling: see the module documentation.
#[derive(Debug, Clone)]
pub struct Signaling {
    local_id: u32,
    local_identity: String,
    remote_identity: Option<String>,
    /// Adopt the first signal's `from_identity` (remote unknown, localhost or a FakeIP).
    adopt_identity: bool,
    remote_id: Option<u32>,
    initiator: bool,
    /// The initiator's request, while connecting.
    connect_request: Option<P2pConnectRequest>,
    last_connect_request: Option<Timestamp>,
    /// The acceptor's answer, once accepted.
    connect_ok: Option<P2pConnectOk>,
    connect_ok_pending: bool,
    ice_enabled: bool,
    tx: ReliableSender,
    rx: ReliableReceiver,
    /// A send reason is pending: send by then (subject to the spacing).
    deadline: Option<Timestamp>,
    last_sent: Option<Timestamp>,
    phase: Phase,
    /// A reply to send at once (to a signal for a closed connection).
    reply: Option<P2pRendezvous>,
}

impl Signaling {
    /// A connection's signaling. It sends nothing until [`Signaling::set_connect_request`]
    /// (initiator) or [`Signaling::queue_connect_ok`] (acceptor).
    pub fn new(_now: Timestamp, cfg: SignalingConfig) -> Self {
        let adopt_identity = cfg.remote_identity.as_deref().is_none_or(|s| {
            Identity::parse(s).is_ok_and(|id| {
                is_localhost(&id) || crate::wire::fakeip::identity_fake_ip(&id).is_some()
            })
        });
        Signaling {
            local_id: cfg.local_id,
            local_identity: cfg.local_identity,
            remote_identity: cfg.remote_identity,
            adopt_identity,
            remote_id: None,
            initiator: cfg.initiator,
            connect_request: None,
            last_connect_request: None,
            connect_ok: None,
            connect_ok_pending: false,
            ice_enabled: true,
            tx: ReliableSender::default(),
            rx: ReliableReceiver::default(),
            deadline: None,
            last_sent: None,
            phase: Phase::Open,
            reply: None,
        }
    }

    /// Initiator: the request every signal carries until [`Signaling::connected`]; the first
    /// one goes out at once, then one every [`CONNECT_RETRY_INTERVAL`].
    pub fn set_connect_request(&mut self, _now: Timestamp, req: P2pConnectRequest) {
        self.connect_request = Some(req);
    }

    /// Acceptor, after the application accepted: send `connect_ok` soon (and again whenever a
    /// redundant `connect_request` shows it was lost).
    pub fn queue_connect_ok(&mut self, now: Timestamp, ok: P2pConnectOk) {
        self.connect_ok = Some(ok);
        self.connect_ok_pending = true;
        self.schedule(now);
    }

    /// Queues an ICE message on the reliable stream; it goes out with the next signal.
    pub fn queue_ice(&mut self, now: Timestamp, msg: IceRendezvous) {
        self.tx.queue(msg);
        self.schedule(now);
    }

    /// The peer's connection id and identity (acceptor: from the `connect_request` signal).
    pub fn set_remote(&mut self, remote_id: u32, remote_identity: String) {
        self.remote_id = Some(remote_id);
        self.remote_identity = Some(remote_identity);
        self.adopt_identity = false;
    }

    /// The handshake finished (initiator: `connect_ok` processed): stop sending the request.
    pub fn connected(&mut self, _now: Timestamp) {
        self.connect_request = None;
        self.adopt_identity = false;
    }

    /// Our ICE transport is gone: later signals omit `ice_enabled`.
    pub fn disable_ice(&mut self) {
        self.ice_enabled = false;
    }

    /// Our connection id.
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// The peer's connection id, once known.
    pub fn remote_id(&self) -> Option<u32> {
        self.remote_id
    }

    /// The peer's identity string, once known.
    pub fn remote_identity(&self) -> Option<&str> {
        self.remote_identity.as_deref()
    }

    /// Whether the initiator is still sending its `connect_request`.
    pub fn is_connecting(&self) -> bool {
        self.connect_request.is_some()
    }

    /// Whether either side closed the connection.
    pub fn is_closed(&self) -> bool {
        self.phase != Phase::Open
    }

    /// Reliable messages the peer has not acknowledged yet.
    pub fn unacked(&self) -> usize {
        self.tx.unacked()
    }

    /// Takes a signal routed to this connection. Checks the sender (spec §3.4 step 2) before
    /// changing anything: an `Err` means the signal was bad and had no effect.
    pub fn handle_signal(
        &mut self,
        now: Timestamp,
        msg: &P2pRendezvous,
    ) -> Result<SignalInput, SignalError> {
        self.check_sender(msg)?;
        let mut input = SignalInput::default();
        if msg.ice_enabled != Some(true) {
            input.ice_disabled = true;
            self.ice_enabled = false;
        }
        if let Some(closed) = &msg.connection_closed {
            self.on_connection_closed(closed, &mut input);
            return Ok(input);
        }
        match &self.phase {
            Phase::Open => {}
            Phase::ClosedLocally { reason, debug } => {
                self.reply = Some(self.closed_signal(*reason, debug));
                return Ok(input);
            }
            Phase::ClosedByPeer => {
                self.reply = Some(self.no_connection_signal());
                return Ok(input);
            }
        }
        if let Some(ack) = msg.ack_reliable_msg.filter(|&a| a > 0) {
            self.tx.on_ack(ack);
        }
        if let Some(first) = msg.first_reliable_msg {
            // "AckMessages": always answer a batch, even a duplicate or one past a gap.
            self.schedule(now);
            input.ice = self.rx.receive(first, &msg.reliable_messages);
        }
        if self.initiator {
            if self.connect_request.is_some() {
                input.connect_ok.clone_from(&msg.connect_ok);
            }
        } else if msg.connect_request.is_some() && self.connect_ok.is_some() {
            self.connect_ok_pending = true;
            self.schedule(now);
            input.redundant_connect_request = true;
        }
        input.app_messages.clone_from(&msg.application_messages);
        Ok(input)
    }

    /// The next signal to send at `now`, if one is due.
    pub fn poll_signal(&mut self, now: Timestamp) -> Option<P2pRendezvous> {
        if let Some(reply) = self.reply.take() {
            self.last_sent = Some(now);
            return Some(reply);
        }
        if !self.may_send() {
            return None;
        }
        let retry_due = self.connect_request.is_some()
            && self
                .last_connect_request
                .is_none_or(|t| now >= t + CONNECT_RETRY_INTERVAL);
        let wanted = self.deadline.is_some_and(|d| d <= now) || self.tx.any_due(now);
        let spaced = self.last_sent.is_none_or(|t| now >= t + MIN_SEND_INTERVAL);
        (retry_due || (wanted && spaced)).then(|| self.build(now))
    }

    /// When [`Signaling::poll_signal`] may next return a signal; a time not after the
    /// current one means "now". `None`: nothing to send until new input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.reply.is_some() {
            return Some(Timestamp::ZERO);
        }
        if !self.may_send() {
            return None;
        }
        let retry = self.connect_request.as_ref().map(|_| {
            self.last_connect_request
                .map_or(Timestamp::ZERO, |t| t + CONNECT_RETRY_INTERVAL)
        });
        let spacing = self
            .last_sent
            .map_or(Timestamp::ZERO, |t| t + MIN_SEND_INTERVAL);
        let wanted = [self.deadline, self.tx.next_due()]
            .into_iter()
            .flatten()
            .min()
            .map(|w| w.max(spacing));
        [retry, wanted].into_iter().flatten().min()
    }

    /// We closed the connection without telling the peer (an application close: GNS sends no
    /// proactive signal). Later signals from the peer are answered with `connection_closed`.
    pub fn close(&mut self, reason: u32, debug: &str) {
        self.tx.reset();
        self.connect_request = None;
        self.connect_ok_pending = false;
        self.deadline = None;
        self.phase = Phase::ClosedLocally {
            reason,
            debug: debug.to_owned(),
        };
    }

    /// We closed because the connection failed out of Connecting/FindingRoute: the
    /// `connection_closed` signal to send now. Drops our unacked messages, as GNS does.
    pub fn close_signal(&mut self, reason: u32, debug: &str) -> P2pRendezvous {
        self.close(reason, debug);
        self.closed_signal(reason, debug)
    }

    /// A NoConnection signal: `connection_closed { reason_code: 9999 }`, "do not reply".
    pub fn no_connection_signal(&self) -> P2pRendezvous {
        let mut signal = self.common_fields();
        signal.connection_closed = Some(P2pConnectionClosed {
            debug: None,
            reason_code: Some(P2P_NO_CONNECTION),
        });
        signal
    }

    fn closed_signal(&self, reason: u32, debug: &str) -> P2pRendezvous {
        let mut signal = self.common_fields();
        signal.connection_closed = Some(P2pConnectionClosed {
            debug: Some(debug.to_owned()),
            reason_code: Some(reason),
        });
        signal
    }

    fn on_connection_closed(&mut self, closed: &P2pConnectionClosed, input: &mut SignalInput) {
        let code = closed.reason_code.unwrap_or(0);
        if code != P2P_NO_CONNECTION {
            self.reply = Some(self.no_connection_signal());
        }
        self.tx.reset();
        self.connect_request = None;
        self.connect_ok_pending = false;
        self.deadline = None;
        if self.phase == Phase::Open {
            self.phase = Phase::ClosedByPeer;
            input.closed = Some(if code == P2P_NO_CONNECTION {
                (
                    end_reason::MISC_PEER_SENT_NO_CONNECTION,
                    "Received unexpected P2P 'no connection' signal".to_owned(),
                )
            } else {
                (code, closed.debug.clone().unwrap_or_default())
            });
        }
    }

    /// Spec §3.4 step 2: the signal must come from our peer's identity and connection.
    /// Learns the peer's identity (when adopting) and connection id only if all checks pass.
    fn check_sender(&mut self, msg: &P2pRendezvous) -> Result<(), SignalError> {
        let from = msg
            .from_identity
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(SignalError::MissingFromIdentity)?;
        if !self.adopt_identity {
            let known = self.remote_identity.as_deref().unwrap_or_default();
            if !same_identity(known, from) {
                return Err(SignalError::WrongIdentity);
            }
        }
        if let Some(to) = msg.to_connection_id {
            if to != self.local_id {
                return Err(SignalError::WrongConnection(to));
            }
        }
        match (msg.from_connection_id, self.remote_id) {
            (Some(0), _) => return Err(SignalError::ZeroConnectionId),
            (Some(got), Some(known)) if got != known => {
                return Err(SignalError::ConnectionIdChanged { known, got });
            }
            (None, _) if msg.to_connection_id.is_none() => {
                return Err(SignalError::MissingConnectionId);
            }
            (got, _) => self.remote_id = self.remote_id.or(got),
        }
        if self.adopt_identity {
            self.remote_identity = Some(from.to_owned());
            self.adopt_identity = false;
        }
        Ok(())
    }

    /// Whether we may send ordinary signals yet: the initiator once it has a request (or is
    /// connected), the acceptor once it accepted.
    fn may_send(&self) -> bool {
        self.phase == Phase::Open
            && if self.initiator {
                self.connect_request.is_some() || self.last_connect_request.is_some()
            } else {
                self.connect_ok.is_some()
            }
    }

    /// GNS's `ScheduleSendSignal`: a reason to send within [`SCHEDULE_DELAY`].
    fn schedule(&mut self, now: Timestamp) {
        let at = now + SCHEDULE_DELAY;
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// Fields every signal carries (GNS's `SetRendezvousCommonFieldsAndSendSignal`).
    fn common_fields(&self) -> P2pRendezvous {
        P2pRendezvous {
            to_connection_id: self.remote_id,
            ice_enabled: self.ice_enabled.then_some(true),
            from_identity: Some(self.local_identity.clone()),
            from_connection_id: Some(self.local_id),
            to_identity: self.remote_identity.clone(),
            ..P2pRendezvous::default()
        }
    }

    /// Builds the next ordinary signal and records it as sent at `now`.
    fn build(&mut self, now: Timestamp) -> P2pRendezvous {
        let mut signal = self.common_fields();
        if let Some(req) = &self.connect_request {
            signal.connect_request = Some(req.clone());
            signal.to_connection_id = None;
            self.last_connect_request = Some(now);
        }
        if std::mem::take(&mut self.connect_ok_pending) {
            signal.connect_ok.clone_from(&self.connect_ok);
        }
        signal.ack_reliable_msg = Some(self.rx.last());
        let from_oldest = signal.connect_request.is_some() || signal.connect_ok.is_some();
        self.tx.fill(now, from_oldest, &mut signal);
        self.deadline = None;
        self.last_sent = Some(now);
        signal
    }
}

/// Whether two identity strings name the same identity (parsed when both parse, so `ip:`
/// spellings of one address agree).
fn same_identity(a: &str, b: &str) -> bool {
    match (Identity::parse(a), Identity::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// GNS's `SteamNetworkingIdentity::IsLocalHost`: an IP identity of `::1` or `127.0.0.1`.
fn is_localhost(id: &Identity) -> bool {
    matches!(id, Identity::IpAddress(a)
        if a.ip() == IpAddr::V6(Ipv6Addr::LOCALHOST) || a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST))
}
