//! The receiver's packet-number window (spec §2.6, §3.6): expansion of the 16-bit wire number,
//! replay classification before decryption, and recording after it.
//!
//! State is the highest packet number that decrypted (M) and a 128-bit bitmap of the 64-aligned
//! block containing M (high half) and the block before it (low half). Classification
//! ([`ReplayWindow::check`]) happens before decrypting because a forged packet must not move the
//! window; [`ReplayWindow::commit`] records only authenticated packets. GNS:
//! `CSteamNetworkConnectionBase::DecryptDataChunk` / `RecvNonDataSequencedPacket`.

/// After decryption, a jump of more than this past M kills the connection ("Pkt number lurch").
pub(crate) const MAX_LURCH: u64 = 0x4000;

const BLOCK: u64 = 64;

/// Classification of an expanded packet number before decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayCheck {
    /// Above the highest seen: decrypt it.
    New,
    /// Inside the window and not seen yet: decrypt it.
    OutOfOrder,
    /// Already received: drop.
    Duplicate,
    /// Below the window (or 0): drop (GNS counts these as "lurch").
    TooOld,
}

impl ReplayCheck {
    /// Whether the packet should be decrypted.
    pub fn is_acceptable(self) -> bool {
        matches!(self, Self::New | Self::OutOfOrder)
    }
}

/// What recording a decrypted packet did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitOutcome {
    /// Recorded as received.
    Recorded,
    /// Jumped more than `MAX_LURCH` past M: the connection must be closed
    /// (ProblemDetectedLocally, Misc_Generic). Nothing is recorded.
    Lurch {
        /// N − M.
        jump: u64,
    },
    /// Not recorded: the number is a duplicate or outside the window (commit without check).
    Rejected(ReplayCheck),
}

/// Receive-side packet-number state of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    max: u64,
    /// Bit i is packet `block_start(max) - 64 + i`: a `u128` kept as two words (low, high),
    /// so the window, and the connection around it, needs 8-byte alignment, not 16.
    bits: [u64; 2],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// Start state: packet 1 was implicitly consumed by the handshake (protocol ≥ 10).
    pub fn new() -> Self {
        Self::starting_at(1)
    }

    /// A window whose highest received number is `max` (recorded as received).
    pub fn starting_at(max: u64) -> Self {
        let mut w = Self { max, bits: [0; 2] };
        if let Some(i) = w.index(max) {
            w.set_bits(1u128 << i);
        }
        w
    }

    fn bits(&self) -> u128 {
        u128::from(self.bits[0]) | (u128::from(self.bits[1]) << 64)
    }

    fn set_bits(&mut self, bits: u128) {
        // Truncation splits the two halves.
        self.bits = [bits as u64, (bits >> 64) as u64];
    }

    /// Highest packet number recorded so far (M).
    pub fn max_received(&self) -> u64 {
        self.max
    }

    /// Expands a 16-bit wire number against M by the signed 16-bit difference of the low bits.
    /// `None` when the result would be ≤ 0 (GNS drops those).
    pub fn expand(&self, wire: u16) -> Option<u64> {
        // Truncation to the low 16 bits is the point here.
        let delta = i64::from(wire.wrapping_sub(self.max as u16) as i16);
        let n = self.max.checked_add_signed(delta)?;
        (n > 0).then_some(n)
    }

    fn block_start(&self) -> u64 {
        self.max & !(BLOCK - 1)
    }

    /// Bit index of `n` in the bitmap, if it lies within the two blocks.
    fn index(&self, n: u64) -> Option<u32> {
        let i = (n + BLOCK).checked_sub(self.block_start())?;
        if i < 2 * BLOCK {
            u32::try_from(i).ok()
        } else {
            None
        }
    }

    /// Classifies `n` without changing state.
    pub fn check(&self, n: u64) -> ReplayCheck {
        if n > self.max {
            return ReplayCheck::New;
        }
        if n == 0 {
            return ReplayCheck::TooOld;
        }
        match self.index(n) {
            None => ReplayCheck::TooOld,
            Some(i) if self.bits() & (1u128 << i) != 0 => ReplayCheck::Duplicate,
            Some(_) => ReplayCheck::OutOfOrder,
        }
    }

    /// Records `n` after it decrypted; see [`CommitOutcome`].
    pub fn commit(&mut self, n: u64) -> CommitOutcome {
        let check = self.check(n);
        if !check.is_acceptable() {
            return CommitOutcome::Rejected(check);
        }
        if n > self.max {
            let jump = n - self.max;
            if jump > MAX_LURCH {
                return CommitOutcome::Lurch { jump };
            }
            let old_block = self.block_start();
            let new_block = n & !(BLOCK - 1);
            let bits = match (new_block - old_block) / BLOCK {
                0 => self.bits(),
                1 => self.bits() >> BLOCK,
                _ => 0,
            };
            self.set_bits(bits);
            self.max = n;
        }
        if let Some(i) = self.index(n) {
            self.set_bits(self.bits() | (1u128 << i));
        }
        CommitOutcome::Recorded
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn start_state_and_expansion() {
        let w = ReplayWindow::new();
        assert_eq!(w.max_received(), 1);
        assert_eq!(w.check(1), ReplayCheck::Duplicate);
        assert_eq!(w.check(0), ReplayCheck::TooOld);
        assert_eq!(w.check(2), ReplayCheck::New);
        assert_eq!(w.expand(2), Some(2));
        assert_eq!(w.expand(0xffff), None);
        assert_eq!(w.expand(0x8000), Some(0x8000));
        assert_eq!(w.expand(0x8002), None);
        let w = ReplayWindow::starting_at(0x1_fff0);
        assert_eq!(w.expand(0x0005), Some(0x2_0005));
        assert_eq!(w.expand(0xffe0), Some(0x1_ffe0));
        assert_eq!(w.expand(0x7fef), Some(0x2_7fef));
        assert_eq!(w.expand(0x7ff0), Some(0x1_7ff0));
    }

    #[test]
    fn window_edges_and_lurch() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.commit(130), CommitOutcome::Recorded);
        // Block of 130 is 128..192, window 64..192.
        assert_eq!(w.check(63), ReplayCheck::TooOld);
        assert_eq!(w.check(64), ReplayCheck::OutOfOrder);
        assert_eq!(w.commit(64), CommitOutcome::Recorded);
        assert_eq!(w.check(64), ReplayCheck::Duplicate);
        assert_eq!(
            w.commit(64),
            CommitOutcome::Rejected(ReplayCheck::Duplicate)
        );
        assert_eq!(
            w.commit(130 + MAX_LURCH + 1),
            CommitOutcome::Lurch {
                jump: MAX_LURCH + 1
            }
        );
        assert_eq!(w.max_received(), 130);
        assert_eq!(w.commit(130 + MAX_LURCH), CommitOutcome::Recorded);
        assert_eq!(w.check(130), ReplayCheck::TooOld);
    }

    /// Reference model: everything received, M, and the window's lower bound.
    fn model_check(seen: &HashSet<u64>, max: u64, n: u64) -> ReplayCheck {
        let lo = (max & !63).saturating_sub(64);
        if n > max {
            ReplayCheck::New
        } else if n == 0 || n < lo {
            ReplayCheck::TooOld
        } else if seen.contains(&n) {
            ReplayCheck::Duplicate
        } else {
            ReplayCheck::OutOfOrder
        }
    }

    proptest! {
        #[test]
        fn matches_reference_model(steps in prop::collection::vec((-200i64..300, any::<bool>()), 1..300)) {
            let mut w = ReplayWindow::new();
            let mut seen = HashSet::from([1u64]);
            let mut max = 1u64;
            for (delta, decrypts) in steps {
                let Some(n) = max.checked_add_signed(delta) else { continue };
                let want = model_check(&seen, max, n);
                prop_assert_eq!(w.check(n), want, "n={} max={}", n, max);
                if decrypts {
                    let out = w.commit(n);
                    if want.is_acceptable() {
                        prop_assert_eq!(out, CommitOutcome::Recorded);
                        prop_assert!(seen.insert(n), "accepted twice: {}", n);
                        max = max.max(n);
                    } else {
                        prop_assert_eq!(out, CommitOutcome::Rejected(want));
                    }
                }
                prop_assert_eq!(w.max_received(), max);
            }
        }

        #[test]
        fn expansion_is_nearest(max in 1u64..u64::MAX / 2, d in -32768i64..32768) {
            let w = ReplayWindow::starting_at(max);
            let n = max.checked_add_signed(d).unwrap();
            let got = w.expand(n as u16);
            if n > 0 { prop_assert_eq!(got, Some(n)); } else { prop_assert_eq!(got, None); }
        }
    }
}
