//! # wsock-wfp: the filter engine (layer 0)
//!
//! In Windows, every security decision about a socket ends in the **Windows Filtering
//! Platform** (WFP): a kernel *filter engine* holding *filters* grouped into *layers* (one per
//! point in the network stack, e.g. `FWPM_LAYER_ALE_AUTH_CONNECT_V4` = "an outbound connect is
//! being authorized") and *sublayers* (one per policy owner: firewall, IPsec, secure sockets,
//! ...), plus the *Base Filtering Engine* management API (`Fwpm*`) that adds and deletes them.
//!
//! This crate is that engine, sans-IO: no threads, no sockets, no clock (time is passed in).
//! In wsock's architecture it sits at layer 0, below `wsock-ale` (which calls
//! [`Engine::classify`] at every socket event) and `wsock-ipsec` (which looks up IPsec policy
//! filters and records IKE failure net events); the stack and the CLI manage filters through
//! the Fwpm-shaped API ([`Engine::open_session`], [`Engine::add_filter`], [`Engine::add_spec`],
//! transactions, enumeration, change subscriptions) and read [net events](NetEvent).
//!
//! What it models, following Microsoft's WFP documentation (layers, sublayers, filters,
//! "Filter Arbitration"):
//!
//! * **Objects** keyed by [`Guid`]: providers, sublayers, filters, callouts, provider contexts;
//!   built-in [`Layer`]s, sublayers and condition [`Field`]s with the real Windows names/GUIDs.
//! * **Typed values** ([`FwpValue`]) with no implicit conversion, every [`MatchType`]
//!   (`PREFIX` tests a *suffix*, as documented), address masks and ranges; conditions on the
//!   same field are OR'd, different fields AND'd.
//! * **Weights**: automatic (bit-packed specificity), ranges (`FWP_UINT8`), exact (`FWP_UINT64`).
//! * **Arbitration** (§3.5): all sublayers in weight order; first terminating action per
//!   sublayer; soft/hard via the write right; block overrides soft permit; hard block final;
//!   callout veto of a hard permit (with notification); nothing matched = permit.
//! * **Indexed classification** that always agrees with the linear reference
//!   [`Engine::classify_linear`]: static filters on 5-tuple fields go to a tuple-space index
//!   (one hash table per condition shape, keyed by masked address/port/protocol values; port
//!   intervals as elementary-segment tables) that yields each sublayer's first match and the
//!   match count without visiting every match; other filters (callouts, OR groups, other fields)
//!   go to a candidate index (exact/prefix/port/range buckets) verified filter by filter.
//!
//! ```
//! use wsock_wfp::*;
//! let mut engine = Engine::new();
//! let session = engine.open_session(false);
//! let spec: FilterSpec = FilterSpec {
//!     name: "block web".into(),
//!     layer: "FWPM_LAYER_ALE_AUTH_CONNECT_V4".into(),
//!     action: "block".into(),
//!     conditions: vec![ConditionSpec::new("ip_remote_port", "equal", ValueSpec::Int(80))],
//!     ..FilterSpec::default()
//! };
//! let id = engine.add_spec(session, &spec).unwrap();
//! let v = IncomingValues::new().with(Field::IP_REMOTE_PORT, FwpValue::Uint16(80));
//! assert_eq!(engine.classify(Layer::ALE_AUTH_CONNECT_V4, &v).decided_by.unwrap().id, id);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod classify;
mod engine;
mod error;
pub mod firewall;
mod guid;
mod inline;
mod netevent;
mod object;
mod policy;
mod schema;
mod spec;
mod tuple;
mod value;

pub use classify::{
    ArbitrationOptions, Callout, CalloutAction, CalloutClassify, CalloutNotification,
    CalloutVerdict, ClassifyResult, Decision, FilterRef, SublayerResult, SublayerResults, Veto,
};
pub use engine::{
    ChangeEvent, ChangeType, Engine, EngineOptions, FilterEnumTemplate, ObjectKind, SessionId,
    SessionOptions, SubscriptionId, SubscriptionSpec,
};
pub use error::WfpError;
pub use guid::{Guid, ParseGuidError};
pub use inline::InlineVec;
pub use netevent::{ClassifyInfo, NetEvent, NetEventHeader, NetEventKind, NetEventSubscription};
pub use object::{
    auto_weight, effective_weight, filter_flags, Action, CalloutObject, Filter, Lifetime, Provider,
    ProviderContext, Sublayer, Weight, AUTO_WEIGHT_BITS, AUTO_WEIGHT_MAX, WEIGHT_RANGE_MAX,
};
pub use policy::{
    ike_policy_flags, ipsec_policy_flags, provider_context_type, IkeAuthMethod, IkeAuthMethodSpec,
    IkeAuthType, IkeCipher, IkeDhGroup, IkeIntegrity, IkeMmPolicy, IkeProposal, IpsecAuth,
    IpsecCipher, IpsecLifetime, IpsecPfsGroup, IpsecProposal, IpsecQmPolicy, IpsecTransform,
    ProposalSpec, ProviderContextData, ProviderContextSpec, TransformSpec, TunnelEndpoints,
    UnknownName, MAX_REPLAY_WINDOW,
};
pub use schema::{
    condition_flags, reauth_reason, Family, Field, FieldKind, Layer, LayerKind, BUILTIN_PROVIDERS,
    BUILTIN_SUBLAYERS, SUBLAYER_INSPECTION, SUBLAYER_IPSEC_SECURITY_REALM, SUBLAYER_RPC_AUDIT,
    SUBLAYER_SECURE_SOCKET, SUBLAYER_UNIVERSAL,
};
pub use spec::{
    ConditionSpec, FilterSpec, ProviderSpec, SpecError, SublayerSpec, ValueSpec, WeightSpec,
};
pub use value::{
    Condition, DataType, FwpValue, IncomingValues, MatchType, SecurityDescriptor, Token,
};
