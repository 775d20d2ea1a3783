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
//! Event objects, `WSAEventSelect` and overlapped I/O (events and completion routines run at
//! alertable waits, `SleepEx`) are built; I/O completion ports and the Microsoft extension
//! functions (`AcceptEx`, `ConnectEx`, ...) are not: `SIO_GET_EXTENSION_FUNCTION_POINTER`
//! answers `WSAEINVAL`. The six secure-socket functions (`WSASetSocketSecurity`, ...) and the
//! four IOCTLs they wrap share one table of handlers (see the `secure` module).
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

mod events;
mod names;
mod overlapped;
mod reexports;
mod secure;
mod security;
pub use events::{
    SleepEx, WSACloseEvent, WSACreateEvent, WSAEnumNetworkEvents, WSAEventSelect, WSAResetEvent,
    WSASetEvent, WSAWaitForMultipleEvents,
};
pub use names::*;
pub use overlapped::WSAGetOverlappedResult;
pub use reexports::*;
pub(crate) use secure::impersonation_for as secure_impersonation_for;
pub use secure::{
    WSADeleteSocketPeerTargetName, WSAImpersonateSocketPeer, WSAQuerySocketSecurity,
    WSARevertImpersonation, WSASetSocketPeerTargetName, WSASetSocketSecurity,
};
pub use security::{
    AccessCheck, CloseHandle, GetCurrentThread, GetLastError, GetTokenInformation,
    ImpersonateLoggedOnUser, OpenThreadToken, RevertToSelf, SetLastError,
};
pub use security_items::*;

/// The Foundation and Security types and constants the token functions use (windows-sys's
/// own), flat in `sys` as under their module paths.
mod security_items {
    pub use windows_sys::core::BOOL;
    pub use windows_sys::Win32::Foundation::{
        ERROR_ACCESS_DENIED, ERROR_BAD_IMPERSONATION_LEVEL, ERROR_GENERIC_NOT_MAPPED,
        ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER,
        ERROR_INVALID_SECURITY_DESCR, ERROR_NOACCESS, ERROR_NO_IMPERSONATION_TOKEN, ERROR_NO_TOKEN,
        FALSE, GENERIC_ALL, GENERIC_EXECUTE, GENERIC_READ, GENERIC_WRITE, HANDLE,
        INVALID_HANDLE_VALUE, LUID, TRUE, WIN32_ERROR,
    };
    pub use windows_sys::Win32::Security::{
        SecurityAnonymous, SecurityDelegation, SecurityIdentification, SecurityImpersonation,
        TokenGroups, TokenImpersonation, TokenImpersonationLevel, TokenOwner, TokenPrimary,
        TokenPrimaryGroup, TokenStatistics, TokenType, TokenUser, ACL, GENERIC_MAPPING,
        LUID_AND_ATTRIBUTES, PRIVILEGE_SET, PSECURITY_DESCRIPTOR, PSID,
        SECURITY_DESCRIPTOR_CONTROL, SECURITY_DESCRIPTOR_RELATIVE, SECURITY_IMPERSONATION_LEVEL,
        SE_DACL_PRESENT, SE_SELF_RELATIVE, SID, SID_AND_ATTRIBUTES, SID_IDENTIFIER_AUTHORITY,
        TOKEN_ACCESS_MASK, TOKEN_ADJUST_DEFAULT, TOKEN_ADJUST_GROUPS, TOKEN_ADJUST_PRIVILEGES,
        TOKEN_ADJUST_SESSIONID, TOKEN_ALL_ACCESS, TOKEN_ASSIGN_PRIMARY, TOKEN_DUPLICATE,
        TOKEN_EXECUTE, TOKEN_GROUPS, TOKEN_IMPERSONATE, TOKEN_INFORMATION_CLASS, TOKEN_OWNER,
        TOKEN_PRIMARY_GROUP, TOKEN_QUERY, TOKEN_QUERY_SOURCE, TOKEN_READ, TOKEN_STATISTICS,
        TOKEN_TYPE, TOKEN_USER, TOKEN_WRITE,
    };
}

use std::cell::Cell;
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use std::mem::size_of;

use windows_sys::core::{GUID, PCSTR, PSTR};
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
    /// `Win32::System`.
    pub mod System {
        /// `Win32::System::Threading`: `SleepEx`, the alertable wait where completion routines
        /// of overlapped socket I/O run, and the calling thread's token (`GetCurrentThread`,
        /// `OpenThreadToken`).
        pub mod Threading {
            pub use crate::sys::{GetCurrentThread, OpenThreadToken, SleepEx};
        }
    }
    /// `Win32::Foundation`: handles and the last error (shared with `WSAGetLastError`).
    pub mod Foundation {
        pub use crate::sys::{CloseHandle, GetLastError, SetLastError};
        pub use windows_sys::Win32::Foundation::{
            ERROR_ACCESS_DENIED, ERROR_BAD_IMPERSONATION_LEVEL, ERROR_GENERIC_NOT_MAPPED,
            ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER,
            ERROR_INVALID_SECURITY_DESCR, ERROR_NOACCESS, ERROR_NO_IMPERSONATION_TOKEN,
            ERROR_NO_TOKEN, ERROR_SUCCESS, FALSE, GENERIC_ALL, GENERIC_EXECUTE, GENERIC_READ,
            GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, LUID, TRUE, WIN32_ERROR,
        };
    }
    /// `Win32::Security`: token information, access checks and impersonation.
    pub mod Security {
        pub use crate::sys::{
            AccessCheck, GetTokenInformation, ImpersonateLoggedOnUser, RevertToSelf,
        };
        pub use windows_sys::Win32::Security::{
            SecurityAnonymous, SecurityDelegation, SecurityIdentification, SecurityImpersonation,
            TokenGroups, TokenImpersonation, TokenImpersonationLevel, TokenOwner, TokenPrimary,
            TokenPrimaryGroup, TokenStatistics, TokenType, TokenUser, ACL, GENERIC_MAPPING,
            LUID_AND_ATTRIBUTES, PRIVILEGE_SET, PSECURITY_DESCRIPTOR, PSID,
            SECURITY_DESCRIPTOR_CONTROL, SECURITY_DESCRIPTOR_RELATIVE,
            SECURITY_IMPERSONATION_LEVEL, SE_DACL_PRESENT, SE_SELF_RELATIVE, SID,
            SID_AND_ATTRIBUTES, SID_IDENTIFIER_AUTHORITY, TOKEN_ACCESS_MASK, TOKEN_ADJUST_DEFAULT,
            TOKEN_ADJUST_GROUPS, TOKEN_ADJUST_PRIVILEGES, TOKEN_ADJUST_SESSIONID, TOKEN_ALL_ACCESS,
            TOKEN_ASSIGN_PRIMARY, TOKEN_DUPLICATE, TOKEN_EXECUTE, TOKEN_GROUPS, TOKEN_IMPERSONATE,
            TOKEN_INFORMATION_CLASS, TOKEN_OWNER, TOKEN_PRIMARY_GROUP, TOKEN_QUERY,
            TOKEN_QUERY_SOURCE, TOKEN_READ, TOKEN_STATISTICS, TOKEN_TYPE, TOKEN_USER, TOKEN_WRITE,
        };
    }
}

/// windows-sys's `core` types (`PSTR`, `PCSTR`, `GUID`, ...).
pub use windows_sys::core;

thread_local! {
    static LAST_ERROR: Cell<i32> = const { Cell::new(0) };
}

/// The calling thread's last Winsock error.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// None (it reports them).
pub unsafe extern "system" fn WSAGetLastError() -> WSA_ERROR {
    LAST_ERROR.with(|e| e.get())
}

/// Sets the calling thread's last Winsock error.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// None.
pub unsafe extern "system" fn WSASetLastError(ierror: i32) {
    LAST_ERROR.with(|e| e.set(ierror));
}

fn fail<T: From<i32>>(code: i32) -> T {
    LAST_ERROR.with(|e| e.set(code));
    T::from(SOCKET_ERROR)
}

/// Runs `f`, turning a panic (a bug: nothing here should panic) into `fallback` with
/// `WSAEINVAL` as the last error, so no panic crosses an `extern "system"` boundary.
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        LAST_ERROR.with(|e| e.set(WSAEINVAL));
        fallback
    })
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

/// The result of a socket call: on success the thread's last error becomes 0, as on Windows
/// (Wine's ws2_32 tests check `!WSAGetLastError()` after successful calls), on failure `code`.
fn finish(r: Result<i32, i32>) -> i32 {
    match r {
        Ok(v) => {
            LAST_ERROR.with(|e| e.set(0));
            v
        }
        Err(c) => fail(c),
    }
}

// ---------------------------------------------------------------- start-up

/// Initiates use of Winsock on the network of the calling thread's host.
///
/// Returns 0, or the error code itself (as Windows does; `WSAGetLastError` is not used).
///
/// # Safety
/// `lpwsadata` must be valid for a `WSADATA`.
///
/// # Errors
/// Returned, not set: `WSAEFAULT` (null `lpwsadata`), `WSAVERNOTSUPPORTED` (below 1.1),
/// `WSASYSNOTREADY` (no host chosen, see [`crate::ext`]).
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
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `WSANOTINITIALISED` without a matching `WSAStartup`.
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
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `WSANOTINITIALISED`; `WSAESOCKTNOSUPPORT`, `WSAEAFNOSUPPORT`, `WSAEPROTONOSUPPORT`, `WSAEINVAL`
/// for the arguments, checked in Windows' order (type, family, protocol).
pub unsafe extern "system" fn socket(
    af: i32,
    r#type: WINSOCK_SOCKET_TYPE,
    protocol: i32,
) -> SOCKET {
    create_socket(af, r#type, protocol)
}

/// Creates a socket; protocol info and groups are not supported (must be null / 0). Without
/// `WSA_FLAG_OVERLAPPED` in `dwflags` the socket is not overlapped: an `OVERLAPPED` given to its
/// calls is ignored and they run synchronously, as Microsoft documents.
///
/// # Safety
/// `lpprotocolinfo` must be null (it is not read).
///
/// # Errors
/// As [`socket`]; `WSAEINVAL` for protocol info or a group.
pub unsafe extern "system" fn WSASocketW(
    af: i32,
    r#type: i32,
    protocol: i32,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    g: u32,
    dwflags: u32,
) -> SOCKET {
    wsasocket(af, r#type, protocol, lpprotocolinfo.is_null(), g, dwflags)
}

/// The ANSI form of [`WSASocketW`] (same behaviour).
///
/// # Safety
/// `lpprotocolinfo` must be null (it is not read).
///
/// # Errors
/// As [`WSASocketW`].
pub unsafe extern "system" fn WSASocketA(
    af: i32,
    r#type: i32,
    protocol: i32,
    lpprotocolinfo: *const WSAPROTOCOL_INFOA,
    g: u32,
    dwflags: u32,
) -> SOCKET {
    wsasocket(af, r#type, protocol, lpprotocolinfo.is_null(), g, dwflags)
}

fn wsasocket(af: i32, ty: i32, protocol: i32, no_info: bool, g: u32, flags: u32) -> SOCKET {
    if !no_info || g != 0 {
        return fail_socket(WSAEINVAL);
    }
    let s = create_socket(af, ty, protocol);
    if s != INVALID_SOCKET && flags & WSA_FLAG_OVERLAPPED == 0 {
        if let Ok((_, e)) = winsock::lookup(s) {
            e.overlapped.store(false, Ordering::SeqCst);
        }
    }
    s
}

/// Checks `socket`'s arguments in Windows' order (type, then family, then protocol, as Wine's
/// `test_WSASocket` records) and infers what Windows infers: type 0 from the protocol (TCP when
/// 0), family `AF_UNSPEC` from the protocol. Returns (family, stream) or the WSA code.
fn socket_args(af: i32, ty: i32, protocol: i32) -> Result<(Family, bool), i32> {
    if af == i32::from(AF_UNSPEC) && ty == 0 && protocol == 0 {
        return Err(WSAEINVAL);
    }
    let ty = match (ty, protocol) {
        (0, 0) | (0, IPPROTO_TCP) => SOCK_STREAM,
        (0, IPPROTO_UDP) => SOCK_DGRAM,
        (0, _) => return Err(WSAEPROTONOSUPPORT),
        (SOCK_STREAM, _) | (SOCK_DGRAM, _) => ty,
        _ => return Err(WSAESOCKTNOSUPPORT),
    };
    let family = match af {
        x if x == i32::from(AF_INET) => Family::V4,
        x if x == i32::from(AF_INET6) => Family::V6,
        x if x == i32::from(AF_UNSPEC) => {
            if protocol == 0 {
                return Err(WSAEINVAL);
            }
            Family::V4
        }
        _ => return Err(WSAEAFNOSUPPORT),
    };
    match (ty, protocol) {
        (SOCK_STREAM, 0) | (SOCK_STREAM, IPPROTO_TCP) => Ok((family, true)),
        (SOCK_DGRAM, 0) | (SOCK_DGRAM, IPPROTO_UDP) => Ok((family, false)),
        _ => Err(WSAEPROTONOSUPPORT),
    }
}

fn create_socket(af: i32, ty: i32, protocol: i32) -> SOCKET {
    let (host, ws) = match crate::ext::current() {
        Ok(v) => v,
        Err(_) => return fail_socket(WSANOTINITIALISED),
    };
    if !ws.initialised() {
        return fail_socket(WSANOTINITIALISED);
    }
    let (family, stream) = match socket_args(af, ty, protocol) {
        Ok(v) => v,
        Err(c) => return fail_socket(c),
    };
    let ep = if stream {
        host.tcp(family)
    } else {
        host.udp(family)
    };
    let h = ws.insert(ep, stream);
    tracing::debug!(target: "wsock::api", socket = h, host = host.name(), stream, "socket");
    LAST_ERROR.with(|e| e.set(0));
    h
}

/// Binds a local address.
///
/// # Safety
/// `name` must be valid for `namelen` bytes.
///
/// # Errors
/// `WSAEFAULT` (null or short address), `WSAEAFNOSUPPORT`, `WSAEINVAL` (already bound),
/// `WSAEADDRINUSE`, `WSAEACCES` (an exclusive holder, or ALE), `WSAEADDRNOTAVAIL`, `WSAENOTSOCK`,
/// `WSANOTINITIALISED`.
pub unsafe extern "system" fn bind(s: SOCKET, name: *const SOCKADDR, namelen: i32) -> i32 {
    finish(with_socket(s, |_, e| {
        let addr = read_sockaddr(name, namelen)?;
        e.endpoint.bind(addr).map_err(code)?;
        Ok(0)
    }))
}

/// Starts listening.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `WSAEOPNOTSUPP` (UDP), `WSAEINVAL` (unbound), `WSAEACCES` (ALE), `WSAENOTSOCK`,
/// `WSANOTINITIALISED`.
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
        e.listening.store(true, Ordering::SeqCst);
        events::rearm(e, FD_ACCEPT);
        Ok(0)
    }))
}

/// Accepts a connection.
///
/// # Safety
/// `addr`, when not null, must be valid for `*addrlen` bytes.
///
/// # Errors
/// `WSAEFAULT` (an address with a short length; the connection stays queued; with a null length
/// the address is left alone and the connection accepted, as Windows does), `WSAEINVAL`
/// (not listening), `WSAEOPNOTSUPP` (UDP), `WSAEWOULDBLOCK` (non-blocking, none pending),
/// `WSAENOTSOCK`, `WSANOTINITIALISED`.
pub unsafe extern "system" fn accept(s: SOCKET, addr: *mut SOCKADDR, addrlen: *mut i32) -> SOCKET {
    accept_impl(s, addr, addrlen, None, 0)
}

/// Accepts a connection, asking a condition function first (`CF_ACCEPT` or `CF_REJECT`).
///
/// # Safety
/// As [`accept`]; the condition function is called with wsock's own buffers.
///
/// # Errors
/// As [`accept`]; `WSAECONNREFUSED` (`CF_REJECT`), `WSATRY_AGAIN` (`CF_DEFER`).
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
        // An address with a null length is left alone and the connection accepted (Wine
        // `test_accept`, lines 5043-5047); with a short length it is WSAEFAULT.
        let addr = if addrlen.is_null() {
            std::ptr::null_mut()
        } else {
            addr
        };
        if !addr.is_null() && std::ptr::read_unaligned(addrlen) < need {
            return Err(WSAEFAULT);
        }
        let timeout = None;
        let taken = run_blocking(e, timeout, |cx| e.endpoint.poll_accept(cx));
        events::rearm(e, FD_ACCEPT);
        let (child, peer) = taken?;
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
            dst.established.store(true, Ordering::SeqCst);
            events::inherit(e, h, &dst);
        }
        Ok(h)
    });
    match r {
        Ok(h) => {
            LAST_ERROR.with(|e| e.set(0));
            h
        }
        Err(c) => fail_socket(c),
    }
}

/// Connects (TCP) or sets the default peer (UDP).
///
/// # Safety
/// `name` must be valid for `namelen` bytes.
///
/// # Errors
/// `WSAEFAULT`, `WSAEAFNOSUPPORT`, `WSAECONNREFUSED`, `WSAETIMEDOUT`, `WSAEHOSTUNREACH`,
/// `WSAEISCONN`, `WSAEALREADY`, `WSAEINVAL` (listening), `WSAEWOULDBLOCK` (non-blocking: the
/// result comes through `select`, `WSAPoll`, `FD_CONNECT` or `SO_ERROR`), `WSAEACCES` (ALE),
/// `WSAENOTSOCK`, `WSANOTINITIALISED`.
pub unsafe extern "system" fn connect(s: SOCKET, name: *const SOCKADDR, namelen: i32) -> i32 {
    finish(with_socket(s, |_, e| {
        if !e.stream && !name.is_null() && namelen >= 2 {
            // Microsoft, "connect": AF_UNSPEC dissolves a UDP association.
            if std::ptr::read_unaligned(name as *const u16) == AF_UNSPEC {
                e.endpoint.udp_connect(None).map_err(code)?;
                return Ok(0);
            }
        }
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
        if let Ok(mut t) = e.connect_target.lock() {
            *t = Some(addr);
        }
        e.connect_failed.store(false, Ordering::SeqCst);
        e.connecting.store(true, Ordering::SeqCst);
        events::rearm(e, FD_CONNECT);
        if e.nonblocking.load(Ordering::Relaxed) {
            return Err(WSAEWOULDBLOCK);
        }
        match block_on(poll_fn(|cx| e.endpoint.poll_connected(cx)), None) {
            Some(Ok(())) => {
                e.established.store(true, Ordering::SeqCst);
                Ok(0)
            }
            Some(Err(err)) => Err(code(err)),
            None => Err(WSAETIMEDOUT),
        }
    }))
}

/// Connects; caller/callee data and QOS are not supported (must be null).
///
/// # Safety
/// As [`connect`]; `lpcalleedata`, when not null, must be a valid `WSABUF`.
///
/// # Errors
/// As [`connect`]; `WSAEOPNOTSUPP` for caller data or QOS.
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
    with_socket(s, |ws, e| {
        let r = send_entry(e, data, flags, to, ws.runtime.as_ref());
        if r == Err(WSAEWOULDBLOCK) {
            events::rearm(e, FD_WRITE);
        }
        r
    })
}

/// `send` on an entry. `MSG_OOB` (and any flag but `MSG_DONTROUTE`) is refused with
/// `WSAEOPNOTSUPP`: wsock has no urgent data.
fn send_entry(
    e: &Arc<SocketEntry>,
    data: &[u8],
    flags: i32,
    to: Option<SocketAddr>,
    rt: Option<&tokio::runtime::Handle>,
) -> Result<i32, i32> {
    {
        if flags & !(MSG_DONTROUTE) != 0 {
            return Err(WSAEOPNOTSUPP);
        }
        let timeout = e.timeouts.lock().map(|t| t.1).unwrap_or(None);
        if !e.stream {
            // Microsoft, "sendto": ADDR_ANY is not a valid destination; Wine `test_sendto`: nor
            // is port 0 (both WSAEADDRNOTAVAIL).
            if let Some(to) = to {
                if to.port() == 0 || to.ip().is_unspecified() {
                    return Err(WSAEADDRNOTAVAIL);
                }
            }
            let n = run_blocking(e, timeout, |cx| e.endpoint.poll_send_to(cx, data, to))?;
            return Ok(n as i32);
        }
        if e.nonblocking.load(Ordering::Relaxed) {
            return nonblocking_stream_send(e, data, rt);
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
    }
}

/// A non-blocking stream send takes the whole buffer when the socket has any room, as Windows
/// does (its send buffer is a soft limit: Wine `test_send`); what the stack cannot take at once
/// is queued in order behind it on the network's runtime, and sends made before it has gone
/// out are `WSAEWOULDBLOCK` (re-enabling `FD_WRITE`).
fn nonblocking_stream_send(
    e: &Arc<SocketEntry>,
    data: &[u8],
    rt: Option<&tokio::runtime::Handle>,
) -> Result<i32, i32> {
    let mut chain = e.chain.lock().map_err(|_| WSAENETDOWN)?;
    if !overlapped::finished(&mut chain.1) {
        return Err(WSAEWOULDBLOCK);
    }
    let n = e.endpoint.try_send(data).map_err(code)?;
    if n == data.len() || data.is_empty() {
        return Ok(n as i32);
    }
    let Some(rt) = rt else {
        return Ok(n as i32);
    };
    let rest = data[n..].to_vec();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    chain.1 = Some(rx);
    let entry = e.clone();
    let mut closed = e.closed.subscribe();
    rt.spawn(async move {
        let _tx = tx;
        let op = async {
            let mut sent = 0;
            while sent < rest.len() {
                match entry.endpoint.send(&rest[sent..]).await {
                    Ok(k) => sent += k,
                    Err(_) => return,
                }
            }
        };
        tokio::select! {
            _ = op => {}
            _ = closed.wait_for(|c| *c) => {}
        }
    });
    Ok(data.len().min(i32::MAX as usize) as i32)
}

/// Sends stream data (or a datagram to the connected peer).
///
/// # Safety
/// `buf` must be valid for `len` bytes.
///
/// # Errors
/// `WSAEFAULT`, `WSAENOTCONN`, `WSAESHUTDOWN`, `WSAECONNRESET`, `WSAEWOULDBLOCK`, `WSAETIMEDOUT`
/// (`SO_SNDTIMEO`), `WSAEOPNOTSUPP` (flags), `WSAEACCES` (ALE), `WSAENOTSOCK`,
/// `WSANOTINITIALISED`.
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
///
/// # Safety
/// `buf` must be valid for `len` bytes and `to`, when not null, for `tolen` bytes.
///
/// # Errors
/// As [`send`]; `WSAEADDRNOTAVAIL` (port 0 or `ADDR_ANY`), `WSAEMSGSIZE`.
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

/// Whether calls on `s` with this `OVERLAPPED` take the overlapped path (a non-null
/// `OVERLAPPED` on a socket made with `WSA_FLAG_OVERLAPPED`); on other sockets it is ignored.
fn overlapped_call(s: SOCKET, ov: *mut OVERLAPPED) -> bool {
    !ov.is_null()
        && winsock::lookup(s)
            .map(|(_, e)| e.overlapped.load(Ordering::SeqCst))
            .unwrap_or(false)
}

/// Sends from several buffers (gather). With an `OVERLAPPED` on an overlapped socket the send
/// is overlapped (see the `overlapped` module docs: 0 when done at once, else `WSA_IO_PENDING`).
///
/// # Safety
/// `lpbuffers` must point to `dwbuffercount` valid `WSABUF`s; an `OVERLAPPED` must stay valid
/// until the operation completes.
///
/// # Errors
/// As [`send`]; `WSAEFAULT` for null buffers; `WSA_IO_PENDING` for a started overlapped send.
pub unsafe extern "system" fn WSASend(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    guard(SOCKET_ERROR, || {
        wsa_send(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytessent,
            dwflags,
            None,
            lpoverlapped,
            lpcompletionroutine,
        )
    })
}

/// Sends from several buffers to `lpto` (or, with a null `lpto`, to the connected peer);
/// overlapped as [`WSASend`].
///
/// # Safety
/// As [`WSASend`]; `lpto` must be valid for `itolen` bytes.
///
/// # Errors
/// As [`sendto`]; `WSA_IO_PENDING` for a started overlapped send.
pub unsafe extern "system" fn WSASendTo(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    lpto: *const SOCKADDR,
    itolen: i32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    guard(SOCKET_ERROR, || {
        let dest = if lpto.is_null() {
            None
        } else {
            match read_sockaddr(lpto, itolen) {
                Ok(a) => Some(a),
                Err(c) => return fail(c),
            }
        };
        wsa_send(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytessent,
            dwflags,
            dest,
            lpoverlapped,
            lpcompletionroutine,
        )
    })
}

unsafe fn wsa_send(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    to: Option<SocketAddr>,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    if let Err(c) = winsock::lookup(s) {
        return fail(c);
    }
    let bufs = match wsabufs(lpbuffers, dwbuffercount) {
        Ok(b) => b,
        Err(c) => return fail(c),
    };
    let data: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
    if overlapped_call(s, lpoverlapped) {
        if dwflags as i32 & !MSG_DONTROUTE != 0 {
            return fail(WSAEOPNOTSUPP);
        }
        return overlapped::send(
            s,
            data,
            to,
            lpnumberofbytessent,
            lpoverlapped,
            lpcompletionroutine,
        );
    }
    if lpnumberofbytessent.is_null() && lpoverlapped.is_null() {
        return fail(WSAEFAULT);
    }
    match send_bytes(s, &data, dwflags as i32, to) {
        Ok(n) => {
            if !lpnumberofbytessent.is_null() {
                std::ptr::write_unaligned(lpnumberofbytessent, n as u32);
            }
            LAST_ERROR.with(|e| e.set(0));
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
        let r = recv_entry(e, buf, flags, from);
        events::rearm(e, FD_READ);
        r
    })
}

/// `recv` on an entry. Urgent data never arrives in wsock, so `recv(MSG_OOB)` on a connected
/// stream waits for it as Windows would: `WSAEWOULDBLOCK` when non-blocking, else until
/// `SO_RCVTIMEO` (`WSAETIMEDOUT`) or the end of the connection (0, or its error). On a datagram
/// socket `MSG_OOB`, like any flag but `MSG_PEEK` and `MSG_WAITALL`, is `WSAEOPNOTSUPP`.
unsafe fn recv_entry(
    e: &SocketEntry,
    buf: &mut [u8],
    flags: i32,
    from: Option<(*mut SOCKADDR, *mut i32)>,
) -> Result<i32, i32> {
    {
        if e.stream && flags & MSG_OOB != 0 && flags & !(MSG_OOB | MSG_PEEK) == 0 {
            e.endpoint.peer_addr().map_err(|_| WSAENOTCONN)?;
            let timeout = e.timeouts.lock().map(|t| t.0).unwrap_or(None);
            let r = run_blocking(e, timeout, |cx| {
                e.endpoint
                    .poll_ready(cx, |r| r.hangup)
                    .map(|r| r.map(|rd| rd.error))
            })?;
            return match r {
                Some(err) => Err(code(err)),
                None => Ok(0),
            };
        }
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
                    // With SIO_UDP_CONNRESET off, a port-unreachable report is skipped.
                    let mut r = e.endpoint.poll_recv_from(cx, buf);
                    for _ in 0..64 {
                        match r {
                            Poll::Ready(Err(StackError::ConnectionReset))
                                if !e.udp_connreset.load(Ordering::SeqCst) =>
                            {
                                r = e.endpoint.poll_recv_from(cx, buf);
                            }
                            _ => break,
                        }
                    }
                    r
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
    }
}

/// Receives stream data (0 at end of stream) or one datagram.
///
/// # Safety
/// `buf` must be valid for `len` bytes.
///
/// # Errors
/// `WSAEFAULT`, `WSAENOTCONN`, `WSAECONNRESET`, `WSAECONNABORTED`, `WSAEWOULDBLOCK`,
/// `WSAETIMEDOUT` (`SO_RCVTIMEO`), `WSAEMSGSIZE` (a truncated datagram), `WSAEOPNOTSUPP` (flags),
/// `WSAENOTSOCK`, `WSANOTINITIALISED`.
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
///
/// # Safety
/// `buf` must be valid for `len` bytes and `from`, when not null, for `*fromlen` bytes.
///
/// # Errors
/// As [`recv`]; `WSAEFAULT` for a short address buffer (the datagram stays queued).
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

/// Receives into several buffers (scatter). With an `OVERLAPPED` on an overlapped socket the
/// receive is overlapped (0 when data was there at once, else `WSA_IO_PENDING`).
///
/// # Safety
/// `lpbuffers` must point to `dwbuffercount` valid `WSABUF`s whose buffers (and the
/// `OVERLAPPED`) stay valid until an overlapped receive completes.
///
/// # Errors
/// As [`recv`]; `WSAEFAULT` for null buffers or flags; `WSA_IO_PENDING`.
pub unsafe extern "system" fn WSARecv(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    guard(SOCKET_ERROR, || {
        wsa_recv(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytesrecvd,
            lpflags,
            None,
            lpoverlapped,
            lpcompletionroutine,
        )
    })
}

/// Receives one datagram (or stream data) into several buffers, with its source; overlapped as
/// [`WSARecv`]. `lpfrom` and `lpfromlen` must stay valid until an overlapped receive completes.
///
/// # Safety
/// As [`WSARecv`]; `lpfrom` must be valid for `*lpfromlen` bytes.
///
/// # Errors
/// As [`recvfrom`]; `WSA_IO_PENDING`.
pub unsafe extern "system" fn WSARecvFrom(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpfrom: *mut SOCKADDR,
    lpfromlen: *mut i32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    guard(SOCKET_ERROR, || {
        wsa_recv(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytesrecvd,
            lpflags,
            Some((lpfrom, lpfromlen)),
            lpoverlapped,
            lpcompletionroutine,
        )
    })
}

unsafe fn wsa_recv(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    from: Option<(*mut SOCKADDR, *mut i32)>,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    if let Err(c) = winsock::lookup(s) {
        return fail(c);
    }
    if overlapped_call(s, lpoverlapped) {
        return overlapped::recv(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytesrecvd,
            lpflags,
            from,
            lpoverlapped,
            lpcompletionroutine,
        );
    }
    if lpflags.is_null() || (lpnumberofbytesrecvd.is_null() && lpoverlapped.is_null()) {
        return fail(WSAEFAULT);
    }
    let mut bufs = match wsabufs(lpbuffers, dwbuffercount) {
        Ok(b) => b,
        Err(c) => return fail(c),
    };
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let flags = std::ptr::read_unaligned(lpflags) as i32;
    // Without MSG_WAITALL data comes in pieces of at most this much, so a huge buffer costs no
    // huge temporary.
    let cap = if flags & MSG_WAITALL != 0 {
        total
    } else {
        total.min(1 << 20)
    };
    let mut tmp = vec![0u8; cap];
    match recv_bytes(s, &mut tmp, flags, from) {
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
            LAST_ERROR.with(|e| e.set(0));
            0
        }
        Err(c) => fail(c),
    }
}

/// Shuts down sending, receiving or both.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `WSAEINVAL` (unknown `how`), `WSAENOTCONN`, `WSAENOTSOCK`, `WSANOTINITIALISED`.
pub unsafe extern "system" fn shutdown(s: SOCKET, how: WINSOCK_SHUTDOWN_HOW) -> i32 {
    finish(with_socket(s, |_, e| {
        let how = match how {
            SD_RECEIVE => Shutdown::Receive,
            SD_SEND => Shutdown::Send,
            SD_BOTH => Shutdown::Both,
            _ => return Err(WSAEINVAL),
        };
        e.endpoint.shutdown(how).map_err(code)?;
        if matches!(how, Shutdown::Send | Shutdown::Both) {
            e.send_shutdown.store(true, Ordering::SeqCst);
        }
        Ok(0)
    }))
}

/// Shuts down sending (`shutdown(SD_SEND)`); disconnect data is not supported.
///
/// # Safety
/// `lpoutbounddisconnectdata` must be null (it is not read).
///
/// # Errors
/// As [`shutdown`]; `WSAENOPROTOOPT` when disconnect data is given (Microsoft: "the disconnect
/// data is not supported by the service provider").
pub unsafe extern "system" fn WSASendDisconnect(
    s: SOCKET,
    lpoutbounddisconnectdata: *const WSABUF,
) -> i32 {
    if let Err(c) = winsock::lookup(s) {
        return fail(c);
    }
    if !lpoutbounddisconnectdata.is_null() {
        return fail(WSAENOPROTOOPT);
    }
    shutdown(s, SD_SEND)
}

/// Shuts down receiving (`shutdown(SD_RECEIVE)`); disconnect data is not supported.
///
/// # Safety
/// `lpinbounddisconnectdata` must be null (it is not written).
///
/// # Errors
/// As [`shutdown`]; `WSAENOPROTOOPT` when a disconnect data buffer is given.
pub unsafe extern "system" fn WSARecvDisconnect(
    s: SOCKET,
    lpinbounddisconnectdata: *const WSABUF,
) -> i32 {
    if let Err(c) = winsock::lookup(s) {
        return fail(c);
    }
    if !lpinbounddisconnectdata.is_null() {
        return fail(WSAENOPROTOOPT);
    }
    shutdown(s, SD_RECEIVE)
}

/// Closes a socket; queued data still goes out unless `SO_LINGER` is on with a zero timeout.
/// Pending overlapped operations complete with `WSA_OPERATION_ABORTED`.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// `WSAENOTSOCK`, `WSANOTINITIALISED`.
pub unsafe extern "system" fn closesocket(s: SOCKET) -> i32 {
    finish(with_socket(s, |ws, e| {
        ws.remove(s);
        e.closed.send_replace(true);
        let wakers = e
            .close_wakers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for (_, w) in wakers {
            w.wake();
        }
        let _ = e.endpoint.close();
        winsock::release_if_idle(ws);
        Ok(0)
    }))
}

/// The bound local address.
///
/// # Safety
/// `name` must be valid for `*namelen` bytes.
///
/// # Errors
/// `WSAEFAULT` (null or short), `WSAEINVAL` (unbound), `WSAENOTSOCK`, `WSANOTINITIALISED`.
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
///
/// # Safety
/// `name` must be valid for `*namelen` bytes.
///
/// # Errors
/// `WSAEFAULT` (null or short), `WSAENOTCONN` (not connected, or a connect that failed),
/// `WSAENOTSOCK`, `WSANOTINITIALISED`. While a `connect` is in progress it succeeds with the
/// address being connected to, as Windows does (Wine `test_connecting_socket`, lines
/// 12723-12725).
pub unsafe extern "system" fn getpeername(
    s: SOCKET,
    name: *mut SOCKADDR,
    namelen: *mut i32,
) -> i32 {
    finish(with_socket(s, |_, e| {
        let status =
            (e.stream && e.connecting.load(Ordering::SeqCst)).then(|| e.endpoint.connect_status());
        let a = match status {
            // In progress: the address being connected to.
            Some(Ok(false)) => e
                .connect_target
                .lock()
                .ok()
                .and_then(|t| *t)
                .ok_or(WSAENOTCONN)?,
            // The connect failed.
            Some(Err(_)) => return Err(WSAENOTCONN),
            _ => e.endpoint.peer_addr().map_err(code)?,
        };
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

/// `SO_KEEPALIVE` or `TCP_NODELAY` as Windows reads it: one byte is enough, only the low byte
/// counts, and optlen 0 is `WSAEFAULT` (Wine `test_set_getsockopt`, the `accepts_short_len` rows
/// without `bool_value`).
unsafe fn read_bool(optval: PCSTR, optlen: i32) -> Result<bool, i32> {
    if optval.is_null() || optlen < 1 {
        return Err(WSAEFAULT);
    }
    Ok(std::ptr::read_unaligned(optval) != 0)
}

/// A SOL_SOCKET BOOL option (`SO_REUSEADDR`, `SO_EXCLUSIVEADDRUSE`, `SO_DONTLINGER`,
/// `SO_BROADCAST`: Wine `test_set_getsockopt`'s `bool_value` rows) as Windows reads it: four
/// bytes or more are a DWORD, TRUE when nonzero (0x100 is TRUE); one to three bytes, the low
/// byte; optlen 0 with a valid pointer is accepted (`None`: nothing to read, the option stays).
unsafe fn read_sol_bool(optval: PCSTR, optlen: i32) -> Result<Option<bool>, i32> {
    if optval.is_null() || optlen < 0 {
        return Err(WSAEFAULT);
    }
    Ok(match optlen {
        0 => None,
        1..=3 => Some(std::ptr::read_unaligned(optval) != 0),
        _ => Some(std::ptr::read_unaligned(optval as *const u32) != 0),
    })
}

fn ms(v: i32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}

/// Option levels Windows knows; another level is `WSAEINVAL` (Microsoft, "setsockopt": "level
/// is not valid"), a known level with an unknown option `WSAENOPROTOOPT`.
fn known_level(level: i32) -> bool {
    level == SOL_SOCKET
        || level == IPPROTO_TCP
        || level == IPPROTO_UDP
        || level == IPPROTO_IP
        || level == IPPROTO_IPV6
}

/// Sets a socket option (`SO_REUSEADDR`, `SO_EXCLUSIVEADDRUSE`, `SO_RCVTIMEO`, `SO_SNDTIMEO`,
/// `SO_LINGER`, `SO_DONTLINGER`, `SO_RCVBUF`, `SO_SNDBUF`, `SO_KEEPALIVE`, `SO_BROADCAST`,
/// `TCP_NODELAY`). Boolean options take one byte; `SO_KEEPALIVE` and `TCP_NODELAY` read its low
/// byte, the SOL_SOCKET BOOLs a whole DWORD when given four bytes and accept optlen 0 (see
/// `read_sol_bool`); integer options need four bytes. `SO_KEEPALIVE` is stored and reported, but wsock sends no keep-alive probes.
///
/// # Safety
/// `optval` must be valid for `optlen` bytes.
///
/// # Errors
/// `WSAEFAULT` (null or short `optval`), `WSAEINVAL` (unknown level, or both reuse options),
/// `WSAENOPROTOOPT` (unknown option, `SO_LINGER`/`SO_DONTLINGER`/`TCP_NODELAY` on UDP),
/// `WSAENOTSOCK`, `WSANOTINITIALISED`.
pub unsafe extern "system" fn setsockopt(
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: PCSTR,
    optlen: i32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        finish(with_socket(s, |_, e| {
            let ep = &e.endpoint;
            if !known_level(level) {
                return Err(WSAEINVAL);
            }
            match (level, optname) {
                (SOL_SOCKET, SO_REUSEADDR) => {
                    if let Some(v) = read_sol_bool(optval, optlen)? {
                        if v && ep.options().map_err(code)?.exclusive_addr {
                            return Err(WSAEINVAL);
                        }
                        ep.set_options(|o| o.reuse_addr = v).map_err(code)?;
                    }
                }
                (SOL_SOCKET, SO_EXCLUSIVEADDRUSE) => {
                    if let Some(v) = read_sol_bool(optval, optlen)? {
                        if v && ep.options().map_err(code)?.reuse_addr {
                            return Err(WSAEINVAL);
                        }
                        ep.set_options(|o| o.exclusive_addr = v).map_err(code)?;
                    }
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
                    if !e.stream {
                        return Err(WSAENOPROTOOPT);
                    }
                    if optval.is_null() || optlen < size_of::<LINGER>() as i32 {
                        return Err(WSAEFAULT);
                    }
                    let l = std::ptr::read_unaligned(optval as *const LINGER);
                    let v = (l.l_onoff != 0).then(|| Duration::from_secs(u64::from(l.l_linger)));
                    ep.set_options(|o| o.linger = v).map_err(code)?;
                }
                (SOL_SOCKET, SO_DONTLINGER) => {
                    if !e.stream {
                        return Err(WSAENOPROTOOPT);
                    }
                    if read_sol_bool(optval, optlen)? == Some(true) {
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
                (SOL_SOCKET, SO_KEEPALIVE) => {
                    let v = read_bool(optval, optlen)?;
                    if let Ok(mut k) = e.keepalive.lock() {
                        k.0 = v;
                    }
                }
                (SOL_SOCKET, SO_BROADCAST) => {
                    read_sol_bool(optval, optlen)?;
                }
                (IPPROTO_TCP, TCP_NODELAY) => {
                    if !e.stream {
                        return Err(WSAENOPROTOOPT);
                    }
                    let v = read_bool(optval, optlen)?;
                    ep.set_options(|o| o.nodelay = v).map_err(code)?;
                }
                _ => return Err(WSAENOPROTOOPT),
            }
            Ok(0)
        }))
    })
}

/// How `getsockopt` writes an option into a short buffer (Wine `test_set_getsockopt`, the
/// `sizes` column: what Windows reports for buffers of 1, 2 and 4 bytes). Integer options need
/// four bytes (`WSAEFAULT` below; see docs/windows-differences.md).
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptSize {
    /// A BOOL: 1 byte below 4, else 4 (`{1, 1, 4}`).
    Bool,
    /// One byte always (`SO_KEEPALIVE`, `TCP_NODELAY`: `{1, 1, 1}`).
    Byte,
    /// Four bytes needed (`WSAEFAULT` below).
    Strict,
}

/// Reads a socket option: the ones `setsockopt` takes, plus `SO_TYPE`, `SO_ERROR` and
/// `SO_ACCEPTCONN`, written and sized as Windows does (see [`setsockopt`]).
///
/// # Safety
/// `optval` must be valid for `*optlen` bytes.
///
/// # Errors
/// `WSAEFAULT` (null pointers, a zero or short length), `WSAEINVAL` (unknown level),
/// `WSAENOPROTOOPT` (unknown option, `SO_LINGER` on UDP), `WSAENOTSOCK`, `WSANOTINITIALISED`.
pub unsafe extern "system" fn getsockopt(
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: PSTR,
    optlen: *mut i32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        finish(with_socket(s, |_, e| {
            if optval.is_null() || optlen.is_null() {
                return Err(WSAEFAULT);
            }
            if !known_level(level) {
                return Err(WSAEINVAL);
            }
            let cap = std::ptr::read_unaligned(optlen);
            let o = e.endpoint.options().map_err(code)?;
            let (rcv, snd) = e.timeouts.lock().map(|t| *t).unwrap_or((None, None));
            let to_ms = |d: Option<Duration>| {
                d.map(|d| d.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(0)
            };
            if (level, optname) == (SOL_SOCKET, SO_LINGER) {
                if !e.stream {
                    return Err(WSAENOPROTOOPT);
                }
                if cap < size_of::<LINGER>() as i32 {
                    return Err(WSAEFAULT);
                }
                let l = LINGER {
                    l_onoff: u16::from(o.linger.is_some()),
                    l_linger: o.linger.map(|d| d.as_secs().min(65535) as u16).unwrap_or(0),
                };
                std::ptr::write_unaligned(optval as *mut LINGER, l);
                std::ptr::write_unaligned(optlen, size_of::<LINGER>() as i32);
                return Ok(0);
            }
            use OptSize::*;
            let (v, size): (i32, OptSize) = match (level, optname) {
                (SOL_SOCKET, SO_REUSEADDR) => (i32::from(o.reuse_addr), Bool),
                (SOL_SOCKET, SO_EXCLUSIVEADDRUSE) => (i32::from(o.exclusive_addr), Bool),
                (SOL_SOCKET, SO_RCVTIMEO) => (to_ms(rcv), Strict),
                (SOL_SOCKET, SO_SNDTIMEO) => (to_ms(snd), Strict),
                (SOL_SOCKET, SO_DONTLINGER) if e.stream => (i32::from(o.linger.is_none()), Bool),
                (SOL_SOCKET, SO_DONTLINGER) => return Err(WSAENOPROTOOPT),
                (SOL_SOCKET, SO_KEEPALIVE) => (
                    i32::from(e.keepalive.lock().map(|k| k.0).unwrap_or(false)),
                    Byte,
                ),
                (SOL_SOCKET, SO_RCVBUF) => (o.recv_buffer.min(i32::MAX as usize) as i32, Strict),
                (SOL_SOCKET, SO_SNDBUF) => (o.send_buffer.min(i32::MAX as usize) as i32, Strict),
                (SOL_SOCKET, SO_ACCEPTCONN) => {
                    (i32::from(e.listening.load(Ordering::SeqCst)), Bool)
                }
                (SOL_SOCKET, SO_TYPE) => (if e.stream { SOCK_STREAM } else { SOCK_DGRAM }, Strict),
                (SOL_SOCKET, SO_ERROR) => {
                    if cap < 4 {
                        return Err(WSAEFAULT);
                    }
                    // Reading it does not clear it (Wine `test_select`, lines 4592-4600).
                    let p = e.pending_error.load(Ordering::SeqCst);
                    let v = if p != 0 {
                        p
                    } else {
                        e.endpoint
                            .readiness()
                            .ok()
                            .and_then(|r| r.error)
                            .map(|x| wsa_code_of(&x))
                            .unwrap_or(0)
                    };
                    (v, Strict)
                }
                (IPPROTO_TCP, TCP_NODELAY) if e.stream => (i32::from(o.nodelay), Byte),
                _ => return Err(WSAENOPROTOOPT),
            };
            let n: i32 = match size {
                Strict if cap < 4 => return Err(WSAEFAULT),
                _ if cap < 1 => return Err(WSAEFAULT),
                Byte => 1,
                Bool if cap < 4 => 1,
                _ => 4,
            };
            let bytes = v.to_ne_bytes();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), optval, n as usize);
            std::ptr::write_unaligned(optlen, n);
            Ok(0)
        }))
    })
}

/// `FIONBIO`: a socket with a `WSAEventSelect` association cannot be made blocking
/// (`WSAEINVAL`, Microsoft "ioctlsocket function", Remarks).
fn set_nonblocking(e: &SocketEntry, on: bool) -> Result<(), i32> {
    let selected = e
        .select
        .lock()
        .map(|g| g.map(|s| s.mask != 0).unwrap_or(false))
        .unwrap_or(false);
    if !on && selected {
        return Err(WSAEINVAL);
    }
    e.nonblocking.store(on, Ordering::Relaxed);
    Ok(())
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

/// `FIONBIO` (non-blocking mode), `FIONREAD` (bytes ready) and `SIOCATMARK` (always TRUE: wsock
/// has no urgent data, so all data is "at the mark"); others give `WSAEINVAL`.
///
/// # Safety
/// `argp` must be valid for a `u32`.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (null `argp`), `WSAEINVAL`.
pub unsafe extern "system" fn ioctlsocket(s: SOCKET, cmd: i32, argp: *mut u32) -> i32 {
    finish(with_socket(s, |_, e| {
        if argp.is_null() {
            return Err(WSAEFAULT);
        }
        match cmd {
            FIONBIO => {
                set_nonblocking(e, std::ptr::read_unaligned(argp) != 0)?;
                Ok(0)
            }
            FIONREAD => {
                std::ptr::write_unaligned(argp, bytes_available(e));
                Ok(0)
            }
            SIOCATMARK => {
                std::ptr::write_unaligned(argp, 1);
                Ok(0)
            }
            _ => Err(WSAEINVAL),
        }
    }))
}

/// Dispatches by control code: `FIONBIO`, `FIONREAD`, `SIOCATMARK` (TRUE), `SIO_KEEPALIVE_VALS`
/// (stored, like `SO_KEEPALIVE`: wsock sends no keep-alive probes), `SIO_UDP_CONNRESET` (UDP
/// only), `SIO_GET_EXTENSION_FUNCTION_POINTER` (no extension functions: `WSAEINVAL`, as Windows
/// answers for a GUID its provider does not have), and the secure-socket IOCTLs
/// (`SIO_SET_SECURITY`, `SIO_SET_PEER_TARGET_NAME`, `SIO_DELETE_PEER_TARGET_NAME`,
/// `SIO_QUERY_SECURITY`) through the same handlers as their wrappers ([`WSASetSocketSecurity`]
/// and the others, which document each code's buffers and errors). Every other code gives
/// `WSAEOPNOTSUPP`. Every failure stores 0 in `*lpcbbytesreturned` (Wine's
/// `test_unsupported_ioctls` records that Windows does), except `SIO_QUERY_SECURITY`'s size
/// probe, which stores the size it needs. A code
/// with `IOC_VOID` and a direction bit is malformed: `WSAEINVAL`. With an `OVERLAPPED` on an
/// overlapped socket the call still finishes at once (0) and its completion is indicated (the
/// event is signalled or the completion routine queued), as the SSCLI palsuite's
/// `wsaioctl/test6` expects of `FIONREAD`.
///
/// # Safety
/// The buffers must be valid for the lengths given.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (short buffers, or a null
/// `lpcbbytesreturned`), `WSAEINVAL`, `WSAEOPNOTSUPP`.
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
    guard(SOCKET_ERROR, || {
        // On an overlapped socket an OVERLAPPED makes the call overlapped: these control codes
        // all finish at once, so it returns 0 and the completion is indicated (event or
        // routine); lpcbBytesReturned may then be null. On other sockets it is ignored.
        let overlapped = overlapped_call(s, lpoverlapped);
        let mut local = 0u32;
        let lpcbbytesreturned = if lpcbbytesreturned.is_null() && overlapped {
            &mut local as *mut u32
        } else {
            lpcbbytesreturned
        };
        let mut returned_on_error = 0u32;
        let r = with_socket(s, |ws, e| {
            // A code with IOC_VOID and a direction bit is malformed: WSAEINVAL (SSCLI palsuite
            // networking/wsaioctl/test4 passes 0xFFFFFFFF); a well-formed unknown code is
            // WSAEOPNOTSUPP.
            if dwiocontrolcode & IOC_VOID != 0 && dwiocontrolcode & (IOC_IN | IOC_OUT) != 0 {
                return Err(WSAEINVAL);
            }
            if lpcbbytesreturned.is_null() {
                return Err(WSAEFAULT);
            }
            std::ptr::write_unaligned(lpcbbytesreturned, 0);
            if let Some(handler) = secure::handler(dwiocontrolcode) {
                let args = secure::Args {
                    input: lpvinbuffer.cast(),
                    in_len: cbinbuffer,
                    output: lpvoutbuffer.cast(),
                    out_len: cboutbuffer,
                };
                let mut returned = 0u32;
                let r = handler(ws, e, &args, &mut returned);
                std::ptr::write_unaligned(lpcbbytesreturned, returned);
                returned_on_error = returned;
                return r.map(|()| 0);
            }
            let in_u32 = || -> Result<u32, i32> {
                if lpvinbuffer.is_null() || cbinbuffer < 4 {
                    return Err(WSAEFAULT);
                }
                Ok(std::ptr::read_unaligned(lpvinbuffer as *const u32))
            };
            match dwiocontrolcode {
                SIO_KEEPALIVE_VALS => {
                    if lpvinbuffer.is_null() || (cbinbuffer as usize) < size_of::<tcp_keepalive>() {
                        return Err(WSAEFAULT);
                    }
                    let k = std::ptr::read_unaligned(lpvinbuffer as *const tcp_keepalive);
                    if let Ok(mut g) = e.keepalive.lock() {
                        *g = (k.onoff != 0, k.keepalivetime, k.keepaliveinterval);
                    }
                    return Ok(0);
                }
                SIO_UDP_CONNRESET => {
                    if e.stream {
                        return Err(WSAEINVAL);
                    }
                    let v = in_u32()? != 0;
                    e.endpoint
                        .set_options(|o| o.udp_connreset = v)
                        .map_err(code)?;
                    e.udp_connreset.store(v, Ordering::SeqCst);
                    return Ok(0);
                }
                SIO_GET_EXTENSION_FUNCTION_POINTER => {
                    if lpvinbuffer.is_null() || (cbinbuffer as usize) < size_of::<GUID>() {
                        return Err(WSAEFAULT);
                    }
                    tracing::debug!(target: "wsock::api", "no Winsock extension functions (AcceptEx, ConnectEx, ...)");
                    return Err(WSAEINVAL);
                }
                x if x == SIOCATMARK as u32 => {
                    if lpvoutbuffer.is_null() || cboutbuffer < 4 {
                        return Err(WSAEFAULT);
                    }
                    std::ptr::write_unaligned(lpvoutbuffer as *mut u32, 1);
                    std::ptr::write_unaligned(lpcbbytesreturned, 4);
                    return Ok(0);
                }
                _ => {}
            }
            match dwiocontrolcode as i32 {
                FIONBIO => {
                    if lpvinbuffer.is_null() || cbinbuffer < 4 {
                        return Err(WSAEFAULT);
                    }
                    set_nonblocking(e, std::ptr::read_unaligned(lpvinbuffer as *const u32) != 0)?;
                    Ok(0)
                }
                FIONREAD => {
                    if lpvoutbuffer.is_null() || cboutbuffer < 4 {
                        return Err(WSAEFAULT);
                    }
                    std::ptr::write_unaligned(lpvoutbuffer as *mut u32, bytes_available(e));
                    std::ptr::write_unaligned(lpcbbytesreturned, 4);
                    Ok(0)
                }
                _ => Err(WSAEOPNOTSUPP),
            }
        });
        if r.is_err() && !lpcbbytesreturned.is_null() {
            std::ptr::write_unaligned(lpcbbytesreturned, returned_on_error);
        }
        if overlapped && r.is_ok() {
            let n = std::ptr::read_unaligned(lpcbbytesreturned);
            overlapped::complete_now(lpoverlapped, lpcompletionroutine, n);
        }
        finish(r)
    })
}

/// Upper bound on `WSAPoll`'s `fds` and on an `FD_SET`'s `fd_count`.
const MAX_POLL_FDS: u32 = 1 << 20;

/// Whether a stream socket has been connected (accepted, or its connect completed); a socket
/// whose connect is still pending or failed has not.
fn established(e: &SocketEntry) -> bool {
    if e.established.load(Ordering::SeqCst) {
        return true;
    }
    if e.stream
        && e.connecting.load(Ordering::SeqCst)
        && matches!(e.endpoint.connect_status(), Ok(true))
    {
        e.established.store(true, Ordering::SeqCst);
        return true;
    }
    false
}

/// A failed connect: reported in `select`'s except set only (Microsoft, "select function").
fn connect_failed(e: &SocketEntry, r: &Readiness) -> bool {
    e.stream && !e.listening.load(Ordering::SeqCst) && !established(e) && r.error.is_some()
}

/// What `WSAPoll` reports for a socket (Microsoft, "WSAPOLLFD structure"): `POLLRDNORM` for
/// data, a pending connection or end of stream (never `POLLRDBAND`: wsock has no urgent data);
/// `POLLWRNORM` when writable, and still after a local `SD_SEND` (Wine `test_poll`);
/// `POLLERR` and `POLLHUP` whatever `events` asked.
fn revents(e: &SocketEntry, r: &Readiness, events: i16) -> i16 {
    let mut v = 0i16;
    if r.readable {
        v |= events & POLLRDNORM;
    }
    let shut = e.send_shutdown.load(Ordering::SeqCst) && r.error.is_none();
    if r.writable || shut {
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

fn is_closed(e: &SocketEntry) -> bool {
    *e.closed.borrow()
}

/// The revents of each (socket, events), waiting up to `timeout` (`None`: no limit) until one
/// is non-zero. A socket closed meanwhile (from another thread) reports `POLLNVAL` and ends the
/// wait.
fn poll_entries(items: &[(Option<Arc<SocketEntry>>, i16)], timeout: Option<Duration>) -> Vec<i16> {
    let scan = || -> Vec<i16> {
        items
            .iter()
            .map(|(e, ev)| match e {
                None => POLLNVAL,
                Some(e) if is_closed(e) => POLLNVAL,
                Some(e) => match e.endpoint.readiness() {
                    Ok(r) => revents(e, &r, *ev),
                    Err(_) => POLLNVAL,
                },
            })
            .collect()
    };
    let out = scan();
    // A non-socket entry's POLLNVAL does not end the wait (it is not counted either).
    let ready = out
        .iter()
        .zip(items)
        .any(|(r, (e, _))| *r != 0 && e.is_some());
    if ready || timeout == Some(Duration::ZERO) {
        return out;
    }
    let woke = crate::blocking::wait_polling(timeout, |cx| {
        let mut any = false;
        for (e, ev) in items {
            let Some(e) = e else { continue };
            if let Ok(mut w) = e.close_wakers.lock() {
                // One waker per waiting thread (see `Event::register`).
                let me = std::thread::current().id();
                w.retain(|(t, _)| *t != me);
                w.push((me, cx.waker().clone()));
            }
            if is_closed(e) {
                any = true;
                continue;
            }
            let ev = *ev;
            if e.endpoint
                .poll_ready(cx, |r| revents(e, r, ev) != 0)
                .is_ready()
            {
                any = true;
            }
        }
        if any {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    if woke.is_some() {
        scan()
    } else {
        // Timed out: only the non-sockets have something to report.
        items
            .iter()
            .map(|(e, _)| if e.is_none() { POLLNVAL } else { 0 })
            .collect()
    }
}

/// The `events` flags `WSAPoll` takes; any other flag is `WSAEINVAL` (Wine `test_WSAPoll`,
/// lines 8102-8110 and 8199-8208: `POLLERR`, `POLLHUP`, `POLLNVAL`, `POLLWRBAND`, `POLLPRI`, ...).
const POLL_EVENTS: i16 = POLLRDNORM | POLLRDBAND | POLLWRNORM;

/// Waits until one of the sockets is ready; `timeout` in ms, negative for no limit. Returns
/// the number of sockets with non-zero `revents`. An entry that is not a socket gets `POLLNVAL`
/// but is not counted and does not end the wait (Wine `test_WSAPoll`, lines 8134-8145); a
/// socket closed meanwhile gets `POLLNVAL` and is counted (lines 8367-8370).
///
/// # Safety
/// `fdarray` must point to `fds` entries.
///
/// # Errors
/// `WSAEINVAL` (`fds` 0 or impossibly large, or an `events` flag Windows does not take on an
/// entry whose `fd` is not `INVALID_SOCKET`: then every `revents` is 0), `WSAEFAULT` (null
/// `fdarray`).
pub unsafe extern "system" fn WSAPoll(fdarray: *mut WSAPOLLFD, fds: u32, timeout: i32) -> i32 {
    guard(SOCKET_ERROR, || {
        // Wine `test_WSAPoll`, lines 8079-8094: no entries is WSAEINVAL, then a null array
        // WSAEFAULT. More descriptors than any process can have sockets: refused as well.
        if fds == 0 || fds > MAX_POLL_FDS {
            return fail(WSAEINVAL);
        }
        if fdarray.is_null() {
            return fail(WSAEFAULT);
        }
        let mut items: Vec<WSAPOLLFD> = (0..fds as usize)
            .map(|i| std::ptr::read_unaligned(fdarray.add(i)))
            .collect();
        let entries: Vec<(Option<Arc<SocketEntry>>, i16)> = items
            .iter()
            .map(|p| (winsock::lookup(p.fd).ok().map(|(_, e)| e), p.events))
            .collect();
        let store = |items: &[WSAPOLLFD]| {
            for (i, p) in items.iter().enumerate() {
                std::ptr::write_unaligned(fdarray.add(i), *p);
            }
        };
        if entries.iter().all(|(e, _)| e.is_none()) {
            // No socket at all: every entry POLLNVAL and the call fails with WSAENOTSOCK (Wine
            // `test_WSAPoll`, lines 8160-8171).
            for p in items.iter_mut() {
                p.revents = POLLNVAL;
            }
            store(&items);
            return fail(WSAENOTSOCK);
        }
        // An `fd` of INVALID_SOCKET is not checked (Wine lines 8120-8132), another non-socket
        // is (lines 8147-8158).
        if items
            .iter()
            .any(|p| p.fd != INVALID_SOCKET && p.events & !POLL_EVENTS != 0)
        {
            for p in items.iter_mut() {
                p.revents = 0;
            }
            store(&items);
            return fail(WSAEINVAL);
        }
        let wait = if timeout < 0 {
            None
        } else {
            Some(Duration::from_millis(timeout as u64))
        };
        let rev = poll_entries(&entries, wait);
        let mut n = 0;
        for (i, p) in items.iter_mut().enumerate() {
            p.revents = rev[i];
            if p.revents != 0 && entries[i].0.is_some() {
                n += 1;
            }
        }
        store(&items);
        LAST_ERROR.with(|e| e.set(0));
        n
    })
}

/// The largest `fd_count` `select` reads: C programs that define a larger `FD_SETSIZE` (1024 is
/// the usual choice) pass larger sets, which Windows reads in full. Above this bound wsock
/// answers `WSAEINVAL` rather than read memory a 64-entry `FD_SET` does not have (a choice:
/// Windows reads whatever `fd_count` says).
const MAX_FD_SET: u32 = 1024;

/// The handles of an `FD_SET`, each once, honouring an `fd_count` above `FD_SETSIZE` (up to
/// [`MAX_FD_SET`]).
unsafe fn fdset_handles(set: *const FD_SET) -> Result<Vec<SOCKET>, i32> {
    if set.is_null() {
        return Ok(Vec::new());
    }
    let count = std::ptr::read_unaligned(std::ptr::addr_of!((*set).fd_count));
    if count > MAX_FD_SET {
        return Err(WSAEINVAL);
    }
    let arr = std::ptr::addr_of!((*set).fd_array) as *const SOCKET;
    let mut out = Vec::with_capacity((count as usize).min(1024));
    for i in 0..count as usize {
        let h = std::ptr::read_unaligned(arr.add(i));
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

/// Stores `handles` (never more than the set held) into an `FD_SET`.
unsafe fn fdset_store(set: *mut FD_SET, handles: &[SOCKET]) {
    if set.is_null() {
        return;
    }
    std::ptr::write_unaligned(
        std::ptr::addr_of_mut!((*set).fd_count),
        handles.len() as u32,
    );
    let arr = std::ptr::addr_of_mut!((*set).fd_array) as *mut SOCKET;
    for (i, h) in handles.iter().enumerate() {
        std::ptr::write_unaligned(arr.add(i), *h);
    }
}

/// BSD `select` over `FD_SET`s; `nfds` is ignored, as on Windows. A socket listed twice in one
/// set counts once; a socket in several sets counts once per set where it is ready. Read set:
/// data, a pending connection, end of stream, a reset, or a socket closed meanwhile; write set:
/// writable (a non-blocking connect succeeded); except set: a non-blocking connect failed (and
/// only there). Returns the number of ready entries, 0 on timeout.
///
/// # Safety
/// The sets (when not null) must be valid `FD_SET`s holding `fd_count` handles (a set with more
/// than `FD_SETSIZE` entries must be allocated that large, as in C); `timeout`, when
/// not null, a valid `TIMEVAL`.
///
/// # Errors
/// `WSAEINVAL` (every set empty or null, a negative timeout, an `fd_count` above 1024),
/// `WSAENOTSOCK` (a handle that is not
/// a socket), `WSANOTINITIALISED`.
pub unsafe extern "system" fn select(
    _nfds: i32,
    readfds: *mut FD_SET,
    writefds: *mut FD_SET,
    exceptfds: *mut FD_SET,
    timeout: *const TIMEVAL,
) -> i32 {
    guard(SOCKET_ERROR, || {
        let sets = (|| -> Result<_, i32> {
            Ok((
                fdset_handles(readfds)?,
                fdset_handles(writefds)?,
                fdset_handles(exceptfds)?,
            ))
        })();
        let (r, w, x) = match sets {
            Ok(v) => v,
            Err(c) => return fail(c),
        };
        if r.is_empty() && w.is_empty() && x.is_empty() {
            if let Err(c) = crate::ext::current()
                .ok()
                .filter(|(_, ws)| ws.initialised())
                .ok_or(WSANOTINITIALISED)
            {
                return fail(c);
            }
            return fail(WSAEINVAL);
        }
        let mut unique: Vec<SOCKET> = Vec::new();
        for h in r.iter().chain(&w).chain(&x) {
            if !unique.contains(h) {
                unique.push(*h);
            }
        }
        let mut items = Vec::with_capacity(unique.len());
        for h in &unique {
            match winsock::lookup(*h) {
                Ok((_, e)) => {
                    let mut ev = 0i16;
                    if r.contains(h) {
                        ev |= POLLRDNORM;
                    }
                    if w.contains(h) {
                        ev |= POLLWRNORM;
                    }
                    items.push((Some(e), ev));
                }
                Err(c) => return fail(c),
            }
        }
        let wait = if timeout.is_null() {
            None
        } else {
            let t = std::ptr::read_unaligned(timeout);
            if t.tv_sec < 0 || t.tv_usec < 0 {
                return fail(WSAEINVAL);
            }
            Some(Duration::from_millis(
                (t.tv_sec as u64).saturating_mul(1000) + t.tv_usec as u64 / 1000,
            ))
        };
        // A socket only in the except set waits for a failed connect: poll it for errors.
        let rev = poll_entries(&items, wait);
        let state = |h: &SOCKET| -> (i16, bool) {
            let i = unique.iter().position(|u| u == h).unwrap_or(0);
            let failed = items[i]
                .0
                .as_ref()
                .map(|e| {
                    e.endpoint
                        .readiness()
                        .map(|rd| connect_failed(e, &rd))
                        .unwrap_or(false)
                })
                .unwrap_or(false);
            (rev[i], failed)
        };
        let mut rr = Vec::new();
        let mut wr = Vec::new();
        let mut xr = Vec::new();
        for h in &r {
            let (v, failed) = state(h);
            if !failed && v & (POLLRDNORM | POLLHUP | POLLERR | POLLNVAL) != 0 {
                rr.push(*h);
            }
        }
        for h in &w {
            let (v, failed) = state(h);
            if !failed && v & POLLWRNORM != 0 && v & POLLERR == 0 {
                wr.push(*h);
            }
        }
        for h in &x {
            let (_, failed) = state(h);
            if failed {
                xr.push(*h);
            }
        }
        fdset_store(readfds, &rr);
        fdset_store(writefds, &wr);
        fdset_store(exceptfds, &xr);
        LAST_ERROR.with(|e| e.set(0));
        (rr.len() + wr.len() + xr.len()) as i32
    })
}
