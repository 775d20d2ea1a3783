//! The socket operations of a host core: Winsock semantics on top of smoltcp. Each returns
//! `Ok(None)` when it would block; the caller waits for the core's next change.

use std::net::SocketAddr;
use std::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::IpAddress;

use super::{
    blocked, close_gracefully, describe_block, ep, listen_ep, sock_addr, BufferChoice, Endpoint,
    HostCore, Orphan, TcpEp, TcpState, UdpEp, CONNECT_TIMEOUT, MAX_BACKLOG, ORPHAN_LINGER,
};
use crate::error::{Result, StackError};
use crate::types::{Family, Protocol, Readiness, Shutdown, SocketOptions};
use wsock_ale::{AleVerdict, BlockEffect, EndpointId};

/// Endpoint operations. Each returns `Ok(None)` when it would block.
impl HostCore {
    /// Creates an unbound endpoint (`socket()`) with its ALE endpoint; returns its id.
    pub fn create(
        &mut self,
        proto: Protocol,
        family: Family,
        ctx: wsock_ale::EndpointContext,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let opts = SocketOptions::default();
        let ale = self.ale.create_endpoint(ctx);
        let e = match proto {
            Protocol::Tcp => Endpoint::Tcp(TcpEp {
                family,
                opts,
                chosen: BufferChoice::default(),
                local: None,
                owns_port: false,
                state: TcpState::Fresh,
                shut_send: false,
                shut_recv: false,
                aborted: None,
                ale,
                ale_owned: true,
                flow: None,
            }),
            Protocol::Udp => Endpoint::Udp(UdpEp {
                family,
                opts,
                local: None,
                handle: None,
                connected: None,
                shut_send: false,
                shut_recv: false,
                ale,
                conn_reset: false,
            }),
        };
        self.endpoints.insert(id, e);
        id
    }

    /// The options of endpoint `id`.
    ///
    /// # Errors
    /// `NotSocket` for an unknown id.
    pub fn options(&mut self, id: u64) -> Result<SocketOptions> {
        Ok(match self.ep_mut(id)? {
            Endpoint::Tcp(t) => t.opts,
            Endpoint::Udp(u) => u.opts,
        })
    }

    /// Replaces the options of endpoint `id`.
    ///
    /// # Errors
    /// `NotSocket`; `InvalidArgument` for `SO_REUSEADDR` with `SO_EXCLUSIVEADDRUSE`.
    pub fn set_options(&mut self, id: u64, opts: SocketOptions) -> Result<()> {
        if opts.reuse_addr && opts.exclusive_addr {
            return Err(StackError::InvalidArgument(
                "SO_REUSEADDR and SO_EXCLUSIVEADDRUSE exclude each other",
            ));
        }
        let handle = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => {
                // A size that differs from the one held is the application's choice (it then
                // fixes the smoltcp buffer of a connection made after it).
                t.chosen.recv |= opts.recv_buffer != t.opts.recv_buffer;
                t.chosen.send |= opts.send_buffer != t.opts.send_buffer;
                t.opts = opts;
                match t.state {
                    TcpState::Connected { handle, .. } | TcpState::Connecting { handle, .. } => {
                        Some(handle)
                    }
                    _ => None,
                }
            }
            Endpoint::Udp(u) => {
                u.opts = opts;
                None
            }
        };
        if let Some(h) = handle {
            self.sockets
                .get_mut::<tcp::Socket>(h)
                .set_nagle_enabled(!opts.nodelay);
        }
        Ok(())
    }

    /// Binds (`bind()`), classifying ALE_RESOURCE_ASSIGNMENT.
    ///
    /// # Errors
    /// `AddrInUse`, `AccessDenied` (exclusive holder or policy), `AddrNotAvailable`,
    /// `FamilyMismatch`, `InvalidArgument` (already bound).
    pub fn bind(&mut self, id: u64, addr: SocketAddr) -> Result<()> {
        if let Endpoint::Tcp(t) = self.ep_mut(id)? {
            if !matches!(t.state, TcpState::Fresh) {
                return Err(StackError::InvalidArgument("socket is already bound"));
            }
        }
        self.bind_ep(id, addr)?;
        // ALE_RESOURCE_ASSIGNMENT for the explicit bind.
        let (ale, assigned) = (self.ale_of(id)?, self.bound_local(id)?);
        let now = self.now;
        if let AleVerdict::Block(b) = self.ale.bind(ale, addr, assigned.port(), now)? {
            self.release_ports(id);
            match self.ep_mut(id)? {
                Endpoint::Tcp(t) => {
                    t.local = None;
                    t.owns_port = false;
                }
                Endpoint::Udp(u) => u.local = None,
            }
            return Err(blocked(&b));
        }
        if let Endpoint::Udp(_) = self.ep_mut(id)? {
            self.open_udp(id)?;
        }
        Ok(())
    }

    pub(super) fn ale_of(&mut self, id: u64) -> Result<EndpointId> {
        Ok(match self.ep_mut(id)? {
            Endpoint::Tcp(t) => t.ale,
            Endpoint::Udp(u) => u.ale,
        })
    }

    fn bound_local(&mut self, id: u64) -> Result<SocketAddr> {
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => t.local,
            Endpoint::Udp(u) => u.local,
        }
        .ok_or(StackError::InvalidArgument("socket is not bound"))
    }

    /// Re-authorizes every flow after a policy change; TCP flows that fail are torn down.
    pub fn reauthorize(&mut self) {
        let now = self.now;
        for (flow, verdict) in self.ale.reauthorize(now) {
            let AleVerdict::Block(b) = verdict else {
                continue;
            };
            if b.effect != BlockEffect::FlowTornDown {
                continue;
            }
            let reason = StackError::ConnectionAborted(crate::error::Abort::Policy(Box::new(b)));
            let ids: Vec<u64> = self
                .endpoints
                .iter()
                .filter(|(_, e)| matches!(e, Endpoint::Tcp(t) if t.flow == Some(flow)))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                tracing::info!(target: "wsock::ale", endpoint = id, "connection torn down by policy");
                let _ = self.abort(id, reason.clone());
            }
        }
    }

    /// The local address a packet from `local` to `peer` carries: a wildcard bind takes the
    /// host's address of the peer's family (or loopback towards loopback).
    fn routed_local(&self, local: SocketAddr, peer: SocketAddr) -> SocketAddr {
        if !local.ip().is_unspecified() {
            return local;
        }
        let ip = match peer.ip() {
            std::net::IpAddr::V4(a) if a.is_loopback() => std::net::IpAddr::V4(a),
            std::net::IpAddr::V6(a) if a.is_loopback() => std::net::IpAddr::V6(a),
            ip => self.source_for(Family::of(&SocketAddr::new(ip, 0))),
        };
        SocketAddr::new(ip, local.port())
    }

    fn open_udp(&mut self, id: u64) -> Result<()> {
        let u = self.udp_mut(id)?;
        if u.handle.is_some() {
            return Ok(());
        }
        let local = u.local.ok_or(StackError::InvalidArgument("not bound"))?;
        let opts = u.opts;
        self.instantiate_secure_filters(
            id,
            super::secure::Instantiate::Accept {
                local,
                protocol: 17,
            },
        );
        let slots = (opts.recv_buffer / 512).clamp(16, 4096);
        let rx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; slots],
            vec![0u8; opts.recv_buffer.clamp(65536, 16 << 20)],
        );
        let tx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; slots],
            vec![0u8; opts.send_buffer.clamp(65536, 16 << 20)],
        );
        let mut s = udp::Socket::new(rx, tx);
        let lep = listen_ep(local);
        s.bind(lep)
            .map_err(|_| StackError::InvalidArgument("cannot bind"))?;
        let h = self.sockets.add(s);
        self.udp_mut(id)?.handle = Some(h);
        Ok(())
    }

    fn implicit_bind(&mut self, id: u64) -> Result<SocketAddr> {
        let (local, family) = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => (t.local, t.family),
            Endpoint::Udp(u) => (u.local, u.family),
        };
        if let Some(l) = local {
            return Ok(l);
        }
        let any = match family {
            Family::V4 => SocketAddr::from(([0, 0, 0, 0], 0)),
            Family::V6 => SocketAddr::from(([0u16; 8], 0)),
        };
        self.bind_ep(id, any)?;
        if let Endpoint::Udp(_) = self.ep_mut(id)? {
            self.open_udp(id)?;
        }
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => t.local.ok_or(StackError::NotSocket),
            Endpoint::Udp(u) => u.local.ok_or(StackError::NotSocket),
        }
    }

    /// Starts listening (`listen()`), classifying ALE_AUTH_LISTEN; the backlog is capped at
    /// [`super::MAX_BACKLOG`].
    ///
    /// # Errors
    /// `InvalidArgument` when unbound, `IsConnected`, `AccessDenied` by policy.
    pub fn listen(&mut self, id: u64, backlog: usize) -> Result<()> {
        let t = self.tcp_mut(id)?;
        match t.state {
            TcpState::Listening { .. } => return Ok(()),
            TcpState::Fresh => {}
            _ => return Err(StackError::IsConnected),
        }
        t.local
            .ok_or(StackError::InvalidArgument("listen on an unbound socket"))?;
        let ale = t.ale;
        let local = t.local;
        let now = self.now;
        if let Some(local) = local {
            self.instantiate_secure_filters(
                id,
                super::secure::Instantiate::Accept { local, protocol: 6 },
            );
        }
        if let AleVerdict::Block(b) = self.ale.listen(ale, now)? {
            return Err(blocked(&b));
        }
        // Listening smoltcp sockets are made per connection request (see `ale_glue`).
        self.tcp_mut(id)?.state = TcpState::Listening {
            backlog: backlog.clamp(1, MAX_BACKLOG),
            pool: Vec::new(),
        };
        Ok(())
    }

    /// Takes the oldest completed connection (`accept()`); `Ok(None)` when none is ready.
    ///
    /// # Errors
    /// `NotListening`, `NotSocket`, `ConnectionReset` when the connection died first.
    pub fn try_accept(&mut self, id: u64) -> Result<Option<(u64, SocketAddr)>> {
        let t = match self.endpoints.get(&id) {
            Some(Endpoint::Tcp(t)) => t,
            Some(Endpoint::Udp(_)) => {
                return Err(StackError::InvalidArgument("not a stream socket"))
            }
            None => return Err(StackError::NotSocket),
        };
        let TcpState::Listening { pool, .. } = &t.state else {
            return Err(StackError::NotListening);
        };
        let (opts, chosen, family, listener_ale) = (t.opts, t.chosen, t.family, t.ale);
        // The oldest completed connection first.
        let mut ready: Option<(usize, Duration)> = None;
        for (i, p) in pool.iter().enumerate() {
            let st = self.sockets.get::<tcp::Socket>(p.handle).state();
            if !matches!(
                st,
                tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
            ) && ready.is_none_or(|(_, since)| p.since < since)
            {
                ready = Some((i, p.since));
            }
        }
        let Some((i, _)) = ready else { return Ok(None) };
        let local_listen = t.local.ok_or(StackError::NotSocket)?;
        let h = match &mut self.tcp_mut(id)?.state {
            TcpState::Listening { pool, .. } => pool.remove(i).handle,
            _ => return Err(StackError::NotListening),
        };
        let s = self.sockets.get::<tcp::Socket>(h);
        let Some(peer) = s.remote_endpoint().map(sock_addr) else {
            self.sockets.remove(h);
            return Err(StackError::ConnectionReset);
        };
        let local = s.local_endpoint().map(sock_addr).unwrap_or(local_listen);
        // ALE_FLOW_ESTABLISHED for the flow ALE_AUTH_RECV_ACCEPT permitted at the SYN.
        // The accepted socket gets an ALE endpoint of its own that takes over the flow.
        let flow = self.pending_inbound.remove(&(local, peer));
        let mut own_ale = None;
        if let Some(f) = flow {
            let now = self.now;
            let verdict = self.ale.established(f, now);
            let accepted = match verdict {
                Ok(AleVerdict::Block(b)) => {
                    tracing::info!(target: "wsock::ale", "{}: accepted connection torn down", describe_block(&b));
                    None
                }
                Ok(_) => self.ale.accept(listener_ale, f, now).ok(),
                Err(e) => {
                    tracing::info!(target: "wsock::ale", error = %e, "accepted connection has no flow: torn down");
                    None
                }
            };
            let Some(acc) = accepted else {
                self.sockets.get_mut::<tcp::Socket>(h).abort();
                self.orphans.push(Orphan {
                    handle: h,
                    deadline: self.now + ORPHAN_LINGER,
                    timewait_since: None,
                });
                return Ok(None);
            };
            own_ale = Some(acc);
        }
        let nid = self.next_id;
        self.next_id += 1;
        self.endpoints.insert(
            nid,
            Endpoint::Tcp(TcpEp {
                family,
                opts,
                chosen,
                local: Some(local),
                owns_port: false,
                state: TcpState::Connected { handle: h, peer },
                shut_send: false,
                shut_recv: false,
                aborted: None,
                ale: own_ale.unwrap_or(listener_ale),
                ale_owned: own_ale.is_some(),
                flow,
            }),
        );
        Ok(Some((nid, peer)))
    }

    /// Starts a TCP connect; `Ok(())` once the SYN is queued.
    pub fn start_connect(&mut self, id: u64, peer: SocketAddr) -> Result<()> {
        let t = self.tcp_mut(id)?;
        if Family::of(&peer) != t.family {
            return Err(StackError::FamilyMismatch);
        }
        match t.state {
            TcpState::Fresh | TcpState::Failed(_) => {}
            TcpState::Connecting { .. } => return Err(StackError::AlreadyInProgress),
            TcpState::Connected { .. } => return Err(StackError::IsConnected),
            TcpState::Listening { .. } => {
                return Err(StackError::InvalidArgument("socket is listening"))
            }
        }
        if peer.ip().is_unspecified() || peer.port() == 0 {
            return Err(StackError::AddrNotAvailable);
        }
        let local = self.implicit_bind(id)?;
        // ALE_RESOURCE_ASSIGNMENT (implicit bind, if this is the first) and ALE_AUTH_CONNECT:
        // a block fails the connect at once and no SYN leaves.
        let ale = self.ale_of(id)?;
        let now = self.now;
        // ALE_AUTH_CONNECT sees the local address the route chose, as on Windows.
        let local_seen = self.routed_local(local, peer);
        self.instantiate_secure_filters(
            id,
            super::secure::Instantiate::Connect {
                local: local_seen,
                remote: peer,
                protocol: 6,
            },
        );
        let flow = match self.ale.connect(ale, local_seen, peer, now)? {
            AleVerdict::Block(b) => return Err(blocked(&b)),
            AleVerdict::Permit { flow, .. } => flow,
        };
        self.tcp_mut(id)?.flow = flow;
        let (opts, chosen) = {
            let t = self.tcp_mut(id)?;
            (t.opts, t.chosen)
        };
        let h = self.new_tcp_socket(&opts, chosen);
        let local_ep = listen_ep(local);
        let HostCore { iface, sockets, .. } = self;
        let s = sockets.get_mut::<tcp::Socket>(h);
        s.set_timeout(Some(smoltcp::time::Duration::from_millis(
            CONNECT_TIMEOUT.as_millis() as u64,
        )));
        if s.connect(iface.context(), ep(peer), local_ep).is_err() {
            sockets.remove(h);
            return Err(StackError::HostUnreachable);
        }
        let started = self.now;
        let t = self.tcp_mut(id)?;
        t.state = TcpState::Connecting {
            handle: h,
            peer,
            started,
        };
        t.aborted = None;
        Ok(())
    }

    /// `Some(())` once connected.
    pub fn connect_status(&mut self, id: u64) -> Result<Option<()>> {
        self.tcp_status(id)?;
        match &self.tcp_mut(id)?.state {
            TcpState::Connected { .. } => Ok(Some(())),
            TcpState::Connecting { .. } => Ok(None),
            TcpState::Failed(e) => Err(e.clone()),
            _ => Err(StackError::NotConnected),
        }
    }

    fn connected_handle(&mut self, id: u64) -> Result<SocketHandle> {
        self.tcp_status(id)?;
        let t = self.tcp_mut(id)?;
        if let Some(e) = &t.aborted {
            return Err(e.clone());
        }
        match &t.state {
            TcpState::Connected { handle, .. } => Ok(*handle),
            TcpState::Connecting { .. } => Err(StackError::NotConnected),
            TcpState::Failed(e) => Err(e.clone()),
            _ => Err(StackError::NotConnected),
        }
    }

    /// Reads stream bytes; `Some(0)` is end of stream.
    pub fn try_recv(&mut self, id: u64, buf: &mut [u8], peek: bool) -> Result<Option<usize>> {
        let h = self.connected_handle(id)?;
        if self.tcp_mut(id)?.shut_recv {
            return Err(StackError::Shutdown);
        }
        if buf.is_empty() {
            return Ok(Some(0));
        }
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        let r = if peek {
            s.peek_slice(buf)
        } else {
            s.recv_slice(buf)
        };
        match r {
            Ok(0) if s.may_recv() => Ok(None),
            Ok(0) => Ok(Some(0)),
            Ok(n) => Ok(Some(n)),
            Err(tcp::RecvError::Finished) => Ok(Some(0)),
            Err(tcp::RecvError::InvalidState) => Ok(Some(0)),
        }
    }

    /// Queues stream bytes (`send()`); `Ok(None)` when the send buffer is full.
    ///
    /// # Errors
    /// `NotConnected`, `Shutdown`, `ConnectionReset`, the abort reason.
    pub fn try_send(&mut self, id: u64, buf: &[u8]) -> Result<Option<usize>> {
        let h = self.connected_handle(id)?;
        if self.tcp_mut(id)?.shut_send {
            return Err(StackError::Shutdown);
        }
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        if !s.may_send() {
            return Err(StackError::ConnectionReset);
        }
        match s.send_slice(buf) {
            Ok(0) if !buf.is_empty() => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(StackError::ConnectionReset),
        }
    }

    /// `Some(())` once everything queued has been acknowledged (used by graceful close).
    pub fn send_drained(&mut self, id: u64) -> Result<Option<()>> {
        let h = self.connected_handle(id)?;
        let s = self.sockets.get::<tcp::Socket>(h);
        Ok((s.send_queue() == 0).then_some(()))
    }

    /// `shutdown()`: `SD_SEND` queues a FIN after the data.
    ///
    /// # Errors
    /// `NotConnected` for a stream socket that is not connected.
    pub fn shutdown(&mut self, id: u64, how: Shutdown) -> Result<()> {
        match self.ep_mut(id)? {
            Endpoint::Udp(u) => {
                if matches!(how, Shutdown::Send | Shutdown::Both) {
                    u.shut_send = true;
                }
                if matches!(how, Shutdown::Receive | Shutdown::Both) {
                    u.shut_recv = true;
                }
                Ok(())
            }
            Endpoint::Tcp(_) => {
                let h = self.connected_handle(id)?;
                let t = self.tcp_mut(id)?;
                if matches!(how, Shutdown::Receive | Shutdown::Both) {
                    t.shut_recv = true;
                }
                if matches!(how, Shutdown::Send | Shutdown::Both) && !t.shut_send {
                    t.shut_send = true;
                    close_gracefully(self.sockets.get_mut::<tcp::Socket>(h));
                }
                Ok(())
            }
        }
    }

    /// Aborts a connection locally (policy teardown): the peer gets a reset, the socket an error.
    pub fn abort(&mut self, id: u64, reason: StackError) -> Result<()> {
        let t = self.tcp_mut(id)?;
        if let TcpState::Connected { handle, .. } | TcpState::Connecting { handle, .. } = t.state {
            t.aborted = Some(reason);
            self.sockets.get_mut::<tcp::Socket>(handle).abort();
            // The reset goes out at the next interface run.
            self.dirty = true;
        }
        Ok(())
    }

    /// `closesocket()`: ALE_ENDPOINT_CLOSURE, then a graceful close (or a reset with
    /// `SO_LINGER` zero or unread received data); the connection finishes in the background.
    ///
    /// # Errors
    /// `NotSocket` for an unknown id.
    pub fn close(&mut self, id: u64) -> Result<()> {
        let e = self.endpoints.remove(&id).ok_or(StackError::NotSocket)?;
        self.release_ports(id);
        // ALE_ENDPOINT_CLOSURE: the flow, and the endpoint unless it is a listener's.
        let now = self.now;
        match &e {
            Endpoint::Tcp(t) => {
                if let Some(f) = t.flow {
                    self.ipsec_remember_closing(f);
                    let _ = self.ale.close_flow(f, now);
                }
                if t.ale_owned {
                    let _ = self.ale.close_endpoint(t.ale, now);
                }
            }
            Endpoint::Udp(u) => {
                // Datagrams still queued keep the protection their flows had.
                for f in self.ale.endpoint_flows(u.ale).unwrap_or_default() {
                    self.ipsec_remember_closing(f);
                }
                let _ = self.ale.close_endpoint(u.ale, now);
            }
        }
        self.remove_secure_filters(id);
        let reap = self.now + ORPHAN_LINGER;
        match e {
            Endpoint::Tcp(t) => match t.state {
                TcpState::Listening { pool, .. } => {
                    for p in pool {
                        let s = self.sockets.get_mut::<tcp::Socket>(p.handle);
                        if s.state() == tcp::State::Listen {
                            self.sockets.remove(p.handle);
                        } else {
                            s.abort();
                            self.orphans.push(Orphan {
                                handle: p.handle,
                                deadline: reap,
                                timewait_since: None,
                            });
                        }
                    }
                }
                TcpState::Connected { handle, .. } | TcpState::Connecting { handle, .. } => {
                    let s = self.sockets.get_mut::<tcp::Socket>(handle);
                    // Unread received data makes close a reset (RFC 1122 §4.2.2.13, as Windows
                    // does): the writer learns at once that its data was not read.
                    let unread = s.recv_queue() > 0;
                    if t.opts.linger == Some(Duration::ZERO) || t.aborted.is_some() || unread {
                        s.abort();
                    } else {
                        close_gracefully(s);
                    }
                    let deadline = match t.opts.linger {
                        Some(d) if !d.is_zero() => self.now + d,
                        _ => reap,
                    };
                    self.orphans.push(Orphan {
                        handle,
                        deadline,
                        timewait_since: None,
                    });
                }
                _ => {}
            },
            Endpoint::Udp(u) => {
                if let Some(h) = u.handle {
                    // A datagram `sendto` accepted belongs to the stack: flush it to the device
                    // before the socket goes (the egress path sends what the device holds).
                    if self.sockets.get::<udp::Socket>(h).send_queue() > 0 {
                        let now = self.smol_now();
                        let HostCore {
                            iface,
                            sockets,
                            device,
                            ..
                        } = self;
                        iface.poll_egress(now, device, sockets);
                        self.dirty = true;
                    }
                    self.sockets.remove(h);
                }
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// `getsockname()`.
    ///
    /// # Errors
    /// `InvalidArgument` when unbound.
    pub fn local_addr(&mut self, id: u64) -> Result<SocketAddr> {
        let fam = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => {
                if let TcpState::Connected { .. } = t.state {
                    if let Some(l) = t.local.filter(|l| !l.ip().is_unspecified()) {
                        return Ok(l);
                    }
                }
                t.family
            }
            Endpoint::Udp(u) => u.family,
        };
        let local = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => {
                let h = match t.state {
                    TcpState::Connected { handle, .. } | TcpState::Connecting { handle, .. } => {
                        Some(handle)
                    }
                    _ => None,
                };
                let l = t.local;
                if let Some(h) = h {
                    if let Some(e) = self.sockets.get::<tcp::Socket>(h).local_endpoint() {
                        return Ok(sock_addr(e));
                    }
                }
                l
            }
            Endpoint::Udp(u) => u.local,
        };
        let _ = fam;
        local.ok_or(StackError::InvalidArgument("socket is not bound"))
    }

    /// `getpeername()`.
    ///
    /// # Errors
    /// `NotConnected`.
    pub fn peer_addr(&mut self, id: u64) -> Result<SocketAddr> {
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => match t.state {
                TcpState::Connected { peer, .. } => Ok(peer),
                _ => Err(StackError::NotConnected),
            },
            Endpoint::Udp(u) => u.connected.ok_or(StackError::NotConnected),
        }
    }

    /// Sets (or with `None` dissolves) a datagram socket's default peer.
    ///
    /// # Errors
    /// `FamilyMismatch`, the implicit bind's errors.
    pub fn udp_connect(&mut self, id: u64, peer: Option<SocketAddr>) -> Result<()> {
        let fam = self.udp_mut(id)?.family;
        if let Some(p) = peer {
            if Family::of(&p) != fam {
                return Err(StackError::FamilyMismatch);
            }
        }
        self.implicit_bind(id)?;
        self.udp_mut(id)?.connected = peer;
        Ok(())
    }

    /// Queues one datagram (`sendto()`), classifying ALE_AUTH_CONNECT for a new remote;
    /// `Ok(None)` when the send buffer is full.
    ///
    /// # Errors
    /// `MessageTooLong` beyond the MTU, `NotConnected`, `AccessDenied` by policy, `Shutdown`.
    pub fn try_send_to(
        &mut self,
        id: u64,
        buf: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<Option<usize>> {
        let mtu = self.device.mtu;
        let u = self.udp_mut(id)?;
        if u.shut_send {
            return Err(StackError::Shutdown);
        }
        let fam = u.family;
        let to = match (to, u.connected) {
            (Some(t), _) => t,
            (None, Some(c)) => c,
            (None, None) => return Err(StackError::NotConnected),
        };
        if Family::of(&to) != fam {
            return Err(StackError::FamilyMismatch);
        }
        if to.port() == 0 || to.ip().is_unspecified() {
            return Err(StackError::AddrNotAvailable);
        }
        let overhead = if fam == Family::V4 { 28 } else { 48 };
        if buf.len() + overhead > mtu {
            return Err(StackError::MessageTooLong);
        }
        let local = self.implicit_bind(id)?;
        // ALE: the first datagram to a new remote is classified at ALE_AUTH_CONNECT.
        let ale = self.ale_of(id)?;
        let now = self.now;
        let local_seen = self.routed_local(local, to);
        if self
            .ale
            .flow_for(wsock_ale::Protocol::Udp, local_seen, to)
            .is_none()
        {
            self.instantiate_secure_filters(
                id,
                super::secure::Instantiate::Connect {
                    local: local_seen,
                    remote: to,
                    protocol: 17,
                },
            );
        }
        if let AleVerdict::Block(b) = self.ale.udp_send(ale, local_seen, to, now)? {
            return Err(blocked(&b));
        }
        let h = self.udp_mut(id)?.handle.ok_or(StackError::NotSocket)?;
        let src = self.routed_local(local, to).ip();
        let s = self.sockets.get_mut::<udp::Socket>(h);
        let meta = udp::UdpMetadata {
            endpoint: ep(to),
            local_address: Some(IpAddress::from(src)),
            meta: Default::default(),
        };
        match s.send_slice(buf, meta) {
            Ok(()) => Ok(Some(buf.len())),
            Err(udp::SendError::BufferFull) => Ok(None),
            Err(udp::SendError::Unaddressable) => Err(StackError::HostUnreachable),
        }
    }

    /// Receives one datagram: `(bytes copied, full datagram length, source)`.
    pub fn try_recv_from(
        &mut self,
        id: u64,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<(usize, usize, SocketAddr)>> {
        let u = self.udp_mut(id)?;
        if u.shut_recv {
            return Err(StackError::Shutdown);
        }
        if u.conn_reset && !peek {
            u.conn_reset = false;
            return Err(StackError::ConnectionReset);
        }
        let connected = u.connected;
        let Some(h) = u.handle else {
            return Err(StackError::InvalidArgument(
                "recvfrom on an unbound datagram socket",
            ));
        };
        let s = self.sockets.get_mut::<udp::Socket>(h);
        loop {
            let (len, from) = match s.peek() {
                Ok((data, meta)) => (data.len(), sock_addr(meta.endpoint)),
                Err(_) => return Ok(None),
            };
            if connected.is_some_and(|c| c != from) {
                let _ = s.recv();
                continue;
            }
            let n = len.min(buf.len());
            if peek {
                if let Ok((data, _)) = s.peek() {
                    buf[..n].copy_from_slice(&data[..n]);
                }
            } else if let Ok((data, _)) = s.recv() {
                buf[..n].copy_from_slice(&data[..n]);
            }
            return Ok(Some((n, len, from)));
        }
    }

    /// What `WSAPoll`/`select` report for endpoint `id`.
    ///
    /// # Errors
    /// `NotSocket`.
    pub fn readiness(&mut self, id: u64) -> Result<Readiness> {
        let _ = self.tcp_status(id);
        let mut r = Readiness::default();
        let HostCore {
            endpoints, sockets, ..
        } = self;
        match endpoints.get(&id).ok_or(StackError::NotSocket)? {
            Endpoint::Udp(u) => {
                if let Some(h) = u.handle {
                    let s = sockets.get::<udp::Socket>(h);
                    r.readable = s.can_recv() || u.conn_reset;
                    r.writable = s.can_send();
                } else {
                    r.writable = true;
                }
            }
            Endpoint::Tcp(t) => {
                if let Some(e) = &t.aborted {
                    r.error = Some(e.clone());
                    r.readable = true;
                    r.hangup = true;
                    return Ok(r);
                }
                match &t.state {
                    TcpState::Fresh => {}
                    TcpState::Failed(e) => r.error = Some(e.clone()),
                    TcpState::Connecting { .. } => {}
                    TcpState::Listening { pool, .. } => {
                        r.readable = pool.iter().any(|p| {
                            !matches!(
                                sockets.get::<tcp::Socket>(p.handle).state(),
                                tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
                            )
                        })
                    }
                    TcpState::Connected { handle, .. } => {
                        let s = sockets.get::<tcp::Socket>(*handle);
                        r.readable = s.can_recv() || !s.may_recv();
                        r.hangup = !s.may_recv();
                        r.writable = s.can_send();
                    }
                }
            }
        }
        Ok(r)
    }

    /// Whether endpoint `id` is alive.
    pub fn has_endpoint(&self, id: u64) -> bool {
        self.endpoints.contains_key(&id)
    }

    /// Number of endpoints alive (for leak tests and `show`).
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Ids and one-line descriptions of the endpoints (for views).
    pub fn describe(&mut self) -> Vec<(u64, String)> {
        let mut ids: Vec<u64> = self.endpoints.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| {
                let d = match &self.endpoints[&id] {
                    Endpoint::Tcp(t) => {
                        let sock = match t.state {
                            TcpState::Connected { handle, .. }
                            | TcpState::Connecting { handle, .. } => {
                                let s = self.sockets.get::<tcp::Socket>(handle);
                                format!(
                                    " tcp={} sendq={} recvq={}",
                                    s.state(),
                                    s.send_queue(),
                                    s.recv_queue()
                                )
                            }
                            _ => String::new(),
                        };
                        format!(
                            "tcp {:?} local={:?} state={:?}{sock}",
                            t.family, t.local, t.state
                        )
                    }
                    Endpoint::Udp(u) => format!(
                        "udp {:?} local={:?} connected={:?}",
                        u.family, u.local, u.connected
                    ),
                };
                (id, d)
            })
            .collect()
    }
}
