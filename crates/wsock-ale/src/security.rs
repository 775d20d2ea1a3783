//! Per-endpoint secure-socket state (what `WSASetSocketSecurity` and
//! `WSASetSocketPeerTargetName` store, reference §1.2-§1.4) and per-flow IPsec results (what
//! `WSAQuerySocketSecurity` reports). ALE stores them; it does not interpret them yet.

use wsock_wfp::Guid;

/// The settings of `SOCKET_SECURITY_SETTINGS` / `SOCKET_SECURITY_SETTINGS_IPSEC`, already
/// validated and decoded by the API layer. Opaque to ALE for now (filter instantiation will
/// read it).
///
/// `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecuritySettings {
    /// `SecurityProtocol` (`SOCKET_SECURITY_PROTOCOL_DEFAULT` 0, `_IPSEC` 1, `_IPSEC2` 2).
    pub protocol: u32,
    /// `SecurityFlags` (`SOCKET_SETTINGS_GUARANTEE_ENCRYPTION` 0x1, `_ALLOW_INSECURE` 0x2).
    pub flags: u32,
    /// `IpsecFlags` (`SOCKET_SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION` 0x1, ...).
    pub ipsec_flags: u32,
    /// `AuthipMMPolicyKey` (`None` = the default, a zero GUID on the wire).
    pub mm_policy_key: Option<Guid>,
    /// `AuthipQMPolicyKey` (`None` = the default).
    pub qm_policy_key: Option<Guid>,
    /// Explicit user name.
    pub user: Option<String>,
    /// Explicit domain.
    pub domain: Option<String>,
    /// Explicit password.
    pub password: Option<String>,
}

impl std::fmt::Debug for SecuritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuritySettings")
            .field("protocol", &self.protocol)
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("ipsec_flags", &format_args!("{:#x}", self.ipsec_flags))
            .field("mm_policy_key", &self.mm_policy_key)
            .field("qm_policy_key", &self.qm_policy_key)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// IPsec facts about one flow, as `SOCKET_SECURITY_QUERY_INFO_IPSEC2` reports them. Set by
/// the stack once keying has run ([`crate::Ale::set_flow_security`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FlowSecurity {
    /// `MmSaId`: main-mode (IKE) SA protecting the flow.
    pub mm_sa_id: Option<u64>,
    /// `QmSaId`: quick-mode (child) SA protecting the flow.
    pub qm_sa_id: Option<u64>,
    /// `NegotiationWinerr`: the Win32 error of the last failed negotiation (0 = none).
    pub negotiation_winerr: u32,
}
