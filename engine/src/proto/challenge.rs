//! The listen socket's stateless challenge cookie (spec §2.4): a server keeps no per-client
//! state before a valid ConnectRequest, so the ChallengeReply carries a value only the server
//! can produce for that source address and time window.
//!
//! Only the server ever checks its own challenge, so the construction is not an interop
//! requirement. GNS uses SipHash; we use HMAC-SHA256 (already a dependency) keyed with a random
//! per-listen-socket secret, truncated to 48 bits, with the 16-bit time window in the low bits:
//!
//! ```text
//!  t = (now_us >> 20) as u16            (~1.05 s units)
//!  challenge = HMAC(secret, t ‖ port ‖ ip as 16-byte IPv6)[..8] as u64 LE, low 16 bits := t
//!  valid while (now_t - t) mod 2^16 <= 3 (about 3-4 s)
//! ```

use std::net::{IpAddr, SocketAddr};

use crate::crypto::kdf::hmac_sha256;
use crate::time::Timestamp;

/// Windows a challenge stays valid for (GNS: 4 s, "older than ~3-4 s" rejected).
pub(crate) const MAX_CHALLENGE_AGE_WINDOWS: u16 = 3;

/// Issues and checks challenges for one listen socket.
#[derive(Clone)]
pub(crate) struct ChallengeKey {
    secret: [u8; 16],
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey { .. }")
    }
}

fn window(now: Timestamp) -> u16 {
    (now.as_micros() >> 20) as u16
}

impl ChallengeKey {
    /// A key from 16 random bytes (the caller's RNG).
    pub(crate) fn new(secret: [u8; 16]) -> Self {
        ChallengeKey { secret }
    }

    fn mac(&self, t: u16, from: SocketAddr) -> u64 {
        let ip = match from.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mac = hmac_sha256(
            &self.secret,
            &[&t.to_le_bytes(), &from.port().to_le_bytes(), &ip.octets()],
        );
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        (u64::from_le_bytes(first) & !0xffff) | u64::from(t)
    }

    /// The challenge for `from` at `now`.
    pub(crate) fn issue(&self, now: Timestamp, from: SocketAddr) -> u64 {
        self.mac(window(now), from)
    }

    /// Whether `challenge` was issued by us to `from` within the last few seconds.
    pub(crate) fn check(&self, now: Timestamp, from: SocketAddr, challenge: u64) -> bool {
        let t = challenge as u16;
        if window(now).wrapping_sub(t) > MAX_CHALLENGE_AGE_WINDOWS {
            return false;
        }
        self.mac(t, from) == challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_binds_address_and_expires() {
        let key = ChallengeKey::new([7; 16]);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let t0 = Timestamp::from_micros(100 << 20);
        let c = key.issue(t0, a);
        assert!(key.check(t0, a, c));
        assert!(!key.check(t0, b, c), "another port");
        assert!(!key.check(t0, a, c ^ (1 << 40)), "tampered");
        assert!(
            key.check(Timestamp::from_micros(103 << 20), a, c),
            "3 windows later"
        );
        assert!(
            !key.check(Timestamp::from_micros(104 << 20), a, c),
            "4 windows later"
        );
        assert!(
            !key.check(Timestamp::from_micros(99 << 20), a, c),
            "from the future"
        );
        let other = ChallengeKey::new([8; 16]);
        assert!(!other.check(t0, a, c), "another listen socket");
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_ne!(key.issue(t0, v6), c);
    }
}
