//! The FakeIP allocation table, sans I/O: which global FakeIP (169.254.x.y, see
//! `sockworks_engine::wire::fakeip`) and ports belong to which identity, and its text form
//! for `--fakeip-state`.
//!
//! ```text
//!  by_identity: "str:alice" ─► Allocation { ip 169.254.7.9, ports [40312, 2210], changed gen }
//!  by_ip:       169.254.7.9 ─► "str:alice"          (one address per identity, and back)
//! ```
//!
//! An identity keeps its allocation for the life of the table: asking again returns the same
//! address and ports (more ports extend it, fewer return the first ones). At most `max`
//! identities hold one; beyond that new identities are refused. Each change bumps a
//! generation, so the caller can tell whether what it saved covers an allocation
//! ([`FakeIpTable::is_saved`]).
//!
//! Addresses and ports are drawn from a keyed hash of the identity (probing on collision), so
//! they carry no order an observer could count, and ports are never contiguous by design
//! (GNS warns applications not to assume they are).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use sockworks_engine::crypto::kdf::hmac_sha256;
use sockworks_engine::wire::fakeip::{
    FakeIpType, GLOBAL_MAX, GLOBAL_MIN, MIN_PORT, fake_ip_type, identity_fake_ip,
};
use sockworks_engine::wire::identity::Identity;

use crate::wire::{MAX_FAKEIP_PORTS, MAX_IDENTITY_LEN};

/// First line of a state file.
pub const STATE_HEADER: &str = "# sockworks-rendezvous FakeIP allocations v1";

/// Global FakeIPs there are.
pub const GLOBAL_CAPACITY: usize = (u32::from_be_bytes(GLOBAL_MAX.octets())
    - u32::from_be_bytes(GLOBAL_MIN.octets())
    + 1) as usize;

/// Hash probes for a free address before scanning the range in order.
const PROBES: u32 = 32;

/// One identity's FakeIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The global FakeIP.
    pub ip: Ipv4Addr,
    /// Its ports, in allocation order (1 to 4, each above 1024, distinct).
    pub ports: Vec<u16>,
    /// Generation of the table when it last changed.
    changed: u64,
}

/// Why an allocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// `max` identities hold an allocation already.
    #[error("FakeIP table full")]
    Full,
    /// Not 1 to 4 ports.
    #[error("port count must be 1 to {MAX_FAKEIP_PORTS}")]
    BadPortCount,
}

/// Why a state file does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The first line is not [`STATE_HEADER`].
    #[error("not a FakeIP state file (first line must be {STATE_HEADER:?})")]
    Header,
    /// A line does not hold a valid allocation.
    #[error("line {line}: {what}")]
    Line {
        /// 1-based.
        line: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// The table (see the module documentation).
#[derive(Debug, Clone)]
pub struct FakeIpTable {
    max: usize,
    key: [u8; 32],
    by_identity: HashMap<Arc<str>, Allocation>,
    by_ip: HashMap<Ipv4Addr, Arc<str>>,
    generation: u64,
    saved: u64,
}

impl FakeIpTable {
    /// An empty table for at most `max` identities (capped at [`GLOBAL_CAPACITY`]); `key`
    /// spreads the addresses.
    pub fn new(max: usize, key: [u8; 32]) -> Self {
        FakeIpTable {
            max: max.min(GLOBAL_CAPACITY),
            key,
            by_identity: HashMap::new(),
            by_ip: HashMap::new(),
            generation: 0,
            saved: 0,
        }
    }

    /// Identities holding an allocation.
    pub fn len(&self) -> usize {
        self.by_identity.len()
    }

    /// No allocation yet.
    pub fn is_empty(&self) -> bool {
        self.by_identity.is_empty()
    }

    /// Most identities the table holds.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The allocation of `identity` (canonical form), if any.
    pub fn get(&self, identity: &str) -> Option<&Allocation> {
        self.by_identity.get(identity)
    }

    /// The identity owning `addr`: its address, with one of its ports.
    pub fn owner(&self, addr: SocketAddrV4) -> Option<&Arc<str>> {
        let id = self.by_ip.get(addr.ip())?;
        let a = self.by_identity.get(id)?;
        a.ports.contains(&addr.port()).then_some(id)
    }

    /// The allocation of `identity` with at least `num_ports` ports: the one it holds (grown
    /// if it holds fewer ports), or a new one.
    pub fn allocate(
        &mut self,
        identity: &str,
        num_ports: usize,
    ) -> Result<&Allocation, AllocError> {
        if !(1..=MAX_FAKEIP_PORTS).contains(&num_ports) {
            return Err(AllocError::BadPortCount);
        }
        let key = self.key;
        if self.by_identity.contains_key(identity) {
            let generation = self.generation + 1;
            // invariant: just checked.
            let a = self
                .by_identity
                .get_mut(identity)
                .expect("allocation exists");
            if a.ports.len() < num_ports {
                let ip = a.ip;
                grow_ports(&key, identity, ip, &mut a.ports, num_ports);
                a.changed = generation;
                self.generation = generation;
            }
            return Ok(a);
        }
        if self.by_identity.len() >= self.max {
            return Err(AllocError::Full);
        }
        let ip = self.free_ip(identity).ok_or(AllocError::Full)?;
        let mut ports = Vec::with_capacity(num_ports);
        grow_ports(&key, identity, ip, &mut ports, num_ports);
        self.generation += 1;
        let id: Arc<str> = Arc::from(identity);
        self.by_ip.insert(ip, id.clone());
        let a = self.by_identity.entry(id).or_insert(Allocation {
            ip,
            ports,
            changed: self.generation,
        });
        Ok(a)
    }

    /// A free global address for `identity`: hash probes, then the range in order.
    fn free_ip(&self, identity: &str) -> Option<Ipv4Addr> {
        let base = u32::from(GLOBAL_MIN);
        let size = GLOBAL_CAPACITY as u32;
        let mut last = 0;
        for attempt in 0..PROBES {
            let h = hmac_sha256(
                &self.key,
                &[b"fakeip-ip", identity.as_bytes(), &attempt.to_le_bytes()],
            );
            last = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % size;
            let ip = Ipv4Addr::from(base + last);
            if !self.by_ip.contains_key(&ip) {
                return Some(ip);
            }
        }
        (1..size)
            .map(|i| Ipv4Addr::from(base + (last + i) % size))
            .find(|ip| !self.by_ip.contains_key(ip))
    }

    /// Whether the last save covers the allocation of `identity` (false if it has none).
    pub fn is_saved(&self, identity: &str) -> bool {
        self.by_identity
            .get(identity)
            .is_some_and(|a| a.changed <= self.saved)
    }

    /// The generation now (bumped by every change).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether something changed since the last [`FakeIpTable::mark_saved`].
    pub fn dirty(&self) -> bool {
        self.generation > self.saved
    }

    /// The text of the table at `generation` was saved.
    pub fn mark_saved(&mut self, generation: u64) {
        self.saved = self.saved.max(generation.min(self.generation));
    }

    /// The state file's text: the header, then `IP PORT,PORT… IDENTITY` lines sorted by
    /// address; the identity is percent-encoded where it holds `%`, spaces, control or
    /// non-ASCII bytes.
    pub fn to_text(&self) -> String {
        let mut rows: Vec<(&Arc<str>, &Allocation)> = self.by_identity.iter().collect();
        rows.sort_by_key(|(_, a)| a.ip);
        let mut out = String::with_capacity(64 + rows.len() * 48);
        out.push_str(STATE_HEADER);
        out.push('\n');
        for (id, a) in rows {
            let ports: Vec<String> = a.ports.iter().map(u16::to_string).collect();
            let _ = writeln!(out, "{} {} {}", a.ip, ports.join(","), encode(id));
        }
        out
    }

    /// A table from a state file's text (every allocation counts as saved). It may hold more
    /// than `max` allocations (the cap was lowered): they are kept, and new ones refused.
    pub fn from_text(text: &str, max: usize, key: [u8; 32]) -> Result<Self, StateError> {
        let mut lines = text.lines();
        if lines.next() != Some(STATE_HEADER) {
            return Err(StateError::Header);
        }
        let mut t = FakeIpTable::new(max, key);
        for (i, line) in lines.enumerate() {
            let line_no = i + 2;
            let err = |what| StateError::Line {
                line: line_no,
                what,
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.split(' ');
            let (Some(ip), Some(ports), Some(id), None) = (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(err("expected `IP PORTS IDENTITY`"));
            };
            let ip: Ipv4Addr = ip.parse().map_err(|_| err("bad address"))?;
            if fake_ip_type(ip) != FakeIpType::GlobalIpv4 {
                return Err(err("address outside the global FakeIP range"));
            }
            let ports: Vec<u16> = ports
                .split(',')
                .map(|p| p.parse::<u16>().ok().filter(|&p| p >= MIN_PORT))
                .collect::<Option<_>>()
                .ok_or(err("bad port"))?;
            let distinct = ports
                .iter()
                .enumerate()
                .all(|(j, p)| !ports[..j].contains(p));
            if ports.is_empty() || ports.len() > MAX_FAKEIP_PORTS || !distinct {
                return Err(err("1 to 4 distinct ports expected"));
            }
            let id = decode(id).ok_or(err("bad identity encoding"))?;
            if !usable_identity(&id) {
                return Err(err("not a canonical identity"));
            }
            if t.by_ip.contains_key(&ip) || t.by_identity.contains_key(id.as_str()) {
                return Err(err("address or identity listed twice"));
            }
            let id: Arc<str> = Arc::from(id);
            t.by_ip.insert(ip, id.clone());
            t.by_identity.insert(
                id,
                Allocation {
                    ip,
                    ports,
                    changed: 0,
                },
            );
        }
        Ok(t)
    }
}

/// Whether `s` is an identity in canonical form that may hold a FakeIP (FakeIP identities
/// themselves may not).
pub fn usable_identity(s: &str) -> bool {
    s.len() <= MAX_IDENTITY_LEN
        && Identity::parse(s).is_ok_and(|id| id.to_string() == s && identity_fake_ip(&id).is_none())
}

/// Adds ports to `ports` until it holds `n`: keyed-hash draws above 1024, distinct.
fn grow_ports(key: &[u8; 32], identity: &str, ip: Ipv4Addr, ports: &mut Vec<u16>, n: usize) {
    let span = u32::from(u16::MAX - MIN_PORT) + 1;
    let mut draw = 0u32;
    while ports.len() < n {
        let h = hmac_sha256(
            key,
            &[
                b"fakeip-port",
                identity.as_bytes(),
                &ip.octets(),
                &draw.to_le_bytes(),
            ],
        );
        draw += 1;
        let offset = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % span;
        // invariant: offset < span, so MIN_PORT + offset <= u16::MAX.
        let port = MIN_PORT + offset as u16;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
}

fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for &b in id.as_bytes() {
        if b == b'%' || b <= b' ' || b >= 0x7f {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "fakeip/tests.rs"]
mod tests;
