//! What an [`super::IkeEndpoint`] needs to know: endpoint settings, per-peer policy, identities,
//! and the source of randomness.

use crate::error::IpsecError;
use crate::esp::{EspSuite, Lifetime, Mode, DEFAULT_REPLAY_WINDOW};
use crate::ike::cert::CertAuth;
use crate::ike::crypto::{DhGroup, Prf, SkSuite};
use crate::ike::proposal::IkeSuite;
use crate::ike::wire::{AddressRange, IdType, Identification, TrafficSelector};
use ring::rand::SecureRandom;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Where the SPIs, nonces and cookie secrets come from.
///
/// The production source is [`SystemIkeRandom`] (ring's `SystemRandom`). Tests may inject
/// [`SeededIkeRandom`] so that SPIs and nonces repeat from run to run; Diffie-Hellman private
/// keys always come from ring's system source (ring does not accept another one), so key
/// exchange values and the derived keys differ between runs even with a seeded source.
pub trait IkeRandom: Send {
    /// Fills `out` with random bytes.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the source fails.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), IpsecError>;
}

/// Randomness from the operating system through ring.
#[derive(Debug)]
pub struct SystemIkeRandom(ring::rand::SystemRandom);

impl Default for SystemIkeRandom {
    fn default() -> Self {
        SystemIkeRandom::new()
    }
}

impl SystemIkeRandom {
    /// The system source.
    pub fn new() -> Self {
        SystemIkeRandom(ring::rand::SystemRandom::new())
    }
}

impl IkeRandom for SystemIkeRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), IpsecError> {
        self.0
            .fill(out)
            .map_err(|_| IpsecError::InvalidConfig("system random source failed"))
    }
}

/// A deterministic source (SplitMix64) for tests: the same seed gives the same SPIs and nonces.
/// **Not** cryptographically secure; never use it outside tests.
#[derive(Debug, Clone)]
pub struct SeededIkeRandom {
    state: u64,
}

impl SeededIkeRandom {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededIkeRandom { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl IkeRandom for SeededIkeRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), IpsecError> {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

/// An IKE identity (the data of an IDi / IDr payload).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// ID_FQDN, e.g. `server.example`.
    Fqdn(String),
    /// ID_RFC822_ADDR, e.g. `user@example`.
    Rfc822(String),
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_KEY_ID (opaque).
    KeyId(Vec<u8>),
    /// Any other type, kept as received (e.g. a DER distinguished name).
    Other(IdType, Vec<u8>),
}

impl Identity {
    /// The ID payload body.
    pub fn to_wire(&self) -> Identification {
        let (id_type, data) = match self {
            Identity::Fqdn(s) => (IdType::FQDN, s.as_bytes().to_vec()),
            Identity::Rfc822(s) => (IdType::RFC822_ADDR, s.as_bytes().to_vec()),
            Identity::Ipv4(a) => (IdType::IPV4_ADDR, a.octets().to_vec()),
            Identity::Ipv6(a) => (IdType::IPV6_ADDR, a.octets().to_vec()),
            Identity::KeyId(k) => (IdType::KEY_ID, k.clone()),
            Identity::Other(t, d) => (*t, d.clone()),
        };
        Identification { id_type, data }
    }

    /// The identity an ID payload carries. Text types that are not UTF-8 and addresses of the
    /// wrong length stay [`Identity::Other`].
    pub fn from_wire(id: &Identification) -> Identity {
        let text = || String::from_utf8(id.data.clone()).ok();
        match id.id_type {
            IdType::FQDN => text().map(Identity::Fqdn),
            IdType::RFC822_ADDR => text().map(Identity::Rfc822),
            IdType::IPV4_ADDR => <[u8; 4]>::try_from(id.data.as_slice())
                .ok()
                .map(|a| Identity::Ipv4(a.into())),
            IdType::IPV6_ADDR => <[u8; 16]>::try_from(id.data.as_slice())
                .ok()
                .map(|a| Identity::Ipv6(a.into())),
            IdType::KEY_ID => Some(Identity::KeyId(id.data.clone())),
            _ => None,
        }
        .unwrap_or_else(|| Identity::Other(id.id_type, id.data.clone()))
    }

    /// The ID payload body as AUTH signs it: ID type, three reserved zero bytes, ID data.
    pub fn signed_body(&self) -> Vec<u8> {
        let w = self.to_wire();
        let mut b = vec![w.id_type.0, 0, 0, 0];
        b.extend_from_slice(&w.data);
        b
    }

    /// Whether this identity is the one a target name designates.
    ///
    /// The target name may be in SPN form (`host/name`, the prefix compared without regard to
    /// case) or raw. FQDNs and e-mail addresses compare without regard to ASCII case and a
    /// trailing dot; address identities compare as addresses (so `::ffff:...` forms and zero
    /// compression do not matter); a key id compares byte for byte with the name's bytes.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::ike::sa::Identity;
    /// let id = Identity::Fqdn("Server.Example.".into());
    /// assert!(id.matches_target("host/server.example"));
    /// assert!(id.matches_target("server.example"));
    /// assert!(!id.matches_target("other.example"));
    /// assert!(Identity::Ipv4([10, 0, 0, 1].into()).matches_target("10.0.0.1"));
    /// ```
    pub fn matches_target(&self, target: &str) -> bool {
        let raw = match target.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("host/") => &target[5..],
            _ => target,
        };
        let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
        match self {
            Identity::Fqdn(s) | Identity::Rfc822(s) => norm(s) == norm(raw) && !raw.is_empty(),
            Identity::Ipv4(a) => raw.parse::<IpAddr>().is_ok_and(|t| t == IpAddr::V4(*a)),
            Identity::Ipv6(a) => raw.parse::<IpAddr>().is_ok_and(|t| t == IpAddr::V6(*a)),
            Identity::KeyId(k) => k.as_slice() == raw.as_bytes(),
            Identity::Other(..) => false,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Fqdn(s) | Identity::Rfc822(s) => f.write_str(s),
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Ipv6(a) => write!(f, "{a}"),
            Identity::KeyId(k) | Identity::Other(_, k) => {
                for b in k {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The retransmission schedule of requests (RFC 7296 §2.1): the first copy at once, then a copy
/// after `initial`, `2 * initial`, `4 * initial`, ... until `max_sends` copies went out; one
/// more doubled interval without an answer fails the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    /// Wait before the first retransmission.
    pub initial: Duration,
    /// Transmissions in all (the first one included).
    pub max_sends: u32,
}

impl Default for Retransmit {
    /// 0.5 s doubling, 5 transmissions: sends at 0, 0.5, 1.5, 3.5 and 7.5 s, failure at 15.5 s.
    fn default() -> Self {
        Retransmit {
            initial: Duration::from_millis(500),
            max_sends: 5,
        }
    }
}

impl Retransmit {
    /// The wait after the `sends`-th transmission (1-based).
    pub fn wait_after(&self, sends: u32) -> Duration {
        let shift = sends.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << shift)
    }
}

/// Endpoint-wide settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Our IKE socket's address (the port-500 role), for NAT detection.
    pub local_ike: SocketAddr,
    /// Our NAT-T socket's address (the port-4500 role).
    pub local_natt: SocketAddr,
    /// Retransmission schedule of our requests.
    pub retransmit: Retransmit,
    /// Half-open responder SAs at (or above) which IKE_SA_INIT requests without a valid cookie
    /// are answered with `N(COOKIE)` only. `usize::MAX` never demands cookies; 0 always does.
    pub cookie_threshold: usize,
    /// How long a responder keeps a half-open SA (IKE_SA_INIT answered, no IKE_AUTH yet).
    pub half_open_timeout: Duration,
    /// How we answer peers that initiate (`None`: we never act as responder).
    pub responder: Option<IkePolicy>,
    /// Keep the keys tshark needs ([`super::IkeEndpoint::ike_key_record`]). Debug material.
    pub keylog: bool,
    /// The users a responder accepts in a second, user-level authentication (RFC 4739). With
    /// `Some`, a responder announces `N(MULTIPLE_AUTH_SUPPORTED)` in IKE_SA_INIT and verifies
    /// an initiator's second IKE_AUTH against this directory; with `None` it does not announce
    /// it, and an initiator that goes on with `N(ANOTHER_AUTH_FOLLOWS)` anyway is refused with
    /// `AUTHENTICATION_FAILED`.
    pub user_directory: Option<UserDirectory>,
}

impl EndpointConfig {
    /// Defaults around the two socket addresses: the default schedule, cookies from 64
    /// half-open SAs, half-open SAs kept 30 s, no responder policy, no key log.
    pub fn new(local_ike: SocketAddr, local_natt: SocketAddr) -> Self {
        EndpointConfig {
            local_ike,
            local_natt,
            retransmit: Retransmit::default(),
            cookie_threshold: 64,
            half_open_timeout: Duration::from_secs(30),
            responder: None,
            keylog: false,
            user_directory: None,
        }
    }
}

/// One side's policy for an IKE SA and its first child SA (main mode + quick mode policy in
/// Windows terms).
#[derive(Clone)]
pub struct IkePolicy {
    /// Our identity (IDi or IDr).
    pub local_id: Identity,
    /// The pre-shared key (RFC 7296 §2.15), used when `cert` is `None`.
    pub psk: Vec<u8>,
    /// Responder: pre-shared keys for particular initiators, by the identity they claim in
    /// IDi (FQDN and e-mail identities compared without regard to ASCII case). The key found
    /// there replaces `psk` for that IKE SA, both to check the initiator's AUTH and to make
    /// ours; an initiator not listed gets `psk`. Ignored by an initiator (which knows its peer
    /// and sets `psk`).
    pub peer_psks: Vec<(Identity, Vec<u8>)>,
    /// Certificate authentication instead of the pre-shared key: we send CERTREQ and CERT
    /// payloads and sign AUTH (RFC 7427), and demand a signature from a certificate that
    /// chains to the trust anchors; a peer's PSK AUTH is then refused (and with `None`, a
    /// peer's signature is refused). See [`crate::ike::cert`].
    pub cert: Option<CertAuth>,
    /// IKE SA suites, most preferred first (initiator: offered in this order; responder:
    /// acceptable, preferred in this order).
    pub ike_suites: Vec<IkeSuite>,
    /// ESP suites with the ESN choice, most preferred first.
    pub esp_suites: Vec<(EspSuite, bool)>,
    /// The child SA's mode. An initiator asks for it (`USE_TRANSPORT_MODE` for transport) and
    /// refuses another; a responder grants what the initiator asks for.
    pub mode: Mode,
    /// Traffic selectors of our side (TSi for an initiator). For a responder: the ranges the
    /// initiator's TSr is narrowed to (RFC 7296 §2.9; empty: anything); an offer outside
    /// them all gets TS_UNACCEPTABLE.
    pub local_ts: Vec<TrafficSelector>,
    /// Traffic selectors of the peer's side (TSr for an initiator). For a responder: the ranges
    /// the initiator's TSi is narrowed to (empty: anything).
    pub remote_ts: Vec<TrafficSelector>,
    /// When set, the peer's authenticated identity must match it
    /// ([`Identity::matches_target`]), else the negotiation fails with
    /// [`IpsecError::IkePeerIdMismatch`].
    pub target_name: Option<String>,
    /// Always move to the NAT-T socket (and make the peer do so by sending a NAT detection hash
    /// that cannot match), as strongSwan's `encap = yes`.
    pub force_encap: bool,
    /// Anti-replay window of the child SAs' inbound direction.
    pub replay_window: u32,
    /// Lifetime of the child SAs.
    pub child_lifetime: Lifetime,
    /// Perfect forward secrecy for child SAs made by CREATE_CHILD_SA (Windows' `pfsGroup`): a
    /// requester sends a KE of this group; a responder refuses requests without one. The first
    /// child SA (IKE_AUTH) never has its own exchange. `None`: no PFS asked for (a responder
    /// still answers a request that offers it, with the offered group).
    pub pfs: Option<DhGroup>,
    /// Lifetime of the IKE SA (Windows' `maxLifetimeSeconds` of the main mode proposal). Its
    /// original initiator rekeys it at 90 %; at 100 % either side deletes it. `None`: forever.
    pub ike_lifetime: Option<Duration>,
    /// Initiator: a user to authenticate after the machine, in a second IKE_AUTH exchange
    /// (RFC 4739 multiple authentication). The responder must announce
    /// `N(MULTIPLE_AUTH_SUPPORTED)`, else the negotiation fails with
    /// [`IpsecError::IkeMultipleAuthUnsupported`] rather than going on without the user.
    /// Ignored in a responder policy (the responder's users are
    /// [`EndpointConfig::user_directory`]).
    pub user: Option<UserCredential>,
}

impl std::fmt::Debug for IkePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkePolicy")
            .field("local_id", &self.local_id)
            .field("ike_suites", &self.ike_suites)
            .field("esp_suites", &self.esp_suites)
            .field("mode", &self.mode)
            .field("target_name", &self.target_name)
            .field("cert", &self.cert)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl IkePolicy {
    /// A PSK policy with the crate's default suites: IKE AES-GCM-256 / PRF-HMAC-SHA2-256 with
    /// Curve25519, then P-256, then AES-CBC-128 + HMAC-SHA2-256 with P-256; ESP AES-GCM-128,
    /// AES-GCM-256, AES-CBC-128 + HMAC-SHA2-256, no ESN; transport mode; any traffic.
    pub fn psk(local_id: Identity, psk: impl Into<Vec<u8>>) -> Self {
        let gcm = |dh| IkeSuite {
            sk: SkSuite::AesGcm16 { key_bits: 256 },
            prf: Prf::HmacSha256,
            dh,
        };
        IkePolicy {
            local_id,
            psk: psk.into(),
            peer_psks: Vec::new(),
            cert: None,
            ike_suites: vec![
                gcm(DhGroup::Curve25519),
                gcm(DhGroup::Ecp256),
                IkeSuite {
                    sk: SkSuite::AesCbc {
                        key_bits: 128,
                        integrity: crate::esp::Integrity::HmacSha256_128,
                    },
                    prf: Prf::HmacSha256,
                    dh: DhGroup::Ecp256,
                },
            ],
            esp_suites: vec![
                (EspSuite::AesGcm16 { key_bits: 128 }, false),
                (EspSuite::AesGcm16 { key_bits: 256 }, false),
                (
                    EspSuite::AesCbc {
                        key_bits: 128,
                        integrity: crate::esp::Integrity::HmacSha256_128,
                    },
                    false,
                ),
            ],
            mode: Mode::Transport,
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            target_name: None,
            force_encap: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            child_lifetime: Lifetime::unlimited(),
            pfs: None,
            ike_lifetime: None,
            user: None,
        }
    }
}

impl IkePolicy {
    /// The key [`IkePolicy::peer_psks`] holds for an initiator that claims `peer`.
    pub fn psk_of_peer(&self, peer: &Identity) -> Option<Vec<u8>> {
        let same = |a: &Identity| match (a, peer) {
            (Identity::Fqdn(x), Identity::Fqdn(y)) | (Identity::Rfc822(x), Identity::Rfc822(y)) => {
                x.eq_ignore_ascii_case(y)
            }
            _ => a == peer,
        };
        self.peer_psks
            .iter()
            .find(|(id, _)| same(id))
            .map(|(_, key)| key.clone())
    }

    /// A certificate policy ([`IkePolicy::cert`]) with the defaults of [`IkePolicy::psk`].
    /// `local_id` should be a name the certificate holds (ID_FQDN of one of its DNS names).
    pub fn certificate(local_id: Identity, cert: CertAuth) -> Self {
        let mut p = IkePolicy::psk(local_id, Vec::new());
        p.cert = Some(cert);
        p
    }
}

/// How a user proves its identity in the second authentication (RFC 4739).
#[derive(Clone)]
pub enum UserProof {
    /// A password from the domain directory: AUTH is the shared-key MIC of RFC 7296 §2.15
    /// keyed with the password, `prf(prf(password, "Key Pad for IKEv2"), <signed octets>)`.
    /// **Weaker than a certificate**: anyone who sees the exchange and learns the IKE SA keys
    /// can mount an offline dictionary attack on the password, and the responder must hold
    /// the password itself.
    Password(Vec<u8>),
    /// A user certificate and its key: CERT payloads and a signed AUTH, verified by the
    /// responder against the trust anchors of its own certificate policy.
    Certificate(CertAuth),
}

impl std::fmt::Debug for UserProof {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserProof::Password(_) => f.write_str("Password(<redacted>)"),
            UserProof::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

/// The user an initiator authenticates after the machine ([`IkePolicy::user`]).
///
/// # Examples
/// ```
/// use wsock_ipsec::ike::sa::{Identity, UserCredential, UserProof};
/// let user = UserCredential {
///     id: Identity::Rfc822("alice@wsock".into()),
///     proof: UserProof::Password(b"correct horse".to_vec()),
/// };
/// assert!(!format!("{user:?}").contains("horse"));
/// ```
#[derive(Clone, Debug)]
pub struct UserCredential {
    /// The user's identity, sent as IDi of the second IKE_AUTH: e.g.
    /// `Identity::Rfc822("alice@wsock")`, or `Identity::KeyId(b"WSOCK\\alice")` for a
    /// down-level logon name. With a certificate it must be a name the certificate holds
    /// (see [`crate::ike::cert`]: DNS names, addresses, or the subject as ID_DER_ASN1_DN).
    pub id: Identity,
    /// The proof.
    pub proof: UserProof,
}

/// What the responder's directory knows of one user.
#[derive(Clone)]
pub enum UserSecret {
    /// The user's password: a password AUTH (shared-key MIC) is accepted, and so is a user
    /// certificate that chains to the responder's trust anchors and holds the user's name.
    Password(Vec<u8>),
    /// The user has no password here: only a user certificate is accepted.
    CertificateOnly,
}

impl std::fmt::Debug for UserSecret {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserSecret::Password(_) => f.write_str("Password(<redacted>)"),
            UserSecret::CertificateOnly => f.write_str("CertificateOnly"),
        }
    }
}

/// The users a responder accepts (the scenario's domain directory):
/// [`EndpointConfig::user_directory`].
///
/// Lookups compare FQDN and e-mail identities without regard to ASCII case (and a trailing
/// dot), other identities byte for byte.
///
/// # Examples
/// ```
/// use wsock_ipsec::ike::sa::{Identity, UserDirectory, UserSecret};
/// let mut dir = UserDirectory::new();
/// dir.insert(Identity::Rfc822("alice@wsock".into()), UserSecret::Password(b"pw".to_vec()));
/// assert!(dir.lookup(&Identity::Rfc822("Alice@WSOCK".into())).is_some());
/// assert!(dir.lookup(&Identity::Rfc822("bob@wsock".into())).is_none());
/// assert!(!format!("{dir:?}").contains("pw\""));
/// ```
#[derive(Clone, Default)]
pub struct UserDirectory {
    users: HashMap<Identity, UserSecret>,
}

impl std::fmt::Debug for UserDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self.users.keys().map(|k| k.to_string()).collect();
        names.sort();
        f.debug_struct("UserDirectory")
            .field("users", &names)
            .finish()
    }
}

fn user_key(id: &Identity) -> Identity {
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    match id {
        Identity::Fqdn(s) => Identity::Fqdn(norm(s)),
        Identity::Rfc822(s) => Identity::Rfc822(norm(s)),
        other => other.clone(),
    }
}

impl UserDirectory {
    /// An empty directory (every user unknown).
    pub fn new() -> Self {
        UserDirectory::default()
    }

    /// Adds (or replaces) a user.
    pub fn insert(&mut self, id: Identity, secret: UserSecret) {
        self.users.insert(user_key(&id), secret);
    }

    /// What the directory knows of `id`, `None` for an unknown user.
    pub fn lookup(&self, id: &Identity) -> Option<&UserSecret> {
        self.users.get(&user_key(id))
    }

    /// How many users it holds.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// A selector for all traffic of one address (any protocol, all ports).
pub fn host_selector(addr: IpAddr) -> TrafficSelector {
    TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        addresses: match addr {
            IpAddr::V4(a) => AddressRange::V4(a, a),
            IpAddr::V6(a) => AddressRange::V6(a, a),
        },
    }
}

/// Whether `inner` lies within `outer` (protocol, ports and addresses).
pub fn selector_within(inner: &TrafficSelector, outer: &TrafficSelector) -> bool {
    let proto = outer.ip_protocol == 0 || outer.ip_protocol == inner.ip_protocol;
    let ports = outer.start_port <= inner.start_port && inner.end_port <= outer.end_port;
    let addrs = match (inner.addresses, outer.addresses) {
        (AddressRange::V4(a, b), AddressRange::V4(c, d)) => c <= a && b <= d,
        (AddressRange::V6(a, b), AddressRange::V6(c, d)) => c <= a && b <= d,
        _ => false,
    };
    proto && ports && addrs
}

/// The traffic both selectors cover, or `None` when they share none: the protocol both name
/// (0 is any), the common port range and the common address range (same family).
///
/// # Examples
/// ```
/// use std::net::Ipv4Addr;
/// use wsock_ipsec::ike::sa::{host_selector, selector_intersection};
/// use wsock_ipsec::ike::wire::{AddressRange, TrafficSelector};
/// let net = TrafficSelector {
///     ip_protocol: 0,
///     start_port: 0,
///     end_port: 65535,
///     addresses: AddressRange::V4(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(10, 0, 0, 255)),
/// };
/// let host = host_selector(Ipv4Addr::new(10, 0, 0, 7).into());
/// assert_eq!(selector_intersection(&net, &host), Some(host));
/// assert_eq!(selector_intersection(&host, &host_selector(Ipv4Addr::new(10, 0, 1, 7).into())), None);
/// ```
pub fn selector_intersection(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    if start_port > end_port {
        return None;
    }
    let addresses = match (a.addresses, b.addresses) {
        (AddressRange::V4(a1, a2), AddressRange::V4(b1, b2)) => {
            let (lo, hi) = (a1.max(b1), a2.min(b2));
            (lo <= hi).then_some(AddressRange::V4(lo, hi))?
        }
        (AddressRange::V6(a1, a2), AddressRange::V6(b1, b2)) => {
            let (lo, hi) = (a1.max(b1), a2.min(b2));
            (lo <= hi).then_some(AddressRange::V6(lo, hi))?
        }
        _ => return None,
    };
    Some(TrafficSelector {
        ip_protocol,
        start_port,
        end_port,
        addresses,
    })
}
