//! The service's FakeIP half: FakeIpRequest, the grants that wait for a save, and finding the
//! identity behind a FakeIP a Signal is addressed to.
//!
//! ```text
//!  FakeIpRequest(session, n) ─► table.allocate(identity, n)
//!     saved (or no persistence) ─► FakeIpGranted(ip, first n ports)
//!     new, not saved yet ──────► awaiting ─ caller saves fake_ip_snapshot() ─► fake_ips_saved(g)
//!                                            └─► poll_grant() ─► FakeIpGranted to each waiter
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sockworks_engine::wire::fakeip::{FakeIpType, identity_fake_ip};
use sockworks_engine::wire::identity::Identity;

use super::{Service, ms};
use crate::fakeip::{AllocError, FakeIpTable};
use crate::wire::{FakeIpPorts, FakeIpRefuseReason, Message};

/// Requests waiting for a save, at most (the oldest is dropped beyond: its peer asks again).
const AWAITING_CAP: usize = 1024;

impl Service {
    /// The FakeIP allocations.
    pub fn fake_ips(&self) -> &FakeIpTable {
        &self.fake_ips
    }

    /// Replaces the allocations with `table` (loaded from the state file at start).
    pub fn set_fake_ips(&mut self, table: FakeIpTable) {
        self.fake_ips = table;
        self.awaiting.clear();
    }

    /// The state file's text and its generation, when something changed since the last
    /// [`Service::fake_ips_saved`] (with persistence off there is nothing to save).
    pub fn fake_ip_snapshot(&self) -> Option<(u64, String)> {
        (self.config.persist_fakeips && self.fake_ips.dirty())
            .then(|| (self.fake_ips.generation(), self.fake_ips.to_text()))
    }

    /// The snapshot of `generation` is durable: allocations it covers may be granted
    /// ([`Service::poll_grant`]).
    pub fn fake_ips_saved(&mut self, generation: u64) {
        self.fake_ips.mark_saved(generation);
    }

    /// The next grant that waited for a save, written into `out`; returns where it goes.
    /// Grants for peers no longer registered (or still not saved) are skipped or kept.
    pub fn poll_grant(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<SocketAddr> {
        let now_ms = ms(now);
        for _ in 0..self.awaiting.len() {
            let (addr, identity, n) = self.awaiting.pop_front()?;
            if !self.fake_ips.is_saved(&identity) {
                self.awaiting.push_back((addr, identity, n));
                continue;
            }
            let live = self
                .by_addr
                .get(&addr)
                .is_some_and(|e| e.identity == identity && e.expires_ms > now_ms);
            if !live {
                continue;
            }
            let grant = self.grant(&identity, n)?;
            grant.encode(out).ok()?;
            self.stats.fakeip_granted += 1;
            return Some(addr);
        }
        None
    }

    /// A FakeIpRequest from `from`.
    pub(super) fn fake_ip_request(
        &mut self,
        now: Duration,
        from: SocketAddr,
        session: u64,
        num_ports: u8,
    ) -> Option<Message<'static>> {
        let Some(entry) = self.entry(now, from, session) else {
            return self.unknown_sender();
        };
        let identity = entry.identity.clone();
        match self.fake_ips.allocate(&identity, usize::from(num_ports)) {
            Ok(_) => {}
            Err(e) => {
                self.stats.fakeip_refused += 1;
                let reason = match e {
                    AllocError::BadPortCount => FakeIpRefuseReason::BadRequest,
                    _ => FakeIpRefuseReason::Full,
                };
                return Some(Message::FakeIpRefused { reason });
            }
        }
        if self.config.persist_fakeips && !self.fake_ips.is_saved(&identity) {
            self.awaiting.retain(|(a, _, _)| *a != from);
            if self.awaiting.len() >= AWAITING_CAP {
                self.awaiting.pop_front();
            }
            self.awaiting.push_back((from, identity, num_ports));
            return None;
        }
        self.stats.fakeip_granted += 1;
        self.grant(&identity, num_ports)
    }

    /// The grant of `identity`'s allocation with its first `n` ports.
    fn grant(&self, identity: &str, n: u8) -> Option<Message<'static>> {
        let a = self.fake_ips.get(identity)?;
        let n = usize::from(n).min(a.ports.len());
        Some(Message::FakeIpGranted {
            ip: a.ip,
            ports: FakeIpPorts::new(&a.ports[..n]),
        })
    }

    /// The identity owning the global FakeIP `id` names, if `id` is one and it is allocated.
    pub(super) fn fake_ip_owner(&self, id: &Identity) -> Option<Arc<str>> {
        let (addr, kind) = identity_fake_ip(id)?;
        if kind != FakeIpType::GlobalIpv4 {
            return None;
        }
        self.fake_ips.owner(addr).cloned()
    }
}
