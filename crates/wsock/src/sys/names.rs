//! Names and addresses: byte order (`htons`, ...), `FD_ISSET` (`__WSAFDIsSet`), text to address
//! and back (`inet_pton`, `inet_ntop`, `inet_addr`, `inet_ntoa`, `WSAStringToAddress*`,
//! `WSAAddressToString*`) and name resolution (`getaddrinfo`, `GetAddrInfoW`, `getnameinfo`,
//! `GetNameInfoW`, `gethostname`, `GetHostNameW`, `gethostbyname`).
//!
//! Text formats follow what real Windows accepts and prints (recorded by Microsoft's pages and
//! Wine's ws2_32 conformance tests, `dlls/ws2_32/tests/protocol.c`): `inet_pton` is strict,
//! `inet_addr` and `WSAStringToAddress` take the classic `a`, `a.b`, `a.b.c`, `a.b.c.d` forms with
//! hex and octal parts, IPv6 text compresses the longest run of two or more zero groups and
//! prints IPv4-compatible, -mapped and ISATAP tails in dotted form.
//!
//! Name resolution asks the calling thread's network (see [`crate::ext`]), never a real DNS: a
//! name resolves when it is `localhost`, the empty string (this host), or a host of the
//! scenario by its host name or machine name, with or without its domain suffix, in any case.
//! Every choice where Windows is silent is listed in `docs/windows-differences.md`.
//!
//! Nothing here panics on any input; result chains are allocated so that `freeaddrinfo`
//! (`FreeAddrInfoW`) frees exactly what `getaddrinfo` (`GetAddrInfoW`) allocated.

use std::cell::{RefCell, UnsafeCell};
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use windows_sys::core::{PCSTR, PCWSTR, PSTR, PWSTR};
use wsock_stack::scenario::HostSpec;
use wsock_stack::Host;

use super::{
    read_sockaddr, ADDRINFOA, ADDRINFOW, AF_INET, AF_INET6, AF_UNSPEC, AI_CANONNAME, AI_FQDN,
    AI_NUMERICHOST, AI_NUMERICSERV, AI_PASSIVE, AI_V4MAPPED, FD_SET, HOSTENT, INADDR_NONE, IN_ADDR,
    IPPROTO_TCP, IPPROTO_UDP, LAST_ERROR, NI_DGRAM, NI_NAMEREQD, NI_NOFQDN, NI_NUMERICHOST,
    NI_NUMERICSERV, SOCKADDR, SOCKADDR_IN6, SOCKET, SOCKET_ERROR, SOCK_DGRAM, SOCK_STREAM,
    WSAEAFNOSUPPORT, WSAEFAULT, WSAEINVAL, WSAESOCKTNOSUPPORT, WSAHOST_NOT_FOUND,
    WSANOTINITIALISED, WSANO_DATA, WSANO_RECOVERY, WSAPROTOCOL_INFOA, WSAPROTOCOL_INFOW,
    WSATYPE_NOT_FOUND,
};
use crate::winsock::Winsock;

fn set_error(code: i32) {
    LAST_ERROR.with(|e| e.set(code));
}

/// Runs `f`, turning a panic (a bug: nothing here should panic) into `fallback`, so no panic
/// crosses an `extern "system"` boundary.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The calling thread's host, if `WSAStartup` was called on its network.
fn started() -> Result<(Host, Arc<Winsock>), i32> {
    match crate::ext::current() {
        Ok((h, ws)) if ws.initialised() => Ok((h, ws)),
        _ => Err(WSANOTINITIALISED),
    }
}

/// Wide strings longer than this (in UTF-16 units, without a terminator) are refused rather
/// than read on.
const MAX_WIDE: usize = 1 << 16;

/// Reads a NUL-terminated ANSI string; `None` for a null pointer.
unsafe fn ansi(p: PCSTR) -> Option<&'static [u8]> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p.cast()).to_bytes())
    }
}

/// Reads a NUL-terminated UTF-16 string; `None` for a null pointer, `Some(None)` when it is not
/// valid UTF-16 or longer than [`MAX_WIDE`].
unsafe fn wide(p: PCWSTR) -> Option<Option<String>> {
    if p.is_null() {
        return None;
    }
    let mut v = Vec::new();
    loop {
        let c = std::ptr::read_unaligned(p.add(v.len()));
        if c == 0 {
            break;
        }
        if v.len() >= MAX_WIDE {
            return Some(None);
        }
        v.push(c);
    }
    Some(String::from_utf16(&v).ok())
}

// ---------------------------------------------------------------- byte order

/// Converts a `u16` from host to network byte order (big-endian).
///
/// # Safety
/// None: no pointers (declared `unsafe` like every windows-sys import, so ported code compiles
/// unchanged).
pub unsafe extern "system" fn htons(hostshort: u16) -> u16 {
    hostshort.to_be()
}

/// Converts a `u32` from host to network byte order (big-endian).
///
/// # Safety
/// None: no pointers.
pub unsafe extern "system" fn htonl(hostlong: u32) -> u32 {
    hostlong.to_be()
}

/// Converts a `u16` from network to host byte order.
///
/// # Safety
/// None: no pointers.
pub unsafe extern "system" fn ntohs(netshort: u16) -> u16 {
    u16::from_be(netshort)
}

/// Converts a `u32` from network to host byte order.
///
/// # Safety
/// None: no pointers.
pub unsafe extern "system" fn ntohl(netlong: u32) -> u32 {
    u32::from_be(netlong)
}

// ---------------------------------------------------------------- FD_ISSET

/// What the `FD_ISSET` macro calls: nonzero when `fd` is among the first `fd_count` (at most 64)
/// entries of the set; 0 for a null set.
///
/// # Safety
/// `param1` is null or points to an `FD_SET`.
pub unsafe extern "system" fn __WSAFDIsSet(fd: SOCKET, param1: *mut FD_SET) -> i32 {
    if param1.is_null() {
        return 0;
    }
    let set = std::ptr::read_unaligned(param1);
    let n = (set.fd_count as usize).min(set.fd_array.len());
    i32::from(set.fd_array[..n].contains(&fd))
}

// ---------------------------------------------------------------- text parsing

/// `a.b.c.d`, four decimal parts of one to three digits without leading zeros, each at most 255:
/// the only IPv4 form `inet_pton` accepts (Wine `test_inet_pton`: "1.1.1.010", "1.2.3",
/// "0x00010203" are refused).
fn ipv4_strict(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in s.split(|&c| c == b'.') {
        if n == 4 || part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if part.len() > 1 && part[0] == b'0' {
            return None;
        }
        let v = part.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
        out[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then_some(out)
}

/// One number of the classic forms: `0x` hex (at least one digit; wraps at 32 bits as Windows'
/// `"0x123456789"` -> `0x23456789`), leading-`0` octal, or decimal. Returns the value and the
/// bytes consumed; `None` when `s` does not start with a number.
fn classic_number(s: &[u8]) -> Option<(u32, usize)> {
    if !s.first()?.is_ascii_digit() {
        return None;
    }
    if s[0] == b'0' && matches!(s.get(1), Some(b'x' | b'X')) {
        let mut v = 0u32;
        let mut i = 2;
        while let Some(d) = s.get(i).and_then(|c| (*c as char).to_digit(16)) {
            v = v.wrapping_mul(16).wrapping_add(d);
            i += 1;
        }
        return (i > 2).then_some((v, i));
    }
    let radix = if s[0] == b'0' { 8 } else { 10 };
    let mut v = 0u32;
    let mut i = 0;
    while let Some(d) = s.get(i).and_then(|c| (*c as char).to_digit(radix)) {
        v = v.checked_mul(radix)?.checked_add(d)?;
        i += 1;
    }
    Some((v, i))
}

/// The classic forms `a`, `a.b`, `a.b.c`, `a.b.c.d` (each part decimal, octal or hex; the last
/// part fills the remaining bytes). Returns the address and the bytes consumed: the caller
/// decides what may follow (`inet_addr`: end or whitespace; `WSAStringToAddress`: end or a port).
fn ipv4_classic(s: &[u8]) -> Option<([u8; 4], usize)> {
    let mut parts = [0u32; 4];
    let mut n = 0;
    let mut i = 0;
    loop {
        let (v, used) = classic_number(s.get(i..)?)?;
        parts[n] = v;
        n += 1;
        i += used;
        if n < 4 && s.get(i) == Some(&b'.') {
            i += 1;
            continue;
        }
        break;
    }
    let last = parts[n - 1];
    let last_max: u32 = match n {
        1 => u32::MAX,
        2 => 0x00ff_ffff,
        3 => 0xffff,
        _ => 0xff,
    };
    if last > last_max || parts[..n - 1].iter().any(|&p| p > 0xff) {
        return None;
    }
    let mut v = last;
    for (k, p) in parts[..n - 1].iter().enumerate() {
        v |= p << (24 - 8 * k);
    }
    Some((v.to_be_bytes(), i))
}

/// An IPv4 tail inside IPv6 text: four decimal parts of one to three digits (leading zeros
/// allowed: Wine `test_inet_pton` "1::001.2.3.4" is accepted, "1::0001.2.3.4" is not).
fn ipv4_tail(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in s.split(|&c| c == b'.') {
        if n == 4 || part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = part.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
        out[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then_some(out)
}

/// IPv6 text as Windows' `inet_pton` takes it: one to four hex digits per group, at most one
/// `::` standing for at least one zero group, an optional dotted IPv4 tail, nothing else (no
/// brackets, no scope, no spaces). Windows refuses a leading `::` followed by seven groups
/// (Wine `test_inet_pton` "::0:0:0:0:0:0:0", "::0:a:b:c:d:e:f"; Wine calls it a Windows bug);
/// so does wsock.
fn ipv6_text(s: &[u8]) -> Option<[u8; 16]> {
    let mut head: Vec<u16> = Vec::with_capacity(8);
    let mut tail: Vec<u16> = Vec::with_capacity(8);
    let mut compressed = false;
    let mut leading = false;
    let mut i = 0;
    if s.starts_with(b"::") {
        compressed = true;
        leading = true;
        i = 2;
    } else if s.first() == Some(&b':') || s.is_empty() {
        return None;
    }
    while i < s.len() {
        let groups = if compressed { &mut tail } else { &mut head };
        let start = i;
        while i < s.len() && s[i].is_ascii_hexdigit() {
            i += 1;
            if i - start > 4 {
                return None;
            }
        }
        if i < s.len() && s[i] == b'.' {
            let v4 = ipv4_tail(&s[start..])?;
            groups.push(u16::from_be_bytes([v4[0], v4[1]]));
            groups.push(u16::from_be_bytes([v4[2], v4[3]]));
            break;
        }
        if i == start {
            return None;
        }
        let g = std::str::from_utf8(&s[start..i]).ok()?;
        groups.push(u16::from_str_radix(g, 16).ok()?);
        if head.len() + tail.len() > 8 {
            return None;
        }
        if i == s.len() {
            break;
        }
        if s[i] != b':' {
            return None;
        }
        if s.get(i + 1) == Some(&b':') {
            if compressed {
                return None;
            }
            compressed = true;
            i += 2;
        } else {
            i += 1;
            if i == s.len() {
                return None;
            }
        }
    }
    let total = head.len() + tail.len();
    let ok = if compressed {
        total <= 7 && !(leading && total == 7)
    } else {
        total == 8
    };
    if !ok {
        return None;
    }
    let mut w = [0u16; 8];
    w[..head.len()].copy_from_slice(&head);
    w[8 - tail.len()..].copy_from_slice(&tail);
    let mut out = [0u8; 16];
    for (k, g) in w.iter().enumerate() {
        out[2 * k..2 * k + 2].copy_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// IPv6 text with an optional `%scope` (decimal).
fn ipv6_scoped(s: &[u8]) -> Option<([u8; 16], u32)> {
    match s.iter().position(|&c| c == b'%') {
        None => Some((ipv6_text(s)?, 0)),
        Some(p) => {
            let digits = &s[p + 1..];
            if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let scope = std::str::from_utf8(digits).ok()?.parse::<u32>().ok()?;
            Some((ipv6_text(&s[..p])?, scope))
        }
    }
}

/// A port after `:` in `WSAStringToAddress` text: a classic number (decimal, octal or hex) that
/// is all of `s`, 1..=65535 (Wine `test_WSAStringToAddress`: ":0", ":", ":65537" are refused).
fn classic_port(s: &[u8]) -> Option<u16> {
    let (v, used) = classic_number(s)?;
    if used != s.len() || v == 0 {
        return None;
    }
    u16::try_from(v).ok()
}

// ---------------------------------------------------------------- text formatting

fn is_v4_tail(w: &[u16; 8]) -> bool {
    if w[5] == 0x5efe && w[4] & !0x0200 == 0 {
        return true; // ISATAP
    }
    if w[..4].iter().any(|&g| g != 0) {
        return false;
    }
    match (w[4], w[5]) {
        (0, 0) | (0, 0xffff) | (0xffff, 0) => w[6] != 0,
        _ => false,
    }
}

/// IPv6 text the way Windows prints it (`RtlIpv6AddressToString` rules, as Wine's ws2_32 tests
/// record them): lower-case hex, the first longest run of two or more zero groups as `::`, the
/// IPv4-compatible (`::a.b.c.d`), -mapped (`::ffff:a.b.c.d`), -translated (`::ffff:0:a.b.c.d`)
/// and ISATAP tails in dotted form, `%scope` when nonzero, `[...]:port` when the port is nonzero.
fn fmt_v6(a: &[u8; 16], scope: u32, port: u16) -> String {
    use std::fmt::Write;
    let mut w = [0u16; 8];
    for (k, g) in w.iter_mut().enumerate() {
        *g = u16::from_be_bytes([a[2 * k], a[2 * k + 1]]);
    }
    let v4 = is_v4_tail(&w);
    let end = if v4 { 6 } else { 8 };
    let (mut gap, mut gap_len) = (usize::MAX, 1);
    let mut i = 0;
    while i < end {
        if w[i] == 0 {
            let s = i;
            while i < end && w[i] == 0 {
                i += 1;
            }
            if i - s > gap_len {
                gap = s;
                gap_len = i - s;
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::with_capacity(64);
    if port != 0 {
        out.push('[');
    }
    let mut i = 0;
    while i < end {
        if i == gap {
            out.push(':');
            i += gap_len;
            if i == end {
                out.push(':');
            }
            continue;
        }
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{:x}", w[i]);
        i += 1;
    }
    if v4 {
        if !out.ends_with(':') {
            out.push(':');
        }
        let _ = write!(out, "{}.{}.{}.{}", a[12], a[13], a[14], a[15]);
    }
    if scope != 0 {
        let _ = write!(out, "%{scope}");
    }
    if port != 0 {
        let _ = write!(out, "]:{port}");
    }
    out
}

fn fmt_v4(a: [u8; 4], port: u16) -> String {
    if port == 0 {
        format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
    } else {
        format!("{}.{}.{}.{}:{port}", a[0], a[1], a[2], a[3])
    }
}

fn fmt_addr(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => fmt_v4(v4.ip().octets(), v4.port()),
        SocketAddr::V6(v6) => fmt_v6(&v6.ip().octets(), v6.scope_id(), v6.port()),
    }
}

/// Copies `s` and a NUL into an ANSI buffer of `cap` bytes. `false` when it does not fit.
unsafe fn put_ansi(buf: *mut u8, cap: usize, s: &str) -> bool {
    if buf.is_null() || s.len() >= cap {
        return false;
    }
    std::ptr::copy_nonoverlapping(s.as_ptr(), buf, s.len());
    *buf.add(s.len()) = 0;
    true
}

/// Copies `s` and a NUL into a UTF-16 buffer of `cap` units. `false` when it does not fit.
unsafe fn put_wide(buf: *mut u16, cap: usize, s: &str) -> bool {
    let units: Vec<u16> = s.encode_utf16().collect();
    if buf.is_null() || units.len() >= cap {
        return false;
    }
    for (k, u) in units.iter().enumerate() {
        std::ptr::write_unaligned(buf.add(k), *u);
    }
    std::ptr::write_unaligned(buf.add(units.len()), 0);
    true
}

// ---------------------------------------------------------------- inet_pton / inet_ntop

/// What `inet_pton` parsed.
enum Pton {
    V4([u8; 4]),
    V6([u8; 16]),
    Invalid,
}

fn pton(family: i32, s: &[u8]) -> Result<Pton, i32> {
    match u16::try_from(family) {
        Ok(AF_INET) => Ok(ipv4_strict(s).map_or(Pton::Invalid, Pton::V4)),
        Ok(AF_INET6) => Ok(ipv6_text(s).map_or(Pton::Invalid, Pton::V6)),
        _ => Err(WSAEAFNOSUPPORT),
    }
}

unsafe fn store_pton(p: Pton, dst: *mut core::ffi::c_void) -> i32 {
    match p {
        Pton::V4(a) => std::ptr::copy_nonoverlapping(a.as_ptr(), dst.cast::<u8>(), 4),
        Pton::V6(a) => std::ptr::copy_nonoverlapping(a.as_ptr(), dst.cast::<u8>(), 16),
        Pton::Invalid => return 0,
    }
    1
}

/// Converts IPv4 (`AF_INET`, strict `a.b.c.d`) or IPv6 (`AF_INET6` = 23) text to the binary
/// address in network byte order: 4 or 16 bytes at `paddrbuf`.
///
/// Returns 1 on success, 0 when the text is not an address of that family (the last error is
/// left alone, as on Windows), -1 on error.
///
/// # Errors
/// -1 with `WSAEFAULT` for a null string or buffer, `WSAEAFNOSUPPORT` for another family.
///
/// # Safety
/// `pszaddrstring` is null or NUL-terminated; `paddrbuf` is null or has room for the address.
pub unsafe extern "system" fn inet_pton(
    family: i32,
    pszaddrstring: PCSTR,
    paddrbuf: *mut core::ffi::c_void,
) -> i32 {
    if pszaddrstring.is_null() || paddrbuf.is_null() {
        set_error(WSAEFAULT);
        return -1;
    }
    let s = CStr::from_ptr(pszaddrstring.cast()).to_bytes();
    match pton(family, s) {
        Ok(p) => store_pton(p, paddrbuf),
        Err(c) => {
            set_error(c);
            -1
        }
    }
}

/// The UTF-16 `inet_pton`. Unlike `inet_pton`, a string that is not an address also sets
/// `WSAEINVAL` (Wine `test_inet_pton`).
///
/// # Errors
/// As [`inet_pton`]; 0 with `WSAEINVAL` for text that is not an address.
///
/// # Safety
/// `pszaddrstring` is null or NUL-terminated; `paddrbuf` is null or has room for the address.
pub unsafe extern "system" fn InetPtonW(
    family: i32,
    pszaddrstring: PCWSTR,
    paddrbuf: *mut core::ffi::c_void,
) -> i32 {
    if pszaddrstring.is_null() || paddrbuf.is_null() {
        set_error(WSAEFAULT);
        return -1;
    }
    let text = wide(pszaddrstring).flatten().unwrap_or_default();
    let s = if text.is_ascii() {
        text.as_bytes()
    } else {
        b""
    };
    match pton(family, s) {
        Ok(p) => {
            let r = store_pton(p, paddrbuf);
            if r == 0 {
                set_error(WSAEINVAL);
            }
            r
        }
        Err(c) => {
            set_error(c);
            -1
        }
    }
}

unsafe fn ntop_text(family: i32, paddr: *const core::ffi::c_void) -> Result<String, i32> {
    let family = u16::try_from(family).map_err(|_| WSAEAFNOSUPPORT)?;
    if family != AF_INET && family != AF_INET6 {
        return Err(WSAEAFNOSUPPORT);
    }
    if paddr.is_null() {
        return Err(WSAEFAULT);
    }
    if family == AF_INET {
        let a = std::ptr::read_unaligned(paddr.cast::<[u8; 4]>());
        Ok(fmt_v4(a, 0))
    } else {
        let a = std::ptr::read_unaligned(paddr.cast::<[u8; 16]>());
        Ok(fmt_v6(&a, 0, 0))
    }
}

/// Converts a binary IPv4 (4 bytes) or IPv6 (16 bytes) address to text in `pstringbuf`, which
/// holds `stringbufsize` bytes (`INET_ADDRSTRLEN` = 22 and `INET6_ADDRSTRLEN` = 65 are always
/// enough). Returns `pstringbuf`, or null on error.
///
/// # Errors
/// Null with `WSAEAFNOSUPPORT` for another family, `WSAEFAULT` for a null address, `WSAEINVAL`
/// for a null buffer or one too small for the text and its NUL (Windows 7's code; later Windows
/// sets the NTSTATUS `STATUS_INVALID_PARAMETER` instead, per Wine `test_addr_to_print`).
///
/// # Safety
/// `paddr` is null or points to the address; `pstringbuf` is null or valid for `stringbufsize`
/// bytes.
pub unsafe extern "system" fn inet_ntop(
    family: i32,
    paddr: *const core::ffi::c_void,
    pstringbuf: PSTR,
    stringbufsize: usize,
) -> PCSTR {
    match ntop_text(family, paddr) {
        Ok(s) if put_ansi(pstringbuf, stringbufsize, &s) => pstringbuf,
        Ok(_) => {
            set_error(WSAEINVAL);
            std::ptr::null()
        }
        Err(c) => {
            set_error(c);
            std::ptr::null()
        }
    }
}

/// The UTF-16 `inet_ntop`; `stringbufsize` counts UTF-16 units.
///
/// # Errors
/// As [`inet_ntop`].
///
/// # Safety
/// `paddr` is null or points to the address; `pstringbuf` is null or valid for `stringbufsize`
/// units.
pub unsafe extern "system" fn InetNtopW(
    family: i32,
    paddr: *const core::ffi::c_void,
    pstringbuf: PWSTR,
    stringbufsize: usize,
) -> PCWSTR {
    match ntop_text(family, paddr) {
        Ok(s) if put_wide(pstringbuf, stringbufsize, &s) => pstringbuf,
        Ok(_) => {
            set_error(WSAEINVAL);
            std::ptr::null()
        }
        Err(c) => {
            set_error(c);
            std::ptr::null()
        }
    }
}

// ---------------------------------------------------------------- inet_addr / inet_ntoa

/// Converts IPv4 text in the classic forms (`a.b.c.d`, `a.b.c`, `a.b`, `a`; each part decimal,
/// `0x` hex or leading-`0` octal) to an address in network byte order. The text may end with
/// whitespace followed by anything (Wine `test_inet_addr`: "3.4.5.6  7" is 3.4.5.6); leading
/// whitespace is refused, except that the single-space string gives 0 as on Windows.
///
/// # Errors
/// `INADDR_NONE` for text that is not an address (the last error is left alone); `INADDR_NONE`
/// with `WSAEFAULT` for a null pointer.
///
/// # Safety
/// `cp` is null or NUL-terminated.
pub unsafe extern "system" fn inet_addr(cp: PCSTR) -> u32 {
    let Some(s) = ansi(cp) else {
        set_error(WSAEFAULT);
        return INADDR_NONE;
    };
    if s == b" " {
        return 0;
    }
    match ipv4_classic(s) {
        Some((a, used)) if used == s.len() || s[used].is_ascii_whitespace() || s[used] == 0x0b => {
            u32::from_ne_bytes(a)
        }
        _ => INADDR_NONE,
    }
}

thread_local! {
    static NTOA: UnsafeCell<[u8; 16]> = const { UnsafeCell::new([0u8; 16]) };
}

/// Converts an IPv4 address to dotted text in a buffer owned by the calling thread, valid until
/// the thread's next `inet_ntoa` (as on Windows: one buffer per thread).
///
/// # Safety
/// The returned pointer must not be used after the thread's next `inet_ntoa` or its exit.
pub unsafe extern "system" fn inet_ntoa(r#in: IN_ADDR) -> PSTR {
    let a = r#in.S_un.S_addr.to_ne_bytes();
    let s = fmt_v4(a, 0);
    NTOA.with(|b| {
        let p = b.get().cast::<u8>();
        if !put_ansi(p, 16, &s) {
            *p = 0;
        }
        p
    })
}

// ---------------------------------------------------------------- WSAAddressToString / WSAStringToAddress

unsafe fn address_text(lpsaaddress: *const SOCKADDR, len: u32) -> Result<String, i32> {
    started()?;
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    match read_sockaddr(lpsaaddress, len) {
        Ok(a) => Ok(fmt_addr(&a)),
        Err(WSAEAFNOSUPPORT) => Err(WSAEINVAL),
        Err(c) => Err(c),
    }
}

/// Formats a `SOCKADDR_IN` (`a.b.c.d`, `:port` when nonzero) or `SOCKADDR_IN6` (`addr%scope`,
/// `[addr%scope]:port` when the port is nonzero) as text. `*lpdwaddressstringlength` holds the
/// buffer size in characters and receives the length used, NUL included.
///
/// # Errors
/// `SOCKET_ERROR` with `WSANOTINITIALISED` before `WSAStartup`; `WSAEFAULT` for null pointers, an
/// address length short for its family, or a buffer too small (then `*lpdwaddressstringlength`
/// receives the size needed); `WSAEINVAL` for another family.
///
/// # Safety
/// Pointers are null or valid for the lengths given.
pub unsafe extern "system" fn WSAAddressToStringA(
    lpsaaddress: *const SOCKADDR,
    dwaddresslength: u32,
    _lpprotocolinfo: *const WSAPROTOCOL_INFOA,
    lpszaddressstring: PSTR,
    lpdwaddressstringlength: *mut u32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        let r = address_text(lpsaaddress, dwaddresslength).and_then(|s| {
            if lpdwaddressstringlength.is_null() {
                return Err(WSAEFAULT);
            }
            let need = (s.len() + 1) as u32;
            let cap = std::ptr::read_unaligned(lpdwaddressstringlength);
            std::ptr::write_unaligned(lpdwaddressstringlength, need);
            if put_ansi(lpszaddressstring, cap as usize, &s) {
                Ok(0)
            } else {
                Err(WSAEFAULT)
            }
        });
        super::finish(r)
    })
}

/// The UTF-16 `WSAAddressToStringA`; lengths count UTF-16 units.
///
/// # Errors
/// As [`WSAAddressToStringA`].
///
/// # Safety
/// Pointers are null or valid for the lengths given.
pub unsafe extern "system" fn WSAAddressToStringW(
    lpsaaddress: *const SOCKADDR,
    dwaddresslength: u32,
    _lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    lpszaddressstring: PWSTR,
    lpdwaddressstringlength: *mut u32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        let r = address_text(lpsaaddress, dwaddresslength).and_then(|s| {
            if lpdwaddressstringlength.is_null() {
                return Err(WSAEFAULT);
            }
            let need = (s.encode_utf16().count() + 1) as u32;
            let cap = std::ptr::read_unaligned(lpdwaddressstringlength);
            std::ptr::write_unaligned(lpdwaddressstringlength, need);
            if put_wide(lpszaddressstring, cap as usize, &s) {
                Ok(0)
            } else {
                Err(WSAEFAULT)
            }
        });
        super::finish(r)
    })
}

/// Parses `WSAStringToAddress` text of `family`: the classic IPv4 forms with an optional
/// `:port`, or IPv6 as `addr`, `addr%scope`, `[addr%scope]` or `[addr%scope]:port`.
fn string_to_address(family: u16, s: &[u8]) -> Option<SocketAddr> {
    if family == AF_INET {
        let (a, used) = ipv4_classic(s)?;
        let port = match &s[used..] {
            [] => 0,
            [b':', rest @ ..] => classic_port(rest)?,
            _ => return None,
        };
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port));
    }
    let (inner, port) = if let Some(rest) = s.strip_prefix(b"[") {
        let close = rest.iter().position(|&c| c == b']')?;
        let port = match &rest[close + 1..] {
            [] => 0,
            [b':', p @ ..] => classic_port(p)?,
            _ => return None,
        };
        (&rest[..close], port)
    } else {
        (s, 0)
    };
    let (a, scope) = ipv6_scoped(inner)?;
    Some(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::from(a),
        port,
        0,
        scope,
    )))
}

unsafe fn string_to_address_into(
    text: Option<Option<Vec<u8>>>,
    addressfamily: i32,
    lpaddress: *mut SOCKADDR,
    lpaddresslength: *mut i32,
) -> Result<i32, i32> {
    started()?;
    let family = match u16::try_from(addressfamily) {
        Ok(f @ (AF_INET | AF_INET6)) => f,
        _ => return Err(WSAEINVAL),
    };
    let need: i32 = if family == AF_INET { 16 } else { 28 };
    let Some(text) = text else {
        return Err(WSAEFAULT);
    };
    if lpaddresslength.is_null() {
        return Err(WSAEFAULT);
    }
    let cap = std::ptr::read_unaligned(lpaddresslength);
    if cap < need || lpaddress.is_null() {
        std::ptr::write_unaligned(lpaddresslength, need);
        return Err(WSAEFAULT);
    }
    std::ptr::write_bytes(lpaddress.cast::<u8>(), 0, need as usize);
    let Some(addr) = text.and_then(|t| string_to_address(family, &t)) else {
        return Err(WSAEINVAL);
    };
    let mut len = need;
    super::write_sockaddr(addr, lpaddress, &mut len)?;
    std::ptr::write_unaligned(lpaddresslength, len);
    Ok(0)
}

/// Parses address text of `addressfamily` (`AF_INET` or `AF_INET6`) into a `SOCKADDR_IN` or
/// `SOCKADDR_IN6` (see [`WSAAddressToStringA`] for the forms, plus the classic IPv4 forms of
/// [`inet_addr`] and ports in decimal, octal or hex). `*lpaddresslength` holds the buffer size
/// and receives the size used.
///
/// # Errors
/// `SOCKET_ERROR` with `WSANOTINITIALISED` before `WSAStartup`; `WSAEFAULT` for null pointers or
/// a buffer smaller than the address (then `*lpaddresslength` receives the size needed);
/// `WSAEINVAL` for another family or text that is not an address (the buffer is then zeroed).
///
/// # Safety
/// Pointers are null or valid; the string is NUL-terminated.
pub unsafe extern "system" fn WSAStringToAddressA(
    addressstring: PCSTR,
    addressfamily: i32,
    _lpprotocolinfo: *const WSAPROTOCOL_INFOA,
    lpaddress: *mut SOCKADDR,
    lpaddresslength: *mut i32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        let text = ansi(addressstring).map(|s| Some(s.to_vec()));
        super::finish(string_to_address_into(
            text,
            addressfamily,
            lpaddress,
            lpaddresslength,
        ))
    })
}

/// The UTF-16 `WSAStringToAddressA`.
///
/// # Errors
/// As [`WSAStringToAddressA`].
///
/// # Safety
/// Pointers are null or valid; the string is NUL-terminated.
pub unsafe extern "system" fn WSAStringToAddressW(
    addressstring: PCWSTR,
    addressfamily: i32,
    _lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    lpaddress: *mut SOCKADDR,
    lpaddresslength: *mut i32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        let text = wide(addressstring).map(|s| s.filter(|t| t.is_ascii()).map(String::into_bytes));
        super::finish(string_to_address_into(
            text,
            addressfamily,
            lpaddress,
            lpaddresslength,
        ))
    })
}

// ---------------------------------------------------------------- services

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Both,
}

/// Well-known services, from the Windows `services` file (`%WINDIR%\system32\drivers\etc`):
/// name, port, protocols. Aliases follow their service.
const SERVICES: &[(&str, u16, Proto)] = &[
    ("echo", 7, Proto::Both),
    ("discard", 9, Proto::Both),
    ("daytime", 13, Proto::Both),
    ("qotd", 17, Proto::Both),
    ("chargen", 19, Proto::Both),
    ("ftp-data", 20, Proto::Tcp),
    ("ftp", 21, Proto::Tcp),
    ("ssh", 22, Proto::Tcp),
    ("telnet", 23, Proto::Tcp),
    ("smtp", 25, Proto::Tcp),
    ("time", 37, Proto::Both),
    ("domain", 53, Proto::Both),
    ("bootps", 67, Proto::Udp),
    ("bootpc", 68, Proto::Udp),
    ("tftp", 69, Proto::Udp),
    ("finger", 79, Proto::Tcp),
    ("http", 80, Proto::Tcp),
    ("www", 80, Proto::Tcp),
    ("www-http", 80, Proto::Tcp),
    ("kerberos", 88, Proto::Both),
    ("pop3", 110, Proto::Tcp),
    ("nntp", 119, Proto::Tcp),
    ("ntp", 123, Proto::Udp),
    ("epmap", 135, Proto::Both),
    ("netbios-ns", 137, Proto::Both),
    ("netbios-dgm", 138, Proto::Udp),
    ("netbios-ssn", 139, Proto::Tcp),
    ("imap", 143, Proto::Tcp),
    ("snmp", 161, Proto::Udp),
    ("ldap", 389, Proto::Tcp),
    ("https", 443, Proto::Both),
    ("microsoft-ds", 445, Proto::Both),
    ("isakmp", 500, Proto::Udp),
    ("syslog", 514, Proto::Udp),
    ("ldaps", 636, Proto::Tcp),
    ("ms-sql-s", 1433, Proto::Tcp),
    ("ms-wbt-server", 3389, Proto::Tcp),
    ("ipsec-msft", 4500, Proto::Udp),
];

fn proto_matches(have: Proto, want: Option<Proto>) -> bool {
    match want {
        None => true,
        Some(w) => have == Proto::Both || have == w,
    }
}

fn service_port(name: &str, want: Option<Proto>) -> Option<u16> {
    SERVICES
        .iter()
        .find(|(n, _, p)| n.eq_ignore_ascii_case(name) && proto_matches(*p, want))
        .map(|(_, port, _)| *port)
}

fn service_name(port: u16, want: Proto) -> Option<&'static str> {
    SERVICES
        .iter()
        .find(|(_, p, pr)| *p == port && proto_matches(*pr, Some(want)))
        .map(|(n, _, _)| *n)
}

// ---------------------------------------------------------------- resolution

/// The hints that matter, read from an `ADDRINFOA` or `ADDRINFOW`.
#[derive(Clone, Copy, Default)]
struct Hints {
    flags: i32,
    family: i32,
    socktype: i32,
    protocol: i32,
}

impl Hints {
    fn has(&self, flag: u32) -> bool {
        self.flags as u32 & flag != 0
    }
}

/// What a lookup found: addresses in order, and the canonical name when asked for.
struct Found {
    addrs: Vec<SocketAddr>,
    canon: Option<String>,
}

/// RFC 6724 precedence of the default policy table (also Windows' default prefix policies):
/// the order `getaddrinfo` gives AF_UNSPEC results.
fn precedence(a: &IpAddr) -> u8 {
    let v6 = match a {
        IpAddr::V4(_) => return 35,
        IpAddr::V6(v6) => v6,
    };
    let s = v6.segments();
    if *v6 == Ipv6Addr::LOCALHOST {
        50
    } else if s[..5] == [0; 5] && s[5] == 0xffff {
        35
    } else if s[0] == 0x2002 {
        30
    } else if s[0] == 0x2001 && s[1] == 0 {
        5
    } else if s[0] & 0xfe00 == 0xfc00 {
        3
    } else if s[..6] == [0; 6] || s[0] & 0xffc0 == 0xfec0 || s[0] == 0x3ffe {
        1
    } else {
        40
    }
}

fn fqdn(spec: &HostSpec) -> String {
    format!("{}.{}", spec.name, spec.domain).to_ascii_lowercase()
}

fn machine(spec: &HostSpec) -> String {
    spec.machine
        .clone()
        .unwrap_or_else(|| spec.name.to_ascii_uppercase())
}

/// Whether `name` (already without a trailing dot) names `spec`: its host name or machine name,
/// alone or followed by `.` and its domain, in any case.
fn names_host(spec: &HostSpec, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let domain = spec.domain.to_ascii_lowercase();
    [
        spec.name.to_ascii_lowercase(),
        machine(spec).to_ascii_lowercase(),
    ]
    .iter()
    .any(|base| {
        name == *base
            || name
                .strip_prefix(base.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| rest == domain)
    })
}

/// A numeric host for `getaddrinfo`: IPv6 text (optionally `%scope`, optionally in brackets with
/// a port after them, which is ignored as on Windows: Wine `test_getaddrinfo` "[beef::cafe]:10239")
/// or IPv4 in the strict or classic forms.
fn numeric_host(s: &str) -> Option<(IpAddr, u32)> {
    let b = s.as_bytes();
    if let Some(rest) = b.strip_prefix(b"[") {
        let close = rest.iter().position(|&c| c == b']')?;
        match &rest[close + 1..] {
            [] => {}
            [b':', p @ ..] if !p.is_empty() && p.iter().all(u8::is_ascii_digit) => {}
            _ => return None,
        }
        let (a, scope) = ipv6_scoped(&rest[..close])?;
        return Some((IpAddr::V6(Ipv6Addr::from(a)), scope));
    }
    if b.contains(&b':') {
        let (a, scope) = ipv6_scoped(b)?;
        return Some((IpAddr::V6(Ipv6Addr::from(a)), scope));
    }
    if let Some(a) = ipv4_strict(b) {
        return Some((IpAddr::V4(Ipv4Addr::from(a)), 0));
    }
    match ipv4_classic(b) {
        Some((a, used)) if used == b.len() => Some((IpAddr::V4(Ipv4Addr::from(a)), 0)),
        _ => None,
    }
}

fn family_ok(a: &IpAddr, family: u16) -> bool {
    match family {
        AF_INET => a.is_ipv4(),
        AF_INET6 => a.is_ipv6(),
        _ => true,
    }
}

/// The addresses (without ports) and canonical name of `node` as seen from `host`.
fn lookup_node(host: &Host, node: Option<&str>, h: &Hints) -> Result<Found, i32> {
    let family = h.family as u16;
    let Some(node) = node else {
        let (v6, v4) = if h.has(AI_PASSIVE) {
            (Ipv6Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
        } else {
            (Ipv6Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
        };
        let addrs = [IpAddr::V6(v6), IpAddr::V4(v4)]
            .into_iter()
            .filter(|a| family_ok(a, family))
            .map(|a| SocketAddr::new(a, 0))
            .collect();
        return Ok(Found { addrs, canon: None });
    };
    if let Some((ip, scope)) = numeric_host(node) {
        let ip = match ip {
            IpAddr::V4(v4) if family == AF_INET6 && h.has(AI_V4MAPPED) => {
                IpAddr::V6(v4.to_ipv6_mapped())
            }
            other => other,
        };
        if !family_ok(&ip, family) {
            return Err(WSAHOST_NOT_FOUND);
        }
        let addr = match ip {
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope)),
            IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), 0),
        };
        let canon = node.trim_start_matches('[');
        let canon = canon.split(']').next().unwrap_or(canon).to_string();
        return Ok(Found {
            addrs: vec![addr],
            canon: Some(canon),
        });
    }
    if h.has(AI_NUMERICHOST) {
        return Err(WSAHOST_NOT_FOUND);
    }
    let name = node.strip_suffix('.').unwrap_or(node);
    let (mut ips, canon): (Vec<IpAddr>, String) = if name.is_empty() {
        let spec = host.spec();
        (
            vec![IpAddr::V6(spec.ipv6), IpAddr::V4(spec.ipv4)],
            fqdn(spec),
        )
    } else if name.eq_ignore_ascii_case("localhost") {
        (
            vec![
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ],
            "localhost".to_string(),
        )
    } else {
        let scenario = host.network().scenario();
        let spec = scenario
            .hosts
            .iter()
            .find(|s| names_host(s, name))
            .ok_or(WSAHOST_NOT_FOUND)?;
        (
            vec![IpAddr::V6(spec.ipv6), IpAddr::V4(spec.ipv4)],
            fqdn(spec),
        )
    };
    if family == AF_INET6 && h.has(AI_V4MAPPED) && !ips.iter().any(IpAddr::is_ipv6) {
        ips = ips
            .into_iter()
            .map(|a| match a {
                IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
                other => other,
            })
            .collect();
    }
    ips.retain(|a| family_ok(a, family));
    if ips.is_empty() {
        return Err(WSANO_DATA);
    }
    // Stable: equal precedence keeps the IPv6-first order above.
    ips.sort_by_key(|a| std::cmp::Reverse(precedence(a)));
    Ok(Found {
        addrs: ips.into_iter().map(|a| SocketAddr::new(a, 0)).collect(),
        canon: Some(canon),
    })
}

/// The port of `service` for the hints' socket type.
fn lookup_service(service: Option<&str>, h: &Hints) -> Result<u16, i32> {
    let Some(s) = service.filter(|s| !s.is_empty()) else {
        return Ok(0);
    };
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return s
            .parse::<u32>()
            .ok()
            .and_then(|v| u16::try_from(v).ok())
            .ok_or(WSATYPE_NOT_FOUND);
    }
    if h.has(AI_NUMERICSERV) {
        return Err(WSAHOST_NOT_FOUND);
    }
    let want = match (h.socktype, h.protocol) {
        (SOCK_STREAM, _) | (0, IPPROTO_TCP) => Some(Proto::Tcp),
        (SOCK_DGRAM, _) | (0, IPPROTO_UDP) => Some(Proto::Udp),
        _ => None,
    };
    service_port(s, want).ok_or(WSATYPE_NOT_FOUND)
}

/// `getaddrinfo` minus the memory: checks, then node and service lookups.
fn resolve(node: Option<&str>, service: Option<&str>, h: &Hints) -> Result<Found, i32> {
    let (host, _) = started()?;
    if node.is_none() && service.is_none() {
        return Err(WSAHOST_NOT_FOUND);
    }
    if !matches!(u16::try_from(h.family), Ok(AF_UNSPEC | AF_INET | AF_INET6)) {
        return Err(WSAEAFNOSUPPORT);
    }
    if !(0..=5).contains(&h.socktype) {
        return Err(WSAESOCKTNOSUPPORT);
    }
    if h.has(AI_CANONNAME) && (node.is_none() || h.has(AI_FQDN)) {
        return Err(WSAEINVAL);
    }
    let port = lookup_service(service, h)?;
    let mut found = lookup_node(&host, node, h)?;
    for a in &mut found.addrs {
        a.set_port(port);
    }
    // AI_FQDN (Windows 7 and later): the first result carries the fully qualified name too.
    if !h.has(AI_CANONNAME) && !h.has(AI_FQDN) {
        found.canon = None;
    }
    Ok(found)
}

/// Marks nodes wsock allocated, so freeing a foreign pointer leaks it instead of corrupting.
const NODE_MAGIC: u64 = 0x7773_6f63_6b5f_6169;

/// One result of `getaddrinfo`: the `ADDRINFOA` first (a pointer to the node is a pointer to
/// it), then the address it points to and the canonical name it may point to.
#[repr(C)]
struct NodeA {
    info: ADDRINFOA,
    sa: SOCKADDR_IN6,
    canon: Option<Box<[u8]>>,
    magic: u64,
}

/// One result of `GetAddrInfoW` (see [`NodeA`]).
#[repr(C)]
struct NodeW {
    info: ADDRINFOW,
    sa: SOCKADDR_IN6,
    canon: Option<Box<[u16]>>,
    magic: u64,
}

/// The bytes of a `SOCKADDR_IN` or `SOCKADDR_IN6` for `a`, and their length.
fn sockaddr_bytes(a: &SocketAddr) -> ([u8; 28], usize) {
    let mut b = [0u8; 28];
    match a {
        SocketAddr::V4(v4) => {
            b[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            (b, 16)
        }
        SocketAddr::V6(v6) => {
            b[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            (b, 28)
        }
    }
}

macro_rules! chain {
    ($build:ident, $free:ident, $node:ident, $info:ty, $ch:ty, $encode:expr) => {
        /// Allocates the result chain; freed by the matching free function.
        fn $build(found: Found, h: &Hints) -> *mut $info {
            let mut next: *mut $info = std::ptr::null_mut();
            for (i, a) in found.addrs.iter().enumerate().rev() {
                let (bytes, len) = sockaddr_bytes(a);
                let canon: Option<Box<[$ch]>> = if i == 0 {
                    found.canon.as_deref().map($encode)
                } else {
                    None
                };
                let mut node = Box::new($node {
                    // SAFETY: ADDRINFOA/W are plain C structs; all-zero is their default.
                    info: unsafe { std::mem::zeroed() },
                    // SAFETY: as above.
                    sa: unsafe { std::mem::zeroed() },
                    canon,
                    magic: NODE_MAGIC,
                });
                // SAFETY: `sa` is 28 bytes and `len` is at most 28.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        std::ptr::addr_of_mut!(node.sa).cast::<u8>(),
                        len,
                    )
                };
                node.info.ai_family = i32::from(if a.is_ipv4() { AF_INET } else { AF_INET6 });
                node.info.ai_socktype = h.socktype;
                node.info.ai_protocol = h.protocol;
                node.info.ai_addrlen = len;
                node.info.ai_addr = std::ptr::addr_of_mut!(node.sa).cast::<SOCKADDR>();
                node.info.ai_canonname = match node.canon.as_mut() {
                    Some(c) => c.as_mut_ptr(),
                    None => std::ptr::null_mut(),
                };
                node.info.ai_next = next;
                next = Box::into_raw(node).cast::<$info>();
            }
            next
        }

        /// Frees a chain built by the matching build function; stops at a node it did not
        /// allocate (leaking it rather than corrupting the heap).
        unsafe fn $free(p: *const $info) {
            let mut cur = p as *mut $node;
            while !cur.is_null() {
                if std::ptr::addr_of!((*cur).magic).read_unaligned() != NODE_MAGIC {
                    return;
                }
                let node = Box::from_raw(cur);
                cur = node.info.ai_next.cast::<$node>();
                drop(node);
            }
        }
    };
}

chain!(build_a, free_a, NodeA, ADDRINFOA, u8, |s: &str| {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v.into_boxed_slice()
});
chain!(build_w, free_w, NodeW, ADDRINFOW, u16, |s: &str| {
    let mut v: Vec<u16> = s.encode_utf16().collect();
    v.push(0);
    v.into_boxed_slice()
});

/// Reads the hints; the members that must be zero (`ai_addrlen`, `ai_canonname`, `ai_addr`,
/// `ai_next`) give `WSANO_RECOVERY` otherwise, as Microsoft documents.
macro_rules! read_hints {
    ($p:expr) => {{
        let p = $p;
        if p.is_null() {
            Ok(Hints::default())
        } else {
            let x = std::ptr::read_unaligned(p);
            if x.ai_addrlen != 0
                || !x.ai_canonname.is_null()
                || !x.ai_addr.is_null()
                || !x.ai_next.is_null()
            {
                Err(WSANO_RECOVERY)
            } else {
                Ok(Hints {
                    flags: x.ai_flags,
                    family: x.ai_family,
                    socktype: x.ai_socktype,
                    protocol: x.ai_protocol,
                })
            }
        }
    }};
}

/// Ends a resolution call the Windows way: the code is returned and set as the last error
/// (0 on success, as Wine `test_getaddrinfo` records).
fn finish_eai(r: Result<(), i32>) -> i32 {
    let code = r.err().unwrap_or(0);
    set_error(code);
    code
}

/// Resolves a host name or numeric address (`pnodename`) and a service name or port number
/// (`pservicename`) into a chain of `ADDRINFOA` at `*ppresult`, to be freed with
/// [`freeaddrinfo`].
///
/// Names resolve against the calling thread's network: `localhost` (`::1`, `127.0.0.1`), the
/// empty string (this host's addresses), a scenario host by host name or machine name with or
/// without its domain (any case). A null node gives the wildcard addresses with `AI_PASSIVE`,
/// else loopback. One result per address, in RFC 6724 default-policy order for `AF_UNSPEC`
/// (so IPv4 before a unique-local `fd00::/8` address, `::1` before `127.0.0.1`); each result
/// echoes the hints' `ai_socktype` and `ai_protocol` (0 when the hints leave them 0) and has
/// `ai_flags` 0; with `AI_CANONNAME` or `AI_FQDN` the first carries the canonical name
/// (`host.domain`).
///
/// Returns 0, or the error code, which is also the last error (set to 0 on success).
///
/// # Errors
/// `WSANOTINITIALISED` before `WSAStartup`; `WSAHOST_NOT_FOUND` (EAI_NONAME) for an unknown
/// name, a non-numeric node with `AI_NUMERICHOST`, a numeric node of the other family, a
/// non-numeric service with `AI_NUMERICSERV`, or both node and service null;
/// `WSATYPE_NOT_FOUND` for an unknown service; `WSAEAFNOSUPPORT` for a hints family other than
/// `AF_UNSPEC`/`AF_INET`/`AF_INET6`; `WSAESOCKTNOSUPPORT` for an unknown socket type;
/// `WSAEINVAL` for `AI_CANONNAME` without a node or with `AI_FQDN`; `WSANO_RECOVERY` for hints
/// whose `ai_addrlen`, `ai_canonname`, `ai_addr` or `ai_next` is set; `WSAEFAULT` for a null
/// `ppresult`.
///
/// # Safety
/// Strings are null or NUL-terminated; `phints` is null or valid; `ppresult` is null or
/// writable.
pub unsafe extern "system" fn getaddrinfo(
    pnodename: PCSTR,
    pservicename: PCSTR,
    phints: *const ADDRINFOA,
    ppresult: *mut *mut ADDRINFOA,
) -> i32 {
    guard(WSANO_RECOVERY, || {
        if ppresult.is_null() {
            return finish_eai(Err(WSAEFAULT));
        }
        std::ptr::write_unaligned(ppresult, std::ptr::null_mut());
        let r = (|| {
            let h: Hints = read_hints!(phints)?;
            let node = match ansi(pnodename) {
                None => None,
                Some(b) => Some(std::str::from_utf8(b).map_err(|_| WSAHOST_NOT_FOUND)?),
            };
            let service = match ansi(pservicename) {
                None => None,
                Some(b) => Some(std::str::from_utf8(b).map_err(|_| WSATYPE_NOT_FOUND)?),
            };
            let found = resolve(node, service, &h)?;
            std::ptr::write_unaligned(ppresult, build_a(found, &h));
            Ok(())
        })();
        finish_eai(r)
    })
}

/// Frees a chain from [`getaddrinfo`]; null is ignored.
///
/// # Safety
/// `paddrinfo` is null or the unmodified head returned by `getaddrinfo`, not freed before.
pub unsafe extern "system" fn freeaddrinfo(paddrinfo: *const ADDRINFOA) {
    guard((), || free_a(paddrinfo))
}

/// The UTF-16 [`getaddrinfo`]; free the chain with [`FreeAddrInfoW`].
///
/// # Errors
/// As [`getaddrinfo`].
///
/// # Safety
/// As [`getaddrinfo`].
pub unsafe extern "system" fn GetAddrInfoW(
    pnodename: PCWSTR,
    pservicename: PCWSTR,
    phints: *const ADDRINFOW,
    ppresult: *mut *mut ADDRINFOW,
) -> i32 {
    guard(WSANO_RECOVERY, || {
        if ppresult.is_null() {
            return finish_eai(Err(WSAEFAULT));
        }
        std::ptr::write_unaligned(ppresult, std::ptr::null_mut());
        let r = (|| {
            let h: Hints = read_hints!(phints)?;
            let node = match wide(pnodename) {
                None => None,
                Some(s) => Some(s.ok_or(WSAHOST_NOT_FOUND)?),
            };
            let service = match wide(pservicename) {
                None => None,
                Some(s) => Some(s.ok_or(WSATYPE_NOT_FOUND)?),
            };
            let found = resolve(node.as_deref(), service.as_deref(), &h)?;
            std::ptr::write_unaligned(ppresult, build_w(found, &h));
            Ok(())
        })();
        finish_eai(r)
    })
}

/// Frees a chain from [`GetAddrInfoW`]; null is ignored.
///
/// # Safety
/// `paddrinfo` is null or the unmodified head returned by `GetAddrInfoW`, not freed before.
pub unsafe extern "system" fn FreeAddrInfoW(paddrinfo: *const ADDRINFOW) {
    guard((), || free_w(paddrinfo))
}

// ---------------------------------------------------------------- getnameinfo

const NI_KNOWN: i32 = (NI_NOFQDN | NI_NUMERICHOST | NI_NAMEREQD | NI_NUMERICSERV | NI_DGRAM) as i32;

/// The host and service text `getnameinfo` reports for an address.
fn name_info(addr: &SocketAddr, flags: i32) -> Result<(String, String), i32> {
    let (host, _) = started()?;
    if flags & !NI_KNOWN != 0 {
        return Err(WSAEINVAL);
    }
    let has = |f: u32| flags as u32 & f != 0;
    let numeric = || match addr {
        SocketAddr::V4(v4) => fmt_v4(v4.ip().octets(), 0),
        SocketAddr::V6(v6) => fmt_v6(&v6.ip().octets(), v6.scope_id(), 0),
    };
    let node = if has(NI_NUMERICHOST) {
        numeric()
    } else {
        let ip = addr.ip();
        let spec = if ip.is_loopback() {
            Some(host.spec())
        } else {
            let scenario = host.network().scenario();
            scenario
                .hosts
                .iter()
                .find(|s| ip == IpAddr::V4(s.ipv4) || ip == IpAddr::V6(s.ipv6))
        };
        match spec {
            Some(s) if has(NI_NOFQDN) => s.name.clone(),
            Some(s) => fqdn(s),
            None if has(NI_NAMEREQD) => return Err(WSAHOST_NOT_FOUND),
            None => numeric(),
        }
    };
    let port = addr.port();
    let proto = if has(NI_DGRAM) {
        Proto::Udp
    } else {
        Proto::Tcp
    };
    let service = match service_name(port, proto) {
        Some(n) if !has(NI_NUMERICSERV) => n.to_string(),
        _ => port.to_string(),
    };
    Ok((node, service))
}

/// Checks a `getnameinfo` call's pointers and reads its address.
unsafe fn name_info_args(
    psockaddr: *const SOCKADDR,
    sockaddrlength: i32,
    node_wanted: (bool, u32),
    service_wanted: (bool, u32),
) -> Result<SocketAddr, i32> {
    started()?;
    let addr = read_sockaddr(psockaddr, sockaddrlength)?;
    if !node_wanted.0 && !service_wanted.0 {
        return Err(WSAHOST_NOT_FOUND);
    }
    if (node_wanted.0 && node_wanted.1 == 0) || (service_wanted.0 && service_wanted.1 == 0) {
        return Err(WSAEINVAL);
    }
    Ok(addr)
}

/// Translates an address (`SOCKADDR_IN` or `SOCKADDR_IN6`) to a host name and a service name.
///
/// The host is the scenario host owning the address (`host.domain`, or `host` with
/// `NI_NOFQDN`), this host for a loopback address, else the numeric text (an error with
/// `NI_NAMEREQD`); `NI_NUMERICHOST` always gives the numeric text. The service is the well-known
/// name of the port (`NI_DGRAM` for UDP names), else the number; `NI_NUMERICSERV` always gives
/// the number. A null buffer means "not wanted". Returns 0, or the error code, which is also
/// the last error.
///
/// # Errors
/// `WSANOTINITIALISED` before `WSAStartup`; `WSAEFAULT` for a null address, a length short for
/// its family, or a buffer too small for the text and its NUL; `WSAEAFNOSUPPORT` for another
/// family; `WSAEINVAL` for unknown flags or a buffer given with size 0; `WSAHOST_NOT_FOUND`
/// when neither buffer is given or with `NI_NAMEREQD` for an unknown address.
///
/// # Safety
/// Pointers are null or valid for the sizes given.
pub unsafe extern "system" fn getnameinfo(
    psockaddr: *const SOCKADDR,
    sockaddrlength: i32,
    pnodebuffer: PSTR,
    nodebuffersize: u32,
    pservicebuffer: PSTR,
    servicebuffersize: u32,
    flags: i32,
) -> i32 {
    guard(WSANO_RECOVERY, || {
        let r = (|| {
            let addr = name_info_args(
                psockaddr,
                sockaddrlength,
                (!pnodebuffer.is_null(), nodebuffersize),
                (!pservicebuffer.is_null(), servicebuffersize),
            )?;
            let (node, service) = name_info(&addr, flags)?;
            let node_fits = pnodebuffer.is_null() || node.len() < nodebuffersize as usize;
            let service_fits =
                pservicebuffer.is_null() || service.len() < servicebuffersize as usize;
            if !node_fits || !service_fits {
                return Err(WSAEFAULT);
            }
            if !pnodebuffer.is_null() {
                put_ansi(pnodebuffer, nodebuffersize as usize, &node);
            }
            if !pservicebuffer.is_null() {
                put_ansi(pservicebuffer, servicebuffersize as usize, &service);
            }
            Ok(())
        })();
        match r {
            Ok(()) => 0,
            Err(c) => {
                set_error(c);
                c
            }
        }
    })
}

/// The UTF-16 [`getnameinfo`]; buffer sizes count UTF-16 units.
///
/// # Errors
/// As [`getnameinfo`].
///
/// # Safety
/// Pointers are null or valid for the sizes given.
pub unsafe extern "system" fn GetNameInfoW(
    psockaddr: *const SOCKADDR,
    sockaddrlength: i32,
    pnodebuffer: PWSTR,
    nodebuffersize: u32,
    pservicebuffer: PWSTR,
    servicebuffersize: u32,
    flags: i32,
) -> i32 {
    guard(WSANO_RECOVERY, || {
        let r = (|| {
            let addr = name_info_args(
                psockaddr,
                sockaddrlength,
                (!pnodebuffer.is_null(), nodebuffersize),
                (!pservicebuffer.is_null(), servicebuffersize),
            )?;
            let (node, service) = name_info(&addr, flags)?;
            let node_fits =
                pnodebuffer.is_null() || node.encode_utf16().count() < nodebuffersize as usize;
            let service_fits = pservicebuffer.is_null()
                || service.encode_utf16().count() < servicebuffersize as usize;
            if !node_fits || !service_fits {
                return Err(WSAEFAULT);
            }
            if !pnodebuffer.is_null() {
                put_wide(pnodebuffer, nodebuffersize as usize, &node);
            }
            if !pservicebuffer.is_null() {
                put_wide(pservicebuffer, servicebuffersize as usize, &service);
            }
            Ok(())
        })();
        match r {
            Ok(()) => 0,
            Err(c) => {
                set_error(c);
                c
            }
        }
    })
}

// ---------------------------------------------------------------- gethostname / gethostbyname

/// Copies the calling thread's host name (the scenario host's `name`, without the domain) into
/// `name`, which holds `namelen` bytes.
///
/// # Errors
/// `SOCKET_ERROR` with `WSANOTINITIALISED` before `WSAStartup`; `WSAEFAULT` for a null buffer
/// or one too small for the name and its NUL (the buffer is then unchanged: Wine
/// `test_gethostname`).
///
/// # Safety
/// `name` is null or valid for `namelen` bytes.
pub unsafe extern "system" fn gethostname(name: PSTR, namelen: i32) -> i32 {
    let r = started().and_then(|(host, _)| {
        let cap = usize::try_from(namelen).unwrap_or(0);
        if put_ansi(name, cap, &host.spec().name) {
            Ok(0)
        } else {
            Err(WSAEFAULT)
        }
    });
    super::finish(r)
}

/// The UTF-16 [`gethostname`]; `namelen` counts UTF-16 units.
///
/// # Errors
/// As [`gethostname`].
///
/// # Safety
/// `name` is null or valid for `namelen` units.
pub unsafe extern "system" fn GetHostNameW(name: PWSTR, namelen: i32) -> i32 {
    let r = started().and_then(|(host, _)| {
        let cap = usize::try_from(namelen).unwrap_or(0);
        if put_wide(name, cap, &host.spec().name) {
            Ok(0)
        } else {
            Err(WSAEFAULT)
        }
    });
    super::finish(r)
}

thread_local! {
    /// The calling thread's `gethostbyname` result: one block, replaced by the next call.
    static HOSTENT_BUF: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Lays out a `HOSTENT` the way Windows does (Wine `test_dns`): the structure, then the alias
/// pointers (none), then the address pointers, then the addresses, then the name; all in one
/// block owned by the calling thread.
fn store_hostent(name: &str, addrs: &[[u8; 4]]) -> *mut HOSTENT {
    let ptr = std::mem::size_of::<usize>();
    let head = std::mem::size_of::<HOSTENT>();
    let aliases_at = head;
    let list_at = aliases_at + ptr;
    let addrs_at = list_at + ptr * (addrs.len() + 1);
    let name_at = addrs_at + 4 * addrs.len();
    let total = name_at + name.len() + 1;
    HOSTENT_BUF.with(|cell| {
        let Ok(mut buf) = cell.try_borrow_mut() else {
            return std::ptr::null_mut();
        };
        *buf = vec![0u64; total.div_ceil(8)];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: every offset below is inside the `total` bytes just allocated, and the
        // pointer-sized slots are at multiples of 8 from an 8-aligned base.
        unsafe {
            for (k, a) in addrs.iter().enumerate() {
                let at = base.add(addrs_at + 4 * k);
                std::ptr::copy_nonoverlapping(a.as_ptr(), at, 4);
                std::ptr::write(base.add(list_at + ptr * k).cast::<*mut u8>(), at);
            }
            std::ptr::copy_nonoverlapping(name.as_ptr(), base.add(name_at), name.len());
            let he = HOSTENT {
                h_name: base.add(name_at),
                h_aliases: base.add(aliases_at).cast::<*mut i8>(),
                h_addrtype: AF_INET as i16,
                h_length: 4,
                h_addr_list: base.add(list_at).cast::<*mut i8>(),
            };
            std::ptr::write(base.cast::<HOSTENT>(), he);
        }
        base.cast::<HOSTENT>()
    })
}

/// Resolves a host name (or dotted IPv4 text) to IPv4 addresses, the legacy way: the result
/// lives in storage of the calling thread until its next `gethostbyname`. A null or empty name
/// means this host. `h_name` is the canonical name (`host.domain`, `localhost`, or the text
/// given for a numeric address); there are no aliases.
///
/// # Errors
/// Null with `WSANOTINITIALISED` before `WSAStartup`, `WSAHOST_NOT_FOUND` for an unknown name,
/// `WSANO_DATA` for a name without an IPv4 address.
///
/// # Safety
/// `name` is null or NUL-terminated. The result must not be used after the thread's next
/// `gethostbyname` or its exit, and must not be freed.
pub unsafe extern "system" fn gethostbyname(name: PCSTR) -> *mut HOSTENT {
    guard(std::ptr::null_mut(), || {
        let r = (|| {
            let node = match ansi(name) {
                None => "",
                Some(b) => std::str::from_utf8(b).map_err(|_| WSAHOST_NOT_FOUND)?,
            };
            if node.contains(':') {
                started()?;
                return Err(WSAHOST_NOT_FOUND);
            }
            let h = Hints {
                family: i32::from(AF_INET),
                flags: AI_CANONNAME as i32,
                ..Hints::default()
            };
            let found = resolve(Some(node), None, &h)?;
            let addrs: Vec<[u8; 4]> = found
                .addrs
                .iter()
                .filter_map(|a| match a.ip() {
                    IpAddr::V4(v4) => Some(v4.octets()),
                    IpAddr::V6(_) => None,
                })
                .collect();
            if addrs.is_empty() {
                return Err(WSANO_DATA);
            }
            let canon = found.canon.unwrap_or_else(|| node.to_string());
            let he = store_hostent(&canon, &addrs);
            if he.is_null() {
                return Err(WSANO_RECOVERY);
            }
            Ok(he)
        })();
        match r {
            Ok(p) => p,
            Err(c) => {
                set_error(c);
                std::ptr::null_mut()
            }
        }
    })
}
