//! FakeIP (P2P spec §5): IPv4-shaped names for peers, so code that identifies hosts by
//! address can run over P2P. Our global FakeIP comes from the rendezvous service
//! (`BeginAsyncRequestFakeIP`); connections to a FakeIP are P2P connections signaled through
//! it to whoever owns that address.
//!
//! ```text
//!  begin_async_request_fake_ip(n) ─► rendezvous client ─► service: FakeIpRequest
//!      relay thread ◄─ FakeIp | FakeIpFailed ─► on_result: stored, queued ─► run_callbacks (207)
//!  connect_by_ip_address(169.254.x.y:p) ─► connect_p2p_with(peer = ip:169.254.x.y:p,
//!      vports -1, from_fakeip = ours) ─► signals to "ip:169.254.x.y:p" ─► service ─► owner
//!  owner: received_signal ─► route_signal: to_identity is our FakeIP port i ─► request
//!      rewritten to local-only vport 0x7fffff00 + i ─► the fake port's listen socket
//! ```
//!
//! The initiator's identity in `SteamNetConnectionInfo_t` is the FakeIP until the answer
//! names the real one (the engine adopts it). Each side remembers the peer's FakeIP per
//! connection (`GetRemoteFakeIPForConnection`); an initiator without a global FakeIP is named
//! by a local one ([`names`]). [`udp`] is `ISteamNetworkingFakeUDPPort`.

pub(crate) mod names;
pub(crate) mod udp;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::SegQueue;
use prost::Message as _;
use rustc_hash::FxHashMap;
use sockworks_engine::wire::fakeip::{
    FakeIpType, GLOBAL_FAKE_PORT_0, MAX_PORTS, addr_fake_ip_type, fake_ip_identity, fake_ip_type,
    identity_fake_ip, v4,
};
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::rendezvous::P2pRendezvous;

use crate::config::ConfigValue;
use crate::handles::{Connection, ListenSocket};
use crate::p2p::P2pConnectArgs;
use crate::result::EResult;
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::{lock, read};

pub use udp::{
    CLEANUP_DELAY as FAKE_UDP_CLEANUP_DELAY, FakeUdpMessage, FakeUdpPort,
    IDLE_TIMEOUT as FAKE_UDP_IDLE_TIMEOUT, MAX_MESSAGE_SIZE as MAX_FAKE_UDP_MESSAGE_SIZE,
};

/// `SteamNetworkingFakeIPResult_t`: the outcome of `BeginAsyncRequestFakeIP`, and what
/// `GetFakeIP` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIpResult {
    /// `Ok`, or why not (the SDK's values where it has them): `Busy` (still in flight),
    /// `InvalidParam` (bad port index), `NoMatch` (never requested), `LimitExceeded` (a
    /// request after one succeeded, or the service's table is full), and ours: `Timeout`
    /// (no answer from the service), `AccessDenied` (it refused our registration), `Fail`.
    pub result: EResult,
    /// Our identity.
    pub identity: Option<Identity>,
    /// The FakeIP (unspecified unless `Ok`).
    pub ip: Ipv4Addr,
    /// Its ports, from the index asked for (empty unless `Ok`).
    pub ports: Vec<u16>,
}

impl FakeIpResult {
    fn failed(result: EResult, identity: Option<Identity>) -> Self {
        FakeIpResult {
            result,
            identity,
            ip: Ipv4Addr::UNSPECIFIED,
            ports: Vec::new(),
        }
    }

    /// The address of port `i` of the result, if it has one.
    pub fn addr(&self, i: usize) -> Option<SocketAddrV4> {
        let port = *self.ports.get(i)?;
        (self.result == EResult::Ok).then(|| SocketAddrV4::new(self.ip, port))
    }
}

/// The FakeIP-result callback (`Callback_FakeIPResult`, 207), called from `run_callbacks`.
pub type FakeIpResultFn = Arc<dyn Fn(&FakeIpResult) + Send + Sync>;

/// GNS's `GetIPv4FakeIPType` (`ISteamNetworkingUtils`); see
/// `sockworks::engine::wire::fakeip` for the ranges.
pub fn ipv4_fake_ip_type(ip: Ipv4Addr) -> FakeIpType {
    fake_ip_type(ip)
}

/// GNS's `IsFakeIPv4`: a global or local FakeIP.
pub fn is_fake_ipv4(ip: Ipv4Addr) -> bool {
    fake_ip_type(ip) > FakeIpType::NotFake
}

/// The request and its last outcome.
#[derive(Default)]
struct Request {
    pending: bool,
    /// The last outcome (all ports).
    last: Option<FakeIpResult>,
    /// The last successful one: what incoming requests are matched against, kept while a
    /// new request is in flight.
    allocation: Option<(Ipv4Addr, Vec<u16>)>,
}

/// The instance's FakeIP state, shared by application threads and the rendezvous thread.
#[derive(Default)]
pub(crate) struct FakeIpShared {
    request: Mutex<Request>,
    /// Ports of the latest request: fake port indexes below it are valid.
    requested_ports: AtomicUsize,
    /// Outcomes waiting for `run_callbacks`.
    events: SegQueue<FakeIpResult>,
    /// Connection handle ─► the peer's FakeIP.
    remote: Mutex<FxHashMap<u32, SocketAddrV4>>,
    names: Mutex<names::Names>,
    /// FakeUDP ports by virtual port.
    pub(crate) udp: udp::Registry,
}

impl FakeIpShared {
    /// Connection `id` reached us from `remote` (initiated by `identity`).
    pub(crate) fn set_remote(&self, id: u32, remote: SocketAddrV4, identity: &Identity) {
        if fake_ip_type(*remote.ip()) == FakeIpType::GlobalIpv4 {
            lock(&self.names).learn(*remote.ip(), identity);
        }
        lock(&self.remote).insert(id, remote);
    }

    /// Connection `id` goes to `remote`.
    pub(crate) fn set_remote_addr(&self, id: u32, remote: SocketAddrV4) {
        lock(&self.remote).insert(id, remote);
    }

    /// The peer's FakeIP of connection `id`.
    pub(crate) fn remote(&self, id: u32) -> Option<SocketAddrV4> {
        lock(&self.remote).get(&id).copied()
    }

    /// The application closed connection `id`.
    pub(crate) fn forget(&self, id: u32) {
        lock(&self.remote).remove(&id);
    }

    /// The index of our fake port `addr`, if it is one of our allocation's.
    fn port_index(&self, addr: SocketAddrV4) -> Option<usize> {
        let r = lock(&self.request);
        let (ip, ports) = r.allocation.as_ref()?;
        if ip != addr.ip() {
            return None;
        }
        ports.iter().position(|&p| p == addr.port())
    }

    /// Our FakeIP port `idx` as `from_fakeip` writes it; Busy while the allocation is in
    /// flight, InvalidState without one.
    pub(crate) fn our_port(&self, idx: usize) -> Result<SocketAddrV4, EResult> {
        let r = lock(&self.request);
        match &r.allocation {
            Some((ip, ports)) => ports
                .get(idx)
                .map(|&p| SocketAddrV4::new(*ip, p))
                .ok_or(EResult::InvalidParam),
            None if r.pending => Err(EResult::Busy),
            None => Err(EResult::InvalidState),
        }
    }

    /// Fake port indexes below this are valid.
    pub(crate) fn requested_ports(&self) -> usize {
        self.requested_ports.load(Ordering::Acquire)
    }
}

/// What to do with a received signal ([`route_signal`]).
pub(crate) enum FakeRoute {
    /// Not a new request to a FakeIP: as it is.
    Pass,
    /// A new request to one of our fake ports, rewritten to its local virtual port.
    Rewritten {
        /// The signal to hand the shard.
        signal: Vec<u8>,
        /// The initiator's FakeIP (its global one, or the local one we name it by).
        remote: SocketAddrV4,
    },
    /// Addressed to a FakeIP that is not ours, or with a bad `from_fakeip`: dropped (GNS
    /// returns false).
    Drop,
}

/// GNS's `InternalReceivedP2PSignal` FakeIP step: a `connect_request` whose `to_identity` is
/// one of our FakeIPs goes to fake port `i` (virtual port `0x7fffff00 + i`, whatever virtual
/// ports it carries); its `from_fakeip` must be a global FakeIP.
pub(crate) fn route_signal(sh: &Shared, msg: &P2pRendezvous) -> FakeRoute {
    if msg.to_connection_id.is_some() {
        return FakeRoute::Pass;
    }
    let Some(req) = &msg.connect_request else {
        return FakeRoute::Pass;
    };
    let to = msg
        .to_identity
        .as_deref()
        .and_then(|s| Identity::parse(s).ok())
        .and_then(|id| identity_fake_ip(&id));
    let Some((to, _)) = to else {
        return FakeRoute::Pass;
    };
    let Ok(from) = sockworks_engine::proto::p2p::route::from_identity(msg) else {
        // The shard refuses it with the right reason.
        return FakeRoute::Pass;
    };
    let Some(idx) = sh.fake_ip.port_index(to) else {
        tracing::warn!("Ignoring P2P connect request from {from} to FakeIP {to}: not one of ours");
        return FakeRoute::Drop;
    };
    let remote = match &req.from_fakeip {
        Some(s) => match s.parse::<SocketAddrV4>() {
            Ok(a) if fake_ip_type(*a.ip()) == FakeIpType::GlobalIpv4 => a,
            _ => {
                tracing::warn!("Ignoring P2P connect request from {from}: bad from_fakeip {s:?}");
                return FakeRoute::Drop;
            }
        },
        None => lock(&sh.fake_ip.names).local_name(&from),
    };
    let mut rewritten = msg.clone();
    if let Some(r) = &mut rewritten.connect_request {
        // invariant: idx < MAX_PORTS (4), so the sum is a small positive i32.
        r.to_virtual_port = u32::try_from(GLOBAL_FAKE_PORT_0 + idx as i32).ok();
        r.from_virtual_port = None;
    }
    FakeRoute::Rewritten {
        signal: rewritten.encode_to_vec(),
        remote,
    }
}

/// The rendezvous service answered our request (or the client gave up).
pub(crate) fn on_result(sockets: &Sockets, outcome: Result<(Ipv4Addr, Vec<u16>), EResult>) {
    let sh = sockets.shared();
    let identity = sockets.get_identity();
    let result = {
        let mut r = lock(&sh.fake_ip.request);
        if !r.pending {
            return;
        }
        r.pending = false;
        let result = match outcome {
            Ok((ip, ports)) => {
                r.allocation = Some((ip, ports.clone()));
                FakeIpResult {
                    result: EResult::Ok,
                    identity,
                    ip,
                    ports,
                }
            }
            Err(e) => FakeIpResult::failed(e, identity),
        };
        r.last = Some(result.clone());
        result
    };
    tracing::info!(
        "FakeIP request: {:?} {}:{:?}",
        result.result,
        result.ip,
        result.ports
    );
    sh.fake_ip.events.push(result);
    sh.activity.bump();
}

impl Sockets {
    /// `BeginAsyncRequestFakeIP`: asks the rendezvous service for our global FakeIP with
    /// `num_ports` ports (1 to 4). The outcome arrives through `Callback_FakeIPResult`
    /// ([`ConfigValue::FakeIpResult`]) from `run_callbacks`, and [`Sockets::get_fake_ip`].
    /// False for a bad port count, without a rendezvous service (`SocketsConfig::rendezvous`;
    /// GNS: without Steam), or while a request is in flight. A request after one succeeded
    /// is answered `LimitExceeded` (the SDK's rule) and changes nothing.
    pub fn begin_async_request_fake_ip(&self, num_ports: i32) -> bool {
        let sh = self.shared();
        let Ok(n) = u8::try_from(num_ports) else {
            return false;
        };
        if !(1..=MAX_PORTS).contains(&usize::from(n)) {
            return false;
        }
        let mut r = lock(&sh.fake_ip.request);
        if r.pending {
            return false;
        }
        if sh.rendezvous.get().is_some() && r.allocation.is_some() {
            drop(r);
            let again = FakeIpResult::failed(EResult::LimitExceeded, self.get_identity());
            sh.fake_ip.events.push(again);
            sh.activity.bump();
            return true;
        }
        if !crate::p2p_rendezvous::request_fake_ip(self, n) {
            tracing::warn!("FakeIP allocation needs a rendezvous service (SocketsConfig)");
            return false;
        }
        r.pending = true;
        sh.fake_ip
            .requested_ports
            .store(usize::from(n), Ordering::Release);
        true
    }

    /// `GetFakeIP`: our FakeIP with its ports from index `first_port` on. `Busy` while the
    /// request is in flight, `InvalidParam` for an index beyond the ports, `NoMatch` before
    /// any request, else the request's outcome.
    pub fn get_fake_ip(&self, first_port: i32) -> FakeIpResult {
        let identity = self.get_identity();
        let r = lock(&self.shared().fake_ip.request);
        let Ok(first) = usize::try_from(first_port) else {
            return FakeIpResult::failed(EResult::InvalidParam, identity);
        };
        if first >= MAX_PORTS {
            return FakeIpResult::failed(EResult::InvalidParam, identity);
        }
        if r.pending {
            return FakeIpResult::failed(EResult::Busy, identity);
        }
        match &r.last {
            None => FakeIpResult::failed(EResult::NoMatch, identity),
            Some(last) if last.result != EResult::Ok => last.clone(),
            Some(last) if first >= last.ports.len() => {
                FakeIpResult::failed(EResult::InvalidParam, identity)
            }
            Some(last) => FakeIpResult {
                ports: last.ports[first..].to_vec(),
                ..last.clone()
            },
        }
    }

    /// `CreateListenSocketP2PFakeIP`: listens for connections to our FakeIP's port
    /// `fake_port` (an index into the ports asked for; the request need not have completed).
    /// Its local virtual port is `0x7fffff00 + fake_port`, never sent on the wire.
    /// [`ListenSocket::INVALID`] for an index beyond the ports asked for (or no request yet),
    /// or a port already listened on.
    pub fn create_listen_socket_p2p_fake_ip(
        &self,
        fake_port: i32,
        options: &[ConfigValue],
    ) -> ListenSocket {
        let requested = self.shared().fake_ip.requested_ports();
        match usize::try_from(fake_port) {
            Ok(i) if i < requested => {
                self.create_listen_socket_p2p_vport(GLOBAL_FAKE_PORT_0 + fake_port, options)
            }
            _ => {
                tracing::warn!(
                    "CreateListenSocketP2PFakeIP: invalid fake port index {fake_port} ({requested} requested)"
                );
                ListenSocket::INVALID
            }
        }
    }

    /// `ConnectByIPAddress` to a FakeIP: a P2P connection to whoever owns it, signaled
    /// through the rendezvous service, with our own global FakeIP (port 0) in the request
    /// when we have one. Only global FakeIPs can be reached; `LocalVirtualPort` may not be
    /// set (GNS).
    pub(crate) fn connect_fake_ip(
        &self,
        addr: SocketAddrV4,
        options: &[ConfigValue],
    ) -> Connection {
        if fake_ip_type(*addr.ip()) != FakeIpType::GlobalIpv4 {
            tracing::warn!("Can only initiate connection to global FakeIP, not {addr}");
            return Connection::INVALID;
        }
        if options
            .iter()
            .any(|o| matches!(o, ConfigValue::LocalVirtualPort(_)))
        {
            tracing::warn!("Cannot specify LocalVirtualPort when connecting by FakeIP");
            return Connection::INVALID;
        }
        let peer = fake_ip_identity(addr);
        let Some(signaling) = crate::p2p_rendezvous::signaling_for(self, &peer) else {
            tracing::warn!("Cannot connect to FakeIP {addr}: no rendezvous service configured");
            return Connection::INVALID;
        };
        let from_fakeip = self
            .shared()
            .fake_ip
            .our_port(0)
            .ok()
            .map(|a| a.to_string());
        let args = P2pConnectArgs {
            peer: Some(&peer),
            remote_vport: -1,
            local_vport: Some(-1),
            from_fakeip,
            silent: false,
        };
        let conn = self.connect_p2p_with(signaling, &args, options);
        if conn != Connection::INVALID {
            self.shared().fake_ip.set_remote_addr(conn.0, addr);
        }
        conn
    }

    /// `GetRemoteFakeIPForConnection`: the peer's FakeIP: the one we connected to, the
    /// global one it sent, or the local one we name it by. `InvalidParam` for an invalid
    /// handle, `IpNotFound` for a connection not made through FakeIP.
    pub fn get_remote_fake_ip_for_connection(
        &self,
        conn: Connection,
    ) -> Result<SocketAddrV4, EResult> {
        let sh = self.shared();
        if sh.conn(conn).is_none() {
            return Err(EResult::InvalidParam);
        }
        sh.fake_ip.remote(conn.0).ok_or(EResult::IpNotFound)
    }

    /// `ISteamNetworkingUtils::GetRealIdentityForFakeIP`: who a FakeIP stands for, as far as
    /// this instance knows (our own, those of live connections, and recent ones).
    /// `InvalidParam` if `fake_ip` is not a FakeIP, `NoMatch` if it is unknown.
    pub fn get_real_identity_for_fake_ip(&self, fake_ip: SocketAddr) -> Result<Identity, EResult> {
        if addr_fake_ip_type(&fake_ip) <= FakeIpType::NotFake {
            return Err(EResult::InvalidParam);
        }
        let Some(a) = v4(&fake_ip) else {
            return Err(EResult::InvalidParam);
        };
        let sh = self.shared();
        let ours = lock(&sh.fake_ip.request)
            .allocation
            .as_ref()
            .is_some_and(|(ip, _)| ip == a.ip());
        if ours {
            return self.get_identity().ok_or(EResult::NoMatch);
        }
        if let Some(id) = lock(&sh.fake_ip.names).lookup(*a.ip()) {
            return Ok(id.clone());
        }
        // A connection we made to it, once the answer named the peer.
        let conns: Vec<u32> = lock(&sh.fake_ip.remote)
            .iter()
            .filter(|(_, r)| r.ip() == a.ip())
            .map(|(&c, _)| c)
            .collect();
        for c in conns {
            let real = sh
                .conn(Connection(c))
                .and_then(|rec| rec.info.load().identity_remote.clone())
                .filter(|id| identity_fake_ip(id).is_none());
            if let Some(id) = real {
                lock(&sh.fake_ip.names).learn(*a.ip(), &id);
                return Ok(id);
            }
        }
        Err(EResult::NoMatch)
    }

    /// Calls the FakeIP-result callback for each outcome that arrived (from `run_callbacks`).
    pub(crate) fn run_fake_ip_callbacks(&self) {
        let sh = self.shared();
        let queued = sh.fake_ip.events.len();
        if queued == 0 {
            return;
        }
        let cb = read(&sh.global).on_fake_ip_result.clone();
        for _ in 0..queued {
            let Some(ev) = sh.fake_ip.events.pop() else {
                break;
            };
            if let Some(cb) = &cb {
                cb(&ev);
            }
        }
    }
}
