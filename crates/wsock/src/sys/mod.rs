//! The raw face: Winsock functions with the names, signatures and types of windows-sys 0.61, so
//! code written against `windows_sys::Win32::Networking::WinSock` ports by swapping the crate
//! name (the same items are reachable as `wsock::sys::Win32::Networking::WinSock::...`).
//!
//! Every type and constant is windows-sys's own (re-exported); the functions are wsock's and
//! call the simulated stack. Calls block the calling thread (honouring `SO_RCVTIMEO` and
//! `SO_SNDTIMEO`) unless the socket is non-blocking (`ioctlsocket(FIONBIO)`); errors are set
//! with `WSASetLastError` on the calling thread, as on Windows. Which host `socket()` creates on
//! is chosen with [`crate::ext`].
//!
//! What is not built yet answers with a clear code rather than pretending: overlapped I/O and the
//! secure-socket IOCTLs return `WSAEOPNOTSUPP` (see `docs/windows-differences.md`).
//!
//! # Safety
//! As on Windows, pointer arguments must be valid for the lengths passed. wsock checks what can
//! be checked (null pointers and short lengths give `WSAEFAULT`), never panics, and never writes
//! past a length it was given.
#![allow(
    non_snake_case,
    non_camel_case_types,
    clippy::missing_safety_doc,
    clippy::too_many_arguments
)]

mod names;
mod reexports;
pub use names::*;
pub use reexports::*;

use std::cell::Cell;
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use windows_sys::core::{PCSTR, PSTR};
use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock_stack::{Family, Readiness, Shutdown, StackError};

use crate::blocking::block_on;
use crate::error::wsa_code_of;
use crate::winsock::{self, SocketEntry, Winsock};

/// The same items under windows-sys's module paths.
pub mod Win32 {
    /// `Win32::Networking`.
    pub mod Networking {
        /// `Win32::Networking::WinSock`: everything of [`crate::sys`].
        pub mod WinSock {
            pub use crate::sys::*;
        }
    }
}

/// windows-sys's `core` types (`PSTR`, `PCSTR`, `GUID`, ...).
pub use windows_sys::core;

thread_local! {
    static LAST_ERROR: Cell<i32> = const { Cell::new(0) };
}

/// The calling thread's last Winsock error.
pub unsafe extern "system" fn WSAGetLastError() -> WSA_ERROR {
    LAST_ERROR.with(|e| e.get())
}

/// Sets the calling thread's last Winsock error.
pub unsafe extern "system" fn WSASetLastError(ierror: i32) {
    LAST_ERROR.with(|e| e.set(ierror));
}

fn fail<T: From<i32>>(code: i32) -> T {
    LAST_ERROR.with(|e| e.set(code));
    T::from(SOCKET_ERROR)
}

fn fail_socket(code: i32) -> SOCKET {
    LAST_ERROR.with(|e| e.set(code));
    INVALID_SOCKET
}

const SOCKADDR_IN_LEN: i32 = std::mem::size_of::<SOCKADDR_IN>() as i32;
const SOCKADDR_IN6_LEN: i32 = std::mem::size_of::<SOCKADDR_IN6>() as i32;
const _: () = assert!(SOCKADDR_IN_LEN == 16 && SOCKADDR_IN6_LEN == 28 && AF_INET6 == 23);

/// Reads a sockaddr; the error is a WSA code.
unsafe fn read_sockaddr(name: *const SOCKADDR, namelen: i32) -> Result<SocketAddr, i32> {
    if name.is_null() || namelen < 2 {
        return Err(WSAEFAULT);
    }
    let family = std::ptr::read_unaligned(name as *const u16);
    match family {
        AF_INET => {
            if namelen < SOCKADDR_IN_LEN {
                return Err(WSAEFAULT);
            }
            let mut b = [0u8; 16];
            std::ptr::copy_nonoverlapping(name as *const u8, b.as_mut_ptr(), 16);
            let port = u16::from_be_bytes([b[2], b[3]]);
            Ok(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
                port,
            ))
        }
        AF_INET6 => {
            if namelen < SOCKADDR_IN6_LEN {
                return Err(WSAEFAULT);
            }
            let mut b = [0u8; 28];
            std::ptr::copy_nonoverlapping(name as *const u8, b.as_mut_ptr(), 28);
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a),
                port,
                flow,
                scope,
            )))
        }
        _ => Err(WSAEAFNOSUPPORT),
    }
}

/// Writes a sockaddr into a caller buffer of `*namelen` bytes and stores the length used.
unsafe fn write_sockaddr(
    addr: SocketAddr,
    name: *mut SOCKADDR,
    namelen: *mut i32,
) -> Result<(), i32> {
    if name.is_null() || namelen.is_null() {
        return Err(WSAEFAULT);
    }
    let cap = std::ptr::read_unaligned(namelen);
    let bytes: Vec<u8> = match addr {
        SocketAddr::V4(v4) => {
            let mut b = vec![0u8; 16];
            b[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            b
        }
        SocketAddr::V6(v6) => {
            let mut b = vec![0u8; 28];
            b[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            b
        }
    };
    if cap < bytes.len() as i32 {
        return Err(WSAEFAULT);
    }
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), name as *mut u8, bytes.len());
    std::ptr::write_unaligned(namelen, bytes.len() as i32);
    Ok(())
}

/// Runs `f` on the entry of handle `s`, reporting lookup failures.
fn with_socket<T>(
    s: SOCKET,
    f: impl FnOnce(&Arc<Winsock>, &Arc<SocketEntry>) -> Result<T, i32>,
) -> Result<T, i32> {
    let (ws, e) = winsock::lookup(s)?;
    f(&ws, &e)
}

fn code(e: StackError) -> i32 {
    tracing::debug!(target: "wsock::api", error = %e, "call failed");
    wsa_code_of(&e)
}

/// Runs a stack operation the Winsock way: a non-blocking socket polls once (pending is
/// `WSAEWOULDBLOCK`); a blocking one waits, up to `timeout` (`WSAETIMEDOUT`).
fn run_blocking<T>(
    entry: &SocketEntry,
    timeout: Option<Duration>,
    mut poll: impl FnMut(&mut std::task::Context<'_>) -> Poll<Result<T, StackError>>,
) -> Result<T, i32> {
    if entry.nonblocking.load(Ordering::Relaxed) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        return match poll(&mut cx) {
            Poll::Ready(r) => r.map_err(code),
            Poll::Pending => Err(WSAEWOULDBLOCK),
        };
    }
    match block_on(poll_fn(|cx| poll(cx)), timeout) {
        Some(r) => r.map_err(code),
        None => Err(WSAETIMEDOUT),
    }
}

fn finish(r: Result<i32, i32>) -> i32 {
    match r {
        Ok(v) => v,
        Err(c) => fail(c),
    }
}

// ---------------------------------------------------------------- start-up

/// Initiates use of Winsock on the network of the calling thread's host.
///
/// Returns 0, or the error code itself (as Windows does; `WSAGetLastError` is not used).
pub unsafe extern "system" fn WSAStartup(wversionrequested: u16, lpwsadata: *mut WSADATA) -> i32 {
    if lpwsadata.is_null() {
        return WSAEFAULT;
    }
    let (major, minor) = (wversionrequested & 0xff, wversionrequested >> 8);
    if major < 1 || (major == 1 && minor < 1) {
        return WSAVERNOTSUPPORTED;
    }
    let (_, ws) = match crate::ext::current() {
        Ok(v) => v,
        Err(msg) => {
            tracing::warn!(target: "wsock::api", %msg, "WSAStartup: no host");
            return WSASYSNOTREADY;
        }
    };
    let mut data: WSADATA = std::mem::zeroed();
    data.wVersion = if major > 2 || (major == 2 && minor >= 2) {
        0x0202
    } else {
        wversionrequested
    };
    data.wHighVersion = 0x0202;
    let desc = b"wsock emulated Winsock 2.2";
    for (i, b) in desc.iter().enumerate() {
        data.szDescription[i] = *b as i8;
    }
    let status = b"Running";
    for (i, b) in status.iter().enumerate() {
        data.szSystemStatus[i] = *b as i8;
    }
    std::ptr::write_unaligned(lpwsadata, data);
    ws.startups.fetch_add(1, Ordering::SeqCst);
    0
}

/// Ends one `WSAStartup`; the last one closes every socket of the network.
pub unsafe extern "system" fn WSACleanup() -> i32 {
    let (host, ws) = match crate::ext::current() {
        Ok(v) => v,
        Err(_) => return fail(WSANOTINITIALISED),
    };
    let prev = ws
        .startups
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n > 0).then(|| n - 1)
        });
    match prev {
        Err(_) => fail(WSANOTINITIALISED),
        Ok(1) => {
            let handles: Vec<usize> = ws.sockets.iter().map(|e| *e.key()).collect();
            for h in handles {
                if let Some(e) = ws.remove(h) {
                    let _ = e.endpoint.close();
                }
            }
            winsock::release_if_idle(&ws);
            // A user-space stack dies with its process: the last cleanup lets graceful closes
            // deliver their queued data and FIN first (bounded).
            host.network()
                .drain(wsock_stack::core::DEFAULT_CLOSE_LINGER);
            0
        }
        Ok(_) => 0,
    }
}

// ---------------------------------------------------------------- sockets

/// Creates a socket on the calling thread's host.
pub unsafe extern "system" fn socket(
    af: i32,
    r#type: WINSOCK_SOCKET_TYPE,
    protocol: i32,
) -> SOCKET {
    create_socket(af, r#type, protocol)
}

/// Creates a socket; protocol info and groups are not supported (must be null / 0).
pub unsafe extern "system" fn WSASocketW(
    af: i32,
    r#type: i32,
    protocol: i32,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    g: u32,
    _dwflags: u32,
) -> SOCKET {
    if !lpprotocolinfo.is_null() || g != 0 {
        return fail_socket(WSAEINVAL);
    }
    create_socket(af, r#type, protocol)
}

fn create_socket(af: i32, ty: i32, protocol: i32) -> SOCKET {
    let (host, ws) = match crate::ext::current() {
        Ok(v) => v,
        Err(_) => return fail_socket(WSANOTINITIALISED),
    };
    if !ws.initialised() {
        return fail_socket(WSANOTINITIALISED);
    }
    let family = match af {
        x if x == i32::from(AF_INET) => Family::V4,
        x if x == i32::from(AF_INET6) => Family::V6,
        _ => return fail_socket(WSAEAFNOSUPPORT),
    };
    let stream = match (ty, protocol) {
        (SOCK_STREAM, 0) | (SOCK_STREAM, IPPROTO_TCP) => true,
        (SOCK_DGRAM, 0) | (SOCK_DGRAM, IPPROTO_UDP) => false,
        (SOCK_STREAM, _) | (SOCK_DGRAM, _) => return fail_socket(WSAEPROTOTYPE),
        _ => return fail_socket(WSAESOCKTNOSUPPORT),
    };
    let ep = if stream {
        host.tcp(family)
    } else {
        host.udp(family)
    };
    let h = ws.insert(ep, stream);
    tracing::debug!(target: "wsock::api", socket = h, host = host.name(), stream, "socket");
    h
}

/// Binds a local address.
pub unsafe extern "system" fn bind(s: SOCKET, name: *const SOCKADDR, namelen: i32) -> i32 {
    finish(with_socket(s, |_, e| {
        let addr = read_sockaddr(name, namelen)?;
        e.endpoint.bind(addr).map_err(code)?;
        Ok(0)
    }))
}

/// Starts listening.
pub unsafe extern "system" fn listen(s: SOCKET, backlog: i32) -> i32 {
    finish(with_socket(s, |_, e| {
        if !e.stream {
            return Err(WSAEOPNOTSUPP);
        }
        // Windows: SOMAXCONN means "a reasonable maximum" (about 200), a plain value is capped
        // there, and SOMAXCONN_HINT(n) (= -n) asks for n within 200..=65535.
        let backlog = if backlog == SOMAXCONN as i32 {
            wsock_stack::core::SOMAXCONN_BACKLOG
        } else if backlog < 0 {
            (backlog.unsigned_abs() as usize).clamp(wsock_stack::core::SOMAXCONN_BACKLOG, 65535)
        } else {
            (backlog.max(1) as usize).min(wsock_stack::core::SOMAXCONN_BACKLOG)
        };
        e.endpoint.listen(backlog).map_err(code)?;
        Ok(0)
    }))
}

/// Accepts a connection.
pub unsafe extern "system" fn accept(s: SOCKET, addr: *mut SOCKADDR, addrlen: *mut i32) -> SOCKET {
    accept_impl(s, addr, addrlen, None, 0)
}

/// Accepts a connection, asking a condition function first (`CF_ACCEPT` or `CF_REJECT`).
pub unsafe extern "system" fn WSAAccept(
    s: SOCKET,
    addr: *mut SOCKADDR,
    addrlen: *mut i32,
    lpfncondition: LPCONDITIONPROC,
    dwcallbackdata: usize,
) -> SOCKET {
    accept_impl(s, addr, addrlen, lpfncondition, dwcallbackdata)
}

unsafe fn accept_impl(
    s: SOCKET,
    addr: *mut SOCKADDR,
    addrlen: *mut i32,
    cond: LPCONDITIONPROC,
    data: usize,
) -> SOCKET {
    let r = with_socket(s, |ws, e| {
        if !e.stream {
            return Err(WSAEOPNOTSUPP);
        }
        // Checked before a connection is taken off the queue, so a fault loses nothing.
        let need = match e.endpoint.family() {
            Family::V4 => SOCKADDR_IN_LEN,
            Family::V6 => SOCKADDR_IN6_LEN,
        };
        if !addr.is_null() && (addrlen.is_null() || std::ptr::read_unaligned(addrlen) < need) {
            return Err(WSAEFAULT);
        }
        let timeout = None;
        let (child, peer) = run_blocking(e, timeout, |cx| e.endpoint.poll_accept(cx))?;
        if let Some(f) = cond {
            let mut sa = [0u8; 28];
            let mut sa_len = sa.len() as i32;
            let _ = write_sockaddr(peer, sa.as_mut_ptr() as *mut SOCKADDR, &mut sa_len);
            let mut caller = WSABUF {
                len: sa_len as u32,
                buf: sa.as_mut_ptr(),
            };
            let mut g = 0u32;
            let verdict = f(
                &mut caller,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut g,
                data,
            );
            if verdict != CF_ACCEPT as i32 {
                let _ = child.set_options(|o| o.linger = Some(Duration::ZERO));
                let _ = child.close();
                return Err(if verdict == CF_DEFER as i32 {
                    WSATRY_AGAIN
                } else {
                    WSAECONNREFUSED
                });
            }
        }
        if !addr.is_null() {
            if let Err(c) = write_sockaddr(peer, addr, addrlen) {
                let _ = child.close();
                return Err(c);
            }
        }
        let opts = e.endpoint.options().map_err(code)?;
        let _ = child.set_options(|o| *o = opts);
        let h = ws.insert(child, true);
        if let (Ok(src), Some(dst)) = (e.timeouts.lock(), ws.sockets.get(&h)) {
            if let Ok(mut d) = dst.timeouts.lock() {
                *d = *src;
            }
        }
        Ok(h)
    });
    match r {
        Ok(h) => h,
        Err(c) => fail_socket(c),
    }
}

/// Connects (TCP) or sets the default peer (UDP).
pub unsafe extern "system" fn connect(s: SOCKET, name: *const SOCKADDR, namelen: i32) -> i32 {
    finish(with_socket(s, |_, e| {
        let addr = read_sockaddr(name, namelen)?;
        if !e.stream {
            let peer = if addr.ip().is_unspecified() {
                None
            } else {
                Some(addr)
            };
            e.endpoint.udp_connect(peer).map_err(code)?;
            return Ok(0);
        }
        e.endpoint.start_connect(addr).map_err(code)?;
        if e.nonblocking.load(Ordering::Relaxed) {
            return Err(WSAEWOULDBLOCK);
        }
        match block_on(poll_fn(|cx| e.endpoint.poll_connected(cx)), None) {
            Some(Ok(())) => Ok(0),
            Some(Err(err)) => Err(code(err)),
            None => Err(WSAETIMEDOUT),
        }
    }))
}

/// Connects; caller/callee data and QOS are not supported (must be null).
pub unsafe extern "system" fn WSAConnect(
    s: SOCKET,
    name: *const SOCKADDR,
    namelen: i32,
    lpcallerdata: *const WSABUF,
    lpcalleedata: *mut WSABUF,
    lpsqos: *const QOS,
    lpgqos: *const QOS,
) -> i32 {
    if !lpcallerdata.is_null() || !lpsqos.is_null() || !lpgqos.is_null() {
        return fail(WSAEOPNOTSUPP);
    }
    if !lpcalleedata.is_null() {
        (*lpcalleedata).len = 0;
    }
    connect(s, name, namelen)
}

unsafe fn send_bytes(
    s: SOCKET,
    data: &[u8],
    flags: i32,
    to: Option<SocketAddr>,
) -> Result<i32, i32> {
    with_socket(s, |_, e| {
        if flags & !(MSG_DONTROUTE) != 0 {
            return Err(WSAEOPNOTSUPP);
        }
        let timeout = e.timeouts.lock().map(|t| t.1).unwrap_or(None);
        if !e.stream {
            let n = run_blocking(e, timeout, |cx| e.endpoint.poll_send_to(cx, data, to))?;
            return Ok(n as i32);
        }
        if e.nonblocking.load(Ordering::Relaxed) {
            return e.endpoint.try_send(data).map(|n| n as i32).map_err(code);
        }
        // A blocking stream send returns once every byte is queued.
        let mut sent = 0usize;
        while sent < data.len() {
            match block_on(
                poll_fn(|cx| e.endpoint.poll_send(cx, &data[sent..])),
                timeout,
            ) {
                Some(Ok(n)) => sent += n,
                Some(Err(err)) => return Err(code(err)),
                None => return Err(WSAETIMEDOUT),
            }
        }
        Ok(sent as i32)
    })
}

/// Sends stream data (or a datagram to the connected peer).
pub unsafe extern "system" fn send(s: SOCKET, buf: PCSTR, len: i32, flags: SEND_RECV_FLAGS) -> i32 {
    if len < 0 || (buf.is_null() && len > 0) {
        return fail(WSAEFAULT);
    }
    let data = if len == 0 {
        &[][..]
    } else {
        std::slice::from_raw_parts(buf, len as usize)
    };
    finish(send_bytes(s, data, flags, None))
}

/// Sends a datagram to `to` (or stream data, ignoring `to`, on a connected stream).
pub unsafe extern "system" fn sendto(
    s: SOCKET,
    buf: PCSTR,
    len: i32,
    flags: i32,
    to: *const SOCKADDR,
    tolen: i32,
) -> i32 {
    if len < 0 || (buf.is_null() && len > 0) {
        return fail(WSAEFAULT);
    }
    let data = if len == 0 {
        &[][..]
    } else {
        std::slice::from_raw_parts(buf, len as usize)
    };
    let dest = if to.is_null() {
        None
    } else {
        match read_sockaddr(to, tolen) {
            Ok(a) => Some(a),
            Err(c) => return fail(c),
        }
    };
    finish(send_bytes(s, data, flags, dest))
}

unsafe fn wsabufs<'a>(bufs: *const WSABUF, count: u32) -> Result<Vec<&'a mut [u8]>, i32> {
    if bufs.is_null() || count == 0 {
        return Err(WSAEFAULT);
    }
    // A huge count with a short array is the caller's error; never pre-allocate for it.
    let mut out = Vec::with_capacity((count as usize).min(64));
    for i in 0..count as usize {
        let b = std::ptr::read_unaligned(bufs.add(i));
        if b.buf.is_null() && b.len > 0 {
            return Err(WSAEFAULT);
        }
        out.push(if b.len == 0 {
            &mut [][..]
        } else {
            std::slice::from_raw_parts_mut(b.buf, b.len as usize)
        });
    }
    Ok(out)
}

/// Sends from several buffers (gather). Overlapped I/O is not built yet: `WSAEOPNOTSUPP`.
pub unsafe extern "system" fn WSASend(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    if !lpoverlapped.is_null() || lpcompletionroutine.is_some() {
        return fail(WSAEOPNOTSUPP);
    }
    let bufs = match wsabufs(lpbuffers, dwbuffercount) {
        Ok(b) => b,
        Err(c) => return fail(c),
    };
    let data: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
    match send_bytes(s, &data, dwflags as i32, None) {
        Ok(n) => {
            if !lpnumberofbytessent.is_null() {
                std::ptr::write_unaligned(lpnumberofbytessent, n as u32);
            }
            0
        }
        Err(c) => fail(c),
    }
}

/// Receives into `buf`: bytes, 0 at end of stream. `MSG_PEEK` and `MSG_WAITALL` are honoured.
unsafe fn recv_bytes(
    s: SOCKET,
    buf: &mut [u8],
    flags: i32,
    from: Option<(*mut SOCKADDR, *mut i32)>,
) -> Result<i32, i32> {
    with_socket(s, |_, e| {
        if flags & !(MSG_PEEK | MSG_WAITALL) != 0 {
            return Err(WSAEOPNOTSUPP);
        }
        // Checked before a datagram is taken off the queue, so a fault loses nothing.
        let need = match e.endpoint.family() {
            Family::V4 => SOCKADDR_IN_LEN,
            Family::V6 => SOCKADDR_IN6_LEN,
        };
        if let Some((p, l)) = from {
            if !p.is_null() && (l.is_null() || std::ptr::read_unaligned(l) < need) {
                return Err(WSAEFAULT);
            }
        }
        let peek = flags & MSG_PEEK != 0;
        let timeout = e.timeouts.lock().map(|t| t.0).unwrap_or(None);
        if !e.stream {
            let (n, len, src) = run_blocking(e, timeout, |cx| {
                if peek {
                    match e.endpoint.try_recv_from(buf, true) {
                        Err(StackError::WouldBlock) => {
                            // Register for a wake-up, then report pending.
                            match e.endpoint.poll_ready(cx, |r| r.readable) {
                                Poll::Ready(Ok(_)) => {
                                    Poll::Ready(e.endpoint.try_recv_from(buf, true))
                                }
                                Poll::Ready(Err(x)) => Poll::Ready(Err(x)),
                                Poll::Pending => Poll::Pending,
                            }
                        }
                        r => Poll::Ready(r),
                    }
                } else {
                    e.endpoint.poll_recv_from(cx, buf)
                }
            })?;
            if let Some((p, l)) = from {
                if !p.is_null() {
                    write_sockaddr(src, p, l)?;
                }
            }
            if len > n {
                return Err(WSAEMSGSIZE);
            }
            return Ok(n as i32);
        }
        if let Some((p, l)) = from {
            if !p.is_null() {
                let peer = e.endpoint.peer_addr().map_err(code)?;
                write_sockaddr(peer, p, l)?;
            }
        }
        let waitall = flags & MSG_WAITALL != 0 && !peek;
        let mut got = 0usize;
        loop {
            let r = if peek {
                run_blocking(e, timeout, |cx| {
                    match e.endpoint.try_recv(&mut buf[got..], true) {
                        Err(StackError::WouldBlock) => {
                            match e.endpoint.poll_ready(cx, |r| r.readable) {
                                Poll::Ready(Ok(_)) => {
                                    Poll::Ready(e.endpoint.try_recv(&mut buf[got..], true))
                                }
                                Poll::Ready(Err(x)) => Poll::Ready(Err(x)),
                                Poll::Pending => Poll::Pending,
                            }
                        }
                        r => Poll::Ready(r),
                    }
                })
            } else {
                let tail = &mut buf[got..];
                run_blocking(e, timeout, |cx| e.endpoint.poll_recv(cx, tail))
            };
            match r {
                Ok(0) => return Ok(got as i32),
                Ok(n) => {
                    got += n;
                    if !waitall || got == buf.len() {
                        return Ok(got as i32);
                    }
                }
                Err(c) if got > 0 && c != WSAEWOULDBLOCK => {
                    let _ = c;
                    return Ok(got as i32);
                }
                Err(c) => return Err(c),
            }
        }
    })
}

/// Receives stream data (0 at end of stream) or one datagram.
pub unsafe extern "system" fn recv(s: SOCKET, buf: PSTR, len: i32, flags: SEND_RECV_FLAGS) -> i32 {
    if len < 0 || (buf.is_null() && len > 0) {
        return fail(WSAEFAULT);
    }
    let data = if len == 0 {
        &mut [][..]
    } else {
        std::slice::from_raw_parts_mut(buf, len as usize)
    };
    finish(recv_bytes(s, data, flags, None))
}

/// Receives one datagram and its source.
pub unsafe extern "system" fn recvfrom(
    s: SOCKET,
    buf: PSTR,
    len: i32,
    flags: i32,
    from: *mut SOCKADDR,
    fromlen: *mut i32,
) -> i32 {
    if len < 0 || (buf.is_null() && len > 0) {
        return fail(WSAEFAULT);
    }
    let data = if len == 0 {
        &mut [][..]
    } else {
        std::slice::from_raw_parts_mut(buf, len as usize)
    };
    finish(recv_bytes(s, data, flags, Some((from, fromlen))))
}

/// Receives into several buffers (scatter). Overlapped I/O is not built yet: `WSAEOPNOTSUPP`.
pub unsafe extern "system" fn WSARecv(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    if !lpoverlapped.is_null() || lpcompletionroutine.is_some() {
        return fail(WSAEOPNOTSUPP);
    }
    if lpflags.is_null() {
        return fail(WSAEFAULT);
    }
    let mut bufs = match wsabufs(lpbuffers, dwbuffercount) {
        Ok(b) => b,
        Err(c) => return fail(c),
    };
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let mut tmp = vec![0u8; total];
    let flags = std::ptr::read_unaligned(lpflags) as i32;
    match recv_bytes(s, &mut tmp, flags, None) {
        Ok(n) => {
            let mut off = 0usize;
            for b in bufs.iter_mut() {
                if off >= n as usize {
                    break;
                }
                let k = b.len().min(n as usize - off);
                b[..k].copy_from_slice(&tmp[off..off + k]);
                off += k;
            }
            if !lpnumberofbytesrecvd.is_null() {
                std::ptr::write_unaligned(lpnumberofbytesrecvd, n as u32);
            }
            std::ptr::write_unaligned(lpflags, 0);
            0
        }
        Err(c) => fail(c),
    }
}

/// Shuts down sending, receiving or both.
pub unsafe extern "system" fn shutdown(s: SOCKET, how: WINSOCK_SHUTDOWN_HOW) -> i32 {
    finish(with_socket(s, |_, e| {
        let how = match how {
            SD_RECEIVE => Shutdown::Receive,
            SD_SEND => Shutdown::Send,
            SD_BOTH => Shutdown::Both,
            _ => return Err(WSAEINVAL),
        };
        e.endpoint.shutdown(how).map_err(code)?;
        Ok(0)
    }))
}

/// Closes a socket; queued data still goes out unless `SO_LINGER` is on with a zero timeout.
pub unsafe extern "system" fn closesocket(s: SOCKET) -> i32 {
    finish(with_socket(s, |ws, e| {
        ws.remove(s);
        let _ = e.endpoint.close();
        winsock::release_if_idle(ws);
        Ok(0)
    }))
}

/// The bound local address.
pub unsafe extern "system" fn getsockname(
    s: SOCKET,
    name: *mut SOCKADDR,
    namelen: *mut i32,
) -> i32 {
    finish(with_socket(s, |_, e| {
        let a = e.endpoint.local_addr().map_err(code)?;
        write_sockaddr(a, name, namelen)?;
        Ok(0)
    }))
}

/// The connected peer's address.
pub unsafe extern "system" fn getpeername(
    s: SOCKET,
    name: *mut SOCKADDR,
    namelen: *mut i32,
) -> i32 {
    finish(with_socket(s, |_, e| {
        let a = e.endpoint.peer_addr().map_err(code)?;
        write_sockaddr(a, name, namelen)?;
        Ok(0)
    }))
}

unsafe fn read_int(optval: PCSTR, optlen: i32) -> Result<i32, i32> {
    if optval.is_null() || optlen < 4 {
        return Err(WSAEFAULT);
    }
    Ok(std::ptr::read_unaligned(optval as *const i32))
}

fn ms(v: i32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}

/// Sets a socket option (`SO_REUSEADDR`, `SO_EXCLUSIVEADDRUSE`, `SO_RCVTIMEO`, `SO_SNDTIMEO`,
/// `SO_LINGER`, `SO_DONTLINGER`, `SO_RCVBUF`, `SO_SNDBUF`, `SO_KEEPALIVE`, `SO_BROADCAST`,
/// `TCP_NODELAY`); others give `WSAENOPROTOOPT`.
pub unsafe extern "system" fn setsockopt(
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: PCSTR,
    optlen: i32,
) -> i32 {
    finish(with_socket(s, |_, e| {
        let ep = &e.endpoint;
        match (level, optname) {
            (SOL_SOCKET, SO_REUSEADDR) => {
                let v = read_int(optval, optlen)? != 0;
                if v && ep.options().map_err(code)?.exclusive_addr {
                    return Err(WSAEINVAL);
                }
                ep.set_options(|o| o.reuse_addr = v).map_err(code)?;
            }
            (SOL_SOCKET, SO_EXCLUSIVEADDRUSE) => {
                let v = read_int(optval, optlen)? != 0;
                if v && ep.options().map_err(code)?.reuse_addr {
                    return Err(WSAEINVAL);
                }
                ep.set_options(|o| o.exclusive_addr = v).map_err(code)?;
            }
            (SOL_SOCKET, SO_RCVTIMEO) => {
                let v = ms(read_int(optval, optlen)?);
                if let Ok(mut t) = e.timeouts.lock() {
                    t.0 = v;
                }
            }
            (SOL_SOCKET, SO_SNDTIMEO) => {
                let v = ms(read_int(optval, optlen)?);
                if let Ok(mut t) = e.timeouts.lock() {
                    t.1 = v;
                }
            }
            (SOL_SOCKET, SO_LINGER) => {
                if optval.is_null() || optlen < std::mem::size_of::<LINGER>() as i32 {
                    return Err(WSAEFAULT);
                }
                let l = std::ptr::read_unaligned(optval as *const LINGER);
                let v = (l.l_onoff != 0).then(|| Duration::from_secs(u64::from(l.l_linger)));
                ep.set_options(|o| o.linger = v).map_err(code)?;
            }
            (SOL_SOCKET, SO_DONTLINGER) => {
                let v = read_int(optval, optlen)? != 0;
                if v {
                    ep.set_options(|o| o.linger = None).map_err(code)?;
                }
            }
            (SOL_SOCKET, SO_RCVBUF) => {
                let v = read_int(optval, optlen)?;
                ep.set_options(|o| o.recv_buffer = v.max(0) as usize)
                    .map_err(code)?;
            }
            (SOL_SOCKET, SO_SNDBUF) => {
                let v = read_int(optval, optlen)?;
                ep.set_options(|o| o.send_buffer = v.max(0) as usize)
                    .map_err(code)?;
            }
            (SOL_SOCKET, SO_KEEPALIVE) | (SOL_SOCKET, SO_BROADCAST) => {
                read_int(optval, optlen)?;
            }
            (IPPROTO_TCP, TCP_NODELAY) => {
                if !e.stream {
                    return Err(WSAENOPROTOOPT);
                }
                let v = read_int(optval, optlen)? != 0;
                ep.set_options(|o| o.nodelay = v).map_err(code)?;
            }
            _ => return Err(WSAENOPROTOOPT),
        }
        Ok(0)
    }))
}

/// Reads a socket option (the ones `setsockopt` takes, plus `SO_TYPE` and `SO_ERROR`).
pub unsafe extern "system" fn getsockopt(
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: PSTR,
    optlen: *mut i32,
) -> i32 {
    finish(with_socket(s, |_, e| {
        if optval.is_null() || optlen.is_null() {
            return Err(WSAEFAULT);
        }
        let cap = std::ptr::read_unaligned(optlen);
        let o = e.endpoint.options().map_err(code)?;
        let (rcv, snd) = e.timeouts.lock().map(|t| *t).unwrap_or((None, None));
        let to_ms = |d: Option<Duration>| {
            d.map(|d| d.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(0)
        };
        if (level, optname) == (SOL_SOCKET, SO_LINGER) {
            if cap < std::mem::size_of::<LINGER>() as i32 {
                return Err(WSAEFAULT);
            }
            let l = LINGER {
                l_onoff: u16::from(o.linger.is_some()),
                l_linger: o.linger.map(|d| d.as_secs().min(65535) as u16).unwrap_or(0),
            };
            std::ptr::write_unaligned(optval as *mut LINGER, l);
            std::ptr::write_unaligned(optlen, std::mem::size_of::<LINGER>() as i32);
            return Ok(0);
        }
        let v: i32 = match (level, optname) {
            (SOL_SOCKET, SO_REUSEADDR) => i32::from(o.reuse_addr),
            (SOL_SOCKET, SO_EXCLUSIVEADDRUSE) => i32::from(o.exclusive_addr),
            (SOL_SOCKET, SO_RCVTIMEO) => to_ms(rcv),
            (SOL_SOCKET, SO_SNDTIMEO) => to_ms(snd),
            (SOL_SOCKET, SO_DONTLINGER) => i32::from(o.linger.is_none()),
            (SOL_SOCKET, SO_RCVBUF) => o.recv_buffer.min(i32::MAX as usize) as i32,
            (SOL_SOCKET, SO_SNDBUF) => o.send_buffer.min(i32::MAX as usize) as i32,
            (SOL_SOCKET, SO_TYPE) => {
                if e.stream {
                    SOCK_STREAM
                } else {
                    SOCK_DGRAM
                }
            }
            (SOL_SOCKET, SO_ERROR) => {
                let p = e.pending_error.swap(0, Ordering::SeqCst);
                if p != 0 {
                    p
                } else {
                    e.endpoint
                        .readiness()
                        .ok()
                        .and_then(|r| r.error)
                        .map(|x| wsa_code_of(&x))
                        .unwrap_or(0)
                }
            }
            (IPPROTO_TCP, TCP_NODELAY) if e.stream => i32::from(o.nodelay),
            _ => return Err(WSAENOPROTOOPT),
        };
        if cap < 4 {
            return Err(WSAEFAULT);
        }
        std::ptr::write_unaligned(optval as *mut i32, v);
        std::ptr::write_unaligned(optlen, 4);
        Ok(0)
    }))
}

fn bytes_available(e: &SocketEntry) -> u32 {
    let mut tmp = vec![0u8; 1 << 16];
    let n = if e.stream {
        e.endpoint.try_recv(&mut tmp, true).unwrap_or(0)
    } else {
        e.endpoint
            .try_recv_from(&mut tmp, true)
            .map(|(_, len, _)| len)
            .unwrap_or(0)
    };
    n as u32
}

/// `FIONBIO` (non-blocking mode) and `FIONREAD` (bytes ready); others give `WSAEINVAL`.
pub unsafe extern "system" fn ioctlsocket(s: SOCKET, cmd: i32, argp: *mut u32) -> i32 {
    finish(with_socket(s, |_, e| {
        if argp.is_null() {
            return Err(WSAEFAULT);
        }
        match cmd {
            FIONBIO => {
                e.nonblocking
                    .store(std::ptr::read_unaligned(argp) != 0, Ordering::Relaxed);
                Ok(0)
            }
            FIONREAD => {
                std::ptr::write_unaligned(argp, bytes_available(e));
                Ok(0)
            }
            _ => Err(WSAEINVAL),
        }
    }))
}

/// Dispatches by control code: `FIONBIO`, `FIONREAD`; the secure-socket IOCTLs
/// (`SIO_SET_SECURITY`, `SIO_SET_PEER_TARGET_NAME`, ...) are not built yet and every other code
/// gives `WSAEOPNOTSUPP`. Overlapped calls are not built yet either.
pub unsafe extern "system" fn WSAIoctl(
    s: SOCKET,
    dwiocontrolcode: u32,
    lpvinbuffer: *const ::core::ffi::c_void,
    cbinbuffer: u32,
    lpvoutbuffer: *mut ::core::ffi::c_void,
    cboutbuffer: u32,
    lpcbbytesreturned: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    finish(with_socket(s, |_, e| {
        if !lpoverlapped.is_null() || lpcompletionroutine.is_some() {
            return Err(WSAEOPNOTSUPP);
        }
        match dwiocontrolcode as i32 {
            FIONBIO => {
                if lpvinbuffer.is_null() || cbinbuffer < 4 {
                    return Err(WSAEFAULT);
                }
                e.nonblocking.store(
                    std::ptr::read_unaligned(lpvinbuffer as *const u32) != 0,
                    Ordering::Relaxed,
                );
                if !lpcbbytesreturned.is_null() {
                    std::ptr::write_unaligned(lpcbbytesreturned, 0);
                }
                Ok(0)
            }
            FIONREAD => {
                if lpvoutbuffer.is_null() || cboutbuffer < 4 || lpcbbytesreturned.is_null() {
                    return Err(WSAEFAULT);
                }
                std::ptr::write_unaligned(lpvoutbuffer as *mut u32, bytes_available(e));
                std::ptr::write_unaligned(lpcbbytesreturned, 4);
                Ok(0)
            }
            _ if SECURE_SOCKET_IOCTLS.contains(&dwiocontrolcode) => {
                tracing::warn!(target: "wsock::api", code = format_args!("{dwiocontrolcode:#x}"), "secure socket IOCTLs are not implemented yet");
                Err(WSAEOPNOTSUPP)
            }
            _ => Err(WSAEOPNOTSUPP),
        }
    }))
}

/// `SIO_SET_SECURITY`, `SIO_SET_PEER_TARGET_NAME`, `SIO_DELETE_PEER_TARGET_NAME`,
/// `SIO_QUERY_SECURITY`, `SIO_QUERY_WFP_CONNECTION_REDIRECT_*`: recognised, not built yet.
const SECURE_SOCKET_IOCTLS: [u32; 4] = [
    SIO_SET_SECURITY,
    SIO_SET_PEER_TARGET_NAME,
    SIO_DELETE_PEER_TARGET_NAME,
    SIO_QUERY_SECURITY,
];

/// Upper bound on `WSAPoll`'s `fds`.
const MAX_POLL_FDS: u32 = 1 << 20;

fn revents(r: &Readiness, events: i16) -> i16 {
    let mut v = 0i16;
    if r.readable {
        v |= events & (POLLRDNORM | POLLRDBAND);
    }
    if r.writable {
        v |= events & POLLWRNORM;
    }
    if r.error.is_some() {
        v |= POLLERR;
    }
    if r.hangup {
        v |= POLLHUP;
    }
    v
}

/// Waits until one of the sockets is ready; `timeout` in ms, negative for no limit.
pub unsafe extern "system" fn WSAPoll(fdarray: *mut WSAPOLLFD, fds: u32, timeout: i32) -> i32 {
    if fdarray.is_null() && fds > 0 {
        return fail(WSAEFAULT);
    }
    // More descriptors than any process can have sockets: refuse rather than allocate.
    if fds > MAX_POLL_FDS {
        return fail(WSAEINVAL);
    }
    let mut items: Vec<WSAPOLLFD> = (0..fds as usize)
        .map(|i| std::ptr::read_unaligned(fdarray.add(i)))
        .collect();
    if items
        .iter()
        .any(|p| p.events & !(POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLPRI) != 0)
    {
        return fail(WSAEINVAL);
    }
    let entries: Vec<Option<Arc<SocketEntry>>> = items
        .iter()
        .map(|p| winsock::lookup(p.fd).ok().map(|(_, e)| e))
        .collect();
    let scan = |items: &mut Vec<WSAPOLLFD>| -> i32 {
        let mut n = 0;
        for (p, e) in items.iter_mut().zip(entries.iter()) {
            p.revents = match e {
                None => POLLNVAL,
                Some(e) => match e.endpoint.readiness() {
                    Ok(r) => revents(&r, p.events),
                    Err(_) => POLLNVAL,
                },
            };
            if p.revents != 0 {
                n += 1;
            }
        }
        n
    };
    let wait = if timeout < 0 {
        None
    } else {
        Some(Duration::from_millis(timeout as u64))
    };
    let mut n = scan(&mut items);
    if n == 0 && wait != Some(Duration::ZERO) {
        let woke = block_on(
            poll_fn(|cx| {
                let mut any = false;
                for (p, e) in items.iter().zip(entries.iter()) {
                    if let Some(e) = e {
                        let ev = p.events;
                        if let Poll::Ready(r) = e.endpoint.poll_ready(cx, |r| revents(r, ev) != 0) {
                            let _ = r;
                            any = true;
                        }
                    }
                }
                if any {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }),
            wait,
        );
        if woke.is_some() {
            n = scan(&mut items);
        }
    }
    for (i, p) in items.iter().enumerate() {
        std::ptr::write_unaligned(fdarray.add(i), *p);
    }
    n
}

unsafe fn fdset_handles(set: *const FD_SET) -> Vec<SOCKET> {
    if set.is_null() {
        return Vec::new();
    }
    let s = std::ptr::read_unaligned(set);
    s.fd_array[..(s.fd_count as usize).min(s.fd_array.len())].to_vec()
}

unsafe fn fdset_store(set: *mut FD_SET, handles: &[SOCKET]) {
    if set.is_null() {
        return;
    }
    let mut s: FD_SET = std::mem::zeroed();
    s.fd_count = handles.len().min(s.fd_array.len()) as u32;
    for (i, h) in handles.iter().take(s.fd_array.len()).enumerate() {
        s.fd_array[i] = *h;
    }
    std::ptr::write_unaligned(set, s);
}

/// BSD `select` over `FD_SET`s; `nfds` is ignored, as on Windows.
pub unsafe extern "system" fn select(
    _nfds: i32,
    readfds: *mut FD_SET,
    writefds: *mut FD_SET,
    exceptfds: *mut FD_SET,
    timeout: *const TIMEVAL,
) -> i32 {
    let (r, w, x) = (
        fdset_handles(readfds),
        fdset_handles(writefds),
        fdset_handles(exceptfds),
    );
    if r.is_empty() && w.is_empty() && x.is_empty() {
        return fail(WSAEINVAL);
    }
    let mut all: Vec<WSAPOLLFD> = Vec::new();
    for (hs, ev) in [(&r, POLLRDNORM), (&w, POLLWRNORM), (&x, 0)] {
        for h in hs {
            if winsock::lookup(*h).is_err() {
                return fail(WSAENOTSOCK);
            }
            all.push(WSAPOLLFD {
                fd: *h,
                events: ev,
                revents: 0,
            });
        }
    }
    let ms = if timeout.is_null() {
        -1
    } else {
        let t = std::ptr::read_unaligned(timeout);
        if t.tv_sec < 0 || t.tv_usec < 0 {
            return fail(WSAEINVAL);
        }
        (t.tv_sec as i64 * 1000 + t.tv_usec as i64 / 1000).min(i32::MAX as i64) as i32
    };
    let n = WSAPoll(all.as_mut_ptr(), all.len() as u32, ms);
    if n < 0 {
        return n;
    }
    let mut rr = Vec::new();
    let mut wr = Vec::new();
    let mut xr = Vec::new();
    let mut count = 0;
    for p in &all {
        if p.events == POLLRDNORM && p.revents & (POLLRDNORM | POLLHUP | POLLERR) != 0 {
            rr.push(p.fd);
            count += 1;
        } else if p.events == POLLWRNORM && p.revents & POLLWRNORM != 0 {
            wr.push(p.fd);
            count += 1;
        } else if p.events == 0 && p.revents & POLLERR != 0 {
            xr.push(p.fd);
            count += 1;
        }
    }
    fdset_store(readfds, &rr);
    fdset_store(writefds, &wr);
    fdset_store(exceptfds, &xr);
    count
}
