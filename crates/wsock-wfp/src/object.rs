//! Management objects: filters, sublayers, providers, callouts, provider contexts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::{provider_context_type, IkeMmPolicy, IpsecQmPolicy, ProviderContextData};
use crate::value::{Condition, FwpValue, MatchType};
use crate::{Field, Guid, Layer, WfpError};

/// `FWPM_FILTER_FLAG_*`.
pub mod filter_flags {
    /// `FWPM_FILTER_FLAG_NONE`.
    pub const NONE: u32 = 0;
    /// `FWPM_FILTER_FLAG_PERSISTENT`.
    pub const PERSISTENT: u32 = 0x1;
    /// `FWPM_FILTER_FLAG_BOOTTIME`.
    pub const BOOTTIME: u32 = 0x2;
    /// `FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT`.
    pub const HAS_PROVIDER_CONTEXT: u32 = 0x4;
    /// `FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT`: the filter's decision is hard.
    pub const CLEAR_ACTION_RIGHT: u32 = 0x8;
    /// `FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED`.
    pub const PERMIT_IF_CALLOUT_UNREGISTERED: u32 = 0x10;
    /// `FWPM_FILTER_FLAG_DISABLED` (output only).
    pub const DISABLED: u32 = 0x20;
    /// `FWPM_FILTER_FLAG_INDEXED`.
    pub const INDEXED: u32 = 0x40;
    /// `FWPM_FILTER_FLAG_HAS_SECURITY_REALM_PROVIDER_CONTEXT`.
    pub const HAS_SECURITY_REALM_PROVIDER_CONTEXT: u32 = 0x80;
    /// `FWPM_FILTER_FLAG_SYSTEMOS_ONLY`.
    pub const SYSTEMOS_ONLY: u32 = 0x100;
    /// `FWPM_FILTER_FLAG_GAMEOS_ONLY`.
    pub const GAMEOS_ONLY: u32 = 0x200;
    /// `FWPM_FILTER_FLAG_SILENT_MODE`.
    pub const SILENT_MODE: u32 = 0x400;
    /// `FWPM_FILTER_FLAG_IPSEC_NO_ACQUIRE_INITIATE`.
    pub const IPSEC_NO_ACQUIRE_INITIATE: u32 = 0x800;
    /// All bits the engine accepts.
    pub const ALL: u32 = 0xFFF;

    /// Parses one flag name (`"clear_action_right"`, `"FWPM_FILTER_FLAG_PERSISTENT"`, ...).
    pub fn from_name(s: &str) -> Option<u32> {
        let t = s.trim().to_ascii_uppercase();
        let t = t.strip_prefix("FWPM_FILTER_FLAG_").unwrap_or(&t);
        Some(match t {
            "NONE" => NONE,
            "PERSISTENT" => PERSISTENT,
            "BOOTTIME" => BOOTTIME,
            "HAS_PROVIDER_CONTEXT" => HAS_PROVIDER_CONTEXT,
            "CLEAR_ACTION_RIGHT" => CLEAR_ACTION_RIGHT,
            "PERMIT_IF_CALLOUT_UNREGISTERED" => PERMIT_IF_CALLOUT_UNREGISTERED,
            "DISABLED" => DISABLED,
            "INDEXED" => INDEXED,
            "HAS_SECURITY_REALM_PROVIDER_CONTEXT" => HAS_SECURITY_REALM_PROVIDER_CONTEXT,
            "SYSTEMOS_ONLY" => SYSTEMOS_ONLY,
            "GAMEOS_ONLY" => GAMEOS_ONLY,
            "SILENT_MODE" => SILENT_MODE,
            "IPSEC_NO_ACQUIRE_INITIATE" => IPSEC_NO_ACQUIRE_INITIATE,
            _ => return None,
        })
    }
}

/// A filter's action (`FWPM_ACTION0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `FWP_ACTION_BLOCK` (0x1001): static block, hard.
    Block,
    /// `FWP_ACTION_PERMIT` (0x1002): static permit, soft unless `CLEAR_ACTION_RIGHT`.
    Permit,
    /// `FWP_ACTION_CALLOUT_TERMINATING` (0x5003) with the callout key.
    CalloutTerminating(Guid),
    /// `FWP_ACTION_CALLOUT_INSPECTION` (0x6004): the callout only continues.
    CalloutInspection(Guid),
    /// `FWP_ACTION_CALLOUT_UNKNOWN` (0x4005): the callout may permit, block or continue.
    CalloutUnknown(Guid),
}

impl Action {
    /// The `FWP_ACTION_*` type value.
    pub fn type_value(self) -> u32 {
        match self {
            Action::Block => 0x1001,
            Action::Permit => 0x1002,
            Action::CalloutTerminating(_) => 0x5003,
            Action::CalloutInspection(_) => 0x6004,
            Action::CalloutUnknown(_) => 0x4005,
        }
    }
    /// The callout key, for callout actions.
    pub fn callout(self) -> Option<Guid> {
        match self {
            Action::CalloutTerminating(g)
            | Action::CalloutInspection(g)
            | Action::CalloutUnknown(g) => Some(g),
            _ => None,
        }
    }
    /// Short lower-case name (`"block"`, `"permit"`, `"callout_terminating"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Permit => "permit",
            Action::CalloutTerminating(_) => "callout_terminating",
            Action::CalloutInspection(_) => "callout_inspection",
            Action::CalloutUnknown(_) => "callout_unknown",
        }
    }
}

/// A filter's requested weight (`FWPM_FILTER0.weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Weight {
    /// `FWP_EMPTY`: the engine computes a weight in `[0, 2^60)` from the conditions.
    #[default]
    Auto,
    /// `FWP_UINT8` 0..=15: a weight range; the value goes to the top 4 bits, the low 60 bits are
    /// computed as for `Auto`. Values above 15 are rejected with `FWP_E_INVALID_WEIGHT`.
    Range(u8),
    /// `FWP_UINT64`: used verbatim.
    Exact(u64),
}

/// A filter (`FWPM_FILTER0`). To add one, build it with [`Filter::new`] and the builder
/// methods; `id` and `effective_weight` are outputs, ignored on add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `filterKey`; nil means "engine generates one".
    pub key: Guid,
    /// `filterId`: runtime LUID (output).
    pub id: u64,
    /// `displayData.name` (required).
    pub name: String,
    /// `displayData.description`.
    pub description: String,
    /// `FWPM_FILTER_FLAG_*` bits.
    pub flags: u32,
    /// `providerKey`.
    pub provider_key: Option<Guid>,
    /// `layerKey`.
    pub layer: Layer,
    /// `subLayerKey`; nil means `FWPM_SUBLAYER_UNIVERSAL`.
    pub sublayer: Guid,
    /// Requested weight.
    pub weight: Weight,
    /// `effectiveWeight` (output).
    pub effective_weight: u64,
    /// Conditions (same field: OR; different fields: AND).
    pub conditions: Vec<Condition>,
    /// Action.
    pub action: Action,
    /// `rawContext`.
    pub raw_context: u64,
    /// `providerContextKey` (with `HAS_PROVIDER_CONTEXT`).
    pub provider_context_key: Option<Guid>,
}

impl Filter {
    /// A filter with no conditions, automatic weight, in `FWPM_SUBLAYER_UNIVERSAL`.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_wfp::{Action, Field, Filter, FwpValue, Layer, MatchType};
    /// let f = Filter::new("block 443", Layer::ALE_AUTH_CONNECT_V4, Action::Block)
    ///     .condition(Field::IP_REMOTE_PORT, MatchType::Equal, FwpValue::Uint16(443));
    /// assert_eq!(f.conditions.len(), 1);
    /// ```
    pub fn new(name: impl Into<String>, layer: Layer, action: Action) -> Self {
        Filter {
            key: Guid::NIL,
            id: 0,
            name: name.into(),
            description: String::new(),
            flags: 0,
            provider_key: None,
            layer,
            sublayer: Guid::NIL,
            weight: Weight::Auto,
            effective_weight: 0,
            conditions: Vec::new(),
            action,
            raw_context: 0,
            provider_context_key: None,
        }
    }
    /// Sets the key.
    pub fn key(mut self, key: Guid) -> Self {
        self.key = key;
        self
    }
    /// Sets the sublayer.
    pub fn sublayer(mut self, sublayer: Guid) -> Self {
        self.sublayer = sublayer;
        self
    }
    /// Sets the weight.
    pub fn weight(mut self, w: Weight) -> Self {
        self.weight = w;
        self
    }
    /// Adds flag bits.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags |= flags;
        self
    }
    /// Sets the provider.
    pub fn provider(mut self, p: Guid) -> Self {
        self.provider_key = Some(p);
        self
    }
    /// Sets the provider context (and the `HAS_PROVIDER_CONTEXT` flag).
    pub fn provider_context(mut self, ctx: Guid) -> Self {
        self.provider_context_key = Some(ctx);
        self.flags |= filter_flags::HAS_PROVIDER_CONTEXT;
        self
    }
    /// Appends a condition.
    pub fn condition(mut self, field: Field, m: MatchType, v: FwpValue) -> Self {
        self.conditions.push(Condition::new(field, m, v));
        self
    }
}

/// Object lifetime (§3.6): who owns it and how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// Built in; cannot be added or deleted.
    Builtin,
    /// `*_FLAG_PERSISTENT`. (There is no BFE restart in the emulator, so persistent objects
    /// live exactly as long as static ones; only the reference rules differ.)
    Persistent,
    /// Lives until deleted.
    Static,
    /// Added by a dynamic session; deleted when that session closes.
    Dynamic(crate::SessionId),
}

impl Lifetime {
    /// Whether an object with lifetime `self` may reference one with lifetime `target`.
    pub fn may_reference(self, target: Lifetime) -> bool {
        match target {
            Lifetime::Builtin => true,
            Lifetime::Persistent => true,
            Lifetime::Static => !matches!(self, Lifetime::Persistent | Lifetime::Builtin),
            Lifetime::Dynamic(s) => self == Lifetime::Dynamic(s),
        }
    }
}

/// A sublayer (`FWPM_SUBLAYER0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sublayer {
    /// `subLayerKey`; nil = generated.
    pub key: Guid,
    /// `displayData.name` (required).
    pub name: String,
    /// `FWPM_SUBLAYER_FLAG_PERSISTENT` = 1.
    pub flags: u32,
    /// Owning provider.
    pub provider_key: Option<Guid>,
    /// Weight; higher is evaluated first.
    pub weight: u16,
}

impl Sublayer {
    /// A sublayer with the given name and weight.
    pub fn new(name: impl Into<String>, weight: u16) -> Self {
        Sublayer {
            key: Guid::NIL,
            name: name.into(),
            flags: 0,
            provider_key: None,
            weight,
        }
    }
    /// Sets the key.
    pub fn key(mut self, key: Guid) -> Self {
        self.key = key;
        self
    }
}

/// A provider (`FWPM_PROVIDER0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `providerKey`; nil = generated.
    pub key: Guid,
    /// `displayData.name` (required).
    pub name: String,
    /// `FWPM_PROVIDER_FLAG_PERSISTENT` 0x1, `DISABLED` 0x10.
    pub flags: u32,
    /// `serviceName`.
    pub service_name: Option<String>,
}

impl Provider {
    /// A provider with the given name.
    pub fn new(name: impl Into<String>) -> Self {
        Provider {
            key: Guid::NIL,
            name: name.into(),
            flags: 0,
            service_name: None,
        }
    }
    /// Sets the key.
    pub fn key(mut self, key: Guid) -> Self {
        self.key = key;
        self
    }
}

/// A callout's management object (`FWPM_CALLOUT0`). Its code is registered separately with
/// [`crate::Engine::register_callout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutObject {
    /// `calloutKey`; nil = generated.
    pub key: Guid,
    /// `displayData.name`.
    pub name: String,
    /// Flags (`PERSISTENT` 0x10000, `USES_PROVIDER_CONTEXT` 0x20000; `REGISTERED` 0x40000 is output).
    pub flags: u32,
    /// Owning provider.
    pub provider_key: Option<Guid>,
    /// `applicableLayer`.
    pub applicable_layer: Layer,
    /// `calloutId` (output).
    pub id: u32,
}

impl CalloutObject {
    /// A callout object for `layer`.
    pub fn new(name: impl Into<String>, key: Guid, layer: Layer) -> Self {
        CalloutObject {
            key,
            name: name.into(),
            flags: 0,
            provider_key: None,
            applicable_layer: layer,
            id: 0,
        }
    }
}

/// A provider context (`FWPM_PROVIDER_CONTEXT0`): a typed policy filters refer to.
///
/// Main-mode and quick-mode types hold a typed, validated policy ([`IkeMmPolicy`],
/// [`IpsecQmPolicy`]); other types (and callers using [`ProviderContext::new`]) hold opaque
/// bytes. [`crate::Engine::add_provider_context`] validates typed data against the type.
///
/// # Examples
///
/// ```
/// use wsock_wfp::*;
/// let mm = ProviderContext::ike_mm("mm", IkeMmPolicy {
///     auth_methods: vec![IkeAuthMethod::certificate(Some("WSOCK Lab CA"))],
///     proposals: vec![IkeProposal::new(IkeCipher::Aes128, IkeIntegrity::Sha256, IkeDhGroup::Ecp256, 28800)],
///     ..IkeMmPolicy::windows_default()
/// });
/// let mut e = Engine::new();
/// let s = e.open_session(false);
/// let id = e.add_provider_context(s, &mm).unwrap();
/// let back = e.get_provider_context_by_id(s, id).unwrap();
/// assert_eq!(back.ike_mm_policy().unwrap().proposals[0].dh_group, IkeDhGroup::Ecp256);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderContext {
    /// `providerContextKey`; nil = generated.
    pub key: Guid,
    /// `displayData.name`.
    pub name: String,
    /// Flags (`PERSISTENT` 0x1).
    pub flags: u32,
    /// Owning provider.
    pub provider_key: Option<Guid>,
    /// `FWPM_PROVIDER_CONTEXT_TYPE` ([`provider_context_type`]).
    pub context_type: u32,
    /// The policy.
    pub data: ProviderContextData,
    /// `providerContextId` (output).
    pub id: u64,
}

impl ProviderContext {
    /// A provider context of `context_type` holding opaque `data` (never validated).
    pub fn new(name: impl Into<String>, context_type: u32, data: Vec<u8>) -> Self {
        Self::with_data(
            name,
            context_type,
            ProviderContextData::Opaque(Arc::new(data)),
        )
    }
    /// A provider context of `context_type` holding `data`.
    pub fn with_data(
        name: impl Into<String>,
        context_type: u32,
        data: ProviderContextData,
    ) -> Self {
        ProviderContext {
            key: Guid::NIL,
            name: name.into(),
            flags: 0,
            provider_key: None,
            context_type,
            data,
            id: 0,
        }
    }
    /// An IKE main-mode context (`FWPM_IPSEC_IKE_MM_CONTEXT`).
    pub fn ike_mm(name: impl Into<String>, policy: IkeMmPolicy) -> Self {
        Self::with_data(
            name,
            provider_context_type::IPSEC_IKE_MM,
            ProviderContextData::IkeMm(Arc::new(policy)),
        )
    }
    /// An AuthIP main-mode context (`FWPM_IPSEC_AUTHIP_MM_CONTEXT`, what secure sockets use).
    pub fn authip_mm(name: impl Into<String>, policy: IkeMmPolicy) -> Self {
        Self::ike_mm(name, policy).context_type(provider_context_type::IPSEC_AUTHIP_MM)
    }
    /// An IKE quick-mode transport context (`FWPM_IPSEC_IKE_QM_TRANSPORT_CONTEXT`).
    pub fn ipsec_qm_transport(name: impl Into<String>, policy: IpsecQmPolicy) -> Self {
        Self::with_data(
            name,
            provider_context_type::IPSEC_IKE_QM_TRANSPORT,
            ProviderContextData::IpsecQm(Arc::new(policy)),
        )
    }
    /// An AuthIP quick-mode transport context (`FWPM_IPSEC_AUTHIP_QM_TRANSPORT_CONTEXT`).
    pub fn authip_qm_transport(name: impl Into<String>, policy: IpsecQmPolicy) -> Self {
        Self::ipsec_qm_transport(name, policy)
            .context_type(provider_context_type::IPSEC_AUTHIP_QM_TRANSPORT)
    }
    /// An IKE quick-mode tunnel context (`FWPM_IPSEC_IKE_QM_TUNNEL_CONTEXT`); the policy
    /// needs [`IpsecQmPolicy::tunnel`].
    pub fn ipsec_qm_tunnel(name: impl Into<String>, policy: IpsecQmPolicy) -> Self {
        Self::ipsec_qm_transport(name, policy)
            .context_type(provider_context_type::IPSEC_IKE_QM_TUNNEL)
    }
    /// Sets the key.
    pub fn key(mut self, key: Guid) -> Self {
        self.key = key;
        self
    }
    /// Sets the context type (e.g. [`provider_context_type::IPSEC_IKEV2_MM`]).
    pub fn context_type(mut self, t: u32) -> Self {
        self.context_type = t;
        self
    }
    /// The main-mode policy, for a typed main-mode context.
    pub fn ike_mm_policy(&self) -> Option<&IkeMmPolicy> {
        match &self.data {
            ProviderContextData::IkeMm(p) => Some(p),
            _ => None,
        }
    }
    /// The quick-mode policy, for a typed quick-mode context.
    pub fn ipsec_qm_policy(&self) -> Option<&IpsecQmPolicy> {
        match &self.data {
            ProviderContextData::IpsecQm(p) => Some(p),
            _ => None,
        }
    }
    /// The bytes of an opaque context.
    pub fn opaque_data(&self) -> Option<&[u8]> {
        match &self.data {
            ProviderContextData::Opaque(b) => Some(b),
            _ => None,
        }
    }
    /// Checks the data against the type (what the engine does on add).
    ///
    /// # Errors
    /// As [`ProviderContextData::validate`].
    pub fn validate(&self) -> Result<(), crate::SpecError> {
        self.data.validate(self.context_type)
    }
}

/// Bits 60..63 hold the weight range; the low 60 bits are the automatic part.
pub const AUTO_WEIGHT_BITS: u32 = 60;
/// `FWPM_AUTO_WEIGHT_MAX`.
pub const AUTO_WEIGHT_MAX: u64 = (1 << 60) - 1;
/// `FWPM_WEIGHT_RANGE_MAX`.
pub const WEIGHT_RANGE_MAX: u8 = 15;

/// Slot order of the automatic weight, most significant first (4 bits per slot).
const SLOTS: &[Field] = &[
    Field::IP_REMOTE_ADDRESS,
    Field::IP_LOCAL_ADDRESS,
    Field::IP_REMOTE_PORT,
    Field::IP_LOCAL_PORT,
    Field::IP_PROTOCOL,
    Field::ALE_APP_ID,
    Field::ALE_USER_ID,
    Field::ALE_REMOTE_USER_ID,
    Field::ALE_REMOTE_MACHINE_ID,
    Field::ALE_PACKAGE_ID,
    Field::FLAGS,
    Field::IP_LOCAL_INTERFACE,
    Field::IP_ARRIVAL_INTERFACE,
    Field::IP_LOCAL_ADDRESS_TYPE,
];

fn cond_specificity(c: &Condition) -> u64 {
    use FwpValue as V;
    match (c.match_type, &c.value) {
        (MatchType::Equal, V::V4AddrMask { mask, .. }) => {
            let p = u64::from(mask.leading_ones());
            if p == 0 {
                0
            } else {
                1 + p * 14 / 32
            }
        }
        (MatchType::Equal, V::V6AddrMask { prefix_len, .. }) => {
            let p = u64::from(*prefix_len);
            if p == 0 {
                0
            } else {
                1 + p * 14 / 128
            }
        }
        (MatchType::Equal, V::SecurityDescriptor(_)) => 12,
        (MatchType::Equal, _) => 15,
        (MatchType::EqualCaseInsensitive, _) => 14,
        (MatchType::Range, V::Range(r)) => {
            let (bits, span) = match (&r.0, &r.1) {
                (V::Uint8(a), V::Uint8(b)) => (8.0, f64::from(*b) - f64::from(*a)),
                (V::Uint16(a), V::Uint16(b)) => (16.0, f64::from(*b) - f64::from(*a)),
                (V::Uint32(a), V::Uint32(b)) => (32.0, f64::from(*b) - f64::from(*a)),
                (V::Uint64(a), V::Uint64(b)) => (64.0, (*b - *a) as f64),
                _ => return 6,
            };
            let used = (span + 1.0).log2() / bits; // 0 = single value, 1 = full range
            (15.0 - (used * 15.0).ceil()).max(0.0) as u64
        }
        (MatchType::Prefix, _) => 10,
        (MatchType::FlagsAllSet | MatchType::FlagsAnySet | MatchType::FlagsNoneSet, _) => 8,
        (
            MatchType::Greater
            | MatchType::Less
            | MatchType::GreaterOrEqual
            | MatchType::LessOrEqual,
            _,
        ) => 4,
        (MatchType::NotEqual | MatchType::NotPrefix, _) => 1,
        _ => 2,
    }
}

/// The automatic (low 60 bit) weight of a condition list: a bit-packed specificity score,
/// 4 bits per field in a fixed field order (remote address highest), each slot holding how
/// narrow that field's condition group is (exact 15, full range 0; an OR group counts as its
/// broadest member). No conditions = 0. EMULATOR CHOICE (Windows' bit layout is undocumented).
pub fn auto_weight(conditions: &[Condition]) -> u64 {
    let mut per: BTreeMap<Field, u64> = BTreeMap::new();
    for c in conditions {
        let s = cond_specificity(c);
        per.entry(c.field)
            .and_modify(|v| *v = (*v).min(s))
            .or_insert(s);
    }
    let mut w = 0u64;
    let mut other = 0u64;
    for (f, s) in per {
        if let Some(pos) = SLOTS.iter().position(|x| *x == f) {
            w |= s << (56 - 4 * pos as u32);
        } else {
            other = (other + s).min(15);
        }
    }
    (w | other) & AUTO_WEIGHT_MAX
}

/// The effective weight of a filter.
///
/// # Errors
///
/// `FWP_E_INVALID_WEIGHT` for a `Range` above 15.
pub fn effective_weight(weight: Weight, conditions: &[Condition]) -> Result<u64, WfpError> {
    match weight {
        Weight::Auto => Ok(auto_weight(conditions)),
        Weight::Range(r) if r > WEIGHT_RANGE_MAX => Err(WfpError::InvalidWeight),
        Weight::Range(r) => Ok((u64::from(r) << AUTO_WEIGHT_BITS) | auto_weight(conditions)),
        Weight::Exact(w) => Ok(w),
    }
}
