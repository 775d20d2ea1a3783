//! The behavioural cases of the secure-socket reference (winsock-api §4, cases 1-52) at the raw
//! face, each a named test `case_NN_<what>`. Every call is made through `wsock::sys` as a
//! Windows program makes it, with windows-sys's structs.
//!
//! Cases that need a negotiated IPsec connection (SA ids, ENCRYPTED, tokens of an
//! authenticated peer) run on the stack's IPsec path between the scenario's two hosts.

mod common;

use std::mem::{offset_of, size_of, zeroed};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock::sys::core::GUID;
use wsock::sys::*;

/// The result of a call and the thread's last error after it.
fn call(f: impl FnOnce() -> i32) -> (i32, i32) {
    sentinel();
    let rc = f();
    (rc, last_error())
}

/// An 8-byte aligned buffer of `len` bytes (what `HeapAlloc` gives a Windows program).
struct Buf(Vec<u64>, usize);

impl Buf {
    fn zeroed(len: usize) -> Buf {
        Buf(vec![0u64; len.div_ceil(8).max(1)], len)
    }
    fn ptr<T>(&mut self) -> *mut T {
        self.0.as_mut_ptr().cast()
    }
    fn cptr<T>(&self) -> *const T {
        self.0.as_ptr().cast()
    }
    fn len(&self) -> u32 {
        self.1 as u32
    }
    fn bytes(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.1) }
    }
}

fn settings(protocol: SOCKET_SECURITY_PROTOCOL, flags: u32) -> SOCKET_SECURITY_SETTINGS {
    SOCKET_SECURITY_SETTINGS {
        SecurityProtocol: protocol,
        SecurityFlags: flags,
    }
}

fn set_security(s: SOCKET, st: Option<&SOCKET_SECURITY_SETTINGS>, len: u32) -> (i32, i32) {
    let p = st.map_or(null(), |x| x as *const _);
    call(|| unsafe { WSASetSocketSecurity(s, p, len, null(), None) })
}

/// A `SOCKET_SECURITY_SETTINGS_IPSEC` with its strings, sized as Project Zero's tools size it
/// (`sizeof` + the string bytes).
fn ipsec_settings(
    protocol: SOCKET_SECURITY_PROTOCOL,
    flags: u32,
    qm_key: GUID,
    user: &str,
    domain: &str,
    password: &str,
) -> Buf {
    let (u, d, p): (Vec<u16>, Vec<u16>, Vec<u16>) = (
        user.encode_utf16().collect(),
        domain.encode_utf16().collect(),
        password.encode_utf16().collect(),
    );
    let strings = 2 * (u.len() + d.len() + p.len());
    let mut b = Buf::zeroed(size_of::<SOCKET_SECURITY_SETTINGS_IPSEC>() + strings);
    let st: *mut SOCKET_SECURITY_SETTINGS_IPSEC = b.ptr();
    unsafe {
        (*st).SecurityProtocol = protocol;
        (*st).SecurityFlags = flags;
        (*st).AuthipQMPolicyKey = qm_key;
        (*st).UserNameStringLen = 2 * u.len() as u32;
        (*st).DomainNameStringLen = 2 * d.len() as u32;
        (*st).PasswordStringLen = 2 * p.len() as u32;
        let mut w = std::ptr::addr_of_mut!((*st).AllStrings) as *mut u16;
        for c in u.iter().chain(&d).chain(&p) {
            w.write_unaligned(*c);
            w = w.add(1);
        }
    }
    b
}

/// A `SOCKET_PEER_TARGET_NAME` built as the Microsoft sample builds it: `sizeof` + the name's
/// bytes, `PeerTargetNameStringLen` = `count`.
fn peer_name(
    protocol: SOCKET_SECURITY_PROTOCOL,
    peer: Option<SOCKADDR_IN>,
    name: &str,
    count: u32,
) -> Buf {
    let units: Vec<u16> = name.encode_utf16().collect();
    let mut b = Buf::zeroed(size_of::<SOCKET_PEER_TARGET_NAME>() + 2 * units.len());
    let p: *mut SOCKET_PEER_TARGET_NAME = b.ptr();
    unsafe {
        (*p).SecurityProtocol = protocol;
        if let Some(a) = peer {
            std::ptr::copy_nonoverlapping(
                &a as *const SOCKADDR_IN as *const u8,
                std::ptr::addr_of_mut!((*p).PeerAddress) as *mut u8,
                size_of::<SOCKADDR_IN>(),
            );
        }
        (*p).PeerTargetNameStringLen = count;
        let mut w = std::ptr::addr_of_mut!((*p).AllStrings) as *mut u16;
        for c in &units {
            w.write_unaligned(*c);
            w = w.add(1);
        }
    }
    b
}

fn set_name(s: SOCKET, b: &Buf, len: u32) -> (i32, i32) {
    call(|| unsafe { WSASetSocketPeerTargetName(s, b.cptr(), len, null(), None) })
}

fn template(
    protocol: SOCKET_SECURITY_PROTOCOL,
    peer: Option<SOCKADDR_IN>,
    mask: u32,
) -> SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2 {
    let mut t: SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2 = unsafe { zeroed() };
    t.SecurityProtocol = protocol;
    if let Some(a) = peer {
        unsafe {
            std::ptr::copy_nonoverlapping(
                &a as *const SOCKADDR_IN as *const u8,
                &mut t.PeerAddress as *mut SOCKADDR_STORAGE as *mut u8,
                size_of::<SOCKADDR_IN>(),
            );
        }
    }
    t.PeerTokenAccessMask = mask;
    t
}

fn query(
    s: SOCKET,
    t: Option<&SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2>,
    tlen: u32,
    info: *mut u8,
    len: &mut u32,
) -> (i32, i32) {
    let tp = t.map_or(null(), |t| {
        t as *const _ as *const SOCKET_SECURITY_QUERY_TEMPLATE
    });
    call(|| unsafe { WSAQuerySocketSecurity(s, tp, tlen, info.cast(), len, null(), None) })
}

/// A secured listener on the server (settings set before bind, as the sample server does).
fn secure_listener(server: &wsock::Host, client: &wsock::Host, port: u16, flags: u32) -> SOCKET {
    wsock::ext::set_thread_host(server);
    let l = tcp();
    let st = settings(SOCKET_SECURITY_PROTOCOL_DEFAULT, flags);
    assert_eq!(set_security(l, Some(&st), 8), (0, 0));
    bind_v4(l, [0, 0, 0, 0], port);
    assert_eq!(unsafe { listen(l, 10) }, 0, "listen: {}", last_error());
    wsock::ext::set_thread_host(client);
    l
}

/// A secured client connected to the secured listener: (client, accepted).
fn secure_pair(
    server: &wsock::Host,
    client: &wsock::Host,
    port: u16,
    flags: u32,
) -> (SOCKET, SOCKET, SOCKET) {
    let l = secure_listener(server, client, port, flags);
    let c = tcp();
    safety_timeout(c);
    let st = settings(SOCKET_SECURITY_PROTOCOL_DEFAULT, flags);
    assert_eq!(set_security(c, Some(&st), 8), (0, 0));
    let b = peer_name(SOCKET_SECURITY_PROTOCOL_DEFAULT, None, "host/SERVER", 11);
    assert_eq!(set_name(c, &b, b.len()), (0, 0));
    let to = v4([10, 0, 0, 2], port);
    assert_eq!(
        unsafe { connect(c, sa(&to), SIN_LEN) },
        0,
        "connect: {}",
        last_error()
    );
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET, "accept: {}", last_error());
    (l, c, a)
}

/// As `started`, with failed IKE negotiations giving up after 1.5 s instead of Windows' ~21 s.
fn started_failing_fast() -> (wsock::Network, wsock::Host, wsock::Host) {
    let net = wsock::Network::builder(wsock::Scenario::default_scenario())
        .ipsec_setup(|_, s| s.failure_delay = std::time::Duration::from_millis(1500))
        .start()
        .expect("network starts");
    let client = net.host("client").expect("client host");
    let server = net.host("server").expect("server host");
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0, "WSAStartup");
    (net, client, server)
}

// ------------------------------------------------------------------ WSASetSocketSecurity

#[test]
fn case_01_null_settings_apply_the_default_policy() {
    let _n = started();
    let s = tcp();
    assert_eq!(set_security(s, None, 0), (0, 0));
}

#[test]
fn case_02_default_protocol_guarantee_encryption() {
    let _n = started();
    let s = tcp();
    let st = settings(
        SOCKET_SECURITY_PROTOCOL_DEFAULT,
        SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    );
    assert_eq!(set_security(s, Some(&st), 8), (0, 0));
}

#[test]
fn case_03_ipsec_settings_with_a_quick_mode_policy_key() {
    let _n = started();
    let s = tcp();
    let key = GUID::from_u128(0x5a1e_0001_0000_4000_8000_0000_0000_0003);
    let b = ipsec_settings(SOCKET_SECURITY_PROTOCOL_IPSEC, 1, key, "", "", "");
    assert_eq!(b.len(), 88);
    let rc = call(|| unsafe { WSASetSocketSecurity(s, b.cptr(), 88, null(), None) });
    assert_eq!(rc, (0, 0));
}

#[test]
fn case_04_ipsec_struct_with_default_protocol_is_einval() {
    let _n = started();
    let s = tcp();
    let b = ipsec_settings(
        SOCKET_SECURITY_PROTOCOL_DEFAULT,
        1,
        GUID::from_u128(0),
        "",
        "",
        "",
    );
    let rc = call(|| unsafe { WSASetSocketSecurity(s, b.cptr(), 88, null(), None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEINVAL));
}

#[test]
fn case_05_invalid_protocol_is_einval() {
    let _n = started();
    let s = tcp();
    let st = settings(SOCKET_SECURITY_PROTOCOL_INVALID, 0);
    assert_eq!(set_security(s, Some(&st), 8), (SOCKET_ERROR, WSAEINVAL));
    let st = settings(-1, 0);
    assert_eq!(set_security(s, Some(&st), 8), (SOCKET_ERROR, WSAEINVAL));
}

/// wsock has no raw sockets: `socket(SOCK_RAW)` fails, so the call sees no socket
/// (docs/windows-differences.md, secure-socket chapter).
#[test]
fn case_06_raw_socket_cannot_be_secured() {
    let _n = started();
    let s = unsafe { socket(AF_INET as i32, SOCK_RAW, 0) };
    assert_eq!((s, last_error()), (INVALID_SOCKET, WSAESOCKTNOSUPPORT));
    assert_eq!(set_security(s, None, 0), (SOCKET_ERROR, WSAENOTSOCK));
}

#[test]
fn case_07_not_a_socket_is_enotsock() {
    let _n = started();
    assert_eq!(
        set_security(0xdead_0000, None, 0),
        (SOCKET_ERROR, WSAENOTSOCK)
    );
    let st = settings(0, 1);
    assert_eq!(
        set_security(0xdead_0000, Some(&st), 8),
        (SOCKET_ERROR, WSAENOTSOCK)
    );
}

#[test]
fn case_08_connected_tcp_is_eisconn() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 27015);
    let st = settings(0, 1);
    assert_eq!(set_security(c, Some(&st), 8), (SOCKET_ERROR, WSAEISCONN));
    assert_eq!(set_security(a, None, 0), (SOCKET_ERROR, WSAEISCONN));
}

#[test]
fn case_09_connected_udp_is_eisconn() {
    let _n = started();
    let u = udp();
    let to = v4([10, 0, 0, 2], 5000);
    let rc = unsafe { WSAConnect(u, sa(&to), SIN_LEN, null(), null_mut(), null(), null()) };
    assert_eq!(rc, 0, "WSAConnect: {}", last_error());
    assert_eq!(set_security(u, None, 0), (SOCKET_ERROR, WSAEISCONN));
}

#[test]
fn case_10_after_bind_is_einval() {
    let _n = started();
    let s = tcp();
    bind_v4(s, [0, 0, 0, 0], 27015);
    assert_eq!(set_security(s, None, 0), (SOCKET_ERROR, WSAEINVAL));
    let u = udp();
    bind_v4(u, [0, 0, 0, 0], 0);
    assert_eq!(set_security(u, None, 0), (SOCKET_ERROR, WSAEINVAL));
}

#[test]
fn case_11_second_call_is_einval() {
    let _n = started();
    let s = tcp();
    assert_eq!(set_security(s, None, 0), (0, 0));
    let st = settings(0, 1);
    assert_eq!(set_security(s, Some(&st), 8), (SOCKET_ERROR, WSAEINVAL));
}

#[test]
fn case_12_short_settings_are_emsgsize() {
    let _n = started();
    let s = tcp();
    let st = settings(0, 1);
    assert_eq!(set_security(s, Some(&st), 4), (SOCKET_ERROR, WSAEMSGSIZE));
    assert_eq!(set_security(s, Some(&st), 0), (SOCKET_ERROR, WSAEMSGSIZE));
    // The IPsec form needs its 84 fixed bytes, then its strings.
    let st = settings(SOCKET_SECURITY_PROTOCOL_IPSEC, 1);
    assert_eq!(set_security(s, Some(&st), 8), (SOCKET_ERROR, WSAEMSGSIZE));
    let b = ipsec_settings(1, 1, GUID::from_u128(0), "alice", "WSOCK", "pw");
    // 84 fixed bytes + 24 string bytes are needed (callers often pass sizeof = 88 + strings).
    let short = 84 + 24 - 2;
    let rc = call(|| unsafe { WSASetSocketSecurity(s, b.cptr(), short, null(), None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEMSGSIZE));
    // Nothing was set: a correct call still succeeds once.
    let rc = call(|| unsafe { WSASetSocketSecurity(s, b.cptr(), b.len(), null(), None) });
    assert_eq!(rc, (0, 0));
}

#[test]
fn case_13_secured_port_is_exclusive() {
    let (_n, client, _server) = started();
    wsock::ext::set_thread_host(&client);
    let s = tcp();
    assert_eq!(set_security(s, None, 0), (0, 0));
    bind_v4(s, [0, 0, 0, 0], 27015);
    let r = tcp();
    set_int(r, SOL_SOCKET, SO_REUSEADDR, 1);
    let any = v4([0, 0, 0, 0], 27015);
    let rc = call(|| unsafe { bind(r, sa(&any), SIN_LEN) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEACCES));
    let p = tcp();
    let rc = call(|| unsafe { bind(p, sa(&any), SIN_LEN) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEADDRINUSE));
}

#[test]
fn case_14_exclusiveaddruse_is_reported_after_set_security() {
    let _n = started();
    let s = tcp();
    assert_eq!(get_int(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE).0, 0);
    assert_eq!(set_security(s, None, 0), (0, 0));
    assert_ne!(get_int(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE).0, 0);
    // With SO_REUSEADDR already set, set-security is refused (SO_EXCLUSIVEADDRUSE could not be).
    let r = tcp();
    set_int(r, SOL_SOCKET, SO_REUSEADDR, 1);
    assert_eq!(set_security(r, None, 0), (SOCKET_ERROR, WSAEINVAL));
}

fn ioctl(s: SOCKET, code: u32, input: *const u8, len: u32) -> (i32, i32, u32) {
    let mut n = 0xffff_ffffu32;
    let (rc, e) = call(|| unsafe {
        WSAIoctl(
            s,
            code,
            input.cast(),
            len,
            null_mut(),
            0,
            &mut n,
            null_mut(),
            None,
        )
    });
    (rc, e, n)
}

/// Errors are identical through the wrapper and through `WSAIoctl` (same handler table).
#[test]
fn case_15_wsaioctl_fails_exactly_like_the_wrappers() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    let fresh = tcp();
    let u = udp();
    let good = settings(0, 1);
    let bad = settings(3, 0);
    let gp = &good as *const _ as *const u8;
    let bp = &bad as *const _ as *const u8;
    for (s, p, len) in [
        (fresh, bp, 8),
        (fresh, gp, 4),
        (c, gp, 8),
        (0xdead_0000usize, gp, 8),
    ] {
        let w = set_security(
            s,
            Some(unsafe { &*(p as *const SOCKET_SECURITY_SETTINGS) }),
            len,
        );
        let (rc, e, n) = ioctl(s, SIO_SET_SECURITY, p, len);
        assert_eq!((rc, e), w);
        assert_eq!(n, 0);
    }
    let zero = peer_name(0, None, "host/x", 6);
    let named = peer_name(0, Some(v4([10, 0, 0, 2], 0)), "host/x", 6);
    for (s, b, len) in [
        (u, &zero, zero.len()),
        (c, &named, named.len()),
        (u, &named, 100),
    ] {
        let w = set_name(s, b, len);
        let (rc, e, n) = ioctl(s, SIO_SET_PEER_TARGET_NAME, b.cptr(), len);
        assert_eq!((rc, e), w);
        assert_eq!(n, 0);
    }
    let unix: [u8; 16] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let w = call(|| unsafe {
        WSADeleteSocketPeerTargetName(u, unix.as_ptr().cast(), 16, null(), None)
    });
    let (rc, e, _) = ioctl(u, SIO_DELETE_PEER_TARGET_NAME, unix.as_ptr(), 16);
    assert_eq!((rc, e), w);
    assert_eq!(w, (SOCKET_ERROR, WSAEAFNOSUPPORT));
    // The query's size probe writes the size needed either way.
    let t = template(0, Some(v4([10, 0, 0, 2], 5000)), 0);
    let mut len = 0u32;
    let w = query(u, Some(&t), 144, null_mut(), &mut len);
    let mut n = 0u32;
    let r = call(|| unsafe {
        WSAIoctl(
            u,
            SIO_QUERY_SECURITY,
            (&t as *const _ as *const u8).cast(),
            144,
            null_mut(),
            0,
            &mut n,
            null_mut(),
            None,
        )
    });
    assert_eq!((r, n), (w, len));
    assert_eq!((w, len), ((SOCKET_ERROR, WSAEMSGSIZE), 24));
}

/// Successes through `WSAIoctl` are successes through the wrappers (case 2's call as an IOCTL).
#[test]
fn case_15_wsaioctl_set_security_and_target_name_like_the_wrappers() {
    let _n = started();
    let s = tcp();
    let st = settings(0, 1);
    let (rc, e, n) = ioctl(s, SIO_SET_SECURITY, &st as *const _ as *const u8, 8);
    assert_eq!((rc, e, n), (0, 0, 0));
    // A second time fails as the wrapper's second call does (case 11).
    assert_eq!(set_security(s, Some(&st), 8), (SOCKET_ERROR, WSAEINVAL));
    let (rc, e, _) = ioctl(s, SIO_SET_SECURITY, &st as *const _ as *const u8, 8);
    assert_eq!((rc, e), (SOCKET_ERROR, WSAEINVAL));
    let b = peer_name(0, None, "host/SERVER", 11);
    assert_eq!(ioctl(s, SIO_SET_PEER_TARGET_NAME, b.cptr(), b.len()).0, 0);
    let u = udp();
    let to = v4([10, 0, 0, 2], 5000);
    assert_eq!(set_security(u, None, 0), (0, 0));
    let b = peer_name(0, Some(to), "host/SERVER", 11);
    assert_eq!(ioctl(u, SIO_SET_PEER_TARGET_NAME, b.cptr(), b.len()).0, 0);
    let (rc, _, _) = ioctl(
        u,
        SIO_DELETE_PEER_TARGET_NAME,
        &to as *const _ as *const u8,
        16,
    );
    assert_eq!(rc, 0);
}

// ------------------------------------------------------------------ peer target names

#[test]
fn case_16_null_peer_target_name_is_efault() {
    let _n = started();
    let s = tcp();
    let rc = call(|| unsafe { WSASetSocketPeerTargetName(s, null(), 144, null(), None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEFAULT));
}

#[test]
fn case_17_tcp_target_name_with_zero_address() {
    let _n = started();
    let s = tcp();
    assert_eq!(set_security(s, None, 0), (0, 0));
    let name = "host/srv.example.com";
    let b = peer_name(SOCKET_SECURITY_PROTOCOL_DEFAULT, None, name, 20);
    assert_eq!(b.len(), 184);
    assert_eq!(set_name(s, &b, 184), (0, 0));
}

#[test]
fn case_18_udp_target_name_with_zero_address_is_einval() {
    let _n = started();
    let u = udp();
    let b = peer_name(0, Some(v4([0, 0, 0, 0], 0)), "host/x", 6);
    assert_eq!(set_name(u, &b, b.len()), (SOCKET_ERROR, WSAEINVAL));
    let b = peer_name(0, None, "host/x", 6);
    assert_eq!(set_name(u, &b, b.len()), (SOCKET_ERROR, WSAEINVAL));
}

#[test]
fn case_19_udp_one_name_per_peer() {
    let _n = started();
    let u = udp();
    assert_eq!(set_security(u, None, 0), (0, 0));
    // The scenario's virtual addresses stand in for the reference's 127.x peers.
    let a = peer_name(0, Some(v4([10, 0, 0, 2], 5000)), "host/SERVER", 11);
    let b = peer_name(0, Some(v4([10, 0, 0, 3], 5000)), "host/OTHER", 10);
    assert_eq!(set_name(u, &a, a.len()), (0, 0));
    assert_eq!(set_name(u, &b, b.len()), (0, 0));
}

#[test]
fn case_20_target_name_on_connected_tcp_is_eisconn() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    let b = peer_name(0, None, "host/SERVER", 11);
    assert_eq!(set_name(c, &b, b.len()), (SOCKET_ERROR, WSAEISCONN));
}

#[test]
fn case_21_short_peer_target_name_is_emsgsize() {
    let _n = started();
    let s = tcp();
    let b = peer_name(0, None, "host/SERVER", 11);
    assert_eq!(set_name(s, &b, 139), (SOCKET_ERROR, WSAEMSGSIZE));
    // 140 + 22 bytes are needed; one short fails.
    assert_eq!(set_name(s, &b, 161), (SOCKET_ERROR, WSAEMSGSIZE));
    // A length far beyond the buffer is caught by the count, not read.
    let mut b = peer_name(0, None, "h", 1);
    b.bytes()[136..140].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(set_name(s, &b, b.len()), (SOCKET_ERROR, WSAEINVAL));
    b.bytes()[136..140].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(set_name(s, &b, b.len()), (SOCKET_ERROR, WSAEMSGSIZE));
}

/// Characters for DEFAULT/IPSEC, bytes for IPSEC2: the same name either way.
#[test]
fn case_22_string_length_units_per_protocol() {
    let name = "host/srv.example.com";
    let v1 = peer_name(SOCKET_SECURITY_PROTOCOL_IPSEC, None, name, 20);
    let mut v2 = peer_name(SOCKET_SECURITY_PROTOCOL_IPSEC2, None, name, 40);
    let mut v1b = Buf::zeroed(v1.1);
    v1b.bytes()
        .copy_from_slice(unsafe { std::slice::from_raw_parts(v1.cptr::<u8>(), v1.1) });
    let p1 = wsock::secure::parse_peer_target_name(v1b.bytes()).unwrap();
    let p2 = wsock::secure::parse_peer_target_name(v2.bytes()).unwrap();
    assert_eq!(p1.name, name);
    assert_eq!(p2.name, name);
    // An odd byte count is not UTF-16 (IPSEC2).
    let mut odd = peer_name(SOCKET_SECURITY_PROTOCOL_IPSEC2, None, name, 39);
    assert!(wsock::secure::parse_peer_target_name(odd.bytes()).is_err());
    // Through the raw face both are accepted.
    let _n = started();
    let s = tcp();
    assert_eq!(set_security(s, None, 0), (0, 0));
    assert_eq!(set_name(s, &v1, v1.len()), (0, 0));
    assert_eq!(set_name(s, &v2, v2.len()), (0, 0));
    assert_eq!(set_name(s, &odd, odd.len()), (SOCKET_ERROR, WSAEINVAL));
}

#[test]
fn case_23_delete_with_null_address_is_efault() {
    let _n = started();
    let u = udp();
    let rc = call(|| unsafe { WSADeleteSocketPeerTargetName(u, null(), 16, null(), None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEFAULT));
}

#[test]
fn case_24_set_then_delete_a_udp_peer_name() {
    let _n = started();
    let u = udp();
    assert_eq!(set_security(u, None, 0), (0, 0));
    let p = v4([10, 0, 0, 2], 5000);
    let b = peer_name(0, Some(p), "host/SERVER", 11);
    assert_eq!(set_name(u, &b, b.len()), (0, 0));
    let rc = call(|| unsafe { WSADeleteSocketPeerTargetName(u, sa(&p), 16, null(), None) });
    assert_eq!(rc, (0, 0));
    // Short addresses and other families are refused before the stack is asked.
    let rc = call(|| unsafe { WSADeleteSocketPeerTargetName(u, sa(&p), 8, null(), None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEMSGSIZE));
}

/// wsock has neither raw nor AF_UNIX sockets: both fail at `socket`, so the call sees no socket.
#[test]
fn case_25_delete_on_raw_or_unix_socket() {
    let _n = started();
    let raw = unsafe { socket(AF_INET as i32, SOCK_RAW, 0) };
    assert_eq!((raw, last_error()), (INVALID_SOCKET, WSAESOCKTNOSUPPORT));
    let unix = unsafe { socket(AF_UNIX as i32, SOCK_STREAM, 0) };
    assert_eq!((unix, last_error()), (INVALID_SOCKET, WSAEAFNOSUPPORT));
    let p = v4([10, 0, 0, 2], 5000);
    for s in [raw, unix] {
        let rc = call(|| unsafe { WSADeleteSocketPeerTargetName(s, sa(&p), 16, null(), None) });
        assert_eq!(rc, (SOCKET_ERROR, WSAENOTSOCK));
    }
}

// ------------------------------------------------------------------ WSAQuerySocketSecurity

#[test]
fn case_26_query_connected_secured_tcp() {
    let (_n, client, server) = started();
    let (_l, c, _a) = secure_pair(&server, &client, 27015, 0);
    let mut info: SOCKET_SECURITY_QUERY_INFO = unsafe { zeroed() };
    let mut len = 24u32;
    let rc = query(
        c,
        None,
        0,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    assert_eq!(len, 24);
    assert_ne!(info.Flags & SOCKET_INFO_CONNECTION_SECURED, 0);
    assert_eq!(
        (
            info.PeerApplicationAccessTokenHandle,
            info.PeerMachineAccessTokenHandle
        ),
        (0, 0)
    );
}

#[test]
fn case_27_null_info_len_is_efault() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    let mut info = [0u8; 24];
    let rc = call(|| unsafe {
        WSAQuerySocketSecurity(
            c,
            null(),
            0,
            info.as_mut_ptr().cast(),
            null_mut(),
            null(),
            None,
        )
    });
    assert_eq!(rc, (SOCKET_ERROR, WSAEFAULT));
}

#[test]
fn case_28_udp_query_needs_a_whole_template() {
    let _n = started();
    let u = udp();
    let mut info = [0u64; 8];
    let mut len = 64u32;
    let rc = query(u, None, 0, info.as_mut_ptr().cast(), &mut len);
    assert_eq!(rc, (SOCKET_ERROR, WSAEMSGSIZE));
    let t = template(0, Some(v4([10, 0, 0, 2], 5000)), 0);
    let mut len = 64u32;
    let rc = query(u, Some(&t), 100, info.as_mut_ptr().cast(), &mut len);
    assert_eq!(rc, (SOCKET_ERROR, WSAEMSGSIZE));
    // An IPSEC2 template needs its 152 bytes.
    let t2 = template(
        SOCKET_SECURITY_PROTOCOL_IPSEC2,
        Some(v4([10, 0, 0, 2], 5000)),
        0,
    );
    let mut len = 64u32;
    let rc = query(u, Some(&t2), 144, info.as_mut_ptr().cast(), &mut len);
    assert_eq!(rc, (SOCKET_ERROR, WSAEMSGSIZE));
}

#[test]
fn case_29_size_probe_with_a_template() {
    let _n = started();
    let u = udp();
    let t = template(0, Some(v4([10, 0, 0, 2], 5000)), 0);
    let mut len = 0u32;
    assert_eq!(
        query(u, Some(&t), 144, null_mut(), &mut len),
        (SOCKET_ERROR, WSAEMSGSIZE)
    );
    assert_eq!(len, 24);
    let t2 = template(
        SOCKET_SECURITY_PROTOCOL_IPSEC2,
        Some(v4([10, 0, 0, 2], 5000)),
        0,
    );
    let mut len = 0u32;
    assert_eq!(
        query(u, Some(&t2), 152, null_mut(), &mut len),
        (SOCKET_ERROR, WSAEMSGSIZE)
    );
    assert_eq!(len, 64);
    // A buffer one byte short is a probe too.
    let mut info = [0u64; 8];
    let mut len = 63u32;
    assert_eq!(
        query(u, Some(&t2), 152, info.as_mut_ptr().cast(), &mut len),
        (SOCKET_ERROR, WSAEMSGSIZE)
    );
    assert_eq!(len, 64);
}

#[test]
fn case_30_tcp_null_template_size_probe_is_efault_by_default() {
    let (n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    let mut len = 0u32;
    assert_eq!(
        query(c, None, 0, null_mut(), &mut len),
        (SOCKET_ERROR, WSAEFAULT)
    );
    assert!(len >= 24);
    wsock::ext::set_null_template_probe_error(&n, WSAEMSGSIZE).unwrap();
    let mut len = 0u32;
    assert_eq!(
        query(c, None, 0, null_mut(), &mut len),
        (SOCKET_ERROR, WSAEMSGSIZE)
    );
    assert_eq!(len, 24);
    assert_eq!(
        wsock::ext::set_null_template_probe_error(&n, WSAEINVAL),
        Err(WSAEINVAL)
    );
}

/// No token access asked: no handles, whatever the connection.
#[test]
fn case_31_zero_access_mask_returns_no_handles() {
    let (n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 27015);
    for s in [c, a] {
        let t = template(0, None, 0);
        let mut info: SOCKET_SECURITY_QUERY_INFO = unsafe { zeroed() };
        info.PeerApplicationAccessTokenHandle = 0xaaaa;
        info.PeerMachineAccessTokenHandle = 0xbbbb;
        let mut len = 24u32;
        let rc = query(
            s,
            Some(&t),
            144,
            (&mut info as *mut SOCKET_SECURITY_QUERY_INFO).cast(),
            &mut len,
        );
        assert_eq!(rc, (0, 0));
        assert_eq!(len, 24);
        assert_eq!(
            (
                info.PeerApplicationAccessTokenHandle,
                info.PeerMachineAccessTokenHandle
            ),
            (0, 0)
        );
        // A clear-text connection: not secured, so no token even when asked for.
        assert_eq!(info.Flags, 0);
        let t = template(0, None, TOKEN_QUERY);
        let mut len = 24u32;
        let rc = query(
            s,
            Some(&t),
            144,
            (&mut info as *mut SOCKET_SECURITY_QUERY_INFO).cast(),
            &mut len,
        );
        assert_eq!(rc, (0, 0));
        assert_eq!(
            (
                info.PeerApplicationAccessTokenHandle,
                info.PeerMachineAccessTokenHandle
            ),
            (0, 0)
        );
    }
    assert_eq!(wsock::identity::open_handles(&n), 0);
}

#[test]
fn case_32_token_query_mask_returns_closable_handles() {
    let (n, client, server) = started();
    let (_l, _c, a) = secure_pair(&server, &client, 27015, 1);
    let t = template(0, None, TOKEN_QUERY);
    let mut info: SOCKET_SECURITY_QUERY_INFO = unsafe { zeroed() };
    let mut len = 24u32;
    wsock::ext::set_thread_host(&server);
    let rc = query(
        a,
        Some(&t),
        144,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    let (app, machine) = (
        info.PeerApplicationAccessTokenHandle,
        info.PeerMachineAccessTokenHandle,
    );
    assert!(app != 0 && machine != 0);
    assert_eq!(wsock::identity::open_handles(&n), 2);
    unsafe {
        assert_eq!(CloseHandle(app as HANDLE), 1);
        assert_eq!(CloseHandle(machine as HANDLE), 1);
        assert_eq!(CloseHandle(app as HANDLE), 0);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
    assert_eq!(wsock::identity::open_handles(&n), 0);
}

/// Token handles belong to the caller, not to the socket: they outlive `closesocket`, and
/// every secure-socket call on the closed handle is `WSAENOTSOCK`.
#[test]
fn case_32b_token_handles_outlive_the_socket() {
    let (n, client, server) = started();
    let (_l, c, a) = secure_pair(&server, &client, 27015, 1);
    wsock::ext::set_thread_host(&server);
    let t = template(0, None, TOKEN_QUERY);
    let mut info: SOCKET_SECURITY_QUERY_INFO = unsafe { zeroed() };
    let mut len = 24u32;
    let rc = query(
        a,
        Some(&t),
        144,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    close(a);
    let h = info.PeerMachineAccessTokenHandle as HANDLE;
    let mut need = 0u32;
    unsafe { GetTokenInformation(h, TokenUser, null_mut(), 0, &mut need) };
    assert_eq!(
        unsafe { GetLastError() },
        ERROR_INSUFFICIENT_BUFFER,
        "the handle still works"
    );
    assert!(need > 0);
    let st = settings(0, 1);
    assert_eq!(set_security(a, Some(&st), 8), (SOCKET_ERROR, WSAENOTSOCK));
    let b = peer_name(0, None, "host/x", 6);
    assert_eq!(set_name(a, &b, b.len()), (SOCKET_ERROR, WSAENOTSOCK));
    let p = v4([10, 0, 0, 1], 0);
    let rc = call(|| unsafe { WSADeleteSocketPeerTargetName(a, sa(&p), 16, null(), None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAENOTSOCK));
    let mut len = 24u32;
    assert_eq!(
        query(a, Some(&t), 144, null_mut(), &mut len),
        (SOCKET_ERROR, WSAENOTSOCK)
    );
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(a, null(), 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAENOTSOCK));
    for h in [
        info.PeerApplicationAccessTokenHandle,
        info.PeerMachineAccessTokenHandle,
    ] {
        assert_eq!(unsafe { CloseHandle(h as HANDLE) }, 1);
    }
    assert_eq!(wsock::identity::open_handles(&n), 0);
    let _ = c;
}

/// A successful query answers the same bytes through the wrapper and through `WSAIoctl`.
#[test]
fn case_15_wsaioctl_query_answers_like_the_wrapper() {
    let (_n, client, server) = started();
    let (_l, c, _a) = secure_pair(&server, &client, 27015, 1);
    let mut t = template(SOCKET_SECURITY_PROTOCOL_IPSEC2, None, 0);
    t.FieldMask = 3;
    let mut w = [0u64; 8];
    let mut wlen = 64u32;
    assert_eq!(
        query(c, Some(&t), 152, w.as_mut_ptr().cast(), &mut wlen),
        (0, 0)
    );
    let mut i = [0u64; 8];
    let mut n = 0u32;
    let rc = call(|| unsafe {
        WSAIoctl(
            c,
            SIO_QUERY_SECURITY,
            (&t as *const SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2).cast(),
            152,
            i.as_mut_ptr().cast(),
            64,
            &mut n,
            null_mut(),
            None,
        )
    });
    assert_eq!(rc, (0, 0));
    assert_eq!((n, i), (wlen, w));
    assert_eq!(n, 64);
    assert_ne!(w[3], 0, "MmSaId");
}

/// ENCRYPTED never without SECURED, on every query result the raw face produces (clear-text
/// connections here; the secured ones in cases 34 and 38).
#[test]
fn case_33_encrypted_implies_secured() {
    let (_n, client, server) = started();
    let (_l, c, a) = pair(&server, &client, 27015);
    for s in [c, a] {
        for proto in [0, 1, 2] {
            let t = template(proto, None, 0);
            let mut info = [0u64; 8];
            let mut len = 64u32;
            let rc = query(s, Some(&t), 152, info.as_mut_ptr().cast(), &mut len);
            assert_eq!(rc, (0, 0));
            let flags = (info[0] >> 32) as u32;
            assert!(flags & 0x2 == 0 || flags & 0x1 != 0, "flags {flags:#x}");
            assert_eq!(len, if proto == 2 { 64 } else { 24 });
        }
    }
}

fn query_flags(s: SOCKET) -> u32 {
    let mut info: SOCKET_SECURITY_QUERY_INFO = unsafe { zeroed() };
    let mut len = 24u32;
    let rc = query(
        s,
        None,
        0,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    info.Flags
}

#[test]
fn case_34_both_guarantee_encryption_is_secured_and_encrypted() {
    let (_n, client, server) = started();
    let (_l, c, a) = secure_pair(
        &server,
        &client,
        27015,
        SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    );
    assert_eq!(query_flags(c) & 0x3, 0x3);
    wsock::ext::set_thread_host(&server);
    assert_eq!(query_flags(a) & 0x3, 0x3);
}

/// The client requires encryption but can offer only integrity-only ESP: no SA it accepts,
/// no connection, and nothing in clear.
#[test]
fn case_35_guarantee_encryption_with_integrity_only_proposals_fails() {
    use wsock_stack::wsock_ipsec::esp::EspSuite;
    let dir = std::env::temp_dir().join(format!("wsock-case35-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("case35.pcap");
    let n = wsock::Network::builder(wsock::Scenario::default_scenario())
        .capture(&pcap)
        .ipsec_setup(|_, s| {
            s.failure_delay = std::time::Duration::from_millis(1500);
            s.esp_offer = Some(vec![(EspSuite::NullAuthAesGmac { key_bits: 128 }, false)]);
        })
        .start()
        .expect("network starts");
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    let _l = secure_listener(&server, &client, 27015, 0);
    let c = tcp();
    let st = settings(0, SOCKET_SETTINGS_GUARANTEE_ENCRYPTION);
    assert_eq!(set_security(c, Some(&st), 8), (0, 0));
    let to = v4([10, 0, 0, 2], 27015);
    let rc = call(|| unsafe { connect(c, sa(&to), SIN_LEN) });
    assert_eq!(rc, (SOCKET_ERROR, WSAETIMEDOUT));
    n.flush_capture().unwrap();
    drop(n);
    let bytes = std::fs::read(&pcap).unwrap();
    assert!(
        !has_clear_ipv4(&bytes),
        "a clear-text packet crossed the wire"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn case_36_secured_client_fails_without_clear_text_when_negotiation_fails() {
    let dir = std::env::temp_dir().join(format!("wsock-case36-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("case36.pcap");
    let n = wsock::Network::builder(wsock::Scenario::default_scenario())
        .capture(&pcap)
        .ipsec_setup(|_, s| s.failure_delay = std::time::Duration::from_millis(1500))
        .start()
        .expect("network starts");
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    let _l = listener_on(&server, &client, 27015);
    let c = tcp();
    let st = settings(0, 0);
    assert_eq!(set_security(c, Some(&st), 8), (0, 0));
    // wsock's hosts always answer IKE: a peer that cannot authenticate as the target name is
    // how a negotiation fails here (docs/windows-differences.md).
    let b = peer_name(0, None, "host/MALLORY", 12);
    assert_eq!(set_name(c, &b, b.len()), (0, 0));
    let to = v4([10, 0, 0, 2], 27015);
    let rc = call(|| unsafe { connect(c, sa(&to), SIN_LEN) });
    assert_eq!(rc, (SOCKET_ERROR, WSAETIMEDOUT));
    // No connection to query.
    let mut len = 24u32;
    let mut info = [0u64; 3];
    let rc = query(c, None, 0, info.as_mut_ptr().cast(), &mut len);
    assert_eq!(rc, (SOCKET_ERROR, WSAENOTCONN));
    // Not one clear-text packet crossed the wire: the clear socket's GRE frames carry an IPv4
    // packet (ethertype 0x0800, then 0x45) only when something went in clear.
    n.flush_capture().unwrap();
    drop(n);
    let bytes = std::fs::read(&pcap).unwrap();
    assert!(!bytes.is_empty(), "the capture was written");
    assert!(
        !has_clear_ipv4(&bytes),
        "a clear-text packet crossed the wire"
    );
    // Control: the same connect without security is seen in clear by the same check.
    let pcap2 = dir.join("control.pcap");
    let n = wsock::Network::builder(wsock::Scenario::default_scenario())
        .capture(&pcap2)
        .start()
        .expect("network starts");
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    wsock::ext::set_thread_host(&client);
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    let _l = listener_on(&server, &client, 27015);
    let c = tcp();
    assert_eq!(call(|| unsafe { connect(c, sa(&to), SIN_LEN) }), (0, 0));
    n.flush_capture().unwrap();
    drop(n);
    assert!(has_clear_ipv4(&std::fs::read(&pcap2).unwrap()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether a capture holds a GRE-framed clear IPv4 packet (ethertype 0x0800, then 0x45).
fn has_clear_ipv4(pcap: &[u8]) -> bool {
    pcap.windows(5).any(|w| w == [0x00, 0x00, 0x08, 0x00, 0x45])
}

fn allow_insecure_fallback(listener_flags: Option<u32>) {
    let (_n, client, server) = started_failing_fast();
    let l = match listener_flags {
        Some(f) => secure_listener(&server, &client, 27015, f),
        None => listener_on(&server, &client, 27015),
    };
    let c = tcp();
    safety_timeout(c);
    let st = settings(0, SOCKET_SETTINGS_ALLOW_INSECURE);
    assert_eq!(set_security(c, Some(&st), 8), (0, 0));
    let b = peer_name(0, None, "host/MALLORY", 12);
    assert_eq!(set_name(c, &b, b.len()), (0, 0));
    let to = v4([10, 0, 0, 2], 27015);
    assert_eq!(call(|| unsafe { connect(c, sa(&to), SIN_LEN) }), (0, 0));
    assert_eq!(query_flags(c) & SOCKET_INFO_CONNECTION_SECURED, 0);
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET);
    send_all(c, b"in clear");
    wsock::ext::set_thread_host(&server);
    assert_eq!(recv_some(a, 64), b"in clear");
}

/// The server accepts clear text too (its own settings allow it).
#[test]
fn case_37_allow_insecure_falls_back_to_clear_text() {
    allow_insecure_fallback(Some(SOCKET_SETTINGS_ALLOW_INSECURE));
}

/// The reference's exact case: the server socket has no security at all.
#[test]
fn case_37_allow_insecure_falls_back_to_clear_text_with_an_unsecured_server() {
    allow_insecure_fallback(None);
}

#[test]
fn case_38_default_policy_is_integrity_only() {
    let (_n, client, server) = started();
    wsock::ext::set_thread_host(&server);
    let l = tcp();
    assert_eq!(set_security(l, None, 0), (0, 0));
    bind_v4(l, [0, 0, 0, 0], 27015);
    assert_eq!(unsafe { listen(l, 10) }, 0);
    wsock::ext::set_thread_host(&client);
    let c = tcp();
    safety_timeout(c);
    assert_eq!(set_security(c, None, 0), (0, 0));
    let to = v4([10, 0, 0, 2], 27015);
    assert_eq!(call(|| unsafe { connect(c, sa(&to), SIN_LEN) }), (0, 0));
    assert_eq!(query_flags(c), SOCKET_INFO_CONNECTION_SECURED);
}

/// No credential the two hosts share (each has a pre-shared key of its own): negotiation fails
/// and, without ALLOW_INSECURE, so does the connect.
#[test]
fn case_39_no_shared_credential_fails_the_connect() {
    use wsock_stack::core::IpsecCredential;
    let net = wsock::Network::builder(wsock::Scenario::default_scenario())
        .ipsec_setup(|host, s| {
            s.failure_delay = std::time::Duration::from_millis(1500);
            let id = match &s.credential {
                IpsecCredential::Certificate { id, .. } | IpsecCredential::Psk { id, .. } => {
                    id.clone()
                }
            };
            s.credential = IpsecCredential::Psk {
                id,
                key: format!("{host}'s own key").into_bytes(),
                peers: Vec::new(),
            };
        })
        .start()
        .expect("network starts");
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    wsock::ext::set_thread_host(&server);
    let l = tcp();
    assert_eq!(set_security(l, None, 0), (0, 0));
    bind_v4(l, [0, 0, 0, 0], 27015);
    assert_eq!(unsafe { listen(l, 10) }, 0);
    wsock::ext::set_thread_host(&client);
    let c = tcp();
    assert_eq!(set_security(c, None, 0), (0, 0));
    let to = v4([10, 0, 0, 2], 27015);
    let rc = call(|| unsafe { connect(c, sa(&to), SIN_LEN) });
    assert_eq!(rc, (SOCKET_ERROR, WSAETIMEDOUT));
}

#[test]
fn case_40_target_name_mismatch_fails_the_connect() {
    let (_n, client, server) = started_failing_fast();
    let _l = secure_listener(&server, &client, 27015, 1);
    let c = tcp();
    let st = settings(0, 1);
    assert_eq!(set_security(c, Some(&st), 8), (0, 0));
    let b = peer_name(0, None, "host/b.example", 14);
    assert_eq!(set_name(c, &b, b.len()), (0, 0));
    let to = v4([10, 0, 0, 2], 27015);
    let rc = call(|| unsafe { connect(c, sa(&to), SIN_LEN) });
    assert_eq!(rc, (SOCKET_ERROR, WSAETIMEDOUT));
}

// ------------------------------------------------------------------ impersonation

fn impersonated_user() -> Option<String> {
    wsock::ext::current_impersonation().map(|i| format!("{:?}", i.token().user().sid))
}

#[test]
fn case_41_impersonate_the_accepted_peer_then_revert() {
    let (_n, client, server) = started();
    let (_l, _c, a) = secure_pair(&server, &client, 27015, 1);
    wsock::ext::set_thread_host(&server);
    assert!(impersonated_user().is_none());
    assert_eq!(
        call(|| unsafe { WSAImpersonateSocketPeer(a, null(), 0) }),
        (0, 0)
    );
    let me = wsock::ext::current_impersonation().expect("impersonating");
    let dir = wsock::identity::directory(&server).unwrap();
    let name = dir
        .lookup_sid(&me.token().user().sid)
        .unwrap()
        .name()
        .to_string();
    assert_eq!(name, "CLIENT$", "no user authenticated: the peer machine");
    assert_eq!(call(|| unsafe { WSARevertImpersonation() }), (0, 0));
    assert!(impersonated_user().is_none());
}

#[test]
fn case_42_revert_without_impersonation_is_a_no_op() {
    assert!(impersonated_user().is_none());
    assert_eq!(call(|| unsafe { WSARevertImpersonation() }), (0, 0));
    assert_eq!(call(|| unsafe { WSARevertImpersonation() }), (0, 0));
    assert!(impersonated_user().is_none());
}

#[test]
fn case_43_impersonation_is_per_thread() {
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).unwrap();
    let server = net.host("server").unwrap();
    let peer = wsock::identity::peer_impersonation(&server, "CLIENT", Some("alice")).unwrap();
    let sid = format!("{:?}", peer.token().user().sid);
    let (to_b, from_a) = std::sync::mpsc::channel::<()>();
    let (to_a, from_b) = std::sync::mpsc::channel::<()>();
    let a = std::thread::spawn(move || {
        wsock::ext::impersonate(peer);
        to_b.send(()).unwrap();
        from_b.recv().unwrap();
        let still = impersonated_user();
        unsafe { WSARevertImpersonation() };
        (still, impersonated_user())
    });
    from_a.recv().unwrap();
    // Thread B sees nothing, and its revert does not end A's impersonation.
    assert!(impersonated_user().is_none());
    assert_eq!(unsafe { WSARevertImpersonation() }, 0);
    to_a.send(()).unwrap();
    let (during, after) = a.join().unwrap();
    assert_eq!(during, Some(sid));
    assert_eq!(after, None);
}

#[test]
fn case_44_udp_impersonation_needs_an_address() {
    let _n = started();
    let u = udp();
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(u, null(), 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEFAULT));
}

#[test]
fn case_45_udp_impersonation_short_or_foreign_address() {
    let _n = started();
    let u = udp();
    let p = v4([10, 0, 0, 2], 5000);
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(u, sa(&p), 8) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEMSGSIZE));
    let mut unix = p;
    unix.sin_family = AF_UNIX;
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(u, sa(&unix), 16) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEAFNOSUPPORT));
    assert!(impersonated_user().is_none());
}

#[test]
fn case_46_impersonation_on_a_non_blocking_socket_is_einval() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    nonblocking(c, true);
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(c, null(), 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEINVAL));
    assert!(impersonated_user().is_none());
    // A TCP socket that is not connected has no peer.
    let s = tcp();
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(s, null(), 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAENOTCONN));
}

/// A clear-text connection has no authenticated peer to impersonate.
#[test]
fn case_41b_clear_text_connection_has_no_peer_to_impersonate() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    let rc = call(|| unsafe { WSAImpersonateSocketPeer(c, null(), 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEINVAL));
    assert!(impersonated_user().is_none());
}

// ------------------------------------------------------------------ overlapped arguments

static CASE47_CALLS: AtomicU32 = AtomicU32::new(0);

unsafe extern "system" fn case47_routine(_e: u32, _b: u32, _ov: *mut OVERLAPPED, _f: u32) {
    CASE47_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn case_47_overlapped_arguments_ignored_on_non_overlapped_socket() {
    let _n = started();
    let s = unsafe { WSASocketW(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP, null(), 0, 0) };
    assert_ne!(s, INVALID_SOCKET);
    let ov: OVERLAPPED = unsafe { zeroed() };
    let rc = call(|| unsafe { WSASetSocketSecurity(s, null(), 0, &ov, Some(case47_routine)) });
    assert_eq!(rc, (0, 0));
    assert_eq!(unsafe { SleepEx(10, 1) }, 0, "nothing queued");
    assert_eq!(CASE47_CALLS.load(Ordering::SeqCst), 0);
    assert_eq!(ov.Internal, 0, "the OVERLAPPED is not touched");
}

fn wait1(e: WSAEVENT) -> u32 {
    let hs = [e as *mut std::ffi::c_void];
    unsafe { WSAWaitForMultipleEvents(1, hs.as_ptr(), 0, 0, 0) }
}

static CASE48_CALLS: AtomicU32 = AtomicU32::new(0);

unsafe extern "system" fn case48_routine(e: u32, _b: u32, _ov: *mut OVERLAPPED, f: u32) {
    assert_eq!((e, f), (0, 0));
    CASE48_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// On an overlapped socket the calls complete at once: 0, the event signalled, or the routine
/// queued for the next alertable wait.
#[test]
fn case_48_overlapped_socket_completes_at_once_and_indicates_it() {
    let _n = started();
    let s = tcp(); // socket() sockets are overlapped
    let ev = unsafe { WSACreateEvent() };
    let mut ov: OVERLAPPED = unsafe { zeroed() };
    ov.hEvent = ev as _;
    let st = settings(0, 1);
    let rc = call(|| unsafe { WSASetSocketSecurity(s, &st, 8, &raw mut ov, None) });
    assert_eq!(rc, (0, 0));
    assert_eq!(wait1(ev), WSA_WAIT_EVENT_0 as u32);
    let (mut n, mut fl) = (7u32, 7u32);
    assert_eq!(
        unsafe { WSAGetOverlappedResult(s, &ov, &mut n, 0, &mut fl) },
        1
    );
    assert_eq!(n, 0);
    let mut ov2: OVERLAPPED = unsafe { zeroed() };
    let b = peer_name(0, None, "host/SERVER", 11);
    let rc = call(|| unsafe {
        WSASetSocketPeerTargetName(s, b.cptr(), b.len(), &raw mut ov2, Some(case48_routine))
    });
    assert_eq!(rc, (0, 0));
    assert_eq!(
        CASE48_CALLS.load(Ordering::SeqCst),
        0,
        "only in an alertable wait"
    );
    assert_eq!(unsafe { SleepEx(1000, 1) }, 192, "WAIT_IO_COMPLETION");
    assert_eq!(CASE48_CALLS.load(Ordering::SeqCst), 1);
    // A failed call indicates nothing.
    let mut ov3: OVERLAPPED = unsafe { zeroed() };
    let ev3 = unsafe { WSACreateEvent() };
    ov3.hEvent = ev3 as _;
    let rc = call(|| unsafe { WSASetSocketSecurity(s, &st, 8, &raw mut ov3, None) });
    assert_eq!(rc, (SOCKET_ERROR, WSAEINVAL));
    assert_eq!(wait1(ev3), WSA_WAIT_TIMEOUT);
}

// ------------------------------------------------------------------ layouts, close, end to end

#[test]
fn case_49_struct_abi() {
    assert_eq!(size_of::<SOCKET_SECURITY_SETTINGS>(), 8);
    assert_eq!(size_of::<SOCKET_SECURITY_SETTINGS_IPSEC>(), 88);
    assert_eq!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, AllStrings), 84);
    assert_eq!(size_of::<SOCKET_PEER_TARGET_NAME>(), 144);
    assert_eq!(offset_of!(SOCKET_PEER_TARGET_NAME, PeerAddress), 8);
    assert_eq!(
        offset_of!(SOCKET_PEER_TARGET_NAME, PeerTargetNameStringLen),
        136
    );
    assert_eq!(offset_of!(SOCKET_PEER_TARGET_NAME, AllStrings), 140);
    assert_eq!(size_of::<SOCKET_SECURITY_QUERY_TEMPLATE>(), 144);
    assert_eq!(
        offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE, PeerTokenAccessMask),
        136
    );
    assert_eq!(size_of::<SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2>(), 152);
    assert_eq!(
        offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2, Flags),
        140
    );
    assert_eq!(
        offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2, FieldMask),
        144
    );
    assert_eq!(size_of::<SOCKET_SECURITY_QUERY_INFO>(), 24);
    assert_eq!(size_of::<SOCKET_SECURITY_QUERY_INFO_IPSEC2>(), 64);
    assert_eq!(offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, MmSaId), 24);
    assert_eq!(offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, QmSaId), 32);
    assert_eq!(
        offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, NegotiationWinerr),
        40
    );
    assert_eq!(
        offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, SaLookupContext),
        44
    );
    assert_eq!(
        (
            SIO_SET_SECURITY,
            SIO_QUERY_SECURITY,
            SIO_SET_PEER_TARGET_NAME,
            SIO_DELETE_PEER_TARGET_NAME
        ),
        (0x980000C8, 0xD80000C9, 0x980000CA, 0x980000CB)
    );
    // Reachable under windows-sys's module path too.
    let _f: unsafe extern "system" fn() -> i32 =
        wsock::sys::Win32::Networking::WinSock::WSARevertImpersonation;
}

#[test]
fn case_50_close_delivers_queued_data_before_removing_security() {
    let (_n, client, server) = started();
    let (_l, c, a) = secure_pair(&server, &client, 27015, 1);
    let data = vec![0x5au8; 100_000];
    send_all(c, &data);
    close(c);
    wsock::ext::set_thread_host(&server);
    let mut got = Vec::new();
    loop {
        let chunk = recv_some(a, 65536);
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, data);
}

#[test]
fn case_52_ipsec2_query_reports_sa_ids() {
    let (_n, client, server) = started();
    let (_l, c, _a) = secure_pair(&server, &client, 27015, 1);
    let t = template(SOCKET_SECURITY_PROTOCOL_IPSEC2, None, 0);
    let mut t2 = t;
    t2.FieldMask =
        SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID | SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID;
    let mut info: SOCKET_SECURITY_QUERY_INFO_IPSEC2 = unsafe { zeroed() };
    let mut len = 64u32;
    let rc = query(
        c,
        Some(&t2),
        152,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO_IPSEC2).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    assert_eq!(
        (len, info.SecurityProtocol),
        (64, SOCKET_SECURITY_PROTOCOL_IPSEC2)
    );
    assert!(info.MmSaId != 0 && info.QmSaId != 0);
    assert_eq!(info.NegotiationWinerr, 0);
    let ctx = info.SaLookupContext;
    assert!(ctx.data1 != 0 || ctx.data2 != 0 || ctx.data3 != 0 || ctx.data4 != [0; 8]);
}

/// `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE` (unconfirmed-resolved.md 5e, our
/// choice in docs/windows-differences.md): with `QmSaId` in the field mask, the first quick mode
/// rekey (2 s lifetimes here) aborts the connection: a blocked `recv` fails with
/// WSAECONNABORTED and the peer's with WSAECONNRESET. A connection watching `MmSaId` only lives
/// through the quick mode rekeys.
#[test]
fn case_52c_abort_on_field_change_at_a_quick_mode_rekey() {
    let dir = std::env::temp_dir().join(format!("wsock-case52c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("case52c.pcap");
    let n = wsock::Network::builder(wsock::Scenario::default_scenario())
        .capture(&pcap)
        .ipsec_setup(|_, s| {
            s.child_lifetime =
                wsock_stack::core::child_lifetime(Some(std::time::Duration::from_secs(2)), None);
        })
        .start()
        .expect("network starts");
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    wsock::ext::set_thread_host(&client);
    let mut data: WSADATA = unsafe { zeroed() };
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    let (_l, c, a) = secure_pair(&server, &client, 27016, 0);
    let (_l2, c2, a2) = secure_pair(&server, &client, 27017, 0);
    let mut t = template(SOCKET_SECURITY_PROTOCOL_IPSEC2, None, 0);
    t.Flags = SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE;
    for (s, mask) in [
        (c, SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID),
        (c2, SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID),
    ] {
        t.FieldMask = mask;
        let mut info: SOCKET_SECURITY_QUERY_INFO_IPSEC2 = unsafe { zeroed() };
        let mut len = 64u32;
        let rc = query(
            s,
            Some(&t),
            152,
            (&mut info as *mut SOCKET_SECURITY_QUERY_INFO_IPSEC2).cast(),
            &mut len,
        );
        assert_eq!(rc, (0, 0));
        assert!(info.MmSaId != 0 || info.QmSaId != 0, "secured");
    }
    // Generous deadlines: the outcome is asserted, not the time it takes.
    for s in [c, a, c2, a2] {
        set_int(s, SOL_SOCKET, SO_RCVTIMEO, 30_000);
    }
    let mut buf = [0u8; 16];
    let rc = call(|| unsafe { recv(c, buf.as_mut_ptr(), 16, 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAECONNABORTED));
    let rc = call(|| unsafe { recv(a, buf.as_mut_ptr(), 16, 0) });
    assert_eq!(rc, (SOCKET_ERROR, WSAECONNRESET));
    // The MmSaId watcher is still connected, a quick mode rekey later.
    let msg = b"still here";
    assert_eq!(unsafe { send(c2, msg.as_ptr(), 10, 0) }, 10);
    assert_eq!(unsafe { recv(a2, buf.as_mut_ptr(), 16, 0) }, 10);
    assert_eq!(&buf[..10], msg);
    // The reset, like everything else, crossed the wire inside ESP.
    n.flush_capture().unwrap();
    drop(n);
    let bytes = std::fs::read(&pcap).unwrap();
    assert!(
        !has_clear_ipv4(&bytes),
        "a clear-text packet crossed the wire"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The IPSEC2 answer on a clear-text connection: 64 bytes, protocol IPSEC2, no SA ids.
#[test]
fn case_52b_ipsec2_query_shape_on_clear_text() {
    let (_n, client, server) = started();
    let (_l, c, _a) = pair(&server, &client, 27015);
    let mut t = template(SOCKET_SECURITY_PROTOCOL_IPSEC2, None, 0);
    t.FieldMask = 3;
    let mut info: SOCKET_SECURITY_QUERY_INFO_IPSEC2 = unsafe { zeroed() };
    info.MmSaId = 99;
    let mut len = 64u32;
    let rc = query(
        c,
        Some(&t),
        152,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO_IPSEC2).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    assert_eq!((len, info.SecurityProtocol, info.Flags), (64, 2, 0));
    assert_eq!((info.MmSaId, info.QmSaId), (0, 0));
    // ABORT_CONNECTION_ON_FIELD_CHANGE on a clear-text connection: the same answer, nothing to
    // watch; an undefined flag bit is WSAEINVAL.
    t.Flags = SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE;
    let rc = query(
        c,
        Some(&t),
        152,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO_IPSEC2).cast(),
        &mut len,
    );
    assert_eq!(rc, (0, 0));
    assert_eq!((len, info.SecurityProtocol, info.Flags), (64, 2, 0));
    t.Flags = 0x2;
    let rc = query(
        c,
        Some(&t),
        152,
        (&mut info as *mut SOCKET_SECURITY_QUERY_INFO_IPSEC2).cast(),
        &mut len,
    );
    assert_eq!(rc, (SOCKET_ERROR, WSAEINVAL));
}
