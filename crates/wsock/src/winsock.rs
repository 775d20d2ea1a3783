//! Winsock state of one network: the `WSAStartup` count and the handle table. Handles are unique
//! in the process (so a call routes by handle from any thread) and each belongs to one network.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use wsock_stack::{Endpoint, Network};

/// Per-socket state the raw face keeps beside the stack endpoint.
#[derive(Debug)]
pub(crate) struct SocketEntry {
    pub(crate) endpoint: Endpoint,
    pub(crate) stream: bool,
    pub(crate) nonblocking: AtomicBool,
    pub(crate) timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
    pub(crate) pending_error: AtomicI32,
    /// Made with `WSA_FLAG_OVERLAPPED` (every `socket()` socket is, as on Windows).
    pub(crate) overlapped: AtomicBool,
    /// `listen` succeeded (readable then means `FD_ACCEPT`).
    pub(crate) listening: AtomicBool,
    /// A stream `connect` was started (`FD_CONNECT` is reported once).
    pub(crate) connecting: AtomicBool,
    /// Where the last stream `connect` went (`getpeername` reports it while the connect is in
    /// progress, as Windows does).
    pub(crate) connect_target: Mutex<Option<std::net::SocketAddr>>,
    /// The last connect failed (no `FD_CLOSE` follows its `FD_CONNECT`).
    pub(crate) connect_failed: AtomicBool,
    /// The stream was connected (accepted, or a connect completed).
    pub(crate) established: AtomicBool,
    /// `shutdown(SD_SEND)` was called (polls still report writable, as Windows does).
    pub(crate) send_shutdown: AtomicBool,
    /// Wakers of `select`/`WSAPoll` calls waiting on this socket, woken by `closesocket`.
    pub(crate) close_wakers: Mutex<Vec<(std::thread::ThreadId, std::task::Waker)>>,
    /// `SIO_UDP_CONNRESET`: an ICMP port unreachable fails the next receive (default on).
    pub(crate) udp_connreset: AtomicBool,
    /// `SO_KEEPALIVE`, and `SIO_KEEPALIVE_VALS` (on/off, time ms, interval ms), stored only.
    pub(crate) keepalive: Mutex<(bool, u32, u32)>,
    /// `WSAEventSelect` state.
    pub(crate) select: Mutex<Option<EventSelect>>,
    /// The last queued overlapped receive and send: the next one starts after it completes, so
    /// overlapped operations on one socket complete in the order they were issued.
    pub(crate) chain: Mutex<Chain>,
    /// Set by `closesocket`: pending overlapped operations end with `WSA_OPERATION_ABORTED`.
    pub(crate) closed: tokio::sync::watch::Sender<bool>,
    /// `WSASetSocketSecurity` succeeded (a second call fails).
    pub(crate) security_set: AtomicBool,
}

/// Completion signals of the last overlapped receive (`.0`) and send (`.1`) of a socket.
#[derive(Debug, Default)]
pub(crate) struct Chain(
    pub(crate) Option<tokio::sync::oneshot::Receiver<()>>,
    pub(crate) Option<tokio::sync::oneshot::Receiver<()>>,
);

/// A socket's `WSAEventSelect` association: the event, the `FD_*` mask, the network events
/// recorded since the last `WSAEnumNetworkEvents`, their error codes, and which events may be
/// recorded again (Windows' re-enabling rules).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EventSelect {
    pub(crate) event: isize,
    pub(crate) mask: u32,
    pub(crate) recorded: u32,
    pub(crate) errors: [i32; 10],
    pub(crate) armed: u32,
}

/// The Winsock state of one network.
#[derive(Debug)]
pub(crate) struct Winsock {
    network: Weak<()>,
    pub(crate) startups: AtomicI32,
    pub(crate) sockets: DashMap<usize, Arc<SocketEntry>>,
    /// The network's runtime, where overlapped operations complete.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    /// The error of `WSAQuerySocketSecurity`'s size probe on TCP with a null template
    /// (`WSAEFAULT` by default, see `wsock::ext::set_null_template_probe_error`).
    pub(crate) null_template_probe_error: AtomicI32,
}

static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(0x100);

fn registry() -> &'static DashMap<u64, (Network, Arc<Winsock>)> {
    static R: OnceLock<DashMap<u64, (Network, Arc<Winsock>)>> = OnceLock::new();
    R.get_or_init(DashMap::new)
}

fn routes() -> &'static DashMap<usize, Weak<Winsock>> {
    static R: OnceLock<DashMap<usize, Weak<Winsock>>> = OnceLock::new();
    R.get_or_init(DashMap::new)
}

/// The Winsock state of `net`, created on first use. It lives while the network has sockets or
/// a startup count; [`release_if_idle`] drops it afterwards.
pub(crate) fn for_network(net: &Network) -> Arc<Winsock> {
    registry()
        .entry(net.id())
        .or_insert_with(|| {
            (
                net.clone(),
                Arc::new(Winsock {
                    network: Weak::new(),
                    startups: AtomicI32::new(0),
                    sockets: DashMap::new(),
                    runtime: net.runtime().ok(),
                    null_template_probe_error: AtomicI32::new(crate::error::codes::WSAEFAULT),
                }),
            )
        })
        .1
        .clone()
}

/// The host a socket lives on.
pub(crate) fn host_of(ws: &Arc<Winsock>, e: &SocketEntry) -> Option<wsock_stack::Host> {
    registry()
        .iter()
        .find(|r| Arc::ptr_eq(&r.value().1, ws))
        .and_then(|r| r.value().0.host(e.endpoint.host_name()))
}

/// Drops the registry's hold on a network whose Winsock is cleaned up and has no sockets.
pub(crate) fn release_if_idle(ws: &Arc<Winsock>) {
    if ws.startups.load(Ordering::SeqCst) == 0 && ws.sockets.is_empty() {
        registry().retain(|_, (_, w)| !Arc::ptr_eq(w, ws));
    }
    let _ = &ws.network;
}

/// A new process-unique handle value (sockets and event objects share the counter, as kernel
/// handles do on Windows).
pub(crate) fn next_handle() -> usize {
    NEXT_HANDLE.fetch_add(4, Ordering::Relaxed)
}

impl Winsock {
    pub(crate) fn insert(self: &Arc<Self>, endpoint: Endpoint, stream: bool) -> usize {
        let h = next_handle();
        self.sockets.insert(
            h,
            Arc::new(SocketEntry {
                endpoint,
                stream,
                nonblocking: AtomicBool::new(false),
                timeouts: Mutex::new((None, None)),
                pending_error: AtomicI32::new(0),
                overlapped: AtomicBool::new(true),
                listening: AtomicBool::new(false),
                connecting: AtomicBool::new(false),
                connect_target: Mutex::new(None),
                connect_failed: AtomicBool::new(false),
                established: AtomicBool::new(false),
                send_shutdown: AtomicBool::new(false),
                close_wakers: Mutex::new(Vec::new()),
                udp_connreset: AtomicBool::new(true),
                keepalive: Mutex::new((false, 7_200_000, 1_000)),
                select: Mutex::new(None),
                chain: Mutex::new(Chain::default()),
                closed: tokio::sync::watch::Sender::new(false),
                security_set: AtomicBool::new(false),
            }),
        );
        routes().insert(h, Arc::downgrade(self));
        h
    }

    pub(crate) fn remove(&self, h: usize) -> Option<Arc<SocketEntry>> {
        routes().remove(&h);
        self.sockets.remove(&h).map(|(_, e)| e)
    }

    pub(crate) fn initialised(&self) -> bool {
        self.startups.load(Ordering::SeqCst) > 0
    }
}

/// Why a handle lookup failed, as the WSA code to report.
pub(crate) fn lookup(h: usize) -> Result<(Arc<Winsock>, Arc<SocketEntry>), i32> {
    use crate::error::codes::{WSAENOTSOCK, WSANOTINITIALISED};
    let ws = routes().get(&h).and_then(|w| w.upgrade());
    match ws {
        Some(ws) => {
            if !ws.initialised() {
                return Err(WSANOTINITIALISED);
            }
            let e = ws.sockets.get(&h).map(|e| e.clone()).ok_or(WSAENOTSOCK)?;
            Ok((ws, e))
        }
        None => match crate::ext::current() {
            Ok((_, ws)) if ws.initialised() => Err(WSAENOTSOCK),
            _ => Err(WSANOTINITIALISED),
        },
    }
}
