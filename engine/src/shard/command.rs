//! Everything another thread may ask of a shard, as one enum, and the one function that
//! applies it on the shard thread. Application threads (the `sockworks` API) and other shards
//! (misrouted datagrams) push commands into the shard's single FIFO ([`super::Mailbox`]), so
//! the order in which they were queued is the order in which they run: a listener queued
//! before its socket is known before the socket's first datagram, a send queued before a
//! close goes out before the close.
//!
//! ```text
//!  app thread ──┐
//!  app thread ──┼─► Mailbox (one FIFO per shard) ─► Shard::turn ─► apply(cmd) ─► Endpoint
//!  other shard ─┘                                               └► Driver (attach/detach)
//! ```
//!
//! Commands carry data, never code. What flows back is data too: the shard is the only writer
//! of a connection's [`SendCredit`] snapshot, and answers queries through the reply channel a
//! query carries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use crate::crypto::TrustStore;
use crate::driver::Driver;
use crate::driver::mmsg::MmsgDriver;
use crate::proto::connection::ConnectionConfig;
use crate::proto::endpoint::{
    ConnectionId, Endpoint, EndpointStats, Listener, LocalSocket, P2pConnect, P2pListener,
    RecvMeta, SignalOutcome, Transmit,
};
use crate::proto::fake_net::FakeConditions;
use crate::proto::handshake::LocalIdentity;
use crate::proto::ice::{IceConfig, LocalInterface};
use crate::proto::snp::{SnpStatus, send_flags};
use crate::time::Timestamp;

/// One message of a [`Command::Send`]: payload, lane, `k_nSteamNetworkingSend_*` flags.
#[derive(Debug)]
pub struct Outgoing {
    /// The payload (moved, not copied).
    pub data: Vec<u8>,
    /// The lane.
    pub lane: u8,
    /// Send flags.
    pub flags: u32,
}

/// A connection's send-buffer accounting, shared by the threads that send on it and the shard
/// that owns it. Each field has one writer, so no update is lost and no lock is needed:
/// senders add to `queued`, the shard adds to `applied` and sets `buffered`. Bytes in flight
/// between the two are `queued - applied`.
#[derive(Debug, Default)]
pub struct SendCredit {
    /// Payload bytes senders have queued in [`Command::Send`]s, ever (sender-written).
    queued: AtomicU64,
    /// Payload bytes of those the shard has applied, ever (shard-written).
    applied: AtomicU64,
    /// The engine's queued bytes after the shard's last look (shard-written).
    buffered: AtomicU64,
}

impl SendCredit {
    /// Bytes counted against the send buffer now: queued in the engine, plus sent by the
    /// application but not yet applied by the shard.
    pub fn in_use(&self) -> u64 {
        // Applied is read first: a concurrent apply can then only make the sum too high (a
        // spurious LimitExceeded), never too low (an overrun of the buffer).
        let applied = self.applied.load(Ordering::Acquire);
        let queued = self.queued.load(Ordering::Acquire);
        let buffered = self.buffered.load(Ordering::Acquire);
        queued.saturating_sub(applied) + buffered
    }

    /// A sender queued `bytes` more (call before pushing the command).
    pub fn add_queued(&self, bytes: u64) {
        self.queued.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The shard's side: `bytes` applied, the engine now holds `buffered`.
    fn publish(&self, applied: u64, buffered: u64) {
        // Buffered first: a sender that sees the new `applied` also sees bytes it moved into.
        self.buffered.store(buffered, Ordering::Release);
        if applied > 0 {
            self.applied.fetch_add(applied, Ordering::AcqRel);
        }
    }
}

/// A diagnostic question for the shard; the answer goes back through the query's channel
/// (the asking thread waits on it, bounded).
#[derive(Debug)]
pub enum Query {
    /// `GetConnectionRealTimeStatus`.
    RealTime(SyncSender<Option<SnpStatus>>),
    /// `GetDetailedConnectionStatus`.
    Detailed(SyncSender<Option<String>>),
}

/// Work for one shard. Large settings are boxed so every queue slot stays small.
#[derive(Debug)]
pub enum Command {
    /// A socket joins the shard's driver as local socket `local` (a listen socket's member of
    /// its SO_REUSEPORT group, or a client socket). Bound on the caller's thread, so bind
    /// errors surface there.
    Attach {
        /// The local socket index datagrams from it are tagged with.
        local: LocalSocket,
        /// The bound socket.
        socket: Box<MmsgDriver>,
    },
    /// The socket leaves the driver (and closes): at once, or after this turn's send so that
    /// datagrams queued for it (a ConnectionClosed, say) still leave.
    Detach {
        /// The local socket.
        local: LocalSocket,
        /// Wait for this turn's send.
        after_flush: bool,
        /// Told once the socket is closed (its port is free again), for a caller that waits.
        closed: Option<SyncSender<()>>,
    },
    /// Listen on a local socket (or replace its listener's settings).
    Listen {
        /// The local socket.
        local: LocalSocket,
        /// The listener.
        listener: Box<Listener>,
    },
    /// Stop accepting on a local socket; connections accepted there stay.
    StopListening {
        /// The local socket.
        local: LocalSocket,
    },
    /// `CloseListenSocket`: stop listening and close the connections accepted there.
    CloseListener {
        /// The local socket.
        local: LocalSocket,
    },
    /// `ConnectByIPAddress`, with an id from the shard's [`super::IdStock`].
    Connect {
        /// The client socket to send from.
        local: LocalSocket,
        /// The reserved connection id (the API handle).
        id: ConnectionId,
        /// The server.
        server: SocketAddr,
        /// The connection's settings.
        config: Box<ConnectionConfig>,
        /// The identity the server's certificate must name (`None`: any).
        expected: Option<Box<crate::wire::identity::Identity>>,
    },
    /// `ConnectToHostedDedicatedServer`: a client connection through one of our relays.
    ConnectRelay {
        /// The client socket to send from.
        local: LocalSocket,
        /// The reserved connection id.
        id: ConnectionId,
        /// The relays to use, best first.
        relays: Vec<SocketAddr>,
        /// The signed relay auth ticket.
        ticket: Vec<u8>,
        /// The connection's settings.
        config: Box<ConnectionConfig>,
        /// The hosted server's identity, which its certificate must name.
        expected: Option<Box<crate::wire::identity::Identity>>,
    },
    /// `AcceptConnection`.
    Accept {
        /// The connection.
        id: ConnectionId,
    },
    /// `CloseConnection`: the peer is told; unread messages are dropped.
    Close {
        /// The connection.
        id: ConnectionId,
        /// `ESteamNetConnectionEnd` (0: App_Generic).
        reason: u32,
        /// Debug text for the peer.
        debug: String,
        /// Flush queued reliable data first.
        linger: bool,
    },
    /// Messages numbered by the sender, in order. A message the engine refuses still uses its
    /// number, so later numbers stay what the sender was told.
    Send {
        /// The connection.
        id: ConnectionId,
        /// The messages.
        messages: Vec<Outgoing>,
        /// Where the shard publishes the send-buffer accounting.
        credit: Arc<SendCredit>,
    },
    /// Publish the engine's queued bytes again (a sender was refused and wants a fresh look).
    Refresh {
        /// The connection.
        id: ConnectionId,
        /// Its accounting.
        credit: Arc<SendCredit>,
    },
    /// `FlushMessagesOnConnection`.
    Flush {
        /// The connection.
        id: ConnectionId,
    },
    /// `ConfigureConnectionLanes`.
    ConfigureLanes {
        /// The connection.
        id: ConnectionId,
        /// Priority per lane (lower first).
        priorities: Vec<i32>,
        /// Weight per lane among equal priorities.
        weights: Vec<u16>,
    },
    /// New settings for a live connection.
    SetConfig {
        /// The connection.
        id: ConnectionId,
        /// The whole configuration now in force.
        config: Box<ConnectionConfig>,
    },
    /// The global fake network conditions (`FakePacketLoss_*`, `FakePacketLag_*`, …).
    SetFakeConditions {
        /// On sending.
        send: FakeConditions,
        /// On receiving.
        recv: FakeConditions,
    },
    /// The identity and certificate presented on connections made or accepted from now on
    /// (`SetCertificate`, `ResetIdentity`); existing connections keep theirs.
    SetIdentity {
        /// The identity, its key and certificate.
        identity: Box<LocalIdentity>,
    },
    /// The trust store peers' certificates are judged by from now on.
    SetTrust {
        /// Trusted CAs, revocations, policy.
        trust: Box<TrustStore>,
    },
    /// A diagnostic about one connection.
    Query {
        /// The connection.
        id: ConnectionId,
        /// What to answer.
        query: Query,
    },
    /// The endpoint's counters and state sizes.
    EndpointStats {
        /// Where the answer goes.
        reply: SyncSender<EndpointStats>,
    },
    /// An id taken from the [`super::IdStock`] and not used for an engine connection (an
    /// in-memory socket pair's end) is free again.
    ReleaseId {
        /// The id.
        id: ConnectionId,
    },
    /// The sockets (and their addresses) P2P connections gather ICE host candidates from.
    SetP2pInterfaces {
        /// One per usable local address, each already attached.
        interfaces: Vec<LocalInterface>,
    },
    /// `CreateListenSocketP2P` on this shard: the answer is false if the port is taken.
    P2pListen {
        /// The virtual port.
        vport: i32,
        /// The listener.
        listener: Box<P2pListener>,
        /// Where the answer goes.
        reply: SyncSender<bool>,
    },
    /// `CloseListenSocket` of a P2P listen socket.
    P2pUnlisten {
        /// The virtual port.
        vport: i32,
    },
    /// `ConnectP2PCustomSignaling` on a reserved id; the answer is whether ICE could start.
    P2pConnect {
        /// The reserved id.
        id: ConnectionId,
        /// What to connect to.
        connect: Box<P2pConnect>,
        /// Where the answer goes.
        reply: SyncSender<bool>,
    },
    /// `ReceivedP2PCustomSignal`: the outcome goes back to the calling thread.
    Signal {
        /// The signal.
        data: Vec<u8>,
        /// A new request needs a P2P listen socket (default signaling).
        listener_required: bool,
        /// Where the outcome goes.
        reply: SyncSender<SignalOutcome>,
    },
    /// The application kept a new P2P request: announce it; its ICE settings.
    P2pKeep {
        /// The connection.
        id: ConnectionId,
        /// ICE settings for its agent.
        ice: Box<IceConfig>,
    },
    /// The application ignored a new P2P request: forget it silently.
    P2pDrop {
        /// The connection.
        id: ConnectionId,
    },
    /// The rejection signal of a request the application closed in its callback.
    P2pRejection {
        /// The connection.
        id: ConnectionId,
        /// Where the answer goes.
        reply: SyncSender<Option<(crate::wire::identity::Identity, Vec<u8>)>>,
    },
    /// The application's `SendSignal` failed.
    P2pSignalFailed {
        /// The connection.
        id: ConnectionId,
    },
    /// A data datagram that reached another shard's socket (no steering program) and belongs
    /// here.
    Forwarded {
        /// The local socket it arrived on and its source.
        meta: RecvMeta,
        /// The datagram.
        data: Vec<u8>,
    },
}

/// Sockets whose detach waits for the end of the turn, and who to tell.
pub(super) type Deferred = Vec<(LocalSocket, Option<SyncSender<()>>)>;

/// Runs `cmd` on the shard.
pub(super) fn apply<D: Driver>(
    cmd: Command,
    ep: &mut Endpoint,
    driver: &mut D,
    now: Timestamp,
    deferred: &mut Deferred,
) {
    match cmd {
        Command::Attach { local, socket } => {
            // A driver that holds one socket only has nowhere to put it; it is closed.
            let _ = driver.attach(local, *socket);
        }
        Command::Detach {
            local,
            after_flush,
            closed,
        } => {
            if after_flush {
                deferred.push((local, closed));
            } else {
                detach(driver, local, closed);
            }
        }
        Command::Listen { local, listener } => ep.add_listener(local, *listener),
        Command::StopListening { local } => ep.stop_listening(local),
        Command::CloseListener { local } => {
            ep.remove_listener(now, local);
        }
        Command::Connect {
            local,
            id,
            server,
            config,
            expected,
        } => ep.connect_with_id_expecting(
            now,
            id,
            Transmit { local, to: server },
            Some(*config),
            expected.map(|e| *e),
        ),
        Command::ConnectRelay {
            local,
            id,
            relays,
            ticket,
            config,
            expected,
        } => ep.connect_via_relay(
            now,
            id,
            (local, relays),
            ticket,
            Some(*config),
            expected.map(|e| *e),
        ),
        Command::Accept { id } => {
            // A race with the peer giving up ends the connection; its status change says so.
            let _ = ep.accept(now, id);
        }
        Command::Close {
            id,
            reason,
            debug,
            linger,
        } => {
            let _ = ep.close(now, id, reason, &debug, linger);
            // Unread messages are discarded (GNS), so the engine can free the connection.
            while ep.poll_message(id).is_some() {}
        }
        Command::Send {
            id,
            messages,
            credit,
        } => {
            let mut bytes = 0u64;
            // The sender checked the buffer and gave out the numbers: no refusal for room.
            let run = messages.into_iter().map(|m| {
                bytes += m.data.len() as u64;
                (m.lane, m.flags | send_flags::ADMITTED, m.data)
            });
            ep.send_run(now, id, run);
            credit.publish(bytes, buffered(ep, id));
        }
        Command::Refresh { id, credit } => credit.publish(0, buffered(ep, id)),
        Command::Flush { id } => {
            if let Some(c) = ep.connection_mut(id) {
                let _ = c.flush(now);
            }
        }
        Command::ConfigureLanes {
            id,
            priorities,
            weights,
        } => {
            if let Some(c) = ep.connection_mut(id) {
                let _ = c.configure_lanes(&priorities, &weights);
            }
        }
        Command::SetConfig { id, config } => {
            if let Some(c) = ep.connection_mut(id) {
                c.set_config(now, *config);
            }
        }
        Command::SetFakeConditions { send, recv } => ep.set_fake_conditions(send, recv),
        Command::SetIdentity { identity } => ep.set_identity(*identity),
        Command::SetTrust { trust } => ep.set_trust(*trust),
        Command::Query { id, query } => {
            // The asker may have given up waiting: a closed channel is fine.
            match query {
                Query::RealTime(reply) => {
                    let _ = reply.send(ep.connection_mut(id).map(|c| c.status(now)));
                }
                Query::Detailed(reply) => {
                    let _ = reply.send(ep.connection_mut(id).map(|c| c.detailed_status(now)));
                }
            }
        }
        Command::EndpointStats { reply } => {
            // The asker may have given up waiting: a closed channel is fine.
            let _ = reply.send(ep.stats());
        }
        Command::ReleaseId { id } => ep.release_id(id),
        Command::Forwarded { meta, mut data } => ep.handle_datagram(now, meta, &mut data),
        Command::SetP2pInterfaces { interfaces } => ep.set_p2p_interfaces(interfaces),
        // The asker may have given up waiting: a closed channel is fine (here and below).
        Command::P2pListen {
            vport,
            listener,
            reply,
        } => {
            let _ = reply.send(ep.add_p2p_listener(vport, *listener));
        }
        Command::P2pUnlisten { vport } => {
            ep.remove_p2p_listener(now, vport);
        }
        Command::P2pConnect { id, connect, reply } => {
            let _ = reply.send(ep.connect_p2p(now, id, *connect).is_ok());
        }
        Command::Signal {
            data,
            listener_required,
            reply,
        } => {
            let _ = reply.send(ep.handle_signal(now, &data, listener_required));
        }
        Command::P2pKeep { id, ice } => ep.p2p_keep(id, *ice),
        Command::P2pDrop { id } => ep.p2p_drop(now, id),
        Command::P2pRejection { id, reply } => {
            let _ = reply.send(ep.p2p_rejection(id));
        }
        Command::P2pSignalFailed { id } => ep.p2p_signal_failed(now, id),
    }
}

/// Closes local socket `local` and tells whoever waits for it.
pub(super) fn detach<D: Driver>(
    driver: &mut D,
    local: LocalSocket,
    closed: Option<SyncSender<()>>,
) {
    driver.detach(local);
    if let Some(tx) = closed {
        // The waiter may have given up: nothing to do then.
        let _ = tx.send(());
    }
}

/// The engine's queued bytes on connection `id` (0 once it is gone).
fn buffered(ep: &Endpoint, id: ConnectionId) -> u64 {
    ep.connection(id).map_or(0, |c| {
        let size = c.snp().config().send_buffer_size;
        size.saturating_sub(c.snp().send_buffer_available()) as u64
    })
}

#[cfg(test)]
mod tests {
    use super::SendCredit;

    #[test]
    fn credit_counts_what_the_shard_has_not_applied_yet() {
        let c = SendCredit::default();
        c.add_queued(100);
        c.add_queued(50);
        assert_eq!(c.in_use(), 150);
        // The shard applied the first command; the engine holds 80 of its bytes.
        c.publish(100, 80);
        assert_eq!(c.in_use(), 50 + 80);
        c.publish(50, 0);
        assert_eq!(c.in_use(), 0);
    }
}
