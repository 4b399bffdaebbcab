//! [`Peer`]: one GNS socket, the pump that drives it, and the event lines it prints.

mod auth;
mod steps;

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gns::sys::{EResult, ESteamNetworkingConnectionState as State};
use gns::{
    GnsConnection, GnsGlobal, GnsLane, GnsNetworkMessage, GnsResult, GnsSocket, IsReady, SendFlags,
    SendOutcome, ToReceive, ToSend,
};
use sockworks_interop::payload::{fnv_hex, is_pattern};
use sockworks_interop::script::SendMode;

use crate::setup::now;

pub(crate) fn state_name(state: State) -> &'static str {
    match state {
        State::k_ESteamNetworkingConnectionState_None => "None",
        State::k_ESteamNetworkingConnectionState_Connecting => "Connecting",
        State::k_ESteamNetworkingConnectionState_FindingRoute => "FindingRoute",
        State::k_ESteamNetworkingConnectionState_Connected => "Connected",
        State::k_ESteamNetworkingConnectionState_ClosedByPeer => "ClosedByPeer",
        State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => "ProblemDetectedLocally",
        State::k_ESteamNetworkingConnectionState_FinWait => "FinWait",
        State::k_ESteamNetworkingConnectionState_Linger => "Linger",
        State::k_ESteamNetworkingConnectionState_Dead => "Dead",
        State::k_ESteamNetworkingConnectionState__Force32Bit => "Invalid",
    }
}

fn result_name(result: EResult) -> String {
    let name = format!("{result:?}");
    name.strip_prefix("k_EResult").unwrap_or(&name).to_owned()
}

pub(crate) fn send_flags(mode: SendMode) -> SendFlags {
    let mut flags = if mode.reliable {
        SendFlags::RELIABLE
    } else {
        SendFlags::UNRELIABLE
    };
    if mode.no_nagle {
        flags |= SendFlags::NO_NAGLE;
    }
    if mode.no_delay {
        flags |= SendFlags::NO_DELAY;
    }
    flags
}

/// `AcceptConnection` plus joining the poll group (a server's; a client has none).
pub(crate) type AcceptFn<S> = fn(&GnsSocket<S>, GnsConnection) -> GnsResult<()>;

/// The run hit `--max-seconds`.
#[derive(Debug)]
pub(crate) struct DeadlineHit;

/// One GNS socket (listen socket or client connection) and what the peer saw on it.
pub(crate) struct Peer<S: IsReady> {
    socket: GnsSocket<S>,
    global: &'static GnsGlobal,
    /// `AcceptConnection` + poll group; `None` for a client.
    accept: Option<AcceptFn<S>>,
    refuse: bool,
    echo: bool,
    lanes: Vec<GnsLane>,
    deadline: Instant,
    ids: HashMap<GnsConnection, u32>,
    /// Connections that reached Connected and have not ended or been closed by us.
    pub(crate) open: Vec<(u32, GnsConnection)>,
    /// Connections that ended (closed by the peer, a local problem, or refused).
    pub(crate) ended: HashSet<u32>,
    received: u64,
    /// Of `received`, those that came reliably.
    received_reliable: u64,
    sent: u64,
}

impl<S: IsReady> Peer<S> {
    /// A peer on `socket` that has seen nothing yet and gives up at `deadline`.
    pub(crate) fn new(
        socket: GnsSocket<S>,
        global: &'static GnsGlobal,
        accept: Option<AcceptFn<S>>,
        (refuse, echo): (bool, bool),
        lanes: Vec<GnsLane>,
        deadline: Instant,
    ) -> Self {
        Self {
            socket,
            global,
            accept,
            refuse,
            echo,
            lanes,
            deadline,
            ids: HashMap::new(),
            open: Vec::new(),
            ended: HashSet::new(),
            received: 0,
            received_reliable: 0,
            sent: 0,
        }
    }

    pub(crate) fn id_of(&mut self, conn: GnsConnection) -> u32 {
        let next = u32::try_from(self.ids.len() + 1).unwrap_or(u32::MAX);
        *self.ids.entry(conn).or_insert(next)
    }

    pub(crate) fn is_open(&self, id: u32) -> bool {
        self.open.iter().any(|&(i, _)| i == id)
    }

    /// Runs GNS callbacks, then handles every queued message and status change.
    ///
    /// Messages are read before and after the status changes, and again just before a
    /// connection that ended is released, so nothing the peer delivered before closing is lost.
    pub(crate) fn pump(&mut self) -> Result<bool, DeadlineHit> {
        if now() >= self.deadline {
            return Err(DeadlineHit);
        }
        self.global.poll_callbacks();
        let mut busy = self.receive_all();
        let events: Vec<_> = self.socket.receive_events().collect();
        busy |= !events.is_empty();
        for event in events {
            self.on_status(event.connection(), event.old_state(), event.info());
        }
        busy |= self.receive_all();
        Ok(busy)
    }

    /// Handles every message GNS has queued; true if there was any.
    fn receive_all(&mut self) -> bool {
        let mut any = false;
        loop {
            // After our own close of a client's only connection this fails: nothing to read.
            let Ok(batch) = self.socket.receive_messages::<64>() else {
                return any;
            };
            let messages: Vec<GnsNetworkMessage<ToReceive>> = batch.collect();
            if messages.is_empty() {
                return any;
            }
            any = true;
            for message in messages {
                self.on_message(&message);
            }
        }
    }

    /// Pumps until `done` holds (true) or `timeout` passes (false); `Err` when the wait
    /// reaches `--max-seconds` first.
    pub(crate) fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, DeadlineHit> {
        let until = now().checked_add(timeout).unwrap_or(self.deadline);
        loop {
            if done(self) {
                return Ok(true);
            }
            if now() >= until {
                // A wait cut short by --max-seconds is the deadline, not a timeout.
                return if until >= self.deadline {
                    Err(DeadlineHit)
                } else {
                    Ok(false)
                };
            }
            if !self.pump()? {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn on_status(&mut self, conn: GnsConnection, old: State, info: gns::GnsConnectionInfo) {
        let id = self.id_of(conn);
        let new = info.state();
        let remote = SocketAddr::new(info.remote_address(), info.remote_port());
        emit!(
            "STATUS conn={id} old={} new={} reason={} debug={:?} remote={remote}",
            state_name(old),
            state_name(new),
            info.end_reason(),
            info.end_debug()
        );
        match new {
            State::k_ESteamNetworkingConnectionState_Connecting => {
                let Some(accept) = self.accept else { return };
                if self.refuse {
                    let debug = c"refused";
                    let _ = self.socket.close_connection(conn, 1234, Some(debug), false);
                    emit!("REFUSED conn={id} reason=1234 debug=\"refused\"");
                    self.ended.insert(id);
                } else {
                    match accept(&self.socket, conn) {
                        Ok(()) => emit!("ACCEPTED conn={id}"),
                        Err(e) => emit!("ACCEPT_FAILED conn={id} error={:?}", e.to_string()),
                    }
                }
            }
            State::k_ESteamNetworkingConnectionState_Connected => {
                if let Some(auth) = auth::peer_auth(conn) {
                    emit!(
                        "AUTH conn={id} flags={} unauthenticated={} identity={:?}",
                        auth.flags,
                        u8::from(auth.unauthenticated()),
                        auth.identity
                    );
                }
                if !self.lanes.is_empty() {
                    self.configure_lanes(id, conn);
                }
                if !self.is_open(id) {
                    self.open.push((id, conn));
                }
            }
            State::k_ESteamNetworkingConnectionState_ClosedByPeer
            | State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => {
                emit!(
                    "CLOSED conn={id} state={} reason={} debug={:?}",
                    state_name(new),
                    info.end_reason(),
                    info.end_debug()
                );
                // GNS keeps the handle (and what it received) until the application closes it.
                self.receive_all();
                let _ = self.socket.close_connection(conn, 0, None, false);
                self.open.retain(|&(i, _)| i != id);
                self.ended.insert(id);
            }
            _ => {}
        }
    }

    fn configure_lanes(&self, id: u32, conn: GnsConnection) -> bool {
        match self.socket.configure_connection_lanes(conn, &self.lanes) {
            Ok(()) => {
                emit!("LANES conn={id} n={}", self.lanes.len());
                true
            }
            Err(e) => {
                emit!("LANES_FAILED conn={id} error={:?}", e.to_string());
                false
            }
        }
    }

    fn on_message(&mut self, message: &GnsNetworkMessage<ToReceive>) {
        self.received += 1;
        let conn = message.connection();
        let id = self.id_of(conn);
        let payload = message.payload();
        let reliable = message.flags().contains(SendFlags::RELIABLE);
        self.received_reliable += u64::from(reliable);
        let text = match std::str::from_utf8(payload) {
            Ok(s) if s.len() <= 256 && !s.chars().any(char::is_control) => s,
            _ => "",
        };
        emit!(
            "RECV conn={id} lane={} reliable={} num={} size={} fnv={} pattern={} text={text:?}",
            message.lane(),
            u8::from(reliable),
            message.message_number(),
            payload.len(),
            fnv_hex(payload),
            u8::from(is_pattern(payload))
        );
        if self.echo {
            let flags = if reliable {
                SendFlags::RELIABLE
            } else {
                SendFlags::UNRELIABLE
            };
            let reply = self
                .global
                .utils()
                .allocate_message(conn, flags, payload.to_vec())
                .set_lane(message.lane());
            // No retry on a full send buffer here: retrying pumps, which could recurse.
            let _ = self.send(id, reply, message.lane(), true, false);
        }
    }

    /// Sends one message; with `retry`, pumps and retries while the send buffer is full.
    fn send(
        &mut self,
        id: u32,
        mut message: GnsNetworkMessage<ToSend>,
        lane: u16,
        echo: bool,
        retry: bool,
    ) -> Result<u64, String> {
        let reliable = message.flags().contains(SendFlags::RELIABLE);
        let (size, fnv) = (message.payload().len(), fnv_hex(message.payload()));
        loop {
            let outcome = self.socket.send_messages(std::iter::once(message)).pop();
            let result = match outcome {
                Some(SendOutcome::Sent(num)) => {
                    self.sent += 1;
                    emit!(
                        "SENT conn={id} lane={lane} reliable={} num={num} size={size} fnv={fnv} echo={}",
                        u8::from(reliable),
                        u8::from(echo)
                    );
                    return Ok(num);
                }
                Some(SendOutcome::Failed(EResult::k_EResultLimitExceeded, back)) if retry => {
                    message = back;
                    if !self.pump().map_err(|_| "deadline while send buffer full")? {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    continue;
                }
                Some(SendOutcome::Failed(result, _)) => result_name(result),
                Some(SendOutcome::Skipped(_)) | None => "Skipped".to_owned(),
            };
            emit!("SEND_FAILED conn={id} lane={lane} result={result}");
            return Err(format!("send failed: {result}"));
        }
    }

    /// True when nothing is queued or unacked on `conn` (false if its status is unavailable).
    fn all_sent(&self, conn: GnsConnection) -> bool {
        let lanes = u32::try_from(self.lanes.len()).unwrap_or(0);
        self.socket
            .get_connection_real_time_status(conn, lanes)
            .is_ok_and(|(s, _)| {
                s.pending_bytes_reliable() == 0
                    && s.pending_bytes_unreliable() == 0
                    && s.bytes_sent_unacked_reliable() == 0
            })
    }

    pub(crate) fn close(
        &mut self,
        id: u32,
        conn: GnsConnection,
        reason: u32,
        debug: &str,
        linger: bool,
    ) {
        let c_debug = CString::new(debug).unwrap_or_default();
        let _ = self
            .socket
            .close_connection(conn, reason, Some(&c_debug), linger);
        emit!(
            "CLOSE conn={id} reason={reason} debug={debug:?} linger={}",
            u8::from(linger)
        );
        self.open.retain(|&(i, _)| i != id);
    }

    /// Keeps GNS running for `duration` (close packets, lingering data); ignores the deadline.
    pub(crate) fn drain(&mut self, duration: Duration) {
        self.deadline = self.deadline.max(now() + duration);
        let _ = self.wait_until(duration, |_| false);
    }

    pub(crate) fn done(&self, ok: bool, code: i32) -> ! {
        emit!(
            "DONE ok={} received={} sent={}",
            u8::from(ok),
            self.received,
            self.sent
        );
        // Exit without running GNS teardown: nothing is left to flush after the drain.
        std::process::exit(if ok { 0 } else { code })
    }
}
