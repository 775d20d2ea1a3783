//! The anti-replay sliding window of an inbound SA (RFC 4303 §3.4.3) and the inference of the
//! high 32 bits of an extended sequence number (RFC 4303 Appendix A).
//!
//! The bitmap is a ring of 64-bit words (the RFC 6479 layout): sliding the window clears whole
//! words instead of shifting bits, so a jump forward costs at most one pass over the ring.

use crate::error::IpsecError;

/// Largest window this crate accepts (bits). Large enough for any sane reordering on loopback.
pub const MAX_REPLAY_WINDOW: u32 = 1 << 16;

/// An anti-replay window over full 64-bit sequence numbers.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// Window size in sequence numbers (0 = anti-replay disabled).
    size: u64,
    /// Highest authenticated sequence number seen (0 = none yet).
    top: u64,
    /// Ring of bitmap words; `words.len()` is a power of two with one spare word.
    words: Vec<u64>,
}

impl ReplayWindow {
    /// A window of `size` sequence numbers (0 disables the replay check).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when `size` exceeds [`MAX_REPLAY_WINDOW`].
    pub fn new(size: u32) -> Result<Self, IpsecError> {
        if size > MAX_REPLAY_WINDOW {
            return Err(IpsecError::InvalidConfig("replay window larger than 65536"));
        }
        let words = if size == 0 {
            0
        } else {
            (size as usize)
                .div_ceil(64)
                .saturating_add(1)
                .next_power_of_two()
        };
        Ok(ReplayWindow {
            size: u64::from(size),
            top: 0,
            words: vec![0; words],
        })
    }

    /// The configured window size.
    pub fn size(&self) -> u32 {
        self.size as u32
    }

    /// The highest sequence number accepted so far (0 before the first packet).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Infers the full 64-bit sequence number from its transmitted low 32 bits
    /// (RFC 4303 Appendix A.2). Returns `None` when the number would lie before the start of the
    /// sequence space (it can only be a replay or a forgery).
    pub fn infer_esn(&self, seq_lo: u32) -> Option<u64> {
        let w = self.size.max(1);
        let th = (self.top >> 32) as u32;
        let tl = self.top as u32;
        let seq_lo64 = u64::from(seq_lo);
        let hi = if u64::from(tl) >= w - 1 {
            // Case A: the window lies within one 2^32 subspace.
            let bottom = u64::from(tl) - (w - 1);
            if seq_lo64 >= bottom {
                u64::from(th)
            } else {
                u64::from(th) + 1
            }
        } else {
            // Case B: the window spans two subspaces.
            let bottom = tl.wrapping_sub((w - 1) as u32);
            if seq_lo >= bottom {
                u64::from(th).checked_sub(1)?
            } else {
                u64::from(th)
            }
        };
        if hi > u64::from(u32::MAX) {
            return None;
        }
        Some((hi << 32) | seq_lo64)
    }

    /// Checks `seq` without recording it.
    ///
    /// # Errors
    /// [`IpsecError::ReplayCheckFailed`] for 0, for a number left of the window and for a
    /// duplicate.
    pub fn check(&self, seq: u64) -> Result<(), IpsecError> {
        if seq == 0 {
            return Err(IpsecError::ReplayCheckFailed { seq });
        }
        if self.size == 0 || seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(IpsecError::ReplayCheckFailed { seq });
        }
        let (word, bit) = self.position(seq);
        if self.words[word] & bit != 0 {
            return Err(IpsecError::ReplayCheckFailed { seq });
        }
        Ok(())
    }

    /// Records an authenticated `seq` (call only after [`ReplayWindow::check`] succeeded).
    pub fn record(&mut self, seq: u64) {
        if self.size == 0 {
            self.top = self.top.max(seq);
            return;
        }
        if seq > self.top {
            let n = self.words.len() as u64;
            let old_block = self.top >> 6;
            let new_block = seq >> 6;
            let steps = (new_block - old_block).min(n);
            for i in 1..=steps {
                let idx = ((old_block + i) % n) as usize;
                self.words[idx] = 0;
            }
            self.top = seq;
        }
        let (word, bit) = self.position(seq);
        self.words[word] |= bit;
    }

    fn position(&self, seq: u64) -> (usize, u64) {
        let n = self.words.len() as u64;
        (((seq >> 6) % n) as usize, 1u64 << (seq & 63))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_in_order_and_rejects_duplicates() {
        let mut w = ReplayWindow::new(64).unwrap();
        for s in 1..200u64 {
            w.check(s).unwrap();
            w.record(s);
            assert!(w.check(s).is_err());
        }
        assert!(w.check(0).is_err());
    }

    #[test]
    fn out_of_order_within_window_and_too_old() {
        let mut w = ReplayWindow::new(64).unwrap();
        w.record(100);
        assert!(w.check(37).is_ok()); // 100 - 37 = 63 < 64
        assert!(w.check(36).is_err()); // left of the window
        w.record(50);
        assert!(w.check(50).is_err());
        assert!(w.check(51).is_ok());
        // A big jump clears everything.
        w.record(10_000);
        assert!(w.check(9_999).is_ok());
        assert!(w.check(10_000).is_err());
    }

    #[test]
    fn matches_a_naive_model() {
        // Deterministic pseudo-random walk against a set-based model.
        let mut w = ReplayWindow::new(100).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut top = 0u64;
        let mut x = 0x1234_5678_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seq = (top + 20).saturating_sub(x % 150).max(1);
            let model_ok = seq > top || (top - seq < 100 && !seen.contains(&seq));
            assert_eq!(w.check(seq).is_ok(), model_ok, "seq {seq} top {top}");
            if model_ok {
                w.record(seq);
                seen.insert(seq);
                top = top.max(seq);
            }
        }
    }

    #[test]
    fn esn_inference_across_the_wrap() {
        let mut w = ReplayWindow::new(64).unwrap();
        // Fresh window: low numbers map to the first subspace.
        assert_eq!(w.infer_esn(5), Some(5));
        // Numbers "before" the start are impossible.
        assert_eq!(w.infer_esn(u32::MAX - 3), None);
        w.record(u64::from(u32::MAX) - 10);
        assert_eq!(w.infer_esn(u32::MAX - 5), Some(u64::from(u32::MAX) - 5));
        // Past the wrap: the high bits step up.
        assert_eq!(w.infer_esn(3), Some((1 << 32) | 3));
        w.record((1 << 32) | 3);
        // Case B: window spans both subspaces; a late packet from the old subspace.
        assert_eq!(w.infer_esn(u32::MAX - 20), Some(u64::from(u32::MAX) - 20));
        assert_eq!(w.infer_esn(10), Some((1 << 32) | 10));
    }

    #[test]
    fn disabled_window_accepts_everything_but_zero() {
        let mut w = ReplayWindow::new(0).unwrap();
        w.record(5);
        assert!(w.check(5).is_ok());
        assert!(w.check(1).is_ok());
        assert!(w.check(0).is_err());
        assert!(ReplayWindow::new(MAX_REPLAY_WINDOW + 1).is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// RFC 4303 Appendix A: any packet inside the window, or ahead of it by less than
        /// 2^32 - W, gets its high half inferred correctly from the low half alone.
        #[test]
        fn esn_inference_recovers_the_sequence_number(
            top in 1u64..(1 << 62),
            size in prop::sample::select(vec![32u32, 64, 100, 1024]),
            ahead in any::<bool>(),
            delta in 0u64..(1 << 31),
        ) {
            let mut w = ReplayWindow::new(size).unwrap();
            w.record(top);
            let seq = if ahead { top + delta } else { top - (delta % u64::from(size)).min(top - 1) };
            prop_assert_eq!(w.infer_esn(seq as u32), Some(seq));
        }
    }
}
