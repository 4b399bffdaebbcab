//! Where secrets come from: the OS, kept apart from the seeded generator of public values.
//!
//! An endpoint draws two kinds of randomness. Public values (connection ids, handshake nonces,
//! fake-loss draws) come from a 64-bit seed, so a simulated run replays exactly. Secrets (the
//! identity key, every ephemeral X25519 key, the stateless-challenge key) must not: anyone who
//! sees public values could test a guessed 64-bit seed offline and then derive the keys. Secrets
//! come from a [`SecretSeed`]: 256 bits from the OS in production, or from a seed a test or the
//! simulator states (so those stay deterministic).
//!
//! ```text
//!   SecretSeed (OS, 256 bit) ─► derive(shard i) ─► endpoint i's secret generator
//!                            └► derive(CHALLENGE) ─► challenge key shared by all shards
//!   u64 seed ───────────────────────────────────► public generator (ids, nonces)
//! ```

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// 256 bits that every secret of an endpoint or a runtime derives from.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretSeed([u8; 32]);

impl std::fmt::Debug for SecretSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSeed(..)")
    }
}

/// Why the OS could not supply a seed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no OS randomness: {0}")]
pub struct EntropyError(String);

impl SecretSeed {
    /// 256 fresh bits from the OS: what every production endpoint and runtime uses.
    pub fn from_os() -> Result<Self, EntropyError> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| EntropyError(e.to_string()))?;
        Ok(SecretSeed(b))
    }

    /// A stated seed, for tests and the simulator only: secrets then repeat with the seed.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretSeed(bytes)
    }

    /// An independent seed for `index` (a shard, or a purpose): ChaCha20 keyed by this seed on
    /// stream `index`, so seeds derived for different indices share nothing observable.
    pub fn derive(&self, index: u64) -> SecretSeed {
        let mut rng = ChaCha20Rng::from_seed(self.0);
        rng.set_stream(index);
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        SecretSeed(b)
    }

    /// The generator secrets are drawn from.
    pub fn rng(&self) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_seeds_differ() {
        let a = SecretSeed::from_os().expect("OS randomness");
        let b = SecretSeed::from_os().expect("OS randomness");
        assert_ne!(a, b);
    }

    #[test]
    fn derived_seeds_are_distinct_and_repeatable() {
        let root = SecretSeed::from_bytes([7; 32]);
        assert_eq!(root.derive(1), root.derive(1));
        assert_ne!(root.derive(1), root.derive(2));
        assert_ne!(root.derive(0), root);
        assert_ne!(SecretSeed::from_bytes([8; 32]).derive(1), root.derive(1));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        assert_eq!(
            format!("{:?}", SecretSeed::from_bytes([7; 32])),
            "SecretSeed(..)"
        );
    }
}
