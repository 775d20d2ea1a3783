//! Deterministic link faults. Every decision is a pure function of
//! `(seed, link, direction, datagram index, kind)`, so the same seed gives the same faults.

use crate::scenario::Faults;

/// What the link does to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultDecision {
    /// Drop it.
    pub drop: bool,
    /// Send it twice.
    pub duplicate: bool,
    /// Hold it back so later datagrams overtake it.
    pub reorder: bool,
    /// Flip one byte of the carried packet at this offset (taken modulo the length).
    pub corrupt_at: Option<u64>,
    /// Delay in milliseconds before sending.
    pub delay_ms: u64,
}

/// The splitmix64 finalizer: a well-mixed 64-bit value from any input.
pub fn splitmix(z: u64) -> u64 {
    mix(z)
}

/// splitmix64: a small, well-distributed mixing function.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn draw(seed: u64, link: usize, direction: u8, index: u64, kind: u64) -> u64 {
    mix(
        mix(mix(mix(seed ^ 0x5753_4f43_4b00_0000) ^ link as u64) ^ u64::from(direction))
            ^ index.wrapping_mul(8).wrapping_add(kind),
    )
}

fn chance(seed: u64, link: usize, direction: u8, index: u64, kind: u64, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    let u = (draw(seed, link, direction, index, kind) >> 11) as f64 / (1u64 << 53) as f64;
    u < p
}

/// Decides the fate of datagram `index` on `link` in `direction` (0: a to b, 1: b to a).
///
/// # Examples
/// ```
/// use wsock_stack::{faults::decide, Faults};
/// let f = Faults { loss: 0.5, ..Faults::default() };
/// assert_eq!(decide(7, 1, 0, 42, &f), decide(7, 1, 0, 42, &f));
/// ```
pub fn decide(seed: u64, link: usize, direction: u8, index: u64, faults: &Faults) -> FaultDecision {
    if faults.partitioned {
        return FaultDecision {
            drop: true,
            ..FaultDecision::default()
        };
    }
    let jitter = if faults.jitter_ms > 0 {
        draw(seed, link, direction, index, 5) % (faults.jitter_ms + 1)
    } else {
        0
    };
    FaultDecision {
        drop: chance(seed, link, direction, index, 0, faults.loss),
        duplicate: chance(seed, link, direction, index, 1, faults.duplicate),
        reorder: chance(seed, link, direction, index, 2, faults.reorder),
        corrupt_at: chance(seed, link, direction, index, 3, faults.corrupt)
            .then(|| draw(seed, link, direction, index, 4)),
        delay_ms: faults.delay_ms + jitter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rate_is_close_to_the_probability_and_seed_dependent() {
        let f = Faults {
            loss: 0.05,
            ..Faults::default()
        };
        let lost = (0..100_000)
            .filter(|i| decide(3, 1, 0, *i, &f).drop)
            .count();
        assert!((4_000..6_000).contains(&lost), "lost {lost}");
        let a: Vec<bool> = (0..64)
            .map(|i| decide(3, 1, 0, i, &Faults { loss: 0.5, ..f }).drop)
            .collect();
        let b: Vec<bool> = (0..64)
            .map(|i| decide(4, 1, 0, i, &Faults { loss: 0.5, ..f }).drop)
            .collect();
        assert_ne!(a, b);
    }

    #[test]
    fn partition_drops_everything() {
        let f = Faults {
            partitioned: true,
            ..Faults::default()
        };
        assert!((0..100).all(|i| decide(1, 1, 1, i, &f).drop));
    }
}
