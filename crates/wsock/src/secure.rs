//! The secure-socket extensions, safe half: the wire forms of the Windows structures
//! (`SOCKET_SECURITY_SETTINGS(_IPSEC)`, `SOCKET_PEER_TARGET_NAME`,
//! `SOCKET_SECURITY_QUERY_TEMPLATE(_IPSEC2)`, `SOCKET_SECURITY_QUERY_INFO(_IPSEC2)`, `SOCKADDR`)
//! parsed from and emitted to byte slices, and the Rust face's [`SecuritySettings`] builder and
//! [`SecurityInfo`].
//!
//! The raw face (`wsock::sys::WSASetSocketSecurity` and the other five) turns the caller's
//! pointer and length into a slice and calls the parsers here; the Rust face builds the same
//! values directly. Parsing never panics, whatever the bytes and lengths: every read is
//! bounds-checked, lengths are added in `u64`, and strings are capped at 65 534 bytes (the
//! largest `UNICODE_STRING`), so a hostile length is a typed error, never a huge allocation.
//!
//! Layouts are x64 Windows' (little-endian, the offsets of `mstcpip.h`); `sys` asserts at
//! compile time that windows-sys's structs have the same sizes and offsets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use wsock_identity::IdentityError;
use wsock_stack::wsock_ale::SecuritySettings as AleSettings;
use wsock_stack::wsock_wfp::Guid;
/// Which SA ids a watching query selects (`SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID`,
/// `SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID`), for [`crate::net::TcpStream::security_info_watching`].
pub use wsock_stack::SaFields;
use wsock_stack::StackError;

use crate::error::codes;

/// Sizes and offsets of the structures (x64), as `mstcpip.h` lays them out.
pub mod layout {
    /// `sizeof(SOCKET_SECURITY_SETTINGS)`.
    pub const SETTINGS_LEN: usize = 8;
    /// Offset of `AllStrings` in `SOCKET_SECURITY_SETTINGS_IPSEC` (its fixed part).
    pub const SETTINGS_IPSEC_FIXED: usize = 84;
    /// `sizeof(SOCKET_SECURITY_SETTINGS_IPSEC)` (fixed part plus tail padding).
    pub const SETTINGS_IPSEC_LEN: usize = 88;
    /// Offset of `AllStrings` in `SOCKET_PEER_TARGET_NAME`.
    pub const PEER_TARGET_NAME_FIXED: usize = 140;
    /// `sizeof(SOCKET_PEER_TARGET_NAME)`.
    pub const PEER_TARGET_NAME_LEN: usize = 144;
    /// `sizeof(SOCKET_SECURITY_QUERY_TEMPLATE)`.
    pub const QUERY_TEMPLATE_LEN: usize = 144;
    /// `sizeof(SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2)`.
    pub const QUERY_TEMPLATE_IPSEC2_LEN: usize = 152;
    /// `sizeof(SOCKET_SECURITY_QUERY_INFO)`.
    pub const QUERY_INFO_LEN: usize = 24;
    /// `sizeof(SOCKET_SECURITY_QUERY_INFO_IPSEC2)`.
    pub const QUERY_INFO_IPSEC2_LEN: usize = 64;
    /// Offset of `PeerAddress` (a `SOCKADDR_STORAGE`) in the peer-name and template structs.
    pub const PEER_ADDRESS_OFFSET: usize = 8;
    /// `sizeof(SOCKADDR_STORAGE)`.
    pub const SOCKADDR_STORAGE_LEN: usize = 128;
    /// `sizeof(SOCKADDR_IN)`.
    pub const SOCKADDR_IN_LEN: usize = 16;
    /// `sizeof(SOCKADDR_IN6)`.
    pub const SOCKADDR_IN6_LEN: usize = 28;
    /// The longest string wsock reads from a structure, in bytes (`UNICODE_STRING`'s limit).
    pub const MAX_STRING_BYTES: u64 = 65_534;
    /// The most bytes a `SOCKET_SECURITY_SETTINGS_IPSEC` can need (three maximal strings).
    pub const SETTINGS_MAX: usize = SETTINGS_IPSEC_FIXED + 3 * MAX_STRING_BYTES as usize;
    /// The most bytes a `SOCKET_PEER_TARGET_NAME` can need.
    pub const PEER_TARGET_NAME_MAX: usize = PEER_TARGET_NAME_FIXED + MAX_STRING_BYTES as usize;
}

/// Windows' `AF_INET`.
const AF_INET: u16 = 2;
/// Windows' `AF_INET6` (23, not the host's value).
const AF_INET6: u16 = 23;

/// Errors of the secure-socket layer of the API, each with the WSA code the raw face reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    /// A pointer the call needs is null (`WSAEFAULT`).
    #[error("a required pointer is null")]
    NullPointer,
    /// A buffer or structure is shorter than its contents need (`WSAEMSGSIZE`).
    #[error("buffer of {got} bytes is too small: {need} needed")]
    BufferTooSmall {
        /// Bytes needed.
        need: u64,
        /// Bytes given.
        got: u64,
    },
    /// `SecurityProtocol` is not DEFAULT, IPSEC or IPSEC2 (`WSAEINVAL`).
    #[error("invalid SecurityProtocol {0}")]
    InvalidProtocol(i32),
    /// A field holds a value the call does not accept (`WSAEINVAL`).
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
    /// An address family other than `AF_INET`/`AF_INET6`, or of the other family than the
    /// socket's (`WSAEAFNOSUPPORT`).
    #[error("address family {0} is not supported here")]
    AddressFamily(u16),
    /// The socket is connected (`WSAEISCONN`).
    #[error("the socket is already connected")]
    IsConnected,
    /// The socket is not connected, and the call needs a connection (`WSAENOTCONN`).
    #[error("the socket is not connected")]
    NotConnected,
    /// The call is not valid in the socket's state (`WSAEINVAL`): security set twice, or
    /// after bind or listen, or with `SO_REUSEADDR`; impersonation on a non-blocking socket.
    #[error("not valid in this socket state: {0}")]
    InvalidState(&'static str),
    /// The connection has no authenticated peer to impersonate (`WSAEINVAL`).
    #[error("no authenticated peer identity on this connection")]
    NoPeerIdentity,
    /// A part that is not built yet (`WSAEOPNOTSUPP`); the message says which.
    #[error("not built yet: {0}")]
    NotYet(&'static str),
    /// The stack refused the call.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The identity layer refused the call (an unknown peer principal).
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl SecureError {
    /// The Winsock error code the raw face reports for this error.
    ///
    /// # Examples
    /// ```
    /// use wsock::secure::SecureError;
    /// assert_eq!(SecureError::NullPointer.wsa_code(), 10014); // WSAEFAULT
    /// assert_eq!(SecureError::BufferTooSmall { need: 8, got: 4 }.wsa_code(), 10040);
    /// ```
    pub fn wsa_code(&self) -> i32 {
        match self {
            SecureError::NullPointer => codes::WSAEFAULT,
            SecureError::BufferTooSmall { .. } => codes::WSAEMSGSIZE,
            SecureError::InvalidProtocol(_)
            | SecureError::InvalidValue(_)
            | SecureError::InvalidState(_)
            | SecureError::NoPeerIdentity => codes::WSAEINVAL,
            SecureError::AddressFamily(_) => codes::WSAEAFNOSUPPORT,
            SecureError::IsConnected => codes::WSAEISCONN,
            SecureError::NotConnected => codes::WSAENOTCONN,
            SecureError::NotYet(_) => codes::WSAEOPNOTSUPP,
            SecureError::Stack(e) => e.wsa_code(),
            SecureError::Identity(_) => codes::WSAEINVAL,
        }
    }
}

/// `SOCKET_SECURITY_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProtocol {
    /// `SOCKET_SECURITY_PROTOCOL_DEFAULT` (0): the system's default (IPsec).
    #[default]
    Default,
    /// `SOCKET_SECURITY_PROTOCOL_IPSEC` (1).
    Ipsec,
    /// `SOCKET_SECURITY_PROTOCOL_IPSEC2` (2), the Windows 7 structures.
    Ipsec2,
}

impl SecurityProtocol {
    /// The protocol of a raw value.
    ///
    /// # Errors
    /// [`SecureError::InvalidProtocol`] for anything but 0, 1, 2 (3 is
    /// `SOCKET_SECURITY_PROTOCOL_INVALID`).
    ///
    /// # Examples
    /// ```
    /// use wsock::secure::SecurityProtocol;
    /// assert_eq!(SecurityProtocol::from_raw(2), Ok(SecurityProtocol::Ipsec2));
    /// assert!(SecurityProtocol::from_raw(3).is_err());
    /// ```
    pub fn from_raw(v: i32) -> Result<SecurityProtocol, SecureError> {
        match v {
            0 => Ok(SecurityProtocol::Default),
            1 => Ok(SecurityProtocol::Ipsec),
            2 => Ok(SecurityProtocol::Ipsec2),
            x => Err(SecureError::InvalidProtocol(x)),
        }
    }

    /// The raw value.
    pub fn raw(self) -> i32 {
        match self {
            SecurityProtocol::Default => 0,
            SecurityProtocol::Ipsec => 1,
            SecurityProtocol::Ipsec2 => 2,
        }
    }
}

// ------------------------------------------------------------------ little readers

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn guid_at(b: &[u8], off: usize) -> Option<u128> {
    let s = b.get(off..off.checked_add(16)?)?;
    let d1 = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u128;
    let d2 = u16::from_le_bytes([s[4], s[5]]) as u128;
    let d3 = u16::from_le_bytes([s[6], s[7]]) as u128;
    let mut d4 = [0u8; 8];
    d4.copy_from_slice(&s[8..16]);
    Some((d1 << 96) | (d2 << 80) | (d3 << 64) | u64::from_be_bytes(d4) as u128)
}

fn guid_bytes(v: u128) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..4].copy_from_slice(&((v >> 96) as u32).to_le_bytes());
    out[4..6].copy_from_slice(&((v >> 80) as u16).to_le_bytes());
    out[6..8].copy_from_slice(&((v >> 64) as u16).to_le_bytes());
    out[8..16].copy_from_slice(&(v as u64).to_be_bytes());
    out
}

fn too_small(need: u64, got: usize) -> SecureError {
    SecureError::BufferTooSmall {
        need,
        got: got as u64,
    }
}

/// UTF-16LE bytes at `off..off+len` as a string (trailing NULs dropped).
fn utf16_at(b: &[u8], off: usize, len: usize, what: &'static str) -> Result<String, SecureError> {
    let end = off.checked_add(len).ok_or(too_small(u64::MAX, b.len()))?;
    let s = b.get(off..end).ok_or(too_small(end as u64, b.len()))?;
    let units: Vec<u16> = s
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut text = String::from_utf16(&units).map_err(|_| SecureError::InvalidValue(what))?;
    while text.ends_with('\0') {
        text.pop();
    }
    Ok(text)
}

fn utf16_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A string length field in bytes: even and at most [`layout::MAX_STRING_BYTES`].
fn string_bytes(n: u64, what: &'static str) -> Result<u64, SecureError> {
    if n % 2 != 0 || n > layout::MAX_STRING_BYTES {
        return Err(SecureError::InvalidValue(what));
    }
    Ok(n)
}

// ------------------------------------------------------------------ SOCKET_SECURITY_SETTINGS

/// The bits of `SecurityFlags` Windows defines.
const KNOWN_SECURITY_FLAGS: u32 = 0x3;
/// The bits of `IpsecFlags` Windows defines.
const KNOWN_IPSEC_FLAGS: u32 = 0xF;

/// Parses the settings buffer of `WSASetSocketSecurity` / `SIO_SET_SECURITY` (`buf` holds the
/// `SecuritySettingsLen` bytes the caller passed). `SecurityProtocol` DEFAULT takes the 8-byte
/// `SOCKET_SECURITY_SETTINGS`; IPSEC and IPSEC2 take `SOCKET_SECURITY_SETTINGS_IPSEC` with its
/// trailing user, domain and password (UTF-16, lengths in bytes).
///
/// # Errors
/// [`SecureError::BufferTooSmall`] below 8 bytes, below 84 for the IPsec form, or below 84 plus
/// the string lengths; [`SecureError::InvalidProtocol`]; [`SecureError::InvalidValue`] for
/// unknown flag bits, a DEFAULT buffer longer than 8 bytes (an IPsec structure must say IPSEC),
/// odd or over-long string lengths, a password or domain without a user name, or bad UTF-16.
///
/// # Examples
/// ```
/// let s = wsock::secure::parse_settings(&[0, 0, 0, 0, 1, 0, 0, 0])?;
/// assert_eq!((s.protocol, s.flags), (0, 1)); // DEFAULT, GUARANTEE_ENCRYPTION
/// # Ok::<(), wsock::secure::SecureError>(())
/// ```
pub fn parse_settings(buf: &[u8]) -> Result<AleSettings, SecureError> {
    if buf.len() < layout::SETTINGS_LEN {
        return Err(too_small(layout::SETTINGS_LEN as u64, buf.len()));
    }
    let raw_protocol = u32_at(buf, 0).ok_or(too_small(8, buf.len()))? as i32;
    let protocol = SecurityProtocol::from_raw(raw_protocol)?;
    let flags = u32_at(buf, 4).ok_or(too_small(8, buf.len()))?;
    if flags & !KNOWN_SECURITY_FLAGS != 0 {
        return Err(SecureError::InvalidValue("unknown SecurityFlags bits"));
    }
    if protocol == SecurityProtocol::Default {
        if buf.len() > layout::SETTINGS_LEN {
            return Err(SecureError::InvalidValue(
                "SOCKET_SECURITY_SETTINGS_IPSEC needs SecurityProtocol IPSEC or IPSEC2",
            ));
        }
        return Ok(AleSettings {
            protocol: 0,
            flags,
            ..AleSettings::default()
        });
    }
    let fixed = layout::SETTINGS_IPSEC_FIXED;
    if buf.len() < fixed {
        return Err(too_small(fixed as u64, buf.len()));
    }
    let get = |off| u32_at(buf, off).ok_or(too_small(fixed as u64, buf.len()));
    let ipsec_flags = get(8)?;
    if ipsec_flags & !KNOWN_IPSEC_FLAGS != 0 {
        return Err(SecureError::InvalidValue("unknown IpsecFlags bits"));
    }
    let key = |off| -> Option<Guid> {
        match guid_at(buf, off) {
            Some(0) | None => None,
            Some(v) => Some(Guid::from_u128(v)),
        }
    };
    let user_len = string_bytes(get(72)? as u64, "UserNameStringLen")?;
    let domain_len = string_bytes(get(76)? as u64, "DomainNameStringLen")?;
    let password_len = string_bytes(get(80)? as u64, "PasswordStringLen")?;
    let need = fixed as u64 + user_len + domain_len + password_len;
    if (buf.len() as u64) < need {
        return Err(too_small(need, buf.len()));
    }
    let user = utf16_at(buf, fixed, user_len as usize, "user name")?;
    let domain_off = fixed + user_len as usize;
    let domain = utf16_at(buf, domain_off, domain_len as usize, "domain name")?;
    let password = utf16_at(
        buf,
        domain_off + domain_len as usize,
        password_len as usize,
        "password",
    )?;
    if user.is_empty() && (!domain.is_empty() || !password.is_empty()) {
        return Err(SecureError::InvalidValue(
            "a domain or password needs a user name",
        ));
    }
    let opt = |s: String| if s.is_empty() { None } else { Some(s) };
    Ok(AleSettings {
        protocol: protocol.raw() as u32,
        flags,
        ipsec_flags,
        mm_policy_key: key(12),
        qm_policy_key: key(28),
        user: opt(user),
        domain: opt(domain),
        password: opt(password),
    })
}

/// Emits settings in the form `WSASetSocketSecurity` takes: the 8-byte
/// `SOCKET_SECURITY_SETTINGS` for protocol DEFAULT, else `SOCKET_SECURITY_SETTINGS_IPSEC`
/// (`sizeof` = 88 bytes, or 84 plus the strings when they are longer than the padding).
///
/// # Examples
/// ```
/// let s = wsock::secure::SecuritySettings::ipsec().require_encryption();
/// let bytes = wsock::secure::emit_settings(&s.to_stack().unwrap());
/// assert_eq!(bytes.len(), 88);
/// assert_eq!(wsock::secure::parse_settings(&bytes)?, s.to_stack().unwrap());
/// # Ok::<(), wsock::secure::SecureError>(())
/// ```
pub fn emit_settings(s: &AleSettings) -> Vec<u8> {
    if s.protocol == 0 {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&s.flags.to_le_bytes());
        return b;
    }
    let user = utf16_bytes(s.user.as_deref().unwrap_or(""));
    let domain = utf16_bytes(s.domain.as_deref().unwrap_or(""));
    let password = utf16_bytes(s.password.as_deref().unwrap_or(""));
    let strings = user.len() + domain.len() + password.len();
    let mut b = vec![0u8; (layout::SETTINGS_IPSEC_FIXED + strings).max(layout::SETTINGS_IPSEC_LEN)];
    b[0..4].copy_from_slice(&s.protocol.to_le_bytes());
    b[4..8].copy_from_slice(&s.flags.to_le_bytes());
    b[8..12].copy_from_slice(&s.ipsec_flags.to_le_bytes());
    b[12..28].copy_from_slice(&guid_bytes(s.mm_policy_key.map_or(0, |g| g.0)));
    b[28..44].copy_from_slice(&guid_bytes(s.qm_policy_key.map_or(0, |g| g.0)));
    b[72..76].copy_from_slice(&(user.len() as u32).to_le_bytes());
    b[76..80].copy_from_slice(&(domain.len() as u32).to_le_bytes());
    b[80..84].copy_from_slice(&(password.len() as u32).to_le_bytes());
    let mut off = layout::SETTINGS_IPSEC_FIXED;
    for part in [&user, &domain, &password] {
        b[off..off + part.len()].copy_from_slice(part);
        off += part.len();
    }
    b
}

// ------------------------------------------------------------------ addresses

/// A `PeerAddress` or `SOCKADDR` as read from a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddress {
    /// Family 0 (`AF_UNSPEC`), as the Microsoft TCP sample leaves it.
    Unspecified,
    /// An `AF_INET` or `AF_INET6` address.
    Ip(SocketAddr),
    /// Any other family.
    Other(u16),
}

impl PeerAddress {
    /// The address, if it is an IP one with a non-zero IP or port ("a full address").
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            PeerAddress::Ip(a) => Some(*a),
            _ => None,
        }
    }
}

/// Reads a `SOCKADDR_IN` / `SOCKADDR_IN6` (Windows layout, `AF_INET6` = 23) from `buf`.
///
/// # Errors
/// [`SecureError::BufferTooSmall`] when `buf` is shorter than the family's structure (16 or
/// 28 bytes); [`SecureError::AddressFamily`] for another family.
///
/// # Examples
/// ```
/// let mut b = [0u8; 16];
/// b[0] = 2; // AF_INET
/// b[2..4].copy_from_slice(&5000u16.to_be_bytes());
/// b[4..8].copy_from_slice(&[10, 0, 0, 2]);
/// assert_eq!(wsock::secure::parse_sockaddr(&b)?, "10.0.0.2:5000".parse().unwrap());
/// # Ok::<(), wsock::secure::SecureError>(())
/// ```
pub fn parse_sockaddr(buf: &[u8]) -> Result<SocketAddr, SecureError> {
    match read_peer_address(buf)? {
        PeerAddress::Ip(a) => Ok(a),
        PeerAddress::Unspecified => Err(SecureError::AddressFamily(0)),
        PeerAddress::Other(f) => Err(SecureError::AddressFamily(f)),
    }
}

fn read_peer_address(buf: &[u8]) -> Result<PeerAddress, SecureError> {
    let family = u16_at(buf, 0).ok_or(too_small(layout::SOCKADDR_IN_LEN as u64, buf.len()))?;
    match family {
        0 => Ok(PeerAddress::Unspecified),
        AF_INET => {
            let b = buf
                .get(..layout::SOCKADDR_IN_LEN)
                .ok_or(too_small(layout::SOCKADDR_IN_LEN as u64, buf.len()))?;
            let port = u16::from_be_bytes([b[2], b[3]]);
            Ok(PeerAddress::Ip(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(b[4], b[5], b[6], b[7]),
                port,
            ))))
        }
        AF_INET6 => {
            let b = buf
                .get(..layout::SOCKADDR_IN6_LEN)
                .ok_or(too_small(layout::SOCKADDR_IN6_LEN as u64, buf.len()))?;
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let scope = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
            Ok(PeerAddress::Ip(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a),
                port,
                flow,
                scope,
            ))))
        }
        f => Ok(PeerAddress::Other(f)),
    }
}

/// Emits a `SOCKADDR_IN` (16 bytes) or `SOCKADDR_IN6` (28 bytes) in Windows' layout.
///
/// # Examples
/// ```
/// let b = wsock::secure::emit_sockaddr("[::1]:7".parse().unwrap());
/// assert_eq!((b.len(), b[0]), (28, 23)); // AF_INET6 is 23 on Windows
/// ```
pub fn emit_sockaddr(addr: SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; layout::SOCKADDR_IN_LEN];
            b[0..2].copy_from_slice(&AF_INET.to_le_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; layout::SOCKADDR_IN6_LEN];
            b[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_le_bytes());
            b
        }
    }
}

// ------------------------------------------------------------------ SOCKET_PEER_TARGET_NAME

/// A parsed `SOCKET_PEER_TARGET_NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTargetName {
    /// `SecurityProtocol`.
    pub protocol: SecurityProtocol,
    /// `PeerAddress`.
    pub peer: PeerAddress,
    /// The target name (an SPN such as `host/server.example`).
    pub name: String,
}

/// Parses the buffer of `WSASetSocketPeerTargetName` / `SIO_SET_PEER_TARGET_NAME` (`buf` holds
/// the `PeerTargetNameLen` bytes passed). `PeerTargetNameStringLen` counts UTF-16 units for
/// protocols DEFAULT and IPSEC and bytes for IPSEC2, as the Microsoft sample and Project
/// Zero's tools use it; a trailing NUL inside the count is dropped.
///
/// # Errors
/// [`SecureError::BufferTooSmall`] below 140 bytes or below 140 plus the name;
/// [`SecureError::InvalidProtocol`]; [`SecureError::InvalidValue`] for an empty, odd-length
/// (IPSEC2), over-long or badly encoded name.
///
/// # Examples
/// ```
/// use wsock::secure::{emit_peer_target_name, parse_peer_target_name, SecurityProtocol};
/// let b = emit_peer_target_name(SecurityProtocol::Default, None, "host/server");
/// assert_eq!(b.len(), 144 + 2 * 11);
/// assert_eq!(parse_peer_target_name(&b)?.name, "host/server");
/// # Ok::<(), wsock::secure::SecureError>(())
/// ```
pub fn parse_peer_target_name(buf: &[u8]) -> Result<PeerTargetName, SecureError> {
    let fixed = layout::PEER_TARGET_NAME_FIXED;
    if buf.len() < fixed {
        return Err(too_small(fixed as u64, buf.len()));
    }
    let protocol = SecurityProtocol::from_raw(u32_at(buf, 0).unwrap_or(0) as i32)?;
    let storage = buf
        .get(
            layout::PEER_ADDRESS_OFFSET..layout::PEER_ADDRESS_OFFSET + layout::SOCKADDR_STORAGE_LEN,
        )
        .ok_or(too_small(fixed as u64, buf.len()))?;
    let peer = read_peer_address(storage)?;
    let count = u32_at(buf, 136).ok_or(too_small(fixed as u64, buf.len()))? as u64;
    let bytes = match protocol {
        SecurityProtocol::Ipsec2 => count,
        _ => count * 2,
    };
    let bytes = string_bytes(bytes, "PeerTargetNameStringLen")?;
    let need = fixed as u64 + bytes;
    if (buf.len() as u64) < need {
        return Err(too_small(need, buf.len()));
    }
    let name = utf16_at(buf, fixed, bytes as usize, "peer target name")?;
    if name.is_empty() {
        return Err(SecureError::InvalidValue("empty peer target name"));
    }
    Ok(PeerTargetName {
        protocol,
        peer,
        name,
    })
}

/// Emits a `SOCKET_PEER_TARGET_NAME` as the Microsoft sample builds it: `sizeof` (144) plus
/// the name's bytes, `PeerTargetNameStringLen` in UTF-16 units (bytes for IPSEC2), the address
/// zero when `peer` is `None`.
pub fn emit_peer_target_name(
    protocol: SecurityProtocol,
    peer: Option<SocketAddr>,
    name: &str,
) -> Vec<u8> {
    let name_bytes = utf16_bytes(name);
    let mut b = vec![0u8; layout::PEER_TARGET_NAME_LEN + name_bytes.len()];
    b[0..4].copy_from_slice(&protocol.raw().to_le_bytes());
    if let Some(a) = peer {
        let sa = emit_sockaddr(a);
        b[8..8 + sa.len()].copy_from_slice(&sa);
    }
    let count = match protocol {
        SecurityProtocol::Ipsec2 => name_bytes.len(),
        _ => name_bytes.len() / 2,
    };
    b[136..140].copy_from_slice(&(count as u32).to_le_bytes());
    b[140..140 + name_bytes.len()].copy_from_slice(&name_bytes);
    b
}

// ------------------------------------------------------------------ query template and info

/// A parsed `SOCKET_SECURITY_QUERY_TEMPLATE` or `SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryTemplate {
    /// `SecurityProtocol`; IPSEC2 selects the `_IPSEC2` forms of template and answer.
    pub protocol: SecurityProtocol,
    /// `PeerAddress` (ignored on TCP sockets).
    pub peer: PeerAddress,
    /// `PeerTokenAccessMask`: 0 returns no token handles.
    pub access_mask: u32,
    /// `Flags` (IPSEC2 only, `SOCKET_QUERY_IPSEC2_*`).
    pub flags: u32,
    /// `FieldMask` (IPSEC2 only): which SA ids to fill in.
    pub field_mask: u32,
}

impl QueryTemplate {
    /// Bytes the answer to this template takes: 24, or 64 for IPSEC2.
    pub fn info_len(&self) -> usize {
        match self.protocol {
            SecurityProtocol::Ipsec2 => layout::QUERY_INFO_IPSEC2_LEN,
            _ => layout::QUERY_INFO_LEN,
        }
    }
}

/// Parses a query template (`buf` holds the `SecurityQueryTemplateLen` bytes passed).
///
/// # Errors
/// [`SecureError::BufferTooSmall`] below 144 bytes (152 for IPSEC2);
/// [`SecureError::InvalidProtocol`]; [`SecureError::InvalidValue`] for unknown IPSEC2 flag or
/// field-mask bits.
///
/// # Examples
/// ```
/// use wsock::secure::{emit_query_template, parse_query_template, SecurityProtocol};
/// let b = emit_query_template(SecurityProtocol::Ipsec2, None, 8, 0, 3);
/// let t = parse_query_template(&b)?;
/// assert_eq!((t.access_mask, t.field_mask, t.info_len()), (8, 3, 64));
/// # Ok::<(), wsock::secure::SecureError>(())
/// ```
pub fn parse_query_template(buf: &[u8]) -> Result<QueryTemplate, SecureError> {
    let len = layout::QUERY_TEMPLATE_LEN;
    if buf.len() < len {
        return Err(too_small(len as u64, buf.len()));
    }
    let protocol = SecurityProtocol::from_raw(u32_at(buf, 0).unwrap_or(0) as i32)?;
    let storage = buf
        .get(
            layout::PEER_ADDRESS_OFFSET..layout::PEER_ADDRESS_OFFSET + layout::SOCKADDR_STORAGE_LEN,
        )
        .ok_or(too_small(len as u64, buf.len()))?;
    let peer = read_peer_address(storage)?;
    let access_mask = u32_at(buf, 136).ok_or(too_small(len as u64, buf.len()))?;
    let (flags, field_mask) = if protocol == SecurityProtocol::Ipsec2 {
        let l2 = layout::QUERY_TEMPLATE_IPSEC2_LEN;
        if buf.len() < l2 {
            return Err(too_small(l2 as u64, buf.len()));
        }
        let flags = u32_at(buf, 140).ok_or(too_small(l2 as u64, buf.len()))?;
        let mask = u32_at(buf, 144).ok_or(too_small(l2 as u64, buf.len()))?;
        if flags & !0x1 != 0 {
            return Err(SecureError::InvalidValue(
                "unknown SOCKET_QUERY_IPSEC2 flags",
            ));
        }
        if mask & !0x3 != 0 {
            return Err(SecureError::InvalidValue("unknown FieldMask bits"));
        }
        (flags, mask)
    } else {
        (0, 0)
    };
    Ok(QueryTemplate {
        protocol,
        peer,
        access_mask,
        flags,
        field_mask,
    })
}

/// Emits a query template: 144 bytes, or 152 (`_IPSEC2`, with `flags` and `field_mask`) for
/// IPSEC2.
pub fn emit_query_template(
    protocol: SecurityProtocol,
    peer: Option<SocketAddr>,
    access_mask: u32,
    flags: u32,
    field_mask: u32,
) -> Vec<u8> {
    let ipsec2 = protocol == SecurityProtocol::Ipsec2;
    let mut b = vec![
        0u8;
        if ipsec2 {
            layout::QUERY_TEMPLATE_IPSEC2_LEN
        } else {
            layout::QUERY_TEMPLATE_LEN
        }
    ];
    b[0..4].copy_from_slice(&protocol.raw().to_le_bytes());
    if let Some(a) = peer {
        let sa = emit_sockaddr(a);
        b[8..8 + sa.len()].copy_from_slice(&sa);
    }
    b[136..140].copy_from_slice(&access_mask.to_le_bytes());
    if ipsec2 {
        b[140..144].copy_from_slice(&flags.to_le_bytes());
        b[144..148].copy_from_slice(&field_mask.to_le_bytes());
    }
    b
}

/// `SOCKET_INFO_CONNECTION_SECURED`.
pub const INFO_SECURED: u32 = 0x1;
/// `SOCKET_INFO_CONNECTION_ENCRYPTED` (always with SECURED).
pub const INFO_ENCRYPTED: u32 = 0x2;
/// `SOCKET_INFO_CONNECTION_IMPERSONATED`: wsock sets it, with SECURED, when the peer
/// authenticated a user, so a user token is there to impersonate.
pub const INFO_IMPERSONATED: u32 = 0x4;

/// The answer of a query, as `SOCKET_SECURITY_QUERY_INFO(_IPSEC2)` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryInfo {
    /// `SecurityProtocol`: IPSEC2 for an IPSEC2 query, IPSEC when secured, else DEFAULT.
    pub protocol: i32,
    /// `Flags` (`INFO_*`).
    pub flags: u32,
    /// `PeerApplicationAccessTokenHandle`.
    pub application_token: u64,
    /// `PeerMachineAccessTokenHandle`.
    pub machine_token: u64,
    /// The IPSEC2 tail: `MmSaId`, `QmSaId`, `NegotiationWinerr`, `SaLookupContext`.
    pub ipsec2: Option<QueryInfoIpsec2>,
}

/// The tail of `SOCKET_SECURITY_QUERY_INFO_IPSEC2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryInfoIpsec2 {
    /// `MmSaId`.
    pub mm_sa_id: u64,
    /// `QmSaId`.
    pub qm_sa_id: u64,
    /// `NegotiationWinerr`.
    pub negotiation_winerr: u32,
    /// `SaLookupContext` (a GUID, as a `u128` in `GUID::from_u128` order).
    pub sa_lookup_context: u128,
}

impl QueryInfo {
    /// Bytes the answer takes: 24, or 64 with the IPSEC2 tail.
    pub fn len(&self) -> usize {
        if self.ipsec2.is_some() {
            layout::QUERY_INFO_IPSEC2_LEN
        } else {
            layout::QUERY_INFO_LEN
        }
    }

    /// Always false (an answer has at least its 24 fixed bytes); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the answer into `out`; returns the bytes written.
    ///
    /// # Errors
    /// [`SecureError::BufferTooSmall`] when `out` is shorter than [`QueryInfo::len`]; nothing
    /// is written then.
    ///
    /// # Examples
    /// ```
    /// let info = wsock::secure::QueryInfo { flags: 1, ..Default::default() };
    /// let mut out = [0u8; 24];
    /// assert_eq!(info.emit(&mut out)?, 24);
    /// assert_eq!(wsock::secure::QueryInfo::parse(&out)?, info);
    /// # Ok::<(), wsock::secure::SecureError>(())
    /// ```
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, SecureError> {
        let n = self.len();
        let out = match out.get_mut(..n) {
            Some(o) => o,
            None => return Err(too_small(n as u64, out.len())),
        };
        out.fill(0);
        out[0..4].copy_from_slice(&self.protocol.to_le_bytes());
        out[4..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.application_token.to_le_bytes());
        out[16..24].copy_from_slice(&self.machine_token.to_le_bytes());
        if let Some(t) = &self.ipsec2 {
            out[24..32].copy_from_slice(&t.mm_sa_id.to_le_bytes());
            out[32..40].copy_from_slice(&t.qm_sa_id.to_le_bytes());
            out[40..44].copy_from_slice(&t.negotiation_winerr.to_le_bytes());
            out[44..60].copy_from_slice(&guid_bytes(t.sa_lookup_context));
        }
        Ok(n)
    }

    /// Reads an answer: 24 bytes, or 64 with protocol IPSEC2 (as Project Zero's tools read
    /// it: the tail only when both hold).
    ///
    /// # Errors
    /// [`SecureError::BufferTooSmall`] below 24 bytes.
    pub fn parse(buf: &[u8]) -> Result<QueryInfo, SecureError> {
        if buf.len() < layout::QUERY_INFO_LEN {
            return Err(too_small(layout::QUERY_INFO_LEN as u64, buf.len()));
        }
        let u64_at = |off: usize| -> u64 {
            let mut a = [0u8; 8];
            if let Some(s) = buf.get(off..off + 8) {
                a.copy_from_slice(s);
            }
            u64::from_le_bytes(a)
        };
        let protocol = u32_at(buf, 0).unwrap_or(0) as i32;
        let ipsec2 = if protocol == 2 && buf.len() >= layout::QUERY_INFO_IPSEC2_LEN {
            Some(QueryInfoIpsec2 {
                mm_sa_id: u64_at(24),
                qm_sa_id: u64_at(32),
                negotiation_winerr: u32_at(buf, 40).unwrap_or(0),
                sa_lookup_context: guid_at(buf, 44).unwrap_or(0),
            })
        } else {
            None
        };
        Ok(QueryInfo {
            protocol,
            flags: u32_at(buf, 4).unwrap_or(0),
            application_token: u64_at(8),
            machine_token: u64_at(16),
            ipsec2,
        })
    }
}

// ------------------------------------------------------------------ Rust face

/// What a secure socket asks for, built step by step (the Rust face of
/// `SOCKET_SECURITY_SETTINGS` / `SOCKET_SECURITY_SETTINGS_IPSEC`).
///
/// [`SecuritySettings::system_default`] is what a NULL `SecuritySettings` pointer asks for
/// (Windows' default secure-socket policy); [`SecuritySettings::new`] is the protocol-neutral
/// 8-byte structure with no flags; [`SecuritySettings::ipsec`] the IPsec structure. Setting an
/// IPsec-only field (IPsec flags, policy keys, credentials) switches a protocol-neutral value to
/// IPSEC, as a Windows program must.
///
/// `Debug` never prints the password.
///
/// # Examples
/// ```
/// use wsock::secure::SecuritySettings;
/// let s = SecuritySettings::new().require_encryption();
/// assert_eq!(s.to_stack().unwrap().flags, 0x1);
/// let s = SecuritySettings::new().user_credentials("alice", Some("WSOCK"), Some("pw"));
/// assert_eq!(s.to_stack().unwrap().protocol, 1); // IPSEC
/// assert!(SecuritySettings::system_default().to_stack().is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecuritySettings {
    /// `None`: the NULL settings (system default policy).
    inner: Option<AleSettings>,
}

impl std::fmt::Debug for SecuritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("SecuritySettings(system default)"),
            Some(s) => s.fmt(f),
        }
    }
}

impl SecuritySettings {
    /// NULL settings: the system's default secure-socket policy (integrity first).
    pub fn system_default() -> SecuritySettings {
        SecuritySettings { inner: None }
    }

    /// `SOCKET_SECURITY_SETTINGS { DEFAULT, 0 }`.
    pub fn new() -> SecuritySettings {
        SecuritySettings {
            inner: Some(AleSettings::default()),
        }
    }

    /// `SOCKET_SECURITY_SETTINGS_IPSEC` with protocol IPSEC and nothing else set.
    pub fn ipsec() -> SecuritySettings {
        SecuritySettings {
            inner: Some(AleSettings {
                protocol: 1,
                ..AleSettings::default()
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut AleSettings)) -> SecuritySettings {
        let s = self.inner.get_or_insert_with(AleSettings::default);
        f(s);
        self
    }

    fn with_ipsec(self, f: impl FnOnce(&mut AleSettings)) -> SecuritySettings {
        self.with(|s| {
            if s.protocol == 0 {
                s.protocol = 1;
            }
            f(s)
        })
    }

    /// `SOCKET_SETTINGS_GUARANTEE_ENCRYPTION`: a cipher or no connection.
    pub fn require_encryption(self) -> SecuritySettings {
        self.with(|s| s.flags |= 0x1)
    }

    /// `SOCKET_SETTINGS_ALLOW_INSECURE`: fall back to clear text when negotiation fails.
    pub fn allow_insecure(self) -> SecuritySettings {
        self.with(|s| s.flags |= 0x2)
    }

    /// Uses the IPSEC2 protocol value (the Windows 7 structures).
    pub fn ipsec2(self) -> SecuritySettings {
        self.with(|s| s.protocol = 2)
    }

    /// Sets `IpsecFlags` bits (`SOCKET_SETTINGS_IPSEC_*`: 0x1 skip filter instantiation, 0x2
    /// optional peer-name verification, 0x4 first inbound packet unencrypted, 0x8 raw peer
    /// name).
    pub fn ipsec_flags(self, flags: u32) -> SecuritySettings {
        self.with_ipsec(|s| s.ipsec_flags |= flags)
    }

    /// `AuthipMMPolicyKey`: the key of a main-mode provider context.
    pub fn mm_policy_key(self, key: u128) -> SecuritySettings {
        self.with_ipsec(|s| s.mm_policy_key = (key != 0).then_some(Guid::from_u128(key)))
    }

    /// `AuthipQMPolicyKey`: the key of a quick-mode provider context.
    pub fn qm_policy_key(self, key: u128) -> SecuritySettings {
        self.with_ipsec(|s| s.qm_policy_key = (key != 0).then_some(Guid::from_u128(key)))
    }

    /// The user, domain and password for user-level authentication.
    pub fn user_credentials(
        self,
        user: &str,
        domain: Option<&str>,
        password: Option<&str>,
    ) -> SecuritySettings {
        self.with_ipsec(|s| {
            s.user = Some(user.to_string());
            s.domain = domain.map(str::to_string);
            s.password = password.map(str::to_string);
        })
    }

    /// What the stack receives (`None` for the system default).
    pub fn to_stack(&self) -> Option<AleSettings> {
        self.inner.clone()
    }

    /// The bytes `WSASetSocketSecurity` would be given (empty for the system default, which
    /// is a NULL pointer).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.as_ref().map(emit_settings).unwrap_or_default()
    }

    /// Checks the settings as the raw face would (string lengths).
    ///
    /// # Errors
    /// As [`parse_settings`].
    pub fn validate(&self) -> Result<(), SecureError> {
        match &self.inner {
            None => Ok(()),
            Some(s) => parse_settings(&emit_settings(s)).map(|_| ()),
        }
    }
}

/// What a query says about a connection or a UDP peer (the Rust face of
/// `SOCKET_SECURITY_QUERY_INFO_IPSEC2`, with the peer's names instead of token handles).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SecurityInfo {
    /// `SOCKET_INFO_CONNECTION_SECURED`.
    pub secured: bool,
    /// `SOCKET_INFO_CONNECTION_ENCRYPTED` (implies `secured`).
    pub encrypted: bool,
    /// `SOCKET_INFO_CONNECTION_IMPERSONATED`: a peer user authenticated.
    pub impersonated: bool,
    /// `MmSaId`.
    pub mm_sa_id: u64,
    /// `QmSaId`.
    pub qm_sa_id: u64,
    /// `NegotiationWinerr`.
    pub negotiation_winerr: u32,
    /// `SaLookupContext`.
    pub sa_lookup_context: u64,
    /// The authenticated peer computer.
    pub peer_machine: Option<String>,
    /// The authenticated peer user.
    pub peer_user: Option<String>,
}

impl SecurityInfo {
    /// The `Flags` of `SOCKET_SECURITY_QUERY_INFO`.
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.secured {
            f |= INFO_SECURED;
            if self.encrypted {
                f |= INFO_ENCRYPTED;
            }
            if self.impersonated {
                f |= INFO_IMPERSONATED;
            }
        }
        f
    }
}

impl From<crate::stack_security::SecurityQuery> for SecurityInfo {
    fn from(q: crate::stack_security::SecurityQuery) -> SecurityInfo {
        let secured = q.secured;
        SecurityInfo {
            secured,
            encrypted: secured && q.encrypted,
            impersonated: secured && q.peer_user.is_some(),
            mm_sa_id: q.mm_sa_id,
            qm_sa_id: q.qm_sa_id,
            negotiation_winerr: q.negotiation_winerr,
            sa_lookup_context: q.sa_lookup_context,
            peer_machine: q.peer_machine,
            peer_user: q.peer_user,
        }
    }
}

// ------------------------------------------------------------------ shared with the Rust face

/// Sets security on a fresh endpoint of the Rust face: the checks of the raw face, the
/// down-call, and `SO_EXCLUSIVEADDRUSE`.
pub(crate) fn apply(
    ep: &wsock_stack::Endpoint,
    settings: &SecuritySettings,
) -> Result<(), SecureError> {
    settings.validate()?;
    if ep.options().map(|o| o.reuse_addr).unwrap_or(false) {
        return Err(SecureError::InvalidState("SO_REUSEADDR is set"));
    }
    crate::stack_security::set_security(ep, settings.to_stack())?;
    ep.set_options(|o| o.exclusive_addr = true)?;
    Ok(())
}

/// Sets a peer target name after the raw face's checks on the name.
pub(crate) fn set_target_name(
    ep: &wsock_stack::Endpoint,
    peer: IpAddr,
    name: &str,
) -> Result<(), SecureError> {
    let name = name.trim_end_matches('\0');
    if name.is_empty() {
        return Err(SecureError::InvalidValue("empty peer target name"));
    }
    if name.encode_utf16().count() as u64 * 2 > layout::MAX_STRING_BYTES {
        return Err(SecureError::InvalidValue("PeerTargetNameStringLen"));
    }
    Ok(crate::stack_security::set_peer_target_name(ep, peer, name)?)
}

/// A query through the stack.
pub(crate) fn query(
    ep: &wsock_stack::Endpoint,
    peer: Option<SocketAddr>,
) -> Result<SecurityInfo, SecureError> {
    Ok(crate::stack_security::query_security(ep, peer)?.into())
}

/// The query of a connected TCP endpoint that also watches the SA ids `fields` selects.
pub(crate) fn query_watching(
    ep: &wsock_stack::Endpoint,
    fields: SaFields,
) -> Result<SecurityInfo, SecureError> {
    Ok(crate::stack_security::query_security_watching(ep, None, fields)?.into())
}

/// Token handles for a query's peer (zero handles without an authenticated peer or access).
pub(crate) fn tokens(
    host: &wsock_stack::Host,
    info: &SecurityInfo,
    access: u32,
) -> Result<crate::identity::PeerTokens, SecureError> {
    match &info.peer_machine {
        Some(machine) if info.secured && access != 0 => Ok(crate::identity::peer_tokens(
            host,
            machine,
            info.peer_user.as_deref(),
            access,
        )?),
        _ => Ok(crate::identity::PeerTokens::default()),
    }
}

/// The impersonation of a query's peer.
pub(crate) fn impersonation(
    host: &wsock_stack::Host,
    info: &SecurityInfo,
) -> Result<crate::identity::Impersonation, SecureError> {
    match &info.peer_machine {
        Some(machine) if info.secured => Ok(crate::identity::peer_impersonation(
            host,
            machine,
            info.peer_user.as_deref(),
        )?),
        _ => Err(SecureError::NoPeerIdentity),
    }
}

/// The IP a peer target name of a connection-oriented socket is stored under when the
/// structure's `PeerAddress` is zero (Windows ignores it for TCP): the unspecified address of
/// the socket's family.
pub(crate) fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack_security::SecurityQuery;

    /// Reference case 33: whatever the stack reports, ENCRYPTED never comes without SECURED, and
    /// neither does IMPERSONATED.
    #[test]
    fn flags_never_report_encryption_without_security() {
        for bits in 0..8u8 {
            let q = SecurityQuery {
                secured: bits & 1 != 0,
                encrypted: bits & 2 != 0,
                peer_user: (bits & 4 != 0).then(|| "alice".to_string()),
                peer_machine: Some("CLIENT".into()),
                ..SecurityQuery::default()
            };
            let f = SecurityInfo::from(q).flags();
            assert!(
                f & INFO_ENCRYPTED == 0 || f & INFO_SECURED != 0,
                "{bits}: {f:#x}"
            );
            assert!(
                f & INFO_IMPERSONATED == 0 || f & INFO_SECURED != 0,
                "{bits}: {f:#x}"
            );
            assert_eq!(f & INFO_SECURED != 0, bits & 1 != 0);
        }
    }

    #[test]
    fn guid_bytes_round_trip_in_windows_layout() {
        let v = 0xaec2ef9c_3a4d_4d3e_8842_239942e39a47u128;
        let b = guid_bytes(v);
        assert_eq!(&b[0..4], &[0x9c, 0xef, 0xc2, 0xae]);
        assert_eq!(&b[8..10], &[0x88, 0x42]);
        assert_eq!(guid_at(&b, 0), Some(v));
        assert_eq!(guid_at(&b, 1), None);
    }
}
