//! Typed values (`FWP_VALUE0` / `FWP_CONDITION_VALUE0`), match types and condition matching.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::schema::{Family, FieldKind};
use crate::{Field, Layer, WfpError};

/// `FWP_DATA_TYPE`: the kind of an [`FwpValue`], with its Windows number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// `FWP_EMPTY` 0.
    Empty = 0,
    /// `FWP_UINT8` 1.
    Uint8 = 1,
    /// `FWP_UINT16` 2.
    Uint16 = 2,
    /// `FWP_UINT32` 3.
    Uint32 = 3,
    /// `FWP_UINT64` 4.
    Uint64 = 4,
    /// `FWP_INT8` 5.
    Int8 = 5,
    /// `FWP_INT16` 6.
    Int16 = 6,
    /// `FWP_INT32` 7.
    Int32 = 7,
    /// `FWP_INT64` 8.
    Int64 = 8,
    /// `FWP_BYTE_ARRAY16_TYPE` 11.
    ByteArray16 = 11,
    /// `FWP_BYTE_BLOB_TYPE` 12.
    ByteBlob = 12,
    /// `FWP_SID` 13.
    Sid = 13,
    /// `FWP_SECURITY_DESCRIPTOR_TYPE` 14.
    SecurityDescriptor = 14,
    /// `FWP_TOKEN_ACCESS_INFORMATION_TYPE` 16.
    TokenAccessInformation = 16,
    /// `FWP_UNICODE_STRING_TYPE` 17.
    UnicodeString = 17,
    /// `FWP_V4_ADDR_MASK` 0x100.
    V4AddrMask = 0x100,
    /// `FWP_V6_ADDR_MASK` 0x101.
    V6AddrMask = 0x101,
    /// `FWP_RANGE_TYPE` 0x102.
    Range = 0x102,
}

/// A simplified security descriptor: an allow list and a deny list of principals (SID strings
/// such as `S-1-5-21-...-1001` or names such as `HOSTA\alice`). `S-1-1-0` / `Everyone` in the
/// allow list grants everybody. An access check grants when no principal of the token is
/// denied and at least one is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct SecurityDescriptor {
    /// Principals granted.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Principals denied (checked first).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A classify-time token: the user principal and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Token {
    /// User SID or name.
    pub user: String,
    /// Group SIDs or names.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Token {
    /// A token for `user` with no groups.
    pub fn user(user: impl Into<String>) -> Self {
        Token {
            user: user.into(),
            groups: Vec::new(),
        }
    }
    fn principals(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.user.as_str()).chain(self.groups.iter().map(String::as_str))
    }
}

impl SecurityDescriptor {
    /// A descriptor that allows exactly these principals.
    pub fn allow<I: IntoIterator<Item = S>, S: Into<String>>(principals: I) -> Self {
        SecurityDescriptor {
            allow: principals.into_iter().map(Into::into).collect(),
            deny: Vec::new(),
        }
    }
    /// Simplified `AccessCheck`: deny entries first, then allow entries.
    pub fn access_check(&self, token: &Token) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if token
            .principals()
            .any(|p| self.deny.iter().any(|d| eq(d, p)))
        {
            return false;
        }
        self.allow
            .iter()
            .any(|a| eq(a, "S-1-1-0") || eq(a, "Everyone") || token.principals().any(|p| eq(a, p)))
    }
}

/// A typed value (`FWP_VALUE0` plus the condition-only kinds of `FWP_CONDITION_VALUE0`).
/// There is no implicit conversion between kinds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FwpValue {
    /// `FWP_EMPTY`: no value (e.g. an unspecified local address, or a field unknown during
    /// re-authorization).
    #[default]
    Empty,
    /// `FWP_UINT8`.
    Uint8(u8),
    /// `FWP_UINT16`.
    Uint16(u16),
    /// `FWP_UINT32` (IPv4 addresses in host order).
    Uint32(u32),
    /// `FWP_UINT64`.
    Uint64(u64),
    /// `FWP_INT8`.
    Int8(i8),
    /// `FWP_INT16`.
    Int16(i16),
    /// `FWP_INT32`.
    Int32(i32),
    /// `FWP_INT64`.
    Int64(i64),
    /// `FWP_BYTE_ARRAY16_TYPE` (IPv6 addresses, network order).
    ByteArray16([u8; 16]),
    /// `FWP_BYTE_BLOB_TYPE`.
    ByteBlob(Vec<u8>),
    /// `FWP_SID`, as its string form.
    Sid(String),
    /// `FWP_SECURITY_DESCRIPTOR_TYPE` (conditions on token fields).
    SecurityDescriptor(Box<SecurityDescriptor>),
    /// `FWP_TOKEN_ACCESS_INFORMATION_TYPE` (classify-time value of token fields).
    Token(Box<Token>),
    /// `FWP_UNICODE_STRING_TYPE`.
    UnicodeString(String),
    /// `FWP_V4_ADDR_MASK` (condition only): address and mask, host order.
    V4AddrMask {
        /// Address.
        addr: u32,
        /// Mask (contiguous leading ones).
        mask: u32,
    },
    /// `FWP_V6_ADDR_MASK` (condition only).
    V6AddrMask {
        /// Address.
        addr: [u8; 16],
        /// Prefix length 0..=128.
        prefix_len: u8,
    },
    /// `FWP_RANGE_TYPE` (condition only): inclusive low..=high of one scalar kind.
    Range(Box<(FwpValue, FwpValue)>),
}

impl FwpValue {
    /// The `FWP_DATA_TYPE` of this value.
    pub fn data_type(&self) -> DataType {
        match self {
            FwpValue::Empty => DataType::Empty,
            FwpValue::Uint8(_) => DataType::Uint8,
            FwpValue::Uint16(_) => DataType::Uint16,
            FwpValue::Uint32(_) => DataType::Uint32,
            FwpValue::Uint64(_) => DataType::Uint64,
            FwpValue::Int8(_) => DataType::Int8,
            FwpValue::Int16(_) => DataType::Int16,
            FwpValue::Int32(_) => DataType::Int32,
            FwpValue::Int64(_) => DataType::Int64,
            FwpValue::ByteArray16(_) => DataType::ByteArray16,
            FwpValue::ByteBlob(_) => DataType::ByteBlob,
            FwpValue::Sid(_) => DataType::Sid,
            FwpValue::SecurityDescriptor(_) => DataType::SecurityDescriptor,
            FwpValue::Token(_) => DataType::TokenAccessInformation,
            FwpValue::UnicodeString(_) => DataType::UnicodeString,
            FwpValue::V4AddrMask { .. } => DataType::V4AddrMask,
            FwpValue::V6AddrMask { .. } => DataType::V6AddrMask,
            FwpValue::Range(_) => DataType::Range,
        }
    }

    /// The classify-time value of an address (`Uint32` for IPv4, `ByteArray16` for IPv6).
    pub fn addr(ip: IpAddr) -> FwpValue {
        match ip {
            IpAddr::V4(a) => FwpValue::Uint32(u32::from(a)),
            IpAddr::V6(a) => FwpValue::ByteArray16(a.octets()),
        }
    }

    /// An IPv4 prefix condition value `addr/len`.
    pub fn v4_prefix(addr: std::net::Ipv4Addr, len: u8) -> FwpValue {
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        };
        FwpValue::V4AddrMask {
            addr: u32::from(addr),
            mask,
        }
    }

    /// An inclusive range condition value.
    pub fn range(low: FwpValue, high: FwpValue) -> FwpValue {
        FwpValue::Range(Box::new((low, high)))
    }

    /// The `ALE_APP_ID` blob for an application path: lower-cased, UTF-16LE, NUL-terminated
    /// (what `FwpmGetAppIdFromFileName0` produces, without the device-path rewrite).
    pub fn app_id(path: &str) -> FwpValue {
        FwpValue::ByteBlob(utf16_blob(&path.to_lowercase()))
    }

    /// A `FWP_BYTE_BLOB_TYPE` holding `s` as NUL-terminated UTF-16LE, verbatim (no case change).
    pub fn utf16_blob(s: &str) -> FwpValue {
        FwpValue::ByteBlob(utf16_blob(s))
    }

    /// A security descriptor condition value.
    pub fn sd(sd: SecurityDescriptor) -> FwpValue {
        FwpValue::SecurityDescriptor(Box::new(sd))
    }

    /// A token classify-time value.
    pub fn token(t: Token) -> FwpValue {
        FwpValue::Token(Box::new(t))
    }

    fn as_u64(&self) -> Option<u64> {
        Some(match *self {
            FwpValue::Uint8(v) => v.into(),
            FwpValue::Uint16(v) => v.into(),
            FwpValue::Uint32(v) => v.into(),
            FwpValue::Uint64(v) => v,
            _ => return None,
        })
    }

    fn is_unsigned(&self) -> bool {
        self.as_u64().is_some()
    }

    fn is_sortable(&self) -> bool {
        matches!(
            self,
            FwpValue::Uint8(_)
                | FwpValue::Uint16(_)
                | FwpValue::Uint32(_)
                | FwpValue::Uint64(_)
                | FwpValue::Int8(_)
                | FwpValue::Int16(_)
                | FwpValue::Int32(_)
                | FwpValue::Int64(_)
                | FwpValue::ByteArray16(_)
                | FwpValue::ByteBlob(_)
                | FwpValue::UnicodeString(_)
        )
    }

    /// Ordering of two values of the same scalar kind; `None` if kinds differ or are unordered.
    pub fn compare(&self, other: &FwpValue) -> Option<Ordering> {
        use FwpValue::*;
        Some(match (self, other) {
            (Uint8(a), Uint8(b)) => a.cmp(b),
            (Uint16(a), Uint16(b)) => a.cmp(b),
            (Uint32(a), Uint32(b)) => a.cmp(b),
            (Uint64(a), Uint64(b)) => a.cmp(b),
            (Int8(a), Int8(b)) => a.cmp(b),
            (Int16(a), Int16(b)) => a.cmp(b),
            (Int32(a), Int32(b)) => a.cmp(b),
            (Int64(a), Int64(b)) => a.cmp(b),
            (ByteArray16(a), ByteArray16(b)) => a.cmp(b),
            (ByteBlob(a), ByteBlob(b)) => a.cmp(b),
            (UnicodeString(a), UnicodeString(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

pub(crate) fn utf16_blob(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

fn strip_nul(b: &[u8]) -> &[u8] {
    if b.len() >= 2 && b.len() % 2 == 0 && b[b.len() - 2..] == [0, 0] {
        &b[..b.len() - 2]
    } else {
        b
    }
}

/// `FWP_MATCH_TYPE`, with its Windows number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchType {
    /// `FWP_MATCH_EQUAL` 0.
    Equal = 0,
    /// `FWP_MATCH_GREATER` 1.
    Greater = 1,
    /// `FWP_MATCH_LESS` 2.
    Less = 2,
    /// `FWP_MATCH_GREATER_OR_EQUAL` 3.
    GreaterOrEqual = 3,
    /// `FWP_MATCH_LESS_OR_EQUAL` 4.
    LessOrEqual = 4,
    /// `FWP_MATCH_RANGE` 5 (inclusive).
    Range = 5,
    /// `FWP_MATCH_FLAGS_ALL_SET` 6.
    FlagsAllSet = 6,
    /// `FWP_MATCH_FLAGS_ANY_SET` 7.
    FlagsAnySet = 7,
    /// `FWP_MATCH_FLAGS_NONE_SET` 8.
    FlagsNoneSet = 8,
    /// `FWP_MATCH_EQUAL_CASE_INSENSITIVE` 9 (UNICODE_STRING only).
    EqualCaseInsensitive = 9,
    /// `FWP_MATCH_NOT_EQUAL` 10.
    NotEqual = 10,
    /// `FWP_MATCH_PREFIX` 11: despite the name, the value must END with the operand.
    Prefix = 11,
    /// `FWP_MATCH_NOT_PREFIX` 12: the value must NOT end with the operand.
    NotPrefix = 12,
}

impl MatchType {
    /// Parses `"equal"`, `"FWP_MATCH_EQUAL"`, `"range"`, `"flags_all_set"`, ... (case-insensitive).
    pub fn from_name(s: &str) -> Option<MatchType> {
        let t = s.trim().to_ascii_uppercase();
        let t = t.strip_prefix("FWP_MATCH_").unwrap_or(&t);
        Some(match t {
            "EQUAL" | "EQ" | "==" => MatchType::Equal,
            "GREATER" | "GT" | ">" => MatchType::Greater,
            "LESS" | "LT" | "<" => MatchType::Less,
            "GREATER_OR_EQUAL" | "GE" | ">=" => MatchType::GreaterOrEqual,
            "LESS_OR_EQUAL" | "LE" | "<=" => MatchType::LessOrEqual,
            "RANGE" => MatchType::Range,
            "FLAGS_ALL_SET" => MatchType::FlagsAllSet,
            "FLAGS_ANY_SET" => MatchType::FlagsAnySet,
            "FLAGS_NONE_SET" => MatchType::FlagsNoneSet,
            "EQUAL_CASE_INSENSITIVE" => MatchType::EqualCaseInsensitive,
            "NOT_EQUAL" | "NE" | "!=" => MatchType::NotEqual,
            "PREFIX" => MatchType::Prefix,
            "NOT_PREFIX" => MatchType::NotPrefix,
            _ => return None,
        })
    }

    /// Windows name, e.g. `"FWP_MATCH_EQUAL"`.
    pub fn name(self) -> &'static str {
        match self {
            MatchType::Equal => "FWP_MATCH_EQUAL",
            MatchType::Greater => "FWP_MATCH_GREATER",
            MatchType::Less => "FWP_MATCH_LESS",
            MatchType::GreaterOrEqual => "FWP_MATCH_GREATER_OR_EQUAL",
            MatchType::LessOrEqual => "FWP_MATCH_LESS_OR_EQUAL",
            MatchType::Range => "FWP_MATCH_RANGE",
            MatchType::FlagsAllSet => "FWP_MATCH_FLAGS_ALL_SET",
            MatchType::FlagsAnySet => "FWP_MATCH_FLAGS_ANY_SET",
            MatchType::FlagsNoneSet => "FWP_MATCH_FLAGS_NONE_SET",
            MatchType::EqualCaseInsensitive => "FWP_MATCH_EQUAL_CASE_INSENSITIVE",
            MatchType::NotEqual => "FWP_MATCH_NOT_EQUAL",
            MatchType::Prefix => "FWP_MATCH_PREFIX",
            MatchType::NotPrefix => "FWP_MATCH_NOT_PREFIX",
        }
    }
}

/// One filter condition (`FWPM_FILTER_CONDITION0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition {
    /// Field key.
    pub field: Field,
    /// Match type.
    pub match_type: MatchType,
    /// Operand.
    pub value: FwpValue,
}

impl Condition {
    /// Builds a condition.
    pub fn new(field: Field, match_type: MatchType, value: FwpValue) -> Self {
        Condition {
            field,
            match_type,
            value,
        }
    }

    /// Validates the condition for `layer` at add time.
    ///
    /// # Errors
    ///
    /// `ConditionNotFound` if the field is not available at the layer; `TypeMismatch` if the
    /// value's kind is not allowed for the field; `MatchTypeMismatch` if the match type is not
    /// valid for the value; `InvalidNetMask` / `InvalidRange` for malformed masks and ranges.
    pub fn validate(&self, layer: Layer) -> Result<(), WfpError> {
        if !layer.has_field(self.field) {
            return Err(WfpError::ConditionNotFound);
        }
        let fam = layer.family();
        let kind = self.field.kind();
        // 1. type of the operand vs the field
        let scalar_ok = |v: &FwpValue| -> bool { scalar_allowed(kind, fam, v) };
        match &self.value {
            FwpValue::Empty => {}
            FwpValue::Range(r) => {
                let (lo, hi) = &**r;
                if !scalar_ok(lo) || !scalar_ok(hi) || lo.data_type() != hi.data_type() {
                    return Err(WfpError::TypeMismatch);
                }
                if !lo.is_sortable() {
                    return Err(WfpError::MatchTypeMismatch);
                }
            }
            FwpValue::V4AddrMask { mask, .. } => {
                if !(kind == FieldKind::Address && fam == Family::V4) {
                    return Err(WfpError::TypeMismatch);
                }
                if mask.leading_ones() + mask.trailing_zeros() != 32 {
                    return Err(WfpError::InvalidNetMask);
                }
            }
            FwpValue::V6AddrMask { prefix_len, .. } => {
                if !(kind == FieldKind::Address && fam == Family::V6) {
                    return Err(WfpError::TypeMismatch);
                }
                if *prefix_len > 128 {
                    return Err(WfpError::InvalidNetMask);
                }
            }
            v => {
                if !scalar_ok(v) {
                    return Err(WfpError::TypeMismatch);
                }
            }
        }
        // 2. match type vs operand
        let v = &self.value;
        let ok = match self.match_type {
            MatchType::Equal | MatchType::NotEqual => !matches!(v, FwpValue::Range(_)),
            MatchType::Greater
            | MatchType::Less
            | MatchType::GreaterOrEqual
            | MatchType::LessOrEqual => v.is_sortable(),
            MatchType::Range => matches!(v, FwpValue::Range(_)),
            MatchType::FlagsAllSet | MatchType::FlagsAnySet | MatchType::FlagsNoneSet => {
                v.is_unsigned()
            }
            MatchType::EqualCaseInsensitive => matches!(v, FwpValue::UnicodeString(_)),
            MatchType::Prefix | MatchType::NotPrefix => {
                matches!(v, FwpValue::ByteBlob(_) | FwpValue::UnicodeString(_))
            }
        };
        if !ok {
            return Err(WfpError::MatchTypeMismatch);
        }
        if let FwpValue::Range(r) = v {
            if r.0.compare(&r.1) == Some(Ordering::Greater) {
                return Err(WfpError::InvalidRange);
            }
        }
        Ok(())
    }

    /// Whether the incoming value `v` satisfies this condition.
    #[inline]
    pub fn matches(&self, v: &FwpValue) -> bool {
        let c = &self.value;
        use FwpValue as V;
        match self.match_type {
            MatchType::Equal => equal(v, c),
            MatchType::NotEqual => !equal(v, c),
            MatchType::Greater => v.compare(c) == Some(Ordering::Greater),
            MatchType::Less => v.compare(c) == Some(Ordering::Less),
            MatchType::GreaterOrEqual => {
                matches!(v.compare(c), Some(Ordering::Greater | Ordering::Equal))
            }
            MatchType::LessOrEqual => {
                matches!(v.compare(c), Some(Ordering::Less | Ordering::Equal))
            }
            MatchType::Range => match c {
                V::Range(r) => {
                    matches!(v.compare(&r.0), Some(Ordering::Greater | Ordering::Equal))
                        && matches!(v.compare(&r.1), Some(Ordering::Less | Ordering::Equal))
                }
                _ => false,
            },
            MatchType::FlagsAllSet => match (v.as_u64(), c.as_u64()) {
                (Some(a), Some(b)) if v.data_type() == c.data_type() => a & b == b,
                _ => false,
            },
            MatchType::FlagsAnySet => match (v.as_u64(), c.as_u64()) {
                (Some(a), Some(b)) if v.data_type() == c.data_type() => a & b != 0,
                _ => false,
            },
            MatchType::FlagsNoneSet => match (v.as_u64(), c.as_u64()) {
                (Some(a), Some(b)) if v.data_type() == c.data_type() => a & b == 0,
                _ => false,
            },
            MatchType::EqualCaseInsensitive => match (v, c) {
                (V::UnicodeString(a), V::UnicodeString(b)) => a.to_lowercase() == b.to_lowercase(),
                _ => false,
            },
            MatchType::Prefix => suffix(v, c),
            MatchType::NotPrefix => match (v, c) {
                (V::ByteBlob(_), V::ByteBlob(_)) | (V::UnicodeString(_), V::UnicodeString(_)) => {
                    !suffix(v, c)
                }
                _ => false,
            },
        }
    }
}

fn scalar_allowed(kind: FieldKind, fam: Family, v: &FwpValue) -> bool {
    use FwpValue as V;
    match kind {
        FieldKind::Address => match fam {
            Family::V4 => matches!(v, V::Uint32(_)),
            Family::V6 => matches!(v, V::ByteArray16(_)),
            Family::None => false,
        },
        FieldKind::Uint8 => matches!(v, V::Uint8(_)),
        FieldKind::Uint16 => matches!(v, V::Uint16(_)),
        FieldKind::Uint32 => matches!(v, V::Uint32(_)),
        FieldKind::Uint64 => matches!(v, V::Uint64(_)),
        FieldKind::ByteArray16 => matches!(v, V::ByteArray16(_)),
        FieldKind::ByteBlob => matches!(v, V::ByteBlob(_)),
        FieldKind::UnicodeString => matches!(v, V::UnicodeString(_)),
        FieldKind::Sid => matches!(v, V::Sid(_)),
        FieldKind::Token => matches!(v, V::SecurityDescriptor(_)),
    }
}

#[inline]
fn equal(v: &FwpValue, c: &FwpValue) -> bool {
    use FwpValue as V;
    match (v, c) {
        (V::Uint32(a), V::V4AddrMask { addr, mask }) => a & mask == addr & mask,
        (V::ByteArray16(a), V::V6AddrMask { addr, prefix_len }) => {
            let m = if *prefix_len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from((*prefix_len).min(128)))
            };
            u128::from_be_bytes(*a) & m == u128::from_be_bytes(*addr) & m
        }
        (V::Token(t), V::SecurityDescriptor(sd)) => sd.access_check(t),
        (V::Sid(a), V::Sid(b)) => a.eq_ignore_ascii_case(b),
        _ => v == c,
    }
}

fn suffix(v: &FwpValue, c: &FwpValue) -> bool {
    use FwpValue as V;
    match (v, c) {
        (V::ByteBlob(a), V::ByteBlob(b)) => {
            let (a, b) = (strip_nul(a), strip_nul(b));
            // compare whole UTF-16 code units when both are even-length blobs
            a.ends_with(b) && (a.len() % 2 != 0 || b.len() % 2 != 0 || (a.len() - b.len()) % 2 == 0)
        }
        (V::UnicodeString(a), V::UnicodeString(b)) => a.ends_with(b.as_str()),
        _ => false,
    }
}

/// The incoming values of one classification: one [`FwpValue`] per known [`Field`], `Empty`
/// when not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingValues {
    vals: Vec<FwpValue>,
}

impl Default for IncomingValues {
    fn default() -> Self {
        Self::new()
    }
}

impl IncomingValues {
    /// All fields `Empty`.
    pub fn new() -> Self {
        IncomingValues {
            vals: vec![FwpValue::Empty; Field::COUNT],
        }
    }
    /// Sets a field.
    pub fn set(&mut self, field: Field, v: FwpValue) -> &mut Self {
        self.vals[field.index()] = v;
        self
    }
    /// Builder-style [`IncomingValues::set`].
    pub fn with(mut self, field: Field, v: FwpValue) -> Self {
        self.set(field, v);
        self
    }
    /// The value of a field (`Empty` if unset).
    #[inline]
    pub fn get(&self, field: Field) -> &FwpValue {
        &self.vals[field.index()]
    }
    /// Iterates the non-empty fields.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &FwpValue)> {
        Field::all()
            .map(move |f| (f, &self.vals[f.index()]))
            .filter(|(_, v)| !matches!(v, FwpValue::Empty))
    }
}
