//! Handles of the public API: a [`Host`] and its endpoints. Both API faces of the `wsock` crate
//! are built on these: every operation has a non-blocking `try_*` form (`WouldBlock` when not
//! ready), a `poll_*` form for futures, and an `async` form.

use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::core::{HostCore, SaDatabase, SecurityQuery};
use crate::error::{Result, StackError};
use crate::network::Network;
use crate::scenario::HostSpec;
use crate::shared::HostShared;
use crate::stages::{DropCounters, PacketStage, WireAddrs};
use crate::types::{Family, Protocol, Readiness, Shutdown, SocketOptions};
use wsock_ale::SecuritySettings;

/// A simulated host that lives in this process.
#[derive(Clone)]
pub struct Host {
    shared: Arc<HostShared>,
    network: Network,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.shared.spec.name)
            .field("wires", &self.shared.wires)
            .finish()
    }
}

impl Host {
    pub(crate) fn from_shared(shared: Arc<HostShared>, network: Network) -> Host {
        Host { shared, network }
    }

    /// The host's name in the scenario.
    pub fn name(&self) -> &str {
        &self.shared.spec.name
    }

    /// The scenario's description of this host (addresses, machine, users, app).
    pub fn spec(&self) -> &HostSpec {
        &self.shared.spec
    }

    /// The virtual IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.shared.spec.ipv4
    }

    /// The virtual IPv6 address.
    pub fn ipv6(&self) -> Ipv6Addr {
        self.shared.spec.ipv6
    }

    /// The real UDP endpoint of the host's clear path.
    pub fn wire_addr(&self) -> SocketAddr {
        self.shared.wires.clear
    }

    /// The real UDP endpoints of the host's three wire sockets (IKE, NAT-T, clear).
    pub fn wire_addrs(&self) -> WireAddrs {
        self.shared.wires
    }

    /// The network this host belongs to.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Creates an unbound TCP endpoint.
    ///
    /// # Examples
    /// ```
    /// use wsock_stack::{Family, Network, Scenario};
    /// let net = Network::start(Scenario::default_scenario())?;
    /// let s = net.host("server").unwrap().tcp(Family::V4);
    /// s.bind("0.0.0.0:80".parse().unwrap())?;
    /// s.listen(4)?;
    /// # Ok::<(), wsock_stack::StackError>(())
    /// ```
    pub fn tcp(&self, family: Family) -> Endpoint {
        let ctx = crate::policy::endpoint_context(&self.shared.spec, true, family == Family::V6);
        let id = self.shared.lock().create(Protocol::Tcp, family, ctx);
        Endpoint::new(self.shared.clone(), id, Protocol::Tcp, family)
    }

    /// Creates an unbound UDP endpoint.
    pub fn udp(&self, family: Family) -> Endpoint {
        let ctx = crate::policy::endpoint_context(&self.shared.spec, false, family == Family::V6);
        let id = self.shared.lock().create(Protocol::Udp, family, ctx);
        Endpoint::new(self.shared.clone(), id, Protocol::Udp, family)
    }

    /// Adds a stage at the end of the host's packet path (see [`crate::stages`]).
    pub fn add_stage(&self, stage: Box<dyn PacketStage>) {
        self.shared
            .op(|c| {
                c.add_stage(stage);
                Ok(())
            })
            .unwrap_or(());
    }

    /// Removes every stage.
    pub fn clear_stages(&self) {
        self.shared.lock().clear_stages();
    }

    /// Runs `f` on the host's core, under its lock (e.g. to release held packets).
    pub fn with_core<R>(&self, f: impl FnOnce(&mut HostCore) -> R) -> R {
        let r = f(&mut self.shared.lock());
        self.shared.kick.notify_one();
        self.shared.wake_all();
        r
    }

    /// Counters of the packet path.
    pub fn counters(&self) -> HostStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.shared.counters;
        let drops = self.shared.lock().drops();
        HostStats {
            wire_sent: c.sent.load(Relaxed),
            wire_received: c.received.load(Relaxed),
            fault_dropped: c.fault_dropped.load(Relaxed),
            drops,
        }
    }

    /// The host's SA database: IKE (main mode) SAs and child (quick mode) SAs.
    pub fn security_associations(&self) -> SaDatabase {
        self.shared.lock().security_associations()
    }

    /// Key records of the SAs negotiated so far (JSON lines for the ESP oracle and Wireshark),
    /// when the network was built with [`crate::NetworkBuilder::keylog`].
    pub fn key_log(&self) -> crate::core::KeyLog {
        self.shared.lock().key_log()
    }

    /// ESP packets dropped, by `ERROR_IPSEC_*` code.
    pub fn esp_errors(&self) -> std::collections::BTreeMap<u32, u64> {
        self.shared.lock().esp_errors()
    }

    /// Live endpoints of this host with a one-line description each.
    pub fn endpoints(&self) -> Vec<(u64, String)> {
        self.shared.lock().describe()
    }

    /// Number of live endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.shared.lock().endpoint_count()
    }
}

impl Host {
    /// Adds a filter to this host's WFP engine (as `FwpmFilterAdd0` through the administrator
    /// session), then re-authorizes established flows: a flow the new policy blocks is torn
    /// down and its socket reports `WSAECONNABORTED`.
    ///
    /// # Errors
    /// The `FWP_E_*` reason, with where in the spec it lies.
    ///
    /// # Examples
    /// ```
    /// use wsock_stack::wsock_wfp::{ConditionSpec, FilterSpec, ValueSpec};
    /// let net = wsock_stack::Network::start(wsock_stack::Scenario::default_scenario())?;
    /// let client = net.host("client").unwrap();
    /// let id = client.add_filter(&FilterSpec {
    ///     name: "no telnet".into(),
    ///     layer: "FWPM_LAYER_ALE_AUTH_CONNECT_V4".into(),
    ///     action: "block".into(),
    ///     conditions: vec![ConditionSpec::new("ip_remote_port", "equal", ValueSpec::Int(23))],
    ///     ..Default::default()
    /// }).unwrap();
    /// assert!(client.filters().iter().any(|f| f.id == id));
    /// # Ok::<(), wsock_stack::StackError>(())
    /// ```
    pub fn add_filter(
        &self,
        spec: &wsock_wfp::FilterSpec,
    ) -> std::result::Result<u64, wsock_wfp::SpecError> {
        let r = {
            let mut st = self.shared.lock();
            let admin = st.admin;
            let r = st.ale.engine_mut().add_spec(admin, spec);
            if r.is_ok() {
                st.reauthorize();
            }
            r
        };
        self.shared.kick.notify_one();
        self.shared.wake_all();
        r
    }

    /// Deletes a filter by id, then re-authorizes established flows.
    ///
    /// # Errors
    /// `FWP_E_FILTER_NOT_FOUND` and the other `FwpmFilterDeleteById0` failures.
    pub fn delete_filter(&self, id: u64) -> std::result::Result<(), wsock_wfp::WfpError> {
        let r = {
            let mut st = self.shared.lock();
            let admin = st.admin;
            let r = st.ale.engine_mut().delete_filter_by_id(admin, id);
            if r.is_ok() {
                st.reauthorize();
            }
            r
        };
        self.shared.kick.notify_one();
        self.shared.wake_all();
        r
    }

    /// The filters of this host's engine, by layer then id.
    pub fn filters(&self) -> Vec<crate::policy::FilterRow> {
        let st = self.shared.lock();
        crate::policy::filter_rows(st.ale.engine(), st.admin)
    }

    /// The net events (drops and allows) recorded so far, oldest first.
    pub fn net_events(&self) -> Vec<wsock_wfp::NetEvent> {
        self.shared
            .lock()
            .ale
            .engine()
            .net_events()
            .cloned()
            .collect()
    }

    /// Runs `f` with this host's ALE (and through it the WFP engine: sessions, callouts,
    /// transactions). Call [`Host::reauthorize`] after changing filters this way.
    pub fn with_ale<R>(&self, f: impl FnOnce(&mut wsock_ale::Ale) -> R) -> R {
        f(&mut self.shared.lock().ale)
    }

    /// Re-authorizes every established flow against the current filters.
    pub fn reauthorize(&self) {
        self.shared.lock().reauthorize();
        self.shared.kick.notify_one();
        self.shared.wake_all();
    }
}

/// A snapshot of a host's packet-path counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostStats {
    /// Datagrams written to the wire.
    pub wire_sent: u64,
    /// Datagrams read from the wire.
    pub wire_received: u64,
    /// Datagrams the link faults dropped.
    pub fault_dropped: u64,
    /// Packets the packet path dropped, by reason.
    pub drops: DropCounters,
}

/// One socket endpoint (TCP or UDP) on a host. Clones share the endpoint; when the last clone
/// is dropped, the endpoint is closed (gracefully, as [`Endpoint::close`] does) and freed, so a
/// cancelled connect or a forgotten socket never leaks.
#[derive(Clone)]
pub struct Endpoint {
    host: Arc<HostShared>,
    id: u64,
    protocol: Protocol,
    family: Family,
    _guard: Arc<CloseOnDrop>,
}

/// Closes an endpoint when the last handle to it goes.
struct CloseOnDrop {
    host: Arc<HostShared>,
    id: u64,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let closed = {
            let mut core = self.host.lock();
            core.has_endpoint(self.id) && core.close(self.id).is_ok()
        };
        if closed {
            self.host.kick.notify_one();
            self.host.wake_all();
        }
    }
}

impl Endpoint {
    pub(crate) fn new(host: Arc<HostShared>, id: u64, protocol: Protocol, family: Family) -> Self {
        Endpoint {
            _guard: Arc::new(CloseOnDrop {
                host: host.clone(),
                id,
            }),
            host,
            id,
            protocol,
            family,
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host.spec.name)
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .finish()
    }
}

fn ready_or_block<T>(r: Result<Option<T>>) -> Result<T> {
    r?.ok_or(StackError::WouldBlock)
}

impl Endpoint {
    /// `HostUnreachable` when no host of the scenario has the address (no SYN would be answered).
    fn check_route(&self, peer: SocketAddr) -> Result<()> {
        if self.host.lock().reachable(peer.ip()) {
            Ok(())
        } else {
            Err(StackError::HostUnreachable)
        }
    }

    /// TCP or UDP.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// IPv4 or IPv6.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The name of the host this endpoint lives on.
    pub fn host_name(&self) -> &str {
        &self.host.spec.name
    }

    /// The scenario's description of the owning host.
    pub fn host_spec(&self) -> &HostSpec {
        &self.host.spec
    }

    /// The current options.
    ///
    /// # Errors
    /// [`StackError::NotSocket`] after close.
    pub fn options(&self) -> Result<SocketOptions> {
        self.host.lock().options(self.id)
    }

    /// Changes options.
    ///
    /// # Errors
    /// [`StackError::NotSocket`] after close; [`StackError::InvalidArgument`] for
    /// `SO_REUSEADDR` together with `SO_EXCLUSIVEADDRUSE`.
    pub fn set_options(&self, f: impl FnOnce(&mut SocketOptions)) -> Result<()> {
        let mut st = self.host.lock();
        let mut o = st.options(self.id)?;
        f(&mut o);
        st.set_options(self.id, o)
    }

    /// `WSASetSocketSecurity`: turns IPsec on for this socket's traffic (`None`: the default
    /// settings of a NULL `SecuritySettings`, integrity first). Without `ALLOW_INSECURE` in the
    /// settings, no byte of the socket's traffic leaves or is accepted in clear text.
    ///
    /// # Errors
    /// `NotSocket`; `IsConnected`; `InvalidArgument` (set twice, after bind/listen, or with
    /// `SO_REUSEADDR`).
    ///
    /// # Examples
    /// ```
    /// use wsock_stack::{Family, Network, Scenario};
    /// let net = Network::start(Scenario::default_scenario())?;
    /// let s = net.host("client").unwrap().tcp(Family::V4);
    /// s.set_security(None)?;
    /// assert!(s.set_security(None).is_err()); // once per socket
    /// # Ok::<(), wsock_stack::StackError>(())
    /// ```
    pub fn set_security(&self, settings: Option<SecuritySettings>) -> Result<()> {
        self.host.lock().set_security(self.id, settings)
    }

    /// `WSASetSocketPeerTargetName`: the peer at `peer` must authenticate as `name` (SPN form
    /// `host/NAME` or raw). For TCP, an unspecified address names the peer it connects to.
    ///
    /// # Errors
    /// `NotSocket`; `IsConnected`; `InvalidArgument` (empty name); `NoBufferSpace` (too many
    /// names on one socket).
    pub fn set_peer_target_name(&self, peer: IpAddr, name: &str) -> Result<()> {
        self.host.lock().set_peer_target_name(self.id, peer, name)
    }

    /// `WSADeleteSocketPeerTargetName`.
    ///
    /// # Errors
    /// `NotSocket`.
    pub fn delete_peer_target_name(&self, peer: IpAddr) -> Result<()> {
        self.host.lock().delete_peer_target_name(self.id, peer)
    }

    /// `WSAQuerySocketSecurity`: whether the traffic with `peer` (`None`: the connected peer) is
    /// secured and encrypted, the SA ids, the last negotiation error, the authenticated peer.
    ///
    /// # Errors
    /// `NotSocket`; `NotConnected` (no peer); `ConnectionReset`.
    pub fn query_security(&self, peer: Option<SocketAddr>) -> Result<SecurityQuery> {
        self.host.lock().query_security(self.id, peer)
    }

    /// `WSAQuerySocketSecurity` with `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE`:
    /// the query, and a secured TCP connection is then aborted (`ConnectionAborted`) when one
    /// of the SA ids `fields` selects changes (see
    /// [`crate::core::HostCore::query_security_watching`]).
    ///
    /// # Errors
    /// As [`Endpoint::query_security`].
    pub fn query_security_watching(
        &self,
        peer: Option<SocketAddr>,
        fields: crate::SaFields,
    ) -> Result<SecurityQuery> {
        self.host
            .lock()
            .query_security_watching(self.id, peer, fields)
    }

    /// Binds to a local address (port 0: an ephemeral port).
    ///
    /// # Errors
    /// `AddrInUse`, `AccessDenied` (an exclusive holder), `AddrNotAvailable` (not this host's
    /// address), `FamilyMismatch`, `InvalidArgument` (already bound).
    pub fn bind(&self, addr: SocketAddr) -> Result<()> {
        self.host.op(|st| st.bind(self.id, addr))
    }

    /// Starts listening (TCP).
    ///
    /// # Errors
    /// `InvalidArgument` when unbound, `IsConnected` when connected.
    pub fn listen(&self, backlog: usize) -> Result<()> {
        self.host.op(|st| st.listen(self.id, backlog))
    }

    fn child(&self, id: u64) -> Endpoint {
        Endpoint::new(self.host.clone(), id, self.protocol, self.family)
    }

    /// Accepts a pending connection without blocking.
    ///
    /// # Errors
    /// `WouldBlock` when none is pending, `NotListening`.
    pub fn try_accept(&self) -> Result<(Endpoint, SocketAddr)> {
        let (id, peer) = ready_or_block(self.host.op(|st| st.try_accept(self.id)))?;
        Ok((self.child(id), peer))
    }

    /// Polls for a pending connection.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<(Endpoint, SocketAddr)>> {
        self.host
            .poll_op(cx, |st| st.try_accept(self.id))
            .map_ok(|(id, peer)| (self.child(id), peer))
    }

    /// Waits for a connection. Cancel safe: a connection is only taken when the future completes.
    ///
    /// # Errors
    /// `NotListening`, `NotSocket`.
    pub async fn accept(&self) -> Result<(Endpoint, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Starts connecting (TCP) without waiting for the handshake.
    ///
    /// # Errors
    /// `IsConnected`, `AlreadyInProgress`, `FamilyMismatch`, `AddrNotAvailable`.
    pub fn start_connect(&self, peer: SocketAddr) -> Result<()> {
        self.check_route(peer)?;
        self.host.op(|st| st.start_connect(self.id, peer))
    }

    /// Polls a connect started by [`Endpoint::start_connect`].
    pub fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.host.poll_op(cx, |st| st.connect_status(self.id))
    }

    /// Connect status without blocking: `Ok(true)` when connected, `Ok(false)` while in progress.
    ///
    /// # Errors
    /// The connect's failure (`ConnectionRefused`, `TimedOut`, ...).
    pub fn connect_status(&self) -> Result<bool> {
        self.host
            .lock()
            .connect_status(self.id)
            .map(|o| o.is_some())
    }

    /// Connects (TCP) and waits for the handshake.
    ///
    /// # Errors
    /// `ConnectionRefused` (no listener), `TimedOut`, `IsConnected`, `FamilyMismatch`.
    pub async fn connect(&self, peer: SocketAddr) -> Result<()> {
        self.start_connect(peer)?;
        poll_fn(|cx| self.poll_connected(cx)).await
    }

    /// Reads stream bytes without blocking; `Ok(0)` is end of stream.
    ///
    /// # Errors
    /// `WouldBlock`, `NotConnected`, `ConnectionReset`, `Shutdown`.
    pub fn try_recv(&self, buf: &mut [u8], peek: bool) -> Result<usize> {
        ready_or_block(self.host.op(|st| st.try_recv(self.id, buf, peek)))
    }

    /// Polls a stream read.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        self.host.poll_op(cx, |st| st.try_recv(self.id, buf, false))
    }

    /// Reads stream bytes; `Ok(0)` is end of stream.
    ///
    /// # Errors
    /// As [`Endpoint::try_recv`] but never `WouldBlock`.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// Queues stream bytes without blocking.
    ///
    /// # Errors
    /// `WouldBlock` when the send buffer is full, `NotConnected`, `Shutdown`, `ConnectionReset`.
    pub fn try_send(&self, buf: &[u8]) -> Result<usize> {
        ready_or_block(self.host.op(|st| st.try_send(self.id, buf)))
    }

    /// Polls a stream write.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        self.host.poll_op(cx, |st| st.try_send(self.id, buf))
    }

    /// Queues stream bytes, waiting for buffer space.
    ///
    /// # Errors
    /// As [`Endpoint::try_send`] but never `WouldBlock`.
    pub async fn send(&self, buf: &[u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_send(cx, buf)).await
    }

    /// Polls until every queued byte has been acknowledged by the peer.
    pub fn poll_drained(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.host.poll_op(cx, |st| st.send_drained(self.id))
    }

    /// Sends a datagram (UDP) without blocking; `to: None` uses the connected peer.
    ///
    /// # Errors
    /// `WouldBlock`, `MessageTooLong` (larger than the link MTU allows), `NotConnected`,
    /// `FamilyMismatch`, `Shutdown`.
    pub fn try_send_to(&self, buf: &[u8], to: Option<SocketAddr>) -> Result<usize> {
        ready_or_block(self.host.op(|st| st.try_send_to(self.id, buf, to)))
    }

    /// Polls a datagram send.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: Option<SocketAddr>,
    ) -> Poll<Result<usize>> {
        self.host.poll_op(cx, |st| st.try_send_to(self.id, buf, to))
    }

    /// Sends a datagram, waiting for buffer space.
    ///
    /// # Errors
    /// As [`Endpoint::try_send_to`] but never `WouldBlock`.
    pub async fn send_to(&self, buf: &[u8], to: Option<SocketAddr>) -> Result<usize> {
        poll_fn(|cx| self.host.poll_op(cx, |st| st.try_send_to(self.id, buf, to))).await
    }

    /// Receives one datagram without blocking: `(copied, datagram length, source)`. When the
    /// datagram is longer than `buf`, the rest is discarded (the caller reports `MessageTooLong`).
    ///
    /// # Errors
    /// `WouldBlock`, `Shutdown`, `InvalidArgument` when unbound.
    pub fn try_recv_from(&self, buf: &mut [u8], peek: bool) -> Result<(usize, usize, SocketAddr)> {
        ready_or_block(self.host.op(|st| st.try_recv_from(self.id, buf, peek)))
    }

    /// Polls for one datagram.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<(usize, usize, SocketAddr)>> {
        self.host
            .poll_op(cx, |st| st.try_recv_from(self.id, buf, false))
    }

    /// Receives one datagram.
    ///
    /// # Errors
    /// As [`Endpoint::try_recv_from`] but never `WouldBlock`.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// Sets (or clears) the default peer of a UDP endpoint.
    ///
    /// # Errors
    /// `FamilyMismatch`, `NotSocket`.
    pub fn udp_connect(&self, peer: Option<SocketAddr>) -> Result<()> {
        self.host.op(|st| st.udp_connect(self.id, peer))
    }

    /// Shuts down one or both directions.
    ///
    /// # Errors
    /// `NotConnected` for an unconnected TCP socket.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.host.op(|st| st.shutdown(self.id, how))
    }

    /// Tears the connection down with a reset; later calls fail with `reason`.
    ///
    /// # Errors
    /// `NotSocket`, `InvalidArgument` for UDP.
    pub fn abort(&self, reason: StackError) -> Result<()> {
        self.host.op(|st| st.abort(self.id, reason))
    }

    /// Closes the endpoint: queued data still goes out (unless linger is zero); the handle is
    /// dead afterwards.
    ///
    /// # Errors
    /// `NotSocket` when already closed.
    pub fn close(&self) -> Result<()> {
        self.host.op(|st| st.close(self.id))
    }

    /// The bound local address.
    ///
    /// # Errors
    /// `InvalidArgument` when unbound.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.host.lock().local_addr(self.id)
    }

    /// The connected peer.
    ///
    /// # Errors
    /// `NotConnected`.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        self.host.lock().peer_addr(self.id)
    }

    /// Readiness for `WSAPoll`/`select`.
    ///
    /// # Errors
    /// `NotSocket`.
    pub fn readiness(&self) -> Result<Readiness> {
        self.host.lock().readiness(self.id)
    }

    /// Polls until `pred` holds for the readiness (or an error is pending).
    pub fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        pred: impl Fn(&Readiness) -> bool,
    ) -> Poll<Result<Readiness>> {
        self.host.poll_op(cx, |st| {
            let r = st.readiness(self.id)?;
            Ok((pred(&r) || r.error.is_some()).then_some(r))
        })
    }

    /// Whether two handles name the same endpoint.
    pub fn same_as(&self, other: &Endpoint) -> bool {
        Arc::ptr_eq(&self.host, &other.host) && self.id == other.id
    }
}
