//! Connection limits of a listen socket (ours, beyond GNS, whose only limit is its 8191-entry
//! id table; ours holds 32,767 per shard): at most so many connections in all, so many from one source address, and so
//! many waiting for AcceptConnection. Past a limit, a new ConnectRequest (one that carried a
//! valid cookie) is refused at once with a ConnectionClosed, so an attacker who fills the table
//! costs honest clients a clean refusal, never a silent timeout, and nothing already
//! connected is disturbed.
//!
//! One `Admission` is shared by the listen socket's members on every shard (the kernel may
//! hash one address's clients to several shards), so its counts are atomics. Counts per
//! address live in a fixed table of buckets indexed by a keyed hash of the IP: two addresses
//! that share a bucket share its count, so the per-address limit may refuse early, never late,
//! and memory stays fixed however many addresses an attacker uses.
//!
//! ```text
//!  ConnectRequest with a valid cookie ─► admit(ip)? ─ no ─► ConnectionClosed(Misc_Generic)
//!                                          └ yes: total+1, pending+1, bucket(ip)+1
//!  AcceptConnection ─► accepted(): pending-1
//!  connection forgotten ─► released(ip, still pending?): total-1, bucket-1, (pending-1)
//! ```

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// Buckets of the per-address counts.
const BUCKETS: usize = 4096;

/// The limits; `u32::MAX` means none (the default, as GNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Connections in all.
    pub max_connections: u32,
    /// Connections from one source IP address.
    pub max_per_address: u32,
    /// Connections not yet accepted by the application.
    pub max_pending: u32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_connections: u32::MAX,
            max_per_address: u32::MAX,
            max_pending: u32::MAX,
        }
    }
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// `max_connections`.
    #[error("Too many connections")]
    Full,
    /// `max_per_address`.
    #[error("Too many connections from your address")]
    PerAddress,
    /// `max_pending`.
    #[error("Too many connections waiting to be accepted")]
    Pending,
}

/// A listen socket's limits and counts, shared by its shards.
#[derive(Debug)]
pub struct Admission {
    max_connections: AtomicU32,
    max_per_address: AtomicU32,
    max_pending: AtomicU32,
    total: AtomicU32,
    pending: AtomicU32,
    per_address: Box<[AtomicU32]>,
    /// Keys the bucket hash (from the caller: the OS in production), so an attacker cannot
    /// cheaply aim many addresses at one bucket.
    key: u64,
}

/// SplitMix64's finaliser: every input bit affects every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Admission {
    /// Counts starting at zero under `limits`; `key` keys the per-address buckets.
    pub fn new(limits: AdmissionLimits, key: u64) -> Self {
        Admission {
            max_connections: AtomicU32::new(limits.max_connections),
            max_per_address: AtomicU32::new(limits.max_per_address),
            max_pending: AtomicU32::new(limits.max_pending),
            total: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            per_address: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            key,
        }
    }

    /// New limits, for connections arriving from now on.
    pub fn set_limits(&self, limits: AdmissionLimits) {
        self.max_connections
            .store(limits.max_connections, Ordering::Relaxed);
        self.max_per_address
            .store(limits.max_per_address, Ordering::Relaxed);
        self.max_pending
            .store(limits.max_pending, Ordering::Relaxed);
    }

    /// The limits in force.
    pub fn limits(&self) -> AdmissionLimits {
        AdmissionLimits {
            max_connections: self.max_connections.load(Ordering::Relaxed),
            max_per_address: self.max_per_address.load(Ordering::Relaxed),
            max_pending: self.max_pending.load(Ordering::Relaxed),
        }
    }

    /// Connections counted now: (all, waiting to be accepted).
    pub fn counts(&self) -> (u32, u32) {
        (
            self.total.load(Ordering::Acquire),
            self.pending.load(Ordering::Acquire),
        )
    }

    fn bucket(&self, ip: IpAddr) -> &AtomicU32 {
        let bits = match ip.to_canonical() {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let h = mix(mix(self.key ^ bits as u64) ^ (bits >> 64) as u64);
        &self.per_address[(h as usize) % BUCKETS]
    }

    /// Counts a new connection from `ip`, or says which limit it would break (then nothing
    /// is counted).
    pub fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        let take = |counter: &AtomicU32, max: u32, why: Refusal| {
            counter
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .map(|_| ())
                .map_err(|_| why)
        };
        let limits = self.limits();
        take(&self.total, limits.max_connections, Refusal::Full)?;
        if let Err(e) = take(&self.pending, limits.max_pending, Refusal::Pending) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        if let Err(e) = take(self.bucket(ip), limits.max_per_address, Refusal::PerAddress) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        Ok(())
    }

    /// An admitted connection was accepted by the application.
    pub fn accepted(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// An admitted connection from `ip` is gone; `pending` if it was never accepted.
    pub fn released(&self, ip: IpAddr, pending: bool) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        self.bucket(ip).fetch_sub(1, Ordering::AcqRel);
        if pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    #[test]
    fn each_limit_refuses_and_counts_come_back() {
        let a = Admission::new(
            AdmissionLimits {
                max_connections: 3,
                max_per_address: 2,
                max_pending: 2,
            },
            7,
        );
        a.admit(ip("10.0.0.1")).unwrap();
        a.admit(ip("10.0.0.1")).unwrap();
        // Two pending: the third waits for an accept even from another address.
        assert_eq!(a.admit(ip("10.0.0.2")), Err(Refusal::Pending));
        a.accepted();
        assert_eq!(a.admit(ip("10.0.0.1")), Err(Refusal::PerAddress));
        a.admit(ip("10.0.0.2")).unwrap();
        a.accepted();
        assert_eq!(a.admit(ip("10.0.0.3")), Err(Refusal::Full));
        assert_eq!(
            a.counts(),
            (3, 1),
            "one of the three still waits for its accept"
        );
        a.released(ip("10.0.0.1"), false);
        a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.4")), Err(Refusal::Full));
        a.set_limits(AdmissionLimits {
            max_connections: 10,
            max_per_address: 2,
            max_pending: 10,
        });
        // The v4-mapped form of an address is the same address.
        assert_eq!(a.admit(ip("::ffff:10.0.0.1")), Err(Refusal::PerAddress));
        a.admit(ip("10.0.0.4")).unwrap();
    }
}
