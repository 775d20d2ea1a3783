//! The [`Guid`] type: the 16-byte identifier that keys every WFP object.

use std::fmt;
use std::str::FromStr;

/// A 128-bit GUID, displayed and parsed in the usual `8-4-4-4-12` form
/// (`c38d57d1-05a7-4c33-904f-7fbceee60e82`), optionally in braces.
///
/// The value is stored as the big-endian reading of that text, i.e. the same number as
/// `windows_sys::core::GUID::from_u128`.
///
/// # Examples
///
/// ```
/// use wsock_wfp::Guid;
/// let g: Guid = "{eebecc03-ced4-4380-819a-2734397b2b74}".parse().unwrap();
/// assert_eq!(g.to_string(), "eebecc03-ced4-4380-819a-2734397b2b74");
/// assert_eq!(g, Guid::from_u128(0xeebecc03_ced4_4380_819a_2734397b2b74));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub u128);

impl Guid {
    /// The all-zero GUID (`GUID_NULL`), which in Fwpm calls means "let the engine choose".
    pub const NIL: Guid = Guid(0);

    /// Builds a GUID from its 128-bit value.
    pub const fn from_u128(v: u128) -> Self {
        Guid(v)
    }

    /// Returns the 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Whether this is the nil GUID.
    pub const fn is_nil(self) -> bool {
        self.0 == 0
    }

    /// A deterministic, engine-generated GUID (version-4 layout bits set) derived from a counter.
    /// The engine is sans-IO and has no randomness source, so generated keys are a pure function
    /// of `seed`.
    pub fn generated(seed: u64) -> Self {
        // splitmix64 twice for the two halves
        fn mix(mut z: u64) -> u64 {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        let hi = mix(seed ^ 0x5753_4F43_4B5F_5746);
        let lo = mix(hi ^ seed.rotate_left(17));
        let mut v = (u128::from(hi) << 64) | u128::from(lo);
        v &= !(0xF000u128 << 64);
        v |= 0x4000u128 << 64; // version 4
        v &= !(0xC000_0000_0000_0000u128);
        v |= 0x8000_0000_0000_0000u128; // variant 10
        Guid(v)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xFFFF_FFFF_FFFF
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// Error returned when a string is not a GUID in `8-4-4-4-12` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GUID in 8-4-4-4-12 form: {0:?}")]
pub struct ParseGuidError(pub String);

impl FromStr for Guid {
    type Err = ParseGuidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseGuidError(s.to_string());
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let parts: Vec<&str> = t.split('-').collect();
        if parts.len() != 5 {
            return Err(err());
        }
        let lens = [8, 4, 4, 4, 12];
        let mut v: u128 = 0;
        for (p, l) in parts.iter().zip(lens) {
            if p.len() != l || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            v = (v << (4 * l)) | u128::from_str_radix(p, 16).map_err(|_| err())?;
        }
        Ok(Guid(v))
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let g = Guid::from_u128(0xc38d57d1_05a7_4c33_904f_7fbceee60e82);
        assert_eq!(g.to_string(), "c38d57d1-05a7-4c33-904f-7fbceee60e82");
        assert_eq!(g.to_string().parse::<Guid>().unwrap(), g);
        assert!("c38d57d1-05a7-4c33-904f".parse::<Guid>().is_err());
        assert!("g38d57d1-05a7-4c33-904f-7fbceee60e82"
            .parse::<Guid>()
            .is_err());
        assert!("+38d57d1-05a7-4c33-904f-7fbceee60e82"
            .parse::<Guid>()
            .is_err());
        assert_ne!(Guid::generated(1), Guid::generated(2));
    }
}
