//! TCP and UDP echo between the two hosts of the default scenario (`client` 10.0.0.1/fd00::1,
//! `server` 10.0.0.2/fd00::2) in one process, through both API faces: the raw face (`wsock::sys`,
//! called as a Windows program would, server and client each on its own thread) and the Rust
//! face (`wsock::net` with tokio's `AsyncRead`/`AsyncWrite`). Also: parallel networks do not
//! interfere, and hooks on the packet path see (and can drop) packets.
//!
//! Outcomes are asserted, never timings; timeouts are safety nets so a bug fails a test instead
//! of hanging it. Payloads that vary come from a printed seed.

use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsock::sys::*;
use wsock::{Host, Network, Scenario};
use wsock_stack::stages::{
    DropReason, EgressAction, IngressAction, IngressMeta, PacketStage, StageContext,
};

const SIN_LEN: i32 = size_of::<SOCKADDR_IN>() as i32;
const SIN6_LEN: i32 = size_of::<SOCKADDR_IN6>() as i32;
/// Safety net for blocking raw calls and async waits.
const SAFETY_MS: i32 = 10_000;
const SAFETY: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ helpers

fn default_net() -> (Network, Host, Host) {
    let net = Network::start(Scenario::default_scenario()).expect("network starts");
    let client = net.host("client").expect("client host");
    let server = net.host("server").expect("server host");
    (net, client, server)
}

/// A payload of `len` bytes from a small xorshift generator seeded with `seed`.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The seed of a test: `WSOCK_TEST_SEED` when set, else a fixed value; always printed.
fn seed(test: &str) -> u64 {
    let s = std::env::var("WSOCK_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0002);
    println!("{test}: seed {s} (set WSOCK_TEST_SEED to replay another)");
    s
}

fn last_error() -> i32 {
    unsafe { WSAGetLastError() }
}

fn startup() {
    let mut data: WSADATA = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0, "WSAStartup");
}

fn cleanup() {
    assert_eq!(unsafe { WSACleanup() }, 0, "WSACleanup: {}", last_error());
}

fn sockaddr_v4(ip: Ipv4Addr, port: u16) -> SOCKADDR_IN {
    let mut sa: SOCKADDR_IN = unsafe { std::mem::zeroed() };
    sa.sin_family = AF_INET;
    sa.sin_port = port.to_be();
    sa.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip.octets());
    sa
}

fn sockaddr_v6(ip: Ipv6Addr, port: u16) -> SOCKADDR_IN6 {
    let mut sa: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = AF_INET6;
    sa.sin6_port = port.to_be();
    sa.sin6_addr.u.Byte = ip.octets();
    sa
}

/// A Rust address from a raw sockaddr buffer (checks the family and length it claims).
fn from_raw(buf: &SOCKADDR_STORAGE, len: i32) -> SocketAddr {
    let p = buf as *const SOCKADDR_STORAGE;
    match buf.ss_family {
        AF_INET => {
            assert_eq!(len, SIN_LEN);
            let sa = unsafe { &*(p as *const SOCKADDR_IN) };
            let ip = Ipv4Addr::from(unsafe { sa.sin_addr.S_un.S_addr }.to_ne_bytes());
            SocketAddr::new(ip.into(), u16::from_be(sa.sin_port))
        }
        AF_INET6 => {
            assert_eq!(len, SIN6_LEN);
            let sa = unsafe { &*(p as *const SOCKADDR_IN6) };
            let ip = Ipv6Addr::from(unsafe { sa.sin6_addr.u.Byte });
            SocketAddr::new(ip.into(), u16::from_be(sa.sin6_port))
        }
        f => panic!("unexpected family {f}"),
    }
}

/// A raw sockaddr for `addr`, with its length.
fn to_raw(addr: SocketAddr) -> (SOCKADDR_STORAGE, i32) {
    let mut st: SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
    let p = &mut st as *mut SOCKADDR_STORAGE;
    let len = match addr {
        SocketAddr::V4(a) => {
            unsafe { *(p as *mut SOCKADDR_IN) = sockaddr_v4(*a.ip(), a.port()) };
            SIN_LEN
        }
        SocketAddr::V6(a) => {
            unsafe { *(p as *mut SOCKADDR_IN6) = sockaddr_v6(*a.ip(), a.port()) };
            SIN6_LEN
        }
    };
    (st, len)
}

fn sa_ptr(st: &SOCKADDR_STORAGE) -> *const SOCKADDR {
    st as *const SOCKADDR_STORAGE as *const SOCKADDR
}

fn af_of(addr: SocketAddr) -> i32 {
    if addr.is_ipv4() {
        AF_INET as i32
    } else {
        AF_INET6 as i32
    }
}

fn set_int(s: SOCKET, level: i32, name: i32, v: i32) {
    let rc = unsafe { setsockopt(s, level, name, &v as *const i32 as *const u8, 4) };
    assert_eq!(rc, 0, "setsockopt({level}, {name}): {}", last_error());
}

fn safety_timeouts(s: SOCKET) {
    set_int(s, SOL_SOCKET, SO_RCVTIMEO, SAFETY_MS);
    set_int(s, SOL_SOCKET, SO_SNDTIMEO, SAFETY_MS);
}

fn raw_socket(af: i32, ty: i32) -> SOCKET {
    let s = unsafe { socket(af, ty, 0) };
    assert_ne!(s, INVALID_SOCKET, "socket: {}", last_error());
    s
}

fn raw_bind(s: SOCKET, addr: SocketAddr) {
    let (st, len) = to_raw(addr);
    assert_eq!(
        unsafe { bind(s, sa_ptr(&st), len) },
        0,
        "bind {addr}: {}",
        last_error()
    );
}

fn raw_connect(s: SOCKET, addr: SocketAddr) -> i32 {
    let (st, len) = to_raw(addr);
    unsafe { connect(s, sa_ptr(&st), len) }
}

fn local_of(s: SOCKET) -> SocketAddr {
    let mut st: SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
    let mut len = size_of::<SOCKADDR_STORAGE>() as i32;
    let rc = unsafe { getsockname(s, &mut st as *mut _ as *mut SOCKADDR, &mut len) };
    assert_eq!(rc, 0, "getsockname: {}", last_error());
    from_raw(&st, len)
}

fn peer_of(s: SOCKET) -> SocketAddr {
    let mut st: SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
    let mut len = size_of::<SOCKADDR_STORAGE>() as i32;
    let rc = unsafe { getpeername(s, &mut st as *mut _ as *mut SOCKADDR, &mut len) };
    assert_eq!(rc, 0, "getpeername: {}", last_error());
    from_raw(&st, len)
}

fn send_all(s: SOCKET, data: &[u8]) {
    let n = unsafe { send(s, data.as_ptr(), data.len() as i32, 0) };
    assert_eq!(n, data.len() as i32, "send: {}", last_error());
}

/// Reads exactly `n` bytes with `recv(MSG_WAITALL)`.
fn recv_exact(s: SOCKET, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let got = unsafe { recv(s, buf.as_mut_ptr(), n as i32, MSG_WAITALL) };
    assert_eq!(got, n as i32, "recv(MSG_WAITALL): {}", last_error());
    buf
}

/// A raw TCP echo server for one connection: echoes until the client's FIN, then closes.
/// Returns the peer address `accept` reported.
fn raw_tcp_echo_server(l: SOCKET) -> SocketAddr {
    let mut st: SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
    let mut len = size_of::<SOCKADDR_STORAGE>() as i32;
    let a = unsafe { accept(l, &mut st as *mut _ as *mut SOCKADDR, &mut len) };
    assert_ne!(a, INVALID_SOCKET, "accept: {}", last_error());
    let from_accept = from_raw(&st, len);
    assert_eq!(peer_of(a), from_accept);
    safety_timeouts(a);
    let mut buf = [0u8; 4096];
    loop {
        let n = unsafe { recv(a, buf.as_mut_ptr(), buf.len() as i32, 0) };
        assert!(n >= 0, "server recv: {}", last_error());
        if n == 0 {
            break;
        }
        send_all(a, &buf[..n as usize]);
    }
    assert_eq!(unsafe { closesocket(a) }, 0);
    from_accept
}

// ------------------------------------------------------------------ raw face

/// TCP echo through the raw face, server and client each on its own thread with its own host.
fn raw_tcp_echo(server_addr: SocketAddr, client_ip: std::net::IpAddr) {
    let (net, client, server) = default_net();
    let seed = seed("raw_tcp_echo");
    let (ready_tx, ready_rx) = mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        startup();
        let l = raw_socket(af_of(server_addr), SOCK_STREAM);
        let wildcard = match server_addr {
            SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), server_addr.port()),
            SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), server_addr.port()),
        };
        raw_bind(l, wildcard);
        assert_eq!(unsafe { listen(l, SOMAXCONN as i32) }, 0);
        assert_eq!(local_of(l), wildcard);
        ready_tx.send(()).unwrap();
        let peer = raw_tcp_echo_server(l);
        assert_eq!(unsafe { closesocket(l) }, 0);
        cleanup();
        peer
    });
    ready_rx.recv_timeout(SAFETY).expect("server ready");

    let client_thread = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&client);
        startup();
        let c = raw_socket(af_of(server_addr), SOCK_STREAM);
        safety_timeouts(c);
        set_int(c, IPPROTO_TCP, TCP_NODELAY, 1);
        assert_eq!(raw_connect(c, server_addr), 0, "connect: {}", last_error());
        let local = local_of(c);
        assert_eq!(local.ip(), client_ip);
        assert_ne!(local.port(), 0);
        assert_eq!(peer_of(c), server_addr);

        // send / recv
        send_all(c, b"hello, echo");
        assert_eq!(recv_exact(c, 11), b"hello, echo");

        // WSASend with several WSABUFs, WSARecv(MSG_WAITALL) into several WSABUFs.
        let mut parts = [b"alpha-".to_vec(), b"beta-".to_vec(), b"gamma".to_vec()];
        let bufs: Vec<WSABUF> = parts
            .iter_mut()
            .map(|p| WSABUF {
                len: p.len() as u32,
                buf: p.as_mut_ptr(),
            })
            .collect();
        let mut sent = 0u32;
        let rc = unsafe { WSASend(c, bufs.as_ptr(), 3, &mut sent, 0, null_mut(), None) };
        assert_eq!(rc, 0, "WSASend: {}", last_error());
        assert_eq!(sent, 16);
        let mut r1 = [0u8; 3];
        let mut r2 = [0u8; 7];
        let mut r3 = [0u8; 6];
        let rbufs = [
            WSABUF {
                len: 3,
                buf: r1.as_mut_ptr(),
            },
            WSABUF {
                len: 7,
                buf: r2.as_mut_ptr(),
            },
            WSABUF {
                len: 6,
                buf: r3.as_mut_ptr(),
            },
        ];
        let mut got = 0u32;
        let mut flags = MSG_WAITALL as u32;
        let rc = unsafe { WSARecv(c, rbufs.as_ptr(), 3, &mut got, &mut flags, null_mut(), None) };
        assert_eq!(rc, 0, "WSARecv: {}", last_error());
        assert_eq!(got, 16);
        assert_eq!(&r1, b"alp");
        assert_eq!(&r2, b"ha-beta");
        assert_eq!(&r3, b"-gamma");

        // A larger seeded payload, sent at once, read back with MSG_WAITALL.
        let big = payload(seed, 200_000);
        let c2 = c;
        let big2 = big.clone();
        let sender = std::thread::spawn(move || send_all(c2, &big2));
        let back = recv_exact(c, big.len());
        sender.join().unwrap();
        assert!(back == big, "200 kB payload came back different");

        // WSAPoll: nothing readable yet, writable; then readable once the echo is back.
        let mut fds = [WSAPOLLFD {
            fd: c,
            events: POLLRDNORM | POLLWRNORM,
            revents: 0,
        }];
        let n = unsafe { WSAPoll(fds.as_mut_ptr(), 1, SAFETY_MS) };
        assert_eq!(n, 1, "WSAPoll: {}", last_error());
        assert_eq!(fds[0].revents & POLLWRNORM, POLLWRNORM);
        assert_eq!(fds[0].revents & POLLRDNORM, 0, "nothing to read yet");
        send_all(c, b"poll");
        fds[0].events = POLLRDNORM;
        let n = unsafe { WSAPoll(fds.as_mut_ptr(), 1, SAFETY_MS) };
        assert_eq!(n, 1, "WSAPoll: {}", last_error());
        assert_eq!(fds[0].revents & POLLRDNORM, POLLRDNORM);
        assert_eq!(recv_exact(c, 4), b"poll");

        // select: readable once the echo is back.
        send_all(c, b"select");
        let mut readfds: FD_SET = unsafe { std::mem::zeroed() };
        readfds.fd_count = 1;
        readfds.fd_array[0] = c;
        let tv = TIMEVAL {
            tv_sec: SAFETY_MS / 1000,
            tv_usec: 0,
        };
        let n = unsafe { select(0, &mut readfds, null_mut(), null_mut(), &tv) };
        assert_eq!(n, 1, "select: {}", last_error());
        assert_eq!(readfds.fd_count, 1);
        assert_eq!(readfds.fd_array[0], c);
        assert_eq!(recv_exact(c, 6), b"select");

        // FIN: the server closes after echoing everything, so recv gives 0.
        assert_eq!(unsafe { shutdown(c, SD_SEND) }, 0);
        let mut b = [0u8; 8];
        assert_eq!(unsafe { recv(c, b.as_mut_ptr(), 8, 0) }, 0);
        assert_eq!(unsafe { closesocket(c) }, 0);
        cleanup();
        local
    });
    let client_local = client_thread.join().expect("client thread");
    let server_saw = server_thread.join().expect("server thread");
    assert_eq!(
        server_saw, client_local,
        "accept reported the client's address"
    );
    drop(net);
}

#[test]
fn raw_tcp_echo_ipv4() {
    raw_tcp_echo(
        "10.0.0.2:7007".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
    );
}

#[test]
fn raw_tcp_echo_ipv6() {
    raw_tcp_echo(
        "[fd00::2]:7007".parse().unwrap(),
        "fd00::1".parse().unwrap(),
    );
}

fn raw_udp_echo(server_addr: SocketAddr, client_ip: std::net::IpAddr) {
    let (_net, client, server) = default_net();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let rounds = 3;
    let server_thread = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        startup();
        let s = raw_socket(af_of(server_addr), SOCK_DGRAM);
        safety_timeouts(s);
        raw_bind(s, server_addr);
        ready_tx.send(()).unwrap();
        let mut froms = Vec::new();
        for _ in 0..rounds {
            let mut buf = [0u8; 1500];
            let mut st: SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
            let mut len = size_of::<SOCKADDR_STORAGE>() as i32;
            let n = unsafe {
                recvfrom(
                    s,
                    buf.as_mut_ptr(),
                    1500,
                    0,
                    &mut st as *mut _ as *mut SOCKADDR,
                    &mut len,
                )
            };
            assert!(n > 0, "server recvfrom: {}", last_error());
            let m = unsafe { sendto(s, buf.as_ptr(), n, 0, sa_ptr(&st), len) };
            assert_eq!(m, n, "server sendto: {}", last_error());
            froms.push(from_raw(&st, len));
        }
        // The server closes once the client has its echoes (a datagram queued right before a
        // close is covered by `udp_datagram_sent_just_before_close_arrives`).
        let _ = done_rx.recv_timeout(SAFETY);
        assert_eq!(unsafe { closesocket(s) }, 0);
        cleanup();
        froms
    });
    ready_rx.recv_timeout(SAFETY).expect("server ready");
    let client_thread = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&client);
        startup();
        let c = raw_socket(af_of(server_addr), SOCK_DGRAM);
        safety_timeouts(c);
        let mut locals = Vec::new();
        for i in 0..rounds {
            let msg = format!("datagram {i}");
            let (st, len) = to_raw(server_addr);
            let n = unsafe { sendto(c, msg.as_ptr(), msg.len() as i32, 0, sa_ptr(&st), len) };
            assert_eq!(n, msg.len() as i32, "sendto: {}", last_error());
            locals.push(local_of(c));
            let mut buf = [0u8; 1500];
            let mut from: SOCKADDR_STORAGE = unsafe { std::mem::zeroed() };
            let mut flen = size_of::<SOCKADDR_STORAGE>() as i32;
            let n = unsafe {
                recvfrom(
                    c,
                    buf.as_mut_ptr(),
                    1500,
                    0,
                    &mut from as *mut _ as *mut SOCKADDR,
                    &mut flen,
                )
            };
            assert_eq!(n, msg.len() as i32, "recvfrom: {}", last_error());
            assert_eq!(&buf[..n as usize], msg.as_bytes());
            assert_eq!(from_raw(&from, flen), server_addr);
        }
        // connect sets the default peer; send/recv then work without addresses.
        assert_eq!(
            raw_connect(c, server_addr),
            0,
            "udp connect: {}",
            last_error()
        );
        assert_eq!(peer_of(c), server_addr);
        done_tx.send(()).unwrap();
        assert_eq!(unsafe { closesocket(c) }, 0);
        cleanup();
        locals
    });
    let locals = client_thread.join().expect("client thread");
    let froms = server_thread.join().expect("server thread");
    // An implicitly bound, unconnected UDP socket reports the wildcard address, as on Windows.
    assert!(locals
        .iter()
        .all(|l| l.ip().is_unspecified() && l.port() != 0));
    assert!(froms.iter().all(|f| f.ip() == client_ip));
    assert!(
        locals.windows(2).all(|w| w[0] == w[1]),
        "implicit bind is stable"
    );
    let ports = |v: &[SocketAddr]| v.iter().map(|a| a.port()).collect::<Vec<_>>();
    assert_eq!(
        ports(&froms),
        ports(&locals),
        "server saw the client's port"
    );
}

#[test]
fn raw_udp_echo_ipv4() {
    raw_udp_echo(
        "10.0.0.2:7007".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
    );
}

#[test]
fn raw_udp_echo_ipv6() {
    raw_udp_echo(
        "[fd00::2]:7007".parse().unwrap(),
        "fd00::1".parse().unwrap(),
    );
}

// ------------------------------------------------------------------ Rust face

async fn rust_tcp_echo(client: &Host, server: &Host, server_addr: SocketAddr, data: &[u8]) {
    let listener = wsock::net::TcpListener::bind(server, server_addr).expect("listener");
    let echo = async {
        let (mut s, peer) = listener.accept().await.expect("accept");
        assert_eq!(s.peer_addr().unwrap(), peer);
        let mut buf = vec![0u8; 8192];
        loop {
            let n = s.read(&mut buf).await.expect("server read");
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.expect("server write");
        }
        s.shutdown().await.expect("server shutdown");
        peer
    };
    let talk = async {
        let c = wsock::net::TcpStream::connect(client, server_addr)
            .await
            .expect("connect");
        c.set_nodelay(true).unwrap();
        assert_eq!(c.peer_addr().unwrap(), server_addr);
        let local = c.local_addr().unwrap();
        let (mut rd, mut wr) = tokio::io::split(c);
        let writer = async {
            wr.write_all(data).await.expect("client write");
            wr.shutdown().await.expect("client shutdown");
        };
        let reader = async {
            let mut back = Vec::new();
            rd.read_to_end(&mut back).await.expect("client read");
            back
        };
        let ((), back) = tokio::join!(writer, reader);
        assert!(
            back == data,
            "echo differs ({} vs {} bytes)",
            back.len(),
            data.len()
        );
        local
    };
    let (peer, local) = tokio::time::timeout(SAFETY, async { tokio::join!(echo, talk) })
        .await
        .expect("safety timeout");
    assert_eq!(peer, local);
}

#[test]
fn rust_face_tcp_echo_ipv4_and_ipv6() {
    let (net, client, server) = default_net();
    let data = payload(seed("rust_face_tcp_echo"), 300_000);
    let rt = net.runtime().unwrap();
    rt.block_on(async {
        rust_tcp_echo(&client, &server, "10.0.0.2:17".parse().unwrap(), &data).await;
        rust_tcp_echo(&client, &server, "[fd00::2]:17".parse().unwrap(), &data).await;
    });
}

async fn rust_udp_echo(client: &Host, server: &Host, server_addr: SocketAddr) {
    let wildcard: SocketAddr = if server_addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let s = wsock::net::UdpSocket::bind(server, server_addr).expect("server bind");
    let c = wsock::net::UdpSocket::bind(client, wildcard).expect("client bind");
    let echo = async {
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let (n, from) = s.recv_from(&mut buf).await.expect("server recv");
            s.send_to(&buf[..n], from).await.expect("server send");
        }
    };
    let talk = async {
        let mut buf = [0u8; 2048];
        for i in 0..3 {
            let msg = format!("udp {i} to {server_addr}");
            c.send_to(msg.as_bytes(), server_addr)
                .await
                .expect("send_to");
            let (n, from) = c.recv_from(&mut buf).await.expect("recv_from");
            assert_eq!(&buf[..n], msg.as_bytes());
            assert_eq!(from, server_addr);
        }
        c.connect(server_addr).unwrap();
        c.send(b"connected").await.unwrap();
    };
    tokio::time::timeout(SAFETY, async { tokio::join!(echo, talk) })
        .await
        .expect("safety timeout");
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(SAFETY, s.recv_from(&mut buf))
        .await
        .expect("safety timeout")
        .unwrap();
    assert_eq!(&buf[..n], b"connected");
    assert_eq!(from.port(), c.local_addr().unwrap().port());
    let client_ip: std::net::IpAddr = if server_addr.is_ipv4() {
        client.ipv4().into()
    } else {
        client.ipv6().into()
    };
    assert_eq!(from.ip(), client_ip);
}

#[test]
fn rust_face_udp_echo_ipv4_and_ipv6() {
    let (net, client, server) = default_net();
    net.runtime().unwrap().block_on(async {
        rust_udp_echo(&client, &server, "10.0.0.2:17".parse().unwrap()).await;
        rust_udp_echo(&client, &server, "[fd00::2]:17".parse().unwrap()).await;
    });
}

/// The raw face and the Rust face talk to each other: a raw server, a Rust client.
#[test]
fn raw_server_rust_client() {
    let (net, client, server) = default_net();
    let (ready_tx, ready_rx) = mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        startup();
        let l = raw_socket(AF_INET as i32, SOCK_STREAM);
        raw_bind(l, "10.0.0.2:8080".parse().unwrap());
        assert_eq!(unsafe { listen(l, 4) }, 0);
        ready_tx.send(()).unwrap();
        let peer = raw_tcp_echo_server(l);
        cleanup();
        peer
    });
    ready_rx.recv_timeout(SAFETY).unwrap();
    let local = net.runtime().unwrap().block_on(async {
        let mut c = wsock::net::TcpStream::connect(&client, "10.0.0.2:8080".parse().unwrap())
            .await
            .expect("connect");
        c.write_all(b"mixed faces").await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        tokio::time::timeout(SAFETY, c.read_to_end(&mut back))
            .await
            .expect("safety timeout")
            .unwrap();
        assert_eq!(back, b"mixed faces");
        c.local_addr().unwrap()
    });
    assert_eq!(server_thread.join().unwrap(), local);
}

// ------------------------------------------------------------------ isolation

/// Several threads, each with its own `Network` (same virtual addresses, same ports), run a raw
/// echo at once; each gets back exactly its own bytes.
#[test]
fn parallel_networks_do_not_interfere() {
    let base = seed("parallel_networks_do_not_interfere");
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                let (net, client, server) = default_net();
                let data = payload(base.wrapping_add(i), 50_000 + i as usize * 1000);
                // Both hosts from one thread: the connect completes into the backlog.
                wsock::ext::set_thread_host(&server);
                startup();
                let l = raw_socket(AF_INET as i32, SOCK_STREAM);
                raw_bind(l, "0.0.0.0:7000".parse().unwrap());
                assert_eq!(unsafe { listen(l, 4) }, 0);
                let u = raw_socket(AF_INET as i32, SOCK_DGRAM);
                safety_timeouts(u);
                raw_bind(u, "10.0.0.2:7000".parse().unwrap());

                wsock::ext::set_thread_host(&client);
                let c = raw_socket(AF_INET as i32, SOCK_STREAM);
                safety_timeouts(c);
                assert_eq!(
                    raw_connect(c, "10.0.0.2:7000".parse().unwrap()),
                    0,
                    "connect: {}",
                    last_error()
                );
                let a = unsafe { accept(l, null_mut(), null_mut()) };
                assert_ne!(a, INVALID_SOCKET, "accept: {}", last_error());
                safety_timeouts(a);
                let d2 = data.clone();
                let sender = std::thread::spawn(move || send_all(c, &d2));
                let got = recv_exact(a, data.len());
                sender.join().unwrap();
                assert!(got == data, "network {i}: bytes differ");
                send_all(a, &data[..100]);
                assert_eq!(recv_exact(c, 100), &data[..100]);

                // A UDP datagram to the same virtual address and port in every network.
                let msg = format!("network {i}");
                let (st, len) = to_raw("10.0.0.2:7000".parse().unwrap());
                let cu = raw_socket(AF_INET as i32, SOCK_DGRAM);
                let n = unsafe { sendto(cu, msg.as_ptr(), msg.len() as i32, 0, sa_ptr(&st), len) };
                assert_eq!(n, msg.len() as i32);
                let mut buf = [0u8; 64];
                let n = unsafe { recv(u, buf.as_mut_ptr(), 64, 0) };
                assert_eq!(
                    &buf[..n.max(0) as usize],
                    msg.as_bytes(),
                    "{}",
                    last_error()
                );
                for s in [a, c, l, u, cu] {
                    assert_eq!(unsafe { closesocket(s) }, 0);
                }
                cleanup();
                drop(net);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker thread");
    }
}

// ------------------------------------------------------------------ stages

#[derive(Default)]
struct Counts {
    inbound: AtomicU64,
    outbound: AtomicU64,
}

/// Counts packets both ways (the counts live in an `Arc` the test keeps).
struct CountHook(Arc<Counts>);

impl PacketStage for CountHook {
    fn egress(&mut self, _: &StageContext<'_>, _: &mut Vec<u8>) -> EgressAction {
        self.0.outbound.fetch_add(1, Ordering::SeqCst);
        EgressAction::Continue
    }
    fn ingress(&mut self, _: &StageContext<'_>, _: &IngressMeta, _: &mut Vec<u8>) -> IngressAction {
        self.0.inbound.fetch_add(1, Ordering::SeqCst);
        IngressAction::Accept
    }
}

#[test]
fn counting_hook_sees_packets_and_passes_them() {
    let (net, client, server) = default_net();
    let on_server = Arc::new(Counts::default());
    let on_client = Arc::new(Counts::default());
    server.add_stage(Box::new(CountHook(on_server.clone())));
    client.add_stage(Box::new(CountHook(on_client.clone())));
    let data = payload(seed("counting_hook"), 20_000);
    net.runtime().unwrap().block_on(async {
        rust_tcp_echo(&client, &server, "10.0.0.2:17".parse().unwrap(), &data).await;
        rust_udp_echo(&client, &server, "10.0.0.2:17".parse().unwrap()).await;
    });
    let (si, so) = (
        on_server.inbound.load(Ordering::SeqCst),
        on_server.outbound.load(Ordering::SeqCst),
    );
    let (ci, co) = (
        on_client.inbound.load(Ordering::SeqCst),
        on_client.outbound.load(Ordering::SeqCst),
    );
    println!("server hook: in {si} out {so}; client hook: in {ci} out {co}");
    // 20 kB each way at MTU 1500 is at least 14 segments each way, plus the handshake.
    assert!(si >= 14 && so >= 14 && ci >= 14 && co >= 14);
    assert_eq!(server.counters().drops.get(DropReason::Policy), 0);
    assert_eq!(client.counters().drops.get(DropReason::Policy), 0);
}

/// Drops inbound packets whose UDP payload starts with `DROP`, and every inbound TCP packet to
/// port `tcp_port`.
struct DropHook {
    tcp_port: u16,
    dropped: Arc<AtomicU64>,
}

impl PacketStage for DropHook {
    fn ingress(
        &mut self,
        ctx: &StageContext<'_>,
        _: &IngressMeta,
        packet: &mut Vec<u8>,
    ) -> IngressAction {
        let s = ctx.summary;
        let t = s.transport_offset;
        let drop = match s.protocol {
            17 => packet.get(t + 8..t + 12) == Some(&b"DROP"[..]),
            6 => s.ports(packet).map(|(_, dst)| dst) == Some(self.tcp_port),
            _ => false,
        };
        if drop {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            IngressAction::Drop(DropReason::Policy)
        } else {
            IngressAction::Accept
        }
    }
}

#[test]
fn dropping_hook_loses_the_udp_datagram() {
    let (net, client, server) = default_net();
    let dropped = Arc::new(AtomicU64::new(0));
    server.add_stage(Box::new(DropHook {
        tcp_port: 1,
        dropped: dropped.clone(),
    }));
    net.runtime().unwrap().block_on(async {
        let s = wsock::net::UdpSocket::bind(&server, "10.0.0.2:9000".parse().unwrap()).unwrap();
        let c = wsock::net::UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap()).unwrap();
        let to: SocketAddr = "10.0.0.2:9000".parse().unwrap();
        c.send_to(b"DROP me", to).await.unwrap();
        c.send_to(b"keep me", to).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(SAFETY, s.recv_from(&mut buf))
            .await
            .expect("safety timeout")
            .unwrap();
        // The first datagram to arrive is the second one sent: the first never arrived.
        assert_eq!(&buf[..n], b"keep me");
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(server.counters().drops.get(DropReason::Policy), 1);
}

#[test]
fn dropping_hook_makes_tcp_connect_time_out() {
    let (net, client, server) = default_net();
    let dropped = Arc::new(AtomicU64::new(0));
    server.add_stage(Box::new(DropHook {
        tcp_port: 9001,
        dropped: dropped.clone(),
    }));
    // Raw face, non-blocking connect: it never becomes writable while the hook drops the SYNs.
    wsock::ext::set_thread_host(&server);
    startup();
    let l = raw_socket(AF_INET as i32, SOCK_STREAM);
    raw_bind(l, "10.0.0.2:9001".parse().unwrap());
    assert_eq!(unsafe { listen(l, 4) }, 0);
    wsock::ext::set_thread_host(&client);
    let c = raw_socket(AF_INET as i32, SOCK_STREAM);
    let mut on = 1u32;
    assert_eq!(unsafe { ioctlsocket(c, FIONBIO, &mut on) }, 0);
    assert_eq!(
        raw_connect(c, "10.0.0.2:9001".parse().unwrap()),
        SOCKET_ERROR
    );
    assert_eq!(last_error(), WSAEWOULDBLOCK);

    // The Rust face's connect fails with WSAETIMEDOUT once the stack gives up.
    let err = net
        .runtime()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(120),
                wsock::net::TcpStream::connect(&client, "10.0.0.2:9001".parse().unwrap()),
            )
            .await
            .expect("safety timeout")
        })
        .expect_err("connect through a dropping hook must fail");
    assert_eq!(err.wsa_code(), WSAETIMEDOUT);

    // Meanwhile the non-blocking connect never completed, and nothing was accepted.
    let mut fds = [WSAPOLLFD {
        fd: c,
        events: POLLWRNORM,
        revents: 0,
    }];
    let n = unsafe { WSAPoll(fds.as_mut_ptr(), 1, 0) };
    assert!(
        n == 0 || fds[0].revents & POLLWRNORM == 0,
        "connect must not complete"
    );
    assert_eq!(unsafe { ioctlsocket(l, FIONBIO, &mut on) }, 0);
    assert_eq!(unsafe { accept(l, null_mut(), null_mut()) }, INVALID_SOCKET);
    assert_eq!(last_error(), WSAEWOULDBLOCK);
    assert!(dropped.load(Ordering::SeqCst) >= 2, "SYNs were dropped");
    cleanup();
}

/// A datagram `sendto` accepted is not lost when the socket is closed right after: Windows has
/// handed it to the stack by then.
#[test]
fn udp_datagram_sent_just_before_close_arrives() {
    let (net, client, server) = default_net();
    net.runtime().unwrap().block_on(async {
        let s = wsock::net::UdpSocket::bind(&server, "10.0.0.2:9002".parse().unwrap()).unwrap();
        for i in 0..20u8 {
            let c = wsock::net::UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap()).unwrap();
            c.send_to(&[i], "10.0.0.2:9002".parse().unwrap())
                .await
                .unwrap();
            drop(c);
            let mut buf = [0u8; 8];
            let (n, _) = tokio::time::timeout(SAFETY, s.recv_from(&mut buf))
                .await
                .expect("datagram sent before close never arrived")
                .unwrap();
            assert_eq!(&buf[..n], &[i]);
        }
    });
}
