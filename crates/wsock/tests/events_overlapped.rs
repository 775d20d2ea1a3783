//! Sockets and I/O in the raw face (issue 7, part 2): `WSASocketA`, `WSASendTo`, `WSARecvFrom`,
//! `WSASendDisconnect`, event objects, `WSAEventSelect` / `WSAEnumNetworkEvents` with Windows'
//! re-enabling rules, overlapped I/O with events and completion routines, `SleepEx`, and the
//! socket IOCTLs `SIO_KEEPALIVE_VALS`, `SIO_UDP_CONNRESET`, `SIOCATMARK`,
//! `SIO_GET_EXTENSION_FUNCTION_POINTER`. One named test per behaviour; return values and
//! `WSAGetLastError` are asserted. Sources: Microsoft's function pages (named in each test) and
//! Wine's `dlls/ws2_32/tests/sock.c` (test function named).

mod common;

use std::mem::{size_of, zeroed};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use common::*;
use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock::sys::*;

fn event() -> WSAEVENT {
    let e = unsafe { WSACreateEvent() };
    assert_ne!(e, WSA_INVALID_EVENT);
    e
}

fn wait1(e: WSAEVENT, ms: u32) -> u32 {
    let hs = [e as *mut std::ffi::c_void];
    unsafe { WSAWaitForMultipleEvents(1, hs.as_ptr(), 0, ms, 0) }
}

fn enum_events(s: SOCKET, e: WSAEVENT) -> WSANETWORKEVENTS {
    let mut ne: WSANETWORKEVENTS = unsafe { zeroed() };
    assert_eq!(
        unsafe { WSAEnumNetworkEvents(s, e, &mut ne) },
        0,
        "enum: {}",
        last_error()
    );
    ne
}

/// Waits for `want` network events on `s` (accumulating), at most a few seconds.
fn wait_for_events(s: SOCKET, e: WSAEVENT, want: u32) -> WSANETWORKEVENTS {
    let mut acc: WSANETWORKEVENTS = unsafe { zeroed() };
    for _ in 0..50 {
        wait1(e, 100);
        let ne = enum_events(s, e);
        acc.lNetworkEvents |= ne.lNetworkEvents;
        for i in 0..10 {
            if ne.lNetworkEvents & (1 << i) != 0 {
                acc.iErrorCode[i] = ne.iErrorCode[i];
            }
        }
        if acc.lNetworkEvents as u32 & want == want {
            break;
        }
    }
    acc
}

fn ov_with(e: WSAEVENT) -> Box<OVERLAPPED> {
    let mut ov: Box<OVERLAPPED> = Box::new(unsafe { zeroed() });
    ov.hEvent = e as *mut std::ffi::c_void;
    ov
}

// ---------------------------------------------------------------- event objects

/// Microsoft, "WSACreateEvent": manual reset, initially non-signalled.
#[test]
fn wsacreateevent_is_manual_reset_and_starts_unsignalled() {
    let _n = started();
    let e = event();
    assert_eq!(wait1(e, 0), WSA_WAIT_TIMEOUT);
    assert_eq!(unsafe { WSASetEvent(e) }, 1);
    assert_eq!(wait1(e, 0), WSA_WAIT_EVENT_0 as u32);
    // Manual reset: still signalled after a satisfied wait.
    assert_eq!(wait1(e, 0), WSA_WAIT_EVENT_0 as u32);
    assert_eq!(unsafe { WSAResetEvent(e) }, 1);
    assert_eq!(wait1(e, 0), WSA_WAIT_TIMEOUT);
    assert_eq!(unsafe { WSACloseEvent(e) }, 1);
}

/// Microsoft, "WSACloseEvent"/"WSASetEvent": an invalid handle is `WSA_INVALID_HANDLE`.
#[test]
fn closed_or_unknown_event_handles_are_wsa_invalid_handle() {
    let _n = started();
    let e = event();
    assert_eq!(unsafe { WSACloseEvent(e) }, 1);
    for f in [WSASetEvent, WSAResetEvent, WSACloseEvent] {
        sentinel();
        assert_eq!(unsafe { f(e) }, 0);
        assert_eq!(last_error(), WSA_INVALID_HANDLE);
    }
    sentinel();
    assert_eq!(wait1(e, 0), WSA_WAIT_FAILED);
    assert_eq!(last_error(), WSA_INVALID_HANDLE);
    sentinel();
    assert_eq!(unsafe { WSASetEvent(0x7777_0001) }, 0);
    assert_eq!(last_error(), WSA_INVALID_HANDLE);
}

/// Microsoft, "WSAWaitForMultipleEvents": the lowest signalled index; `fWaitAll`; timeouts;
/// 0 or more than `WSA_MAXIMUM_WAIT_EVENTS` handles is `WSA_INVALID_PARAMETER`.
#[test]
fn wait_for_multiple_events_reports_index_waitall_and_bad_counts() {
    let _n = started();
    let (a, b, c) = (event(), event(), event());
    let hs = [a, b, c].map(|h| h as *mut std::ffi::c_void);
    unsafe {
        assert_eq!(
            WSAWaitForMultipleEvents(3, hs.as_ptr(), 0, 10, 0),
            WSA_WAIT_TIMEOUT
        );
        WSASetEvent(c);
        WSASetEvent(b);
        assert_eq!(WSAWaitForMultipleEvents(3, hs.as_ptr(), 0, 0, 0), 1);
        assert_eq!(
            WSAWaitForMultipleEvents(3, hs.as_ptr(), 1, 0, 0),
            WSA_WAIT_TIMEOUT
        );
        WSASetEvent(a);
        assert_eq!(WSAWaitForMultipleEvents(3, hs.as_ptr(), 1, 0, 0), 0);
        sentinel();
        assert_eq!(
            WSAWaitForMultipleEvents(0, hs.as_ptr(), 0, 0, 0),
            WSA_WAIT_FAILED
        );
        assert_eq!(last_error(), WSA_INVALID_PARAMETER);
        let many = vec![hs[0]; 65];
        sentinel();
        assert_eq!(
            WSAWaitForMultipleEvents(65, many.as_ptr(), 0, 0, 0),
            WSA_WAIT_FAILED
        );
        assert_eq!(last_error(), WSA_INVALID_PARAMETER);
        sentinel();
        assert_eq!(
            WSAWaitForMultipleEvents(1, null(), 0, 0, 0),
            WSA_WAIT_FAILED
        );
        assert_eq!(last_error(), WSA_INVALID_PARAMETER);
    }
}

/// A set from another thread wakes a thread waiting with `WSA_INFINITE`.
#[test]
fn set_event_from_another_thread_wakes_an_infinite_wait() {
    let _n = started();
    let e = event();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        unsafe { WSASetEvent(e) };
    });
    assert_eq!(wait1(e, WSA_INFINITE), 0);
    t.join().unwrap();
}

// ---------------------------------------------------------------- WSAEventSelect

/// Microsoft, "WSAEventSelect": the call makes the socket non-blocking, and
/// `ioctlsocket(FIONBIO, 0)` then fails with `WSAEINVAL` until the association is cancelled.
#[test]
fn event_select_makes_the_socket_nonblocking_and_fionbio_0_is_wsaeinval() {
    let (_n, _c, _s) = started();
    let u = udp();
    bind_v4(u, [0, 0, 0, 0], 0);
    let e = event();
    assert_eq!(unsafe { WSAEventSelect(u, e, FD_READ as i32) }, 0);
    let mut buf = [0u8; 8];
    sentinel();
    assert_eq!(unsafe { recv(u, buf.as_mut_ptr(), 8, 0) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
    let mut zero = 0u32;
    sentinel();
    assert_eq!(unsafe { ioctlsocket(u, FIONBIO, &mut zero) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEINVAL);
    assert_eq!(unsafe { WSAEventSelect(u, 0, 0) }, 0);
    assert_eq!(unsafe { ioctlsocket(u, FIONBIO, &mut zero) }, 0);
    close(u);
}

/// Microsoft, "WSAEventSelect": FD_ACCEPT on a listener, re-enabled by `accept`; FD_CONNECT
/// and FD_WRITE on the connecting side; FD_READ re-enabled by `recv`; FD_CLOSE with error 0
/// after a graceful close. Wine `test_events` records the same sequence.
#[test]
fn event_select_records_accept_connect_write_read_close_in_windows_order() {
    let (_n, client, server) = started();
    let l = listener_on(&server, &client, 5001);
    let le = event();
    assert_eq!(
        unsafe { WSAEventSelect(l, le, (FD_ACCEPT | FD_CLOSE) as i32) },
        0
    );
    let c = tcp();
    let ce = event();
    let mask = FD_CONNECT | FD_WRITE | FD_READ | FD_CLOSE;
    assert_eq!(unsafe { WSAEventSelect(c, ce, mask as i32) }, 0);
    let to = v4([10, 0, 0, 2], 5001);
    sentinel();
    assert_eq!(unsafe { connect(c, sa(&to), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
    let ne = wait_for_events(c, ce, FD_CONNECT | FD_WRITE);
    assert_eq!(ne.lNetworkEvents as u32, FD_CONNECT | FD_WRITE);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT as usize], 0);
    // The listener: FD_ACCEPT once until accept re-enables it.
    let ne = wait_for_events(l, le, FD_ACCEPT);
    assert_eq!(ne.lNetworkEvents as u32, FD_ACCEPT);
    assert_eq!(
        enum_events(l, le).lNetworkEvents,
        0,
        "not recorded again before accept"
    );
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET, "accept: {}", last_error());
    // The accepted socket takes the listener's association and is non-blocking (Microsoft,
    // "WSAEventSelect": "any WSAEventSelect ... for the listening socket apply to" it).
    let mut zero = 0u32;
    sentinel();
    assert_eq!(unsafe { ioctlsocket(a, FIONBIO, &mut zero) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEINVAL);
    assert_eq!(unsafe { WSAEventSelect(a, 0, 0) }, 0);
    nonblocking(a, false);
    send_all(a, b"hello");
    let ne = wait_for_events(c, ce, FD_READ);
    assert_eq!(ne.lNetworkEvents as u32, FD_READ);
    send_all(a, b"more");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        enum_events(c, ce).lNetworkEvents,
        0,
        "FD_READ waits for recv"
    );
    let mut buf = [0u8; 3];
    assert_eq!(unsafe { recv(c, buf.as_mut_ptr(), 3, 0) }, 3);
    // Data remains after the recv: FD_READ is recorded again at once.
    assert_eq!(enum_events(c, ce).lNetworkEvents as u32, FD_READ);
    let mut rest = [0u8; 16];
    assert_eq!(unsafe { recv(c, rest.as_mut_ptr(), 16, 0) }, 6);
    close(a);
    let ne = wait_for_events(c, ce, FD_CLOSE);
    assert_eq!(ne.lNetworkEvents as u32 & FD_CLOSE, FD_CLOSE);
    assert_eq!(ne.iErrorCode[FD_CLOSE_BIT as usize], 0);
    close(c);
    close(l);
}

/// Microsoft, "WSAEventSelect": a refused connect records FD_CONNECT with `WSAECONNREFUSED`
/// in `iErrorCode[FD_CONNECT_BIT]`, and no FD_CLOSE.
#[test]
fn refused_connect_records_fd_connect_with_wsaeconnrefused() {
    let _n = started();
    let c = tcp();
    let ce = event();
    let mask = FD_CONNECT | FD_WRITE | FD_CLOSE;
    assert_eq!(unsafe { WSAEventSelect(c, ce, mask as i32) }, 0);
    let to = v4([10, 0, 0, 2], 5999);
    unsafe { connect(c, sa(&to), SIN_LEN) };
    let ne = wait_for_events(c, ce, FD_CONNECT);
    assert_eq!(ne.lNetworkEvents as u32, FD_CONNECT);
    assert_eq!(ne.iErrorCode[FD_CONNECT_BIT as usize], WSAECONNREFUSED);
    close(c);
}

/// Microsoft, "WSAEventSelect": FD_WRITE is recorded when the socket is connected, then only
/// after a send failed with `WSAEWOULDBLOCK` and space became available.
#[test]
fn fd_write_is_recorded_again_only_after_wsaewouldblock() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 5002);
    let opt = 16 * 1024;
    set_int(c, SOL_SOCKET, SO_SNDBUF, opt);
    let ce = event();
    assert_eq!(unsafe { WSAEventSelect(c, ce, FD_WRITE as i32) }, 0);
    assert_eq!(enum_events(c, ce).lNetworkEvents as u32, FD_WRITE);
    // A send that succeeds does not re-enable FD_WRITE.
    send_all(c, b"x");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(enum_events(c, ce).lNetworkEvents, 0);
    // Fill until WSAEWOULDBLOCK.
    let chunk = vec![7u8; 8192];
    let mut sent = 1usize;
    loop {
        let n = unsafe { send(c, chunk.as_ptr(), chunk.len() as i32, 0) };
        if n == SOCKET_ERROR {
            assert_eq!(last_error(), WSAEWOULDBLOCK);
            break;
        }
        sent += n as usize;
        assert!(sent < 64 << 20, "send never blocked");
    }
    // The peer drains; FD_WRITE comes back.
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    while got < sent {
        let n = unsafe { recv(a, buf.as_mut_ptr(), buf.len() as i32, 0) };
        assert!(n > 0, "recv: {}", last_error());
        got += n as usize;
    }
    let ne = wait_for_events(c, ce, FD_WRITE);
    assert_eq!(ne.lNetworkEvents as u32, FD_WRITE);
}

/// Microsoft, "WSAEnumNetworkEvents": the record is cleared and the event reset; a null
/// `lpNetworkEvents` is `WSAEFAULT`; an invalid socket `WSAENOTSOCK`.
#[test]
fn enum_network_events_clears_the_record_and_resets_the_event() {
    let (_n, _c, _s) = started();
    let u = udp();
    bind_v4(u, [0, 0, 0, 0], 0);
    let e = event();
    assert_eq!(
        unsafe { WSAEventSelect(u, e, (FD_READ | FD_WRITE) as i32) },
        0
    );
    assert_eq!(
        wait1(e, 1000),
        0,
        "FD_WRITE signals at once on a UDP socket"
    );
    let ne = enum_events(u, e);
    assert_eq!(ne.lNetworkEvents as u32, FD_WRITE);
    assert_eq!(
        wait1(e, 0),
        WSA_WAIT_TIMEOUT,
        "reset by WSAEnumNetworkEvents"
    );
    assert_eq!(enum_events(u, e).lNetworkEvents, 0);
    sentinel();
    assert_eq!(
        unsafe { WSAEnumNetworkEvents(u, e, null_mut()) },
        SOCKET_ERROR
    );
    assert_eq!(last_error(), WSAEFAULT);
    let mut ne: WSANETWORKEVENTS = unsafe { zeroed() };
    sentinel();
    assert_eq!(
        unsafe { WSAEnumNetworkEvents(0xdead_beec, e, &mut ne) },
        SOCKET_ERROR
    );
    assert_eq!(last_error(), WSAENOTSOCK);
    close(u);
}

/// A UDP datagram records FD_READ, and `recvfrom` re-enables it.
#[test]
fn udp_datagram_records_fd_read_until_recvfrom() {
    let (_n, client, server) = started();
    wsock::ext::set_thread_host(&server);
    let r = udp();
    bind_v4(r, [0, 0, 0, 0], 6001);
    let e = event();
    assert_eq!(unsafe { WSAEventSelect(r, e, FD_READ as i32) }, 0);
    wsock::ext::set_thread_host(&client);
    let s = udp();
    let to = v4([10, 0, 0, 2], 6001);
    for _ in 0..2 {
        assert_eq!(
            unsafe { sendto(s, b"d".as_ptr(), 1, 0, sa(&to), SIN_LEN) },
            1
        );
    }
    let ne = wait_for_events(r, e, FD_READ);
    assert_eq!(ne.lNetworkEvents as u32, FD_READ);
    let mut b = [0u8; 4];
    assert_eq!(
        unsafe { recvfrom(r, b.as_mut_ptr(), 4, 0, null_mut(), null_mut()) },
        1
    );
    let ne = wait_for_events(r, e, FD_READ);
    assert_eq!(
        ne.lNetworkEvents as u32, FD_READ,
        "second datagram after re-enabling"
    );
}

// ---------------------------------------------------------------- overlapped I/O

/// Microsoft, "WSARecv": an overlapped receive with nothing queued is `WSA_IO_PENDING`; the
/// event is signalled at completion and `WSAGetOverlappedResult` gives the byte count.
#[test]
fn overlapped_wsarecv_pends_then_signals_its_event() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 5003);
    let e = event();
    let mut ov = ov_with(e);
    let mut buf = vec![0u8; 16];
    let wb = WSABUF {
        len: 16,
        buf: buf.as_mut_ptr(),
    };
    let mut flags = 0u32;
    let mut n = 0u32;
    sentinel();
    let rc = unsafe { WSARecv(c, &wb, 1, &mut n, &mut flags, &mut *ov, None) };
    assert_eq!(rc, SOCKET_ERROR);
    assert_eq!(last_error(), WSA_IO_PENDING);
    assert_eq!(ov.Internal, 0x103, "STATUS_PENDING while in progress");
    let mut got = 0u32;
    let mut fl = 0u32;
    sentinel();
    assert_eq!(
        unsafe { WSAGetOverlappedResult(c, &*ov, &mut got, 0, &mut fl) },
        0
    );
    assert_eq!(last_error(), WSA_IO_INCOMPLETE);
    send_all(a, b"overlap");
    assert_eq!(wait1(e, 5000), 0);
    assert_eq!(
        unsafe { WSAGetOverlappedResult(c, &*ov, &mut got, 0, &mut fl) },
        1
    );
    assert_eq!(got, 7);
    assert_eq!(&buf[..7], b"overlap");
    assert_eq!(ov.Internal, 0);
    assert_eq!(ov.InternalHigh, 7);
}

/// Microsoft, "WSASend": an overlapped send that completes at once returns 0 with the byte
/// count, and the completion is still indicated (the event is signalled).
#[test]
fn overlapped_wsasend_completing_at_once_returns_0_and_signals() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 5004);
    let e = event();
    let mut ov = ov_with(e);
    let data = b"sent at once";
    let wb = WSABUF {
        len: data.len() as u32,
        buf: data.as_ptr() as *mut u8,
    };
    let mut n = 0u32;
    assert_eq!(unsafe { WSASend(c, &wb, 1, &mut n, 0, &mut *ov, None) }, 0);
    assert_eq!(n, data.len() as u32);
    assert_eq!(wait1(e, 0), 0);
    let (mut got, mut fl) = (0u32, 0u32);
    assert_eq!(
        unsafe { WSAGetOverlappedResult(c, &*ov, &mut got, 1, &mut fl) },
        1
    );
    assert_eq!(got, data.len() as u32);
    assert_eq!(recv_some(a, 64), data);
}

static ROUTINE_CALLS: AtomicU32 = AtomicU32::new(0);
static ROUTINE_BYTES: AtomicU32 = AtomicU32::new(0);
static ROUTINE_THREAD: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn routine(err: u32, bytes: u32, _ov: *mut OVERLAPPED, flags: u32) {
    assert_eq!((err, flags), (0, 0));
    ROUTINE_BYTES.store(bytes, Ordering::SeqCst);
    ROUTINE_THREAD.store(thread_tag(), Ordering::SeqCst);
    ROUTINE_CALLS.fetch_add(1, Ordering::SeqCst);
}

fn thread_tag() -> usize {
    thread_local!(static T: u8 = const { 0 });
    T.with(|t| t as *const u8 as usize)
}

/// Microsoft, "WSARecv" (completion routines) and "SleepEx": the routine runs on the issuing
/// thread only in an alertable wait, which returns `WAIT_IO_COMPLETION`; a non-alertable wait
/// does not run it.
#[test]
fn completion_routine_runs_only_in_an_alertable_wait_of_the_issuing_thread() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 5005);
    let mut ov: Box<OVERLAPPED> = Box::new(unsafe { zeroed() });
    let mut buf = vec![0u8; 16];
    let wb = WSABUF {
        len: 16,
        buf: buf.as_mut_ptr(),
    };
    let mut flags = 0u32;
    sentinel();
    let rc = unsafe { WSARecv(c, &wb, 1, null_mut(), &mut flags, &mut *ov, Some(routine)) };
    assert_eq!((rc, last_error()), (SOCKET_ERROR, WSA_IO_PENDING));
    send_all(a, b"apc!");
    assert!(
        eventually(|| ov.Internal != 0x103),
        "completes in the background"
    );
    assert_eq!(unsafe { SleepEx(20, 0) }, 0, "non-alertable sleep");
    assert_eq!(ROUTINE_CALLS.load(Ordering::SeqCst), 0);
    let e = event();
    assert_eq!(wait1(e, 20), WSA_WAIT_TIMEOUT, "non-alertable wait");
    assert_eq!(ROUTINE_CALLS.load(Ordering::SeqCst), 0);
    assert_eq!(unsafe { SleepEx(5000, 1) }, 192, "WAIT_IO_COMPLETION");
    assert_eq!(ROUTINE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(ROUTINE_BYTES.load(Ordering::SeqCst), 4);
    assert_eq!(ROUTINE_THREAD.load(Ordering::SeqCst), thread_tag());
    assert_eq!(&buf[..4], b"apc!");
}

static ROUTINE2_CALLS: AtomicU32 = AtomicU32::new(0);

unsafe extern "system" fn routine2(_e: u32, _b: u32, _ov: *mut OVERLAPPED, _f: u32) {
    ROUTINE2_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// Microsoft, "WSAWaitForMultipleEvents": an alertable wait returns `WSA_WAIT_IO_COMPLETION`
/// after running a completion routine.
#[test]
fn alertable_wsawaitformultipleevents_returns_wsa_wait_io_completion() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 5006);
    let mut ov: Box<OVERLAPPED> = Box::new(unsafe { zeroed() });
    let mut buf = vec![0u8; 8];
    let wb = WSABUF {
        len: 8,
        buf: buf.as_mut_ptr(),
    };
    let mut flags = 0u32;
    unsafe { WSARecv(c, &wb, 1, null_mut(), &mut flags, &mut *ov, Some(routine2)) };
    send_all(a, b"z");
    let e = event();
    let hs = [e as *mut std::ffi::c_void];
    let r = unsafe { WSAWaitForMultipleEvents(1, hs.as_ptr(), 0, 5000, 1) };
    assert_eq!(r, WSA_WAIT_IO_COMPLETION as u32);
    assert_eq!(ROUTINE2_CALLS.load(Ordering::SeqCst), 1);
}

/// Microsoft, "closesocket": pending overlapped operations complete with
/// `WSA_OPERATION_ABORTED`.
#[test]
fn closesocket_aborts_pending_overlapped_receives() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 5007);
    let e = event();
    let mut ov = ov_with(e);
    let mut buf = vec![0u8; 8];
    let wb = WSABUF {
        len: 8,
        buf: buf.as_mut_ptr(),
    };
    let mut flags = 0u32;
    unsafe { WSARecv(c, &wb, 1, null_mut(), &mut flags, &mut *ov, None) };
    assert_eq!(last_error(), WSA_IO_PENDING);
    // Keep a second handle to ask WSAGetOverlappedResult after the close: Windows answers
    // through the OVERLAPPED, wsock through the same record.
    close(c);
    assert_eq!(wait1(e, 5000), 0);
    assert_ne!(ov.Internal, 0);
    assert_ne!(ov.Internal, 0x103);
}

/// Microsoft, "WSASocketW": without `WSA_FLAG_OVERLAPPED` the `OVERLAPPED` is ignored and the
/// call is synchronous (`WSARecv` on a non-overlapped socket).
#[test]
fn non_overlapped_socket_ignores_the_overlapped_and_blocks() {
    let (_n, client, server) = started();
    let l = listener_on(&server, &client, 5008);
    let c = unsafe { WSASocketA(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP, null(), 0, 0) };
    assert_ne!(c, INVALID_SOCKET);
    safety_timeout(c);
    let to = v4([10, 0, 0, 2], 5008);
    assert_eq!(unsafe { connect(c, sa(&to), SIN_LEN) }, 0);
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    send_all(a, b"sync");
    let mut ov: Box<OVERLAPPED> = Box::new(unsafe { zeroed() });
    let mut buf = vec![0u8; 8];
    let wb = WSABUF {
        len: 8,
        buf: buf.as_mut_ptr(),
    };
    let (mut n, mut flags) = (0u32, 0u32);
    assert_eq!(
        unsafe { WSARecv(c, &wb, 1, &mut n, &mut flags, &mut *ov, None) },
        0
    );
    assert_eq!(n, 4);
}

/// Microsoft, "WSASendTo" / "WSARecvFrom": datagrams with addresses, overlapped and not.
#[test]
fn wsasendto_and_wsarecvfrom_carry_the_addresses() {
    let (_n, client, server) = started();
    wsock::ext::set_thread_host(&server);
    let r = udp();
    bind_v4(r, [0, 0, 0, 0], 6002);
    safety_timeout(r);
    wsock::ext::set_thread_host(&client);
    let s = udp();
    let to = v4([10, 0, 0, 2], 6002);
    let data = *b"dgram";
    let wb = WSABUF {
        len: 5,
        buf: data.as_ptr() as *mut u8,
    };
    let mut n = 0u32;
    assert_eq!(
        unsafe { WSASendTo(s, &wb, 1, &mut n, 0, sa(&to), SIN_LEN, null_mut(), None) },
        0
    );
    assert_eq!(n, 5);
    let mut buf = [0u8; 16];
    let rb = WSABUF {
        len: 16,
        buf: buf.as_mut_ptr(),
    };
    let mut from = v4([0; 4], 0);
    let mut fromlen = SIN_LEN;
    let mut flags = 0u32;
    let e = event();
    let mut ov = ov_with(e);
    let rc = unsafe {
        WSARecvFrom(
            r,
            &rb,
            1,
            &mut n,
            &mut flags,
            sa_mut(&mut from),
            &mut fromlen,
            &mut *ov,
            None,
        )
    };
    if rc == SOCKET_ERROR {
        assert_eq!(last_error(), WSA_IO_PENDING);
        assert_eq!(wait1(e, 5000), 0);
    }
    let (mut got, mut fl) = (0u32, 0u32);
    assert_eq!(
        unsafe { WSAGetOverlappedResult(r, &*ov, &mut got, 1, &mut fl) },
        1
    );
    assert_eq!(got, 5);
    assert_eq!(&buf[..5], b"dgram");
    assert_eq!(ip_of(&from), [10, 0, 0, 1]);
    assert_eq!(port_of(&from), local_port(s));
}

/// Microsoft, "WSASendDisconnect": the peer reads end of stream; disconnect data is
/// `WSAENOPROTOOPT`.
#[test]
fn wsasenddisconnect_ends_the_stream_and_refuses_disconnect_data() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 5009);
    let wb = WSABUF {
        len: 0,
        buf: null_mut(),
    };
    sentinel();
    assert_eq!(unsafe { WSASendDisconnect(c, &wb) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAENOPROTOOPT);
    assert_eq!(unsafe { WSASendDisconnect(c, null()) }, 0);
    assert_eq!(recv_some(a, 8), b"");
    sentinel();
    assert_eq!(unsafe { send(c, b"x".as_ptr(), 1, 0) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAESHUTDOWN);
}

// ---------------------------------------------------------------- IOCTLs and options

fn ioctl_in(s: SOCKET, code: u32, input: &[u8]) -> (i32, i32, u32) {
    let mut n = 0xdead_beefu32;
    sentinel();
    let rc = unsafe {
        WSAIoctl(
            s,
            code,
            input.as_ptr().cast(),
            input.len() as u32,
            null_mut(),
            0,
            &mut n,
            null_mut(),
            None,
        )
    };
    (rc, if rc == 0 { 0 } else { last_error() }, n)
}

/// Microsoft, "SIO_KEEPALIVE_VALS": takes a `tcp_keepalive`; a short input is `WSAEFAULT`.
#[test]
fn sio_keepalive_vals_is_accepted_and_short_input_is_wsaefault() {
    let _n = started();
    let s = tcp();
    let k = tcp_keepalive {
        onoff: 1,
        keepalivetime: 1000,
        keepaliveinterval: 100,
    };
    let bytes: [u8; 12] = unsafe { std::mem::transmute(k) };
    assert_eq!(ioctl_in(s, SIO_KEEPALIVE_VALS, &bytes), (0, 0, 0));
    assert_eq!(ioctl_in(s, SIO_KEEPALIVE_VALS, &bytes[..8]).1, WSAEFAULT);
    set_int(s, SOL_SOCKET, SO_KEEPALIVE, 1);
    // Wine `test_set_getsockopt`: SO_KEEPALIVE is reported in one byte.
    let mut v = [0u8; 4];
    let mut len = 4;
    assert_eq!(
        unsafe { getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, v.as_mut_ptr(), &mut len) },
        0
    );
    assert_eq!((v[0], len), (1, 1));
    set_int(s, SOL_SOCKET, SO_KEEPALIVE, 0);
    assert_eq!(
        unsafe { getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, v.as_mut_ptr(), &mut len) },
        0
    );
    assert_eq!((v[0], len), (0, 1));
}

/// Microsoft, "SIO_UDP_CONNRESET": an ICMP port unreachable makes the next UDP receive fail
/// with `WSAECONNRESET`; with the IOCTL set to FALSE the report is ignored.
#[test]
fn sio_udp_connreset_false_ignores_port_unreachable() {
    let _n = started();
    let to = v4([10, 0, 0, 2], 5999);
    let mut b = [0u8; 4];
    let u = udp();
    set_int(u, SOL_SOCKET, SO_RCVTIMEO, 300);
    assert_eq!(
        unsafe { sendto(u, b"x".as_ptr(), 1, 0, sa(&to), SIN_LEN) },
        1
    );
    sentinel();
    let rc = unsafe { recvfrom(u, b.as_mut_ptr(), 4, 0, null_mut(), null_mut()) };
    assert_eq!((rc, last_error()), (SOCKET_ERROR, WSAECONNRESET));
    let v = udp();
    set_int(v, SOL_SOCKET, SO_RCVTIMEO, 300);
    assert_eq!(
        ioctl_in(v, SIO_UDP_CONNRESET, &0u32.to_ne_bytes()),
        (0, 0, 0)
    );
    assert_eq!(
        unsafe { sendto(v, b"x".as_ptr(), 1, 0, sa(&to), SIN_LEN) },
        1
    );
    sentinel();
    let rc = unsafe { recvfrom(v, b.as_mut_ptr(), 4, 0, null_mut(), null_mut()) };
    assert_eq!((rc, last_error()), (SOCKET_ERROR, WSAETIMEDOUT));
}

/// Microsoft, "SIO_UDP_CONNRESET": a BOOL on a UDP socket; wsock refuses it on TCP
/// (`WSAEINVAL`).
#[test]
fn sio_udp_connreset_takes_a_bool_on_udp_only() {
    let _n = started();
    let u = udp();
    assert_eq!(
        ioctl_in(u, SIO_UDP_CONNRESET, &0u32.to_ne_bytes()),
        (0, 0, 0)
    );
    assert_eq!(ioctl_in(u, SIO_UDP_CONNRESET, &[0u8; 2]).1, WSAEFAULT);
    let t = tcp();
    assert_eq!(
        ioctl_in(t, SIO_UDP_CONNRESET, &1u32.to_ne_bytes()).1,
        WSAEINVAL
    );
}

/// Microsoft, "ioctlsocket" (SIOCATMARK): TRUE when no urgent data waits; `send(MSG_OOB)` is
/// refused with `WSAEOPNOTSUPP` (wsock carries no urgent data); `recv(MSG_OOB)` waits for urgent
/// data as on Windows; on UDP `MSG_OOB` is `WSAEOPNOTSUPP` (Microsoft, "recv").
#[test]
fn siocatmark_is_true_send_msg_oob_is_refused_and_recv_msg_oob_waits() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 5010);
    let mut v = 0u32;
    assert_eq!(unsafe { ioctlsocket(c, SIOCATMARK, &mut v) }, 0);
    assert_eq!(v, 1);
    let mut out = 0u32;
    let mut n = 0u32;
    let rc = unsafe {
        WSAIoctl(
            c,
            SIOCATMARK as u32,
            null(),
            0,
            (&mut out as *mut u32).cast(),
            4,
            &mut n,
            null_mut(),
            None,
        )
    };
    assert_eq!((rc, out, n), (0, 1, 4));
    sentinel();
    assert_eq!(unsafe { send(c, b"!".as_ptr(), 1, MSG_OOB) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEOPNOTSUPP);
    // recv(MSG_OOB) waits for urgent data that never comes: WSAEWOULDBLOCK when non-blocking.
    nonblocking(c, true);
    let mut b = [0u8; 1];
    sentinel();
    assert_eq!(unsafe { recv(c, b.as_mut_ptr(), 1, MSG_OOB) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
    let u = udp();
    bind_v4(u, [0, 0, 0, 0], 0);
    sentinel();
    assert_eq!(unsafe { recv(u, b.as_mut_ptr(), 1, MSG_OOB) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEOPNOTSUPP);
}

/// Wine `test_get_extension_func`: a GUID the provider does not have is `WSAEINVAL`; wsock
/// has none (AcceptEx, ConnectEx, ...), and the byte count is 0.
#[test]
fn extension_function_pointers_are_wsaeinval_with_zero_bytes() {
    let _n = started();
    let s = tcp();
    for guid in [
        WSAID_ACCEPTEX,
        WSAID_CONNECTEX,
        WSAID_DISCONNECTEX,
        WSAID_TRANSMITFILE,
    ] {
        let mut f: usize = 0;
        let mut n = 0xdead_beefu32;
        sentinel();
        let rc = unsafe {
            WSAIoctl(
                s,
                SIO_GET_EXTENSION_FUNCTION_POINTER,
                (&guid as *const core::GUID).cast(),
                size_of::<core::GUID>() as u32,
                (&mut f as *mut usize).cast(),
                size_of::<usize>() as u32,
                &mut n,
                null_mut(),
                None,
            )
        };
        assert_eq!((rc, last_error(), n, f), (SOCKET_ERROR, WSAEINVAL, 0, 0));
    }
}

/// `SleepEx` is reachable under windows-sys's module path with windows-sys's signature.
#[test]
fn sleepex_has_the_windows_sys_signature_and_path() {
    let f: unsafe extern "system" fn(u32, windows_sys::core::BOOL) -> u32 =
        wsock::sys::Win32::System::Threading::SleepEx;
    assert_eq!(unsafe { f(0, 0) }, 0);
    let g: unsafe extern "system" fn(
        u32,
        *const windows_sys::Win32::Foundation::HANDLE,
        windows_sys::core::BOOL,
        u32,
        windows_sys::core::BOOL,
    ) -> u32 = WSAWaitForMultipleEvents;
    let _ = g;
}

/// Hostile arguments to the new functions give their documented codes and never panic.
#[test]
fn hostile_arguments_to_events_and_overlapped_calls_give_codes() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 5011);
    let e = event();
    let mut ov = ov_with(e);
    let mut flags = 0u32;
    let mut n = 0u32;
    unsafe {
        // No buffers, a null WSABUF array, null flags.
        sentinel();
        assert_eq!(
            WSARecv(c, null(), 1, &mut n, &mut flags, &mut *ov, None),
            SOCKET_ERROR
        );
        assert_eq!(last_error(), WSAEFAULT);
        let mut b = [0u8; 4];
        let wb = WSABUF {
            len: 4,
            buf: b.as_mut_ptr(),
        };
        sentinel();
        assert_eq!(
            WSARecv(c, &wb, 0, &mut n, &mut flags, &mut *ov, None),
            SOCKET_ERROR
        );
        assert_eq!(last_error(), WSAEFAULT);
        sentinel();
        assert_eq!(
            WSARecv(c, &wb, 1, &mut n, null_mut(), &mut *ov, None),
            SOCKET_ERROR
        );
        assert_eq!(last_error(), WSAEFAULT);
        let bad = WSABUF {
            len: 4,
            buf: null_mut(),
        };
        sentinel();
        assert_eq!(WSASend(c, &bad, 1, &mut n, 0, &mut *ov, None), SOCKET_ERROR);
        assert_eq!(last_error(), WSAEFAULT);
        let to = v4([10, 0, 0, 2], 9);
        sentinel();
        assert_eq!(
            WSASendTo(c, &wb, 1, &mut n, 0, sa(&to), 3, &mut *ov, None),
            SOCKET_ERROR
        );
        assert_eq!(last_error(), WSAEFAULT);
        // Not sockets.
        sentinel();
        assert_eq!(
            WSARecv(0xbad0, &wb, 1, &mut n, &mut flags, &mut *ov, None),
            SOCKET_ERROR
        );
        assert_eq!(last_error(), WSAENOTSOCK);
        sentinel();
        assert_eq!(WSAEventSelect(0xbad0, e, FD_READ as i32), SOCKET_ERROR);
        assert_eq!(last_error(), WSAENOTSOCK);
        // Unknown FD_ bits and an unknown event.
        sentinel();
        assert_eq!(WSAEventSelect(c, e, 1 << 20), SOCKET_ERROR);
        assert_eq!(last_error(), WSAEINVAL);
        sentinel();
        assert_eq!(WSAEventSelect(c, 0x7777_0001, FD_READ as i32), SOCKET_ERROR);
        assert_eq!(last_error(), WSAEINVAL);
        // WSAGetOverlappedResult on an OVERLAPPED wsock never saw, not pending.
        let other: OVERLAPPED = zeroed();
        let (mut got, mut fl) = (7u32, 7u32);
        assert_eq!(WSAGetOverlappedResult(c, &other, &mut got, 0, &mut fl), 1);
        assert_eq!((got, fl), (0, 0));
        sentinel();
        assert_eq!(WSAGetOverlappedResult(c, null(), &mut got, 0, &mut fl), 0);
        assert_eq!(last_error(), WSAEFAULT);
        // Alertable sleeps with nothing queued.
        assert_eq!(SleepEx(0, 1), 0);
        assert_eq!(SleepEx(1, 1), 0);
    }
}
