//! Names and addresses in the raw face (issue 7, part 1): byte order, `FD_ISSET`, text to
//! address and back, and name resolution against the scenario. One named test per behaviour;
//! every call goes through `wsock::sys` as a Windows program makes it, and both the return value
//! and `WSAGetLastError` are asserted.
//!
//! Where Microsoft's pages are silent, the expected values are what real Windows returns as
//! recorded by Wine's conformance tests (`dlls/ws2_32/tests/protocol.c`, the test function is
//! named in each comment). Tests that resolve names start their own `Network` of the default
//! scenario (`client` 10.0.0.1 / fd00::1, `server` 10.0.0.2 / fd00::2, machine names `CLIENT`
//! and `SERVER`, domain `WSOCK`) and run on the `client` host.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::ptr::{null, null_mut};

use wsock::sys::core::{PCSTR, PCWSTR};
use wsock::sys::*;
use wsock::{Network, Scenario};

#[path = "../examples/udp_pton.rs"]
#[allow(dead_code)]
mod udp_pton;

// ---------------------------------------------------------------- allocation counting

/// Counts this thread's live heap bytes and blocks, so a test can check that `freeaddrinfo`
/// frees exactly what `getaddrinfo` allocated.
struct Counting;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static LIVE_BLOCKS: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize, blocks: isize) {
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + bytes));
    let _ = LIVE_BLOCKS.try_with(|c| c.set(c.get() + blocks));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        count(-(layout.size() as isize), -1);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> (isize, isize) {
    (LIVE_BYTES.with(Cell::get), LIVE_BLOCKS.with(Cell::get))
}

// ---------------------------------------------------------------- helpers

/// A fresh network of the default scenario, this thread on `client`, Winsock started.
fn started() -> Network {
    let net = Network::start(Scenario::default_scenario()).expect("network starts");
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0, "WSAStartup");
    net
}

/// A fresh network with this thread on `client` and no `WSAStartup`.
fn not_started() -> Network {
    let net = Network::start(Scenario::default_scenario()).expect("network starts");
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    net
}

fn last_error() -> i32 {
    unsafe { WSAGetLastError() }
}

/// A sentinel last error, so a test sees whether a call set it.
const SENTINEL: i32 = 0x5eed;

fn sentinel() {
    unsafe { WSASetLastError(SENTINEL) };
}

fn c(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn w(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn from_w(buf: &[u16]) -> String {
    let n = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..n])
}

fn from_c(buf: &[u8]) -> String {
    let n = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

unsafe fn sockaddr_of(sa: *const SOCKADDR, len: usize) -> SocketAddr {
    let family = std::ptr::read_unaligned(sa as *const u16);
    if family == AF_INET {
        assert_eq!(len, 16);
        let sin = std::ptr::read_unaligned(sa as *const SOCKADDR_IN);
        SocketAddr::from((
            Ipv4Addr::from(sin.sin_addr.S_un.S_addr.to_ne_bytes()),
            u16::from_be(sin.sin_port),
        ))
    } else {
        assert_eq!(family, AF_INET6);
        assert_eq!(len, 28);
        let sin6 = std::ptr::read_unaligned(sa as *const SOCKADDR_IN6);
        SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(sin6.sin6_addr.u.Byte),
            u16::from_be(sin6.sin6_port),
            sin6.sin6_flowinfo,
            sin6.Anonymous.sin6_scope_id,
        ))
    }
}

/// One result of `getaddrinfo`, read back.
#[derive(Debug, PartialEq)]
struct Entry {
    family: i32,
    socktype: i32,
    protocol: i32,
    flags: i32,
    addr: SocketAddr,
    canon: Option<String>,
}

/// Calls `getaddrinfo`, reads the chain, frees it. `Err` is (return value, last error).
fn gai(
    node: Option<&str>,
    service: Option<&str>,
    hints: Option<ADDRINFOA>,
) -> Result<Vec<Entry>, (i32, i32)> {
    let node = node.map(c);
    let service = service.map(c);
    let hints_ptr = hints.as_ref().map_or(null(), |h| h as *const ADDRINFOA);
    let mut res: *mut ADDRINFOA = std::ptr::dangling_mut::<ADDRINFOA>();
    sentinel();
    let rc = unsafe {
        getaddrinfo(
            node.as_ref().map_or(null(), |v| v.as_ptr()),
            service.as_ref().map_or(null(), |v| v.as_ptr()),
            hints_ptr,
            &mut res,
        )
    };
    let err = last_error();
    if rc != 0 {
        assert!(res.is_null(), "failed getaddrinfo leaves *ppResult null");
        return Err((rc, err));
    }
    assert_eq!(err, 0, "a successful getaddrinfo sets the last error to 0");
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        let ai = unsafe { &*p };
        out.push(Entry {
            family: ai.ai_family,
            socktype: ai.ai_socktype,
            protocol: ai.ai_protocol,
            flags: ai.ai_flags,
            addr: unsafe { sockaddr_of(ai.ai_addr, ai.ai_addrlen) },
            canon: (!ai.ai_canonname.is_null()).then(|| unsafe {
                CStr::from_ptr(ai.ai_canonname as *const _)
                    .to_string_lossy()
                    .into_owned()
            }),
        });
        p = ai.ai_next;
    }
    unsafe { freeaddrinfo(res) };
    Ok(out)
}

fn hints(flags: u32, family: u16, socktype: i32, protocol: i32) -> ADDRINFOA {
    ADDRINFOA {
        ai_flags: flags as i32,
        ai_family: i32::from(family),
        ai_socktype: socktype,
        ai_protocol: protocol,
        ..Default::default()
    }
}

fn addrs(v: &[Entry]) -> Vec<SocketAddr> {
    v.iter().map(|e| e.addr).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn pton4(s: &str) -> (i32, i32, u32) {
    let mut out: u32 = 0xdead_beef;
    sentinel();
    let t = c(s);
    let rc = unsafe {
        inet_pton(
            AF_INET as i32,
            t.as_ptr(),
            &mut out as *mut u32 as *mut c_void,
        )
    };
    (rc, last_error(), out)
}

fn pton6(s: &str) -> (i32, i32, [u8; 16]) {
    let mut out = [0xabu8; 16];
    sentinel();
    let t = c(s);
    let rc = unsafe { inet_pton(AF_INET6 as i32, t.as_ptr(), out.as_mut_ptr() as *mut c_void) };
    (rc, last_error(), out)
}

fn ntop6(a: [u8; 16]) -> String {
    let mut buf = [0u8; INET6_ADDRSTRLEN as usize];
    let p = unsafe {
        inet_ntop(
            AF_INET6 as i32,
            a.as_ptr() as *const c_void,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    assert_eq!(p, buf.as_ptr() as PCSTR, "inet_ntop returns the buffer");
    from_c(&buf)
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().expect("test address").octets()
}

// ---------------------------------------------------------------- byte order, FD_ISSET

/// Microsoft "htons function": host to TCP/IP network byte order (big-endian), and back.
#[test]
fn byte_order_functions_convert_to_and_from_big_endian() {
    unsafe {
        assert_eq!(htons(0x1234), 0x1234u16.to_be());
        assert_eq!(htonl(0x1234_5678), 0x1234_5678u32.to_be());
        assert_eq!(ntohs(htons(0xbeef)), 0xbeef);
        assert_eq!(ntohl(htonl(0xdead_beef)), 0xdead_beef);
        assert_eq!(htons(7).to_ne_bytes(), [0, 7]);
    }
}

/// Microsoft "fd_set structure": `FD_ISSET` calls `__WSAFDIsSet`, which looks at the first
/// `fd_count` of the 64 entries.
#[test]
fn fd_isset_sees_only_the_first_fd_count_entries() {
    let mut set: FD_SET = unsafe { zeroed() };
    set.fd_count = 2;
    set.fd_array[0] = 0x104;
    set.fd_array[1] = 0x108;
    set.fd_array[2] = 0x10c;
    unsafe {
        assert_ne!(__WSAFDIsSet(0x104, &mut set), 0);
        assert_ne!(__WSAFDIsSet(0x108, &mut set), 0);
        assert_eq!(__WSAFDIsSet(0x10c, &mut set), 0, "beyond fd_count");
        assert_eq!(__WSAFDIsSet(0x110, &mut set), 0);
        assert_eq!(__WSAFDIsSet(0x104, null_mut()), 0, "null set");
        set.fd_count = 1000;
        assert_ne!(__WSAFDIsSet(0x10c, &mut set), 0, "fd_count is capped at 64");
    }
}

/// `FD_ISSET` after `select`: the set holds the ready socket.
#[test]
fn fd_isset_after_select_reports_the_readable_socket() {
    let _net = started();
    unsafe {
        let s = socket(AF_INET as i32, SOCK_DGRAM, IPPROTO_UDP);
        assert_ne!(s, INVALID_SOCKET);
        let mut a: SOCKADDR_IN = zeroed();
        a.sin_family = AF_INET;
        a.sin_port = htons(5555);
        let t = c("10.0.0.1");
        assert_eq!(
            inet_pton(
                AF_INET as i32,
                t.as_ptr(),
                &mut a.sin_addr as *mut _ as *mut c_void
            ),
            1
        );
        assert_eq!(bind(s, &a as *const _ as *const SOCKADDR, 16), 0);
        assert_eq!(
            sendto(
                s,
                b"x".as_ptr(),
                1,
                0,
                &a as *const _ as *const SOCKADDR,
                16
            ),
            1
        );
        let mut set: FD_SET = zeroed();
        set.fd_count = 1;
        set.fd_array[0] = s;
        let tv = TIMEVAL {
            tv_sec: 5,
            tv_usec: 0,
        };
        assert_eq!(
            select(0, &mut set, null_mut(), null_mut(), &tv),
            1,
            "{}",
            last_error()
        );
        assert_ne!(__WSAFDIsSet(s, &mut set), 0);
        assert_eq!(closesocket(s), 0);
    }
}

// ---------------------------------------------------------------- inet_pton

/// Wine `test_inet_pton` (ipv4_tests): `inet_pton(AF_INET)` takes only strict dotted quads and
/// leaves the last error alone when the text is not an address.
#[test]
fn inet_pton_ipv4_takes_only_strict_dotted_quads() {
    let ok = [
        ("1.1.1.1", [1, 1, 1, 1]),
        ("0.0.0.0", [0, 0, 0, 0]),
        ("127.127.127.255", [127, 127, 127, 255]),
        ("10.0.0.2", [10, 0, 0, 2]),
    ];
    for (s, a) in ok {
        let (rc, err, out) = pton4(s);
        assert_eq!((rc, err), (1, SENTINEL), "{s}");
        assert_eq!(out.to_ne_bytes(), a, "{s}");
    }
    let bad = [
        "",
        " ",
        "127.127.127.255:123",
        "127.127.127.256",
        "a",
        "1.1.1.0xaA",
        "1.1.1.0x",
        "1.1.1.010",
        "1.1.1.00",
        "1.1.1.0a",
        "1.1.1.-2",
        "1",
        "1.2",
        "1.2.3",
        "203569230",
        "3.4.5.6.7",
        " 3.4.5.6",
        "\t3.4.5.6",
        "3.4.5.6 ",
        "3. 4.5.6",
        "[0.1.2.3]",
        "0x00010203",
        "0777",
        "2607:f0d0:1002:51::4",
        "::1",
        ":1",
    ];
    for s in bad {
        let (rc, err, _) = pton4(s);
        assert_eq!((rc, err), (0, SENTINEL), "{s:?}");
    }
}

/// Wine `test_inet_pton` (ipv6_tests): accepted and refused IPv6 text, including Windows'
/// refusal of a leading `::` followed by seven groups.
#[test]
fn inet_pton_ipv6_follows_windows() {
    let ok = [
        ("0:0:0:0:0:0:0:1", "::1"),
        ("0:0:0:0:0:0:0::", "::"),
        ("0:0:0:0:0:0:13.1.68.3", "::13.1.68.3"),
        ("0:0:0:0:0:FFFF:129.144.52.38", "::ffff:129.144.52.38"),
        ("1080:0:0:0:8:800:200c:417a", "1080::8:800:200c:417a"),
        (
            "1111:2222:3333:4444:5555:6666:7777::",
            "1111:2222:3333:4444:5555:6666:7777:0",
        ),
        (
            "1111::3333:4444:5555:6666:7777:8888",
            "1111:0:3333:4444:5555:6666:7777:8888",
        ),
        ("1::001.2.3.4", "1::102:304"),
        (
            "2001:0000:1234:0000:0000:C1C0:ABCD:0876",
            "2001:0:1234::c1c0:abcd:876",
        ),
        ("::", "::"),
        ("::0:0:0:0:0:0", "::"),
        ("::123.123.123.123", "::123.123.123.123"),
        ("fd00::2", "fd00::2"),
    ];
    for (s, expect) in ok {
        let (rc, err, out) = pton6(s);
        assert_eq!((rc, err), (1, SENTINEL), "{s}");
        assert_eq!(out, v6(expect), "{s}");
    }
    let bad = [
        "::0:0:0:0:0:0:0",
        "::0:a:b:c:d:e:f",
        "1111:2222:3333:4444:5555:6666::7777:8888",
        "1111:2222:3333:4444:0x5555:6666:7777:8888",
        "1111:2222:3333:4444:5555::08888",
        "1111:2222:3333:4444:5555:6666::1.2.3.4",
        "1::0001.2.3.4",
        "1::1.2.3.256",
        "1::1.2.3",
        "1::1a.2.3.4",
        "1::2::3",
        "::%16",
        "::/16",
        "[::]",
        ":",
        "1111::5555:",
        "1111:2222:::",
        "1.2.3.4",
        "1111",
        "2001:0000:1234:0000:0000:C1C0:ABCD:0876  0",
    ];
    for s in bad {
        let (rc, err, _) = pton6(s);
        assert_eq!((rc, err), (0, SENTINEL), "{s:?}");
    }
}

/// Wine `test_inet_pton`: a null string is `WSAEFAULT`, checked before the family.
#[test]
fn inet_pton_null_string_is_wsaefault() {
    let mut buf = [0u8; 16];
    for family in [AF_UNSPEC, AF_INET] {
        sentinel();
        let rc = unsafe { inet_pton(family as i32, null(), buf.as_mut_ptr() as *mut c_void) };
        assert_eq!((rc, last_error()), (-1, WSAEFAULT));
    }
    sentinel();
    let t = c("1.2.3.4");
    let rc = unsafe { inet_pton(AF_INET as i32, t.as_ptr(), null_mut()) };
    assert_eq!((rc, last_error()), (-1, WSAEFAULT), "null buffer");
}

/// Wine `test_inet_pton`: `AF_UNSPEC` (or any other family) is `WSAEAFNOSUPPORT`.
#[test]
fn inet_pton_other_family_is_wsaeafnosupport() {
    let mut buf = [0u8; 16];
    for (family, s) in [
        (AF_UNSPEC as i32, "127.0.0.1"),
        (AF_UNSPEC as i32, "2607:f0d0:1002:51::4"),
        (10, "::1"),
    ] {
        sentinel();
        let t = c(s);
        let rc = unsafe { inet_pton(family, t.as_ptr(), buf.as_mut_ptr() as *mut c_void) };
        assert_eq!((rc, last_error()), (-1, WSAEAFNOSUPPORT), "{family} {s}");
    }
}

/// Wine `test_inet_pton`: `InetPtonW` converts the same text, and unlike `inet_pton` sets
/// `WSAEINVAL` for text that is not an address.
#[test]
fn inet_ptonw_sets_wsaeinval_for_text_that_is_not_an_address() {
    let mut out = [0u8; 16];
    sentinel();
    let t = w("10.0.0.2");
    let rc = unsafe { InetPtonW(AF_INET as i32, t.as_ptr(), out.as_mut_ptr() as *mut c_void) };
    assert_eq!((rc, last_error()), (1, SENTINEL));
    assert_eq!(out[..4], [10, 0, 0, 2]);
    let t = w("fd00::2");
    let rc = unsafe { InetPtonW(AF_INET6 as i32, t.as_ptr(), out.as_mut_ptr() as *mut c_void) };
    assert_eq!(rc, 1);
    assert_eq!(out, v6("fd00::2"));
    for s in ["1.2.3", "0x1111", "::1::"] {
        sentinel();
        let t = w(s);
        let fam = if s.contains(':') { AF_INET6 } else { AF_INET };
        let rc = unsafe { InetPtonW(fam as i32, t.as_ptr(), out.as_mut_ptr() as *mut c_void) };
        assert_eq!((rc, last_error()), (0, WSAEINVAL), "{s}");
    }
    sentinel();
    let rc = unsafe { InetPtonW(AF_INET as i32, null(), out.as_mut_ptr() as *mut c_void) };
    assert_eq!((rc, last_error()), (-1, WSAEFAULT));
}

// ---------------------------------------------------------------- inet_addr, inet_ntoa

/// Wine `test_inet_addr`: the classic forms (fewer parts, hex, octal), text ending at
/// whitespace, `INADDR_NONE` otherwise, and the last error untouched.
#[test]
fn inet_addr_takes_the_classic_forms() {
    let table: &[(&str, u32)] = &[
        ("1.2.3.4", 0x04030201),
        ("1 2 3 4", 0x01000000),
        ("1.2.3. 4", 0xffffffff),
        ("1.2.3 .4", 0x03000201),
        ("3.4.5.6.7", 0xffffffff),
        ("3.4.5.6. 7", 0xffffffff),
        ("3.4.5.6  7", 0x06050403),
        (" 3.4.5.6", 0xffffffff),
        ("\t3.4.5.6", 0xffffffff),
        ("3.4.5.6 ", 0x06050403),
        ("3. 4.5.6", 0xffffffff),
        ("3 .4.5.6", 0x03000000),
        (".1.2.3", 0xffffffff),
        ("0.0.0.0", 0x00000000),
        ("", 0xffffffff),
        (" 0", 0xffffffff),
        ("0xa1a2b3b4 ", 0xb4b3a2a1),
        (".", 0xffffffff),
        (" ", 0x00000000),
        ("\t", 0xffffffff),
        ("  ", 0xffffffff),
        ("127.127.127.255", 0xff7f7f7f),
        ("127.127.127.255:123", 0xffffffff),
        ("127.127.127.256", 0xffffffff),
        ("a", 0xffffffff),
        ("1.2.3.0xaA", 0xaa030201),
        ("1.1.1.0x", 0xffffffff),
        ("1.2.3.010", 0x08030201),
        ("1.2.3.00", 0x00030201),
        ("1.2.3.0a", 0xffffffff),
        ("1.1.1.0o10", 0xffffffff),
        ("1.1.1.-2", 0xffffffff),
        ("1", 0x01000000),
        ("1.2", 0x02000001),
        ("1.2.3", 0x03000201),
        ("203569230", 0x4e38220c),
        ("[0.1.2.3]", 0xffffffff),
        ("0x00010203", 0x03020100),
        ("0x2134", 0x34210000),
        ("1234BEEF", 0xffffffff),
        ("017700000001", 0x0100007f),
        ("0777", 0xff010000),
        ("2607:f0d0:1002:51::4", 0xffffffff),
        ("::1", 0xffffffff),
    ];
    for (s, expect) in table {
        sentinel();
        let t = c(s);
        let got = unsafe { inet_addr(t.as_ptr()) };
        assert_eq!(
            (got, last_error()),
            (u32::from_le(*expect), SENTINEL),
            "{s:?}"
        );
    }
    // "1.2.3" followed by any non-digit byte: whitespace ends the address, anything else spoils it.
    for b in 1u8..=255 {
        if b.is_ascii_digit() {
            continue;
        }
        let t = [b'1', b'.', b'2', b'.', b'3', b, 0];
        let expect = if b.is_ascii_whitespace() || b == 0x0b {
            u32::from_le(0x03000201)
        } else {
            INADDR_NONE
        };
        assert_eq!(unsafe { inet_addr(t.as_ptr()) }, expect, "byte {b:#x}");
    }
}

/// Wine `test_inet_addr`: a null pointer is `INADDR_NONE` with `WSAEFAULT`.
#[test]
fn inet_addr_null_is_inaddr_none_with_wsaefault() {
    sentinel();
    assert_eq!(unsafe { inet_addr(null()) }, INADDR_NONE);
    assert_eq!(last_error(), WSAEFAULT);
}

/// Wine `test_inet_ntoa`: each thread has its own buffer; another thread's call does not
/// overwrite this thread's text.
#[test]
fn inet_ntoa_keeps_one_buffer_per_thread() {
    let a = IN_ADDR {
        S_un: IN_ADDR_0 {
            S_addr: u32::from_ne_bytes([1, 2, 3, 4]),
        },
    };
    let p = unsafe { inet_ntoa(a) };
    assert_eq!(
        unsafe { CStr::from_ptr(p as *const _) }.to_str(),
        Ok("1.2.3.4")
    );
    std::thread::spawn(|| {
        let b = IN_ADDR {
            S_un: IN_ADDR_0 {
                S_addr: u32::from_ne_bytes([4, 3, 2, 1]),
            },
        };
        let q = unsafe { inet_ntoa(b) };
        assert_eq!(
            unsafe { CStr::from_ptr(q as *const _) }.to_str(),
            Ok("4.3.2.1")
        );
    })
    .join()
    .expect("thread");
    assert_eq!(
        unsafe { CStr::from_ptr(p as *const _) }.to_str(),
        Ok("1.2.3.4")
    );
    let max = IN_ADDR {
        S_un: IN_ADDR_0 { S_addr: u32::MAX },
    };
    let p = unsafe { inet_ntoa(max) };
    assert_eq!(
        unsafe { CStr::from_ptr(p as *const _) }.to_str(),
        Ok("255.255.255.255")
    );
}

// ---------------------------------------------------------------- inet_ntop

/// Wine `test_addr_to_print`: IPv4 text, and IPv6 text with Windows' zero compression and
/// dotted IPv4 tails (compatible `::a.b.c.d`, mapped, ISATAP); a single zero group is not
/// compressed.
#[test]
fn inet_ntop_formats_like_windows() {
    let mut buf = [0u8; 16];
    let a = [21u8, 16, 32, 32];
    let p = unsafe {
        inet_ntop(
            AF_INET as i32,
            a.as_ptr() as *const c_void,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    assert_eq!(p, buf.as_ptr() as PCSTR);
    assert_eq!(from_c(&buf), "21.16.32.32");
    let cases: [([u8; 16], &str); 10] = [
        (
            [
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0xcc, 0x98, 0xbd, 0x74,
            ],
            "::fffe:cc98:bd74",
        ),
        (
            [0x20, 0x30, 0xa4, 0xb1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "2030:a4b1::",
        ),
        (
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xcc, 0x98, 0xbd, 0x74],
            "::204.152.189.116",
        ),
        (v6("::ffff:10.0.0.2"), "::ffff:10.0.0.2"),
        (v6("::1"), "::1"),
        (v6("::"), "::"),
        (v6("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7"),
        (v6("1:0:0:2:0:0:0:3"), "1:0:0:2::3"),
        (v6("fe80::5efe:10.1.2.3"), "fe80::5efe:10.1.2.3"),
        (v6("FD00::2"), "fd00::2"),
    ];
    for (a, expect) in cases {
        assert_eq!(ntop6(a), expect);
    }
}

/// Wine `test_addr_to_print`: another family is `WSAEAFNOSUPPORT`; a null buffer, a zero size
/// or a buffer one byte short is `WSAEINVAL` (Windows 7's code); exactly enough is fine.
#[test]
fn inet_ntop_errors_and_buffer_sizes() {
    let a = [21u8, 16, 32, 32];
    let mut buf = [0u8; 32];
    let ap = a.as_ptr() as *const c_void;
    unsafe {
        sentinel();
        assert!(inet_ntop(1, ap, buf.as_mut_ptr(), buf.len()).is_null());
        assert_eq!(last_error(), WSAEAFNOSUPPORT);
        sentinel();
        assert!(inet_ntop(AF_INET as i32, ap, null_mut(), 16).is_null());
        assert_eq!(last_error(), WSAEINVAL);
        sentinel();
        assert!(inet_ntop(AF_INET as i32, ap, buf.as_mut_ptr(), 0).is_null());
        assert_eq!(last_error(), WSAEINVAL);
        sentinel();
        assert!(
            inet_ntop(AF_INET as i32, ap, buf.as_mut_ptr(), 11).is_null(),
            "\"21.16.32.32\" needs 12"
        );
        assert_eq!(last_error(), WSAEINVAL);
        assert!(!inet_ntop(AF_INET as i32, ap, buf.as_mut_ptr(), 12).is_null());
        let a6 = [
            0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0xcc, 0x98, 0xbd, 0x74,
        ];
        let a6p = a6.as_ptr() as *const c_void;
        sentinel();
        assert!(inet_ntop(AF_INET6 as i32, a6p, buf.as_mut_ptr(), 16).is_null());
        assert_eq!(last_error(), WSAEINVAL);
        assert!(!inet_ntop(AF_INET6 as i32, a6p, buf.as_mut_ptr(), 17).is_null());
        sentinel();
        assert!(inet_ntop(AF_INET as i32, null(), buf.as_mut_ptr(), buf.len()).is_null());
        assert_eq!(last_error(), WSAEFAULT, "null address");
    }
}

/// Microsoft "InetNtopW function": the UTF-16 version, size in characters.
#[test]
fn inet_ntopw_writes_utf16_text() {
    let a = v6("fe80::1");
    let mut buf = [0u16; 46];
    let p = unsafe {
        InetNtopW(
            AF_INET6 as i32,
            a.as_ptr() as *const c_void,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    assert_eq!(p, buf.as_ptr() as PCWSTR);
    assert_eq!(from_w(&buf), "fe80::1");
    sentinel();
    let p = unsafe {
        InetNtopW(
            AF_INET6 as i32,
            a.as_ptr() as *const c_void,
            buf.as_mut_ptr(),
            7,
        )
    };
    assert!(p.is_null());
    assert_eq!(last_error(), WSAEINVAL);
}

// ---------------------------------------------------------------- WSAAddressToString

fn sin(ip: [u8; 4], port: u16) -> SOCKADDR_IN {
    let mut s: SOCKADDR_IN = unsafe { zeroed() };
    s.sin_family = AF_INET;
    s.sin_port = port.to_be();
    s.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
    s
}

fn sin6(ip: &str, scope: u32, port: u16) -> SOCKADDR_IN6 {
    let mut s: SOCKADDR_IN6 = unsafe { zeroed() };
    s.sin6_family = AF_INET6;
    s.sin6_port = port.to_be();
    s.sin6_addr.u.Byte = v6(ip);
    s.Anonymous.sin6_scope_id = scope;
    s
}

fn a2s(sa: *const SOCKADDR, len: u32) -> Result<(String, u32), (i32, i32, u32)> {
    let mut buf = [0u8; 64];
    let mut n = buf.len() as u32;
    sentinel();
    let rc = unsafe { WSAAddressToStringA(sa, len, null(), buf.as_mut_ptr(), &mut n) };
    if rc == 0 {
        Ok((from_c(&buf), n))
    } else {
        Err((rc, last_error(), n))
    }
}

/// Wine `test_WSAAddressToString`: IPv4 with the port when nonzero; IPv6 with `%scope` and
/// `[...]:port`; the length returned counts the NUL.
#[test]
fn wsa_address_to_string_formats_ports_scopes_and_brackets() {
    let _net = started();
    let v4 = [
        (sin([0, 0, 0, 0], 0), "0.0.0.0"),
        (sin([255, 255, 255, 255], 0), "255.255.255.255"),
        (sin([0, 0, 0, 0], 65535), "0.0.0.0:65535"),
        (sin([255, 255, 255, 255], 65535), "255.255.255.255:65535"),
    ];
    for (s, expect) in v4 {
        let got = a2s(&s as *const _ as *const SOCKADDR, 16);
        assert_eq!(got, Ok((expect.to_string(), expect.len() as u32 + 1)));
    }
    let v6s = [
        (sin6("::1", 0, 0), "::1"),
        (sin6("20ab::1", 0, 0), "20ab::1"),
        (sin6("20ab::2001", 0, 33274), "[20ab::2001]:33274"),
        (sin6("20ab::2001", 4660, 33274), "[20ab::2001%4660]:33274"),
        (sin6("20ab::2001", 4660, 0), "20ab::2001%4660"),
    ];
    for (s, expect) in v6s {
        let got = a2s(&s as *const _ as *const SOCKADDR, 28);
        assert_eq!(got, Ok((expect.to_string(), expect.len() as u32 + 1)));
    }
}

/// Wine `test_WSAAddressToString`: a buffer too small (or null) is `WSAEFAULT` and the length
/// receives the size needed.
#[test]
fn wsa_address_to_string_short_buffer_is_wsaefault_with_the_size_needed() {
    let _net = started();
    let s = sin([0, 0, 0, 0], 0);
    let mut buf = [0u8; 8];
    let mut len = 0u32;
    sentinel();
    let rc = unsafe {
        WSAAddressToStringA(
            &s as *const _ as *const SOCKADDR,
            16,
            null(),
            buf.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!((rc, last_error(), len), (SOCKET_ERROR, WSAEFAULT, 8));
    let mut len = 0u32;
    sentinel();
    let rc = unsafe {
        WSAAddressToStringW(
            &s as *const _ as *const SOCKADDR,
            16,
            null(),
            null_mut(),
            &mut len,
        )
    };
    assert_eq!((rc, last_error(), len), (SOCKET_ERROR, WSAEFAULT, 8));
    let mut wbuf = [0u16; 64];
    let mut len = wbuf.len() as u32;
    let rc = unsafe {
        WSAAddressToStringW(
            &s as *const _ as *const SOCKADDR,
            16,
            null(),
            wbuf.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!((rc, len), (0, 8));
    assert_eq!(from_w(&wbuf), "0.0.0.0");
}

/// Microsoft "WSAAddressToStringA function": an address length short for its family is
/// `WSAEFAULT`, another family `WSAEINVAL`, and before `WSAStartup` `WSANOTINITIALISED`.
#[test]
fn wsa_address_to_string_rejects_bad_addresses() {
    let net = not_started();
    let s = sin([1, 2, 3, 4], 0);
    assert_eq!(
        a2s(&s as *const _ as *const SOCKADDR, 16),
        Err((SOCKET_ERROR, WSANOTINITIALISED, 64))
    );
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    assert_eq!(
        a2s(&s as *const _ as *const SOCKADDR, 15),
        Err((SOCKET_ERROR, WSAEFAULT, 64))
    );
    let s6 = sin6("::1", 0, 0);
    assert_eq!(
        a2s(&s6 as *const _ as *const SOCKADDR, 16),
        Err((SOCKET_ERROR, WSAEFAULT, 64))
    );
    let mut other = sin([1, 2, 3, 4], 0);
    other.sin_family = 17;
    assert_eq!(
        a2s(&other as *const _ as *const SOCKADDR, 16),
        Err((SOCKET_ERROR, WSAEINVAL, 64))
    );
    assert_eq!(a2s(null(), 16), Err((SOCKET_ERROR, WSAEFAULT, 64)));
    drop(net);
}

// ---------------------------------------------------------------- WSAStringToAddress

fn s2a(text: &str, family: u16) -> Result<(SocketAddr, i32), (i32, i32, i32, u16)> {
    let mut storage = [0xabu8; 40];
    let mut len = 38i32;
    sentinel();
    let t = c(text);
    let rc = unsafe {
        WSAStringToAddressA(
            t.as_ptr(),
            family as i32,
            null(),
            storage.as_mut_ptr() as *mut SOCKADDR,
            &mut len,
        )
    };
    if rc == 0 {
        Ok((
            unsafe { sockaddr_of(storage.as_ptr() as *const SOCKADDR, len as usize) },
            len,
        ))
    } else {
        Err((
            rc,
            last_error(),
            len,
            u16::from_ne_bytes([storage[0], storage[1]]),
        ))
    }
}

/// Wine `test_WSAStringToAddress` (ipv4_tests): the classic forms with an optional port in
/// decimal, octal or hex (1..=65535); failures are `WSAEINVAL`, the family zeroed and the
/// length untouched.
#[test]
fn wsa_string_to_address_ipv4_takes_classic_forms_and_ports() {
    let _net = started();
    let ok: &[(&str, [u8; 4], u16)] = &[
        ("1.1.1.1", [1, 1, 1, 1], 0),
        ("127.127.127.127:123", [127, 127, 127, 127], 123),
        ("127.127.127.127:65535", [127, 127, 127, 127], 65535),
        ("127.127.127.127:0xAbCd", [127, 127, 127, 127], 43981),
        ("127.127.127.127:010", [127, 127, 127, 127], 8),
        ("1.1.1.0xaA", [1, 1, 1, 0xaa], 0),
        ("1.1.1.010", [1, 1, 1, 8], 0),
        ("1.1.1.00", [1, 1, 1, 0], 0),
        ("1", [0, 0, 0, 1], 0),
        ("1:1", [0, 0, 0, 1], 1),
        ("1.2", [1, 0, 0, 2], 0),
        ("1.2.3", [1, 2, 0, 3], 0),
        ("203569230:123", [0x0c, 0x22, 0x38, 0x4e], 123),
        ("1.223756", [1, 3, 0x6a, 0x0c], 0),
        ("0x00010203", [0, 1, 2, 3], 0),
        ("0x123456789", [0x23, 0x45, 0x67, 0x89], 0),
        ("017700000001", [127, 0, 0, 1], 0),
        ("0777:10", [0, 0, 1, 0xff], 10),
    ];
    for (s, ip, port) in ok {
        assert_eq!(
            s2a(s, AF_INET),
            Ok((SocketAddr::from((*ip, *port)), 16)),
            "{s}"
        );
    }
    let bad = [
        "",
        " ",
        "127.127.127.127:",
        "127.127.127.127:0",
        "127.127.127.127:65537",
        "127.127.127.127::1",
        "127.127.127.127:0x",
        "127.127.127.127:0x10000",
        "127.127.127.127:08",
        "127.127.127.127:0a",
        "255.255.255.256",
        "a",
        "1.1.1.0x",
        "1.1.1.0x100",
        "1.1.1.08",
        "1.1.1.0a",
        "1.1.1.-2",
        "-1",
        "1000.2000",
        "1.2.",
        "1..2",
        "1.2.3.",
        "2001::1",
        "756.3.4",
        "3.4.65536",
        "3.4.5.6.7",
        "3.4.5.+6",
        " 3.4.5.6",
        "3.4.5.6 ",
        "3.4.5.6:7 ",
        "3.4.5.6: 7",
        "[0.1.2.3]",
        "0x00010Q03",
        "x00010203",
        "1234BEEF",
        "::1",
    ];
    for s in bad {
        assert_eq!(
            s2a(s, AF_INET),
            Err((SOCKET_ERROR, WSAEINVAL, 38, 0)),
            "{s:?}"
        );
    }
}

/// Wine `test_WSAStringToAddress` (ipv6_tests): plain, bracketed, bracketed with a port, and
/// `%scope`; `::1]:65535`, a leading `::` with seven groups and IPv4 text are refused.
#[test]
fn wsa_string_to_address_ipv6_takes_brackets_ports_and_scopes() {
    let _net = started();
    let ok = [
        ("::1", "[::1]:0"),
        ("[::1]", "[::1]:0"),
        ("[::1]:65535", "[::1]:65535"),
        ("2001::1", "[2001::1]:0"),
        ("001::1", "[1::1]:0"),
        ("fe80::1%4660", "[fe80::1%4660]:0"),
        ("[fe80::1%3]:80", "[fe80::1%3]:80"),
    ];
    for (s, expect) in ok {
        assert_eq!(s2a(s, AF_INET6), Ok((sa(expect), 28)), "{s}");
    }
    for s in [
        "::1]:65535",
        "::1:2:3:4:5:6:7",
        "1.2.3.4",
        "1:2:3:",
        "",
        "[::1]:0",
        "[::1",
        "fe80::1%",
    ] {
        assert_eq!(
            s2a(s, AF_INET6),
            Err((SOCKET_ERROR, WSAEINVAL, 38, 0)),
            "{s:?}"
        );
    }
}

/// Wine `test_WSAStringToAddress`: a length smaller than the address is `WSAEFAULT`, and the
/// length receives the size needed; another family is `WSAEINVAL`; the W version agrees.
#[test]
fn wsa_string_to_address_short_length_is_wsaefault_with_the_size_needed() {
    let _net = started();
    let mut out: SOCKADDR_IN6 = unsafe { zeroed() };
    let t = c("1.1.1.1");
    for (family, need) in [(AF_INET, 16), (AF_INET6, 28)] {
        let mut len = 0i32;
        sentinel();
        let rc = unsafe {
            WSAStringToAddressA(
                t.as_ptr(),
                family as i32,
                null(),
                &mut out as *mut _ as *mut SOCKADDR,
                &mut len,
            )
        };
        assert_eq!((rc, last_error(), len), (SOCKET_ERROR, WSAEFAULT, need));
    }
    let mut len = 28i32;
    sentinel();
    let rc = unsafe {
        WSAStringToAddressA(
            t.as_ptr(),
            17,
            null(),
            &mut out as *mut _ as *mut SOCKADDR,
            &mut len,
        )
    };
    assert_eq!((rc, last_error()), (SOCKET_ERROR, WSAEINVAL));
    let tw = w("[fd00::2]:7");
    let mut len = 28i32;
    let rc = unsafe {
        WSAStringToAddressW(
            tw.as_ptr(),
            AF_INET6 as i32,
            null(),
            &mut out as *mut _ as *mut SOCKADDR,
            &mut len,
        )
    };
    assert_eq!((rc, len), (0, 28));
    assert_eq!(
        unsafe { sockaddr_of(&out as *const _ as *const SOCKADDR, 28) },
        sa("[fd00::2]:7")
    );
}

/// Microsoft "WSAStringToAddressA function": `WSANOTINITIALISED` before `WSAStartup`.
#[test]
fn wsa_string_to_address_before_startup_is_wsanotinitialised() {
    let _net = not_started();
    assert_eq!(
        s2a("1.2.3.4", AF_INET),
        Err((SOCKET_ERROR, WSANOTINITIALISED, 38, 0xabab))
    );
}

// ---------------------------------------------------------------- getaddrinfo

/// Wine `test_getaddrinfo`: both node and service null is `WSAHOST_NOT_FOUND` (EAI_NONAME),
/// returned and set as the last error, with `*ppResult` null.
#[test]
fn getaddrinfo_null_node_and_service_is_host_not_found() {
    let _net = started();
    assert_eq!(
        gai(None, None, None),
        Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND))
    );
}

/// Microsoft "getaddrinfo function": `WSANOTINITIALISED` before `WSAStartup`.
#[test]
fn getaddrinfo_before_startup_is_wsanotinitialised() {
    let _net = not_started();
    assert_eq!(
        gai(Some("server"), None, None),
        Err((WSANOTINITIALISED, WSANOTINITIALISED))
    );
}

/// Microsoft "getaddrinfo function", Remarks: a null node with `AI_PASSIVE` gives the wildcard
/// addresses (for `bind`), without it the loopback addresses; IPv6 first.
#[test]
fn getaddrinfo_null_node_gives_wildcard_with_ai_passive_else_loopback() {
    let _net = started();
    let r = gai(
        None,
        Some("27015"),
        Some(hints(AI_PASSIVE, AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP)),
    )
    .expect("passive");
    assert_eq!(addrs(&r), [sa("[::]:27015"), sa("0.0.0.0:27015")]);
    let r = gai(
        None,
        Some("27015"),
        Some(hints(0, AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP)),
    )
    .expect("loopback");
    assert_eq!(addrs(&r), [sa("[::1]:27015"), sa("127.0.0.1:27015")]);
    let r = gai(
        None,
        Some("27015"),
        Some(hints(AI_PASSIVE, AF_INET, SOCK_STREAM, IPPROTO_TCP)),
    )
    .expect("v4");
    assert_eq!(addrs(&r), [sa("0.0.0.0:27015")]);
    // Wine test_getaddrinfo: a null node with service "0" equals one with service "".
    assert_eq!(gai(None, Some("0"), None), gai(None, Some(""), None));
}

/// Wine `test_getaddrinfo`: the empty node resolves like this computer's own name (this
/// host's addresses), and the last error is set to 0 on success.
#[test]
fn getaddrinfo_empty_node_is_this_host() {
    let _net = started();
    let r = gai(Some(""), None, None).expect("empty node");
    assert_eq!(addrs(&r), [sa("10.0.0.1:0"), sa("[fd00::1]:0")]);
    assert_eq!(gai(Some("client"), None, None), Ok(r));
}

/// Wine `test_getaddrinfo`: `localhost` resolves (to `::1` and `127.0.0.1`, loopback first
/// by RFC 6724 precedence 50 > 35).
#[test]
fn getaddrinfo_localhost_is_loopback() {
    let _net = started();
    let r = gai(Some("localhost"), Some("80"), None).expect("localhost");
    assert_eq!(addrs(&r), [sa("[::1]:80"), sa("127.0.0.1:80")]);
    let r = gai(Some("LocalHost"), None, Some(hints(0, AF_INET, 0, 0))).expect("v4");
    assert_eq!(addrs(&r), [sa("127.0.0.1:0")]);
}

/// Scenario hosts resolve by host name and machine name, with or without the domain suffix,
/// in any case, with an optional trailing dot.
#[test]
fn getaddrinfo_resolves_scenario_host_and_machine_names_with_and_without_domain() {
    let _net = started();
    for name in [
        "server",
        "SERVER",
        "Server",
        "server.wsock",
        "SERVER.WSOCK",
        "server.WSOCK.",
        "Server.Wsock",
    ] {
        let r = gai(
            Some(name),
            Some("7"),
            Some(hints(0, AF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP)),
        )
        .expect(name);
        assert_eq!(addrs(&r), [sa("10.0.0.2:7"), sa("[fd00::2]:7")], "{name}");
    }
    for name in ["server.other", "serv", "server.wsock.example", "wsock"] {
        assert_eq!(
            gai(Some(name), None, None),
            Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND)),
            "{name}"
        );
    }
}

/// RFC 6724 §2.1 default policy (Windows' default prefix policies): for AF_UNSPEC a public IPv4
/// address (precedence 35) comes before a unique-local fd00::/8 address (precedence 3), so the
/// default scenario's names give IPv4 first; with AF_INET6 only the IPv6 address is returned.
#[test]
fn getaddrinfo_unspec_order_follows_rfc6724_precedence() {
    let _net = started();
    let r = gai(Some("server"), None, None).expect("unspec");
    assert_eq!(
        r.iter().map(|e| e.family).collect::<Vec<_>>(),
        [AF_INET as i32, AF_INET6 as i32]
    );
    let r = gai(Some("server"), None, Some(hints(0, AF_INET6, 0, 0))).expect("v6");
    assert_eq!(addrs(&r), [sa("[fd00::2]:0")]);
    let r = gai(Some("server"), None, Some(hints(0, AF_INET, 0, 0))).expect("v4");
    assert_eq!(addrs(&r), [sa("10.0.0.2:0")]);
}

/// A scenario with global IPv6 addresses: IPv6 (precedence 40) comes before IPv4 (35), as on a
/// dual-stack Windows host.
#[test]
fn getaddrinfo_global_ipv6_comes_before_ipv4() {
    let mut scenario = Scenario::default_scenario();
    for h in &mut scenario.hosts {
        if h.name == "server" {
            h.ipv6 = "2001:db8::2".parse().expect("address");
        }
    }
    let net = Network::start(scenario).expect("network");
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    let r = gai(Some("server"), None, None).expect("server");
    assert_eq!(addrs(&r), [sa("[2001:db8::2]:0"), sa("10.0.0.2:0")]);
}

/// Wine `test_getaddrinfo`: numeric hosts convert without lookup; a bracketed IPv6 address is
/// accepted and a port after the brackets ignored; `%scope` is kept.
#[test]
fn getaddrinfo_numeric_hosts_convert_directly() {
    let _net = started();
    let r = gai(Some("192.168.1.253"), None, None).expect("v4");
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].family, r[0].addr),
        (AF_INET as i32, sa("192.168.1.253:0"))
    );
    for s in [
        "2a00:2039:dead:beef:cafe::6666",
        "[2a00:2039:dead:beef:cafe::6666]",
        "[2a00:2039:dead:beef:cafe::6666]:10239",
    ] {
        let r = gai(Some(s), None, None).expect(s);
        assert_eq!(addrs(&r), [sa("[2a00:2039:dead:beef:cafe::6666]:0")], "{s}");
    }
    let r = gai(Some("fe80::1%5"), Some("80"), None).expect("scoped");
    assert_eq!(addrs(&r), [sa("[fe80::1%5]:80")]);
}

/// Wine `test_getaddrinfo`: with `AI_NUMERICHOST` a name (`localhost`), `a.b.c.d:port` and
/// unmatched brackets are `WSAHOST_NOT_FOUND`; so is an address of the other family.
#[test]
fn getaddrinfo_ai_numerichost_refuses_names() {
    let _net = started();
    let h = Some(hints(AI_NUMERICHOST, AF_UNSPEC, 0, 0));
    for s in [
        "localhost",
        "server",
        "192.168.1.253:1024",
        "[beef::cafe",
        "beef::cafe]",
    ] {
        assert_eq!(
            gai(Some(s), Some("80"), h),
            Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND)),
            "{s}"
        );
    }
    let r = gai(
        Some("[beef::cafe]"),
        None,
        Some(hints(AI_NUMERICHOST, AF_INET6, 0, 0)),
    )
    .expect("v6");
    assert_eq!(addrs(&r), [sa("[beef::cafe]:0")]);
    assert_eq!(
        gai(
            Some("[beef::cafe]"),
            None,
            Some(hints(AI_NUMERICHOST, AF_INET, 0, 0))
        ),
        Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND))
    );
    assert_eq!(
        gai(Some("10.0.0.2"), None, Some(hints(0, AF_INET6, 0, 0))),
        Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND))
    );
}

/// Microsoft "getaddrinfo function" (AI_V4MAPPED): with AF_INET6, an IPv4 address comes back
/// IPv4-mapped.
#[test]
fn getaddrinfo_ai_v4mapped_maps_ipv4_for_af_inet6() {
    let _net = started();
    let r = gai(
        Some("10.0.0.2"),
        Some("7"),
        Some(hints(AI_V4MAPPED, AF_INET6, SOCK_DGRAM, 0)),
    )
    .expect("mapped");
    assert_eq!(addrs(&r), [sa("[::ffff:10.0.0.2]:7")]);
}

/// Microsoft "getaddrinfo function" (AI_CANONNAME): the first result carries the canonical name
/// (`host.domain` here), the others none; without a node it is `WSAEINVAL` (EAI_BADFLAGS).
#[test]
fn getaddrinfo_ai_canonname_names_the_first_result() {
    let _net = started();
    let r = gai(
        Some("SERVER"),
        None,
        Some(hints(AI_CANONNAME, AF_UNSPEC, SOCK_STREAM, 0)),
    )
    .expect("canon");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].canon.as_deref(), Some("server.wsock"));
    assert_eq!(r[1].canon, None);
    let r = gai(Some("server"), None, Some(hints(AI_FQDN, AF_INET, 0, 0))).expect("fqdn");
    assert_eq!(r[0].canon.as_deref(), Some("server.wsock"), "AI_FQDN");
    assert_eq!(
        gai(
            Some("server"),
            None,
            Some(hints(AI_FQDN | AI_CANONNAME, AF_INET, 0, 0))
        ),
        Err((WSAEINVAL, WSAEINVAL)),
        "AI_FQDN with AI_CANONNAME"
    );
    let r = gai(Some("server"), None, None).expect("no canon");
    assert!(r.iter().all(|e| e.canon.is_none()));
    assert_eq!(
        gai(None, Some("80"), Some(hints(AI_CANONNAME, AF_UNSPEC, 0, 0))),
        Err((WSAEINVAL, WSAEINVAL))
    );
}

/// Microsoft "getaddrinfo function" (pServiceName, `services` file): names and numbers; ""
/// is port 0 (Wine `test_getaddrinfo`); an unknown name is `WSATYPE_NOT_FOUND` (Wine:
/// "nonexistentservice"); with `AI_NUMERICSERV` a name is `WSAHOST_NOT_FOUND` (EAI_NONAME).
#[test]
fn getaddrinfo_service_names_and_numbers() {
    let _net = started();
    let port = |service: &str, socktype: i32| -> Result<u16, (i32, i32)> {
        gai(
            Some("server"),
            Some(service),
            Some(hints(0, AF_INET, socktype, 0)),
        )
        .map(|r| r[0].addr.port())
    };
    assert_eq!(port("http", SOCK_STREAM), Ok(80));
    assert_eq!(port("HTTP", 0), Ok(80));
    assert_eq!(port("echo", SOCK_DGRAM), Ok(7));
    assert_eq!(port("echo", SOCK_STREAM), Ok(7));
    assert_eq!(port("https", SOCK_STREAM), Ok(443));
    assert_eq!(port("27015", SOCK_STREAM), Ok(27015));
    assert_eq!(port("", SOCK_STREAM), Ok(0));
    assert_eq!(
        port("http", SOCK_DGRAM),
        Err((WSATYPE_NOT_FOUND, WSATYPE_NOT_FOUND)),
        "http is TCP only"
    );
    assert_eq!(
        port("nonexistentservice", 0),
        Err((WSATYPE_NOT_FOUND, WSATYPE_NOT_FOUND))
    );
    assert_eq!(
        port("65536", 0),
        Err((WSATYPE_NOT_FOUND, WSATYPE_NOT_FOUND))
    );
    assert_eq!(
        gai(
            Some("server"),
            Some("http"),
            Some(hints(AI_NUMERICSERV, AF_INET, 0, 0))
        ),
        Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND))
    );
    assert_eq!(
        gai(None, Some("nonexistentservice"), Some(hints(0, 0, 0, 0))),
        Err((WSATYPE_NOT_FOUND, WSATYPE_NOT_FOUND))
    );
}

/// Wine `test_getaddrinfo` (hinttests): each result echoes the hints' socket type and protocol,
/// even 0 or a mismatched pair; socket type 999 is `WSAESOCKTNOSUPPORT`.
#[test]
fn getaddrinfo_results_echo_hint_socktype_and_protocol() {
    let _net = started();
    let table = [
        (AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP, 0),
        (AF_UNSPEC, SOCK_STREAM, IPPROTO_UDP, 0),
        (AF_UNSPEC, SOCK_DGRAM, IPPROTO_TCP, 0),
        (AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0),
        (AF_UNSPEC, 0, IPPROTO_TCP, 0),
        (AF_UNSPEC, 0, IPPROTO_IPV6, 0),
        (AF_UNSPEC, SOCK_STREAM, 0, 0),
        (AF_INET, 0, 0, 0),
        (AF_UNSPEC, SOCK_STREAM, 999, 0),
        (AF_UNSPEC, 999, IPPROTO_TCP, WSAESOCKTNOSUPPORT),
        (AF_INET, 999, IPPROTO_UDP, WSAESOCKTNOSUPPORT),
    ];
    for (family, socktype, protocol, error) in table {
        let r = gai(
            Some("localhost"),
            None,
            Some(hints(0, family, socktype, protocol)),
        );
        if error != 0 {
            assert_eq!(r, Err((error, error)), "{family} {socktype} {protocol}");
            continue;
        }
        let r = r.expect("hint test");
        assert!(!r.is_empty());
        for e in &r {
            if family != AF_UNSPEC {
                assert_eq!(e.family, family as i32);
            }
            assert_eq!((e.socktype, e.protocol, e.flags), (socktype, protocol, 0));
        }
    }
}

/// Microsoft "getaddrinfo function": a hints family other than AF_UNSPEC, AF_INET, AF_INET6 is
/// `WSAEAFNOSUPPORT`; hints with `ai_addrlen`, `ai_canonname`, `ai_addr` or `ai_next` set are
/// `WSANO_RECOVERY`; a null `ppResult` is `WSAEFAULT`.
#[test]
fn getaddrinfo_rejects_bad_hints_and_null_result() {
    let _net = started();
    assert_eq!(
        gai(Some("server"), None, Some(hints(0, 17, 0, 0))),
        Err((WSAEAFNOSUPPORT, WSAEAFNOSUPPORT))
    );
    let mut h = hints(0, AF_UNSPEC, 0, 0);
    h.ai_addrlen = 16;
    assert_eq!(
        gai(Some("server"), None, Some(h)),
        Err((WSANO_RECOVERY, WSANO_RECOVERY))
    );
    let mut other = hints(0, 0, 0, 0);
    let mut h = hints(0, AF_UNSPEC, 0, 0);
    h.ai_next = &mut other;
    assert_eq!(
        gai(Some("server"), None, Some(h)),
        Err((WSANO_RECOVERY, WSANO_RECOVERY))
    );
    let t = c("server");
    sentinel();
    let rc = unsafe { getaddrinfo(t.as_ptr(), null(), null(), null_mut()) };
    assert_eq!((rc, last_error()), (WSAEFAULT, WSAEFAULT));
}

/// Wine `test_getaddrinfo`: every result has `ai_flags` 0 and `ai_addrlen` the size of its
/// `SOCKADDR_IN` (16) or `SOCKADDR_IN6` (28) (checked in `sockaddr_of`).
#[test]
fn getaddrinfo_results_have_windows_sizes_and_no_flags() {
    let _net = started();
    let r = gai(
        Some("server"),
        Some("7"),
        Some(hints(
            AI_CANONNAME | AI_ADDRCONFIG,
            AF_UNSPEC,
            SOCK_DGRAM,
            IPPROTO_UDP,
        )),
    )
    .expect("server");
    assert!(r.iter().all(|e| e.flags == 0));
    assert_eq!(r.len(), 2);
}

/// Microsoft "GetAddrInfoW function": the UTF-16 version, with a UTF-16 canonical name, freed
/// by `FreeAddrInfoW`.
#[test]
fn getaddrinfow_resolves_like_getaddrinfo() {
    let _net = started();
    let node = w("Server.WSOCK");
    let service = w("echo");
    let h = ADDRINFOW {
        ai_flags: AI_CANONNAME as i32,
        ai_family: i32::from(AF_INET),
        ai_socktype: SOCK_DGRAM,
        ..Default::default()
    };
    let mut res: *mut ADDRINFOW = null_mut();
    sentinel();
    let rc = unsafe { GetAddrInfoW(node.as_ptr(), service.as_ptr(), &h, &mut res) };
    assert_eq!((rc, last_error()), (0, 0));
    assert!(!res.is_null());
    unsafe {
        let ai = &*res;
        assert_eq!(sockaddr_of(ai.ai_addr, ai.ai_addrlen), sa("10.0.0.2:7"));
        let mut n = 0;
        while *ai.ai_canonname.add(n) != 0 {
            n += 1;
        }
        assert_eq!(
            String::from_utf16_lossy(std::slice::from_raw_parts(ai.ai_canonname, n)),
            "server.wsock"
        );
        assert!(ai.ai_next.is_null());
        FreeAddrInfoW(res);
    }
    let mut res: *mut ADDRINFOW = std::ptr::dangling_mut::<ADDRINFOW>();
    sentinel();
    let rc = unsafe { GetAddrInfoW(null(), null(), null(), &mut res) };
    assert_eq!((rc, last_error()), (WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND));
    assert!(res.is_null());
}

/// `freeaddrinfo(NULL)` and `FreeAddrInfoW(NULL)` do nothing.
#[test]
fn freeaddrinfo_null_is_a_no_op() {
    unsafe {
        freeaddrinfo(null());
        FreeAddrInfoW(null());
    }
}

/// `freeaddrinfo` frees exactly what `getaddrinfo` allocated: after many calls the thread's
/// live heap (bytes and blocks) is what it was before.
#[test]
fn getaddrinfo_and_freeaddrinfo_do_not_leak() {
    let _net = started();
    let node = c("server");
    let service = c("echo");
    let h = hints(AI_CANONNAME, AF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP);
    let node_w = w("client.wsock");
    let hw = ADDRINFOW {
        ai_flags: AI_CANONNAME as i32,
        ..Default::default()
    };
    let once = || unsafe {
        let mut res: *mut ADDRINFOA = null_mut();
        assert_eq!(
            getaddrinfo(node.as_ptr(), service.as_ptr(), &h, &mut res),
            0
        );
        assert!(!(*res).ai_next.is_null(), "two results");
        freeaddrinfo(res);
        let mut resw: *mut ADDRINFOW = null_mut();
        assert_eq!(GetAddrInfoW(node_w.as_ptr(), null(), &hw, &mut resw), 0);
        FreeAddrInfoW(resw);
        let mut bad: *mut ADDRINFOA = null_mut();
        assert_eq!(
            getaddrinfo(c("nowhere").as_ptr(), null(), null(), &mut bad),
            WSAHOST_NOT_FOUND
        );
    };
    once();
    let before = live();
    for _ in 0..2000 {
        once();
    }
    assert_eq!(live(), before, "live (bytes, blocks) on this thread");
    // The counter does see a chain that is not freed yet.
    let mut res: *mut ADDRINFOA = null_mut();
    assert_eq!(
        unsafe { getaddrinfo(node.as_ptr(), service.as_ptr(), &h, &mut res) },
        0
    );
    assert!(live().1 >= before.1 + 2, "two nodes at least");
    unsafe { freeaddrinfo(res) };
    assert_eq!(live(), before);
}

// ---------------------------------------------------------------- getnameinfo

fn gni(addr: SocketAddr, flags: u32) -> Result<(String, String), (i32, i32)> {
    let (storage, len) = match addr {
        SocketAddr::V4(a) => {
            let s = sin(a.ip().octets(), a.port());
            let mut b = [0u8; 28];
            unsafe {
                std::ptr::copy_nonoverlapping(&s as *const _ as *const u8, b.as_mut_ptr(), 16)
            };
            (b, 16)
        }
        SocketAddr::V6(a) => {
            let s = sin6(&a.ip().to_string(), a.scope_id(), a.port());
            let mut b = [0u8; 28];
            unsafe {
                std::ptr::copy_nonoverlapping(&s as *const _ as *const u8, b.as_mut_ptr(), 28)
            };
            (b, 28)
        }
    };
    let mut host = [0u8; NI_MAXHOST as usize];
    let mut serv = [0u8; NI_MAXSERV as usize];
    sentinel();
    let rc = unsafe {
        getnameinfo(
            storage.as_ptr() as *const SOCKADDR,
            len,
            host.as_mut_ptr(),
            host.len() as u32,
            serv.as_mut_ptr(),
            serv.len() as u32,
            flags as i32,
        )
    };
    if rc == 0 {
        Ok((from_c(&host), from_c(&serv)))
    } else {
        Err((rc, last_error()))
    }
}

/// Microsoft "getnameinfo function": a scenario host's address gives its FQDN (`NI_NOFQDN`: the
/// host name) and the port's service name (`NI_DGRAM` for UDP services); the NUMERIC flags give
/// text; a loopback address names this host.
#[test]
fn getnameinfo_names_scenario_hosts_and_services() {
    let _net = started();
    let s = sa("10.0.0.2:80");
    assert_eq!(gni(s, 0), Ok(("server.wsock".into(), "http".into())));
    assert_eq!(gni(s, NI_NOFQDN), Ok(("server".into(), "http".into())));
    assert_eq!(
        gni(s, NI_NUMERICHOST),
        Ok(("10.0.0.2".into(), "http".into()))
    );
    assert_eq!(
        gni(s, NI_NUMERICSERV),
        Ok(("server.wsock".into(), "80".into()))
    );
    assert_eq!(
        gni(sa("[fd00::2]:7"), NI_DGRAM),
        Ok(("server.wsock".into(), "echo".into()))
    );
    assert_eq!(
        gni(sa("[fd00::2]:80"), NI_DGRAM),
        Ok(("server.wsock".into(), "80".into())),
        "http is TCP only"
    );
    assert_eq!(
        gni(sa("127.0.0.1:27015"), NI_NOFQDN),
        Ok(("client".into(), "27015".into()))
    );
    assert_eq!(
        gni(sa("[::1]:0"), 0),
        Ok(("client.wsock".into(), "0".into()))
    );
    assert_eq!(
        gni(sa("[fe80::1%3]:0"), NI_NUMERICHOST),
        Ok(("fe80::1%3".into(), "0".into()))
    );
}

/// Microsoft "getnameinfo function": an unknown address gives its numeric text, or
/// `WSAHOST_NOT_FOUND` (EAI_NONAME) with `NI_NAMEREQD`.
#[test]
fn getnameinfo_unknown_address_is_numeric_or_host_not_found_with_ni_namereqd() {
    let _net = started();
    assert_eq!(
        gni(sa("192.0.2.1:9"), 0),
        Ok(("192.0.2.1".into(), "discard".into()))
    );
    assert_eq!(
        gni(sa("192.0.2.1:9"), NI_NAMEREQD),
        Err((WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND))
    );
    assert_eq!(
        gni(sa("10.0.0.2:9"), NI_NAMEREQD),
        Ok(("server.wsock".into(), "discard".into()))
    );
}

/// Microsoft "getnameinfo function": null or short address `WSAEFAULT`, another family
/// `WSAEAFNOSUPPORT` (EAI_FAMILY), a buffer of size 0 `WSAEINVAL` (EAI_BADFLAGS), neither buffer
/// `WSAHOST_NOT_FOUND`, a buffer too small `WSAEFAULT`, unknown flags `WSAEINVAL`, before
/// `WSAStartup` `WSANOTINITIALISED`.
#[test]
fn getnameinfo_errors() {
    let net = not_started();
    let s = sin([10, 0, 0, 2], 80);
    let p = &s as *const _ as *const SOCKADDR;
    let mut host = [0u8; 64];
    let mut serv = [0u8; 32];
    let call = |p: *const SOCKADDR, len: i32, h: *mut u8, hl: u32, sv: *mut u8, sl: u32, f: i32| {
        sentinel();
        let rc = unsafe { getnameinfo(p, len, h, hl, sv, sl, f) };
        (rc, last_error())
    };
    let (hp, sp) = (host.as_mut_ptr(), serv.as_mut_ptr());
    assert_eq!(
        call(p, 16, hp, 64, sp, 32, 0),
        (WSANOTINITIALISED, WSANOTINITIALISED)
    );
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    assert_eq!(call(null(), 16, hp, 64, sp, 32, 0), (WSAEFAULT, WSAEFAULT));
    assert_eq!(call(p, 15, hp, 64, sp, 32, 0), (WSAEFAULT, WSAEFAULT));
    let mut other = s;
    other.sin_family = 17;
    assert_eq!(
        call(&other as *const _ as *const SOCKADDR, 16, hp, 64, sp, 32, 0),
        (WSAEAFNOSUPPORT, WSAEAFNOSUPPORT)
    );
    assert_eq!(call(p, 16, hp, 0, sp, 32, 0), (WSAEINVAL, WSAEINVAL));
    assert_eq!(
        call(p, 16, null_mut(), 0, null_mut(), 0, 0),
        (WSAHOST_NOT_FOUND, WSAHOST_NOT_FOUND)
    );
    assert_eq!(
        call(p, 16, hp, 12, sp, 32, 0),
        (WSAEFAULT, WSAEFAULT),
        "\"server.wsock\" needs 13"
    );
    assert_eq!(call(p, 16, hp, 13, sp, 32, 0), (0, SENTINEL));
    assert_eq!(from_c(&host), "server.wsock");
    assert_eq!(
        call(p, 16, null_mut(), 0, sp, 4, 0),
        (WSAEFAULT, WSAEFAULT),
        "\"http\" needs 5"
    );
    assert_eq!(call(p, 16, hp, 64, sp, 32, 0x4000), (WSAEINVAL, WSAEINVAL));
    drop(net);
}

/// Microsoft "GetNameInfoW function": the UTF-16 version, sizes in characters.
#[test]
fn getnameinfow_writes_utf16() {
    let _net = started();
    let s = sin([10, 0, 0, 2], 443);
    let mut host = [0u16; 64];
    let mut serv = [0u16; 32];
    sentinel();
    let rc = unsafe {
        GetNameInfoW(
            &s as *const _ as *const SOCKADDR,
            16,
            host.as_mut_ptr(),
            64,
            serv.as_mut_ptr(),
            32,
            NI_NOFQDN as i32,
        )
    };
    assert_eq!((rc, last_error()), (0, SENTINEL));
    assert_eq!(
        (from_w(&host), from_w(&serv)),
        ("server".to_string(), "https".to_string())
    );
}

// ---------------------------------------------------------------- gethostname, gethostbyname

/// Wine `test_gethostname`: the host name; a null buffer or one without room for the NUL is
/// `WSAEFAULT` and leaves the buffer unchanged.
#[test]
fn gethostname_copies_the_host_name() {
    let _net = started();
    let mut name = [0u8; 256];
    assert_eq!(unsafe { gethostname(name.as_mut_ptr(), 256) }, 0);
    assert_eq!(from_c(&name), "client");
    sentinel();
    assert_eq!(unsafe { gethostname(null_mut(), 256) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEFAULT);
    let mut short = *b"deadbeef\0";
    sentinel();
    assert_eq!(unsafe { gethostname(short.as_mut_ptr(), 6) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEFAULT);
    assert_eq!(&short, b"deadbeef\0", "unchanged");
    assert_eq!(unsafe { gethostname(short.as_mut_ptr(), 7) }, 0);
    assert_eq!(from_c(&short), "client");
    let mut wname = [0u16; 16];
    assert_eq!(unsafe { GetHostNameW(wname.as_mut_ptr(), 16) }, 0);
    assert_eq!(from_w(&wname), "client");
    sentinel();
    assert_eq!(unsafe { GetHostNameW(wname.as_mut_ptr(), 6) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSAEFAULT);
}

/// Microsoft "gethostname function": `WSANOTINITIALISED` before `WSAStartup`.
#[test]
fn gethostname_before_startup_is_wsanotinitialised() {
    let _net = not_started();
    let mut name = [0u8; 64];
    sentinel();
    assert_eq!(unsafe { gethostname(name.as_mut_ptr(), 64) }, SOCKET_ERROR);
    assert_eq!(last_error(), WSANOTINITIALISED);
}

unsafe fn hostent_addrs(he: *const HOSTENT) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut p = (*he).h_addr_list;
    while !(*p).is_null() {
        out.push(Ipv4Addr::from(std::ptr::read_unaligned(
            *p as *const [u8; 4],
        )));
        p = p.add(1);
    }
    out
}

/// Microsoft "gethostbyname function" and Wine `test_dns`: IPv4 addresses in a `HOSTENT` laid
/// out in one block (aliases right after the structure, then the address list, then the
/// addresses); the name is the canonical name.
#[test]
fn gethostbyname_fills_a_windows_shaped_hostent() {
    let _net = started();
    let t = c("SERVER");
    let he = unsafe { gethostbyname(t.as_ptr()) };
    assert!(!he.is_null(), "{}", last_error());
    unsafe {
        let h = &*he;
        assert_eq!(
            CStr::from_ptr(h.h_name as *const _).to_str(),
            Ok("server.wsock")
        );
        assert_eq!((h.h_addrtype, h.h_length), (AF_INET as i16, 4));
        assert_eq!(
            h.h_aliases as usize,
            he.add(1) as usize,
            "aliases follow the structure"
        );
        assert!((*h.h_aliases).is_null(), "no aliases");
        assert_eq!(
            h.h_addr_list as usize,
            h.h_aliases as usize + size_of::<usize>()
        );
        assert_eq!(
            *h.h_addr_list as usize,
            h.h_addr_list as usize + 2 * size_of::<usize>()
        );
        assert_eq!(hostent_addrs(he), [Ipv4Addr::new(10, 0, 0, 2)]);
    }
}

/// Microsoft "gethostbyname function": a null or empty name is this host; `localhost` is
/// 127.0.0.1 (Wine `test_gethostbyname_hack`); dotted text converts.
#[test]
fn gethostbyname_empty_localhost_and_numeric() {
    let _net = started();
    unsafe {
        let he = gethostbyname(null());
        assert_eq!(hostent_addrs(he), [Ipv4Addr::new(10, 0, 0, 1)]);
        let e = c("");
        assert_eq!(
            hostent_addrs(gethostbyname(e.as_ptr())),
            [Ipv4Addr::new(10, 0, 0, 1)]
        );
        let l = c("localhost");
        assert_eq!(
            hostent_addrs(gethostbyname(l.as_ptr())),
            [Ipv4Addr::LOCALHOST]
        );
        // ReactOS apitest ws2_32 `WSAAsync` (run on Windows too): gethostbyname("127.0.0.1")
        // succeeds, although Microsoft's page says IP strings are not resolved.
        let l = c("127.0.0.1");
        assert_eq!(
            hostent_addrs(gethostbyname(l.as_ptr())),
            [Ipv4Addr::LOCALHOST]
        );
        let n = c("192.0.2.7");
        let he = gethostbyname(n.as_ptr());
        assert_eq!(hostent_addrs(he), [Ipv4Addr::new(192, 0, 2, 7)]);
        assert_eq!(
            CStr::from_ptr((*he).h_name as *const _).to_str(),
            Ok("192.0.2.7")
        );
    }
}

/// Microsoft "gethostbyname function": an unknown name is null with `WSAHOST_NOT_FOUND`; before
/// `WSAStartup`, `WSANOTINITIALISED`.
#[test]
fn gethostbyname_errors() {
    let net = not_started();
    let t = c("server");
    sentinel();
    assert!(unsafe { gethostbyname(t.as_ptr()) }.is_null());
    assert_eq!(last_error(), WSANOTINITIALISED);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    for name in ["nonexistent.winehq.org", "::1"] {
        let t = c(name);
        sentinel();
        assert!(unsafe { gethostbyname(t.as_ptr()) }.is_null(), "{name}");
        assert_eq!(last_error(), WSAHOST_NOT_FOUND, "{name}");
    }
    drop(net);
}

// ---------------------------------------------------------------- the example

/// `examples/udp_pton.rs`, the program written from Microsoft's pages (inet_pton + htons +
/// sendto/recvfrom + inet_ntop), runs against the server's udp-echo service.
#[test]
fn example_udp_pton_exchanges_a_datagram_with_the_echo_service() {
    let net = Network::start(Scenario::default_scenario()).expect("network");
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    let (sender, reply) = udp_pton::run("10.0.0.2", 7, b"hello, winsock").expect("exchange");
    assert_eq!(sender, "10.0.0.2:7");
    assert_eq!(reply, b"hello, winsock");
}

// ---------------------------------------------------------------- signatures, robustness

/// The functions have windows-sys 0.61.2's exact signatures and are reachable under its module
/// path, so Windows code ports by swapping the import.
#[test]
fn functions_have_the_windows_sys_signatures_under_its_module_path() {
    use wsock::sys::core::{PCWSTR, PSTR, PWSTR};
    use wsock::sys::Win32::Networking::WinSock as ws;
    type Sys<F> = F;
    let _: Sys<unsafe extern "system" fn(u16) -> u16> = ws::htons;
    let _: Sys<unsafe extern "system" fn(u32) -> u32> = ws::htonl;
    let _: Sys<unsafe extern "system" fn(u16) -> u16> = ws::ntohs;
    let _: Sys<unsafe extern "system" fn(u32) -> u32> = ws::ntohl;
    let _: Sys<unsafe extern "system" fn(SOCKET, *mut FD_SET) -> i32> = ws::__WSAFDIsSet;
    let _: Sys<unsafe extern "system" fn(i32, PCSTR, *mut c_void) -> i32> = ws::inet_pton;
    let _: Sys<unsafe extern "system" fn(i32, PCWSTR, *mut c_void) -> i32> = ws::InetPtonW;
    let _: Sys<unsafe extern "system" fn(i32, *const c_void, PSTR, usize) -> PCSTR> = ws::inet_ntop;
    let _: Sys<unsafe extern "system" fn(i32, *const c_void, PWSTR, usize) -> PCWSTR> =
        ws::InetNtopW;
    let _: Sys<unsafe extern "system" fn(PCSTR) -> u32> = ws::inet_addr;
    let _: Sys<unsafe extern "system" fn(IN_ADDR) -> PSTR> = ws::inet_ntoa;
    let _: Sys<
        unsafe extern "system" fn(
            *const SOCKADDR,
            u32,
            *const WSAPROTOCOL_INFOA,
            PSTR,
            *mut u32,
        ) -> i32,
    > = ws::WSAAddressToStringA;
    let _: Sys<
        unsafe extern "system" fn(
            *const SOCKADDR,
            u32,
            *const WSAPROTOCOL_INFOW,
            PWSTR,
            *mut u32,
        ) -> i32,
    > = ws::WSAAddressToStringW;
    let _: Sys<
        unsafe extern "system" fn(
            PCSTR,
            i32,
            *const WSAPROTOCOL_INFOA,
            *mut SOCKADDR,
            *mut i32,
        ) -> i32,
    > = ws::WSAStringToAddressA;
    let _: Sys<
        unsafe extern "system" fn(
            PCWSTR,
            i32,
            *const WSAPROTOCOL_INFOW,
            *mut SOCKADDR,
            *mut i32,
        ) -> i32,
    > = ws::WSAStringToAddressW;
    let _: Sys<
        unsafe extern "system" fn(PCSTR, PCSTR, *const ADDRINFOA, *mut *mut ADDRINFOA) -> i32,
    > = ws::getaddrinfo;
    let _: Sys<unsafe extern "system" fn(*const ADDRINFOA)> = ws::freeaddrinfo;
    let _: Sys<
        unsafe extern "system" fn(PCWSTR, PCWSTR, *const ADDRINFOW, *mut *mut ADDRINFOW) -> i32,
    > = ws::GetAddrInfoW;
    let _: Sys<unsafe extern "system" fn(*const ADDRINFOW)> = ws::FreeAddrInfoW;
    let _: Sys<
        unsafe extern "system" fn(*const SOCKADDR, socklen_t, PSTR, u32, PSTR, u32, i32) -> i32,
    > = ws::getnameinfo;
    let _: Sys<
        unsafe extern "system" fn(*const SOCKADDR, socklen_t, PWSTR, u32, PWSTR, u32, i32) -> i32,
    > = ws::GetNameInfoW;
    let _: Sys<unsafe extern "system" fn(PSTR, i32) -> i32> = ws::gethostname;
    let _: Sys<unsafe extern "system" fn(PWSTR, i32) -> i32> = ws::GetHostNameW;
    let _: Sys<unsafe extern "system" fn(PCSTR) -> *mut HOSTENT> = ws::gethostbyname;
}

/// No input makes a function panic (a panic may not cross `extern "system"`): thousands of
/// generated strings over the characters that matter go through every parser.
#[test]
fn parsers_never_panic_on_generated_text() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let _net = started();
    let alphabet = b"0123456789abcdefABCDEFxX.:[]%  \t-+/g\xfe";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut buf16 = [0u8; 64];
    let mut out = [0u8; 64];
    for _ in 0..20_000 {
        let len = (next() % 48) as usize;
        let text: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .chain(std::iter::once(0))
            .collect();
        let p = text.as_ptr();
        unsafe {
            inet_pton(AF_INET as i32, p, buf16.as_mut_ptr() as *mut c_void);
            inet_pton(AF_INET6 as i32, p, buf16.as_mut_ptr() as *mut c_void);
            inet_addr(p);
            let mut len = 28;
            WSAStringToAddressA(
                p,
                AF_INET as i32,
                null(),
                out.as_mut_ptr() as *mut SOCKADDR,
                &mut len,
            );
            let mut len = 28;
            WSAStringToAddressA(
                p,
                AF_INET6 as i32,
                null(),
                out.as_mut_ptr() as *mut SOCKADDR,
                &mut len,
            );
            let mut res: *mut ADDRINFOA = null_mut();
            if getaddrinfo(p, p, null(), &mut res) == 0 {
                freeaddrinfo(res);
            }
            gethostbyname(p);
            let mut n = 64u32;
            WSAAddressToStringA(
                buf16.as_ptr() as *const SOCKADDR,
                (next() % 40) as u32,
                null(),
                out.as_mut_ptr(),
                &mut n,
            );
        }
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}
