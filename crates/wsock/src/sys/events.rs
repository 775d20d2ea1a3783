//! Event objects and event-driven I/O: `WSACreateEvent`, `WSASetEvent`, `WSAResetEvent`,
//! `WSACloseEvent`, `WSAWaitForMultipleEvents`, `WSAEventSelect`, `WSAEnumNetworkEvents`, and the
//! alertable waits (`SleepEx`, `WSAWaitForMultipleEvents(.., fAlertable = TRUE)`) where
//! overlapped completion routines run.
//!
//! An event is a manual-reset event object, as `WSACreateEvent` makes on Windows, named by a
//! process-unique pointer-sized handle from the same counter as socket handles; a closed or
//! unknown handle gives `WSA_INVALID_HANDLE`.
//!
//! `WSAEventSelect` follows Windows' recording rules (Microsoft, "WSAEventSelect function",
//! Remarks): a network event is recorded and the event signalled when its condition holds and
//! it is enabled; once recorded it is not recorded again until its re-enabling call
//! (`FD_READ`: `recv`, `recvfrom`, `WSARecv`, `WSARecvFrom`; `FD_WRITE`: a send that failed with
//! `WSAEWOULDBLOCK`; `FD_ACCEPT`: `accept`, `WSAAccept`; `FD_CONNECT` once per `connect`;
//! `FD_CLOSE` once). Conditions are evaluated when a thread looks (a wait, `WSAEnumNetworkEvents`,
//! a re-enabling call) and a waiting thread is woken by the stack when a socket it waits for
//! changes, so a waiter sees what Windows would have signalled.
//!
//! Completion routines of overlapped I/O are queued to the thread that issued the operation and
//! run during its next alertable wait, which then returns `WSA_WAIT_IO_COMPLETION` (`SleepEx`:
//! `WAIT_IO_COMPLETION`). An event that is already signalled is reported before queued routines
//! run, as the NT wait does.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::{Thread, ThreadId};
use std::time::Duration;

use dashmap::DashMap;
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{HANDLE, WAIT_EVENT, WAIT_IO_COMPLETION};
use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock_stack::Readiness;

use super::{
    bytes_available, with_socket, FD_ACCEPT, FD_ACCEPT_BIT, FD_CLOSE, FD_CLOSE_BIT, FD_CONNECT,
    FD_CONNECT_BIT, FD_MAX_EVENTS, FD_READ, FD_READ_BIT, FD_WRITE, FD_WRITE_BIT, LAST_ERROR,
    SOCKET, SOCKET_ERROR, WSAEFAULT, WSAEINVAL, WSAEVENT, WSANETWORKEVENTS, WSA_INVALID_HANDLE,
    WSA_INVALID_PARAMETER, WSA_MAXIMUM_WAIT_EVENTS, WSA_WAIT_EVENT_0, WSA_WAIT_FAILED,
    WSA_WAIT_IO_COMPLETION, WSA_WAIT_TIMEOUT,
};
use crate::error::wsa_code_of;
use crate::winsock::{self, EventSelect, SocketEntry};

const TRUE: BOOL = 1;
const FALSE: BOOL = 0;

/// The `FD_*` events wsock records (`FD_OOB`, `FD_QOS`, ... never occur).
const SUPPORTED: u32 = FD_READ | FD_WRITE | FD_ACCEPT | FD_CONNECT | FD_CLOSE;

// ---------------------------------------------------------------- event objects

/// A manual-reset event object.
#[derive(Debug, Default)]
pub(crate) struct Event {
    state: Mutex<EventState>,
}

#[derive(Debug, Default)]
struct EventState {
    signalled: bool,
    wakers: Vec<(ThreadId, Waker)>,
    /// Sockets whose `WSAEventSelect` names this event.
    sockets: Vec<SOCKET>,
}

impl Event {
    pub(crate) fn set(&self) {
        let wakers = match self.state.lock() {
            Ok(mut s) => {
                s.signalled = true;
                std::mem::take(&mut s.wakers)
            }
            Err(_) => return,
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    fn reset(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.signalled = false;
        }
    }

    fn signalled(&self) -> bool {
        self.state.lock().map(|s| s.signalled).unwrap_or(false)
    }

    fn register(&self, w: &Waker) {
        if let Ok(mut s) = self.state.lock() {
            // One waker per waiting thread: a thread's newer waker replaces its older one, so
            // a long wait (re-polled every 50 ms) does not grow the list.
            let me = std::thread::current().id();
            s.wakers.retain(|(t, _)| *t != me);
            s.wakers.push((me, w.clone()));
        }
    }

    fn sockets(&self) -> Vec<SOCKET> {
        self.state
            .lock()
            .map(|s| s.sockets.clone())
            .unwrap_or_default()
    }
}

fn events() -> &'static DashMap<isize, Arc<Event>> {
    static E: OnceLock<DashMap<isize, Arc<Event>>> = OnceLock::new();
    E.get_or_init(DashMap::new)
}

/// The event object of a handle, if it is open.
pub(crate) fn event(h: isize) -> Option<Arc<Event>> {
    events().get(&h).map(|e| e.clone())
}

fn set_error(code: i32) {
    LAST_ERROR.with(|e| e.set(code));
}

/// Creates a manual-reset event object, initially not signalled.
///
/// # Safety
/// None: no pointers (declared `unsafe` like every windows-sys import).
///
/// # Errors
/// None in wsock (Windows returns `WSA_INVALID_EVENT` when out of resources).
pub unsafe extern "system" fn WSACreateEvent() -> WSAEVENT {
    let h = winsock::next_handle() as isize;
    events().insert(h, Arc::new(Event::default()));
    h
}

fn with_event(h: WSAEVENT, f: impl FnOnce(&Event)) -> BOOL {
    match event(h) {
        Some(e) => {
            f(&e);
            TRUE
        }
        None => {
            set_error(WSA_INVALID_HANDLE);
            FALSE
        }
    }
}

/// Signals an event object; every thread waiting on it wakes.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `FALSE` with `WSA_INVALID_HANDLE` for a closed or unknown handle.
pub unsafe extern "system" fn WSASetEvent(hevent: WSAEVENT) -> BOOL {
    with_event(hevent, Event::set)
}

/// Resets an event object to not signalled.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `FALSE` with `WSA_INVALID_HANDLE` for a closed or unknown handle.
pub unsafe extern "system" fn WSAResetEvent(hevent: WSAEVENT) -> BOOL {
    with_event(hevent, Event::reset)
}

/// Closes an event object; its handle becomes invalid.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `FALSE` with `WSA_INVALID_HANDLE` for a closed or unknown handle.
pub unsafe extern "system" fn WSACloseEvent(hevent: WSAEVENT) -> BOOL {
    match events().remove(&hevent) {
        Some((_, e)) => {
            // Wake waiters so they notice; they report the handle as invalid next time.
            let wakers = e
                .state
                .lock()
                .map(|mut s| std::mem::take(&mut s.wakers))
                .unwrap_or_default();
            for (_, w) in wakers {
                w.wake();
            }
            TRUE
        }
        None => {
            set_error(WSA_INVALID_HANDLE);
            FALSE
        }
    }
}

// ---------------------------------------------------------------- completion routines (APCs)

/// A completion routine call waiting for an alertable wait of its thread.
pub(crate) struct Apc {
    pub(crate) routine: unsafe extern "system" fn(u32, u32, *mut OVERLAPPED, u32),
    pub(crate) error: u32,
    pub(crate) bytes: u32,
    pub(crate) overlapped: usize,
    pub(crate) flags: u32,
}

struct ApcQueue {
    items: Mutex<VecDeque<Apc>>,
    thread: Thread,
}

fn apc_queues() -> &'static DashMap<ThreadId, Arc<ApcQueue>> {
    static Q: OnceLock<DashMap<ThreadId, Arc<ApcQueue>>> = OnceLock::new();
    Q.get_or_init(DashMap::new)
}

/// The calling thread's id, registering its queue so completions can reach it.
pub(crate) fn current_apc_thread() -> ThreadId {
    let t = std::thread::current();
    let id = t.id();
    apc_queues().entry(id).or_insert_with(|| {
        Arc::new(ApcQueue {
            items: Mutex::new(VecDeque::new()),
            thread: t,
        })
    });
    id
}

/// Queues a completion routine to `thread` and wakes it.
pub(crate) fn queue_apc(thread: ThreadId, apc: Apc) {
    if let Some(q) = apc_queues().get(&thread).map(|q| q.clone()) {
        if let Ok(mut items) = q.items.lock() {
            items.push_back(apc);
        }
        q.thread.unpark();
    }
}

/// Runs the calling thread's queued completion routines; whether any ran.
fn run_apcs() -> bool {
    let q = match apc_queues().get(&std::thread::current().id()) {
        Some(q) => q.clone(),
        None => return false,
    };
    let mut ran = false;
    loop {
        let next = q.items.lock().ok().and_then(|mut i| i.pop_front());
        match next {
            Some(a) => {
                ran = true;
                // SAFETY: the routine and OVERLAPPED are the application's, given to the call
                // that queued this completion, which Windows requires to stay valid until now.
                unsafe {
                    (a.routine)(a.error, a.bytes, a.overlapped as *mut OVERLAPPED, a.flags);
                }
            }
            None => return ran,
        }
    }
}

fn apcs_pending() -> bool {
    apc_queues()
        .get(&std::thread::current().id())
        .map(|q| q.items.lock().map(|i| !i.is_empty()).unwrap_or(false))
        .unwrap_or(false)
}

// ---------------------------------------------------------------- waits

/// Waits on the calling thread (parking it) until `ready` returns a value or the deadline
/// passes. `ready` is polled with a context whose waker unparks this thread.
fn wait_until<T>(
    timeout: Option<Duration>,
    mut ready: impl FnMut(&mut Context<'_>) -> Option<T>,
) -> Option<T> {
    crate::blocking::wait_polling(timeout, |cx| match ready(cx) {
        Some(v) => Poll::Ready(v),
        None => Poll::Pending,
    })
}

/// Waits until one (or, with `fWaitAll`, every) event is signalled, the timeout passes, or
/// (alertable) a completion routine of this thread has run.
///
/// Returns `WSA_WAIT_EVENT_0 + i` (the lowest signalled index; 0 when all are waited for),
/// `WSA_WAIT_TIMEOUT`, `WSA_WAIT_IO_COMPLETION`, or `WSA_WAIT_FAILED`.
///
/// # Safety
/// `lphevents` must point to `cevents` handles.
///
/// # Errors
/// `WSA_WAIT_FAILED` with `WSA_INVALID_PARAMETER` when `cevents` is 0 or above
/// `WSA_MAXIMUM_WAIT_EVENTS` or `lphevents` is null; with `WSA_INVALID_HANDLE` when a handle is
/// not an open event.
pub unsafe extern "system" fn WSAWaitForMultipleEvents(
    cevents: u32,
    lphevents: *const HANDLE,
    fwaitall: BOOL,
    dwtimeout: u32,
    falertable: BOOL,
) -> WAIT_EVENT {
    super::guard(WSA_WAIT_FAILED, || {
        if cevents == 0 || cevents > WSA_MAXIMUM_WAIT_EVENTS || lphevents.is_null() {
            set_error(WSA_INVALID_PARAMETER);
            return WSA_WAIT_FAILED;
        }
        let handles: Vec<isize> = (0..cevents as usize)
            .map(|i| std::ptr::read_unaligned(lphevents.add(i)) as isize)
            .collect();
        let mut evs = Vec::with_capacity(handles.len());
        for h in &handles {
            match event(*h) {
                Some(e) => evs.push(e),
                None => {
                    set_error(WSA_INVALID_HANDLE);
                    return WSA_WAIT_FAILED;
                }
            }
        }
        let timeout =
            (dwtimeout != super::WSA_INFINITE).then(|| Duration::from_millis(dwtimeout.into()));
        if falertable != 0 {
            current_apc_thread();
        }
        let check = |cx: Option<&mut Context<'_>>| -> Option<WAIT_EVENT> {
            let mut cx = cx;
            for (e, h) in evs.iter().zip(&handles) {
                if event(*h).is_none() {
                    return Some(WSA_WAIT_FAILED);
                }
                for s in e.sockets() {
                    refresh_socket(s, cx.as_deref_mut());
                }
                if let Some(c) = cx.as_deref_mut() {
                    e.register(c.waker());
                }
            }
            if fwaitall != 0 {
                if evs.iter().all(|e| e.signalled()) {
                    return Some(WSA_WAIT_EVENT_0 as u32);
                }
            } else if let Some(i) = evs.iter().position(|e| e.signalled()) {
                return Some(WSA_WAIT_EVENT_0 as u32 + i as u32);
            }
            if falertable != 0 && apcs_pending() {
                run_apcs();
                return Some(WSA_WAIT_IO_COMPLETION as u32);
            }
            None
        };
        let r = if timeout == Some(Duration::ZERO) {
            check(None)
        } else {
            wait_until(timeout, |cx| check(Some(cx)))
        };
        match r {
            Some(WSA_WAIT_FAILED) => {
                set_error(WSA_INVALID_HANDLE);
                WSA_WAIT_FAILED
            }
            Some(v) => v,
            None => WSA_WAIT_TIMEOUT,
        }
    })
}

/// Suspends the calling thread for `dwmilliseconds` (`u32::MAX`: no limit). When `balertable`
/// is non-zero, queued completion routines of the thread run and the call returns
/// `WAIT_IO_COMPLETION` (192) as soon as one has run; otherwise it returns 0. The signature is
/// windows-sys's `Win32::System::Threading::SleepEx`.
///
/// # Safety
/// None: no pointers (the completion routines called are the application's own).
///
/// # Errors
/// None.
pub unsafe extern "system" fn SleepEx(dwmilliseconds: u32, balertable: BOOL) -> u32 {
    super::guard(0, || {
        let timeout =
            (dwmilliseconds != u32::MAX).then(|| Duration::from_millis(dwmilliseconds.into()));
        if balertable == 0 {
            match timeout {
                Some(t) => std::thread::sleep(t),
                None => loop {
                    std::thread::park();
                },
            }
            return 0;
        }
        current_apc_thread();
        let r = wait_until(timeout, |_| {
            if apcs_pending() {
                run_apcs();
                Some(())
            } else {
                None
            }
        });
        if r.is_some() {
            WAIT_IO_COMPLETION
        } else {
            0
        }
    })
}

// ---------------------------------------------------------------- WSAEventSelect

/// Evaluates the network events of socket `s` (if it has a `WSAEventSelect` association),
/// records what newly holds and signals the event; with `cx`, registers a wake-up for the
/// conditions still armed.
fn refresh_socket(s: SOCKET, cx: Option<&mut Context<'_>>) {
    if let Ok((_, e)) = winsock::lookup(s) {
        refresh(&e, cx);
    }
}

/// The network events whose condition holds now among `armed`, each with its error code.
/// Also reports whether a pending connect has finished.
fn conditions(e: &SocketEntry, r: &Readiness, armed: u32) -> (Vec<(u32, i32)>, bool) {
    let stream = e.stream;
    let listening = e.listening.load(Ordering::SeqCst);
    let connecting = e.connecting.load(Ordering::SeqCst);
    let err = r.error.as_ref().map(wsa_code_of);
    let mut out = Vec::new();
    if listening {
        if armed & FD_ACCEPT != 0 && r.readable {
            out.push((FD_ACCEPT, 0));
        }
        return (out, false);
    }
    let connect_done = stream && connecting && (err.is_some() || r.writable);
    if connect_done && err.is_some() {
        e.connect_failed.store(true, Ordering::SeqCst);
    }
    if connect_done && armed & FD_CONNECT != 0 {
        out.push((FD_CONNECT, err.unwrap_or(0)));
    }
    if stream && connecting && (!connect_done || err.is_some()) {
        // Not connected yet, or the connect failed: FD_CONNECT carries the result.
        return (out, connect_done);
    }
    if armed & FD_READ != 0 && r.readable && (!stream || bytes_available(e) > 0) {
        out.push((FD_READ, 0));
    }
    // While a non-blocking send's remainder (or an overlapped send) is still queued, the
    // socket is not writable in Windows' sense.
    let send_idle = e
        .chain
        .lock()
        .map(|mut c| super::overlapped::finished(&mut c.1))
        .unwrap_or(true);
    if armed & FD_WRITE != 0 && r.writable && err.is_none() && send_idle {
        out.push((FD_WRITE, 0));
    }
    if stream && armed & FD_CLOSE != 0 && !e.connect_failed.load(Ordering::SeqCst) {
        if let Some(c) = err {
            out.push((FD_CLOSE, c));
        } else if r.hangup || (r.readable && bytes_available(e) == 0) {
            out.push((FD_CLOSE, 0));
        }
    }
    (out, connect_done)
}

fn bit_of(ev: u32) -> usize {
    match ev {
        FD_READ => FD_READ_BIT as usize,
        FD_WRITE => FD_WRITE_BIT as usize,
        FD_ACCEPT => FD_ACCEPT_BIT as usize,
        FD_CONNECT => FD_CONNECT_BIT as usize,
        _ => FD_CLOSE_BIT as usize,
    }
}

/// See [`refresh_socket`].
pub(crate) fn refresh(e: &SocketEntry, cx: Option<&mut Context<'_>>) {
    let sel = match e.select.lock().ok().and_then(|g| *g) {
        Some(s) if s.mask != 0 => s,
        _ => return,
    };
    let r = match e.endpoint.readiness() {
        Ok(r) => r,
        Err(_) => return,
    };
    let (found, connect_done) = conditions(e, &r, sel.armed & sel.mask);
    if connect_done {
        e.connecting.store(false, Ordering::SeqCst);
    }
    let mut new = 0u32;
    let mut signal = None;
    if let Ok(mut g) = e.select.lock() {
        if let Some(st) = g.as_mut() {
            if st.event != sel.event {
                return;
            }
            for (ev, code) in found {
                if st.armed & st.mask & ev != 0 {
                    st.recorded |= ev;
                    st.errors[bit_of(ev)] = code;
                    st.armed &= !ev;
                    new |= ev;
                }
            }
            signal = Some(st.event);
        }
    }
    if new != 0 {
        if let Some(ev) = signal.and_then(event) {
            ev.set();
        }
    }
    if let Some(cx) = cx {
        let armed = sel.armed & sel.mask & !new;
        if armed == 0 {
            return;
        }
        let _ = e.endpoint.poll_ready(cx, |r| {
            (armed & (FD_READ | FD_ACCEPT | FD_CLOSE) != 0 && (r.readable || r.hangup))
                || (armed & (FD_WRITE | FD_CONNECT) != 0 && r.writable)
        });
    }
}

/// Re-enables network event `ev` of a socket (its re-enabling call was made) and records it
/// again at once if its condition still holds.
pub(crate) fn rearm(e: &SocketEntry, ev: u32) {
    let active = match e.select.lock() {
        Ok(mut g) => match g.as_mut() {
            Some(st) if st.mask != 0 => {
                st.armed |= ev;
                true
            }
            _ => false,
        },
        Err(_) => false,
    };
    if active {
        refresh(e, None);
    }
}

/// An accepted socket takes the listener's `WSAEventSelect` association (same event and mask,
/// non-blocking), as Microsoft documents ("WSAEventSelect function", Remarks).
pub(crate) fn inherit(listener: &SocketEntry, child: SOCKET, child_entry: &SocketEntry) {
    let sel = match listener.select.lock().ok().and_then(|g| *g) {
        Some(s) if s.mask != 0 => s,
        _ => return,
    };
    child_entry.nonblocking.store(true, Ordering::SeqCst);
    if let Ok(mut g) = child_entry.select.lock() {
        *g = Some(EventSelect {
            event: sel.event,
            mask: sel.mask,
            recorded: 0,
            errors: [0; 10],
            armed: SUPPORTED,
        });
    }
    if let Some(ev) = event(sel.event) {
        if let Ok(mut st) = ev.state.lock() {
            st.sockets.push(child);
        }
    }
    refresh(child_entry, None);
}

/// Associates network events of socket `s` with event object `heventobject`, makes the socket
/// non-blocking, clears its record of network events and records at once the events whose
/// condition already holds. `lnetworkevents` 0 cancels the association (the socket stays
/// non-blocking, as on Windows).
///
/// Returns 0, or `SOCKET_ERROR` with the code from `WSAGetLastError`.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`; `WSAEINVAL` for an unknown event handle or an `FD_*` bit
/// that does not exist.
pub unsafe extern "system" fn WSAEventSelect(
    s: SOCKET,
    heventobject: WSAEVENT,
    lnetworkevents: i32,
) -> i32 {
    super::guard(SOCKET_ERROR, || {
        super::finish(with_socket(s, |_, e| {
            let mask = lnetworkevents as u32;
            if mask & !((1 << FD_MAX_EVENTS) - 1) != 0 {
                return Err(WSAEINVAL);
            }
            let ev = if mask != 0 {
                Some(event(heventobject).ok_or(WSAEINVAL)?)
            } else {
                None
            };
            let previous = e.select.lock().ok().and_then(|g| g.map(|p| p.event));
            if let Some(p) = previous.and_then(event) {
                if let Ok(mut st) = p.state.lock() {
                    st.sockets.retain(|x| *x != s);
                }
            }
            e.nonblocking.store(true, Ordering::SeqCst);
            if let Ok(mut g) = e.select.lock() {
                *g = (mask != 0).then_some(EventSelect {
                    event: heventobject,
                    mask: mask & SUPPORTED,
                    recorded: 0,
                    errors: [0; 10],
                    armed: SUPPORTED,
                });
            }
            if let Some(ev) = ev {
                if let Ok(mut st) = ev.state.lock() {
                    if !st.sockets.contains(&s) {
                        st.sockets.push(s);
                    }
                }
                refresh(e, None);
            }
            Ok(0)
        }))
    })
}

/// Reports the network events recorded for socket `s` since the last call (with an error code
/// per `FD_*_BIT`), clears the record, and resets `heventobject` when it is not 0.
///
/// # Safety
/// `lpnetworkevents` must be valid for a `WSANETWORKEVENTS`.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (null `lpnetworkevents`), `WSAEINVAL`
/// (`heventobject` is neither 0 nor an open event).
pub unsafe extern "system" fn WSAEnumNetworkEvents(
    s: SOCKET,
    heventobject: WSAEVENT,
    lpnetworkevents: *mut WSANETWORKEVENTS,
) -> i32 {
    super::guard(SOCKET_ERROR, || {
        super::finish(with_socket(s, |_, e| {
            if lpnetworkevents.is_null() {
                return Err(WSAEFAULT);
            }
            let ev = if heventobject != 0 {
                Some(event(heventobject).ok_or(WSAEINVAL)?)
            } else {
                None
            };
            refresh(e, None);
            let mut out: WSANETWORKEVENTS = std::mem::zeroed();
            if let Ok(mut g) = e.select.lock() {
                if let Some(st) = g.as_mut() {
                    out.lNetworkEvents = st.recorded as i32;
                    out.iErrorCode = st.errors;
                    st.recorded = 0;
                    st.errors = [0; 10];
                }
            }
            if let Some(ev) = ev {
                ev.reset();
            }
            std::ptr::write_unaligned(lpnetworkevents, out);
            Ok(0)
        }))
    })
}
