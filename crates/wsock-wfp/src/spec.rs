//! Config-friendly, serde-deserializable specs of filters, sublayers and providers, and their
//! validation into engine objects (what the scenario TOML and the CLI use).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::object::{filter_flags, Action, Filter, Provider, Sublayer, Weight};
use crate::schema::{condition_flags, Family, FieldKind};
use crate::value::{Condition, FwpValue, MatchType, SecurityDescriptor};
use crate::{Engine, Field, Guid, Layer, SessionId, WfpError};

/// A filter as written in a scenario file.
///
/// ```toml
/// [[filters]]
/// name = "block web"
/// layer = "FWPM_LAYER_ALE_AUTH_CONNECT_V4"
/// sublayer = "FWPM_SUBLAYER_UNIVERSAL"   # or a GUID, or a user sublayer's name
/// action = "block"                        # permit | block | callout_terminating | callout_inspection | callout_unknown
/// weight = 10                             # or "auto", "range:3", { range = 3 }
/// flags = ["clear_action_right"]
/// conditions = [
///   { field = "ip_remote_port", match = "equal", value = 80 },
///   { field = "ip_remote_address", match = "equal", value = "10.0.0.0/8" },
///   { field = "ip_local_port", match = "range", value = { low = 1000, high = 2000 } },
///   { field = "ip_local_port", match = "equal", value = { type = "uint32", value = 80 } },  # explicit type
/// ]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// Display name (required; empty -> `FWP_E_NULL_DISPLAY_NAME`).
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Filter key (GUID); absent = generated.
    #[serde(default)]
    pub key: Option<String>,
    /// Layer name (`FWPM_LAYER_...`, prefix optional) or GUID.
    #[serde(default)]
    pub layer: String,
    /// Sublayer: Windows built-in name, GUID, or the name of a sublayer added earlier.
    #[serde(default)]
    pub sublayer: Option<String>,
    /// Provider: GUID, built-in name or the name of a provider added earlier.
    #[serde(default)]
    pub provider: Option<String>,
    /// `permit`, `block`, `callout_terminating`, `callout_inspection`, `callout_unknown`.
    #[serde(default)]
    pub action: String,
    /// Callout key (GUID) for callout actions.
    #[serde(default)]
    pub callout: Option<String>,
    /// Weight; absent = automatic.
    #[serde(default)]
    pub weight: Option<WeightSpec>,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<ConditionSpec>,
    /// Flag names (`clear_action_right`, `persistent`, `permit_if_callout_unregistered`, ...).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Provider context key (GUID) or name.
    #[serde(default)]
    pub provider_context: Option<String>,
    /// `rawContext`.
    #[serde(default)]
    pub raw_context: u64,
}

/// A filter weight in a spec. A negative or fractional number deserializes as
/// [`WeightSpec::Text`], so that it is rejected with `FWP_E_INVALID_WEIGHT` like any other bad
/// weight rather than as a parse error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum WeightSpec {
    /// A number: `FWP_UINT64` exact weight.
    Exact(u64),
    /// `"auto"` / `"empty"`, `"range:N"`, or a hex/decimal exact weight string.
    Text(String),
    /// `{ range = N }` (FWP_UINT8) or `{ exact = N }`.
    Table {
        /// Weight range 0..=15.
        #[serde(default)]
        range: Option<u64>,
        /// Exact weight.
        #[serde(default)]
        exact: Option<u64>,
    },
}

/// What a weight may be written as; see [`WeightSpec`].
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum WeightRepr {
    Exact(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    Table {
        #[serde(default)]
        range: Option<u64>,
        #[serde(default)]
        exact: Option<u64>,
    },
}

impl<'de> serde::Deserialize<'de> for WeightSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match WeightRepr::deserialize(d)? {
            WeightRepr::Exact(v) => WeightSpec::Exact(v),
            WeightRepr::Signed(v) => WeightSpec::Text(v.to_string()),
            WeightRepr::Float(v) => WeightSpec::Text(v.to_string()),
            WeightRepr::Text(t) => WeightSpec::Text(t),
            WeightRepr::Table { range, exact } => WeightSpec::Table { range, exact },
        })
    }
}

/// One condition in a spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// Field name (`FWPM_CONDITION_...`, prefix optional, case-insensitive) or GUID.
    pub field: String,
    /// Match type (`equal`, `range`, `prefix`, `FWP_MATCH_FLAGS_ALL_SET`, ...).
    #[serde(rename = "match", alias = "match_type")]
    pub match_type: String,
    /// Operand; converted according to the field's type (see [`ValueSpec`]).
    pub value: ValueSpec,
}

impl ConditionSpec {
    /// Builds a condition spec.
    pub fn new(field: &str, match_type: &str, value: ValueSpec) -> Self {
        ConditionSpec {
            field: field.into(),
            match_type: match_type.into(),
            value,
        }
    }
}

/// A condition operand in a spec. Untyped numbers and strings take the field's type
/// (a port number becomes `FWP_UINT16`, `"10.0.0.0/8"` on an IPv4 address field becomes
/// `FWP_V4_ADDR_MASK`, an app path becomes the lower-cased UTF-16 app-id blob); a
/// `{ type = "...", value = ... }` table forces an explicit `FWP_*` type, which is then checked
/// against the field with no conversion (so `{ type = "uint32", value = 80 }` on a port field
/// fails with `FWP_E_TYPE_MISMATCH`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum ValueSpec {
    /// A number.
    Int(i64),
    /// A string.
    Str(String),
    /// `{ low = .., high = .. }`: an `FWP_RANGE`.
    Range {
        /// Low end (inclusive).
        low: Box<ValueSpec>,
        /// High end (inclusive).
        high: Box<ValueSpec>,
    },
    /// `{ type = "uint32", value = .. }`: explicit type.
    Typed {
        /// `empty`, `uint8`, `uint16`, `uint32`, `uint64`, `int8`..`int64`, `byte_blob`,
        /// `app_id`, `unicode_string`, `sid`, `byte_array16`, `v4_addr_mask`, `v6_addr_mask`.
        #[serde(rename = "type")]
        ty: String,
        /// The value (absent for `empty`).
        #[serde(default)]
        value: Option<Box<ValueSpec>>,
    },
    /// `{ allow = [..], deny = [..] }`: a security descriptor (token fields).
    Sd {
        /// Allowed principals.
        allow: Vec<String>,
        /// Denied principals.
        #[serde(default)]
        deny: Vec<String>,
    },
}

/// A sublayer as written in a scenario file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SublayerSpec {
    /// Display name (required).
    #[serde(default)]
    pub name: String,
    /// Key (GUID); absent = generated.
    #[serde(default)]
    pub key: Option<String>,
    /// Weight (higher first).
    #[serde(default)]
    pub weight: u16,
    /// Provider (GUID or name).
    #[serde(default)]
    pub provider: Option<String>,
    /// `persistent`.
    #[serde(default)]
    pub flags: Vec<String>,
}

/// A provider as written in a scenario file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Display name (required).
    #[serde(default)]
    pub name: String,
    /// Key (GUID); absent = generated.
    #[serde(default)]
    pub key: Option<String>,
    /// Service name.
    #[serde(default)]
    pub service_name: Option<String>,
    /// `persistent`.
    #[serde(default)]
    pub flags: Vec<String>,
}

/// Why a spec was rejected: the `FWP_E_*` reason, where in the spec, and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message} ({} 0x{:08X})", error.name(), error.hresult())]
pub struct SpecError {
    /// The Windows reason.
    pub error: WfpError,
    /// Where: `"layer"`, `"conditions[1].value"`, ...
    pub path: String,
    /// Explanation for humans.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(
        error: WfpError,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            error,
            path: path.into(),
            message: message.into(),
        }
    }
    /// The HRESULT of the reason.
    pub fn hresult(&self) -> u32 {
        self.error.hresult()
    }
}

impl From<SpecError> for WfpError {
    fn from(e: SpecError) -> Self {
        e.error
    }
}

fn parse_guid(s: &str, path: &str) -> Result<Guid, SpecError> {
    s.parse().map_err(|_| {
        SpecError::new(
            WfpError::InvalidParameter,
            path,
            format!("not a GUID: {s:?}"),
        )
    })
}

fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim().replace('_', "");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        t.parse().ok()
    }
}

fn weight_from(w: &WeightSpec) -> Result<Weight, SpecError> {
    let bad = |m: String| SpecError::new(WfpError::InvalidWeight, "weight", m);
    let range = |r: u64| -> Result<Weight, SpecError> {
        u8::try_from(r)
            .map(Weight::Range)
            .map_err(|_| bad(format!("weight range {r} is not 0..=15")))
    };
    match w {
        WeightSpec::Exact(v) => Ok(Weight::Exact(*v)),
        WeightSpec::Table {
            range: Some(r),
            exact: None,
        } => range(*r),
        WeightSpec::Table {
            range: None,
            exact: Some(e),
        } => Ok(Weight::Exact(*e)),
        WeightSpec::Table { .. } => Err(bad("give exactly one of `range` or `exact`".into())),
        WeightSpec::Text(t) => {
            let l = t.trim().to_ascii_lowercase();
            if l == "auto" || l == "empty" {
                Ok(Weight::Auto)
            } else if let Some(r) = l
                .strip_prefix("range:")
                .or_else(|| l.strip_prefix("uint8:"))
            {
                range(parse_u64(r).ok_or_else(|| bad(format!("bad weight {t:?}")))?)
            } else {
                parse_u64(&l)
                    .map(Weight::Exact)
                    .ok_or_else(|| bad(format!("bad weight {t:?}")))
            }
        }
    }
}

fn flag_names_u32(s: &str) -> Option<u32> {
    use condition_flags as cf;
    let mut v = 0;
    for part in s.split(['|', ',']) {
        let p = part.trim().to_ascii_uppercase();
        let p = p.strip_prefix("FWP_CONDITION_FLAG_").unwrap_or(&p);
        v |= match p {
            "IS_LOOPBACK" => cf::IS_LOOPBACK,
            "IS_IPSEC_SECURED" => cf::IS_IPSEC_SECURED,
            "IS_REAUTHORIZE" => cf::IS_REAUTHORIZE,
            "IS_WILDCARD_BIND" => cf::IS_WILDCARD_BIND,
            "IS_RAW_ENDPOINT" => cf::IS_RAW_ENDPOINT,
            "IS_FRAGMENT" => cf::IS_FRAGMENT,
            "IS_IMPLICIT_BIND" => cf::IS_IMPLICIT_BIND,
            "IS_PROMISCUOUS" => cf::IS_PROMISCUOUS,
            _ => return None,
        };
    }
    Some(v)
}

fn int_for(kind: FieldKind, fam: Family, n: i128, path: &str) -> Result<FwpValue, SpecError> {
    let oob = || {
        SpecError::new(
            WfpError::OutOfBounds,
            path,
            format!("{n} does not fit the field's type"),
        )
    };
    Ok(match kind {
        FieldKind::Uint8 => FwpValue::Uint8(u8::try_from(n).map_err(|_| oob())?),
        FieldKind::Uint16 => FwpValue::Uint16(u16::try_from(n).map_err(|_| oob())?),
        FieldKind::Uint32 => FwpValue::Uint32(u32::try_from(n).map_err(|_| oob())?),
        FieldKind::Uint64 => FwpValue::Uint64(u64::try_from(n).map_err(|_| oob())?),
        FieldKind::Address if fam == Family::V4 => {
            FwpValue::Uint32(u32::try_from(n).map_err(|_| oob())?)
        }
        _ => {
            return Err(SpecError::new(
                WfpError::TypeMismatch,
                path,
                "a number is not a value of this field's type",
            ));
        }
    })
}

fn addr_for(fam: Family, s: &str, path: &str) -> Result<FwpValue, SpecError> {
    let tm = |m: String| SpecError::new(WfpError::TypeMismatch, path, m);
    let (a, pfx) = match s.split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim())),
        None => (s.trim(), None),
    };
    let ip: IpAddr = a
        .parse()
        .map_err(|_| tm(format!("not an IP address: {a:?}")))?;
    match (ip, fam) {
        (IpAddr::V4(v4), Family::V4) => match pfx {
            None => Ok(FwpValue::Uint32(u32::from(v4))),
            Some(p) => {
                if let Ok(m) = p.parse::<Ipv4Addr>() {
                    let mask = u32::from(m);
                    if mask.leading_ones() + mask.trailing_zeros() != 32 {
                        return Err(SpecError::new(
                            WfpError::InvalidNetMask,
                            path,
                            format!("mask {p} is not contiguous"),
                        ));
                    }
                    Ok(FwpValue::V4AddrMask {
                        addr: u32::from(v4),
                        mask,
                    })
                } else {
                    let len: u8 = p.parse().ok().filter(|l| *l <= 32).ok_or_else(|| {
                        SpecError::new(
                            WfpError::InvalidNetMask,
                            path,
                            format!("bad prefix length {p:?}"),
                        )
                    })?;
                    Ok(FwpValue::v4_prefix(v4, len))
                }
            }
        },
        (IpAddr::V6(v6), Family::V6) => match pfx {
            None => Ok(FwpValue::ByteArray16(v6.octets())),
            Some(p) => {
                let len: u8 = p.parse().ok().filter(|l| *l <= 128).ok_or_else(|| {
                    SpecError::new(
                        WfpError::InvalidNetMask,
                        path,
                        format!("bad prefix length {p:?}"),
                    )
                })?;
                Ok(FwpValue::V6AddrMask {
                    addr: v6.octets(),
                    prefix_len: len,
                })
            }
        },
        (IpAddr::V4(v4), Family::V6) => {
            // dual-stack layers see IPv4 as v4-mapped IPv6
            let m: Ipv6Addr = v4.to_ipv6_mapped();
            match pfx {
                None => Ok(FwpValue::ByteArray16(m.octets())),
                Some(p) => {
                    let len: u8 = p.parse().ok().filter(|l| *l <= 32).ok_or_else(|| {
                        SpecError::new(
                            WfpError::InvalidNetMask,
                            path,
                            format!("bad prefix length {p:?}"),
                        )
                    })?;
                    Ok(FwpValue::V6AddrMask {
                        addr: m.octets(),
                        prefix_len: 96 + len,
                    })
                }
            }
        }
        _ => Err(tm(format!("{a} is not an address of this layer's family"))),
    }
}

fn value_for(field: Field, fam: Family, v: &ValueSpec, path: &str) -> Result<FwpValue, SpecError> {
    let kind = field.kind();
    let tm = |m: String| SpecError::new(WfpError::TypeMismatch, path, m);
    match v {
        ValueSpec::Int(n) if kind == FieldKind::Address => Err(tm(format!(
            "{} is an address field: {n} is not an IP address (write \"10.0.0.1\" or \"10.0.0.0/8\"; \
             {{ type = \"uint32\", value = {n} }} for a raw FWP_UINT32)",
            field.name()
        ))),
        ValueSpec::Int(n) => int_for(kind, fam, i128::from(*n), path),
        ValueSpec::Range { low, high } => {
            let lo = value_for(field, fam, low, &format!("{path}.low"))?;
            let hi = value_for(field, fam, high, &format!("{path}.high"))?;
            Ok(FwpValue::range(lo, hi))
        }
        ValueSpec::Sd { allow, deny } => Ok(FwpValue::sd(SecurityDescriptor {
            allow: allow.clone(),
            deny: deny.clone(),
        })),
        ValueSpec::Typed { ty, value } => typed_value(ty, value.as_deref(), path),
        ValueSpec::Str(s) => match kind {
            FieldKind::Address => addr_for(fam, s, path),
            FieldKind::Uint8 if field == Field::IP_PROTOCOL => {
                let p = match s.trim().to_ascii_lowercase().as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    "icmpv6" => 58,
                    "esp" => 50,
                    "ah" => 51,
                    other => {
                        parse_u64(other).ok_or_else(|| tm(format!("unknown protocol {s:?}")))?
                    }
                };
                int_for(kind, fam, i128::from(p), path)
            }
            FieldKind::Uint32 if field == Field::FLAGS => match flag_names_u32(s) {
                Some(f) => Ok(FwpValue::Uint32(f)),
                None => int_for(
                    kind,
                    fam,
                    i128::from(parse_u64(s).ok_or_else(|| tm(format!("bad flags {s:?}")))?),
                    path,
                ),
            },
            FieldKind::Uint8 | FieldKind::Uint16 | FieldKind::Uint32 | FieldKind::Uint64 => {
                let n = parse_u64(s).ok_or_else(|| tm(format!("not a number: {s:?}")))?;
                int_for(kind, fam, i128::from(n), path)
            }
            FieldKind::ByteBlob if field == Field::ALE_APP_ID => Ok(FwpValue::app_id(s)),
            FieldKind::ByteBlob => Ok(FwpValue::utf16_blob(s)),
            FieldKind::UnicodeString => Ok(FwpValue::UnicodeString(s.clone())),
            FieldKind::Sid => Ok(FwpValue::Sid(s.clone())),
            FieldKind::Token => Ok(FwpValue::sd(SecurityDescriptor::allow([s.clone()]))),
            FieldKind::ByteArray16 => {
                let g = parse_guid(s, path).map_err(|_| tm(format!("not a GUID: {s:?}")))?;
                Ok(FwpValue::ByteArray16(g.as_u128().to_be_bytes()))
            }
        },
    }
}

fn typed_value(ty: &str, v: Option<&ValueSpec>, path: &str) -> Result<FwpValue, SpecError> {
    let t = ty.trim().to_ascii_lowercase();
    let t = t
        .strip_prefix("fwp_")
        .unwrap_or(&t)
        .trim_end_matches("_type")
        .to_string();
    let need = |v: Option<&ValueSpec>| -> Result<ValueSpec, SpecError> {
        v.cloned().ok_or_else(|| {
            SpecError::new(
                WfpError::NullPointer,
                path,
                format!("type {ty:?} needs a value"),
            )
        })
    };
    let int = |v: Option<&ValueSpec>| -> Result<i128, SpecError> {
        match need(v)? {
            ValueSpec::Int(n) => Ok(n.into()),
            ValueSpec::Str(s) => parse_u64(&s).map(i128::from).ok_or_else(|| {
                SpecError::new(WfpError::TypeMismatch, path, format!("not a number: {s:?}"))
            }),
            _ => Err(SpecError::new(
                WfpError::TypeMismatch,
                path,
                "expected a number",
            )),
        }
    };
    let string = |v: Option<&ValueSpec>| -> Result<String, SpecError> {
        match need(v)? {
            ValueSpec::Str(s) => Ok(s),
            _ => Err(SpecError::new(
                WfpError::TypeMismatch,
                path,
                "expected a string",
            )),
        }
    };
    let oob = || {
        SpecError::new(
            WfpError::OutOfBounds,
            path,
            format!("value out of range for {ty}"),
        )
    };
    Ok(match t.as_str() {
        "empty" => FwpValue::Empty,
        "uint8" => FwpValue::Uint8(u8::try_from(int(v)?).map_err(|_| oob())?),
        "uint16" => FwpValue::Uint16(u16::try_from(int(v)?).map_err(|_| oob())?),
        "uint32" => FwpValue::Uint32(u32::try_from(int(v)?).map_err(|_| oob())?),
        "uint64" => FwpValue::Uint64(u64::try_from(int(v)?).map_err(|_| oob())?),
        "int8" => FwpValue::Int8(i8::try_from(int(v)?).map_err(|_| oob())?),
        "int16" => FwpValue::Int16(i16::try_from(int(v)?).map_err(|_| oob())?),
        "int32" => FwpValue::Int32(i32::try_from(int(v)?).map_err(|_| oob())?),
        "int64" => FwpValue::Int64(i64::try_from(int(v)?).map_err(|_| oob())?),
        "byte_blob" => FwpValue::utf16_blob(&string(v)?),
        "app_id" => FwpValue::app_id(&string(v)?),
        "unicode_string" => FwpValue::UnicodeString(string(v)?),
        "sid" => FwpValue::Sid(string(v)?),
        "byte_array16" => {
            let s = string(v)?;
            match s.parse::<Ipv6Addr>() {
                Ok(a) => FwpValue::ByteArray16(a.octets()),
                Err(_) => FwpValue::ByteArray16(parse_guid(&s, path)?.as_u128().to_be_bytes()),
            }
        }
        "v4_addr_mask" => addr_for(Family::V4, &string(v)?, path)?,
        "v6_addr_mask" => addr_for(Family::V6, &string(v)?, path)?,
        _ => {
            return Err(SpecError::new(
                WfpError::InvalidParameter,
                path,
                format!("unknown value type {ty:?}"),
            ))
        }
    })
}

impl Engine {
    fn resolve_sublayer(&self, sid: SessionId, s: &str) -> Result<Guid, SpecError> {
        let nf = || {
            SpecError::new(
                WfpError::SublayerNotFound,
                "sublayer",
                format!("no sublayer {s:?}"),
            )
        };
        let all = self
            .enum_sublayers(sid)
            .map_err(|e| SpecError::new(e, "sublayer", "bad session"))?;
        if let Ok(g) = s.parse::<Guid>() {
            return all
                .iter()
                .find(|x| x.key == g)
                .map(|x| x.key)
                .ok_or_else(nf);
        }
        let n = s.trim();
        all.iter()
            .find(|x| {
                x.name.eq_ignore_ascii_case(n)
                    || x.name
                        .strip_prefix("FWPM_SUBLAYER_")
                        .is_some_and(|t| t.eq_ignore_ascii_case(n))
            })
            .map(|x| x.key)
            .ok_or_else(nf)
    }

    pub(crate) fn resolve_provider(
        &self,
        sid: SessionId,
        s: &str,
        path: &str,
    ) -> Result<Guid, SpecError> {
        let nf = || {
            SpecError::new(
                WfpError::ProviderNotFound,
                path,
                format!("no provider {s:?}"),
            )
        };
        let all = self
            .enum_providers(sid)
            .map_err(|e| SpecError::new(e, path, "bad session"))?;
        if let Ok(g) = s.parse::<Guid>() {
            return all
                .iter()
                .find(|x| x.key == g)
                .map(|x| x.key)
                .ok_or_else(nf);
        }
        all.iter()
            .find(|x| x.name.eq_ignore_ascii_case(s.trim()))
            .map(|x| x.key)
            .ok_or_else(nf)
    }

    /// Validates a [`FilterSpec`] and builds the [`Filter`] it describes (without adding it).
    ///
    /// # Errors
    ///
    /// A [`SpecError`] carrying the `FWP_E_*` reason: `LAYER_NOT_FOUND` (unknown layer),
    /// `CONDITION_NOT_FOUND` (unknown field or field not at the layer), `TYPE_MISMATCH`,
    /// `MATCH_TYPE_MISMATCH`, `INVALID_PARAMETER` (unknown match type, bad GUID),
    /// `INVALID_ACTION_TYPE`, `INVALID_FLAGS`, `INVALID_WEIGHT`, `INVALID_NET_MASK`,
    /// `INVALID_RANGE`, `OUT_OF_BOUNDS`, `SUBLAYER_NOT_FOUND`, `PROVIDER_NOT_FOUND`,
    /// `PROVIDER_CONTEXT_NOT_FOUND`, `NULL_DISPLAY_NAME`.
    pub fn filter_from_spec(&self, sid: SessionId, spec: &FilterSpec) -> Result<Filter, SpecError> {
        if spec.name.is_empty() {
            return Err(SpecError::new(
                WfpError::NullDisplayName,
                "name",
                "a filter needs a name",
            ));
        }
        let layer = Layer::from_name(&spec.layer)
            .or_else(|| spec.layer.parse().ok().and_then(Layer::from_guid))
            .ok_or_else(|| {
                SpecError::new(
                    WfpError::LayerNotFound,
                    "layer",
                    format!("unknown layer {:?}", spec.layer),
                )
            })?;
        let callout = match &spec.callout {
            Some(c) => Some(parse_guid(c, "callout")?),
            None => None,
        };
        let need_callout = || {
            callout.ok_or_else(|| {
                SpecError::new(
                    WfpError::CalloutNotFound,
                    "callout",
                    "callout actions need `callout = \"<guid>\"`",
                )
            })
        };
        let action = match spec
            .action
            .trim()
            .to_ascii_lowercase()
            .trim_start_matches("fwp_action_")
        {
            "block" => Action::Block,
            "permit" | "allow" => Action::Permit,
            "callout_terminating" => Action::CalloutTerminating(need_callout()?),
            "callout_inspection" => Action::CalloutInspection(need_callout()?),
            "callout_unknown" => Action::CalloutUnknown(need_callout()?),
            other => {
                return Err(SpecError::new(
                    WfpError::InvalidActionType,
                    "action",
                    format!("unknown action {other:?}"),
                ));
            }
        };
        let mut f = Filter::new(spec.name.clone(), layer, action);
        f.description = spec.description.clone();
        f.raw_context = spec.raw_context;
        if let Some(k) = &spec.key {
            f.key = parse_guid(k, "key")?;
        }
        for (i, fl) in spec.flags.iter().enumerate() {
            let bit = filter_flags::from_name(fl).ok_or_else(|| {
                SpecError::new(
                    WfpError::InvalidFlags,
                    format!("flags[{i}]"),
                    format!("unknown flag {fl:?}"),
                )
            })?;
            if bit == filter_flags::DISABLED {
                // Windows: "cannot be set when adding new filters"; BFE sets it on the filters of
                // a provider whose service is not set to auto-start.
                return Err(SpecError::new(
                    WfpError::InvalidFlags,
                    format!("flags[{i}]"),
                    "FWPM_FILTER_FLAG_DISABLED is output only: it cannot be set when adding a \
                     filter (delete the filter to stop it matching)",
                ));
            }
            f.flags |= bit;
        }
        if let Some(w) = &spec.weight {
            f.weight = weight_from(w)?;
            if let Weight::Range(r) = f.weight {
                if r > 15 {
                    return Err(SpecError::new(
                        WfpError::InvalidWeight,
                        "weight",
                        format!("weight range {r} is not 0..=15"),
                    ));
                }
            }
        }
        if let Some(s) = &spec.sublayer {
            f.sublayer = self.resolve_sublayer(sid, s)?;
        }
        if let Some(p) = &spec.provider {
            f.provider_key = Some(self.resolve_provider(sid, p, "provider")?);
        }
        if let Some(pc) = &spec.provider_context {
            let all = self
                .enum_provider_contexts(sid)
                .map_err(|e| SpecError::new(e, "provider_context", "bad session"))?;
            let key = pc
                .parse::<Guid>()
                .ok()
                .filter(|g| all.iter().any(|c| c.key == *g))
                .or_else(|| {
                    all.iter()
                        .find(|c| c.name.eq_ignore_ascii_case(pc))
                        .map(|c| c.key)
                })
                .ok_or_else(|| {
                    SpecError::new(
                        WfpError::ProviderContextNotFound,
                        "provider_context",
                        format!("no provider context {pc:?}"),
                    )
                })?;
            f = f.provider_context(key);
        }
        for (i, c) in spec.conditions.iter().enumerate() {
            let path = format!("conditions[{i}]");
            let field = Field::from_name(&c.field)
                .or_else(|| c.field.parse().ok().and_then(Field::from_guid))
                .ok_or_else(|| {
                    SpecError::new(
                        WfpError::ConditionNotFound,
                        format!("{path}.field"),
                        format!("unknown condition field {:?}", c.field),
                    )
                })?;
            if !layer.has_field(field) {
                return Err(SpecError::new(
                    WfpError::ConditionNotFound,
                    format!("{path}.field"),
                    format!("{} is not available at {}", field.name(), layer.name()),
                ));
            }
            let m = MatchType::from_name(&c.match_type).ok_or_else(|| {
                SpecError::new(
                    WfpError::InvalidParameter,
                    format!("{path}.match"),
                    format!("unknown match type {:?}", c.match_type),
                )
            })?;
            let value = value_for(field, layer.family(), &c.value, &format!("{path}.value"))?;
            let cond = Condition::new(field, m, value);
            cond.validate(layer).map_err(|e| {
                SpecError::new(
                    e,
                    format!("{path}.value"),
                    format!("{} {} rejected for {}", m.name(), e.name(), field.name()),
                )
            })?;
            f.conditions.push(cond);
        }
        Ok(f)
    }

    /// Validates and adds a [`FilterSpec`]; returns the filter id.
    ///
    /// # Errors
    ///
    /// See [`Engine::filter_from_spec`]; plus everything [`Engine::add_filter`] returns
    /// (reported with path `""`).
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_wfp::*;
    /// let mut e = Engine::new();
    /// let s = e.open_session(false);
    /// let spec = FilterSpec {
    ///     name: "x".into(),
    ///     layer: "ALE_RESOURCE_ASSIGNMENT_V4".into(),
    ///     action: "block".into(),
    ///     conditions: vec![ConditionSpec::new("ip_remote_address", "equal", ValueSpec::Str("10.0.0.1".into()))],
    ///     ..Default::default()
    /// };
    /// let err = e.add_spec(s, &spec).unwrap_err();
    /// assert_eq!(err.error, WfpError::ConditionNotFound);
    /// assert_eq!(err.hresult(), 0x8032_0002);
    /// ```
    pub fn add_spec(&mut self, sid: SessionId, spec: &FilterSpec) -> Result<u64, SpecError> {
        let f = self.filter_from_spec(sid, spec)?;
        self.add_filter(sid, &f)
            .map_err(|e| SpecError::new(e, "", format!("FwpmFilterAdd0 failed: {e}")))
    }

    /// Validates and adds a [`SublayerSpec`]; returns the key.
    ///
    /// # Errors
    ///
    /// `NULL_DISPLAY_NAME`, `INVALID_PARAMETER` (bad key), `INVALID_FLAGS`, `PROVIDER_NOT_FOUND`,
    /// `ALREADY_EXISTS`, ... as [`Engine::add_sublayer`].
    pub fn add_sublayer_spec(
        &mut self,
        sid: SessionId,
        spec: &SublayerSpec,
    ) -> Result<Guid, SpecError> {
        let mut s = Sublayer::new(spec.name.clone(), spec.weight);
        if let Some(k) = &spec.key {
            s.key = parse_guid(k, "key")?;
        }
        if let Some(p) = &spec.provider {
            s.provider_key = Some(self.resolve_provider(sid, p, "provider")?);
        }
        for (i, fl) in spec.flags.iter().enumerate() {
            if fl.eq_ignore_ascii_case("persistent") {
                s.flags |= 1;
            } else {
                return Err(SpecError::new(
                    WfpError::InvalidFlags,
                    format!("flags[{i}]"),
                    format!("unknown flag {fl:?}"),
                ));
            }
        }
        self.add_sublayer(sid, &s)
            .map_err(|e| SpecError::new(e, "", format!("FwpmSubLayerAdd0 failed: {e}")))
    }

    /// Validates and adds a [`ProviderSpec`]; returns the key.
    ///
    /// # Errors
    ///
    /// `NULL_DISPLAY_NAME`, `INVALID_PARAMETER` (bad key), `INVALID_FLAGS`, `ALREADY_EXISTS`.
    pub fn add_provider_spec(
        &mut self,
        sid: SessionId,
        spec: &ProviderSpec,
    ) -> Result<Guid, SpecError> {
        let mut p = Provider::new(spec.name.clone());
        if let Some(k) = &spec.key {
            p.key = parse_guid(k, "key")?;
        }
        p.service_name = spec.service_name.clone();
        for (i, fl) in spec.flags.iter().enumerate() {
            if fl.eq_ignore_ascii_case("persistent") {
                p.flags |= 1;
            } else {
                return Err(SpecError::new(
                    WfpError::InvalidFlags,
                    format!("flags[{i}]"),
                    format!("unknown flag {fl:?}"),
                ));
            }
        }
        self.add_provider(sid, &p)
            .map_err(|e| SpecError::new(e, "", format!("FwpmProviderAdd0 failed: {e}")))
    }
}
