//! The glue between a sans-IO [`HostCore`] and the threads and tasks that use it: the core
//! behind a mutex, the network's clock, the wakers of tasks waiting for the core to change, and
//! the driver's kick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::core::HostCore;
use crate::error::Result;
use crate::scenario::HostSpec;
use crate::stages::WireAddrs;

/// Counters the driver keeps (the core counts its own drops).
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    /// Datagrams written to the wire.
    pub(crate) sent: AtomicU64,
    /// Datagrams read from the wire.
    pub(crate) received: AtomicU64,
    /// Datagrams the link faults dropped.
    pub(crate) fault_dropped: AtomicU64,
}

/// One host as the API handles and the driver share it.
pub(crate) struct HostShared {
    pub(crate) spec: HostSpec,
    core: Mutex<HostCore>,
    wakers: Mutex<Vec<Waker>>,
    pub(crate) kick: tokio::sync::Notify,
    pub(crate) counters: WireCounters,
    pub(crate) wires: WireAddrs,
    epoch: std::time::Instant,
}

impl HostShared {
    pub(crate) fn new(core: HostCore, epoch: std::time::Instant) -> HostShared {
        HostShared {
            spec: core.spec().clone(),
            wires: core.wires(),
            core: Mutex::new(core),
            wakers: Mutex::new(Vec::new()),
            kick: tokio::sync::Notify::new(),
            counters: WireCounters::default(),
            epoch,
        }
    }

    /// The network's clock.
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The core, with its clock advanced to now.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HostCore> {
        let mut g = match self.core.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.touch(self.now());
        g
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
            if w.is_empty() {
                return;
            }
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
        mut f: impl FnMut(&mut HostCore) -> Result<Option<T>>,
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
                // Registered under the core's lock: a change the driver makes after this
                // cannot be missed.
                self.register(cx);
                Poll::Pending
            }
        }
    }

    /// Runs `f` under the lock once and kicks the driver.
    pub(crate) fn op<T>(&self, f: impl FnOnce(&mut HostCore) -> Result<T>) -> Result<T> {
        let r = f(&mut self.lock());
        self.kick.notify_one();
        self.wake_all();
        r
    }

    /// The receive path: one datagram from a wire socket.
    pub(crate) fn count_received(&self) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
    }
}
