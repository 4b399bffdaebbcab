//! The top of the key layering: [`SessionKeys`] assigns the [`KeySchedule`]'s outputs to send and
//! receive for one [`Role`] and keys a [`SessionCipher`] per direction.
//!
//! It sits above both `kdf` (which derives the blocks) and `session` (which turns one
//! [`DirectionKeys`] into a cipher), so `aead` stays a leaf and the three form no cycle.

use super::aead::{AeadBackend, CipherSetupError, DirectionKeys, Role};
use super::kdf::KeySchedule;
use super::session::SessionCipher;
use crate::wire::proto::Cipher;

/// Both directions' keys, already assigned to send/recv for one side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionKeys {
    /// Keys we seal with.
    pub send: DirectionKeys,
    /// Keys we open with.
    pub recv: DirectionKeys,
}

impl SessionKeys {
    /// Assigns the derived keys by role: the client sends with c2s, the server with s2c.
    /// GNS: `CSteamNetworkConnectionBase::FinishCryptoHandshake`.
    pub fn from_schedule(schedule: &KeySchedule, role: Role) -> Self {
        let c2s = DirectionKeys::new(*schedule.key_c2s(), *schedule.iv_c2s());
        let s2c = DirectionKeys::new(*schedule.key_s2c(), *schedule.iv_s2c());
        match role {
            Role::Client => Self {
                send: c2s,
                recv: s2c,
            },
            Role::Server => Self {
                send: s2c,
                recv: c2s,
            },
        }
    }

    /// Builds the send and receive ciphers for the negotiated `cipher` with one backend.
    pub fn ciphers(
        &self,
        backend: AeadBackend,
        cipher: Cipher,
    ) -> Result<(SessionCipher, SessionCipher), CipherSetupError> {
        Ok((
            SessionCipher::new(backend, cipher, &self.send)?,
            SessionCipher::new(backend, cipher, &self.recv)?,
        ))
    }
}
