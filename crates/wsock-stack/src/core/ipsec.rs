//! IPsec on the packet path: the keying module (an IKEv2 endpoint of `wsock-ipsec`) on the
//! host's IKE and NAT-T sockets, the SA database, and ESP in transport or tunnel mode.
//!
//! ```text
//!  egress: ALE says the flow needs protection (a REQUIRE_IPSEC_* permit, an IPsec callout,
//!          or the socket's WSASetSocketSecurity settings), or an SA to the peer exists
//!      │
//!      ├── an outbound SA to the peer fits ──► ESP (transport: the transport segment; tunnel:
//!      │                                       the whole packet) on the NAT-T socket
//!      ├── none, no failure on record ──────► hold under the negotiation's key; IKE_SA_INIT +
//!      │                                       IKE_AUTH with the peer host (main mode + quick mode)
//!      └── negotiation failed ─────────────► drop (require) or clear (ALLOW_INSECURE / request)
//!
//!  ingress: NAT-T socket ── marker ──► IKE;  SPI ──► inbound SA ──► open (ICV, then replay
//!           window) ──► rebuilt IP packet, marked secured, with the peer's identity ──► ALE
//!           clear socket: a packet of a flow that requires protection is dropped
//! ```
//!
//! Keying is per peer host: one IKE SA (Windows' main mode SA) and child SAs (quick mode SAs)
//! whose selectors cover all traffic between the two hosts' virtual addresses of one family.
//! SA ids follow Windows: the IKE SA id is the 64-bit MM SA id; QM SA ids count from 1 per host.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wsock_ale::FlowId;
use wsock_ipsec::esp::{EspSuite, InboundSa, Integrity, Lifetime, Mode, OutboundSa, SaEvent};
use wsock_ipsec::ike::crypto::DhGroup;
use wsock_ipsec::ike::sa::{
    host_selector, ChildSa, EndpointConfig, Identity, IkeEndpoint, IkeEvent, IkePolicy, IkeSaId,
    Retransmit, SystemIkeRandom, WireSocket as IkeSocket,
};
use wsock_ipsec::ike::wire::AddressRange;
use wsock_ipsec::natt::{self, NattDatagram};
use wsock_ipsec::IpsecError;
use wsock_wfp::{NetEventHeader, NetEventKind};

use super::HostCore;
use crate::stages::{DropReason, HoldKey, IngressMeta, Transmit, WireSocket};
use crate::wire::{self, IpSummary};

/// `SOCKET_SETTINGS_GUARANTEE_ENCRYPTION`.
pub const SETTINGS_GUARANTEE_ENCRYPTION: u32 = 0x1;
/// `SOCKET_SETTINGS_ALLOW_INSECURE`.
pub const SETTINGS_ALLOW_INSECURE: u32 = 0x2;
/// `SOCKET_SETTINGS_IPSEC_OPTIONAL_PEER_NAME_VERIFICATION` (`IpsecFlags`): a peer target name
/// that does not match is tolerated (wsock's reading of an undocumented flag:
/// docs/windows-differences.md §6).
pub const SETTINGS_IPSEC_OPTIONAL_PEER_NAME_VERIFICATION: u32 = 0x2;
/// `SOCKET_SETTINGS_IPSEC_PEER_NAME_IS_RAW_FORMAT` (`IpsecFlags`): accepted; wsock matches a
/// target name as a raw name or an SPN alike (docs/windows-differences.md §6).
pub const SETTINGS_IPSEC_PEER_NAME_IS_RAW_FORMAT: u32 = 0x8;

/// `ERROR_IPSEC_IKE_QM_LIMIT`: a main mode SA reached its quick mode limit.
pub const ERROR_IPSEC_IKE_QM_LIMIT: u32 = 13884;
/// `ERROR_IPSEC_IKE_AUTHORIZATION_FAILURE`: KM_AUTHORIZATION refused the peer.
pub const ERROR_IPSEC_IKE_AUTHORIZATION_FAILURE: u32 = 13905;
/// `ERROR_IPSEC_CLEAR_TEXT_DROP`: a clear packet where policy required protection.
pub const ERROR_IPSEC_CLEAR_TEXT_DROP: u32 = 13916;

/// How many rekey links (old QM SA id → new) a host keeps for queries of flows last seen on a
/// pair that is gone.
const MAX_SUCCESSOR_LINKS: usize = 4096;

/// How a host authenticates in IKE.
#[derive(Clone)]
pub enum IpsecCredential {
    /// A machine certificate from the scenario's CA (RFC 7427 signatures).
    Certificate {
        /// Our identity (ID_FQDN of the machine name).
        id: Identity,
        /// The certificate, its key and the trust anchors.
        cert: wsock_ipsec::ike::cert::CertAuth,
    },
    /// Pre-shared keys.
    Psk {
        /// Our identity.
        id: Identity,
        /// The key for peers without a key of their own in `peers`.
        key: Vec<u8>,
        /// Keys for particular peers (a scenario's `[[host.psk]]`): an initiator picks the key
        /// by the peer's address, a responder by the identity the initiator claims.
        peers: Vec<PeerPsk>,
    },
}

/// A pre-shared key for one peer host.
#[derive(Clone)]
pub struct PeerPsk {
    /// The peer's IKE identity.
    pub id: Identity,
    /// The peer's addresses.
    pub addrs: Vec<IpAddr>,
    /// The key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for PeerPsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerPsk({}, {:?}, <redacted>)", self.id, self.addrs)
    }
}

impl std::fmt::Debug for IpsecCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpsecCredential::Certificate { id, .. } => write!(f, "Certificate({id})"),
            IpsecCredential::Psk { id, .. } => write!(f, "Psk({id}, <redacted>)"),
        }
    }
}

/// What a failed negotiation makes a waiting `connect` fail with
/// (../reference/unconfirmed-resolved.md item 1a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureErrno {
    /// `WSAETIMEDOUT`, after [`IpsecSetup::failure_delay`] (Windows' behaviour as observed).
    #[default]
    Timeout,
    /// `WSAEACCES` at once.
    AccessDenied,
}

/// How a host's IPsec is set up ([`HostCore::enable_ipsec`]).
#[derive(Debug, Clone)]
pub struct IpsecSetup {
    /// Our IKE credential.
    pub credential: IpsecCredential,
    /// IKE retransmission schedule (default: 0.5 s doubling, 5 sends: failure after 15.5 s).
    pub retransmit: Retransmit,
    /// Lifetime of child SAs (default: 1 hour, soft at 90 %, as Windows' quick mode default).
    pub child_lifetime: Lifetime,
    /// Anti-replay window (default 64).
    pub replay_window: u32,
    /// How long a `connect` waiting on a failed negotiation waits before it fails (default
    /// 21 s, Windows' SYN retry budget; scenarios shorten it).
    pub failure_delay: Duration,
    /// What it then fails with.
    pub failure_errno: FailureErrno,
    /// How long a failure is remembered before traffic may start a new negotiation.
    pub failure_holddown: Duration,
    /// How long packets wait for a negotiation.
    pub hold_timeout: Duration,
    /// Child SA mode.
    pub mode: Mode,
    /// Keep key records for Wireshark ([`HostCore::key_log`]). Debug material: off by default.
    pub keylog: bool,
    /// Machine names by lowercase IKE identity (to name a peer's machine for tokens).
    pub machines: BTreeMap<String, String>,
    /// The domain's users a responder authenticates at user level (RFC 4739): `(user@DOMAIN,
    /// password)`. Passwords are weaker proof than certificates (docs/windows-differences.md §6).
    pub users: Vec<(String, Vec<u8>)>,
    /// The ESP suites a responder accepts (`None`: everything wsock implements).
    pub responder_esp: Option<Vec<(EspSuite, bool)>>,
    /// Lifetime of IKE SAs (main mode SAs; rekeyed at 90 %). `None`: forever.
    pub ike_lifetime: Option<Duration>,
    /// Quick mode SAs one main mode SA may negotiate (Windows' `quickModeLimit`; `None` or 0:
    /// unlimited). A new quick mode to a peer runs under the existing main mode SA until then.
    pub quick_mode_limit: Option<u32>,
    /// A child SA pair without traffic for this long is deleted (Windows' `idleTimeoutSeconds`,
    /// default 300 s); the next packet negotiates a new one. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Half-open IKE SAs from which a responder demands cookies (0: always; default 64).
    pub cookie_threshold: usize,
    /// The ESP suites an initiator offers, in order, instead of the policy's (`None`: AEAD
    /// first when encryption is required, else Windows' integrity-first default).
    pub esp_offer: Option<Vec<(EspSuite, bool)>>,
}

impl IpsecSetup {
    /// Defaults around a credential.
    pub fn new(credential: IpsecCredential) -> Self {
        let hard = Duration::from_secs(3600);
        IpsecSetup {
            credential,
            retransmit: Retransmit::default(),
            child_lifetime: child_lifetime(Some(hard), None),
            replay_window: 64,
            failure_delay: Duration::from_secs(21),
            failure_errno: FailureErrno::Timeout,
            failure_holddown: Duration::from_secs(10),
            hold_timeout: Duration::from_secs(30),
            mode: Mode::Transport,
            keylog: false,
            machines: BTreeMap::new(),
            esp_offer: None,
            users: Vec::new(),
            responder_esp: None,
            ike_lifetime: None,
            idle_timeout: Some(Duration::from_secs(300)),
            quick_mode_limit: None,
            cookie_threshold: 64,
        }
    }
}

/// Moves each soft limit halfway towards its hard limit.
fn later_soft_limits(l: &mut Lifetime) {
    if let (Some(soft), Some(hard)) = (l.soft.time, l.hard.time) {
        l.soft.time = Some(soft + hard.saturating_sub(soft) / 2);
    }
    if let (Some(soft), Some(hard)) = (l.soft.bytes, l.hard.bytes) {
        l.soft.bytes = Some(soft + hard.saturating_sub(soft) / 2);
    }
    if let (Some(soft), Some(hard)) = (l.soft.packets, l.hard.packets) {
        l.soft.packets = Some(soft + hard.saturating_sub(soft) / 2);
    }
}

/// A child SA lifetime with soft limits at 90 % of the hard ones.
pub fn child_lifetime(seconds: Option<Duration>, bytes: Option<u64>) -> Lifetime {
    use wsock_ipsec::esp::LifetimeLimits;
    let hard = LifetimeLimits {
        time: seconds,
        bytes,
        packets: None,
    };
    let soft = LifetimeLimits {
        time: seconds.map(|t| t.mul_f64(0.9)),
        bytes: bytes.map(|b| b / 10 * 9),
        packets: None,
    };
    Lifetime { soft, hard }
}

/// What protection a packet needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    /// A cipher, not integrity only.
    pub encrypt: bool,
    /// The peer's identity must match this name.
    pub target: Option<String>,
    /// Clear text may go when no SA can be had (ALLOW_INSECURE, negotiation discovery).
    pub clear_ok: bool,
    /// Negotiation discovery: clear text goes *while* the SA is negotiated.
    pub discover: bool,
    /// `AuthipMMPolicyKey` / `AuthipQMPolicyKey` of the socket: provider contexts to use.
    pub policy_keys: (Option<wsock_wfp::Guid>, Option<wsock_wfp::Guid>),
    /// The user (`user@DOMAIN`) and password of `SOCKET_SECURITY_SETTINGS_IPSEC`, for the
    /// user-level authentication (RFC 4739).
    pub user: Option<UserLogon>,
}

/// Explicit user credentials of a secure socket. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserLogon {
    /// `user@DOMAIN`.
    pub name: String,
    /// The password.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for UserLogon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserLogon({}, <redacted>)", self.name)
    }
}

/// The IKE identity of a domain user: `user@DOMAIN` (ID_RFC822_ADDR).
pub fn user_identity(user: &str, domain: &str) -> Identity {
    Identity::Rfc822(format!(
        "{}@{}",
        user.to_ascii_lowercase(),
        domain.to_ascii_uppercase()
    ))
}

/// Key records of negotiated SAs, each a JSON object in the format of the project's ESP oracle
/// (`esp_pcap_check.py`'s key file) and of Wireshark's UAT tables. Secret material: only kept
/// when the network was built with key export on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLog {
    /// `ikev2` entries (SPIs, SK_e/SK_a keys, algorithms).
    pub ikev2: Vec<String>,
    /// `esp_sa` entries (addresses, SPI, keys, algorithms).
    pub esp_sa: Vec<String>,
}

/// One direction of a child SA pair in the SA database, as views list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChildSaView {
    /// QM SA id.
    pub qm_sa_id: u64,
    /// MM SA id of the IKE SA it belongs to.
    pub mm_sa_id: u64,
    /// The peer's virtual address.
    pub peer: IpAddr,
    /// Inbound SPI (ours).
    pub inbound_spi: u32,
    /// Outbound SPI (the peer's).
    pub outbound_spi: u32,
    /// Algorithms.
    pub suite: String,
    /// Whether a cipher is in use (ENCRYPTED, not only SECURED).
    pub encrypted: bool,
    /// transport / tunnel.
    pub mode: String,
    /// Packets and bytes sealed.
    pub out_packets: u64,
    /// Payload bytes sealed.
    pub out_bytes: u64,
    /// Packets opened.
    pub in_packets: u64,
    /// Payload bytes opened.
    pub in_bytes: u64,
}

/// An IKE SA (main mode SA) as views list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IkeSaView {
    /// MM SA id.
    pub mm_sa_id: u64,
    /// initiator / responder.
    pub role: String,
    /// State.
    pub state: String,
    /// Initiator SPI.
    pub spi_i: String,
    /// Responder SPI.
    pub spi_r: String,
    /// The peer's IKE address on the underlay.
    pub peer_wire: SocketAddr,
    /// The peer's authenticated identity.
    pub peer_id: Option<String>,
    /// The IKE SA's lifetime in seconds (the main mode policy's `maxLifetimeSeconds`, else the
    /// host's default; `None`: forever).
    pub lifetime_seconds: Option<u64>,
}

/// The SA database of a host: what `wsock show sas` prints.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SaDatabase {
    /// IKE SAs.
    pub ike: Vec<IkeSaView>,
    /// Child SAs.
    pub child: Vec<ChildSaView>,
}

/// What the SA that protected a flow says (for `WSAQuerySocketSecurity`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaFacts {
    /// MM SA id.
    pub mm_sa_id: u64,
    /// QM SA id.
    pub qm_sa_id: u64,
    /// A cipher is in use.
    pub encrypted: bool,
    /// The peer's authenticated identity.
    pub peer_id: Option<String>,
    /// The peer's machine name (from the scenario), if known.
    pub peer_machine: Option<String>,
    /// The user the peer authenticated at user level (`user@DOMAIN`), if any.
    pub peer_user: Option<String>,
}

struct OutEntry {
    /// Packets sealed and opened on the pair when last looked at, and when that changed.
    activity: (u64, Duration),
    /// A pair we answered the peer's rekey with: the peer installs it only when our answer
    /// arrives, so we keep sending on the pair it replaces until the new pair brings a packet
    /// or the old one is deleted.
    pending: Option<u32>,
    sa: OutboundSa,
    mm: IkeSaId,
    qm: u64,
    inbound_spi: u32,
    encrypted: bool,
    peer_wire: SocketAddr,
    mode: Mode,
}

struct InEntry {
    sa: InboundSa,
    mm: IkeSaId,
    qm: u64,
    peer_ip: IpAddr,
    local_ip: IpAddr,
    mode: Mode,
}

#[derive(Debug, Clone)]
struct Negotiation {
    peer_ip: IpAddr,
    need: Need,
    /// The main mode policy's `quickModeLimit`, 0 = unlimited (`None`: no policy, the host's
    /// [`IpsecSetup::quick_mode_limit`]).
    qm_limit: Option<u32>,
    /// Its first child SA was installed (later events are rekeys, not this negotiation).
    done: bool,
}

#[derive(Debug, Clone)]
struct Failure {
    winerr: u32,
    at: Duration,
    need: Need,
}

/// The IPsec state of one host core.
pub(crate) struct IpsecPath {
    setup: IpsecSetup,
    ike: IkeEndpoint,
    negotiations: BTreeMap<IkeSaId, Negotiation>,
    /// The negotiation running towards a peer address.
    by_peer: BTreeMap<IpAddr, IkeSaId>,
    /// Peer identities of established IKE SAs.
    peer_ids: BTreeMap<IkeSaId, Identity>,
    /// Users the peer authenticated at user level (RFC 4739), by IKE SA.
    peer_users: BTreeMap<IkeSaId, Identity>,
    /// Quick mode SAs negotiated under each main mode SA (rekeys included).
    qm_counts: BTreeMap<IkeSaId, u32>,
    /// Main mode SAs with a CREATE_CHILD_SA of ours in flight (packets held under them).
    child_pending: std::collections::BTreeSet<IkeSaId>,
    /// IKE SAs whose child SAs brought a packet from the peer.
    ever_used: std::collections::BTreeSet<IkeSaId>,
    out: BTreeMap<IpAddr, Vec<OutEntry>>,
    inb: HashMap<u32, InEntry>,
    failures: BTreeMap<IpAddr, Failure>,
    next_qm: u64,
    /// Rekeys: QM SA id → the id of the pair that replaced it (ids only grow, so chains end),
    /// so that a flow last seen on a pair that is gone reports its successor. Bounded: the
    /// oldest links go first.
    successors: BTreeMap<u64, u64>,
    keylog: KeyLog,
    /// ESP packets dropped, by `ERROR_IPSEC_*` code.
    pub(crate) esp_errors: BTreeMap<u32, u64>,
}

/// Packet counters of the IPsec path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpsecCounters {
    /// Packets that left in clear text (GRE on the clear socket).
    pub clear_sent: u64,
    /// Packets sealed into ESP.
    pub esp_sent: u64,
    /// Packets of a once-secured flow that would have left in clear and were dropped instead
    /// (the no-downgrade guard; any other value than 0 points at a policy bug).
    pub downgrades_refused: u64,
}

fn ike_socket(s: WireSocket) -> Option<IkeSocket> {
    match s {
        WireSocket::Ike => Some(IkeSocket::Ike),
        WireSocket::NatT => Some(IkeSocket::Natt),
        WireSocket::Clear => None,
    }
}

fn stack_socket(s: IkeSocket) -> WireSocket {
    match s {
        IkeSocket::Ike => WireSocket::Ike,
        IkeSocket::Natt => WireSocket::NatT,
    }
}

fn suite_encrypts(s: EspSuite) -> bool {
    !matches!(s, EspSuite::Null(_) | EspSuite::NullAuthAesGmac { .. })
}

fn suite_name(s: EspSuite) -> String {
    match s {
        EspSuite::AesGcm16 { key_bits } => format!("aes-gcm-{key_bits}"),
        EspSuite::ChaCha20Poly1305 => "chacha20-poly1305".into(),
        EspSuite::NullAuthAesGmac { key_bits } => format!("null-aes-gmac-{key_bits}"),
        EspSuite::Null(Integrity::HmacSha256_128) => "null-hmac-sha256-128".into(),
        EspSuite::Null(Integrity::HmacSha1_96) => "null-hmac-sha1-96".into(),
        EspSuite::AesCbc {
            key_bits,
            integrity,
        } => format!(
            "aes-cbc-{key_bits}-{}",
            match integrity {
                Integrity::HmacSha256_128 => "hmac-sha256-128",
                Integrity::HmacSha1_96 => "hmac-sha1-96",
            }
        ),
    }
}

/// ESP suites offered when encryption is guaranteed: AEAD first.
fn encrypting_suites() -> Vec<(EspSuite, bool)> {
    vec![
        (EspSuite::AesGcm16 { key_bits: 128 }, false),
        (EspSuite::AesGcm16 { key_bits: 256 }, false),
        (EspSuite::ChaCha20Poly1305, false),
        (
            EspSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha1_96,
            },
            false,
        ),
    ]
}

/// Windows' default quick mode offer (winsock-api §1.9): integrity-only ESP with SHA-1 first
/// (AH proposals become integrity-only ESP, which crosses UDP encapsulation), then ciphers.
fn default_suites() -> Vec<(EspSuite, bool)> {
    let mut v = vec![
        (EspSuite::Null(Integrity::HmacSha1_96), false),
        (EspSuite::Null(Integrity::HmacSha256_128), false),
    ];
    v.extend(encrypting_suites());
    v
}

/// Everything a responder accepts, preferring what the initiator offered first.
fn responder_suites() -> Vec<(EspSuite, bool)> {
    let mut v = encrypting_suites();
    v.extend([
        (
            EspSuite::AesCbc {
                key_bits: 256,
                integrity: Integrity::HmacSha256_128,
            },
            false,
        ),
        (
            EspSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha256_128,
            },
            false,
        ),
        (EspSuite::Null(Integrity::HmacSha1_96), false),
        (EspSuite::Null(Integrity::HmacSha256_128), false),
        (EspSuite::NullAuthAesGmac { key_bits: 128 }, false),
    ]);
    v
}

impl IpsecPath {
    /// Forgets every child SA pair of IKE SA `mm` (deleted, failed or refused).
    fn purge_sa(&mut self, mm: IkeSaId) {
        self.inb.retain(|_, i| i.mm != mm);
        for v in self.out.values_mut() {
            v.retain(|o| o.mm != mm);
        }
    }

    fn policy(&self, need: Option<&Need>) -> IkePolicy {
        let mut p = match &self.setup.credential {
            IpsecCredential::Certificate { id, cert } => {
                IkePolicy::certificate(id.clone(), cert.clone())
            }
            IpsecCredential::Psk { id, key, peers } => {
                let mut p = IkePolicy::psk(id.clone(), key.clone());
                p.peer_psks = peers
                    .iter()
                    .map(|k| (k.id.clone(), k.key.clone()))
                    .collect();
                p
            }
        };
        p.force_encap = true;
        p.ike_lifetime = self.setup.ike_lifetime;
        p.mode = self.setup.mode;
        p.replay_window = self.setup.replay_window;
        p.child_lifetime = self.setup.child_lifetime;
        p.esp_suites = match need {
            None => self
                .setup
                .responder_esp
                .clone()
                .unwrap_or_else(responder_suites),
            Some(_) if self.setup.esp_offer.is_some() => {
                self.setup.esp_offer.clone().unwrap_or_default()
            }
            Some(n) if n.encrypt => encrypting_suites(),
            Some(_) => default_suites(),
        };
        if let Some(n) = need {
            p.target_name = n.target.clone();
            p.user = n
                .user
                .as_ref()
                .map(|u| wsock_ipsec::ike::sa::UserCredential {
                    id: Identity::Rfc822(u.name.clone()),
                    proof: wsock_ipsec::ike::sa::UserProof::Password(u.password.clone()),
                });
        }
        p.ike_suites
            .retain(|s| s.dh != DhGroup::Curve25519 || need.is_none());
        if p.ike_suites.is_empty() {
            p = self.policy(None);
        }
        p
    }

    fn machine_of(&self, id: &Identity) -> Option<String> {
        let s = id.to_string().to_ascii_lowercase();
        let first = s.split('.').next().unwrap_or_default().to_string();
        self.setup
            .machines
            .get(&s)
            .or_else(|| self.setup.machines.get(&first))
            .cloned()
    }
}

impl HostCore {
    /// Turns IPsec on: the host answers IKE on its IKE and NAT-T sockets and protects what
    /// policy asks for. Without it, a packet that needs protection is dropped
    /// ([`DropReason::NoKeying`]).
    ///
    /// # Errors
    /// [`crate::StackError::Scenario`] when the IKE endpoint cannot be made (a bad credential).
    pub fn enable_ipsec(&mut self, setup: IpsecSetup) -> crate::Result<()> {
        let mut cfg = EndpointConfig::new(self.wires.ike, self.wires.natt);
        cfg.retransmit = setup.retransmit;
        cfg.keylog = setup.keylog;
        cfg.cookie_threshold = setup.cookie_threshold;
        let mut path = IpsecPath {
            setup,
            ike: IkeEndpoint::new(cfg.clone(), Box::new(SystemIkeRandom::new())).map_err(|e| {
                crate::StackError::Scenario(format!("host {:?}: IKE: {e}", self.spec.name))
            })?,
            negotiations: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            peer_ids: BTreeMap::new(),
            peer_users: BTreeMap::new(),
            ever_used: std::collections::BTreeSet::new(),
            qm_counts: BTreeMap::new(),
            child_pending: std::collections::BTreeSet::new(),
            out: BTreeMap::new(),
            inb: HashMap::new(),
            failures: BTreeMap::new(),
            next_qm: 1,
            successors: BTreeMap::new(),
            keylog: KeyLog::default(),
            esp_errors: BTreeMap::new(),
        };
        cfg.responder = Some(path.policy(None));
        if !path.setup.users.is_empty() {
            let mut d = wsock_ipsec::ike::sa::UserDirectory::new();
            for (name, pw) in &path.setup.users {
                d.insert(
                    Identity::Rfc822(name.clone()),
                    wsock_ipsec::ike::sa::UserSecret::Password(pw.clone()),
                );
            }
            cfg.user_directory = Some(d);
        }
        path.ike = IkeEndpoint::new(cfg, Box::new(SystemIkeRandom::new())).map_err(|e| {
            crate::StackError::Scenario(format!("host {:?}: IKE: {e}", self.spec.name))
        })?;
        self.ipsec = Some(Box::new(path));
        Ok(())
    }

    /// Forgets every SA locally without telling peers (what a peer's reboot or a lost SA
    /// looks like); traffic that needs protection negotiates again.
    pub fn forget_security_associations(&mut self) {
        if let Some(p) = self.ipsec.as_mut() {
            p.out.clear();
            p.inb.clear();
            p.by_peer.clear();
            p.negotiations.clear();
        }
    }

    /// The net events of the host's WFP engine (drops, IKE failures).
    pub fn net_events(&self) -> Vec<wsock_wfp::NetEvent> {
        self.ale.engine().net_events().cloned().collect()
    }

    /// Counters of the IPsec path (clear and ESP packets sent, downgrades refused).
    pub fn ipsec_counters(&self) -> IpsecCounters {
        self.ipsec_counters
    }

    /// The IKE endpoint's counters (retransmissions, cached responses, cookies, drops).
    pub fn ike_stats(&self) -> Option<wsock_ipsec::ike::sa::IkeStats> {
        self.ipsec.as_ref().map(|p| *p.ike.stats())
    }

    /// Turns IPsec off (the host stops answering IKE; what needs protection is dropped).
    pub fn disable_ipsec(&mut self) {
        self.ipsec = None;
    }

    /// Whether IPsec is on.
    pub fn ipsec_enabled(&self) -> bool {
        self.ipsec.is_some()
    }

    /// The SA database (IKE and child SAs), for views.
    pub fn security_associations(&self) -> SaDatabase {
        let Some(p) = &self.ipsec else {
            return SaDatabase::default();
        };
        let ike = p
            .ike
            .summaries()
            .into_iter()
            .map(|s| IkeSaView {
                mm_sa_id: s.id.0,
                role: format!("{:?}", s.role).to_ascii_lowercase(),
                state: format!("{:?}", s.state).to_ascii_lowercase(),
                spi_i: format!("{:016x}", s.spi_i),
                spi_r: format!("{:016x}", s.spi_r),
                peer_wire: s.peer,
                peer_id: s.peer_id.map(|i| i.to_string()),
                lifetime_seconds: s.lifetime.map(|d| d.as_secs()),
            })
            .collect();
        let mut child = Vec::new();
        for (peer, entries) in &p.out {
            for o in entries {
                let inb = p.inb.get(&o.inbound_spi);
                let (ip, ib) = inb.map_or((0, 0), |i| {
                    let (b, n) = i.sa.counters();
                    (n, b)
                });
                let (ob, op) = o.sa.counters();
                child.push(ChildSaView {
                    qm_sa_id: o.qm,
                    mm_sa_id: o.mm.0,
                    peer: *peer,
                    inbound_spi: o.inbound_spi,
                    outbound_spi: o.sa.config().spi,
                    suite: suite_name(o.sa.config().suite),
                    encrypted: o.encrypted,
                    mode: format!("{:?}", o.mode).to_ascii_lowercase(),
                    out_packets: op,
                    out_bytes: ob,
                    in_packets: ip,
                    in_bytes: ib,
                });
            }
        }
        child.sort_by_key(|c| c.qm_sa_id);
        SaDatabase { ike, child }
    }

    /// Key records (JSON lines in the format of the project's ESP oracle and Wireshark's UATs)
    /// of every SA negotiated so far, when [`IpsecSetup::keylog`] is on.
    pub fn key_log(&self) -> KeyLog {
        self.ipsec
            .as_ref()
            .map(|p| p.keylog.clone())
            .unwrap_or_default()
    }

    /// ESP packets dropped, by `ERROR_IPSEC_*` code (e.g. 13806 replay, 13807 integrity).
    pub fn esp_errors(&self) -> BTreeMap<u32, u64> {
        self.ipsec
            .as_ref()
            .map(|p| p.esp_errors.clone())
            .unwrap_or_default()
    }

    /// The (MM, QM) SA ids of the pair that protects traffic to `peer` for a flow last seen on
    /// pair `qm` under `mm`: that pair, the pair that replaced it, or, when that chain ends at a
    /// pair that is gone (e.g. the losing pair of a simultaneous rekey), the newest pair to the
    /// same peer (what its next packet would use). `None` when no pair to the peer exists.
    pub(crate) fn flow_pair(&self, mm: u64, qm: u64, peer: IpAddr) -> Option<(u64, u64)> {
        if let Some(f) = self.sa_facts(mm, qm) {
            return Some((f.mm_sa_id, f.qm_sa_id));
        }
        let p = self.ipsec.as_ref()?;
        p.out
            .get(&peer)?
            .iter()
            .filter(|o| o.pending.is_none())
            .max_by_key(|o| o.qm)
            .map(|o| (o.mm.0, o.qm))
    }

    /// Whether IKE SA `mm` is established.
    pub(crate) fn ike_sa_established(&self, mm: u64) -> bool {
        self.ipsec.as_ref().is_some_and(|p| {
            p.ike.sa_state(IkeSaId(mm)) == Some(wsock_ipsec::ike::sa::SaState::Established)
        })
    }

    /// The facts of the SA with QM id `qm`, if it still exists.
    pub fn sa_facts(&self, mm: u64, qm: u64) -> Option<SaFacts> {
        let p = self.ipsec.as_ref()?;
        // A pair that was rekeyed away reports the pair that protects the flow now.
        let mut qm = qm;
        let o = loop {
            if let Some(o) = p.out.values().flatten().find(|o| o.qm == qm) {
                break o;
            }
            qm = *p.successors.get(&qm)?;
        };
        let id = p.peer_ids.get(&IkeSaId(mm)).or(p.peer_ids.get(&o.mm));
        Some(SaFacts {
            mm_sa_id: o.mm.0,
            qm_sa_id: o.qm,
            encrypted: o.encrypted,
            peer_id: id.map(|i| i.to_string()),
            peer_machine: id.and_then(|i| p.machine_of(i)),
            peer_user: p
                .peer_users
                .get(&IkeSaId(mm))
                .or(p.peer_users.get(&o.mm))
                .map(|u| u.to_string()),
        })
    }

    /// The last negotiation failure towards `peer` (`ERROR_IPSEC_IKE_*`), if one is on record.
    pub fn negotiation_failure(&self, peer: IpAddr) -> Option<u32> {
        self.ipsec.as_ref()?.failures.get(&peer).map(|f| f.winerr)
    }

    /// What a flow's socket asked for: its `WSASetSocketSecurity` settings, its peer target
    /// name, and the filter's protection request.
    pub(crate) fn ipsec_need(
        &self,
        flow: Option<FlowId>,
        protection: Option<&wsock_ale::ProtectionRequest>,
        remote: IpAddr,
    ) -> Option<Need> {
        let info = flow.and_then(|f| self.ale.flow(f));
        let ep = info.as_ref().map(|i| i.endpoint);
        let settings = ep
            .and_then(|e| self.ale.security_settings(e).ok().flatten())
            .filter(|s| s.ipsec_flags & super::SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION == 0);
        let target = ep.and_then(|e| self.target_name_for(e, remote));
        let secured_before = info.as_ref().is_some_and(|i| i.security.qm_sa_id.is_some());
        let target = match settings {
            Some(s) if s.ipsec_flags & SETTINGS_IPSEC_OPTIONAL_PEER_NAME_VERIFICATION != 0 => None,
            _ => target,
        };
        let mut need = if let Some(s) = settings {
            Need {
                encrypt: s.flags & SETTINGS_GUARANTEE_ENCRYPTION != 0,
                target,
                clear_ok: s.flags & SETTINGS_ALLOW_INSECURE != 0,
                discover: false,
                policy_keys: (s.mm_policy_key, s.qm_policy_key),
                user: match (&s.user, &s.password) {
                    (Some(u), Some(pw)) => Some(UserLogon {
                        name: user_identity(u, s.domain.as_deref().unwrap_or(&self.spec.domain))
                            .to_string(),
                        password: pw.as_bytes().to_vec(),
                    }),
                    _ => None,
                },
            }
        } else {
            let p = protection?;
            if p.requires_security() {
                Need {
                    encrypt: p.requires_encryption(),
                    target,
                    clear_ok: false,
                    discover: false,
                    policy_keys: (None, None),
                    user: None,
                }
            } else if p.negotiate_discover() {
                Need {
                    encrypt: false,
                    target,
                    clear_ok: true,
                    discover: true,
                    policy_keys: (None, None),
                    user: None,
                }
            } else {
                return None;
            }
        };
        if let Some(p) = protection {
            need.encrypt |= p.requires_encryption();
            if p.requires_security() {
                need.clear_ok = false;
            }
        }
        if secured_before {
            need.clear_ok = false; // never downgrade a secured flow
            need.discover = false;
        }
        Some(need)
    }

    /// Egress: protect `packet` (a bare IP packet) if needed. `true`: the packet was taken
    /// (sent as ESP, held or dropped); `false`: it goes on in clear.
    pub(crate) fn ipsec_egress(
        &mut self,
        packet: &mut Vec<u8>,
        head: usize,
        summary: &IpSummary,
        flow: Option<FlowId>,
        need: Option<Need>,
    ) -> bool {
        let peer = summary.dst;
        let now = self.now;
        let Some(p) = self.ipsec.as_mut() else {
            if need.as_ref().is_some_and(|n| !n.clear_ok) {
                tracing::debug!(target: "wsock::ipsec", host = %self.spec.name, %peer, "protection required and IPsec is off: dropped");
                self.drops.bump(DropReason::NoKeying);
                return true;
            }
            return false;
        };
        // Traffic nobody asked to protect goes in clear, unless its flow was secured (a reply
        // on a flow whose peer negotiated: the responder's side of the SA).
        let flow_secured = flow
            .and_then(|f| self.ale.flow(f))
            .is_some_and(|i| i.security.qm_sa_id.is_some());
        if need.is_none() && !flow_secured {
            return false;
        }
        // An inbound flow answers the way its peer spoke: a flow whose packets arrived in clear
        // (allowed by ALLOW_INSECURE) is answered in clear, never over an SA the peer may have
        // just given up (e.g. after refusing our identity).
        let inbound_flow = flow
            .and_then(|f| self.ale.flow(f))
            .is_some_and(|i| i.direction == wsock_ale::Direction::Inbound);
        if inbound_flow && !flow_secured {
            if need.as_ref().is_none_or(|n| n.clear_ok) {
                return false;
            }
            self.drops.bump(DropReason::ClearTextDrop);
            return true;
        }
        // An SA to the peer that fits.
        let negotiations = &p.negotiations;
        let fits = |o: &OutEntry, n: Option<&Need>, ids: &BTreeMap<IkeSaId, Identity>| {
            n.is_none_or(|n| {
                (!n.encrypt || o.encrypted)
                    && n.target
                        .as_ref()
                        .is_none_or(|t| ids.get(&o.mm).is_some_and(|id| id.matches_target(t)))
                    // A socket with its own user needs an SA that user authenticated.
                    && n.user.as_ref().is_none_or(|u| {
                        negotiations
                            .get(&o.mm)
                            .and_then(|x| x.need.user.as_ref())
                            .is_some_and(|x| x.name.eq_ignore_ascii_case(&u.name) && x.password == u.password)
                    })
            }) && !o.sa.is_expired()
        };
        let chosen = p.out.get(&peer).and_then(|v| {
            v.iter()
                .rposition(|o| o.pending.is_none() && fits(o, need.as_ref(), &p.peer_ids))
                .or_else(|| v.iter().rposition(|o| fits(o, need.as_ref(), &p.peer_ids)))
        });
        if let Some(i) = chosen {
            let entry = &mut p.out.get_mut(&peer).expect("present")[i];
            let (mm, qm) = (entry.mm, entry.qm);
            let mut datagram = self.device.pool.take(packet.len() + 64);
            let bare = packet.get(head..).unwrap_or_default();
            let end = wire::ip_payload_end(bare, summary);
            let sealed = match entry.mode {
                Mode::Transport => {
                    let seg = bare.get(summary.transport_offset..end).unwrap_or_default();
                    entry.sa.seal(now, summary.protocol, seg, &mut datagram)
                }
                Mode::Tunnel => {
                    let nh = if summary.src.is_ipv4() { 4 } else { 41 };
                    entry.sa.seal(now, nh, &bare[..end], &mut datagram)
                }
            };
            let to = entry.peer_wire;
            match sealed {
                Ok(_) => {
                    self.ipsec_counters.esp_sent += 1;
                    let to_host = self
                        .routes
                        .get(peer)
                        .map(|r| r.host.clone())
                        .unwrap_or_else(|| Arc::from(""));
                    self.out.push_back(Transmit {
                        socket: WireSocket::NatT,
                        to,
                        to_host,
                        bytes: datagram,
                    });
                    if let Some(f) = flow {
                        self.note_flow_sa(f, mm, qm);
                    }
                }
                Err(e) => {
                    tracing::debug!(target: "wsock::ipsec", error = %e, "seal failed: dropped");
                    self.drops.bump(DropReason::Ipsec);
                }
            }
            return true;
        }
        let Some(need) = need else {
            return false;
        };
        // A failure on record: clear if allowed, else drop.
        if let Some(f) = p.failures.get(&peer) {
            if now.saturating_sub(f.at) < p.setup.failure_holddown && f.need == need {
                if need.clear_ok {
                    return false;
                }
                self.drops.bump(DropReason::HoldFailed);
                return true;
            }
        }
        // Only the side that opens a flow negotiates (as Windows: the connect, or the first
        // datagram, triggers main mode); an inbound flow is protected by the SA its peer
        // negotiated, or by nothing.
        let inbound = flow
            .and_then(|f| self.ale.flow(f))
            .is_some_and(|i| i.direction == wsock_ale::Direction::Inbound);
        if inbound {
            if need.clear_ok {
                return false;
            }
            self.drops.bump(DropReason::ClearTextDrop);
            return true;
        }
        let Some(p) = self.ipsec.as_mut() else {
            return true;
        };
        let hold_deadline = now + p.setup.hold_timeout;
        let running = p.by_peer.get(&peer).copied();
        // A new quick mode under an existing main mode SA of ours with the same needs, while
        // its quick mode limit allows.
        let host_limit = p.setup.quick_mode_limit.filter(|l| *l > 0);
        let reusable = if running.is_none() {
            let candidates: Vec<IkeSaId> = p
                .negotiations
                .iter()
                .filter(|(mm, n)| {
                    n.done
                        && n.peer_ip == peer
                        && n.need == need
                        && p.ike.sa_state(**mm) == Some(wsock_ipsec::ike::sa::SaState::Established)
                })
                .map(|(mm, _)| *mm)
                .collect();
            let within = candidates
                .iter()
                .rev()
                .find(|mm| {
                    let limit = match p.negotiations.get(mm).and_then(|n| n.qm_limit) {
                        Some(policy) => Some(policy).filter(|l| *l > 0),
                        None => host_limit,
                    };
                    limit.is_none_or(|l| p.qm_counts.get(mm).copied().unwrap_or(0) < l)
                })
                .copied();
            if within.is_none() && !candidates.is_empty() {
                // Every main mode SA reached its quick mode limit: a new one is negotiated.
                tracing::info!(target: "wsock::ipsec", %peer, "quick mode limit reached: new main mode SA");
                self.ike_failure_event(Some(peer), ERROR_IPSEC_IKE_QM_LIMIT, 1, true);
            }
            within
        } else {
            None
        };
        let Some(p) = self.ipsec.as_mut() else {
            return true;
        };
        let reused = match reusable {
            Some(mm) if p.ike.create_child(now, mm).is_ok() => {
                tracing::info!(target: "wsock::ipsec", %peer, %mm, "quick mode under the existing main mode SA");
                p.child_pending.insert(mm);
                p.by_peer.insert(peer, mm);
                self.ike_drain();
                Some(mm)
            }
            _ => None,
        };
        let mm = match running.or(reused) {
            Some(mm) => mm,
            None => {
                let traffic =
                    summary
                        .ports(packet.get(head..).unwrap_or_default())
                        .map(|(sp, dp)| {
                            (
                                summary.protocol,
                                SocketAddr::new(summary.src, sp),
                                SocketAddr::new(summary.dst, dp),
                            )
                        });
                match self.start_negotiation(peer, need.clone(), traffic) {
                    Ok(Some(mm)) => mm,
                    Ok(None) => {
                        self.drops.bump(DropReason::NoRoute);
                        return true;
                    }
                    Err(code) => {
                        self.record_failure(peer, need.clone(), code, 0);
                        if need.clear_ok {
                            return false;
                        }
                        self.drops.bump(DropReason::HoldFailed);
                        return true;
                    }
                }
            }
        };
        if need.discover {
            // Negotiation discovery: this packet goes in clear while main mode runs.
            return false;
        }
        let key = HoldKey(mm.0);
        let q = self.held.entry(key).or_default();
        if q.packets.len() >= super::path::HOLD_CAPACITY {
            self.drops.bump(DropReason::HoldOverflow);
        } else {
            packet.drain(..head);
            q.packets.push_back((std::mem::take(packet), hold_deadline));
        }
        true
    }

    pub(crate) fn note_flow_sa(&mut self, flow: FlowId, mm: IkeSaId, qm: u64) {
        if let Ok(cur) = self.ale.flow_security(flow) {
            if cur.mm_sa_id != Some(mm.0) || cur.qm_sa_id != Some(qm) {
                let _ = self.ale.set_flow_security(
                    flow,
                    wsock_ale::FlowSecurity {
                        mm_sa_id: Some(mm.0),
                        qm_sa_id: Some(qm),
                        negotiation_winerr: 0,
                    },
                );
            }
        }
    }

    /// The provider context `key` names, if it holds a policy of the wanted kind.
    fn context(&self, key: wsock_wfp::Guid) -> Option<wsock_wfp::ProviderContext> {
        self.ale
            .engine()
            .get_provider_context_by_key(self.admin, key)
            .ok()
    }

    /// Whether any filter lives at `layer` (then policy there is authoritative).
    fn layer_has_policy(&self, layer: wsock_wfp::Layer) -> bool {
        let t = wsock_wfp::FilterEnumTemplate {
            layer: Some(layer),
            ..Default::default()
        };
        self.ale
            .engine()
            .enum_filters(self.admin, &t)
            .is_ok_and(|f| !f.is_empty())
    }

    /// Main mode and quick mode policy for a negotiation, from the socket's policy keys or the
    /// IKEEXT and IPSEC layers; `None` = the built-in default. `Err`: the `ERROR_IPSEC_IKE_*`.
    #[allow(clippy::type_complexity)]
    fn wfp_policies(
        &mut self,
        local: IpAddr,
        peer: IpAddr,
        traffic: Option<(u8, SocketAddr, SocketAddr)>,
        need: &Need,
    ) -> Result<
        (
            Option<wsock_wfp::IkeMmPolicy>,
            Option<wsock_wfp::IpsecQmPolicy>,
        ),
        u32,
    > {
        use super::ipsec_policy::{ERROR_IPSEC_IKE_NO_MM_POLICY, ERROR_IPSEC_IKE_NO_POLICY};
        let now = self.now;
        let v6 = peer.is_ipv6();
        let mm_key = match need.policy_keys.0 {
            Some(k) => Some(k),
            None => match self.ale.ikeext_policy(local, peer, now) {
                Some(m) => Some(m.provider_context),
                None => {
                    let layer = if v6 {
                        wsock_wfp::Layer::IKEEXT_V6
                    } else {
                        wsock_wfp::Layer::IKEEXT_V4
                    };
                    if self.layer_has_policy(layer) {
                        return Err(ERROR_IPSEC_IKE_NO_MM_POLICY);
                    }
                    None
                }
            },
        };
        let mm = match mm_key {
            Some(k) => Some(
                self.context(k)
                    .and_then(|c| c.ike_mm_policy().cloned())
                    .ok_or(ERROR_IPSEC_IKE_NO_MM_POLICY)?,
            ),
            None => None,
        };
        let qm_key = match need.policy_keys.1 {
            Some(k) => Some(k),
            None => {
                let found = traffic.and_then(|(proto, l, r)| {
                    let proto = match proto {
                        6 => wsock_ale::Protocol::Tcp,
                        _ => wsock_ale::Protocol::Udp,
                    };
                    self.ale.ipsec_policy(proto, l, r, now)
                });
                match found {
                    Some(m) => Some(m.provider_context),
                    None => {
                        let layer = if v6 {
                            wsock_wfp::Layer::IPSEC_V6
                        } else {
                            wsock_wfp::Layer::IPSEC_V4
                        };
                        if self.layer_has_policy(layer) {
                            return Err(ERROR_IPSEC_IKE_NO_POLICY);
                        }
                        None
                    }
                }
            }
        };
        let qm = match qm_key {
            Some(k) => Some(
                self.context(k)
                    .and_then(|c| c.ipsec_qm_policy().cloned())
                    .ok_or(ERROR_IPSEC_IKE_NO_POLICY)?,
            ),
            None => None,
        };
        Ok((mm, qm))
    }

    /// Records a failure that happened before any message was sent (no policy).
    /// Records an IKE failure net event (`IkeMmFailure`, or `IkeQmFailure` with `quick_mode`):
    /// `point` is `IPSEC_FAILURE_POINT` (0 none, 1 me, 2 peer); `peer`, when known, fills the
    /// header's addresses (the IKE port role).
    fn ike_failure_event(&mut self, peer: Option<IpAddr>, code: u32, point: u32, quick_mode: bool) {
        let header = match peer {
            Some(peer) => {
                let local = if peer.is_ipv4() {
                    IpAddr::V4(self.spec.ipv4)
                } else {
                    IpAddr::V6(self.spec.ipv6)
                };
                NetEventHeader {
                    protocol: 17,
                    local: Some(SocketAddr::new(local, 500)),
                    remote: Some(SocketAddr::new(peer, 500)),
                    app_id: None,
                    user_id: None,
                }
            }
            None => NetEventHeader {
                protocol: 17,
                ..NetEventHeader::default()
            },
        };
        let kind = if quick_mode {
            NetEventKind::IkeQmFailure {
                failure_error_code: code,
                failure_point: point,
                qm_filter_id: 0,
            }
        } else {
            NetEventKind::IkeMmFailure {
                failure_error_code: code,
                failure_point: point,
                mm_filter_id: 0,
            }
        };
        let now = self.now;
        self.ale.engine_mut().record_net_event(now, header, kind);
    }

    /// A negotiation towards `peer` failed (or could not start, `point` 0): the failure is
    /// remembered for the hold-down, recorded as a net event, and every flow to that peer that
    /// waited records the reason (NegotiationWinerr).
    fn record_failure(&mut self, peer: IpAddr, need: Need, code: u32, point: u32) {
        let now = self.now;
        tracing::info!(target: "wsock::ipsec", host = %self.spec.name, %peer, code, "negotiation failed or had no policy");
        if let Some(p) = self.ipsec.as_mut() {
            p.failures.insert(
                peer,
                Failure {
                    winerr: code,
                    at: now,
                    need,
                },
            );
        }
        self.ike_failure_event(Some(peer), code, point, false);
        let flows: Vec<FlowId> = self
            .ale
            .flows()
            .filter(|f| f.remote.ip() == peer && f.security.qm_sa_id.is_none())
            .map(|f| f.id)
            .collect();
        for f in flows {
            let _ = self.ale.set_flow_security(
                f,
                wsock_ale::FlowSecurity {
                    mm_sa_id: None,
                    qm_sa_id: None,
                    negotiation_winerr: code,
                },
            );
        }
    }

    fn start_negotiation(
        &mut self,
        peer: IpAddr,
        need: Need,
        traffic: Option<(u8, SocketAddr, SocketAddr)>,
    ) -> Result<Option<IkeSaId>, u32> {
        use super::ipsec_policy as map;
        let Some(route) = self.routes.get(peer).cloned() else {
            return Ok(None);
        };
        let local = match peer {
            IpAddr::V4(_) => IpAddr::V4(self.spec.ipv4),
            IpAddr::V6(_) => IpAddr::V6(self.spec.ipv6),
        };
        let (mm, qm) = self.wfp_policies(local, peer, traffic, &need)?;
        let now = self.now;
        let Some(p) = self.ipsec.as_mut() else {
            return Ok(None);
        };
        let mut policy = p.policy(Some(&need));
        if let IpsecCredential::Psk { peers, .. } = &p.setup.credential {
            if let Some(k) = peers.iter().find(|k| k.addrs.contains(&peer)) {
                policy.psk = k.key.clone();
            }
        }
        let mut qm_limit = None;
        if let Some(mm) = &mm {
            policy.ike_suites = map::ike_suites(mm);
            if policy.ike_suites.is_empty() {
                return Err(map::ERROR_IPSEC_IKE_NO_MM_POLICY);
            }
            if let Some((lifetime, limit)) = map::mm_terms(mm) {
                if !lifetime.is_zero() {
                    policy.ike_lifetime = Some(lifetime);
                }
                // The policy's word, 0 = unlimited, wins over the host's knob.
                qm_limit = Some(limit.unwrap_or(0));
            }
        }
        if let Some(qm) = &qm {
            let mut suites = map::esp_suites(qm);
            if need.encrypt {
                suites.retain(|(s, _)| suite_encrypts(*s));
            }
            if suites.is_empty() {
                return Err(map::ERROR_IPSEC_IKE_NO_POLICY);
            }
            policy.esp_suites = suites;
            if let Some(l) = map::child_lifetime(qm) {
                policy.child_lifetime = l;
            }
            policy.pfs = map::pfs(qm, policy.ike_suites[0].dh);
        }
        policy.local_ts = vec![host_selector(local)];
        policy.remote_ts = vec![host_selector(peer)];
        match p
            .ike
            .connect(now, route.wires.ike, Some(route.wires.natt), policy)
        {
            Ok(mm) => {
                tracing::info!(target: "wsock::ipsec", host = %self.spec.name, %peer, %mm, encrypt = need.encrypt, target = ?need.target, "negotiating main mode and quick mode");
                p.negotiations.insert(
                    mm,
                    Negotiation {
                        peer_ip: peer,
                        need,
                        qm_limit,
                        done: false,
                    },
                );
                p.by_peer.insert(peer, mm);
                self.ike_drain();
                Ok(Some(mm))
            }
            Err(e) => {
                tracing::warn!(target: "wsock::ipsec", error = %e, "cannot start IKE");
                Err(e.win32_code())
            }
        }
    }

    /// Ingress on the IKE or NAT-T socket. `None`: consumed or dropped; `Some`: an inner
    /// packet with its metadata.
    pub(crate) fn ipsec_wire_datagram(
        &mut self,
        socket: WireSocket,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<(Vec<u8>, IngressMeta)> {
        let now = self.now;
        let Some(p) = self.ipsec.as_mut() else {
            self.drops.bump(DropReason::NoKeying);
            return None;
        };
        let isock = ike_socket(socket)?;
        if socket == WireSocket::Ike {
            p.ike.handle_datagram(now, from, isock, bytes);
            self.ike_drain();
            return None;
        }
        match natt::classify(bytes) {
            Ok(NattDatagram::Keepalive) => None,
            Ok(NattDatagram::Ike(_)) => {
                p.ike.handle_datagram(now, from, isock, bytes);
                self.ike_drain();
                None
            }
            Ok(NattDatagram::Esp { spi, .. }) => {
                let Some(entry) = p.inb.get_mut(&spi) else {
                    *p.esp_errors
                        .entry(IpsecError::BadSpi { spi }.win32_code())
                        .or_default() += 1;
                    self.drops.bump(DropReason::Ipsec);
                    return None;
                };
                let mut buf = self.device.pool.take(bytes.len());
                buf.extend_from_slice(bytes);
                let (next_header, payload) = match entry.sa.open(now, &mut buf) {
                    Ok(o) => (o.next_header, o.payload.to_vec()),
                    Err(e) => {
                        tracing::debug!(target: "wsock::ipsec", host = %self.spec.name, spi, error = %e, "ESP packet dropped");
                        *p.esp_errors.entry(e.win32_code()).or_default() += 1;
                        self.drops.bump(DropReason::Ipsec);
                        return None;
                    }
                };
                let (mm, qm, peer_ip, local_ip, mode) = (
                    entry.mm,
                    entry.qm,
                    entry.peer_ip,
                    entry.local_ip,
                    entry.mode,
                );
                let peer_identity = p.peer_ids.get(&mm).map(|i| Arc::from(i.to_string()));
                let packet = match mode {
                    Mode::Tunnel => {
                        if next_header == 59 {
                            return None; // dummy packet (RFC 4303 §2.6)
                        }
                        // The inbound selector check (RFC 4301 §5.2): the inner packet must
                        // be between the SA's peer and us; TFC padding past its length goes.
                        let mut payload = payload;
                        match IpSummary::parse(&payload) {
                            Ok(inner) if inner.src == peer_ip && inner.dst == local_ip => {
                                let end = wire::ip_payload_end(&payload, &inner);
                                payload.truncate(end);
                            }
                            _ => {
                                tracing::debug!(target: "wsock::ipsec", spi, "tunnel packet outside the SA's selectors: dropped");
                                self.drops.bump(DropReason::Ipsec);
                                return None;
                            }
                        }
                        payload
                    }
                    Mode::Transport => {
                        let mut pk = Vec::with_capacity(payload.len() + 40);
                        if wire::emit_ip_header(
                            peer_ip,
                            local_ip,
                            next_header,
                            payload.len(),
                            &mut pk,
                        )
                        .is_err()
                        {
                            self.drops.bump(DropReason::Malformed);
                            return None;
                        }
                        pk.extend_from_slice(&payload);
                        pk
                    }
                };
                self.device.pool.give(buf);
                self.ipsec_ingress_sa = Some((mm, qm));
                if p.ever_used.len() < 4096 {
                    p.ever_used.insert(mm);
                }
                // The peer sends on a pair we answered its rekey with: it has installed it.
                if let Some(list) = p.out.get_mut(&peer_ip) {
                    if let Some(old) = list
                        .iter_mut()
                        .find(|o| o.inbound_spi == spi)
                        .and_then(|o| o.pending.take())
                    {
                        list.retain(|o| o.inbound_spi != old);
                    }
                }
                Some((
                    packet,
                    IngressMeta {
                        socket,
                        from,
                        sa_spi: Some(spi),
                        peer_identity,
                    },
                ))
            }
            Err(_) => {
                self.drops.bump(DropReason::Malformed);
                None
            }
        }
    }

    /// Moves what the IKE endpoint produced (datagrams, events) into the core.
    pub(crate) fn ike_drain(&mut self) {
        let now = self.now;
        loop {
            let Some(p) = self.ipsec.as_mut() else {
                return;
            };
            while let Some(t) = p.ike.poll_transmit(now) {
                let to_host = self
                    .routes
                    .host_of_wire(t.destination)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""));
                self.out.push_back(Transmit {
                    socket: stack_socket(t.socket),
                    to: t.destination,
                    to_host,
                    bytes: t.contents,
                });
            }
            let Some(ev) = p.ike.poll_event() else {
                break;
            };
            self.ike_event(ev);
        }
        self.check_sa_watches();
    }

    fn ike_event(&mut self, ev: IkeEvent) {
        let now = self.now;
        let host = self.spec.name.clone();
        let Some(p) = self.ipsec.as_mut() else {
            return;
        };
        match ev {
            IkeEvent::IkeSaEstablished {
                sa,
                role,
                peer_id,
                peer_user,
                ..
            } => {
                if let Some(u) = peer_user {
                    tracing::info!(target: "wsock::ipsec", host = %host, mm = %sa, user = %u, "peer user authenticated (RFC 4739)");
                    p.peer_users.insert(sa, u);
                }
                if role == wsock_ipsec::ike::crypto::Role::Responder {
                    // FWPM_LAYER_KM_AUTHORIZATION: may this authenticated peer have an SA?
                    let machine = p
                        .machine_of(&peer_id)
                        .unwrap_or_else(|| peer_id.to_string());
                    let mut groups = vec![
                        format!("{}\\{machine}$", self.spec.domain),
                        peer_id.to_string(),
                    ];
                    if let Some(u) = p.peer_users.get(&sa) {
                        groups.push(u.to_string());
                    }
                    let mut v = wsock_wfp::IncomingValues::new();
                    v.set(
                        wsock_wfp::Field::REMOTE_ID,
                        wsock_wfp::FwpValue::token(wsock_wfp::Token {
                            user: machine,
                            groups,
                        }),
                    );
                    let r = self
                        .ale
                        .engine()
                        .classify(wsock_wfp::Layer::KM_AUTHORIZATION, &v);
                    if r.is_block() {
                        tracing::info!(target: "wsock::ipsec", host = %host, mm = %sa, peer = %peer_id, "KM_AUTHORIZATION refused the peer: SA deleted (13905)");
                        if let Some(p) = self.ipsec.as_mut() {
                            let _ = p.ike.delete_ike_sa(now, sa);
                            p.purge_sa(sa);
                        }
                        self.ike_failure_event(
                            None,
                            ERROR_IPSEC_IKE_AUTHORIZATION_FAILURE,
                            1,
                            false,
                        );
                        self.refused_sas.insert(sa);
                        return;
                    }
                }
                let Some(p) = self.ipsec.as_mut() else {
                    return;
                };
                tracing::info!(target: "wsock::ipsec", host = %host, mm = %sa, ?role, peer = %peer_id, "main mode SA established");
                if p.setup.keylog {
                    if let Some(line) = p.ike.ike_key_record(sa).and_then(|r| r.json()) {
                        p.keylog.ikev2.push(line);
                    }
                }
                p.peer_ids.insert(sa, peer_id);
            }
            IkeEvent::ChildSaReady(child) => self.install_child(*child),
            IkeEvent::ChildSaFailed { sa, error } => {
                let code = error.win32_code();
                tracing::info!(target: "wsock::ipsec", host = %host, mm = %sa, error = %error, code, "quick mode failed");
                if p.child_pending.remove(&sa) {
                    // Our CREATE_CHILD_SA under an existing main mode SA failed: what waited
                    // on it is dropped; the main mode SA and its other pairs go on.
                    p.by_peer.retain(|_, m| *m != sa);
                    self.fail_held(HoldKey(sa.0));
                } else {
                    self.negotiation_failed(sa, code);
                }
            }
            IkeEvent::Failed { sa, error } => {
                let code = error.win32_code();
                tracing::info!(target: "wsock::ipsec", host = %host, mm = %sa, error = %error, code, "negotiation failed");
                {
                    // The SA is gone (e.g. the initiator refused our identity after we
                    // installed our side of the child SA): its child SAs go with it.
                    p.purge_sa(sa);
                    p.peer_ids.remove(&sa);
                }
                self.negotiation_failed(sa, code);
            }
            IkeEvent::ChildSaDeleted { inbound_spi, .. } => {
                p.inb.remove(&inbound_spi);
                for v in p.out.values_mut() {
                    v.retain(|o| o.inbound_spi != inbound_spi);
                }
            }
            IkeEvent::IkeSaDeleted { sa, by_peer } => {
                let refused = by_peer
                    && p.negotiations
                        .get(&sa)
                        .is_some_and(|n| n.done && !p.ever_used.contains(&sa));
                if refused {
                    // The responder took the SA back before any traffic used it: its
                    // authorization (KM_AUTHORIZATION) refused us.
                    if let Some(n) = p.negotiations.get_mut(&sa) {
                        n.done = false;
                    }
                    self.negotiation_failed(sa, ERROR_IPSEC_IKE_AUTHORIZATION_FAILURE);
                    let Some(p) = self.ipsec.as_mut() else {
                        return;
                    };
                    p.purge_sa(sa);
                    return;
                }
                p.purge_sa(sa);
                p.peer_ids.remove(&sa);
                if let Some(n) = p.negotiations.remove(&sa) {
                    if p.by_peer.get(&n.peer_ip) == Some(&sa) {
                        p.by_peer.remove(&n.peer_ip);
                    }
                }
            }
            IkeEvent::IkeSaRekeyed { old, new } => {
                if let Some(id) = p.peer_ids.get(&old).cloned() {
                    p.peer_ids.insert(new, id);
                }
                if let Some(u) = p.peer_users.get(&old).cloned() {
                    p.peer_users.insert(new, u);
                }
                for i in p.inb.values_mut().filter(|i| i.mm == old) {
                    i.mm = new;
                }
                for o in p.out.values_mut().flatten().filter(|o| o.mm == old) {
                    o.mm = new;
                }
            }
            _ => {}
        }
        let _ = now;
    }

    fn install_child(&mut self, mut child: ChildSa) {
        if self.refused_sas.contains(&child.ike_sa) {
            return;
        }
        if child.role == wsock_ipsec::ike::crypto::Role::Responder {
            // The side that answered the exchange that made a pair rekeys it later than the
            // side that asked (halfway between the soft and the hard limit), so that the two
            // do not rekey the same pair at the same moment (EMULATOR CHOICE).
            later_soft_limits(&mut child.outbound.lifetime);
            later_soft_limits(&mut child.inbound.lifetime);
        }
        let now = self.now;
        let host = self.spec.name.clone();
        let local_v4 = IpAddr::V4(self.spec.ipv4);
        let local_v6 = IpAddr::V6(self.spec.ipv6);
        let Some(p) = self.ipsec.as_mut() else {
            return;
        };
        let peer_ip = p
            .negotiations
            .get(&child.ike_sa)
            .map(|n| n.peer_ip)
            .or_else(|| {
                child.remote_ts.first().map(|ts| match ts.addresses {
                    AddressRange::V4(a, _) => IpAddr::V4(a),
                    AddressRange::V6(a, _) => IpAddr::V6(a),
                })
            });
        let Some(peer_ip) = peer_ip else {
            return;
        };
        let local_ip = if peer_ip.is_ipv4() {
            local_v4
        } else {
            local_v6
        };
        let (out_sa, in_sa) = match (child.outbound_sa(now), child.inbound_sa(now)) {
            (Ok(o), Ok(i)) => (o, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(target: "wsock::ipsec", error = %e, "child SA cannot be installed");
                return;
            }
        };
        let qm = p.next_qm;
        p.next_qm += 1;
        if let Some(old_qm) = child.replaces.and_then(|old| p.inb.get(&old)).map(|i| i.qm) {
            p.successors.insert(old_qm, qm);
            while p.successors.len() > MAX_SUCCESSOR_LINKS {
                p.successors.pop_first();
            }
        }
        let encrypted = suite_encrypts(child.outbound.suite);
        tracing::info!(target: "wsock::ipsec", host = %host, mm = %child.ike_sa, qm, peer = %peer_ip, spi_in = format_args!("{:08x}", child.inbound.spi), spi_out = format_args!("{:08x}", child.outbound.spi), suite = %suite_name(child.outbound.suite), mode = ?child.mode, "quick mode SA ready");
        if p.setup.keylog {
            for r in child.esp_key_records(self.wires.natt.ip()) {
                if let Some(line) = r.json() {
                    p.keylog.esp_sa.push(line);
                }
            }
        }
        p.inb.insert(
            child.inbound.spi,
            InEntry {
                sa: in_sa,
                mm: child.ike_sa,
                qm,
                peer_ip,
                local_ip,
                mode: child.mode,
            },
        );
        let list = p.out.entry(peer_ip).or_default();
        let wait =
            child.role == wsock_ipsec::ike::crypto::Role::Responder && child.replaces.is_some();
        let pending = if wait { child.replaces } else { None };
        if let (Some(old), false) = (child.replaces, wait) {
            list.retain(|o| o.inbound_spi != old);
        }
        list.push(OutEntry {
            activity: (0, now),
            pending,
            sa: out_sa,
            mm: child.ike_sa,
            qm,
            inbound_spi: child.inbound.spi,
            encrypted,
            peer_wire: child.peer,
            mode: child.mode,
        });
        let unfit = p
            .negotiations
            .get(&child.ike_sa)
            .is_some_and(|n| !n.done && n.need.encrypt && !encrypted);
        if unfit {
            // The peer chose an integrity-only suite we offered, but this negotiation was for
            // encrypted traffic: a policy mismatch, not an SA to use (else every packet would
            // start another negotiation).
            let code = IpsecError::IkeNoProposalChosen.win32_code();
            tracing::info!(target: "wsock::ipsec", host = %host, mm = %child.ike_sa, code, "quick mode SA without a cipher where encryption is guaranteed: refused");
            self.negotiation_failed(child.ike_sa, code);
            return;
        }
        let Some(p) = self.ipsec.as_mut() else {
            return;
        };
        *p.qm_counts.entry(child.ike_sa).or_default() += 1;
        let asked = child.replaces.is_none() && p.child_pending.remove(&child.ike_sa);
        let first_child = p
            .negotiations
            .get_mut(&child.ike_sa)
            .is_some_and(|n| !std::mem::replace(&mut n.done, true))
            || asked;
        if first_child {
            p.failures.remove(&peer_ip);
            if p.by_peer.get(&peer_ip) == Some(&child.ike_sa) {
                p.by_peer.remove(&peer_ip);
            }
            let released = self.release_held(HoldKey(child.ike_sa.0), now);
            tracing::debug!(target: "wsock::ipsec", released, "held packets released");
        }
    }

    fn negotiation_failed(&mut self, mm: IkeSaId, winerr: u32) {
        let now = self.now;
        let Some(p) = self.ipsec.as_mut() else {
            return;
        };
        if p.negotiations.get(&mm).is_none_or(|n| n.done) {
            // A responder SA, or a rekey or extra child SA of an established one: nothing
            // waits on it, and the SAs it has keep working. A responder still records the
            // failure (Windows logs IKE failures on both sides).
            if !p.negotiations.contains_key(&mm) {
                self.ike_failure_event(None, winerr, 2, false);
            }
            return;
        }
        let Some(n) = p.negotiations.remove(&mm) else {
            return;
        };
        if p.by_peer.get(&n.peer_ip) == Some(&mm) {
            p.by_peer.remove(&n.peer_ip);
        }
        self.record_failure(n.peer_ip, n.need.clone(), winerr, 1);
        if n.need.clear_ok {
            // ALLOW_INSECURE / negotiation discovery: what waited goes in clear.
            self.release_held(HoldKey(mm.0), now);
        } else {
            self.fail_held(HoldKey(mm.0));
        }
    }

    /// IPsec timers: IKE retransmissions and lifetimes, ESP SA lifetimes (soft: rekey; hard:
    /// remove).
    pub(crate) fn ipsec_timeout(&mut self, now: Duration) {
        let Some(p) = self.ipsec.as_mut() else {
            return;
        };
        if p.ike.poll_timeout().is_some_and(|t| t <= now) {
            p.ike.handle_timeout(now);
        }
        let mut rekey = Vec::new();
        let live: std::collections::BTreeSet<u64> =
            p.out.values().flatten().map(|o| o.qm).collect();
        for o in p.out.values_mut().flatten() {
            if o.sa.poll_timeout().is_some_and(|t| t <= now) {
                o.sa.handle_timeout(now);
            }
            while let Some(ev) = o.sa.poll_event() {
                // A pair already replaced by a live pair (the peer rekeyed it first) is not
                // rekeyed again.
                let replaced = p.successors.get(&o.qm).is_some_and(|n| live.contains(n));
                if matches!(ev, SaEvent::SoftExpired(_)) && !replaced {
                    rekey.push((o.mm, o.inbound_spi));
                }
            }
        }
        for i in p.inb.values_mut() {
            if i.sa.poll_timeout().is_some_and(|t| t <= now) {
                i.sa.handle_timeout(now);
            }
            while i.sa.poll_event().is_some() {}
        }
        for (mm, spi) in rekey {
            let _ = p.ike.rekey_child(now, mm, spi);
        }
        // Idle pairs: no packet either way for the idle timeout.
        if let Some(idle) = p.setup.idle_timeout {
            let mut idle_pairs = Vec::new();
            for o in p.out.values_mut().flatten() {
                let n =
                    o.sa.counters().1 + p.inb.get(&o.inbound_spi).map_or(0, |i| i.sa.counters().1);
                if n != o.activity.0 {
                    o.activity = (n, now);
                } else if now.saturating_sub(o.activity.1) >= idle {
                    idle_pairs.push((o.mm, o.inbound_spi));
                }
            }
            for (mm, spi) in idle_pairs {
                tracing::info!(target: "wsock::ipsec", mm = %mm, spi = format_args!("{spi:08x}"), "idle quick mode SA deleted");
                let _ = p.ike.delete_child(now, mm, spi);
                p.inb.remove(&spi);
                for v in p.out.values_mut() {
                    v.retain(|o| o.inbound_spi != spi);
                }
            }
        }
        for v in p.out.values_mut() {
            v.retain(|o| !o.sa.is_expired());
        }
        p.inb.retain(|_, i| !i.sa.is_expired());
        self.ike_drain();
    }

    /// Rekeys triggered by traffic (byte lifetimes) are checked after each sealed packet
    /// batch; this is the time-based deadline of the IPsec state.
    pub(crate) fn ipsec_poll_timeout(&self) -> Option<Duration> {
        let p = self.ipsec.as_ref()?;
        let mut next = p.ike.poll_timeout();
        for o in p.out.values().flatten() {
            let idle = p.setup.idle_timeout.map(|i| o.activity.1 + i);
            for t in [o.sa.poll_timeout(), idle].into_iter().flatten() {
                next = Some(next.map_or(t, |n: Duration| n.min(t)));
            }
        }
        next
    }

    /// Soft byte lifetimes reached while sealing: rekey now.
    pub(crate) fn ipsec_after_traffic(&mut self) {
        let now = self.now;
        let Some(p) = self.ipsec.as_mut() else {
            return;
        };
        let mut rekey = Vec::new();
        let live: std::collections::BTreeSet<u64> =
            p.out.values().flatten().map(|o| o.qm).collect();
        for o in p.out.values_mut().flatten() {
            while let Some(ev) = o.sa.poll_event() {
                // A pair already replaced by a live pair (the peer rekeyed it first) is not
                // rekeyed again.
                let replaced = p.successors.get(&o.qm).is_some_and(|n| live.contains(n));
                if matches!(ev, SaEvent::SoftExpired(_)) && !replaced {
                    rekey.push((o.mm, o.inbound_spi));
                }
            }
        }
        if rekey.is_empty() {
            return;
        }
        for (mm, spi) in rekey {
            let _ = p.ike.rekey_child(now, mm, spi);
        }
        self.ike_drain();
    }

    /// Records `ERROR_IPSEC_CLEAR_TEXT_DROP` (an IPsec kernel-drop net event) for a clear
    /// packet policy wanted protected.
    pub(crate) fn clear_text_drop_event(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        protocol: u8,
    ) {
        let now = self.now;
        let layer = if local.is_ipv4() {
            wsock_wfp::Layer::INBOUND_TRANSPORT_V4
        } else {
            wsock_wfp::Layer::INBOUND_TRANSPORT_V6
        };
        self.ale.engine_mut().record_net_event(
            now,
            NetEventHeader {
                protocol,
                local: Some(local),
                remote: Some(remote),
                app_id: None,
                user_id: None,
            },
            NetEventKind::IpsecKernelDrop {
                failure_status: ERROR_IPSEC_CLEAR_TEXT_DROP,
                spi: 0,
                filter_id: 0,
                layer,
            },
        );
    }

    /// What the SA of the inbound packet being processed says about its peer: the machine as a
    /// WFP token (name, `DOMAIN\NAME$`, identity) for `ALE_REMOTE_MACHINE_ID`, after a
    /// user-level authentication the user (`user@DOMAIN`, `DOMAIN\user`) for
    /// `ALE_REMOTE_USER_ID`, and whether the SA encrypts.
    pub(crate) fn ingress_peer_with_user(
        &self,
    ) -> Option<(wsock_wfp::Token, Option<wsock_wfp::Token>, bool)> {
        let (mm, qm) = self.ipsec_ingress_sa?;
        let f = self.sa_facts(mm.0, qm)?;
        let user = f.peer_user.as_ref().map(|u| {
            let (name, domain) = u.split_once('@').unwrap_or((u.as_str(), ""));
            wsock_wfp::Token {
                user: format!("{domain}\\{name}"),
                groups: vec![u.clone(), name.to_string()],
            }
        });
        let machine = f.peer_machine.clone().or(f.peer_id.clone())?;
        let mut groups = vec![format!("{}\\{machine}$", self.spec.domain)];
        if let Some(id) = f.peer_id {
            groups.push(id);
        }
        Some((
            wsock_wfp::Token {
                user: machine,
                groups,
            },
            user,
            f.encrypted,
        ))
    }

    /// A connection is closing: its packets still in flight (queued data, FIN) keep the
    /// protection the flow had after ALE forgets it.
    pub(crate) fn ipsec_remember_closing(&mut self, flow: FlowId) {
        let Some(info) = self.ale.flow(flow) else {
            return;
        };
        let secured = info.security.qm_sa_id.is_some();
        let need = self
            .ipsec_need(Some(flow), info.protection.as_ref(), info.remote.ip())
            .or(secured.then_some(Need {
                encrypt: false,
                target: None,
                clear_ok: false,
                discover: false,
                policy_keys: (None, None),
                user: None,
            }));
        if let Some(mut n) = need {
            if secured {
                n.clear_ok = false;
                n.discover = false;
            }
            let until = self.now + super::ORPHAN_LINGER;
            self.closing_needs
                .insert((info.local, info.remote), (n, until));
        }
    }

    /// What a packet of a closed connection needs, if its flow needed protection.
    pub(crate) fn closing_need(&self, local: SocketAddr, remote: SocketAddr) -> Option<Need> {
        // A socket bound to the wildcard address knows its flows by that address.
        let wildcard = SocketAddr::new(
            match local.ip() {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            },
            local.port(),
        );
        [local, wildcard]
            .iter()
            .find_map(|l| self.closing_needs.get(&(*l, remote)))
            .filter(|(_, until)| *until > self.now)
            .map(|(n, _)| n.clone())
    }

    /// Whether a clear inbound packet of `flow` must be refused: its socket's settings or its
    /// filter require IPsec.
    pub(crate) fn refuse_clear(
        &self,
        flow: Option<FlowId>,
        protection: Option<&wsock_ale::ProtectionRequest>,
        remote: IpAddr,
    ) -> bool {
        self.ipsec_need(flow, protection, remote)
            .is_some_and(|n| !n.clear_ok)
    }

    /// Whether a clear connection request to the socket of ALE endpoint `ep` must be refused
    /// (its `WSASetSocketSecurity` settings lack `ALLOW_INSECURE`).
    pub(crate) fn endpoint_refuses_clear(&self, ep: wsock_ale::EndpointId) -> bool {
        self.ale
            .security_settings(ep)
            .ok()
            .flatten()
            .is_some_and(|s| {
                s.flags & SETTINGS_ALLOW_INSECURE == 0
                    && s.ipsec_flags & super::SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION == 0
            })
    }

    /// Whether the negotiation towards `peer` failed for a flow that waits (a connect that
    /// must now fail).
    pub(crate) fn ipsec_connect_failure(
        &self,
        flow: Option<FlowId>,
        started: Duration,
    ) -> Option<crate::StackError> {
        let p = self.ipsec.as_ref()?;
        let info = self.ale.flow(flow?)?;
        if info.security.negotiation_winerr == 0 || info.security.qm_sa_id.is_some() {
            return None;
        }
        let f = p.failures.get(&info.remote.ip())?;
        if f.need.clear_ok {
            return None;
        }
        match p.setup.failure_errno {
            FailureErrno::AccessDenied => Some(crate::StackError::AccessDenied(
                crate::error::Denial::Ipsec(f.winerr),
            )),
            FailureErrno::Timeout => (self.now.saturating_sub(started) >= p.setup.failure_delay)
                .then_some(crate::StackError::TimedOut),
        }
    }
}
