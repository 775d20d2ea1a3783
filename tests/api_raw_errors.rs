//! The errors a Windows program must get from the raw face (issue 2, "Errors a user must get"),
//! one named test per error. Every call goes through `wsock::sys` exactly as a Windows program
//! would make it: unsafe blocks, windows-sys types and constants, `SOCKET_ERROR` or
//! `INVALID_SOCKET` returned and the code read with `WSAGetLastError`.
//!
//! Each test starts its own `Network` (the default scenario: `client` 10.0.0.1, `server`
//! 10.0.0.2) and runs on its own test thread, whose host is chosen with
//! `wsock::ext::set_thread_host`. Timeouts here are safety nets only (a bug fails a test instead
//! of hanging it); no test asserts how long something took.

use std::mem::size_of;
use std::ptr::{null, null_mut};

use wsock::sys::*;
use wsock::{Host, Network, Scenario};

const SIN_LEN: i32 = size_of::<SOCKADDR_IN>() as i32;

/// A fresh network of the default scenario, with Winsock started on it from this thread and the
/// thread's host set to `client`.
fn started() -> (Network, Host, Host) {
    let net = Network::start(Scenario::default_scenario()).expect("network starts");
    let client = net.host("client").expect("client host");
    let server = net.host("server").expect("server host");
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { std::mem::zeroed() };
    let rc = unsafe { WSAStartup(0x0202, &mut data) };
    assert_eq!(rc, 0, "WSAStartup");
    assert_eq!(data.wVersion, 0x0202);
    (net, client, server)
}

fn last_error() -> i32 {
    unsafe { WSAGetLastError() }
}

/// Clears the thread's last error so a stale code cannot make a test pass.
fn clear_error() {
    unsafe { WSASetLastError(0) };
}

fn sockaddr_v4(ip: [u8; 4], port: u16) -> SOCKADDR_IN {
    let mut sa: SOCKADDR_IN = unsafe { std::mem::zeroed() };
    sa.sin_family = AF_INET;
    sa.sin_port = port.to_be();
    sa.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
    sa
}

fn as_sa(sa: &SOCKADDR_IN) -> *const SOCKADDR {
    sa as *const SOCKADDR_IN as *const SOCKADDR
}

fn tcp_socket() -> SOCKET {
    let s = unsafe { socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP) };
    assert_ne!(s, INVALID_SOCKET, "socket: {}", last_error());
    s
}

fn udp_socket() -> SOCKET {
    let s = unsafe { socket(AF_INET as i32, SOCK_DGRAM, IPPROTO_UDP) };
    assert_ne!(s, INVALID_SOCKET, "socket: {}", last_error());
    s
}

fn set_int(s: SOCKET, level: i32, name: i32, v: i32) {
    let rc = unsafe { setsockopt(s, level, name, &v as *const i32 as *const u8, 4) };
    assert_eq!(rc, 0, "setsockopt({level}, {name}): {}", last_error());
}

/// Safety net: blocking receives on `s` give up after a few seconds instead of hanging.
fn safety_timeout(s: SOCKET) {
    set_int(s, SOL_SOCKET, SO_RCVTIMEO, 5000);
    set_int(s, SOL_SOCKET, SO_SNDTIMEO, 5000);
}

/// A listener on `server` at 0.0.0.0:`port`.
fn listener_on(server: &Host, client: &Host, port: u16) -> SOCKET {
    wsock::ext::set_thread_host(server);
    let l = tcp_socket();
    let any = sockaddr_v4([0, 0, 0, 0], port);
    assert_eq!(
        unsafe { bind(l, as_sa(&any), SIN_LEN) },
        0,
        "bind: {}",
        last_error()
    );
    assert_eq!(
        unsafe { listen(l, SOMAXCONN as i32) },
        0,
        "listen: {}",
        last_error()
    );
    wsock::ext::set_thread_host(client);
    l
}

/// A connected pair (client socket, accepted server socket) on port `port` of the server.
fn connected_pair(server: &Host, client: &Host, port: u16) -> (SOCKET, SOCKET, SOCKET) {
    let l = listener_on(server, client, port);
    let c = tcp_socket();
    safety_timeout(c);
    let to = sockaddr_v4([10, 0, 0, 2], port);
    assert_eq!(
        unsafe { connect(c, as_sa(&to), SIN_LEN) },
        0,
        "connect: {}",
        last_error()
    );
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET, "accept: {}", last_error());
    safety_timeout(a);
    (l, c, a)
}

fn send_all(s: SOCKET, data: &[u8]) {
    let n = unsafe { send(s, data.as_ptr(), data.len() as i32, 0) };
    assert_eq!(n, data.len() as i32, "send: {}", last_error());
}

#[test]
fn connect_without_listener_is_wsaeconnrefused() {
    let (_net, _client, _server) = started();
    let s = tcp_socket();
    let to = sockaddr_v4([10, 0, 0, 2], 9);
    clear_error();
    let rc = unsafe { connect(s, as_sa(&to), SIN_LEN) };
    assert_eq!(rc, SOCKET_ERROR);
    assert_eq!(last_error(), WSAECONNREFUSED);
    assert_eq!(unsafe { closesocket(s) }, 0);
}

#[test]
fn bind_used_address_is_wsaeaddrinuse() {
    let (_net, _client, _server) = started();
    let a = tcp_socket();
    let b = tcp_socket();
    let addr = sockaddr_v4([10, 0, 0, 1], 5000);
    assert_eq!(
        unsafe { bind(a, as_sa(&addr), SIN_LEN) },
        0,
        "{}",
        last_error()
    );
    clear_error();
    assert_eq!(unsafe { bind(b, as_sa(&addr), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEADDRINUSE);

    // The same for UDP.
    let u1 = udp_socket();
    let u2 = udp_socket();
    assert_eq!(
        unsafe { bind(u1, as_sa(&addr), SIN_LEN) },
        0,
        "{}",
        last_error()
    );
    clear_error();
    assert_eq!(unsafe { bind(u2, as_sa(&addr), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEADDRINUSE);
}

#[test]
fn reuseaddr_bind_against_exclusive_holder_is_wsaeacces() {
    let (_net, _client, _server) = started();
    let holder = tcp_socket();
    set_int(holder, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1);
    let addr = sockaddr_v4([10, 0, 0, 1], 5001);
    assert_eq!(
        unsafe { bind(holder, as_sa(&addr), SIN_LEN) },
        0,
        "{}",
        last_error()
    );

    let other = tcp_socket();
    set_int(other, SOL_SOCKET, SO_REUSEADDR, 1);
    clear_error();
    assert_eq!(unsafe { bind(other, as_sa(&addr), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEACCES);

    // The wildcard address overlaps the exclusive holder's address too.
    let wild = tcp_socket();
    set_int(wild, SOL_SOCKET, SO_REUSEADDR, 1);
    let any = sockaddr_v4([0, 0, 0, 0], 5001);
    clear_error();
    assert_eq!(unsafe { bind(wild, as_sa(&any), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEACCES);
}

#[test]
fn nonblocking_recv_with_nothing_queued_is_wsaewouldblock() {
    let (_net, client, server) = started();
    let (_l, c, _a) = connected_pair(&server, &client, 5002);
    let mut on: u32 = 1;
    assert_eq!(
        unsafe { ioctlsocket(c, FIONBIO, &mut on) },
        0,
        "{}",
        last_error()
    );
    let mut buf = [0u8; 16];
    clear_error();
    let n = unsafe { recv(c, buf.as_mut_ptr(), buf.len() as i32, 0) };
    assert_eq!(n, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);

    // A non-blocking UDP socket with nothing queued, and a non-blocking accept, alike.
    let u = udp_socket();
    let addr = sockaddr_v4([10, 0, 0, 1], 5002);
    assert_eq!(unsafe { bind(u, as_sa(&addr), SIN_LEN) }, 0);
    assert_eq!(unsafe { ioctlsocket(u, FIONBIO, &mut on) }, 0);
    clear_error();
    let n = unsafe { recvfrom(u, buf.as_mut_ptr(), 16, 0, null_mut(), null_mut()) };
    assert_eq!(n, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);

    let l = listener_on(&server, &client, 5003);
    assert_eq!(unsafe { ioctlsocket(l, FIONBIO, &mut on) }, 0);
    clear_error();
    assert_eq!(unsafe { accept(l, null_mut(), null_mut()) }, INVALID_SOCKET);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
}

/// Every per-socket call on `s` fails with `WSAENOTSOCK`.
fn assert_every_call_is_notsock(s: SOCKET) {
    let addr = sockaddr_v4([10, 0, 0, 1], 5004);
    let addr_sa = as_sa(&addr);
    let mut out: SOCKADDR_IN = unsafe { std::mem::zeroed() };
    let out_sa = &mut out as *mut SOCKADDR_IN as *mut SOCKADDR;
    let mut buf = [0u8; 8];
    let bp = buf.as_mut_ptr();
    let wsabuf = WSABUF { len: 8, buf: bp };
    let v: i32 = 1;
    let vp = &v as *const i32 as *const u8;
    type Call<'a> = (&'a str, Box<dyn Fn() -> i32 + 'a>);
    let calls: Vec<Call<'_>> = unsafe {
        vec![
            ("bind", Box::new(move || bind(s, addr_sa, SIN_LEN))),
            ("listen", Box::new(move || listen(s, 4))),
            ("connect", Box::new(move || connect(s, addr_sa, SIN_LEN))),
            ("send", Box::new(move || send(s, bp, 8, 0))),
            ("recv", Box::new(move || recv(s, bp, 8, 0))),
            (
                "sendto",
                Box::new(move || sendto(s, bp, 8, 0, addr_sa, SIN_LEN)),
            ),
            (
                "recvfrom",
                Box::new(move || {
                    let mut len = SIN_LEN;
                    recvfrom(s, bp, 8, 0, out_sa, &mut len)
                }),
            ),
            (
                "WSASend",
                Box::new(|| {
                    let mut n = 0u32;
                    WSASend(s, &wsabuf, 1, &mut n, 0, null_mut(), None)
                }),
            ),
            (
                "WSARecv",
                Box::new(|| {
                    let (mut n, mut flags) = (0u32, 0u32);
                    WSARecv(s, &wsabuf, 1, &mut n, &mut flags, null_mut(), None)
                }),
            ),
            ("shutdown", Box::new(move || shutdown(s, SD_BOTH))),
            (
                "getsockname",
                Box::new(move || {
                    let mut len = SIN_LEN;
                    getsockname(s, out_sa, &mut len)
                }),
            ),
            (
                "getpeername",
                Box::new(move || {
                    let mut len = SIN_LEN;
                    getpeername(s, out_sa, &mut len)
                }),
            ),
            (
                "setsockopt",
                Box::new(move || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, vp, 4)),
            ),
            (
                "getsockopt",
                Box::new(move || {
                    let (mut val, mut len) = (0i32, 4i32);
                    getsockopt(
                        s,
                        SOL_SOCKET,
                        SO_TYPE,
                        &mut val as *mut i32 as *mut u8,
                        &mut len,
                    )
                }),
            ),
            (
                "ioctlsocket",
                Box::new(move || {
                    let mut arg = 1u32;
                    ioctlsocket(s, FIONBIO, &mut arg)
                }),
            ),
            (
                "WSAIoctl",
                Box::new(move || {
                    let (arg, mut n) = (1u32, 0u32);
                    WSAIoctl(
                        s,
                        FIONBIO as u32,
                        &arg as *const u32 as *const _,
                        4,
                        null_mut(),
                        0,
                        &mut n,
                        null_mut(),
                        None,
                    )
                }),
            ),
            ("closesocket", Box::new(move || closesocket(s))),
        ]
    };
    for (name, call) in calls {
        clear_error();
        assert_eq!(call(), SOCKET_ERROR, "{name} on handle {s:#x}");
        assert_eq!(last_error(), WSAENOTSOCK, "{name} on handle {s:#x}");
    }
    clear_error();
    let a = unsafe { accept(s, null_mut(), null_mut()) };
    assert_eq!(a, INVALID_SOCKET, "accept on handle {s:#x}");
    assert_eq!(last_error(), WSAENOTSOCK, "accept on handle {s:#x}");
}

#[test]
fn calls_on_closed_and_invented_handles_are_wsaenotsock() {
    let (_net, _client, _server) = started();
    let s = tcp_socket();
    assert_eq!(unsafe { closesocket(s) }, 0);
    assert_every_call_is_notsock(s);
    for invented in [0xDEAD_BEE0usize, 1, 0, INVALID_SOCKET] {
        assert_every_call_is_notsock(invented);
    }
}

#[test]
fn send_after_shutdown_send_is_wsaeshutdown() {
    let (_net, client, server) = started();
    let (_l, c, _a) = connected_pair(&server, &client, 5005);
    assert_eq!(unsafe { shutdown(c, SD_SEND) }, 0, "{}", last_error());
    clear_error();
    let data = b"late";
    assert_eq!(unsafe { send(c, data.as_ptr(), 4, 0) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAESHUTDOWN);
}

#[test]
fn connect_on_connected_socket_is_wsaeisconn() {
    let (_net, client, server) = started();
    let (_l, c, _a) = connected_pair(&server, &client, 5006);
    let to = sockaddr_v4([10, 0, 0, 2], 5006);
    clear_error();
    assert_eq!(unsafe { connect(c, as_sa(&to), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEISCONN);
}

#[test]
fn recv_with_rcvtimeo_and_nothing_arriving_is_wsaetimedout() {
    let (_net, client, server) = started();
    let (_l, c, _a) = connected_pair(&server, &client, 5007);
    set_int(c, SOL_SOCKET, SO_RCVTIMEO, 200);
    let mut buf = [0u8; 16];
    clear_error();
    assert_eq!(unsafe { recv(c, buf.as_mut_ptr(), 16, 0) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAETIMEDOUT);

    // A UDP socket alike.
    let u = udp_socket();
    let addr = sockaddr_v4([10, 0, 0, 1], 5007);
    assert_eq!(unsafe { bind(u, as_sa(&addr), SIN_LEN) }, 0);
    set_int(u, SOL_SOCKET, SO_RCVTIMEO, 200);
    clear_error();
    let n = unsafe { recvfrom(u, buf.as_mut_ptr(), 16, 0, null_mut(), null_mut()) };
    assert_eq!(n, SOCKET_ERROR);
    assert_eq!(last_error(), WSAETIMEDOUT);
}

#[test]
fn recv_after_peer_reset_is_wsaeconnreset() {
    let (_net, client, server) = started();
    let (_l, c, a) = connected_pair(&server, &client, 5008);
    // The data exchange shows the connection is up before the reset.
    send_all(a, b"x");
    let mut buf = [0u8; 16];
    assert_eq!(unsafe { recv(c, buf.as_mut_ptr(), 16, 0) }, 1);

    let linger = LINGER {
        l_onoff: 1,
        l_linger: 0,
    };
    let rc = unsafe {
        setsockopt(
            a,
            SOL_SOCKET,
            SO_LINGER,
            &linger as *const LINGER as *const u8,
            size_of::<LINGER>() as i32,
        )
    };
    assert_eq!(rc, 0, "{}", last_error());
    assert_eq!(unsafe { closesocket(a) }, 0);
    clear_error();
    assert_eq!(unsafe { recv(c, buf.as_mut_ptr(), 16, 0) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAECONNRESET);
}

#[test]
fn calls_before_wsastartup_are_wsanotinitialised() {
    // A fresh network with the thread host set, but no WSAStartup yet.
    let net = Network::start(Scenario::default_scenario()).expect("network starts");
    wsock::ext::set_thread_host(&net.host("client").unwrap());
    clear_error();
    assert_eq!(
        unsafe { socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP) },
        INVALID_SOCKET
    );
    assert_eq!(last_error(), WSANOTINITIALISED);
    clear_error();
    assert_eq!(unsafe { closesocket(0x1234) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSANOTINITIALISED);
    clear_error();
    assert_eq!(unsafe { WSACleanup() }, SOCKET_ERROR);
    assert_eq!(last_error(), WSANOTINITIALISED);

    // After WSAStartup the same calls work; after the matching WSACleanup they fail again.
    let mut data: WSADATA = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    let s = tcp_socket();
    assert_eq!(unsafe { WSACleanup() }, 0);
    clear_error();
    let addr = sockaddr_v4([10, 0, 0, 1], 5009);
    assert_eq!(unsafe { bind(s, as_sa(&addr), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSANOTINITIALISED);
    clear_error();
    assert_eq!(
        unsafe { socket(AF_INET as i32, SOCK_DGRAM, 0) },
        INVALID_SOCKET
    );
    assert_eq!(last_error(), WSANOTINITIALISED);
}

#[test]
fn null_or_short_buffers_and_addresses_are_wsaefault() {
    let (_net, client, server) = started();
    let s = tcp_socket();
    let addr = sockaddr_v4([10, 0, 0, 1], 5010);

    let expect_fault = |what: &str, rc: i32| {
        assert_eq!(rc, SOCKET_ERROR, "{what}");
        assert_eq!(last_error(), WSAEFAULT, "{what}");
        clear_error();
    };
    clear_error();
    unsafe {
        expect_fault("bind null", bind(s, null(), SIN_LEN));
        expect_fault("bind short", bind(s, as_sa(&addr), SIN_LEN - 1));
        expect_fault("bind namelen 0", bind(s, as_sa(&addr), 0));
        expect_fault("connect null", connect(s, null(), SIN_LEN));
        expect_fault("connect short", connect(s, as_sa(&addr), 8));
    }
    // The socket is still usable after the faults.
    assert_eq!(
        unsafe { bind(s, as_sa(&addr), SIN_LEN) },
        0,
        "{}",
        last_error()
    );
    unsafe {
        let mut out: SOCKADDR_IN = std::mem::zeroed();
        let out_sa = &mut out as *mut SOCKADDR_IN as *mut SOCKADDR;
        let mut len = 4;
        expect_fault("getsockname short", getsockname(s, out_sa, &mut len));
        expect_fault("getsockname null len", getsockname(s, out_sa, null_mut()));
        expect_fault(
            "getsockname null name",
            getsockname(s, null_mut(), &mut len),
        );
        let mut len = SIN_LEN;
        assert_eq!(getsockname(s, out_sa, &mut len), 0);
        assert_eq!(len, SIN_LEN);
        assert_eq!(u16::from_be(out.sin_port), 5010);
    }

    let (_l, c, _a) = connected_pair(&server, &client, 5011);
    unsafe {
        expect_fault("recv null buf", recv(c, null_mut(), 16, 0));
        expect_fault("send null buf", send(c, null(), 16, 0));
        let mut n = 0u32;
        let mut flags = 0u32;
        expect_fault(
            "WSARecv null WSABUF array",
            WSARecv(c, null(), 1, &mut n, &mut flags, null_mut(), None),
        );
        expect_fault(
            "WSASend null WSABUF array",
            WSASend(c, null(), 1, &mut n, 0, null_mut(), None),
        );
        let bad = WSABUF {
            len: 16,
            buf: null_mut(),
        };
        expect_fault(
            "WSARecv WSABUF with null buf",
            WSARecv(c, &bad, 1, &mut n, &mut flags, null_mut(), None),
        );
        let mut out: SOCKADDR_IN = std::mem::zeroed();
        let out_sa = &mut out as *mut SOCKADDR_IN as *mut SOCKADDR;
        let mut len = 2;
        expect_fault("getpeername short", getpeername(c, out_sa, &mut len));
        let v: i32 = 1000;
        expect_fault(
            "setsockopt short",
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &v as *const i32 as *const u8, 2),
        );
        expect_fault(
            "setsockopt null",
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, null(), 4),
        );
        let mut optlen = 2;
        let mut optval = 0i32;
        expect_fault(
            "getsockopt short",
            getsockopt(
                c,
                SOL_SOCKET,
                SO_RCVTIMEO,
                &mut optval as *mut i32 as *mut u8,
                &mut optlen,
            ),
        );
        expect_fault("ioctlsocket null", ioctlsocket(c, FIONBIO, null_mut()));
    }

    // accept with an address buffer that is too short.
    let l = listener_on(&server, &client, 5012);
    let c2 = tcp_socket();
    let to = sockaddr_v4([10, 0, 0, 2], 5012);
    assert_eq!(unsafe { connect(c2, as_sa(&to), SIN_LEN) }, 0);
    unsafe {
        let mut out: SOCKADDR_IN = std::mem::zeroed();
        let mut len = 4;
        clear_error();
        let a = accept(l, &mut out as *mut SOCKADDR_IN as *mut SOCKADDR, &mut len);
        assert_eq!(a, INVALID_SOCKET);
        assert_eq!(last_error(), WSAEFAULT);
    }

    // sendto with a short destination address on UDP.
    let u = udp_socket();
    unsafe {
        let data = b"abc";
        let to = sockaddr_v4([10, 0, 0, 2], 5013);
        expect_fault(
            "sendto short",
            sendto(u, data.as_ptr(), 3, 0, as_sa(&to), 4),
        );
        expect_fault(
            "sendto null buf",
            sendto(u, null(), 3, 0, as_sa(&to), SIN_LEN),
        );
    }

    // WSAStartup with a null WSADATA returns the code itself.
    assert_eq!(unsafe { WSAStartup(0x0202, null_mut()) }, WSAEFAULT);
}

#[test]
fn wsaioctl_unknown_code_is_wsaeopnotsupp() {
    let (_net, _client, _server) = started();
    let s = tcp_socket();
    let mut out = [0u8; 64];
    let mut n = 0u32;
    for code in [0x1234_5678u32, 0x9800_00FF] {
        clear_error();
        let rc = unsafe {
            WSAIoctl(
                s,
                code,
                null(),
                0,
                out.as_mut_ptr() as *mut _,
                out.len() as u32,
                &mut n,
                null_mut(),
                None,
            )
        };
        assert_eq!(rc, SOCKET_ERROR, "code {code:#x}");
        assert_eq!(last_error(), WSAEOPNOTSUPP, "code {code:#x}");
    }
    // A known code still works through WSAIoctl.
    let on: u32 = 1;
    let rc = unsafe {
        WSAIoctl(
            s,
            FIONBIO as u32,
            &on as *const u32 as *const _,
            4,
            null_mut(),
            0,
            &mut n,
            null_mut(),
            None,
        )
    };
    assert_eq!(rc, 0, "{}", last_error());
}

#[test]
fn socket_with_bad_family_or_type_is_rejected() {
    let (_net, _client, _server) = started();
    for af in [99, AF_IPX as i32, -1] {
        clear_error();
        assert_eq!(unsafe { socket(af, SOCK_STREAM, 0) }, INVALID_SOCKET);
        assert_eq!(last_error(), WSAEAFNOSUPPORT, "af {af}");
    }
    for ty in [99, -1, SOCK_SEQPACKET] {
        clear_error();
        assert_eq!(unsafe { socket(AF_INET as i32, ty, 0) }, INVALID_SOCKET);
        assert_eq!(last_error(), WSAESOCKTNOSUPPORT, "type {ty}");
    }
    // And through WSASocketW.
    clear_error();
    assert_eq!(
        unsafe { WSASocketW(AF_INET6 as i32, 77, 0, null(), 0, 0) },
        INVALID_SOCKET
    );
    assert_eq!(last_error(), WSAESOCKTNOSUPPORT);
}

#[test]
fn accept_with_short_ipv6_address_buffer_is_wsaefault_and_keeps_the_connection() {
    let (_net, client, server) = started();
    wsock::ext::set_thread_host(&server);
    let l = unsafe { socket(AF_INET6 as i32, SOCK_STREAM, 0) };
    assert_ne!(l, INVALID_SOCKET);
    let mut any6: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    any6.sin6_family = AF_INET6;
    any6.sin6_port = 5020u16.to_be();
    let sin6_len = size_of::<SOCKADDR_IN6>() as i32;
    let any6_sa = &any6 as *const SOCKADDR_IN6 as *const SOCKADDR;
    assert_eq!(unsafe { bind(l, any6_sa, sin6_len) }, 0, "{}", last_error());
    assert_eq!(unsafe { listen(l, 4) }, 0);
    wsock::ext::set_thread_host(&client);
    let c = unsafe { socket(AF_INET6 as i32, SOCK_STREAM, 0) };
    let mut to6 = any6;
    to6.sin6_addr.u.Byte = "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let to6_sa = &to6 as *const SOCKADDR_IN6 as *const SOCKADDR;
    assert_eq!(
        unsafe { connect(c, to6_sa, sin6_len) },
        0,
        "{}",
        last_error()
    );

    // A SOCKADDR_IN-sized buffer cannot hold the IPv6 peer.
    let mut small: SOCKADDR_IN = unsafe { std::mem::zeroed() };
    let mut len = SIN_LEN;
    clear_error();
    let a = unsafe { accept(l, &mut small as *mut SOCKADDR_IN as *mut SOCKADDR, &mut len) };
    assert_eq!(a, INVALID_SOCKET);
    assert_eq!(last_error(), WSAEFAULT);

    // The connection was not consumed: a proper buffer gets it, with the client's address.
    let mut peer: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    let mut len = sin6_len;
    let a = unsafe { accept(l, &mut peer as *mut SOCKADDR_IN6 as *mut SOCKADDR, &mut len) };
    assert_ne!(a, INVALID_SOCKET, "{}", last_error());
    assert_eq!(len, sin6_len);
    assert_eq!(peer.sin6_family, AF_INET6);
    assert_eq!(
        std::net::Ipv6Addr::from(unsafe { peer.sin6_addr.u.Byte }),
        "fd00::1".parse::<std::net::Ipv6Addr>().unwrap()
    );
    safety_timeout(a);
    send_all(c, b"v6");
    let mut buf = [0u8; 2];
    assert_eq!(unsafe { recv(a, buf.as_mut_ptr(), 2, MSG_WAITALL) }, 2);
    assert_eq!(&buf, b"v6");
}

#[test]
fn calls_in_the_wrong_state_give_windows_codes() {
    let (_net, client, server) = started();
    let expect = |what: &str, rc: i32, want: i32| {
        assert_eq!(rc, SOCKET_ERROR, "{what}");
        assert_eq!(last_error(), want, "{what}");
        clear_error();
    };
    let s = tcp_socket();
    let mut out: SOCKADDR_IN = unsafe { std::mem::zeroed() };
    let out_sa = &mut out as *mut SOCKADDR_IN as *mut SOCKADDR;
    let mut buf = [0u8; 8];
    clear_error();
    unsafe {
        let mut len = SIN_LEN;
        expect(
            "getsockname unbound",
            getsockname(s, out_sa, &mut len),
            WSAEINVAL,
        );
        expect("listen unbound", listen(s, 4), WSAEINVAL);
        let mut len = SIN_LEN;
        expect(
            "getpeername unconnected",
            getpeername(s, out_sa, &mut len),
            WSAENOTCONN,
        );
        expect(
            "recv unconnected",
            recv(s, buf.as_mut_ptr(), 8, 0),
            WSAENOTCONN,
        );
        expect("send unconnected", send(s, buf.as_ptr(), 8, 0), WSAENOTCONN);
        expect("shutdown unconnected", shutdown(s, SD_SEND), WSAENOTCONN);
        expect("shutdown bad how", shutdown(s, 7), WSAEINVAL);
        let v = 1i32;
        expect(
            "unknown option",
            setsockopt(s, SOL_SOCKET, 0x7777, &v as *const i32 as *const u8, 4),
            WSAENOPROTOOPT,
        );
        let mut arg = 0u32;
        expect(
            "ioctlsocket unknown",
            ioctlsocket(s, 0x1234, &mut arg),
            WSAEINVAL,
        );
    }
    let addr = sockaddr_v4([10, 0, 0, 1], 5030);
    assert_eq!(unsafe { bind(s, as_sa(&addr), SIN_LEN) }, 0);
    unsafe {
        let other = sockaddr_v4([10, 0, 0, 1], 5031);
        expect("bind twice", bind(s, as_sa(&other), SIN_LEN), WSAEINVAL);
        expect(
            "accept not listening",
            accept(s, null_mut(), null_mut()) as i32,
            WSAEINVAL,
        );
        let foreign = sockaddr_v4([10, 9, 9, 9], 5032);
        let t = tcp_socket();
        expect(
            "bind foreign address",
            bind(t, as_sa(&foreign), SIN_LEN),
            WSAEADDRNOTAVAIL,
        );
    }
    // UDP without a peer.
    let u = udp_socket();
    unsafe {
        expect(
            "udp send unconnected",
            send(u, buf.as_ptr(), 8, 0),
            WSAENOTCONN,
        );
        expect("udp listen", listen(u, 4), WSAEOPNOTSUPP);
    }
    // A datagram longer than the receive buffer: the buffer is filled, WSAEMSGSIZE.
    let (_l, _c, _a) = connected_pair(&server, &client, 5033);
    let ua = udp_socket();
    let ua_addr = sockaddr_v4([10, 0, 0, 1], 5034);
    assert_eq!(unsafe { bind(ua, as_sa(&ua_addr), SIN_LEN) }, 0);
    safety_timeout(ua);
    let msg = b"0123456789";
    assert_eq!(
        unsafe { sendto(u, msg.as_ptr(), 10, 0, as_sa(&ua_addr), SIN_LEN) },
        10
    );
    let mut small = [0u8; 4];
    clear_error();
    assert_eq!(unsafe { recv(ua, small.as_mut_ptr(), 4, 0) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEMSGSIZE);
    assert_eq!(&small, b"0123");
}

#[test]
fn hostile_arguments_never_panic() {
    let (_net, client, server) = started();
    let (_l, c, _a) = connected_pair(&server, &client, 5040);
    let addr = sockaddr_v4([10, 0, 0, 1], 5041);
    let mut buf = [0u8; 8];
    unsafe {
        // Negative and huge lengths.
        assert_eq!(recv(c, buf.as_mut_ptr(), -1, 0), SOCKET_ERROR);
        assert_eq!(send(c, buf.as_ptr(), -5, 0), SOCKET_ERROR);
        let s = tcp_socket();
        assert_eq!(bind(s, as_sa(&addr), -1), SOCKET_ERROR);
        assert_eq!(bind(s, as_sa(&addr), i32::MIN), SOCKET_ERROR);
        let mut len = -1;
        let mut out: SOCKADDR_IN = std::mem::zeroed();
        let out_sa = &mut out as *mut SOCKADDR_IN as *mut SOCKADDR;
        assert_eq!(getpeername(c, out_sa, &mut len), SOCKET_ERROR);
        assert_eq!(last_error(), WSAEFAULT);
        // Unknown flags.
        assert_eq!(recv(c, buf.as_mut_ptr(), 8, 0x4000_0000), SOCKET_ERROR);
        assert_eq!(send(c, buf.as_ptr(), 8, 0x4000_0000), SOCKET_ERROR);
        // A sockaddr of an unknown family.
        let mut weird = addr;
        weird.sin_family = 99;
        assert_eq!(bind(s, as_sa(&weird), SIN_LEN), SOCKET_ERROR);
        assert_eq!(last_error(), WSAEAFNOSUPPORT);
        // An IPv6 address on an IPv4 socket.
        let mut v6: SOCKADDR_IN6 = std::mem::zeroed();
        v6.sin6_family = AF_INET6;
        v6.sin6_port = 5042u16.to_be();
        let rc = bind(
            s,
            &v6 as *const SOCKADDR_IN6 as *const SOCKADDR,
            size_of::<SOCKADDR_IN6>() as i32,
        );
        assert_eq!(rc, SOCKET_ERROR);
        assert_eq!(last_error(), WSAEAFNOSUPPORT);
        // WSAPoll / select with nothing or garbage.
        assert_eq!(WSAPoll(null_mut(), 1, 0), SOCKET_ERROR);
        let mut fds = [WSAPOLLFD {
            fd: 0xBAD0,
            events: POLLRDNORM,
            revents: 0,
        }];
        // No entry is a socket: each POLLNVAL and WSAENOTSOCK (Wine test_WSAPoll, 8160-8171).
        assert_eq!(WSAPoll(fds.as_mut_ptr(), 1, 0), SOCKET_ERROR);
        assert_eq!(last_error(), WSAENOTSOCK);
        assert_eq!(fds[0].revents, POLLNVAL);
        assert_eq!(
            select(0, null_mut(), null_mut(), null_mut(), null()),
            SOCKET_ERROR
        );
        let mut set: FD_SET = std::mem::zeroed();
        set.fd_count = 10_000;
        set.fd_array[0] = c;
        let tv = TIMEVAL {
            tv_sec: 0,
            tv_usec: 0,
        };
        let _ = select(0, &mut set, null_mut(), null_mut(), &tv);
        let mut bad = std::mem::zeroed::<FD_SET>();
        bad.fd_count = 1;
        bad.fd_array[0] = 0xBAD0;
        assert_eq!(
            select(0, &mut bad, null_mut(), null_mut(), &tv),
            SOCKET_ERROR
        );
        assert_eq!(last_error(), WSAENOTSOCK);
        // WSARecv with a zero count, WSAStartup with odd versions.
        let (mut n, mut flags) = (0u32, 0u32);
        let wb = WSABUF {
            len: 8,
            buf: buf.as_mut_ptr(),
        };
        assert_eq!(
            WSARecv(c, &wb, 0, &mut n, &mut flags, null_mut(), None),
            SOCKET_ERROR
        );
        let mut data: WSADATA = std::mem::zeroed();
        assert_eq!(WSAStartup(0x0000, &mut data), WSAVERNOTSUPPORTED);
        assert_eq!(WSAStartup(0xFFFF, &mut data), 0);
        assert_eq!(data.wVersion, 0x0202);
        assert_eq!(WSACleanup(), 0);
    }
}

#[test]
fn recvfrom_with_short_ipv6_address_buffer_is_wsaefault_and_keeps_the_datagram() {
    let (_net, client, server) = started();
    let sin6_len = size_of::<SOCKADDR_IN6>() as i32;
    let mut at: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    at.sin6_family = AF_INET6;
    at.sin6_port = 5050u16.to_be();
    at.sin6_addr.u.Byte = "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let at_sa = &at as *const SOCKADDR_IN6 as *const SOCKADDR;
    wsock::ext::set_thread_host(&server);
    let r = unsafe { socket(AF_INET6 as i32, SOCK_DGRAM, 0) };
    assert_eq!(unsafe { bind(r, at_sa, sin6_len) }, 0, "{}", last_error());
    safety_timeout(r);
    wsock::ext::set_thread_host(&client);
    let s = unsafe { socket(AF_INET6 as i32, SOCK_DGRAM, 0) };
    let msg = b"six";
    assert_eq!(unsafe { sendto(s, msg.as_ptr(), 3, 0, at_sa, sin6_len) }, 3);

    let mut buf = [0u8; 16];
    let mut small: SOCKADDR_IN = unsafe { std::mem::zeroed() };
    let mut len = SIN_LEN;
    clear_error();
    let n = unsafe {
        recvfrom(
            r,
            buf.as_mut_ptr(),
            16,
            0,
            &mut small as *mut SOCKADDR_IN as *mut SOCKADDR,
            &mut len,
        )
    };
    assert_eq!(n, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEFAULT);

    let mut from: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    let mut len = sin6_len;
    let n = unsafe {
        recvfrom(
            r,
            buf.as_mut_ptr(),
            16,
            0,
            &mut from as *mut SOCKADDR_IN6 as *mut SOCKADDR,
            &mut len,
        )
    };
    assert_eq!(n, 3, "the datagram is still queued: {}", last_error());
    assert_eq!(&buf[..3], msg);
    assert_eq!(len, sin6_len);
}

#[test]
fn nonblocking_connect_reports_through_select_and_so_error() {
    let (_net, client, server) = started();
    let _l = listener_on(&server, &client, 5060);
    let tv = TIMEVAL {
        tv_sec: 10,
        tv_usec: 0,
    };
    let so_error = |s: SOCKET| {
        let (mut v, mut len) = (-1i32, 4i32);
        let rc = unsafe {
            getsockopt(
                s,
                SOL_SOCKET,
                SO_ERROR,
                &mut v as *mut i32 as *mut u8,
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", last_error());
        v
    };
    let mut on = 1u32;

    // To a listener: WSAEWOULDBLOCK, then writable, SO_ERROR 0, and a second connect WSAEISCONN.
    let c = tcp_socket();
    assert_eq!(unsafe { ioctlsocket(c, FIONBIO, &mut on) }, 0);
    let to = sockaddr_v4([10, 0, 0, 2], 5060);
    clear_error();
    assert_eq!(unsafe { connect(c, as_sa(&to), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
    let mut w: FD_SET = unsafe { std::mem::zeroed() };
    w.fd_count = 1;
    w.fd_array[0] = c;
    let mut x = w;
    assert_eq!(unsafe { select(0, null_mut(), &mut w, &mut x, &tv) }, 1);
    assert_eq!((w.fd_count, x.fd_count), (1, 0));
    assert_eq!(so_error(c), 0);
    clear_error();
    assert_eq!(unsafe { connect(c, as_sa(&to), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEISCONN);

    // To a closed port: the failure shows in exceptfds and SO_ERROR is WSAECONNREFUSED.
    let r = tcp_socket();
    assert_eq!(unsafe { ioctlsocket(r, FIONBIO, &mut on) }, 0);
    let closed = sockaddr_v4([10, 0, 0, 2], 5061);
    clear_error();
    assert_eq!(unsafe { connect(r, as_sa(&closed), SIN_LEN) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
    let mut w: FD_SET = unsafe { std::mem::zeroed() };
    w.fd_count = 1;
    w.fd_array[0] = r;
    let mut x = w;
    assert_eq!(unsafe { select(0, null_mut(), &mut w, &mut x, &tv) }, 1);
    assert_eq!(
        (w.fd_count, x.fd_count),
        (0, 1),
        "a failed connect is not writable"
    );
    assert_eq!(so_error(r), WSAECONNREFUSED);
}

/// Code written against windows-sys ports by swapping the crate name: the same module path holds
/// the same functions and types.
#[test]
fn windows_sys_module_paths_resolve_to_wsock() {
    use wsock::sys::Win32::Networking::WinSock::{
        socket, WSAGetLastError, AF_INET, INVALID_SOCKET, SOCKET, SOCK_STREAM, WSANOTINITIALISED,
    };
    let f: unsafe extern "system" fn(i32, i32, i32) -> SOCKET = socket;
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).unwrap();
    wsock::ext::set_thread_host(&net.host("client").unwrap());
    // SAFETY: no pointers involved.
    unsafe {
        assert_eq!(
            f(AF_INET as i32, SOCK_STREAM, 0),
            INVALID_SOCKET,
            "no WSAStartup yet"
        );
        assert_eq!(WSAGetLastError(), WSANOTINITIALISED);
    }
}
