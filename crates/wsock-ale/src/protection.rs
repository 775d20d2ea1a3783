//! What a deciding filter asks for beyond permit/block: the IPsec callouts it invokes, its
//! `rawContext` flags and the provider context it names (reference §4.1, §4.2). ALE does not
//! negotiate or protect anything itself; it hands these requests to the stack, which hands
//! them to IPsec.

use wsock_wfp::{Callout, CalloutClassify, CalloutVerdict, Guid, Layer, LayerKind};

/// Built-in IPsec callout keys (`FWPM_CALLOUT_IPSEC_*`), the real Windows GUIDs.
pub mod callouts {
    use wsock_wfp::Guid;
    /// `FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4`: checks that an inbound packet that should
    /// arrive over a transport-mode SA did.
    pub const IPSEC_INBOUND_TRANSPORT_V4: Guid =
        Guid::from_u128(0x5132900d_5e84_4b5f_80e4_01741e81ff10);
    /// `FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6`.
    pub const IPSEC_INBOUND_TRANSPORT_V6: Guid =
        Guid::from_u128(0x49d3ac92_2a6c_4dcf_955f_1c3be009dd99);
    /// `FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4`: marks outbound traffic that must be
    /// protected by a transport-mode SA (triggers negotiation).
    pub const IPSEC_OUTBOUND_TRANSPORT_V4: Guid =
        Guid::from_u128(0x4b46bf0a_4523_4e57_aa38_a87987c910d9);
    /// `FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6`.
    pub const IPSEC_OUTBOUND_TRANSPORT_V6: Guid =
        Guid::from_u128(0x38d87722_ad83_4f11_a91f_df0fb077225b);
    /// `FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4` (ALE_AUTH_RECV_ACCEPT): an inbound
    /// connection must arrive secured.
    pub const IPSEC_INBOUND_INITIATE_SECURE_V4: Guid =
        Guid::from_u128(0x7dff309b_ba7d_4aba_91aa_ae5c6640c944);
    /// `FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6`.
    pub const IPSEC_INBOUND_INITIATE_SECURE_V6: Guid =
        Guid::from_u128(0xa9a0d6d9_c58c_474e_8aeb_3cfe99d6d53d);
    /// `FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4` (ALE_AUTH_CONNECT): applies IPsec policy modifiers
    /// (require security / encryption) to client connections.
    pub const IPSEC_ALE_CONNECT_V4: Guid = Guid::from_u128(0x6ac141fc_f75d_4203_b9c8_48e6149c2712);
    /// `FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6`.
    pub const IPSEC_ALE_CONNECT_V6: Guid = Guid::from_u128(0x4c0dda05_e31f_4666_90b0_b3dfad34129a);
}

/// `rawContext` values of IPsec-related filters (`FWPM_CONTEXT_*`, fwpmu.h). Their meaning
/// depends on the layer: the same bit means different things at the transport and ALE layers.
pub mod contexts {
    /// Inbound transport: `FWPM_CONTEXT_IPSEC_INBOUND_PASSTHRU` (clear text is accepted).
    pub const IPSEC_INBOUND_PASSTHRU: u64 = 0x1;
    /// Inbound transport: `FWPM_CONTEXT_IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY` (once a
    /// connection is secured it stays secured).
    pub const IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY: u64 = 0x2;
    /// Inbound transport: `FWPM_CONTEXT_IPSEC_INBOUND_RESERVED`.
    pub const IPSEC_INBOUND_RESERVED: u64 = 0xff00_0000_0000_0000;
    /// Outbound transport: `FWPM_CONTEXT_IPSEC_OUTBOUND_NEGOTIATE_DISCOVER` (send in clear
    /// while negotiating).
    pub const IPSEC_OUTBOUND_NEGOTIATE_DISCOVER: u64 = 0x1;
    /// Outbound transport: `FWPM_CONTEXT_IPSEC_OUTBOUND_SUPPRESS_NEGOTIATION`.
    pub const IPSEC_OUTBOUND_SUPPRESS_NEGOTIATION: u64 = 0x2;
    /// ALE connect: `FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY`.
    pub const ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY: u64 = 0x2;
    /// ALE connect: `FWPM_CONTEXT_ALE_SET_CONNECTION_LAZY_SD_EVALUATION`.
    pub const ALE_SET_CONNECTION_LAZY_SD_EVALUATION: u64 = 0x4;
    /// ALE connect or accept: `FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION`.
    pub const ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION: u64 = 0x8;
    /// ALE connect or accept:
    /// `FWPM_CONTEXT_ALE_SET_CONNECTION_ALLOW_FIRST_INBOUND_PKT_UNENCRYPTED`.
    pub const ALE_SET_CONNECTION_ALLOW_FIRST_INBOUND_PKT_UNENCRYPTED: u64 = 0x10;
    /// ALE connect or accept: `FWPM_CONTEXT_ALE_ALLOW_AUTH_FW`.
    pub const ALE_ALLOW_AUTH_FW: u64 = 0x20;
}

/// Built-in provider contexts holding the secure-socket defaults.
pub mod provider_contexts {
    use wsock_wfp::Guid;
    /// `FWPM_PROVIDER_CONTEXT_SECURE_SOCKET_AUTHIP` (AuthIP main-mode default).
    pub const SECURE_SOCKET_AUTHIP: Guid = Guid::from_u128(0xb25ea800_0d02_46ed_92bd_7fa84bb73e9d);
    /// `FWPM_PROVIDER_CONTEXT_SECURE_SOCKET_IPSEC` (quick-mode default).
    pub const SECURE_SOCKET_IPSEC: Guid = Guid::from_u128(0x8c2d4144_f8e0_42c0_94ce_7ccfc63b2f9b);
}

/// One of the built-in IPsec callouts ALE recognizes (either family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpsecCallout {
    /// `FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4/V6`.
    InboundTransport,
    /// `FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4/V6`.
    OutboundTransport,
    /// `FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4/V6`.
    InboundInitiateSecure,
    /// `FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4/V6`.
    AleConnect,
}

impl IpsecCallout {
    /// All four.
    pub const ALL: [IpsecCallout; 4] = [
        IpsecCallout::InboundTransport,
        IpsecCallout::OutboundTransport,
        IpsecCallout::InboundInitiateSecure,
        IpsecCallout::AleConnect,
    ];

    /// Recognizes a callout key (either family).
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_ale::{callouts, IpsecCallout};
    /// assert_eq!(
    ///     IpsecCallout::from_key(callouts::IPSEC_OUTBOUND_TRANSPORT_V6),
    ///     Some(IpsecCallout::OutboundTransport)
    /// );
    /// ```
    pub fn from_key(key: Guid) -> Option<IpsecCallout> {
        IpsecCallout::ALL
            .into_iter()
            .find(|c| c.key(false) == key || c.key(true) == key)
    }

    /// The callout key for a family (`v6` = IPv6).
    pub fn key(self, v6: bool) -> Guid {
        use callouts::*;
        match (self, v6) {
            (IpsecCallout::InboundTransport, false) => IPSEC_INBOUND_TRANSPORT_V4,
            (IpsecCallout::InboundTransport, true) => IPSEC_INBOUND_TRANSPORT_V6,
            (IpsecCallout::OutboundTransport, false) => IPSEC_OUTBOUND_TRANSPORT_V4,
            (IpsecCallout::OutboundTransport, true) => IPSEC_OUTBOUND_TRANSPORT_V6,
            (IpsecCallout::InboundInitiateSecure, false) => IPSEC_INBOUND_INITIATE_SECURE_V4,
            (IpsecCallout::InboundInitiateSecure, true) => IPSEC_INBOUND_INITIATE_SECURE_V6,
            (IpsecCallout::AleConnect, false) => IPSEC_ALE_CONNECT_V4,
            (IpsecCallout::AleConnect, true) => IPSEC_ALE_CONNECT_V6,
        }
    }

    /// The layer the callout applies to (`applicableLayer`).
    pub fn layer(self, v6: bool) -> Layer {
        match (self, v6) {
            (IpsecCallout::InboundTransport, false) => Layer::INBOUND_TRANSPORT_V4,
            (IpsecCallout::InboundTransport, true) => Layer::INBOUND_TRANSPORT_V6,
            (IpsecCallout::OutboundTransport, false) => Layer::OUTBOUND_TRANSPORT_V4,
            (IpsecCallout::OutboundTransport, true) => Layer::OUTBOUND_TRANSPORT_V6,
            (IpsecCallout::InboundInitiateSecure, false) => Layer::ALE_AUTH_RECV_ACCEPT_V4,
            (IpsecCallout::InboundInitiateSecure, true) => Layer::ALE_AUTH_RECV_ACCEPT_V6,
            (IpsecCallout::AleConnect, false) => Layer::ALE_AUTH_CONNECT_V4,
            (IpsecCallout::AleConnect, true) => Layer::ALE_AUTH_CONNECT_V6,
        }
    }

    /// The Windows name, e.g. `"FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4"`.
    pub fn name(self, v6: bool) -> &'static str {
        match (self, v6) {
            (IpsecCallout::InboundTransport, false) => "FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4",
            (IpsecCallout::InboundTransport, true) => "FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6",
            (IpsecCallout::OutboundTransport, false) => "FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4",
            (IpsecCallout::OutboundTransport, true) => "FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6",
            (IpsecCallout::InboundInitiateSecure, false) => {
                "FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4"
            }
            (IpsecCallout::InboundInitiateSecure, true) => {
                "FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6"
            }
            (IpsecCallout::AleConnect, false) => "FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4",
            (IpsecCallout::AleConnect, true) => "FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6",
        }
    }
}

/// What the filter that permitted a classification asks for beyond "permit": the callout it
/// invoked, its `rawContext` and its provider context. Present on a permit whenever the
/// deciding filter invokes a callout, has a non-zero `rawContext` or names a provider context
/// (a plain permit filter yields none). `Copy`: it travels per packet without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ProtectionRequest {
    /// Layer of the classification that produced it.
    pub layer: Layer,
    /// Deciding filter id.
    pub filter_id: u64,
    /// Deciding filter key.
    pub filter_key: Guid,
    /// Deciding filter's sublayer.
    pub sublayer: Guid,
    /// The callout the filter invoked, if its action is a callout.
    pub callout: Option<Guid>,
    /// The callout, if it is one of the built-in IPsec callouts.
    pub ipsec_callout: Option<IpsecCallout>,
    /// The filter's `rawContext` (see [`contexts`]; 0 when it has a provider context).
    pub raw_context: u64,
    /// The filter's `providerContextKey`.
    pub provider_context: Option<Guid>,
}

impl ProtectionRequest {
    fn ale_layer(&self) -> bool {
        matches!(
            self.layer.kind(),
            LayerKind::AuthConnect | LayerKind::AuthRecvAccept
        )
    }

    /// Whether the traffic must be IPsec-protected: an outbound transport IPsec callout
    /// without `NEGOTIATE_DISCOVER`, an inbound transport IPsec callout without `PASSTHRU`,
    /// `INBOUND_INITIATE_SECURE`, or an ALE-layer filter with `REQUIRE_IPSEC_SECURITY` or
    /// `REQUIRE_IPSEC_ENCRYPTION`.
    pub fn requires_security(&self) -> bool {
        match self.ipsec_callout {
            Some(IpsecCallout::OutboundTransport) => !self.negotiate_discover(),
            Some(IpsecCallout::InboundTransport) => {
                self.raw_context & contexts::IPSEC_INBOUND_PASSTHRU == 0
            }
            Some(IpsecCallout::InboundInitiateSecure) => true,
            _ => {
                self.ale_layer()
                    && self.raw_context
                        & (contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY
                            | contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION)
                        != 0
            }
        }
    }

    /// Whether the connection must be encrypted (`REQUIRE_IPSEC_ENCRYPTION` at an ALE layer).
    pub fn requires_encryption(&self) -> bool {
        self.ale_layer()
            && self.raw_context & contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION != 0
    }

    /// Outbound transport callout with `NEGOTIATE_DISCOVER`: clear text may leave while
    /// negotiation runs.
    pub fn negotiate_discover(&self) -> bool {
        self.ipsec_callout == Some(IpsecCallout::OutboundTransport)
            && self.raw_context & contexts::IPSEC_OUTBOUND_NEGOTIATE_DISCOVER != 0
    }

    /// Outbound transport callout with `SUPPRESS_NEGOTIATION`.
    pub fn suppress_negotiation(&self) -> bool {
        self.ipsec_callout == Some(IpsecCallout::OutboundTransport)
            && self.raw_context & contexts::IPSEC_OUTBOUND_SUPPRESS_NEGOTIATION != 0
    }

    /// Inbound transport callout with `PERSIST_CONNECTION_SECURITY`.
    pub fn persist_connection_security(&self) -> bool {
        self.ipsec_callout == Some(IpsecCallout::InboundTransport)
            && self.raw_context & contexts::IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY != 0
    }

    /// ALE layer with `ALLOW_FIRST_INBOUND_PKT_UNENCRYPTED`.
    pub fn allow_first_inbound_unencrypted(&self) -> bool {
        self.ale_layer()
            && self.raw_context & contexts::ALE_SET_CONNECTION_ALLOW_FIRST_INBOUND_PKT_UNENCRYPTED
                != 0
    }
}

/// The IPsec policy filter that matched a lookup at `FWPM_LAYER_IKEEXT_V4/V6` (main mode) or
/// `FWPM_LAYER_IPSEC_V4/V6` (quick mode), and the provider context it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PolicyMatch {
    /// Layer looked up.
    pub layer: Layer,
    /// The policy filter.
    pub filter_id: u64,
    /// Its key.
    pub filter_key: Guid,
    /// Its sublayer.
    pub sublayer: Guid,
    /// The provider context (MM or QM policy) it names.
    pub provider_context: Guid,
}

/// The in-process code ALE registers for the built-in IPsec callouts
/// ([`crate::Ale::install_ipsec_callouts`]): a soft permit, so the filter that invokes it
/// *decides* and its callout key, `rawContext` and provider context reach the caller as a
/// [`ProtectionRequest`]. Enforcing the request (queueing until an SA exists, dropping clear
/// text that should have arrived protected) is the stack's and IPsec's job.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpsecMarkCallout;

impl Callout for IpsecMarkCallout {
    fn classify(&self, _ctx: &CalloutClassify<'_>) -> CalloutVerdict {
        CalloutVerdict::PERMIT
    }
}
