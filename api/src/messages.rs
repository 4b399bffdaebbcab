//! Sending and receiving: SendMessageToConnection, SendMessages, FlushMessagesOnConnection,
//! ReceiveMessagesOnConnection, ConfigureConnectionLanes.
//!
//! A send never waits for the shard: the calling thread checks the handle, state, size, lane
//! and send-buffer room from the connection's shared record, takes the lane's next message
//! number and queues the command while holding the connection's send lock (only application
//! threads take it), so numbers and command order always agree.

use std::sync::Arc;

use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::shard::{Command, Outgoing as EngineMessage};
use sockworks_engine::wire::packet::MAX_MESSAGE_SIZE;

use crate::handles::Connection;
use crate::message::{Message, OutMessage, send_flags};
use crate::result::EResult;
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::lock;

/// Most lanes a connection may configure (GNS: `k_nSteamNetworkingMaxLanes`... 255 lanes fit
/// the wire's lane byte; GNS itself caps far lower in practice).
pub const MAX_LANES: usize = 255;

/// One message of a run to one connection: payload, flags, lane.
type Outgoing = (Vec<u8>, i32, u16);

/// Sends a run of messages to one connection (taking them out of `run`, whose buffer the
/// caller reuses), appending each one's number or error to `results`. The whole run costs one
/// lock and one shard command: under the connection's send lock the messages are checked and
/// numbered, then queued together.
fn send_run(
    sh: &Shared,
    conn: Connection,
    run: &mut Vec<Outgoing>,
    results: &mut Vec<Result<i64, EResult>>,
) {
    let Some(rec) = sh.conn(conn) else {
        results.extend(run.drain(..).map(|_| Err(EResult::InvalidParam)));
        return;
    };
    let state = rec.state();
    let mut send = lock(&rec.local);
    let mut accepted: Vec<EngineMessage> = Vec::with_capacity(run.len());
    let mut added = 0u64;
    // `SendBufferSize` in force (range-checked: 0 to 256 MiB).
    let limit = send.config.snp.send_buffer_size as u64;
    let mut refresh = false;
    for (data, flags, lane) in run.drain(..) {
        let check = match state {
            ApiState::Connected => Ok(()),
            ApiState::Connecting | ApiState::FindingRoute if flags & send_flags::NO_DELAY != 0 => {
                Err(EResult::Ignored)
            }
            ApiState::Connecting | ApiState::FindingRoute => Ok(()),
            ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally => Err(EResult::NoConnection),
            ApiState::None => Err(EResult::InvalidState),
        };
        let lane_i = usize::from(lane);
        let check = check.and_then(|()| {
            if data.len() > MAX_MESSAGE_SIZE || lane_i >= send.next_number.len() {
                Err(EResult::InvalidParam)
            } else {
                Ok(())
            }
        });
        if let Err(e) = check {
            results.push(Err(e));
            continue;
        }
        if rec.is_pipe() {
            // The lane was checked above: a number is always there.
            let number = send.next_number.take(lane_i).unwrap_or(0);
            crate::pair::pipe_send(sh, &rec, data, flags, lane, number);
            results.push(Ok(number));
            continue;
        }
        let len = data.len() as u64;
        let used = send.credit.as_ref().map_or(0, |c| c.in_use()) + added;
        if used + len > limit {
            refresh = true;
            results.push(Err(EResult::LimitExceeded));
            continue;
        }
        // The lane was checked above: a number is always there.
        let number = send.next_number.take(lane_i).unwrap_or(0);
        added += len;
        results.push(Ok(number));
        // invariant: lanes are capped at MAX_LANES (255), checked by configure_connection_lanes.
        let wire_lane = u8::try_from(lane).unwrap_or(u8::MAX);
        accepted.push(EngineMessage {
            data,
            lane: wire_lane,
            // GNS's flag bits only: higher ones are the engine's own.
            flags: u32::try_from(flags & 0xffff).unwrap_or(0),
        });
    }
    if !accepted.is_empty() {
        let credit = send.credit.get_or_insert_with(Arc::default);
        credit.add_queued(added);
        // Queued while the lock is held: commands and numbers stay in the same order.
        sh.send(
            rec.shard(),
            Command::Send {
                id: conn.id(),
                messages: accepted,
                credit: credit.clone(),
            },
        );
    }
    // No accounting yet: nothing was ever queued, so the engine holds nothing to look at.
    let refresh = refresh.then(|| send.credit.clone()).flatten();
    drop(send);
    if let Some(credit) = refresh {
        // A fresh look at the engine's buffer, so a drained one is seen again.
        sh.send(
            rec.shard(),
            Command::Refresh {
                id: conn.id(),
                credit,
            },
        );
    }
}

impl Sockets {
    /// `SendMessageToConnection`: queues a copy of `data` and returns its message number.
    /// Errors as GNS: InvalidParam (bad handle, over 512 KiB, unknown lane), InvalidState
    /// (closed), NoConnection (ended by the peer or a problem), Ignored (NoDelay while
    /// connecting), LimitExceeded (send buffer full).
    pub fn send_message_to_connection(
        &self,
        conn: Connection,
        data: &[u8],
        flags: i32,
    ) -> Result<i64, EResult> {
        let mut r = Vec::with_capacity(1);
        send_run(
            self.shared(),
            conn,
            &mut vec![(data.to_vec(), flags, 0)],
            &mut r,
        );
        // invariant: send_run appends exactly one result per message.
        r.pop().expect("invariant: one result per message")
    }

    /// `SendMessages`: sends each message (its payload moves, no copy) and returns, per
    /// message, its number or the negated `EResult`.
    /// Consecutive messages to one connection go as one run (one lock, one shard command).
    pub fn send_messages(&self, messages: Vec<OutMessage>) -> Vec<i64> {
        let sh = self.shared();
        let mut results = Vec::with_capacity(messages.len());
        // One buffer for every run of the call (a run is emptied as it is sent).
        let mut run: Vec<Outgoing> = Vec::with_capacity(messages.len());
        let mut run_conn = Connection::INVALID;
        for m in messages {
            if m.conn != run_conn && !run.is_empty() {
                send_run(sh, run_conn, &mut run, &mut results);
            }
            run_conn = m.conn;
            run.push((m.data, m.flags, m.lane));
        }
        if !run.is_empty() {
            send_run(sh, run_conn, &mut run, &mut results);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| -i64::from(e.code())))
            .collect()
    }

    /// `FlushMessagesOnConnection`: queued messages go without waiting for Nagle. InvalidParam
    /// for a bad handle, NoConnection once ended, Ignored while not connected yet.
    pub fn flush_messages_on_connection(&self, conn: Connection) -> EResult {
        let sh = self.shared();
        let Some(rec) = sh.conn(conn) else {
            return EResult::InvalidParam;
        };
        // Not connected yet: nothing to flush now (GNS clears the Nagle timers and says
        // Ignored; the engine sends what is queued as soon as it connects).
        let connected = match rec.state() {
            ApiState::Connected => true,
            ApiState::Connecting | ApiState::FindingRoute => false,
            ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally => {
                return EResult::NoConnection;
            }
            ApiState::None => return EResult::InvalidState,
        };
        sh.send(rec.shard(), Command::Flush { id: conn.id() });
        if connected {
            EResult::Ok
        } else {
            EResult::Ignored
        }
    }

    /// `ReceiveMessagesOnConnection`: moves up to `max` waiting messages into `out` and
    /// returns how many, or −1 for an invalid handle. As in GNS, a connection in a poll group
    /// can be read here too: its messages are taken out of the group's queue (which this
    /// reads through, so receiving on the group is the cheaper way for a busy server).
    pub fn receive_messages_on_connection(
        &self,
        conn: Connection,
        out: &mut Vec<Message>,
        max: usize,
    ) -> i32 {
        let Some(rec) = self.shared().conn(conn) else {
            return -1;
        };
        // Take the batch first, then settle it: credit freed mid-batch would let the shard
        // refill the queue under our feet, and one call could then take more than the
        // receive limits ever let wait.
        let start = out.len();
        if let Some(g) = rec.group.load().as_ref() {
            g.queue.take_conn_into(conn, out, max);
        }
        while out.len() - start < max {
            let Some(m) = rec.inbox.pop() else { break };
            out.push(m);
        }
        crate::message::settle_batch(
            &out[start..],
            |_| rec.recv_if_any(),
            |conn| self.shared().wake_owner(conn),
        );
        i32::try_from(out.len() - start).unwrap_or(i32::MAX)
    }

    /// `ConfigureConnectionLanes`: `priorities` (lower first) and `weights` (share among
    /// equal priorities) per lane; the count can only grow. As GNS: NoConnection for a bad
    /// handle, InvalidState once the connection ended, InvalidParam for a bad lane count or
    /// weight.
    pub fn configure_connection_lanes(
        &self,
        conn: Connection,
        priorities: &[i32],
        weights: &[u16],
    ) -> EResult {
        let sh = self.shared();
        // GNS checks the handle, then that the connection is still active, then the lanes.
        let Some(rec) = sh.conn(conn) else {
            return EResult::NoConnection;
        };
        match rec.state() {
            ApiState::Connecting | ApiState::FindingRoute | ApiState::Connected => {}
            ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally | ApiState::None => {
                return EResult::InvalidState;
            }
        }
        let n = priorities.len();
        if n == 0 || n > MAX_LANES || (!weights.is_empty() && weights.len() != n) {
            return EResult::InvalidParam;
        }
        if weights.contains(&0) {
            return EResult::InvalidParam;
        }
        let mut send = lock(&rec.local);
        if n < send.next_number.len() {
            return EResult::InvalidParam;
        }
        send.next_number.grow(n);
        sh.send(
            rec.shard(),
            Command::ConfigureLanes {
                id: conn.id(),
                priorities: priorities.to_vec(),
                weights: weights.to_vec(),
            },
        );
        EResult::Ok
    }
}
