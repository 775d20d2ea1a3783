//! Runs a future to completion on the calling thread, with an optional deadline. The raw face's
//! blocking calls use it: the stack's futures are woken by the host driver, so no runtime is
//! needed here, and a call made from inside some async runtime blocks like std::net would
//! instead of panicking.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` until it completes (`Some`) or `timeout` passes (`None`).
pub(crate) fn block_on<F: Future>(fut: F, timeout: Option<Duration>) -> Option<F::Output> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                std::thread::park_timeout(d - now);
            }
            // A bounded park guards against a lost wake-up; the future is simply polled again.
            None => std::thread::park_timeout(Duration::from_millis(250)),
        }
    }
}

/// How long a waiter sleeps at most before polling again (see [`wait_polling`]).
const SLICE: Duration = Duration::from_millis(50);

/// Polls `poll` on the calling thread until it is ready (`Some`) or `timeout` passes (`None`),
/// at least once, and again at least every 50 ms: waits that combine several wake-up sources
/// (sockets, event objects, completion queues, other threads' `closesocket`) stay correct even
/// if one source's wake-up is lost, at the cost of a late answer instead of a missed one.
pub(crate) fn wait_polling<T>(
    timeout: Option<Duration>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Option<T> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = deadline.map_or(SLICE, |d| {
            d.saturating_duration_since(Instant::now()).min(SLICE)
        });
        if let Some(v) = block_on(std::future::poll_fn(&mut poll), Some(slice)) {
            return Some(v);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
    }
}
