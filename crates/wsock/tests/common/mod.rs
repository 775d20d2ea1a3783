//! Helpers shared by the raw-face tests: a fresh network per test, sockets, addresses and
//! connected pairs, every call made through `wsock::sys` as a Windows program makes it.
#![allow(dead_code)]

use std::mem::{size_of, zeroed};
use std::ptr::null_mut;

use wsock::sys::*;
use wsock::{Host, Network, Scenario};

pub const SIN_LEN: i32 = size_of::<SOCKADDR_IN>() as i32;
pub const SIN6_LEN: i32 = size_of::<SOCKADDR_IN6>() as i32;

/// A sentinel last error, so a test sees whether a call set it.
pub const SENTINEL: i32 = 0x5eed;

/// A fresh network of the default scenario (`client` 10.0.0.1, `server` 10.0.0.2), Winsock
/// started, this thread on `client`.
pub fn started() -> (Network, Host, Host) {
    let net = Network::start(Scenario::default_scenario()).expect("network starts");
    let client = net.host("client").expect("client host");
    let server = net.host("server").expect("server host");
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0, "WSAStartup");
    (net, client, server)
}

pub fn last_error() -> i32 {
    unsafe { WSAGetLastError() }
}

pub fn sentinel() {
    unsafe { WSASetLastError(SENTINEL) };
}

pub fn v4(ip: [u8; 4], port: u16) -> SOCKADDR_IN {
    let mut sa: SOCKADDR_IN = unsafe { zeroed() };
    sa.sin_family = AF_INET;
    sa.sin_port = port.to_be();
    sa.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
    sa
}

pub fn sa(sa: &SOCKADDR_IN) -> *const SOCKADDR {
    sa as *const SOCKADDR_IN as *const SOCKADDR
}

pub fn sa_mut(sa: &mut SOCKADDR_IN) -> *mut SOCKADDR {
    sa as *mut SOCKADDR_IN as *mut SOCKADDR
}

pub fn port_of(sa: &SOCKADDR_IN) -> u16 {
    u16::from_be(sa.sin_port)
}

pub fn ip_of(sa: &SOCKADDR_IN) -> [u8; 4] {
    unsafe { sa.sin_addr.S_un.S_addr.to_ne_bytes() }
}

pub fn tcp() -> SOCKET {
    let s = unsafe { socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP) };
    assert_ne!(s, INVALID_SOCKET, "socket: {}", last_error());
    s
}

pub fn udp() -> SOCKET {
    let s = unsafe { socket(AF_INET as i32, SOCK_DGRAM, IPPROTO_UDP) };
    assert_ne!(s, INVALID_SOCKET, "socket: {}", last_error());
    s
}

pub fn set_int(s: SOCKET, level: i32, name: i32, v: i32) {
    let rc = unsafe { setsockopt(s, level, name, &v as *const i32 as *const u8, 4) };
    assert_eq!(rc, 0, "setsockopt({level}, {name}): {}", last_error());
}

pub fn get_int(s: SOCKET, level: i32, name: i32) -> (i32, i32) {
    let mut v = 0i32;
    let mut len = 4i32;
    let rc = unsafe { getsockopt(s, level, name, &mut v as *mut i32 as *mut u8, &mut len) };
    assert_eq!(rc, 0, "getsockopt({level}, {name}): {}", last_error());
    (v, len)
}

/// Safety net: blocking calls on `s` give up after a few seconds instead of hanging a test.
pub fn safety_timeout(s: SOCKET) {
    set_int(s, SOL_SOCKET, SO_RCVTIMEO, 5000);
    set_int(s, SOL_SOCKET, SO_SNDTIMEO, 5000);
}

pub fn nonblocking(s: SOCKET, on: bool) {
    let mut v: u32 = u32::from(on);
    assert_eq!(unsafe { ioctlsocket(s, FIONBIO, &mut v) }, 0, "FIONBIO");
}

pub fn bind_v4(s: SOCKET, ip: [u8; 4], port: u16) {
    let a = v4(ip, port);
    assert_eq!(
        unsafe { bind(s, sa(&a), SIN_LEN) },
        0,
        "bind: {}",
        last_error()
    );
}

pub fn local_port(s: SOCKET) -> u16 {
    let mut a = v4([0; 4], 0);
    let mut len = SIN_LEN;
    assert_eq!(
        unsafe { getsockname(s, sa_mut(&mut a), &mut len) },
        0,
        "getsockname"
    );
    port_of(&a)
}

/// A listener on `server` at 0.0.0.0:`port`; the thread returns to `client`.
pub fn listener_on(server: &Host, client: &Host, port: u16) -> SOCKET {
    wsock::ext::set_thread_host(server);
    let l = tcp();
    bind_v4(l, [0, 0, 0, 0], port);
    assert_eq!(
        unsafe { listen(l, SOMAXCONN as i32) },
        0,
        "listen: {}",
        last_error()
    );
    wsock::ext::set_thread_host(client);
    l
}

/// (listener, client socket, accepted socket) on `port` of the server.
pub fn pair(server: &Host, client: &Host, port: u16) -> (SOCKET, SOCKET, SOCKET) {
    let l = listener_on(server, client, port);
    let c = tcp();
    safety_timeout(c);
    let to = v4([10, 0, 0, 2], port);
    assert_eq!(
        unsafe { connect(c, sa(&to), SIN_LEN) },
        0,
        "connect: {}",
        last_error()
    );
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET, "accept: {}", last_error());
    safety_timeout(a);
    (l, c, a)
}

pub fn send_all(s: SOCKET, data: &[u8]) {
    let n = unsafe { send(s, data.as_ptr(), data.len() as i32, 0) };
    assert_eq!(n, data.len() as i32, "send: {}", last_error());
}

pub fn recv_some(s: SOCKET, cap: usize) -> Vec<u8> {
    let mut buf = vec![0u8; cap];
    let n = unsafe { recv(s, buf.as_mut_ptr(), cap as i32, 0) };
    assert!(n >= 0, "recv: {}", last_error());
    buf.truncate(n as usize);
    buf
}

pub fn close(s: SOCKET) {
    assert_eq!(
        unsafe { closesocket(s) },
        0,
        "closesocket: {}",
        last_error()
    );
}

/// Polls `f` until it holds or a few seconds pass (for results that arrive over the wire).
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    f()
}
