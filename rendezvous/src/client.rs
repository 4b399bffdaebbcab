//! The peer side: registers one identity with the service and keeps it registered (refresh
//! every interval, register again at once after UnknownSender or unanswered refreshes), sends
//! signals, and hands received ones to the application on a channel.
//!
//! ```text
//!  any thread ── send_signal ──► socket (MSG_DONTWAIT) ──────────────► service
//!                  └─ not registered yet: small pending queue, flushed on RegisterOk
//!  client thread ◄─ socket ◄──────────── Challenge, RegisterOk, Deliver, UnknownPeer, ...
//!       └─► mpsc::Receiver<Incoming> (bounded; full: the signal is dropped, as on a lossy path)
//! ```
//! Signals are best-effort: GNS's P2P protocol resends what it needs. A FakeIP request
//! ([`RendezvousClient::request_fake_ip`]) is resent until the service answers or its deadline
//! passes, and its outcome arrives on the same channel.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sockworks_engine::wire::identity::Identity;

use crate::auth::ClientAuth;
use crate::clock;
use crate::wire::{
    FakeIpRefuseReason, MAX_DATAGRAM_LEN, MAX_FAKEIP_PORTS, MAX_IDENTITY_LEN, MAX_PAYLOAD_LEN,
    Message, RefuseReason,
};

/// Received signals and notices waiting for the application, at most.
const INCOMING_CAP: usize = 1024;
/// Signals queued while not registered, at most (the oldest is dropped beyond).
const PENDING_CAP: usize = 64;
/// First wait for an answer to Hello, Register or Refresh; doubled per miss.
const RETRY: Duration = Duration::from_millis(250);
/// Unanswered refreshes after which the registration is taken as lost.
const MAX_REFRESH_MISSES: u32 = 3;

/// How to reach the service and whom to register as.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The service's address.
    pub server: SocketAddr,
    /// Our GNS identity string (`str:alice`).
    pub identity: String,
    /// Certificate and key, for a service that requires them.
    pub auth: Option<ClientAuth>,
    /// Refresh interval (the service's announced interval wins if shorter).
    pub reregister: Duration,
}

impl ClientConfig {
    /// Unauthenticated, refreshing every 10 s.
    pub fn new(server: SocketAddr, identity: impl Into<String>) -> Self {
        Self {
            server,
            identity: identity.into(),
            auth: None,
            reregister: Duration::from_secs(10),
        }
    }
}

/// What the service tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A signal from a registered peer (feed it to `ReceivedP2PCustomSignal`).
    Signal {
        /// The sender's identity, as the service registered it.
        from: String,
        /// The opaque signal.
        payload: Vec<u8>,
    },
    /// A signal we sent went to an identity that is not registered.
    Unknown {
        /// The identity as we named it.
        to: String,
    },
    /// The service refused our registration (retried every interval).
    Refused {
        /// Why.
        reason: RefuseReason,
    },
    /// Our FakeIP request was granted: the same address and ports every time we ask.
    FakeIp {
        /// The global FakeIP.
        ip: Ipv4Addr,
        /// As many ports as asked for.
        ports: Vec<u16>,
    },
    /// Our FakeIP request failed.
    FakeIpFailed {
        /// Why.
        reason: FakeIpFailure,
    },
}

/// Why a FakeIP request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeIpFailure {
    /// The service refused it.
    Refused(FakeIpRefuseReason),
    /// The service refused our registration, so we cannot ask.
    NotRegistered(RefuseReason),
    /// No answer before the deadline (service unreachable, or one that has no FakeIPs).
    Timeout,
}

/// A FakeIP request waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct FakeIpAsk {
    ports: u8,
    deadline: Instant,
    next_send: Instant,
    sends: u32,
}

struct Shared {
    socket: UdpSocket,
    server: SocketAddr,
    /// 0 until registered.
    session: AtomicU64,
    stop: AtomicBool,
    pending: Mutex<VecDeque<(String, Vec<u8>)>>,
    /// A FakeIP request for the client thread to take up.
    fake_ip: Mutex<Option<FakeIpAsk>>,
}

impl Shared {
    /// Sends without ever blocking the caller (a full socket buffer drops the datagram).
    fn send(&self, datagram: &[u8]) {
        let _ = socket2::SockRef::from(&self.socket).send_to_with_flags(
            datagram,
            &self.server.into(),
            libc::MSG_DONTWAIT,
        );
    }

    fn send_signal(&self, session: u64, to: &str, payload: &[u8]) {
        let mut out = Vec::with_capacity(payload.len() + 32);
        if (Message::Signal {
            session,
            to,
            payload,
        })
        .encode(&mut out)
        .is_ok()
        {
            self.send(&out);
        }
    }
}

/// A registration with the rendezvous service, kept alive by one background thread. Dropping
/// it unregisters and stops the thread.
pub struct RendezvousClient {
    shared: Arc<Shared>,
    identity: String,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RendezvousClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RendezvousClient")
            .field("identity", &self.identity)
            .field("server", &self.shared.server)
            .field("registered", &self.registered())
            .finish()
    }
}

impl RendezvousClient {
    /// Binds a UDP socket, starts the thread and begins registering. Fails for an identity GNS
    /// cannot parse, or if the socket or thread cannot be created.
    pub fn start(config: ClientConfig) -> io::Result<(Self, Receiver<Incoming>)> {
        if config.identity.len() > MAX_IDENTITY_LEN || Identity::parse(&config.identity).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a usable identity: {:?}", config.identity),
            ));
        }
        let any: IpAddr = match config.server {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind((any, 0))?;
        let shared = Arc::new(Shared {
            socket,
            server: config.server,
            session: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            pending: Mutex::new(VecDeque::new()),
            fake_ip: Mutex::new(None),
        });
        let (tx, rx) = sync_channel(INCOMING_CAP);
        let identity = config.identity.clone();
        let worker = Worker::new(shared.clone(), config, tx);
        let thread = std::thread::Builder::new()
            .name("rendezvous-client".into())
            .spawn(move || worker.run())?;
        Ok((
            Self {
                shared,
                identity,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Relays `payload` to the peer registered as `to_identity`. Never blocks; callable from
    /// any thread (GNS's `SendSignal`). Before registration completes the signal is queued
    /// (a few at most). `false` only for a payload or identity over the protocol's limits, or
    /// after the client stopped: GNS treats `false` as fatal to the connection.
    pub fn send_signal(&self, to_identity: &str, payload: &[u8]) -> bool {
        if to_identity.len() > MAX_IDENTITY_LEN
            || payload.len() > MAX_PAYLOAD_LEN
            || self.shared.stop.load(Ordering::Relaxed)
        {
            return false;
        }
        let session = self.shared.session.load(Ordering::Acquire);
        if session != 0 {
            self.shared.send_signal(session, to_identity, payload);
            return true;
        }
        let Ok(mut pending) = self.shared.pending.lock() else {
            return false;
        };
        // Registered meanwhile? The thread stores the session before it flushes under this
        // lock, so reading it here cannot strand the signal in the queue.
        let session = self.shared.session.load(Ordering::Acquire);
        if session != 0 {
            drop(pending);
            self.shared.send_signal(session, to_identity, payload);
            return true;
        }
        if pending.len() >= PENDING_CAP {
            pending.pop_front();
        }
        pending.push_back((to_identity.to_owned(), payload.to_vec()));
        true
    }

    /// Asks the service for our identity's global FakeIP with `num_ports` ports (1 to 4); the
    /// answer arrives as [`Incoming::FakeIp`] or [`Incoming::FakeIpFailed`] (after `timeout`
    /// without one). The request is resent until answered; a new call replaces one in flight.
    /// False for a bad port count or after the client stopped.
    pub fn request_fake_ip(&self, num_ports: u8, timeout: Duration) -> bool {
        if !(1..=MAX_FAKEIP_PORTS).contains(&usize::from(num_ports))
            || self.shared.stop.load(Ordering::Relaxed)
        {
            return false;
        }
        let now = clock::now();
        let Ok(mut ask) = self.shared.fake_ip.lock() else {
            return false;
        };
        *ask = Some(FakeIpAsk {
            ports: num_ports,
            deadline: now + timeout,
            next_send: now,
            sends: 0,
        });
        drop(ask);
        self.wake();
        true
    }

    /// Wakes the client thread from its receive with an empty datagram to its own socket.
    fn wake(&self) {
        if let Ok(local) = self.shared.socket.local_addr() {
            let ip: IpAddr = match local.ip() {
                IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(v6) if v6.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
                ip => ip,
            };
            let _ = self.shared.socket.send_to(&[], (ip, local.port()));
        }
    }

    /// Whether the service has confirmed our registration (and not since said otherwise).
    pub fn registered(&self) -> bool {
        self.shared.session.load(Ordering::Acquire) != 0
    }

    /// The identity we register as.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The local address of the client's socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.socket.local_addr()
    }
}

impl Drop for RendezvousClient {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let session = self.shared.session.swap(0, Ordering::AcqRel);
        let mut out = Vec::new();
        if session != 0 && (Message::Unregister { session }).encode(&mut out).is_ok() {
            self.shared.send(&out);
        }
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The client thread's state.
struct Worker {
    shared: Arc<Shared>,
    config: ClientConfig,
    tx: SyncSender<Incoming>,
    interval: Duration,
    next_action: Instant,
    /// Unanswered Hello/Register (while unregistered) or Refresh (while registered).
    misses: u32,
    out: Vec<u8>,
    /// The FakeIP request in flight.
    fake_ip: Option<FakeIpAsk>,
}

impl Worker {
    fn new(shared: Arc<Shared>, config: ClientConfig, tx: SyncSender<Incoming>) -> Self {
        Self {
            interval: config.reregister.max(Duration::from_millis(100)),
            shared,
            config,
            tx,
            next_action: clock::now(),
            misses: 0,
            out: Vec::with_capacity(MAX_DATAGRAM_LEN),
            fake_ip: None,
        }
    }

    fn session(&self) -> u64 {
        self.shared.session.load(Ordering::Acquire)
    }

    fn send(&mut self, msg: Message<'_>) {
        if msg.encode(&mut self.out).is_ok() {
            self.shared.send(&self.out);
        }
    }

    fn retry_delay(&self) -> Duration {
        (RETRY * 2u32.saturating_pow(self.misses.min(8))).min(self.interval)
    }

    fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
        while !self.shared.stop.load(Ordering::Acquire) {
            let now = clock::now();
            if now >= self.next_action {
                self.on_timer(now);
            }
            self.fake_ip_turn(now);
            let next = self.fake_ip.map_or(self.next_action, |a| {
                self.next_action.min(a.next_send).min(a.deadline)
            });
            let wait = next
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), Duration::from_secs(1));
            let _ = self.shared.socket.set_read_timeout(Some(wait));
            match self.shared.socket.recv_from(&mut buf) {
                Ok((n, from)) if from == self.shared.server => {
                    if let Some(datagram) = buf.get(..n) {
                        self.on_datagram(datagram);
                    }
                }
                _ => {}
            }
        }
    }

    fn on_timer(&mut self, now: Instant) {
        let session = self.session();
        if session != 0 && self.misses >= MAX_REFRESH_MISSES {
            // The service is gone or restarted without telling us: register from scratch.
            self.shared.session.store(0, Ordering::Release);
            self.misses = 0;
        }
        let session = self.session();
        if session == 0 {
            self.send(Message::Hello);
        } else {
            self.send(Message::Refresh { session });
        }
        self.next_action = now + self.retry_delay();
        self.misses = self.misses.saturating_add(1);
    }

    fn on_datagram(&mut self, datagram: &[u8]) {
        let Ok(msg) = Message::decode(datagram) else {
            return;
        };
        match msg {
            Message::Challenge { cookie, .. } if self.session() == 0 => {
                let signature = self
                    .config
                    .auth
                    .as_ref()
                    .map(|a| a.sign(cookie, &self.config.identity));
                let auth = self.config.auth.clone();
                let identity = self.config.identity.clone();
                self.send(Message::Register {
                    cookie,
                    identity: &identity,
                    cert: auth.as_ref().map_or(&[][..], |a| a.cert_bytes()),
                    signature: signature.as_ref().map_or(&[][..], |s| &s[..]),
                });
            }
            Message::RegisterOk {
                session,
                interval_secs,
                ..
            } if session != 0 => {
                let announced = Duration::from_secs(u64::from(interval_secs.max(1)));
                self.interval = self
                    .config
                    .reregister
                    .min(announced)
                    .max(Duration::from_millis(100));
                self.shared.session.store(session, Ordering::Release);
                self.misses = 0;
                self.next_action = clock::now() + self.interval;
                self.flush_pending(session);
                // A FakeIP request waiting for the registration goes out now.
                if let Some(a) = &mut self.fake_ip {
                    a.next_send = clock::now();
                }
            }
            Message::RegisterRefused { reason } => {
                self.shared.session.store(0, Ordering::Release);
                self.misses = 0;
                self.next_action = clock::now() + self.interval;
                self.deliver(Incoming::Refused { reason });
                if self.fake_ip.take().is_some() {
                    self.deliver(Incoming::FakeIpFailed {
                        reason: FakeIpFailure::NotRegistered(reason),
                    });
                }
            }
            Message::FakeIpGranted { ip, ports } if self.fake_ip.is_some() => {
                self.fake_ip = None;
                self.deliver(Incoming::FakeIp {
                    ip,
                    ports: ports.as_slice().to_vec(),
                });
            }
            Message::FakeIpRefused { reason } if self.fake_ip.is_some() => {
                self.fake_ip = None;
                self.deliver(Incoming::FakeIpFailed {
                    reason: FakeIpFailure::Refused(reason),
                });
            }
            Message::UnknownSender => {
                // Our registration is gone (service restart, expiry): register again at once.
                self.shared.session.store(0, Ordering::Release);
                self.misses = 0;
                self.on_timer(clock::now());
            }
            Message::Deliver { from, payload } => self.deliver(Incoming::Signal {
                from: from.to_owned(),
                payload: payload.to_vec(),
            }),
            Message::UnknownPeer { to } => self.deliver(Incoming::Unknown { to: to.to_owned() }),
            _ => {}
        }
    }

    /// Takes up a new FakeIP request, sends the one in flight when due (once registered;
    /// retries back off from [`RETRY`]), and gives up at its deadline.
    fn fake_ip_turn(&mut self, now: Instant) {
        if let Ok(mut new) = self.shared.fake_ip.lock()
            && let Some(ask) = new.take()
        {
            self.fake_ip = Some(ask);
        }
        let Some(mut ask) = self.fake_ip else {
            return;
        };
        if now >= ask.deadline {
            self.fake_ip = None;
            self.deliver(Incoming::FakeIpFailed {
                reason: FakeIpFailure::Timeout,
            });
            return;
        }
        let session = self.session();
        if session == 0 {
            // Sent once the registration holds (RegisterOk makes it due).
            ask.next_send = ask.deadline;
        } else if now >= ask.next_send {
            self.send(Message::FakeIpRequest {
                session,
                num_ports: ask.ports,
            });
            ask.next_send = now + RETRY * 2u32.saturating_pow(ask.sends.min(5));
            ask.sends = ask.sends.saturating_add(1);
        }
        self.fake_ip = Some(ask);
    }

    fn flush_pending(&mut self, session: u64) {
        let pending = match self.shared.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        for (to, payload) in pending {
            self.shared.send_signal(session, &to, &payload);
        }
    }

    fn deliver(&self, incoming: Incoming) {
        // A full channel drops, like a lossy path; a dropped receiver just discards.
        match self.tx.try_send(incoming) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
