//! The connection's packet keys, expanded while packets flow and parked while it is idle.
//!
//! An expanded AES-256-GCM direction (ring's key schedule plus its GHASH table) is 560 bytes,
//! so both directions were 1,120 of the ~2,900 bytes an idle connection held (issue 16: at
//! most 2 KiB per idle connection). An idle connection sends or receives a packet about once
//! per keepalive interval (10 s), so after [`PARK_AFTER`] without a packet the expanded
//! ciphers are dropped and only the raw keys (88 bytes) are kept. A parked connection seals
//! or opens its next few packets (a keepalive and its ack) with one-off expansions of the one
//! direction it needs, on the stack and gone after the packet, so thousands of idle
//! connections keepaliving at once do not all allocate their keys again (which left the
//! server's RSS ~650 bytes a connection higher after each keepalive round); only a
//! connection that keeps moving packets ([`ONE_OFF_PACKETS`] within [`PARK_AFTER`] of each
//! other) expands both for good. Busy connections never park, so the per-packet path is
//! unchanged: one branch on an `Option`.
//!
//! ```text
//!  establish ─► Expanded ──(no packet for PARK_AFTER: handle_timeout)──► Parked
//!                  ▲                                                   │    ▲
//!                  │                           a packet: one-off cipher └────┘
//!                  └──── more than ONE_OFF_PACKETS in a row (re-expands) ◄───┘
//! ```

use std::time::Duration;

use crate::crypto::{AeadBackend, CipherSetupError, SessionCipher, SessionKeys};
use crate::time::Timestamp;
use crate::wire::proto::Cipher;

/// Idle time after which the expanded ciphers are dropped. Well under the keepalive interval
/// (10 s), so an idle connection holds expanded keys a twentieth of the time; well over a
/// game's send interval, so a live connection never re-expands.
pub(super) const PARK_AFTER: Duration = Duration::from_millis(500);

/// Packets a parked connection handles with one-off ciphers before it expands both for good.
pub(crate) const ONE_OFF_PACKETS: u8 = 4;

/// A cipher to use for one packet: the connection's own, or a one-off expansion.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "lives on the stack for one packet: boxing it would bring back the allocation it avoids"
)]
pub(super) enum CipherRef<'a> {
    /// The expanded cipher the connection keeps.
    Kept(&'a SessionCipher),
    /// Expanded for this packet only (the connection is parked).
    OneOff(SessionCipher),
}

impl std::ops::Deref for CipherRef<'_> {
    type Target = SessionCipher;

    fn deref(&self) -> &SessionCipher {
        match self {
            CipherRef::Kept(c) => c,
            CipherRef::OneOff(c) => c,
        }
    }
}

/// Both directions' ciphers of one connection.
#[derive(Debug)]
pub(super) struct PacketKeys {
    backend: AeadBackend,
    cipher: Cipher,
    /// The raw keys, from which the ciphers are expanded again after parking.
    keys: SessionKeys,
    /// `None` while parked.
    expanded: Option<Box<Expanded>>,
    /// The last packet sealed or opened.
    last_used: Timestamp,
    /// Packets handled with one-off ciphers since parking, each within [`PARK_AFTER`] of the
    /// one before.
    one_offs: u8,
}

#[derive(Debug)]
struct Expanded {
    send: SessionCipher,
    recv: SessionCipher,
}

impl PacketKeys {
    /// Keys the negotiated `cipher`, parked: a connection that has just come up may stay idle
    /// (a server's thousands of players between matches), and one that moves packets expands
    /// after [`ONE_OFF_PACKETS`]. Both directions are expanded once here, which checks the
    /// backend, and dropped.
    pub(super) fn new(
        now: Timestamp,
        backend: AeadBackend,
        cipher: Cipher,
        keys: SessionKeys,
    ) -> Result<Self, CipherSetupError> {
        keys.ciphers(backend, cipher)?;
        Ok(PacketKeys {
            backend,
            cipher,
            keys,
            expanded: None,
            last_used: now,
            one_offs: 0,
        })
    }

    /// The negotiated cipher.
    pub(super) fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The cipher to seal with at `now` (a one-off or expanded again if parked); `None` only
    /// if expanding fails, which [`PacketKeys::new`] already ruled out.
    pub(super) fn send(&mut self, now: Timestamp) -> Option<CipherRef<'_>> {
        self.cipher_for(now, true)
    }

    /// The cipher to open with at `now` (a one-off or expanded again if parked).
    pub(super) fn recv(&mut self, now: Timestamp) -> Option<CipherRef<'_>> {
        self.cipher_for(now, false)
    }

    fn cipher_for(&mut self, now: Timestamp, send: bool) -> Option<CipherRef<'_>> {
        if self.expanded.is_none() {
            let in_a_row = now < self.last_used + PARK_AFTER;
            self.one_offs = if in_a_row {
                self.one_offs.saturating_add(1)
            } else {
                1
            };
            self.last_used = now;
            if self.one_offs <= ONE_OFF_PACKETS {
                let keys = if send {
                    &self.keys.send
                } else {
                    &self.keys.recv
                };
                let c = SessionCipher::new(self.backend, self.cipher, keys).ok()?;
                return Some(CipherRef::OneOff(c));
            }
            let (send, recv) = self.keys.ciphers(self.backend, self.cipher).ok()?;
            self.expanded = Some(Box::new(Expanded { send, recv }));
        }
        self.last_used = now;
        let e = self.expanded.as_deref()?;
        Some(CipherRef::Kept(if send { &e.send } else { &e.recv }))
    }

    /// When [`PacketKeys::park_if_idle`] has work: `None` while parked.
    pub(super) fn park_at(&self) -> Option<Timestamp> {
        self.expanded.as_ref().map(|_| self.last_used + PARK_AFTER)
    }

    /// Drops the expanded ciphers if no packet used them for [`PARK_AFTER`]; true if it
    /// parked them now (the connection has just gone idle).
    pub(super) fn park_if_idle(&mut self, now: Timestamp) -> bool {
        let idle = self.park_at().is_some_and(|t| now >= t);
        if idle {
            self.expanded = None;
            self.one_offs = 0;
        }
        idle
    }

    /// Whether the expanded ciphers are dropped (the connection is idle).
    pub(super) fn is_parked(&self) -> bool {
        self.expanded.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{DirectionKeys, PacketCipher};

    fn keys() -> SessionKeys {
        SessionKeys {
            send: DirectionKeys::new([1; 32], [2; 12]),
            recv: DirectionKeys::new([3; 32], [4; 12]),
        }
    }

    fn seal(k: &mut PacketKeys, now: Timestamp, pn: u64) -> Vec<u8> {
        let mut buf = b"hello".to_vec();
        let c = k.send(now).expect("expands");
        c.seal_in_place(pn, &mut buf, 0).expect("seals");
        buf
    }

    #[test]
    fn parked_keys_seal_and_open_exactly_as_expanded_ones() {
        let t0 = Timestamp::from_micros(1_000_000);
        let mut k = PacketKeys::new(t0, AeadBackend::Ring, Cipher::Aes256Gcm, keys()).unwrap();
        assert!(k.is_parked(), "keys start parked");
        let before = seal(&mut k, t0, 7);
        for _ in 0..ONE_OFF_PACKETS {
            assert!(k.is_parked());
            assert_eq!(seal(&mut k, t0, 7), before);
        }
        assert!(!k.is_parked(), "packets in a row expand the keys");
        assert!(!k.park_if_idle(t0 + PARK_AFTER / 2));
        assert!(!k.is_parked(), "parked before PARK_AFTER without a packet");
        let idle = t0 + PARK_AFTER;
        assert_eq!(k.park_at(), Some(idle));
        assert!(k.park_if_idle(idle));
        assert!(k.is_parked());
        assert_eq!(k.park_at(), None, "a parked key has no deadline");
        assert!(
            !k.park_if_idle(idle + PARK_AFTER),
            "parks once per idle period"
        );
        let after = seal(&mut k, idle, 7);
        assert!(k.is_parked(), "one packet uses a one-off cipher");
        assert_eq!(before, after, "a one-off cipher seals identically");
        for i in 1..ONE_OFF_PACKETS {
            seal(&mut k, idle, 7);
            assert!(k.is_parked(), "one-off packet {i}");
        }
        let again = seal(&mut k, idle, 7);
        assert!(
            !k.is_parked(),
            "a connection moving packets expands for good"
        );
        assert_eq!(before, again, "re-expanded key seals identically");

        // The peer's view: its recv key is our send key.
        let peer_keys = SessionKeys {
            send: keys().recv,
            recv: keys().send,
        };
        let mut peer =
            PacketKeys::new(t0, AeadBackend::Ring, Cipher::Aes256Gcm, peer_keys).unwrap();
        assert!(peer.is_parked());
        let mut wire = after.clone();
        let opened = peer
            .recv(idle)
            .unwrap()
            .open_in_place(7, &mut wire)
            .unwrap();
        assert_eq!(opened, b"hello");
        assert!(peer.is_parked());
        // One packet per keepalive interval never expands; packets in a row do.
        let keepalive = idle + Duration::from_secs(10);
        for i in 0..3 * ONE_OFF_PACKETS {
            let mut wire = after.clone();
            let c = peer.recv(keepalive + PARK_AFTER * u32::from(i)).unwrap();
            assert_eq!(c.open_in_place(7, &mut wire).unwrap(), b"hello");
        }
        assert!(peer.is_parked(), "packets PARK_AFTER apart stay one-offs");
        let t = keepalive + PARK_AFTER * 40;
        for _ in 0..=ONE_OFF_PACKETS {
            peer.recv(t).unwrap();
        }
        assert!(!peer.is_parked());
        assert_eq!(
            peer.park_at(),
            Some(t + PARK_AFTER),
            "use restarts the idle clock"
        );
    }

    #[test]
    fn null_cipher_parks_too() {
        let t0 = Timestamp::from_micros(0);
        let mut k = PacketKeys::new(t0, AeadBackend::Ring, Cipher::Null, keys()).unwrap();
        assert!(k.is_parked());
        assert_eq!(k.cipher(), Cipher::Null);
        assert_eq!(k.send(t0 + PARK_AFTER).unwrap().tag_len(), 0);
    }
}
