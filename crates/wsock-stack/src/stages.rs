//! The stages of a host's packet path.
//!
//! An IP packet the host's stack emits passes the egress stages in the order they were added;
//! each stage lets it continue, holds it, sends it itself on a named wire socket, or drops it:
//!
//! ```text
//!  smoltcp ──► egress stage 1 ──► egress stage 2 ──► … ──► clear: GRE-in-UDP on the clear socket
//!                 │ Hold(key)         │ Wire(NatT, ESP)      (faults and capture apply to what
//!                 ▼                   ▼                       crosses the wire)
//!           held queue (bounded,   datagram on the NAT-T socket
//!           deadline; released or
//!           dropped by a later event)
//! ```
//!
//! Inbound, a datagram from any of the host's three wire sockets is decapsulated (GRE on the
//! clear socket; a stage claims what arrives on the IKE and NAT-T sockets), then passes the
//! ingress stages with what is known about it ([`IngressMeta`]: which socket, which SA, which
//! authenticated peer), then ALE, then the stack. IPsec is a stage; tests add counting and
//! dropping stages.
//!
//! Stages run inside the host core, under its lock, and must not block.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::IpSummary;

/// The three UDP sockets of a host on the underlay (design §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireSocket {
    /// The port-500 role: IKEv2 messages (RFC 7296).
    Ike,
    /// The port-4500 role: IKEv2 with the non-ESP marker, ESP-in-UDP and keepalives (RFC 3948).
    NatT,
    /// The port-4754 role: GRE-in-UDP (RFC 8086) for traffic policy lets go in clear.
    Clear,
}

impl WireSocket {
    /// All three, in a fixed order.
    pub const ALL: [WireSocket; 3] = [WireSocket::Ike, WireSocket::NatT, WireSocket::Clear];

    /// Index into per-socket arrays (`Ike` 0, `NatT` 1, `Clear` 2).
    pub fn index(self) -> usize {
        match self {
            WireSocket::Ike => 0,
            WireSocket::NatT => 1,
            WireSocket::Clear => 2,
        }
    }

    /// The tshark dissector for this socket's port (`-d udp.port==N,<name>`).
    pub fn dissector(self) -> &'static str {
        match self {
            WireSocket::Ike => "isakmp",
            WireSocket::NatT => "udpencap",
            WireSocket::Clear => "gre",
        }
    }
}

impl fmt::Display for WireSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireSocket::Ike => "ike",
            WireSocket::NatT => "natt",
            WireSocket::Clear => "clear",
        })
    }
}

/// The real UDP addresses of one host's three wire sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireAddrs {
    /// The IKE socket.
    pub ike: SocketAddr,
    /// The NAT-T socket.
    pub natt: SocketAddr,
    /// The clear (GRE-in-UDP) socket.
    pub clear: SocketAddr,
}

impl WireAddrs {
    /// The address of one socket.
    pub fn get(&self, s: WireSocket) -> SocketAddr {
        match s {
            WireSocket::Ike => self.ike,
            WireSocket::NatT => self.natt,
            WireSocket::Clear => self.clear,
        }
    }

    /// Which of the three sockets has this address, if any.
    pub fn which(&self, addr: SocketAddr) -> Option<WireSocket> {
        WireSocket::ALL.into_iter().find(|s| self.get(*s) == addr)
    }
}

/// A datagram the host core wants sent on one of its wire sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The socket it leaves on.
    pub socket: WireSocket,
    /// The real UDP destination.
    pub to: SocketAddr,
    /// The scenario name of the destination host (the link whose faults apply).
    pub to_host: Arc<str>,
    /// The UDP payload.
    pub bytes: Vec<u8>,
}

/// Why the packet path dropped a packet. Each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// No host of the scenario has the destination address.
    NoRoute,
    /// The bytes are not a well-formed packet or datagram for this host.
    Malformed,
    /// A TCP or UDP checksum did not verify (checked before ALE sees the packet).
    BadChecksum,
    /// A stage dropped it by policy (e.g. a test's dropping stage).
    Policy,
    /// A held packet's deadline passed before the event it waited for.
    HoldExpired,
    /// A held packet's queue was full.
    HoldOverflow,
    /// A held queue was released as failed (e.g. the negotiation it waited for failed).
    HoldFailed,
    /// A datagram arrived on the IKE or NAT-T socket, or a packet needed protection, and the
    /// host has no keying module (IPsec not enabled on it).
    NoKeying,
    /// ALE blocked it (inbound connection or datagram).
    AleBlocked,
    /// The link's faults dropped it.
    Fault,
    /// A listener's backlog was full of half-open connections and this one was evicted or
    /// refused.
    BacklogFull,
    /// The stack's receive queue was full.
    QueueFull,
    /// Nothing of the packet's address family listens at its destination port (an IPv6
    /// datagram never reaches an IPv4 socket, nor the reverse).
    NoListener,
    /// ESP failed: unknown SPI, integrity, replay, lifetime (the `ERROR_IPSEC_*` code is
    /// counted by [`crate::HostCore::esp_errors`]), or sealing failed.
    Ipsec,
    /// A clear packet of a flow whose policy requires IPsec (`ERROR_IPSEC_CLEAR_TEXT_DROP`).
    ClearTextDrop,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 15] = [
        DropReason::NoRoute,
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::Policy,
        DropReason::HoldExpired,
        DropReason::HoldOverflow,
        DropReason::HoldFailed,
        DropReason::NoKeying,
        DropReason::AleBlocked,
        DropReason::Fault,
        DropReason::BacklogFull,
        DropReason::QueueFull,
        DropReason::NoListener,
        DropReason::Ipsec,
        DropReason::ClearTextDrop,
    ];

    /// Index into [`DropCounters`].
    pub fn index(self) -> usize {
        match self {
            DropReason::NoRoute => 0,
            DropReason::Malformed => 1,
            DropReason::BadChecksum => 2,
            DropReason::Policy => 3,
            DropReason::HoldExpired => 4,
            DropReason::HoldOverflow => 5,
            DropReason::HoldFailed => 6,
            DropReason::NoKeying => 7,
            DropReason::AleBlocked => 8,
            DropReason::Fault => 9,
            DropReason::BacklogFull => 10,
            DropReason::QueueFull => 11,
            DropReason::NoListener => 12,
            DropReason::Ipsec => 13,
            DropReason::ClearTextDrop => 14,
        }
    }

    /// A short name for views and logs.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoRoute => "no-route",
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad-checksum",
            DropReason::Policy => "policy",
            DropReason::HoldExpired => "hold-expired",
            DropReason::HoldOverflow => "hold-overflow",
            DropReason::HoldFailed => "hold-failed",
            DropReason::NoKeying => "no-keying",
            DropReason::AleBlocked => "ale-blocked",
            DropReason::Fault => "fault",
            DropReason::BacklogFull => "backlog-full",
            DropReason::QueueFull => "queue-full",
            DropReason::NoListener => "no-listener",
            DropReason::Ipsec => "ipsec",
            DropReason::ClearTextDrop => "clear-text-drop",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Drop counters, one per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters(pub [u64; 15]);

impl DropCounters {
    /// The count for one reason.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r.index()]
    }

    pub(crate) fn bump(&mut self, r: DropReason) {
        self.0[r.index()] += 1;
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Names a held queue: a stage picks the key (e.g. one per flow or per peer awaiting an SA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldKey(pub u64);

/// What an egress stage does with an outbound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressAction {
    /// Let the next stage see it; after the last stage it leaves in clear on the clear socket.
    Continue,
    /// Queue it under `key` until [`crate::HostCore::release_held`] or
    /// [`crate::HostCore::fail_held`], or until `deadline` (then it is dropped as
    /// [`DropReason::HoldExpired`]). Each key's queue is bounded.
    Hold {
        /// The queue.
        key: HoldKey,
        /// When the packet is dropped if nothing released it.
        deadline: Duration,
    },
    /// The stage produced the datagram to send (e.g. ESP-in-UDP) on a named socket.
    Wire {
        /// The socket it leaves on.
        socket: WireSocket,
        /// The UDP payload.
        datagram: Vec<u8>,
    },
    /// Drop it.
    Drop(DropReason),
}

/// What an ingress stage does with an inbound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressAction {
    /// Let it continue towards ALE and the stack.
    Accept,
    /// Drop it.
    Drop(DropReason),
}

/// What is known about an inbound packet besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressMeta {
    /// The wire socket it arrived on.
    pub socket: WireSocket,
    /// The real UDP source.
    pub from: SocketAddr,
    /// The SA that protected it (its inbound SPI), if any.
    pub sa_spi: Option<u32>,
    /// The authenticated peer (machine principal), if an SA vouches for one.
    pub peer_identity: Option<Arc<str>>,
}

/// What a stage does with a datagram that arrived on the IKE or NAT-T socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireIngress {
    /// Not this stage's: the next stage may claim it.
    NotMine,
    /// The stage consumed it (e.g. an IKE message); nothing enters the stack.
    Consumed,
    /// The stage decapsulated an inner IP packet that now enters the ingress path.
    Packet(Vec<u8>, IngressMeta),
    /// Drop it.
    Drop(DropReason),
}

/// Everything a stage sees beside the bytes.
#[derive(Debug, Clone, Copy)]
pub struct StageContext<'a> {
    /// Name of the host whose packet path this is.
    pub host: &'a str,
    /// The host core's clock.
    pub now: Duration,
    /// Addresses and protocol of the packet.
    pub summary: IpSummary,
}

/// A stage of the packet path. Stages run in the order they were added.
///
/// Default methods let everything through, so a stage implements only the directions it
/// cares about.
///
/// # Examples
/// A stage that counts outbound packets:
/// ```
/// use wsock_stack::stages::{EgressAction, PacketStage, StageContext};
/// #[derive(Default)]
/// struct Count(u64);
/// impl PacketStage for Count {
///     fn egress(&mut self, _: &StageContext<'_>, _: &mut Vec<u8>) -> EgressAction {
///         self.0 += 1;
///         EgressAction::Continue
///     }
/// }
/// ```
pub trait PacketStage: Send {
    /// An outbound IP packet from the stack (may rewrite it).
    fn egress(&mut self, ctx: &StageContext<'_>, packet: &mut Vec<u8>) -> EgressAction {
        let _ = (ctx, packet);
        EgressAction::Continue
    }

    /// An inbound IP packet, after decapsulation, before ALE and the stack.
    fn ingress(
        &mut self,
        ctx: &StageContext<'_>,
        meta: &IngressMeta,
        packet: &mut Vec<u8>,
    ) -> IngressAction {
        let _ = (ctx, meta, packet);
        IngressAction::Accept
    }

    /// A datagram on the IKE or NAT-T socket.
    fn wire_datagram(
        &mut self,
        now: Duration,
        socket: WireSocket,
        from: SocketAddr,
        bytes: &[u8],
    ) -> WireIngress {
        let _ = (now, socket, from, bytes);
        WireIngress::NotMine
    }

    /// Datagrams the stage itself wants sent (e.g. IKE messages, retransmissions).
    fn poll_transmit(&mut self, now: Duration) -> Option<(WireSocket, SocketAddr, Vec<u8>)> {
        let _ = now;
        None
    }

    /// The stage's next deadline on the core's clock.
    fn poll_timeout(&self) -> Option<Duration> {
        None
    }

    /// Called when a deadline the stage asked for has passed.
    fn handle_timeout(&mut self, now: Duration) {
        let _ = now;
    }
}
