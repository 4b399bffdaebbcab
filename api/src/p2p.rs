//! P2P connections: `CreateListenSocketP2P`, `ConnectP2PCustomSignaling`,
//! `ReceivedP2PCustomSignal` and `ConnectP2P`, over GNS's rendezvous signals and ICE (the
//! engine's `proto::p2p`, `proto::ice` and `proto::endpoint::p2p`).
//!
//! ```text
//!  app ─ connect_p2p_custom_signaling(signaling) ─► shard: P2pConnect ─► signals out:
//!        shard ─► ApiApp::on_tick ─► signaling.send_signal(conn, info, bytes)  (shard thread)
//!  app ─ received_p2p_custom_signal(bytes, ctx) ─► shard: Signal ─► outcome ─► on this thread:
//!        new request ─► ctx.on_connect_request ─► keep / drop / reject
//! ```
//!
//! A signaling object is released (dropped) a while after its connection closes, as GNS
//! releases it after FinWait: late signals from the peer are still answered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rustc_hash::FxHashMap;
use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::proto::endpoint::{P2pConnect, P2pListener, SignalOutcome};
use sockworks_engine::proto::p2p::route::parse_signal;
use sockworks_engine::shard::Command;
use sockworks_engine::time::Timestamp;
use sockworks_engine::wire::identity::Identity;

use crate::config::ConfigValue;
use crate::handles::{Connection, ListenSocket};
use crate::info::ConnectionInfo;
use crate::record::{ConnRecord, ListenRecord};
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::{lock, read, write};

/// `ISteamNetworkingConnectionSignaling`: how one connection's signals reach the peer. It may
/// be called on any thread (a shard's), so it must not call back into [`Sockets`] or wait on
/// a lock a calling thread holds. Dropping it is GNS's `Release`.
pub trait ConnectionSignaling: Send + Sync {
    /// Sends one signal (opaque bytes, best effort). False ends the connection (5002).
    fn send_signal(&self, conn: Connection, info: &ConnectionInfo, msg: &[u8]) -> bool;
}

/// `ISteamNetworkingSignalingRecvContext`: what [`Sockets::received_p2p_custom_signal`] asks
/// the application about a new incoming connection. Lives only for that call.
pub trait SignalingRecvContext {
    /// A peer asks to connect: return the signaling object for the new connection (then
    /// accept it now or in the Connecting callback), or `None` to ignore the request. Closing
    /// `conn` here refuses it, and the refusal goes back through `send_rejection_signal`.
    fn on_connect_request(
        &mut self,
        conn: Connection,
        peer: &Identity,
        local_vport: i32,
    ) -> Option<Arc<dyn ConnectionSignaling>>;

    /// Sends a refusal to a peer that has no connection here.
    fn send_rejection_signal(&mut self, peer: &Identity, msg: &[u8]);
}

/// How long a shard may take to answer a P2P call before the call fails.
const SHARD_WAIT: Duration = Duration::from_secs(2);
/// A closed connection's signaling object is kept this long (GNS: FinWait, 5 s).
const RELEASE_AFTER: Duration = Duration::from_secs(6);

/// A connection's signaling object, and when it may go.
struct Entry {
    signaling: Arc<dyn ConnectionSignaling>,
    release_at: Option<Timestamp>,
}

/// The instance's P2P state shared by application threads and shards.
#[derive(Default)]
pub(crate) struct P2pShared {
    signaling: std::sync::Mutex<FxHashMap<u32, Entry>>,
    /// Entries in `signaling` (read without the lock on every shard turn).
    count: std::sync::atomic::AtomicUsize,
    /// The shards' ICE sockets are bound.
    pub(crate) net: std::sync::OnceLock<Result<(), ()>>,
}

impl P2pShared {
    fn insert(&self, id: u32, signaling: Arc<dyn ConnectionSignaling>) {
        let mut map = lock(&self.signaling);
        map.insert(
            id,
            Entry {
                signaling,
                release_at: None,
            },
        );
        self.count.store(map.len(), Ordering::Release);
    }

    fn get(&self, id: u32) -> Option<Arc<dyn ConnectionSignaling>> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        lock(&self.signaling).get(&id).map(|e| e.signaling.clone())
    }

    /// The application closed `id`: its signaling object goes after FinWait.
    pub(crate) fn closing(&self, id: u32, now: Timestamp) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(e) = lock(&self.signaling).get_mut(&id) {
            e.release_at = Some(now + RELEASE_AFTER);
        }
    }

    fn remove(&self, id: u32) {
        let mut map = lock(&self.signaling);
        map.remove(&id);
        self.count.store(map.len(), Ordering::Release);
    }

    /// Releases the objects whose time has come (dropped outside the lock). Called by the
    /// shards each turn and by `run_callbacks`.
    pub(crate) fn release_due(&self, now: Timestamp) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let gone: Vec<Entry> = {
            let mut map = lock(&self.signaling);
            let due: Vec<u32> = map
                .iter()
                .filter(|(_, e)| e.release_at.is_some_and(|t| t <= now))
                .map(|(&id, _)| id)
                .collect();
            let gone = due.iter().filter_map(|id| map.remove(id)).collect();
            self.count.store(map.len(), Ordering::Release);
            gone
        };
        drop(gone);
    }
}

/// The shard's side: hands every signal the endpoint produced to its connection's signaling
/// object (on the shard thread, as GNS calls `SendSignal` from its service thread).
pub(crate) fn deliver_signals(
    sh: &Shared,
    ep: &mut sockworks_engine::proto::endpoint::Endpoint,
    now: Timestamp,
    shard: usize,
) {
    while let Some((id, bytes)) = ep.poll_signal() {
        let Some(signaling) = sh.p2p.get(id.get()) else {
            continue;
        };
        // The record is taken out first: its name lock is not taken under the table's lock.
        let rec = sh.shards[shard]
            .conns
            .read()
            .ok()
            .and_then(|c| c.get(&id.get()).cloned());
        let info = rec.map_or_else(
            || ConnectionInfo::new(crate::p2p_net::no_route(), ApiState::None, 0),
            |r| r.info(),
        );
        if !signaling.send_signal(Connection(id.get()), &info, &bytes) {
            ep.p2p_signal_failed(now, id);
        }
    }
    sh.p2p.release_due(now);
}

impl Sockets {
    /// `CreateListenSocketP2P`: listens on virtual port `vport` (0..=65535) for P2P requests
    /// that arrive through [`Sockets::received_p2p_custom_signal`] or `ConnectP2P`'s
    /// rendezvous. [`ListenSocket::INVALID`] for a bad port, a port already listened on, or
    /// when no ICE socket can be bound.
    pub fn create_listen_socket_p2p(&self, vport: i32, options: &[ConfigValue]) -> ListenSocket {
        if !(0..=65535).contains(&vport) {
            return ListenSocket::INVALID;
        }
        self.create_listen_socket_p2p_vport(vport, options)
    }

    /// [`Sockets::create_listen_socket_p2p`] on any virtual port (the local-only FakeIP ports
    /// included).
    pub(crate) fn create_listen_socket_p2p_vport(
        &self,
        vport: i32,
        options: &[ConfigValue],
    ) -> ListenSocket {
        let sh = self.shared();
        let Ok(config) = read(&sh.global).with_options(options) else {
            return ListenSocket::INVALID;
        };
        if read(&sh.listen)
            .values()
            .any(|r| r.p2p_vport == Some(vport))
        {
            tracing::warn!("Already have a listen socket on P2P vport {vport}");
            return ListenSocket::INVALID;
        }
        if crate::p2p_net::ensure(sh).is_err() {
            return ListenSocket::INVALID;
        }
        let handle = sh.new_handle();
        let (tx, rx) = std::sync::mpsc::sync_channel(sh.shards.len());
        for i in 0..sh.shards.len() {
            sh.send(
                i,
                Command::P2pListen {
                    vport,
                    listener: Box::new(P2pListener {
                        handle,
                        connection: config.connection,
                        symmetric: config.p2p.symmetric,
                    }),
                    reply: tx.clone(),
                },
            );
        }
        let added: Vec<bool> = (0..sh.shards.len())
            .map(|_| rx.recv_timeout(SHARD_WAIT).unwrap_or(false))
            .collect();
        if !added.iter().all(|&a| a) {
            // Undo a partial add only: where every shard refused, the vport is another
            // listen socket's, which must stay.
            if added.contains(&true) {
                for i in 0..sh.shards.len() {
                    sh.send(i, Command::P2pUnlisten { vport });
                }
            }
            tracing::warn!("Already have a listen socket on P2P vport {vport}");
            return ListenSocket::INVALID;
        }
        let admission = Arc::new(sockworks_engine::proto::admission::Admission::new(
            config.admission,
            0,
        ));
        let rec = ListenRecord {
            addr: crate::p2p_net::no_route(),
            locals: Vec::new(),
            config: std::sync::Mutex::new(config),
            admission,
            p2p_vport: Some(vport),
        };
        write(&sh.listen).insert(handle, Arc::new(rec));
        ListenSocket(handle)
    }

    /// `ConnectP2PCustomSignaling`: connects to `peer` (if `None`, whoever answers) on its
    /// virtual port through the application's `signaling`. [`Connection::INVALID`] when ICE
    /// cannot start (`P2P_Transport_ICE_Enable` 0, or no candidate type allowed) or an option
    /// is invalid. The signaling object is dropped when the connection is gone.
    pub fn connect_p2p_custom_signaling(
        &self,
        signaling: Arc<dyn ConnectionSignaling>,
        peer: Option<&Identity>,
        remote_vport: i32,
        options: &[ConfigValue],
    ) -> Connection {
        let args = P2pConnectArgs {
            peer,
            remote_vport,
            local_vport: None,
            from_fakeip: None,
            silent: false,
        };
        self.connect_p2p_with(signaling, &args, options)
    }

    /// [`Sockets::connect_p2p_custom_signaling`] with the FakeIP extras.
    pub(crate) fn connect_p2p_with(
        &self,
        signaling: Arc<dyn ConnectionSignaling>,
        args: &P2pConnectArgs<'_>,
        options: &[ConfigValue],
    ) -> Connection {
        let (peer, remote_vport) = (args.peer, args.remote_vport);
        let sh = self.shared();
        let Ok(config) = read(&sh.global).with_options(options) else {
            return Connection::INVALID;
        };
        if config.p2p.symmetric && peer.is_none() {
            tracing::warn!("To use symmetric connect, remote identity must be specified");
            return Connection::INVALID;
        }
        if crate::p2p_net::ensure(sh).is_err() {
            return Connection::INVALID;
        }
        let shard = sh.next_client_shard.fetch_add(1, Ordering::Relaxed) % sh.shards.len();
        let Some(id) = sh.allocate_id(shard) else {
            return Connection::INVALID;
        };
        let local_vport = match args.local_vport {
            Some(v) => v,
            None if config.p2p.local_vport >= 0 => config.p2p.local_vport,
            None => remote_vport,
        };
        let mut info = ConnectionInfo::new(crate::p2p_net::no_route(), ApiState::Connecting, 0);
        // The peer as named (a FakeIP until its answer names it), before the shard reports.
        info.identity_remote = peer.cloned();
        let rec = ConnRecord::new(Connection(id), shard, ListenSocket::INVALID, info, &config);
        rec.silent.store(args.silent, Ordering::Release);
        write(&sh.shards[shard].conns).insert(rec);
        sh.p2p.insert(id, signaling);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        sh.send(
            shard,
            Command::P2pConnect {
                id: id.into(),
                connect: Box::new(P2pConnect {
                    remote_identity: peer.cloned(),
                    local_vport,
                    remote_vport,
                    config: Some(config.connection),
                    ice: crate::p2p_net::ice_config(&config.p2p),
                    symmetric: config.p2p.symmetric,
                    from_fakeip: args.from_fakeip.clone(),
                }),
                reply: tx,
            },
        );
        if rx.recv_timeout(SHARD_WAIT).unwrap_or(false) {
            return Connection(id);
        }
        tracing::warn!("ICE failed 3998 ICE not enabled by local user options");
        if let Some(rec) = write(&sh.shards[shard].conns).remove(&id) {
            rec.closed.store(true, Ordering::Release);
        }
        sh.p2p.remove(id);
        sh.send(shard, Command::ReleaseId { id: id.into() });
        Connection::INVALID
    }

    /// `ReceivedP2PCustomSignal`: feeds one signal from the peer. True when it was taken (or
    /// deliberately ignored: an unknown connection gets no answer, so nobody can probe who is
    /// online); false for a malformed or forged signal, or a refused request.
    pub fn received_p2p_custom_signal(
        &self,
        msg: &[u8],
        ctx: &mut dyn SignalingRecvContext,
    ) -> bool {
        self.received_signal(msg, ctx, false)
    }

    /// [`Sockets::received_p2p_custom_signal`]; `listener_required` for default signaling.
    pub(crate) fn received_signal(
        &self,
        msg: &[u8],
        ctx: &mut dyn SignalingRecvContext,
        listener_required: bool,
    ) -> bool {
        let sh = self.shared();
        let Ok(parsed) = parse_signal(msg) else {
            tracing::warn!("Bad P2P signal: not a rendezvous message");
            return false;
        };
        // A request addressed to one of our FakeIPs goes to that fake port's virtual port.
        let (msg, fake_remote) = match crate::fakeip::route_signal(sh, &parsed) {
            crate::fakeip::FakeRoute::Pass => (std::borrow::Cow::Borrowed(msg), None),
            crate::fakeip::FakeRoute::Rewritten { signal, remote } => {
                (std::borrow::Cow::Owned(signal), Some(remote))
            }
            crate::fakeip::FakeRoute::Drop => return false,
        };
        if crate::p2p_net::ensure(sh).is_err() {
            return false;
        }
        let shard = match parsed.to_connection_id {
            Some(id) => sh.shard_of(Connection(id)),
            None => new_request_shard(sh, &parsed),
        };
        if shard >= sh.shards.len() {
            return true;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        sh.send(
            shard,
            Command::Signal {
                data: msg.into_owned(),
                listener_required,
                reply: tx,
            },
        );
        let Ok(outcome) = rx.recv_timeout(SHARD_WAIT) else {
            return false;
        };
        match outcome {
            SignalOutcome::Handled => true,
            SignalOutcome::Bad(e) => {
                tracing::warn!("{e}");
                false
            }
            SignalOutcome::Refused { identity, signal } => {
                ctx.send_rejection_signal(&identity, &signal);
                false
            }
            SignalOutcome::NewRequest {
                connection,
                identity,
                local_vport,
                listener,
            } => {
                let request = NewRequest {
                    shard,
                    id: connection.get(),
                    identity: &identity,
                    local_vport,
                    listener,
                    fake_remote,
                };
                self.new_request(&request, ctx);
                true
            }
        }
    }

    /// A new incoming P2P connection: ask the application, then keep, drop or refuse it.
    /// One of a FakeUDP port's is kept and accepted at once, without callbacks.
    fn new_request(&self, request: &NewRequest<'_>, ctx: &mut dyn SignalingRecvContext) {
        let NewRequest {
            shard,
            id,
            identity,
            local_vport,
            listener,
            fake_remote,
        } = *request;
        let sh = self.shared();
        let listen = listener.map_or(ListenSocket::INVALID, ListenSocket);
        let config = listener
            .and_then(|l| read(&sh.listen).get(&l).map(|r| lock(&r.config).clone()))
            .unwrap_or_else(|| read(&sh.global).clone());
        let mut info = ConnectionInfo::new(crate::p2p_net::no_route(), ApiState::Connecting, 0);
        info.identity_remote = Some(identity.clone());
        info.listen_socket = listen;
        let rec = ConnRecord::new_incoming(Connection(id), shard, listen, info, &config);
        let udp = crate::fakeip::udp::port_of_listener(sh, listen);
        rec.silent.store(udp.is_some(), Ordering::Release);
        if let Some(remote) = fake_remote {
            sh.fake_ip.set_remote(id, remote, identity);
        }
        write(&sh.shards[shard].conns).insert(rec.clone());
        let answer = ctx.on_connect_request(Connection(id), identity, local_vport);
        let closed = rec.is_closed();
        if closed {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            sh.send(
                shard,
                Command::P2pRejection {
                    id: id.into(),
                    reply: tx,
                },
            );
            if let Ok(Some((peer, signal))) = rx.recv_timeout(SHARD_WAIT) {
                ctx.send_rejection_signal(&peer, &signal);
            }
            return;
        }
        match answer {
            Some(signaling) => {
                sh.p2p.insert(id, signaling);
                sh.send(
                    shard,
                    Command::P2pKeep {
                        id: id.into(),
                        ice: Box::new(crate::p2p_net::ice_config(&config.p2p)),
                    },
                );
                if let Some(port) = udp {
                    port.adopt(self, Connection(id), fake_remote);
                }
            }
            None => {
                write(&sh.shards[shard].conns).remove(&id);
                rec.closed.store(true, Ordering::Release);
                sh.send(shard, Command::P2pDrop { id: id.into() });
            }
        }
    }

    /// `ConnectP2P`: connects to `identity`'s virtual port through the instance's rendezvous
    /// service (`SocketsConfig::rendezvous`). [`Connection::INVALID`] without one, as GNS fails
    /// without a signaling callback.
    ///
    /// A FakeIP identity (`ip:169.254.x.y:port`) takes virtual port -1 and connects as
    /// `ConnectByIPAddress` to that FakeIP does (GNS).
    pub fn connect_p2p(
        &self,
        identity: &Identity,
        remote_vport: i32,
        options: &[ConfigValue],
    ) -> Connection {
        if let Some((addr, _)) = sockworks_engine::wire::fakeip::identity_fake_ip(identity) {
            if remote_vport != -1 {
                tracing::warn!("Must specify remote virtual port -1 when connecting by FakeIP!");
                return Connection::INVALID;
            }
            return self.connect_fake_ip(addr, options);
        }
        if !(0..=65535).contains(&remote_vport) {
            return Connection::INVALID;
        }
        let Some(signaling) = crate::p2p_rendezvous::signaling_for(self, identity) else {
            tracing::warn!("Cannot use P2P connectivity. No rendezvous service configured");
            return Connection::INVALID;
        };
        self.connect_p2p_custom_signaling(signaling, Some(identity), remote_vport, options)
    }
}

/// What [`Sockets::connect_p2p_with`] takes beyond the signaling object and options.
pub(crate) struct P2pConnectArgs<'a> {
    /// The peer, if known (a FakeIP identity: learned from its answer).
    pub peer: Option<&'a Identity>,
    /// Its virtual port (-1 for a FakeIP).
    pub remote_vport: i32,
    /// Our virtual port (`None`: `LocalVirtualPort`, else the remote one).
    pub local_vport: Option<i32>,
    /// Our global FakeIP, for the request's `from_fakeip`.
    pub from_fakeip: Option<String>,
    /// No status callbacks (a FakeUDP port's internal connections).
    pub silent: bool,
}

/// A new request as the shard reported it.
#[derive(Clone, Copy)]
struct NewRequest<'a> {
    shard: usize,
    id: u32,
    identity: &'a Identity,
    local_vport: i32,
    listener: Option<u32>,
    /// The initiator's FakeIP (global from `from_fakeip`, else a local one), when it connected
    /// to one of ours.
    fake_remote: Option<std::net::SocketAddrV4>,
}

/// The shard a new request goes to: the same for every retry of one request (its initiator's
/// identity and id), so the retries find the connection the first one made.
fn new_request_shard(
    sh: &Shared,
    msg: &sockworks_engine::wire::rendezvous::P2pRendezvous,
) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    msg.from_identity.hash(&mut h);
    msg.from_connection_id.hash(&mut h);
    (h.finish() % sh.shards.len() as u64) as usize
}
