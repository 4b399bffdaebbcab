//! The hosted server's routing blob (GNS's `SteamDatagramHostedAddress`: at most 128 opaque
//! bytes, the POP code in the first bytes). Valve's dev form carries the server's address in
//! plaintext; ours seals it with AES-256-GCM under a key the relays of a fleet share, so a
//! client holding the blob (it travels inside its ticket) cannot learn the server's IP.
//!
//! ```text
//!  0      4            16                       16+n        16+n+16
//!  | POP  | nonce (12) | AES-256-GCM(address)   | tag (16)  |
//!   ASCII code, zero-padded (GNS: CalculateSteamNetworkingPOPIDFromString reads these bytes)
//!  address plaintext: 4 ‖ IPv4 (4) ‖ port BE (2)   or   6 ‖ IPv6 (16) ‖ port BE (2)
//!  AAD: the 4 POP bytes (a blob cannot be moved to another POP)
//! ```
//!
//! An IPv4 blob is 39 bytes, an IPv6 blob 51.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sockworks_engine::crypto::ca::pop_id;

/// Bytes before the ciphertext: POP code and nonce.
const HEADER: usize = 4 + NONCE_LEN;
/// AES-GCM tag length.
const TAG: usize = 16;

/// The 32-byte key the relays of a fleet share to open routing blobs.
#[derive(Clone)]
pub struct RoutingKey(LessSafeKey);

impl RoutingKey {
    /// From 32 secret bytes.
    pub fn new(bytes: &[u8; 32]) -> Self {
        // invariant: AES-256-GCM takes exactly 32-byte keys.
        #[expect(clippy::expect_used, reason = "invariant: 32-byte key")]
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key");
        RoutingKey(LessSafeKey::new(key))
    }

    /// From 64 hex digits (surrounding whitespace ignored), as key files hold it.
    pub fn from_hex(text: &str) -> Result<Self, RoutingError> {
        let bytes = hex::decode(text.trim()).map_err(|_| RoutingError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| RoutingError::BadKey)?;
        Ok(Self::new(&key))
    }
}

impl std::fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoutingKey(..)")
    }
}

/// Why a routing blob could not be made or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// The POP code is empty, longer than 4 characters or not ASCII alphanumeric.
    #[error("POP code must be 1 to 4 ASCII letters or digits")]
    BadPop,
    /// The key text is not 64 hex digits.
    #[error("routing key must be 64 hex digits (32 bytes)")]
    BadKey,
    /// Too short, too long, or an unknown address form.
    #[error("malformed routing blob")]
    Malformed,
    /// The blob was not sealed with this key (or was altered).
    #[error("routing blob does not open with this key")]
    Unauthentic,
}

/// The 4 POP bytes of `pop`: its ASCII code, zero-padded.
fn pop_bytes(pop: &str) -> Result<[u8; 4], RoutingError> {
    let b = pop.as_bytes();
    if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return Err(RoutingError::BadPop);
    }
    let mut out = [0u8; 4];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// Seals `server` into a routing blob for POP `pop` (≤ 4 characters) with a caller-chosen
/// unique `nonce` (random: never reuse one with the same key).
pub fn seal(
    pop: &str,
    server: SocketAddr,
    key: &RoutingKey,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, RoutingError> {
    let popb = pop_bytes(pop)?;
    let mut blob = Vec::with_capacity(HEADER + 19 + TAG);
    blob.extend_from_slice(&popb);
    blob.extend_from_slice(&nonce);
    match server.ip() {
        IpAddr::V4(ip) => {
            blob.push(4);
            blob.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            blob.push(6);
            blob.extend_from_slice(&ip.octets());
        }
    }
    blob.extend_from_slice(&server.port().to_be_bytes());
    let (head, plain) = blob.split_at_mut(HEADER);
    let tag = key
        .0
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&head[..4]),
            plain,
        )
        .map_err(|_| RoutingError::Malformed)?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Opens a routing blob: its POP code and the server's address.
pub fn open(blob: &[u8], key: &RoutingKey) -> Result<(String, SocketAddr), RoutingError> {
    if blob.len() < HEADER + 1 + TAG || blob.len() > crate::ticket::MAX_ROUTING {
        return Err(RoutingError::Malformed);
    }
    let pop = pop_of(blob).ok_or(RoutingError::Malformed)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&blob[4..HEADER]);
    let mut work = blob[HEADER..].to_vec();
    let plain = key
        .0
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&blob[..4]),
            &mut work,
        )
        .map_err(|_| RoutingError::Unauthentic)?;
    let addr = match plain {
        [4, ip @ .., p0, p1] if ip.len() == 4 => {
            let ip: [u8; 4] = ip.try_into().map_err(|_| RoutingError::Malformed)?;
            SocketAddr::new(Ipv4Addr::from(ip).into(), u16::from_be_bytes([*p0, *p1]))
        }
        [6, ip @ .., p0, p1] if ip.len() == 16 => {
            let ip: [u8; 16] = ip.try_into().map_err(|_| RoutingError::Malformed)?;
            SocketAddr::new(Ipv6Addr::from(ip).into(), u16::from_be_bytes([*p0, *p1]))
        }
        _ => return Err(RoutingError::Malformed),
    };
    Ok((pop, addr))
}

/// The POP code in the blob's first 4 bytes (no key needed; what GNS's
/// `SteamDatagramHostedAddress::GetPopID` reads), `None` if it is not one.
pub fn pop_of(blob: &[u8]) -> Option<String> {
    let head = blob.get(..4)?;
    let len = head.iter().position(|b| *b == 0).unwrap_or(4);
    let code = std::str::from_utf8(&head[..len]).ok()?;
    pop_bytes(code).ok()?;
    if head[len..].iter().any(|b| *b != 0) {
        return None;
    }
    Some(code.to_owned())
}

/// GNS's numeric POP id of the blob (`CalculateSteamNetworkingPOPIDFromString`), 0 if none.
pub fn pop_id_of(blob: &[u8]) -> u32 {
    pop_of(blob).map_or(0, |c| pop_id(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> RoutingKey {
        RoutingKey::new(&[b; 32])
    }

    #[test]
    fn sealed_address_opens_only_with_the_fleet_key() {
        let server: SocketAddr = "203.0.113.9:27015".parse().unwrap();
        let blob = seal("fra", server, &key(1), [7; 12]).unwrap();
        assert_eq!(blob.len(), 39);
        assert_eq!(&blob[..4], b"fra\0");
        assert_eq!(open(&blob, &key(1)).unwrap(), ("fra".into(), server));
        assert_eq!(open(&blob, &key(2)), Err(RoutingError::Unauthentic));
        // The address bytes appear nowhere in the blob.
        let ip = [203u8, 0, 113, 9];
        assert!(!blob.windows(4).any(|w| w == ip));
        assert!(!blob.windows(2).any(|w| w == 27015u16.to_be_bytes()));
        assert!(!blob.windows(2).any(|w| w == 27015u16.to_le_bytes()));
    }

    #[test]
    fn pop_is_readable_and_bound() {
        let server: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let mut blob = seal("iad1", server, &key(1), [1; 12]).unwrap();
        assert_eq!(blob.len(), 51);
        assert_eq!(pop_of(&blob).as_deref(), Some("iad1"));
        assert_eq!(pop_id_of(&blob), pop_id("iad1"));
        assert_eq!(open(&blob, &key(1)).unwrap().1, server);
        blob[3] = b'2';
        assert_eq!(open(&blob, &key(1)), Err(RoutingError::Unauthentic));
    }

    #[test]
    fn bad_input_is_refused() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(seal("", a, &key(1), [0; 12]), Err(RoutingError::BadPop));
        assert_eq!(
            seal("abcde", a, &key(1), [0; 12]),
            Err(RoutingError::BadPop)
        );
        assert!(RoutingKey::from_hex("00").is_err());
        assert!(RoutingKey::from_hex(&"ab".repeat(32)).is_ok());
        for len in 0..60 {
            assert!(open(&vec![0x61; len], &key(1)).is_err());
        }
        assert_eq!(pop_of(b"a\0b\0xx"), None);
    }
}
