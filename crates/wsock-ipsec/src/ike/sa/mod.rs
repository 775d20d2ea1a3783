//! The IKEv2 exchanges (RFC 7296), sans-IO: IKE_SA_INIT and IKE_AUTH with pre-shared keys or
//! certificates,
//! creating an IKE SA (main mode SA) and its first child SA (quick mode SA); CREATE_CHILD_SA for
//! additional child SAs, child SA rekeying (`N(REKEY_SA)`, the old pair deleted afterwards) and
//! IKE SA rekeying (a new IKE SA with new SPIs and keys takes over the child SAs); and
//! INFORMATIONAL (Delete of a child SA or of the IKE SA, empty liveness checks).
//!
//! One [`IkeEndpoint`] serves one host's IKE and NAT-T sockets, as initiator ([`IkeEndpoint::connect`])
//! and as responder (when [`EndpointConfig::responder`] holds a policy). It is driven the way
//! quinn-proto drives a connection: datagrams go in with [`IkeEndpoint::handle_datagram`], what
//! must be sent comes out of [`IkeEndpoint::poll_transmit`], the next deadline out of
//! [`IkeEndpoint::poll_timeout`] (then call [`IkeEndpoint::handle_timeout`]), and results out of
//! [`IkeEndpoint::poll_event`]. Time is a [`Duration`] since an epoch the caller picks; the
//! endpoint reads no clock and does no I/O, so tests run two endpoints in memory on a virtual
//! clock.
//!
//! Each IKE SA is in exactly one protocol state, a value of its own type holding only what
//! that state needs:
//!
//! ```text
//! initiator:  connect -> InitSent --IKE_SA_INIT response--> AuthSent --IKE_AUTH response--> Established
//! responder:  IKE_SA_INIT request -> HalfOpen --IKE_AUTH request--> Established
//! (RFC 4739: AuthSent and HalfOpen last for two IKE_AUTH exchanges, machine then user)
//! ```
//!
//! A message that does not fit the state (an IKE_AUTH response to an SA still in InitSent, a
//! request outside the message-ID window, a response nobody asked for) is dropped and counted in
//! [`IkeStats`]; so is every malformed or unauthentic datagram. Nothing here panics on input.
//!
//! Protocol behaviour (the numbers are RFC 7296's and the reference's, §5.4):
//! - Message IDs: window 1 in each direction; our requests queue behind the one in flight.
//! - Retransmission: only requests, byte-identical, on the [`Retransmit`] schedule (0.5 s
//!   doubling, 5 sends by default); the last silence fails the negotiation with
//!   [`IpsecError::IkeTimedOut`] (`ERROR_IPSEC_IKE_TIMED_OUT`, 13805), or, on an established SA,
//!   with [`IpsecError::IkePeerDead`] (13886).
//! - Responses: the last one is cached per IKE SA and a retransmitted request gets it again,
//!   byte for byte; a responder never retransmits on its own.
//! - COOKIE: from [`EndpointConfig::cookie_threshold`] half-open SAs on, an IKE_SA_INIT without a
//!   valid cookie is answered statelessly with `N(COOKIE)`; the initiator repeats its request
//!   with the cookie first.
//! - INVALID_KE_PAYLOAD: a responder that prefers another offered group says so statelessly;
//!   the initiator retries once per group with the one asked for.
//! - NAT detection: both sides send and check the NAT_DETECTION_* hashes; on a NAT (or with
//!   [`IkePolicy::force_encap`], which makes the source hash deliberately wrong, as strongSwan's
//!   `encap = yes` does) the initiator moves to the peer's NAT-T socket from IKE_AUTH on, with
//!   the non-ESP marker. A responder answers on the socket a request came in on.
//! - Authentication: PSK, `AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)`, or, with
//!   [`IkePolicy::cert`], certificates ([`crate::ike::cert`]): the responder adds a CERTREQ (SHA-1
//!   hashes of its trust anchors' keys) to its IKE_SA_INIT answer, the initiator sends IDi,
//!   CERT, CERTREQ and AUTH, the responder IDr, CERT and AUTH; AUTH is an RFC 7427 ECDSA P-256
//!   SHA-256 signature over the same signed octets when the peer announced SHA2-256 in
//!   `N(SIGNATURE_HASH_ALGORITHMS)` (which certificate policies send in IKE_SA_INIT; a
//!   responder only when the initiator did), else RFC 4754 method 9 (accepted either way), checked
//!   with the peer's certificate after rustls-webpki has built its chain to our trust anchors
//!   at the wall-clock time [`crate::ike::cert::CertAuth::wall_clock`] of `now`. Both sides
//!   must use the same kind: a PSK AUTH where a signature is expected (or the reverse) fails
//!   like a wrong key. A wrong key, an untrusted or expired chain or a bad signature
//!   fails both sides with [`IpsecError::IkeAuthFailed`] (`ERROR_IPSEC_IKE_AUTH_FAIL`, 13801): the
//!   responder answers `N(AUTHENTICATION_FAILED)`; an initiator that cannot verify the responder
//!   tells it in an INFORMATIONAL `N(AUTHENTICATION_FAILED)`.
//! - User authentication (RFC 4739 multiple authentication): an initiator with
//!   [`IkePolicy::user`] sends `N(MULTIPLE_AUTH_SUPPORTED)` and, in its first IKE_AUTH (which
//!   also asks for the child SA), `N(ANOTHER_AUTH_FOLLOWS)`; the responder, which announced
//!   support in IKE_SA_INIT only when it has an [`EndpointConfig::user_directory`], answers
//!   with IDr and AUTH only; the second IKE_AUTH (message ID 2) carries the user's IDi,
//!   [CERT+] and AUTH over the same RealMessage1 and Nr (a password-keyed shared-key MIC or a
//!   user-certificate signature), and its answer carries the child SA. The responder keeps the
//!   SA half open in between. `IkeSaEstablished::peer_user` names the user on the responder.
//!   A wrong password, an unknown user ([`IpsecError::IkeUnknownUser`]) or a refused user
//!   certificate fails both sides with 13801; an initiator whose responder did not announce
//!   support fails with [`IpsecError::IkeMultipleAuthUnsupported`] (13801) without sending
//!   IKE_AUTH.
//! - TEMPORARY_FAILURE (RFC 7296 §2.25), a busy peer's answer to a CREATE_CHILD_SA (for
//!   instance while it rekeys the IKE SA): the request is made again after 1 to 2 s, on
//!   whichever IKE SA owns the child SA by then; only after 5 such answers does it fail.
//! - A CREATE_CHILD_SA of ours still in flight on an IKE SA that the peer rekeyed and then
//!   deleted is made again on the IKE SA that took over.
//! - INITIAL_CONTACT (RFC 7296 §2.4): an initiator that holds no other IKE SA with the peer's
//!   address (in any state) says so in IKE_AUTH; on receipt, every other IKE SA between the
//!   same two identities is dropped with its child SAs, without a Delete
//!   ([`IkeEvent::IkeSaDeleted`] with `by_peer`).
//! - Identity: with [`IkePolicy::target_name`] set, the authenticated peer ID must match it
//!   ([`Identity::matches_target`]), else [`IpsecError::IkePeerIdMismatch`] (also 13801). With
//!   certificates the peer ID must be a name of its certificate and the target name (without
//!   `host/`) one too, so a peer with a trusted certificate for another name is refused.
//! - CREATE_CHILD_SA: either side may ask for a new child SA or a child rekey; KEYMAT comes from
//!   SK_d, that exchange's nonces (the requester's first) and, with [`IkePolicy::pfs`], a fresh
//!   Diffie-Hellman secret (KE payloads, a DH transform in the proposals). An IKE SA rekey keeps the suite, uses
//!   `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)`, makes the requester the initiator of the
//!   new IKE SA (message IDs restart at 0) and then deletes the old IKE SA. Simultaneous IKE SA
//!   rekeys (RFC 7296 §2.8.2): both exchanges complete; the new IKE SA whose exchange used the
//!   lowest of the four nonces is deleted by the side that initiated that exchange, the other
//!   takes over the child SAs, and its initiator deletes the old IKE SA. When the peer takes
//!   our answer to its rekey before it sees our request, it sees no collision and deletes the
//!   old IKE SA with our request still in flight: its new IKE SA then takes over the child SAs
//!   and our exchange is abandoned.
//! - Simultaneous child rekeys (RFC 7296 §2.8.1): when the peer rekeys a child SA we are rekeying
//!   ourselves, both exchanges complete; the new pair whose exchange used the lowest of the four
//!   nonces is deleted by the side that initiated that exchange, and the initiator of the
//!   surviving rekey deletes the old pair. (When the two exchanges do not overlap on both sides,
//!   two new pairs may survive: redundant, never inconsistent.)
//! - Lifetime: with [`IkePolicy::ike_lifetime`], the original initiator of an IKE SA rekeys it at
//!   90 % of the lifetime, and either side deletes it at 100 %. Child SA lifetimes are counted
//!   by the ESP data path; its soft-expiry event is the owner's cue to call
//!   [`IkeEndpoint::rekey_child`].
//! - Not implemented yet: EAP, multiple authentication (RFC 4739), IKE fragmentation (RFC 7383),
//!   hash-and-URL certificates, revocation (CRLs), and choosing among several credentials by
//!   the peer's CERTREQ.
//!
//! Randomness (SPIs, nonces, the cookie secret) comes through [`IkeRandom`]; Diffie-Hellman keys
//! always come from ring's system source.
//!
//! # Examples
//!
//! Two endpoints in memory: the datagrams one emits are handed to the other until both are
//! quiet, then both hold the same child SA keys.
//!
//! ```
//! use std::time::Duration;
//! use wsock_ipsec::ike::sa::*;
//!
//! let (a_ike, a_natt) = ("127.0.0.1:500".parse().unwrap(), "127.0.0.1:4500".parse().unwrap());
//! let (b_ike, b_natt) = ("127.0.0.2:500".parse().unwrap(), "127.0.0.2:4500".parse().unwrap());
//! let policy = |name: &str| IkePolicy::psk(Identity::Fqdn(name.into()), *b"pre-shared key");
//! let mut b_cfg = EndpointConfig::new(b_ike, b_natt);
//! b_cfg.responder = Some(policy("b.example"));
//! let mut a = IkeEndpoint::new(EndpointConfig::new(a_ike, a_natt), Box::new(SystemIkeRandom::new())).unwrap();
//! let mut b = IkeEndpoint::new(b_cfg, Box::new(SystemIkeRandom::new())).unwrap();
//!
//! let now = Duration::ZERO;
//! a.connect(now, b_ike, Some(b_natt), policy("a.example")).unwrap();
//! loop {
//!     let mut moved = false;
//!     while let Some(t) = a.poll_transmit(now) {
//!         b.handle_datagram(now, a_ike, t.socket, &t.contents);
//!         moved = true;
//!     }
//!     while let Some(t) = b.poll_transmit(now) {
//!         a.handle_datagram(now, b_ike, t.socket, &t.contents);
//!         moved = true;
//!     }
//!     if !moved { break; }
//! }
//! let ready = |ep: &mut IkeEndpoint| {
//!     std::iter::from_fn(|| ep.poll_event())
//!         .find_map(|e| match e { IkeEvent::ChildSaReady(c) => Some(c), _ => None })
//!         .unwrap()
//! };
//! let (ca, cb) = (ready(&mut a), ready(&mut b));
//! assert_eq!(ca.outbound.spi, cb.inbound.spi);
//! assert_eq!(ca.outbound_keys, cb.inbound_keys);
//! ```

mod config;

pub use config::{
    host_selector, selector_intersection, selector_within, EndpointConfig, Identity, IkePolicy,
    IkeRandom, Retransmit, SeededIkeRandom, SystemIkeRandom, UserCredential, UserDirectory,
    UserProof, UserSecret,
};

use crate::error::IpsecError;
use crate::esp::{ct_eq, InboundSa, Mode, OutboundSa, SaConfig};
use crate::ike::cert::announces_sha256;
use crate::ike::crypto::{
    nat_detection_hash, psk_auth, signed_octets, skeyseed, skeyseed_rekey, ChildSaKeys, DhGroup,
    IkeSaKeys, KeyExchange, Role, SkCrypter,
};
use crate::ike::proposal::{
    esp_proposal, esp_suite_of, ike_proposal, ike_suite_of, select_esp, select_ike, IkeSuite,
};
use crate::ike::wire::{
    AddressRange, AuthMethod, CertEncoding, Delete, ExchangeType, Flags, Message, MessageRepr,
    Notify, NotifyType, PayloadRepr, ProtocolId, TrafficSelector, Transform, TransformType,
};
use crate::keylog::{EspKeyRecord, IkeKeyRecord};
use crate::natt::{self, NattDatagram};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Length of our nonces (RFC 7296 §2.10: at least 128 bits and half the PRF key size).
const NONCE_LEN: usize = 32;
/// Cookie rounds an initiator accepts before it gives up (a responder that keeps demanding new
/// cookies is broken or hostile).
const MAX_COOKIE_ROUNDS: u8 = 3;

/// The local id of an IKE SA (the 64-bit MM SA id Windows reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

impl std::fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mm#{}", self.0)
    }
}

/// Which of the host's two wire sockets a datagram uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireSocket {
    /// The IKE socket (the port-500 role): bare IKE messages.
    Ike,
    /// The NAT-T socket (the port-4500 role): IKE behind the 4-byte non-ESP marker.
    Natt,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// From which of our sockets.
    pub socket: WireSocket,
    /// The UDP payload exactly as it goes on the wire (with the non-ESP marker on
    /// [`WireSocket::Natt`]).
    pub contents: Vec<u8>,
}

/// Keying material of one ESP direction.
#[derive(Clone, PartialEq, Eq)]
pub struct EspKeys {
    /// Encryption keying material (key || salt for AEAD and GMAC suites).
    pub encr: Vec<u8>,
    /// Integrity key (empty for AEAD and GMAC suites).
    pub integ: Vec<u8>,
}

impl std::fmt::Debug for EspKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EspKeys { .. }")
    }
}

/// A negotiated child SA pair, ready to be installed in the ESP data path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSa {
    /// The IKE SA it belongs to.
    pub ike_sa: IkeSaId,
    /// Our role in the exchange that created it.
    pub role: Role,
    /// The sending direction (SPI chosen by the peer).
    pub outbound: SaConfig,
    /// Keys of the sending direction.
    pub outbound_keys: EspKeys,
    /// The receiving direction (SPI chosen by us).
    pub inbound: SaConfig,
    /// Keys of the receiving direction.
    pub inbound_keys: EspKeys,
    /// Transport or tunnel mode.
    pub mode: Mode,
    /// Traffic selectors of our side.
    pub local_ts: Vec<TrafficSelector>,
    /// Traffic selectors of the peer's side.
    pub remote_ts: Vec<TrafficSelector>,
    /// The peer's wire address for ESP (its NAT-T socket when `encapsulated`).
    pub peer: SocketAddr,
    /// Whether ESP travels UDP-encapsulated (RFC 3948) on the NAT-T sockets.
    pub encapsulated: bool,
    /// For a rekey: our inbound SPI of the child SA this one replaces (deleted right after).
    pub replaces: Option<u32>,
}

impl ChildSa {
    /// The sending ESP SA, created at `now`.
    ///
    /// # Errors
    /// As [`OutboundSa::new`].
    pub fn outbound_sa(&self, now: Duration) -> Result<OutboundSa, IpsecError> {
        OutboundSa::new(
            &self.outbound,
            &self.outbound_keys.encr,
            &self.outbound_keys.integ,
            now,
        )
    }

    /// The receiving ESP SA, created at `now`.
    ///
    /// # Errors
    /// As [`InboundSa::new`].
    pub fn inbound_sa(&self, now: Duration) -> Result<InboundSa, IpsecError> {
        InboundSa::new(
            &self.inbound,
            &self.inbound_keys.encr,
            &self.inbound_keys.integ,
            now,
        )
    }

    /// Whether the owner may switch its sending to this pair at once. Not for the responder of
    /// a rekey (`role` [`Role::Responder`] with [`ChildSa::replaces`] set): the initiator
    /// installs its inbound SA only once it has our answer, so a packet sent on the new pair
    /// right after the answer can overtake it and be dropped (strongSwan: "inbound ESP packet
    /// does not belong to an installed SA"). Such a responder keeps sending on the pair it
    /// replaces until that pair is deleted (the initiator's Delete, [`IkeEvent::ChildSaDeleted`])
    /// or a packet arrives on this pair's inbound SA, whichever comes first; it receives on
    /// both meanwhile. strongSwan's responders do the same.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::esp::{EspSuite, Mode, SaConfig};
    /// use wsock_ipsec::ike::crypto::Role;
    /// use wsock_ipsec::ike::sa::{ChildSa, EspKeys, IkeSaId};
    /// let keys = || EspKeys { encr: vec![7; 20], integ: Vec::new() };
    /// let suite = EspSuite::AesGcm16 { key_bits: 128 };
    /// let mut c = ChildSa {
    ///     ike_sa: IkeSaId(1),
    ///     role: Role::Responder,
    ///     outbound: SaConfig::new(0x1001, suite),
    ///     outbound_keys: keys(),
    ///     inbound: SaConfig::new(0x2002, suite),
    ///     inbound_keys: keys(),
    ///     mode: Mode::Tunnel,
    ///     local_ts: Vec::new(),
    ///     remote_ts: Vec::new(),
    ///     peer: "127.0.0.1:4500".parse().unwrap(),
    ///     encapsulated: true,
    ///     replaces: None,
    /// };
    /// assert!(c.send_at_once()); // a first child SA
    /// c.replaces = Some(0x2000);
    /// assert!(!c.send_at_once()); // we answered the peer's rekey: wait
    /// c.role = Role::Initiator;
    /// assert!(c.send_at_once()); // our own rekey: the peer installed it before answering
    /// ```
    pub fn send_at_once(&self) -> bool {
        self.role == Role::Initiator || self.replaces.is_none()
    }

    /// Key records of both directions for tshark (outer addresses: `local` and the peer's).
    pub fn esp_key_records(&self, local: IpAddr) -> [EspKeyRecord; 2] {
        [
            EspKeyRecord {
                src: local,
                dst: self.peer.ip(),
                spi: self.outbound.spi,
                suite: self.outbound.suite,
                encr_key: self.outbound_keys.encr.clone(),
                integ_key: self.outbound_keys.integ.clone(),
            },
            EspKeyRecord {
                src: self.peer.ip(),
                dst: local,
                spi: self.inbound.spi,
                suite: self.inbound.suite,
                encr_key: self.inbound_keys.encr.clone(),
                integ_key: self.inbound_keys.integ.clone(),
            },
        ]
    }
}

/// What the owner of an [`IkeEndpoint`] learns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IkeEvent {
    /// Both sides authenticated each other; the IKE SA (MM SA) is up. A
    /// [`IkeEvent::ChildSaReady`] or [`IkeEvent::ChildSaFailed`] for the first child SA follows,
    /// except on a responder whose initiator asked for no child SA (RFC 6023 childless
    /// IKE_AUTH, which responders announce); child SAs then come by CREATE_CHILD_SA.
    IkeSaEstablished {
        /// Local id.
        sa: IkeSaId,
        /// Our role.
        role: Role,
        /// Initiator's SPI.
        spi_i: u64,
        /// Responder's SPI.
        spi_r: u64,
        /// Our identity.
        local_id: Identity,
        /// The peer's authenticated identity.
        peer_id: Identity,
        /// The peer's current IKE address.
        peer: SocketAddr,
        /// Responder: the user the initiator authenticated in a second IKE_AUTH (RFC 4739),
        /// verified against [`EndpointConfig::user_directory`]; `None` without one.
        peer_user: Option<Identity>,
        /// Initiator: our user ([`IkePolicy::user`]) once the responder accepted it; `None`
        /// without one.
        local_user: Option<Identity>,
    },
    /// A child SA pair was negotiated.
    ChildSaReady(Box<ChildSa>),
    /// The IKE SA is up but its child SA was refused (no proposal, selectors, mode).
    ChildSaFailed {
        /// The IKE SA.
        sa: IkeSaId,
        /// Why.
        error: IpsecError,
    },
    /// A child SA pair was deleted.
    ChildSaDeleted {
        /// The IKE SA.
        sa: IkeSaId,
        /// Our inbound SPI of the pair.
        inbound_spi: u32,
        /// The outbound SPI of the pair.
        outbound_spi: u32,
        /// Whether the peer asked for it.
        by_peer: bool,
    },
    /// An established IKE SA (and with it all its child SAs) is gone.
    IkeSaDeleted {
        /// The IKE SA.
        sa: IkeSaId,
        /// Whether the peer asked for it.
        by_peer: bool,
    },
    /// The IKE SA was rekeyed (CREATE_CHILD_SA with an IKE proposal): `new` carries on with new
    /// SPIs and keys and owns every child SA of `old`; `old` is deleted right after (its
    /// [`IkeEvent::IkeSaDeleted`] concerns no child SA any more). After a simultaneous rekey
    /// by both sides only the surviving IKE SA is announced here; the redundant one is deleted
    /// (an [`IkeEvent::IkeSaDeleted`] for an id never announced, owning no child SA).
    IkeSaRekeyed {
        /// The replaced IKE SA.
        old: IkeSaId,
        /// The new one.
        new: IkeSaId,
    },
    /// Rekeying the IKE SA failed; the IKE SA goes on with its old keys.
    IkeSaRekeyFailed {
        /// The IKE SA.
        sa: IkeSaId,
        /// Why.
        error: IpsecError,
    },
    /// The peer answered a liveness check.
    LivenessConfirmed {
        /// The IKE SA.
        sa: IkeSaId,
    },
    /// The negotiation (or an established SA) failed; the SA and its child SAs are gone.
    /// [`IpsecError::win32_code`] gives the `ERROR_IPSEC_IKE_*` value.
    Failed {
        /// The IKE SA.
        sa: IkeSaId,
        /// Why.
        error: IpsecError,
    },
}

/// Counters of the endpoint (dropped datagrams never raise an error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IkeStats {
    /// Datagrams handed to [`IkeEndpoint::handle_datagram`].
    pub received: u64,
    /// Dropped: not an IKE message, or malformed.
    pub dropped_malformed: u64,
    /// Dropped: no IKE SA with that SPI (or no responder policy).
    pub dropped_unknown_sa: u64,
    /// Dropped: does not fit the SA's state or message-ID window.
    pub dropped_unexpected: u64,
    /// Dropped: the SK payload did not verify.
    pub dropped_unauthentic: u64,
    /// Requests sent again on the retransmission schedule.
    pub retransmissions: u64,
    /// Retransmitted requests answered from the response cache.
    pub responses_from_cache: u64,
    /// `N(COOKIE)` answers sent (`ERROR_IPSEC_IKE_DOS_COOKIE_SENT`, benign).
    pub cookies_sent: u64,
    /// `N(INVALID_KE_PAYLOAD)` answers sent.
    pub invalid_ke_sent: u64,
    /// Half-open responder SAs dropped after [`EndpointConfig::half_open_timeout`].
    pub half_open_reaped: u64,
}

/// One IKE SA as [`IkeEndpoint::summaries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaSummary {
    /// Local id.
    pub id: IkeSaId,
    /// Our role.
    pub role: Role,
    /// Protocol state.
    pub state: SaState,
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI (0 until known).
    pub spi_r: u64,
    /// The peer's current IKE address.
    pub peer: SocketAddr,
    /// Whether IKE runs on the NAT-T sockets.
    pub encapsulated: bool,
    /// The peer's authenticated identity, once established.
    pub peer_id: Option<Identity>,
    /// Responder: the peer's authenticated user (RFC 4739 second authentication).
    pub peer_user: Option<Identity>,
    /// Initiator: our user, once the responder accepted it.
    pub local_user: Option<Identity>,
    /// Child SA pairs: (inbound SPI, outbound SPI).
    pub children: Vec<(u32, u32)>,
    /// The IKE SA's lifetime ([`IkePolicy::ike_lifetime`]; `None`: forever).
    pub lifetime: Option<Duration>,
}

/// The protocol state of an IKE SA, for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaState {
    /// Initiator: IKE_SA_INIT sent, waiting for the answer.
    InitSent,
    /// Initiator: IKE_AUTH sent, waiting for the answer.
    AuthSent,
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
    HalfOpen,
    /// Both sides authenticated.
    Established,
}

// ----------------------------------------------------------------------------------------------
// Internal state.

/// The keys and crypters of an IKE SA, from IKE_SA_INIT on.
struct SaKeys {
    suite: IkeSuite,
    keys: IkeSaKeys,
    /// Seals what we send.
    tx: SkCrypter,
    /// Opens what we receive.
    rx: SkCrypter,
    ni: Vec<u8>,
    nr: Vec<u8>,
}

impl SaKeys {
    fn new(
        role: Role,
        suite: IkeSuite,
        g_ir: &[u8],
        ni: Vec<u8>,
        nr: Vec<u8>,
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, IpsecError> {
        let seed = skeyseed(suite.prf, &ni, &nr, g_ir);
        Self::from_seed(role, suite, &seed, ni, nr, spi_i, spi_r)
    }

    /// Keys from a SKEYSEED (the IKE SA rekey computes its own).
    fn from_seed(
        role: Role,
        suite: IkeSuite,
        seed: &[u8],
        ni: Vec<u8>,
        nr: Vec<u8>,
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, IpsecError> {
        let keys = IkeSaKeys::derive(suite.prf, seed, &ni, &nr, spi_i, spi_r, suite.sk)?;
        let ci = SkCrypter::new(suite.sk, &keys.sk_ei, &keys.sk_ai)?;
        let cr = SkCrypter::new(suite.sk, &keys.sk_er, &keys.sk_ar)?;
        let (tx, rx) = match role {
            Role::Initiator => (ci, cr),
            Role::Responder => (cr, ci),
        };
        Ok(SaKeys {
            suite,
            keys,
            tx,
            rx,
            ni,
            nr,
        })
    }
}

/// What the peer's child SA request offered, with the keys to derive from.
struct ChildOffer<'a> {
    prf: crate::ike::crypto::Prf,
    sk_d: &'a [u8],
    /// The new Diffie-Hellman secret with PFS.
    g_ir: Option<&'a [u8]>,
    ni: &'a [u8],
    nr: &'a [u8],
    offered: Option<Vec<crate::ike::wire::Proposal>>,
    tsi: Option<Vec<TrafficSelector>>,
    tsr: Option<Vec<TrafficSelector>>,
    transport: bool,
}

/// Initiator, IKE_SA_INIT in flight.
struct InitSent {
    kex: KeyExchange,
    ni: Vec<u8>,
    cookie: Option<Vec<u8>>,
    cookie_rounds: u8,
    tried_groups: Vec<DhGroup>,
    remote_natt: Option<SocketAddr>,
    /// The NAT_DETECTION_SOURCE_IP data we send (kept so a retry sends the same).
    natd_source: [u8; 20],
}

/// Initiator, IKE_AUTH in flight.
struct AuthSent {
    keys: SaKeys,
    msg2: Vec<u8>,
    child_spi: u32,
    /// Our IKE_SA_INIT request (RealMessage1), signed again by the user's AUTH.
    msg1: Vec<u8>,
    /// The responder announced SHA2-256 signatures.
    peer_rfc7427: bool,
    /// RFC 4739: the responder's identity, verified in the first IKE_AUTH exchange, while the
    /// second one (our user) is in flight. `None` during the first exchange.
    machine_peer: Option<Identity>,
}

/// What the initiator's IKE_AUTH asked for its first child SA.
struct ChildAsk {
    offered: Option<Vec<crate::ike::wire::Proposal>>,
    tsi: Option<Vec<TrafficSelector>>,
    tsr: Option<Vec<TrafficSelector>>,
    transport: bool,
}

/// Responder, RFC 4739: the machine authenticated, the user's IKE_AUTH awaited.
struct UserWait {
    peer_id: Identity,
    child: ChildAsk,
    initial_contact: bool,
}

/// Responder, IKE_SA_INIT answered.
struct HalfOpen {
    keys: SaKeys,
    msg1: Vec<u8>,
    created: Duration,
    /// The initiator announced SHA2-256 signatures (RFC 7427 `N(SIGNATURE_HASH_ALGORITHMS)`).
    peer_rfc7427: bool,
    /// RFC 4739: set once the first IKE_AUTH (the machine) verified and announced another
    /// authentication; the SA stays half open (and is reaped like one) until the user's.
    user_wait: Option<Box<UserWait>>,
}

/// A child SA pair of an established IKE SA.
#[derive(Debug, Clone, Copy)]
struct ChildRecord {
    inbound_spi: u32,
    outbound_spi: u32,
}

/// A rekey of one of our child SAs that the peer made while our own rekey of it was in flight
/// (RFC 7296 §2.8.1), kept until our rekey completes.
struct PeerRekey {
    /// Our inbound SPI of the child both sides rekeyed.
    old_inbound: u32,
    /// The peer's exchange's nonces (its Ni, our Nr).
    ni: Vec<u8>,
    nr: Vec<u8>,
}

/// A rekey of this IKE SA that the peer made while ours was in flight (RFC 7296 §2.8.2):
/// the new IKE SA it created, which takes over the child SAs only if it survives.
struct PeerIkeRekey {
    /// The IKE SA the peer's exchange created.
    new: IkeSaId,
    /// The peer's exchange's nonces (its Ni, our Nr).
    ni: Vec<u8>,
    nr: Vec<u8>,
}

/// Both sides authenticated.
struct Established {
    keys: SaKeys,
    children: Vec<ChildRecord>,
    peer_rekeys: Vec<PeerRekey>,
    peer_ike_rekey: Option<PeerIkeRekey>,
}

enum State {
    InitSent(Box<InitSent>),
    AuthSent(Box<AuthSent>),
    HalfOpen(Box<HalfOpen>),
    Established(Box<Established>),
    /// Between two states while one is consumed to make the next, or while the SA is torn
    /// down; never observable from outside.
    Closed,
}

impl State {
    fn public(&self) -> SaState {
        match self {
            State::InitSent(_) => SaState::InitSent,
            State::AuthSent(_) => SaState::AuthSent,
            State::HalfOpen(_) => SaState::HalfOpen,
            State::Established(_) | State::Closed => SaState::Established,
        }
    }
}

/// What a request in flight asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Init,
    Auth,
    DeleteChild {
        inbound_spi: u32,
    },
    DeleteIke,
    Liveness,
    /// CREATE_CHILD_SA: a new child SA, or (with our inbound SPI of the old one) a rekey.
    CreateChild {
        rekey: Option<u32>,
    },
    /// CREATE_CHILD_SA rekeying the IKE SA.
    RekeyIke,
}

/// What a CREATE_CHILD_SA request in flight proposed.
struct CreateRequest {
    spi: u32,
    ni: Vec<u8>,
    /// Our key exchange when the policy asks for PFS.
    kex: Option<KeyExchange>,
}

/// What an IKE SA rekey request in flight proposed.
struct IkeRekeyRequest {
    spi: u64,
    ni: Vec<u8>,
    kex: KeyExchange,
}

struct Pending {
    message_id: u32,
    kind: RequestKind,
    create: Option<CreateRequest>,
    ike_rekey: Option<Box<IkeRekeyRequest>>,
    transmit: Transmit,
    sends: u32,
    deadline: Duration,
}

/// A response kept for a retransmitted request: only a byte-identical copy of the request
/// (same digest) gets it again, so forged or corrupted copies cannot make us reflect it.
struct Cached {
    message_id: u32,
    request: [u8; 32],
    response: Transmit,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut d = [0u8; 32];
    d.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    d
}

struct Sa {
    id: IkeSaId,
    role: Role,
    spi_i: u64,
    spi_r: u64,
    /// Where the peer's IKE messages go now.
    peer: SocketAddr,
    /// Whether they go on the NAT-T socket.
    natt: bool,
    policy: IkePolicy,
    state: State,
    pending: Option<Pending>,
    queue: VecDeque<RequestKind>,
    /// Our next request's message id.
    next_message_id: u32,
    /// The peer's next request's message id.
    peer_next_message_id: u32,
    /// The last response we sent, for retransmitted requests.
    cache: Option<Cached>,
    /// Responder: the key of the half-open index.
    half_open_key: Option<(SocketAddr, u64)>,
    peer_id: Option<Identity>,
    /// The user authenticated by the second IKE_AUTH (RFC 4739): the peer's on a responder,
    /// ours on an initiator.
    user: Option<Identity>,
    /// When the original initiator of this IKE SA rekeys it (90 % of the lifetime).
    rekey_at: Option<Duration>,
    /// When the IKE SA is deleted (its lifetime).
    expire_at: Option<Duration>,
    /// The IKE SA that took over after a rekey of this one (its children and requests).
    successor: Option<IkeSaId>,
}

impl Sa {
    fn local_spi(&self) -> u64 {
        match self.role {
            Role::Initiator => self.spi_i,
            Role::Responder => self.spi_r,
        }
    }

    fn header(&self, exchange: ExchangeType, response: bool, message_id: u32) -> MessageRepr {
        MessageRepr {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            exchange,
            flags: Flags::new(self.role == Role::Initiator, response),
            message_id,
            payloads: Vec::new(),
        }
    }

    fn wrap(&self, message: &[u8]) -> Transmit {
        wrap(self.peer, self.natt, message)
    }

    fn keys_mut(&mut self) -> Option<&mut SaKeys> {
        match &mut self.state {
            State::InitSent(_) | State::Closed => None,
            State::AuthSent(s) => Some(&mut s.keys),
            State::HalfOpen(s) => Some(&mut s.keys),
            State::Established(s) => Some(&mut s.keys),
        }
    }
}

fn wrap(destination: SocketAddr, natt: bool, message: &[u8]) -> Transmit {
    let contents = if natt {
        let mut d = Vec::with_capacity(message.len() + 4);
        natt::emit_ike(message, &mut d);
        d
    } else {
        message.to_vec()
    };
    Transmit {
        destination,
        socket: if natt {
            WireSocket::Natt
        } else {
            WireSocket::Ike
        },
        contents,
    }
}

fn notify(kind: NotifyType, data: Vec<u8>) -> PayloadRepr {
    PayloadRepr::Notify(Notify::new(kind, data))
}

fn find_notify(payloads: &[PayloadRepr], kind: NotifyType) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        PayloadRepr::Notify(n) if n.kind == kind => Some(n),
        _ => None,
    })
}

fn first_error_notify(payloads: &[PayloadRepr]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        PayloadRepr::Notify(n) if n.kind.is_error() => Some(n.kind),
        _ => None,
    })
}

/// The error an error notify from the peer stands for.
fn notify_error(kind: NotifyType) -> IpsecError {
    match kind {
        NotifyType::AUTHENTICATION_FAILED => IpsecError::IkeAuthFailed,
        NotifyType::NO_PROPOSAL_CHOSEN => IpsecError::IkeNoProposalChosen,
        NotifyType::TS_UNACCEPTABLE => IpsecError::IkeTsUnacceptable,
        other => IpsecError::IkePeerError(other),
    }
}

/// Selectors standing for "all traffic" when a policy names none.
fn any_selectors() -> Vec<TrafficSelector> {
    vec![
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            addresses: AddressRange::V4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
        },
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            addresses: AddressRange::V6(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from(u128::MAX)),
        },
    ]
}

fn selectors_or_any(ts: &[TrafficSelector]) -> Vec<TrafficSelector> {
    if ts.is_empty() {
        any_selectors()
    } else {
        ts.to_vec()
    }
}

/// A responder's answer to offered selectors (RFC 7296 §2.9): the parts of them its policy
/// allows (all of them when the policy allows anything), or `None` when nothing is left.
fn narrow(
    offered: &[TrafficSelector],
    allowed: &[TrafficSelector],
) -> Option<Vec<TrafficSelector>> {
    if offered.is_empty() {
        return None;
    }
    if allowed.is_empty() {
        return Some(offered.to_vec());
    }
    let mut out: Vec<TrafficSelector> = Vec::new();
    for o in offered {
        for a in allowed {
            if let Some(t) = selector_intersection(o, a) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn all_within(offered: &[TrafficSelector], allowed: &[TrafficSelector]) -> bool {
    !offered.is_empty()
        && (allowed.is_empty()
            || offered
                .iter()
                .all(|o| allowed.iter().any(|a| selector_within(o, a))))
}

// ----------------------------------------------------------------------------------------------
// The endpoint.

/// One host's IKEv2 engine: every IKE SA it initiated or answered. See the module docs.
pub struct IkeEndpoint {
    config: EndpointConfig,
    rng: Box<dyn IkeRandom>,
    sas: BTreeMap<IkeSaId, Sa>,
    by_spi: BTreeMap<u64, IkeSaId>,
    half_open: BTreeMap<(SocketAddr, u64), IkeSaId>,
    child_spis: BTreeSet<u32>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IkeEvent>,
    stats: IkeStats,
    cookie_secret: [u8; 32],
    key_records: BTreeMap<IkeSaId, IkeKeyRecord>,
    /// Requests the peer answered with TEMPORARY_FAILURE, to be made again (RFC 7296 §2.25).
    deferred: Vec<(Duration, Deferred)>,
    /// TEMPORARY_FAILURE answers so far, per deferred request.
    temporary_failures: BTreeMap<Deferred, u8>,
}

/// A request to make again after the peer's TEMPORARY_FAILURE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deferred {
    /// Rekey the child SA pair with this inbound SPI (on whichever IKE SA owns it by then).
    RekeyChild(u32),
    /// A new child SA under this IKE SA.
    CreateChild(IkeSaId),
    /// Rekey this IKE SA.
    RekeyIke(IkeSaId),
}

/// TEMPORARY_FAILURE answers to one request before it fails for good.
const MAX_TEMPORARY_FAILURES: u8 = 5;

impl std::fmt::Debug for IkeEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeEndpoint")
            .field("local_ike", &self.config.local_ike)
            .field("sas", &self.sas.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl IkeEndpoint {
    /// An endpoint with no SAs.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the random source fails (drawing the cookie secret)
    /// or a policy has no IKE or ESP suite.
    pub fn new(config: EndpointConfig, mut rng: Box<dyn IkeRandom>) -> Result<Self, IpsecError> {
        if let Some(p) = &config.responder {
            check_policy(p)?;
        }
        let mut cookie_secret = [0u8; 32];
        rng.fill(&mut cookie_secret)?;
        Ok(IkeEndpoint {
            config,
            rng,
            sas: BTreeMap::new(),
            by_spi: BTreeMap::new(),
            half_open: BTreeMap::new(),
            child_spis: BTreeSet::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: IkeStats::default(),
            cookie_secret,
            key_records: BTreeMap::new(),
            deferred: Vec::new(),
            temporary_failures: BTreeMap::new(),
        })
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &IkeStats {
        &self.stats
    }

    /// The state of an IKE SA, or `None` when it does not exist (any more).
    pub fn sa_state(&self, sa: IkeSaId) -> Option<SaState> {
        self.sas.get(&sa).map(|s| s.state.public())
    }

    /// The (SPIi, SPIr) pair of an IKE SA (SPIr is 0 until the responder chose it).
    pub fn spis(&self, sa: IkeSaId) -> Option<(u64, u64)> {
        self.sas.get(&sa).map(|s| (s.spi_i, s.spi_r))
    }

    /// Every IKE SA of the endpoint, by id (the data of `IkeextSaEnum` in spirit).
    pub fn summaries(&self) -> Vec<IkeSaSummary> {
        self.sas
            .values()
            .map(|sa| IkeSaSummary {
                id: sa.id,
                role: sa.role,
                state: sa.state.public(),
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                peer: sa.peer,
                encapsulated: sa.natt,
                peer_id: sa.peer_id.clone(),
                peer_user: sa.user.clone().filter(|_| sa.role == Role::Responder),
                local_user: sa.user.clone().filter(|_| sa.role == Role::Initiator),
                children: match &sa.state {
                    State::Established(e) => e
                        .children
                        .iter()
                        .map(|c| (c.inbound_spi, c.outbound_spi))
                        .collect(),
                    _ => Vec::new(),
                },
                lifetime: sa.policy.ike_lifetime,
            })
            .collect()
    }

    /// Half-open responder SAs right now (what the cookie threshold compares with).
    pub fn half_open_count(&self) -> usize {
        self.half_open.len()
    }

    /// The tshark key record of an IKE SA whose keys were derived, when
    /// [`EndpointConfig::keylog`] is on (kept after the SA is gone).
    pub fn ike_key_record(&self, sa: IkeSaId) -> Option<&IkeKeyRecord> {
        self.key_records.get(&sa)
    }

    /// Starts an IKE SA with the peer whose IKE socket is `remote` (and whose NAT-T socket, if
    /// we may move there, is `remote_natt`): sends IKE_SA_INIT.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for a policy without IKE or ESP suites or a failing random
    /// source; [`IpsecError::DhFailed`] when the key pair cannot be made.
    pub fn connect(
        &mut self,
        now: Duration,
        remote: SocketAddr,
        remote_natt: Option<SocketAddr>,
        policy: IkePolicy,
    ) -> Result<IkeSaId, IpsecError> {
        check_policy(&policy)?;
        let group = policy.ike_suites[0].dh;
        let spi_i = self.new_ike_spi()?;
        let mut ni = vec![0u8; NONCE_LEN];
        self.rng.fill(&mut ni)?;
        let natd_source = if policy.force_encap {
            let mut r = [0u8; 20];
            self.rng.fill(&mut r)?;
            r
        } else {
            nat_detection_hash(
                spi_i,
                0,
                self.config.local_ike.ip(),
                self.config.local_ike.port(),
            )
        };
        let init = InitSent {
            kex: KeyExchange::generate(group)?,
            ni,
            cookie: None,
            cookie_rounds: 0,
            tried_groups: vec![group],
            remote_natt,
            natd_source,
        };
        let id = self.new_id();
        let mut sa = Sa {
            id,
            role: Role::Initiator,
            spi_i,
            spi_r: 0,
            peer: remote,
            natt: false,
            policy,
            state: State::InitSent(Box::new(init)),
            pending: None,
            queue: VecDeque::new(),
            next_message_id: 0,
            peer_next_message_id: 0,
            cache: None,
            half_open_key: None,
            peer_id: None,
            user: None,
            rekey_at: None,
            expire_at: None,
            successor: None,
        };
        let msg = match &sa.state {
            State::InitSent(s) => init_request(&sa, s)?,
            _ => unreachable_state()?,
        };
        self.send_request(&mut sa, now, RequestKind::Init, &msg);
        self.by_spi.insert(spi_i, id);
        self.sas.insert(id, sa);
        Ok(id)
    }

    /// Asks the peer to delete the child SA pair whose inbound SPI is `inbound_spi`.
    ///
    /// # Errors
    /// [`IpsecError::IkeWrongState`] when the IKE SA does not exist, is not established or has
    /// no such child SA.
    pub fn delete_child(
        &mut self,
        now: Duration,
        sa: IkeSaId,
        inbound_spi: u32,
    ) -> Result<(), IpsecError> {
        let known = match self.sas.get(&sa).map(|s| &s.state) {
            Some(State::Established(e)) => e.children.iter().any(|c| c.inbound_spi == inbound_spi),
            _ => return Err(IpsecError::IkeWrongState("IKE SA not established")),
        };
        if !known {
            return Err(IpsecError::IkeWrongState("no child SA with that SPI"));
        }
        self.enqueue(now, sa, RequestKind::DeleteChild { inbound_spi })
    }

    /// Asks the peer to delete the IKE SA (and all its child SAs). The SA is gone when the peer
    /// answers or the request times out; [`IkeEvent::IkeSaDeleted`] reports it.
    ///
    /// # Errors
    /// [`IpsecError::IkeWrongState`] when the IKE SA does not exist or is not established.
    pub fn delete_ike_sa(&mut self, now: Duration, sa: IkeSaId) -> Result<(), IpsecError> {
        self.enqueue(now, sa, RequestKind::DeleteIke)
    }

    /// Sends an empty INFORMATIONAL request (dead-peer detection). The answer raises
    /// [`IkeEvent::LivenessConfirmed`]; silence fails the SA with [`IpsecError::IkePeerDead`].
    ///
    /// # Errors
    /// [`IpsecError::IkeWrongState`] when the IKE SA does not exist or is not established.
    pub fn check_liveness(&mut self, now: Duration, sa: IkeSaId) -> Result<(), IpsecError> {
        self.enqueue(now, sa, RequestKind::Liveness)
    }

    /// Negotiates an additional child SA pair under the IKE SA (CREATE_CHILD_SA, with PFS when
    /// the policy asks for it) with
    /// the IKE SA's policy; [`IkeEvent::ChildSaReady`] or [`IkeEvent::ChildSaFailed`] reports it.
    ///
    /// # Errors
    /// [`IpsecError::IkeWrongState`] when the IKE SA does not exist or is not established.
    pub fn create_child(&mut self, now: Duration, sa: IkeSaId) -> Result<(), IpsecError> {
        self.enqueue(now, sa, RequestKind::CreateChild { rekey: None })
    }

    /// Rekeys the child SA pair whose inbound SPI is `inbound_spi` (CREATE_CHILD_SA with
    /// `N(REKEY_SA)`): the new pair arrives in [`IkeEvent::ChildSaReady`] with
    /// [`ChildSa::replaces`] set, then the old one is deleted ([`IkeEvent::ChildSaDeleted`]).
    /// A simultaneous rekey by the peer is resolved as the module docs describe.
    ///
    /// # Errors
    /// [`IpsecError::IkeWrongState`] when the IKE SA does not exist, is not established or has
    /// no such child SA.
    pub fn rekey_child(
        &mut self,
        now: Duration,
        sa: IkeSaId,
        inbound_spi: u32,
    ) -> Result<(), IpsecError> {
        let known = match self.sas.get(&sa).map(|s| &s.state) {
            Some(State::Established(e)) => e.children.iter().any(|c| c.inbound_spi == inbound_spi),
            _ => return Err(IpsecError::IkeWrongState("IKE SA not established")),
        };
        if !known {
            return Err(IpsecError::IkeWrongState("no child SA with that SPI"));
        }
        self.enqueue(
            now,
            sa,
            RequestKind::CreateChild {
                rekey: Some(inbound_spi),
            },
        )
    }

    /// Rekeys the IKE SA itself (CREATE_CHILD_SA with an IKE proposal, a new SPI, nonce and
    /// KE, same suite): [`IkeEvent::IkeSaRekeyed`] names the new SA, which takes over every child
    /// SA; the old one is then deleted.
    ///
    /// # Errors
    /// [`IpsecError::IkeWrongState`] when the IKE SA does not exist or is not established.
    pub fn rekey_ike_sa(&mut self, now: Duration, sa: IkeSaId) -> Result<(), IpsecError> {
        self.enqueue(now, sa, RequestKind::RekeyIke)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, _now: Duration) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    /// When [`IkeEndpoint::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.sas
            .values()
            .flat_map(|sa| {
                let retransmit = sa.pending.as_ref().map(|p| p.deadline);
                let reap = match &sa.state {
                    State::HalfOpen(h) => {
                        Some(h.created.saturating_add(self.config.half_open_timeout))
                    }
                    _ => None,
                };
                let rekey = sa.rekey_at.filter(|_| sa.role == Role::Initiator);
                retransmit
                    .into_iter()
                    .chain(reap)
                    .chain(rekey)
                    .chain(sa.expire_at)
            })
            .chain(self.deferred.iter().map(|(at, _)| *at))
            .min()
    }

    /// Retransmits requests whose timer ran out, fails those out of retransmissions, reaps
    /// stale half-open SAs, and rekeys or deletes IKE SAs at the end of their lifetime.
    pub fn handle_timeout(&mut self, now: Duration) {
        let ids: Vec<IkeSaId> = self.sas.keys().copied().collect();
        for id in ids {
            let Some(mut sa) = self.sas.remove(&id) else {
                continue;
            };
            if let State::HalfOpen(h) = &sa.state {
                if now >= h.created.saturating_add(self.config.half_open_timeout) {
                    self.stats.half_open_reaped += 1;
                    self.forget(&sa);
                    continue;
                }
            }
            let mut keep = true;
            if let Some(p) = &mut sa.pending {
                if now >= p.deadline {
                    if p.sends >= self.config.retransmit.max_sends {
                        let sends = p.sends;
                        let kind = p.kind;
                        keep = false;
                        let event = match (kind, &sa.state) {
                            (RequestKind::DeleteIke, _) => IkeEvent::IkeSaDeleted {
                                sa: id,
                                by_peer: false,
                            },
                            (_, State::Established(_)) => IkeEvent::Failed {
                                sa: id,
                                error: IpsecError::IkePeerDead,
                            },
                            _ => IkeEvent::Failed {
                                sa: id,
                                error: IpsecError::IkeTimedOut { sends },
                            },
                        };
                        self.events.push_back(event);
                    } else {
                        p.sends += 1;
                        p.deadline = now.saturating_add(self.config.retransmit.wait_after(p.sends));
                        self.stats.retransmissions += 1;
                        self.transmits.push_back(p.transmit.clone());
                    }
                }
            }
            if keep {
                self.lifetime_due(&mut sa, now);
                self.sas.insert(id, sa);
            } else {
                self.forget(&sa);
            }
        }
        self.run_deferred(now);
    }

    /// Makes again the requests whose TEMPORARY_FAILURE delay is over.
    fn run_deferred(&mut self, now: Duration) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.deferred = later;
        for (_, d) in due {
            let done = match d {
                Deferred::RekeyChild(spi) => {
                    let owner = self.sas.values().find(|s| match &s.state {
                        State::Established(e) => e.children.iter().any(|c| c.inbound_spi == spi),
                        _ => false,
                    });
                    match owner.map(|s| s.id) {
                        Some(id) => self.rekey_child(now, id, spi).is_ok(),
                        None => true, // the pair is gone: nothing to rekey
                    }
                }
                Deferred::CreateChild(id) => self.create_child(now, id).is_ok(),
                Deferred::RekeyIke(id) => {
                    self.sas.contains_key(&id) && self.rekey_ike_sa(now, id).is_ok()
                }
            };
            if !done {
                if let Deferred::CreateChild(sa) = d {
                    self.events.push_back(IkeEvent::ChildSaFailed {
                        sa,
                        error: IpsecError::IkePeerError(NotifyType::TEMPORARY_FAILURE),
                    });
                }
            }
        }
    }

    /// The peer answered `what` with TEMPORARY_FAILURE (RFC 7296 §2.25: it is busy, e.g.
    /// rekeying the IKE SA): make the request again after 1 to 2 s. Returns `false` once it was
    /// answered so [`MAX_TEMPORARY_FAILURES`] times; the caller then reports the failure.
    fn defer(&mut self, now: Duration, what: Deferred) -> bool {
        let n = self.temporary_failures.entry(what).or_insert(0);
        *n += 1;
        if *n > MAX_TEMPORARY_FAILURES {
            self.temporary_failures.remove(&what);
            return false;
        }
        let mut r = [0u8; 2];
        let jitter = match self.rng.fill(&mut r) {
            Ok(()) => u64::from(u16::from_be_bytes(r)) % 1000,
            Err(_) => 500,
        };
        let at = now.saturating_add(Duration::from_millis(1000 + jitter));
        self.deferred.push((at, what));
        true
    }

    /// The IKE SA's lifetime: its original initiator rekeys it at 90 %; at 100 % either side
    /// deletes it.
    fn lifetime_due(&mut self, sa: &mut Sa, now: Duration) {
        if !matches!(sa.state, State::Established(_)) {
            return;
        }
        if sa.expire_at.is_some_and(|t| now >= t) {
            sa.expire_at = None;
            sa.rekey_at = None;
            sa.queue.clear();
            sa.queue.push_back(RequestKind::DeleteIke);
            let _ = self.pump(sa, now);
            return;
        }
        if sa.role == Role::Initiator && sa.rekey_at.is_some_and(|t| now >= t) {
            sa.rekey_at = None;
            sa.queue.push_back(RequestKind::RekeyIke);
            let _ = self.pump(sa, now);
        }
    }

    /// Takes one datagram received at `now` from `from` on our `socket`. On the NAT-T socket,
    /// pass the whole datagram: IKE messages keep their non-ESP marker; keepalives and ESP
    /// packets belong to the data path and are counted as dropped here.
    ///
    /// Never fails and never panics: malformed, unauthentic or unexpected datagrams are dropped
    /// and counted in [`IkeEndpoint::stats`].
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        socket: WireSocket,
        datagram: &[u8],
    ) {
        self.stats.received += 1;
        let bytes = match socket {
            WireSocket::Ike => datagram,
            WireSocket::Natt => match natt::classify(datagram) {
                Ok(NattDatagram::Ike(m)) => m,
                _ => {
                    self.stats.dropped_malformed += 1;
                    return;
                }
            },
        };
        let Ok(view) = Message::parse(bytes) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let h = *view.header();
        if h.exchange == ExchangeType::IKE_SA_INIT && !h.flags.response() {
            self.handle_init_request(now, from, socket, bytes);
            return;
        }
        // Messages of the original initiator carry the I flag; the SPI that is ours is the
        // other side's view of "responder SPI" in that case.
        let local_spi = if h.flags.initiator() {
            h.spi_r
        } else {
            h.spi_i
        };
        let Some(id) = self.by_spi.get(&local_spi).copied() else {
            self.stats.dropped_unknown_sa += 1;
            return;
        };
        let Some(mut sa) = self.sas.remove(&id) else {
            self.stats.dropped_unknown_sa += 1;
            return;
        };
        let role_ok = h.flags.initiator() == (sa.role == Role::Responder);
        let spis_ok = h.spi_i == sa.spi_i && (sa.spi_r == 0 || h.spi_r == sa.spi_r);
        let keep = if !role_ok || !spis_ok {
            self.stats.dropped_unexpected += 1;
            true
        } else if h.flags.response() {
            self.handle_response(&mut sa, now, h.message_id, h.exchange, bytes)
        } else {
            self.handle_request(&mut sa, now, from, socket, h.message_id, h.exchange, bytes)
        };
        if keep {
            self.sas.insert(id, sa);
        } else {
            self.forget(&sa);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Bookkeeping.

    fn new_id(&mut self) -> IkeSaId {
        let id = IkeSaId(self.next_id);
        self.next_id += 1;
        id
    }

    fn new_ike_spi(&mut self) -> Result<u64, IpsecError> {
        for _ in 0..16 {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b)?;
            let spi = u64::from_be_bytes(b);
            if spi != 0 && !self.by_spi.contains_key(&spi) {
                return Ok(spi);
            }
        }
        Err(IpsecError::InvalidConfig("random source repeats IKE SPIs"))
    }

    fn new_child_spi(&mut self) -> Result<u32, IpsecError> {
        for _ in 0..16 {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b)?;
            let spi = u32::from_be_bytes(b);
            if spi > 255 && self.child_spis.insert(spi) {
                return Ok(spi);
            }
        }
        Err(IpsecError::InvalidConfig("random source repeats ESP SPIs"))
    }

    /// The peer of the just-authenticated `sa` said INITIAL_CONTACT (RFC 7296 §2.4): it keeps
    /// no other IKE SA with us, so every other IKE SA between the same two identities is stale
    /// and goes, with its child SAs, without a Delete ([`IkeEvent::IkeSaDeleted`], by the peer).
    fn initial_contact(&mut self, sa: &Sa) {
        let stale: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|s| {
                s.id != sa.id
                    && s.peer_id.is_some()
                    && s.peer_id == sa.peer_id
                    && s.policy.local_id == sa.policy.local_id
            })
            .map(|s| s.id)
            .collect();
        for id in stale {
            if let Some(old) = self.sas.remove(&id) {
                self.forget(&old);
                self.events.push_back(IkeEvent::IkeSaDeleted {
                    sa: id,
                    by_peer: true,
                });
            }
        }
    }

    /// Drops the indexes of an SA that is gone.
    fn forget(&mut self, sa: &Sa) {
        self.by_spi.remove(&sa.local_spi());
        if let Some(c) = sa.pending.as_ref().and_then(|p| p.create.as_ref()) {
            self.child_spis.remove(&c.spi);
        }
        if let Some(r) = sa.pending.as_ref().and_then(|p| p.ike_rekey.as_ref()) {
            if self.by_spi.get(&r.spi) == Some(&sa.id) {
                self.by_spi.remove(&r.spi);
            }
        }
        if let Some(k) = sa.half_open_key {
            self.half_open.remove(&k);
        }
        match &sa.state {
            State::AuthSent(a) => {
                self.child_spis.remove(&a.child_spi);
            }
            State::Established(e) => {
                for c in &e.children {
                    self.child_spis.remove(&c.inbound_spi);
                }
            }
            _ => {}
        }
    }

    fn record_keys(&mut self, sa: &Sa) {
        if !self.config.keylog {
            return;
        }
        let rec = match &sa.state {
            State::AuthSent(a) => Some(&a.keys),
            State::HalfOpen(h) => Some(&h.keys),
            State::Established(e) => Some(&e.keys),
            State::InitSent(_) | State::Closed => None,
        }
        .map(|k| IkeKeyRecord::new(sa.spi_i, sa.spi_r, k.suite.sk, &k.keys));
        if let Some(r) = rec {
            self.key_records.insert(sa.id, r);
        }
    }

    fn send_request(&mut self, sa: &mut Sa, now: Duration, kind: RequestKind, message: &[u8]) {
        let transmit = sa.wrap(message);
        self.transmits.push_back(transmit.clone());
        sa.pending = Some(Pending {
            message_id: sa.next_message_id,
            kind,
            create: None,
            ike_rekey: None,
            transmit,
            sends: 1,
            deadline: now.saturating_add(self.config.retransmit.wait_after(1)),
        });
    }

    /// Seals and sends a response, and caches it for retransmitted requests.
    fn send_response(
        &mut self,
        sa: &mut Sa,
        request: [u8; 32],
        exchange: ExchangeType,
        message_id: u32,
        inner: &[PayloadRepr],
    ) -> Result<(), IpsecError> {
        let outer = sa.header(exchange, true, message_id);
        let keys = sa
            .keys_mut()
            .ok_or(IpsecError::IkeWrongState("no keys yet"))?;
        let bytes = keys.tx.seal(&outer, inner)?;
        let t = sa.wrap(&bytes);
        self.transmits.push_back(t.clone());
        sa.cache = Some(Cached {
            message_id,
            request,
            response: t,
        });
        sa.peer_next_message_id = message_id.wrapping_add(1);
        Ok(())
    }

    /// Sends a protected request nobody waits an answer for (an error notification).
    fn send_notification(&mut self, sa: &mut Sa, inner: &[PayloadRepr]) {
        let outer = sa.header(ExchangeType::INFORMATIONAL, false, sa.next_message_id);
        if let Some(keys) = sa.keys_mut() {
            if let Ok(bytes) = keys.tx.seal(&outer, inner) {
                let t = sa.wrap(&bytes);
                self.transmits.push_back(t);
            }
        }
        sa.next_message_id = sa.next_message_id.wrapping_add(1);
    }

    fn enqueue(&mut self, now: Duration, id: IkeSaId, kind: RequestKind) -> Result<(), IpsecError> {
        let Some(mut sa) = self.sas.remove(&id) else {
            return Err(IpsecError::IkeWrongState("no such IKE SA"));
        };
        if !matches!(sa.state, State::Established(_)) {
            self.sas.insert(id, sa);
            return Err(IpsecError::IkeWrongState("IKE SA not established"));
        }
        sa.queue.push_back(kind);
        let r = self.pump(&mut sa, now);
        self.sas.insert(id, sa);
        r
    }

    /// Sends the next queued request if the window is free.
    fn pump(&mut self, sa: &mut Sa, now: Duration) -> Result<(), IpsecError> {
        if sa.pending.is_some() {
            return Ok(());
        }
        let Some(kind) = sa.queue.pop_front() else {
            return Ok(());
        };
        let mut create = None;
        let mut ike_rekey = None;
        let mut exchange = ExchangeType::INFORMATIONAL;
        let inner = match kind {
            RequestKind::RekeyIke => {
                exchange = ExchangeType::CREATE_CHILD_SA;
                let State::Established(e) = &sa.state else {
                    return Err(IpsecError::IkeWrongState("IKE SA not established"));
                };
                let suite = e.keys.suite;
                let spi = self.new_ike_spi()?;
                let mut ni = vec![0u8; NONCE_LEN];
                self.rng.fill(&mut ni)?;
                let kex = KeyExchange::generate(suite.dh)?;
                let mut prop = ike_proposal(1, &suite);
                prop.spi = spi.to_be_bytes().to_vec();
                let inner = vec![
                    PayloadRepr::Sa(vec![prop]),
                    PayloadRepr::Nonce(ni.clone()),
                    PayloadRepr::Ke {
                        group: suite.dh.transform_id(),
                        data: kex.public_value().to_vec(),
                    },
                ];
                // Reserve the SPI until the exchange ends.
                self.by_spi.insert(spi, sa.id);
                ike_rekey = Some(Box::new(IkeRekeyRequest { spi, ni, kex }));
                inner
            }
            RequestKind::CreateChild { rekey } => {
                exchange = ExchangeType::CREATE_CHILD_SA;
                let spi = self.new_child_spi()?;
                let mut ni = vec![0u8; NONCE_LEN];
                self.rng.fill(&mut ni)?;
                let mut inner = Vec::new();
                if let Some(old) = rekey {
                    inner.push(PayloadRepr::Notify(Notify {
                        protocol: ProtocolId::ESP,
                        spi: old.to_be_bytes().to_vec(),
                        kind: NotifyType::REKEY_SA,
                        data: Vec::new(),
                    }));
                }
                let mut proposals = esp_proposals(&sa.policy, spi);
                let kex = match sa.policy.pfs {
                    Some(g) => {
                        for p in &mut proposals {
                            p.transforms
                                .push(Transform::new(TransformType::DH, g.transform_id()));
                        }
                        Some(KeyExchange::generate(g)?)
                    }
                    None => None,
                };
                inner.push(PayloadRepr::Sa(proposals));
                inner.push(PayloadRepr::Nonce(ni.clone()));
                if let Some(k) = &kex {
                    inner.push(PayloadRepr::Ke {
                        group: k.group().transform_id(),
                        data: k.public_value().to_vec(),
                    });
                }
                if sa.policy.mode == Mode::Transport {
                    inner.push(notify(NotifyType::USE_TRANSPORT_MODE, Vec::new()));
                }
                inner.push(PayloadRepr::TsI(selectors_or_any(&sa.policy.local_ts)));
                inner.push(PayloadRepr::TsR(selectors_or_any(&sa.policy.remote_ts)));
                create = Some(CreateRequest { spi, ni, kex });
                inner
            }
            RequestKind::DeleteChild { inbound_spi } => vec![PayloadRepr::Delete(Delete {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: vec![inbound_spi.to_be_bytes().to_vec()],
            })],
            RequestKind::DeleteIke => vec![PayloadRepr::Delete(Delete {
                protocol: ProtocolId::IKE,
                spi_size: 0,
                spis: Vec::new(),
            })],
            RequestKind::Liveness => Vec::new(),
            RequestKind::Init | RequestKind::Auth => {
                return Err(IpsecError::IkeWrongState("not a queued request"))
            }
        };
        let outer = sa.header(exchange, false, sa.next_message_id);
        let sealed = sa
            .keys_mut()
            .ok_or(IpsecError::IkeWrongState("no keys yet"))
            .and_then(|keys| keys.tx.seal(&outer, &inner));
        let bytes = match sealed {
            Ok(b) => b,
            Err(e) => {
                if let Some(c) = create {
                    self.child_spis.remove(&c.spi);
                }
                if let Some(r) = ike_rekey {
                    self.by_spi.remove(&r.spi);
                }
                return Err(e);
            }
        };
        self.send_request(sa, now, kind, &bytes);
        if let Some(p) = &mut sa.pending {
            p.create = create;
            p.ike_rekey = ike_rekey;
        }
        Ok(())
    }

    fn cookie_for(&self, ni: &[u8], from: SocketAddr, spi_i: u64) -> Vec<u8> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.cookie_secret);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(ni);
        match from.ip() {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.update(&spi_i.to_be_bytes());
        let mut c = vec![0u8]; // version of the secret
        c.extend_from_slice(ctx.sign().as_ref());
        c
    }

    /// A stateless answer to an IKE_SA_INIT request (COOKIE, INVALID_KE, NO_PROPOSAL_CHOSEN).
    fn stateless_answer(
        &mut self,
        from: SocketAddr,
        socket: WireSocket,
        spi_i: u64,
        payload: PayloadRepr,
    ) {
        let msg = MessageRepr {
            spi_i,
            spi_r: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(false, true),
            message_id: 0,
            payloads: vec![payload],
        };
        if let Ok(bytes) = msg.emit() {
            self.transmits
                .push_back(wrap(from, socket == WireSocket::Natt, &bytes));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Responder: IKE_SA_INIT.

    fn handle_init_request(
        &mut self,
        now: Duration,
        from: SocketAddr,
        socket: WireSocket,
        bytes: &[u8],
    ) {
        let Ok(msg) = MessageRepr::parse(bytes) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if !msg.flags.initiator() || msg.spi_r != 0 || msg.message_id != 0 || msg.spi_i == 0 {
            self.stats.dropped_unexpected += 1;
            return;
        }
        // A retransmission of a request we answered: the cached answer, byte for byte.
        if let Some(id) = self.half_open.get(&(from, msg.spi_i)).copied() {
            let cached = self
                .sas
                .get(&id)
                .and_then(|s| s.cache.as_ref())
                .filter(|c| c.message_id == 0 && c.request == digest(bytes));
            if let Some(c) = cached {
                let t = c.response.clone();
                self.stats.responses_from_cache += 1;
                self.transmits.push_back(t);
            } else {
                self.stats.dropped_unexpected += 1;
            }
            return;
        }
        let Some(policy) = self.config.responder.clone() else {
            self.stats.dropped_unknown_sa += 1;
            return;
        };
        let mut offered = None;
        let mut ke = None;
        let mut ni = None;
        for p in &msg.payloads {
            match p {
                PayloadRepr::Sa(props) if offered.is_none() => offered = Some(props.as_slice()),
                PayloadRepr::Ke { group, data } if ke.is_none() => ke = Some((*group, data)),
                PayloadRepr::Nonce(n) if ni.is_none() => ni = Some(n.clone()),
                _ => {}
            }
        }
        let (Some(offered), Some((group, ke_data)), Some(ni)) = (offered, ke, ni) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if !(16..=256).contains(&ni.len()) {
            self.stats.dropped_malformed += 1;
            return;
        }
        // Anti-DoS: demand a cookie when too many SAs are half open.
        if self.half_open.len() >= self.config.cookie_threshold {
            let expected = self.cookie_for(&ni, from, msg.spi_i);
            let valid = find_notify(&msg.payloads, NotifyType::COOKIE)
                .is_some_and(|n| ct_eq(&n.data, &expected));
            if !valid {
                self.stats.cookies_sent += 1;
                self.stateless_answer(
                    from,
                    socket,
                    msg.spi_i,
                    notify(NotifyType::COOKIE, expected),
                );
                return;
            }
        }
        // Choose a proposal, preferring one whose group matches the KE payload.
        let matching: Vec<IkeSuite> = policy
            .ike_suites
            .iter()
            .filter(|s| s.dh.transform_id() == group)
            .copied()
            .collect();
        let (chosen, suite) = match select_ike(offered, &matching) {
            Some(c) => c,
            None => {
                match select_ike(offered, &policy.ike_suites) {
                    Some((_, s)) => {
                        self.stats.invalid_ke_sent += 1;
                        let g = s.dh.transform_id().to_be_bytes().to_vec();
                        self.stateless_answer(
                            from,
                            socket,
                            msg.spi_i,
                            notify(NotifyType::INVALID_KE_PAYLOAD, g),
                        );
                    }
                    None => self.stateless_answer(
                        from,
                        socket,
                        msg.spi_i,
                        notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
                    ),
                }
                return;
            }
        };
        let res = self.answer_init(
            now, from, socket, bytes, &msg, policy, chosen, suite, ni, ke_data,
        );
        if res.is_err() {
            // A bad KE value, a failing random source: nothing sensible to answer.
            self.stats.dropped_malformed += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn answer_init(
        &mut self,
        now: Duration,
        from: SocketAddr,
        socket: WireSocket,
        bytes: &[u8],
        msg: &MessageRepr,
        policy: IkePolicy,
        chosen: crate::ike::wire::Proposal,
        suite: IkeSuite,
        ni: Vec<u8>,
        ke_data: &[u8],
    ) -> Result<(), IpsecError> {
        let kex = KeyExchange::generate(suite.dh)?;
        let public = kex.public_value().to_vec();
        let g_ir = kex.agree(ke_data)?;
        let spi_r = self.new_ike_spi()?;
        let mut nr = vec![0u8; NONCE_LEN];
        self.rng.fill(&mut nr)?;
        let keys = SaKeys::new(
            Role::Responder,
            suite,
            &g_ir,
            ni,
            nr.clone(),
            msg.spi_i,
            spi_r,
        )?;
        let natd_source = if policy.force_encap {
            let mut r = [0u8; 20];
            self.rng.fill(&mut r)?;
            r.to_vec()
        } else {
            let l = self.local_addr(socket);
            nat_detection_hash(msg.spi_i, spi_r, l.ip(), l.port()).to_vec()
        };
        let mut response = MessageRepr {
            spi_i: msg.spi_i,
            spi_r,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(false, true),
            message_id: 0,
            payloads: vec![
                PayloadRepr::Sa(vec![chosen]),
                PayloadRepr::Ke {
                    group: suite.dh.transform_id(),
                    data: public,
                },
                PayloadRepr::Nonce(nr),
                notify(NotifyType::NAT_DETECTION_SOURCE_IP, natd_source),
                notify(
                    NotifyType::NAT_DETECTION_DESTINATION_IP,
                    nat_detection_hash(msg.spi_i, spi_r, from.ip(), from.port()).to_vec(),
                ),
                notify(NotifyType::CHILDLESS_IKEV2_SUPPORTED, Vec::new()),
            ],
        };
        if self.config.user_directory.is_some() {
            response
                .payloads
                .push(notify(NotifyType::MULTIPLE_AUTH_SUPPORTED, Vec::new()));
        }
        let peer_rfc7427 = find_notify(&msg.payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS)
            .is_some_and(|n| announces_sha256(&n.data));
        if let Some(c) = &policy.cert {
            response.payloads.push(c.certreq_payload());
            if peer_rfc7427 {
                response.payloads.push(notify(
                    NotifyType::SIGNATURE_HASH_ALGORITHMS,
                    c.signature_hash_algorithms(),
                ));
            }
        }
        let out = response.emit()?;
        let id = self.new_id();
        let natt = socket == WireSocket::Natt;
        let t = wrap(from, natt, &out);
        self.transmits.push_back(t.clone());
        let sa = Sa {
            id,
            role: Role::Responder,
            spi_i: msg.spi_i,
            spi_r,
            peer: from,
            natt,
            policy,
            state: State::HalfOpen(Box::new(HalfOpen {
                keys,
                msg1: bytes.to_vec(),
                created: now,
                peer_rfc7427,
                user_wait: None,
            })),
            pending: None,
            queue: VecDeque::new(),
            next_message_id: 0,
            peer_next_message_id: 1,
            cache: Some(Cached {
                message_id: 0,
                request: digest(bytes),
                response: t,
            }),
            half_open_key: Some((from, msg.spi_i)),
            peer_id: None,
            user: None,
            rekey_at: None,
            expire_at: None,
            successor: None,
        };
        self.record_keys(&sa);
        self.by_spi.insert(spi_r, id);
        self.half_open.insert((from, msg.spi_i), id);
        // RealMessage2 (what AUTH signs) is the cached response.
        self.sas.insert(id, sa);
        Ok(())
    }

    fn local_addr(&self, socket: WireSocket) -> SocketAddr {
        match socket {
            WireSocket::Ike => self.config.local_ike,
            WireSocket::Natt => self.config.local_natt,
        }
    }

    // ------------------------------------------------------------------------------------------
    // Requests from the peer (after IKE_SA_INIT).

    /// Returns whether the SA lives on.
    #[allow(clippy::too_many_arguments)]
    fn handle_request(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        from: SocketAddr,
        socket: WireSocket,
        message_id: u32,
        exchange: ExchangeType,
        bytes: &[u8],
    ) -> bool {
        let request = digest(bytes);
        if let Some(c) = &sa.cache {
            if c.message_id == message_id && message_id.wrapping_add(1) == sa.peer_next_message_id {
                if c.request == request {
                    self.stats.responses_from_cache += 1;
                    self.transmits.push_back(c.response.clone());
                } else {
                    self.stats.dropped_unexpected += 1;
                }
                return true;
            }
        }
        if message_id != sa.peer_next_message_id {
            self.stats.dropped_unexpected += 1;
            return true;
        }
        let Some(keys) = sa.keys_mut() else {
            self.stats.dropped_unexpected += 1;
            return true;
        };
        let Ok((_, inner)) = keys.rx.open(bytes) else {
            self.stats.dropped_unauthentic += 1;
            return true;
        };
        // Authentic: answer where it came from (the initiator may have moved to NAT-T).
        if sa.role == Role::Responder {
            sa.peer = from;
            sa.natt = socket == WireSocket::Natt;
        }
        match (&sa.state, exchange) {
            (State::HalfOpen(_), ExchangeType::IKE_AUTH) => {
                self.responder_auth(sa, now, request, message_id, &inner)
            }
            (State::Established(_), ExchangeType::INFORMATIONAL) => {
                self.informational(sa, now, request, message_id, &inner)
            }
            (State::Established(_), ExchangeType::CREATE_CHILD_SA) => {
                let ike = inner.iter().any(|p| {
                    matches!(p, PayloadRepr::Sa(props)
                        if props.iter().any(|p| p.protocol == ProtocolId::IKE))
                });
                if ike {
                    self.responder_rekey_ike(sa, now, request, message_id, &inner);
                } else {
                    self.create_child_request(sa, request, message_id, &inner);
                }
                true
            }
            _ => {
                self.stats.dropped_unexpected += 1;
                true
            }
        }
    }

    /// Responder: IKE_AUTH request. Returns whether the SA lives on.
    fn responder_auth(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        request: [u8; 32],
        message_id: u32,
        inner: &[PayloadRepr],
    ) -> bool {
        let State::HalfOpen(h) = &sa.state else {
            return true;
        };
        if h.user_wait.is_some() {
            return self.responder_user_auth(sa, now, request, message_id, inner);
        }
        let mut idi = None;
        let mut auth = None;
        let mut offered = None;
        let mut tsi = None;
        let mut tsr = None;
        for p in inner {
            match p {
                PayloadRepr::IdI(id) if idi.is_none() => idi = Some(id.clone()),
                PayloadRepr::Auth { method, data } if auth.is_none() => {
                    auth = Some((*method, data.clone()))
                }
                PayloadRepr::Sa(props) if offered.is_none() => offered = Some(props.clone()),
                PayloadRepr::TsI(t) if tsi.is_none() => tsi = Some(t.clone()),
                PayloadRepr::TsR(t) if tsr.is_none() => tsr = Some(t.clone()),
                _ => {}
            }
        }
        let transport = find_notify(inner, NotifyType::USE_TRANSPORT_MODE).is_some();
        let prf = h.keys.suite.prf;
        let fail = |ep: &mut Self, sa: &mut Sa, error: IpsecError| {
            let n = [notify(NotifyType::AUTHENTICATION_FAILED, Vec::new())];
            let _ = ep.send_response(sa, request, ExchangeType::IKE_AUTH, message_id, &n);
            ep.events.push_back(IkeEvent::Failed { sa: sa.id, error });
            false
        };
        let Some(idi) = idi else {
            return fail(self, sa, IpsecError::IkeProtocol("IKE_AUTH without IDi"));
        };
        let peer_id = Identity::from_wire(&idi);
        if let Some(key) = sa.policy.psk_of_peer(&peer_id) {
            sa.policy.psk = key;
        }
        let mut body = vec![idi.id_type.0, 0, 0, 0];
        body.extend_from_slice(&idi.data);
        let octets = signed_octets(prf, &h.msg1, &h.keys.nr, &h.keys.keys.sk_pi, &body);
        if let Err(error) = verify_peer_auth(&sa.policy, prf, now, auth, inner, &idi, &octets) {
            return fail(self, sa, error);
        }
        if let (None, Some(target)) = (&sa.policy.cert, sa.policy.target_name.clone()) {
            if !peer_id.matches_target(&target) {
                let error = IpsecError::IkePeerIdMismatch {
                    peer: peer_id.to_string(),
                    target,
                };
                return fail(self, sa, error);
            }
        }
        // Our AUTH: RealMessage2 | Ni | prf(SK_pr, IDr').
        let msg2 = match &sa.cache {
            Some(c) if c.message_id == 0 => strip_marker(&c.response),
            _ => {
                return fail(
                    self,
                    sa,
                    IpsecError::IkeWrongState("IKE_SA_INIT response lost"),
                )
            }
        };
        let idr_body = sa.policy.local_id.signed_body();
        let octets = signed_octets(prf, &msg2, &h.keys.ni, &h.keys.keys.sk_pr, &idr_body);
        let our_auth = match auth_payloads(&sa.policy, prf, &octets, false, h.peer_rfc7427) {
            Ok(p) => p,
            Err(error) => return fail(self, sa, error),
        };
        let mut out = vec![PayloadRepr::IdR(sa.policy.local_id.to_wire())];
        out.extend(our_auth);
        let ask = ChildAsk {
            offered,
            tsi,
            tsr,
            transport,
        };
        let initial_contact = find_notify(inner, NotifyType::INITIAL_CONTACT).is_some();
        if find_notify(inner, NotifyType::ANOTHER_AUTH_FOLLOWS).is_some() {
            // RFC 4739: the user's authentication follows; the child SA waits for it.
            if self.config.user_directory.is_none() {
                return fail(self, sa, IpsecError::IkeMultipleAuthUnsupported);
            }
            if let State::HalfOpen(h) = &mut sa.state {
                h.user_wait = Some(Box::new(UserWait {
                    peer_id,
                    child: ask,
                    initial_contact,
                }));
            }
            let _ = self.send_response(sa, request, ExchangeType::IKE_AUTH, message_id, &out);
            return true;
        }
        self.responder_establish(
            sa,
            now,
            (request, message_id),
            out,
            ask,
            peer_id,
            None,
            initial_contact,
        )
    }

    /// Responder, RFC 4739: the initiator's second IKE_AUTH, its user's. The AUTH signs the
    /// same octets as the first one's (RealMessage1, Nr) with this message's IDi. Returns
    /// whether the SA lives on.
    fn responder_user_auth(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        request: [u8; 32],
        message_id: u32,
        inner: &[PayloadRepr],
    ) -> bool {
        let fail = |ep: &mut Self, sa: &mut Sa, error: IpsecError| {
            let n = [notify(NotifyType::AUTHENTICATION_FAILED, Vec::new())];
            let _ = ep.send_response(sa, request, ExchangeType::IKE_AUTH, message_id, &n);
            ep.events.push_back(IkeEvent::Failed { sa: sa.id, error });
            false
        };
        let mut idi = None;
        let mut auth = None;
        let mut offered = None;
        let mut tsi = None;
        let mut tsr = None;
        for p in inner {
            match p {
                PayloadRepr::IdI(id) if idi.is_none() => idi = Some(id.clone()),
                PayloadRepr::Auth { method, data } if auth.is_none() => {
                    auth = Some((*method, data.clone()))
                }
                PayloadRepr::Sa(props) if offered.is_none() => offered = Some(props.clone()),
                PayloadRepr::TsI(t) if tsi.is_none() => tsi = Some(t.clone()),
                PayloadRepr::TsR(t) if tsr.is_none() => tsr = Some(t.clone()),
                _ => {}
            }
        }
        if find_notify(inner, NotifyType::ANOTHER_AUTH_FOLLOWS).is_some() {
            return fail(
                self,
                sa,
                IpsecError::IkeProtocol("more than one user authentication"),
            );
        }
        let Some(idi) = idi else {
            return fail(
                self,
                sa,
                IpsecError::IkeProtocol("second IKE_AUTH without IDi"),
            );
        };
        let user = Identity::from_wire(&idi);
        let State::HalfOpen(h) = &sa.state else {
            return false;
        };
        let prf = h.keys.suite.prf;
        let mut body = vec![idi.id_type.0, 0, 0, 0];
        body.extend_from_slice(&idi.data);
        let octets = signed_octets(prf, &h.msg1, &h.keys.nr, &h.keys.keys.sk_pi, &body);
        let checked = verify_user_auth(
            self.config.user_directory.as_ref(),
            &sa.policy,
            prf,
            now,
            auth,
            inner,
            (&idi, &user),
            &octets,
        );
        if let Err(error) = checked {
            return fail(self, sa, error);
        }
        let State::HalfOpen(h) = &mut sa.state else {
            return false;
        };
        let Some(wait) = h.user_wait.take() else {
            return false;
        };
        let UserWait {
            peer_id,
            mut child,
            initial_contact,
        } = *wait;
        // The child SA was asked for in the first IKE_AUTH (RFC 4739 §3); one asked for here
        // instead is accepted as well.
        if offered.is_some() || tsi.is_some() || tsr.is_some() {
            child = ChildAsk {
                offered,
                tsi,
                tsr,
                transport: find_notify(inner, NotifyType::USE_TRANSPORT_MODE).is_some(),
            };
        }
        self.responder_establish(
            sa,
            now,
            (request, message_id),
            Vec::new(),
            child,
            peer_id,
            Some(user),
            initial_contact,
        )
    }

    /// Responder: the last IKE_AUTH verified; answers with `out` and the first child SA, and
    /// establishes the IKE SA. Returns whether the SA lives on.
    #[allow(clippy::too_many_arguments)]
    fn responder_establish(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        (request, message_id): ([u8; 32], u32),
        mut out: Vec<PayloadRepr>,
        ask: ChildAsk,
        peer_id: Identity,
        user: Option<Identity>,
        initial_contact: bool,
    ) -> bool {
        let State::HalfOpen(h) = &sa.state else {
            return false;
        };
        let ChildAsk {
            offered,
            tsi,
            tsr,
            transport,
        } = ask;
        // The child SA; none at all when the initiator asked for none (RFC 6023: no SA, TSi
        // and TSr payloads, as we announced in IKE_SA_INIT).
        let childless = offered.is_none() && tsi.is_none() && tsr.is_none();
        let offer = ChildOffer {
            prf: h.keys.suite.prf,
            sk_d: &h.keys.keys.sk_d,
            g_ir: None,
            ni: &h.keys.ni,
            nr: &h.keys.nr,
            offered,
            tsi,
            tsr,
            transport,
        };
        let child = if childless {
            None
        } else {
            Some(self.responder_child(sa, offer))
        };
        let State::HalfOpen(h) = std::mem::replace(&mut sa.state, State::Closed) else {
            return false;
        };
        let mut est = Established {
            keys: h.keys,
            children: Vec::new(),
            peer_rekeys: Vec::new(),
            peer_ike_rekey: None,
        };
        let child_event = match child {
            None => None,
            Some(Ok((payloads, child))) => {
                out.extend(payloads);
                est.children.push(ChildRecord {
                    inbound_spi: child.inbound.spi,
                    outbound_spi: child.outbound.spi,
                });
                Some(IkeEvent::ChildSaReady(Box::new(child)))
            }
            Some(Err((kind, error))) => {
                out.push(notify(kind, Vec::new()));
                Some(IkeEvent::ChildSaFailed { sa: sa.id, error })
            }
        };
        sa.state = State::Established(Box::new(est));
        start_lifetime(sa, now);
        if let Some(k) = sa.half_open_key.take() {
            self.half_open.remove(&k);
        }
        sa.peer_id = Some(peer_id.clone());
        sa.user = user.clone();
        let _ = self.send_response(sa, request, ExchangeType::IKE_AUTH, message_id, &out);
        if initial_contact {
            self.initial_contact(sa);
        }
        self.events.push_back(IkeEvent::IkeSaEstablished {
            sa: sa.id,
            role: Role::Responder,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            local_id: sa.policy.local_id.clone(),
            peer_id,
            peer: sa.peer,
            peer_user: user,
            local_user: None,
        });
        self.events.extend(child_event);
        true
    }

    /// Responder: the child SA of IKE_AUTH. On success the payloads to answer with and the SA.
    #[allow(clippy::type_complexity)]
    fn responder_child(
        &mut self,
        sa: &Sa,
        offer: ChildOffer<'_>,
    ) -> Result<(Vec<PayloadRepr>, ChildSa), (NotifyType, IpsecError)> {
        let ChildOffer {
            prf,
            sk_d,
            g_ir,
            ni,
            nr,
            offered,
            tsi,
            tsr,
            transport,
        } = offer;
        let no_prop = || {
            (
                NotifyType::NO_PROPOSAL_CHOSEN,
                IpsecError::IkeNoProposalChosen,
            )
        };
        let (Some(offered), Some(tsi), Some(tsr)) = (offered, tsi, tsr) else {
            return Err(no_prop());
        };
        // Narrowed to what our policy allows (RFC 7296 §2.9).
        let (Some(tsi), Some(tsr)) = (
            narrow(&tsi, &sa.policy.remote_ts),
            narrow(&tsr, &sa.policy.local_ts),
        ) else {
            return Err((NotifyType::TS_UNACCEPTABLE, IpsecError::IkeTsUnacceptable));
        };
        let our_spi = self.new_child_spi().map_err(|_| no_prop())?;
        let Some((chosen, suite, esn, peer_spi)) =
            select_esp(&offered, &sa.policy.esp_suites, our_spi)
        else {
            self.child_spis.remove(&our_spi);
            return Err(no_prop());
        };
        let keys = ChildSaKeys::derive(prf, sk_d, g_ir, ni, nr, suite).map_err(|_| no_prop())?;
        let mode = if transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        };
        let mut payloads = Vec::new();
        if transport {
            payloads.push(notify(NotifyType::USE_TRANSPORT_MODE, Vec::new()));
        }
        payloads.push(PayloadRepr::Sa(vec![chosen]));
        payloads.push(PayloadRepr::TsI(tsi.clone()));
        payloads.push(PayloadRepr::TsR(tsr.clone()));
        let child = make_child(
            sa,
            Role::Responder,
            &keys,
            suite,
            esn,
            mode,
            our_spi,
            peer_spi,
            tsr,
            tsi,
        );
        Ok((payloads, child))
    }

    /// INFORMATIONAL request on an established SA. Returns whether the SA lives on.
    fn informational(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        request: [u8; 32],
        message_id: u32,
        inner: &[PayloadRepr],
    ) -> bool {
        let mut delete_ike = false;
        let mut auth_failed = false;
        let mut ours = Vec::new();
        let mut deleted = Vec::new();
        if let State::Established(e) = &mut sa.state {
            for p in inner {
                match p {
                    PayloadRepr::Delete(d) if d.protocol == ProtocolId::IKE => delete_ike = true,
                    PayloadRepr::Delete(d) if d.protocol == ProtocolId::ESP => {
                        for spi in &d.spis {
                            let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                                continue;
                            };
                            let spi = u32::from_be_bytes(b);
                            if let Some(pos) = e.children.iter().position(|c| c.outbound_spi == spi)
                            {
                                let c = e.children.remove(pos);
                                ours.push(c.inbound_spi.to_be_bytes().to_vec());
                                deleted.push(c);
                            }
                        }
                    }
                    PayloadRepr::Notify(n) if n.kind == NotifyType::AUTHENTICATION_FAILED => {
                        auth_failed = true
                    }
                    _ => {}
                }
            }
        }
        let resp = if delete_ike || auth_failed || ours.is_empty() {
            Vec::new()
        } else {
            vec![PayloadRepr::Delete(Delete {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: ours,
            })]
        };
        let _ = self.send_response(sa, request, ExchangeType::INFORMATIONAL, message_id, &resp);
        for c in deleted {
            self.child_spis.remove(&c.inbound_spi);
            self.events.push_back(IkeEvent::ChildSaDeleted {
                sa: sa.id,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                by_peer: true,
            });
        }
        if delete_ike {
            // The peer rekeyed this IKE SA while our own rekey of it was in flight, and now
            // deletes it: on its side the new IKE SA it made won (it had not seen our request
            // yet, or its exchange used the higher nonces), so that SA takes over the child SAs
            // and our exchange is abandoned (RFC 7296 §2.8.2 from the peer's point of view).
            let theirs = match &mut sa.state {
                State::Established(e) => e.peer_ike_rekey.take(),
                _ => None,
            };
            if let Some(t) = theirs {
                self.hand_over(now, sa, t.new);
            }
            // A rekeyed IKE SA deleted while one of our CREATE_CHILD_SA requests was still in
            // flight on it: the request is made again on the IKE SA that took over.
            if let (Some(next), Some(RequestKind::CreateChild { rekey })) =
                (sa.successor, sa.pending.as_ref().map(|p| p.kind))
            {
                let again = match rekey {
                    Some(old) => Deferred::RekeyChild(old),
                    None => Deferred::CreateChild(next),
                };
                self.deferred.push((Duration::ZERO, again));
            }
            self.events.push_back(IkeEvent::IkeSaDeleted {
                sa: sa.id,
                by_peer: true,
            });
            return false;
        }
        if auth_failed {
            self.events.push_back(IkeEvent::Failed {
                sa: sa.id,
                error: IpsecError::IkeAuthFailed,
            });
            return false;
        }
        true
    }

    // ------------------------------------------------------------------------------------------
    // Responses to our requests.

    /// Returns whether the SA lives on.
    fn handle_response(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        message_id: u32,
        exchange: ExchangeType,
        bytes: &[u8],
    ) -> bool {
        let Some(p) = &sa.pending else {
            self.stats.dropped_unexpected += 1;
            return true;
        };
        if p.message_id != message_id {
            self.stats.dropped_unexpected += 1;
            return true;
        }
        let kind = p.kind;
        let expected_exchange = match kind {
            RequestKind::Init => ExchangeType::IKE_SA_INIT,
            RequestKind::Auth => ExchangeType::IKE_AUTH,
            RequestKind::CreateChild { .. } | RequestKind::RekeyIke => {
                ExchangeType::CREATE_CHILD_SA
            }
            _ => ExchangeType::INFORMATIONAL,
        };
        if exchange != expected_exchange {
            self.stats.dropped_unexpected += 1;
            return true;
        }
        if kind == RequestKind::Init {
            return self.initiator_init_response(sa, now, bytes);
        }
        let Some(keys) = sa.keys_mut() else {
            self.stats.dropped_unexpected += 1;
            return true;
        };
        let Ok((_, inner)) = keys.rx.open(bytes) else {
            self.stats.dropped_unauthentic += 1;
            return true;
        };
        let pending = sa.pending.take();
        sa.next_message_id = sa.next_message_id.wrapping_add(1);
        let keep = match kind {
            RequestKind::RekeyIke => {
                if let Some(r) = pending.and_then(|p| p.ike_rekey) {
                    self.initiator_rekey_ike(sa, now, *r, &inner);
                }
                true
            }
            RequestKind::Auth => self.initiator_auth_response(sa, now, &inner),
            RequestKind::DeleteChild { inbound_spi } => {
                if let State::Established(e) = &mut sa.state {
                    if let Some(pos) = e.children.iter().position(|c| c.inbound_spi == inbound_spi)
                    {
                        let c = e.children.remove(pos);
                        self.child_spis.remove(&c.inbound_spi);
                        self.events.push_back(IkeEvent::ChildSaDeleted {
                            sa: sa.id,
                            inbound_spi: c.inbound_spi,
                            outbound_spi: c.outbound_spi,
                            by_peer: false,
                        });
                    }
                }
                true
            }
            RequestKind::DeleteIke => {
                self.events.push_back(IkeEvent::IkeSaDeleted {
                    sa: sa.id,
                    by_peer: false,
                });
                false
            }
            RequestKind::Liveness => {
                self.events
                    .push_back(IkeEvent::LivenessConfirmed { sa: sa.id });
                true
            }
            RequestKind::CreateChild { rekey } => {
                if let Some(c) = pending.and_then(|p| p.create) {
                    self.initiator_create_child(sa, now, rekey, c, &inner);
                }
                true
            }
            RequestKind::Init => true,
        };
        if keep {
            let _ = self.pump(sa, now);
        }
        keep
    }

    /// Initiator: the IKE_SA_INIT response (or a COOKIE / INVALID_KE / error answer).
    fn initiator_init_response(&mut self, sa: &mut Sa, now: Duration, bytes: &[u8]) -> bool {
        let Ok(msg) = MessageRepr::parse(bytes) else {
            self.stats.dropped_malformed += 1;
            return true;
        };
        let State::InitSent(init) = &mut sa.state else {
            self.stats.dropped_unexpected += 1;
            return true;
        };
        // COOKIE: repeat the request with the cookie first.
        if let Some(c) = find_notify(&msg.payloads, NotifyType::COOKIE) {
            if init.cookie_rounds >= MAX_COOKIE_ROUNDS || c.data.is_empty() || c.data.len() > 64 {
                self.stats.dropped_unexpected += 1;
                return true;
            }
            init.cookie_rounds += 1;
            init.cookie = Some(c.data.clone());
            return self.resend_init(sa, now);
        }
        if let Some(n) = find_notify(&msg.payloads, NotifyType::INVALID_KE_PAYLOAD) {
            let wanted = n
                .data
                .get(..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            let offered = sa
                .policy
                .ike_suites
                .iter()
                .map(|s| s.dh)
                .find(|g| g.transform_id() == wanted);
            let group = match offered {
                Some(g) if !init.tried_groups.contains(&g) => g,
                _ => {
                    self.events.push_back(IkeEvent::Failed {
                        sa: sa.id,
                        error: IpsecError::IkeInvalidGroup(wanted),
                    });
                    return false;
                }
            };
            match KeyExchange::generate(group) {
                Ok(k) => init.kex = k,
                Err(error) => {
                    self.events.push_back(IkeEvent::Failed { sa: sa.id, error });
                    return false;
                }
            }
            init.tried_groups.push(group);
            return self.resend_init(sa, now);
        }
        if let Some(kind) = first_error_notify(&msg.payloads) {
            self.events.push_back(IkeEvent::Failed {
                sa: sa.id,
                error: notify_error(kind),
            });
            return false;
        }
        match self.complete_init(sa, now, bytes, &msg) {
            Ok(()) => true,
            Err(error) => {
                self.events.push_back(IkeEvent::Failed { sa: sa.id, error });
                false
            }
        }
    }

    /// Sends IKE_SA_INIT again after a COOKIE or INVALID_KE answer (a new exchange: the
    /// retransmission count starts over).
    fn resend_init(&mut self, sa: &mut Sa, now: Duration) -> bool {
        let msg = match &sa.state {
            State::InitSent(s) => init_request(sa, s),
            _ => return true,
        };
        match msg {
            Ok(m) => {
                self.send_request(sa, now, RequestKind::Init, &m);
                true
            }
            Err(error) => {
                self.events.push_back(IkeEvent::Failed { sa: sa.id, error });
                false
            }
        }
    }

    /// Initiator: derive the keys from a proper IKE_SA_INIT response and send IKE_AUTH.
    fn complete_init(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        bytes: &[u8],
        msg: &MessageRepr,
    ) -> Result<(), IpsecError> {
        let mut chosen = None;
        let mut ke = None;
        let mut nr = None;
        for p in &msg.payloads {
            match p {
                PayloadRepr::Sa(props) if chosen.is_none() => chosen = Some(props.as_slice()),
                PayloadRepr::Ke { group, data } if ke.is_none() => ke = Some((*group, data)),
                PayloadRepr::Nonce(n) if nr.is_none() => nr = Some(n.clone()),
                _ => {}
            }
        }
        let (Some([chosen]), Some((group, ke_data)), Some(nr)) = (chosen, ke, nr) else {
            return Err(IpsecError::IkeProtocol(
                "IKE_SA_INIT response without one proposal, KE and nonce",
            ));
        };
        if msg.spi_r == 0 || !(16..=256).contains(&nr.len()) {
            return Err(IpsecError::IkeProtocol("bad responder SPI or nonce"));
        }
        let suite = ike_suite_of(chosen)?;
        let multiple_auth =
            find_notify(&msg.payloads, NotifyType::MULTIPLE_AUTH_SUPPORTED).is_some();
        if sa.policy.user.is_some() && !multiple_auth {
            return Err(IpsecError::IkeMultipleAuthUnsupported);
        }
        let State::InitSent(init) = std::mem::replace(&mut sa.state, State::Closed) else {
            return Err(IpsecError::IkeWrongState("not in InitSent"));
        };
        if !sa.policy.ike_suites.contains(&suite)
            || suite.dh != init.kex.group()
            || group != suite.dh.transform_id()
        {
            return Err(IpsecError::IkeNoProposalChosen);
        }
        sa.spi_r = msg.spi_r;
        // NAT detection.
        let natd = |kind| find_notify(&msg.payloads, kind).map(|n| n.data.clone());
        let src_ok = natd(NotifyType::NAT_DETECTION_SOURCE_IP).is_none_or(|d| {
            d == nat_detection_hash(sa.spi_i, sa.spi_r, sa.peer.ip(), sa.peer.port())
        });
        let l = self.config.local_ike;
        let dst_ok = natd(NotifyType::NAT_DETECTION_DESTINATION_IP)
            .is_none_or(|d| d == nat_detection_hash(sa.spi_i, sa.spi_r, l.ip(), l.port()));
        let nat = !src_ok || !dst_ok;
        if let (true, Some(natt)) = (nat || sa.policy.force_encap, init.remote_natt) {
            sa.peer = natt;
            sa.natt = true;
        }
        let g_ir = init.kex.agree(ke_data)?;
        let mut keys = SaKeys::new(
            Role::Initiator,
            suite,
            &g_ir,
            init.ni.clone(),
            nr,
            sa.spi_i,
            sa.spi_r,
        )?;
        // IKE_AUTH: IDi, AUTH, [USE_TRANSPORT_MODE], SAi2, TSi, TSr.
        let prf = suite.prf;
        let idi_body = sa.policy.local_id.signed_body();
        let msg1 = match &sa.pending {
            Some(p) => strip_marker(&p.transmit),
            None => return Err(IpsecError::IkeWrongState("IKE_SA_INIT request lost")),
        };
        let octets = signed_octets(prf, &msg1, &keys.nr, &keys.keys.sk_pi, &idi_body);
        let peer_rfc7427 = find_notify(&msg.payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS)
            .is_some_and(|n| announces_sha256(&n.data));
        let auth = auth_payloads(&sa.policy, prf, &octets, true, peer_rfc7427)?;
        let child_spi = self.new_child_spi()?;
        let mut inner = vec![PayloadRepr::IdI(sa.policy.local_id.to_wire())];
        // INITIAL_CONTACT (RFC 7296 §2.4) when we hold no other IKE SA with this peer, in any
        // state: the peer may then drop whatever it still keeps from an earlier life of ours.
        let first_contact = !self
            .sas
            .values()
            .any(|s| s.id != sa.id && s.peer.ip() == sa.peer.ip());
        if first_contact {
            inner.push(notify(NotifyType::INITIAL_CONTACT, Vec::new()));
        }
        inner.extend(auth);
        if sa.policy.user.is_some() {
            // RFC 4739: our user's authentication follows in a second IKE_AUTH exchange.
            inner.push(notify(NotifyType::MULTIPLE_AUTH_SUPPORTED, Vec::new()));
            inner.push(notify(NotifyType::ANOTHER_AUTH_FOLLOWS, Vec::new()));
        }
        if sa.policy.mode == Mode::Transport {
            inner.push(notify(NotifyType::USE_TRANSPORT_MODE, Vec::new()));
        }
        inner.push(PayloadRepr::Sa(esp_proposals(&sa.policy, child_spi)));
        inner.push(PayloadRepr::TsI(selectors_or_any(&sa.policy.local_ts)));
        inner.push(PayloadRepr::TsR(selectors_or_any(&sa.policy.remote_ts)));
        sa.pending = None;
        sa.next_message_id = 1;
        let outer = sa.header(ExchangeType::IKE_AUTH, false, 1);
        let request = keys.tx.seal(&outer, &inner)?;
        sa.state = State::AuthSent(Box::new(AuthSent {
            keys,
            msg2: bytes.to_vec(),
            child_spi,
            msg1,
            peer_rfc7427,
            machine_peer: None,
        }));
        self.record_keys(sa);
        self.send_request(sa, now, RequestKind::Auth, &request);
        Ok(())
    }

    /// Initiator: the IKE_AUTH response. Returns whether the SA lives on.
    fn initiator_auth_response(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        inner: &[PayloadRepr],
    ) -> bool {
        let State::AuthSent(a) = &sa.state else {
            return true;
        };
        let fail = |ep: &mut Self, sa: &Sa, error: IpsecError| {
            ep.events.push_back(IkeEvent::Failed { sa: sa.id, error });
            false
        };
        if find_notify(inner, NotifyType::AUTHENTICATION_FAILED).is_some() {
            return fail(self, sa, IpsecError::IkeAuthFailed);
        }
        if let Some(peer_id) = a.machine_peer.clone() {
            // RFC 4739: the answer to our user's IKE_AUTH, with the child SA.
            let user = sa.policy.user.as_ref().map(|u| u.id.clone());
            return self.initiator_establish(sa, now, inner, peer_id, user);
        }
        let idr = inner.iter().find_map(|p| match p {
            PayloadRepr::IdR(id) => Some(id.clone()),
            _ => None,
        });
        let auth = inner.iter().find_map(|p| match p {
            PayloadRepr::Auth { method, data } => Some((*method, data.clone())),
            _ => None,
        });
        let (Some(idr), Some(auth)) = (idr, auth) else {
            let error =
                first_error_notify(inner)
                    .map(notify_error)
                    .unwrap_or(IpsecError::IkeProtocol(
                        "IKE_AUTH response without IDr and AUTH",
                    ));
            return fail(self, sa, error);
        };
        let prf = a.keys.suite.prf;
        let mut body = vec![idr.id_type.0, 0, 0, 0];
        body.extend_from_slice(&idr.data);
        let octets = signed_octets(prf, &a.msg2, &a.keys.ni, &a.keys.keys.sk_pr, &body);
        let auth = Some((auth.0, auth.1));
        if let Err(error) = verify_peer_auth(&sa.policy, prf, now, auth, inner, &idr, &octets) {
            self.send_notification(sa, &[notify(NotifyType::AUTHENTICATION_FAILED, Vec::new())]);
            return fail(self, sa, error);
        }
        let peer_id = Identity::from_wire(&idr);
        if let (None, Some(target)) = (&sa.policy.cert, sa.policy.target_name.clone()) {
            if !peer_id.matches_target(&target) {
                self.send_notification(
                    sa,
                    &[PayloadRepr::Delete(Delete {
                        protocol: ProtocolId::IKE,
                        spi_size: 0,
                        spis: Vec::new(),
                    })],
                );
                let error = IpsecError::IkePeerIdMismatch {
                    peer: peer_id.to_string(),
                    target,
                };
                return fail(self, sa, error);
            }
        }
        if sa.policy.user.is_some() && inner.iter().any(|p| matches!(p, PayloadRepr::Sa(_))) {
            // The responder answered with the child SA: it ignored ANOTHER_AUTH_FOLLOWS and
            // holds the IKE SA as established without our user. Stop rather than go on
            // without the user.
            self.send_notification(
                sa,
                &[PayloadRepr::Delete(Delete {
                    protocol: ProtocolId::IKE,
                    spi_size: 0,
                    spis: Vec::new(),
                })],
            );
            return fail(self, sa, IpsecError::IkeMultipleAuthUnsupported);
        }
        if let Some(user) = sa.policy.user.clone() {
            if let Err(error) = self.send_user_auth(sa, now, &user) {
                self.send_notification(
                    sa,
                    &[PayloadRepr::Delete(Delete {
                        protocol: ProtocolId::IKE,
                        spi_size: 0,
                        spis: Vec::new(),
                    })],
                );
                return fail(self, sa, error);
            }
            if let State::AuthSent(a) = &mut sa.state {
                a.machine_peer = Some(peer_id);
            }
            return true;
        }
        self.initiator_establish(sa, now, inner, peer_id, None)
    }

    /// Initiator, RFC 4739: sends the second IKE_AUTH, our user's: IDi, [CERT+], AUTH over
    /// the same octets as the first AUTH (RealMessage1, Nr) with the user's IDi.
    fn send_user_auth(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        user: &UserCredential,
    ) -> Result<(), IpsecError> {
        let outer = sa.header(ExchangeType::IKE_AUTH, false, sa.next_message_id);
        let State::AuthSent(a) = &mut sa.state else {
            return unreachable_state();
        };
        let prf = a.keys.suite.prf;
        let octets = signed_octets(
            prf,
            &a.msg1,
            &a.keys.nr,
            &a.keys.keys.sk_pi,
            &user.id.signed_body(),
        );
        let mut inner = vec![PayloadRepr::IdI(user.id.to_wire())];
        match &user.proof {
            UserProof::Password(p) => inner.push(PayloadRepr::Auth {
                method: AuthMethod::SHARED_KEY_MIC,
                data: psk_auth(prf, p, &octets),
            }),
            UserProof::Certificate(c) => {
                inner.extend(c.cert_payloads());
                inner.push(c.sign_for_peer(&octets, a.peer_rfc7427)?);
            }
        }
        let request = a.keys.tx.seal(&outer, &inner)?;
        self.send_request(sa, now, RequestKind::Auth, &request);
        Ok(())
    }

    /// Initiator: the last IKE_AUTH answer verified; takes its child SA and establishes the
    /// IKE SA. Returns whether the SA lives on.
    fn initiator_establish(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        inner: &[PayloadRepr],
        peer_id: Identity,
        user: Option<Identity>,
    ) -> bool {
        let State::AuthSent(a) = &sa.state else {
            return false;
        };
        let from = ChildKeySource {
            prf: a.keys.suite.prf,
            sk_d: &a.keys.keys.sk_d,
            g_ir: None,
            ni: &a.keys.ni,
            nr: &a.keys.nr,
        };
        let child = self.initiator_child(sa, from, a.child_spi, inner);
        let State::AuthSent(a) = std::mem::replace(&mut sa.state, State::Closed) else {
            return false;
        };
        let mut est = Established {
            keys: a.keys,
            children: Vec::new(),
            peer_rekeys: Vec::new(),
            peer_ike_rekey: None,
        };
        let child_event = match child {
            Ok(c) => {
                est.children.push(ChildRecord {
                    inbound_spi: c.inbound.spi,
                    outbound_spi: c.outbound.spi,
                });
                IkeEvent::ChildSaReady(Box::new(c))
            }
            Err((error, outbound_spi)) => {
                if let Some(out) = outbound_spi {
                    // The responder installed a child we cannot use: delete it.
                    est.children.push(ChildRecord {
                        inbound_spi: a.child_spi,
                        outbound_spi: out,
                    });
                    sa.queue.push_back(RequestKind::DeleteChild {
                        inbound_spi: a.child_spi,
                    });
                } else {
                    self.child_spis.remove(&a.child_spi);
                }
                IkeEvent::ChildSaFailed { sa: sa.id, error }
            }
        };
        sa.state = State::Established(Box::new(est));
        start_lifetime(sa, now);
        sa.peer_id = Some(peer_id.clone());
        sa.user = user.clone();
        if find_notify(inner, NotifyType::INITIAL_CONTACT).is_some() {
            self.initial_contact(sa);
        }
        self.events.push_back(IkeEvent::IkeSaEstablished {
            sa: sa.id,
            role: Role::Initiator,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            local_id: sa.policy.local_id.clone(),
            peer_id,
            peer: sa.peer,
            peer_user: None,
            local_user: user,
        });
        self.events.push_back(child_event);
        true
    }

    /// Initiator: the child SA of the IKE_AUTH response. On failure, the error and (when the
    /// responder created a child anyway) its SPI.
    fn initiator_child(
        &self,
        sa: &Sa,
        from: ChildKeySource<'_>,
        our_spi: u32,
        inner: &[PayloadRepr],
    ) -> Result<ChildSa, (IpsecError, Option<u32>)> {
        let chosen = inner.iter().find_map(|p| match p {
            PayloadRepr::Sa(props) => Some(props.clone()),
            _ => None,
        });
        let Some(chosen) = chosen else {
            let error = first_error_notify(inner)
                .map(notify_error)
                .unwrap_or(IpsecError::IkeNoProposalChosen);
            return Err((error, None));
        };
        let [chosen] = chosen.as_slice() else {
            return Err((
                IpsecError::IkeProtocol("more than one chosen ESP proposal"),
                None,
            ));
        };
        let (suite, esn, peer_spi) = esp_suite_of(chosen).map_err(|e| (e, None))?;
        if !sa.policy.esp_suites.contains(&(suite, esn)) {
            return Err((IpsecError::IkeNoProposalChosen, Some(peer_spi)));
        }
        let transport = find_notify(inner, NotifyType::USE_TRANSPORT_MODE).is_some();
        let mode = if transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        };
        if mode != sa.policy.mode {
            return Err((IpsecError::IkeNoProposalChosen, Some(peer_spi)));
        }
        let tsi = inner.iter().find_map(|p| match p {
            PayloadRepr::TsI(t) => Some(t.clone()),
            _ => None,
        });
        let tsr = inner.iter().find_map(|p| match p {
            PayloadRepr::TsR(t) => Some(t.clone()),
            _ => None,
        });
        let (Some(tsi), Some(tsr)) = (tsi, tsr) else {
            return Err((IpsecError::IkeTsUnacceptable, Some(peer_spi)));
        };
        // The responder may narrow, never widen.
        let ours_i = selectors_or_any(&sa.policy.local_ts);
        let ours_r = selectors_or_any(&sa.policy.remote_ts);
        if !all_within(&tsi, &ours_i) || !all_within(&tsr, &ours_r) {
            return Err((IpsecError::IkeTsUnacceptable, Some(peer_spi)));
        }
        let keys = ChildSaKeys::derive(from.prf, from.sk_d, from.g_ir, from.ni, from.nr, suite)
            .map_err(|e| (e, Some(peer_spi)))?;
        Ok(make_child(
            sa,
            Role::Initiator,
            &keys,
            suite,
            esn,
            mode,
            our_spi,
            peer_spi,
            tsi,
            tsr,
        ))
    }

    /// Responder: a CREATE_CHILD_SA request (a new child SA, or a rekey with `N(REKEY_SA)`).
    fn create_child_request(
        &mut self,
        sa: &mut Sa,
        request: [u8; 32],
        message_id: u32,
        inner: &[PayloadRepr],
    ) {
        let State::Established(e) = &sa.state else {
            return;
        };
        let mut offered = None;
        let mut ni = None;
        let mut tsi = None;
        let mut tsr = None;
        let mut ike_rekey = false;
        let mut ke = None;
        for p in inner {
            match p {
                PayloadRepr::Sa(props) if offered.is_none() => {
                    ike_rekey = props.iter().any(|p| p.protocol == ProtocolId::IKE);
                    offered = Some(props.clone());
                }
                PayloadRepr::Nonce(n) if ni.is_none() => ni = Some(n.clone()),
                PayloadRepr::TsI(t) if tsi.is_none() => tsi = Some(t.clone()),
                PayloadRepr::TsR(t) if tsr.is_none() => tsr = Some(t.clone()),
                PayloadRepr::Ke { group, data } if ke.is_none() => {
                    ke = Some((*group, data.clone()))
                }
                _ => {}
            }
        }
        // The child this one replaces: REKEY_SA names the requester's inbound SPI, our
        // outbound one.
        let mut replaces = Ok(None);
        if let Some(n) = find_notify(inner, NotifyType::REKEY_SA) {
            let spi = <[u8; 4]>::try_from(n.spi.as_slice()).map(u32::from_be_bytes);
            replaces = match spi {
                Ok(spi) => e
                    .children
                    .iter()
                    .find(|c| c.outbound_spi == spi)
                    .map(|c| Some(c.inbound_spi))
                    .ok_or(NotifyType::CHILD_SA_NOT_FOUND),
                Err(_) => Err(NotifyType::INVALID_SYNTAX),
            };
        }
        let transport = find_notify(inner, NotifyType::USE_TRANSPORT_MODE).is_some();
        let mut nr = vec![0u8; NONCE_LEN];
        let peer_ni = ni.clone().unwrap_or_default();
        // PFS: a KE of a group we implement and the peer offered; our KE answers it. A policy
        // that wants PFS refuses a request without it.
        let offered_groups: Vec<u16> = offered
            .iter()
            .flatten()
            .flat_map(|p| p.transforms.iter())
            .filter(|t| t.kind == TransformType::DH)
            .map(|t| t.id)
            .collect();
        let pfs = match &ke {
            None if sa.policy.pfs.is_some() => Err(()),
            None => Ok(None),
            Some((g, data)) => match DhGroup::from_transform_id(*g) {
                Ok(group) if offered_groups.contains(g) => KeyExchange::generate(group)
                    .and_then(|k| {
                        let public = k.public_value().to_vec();
                        k.agree(data).map(|s| Some((group, public, s)))
                    })
                    .map_err(|_| ()),
                _ => Err(()),
            },
        };
        let g_ir = pfs
            .as_ref()
            .ok()
            .and_then(|p| p.as_ref().map(|(_, _, s)| s.clone()));
        let result = match (replaces, ni) {
            (Err(kind), _) => Err((kind, IpsecError::IkePeerError(kind))),
            _ if ike_rekey || pfs.is_err() => Err((
                NotifyType::NO_PROPOSAL_CHOSEN,
                IpsecError::IkeNoProposalChosen,
            )),
            (_, Some(ni)) if (16..=256).contains(&ni.len()) && self.rng.fill(&mut nr).is_ok() => {
                let offer = ChildOffer {
                    prf: e.keys.suite.prf,
                    sk_d: &e.keys.keys.sk_d,
                    g_ir: g_ir.as_deref(),
                    ni: &ni,
                    nr: &nr,
                    offered,
                    tsi,
                    tsr,
                    transport,
                };
                self.responder_child(sa, offer)
            }
            _ => Err((
                NotifyType::INVALID_SYNTAX,
                IpsecError::IkeProtocol("CREATE_CHILD_SA without a proper nonce"),
            )),
        };
        let replaces = replaces.ok().flatten();
        let (response, event) = match result {
            Ok((mut payloads, mut child)) => {
                // SA, Nr, TSi, TSr (after an optional USE_TRANSPORT_MODE).
                let at = payloads
                    .iter()
                    .position(|p| matches!(p, PayloadRepr::Sa(_)))
                    .map_or(0, |i| i + 1);
                payloads.insert(at, PayloadRepr::Nonce(nr.clone()));
                if let Ok(Some((group, public, _))) = &pfs {
                    payloads.insert(
                        at + 1,
                        PayloadRepr::Ke {
                            group: group.transform_id(),
                            data: public.clone(),
                        },
                    );
                    for p in &mut payloads {
                        if let PayloadRepr::Sa(props) = p {
                            for prop in props {
                                prop.transforms
                                    .push(Transform::new(TransformType::DH, group.transform_id()));
                            }
                        }
                    }
                }
                child.replaces = replaces;
                // Are we rekeying the same child right now? Then keep the nonces of this
                // exchange to pick the redundant pair when ours completes.
                let ours_in_flight = replaces.is_some()
                    && matches!(&sa.pending, Some(p) if p.kind == RequestKind::CreateChild { rekey: replaces });
                if let State::Established(e) = &mut sa.state {
                    e.children.push(ChildRecord {
                        inbound_spi: child.inbound.spi,
                        outbound_spi: child.outbound.spi,
                    });
                    if let (true, Some(old)) = (ours_in_flight, replaces) {
                        e.peer_rekeys.push(PeerRekey {
                            old_inbound: old,
                            ni: peer_ni,
                            nr,
                        });
                    }
                }
                (payloads, IkeEvent::ChildSaReady(Box::new(child)))
            }
            Err((kind, error)) => (
                vec![notify(kind, Vec::new())],
                IkeEvent::ChildSaFailed { sa: sa.id, error },
            ),
        };
        let _ = self.send_response(
            sa,
            request,
            ExchangeType::CREATE_CHILD_SA,
            message_id,
            &response,
        );
        self.events.push_back(event);
    }

    /// Requester: the CREATE_CHILD_SA response.
    fn initiator_create_child(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        rekey: Option<u32>,
        req: CreateRequest,
        inner: &[PayloadRepr],
    ) {
        let State::Established(e) = &sa.state else {
            return;
        };
        let nr = inner.iter().find_map(|p| match p {
            PayloadRepr::Nonce(n) => Some(n.clone()),
            _ => None,
        });
        let ke = inner.iter().find_map(|p| match p {
            PayloadRepr::Ke { group, data } => Some((*group, data.as_slice())),
            _ => None,
        });
        // PFS: the answer must carry a KE of our group.
        let g_ir = match (req.kex, ke) {
            (None, _) => Ok(None),
            (Some(k), Some((g, data))) if g == k.group().transform_id() => k.agree(data).map(Some),
            (Some(k), _) => Err(IpsecError::IkeInvalidGroup(k.group().transform_id())),
        };
        let result = match (&nr, g_ir) {
            (Some(nr), Ok(g_ir)) if (16..=256).contains(&nr.len()) => {
                let from = ChildKeySource {
                    prf: e.keys.suite.prf,
                    sk_d: &e.keys.keys.sk_d,
                    g_ir: g_ir.as_deref(),
                    ni: &req.ni,
                    nr,
                };
                self.initiator_child(sa, from, req.spi, inner)
            }
            (Some(_), Err(error)) if first_error_notify(inner).is_none() => Err((error, None)),
            _ => Err((
                first_error_notify(inner)
                    .map(notify_error)
                    .unwrap_or(IpsecError::IkeProtocol(
                        "CREATE_CHILD_SA answer without nonce",
                    )),
                None,
            )),
        };
        let event = match result {
            Ok(mut child) => {
                self.temporary_failures.remove(&match rekey {
                    Some(old) => Deferred::RekeyChild(old),
                    None => Deferred::CreateChild(sa.id),
                });
                child.replaces = rekey;
                if let State::Established(e) = &mut sa.state {
                    e.children.push(ChildRecord {
                        inbound_spi: child.inbound.spi,
                        outbound_spi: child.outbound.spi,
                    });
                }
                if let Some(old) = rekey {
                    // Simultaneous rekey (RFC 7296 §2.8.1): of the two new pairs, the one whose
                    // exchange used the lowest of the four nonces is redundant, and the side
                    // that initiated that exchange deletes it; the initiator of the surviving
                    // rekey deletes the old pair.
                    let theirs = match &mut sa.state {
                        State::Established(e) => e
                            .peer_rekeys
                            .iter()
                            .position(|r| r.old_inbound == old)
                            .map(|i| e.peer_rekeys.remove(i)),
                        _ => None,
                    };
                    let ours_lowest = theirs.is_some_and(|t| {
                        let ours = std::cmp::min(&req.ni, nr.as_ref().unwrap_or(&req.ni));
                        ours < std::cmp::min(&t.ni, &t.nr)
                    });
                    let doomed = if ours_lowest { child.inbound.spi } else { old };
                    sa.queue.push_back(RequestKind::DeleteChild {
                        inbound_spi: doomed,
                    });
                }
                IkeEvent::ChildSaReady(Box::new(child))
            }
            Err((IpsecError::IkePeerError(NotifyType::TEMPORARY_FAILURE), None))
                if self.defer(
                    now,
                    match rekey {
                        Some(old) => Deferred::RekeyChild(old),
                        None => Deferred::CreateChild(sa.id),
                    },
                ) =>
            {
                // Busy peer: the request is made again later; nothing failed.
                self.child_spis.remove(&req.spi);
                return;
            }
            Err((error, peer_spi)) => {
                match peer_spi {
                    // The peer installed a child we cannot use: delete it.
                    Some(out) => {
                        if let State::Established(e) = &mut sa.state {
                            e.children.push(ChildRecord {
                                inbound_spi: req.spi,
                                outbound_spi: out,
                            });
                        }
                        sa.queue.push_back(RequestKind::DeleteChild {
                            inbound_spi: req.spi,
                        });
                    }
                    None => {
                        self.child_spis.remove(&req.spi);
                    }
                }
                IkeEvent::ChildSaFailed { sa: sa.id, error }
            }
        };
        self.events.push_back(event);
    }
}

impl IkeEndpoint {
    /// A new established IKE SA that takes over `old`'s children after a rekey.
    #[allow(clippy::too_many_arguments)]
    fn adopt_rekeyed(
        &mut self,
        now: Duration,
        old: &mut Sa,
        role: Role,
        spi_i: u64,
        spi_r: u64,
        keys: SaKeys,
    ) -> IkeSaId {
        self.install_rekeyed(now, old, role, spi_i, spi_r, keys, true)
    }

    /// A new established IKE SA from a rekey of `old`; with `adopt` it takes over `old`'s
    /// children and queued requests and [`IkeEvent::IkeSaRekeyed`] is raised, without it
    /// (a rekey collision not yet resolved) it starts empty.
    #[allow(clippy::too_many_arguments)]
    fn install_rekeyed(
        &mut self,
        now: Duration,
        old: &mut Sa,
        role: Role,
        spi_i: u64,
        spi_r: u64,
        keys: SaKeys,
        adopt: bool,
    ) -> IkeSaId {
        let (children, peer_rekeys) = match &mut old.state {
            State::Established(e) if adopt => (
                std::mem::take(&mut e.children),
                std::mem::take(&mut e.peer_rekeys),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let id = self.new_id();
        let mut sa = Sa {
            id,
            role,
            spi_i,
            spi_r,
            peer: old.peer,
            natt: old.natt,
            policy: old.policy.clone(),
            state: State::Established(Box::new(Established {
                keys,
                children,
                peer_rekeys,
                peer_ike_rekey: None,
            })),
            pending: None,
            queue: if adopt {
                std::mem::take(&mut old.queue)
            } else {
                VecDeque::new()
            },
            next_message_id: 0,
            peer_next_message_id: 0,
            cache: None,
            half_open_key: None,
            peer_id: old.peer_id.clone(),
            user: old.user.clone(),
            rekey_at: None,
            expire_at: None,
            successor: None,
        };
        start_lifetime(&mut sa, now);
        let local = sa.local_spi();
        self.by_spi.insert(local, id);
        self.record_keys(&sa);
        if adopt {
            old.successor = Some(id);
            self.events.push_back(IkeEvent::IkeSaRekeyed {
                old: old.id,
                new: id,
            });
        }
        let _ = self.pump(&mut sa, now);
        self.sas.insert(id, sa);
        id
    }

    /// `survivor` (an IKE SA in the table, made by a colliding rekey of `old`) takes over
    /// `old`'s children and queued requests; [`IkeEvent::IkeSaRekeyed`] names it.
    fn hand_over(&mut self, now: Duration, old: &mut Sa, survivor: IkeSaId) {
        if !self.sas.contains_key(&survivor) {
            // The survivor is already gone: the child SAs stay with the old IKE SA (and go
            // with it), rather than vanish here.
            return;
        }
        let (children, peer_rekeys) = match &mut old.state {
            State::Established(e) => (
                std::mem::take(&mut e.children),
                std::mem::take(&mut e.peer_rekeys),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let queue = std::mem::take(&mut old.queue);
        let Some(mut sa) = self.sas.remove(&survivor) else {
            return;
        };
        if let State::Established(e) = &mut sa.state {
            e.children.extend(children);
            e.peer_rekeys.extend(peer_rekeys);
        }
        sa.queue.extend(queue);
        old.successor = Some(survivor);
        self.events.push_back(IkeEvent::IkeSaRekeyed {
            old: old.id,
            new: survivor,
        });
        let _ = self.pump(&mut sa, now);
        self.sas.insert(survivor, sa);
    }

    /// Requester: the answer to our IKE SA rekey.
    fn initiator_rekey_ike(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        r: IkeRekeyRequest,
        inner: &[PayloadRepr],
    ) {
        let result = (|| {
            let State::Established(e) = &sa.state else {
                return Err(IpsecError::IkeWrongState("IKE SA not established"));
            };
            if let Some(kind) = first_error_notify(inner) {
                return Err(notify_error(kind));
            }
            let mut chosen = None;
            let mut nr = None;
            let mut ke = None;
            for p in inner {
                match p {
                    PayloadRepr::Sa(props) if chosen.is_none() => chosen = Some(props.clone()),
                    PayloadRepr::Nonce(n) if nr.is_none() => nr = Some(n.clone()),
                    PayloadRepr::Ke { group, data } if ke.is_none() => ke = Some((*group, data)),
                    _ => {}
                }
            }
            let (Some(chosen), Some(nr), Some((group, ke_data))) = (chosen, nr, ke) else {
                return Err(IpsecError::IkeProtocol(
                    "IKE rekey answer without SA, nonce and KE",
                ));
            };
            let [chosen] = chosen.as_slice() else {
                return Err(IpsecError::IkeProtocol("more than one chosen IKE proposal"));
            };
            let suite = ike_suite_of(chosen)?;
            let peer_spi = <[u8; 8]>::try_from(chosen.spi.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if suite != e.keys.suite
                || group != suite.dh.transform_id()
                || peer_spi == 0
                || !(16..=256).contains(&nr.len())
            {
                return Err(IpsecError::IkeNoProposalChosen);
            }
            let g_ir = r.kex.agree(ke_data)?;
            let seed = skeyseed_rekey(suite.prf, &e.keys.keys.sk_d, &g_ir, &r.ni, &nr);
            // The requester of the rekey is the initiator of the new IKE SA.
            let keys = SaKeys::from_seed(
                Role::Initiator,
                suite,
                &seed,
                r.ni.clone(),
                nr.clone(),
                r.spi,
                peer_spi,
            )?;
            Ok((keys, peer_spi, nr))
        })();
        let theirs = match &mut sa.state {
            State::Established(e) => e.peer_ike_rekey.take(),
            _ => None,
        };
        if result.is_ok() {
            self.temporary_failures.remove(&Deferred::RekeyIke(sa.id));
        }
        match result {
            Ok((keys, peer_spi, nr)) => match theirs {
                None => {
                    self.adopt_rekeyed(now, sa, Role::Initiator, r.spi, peer_spi, keys);
                    // The old SA goes.
                    sa.queue.push_back(RequestKind::DeleteIke);
                }
                Some(t) => {
                    // Simultaneous IKE SA rekey (RFC 7296 §2.8.2): the new IKE SA whose
                    // exchange used the lowest of the four nonces is redundant and is deleted
                    // by the side that initiated that exchange; the other one takes over the
                    // child SAs, and its initiator deletes the old IKE SA.
                    let ours_lowest = std::cmp::min(&r.ni, &nr) < std::cmp::min(&t.ni, &t.nr);
                    let mine = self.install_rekeyed(
                        now,
                        sa,
                        Role::Initiator,
                        r.spi,
                        peer_spi,
                        keys,
                        false,
                    );
                    if ours_lowest {
                        self.hand_over(now, sa, t.new);
                        if let Some(mut doomed) = self.sas.remove(&mine) {
                            doomed.queue.push_back(RequestKind::DeleteIke);
                            let _ = self.pump(&mut doomed, now);
                            self.sas.insert(mine, doomed);
                        }
                    } else {
                        self.hand_over(now, sa, mine);
                        sa.queue.push_back(RequestKind::DeleteIke);
                    }
                }
            },
            // Our rekey failed but the peer's, made meanwhile, succeeded: the IKE SA it
            // created carries on (the peer deletes the old one).
            Err(_) if theirs.is_some() => {
                self.by_spi.remove(&r.spi);
                if let Some(t) = theirs {
                    self.hand_over(now, sa, t.new);
                }
            }
            Err(IpsecError::IkePeerError(NotifyType::TEMPORARY_FAILURE))
                if self.defer(now, Deferred::RekeyIke(sa.id)) =>
            {
                // Busy peer (e.g. rekeying a child SA): made again later.
                self.by_spi.remove(&r.spi);
            }
            Err(error) => {
                self.by_spi.remove(&r.spi);
                self.events
                    .push_back(IkeEvent::IkeSaRekeyFailed { sa: sa.id, error });
            }
        }
    }

    /// Responder: the peer rekeys the IKE SA.
    fn responder_rekey_ike(
        &mut self,
        sa: &mut Sa,
        now: Duration,
        request: [u8; 32],
        message_id: u32,
        inner: &[PayloadRepr],
    ) {
        let result = (|| {
            let State::Established(e) = &sa.state else {
                return Err((NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()));
            };
            let suite = e.keys.suite;
            let mut offered = None;
            let mut ni = None;
            let mut ke = None;
            for p in inner {
                match p {
                    PayloadRepr::Sa(props) if offered.is_none() => offered = Some(props.clone()),
                    PayloadRepr::Nonce(n) if ni.is_none() => ni = Some(n.clone()),
                    PayloadRepr::Ke { group, data } if ke.is_none() => {
                        ke = Some((*group, data.clone()))
                    }
                    _ => {}
                }
            }
            let (Some(offered), Some(ni), Some((group, ke_data))) = (offered, ni, ke) else {
                return Err((NotifyType::INVALID_SYNTAX, Vec::new()));
            };
            let Some((mut chosen, _)) = select_ike(&offered, &[suite]) else {
                return Err((NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()));
            };
            let peer_spi = <[u8; 8]>::try_from(chosen.spi.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if peer_spi == 0 || !(16..=256).contains(&ni.len()) {
                return Err((NotifyType::INVALID_SYNTAX, Vec::new()));
            }
            if group != suite.dh.transform_id() {
                let g = suite.dh.transform_id().to_be_bytes().to_vec();
                return Err((NotifyType::INVALID_KE_PAYLOAD, g));
            }
            let fail = |_| (NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
            let our_spi = self.new_ike_spi().map_err(fail)?;
            let mut nr = vec![0u8; NONCE_LEN];
            self.rng.fill(&mut nr).map_err(fail)?;
            let kex = KeyExchange::generate(suite.dh).map_err(fail)?;
            let public = kex.public_value().to_vec();
            let g_ir = kex.agree(&ke_data).map_err(fail)?;
            let seed = skeyseed_rekey(suite.prf, &e.keys.keys.sk_d, &g_ir, &ni, &nr);
            let keys = SaKeys::from_seed(
                Role::Responder,
                suite,
                &seed,
                ni,
                nr.clone(),
                peer_spi,
                our_spi,
            )
            .map_err(fail)?;
            chosen.spi = our_spi.to_be_bytes().to_vec();
            let answer = vec![
                PayloadRepr::Sa(vec![chosen]),
                PayloadRepr::Nonce(nr),
                PayloadRepr::Ke {
                    group,
                    data: public,
                },
            ];
            Ok((answer, keys, peer_spi, our_spi))
        })();
        // Are we rekeying this IKE SA ourselves right now? Then the child SAs wait for our
        // exchange to complete, which decides which new IKE SA survives (RFC 7296 §2.8.2).
        let ours_in_flight = matches!(&sa.pending, Some(p) if p.kind == RequestKind::RekeyIke);
        match result {
            Ok((answer, keys, peer_spi, our_spi)) => {
                let _ = self.send_response(
                    sa,
                    request,
                    ExchangeType::CREATE_CHILD_SA,
                    message_id,
                    &answer,
                );
                if ours_in_flight {
                    let (ni, nr) = (keys.ni.clone(), keys.nr.clone());
                    let new = self.install_rekeyed(
                        now,
                        sa,
                        Role::Responder,
                        peer_spi,
                        our_spi,
                        keys,
                        false,
                    );
                    if let State::Established(e) = &mut sa.state {
                        e.peer_ike_rekey = Some(PeerIkeRekey { new, ni, nr });
                    }
                } else {
                    self.adopt_rekeyed(now, sa, Role::Responder, peer_spi, our_spi, keys);
                }
            }
            Err((kind, data)) => {
                let _ = self.send_response(
                    sa,
                    request,
                    ExchangeType::CREATE_CHILD_SA,
                    message_id,
                    &[notify(kind, data)],
                );
            }
        }
    }
}

/// The secrets a child SA's KEYMAT comes from.
struct ChildKeySource<'a> {
    prf: crate::ike::crypto::Prf,
    sk_d: &'a [u8],
    /// The new Diffie-Hellman secret with PFS.
    g_ir: Option<&'a [u8]>,
    ni: &'a [u8],
    nr: &'a [u8],
}

#[allow(clippy::too_many_arguments)]
fn make_child(
    sa: &Sa,
    role: Role,
    keys: &ChildSaKeys,
    suite: crate::esp::EspSuite,
    esn: bool,
    mode: Mode,
    inbound_spi: u32,
    outbound_spi: u32,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
) -> ChildSa {
    let cfg = |spi| SaConfig {
        spi,
        mode,
        suite,
        esn,
        replay_window: sa.policy.replay_window,
        lifetime: sa.policy.child_lifetime,
    };
    let (oe, oi) = keys.outbound(role);
    let (ie, ii) = keys.inbound(role);
    ChildSa {
        ike_sa: sa.id,
        role,
        outbound: cfg(outbound_spi),
        outbound_keys: EspKeys {
            encr: oe.to_vec(),
            integ: oi.to_vec(),
        },
        inbound: cfg(inbound_spi),
        inbound_keys: EspKeys {
            encr: ie.to_vec(),
            integ: ii.to_vec(),
        },
        mode,
        local_ts,
        remote_ts,
        peer: sa.peer,
        encapsulated: sa.natt,
        replaces: None,
    }
}

/// Our authentication payloads after our ID: with a pre-shared key `AUTH`; with a certificate
/// `CERT+`, (initiator) `CERTREQ` and a signed `AUTH` (RFC 7296 §1.2, §2.15), method 14 when
/// the peer announced RFC 7427 SHA2-256 signatures, else method 9.
fn auth_payloads(
    policy: &IkePolicy,
    prf: crate::ike::crypto::Prf,
    octets: &[u8],
    certreq: bool,
    peer_rfc7427: bool,
) -> Result<Vec<PayloadRepr>, IpsecError> {
    match &policy.cert {
        None => Ok(vec![PayloadRepr::Auth {
            method: AuthMethod::SHARED_KEY_MIC,
            data: psk_auth(prf, &policy.psk, octets),
        }]),
        Some(c) => {
            let mut out = c.cert_payloads();
            if certreq {
                out.push(c.certreq_payload());
            }
            out.push(c.sign_for_peer(octets, peer_rfc7427)?);
            Ok(out)
        }
    }
}

/// Verifies the peer's AUTH over `octets` as our policy wants it: the pre-shared key, or a
/// signature from a certificate that chains to our trust anchors, holds the peer's `id` and,
/// with a target name, that name ([`crate::ike::cert::CertAuth::verify_peer`]).
fn verify_peer_auth(
    policy: &IkePolicy,
    prf: crate::ike::crypto::Prf,
    now: Duration,
    auth: Option<(AuthMethod, Vec<u8>)>,
    inner: &[PayloadRepr],
    id: &crate::ike::wire::Identification,
    octets: &[u8],
) -> Result<(), IpsecError> {
    // No AUTH (EAP) is not supported.
    let Some((method, data)) = auth else {
        return Err(IpsecError::IkeAuthFailed);
    };
    match &policy.cert {
        None if method == AuthMethod::SHARED_KEY_MIC => {
            if ct_eq(&psk_auth(prf, &policy.psk, octets), &data) {
                Ok(())
            } else {
                Err(IpsecError::IkeAuthFailed)
            }
        }
        None => Err(IpsecError::IkeCertRejected(format!(
            "authentication method {} where a pre-shared key was expected",
            method.0
        ))),
        Some(c) => {
            let certs = peer_certs(inner);
            let target = policy.target_name.as_deref();
            c.verify_peer(now, &certs, id, method, &data, octets, target)
        }
    }
}

/// The X.509 certificates of CERT payloads, in order.
fn peer_certs(inner: &[PayloadRepr]) -> Vec<&[u8]> {
    inner
        .iter()
        .filter_map(|p| match p {
            PayloadRepr::Cert { encoding, data } if *encoding == CertEncoding::X509_SIGNATURE => {
                Some(data.as_slice())
            }
            _ => None,
        })
        .collect()
}

/// Verifies the user's AUTH of a second IKE_AUTH (RFC 4739): the user must be in the
/// directory; a shared-key MIC must be keyed with the user's password; a signature must come
/// from a certificate that chains to the trust anchors of our (machine) certificate policy and
/// holds the user's identity.
#[allow(clippy::too_many_arguments)]
fn verify_user_auth(
    directory: Option<&UserDirectory>,
    policy: &IkePolicy,
    prf: crate::ike::crypto::Prf,
    now: Duration,
    auth: Option<(AuthMethod, Vec<u8>)>,
    inner: &[PayloadRepr],
    (idi, user): (&crate::ike::wire::Identification, &Identity),
    octets: &[u8],
) -> Result<(), IpsecError> {
    let Some(directory) = directory else {
        return Err(IpsecError::IkeMultipleAuthUnsupported);
    };
    let Some(secret) = directory.lookup(user) else {
        return Err(IpsecError::IkeUnknownUser(user.to_string()));
    };
    let Some((method, data)) = auth else {
        return Err(IpsecError::IkeAuthFailed);
    };
    if method == AuthMethod::SHARED_KEY_MIC {
        return match secret {
            UserSecret::Password(p) if ct_eq(&psk_auth(prf, p, octets), &data) => Ok(()),
            _ => Err(IpsecError::IkeAuthFailed),
        };
    }
    let Some(c) = &policy.cert else {
        return Err(IpsecError::IkeCertRejected(
            "a user certificate, but no trust anchors (the responder uses a pre-shared key)".into(),
        ));
    };
    c.verify_peer(now, &peer_certs(inner), idi, method, &data, octets, None)
}

/// The IKE message inside a transmit (without the non-ESP marker).
fn strip_marker(t: &Transmit) -> Vec<u8> {
    match t.socket {
        WireSocket::Ike => t.contents.clone(),
        WireSocket::Natt => t.contents.get(4..).unwrap_or_default().to_vec(),
    }
}

/// The IKE_SA_INIT request of an initiator in InitSent.
fn init_request(sa: &Sa, s: &InitSent) -> Result<Vec<u8>, IpsecError> {
    let mut payloads = Vec::new();
    if let Some(c) = &s.cookie {
        payloads.push(notify(NotifyType::COOKIE, c.clone()));
    }
    let proposals = sa
        .policy
        .ike_suites
        .iter()
        .enumerate()
        .map(|(i, suite)| ike_proposal(u8::try_from(i + 1).unwrap_or(u8::MAX), suite))
        .collect();
    payloads.push(PayloadRepr::Sa(proposals));
    payloads.push(PayloadRepr::Ke {
        group: s.kex.group().transform_id(),
        data: s.kex.public_value().to_vec(),
    });
    payloads.push(PayloadRepr::Nonce(s.ni.clone()));
    payloads.push(notify(
        NotifyType::NAT_DETECTION_SOURCE_IP,
        s.natd_source.to_vec(),
    ));
    payloads.push(notify(
        NotifyType::NAT_DETECTION_DESTINATION_IP,
        nat_detection_hash(sa.spi_i, 0, sa.peer.ip(), sa.peer.port()).to_vec(),
    ));
    let user_cert = sa.policy.user.as_ref().and_then(|u| match &u.proof {
        UserProof::Certificate(c) => Some(c),
        UserProof::Password(_) => None,
    });
    if let Some(c) = sa.policy.cert.as_ref().or(user_cert) {
        payloads.push(notify(
            NotifyType::SIGNATURE_HASH_ALGORITHMS,
            c.signature_hash_algorithms(),
        ));
    }
    if sa.policy.user.is_some() {
        payloads.push(notify(NotifyType::MULTIPLE_AUTH_SUPPORTED, Vec::new()));
    }
    MessageRepr {
        spi_i: sa.spi_i,
        spi_r: 0,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(true, false),
        message_id: 0,
        payloads,
    }
    .emit()
}

/// One ESP proposal per suite of the policy, all with our inbound SPI.
fn esp_proposals(policy: &IkePolicy, spi: u32) -> Vec<crate::ike::wire::Proposal> {
    policy
        .esp_suites
        .iter()
        .enumerate()
        .map(|(i, (s, esn))| esp_proposal(u8::try_from(i + 1).unwrap_or(u8::MAX), spi, *s, *esn))
        .collect()
}

/// Starts the lifetime of a freshly established IKE SA.
fn start_lifetime(sa: &mut Sa, now: Duration) {
    if let Some(l) = sa.policy.ike_lifetime {
        sa.expire_at = Some(now.saturating_add(l));
        sa.rekey_at = Some(now.saturating_add(l.mul_f64(0.9)));
    }
}

fn check_policy(p: &IkePolicy) -> Result<(), IpsecError> {
    if p.ike_suites.is_empty() || p.ike_suites.len() > 255 {
        return Err(IpsecError::InvalidConfig(
            "policy needs 1 to 255 IKE suites",
        ));
    }
    if p.esp_suites.is_empty() || p.esp_suites.len() > 255 {
        return Err(IpsecError::InvalidConfig(
            "policy needs 1 to 255 ESP suites",
        ));
    }
    Ok(())
}

fn unreachable_state<T>() -> Result<T, IpsecError> {
    Err(IpsecError::IkeWrongState("unexpected state"))
}
