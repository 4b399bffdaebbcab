//! The service's state machine, sans I/O: one datagram in, at most one datagram out (to the
//! sender, or for a Signal to its target). Time is passed in, as time since the service
//! started (cookies, expiry, rate limits) and Unix seconds (certificate validity).
//!
//! ```text
//!  by_addr:     SocketAddr ─► Entry { identity, session, expiry, token bucket }
//!  by_identity: identity   ─► SocketAddr        (one address per identity, one identity per address)
//! ```
//! Memory is bounded: at most `max_peers` entries, each holding one identity of at most
//! [`MAX_IDENTITY_LEN`](crate::wire::MAX_IDENTITY_LEN) bytes. Nothing is stored for a client
//! before it echoes a cookie (and, with a CA, proves its certificate).
//!
//! FakeIPs ([`fakeip`](crate::fakeip)): a registered peer's FakeIpRequest allocates (or finds)
//! its identity's global FakeIP, at most `max_fakeips` of them; a Signal addressed to
//! `ip:169.254.x.y:port` goes to the identity owning that address and port. With
//! `persist_fakeips`, a new allocation is granted only once the caller saved it
//! ([`Service::fake_ip_snapshot`], [`Service::fake_ips_saved`], [`Service::poll_grant`]), so a
//! peer never holds a FakeIP a restart could give to someone else.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sockworks_engine::crypto::kdf::hmac_sha256;
use sockworks_engine::wire::identity::Identity;

use crate::auth::Verifier;
use crate::cookie::CookieKey;
use crate::fakeip::FakeIpTable;
use crate::wire::{Message, RefuseReason};

mod fakeip;

/// What the service enforces.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Hard cap on registrations; a new identity beyond it is refused with `Full`.
    pub max_peers: usize,
    /// Refresh interval announced to peers.
    pub interval: Duration,
    /// How long a registration lives without a refresh.
    pub ttl: Duration,
    /// Signals per second each peer may send (token bucket refill).
    pub rate: f32,
    /// Token bucket size (signals a peer may send at once).
    pub burst: f32,
    /// Certificate checks; `None` accepts any identity (unauthenticated mode).
    pub verifier: Option<Verifier>,
    /// Secret for cookies and session tokens (random per start).
    pub secret: [u8; 32],
    /// Most identities holding a FakeIP; new ones beyond are refused (`Full`).
    pub max_fakeips: usize,
    /// Grant a new FakeIP only once the caller saved the table (`--fakeip-state`).
    pub persist_fakeips: bool,
}

impl ServiceConfig {
    /// Defaults: 100,000 peers, 10 s interval, 30 s TTL, 50 signals/s (burst 100), no CA,
    /// 40,000 FakeIPs held in memory only.
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            max_peers: 100_000,
            interval: Duration::from_secs(10),
            ttl: Duration::from_secs(30),
            rate: 50.0,
            burst: 100.0,
            verifier: None,
            secret,
            max_fakeips: 40_000,
            persist_fakeips: false,
        }
    }
}

/// Counters since start (what the stats line prints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handled.
    pub datagrams: u64,
    /// Datagrams that did not decode (dropped).
    pub malformed: u64,
    /// Datagrams of a type only the service sends (dropped).
    pub unexpected: u64,
    /// Challenges sent (for Hello, or for a Register with a stale cookie).
    pub challenges: u64,
    /// Register with a cookie we did not issue to that address, or too old.
    pub bad_cookie: u64,
    /// Registrations accepted (new or renewed by Register).
    pub registered: u64,
    /// Refreshes accepted.
    pub refreshed: u64,
    /// Registrations refused because the service is full.
    pub refused_full: u64,
    /// Registrations refused for a malformed identity.
    pub refused_identity: u64,
    /// Registrations refused by the certificate checks.
    pub refused_auth: u64,
    /// Signals relayed.
    pub relayed: u64,
    /// Signals to an identity that is not registered.
    pub unknown_peer: u64,
    /// Signals, refreshes or unregisters from an address without a matching registration.
    pub unknown_sender: u64,
    /// Signals dropped by the per-peer rate limit.
    pub rate_limited: u64,
    /// Registrations removed by Unregister.
    pub unregistered: u64,
    /// Registrations removed because they were not refreshed in time.
    pub expired: u64,
    /// FakeIP requests granted.
    pub fakeip_granted: u64,
    /// FakeIP requests refused (table full, bad port count).
    pub fakeip_refused: u64,
    /// Signals addressed to a FakeIP that were relayed to its owner.
    pub fakeip_relayed: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "datagrams={} malformed={} unexpected={} challenges={} bad_cookie={} registered={} \
             refreshed={} refused_full={} refused_identity={} refused_auth={} relayed={} \
             unknown_peer={} unknown_sender={} rate_limited={} unregistered={} expired={} \
             fakeip_granted={} fakeip_refused={} fakeip_relayed={}",
            self.datagrams,
            self.malformed,
            self.unexpected,
            self.challenges,
            self.bad_cookie,
            self.registered,
            self.refreshed,
            self.refused_full,
            self.refused_identity,
            self.refused_auth,
            self.relayed,
            self.unknown_peer,
            self.unknown_sender,
            self.rate_limited,
            self.unregistered,
            self.expired,
            self.fakeip_granted,
            self.fakeip_refused,
            self.fakeip_relayed
        )
    }
}

struct Entry {
    identity: Arc<str>,
    session: u64,
    /// Milliseconds since start.
    expires_ms: u64,
    tokens: f32,
    refilled_ms: u64,
}

/// The registry and relay.
pub struct Service {
    config: ServiceConfig,
    cookies: CookieKey,
    by_addr: HashMap<SocketAddr, Entry>,
    by_identity: HashMap<Arc<str>, SocketAddr>,
    sessions_issued: u64,
    stats: Stats,
    fake_ips: FakeIpTable,
    /// Requests for allocations not saved yet: (peer address, identity, ports asked).
    awaiting: std::collections::VecDeque<(SocketAddr, Arc<str>, u8)>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("peers", &self.by_addr.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Service {
    /// A service with no registrations.
    pub fn new(config: ServiceConfig) -> Self {
        let key = hmac_sha256(&config.secret, &[b"fakeip-key"]);
        Self {
            fake_ips: FakeIpTable::new(config.max_fakeips, key),
            awaiting: std::collections::VecDeque::new(),
            cookies: CookieKey::new(config.secret),
            config,
            by_addr: HashMap::new(),
            by_identity: HashMap::new(),
            sessions_issued: 0,
            stats: Stats::default(),
        }
    }

    /// Registrations held.
    pub fn peers(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether `addr` holds a registration live at `now` (one a Refresh or Signal from it
    /// with its session would be accepted under).
    pub fn is_registered(&self, now: Duration, addr: SocketAddr) -> bool {
        let now_ms = ms(now);
        self.by_addr
            .get(&addr)
            .is_some_and(|e| e.expires_ms > now_ms)
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Handles one datagram from `from`. `now` is the time since start, `unix_now` the wall
    /// clock in seconds. Writes at most one reply into `out` and returns where to send it.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        unix_now: u64,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        self.stats.datagrams += 1;
        let Ok(msg) = Message::decode(datagram) else {
            self.stats.malformed += 1;
            return None;
        };
        let reply = match msg {
            Message::Hello => self.challenge(now, from),
            Message::Register {
                cookie,
                identity,
                cert,
                signature,
            } => self.register(now, unix_now, from, cookie, identity, cert, signature),
            Message::Refresh { session } => {
                let expires_ms = ms(now + self.config.ttl);
                match self.entry(now, from, session) {
                    Some(e) => {
                        e.expires_ms = expires_ms;
                        let session = e.session;
                        self.stats.refreshed += 1;
                        self.register_ok(session)
                    }
                    None => self.unknown_sender(),
                }
            }
            Message::Signal {
                session,
                to,
                payload,
            } => return self.signal(now, from, session, to, payload, out),
            Message::FakeIpRequest { session, num_ports } => {
                self.fake_ip_request(now, from, session, num_ports)
            }
            Message::Unregister { session } => {
                if self.entry(now, from, session).is_some() {
                    self.remove(from);
                    self.stats.unregistered += 1;
                } else {
                    self.stats.unknown_sender += 1;
                }
                None
            }
            Message::Challenge { .. }
            | Message::RegisterOk { .. }
            | Message::RegisterRefused { .. }
            | Message::Deliver { .. }
            | Message::UnknownPeer { .. }
            | Message::UnknownSender
            | Message::FakeIpGranted { .. }
            | Message::FakeIpRefused { .. } => {
                self.stats.unexpected += 1;
                None
            }
        };
        let reply = reply?;
        // Every reply here is within the protocol's limits by construction.
        reply.encode(out).ok()?;
        Some(from)
    }

    /// Drops registrations not refreshed in time; returns how many.
    pub fn sweep(&mut self, now: Duration) -> usize {
        let now_ms = ms(now);
        let before = self.by_addr.len();
        let by_identity = &mut self.by_identity;
        self.by_addr.retain(|addr, e| {
            let live = e.expires_ms > now_ms;
            if !live && by_identity.get(&e.identity) == Some(addr) {
                by_identity.remove(&e.identity);
            }
            live
        });
        let removed = before - self.by_addr.len();
        self.stats.expired += removed as u64;
        removed
    }

    fn challenge(&mut self, now: Duration, from: SocketAddr) -> Option<Message<'static>> {
        self.stats.challenges += 1;
        Some(Message::Challenge {
            cookie: self.cookies.issue(now, from),
            auth_required: self.config.verifier.is_some(),
        })
    }

    fn register_ok(&self, session: u64) -> Option<Message<'static>> {
        Some(Message::RegisterOk {
            session,
            interval_secs: self.config.interval.as_secs().clamp(1, 0xffff) as u16,
            ttl_secs: self.config.ttl.as_secs().clamp(1, 0xffff) as u16,
        })
    }

    fn unknown_sender(&mut self) -> Option<Message<'static>> {
        self.stats.unknown_sender += 1;
        Some(Message::UnknownSender)
    }

    fn refuse(&mut self, reason: RefuseReason) -> Option<Message<'static>> {
        match reason {
            RefuseReason::Full => self.stats.refused_full += 1,
            RefuseReason::BadIdentity => self.stats.refused_identity += 1,
            _ => self.stats.refused_auth += 1,
        }
        Some(Message::RegisterRefused { reason })
    }

    /// The live entry at `from` if `session` is its session.
    fn entry(&mut self, now: Duration, from: SocketAddr, session: u64) -> Option<&mut Entry> {
        let now_ms = ms(now);
        self.by_addr
            .get_mut(&from)
            .filter(|e| e.session == session && e.expires_ms > now_ms)
    }

    fn remove(&mut self, addr: SocketAddr) {
        if let Some(e) = self.by_addr.remove(&addr)
            && self.by_identity.get(&e.identity) == Some(&addr)
        {
            self.by_identity.remove(&e.identity);
        }
    }

    fn new_session(&mut self) -> u64 {
        self.sessions_issued += 1;
        let mac = hmac_sha256(
            &self.config.secret,
            &[b"session", &self.sessions_issued.to_le_bytes()],
        );
        let mut b = [0u8; 8];
        b.copy_from_slice(&mac[..8]);
        u64::from_le_bytes(b).max(1)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one Register's fields plus the two clocks"
    )]
    fn register(
        &mut self,
        now: Duration,
        unix_now: u64,
        from: SocketAddr,
        cookie: u64,
        identity: &str,
        cert: &[u8],
        signature: &[u8],
    ) -> Option<Message<'static>> {
        if !self.cookies.check(now, from, cookie) {
            self.stats.bad_cookie += 1;
            return self.challenge(now, from);
        }
        let Ok(parsed) = Identity::parse(identity) else {
            return self.refuse(RefuseReason::BadIdentity);
        };
        let canonical = parsed.to_string();
        // A FakeIP stands for another identity: nobody registers as one.
        if canonical.len() > crate::wire::MAX_IDENTITY_LEN
            || sockworks_engine::wire::fakeip::identity_fake_ip(&parsed).is_some()
        {
            return self.refuse(RefuseReason::BadIdentity);
        }
        if let Some(v) = &self.config.verifier
            && let Err(reason) = v.verify(&parsed, identity, cookie, cert, signature, unix_now)
        {
            return self.refuse(reason);
        }
        let now_ms = ms(now);
        let expires_ms = ms(now + self.config.ttl);
        // Same identity, same address: a renewal keeps its session and bucket.
        if let Some(e) = self.by_addr.get_mut(&from)
            && *e.identity == *canonical
        {
            e.expires_ms = expires_ms;
            let session = e.session;
            self.stats.registered += 1;
            return self.register_ok(session);
        }
        // The address changes identity, or the identity moves: drop what they held.
        let moved_from = self.by_identity.get(canonical.as_str()).copied();
        let replaces = self.by_addr.contains_key(&from) || moved_from.is_some();
        if !replaces && self.by_addr.len() >= self.config.max_peers {
            return self.refuse(RefuseReason::Full);
        }
        self.remove(from);
        if let Some(old) = moved_from {
            self.remove(old);
        }
        let identity: Arc<str> = Arc::from(canonical);
        let session = self.new_session();
        self.by_identity.insert(identity.clone(), from);
        self.by_addr.insert(
            from,
            Entry {
                identity,
                session,
                expires_ms,
                tokens: self.config.burst,
                refilled_ms: now_ms,
            },
        );
        self.stats.registered += 1;
        self.register_ok(session)
    }

    fn signal(
        &mut self,
        now: Duration,
        from: SocketAddr,
        session: u64,
        to: &str,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        let (rate, burst) = (self.config.rate, self.config.burst);
        let now_ms = ms(now);
        let Some(sender) = self.entry(now, from, session) else {
            let reply = self.unknown_sender()?;
            reply.encode(out).ok()?;
            return Some(from);
        };
        // Token bucket: refill by elapsed time, spend one per signal.
        let elapsed = now_ms.saturating_sub(sender.refilled_ms) as f32 / 1000.0;
        sender.tokens = (sender.tokens + elapsed * rate).min(burst);
        sender.refilled_ms = now_ms;
        if sender.tokens < 1.0 {
            self.stats.rate_limited += 1;
            return None;
        }
        sender.tokens -= 1.0;
        let from_identity = sender.identity.clone();
        let (target_identity, fake) = match Identity::parse(to) {
            Ok(id) => match self.fake_ip_owner(&id) {
                Some(owner) => (Some(owner), true),
                None => (Some(Arc::from(id.to_string())), false),
            },
            Err(_) => (None, false),
        };
        let target = target_identity
            .and_then(|id| self.by_identity.get(&id).copied())
            .filter(|addr| {
                self.by_addr
                    .get(addr)
                    .is_some_and(|e| e.expires_ms > now_ms)
            });
        let Some(target) = target else {
            self.stats.unknown_peer += 1;
            Message::UnknownPeer { to }.encode(out).ok()?;
            return Some(from);
        };
        Message::Deliver {
            from: &from_identity,
            payload,
        }
        .encode(out)
        .ok()?;
        self.stats.relayed += 1;
        if fake {
            self.stats.fakeip_relayed += 1;
        }
        Some(target)
    }
}

#[cfg(test)]
#[path = "server/tests.rs"]
mod tests;

#[cfg(test)]
#[path = "server/fakeip_tests.rs"]
mod fakeip_tests;
