//! Overlapped I/O on sockets made with `WSA_FLAG_OVERLAPPED` (every `socket()` socket is, as on
//! Windows): `WSASend`, `WSARecv`, `WSASendTo` and `WSARecvFrom` with an `OVERLAPPED`, and
//! `WSAGetOverlappedResult`.
//!
//! An operation that can finish at once does, and returns 0; one that cannot returns
//! `SOCKET_ERROR` with `WSA_IO_PENDING` and completes on the network's runtime. Either way the
//! completion is indicated as Microsoft documents ("WSARecv function", Remarks): the
//! `OVERLAPPED`'s `hEvent` is signalled, or, when a completion routine is given (then `hEvent` is
//! the application's and is left alone), the routine is queued to the issuing thread and runs
//! at its next alertable wait. An operation that fails at once gives its error and no
//! completion. Operations on one socket complete in the order they were issued (receives and
//! sends each in their own order). Closing the socket completes pending operations with
//! `WSA_OPERATION_ABORTED`.
//!
//! The `OVERLAPPED` reports progress as on Windows: `Internal` is `STATUS_PENDING` (0x103)
//! until the operation completes, then 0 on success or an NTSTATUS failure value, and
//! `InternalHigh` is the byte count, so `HasOverlappedIoCompleted` works.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::ThreadId;

use tokio::sync::oneshot;
use windows_sys::core::BOOL;
use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock_stack::StackError;

use super::events::{self, Apc};
use super::{
    code, with_socket, write_sockaddr, LAST_ERROR, LPWSAOVERLAPPED_COMPLETION_ROUTINE, MSG_PARTIAL,
    SOCKADDR, SOCKET, WSABUF, WSAECONNABORTED, WSAECONNRESET, WSAEFAULT, WSAEMSGSIZE, WSAENETDOWN,
    WSAEOPNOTSUPP, WSA_IO_INCOMPLETE, WSA_IO_PENDING, WSA_OPERATION_ABORTED,
};
use crate::winsock::SocketEntry;

/// How many completed results the table keeps (see [`Completion::start`]).
const MAX_KEPT: usize = 4096;

/// `STATUS_PENDING`: `OVERLAPPED.Internal` while an operation is in progress.
const STATUS_PENDING: usize = 0x103;

/// The NTSTATUS stored in `OVERLAPPED.Internal` for a failed operation.
fn status_of(code: i32) -> usize {
    match code {
        0 => 0,
        WSAECONNRESET => 0xC000_020D,         // STATUS_CONNECTION_RESET
        WSAECONNABORTED => 0xC000_0241,       // STATUS_CONNECTION_ABORTED
        WSA_OPERATION_ABORTED => 0xC000_0120, // STATUS_CANCELLED
        WSAEMSGSIZE => 0x8000_0005,           // STATUS_BUFFER_OVERFLOW
        _ => 0xC000_0001,                     // STATUS_UNSUCCESSFUL
    }
}

/// The WSA code of an NTSTATUS wsock stored in `OVERLAPPED.Internal` (see [`status_of`]).
fn code_of_status(st: usize) -> i32 {
    match st {
        0 => 0,
        0xC000_020D => WSAECONNRESET,
        0xC000_0241 => WSAECONNABORTED,
        0xC000_0120 => WSA_OPERATION_ABORTED,
        0x8000_0005 => WSAEMSGSIZE,
        _ => super::WSAEINVAL,
    }
}

#[derive(Debug, Clone, Copy)]
struct Done {
    error: i32,
    bytes: u32,
    flags: u32,
}

/// Results of overlapped operations by `OVERLAPPED` address (`None` while pending), and the
/// condition variable `WSAGetOverlappedResult(fWait = TRUE)` waits on.
type Ops = (Mutex<HashMap<usize, Option<Done>>>, Condvar);

fn ops() -> &'static Ops {
    static O: OnceLock<Ops> = OnceLock::new();
    O.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

/// How one operation's completion is indicated.
#[derive(Clone, Copy)]
struct Completion {
    overlapped: usize,
    event: isize,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: Option<ThreadId>,
}

// SAFETY: the addresses are the application's OVERLAPPED and buffers, which Windows requires
// to stay valid until the operation completes; they are only written through raw pointers.
unsafe impl Send for Completion {}

impl Completion {
    /// Starts an operation: marks the `OVERLAPPED` pending.
    unsafe fn start(ov: *mut OVERLAPPED, routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE) -> Self {
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*ov).Internal), STATUS_PENDING);
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*ov).InternalHigh), 0);
        if let Ok(mut m) = ops().0.lock() {
            // Completed results are kept for WSAGetOverlappedResult; past this many, they are
            // dropped (a later query then reads the OVERLAPPED itself, as Windows does).
            if m.len() >= MAX_KEPT {
                m.retain(|_, d| d.is_none());
            }
            m.insert(ov as usize, None);
        }
        Completion {
            overlapped: ov as usize,
            event: (*ov).hEvent as isize,
            routine,
            thread: routine.map(|_| events::current_apc_thread()),
        }
    }

    /// Completes the operation: fills the `OVERLAPPED`, wakes `WSAGetOverlappedResult`, and
    /// signals the event or queues the completion routine.
    unsafe fn complete(self, error: i32, bytes: u32, flags: u32) {
        let ov = self.overlapped as *mut OVERLAPPED;
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*ov).InternalHigh), bytes as usize);
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*ov).Internal), status_of(error));
        let (m, cv) = ops();
        if let Ok(mut m) = m.lock() {
            m.insert(
                self.overlapped,
                Some(Done {
                    error,
                    bytes,
                    flags,
                }),
            );
        }
        cv.notify_all();
        match (self.routine, self.thread) {
            (Some(routine), Some(thread)) => events::queue_apc(
                thread,
                Apc {
                    routine,
                    error: error as u32,
                    bytes,
                    overlapped: self.overlapped,
                    flags,
                },
            ),
            _ => {
                if let Some(ev) = events::event(self.event) {
                    ev.set();
                }
            }
        }
    }

    /// Drops the bookkeeping of an operation that failed at once (no completion indication).
    unsafe fn forget(self) {
        let ov = self.overlapped as *mut OVERLAPPED;
        if let Ok(mut m) = ops().0.lock() {
            m.remove(&self.overlapped);
        }
        std::ptr::write_volatile(std::ptr::addr_of_mut!((*ov).Internal), 0);
    }
}

/// Indicates the completion of an overlapped call that finished at once (`WSAIoctl`):
/// `OVERLAPPED` filled, event signalled or completion routine queued.
pub(crate) unsafe fn complete_now(
    ov: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    bytes: u32,
) {
    Completion::start(ov, routine).complete(0, bytes, 0);
}

/// The application's buffers of one receive (address, length), kept until completion.
#[derive(Clone)]
struct Scatter(Vec<(usize, usize)>);

// SAFETY: see `Completion`.
unsafe impl Send for Scatter {}

impl Scatter {
    unsafe fn of(bufs: *const WSABUF, count: u32) -> Result<Scatter, i32> {
        if bufs.is_null() || count == 0 {
            return Err(WSAEFAULT);
        }
        let mut v = Vec::with_capacity((count as usize).min(64));
        for i in 0..count as usize {
            let b = std::ptr::read_unaligned(bufs.add(i));
            if b.buf.is_null() && b.len > 0 {
                return Err(WSAEFAULT);
            }
            v.push((b.buf as usize, b.len as usize));
        }
        Ok(Scatter(v))
    }

    fn total(&self) -> usize {
        self.0.iter().map(|b| b.1).sum()
    }

    unsafe fn fill(&self, data: &[u8]) {
        let mut off = 0usize;
        for &(p, len) in &self.0 {
            if off >= data.len() {
                break;
            }
            let k = len.min(data.len() - off);
            std::ptr::copy_nonoverlapping(data[off..].as_ptr(), p as *mut u8, k);
            off += k;
        }
    }
}

/// Where a `WSARecvFrom` writes the source address at completion.
#[derive(Clone, Copy)]
struct FromPtr(usize, usize);

// SAFETY: see `Completion`.
unsafe impl Send for FromPtr {}

fn set_error(c: i32) {
    LAST_ERROR.with(|e| e.set(c));
}

/// Whether the operation before this one (its completion signal) has finished.
/// A finished receiver is dropped (a completed oneshot must not be polled again).
pub(crate) fn finished(prev: &mut Option<oneshot::Receiver<()>>) -> bool {
    let done = match prev {
        None => true,
        Some(rx) => !matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
    };
    if done {
        *prev = None;
    }
    done
}

/// Immediate outcome of an operation: `Some(Ok(..))` done, `Some(Err(code))` failed, `None`
/// would block.
type Now<T> = Option<Result<T, i32>>;

fn now<T>(r: Result<T, StackError>) -> Now<T> {
    match r {
        Ok(v) => Some(Ok(v)),
        Err(StackError::WouldBlock) => None,
        Err(e) => Some(Err(code(e))),
    }
}

/// An overlapped `WSARecv` / `WSARecvFrom`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn recv(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    count: u32,
    lpbytes: *mut u32,
    lpflags: *mut u32,
    from: Option<(*mut SOCKADDR, *mut i32)>,
    ov: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    let r = with_socket(s, |ws, e| {
        let bufs = Scatter::of(lpbuffers, count)?;
        if lpflags.is_null() {
            return Err(WSAEFAULT);
        }
        let flags = std::ptr::read_unaligned(lpflags);
        if flags & !(MSG_PARTIAL) != 0 {
            return Err(WSAEOPNOTSUPP);
        }
        let from = from.filter(|(p, _)| !p.is_null());
        if let Some((_, l)) = from {
            if l.is_null() {
                return Err(WSAEFAULT);
            }
        }
        events::rearm(e, super::FD_READ);
        let rt = ws.runtime.clone().ok_or(WSAENETDOWN)?;
        let done = Completion::start(ov, routine);
        let mut chain = e.chain.lock().map_err(|_| WSAENETDOWN)?;
        // A receive takes at most this much at once (a datagram is at most 64 KiB), so a huge
        // buffer costs no huge temporary.
        let total = bufs.total().min(if e.stream { 1 << 20 } else { 1 << 17 });
        if finished(&mut chain.0) {
            let mut tmp = vec![0u8; total];
            let r = if e.stream {
                now(e.endpoint.try_recv(&mut tmp, false).map(|n| (n, n, None)))
            } else {
                recv_dgram_now(e, &mut tmp)
            };
            if let Some(r) = r {
                return match r {
                    Ok((n, len, src)) => {
                        bufs.fill(&tmp[..n]);
                        let err = finish_recv(n, len, src, from)?;
                        if !lpbytes.is_null() {
                            std::ptr::write_unaligned(lpbytes, n as u32);
                        }
                        std::ptr::write_unaligned(lpflags, 0);
                        done.complete(err, n as u32, 0);
                        if err != 0 {
                            Err(err)
                        } else {
                            Ok(0)
                        }
                    }
                    Err(c) => {
                        done.forget();
                        Err(c)
                    }
                };
            }
        }
        let prev = chain.0.take();
        let (tx, rx) = oneshot::channel::<()>();
        chain.0 = Some(rx);
        drop(chain);
        let entry = e.clone();
        let mut closed = e.closed.subscribe();
        let from = from.map(|(p, l)| FromPtr(p as usize, l as usize));
        rt.spawn(async move {
            let _tx = tx;
            if let Some(p) = prev {
                let _ = p.await;
            }
            let mut tmp = vec![0u8; total];
            let op = recv_async(&entry, &mut tmp);
            let r = tokio::select! {
                r = op => r,
                _ = closed.wait_for(|c| *c) => Err(WSA_OPERATION_ABORTED),
            };
            // SAFETY: the buffers, address and OVERLAPPED stay valid until completion, as
            // Windows requires of the caller.
            unsafe {
                match r {
                    Ok((n, len, src)) => {
                        bufs.fill(&tmp[..n]);
                        let err = finish_recv(
                            n,
                            len,
                            src,
                            from.map(|f| (f.0 as *mut SOCKADDR, f.1 as *mut i32)),
                        )
                        .unwrap_or_else(|c| c);
                        done.complete(err, n as u32, 0);
                    }
                    Err(c) => done.complete(c, 0, 0),
                }
            }
        });
        Err(WSA_IO_PENDING)
    });
    super::finish(r)
}

/// A datagram now, skipping a port-unreachable report when `SIO_UDP_CONNRESET` is off.
fn recv_dgram_now(e: &SocketEntry, buf: &mut [u8]) -> Now<(usize, usize, Option<SocketAddr>)> {
    loop {
        match e.endpoint.try_recv_from(buf, false) {
            Err(StackError::ConnectionReset) if !e.udp_connreset.load(Ordering::SeqCst) => continue,
            r => return now(r.map(|(n, len, src)| (n, len, Some(src)))),
        }
    }
}

async fn recv_async(
    e: &Arc<SocketEntry>,
    buf: &mut [u8],
) -> Result<(usize, usize, Option<SocketAddr>), i32> {
    if e.stream {
        return e
            .endpoint
            .recv(buf)
            .await
            .map(|n| (n, n, None))
            .map_err(code);
    }
    loop {
        match e.endpoint.recv_from(buf).await {
            Err(StackError::ConnectionReset) if !e.udp_connreset.load(Ordering::SeqCst) => {}
            r => return r.map(|(n, len, src)| (n, len, Some(src))).map_err(code),
        }
    }
}

/// Writes the source address and reports `WSAEMSGSIZE` for a truncated datagram.
unsafe fn finish_recv(
    n: usize,
    len: usize,
    src: Option<SocketAddr>,
    from: Option<(*mut SOCKADDR, *mut i32)>,
) -> Result<i32, i32> {
    if let (Some(src), Some((p, l))) = (src, from) {
        write_sockaddr(src, p, l)?;
    }
    Ok(if len > n { WSAEMSGSIZE } else { 0 })
}

/// An overlapped `WSASend` / `WSASendTo` of `data`.
pub(crate) unsafe fn send(
    s: SOCKET,
    data: Vec<u8>,
    to: Option<SocketAddr>,
    lpbytes: *mut u32,
    ov: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    let r = with_socket(s, |ws, e| {
        let rt = ws.runtime.clone().ok_or(WSAENETDOWN)?;
        let done = Completion::start(ov, routine);
        let mut chain = e.chain.lock().map_err(|_| WSAENETDOWN)?;
        let mut sent = 0usize;
        if finished(&mut chain.1) {
            let r: Now<usize> = if e.stream {
                let mut r = None;
                while sent < data.len() {
                    match e.endpoint.try_send(&data[sent..]) {
                        Ok(n) => sent += n,
                        Err(StackError::WouldBlock) => break,
                        Err(x) => {
                            r = Some(Err(code(x)));
                            break;
                        }
                    }
                }
                match r {
                    Some(x) => Some(x),
                    None if sent == data.len() => Some(Ok(sent)),
                    None => None,
                }
            } else {
                now(e.endpoint.try_send_to(&data, to))
            };
            match r {
                Some(Ok(n)) => {
                    if !lpbytes.is_null() {
                        std::ptr::write_unaligned(lpbytes, n as u32);
                    }
                    done.complete(0, n as u32, 0);
                    return Ok(0);
                }
                Some(Err(c)) if sent == 0 => {
                    done.forget();
                    return Err(c);
                }
                _ => {}
            }
        }
        let prev = chain.1.take();
        let (tx, rx) = oneshot::channel::<()>();
        chain.1 = Some(rx);
        drop(chain);
        let entry = e.clone();
        let mut closed = e.closed.subscribe();
        rt.spawn(async move {
            let _tx = tx;
            if let Some(p) = prev {
                let _ = p.await;
            }
            let op = async {
                if entry.stream {
                    let mut sent = sent;
                    while sent < data.len() {
                        match entry.endpoint.send(&data[sent..]).await {
                            Ok(n) => sent += n,
                            Err(x) => return Err((code(x), sent)),
                        }
                    }
                    Ok(sent)
                } else {
                    entry
                        .endpoint
                        .send_to(&data, to)
                        .await
                        .map_err(|x| (code(x), 0))
                }
            };
            let r = tokio::select! {
                r = op => r,
                _ = closed.wait_for(|c| *c) => Err((WSA_OPERATION_ABORTED, 0)),
            };
            // SAFETY: the OVERLAPPED stays valid until completion (the caller's duty).
            unsafe {
                match r {
                    Ok(n) => done.complete(0, n as u32, 0),
                    Err((c, n)) => done.complete(c, n as u32, 0),
                }
            }
        });
        Err(WSA_IO_PENDING)
    });
    super::finish(r)
}

/// Reports the result of an overlapped operation on socket `s`: `TRUE` with the bytes
/// transferred and the flags, or `FALSE` with the operation's error. With `fwait` non-zero the
/// call waits for a pending operation to complete; otherwise a pending one gives `FALSE` and
/// `WSA_IO_INCOMPLETE`.
///
/// # Safety
/// `lpoverlapped`, `lpcbtransfer` and `lpdwflags` must be valid pointers.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (a null pointer), `WSA_IO_INCOMPLETE`, or
/// the operation's own error (`WSAECONNRESET`, `WSA_OPERATION_ABORTED`, `WSAEMSGSIZE`, ...).
pub unsafe extern "system" fn WSAGetOverlappedResult(
    s: SOCKET,
    lpoverlapped: *const OVERLAPPED,
    lpcbtransfer: *mut u32,
    fwait: BOOL,
    lpdwflags: *mut u32,
) -> BOOL {
    super::guard(0, || {
        let r = with_socket(s, |_, _| {
            if lpoverlapped.is_null() || lpcbtransfer.is_null() || lpdwflags.is_null() {
                return Err(WSAEFAULT);
            }
            let key = lpoverlapped as usize;
            let (m, cv) = ops();
            let mut g = m.lock().map_err(|_| WSAENETDOWN)?;
            let done = loop {
                match g.get(&key) {
                    Some(Some(d)) => break *d,
                    Some(None) if fwait != 0 => {
                        g = cv.wait(g).map_err(|_| WSAENETDOWN)?;
                    }
                    Some(None) => return Err(WSA_IO_INCOMPLETE),
                    None => {
                        // Not an operation wsock started: read the OVERLAPPED as Windows would.
                        let st =
                            std::ptr::read_volatile(std::ptr::addr_of!((*lpoverlapped).Internal));
                        if st == STATUS_PENDING {
                            return Err(WSA_IO_INCOMPLETE);
                        }
                        let n = std::ptr::read_volatile(std::ptr::addr_of!(
                            (*lpoverlapped).InternalHigh
                        ));
                        break Done {
                            error: code_of_status(st),
                            bytes: n as u32,
                            flags: 0,
                        };
                    }
                }
            };
            drop(g);
            std::ptr::write_unaligned(lpcbtransfer, done.bytes);
            std::ptr::write_unaligned(lpdwflags, done.flags);
            if done.error != 0 {
                return Err(done.error);
            }
            Ok(())
        });
        match r {
            Ok(()) => 1,
            Err(c) => {
                set_error(c);
                0
            }
        }
    })
}
