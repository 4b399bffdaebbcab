//! Which identities a certificate may name: exactly those GNS can parse and check.
//!
//! [`Identity::parse`] keeps unknown `prefix:` types verbatim for forward compatibility, but a
//! GNS peer cannot match such an identity against anything, so a CA must not certify it.
//! `invalid` names nobody, and GNS never uses a CA certificate for a localhost identity (§2.7:
//! "CA's should never issue a certificate for this identity"), so those are refused too.

use std::net::IpAddr;

use sockworks_engine::wire::identity::{Identity, IdentityError};

/// The identity types a certificate may name, for error messages.
pub const KNOWN_TYPES: &str = "steamid:, str:, gen:, ip:, xboxpwid:, psn:";

/// Why an identity cannot go into a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityRefused {
    /// GNS's parser refuses the string.
    #[error("identity '{text}' does not parse: {reason} (GNS forms: {KNOWN_TYPES})")]
    Syntax {
        /// The string given.
        text: String,
        /// The parser's reason.
        reason: IdentityError,
    },
    /// A well-formed `prefix:` that GNS does not know.
    #[error("identity type '{prefix}:' is unknown to GNS; use one of {KNOWN_TYPES}")]
    UnknownType {
        /// The prefix.
        prefix: String,
    },
    /// `invalid`.
    #[error("identity 'invalid' names nobody")]
    Invalid,
    /// `ip:::1` or `ip:127.0.0.1`: GNS ignores CA certificates for localhost.
    #[error("identity '{0}' is localhost, for which GNS never uses a CA certificate")]
    Localhost(String),
}

/// Parses `text` and checks that a certificate may name it.
pub fn issuable_identity(text: &str) -> Result<Identity, IdentityRefused> {
    let identity = Identity::parse(text).map_err(|reason| IdentityRefused::Syntax {
        text: text.to_owned(),
        reason,
    })?;
    check_issuable(&identity)?;
    Ok(identity)
}

/// Checks that a certificate may name an already parsed identity.
pub fn check_issuable(identity: &Identity) -> Result<(), IdentityRefused> {
    match identity {
        Identity::Invalid => Err(IdentityRefused::Invalid),
        Identity::Unknown { prefix, .. } => Err(IdentityRefused::UnknownType {
            prefix: prefix.clone(),
        }),
        Identity::IpAddress(addr) if is_localhost(addr.ip()) => {
            Err(IdentityRefused::Localhost(identity.to_string()))
        }
        _ => Ok(()),
    }
}

/// GNS's `SteamNetworkingIPAddr::IsLocalHost`: `::1` or `127.0.0.1` exactly.
fn is_localhost(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets() == [127, 0, 0, 1],
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.octets() == [127, 0, 0, 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_known_type() {
        for s in [
            "str:player-1",
            "steamid:76561197960287930",
            "gen:00ff",
            "ip:10.0.0.1:27015",
            "ip:[2001:db8::1]:80",
            "xboxpwid:abc",
            "psn:42",
            "ip:127.0.0.2",
        ] {
            assert!(issuable_identity(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn refuses_unknown_invalid_localhost_and_garbage() {
        assert!(matches!(
            issuable_identity("foo:bar"),
            Err(IdentityRefused::UnknownType { prefix }) if prefix == "foo"
        ));
        assert_eq!(issuable_identity("invalid"), Err(IdentityRefused::Invalid));
        assert!(matches!(
            issuable_identity("ip:::1"),
            Err(IdentityRefused::Localhost(_))
        ));
        assert!(matches!(
            issuable_identity("ip:127.0.0.1:9"),
            Err(IdentityRefused::Localhost(_))
        ));
        assert!(matches!(
            issuable_identity("player"),
            Err(IdentityRefused::Syntax { .. })
        ));
        assert!(matches!(
            issuable_identity("str:0123456789012345678901234567890123"),
            Err(IdentityRefused::Syntax { .. })
        ));
        assert!(matches!(
            issuable_identity("steamid:1"),
            Err(IdentityRefused::Syntax { .. })
        ));
    }
}
