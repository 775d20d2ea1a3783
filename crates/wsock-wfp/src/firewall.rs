//! Windows Firewall rules on top of WFP: allow, block, allow-if-secure (optionally requiring
//! encryption) and authenticated bypass ("override block rules", with its authorized-computer
//! list), expanded into filters at `ALE_AUTH_RECV_ACCEPT` (inbound) and `ALE_AUTH_CONNECT`
//! (outbound).
//!
//! How MPSSVC lays its filters out is not documented; the model here (EMULATOR CHOICE, see
//! docs/windows-differences.md) keeps MS-FASP's precedence **bypass > block > allow** inside
//! one sublayer, `FWPM_SUBLAYER_MPSSVC_WF`, owned by `FWPM_PROVIDER_MPSSVC_WF`, with weight
//! ranges ([`weight_ranges`]): the first terminating filter in weight order decides the
//! sublayer.
//!
//! | rule | filters (per address family) |
//! |---|---|
//! | allow | PERMIT, range 9 |
//! | block | BLOCK, range 10 |
//! | allow-if-secure, inbound | CALLOUT_TERMINATING `IPSEC_INBOUND_INITIATE_SECURE` with `FLAGS` ⊇ `IS_IPSEC_SECURED` (and the authorized computers/users as `ALE_REMOTE_MACHINE_ID`/`ALE_REMOTE_USER_ID`), rawContext `ALLOW_AUTH_FW` (+ `REQUIRE_IPSEC_ENCRYPTION`), range 9; then a BLOCK of the same traffic, range 8 (what is not secure is blocked) |
//! | allow-if-secure, outbound | CALLOUT_TERMINATING `IPSEC_ALE_CONNECT`, rawContext `REQUIRE_IPSEC_SECURITY` + `ALLOW_AUTH_FW` (+ `REQUIRE_IPSEC_ENCRYPTION`), range 9 |
//! | bypass, inbound | hard PERMIT (`CLEAR_ACTION_RIGHT`) with `IS_IPSEC_SECURED` and `ALE_REMOTE_MACHINE_ID` = the authorized computers, rawContext `ALLOW_AUTH_FW` (+ `REQUIRE_IPSEC_ENCRYPTION`), range 11 |
//! | bypass, outbound | CALLOUT_TERMINATING `IPSEC_ALE_CONNECT` as allow-if-secure, range 11 |
//!
//! The IPsec callouts mark the connection as needing protection (ALE hands the filter's
//! `rawContext` to the stack as a protection request); encryption cannot be seen in a
//! condition, so "require encryption" is enforced by whoever reads
//! `REQUIRE_IPSEC_ENCRYPTION` (the stack), not by the filter engine alone.
//!
//! ```
//! use wsock_wfp::firewall::*;
//! use wsock_wfp::*;
//! let mut e = Engine::new();
//! let s = e.open_session(false);
//! let rule = FirewallRule::new("block web", FirewallDirection::Inbound, FirewallAction::Block)
//!     .protocol(6)
//!     .local_port(80);
//! let ids = install(&mut e, s, &rule).unwrap();
//! assert_eq!(ids.len(), 2); // IPv4 and IPv6
//! ```

use std::net::IpAddr;

use crate::object::{filter_flags, Action, CalloutObject, Filter, Weight};
use crate::schema::condition_flags;
use crate::spec::SpecError;
use crate::value::{FwpValue, MatchType, SecurityDescriptor};
use crate::{Engine, Field, Guid, Layer, SessionId, WfpError};

/// `FWPM_SUBLAYER_MPSSVC_WF`: the sublayer firewall rules live in.
pub const SUBLAYER_MPSSVC_WF: Guid = Guid::from_u128(0xb3cdd441_af90_41ba_a745_7c6008ff2301);
/// `FWPM_PROVIDER_MPSSVC_WF`: the provider of the filters firewall rules expand into.
pub const PROVIDER_MPSSVC_WF: Guid = Guid::from_u128(0xdecc16ca_3f33_4346_be1e_8fb4ae0f3d62);

/// Weight ranges (`FWP_UINT8` weights) of the filters a rule expands into: MS-FASP precedence
/// bypass > block > allow; the "not secure" block of an inbound allow-if-secure rule sits below
/// every allow so that a plain allow rule for the same traffic still admits it.
pub mod weight_ranges {
    /// Authenticated bypass.
    pub const BYPASS: u8 = 11;
    /// Block.
    pub const BLOCK: u8 = 10;
    /// Allow and allow-if-secure.
    pub const ALLOW: u8 = 9;
    /// The block half of an inbound allow-if-secure rule.
    pub const NOT_SECURE_BLOCK: u8 = 8;
}

/// The built-in IPsec callouts firewall filters invoke (the real Windows GUIDs; the same
/// values `wsock-ale` registers code for).
pub mod ipsec_callouts {
    use crate::Guid;
    /// `FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4`.
    pub const INBOUND_INITIATE_SECURE_V4: Guid =
        Guid::from_u128(0x7dff309b_ba7d_4aba_91aa_ae5c6640c944);
    /// `FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6`.
    pub const INBOUND_INITIATE_SECURE_V6: Guid =
        Guid::from_u128(0xa9a0d6d9_c58c_474e_8aeb_3cfe99d6d53d);
    /// `FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4`.
    pub const ALE_CONNECT_V4: Guid = Guid::from_u128(0x6ac141fc_f75d_4203_b9c8_48e6149c2712);
    /// `FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6`.
    pub const ALE_CONNECT_V6: Guid = Guid::from_u128(0x4c0dda05_e31f_4666_90b0_b3dfad34129a);
}

/// The ALE `rawContext` bits firewall filters carry (`FWPM_CONTEXT_*`, fwpmu.h).
pub mod raw_context {
    /// `FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY` (connect).
    pub const REQUIRE_IPSEC_SECURITY: u64 = 0x2;
    /// `FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION`.
    pub const REQUIRE_IPSEC_ENCRYPTION: u64 = 0x8;
    /// `FWPM_CONTEXT_ALE_ALLOW_AUTH_FW`.
    pub const ALLOW_AUTH_FW: u64 = 0x20;
}

/// Which way the connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallDirection {
    /// Inbound (`ALE_AUTH_RECV_ACCEPT`).
    Inbound,
    /// Outbound (`ALE_AUTH_CONNECT`).
    Outbound,
}

/// `FW_RULE_ACTION` (MS-FASP 2.2.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallAction {
    /// `FW_RULE_ACTION_ALLOW_BYPASS` (1): permit authenticated traffic even when a block rule
    /// matches. Needs a security requirement.
    AllowBypass,
    /// `FW_RULE_ACTION_BLOCK` (2).
    Block,
    /// `FW_RULE_ACTION_ALLOW` (3).
    Allow,
}

impl FirewallAction {
    /// The MS-FASP value.
    pub fn value(self) -> u32 {
        match self {
            FirewallAction::AllowBypass => 1,
            FirewallAction::Block => 2,
            FirewallAction::Allow => 3,
        }
    }
}

/// The security an allow rule demands (MS-FASP `FW_RULE_FLAGS_AUTHENTICATE*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FirewallSecurity {
    /// No requirement.
    #[default]
    None,
    /// `FW_RULE_FLAGS_AUTHENTICATE` ("allow the connection if it is secure").
    Authenticate,
    /// `FW_RULE_FLAGS_AUTHENTICATE_WITH_ENCRYPTION` ("require the connection to be encrypted").
    AuthenticateWithEncryption,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Low end.
    pub low: u16,
    /// High end.
    pub high: u16,
}

/// An address prefix (`addr/len`; a host is `/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    /// Address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl IpPrefix {
    /// A single host.
    pub fn host(addr: IpAddr) -> Self {
        IpPrefix {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl std::str::FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Ok(IpPrefix { addr, len })
    }
}

/// A Windows Firewall rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRule {
    /// Display name (required).
    pub name: String,
    /// Rule key; when not nil, the filters get keys derived from it (key + 1, + 2, ...).
    pub key: Guid,
    /// Direction.
    pub direction: FirewallDirection,
    /// Action.
    pub action: FirewallAction,
    /// Security requirement.
    pub security: FirewallSecurity,
    /// IP protocol (6 TCP, 17 UDP, ...); `None` = any.
    pub protocol: Option<u8>,
    /// Local ports (any of them); empty = any. Needs TCP or UDP.
    pub local_ports: Vec<PortRange>,
    /// Remote ports; empty = any. Needs TCP or UDP.
    pub remote_ports: Vec<PortRange>,
    /// Local addresses; empty = any. Also selects the families the rule applies to.
    pub local_addresses: Vec<IpPrefix>,
    /// Remote addresses; empty = any. Also selects the families the rule applies to.
    pub remote_addresses: Vec<IpPrefix>,
    /// Application path (`ALE_APP_ID`); `None` = any.
    pub app: Option<String>,
    /// Authorized computers (principals as the remote machine token names them, e.g.
    /// `WSOCK\CLIENT$`, or groups).
    pub authorized_computers: Vec<String>,
    /// Authorized users (principals of the remote user token).
    pub authorized_users: Vec<String>,
}

impl FirewallRule {
    /// A rule matching all traffic of `direction`.
    pub fn new(
        name: impl Into<String>,
        direction: FirewallDirection,
        action: FirewallAction,
    ) -> Self {
        FirewallRule {
            name: name.into(),
            key: Guid::NIL,
            direction,
            action,
            security: FirewallSecurity::None,
            protocol: None,
            local_ports: Vec::new(),
            remote_ports: Vec::new(),
            local_addresses: Vec::new(),
            remote_addresses: Vec::new(),
            app: None,
            authorized_computers: Vec::new(),
            authorized_users: Vec::new(),
        }
    }
    /// Sets the security requirement.
    pub fn security(mut self, s: FirewallSecurity) -> Self {
        self.security = s;
        self
    }
    /// Sets the protocol.
    pub fn protocol(mut self, p: u8) -> Self {
        self.protocol = Some(p);
        self
    }
    /// Adds a local port.
    pub fn local_port(mut self, p: u16) -> Self {
        self.local_ports.push(PortRange { low: p, high: p });
        self
    }
    /// Adds a remote port.
    pub fn remote_port(mut self, p: u16) -> Self {
        self.remote_ports.push(PortRange { low: p, high: p });
        self
    }
    /// Adds a remote address prefix.
    pub fn remote_address(mut self, p: IpPrefix) -> Self {
        self.remote_addresses.push(p);
        self
    }
    /// Adds an authorized computer.
    pub fn authorize_computer(mut self, c: impl Into<String>) -> Self {
        self.authorized_computers.push(c.into());
        self
    }
    /// Adds an authorized user.
    pub fn authorize_user(mut self, u: impl Into<String>) -> Self {
        self.authorized_users.push(u.into());
        self
    }
    /// Sets the key.
    pub fn key(mut self, k: Guid) -> Self {
        self.key = k;
        self
    }

    /// Checks the rule (what Windows refuses when a rule is added).
    ///
    /// # Errors
    /// A [`SpecError`]: `FWP_E_NULL_DISPLAY_NAME`; `FWP_E_INVALID_PARAMETER` for a bypass rule
    /// without a security requirement, a block rule with one, authorized computers/users on a
    /// rule without one, an inbound bypass rule without an authorized computer (case 61),
    /// authorized computers/users on an outbound rule (not supported yet), ports without TCP
    /// or UDP, an empty principal, or addresses that leave no family; `FWP_E_INVALID_RANGE`
    /// (port low > high); `FWP_E_INVALID_NET_MASK` (prefix too long).
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad =
            |path: &str, msg: String| Err(SpecError::new(WfpError::InvalidParameter, path, msg));
        if self.name.is_empty() {
            return Err(SpecError::new(
                WfpError::NullDisplayName,
                "name",
                "a firewall rule needs a name",
            ));
        }
        let secure = self.security != FirewallSecurity::None;
        match self.action {
            FirewallAction::AllowBypass if !secure => {
                return bad(
                    "action",
                    "an authenticated bypass rule must require authentication \
                     (FW_RULE_ACTION_ALLOW_BYPASS needs FW_RULE_FLAGS_AUTHENTICATE)"
                        .into(),
                )
            }
            FirewallAction::Block if secure => {
                return bad(
                    "action",
                    "only allow rules can require authentication or encryption".into(),
                )
            }
            _ => {}
        }
        let lists = !self.authorized_computers.is_empty() || !self.authorized_users.is_empty();
        if lists && !secure {
            return bad(
                "authorized_computers",
                "authorized computers/users need a rule that requires authentication".into(),
            );
        }
        if self.action == FirewallAction::AllowBypass
            && self.direction == FirewallDirection::Inbound
            && self.authorized_computers.is_empty()
        {
            return bad(
                "authorized_computers",
                "rules that override block rules must specify at least one computer or \
                 computer group for authorization"
                    .into(),
            );
        }
        if lists && self.direction == FirewallDirection::Outbound {
            return bad(
                "authorized_computers",
                "not yet: authorized computers/users on outbound rules are not supported by \
                 wsock (the remote identity is unknown when the connect is authorized)"
                    .into(),
            );
        }
        for (i, p) in self
            .authorized_computers
            .iter()
            .chain(&self.authorized_users)
            .enumerate()
        {
            if p.trim().is_empty() {
                return bad(
                    "authorized_computers",
                    format!("authorized principal #{} is empty", i + 1),
                );
            }
        }
        if (!self.local_ports.is_empty() || !self.remote_ports.is_empty())
            && !matches!(self.protocol, Some(6) | Some(17))
        {
            return bad("protocol", "ports need protocol TCP (6) or UDP (17)".into());
        }
        for (what, ports) in [
            ("local_ports", &self.local_ports),
            ("remote_ports", &self.remote_ports),
        ] {
            if ports.iter().any(|r| r.low > r.high) {
                return Err(SpecError::new(
                    WfpError::InvalidRange,
                    what,
                    "a port range has low > high",
                ));
            }
        }
        for (what, addrs) in [
            ("local_addresses", &self.local_addresses),
            ("remote_addresses", &self.remote_addresses),
        ] {
            if addrs
                .iter()
                .any(|p| p.len > if p.addr.is_ipv4() { 32 } else { 128 })
            {
                return Err(SpecError::new(
                    WfpError::InvalidNetMask,
                    what,
                    "prefix length too long for the address family",
                ));
            }
        }
        if self.families().is_empty() {
            return bad(
                "remote_addresses",
                "the local and remote addresses share no address family".into(),
            );
        }
        if self.app.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return bad("app", "the application path is empty".into());
        }
        Ok(())
    }

    /// The families (`false` = IPv4, `true` = IPv6) the rule applies to.
    fn families(&self) -> Vec<bool> {
        [false, true]
            .into_iter()
            .filter(|v6| {
                [&self.local_addresses, &self.remote_addresses]
                    .iter()
                    .all(|l| l.is_empty() || l.iter().any(|p| p.addr.is_ipv6() == *v6))
            })
            .collect()
    }

    fn base_conditions(&self, v6: bool, f: &mut Filter) {
        if let Some(p) = self.protocol {
            f.conditions.push(crate::Condition::new(
                Field::IP_PROTOCOL,
                MatchType::Equal,
                FwpValue::Uint8(p),
            ));
        }
        for (field, ports) in [
            (Field::IP_LOCAL_PORT, &self.local_ports),
            (Field::IP_REMOTE_PORT, &self.remote_ports),
        ] {
            for r in ports {
                let (m, v) = if r.low == r.high {
                    (MatchType::Equal, FwpValue::Uint16(r.low))
                } else {
                    (
                        MatchType::Range,
                        FwpValue::range(FwpValue::Uint16(r.low), FwpValue::Uint16(r.high)),
                    )
                };
                f.conditions.push(crate::Condition::new(field, m, v));
            }
        }
        for (field, addrs) in [
            (Field::IP_LOCAL_ADDRESS, &self.local_addresses),
            (Field::IP_REMOTE_ADDRESS, &self.remote_addresses),
        ] {
            for p in addrs.iter().filter(|p| p.addr.is_ipv6() == v6) {
                let v = match p.addr {
                    IpAddr::V4(a) => FwpValue::v4_prefix(a, p.len),
                    IpAddr::V6(a) => FwpValue::V6AddrMask {
                        addr: a.octets(),
                        prefix_len: p.len,
                    },
                };
                f.conditions
                    .push(crate::Condition::new(field, MatchType::Equal, v));
            }
        }
        if let Some(app) = &self.app {
            f.conditions.push(crate::Condition::new(
                Field::ALE_APP_ID,
                MatchType::Equal,
                FwpValue::app_id(app),
            ));
        }
    }

    fn secured_conditions(&self, f: &mut Filter) {
        f.conditions.push(crate::Condition::new(
            Field::FLAGS,
            MatchType::FlagsAllSet,
            FwpValue::Uint32(condition_flags::IS_IPSEC_SECURED),
        ));
        if !self.authorized_computers.is_empty() {
            f.conditions.push(crate::Condition::new(
                Field::ALE_REMOTE_MACHINE_ID,
                MatchType::Equal,
                FwpValue::sd(SecurityDescriptor::allow(self.authorized_computers.clone())),
            ));
        }
        if !self.authorized_users.is_empty() {
            f.conditions.push(crate::Condition::new(
                Field::ALE_REMOTE_USER_ID,
                MatchType::Equal,
                FwpValue::sd(SecurityDescriptor::allow(self.authorized_users.clone())),
            ));
        }
    }

    /// The filters the rule expands into (see the module table), in add order, IPv4 first.
    ///
    /// # Errors
    /// As [`FirewallRule::validate`].
    ///
    /// # Examples
    /// ```
    /// use wsock_wfp::firewall::*;
    /// use wsock_wfp::*;
    /// let r = FirewallRule::new("secure web", FirewallDirection::Inbound, FirewallAction::Allow)
    ///     .security(FirewallSecurity::AuthenticateWithEncryption)
    ///     .protocol(6)
    ///     .local_port(80)
    ///     .remote_address("10.0.0.0/24".parse().unwrap());
    /// let f = r.filters().unwrap();
    /// assert_eq!(f.len(), 2); // IPv4 only: the secure permit and the "not secure" block
    /// assert_eq!(f[0].action, Action::CalloutTerminating(ipsec_callouts::INBOUND_INITIATE_SECURE_V4));
    /// assert_eq!(f[0].raw_context, raw_context::ALLOW_AUTH_FW | raw_context::REQUIRE_IPSEC_ENCRYPTION);
    /// assert_eq!(f[1].action, Action::Block);
    /// ```
    pub fn filters(&self) -> Result<Vec<Filter>, SpecError> {
        self.validate()?;
        let inbound = self.direction == FirewallDirection::Inbound;
        let enc = if self.security == FirewallSecurity::AuthenticateWithEncryption {
            raw_context::REQUIRE_IPSEC_ENCRYPTION
        } else {
            0
        };
        let mut out = Vec::new();
        for v6 in self.families() {
            let layer = match (inbound, v6) {
                (true, false) => Layer::ALE_AUTH_RECV_ACCEPT_V4,
                (true, true) => Layer::ALE_AUTH_RECV_ACCEPT_V6,
                (false, false) => Layer::ALE_AUTH_CONNECT_V4,
                (false, true) => Layer::ALE_AUTH_CONNECT_V6,
            };
            let (initiate_secure, ale_connect) = if v6 {
                (
                    ipsec_callouts::INBOUND_INITIATE_SECURE_V6,
                    ipsec_callouts::ALE_CONNECT_V6,
                )
            } else {
                (
                    ipsec_callouts::INBOUND_INITIATE_SECURE_V4,
                    ipsec_callouts::ALE_CONNECT_V4,
                )
            };
            let make = |role: &str, action: Action, range: u8| {
                let mut f = Filter::new(self.name.clone(), layer, action)
                    .sublayer(SUBLAYER_MPSSVC_WF)
                    .provider(PROVIDER_MPSSVC_WF)
                    .weight(Weight::Range(range));
                f.description = format!("firewall rule {:?}: {role}", self.name);
                self.base_conditions(v6, &mut f);
                f
            };
            let secure = self.security != FirewallSecurity::None;
            match (self.action, inbound) {
                (FirewallAction::Block, _) => {
                    out.push(make("block", Action::Block, weight_ranges::BLOCK));
                }
                (FirewallAction::Allow, _) if !secure => {
                    out.push(make("allow", Action::Permit, weight_ranges::ALLOW));
                }
                (FirewallAction::Allow, true) => {
                    let mut f = make(
                        "allow if secure",
                        Action::CalloutTerminating(initiate_secure),
                        weight_ranges::ALLOW,
                    );
                    self.secured_conditions(&mut f);
                    f.raw_context = raw_context::ALLOW_AUTH_FW | enc;
                    out.push(f);
                    out.push(make(
                        "not secure: block",
                        Action::Block,
                        weight_ranges::NOT_SECURE_BLOCK,
                    ));
                }
                (FirewallAction::Allow, false) => {
                    let mut f = make(
                        "allow if secure",
                        Action::CalloutTerminating(ale_connect),
                        weight_ranges::ALLOW,
                    );
                    f.raw_context =
                        raw_context::REQUIRE_IPSEC_SECURITY | raw_context::ALLOW_AUTH_FW | enc;
                    out.push(f);
                }
                (FirewallAction::AllowBypass, true) => {
                    let mut f = make(
                        "authenticated bypass",
                        Action::Permit,
                        weight_ranges::BYPASS,
                    )
                    .flags(filter_flags::CLEAR_ACTION_RIGHT);
                    self.secured_conditions(&mut f);
                    f.raw_context = raw_context::ALLOW_AUTH_FW | enc;
                    out.push(f);
                }
                (FirewallAction::AllowBypass, false) => {
                    let mut f = make(
                        "authenticated bypass",
                        Action::CalloutTerminating(ale_connect),
                        weight_ranges::BYPASS,
                    );
                    f.raw_context =
                        raw_context::REQUIRE_IPSEC_SECURITY | raw_context::ALLOW_AUTH_FW | enc;
                    out.push(f);
                }
            }
        }
        if !self.key.is_nil() {
            for (i, f) in out.iter_mut().enumerate() {
                f.key = Guid::from_u128(self.key.as_u128().wrapping_add(i as u128 + 1));
            }
        }
        for f in &out {
            for (i, c) in f.conditions.iter().enumerate() {
                c.validate(f.layer).map_err(|e| {
                    SpecError::new(
                        e,
                        format!("conditions[{i}]"),
                        format!("{} rejected at {}", c.field.name(), f.layer.name()),
                    )
                })?;
            }
        }
        Ok(out)
    }
}

/// Adds the filters of `rule` through session `sid` (and the IPsec callout objects they
/// invoke, when missing: registering their code is ALE's job,
/// `wsock_ale::Ale::install_ipsec_callouts`; until then WFP treats the filters as blocks).
/// All or nothing: on a failure the filters already added are deleted again. Returns the
/// filter ids.
///
/// # Errors
/// As [`FirewallRule::filters`], plus whatever [`Engine::add_filter`] /
/// [`Engine::add_callout`] return (path `""`).
///
/// # Examples
/// ```
/// use wsock_wfp::firewall::*;
/// use wsock_wfp::*;
/// let mut e = Engine::new();
/// let s = e.open_session(false);
/// let bad = FirewallRule::new("bypass", FirewallDirection::Inbound, FirewallAction::AllowBypass)
///     .security(FirewallSecurity::Authenticate)
///     .authorize_user("WSOCK\\alice");
/// let err = install(&mut e, s, &bad).unwrap_err();
/// assert_eq!(err.error, WfpError::InvalidParameter);
/// assert_eq!(e.filter_count(), 0);
/// ```
pub fn install(
    engine: &mut Engine,
    sid: SessionId,
    rule: &FirewallRule,
) -> Result<Vec<u64>, SpecError> {
    let filters = rule.filters()?;
    for f in &filters {
        if let Some(c) = f.action.callout() {
            if engine.get_callout_by_key(sid, c).is_err() {
                let name = match c {
                    ipsec_callouts::INBOUND_INITIATE_SECURE_V4 => {
                        "FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4"
                    }
                    ipsec_callouts::INBOUND_INITIATE_SECURE_V6 => {
                        "FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6"
                    }
                    ipsec_callouts::ALE_CONNECT_V4 => "FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4",
                    _ => "FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6",
                };
                engine
                    .add_callout(sid, &CalloutObject::new(name, c, f.layer))
                    .map_err(|e| SpecError::new(e, "", format!("FwpmCalloutAdd0 failed: {e}")))?;
            }
        }
    }
    let mut ids = Vec::with_capacity(filters.len());
    for f in &filters {
        match engine.add_filter(sid, f) {
            Ok(id) => ids.push(id),
            Err(e) => {
                for id in ids {
                    // best effort: these were just added by this session
                    let _ = engine.delete_filter_by_id(sid, id);
                }
                return Err(SpecError::new(e, "", format!("FwpmFilterAdd0 failed: {e}")));
            }
        }
    }
    Ok(ids)
}

// ------------------------------------------------------------------------------ TOML spec

/// A port in a spec: a number or `"low-high"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum PortSpec {
    /// One port.
    Num(i64),
    /// `"8000-8080"` or `"80"`.
    Text(String),
}

/// A firewall rule as written in a scenario file (`[[host.firewall_rule]]`).
///
/// ```toml
/// [[host.firewall_rule]]
/// name = "echo: only from CLIENT, authenticated"
/// direction = "in"                    # in | out
/// action = "bypass"                   # allow | block | allow-if-secure | bypass
/// require_encryption = false          # allow-if-secure / bypass: AUTHENTICATE_WITH_ENCRYPTION
/// protocol = "tcp"                    # tcp | udp | icmp | a number
/// local_ports = [7, "8000-8080"]
/// remote_addresses = ["10.0.0.0/24"]
/// authorized_computers = ['WSOCK\CLIENT$']
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRuleSpec {
    /// Display name (required).
    #[serde(default)]
    pub name: String,
    /// Key (GUID) the filter keys derive from.
    #[serde(default)]
    pub key: Option<String>,
    /// `in` / `inbound` or `out` / `outbound`.
    #[serde(default)]
    pub direction: String,
    /// `allow`, `block`, `allow-if-secure`, `bypass` (`allow-bypass`).
    #[serde(default)]
    pub action: String,
    /// Require encryption (allow-if-secure and bypass only).
    #[serde(default)]
    pub require_encryption: bool,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a number; absent = any.
    #[serde(default)]
    pub protocol: Option<PortSpec>,
    /// Local ports.
    #[serde(default)]
    pub local_ports: Vec<PortSpec>,
    /// Remote ports.
    #[serde(default)]
    pub remote_ports: Vec<PortSpec>,
    /// Local addresses / prefixes.
    #[serde(default)]
    pub local_addresses: Vec<String>,
    /// Remote addresses / prefixes.
    #[serde(default)]
    pub remote_addresses: Vec<String>,
    /// Application path.
    #[serde(default)]
    pub app: Option<String>,
    /// Authorized computers.
    #[serde(default)]
    pub authorized_computers: Vec<String>,
    /// Authorized users.
    #[serde(default)]
    pub authorized_users: Vec<String>,
}

fn port_range(p: &PortSpec, path: &str) -> Result<PortRange, SpecError> {
    let bad = || {
        SpecError::new(
            WfpError::InvalidParameter,
            path,
            format!("{p:?} is not a port (0..=65535) or a range \"low-high\""),
        )
    };
    let one = |s: &str| s.trim().parse::<u16>().map_err(|_| bad());
    match p {
        PortSpec::Num(n) => {
            let v = u16::try_from(*n).map_err(|_| bad())?;
            Ok(PortRange { low: v, high: v })
        }
        PortSpec::Text(t) => match t.split_once('-') {
            Some((a, b)) => Ok(PortRange {
                low: one(a)?,
                high: one(b)?,
            }),
            None => {
                let v = one(t)?;
                Ok(PortRange { low: v, high: v })
            }
        },
    }
}

impl FirewallRuleSpec {
    /// Builds and validates the rule.
    ///
    /// # Errors
    /// A [`SpecError`] naming the bad field; see [`FirewallRule::validate`].
    ///
    /// # Examples
    /// ```
    /// use wsock_wfp::firewall::*;
    /// let spec: FirewallRuleSpec = toml::from_str(r#"
    ///     name = "web"
    ///     direction = "in"
    ///     action = "allow-if-secure"
    ///     protocol = "tcp"
    ///     local_ports = [80, "8000-8080"]
    /// "#).unwrap();
    /// let rule = spec.build().unwrap();
    /// assert_eq!(rule.security, FirewallSecurity::Authenticate);
    /// assert_eq!(rule.local_ports[1], PortRange { low: 8000, high: 8080 });
    /// ```
    pub fn build(&self) -> Result<FirewallRule, SpecError> {
        let bad = |path: &str, msg: String| SpecError::new(WfpError::InvalidParameter, path, msg);
        let direction = match normalize(&self.direction).as_str() {
            "IN" | "INBOUND" => FirewallDirection::Inbound,
            "OUT" | "OUTBOUND" => FirewallDirection::Outbound,
            _ => {
                return Err(bad(
                    "direction",
                    format!("direction {:?} is not `in` or `out`", self.direction),
                ))
            }
        };
        let (action, secure) = match normalize(&self.action).as_str() {
            "ALLOW" => (FirewallAction::Allow, false),
            "BLOCK" => (FirewallAction::Block, false),
            "ALLOW_IF_SECURE" | "AUTHENTICATE" => (FirewallAction::Allow, true),
            "BYPASS" | "ALLOW_BYPASS" | "AUTHENTICATED_BYPASS" => {
                (FirewallAction::AllowBypass, true)
            }
            _ => {
                return Err(bad(
                    "action",
                    format!(
                        "action {:?} is not allow, block, allow-if-secure or bypass",
                        self.action
                    ),
                ))
            }
        };
        if self.require_encryption && !secure {
            return Err(bad(
                "require_encryption",
                "require_encryption needs action allow-if-secure or bypass".into(),
            ));
        }
        let mut r = FirewallRule::new(self.name.clone(), direction, action);
        r.security = match (secure, self.require_encryption) {
            (false, _) => FirewallSecurity::None,
            (true, false) => FirewallSecurity::Authenticate,
            (true, true) => FirewallSecurity::AuthenticateWithEncryption,
        };
        if let Some(k) = &self.key {
            r.key = k
                .parse()
                .map_err(|_| bad("key", format!("{k:?} is not a GUID")))?;
        }
        r.protocol = match &self.protocol {
            None => None,
            Some(PortSpec::Num(n)) => Some(
                u8::try_from(*n)
                    .map_err(|_| bad("protocol", format!("protocol {n} is not 0..=255")))?,
            ),
            Some(PortSpec::Text(t)) => Some(match normalize(t).as_str() {
                "TCP" => 6,
                "UDP" => 17,
                "ICMP" => 1,
                "ICMPV6" => 58,
                other => other.parse::<u8>().map_err(|_| {
                    bad(
                        "protocol",
                        format!("protocol {t:?} is not tcp, udp, icmp, icmpv6 or 0..=255"),
                    )
                })?,
            }),
        };
        for (i, p) in self.local_ports.iter().enumerate() {
            r.local_ports
                .push(port_range(p, &format!("local_ports[{i}]"))?);
        }
        for (i, p) in self.remote_ports.iter().enumerate() {
            r.remote_ports
                .push(port_range(p, &format!("remote_ports[{i}]"))?);
        }
        for (what, src, dst) in [
            (
                "local_addresses",
                &self.local_addresses,
                &mut r.local_addresses,
            ),
            (
                "remote_addresses",
                &self.remote_addresses,
                &mut r.remote_addresses,
            ),
        ] {
            for (i, a) in src.iter().enumerate() {
                dst.push(a.parse().map_err(|m| bad(&format!("{what}[{i}]"), m))?);
            }
        }
        r.app = self.app.clone();
        r.authorized_computers = self.authorized_computers.clone();
        r.authorized_users = self.authorized_users.clone();
        r.validate()?;
        Ok(r)
    }
}

fn normalize(s: &str) -> String {
    s.trim().to_ascii_uppercase().replace(['-', ' '], "_")
}

#[cfg(test)]
mod tests {
    //! Expansion tests named after cases 60-62 of wfp-ale-ipsec.md §10.1: the filters are
    //! classified with the values ALE supplies at `ALE_AUTH_RECV_ACCEPT` (`FLAGS` with
    //! `IS_IPSEC_SECURED`, `ALE_REMOTE_MACHINE_ID` from the main-mode identity).
    use super::*;
    use crate::value::{IncomingValues, Token};
    use crate::{CalloutClassify, CalloutVerdict, Decision};
    use std::sync::Arc;

    struct Mark;
    impl crate::Callout for Mark {
        fn classify(&self, _: &CalloutClassify<'_>) -> CalloutVerdict {
            CalloutVerdict::PERMIT
        }
    }

    fn engine() -> (Engine, SessionId) {
        let mut e = Engine::new();
        let s = e.open_session(false);
        (e, s)
    }

    fn register(e: &mut Engine) {
        for k in [
            ipsec_callouts::INBOUND_INITIATE_SECURE_V4,
            ipsec_callouts::INBOUND_INITIATE_SECURE_V6,
            ipsec_callouts::ALE_CONNECT_V4,
            ipsec_callouts::ALE_CONNECT_V6,
        ] {
            e.register_callout(k, Arc::new(Mark));
        }
    }

    /// An inbound TCP connection to local port `port` from 10.0.0.1.
    fn inbound(port: u16, secured: bool, machine: Option<&str>) -> IncomingValues {
        let mut v = IncomingValues::new();
        v.set(Field::IP_PROTOCOL, FwpValue::Uint8(6))
            .set(Field::IP_LOCAL_PORT, FwpValue::Uint16(port))
            .set(Field::IP_REMOTE_PORT, FwpValue::Uint16(50000))
            .set(Field::IP_REMOTE_ADDRESS, FwpValue::Uint32(0x0a00_0001))
            .set(Field::IP_LOCAL_ADDRESS, FwpValue::Uint32(0x0a00_0002))
            .set(
                Field::FLAGS,
                FwpValue::Uint32(if secured {
                    condition_flags::IS_IPSEC_SECURED
                } else {
                    0
                }),
            );
        if let Some(m) = machine {
            v.set(
                Field::ALE_REMOTE_MACHINE_ID,
                FwpValue::token(Token::user(m)),
            );
        }
        v
    }

    fn verdict(e: &Engine, v: &IncomingValues) -> (Decision, Option<u64>) {
        let r = e.classify(Layer::ALE_AUTH_RECV_ACCEPT_V4, v);
        (r.decision, r.decided_by.map(|f| f.id))
    }

    #[test]
    fn case_60_bypass_beats_block_only_for_authenticated_authorized_computers() {
        let (mut e, s) = engine();
        register(&mut e);
        let block = install(
            &mut e,
            s,
            &FirewallRule::new(
                "block 80",
                FirewallDirection::Inbound,
                FirewallAction::Block,
            )
            .protocol(6)
            .local_port(80),
        )
        .unwrap();
        let bypass = install(
            &mut e,
            s,
            &FirewallRule::new(
                "bypass 80",
                FirewallDirection::Inbound,
                FirewallAction::AllowBypass,
            )
            .security(FirewallSecurity::Authenticate)
            .protocol(6)
            .local_port(80)
            .authorize_computer("WSOCK\\CLIENT$"),
        )
        .unwrap();
        // authenticated, authorized computer: the bypass decides (hard permit)
        let (d, by) = verdict(&e, &inbound(80, true, Some("WSOCK\\CLIENT$")));
        assert_eq!((d, by), (Decision::Permit, Some(bypass[0])));
        let f = e.get_filter_by_id(s, bypass[0]).unwrap();
        assert_ne!(f.flags & filter_flags::CLEAR_ACTION_RIGHT, 0);
        assert_eq!(f.raw_context, raw_context::ALLOW_AUTH_FW);
        // unauthenticated: blocked by the block rule
        assert_eq!(
            verdict(&e, &inbound(80, false, None)),
            (Decision::Block, Some(block[0]))
        );
        // authenticated but not an authorized computer: blocked
        assert_eq!(
            verdict(&e, &inbound(80, true, Some("WSOCK\\EVIL$"))),
            (Decision::Block, Some(block[0]))
        );
        // the bypass permit is hard: a block in a lower sublayer does not override it
        let low = crate::Sublayer::new("low", 0x0100).key(Guid::from_u128(0x10));
        e.add_sublayer(s, &low).unwrap();
        e.add_filter(
            s,
            &Filter::new("low block", Layer::ALE_AUTH_RECV_ACCEPT_V4, Action::Block)
                .sublayer(Guid::from_u128(0x10)),
        )
        .unwrap();
        assert_eq!(
            verdict(&e, &inbound(80, true, Some("WSOCK\\CLIENT$"))).0,
            Decision::Permit
        );
    }

    #[test]
    fn case_60_plain_allow_does_not_override_block() {
        let (mut e, s) = engine();
        let block = install(
            &mut e,
            s,
            &FirewallRule::new(
                "block 80",
                FirewallDirection::Inbound,
                FirewallAction::Block,
            )
            .protocol(6)
            .local_port(80),
        )
        .unwrap();
        let allow = install(
            &mut e,
            s,
            &FirewallRule::new(
                "allow 80",
                FirewallDirection::Inbound,
                FirewallAction::Allow,
            )
            .protocol(6)
            .local_port(80),
        )
        .unwrap();
        assert_eq!(
            verdict(&e, &inbound(80, true, Some("WSOCK\\CLIENT$"))),
            (Decision::Block, Some(block[0]))
        );
        // the allow filter is there and decides where no block matches
        e.delete_filter_by_id(s, block[0]).unwrap();
        assert_eq!(
            verdict(&e, &inbound(80, false, None)),
            (Decision::Permit, Some(allow[0]))
        );
    }

    #[test]
    fn case_61_inbound_bypass_with_users_only_is_rejected() {
        let (mut e, s) = engine();
        let rule = FirewallRule::new(
            "bypass users",
            FirewallDirection::Inbound,
            FirewallAction::AllowBypass,
        )
        .security(FirewallSecurity::Authenticate)
        .protocol(6)
        .local_port(80)
        .authorize_user("WSOCK\\alice");
        let err = install(&mut e, s, &rule).unwrap_err();
        assert_eq!(err.error, WfpError::InvalidParameter);
        assert_eq!(err.path, "authorized_computers");
        assert!(err.message.contains("at least one computer"), "{err}");
        assert_eq!(e.filter_count(), 0);
        // outbound bypass needs no computer list
        let out = FirewallRule::new(
            "bypass out",
            FirewallDirection::Outbound,
            FirewallAction::AllowBypass,
        )
        .security(FirewallSecurity::Authenticate);
        assert_eq!(install(&mut e, s, &out).unwrap().len(), 2);
        // with a computer the inbound rule is accepted
        let ok = rule.authorize_computer("WSOCK\\CLIENT$");
        assert_eq!(install(&mut e, s, &ok).unwrap().len(), 2);
    }

    #[test]
    fn case_62_allow_if_secure_blocks_clear_text_and_marks_secured_traffic() {
        let (mut e, s) = engine();
        register(&mut e);
        let ids = install(
            &mut e,
            s,
            &FirewallRule::new(
                "secure 80",
                FirewallDirection::Inbound,
                FirewallAction::Allow,
            )
            .security(FirewallSecurity::Authenticate)
            .protocol(6)
            .local_port(80),
        )
        .unwrap();
        assert_eq!(ids.len(), 4); // (secure permit, not-secure block) x (v4, v6)
                                  // no IPsec: blocked by the rule's own block half
        assert_eq!(
            verdict(&e, &inbound(80, false, None)),
            (Decision::Block, Some(ids[1]))
        );
        // integrity-only SA (secured): permitted by the INBOUND_INITIATE_SECURE callout
        // filter, which carries ALLOW_AUTH_FW and no encryption requirement
        let (d, by) = verdict(&e, &inbound(80, true, Some("WSOCK\\CLIENT$")));
        assert_eq!((d, by), (Decision::Permit, Some(ids[0])));
        let f = e.get_filter_by_id(s, ids[0]).unwrap();
        assert_eq!(
            f.action,
            Action::CalloutTerminating(ipsec_callouts::INBOUND_INITIATE_SECURE_V4)
        );
        assert_eq!(f.raw_context, raw_context::ALLOW_AUTH_FW);
    }

    #[test]
    fn case_62_require_encryption_puts_the_requirement_in_the_raw_context() {
        let (mut e, s) = engine();
        register(&mut e);
        let ids = install(
            &mut e,
            s,
            &FirewallRule::new("enc 80", FirewallDirection::Inbound, FirewallAction::Allow)
                .security(FirewallSecurity::AuthenticateWithEncryption)
                .protocol(6)
                .local_port(80),
        )
        .unwrap();
        assert_eq!(verdict(&e, &inbound(80, false, None)).0, Decision::Block);
        let (d, by) = verdict(&e, &inbound(80, true, Some("WSOCK\\CLIENT$")));
        assert_eq!((d, by), (Decision::Permit, Some(ids[0])));
        let f = e.get_filter_by_id(s, ids[0]).unwrap();
        // the stack reads this bit (ALE's ProtectionRequest::requires_encryption) and drops
        // the connection when its SA does not encrypt
        assert_eq!(
            f.raw_context,
            raw_context::ALLOW_AUTH_FW | raw_context::REQUIRE_IPSEC_ENCRYPTION
        );
        // outbound: the ALE connect callout with REQUIRE_IPSEC_SECURITY + encryption
        let out = FirewallRule::new(
            "enc out",
            FirewallDirection::Outbound,
            FirewallAction::Allow,
        )
        .security(FirewallSecurity::AuthenticateWithEncryption)
        .protocol(6)
        .remote_port(80)
        .filters()
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].action,
            Action::CalloutTerminating(ipsec_callouts::ALE_CONNECT_V4)
        );
        assert_eq!(
            out[0].raw_context,
            raw_context::REQUIRE_IPSEC_SECURITY
                | raw_context::ALLOW_AUTH_FW
                | raw_context::REQUIRE_IPSEC_ENCRYPTION
        );
    }

    #[test]
    fn plain_allow_admits_what_an_allow_if_secure_rule_would_block() {
        let (mut e, s) = engine();
        register(&mut e);
        install(
            &mut e,
            s,
            &FirewallRule::new(
                "secure 80",
                FirewallDirection::Inbound,
                FirewallAction::Allow,
            )
            .security(FirewallSecurity::Authenticate)
            .protocol(6)
            .local_port(80),
        )
        .unwrap();
        let allow = install(
            &mut e,
            s,
            &FirewallRule::new(
                "allow 80",
                FirewallDirection::Inbound,
                FirewallAction::Allow,
            )
            .protocol(6)
            .local_port(80),
        )
        .unwrap();
        assert_eq!(
            verdict(&e, &inbound(80, false, None)),
            (Decision::Permit, Some(allow[0]))
        );
    }

    #[test]
    fn rule_validation() {
        let r = |a| FirewallRule::new("r", FirewallDirection::Inbound, a);
        assert_eq!(
            r(FirewallAction::AllowBypass).validate().unwrap_err().error,
            WfpError::InvalidParameter
        );
        assert_eq!(
            r(FirewallAction::Block)
                .security(FirewallSecurity::Authenticate)
                .validate()
                .unwrap_err()
                .error,
            WfpError::InvalidParameter
        );
        assert_eq!(
            r(FirewallAction::Allow)
                .authorize_computer("X$")
                .validate()
                .unwrap_err()
                .path,
            "authorized_computers"
        );
        assert_eq!(
            r(FirewallAction::Allow)
                .local_port(80)
                .validate()
                .unwrap_err()
                .path,
            "protocol"
        );
        let mut x = r(FirewallAction::Allow).protocol(17);
        x.local_ports.push(PortRange { low: 9, high: 1 });
        assert_eq!(x.validate().unwrap_err().error, WfpError::InvalidRange);
        let x = r(FirewallAction::Allow)
            .remote_address("10.0.0.1".parse().unwrap())
            .key(Guid::from_u128(0x100));
        let mut x2 = x.clone();
        x2.local_addresses.push("fd00::1".parse().unwrap());
        assert_eq!(x2.validate().unwrap_err().path, "remote_addresses");
        let f = x.filters().unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, Guid::from_u128(0x101));
        assert_eq!(f[0].layer, Layer::ALE_AUTH_RECV_ACCEPT_V4);
        assert_eq!(f[0].sublayer, SUBLAYER_MPSSVC_WF);
        assert_eq!(f[0].weight, Weight::Range(weight_ranges::ALLOW));
        assert_eq!(
            FirewallRule::new("", FirewallDirection::Inbound, FirewallAction::Block)
                .validate()
                .unwrap_err()
                .error,
            WfpError::NullDisplayName
        );
    }

    #[test]
    fn spec_parsing() {
        let spec = |t: &str| toml::from_str::<FirewallRuleSpec>(t).unwrap().build();
        let r = spec(
            "name='x'\ndirection='out'\naction='block'\nprotocol=17\nremote_ports=['1000-2000']\nremote_addresses=['fd00::/64']",
        )
        .unwrap();
        assert_eq!(r.direction, FirewallDirection::Outbound);
        assert_eq!(
            r.remote_ports[0],
            PortRange {
                low: 1000,
                high: 2000
            }
        );
        assert_eq!(r.remote_addresses[0].len, 64);
        let f = r.filters().unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].layer, Layer::ALE_AUTH_CONNECT_V6);
        for (t, path) in [
            ("name='x'\ndirection='up'\naction='allow'", "direction"),
            ("name='x'\ndirection='in'\naction='maybe'", "action"),
            (
                "name='x'\ndirection='in'\naction='allow'\nrequire_encryption=true",
                "require_encryption",
            ),
            (
                "name='x'\ndirection='in'\naction='allow'\nprotocol='tcp'\nlocal_ports=[70000]",
                "local_ports[0]",
            ),
            (
                "name='x'\ndirection='in'\naction='allow'\nprotocol='tcp'\nlocal_ports=[-1]",
                "local_ports[0]",
            ),
            (
                "name='x'\ndirection='in'\naction='allow'\nprotocol='sctp'",
                "protocol",
            ),
            (
                "name='x'\ndirection='in'\naction='allow'\nremote_addresses=['10.0.0.0/33']",
                "remote_addresses[0]",
            ),
            (
                "name='x'\ndirection='in'\naction='bypass'",
                "authorized_computers",
            ),
        ] {
            assert_eq!(spec(t).unwrap_err().path, path, "{t}");
        }
    }
}
