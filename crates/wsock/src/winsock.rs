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
}

/// The Winsock state of one network.
#[derive(Debug)]
pub(crate) struct Winsock {
    network: Weak<()>,
    pub(crate) startups: AtomicI32,
    pub(crate) sockets: DashMap<usize, Arc<SocketEntry>>,
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
                }),
            )
        })
        .1
        .clone()
}

/// Drops the registry's hold on a network whose Winsock is cleaned up and has no sockets.
pub(crate) fn release_if_idle(ws: &Arc<Winsock>) {
    if ws.startups.load(Ordering::SeqCst) == 0 && ws.sockets.is_empty() {
        registry().retain(|_, (_, w)| !Arc::ptr_eq(w, ws));
    }
    let _ = &ws.network;
}

impl Winsock {
    pub(crate) fn insert(self: &Arc<Self>, endpoint: Endpoint, stream: bool) -> usize {
        let h = NEXT_HANDLE.fetch_add(4, Ordering::Relaxed);
        self.sockets.insert(
            h,
            Arc::new(SocketEntry {
                endpoint,
                stream,
                nonblocking: AtomicBool::new(false),
                timeouts: Mutex::new((None, None)),
                pending_error: AtomicI32::new(0),
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
