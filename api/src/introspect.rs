//! Per-connection details and the callback pump: user data, names, GetConnectionInfo,
//! GetConnectionRealTimeStatus, GetDetailedConnectionStatus, RunCallbacks, and configuration
//! at each scope.
//!
//! Connection info is a snapshot the shard publishes on every state change, read without
//! asking the shard. Real-time and detailed status are computed by the owning shard on
//! request, with a bounded wait: they are diagnostics, never on the data path.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::time::Duration;

use sockworks_engine::proto::endpoint::{EndpointStats, Listener};
use sockworks_engine::shard::{Command, Query};

use crate::config::{Config, ConfigValue};
use crate::handles::{Connection, ConnectionState, ListenSocket};
use crate::info::{ConnectionInfo, LaneStatus, RealTimeStatus};
use crate::result::EResult;
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::{lock, read, write};

/// Longest a diagnostic call waits for its shard.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

fn clamp_i32(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Asks `shard` about connection `id` and waits (bounded) for the answer; `None` if the shard
/// did not answer in time or has no such connection.
fn ask<T: Send>(
    sh: &Shared,
    shard: usize,
    id: u32,
    query: impl FnOnce(SyncSender<Option<T>>) -> Query,
) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    sh.send(
        shard,
        Command::Query {
            id: id.into(),
            query: query(tx),
        },
    );
    rx.recv_timeout(ASK_TIMEOUT).ok().flatten()
}

impl Sockets {
    /// `SetConnectionUserData`: later received messages carry the new value. False for an
    /// invalid handle.
    pub fn set_connection_user_data(&self, conn: Connection, user_data: i64) -> bool {
        match self.shared().conn(conn) {
            Some(rec) => {
                rec.user_data.store(user_data, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// `GetConnectionUserData`: −1 for an invalid handle (or when never set).
    pub fn get_connection_user_data(&self, conn: Connection) -> i64 {
        self.shared()
            .conn(conn)
            .map_or(-1, |r| r.user_data.load(Ordering::Relaxed))
    }

    /// `SetConnectionName`: a name for logs and the info description. False for an invalid
    /// handle.
    pub fn set_connection_name(&self, conn: Connection, name: &str) -> bool {
        match self.shared().conn(conn) {
            Some(rec) => {
                rec.set_name(name);
                true
            }
            None => false,
        }
    }

    /// `GetConnectionName`: `None` for an invalid handle.
    pub fn get_connection_name(&self, conn: Connection) -> Option<String> {
        self.shared().conn(conn).map(|r| r.name())
    }

    /// `GetConnectionInfo`: `None` for an invalid handle.
    pub fn get_connection_info(&self, conn: Connection) -> Option<ConnectionInfo> {
        let rec = self.shared().conn(conn)?;
        Some(rec.info())
    }

    /// `GetConnectionRealTimeStatus`: fills `lanes` (at most the configured count) and
    /// returns the connection-wide figures. NoConnection for an invalid or closed handle (as
    /// GNS), InvalidParam for more lanes than configured.
    pub fn get_connection_real_time_status(
        &self,
        conn: Connection,
        lanes: &mut [LaneStatus],
    ) -> Result<RealTimeStatus, EResult> {
        let sh = self.shared();
        let rec = sh.conn(conn).ok_or(EResult::NoConnection)?;
        if lanes.len() > lock(&rec.local).next_number.len() {
            return Err(EResult::InvalidParam);
        }
        if rec.is_pipe() {
            return Ok(RealTimeStatus {
                state: Some(rec.state()),
                ping: 0,
                quality_local: 1.0,
                quality_remote: 1.0,
                ..RealTimeStatus::default()
            });
        }
        let s = ask(sh, rec.shard(), conn.0, Query::RealTime).ok_or(EResult::NoConnection)?;
        for (out, l) in lanes.iter_mut().zip(&s.lanes) {
            *out = LaneStatus {
                pending_unreliable: clamp_i32(l.pending_unreliable),
                pending_reliable: clamp_i32(l.pending_reliable),
                sent_unacked_reliable: clamp_i32(l.sent_unacked_reliable),
                queue_time_usec: l.queue_time_usec,
            };
        }
        Ok(RealTimeStatus {
            state: Some(rec.state()),
            ping: s.ping_ms,
            quality_local: s.quality_local,
            quality_remote: s.quality_remote,
            out_packets_per_sec: s.out_packets_per_sec,
            out_bytes_per_sec: s.out_bytes_per_sec,
            in_packets_per_sec: s.in_packets_per_sec,
            in_bytes_per_sec: s.in_bytes_per_sec,
            send_rate_bytes_per_sec: i32::try_from(s.send_rate_bytes_per_sec).unwrap_or(i32::MAX),
            pending_unreliable: clamp_i32(s.pending_unreliable),
            pending_reliable: clamp_i32(s.pending_reliable),
            sent_unacked_reliable: clamp_i32(s.sent_unacked_reliable),
            queue_time_usec: s.queue_time_usec,
        })
    }

    /// `GetDetailedConnectionStatus`, with GNS's buffer convention: −1 invalid handle; 0 the
    /// text and a NUL fit in `buf`; N > 0 it did not (truncated), a buffer of N bytes would.
    pub fn get_detailed_connection_status(&self, conn: Connection, buf: &mut [u8]) -> i32 {
        let sh = self.shared();
        let Some(rec) = sh.conn(conn) else {
            return -1;
        };
        let id = conn.0;
        let text = if rec.is_pipe() {
            format!(
                "Connection #{id}: in-memory socket pair (no packets, no encryption)\nState: {:?}\n",
                rec.state()
            )
        } else {
            let Some(text) = ask(sh, rec.shard(), id, Query::Detailed) else {
                return -1;
            };
            text
        };
        let need = text.len() + 1;
        let n = text.len().min(buf.len().saturating_sub(1));
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        if let Some(b) = buf.get_mut(n) {
            *b = 0;
        }
        if need <= buf.len() {
            0
        } else {
            i32::try_from(need).unwrap_or(i32::MAX)
        }
    }

    /// The endpoint counters and state sizes of every shard, summed (a Sockworks extension,
    /// not in GNS): datagrams dropped before reaching a connection (malformed, bad control
    /// messages, unknown connection ids, forged or stale challenge cookies) and how many
    /// connections, incoming requests and stateless replies are held. Per-connection drops
    /// (bad header, replayed, failed authentication) are in
    /// [`get_detailed_connection_status`](Self::get_detailed_connection_status)'s "Dropped"
    /// line. A shard that does not answer within 2 s is left out.
    pub fn endpoint_stats(&self) -> EndpointStats {
        let sh = self.shared();
        let mut total = EndpointStats::default();
        for shard in 0..sh.shards.len() {
            let (tx, rx) = mpsc::sync_channel(1);
            sh.send(shard, Command::EndpointStats { reply: tx });
            let Ok(s) = rx.recv_timeout(ASK_TIMEOUT) else {
                continue;
            };
            let (t, c) = (&mut total.counters, s.counters);
            t.malformed += c.malformed;
            t.bad_control += c.bad_control;
            t.unknown_connection += c.unknown_connection;
            t.bad_challenge += c.bad_challenge;
            t.not_listening += c.not_listening;
            t.refused += c.refused;
            t.refused_limit += c.refused_limit;
            total.connections += s.connections;
            total.incoming_requests += s.incoming_requests;
            total.queued_replies += s.queued_replies;
        }
        total
    }

    /// `RunCallbacks`: delivers queued connection status changes to their callbacks on this
    /// thread (changes of connections without a callback are dropped, as in GNS). Only what
    /// was queued when the call began: a change a callback causes (closing a connection the
    /// peer closed) waits for the next call, as GNS dispatches a snapshot of its queue. Also
    /// releases the signaling objects of P2P connections gone past FinWait.
    pub fn run_callbacks(&self) {
        self.run_auth_callbacks();
        self.run_fake_ip_callbacks();
        // Signaling objects of closed P2P connections whose FinWait is over: a shard with no
        // timer left sleeps and would not get to them.
        let sh = self.shared();
        sh.p2p.release_due(sh.clock.now());
        let queued = self.shared().events.len();
        for _ in 0..queued {
            let Some((rec, ev)) = self.shared().events.pop() else {
                break;
            };
            let cb = lock(&rec.local).callback.clone();
            if let Some(cb) = cb {
                cb(&ev);
            }
        }
    }

    /// Sets a value at global scope: new listen sockets and connections inherit it; fake
    /// network conditions apply to every shard at once. False if out of range.
    pub fn set_global_config_value(&self, value: &ConfigValue) -> bool {
        let sh = self.shared();
        let mut g = write(&sh.global);
        if g.set(value).is_err() {
            return false;
        }
        if value.fake_network() {
            for i in 0..sh.shards.len() {
                sh.send(
                    i,
                    Command::SetFakeConditions {
                        send: g.fake_send,
                        recv: g.fake_recv,
                    },
                );
            }
        }
        true
    }

    /// Sets a value at listen-socket scope (connections accepted later inherit it). False for
    /// an invalid handle, a global-only value or one out of range.
    pub fn set_listen_socket_config_value(
        &self,
        socket: ListenSocket,
        value: &ConfigValue,
    ) -> bool {
        if value.global_only() {
            return false;
        }
        let Some(l) = read(&self.shared().listen).get(&socket.0).cloned() else {
            return false;
        };
        let mut c = lock(&l.config);
        if c.set(value).is_err() {
            return false;
        }
        l.admission.set_limits(c.admission);
        for (i, &local) in l.locals.iter().enumerate() {
            let listener = Box::new(Listener {
                handle: socket.0,
                connection: c.connection,
                admission: Some(l.admission.clone()),
            });
            self.shared().send(i, Command::Listen { local, listener });
        }
        true
    }

    /// Sets a value on a live connection: timeouts, Nagle, buffers and rates apply from now
    /// on; user data and the callback at once. False for an invalid handle, a global-only
    /// value, a listen-socket one (connection limits) or one out of range.
    pub fn set_connection_config_value(&self, conn: Connection, value: &ConfigValue) -> bool {
        let sh = self.shared();
        let Some(rec) = sh.conn(conn) else {
            return false;
        };
        if value.global_only() || value.listen_scope() {
            return false;
        }
        // Range check first, on a scratch copy.
        if Config::defaults().set(value).is_err() {
            return false;
        }
        match value {
            ConfigValue::ConnectionUserData(v) => {
                rec.user_data.store(*v, Ordering::Relaxed);
                return true;
            }
            ConfigValue::ConnectionStatusChanged(f) => {
                lock(&rec.local).callback = Some(f.clone());
                return true;
            }
            _ => {}
        }
        // The whole set goes to the shard, under the lock that orders this connection's
        // commands from application threads.
        let mut local = lock(&rec.local);
        let mut cfg = Config {
            connection: *local.config,
            ..Config::default()
        };
        if cfg.set(value).is_err() {
            return false;
        }
        local.config = std::sync::Arc::new(cfg.connection);
        if rec.is_pipe() {
            let snp = &cfg.connection.snp;
            rec.set_pipe_recv_limits(snp.recv_buffer_size as u64, snp.recv_buffer_messages as u64);
        }
        sh.send(
            rec.shard(),
            Command::SetConfig {
                id: conn.id(),
                config: Box::new(cfg.connection),
            },
        );
        true
    }

    /// The state of a connection (`None` state for an invalid handle); a cheap read of what
    /// the last status change said.
    pub fn connection_state(&self, conn: Connection) -> ConnectionState {
        self.shared()
            .conn(conn)
            .map_or(ConnectionState::None, |r| r.state())
    }
}
