//! The host core: one simulated host, sans-IO.
//!
//! A [`HostCore`] owns a host's smoltcp interface and socket set, the endpoint table that gives
//! them Winsock semantics (ports, backlog, shutdown, errors), its ALE and WFP engine, and the
//! stages of its packet path. It does no I/O and reads no clock: like quinn-proto's endpoint, it
//! takes datagrams and the time in ([`HostCore::handle_datagram`], [`HostCore::handle_timeout`])
//! and gives datagrams to send and its next deadline out ([`HostCore::poll_transmit`],
//! [`HostCore::poll_timeout`]). The network's tokio driver moves datagrams and time; tests drive
//! two cores in memory on a virtual clock.
//!
//! The files of this module each have one job: `device` is the smoltcp device (two queues),
//! `path` the packet path (egress and ingress stages, held queues, routing, loopback),
//! `ale_glue` the ALE classification of inbound packets and re-authorization, `endpoints` the
//! socket operations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint};

use crate::error::{Result, StackError};
use crate::scenario::HostSpec;
use crate::stages::{DropCounters, HoldKey, PacketStage, Transmit, WireAddrs};
use crate::types::{Family, Protocol, SocketOptions};
use device::QueueDevice;
use wsock_ale::{Ale, AleVerdict, EndpointId, FlowId};
use wsock_wfp::SessionId;

mod ale_glue;
mod device;
mod endpoints;
mod ipsec;
pub mod ipsec_policy;
mod path;
mod secure;

pub use ipsec::{
    child_lifetime, user_identity, ChildSaView, FailureErrno, IkeSaView, IpsecCounters,
    IpsecCredential, IpsecSetup, KeyLog, PeerPsk, SaDatabase, SaFacts, ERROR_IPSEC_CLEAR_TEXT_DROP,
    SETTINGS_ALLOW_INSECURE, SETTINGS_GUARANTEE_ENCRYPTION,
    SETTINGS_IPSEC_OPTIONAL_PEER_NAME_VERIFICATION, SETTINGS_IPSEC_PEER_NAME_IS_RAW_FORMAT,
};
pub use path::{Route, Routes};
pub use secure::{SaFields, SecurityQuery, SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION};

#[derive(Debug)]
enum TcpState {
    Fresh,
    Listening {
        /// How many connections may wait for `accept` (completed or half-open).
        backlog: usize,
        /// Listening smoltcp sockets made per connection request, and the connections they
        /// hold until `accept` takes them.
        pool: Vec<PoolSocket>,
    },
    Connecting {
        handle: SocketHandle,
        peer: SocketAddr,
        started: Duration,
    },
    Connected {
        handle: SocketHandle,
        peer: SocketAddr,
    },
    Failed(StackError),
}

/// One smoltcp socket of a listener's pool.
#[derive(Debug, Clone, Copy)]
struct PoolSocket {
    handle: SocketHandle,
    /// When it was made for a connection request.
    since: Duration,
    /// The destination address of that request (the socket listens on it alone).
    addr: IpAddr,
}

/// Which of a TCP socket's buffer sizes the application chose (`SO_RCVBUF`, `SO_SNDBUF`).
/// A chosen size fixes the smoltcp buffer (and so the window), as setting `SO_RCVBUF` turns off
/// receive-window auto-tuning on Windows; an unchosen one is the stack's to pick
/// ([`AUTO_RECV_BUFFER`], [`AUTO_SEND_BUFFER`]) while `getsockopt` reports Windows' default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BufferChoice {
    recv: bool,
    send: bool,
}

/// The smoltcp receive buffer (and so the largest window) of a TCP socket whose application
/// never set `SO_RCVBUF`: Windows' default, 64 KiB. (A 4 KiB default kept idle connections
/// small but deadlocked ordinary programs: a client that writes 100 KB to an echo server before
/// reading filled every buffer on the path. smoltcp fixes a socket's buffers when it is
/// created, so the stack cannot grow them later as Windows' auto-tuning does.)
pub const AUTO_RECV_BUFFER: usize = 64 * 1024;
/// The smoltcp send buffer of a TCP socket whose application never set `SO_SNDBUF` (see
/// [`AUTO_RECV_BUFFER`]).
pub const AUTO_SEND_BUFFER: usize = 64 * 1024;

#[derive(Debug)]
struct TcpEp {
    family: Family,
    opts: SocketOptions,
    /// Which buffer sizes the application chose.
    chosen: BufferChoice,
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
    /// An ICMP port unreachable arrived: the next receive reports `WSAECONNRESET`.
    conn_reset: bool,
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

/// One simulated host, sans-IO. See the [module documentation](self).
pub struct HostCore {
    spec: Arc<HostSpec>,
    iface: Interface,
    sockets: SocketSet<'static>,
    device: QueueDevice,
    /// The core's clock: the latest time a verb was given.
    now: Duration,
    /// Endpoints by id (ordered: views list them in creation order).
    endpoints: BTreeMap<u64, Endpoint>,
    next_id: u64,
    /// Port owners: the index of inbound socket lookup (specific address before wildcard).
    ports: BTreeMap<(Protocol, Family, u16), Vec<PortOwner>>,
    next_ephemeral: u16,
    /// Connections whose socket was closed, until they finish (FIN exchanged) or their deadline.
    orphans: Vec<Orphan>,
    /// ALE and the host's WFP engine.
    pub(crate) ale: Ale,
    /// The administrator session the scenario's and the CLI's objects are added through.
    pub(crate) admin: SessionId,
    /// Inbound connections ALE permitted, by (local, remote), until `accept` takes them.
    pending_inbound: HashMap<(SocketAddr, SocketAddr), FlowId>,
    /// When UDP flows were last expired.
    last_expire: Duration,
    routes: Arc<Routes>,
    wires: WireAddrs,
    stages: Vec<Box<dyn PacketStage>>,
    held: BTreeMap<HoldKey, path::Held>,
    out: VecDeque<Transmit>,
    drops: DropCounters,
    /// Some socket operation or arrival may have given the interface work.
    dirty: bool,
    /// The interface is running (loopback deliveries must not run it again).
    in_interface: bool,
    /// Connection requests queued for the interface since its last poll, per listener.
    syns_queued: HashMap<(u64, IpAddr), usize>,
    /// IPsec, when enabled: keying, SA database, ESP.
    ipsec: Option<Box<ipsec::IpsecPath>>,
    /// Packet counters of the IPsec path.
    ipsec_counters: ipsec::IpsecCounters,
    /// The protection of closed connections still finishing, by (local, remote).
    closing_needs: HashMap<(SocketAddr, SocketAddr), (ipsec::Need, Duration)>,
    /// IKE SAs this host (as responder) refused at KM_AUTHORIZATION.
    refused_sas: std::collections::BTreeSet<wsock_ipsec::ike::sa::IkeSaId>,
    /// Filters instantiated from secure sockets' settings, by endpoint.
    secure_filters: BTreeMap<u64, Vec<u64>>,
    /// TCP endpoints whose query asked to be aborted when an SA id changes.
    sa_watches: BTreeMap<u64, secure::SaWatch>,
    /// The SA (MM id, QM id) of the inbound packet being processed, if it arrived in ESP.
    ipsec_ingress_sa: Option<(wsock_ipsec::ike::sa::IkeSaId, u64)>,
}

/// A closed connection still finishing.
#[derive(Debug, Clone, Copy)]
struct Orphan {
    handle: SocketHandle,
    deadline: Duration,
    /// When it was first seen in TIME-WAIT.
    timewait_since: Option<Duration>,
}

/// How long a closed connection stays in TIME-WAIT before it is freed.
const TIME_WAIT_GRACE: Duration = Duration::from_millis(500);

/// How a [`HostCore`] is set up beside its scenario entry.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The link MTU.
    pub mtu: usize,
    /// Seeds smoltcp's randomness (initial sequence numbers) and the first ephemeral port.
    pub random_seed: u64,
    /// Where every host's wire sockets are.
    pub routes: Arc<Routes>,
    /// This host's own wire sockets.
    pub wires: WireAddrs,
}

const EPHEMERAL_FIRST: u16 = 49152;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(21);
const ORPHAN_LINGER: Duration = Duration::from_secs(60);
/// The largest backlog `listen` honours (`SOMAXCONN_HINT`'s upper bound on Windows).
pub const MAX_BACKLOG: usize = 65535;
/// What Windows' `SOMAXCONN` resolves to, and the cap of a plain `listen` backlog.
pub const SOMAXCONN_BACKLOG: usize = 200;
/// A half-open inbound connection (SYN received, handshake not completed) is dropped after this.
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a gracefully closed connection may take to deliver its data and FIN by default.
pub const DEFAULT_CLOSE_LINGER: Duration = Duration::from_secs(10);

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
    crate::error::Denial::Policy(Box::new(b.clone())).to_string()
}

fn blocked(b: &wsock_ale::AleBlock) -> StackError {
    tracing::info!(target: "wsock::ale", layer = %b.layer, filter = ?b.filter_id, name = ?b.filter_name, "ALE blocked");
    StackError::AccessDenied(crate::error::Denial::Policy(Box::new(b.clone())))
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

/// How many `HostCore`s are alive in this process (leak tests).
static LIVE_CORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many host cores are alive in this process: a dropped [`crate::Network`] frees its hosts.
pub fn live_cores() -> usize {
    LIVE_CORES.load(std::sync::atomic::Ordering::SeqCst)
}

impl Drop for HostCore {
    fn drop(&mut self) {
        LIVE_CORES.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl HostCore {
    /// Builds the core of one host: its interface (the scenario's virtual addresses plus its
    /// own loopback, 127.0.0.1/8 and ::1), its ALE and WFP engine with the scenario's policy.
    ///
    /// # Errors
    /// [`StackError::Scenario`] when the host's policy entries do not load (the message names
    /// the table and entry).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use wsock_stack::core::{CoreConfig, HostCore, Routes};
    /// use wsock_stack::stages::WireAddrs;
    /// use wsock_stack::Scenario;
    /// let sc = Scenario::default_scenario();
    /// let spec = sc.host("client").unwrap().clone();
    /// let a = "127.0.0.1:9".parse().unwrap();
    /// let wires = WireAddrs { ike: a, natt: a, clear: a };
    /// let core = HostCore::new(spec, CoreConfig {
    ///     mtu: 1500, random_seed: 1, routes: Arc::new(Routes::default()), wires })?;
    /// assert_eq!(core.name(), "client");
    /// # Ok::<(), wsock_stack::StackError>(())
    /// ```
    pub fn new(spec: HostSpec, config: CoreConfig) -> Result<HostCore> {
        let (ale, admin) = crate::policy::build_ale(&spec).map_err(|(t, i, e)| {
            StackError::Scenario(format!(
                "host {:?}: [[{}]] #{}: {e}",
                spec.name,
                t.toml_name(),
                i + 1
            ))
        })?;
        let mut device = QueueDevice::new(config.mtu);
        let mut smol = Config::new(HardwareAddress::Ip);
        smol.random_seed = config.random_seed;
        let mut iface = Interface::new(smol, &mut device, smoltcp::time::Instant::from_micros(0));
        let mut full = false;
        iface.update_ip_addrs(|a| {
            for cidr in [
                IpCidr::new(IpAddress::Ipv4(spec.ipv4), 32),
                IpCidr::new(IpAddress::Ipv6(spec.ipv6), 128),
                IpCidr::new(IpAddress::Ipv4(Ipv4Addr::LOCALHOST), 8),
                IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128),
            ] {
                full |= a.push(cidr).is_err();
            }
        });
        if full {
            // smoltcp's address table is sized at compile time (`iface-max-addr-count-4`).
            return Err(StackError::Scenario(format!(
                "host {:?}: the interface address table is full",
                spec.name
            )));
        }
        // Every other virtual address is reached "through" the wire: the medium is IP, so the
        // gateway is only a formality that makes smoltcp's routing accept any destination.
        let _ = iface.routes_mut().add_default_ipv4_route(spec.ipv4);
        let _ = iface.routes_mut().add_default_ipv6_route(spec.ipv6);
        LIVE_CORES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let first_port = EPHEMERAL_FIRST + (config.random_seed % 16000) as u16;
        Ok(HostCore {
            spec: Arc::new(spec),
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            now: Duration::ZERO,
            endpoints: BTreeMap::new(),
            next_id: 1,
            ports: BTreeMap::new(),
            next_ephemeral: first_port,
            orphans: Vec::new(),
            ale,
            admin,
            pending_inbound: HashMap::new(),
            last_expire: Duration::ZERO,
            routes: config.routes,
            wires: config.wires,
            stages: Vec::new(),
            held: BTreeMap::new(),
            out: VecDeque::new(),
            drops: DropCounters::default(),
            dirty: false,
            in_interface: false,
            syns_queued: HashMap::new(),
            ipsec: None,
            secure_filters: BTreeMap::new(),
            sa_watches: BTreeMap::new(),
            refused_sas: std::collections::BTreeSet::new(),
            ipsec_counters: ipsec::IpsecCounters::default(),
            closing_needs: HashMap::new(),
            ipsec_ingress_sa: None,
        })
    }

    /// The host's scenario name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The scenario's description of the host.
    pub fn spec(&self) -> &HostSpec {
        &self.spec
    }

    fn smol_now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.now.as_micros() as i64)
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
        self.is_local(ip)
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
            let same = o.ip == addr.ip();
            let overlaps = same || o.ip.is_unspecified() || addr.ip().is_unspecified();
            if !overlaps {
                continue;
            }
            if o.exclusive {
                return Err(if opts.reuse_addr {
                    StackError::AccessDenied(crate::error::Denial::ExclusiveAddress)
                } else {
                    StackError::AddrInUse
                });
            }
            if !same {
                // A specific address and the wildcard share a port (Windows, "Using
                // SO_REUSEADDR and SO_EXCLUSIVEADDRUSE"); the specific binding takes the
                // connections addressed to it. Only an exclusive bind refuses to share.
                if opts.exclusive_addr {
                    return Err(StackError::AddrInUse);
                }
                continue;
            }
            if opts.reuse_addr && o.reuse {
                continue;
            }
            if opts.reuse_addr {
                // SO_REUSEADDR over a holder that set no option: WSAEACCES.
                return Err(StackError::AccessDenied(
                    crate::error::Denial::ExclusiveAddress,
                ));
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

    fn new_tcp_socket(&mut self, opts: &SocketOptions, chosen: BufferChoice) -> SocketHandle {
        let recv = if chosen.recv {
            opts.recv_buffer.clamp(1024, 16 << 20)
        } else {
            AUTO_RECV_BUFFER
        };
        let send = if chosen.send {
            opts.send_buffer.clamp(1024, 16 << 20)
        } else {
            AUTO_SEND_BUFFER
        };
        let rx = tcp::SocketBuffer::new(vec![0u8; recv]);
        let tx = tcp::SocketBuffer::new(vec![0u8; send]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_nagle_enabled(!opts.nodelay);
        if recv < 16 * 1024 || send < 16 * 1024 {
            // A small window holds few segments: acknowledge each at once, so the sender never
            // waits out the delayed-ACK timer with a full window (a stall, not a loss).
            s.set_ack_delay(None);
        }
        self.sockets.add(s)
    }

    fn tcp_status(&mut self, id: u64) -> Result<()> {
        // Promote a connecting socket, detect failures and resets.
        let now = self.now;
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
        if let (Some(started), tcp::State::SynSent) = (started, state) {
            let flow = t.flow;
            if let Some(err) = self.ipsec_connect_failure(flow, started) {
                self.sockets.get_mut::<tcp::Socket>(handle).abort();
                self.orphans.push(Orphan {
                    handle,
                    deadline: now + ORPHAN_LINGER,
                    timewait_since: None,
                });
                self.tcp_mut(id)?.state = TcpState::Failed(err);
                return Ok(());
            }
        }
        let t = self.tcp_mut(id)?;
        match (started, state) {
            (Some(_), tcp::State::SynSent | tcp::State::SynReceived) => {}
            (Some(started), tcp::State::Closed) => {
                let err = if now.saturating_sub(started) + Duration::from_millis(500)
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
                    let verdict = self.ale.established(f, now);
                    if let Ok(AleVerdict::Block(_)) | Err(_) = verdict {
                        let reason = match verdict {
                            Ok(AleVerdict::Block(b)) => StackError::ConnectionAborted(
                                crate::error::Abort::Policy(Box::new(b)),
                            ),
                            Err(e) => StackError::Ale(e),
                            Ok(_) => StackError::ConnectionAborted(crate::error::Abort::Local),
                        };
                        self.sockets.get_mut::<tcp::Socket>(handle).abort();
                        self.orphans.push(Orphan {
                            handle,
                            deadline: now + ORPHAN_LINGER,
                            timewait_since: None,
                        });
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

    /// Expires UDP flows, half-open connections and finished orphans.
    pub(crate) fn housekeeping(&mut self) {
        let now = self.now;
        if now.saturating_sub(self.last_expire) >= Duration::from_secs(1) {
            self.last_expire = now;
            self.closing_needs.retain(|_, (_, until)| *until > now);
            self.ale.expire(now);
            self.expire_half_open();
        }
        let sockets = &mut self.sockets;
        self.orphans.retain_mut(|o| {
            let st = sockets.get::<tcp::Socket>(o.handle).state();
            // TIME-WAIT is cut short (a new SYN on the 4-tuple is accepted, as on Windows), but
            // only after a grace period in which the final ACK is sent and retransmitted FINs
            // are answered.
            let timewait_over = st == tcp::State::TimeWait && {
                let since = *o.timewait_since.get_or_insert(now);
                now.saturating_sub(since) >= TIME_WAIT_GRACE
            };
            if st == tcp::State::Closed || timewait_over || now >= o.deadline {
                sockets.remove(o.handle);
                false
            } else {
                true
            }
        });
    }

    /// Whether closed connections are still delivering queued data or their FIN (what a
    /// process exit waits for).
    pub fn closing_in_progress(&self) -> bool {
        self.orphans.iter().any(|o| {
            let s = self.sockets.get::<tcp::Socket>(o.handle);
            o.deadline > self.now
                && (s.send_queue() > 0
                    || matches!(
                        s.state(),
                        tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
                    ))
        })
    }

    fn listen_socket(
        &mut self,
        local: SocketAddr,
        opts: &SocketOptions,
        chosen: BufferChoice,
    ) -> Result<SocketHandle> {
        let h = self.new_tcp_socket(opts, chosen);
        let lep = listen_ep(local);
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .listen(lep)
            .map_err(|_| StackError::InvalidArgument("cannot listen on this address"))?;
        Ok(h)
    }
}
