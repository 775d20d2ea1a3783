//! The policy of one host: its ALE instance and WFP engine, built from the scenario, and the
//! views and management calls the CLI and applications use ("why was my connection blocked?").

use serde::Serialize;
use wsock_ale::{Ale, EndpointContext};
use wsock_wfp::{Engine, FilterEnumTemplate, SessionId, SpecError};

use crate::scenario::HostSpec;

/// Which list of a host's policy an invalid entry is in (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTable {
    /// `[[host.provider]]`.
    Provider,
    /// `[[host.sublayer]]`.
    Sublayer,
    /// `[[host.filter]]`.
    Filter,
    /// `[[host.provider_context]]`.
    ProviderContext,
    /// `[[host.firewall_rule]]`.
    FirewallRule,
}

impl PolicyTable {
    /// The TOML table name.
    pub fn toml_name(self) -> &'static str {
        match self {
            PolicyTable::Provider => "host.provider",
            PolicyTable::Sublayer => "host.sublayer",
            PolicyTable::Filter => "host.filter",
            PolicyTable::ProviderContext => "host.provider_context",
            PolicyTable::FirewallRule => "host.firewall_rule",
        }
    }
}

/// Builds a host's ALE with its engine holding the scenario's providers, sublayers and filters
/// (static objects, added through an administrator session that stays open).
///
/// # Errors
/// The table, the index in it and the `FWP_E_*` reason of the first invalid entry.
///
/// # Examples
/// ```
/// let s = wsock_stack::Scenario::default_scenario();
/// let (ale, _admin) = wsock_stack::policy::build_ale(&s.hosts[0]).unwrap();
/// assert_eq!(ale.engine().net_events().count(), 0);
/// ```
pub fn build_ale(spec: &HostSpec) -> Result<(Ale, SessionId), (PolicyTable, usize, SpecError)> {
    let mut engine = Engine::new();
    // Generated filter keys differ per host (as random GUIDs differ per machine on Windows),
    // and stay the same from run to run of one scenario.
    engine.set_key_seed(fnv1a(spec.name.as_bytes()));
    let admin = engine.open_session(false);
    for (i, p) in spec.providers.iter().enumerate() {
        engine
            .add_provider_spec(admin, p)
            .map_err(|e| (PolicyTable::Provider, i, e))?;
    }
    for (i, s) in spec.sublayers.iter().enumerate() {
        engine
            .add_sublayer_spec(admin, s)
            .map_err(|e| (PolicyTable::Sublayer, i, e))?;
    }
    spec.add_provider_contexts(&mut engine, admin)
        .map_err(|(i, e)| (PolicyTable::ProviderContext, i, e))?;
    let mut ale = Ale::new(engine);
    // The built-in IPsec callouts (FWPM_CALLOUT_IPSEC_*), so policy can invoke them.
    let _ = ale.install_ipsec_callouts(admin);
    for (i, f) in spec.filters.iter().enumerate() {
        ale.engine_mut()
            .add_spec(admin, f)
            .map_err(|e| (PolicyTable::Filter, i, e))?;
    }
    spec.install_firewall_rules(ale.engine_mut(), admin)
        .map_err(|(i, e)| (PolicyTable::FirewallRule, i, e))?;
    Ok((ale, admin))
}

/// FNV-1a, 64-bit: a stable hash (unlike `DefaultHasher`, it never changes between builds).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The ALE context of a socket created on `spec`'s host: its application and user.
pub(crate) fn endpoint_context(spec: &HostSpec, tcp: bool, v6: bool) -> EndpointContext {
    let user = spec
        .users
        .first()
        .map(|u| format!("{}\\{}", spec.domain, u.name))
        .unwrap_or_else(|| "NT AUTHORITY\\SYSTEM".to_string());
    let proto = if tcp {
        wsock_ale::Protocol::Tcp
    } else {
        wsock_ale::Protocol::Udp
    };
    EndpointContext::new(&spec.app, &user, proto, v6)
}

/// One filter as `wsock show filters` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterRow {
    /// Runtime filter id.
    pub id: u64,
    /// Filter key (GUID).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Layer name (`FWPM_LAYER_...`).
    pub layer: String,
    /// Sublayer key.
    pub sublayer: String,
    /// Action.
    pub action: String,
    /// Effective weight.
    pub weight: u64,
    /// Conditions, one string each.
    pub conditions: Vec<String>,
    /// `FWPM_FILTER_FLAG_*` names set on the filter.
    pub flags: Vec<String>,
    /// The provider key, if the filter names one.
    pub provider: Option<String>,
}

/// The filters of an engine, ordered by layer then id.
pub fn filter_rows(engine: &Engine, session: SessionId) -> Vec<FilterRow> {
    let mut rows: Vec<FilterRow> = engine
        .enum_filters(session, &FilterEnumTemplate::default())
        .unwrap_or_default()
        .into_iter()
        .map(|f| FilterRow {
            id: f.id,
            key: f.key.to_string(),
            name: f.name.clone(),
            layer: f.layer.to_string(),
            sublayer: f.sublayer.to_string(),
            action: f.action.name().to_string(),
            weight: f.effective_weight,
            conditions: f.conditions.iter().map(condition_text).collect(),
            flags: flag_names(f.flags),
            provider: f.provider_key.map(|k| k.to_string()),
        })
        .collect();
    rows.sort_by(|a, b| (a.layer.as_str(), a.id).cmp(&(b.layer.as_str(), b.id)));
    rows
}

/// The names of the `FWPM_FILTER_FLAG_*` bits set in `flags`.
fn flag_names(flags: u32) -> Vec<String> {
    use wsock_wfp::filter_flags as F;
    [
        (F::PERSISTENT, "FWPM_FILTER_FLAG_PERSISTENT"),
        (F::BOOTTIME, "FWPM_FILTER_FLAG_BOOTTIME"),
        (
            F::HAS_PROVIDER_CONTEXT,
            "FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT",
        ),
        (F::CLEAR_ACTION_RIGHT, "FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT"),
        (
            F::PERMIT_IF_CALLOUT_UNREGISTERED,
            "FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED",
        ),
        (F::DISABLED, "FWPM_FILTER_FLAG_DISABLED"),
        (F::INDEXED, "FWPM_FILTER_FLAG_INDEXED"),
        (
            F::HAS_SECURITY_REALM_PROVIDER_CONTEXT,
            "FWPM_FILTER_FLAG_HAS_SECURITY_REALM_PROVIDER_CONTEXT",
        ),
        (F::SYSTEMOS_ONLY, "FWPM_FILTER_FLAG_SYSTEMOS_ONLY"),
        (F::GAMEOS_ONLY, "FWPM_FILTER_FLAG_GAMEOS_ONLY"),
        (F::SILENT_MODE, "FWPM_FILTER_FLAG_SILENT_MODE"),
        (
            F::IPSEC_NO_ACQUIRE_INITIATE,
            "FWPM_FILTER_FLAG_IPSEC_NO_ACQUIRE_INITIATE",
        ),
    ]
    .into_iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, n)| n.to_string())
    .collect()
}

/// An app id blob (`FWP_BYTE_BLOB` of a UTF-16LE path with its terminating NUL) as its path.
fn app_id_text(b: &[u8]) -> Option<String> {
    if b.len() < 2 || b.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let units = units.strip_suffix(&[0]).unwrap_or(&units);
    let text = String::from_utf16(units).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then_some(text)
}

/// `IP_REMOTE_PORT equal 80`, `IP_REMOTE_ADDRESS equal 10.0.0.0/8`, ...
fn condition_text(c: &wsock_wfp::Condition) -> String {
    let field = c.field.name().trim_start_matches("FWPM_CONDITION_");
    let value = match &c.value {
        wsock_wfp::FwpValue::Uint32(a) if field.contains("ADDRESS") => {
            std::net::Ipv4Addr::from(*a).to_string()
        }
        v => value_text(v),
    };
    use wsock_wfp::MatchType as M;
    let op = match c.match_type {
        M::Equal => "==".to_string(),
        M::NotEqual => "!=".to_string(),
        M::Greater => ">".to_string(),
        M::Less => "<".to_string(),
        M::GreaterOrEqual => ">=".to_string(),
        M::LessOrEqual => "<=".to_string(),
        M::Range => "in".to_string(),
        other => other
            .name()
            .trim_start_matches("FWP_MATCH_")
            .to_ascii_lowercase(),
    };
    format!("{field} {op} {value}")
}

fn value_text(v: &wsock_wfp::FwpValue) -> String {
    use wsock_wfp::FwpValue as V;
    match v {
        V::Empty => "empty".into(),
        V::Uint8(x) => x.to_string(),
        V::Uint16(x) => x.to_string(),
        V::Uint32(x) => x.to_string(),
        V::Uint64(x) => x.to_string(),
        V::Int8(x) => x.to_string(),
        V::Int16(x) => x.to_string(),
        V::Int32(x) => x.to_string(),
        V::Int64(x) => x.to_string(),
        V::ByteArray16(b) => std::net::Ipv6Addr::from(*b).to_string(),
        V::V4AddrMask { addr, mask } if mask.leading_ones() + mask.trailing_zeros() == 32 => {
            format!(
                "{}/{}",
                std::net::Ipv4Addr::from(*addr),
                mask.leading_ones()
            )
        }
        V::V4AddrMask { addr, mask } => {
            format!(
                "{}/{}",
                std::net::Ipv4Addr::from(*addr),
                std::net::Ipv4Addr::from(*mask)
            )
        }
        V::V6AddrMask { addr, prefix_len } => {
            format!("{}/{prefix_len}", std::net::Ipv6Addr::from(*addr))
        }
        V::Range(r) => format!("{}..{}", value_text(&r.0), value_text(&r.1)),
        V::UnicodeString(s) | V::Sid(s) => format!("{s:?}"),
        V::ByteBlob(b) => match app_id_text(b) {
            Some(path) => format!("\"{path}\""),
            None => format!("{b:02x?}"),
        },
        other => format!("{other:?}"),
    }
}
