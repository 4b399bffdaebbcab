//! Which identity a FakeIP stands for, as far as this instance knows: the local FakeIPs it
//! names peers by (peers that reached one of our fake ports without a global FakeIP of their
//! own), and the global ones peers told us (`from_fakeip`) or we reached by address.
//!
//! ```text
//!  local:  identity ─► 169.254.L.L:port   (stable per identity while remembered)
//!  by_ip:  169.254.x.y ─► identity        (local and learned global names; oldest forgotten
//!                                          first beyond CAP)
//! ```
//! GNS: `GetRemoteFakeIPForConnection` ("a FakeIP that is unique locally will be allocated
//! from the local FakeIP address space … they *probably* will return the same FakeIP") and
//! `GetRealIdentityForFakeIP` ("FakeIPs for recently destroyed connections will continue to
//! return results for a little while, but not forever").

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};

use rustc_hash::FxHashMap;
use sockworks_engine::wire::fakeip::{LOCAL_MAX, LOCAL_MIN, MIN_PORT};
use sockworks_engine::wire::identity::Identity;

/// Names remembered at most (local and learned together).
pub(crate) const CAP: usize = 4096;

/// The instance's FakeIP names.
#[derive(Default)]
pub(crate) struct Names {
    local: FxHashMap<Identity, SocketAddrV4>,
    by_ip: FxHashMap<Ipv4Addr, Identity>,
    /// `by_ip`'s keys, oldest first.
    order: VecDeque<Ipv4Addr>,
}

fn hash(identity: &Identity, salt: u32) -> u32 {
    let mut h = rustc_hash::FxHasher::default();
    identity.to_string().hash(&mut h);
    salt.hash(&mut h);
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

impl Names {
    /// The local FakeIP naming `identity`: the one it had, or a new one.
    pub(crate) fn local_name(&mut self, identity: &Identity) -> SocketAddrV4 {
        if let Some(a) = self.local.get(identity) {
            return *a;
        }
        let base = u32::from(LOCAL_MIN);
        let size = u32::from(LOCAL_MAX) - base + 1;
        let start = hash(identity, 0) % size;
        // CAP < size: a free address always exists.
        let ip = (0..size)
            .map(|i| Ipv4Addr::from(base + (start + i) % size))
            .find(|ip| !self.by_ip.contains_key(ip))
            .unwrap_or(LOCAL_MIN);
        let span = u32::from(u16::MAX - MIN_PORT) + 1;
        // invariant: the offset is below span, so the port fits a u16.
        let port = MIN_PORT + (hash(identity, 1) % span) as u16;
        let addr = SocketAddrV4::new(ip, port);
        self.insert(ip, identity.clone());
        self.local.insert(identity.clone(), addr);
        addr
    }

    /// A peer's global FakeIP and who it is.
    pub(crate) fn learn(&mut self, ip: Ipv4Addr, identity: &Identity) {
        if self.by_ip.get(&ip) != Some(identity) {
            self.insert(ip, identity.clone());
        }
    }

    /// The identity behind `ip`, if remembered.
    pub(crate) fn lookup(&self, ip: Ipv4Addr) -> Option<&Identity> {
        self.by_ip.get(&ip)
    }

    fn insert(&mut self, ip: Ipv4Addr, identity: Identity) {
        if self.by_ip.insert(ip, identity).is_none() {
            self.order.push_back(ip);
        }
        while self.order.len() > CAP {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(id) = self.by_ip.remove(&old)
                && self.local.get(&id).is_some_and(|a| *a.ip() == old)
            {
                self.local.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockworks_engine::wire::fakeip::{FakeIpType, fake_ip_type};

    fn id(n: usize) -> Identity {
        Identity::parse(&format!("str:peer-{n}")).unwrap()
    }

    #[test]
    fn local_names_are_local_stable_and_distinct() {
        let mut n = Names::default();
        let a = n.local_name(&id(1));
        assert_eq!(fake_ip_type(*a.ip()), FakeIpType::LocalIpv4);
        assert!(a.port() > 1024);
        assert_eq!(n.local_name(&id(1)), a);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            assert!(seen.insert(*n.local_name(&id(i)).ip()));
        }
        assert_eq!(n.lookup(*a.ip()), Some(&id(1)));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_go_first() {
        let mut n = Names::default();
        let first = n.local_name(&id(0));
        n.learn(Ipv4Addr::new(169, 254, 9, 9), &id(99_999));
        for i in 1..=CAP {
            n.local_name(&id(i));
        }
        assert_eq!(n.by_ip.len(), CAP);
        assert!(n.local.len() <= CAP);
        assert_eq!(n.lookup(*first.ip()), None, "forgotten");
        assert_eq!(n.lookup(Ipv4Addr::new(169, 254, 9, 9)), None, "forgotten");
        let last = n.local_name(&id(CAP));
        assert_eq!(n.lookup(*last.ip()), Some(&id(CAP)));
    }
}
