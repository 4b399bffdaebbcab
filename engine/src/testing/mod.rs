//! Test support: a seeded in-memory network with a virtual clock (compiled for tests and with
//! the `testing` feature).
//!
//! Every protocol scenario runs here, not on real sockets: the same seed gives the same
//! losses, delays and reorderings, so a failure replays exactly. The seed comes from `SIM_SEED`
//! when set ([`seed_from_env`]) and is printed by [`SeedGuard`] when a test panics, so a failing
//! run can be pinned as a named regression test.

mod bottleneck;
#[cfg(test)]
mod congestion;
mod many;
mod measure;
mod net;
mod pair;

pub use bottleneck::{BottleneckConfig, BottleneckId, BottleneckStats};
pub use many::{Many, ManyClient, ManyConfig};
pub use measure::{Goodput, ManyCounters, Snapshot, jain_index};
pub use net::{Datagram, LinkConditions, NetStats, Network};
pub use pair::Pair;

use crate::entropy::SecretSeed;

/// The simulator's stated secret for an endpoint built from public seed `seed`: secrets replay
/// with the seed, as public values do. Tests and the simulator only; production endpoints take
/// theirs from the OS ([`SecretSeed::from_os`]).
pub fn sim_secret(seed: u64) -> SecretSeed {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b[8..24].copy_from_slice(b"sockworks-sim-sk");
    SecretSeed::from_bytes(b)
}

/// Reads `SIM_SEED` (decimal or `0x` hex), or returns `default` when unset or unparsable.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or(default)
}

/// Prints the seed if the test that holds it panics, so the run can be reproduced with
/// `SIM_SEED=<seed> cargo test <name>`.
#[derive(Debug)]
pub struct SeedGuard {
    seed: u64,
}

impl SeedGuard {
    /// Guards `seed` for the rest of the test.
    pub fn new(seed: u64) -> Self {
        SeedGuard { seed }
    }

    /// The guarded seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("simulation failed with SIM_SEED={}", self.seed);
        }
    }
}
