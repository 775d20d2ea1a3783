//! # wsock-ale: Application Layer Enforcement (layer 1)
//!
//! Windows does not filter sockets packet by packet. It classifies **socket events** — a bind,
//! a listen, a connect, the first datagram to or from a new peer, an inbound connection — at
//! the ALE layers of the filter engine, once per *flow*, and then lets every packet of an
//! authorized flow through until policy changes. That is ALE, and this crate is it: it owns a
//! [`wsock_wfp::Engine`], keeps per-endpoint and per-flow state, builds the incoming values
//! (5-tuple, application id, user, flags) for each event, classifies at the right layer and
//! turns the decision into data the stack acts on ([`AleVerdict`], [`BlockEffect`],
//! [`ProtectionRequest`]).
//!
//! In wsock's architecture it sits at layer 1, above `wsock-wfp` and below `wsock-stack`. It
//! is sans-IO: time comes in as a [`Duration`] since an arbitrary epoch (`now`), nothing is sent.
//! The stack wraps an [`Ale`] in its own lock and calls, per socket event:
//!
//! | socket event | method | layers classified (in order) |
//! |---|---|---|
//! | `bind()` (explicit) | [`Ale::bind`] | RESOURCE_ASSIGNMENT |
//! | `listen()` | [`Ale::listen`] | AUTH_LISTEN |
//! | `connect()` | [`Ale::connect`] | (RESOURCE_ASSIGNMENT, implicit bind) → AUTH_CONNECT |
//! | SYN-ACK received (client) / final ACK (server) | [`Ale::established`] | FLOW_ESTABLISHED |
//! | SYN received on a listener | [`Ale::inbound_connection`] | INBOUND_TRANSPORT → AUTH_RECV_ACCEPT |
//! | `accept()` completes | [`Ale::accept`] | none: the accepted socket gets its own endpoint |
//! | UDP `sendto` | [`Ale::udp_send`] | (RESOURCE_ASSIGNMENT) → AUTH_CONNECT → FLOW_ESTABLISHED, once per peer |
//! | UDP datagram received | [`Ale::udp_recv`] | INBOUND_TRANSPORT → AUTH_RECV_ACCEPT → FLOW_ESTABLISHED, once per peer |
//! | any later packet of a flow (TCP or UDP) | [`Ale::packet`] | re-authorization after a policy change, transport layers |
//! | TCP connection closed | [`Ale::close_flow`] | ENDPOINT_CLOSURE (once) |
//! | `closesocket()` | [`Ale::close_endpoint`] | ENDPOINT_CLOSURE, RESOURCE_RELEASE |
//!
//! A call about an id ALE does not know (never issued, closed, torn down) is an [`AleError`];
//! a policy decision is always an [`AleVerdict`]. A permit carries what the deciding filter
//! asks for beyond "permit" — an IPsec callout, `rawContext` flags, a provider context — as a
//! [`ProtectionRequest`]; [`Ale::ikeext_policy`] and [`Ale::ipsec_policy`] find the main-mode
//! and quick-mode policies for a peer.
//!
//! Flows are keyed by their 5-tuple ([`Ale::flow_for`]) and held in ordered maps, so every
//! listing is deterministic.
//!
//! ```
//! use std::time::Duration;
//! use wsock_ale::*;
//! use wsock_wfp::*;
//!
//! let mut ale = Ale::new(Engine::new());
//! let s = ale.engine_mut().open_session(false);
//! let spec = FilterSpec {
//!     name: "no telnet".into(),
//!     layer: "FWPM_LAYER_ALE_AUTH_CONNECT_V4".into(),
//!     action: "block".into(),
//!     conditions: vec![ConditionSpec::new("ip_remote_port", "equal", ValueSpec::Int(23))],
//!     ..Default::default()
//! };
//! let fid = ale.engine_mut().add_spec(s, &spec).unwrap();
//! let ep = ale.create_endpoint(EndpointContext::new("C:\\bin\\telnet.exe", "alice", Protocol::Tcp, false));
//! let now = Duration::from_secs(1);
//! let v = ale.connect(ep, "10.0.0.1:50000".parse().unwrap(), "10.0.0.2:23".parse().unwrap(), now);
//! match v {
//!     Ok(AleVerdict::Block(b)) => {
//!         assert_eq!(b.filter_id, Some(fid));
//!         assert_eq!(b.effect, BlockEffect::ConnectFailed { wsa_error: WSAEACCES });
//!     }
//!     _ => panic!("expected a block"),
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod protection;
mod reauth;
mod security;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wsock_wfp::{
    condition_flags as cf, reauth_reason, CalloutObject, ClassifyResult, Decision, Engine, Family,
    Field, FilterRef, FwpValue, Guid, IncomingValues, Layer, LayerKind, NetEventHeader, SessionId,
    Token, WfpError,
};

pub use error::AleError;
pub use protection::{
    callouts, contexts, provider_contexts, IpsecCallout, IpsecMarkCallout, PolicyMatch,
    ProtectionRequest,
};
pub use security::{FlowSecurity, SecuritySettings};

use reauth::ChangeLog;

/// `WSAEACCES` (10013): what Windows returns when WFP blocks a socket call.
pub const WSAEACCES: i32 = 10013;

/// Most peer target names one endpoint keeps ([`Ale::set_peer_target_name`]).
pub const MAX_PEER_TARGET_NAMES: usize = 1024;

/// Transport protocol of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (6): one flow per connection.
    Tcp,
    /// UDP (17): one flow per remote peer, idle-expiring.
    Udp,
    /// Any other protocol number (treated like UDP, as Windows does).
    Other(u8),
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Other(n) => n,
        }
    }
}

/// `FWP_DIRECTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `FWP_DIRECTION_OUTBOUND` (0).
    Outbound,
    /// `FWP_DIRECTION_INBOUND` (1).
    Inbound,
}

impl Direction {
    fn value(self) -> u32 {
        match self {
            Direction::Outbound => 0,
            Direction::Inbound => 1,
        }
    }
}

/// Who owns a socket and what kind it is: the identity part of ALE's incoming values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointContext {
    /// Application path (becomes `ALE_APP_ID`, lower-cased UTF-16).
    pub app_id: String,
    /// User token of the socket's owner (`ALE_USER_ID`).
    pub user: Token,
    /// Protocol.
    pub protocol: Protocol,
    /// AF_INET6 socket (classified at the V6 layers; IPv4 peers appear v4-mapped).
    pub v6: bool,
    /// Local interface LUID (`IP_LOCAL_INTERFACE`, and `IP_ARRIVAL_INTERFACE` on receive).
    pub interface: u64,
    /// Extra `FWP_CONDITION_FLAG_*` bits to add to every classification of this endpoint.
    pub extra_flags: u32,
}

impl EndpointContext {
    /// A context for `app` run by `user` (a SID or name with no groups).
    pub fn new(app: &str, user: &str, protocol: Protocol, v6: bool) -> Self {
        EndpointContext {
            app_id: app.to_string(),
            user: Token::user(user),
            protocol,
            v6,
            interface: 1,
            extra_flags: 0,
        }
    }
}

/// Extra facts about an inbound packet (from the stack and, later, IPsec).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundInfo {
    /// Arrival interface LUID (0 = the endpoint's interface).
    pub interface: u64,
    /// Remote user token authenticated by IPsec (`ALE_REMOTE_USER_ID`).
    pub remote_user: Option<Token>,
    /// Remote machine token authenticated by IPsec (`ALE_REMOTE_MACHINE_ID`).
    pub remote_machine: Option<Token>,
    /// Whether the packet arrived IPsec-protected (`IS_IPSEC_SECURED`).
    pub ipsec_secured: bool,
}

/// Facts about one packet of an existing flow ([`Ale::packet_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketInfo {
    /// The packet arrived (inbound) or leaves (outbound) IPsec-protected: sets
    /// `FWP_CONDITION_FLAG_IS_IPSEC_SECURED` at the transport layers.
    pub ipsec_secured: bool,
}

/// A socket endpoint known to ALE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub u64);

/// An ALE flow (TCP connection, or UDP socket × remote peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

/// What the stack must do about a block: data, not I/O.
///
/// Choices (see docs/windows-differences.md §3.7): a blocked connect fails at once with `WSAEACCES`
/// and no SYN is sent; a blocked bind or listen fails with `WSAEACCES`; a blocked inbound TCP
/// connection is dropped **silently** (no RST, no ICMP), so the remote client keeps
/// retransmitting its SYN and eventually fails with `WSAETIMEDOUT` (10060) — what a Windows
/// client sees against a Windows server whose firewall blocks it — and the server application
/// never sees an `accept`; a blocked UDP send fails with `WSAEACCES`; a blocked UDP receive
/// drops the datagram (no ICMP port unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockEffect {
    /// `bind()` fails with this error (`WSAEACCES`).
    BindFailed {
        /// WSA error code.
        wsa_error: i32,
    },
    /// `listen()` fails with this error (`WSAEACCES`).
    ListenFailed {
        /// WSA error code.
        wsa_error: i32,
    },
    /// `connect()` fails immediately with this error (`WSAEACCES`); no SYN is sent.
    ConnectFailed {
        /// WSA error code.
        wsa_error: i32,
    },
    /// The inbound SYN is discarded silently: no RST, no ICMP, no accept.
    SilentDrop,
    /// `sendto()` fails with this error (`WSAEACCES`); nothing is sent.
    SendFailed {
        /// WSA error code.
        wsa_error: i32,
    },
    /// The received datagram is discarded silently.
    DatagramDropped,
    /// The flow failed (re-)authorization: tear the connection down (TCP: abort without
    /// sending anything; pending and later data are dropped; the socket reports
    /// `WSAECONNABORTED` 10053); UDP: the packet is dropped and the flow forgotten.
    FlowTornDown,
    /// One packet is discarded (transport-layer block); the flow is kept.
    PacketDropped,
}

/// Details of a block. Cheap to clone: the filter name is shared (`Arc<str>`), everything
/// else is `Copy`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AleBlock {
    /// Layer that blocked.
    pub layer: Layer,
    /// Deciding filter id (`None` for a block no filter made, e.g. an unregistered callout
    /// with no filter left to name).
    pub filter_id: Option<u64>,
    /// Deciding filter key.
    pub filter_key: Option<Guid>,
    /// Deciding filter name (shared with ALE's name cache; no allocation per block).
    pub filter_name: Option<Arc<str>>,
    /// Deciding filter's sublayer.
    pub sublayer: Option<Guid>,
    /// Whether this was a re-authorization.
    pub reauth: bool,
    /// The flow concerned (torn down, for `FlowTornDown`).
    pub flow: Option<FlowId>,
    /// What the socket sees.
    pub effect: BlockEffect,
}

/// ALE's answer to a socket event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AleVerdict {
    /// Go ahead.
    #[non_exhaustive]
    Permit {
        /// The flow created or used (none for bind/listen).
        flow: Option<FlowId>,
        /// What the deciding filter asks for beyond "permit" (IPsec callout, `rawContext`,
        /// provider context). For a packet: the transport layer's request if a transport
        /// filter decided with one, else the flow's own (from its AUTH_CONNECT /
        /// AUTH_RECV_ACCEPT authorization).
        protection: Option<ProtectionRequest>,
    },
    /// Blocked.
    Block(AleBlock),
}

impl AleVerdict {
    /// Whether permitted.
    pub fn is_permit(&self) -> bool {
        matches!(self, AleVerdict::Permit { .. })
    }
    /// The flow of a permit (or the flow concerned by a block).
    pub fn flow(&self) -> Option<FlowId> {
        match self {
            AleVerdict::Permit { flow, .. } => *flow,
            AleVerdict::Block(b) => b.flow,
        }
    }
    /// The block details, if blocked.
    pub fn block(&self) -> Option<&AleBlock> {
        match self {
            AleVerdict::Block(b) => Some(b),
            _ => None,
        }
    }
    /// The protection request of a permit.
    pub fn protection(&self) -> Option<&ProtectionRequest> {
        match self {
            AleVerdict::Permit { protection, .. } => protection.as_ref(),
            _ => None,
        }
    }
}

/// One classification ALE performed (kept in a bounded trace, for tests and teaching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifyRecord {
    /// When.
    pub time: Duration,
    /// Layer.
    pub layer: Layer,
    /// `FWPM_CONDITION_FLAGS` value used.
    pub flags: u32,
    /// `FWPM_CONDITION_REAUTHORIZE_REASON` value used (0 if not a reauth).
    pub reauth_reason: u32,
    /// Decision.
    pub decision: Decision,
    /// Deciding filter.
    pub filter_id: Option<u64>,
    /// Endpoint.
    pub endpoint: Option<EndpointId>,
    /// Flow.
    pub flow: Option<FlowId>,
}

/// Which flows a policy change re-authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReauthScope {
    /// Every flow authorized at the changed layer (what Windows does).
    Layer,
    /// Only flows whose 5-tuple one of the added or deleted filters could match (protocol,
    /// local/remote address and port conditions; other conditions are assumed to match). A
    /// filter that cannot match a flow cannot change its decision, so the outcome is the
    /// same; only the classifications are saved.
    #[default]
    Matching,
}

/// ALE configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AleConfig {
    /// UDP/ICMP flow idle timeout (Windows: 60 s).
    pub udp_idle_timeout: Duration,
    /// Size of the classification trace ring.
    pub trace_capacity: usize,
    /// Which flows a policy change re-authorizes.
    pub reauth_scope: ReauthScope,
}

impl Default for AleConfig {
    fn default() -> Self {
        AleConfig {
            udp_idle_timeout: Duration::from_secs(60),
            trace_capacity: 4096,
            reauth_scope: ReauthScope::default(),
        }
    }
}

/// A public snapshot of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowInfo {
    /// Id.
    pub id: FlowId,
    /// Owning endpoint (the accepted socket's, after [`Ale::accept`]).
    pub endpoint: EndpointId,
    /// Protocol.
    pub protocol: Protocol,
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    /// Direction of the first packet.
    pub direction: Direction,
    /// Layer the flow was authorized at (AUTH_CONNECT or AUTH_RECV_ACCEPT).
    pub layer: Layer,
    /// Filter that decided (None = default permit).
    pub decided_by: Option<FilterRef>,
    /// What the authorizing filter asked for beyond "permit".
    pub protection: Option<ProtectionRequest>,
    /// IPsec results (SA ids, negotiation error), set by the stack.
    pub security: FlowSecurity,
    /// Whether FLOW_ESTABLISHED was indicated.
    pub established: bool,
    /// Last activity.
    pub last_activity: Duration,
}

#[derive(Debug, Clone)]
struct Flow {
    info: FlowInfo,
    gen: u64,
    closure_indicated: bool,
    remote_user: Option<Token>,
    remote_machine: Option<Token>,
    interface: u64,
}

#[derive(Debug, Clone)]
struct Endpoint {
    ctx: EndpointContext,
    local: Option<SocketAddr>,
    /// RESOURCE_ASSIGNMENT permitted (explicit or implicit bind): RESOURCE_RELEASE at close.
    assigned: bool,
    listening: bool,
    udp_flows: BTreeMap<SocketAddr, FlowId>,
    tcp_flows: Vec<FlowId>,
    security: Option<SecuritySettings>,
    peer_names: BTreeMap<IpAddr, String>,
    owner_session: Option<SessionId>,
}

impl Endpoint {
    fn new(ctx: EndpointContext) -> Self {
        Endpoint {
            ctx,
            local: None,
            assigned: false,
            listening: false,
            udp_flows: BTreeMap::new(),
            tcp_flows: Vec::new(),
            security: None,
            peer_names: BTreeMap::new(),
            owner_session: None,
        }
    }
}

/// (protocol number, local, remote).
type TupleKey = (u8, SocketAddr, SocketAddr);

/// Names of deciding filters kept for [`AleBlock::filter_name`].
const NAME_CACHE_CAP: usize = 1024;

/// The ALE state machine: an [`Engine`] plus endpoints and flows.
pub struct Ale {
    engine: Engine,
    config: AleConfig,
    endpoints: BTreeMap<EndpointId, Endpoint>,
    flows: BTreeMap<FlowId, Flow>,
    by_tuple: BTreeMap<TupleKey, FlowId>,
    next_ep: u64,
    next_flow: u64,
    trace: VecDeque<ClassifyRecord>,
    counts: BTreeMap<Layer, u64>,
    names: BTreeMap<u64, Arc<str>>,
    changes: ChangeLog,
    reauth_skipped: u64,
}

impl std::fmt::Debug for Ale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ale")
            .field("endpoints", &self.endpoints.len())
            .field("flows", &self.flows.len())
            .field("engine", &self.engine)
            .finish()
    }
}

fn map_ip(ip: IpAddr, fam: Family) -> IpAddr {
    match (ip, fam) {
        (IpAddr::V4(a), Family::V6) => IpAddr::V6(a.to_ipv6_mapped()),
        (IpAddr::V6(a), Family::V4) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
        _ => ip,
    }
}

fn addr_type(ip: IpAddr) -> u8 {
    // NL_ADDRESS_TYPE: unspecified 0, unicast 1, anycast 2, multicast 3, broadcast 4
    match ip {
        _ if ip.is_unspecified() => 0,
        _ if ip.is_multicast() => 3,
        IpAddr::V4(a) if a.is_broadcast() => 4,
        _ => 1,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn unspecified_like(a: SocketAddr) -> SocketAddr {
    let ip = match a {
        SocketAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, a.port())
}

struct Event<'a> {
    layer: Layer,
    ctx: &'a EndpointContext,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    flags: u32,
    reauth_reason: u32,
    arrival: Option<u64>,
    direction: Option<Direction>,
    remote_user: Option<&'a Token>,
    remote_machine: Option<&'a Token>,
}

/// Outcome of a transport-layer classification.
enum Transport {
    /// Passed, with the deciding filter's request.
    Pass(Option<ProtectionRequest>),
    /// Blocked.
    Blocked(AleVerdict),
}

/// A classification and what recording it needs, computed with shared borrows only.
struct Classified {
    r: ClassifyResult,
    layer: Layer,
    flags: u32,
    reauth_reason: u32,
    direction: u32,
    header: Option<NetEventHeader>,
}

impl Event<'_> {
    fn values(&self) -> IncomingValues {
        let fam = self.layer.family();
        let mut v = IncomingValues::new();
        let mut flags = self.flags | self.ctx.extra_flags;
        if let Some(l) = self.local {
            if !l.ip().is_unspecified() {
                v.set(Field::IP_LOCAL_ADDRESS, FwpValue::addr(map_ip(l.ip(), fam)));
            }
            v.set(
                Field::IP_LOCAL_ADDRESS_TYPE,
                FwpValue::Uint8(addr_type(l.ip())),
            );
            v.set(Field::IP_LOCAL_PORT, FwpValue::Uint16(l.port()));
            if l.ip().is_loopback() {
                flags |= cf::IS_LOOPBACK;
            }
        }
        if let Some(r) = self.remote {
            v.set(
                Field::IP_REMOTE_ADDRESS,
                FwpValue::addr(map_ip(r.ip(), fam)),
            );
            v.set(Field::IP_REMOTE_PORT, FwpValue::Uint16(r.port()));
            v.set(
                Field::IP_DESTINATION_ADDRESS_TYPE,
                FwpValue::Uint8(addr_type(r.ip())),
            );
            if r.ip().is_loopback() {
                flags |= cf::IS_LOOPBACK;
            }
        }
        v.set(
            Field::IP_PROTOCOL,
            FwpValue::Uint8(self.ctx.protocol.number()),
        );
        v.set(Field::ALE_APP_ID, FwpValue::app_id(&self.ctx.app_id));
        v.set(Field::ALE_USER_ID, FwpValue::token(self.ctx.user.clone()));
        v.set(
            Field::IP_LOCAL_INTERFACE,
            FwpValue::Uint64(self.ctx.interface),
        );
        if let Some(a) = self.arrival {
            v.set(Field::IP_ARRIVAL_INTERFACE, FwpValue::Uint64(a));
        }
        if let Some(d) = self.direction {
            v.set(Field::DIRECTION, FwpValue::Uint32(d.value()));
        }
        if let Some(t) = self.remote_user {
            v.set(Field::ALE_REMOTE_USER_ID, FwpValue::token(t.clone()));
        }
        if let Some(t) = self.remote_machine {
            v.set(Field::ALE_REMOTE_MACHINE_ID, FwpValue::token(t.clone()));
        }
        if self.reauth_reason != 0 {
            v.set(
                Field::REAUTHORIZE_REASON,
                FwpValue::Uint32(self.reauth_reason),
            );
        }
        v.set(Field::FLAGS, FwpValue::Uint32(flags));
        v
    }
}

impl Ale {
    /// ALE over `engine` with the default configuration.
    pub fn new(engine: Engine) -> Self {
        Self::with_config(engine, AleConfig::default())
    }

    /// ALE over `engine` with a configuration.
    ///
    /// ALE opens one (static) session of its own on the engine and subscribes there to
    /// filter changes at the re-authorization layers, to know which flows a change can
    /// affect ([`ReauthScope::Matching`]).
    pub fn with_config(mut engine: Engine, config: AleConfig) -> Self {
        let changes = if config.reauth_scope == ReauthScope::Matching {
            let s = engine.open_session(false);
            ChangeLog::attach(&mut engine, s)
        } else {
            ChangeLog::default()
        };
        Ale {
            engine,
            config,
            endpoints: BTreeMap::new(),
            flows: BTreeMap::new(),
            by_tuple: BTreeMap::new(),
            next_ep: 1,
            next_flow: 1,
            trace: VecDeque::new(),
            counts: BTreeMap::new(),
            names: BTreeMap::new(),
            changes,
            reauth_skipped: 0,
        }
    }

    /// The engine (management reads, net events).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, mutably (add/delete filters; established flows notice the policy change
    /// by themselves on their next packet, or at once through [`Ale::reauthorize`]).
    pub fn engine_mut(&mut self) -> &mut Engine {
        self.changes.sync(&mut self.engine);
        &mut self.engine
    }

    /// The configuration.
    pub fn config(&self) -> AleConfig {
        self.config
    }

    /// Adds (if missing) the built-in IPsec callouts (`FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT`,
    /// `_OUTBOUND_TRANSPORT`, `_INBOUND_INITIATE_SECURE`, `_ALE_CONNECT`, V4 and V6) to the
    /// engine through `session`, and registers [`IpsecMarkCallout`] as their code, so that
    /// filters invoking them permit and hand their request to the caller as a
    /// [`ProtectionRequest`].
    ///
    /// # Errors
    ///
    /// The engine's error if a callout cannot be added (unknown session, transaction
    /// conflicts).
    pub fn install_ipsec_callouts(&mut self, session: SessionId) -> Result<(), WfpError> {
        for c in IpsecCallout::ALL {
            for v6 in [false, true] {
                let key = c.key(v6);
                if self.engine.get_callout_by_key(session, key).is_err() {
                    self.engine
                        .add_callout(session, &CalloutObject::new(c.name(v6), key, c.layer(v6)))?;
                }
                self.engine
                    .register_callout(key, Arc::new(IpsecMarkCallout));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ ids

    fn endpoint_error(&self, ep: EndpointId) -> AleError {
        if ep.0 != 0 && ep.0 < self.next_ep {
            AleError::EndpointClosed(ep)
        } else {
            AleError::UnknownEndpoint(ep)
        }
    }

    fn flow_error(&self, flow: FlowId) -> AleError {
        if flow.0 != 0 && flow.0 < self.next_flow {
            AleError::FlowClosed(flow)
        } else {
            AleError::UnknownFlow(flow)
        }
    }

    fn ep(&self, ep: EndpointId) -> Result<&Endpoint, AleError> {
        self.endpoints
            .get(&ep)
            .ok_or_else(|| self.endpoint_error(ep))
    }

    fn ep_mut(&mut self, ep: EndpointId) -> Result<&mut Endpoint, AleError> {
        let err = self.endpoint_error(ep);
        self.endpoints.get_mut(&ep).ok_or(err)
    }

    fn fl(&self, flow: FlowId) -> Result<&Flow, AleError> {
        self.flows.get(&flow).ok_or_else(|| self.flow_error(flow))
    }

    fn fl_mut(&mut self, flow: FlowId) -> Result<&mut Flow, AleError> {
        let err = self.flow_error(flow);
        self.flows.get_mut(&flow).ok_or(err)
    }

    /// Registers a socket endpoint.
    pub fn create_endpoint(&mut self, ctx: EndpointContext) -> EndpointId {
        let id = EndpointId(self.next_ep);
        self.next_ep += 1;
        self.endpoints.insert(id, Endpoint::new(ctx));
        id
    }

    /// The local address recorded for an endpoint (after bind); `None` if unbound or unknown.
    pub fn endpoint_local(&self, ep: EndpointId) -> Option<SocketAddr> {
        self.endpoints.get(&ep).and_then(|e| e.local)
    }

    /// The identity context of an endpoint.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn endpoint_context(&self, ep: EndpointId) -> Result<&EndpointContext, AleError> {
        Ok(&self.ep(ep)?.ctx)
    }

    /// The flows an endpoint owns, in id order.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn endpoint_flows(&self, ep: EndpointId) -> Result<Vec<FlowId>, AleError> {
        let e = self.ep(ep)?;
        let mut v: Vec<FlowId> = e
            .tcp_flows
            .iter()
            .chain(e.udp_flows.values())
            .copied()
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    // ------------------------------------------------------------------ security state

    /// Stores the socket's security settings (`WSASetSocketSecurity`, already validated by the
    /// API layer); `None` clears them. Returns the previous settings.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn set_security_settings(
        &mut self,
        ep: EndpointId,
        settings: Option<SecuritySettings>,
    ) -> Result<Option<SecuritySettings>, AleError> {
        Ok(std::mem::replace(&mut self.ep_mut(ep)?.security, settings))
    }

    /// The socket's security settings, if set.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn security_settings(&self, ep: EndpointId) -> Result<Option<&SecuritySettings>, AleError> {
        Ok(self.ep(ep)?.security.as_ref())
    }

    /// `WSASetSocketPeerTargetName`: stores `name` for the peer address `remote` (one name per
    /// address; IPv4-mapped IPv6 addresses are stored as IPv4). Returns the name it replaces.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`];
    /// [`AleError::LimitExceeded`] past [`MAX_PEER_TARGET_NAMES`] addresses.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_ale::*;
    /// let mut ale = Ale::new(wsock_wfp::Engine::new());
    /// let ep = ale.create_endpoint(EndpointContext::new("c:\\a.exe", "u", Protocol::Udp, false));
    /// ale.set_peer_target_name(ep, "10.0.0.2".parse().unwrap(), "host-b.example").unwrap();
    /// assert_eq!(
    ///     ale.peer_target_name(ep, "::ffff:10.0.0.2".parse().unwrap()).unwrap(),
    ///     Some("host-b.example")
    /// );
    /// ```
    pub fn set_peer_target_name(
        &mut self,
        ep: EndpointId,
        remote: IpAddr,
        name: impl Into<String>,
    ) -> Result<Option<String>, AleError> {
        let e = self.ep_mut(ep)?;
        let key = canonical(remote);
        if !e.peer_names.contains_key(&key) && e.peer_names.len() >= MAX_PEER_TARGET_NAMES {
            return Err(AleError::LimitExceeded(ep));
        }
        Ok(e.peer_names.insert(key, name.into()))
    }

    /// `WSADeleteSocketPeerTargetName`: removes the name for `remote`; returns it.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn delete_peer_target_name(
        &mut self,
        ep: EndpointId,
        remote: IpAddr,
    ) -> Result<Option<String>, AleError> {
        Ok(self.ep_mut(ep)?.peer_names.remove(&canonical(remote)))
    }

    /// The peer target name stored for `remote`.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn peer_target_name(
        &self,
        ep: EndpointId,
        remote: IpAddr,
    ) -> Result<Option<&str>, AleError> {
        Ok(self
            .ep(ep)?
            .peer_names
            .get(&canonical(remote))
            .map(String::as_str))
    }

    /// All peer target names of an endpoint, ordered by address.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn peer_target_names(
        &self,
        ep: EndpointId,
    ) -> Result<impl Iterator<Item = (IpAddr, &str)>, AleError> {
        Ok(self
            .ep(ep)?
            .peer_names
            .iter()
            .map(|(a, n)| (*a, n.as_str())))
    }

    /// Sets the dynamic engine session that owns the socket's instantiated filters; ALE closes
    /// it (deleting those filters) in [`Ale::close_endpoint`]. Returns the previous one.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn set_owner_session(
        &mut self,
        ep: EndpointId,
        session: Option<SessionId>,
    ) -> Result<Option<SessionId>, AleError> {
        Ok(std::mem::replace(
            &mut self.ep_mut(ep)?.owner_session,
            session,
        ))
    }

    /// The dynamic session owning the socket's filters, if any.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn owner_session(&self, ep: EndpointId) -> Result<Option<SessionId>, AleError> {
        Ok(self.ep(ep)?.owner_session)
    }

    /// Records a flow's IPsec results (SA ids, negotiation error).
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownFlow`] / [`AleError::FlowClosed`].
    pub fn set_flow_security(&mut self, flow: FlowId, sec: FlowSecurity) -> Result<(), AleError> {
        self.fl_mut(flow)?.info.security = sec;
        Ok(())
    }

    /// A flow's IPsec results.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownFlow`] / [`AleError::FlowClosed`].
    pub fn flow_security(&self, flow: FlowId) -> Result<FlowSecurity, AleError> {
        Ok(self.fl(flow)?.info.security)
    }

    // ------------------------------------------------------------------ flows

    /// A snapshot of a flow.
    pub fn flow(&self, id: FlowId) -> Option<FlowInfo> {
        self.flows.get(&id).map(|f| f.info.clone())
    }

    /// All flows, by id.
    pub fn flows(&self) -> impl Iterator<Item = &FlowInfo> {
        self.flows.values().map(|f| &f.info)
    }

    /// The flow of a 5-tuple. `local` as the stack sees the packet (a concrete address); a
    /// flow recorded with a wildcard local address (a UDP socket bound to `0.0.0.0:port`)
    /// is found too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsock_ale::*;
    /// let mut ale = Ale::new(wsock_wfp::Engine::new());
    /// let ep = ale.create_endpoint(EndpointContext::new("c:\\a.exe", "u", Protocol::Tcp, false));
    /// let (l, r) = ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
    /// let f = ale.connect(ep, l, r, Duration::ZERO).unwrap().flow();
    /// assert_eq!(ale.flow_for(Protocol::Tcp, l, r), f);
    /// ```
    pub fn flow_for(
        &self,
        protocol: Protocol,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<FlowId> {
        let p = protocol.number();
        self.by_tuple
            .get(&(p, local, remote))
            .or_else(|| self.by_tuple.get(&(p, unspecified_like(local), remote)))
            .copied()
    }

    /// The classification trace, oldest first (bounded by `trace_capacity`).
    pub fn trace(&self) -> impl Iterator<Item = &ClassifyRecord> {
        self.trace.iter()
    }

    /// How many classifications ALE made at `layer` since creation.
    pub fn classify_count(&self, layer: Layer) -> u64 {
        self.counts.get(&layer).copied().unwrap_or(0)
    }

    /// How many re-authorizations were skipped because no changed filter could match the
    /// flow ([`ReauthScope::Matching`]).
    pub fn reauth_skipped(&self) -> u64 {
        self.reauth_skipped
    }

    fn layer(ctx: &EndpointContext, kind: LayerKind) -> Layer {
        // every kind used here exists for both families
        Layer::of(kind, ctx.v6).unwrap_or(Layer::ALE_AUTH_CONNECT_V4)
    }

    // ------------------------------------------------------------------ classification

    fn classify_event(&self, ev: &Event<'_>) -> Classified {
        let values = ev.values();
        let r = self.engine.classify(ev.layer, &values);
        let flags = match values.get(Field::FLAGS) {
            FwpValue::Uint32(f) => *f,
            _ => 0,
        };
        let direction = ev
            .direction
            .map(Direction::value)
            .unwrap_or(match ev.layer.kind() {
                LayerKind::AuthRecvAccept | LayerKind::InboundTransport => 1,
                _ => 0,
            });
        let o = self.engine.options();
        let wants_event =
            o.collect_net_events && (r.is_block() || r.veto.is_some() || o.collect_allow_events);
        let header = wants_event.then(|| NetEventHeader {
            protocol: ev.ctx.protocol.number(),
            local: ev.local,
            remote: ev.remote,
            app_id: Some(ev.ctx.app_id.clone()),
            user_id: Some(ev.ctx.user.user.clone()),
        });
        Classified {
            r,
            layer: ev.layer,
            flags,
            reauth_reason: ev.reauth_reason,
            direction,
            header,
        }
    }

    fn record(
        &mut self,
        c: Classified,
        now: Duration,
        ep: Option<EndpointId>,
        flow: Option<FlowId>,
    ) -> ClassifyResult {
        let Classified {
            r,
            layer,
            flags,
            reauth_reason,
            direction,
            header,
        } = c;
        tracing::debug!(layer = %layer, flags, decision = ?r.decision, filter = ?r.decided_by.as_ref().map(|f| f.id), "ale classify");
        self.note(layer, flags, reauth_reason, &r, now, ep, flow);
        if let Some(h) = header {
            self.engine
                .record_classify(now, &r, h, reauth_reason != 0, direction);
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn note(
        &mut self,
        layer: Layer,
        flags: u32,
        reauth_reason: u32,
        r: &ClassifyResult,
        now: Duration,
        ep: Option<EndpointId>,
        flow: Option<FlowId>,
    ) {
        *self.counts.entry(layer).or_default() += 1;
        if self.trace.len() >= self.config.trace_capacity.max(1) {
            self.trace.pop_front();
        }
        self.trace.push_back(ClassifyRecord {
            time: now,
            layer,
            flags,
            reauth_reason,
            decision: r.decision,
            filter_id: r.decided_by.as_ref().map(|f| f.id),
            endpoint: ep,
            flow,
        });
    }

    fn filter_name(&mut self, f: &FilterRef) -> Option<Arc<str>> {
        if let Some(n) = self.names.get(&f.id) {
            return Some(n.clone());
        }
        let name: Arc<str> = Arc::from(self.engine.resolve_filter(f)?.name.as_str());
        if self.names.len() >= NAME_CACHE_CAP {
            self.names.clear();
        }
        self.names.insert(f.id, name.clone());
        Some(name)
    }

    fn block(
        &mut self,
        r: &ClassifyResult,
        effect: BlockEffect,
        flow: Option<FlowId>,
        reauth: bool,
    ) -> AleVerdict {
        let f = r.decided_by;
        let filter_key = f
            .as_ref()
            .and_then(|f| self.engine.resolve_filter(f))
            .map(|x| x.key);
        let filter_name = f.as_ref().and_then(|f| self.filter_name(f));
        AleVerdict::Block(AleBlock {
            layer: r.layer,
            filter_id: f.map(|f| f.id),
            filter_key,
            filter_name,
            sublayer: f.map(|f| f.sublayer),
            reauth,
            flow,
            effect,
        })
    }

    /// The request carried by the filters that permitted `r`, if any: the deciding filter's,
    /// else the first permitting sublayer's that carries one. (A plain allow in another
    /// sublayer, e.g. a firewall rule, must not erase an IPsec requirement: every sublayer
    /// permitted, and each one's terms apply.)
    fn protection_of(&self, r: &ClassifyResult) -> Option<ProtectionRequest> {
        if !r.is_permit() {
            return None;
        }
        let request = |f: FilterRef| -> Option<ProtectionRequest> {
            let filter = self.engine.resolve_filter(&f)?;
            let callout = f.action.callout();
            if callout.is_none() && filter.raw_context == 0 && filter.provider_context_key.is_none()
            {
                return None;
            }
            Some(ProtectionRequest {
                layer: r.layer,
                filter_id: f.id,
                filter_key: filter.key,
                sublayer: f.sublayer,
                callout,
                ipsec_callout: callout.and_then(IpsecCallout::from_key),
                raw_context: filter.raw_context,
                provider_context: filter.provider_context_key,
            })
        };
        if let Some(p) = r.decided_by.and_then(request) {
            return Some(p);
        }
        r.sublayer_results
            .into_iter()
            .filter(|s| s.decision == Decision::Permit && s.filter_id != 0)
            .filter(|s| r.decided_by.is_none_or(|d| d.id != s.filter_id))
            .find_map(|s| {
                let filter = self.engine.filter_in_layer(r.layer, s.filter_id)?;
                request(FilterRef {
                    id: s.filter_id,
                    layer: r.layer,
                    sublayer: s.sublayer,
                    action: filter.action,
                })
            })
    }

    // ------------------------------------------------------------------ bind / listen

    /// Explicit `bind()`: classifies at ALE_RESOURCE_ASSIGNMENT. `requested` is what the
    /// application asked for; `assigned_port` is the port the stack chose (equal to the
    /// requested one unless that was 0). Port 0 sets `IS_WILDCARD_BIND`; an unspecified
    /// address leaves `IP_LOCAL_ADDRESS` empty.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn bind(
        &mut self,
        ep: EndpointId,
        requested: SocketAddr,
        assigned_port: u16,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        self.bind_inner(ep, requested, assigned_port, false, now)
    }

    fn bind_inner(
        &mut self,
        ep: EndpointId,
        requested: SocketAddr,
        assigned_port: u16,
        implicit: bool,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        let mut flags = 0;
        if requested.port() == 0 {
            flags |= cf::IS_WILDCARD_BIND;
        }
        if implicit {
            flags |= cf::IS_IMPLICIT_BIND;
        }
        let local = SocketAddr::new(requested.ip(), assigned_port);
        let e = self.ep(ep)?;
        let ev = Event {
            layer: Self::layer(&e.ctx, LayerKind::ResourceAssignment),
            ctx: &e.ctx,
            local: Some(local),
            remote: None,
            flags,
            reauth_reason: 0,
            arrival: None,
            direction: None,
            remote_user: None,
            remote_machine: None,
        };
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(ep), None);
        if r.is_block() {
            let effect = BlockEffect::BindFailed {
                wsa_error: WSAEACCES,
            };
            return Ok(self.block(&r, effect, None, false));
        }
        let e = self.ep_mut(ep)?;
        e.local = Some(local);
        e.assigned = true;
        Ok(AleVerdict::Permit {
            flow: None,
            protection: None,
        })
    }

    /// Implicit bind if the endpoint is unbound: `Some(block)` if it was refused.
    fn ensure_bound(
        &mut self,
        ep: EndpointId,
        local: SocketAddr,
        now: Duration,
    ) -> Result<Option<AleVerdict>, AleError> {
        if self.ep(ep)?.local.is_some() {
            return Ok(None);
        }
        let unspecified = unspecified_like(SocketAddr::new(local.ip(), 0));
        match self.bind_inner(ep, unspecified, local.port(), true, now)? {
            AleVerdict::Permit { .. } => {
                self.ep_mut(ep)?.local = Some(local);
                Ok(None)
            }
            b => Ok(Some(b)),
        }
    }

    /// TCP `listen()`: classifies at ALE_AUTH_LISTEN.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn listen(&mut self, ep: EndpointId, now: Duration) -> Result<AleVerdict, AleError> {
        let e = self.ep(ep)?;
        let ev = Event {
            layer: Self::layer(&e.ctx, LayerKind::AuthListen),
            ctx: &e.ctx,
            local: e.local,
            remote: None,
            flags: 0,
            reauth_reason: 0,
            arrival: None,
            direction: None,
            remote_user: None,
            remote_machine: None,
        };
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(ep), None);
        if r.is_block() {
            let effect = BlockEffect::ListenFailed {
                wsa_error: WSAEACCES,
            };
            return Ok(self.block(&r, effect, None, false));
        }
        self.ep_mut(ep)?.listening = true;
        Ok(AleVerdict::Permit {
            flow: None,
            protection: None,
        })
    }

    // ------------------------------------------------------------------ flows

    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        ep: EndpointId,
        protocol: Protocol,
        default_interface: u64,
        local: SocketAddr,
        remote: SocketAddr,
        dir: Direction,
        r: &ClassifyResult,
        now: Duration,
        info: Option<&InboundInfo>,
    ) -> FlowId {
        // log the changes this flow was authorized under while their filters still exist
        self.changes.sync(&mut self.engine);
        let id = FlowId(self.next_flow);
        self.next_flow += 1;
        let protection = self.protection_of(r);
        let flow = Flow {
            info: FlowInfo {
                id,
                endpoint: ep,
                protocol,
                local,
                remote,
                direction: dir,
                layer: r.layer,
                decided_by: r.decided_by,
                protection,
                security: FlowSecurity::default(),
                established: false,
                last_activity: now,
            },
            gen: self.engine.layer_generation(r.layer),
            closure_indicated: false,
            remote_user: info.and_then(|i| i.remote_user.clone()),
            remote_machine: info.and_then(|i| i.remote_machine.clone()),
            interface: info
                .map(|i| i.interface)
                .filter(|i| *i != 0)
                .unwrap_or(default_interface),
        };
        self.flows.insert(id, flow);
        self.by_tuple.insert((protocol.number(), local, remote), id);
        if let Some(e) = self.endpoints.get_mut(&ep) {
            if protocol == Protocol::Tcp {
                e.tcp_flows.push(id);
            } else {
                e.udp_flows.insert(remote, id);
            }
        }
        id
    }

    fn remove_flow(&mut self, flow: FlowId) {
        if let Some(f) = self.flows.remove(&flow) {
            let key = (f.info.protocol.number(), f.info.local, f.info.remote);
            if self.by_tuple.get(&key) == Some(&flow) {
                self.by_tuple.remove(&key);
            }
            if let Some(e) = self.endpoints.get_mut(&f.info.endpoint) {
                e.tcp_flows.retain(|x| *x != flow);
                if e.udp_flows.get(&f.info.remote) == Some(&flow) {
                    e.udp_flows.remove(&f.info.remote);
                }
            }
        }
    }

    /// `connect()` (TCP) or the first datagram to a new peer (other protocols): implicit bind
    /// if the endpoint is unbound (RESOURCE_ASSIGNMENT with `IS_IMPLICIT_BIND`, local address
    /// empty, the chosen port), then ALE_AUTH_CONNECT with `local` — the address and port the
    /// stack chose — as `IP_LOCAL_ADDRESS`/`IP_LOCAL_PORT`. A port 0 or unspecified address in
    /// `local` is completed from the endpoint's bound address. On permit the returned flow
    /// exists; TCP flows are not yet established (call [`Ale::established`] when the SYN-ACK
    /// arrives), other protocols are established at once.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn connect(
        &mut self,
        ep: EndpointId,
        local: SocketAddr,
        remote: SocketAddr,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        if let Some(b) = self.ensure_bound(ep, local, now)? {
            return Ok(match b {
                AleVerdict::Block(mut bl) => {
                    bl.effect = BlockEffect::ConnectFailed {
                        wsa_error: WSAEACCES,
                    };
                    AleVerdict::Block(bl)
                }
                p => p,
            });
        }
        let e = self.ep(ep)?;
        let mut local = local;
        if let Some(b) = e.local {
            if local.port() == 0 {
                local.set_port(b.port());
            }
            if local.ip().is_unspecified() && !b.ip().is_unspecified() {
                local.set_ip(b.ip());
            }
        }
        let (protocol, iface) = (e.ctx.protocol, e.ctx.interface);
        let ev = Event {
            layer: Self::layer(&e.ctx, LayerKind::AuthConnect),
            ctx: &e.ctx,
            local: Some(local),
            remote: Some(remote),
            flags: 0,
            reauth_reason: 0,
            arrival: None,
            direction: None,
            remote_user: None,
            remote_machine: None,
        };
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(ep), None);
        if r.is_block() {
            let effect = if protocol == Protocol::Tcp {
                BlockEffect::ConnectFailed {
                    wsa_error: WSAEACCES,
                }
            } else {
                BlockEffect::SendFailed {
                    wsa_error: WSAEACCES,
                }
            };
            return Ok(self.block(&r, effect, None, false));
        }
        let id = self.new_flow(
            ep,
            protocol,
            iface,
            local,
            remote,
            Direction::Outbound,
            &r,
            now,
            None,
        );
        if protocol != Protocol::Tcp {
            return self.established(id, now);
        }
        Ok(AleVerdict::Permit {
            flow: Some(id),
            protection: self.flows.get(&id).and_then(|f| f.info.protection),
        })
    }

    /// A SYN arrived on a listening endpoint (or, through [`Ale::udp_recv`], the first
    /// datagram from a new peer): INBOUND_TRANSPORT, then ALE_AUTH_RECV_ACCEPT. On permit a
    /// new inbound flow is returned, owned by `listener` until [`Ale::accept`] (not yet
    /// established: call [`Ale::established`] when the final ACK arrives, before `accept`
    /// completes). On block the SYN must be dropped silently ([`BlockEffect::SilentDrop`]).
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`];
    /// [`AleError::NotListening`] for a TCP endpoint that is not listening.
    pub fn inbound_connection(
        &mut self,
        listener: EndpointId,
        local: SocketAddr,
        remote: SocketAddr,
        info: &InboundInfo,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        let e = self.ep(listener)?;
        if e.ctx.protocol == Protocol::Tcp && !e.listening {
            return Err(AleError::NotListening(listener));
        }
        let arrival = if info.interface != 0 {
            info.interface
        } else {
            e.ctx.interface
        };
        let sec = if info.ipsec_secured {
            cf::IS_IPSEC_SECURED
        } else {
            0
        };
        let (protocol, iface) = (e.ctx.protocol, e.ctx.interface);
        let tev = Event {
            layer: Self::layer(&e.ctx, LayerKind::InboundTransport),
            ctx: &e.ctx,
            local: Some(local),
            remote: Some(remote),
            flags: sec,
            reauth_reason: 0,
            arrival: Some(arrival),
            direction: None,
            remote_user: None,
            remote_machine: None,
        };
        let c = self.classify_event(&tev);
        let r = self.record(c, now, Some(listener), None);
        if r.is_block() {
            return Ok(self.block(&r, BlockEffect::SilentDrop, None, false));
        }
        let e = self.ep(listener)?;
        let ev = Event {
            layer: Self::layer(&e.ctx, LayerKind::AuthRecvAccept),
            ctx: &e.ctx,
            local: Some(local),
            remote: Some(remote),
            flags: sec,
            reauth_reason: 0,
            arrival: Some(arrival),
            direction: None,
            remote_user: info.remote_user.as_ref(),
            remote_machine: info.remote_machine.as_ref(),
        };
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(listener), None);
        if r.is_block() {
            return Ok(self.block(&r, BlockEffect::SilentDrop, None, false));
        }
        let id = self.new_flow(
            listener,
            protocol,
            iface,
            local,
            remote,
            Direction::Inbound,
            &r,
            now,
            Some(info),
        );
        Ok(AleVerdict::Permit {
            flow: Some(id),
            protection: self.flows.get(&id).and_then(|f| f.info.protection),
        })
    }

    /// `accept()` completed for `flow`, an inbound TCP connection of `listener`: the accepted
    /// socket gets its own ALE endpoint, which inherits the listener's context (application,
    /// user, interface, flags), its security settings and peer target names (not its owner
    /// session), has the flow's local address, and takes the flow over. From then on, closing
    /// the listener leaves the flow alone; closing the new endpoint closes it. No layer is
    /// classified (Windows has no accept layer).
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`] (listener);
    /// [`AleError::NotListening`]; [`AleError::UnknownFlow`] / [`AleError::FlowClosed`];
    /// [`AleError::FlowNotOwned`] (another endpoint's flow, or already accepted);
    /// [`AleError::NotInboundConnection`].
    pub fn accept(
        &mut self,
        listener: EndpointId,
        flow: FlowId,
        now: Duration,
    ) -> Result<EndpointId, AleError> {
        let l = self.ep(listener)?;
        if l.ctx.protocol != Protocol::Tcp || !l.listening {
            return Err(AleError::NotListening(listener));
        }
        let f = self.fl(flow)?;
        if f.info.endpoint != listener {
            return Err(AleError::FlowNotOwned {
                flow,
                endpoint: listener,
            });
        }
        if f.info.direction != Direction::Inbound || f.info.protocol != Protocol::Tcp {
            return Err(AleError::NotInboundConnection(flow));
        }
        let local = f.info.local;
        let mut e = Endpoint::new(l.ctx.clone());
        e.local = Some(local);
        e.security = l.security.clone();
        e.peer_names = l.peer_names.clone();
        e.tcp_flows.push(flow);
        let id = EndpointId(self.next_ep);
        self.next_ep += 1;
        self.endpoints.insert(id, e);
        if let Some(l) = self.endpoints.get_mut(&listener) {
            l.tcp_flows.retain(|x| *x != flow);
        }
        if let Some(f) = self.flows.get_mut(&flow) {
            f.info.endpoint = id;
            f.info.last_activity = now;
        }
        Ok(id)
    }

    /// The flow is established (TCP: handshake complete; other protocols: right after the
    /// first authorization): classifies at ALE_FLOW_ESTABLISHED with `DIRECTION`. Idempotent.
    /// A block tears the flow down.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownFlow`] / [`AleError::FlowClosed`].
    pub fn established(&mut self, flow: FlowId, now: Duration) -> Result<AleVerdict, AleError> {
        let f = self.fl(flow)?;
        let protection = f.info.protection;
        if f.info.established {
            return Ok(AleVerdict::Permit {
                flow: Some(flow),
                protection,
            });
        }
        let epid = f.info.endpoint;
        let e = self.ep(epid)?;
        let ev = Event {
            layer: Self::layer(&e.ctx, LayerKind::FlowEstablished),
            ctx: &e.ctx,
            local: Some(f.info.local),
            remote: Some(f.info.remote),
            flags: 0,
            reauth_reason: 0,
            arrival: None,
            direction: Some(f.info.direction),
            remote_user: f.remote_user.as_ref(),
            remote_machine: f.remote_machine.as_ref(),
        };
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(epid), Some(flow));
        if r.is_block() {
            self.remove_flow(flow);
            return Ok(self.block(&r, BlockEffect::FlowTornDown, Some(flow), false));
        }
        let f = self.fl_mut(flow)?;
        f.info.established = true;
        f.info.last_activity = now;
        Ok(AleVerdict::Permit {
            flow: Some(flow),
            protection,
        })
    }

    /// The re-authorization values of a flow, or `None` if it or its endpoint is gone.
    fn reauth_values(&self, f: &Flow, packet_dir: Option<Direction>) -> Option<IncomingValues> {
        let e = self.endpoints.get(&f.info.endpoint)?;
        Some(Self::reauth_event(f, &e.ctx, packet_dir).values())
    }

    fn reauth_event<'a>(
        f: &'a Flow,
        ctx: &'a EndpointContext,
        packet_dir: Option<Direction>,
    ) -> Event<'a> {
        // unknown fields during reauth are EMPTY: the arrival interface is only known for an
        // inbound packet
        let arrival = match packet_dir {
            Some(Direction::Inbound) => Some(f.interface),
            _ => None,
        };
        Event {
            layer: f.info.layer,
            ctx,
            local: Some(f.info.local),
            remote: Some(f.info.remote),
            flags: cf::IS_REAUTHORIZE,
            reauth_reason: reauth_reason::POLICY_CHANGE,
            arrival,
            direction: None,
            remote_user: f.remote_user.as_ref(),
            remote_machine: f.remote_machine.as_ref(),
        }
    }

    /// Re-authorizes `flow` if the policy at its layer changed since it was authorized (and,
    /// with [`ReauthScope::Matching`], a changed filter could match it).
    /// `packet_dir` is the direction of the packet that triggers it (`None` = eager).
    fn reauth_if_needed(
        &mut self,
        flow: FlowId,
        packet_dir: Option<Direction>,
        now: Duration,
    ) -> Option<AleVerdict> {
        let (layer, since) = {
            let f = self.flows.get(&flow)?;
            (f.info.layer, f.gen)
        };
        let current = self.engine.layer_generation(layer);
        if current == since {
            return None;
        }
        if self.config.reauth_scope == ReauthScope::Matching {
            self.changes.sync(&mut self.engine);
            let f = self.flows.get(&flow)?;
            let v = self.reauth_values(f, packet_dir)?;
            if !self.changes.may_affect(layer, since, current, &v) {
                self.reauth_skipped += 1;
                if let Some(f) = self.flows.get_mut(&flow) {
                    f.gen = current;
                }
                return None;
            }
        }
        let f = self.flows.get(&flow)?;
        let e = self.endpoints.get(&f.info.endpoint)?;
        let epid = f.info.endpoint;
        let ev = Self::reauth_event(f, &e.ctx, packet_dir);
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(epid), Some(flow));
        if r.is_block() {
            self.remove_flow(flow);
            return Some(self.block(&r, BlockEffect::FlowTornDown, Some(flow), true));
        }
        let protection = self.protection_of(&r);
        let f = self.flows.get_mut(&flow)?;
        f.gen = current;
        f.info.decided_by = r.decided_by;
        f.info.protection = protection;
        Some(AleVerdict::Permit {
            flow: Some(flow),
            protection,
        })
    }

    /// Transport-layer classification of one packet: `Err(block)` or the transport filter's
    /// request.
    fn transport(
        &mut self,
        flow: FlowId,
        dir: Direction,
        pkt: &PacketInfo,
        now: Duration,
    ) -> Transport {
        let Some(f) = self.flows.get(&flow) else {
            return Transport::Pass(None);
        };
        let Some(e) = self.endpoints.get(&f.info.endpoint) else {
            return Transport::Pass(None);
        };
        let kind = match dir {
            Direction::Outbound => LayerKind::OutboundTransport,
            Direction::Inbound => LayerKind::InboundTransport,
        };
        let layer = Self::layer(&e.ctx, kind);
        if !self.engine.layer_has_filters(layer) {
            return Transport::Pass(None);
        }
        let epid = f.info.endpoint;
        let ev = Event {
            layer,
            ctx: &e.ctx,
            local: Some(f.info.local),
            remote: Some(f.info.remote),
            flags: if pkt.ipsec_secured {
                cf::IS_IPSEC_SECURED
            } else {
                0
            },
            reauth_reason: 0,
            arrival: (dir == Direction::Inbound).then_some(f.interface),
            direction: None,
            remote_user: None,
            remote_machine: None,
        };
        let c = self.classify_event(&ev);
        let r = self.record(c, now, Some(epid), Some(flow));
        if r.is_block() {
            return Transport::Blocked(self.block(
                &r,
                BlockEffect::PacketDropped,
                Some(flow),
                false,
            ));
        }
        Transport::Pass(self.protection_of(&r))
    }

    /// A packet of an existing flow, TCP or UDP, either direction (including the SYN and
    /// handshake packets): [`Ale::packet_with`] with no extra facts.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownFlow`] / [`AleError::FlowClosed`] (e.g. torn down by an earlier
    /// re-authorization).
    pub fn packet(
        &mut self,
        flow: FlowId,
        dir: Direction,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        self.packet_with(flow, dir, &PacketInfo::default(), now)
    }

    /// A packet of an existing flow. Re-authorizes at the flow's layer if policy changed there
    /// (with `IS_REAUTHORIZE` and reason `POLICY_CHANGE`; a block tears the flow down), and
    /// classifies the transport layer (OUTBOUND/INBOUND_TRANSPORT) if any filter lives there
    /// — with no transport filter and no policy change nothing is classified (outbound: ALE
    /// first, then transport; inbound: transport first, then ALE). A permit carries the
    /// transport filter's [`ProtectionRequest`], else the flow's own.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownFlow`] / [`AleError::FlowClosed`].
    pub fn packet_with(
        &mut self,
        flow: FlowId,
        dir: Direction,
        pkt: &PacketInfo,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        self.fl(flow)?;
        let mut transport = None;
        if dir == Direction::Inbound {
            match self.transport(flow, dir, pkt, now) {
                Transport::Pass(p) => transport = p,
                Transport::Blocked(b) => return Ok(b),
            }
        }
        if let Some(b @ AleVerdict::Block(_)) = self.reauth_if_needed(flow, Some(dir), now) {
            return Ok(b);
        }
        if dir == Direction::Outbound {
            match self.transport(flow, dir, pkt, now) {
                Transport::Pass(p) => transport = p,
                Transport::Blocked(b) => return Ok(b),
            }
        }
        let f = self.fl_mut(flow)?;
        f.info.last_activity = now;
        Ok(AleVerdict::Permit {
            flow: Some(flow),
            protection: transport.or(f.info.protection),
        })
    }

    fn live_udp_flow(
        &mut self,
        ep: EndpointId,
        remote: SocketAddr,
        now: Duration,
    ) -> Option<FlowId> {
        let id = *self.endpoints.get(&ep)?.udp_flows.get(&remote)?;
        let f = self.flows.get(&id)?;
        if now.saturating_sub(f.info.last_activity) > self.config.udp_idle_timeout {
            self.remove_flow(id);
            return None;
        }
        Some(id)
    }

    /// UDP `sendto(remote)`: implicit bind if needed; the first datagram to a new remote (or
    /// after the flow idled out) is classified at ALE_AUTH_CONNECT then FLOW_ESTABLISHED;
    /// every datagram then goes through [`Ale::packet`] (re-authorization after a policy
    /// change, transport layer).
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`].
    pub fn udp_send(
        &mut self,
        ep: EndpointId,
        local: SocketAddr,
        remote: SocketAddr,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        self.ep(ep)?;
        let send_failed = |v: AleVerdict| match v {
            AleVerdict::Block(mut b) if b.effect == BlockEffect::FlowTornDown => {
                b.effect = BlockEffect::SendFailed {
                    wsa_error: WSAEACCES,
                };
                AleVerdict::Block(b)
            }
            v => v,
        };
        if let Some(id) = self.live_udp_flow(ep, remote, now) {
            return Ok(send_failed(self.packet(id, Direction::Outbound, now)?));
        }
        Ok(match self.connect(ep, local, remote, now)? {
            AleVerdict::Block(mut b) => {
                b.effect = BlockEffect::SendFailed {
                    wsa_error: WSAEACCES,
                };
                AleVerdict::Block(b)
            }
            AleVerdict::Permit {
                flow: Some(id),
                protection,
            } => match send_failed(self.packet(id, Direction::Outbound, now)?) {
                AleVerdict::Permit {
                    flow,
                    protection: p,
                } => AleVerdict::Permit {
                    flow,
                    protection: p.or(protection),
                },
                b => b,
            },
            p => p,
        })
    }

    /// A UDP datagram from `remote` arrived for endpoint `ep`: INBOUND_TRANSPORT, and for the
    /// first datagram from a new remote (or after idle expiry) ALE_AUTH_RECV_ACCEPT then
    /// FLOW_ESTABLISHED. A block means: drop the datagram silently.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] / [`AleError::EndpointClosed`]; [`AleError::NotBound`].
    pub fn udp_recv(
        &mut self,
        ep: EndpointId,
        remote: SocketAddr,
        info: &InboundInfo,
        now: Duration,
    ) -> Result<AleVerdict, AleError> {
        let local = self.ep(ep)?.local.ok_or(AleError::NotBound(ep))?;
        let dropped = |v: AleVerdict| match v {
            AleVerdict::Block(mut b) => {
                b.effect = BlockEffect::DatagramDropped;
                AleVerdict::Block(b)
            }
            v => v,
        };
        if let Some(id) = self.live_udp_flow(ep, remote, now) {
            let pkt = PacketInfo {
                ipsec_secured: info.ipsec_secured,
            };
            return Ok(dropped(self.packet_with(
                id,
                Direction::Inbound,
                &pkt,
                now,
            )?));
        }
        Ok(
            match dropped(self.inbound_connection(ep, local, remote, info, now)?) {
                AleVerdict::Permit { flow: Some(id), .. } => dropped(self.established(id, now)?),
                v => v,
            },
        )
    }

    fn closure(
        &mut self,
        ep: EndpointId,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
        flow: Option<FlowId>,
        now: Duration,
    ) {
        let Some(e) = self.endpoints.get(&ep) else {
            return;
        };
        let ev = Event {
            layer: Self::layer(&e.ctx, LayerKind::EndpointClosure),
            ctx: &e.ctx,
            local,
            remote,
            flags: 0,
            reauth_reason: 0,
            arrival: None,
            direction: None,
            remote_user: None,
            remote_machine: None,
        };
        let c = self.classify_event(&ev);
        self.record(c, now, Some(ep), flow);
    }

    /// A TCP connection closed (FIN/RST exchange done, or aborted): exactly one
    /// ALE_ENDPOINT_CLOSURE for it; the flow is forgotten. FIN and RST themselves are never
    /// classified. Idempotent: closing a flow that is already gone is `Ok`.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownFlow`] for an id ALE never issued.
    pub fn close_flow(&mut self, flow: FlowId, now: Duration) -> Result<(), AleError> {
        let Some(f) = self.flows.get(&flow) else {
            return match self.flow_error(flow) {
                AleError::FlowClosed(_) => Ok(()),
                e => Err(e),
            };
        };
        if f.info.protocol == Protocol::Tcp && !f.closure_indicated {
            let (ep, local, remote) = (f.info.endpoint, f.info.local, f.info.remote);
            if let Some(f) = self.flows.get_mut(&flow) {
                f.closure_indicated = true;
            }
            self.closure(ep, Some(local), Some(remote), Some(flow), now);
        }
        self.remove_flow(flow);
        Ok(())
    }

    /// `closesocket()`: closes every flow the endpoint owns (TCP: one ENDPOINT_CLOSURE each —
    /// its connection, or a listener's connections not yet accepted; flows handed to accepted
    /// endpoints by [`Ale::accept`] are not the listener's and stay), a listening TCP socket
    /// gets its own ENDPOINT_CLOSURE, a non-TCP endpoint one ENDPOINT_CLOSURE for itself and
    /// all its flows; an endpoint that went through RESOURCE_ASSIGNMENT then gets
    /// RESOURCE_RELEASE. The endpoint's owner session, if set, is closed (its dynamic filters
    /// go with it). Idempotent: closing an endpoint that is already closed is `Ok`.
    ///
    /// # Errors
    ///
    /// [`AleError::UnknownEndpoint`] for an id ALE never issued.
    pub fn close_endpoint(&mut self, ep: EndpointId, now: Duration) -> Result<(), AleError> {
        let Some(e) = self.endpoints.get(&ep) else {
            return match self.endpoint_error(ep) {
                AleError::EndpointClosed(_) => Ok(()),
                e => Err(e),
            };
        };
        let (tcp, listening, local, assigned) = (
            e.ctx.protocol == Protocol::Tcp,
            e.listening,
            e.local,
            e.assigned,
        );
        let flows: Vec<FlowId> = e
            .tcp_flows
            .iter()
            .chain(e.udp_flows.values())
            .copied()
            .collect();
        if tcp {
            for f in flows {
                self.close_flow(f, now)?;
            }
            if listening {
                self.closure(ep, local, None, None, now);
            }
        } else {
            self.closure(ep, local, None, None, now);
            for f in flows {
                self.remove_flow(f);
            }
        }
        if assigned {
            if let Some(e) = self.endpoints.get(&ep) {
                let ev = Event {
                    layer: Self::layer(&e.ctx, LayerKind::ResourceRelease),
                    ctx: &e.ctx,
                    local,
                    remote: None,
                    flags: 0,
                    reauth_reason: 0,
                    arrival: None,
                    direction: None,
                    remote_user: None,
                    remote_machine: None,
                };
                let c = self.classify_event(&ev);
                self.record(c, now, Some(ep), None);
            }
        }
        if let Some(e) = self.endpoints.remove(&ep) {
            if let Some(s) = e.owner_session {
                // already closed by its owner: nothing to undo
                let _ = self.engine.close_session(s);
            }
        }
        Ok(())
    }

    /// Forgets UDP flows idle longer than `udp_idle_timeout`; returns them.
    pub fn expire(&mut self, now: Duration) -> Vec<FlowId> {
        let idle = self.config.udp_idle_timeout;
        let dead: Vec<FlowId> = self
            .flows
            .values()
            .filter(|f| {
                f.info.protocol != Protocol::Tcp && now.saturating_sub(f.info.last_activity) > idle
            })
            .map(|f| f.info.id)
            .collect();
        for f in &dead {
            self.remove_flow(*f);
        }
        dead
    }

    /// Eagerly re-authorizes every flow whose layer's policy changed (Windows does this
    /// lazily, on the flow's next packet — [`Ale::packet`] does that too; this is for a stack
    /// that wants to tear flows down at once). With [`ReauthScope::Matching`] (the default)
    /// flows no changed filter could match are skipped (not classified). Returns each
    /// re-authorized flow with its verdict, in flow id order; blocked flows are already
    /// forgotten and must be torn down by the stack.
    pub fn reauthorize(&mut self, now: Duration) -> Vec<(FlowId, AleVerdict)> {
        let ids: Vec<FlowId> = self.flows.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(v) = self.reauth_if_needed(id, None, now) {
                out.push((id, v));
            }
        }
        out
    }

    // ------------------------------------------------------------------ IPsec policy

    fn policy(
        &mut self,
        layer: Layer,
        values: &IncomingValues,
        now: Duration,
    ) -> Option<PolicyMatch> {
        let r = self.engine.classify(layer, values);
        self.note(layer, 0, 0, &r, now, None, None);
        for s in r.sublayer_results.iter() {
            if s.decision == Decision::Block {
                return None;
            }
            let fr = FilterRef {
                id: s.filter_id,
                layer,
                sublayer: s.sublayer,
                action: wsock_wfp::Action::Permit,
            };
            if let Some(f) = self.engine.resolve_filter(&fr) {
                if let Some(pc) = f.provider_context_key {
                    return Some(PolicyMatch {
                        layer,
                        filter_id: f.id,
                        filter_key: f.key,
                        sublayer: s.sublayer,
                        provider_context: pc,
                    });
                }
            }
        }
        None
    }

    /// Main-mode policy for a peer: classifies at `FWPM_LAYER_IKEEXT_V4` (or `_V6` when either
    /// address is IPv6 and not IPv4-mapped) with `IP_LOCAL_ADDRESS` and `IP_REMOTE_ADDRESS`,
    /// and returns the highest-priority permitting policy filter that names a provider
    /// context. A block in a higher-priority sublayer means "no policy". Recorded in the trace
    /// (no net event).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsock_ale::*;
    /// use wsock_wfp::*;
    /// let mut ale = Ale::new(Engine::new());
    /// let s = ale.engine_mut().open_session(false);
    /// let mm = Guid::from_u128(0x5ec0_0001);
    /// ale.engine_mut()
    ///     .add_provider_context(s, &ProviderContext::new("mm", 6, vec![]).key(mm))
    ///     .unwrap();
    /// ale.engine_mut()
    ///     .add_filter(s, &Filter::new("mm", Layer::IKEEXT_V4, Action::Permit).provider_context(mm))
    ///     .unwrap();
    /// let p = ale.ikeext_policy("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), Duration::ZERO);
    /// assert_eq!(p.unwrap().provider_context, mm);
    /// ```
    pub fn ikeext_policy(
        &mut self,
        local: IpAddr,
        remote: IpAddr,
        now: Duration,
    ) -> Option<PolicyMatch> {
        let v6 = canonical(local).is_ipv6() || canonical(remote).is_ipv6();
        let layer = if v6 {
            Layer::IKEEXT_V6
        } else {
            Layer::IKEEXT_V4
        };
        let fam = layer.family();
        let mut v = IncomingValues::new();
        v.set(
            Field::IP_LOCAL_ADDRESS,
            FwpValue::addr(map_ip(canonical(local), fam)),
        );
        v.set(
            Field::IP_REMOTE_ADDRESS,
            FwpValue::addr(map_ip(canonical(remote), fam)),
        );
        self.policy(layer, &v, now)
    }

    /// Quick-mode policy for a flow: classifies at `FWPM_LAYER_IPSEC_V4` (or `_V6`) with the
    /// addresses, ports and protocol, and returns the policy filter as
    /// [`Ale::ikeext_policy`] does.
    pub fn ipsec_policy(
        &mut self,
        protocol: Protocol,
        local: SocketAddr,
        remote: SocketAddr,
        now: Duration,
    ) -> Option<PolicyMatch> {
        let v6 = canonical(local.ip()).is_ipv6() || canonical(remote.ip()).is_ipv6();
        let layer = if v6 { Layer::IPSEC_V6 } else { Layer::IPSEC_V4 };
        let fam = layer.family();
        let mut v = IncomingValues::new();
        v.set(
            Field::IP_LOCAL_ADDRESS,
            FwpValue::addr(map_ip(canonical(local.ip()), fam)),
        );
        v.set(
            Field::IP_REMOTE_ADDRESS,
            FwpValue::addr(map_ip(canonical(remote.ip()), fam)),
        );
        v.set(Field::IP_LOCAL_PORT, FwpValue::Uint16(local.port()));
        v.set(Field::IP_REMOTE_PORT, FwpValue::Uint16(remote.port()));
        v.set(Field::IP_PROTOCOL, FwpValue::Uint8(protocol.number()));
        self.policy(layer, &v, now)
    }
}
