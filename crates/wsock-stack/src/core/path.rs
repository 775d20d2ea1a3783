//! The packet path of a host core: the quinn-proto verbs, routing, the egress and ingress
//! stages, held queues and the host's own loopback.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::HostCore;
use crate::stages::{
    DropCounters, DropReason, EgressAction, HoldKey, IngressAction, IngressMeta, PacketStage,
    StageContext, Transmit, WireAddrs, WireIngress, WireSocket,
};
use crate::wire::{self, IpSummary};

/// Where one host of the scenario is on the underlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The host's scenario name.
    pub host: Arc<str>,
    /// Its three wire sockets.
    pub wires: WireAddrs,
}

/// Virtual address -> host and wire sockets, for every host of a scenario (local or not).
///
/// # Examples
/// ```
/// use wsock_stack::core::Routes;
/// use wsock_stack::stages::WireAddrs;
/// let a = "127.0.0.1:4000".parse().unwrap();
/// let mut r = Routes::default();
/// r.insert("server", "10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap(),
///          WireAddrs { ike: a, natt: a, clear: a });
/// assert_eq!(&*r.get("10.0.0.2".parse().unwrap()).unwrap().host, "server");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_ip: HashMap<IpAddr, Route>,
    by_wire: HashMap<SocketAddr, Arc<str>>,
}

impl Routes {
    /// Adds a host.
    pub fn insert(&mut self, host: &str, ipv4: Ipv4Addr, ipv6: Ipv6Addr, wires: WireAddrs) {
        let route = Route {
            host: Arc::from(host),
            wires,
        };
        for s in WireSocket::ALL {
            self.by_wire.insert(wires.get(s), route.host.clone());
        }
        self.by_ip.insert(IpAddr::V4(ipv4), route.clone());
        self.by_ip.insert(IpAddr::V6(ipv6), route);
    }

    /// The route to a virtual address.
    pub fn get(&self, ip: IpAddr) -> Option<&Route> {
        self.by_ip.get(&ip)
    }

    /// The host that owns a wire address.
    pub fn host_of_wire(&self, addr: SocketAddr) -> Option<&Arc<str>> {
        self.by_wire.get(&addr)
    }
}

/// One held queue: packets waiting for an event (e.g. an SA), each with its deadline.
#[derive(Debug, Default)]
pub(crate) struct Held {
    pub(super) packets: VecDeque<(Vec<u8>, Duration)>,
}

/// At most this many packets wait in one held queue; more are dropped as
/// [`DropReason::HoldOverflow`].
pub const HOLD_CAPACITY: usize = 64;
/// The interface's receive queue bound.
const RX_QUEUE_LIMIT: usize = 4096;

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback(),
    }
}

impl HostCore {
    pub(super) fn advance(&mut self, now: Duration) {
        if now > self.now {
            self.now = now;
        }
    }

    /// Marks that a socket operation may have given the interface work (the next
    /// [`HostCore::poll_transmit`] runs it).
    pub fn touch(&mut self, now: Duration) {
        self.advance(now);
        self.dirty = true;
    }

    /// The core's clock: the latest time a verb was given.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Whether `ip` is this host's (one of its virtual addresses or its own loopback).
    pub fn is_local(&self, ip: IpAddr) -> bool {
        is_loopback(ip) || ip == IpAddr::V4(self.spec.ipv4) || ip == IpAddr::V6(self.spec.ipv6)
    }

    /// Whether a destination can be reached (the host itself or a host of the scenario).
    pub fn reachable(&self, ip: IpAddr) -> bool {
        ip.is_unspecified() || self.is_local(ip) || self.routes.get(ip).is_some()
    }

    /// Adds a stage at the end of the packet path.
    pub fn add_stage(&mut self, stage: Box<dyn PacketStage>) {
        self.stages.push(stage);
    }

    /// Removes every stage.
    pub fn clear_stages(&mut self) {
        self.stages.clear();
    }

    /// Drop counters by reason.
    pub fn drops(&self) -> DropCounters {
        self.drops
    }

    /// Packets waiting in held queues.
    pub fn held_count(&self) -> usize {
        self.held.values().map(|h| h.packets.len()).sum()
    }

    /// This host's wire sockets.
    pub fn wires(&self) -> WireAddrs {
        self.wires
    }

    /// A datagram arrived on one of the host's wire sockets.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        socket: WireSocket,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        self.advance(now);
        match socket {
            WireSocket::Clear => match wire::gre_decapsulate(bytes) {
                Ok(inner) => {
                    let meta = IngressMeta {
                        socket,
                        from,
                        sa_spi: None,
                        peer_identity: None,
                    };
                    let mut packet = self.device.pool.take(inner.len());
                    packet.extend_from_slice(inner);
                    self.ingress(packet, &meta);
                }
                Err(e) => {
                    tracing::debug!(target: "wsock::stack", host = %self.spec.name, error = %e, "malformed datagram dropped");
                    self.drops.bump(DropReason::Malformed);
                }
            },
            WireSocket::Ike | WireSocket::NatT => {
                for i in 0..self.stages.len() {
                    match self.stages[i].wire_datagram(now, socket, from, bytes) {
                        WireIngress::NotMine => continue,
                        WireIngress::Consumed => return,
                        WireIngress::Packet(p, meta) => {
                            self.ingress(p, &meta);
                            return;
                        }
                        WireIngress::Drop(r) => {
                            self.drops.bump(r);
                            return;
                        }
                    }
                }
                if self.ipsec.is_none() {
                    tracing::debug!(target: "wsock::stack", host = %self.spec.name, %socket, %from, "datagram on a keying socket and no keying module: dropped");
                    self.drops.bump(DropReason::NoKeying);
                    return;
                }
                if let Some((p, meta)) = self.ipsec_wire_datagram(socket, from, bytes) {
                    self.ingress(p, &meta);
                }
                self.ipsec_ingress_sa = None;
            }
        }
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, now: Duration) -> Option<Transmit> {
        self.advance(now);
        if self.out.is_empty() {
            if self.dirty {
                self.run_interface();
                self.ipsec_after_traffic();
            }
            for i in 0..self.stages.len() {
                while let Some((socket, to, bytes)) = self.stages[i].poll_transmit(now) {
                    let to_host = self
                        .routes
                        .host_of_wire(to)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(""));
                    self.out.push_back(Transmit {
                        socket,
                        to,
                        to_host,
                        bytes,
                    });
                }
            }
        }
        self.out.pop_front()
    }

    /// Gives back the buffer of a [`Transmit`] once it has been sent, for the core to build later
    /// packets in (optional: a bulk transfer then allocates nothing per packet).
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.device.pool.give(buffer);
    }

    /// When [`HostCore::handle_timeout`] should be called next (on the core's clock).
    pub fn poll_timeout(&mut self) -> Option<Duration> {
        if self.dirty || !self.out.is_empty() {
            return Some(self.now);
        }
        let mut next = self.last_expire + Duration::from_secs(1);
        let smol = self.smol_now();
        if let Some(at) = self.iface.poll_at(smol, &self.sockets) {
            next = next.min(Duration::from_micros(at.total_micros().max(0) as u64));
        }
        for h in self.held.values() {
            for (_, d) in &h.packets {
                next = next.min(*d);
            }
        }
        for s in &self.stages {
            if let Some(t) = s.poll_timeout() {
                next = next.min(t);
            }
        }
        if let Some(t) = self.ipsec_poll_timeout() {
            next = next.min(t);
        }
        Some(next)
    }

    /// Time has reached `now`: run the interface's timers, expire held packets and flows.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.advance(now);
        let now = self.now;
        let mut expired = 0;
        self.held.retain(|_, h| {
            let before = h.packets.len();
            h.packets.retain(|(_, d)| *d > now);
            expired += before - h.packets.len();
            !h.packets.is_empty()
        });
        for _ in 0..expired {
            self.drops.bump(DropReason::HoldExpired);
        }
        for s in &mut self.stages {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        self.ipsec_timeout(now);
        self.run_interface();
        self.housekeeping();
    }

    /// Sends the packets held under `key` on through the stages (e.g. an SA became ready).
    /// Returns how many were released.
    pub fn release_held(&mut self, key: HoldKey, now: Duration) -> usize {
        self.advance(now);
        let Some(h) = self.held.remove(&key) else {
            return 0;
        };
        let n = h.packets.len();
        for (p, _) in h.packets {
            self.egress(p);
        }
        n
    }

    /// Drops the packets held under `key` (e.g. the negotiation they waited for failed).
    /// Returns how many were dropped.
    pub fn fail_held(&mut self, key: HoldKey) -> usize {
        let n = self.held.remove(&key).map_or(0, |h| h.packets.len());
        for _ in 0..n {
            self.drops.bump(DropReason::HoldFailed);
        }
        n
    }

    /// Runs the interface until it has nothing more to do: process what arrived, emit what is
    /// due, and loop packets addressed to the host itself back in.
    pub(super) fn run_interface(&mut self) {
        self.dirty = false;
        self.in_interface = true;
        for _ in 0..16 {
            let smol = self.smol_now();
            let _ = self.iface.poll(smol, &mut self.device, &mut self.sockets);
            self.syns_queued.clear();
            if self.device.tx.is_empty() {
                break;
            }
            let emitted = std::mem::take(&mut self.device.tx);
            for p in emitted {
                self.egress_framed(p, super::device::HEADROOM);
            }
            if self.device.rx.is_empty() {
                break;
            }
        }
        self.in_interface = false;
    }

    /// One packet the stack emitted: loopback, or the egress stages, or clear on the wire.
    pub(super) fn egress(&mut self, packet: Vec<u8>) {
        self.egress_framed(packet, 0);
    }

    /// [`HostCore::egress`] of a packet that starts `head` bytes into its buffer (0, or the GRE
    /// header's room the device leaves in front of what the interface emits).
    pub(super) fn egress_framed(&mut self, mut packet: Vec<u8>, mut head: usize) {
        let Ok(summary) = IpSummary::parse(packet.get(head..).unwrap_or_default()) else {
            self.drops.bump(DropReason::Malformed);
            return;
        };
        if self.is_local(summary.dst) {
            // The host's own addresses and loopback never reach the wire or the stages.
            packet.drain(..head);
            self.ingress_checked(packet);
            return;
        }
        let Some((flow, protection)) = self.ale_packet(&packet[head..], &summary, true, false)
        else {
            self.drops.bump(DropReason::AleBlocked);
            return;
        };
        let routes = self.routes.clone();
        let Some(route) = routes.get(summary.dst) else {
            tracing::debug!(target: "wsock::stack", host = %self.spec.name, dst = %summary.dst, "no route: packet dropped");
            self.drops.bump(DropReason::NoRoute);
            return;
        };
        if !self.stages.is_empty() && head > 0 {
            // Stages see the bare IP packet.
            packet.drain(..head);
            head = 0;
        }
        for i in 0..self.stages.len() {
            let ctx = StageContext {
                host: &self.spec.name,
                now: self.now,
                summary,
            };
            match self.stages[i].egress(&ctx, &mut packet) {
                EgressAction::Continue => {}
                EgressAction::Hold { key, deadline } => {
                    let q = self.held.entry(key).or_default();
                    if q.packets.len() >= HOLD_CAPACITY {
                        self.drops.bump(DropReason::HoldOverflow);
                    } else {
                        q.packets.push_back((packet, deadline));
                    }
                    return;
                }
                EgressAction::Wire { socket, datagram } => {
                    self.out.push_back(Transmit {
                        socket,
                        to: route.wires.get(socket),
                        to_host: route.host.clone(),
                        bytes: datagram,
                    });
                    return;
                }
                EgressAction::Drop(r) => {
                    tracing::debug!(target: "wsock::stack", host = %self.spec.name, reason = %r, "stage dropped outbound packet");
                    self.drops.bump(r);
                    return;
                }
            }
        }
        // IPsec: what policy protects, or what an SA to the peer covers, leaves as ESP.
        let need = match flow {
            Some(_) => self.ipsec_need(flow, protection.as_ref(), summary.dst),
            None if self.closing_needs.is_empty() => None,
            None => summary.ports(&packet[head..]).and_then(|(sp, dp)| {
                self.closing_need(
                    SocketAddr::new(summary.src, sp),
                    SocketAddr::new(summary.dst, dp),
                )
            }),
        };
        if (need.is_some() || self.ipsec.is_some())
            && self.ipsec_egress(&mut packet, head, &summary, flow, need)
        {
            return;
        }
        if let Some(f) = flow {
            if self
                .ale
                .flow(f)
                .is_some_and(|i| i.security.qm_sa_id.is_some())
            {
                // A flow that was secured never continues in clear text.
                tracing::warn!(target: "wsock::ipsec", host = %self.spec.name, "clear packet of a secured flow refused");
                self.ipsec_counters.downgrades_refused += 1;
                self.drops.bump(DropReason::ClearTextDrop);
                return;
            }
        }
        self.ipsec_counters.clear_sent += 1;
        let framed = if head == wire::GRE_HEADER_LEN {
            // The header's room is there: no byte of the packet moves.
            wire::gre_emit_header(&mut packet)
        } else {
            packet.drain(..head);
            wire::gre_encapsulate_in_place(&mut packet)
        };
        match framed {
            Ok(()) => self.out.push_back(Transmit {
                socket: WireSocket::Clear,
                to: route.wires.clear,
                to_host: route.host.clone(),
                bytes: packet,
            }),
            Err(_) => self.drops.bump(DropReason::Malformed),
        }
    }

    /// An inbound packet after decapsulation: the ingress stages, then the checks.
    fn ingress(&mut self, mut packet: Vec<u8>, meta: &IngressMeta) {
        let summary = match IpSummary::parse(&packet) {
            Ok(s) if s.dst == IpAddr::V4(self.spec.ipv4) || s.dst == IpAddr::V6(self.spec.ipv6) => {
                s
            }
            _ => {
                self.drops.bump(DropReason::Malformed);
                return;
            }
        };
        for i in 0..self.stages.len() {
            let ctx = StageContext {
                host: &self.spec.name,
                now: self.now,
                summary,
            };
            if let IngressAction::Drop(r) = self.stages[i].ingress(&ctx, meta, &mut packet) {
                tracing::debug!(target: "wsock::stack", host = %self.spec.name, reason = %r, "stage dropped inbound packet");
                self.drops.bump(r);
                return;
            }
        }
        self.ingress_checked(packet);
    }

    /// Checksums, ICMP errors, ALE, then the interface's queue.
    fn ingress_checked(&mut self, packet: Vec<u8>) {
        let Ok(summary) = IpSummary::parse(&packet) else {
            self.drops.bump(DropReason::Malformed);
            return;
        };
        if !wire::transport_checksum_ok(&packet, &summary) {
            self.drops.bump(DropReason::BadChecksum);
            return;
        }
        if let Some(err) = wire::icmp_port_unreachable(&packet, &summary) {
            self.udp_port_unreachable(err.original_src, err.original_dst);
        }
        let secured = self.ipsec_ingress_sa.is_some();
        match self.ale_inbound(&packet, &summary, secured) {
            super::ale_glue::Inbound::Pass => {
                let Some((flow, protection)) = self.ale_packet(&packet, &summary, false, secured)
                else {
                    self.drops.bump(DropReason::AleBlocked);
                    return;
                };
                if let (Some(f), Some((mm, qm))) = (flow, self.ipsec_ingress_sa) {
                    self.note_flow_sa(f, mm, qm);
                }
                if !secured && self.refuse_clear(flow, protection.as_ref(), summary.src) {
                    tracing::debug!(target: "wsock::ipsec", host = %self.spec.name, src = %summary.src, "clear text where IPsec is required: dropped");
                    self.drops.bump(DropReason::ClearTextDrop);
                    return;
                }
            }
            super::ale_glue::Inbound::Drop(r) => {
                self.drops.bump(r);
                return;
            }
            super::ale_glue::Inbound::Refuse => {
                if let Some(rst) = wire::tcp_reset_for(&packet, &summary) {
                    self.egress(rst);
                }
                return;
            }
        }
        if self.device.rx.len() >= RX_QUEUE_LIMIT {
            self.drops.bump(DropReason::QueueFull);
            return;
        }
        self.device.rx.push_back(packet);
        self.dirty = true;
    }
}
