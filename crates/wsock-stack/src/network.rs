//! The network: every host of a scenario that lives in this process, the routes to all hosts'
//! wire endpoints, the link faults, the capture, and the tokio runtime that drives it all.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::net::UdpSocket;

use crate::capture::Capture;
use crate::error::{Result, StackError};
use crate::faults;
use crate::hooks::Direction;
use crate::host::HostShared;
use crate::scenario::{Faults, Scenario};
use crate::socket::Host;
use crate::wire;

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
    release: tokio::time::Instant,
    datagram: Vec<u8>,
    copies: usize,
    to: SocketAddr,
}

impl LinkDir {
    /// Queues a datagram on the delay line, starting the line's task if needed.
    fn delay(&self, host: &Arc<HostShared>, sock: &Arc<UdpSocket>, item: Delayed) {
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
        let (host, sock) = (host.clone(), sock.clone());
        tokio::spawn(async move {
            let mut last = tokio::time::Instant::now();
            while let Some(d) = rx.recv().await {
                // Never earlier than the datagram before it: FIFO under jitter.
                last = last.max(d.release);
                tokio::time::sleep_until(last).await;
                for _ in 0..d.copies {
                    send_datagram(&host, &sock, &d.datagram, d.to).await;
                }
            }
        });
        let _ = tx.send(item);
        *line = Some(tx);
    }
}

/// State every host of a network shares.
pub(crate) struct NetShared {
    pub(crate) mtu: usize,
    seed: u64,
    routes: RwLock<HashMap<IpAddr, (Arc<str>, SocketAddr)>>,
    /// Link directions by sender, then receiver (looked up by `&str`: no allocation per packet).
    links: HashMap<String, HashMap<String, LinkDir>>,
    capture: Option<Arc<Capture>>,
    local: RwLock<HashMap<String, Arc<HostShared>>>,
    wire_sockets: RwLock<HashMap<String, Arc<UdpSocket>>>,
    stopped: AtomicBool,
}

impl NetShared {
    fn link(&self, from: &str, to: &str) -> Option<&LinkDir> {
        self.links.get(from).and_then(|m| m.get(to))
    }

    pub(crate) fn route(&self, dst: IpAddr) -> Option<(Arc<str>, SocketAddr)> {
        match self.routes.read() {
            Ok(r) => r.get(&dst).cloned(),
            Err(p) => p.into_inner().get(&dst).cloned(),
        }
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
}

impl NetworkBuilder {
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
        // Bind the wire sockets first, so every route knows the real port.
        let mut bound = IndexMap::new();
        for name in &local {
            let spec = sc.host(name).ok_or(StackError::NotSocket)?;
            let std_sock = bind_wire(spec.wire).map_err(|e| {
                StackError::Io(format!(
                    "host {name}: cannot bind wire socket {}: {e}",
                    spec.wire
                ))
            })?;
            let addr = std_sock
                .local_addr()
                .map_err(|e| StackError::Io(e.to_string()))?;
            bound.insert(name.clone(), (std_sock, addr));
        }
        let mut routes = HashMap::new();
        for h in &sc.hosts {
            let wire = bound.get(&h.name).map(|(_, a)| *a).unwrap_or(h.wire);
            let name: Arc<str> = Arc::from(h.name.as_str());
            routes.insert(IpAddr::V4(h.ipv4), (name.clone(), wire));
            routes.insert(IpAddr::V6(h.ipv6), (name, wire));
        }
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
        let shared = Arc::new(NetShared {
            mtu,
            seed,
            routes: RwLock::new(routes),
            links,
            capture,
            local: RwLock::new(HashMap::new()),
            wire_sockets: RwLock::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        });
        let mut hosts = IndexMap::new();
        for (i, (name, (std_sock, addr))) in bound.into_iter().enumerate() {
            let spec = sc.host(&name).cloned().ok_or(StackError::NotSocket)?;
            let host = Arc::new(HostShared::new(
                spec,
                shared.clone(),
                addr,
                seed.wrapping_mul(31).wrapping_add(i as u64 + 1),
            )?);
            let sock = {
                let _g = runtime.enter();
                Arc::new(UdpSocket::from_std(std_sock).map_err(|e| StackError::Io(e.to_string()))?)
            };
            write_map(&shared.local).insert(name.clone(), host.clone());
            write_map(&shared.wire_sockets).insert(name.clone(), sock.clone());
            runtime.spawn(drive(host.clone(), sock));
            tracing::info!(target: "wsock::stack", host = %name, wire = %addr, "host started");
            hosts.insert(name, host);
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

fn write_map<K, V>(l: &RwLock<HashMap<K, V>>) -> std::sync::RwLockWriteGuard<'_, HashMap<K, V>> {
    match l.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
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

static NEXT_NETWORK_ID: AtomicU64 = AtomicU64::new(1);

struct NetInner {
    id: u64,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    hosts: IndexMap<String, Arc<HostShared>>,
    shared: Arc<NetShared>,
    scenario: Scenario,
    seed: u64,
}

impl Drop for NetInner {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        if let Some(cap) = &self.shared.capture {
            let _ = cap.flush();
        }
        let rt = match self.runtime.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(rt) = rt {
            rt.shutdown_background();
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

    /// The tshark decode-as arguments that make stock tshark dissect this network's wire.
    pub fn decode_as_args(&self) -> Vec<String> {
        let mut ports: Vec<u16> = self.inner.hosts.values().map(|h| h.wire.port()).collect();
        for h in &self.inner.scenario.hosts {
            if h.wire.port() != 0 {
                ports.push(h.wire.port());
            }
        }
        ports.sort_unstable();
        ports.dedup();
        ports
            .into_iter()
            .flat_map(|p| ["-d".to_string(), format!("udp.port=={p},gre")])
            .collect()
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

/// Sends one packet of `host` towards its destination, through hooks, faults and capture.
async fn transmit(host: &Arc<HostShared>, sock: &Arc<UdpSocket>, mut packet: Vec<u8>) {
    let net = &host.net;
    if !host.run_hooks(Direction::Outbound, &mut packet) {
        return;
    }
    let Ok(summary) = wire::IpSummary::parse(&packet) else {
        return;
    };
    let Some((to_name, to_wire)) = net.route(summary.dst) else {
        tracing::debug!(target: "wsock::stack", host = %host.spec.name, dst = %summary.dst, "no route: packet dropped");
        return;
    };
    if *to_name == *host.spec.name {
        host.ingress_packet(packet);
        host.kick.notify_one();
        return;
    }
    let Some(link) = net.link(&host.spec.name, &to_name) else {
        return;
    };
    let index = link.index.fetch_add(1, Ordering::Relaxed);
    let f = match link.faults.lock() {
        Ok(f) => *f,
        Err(p) => *p.into_inner(),
    };
    let d = faults::decide(net.seed, link.link, link.direction, index, &f);
    if d.drop {
        host.counters.fault_dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Some(at) = d.corrupt_at {
        let i = (at % packet.len() as u64) as usize;
        packet[i] ^= 0x5a;
    }
    let Ok(datagram) = wire::gre_encapsulate(&packet) else {
        return;
    };
    let copies = if d.duplicate { 2 } else { 1 };
    let delay = Duration::from_millis(d.delay_ms);
    if d.reorder {
        // Held back outside the delay line, so the datagrams after it overtake it.
        let delay = delay + Duration::from_millis(3);
        let (host, sock) = (host.clone(), sock.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for _ in 0..copies {
                send_datagram(&host, &sock, &datagram, to_wire).await;
            }
        });
    } else if delay.is_zero() {
        for _ in 0..copies {
            send_datagram(host, sock, &datagram, to_wire).await;
        }
    } else {
        let release = tokio::time::Instant::now() + delay;
        link.delay(
            host,
            sock,
            Delayed {
                release,
                datagram,
                copies,
                to: to_wire,
            },
        );
    }
}

async fn send_datagram(host: &HostShared, sock: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    match sock.send_to(datagram, to).await {
        Ok(_) => {
            host.counters.wire_sent.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = &host.net.capture {
                c.record(host.wire, to, datagram);
            }
        }
        Err(e) => {
            tracing::debug!(target: "wsock::stack", host = %host.spec.name, error = %e, "wire send failed")
        }
    }
}

/// The driver of one host: polls the interface, sends what it emits, waits for the wire, a kick
/// from an API call, or the interface's next timer.
async fn drive(host: Arc<HostShared>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65536];
    loop {
        if host.net.stopped.load(Ordering::Relaxed) {
            return;
        }
        let (out, delay) = host.poll_once();
        host.wake_all();
        let sent = !out.is_empty();
        for p in out {
            transmit(&host, &sock, p).await;
        }
        if sent {
            continue;
        }
        let delay = delay
            .unwrap_or(Duration::from_millis(500))
            .min(Duration::from_millis(500));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    record_inbound(&host, from, &buf[..n]);
                    host.ingress(&buf[..n]);
                    // Drain what else is queued before polling the interface again.
                    for _ in 0..256 {
                        match sock.try_recv_from(&mut buf) {
                            Ok((n, from)) => {
                                record_inbound(&host, from, &buf[..n]);
                                host.ingress(&buf[..n]);
                            }
                            Err(_) => break,
                        }
                    }
                }
            }
            _ = host.kick.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Datagrams from hosts of another process are captured on arrival (local ones on sending).
fn record_inbound(host: &HostShared, from: SocketAddr, datagram: &[u8]) {
    if let Some(c) = &host.net.capture {
        let from_local = match host.net.local.read() {
            Ok(l) => l.values().any(|h| h.wire == from),
            Err(_) => false,
        };
        if !from_local {
            c.record(from, host.wire, datagram);
        }
    }
}
