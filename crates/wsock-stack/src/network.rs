//! The network: every host of a scenario that lives in this process, the routes to all hosts'
//! wire endpoints, the link faults, the capture, and the tokio runtime that drives it all.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::capture::Capture;
use crate::core::{CoreConfig, HostCore, IpsecSetup, Routes, DEFAULT_CLOSE_LINGER};
use crate::error::{Result, StackError};
use crate::faults;
use crate::scenario::{Faults, Scenario};
use crate::shared::HostShared;
use crate::socket::Host;
use crate::stages::{Transmit, WireAddrs, WireSocket};

/// Size of the wire sockets' kernel buffers, so loopback itself does not drop.
const WIRE_SOCKET_BUFFER: usize = 4 << 20;

struct LinkDir {
    link: usize,
    direction: u8,
    faults: Mutex<Faults>,
    index: AtomicU64,
    /// The link's delay line: delayed datagrams leave in the order they entered (delay and
    /// jitter never reorder; only the `reorder` fault does). Started on first use.
    delay_line: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Delayed>>>,
}

/// A datagram waiting in a link's delay line.
struct Delayed {
    socket: WireSocket,
    release: tokio::time::Instant,
    datagram: Vec<u8>,
    copies: usize,
    to: SocketAddr,
}

impl LinkDir {
    /// Queues a datagram on the delay line, starting the line's task if needed.
    fn delay(&self, out: &Outlet, item: Delayed) {
        let mut line = match self.delay_line.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let item = match line.as_ref() {
            Some(tx) => match tx.send(item) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            None => item,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Delayed>();
        let out = out.clone();
        tokio::spawn(async move {
            let mut last = tokio::time::Instant::now();
            while let Some(d) = rx.recv().await {
                // Never earlier than the datagram before it: FIFO under jitter.
                last = last.max(d.release);
                tokio::time::sleep_until(last).await;
                for _ in 0..d.copies {
                    out.send(d.socket, &d.datagram, d.to).await;
                }
            }
        });
        let _ = tx.send(item);
        *line = Some(tx);
    }
}

/// One wire socket of a host and its batched I/O state (GSO/GRO, `recvmmsg`, where the platform
/// has them; one datagram per call where it has not).
struct WireIo {
    sock: UdpSocket,
    state: UdpSocketState,
}

impl WireIo {
    /// Sends `contents` (several datagrams of `segment_size` bytes, the last possibly shorter,
    /// when `segment_size` is given) to `to`, waiting while the socket's buffer is full.
    async fn send(
        &self,
        contents: &[u8],
        segment_size: Option<usize>,
        to: SocketAddr,
    ) -> std::io::Result<()> {
        let t = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        loop {
            match self.sock.try_io(Interest::WRITABLE, || {
                self.state.try_send((&self.sock).into(), &t)
            }) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.sock.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives what is queued into `bufs` without waiting; the number of buffers filled.
    fn try_recv(
        &self,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> std::io::Result<usize> {
        self.sock.try_io(Interest::READABLE, || {
            self.state.recv((&self.sock).into(), bufs, meta)
        })
    }
}

/// What a host's driver sends with: its three wire sockets, its counters and the capture.
#[derive(Clone)]
struct Outlet {
    host: Arc<HostShared>,
    net: Arc<NetShared>,
    socks: [Arc<WireIo>; 3],
}

/// At most this many bytes leave in one segmented (GSO) send: the UDP payload of one IP packet.
const GSO_MAX_BYTES: usize = 65000;

impl Outlet {
    /// Sends one datagram (the delay lines' path).
    async fn send(&self, socket: WireSocket, datagram: &[u8], to: SocketAddr) {
        self.capture(socket, to, datagram);
        match self.socks[socket.index()].send(datagram, None, to).await {
            Ok(()) => self.sent(),
            Err(e) => {
                tracing::debug!(target: "wsock::stack", host = %self.host.spec.name, error = %e, "wire send failed")
            }
        }
    }

    /// Counts one datagram that left.
    fn sent(&self) {
        self.host.counters.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Captures one datagram as it is handed to the socket: before the send returns, so the
    /// peer's answer never precedes it in the capture.
    fn capture(&self, socket: WireSocket, to: SocketAddr, datagram: &[u8]) {
        if let Some(c) = &self.net.capture {
            c.record(self.host.wires.get(socket), to, datagram);
        }
    }

    /// Sends datagrams in order with as few system calls as the platform allows: a run of
    /// equal-sized datagrams (the last may be shorter) from one socket to one destination leaves
    /// in one segmented send (GSO). Counting and capture stay per datagram.
    async fn send_batch(&self, batch: &[Outgoing], gso: &mut Vec<u8>) {
        let mut i = 0;
        while i < batch.len() {
            let first = &batch[i];
            let size = first.bytes.len();
            let max_segments = self.socks[first.socket.index()].state.max_gso_segments();
            let mut j = i + 1;
            let mut total = size;
            while j < batch.len()
                && j - i < max_segments
                && size > 0
                && batch[j].socket == first.socket
                && batch[j].to == first.to
                && batch[j].bytes.len() <= size
                && total + batch[j].bytes.len() <= GSO_MAX_BYTES
            {
                total += batch[j].bytes.len();
                j += 1;
                if batch[j - 1].bytes.len() < size {
                    break; // only the last segment may be shorter
                }
            }
            let run = &batch[i..j];
            i = j;
            if run.len() == 1 {
                self.send(first.socket, &first.bytes, first.to).await;
                continue;
            }
            gso.clear();
            for d in run {
                gso.extend_from_slice(&d.bytes);
            }
            let io = &self.socks[first.socket.index()];
            for d in run {
                self.capture(d.socket, d.to, &d.bytes);
            }
            match io.send(gso, Some(size), first.to).await {
                Ok(()) => {
                    for _ in run {
                        self.sent();
                    }
                }
                Err(e) => {
                    // A path without segmentation offload fails the first such send (quinn-udp
                    // then stops offering GSO): send this run one datagram at a time (already
                    // captured above).
                    tracing::debug!(target: "wsock::stack", host = %self.host.spec.name, error = %e, "segmented wire send failed; sending one by one");
                    for d in run {
                        if let Err(e) = io.send(&d.bytes, None, d.to).await {
                            tracing::debug!(target: "wsock::stack", host = %self.host.spec.name, error = %e, "wire send failed");
                        } else {
                            self.sent();
                        }
                    }
                }
            }
        }
    }
}

/// A datagram that passed the link's faults and leaves now.
struct Outgoing {
    socket: WireSocket,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// State the drivers of a network's hosts share. It holds no host: hosts hold nothing of the
/// network either, so dropping the last [`Network`] frees everything.
pub(crate) struct NetShared {
    pub(crate) mtu: usize,
    seed: u64,
    /// Link directions by sender, then receiver (looked up by `&str`: no allocation per packet).
    links: HashMap<String, HashMap<String, LinkDir>>,
    capture: Option<Arc<Capture>>,
    /// Wire addresses of the hosts in this process (their datagrams are captured on sending).
    local_wires: HashSet<SocketAddr>,
    pub(crate) routes: Arc<Routes>,
    stopped: AtomicBool,
}

impl NetShared {
    fn link(&self, from: &str, to: &str) -> Option<&LinkDir> {
        self.links.get(from).and_then(|m| m.get(to))
    }
}

/// Builds a [`Network`] from a scenario.
///
/// # Examples
/// ```
/// use wsock_stack::{Network, Scenario};
/// let net = Network::builder(Scenario::default_scenario()).seed(7).start()?;
/// assert!(net.host("client").is_some());
/// # Ok::<(), wsock_stack::StackError>(())
/// ```
#[derive(Debug)]
pub struct NetworkBuilder {
    scenario: Scenario,
    seed: Option<u64>,
    capture: Option<PathBuf>,
    local: Option<Vec<String>>,
    mtu: Option<usize>,
    process_salt: Option<u64>,
    services: bool,
    ipsec: bool,
    keylog: bool,
    ipsec_tweak: Option<IpsecTweak>,
}

/// A change to each host's [`IpsecSetup`] before the network starts
/// ([`NetworkBuilder::ipsec_setup`]).
pub struct IpsecTweak(Arc<TweakFn>);

/// The function behind an [`IpsecTweak`].
type TweakFn = dyn Fn(&str, &mut IpsecSetup) + Send + Sync;

impl std::fmt::Debug for IpsecTweak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpsecTweak(..)")
    }
}

impl NetworkBuilder {
    /// Turns IPsec on or off for every host (default on: hosts answer IKE and protect what
    /// policy asks for; off: such packets are dropped as `no-keying`).
    pub fn ipsec(mut self, on: bool) -> Self {
        self.ipsec = on;
        self
    }

    /// Keeps the keys of every SA so they can be written for Wireshark
    /// ([`Network::key_log`]). Debug material: off by default.
    pub fn keylog(mut self, on: bool) -> Self {
        self.keylog = on;
        self
    }

    /// Adjusts each host's IPsec setup (retransmission schedule, lifetimes, failure delay,
    /// mode...) before the network starts; called with the host's name.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use wsock_stack::{Network, Scenario};
    /// let net = Network::builder(Scenario::default_scenario())
    ///     .ipsec_setup(|_, s| s.failure_delay = Duration::from_secs(2))
    ///     .start()?;
    /// # Ok::<(), wsock_stack::StackError>(())
    /// ```
    pub fn ipsec_setup(
        mut self,
        f: impl Fn(&str, &mut IpsecSetup) + Send + Sync + 'static,
    ) -> Self {
        self.ipsec_tweak = Some(IpsecTweak(Arc::new(f)));
        self
    }
    /// Overrides the scenario's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Writes every datagram that crosses the wire to a pcap file.
    pub fn capture(mut self, path: impl Into<PathBuf>) -> Self {
        self.capture = Some(path.into());
        self
    }

    /// Runs only these hosts in this process; the others are reached at their fixed wire
    /// endpoints (another process or machine runs them).
    pub fn local_hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.local = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Fixes the per-process value that varies initial sequence numbers and the first
    /// ephemeral port between runs (for tests that need the same numbers every run).
    pub fn process_salt(mut self, salt: u64) -> Self {
        self.process_salt = Some(salt);
        self
    }

    /// Whether the scenario's `[[host.service]]` entries run (the default: yes).
    pub fn services(mut self, on: bool) -> Self {
        self.services = on;
        self
    }

    /// Overrides the scenario's link MTU.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Binds the wire sockets of the local hosts and starts their drivers.
    ///
    /// # Errors
    /// [`StackError::Scenario`] for an unknown local host, a remote host with wire port 0, or an
    /// MTU out of range; [`StackError::Io`] when a wire socket cannot be bound or the runtime
    /// cannot start.
    pub fn start(self) -> Result<Network> {
        let sc = self.scenario;
        let seed = self.seed.unwrap_or(sc.seed);
        let mtu = self.mtu.unwrap_or(sc.mtu);
        if !(576..=65000).contains(&mtu) {
            return Err(StackError::Scenario(format!(
                "mtu {mtu} is outside 576..=65000"
            )));
        }
        let local: Vec<String> = match self.local {
            Some(l) => l,
            None => sc.hosts.iter().map(|h| h.name.clone()).collect(),
        };
        for name in &local {
            if sc.host(name).is_none() {
                return Err(StackError::Scenario(format!(
                    "host {name:?} is not in scenario {:?}",
                    sc.name
                )));
            }
        }
        for h in &sc.hosts {
            if !local.contains(&h.name) && h.wire.port() == 0 {
                return Err(StackError::Scenario(format!(
                    "host {:?} runs in another process, so its wire endpoint needs a fixed port (port 0 only works when every host is in one process)",
                    h.name
                )));
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wsock-net")
            .enable_all()
            .build()
            .map_err(|e| StackError::Io(format!("cannot start the network runtime: {e}")))?;
        // Bind the wire sockets first, so every route knows the real ports.
        let mut bound: IndexMap<String, ([StdUdpSocket; 3], WireAddrs)> = IndexMap::new();
        for name in &local {
            let spec = sc.host(name).ok_or(StackError::NotSocket)?;
            let plan = spec.wire_plan().map_err(StackError::Scenario)?;
            let bind = |s: WireSocket| {
                let want = plan.get(s);
                bind_wire(want).map_err(|e| {
                    StackError::Io(format!(
                        "host {name}: cannot bind {s} wire socket {want}: {e}"
                    ))
                })
            };
            let socks = [
                bind(WireSocket::Ike)?,
                bind(WireSocket::NatT)?,
                bind(WireSocket::Clear)?,
            ];
            let addr = |i: usize| {
                socks[i]
                    .local_addr()
                    .map_err(|e| StackError::Io(e.to_string()))
            };
            let wires = WireAddrs {
                ike: addr(0)?,
                natt: addr(1)?,
                clear: addr(2)?,
            };
            bound.insert(name.clone(), (socks, wires));
        }
        let mut routes = Routes::default();
        for h in &sc.hosts {
            let wires = match bound.get(&h.name) {
                Some((_, w)) => *w,
                None => h.wire_plan().map_err(StackError::Scenario)?,
            };
            routes.insert(&h.name, h.ipv4, h.ipv6, wires);
        }
        let routes = Arc::new(routes);
        let mut links: HashMap<String, HashMap<String, LinkDir>> = HashMap::new();
        for a in &sc.hosts {
            for b in &sc.hosts {
                if a.name == b.name {
                    continue;
                }
                let (link, f) = sc.faults(&a.name, &b.name);
                let direction = match sc.links.get(link.wrapping_sub(1)) {
                    Some(l) if l.b == a.name => 1,
                    _ => 0,
                };
                links.entry(a.name.clone()).or_default().insert(
                    b.name.clone(),
                    LinkDir {
                        link,
                        direction,
                        faults: Mutex::new(f),
                        index: AtomicU64::new(0),
                        delay_line: Mutex::new(None),
                    },
                );
            }
        }
        let capture = match &self.capture {
            Some(p) => Some(Arc::new(Capture::create(p).map_err(|e| {
                StackError::Io(format!("cannot create capture {}: {e}", p.display()))
            })?)),
            None => None,
        };
        let local_wires = bound
            .values()
            .flat_map(|(_, w)| WireSocket::ALL.map(|s| w.get(s)))
            .collect();
        let shared = Arc::new(NetShared {
            mtu,
            seed,
            links,
            capture,
            local_wires,
            routes: routes.clone(),
            stopped: AtomicBool::new(false),
        });
        // Initial sequence numbers and the first ephemeral port differ per process unless a
        // test fixes them, so a rerun never collides with its previous run's connections.
        let salt = match self.process_salt {
            Some(s) => s,
            None => process_salt(),
        };
        tracing::info!(target: "wsock::stack", seed, process_salt = salt, "network starting");
        let epoch = std::time::Instant::now();
        let mut ipsec = if self.ipsec {
            let names: Vec<String> = bound.keys().cloned().collect();
            crate::ipsec_setup::setups(&sc, &names, self.keylog, rustls_pki_types::UnixTime::now())?
        } else {
            Default::default()
        };
        if self.keylog {
            tracing::warn!(target: "wsock::ipsec", "key export is on: SA keys are kept for Wireshark (debug material, never for real traffic)");
        }
        let mut hosts = IndexMap::new();
        for (i, (name, (socks, wires))) in bound.into_iter().enumerate() {
            let spec = sc.host(&name).cloned().ok_or(StackError::NotSocket)?;
            let core = HostCore::new(
                spec,
                CoreConfig {
                    mtu,
                    random_seed: faults::splitmix(
                        seed.wrapping_mul(31).wrapping_add(i as u64 + 1) ^ salt,
                    ),
                    routes: routes.clone(),
                    wires,
                },
            )?;
            let mut core = core;
            if let Some(mut setup) = ipsec.remove(&name) {
                if let Some(t) = &self.ipsec_tweak {
                    (t.0)(&name, &mut setup);
                }
                core.enable_ipsec(setup)?;
            }
            let host = Arc::new(HostShared::new(core, epoch));
            let socks = {
                let _g = runtime.enter();
                let [a, b, c] = socks;
                let conv = |s: StdUdpSocket| {
                    let state = UdpSocketState::new((&s).into())
                        .map_err(|e| StackError::Io(format!("wire socket setup: {e}")))?;
                    allow_fragmentation(&s);
                    let sock = UdpSocket::from_std(s).map_err(|e| StackError::Io(e.to_string()))?;
                    Ok::<_, StackError>(Arc::new(WireIo { sock, state }))
                };
                [conv(a)?, conv(b)?, conv(c)?]
            };
            let outlet = Outlet {
                host: host.clone(),
                net: shared.clone(),
                socks,
            };
            runtime.spawn(drive(outlet));
            tracing::info!(target: "wsock::stack", host = %name, ike = %wires.ike, natt = %wires.natt, clear = %wires.clear, "host started");
            hosts.insert(name, host);
        }
        if self.services {
            let _g = runtime.enter();
            for h in hosts.values() {
                crate::services::start(h)?;
            }
        }
        Ok(Network {
            inner: Arc::new(NetInner {
                id: NEXT_NETWORK_ID.fetch_add(1, Ordering::Relaxed),
                runtime: Mutex::new(Some(runtime)),
                hosts,
                shared,
                scenario: sc,
                seed,
            }),
        })
    }
}

/// A value that differs per process and per network (time and process id, mixed).
fn process_salt() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = NEXT_NETWORK_ID.load(Ordering::Relaxed);
    faults::splitmix(nanos ^ (u64::from(std::process::id()) << 32) ^ n)
}

fn bind_wire(addr: SocketAddr) -> std::io::Result<StdUdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the OS may cap these (net.core.rmem_max); loopback rarely drops anyway.
    let _ = s.set_recv_buffer_size(WIRE_SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(WIRE_SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// quinn-udp forbids IP fragmentation on the sockets it sets up (QUIC probes the path MTU
/// itself); the wire keeps the OS default, so a datagram larger than the underlay's path MTU
/// (a 1500-byte link MTU plus GRE and UDP headers between two machines on Ethernet) is
/// fragmented by the OS as before instead of failing to send. (IPv6 wire sockets keep
/// IPV6_DONTFRAG, which no safe API here turns off.)
#[cfg(target_os = "linux")]
fn allow_fragmentation(s: &StdUdpSocket) {
    use rustix::net::sockopt::{
        set_ip_mtu_discover, set_ipv6_mtu_discover, Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery,
    };
    let r = match s.local_addr() {
        Ok(a) if a.is_ipv4() => set_ip_mtu_discover(s, Ipv4PathMtuDiscovery::WANT),
        Ok(_) => set_ipv6_mtu_discover(s, Ipv6PathMtuDiscovery::WANT),
        Err(_) => return,
    };
    if let Err(e) = r {
        tracing::debug!(target: "wsock::stack", error = %e, "cannot restore path-MTU discovery default");
    }
}

#[cfg(not(target_os = "linux"))]
fn allow_fragmentation(_s: &StdUdpSocket) {}

static NEXT_NETWORK_ID: AtomicU64 = AtomicU64::new(1);

struct NetInner {
    id: u64,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    hosts: IndexMap<String, Arc<HostShared>>,
    shared: Arc<NetShared>,
    scenario: Scenario,
    seed: u64,
}

impl NetInner {
    /// Waits until closed connections have delivered their data and FIN, at most `limit`.
    fn drain(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let busy = self.hosts.values().any(|h| {
                h.kick.notify_one();
                h.lock().closing_in_progress()
            });
            if !busy {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                tracing::warn!(target: "wsock::stack", "network stopping with connections still closing");
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for NetInner {
    fn drop(&mut self) {
        // A user-space stack dies with its process: give graceful closes their chance first.
        let on_runtime = tokio::runtime::Handle::try_current().is_ok();
        if !on_runtime {
            self.drain(DEFAULT_CLOSE_LINGER);
        }
        self.shared.stopped.store(true, Ordering::SeqCst);
        for h in self.hosts.values() {
            h.kick.notify_one();
        }
        if let Some(cap) = &self.shared.capture {
            let _ = cap.flush();
        }
        let rt = match self.runtime.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(rt) = rt {
            if on_runtime {
                rt.shutdown_background();
            } else {
                // Waits for the drivers to drop their wire sockets, so the same fixed ports can
                // be bound again at once.
                rt.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }
}

/// A running simulated network: the hosts of a scenario that live in this process.
///
/// Cheap to clone; the network stops when the last clone is dropped.
///
/// # Examples
/// ```
/// use wsock_stack::{Network, Scenario};
/// let net = Network::start(Scenario::default_scenario())?;
/// let client = net.host("client").unwrap();
/// assert_eq!(client.name(), "client");
/// # Ok::<(), wsock_stack::StackError>(())
/// ```
#[derive(Clone)]
pub struct Network {
    inner: Arc<NetInner>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("scenario", &self.inner.scenario.name)
            .field("hosts", &self.inner.hosts.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Network {
    /// A builder for a network of `scenario`.
    pub fn builder(scenario: Scenario) -> NetworkBuilder {
        NetworkBuilder {
            scenario,
            seed: None,
            capture: None,
            local: None,
            mtu: None,
            process_salt: None,
            services: true,
            ipsec: true,
            keylog: false,
            ipsec_tweak: None,
        }
    }

    /// Starts every host of `scenario` in this process.
    ///
    /// # Errors
    /// As [`NetworkBuilder::start`].
    pub fn start(scenario: Scenario) -> Result<Network> {
        Network::builder(scenario).start()
    }

    /// A number unique to this network within the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The local host named `name`.
    pub fn host(&self, name: &str) -> Option<Host> {
        self.inner
            .hosts
            .get(name)
            .map(|h| Host::from_shared(h.clone(), self.clone()))
    }

    /// The local hosts, in scenario order.
    pub fn hosts(&self) -> Vec<Host> {
        self.inner
            .hosts
            .values()
            .map(|h| Host::from_shared(h.clone(), self.clone()))
            .collect()
    }

    /// The scenario this network runs.
    pub fn scenario(&self) -> &Scenario {
        &self.inner.scenario
    }

    /// The effective seed.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The effective link MTU.
    pub fn mtu(&self) -> usize {
        self.inner.shared.mtu
    }

    /// A handle of the runtime that drives the network (for blocking calls and timers).
    ///
    /// # Errors
    /// [`StackError::NetworkDown`] after the network stopped.
    pub fn runtime(&self) -> Result<tokio::runtime::Handle> {
        match self.inner.runtime.lock() {
            Ok(g) => g
                .as_ref()
                .map(|r| r.handle().clone())
                .ok_or(StackError::NetworkDown),
            Err(_) => Err(StackError::NetworkDown),
        }
    }

    /// Replaces the faults from `from` to `to`.
    ///
    /// # Errors
    /// [`StackError::Scenario`] when there is no such pair of hosts.
    pub fn set_faults(&self, from: &str, to: &str, faults: Faults) -> Result<()> {
        let l = self
            .inner
            .shared
            .link(from, to)
            .ok_or_else(|| StackError::Scenario(format!("no link from {from:?} to {to:?}")))?;
        *l.faults.lock().map_err(|_| StackError::NetworkDown)? = faults;
        Ok(())
    }

    /// The faults currently applied from `from` to `to`.
    pub fn faults(&self, from: &str, to: &str) -> Option<Faults> {
        self.inner
            .shared
            .link(from, to)
            .and_then(|l| l.faults.lock().ok().map(|f| *f))
    }

    /// Partitions (or, with `false`, repairs) the link between `a` and `b`, both directions.
    ///
    /// # Errors
    /// [`StackError::Scenario`] when there is no such pair of hosts.
    pub fn set_partitioned(&self, a: &str, b: &str, partitioned: bool) -> Result<()> {
        for (x, y) in [(a, b), (b, a)] {
            let mut f = self
                .faults(x, y)
                .ok_or_else(|| StackError::Scenario(format!("no link from {x:?} to {y:?}")))?;
            f.partitioned = partitioned;
            self.set_faults(x, y, f)?;
        }
        Ok(())
    }

    /// The tshark decode-as arguments that make stock tshark dissect this network's wire:
    /// `isakmp` on the IKE sockets, `udpencap` on the NAT-T sockets, `gre` on the clear ones.
    pub fn decode_as_args(&self) -> Vec<String> {
        let mut rules: Vec<(u16, &'static str)> = Vec::new();
        for h in &self.inner.scenario.hosts {
            let wires = self
                .inner
                .shared
                .routes
                .get(std::net::IpAddr::V4(h.ipv4))
                .map(|r| r.wires);
            if let Some(w) = wires {
                for s in WireSocket::ALL {
                    if w.get(s).port() != 0 {
                        rules.push((w.get(s).port(), s.dissector()));
                    }
                }
            }
        }
        rules.sort_unstable();
        rules.dedup();
        rules
            .into_iter()
            .flat_map(|(p, d)| ["-d".to_string(), format!("udp.port=={p},{d}")])
            .collect()
    }

    /// The key file of every SA negotiated so far by this process's hosts, as JSON in the
    /// format `esp_pcap_check.py check --keys` and its tshark UATs read (`ikev2`, `esp_sa`,
    /// and the `decode_as` rules of the wire ports). Empty lists unless the network was built
    /// with [`NetworkBuilder::keylog`]. Secret material: write it only for debugging.
    pub fn key_file_json(&self) -> String {
        let mut ike: Vec<String> = Vec::new();
        let mut esp: Vec<String> = Vec::new();
        for h in self.hosts() {
            let k = h.key_log();
            for l in k.ikev2 {
                if !ike.contains(&l) {
                    ike.push(l);
                }
            }
            for l in k.esp_sa {
                if !esp.contains(&l) {
                    esp.push(l);
                }
            }
        }
        let decode: Vec<String> = self
            .decode_as_args()
            .into_iter()
            .filter(|a| a != "-d")
            .map(|a| format!("\"{a}\""))
            .collect();
        format!(
            "{{\n  \"decode_as\": [{}],\n  \"ikev2\": [\n    {}\n  ],\n  \"esp_sa\": [\n    {}\n  ]\n}}\n",
            decode.join(", "),
            ike.join(",\n    "),
            esp.join(",\n    ")
        )
    }

    /// Waits until connections closed gracefully have delivered their queued data and FIN (or
    /// `limit` passed). What the last `WSACleanup` and the drop of the last handle do, since a
    /// user-space stack dies with its process. Returns whether everything finished.
    ///
    /// Must not be called from inside the network's runtime.
    pub fn drain(&self, limit: Duration) -> bool {
        self.inner.drain(limit)
    }

    /// Live endpoints and closing connections over all local hosts (leak tests).
    pub fn endpoint_count(&self) -> usize {
        self.inner
            .hosts
            .values()
            .map(|h| h.lock().endpoint_count())
            .sum()
    }

    /// Flushes the capture file, if any.
    ///
    /// # Errors
    /// The I/O error of the flush.
    pub fn flush_capture(&self) -> Result<()> {
        match &self.inner.shared.capture {
            Some(c) => c.flush().map_err(|e| StackError::Io(e.to_string())),
            None => Ok(()),
        }
    }
}

/// Puts one datagram the core produced through the link's faults: it joins `now` (it leaves in
/// this turn's batch), or a delay line, or is dropped. Faults are decided per datagram.
fn apply_faults(out: &Outlet, t: Transmit, now: &mut Vec<Outgoing>) {
    let Transmit {
        socket,
        to,
        to_host,
        mut bytes,
    } = t;
    let net = &out.net;
    let Some(link) = net.link(&out.host.spec.name, &to_host) else {
        // Not a host of the scenario (e.g. an external IKE peer): no faults apply.
        now.push(Outgoing { socket, to, bytes });
        return;
    };
    let index = link.index.fetch_add(1, Ordering::Relaxed);
    let f = match link.faults.lock() {
        Ok(f) => *f,
        Err(p) => *p.into_inner(),
    };
    let d = faults::decide(net.seed, link.link, link.direction, index, &f);
    if d.drop {
        out.host
            .counters
            .fault_dropped
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Some(at) = d.corrupt_at {
        if !bytes.is_empty() {
            let i = (at % bytes.len() as u64) as usize;
            bytes[i] ^= 0x5a;
        }
    }
    let copies = if d.duplicate { 2 } else { 1 };
    let delay = Duration::from_millis(d.delay_ms);
    if d.reorder {
        // Held back outside the delay line, so the datagrams after it overtake it.
        let delay = delay + Duration::from_millis(3);
        let out = out.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for _ in 0..copies {
                out.send(socket, &bytes, to).await;
            }
        });
    } else if delay.is_zero() {
        if copies == 2 {
            now.push(Outgoing {
                socket,
                to,
                bytes: bytes.clone(),
            });
        }
        now.push(Outgoing { socket, to, bytes });
    } else {
        let release = tokio::time::Instant::now() + delay;
        link.delay(
            out,
            Delayed {
                socket,
                release,
                datagram: bytes,
                copies,
                to,
            },
        );
    }
}

/// Receive buffers of a driver: this many at a time (`recvmmsg`), each large enough for a
/// coalesced (GRO) run of datagrams.
const RX_BUFFERS: usize = 8;
const RX_BUFFER_LEN: usize = 65536;
/// At most this many batched receives before the interface runs again.
const RX_ROUNDS: usize = 8;

/// The driver of one host: moves datagrams between its three wire sockets and its core, and
/// time into the core. It waits for a datagram, a kick from an API call, or the core's next
/// deadline. Each turn takes the core's lock once to collect every datagram it has to send,
/// then sends them in batches.
async fn drive(out: Outlet) {
    let host = out.host.clone();
    let mut rx = vec![vec![0u8; RX_BUFFER_LEN]; RX_BUFFERS];
    let mut meta = [RecvMeta::default(); RX_BUFFERS];
    let mut batch: Vec<Transmit> = Vec::new();
    let mut leaving: Vec<Outgoing> = Vec::new();
    let mut gso: Vec<u8> = Vec::new();
    loop {
        if out.net.stopped.load(Ordering::Relaxed) {
            return;
        }
        let deadline = {
            let mut core = host.lock();
            for o in leaving.drain(..) {
                core.recycle(o.bytes);
            }
            let now = host.now();
            core.handle_timeout(now);
            while let Some(t) = core.poll_transmit(now) {
                batch.push(t);
            }
            core.poll_timeout()
        };
        host.wake_all();
        if !batch.is_empty() {
            for t in batch.drain(..) {
                apply_faults(&out, t, &mut leaving);
            }
            out.send_batch(&leaving, &mut gso).await;
            continue;
        }
        let wait = deadline
            .map(|d| d.saturating_sub(host.now()))
            .unwrap_or(Duration::from_millis(500))
            .min(Duration::from_millis(500));
        let readable = tokio::select! {
            r = out.socks[0].sock.readable() => r.ok().map(|_| WireSocket::Ike),
            r = out.socks[1].sock.readable() => r.ok().map(|_| WireSocket::NatT),
            r = out.socks[2].sock.readable() => r.ok().map(|_| WireSocket::Clear),
            _ = host.kick.notified() => None,
            _ = tokio::time::sleep(wait) => None,
        };
        if let Some(socket) = readable {
            on_datagrams(&out, socket, &mut rx, &mut meta);
        }
    }
}

/// Hands what is queued on a readable socket to the core, a batch at a time (each batch under
/// one lock), before the interface runs again.
fn on_datagrams(out: &Outlet, socket: WireSocket, rx: &mut [Vec<u8>], meta: &mut [RecvMeta]) {
    let host = &out.host;
    let io = &out.socks[socket.index()];
    for _ in 0..RX_ROUNDS {
        let n = {
            let mut slices: Vec<std::io::IoSliceMut<'_>> =
                rx.iter_mut().map(|b| std::io::IoSliceMut::new(b)).collect();
            match io.try_recv(&mut slices, meta) {
                Ok(n) if n > 0 => n,
                _ => return,
            }
        };
        let mut core = host.lock();
        let now = host.now();
        for (m, buf) in meta.iter().zip(rx.iter()).take(n) {
            let bytes = &buf[..m.len.min(buf.len())];
            if bytes.is_empty() {
                // An empty datagram: the core counts it as malformed.
                host.count_received();
                core.handle_datagram(now, socket, m.addr, bytes);
                continue;
            }
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for datagram in bytes.chunks(stride.max(1)) {
                record_inbound(out, socket, m.addr, datagram);
                host.count_received();
                core.handle_datagram(now, socket, m.addr, datagram);
            }
        }
        if n < rx.len() {
            return;
        }
    }
}

/// Datagrams from hosts of another process are captured on arrival (local ones on sending).
fn record_inbound(out: &Outlet, socket: WireSocket, from: SocketAddr, datagram: &[u8]) {
    if let Some(c) = &out.net.capture {
        if !out.net.local_wires.contains(&from) {
            c.record(from, out.host.wires.get(socket), datagram);
        }
    }
}
