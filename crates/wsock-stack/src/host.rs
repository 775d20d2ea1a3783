//! One simulated host: a smoltcp interface and socket set, the endpoint table that gives them
//! Winsock semantics (ports, backlog, shutdown, errors), and the driver task that moves packets
//! between the interface and the wire.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint};

use crate::error::{Result, StackError};
use crate::hooks::{Direction, HookVerdict, PacketContext, PacketHook};
use crate::network::NetShared;
use crate::scenario::HostSpec;
use crate::wire::{self, IpSummary};
use wsock_ale::{Ale, AleVerdict, BlockEffect, EndpointId, FlowId, InboundInfo};
use wsock_wfp::SessionId;

/// Address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`), v6-only as Windows sockets are by default.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Transport protocol of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Which directions `shutdown` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `SD_RECEIVE`.
    Receive,
    /// `SD_SEND`: a FIN is sent once queued data has gone.
    Send,
    /// `SD_BOTH`.
    Both,
}

/// Per-socket options that the stack honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// `SO_EXCLUSIVEADDRUSE`.
    pub exclusive_addr: bool,
    /// `SO_LINGER`: `Some(0)` makes close send a reset.
    pub linger: Option<Duration>,
    /// `SO_RCVBUF` in bytes (sizes the TCP receive buffer and window).
    pub recv_buffer: usize,
    /// `SO_SNDBUF` in bytes.
    pub send_buffer: usize,
    /// `TCP_NODELAY` (Nagle off).
    pub nodelay: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            reuse_addr: false,
            exclusive_addr: false,
            linger: None,
            recv_buffer: 64 * 1024,
            send_buffer: 64 * 1024,
            nodelay: false,
        }
    }
}

/// What `poll`-style readiness reports for a socket (for `WSAPoll`/`select`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Data, a pending connection or end-of-stream can be read without blocking.
    pub readable: bool,
    /// Data can be written (or a non-blocking connect completed).
    pub writable: bool,
    /// The connection failed or was reset.
    pub error: Option<StackError>,
    /// The peer closed its side.
    pub hangup: bool,
}

/// Counters of a host's packet path.
#[derive(Debug, Default)]
pub struct HostCounters {
    /// Datagrams written to the wire.
    pub wire_sent: AtomicU64,
    /// Datagrams read from the wire.
    pub wire_received: AtomicU64,
    /// Datagrams the link faults dropped.
    pub fault_dropped: AtomicU64,
    /// Packets a hook dropped.
    pub hook_dropped: AtomicU64,
    /// Datagrams from the wire that did not parse or were not for this host.
    pub malformed: AtomicU64,
}

pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: Vec<Vec<u8>>,
    mtu: usize,
}

pub(crate) struct RxTok(Vec<u8>);
pub(crate) struct TxTok<'a>(&'a mut Vec<Vec<u8>>);

impl smoltcp::phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;
    fn receive(&mut self, _t: smoltcp::time::Instant) -> Option<(RxTok, TxTok<'_>)> {
        let p = self.rx.pop_front()?;
        Some((RxTok(p), TxTok(&mut self.tx)))
    }
    fn transmit(&mut self, _t: smoltcp::time::Instant) -> Option<TxTok<'_>> {
        Some(TxTok(&mut self.tx))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        c
    }
}

#[derive(Debug)]
enum TcpState {
    Fresh,
    Listening {
        pool: Vec<SocketHandle>,
    },
    Connecting {
        handle: SocketHandle,
        peer: SocketAddr,
        started: std::time::Instant,
    },
    Connected {
        handle: SocketHandle,
        peer: SocketAddr,
    },
    Failed(StackError),
}

#[derive(Debug)]
struct TcpEp {
    family: Family,
    opts: SocketOptions,
    local: Option<SocketAddr>,
    owns_port: bool,
    state: TcpState,
    shut_send: bool,
    shut_recv: bool,
    aborted: Option<StackError>,
    /// The ALE endpoint (for an accepted connection: its listener's).
    ale: EndpointId,
    /// Whether this socket created `ale` (accepted connections share the listener's).
    ale_owned: bool,
    /// The ALE flow of the connection.
    flow: Option<FlowId>,
}

#[derive(Debug)]
struct UdpEp {
    family: Family,
    opts: SocketOptions,
    local: Option<SocketAddr>,
    handle: Option<SocketHandle>,
    connected: Option<SocketAddr>,
    shut_send: bool,
    shut_recv: bool,
    ale: EndpointId,
}

#[derive(Debug)]
enum Endpoint {
    Tcp(TcpEp),
    Udp(UdpEp),
}

#[derive(Debug, Clone, Copy)]
struct PortOwner {
    ip: IpAddr,
    endpoint: u64,
    reuse: bool,
    exclusive: bool,
}

pub(crate) struct HostState {
    iface: Interface,
    sockets: SocketSet<'static>,
    pub(crate) device: QueueDevice,
    epoch: std::time::Instant,
    endpoints: HashMap<u64, Endpoint>,
    next_id: u64,
    ports: BTreeMap<(Protocol, Family, u16), Vec<PortOwner>>,
    next_ephemeral: u16,
    orphans: Vec<(SocketHandle, std::time::Instant)>,
    /// ALE and the host's WFP engine.
    pub(crate) ale: Ale,
    /// The administrator session the scenario's and the CLI's objects are added through.
    pub(crate) admin: SessionId,
    /// Inbound connections ALE permitted, by (local, remote), until `accept` takes them.
    pending_inbound: HashMap<(SocketAddr, SocketAddr), FlowId>,
    /// When UDP flows were last expired.
    last_expire: Duration,
}

const EPHEMERAL_FIRST: u16 = 49152;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(21);
const ORPHAN_LINGER: Duration = Duration::from_secs(60);
const MAX_LISTEN_POOL: usize = 16;

/// Queues a FIN. smoltcp sends zero-window probes only while data is queued, so a FIN that meets
/// a zero window whose update was lost would wait forever; a keep-alive probe makes the peer
/// re-advertise its window. Only closing connections get it, so idle ones stay silent.
fn close_gracefully(s: &mut tcp::Socket<'_>) {
    s.set_keep_alive(Some(smoltcp::time::Duration::from_millis(FIN_KEEPALIVE_MS)));
    s.close();
}

const FIN_KEEPALIVE_MS: u64 = 1000;

/// One line naming the layer and the filter that blocked.
pub(crate) fn describe_block(b: &wsock_ale::AleBlock) -> String {
    match (b.filter_id, &b.filter_name) {
        (Some(id), Some(name)) => format!("blocked at {} by filter {id} ({name:?})", b.layer),
        (Some(id), None) => format!("blocked at {} by filter {id}", b.layer),
        _ => format!("blocked at {}", b.layer),
    }
}

fn blocked(b: &wsock_ale::AleBlock) -> StackError {
    tracing::info!(target: "wsock::ale", layer = %b.layer, filter = ?b.filter_id, name = ?b.filter_name, "ALE blocked");
    StackError::AccessDenied(describe_block(b))
}

fn ep(addr: SocketAddr) -> IpEndpoint {
    IpEndpoint::new(IpAddress::from(addr.ip()), addr.port())
}

/// The smoltcp local endpoint of a bound address (the unspecified address: any).
fn listen_ep(local: SocketAddr) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!local.ip().is_unspecified()).then(|| IpAddress::from(local.ip())),
        port: local.port(),
    }
}

fn sock_addr(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(e.addr), e.port)
}

impl HostState {
    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    fn ep_mut(&mut self, id: u64) -> Result<&mut Endpoint> {
        self.endpoints.get_mut(&id).ok_or(StackError::NotSocket)
    }

    fn tcp_mut(&mut self, id: u64) -> Result<&mut TcpEp> {
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => Ok(t),
            Endpoint::Udp(_) => Err(StackError::InvalidArgument("not a stream socket")),
        }
    }

    fn udp_mut(&mut self, id: u64) -> Result<&mut UdpEp> {
        match self.ep_mut(id)? {
            Endpoint::Udp(u) => Ok(u),
            Endpoint::Tcp(_) => Err(StackError::InvalidArgument("not a datagram socket")),
        }
    }

    fn host_has(&self, ip: IpAddr) -> bool {
        self.iface
            .ip_addrs()
            .iter()
            .any(|c| IpAddr::from(c.address()) == ip)
    }

    fn source_for(&self, family: Family) -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(
                self.iface
                    .ipv4_addr()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            ),
            Family::V6 => IpAddr::V6(
                self.iface
                    .ipv6_addr()
                    .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED),
            ),
        }
    }

    fn check_bind(
        &self,
        proto: Protocol,
        addr: SocketAddr,
        opts: &SocketOptions,
        me: u64,
    ) -> Result<()> {
        let Some(owners) = self.ports.get(&(proto, Family::of(&addr), addr.port())) else {
            return Ok(());
        };
        for o in owners.iter().filter(|o| o.endpoint != me) {
            let overlaps = o.ip == addr.ip() || o.ip.is_unspecified() || addr.ip().is_unspecified();
            if !overlaps {
                continue;
            }
            if o.exclusive {
                return Err(if opts.reuse_addr {
                    StackError::AccessDenied("the address is held with SO_EXCLUSIVEADDRUSE".into())
                } else {
                    StackError::AddrInUse
                });
            }
            if opts.reuse_addr && !opts.exclusive_addr && o.reuse {
                continue;
            }
            if opts.reuse_addr && !opts.exclusive_addr {
                // Windows lets SO_REUSEADDR take over a non-exclusive address.
                continue;
            }
            return Err(StackError::AddrInUse);
        }
        Ok(())
    }

    fn claim_port(&mut self, proto: Protocol, addr: SocketAddr, opts: &SocketOptions, me: u64) {
        self.ports
            .entry((proto, Family::of(&addr), addr.port()))
            .or_default()
            .push(PortOwner {
                ip: addr.ip(),
                endpoint: me,
                reuse: opts.reuse_addr,
                exclusive: opts.exclusive_addr,
            });
    }

    fn release_ports(&mut self, me: u64) {
        self.ports.retain(|_, owners| {
            owners.retain(|o| o.endpoint != me);
            !owners.is_empty()
        });
    }

    fn ephemeral(&mut self, proto: Protocol, family: Family) -> Result<u16> {
        for _ in 0..=(u16::MAX - EPHEMERAL_FIRST) {
            let p = self.next_ephemeral;
            self.next_ephemeral = if p == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                p + 1
            };
            if !self.ports.contains_key(&(proto, family, p)) {
                return Ok(p);
            }
        }
        Err(StackError::NoBufferSpace)
    }

    fn bind_ep(&mut self, id: u64, addr: SocketAddr) -> Result<()> {
        let (proto, family, local, opts) = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => (Protocol::Tcp, t.family, t.local, t.opts),
            Endpoint::Udp(u) => (Protocol::Udp, u.family, u.local, u.opts),
        };
        if Family::of(&addr) != family {
            return Err(StackError::FamilyMismatch);
        }
        if local.is_some() {
            return Err(StackError::InvalidArgument("socket is already bound"));
        }
        if !addr.ip().is_unspecified() && !self.host_has(addr.ip()) {
            return Err(StackError::AddrNotAvailable);
        }
        let mut addr = addr;
        if addr.port() == 0 {
            addr.set_port(self.ephemeral(proto, family)?);
        } else {
            self.check_bind(proto, addr, &opts, id)?;
        }
        self.claim_port(proto, addr, &opts, id);
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => {
                t.local = Some(addr);
                t.owns_port = true;
            }
            Endpoint::Udp(u) => u.local = Some(addr),
        }
        Ok(())
    }

    fn new_tcp_socket(&mut self, opts: &SocketOptions) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0u8; opts.recv_buffer.clamp(1024, 16 << 20)]);
        let tx = tcp::SocketBuffer::new(vec![0u8; opts.send_buffer.clamp(1024, 16 << 20)]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_nagle_enabled(!opts.nodelay);
        self.sockets.add(s)
    }

    fn tcp_status(&mut self, id: u64) -> Result<()> {
        // Promote a connecting socket, detect failures and resets.
        let now = std::time::Instant::now();
        let t = self.tcp_mut(id)?;
        let (handle, peer, started) = match t.state {
            TcpState::Connecting {
                handle,
                peer,
                started,
            } => (handle, peer, Some(started)),
            TcpState::Connected { handle, peer } => (handle, peer, None),
            _ => return Ok(()),
        };
        let state = self.sockets.get::<tcp::Socket>(handle).state();
        let t = self.tcp_mut(id)?;
        match (started, state) {
            (Some(_), tcp::State::SynSent | tcp::State::SynReceived) => {}
            (Some(started), tcp::State::Closed) => {
                let err = if now.duration_since(started) + Duration::from_millis(500)
                    >= CONNECT_TIMEOUT
                {
                    StackError::TimedOut
                } else {
                    StackError::ConnectionRefused
                };
                t.state = TcpState::Failed(err);
                self.sockets.remove(handle);
            }
            (Some(_), _) => {
                let flow = t.flow;
                t.state = TcpState::Connected { handle, peer };
                self.sockets
                    .get_mut::<tcp::Socket>(handle)
                    .set_timeout(None);
                if let Some(f) = flow {
                    let now = self.epoch.elapsed();
                    if let AleVerdict::Block(b) = self.ale.established(f, now) {
                        let reason = StackError::ConnectionAborted(describe_block(&b));
                        self.sockets.get_mut::<tcp::Socket>(handle).abort();
                        self.orphans
                            .push((handle, std::time::Instant::now() + ORPHAN_LINGER));
                        self.tcp_mut(id)?.state = TcpState::Failed(reason);
                    }
                }
            }
            (None, tcp::State::Closed) if t.aborted.is_none() => {
                t.aborted = Some(StackError::ConnectionReset);
            }
            (None, _) => {}
        }
        Ok(())
    }

    pub(crate) fn housekeeping(&mut self) {
        let elapsed = self.epoch.elapsed();
        if elapsed.saturating_sub(self.last_expire) >= Duration::from_secs(1) {
            self.last_expire = elapsed;
            self.ale.expire(elapsed);
        }
        let now = std::time::Instant::now();
        let sockets = &mut self.sockets;
        self.orphans.retain(|(h, deadline)| {
            let st = sockets.get::<tcp::Socket>(*h).state();
            if matches!(st, tcp::State::Closed | tcp::State::TimeWait) || now >= *deadline {
                sockets.remove(*h);
                false
            } else {
                true
            }
        });
    }

    fn listen_socket(&mut self, local: SocketAddr, opts: &SocketOptions) -> Result<SocketHandle> {
        let h = self.new_tcp_socket(opts);
        let lep = listen_ep(local);
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .listen(lep)
            .map_err(|_| StackError::InvalidArgument("cannot listen on this address"))?;
        Ok(h)
    }
}

/// Shared state of one host; socket handles and the driver hold it.
pub(crate) struct HostShared {
    pub(crate) spec: HostSpec,
    pub(crate) net: Arc<NetShared>,
    pub(crate) state: Mutex<HostState>,
    wakers: Mutex<Vec<Waker>>,
    pub(crate) kick: tokio::sync::Notify,
    pub(crate) hooks: RwLock<Vec<Arc<dyn PacketHook>>>,
    pub(crate) counters: HostCounters,
    pub(crate) wire: SocketAddr,
}

impl HostShared {
    pub(crate) fn new(
        spec: HostSpec,
        net: Arc<NetShared>,
        wire: SocketAddr,
        seed: u64,
    ) -> Result<HostShared> {
        let (ale, admin) = crate::policy::build_ale(&spec).map_err(|(t, i, e)| {
            StackError::Scenario(format!(
                "host {:?}: [[{}]] #{}: {e}",
                spec.name,
                t.toml_name(),
                i + 1
            ))
        })?;
        let mut device = QueueDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
            mtu: net.mtu,
        };
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let epoch = std::time::Instant::now();
        let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(spec.ipv4), 32));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(spec.ipv6), 128));
        });
        // Every other virtual address is reached "through" the wire: the medium is IP, so the
        // gateway is only a formality that makes smoltcp's routing accept any destination.
        let _ = iface.routes_mut().add_default_ipv4_route(spec.ipv4);
        let _ = iface.routes_mut().add_default_ipv6_route(spec.ipv6);
        Ok(HostShared {
            net,
            state: Mutex::new(HostState {
                ale,
                admin,
                pending_inbound: HashMap::new(),
                last_expire: Duration::ZERO,
                iface,
                sockets: SocketSet::new(Vec::new()),
                device,
                epoch,
                endpoints: HashMap::new(),
                next_id: 1,
                ports: BTreeMap::new(),
                next_ephemeral: EPHEMERAL_FIRST + (seed % 1000) as u16,
                orphans: Vec::new(),
            }),
            wakers: Mutex::new(Vec::new()),
            kick: tokio::sync::Notify::new(),
            hooks: RwLock::new(Vec::new()),
            counters: HostCounters::default(),
            wire,
            spec,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HostState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn register(&self, cx: &Context<'_>) {
        let mut w = match self.wakers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
    }

    pub(crate) fn wake_all(&self) {
        let list = {
            let mut w = match self.wakers.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            std::mem::take(&mut *w)
        };
        for w in list {
            w.wake();
        }
    }

    /// Runs `f` under the lock; `Ok(None)` means "not ready": the task is woken after the next
    /// change of the host's state.
    pub(crate) fn poll_op<T>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut HostState) -> Result<Option<T>>,
    ) -> Poll<Result<T>> {
        let mut st = self.lock();
        match f(&mut st) {
            Ok(Some(v)) => {
                drop(st);
                self.kick.notify_one();
                Poll::Ready(Ok(v))
            }
            Err(e) => Poll::Ready(Err(e)),
            Ok(None) => {
                self.register(cx);
                Poll::Pending
            }
        }
    }

    /// Runs `f` under the lock once and kicks the driver.
    pub(crate) fn op<T>(&self, f: impl FnOnce(&mut HostState) -> Result<T>) -> Result<T> {
        let r = f(&mut self.lock());
        self.kick.notify_one();
        self.wake_all();
        r
    }

    /// One turn of the interface: process received packets, emit what is due.
    pub(crate) fn poll_once(&self) -> (Vec<Vec<u8>>, Option<Duration>) {
        let mut st = self.lock();
        let now = st.now();
        let HostState {
            iface,
            sockets,
            device,
            ..
        } = &mut *st;
        iface.poll(now, device, sockets);
        st.housekeeping();
        let out = std::mem::take(&mut st.device.tx);
        let HostState { iface, sockets, .. } = &mut *st;
        let delay = iface
            .poll_delay(now, sockets)
            .map(|d| Duration::from_micros(d.total_micros()));
        (out, delay)
    }

    /// Runs the hooks of one direction over a packet.
    pub(crate) fn run_hooks(&self, direction: Direction, packet: &mut Vec<u8>) -> bool {
        let hooks = match self.hooks.read() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if hooks.is_empty() {
            return true;
        }
        let Ok(summary) = IpSummary::parse(packet) else {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let ctx = PacketContext {
            host: &self.spec.name,
            direction,
            summary,
        };
        for h in hooks {
            if let HookVerdict::Drop(reason) = h.on_packet(&ctx, packet) {
                tracing::debug!(target: "wsock::stack", host = %self.spec.name, ?direction, %reason, "hook dropped packet");
                self.counters.hook_dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        true
    }

    /// Accepts one datagram from the wire.
    pub(crate) fn ingress(&self, datagram: &[u8]) {
        self.counters.wire_received.fetch_add(1, Ordering::Relaxed);
        let inner = match wire::gre_decapsulate(datagram) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(target: "wsock::stack", host = %self.spec.name, error = %e, "malformed datagram dropped");
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.ingress_packet(inner.to_vec());
    }

    pub(crate) fn ingress_packet(&self, mut packet: Vec<u8>) {
        match IpSummary::parse(&packet) {
            Ok(s) if s.dst == IpAddr::V4(self.spec.ipv4) || s.dst == IpAddr::V6(self.spec.ipv6) => {
            }
            _ => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if !self.run_hooks(Direction::Inbound, &mut packet) {
            return;
        }
        let mut st = self.lock();
        if !st.ale_inbound(&packet) {
            return;
        }
        if st.device.rx.len() < 4096 {
            st.device.rx.push_back(packet);
        }
    }
}

/// Endpoint operations, on the host state. Each returns `Ok(None)` when it would block.
impl HostState {
    /// ALE on an inbound packet, before the stack sees it: a TCP SYN to a listening socket is
    /// classified at ALE_AUTH_RECV_ACCEPT (a block drops it silently: no RST, the client times
    /// out); a UDP datagram from a new remote at ALE_AUTH_RECV_ACCEPT (a block drops it).
    /// Returns whether the packet may continue.
    fn ale_inbound(&mut self, packet: &[u8]) -> bool {
        let Ok(sum) = IpSummary::parse(packet) else {
            return false;
        };
        let Some((sport, dport)) = sum.ports(packet) else {
            return true;
        };
        let local = SocketAddr::new(sum.dst, dport);
        let remote = SocketAddr::new(sum.src, sport);
        let family = Family::of(&local);
        let now = self.epoch.elapsed();
        let matches = |l: &Option<SocketAddr>| {
            l.is_some_and(|l| {
                l.port() == dport
                    && (l.ip().is_unspecified() || l.ip() == sum.dst)
                    && Family::of(&l) == family
            })
        };
        match sum.protocol {
            6 => {
                let flags = packet.get(sum.transport_offset + 13).copied().unwrap_or(0);
                if flags & 0x12 != 0x02 {
                    return true; // not a connection request
                }
                if self.pending_inbound.contains_key(&(local, remote)) {
                    return true; // a retransmitted SYN of a permitted connection
                }
                let listener = self.endpoints.values().find_map(|e| match e {
                    Endpoint::Tcp(t)
                        if matches!(t.state, TcpState::Listening { .. }) && matches(&t.local) =>
                    {
                        Some(t.ale)
                    }
                    _ => None,
                });
                let Some(listener) = listener else {
                    return true;
                };
                match self.ale.inbound_connection(
                    listener,
                    local,
                    remote,
                    &InboundInfo::default(),
                    now,
                ) {
                    AleVerdict::Permit { flow } => {
                        if let Some(f) = flow {
                            if self.pending_inbound.len() >= 65536 {
                                self.pending_inbound.clear();
                            }
                            self.pending_inbound.insert((local, remote), f);
                        }
                        true
                    }
                    AleVerdict::Block(b) => {
                        tracing::info!(target: "wsock::ale", %remote, %local, "inbound connection {}: dropped", describe_block(&b));
                        false
                    }
                }
            }
            17 => {
                let ep = self.endpoints.values().find_map(|e| match e {
                    Endpoint::Udp(u) if u.handle.is_some() && matches(&u.local) => Some(u.ale),
                    _ => None,
                });
                let Some(ep) = ep else { return true };
                match self.ale.udp_recv(ep, remote, &InboundInfo::default(), now) {
                    AleVerdict::Permit { .. } => true,
                    AleVerdict::Block(b) => {
                        tracing::info!(target: "wsock::ale", %remote, %local, "datagram {}: dropped", describe_block(&b));
                        false
                    }
                }
            }
            _ => true,
        }
    }

    pub(crate) fn create(
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
            }),
        };
        self.endpoints.insert(id, e);
        id
    }

    pub(crate) fn options(&mut self, id: u64) -> Result<SocketOptions> {
        Ok(match self.ep_mut(id)? {
            Endpoint::Tcp(t) => t.opts,
            Endpoint::Udp(u) => u.opts,
        })
    }

    pub(crate) fn set_options(&mut self, id: u64, opts: SocketOptions) -> Result<()> {
        if opts.reuse_addr && opts.exclusive_addr {
            return Err(StackError::InvalidArgument(
                "SO_REUSEADDR and SO_EXCLUSIVEADDRUSE exclude each other",
            ));
        }
        let handle = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => {
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

    pub(crate) fn bind(&mut self, id: u64, addr: SocketAddr) -> Result<()> {
        if let Endpoint::Tcp(t) = self.ep_mut(id)? {
            if !matches!(t.state, TcpState::Fresh) {
                return Err(StackError::InvalidArgument("socket is already bound"));
            }
        }
        self.bind_ep(id, addr)?;
        // ALE_RESOURCE_ASSIGNMENT for the explicit bind.
        let (ale, assigned) = (self.ale_of(id)?, self.bound_local(id)?);
        let now = self.epoch.elapsed();
        if let AleVerdict::Block(b) = self.ale.bind(ale, addr, assigned.port(), now) {
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

    fn ale_of(&mut self, id: u64) -> Result<EndpointId> {
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
    pub(crate) fn reauthorize(&mut self) {
        let now = self.epoch.elapsed();
        for (flow, verdict) in self.ale.reauthorize(now) {
            let AleVerdict::Block(b) = verdict else {
                continue;
            };
            if b.effect != BlockEffect::FlowTornDown {
                continue;
            }
            let reason = StackError::ConnectionAborted(format!(
                "flow torn down on re-authorization: {}",
                describe_block(&b)
            ));
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

    fn open_udp(&mut self, id: u64) -> Result<()> {
        let u = self.udp_mut(id)?;
        if u.handle.is_some() {
            return Ok(());
        }
        let local = u.local.ok_or(StackError::InvalidArgument("not bound"))?;
        let opts = u.opts;
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

    pub(crate) fn listen(&mut self, id: u64, backlog: usize) -> Result<()> {
        let t = self.tcp_mut(id)?;
        match t.state {
            TcpState::Listening { .. } => return Ok(()),
            TcpState::Fresh => {}
            _ => return Err(StackError::IsConnected),
        }
        let local = t
            .local
            .ok_or(StackError::InvalidArgument("listen on an unbound socket"))?;
        let opts = t.opts;
        let ale = t.ale;
        let now = self.epoch.elapsed();
        if let AleVerdict::Block(b) = self.ale.listen(ale, now) {
            return Err(blocked(&b));
        }
        let n = backlog.clamp(1, MAX_LISTEN_POOL);
        let mut pool = Vec::with_capacity(n);
        for _ in 0..n {
            pool.push(self.listen_socket(local, &opts)?);
        }
        self.tcp_mut(id)?.state = TcpState::Listening { pool };
        Ok(())
    }

    pub(crate) fn try_accept(&mut self, id: u64) -> Result<Option<(u64, SocketAddr)>> {
        let t = self.tcp_mut(id)?;
        let TcpState::Listening { pool, .. } = &t.state else {
            return Err(StackError::NotListening);
        };
        let (opts, family, listener_ale) = (t.opts, t.family, t.ale);
        let pool = pool.clone();
        let ready = pool.iter().position(|h| {
            let s = self.sockets.get::<tcp::Socket>(*h);
            !matches!(
                s.state(),
                tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
            )
        });
        // A pool socket that fell back to Closed (reset during the handshake) is replaced.
        for h in pool.iter() {
            if self.sockets.get::<tcp::Socket>(*h).state() == tcp::State::Closed {
                let local = self.tcp_mut(id)?.local.ok_or(StackError::NotSocket)?;
                let nh = self.listen_socket(local, &opts)?;
                self.sockets.remove(*h);
                if let TcpState::Listening { pool, .. } = &mut self.tcp_mut(id)?.state {
                    if let Some(slot) = pool.iter_mut().find(|x| **x == *h) {
                        *slot = nh;
                    }
                }
            }
        }
        let Some(i) = ready else { return Ok(None) };
        let local_listen = self.tcp_mut(id)?.local.ok_or(StackError::NotSocket)?;
        let h = pool[i];
        let s = self.sockets.get::<tcp::Socket>(h);
        let peer = s
            .remote_endpoint()
            .map(sock_addr)
            .ok_or(StackError::ConnectionReset)?;
        let local = s.local_endpoint().map(sock_addr).unwrap_or(local_listen);
        let nh = self.listen_socket(local_listen, &opts)?;
        if let TcpState::Listening { pool, .. } = &mut self.tcp_mut(id)?.state {
            pool.remove(i);
            pool.push(nh);
        }
        // ALE_FLOW_ESTABLISHED for the flow ALE_AUTH_RECV_ACCEPT permitted at the SYN.
        let flow = self.pending_inbound.remove(&(local, peer));
        if let Some(f) = flow {
            let now = self.epoch.elapsed();
            if let AleVerdict::Block(b) = self.ale.established(f, now) {
                tracing::info!(target: "wsock::ale", "{}: accepted connection torn down", describe_block(&b));
                self.sockets.get_mut::<tcp::Socket>(h).abort();
                self.orphans
                    .push((h, std::time::Instant::now() + ORPHAN_LINGER));
                return Ok(None);
            }
        }
        let nid = self.next_id;
        self.next_id += 1;
        self.endpoints.insert(
            nid,
            Endpoint::Tcp(TcpEp {
                family,
                opts,
                local: Some(local),
                owns_port: false,
                state: TcpState::Connected { handle: h, peer },
                shut_send: false,
                shut_recv: false,
                aborted: None,
                ale: listener_ale,
                ale_owned: false,
                flow,
            }),
        );
        Ok(Some((nid, peer)))
    }

    /// Starts a TCP connect; `Ok(())` once the SYN is queued.
    pub(crate) fn start_connect(&mut self, id: u64, peer: SocketAddr) -> Result<()> {
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
        let now = self.epoch.elapsed();
        let flow = match self.ale.connect(ale, local, peer, now) {
            AleVerdict::Block(b) => return Err(blocked(&b)),
            AleVerdict::Permit { flow } => flow,
        };
        self.tcp_mut(id)?.flow = flow;
        let opts = self.tcp_mut(id)?.opts;
        let h = self.new_tcp_socket(&opts);
        let local_ep = listen_ep(local);
        let HostState { iface, sockets, .. } = self;
        let s = sockets.get_mut::<tcp::Socket>(h);
        s.set_timeout(Some(smoltcp::time::Duration::from_millis(
            CONNECT_TIMEOUT.as_millis() as u64,
        )));
        if s.connect(iface.context(), ep(peer), local_ep).is_err() {
            sockets.remove(h);
            return Err(StackError::HostUnreachable);
        }
        let t = self.tcp_mut(id)?;
        t.state = TcpState::Connecting {
            handle: h,
            peer,
            started: std::time::Instant::now(),
        };
        t.aborted = None;
        Ok(())
    }

    /// `Some(())` once connected.
    pub(crate) fn connect_status(&mut self, id: u64) -> Result<Option<()>> {
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
    pub(crate) fn try_recv(
        &mut self,
        id: u64,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<usize>> {
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

    pub(crate) fn try_send(&mut self, id: u64, buf: &[u8]) -> Result<Option<usize>> {
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
    pub(crate) fn send_drained(&mut self, id: u64) -> Result<Option<()>> {
        let h = self.connected_handle(id)?;
        let s = self.sockets.get::<tcp::Socket>(h);
        Ok((s.send_queue() == 0).then_some(()))
    }

    pub(crate) fn shutdown(&mut self, id: u64, how: Shutdown) -> Result<()> {
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
    pub(crate) fn abort(&mut self, id: u64, reason: StackError) -> Result<()> {
        let t = self.tcp_mut(id)?;
        if let TcpState::Connected { handle, .. } | TcpState::Connecting { handle, .. } = t.state {
            t.aborted = Some(reason);
            self.sockets.get_mut::<tcp::Socket>(handle).abort();
        }
        Ok(())
    }

    pub(crate) fn close(&mut self, id: u64) -> Result<()> {
        let e = self.endpoints.remove(&id).ok_or(StackError::NotSocket)?;
        self.release_ports(id);
        // ALE_ENDPOINT_CLOSURE: the flow, and the endpoint unless it is a listener's.
        let now = self.epoch.elapsed();
        match &e {
            Endpoint::Tcp(t) => {
                if let Some(f) = t.flow {
                    self.ale.close_flow(f, now);
                }
                if t.ale_owned {
                    self.ale.close_endpoint(t.ale, now);
                }
            }
            Endpoint::Udp(u) => self.ale.close_endpoint(u.ale, now),
        }
        let deadline = std::time::Instant::now() + ORPHAN_LINGER;
        match e {
            Endpoint::Tcp(t) => match t.state {
                TcpState::Listening { pool, .. } => {
                    for h in pool {
                        let s = self.sockets.get_mut::<tcp::Socket>(h);
                        if s.state() == tcp::State::Listen {
                            self.sockets.remove(h);
                        } else {
                            s.abort();
                            self.orphans.push((h, deadline));
                        }
                    }
                }
                TcpState::Connected { handle, .. } | TcpState::Connecting { handle, .. } => {
                    let s = self.sockets.get_mut::<tcp::Socket>(handle);
                    if t.opts.linger == Some(Duration::ZERO) || t.aborted.is_some() {
                        s.abort();
                    } else {
                        close_gracefully(s);
                    }
                    self.orphans.push((handle, deadline));
                }
                _ => {}
            },
            Endpoint::Udp(u) => {
                if let Some(h) = u.handle {
                    // A datagram `sendto` accepted belongs to the stack: flush it to the device
                    // before the socket goes (the driver sends what the device holds).
                    if self.sockets.get::<udp::Socket>(h).send_queue() > 0 {
                        let now = self.now();
                        let HostState {
                            iface,
                            sockets,
                            device,
                            ..
                        } = self;
                        iface.poll_egress(now, device, sockets);
                    }
                    self.sockets.remove(h);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn local_addr(&mut self, id: u64) -> Result<SocketAddr> {
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

    pub(crate) fn peer_addr(&mut self, id: u64) -> Result<SocketAddr> {
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => match t.state {
                TcpState::Connected { peer, .. } => Ok(peer),
                _ => Err(StackError::NotConnected),
            },
            Endpoint::Udp(u) => u.connected.ok_or(StackError::NotConnected),
        }
    }

    pub(crate) fn udp_connect(&mut self, id: u64, peer: Option<SocketAddr>) -> Result<()> {
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

    pub(crate) fn try_send_to(
        &mut self,
        id: u64,
        buf: &[u8],
        to: Option<SocketAddr>,
        mtu: usize,
    ) -> Result<Option<usize>> {
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
        let now = self.epoch.elapsed();
        if let AleVerdict::Block(b) = self.ale.udp_send(ale, local, to, now) {
            return Err(blocked(&b));
        }
        let h = self.udp_mut(id)?.handle.ok_or(StackError::NotSocket)?;
        let src = self.source_for(fam);
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
    pub(crate) fn try_recv_from(
        &mut self,
        id: u64,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<(usize, usize, SocketAddr)>> {
        let u = self.udp_mut(id)?;
        if u.shut_recv {
            return Err(StackError::Shutdown);
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

    pub(crate) fn readiness(&mut self, id: u64) -> Result<Readiness> {
        let _ = self.tcp_status(id);
        let mut r = Readiness::default();
        let HostState {
            endpoints, sockets, ..
        } = self;
        match endpoints.get(&id).ok_or(StackError::NotSocket)? {
            Endpoint::Udp(u) => {
                if let Some(h) = u.handle {
                    let s = sockets.get::<udp::Socket>(h);
                    r.readable = s.can_recv();
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
                        r.readable = pool.iter().any(|h| {
                            !matches!(
                                sockets.get::<tcp::Socket>(*h).state(),
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

    /// Number of endpoints alive (for leak tests and `show`).
    pub(crate) fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Ids and one-line descriptions of the endpoints (for views).
    pub(crate) fn describe(&mut self) -> Vec<(u64, String)> {
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
