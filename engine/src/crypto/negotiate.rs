//! Cipher negotiation (spec §3.3), as pure functions over preference lists.
//!
//! The `Unencrypted` config value maps to a local preference list; the server picks the first of
//! its own ciphers that the client offered and replies with exactly that one; the client accepts
//! the reply only if it names exactly one cipher it is willing to use. GNS:
//! `CSteamNetworkConnectionBase::BSetCryptoCipher` / `BRecvCryptoHandshake`.

use crate::wire::proto::Cipher;

const AES: Cipher = Cipher::Aes256Gcm;
const NULL: Cipher = Cipher::Null;

/// Why no cipher could be agreed (GNS closes with `Remote_BadCrypt`, 4002).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// `Unencrypted` config is outside 0..=3.
    #[error("Unencrypted config value {0} is outside 0..=3")]
    UnencryptedOutOfRange(i32),
    /// The lists have no cipher in common.
    #[error("no cipher in common")]
    NoCommonCipher,
    /// The server's reply did not name exactly one cipher.
    #[error("server replied with {0} ciphers, expected exactly one")]
    ReplyNotSingle(usize),
    /// The server chose a cipher we did not offer / do not accept.
    #[error("server chose cipher {0}, which is not acceptable locally")]
    ReplyNotAcceptable(i32),
}

/// Local preference list for an `Unencrypted` value: 0 → `[AES]`; 1 → `[AES, NULL]`;
/// 2 → `[NULL, AES]`; 3 → `[NULL]`.
pub fn cipher_preferences(unencrypted: i32) -> Result<&'static [Cipher], NegotiationError> {
    match unencrypted {
        0 => Ok(&[AES]),
        1 => Ok(&[AES, NULL]),
        2 => Ok(&[NULL, AES]),
        3 => Ok(&[NULL]),
        v => Err(NegotiationError::UnencryptedOutOfRange(v)),
    }
}

/// A peer's list as sent; an empty list means `[AES-256-GCM]` (old peers).
fn peer_list(raw: &[i32]) -> &[i32] {
    const DEFAULT: &[i32] = &[Cipher::Aes256Gcm as i32];
    if raw.is_empty() { DEFAULT } else { raw }
}

/// Server side: the first of our ciphers that the client offered.
pub fn server_choose_cipher(
    local: &[Cipher],
    client_offer: &[i32],
) -> Result<Cipher, NegotiationError> {
    let offer = peer_list(client_offer);
    local
        .iter()
        .copied()
        .find(|&c| c != Cipher::Invalid && offer.contains(&(c as i32)))
        .ok_or(NegotiationError::NoCommonCipher)
}

/// Client side: the server's reply must name exactly one cipher, and one we accept.
pub fn client_accept_cipher(
    local: &[Cipher],
    server_reply: &[i32],
) -> Result<Cipher, NegotiationError> {
    let reply = peer_list(server_reply);
    let [chosen] = reply else {
        return Err(NegotiationError::ReplyNotSingle(reply.len()));
    };
    local
        .iter()
        .copied()
        .find(|&c| c != Cipher::Invalid && c as i32 == *chosen)
        .ok_or(NegotiationError::ReplyNotAcceptable(*chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let p = |u| cipher_preferences(u).unwrap();
        for (srv, cli, want) in [
            (0, 0, Some(AES)),
            (0, 3, None),
            (1, 2, Some(AES)),
            (2, 1, Some(NULL)),
            (3, 1, Some(NULL)),
            (3, 0, None),
            (2, 0, Some(AES)),
        ] {
            let offer: Vec<i32> = p(cli).iter().map(|&c| c as i32).collect();
            let got = server_choose_cipher(p(srv), &offer).ok();
            assert_eq!(got, want, "server {srv} client {cli}");
            if let Some(c) = got {
                assert_eq!(client_accept_cipher(p(cli), &[c as i32]), Ok(c));
            }
        }
        assert_eq!(
            cipher_preferences(4),
            Err(NegotiationError::UnencryptedOutOfRange(4))
        );
    }

    #[test]
    fn empty_means_aes_and_reply_rules() {
        assert_eq!(server_choose_cipher(&[NULL, AES], &[]), Ok(AES));
        assert_eq!(client_accept_cipher(&[AES], &[]), Ok(AES));
        assert_eq!(
            client_accept_cipher(&[NULL], &[]),
            Err(NegotiationError::ReplyNotAcceptable(2))
        );
        assert_eq!(
            client_accept_cipher(&[AES, NULL], &[2, 1]),
            Err(NegotiationError::ReplyNotSingle(2))
        );
        assert_eq!(
            client_accept_cipher(&[AES], &[0]),
            Err(NegotiationError::ReplyNotAcceptable(0))
        );
        assert_eq!(
            server_choose_cipher(&[AES], &[0, 1, 99]),
            Err(NegotiationError::NoCommonCipher)
        );
    }
}
