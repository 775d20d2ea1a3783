//! ALE on inbound packets, before the stack sees them, and the listener backlog that decides
//! which connection requests the stack may answer.
//!
//! A TCP SYN to a listening socket is classified at ALE_AUTH_RECV_ACCEPT (a block drops it
//! silently: no RST, the client times out, as Windows does). A permitted SYN gets a listening
//! smoltcp socket made for it on demand, bound to the exact destination address, so the backlog
//! is what `listen` asked for (up to [`super::MAX_BACKLOG`]) and a SYN of the other address
//! family never reaches a listener. A full backlog evicts its oldest half-open connection (SYN
//! flood protection), or refuses with a reset when every slot is a completed connection
//! waiting for `accept`. A UDP datagram from a new remote is classified at
//! ALE_AUTH_RECV_ACCEPT (a block drops it).

use std::net::{IpAddr, SocketAddr};

use smoltcp::socket::tcp;

use super::{describe_block, Endpoint, HostCore, PoolSocket, TcpState};
use crate::stages::DropReason;
use crate::types::{Family, Protocol};
use crate::wire::IpSummary;
use wsock_ale::{AleVerdict, FlowId, InboundInfo};

/// What ALE and the backlog decided for an inbound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inbound {
    /// Let the stack see it.
    Pass,
    /// Drop it silently.
    Drop(DropReason),
    /// Answer with a TCP reset (nothing of this family listens; a full backlog).
    Refuse,
}

impl HostCore {
    /// The endpoint bound at `local` for `proto`: the specific address before the wildcard.
    pub(super) fn bound_endpoint(&self, proto: Protocol, local: SocketAddr) -> Option<u64> {
        let owners = self.ports.get(&(proto, Family::of(&local), local.port()))?;
        let matches =
            |ip: IpAddr| ip == local.ip() || (local.ip().is_loopback() && ip.is_loopback());
        owners
            .iter()
            .filter(|o| matches(o.ip))
            .chain(owners.iter().filter(|o| o.ip.is_unspecified()))
            .map(|o| o.endpoint)
            .find(|id| match (proto, self.endpoints.get(id)) {
                (Protocol::Tcp, Some(Endpoint::Tcp(t))) => {
                    matches!(t.state, TcpState::Listening { .. })
                }
                (Protocol::Udp, Some(Endpoint::Udp(u))) => u.handle.is_some(),
                _ => false,
            })
    }

    /// Whether some endpoint of either family holds `port` (smoltcp's wildcard sockets would
    /// take a packet of the other family).
    fn port_held_by_other_family(&self, proto: Protocol, family: Family, port: u16) -> bool {
        let other = match family {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        self.ports.contains_key(&(proto, other, port))
    }

    pub(super) fn ale_inbound(&mut self, packet: &[u8], sum: &IpSummary, secured: bool) -> Inbound {
        let peer = if secured {
            self.ingress_peer_with_user()
        } else {
            None
        };
        let sa_encrypts = peer.as_ref().is_some_and(|p| p.2);
        let (remote_machine, remote_user) = match peer {
            Some((m, u, _)) => (Some(m), u),
            None => (None, None),
        };
        let info = InboundInfo {
            ipsec_secured: secured,
            remote_machine,
            remote_user,
            ..InboundInfo::default()
        };
        let Some((sport, dport)) = sum.ports(packet) else {
            return Inbound::Pass;
        };
        let local = SocketAddr::new(sum.dst, dport);
        let remote = SocketAddr::new(sum.src, sport);
        let now = self.now;
        match sum.protocol {
            6 => {
                let flags = packet.get(sum.transport_offset + 13).copied().unwrap_or(0);
                if flags & 0x16 != 0x02 {
                    return Inbound::Pass; // not a connection request
                }
                if self.pending_inbound.contains_key(&(local, remote)) {
                    return Inbound::Pass; // a retransmitted SYN of a permitted connection
                }
                let Some(lid) = self.bound_endpoint(Protocol::Tcp, local) else {
                    return Inbound::Refuse;
                };
                // Let the interface take what arrived before this request (e.g. the ACK that
                // completes an earlier handshake), so the backlog is judged on current state.
                if !self.device.rx.is_empty() && !self.in_interface {
                    self.run_interface();
                }
                let Some(Endpoint::Tcp(t)) = self.endpoints.get(&lid) else {
                    return Inbound::Refuse;
                };
                let listener_ale = t.ale;
                let (opts, chosen) = (t.opts, t.chosen);
                if !secured && self.endpoint_refuses_clear(listener_ale) {
                    tracing::debug!(target: "wsock::ipsec", %remote, %local, "clear connection request to a secure socket: dropped");
                    self.clear_text_drop_event(local, remote, 6);
                    return Inbound::Drop(DropReason::ClearTextDrop);
                }
                match self
                    .ale
                    .inbound_connection(listener_ale, local, remote, &info, now)
                {
                    Ok(AleVerdict::Permit {
                        flow, protection, ..
                    }) if !secured && protection.is_some_and(|p| p.requires_security()) => {
                        if let Some(f) = flow {
                            let _ = self.ale.close_flow(f, now);
                        }
                        tracing::debug!(target: "wsock::ipsec", %remote, %local, "clear connection request where policy requires IPsec: dropped");
                        self.clear_text_drop_event(local, remote, 6);
                        Inbound::Drop(DropReason::ClearTextDrop)
                    }
                    Ok(AleVerdict::Permit {
                        flow, protection, ..
                    }) if secured
                        && !sa_encrypts
                        && protection.is_some_and(|p| p.requires_encryption()) =>
                    {
                        if let Some(f) = flow {
                            let _ = self.ale.close_flow(f, now);
                        }
                        tracing::debug!(target: "wsock::ipsec", %remote, %local, "integrity-only SA where policy requires encryption: dropped");
                        Inbound::Drop(DropReason::ClearTextDrop)
                    }
                    Ok(AleVerdict::Permit { flow, .. }) => {
                        if !self.make_room(lid) {
                            if let Some(f) = flow {
                                let _ = self.ale.close_flow(f, now);
                            }
                            tracing::info!(target: "wsock::stack", %remote, %local, "backlog full of connections waiting for accept: refused");
                            return Inbound::Refuse;
                        }
                        let queued = *self.syns_queued.get(&(lid, local.ip())).unwrap_or(&0);
                        let spare = self.spare_listeners(lid, local.ip());
                        if spare <= queued {
                            let Ok(h) = self.listen_socket(local, &opts, chosen) else {
                                return Inbound::Drop(DropReason::QueueFull);
                            };
                            if let Some(Endpoint::Tcp(t)) = self.endpoints.get_mut(&lid) {
                                if let TcpState::Listening { pool, .. } = &mut t.state {
                                    pool.push(PoolSocket {
                                        handle: h,
                                        since: now,
                                        addr: local.ip(),
                                    });
                                }
                            }
                        }
                        *self.syns_queued.entry((lid, local.ip())).or_insert(0) += 1;
                        if let Some(f) = flow {
                            self.pending_inbound.insert((local, remote), f);
                        }
                        Inbound::Pass
                    }
                    Ok(AleVerdict::Block(b)) => {
                        tracing::info!(target: "wsock::ale", %remote, %local, "inbound connection {}: dropped", describe_block(&b));
                        Inbound::Drop(DropReason::AleBlocked)
                    }
                    Err(_) => Inbound::Drop(DropReason::AleBlocked),
                }
            }
            17 => {
                let Some(id) = self.bound_endpoint(Protocol::Udp, local) else {
                    if self.port_held_by_other_family(Protocol::Udp, Family::of(&local), dport) {
                        return Inbound::Drop(DropReason::NoListener);
                    }
                    return Inbound::Pass; // the stack answers ICMP port unreachable
                };
                let Some(Endpoint::Udp(u)) = self.endpoints.get(&id) else {
                    return Inbound::Pass;
                };
                let uep = u.ale;
                if !secured && self.endpoint_refuses_clear(uep) {
                    self.clear_text_drop_event(local, remote, 17);
                    return Inbound::Drop(DropReason::ClearTextDrop);
                }
                match self.ale.udp_recv(uep, remote, &info, now) {
                    Ok(AleVerdict::Permit { protection, .. })
                        if !secured && protection.is_some_and(|p| p.requires_security()) =>
                    {
                        self.clear_text_drop_event(local, remote, 17);
                        Inbound::Drop(DropReason::ClearTextDrop)
                    }
                    Ok(AleVerdict::Permit { protection, .. })
                        if secured
                            && !sa_encrypts
                            && protection.is_some_and(|p| p.requires_encryption()) =>
                    {
                        Inbound::Drop(DropReason::ClearTextDrop)
                    }
                    Ok(AleVerdict::Permit { .. }) => Inbound::Pass,
                    Ok(AleVerdict::Block(b)) => {
                        tracing::info!(target: "wsock::ale", %remote, %local, "datagram {}: dropped", describe_block(&b));
                        Inbound::Drop(DropReason::AleBlocked)
                    }
                    Err(_) => Inbound::Drop(DropReason::AleBlocked),
                }
            }
            _ => Inbound::Pass,
        }
    }

    /// ALE per packet: a TCP segment or UDP datagram of an established flow is classified at
    /// the transport layer of its direction (FWPM_LAYER_OUTBOUND/INBOUND_TRANSPORT_V4/V6). ALE
    /// answers at once when no filter lives there. `None`: drop it; else the flow (if any) and
    /// what the deciding filter asks for.
    pub(super) fn ale_packet(
        &mut self,
        packet: &[u8],
        sum: &IpSummary,
        outbound: bool,
        secured: bool,
    ) -> Option<(Option<FlowId>, Option<wsock_ale::ProtectionRequest>)> {
        let proto = match sum.protocol {
            6 => wsock_ale::Protocol::Tcp,
            17 => wsock_ale::Protocol::Udp,
            _ => return Some((None, None)),
        };
        let Some((sport, dport)) = sum.ports(packet) else {
            return Some((None, None));
        };
        let (local, remote) = if outbound {
            (
                SocketAddr::new(sum.src, sport),
                SocketAddr::new(sum.dst, dport),
            )
        } else {
            (
                SocketAddr::new(sum.dst, dport),
                SocketAddr::new(sum.src, sport),
            )
        };
        let Some(flow) = self.ale.flow_for(proto, local, remote) else {
            return Some((None, None));
        };
        let dir = if outbound {
            wsock_ale::Direction::Outbound
        } else {
            wsock_ale::Direction::Inbound
        };
        let info = wsock_ale::PacketInfo {
            ipsec_secured: secured,
        };
        match self.ale.packet_with(flow, dir, &info, self.now) {
            Ok(AleVerdict::Block(b)) => {
                tracing::debug!(target: "wsock::ale", %local, %remote, "packet {}: dropped", describe_block(&b));
                None
            }
            Ok(AleVerdict::Permit { protection, .. }) => Some((Some(flow), protection)),
            // A flow that is gone (closed, torn down) no longer classifies its stragglers.
            Err(_) => Some((None, None)),
        }
    }

    /// Listening smoltcp sockets of listener `lid` on `addr` still waiting for a SYN.
    fn spare_listeners(&self, lid: u64, addr: IpAddr) -> usize {
        let Some(Endpoint::Tcp(t)) = self.endpoints.get(&lid) else {
            return 0;
        };
        let TcpState::Listening { pool, .. } = &t.state else {
            return 0;
        };
        pool.iter()
            .filter(|p| {
                p.addr == addr
                    && self.sockets.get::<tcp::Socket>(p.handle).state() == tcp::State::Listen
            })
            .count()
    }

    /// Makes room in a listener's backlog for one more connection: evicts the oldest
    /// half-open connection when the backlog is full. `false` when every slot holds a
    /// completed connection waiting for `accept`.
    fn make_room(&mut self, lid: u64) -> bool {
        let Some(Endpoint::Tcp(t)) = self.endpoints.get(&lid) else {
            return false;
        };
        let TcpState::Listening { backlog, pool } = &t.state else {
            return false;
        };
        let backlog = *backlog;
        let mut in_use = 0;
        let mut oldest_half_open: Option<(usize, std::time::Duration)> = None;
        for (i, p) in pool.iter().enumerate() {
            let st = self.sockets.get::<tcp::Socket>(p.handle).state();
            if st == tcp::State::Listen {
                continue;
            }
            in_use += 1;
            if st == tcp::State::SynReceived
                && oldest_half_open.is_none_or(|(_, since)| p.since < since)
            {
                oldest_half_open = Some((i, p.since));
            }
        }
        // Requests admitted since the interface last ran hold a slot too.
        in_use += self
            .syns_queued
            .iter()
            .filter(|((l, _), _)| *l == lid)
            .map(|(_, n)| *n)
            .sum::<usize>();
        if in_use < backlog {
            return true;
        }
        match oldest_half_open {
            Some((i, _)) => {
                self.drops.bump(DropReason::BacklogFull);
                self.drop_pool_socket(lid, i);
                true
            }
            None => false,
        }
    }

    /// Aborts and frees the `i`th socket of a listener's pool, closing its pending ALE flow.
    pub(super) fn drop_pool_socket(&mut self, lid: u64, i: usize) {
        let Some(Endpoint::Tcp(t)) = self.endpoints.get_mut(&lid) else {
            return;
        };
        let TcpState::Listening { pool, .. } = &mut t.state else {
            return;
        };
        if i >= pool.len() {
            return;
        }
        let p = pool.remove(i);
        let s = self.sockets.get_mut::<tcp::Socket>(p.handle);
        let key = s
            .local_endpoint()
            .zip(s.remote_endpoint())
            .map(|(l, r)| (super::sock_addr(l), super::sock_addr(r)));
        s.abort();
        self.sockets.remove(p.handle);
        if let Some(f) = key.and_then(|k| self.pending_inbound.remove(&k)) {
            let _ = self.ale.close_flow(f, self.now);
        }
    }

    /// Drops half-open connections older than the handshake timeout.
    pub(super) fn expire_half_open(&mut self) {
        let now = self.now;
        let ids: Vec<u64> = self
            .endpoints
            .iter()
            .filter(|(_, e)| matches!(e, Endpoint::Tcp(t) if matches!(t.state, TcpState::Listening { .. })))
            .map(|(id, _)| *id)
            .collect();
        for lid in ids {
            while let Some(i) = self.stale_pool_socket(lid, now) {
                self.drop_pool_socket(lid, i);
            }
        }
    }

    /// The first socket of a listener's pool that is a half-open connection past the handshake
    /// timeout, or that fell back to Closed (reset during the handshake).
    fn stale_pool_socket(&self, lid: u64, now: std::time::Duration) -> Option<usize> {
        let Some(Endpoint::Tcp(t)) = self.endpoints.get(&lid) else {
            return None;
        };
        let TcpState::Listening { pool, .. } = &t.state else {
            return None;
        };
        pool.iter().position(|p| {
            let st = self.sockets.get::<tcp::Socket>(p.handle).state();
            (st == tcp::State::SynReceived
                && now.saturating_sub(p.since) >= super::HALF_OPEN_TIMEOUT)
                || st == tcp::State::Closed
        })
    }

    /// An ICMP port unreachable answered a datagram of the UDP socket bound at `src`: its next
    /// receive reports `WSAECONNRESET` (unless `SIO_UDP_CONNRESET` turned that off).
    pub(super) fn udp_port_unreachable(&mut self, src: SocketAddr, dst: SocketAddr) {
        let Some(id) = self.bound_endpoint(Protocol::Udp, src) else {
            return;
        };
        if let Some(Endpoint::Udp(u)) = self.endpoints.get_mut(&id) {
            if u.opts.udp_connreset {
                tracing::debug!(target: "wsock::stack", %src, %dst, "port unreachable: the next receive reports WSAECONNRESET");
                u.conn_reset = true;
            }
        }
    }
}
