//! The stateless registration cookie: a Challenge carries a value only this service can
//! produce for the client's address and the current time window, so the service keeps no
//! state for a client until it has proved (by echoing the cookie in Register) that it receives
//! at the address it claims. The same construction as the engine's handshake challenge
//! (`sockworks_engine::proto::challenge`):
//!
//! ```text
//!  t = seconds since service start, as u16
//!  cookie = HMAC-SHA256(secret, t ‖ port ‖ ip as 16-byte IPv6)[..8] as u64 LE, low 16 bits := t
//!  valid while (now_t - t) mod 2^16 <= MAX_AGE_WINDOWS
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sockworks_engine::crypto::kdf::hmac_sha256;

/// Windows (seconds) a cookie stays valid for.
pub const MAX_AGE_WINDOWS: u16 = 4;

/// Issues and checks cookies with one secret (random per service start).
#[derive(Clone)]
pub struct CookieKey {
    secret: [u8; 32],
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey { .. }")
    }
}

fn window(now: Duration) -> u16 {
    now.as_secs() as u16
}

impl CookieKey {
    /// A key from 32 secret random bytes.
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
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

    /// The cookie for `from` at `now` (time since the service started).
    pub fn issue(&self, now: Duration, from: SocketAddr) -> u64 {
        self.mac(window(now), from)
    }

    /// Whether we issued `cookie` to `from` within the last [`MAX_AGE_WINDOWS`] seconds.
    pub fn check(&self, now: Duration, from: SocketAddr, cookie: u64) -> bool {
        let t = cookie as u16;
        if window(now).wrapping_sub(t) > MAX_AGE_WINDOWS {
            return false;
        }
        self.mac(t, from) == cookie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_binds_address_and_expires() {
        let key = CookieKey::new([7; 32]);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let t0 = Duration::from_secs(100);
        let c = key.issue(t0, a);
        assert!(key.check(t0, a, c));
        assert!(!key.check(t0, b, c), "another port");
        assert!(!key.check(t0, a, c ^ (1 << 40)), "tampered");
        assert!(key.check(Duration::from_secs(104), a, c), "4 s later");
        assert!(!key.check(Duration::from_secs(105), a, c), "5 s later");
        assert!(!key.check(Duration::from_secs(99), a, c), "from the future");
        assert!(!CookieKey::new([8; 32]).check(t0, a, c), "another service");
    }
}
